//! The example strategies in `strategies/` run end to end on real fixture data.
//!
//! Each test runs a strategy through `backtest::run::run` and checks what it
//! did against its documented rules, recomputed here from the journal of the
//! run (the orders, fills and bars, re-folded into a ledger `State` event by
//! event) rather than from anything the strategy itself reported. Every run
//! must end cleanly: no ledger anomalies, no strategy errors, stopped only by
//! the end of the data.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use backtest::run::{self, Config, Outcome};
use journal::{
    event::{Event, OrderIntent, OrderKind, Side},
    Cloid, Durability, Envelope, Journal, State,
};
use rust_decimal::{prelude::ToPrimitive, Decimal};
use serde_json::{json, Value as Json};

const MINUTE: i64 = 60_000;
/// 1440 one-minute bars of BTCUSDT, 2022-12-13 (range 17091 to 17939).
const BYBIT_1M: &str = "bybit_BTCUSDT_1m_2022-12-13.csv";
/// Its first 120 bars.
const BYBIT_1M_HEAD: &str = "bybit_BTCUSDT_1m_2022-12-13_head.csv";
/// Hourly BTCUSD, 2017-07 to 2019-10.
const COINBASE_1H: &str = "coinbase_BTCUSD_1h_2017-07_2019-10.csv";
/// The LP exposure series derived from `BYBIT_1M` (see fixtures/external/README.md).
const LP_EXPOSURE: &str = "lp_exposure_BTCUSDT_2022-12-13.csv";
/// The instruments' quantity step (`run::default_instrument`).
const QTY_STEP: f64 = 1e-6;
/// The instruments' price tick.
const TICK: f64 = 1e-8;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn config(strategy: &str, klines: &str, params: Json) -> Config {
    let mut config =
        Config::new(root().join("strategies").join(strategy), vec![root().join("fixtures/klines").join(klines)]);
    config.params = params;
    config
}

fn ms(date: &str) -> i64 {
    // YYYY-MM-DD at 00:00 UTC.
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("a date");
    day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis()
}

fn f(d: Decimal) -> f64 {
    d.to_f64().expect("a finite decimal")
}

/// Runs and checks that the run ended cleanly.
fn run_clean(config: &Config) -> Outcome {
    let outcome = run::run(config, &mut |_| {}).expect("the backtest runs");
    assert_eq!(outcome.state.anomalies_total, 0, "ledger anomalies: {:?}", outcome.state.anomalies);
    assert_eq!(outcome.record.strategy_errors, 0, "strategy errors (stopped: {:?})", outcome.record.stopped);
    assert_eq!(outcome.record.stopped.as_deref(), Some("end of data"));
    assert_eq!(outcome.record.orders_rejected, 0, "rejected orders");
    outcome
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("quantfold-examples-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs with a journal and reads every event back.
fn run_journaled(config: &Config, tag: &str) -> (Outcome, Vec<Envelope>) {
    let scratch = Scratch::new(tag);
    let path = scratch.0.join("journal");
    let mut config = config.clone();
    config.journal = Some(path.clone());
    let outcome = run_clean(&config);
    let journal = Journal::open(&path, Durability::None).expect("the run's journal opens");
    let events: Vec<Envelope> = journal.records(0).collect::<Result<_, _>>().expect("the journal reads back");
    drop(journal);
    assert_eq!(outcome.journal.as_ref().map(|j| j.1), Some(events.len() as u64));
    // The journal is the whole truth: folding it again gives the run's final state.
    assert_eq!(State::fold(&events).digest(), outcome.state.digest(), "refolded journal differs from the run's state");
    (outcome, events)
}

fn position(state: &State, trader: &str, symbol: &str) -> Decimal {
    state.traders.get(trader).and_then(|t| t.positions.get(symbol)).map_or(Decimal::ZERO, |p| p.qty)
}

fn entry_price(state: &State, trader: &str, symbol: &str) -> f64 {
    state.traders.get(trader).and_then(|t| t.positions.get(symbol)).map_or(0.0, |p| f(p.entry_price))
}

// --- the martingale grids ----------------------------------------------------

struct Grid {
    base: f64,
    step: f64,
    mult: f64,
    levels: u32,
    tp: f64,
    sl: f64,
    cooldown: i64,
}

impl Grid {
    /// grid_martingale.js's params for a long (`dir` +1) or short (−1) grid.
    fn params(&self, dir: f64) -> Json {
        json!({
            "direction": if dir > 0.0 { "long" } else { "short" },
            "baseQty": self.base, "stepPct": self.step, "multiplier": self.mult, "maxLevels": self.levels,
            "takeProfitPct": self.tp, "stopLossPct": self.sl, "cooldownBars": self.cooldown,
        })
    }

    /// baseQty·Σ multiplier^k for k < maxLevels.
    fn bound(&self) -> f64 {
        (0..self.levels).map(|k| self.base * self.mult.powi(k as i32)).sum()
    }
}

/// The parameters both grid tests use on `BYBIT_1M`: tight enough that the day
/// has take-profits, hard stops and cycles that fill every level.
fn test_grid() -> Grid {
    Grid { base: 0.01, step: 0.2, mult: 2.0, levels: 4, tp: 0.3, sl: 0.6, cooldown: 30 }
}

#[derive(Debug)]
struct Cycle {
    anchor: f64,
    opens: u32,
    last_open: f64,
    entry_qty: f64,
    entry_cost: f64,
    exit_qty: f64,
    exit_cost: f64,
    exits_all_limit: bool,
}

#[derive(Debug, Default)]
struct GridReport {
    take_profits: usize,
    stops: usize,
    max_abs: f64,
    cycles_closed: usize,
    /// Levels of a finished cycle that filled in the bar that finished it.
    strays: usize,
}

/// Replays a grid run's journal and checks every documented rule of the grid
/// (`dir` +1: a long grid, −1: a short one): the entry, the
/// levels' prices and sizes, the bound, take-profits at or beyond their target,
/// hard stops exactly on the closes beyond the stop, the cooldown after a stop,
/// and nothing else.
fn check_grid(trader: &str, dir: f64, g: &Grid, symbol: &str, outcome: &Outcome, events: &[Envelope]) -> GridReport {
    let (entry_side, exit_side) = if dir > 0.0 { (Side::Buy, Side::Sell) } else { (Side::Sell, Side::Buy) };
    let bound = g.bound();
    let mut state = State::default();
    let mut intents: BTreeMap<Cloid, OrderIntent> = BTreeMap::new();
    let mut cancel_requested: BTreeSet<Cloid> = BTreeSet::new();
    let mut cycle: Option<Cycle> = None;
    let mut report = GridReport::default();
    // What the heartbeats must do (recomputed here) and what they did, by close time.
    let (mut stops_expected, mut stops_placed) = (Vec::new(), Vec::new());
    let (mut entries_expected, mut entries_placed) = (Vec::new(), Vec::new());
    let (mut flattens_expected, mut flattens_placed) = (Vec::new(), Vec::new());
    let (mut pause_left, mut entry_pending, mut flatten_pending) = (0i64, false, false);

    for env in events {
        state.apply(env);
        match &env.event {
            Event::OrderSubmitted(intent) if env.trader == trader => {
                intents.insert(intent.cloid, intent.clone());
                if intent.kind == OrderKind::Market {
                    if intent.side == entry_side && !intent.reduce_only {
                        entries_placed.push(env.time_ms);
                    } else if intent.side == exit_side && intent.reduce_only {
                        if cycle.is_some() { &mut stops_placed } else { &mut flattens_placed }.push(env.time_ms);
                    } else {
                        panic!("unexpected market order at {}: {intent:?}", env.time_ms);
                    }
                } else {
                    assert_eq!(intent.kind, OrderKind::Limit, "only market and limit orders");
                    assert!(
                        intent.side == entry_side || intent.reduce_only,
                        "every exit-side order is reduce-only: {intent:?}"
                    );
                }
            }
            Event::OrderCancelRequested { cloid } if env.trader == trader => {
                cancel_requested.insert(*cloid);
            }
            Event::OrderFilled(fill) if env.trader == trader => {
                let intent = intents.get(&fill.cloid).expect("a fill of a journaled order");
                let held = f(position(&state, trader, symbol));
                assert!(
                    dir * held >= 0.0,
                    "{trader} holds {held} after the fill at {}: on the wrong side",
                    env.time_ms
                );
                assert!(held.abs() <= bound + 1e-9, "{trader} holds {held} > bound {bound} at {}", env.time_ms);
                report.max_abs = report.max_abs.max(held.abs());
                let (qty, price) = (f(fill.qty), f(fill.price));
                if fill.side == entry_side {
                    match cycle.as_mut() {
                        None if intent.kind == OrderKind::Limit => {
                            // A level of the cycle that just ended: its cancel was already on the way.
                            assert!(
                                cancel_requested.contains(&fill.cloid),
                                "a level filled outside a cycle without a cancel: {intent:?}"
                            );
                            // (Several may fill in that bar: one stray position, one trade.)
                            report.strays += usize::from((held.abs() - qty).abs() < 1e-12);
                        }
                        None => {
                            assert!((qty - g.base).abs() < 1e-12, "entry of {qty}, not baseQty {}", g.base);
                            entry_pending = false;
                            cycle = Some(Cycle {
                                anchor: price,
                                opens: 1,
                                last_open: price,
                                entry_qty: qty,
                                entry_cost: qty * price,
                                exit_qty: 0.0,
                                exit_cost: 0.0,
                                exits_all_limit: true,
                            });
                        }
                        Some(c) => {
                            let k = c.opens;
                            assert!(k < g.levels, "level {k} filled, but maxLevels is {}", g.levels);
                            assert_eq!(intent.kind, OrderKind::Limit, "grid levels are limit orders");
                            let level = c.anchor * (1.0 - dir * f64::from(k) * g.step / 100.0);
                            let limit = f(intent.price.expect("a limit price"));
                            assert!(
                                (limit - level).abs() <= TICK,
                                "level {k} rests at {limit}, expected {level} (anchor {})",
                                c.anchor
                            );
                            // Filled at its limit or better (better only on a gap at the open).
                            assert!(
                                dir * (price - limit) <= 0.0,
                                "level {k} filled at {price}, worse than its limit {limit}"
                            );
                            let expected = g.base * g.mult.powi(k as i32);
                            assert!(
                                expected - qty >= -1e-12 && expected - qty < QTY_STEP,
                                "level {k} size {qty}, expected {expected}"
                            );
                            c.opens += 1;
                            c.last_open = price;
                            c.entry_qty += qty;
                            c.entry_cost += qty * price;
                        }
                    }
                } else {
                    assert!(intent.reduce_only, "exit-side orders are reduce-only");
                    let Some(c) = cycle.as_mut() else {
                        // Closing a stray level.
                        assert_eq!(intent.kind, OrderKind::Market);
                        flatten_pending = held != 0.0;
                        continue;
                    };
                    c.exit_qty += qty;
                    c.exit_cost += qty * price;
                    c.exits_all_limit &= intent.kind == OrderKind::Limit;
                    if held == 0.0 {
                        let c = cycle.take().expect("the cycle");
                        assert!((c.exit_qty - c.entry_qty).abs() < 1e-9, "closed {} of {}", c.exit_qty, c.entry_qty);
                        let (entry, exit) = (c.entry_cost / c.entry_qty, c.exit_cost / c.exit_qty);
                        if c.exits_all_limit {
                            // A take-profit: the exit is at least takeProfitPct beyond the average entry.
                            let target = entry * (1.0 + dir * g.tp / 100.0);
                            assert!(
                                dir * (exit - target) >= -1e-6,
                                "take-profit exit {exit} short of {target} (entry {entry}) at {}",
                                env.time_ms
                            );
                            report.take_profits += 1;
                            pause_left = 0;
                        } else {
                            report.stops += 1;
                            pause_left = g.cooldown;
                        }
                        report.cycles_closed += 1;
                    }
                }
            }
            Event::PositionLiquidated { .. } if env.trader == trader => {
                panic!("{trader} was liquidated at {}", env.time_ms)
            }
            Event::KlineReceived(k) => {
                let held = position(&state, trader, symbol);
                match &cycle {
                    Some(c) => {
                        assert_ne!(held, Decimal::ZERO, "flat inside a cycle");
                        // The hard stop this close must trigger.
                        let reference =
                            if c.opens >= g.levels { c.last_open } else { entry_price(&state, trader, symbol) };
                        let stop = reference * (1.0 - dir * g.sl / 100.0);
                        if dir * (f(k.close) - stop) <= 0.0 {
                            stops_expected.push(env.time_ms);
                        }
                    }
                    None if pause_left > 0 => pause_left -= 1,
                    None if held != Decimal::ZERO => {
                        if !flatten_pending {
                            flattens_expected.push(env.time_ms);
                            flatten_pending = true;
                        }
                    }
                    None => {
                        if !entry_pending {
                            entries_expected.push(env.time_ms);
                            entry_pending = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    assert_eq!(stops_placed, stops_expected, "hard stops placed vs closes at or beyond the stop");
    assert_eq!(
        entries_placed, entries_expected,
        "entries: the first bar, the bar after a take-profit, cooldownBars after a stop"
    );
    assert_eq!(flattens_placed, flattens_expected, "stray levels closed at the next close");
    // What the strategy keeps in ctx.state to resume from agrees with the ledger.
    let kv = &outcome.state.traders[trader].strategy.as_ref().expect("a strategy").kv;
    let kept = &kv["grid"].0;
    match &cycle {
        Some(c) => {
            assert_eq!(kept["anchor"].as_f64(), Some(c.anchor), "{kept}");
            assert_eq!(kept["levels"].as_u64(), Some(u64::from(c.opens)), "{kept}");
            assert_eq!(kept["last"].as_f64(), Some(c.last_open), "{kept}");
            assert_eq!(kept["avg"].as_f64(), Some(entry_price(&outcome.state, trader, symbol)), "{kept}");
        }
        None => assert!(kept["anchor"].is_null(), "{kept}"),
    }
    assert_eq!(kept["cycles"].as_u64(), Some(report.cycles_closed as u64), "{kept}");
    // The report's trades are the same cycles (a stray level is a trade of its own).
    let trades = &outcome.record.trades;
    assert_eq!(trades.len(), report.cycles_closed + report.strays, "one trade per closed cycle");
    let side = if dir > 0.0 { "long" } else { "short" };
    assert!(trades.iter().all(|t| t.side == side && f(t.qty) <= bound + 1e-9), "trades: {trades:?}");
    report
}

/// The run of grid_martingale.js in one direction on `BYBIT_1M` with [`test_grid`].
fn grid_day(dir: f64) -> (Outcome, Vec<Envelope>) {
    let tag = if dir > 0.0 { "grid-long" } else { "grid-short" };
    run_journaled(&config("grid_martingale.js", BYBIT_1M, test_grid().params(dir)), tag)
}

#[test]
fn grid_martingale_follows_its_grid() {
    let g = test_grid();
    let (outcome, events) = grid_day(1.0);
    let report = check_grid("grid_martingale", 1.0, &g, "BTCUSDT", &outcome, &events);
    // What the long grid traded when it had a file of its own (before `direction`).
    assert_eq!(
        (outcome.record.trades.len(), outcome.record.final_equity.to_string()),
        (16, "10002.63375493699999".into())
    );
    // `direction` defaults to long.
    let mut params = g.params(1.0);
    params.as_object_mut().expect("an object").remove("direction");
    let default = run_clean(&config("grid_martingale.js", BYBIT_1M, params));
    assert_eq!(default.record.trades, outcome.record.trades);
    // Not vacuous: the day has take-profits and hard stops, and the grid was filled to its last level.
    assert!(report.take_profits >= 3 && report.stops >= 1, "{report:?}");
    assert!((report.max_abs - g.bound()).abs() < 1e-9, "the bound {} was never reached: {report:?}", g.bound());
}

#[test]
fn the_short_grid_mirrors_the_long_one_and_never_goes_long() {
    let g = test_grid();
    let (outcome, events) = grid_day(-1.0);
    let report = check_grid("grid_martingale", -1.0, &g, "BTCUSDT", &outcome, &events);
    // What short_martingale.js traded before it became `direction: "short"`.
    assert_eq!(
        (outcome.record.trades.len(), outcome.record.final_equity.to_string()),
        (14, "9962.08156273770008".into())
    );
    assert!(report.take_profits >= 3 && report.stops >= 1, "{report:?}");
    assert!((report.max_abs - g.bound()).abs() < 1e-9, "the bound {} was never reached: {report:?}", g.bound());
}

#[test]
fn grid_max_levels_bounds_the_position() {
    // The same day with fewer, wider levels: the bound moves with maxLevels and multiplier.
    for (levels, mult) in [(1, 2.0), (3, 1.5)] {
        let g = Grid { levels, mult, step: 0.25, ..test_grid() };
        for dir in [1.0, -1.0] {
            let (outcome, events) =
                run_journaled(&config("grid_martingale.js", BYBIT_1M, g.params(dir)), &format!("grid-{dir}-{levels}"));
            let report = check_grid("grid_martingale", dir, &g, "BTCUSDT", &outcome, &events);
            assert!(report.cycles_closed > 0, "direction {dir}: {report:?}");
            assert!(report.max_abs <= g.bound() + 1e-9);
        }
    }
}

// --- the positions monitor -----------------------------------------------------

struct Alarm {
    armed: bool,
}

impl Alarm {
    /// True when this value raises an alert.
    fn update(&mut self, breached: bool, safe: bool) -> bool {
        if breached && self.armed {
            self.armed = false;
            return true;
        }
        if safe {
            self.armed = true;
        }
        false
    }
}

/// The monitor's thresholds for a demo run.
struct Thresholds {
    drawdown: f64,
    margin: f64,
    liq: f64,
    rearm: f64,
}

/// Runs positions_monitor.js with a demo entry and checks that it alerted
/// exactly on the threshold crossings recomputed from the ledger at each bar
/// close (drawdown from the running peak, margin used over equity, distance of
/// the mark to the liquidation price), once per crossing, re-armed only
/// `rearm` points back on the safe side. Returns the alerts as (time, kind).
fn check_monitor(
    mut c: Config,
    demo: Json,
    t: &Thresholds,
    tag: &str,
) -> (Outcome, Vec<Envelope>, Vec<(i64, &'static str)>) {
    c.params = json!({"demoEntry": demo, "maxDrawdownPct": t.drawdown, "marginUsedPct": t.margin,
                      "liqDistancePct": t.liq, "rearmPct": t.rearm});
    let (outcome, events) = run_journaled(&c, tag);
    let trader = "positions_monitor";
    let mut state = State::default();
    let (mut drawdown, mut margin_alarm) = (Alarm { armed: true }, Alarm { armed: true });
    let mut liq_alarms: BTreeMap<String, Alarm> = BTreeMap::new();
    let mut peak: Option<f64> = None;
    let mut expected: Vec<(i64, &'static str)> = Vec::new();
    let mut alerts: Vec<(i64, &'static str)> = Vec::new();
    let mut equity_at: BTreeMap<i64, f64> = BTreeMap::new();
    let mut recorded_equity = Vec::new();
    let mut fills = 0;
    for env in &events {
        state.apply(env);
        match &env.event {
            Event::KlineReceived(_) => {
                let account = state.account(trader).expect("the trader's account");
                let (equity, used) = (f(account.equity), f(account.margin_used));
                equity_at.insert(env.time_ms, equity);
                let top = peak.map_or(equity, |p: f64| p.max(equity));
                peak = Some(top);
                let down = if top > 0.0 { ((top - equity) / top) * 100.0 } else { 0.0 };
                if drawdown.update(down >= t.drawdown, down < t.drawdown - t.rearm) {
                    expected.push((env.time_ms, "drawdown"));
                }
                let usage = if equity > 0.0 { (used / equity) * 100.0 } else { f64::INFINITY };
                if margin_alarm.update(used > 0.0 && usage >= t.margin, used <= 0.0 || usage < t.margin - t.rearm) {
                    expected.push((env.time_ms, "margin"));
                }
                let me = &state.traders[trader];
                for (symbol, alarm) in &mut liq_alarms {
                    // A position that is gone re-arms its alarm.
                    if me.positions.get(symbol).is_none_or(|p| p.qty.is_zero()) {
                        alarm.update(false, true);
                    }
                }
                for (symbol, p) in me.positions.iter().filter(|(_, p)| !p.qty.is_zero()) {
                    let instrument = &state.instruments[symbol];
                    let liquidation = f(p
                        .liquidation_price(me.leverage(Some(instrument)), instrument.maintenance_margin_rate)
                        .expect("a price"));
                    let mark = f(state.mark(symbol).expect("a mark"));
                    let gap = if p.qty > Decimal::ZERO { mark - liquidation } else { liquidation - mark };
                    let distance = (gap.max(0.0) / mark) * 100.0;
                    let alarm = liq_alarms.entry(symbol.clone()).or_insert(Alarm { armed: true });
                    if alarm.update(distance <= t.liq, distance > t.liq + t.rearm) {
                        expected.push((env.time_ms, "liquidation"));
                    }
                }
            }
            Event::NotificationSent { channel, message } if env.trader == trader => {
                assert_eq!(channel, "telegram");
                let kind = ["drawdown", "margin", "liquidation"]
                    .into_iter()
                    .find(|k| message.starts_with(k))
                    .expect("a known alert");
                alerts.push((env.time_ms, kind));
            }
            Event::SeriesRecorded { name, value } if env.trader == trader && name == "equity" => {
                recorded_equity.push((env.time_ms, *value))
            }
            Event::OrderFilled(_) if env.trader == trader => fills += 1,
            _ => {}
        }
    }
    assert_eq!(alerts, expected, "alerts sent vs threshold crossings of the ledger");
    assert_eq!(state.traders[trader].stats.notifications, expected.len() as u64);
    // It traded exactly its demo entry, and recorded the ledger's equity at every bar.
    assert_eq!(fills, 1);
    assert_eq!(recorded_equity.len(), outcome.record.bars as usize);
    for (time, value) in &recorded_equity {
        assert_eq!(Some(value), equity_at.get(time), "recorded equity at {time}");
    }
    // The driver's own equity curve agrees (it samples the same closes).
    let curve: Vec<f64> = outcome.record.equity.iter().map(|p| p.equity).collect();
    assert_eq!(curve, recorded_equity.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    (outcome, events, expected)
}

#[test]
fn positions_monitor_alerts_once_per_crossing() {
    // 2018-04..08, hourly: a 1.5x-equity long at 2x leverage rides BTC from 7k to 9.9k, 5.8k and back.
    let mut c = config("positions_monitor.js", COINBASE_1H, json!({}));
    c.from_ms = Some(ms("2018-04-01"));
    c.to_ms = Some(ms("2018-09-01"));
    c.leverage = Decimal::TWO;
    let t = Thresholds { drawdown: 15.0, margin: 90.0, liq: 42.0, rearm: 2.0 };
    let (outcome, _, alerts) = check_monitor(c, json!({"side": "buy", "exposure": 1.5}), &t, "monitor");
    let count = |kind: &str| alerts.iter().filter(|(_, k)| *k == kind).count();
    // Not vacuous: drawdown re-armed and crossed again; margin and liquidation distance crossed too.
    assert!(count("drawdown") >= 3 && count("margin") >= 1 && count("liquidation") >= 1, "alerts: {alerts:?}");
    assert_eq!(outcome.state.traders["positions_monitor"].stats.liquidations, 0);
}

#[test]
fn positions_monitor_warns_before_a_liquidation() {
    // March 2018, hourly: a 4x-equity long at 5x leverage (liquidation 19.5% below entry) is liquidated.
    let mut c = config("positions_monitor.js", COINBASE_1H, json!({}));
    c.from_ms = Some(ms("2018-03-01"));
    c.to_ms = Some(ms("2018-04-01"));
    c.leverage = Decimal::new(5, 0);
    let t = Thresholds { drawdown: 20.0, margin: 90.0, liq: 10.0, rearm: 1.0 };
    let (outcome, events, alerts) = check_monitor(c, json!({"side": "buy", "exposure": 4}), &t, "monitor-liq");
    assert_eq!(outcome.state.traders["positions_monitor"].stats.liquidations, 1);
    let liquidated = events
        .iter()
        .find(|e| matches!(e.event, Event::PositionLiquidated { .. }))
        .map(|e| e.time_ms)
        .expect("a liquidation");
    let first = |kind: &str| alerts.iter().find(|(_, k)| *k == kind).map(|(time, _)| *time);
    // Both the liquidation distance and the margin usage warned at an earlier close.
    assert!(first("liquidation").is_some_and(|t| t < liquidated), "alerts {alerts:?}, liquidated at {liquidated}");
    assert!(first("margin").is_some_and(|t| t < liquidated), "alerts {alerts:?}, liquidated at {liquidated}");
    assert!(first("drawdown").is_some(), "alerts {alerts:?}");
}

#[test]
fn positions_monitor_alone_trades_nothing_and_stays_quiet() {
    let outcome = run_clean(&config("positions_monitor.js", BYBIT_1M, json!({})));
    let t = &outcome.state.traders["positions_monitor"];
    assert_eq!((t.stats.orders_submitted, t.stats.fills, t.stats.notifications), (0, 0, 0));
    assert_eq!(outcome.record.final_equity, Decimal::new(10_000, 0));
    // It still recorded equity and drawdown on every bar.
    let series = |name: &str| &outcome.record.series.iter().find(|s| s.name == name).expect(name).points;
    let equity = series("equity").len();
    let drawdown = series("drawdown_pct").iter().filter(|p| p.value == 0.0).count();
    assert_eq!((equity, drawdown), (1440, 1440));
}

// --- the LP hedger -------------------------------------------------------------

#[test]
fn lp_hedge_keeps_the_offset_inside_its_zone() {
    let (threshold, min_qty, cooldown) = (0.25, 0.0005, 30i64);
    let mut c = config(
        "lp_hedge.js",
        BYBIT_1M,
        json!({"thresholdPct": threshold, "minQty": min_qty, "cooldownBars": cooldown}),
    );
    c.external = vec![("lp_exposure".into(), root().join("fixtures/external").join(LP_EXPOSURE))];
    let (outcome, events) = run_journaled(&c, "lp");
    let trader = "lp_hedge";
    let zone = |target: f64| (target.abs() * threshold / 100.0).max(min_qty);

    let mut state = State::default();
    let mut target: Option<f64> = None;
    let mut cooling = 0i64;
    let mut pending = false;
    let mut expected: Vec<(i64, Side, f64)> = Vec::new();
    let mut placed: Vec<(i64, Side, f64)> = Vec::new();
    let mut fill_times = Vec::new();
    let mut deferred = 0;
    let (mut buys, mut sells) = (0, 0);
    for env in &events {
        let before = f(position(&state, trader, "BTCUSDT"));
        state.apply(env);
        let held = f(position(&state, trader, "BTCUSDT"));
        match &env.event {
            Event::DataPointReceived { series, value } => {
                assert_eq!(series, "lp_exposure");
                target = Some(f(*value));
            }
            Event::KlineReceived(_) => {
                // What the heartbeat on this close must do.
                let Some(target) = target else { continue };
                let offset = target + held;
                if cooling > 0 {
                    cooling -= 1;
                    deferred += usize::from(offset.abs() > zone(target));
                } else if !pending && offset.abs() > zone(target) {
                    expected.push((env.time_ms, if offset > 0.0 { Side::Sell } else { Side::Buy }, offset.abs()));
                }
            }
            Event::OrderSubmitted(intent) if env.trader == trader => {
                assert_eq!(intent.kind, OrderKind::Market);
                placed.push((env.time_ms, intent.side, f(intent.qty)));
                pending = true;
            }
            Event::OrderFilled(fill) if env.trader == trader => {
                let target = target.expect("no hedge before a target");
                // The rebalance was due, and it brings the hedge back to −target (to the qty step).
                assert!(
                    (target + before).abs() > zone(target),
                    "fill at {} though the offset {} was inside the zone",
                    env.time_ms,
                    target + before
                );
                assert!(
                    (target + held).abs() <= zone(target),
                    "offset {} after the fill at {}",
                    target + held,
                    env.time_ms
                );
                assert!(
                    (target + held).abs() <= QTY_STEP + 1e-9,
                    "offset {} after the fill at {}",
                    target + held,
                    env.time_ms
                );
                if let Some(last) = fill_times.last() {
                    assert!(
                        env.time_ms - last > cooldown * MINUTE,
                        "fill at {} within the cooldown after {last}",
                        env.time_ms
                    );
                }
                fill_times.push(env.time_ms);
                match fill.side {
                    Side::Buy => buys += 1,
                    Side::Sell => sells += 1,
                }
                cooling = cooldown;
                pending = false;
            }
            _ => {}
        }
    }
    assert_eq!(placed.len(), expected.len(), "rebalances placed {placed:?}\nexpected {expected:?}");
    for ((t, side, qty), (et, eside, eqty)) in placed.iter().zip(&expected) {
        assert_eq!((t, side), (et, eside));
        // The order is the whole offset, rounded down to the quantity step.
        assert!(eqty - qty >= -1e-12 && eqty - qty < QTY_STEP + 1e-12, "qty {qty} for an offset of {eqty}");
    }
    // Not vacuous: both directions, and the cooldown held back a due rebalance.
    assert!(buys >= 3 && sells >= 3 && deferred >= 1, "buys {buys}, sells {sells}, deferred {deferred}");
    assert_eq!(fill_times.len(), placed.len(), "every rebalance filled");

    // Its cost basis agrees with the ledger's position.
    let kv = &outcome.state.traders[trader].strategy.as_ref().expect("a strategy").kv;
    let hedge = &kv["hedge"].0;
    let p = &outcome.state.traders[trader].positions["BTCUSDT"];
    let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(rel(hedge["qty"].as_f64().expect("qty"), f(p.qty)), "{hedge} vs {p:?}");
    assert!(rel(hedge["basis"].as_f64().expect("basis"), f(p.entry_price)), "{hedge} vs {p:?}");
    assert!(rel(hedge["realized"].as_f64().expect("realized"), f(p.realized_pnl)), "{hedge} vs {p:?}");
    assert!(rel(hedge["fees"].as_f64().expect("fees"), f(p.fees_paid)), "{hedge} vs {p:?}");
}

#[test]
fn lp_hedge_without_its_series_does_nothing() {
    let outcome = run_clean(&config("lp_hedge.js", BYBIT_1M, json!({})));
    assert_eq!(outcome.state.traders["lp_hedge"].stats.orders_submitted, 0);
}

// --- all of them -----------------------------------------------------------------

/// Every example with a run that trades.
fn example_configs() -> Vec<(&'static str, Config)> {
    let mut monitor =
        config("positions_monitor.js", COINBASE_1H, json!({"demoEntry": {"side": "sell", "exposure": 2}}));
    monitor.from_ms = Some(ms("2019-01-01"));
    monitor.to_ms = Some(ms("2019-03-01"));
    monitor.leverage = Decimal::new(3, 0);
    let mut lp = config("lp_hedge.js", BYBIT_1M, json!({}));
    lp.external = vec![("lp_exposure".into(), root().join("fixtures/external").join(LP_EXPOSURE))];
    vec![
        ("sma_cross", config("sma_cross.js", BYBIT_1M, json!({"fast": 5, "slow": 20}))),
        ("grid_martingale long", config("grid_martingale.js", BYBIT_1M, test_grid().params(1.0))),
        ("grid_martingale short", config("grid_martingale.js", BYBIT_1M, test_grid().params(-1.0))),
        ("positions_monitor", monitor),
        ("lp_hedge", lp),
    ]
}

#[test]
fn every_example_is_deterministic() {
    for (name, config) in example_configs() {
        let a = run_clean(&config);
        let b = run_clean(&config);
        assert!(a.state.traders[&run::trader_name(&config)].stats.fills > 0, "{name} traded nothing");
        assert_eq!(a.record.state_digest, b.record.state_digest, "{name}: two runs, two digests");
        assert_eq!(a.record.trades, b.record.trades, "{name}");
        let bits = |o: &Outcome| {
            o.record
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| (p.time_ms, s.name.clone(), p.value.to_bits())))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&a), bits(&b), "{name}: recorded series");
    }
}

#[test]
fn sma_cross_trades_and_its_params_matter() {
    let base = run_clean(&config("sma_cross.js", BYBIT_1M, json!({"fast": 5, "slow": 20})));
    assert!(base.record.trades.len() >= 2, "fast=5 slow=20 on a 1440-bar day crosses more than once");
    assert!(base.record.trades.iter().all(|t| t.side == "long"), "allowShort is off by default");
    for changed in [
        json!({"fast": 6, "slow": 20}),
        json!({"fast": 5, "slow": 21}),
        json!({"fast": 5, "slow": 20, "allowShort": true}),
    ] {
        let other = run_clean(&config("sma_cross.js", BYBIT_1M, changed.clone()));
        assert_ne!(other.record.state_digest, base.record.state_digest, "{changed} changed nothing");
    }
    // The default params (10/30) are valid too, and differ from 5/20.
    let default = run_clean(&config("sma_cross.js", BYBIT_1M, json!({})));
    assert_ne!(default.record.state_digest, base.record.state_digest);
}

/// sma_cross.js (declared averages, woken on crosses), sma_cross_every_bar.js (the same
/// rules, every bar, its own streaming averages) and sma_cross_plain.js (every bar, its own
/// close array and means) trade identically: the same trades, the same equity at every
/// close; the first two also record the same averages. Only the journals differ (the
/// every-bar form also journals its regime in ctx.state on every change).
#[test]
fn sma_cross_declared_trades_as_the_every_bar_heartbeat_does() {
    let cases = [
        (BYBIT_1M, json!({"fast": 5, "slow": 20})),
        (BYBIT_1M, json!({"fast": 5, "slow": 20, "allowShort": true})),
        (COINBASE_1H, json!({})),
        (COINBASE_1H, json!({"fast": 20, "slow": 50, "allowShort": true, "fraction": 0.5})),
    ];
    for (data, params) in cases {
        let declared = run_clean(&config("sma_cross.js", data, params.clone()));
        let every_bar = run_clean(&config("sma_cross_every_bar.js", data, params.clone()));
        let what = format!("{data} {params}");
        assert!(declared.record.trades.len() >= 2, "{what}: too few trades to compare");
        assert_eq!(declared.record.trades, every_bar.record.trades, "{what}: trades");
        assert_eq!(declared.record.final_equity, every_bar.record.final_equity, "{what}: final equity");
        let curve = |o: &Outcome| {
            o.record.equity.iter().map(|p| (p.time_ms, p.equity.to_bits(), p.exposed)).collect::<Vec<_>>()
        };
        assert_eq!(curve(&declared), curve(&every_bar), "{what}: equity curve");
        let series = |o: &Outcome, name: &str| {
            let s = o.record.series.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{what}: no {name}"));
            s.points.iter().map(|p| (p.time_ms, p.value.to_bits())).collect::<Vec<_>>()
        };
        for name in ["sma_fast", "sma_slow"] {
            assert_eq!(series(&declared, name), series(&every_bar, name), "{what}: {name}");
        }
        let orders = |o: &Outcome, trader: &str| o.state.traders[trader].stats.orders_submitted;
        assert_eq!(orders(&declared, "sma_cross"), orders(&every_bar, "sma_cross_every_bar"), "{what}: orders");

        // The everyday form (its own close array, means summed afresh, positions read every
        // bar) records nothing, so only its trading is compared.
        let plain = run_clean(&config("sma_cross_plain.js", data, params.clone()));
        assert_eq!(declared.record.trades, plain.record.trades, "{what}: plain trades");
        assert_eq!(declared.record.final_equity, plain.record.final_equity, "{what}: plain final equity");
        assert_eq!(curve(&declared), curve(&plain), "{what}: plain equity curve");
        assert_eq!(orders(&declared, "sma_cross"), orders(&plain, "sma_cross_plain"), "{what}: plain orders");
    }
}

#[test]
fn nonsense_params_stop_the_strategy_with_a_clear_error() {
    let cases = [
        ("grid_martingale.js", json!({"maxLevels": 0}), "maxLevels must be a whole number from 1 to 20, got 0"),
        ("grid_martingale.js", json!({"stepPct": 30, "maxLevels": 5}), "the deepest level would be at or below zero"),
        ("grid_martingale.js", json!({"baseQty": "lots"}), "baseQty must be a positive number"),
        (
            "grid_martingale.js",
            json!({"direction": "short", "multiplier": 0.5}),
            "multiplier must be from 1 to 10, got 0.5",
        ),
        ("grid_martingale.js", json!({"direction": "short", "takeProfitPct": 0}), "takeProfitPct must be in (0, 100)"),
        ("grid_martingale.js", json!({"direction": "up"}), "direction must be \"long\" or \"short\", got up"),
        ("positions_monitor.js", json!({"maxDrawdownPct": -5}), "maxDrawdownPct must be in (0, 100)"),
        ("positions_monitor.js", json!({"demoEntry": {"side": "up", "exposure": 1}}), "demoEntry must be null or"),
        ("lp_hedge.js", json!({"thresholdPct": "x"}), "thresholdPct must be in [0, 100)"),
        ("lp_hedge.js", json!({"cooldownBars": 1.5}), "cooldownBars must be a whole number"),
        ("sma_cross.js", json!({"fast": 30, "slow": 10}), "sma_cross needs 1 <= fast < slow"),
    ];
    for (file, params, message) in cases {
        let outcome =
            run::run(&config(file, BYBIT_1M_HEAD, params.clone()), &mut |_| {}).expect("the run itself works");
        let stopped = outcome.record.stopped.clone().unwrap_or_default();
        assert!(stopped.contains(message), "{file} {params}: stopped with {stopped:?}");
        assert!(stopped.starts_with("failed 4 times"), "{file} {params}: {stopped:?}");
        let trader = Path::new(file).file_stem().and_then(|s| s.to_str()).expect("a name");
        assert_eq!(outcome.state.traders[trader].stats.orders_submitted, 0, "{file} {params}");
    }
}

#[test]
fn grids_on_hourly_bars_through_2018() {
    // 2018 fell from 13.5k to 3.7k with sharp rallies: both grids cycle, stop out and keep to their bound.
    let g = Grid { base: 0.02, step: 2.0, mult: 1.6, levels: 5, tp: 2.0, sl: 6.0, cooldown: 24 };
    for dir in [1.0, -1.0] {
        let mut c = config("grid_martingale.js", COINBASE_1H, g.params(dir));
        c.from_ms = Some(ms("2018-01-01"));
        c.to_ms = Some(ms("2019-01-01"));
        let (outcome, events) = run_journaled(&c, &format!("grid-{dir}-hourly"));
        let report = check_grid("grid_martingale", dir, &g, "BTCUSD", &outcome, &events);
        assert!(report.stops >= 1 && report.take_profits >= 1, "direction {dir}: {report:?}");
    }
}
