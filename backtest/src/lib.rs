//! The backtester: kline loading, the driver and reports. The simulated exchange is the
//! `sim` crate, shared with paper trading.
//!
//! # Layout
//! - [`data`]: kline files (CSV, Binance export, Parquet) via polars, validated and streamed.
//! - [`run`]: the driver: the engine with a historical feed and the simulated exchange.
//! - [`record`]: what a run leaves for the reports.
//! - [`report`]: metrics (polars), CSV/Parquet tables and the HTML report.

pub mod data;
pub mod record;
pub mod report;
pub mod run;
