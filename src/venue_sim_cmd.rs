//! `quantfold venue-sim bybit|hyperliquid`: a local venue server on a kline file.

use std::{path::Path, process::ExitCode};

use anyhow::Context;
use backtest::data::{self, ReadOptions};
use journal::event::Kline;

/// Reads the kline file (with the backtest's checks and file:line errors) and serves it.
pub fn bybit(args: &bybit_server::Args) -> anyhow::Result<ExitCode> {
    let (symbol, klines) = klines(&args.klines, args.symbol.as_deref())?;
    bybit_server::run(args, &symbol, klines)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the kline file as `bybit` does and serves it as a Hyperliquid perpetual (BTCUSDT
/// trades as BTC).
pub fn hyperliquid(args: &hyperliquid_server::Args) -> anyhow::Result<ExitCode> {
    let (symbol, klines) = klines(&args.klines, args.symbol.as_deref())?;
    hyperliquid_server::run(args, &symbol, klines)?;
    Ok(ExitCode::SUCCESS)
}

/// A kline file as a market: its symbol and its closed bars.
///
/// # Errors
/// The file's first bad line, or a file of one bar (no interval).
pub fn klines(path: &Path, symbol: Option<&str>) -> anyhow::Result<(String, Vec<Kline>)> {
    let mut options = ReadOptions::new();
    if let Some(symbol) = symbol {
        options = options.symbol(symbol.to_owned());
    }
    let (info, bars) = data::load(path, &options)?;
    let interval_ms = info
        .interval_ms
        .with_context(|| format!("{}: one bar is not a market (the interval is unknown)", path.display()))?;
    let klines = bars
        .iter()
        .map(|bar| Kline {
            symbol: info.symbol.clone(),
            interval_ms,
            open_time_ms: bar.open_time_ms,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
            closed: true,
        })
        .collect();
    Ok((info.symbol, klines))
}
