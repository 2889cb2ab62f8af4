//! The backtester: kline loading, the simulated exchange, the driver and reports.
//!
//! # Layout
//! - [`data`]: kline files (CSV, Binance export, Parquet) via polars, validated and streamed.
//! - [`exchange`]: the simulated exchange (pure functions of the ledger state and a bar).
//! - [`run`]: the driver: bars become journaled inputs, folded, decided, filled.
//! - [`record`]: what a run leaves for the reports.
//! - [`report`]: metrics (polars), CSV/Parquet tables and the HTML report.

pub mod data;
pub mod exchange;
pub mod record;
pub mod report;
pub mod run;
