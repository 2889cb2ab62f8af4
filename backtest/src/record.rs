//! What a backtest run leaves for its reports: the equity curve, the trades,
//! downsampled prices and recorded series. Produced by the driver while it runs;
//! consumed by [`crate::report`].

use rust_decimal::Decimal;
use serde::Serialize;

use journal::money::dec;

/// One round trip: a position opened from flat and closed back to flat (a flip
/// closes one trade and opens the next).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trade {
    pub symbol: String,
    /// "long" or "short".
    pub side: String,
    pub entry_time_ms: i64,
    pub exit_time_ms: i64,
    /// The largest absolute quantity held during the trade.
    #[serde(with = "dec")]
    pub qty: Decimal,
    /// Volume-weighted entry and exit prices.
    #[serde(with = "dec")]
    pub entry_price: Decimal,
    #[serde(with = "dec")]
    pub exit_price: Decimal,
    /// Realized PnL of the trade, before fees.
    #[serde(with = "dec")]
    pub pnl: Decimal,
    /// Fees paid on the trade's fills.
    #[serde(with = "dec")]
    pub fees: Decimal,
}

/// A point of the equity curve, sampled at every bar close (after the bar's fills).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquityPoint {
    pub time_ms: i64,
    /// A float copy of the ledger's exact equity, for the metrics, charts and equity tables
    /// (reports, not the ledger; the exact final equity is [`RunRecord::final_equity`]).
    pub equity: f64,
    /// Whether any position was open at this close (for exposure).
    pub exposed: bool,
}

/// A named series for the report: what the strategy recorded with `ctx.record(name, value)`,
/// or an indicator it declared with `record: true`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    /// In time order, thinned for the page to a few thousand points (every value is in the
    /// series tables, which are written as the run goes).
    pub points: Vec<SeriesPoint>,
}

/// One value of a [`Series`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    pub time_ms: i64,
    pub value: f64,
}

/// A price bar kept for the report chart (downsampled for long runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PricePoint {
    pub time_ms: i64,
    pub close: f64,
}

/// Everything a finished run hands to the reports.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub strategy: String,
    pub params: serde_json::Value,
    pub symbols: Vec<String>,
    pub interval_ms: i64,
    pub bars: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub initial_equity: Decimal,
    pub final_equity: Decimal,
    pub fees_paid: Decimal,
    pub funding_net: Decimal,
    /// Every bar close, in time order (one point per distinct close time).
    pub equity: Vec<EquityPoint>,
    pub trades: Vec<Trade>,
    /// Per symbol, in `symbols` order; downsampled to at most a few thousand points.
    pub prices: Vec<Vec<PricePoint>>,
    /// Recorded series, in the order they first appeared.
    pub series: Vec<Series>,
    /// The data's gaps, one line per file that has any ("BTCUSDT: 3 gaps, 17 missing bars, largest 9").
    pub data_notes: Vec<String>,
    /// Ledger anomalies seen (should be 0 in a backtest).
    pub anomalies: u64,
    /// The digest of the final ledger state.
    pub state_digest: String,
    pub orders_rejected: u64,
    pub strategy_errors: u64,
    /// Why the strategy was stopped: [`END_OF_DATA`] for a run that reached the end of its data.
    pub stopped: Option<String>,
}

/// The reason the driver journals when it stops the strategy because the data ran out: the
/// normal end of a run, not an early stop.
pub const END_OF_DATA: &str = "end of data";
