//! The caller's clock: latency is measured on it, and an HTTP-date `retry-after` is read against
//! it, so a test or a replay can drive both.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, as the caller keeps time.
pub trait Clock: Send + Sync {
    fn now_ns(&self) -> i64;
}

/// The system's wall clock: for live trading.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}
