//! The one error type of the kline loader.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_decimal::Decimal;

use super::format_interval;

/// Where in a file a problem is. CSV: 1-based line in the file, the header is line 1.
/// Parquet has no lines: 1-based data row. Displays as `path:17` (CSV) or `path:row 17` (Parquet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub path: Arc<Path>,
    pub line: u64,
    pub is_row: bool,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_row {
            write!(f, "{}:row {}", self.path.display(), self.line)
        } else {
            write!(f, "{}:{}", self.path.display(), self.line)
        }
    }
}

/// Wrapper so a path displays without quotes in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath(pub PathBuf);

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

impl From<&Path> for FilePath {
    fn from(p: &Path) -> Self {
        FilePath(p.to_path_buf())
    }
}

/// Interval in ms that displays as `1m`, `4h`, `90s`, `1500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iv(pub i64);

impl fmt::Display for Iv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_interval(self.0))
    }
}

/// Everything that can go wrong loading klines. Every variant names the file; row-level ones the line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: FilePath,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: empty file")]
    EmptyFile { path: FilePath },
    #[error("{path}: no data rows")]
    NoBars { path: FilePath },
    #[error("{loc}: missing header: expected `open_time_ms,open,high,low,close,volume`, found `{found}`")]
    MissingHeader { loc: Loc, found: String },
    #[error("{loc}: unrecognised kline format: expected the header `open_time_ms,open,high,low,close,volume` or a 12-column Binance kline row, found `{found}`")]
    UnknownFormat { loc: Loc, found: String },
    #[error("{loc}: expected {expected} columns, found {found}")]
    ColumnCount { loc: Loc, expected: usize, found: usize },
    #[error("{loc}: line longer than {max} bytes")]
    LineTooLong { loc: Loc, max: usize },
    #[error("{loc}: empty line")]
    EmptyLine { loc: Loc },
    #[error("{loc}: invalid UTF-8")]
    InvalidUtf8 { loc: Loc },
    #[error("{loc}: {column} `{text}` is not a number")]
    Unparseable { loc: Loc, column: &'static str, text: String },
    #[error("{loc}: {column} `{text}` is not a finite number")]
    NonFinite { loc: Loc, column: &'static str, text: String },
    #[error("{loc}: {column} `{text}` cannot be represented exactly (more than 28 decimals or 96 bits)")]
    Inexact { loc: Loc, column: &'static str, text: String },
    #[error("{loc}: {column} is missing (null)")]
    Missing { loc: Loc, column: &'static str },
    #[error("{loc}: {column} {value} is negative")]
    Negative { loc: Loc, column: &'static str, value: Decimal },
    #[error("{loc}: {column} is zero; prices must be positive")]
    ZeroPrice { loc: Loc, column: &'static str },
    #[error("{loc}: high {high} is below low {low}")]
    HighBelowLow { loc: Loc, high: Decimal, low: Decimal },
    #[error("{loc}: {column} {value} is outside [low {low}, high {high}]")]
    OutsideRange { loc: Loc, column: &'static str, value: Decimal, low: Decimal, high: Decimal },
    #[error("{loc}: duplicate open time {time_ms} (also at line {prev_line})")]
    DuplicateTime { loc: Loc, time_ms: i64, prev_line: u64 },
    #[error("{loc}: open time {time_ms} is before the previous bar's {prev_ms} (line {prev_line})")]
    OutOfOrder { loc: Loc, time_ms: i64, prev_ms: i64, prev_line: u64 },
    #[error("{loc}: step of {step_ms} ms from the previous bar (line {prev_line}) is not a whole multiple of the {interval} interval")]
    OffGrid { loc: Loc, step_ms: i64, prev_line: u64, interval: Iv },
    #[error(
        "{path}: interval mismatch: expected {expected}, inferred {inferred} (most common step between the first bars)"
    )]
    IntervalMismatch { path: FilePath, expected: Iv, inferred: Iv },
    #[error("{loc}: open time {raw} is in {unit} but the file started in {first_unit}")]
    TimeUnitChanged { loc: Loc, raw: i64, unit: &'static str, first_unit: &'static str },
    #[error("{loc}: open time {raw} µs is not a whole millisecond")]
    SubMillisecond { loc: Loc, raw: i64 },
    #[error("{path}: no symbol: the file name does not follow `exchange_SYMBOL_interval_...` and none was given")]
    NoSymbol { path: FilePath },
    #[error("symbol {symbol} is given twice ({first} and {second})")]
    DuplicateSymbol { symbol: String, first: FilePath, second: FilePath },
    #[error("invalid interval `{0}`: expected a positive count and a unit s, m, h, d or w (e.g. 1m, 5m, 1h, 4h, 1d)")]
    BadInterval(String),
    #[error("{path}: parquet column `{column}`: {problem}")]
    ParquetSchema { path: FilePath, column: &'static str, problem: String },
    #[error("{path}: polars: {source}")]
    Polars {
        path: FilePath,
        #[source]
        source: polars::error::PolarsError,
    },
}

impl DataError {
    /// The location (file, line) if the error is about one line/row.
    pub fn loc(&self) -> Option<&Loc> {
        use DataError::*;
        match self {
            MissingHeader { loc, .. }
            | UnknownFormat { loc, .. }
            | ColumnCount { loc, .. }
            | EmptyLine { loc }
            | LineTooLong { loc, .. }
            | InvalidUtf8 { loc }
            | Unparseable { loc, .. }
            | NonFinite { loc, .. }
            | Inexact { loc, .. }
            | Missing { loc, .. }
            | Negative { loc, .. }
            | ZeroPrice { loc, .. }
            | HighBelowLow { loc, .. }
            | OutsideRange { loc, .. }
            | DuplicateTime { loc, .. }
            | OutOfOrder { loc, .. }
            | OffGrid { loc, .. }
            | TimeUnitChanged { loc, .. }
            | SubMillisecond { loc, .. } => Some(loc),
            _ => None,
        }
    }
}
