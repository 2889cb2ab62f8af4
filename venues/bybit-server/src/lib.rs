//! A local Bybit v5 server: REST and WebSocket on loopback, replaying klines as its market.
//! (Skeleton: bodies to come.)

use std::path::PathBuf;

use journal::event::Kline;

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
    /// Starting USDT of every account.
    #[arg(long, default_value = "10000")]
    pub balance: String,
    /// The one key the server accepts (default: any key, with the secret below).
    #[arg(long)]
    pub api_key: Option<String>,
    #[arg(long)]
    pub api_secret: Option<String>,
    /// Fault injection, e.g. "drop_ws=0.01,lose_response=0.05,http_5xx=0.02,late_ack=0.1,dup_ws=0.05,skew_ms=3000".
    #[arg(long)]
    pub faults: Option<String>,
    /// Seeds the faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Every accepted order and every execution, as JSON Lines.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

/// Runs the server on `klines` (already read and checked by the caller) until killed.
/// Prints its REST and WebSocket base URLs on the first line of stdout.
///
/// # Errors
/// Bad arguments or a socket that cannot be bound.
#[allow(unused_variables)]
pub fn run(args: &Args, symbol: &str, klines: Vec<Kline>) -> anyhow::Result<()> {
    todo!()
}
