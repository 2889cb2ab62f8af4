//! The metrics, computed with polars over two DataFrames (definitions: the parent module docs).

use polars::prelude::*;
use rust_decimal::Decimal;

use crate::record::RunRecord;

const YEAR_MS: f64 = 365.25 * 86_400_000.0;
const DAY_MS: i64 = 86_400_000;

/// The computed numbers; every `Some` is finite.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Metrics {
    pub total_return_pct: Option<f64>,
    pub cagr_pct: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown_pct: Option<f64>,
    pub calmar: Option<f64>,
    pub win_rate_pct: Option<f64>,
    pub profit_factor: Option<f64>,
    pub exposure_pct: Option<f64>,
    pub avg_trade_duration_ms: Option<i64>,
}

/// `Some(x)` when `x` is finite.
pub(crate) fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// The nearest `f64` (through the decimal text, which Rust's float parser rounds correctly;
/// `Decimal::to_f64` can be an ULP off, which shows as `-11.668859920000001`).
pub(crate) fn to_f64(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

/// The drawdown of an equity curve point by point, in percent: (peak − equity) / peak · 100,
/// the peak being the running maximum that starts at the initial equity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drawdown {
    peak: f64,
}

impl Drawdown {
    pub(crate) fn new(initial_equity: f64) -> Drawdown {
        Drawdown { peak: initial_equity }
    }

    /// The drawdown at the next point of the curve.
    pub(crate) fn next(&mut self, equity: f64) -> f64 {
        self.peak = self.peak.max(equity);
        (self.peak - equity) / self.peak * 100.0
    }
}

/// Each equity point's [`Drawdown`].
pub(crate) fn drawdowns(record: &RunRecord) -> impl Iterator<Item = f64> + '_ {
    let mut drawdown = Drawdown::new(to_f64(record.initial_equity));
    record.equity.iter().map(move |p| drawdown.next(p.equity))
}

/// The equity curve: `equity` (f64), `exposed` (bool), `drawdown_pct` (f64, [`drawdowns`]).
pub(crate) fn equity_frame(record: &RunRecord) -> PolarsResult<DataFrame> {
    let equity = Float64Chunked::from_iter_values("equity".into(), record.equity.iter().map(|p| p.equity));
    let exposed = BooleanChunked::from_iter_values("exposed".into(), record.equity.iter().map(|p| p.exposed));
    let drawdown = Float64Chunked::from_iter_values("drawdown_pct".into(), drawdowns(record));
    DataFrame::new_infer_height(vec![equity.into_column(), exposed.into_column(), drawdown.into_column()])
}

/// The trades for the metrics: `net` = pnl − fees (exact, then f64: its sign is exact),
/// `duration_ms` = exit − entry.
pub(crate) fn trade_metrics_frame(record: &RunRecord) -> PolarsResult<DataFrame> {
    let net: Vec<f64> = record.trades.iter().map(|t| to_f64(t.pnl - t.fees)).collect();
    let entry = Int64Chunked::from_vec("entry".into(), record.trades.iter().map(|t| t.entry_time_ms).collect());
    let exit = Int64Chunked::from_vec("exit".into(), record.trades.iter().map(|t| t.exit_time_ms).collect());
    let duration = (&exit - &entry).with_name("duration_ms".into());
    DataFrame::new_infer_height(vec![Column::new("net".into(), net), duration.into_column()])
}

/// All metrics; a polars failure (which would be a bug) leaves the affected group `None`.
pub(crate) fn compute(record: &RunRecord) -> Metrics {
    let mut m = Metrics { total_return_pct: total_return_pct(record), ..Metrics::default() };
    m.cagr_pct = cagr_pct(record);
    if let Ok(df) = equity_frame(record) {
        // Ignore the error type: the metrics are simply absent if polars refuses.
        let _ = equity_metrics(record, &df, &mut m);
    }
    m.calmar = match (m.cagr_pct, m.max_drawdown_pct) {
        (Some(c), Some(dd)) if dd > 0.0 => finite(Some(c / dd)),
        _ => None,
    };
    if let Ok(df) = trade_metrics_frame(record) {
        let _ = trade_metrics(&df, &mut m);
    }
    m
}

fn total_return_pct(record: &RunRecord) -> Option<f64> {
    if record.initial_equity.is_zero() {
        return None;
    }
    let r = record.final_equity.checked_div(record.initial_equity)?.checked_sub(Decimal::ONE)?;
    finite(Some(to_f64(r.checked_mul(Decimal::ONE_HUNDRED)?)))
}

fn cagr_pct(record: &RunRecord) -> Option<f64> {
    let span = record.end_ms.checked_sub(record.start_ms)?;
    if span < DAY_MS || record.initial_equity <= Decimal::ZERO || record.final_equity < Decimal::ZERO {
        return None;
    }
    let ratio = to_f64(record.final_equity) / to_f64(record.initial_equity);
    let years = span as f64 / YEAR_MS;
    finite(Some((ratio.powf(1.0 / years) - 1.0) * 100.0))
}

fn equity_metrics(record: &RunRecord, df: &DataFrame, m: &mut Metrics) -> PolarsResult<()> {
    let n = df.height();
    if n == 0 {
        return Ok(());
    }
    let equity = df.column("equity")?.f64()?;
    let exposed = df.column("exposed")?.bool()?;
    let drawdown = df.column("drawdown_pct")?.f64()?;

    m.max_drawdown_pct = finite(drawdown.max());
    m.exposure_pct = finite(Some(exposed.num_trues() as f64 / n as f64 * 100.0));

    // Per-bar simple returns; the first one against the initial equity.
    let prev = equity.shift_and_fill(1, Some(to_f64(record.initial_equity)));
    let returns = &(equity / &prev) - 1.0;
    if record.interval_ms <= 0 {
        return Ok(());
    }
    let annual = (YEAR_MS / record.interval_ms as f64).sqrt();
    let mean = returns.mean();
    if returns.len() >= 2 {
        let std = returns.std(1);
        m.sharpe = match (mean, std) {
            (Some(mu), Some(sd)) if sd > 0.0 => finite(Some(mu / sd * annual)),
            _ => None,
        };
    }
    // Downside deviation: sqrt(mean(min(r, 0)²)), positive returns counting as 0.
    let down_sq = returns.apply_values(|r| if r < 0.0 { r * r } else { 0.0 });
    let downside = down_sq.mean().map(f64::sqrt);
    m.sortino = match (mean, downside) {
        (Some(mu), Some(dd)) if dd > 0.0 => finite(Some(mu / dd * annual)),
        _ => None,
    };
    Ok(())
}

fn trade_metrics(df: &DataFrame, m: &mut Metrics) -> PolarsResult<()> {
    let n = df.height();
    if n == 0 {
        return Ok(());
    }
    let net = df.column("net")?.f64()?;
    let wins = net.filter(&net.gt(0.0))?;
    let losses = net.filter(&net.lt(0.0))?;
    m.win_rate_pct = finite(Some(wins.len() as f64 / n as f64 * 100.0));
    let gross_profit = wins.sum().unwrap_or(0.0);
    let gross_loss = -losses.sum().unwrap_or(0.0);
    m.profit_factor = if gross_loss > 0.0 { finite(Some(gross_profit / gross_loss)) } else { None };
    let duration = df.column("duration_ms")?.i64()?;
    m.avg_trade_duration_ms = finite(duration.mean()).map(|x| x.round() as i64);
    Ok(())
}
