//! `quantfold bench live`: tick-to-wire latency of `quantfold live` against the local Bybit
//! or Hyperliquid server, with one strategy and with many, and the time a restart takes to
//! trade again; on Hyperliquid also the signing rate (L1 order actions a second).
//!
//! The server runs in this process (its own runtime), on seeded one-minute bars played
//! fast; the live session is the real one (`live::run_with`), with real sockets between
//! them. Every bar leads to exactly one order whatever the number of traders (the traders
//! take turns: `bench/strategies/order_every_bar.js`), so a bar's figure includes every
//! trader's heartbeat, the decision's journaling and its write-ahead flush. The baselines,
//! measured in the same run, are a signed REST round trip to the same server and one
//! journal record appended and synced (the write-ahead flush alone).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::json;

use crate::live::{self, Probe};

const STRATEGY: &str = include_str!("../bench/strategies/order_every_bar.js");
const HL_KEY_ENV: &str = "QF_BENCH_HL_KEY";
const KEY_ENV: &str = "QF_BENCH_BYBIT_KEY";
const SECRET_ENV: &str = "QF_BENCH_BYBIT_SECRET";
const KEY: &str = "qf-bench-key";
const SECRET: &str = "qf-bench-secret";
const BAR_MS: i64 = 60_000;
/// Wall time per bar: slow enough for one order a bar to stay well under the venue's limits.
const WALL_PER_BAR_MS: f64 = 120.0;
/// Hyperliquid's orders: limits 5 % away, which rest at once, small enough (about $11 each,
/// over the venue's $10 minimum) for 300 of them to rest within one trader's capital.
const LIMIT_PARAMS: &str = ", limit_offset = 0.05, qty = 0.0007";
/// Round trips for the baseline.
const BASELINE_ROUND_TRIPS: usize = 200;

/// Which venue's local server the session trades against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchVenue {
    Bybit,
    Hyperliquid,
}

/// A local venue server running in this process.
enum Server {
    Bybit(bybit_server::Server),
    Hyperliquid(hyperliquid_server::Server),
}

impl Server {
    fn bars_closed(&self) -> usize {
        match self {
            Server::Bybit(s) => s.bars_closed(),
            Server::Hyperliquid(s) => s.bars_closed(),
        }
    }

    async fn shutdown(self) {
        match self {
            Server::Bybit(s) => s.shutdown().await,
            Server::Hyperliquid(s) => s.shutdown().await,
        }
    }
}

pub struct LiveBench<'a> {
    pub venue: BenchVenue,
    /// Traders per configuration (e.g. 1 and 100).
    pub strategies: &'a [usize],
    /// Bars (one order each) per configuration.
    pub bars: usize,
    pub dir: Option<&'a Path>,
}

pub fn live(bench: &LiveBench<'_>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(bench.bars >= 20, "--bars must be at least 20");
    anyhow::ensure!(!bench.strategies.is_empty() && !bench.strategies.contains(&0), "--strategies must be positive");
    // Before any thread exists: the session reads its key from the environment, like a user's.
    std::env::set_var(KEY_ENV, KEY);
    std::env::set_var(SECRET_ENV, SECRET);
    std::env::set_var(HL_KEY_ENV, hyperliquid_server::config::DEFAULT_PRIVATE_KEY);
    let scratch = tempfile::tempdir_in(bench.dir.unwrap_or(&std::env::temp_dir())).context("scratch directory")?;
    let dir = scratch.path();
    let market = dir.join("bybit_BTCUSDT_1m.csv");
    // Some bars more than traded: the session needs a moment to connect before the clock runs.
    let bars = bench.bars + 10;
    let file = std::fs::File::create(&market).with_context(|| format!("failed to create {}", market.display()))?;
    backtest::data::synth(bars, BAR_MS, 7, 1_670_889_600_000, std::io::BufWriter::new(file))?;
    let (symbol, klines) = crate::venue_sim_cmd::klines(&market, None)?;
    let strategy = dir.join("order_every_bar.js");
    std::fs::write(&strategy, STRATEGY)?;
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("the server's runtime")?;

    let mut configurations = Vec::new();
    for &traders in bench.strategies {
        let speed = BAR_MS as f64 / WALL_PER_BAR_MS;
        let (server, baseline, config_path) = match bench.venue {
            BenchVenue::Bybit => {
                let config = bybit_server::Config {
                    speed,
                    hold: true,
                    balance: rust_decimal::Decimal::from(1_000_000),
                    api_key: KEY.into(),
                    api_secret: SECRET.into(),
                    partial_above: rust_decimal::Decimal::ZERO,
                    ..bybit_server::Config::default()
                };
                let server = server_runtime.block_on(bybit_server::start(config, &symbol, klines.clone()))?;
                let baseline = server_runtime.block_on(round_trips(&server.rest_url()))?;
                let venue = format!(
                    "kind = \"bybit\"\nrest_url = \"{}\"\nws_url = \"{}\"\nkey_env = \"{KEY_ENV}\"\nsecret_env = \"{SECRET_ENV}\"",
                    server.rest_url(),
                    server.ws_url()
                );
                let config_path = write_config(dir, traders, &venue, "BTCUSDT", "", &strategy)?;
                (Server::Bybit(server), baseline, config_path)
            }
            BenchVenue::Hyperliquid => {
                let config = hyperliquid_server::config::Config {
                    speed,
                    hold: true,
                    balance: rust_decimal::Decimal::from(1_000_000),
                    partial_above: rust_decimal::Decimal::ZERO,
                    ..hyperliquid_server::config::Config::default()
                };
                let server = server_runtime.block_on(hyperliquid_server::start(config, "BTC", klines.clone()))?;
                let baseline = server_runtime.block_on(hl_round_trips(&server.rest_url()))?;
                let venue =
                    format!("kind = \"hyperliquid\"\nrest_url = \"{}\"\nkey_env = \"{HL_KEY_ENV}\"", server.rest_url());
                // Limit orders 5 % away, which rest at once: the local Hyperliquid answers an `Ioc`
                // (a market order) only when its bar closes, which would time the bar, not the wire.
                let config_path = write_config(dir, traders, &venue, "BTC", LIMIT_PARAMS, &strategy)?;
                (Server::Hyperliquid(server), baseline, config_path)
            }
        };
        let syncs = journal_syncs(&dir.join(format!("sync-{traders}")))?;
        let config = live::config::load(&config_path)?;
        let journal = dir.join(format!("journal-{traders}"));

        let probe = Arc::new(Probe::default());
        let session = {
            let (config, journal, probe) = (config.clone(), journal.clone(), probe.clone());
            std::thread::spawn(move || live::run_with(&config, &journal, false, Some(probe), None, None))
        };
        let deadline = Instant::now() + Duration::from_millis((bars as f64 * WALL_PER_BAR_MS) as u64 + 60_000);
        while probe.to_answer.lock().map_or(0, |s| s.len()) < bench.bars
            && server.bars_closed() < bars
            && Instant::now() < deadline
            && !session.is_finished()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        probe.stop.store(true, Ordering::Relaxed);
        session.join().map_err(|_| anyhow::anyhow!("the live session panicked"))??;

        // A restart on the journal just written: from the process's start to trading.
        let again = Arc::new(Probe::default());
        again.stop.store(true, Ordering::Relaxed);
        live::run_with(&config, &journal, false, Some(again.clone()), None, None)?;
        let restart = again.started.lock().ok().and_then(|s| *s);
        let events = journal::Journal::open(&journal, journal::Durability::EveryAppend).map(|j| j.len()).unwrap_or(0);
        server_runtime.block_on(server.shutdown());

        let to_request = summary(&probe.to_request.lock().map(|s| s.clone()).unwrap_or_default());
        let to_answer = summary(&probe.to_answer.lock().map(|s| s.clone()).unwrap_or_default());
        configurations.push(json!({
            "strategies": traders,
            "tick_to_request_us": to_request,
            "tick_to_venue_answer_us": to_answer,
            baseline_name(bench.venue): summary(&baseline),
            "baseline_journal_append_and_sync_us": summary(&syncs),
            "p99_ratio_tick_to_request_over_journal_sync": ratio(&to_request, &summary(&syncs)),
            "restart_to_trading_ms": restart.map(|d| round3(d.as_secs_f64() * 1e3)),
            "journal_events": events,
        }));
    }
    let signing = (bench.venue == BenchVenue::Hyperliquid).then(signing_rate).transpose()?;
    let report = json!({
        "bench": "live",
        "venue": format!("{:?}", bench.venue).to_lowercase(),
        "signing": signing,
        "what": "tick_to_request: a kline frame read off the socket -> its order handed to the REST client, \
                 decision and write-ahead flush included (on Hyperliquid before signing: see signing); \
                 tick_to_venue_answer: -> the local server's answer to that create (Bybit: market orders; \
                 Hyperliquid: limit orders 5 % away, which rest at once); baselines, same run: a signed GET \
                 (Bybit) or an /info read (Hyperliquid) round trip to the same server, and one record appended \
                 and synced (the write-ahead flush alone)",
        "bars": bench.bars,
        "configurations": configurations,
    });
    say!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Bybit's baseline is a signed `GET`; Hyperliquid's an `/info` read (reads are not signed).
fn baseline_name(venue: BenchVenue) -> &'static str {
    match venue {
        BenchVenue::Bybit => "baseline_signed_round_trip_us",
        BenchVenue::Hyperliquid => "baseline_info_round_trip_us",
    }
}

fn write_config(
    dir: &Path,
    traders: usize,
    venue: &str,
    symbol: &str,
    params: &str,
    strategy: &Path,
) -> anyhow::Result<PathBuf> {
    let mut text = format!("[venue]\n{venue}\n\n[journal]\ndurability = \"group\"\n");
    for phase in 0..traders {
        text.push_str(&format!(
            "\n[[trader]]\nid = \"t{phase:03}\"\nstrategy = \"{}\"\nsymbols = [\"{symbol}\"]\ninterval = \"1m\"\ncapital = \"5000\"\nparams = {{ every = {traders}, phase = {phase}{params} }}\n",
            strategy.display()
        ));
    }
    let path = dir.join(format!("live-{traders}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Signed `GET /v5/position/list` round trips: signing, the socket, the server's work. Spaced
/// out, so the client's own rate-limit pacing never waits.
async fn round_trips(rest_url: &str) -> anyhow::Result<Vec<Duration>> {
    let endpoints = bybit::Endpoints::local(rest_url, "ws://127.0.0.1:1");
    let rest = bybit::Rest::new(&endpoints, Some(bybit::Credentials::new(KEY, SECRET)), bybit::RestOptions::default());
    rest.sync_time().await?;
    let mut samples = Vec::with_capacity(BASELINE_ROUND_TRIPS);
    for _ in 0..BASELINE_ROUND_TRIPS {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let start = Instant::now();
        rest.positions("BTCUSDT").await?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

/// `POST /info` `clearinghouseState` round trips to the local Hyperliquid server (the
/// socket and the server's work; reads are not signed), spaced out under the weight budget.
async fn hl_round_trips(rest_url: &str) -> anyhow::Result<Vec<Duration>> {
    let endpoints = hyperliquid::Endpoints::local(rest_url, hyperliquid::Network::Testnet);
    let rest = hyperliquid::Rest::new(&endpoints, None, None, hyperliquid::RestOptions::default())?;
    let user = hyperliquid_server::config::default_wallet();
    let mut samples = Vec::with_capacity(BASELINE_ROUND_TRIPS);
    for _ in 0..BASELINE_ROUND_TRIPS {
        // 2 weight each: 200 in 24 s stay under the 1200 a minute with the session's to come.
        tokio::time::sleep(Duration::from_millis(120)).await;
        let start = Instant::now();
        rest.clearinghouse_state(user).await?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

/// L1 order actions signed a second: msgpack, keccak, the EIP-712 digest and the secp256k1
/// signature with recovery id, for one limit order with a cloid, as the order task signs.
fn signing_rate() -> anyhow::Result<serde_json::Value> {
    const ACTIONS: u64 = 2_000;
    let wallet = hyperliquid::Wallet::from_hex(hyperliquid_server::config::DEFAULT_PRIVATE_KEY)?;
    let asset = hyperliquid::types::AssetRef { asset: 0, sz_decimals: 5 };
    let start = Instant::now();
    for n in 0..ACTIONS {
        let cloid = journal::event::Cloid::derive("bench", n, 0);
        let price = rust_decimal::Decimal::new(17_000 + (n % 100) as i64, 0);
        let order = hyperliquid::types::OrderWire::limit(
            asset,
            journal::event::Side::Buy,
            price,
            rust_decimal::Decimal::new(1, 3),
            hyperliquid::types::Tif::Gtc,
            false,
            Some(cloid),
        )?;
        let nonce = 1_796_000_000_000 + n;
        std::hint::black_box(hyperliquid::ExchangeRequest::sign(
            &wallet,
            hyperliquid::Action::orders(vec![order]),
            nonce,
            None,
            None,
            hyperliquid::Network::Testnet,
        )?);
    }
    let took = start.elapsed();
    Ok(json!({
        "actions": ACTIONS,
        "seconds": round3(took.as_secs_f64()),
        "actions_per_s": round3(ACTIONS as f64 / took.as_secs_f64()),
    }))
}

/// The write-ahead flush alone: one small record appended and synced, as the engine syncs
/// before handing an order to the venue. The floor of tick-to-wire on this disk.
fn journal_syncs(dir: &Path) -> anyhow::Result<Vec<Duration>> {
    let mut journal = journal::Journal::create(dir, journal::Durability::GROUP_DEFAULT)?;
    let mut samples = Vec::with_capacity(BASELINE_ROUND_TRIPS);
    for n in 0..BASELINE_ROUND_TRIPS {
        let event = journal::Event::StrategyStopRequested { reason: format!("baseline {n}") };
        let start = Instant::now();
        journal.append(n as i64, "bench", &event)?;
        journal.sync()?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

/// p50, p99 and max in microseconds, with the sample count.
fn summary(samples: &[Duration]) -> serde_json::Value {
    let mut us: Vec<u64> = samples.iter().map(|d| d.as_micros().min(u128::from(u64::MAX)) as u64).collect();
    us.sort_unstable();
    let at = |q: f64| us.get(((us.len().saturating_sub(1)) as f64 * q).round() as usize).copied();
    json!({ "samples": us.len(), "p50": at(0.5), "p99": at(0.99), "max": us.last() })
}

fn ratio(a: &serde_json::Value, b: &serde_json::Value) -> Option<f64> {
    Some(round3(a["p99"].as_f64()? / b["p99"].as_f64()?.max(1.0)))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
