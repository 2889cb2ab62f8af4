//! Hand-checked scenarios, one per rule, built by folding real journal records
//! (hash-chained envelopes) into a `State`, then folding the sim's answers too.
//!
//! Common set-up unless a test says otherwise: BTCUSDT with tick 0.1, qty step
//! 0.001, maintenance 0.5%, taker 0.06%, maker 0.02%; traders start with 10000
//! USDT at 10x; bar 0 closes at 100 (the mark); bars are 1 minute.

use journal::{
    check, codec,
    event::{
        Cloid, Event, Instrument, Kline, Liquidity, OrderIntent, OrderKind, RejectReason, Side, TimeInForce,
        TraderStart,
    },
    state::{OrderStatus, Position, State, TraderState},
    Envelope, Hash,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::{
    acknowledge, cancel, funding, on_bar, on_bar_with, simulate, Intrabar, Memo, SimConfig,
    REJECT_POST_ONLY_WOULD_CROSS,
};

const SYM: &str = "BTCUSDT";
const MINUTE: i64 = 60_000;

fn instrument() -> Instrument {
    Instrument {
        symbol: SYM.into(),
        tick_size: dec!(0.1),
        qty_step: dec!(0.001),
        min_qty: dec!(0.001),
        max_leverage: dec!(100),
        maintenance_margin_rate: dec!(0.005),
        taker_fee_rate: dec!(0.0006),
        maker_fee_rate: dec!(0.0002),
    }
}

fn cfg(slippage_bps: Decimal) -> SimConfig {
    SimConfig { slippage_bps, ..SimConfig::default() }
}

/// Bar `i` (open time `i` minutes).
fn bar(i: i64, open: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Kline {
    Kline {
        symbol: SYM.into(),
        interval_ms: MINUTE,
        open_time_ms: i * MINUTE,
        open,
        high,
        low,
        close,
        volume: dec!(1),
        closed: true,
    }
}

fn intent(side: Side, kind: OrderKind, qty: Decimal) -> OrderIntent {
    OrderIntent {
        cloid: Cloid([0; 16]),
        symbol: SYM.into(),
        side,
        kind,
        qty,
        price: None,
        trigger_price: None,
        reduce_only: false,
        tif: TimeInForce::Gtc,
    }
}

fn limit(side: Side, qty: Decimal, price: Decimal) -> OrderIntent {
    OrderIntent { price: Some(price), ..intent(side, OrderKind::Limit, qty) }
}

fn stop(side: Side, qty: Decimal, trigger: Decimal) -> OrderIntent {
    OrderIntent { trigger_price: Some(trigger), ..intent(side, OrderKind::Stop, qty) }
}

fn reduce_only(intent: OrderIntent) -> OrderIntent {
    OrderIntent { reduce_only: true, ..intent }
}

/// A journal being written: records are hash-chained and folded as they go.
struct Book {
    state: State,
    records: Vec<Envelope>,
    /// The driver's clock: the close of the last bar.
    now: i64,
}

impl Book {
    /// The instrument, `traders` with `capital` at `leverage`, and bar 0 closing at 100.
    fn new(traders: &[&str], capital: Decimal, leverage: Decimal) -> Book {
        Book::with(instrument(), dec!(100), traders, capital, leverage)
    }

    /// As [`Book::new`] with another instrument, bar 0 closing at `mark`.
    fn with(instrument: Instrument, mark: Decimal, traders: &[&str], capital: Decimal, leverage: Decimal) -> Book {
        let mut book = Book { state: State::default(), records: Vec::new(), now: 0 };
        book.push("", 0, Event::InstrumentDefined(instrument));
        for name in traders {
            let start = TraderStart {
                exchange: "sim".into(),
                account: "main".into(),
                currency: "USDT".into(),
                allocation_pct: dec!(100),
                capital_quote: capital,
                leverage,
            };
            book.push(name, 0, Event::TraderStarted(start));
        }
        book.kline(&bar(0, mark, mark, mark, mark));
        book
    }

    fn push(&mut self, trader: &str, time_ms: i64, event: Event) {
        let seq = self.records.len() as u64;
        let prev_hash = self.records.last().map_or(Hash::ZERO, |e| e.hash);
        let (hash, _) = codec::encode_event_record(seq, &prev_hash, time_ms, trader, &event);
        let env = Envelope { seq, time_ms, trader: trader.into(), event, prev_hash, hash };
        self.state.apply(&env);
        self.records.push(env);
    }

    fn kline(&mut self, k: &Kline) {
        self.now = k.open_time_ms + k.interval_ms;
        self.push("", self.now, Event::KlineReceived(k.clone()));
    }

    /// Checks, journals and acknowledges an order, as the driver does; returns
    /// its cloid and the last event (the acknowledgement or the rejection).
    fn submit(&mut self, trader: &str, mut intent: OrderIntent) -> (Cloid, Event) {
        intent.cloid = Cloid::derive(trader, self.records.len() as u64, 0);
        let checked = check::order(&self.state, trader, intent.clone());
        self.push(trader, self.now, checked.clone());
        if let Event::OrderSubmitted(accepted) = &checked {
            let ack = acknowledge(&self.state, trader, accepted);
            self.push(trader, self.now, ack.clone());
            return (intent.cloid, ack);
        }
        (intent.cloid, checked)
    }

    fn place(&mut self, trader: &str, intent: OrderIntent) -> Cloid {
        let (cloid, ack) = self.submit(trader, intent);
        assert!(matches!(ack, Event::OrderAccepted { .. }), "{ack:?}");
        cloid
    }

    /// Runs the sim on `k`, journals its events, then the kline; returns the events.
    fn bar(&mut self, config: &SimConfig, k: &Kline) -> Vec<(String, Event)> {
        let events = on_bar(config, &self.state, k);
        for (trader, time_ms, event) in &events {
            assert_eq!(*time_ms, k.open_time_ms);
            assert!(*time_ms < k.open_time_ms + k.interval_ms);
            self.push(trader, *time_ms, event.clone());
        }
        self.kline(k);
        assert!(self.state.anomalies.is_empty(), "{:?}", self.state.anomalies);
        events.into_iter().map(|(t, _, e)| (t, e)).collect()
    }

    fn trader(&self, name: &str) -> &TraderState {
        &self.state.traders[name]
    }

    fn position(&self, name: &str) -> Position {
        self.trader(name).positions.get(SYM).cloned().unwrap_or_default()
    }

    fn cash(&self, name: &str) -> Decimal {
        self.trader(name).cash
    }
}

/// The fill in an event, or a panic naming what it was.
fn fill(event: &Event) -> &journal::event::Fill {
    match event {
        Event::OrderFilled(f) => f,
        other => panic!("expected a fill, got {other:?}"),
    }
}

fn cancelled(event: &Event) -> (Cloid, &str) {
    match event {
        Event::OrderCancelled { cloid, reason } => (*cloid, reason.as_str()),
        other => panic!("expected a cancel, got {other:?}"),
    }
}

/// `trader` buys 1 at market on bar 1, which opens at 100 (no slippage):
/// fee 1·100·0.0006 = 0.06, so cash = capital − 0.06, long 1 @ 100.
fn long_one_at_100(book: &mut Book, trader: &str) {
    book.place(trader, intent(Side::Buy, OrderKind::Market, dec!(1)));
    book.bar(&cfg(dec!(0)), &bar(1, dec!(100), dec!(100.5), dec!(99.5), dec!(100)));
    assert_eq!(book.position(trader).qty, dec!(1));
}

#[test]
fn market_fills_at_the_next_open_with_slippage_and_taker_fee() {
    let mut book = Book::new(&["alice", "bob"], dec!(10000), dec!(10));
    let a = book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(1)));
    let b = book.place("bob", intent(Side::Sell, OrderKind::Market, dec!(1)));
    assert_eq!(book.trader("alice").orders[&a].exchange_order_id, Some(format!("sim-{a}")));
    let events = book.bar(&cfg(dec!(10)), &bar(1, dec!(101.2), dec!(102), dec!(100.5), dec!(101.5)));
    assert_eq!(events.len(), 2);
    // Traders in name order. Buy: 101.2·1.001 = 101.3012, up to the tick → 101.4;
    // fee 101.4·0.0006 = 0.06084.
    assert_eq!(events[0].0, "alice");
    let f = fill(&events[0].1);
    assert_eq!((f.cloid, f.fill_id.clone()), (a, format!("sim-{a}-1")));
    assert_eq!((f.qty, f.price, f.fee_quote, f.liquidity), (dec!(1), dec!(101.4), dec!(0.06084), Liquidity::Taker));
    // Sell: 101.2·0.999 = 101.0988, down to the tick → 101.0; fee 101·0.0006 = 0.0606.
    assert_eq!(events[1].0, "bob");
    let f = fill(&events[1].1);
    assert_eq!((f.cloid, f.price, f.fee_quote), (b, dec!(101.0), dec!(0.0606)));
    // Ledger: 10000 − 0.06084 = 9999.93916; 10000 − 0.0606 = 9999.9394.
    assert_eq!((book.position("alice").qty, book.position("alice").entry_price), (dec!(1), dec!(101.4)));
    assert_eq!((book.position("bob").qty, book.position("bob").entry_price), (dec!(-1), dec!(101.0)));
    assert_eq!(book.cash("alice"), dec!(9999.93916));
    assert_eq!(book.cash("bob"), dec!(9999.9394));
    assert!(book.trader("alice").orders.is_empty() && book.trader("bob").orders.is_empty());
}

#[test]
fn limit_fills_when_traded_through_not_when_touched() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    let a = book.place("alice", limit(Side::Buy, dec!(1), dec!(99.0)));
    // Bar 1's low is exactly 99.0: a touch, no fill; the order rests.
    assert!(book.bar(&cfg(dec!(10)), &bar(1, dec!(100), dec!(100.5), dec!(99.0), dec!(99.5))).is_empty());
    assert_eq!(book.trader("alice").orders[&a].status, OrderStatus::Open);
    // Bar 2 trades through (low 98.9 < 99.0) without gapping (open 99.5 > 99.0):
    // fills at the limit as maker, no slippage; fee 99·0.0002 = 0.0198.
    let events = book.bar(&cfg(dec!(10)), &bar(2, dec!(99.5), dec!(99.8), dec!(98.9), dec!(99.2)));
    let f = fill(&events[0].1);
    assert_eq!((f.price, f.fee_quote, f.liquidity), (dec!(99.0), dec!(0.0198), Liquidity::Maker));
    // Cash 10000 − 0.0198 = 9999.9802; long 1 @ 99.
    assert_eq!(book.cash("alice"), dec!(9999.9802));
    assert_eq!((book.position("alice").qty, book.position("alice").entry_price), (dec!(1), dec!(99.0)));
}

#[test]
fn limit_gap_through_fills_at_the_open_as_taker() {
    // Bar 1 opens at 98.5, below alice's buy limit 99.0 and at carol's 98.5.
    let gap = bar(1, dec!(98.5), dec!(99.2), dec!(98.0), dec!(98.8));
    let mut book = Book::new(&["alice", "carol"], dec!(10000), dec!(10));
    book.place("alice", limit(Side::Buy, dec!(1), dec!(99.0)));
    book.place("carol", limit(Side::Buy, dec!(1), dec!(98.5)));
    let events = book.bar(&cfg(dec!(0)), &gap);
    // Both at the open 98.5 (open <= limit), taker: fee 98.5·0.0006 = 0.0591.
    for (_, e) in &events {
        let f = fill(e);
        assert_eq!((f.price, f.fee_quote, f.liquidity), (dec!(98.5), dec!(0.0591), Liquidity::Taker));
    }
    assert_eq!(events.len(), 2);
    assert_eq!(book.cash("alice"), dec!(9999.9409)); // 10000 − 0.0591

    // With 100 bps slippage the taker price would be 98.5·1.01 = 99.485 → 99.5,
    // but never worse than the limit: 99.0; fee 99·0.0006 = 0.0594.
    let mut book = Book::new(&["bob"], dec!(10000), dec!(10));
    book.place("bob", limit(Side::Buy, dec!(1), dec!(99.0)));
    let events = book.bar(&cfg(dec!(100)), &gap);
    let f = fill(&events[0].1);
    assert_eq!((f.price, f.fee_quote, f.liquidity), (dec!(99.0), dec!(0.0594), Liquidity::Taker));
    assert_eq!(book.cash("bob"), dec!(9999.9406));
}

#[test]
fn sell_stop_triggers_on_the_low_and_fills_at_the_trigger() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    long_one_at_100(&mut book, "alice");
    book.place("alice", reduce_only(stop(Side::Sell, dec!(1), dec!(97.0))));
    // Open 99 is above the trigger, the low 96.5 reaches it: worse of (97, 99) for a
    // seller is 97; 97·0.999 = 96.903 → down to 96.9; fee 96.9·0.0006 = 0.05814.
    let events = book.bar(&cfg(dec!(10)), &bar(2, dec!(99), dec!(99.5), dec!(96.5), dec!(98)));
    let f = fill(&events[0].1);
    assert_eq!((f.side, f.price, f.fee_quote, f.liquidity), (Side::Sell, dec!(96.9), dec!(0.05814), Liquidity::Taker));
    // Realized (96.9 − 100)·1 = −3.1; cash 10000 − 0.06 − 3.1 − 0.05814 = 9996.78186.
    assert_eq!(book.position("alice").qty, dec!(0));
    assert_eq!(book.trader("alice").realized_pnl, dec!(-3.1));
    assert_eq!(book.cash("alice"), dec!(9996.78186));
}

#[test]
fn stop_gap_through_fills_at_the_open() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    long_one_at_100(&mut book, "alice");
    book.place("alice", reduce_only(stop(Side::Sell, dec!(1), dec!(97.0))));
    // Opens at 96, below the trigger: worse of (97, 96) = 96; 96·0.999 = 95.904 → 95.9;
    // fee 95.9·0.0006 = 0.05754; realized −4.1; cash 10000 − 0.06 − 4.1 − 0.05754 = 9995.78246.
    let events = book.bar(&cfg(dec!(10)), &bar(2, dec!(96), dec!(96.5), dec!(95), dec!(95.5)));
    let f = fill(&events[0].1);
    assert_eq!((f.price, f.fee_quote), (dec!(95.9), dec!(0.05754)));
    assert_eq!(book.cash("alice"), dec!(9995.78246));
}

#[test]
fn stop_and_take_profit_in_one_bar_follow_the_intrabar_mode() {
    // Long 1 @ 100 with a reduce-only stop at 97 and take-profit at 103; the bar
    // (O 100, H 104, L 96) reaches both.
    let both = bar(2, dec!(100), dec!(104), dec!(96), dec!(101));
    let run = |mode: Intrabar| {
        let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
        long_one_at_100(&mut book, "alice");
        let sl = book.place("alice", reduce_only(stop(Side::Sell, dec!(1), dec!(97.0))));
        let tp = book.place("alice", reduce_only(limit(Side::Sell, dec!(1), dec!(103.0))));
        let events = book.bar(&SimConfig { intrabar: mode, ..SimConfig::default() }, &both);
        assert_eq!(events.len(), 2);
        assert!(book.trader("alice").orders.is_empty());
        (book, sl, tp, events)
    };
    // AdverseFirst: the low first → stop at 97 (fee 97·0.0006 = 0.0582), realized −3;
    // then the TP has nothing to reduce. Cash 10000 − 0.06 − 3 − 0.0582 = 9996.8818.
    let (book, sl, tp, events) = run(Intrabar::AdverseFirst);
    assert_eq!((fill(&events[0].1).cloid, fill(&events[0].1).price), (sl, dec!(97.0)));
    assert_eq!(cancelled(&events[1].1), (tp, "reduce-only: nothing to reduce"));
    assert_eq!(book.cash("alice"), dec!(9996.8818));
    // FavorableFirst: TP at 103 as maker (fee 103·0.0002 = 0.0206), realized +3;
    // cash 10000 − 0.06 + 3 − 0.0206 = 10002.9194.
    let (book, sl, tp, events) = run(Intrabar::FavorableFirst);
    assert_eq!((fill(&events[0].1).cloid, fill(&events[0].1).price), (tp, dec!(103.0)));
    assert_eq!(cancelled(&events[1].1), (sl, "reduce-only: nothing to reduce"));
    assert_eq!(book.cash("alice"), dec!(10002.9194));
}

#[test]
fn liquidation_and_take_profit_in_one_bar_follow_the_intrabar_mode() {
    // Capital 1000 at 10x; buy 50 at bar 1's open 100: fee 50·100·0.0006 = 3, cash 997.
    // Liquidation price 100·(1 − 1/10 + 0.005) = 90.5. TP: sell 50 @ 105 reduce-only.
    // Bar 2: O 100, H 106, L 90 reaches both.
    let run = |mode: Intrabar| {
        let mut book = Book::new(&["alice"], dec!(1000), dec!(10));
        book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(50)));
        book.bar(&cfg(dec!(0)), &bar(1, dec!(100), dec!(100), dec!(100), dec!(100)));
        book.place("alice", reduce_only(limit(Side::Sell, dec!(50), dec!(105))));
        let config = SimConfig { intrabar: mode, liquidation_fee_rate: dec!(0.005), ..SimConfig::default() };
        let events = book.bar(&config, &bar(2, dec!(100), dec!(106), dec!(90), dec!(95)));
        (book, events)
    };
    // AdverseFirst: liquidated at 90.5, fee 50·90.5·0.005 = 22.625, realized 50·(90.5 − 100) = −475;
    // the TP dies with the position. Cash 997 − 475 − 22.625 = 499.375.
    let (book, events) = run(Intrabar::AdverseFirst);
    assert_eq!(events.len(), 1);
    let liquidated = Event::PositionLiquidated { symbol: SYM.into(), price: dec!(90.5), fee_quote: dec!(22.625) };
    assert_eq!(events[0].1, liquidated);
    assert_eq!(book.cash("alice"), dec!(499.375));
    assert!(book.trader("alice").orders.is_empty());
    // FavorableFirst: TP at 105, maker fee 50·105·0.0002 = 1.05, realized +250, flat, no
    // liquidation. Cash 997 + 250 − 1.05 = 1245.95.
    let (book, events) = run(Intrabar::FavorableFirst);
    assert_eq!(events.len(), 1);
    assert_eq!(fill(&events[0].1).price, dec!(105));
    assert_eq!(book.cash("alice"), dec!(1245.95));
}

#[test]
fn reduce_only_is_clipped_to_the_position_then_cancelled() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    long_one_at_100(&mut book, "alice");
    // Two reduce-only sells of 0.6 (each passes the check alone, 0.6 <= 1).
    let first = book.place("alice", reduce_only(limit(Side::Sell, dec!(0.6), dec!(102))));
    let second = book.place("alice", reduce_only(limit(Side::Sell, dec!(0.6), dec!(103))));
    // The path (long, adverse first) is 100 → 99.5 → 104 → 103.5: 102 goes through first.
    let events = book.bar(&cfg(dec!(0)), &bar(2, dec!(100), dec!(104), dec!(99.5), dec!(103.5)));
    assert_eq!(events.len(), 3);
    // 0.6 @ 102, fee 0.6·102·0.0002 = 0.01224.
    let f = fill(&events[0].1);
    assert_eq!((f.cloid, f.qty, f.price, f.fee_quote), (first, dec!(0.6), dec!(102), dec!(0.01224)));
    // 0.4 left: the second is clipped to 0.4 @ 103 (fee 0.4·103·0.0002 = 0.00824), then cancelled.
    let f = fill(&events[1].1);
    assert_eq!((f.cloid, f.qty, f.price, f.fee_quote), (second, dec!(0.4), dec!(103), dec!(0.00824)));
    assert_eq!(cancelled(&events[2].1), (second, "reduce-only: clipped to the position"));
    // Flat, never short. Realized 0.6·2 + 0.4·3 = 2.4; cash 10000 − 0.06 + 2.4 − 0.01224 − 0.00824 = 10002.31952.
    assert_eq!(book.position("alice").qty, dec!(0));
    assert_eq!(book.cash("alice"), dec!(10002.31952));
    assert!(book.trader("alice").orders.is_empty());
}

#[test]
fn margin_is_rechecked_at_fill_time() {
    // Capital 1000 at 10x, mark 100. Alice buys 95: at submission it needs 95·100/10 +
    // 95·100·0.0006 = 950 + 5.7 = 955.7 <= 1000. Bob buys 90 (900 + 5.4).
    let mut book = Book::new(&["alice", "bob"], dec!(1000), dec!(10));
    let a = book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(95)));
    book.place("bob", intent(Side::Buy, OrderKind::Market, dec!(90)));
    // Bar 1 opens at 110. Alice needs 95·110/10 + 95·110·0.0006 = 1045 + 6.27 = 1051.27 > 1000:
    // cancelled. Bob needs 990 + 5.94 = 995.94 <= 1000: filled.
    let events = book.bar(&cfg(dec!(0)), &bar(1, dec!(110), dec!(111), dec!(109), dec!(110)));
    assert_eq!(events[0].0, "alice");
    assert_eq!(cancelled(&events[0].1), (a, "insufficient margin at fill: needs 1051.27, 1000 available"));
    assert_eq!((book.cash("alice"), book.position("alice").qty), (dec!(1000), dec!(0)));
    assert!(book.trader("alice").orders.is_empty());
    assert_eq!(events[1].0, "bob");
    assert_eq!(fill(&events[1].1).price, dec!(110));
    assert_eq!((book.cash("bob"), book.position("bob").qty), (dec!(994.06), dec!(90)));
    // 1000 − 5.94
}

/// FOK limits, hand-checked: marketable at the open, they fill whole there as takers
/// (fee 0.06%); not marketable, they are cancelled, even when the bar later trades
/// through their limit.
#[test]
fn fok_limits_fill_whole_at_the_open_or_are_cancelled() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    let fok = |side, qty, price| OrderIntent { tif: TimeInForce::Fok, ..limit(side, qty, price) };
    // Bar 1 opens at 99.5 and trades down to 98.5: a FOK buy at 99.0 is not marketable at
    // the open (99.5 > 99.0), so it is cancelled although the low goes through 99.0.
    let missed = book.place("alice", fok(Side::Buy, dec!(1), dec!(99.0)));
    let events = book.bar(&cfg(dec!(0)), &bar(1, dec!(99.5), dec!(99.8), dec!(98.5), dec!(99)));
    assert_eq!(events.len(), 1);
    assert_eq!(cancelled(&events[0].1), (missed, "FOK: not marketable at the open"));
    assert_eq!(book.position("alice").qty, dec!(0));
    // A FOK buy at 100.0 against bar 2 opening at 99.5: fills 1 at the open, taker,
    // fee 1 x 99.5 x 0.0006 = 0.0597.
    let bought = book.place("alice", fok(Side::Buy, dec!(1), dec!(100.0)));
    let events = book.bar(&cfg(dec!(0)), &bar(2, dec!(99.5), dec!(99.6), dec!(99.4), dec!(99.5)));
    assert_eq!(events.len(), 1);
    let f = fill(&events[0].1);
    assert_eq!(
        (f.cloid, f.qty, f.price, f.fee_quote, f.liquidity),
        (bought, dec!(1), dec!(99.5), dec!(0.0597), Liquidity::Taker)
    );
    // A FOK sell of 2 at 99.0 against bar 3 opening at 99.2 (at or above the limit): the
    // whole 2 at the open, closing the long and opening a short of 1.
    let sold = book.place("alice", fok(Side::Sell, dec!(2), dec!(99.0)));
    let events = book.bar(&cfg(dec!(0)), &bar(3, dec!(99.2), dec!(99.3), dec!(98.9), dec!(99)));
    let f = fill(&events[0].1);
    assert_eq!((f.cloid, f.qty, f.price, f.liquidity), (sold, dec!(2), dec!(99.2), Liquidity::Taker));
    assert_eq!(book.position("alice").qty, dec!(-1));
    assert!(book.trader("alice").orders.is_empty());
}

#[test]
fn exchange_rejections_and_time_in_force() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    // Post-only buy at the mark 100 would cross: rejected by the exchange.
    let post_only = |price| OrderIntent { tif: TimeInForce::PostOnly, ..limit(Side::Buy, dec!(1), price) };
    let (crossing, ack) = book.submit("alice", post_only(dec!(100)));
    match ack {
        Event::OrderRejected { cloid, reason: RejectReason::Exchange { code, .. } } => {
            assert_eq!((cloid, code), (crossing, REJECT_POST_ONLY_WOULD_CROSS));
        }
        other => panic!("{other:?}"),
    }
    assert!(book.trader("alice").orders.is_empty());
    // At 99.9 it rests; an IOC at 99.0 and a GTC at 98.0 too; one more is cancelled on request.
    let resting = book.place("alice", post_only(dec!(99.9)));
    let ioc = book.place("alice", OrderIntent { tif: TimeInForce::Ioc, ..limit(Side::Buy, dec!(1), dec!(99.0)) });
    let gtc = book.place("alice", limit(Side::Buy, dec!(1), dec!(98.0)));
    let doomed = book.place("alice", limit(Side::Buy, dec!(1), dec!(97.0)));
    book.push("alice", book.now, Event::OrderCancelRequested { cloid: doomed });
    let answer = cancel(&book.state, "alice", &doomed).expect("open order");
    book.push("alice", book.now, answer);
    assert_eq!(cancel(&book.state, "alice", &doomed), None);
    // Bar 1 opens at 99.5: the post-only would take at the open → cancelled; the IOC is not
    // marketable there (99.5 > 99.0) → cancelled, even though the low 98.5 goes through 99.0;
    // the GTC at 98.0 is not reached and rests.
    let events = book.bar(&cfg(dec!(0)), &bar(1, dec!(99.5), dec!(99.8), dec!(98.5), dec!(99)));
    assert_eq!(events.len(), 2);
    assert_eq!(cancelled(&events[0].1), (resting, "post-only: would take liquidity at the open 99.5"));
    assert_eq!(cancelled(&events[1].1), (ioc, "IOC: not marketable at the open"));
    assert_eq!(book.trader("alice").orders.keys().copied().collect::<Vec<_>>(), vec![gtc]);
}

#[test]
fn long_liquidated_when_the_low_reaches_the_liquidation_price() {
    // Capital 1000 at 10x, long 50 @ 100 (fee 3, cash 997); liquidation at 90.5.
    let config = SimConfig { liquidation_fee_rate: dec!(0.005), ..SimConfig::default() };
    let mut book = Book::new(&["alice"], dec!(1000), dec!(10));
    book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(50)));
    book.bar(&config, &bar(1, dec!(100), dec!(100), dec!(100), dec!(100)));
    assert_eq!(book.cash("alice"), dec!(997));
    book.place("alice", reduce_only(limit(Side::Sell, dec!(50), dec!(110))));
    // Low 90.6 stays above it.
    assert!(book.bar(&config, &bar(2, dec!(95), dec!(96), dec!(90.6), dec!(91))).is_empty());
    // Low 90.5 reaches it: liquidated at 90.5, fee 50·90.5·0.005 = 22.625, realized −475;
    // cash 997 − 475 − 22.625 = 499.375; the resting TP is gone.
    let events = book.bar(&config, &bar(3, dec!(91), dec!(92), dec!(90.5), dec!(91.5)));
    let liquidated = Event::PositionLiquidated { symbol: SYM.into(), price: dec!(90.5), fee_quote: dec!(22.625) };
    assert_eq!(events, vec![("alice".to_owned(), liquidated)]);
    assert_eq!(book.position("alice").qty, dec!(0));
    assert_eq!(book.cash("alice"), dec!(499.375));
    assert!(book.trader("alice").orders.is_empty());
    assert_eq!(book.trader("alice").stats.liquidations, 1);
}

#[test]
fn short_liquidated_at_the_open_on_a_gap() {
    // Capital 1000 at 10x, short 50 @ 100 (fee 3); liquidation at 100·(1 + 0.1 − 0.005) = 109.5.
    let config = SimConfig { liquidation_fee_rate: dec!(0.005), ..SimConfig::default() };
    let mut book = Book::new(&["bob"], dec!(1000), dec!(10));
    book.place("bob", intent(Side::Sell, OrderKind::Market, dec!(50)));
    book.bar(&config, &bar(1, dec!(100), dec!(100), dec!(100), dec!(100)));
    // Bar 2 opens at 112, beyond it: liquidated at the open. Fee 50·112·0.005 = 28;
    // realized −50·(112 − 100) = −600; cash 1000 − 3 − 600 − 28 = 369.
    let events = book.bar(&config, &bar(2, dec!(112), dec!(113), dec!(111), dec!(112.5)));
    let liquidated = Event::PositionLiquidated { symbol: SYM.into(), price: dec!(112), fee_quote: dec!(28) };
    assert_eq!(events, vec![("bob".to_owned(), liquidated)]);
    assert_eq!(book.position("bob").qty, dec!(0));
    assert_eq!(book.cash("bob"), dec!(369));
}

#[test]
fn funding_longs_pay_shorts_receive_when_the_rate_is_positive() {
    let mut book = Book::new(&["alice", "bob", "carol"], dec!(10000), dec!(10));
    book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(1)));
    book.place("bob", intent(Side::Sell, OrderKind::Market, dec!(2)));
    book.bar(&cfg(dec!(0)), &bar(1, dec!(100), dec!(100), dec!(100), dec!(100)));
    // Alice: −(1·100.33·0.0000125) = −0.001254125 → 8 dp, half to even: −0.00125412.
    // Bob: −(−2·100.33·0.0000125) = +0.00250825. Carol is flat: nothing.
    let events = funding(&book.state, SYM, dec!(0.0000125), dec!(100.33), 8 * 3_600_000);
    let amounts: Vec<_> = events
        .iter()
        .map(|(t, time, e)| match e {
            Event::FundingPaid { amount_quote, .. } => (t.as_str(), *time, *amount_quote),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(amounts, vec![("alice", 28_800_000, dec!(-0.00125412)), ("bob", 28_800_000, dec!(0.00250825))]);
    for (trader, time, event) in events {
        book.push(&trader, time, event);
    }
    // Alice 10000 − 0.06 − 0.00125412 = 9999.93874588; bob 10000 − 0.12 + 0.00250825 = 9999.88250825.
    assert_eq!(book.cash("alice"), dec!(9999.93874588));
    assert_eq!(book.cash("bob"), dec!(9999.88250825));
    assert_eq!(book.trader("bob").funding_net, dec!(0.00250825));
}

/// Three traders with a mix of orders on a wide bar.
fn busy_book() -> Book {
    let mut book = Book::new(&["carol", "alice", "bob"], dec!(10000), dec!(10));
    long_one_at_100(&mut book, "alice");
    book.place("bob", intent(Side::Sell, OrderKind::Market, dec!(2)));
    book.place("alice", reduce_only(stop(Side::Sell, dec!(1), dec!(98))));
    book.place("alice", limit(Side::Sell, dec!(2), dec!(103)));
    book.place("bob", stop(Side::Buy, dec!(1), dec!(102)));
    book.place("bob", limit(Side::Buy, dec!(1), dec!(97)));
    book.place("carol", limit(Side::Buy, dec!(0.5), dec!(99)));
    book.place("carol", stop(Side::Sell, dec!(0.5), dec!(99.5)));
    book
}

#[test]
fn same_inputs_give_identical_events() {
    let wide = bar(2, dec!(100), dec!(104), dec!(96), dec!(101));
    let config = cfg(dec!(5));
    let book = busy_book();
    let first = on_bar(&config, &book.state, &wide);
    assert!(first.len() >= 6, "{first:#?}");
    // Again on the same state, on a state refolded from the records, and on a second book.
    assert_eq!(on_bar(&config, &book.state, &wide), first);
    assert_eq!(on_bar(&config, &State::fold(&book.records), &wide), first);
    let (mut one, mut two) = (busy_book(), busy_book());
    one.bar(&config, &wide);
    two.bar(&config, &wide);
    assert_eq!(one.records, two.records);
    assert_eq!(one.state.digest(), two.state.digest());
}

#[test]
fn an_order_decided_on_a_bar_never_fills_at_that_bar() {
    let mut book = Book::new(&["alice"], dec!(10000), dec!(10));
    // Bar 1 closes at 100 after trading 95..106; the strategy decides on it, after its close.
    let bar1 = bar(1, dec!(101), dec!(106), dec!(95), dec!(100));
    book.kline(&bar1);
    let market = book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(1)));
    book.place("alice", limit(Side::Buy, dec!(1), dec!(99)));
    book.place("alice", stop(Side::Buy, dec!(1), dec!(104)));
    // Passing bar 1 again (a driver bug) fills nothing: the orders did not rest at its open.
    assert!(on_bar(&cfg(dec!(0)), &book.state, &bar1).is_empty());
    // Bar 2 opens at 105 and stays above 104.5: the market order fills at 105, the buy stop
    // at 104 gaps (open 105 >= 104) and fills at 105 too; the limit at 99 rests.
    let events = book.bar(&cfg(dec!(0)), &bar(2, dec!(105), dec!(106), dec!(104.5), dec!(105.5)));
    assert_eq!(events.len(), 2);
    assert_eq!(fill(&events[0].1).cloid, market);
    assert!(events.iter().all(|(_, e)| fill(e).price == dec!(105)));
}

/// An order the property test may place.
#[derive(Clone, Debug)]
struct Spec {
    kind: u8,
    buy: bool,
    steps: u32,
    offset_ticks: i32,
    reduce_only: bool,
    tif: TimeInForce,
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    let tif = prop::sample::select(vec![TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly]);
    (0u8..3, any::<bool>(), 1u32..3000, -40i32..40, any::<bool>(), tif).prop_map(
        |(kind, buy, steps, offset_ticks, reduce_only, tif)| Spec { kind, buy, steps, offset_ticks, reduce_only, tif },
    )
}

/// Instruments of other grids and price levels: (price level, tick, qty step); prices stay
/// above 70 ticks from the level so bars are positive.
fn arb_market() -> impl Strategy<Value = (Decimal, Decimal, Decimal)> {
    let level_tick = prop::sample::select(vec![
        (dec!(100), dec!(0.1)),
        (dec!(1), dec!(0.0001)),
        (dec!(20000), dec!(0.5)),
        (dec!(5), dec!(0.01)),
        (dec!(3000), dec!(1)),
    ]);
    (level_tick, prop::sample::select(vec![dec!(0.001), dec!(0.01), dec!(1)]))
        .prop_map(|((level, tick), step)| (level, tick, step))
}

/// A bar on the grid from (open, close, wick up, wick down) in ticks around 100.
fn arb_bar() -> impl Strategy<Value = (i32, i32, u32, u32)> {
    (-40i32..40, -40i32..40, 0u32..30, 0u32..30)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Fills stay in the bar's range (widened by the slippage), on the grid, and a
    /// reduce-only fill never flips or grows the position; the fold sees no anomaly.
    #[test]
    fn fills_stay_in_range_on_grid_and_reduce_only_never_flips(
        rounds in prop::collection::vec((prop::collection::vec(arb_spec(), 0..5), arb_bar()), 1..5),
        slippage in 0u32..50,
        favorable in any::<bool>(),
        leverage in 1u32..30,
        (level, tick, step) in arb_market(),
    ) {
        let instrument = Instrument { tick_size: tick, qty_step: step, min_qty: step, ..instrument() };
        let s = Decimal::from(slippage) / dec!(10000);
        let config = SimConfig {
            slippage_bps: Decimal::from(slippage),
            intrabar: if favorable { Intrabar::FavorableFirst } else { Intrabar::AdverseFirst },
            liquidation_fee_rate: dec!(0.005),
        };
        // Alice starts long 5, bob short 5, so reduce-only orders pass the checks.
        let mut book = Book::with(instrument, level, &["alice", "bob"], level * dec!(1000), Decimal::from(leverage));
        book.place("alice", intent(Side::Buy, OrderKind::Market, dec!(5)));
        book.place("bob", intent(Side::Sell, OrderKind::Market, dec!(5)));
        book.bar(&cfg(dec!(0)), &bar(1, level, level, level, level));
        let mut memo = Memo::default();
        for (i, (specs, (o, c, up, down))) in rounds.into_iter().enumerate() {
            for (j, spec) in specs.iter().enumerate() {
                let side = if spec.buy { Side::Buy } else { Side::Sell };
                let qty = Decimal::from(spec.steps) * step;
                let price = level + Decimal::from(spec.offset_ticks) * tick;
                let mut order = match spec.kind {
                    0 => intent(side, OrderKind::Market, qty),
                    1 => limit(side, qty, price),
                    _ => stop(side, qty, price),
                };
                order.reduce_only = spec.reduce_only;
                order.tif = spec.tif;
                book.submit(if j % 2 == 0 { "alice" } else { "bob" }, order);
            }
            let (open, close) = (level + Decimal::from(o) * tick, level + Decimal::from(c) * tick);
            let high = open.max(close) + Decimal::from(up) * tick;
            let low = open.min(close) - Decimal::from(down) * tick;
            let k = bar(i64::try_from(i).expect("few rounds") + 2, open, high, low, close);
            let (floor, ceil) = ((low * (Decimal::ONE - s) / tick).floor() * tick, (high * (Decimal::ONE + s) / tick).ceil() * tick);
            // One memo across the bars, as the driver keeps it: skipping quiet traders with
            // remembered liquidation prices changes nothing.
            let events = on_bar_with(&config, &book.state, &k, &mut memo);
            prop_assert_eq!(&events, &simulate(&config, &book.state, &k, None));
            for (trader, time_ms, event) in events {
                let before = book.position(&trader).qty;
                let order = match &event {
                    Event::OrderFilled(f) => book.trader(&trader).orders.get(&f.cloid).cloned(),
                    _ => None,
                };
                book.push(&trader, time_ms, event.clone());
                let after = book.position(&trader).qty;
                match &event {
                    Event::OrderFilled(f) => {
                        prop_assert!(f.price >= floor && f.price <= ceil, "{f:?} outside [{floor}, {ceil}] of {k:?}");
                        prop_assert!((f.price / tick).fract().is_zero(), "{f:?} off the tick grid");
                        prop_assert!((f.qty / step).fract().is_zero() && f.qty > Decimal::ZERO, "{f:?} off the qty grid");
                        // Time in force: IOC and FOK limits fill at the open or not at all.
                        if order.as_ref().is_some_and(|o| o.intent.kind == OrderKind::Limit && matches!(o.intent.tif, TimeInForce::Ioc | TimeInForce::Fok)) {
                            prop_assert_eq!(f.liquidity, Liquidity::Taker, "an IOC/FOK limit only takes at the open: {:?}", f);
                        }
                        // A post-only order never takes.
                        if order.as_ref().is_some_and(|o| o.intent.kind == OrderKind::Limit && o.intent.tif == TimeInForce::PostOnly) {
                            prop_assert_eq!(f.liquidity, Liquidity::Maker, "a post-only order took: {:?}", f);
                        }
                        let order = order.expect("fills name resting orders");
                        if order.intent.reduce_only {
                            prop_assert!(after.abs() < before.abs(), "reduce-only grew {before} → {after}");
                            prop_assert!(after.is_zero() || after.is_sign_positive() == before.is_sign_positive(), "flip {before} → {after}");
                        }
                    }
                    Event::PositionLiquidated { price, .. } => {
                        prop_assert!(*price >= low && *price <= high && (*price / tick).fract().is_zero(), "{price} vs {k:?}");
                        prop_assert!(after.is_zero());
                    }
                    _ => {}
                }
            }
            book.kline(&k);
            prop_assert!(book.state.anomalies.is_empty(), "{:?}", book.state.anomalies);
        }
    }
}

#[test]
fn settings_survive_the_journal_and_others_are_refused() {
    for intrabar in [Intrabar::AdverseFirst, Intrabar::FavorableFirst] {
        let config = SimConfig { slippage_bps: dec!(2.5), intrabar, liquidation_fee_rate: dec!(0.0075) };
        let journaled = config.journaled();
        assert_eq!((journaled.kind.as_str(), journaled.slippage_bps), (crate::VENUE_KIND, dec!(2.5)));
        assert_eq!(SimConfig::from_journaled(&journaled), Ok(config));
    }
    let other = journal::event::VenueConfig { kind: "bybit".into(), ..SimConfig::default().journaled() };
    assert!(SimConfig::from_journaled(&other).unwrap_err().contains("\"bybit\""));
    let unknown = journal::event::VenueConfig { intrabar: "sideways".into(), ..SimConfig::default().journaled() };
    assert!(SimConfig::from_journaled(&unknown).unwrap_err().contains("\"sideways\""));
}
