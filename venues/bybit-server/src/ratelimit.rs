//! Per-UID rate limits: a rolling 1-second window per endpoint (VENUES.md §1.8).
//!
//! The window runs on the wall clock: limits protect the server's real time, not market time.
//! A refused request is not counted (it has no effect at all).

use std::collections::{BTreeMap, VecDeque};

/// The window length.
pub const WINDOW_MS: i64 = 1000;

/// Requests per window of a private endpoint (Bybit's defaults for UTA Pro, linear).
pub fn limit_of(path: &str) -> u32 {
    match path {
        "/v5/order/create" | "/v5/order/cancel" | "/v5/position/set-leverage" => 10,
        _ => 50,
    }
}

/// What a request learned about its endpoint's budget: the `X-Bapi-Limit*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// `X-Bapi-Limit`.
    pub limit: u32,
    /// `X-Bapi-Limit-Status`: requests left in the window after this one.
    pub remaining: u32,
    /// `X-Bapi-Limit-Reset-Timestamp`: when the window frees a slot (now, if it has one).
    pub reset_ms: i64,
}

/// The windows of one UID.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: BTreeMap<String, VecDeque<i64>>,
}

impl RateLimiter {
    /// Counts a request to `path` at `now_ms`, or refuses it.
    pub fn check(&mut self, path: &str, now_ms: i64) -> Verdict {
        let limit = limit_of(path);
        let window = self.windows.entry(path.to_owned()).or_default();
        while window.front().is_some_and(|&t| t <= now_ms - WINDOW_MS) {
            window.pop_front();
        }
        let used = u32::try_from(window.len()).unwrap_or(u32::MAX);
        if used >= limit {
            let reset_ms = window.front().map_or(now_ms, |&t| t + WINDOW_MS);
            return Verdict { allowed: false, limit, remaining: 0, reset_ms };
        }
        window.push_back(now_ms);
        Verdict { allowed: true, limit, remaining: limit - used - 1, reset_ms: now_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_creates_a_second_then_refusals_until_the_window_rolls() {
        let mut limiter = RateLimiter::default();
        for i in 0..10 {
            let v = limiter.check("/v5/order/create", 1000 + i);
            assert!(v.allowed);
            assert_eq!(v.remaining, 9 - u32::try_from(i).unwrap());
        }
        let refused = limiter.check("/v5/order/create", 1500);
        assert_eq!(refused, Verdict { allowed: false, limit: 10, remaining: 0, reset_ms: 2000 });
        assert!(limiter.check("/v5/order/realtime", 1500).allowed, "endpoints have their own windows");
        assert!(limiter.check("/v5/order/create", 2000).allowed, "the first request left the window");
    }
}
