//! `quantfold venue-sim bybit`: the local Bybit server on a kline file.

use std::process::ExitCode;

use anyhow::Context;
use backtest::data::{self, ReadOptions};
use journal::event::Kline;

/// Reads the kline file (with the backtest's checks and file:line errors) and serves it.
pub fn bybit(args: &bybit_server::Args) -> anyhow::Result<ExitCode> {
    let mut options = ReadOptions::new();
    if let Some(symbol) = &args.symbol {
        options = options.symbol(symbol.clone());
    }
    let (info, bars) = data::load(&args.klines, &options)?;
    let interval_ms = info
        .interval_ms
        .with_context(|| format!("{}: one bar is not a market (the interval is unknown)", args.klines.display()))?;
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
    bybit_server::run(args, &info.symbol, klines)?;
    Ok(ExitCode::SUCCESS)
}
