//! The step's contract: effects after their decisions, durable first when the venue is
//! outside the process, in decision order; settling ends.

use std::{cell::RefCell, rc::Rc};

use journal::{
    event::{Instrument, Kline, TraderStart},
    Event, State,
};
use rust_decimal::Decimal;
use strategies::{
    runtime::StrategySpec,
    sink::{FoldSink, Sink, SinkError},
};

use super::*;

/// Places two orders on every bar and one more on every acknowledgement it hears of.
const STRATEGY: &str = r#"
function st_init(ctx) { return { symbols: ["BTCUSDT"], warmup: 0 }; }
function st_heartbeat(ctx, tick) {
  ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "limit", qty: 0.001, price: 50 });
  const second = ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "limit", qty: 0.001, price: 51 });
  ctx.api.cancelOrder(second.cloid);
}
function st_on_order(ctx, order) {
  if (ctx.strategy.params.chase && order.status === "accepted") {
    ctx.api.placeOrder({ symbol: "BTCUSDT", side: "buy", type: "limit", qty: 0.001, price: 49 });
  }
}
"#;

type Log = Rc<RefCell<Vec<String>>>;

/// A fold that logs when it is made durable.
struct LoggingSink {
    inner: FoldSink,
    log: Log,
}

impl Sink for LoggingSink {
    fn state(&self) -> &State {
        self.inner.state()
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        self.inner.emit(time_ms, trader, event)
    }

    fn make_durable(&mut self) -> Result<(), SinkError> {
        let through = self.inner.state().last_seq;
        self.log.borrow_mut().push(format!("durable {through:?}"));
        Ok(())
    }
}

/// A venue that logs what it is sent and acknowledges everything (cancels too) when polled.
struct LoggingVenue {
    log: Log,
    outside: bool,
    inbox: Vec<Effect>,
}

impl Venue for LoggingVenue {
    fn needs_durable(&self) -> bool {
        self.outside
    }

    fn send(&mut self, effect: &Effect, state: &State) {
        let folded = state.last_seq.is_some_and(|s| s >= effect.seq());
        let what = match effect {
            Effect::Submit { .. } => "submit",
            Effect::Cancel { .. } => "cancel",
            Effect::CallLlm { .. } => "llm",
        };
        self.log.borrow_mut().push(format!("{what} {} folded={folded}", effect.seq()));
        self.inbox.push(effect.clone());
    }

    fn poll(&mut self, state: &State) -> Vec<Input> {
        self.inbox
            .drain(..)
            .filter_map(|effect| {
                let event = match &effect {
                    Effect::Submit { intent, .. } => {
                        Event::OrderAccepted { cloid: intent.cloid, exchange_order_id: intent.cloid.to_string() }
                    }
                    Effect::Cancel { cloid, .. } => Event::OrderCancelled { cloid: *cloid, reason: "asked".into() },
                    Effect::CallLlm { .. } => return None,
                };
                Some(Input::new(state.time_ms, effect.trader(), event))
            })
            .collect()
    }
}

fn set_up(chase: bool, outside: bool) -> (Engine<LoggingSink>, LoggingVenue, Log) {
    let log: Log = Rc::default();
    let mut engine = Engine::new(LoggingSink { inner: FoldSink::new(), log: Rc::clone(&log) });
    let mut venue = LoggingVenue { log: Rc::clone(&log), outside, inbox: Vec::new() };
    let instrument = Instrument {
        symbol: "BTCUSDT".into(),
        tick_size: Decimal::ONE,
        qty_step: Decimal::new(1, 3),
        min_qty: Decimal::new(1, 3),
        max_leverage: Decimal::TEN,
        maintenance_margin_rate: Decimal::new(5, 3),
        taker_fee_rate: Decimal::ZERO,
        maker_fee_rate: Decimal::ZERO,
    };
    engine.step(0, "", &Event::InstrumentDefined(instrument), &mut venue).unwrap();
    let start = TraderStart {
        exchange: "test".into(),
        account: "a".into(),
        currency: "USDT".into(),
        allocation_pct: Decimal::ONE_HUNDRED,
        capital_quote: Decimal::new(1_000_000, 0),
        leverage: Decimal::ONE,
    };
    engine.step(0, "t", &Event::TraderStarted(start), &mut venue).unwrap();
    let spec = StrategySpec::new("t", "t.js", STRATEGY.into(), serde_json::json!({ "chase": chase }), 0);
    engine.load(spec, 0, &mut venue).unwrap();
    (engine, venue, log)
}

fn kline() -> Event {
    let p = Decimal::ONE_HUNDRED;
    Event::KlineReceived(Kline {
        symbol: "BTCUSDT".into(),
        interval_ms: 60_000,
        open_time_ms: 0,
        open: p,
        high: p,
        low: p,
        close: p,
        volume: Decimal::ONE,
        closed: true,
    })
}

#[test]
fn effects_leave_after_their_decisions_are_durable_in_decision_order() {
    let (mut engine, mut venue, log) = set_up(false, true);
    log.borrow_mut().clear();
    let seq = engine.step(60_000, "", &kline(), &mut venue).unwrap();
    // The kline, then: submit (seq+1), submit (seq+2), cancel request (seq+3); one flush before any leaves.
    let expected = vec![
        format!("durable Some({})", seq + 3),
        format!("submit {} folded=true", seq + 1),
        format!("submit {} folded=true", seq + 2),
        format!("cancel {} folded=true", seq + 3),
    ];
    assert_eq!(*log.borrow(), expected);
    assert_eq!(engine.effects_sent(), 3);
    // A step without decisions flushes nothing.
    log.borrow_mut().clear();
    engine.settle(&mut venue).unwrap();
    assert!(log.borrow().iter().all(|l| !l.starts_with("durable")), "{:?}", log.borrow());
}

#[test]
fn an_in_process_venue_is_not_waited_for() {
    let (mut engine, mut venue, log) = set_up(false, false);
    engine.step(60_000, "", &kline(), &mut venue).unwrap();
    assert!(log.borrow().iter().all(|l| !l.starts_with("durable")), "{:?}", log.borrow());
    assert_eq!(log.borrow().iter().filter(|l| l.starts_with("submit")).count(), 2);
}

#[test]
fn settling_a_strategy_that_answers_every_ack_with_an_order_ends() {
    let (mut engine, mut venue, _log) = set_up(true, false);
    engine.step(60_000, "", &kline(), &mut venue).unwrap();
    engine.settle(&mut venue).unwrap();
    // Round 1 acknowledges the bar's two orders (two new ones follow) and cancels the second;
    // every later round acknowledges two and two follow. The cancelled one leaves the ledger.
    let open = engine.state().traders["t"].orders.len();
    assert_eq!(open, 1 + 2 * SETTLE_ROUNDS_MAX, "two orders per round, then it stops");
    assert_eq!(venue.inbox.len(), 2, "what is left waits for the next settle");
}

#[test]
fn recover_sends_again_what_the_venue_never_answered() {
    let (mut engine, mut venue, log) = set_up(false, true);
    engine.step(60_000, "", &kline(), &mut venue).unwrap();
    venue.inbox.clear(); // the venue lost everything
    log.borrow_mut().clear();
    engine.recover(&mut venue).unwrap();
    let sent: Vec<_> = log.borrow().iter().filter(|l| !l.starts_with("durable")).cloned().collect();
    // The first order is unanswered; the second has a cancel request, so the cancel goes.
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].starts_with("submit") && sent[1].starts_with("cancel"), "{sent:?}");
}
