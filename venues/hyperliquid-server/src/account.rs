//! The account: a `journal::State` in which the account is one trader, the Hyperliquid-side
//! records of its orders and fills, and what changes them — an order, a cancel, a leverage
//! change and a bar's settlement.
//!
//! The ledger is the backtest's, exactly as the Bybit server keeps it: each accepted order is
//! `OrderSubmitted` + the sim's acknowledgement stamped with the open of the bar in progress,
//! and a bar's end folds `sim::on_bar`'s events before the bar's `KlineReceived`. So a kline
//! file gives the same fills here as through `quantfold backtest` (zero slippage). The one
//! addition is the volume cap ([`Account::settle`]).
//!
//! How Hyperliquid's order types map onto the sim's:
//! - `Gtc` is a resting limit; `Alo` a post-only limit (refused at once when it would cross the
//!   last price, as the venue refuses it against the book).
//! - `Ioc` is what the SDKs send as a market order (an aggressive limit): it meets the next
//!   bar's open only, fills there if its limit allows, and the rest is cancelled.
//! - A `sl` trigger is a stop-market at `triggerPx`; a `tp` trigger is a limit at `triggerPx`
//!   (market) or at its limit price, which fills when the price trades through it: the sim has
//!   no take-profit triggers, and a limit on the far side of the price is one.

use std::collections::{BTreeMap, BTreeSet};

use bybit_server::market::Market;
use hyperliquid::{
    types::{OrderType, OrderWire, Tif, Tpsl},
    wire,
};
use journal::{
    check,
    event::{
        Cloid, Event, Fill, Instrument, Kline, Liquidity, OrderIntent, OrderKind, Side, Ticker, TimeInForce,
        TraderStart,
    },
    state::positions::closable_qty,
    Envelope, State,
};
use rust_decimal::Decimal;
use serde_json::Value;
use sim::SimConfig;

use crate::{config::Config, views};

/// The account's trader in its ledger.
pub const TRADER: &str = "account";
/// The first order id: the venue's are large numbers, and a small one would hide a client that
/// stores them in 32 bits.
pub const OID_BASE: u64 = 30_000_000_000;
/// The first trade id, for the same reason.
pub const TID_BASE: u64 = 700_000_000_000_000;

/// The venue's texts for refused orders (its "Error responses" page, and SDK-observed texts).
pub mod text {
    pub const TICK: &str = "Price must be divisible by tick size.";
    pub const INVALID_SIZE: &str = "Order has invalid size.";
    pub const MIN_VALUE: &str = "Order must have minimum value of $10.";
    pub const REDUCE_ONLY: &str = "Reduce only order would increase position.";
    pub const MISSING_ORDER: &str = "Order was never placed, already canceled, or filled.";
    /// Not documented; the text client code checks for (inference).
    pub const DUPLICATE_CLOID: &str = "Duplicate cloid";
    pub const TRIGGER_PX: &str = "Invalid TP/SL price.";
    /// An `Ioc` order that met no price it could take (this server has one asset, id 0).
    pub const IOC_NO_MATCH: &str = "Order could not immediately match against any resting orders. asset=0";
}

/// An order's type as this server keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Limit(Tif),
    Trigger { tpsl: Tpsl, is_market: bool },
}

/// The venue side of one order.
#[derive(Clone, Debug)]
pub struct OrderRecord {
    pub oid: u64,
    /// The order's id in the ledger (derived; the client's cloid is kept apart in `cloid`).
    pub ledger: Cloid,
    pub cloid: Option<Cloid>,
    pub side: Side,
    pub limit_px: Decimal,
    pub orig_sz: Decimal,
    pub filled_sz: Decimal,
    pub filled_value: Decimal,
    pub kind: Kind,
    pub trigger_px: Option<Decimal>,
    pub reduce_only: bool,
    /// The venue's word: "open", "filled", "canceled", "iocCancelRejected", ...
    pub status: &'static str,
    pub timestamp_ms: i64,
    pub status_ms: i64,
}

impl OrderRecord {
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }

    /// What is left to fill (zero once closed).
    pub fn remaining(&self) -> Decimal {
        if self.is_open() {
            (self.orig_sz - self.filled_sz).max(Decimal::ZERO)
        } else {
            Decimal::ZERO
        }
    }

    pub fn is_ioc(&self) -> bool {
        self.kind == Kind::Limit(Tif::Ioc)
    }
}

/// One fill.
#[derive(Clone, Debug)]
pub struct FillRecord {
    pub tid: u64,
    pub oid: u64,
    pub cloid: Option<Cloid>,
    pub side: Side,
    pub px: Decimal,
    pub sz: Decimal,
    pub fee: Decimal,
    pub time_ms: i64,
    pub start_position: Decimal,
    pub dir: &'static str,
    pub closed_pnl: Decimal,
    pub crossed: bool,
}

/// A user message to push: the `orderUpdates` items or the `userFills` fills.
#[derive(Clone, Debug)]
pub enum Push {
    Orders(Vec<Value>),
    /// The fills and the highest tid among them (a connection that took a snapshot skips
    /// what the snapshot had).
    Fills(Vec<Value>, u64),
}

/// The account and its ledger.
#[derive(Debug)]
pub struct Account {
    pub coin: String,
    pub instrument: Instrument,
    pub state: State,
    pub sz_decimals: u32,
    pub max_leverage: u32,
    seq: u64,
    sim: SimConfig,
    partial_above: Decimal,
    interval_ms: i64,
    /// Ledger ids handed out (refused orders use one too, so ids never repeat).
    submitted: u64,
    orders: BTreeMap<u64, OrderRecord>,
    open: BTreeSet<u64>,
    by_ledger: BTreeMap<Cloid, u64>,
    by_cloid: BTreeMap<Cloid, u64>,
    fills: Vec<FillRecord>,
    /// When the dead man's switch fires (wall ms), if set.
    pub scheduled_cancel_ms: Option<i64>,
    /// Ground-truth lines not yet written (the server drains them into `--log`).
    pub log_lines: Vec<Value>,
    /// User messages not yet pushed (the server drains them).
    pub pushes: Vec<Push>,
}

impl Account {
    /// The account at the start of `market`: instrument, trader and the history bars folded.
    pub fn new(config: &Config, market: &Market) -> Account {
        // The ledger's grid is the finest the venue allows: the venue's own rules (significant
        // figures, decimals) are checked before the ledger sees an order.
        let tick_size = Decimal::new(1, wire::max_price_decimals(config.sz_decimals));
        let qty_step = Decimal::new(1, config.sz_decimals);
        let instrument = Instrument {
            symbol: market.symbol.clone(),
            tick_size,
            qty_step,
            min_qty: qty_step,
            max_leverage: Decimal::from(config.max_leverage),
            maintenance_margin_rate: config.maintenance_margin_rate,
            taker_fee_rate: config.taker_fee,
            maker_fee_rate: config.maker_fee,
        };
        let mut account = Account {
            coin: market.symbol.clone(),
            instrument: instrument.clone(),
            state: State::default(),
            sz_decimals: config.sz_decimals,
            max_leverage: config.max_leverage,
            seq: 0,
            sim: SimConfig::default(),
            partial_above: config.partial_above,
            interval_ms: market.interval_ms,
            submitted: 0,
            orders: BTreeMap::new(),
            open: BTreeSet::new(),
            by_ledger: BTreeMap::new(),
            by_cloid: BTreeMap::new(),
            fills: Vec::new(),
            scheduled_cancel_ms: None,
            log_lines: Vec::new(),
            pushes: Vec::new(),
        };
        let start_ms = market.all()[0].open_time_ms;
        account.fold(start_ms, "", Event::InstrumentDefined(instrument));
        let start = TraderStart {
            exchange: "hyperliquid-server".into(),
            account: TRADER.into(),
            currency: "USDC".into(),
            allocation_pct: Decimal::ONE_HUNDRED,
            capital_quote: config.balance,
            leverage: Decimal::from(config.leverage),
        };
        account.fold(start_ms, TRADER, Event::TraderStarted(start));
        for bar in market.closed() {
            account.fold(bar.open_time_ms + bar.interval_ms, "", Event::KlineReceived(bar.clone()));
        }
        if market.closed().is_empty() {
            // Before any close the checks need a price: the first open, as allMids says.
            let ticker = Ticker {
                symbol: market.symbol.clone(),
                last: Some(market.last_price()),
                bid: None,
                ask: None,
                mark: None,
                index: None,
                funding_rate: None,
                next_funding_ms: None,
            };
            account.fold(start_ms, "", Event::TickerReceived(ticker));
        }
        account
    }

    fn fold(&mut self, time_ms: i64, trader: &str, event: Event) {
        let envelope = Envelope {
            seq: self.seq,
            time_ms,
            trader: trader.to_owned(),
            event,
            prev_hash: Default::default(),
            hash: Default::default(),
        };
        self.seq += 1;
        self.state.apply(&envelope);
    }

    /// The ledger's signed position in the coin.
    pub fn position_qty(&self) -> Decimal {
        self.position().map_or(Decimal::ZERO, |p| p.qty)
    }

    pub fn position(&self) -> Option<&journal::state::positions::Position> {
        self.state.traders.get(TRADER).and_then(|t| t.positions.get(&self.coin))
    }

    /// The account's leverage on the coin.
    pub fn leverage(&self) -> Decimal {
        self.state.traders.get(TRADER).map_or(Decimal::ONE, |t| t.leverage(Some(&self.instrument)))
    }

    /// One order of an `order` action. Returns its oid, or the venue's error text.
    ///
    /// # Errors
    /// The order is refused; the text is the venue's.
    pub fn place(&mut self, order: &OrderWire, market: &Market) -> Result<u64, String> {
        if order.asset != 0 {
            // Not documented for perps; the asset id is the index in `meta.universe`.
            return Err(format!("Invalid asset id {}.", order.asset));
        }
        let px = parse_decimal(&order.limit_px).ok_or(text::TICK)?;
        wire::check_price(px, self.sz_decimals).map_err(|_| text::TICK)?;
        let sz = parse_decimal(&order.sz).ok_or(text::INVALID_SIZE)?;
        wire::check_size(sz, self.sz_decimals).map_err(|_| text::INVALID_SIZE)?;
        let trigger_px = match &order.order_type {
            OrderType::Trigger(trigger) => {
                let value = parse_decimal(&trigger.trigger_px).ok_or(text::TRIGGER_PX)?;
                wire::check_price(value, self.sz_decimals).map_err(|_| text::TICK)?;
                Some(value)
            }
            OrderType::Limit(_) => None,
        };
        if !order.reduce_only && wire::check_min_notional(px, sz).is_err() {
            return Err(text::MIN_VALUE.into());
        }
        if let Some(cloid) = order.cloid {
            if self.by_cloid.contains_key(&cloid) {
                return Err(text::DUPLICATE_CLOID.into());
            }
        }
        let side = if order.is_buy { Side::Buy } else { Side::Sell };
        if order.reduce_only && closable_qty(self.position_qty(), side).is_zero() {
            return Err(text::REDUCE_ONLY.into());
        }
        let last = market.last_price();
        let (kind, record_kind) = match &order.order_type {
            OrderType::Limit(limit) => (OrderKind::Limit, Kind::Limit(limit.tif)),
            OrderType::Trigger(trigger) => {
                let kind = if trigger.tpsl == Tpsl::Sl { OrderKind::Stop } else { OrderKind::Limit };
                (kind, Kind::Trigger { tpsl: trigger.tpsl, is_market: trigger.is_market })
            }
        };
        if record_kind == Kind::Limit(Tif::Alo)
            && ((side == Side::Buy && px >= last) || (side == Side::Sell && px <= last))
        {
            return Err(format!(
                "Post only order would have immediately matched, bbo was {}@{}. asset={}",
                last.normalize(),
                last.normalize(),
                order.asset
            ));
        }
        let (price, trigger_price, tif) = match record_kind {
            Kind::Limit(Tif::Gtc) => (Some(px), None, TimeInForce::Gtc),
            Kind::Limit(Tif::Ioc) => (Some(px), None, TimeInForce::Ioc),
            Kind::Limit(Tif::Alo) => (Some(px), None, TimeInForce::PostOnly),
            Kind::Trigger { tpsl: Tpsl::Sl, .. } => (None, trigger_px, TimeInForce::Ioc),
            Kind::Trigger { tpsl: Tpsl::Tp, is_market } => {
                (Some(if is_market { trigger_px.unwrap_or(px) } else { px }), None, TimeInForce::Gtc)
            }
        };
        self.submitted += 1;
        let intent = OrderIntent {
            cloid: Cloid::derive(TRADER, self.submitted, 0),
            symbol: self.coin.clone(),
            side,
            kind,
            qty: sz,
            price,
            trigger_price,
            reduce_only: order.reduce_only,
            tif,
        };
        let intent = match check::order(&self.state, TRADER, intent) {
            Event::OrderSubmitted(intent) => intent,
            Event::OrderRejected { reason, .. } => return Err(refusal(&reason, order.asset)),
            _ => return Err("internal error: the checks answered neither way".into()),
        };
        let stamp_ms = market.order_stamp_ms();
        self.fold(stamp_ms, TRADER, Event::OrderSubmitted(intent.clone()));
        let answer = sim::acknowledge(&self.state, TRADER, &intent);
        let refused = matches!(answer, Event::OrderRejected { .. });
        self.fold(stamp_ms, TRADER, answer);
        if refused {
            return Err(format!("Order rejected by the exchange. asset={}", order.asset));
        }
        let now_ms = market.event_ms();
        let oid = OID_BASE + self.orders.len() as u64 + 1;
        let record = OrderRecord {
            oid,
            ledger: intent.cloid,
            cloid: order.cloid,
            side,
            limit_px: px,
            orig_sz: sz,
            filled_sz: Decimal::ZERO,
            filled_value: Decimal::ZERO,
            kind: record_kind,
            trigger_px,
            reduce_only: order.reduce_only,
            status: "open",
            timestamp_ms: now_ms,
            status_ms: now_ms,
        };
        self.log_lines.push(views::order_log(&record, &self.coin));
        self.pushes.push(Push::Orders(vec![views::ws_order(&record, &self.coin)]));
        self.by_ledger.insert(record.ledger, oid);
        if let Some(cloid) = record.cloid {
            self.by_cloid.insert(cloid, oid);
        }
        self.open.insert(oid);
        self.orders.insert(oid, record);
        Ok(oid)
    }

    /// Cancels the open order `oid`.
    ///
    /// # Errors
    /// The venue's text for an order unknown, filled or cancelled.
    pub fn cancel(&mut self, oid: u64, market: &Market) -> Result<(), String> {
        if !self.open.contains(&oid) {
            return Err(text::MISSING_ORDER.into());
        }
        self.close_order(oid, "canceled", market.order_stamp_ms(), market.event_ms());
        Ok(())
    }

    /// Cancels the open order with the client id `cloid`.
    ///
    /// # Errors
    /// As [`Account::cancel`].
    pub fn cancel_by_cloid(&mut self, cloid: &Cloid, market: &Market) -> Result<(), String> {
        let oid = *self.by_cloid.get(cloid).ok_or(text::MISSING_ORDER)?;
        self.cancel(oid, market)
    }

    /// Cancels every open order with `status` ("scheduledCancel" for the dead man's switch).
    pub fn cancel_all(&mut self, status: &'static str, market: &Market) {
        let open: Vec<u64> = self.open.iter().copied().collect();
        for oid in open {
            self.close_order(oid, status, market.order_stamp_ms(), market.event_ms());
        }
    }

    /// Refuses an `Ioc` order that can meet no bar (the market has ended).
    pub fn reject_ioc(&mut self, oid: u64, market: &Market) {
        self.close_order(oid, "iocCancelRejected", market.order_stamp_ms(), market.event_ms());
    }

    fn close_order(&mut self, oid: u64, status: &'static str, stamp_ms: i64, now_ms: i64) {
        let Some(ledger) = self.orders.get(&oid).map(|o| o.ledger) else { return };
        self.fold(stamp_ms, TRADER, Event::OrderCancelRequested { cloid: ledger });
        if let Some(answer) = sim::cancel(&self.state, TRADER, &ledger) {
            self.fold(stamp_ms, TRADER, answer);
        }
        self.open.remove(&oid);
        if let Some(record) = self.orders.get_mut(&oid) {
            record.status = status;
            record.status_ms = now_ms;
            let view = views::ws_order(record, &self.coin);
            self.pushes.push(Push::Orders(vec![view]));
        }
    }

    /// `updateLeverage`: the ledger has no event for it, so the trader's start is edited in
    /// place (this ledger is the server's own and is never journaled).
    ///
    /// # Errors
    /// A leverage outside 1..=maxLeverage.
    pub fn update_leverage(&mut self, leverage: u32) -> Result<(), String> {
        if leverage == 0 || leverage > self.max_leverage {
            return Err(format!("Invalid leverage value: {leverage} (max {})", self.max_leverage));
        }
        if let Some(start) = self.state.traders.get_mut(TRADER).and_then(|t| t.start.as_mut()) {
            start.leverage = Decimal::from(leverage);
        }
        Ok(())
    }

    /// Settles the bar that just closed: the sim's events, then the bar itself; an `Ioc`
    /// order still open after it is cancelled (it had its one chance, the open).
    ///
    /// The volume cap: a fill larger than `partial_above × volume` (rounded down to the lot)
    /// fills only that much, and the order rests on with the rest. The sim computed the bar's
    /// later events assuming the whole fill, so they are dropped and the bar is simulated again
    /// with the capped orders left out (they are done for this bar); each pass caps one more
    /// order, so this ends.
    pub fn settle(&mut self, bar: &Kline) {
        let exec_ms = bar.open_time_ms + self.interval_ms - 1;
        let cap = (self.partial_above > Decimal::ZERO)
            .then(|| check::round_down_to_step(bar.volume.saturating_mul(self.partial_above), self.instrument.qty_step))
            .flatten();
        let mut done: BTreeSet<Cloid> = BTreeSet::new();
        loop {
            let events = if done.is_empty() {
                sim::on_bar(&self.sim, &self.state, bar)
            } else {
                let mut view = self.state.clone();
                if let Some(trader) = view.traders.get_mut(TRADER) {
                    trader.orders.retain(|cloid, _| !done.contains(cloid));
                }
                sim::on_bar(&self.sim, &view, bar)
            };
            let mut again = false;
            for (_, time_ms, event) in events {
                if let (Event::OrderFilled(fill), Some(cap)) = (&event, cap) {
                    if fill.qty > cap {
                        done.insert(fill.cloid);
                        if cap > Decimal::ZERO {
                            let capped = self.capped(fill, cap);
                            self.answer(time_ms, Event::OrderFilled(capped), exec_ms);
                        }
                        again = true;
                        break;
                    }
                }
                self.answer(time_ms, event, exec_ms);
            }
            if !again {
                break;
            }
        }
        let leftovers: Vec<u64> =
            self.open.iter().copied().filter(|oid| self.orders.get(oid).is_some_and(OrderRecord::is_ioc)).collect();
        for oid in leftovers {
            // An Ioc that got nothing is the venue's "iocCancelRejected"; one partly filled had
            // its rest cancelled.
            let status = if self.orders[&oid].filled_sz.is_zero() { "iocCancelRejected" } else { "canceled" };
            self.close_order(oid, status, bar.open_time_ms, exec_ms);
        }
        self.fold(bar.open_time_ms + self.interval_ms, "", Event::KlineReceived(bar.clone()));
    }

    /// `fill` cut to `qty`, its fee recomputed as the sim computes fees.
    fn capped(&self, fill: &Fill, qty: Decimal) -> Fill {
        let rate = match fill.liquidity {
            Liquidity::Maker => self.instrument.maker_fee_rate,
            Liquidity::Taker => self.instrument.taker_fee_rate,
        };
        let fee = qty.saturating_mul(fill.price).saturating_mul(rate).round_dp(8);
        Fill { qty, fee_quote: fee, ..fill.clone() }
    }

    /// Folds one of the sim's answers and brings the records up to date with it.
    fn answer(&mut self, time_ms: i64, event: Event, exec_ms: i64) {
        let before = self.position_qty();
        let entry = self.position().map_or(Decimal::ZERO, |p| p.entry_price);
        let closing_status = match &event {
            Event::OrderCancelled { reason, .. } if reason.starts_with("reduce-only") => "reduceOnlyCanceled",
            Event::OrderCancelled { reason, .. } if reason.starts_with("insufficient margin") => "marginCanceled",
            Event::OrderCancelled { reason, .. } if reason.starts_with("post-only") => "badAloPxRejected",
            Event::OrderCancelled { reason, .. } if reason.starts_with("IOC") => "iocCancelRejected",
            Event::PositionLiquidated { .. } => "liquidatedCanceled",
            _ => "canceled",
        };
        self.fold(time_ms, TRADER, event.clone());
        if let Event::OrderFilled(fill) = &event {
            let Some(&oid) = self.by_ledger.get(&fill.cloid) else { return };
            let Some(record) = self.orders.get_mut(&oid) else { return };
            record.filled_sz += fill.qty;
            record.filled_value = record.filled_value.saturating_add(fill.qty.saturating_mul(fill.price));
            record.status_ms = exec_ms;
            if record.filled_sz >= record.orig_sz {
                record.status = "filled";
            }
            let closed = closable_qty(before, fill.side).min(fill.qty);
            let direction = if before > Decimal::ZERO { Decimal::ONE } else { -Decimal::ONE };
            let fill_record = FillRecord {
                tid: TID_BASE + self.fills.len() as u64 + 1,
                oid,
                cloid: record.cloid,
                side: fill.side,
                px: fill.price,
                sz: fill.qty,
                fee: fill.fee_quote,
                time_ms: exec_ms,
                start_position: before,
                dir: direction_of(before, fill.side, fill.qty),
                closed_pnl: closed
                    .saturating_mul(fill.price.saturating_sub(entry))
                    .saturating_mul(direction)
                    .round_dp(8),
                crossed: fill.liquidity == Liquidity::Taker,
            };
            let order_view = views::ws_order(record, &self.coin);
            self.log_lines.push(views::fill_log(&fill_record, &self.coin));
            self.pushes.push(Push::Fills(vec![views::fill(&fill_record, &self.coin)], fill_record.tid));
            self.pushes.push(Push::Orders(vec![order_view]));
            self.fills.push(fill_record);
        }
        // Whatever left the ledger's open orders is closed here too.
        let open_in_ledger: BTreeSet<Cloid> =
            self.state.traders.get(TRADER).map(|t| t.orders.keys().copied().collect()).unwrap_or_default();
        let closed: Vec<u64> =
            self.open.iter().copied().filter(|oid| !open_in_ledger.contains(&self.orders[oid].ledger)).collect();
        for oid in closed {
            self.open.remove(&oid);
            if let Some(record) = self.orders.get_mut(&oid) {
                if record.filled_sz < record.orig_sz {
                    record.status = closing_status;
                    record.status_ms = exec_ms;
                    let view = views::ws_order(record, &self.coin);
                    self.pushes.push(Push::Orders(vec![view]));
                }
            }
        }
    }

    /// An order by oid (open or closed).
    pub fn order(&self, oid: u64) -> Option<&OrderRecord> {
        self.orders.get(&oid)
    }

    /// An order by the client's cloid.
    pub fn order_by_cloid(&self, cloid: &Cloid) -> Option<&OrderRecord> {
        self.by_cloid.get(cloid).and_then(|oid| self.orders.get(oid))
    }

    /// The open orders, oldest first.
    pub fn open_orders(&self) -> impl Iterator<Item = &OrderRecord> {
        self.open.iter().filter_map(|oid| self.orders.get(oid))
    }

    /// Every fill, oldest first.
    pub fn fills(&self) -> &[FillRecord] {
        &self.fills
    }
}

/// "Open Long", "Close Short", "Long > Short", ...: what a fill of `qty` on `side` did to the
/// position `before`.
fn direction_of(before: Decimal, side: Side, qty: Decimal) -> &'static str {
    match side {
        Side::Buy if before < Decimal::ZERO && before + qty > Decimal::ZERO => "Short > Long",
        Side::Buy if before < Decimal::ZERO => "Close Short",
        Side::Buy => "Open Long",
        Side::Sell if before > Decimal::ZERO && before - qty < Decimal::ZERO => "Long > Short",
        Side::Sell if before > Decimal::ZERO => "Close Long",
        Side::Sell => "Open Short",
    }
}

/// A ledger check's rejection as the venue words it.
fn refusal(reason: &journal::event::RejectReason, asset: u32) -> String {
    use journal::event::RejectReason as R;
    match reason {
        R::InsufficientCapital { .. } => format!("Insufficient margin to place order. asset={asset}"),
        R::ReduceOnlyWouldIncrease => text::REDUCE_ONLY.into(),
        R::InvalidPrice(_) | R::PriceRequired => text::TICK.into(),
        R::InvalidQty(_) | R::NonPositiveQty(_) | R::QtyBelowMin { .. } => text::INVALID_SIZE.into(),
        // The ledger's other reasons have no venue text; say what the ledger said.
        other => format!("Order rejected: {other}"),
    }
}

/// A wire number: a decimal string (the venue takes nothing else), at most 40 characters.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.len() > 40 || text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn fill_directions_as_the_venue_names_them() {
        struct Case {
            before: Decimal,
            side: Side,
            qty: Decimal,
            dir: &'static str,
        }
        let cases = [
            Case { before: dec!(0), side: Side::Buy, qty: dec!(1), dir: "Open Long" },
            Case { before: dec!(0), side: Side::Sell, qty: dec!(1), dir: "Open Short" },
            Case { before: dec!(1), side: Side::Buy, qty: dec!(1), dir: "Open Long" },
            Case { before: dec!(1), side: Side::Sell, qty: dec!(0.5), dir: "Close Long" },
            Case { before: dec!(1), side: Side::Sell, qty: dec!(1), dir: "Close Long" },
            Case { before: dec!(1), side: Side::Sell, qty: dec!(3), dir: "Long > Short" },
            Case { before: dec!(-1), side: Side::Sell, qty: dec!(1), dir: "Open Short" },
            Case { before: dec!(-1), side: Side::Buy, qty: dec!(1), dir: "Close Short" },
            Case { before: dec!(-1), side: Side::Buy, qty: dec!(2), dir: "Short > Long" },
        ];
        for case in cases {
            assert_eq!(
                direction_of(case.before, case.side, case.qty),
                case.dir,
                "{} {:?} {}",
                case.before,
                case.side,
                case.qty
            );
        }
    }

    #[test]
    fn wire_numbers_are_decimal_strings_only() {
        assert_eq!(parse_decimal("103.5"), Some(dec!(103.5)));
        assert_eq!(parse_decimal("0.00001"), Some(dec!(0.00001)));
        for bad in ["", "1e5", "NaN", " 1", "1,5", "99999999999999999999999999999", &"9".repeat(41)] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }
}
