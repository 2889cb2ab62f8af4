//! Pre-append checks: an order intent becomes either `OrderSubmitted` (rounded
//! to the instrument's steps) or `OrderRejected` with a reason. Both are
//! journaled, so the audit trail shows what was refused and why. This is the
//! only place orders are validated; `apply` trusts what the journal says.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::{
    event::{Event, OrderIntent, OrderKind, RejectReason},
    state::State,
};

/// Checks `intent` for `trader` against `state`; returns the event to journal.
pub fn order(state: &State, trader: &str, intent: OrderIntent) -> Event {
    match validate(state, trader, intent.clone()) {
        Ok(accepted) => Event::OrderSubmitted(accepted),
        Err(reason) => Event::OrderRejected { cloid: intent.cloid, reason },
    }
}

fn validate(state: &State, trader_id: &str, mut intent: OrderIntent) -> Result<OrderIntent, RejectReason> {
    let trader = state.traders.get(trader_id).filter(|t| t.start.is_some()).ok_or(RejectReason::UnknownTrader)?;
    if trader.strategy.as_ref().is_some_and(|s| s.stopped.is_some()) {
        return Err(RejectReason::TraderStopped);
    }
    let instrument =
        state.instruments.get(&intent.symbol).ok_or_else(|| RejectReason::UnknownSymbol(intent.symbol.clone()))?;
    if trader.orders.contains_key(&intent.cloid) {
        return Err(RejectReason::DuplicateCloid);
    }
    if intent.qty <= Decimal::ZERO {
        return Err(RejectReason::NonPositiveQty(intent.qty));
    }
    intent.qty = round_down_to_step(intent.qty, instrument.qty_step)
        .ok_or_else(|| RejectReason::InvalidQty(intent.qty.to_string()))?;
    if intent.qty <= Decimal::ZERO || intent.qty < instrument.min_qty {
        return Err(RejectReason::QtyBelowMin { qty: intent.qty, min: instrument.min_qty.max(instrument.qty_step) });
    }
    intent.price = round_price(intent.price, instrument.tick_size)?;
    intent.trigger_price = round_price(intent.trigger_price, instrument.tick_size)?;
    match intent.kind {
        OrderKind::Limit if intent.price.is_none() => return Err(RejectReason::PriceRequired),
        OrderKind::Stop if intent.trigger_price.is_none() => return Err(RejectReason::PriceRequired),
        _ => {}
    }

    // Only the part of the order that opens or adds exposure needs margin.
    let position_qty = trader.positions.get(&intent.symbol).map_or(Decimal::ZERO, |p| p.qty);
    let closable = crate::state::positions::closable_qty(position_qty, intent.side);
    if intent.reduce_only && (closable.is_zero() || intent.qty > closable) {
        return Err(RejectReason::ReduceOnlyWouldIncrease);
    }
    let opening_qty = (intent.qty - closable).max(Decimal::ZERO);
    if opening_qty > Decimal::ZERO {
        let price = intent
            .price
            .or(intent.trigger_price)
            .or_else(|| state.mark(&intent.symbol))
            .ok_or(RejectReason::NoMarkPrice)?;
        let leverage = trader.leverage(Some(instrument));
        let notional =
            opening_qty.checked_mul(price).ok_or_else(|| RejectReason::InvalidQty(intent.qty.to_string()))?;
        let fee = notional.saturating_mul(instrument.taker_fee_rate.max(instrument.maker_fee_rate));
        // A journaled leverage can be absurdly small: margin beyond a Decimal is simply too much.
        let required = notional.checked_div(leverage).unwrap_or(Decimal::MAX).saturating_add(fee).round_dp(8);
        let available = state.account(trader_id).map_or(Decimal::ZERO, |a| a.available).round_dp(8);
        if required > available {
            return Err(RejectReason::InsufficientCapital { required_quote: required, available_quote: available });
        }
    }
    Ok(intent)
}

/// Rounds a quantity toward zero to a whole number of steps (never trades more
/// than asked); `None` when the arithmetic overflows.
pub fn round_down_to_step(qty: Decimal, step: Decimal) -> Option<Decimal> {
    if step <= Decimal::ZERO {
        return Some(qty);
    }
    let steps = qty.checked_div(step)?.round_dp_with_strategy(0, RoundingStrategy::ToZero);
    Some(steps.checked_mul(step)?.normalize())
}

fn round_price(price: Option<Decimal>, tick: Decimal) -> Result<Option<Decimal>, RejectReason> {
    let Some(price) = price else { return Ok(None) };
    if price <= Decimal::ZERO {
        return Err(RejectReason::InvalidPrice(price.to_string()));
    }
    if tick <= Decimal::ZERO {
        return Ok(Some(price));
    }
    let invalid = || RejectReason::InvalidPrice(price.to_string());
    let ticks =
        price.checked_div(tick).ok_or_else(invalid)?.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    let rounded = ticks.checked_mul(tick).ok_or_else(invalid)?.normalize();
    if rounded <= Decimal::ZERO {
        return Err(RejectReason::InvalidPrice(price.to_string()));
    }
    Ok(Some(rounded))
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::event::Side;
    use crate::{
        event::{Cloid, Envelope, Fill, Instrument, Kline, Liquidity, StrategyLoad, TimeInForce, TraderStart},
        testkit::chain,
    };

    fn instrument(symbol: &str, tick: Decimal, step: Decimal, min: Decimal) -> Event {
        Event::InstrumentDefined(Instrument {
            symbol: symbol.into(),
            tick_size: tick,
            qty_step: step,
            min_qty: min,
            max_leverage: dec!(10),
            maintenance_margin_rate: dec!(0.005),
            taker_fee_rate: dec!(0.0005),
            maker_fee_rate: dec!(0.0002),
        })
    }

    fn start(capital: Decimal, leverage: Decimal) -> Event {
        Event::TraderStarted(TraderStart {
            exchange: "sim".into(),
            account: "main".into(),
            currency: "USDT".into(),
            allocation_pct: dec!(100),
            capital_quote: capital,
            leverage,
        })
    }

    fn intent(symbol: &str, side: Side, kind: OrderKind, qty: Decimal, price: Option<Decimal>) -> OrderIntent {
        OrderIntent {
            cloid: Cloid([1; 16]),
            symbol: symbol.into(),
            side,
            kind,
            qty,
            price,
            trigger_price: None,
            reduce_only: false,
            tif: TimeInForce::Gtc,
        }
    }

    const OPEN_ORDER: Cloid = Cloid([9; 16]);

    /// BTCUSDT (tick 0.1, step 0.001, min 0.002, max leverage 10, fees 0.05%/0.02%)
    /// marked at 50000; ETHUSDT defined but never priced; TINYUSDT with a 1e-28 step.
    /// alice: 1000 at 5x, flat, no orders. bob: 1000 at 5x, long 0.01 @ 50000, one
    /// open order. erin: 100 at 50x (capped to 10x). carol: stopped. ghost: never started.
    fn state() -> State {
        let market = |e: Event| (0, String::new(), e);
        let of = |trader: &str, e: Event| (0, trader.to_owned(), e);
        let items = vec![
            market(instrument("BTCUSDT", dec!(0.1), dec!(0.001), dec!(0.002))),
            market(instrument("ETHUSDT", dec!(0.01), dec!(0.01), dec!(0.01))),
            market(instrument(
                "TINYUSDT",
                dec!(0.0000000000000000000000000001),
                dec!(0.0000000000000000000000000001),
                dec!(0),
            )),
            market(Event::KlineReceived(Kline {
                symbol: "BTCUSDT".into(),
                interval_ms: 60_000,
                open_time_ms: 0,
                open: dec!(50000),
                high: dec!(50000),
                low: dec!(50000),
                close: dec!(50000),
                volume: dec!(1),
                closed: true,
            })),
            of("alice", start(dec!(1000), dec!(5))),
            of("bob", start(dec!(1000), dec!(5))),
            of(
                "bob",
                Event::OrderSubmitted(OrderIntent {
                    cloid: Cloid([8; 16]),
                    ..intent("BTCUSDT", Side::Buy, OrderKind::Market, dec!(0.01), None)
                }),
            ),
            of(
                "bob",
                Event::OrderFilled(Fill {
                    cloid: Cloid([8; 16]),
                    fill_id: "b1".into(),
                    symbol: "BTCUSDT".into(),
                    side: Side::Buy,
                    qty: dec!(0.01),
                    price: dec!(50000),
                    fee_quote: dec!(0),
                    liquidity: Liquidity::Maker,
                }),
            ),
            of(
                "bob",
                Event::OrderSubmitted(OrderIntent {
                    cloid: OPEN_ORDER,
                    ..intent("BTCUSDT", Side::Buy, OrderKind::Limit, dec!(0.002), Some(dec!(40000)))
                }),
            ),
            of("erin", start(dec!(100), dec!(50))),
            of("carol", start(dec!(1000), dec!(5))),
            of(
                "carol",
                Event::StrategyLoaded(StrategyLoad {
                    name: "s".into(),
                    file: "s.js".into(),
                    code_hash: crate::hash::content("x"),
                    source: None,
                    params: Default::default(),
                    seed: 1,
                    limits: crate::event::StrategyLimits::SCHEMA_1,
                }),
            ),
            of("carol", Event::StrategyStopped { reason: "done".into() }),
            of("ghost", Event::NotificationSent { channel: "log".into(), message: "hi".into() }),
        ];
        State::fold(&chain(&items))
    }

    struct Case {
        name: &'static str,
        trader: &'static str,
        intent: OrderIntent,
        expected: Result<OrderIntent, RejectReason>,
    }

    #[test]
    fn order_checks() {
        use OrderKind::{Limit, Market, Stop};
        use Side::{Buy, Sell};
        let state = state();
        let market = |qty| intent("BTCUSDT", Buy, Market, qty, None);
        let limit = |qty, price| intent("BTCUSDT", Buy, Limit, qty, Some(price));
        let reduce = |side, qty| OrderIntent { reduce_only: true, ..intent("BTCUSDT", side, Market, qty, None) };
        let cases = [
            Case {
                name: "unknown trader",
                trader: "mallory",
                intent: market(dec!(0.01)),
                expected: Err(RejectReason::UnknownTrader),
            },
            Case {
                name: "events but never started",
                trader: "ghost",
                intent: market(dec!(0.01)),
                expected: Err(RejectReason::UnknownTrader),
            },
            Case {
                name: "stopped strategy",
                trader: "carol",
                intent: market(dec!(0.01)),
                expected: Err(RejectReason::TraderStopped),
            },
            Case {
                name: "unknown symbol",
                trader: "alice",
                intent: intent("XRPUSDT", Buy, Market, dec!(1), None),
                expected: Err(RejectReason::UnknownSymbol("XRPUSDT".into())),
            },
            Case {
                name: "duplicate client order id",
                trader: "bob",
                intent: OrderIntent { cloid: OPEN_ORDER, ..market(dec!(0.002)) },
                expected: Err(RejectReason::DuplicateCloid),
            },
            Case {
                name: "zero qty",
                trader: "alice",
                intent: market(dec!(0)),
                expected: Err(RejectReason::NonPositiveQty(dec!(0))),
            },
            Case {
                name: "negative qty",
                trader: "alice",
                intent: market(dec!(-1)),
                expected: Err(RejectReason::NonPositiveQty(dec!(-1))),
            },
            Case {
                name: "qty rounds down below the minimum",
                trader: "alice",
                intent: market(dec!(0.0019)),
                expected: Err(RejectReason::QtyBelowMin { qty: dec!(0.001), min: dec!(0.002) }),
            },
            Case {
                name: "qty rounds down to zero",
                trader: "alice",
                intent: market(dec!(0.0004)),
                expected: Err(RejectReason::QtyBelowMin { qty: dec!(0), min: dec!(0.002) }),
            },
            Case {
                name: "qty too large to count in steps",
                trader: "alice",
                intent: intent("TINYUSDT", Buy, Market, Decimal::MAX, None),
                expected: Err(RejectReason::InvalidQty(Decimal::MAX.to_string())),
            },
            Case {
                name: "negative price",
                trader: "alice",
                intent: limit(dec!(0.002), dec!(-5)),
                expected: Err(RejectReason::InvalidPrice("-5".into())),
            },
            Case {
                name: "price rounds to zero ticks",
                trader: "alice",
                intent: limit(dec!(0.002), dec!(0.04)),
                expected: Err(RejectReason::InvalidPrice("0.04".into())),
            },
            Case {
                name: "zero trigger",
                trader: "alice",
                intent: OrderIntent {
                    trigger_price: Some(dec!(0)),
                    ..intent("BTCUSDT", Sell, Stop, dec!(0.002), None)
                },
                expected: Err(RejectReason::InvalidPrice("0".into())),
            },
            Case {
                name: "limit without price",
                trader: "alice",
                intent: intent("BTCUSDT", Buy, Limit, dec!(0.002), None),
                expected: Err(RejectReason::PriceRequired),
            },
            Case {
                name: "stop without trigger",
                trader: "alice",
                intent: intent("BTCUSDT", Sell, Stop, dec!(0.002), Some(dec!(49000))),
                expected: Err(RejectReason::PriceRequired),
            },
            Case {
                name: "market order before any price",
                trader: "alice",
                intent: intent("ETHUSDT", Buy, Market, dec!(0.01), None),
                expected: Err(RejectReason::NoMarkPrice),
            },
            Case {
                // 0.1 × 50000 = 5000 notional; / 5x = 1000 margin; fee 5000 × 0.0005
                // (the larger rate) = 2.5; required 1002.5. Available: cash 1000,
                // no positions, no orders = 1000.
                name: "one step too much for the capital",
                trader: "alice",
                intent: market(dec!(0.1)),
                expected: Err(RejectReason::InsufficientCapital {
                    required_quote: dec!(1002.5),
                    available_quote: dec!(1000),
                }),
            },
            Case {
                // 0.0999 rounds toward zero to 0.099: 4950 notional, 990 margin + 2.475 fee = 992.475 <= 1000.
                name: "qty rounded toward zero, then fits",
                trader: "alice",
                intent: market(dec!(0.0999)),
                expected: Ok(market(dec!(0.099))),
            },
            Case {
                // Leverage min(50, 10) = 10: 0.02 × 50000 = 1000 / 10 = 100 + 0.5 fee = 100.5 > 100.
                // (At the trader's own 50x it would need 20.5 and pass.)
                name: "leverage capped by the instrument",
                trader: "erin",
                intent: market(dec!(0.02)),
                expected: Err(RejectReason::InsufficientCapital {
                    required_quote: dec!(100.5),
                    available_quote: dec!(100),
                }),
            },
            Case {
                // bob: cash 1000, long 0.01 @ 50000 at mark 50000 (margin 100), a 0.002 @ 40000
                // buy resting (margin 16): available 884. Selling 0.03 closes 0.01 and opens
                // 0.02 short: 1000 notional / 5 = 200 + 0.5 fee = 200.5.
                name: "only the opening part needs margin",
                trader: "bob",
                intent: intent("BTCUSDT", Sell, Market, dec!(0.03), None),
                expected: Ok(intent("BTCUSDT", Sell, Market, dec!(0.03), None)),
            },
            Case {
                name: "price rounded to the nearest tick, qty toward zero",
                trader: "alice",
                intent: limit(dec!(0.0029), dec!(50000.06)),
                expected: Ok(limit(dec!(0.002), dec!(50000.1))),
            },
            Case {
                name: "a price on the half tick rounds to even",
                trader: "alice",
                intent: limit(dec!(0.002), dec!(50000.05)),
                expected: Ok(limit(dec!(0.002), dec!(50000.0))),
            },
            Case {
                name: "trigger rounded to the tick",
                trader: "alice",
                intent: OrderIntent {
                    trigger_price: Some(dec!(49999.94)),
                    ..intent("BTCUSDT", Sell, Stop, dec!(0.002), None)
                },
                expected: Ok(OrderIntent {
                    trigger_price: Some(dec!(49999.9)),
                    ..intent("BTCUSDT", Sell, Stop, dec!(0.002), None)
                }),
            },
            Case {
                name: "a limit order needs no mark",
                trader: "alice",
                intent: intent("ETHUSDT", Buy, Limit, dec!(0.015), Some(dec!(3000.004))),
                expected: Ok(intent("ETHUSDT", Buy, Limit, dec!(0.01), Some(dec!(3000)))),
            },
            Case {
                name: "reduce-only while flat",
                trader: "alice",
                intent: reduce(Sell, dec!(0.002)),
                expected: Err(RejectReason::ReduceOnlyWouldIncrease),
            },
            Case {
                name: "reduce-only adding to a long",
                trader: "bob",
                intent: reduce(Buy, dec!(0.002)),
                expected: Err(RejectReason::ReduceOnlyWouldIncrease),
            },
            Case {
                name: "reduce-only flipping a long",
                trader: "bob",
                intent: reduce(Sell, dec!(0.011)),
                expected: Err(RejectReason::ReduceOnlyWouldIncrease),
            },
            Case {
                name: "reduce-only closing part of a long",
                trader: "bob",
                intent: reduce(Sell, dec!(0.005)),
                expected: Ok(reduce(Sell, dec!(0.005))),
            },
            Case {
                name: "reduce-only closing all of a long",
                trader: "bob",
                intent: reduce(Sell, dec!(0.01)),
                expected: Ok(reduce(Sell, dec!(0.01))),
            },
        ];
        for case in cases {
            let cloid = case.intent.cloid;
            let expected = match case.expected {
                Ok(accepted) => Event::OrderSubmitted(accepted),
                Err(reason) => Event::OrderRejected { cloid, reason },
            };
            let got = order(&state, case.trader, case.intent);
            assert_eq!(got, expected, "{}", case.name);
            // `PartialEq` ignores a decimal's scale; what is sent must not carry
            // more places than the instrument allows either.
            if let Event::OrderSubmitted(accepted) = &got {
                let step = state.instruments[&accepted.symbol].qty_step;
                assert!(
                    accepted.qty.scale() <= step.scale(),
                    "{}: qty {} has more places than the step",
                    case.name,
                    accepted.qty
                );
            }
        }
    }

    #[test]
    fn absurd_leverage_is_refused_not_a_panic() {
        // A journaled start with a leverage of 1e-20: 0.002 × 50000 = 100 notional
        // needs 1e22 margin, and 10^10 BTC would need more than a Decimal holds.
        let mut state = state();
        let tiny = chain(&[(0, "tiny".to_owned(), start(dec!(1000), dec!(0.00000000000000000001)))]);
        state.apply(&Envelope { seq: 100, ..tiny[0].clone() });
        let small = intent("BTCUSDT", Side::Buy, OrderKind::Market, dec!(0.002), None);
        let huge = intent("BTCUSDT", Side::Buy, OrderKind::Market, dec!(10000000000), None);
        for asked in [small, huge] {
            let got = std::panic::catch_unwind(|| order(&state, "tiny", asked.clone()));
            assert!(
                matches!(got, Ok(Event::OrderRejected { reason: RejectReason::InsufficientCapital { .. }, .. })),
                "qty {}: {got:?}",
                asked.qty
            );
        }
    }

    #[test]
    fn round_down_to_step_never_rounds_up() {
        let cases = [
            (dec!(0.0999), dec!(0.001), Some(dec!(0.099))),
            (dec!(5), dec!(2), Some(dec!(4))),
            (dec!(0.3), dec!(0.1), Some(dec!(0.3))),
            (dec!(7.5), dec!(0), Some(dec!(7.5))),
            (dec!(-0.0999), dec!(0.001), Some(dec!(-0.099))),
            (Decimal::MAX, dec!(0.0000000000000000000000000001), None),
        ];
        for (qty, step, expected) in cases {
            assert_eq!(round_down_to_step(qty, step), expected, "{qty} by {step}");
        }
    }
}

#[cfg(test)]
mod property_tests {
    use proptest::{option, prelude::*, sample::select};

    use super::*;
    use crate::event::Side;
    use crate::{
        event::{Cloid, TimeInForce},
        testkit::{
            arb_decimal, arb_envelope_stream, arb_ledger_stream, arb_order_intent, arb_side, arb_trader, arb_workload,
            chain, SYMBOLS, TRADERS,
        },
    };

    /// A quantity: mostly a number of steps plus a fraction of one (so rounding
    /// happens), sometimes any decimal.
    #[derive(Clone, Debug)]
    enum Qty {
        Steps(u32, u8),
        Exact(Decimal),
    }

    /// A price: mostly the mark moved by some basis points (with more decimal
    /// places than the tick), sometimes any decimal.
    #[derive(Clone, Debug)]
    enum Price {
        NearMark(i32),
        Exact(Decimal),
    }

    fn arb_qty() -> impl Strategy<Value = Qty> {
        prop_oneof![3 => (1u32..60, any::<u8>()).prop_map(|(n, f)| Qty::Steps(n, f)), 1 => arb_decimal().prop_map(Qty::Exact)]
    }

    fn arb_price() -> impl Strategy<Value = Price> {
        prop_oneof![3 => (-500i32..500).prop_map(Price::NearMark), 1 => arb_decimal().prop_map(Price::Exact)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn prop_check_order_never_panics(
            stream in prop_oneof![arb_envelope_stream(0..60), arb_ledger_stream(0..60)],
            trader in prop_oneof![arb_trader(), Just("alice".to_owned())],
            intent in arb_order_intent(),
        ) {
            let state = State::fold(&stream);
            let cloid = intent.cloid;
            match order(&state, &trader, intent) {
                Event::OrderSubmitted(accepted) => prop_assert_eq!(accepted.cloid, cloid),
                Event::OrderRejected { cloid: rejected, .. } => prop_assert_eq!(rejected, cloid),
                other => prop_assert!(false, "check returned {:?}", other),
            }
        }

        /// Whatever the state of a plausible session, an accepted order is on the
        /// instrument's grid (qty rounded toward zero by less than a step, at least
        /// the minimum; prices within half a tick), and a reduce-only order never
        /// increases the position.
        #[test]
        fn prop_submitted_orders_respect_the_instrument(
            workload in arb_workload(0..80),
            trader_index in any::<usize>(),
            symbol in select(SYMBOLS.to_vec()),
            side in arb_side(),
            kind in prop_oneof![Just(OrderKind::Market), Just(OrderKind::Limit), Just(OrderKind::Stop)],
            qty in arb_qty(),
            price in option::weighted(0.85, arb_price()),
            trigger_price in option::weighted(0.85, arb_price()),
            reduce_only in any::<bool>(),
            toward_flat in prop::bool::weighted(0.75),
        ) {
            let trader = TRADERS[trader_index % workload.capital_quote.len()];
            let state = State::fold(&chain(&workload.items()));
            let position = state.traders[trader].positions.get(symbol).map_or(Decimal::ZERO, |p| p.qty);
            // Reduce-only orders mostly point toward flat, or they would all be refused.
            let side = match position.is_sign_positive() {
                _ if !reduce_only || !toward_flat || position.is_zero() => side,
                true => Side::Sell,
                false => Side::Buy,
            };
            let instrument = &state.instruments[symbol];
            let mark = state.mark(symbol).expect("workloads price every symbol");
            let qty = match qty {
                Qty::Steps(n, fraction) => instrument.qty_step * (Decimal::from(n) + Decimal::from(fraction) / Decimal::from(256)),
                Qty::Exact(qty) => qty,
            };
            let to_price = |price: Price| match price {
                Price::NearMark(bps) => mark * (Decimal::ONE + Decimal::new(i64::from(bps), 4)) + Decimal::new(1, 9),
                Price::Exact(price) => price,
            };
            let (price, trigger_price) = (price.map(to_price), trigger_price.map(to_price));
            let asked = OrderIntent { cloid: Cloid([3; 16]), symbol: symbol.into(), side, kind, qty, price, trigger_price, reduce_only, tif: TimeInForce::Ioc };
            let Event::OrderSubmitted(sent) = order(&state, trader, asked.clone()) else { return Ok(()) };
            let (step, tick) = (instrument.qty_step, instrument.tick_size);
            prop_assert_eq!((sent.cloid, &sent.symbol, sent.side, sent.kind, sent.reduce_only, sent.tif), (asked.cloid, &asked.symbol, side, kind, reduce_only, asked.tif));
            prop_assert!(sent.qty > Decimal::ZERO && sent.qty >= instrument.min_qty, "qty {} below min {}", sent.qty, instrument.min_qty);
            prop_assert!(sent.qty <= qty && qty - sent.qty < step, "qty {} from {} is not rounded toward zero", sent.qty, qty);
            prop_assert!((sent.qty % step).is_zero(), "qty {} is off the {} grid", sent.qty, step);
            for (name, sent_price, asked_price) in [("price", sent.price, price), ("trigger", sent.trigger_price, trigger_price)] {
                prop_assert_eq!(sent_price.is_some(), asked_price.is_some(), "{} appeared or vanished", name);
                if let (Some(sent_price), Some(asked_price)) = (sent_price, asked_price) {
                    prop_assert!((sent_price % tick).is_zero(), "{} {} is off the {} grid", name, sent_price, tick);
                    prop_assert!((sent_price - asked_price).abs() * Decimal::TWO <= tick, "{} {} is more than half a tick from {}", name, sent_price, asked_price);
                }
            }
            match kind {
                OrderKind::Limit => prop_assert!(sent.price.is_some()),
                OrderKind::Stop => prop_assert!(sent.trigger_price.is_some()),
                OrderKind::Market => {}
            }
            if reduce_only {
                let before = position;
                let after = before + side.sign() * sent.qty;
                prop_assert!(after.abs() <= before.abs() && (after.is_zero() || after.is_sign_positive() == before.is_sign_positive()),
                    "reduce-only {:?} {} took {} to {}", side, sent.qty, before, after);
            }
        }
    }
}
