//! The simulated exchange: how backtests and paper trading fill orders.
//!
//! It is **pure and has no order book of its own**. The resting orders are the
//! folded ledger ([`journal::State`]: each trader's `orders`), so the exchange is
//! a set of functions of `(config, &State, input)` that return the events to
//! journal; the driver journals them and folds them. A paper-trading process
//! that crashes therefore recovers the exchange with the rest of its state, and
//! there is one source of truth. Nothing here reads a clock or a random number,
//! traders are visited in name order and orders in time priority
//! (`submitted_seq`), and all money is `Decimal`: the same inputs give the same
//! events, byte for byte.
//!
//! # The driver's part
//!
//! - After journaling an `OrderSubmitted`, journal [`acknowledge`]'s answer
//!   (`OrderAccepted` with exchange order id `sim-<cloid>`, or an exchange
//!   rejection). After an `OrderCancelRequested`, journal [`cancel`]'s answer
//!   (a request left unanswered, say by a crash, is answered at the next bar,
//!   before anything else).
//! - When bar `t` closes, journal the events of [`on_bar`]`(bar t)` **before** the
//!   `KlineReceived` of bar `t` (they are all stamped with the bar's open time,
//!   which is before its close), then let the strategy decide on bar `t`. Its
//!   orders are journaled at bar `t`'s close time, which is bar `t+1`'s open.
//! - At each funding time journal [`funding`]'s events.
//!
//! # The rules
//!
//! **The strategy reacts between bars, not inside them.** A bar is settled as a
//! whole before the strategy hears of any fill in it, so what it decides in
//! `st_on_fill` takes effect from the next bar on: a cancel it requests in
//! reaction to one fill cannot stop another of its orders from filling later in
//! the same bar (a grid's take-profit and a level in one wide bar, say).
//!
//! **No look-ahead.** `on_bar` only touches orders that rest at the bar's open:
//! acknowledged (status `Open` or `PartiallyFilled`) and journaled at or before
//! `bar.open_time_ms`. An order decided on bar `t` (journaled at its close) is
//! never filled at a bar-`t` price, even if the driver passes bar `t` by mistake;
//! it first meets bar `t+1`. Orders still `Submitted` (not acknowledged) are not
//! at the exchange and are left alone. Only closed bars are simulated.
//!
//! **Prices along the bar.** The sim knows only OHLC, so it assumes a path: the
//! open, then one extreme, then the other, then the close. Under
//! [`Intrabar::AdverseFirst`] (the default) the first extreme is the one that
//! hurts the trader's position (the low for a long, the high for a short); under
//! [`Intrabar::FavorableFirst`] the other one. The position is the one held
//! after the open's fills; a flat trader is treated as long. The path is chosen
//! per trader. Events happen in the order the path reaches their prices, so if
//! one bar reaches both a protective stop (or the liquidation price) and a
//! take-profit limit, the stop/liquidation goes first under `AdverseFirst` and
//! the take-profit first under `FavorableFirst`.
//!
//! **At the open**, first every market order, then everything the open has
//! already gone through (the gaps below); among those, under `AdverseFirst`:
//! liquidation, then stops, then limits; under `FavorableFirst` the reverse.
//! Within one kind and at one price, time priority. At one intrabar price a
//! touch-triggered event (stop, liquidation) comes before a limit, which needs
//! the price to go through; then the same kind order as at the open.
//!
//! **Market orders** fill at the open moved against the taker by
//! `slippage_bps` (buy `open·(1+s)`, sell `open·(1−s)`, `s = bps/10000`), rounded
//! to the tick toward the adverse side (buy up, sell down); taker fee.
//!
//! **Limit orders** fill when the price *trades through* them: a buy when the
//! price goes strictly below its limit (`low < limit`), a sell strictly above
//! (`high > limit`). Touching the limit does not fill (the sim does not know the
//! queue). The fill is at the limit, maker fee. **Gap:** when the bar *opens* at
//! or beyond the limit (buy: `open <= limit`; sell: `open >= limit`) the order
//! would have crossed on arrival: it fills at the open as a taker, with slippage
//! like a market order but never worse than its limit. A post-only order that
//! would take liquidity at the open is cancelled instead. IOC and FOK limit
//! orders get the open only: if not marketable there they are cancelled (time in
//! force means nothing to market and stop orders).
//!
//! **Stop (stop-market) orders** trigger when the price reaches the trigger (a
//! buy stop when the high `>=` trigger, a sell stop when the low `<=` trigger;
//! touching counts) and fill at the worse of the trigger and the open (a gap
//! through the trigger fills at the open), plus slippage, taker fee.
//!
//! **Whole fills.** There is no volume model: an order fills completely, at one
//! price, or not at all (except a reduce-only order clipped to the position).
//!
//! **Reduce-only** orders never increase a position. At fill time the quantity
//! is clipped to what the position (as changed earlier in the same bar) can
//! still close; the clipped remainder is cancelled (`"reduce-only: clipped to the
//! position"`); with nothing to close the order is cancelled (`"reduce-only:
//! nothing to reduce"`).
//!
//! **Margin at fill time.** The journal's checks priced the order at submission;
//! the price may have moved. A fill that opens or adds exposure needs
//! `opening_qty·price/leverage + fee` (rounded to 8 dp, as in the checks), and
//! gets the trader's `available` margin from [`State::account`] with everything
//! earlier in the same bar applied, the bar's symbol valued at the fill price, and
//! the order's own reservation released. If it needs more, the whole order is
//! cancelled (`"insufficient margin at fill: ..."`). Closing quantity needs none.
//!
//! **Liquidation.** Each position on the bar's symbol has the liquidation price
//! of `Position::liquidation_price(leverage, maintenance_margin_rate)` (isolated,
//! leverage from `TraderState::leverage`), put on the tick grid toward the
//! position's loss (long down, short up). When the path reaches it (a long's low
//! `<=` it, a short's high `>=` it; touching counts) the sim journals
//! `PositionLiquidated` at that price, or at the current price if it is already
//! beyond (a gap at the open), with fee `qty·price·liquidation_fee_rate`. The
//! fold closes the position and drops the trader's resting orders on the symbol.
//! A position opened earlier in the same bar is checked from its fill onward.
//!
//! **Grid and rounding.** Fill quantities stay on the qty step and prices on the
//! tick (the checks put orders on the grid; the sim rounds only slippage and
//! liquidation prices, always toward the trader's loss). Fees and funding are
//! rounded to 8 dp, half to even.
//!
//! **Ids and times.** Fill ids are `sim-<cloid>-<n>` (`n` the first unused, so
//! 1 in practice). Everything `on_bar` returns is stamped with the bar's open time
//! — the sim does not know when within the bar a price traded — so all of it
//! sorts before the bar's `KlineReceived` (stamped with its close).
//!
//! **Funding** is `amount = −qty·mark·rate` per open position, rounded to 8 dp:
//! with a positive rate longs pay and shorts receive.
//!
//! Known limit: in paper trading a position opened in the middle of a bar is
//! checked for liquidation against that whole bar, since the sim cannot tell
//! whether the bar's extreme came before or after the fill.

use journal::{
    event::{Cloid, Event, Kline, OrderIntent, OrderKind, RejectReason, Side, TimeInForce, VenueConfig},
    State,
};
use rust_decimal::Decimal;

pub use self::bar::Memo;
use self::bar::TraderSim;

mod bar;
pub mod venue;

pub use venue::SimVenue;

/// The `code` of `RejectReason::Exchange` when a post-only order would cross.
pub const REJECT_POST_ONLY_WOULD_CROSS: i64 = 1;
/// The `code` of `RejectReason::Exchange` for an order the journal does not hold.
pub const REJECT_NOT_JOURNALED: i64 = 2;

/// How the simulated exchange fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Price slippage of taker fills in basis points (1 = 0.01%), against the taker; negative counts as 0.
    pub slippage_bps: Decimal,
    /// Which bar extreme the assumed price path visits first.
    pub intrabar: Intrabar,
    /// Fee on a liquidation, as a fraction of its notional.
    pub liquidation_fee_rate: Decimal,
}

impl Default for SimConfig {
    /// No slippage, no liquidation fee, adverse extreme first.
    fn default() -> SimConfig {
        SimConfig { slippage_bps: Decimal::ZERO, intrabar: Intrabar::AdverseFirst, liquidation_fee_rate: Decimal::ZERO }
    }
}

/// The `kind` of the `VenueConfigured` a driver of the sim journals.
pub const VENUE_KIND: &str = "sim";

impl SimConfig {
    /// The settings as a driver journals them (`VenueConfigured`, at set-up), so that
    /// `replay verify` can re-run the sim.
    #[must_use]
    pub fn journaled(&self) -> VenueConfig {
        VenueConfig {
            kind: VENUE_KIND.to_owned(),
            slippage_bps: self.slippage_bps,
            intrabar: self.intrabar.name().to_owned(),
            liquidation_fee_rate: self.liquidation_fee_rate,
        }
    }

    /// The settings of a journaled `VenueConfigured`.
    ///
    /// # Errors
    /// Not the sim's, or an intrabar order this build does not know; the message says which.
    pub fn from_journaled(venue: &VenueConfig) -> Result<SimConfig, String> {
        if venue.kind != VENUE_KIND {
            return Err(format!("the venue is {:?}, not the simulated exchange", venue.kind));
        }
        let intrabar = Intrabar::parse(&venue.intrabar).ok_or_else(|| {
            format!("unknown intrabar order {:?} (this build knows adverse_first, favorable_first)", venue.intrabar)
        })?;
        Ok(SimConfig { slippage_bps: venue.slippage_bps, intrabar, liquidation_fee_rate: venue.liquidation_fee_rate })
    }
}

/// The order in which a bar's two extremes are assumed to trade.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Intrabar {
    /// The extreme against the trader's position first (conservative).
    #[default]
    AdverseFirst,
    /// The extreme in favor of the trader's position first.
    FavorableFirst,
}

impl Intrabar {
    /// The journaled name: "adverse_first" or "favorable_first".
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Intrabar::AdverseFirst => "adverse_first",
            Intrabar::FavorableFirst => "favorable_first",
        }
    }

    /// The inverse of [`Intrabar::name`].
    #[must_use]
    pub fn parse(name: &str) -> Option<Intrabar> {
        [Intrabar::AdverseFirst, Intrabar::FavorableFirst].into_iter().find(|i| i.name() == name)
    }
}

/// The exchange order id the sim gives an order.
#[must_use]
pub fn exchange_order_id(cloid: &Cloid) -> String {
    format!("sim-{cloid}")
}

/// The exchange's answer to an order intent just journaled: `OrderAccepted`, or
/// `OrderRejected` with `RejectReason::Exchange` when a post-only limit would
/// cross the current mark (buy at or above it, sell at or below it) or the order
/// is not in the folded state (write-ahead: journal it first).
#[must_use]
pub fn acknowledge(state: &State, trader: &str, intent: &OrderIntent) -> Event {
    let reject =
        |code, message| Event::OrderRejected { cloid: intent.cloid, reason: RejectReason::Exchange { code, message } };
    if !state.traders.get(trader).is_some_and(|t| t.orders.contains_key(&intent.cloid)) {
        return reject(REJECT_NOT_JOURNALED, format!("order {} is not in the journal", intent.cloid));
    }
    if intent.kind == OrderKind::Limit && intent.tif == TimeInForce::PostOnly {
        if let (Some(price), Some(mark)) = (intent.price, state.mark(&intent.symbol)) {
            let crosses = match intent.side {
                Side::Buy => price >= mark,
                Side::Sell => price <= mark,
            };
            if crosses {
                let message = format!("post-only {:?} at {price} would cross the mark {mark}", intent.side);
                return reject(REJECT_POST_ONLY_WOULD_CROSS, message);
            }
        }
    }
    Event::OrderAccepted { cloid: intent.cloid, exchange_order_id: exchange_order_id(&intent.cloid) }
}

/// The exchange's answer to an `OrderCancelRequested` just journaled: the
/// `OrderCancelled`, or `None` when the order is no longer open (it filled or was
/// cancelled first; the fold already noted an unknown one).
#[must_use]
pub fn cancel(state: &State, trader: &str, cloid: &Cloid) -> Option<Event> {
    state.traders.get(trader)?.orders.get(cloid)?;
    Some(Event::OrderCancelled { cloid: *cloid, reason: "cancelled on request".into() })
}

/// Funding at a funding time: a `FundingPaid` for every open position in
/// `symbol`, `amount = −qty·mark·rate` rounded to 8 dp (longs pay when the rate is
/// positive), as `(trader, time_ms, event)` in trader order.
#[must_use]
pub fn funding(state: &State, symbol: &str, rate: Decimal, mark: Decimal, time_ms: i64) -> Vec<(String, i64, Event)> {
    let mut out = Vec::new();
    for (name, trader) in &state.traders {
        let Some(position) = trader.positions.get(symbol).filter(|p| !p.qty.is_zero()) else { continue };
        let Some(amount) = position.qty.checked_mul(mark).and_then(|x| x.checked_mul(rate)) else { continue };
        let event = Event::FundingPaid { symbol: symbol.to_owned(), rate, amount_quote: (-amount).round_dp(8) };
        out.push((name.clone(), time_ms, event));
    }
    out
}

/// Everything that happens to resting orders and positions in `bar.symbol`
/// during `bar` (a closed kline), in order, as `(trader, time_ms, event)`;
/// traders in name order, every event stamped `bar.open_time_ms`.
#[must_use]
pub fn on_bar(config: &SimConfig, state: &State, bar: &Kline) -> Vec<(String, i64, Event)> {
    on_bar_with(config, state, bar, &mut Memo::default())
}

/// [`on_bar`] for a driver that calls it bar after bar: `memo` keeps what does not change
/// from bar to bar (the same events, computed once).
#[must_use]
pub fn on_bar_with(config: &SimConfig, state: &State, bar: &Kline, memo: &mut Memo) -> Vec<(String, i64, Event)> {
    simulate(config, state, bar, Some(memo))
}

/// [`on_bar`]; with a memo it skips traders to whom nothing can happen (the same
/// events, without copying their ledgers; the tests compare both ways).
fn simulate(config: &SimConfig, state: &State, bar: &Kline, mut memo: Option<&mut Memo>) -> Vec<(String, i64, Event)> {
    let mut out = Vec::new();
    let Some(instrument) = state.instruments.get(&bar.symbol).filter(|_| bar.closed) else { return out };
    for (name, trader) in &state.traders {
        if memo.as_deref_mut().is_some_and(|memo| bar::quiet(name, trader, instrument, bar, memo)) {
            continue;
        }
        let mut sim = TraderSim::new(config, state, name, trader, instrument, bar);
        sim.run();
        out.extend(sim.events.into_iter().map(|event| (name.clone(), bar.open_time_ms, event)));
    }
    out
}

#[cfg(test)]
mod tests;
