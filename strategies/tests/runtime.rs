//! The strategy runtime and worker, driven as the backtest and live drivers drive
//! them: every input is journaled (folded by a `FoldSink`) and then routed with
//! `Worker::on_input`. The assertions read what was journaled and the folded state.

use std::str::FromStr;

use journal::{
    codec,
    event::{
        Cloid, Event, Fill, Instrument, Json as EventJson, Kline, Liquidity, RejectReason, Side, StrategyErrorKind,
        TraderStart,
    },
    State,
};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};
use strategies::{
    runtime::{cloid_of, StrategySpec, RESTARTS_MAX},
    sink::{FoldSink, Sink, SinkError},
    worker::Worker,
};

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

const MINUTE: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// A `FoldSink` that also remembers every record it forwards.
#[derive(Default)]
struct Recorder {
    inner: FoldSink,
    log: Vec<(u64, i64, String, Event)>,
}

impl Sink for Recorder {
    fn state(&self) -> &State {
        self.inner.state()
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        let seq = self.inner.emit(time_ms, trader, event)?;
        self.log.push((seq, time_ms, trader.to_owned(), event.clone()));
        Ok(seq)
    }
}

/// A worker, its sink and a bar clock.
struct Run {
    sink: Recorder,
    worker: Worker,
    /// Open time of the next bar.
    next_open: i64,
}

fn instrument(symbol: &str) -> Instrument {
    Instrument {
        symbol: symbol.into(),
        tick_size: d("0.01"),
        qty_step: d("0.001"),
        min_qty: d("0.001"),
        max_leverage: d("10"),
        maintenance_margin_rate: d("0.005"),
        taker_fee_rate: d("0.0005"),
        maker_fee_rate: d("0.0002"),
    }
}

fn start(capital: &str, leverage: &str) -> TraderStart {
    TraderStart {
        exchange: "sim".into(),
        account: "test".into(),
        currency: "USDT".into(),
        allocation_pct: d("100"),
        capital_quote: d(capital),
        leverage: d(leverage),
    }
}

impl Run {
    /// Instruments for `symbols`, then every trader started with 10 000 USDT at 2x.
    fn new(symbols: &[&str], traders: &[&str]) -> Run {
        let mut run = Run { sink: Recorder::default(), worker: Worker::new(), next_open: T0 };
        for symbol in symbols {
            run.input(T0, "", Event::InstrumentDefined(instrument(symbol)));
        }
        for trader in traders {
            run.input(T0, trader, Event::TraderStarted(start("10000", "2")));
        }
        run
    }

    fn load(&mut self, spec: StrategySpec) {
        self.worker.load(spec, &mut self.sink, T0).unwrap();
    }

    /// Journals an input, then routes it (as the drivers do). Returns its seq.
    fn input(&mut self, time_ms: i64, trader: &str, event: Event) -> u64 {
        let seq = self.sink.emit(time_ms, trader, &event).unwrap();
        self.worker.on_input(&mut self.sink, seq, time_ms, trader, &event).unwrap();
        seq
    }

    /// A closed 1m bar of `symbol` closing at `close`; the clock moves one minute.
    /// Returns the bar's seq.
    fn bar(&mut self, symbol: &str, close: &str) -> u64 {
        let open_time_ms = self.next_open;
        self.next_open += MINUTE;
        let close = d(close);
        let kline = Kline {
            symbol: symbol.into(),
            interval_ms: MINUTE,
            open_time_ms,
            open: close,
            high: close,
            low: close,
            close,
            volume: d("1"),
            closed: true,
        };
        self.input(open_time_ms + MINUTE, "", Event::KlineReceived(kline))
    }

    /// `n` bars of BTC closing at 101, 102, ...
    fn bars(&mut self, n: u32) -> Vec<u64> {
        (1..=n).map(|i| self.bar("BTC", &(100 + i).to_string())).collect()
    }

    /// The events journaled for `trader`, in order.
    fn events_of(&self, trader: &str) -> Vec<&Event> {
        self.sink.log.iter().filter(|(_, _, t, _)| t == trader).map(|(_, _, _, e)| e).collect()
    }

    /// The trader's `ctx.state` as folded from the journal.
    fn kv(&self, trader: &str, key: &str) -> Option<Json> {
        self.sink.state().traders[trader].strategy.as_ref().unwrap().kv.get(key).map(|v| v.0.clone())
    }

    /// Canonical bytes of every journaled record.
    fn bytes(&self) -> Vec<Vec<u8>> {
        self.sink.log.iter().map(|(_, t, who, e)| codec::encode_body(*t, who, e)).collect()
    }

    fn health(&self, trader: &str) -> strategies::worker::StrategyHealth {
        self.worker.report().into_iter().find(|h| h.trader == trader).unwrap()
    }
}

fn spec(trader: &str, source: &str) -> StrategySpec {
    StrategySpec::new(trader, &format!("{trader}.js"), source.to_owned(), Json::Null, 7)
}

fn kinds(events: &[&Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind()).collect()
}

fn count(events: &[&Event], kind: &str) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

fn erred(e: &Event) -> (&str, StrategyErrorKind, &str) {
    match e {
        Event::StrategyErred { hook, kind, message } => (hook, *kind, message),
        other => panic!("expected StrategyErred, got {other:?}"),
    }
}

fn stopped(e: &Event) -> &str {
    match e {
        Event::StrategyStopped { reason } => reason,
        other => panic!("expected StrategyStopped, got {other:?}"),
    }
}

/// Counts its heartbeats in `ctx.state` and rests one tiny limit order per heartbeat.
const GOOD: &str = r#"
function st_init(ctx) { return { symbols: ["BTC"] }; }
function st_heartbeat(ctx, t) {
  ctx.state.set("beats", ctx.state.get("beats", 0) + 1);
  const r = ctx.api.placeOrder({ symbol: t.symbol, side: "buy", type: "limit", price: 1, qty: 0.001 });
  if (r.status !== "submitted") throw new Error("good order refused: " + r.reason);
}
"#;

/// Two good strategies around a bad one ("alpha" < `bad` < "omega": fan-out runs in trader
/// order, so one good strategy runs before the bad one on every bar and one after).
fn neighbours(bad: &str, bad_spec: StrategySpec) -> Run {
    let mut run = Run::new(&["BTC"], &["alpha", bad, "omega"]);
    run.load(spec("alpha", GOOD));
    run.load(bad_spec);
    run.load(spec("omega", GOOD));
    run
}

/// Both neighbours got every one of `bars` heartbeats and traded on each.
fn neighbours_kept_going(run: &Run, bars: u32) {
    for good in ["alpha", "omega"] {
        assert_eq!(run.kv(good, "beats"), Some(json!(bars)), "{good} missed heartbeats");
        let events = run.events_of(good);
        assert_eq!(count(&events, "OrderSubmitted"), bars as usize, "{good} stopped trading");
        assert_eq!(count(&events, "StrategyErred"), 0, "{good} erred: {events:?}");
        let health = run.health(good);
        assert_eq!(
            (health.calls, health.errors, health.restarts, health.stopped),
            (1 + u64::from(bars), 0, 0, None),
            "{good}"
        );
    }
}

// ---------------------------------------------------------------------------
// Bad strategies: each journaled with a clear reason, the others go on
// ---------------------------------------------------------------------------

#[test]
fn syntax_error_stops_at_once_with_its_location() {
    let source = "function st_init(ctx) { return {}; }\nfunction st_heartbeat(ctx, t) {\n  let x = ;\n}\n";
    let mut run = neighbours("bad", spec("bad", source));
    run.bars(5);

    let events = run.events_of("bad");
    assert_eq!(kinds(&events), ["TraderStarted", "StrategyLoaded", "StrategyErred", "StrategyStopped"]);
    let (hook, kind, message) = erred(events[2]);
    assert_eq!((hook, kind), ("st_init", StrategyErrorKind::Syntax));
    // file:line:column, then QuickJS's message.
    let location = message.split(": ").next().unwrap();
    let parts: Vec<&str> = location.split(':').collect();
    assert_eq!(parts.len(), 3, "{message}");
    assert_eq!((parts[0], parts[1]), ("bad.js", "3"), "{message}");
    assert!(parts[2].parse::<u32>().unwrap() > 0, "{message}");
    assert!(stopped(events[3]).starts_with("cannot load: bad.js:3:"), "{}", stopped(events[3]));
    assert_eq!(run.sink.state().traders["bad"].strategy.as_ref().unwrap().restarts, 0);
    let health = run.health("bad");
    assert_eq!((health.calls, health.errors, health.restarts, health.memory_bytes), (0, 1, 0, 0));
    assert!(health.stopped.unwrap().starts_with("cannot load:"));
    neighbours_kept_going(&run, 5);
}

#[test]
fn throwing_init_is_restarted_three_times_then_stopped() {
    let source = r#"
function st_init(ctx) { throw new Error("init says no"); }
function st_heartbeat(ctx, t) {}
"#;
    let mut run = neighbours("bad", spec("bad", source));
    run.bars(4);

    let events = run.events_of("bad");
    assert_eq!(
        kinds(&events),
        [
            "TraderStarted",
            "StrategyLoaded",
            "StrategyErred",
            "StrategyRestarted",
            "StrategyErred",
            "StrategyRestarted",
            "StrategyErred",
            "StrategyRestarted",
            "StrategyErred",
            "StrategyStopped",
        ]
    );
    let attempts: Vec<u32> = events
        .iter()
        .filter_map(|e| if let Event::StrategyRestarted { attempt } = e { Some(*attempt) } else { None })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(RESTARTS_MAX, 3);
    for e in events.iter().filter(|e| e.kind() == "StrategyErred") {
        let (hook, kind, message) = erred(e);
        assert_eq!((hook, kind), ("st_init", StrategyErrorKind::Thrown));
        assert!(message.starts_with("Error: init says no"), "{message}");
        assert!(message.contains("bad.js"), "the stack names the file: {message}");
    }
    let reason = stopped(events.last().unwrap());
    assert!(reason.starts_with("failed 4 times; last: st_init: Error: init says no"), "{reason}");

    let folded = run.sink.state().traders["bad"].strategy.clone().unwrap();
    assert_eq!((folded.restarts, folded.errors, folded.stopped.as_deref()), (3, 4, Some(reason)));
    let health = run.health("bad");
    assert_eq!((health.calls, health.errors, health.restarts), (4, 4, 3));
    assert_eq!(health.stopped.as_deref(), Some(reason));
    neighbours_kept_going(&run, 4);
}

#[test]
fn endless_heartbeat_runs_out_of_fuel_deterministically() {
    let source = r#"
function st_init(ctx) { return {}; }
function st_heartbeat(ctx, t) { ctx.state.set("entered", t.close); for (;;) {} }
"#;
    let scenario = || {
        let mut bad = spec("bad", source);
        bad.call_fuel = 5;
        // The wall-clock backstop must not be what fires, even in a slow debug build.
        bad.call_timeout_ms = 600_000;
        let mut run = neighbours("bad", bad);
        run.bars(6);
        run
    };
    let run = scenario();
    let events = run.events_of("bad");
    assert_eq!(
        kinds(&events),
        [
            "TraderStarted",
            "StrategyLoaded",
            "StrategyErred",
            "StrategyRestarted",
            "StrategyErred",
            "StrategyRestarted",
            "StrategyErred",
            "StrategyRestarted",
            "StrategyErred",
            "StrategyStopped",
        ]
    );
    for e in events.iter().filter(|e| e.kind() == "StrategyErred") {
        assert_eq!(
            erred(e),
            ("st_heartbeat", StrategyErrorKind::OutOfFuel, "strategy ran out of fuel (5 interrupt ticks)")
        );
    }
    assert!(stopped(events.last().unwrap()).contains("st_heartbeat: strategy ran out of fuel"));
    // The failed calls' state writes were never journaled.
    assert_eq!(count(&events, "StrategyStateChanged"), 0);
    // One failure per bar: the fourth bar stops it, bars five and six see nothing.
    let last_bad_seq = run.sink.log.iter().rev().find(|(_, _, t, _)| t == "bad").unwrap().0;
    let fourth_bar = run.sink.log.iter().filter(|(_, _, _, e)| e.kind() == "KlineReceived").nth(3).unwrap().0;
    let fifth_bar = run.sink.log.iter().filter(|(_, _, _, e)| e.kind() == "KlineReceived").nth(4).unwrap().0;
    assert!(last_bad_seq > fourth_bar && last_bad_seq < fifth_bar);
    let health = run.health("bad");
    // st_init, then per bar: st_heartbeat (fails) and the restarted st_init; the fourth failure stops it.
    assert_eq!((health.calls, health.errors, health.restarts), (8, 4, 3));
    neighbours_kept_going(&run, 6);

    // OutOfFuel is a decision, not an accident of timing: a second run journals the same bytes.
    assert_eq!(run.bytes(), scenario().bytes());
}

#[test]
fn unbounded_allocation_runs_out_of_memory_and_the_host_survives() {
    let source = r#"
function st_init(ctx) { return {}; }
function st_heartbeat(ctx, t) {
  const hoard = [];
  for (let i = 0; ; i++) hoard.push("x".repeat(4096) + i);
}
"#;
    let mut bad = spec("bad", source);
    bad.memory_limit_bytes = 4 * 1024 * 1024;
    bad.call_fuel = 1_000_000;
    bad.call_timeout_ms = 600_000;
    let mut run = neighbours("bad", bad);
    run.bars(6);

    let events = run.events_of("bad");
    assert_eq!(count(&events, "StrategyErred"), 4, "{events:?}");
    assert_eq!(count(&events, "StrategyRestarted"), 3);
    for e in events.iter().filter(|e| e.kind() == "StrategyErred") {
        assert_eq!(
            erred(e),
            ("st_heartbeat", StrategyErrorKind::OutOfMemory, "strategy ran out of memory (limit 4194304 bytes)")
        );
    }
    assert!(stopped(events.last().unwrap()).contains("out of memory"));
    neighbours_kept_going(&run, 6);
}

#[test]
fn missing_heartbeat_is_journaled_and_stopped() {
    let source = "function st_init(ctx) { return {}; }\nfunction st_heartbeats(ctx, t) {}\n";
    let mut run = neighbours("bad", spec("bad", source));
    run.bars(3);

    let events = run.events_of("bad");
    assert_eq!(kinds(&events), ["TraderStarted", "StrategyLoaded", "StrategyErred", "StrategyStopped"]);
    let (hook, kind, message) = erred(events[2]);
    assert_eq!(
        (hook, kind, message),
        ("st_init", StrategyErrorKind::Missing, "bad.js: defines no st_heartbeat function")
    );
    assert_eq!(stopped(events[3]), message);
    let health = run.health("bad");
    assert_eq!((health.calls, health.errors), (0, 1), "st_init is not called without st_heartbeat");
    neighbours_kept_going(&run, 3);
}

#[test]
fn bad_orders_are_rejected_with_reasons() {
    let source = r#"
function st_init(ctx) { return {}; }
function st_heartbeat(ctx, t) {
  if (ctx.state.get("answers")) return;
  const ask = (symbol, qty) => ctx.api.placeOrder({ symbol: symbol, side: "buy", type: "market", qty: qty });
  ctx.state.set("answers", [
    ask("BTC", NaN),
    ask("BTC", -1),
    ask("BTC", 1e30),
    ask("BTC", 1e9),
    ask("NOPE", 1),
    ask("BTC", Infinity),
    ask("BTC", "0.01"),
  ]);
}
"#;
    let mut run = neighbours("bad", spec("bad", source));
    let bar = run.bars(3)[0];

    let events = run.events_of("bad");
    let decided: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| matches!(e, Event::OrderRejected { .. } | Event::OrderSubmitted(_)))
        .collect();
    let expected = [
        Some(RejectReason::InvalidQty("NaN".into())),
        Some(RejectReason::NonPositiveQty(d("-1"))),
        // Beyond what a Decimal holds: refused as not a usable number (see the report).
        Some(RejectReason::InvalidQty("1e+30".into())),
        // 1e9 BTC at 101 on 10 000 at 2x: 5.05e10 margin + 5.05e7 fee.
        Some(RejectReason::InsufficientCapital { required_quote: d("50550500000"), available_quote: d("10000") }),
        Some(RejectReason::UnknownSymbol("NOPE".into())),
        Some(RejectReason::InvalidQty("Infinity".into())),
        None,
    ];
    assert_eq!(decided.len(), expected.len(), "{decided:?}");
    let answers = run.kv("bad", "answers").unwrap();
    for (leg, (event, want)) in decided.iter().zip(&expected).enumerate() {
        let cloid = cloid_of("bad", bar, leg as u32);
        let answer = &answers[leg];
        assert_eq!(answer["cloid"], json!(cloid.to_string()), "leg {leg}");
        match (event, want) {
            (Event::OrderRejected { cloid: got, reason }, Some(want)) => {
                assert_eq!((got, reason), (&cloid, want), "leg {leg}");
                assert_eq!(answer["status"], json!("rejected"), "leg {leg}");
                assert_eq!(
                    answer["reason"],
                    json!(reason.to_string()),
                    "the answer quotes the journaled reason, leg {leg}"
                );
            }
            (Event::OrderSubmitted(intent), None) => {
                assert_eq!((intent.cloid, intent.qty), (cloid, d("0.01")));
                assert_eq!(answer["status"], json!("submitted"));
                assert!(answer.get("reason").is_none());
            }
            other => panic!("leg {leg}: {other:?}"),
        }
    }
    assert_eq!(answers[0]["reason"], json!("qty NaN is not a valid quantity (not a finite number in range)"));
    assert_eq!(answers[1]["reason"], json!("qty -1 is not positive"));
    assert_eq!(answers[4]["reason"], json!("unknown symbol NOPE"));
    // Rejections are decisions, not failures: the strategy is healthy.
    assert_eq!(count(&events, "StrategyErred"), 0);
    assert_eq!(run.sink.state().traders["bad"].stats.orders_rejected, 6);
    neighbours_kept_going(&run, 3);
}

// ---------------------------------------------------------------------------
// Restarts resume from the journaled ctx.state
// ---------------------------------------------------------------------------

#[test]
fn restart_resumes_from_the_journaled_state() {
    let source = r#"
let callsInThisSandbox = 0;
function st_init(ctx) {
  const n = ctx.state.get("n", 0);
  if (n > 0) ctx.state.set("resumed_at", n);
  return {};
}
function st_heartbeat(ctx, t) {
  callsInThisSandbox += 1;
  const n = ctx.state.get("n", 0) + 1;
  ctx.state.batch({ n: n, last_close: t.close, calls_in_sandbox: callsInThisSandbox });
  if (n === 5 && ctx.state.get("resumed_at", null) === null) throw new Error("fifth heartbeat");
}
"#;
    let mut run = neighbours("counter", spec("counter", source));
    run.bars(8);

    let events = run.events_of("counter");
    let (hook, kind, message) = erred(events.iter().find(|e| e.kind() == "StrategyErred").unwrap());
    assert_eq!((hook, kind), ("st_heartbeat", StrategyErrorKind::Thrown));
    assert!(message.starts_with("Error: fifth heartbeat"));
    assert_eq!(count(&events, "StrategyRestarted"), 1);

    // The journaled values of n, in order: 1..4 before the failure, 5..7 after it.
    let changes: Vec<&Vec<(String, EventJson)>> = events
        .iter()
        .filter_map(|e| if let Event::StrategyStateChanged { changes } = e { Some(changes) } else { None })
        .collect();
    let ns: Vec<Json> =
        changes.iter().flat_map(|c| c.iter()).filter(|(k, _)| k == "n").map(|(_, v)| v.0.clone()).collect();
    assert_eq!(ns, [json!(1), json!(2), json!(3), json!(4), json!(5), json!(6), json!(7)]);
    // The failed call's writes (n = 5, close 105) were never journaled; the restart resumed at 4.
    let failed_at = events.iter().position(|e| e.kind() == "StrategyErred").unwrap();
    let before: Vec<&Event> = events[..failed_at].to_vec();
    assert!(!before.iter().any(|e| matches!(e, Event::StrategyStateChanged { changes } if changes.iter().any(|(k, v)| k == "last_close" && v.0 == json!(105)))));
    assert_eq!(
        kinds(&events[failed_at..failed_at + 3]),
        ["StrategyErred", "StrategyRestarted", "StrategyStateChanged"],
        "the restarted st_init journals where it resumed"
    );
    assert_eq!(run.kv("counter", "resumed_at"), Some(json!(4)));
    assert_eq!(run.kv("counter", "n"), Some(json!(7)));
    assert_eq!(run.kv("counter", "last_close"), Some(json!(108)));
    // A fresh sandbox: JS globals start over, only ctx.state survives.
    assert_eq!(run.kv("counter", "calls_in_sandbox"), Some(json!(3)));
    let health = run.health("counter");
    assert_eq!((health.errors, health.restarts, health.stopped), (1, 1, None));
    neighbours_kept_going(&run, 8);
}

// ---------------------------------------------------------------------------
// Client order ids and determinism
// ---------------------------------------------------------------------------

#[test]
fn client_order_ids_are_derived_and_unique_across_legs_and_calls() {
    let source = r#"
const order = (ctx) => ctx.api.placeOrder({ symbol: "BTC", side: "buy", type: "limit", price: 1, qty: 0.001 }).cloid;
function st_init(ctx) { order(ctx); return {}; }
function st_heartbeat(ctx, t) {
  order(ctx);
  order(ctx);
  if (t.close === 103) throw new Error("after two orders");
}
function st_exit(ctx, reason) { order(ctx); }
"#;
    let mut run = Run::new(&["BTC"], &["one", "two"]);
    run.load(spec("one", source));
    run.load(spec("two", source));
    let bars = run.bars(5);

    for trader in ["one", "two"] {
        let loaded = run.sink.log.iter().find(|(_, _, t, e)| t == trader && e.kind() == "StrategyLoaded").unwrap().0;
        let mut expected = vec![cloid_of(trader, loaded, 0)];
        for (i, &bar) in bars.iter().enumerate() {
            expected.extend([cloid_of(trader, bar, 0), cloid_of(trader, bar, 1)]);
            if i == 2 {
                // The failing heartbeat's two legs, then the old sandbox's st_exit and the
                // restarted st_init: the same input, so the legs go on.
                expected.extend([cloid_of(trader, bar, 2), cloid_of(trader, bar, 3)]);
            }
        }
        let got: Vec<Cloid> = run
            .events_of(trader)
            .iter()
            .filter_map(|e| if let Event::OrderSubmitted(o) = e { Some(o.cloid) } else { None })
            .collect();
        assert_eq!(got, expected, "{trader}");
        assert_eq!(run.sink.state().traders[trader].stats.orders_rejected, 0, "no duplicate cloid");
    }
    let all: Vec<Cloid> = run
        .sink
        .log
        .iter()
        .filter_map(|(_, _, _, e)| if let Event::OrderSubmitted(o) = e { Some(o.cloid) } else { None })
        .collect();
    let unique: std::collections::BTreeSet<Cloid> = all.iter().copied().collect();
    assert_eq!(all.len(), 2 * (1 + 2 * 5 + 2));
    assert_eq!(unique.len(), all.len(), "client order ids collide");
}

/// Randomness, clocks, orders, records, notifications, state, failures and restarts, for three
/// traders on two symbols; then fills and acknowledgements.
fn busy_scenario() -> Run {
    let random = r#"
function st_init(ctx) { ctx.state.set("init_now", Date.now()); return {}; }
function st_heartbeat(ctx, t) {
  const r = Math.random();
  ctx.record("r", r);
  ctx.state.batch({ r: r, now: Date.now(), date: new Date().getTime(), iso: new Date().toISOString(), seen: t.symbol });
  if (r < 0.5) ctx.api.placeOrder({ symbol: t.symbol, side: "buy", type: "limit", price: t.close - 10, qty: (r * 0.01).toFixed(3) });
  if (r > 0.9) ctx.notify.telegram("high draw " + r);
  if (r > 0.97) throw new Error("unlucky " + r);
}
function st_on_order(ctx, o) { ctx.state.set("last_order", o); }
function st_on_fill(ctx, f) { ctx.state.set("last_fill", f); }
"#;
    let mut run = Run::new(&["BTC", "ETH"], &["a", "b", "c"]);
    run.load(StrategySpec::new("a", "random.js", random.to_owned(), Json::Null, 1));
    run.load(StrategySpec::new("b", "random.js", random.to_owned(), Json::Null, 2));
    let mut fuel = spec("c", "function st_heartbeat(ctx, t) { if (t.close > 130) for (;;) {} }");
    fuel.call_fuel = 3;
    fuel.call_timeout_ms = 600_000;
    run.load(fuel);
    for i in 0..40 {
        run.bar("BTC", &(100 + i).to_string());
        run.bar("ETH", &(50 + i).to_string());
        // The exchange accepts every new order and fills every other one.
        let mut new: Vec<(String, journal::event::OrderIntent)> = Vec::new();
        for (trader, t) in &run.sink.state().traders {
            for o in t.orders.values().filter(|o| o.status == journal::state::OrderStatus::Submitted) {
                new.push((trader.clone(), o.intent.clone()));
            }
        }
        new.sort_by_key(|(_, o)| o.cloid);
        for (n, (trader, intent)) in new.into_iter().enumerate() {
            let time = run.next_open;
            run.input(
                time,
                &trader,
                Event::OrderAccepted { cloid: intent.cloid, exchange_order_id: format!("x{i}-{n}") },
            );
            if n % 2 == 0 {
                let fill = Fill {
                    cloid: intent.cloid,
                    fill_id: format!("f{i}-{n}"),
                    symbol: intent.symbol.clone(),
                    side: intent.side,
                    qty: intent.qty,
                    price: intent.price.unwrap(),
                    fee_quote: d("0.01"),
                    liquidity: Liquidity::Maker,
                };
                run.input(time, &trader, Event::OrderFilled(fill));
            }
        }
    }
    run.worker.exit(&mut run.sink, run.next_open, "end of test").unwrap();
    run
}

#[test]
fn two_runs_of_the_same_inputs_journal_identical_bytes() {
    let first = busy_scenario();
    let second = busy_scenario();
    let (a, b) = (first.bytes(), second.bytes());
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "record {i} differs: {:?} vs {:?}", first.sink.log[i], second.sink.log[i]);
    }
    assert_eq!(first.sink.state().digest(), second.sink.state().digest());

    // The scenario exercised what it claims to: orders, fills, notifications, failures.
    let log = &first.sink.log;
    for kind in
        ["OrderSubmitted", "OrderFilled", "NotificationSent", "SeriesRecorded", "StrategyErred", "StrategyRestarted"]
    {
        assert!(log.iter().any(|(_, _, _, e)| e.kind() == kind), "no {kind}");
    }
    // Date.now() and new Date() are the event time of the call; Math.random differs per seed.
    for (_, time, trader, event) in log {
        if let Event::StrategyStateChanged { changes } = event {
            for (k, v) in changes {
                if k == "now" || k == "date" {
                    assert_eq!(v.0, json!(time), "{trader}: {k}");
                }
            }
        }
    }
    // st_init at load runs at the load's time (restarts run at the failing input's time).
    let init_nows: Vec<(i64, Json)> = log
        .iter()
        .filter(|(_, _, t, _)| t == "a")
        .filter_map(|(_, time, _, e)| match e {
            Event::StrategyStateChanged { changes } => {
                changes.iter().find(|(k, _)| k == "init_now").map(|(_, v)| (*time, v.0.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(init_nows[0], (T0, json!(T0)));
    assert!(init_nows.len() > 1 && init_nows.iter().all(|(time, now)| json!(time) == *now), "{init_nows:?}");
    let draws = |trader: &str| -> Vec<f64> {
        log.iter()
            .filter(|(_, _, t, _)| t == trader)
            .filter_map(|(_, _, _, e)| if let Event::SeriesRecorded { value, .. } = e { Some(*value) } else { None })
            .collect()
    };
    assert_ne!(draws("a")[..5], draws("b")[..5]);
    // A restart reseeds with seed + attempt, which is journaled too, so replays agree.
    assert!(first.health("c").stopped.is_some());
}

// ---------------------------------------------------------------------------
// ctx.api reads answer from the folded state
// ---------------------------------------------------------------------------

#[test]
fn api_reads_answer_from_the_folded_state() {
    let source = r#"
function st_init(ctx) { return { symbols: ["BTC"] }; }
function st_heartbeat(ctx, t) {
  const n = ctx.state.get("n", 0) + 1;
  ctx.state.set("n", n);
  if (n === 1) {
    ctx.state.set("before", { positions: ctx.api.getPositions(), balance: ctx.api.getBalance(), open: ctx.api.getOpenOrders() });
    ctx.state.set("entry", ctx.api.placeOrder({ symbol: "BTC", side: "buy", type: "market", qty: 0.5 }));
    ctx.state.set("resting", ctx.api.placeOrder({ symbol: "BTC", side: "buy", type: "limit", price: 50, qty: 0.2 }));
    return;
  }
  ctx.state.set("view", {
    positions: ctx.api.getPositions(),
    balance: ctx.api.getBalance(),
    open: ctx.api.getOpenOrders(),
    klines: ctx.api.getKlines("BTC", "1m", 3),
    all_klines: ctx.api.getKlines("BTC", "1m", 500).length,
    ticker: ctx.api.getTicker("BTC"),
  });
}
function st_on_order(ctx, o) { ctx.state.set("orders", ctx.state.get("orders", []).concat([o])); }
function st_on_fill(ctx, f) { ctx.state.set("fills", ctx.state.get("fills", []).concat([f])); }
"#;
    let mut run = Run::new(&["BTC"], &["api", "other"]);
    run.load(spec("api", source));
    run.load(spec("other", GOOD));
    let first_bar = run.bar("BTC", "100");
    // The market order and the limit order, as the checks passed them.
    let entry = cloid_of("api", first_bar, 0);
    let resting = cloid_of("api", first_bar, 1);
    assert_eq!(run.kv("api", "entry").unwrap(), json!({ "cloid": entry.to_string(), "status": "submitted" }));
    assert_eq!(run.kv("api", "before").unwrap()["positions"], json!([]));
    assert_eq!(run.kv("api", "before").unwrap()["balance"]["available"], json!(10000));
    let now = run.next_open;
    run.input(now, "api", Event::OrderAccepted { cloid: entry, exchange_order_id: "ex-1".into() });
    run.input(now, "api", Event::OrderAccepted { cloid: resting, exchange_order_id: "ex-2".into() });
    let fill = Fill {
        cloid: entry,
        fill_id: "fill-1".into(),
        symbol: "BTC".into(),
        side: Side::Buy,
        qty: d("0.5"),
        price: d("100"),
        fee_quote: d("0.05"),
        liquidity: Liquidity::Taker,
    };
    run.input(now, "api", Event::OrderFilled(fill));
    run.bar("BTC", "110");
    run.bar("BTC", "120");
    run.bar("BTC", "130");

    let view = run.kv("api", "view").unwrap();
    // Long 0.5 @ 100 at mark 130, 2x.
    assert_eq!(
        view["positions"],
        json!([{
            "symbol": "BTC",
            "side": "long",
            "qty": 0.5,
            "entryPrice": 100,
            "markPrice": 130,
            "unrealizedPnl": 15,
            "realizedPnl": 0,
            "leverage": 2,
            // entry · (1 − 1/2 + 0.005)
            "liquidationPrice": 50.5,
        }])
    );
    // Cash 10000 − 0.05 fee; equity + 15 unrealized; margin 0.5·100/2 = 25; the resting
    // order holds 0.2·50/2 = 5.
    assert_eq!(
        view["balance"],
        json!({ "equity": 10014.95, "available": 9984.95, "cash": 9999.95, "unrealizedPnl": 15, "marginUsed": 25, "currency": "USDT" })
    );
    assert_eq!(
        view["open"],
        json!([{
            "cloid": resting.to_string(),
            "id": "ex-2",
            "symbol": "BTC",
            "side": "buy",
            "type": "limit",
            "qty": 0.2,
            "filledQty": 0,
            "price": 50,
            "triggerPrice": null,
            "reduceOnly": false,
            "status": "open",
        }])
    );
    // The last three closed bars, oldest first (the bar being handled included).
    let closes: Vec<&Json> = view["klines"].as_array().unwrap().iter().map(|k| &k["close"]).collect();
    assert_eq!(closes, [&json!(110), &json!(120), &json!(130)]);
    assert_eq!(
        view["klines"][2],
        json!({ "symbol": "BTC", "interval": "1m", "openTime": T0 + 3 * MINUTE, "open": 130, "high": 130, "low": 130, "close": 130, "volume": 1, "closed": true })
    );
    assert_eq!(view["all_klines"], json!(4));
    assert_eq!(view["ticker"], json!({ "symbol": "BTC", "price": 130, "time": T0 + 4 * MINUTE }));

    // st_on_order and st_on_fill saw the trader's own answers only, in their documented shapes.
    assert_eq!(
        run.kv("api", "orders").unwrap(),
        json!([
            { "cloid": entry.to_string(), "id": "ex-1", "status": "accepted" },
            { "cloid": resting.to_string(), "id": "ex-2", "status": "accepted" },
        ])
    );
    assert_eq!(
        run.kv("api", "fills").unwrap(),
        json!([{ "cloid": entry.to_string(), "fillId": "fill-1", "symbol": "BTC", "side": "buy", "qty": 0.5, "price": 100, "fee": 0.05, "maker": false }])
    );
    assert_eq!(run.kv("other", "beats"), Some(json!(4)));
    assert_eq!(run.health("other").calls, 5, "another trader's answers are not routed to it");
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

const ROUTED: &str = r#"
function st_init(ctx) { return ctx.strategy.params.subscribe; }
function st_heartbeat(ctx, t) { ctx.state.set("ticks", ctx.state.get("ticks", []).concat([t.symbol + "@" + t.close])); }
function st_on_order(ctx, o) { ctx.state.set("orders", ctx.state.get("orders", []).concat([o])); }
function st_on_fill(ctx, f) { ctx.state.set("fills", ctx.state.get("fills", []).concat([f])); }
function st_on_data(ctx, p) { ctx.state.set("data", ctx.state.get("data", []).concat([p])); }
"#;

#[test]
fn routing_follows_the_subscription_and_warmup() {
    let traders = ["all", "only_a", "warm", "five"];
    let mut run = Run::new(&["A", "B"], &traders);
    let subscribe =
        [json!({}), json!({ "symbols": ["A"] }), json!({ "symbols": "A", "warmup": 2 }), json!({ "interval": "5m" })];
    for (trader, sub) in traders.iter().zip(subscribe) {
        run.load(StrategySpec::new(trader, "routed.js", ROUTED.to_owned(), json!({ "subscribe": sub }), 1));
    }
    for (symbol, close) in [("A", "1"), ("B", "2"), ("A", "3"), ("B", "4"), ("A", "5"), ("B", "6"), ("A", "7")] {
        run.bar(symbol, close);
    }
    // An open candle is not a heartbeat.
    let open = Kline {
        symbol: "A".into(),
        interval_ms: MINUTE,
        open_time_ms: run.next_open,
        open: d("8"),
        high: d("8"),
        low: d("8"),
        close: d("8"),
        volume: d("1"),
        closed: false,
    };
    run.input(run.next_open, "", Event::KlineReceived(open));
    // A 5m bar reaches the "five" subscriber and the catch-all only.
    let five = Kline {
        symbol: "B".into(),
        interval_ms: 5 * MINUTE,
        open_time_ms: T0,
        open: d("9"),
        high: d("9"),
        low: d("9"),
        close: d("9"),
        volume: d("1"),
        closed: true,
    };
    run.input(T0 + 5 * MINUTE, "", Event::KlineReceived(five));

    let ticks = |t: &str| run.kv(t, "ticks").unwrap_or(json!([]));
    assert_eq!(ticks("all"), json!(["A@1", "B@2", "A@3", "B@4", "A@5", "B@6", "A@7", "B@9"]));
    assert_eq!(ticks("only_a"), json!(["A@1", "A@3", "A@5", "A@7"]));
    assert_eq!(ticks("warm"), json!(["A@5", "A@7"]), "the first two A bars are warmup");
    assert_eq!(ticks("five"), json!(["B@9"]));
}

#[test]
fn order_fill_and_data_hooks_get_their_documented_shapes() {
    let mut run = Run::new(&["A"], &["me", "you"]);
    for trader in ["me", "you"] {
        run.load(StrategySpec::new(trader, "routed.js", ROUTED.to_owned(), json!({ "subscribe": {} }), 1));
    }
    let (x, y) = (Cloid([1; 16]), Cloid([2; 16]));
    let t = T0 + MINUTE;
    run.input(t, "me", Event::OrderAccepted { cloid: x, exchange_order_id: "e1".into() });
    run.input(t, "me", Event::OrderCancelled { cloid: y, reason: "user".into() });
    run.input(
        t,
        "me",
        Event::OrderRejected { cloid: y, reason: RejectReason::Exchange { code: 110007, message: "no money".into() } },
    );
    let fill = Fill {
        cloid: x,
        fill_id: "f1".into(),
        symbol: "A".into(),
        side: Side::Sell,
        qty: d("0.25"),
        price: d("12.5"),
        fee_quote: d("0.001"),
        liquidity: Liquidity::Maker,
    };
    run.input(t, "me", Event::OrderFilled(fill));
    run.input(t + 1, "", Event::DataPointReceived { series: "hedge".into(), value: d("-1.5") });

    assert_eq!(
        run.kv("me", "orders").unwrap(),
        json!([
            { "cloid": x.to_string(), "id": "e1", "status": "accepted" },
            { "cloid": y.to_string(), "status": "cancelled", "reason": "user" },
            { "cloid": y.to_string(), "status": "rejected", "reason": "exchange error 110007: no money" },
        ])
    );
    assert_eq!(
        run.kv("me", "fills").unwrap(),
        json!([{ "cloid": x.to_string(), "fillId": "f1", "symbol": "A", "side": "sell", "qty": 0.25, "price": 12.5, "fee": 0.001, "maker": true }])
    );
    // Shared data reaches everyone; another trader's order answers do not.
    for trader in ["me", "you"] {
        assert_eq!(run.kv(trader, "data").unwrap(), json!([{ "series": "hedge", "value": -1.5, "time": t + 1 }]));
    }
    assert_eq!(run.kv("you", "orders"), None);
    assert_eq!(run.kv("you", "fills"), None);
}

// ---------------------------------------------------------------------------
// The worker's report
// ---------------------------------------------------------------------------

#[test]
fn report_counts_calls_errors_restarts_and_stops() {
    let mut run = Run::new(&["BTC"], &["good", "flaky", "broken"]);
    run.load(spec("good", GOOD));
    run.load(spec("flaky", "function st_heartbeat(ctx, t) { if (t.close === 102) throw new Error('once'); }"));
    run.load(spec("broken", "function st_heartbeat(ctx, t) {"));
    run.bars(5);

    let report = run.worker.report();
    assert_eq!(report.iter().map(|h| h.trader.as_str()).collect::<Vec<_>>(), ["broken", "flaky", "good"]);
    let good = run.health("good");
    assert_eq!(
        (good.name.as_str(), good.calls, good.errors, good.restarts, good.stopped.as_deref()),
        ("good", 6, 0, 0, None)
    );
    assert!(good.latency_p50_us.is_some() && good.latency_p99_us >= good.latency_p50_us);
    assert!(good.memory_bytes > 0);
    // No st_init: the calls are the five heartbeats.
    let flaky = run.health("flaky");
    assert_eq!((flaky.calls, flaky.errors, flaky.restarts, flaky.stopped.as_deref()), (5, 1, 1, None));
    let broken = run.health("broken");
    // A load failure is an error in the report as in the journal.
    assert_eq!((broken.calls, broken.errors, broken.restarts, broken.memory_bytes), (0, 1, 0, 0));
    for h in &report {
        let folded = run.sink.state().traders[&h.trader].strategy.as_ref().unwrap();
        assert_eq!((h.errors, h.restarts), (folded.errors, folded.restarts), "{}", h.trader);
    }
    assert!(broken.stopped.unwrap().starts_with("cannot load: broken.js:1:"));

    // Exit stops everyone still running, through st_exit, with a journaled reason.
    run.worker.exit(&mut run.sink, run.next_open, "shutdown").unwrap();
    for h in run.worker.report() {
        assert!(h.stopped.is_some(), "{}", h.trader);
    }
    assert_eq!(stopped(run.events_of("good").last().unwrap()), "shutdown");
    assert_eq!(stopped(run.events_of("flaky").last().unwrap()), "shutdown");
    assert_eq!(run.events_of("broken").iter().filter(|e| e.kind() == "StrategyStopped").count(), 1);
}

// ---------------------------------------------------------------------------
// Declared indicators and wake conditions
// ---------------------------------------------------------------------------

/// Declares a fast and a slow average and is woken on their crosses only; counts its calls
/// and remembers what each tick carried.
const CROSSES: &str = r#"
function st_init(ctx) {
  return {
    symbols: ["BTC"],
    indicators: { fast: { type: "sma", period: 2 }, slow: { type: "sma", period: 4 } },
    wake: { cross: ["fast", "slow"] },
  };
}
function st_heartbeat(ctx, t) {
  if (t.close === 11) throw new Error("the cross at 11: restart me");
  const seen = ctx.state.get("seen", []);
  seen.push([t.close, t.indicators.fast, t.indicators.slow]);
  ctx.state.set("seen", seen);
}
"#;

/// Closes that make sma(2) cross sma(4) at known bars.
fn crossing_closes() -> Vec<&'static str> {
    vec!["10", "11", "12", "13", "14", "12", "10", "8", "9", "11", "13", "15", "12", "9", "6"]
}

#[test]
fn a_declared_plan_wakes_the_strategy_only_on_crosses_and_survives_a_restart() {
    let mut run = Run::new(&["BTC"], &["x"]);
    run.load(spec("x", CROSSES));
    for close in crossing_closes() {
        run.bar("BTC", close);
    }
    // The engine's own averages decide the wakes; check them against the closes by hand.
    let closes: Vec<f64> = crossing_closes().iter().map(|c| c.parse().unwrap()).collect();
    let sma = |i: usize, n: usize| closes[i + 1 - n..=i].iter().sum::<f64>() / n as f64;
    let mut expected = Vec::new();
    let mut before: Option<bool> = None;
    for (i, close) in closes.iter().enumerate().skip(3) {
        let above = sma(i, 2) > sma(i, 4);
        if before.is_some_and(|b| b != above) {
            expected.push(json!([close, sma(i, 2), sma(i, 4)]));
        }
        before = Some(above);
    }
    assert_eq!(expected.len(), 3, "the closes cross three times: {expected:?}");
    // The wake at 11 threw (its state writes are dropped) and restarted the sandbox; the
    // averages live outside it and went on, so the wake after it still comes exactly at the
    // cross, with the same values.
    let kept: Vec<Json> = expected.iter().filter(|e| e[0] != json!(11.0)).cloned().collect();
    assert_eq!(kept.len(), 2);
    let numbers = |v: &Json| -> Vec<Vec<f64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
            .collect()
    };
    assert_eq!(numbers(&run.kv("x", "seen").unwrap()), numbers(&Json::Array(kept)));
    let events = run.events_of("x");
    assert_eq!(count(&events, "StrategyRestarted"), 1, "{:?}", kinds(&events));
    let health = run.health("x");
    // st_init twice (load, restart) and one heartbeat per cross: three, not fifteen.
    assert_eq!(health.calls, 2 + 3, "{health:?}");
}

#[test]
fn a_bad_declaration_stops_the_strategy_with_the_key_named() {
    let source = r#"
function st_init(ctx) { return { indicators: { fast: { type: "sma", period: 0 } } }; }
function st_heartbeat(ctx, t) {}
"#;
    let mut run = Run::new(&["BTC"], &["x"]);
    run.load(spec("x", source));
    run.bars(3);
    let events = run.events_of("x");
    assert_eq!(kinds(&events), ["TraderStarted", "StrategyLoaded", "StrategyErred", "StrategyStopped"]);
    let (hook, _, message) = erred(events[2]);
    assert_eq!(hook, "st_init");
    assert!(message.starts_with("x.js: st_init: indicators.fast: "), "{message}");
    assert!(stopped(events[3]).contains("indicators.fast"), "{}", stopped(events[3]));
}

// ---------------------------------------------------------------------------
// Loading twice, the restart budget, journaled timeouts
// ---------------------------------------------------------------------------

#[test]
fn a_second_strategy_for_a_trader_is_refused_and_journals_nothing() {
    let mut run = Run::new(&["BTC"], &["alice"]);
    run.load(spec("alice", GOOD));
    let journaled = run.sink.log.len();
    let refused = run.worker.load(spec("alice", GOOD), &mut run.sink, T0);
    assert!(
        matches!(&refused, Err(SinkError::Refused(message)) if message == "trader alice already runs a strategy"),
        "{refused:?}"
    );
    assert_eq!(run.sink.log.len(), journaled);
    run.bars(2);
    assert_eq!(run.kv("alice", "beats"), Some(json!(2)), "the first strategy runs on");
}

const THROWS: &str = r#"
function st_init(ctx) { return { symbols: ["BTC"] }; }
function st_heartbeat(ctx, t) { throw new Error("bad bar " + t.close); }
"#;

/// `bars` bars of BTC, `gap` apart in event time; the `bad` strategy throws on each.
fn failing_every(gap_ms: i64, bars: u32, reset_after_ms: Option<u64>) -> Run {
    let mut bad = spec("bad", THROWS);
    bad.restart_reset_after_ms = reset_after_ms;
    let mut run = neighbours("bad", bad);
    for _ in 0..bars {
        run.bars(1);
        run.next_open += gap_ms - MINUTE;
    }
    run
}

fn restarts(events: &[&Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StrategyRestarted { attempt } => Some(*attempt),
            _ => None,
        })
        .collect()
}

#[test]
fn failures_spaced_beyond_the_reset_period_never_stop_the_strategy() {
    // Ten failures, each 10 minutes of event time after the last, with a 10-minute period.
    let run = failing_every(10 * MINUTE, 10, Some(10 * 60_000));
    let events = run.events_of("bad");
    assert_eq!(count(&events, "StrategyErred"), 10);
    assert_eq!(restarts(&events), [1; 10], "every failure starts the count again");
    assert_eq!(count(&events, "StrategyStopped"), 0);
    let health = run.health("bad");
    assert_eq!((health.restarts, health.stopped), (10, None), "the report counts every restart");
    neighbours_kept_going(&run, 10);
}

#[test]
fn four_failures_within_the_reset_period_stop_the_strategy() {
    // Nine minutes apart: never a healthy period of ten.
    let run = failing_every(9 * MINUTE, 6, Some(10 * 60_000));
    let events = run.events_of("bad");
    assert_eq!(count(&events, "StrategyErred"), 4);
    assert_eq!(restarts(&events), [1, 2, 3]);
    let reason = stopped(events.last().unwrap());
    assert!(reason.starts_with("failed 4 times; last: st_heartbeat: Error: bad bar 101"), "{reason}");
    // The default period is an hour of event time: one-minute bars stop it the same way.
    let run = failing_every(MINUTE, 6, spec("x", "").restart_reset_after_ms);
    assert_eq!(restarts(&run.events_of("bad")), [1, 2, 3]);
    assert_eq!(count(&run.events_of("bad"), "StrategyStopped"), 1);
}

#[test]
fn without_a_reset_period_failures_months_apart_still_stop_the_strategy() {
    // Schema-1 journals ran without one: their history must not change.
    let run = failing_every(90 * 24 * 60 * MINUTE, 5, None);
    let events = run.events_of("bad");
    assert_eq!(restarts(&events), [1, 2, 3]);
    assert_eq!(count(&events, "StrategyStopped"), 1);
}

/// A sink that says the wall clock ended a call of `trader` once that call has placed an order.
struct StallsAfterAnOrder {
    inner: Recorder,
    trader: &'static str,
}

impl Sink for StallsAfterAnOrder {
    fn state(&self) -> &State {
        self.inner.state()
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        self.inner.emit(time_ms, trader, event)
    }

    fn call_timed_out(&mut self, trader: &str) -> bool {
        trader == self.trader
            && self.inner.log.last().is_some_and(|(_, _, t, e)| t == trader && e.kind() == "OrderSubmitted")
    }
}

#[test]
fn a_call_the_sink_says_timed_out_ends_after_what_it_already_emitted() {
    let source = r#"
function st_init(ctx) { return { symbols: ["BTC"] }; }
function st_heartbeat(ctx, t) {
  ctx.api.placeOrder({ symbol: t.symbol, side: "buy", type: "limit", price: 1, qty: 0.001 });
  let x = 0;
  for (let i = 0; i < 200000; i++) x += i % 3;
  ctx.state.set("done", x);
  ctx.api.placeOrder({ symbol: t.symbol, side: "buy", type: "limit", price: 1, qty: 0.001 });
}
"#;
    let mut sink = StallsAfterAnOrder { inner: Recorder::default(), trader: "bad" };
    let mut worker = Worker::new();
    let input = |sink: &mut StallsAfterAnOrder, worker: &mut Worker, time_ms: i64, trader: &str, event: Event| {
        let seq = sink.emit(time_ms, trader, &event).unwrap();
        worker.on_input(sink, seq, time_ms, trader, &event).unwrap();
    };
    input(&mut sink, &mut worker, T0, "", Event::InstrumentDefined(instrument("BTC")));
    input(&mut sink, &mut worker, T0, "bad", Event::TraderStarted(start("10000", "2")));
    let mut bad = spec("bad", source);
    // Neither limit could end the call: only the sink's word does.
    bad.call_fuel = u64::MAX;
    bad.call_timeout_ms = 600_000;
    worker.load(bad, &mut sink, T0).unwrap();
    let kline = Kline {
        symbol: "BTC".into(),
        interval_ms: MINUTE,
        open_time_ms: T0,
        open: d("100"),
        high: d("100"),
        low: d("100"),
        close: d("100"),
        volume: d("1"),
        closed: true,
    };
    input(&mut sink, &mut worker, T0 + MINUTE, "", Event::KlineReceived(kline));

    let events: Vec<&Event> = sink.inner.log.iter().filter(|(_, _, t, _)| t == "bad").map(|(_, _, _, e)| e).collect();
    assert_eq!(
        kinds(&events),
        ["TraderStarted", "StrategyLoaded", "OrderSubmitted", "StrategyErred", "StrategyRestarted"],
        "one order, then the timeout: the rest of the call never ran"
    );
    assert_eq!(
        erred(events[3]),
        ("st_heartbeat", StrategyErrorKind::Timeout, "strategy call timed out after 600000 ms")
    );
    let Event::StrategyLoaded(load) = events[1] else { unreachable!("checked above") };
    assert_eq!((load.limits.call_fuel, load.limits.call_timeout_ms), (u64::MAX, 600_000));
    assert_eq!(load.limits.restart_reset_after_ms, Some(strategies::runtime::DEFAULT_RESTART_RESET_AFTER_MS));
}
