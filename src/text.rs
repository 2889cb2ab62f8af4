//! Times and tables for people.

use chrono::{DateTime, Utc};

/// `2022-12-13T00:01:00Z` (seconds precision when whole, else milliseconds).
pub fn time(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) if ms % 1000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{ms}ms"),
    }
}

/// The trader column: shared events have no trader.
pub fn trader(name: &str) -> &str {
    if name.is_empty() {
        "-"
    } else {
        name
    }
}
