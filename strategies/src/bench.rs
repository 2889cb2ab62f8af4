//! `quantfold bench sandbox`: what running strategies through the runtime costs,
//! measured against bare QuickJS calls in the same run (machines here are shared
//! and noisy, so the ratio is what to read).
//!
//! * **Runtime rate**: `sma_cross_every_bar.js` (a JavaScript call on every bar, which is
//!   what this measures; `sma_cross.js` is woken only on crosses) on one symbol, driven as the backtest drives it
//!   (each bar journaled into a [`FoldSink`], then routed by [`Worker::on_input`]: tick
//!   conversion, the hook call, `ctx.api` reads, the journaled state changes, records and
//!   orders). Market orders are filled at the bar close between bars, outside the timing.
//! * **Bare rate**: `function st_heartbeat(ctx, t) { return t.close; }` through
//!   [`Sandbox::call`] with a no-op [`Host`] and the same tick object.
//! * **Worker latency**: one worker carrying `strategies` sma_cross instances, one symbol
//!   per trader, one closed bar per symbol per simulated second. Each bar is one journaled
//!   input routed to exactly one strategy, so a heartbeat's wall latency is the time of
//!   its `Worker::on_input` (routing across all strategies included). One symbol per trader
//!   models independent strategies better than one shared symbol fanned out to all of them:
//!   every strategy sees its own prices and trades at its own moments, and the driver pays
//!   for `strategies` journaled inputs per second rather than one.
//!
//! Both rates are measured in alternating rounds so that a noisy neighbour hurts both alike.

use std::time::{Duration, Instant};

use journal::{
    event::{Event, Fill, Instrument, Kline, Liquidity, TraderStart},
    state::OrderStatus,
    Cloid,
};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};

use crate::{
    market::tick_json,
    runtime::StrategySpec,
    sandbox::{Hook, Host, Sandbox, SandboxConfig},
    sink::{FoldSink, Sink},
    worker::Worker,
};

/// The strategy measured.
pub const SMA_CROSS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/sma_cross_every_bar.js"));
/// Heartbeats per rate measurement for the CLI's default (about 10 s in a release build).
pub const DEFAULT_HEARTBEATS: u64 = 100_000;
/// Strategies in the worker-latency measurement for the CLI's default.
pub const DEFAULT_STRATEGIES: usize = 1000;
/// The runtime should keep at least this share of the bare call rate.
pub const RATIO_TARGET: f64 = 0.3;
/// A heartbeat's p99 latency should stay below this.
pub const P99_TARGET_US: u64 = 1000;

const BARE: &str = "function st_heartbeat(ctx, t) { return t.close; }";
const SECOND: i64 = 1000;
const T0: i64 = 1_700_000_000_000;
const ROUNDS: u64 = 4;

/// Runs the sandbox benchmark (see the module docs): `heartbeats` per rate measurement,
/// `strategies` in the worker-latency measurement (simulated seconds: `heartbeats /
/// strategies`, within 10..=120). Returns the report as JSON.
///
/// # Panics
/// When the runtime itself fails (a sink error, or sma_cross failing to load): a broken
/// benchmark must not print numbers.
pub fn sandbox(heartbeats: u64, strategies: usize) -> Json {
    let heartbeats = heartbeats.max(ROUNDS);
    let strategies = strategies.max(1);

    // (a) and (b), in alternating rounds.
    let mut runtime = SingleRun::new();
    let mut bare = BareRun::new();
    runtime.step(200);
    bare.step(200);
    let (mut runtime_time, mut bare_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    for round in 0..ROUNDS {
        let n = heartbeats / ROUNDS + u64::from(round < heartbeats % ROUNDS);
        runtime_time += runtime.step(n);
        bare_time += bare.step(n);
        done += n;
    }
    let runtime_rate = done as f64 / runtime_time.as_secs_f64();
    let bare_rate = done as f64 / bare_time.as_secs_f64();
    let ratio = runtime_rate / bare_rate;
    let single = runtime.worker.report().remove(0);
    let single_state = &runtime.sink.state().traders[TRADER];

    // (d)
    let seconds = (heartbeats / strategies as u64).clamp(10, 120);
    let fleet = fleet(strategies, seconds);

    json!({
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "sma_cross_runtime": {
            "heartbeats": done,
            "per_s": runtime_rate.round(),
            "us_per_heartbeat": round3(1e6 / runtime_rate),
            "orders_submitted": single_state.stats.orders_submitted,
            "fills": single_state.stats.fills,
            "errors": single.errors,
            "memory_bytes": single.memory_bytes,
        },
        "bare_quickjs_call": {
            "calls": done,
            "per_s": bare_rate.round(),
            "us_per_call": round3(1e6 / bare_rate),
            "source": BARE,
        },
        "runtime_vs_bare_ratio": round3(ratio),
        "ratio_target": RATIO_TARGET,
        "ratio_ok": ratio >= RATIO_TARGET,
        "worker": fleet,
    })
}

const TRADER: &str = "sma";

/// The instrument every benchmark symbol trades as.
fn instrument(symbol: &str) -> Instrument {
    Instrument {
        symbol: symbol.to_owned(),
        tick_size: Decimal::new(1, 2),
        qty_step: Decimal::new(1, 3),
        min_qty: Decimal::new(1, 3),
        max_leverage: Decimal::from(10),
        maintenance_margin_rate: Decimal::new(5, 3),
        taker_fee_rate: Decimal::new(5, 4),
        maker_fee_rate: Decimal::new(2, 4),
    }
}

fn start() -> TraderStart {
    TraderStart {
        exchange: "sim".into(),
        account: "bench".into(),
        currency: "USDT".into(),
        allocation_pct: Decimal::ONE_HUNDRED,
        capital_quote: Decimal::from(10_000),
        leverage: Decimal::ONE,
    }
}

/// Deterministic synthetic prices: a slow sine plus a seeded random walk, so the
/// averages cross now and then (and sma_cross trades).
struct Prices {
    state: u64,
    walk: f64,
    phase: f64,
    step: u64,
}

impl Prices {
    fn new(seed: u64) -> Prices {
        Prices { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, walk: 0.0, phase: (seed % 97) as f64, step: 0 }
    }

    fn next(&mut self) -> Decimal {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        self.walk = (self.walk + (r - 0.5) * 0.4) * 0.995;
        self.step += 1;
        let price = 100.0 + 5.0 * (self.step as f64 / 25.0 + self.phase).sin() + self.walk;
        Decimal::new((price * 100.0).round() as i64, 2)
    }
}

fn kline(symbol: &str, open_time_ms: i64, interval_ms: i64, close: Decimal) -> Kline {
    Kline {
        symbol: symbol.to_owned(),
        interval_ms,
        open_time_ms,
        open: close,
        high: close,
        low: close,
        close,
        volume: Decimal::ONE,
        closed: true,
    }
}

/// The exchange of the benchmark: accepts every new order and fills it at the
/// symbol's mark (outside the timed part).
fn fill_new_orders(sink: &mut FoldSink, worker: &mut Worker, time_ms: i64) {
    let mut new: Vec<(String, Cloid, String, journal::event::Side, Decimal)> = Vec::new();
    for (trader, t) in &sink.state.traders {
        for o in t.orders.values().filter(|o| o.status == OrderStatus::Submitted) {
            new.push((trader.clone(), o.intent.cloid, o.intent.symbol.clone(), o.intent.side, o.intent.qty));
        }
    }
    for (n, (trader, cloid, symbol, side, qty)) in new.into_iter().enumerate() {
        let price = sink.state.mark(&symbol).unwrap_or(Decimal::ONE_HUNDRED);
        let fee = (qty * price * Decimal::new(5, 4)).round_dp(8);
        let accepted = Event::OrderAccepted { cloid, exchange_order_id: format!("x{time_ms}-{n}") };
        let filled = Event::OrderFilled(Fill {
            cloid,
            fill_id: format!("f{time_ms}-{n}"),
            symbol,
            side,
            qty,
            price,
            fee_quote: fee,
            liquidity: Liquidity::Taker,
        });
        for event in [accepted, filled] {
            input(sink, worker, time_ms, &trader, event);
        }
    }
}

fn input(sink: &mut FoldSink, worker: &mut Worker, time_ms: i64, trader: &str, event: Event) {
    let seq = sink.emit(time_ms, trader, &event).expect("a FoldSink does not fail");
    worker.on_input(sink, seq, time_ms, trader, &event).expect("a FoldSink does not fail");
}

/// (a): one sma_cross on one symbol through the runtime.
struct SingleRun {
    sink: FoldSink,
    worker: Worker,
    prices: Prices,
    open_time_ms: i64,
}

/// Drives `bars` seeded bars through `source` (loaded as `file`) as the runtime-rate
/// measurement does, and returns the time they took (journaling and routing, as
/// [`SingleRun::step`] counts it): `quantfold bench sandbox --strategy FILE`, for profiling one
/// strategy under callgrind, where instruction counts are not noisy.
///
/// # Errors
/// When the strategy does not load, or stops.
pub fn drive(file: &str, source: &str, bars: u64) -> Result<Duration, String> {
    let mut run = SingleRun::try_with(file, source)?;
    let spent = run.step(bars);
    match run.worker.report()[0].stopped.clone() {
        Some(reason) => Err(format!("{file} stopped: {reason}")),
        None => Ok(spent),
    }
}

impl SingleRun {
    fn new() -> SingleRun {
        SingleRun::try_with("sma_cross_every_bar.js", SMA_CROSS).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_with(file: &str, source: &str) -> Result<SingleRun, String> {
        let mut sink = FoldSink::new();
        let mut worker = Worker::new();
        input(&mut sink, &mut worker, T0, "", Event::InstrumentDefined(instrument("BTCUSDT")));
        input(&mut sink, &mut worker, T0, TRADER, Event::TraderStarted(start()));
        let spec = StrategySpec::new(TRADER, file, source.to_owned(), Json::Null, 1);
        worker.load(spec, &mut sink, T0).expect("a FoldSink does not fail");
        if let Some(reason) = &worker.report()[0].stopped {
            return Err(format!("{file} failed to load: {reason}"));
        }
        Ok(SingleRun { sink, worker, prices: Prices::new(1), open_time_ms: T0 })
    }

    /// `n` bars; returns the time spent journaling and routing them.
    fn step(&mut self, n: u64) -> Duration {
        let mut spent = Duration::ZERO;
        for _ in 0..n {
            let close_ms = self.open_time_ms + 60_000;
            let bar = kline("BTCUSDT", self.open_time_ms, 60_000, self.prices.next());
            self.open_time_ms = close_ms;
            let started = Instant::now();
            input(&mut self.sink, &mut self.worker, close_ms, "", Event::KlineReceived(bar));
            spent += started.elapsed();
            fill_new_orders(&mut self.sink, &mut self.worker, close_ms);
        }
        spent
    }
}

/// A host that answers nothing.
struct NoopHost;

impl Host for NoopHost {
    fn now_ms(&self) -> i64 {
        T0
    }

    fn api(&mut self, _method: &str, _args: Vec<Json>) -> Result<Json, String> {
        Ok(Json::Null)
    }
}

/// (b): a trivial heartbeat called directly.
struct BareRun {
    sandbox: Sandbox,
    tick: Json,
}

impl BareRun {
    fn new() -> BareRun {
        let sandbox = Sandbox::load("bare.js", BARE, SandboxConfig::default()).expect("the bare strategy loads");
        let tick = tick_json(&kline("BTCUSDT", T0, 60_000, Decimal::new(10_012, 2)));
        BareRun { sandbox, tick }
    }

    fn step(&mut self, n: u64) -> Duration {
        let mut host = NoopHost;
        let started = Instant::now();
        for _ in 0..n {
            let out =
                self.sandbox.call(Hook::Heartbeat, Some(self.tick.clone()), &mut host).expect("the bare call succeeds");
            std::hint::black_box(out);
        }
        started.elapsed()
    }
}

/// (d): `strategies` sma_cross instances in one worker, one symbol each, one bar per
/// symbol per simulated second.
fn fleet(strategies: usize, seconds: u64) -> Json {
    let mut sink = FoldSink::new();
    let mut worker = Worker::new();
    let names: Vec<(String, String)> = (0..strategies).map(|i| (format!("t{i:05}"), format!("S{i:05}USDT"))).collect();
    let load_started = Instant::now();
    for (trader, symbol) in &names {
        input(&mut sink, &mut worker, T0, "", Event::InstrumentDefined(instrument(symbol)));
        input(&mut sink, &mut worker, T0, trader, Event::TraderStarted(start()));
        let spec =
            StrategySpec::new(trader, "sma_cross_every_bar.js", SMA_CROSS.to_owned(), json!({ "symbol": symbol }), 1);
        worker.load(spec, &mut sink, T0).expect("a FoldSink does not fail");
    }
    let load_elapsed = load_started.elapsed();
    let loaded = worker.report();
    let memory: Vec<u64> = loaded.iter().map(|h| h.memory_bytes).collect();

    let mut prices: Vec<Prices> = (0..strategies).map(|i| Prices::new(i as u64 + 1)).collect();
    let mut latencies_us: Vec<u64> = Vec::with_capacity(strategies * seconds as usize);
    let mut second_ms: Vec<f64> = Vec::with_capacity(seconds as usize);
    for s in 0..seconds {
        let open_time_ms = T0 + s as i64 * SECOND;
        let close_ms = open_time_ms + SECOND;
        let mut this_second = Duration::ZERO;
        for ((_, symbol), price) in names.iter().zip(&mut prices) {
            let bar = Event::KlineReceived(kline(symbol, open_time_ms, SECOND, price.next()));
            let started = Instant::now();
            let seq = sink.emit(close_ms, "", &bar).expect("a FoldSink does not fail");
            let routed = Instant::now();
            worker.on_input(&mut sink, seq, close_ms, "", &bar).expect("a FoldSink does not fail");
            let done = Instant::now();
            latencies_us.push(micros(done - routed));
            this_second += done - started;
        }
        second_ms.push(this_second.as_secs_f64() * 1e3);
        fill_new_orders(&mut sink, &mut worker, close_ms);
    }

    let report = worker.report();
    let errors: u64 = report.iter().map(|h| h.errors).sum();
    let stopped = report.iter().filter(|h| h.stopped.is_some()).count();
    let orders: u64 = sink.state.traders.values().map(|t| t.stats.orders_submitted).sum();
    let memory_after: Vec<u64> = report.iter().map(|h| h.memory_bytes).collect();
    // The hook calls alone (the runtime's own health samples), to set routing apart.
    let mut call_p50: Vec<u64> = report.iter().filter_map(|h| h.latency_p50_us).collect();
    call_p50.sort_unstable();
    let call_p99_max = report.iter().filter_map(|h| h.latency_p99_us).max().unwrap_or(0);
    latencies_us.sort_unstable();
    second_ms.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies_us, 99.0);
    let worst_second = second_ms.last().copied().unwrap_or(0.0);
    json!({
        "strategies": strategies,
        "mode": "one symbol per trader: each simulated second, one closed bar per symbol, each journaled and routed to its one subscriber",
        "simulated_seconds": seconds,
        "heartbeats": latencies_us.len(),
        "heartbeat_latency_us": {
            "p50": percentile(&latencies_us, 50.0),
            "p99": p99,
            "max": latencies_us.last().copied().unwrap_or(0),
            "measured": "Worker::on_input of one bar: routing over all strategies, the hook call, and journaling its decisions",
        },
        "hook_call_only_us": {
            "median_of_p50": percentile(&call_p50, 50.0),
            "max_of_p99": call_p99_max,
            "measured": "Sandbox::call inside the runtime (its health samples): the difference to the heartbeat latency is routing and journaling",
        },
        "p99_target_us": P99_TARGET_US,
        "p99_under_target": p99 < P99_TARGET_US,
        "wall_ms_per_simulated_second": {
            "p50": round3(percentile_f(&second_ms, 50.0)),
            "max": round3(worst_second),
        },
        "keeps_up_with_real_time": worst_second < 1000.0,
        "memory_per_sandbox_bytes": {
            "after_load_mean": mean(&memory),
            "after_load_max": memory.iter().copied().max().unwrap_or(0),
            "at_end_mean": mean(&memory_after),
            "at_end_max": memory_after.iter().copied().max().unwrap_or(0),
        },
        "load_ms_per_strategy": round3(load_elapsed.as_secs_f64() * 1e3 / strategies as f64),
        "orders_submitted": orders,
        "errors": errors,
        "stopped": stopped,
    })
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn percentile_f(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn mean(values: &[u64]) -> u64 {
    if values.is_empty() {
        0
    } else {
        values.iter().sum::<u64>() / values.len() as u64
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_sandbox_reports_every_field() {
        let report = sandbox(200, 5);
        println!("{report:#}");
        let positive = |v: &Json| v.as_f64().is_some_and(|x| x > 0.0 && x.is_finite());
        assert!(positive(&report["sma_cross_runtime"]["per_s"]), "{report:#}");
        assert!(positive(&report["bare_quickjs_call"]["per_s"]), "{report:#}");
        assert!(positive(&report["runtime_vs_bare_ratio"]), "{report:#}");
        assert_eq!(report["sma_cross_runtime"]["heartbeats"], json!(200));
        assert_eq!(report["sma_cross_runtime"]["errors"], json!(0));
        assert!(report["ratio_ok"].is_boolean());
        // The synthetic prices make sma_cross trade, and the fills come back.
        assert!(report["sma_cross_runtime"]["orders_submitted"].as_u64().unwrap() > 0, "{report:#}");
        assert!(report["sma_cross_runtime"]["fills"].as_u64().unwrap() > 0, "{report:#}");

        let worker = &report["worker"];
        assert_eq!(worker["strategies"], json!(5));
        assert_eq!(worker["simulated_seconds"], json!(40));
        assert_eq!(worker["heartbeats"], json!(200));
        let latency = &worker["heartbeat_latency_us"];
        let (p50, p99, max) =
            (latency["p50"].as_u64().unwrap(), latency["p99"].as_u64().unwrap(), latency["max"].as_u64().unwrap());
        assert!(p50 <= p99 && p99 <= max, "{report:#}");
        assert!(worker["p99_under_target"].is_boolean() && worker["keeps_up_with_real_time"].is_boolean());
        let memory = worker["memory_per_sandbox_bytes"]["after_load_mean"].as_u64().unwrap();
        assert!((10_000..64 * 1024 * 1024).contains(&memory), "{report:#}");
        assert_eq!((worker["errors"].clone(), worker["stopped"].clone()), (json!(0), json!(0)), "{report:#}");
        assert!(worker["orders_submitted"].as_u64().unwrap() > 0, "{report:#}");
    }

    /// The full measurement: `cargo test --release -p strategies bench_sandbox_defaults -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: run it in release"]
    fn bench_sandbox_defaults() {
        let started = Instant::now();
        let report = sandbox(DEFAULT_HEARTBEATS, DEFAULT_STRATEGIES);
        println!("{report:#}\ntook {:.1} s", started.elapsed().as_secs_f64());
    }

    #[test]
    fn synthetic_prices_are_deterministic_and_positive() {
        let (mut a, mut b) = (Prices::new(3), Prices::new(3));
        for _ in 0..10_000 {
            let p = a.next();
            assert_eq!(p, b.next());
            assert!(p > Decimal::ZERO);
        }
    }
}
