//! `replay::resume`: a journal cut anywhere goes on exactly where it ended.

use std::path::Path;

use engine::Engine;
use journal::{
    event::{Instrument, Kline, TraderStart},
    Durability, Envelope, Event, Journal,
};
use replay::resume::{resume, ResumeError};
use rust_decimal::Decimal;
use sim::{SimConfig, SimVenue};
use strategies::{runtime::StrategySpec, sink::JournalSink};

/// Two orders per bar (one call, two legs) and a state change: a step with several decisions.
const STRATEGY: &str = r#"
function st_init(ctx) { return { symbols: ["BTCUSDT"], warmup: 0 }; }
function st_heartbeat(ctx, tick) {
  const n = ctx.state.get("n", 0);
  ctx.api.placeOrder({ symbol: tick.symbol, side: n % 2 ? "sell" : "buy", type: "market", qty: 0.01 });
  ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "limit", qty: 0.01, price: Math.round(tick.close * 0.9) });
  ctx.state.set("n", n + 1);
}
"#;

const START: i64 = 1_700_000_000_000;

fn bar(i: i64) -> Kline {
    let p = Decimal::new(100 + (i % 7), 0);
    Kline {
        symbol: "BTCUSDT".into(),
        interval_ms: 60_000,
        open_time_ms: START + i * 60_000,
        open: p,
        high: p + Decimal::ONE,
        low: p - Decimal::ONE,
        close: p,
        volume: Decimal::TEN,
        closed: true,
    }
}

/// A journaled run of `bars` bars through the engine and the simulated exchange.
fn record(dir: &Path, bars: i64) -> Vec<Envelope> {
    let mut engine = Engine::new(JournalSink::open(dir, Durability::None).unwrap());
    let mut venue = SimVenue::new(SimConfig::default());
    let instrument = Instrument {
        symbol: "BTCUSDT".into(),
        tick_size: Decimal::new(1, 1),
        qty_step: Decimal::new(1, 3),
        min_qty: Decimal::new(1, 3),
        max_leverage: Decimal::TEN,
        maintenance_margin_rate: Decimal::new(5, 3),
        taker_fee_rate: Decimal::new(6, 4),
        maker_fee_rate: Decimal::new(2, 4),
    };
    engine.step(START, "", &Event::InstrumentDefined(instrument), &mut venue).unwrap();
    let start = TraderStart {
        exchange: "sim".into(),
        account: "a".into(),
        currency: "USDT".into(),
        allocation_pct: Decimal::ONE_HUNDRED,
        capital_quote: Decimal::new(100_000, 0),
        leverage: Decimal::ONE,
    };
    engine.step(START, "t", &Event::TraderStarted(start), &mut venue).unwrap();
    let spec = StrategySpec::new("t", "two_legs.js", STRATEGY.into(), serde_json::json!({}), 1);
    engine.load(spec, START, &mut venue).unwrap();
    for i in 0..bars {
        let kline = bar(i);
        for (who, time_ms, event) in venue.on_bar(engine.state(), &kline) {
            engine.step(time_ms, &who, &event, &mut venue).unwrap();
        }
        engine.step(kline.open_time_ms + 60_000, "", &Event::KlineReceived(kline), &mut venue).unwrap();
        engine.settle(&mut venue).unwrap();
    }
    let sink = engine.into_sink();
    sink.journal.records(0).map(Result::unwrap).collect()
}

/// A new journal holding `records` (re-appended: the same chain, since the same events).
fn copy(dir: &Path, records: &[Envelope]) {
    let mut journal = Journal::create(dir, Durability::None).unwrap();
    for r in records {
        let appended = journal.append(r.time_ms, &r.trader, &r.event).unwrap();
        assert_eq!(appended.hash, r.hash, "the copy chains as the original");
    }
    journal.sync().unwrap();
}

fn records_of(dir: &Path) -> Vec<Envelope> {
    let journal = Journal::open(dir, Durability::None).unwrap();
    journal.records(0).map(Result::unwrap).collect()
}

#[test]
fn a_journal_cut_inside_a_step_is_finished_exactly_as_the_uncut_run() {
    let tmp = tempfile::tempdir().unwrap();
    let full = record(&tmp.path().join("full"), 8);
    // The last kline whose step decided something: cut after the first decision of it.
    let kline_at = full
        .iter()
        .rposition(|r| {
            matches!(r.event, Event::KlineReceived(_))
                && full.get(r.seq as usize + 1).is_some_and(|n| !n.event.is_input())
        })
        .expect("a kline with decisions");
    let step_end = (kline_at + 1..full.len()).find(|&i| full[i].event.is_input()).unwrap_or(full.len());
    assert!(step_end - kline_at >= 3, "the step decides two orders and a state change");
    for cut in [kline_at + 1, kline_at + 2, step_end - 1] {
        let dir = tmp.path().join(format!("cut-{cut}"));
        copy(&dir, &full[..cut]);
        let resumed = resume(&dir, Durability::None).unwrap();
        assert_eq!(resumed.events, cut as u64);
        assert_eq!(resumed.appended, (step_end - cut) as u64, "cut at {cut}: the rest of the step is appended");
        let state = resumed.engine.state().clone();
        drop(resumed);
        let finished = records_of(&dir);
        assert_eq!(finished, full[..step_end].to_vec(), "cut at {cut}: the same records, hashes and all");
        let reference = Journal::open(&tmp.path().join("full"), Durability::None).unwrap();
        assert_eq!(state.digest(), reference.rebuild(Some(step_end as u64 - 1)).unwrap().digest());
    }
}

#[test]
fn a_resumed_engine_goes_on_trading_and_its_journal_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let full = record(&tmp.path().join("full"), 4);
    let dir = tmp.path().join("resumed");
    copy(&dir, &full);
    let mut engine = resume(&dir, Durability::None).unwrap().engine;
    let mut venue = SimVenue::new(SimConfig::default());
    engine.recover(&mut venue).unwrap();
    engine.settle(&mut venue).unwrap();
    let kline = bar(4);
    for (who, time_ms, event) in venue.on_bar(engine.state(), &kline) {
        engine.step(time_ms, &who, &event, &mut venue).unwrap();
    }
    engine.step(kline.open_time_ms + 60_000, "", &Event::KlineReceived(kline), &mut venue).unwrap();
    engine.settle(&mut venue).unwrap();
    let n = engine.state().traders["t"].strategy.as_ref().map(|s| s.kv.get("n").map(|v| v.0.clone()));
    assert_eq!(n, Some(Some(serde_json::json!(5))), "the strategy's state went on from 4");
    let digest = engine.state().digest();
    drop(engine);
    // The resumed run is one history with the recorded one: replay verify proves it.
    let report = replay::verify::verify(&dir, &[]).unwrap();
    assert!(report.reproduced, "{:?}", report.divergence);
    assert_eq!(report.state_digest, digest);
    // And it is the run that never stopped.
    let uninterrupted = record(&tmp.path().join("five"), 5);
    assert_eq!(records_of(&dir), uninterrupted);
}

#[test]
fn a_journal_today_code_does_not_reproduce_is_not_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut records = record(&tmp.path().join("full"), 3);
    let at = records.iter().position(|r| matches!(r.event, Event::OrderSubmitted(_))).unwrap();
    if let Event::OrderSubmitted(intent) = &mut records[at].event {
        intent.qty = Decimal::new(5, 2); // a decision edited, the chain rebuilt around it
    }
    let dir = tmp.path().join("edited");
    let mut journal = Journal::create(&dir, Durability::None).unwrap();
    for r in &records {
        journal.append(r.time_ms, &r.trader, &r.event).unwrap();
    }
    drop(journal);
    match resume(&dir, Durability::None) {
        Err(ResumeError::Diverged { divergence, .. }) => assert_eq!(divergence.seq, at as u64),
        other => panic!("expected a divergence at seq {at}, got {:?}", other.map(|r| r.events)),
    }
    // Nothing was appended to it.
    assert_eq!(records_of(&dir).len(), records.len());
}

#[test]
fn a_journal_missing_its_newest_durable_records_is_not_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("full");
    let records = record(&dir, 3);
    {
        let db = sled::open(&dir).unwrap();
        let last = records.len() as u64 - 1;
        journal::testkit::stored::replace(&db, last, None);
        db.flush().unwrap();
    }
    let error = resume(&dir, Durability::None).map(|r| r.events).expect_err("a truncated journal");
    assert!(error.to_string().contains("missing"), "{error}");
}
