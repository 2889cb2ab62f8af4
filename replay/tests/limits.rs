//! `replay verify` of journals whose strategies hit their limits: the journaled
//! limits are used (not this build's defaults), a wall-clock timeout is taken from
//! the journal, and a journal this build's worker refuses is not "reproduced".

use std::{path::Path, str::FromStr};

use journal::{
    event::{Instrument, Kline, StrategyErrorKind, TraderStart},
    Durability, Event, Journal, State,
};
use replay::verify::{verify, Report};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use strategies::{
    runtime::StrategySpec,
    sink::{JournalSink, Sink, SinkError},
    worker::Worker,
};

const MINUTE: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// A journal sink that can pretend the wall clock ended the call in progress (a stalled
/// machine): what a live run journals when its backstop fires.
struct Live {
    inner: JournalSink,
    stall: Option<String>,
}

impl Sink for Live {
    fn state(&self) -> &State {
        self.inner.state()
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        self.inner.emit(time_ms, trader, event)
    }

    fn call_timed_out(&mut self, trader: &str) -> bool {
        self.stall.as_deref() == Some(trader)
    }
}

struct Run {
    sink: Live,
    worker: Worker,
    next_open: i64,
}

impl Run {
    fn new(dir: &Path, traders: &[&str]) -> Run {
        let inner = JournalSink::open(dir, Durability::None).unwrap();
        let mut run = Run { sink: Live { inner, stall: None }, worker: Worker::new(), next_open: T0 };
        let instrument = Instrument {
            symbol: "BTC".into(),
            tick_size: d("0.01"),
            qty_step: d("0.001"),
            min_qty: d("0.001"),
            max_leverage: d("10"),
            maintenance_margin_rate: d("0.005"),
            taker_fee_rate: d("0.0005"),
            maker_fee_rate: d("0.0002"),
        };
        run.input(T0, "", Event::InstrumentDefined(instrument));
        for trader in traders {
            let start = TraderStart {
                exchange: "sim".into(),
                account: "test".into(),
                currency: "USDT".into(),
                allocation_pct: d("100"),
                capital_quote: d("10000"),
                leverage: d("2"),
            };
            run.input(T0, trader, Event::TraderStarted(start));
        }
        run
    }

    fn input(&mut self, time_ms: i64, trader: &str, event: Event) -> u64 {
        let seq = self.sink.emit(time_ms, trader, &event).unwrap();
        self.worker.on_input(&mut self.sink, seq, time_ms, trader, &event).unwrap();
        seq
    }

    fn bars(&mut self, n: u32) {
        for i in 1..=n {
            let close = Decimal::from(100 + i);
            let kline = Kline {
                symbol: "BTC".into(),
                interval_ms: MINUTE,
                open_time_ms: self.next_open,
                open: close,
                high: close,
                low: close,
                close,
                volume: Decimal::ONE,
                closed: true,
            };
            self.next_open += MINUTE;
            self.input(self.next_open, "", Event::KlineReceived(kline));
        }
    }

    /// Stops the strategies (journaled) and closes the journal.
    fn finish(self) {
        self.finish_with_snapshot(false);
    }

    fn finish_with_snapshot(mut self, snapshot: bool) {
        if snapshot {
            self.sink.inner.snapshot().unwrap();
        }
        self.worker.exit(&mut self.sink, self.next_open, "end of data").unwrap();
        self.sink.inner.journal.sync().unwrap();
    }
}

fn spec(trader: &str, source: &str) -> StrategySpec {
    StrategySpec::new(trader, &format!("{trader}.js"), source.to_owned(), Json::Null, 7)
}

fn events(dir: &Path) -> Vec<(String, Event)> {
    let journal = Journal::open(dir, Durability::None).unwrap();
    journal.records(0).map(|r| r.unwrap()).map(|e| (e.trader, e.event)).collect()
}

fn errors_of(events: &[(String, Event)], trader: &str) -> Vec<(StrategyErrorKind, String)> {
    events
        .iter()
        .filter(|(t, _)| t == trader)
        .filter_map(|(_, e)| match e {
            Event::StrategyErred { kind, message, .. } => Some((*kind, message.clone())),
            _ => None,
        })
        .collect()
}

fn count(events: &[(String, Event)], trader: &str, kind: &str) -> usize {
    events.iter().filter(|(t, e)| t == trader && e.kind() == kind).count()
}

fn assert_reproduced(report: &Report) {
    assert!(report.reproduced, "diverged: {:#?}", report.divergence);
    assert!(!report.ends_mid_decision);
    assert_eq!(report.inputs + report.decisions_checked, report.events, "every record was fed or re-derived");
}

const ENDLESS: &str = r#"
function st_init(ctx) { return {}; }
function st_heartbeat(ctx, t) { ctx.state.set("entered", t.close); for (;;) {} }
"#;

#[test]
fn a_journal_that_loads_two_strategies_for_one_trader_is_not_reproduced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let mut run = Run::new(&dir, &["alice"]);
    run.worker.load(spec("alice", "function st_heartbeat(ctx, t) {}"), &mut run.sink, T0).unwrap();
    // Today's worker refuses a second strategy for alice and journals nothing...
    let refused = run.worker.load(spec("alice", "function st_heartbeat(ctx, t) { }"), &mut run.sink, T0);
    assert!(matches!(refused, Err(SinkError::Refused(ref m)) if m.contains("already runs a strategy")), "{refused:?}");
    // ...but a journal written by another driver can hold one.
    let second = run.sink.inner.journal.len();
    Worker::new().load(spec("alice", "function st_heartbeat(ctx, t) { }"), &mut run.sink, T0).unwrap();
    run.bars(2);
    run.finish();
    assert_eq!(count(&events(&dir), "alice", "StrategyLoaded"), 2);

    let report = verify(&dir, &[]).unwrap();
    assert!(!report.reproduced, "replay stopped at the second load: that is not a reproduction");
    let divergence = report.divergence.expect("a divergence");
    assert_eq!(divergence.seq, second);
    assert!(divergence.explanation.contains("trader alice already runs a strategy"), "{}", divergence.explanation);
}

#[test]
fn a_journal_recorded_with_small_fuel_replays_its_out_of_fuel_under_any_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let mut run = Run::new(&dir, &["bad"]);
    let mut bad = spec("bad", ENDLESS);
    assert_ne!(bad.call_fuel, 3, "the build's default differs from what is recorded");
    bad.call_fuel = 3;
    bad.call_timeout_ms = 600_000;
    run.worker.load(bad, &mut run.sink, T0).unwrap();
    run.bars(5);
    run.finish();

    let events = events(&dir);
    let errors = errors_of(&events, "bad");
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors
        .iter()
        .all(|e| *e == (StrategyErrorKind::OutOfFuel, "strategy ran out of fuel (3 interrupt ticks)".into())));
    assert_eq!((count(&events, "bad", "StrategyRestarted"), count(&events, "bad", "StrategyStopped")), (3, 1));
    let Some((_, Event::StrategyLoaded(load))) = events.iter().find(|(_, e)| e.kind() == "StrategyLoaded") else {
        panic!("no load")
    };
    assert_eq!((load.limits.call_fuel, load.limits.call_timeout_ms), (3, 600_000), "the limits are journaled");

    assert_reproduced(&verify(&dir, &[]).unwrap());
}

#[test]
fn an_endless_loop_stopped_by_the_wall_clock_replays_with_its_restarts_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let mut run = Run::new(&dir, &["bad"]);
    let mut bad = spec("bad", ENDLESS);
    bad.call_fuel = u64::MAX;
    bad.call_timeout_ms = 20;
    run.worker.load(bad, &mut run.sink, T0).unwrap();
    run.bars(6);
    run.finish();

    let events = events(&dir);
    let errors = errors_of(&events, "bad");
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors.iter().all(|e| *e == (StrategyErrorKind::Timeout, "strategy call timed out after 20 ms".into())));
    assert_eq!((count(&events, "bad", "StrategyRestarted"), count(&events, "bad", "StrategyStopped")), (3, 1));

    let started = std::time::Instant::now();
    assert_reproduced(&verify(&dir, &[]).unwrap());
    // Replay ends each call where the journal says it timed out (it never spins for fuel).
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_timeout_the_replaying_machine_would_not_hit_is_taken_from_the_journal() {
    // The live machine stalled: the backstop ended a call that normally finishes well within
    // it. Replay's own backstop (10 minutes) cannot fire; only the journal can say "timed out".
    let busy = r#"
function st_init(ctx) { return {}; }
function st_heartbeat(ctx, t) {
  let x = 0;
  for (let i = 0; i < 300000; i++) x += i % 7;
  ctx.state.set("bars", ctx.state.get("bars", 0) + 1);
  ctx.state.set("x", x);
}
"#;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let mut run = Run::new(&dir, &["alpha", "bad"]);
    run.worker.load(spec("alpha", busy), &mut run.sink, T0).unwrap();
    let mut bad = spec("bad", busy);
    bad.call_fuel = u64::MAX;
    bad.call_timeout_ms = 600_000;
    run.worker.load(bad, &mut run.sink, T0).unwrap();
    run.bars(2);
    run.sink.stall = Some("bad".into());
    run.bars(1);
    run.sink.stall = None;
    run.bars(2);
    run.finish();

    let events = events(&dir);
    assert_eq!(
        errors_of(&events, "bad"),
        [(StrategyErrorKind::Timeout, "strategy call timed out after 600000 ms".into())]
    );
    assert_eq!(count(&events, "bad", "StrategyRestarted"), 1);
    assert!(errors_of(&events, "alpha").is_empty(), "the neighbour was not stalled");
    // Four good heartbeats of five, counted in ctx.state: the restart resumed from it.
    let bars = events.iter().rev().find_map(|(t, e)| match e {
        Event::StrategyStateChanged { changes } if t == "bad" => {
            changes.iter().find(|(k, _)| k == "bars").map(|(_, v)| v.0.clone())
        }
        _ => None,
    });
    assert_eq!(bars, Some(serde_json::json!(4)));

    assert_reproduced(&verify(&dir, &[]).unwrap());
}

#[test]
fn a_snapshot_of_an_older_state_layout_is_refused_and_the_events_rebuild_the_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let mut run = Run::new(&dir, &["alice"]);
    let good = r#"
function st_init(ctx) { return {}; }
function st_heartbeat(ctx, t) { ctx.api.placeOrder({ symbol: t.symbol, side: "buy", type: "limit", price: 1, qty: 0.001 }); }
"#;
    run.worker.load(spec("alice", good), &mut run.sink, T0).unwrap();
    run.bars(3);
    run.finish_with_snapshot(true);

    // Rewrite the snapshot as a layout-1 state would begin (with a matching digest).
    let seq = {
        let db = sled::open(&dir).unwrap();
        let snapshots = db.open_tree("snapshots").unwrap();
        let (key, value) = snapshots.iter().next().unwrap().unwrap();
        let mut encoded = value[32..].to_vec();
        assert_eq!(encoded[0], 2, "layout 2 comes first");
        encoded[0] = 1;
        let mut old = journal::hash::state(&encoded).0.to_vec();
        old.extend_from_slice(&encoded);
        snapshots.insert(&key, old).unwrap();
        db.flush().unwrap();
        u64::from_be_bytes(key.as_ref().try_into().unwrap())
    };
    {
        let journal = Journal::open(&dir, Durability::None).unwrap();
        assert!(journal.snapshot(seq).unwrap().is_none(), "not misread as a state: skipped");
        // `journal verify` and `replay rebuild` skip it too, and say so.
        let report = journal::verify::journal(&journal).unwrap();
        assert_eq!((report.snapshots_checked, report.snapshots_skipped), (0, 1));
        let rebuilt = journal.rebuild(None).unwrap();
        assert_eq!(rebuilt.last_seq, Some(journal.len() - 1));
    }
    // A driver reopening the journal ignores it and folds the events.
    let reopened = JournalSink::open(&dir, Durability::None).unwrap();
    let mut from_events = State::default();
    for record in reopened.journal.records(0) {
        from_events.apply(&record.unwrap());
    }
    assert_eq!(reopened.state.digest(), from_events.digest());
    assert_eq!(reopened.state.last_seq, Some(reopened.journal.len() - 1));
}
