//! One trader's bar: the assumed price path, and the events along it in order.

use std::collections::BTreeSet;

use journal::{
    check::round_down_to_step,
    event::{Cloid, Event, Fill, Instrument, Kline, Liquidity, OrderKind, Side, TimeInForce},
    state::{Mark, Order, OrderStatus, Position, State, TraderState},
    Envelope, Hash,
};
use rust_decimal::Decimal;

use super::{Intrabar, SimConfig};

/// Whether nothing can happen to `trader` during `bar`: no cancel request on the
/// symbol, no resting order the bar's range could trigger, and no liquidation in
/// reach (with no fill the position stays as it is). Conservative: it may answer
/// `false` for a bar where nothing happens, never `true` for one where something does.
pub(super) fn quiet(name: &str, trader: &TraderState, instrument: &Instrument, bar: &Kline, memo: &mut Memo) -> bool {
    let position = trader.positions.get(&bar.symbol).filter(|p| !p.qty.is_zero());
    let mut orders = trader.orders.values().filter(|o| o.intent.symbol == bar.symbol).peekable();
    if position.is_none() && orders.peek().is_none() {
        // Most bars: nothing rests and nothing can be liquidated.
        return true;
    }
    let low = bar.low.min(bar.open).min(bar.close);
    let high = bar.high.max(bar.open).max(bar.close);
    let orders_quiet = orders.all(|o| {
        let intent = &o.intent;
        if o.cancel_requested {
            return false;
        }
        if !matches!(o.status, OrderStatus::Open | OrderStatus::PartiallyFilled) || o.submitted_ms > bar.open_time_ms {
            return true;
        }
        match (intent.kind, intent.side, intent.price, intent.trigger_price) {
            (OrderKind::Limit, ..) if matches!(intent.tif, TimeInForce::Ioc | TimeInForce::Fok) => false,
            (OrderKind::Limit, Side::Buy, Some(price), _) => low > price,
            (OrderKind::Limit, Side::Sell, Some(price), _) => high < price,
            (OrderKind::Stop, Side::Buy, _, Some(trigger)) => high < trigger,
            (OrderKind::Stop, Side::Sell, _, Some(trigger)) => low > trigger,
            _ => false,
        }
    });
    if !orders_quiet {
        return false;
    }
    let Some(position) = position else { return true };
    match memo.liquidation(name, &bar.symbol, position, trader, instrument) {
        Some(liquidation) if position.qty > Decimal::ZERO => low > liquidation,
        Some(liquidation) => high < liquidation,
        None => true,
    }
}

/// Liquidation prices remembered per (trader, symbol): every bar of an open position is
/// checked against one, and it changes only when a fill changes the position (or the
/// leverage or maintenance rate change). The same numbers as computing them each time.
#[derive(Debug, Default)]
pub struct Memo {
    liquidation: Vec<Remembered>,
}

#[derive(Debug)]
struct Remembered {
    trader: String,
    symbol: String,
    /// Position quantity and entry, trader leverage, instrument leverage cap and maintenance rate.
    inputs: [Decimal; 5],
    price: Option<Decimal>,
}

impl Memo {
    fn liquidation(
        &mut self,
        name: &str,
        symbol: &str,
        position: &Position,
        trader: &TraderState,
        instrument: &Instrument,
    ) -> Option<Decimal> {
        let own = trader.start.as_ref().map_or(Decimal::ONE, |s| s.leverage);
        let inputs =
            [position.qty, position.entry_price, own, instrument.max_leverage, instrument.maintenance_margin_rate];
        // Compared by representation (value and scale), so a remembered price is the very one
        // computing it now would give.
        let same = |a: &[Decimal; 5]| a.iter().zip(&inputs).all(|(x, y)| x.serialize() == y.serialize());
        let at = self.liquidation.iter().position(|r| r.trader == name && r.symbol == symbol);
        if let Some(r) = at.map(|i| &self.liquidation[i]).filter(|r| same(&r.inputs)) {
            return r.price;
        }
        let price = position.liquidation_price(trader.leverage(Some(instrument)), instrument.maintenance_margin_rate);
        let remembered = Remembered { trader: name.to_owned(), symbol: symbol.to_owned(), inputs, price };
        match at {
            Some(i) => self.liquidation[i] = remembered,
            None => self.liquidation.push(remembered),
        }
        price
    }
}

/// A price condition along the path.
#[derive(Clone, Copy, Debug)]
enum Cond {
    /// Price `< level` (strict) or `<= level`.
    Below { level: Decimal, strict: bool },
    /// Price `> level` (strict) or `>= level`.
    Above { level: Decimal, strict: bool },
}

impl Cond {
    fn holds(self, price: Decimal) -> bool {
        match self {
            Cond::Below { level, strict } => price < level || (!strict && price == level),
            Cond::Above { level, strict } => price > level || (!strict && price == level),
        }
    }

    fn level(self) -> Decimal {
        match self {
            Cond::Below { level, .. } | Cond::Above { level, .. } => level,
        }
    }

    fn strict(self) -> bool {
        match self {
            Cond::Below { strict, .. } | Cond::Above { strict, .. } => strict,
        }
    }
}

/// What happens at a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Market(Cloid),
    Liquidation,
    Stop(Cloid),
    Limit(Cloid),
}

/// Where on the path an event happens; derives the processing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    seg: usize,
    /// Distance along the segment: the price, negated on a falling segment.
    along: Decimal,
    /// Needs the price to go through the level (limits), so after touches at it.
    through: bool,
    rank: u8,
    seq: u64,
}

#[derive(Clone, Copy, Debug)]
struct Hit {
    key: Key,
    /// The price where the event happens on the path (the level, or the current price if already beyond).
    price: Decimal,
    what: What,
}

/// One trader's bar: a scratch copy of its ledger, folded forward by every event
/// the sim emits, so that positions, cash and margin include earlier fills.
pub(super) struct TraderSim<'a> {
    config: &'a SimConfig,
    bar: &'a Kline,
    instrument: &'a Instrument,
    name: &'a str,
    real: &'a TraderState,
    scratch: State,
    seq: u64,
    done: BTreeSet<Cloid>,
    liquidated: bool,
    /// The path's segments; segment 0 is the open itself.
    path: Vec<(Decimal, Decimal)>,
    /// Position on the path of the last event: (segment, price).
    cursor: (usize, Decimal),
    pub(super) events: Vec<Event>,
}

impl<'a> TraderSim<'a> {
    pub(super) fn new(
        config: &'a SimConfig,
        state: &State,
        name: &'a str,
        real: &'a TraderState,
        instrument: &'a Instrument,
        bar: &'a Kline,
    ) -> TraderSim<'a> {
        let mut scratch =
            State { instruments: state.instruments.clone(), marks: state.marks.clone(), ..State::default() };
        // Everything `State::account` and the fold of fills read; not the fill-id set or the strategy.
        let trader = TraderState {
            start: real.start.clone(),
            cash: real.cash,
            realized_pnl: real.realized_pnl,
            fees_paid: real.fees_paid,
            funding_net: real.funding_net,
            positions: real.positions.clone(),
            orders: real.orders.clone(),
            ..TraderState::default()
        };
        scratch.traders.insert(name.to_owned(), trader);
        TraderSim {
            config,
            bar,
            instrument,
            name,
            real,
            scratch,
            seq: 0,
            done: BTreeSet::new(),
            liquidated: false,
            path: vec![(bar.open, bar.open)],
            cursor: (0, bar.open),
            events: Vec::new(),
        }
    }

    pub(super) fn run(&mut self) {
        let symbol = &self.bar.symbol;
        let mut requested: Vec<(u64, Cloid)> = self
            .trader()
            .orders
            .values()
            .filter(|o| o.cancel_requested && &o.intent.symbol == symbol)
            .map(|o| (o.submitted_seq, o.intent.cloid))
            .collect();
        requested.sort();
        for (_, cloid) in requested {
            self.cancel(cloid, "cancelled on request".into());
        }

        // The open: market orders, then what the open has gone through.
        self.walk(true);
        let mut leftover: Vec<(u64, Cloid, String)> = Vec::new();
        for order in self.resting() {
            let intent = &order.intent;
            let reason = match (intent.kind, intent.tif) {
                (OrderKind::Limit, _) if intent.price.is_none() => "limit order without a price",
                (OrderKind::Stop, _) if intent.trigger_price.is_none() => "stop order without a trigger price",
                (OrderKind::Limit, TimeInForce::Ioc) => "IOC: not marketable at the open",
                (OrderKind::Limit, TimeInForce::Fok) => "FOK: not marketable at the open",
                _ => continue,
            };
            leftover.push((order.submitted_seq, intent.cloid, reason.into()));
        }
        leftover.sort();
        for (_, cloid, reason) in leftover {
            self.cancel(cloid, reason);
        }

        // Then the bar's path: open → first extreme → second extreme → close.
        let long_or_flat = self.position_qty() >= Decimal::ZERO;
        let low_first = long_or_flat == (self.config.intrabar == Intrabar::AdverseFirst);
        let (first, second) = if low_first { (self.bar.low, self.bar.high) } else { (self.bar.high, self.bar.low) };
        let open = self.bar.open;
        self.path.extend([(open, first), (first, second), (second, self.bar.close)]);
        self.cursor = (1, open);
        self.walk(false);
    }

    /// Processes events along the path from the cursor until none is left.
    fn walk(&mut self, at_open: bool) {
        while let Some(hit) = self.next_hit(at_open) {
            self.cursor = (hit.key.seg, hit.price);
            self.execute(hit, at_open);
        }
    }

    fn trader(&self) -> &TraderState {
        self.scratch.traders.get(self.name).expect("invariant: inserted in new")
    }

    fn position_qty(&self) -> Decimal {
        self.trader().positions.get(&self.bar.symbol).map_or(Decimal::ZERO, |p| p.qty)
    }

    /// Orders on the bar's symbol resting since the bar's open and not yet handled.
    fn resting(&self) -> impl Iterator<Item = &Order> {
        self.trader().orders.values().filter(|o| {
            o.intent.symbol == self.bar.symbol
                && matches!(o.status, OrderStatus::Open | OrderStatus::PartiallyFilled)
                && o.submitted_ms <= self.bar.open_time_ms
                && !o.cancel_requested
                && !self.done.contains(&o.intent.cloid)
        })
    }

    /// Which kind goes first at one price: markets, then under `AdverseFirst`
    /// liquidation, stops, limits; under `FavorableFirst` limits, stops, liquidation.
    fn rank(&self, what: What) -> u8 {
        match (what, self.config.intrabar) {
            (What::Market(_), _) => 0,
            (What::Liquidation, Intrabar::AdverseFirst) | (What::Limit(_), Intrabar::FavorableFirst) => 1,
            (What::Stop(_), _) => 2,
            (What::Liquidation | What::Limit(_), _) => 3,
        }
    }

    /// The first place from the cursor on where `cond` holds: (segment, price, at the segment's start).
    fn first_hit(&self, cond: Cond) -> Option<(usize, Decimal, bool)> {
        for (seg, &(from, to)) in self.path.iter().enumerate().skip(self.cursor.0) {
            let from = if seg == self.cursor.0 { self.cursor.1 } else { from };
            if cond.holds(from) {
                return Some((seg, from, true));
            }
            if cond.holds(to) {
                return Some((seg, cond.level(), false));
            }
        }
        None
    }

    fn hit(&self, cond: Cond, what: What, seq: u64) -> Option<Hit> {
        let (seg, price, at_start) = self.first_hit(cond)?;
        let (from, to) = self.path[seg];
        let along = if to < from { -price } else { price };
        let key = Key { seg, along, through: cond.strict() && !at_start, rank: self.rank(what), seq };
        Some(Hit { key, price, what })
    }

    fn next_hit(&self, at_open: bool) -> Option<Hit> {
        let mut best: Option<Hit> = None;
        let mut consider = |hit: Option<Hit>| {
            if let Some(hit) = hit {
                if best.is_none_or(|b| hit.key < b.key) {
                    best = Some(hit);
                }
            }
        };
        consider(self.liquidation_cond().and_then(|cond| self.hit(cond, What::Liquidation, 0)));
        for order in self.resting() {
            let intent = &order.intent;
            let (seq, cloid) = (order.submitted_seq, intent.cloid);
            let hit = match intent.kind {
                OrderKind::Market if at_open => {
                    self.hit(Cond::Below { level: self.bar.open, strict: false }, What::Market(cloid), seq)
                }
                OrderKind::Market => None,
                OrderKind::Limit if !at_open && matches!(intent.tif, TimeInForce::Ioc | TimeInForce::Fok) => None,
                OrderKind::Limit => intent.price.and_then(|level| {
                    let strict = !at_open;
                    let cond = match intent.side {
                        Side::Buy => Cond::Below { level, strict },
                        Side::Sell => Cond::Above { level, strict },
                    };
                    self.hit(cond, What::Limit(cloid), seq)
                }),
                OrderKind::Stop => intent.trigger_price.and_then(|level| {
                    let cond = match intent.side {
                        Side::Buy => Cond::Above { level, strict: false },
                        Side::Sell => Cond::Below { level, strict: false },
                    };
                    self.hit(cond, What::Stop(cloid), seq)
                }),
            };
            consider(hit);
        }
        best
    }

    /// The liquidation condition of the current position, on the tick grid toward its loss.
    fn liquidation_cond(&self) -> Option<Cond> {
        if self.liquidated {
            return None;
        }
        let trader = self.trader();
        let position = trader.positions.get(&self.bar.symbol)?;
        let leverage = trader.leverage(Some(self.instrument));
        let price = position.liquidation_price(leverage, self.instrument.maintenance_margin_rate)?;
        let long = position.qty > Decimal::ZERO;
        let level = to_tick(price, self.instrument.tick_size, !long)?;
        if long {
            (level > Decimal::ZERO).then_some(Cond::Below { level, strict: false })
        } else {
            Some(Cond::Above { level, strict: false })
        }
    }

    fn execute(&mut self, hit: Hit, at_open: bool) {
        let cloid = match hit.what {
            What::Liquidation => {
                self.liquidated = true;
                let qty = self.position_qty().abs();
                let fee = qty.checked_mul(hit.price).and_then(|n| n.checked_mul(self.config.liquidation_fee_rate));
                let fee = fee.map_or(Decimal::ZERO, |f| f.round_dp(8));
                let symbol = self.bar.symbol.clone();
                self.emit(Event::PositionLiquidated { symbol, price: hit.price, fee_quote: fee });
                return;
            }
            What::Market(c) | What::Stop(c) | What::Limit(c) => c,
        };
        self.done.insert(cloid);
        let Some(order) = self.trader().orders.get(&cloid).cloned() else { return };
        let side = order.intent.side;
        let priced = match hit.what {
            What::Limit(_) if at_open && order.intent.tif == TimeInForce::PostOnly => {
                let reason = format!("post-only: would take liquidity at the open {}", self.bar.open);
                return self.cancel(cloid, reason);
            }
            What::Limit(_) if at_open => {
                let limit = order.intent.price.unwrap_or(self.bar.open);
                self.slipped(self.bar.open, side).map(|p| match side {
                    Side::Buy => (p.min(limit), Liquidity::Taker),
                    Side::Sell => (p.max(limit), Liquidity::Taker),
                })
            }
            What::Limit(_) => Some((hit.price, Liquidity::Maker)),
            // Market at the open; a stop at the worse of its trigger and the price the path is at.
            _ => self.slipped(hit.price, side).map(|p| (p, Liquidity::Taker)),
        };
        match priced {
            Some((price, liquidity)) if price > Decimal::ZERO => self.fill(&order, price, liquidity),
            _ => self.cancel(cloid, "no valid fill price (arithmetic overflow or non-positive after slippage)".into()),
        }
    }

    /// `price` moved against the taker by the slippage, on the tick grid toward the taker's loss.
    fn slipped(&self, price: Decimal, side: Side) -> Option<Decimal> {
        if self.config.slippage_bps <= Decimal::ZERO {
            return to_tick(price, self.instrument.tick_size, side == Side::Buy);
        }
        let s = self.config.slippage_bps.checked_div(Decimal::from(10_000))?;
        let raw = price.checked_mul(Decimal::ONE.checked_add(side.sign() * s)?)?;
        to_tick(raw, self.instrument.tick_size, side == Side::Buy)
    }

    fn fill(&mut self, order: &Order, price: Decimal, liquidity: Liquidity) {
        let intent = &order.intent;
        let position = self.position_qty();
        let closable = if intent.side.sign() * position < Decimal::ZERO { position.abs() } else { Decimal::ZERO };
        let remaining = order.remaining_qty();
        let qty = if intent.reduce_only {
            round_down_to_step(remaining.min(closable), self.instrument.qty_step).unwrap_or(Decimal::ZERO)
        } else {
            remaining
        };
        if qty <= Decimal::ZERO {
            let reason = if intent.reduce_only { "reduce-only: nothing to reduce" } else { "nothing left to fill" };
            return self.cancel(intent.cloid, reason.into());
        }
        let rate = match liquidity {
            Liquidity::Maker => self.instrument.maker_fee_rate,
            Liquidity::Taker => self.instrument.taker_fee_rate,
        };
        let Some(fee) = qty.checked_mul(price).and_then(|n| n.checked_mul(rate)).map(|f| f.round_dp(8)) else {
            return self.cancel(intent.cloid, "fill notional overflows".into());
        };
        let opening = (qty - closable).max(Decimal::ZERO);
        if opening > Decimal::ZERO {
            let (required, available) = self.margin_needed(order, opening, price, fee);
            if required.is_none_or(|r| r > available) {
                let needs =
                    required.map_or_else(|| "more than can be computed".to_owned(), |r| r.normalize().to_string());
                let reason = format!("insufficient margin at fill: needs {needs}, {} available", available.normalize());
                return self.cancel(intent.cloid, reason);
            }
        }
        let fill = Fill {
            cloid: intent.cloid,
            fill_id: self.fill_id(&intent.cloid),
            symbol: intent.symbol.clone(),
            side: intent.side,
            qty,
            price,
            fee_quote: fee,
            liquidity,
        };
        self.emit(Event::OrderFilled(fill));
        if qty < remaining {
            self.cancel(intent.cloid, "reduce-only: clipped to the position".into());
        }
    }

    /// (required, available) margin for opening `opening` at `price`: the account
    /// with this bar's events applied, the symbol marked at `price`, and without
    /// this order's own reservation.
    fn margin_needed(
        &mut self,
        order: &Order,
        opening: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> (Option<Decimal>, Decimal) {
        let leverage = self.trader().leverage(Some(self.instrument));
        let required = opening
            .checked_mul(price)
            .and_then(|n| n.checked_div(leverage))
            .and_then(|m| m.checked_add(fee))
            .map(|r| r.round_dp(8));
        let mark = Mark { price, time_ms: self.bar.open_time_ms };
        self.scratch.marks.insert(self.bar.symbol.clone(), mark);
        let trader = self.scratch.traders.get_mut(self.name).expect("invariant: inserted in new");
        let own = trader.orders.remove(&order.intent.cloid);
        let available = self.scratch.account(self.name).map_or(Decimal::ZERO, |a| a.available).round_dp(8);
        if let Some(own) = own {
            let trader = self.scratch.traders.get_mut(self.name).expect("invariant: inserted in new");
            trader.orders.insert(own.intent.cloid, own);
        }
        (required, available)
    }

    fn fill_id(&self, cloid: &Cloid) -> String {
        let mut n = 1u64;
        loop {
            let id = format!("sim-{cloid}-{n}");
            if !self.real.fill_applied(cloid, &id) && !self.trader().fill_applied(cloid, &id) {
                return id;
            }
            n += 1;
        }
    }

    fn cancel(&mut self, cloid: Cloid, reason: String) {
        self.done.insert(cloid);
        self.emit(Event::OrderCancelled { cloid, reason });
    }

    /// Records `event` and folds it into the scratch ledger.
    fn emit(&mut self, event: Event) {
        let envelope = Envelope {
            seq: self.seq,
            time_ms: self.bar.open_time_ms,
            trader: self.name.to_owned(),
            event,
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        };
        self.seq += 1;
        self.scratch.apply(&envelope);
        self.events.push(envelope.event);
    }
}

/// `price` on the tick grid, rounded up or down; unchanged without a tick size.
fn to_tick(price: Decimal, tick: Decimal, up: bool) -> Option<Decimal> {
    if tick <= Decimal::ZERO {
        return Some(price);
    }
    // A tick of 10^-k (the usual kind) holds every price written with at most k decimals:
    // such a price is already on the grid, and the division below would give it back (when
    // the count of ticks fits a Decimal at all, as checked here too).
    if tick.mantissa() == 1 && price.scale() <= tick.scale() {
        let ticks = 10i128.checked_pow(tick.scale() - price.scale()).and_then(|f| price.mantissa().checked_mul(f));
        if ticks.is_some_and(|t| t.unsigned_abs() < 1 << 96) {
            return Some(price.normalize());
        }
    }
    let ticks = price.checked_div(tick)?;
    let ticks = if up { ticks.ceil() } else { ticks.floor() };
    Some(ticks.checked_mul(tick)?.normalize())
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    /// The shortcut for prices already on a power-of-ten grid gives what the division gives.
    #[test]
    fn to_tick_on_the_grid_is_the_division() {
        let by_division = |price: Decimal, tick: Decimal, up: bool| -> Option<Decimal> {
            let ticks = price.checked_div(tick)?;
            let ticks = if up { ticks.ceil() } else { ticks.floor() };
            Some(ticks.checked_mul(tick)?.normalize())
        };
        let prices = [dec!(20012.03), dec!(20012.10), dec!(0.00002025), dec!(5), dec!(-3.5), dec!(100.000), dec!(0)];
        for tick in [dec!(0.01), dec!(0.00000001), dec!(1), dec!(0.1), dec!(0.5), dec!(0.25), dec!(10)] {
            for price in prices {
                for up in [false, true] {
                    let got = to_tick(price, tick, up);
                    let want = by_division(price, tick, up);
                    assert_eq!(got.map(|d| (d, d.scale())), want.map(|d| (d, d.scale())), "{price} on {tick}");
                }
            }
        }
        // So many ticks that the division overflows: both refuse.
        assert_eq!(to_tick(Decimal::MAX, dec!(0.00000001), true), None);
    }
}
