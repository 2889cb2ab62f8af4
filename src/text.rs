//! Times and tables for people.

use std::io::Write;

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

/// Writes a line to stdout; a closed pipe (`quantfold ... | head`) ends the
/// process with success rather than a panic.
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("quantfold: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}
