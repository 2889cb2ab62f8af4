//! Reports of a finished run: the summary metrics (computed with polars), the
//! CSV/Parquet tables, `summary.json` and a self-contained `report.html`.
//!
//! Input is a [`RunRecord`]; nothing here touches the ledger or the journal.
//!
//! # Public API
//! - [`summary`]: the metrics, as a [`Summary`] (serialized to `summary.json`).
//! - [`write_all`]: `summary.json`, the trades tables and the page into one directory.
//! - [`TableWriter`]: the per-bar tables (equity and series), streamed while the run goes;
//!   [`write_tables`] writes them from a finished record.
//!
//! # Files
//! | file | columns |
//! |---|---|
//! | `summary.json` | the [`Summary`], pretty-printed |
//! | `trades.csv` / `trades.parquet` | symbol, side, entry_time, exit_time, qty, entry_price, exit_price, pnl, fees, net_pnl |
//! | `equity.csv` | time, time_ms, equity, drawdown_pct |
//! | `equity.parquet` | time (UTC timestamp), equity, drawdown_pct |
//! | `series.csv` | time, time_ms, name, value |
//! | `series.parquet` | time (UTC timestamp), name, value |
//! | `report.html` | one offline page: header, summary, price charts with trades, equity, drawdown, series, trades, data notes |
//!
//! Times are ISO-8601 UTC (`2024-01-05T14:00:00Z`, with `.mmm` only when the milliseconds are not 0).
//! Money in `trades.csv` is the exact decimal text (`0.00002025` stays `0.00002025`, scale kept);
//! in `trades.parquet` it is a Parquet DECIMAL(38, s) column, s being the largest scale in
//! the column (exact; a column whose values cannot share one scale within 38 digits falls back to
//! text). `net_pnl = pnl − fees`, exact. The equity columns are `f64` copies of the ledger's
//! exact equity at each close (the exact final equity is in `summary.json`).
//!
//! # Metric definitions
//! The metrics are computed with polars (eager `Series`/`ChunkedArray` kernels over two
//! DataFrames, the equity curve and the trades; the `lazy` query engine is not enabled in
//! this crate). All results that are not finite numbers are `null` in JSON, never NaN.
//!
//! - **Equity curve**: `initial_equity` (the state before the first bar), then one point per bar
//!   close. Per-bar simple returns `r_i = e_i / e_{i-1} − 1`, the first one against `initial_equity`,
//!   so a run of `n` bars has `n` returns.
//! - **total_return_pct** = `(final_equity / initial_equity − 1) · 100` (from the exact decimals).
//! - **cagr_pct** = `((final / initial)^(1 / years) − 1) · 100`, `years = (end − start) / 365.25 days`.
//!   `null` when the span is under one day (annualizing a few hours is meaningless), or when
//!   `initial ≤ 0` or `final < 0`.
//! - **sharpe** = `mean(r) / stdev(r) · sqrt(bars_per_year)`, sample stdev (n − 1), risk-free rate 0,
//!   `bars_per_year = 365.25 · 86 400 000 / interval_ms`. `null` with fewer than 2 returns or a zero stdev
//!   (flat equity).
//! - **sortino** = `mean(r) / downside_dev · sqrt(bars_per_year)`, `downside_dev = sqrt(mean(min(r, 0)²))`
//!   over all returns (positive returns count as 0). `null` when there is no negative return.
//! - **max_drawdown_pct** = `max_t (peak_t − e_t) / peak_t · 100`, `peak_t` the running maximum of the
//!   curve including `initial_equity`; a positive number, 0 for a curve that never falls.
//!   `null` without equity points. `equity.csv`'s `drawdown_pct` is the same quantity per point.
//! - **calmar** = `cagr_pct / max_drawdown_pct`; `null` when the drawdown is 0 or CAGR is `null`.
//! - **win_rate_pct** = `count(pnl − fees > 0) / trades · 100`; `null` without trades.
//! - **profit_factor** = `Σ(net > 0) / |Σ(net < 0)|` with `net = pnl − fees`; `null` without a losing trade.
//! - **exposure_pct** = share of equity points with a position open, `· 100`; `null` without points.
//! - **avg_trade_duration_ms** = mean of `exit_time − entry_time` over trades (rounded to ms), and
//!   **avg_trade_duration** the same in words (`"3h 20m"`, `"2d 4h"`, `"45s"`); `null` without trades.
//! - **fees_paid**, **final_equity**, **initial_equity**, **funding_net**: the record's exact decimals, as strings.

mod escape;
mod files;
mod html;
mod metrics;
mod svg;
mod tables;
#[cfg(test)]
mod tests;
mod text;
mod utc;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::Serialize;

use journal::money::dec;

use crate::record::{RunRecord, END_OF_DATA};

pub use files::write_trades;
pub use html::render_html;
pub use tables::{write_tables, TableWriter};
pub use utc::iso_utc;

/// The run's headline numbers; `summary.json` is this, pretty-printed.
/// Definitions: see the [module docs](self).
///
/// The field order is the order a reader reads the summary in, wherever it is shown
/// (`summary.json`, the terminal table, the sweep): the performance first (return, CAGR, the
/// risk-adjusted ratios, drawdown), then the trades, exposure and costs, then the bookkeeping
/// (what ran on which data, and the run's health).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub total_return_pct: Option<f64>,
    pub cagr_pct: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown_pct: Option<f64>,
    pub calmar: Option<f64>,
    pub trades: u64,
    pub win_rate_pct: Option<f64>,
    pub profit_factor: Option<f64>,
    pub avg_trade_duration: Option<String>,
    pub exposure_pct: Option<f64>,
    #[serde(with = "dec")]
    pub fees_paid: Decimal,
    #[serde(with = "dec")]
    pub funding_net: Decimal,
    #[serde(with = "dec")]
    pub initial_equity: Decimal,
    #[serde(with = "dec")]
    pub final_equity: Decimal,
    pub strategy: String,
    pub params: serde_json::Value,
    pub symbols: Vec<String>,
    /// The bar interval in words ("1h", "15m", "1d").
    pub interval: String,
    pub interval_ms: i64,
    /// ISO-8601 UTC.
    pub start: String,
    pub end: String,
    pub bars: u64,
    pub avg_trade_duration_ms: Option<i64>,
    pub orders_rejected: u64,
    pub strategy_errors: u64,
    pub anomalies: u64,
    /// Why the strategy was stopped (`"end of data"` for a run that simply ran out of bars).
    pub stopped: Option<String>,
    pub data_notes: Vec<String>,
    pub state_digest: String,
}

impl Summary {
    /// The fields by name, in the order of the struct, for the tables that show the summary
    /// (a `serde_json::Value` object would sort them by name).
    pub fn fields(&self) -> IndexMap<String, serde_json::Value> {
        // The values come from `to_value` (parsing the text back could move a float by an ulp),
        // the order from the text. A struct of plain fields always serializes.
        let serde_json::Value::Object(mut values) = serde_json::to_value(self).expect("a summary serializes") else {
            unreachable!("a struct serializes to an object")
        };
        let text = serde_json::to_string(self).expect("a summary serializes");
        let order: IndexMap<String, serde::de::IgnoredAny> = serde_json::from_str(&text).expect("its own JSON");
        order.into_keys().map(|key| (key.clone(), values.remove(&key).unwrap_or_default())).collect()
    }

    /// Why the run stopped before the end of its data (errors, liquidation, an interrupt, ...);
    /// `None` for a run that reached its last bar.
    pub fn stopped_early(&self) -> Option<&str> {
        self.stopped.as_deref().filter(|why| *why != END_OF_DATA)
    }
}

/// A report file could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what}: polars: {source}")]
    Polars { what: String, source: polars::error::PolarsError },
    #[error("summary.json: {0}")]
    Json(#[from] serde_json::Error),
}

impl ReportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn polars(what: impl Into<String>, source: polars::error::PolarsError) -> Self {
        ReportError::Polars { what: what.into(), source }
    }
}

/// Computes the summary metrics (see the module docs for the definitions).
/// Never panics: empty curves, zero trades and one bar give `null`s where documented.
pub fn summary(record: &RunRecord) -> Summary {
    let m = metrics::compute(record);
    Summary {
        total_return_pct: m.total_return_pct,
        cagr_pct: m.cagr_pct,
        sharpe: m.sharpe,
        sortino: m.sortino,
        max_drawdown_pct: m.max_drawdown_pct,
        calmar: m.calmar,
        trades: record.trades.len() as u64,
        win_rate_pct: m.win_rate_pct,
        profit_factor: m.profit_factor,
        avg_trade_duration: m.avg_trade_duration_ms.map(human_duration),
        exposure_pct: m.exposure_pct,
        fees_paid: record.fees_paid,
        funding_net: record.funding_net,
        initial_equity: record.initial_equity,
        final_equity: record.final_equity,
        strategy: record.strategy.clone(),
        params: record.params.clone(),
        symbols: record.symbols.clone(),
        interval: interval_label(record.interval_ms),
        interval_ms: record.interval_ms,
        start: iso_utc(record.start_ms),
        end: iso_utc(record.end_ms),
        bars: record.bars,
        avg_trade_duration_ms: m.avg_trade_duration_ms,
        orders_rejected: record.orders_rejected,
        strategy_errors: record.strategy_errors,
        anomalies: record.anomalies,
        stopped: record.stopped.clone(),
        data_notes: record.data_notes.clone(),
        state_digest: record.state_digest.clone(),
    }
}

/// Writes `summary.json`, the trades tables and `report.html` into `out_dir` (created if
/// missing); returns the paths written. The per-bar tables are streamed during the run
/// ([`TableWriter`]), or written from a finished record with [`write_tables`].
///
/// # Errors
/// The first file that cannot be built or written.
pub fn write_all(record: &RunRecord, summary: &Summary, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    // The page is the dearest of these: build it beside the others.
    let (page, others) = std::thread::scope(|scope| {
        let page = scope.spawn(|| {
            let path = out_dir.join("report.html");
            std::fs::write(&path, render_html(record, summary)).map_err(|e| ReportError::io(&path, e))?;
            Ok::<_, ReportError>(path)
        });
        let others = (|| {
            let path = out_dir.join("summary.json");
            let mut json = serde_json::to_string_pretty(summary)?;
            json.push('\n');
            std::fs::write(&path, json).map_err(|e| ReportError::io(&path, e))?;
            let mut written = vec![path];
            written.extend(write_trades(record, out_dir)?);
            Ok::<_, ReportError>(written)
        })();
        (page.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), others)
    });
    let mut written = others?;
    written.push(page?);
    Ok(written)
}

/// A duration in words, two units at most: "450ms", "45s", "3m 20s", "3h 20m", "2d 4h".
pub fn human_duration(ms: i64) -> String {
    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    let neg = if ms < 0 { "-" } else { "" };
    let mut ms = ms.unsigned_abs();
    // The units shown, and the value rounded to the smaller one; rounding can carry into the
    // next tier (59m 59.6s is "1h"), hence the second pass.
    for _ in 0..2 {
        let (big, bu, small, su) = match ms {
            m if m < S => return format!("{neg}{m}ms"),
            m if m < M => (S, "s", S, ""),
            m if m < H => (M, "m", S, "s"),
            m if m < D => (H, "h", M, "m"),
            _ => (D, "d", H, "h"),
        };
        let rounded = ms.saturating_add(small / 2) / small * small;
        let next = match bu {
            "s" => M,
            "m" => H,
            "h" => D,
            _ => u64::MAX,
        };
        if rounded >= next {
            ms = rounded;
            continue;
        }
        let (a, b) = (rounded / big, rounded % big / small);
        return if b == 0 || su.is_empty() { format!("{neg}{a}{bu}") } else { format!("{neg}{a}{bu} {b}{su}") };
    }
    format!("{neg}{}d", ms / D)
}

/// The interval in the largest unit that divides it: "1m", "15m", "4h", "1d", "1w"; "250ms".
pub fn interval_label(interval_ms: i64) -> String {
    journal::describe::interval_label(interval_ms)
}
