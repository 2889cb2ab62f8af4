//! A local Hyperliquid server: `/info`, `/exchange` and `/ws` on loopback, replaying klines as
//! its market.
//!
//! The official Python SDK (`hyperliquid.info.Info`, `hyperliquid.exchange.Exchange`) and our
//! own adapter talk to it with only the base URL changed, so the live driver can be tested end
//! to end against a venue whose fills are known in advance: they are the backtest's.
//!
//! # What it models
//! - **A market of one perpetual** (the coin): the klines are market time, played at `speed`
//!   from the first played bar's open; `history` bars are already closed at start. When a bar's
//!   end passes, resting orders are settled against it, the user messages are pushed, and a few
//!   ms later the bar itself (`candle`). After the last bar the market stands still.
//! - **One account**: a `journal::State` in which the account is one trader, settled by the
//!   simulated exchange (`sim`), exactly as the Bybit server's ([`account`]): the same fills,
//!   prices and fees as `quantfold backtest` (zero slippage). An `Ioc` order (what the SDKs
//!   send as a market order) meets the next bar's open, and its `/exchange` answer waits for
//!   that bar; `Gtc`/`Alo` orders rest; a fill larger than `partial_above` × the bar's volume
//!   fills only that much this bar.
//! - **Hyperliquid's wire protocol** as VENUES.md §3 describes it: L1-action signatures checked
//!   by recovering the signer for this server's network (testnet by default), the accepted
//!   wallets, each signer's nonce set, the per-order error texts, the `{status, response}`
//!   envelope, the per-IP weight budget with HTTP 429, and the WebSocket channels.
//! - **Faults** ([`faults`]): the Bybit server's spec, seeded the same way.
//! - **A ground-truth log**: every accepted order and every fill as JSON Lines.
//!
//! # What it does not model
//! An order book (fills come from bars only; `l2Book` is not served), other coins and spot,
//! vaults and sub-accounts, `modify`/`batchModify`, TWAP, user-signed actions (transfers,
//! `approveAgent`), funding, the per-address action budget, post over WebSocket, liquidation
//! fills in `userFills` (a liquidation cancels the orders; the position is gone), trigger
//! semantics beyond stop-market (`sl`) and limit-at-trigger (`tp`), and candles in progress
//! (only closed bars are pushed or listed: nothing of a bar is known before it ends).
//!
//! An `Ioc` order's answer waits for the bar in progress to close: with `--hold` and no candle
//! watcher yet, it waits until the clock starts; after the last bar it is refused at once.
//!
//! Times of orders and fills are **market** time (the klines' clock); the nonce window and the
//! `time` of `clearinghouseState` use the wall clock (plus `skew_ms`).
//!
//! # Wallets
//! Without `--wallet` the server accepts the address of the key in `HYPERLIQUID_SERVER_PRIVATE_KEY`,
//! else of [`DEFAULT_PRIVATE_KEY`] (the Python SDK's published test key, `0x0123…0123`).
//!
//! # Layout
//! - [`config`]: the settings, from the command line or built in code.
//! - [`account`]: the ledger, order validation with the venue's texts, cancels, settlement.
//! - [`nonces`]: each signer's nonce set.
//! - [`ratelimit`]: the per-IP weight budget.
//! - [`rest`]: `/info` and `/exchange`.
//! - [`ws`]: the `/ws` channels.
//! - [`views`]: the venue's JSON of orders, fills, candles, state, and the log lines.
//! - [`faults`]: the fault spec (shared with the Bybit server).
//! - [`server`]: start, the market's driver task and shutdown.

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use journal::event::Kline;
use rust_decimal::Decimal;

pub mod account;
pub mod config;
pub mod faults;
pub mod nonces;
pub mod ratelimit;
pub mod rest;
pub mod server;
pub mod views;
pub mod ws;

pub use config::{default_wallet, Config, DEFAULT_PRIVATE_KEY, KEY_ENV};
pub use faults::Faults;
pub use server::{start, Server};

/// `quantfold venue-sim hyperliquid ...`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The market: a kline file (CSV or Parquet, as `backtest --data` reads).
    #[arg(long)]
    pub klines: PathBuf,
    /// The symbol of the file's bars (default: from the file name); the coin is its base
    /// (BTCUSDT trades as BTC).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Where to listen (loopback; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Market time per wall time: 60 plays a 1m bar each second.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Starting USDC of the account.
    #[arg(long, default_value = "10000")]
    pub balance: String,
    /// An address whose signatures act for the account (repeatable; the first is the account).
    /// Default: the address of $HYPERLIQUID_SERVER_PRIVATE_KEY, else of the SDK's test key 0x0123…0123.
    #[arg(long)]
    pub wallet: Vec<String>,
    /// Whose signatures are taken: testnet (source "b") or mainnet (source "a").
    #[arg(long, default_value = "testnet")]
    pub network: String,
    /// Fault injection, e.g. "drop_ws=0.01,lose_response=0.05,http_5xx=0.02,late_ack=0.1,dup_ws=0.05,late_fills=0.2,skew_ms=3000".
    #[arg(long)]
    pub faults: Option<String>,
    /// Seeds the faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Every accepted order and every fill, as JSON Lines.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Bars already closed at start (served by candleSnapshot, never traded).
    #[arg(long, default_value_t = 0)]
    pub history: usize,
    /// The market clock stands still until the first `candle` subscription.
    #[arg(long)]
    pub hold: bool,
    /// Decimals of a size (prices get 6 − this).
    #[arg(long, default_value_t = 5)]
    pub sz_decimals: u32,
    /// Maximum leverage of the coin.
    #[arg(long, default_value_t = 50)]
    pub max_leverage: u32,
    /// The account's leverage at start.
    #[arg(long, default_value_t = 20)]
    pub leverage: u32,
    /// A fill above this fraction of the bar's volume fills only that much this bar (0: never).
    #[arg(long, default_value = "0.25")]
    pub partial_above: Decimal,
    /// The per-IP weight budget a rolling minute (Hyperliquid's is 1200). Crash tests that
    /// restart a client every second, each start asking its questions afresh, raise it: the
    /// client's own budget stays the venue's.
    #[arg(long, default_value_t = 1200)]
    pub ip_weight_per_minute: u32,
}

/// The coin of a symbol: its base (BTCUSDT, BTCUSDC, BTC-PERP → BTC); a bare coin stays.
pub fn coin_of(symbol: &str) -> String {
    let upper = symbol.to_ascii_uppercase();
    for suffix in ["-PERP", "USDT", "USDC", "USD"] {
        if let Some(base) = upper.strip_suffix(suffix).filter(|b| !b.is_empty()) {
            return base.trim_end_matches(['-', '/', '_']).to_owned();
        }
    }
    upper
}

/// Runs the server on `klines` (already read and checked by the caller) until killed.
/// Prints its REST and WebSocket URLs on the first line of stdout:
/// `hyperliquid-server rest=http://127.0.0.1:PORT ws=ws://127.0.0.1:PORT/ws`.
///
/// # Errors
/// Bad arguments or a socket that cannot be bound.
pub fn run(args: &Args, symbol: &str, klines: Vec<Kline>) -> anyhow::Result<()> {
    let config = Config::from_args(args)?;
    let coin = coin_of(symbol);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(async move {
        let server = start(config, &coin, klines).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "hyperliquid-server rest={} ws={}", server.rest_url(), server.ws_url())
            .and_then(|()| stdout.flush())
            .context("failed to write the URLs to stdout")?;
        drop(stdout);
        tokio::signal::ctrl_c().await.context("failed to wait for ctrl-c")?;
        server.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn coins_of_symbols() {
        for (symbol, coin) in
            [("BTCUSDT", "BTC"), ("ethusdc", "ETH"), ("SOL-PERP", "SOL"), ("BTC", "BTC"), ("USDT", "USDT")]
        {
            assert_eq!(super::coin_of(symbol), coin, "{symbol}");
        }
    }
}
