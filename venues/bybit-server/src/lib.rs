//! A local Bybit v5 server: REST and WebSocket on loopback, replaying klines as its market.
//!
//! The official client (`pybit`) and our own adapter talk to it unchanged, with only the base
//! URL changed, so the live driver can be tested end to end against an exchange whose fills are
//! known in advance: they are the backtest's.
//!
//! # What it models
//! - **A market of one symbol**: the klines are market time. The market clock is the first
//!   played bar's open plus wall time × `speed`; `history` bars are already closed at start. When
//!   a bar's end passes, resting orders are settled against it, their private messages are pushed,
//!   and a few ms later the bar itself (`kline.{interval}.{symbol}`, `confirm: true`). After the
//!   last bar the market stands still; REST keeps answering.
//! - **One account** (one API key, one UID) holding a `journal::State` in which the account is one
//!   trader. Orders are folded into it as `OrderSubmitted` stamped with the **open** of the bar in
//!   progress, and the bar's settlement is `sim::on_bar`: the same fill rules, prices and fees as
//!   `quantfold backtest` (zero slippage), so a kline file gives the same fills through this server
//!   as through a backtest. On top of the sim, a fill larger than `partial_above` × the bar's
//!   volume fills only that much this bar; the rest keeps resting.
//! - **Bybit's wire protocol** as VENUES.md §1–2 describe it: v5 signing and `recv_window`, the
//!   response envelope, retCodes and retMsgs, per-UID rolling rate limits with `X-Bapi-Limit*`
//!   headers, the public and private WebSocket ops, topics and envelopes.
//! - **Faults** ([`faults`]), drawn from ChaCha streams seeded by `seed`: dropped sockets,
//!   lost or late responses, 5xx, duplicate pushes, a skewed auth clock.
//! - **A ground-truth log** ([`log`]): every accepted order and every execution as JSON Lines.
//!
//! # What it does not model
//! An order book (fills come from bars only), other symbols and categories, hedge mode
//! (`positionIdx` must be 0), amend, batch endpoints, stop-limit orders (a `triggerPrice` makes a
//! stop-market order), take-profit/stop-loss attachments, funding (the klines carry none), the IP
//! rate limit and its 403, order entry over WebSocket, and `confirm: false` mid-bar klines (the
//! server pushes only closed bars: nothing of a bar is known before it ends).
//!
//! Times in orders, executions and positions are **market** time (the klines' clock); the REST
//! envelope's `time`, `/v5/market/time` and authentication use the wall clock (plus `skew_ms`).
//!
//! # Keys
//! Without `--api-key`/`--api-secret` the server accepts the key [`DEFAULT_API_KEY`] with the
//! secret [`DEFAULT_API_SECRET`]; the secret may also come from `BYBIT_SERVER_API_SECRET`.
//!
//! # Layout
//! - [`config`]: the settings, from the command line or built in code.
//! - [`market`]: the kline clock and the public kline views.
//! - [`account`]: the account's ledger, order validation, settlement and the v5 views of orders,
//!   executions, positions and the wallet.
//! - [`auth`]: v5 request signing and WebSocket auth.
//! - [`error`]: a refused request's retCode and retMsg.
//! - [`ratelimit`]: per-UID rolling windows.
//! - [`rest`]: the HTTP endpoints.
//! - [`ws`]: the public and private WebSocket streams.
//! - [`faults`]: the fault spec and its seeded draws.
//! - [`log`]: the JSON Lines ground truth.
//! - [`views`]: the v5 JSON of orders, executions, positions and the wallet.
//! - [`server`]: start, the market's driver task and shutdown.

#![recursion_limit = "256"]

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use journal::event::Kline;
use rust_decimal::Decimal;

pub mod account;
pub mod auth;
pub mod config;
pub mod error;
pub mod faults;
pub mod log;
pub mod market;
pub mod ratelimit;
pub mod rest;
pub mod server;
pub mod views;
pub mod ws;

pub use config::{Config, DEFAULT_API_KEY, DEFAULT_API_SECRET};
pub use faults::Faults;
pub use server::{start, Server};

/// `quantfold venue-sim bybit ...`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The market: a kline file (CSV or Parquet, as `backtest --data` reads).
    #[arg(long)]
    pub klines: PathBuf,
    /// The symbol of the file's bars (default: from the file name).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Where to listen (loopback; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Market time per wall time: 60 plays a 1m bar each second.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Starting USDT of the account.
    #[arg(long, default_value = "10000")]
    pub balance: String,
    /// The one key the server accepts (default: qf-local-key).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Its secret (default: $BYBIT_SERVER_API_SECRET, else qf-local-secret).
    #[arg(long)]
    pub api_secret: Option<String>,
    /// Fault injection, e.g. "drop_ws=0.01,lose_response=0.05,http_5xx=0.02,late_ack=0.1,dup_ws=0.05,late_fills=0.2,skew_ms=3000".
    #[arg(long)]
    pub faults: Option<String>,
    /// Seeds the faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Every accepted order and every execution, as JSON Lines.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Bars already closed at start (served by REST kline queries, never traded).
    #[arg(long, default_value_t = 0)]
    pub history: usize,
    /// The market clock stands still until the first public `kline.*` subscription.
    #[arg(long)]
    pub hold: bool,
    /// Price tick.
    #[arg(long, default_value = "0.1")]
    pub tick: Decimal,
    /// Quantity step.
    #[arg(long, default_value = "0.001")]
    pub qty_step: Decimal,
    /// Minimum order quantity.
    #[arg(long, default_value = "0.001")]
    pub min_qty: Decimal,
    /// Minimum order notional in USDT.
    #[arg(long, default_value = "5")]
    pub min_notional: Decimal,
    /// Maximum leverage of the instrument.
    #[arg(long, default_value = "100")]
    pub max_leverage: Decimal,
    /// Taker fee rate.
    #[arg(long, default_value = "0.00055")]
    pub taker_fee: Decimal,
    /// Maker fee rate.
    #[arg(long, default_value = "0.0002")]
    pub maker_fee: Decimal,
    /// The account's leverage at start.
    #[arg(long, default_value = "10")]
    pub leverage: Decimal,
    /// A fill above this fraction of the bar's volume fills only that much this bar (0: never).
    #[arg(long, default_value = "0.25")]
    pub partial_above: Decimal,
}

/// Runs the server on `klines` (already read and checked by the caller) until killed.
/// Prints its REST and WebSocket base URLs on the first line of stdout:
/// `bybit-server rest=http://127.0.0.1:PORT ws=ws://127.0.0.1:PORT`.
///
/// # Errors
/// Bad arguments or a socket that cannot be bound.
pub fn run(args: &Args, symbol: &str, klines: Vec<Kline>) -> anyhow::Result<()> {
    let config = Config::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(async move {
        let server = start(config, symbol, klines).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "bybit-server rest={} ws={}", server.rest_url(), server.ws_url())
            .and_then(|()| stdout.flush())
            .context("failed to write the URLs to stdout")?;
        drop(stdout);
        tokio::signal::ctrl_c().await.context("failed to wait for ctrl-c")?;
        server.shutdown().await;
        Ok(())
    })
}
