//! Pre-append checks: an order intent becomes either `OrderSubmitted` (rounded
//! to the instrument's steps) or `OrderRejected` with a reason. Both are
//! journaled, so the audit trail shows what was refused and why. This is the
//! only place orders are validated; `apply` trusts what the journal says.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::{
    event::{Event, OrderIntent, OrderKind, RejectReason, Side},
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
    let closable = if (intent.side == Side::Buy) == (position_qty < Decimal::ZERO) {
        position_qty.abs()
    } else {
        Decimal::ZERO
    };
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
        let notional = opening_qty.checked_mul(price).ok_or_else(|| RejectReason::InvalidQty(intent.qty.to_string()))?;
        let fee = notional.saturating_mul(instrument.taker_fee_rate.max(instrument.maker_fee_rate));
        let required = (notional / leverage).saturating_add(fee).round_dp(8);
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
    let ticks = price.checked_div(tick).ok_or_else(invalid)?.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    let rounded = ticks.checked_mul(tick).ok_or_else(invalid)?.normalize();
    if rounded <= Decimal::ZERO {
        return Err(RejectReason::InvalidPrice(price.to_string()));
    }
    Ok(Some(rounded))
}
