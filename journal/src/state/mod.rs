//! The ledger: `State` and its pure, total fold.
//!
//! `apply` takes one journaled envelope and evolves the state. It never fails
//! and never does I/O: facts already in the journal cannot be refused, so
//! real-world oddities (a fill after a cancel, a duplicate fill id, a fill for an
//! unknown order) are recorded in `anomalies` rather than rejected. Validation
//! happens before append, in [`crate::check`].
//!
//! Everything here iterates in a defined order (`BTreeMap`/`BTreeSet`), holds
//! money as `Decimal`, and reads time only from the envelope.

pub mod orders;
pub mod positions;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use self::{
    orders::{ClosedOrder, Order, OrderStatus, OrderUpdate},
    positions::Position,
};
use crate::{
    codec,
    event::{Cloid, Envelope, EnvelopeRef, Event, Fill, Instrument, Json, RejectReason, StrategyLoad, TraderStart},
    hash::{self, Hash},
    money::dec,
};

/// How many anomalies are kept verbatim; beyond it only the count grows.
const ANOMALIES_KEPT_MAX: usize = 1000;
/// How many closed orders a trader remembers with their fill ids (see [`TraderState::closed_orders`]).
pub const CLOSED_ORDERS_KEPT: usize = 128;

/// The layout of [`State`]'s encoding (snapshots). Layout 1 had no mark and one fill-id set per
/// trader; layout 2 keeps fill ids per order.
pub const STATE_LAYOUT: u32 = 2;

/// Whether an encoded [`State`] (a snapshot's body) has this build's layout. bincode's
/// varint writes a u32 below 251 as that one byte, and a layout-1 state began with 0 or 1.
pub fn is_current_layout(encoded: &[u8]) -> bool {
    const _: () = assert!(STATE_LAYOUT < 251, "the layout must stay a one-byte varint");
    encoded.first() == Some(&(STATE_LAYOUT as u8))
}

/// The first field of every encoded [`State`]: [`STATE_LAYOUT`]. A state of another layout
/// (a snapshot written by another build) fails to decode instead of decoding into nonsense:
/// a layout-1 state starts with the byte 0 or 1 (`last_seq`'s option tag), never 2. Such a
/// snapshot is worth nothing to this build; the events rebuild the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateLayout;

impl Serialize for StateLayout {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(STATE_LAYOUT)
    }
}

impl<'de> Deserialize<'de> for StateLayout {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u32::deserialize(deserializer)? {
            STATE_LAYOUT => Ok(StateLayout),
            other => Err(serde::de::Error::custom(format!(
                "a state of layout {other}, not {STATE_LAYOUT}: written by another build, rebuild it from the events"
            ))),
        }
    }
}

/// The folded state of a journal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Always [`STATE_LAYOUT`]; first, so that a snapshot of another layout never decodes.
    pub layout: StateLayout,
    /// The sequence number of the last applied event (None before the first).
    pub last_seq: Option<u64>,
    /// The hash of the last applied record: ties a snapshot to its chain position.
    pub last_hash: Hash,
    /// The latest event time seen.
    pub time_ms: i64,
    pub instruments: BTreeMap<String, Instrument>,
    /// The latest price per symbol: a ticker's mark, else its last, else a kline close.
    pub marks: BTreeMap<String, Mark>,
    /// The latest value of each external data series.
    pub data: BTreeMap<String, DataPoint>,
    pub traders: BTreeMap<String, TraderState>,
    /// Content hashes of strategy sources and prompts already stored in the journal.
    pub contents_seen: BTreeSet<Hash>,
    pub events_applied: u64,
    pub anomalies: Vec<Anomaly>,
    pub anomalies_total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    #[serde(with = "dec")]
    pub price: Decimal,
    pub time_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPoint {
    #[serde(with = "dec")]
    pub value: Decimal,
    pub time_ms: i64,
}

/// Something a valid journal said that should not have happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub seq: u64,
    pub trader: String,
    pub message: String,
}

/// One trader's virtual account, positions, orders and strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraderState {
    pub start: Option<TraderStart>,
    /// Capital + realized PnL − fees + funding: moves only by fills, fees and funding.
    #[serde(with = "dec")]
    pub cash: Decimal,
    #[serde(with = "dec")]
    pub realized_pnl: Decimal,
    #[serde(with = "dec")]
    pub fees_paid: Decimal,
    #[serde(with = "dec")]
    pub funding_net: Decimal,
    pub positions: BTreeMap<String, Position>,
    /// Orders not yet filled, cancelled or rejected, each with the ids of its fills.
    pub orders: BTreeMap<Cloid, Order>,
    /// The last [`CLOSED_ORDERS_KEPT`] orders that left `orders` with quantity unfilled
    /// (cancelled, rejected), oldest first, with the ids of their fills: a late fill for one
    /// (fills and cancels travel on separate streams) is still applied, once. A fill for an order neither open nor here is never applied, so
    /// no fill id is ever applied twice while the ids kept stay bounded.
    pub closed_orders: VecDeque<ClosedOrder>,
    pub strategy: Option<StrategyState>,
    pub stats: TraderStats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraderStats {
    pub orders_submitted: u64,
    pub orders_rejected: u64,
    pub orders_cancelled: u64,
    pub orders_filled: u64,
    pub fills: u64,
    pub liquidations: u64,
    #[serde(with = "dec")]
    pub volume_quote: Decimal,
    pub notifications: u64,
    pub llm_calls: u64,
    pub llm_tokens: u64,
    #[serde(with = "dec")]
    pub llm_cost_usd: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyState {
    pub name: String,
    pub file: String,
    pub code_hash: Hash,
    pub params: Json,
    pub seed: u64,
    pub stopped: Option<String>,
    pub restarts: u32,
    pub errors: u64,
    /// `ctx.state`, as the journal last recorded it.
    pub kv: BTreeMap<String, Json>,
}

/// Cash, realized PnL, fees and funding after one change, computed before any is written.
#[derive(Clone, Copy, Debug)]
struct Ledger {
    cash: Decimal,
    realized_pnl: Decimal,
    fees_paid: Decimal,
    funding_net: Decimal,
}

impl TraderState {
    /// The account after realizing `realized`, paying `fee` and receiving `funding`
    /// (also booked on `position`); `None` on overflow, with nothing written.
    fn ledger_after(
        &self,
        position: &mut Position,
        realized: Decimal,
        fee: Decimal,
        funding: Decimal,
    ) -> Option<Ledger> {
        position.fees_paid = position.fees_paid.checked_add(fee)?;
        position.funding_net = position.funding_net.checked_add(funding)?;
        Some(Ledger {
            cash: self.cash.checked_add(realized)?.checked_sub(fee)?.checked_add(funding)?,
            realized_pnl: self.realized_pnl.checked_add(realized)?,
            fees_paid: self.fees_paid.checked_add(fee)?,
            funding_net: self.funding_net.checked_add(funding)?,
        })
    }

    fn commit_ledger(&mut self, symbol: &str, position: Position, ledger: Ledger) {
        self.positions.insert(symbol.to_owned(), position);
        self.cash = ledger.cash;
        self.realized_pnl = ledger.realized_pnl;
        self.fees_paid = ledger.fees_paid;
        self.funding_net = ledger.funding_net;
    }

    /// The orders still waiting for the exchange's answer, in time priority (`submitted_seq`):
    /// submitted and never acknowledged, or with a cancel request not answered yet.
    pub fn unanswered_orders(&self) -> Vec<&Order> {
        let mut orders: Vec<&Order> =
            self.orders.values().filter(|o| o.status == OrderStatus::Submitted || o.cancel_requested).collect();
        orders.sort_by_key(|o| o.submitted_seq);
        orders
    }

    /// Whether the fill `fill_id` of order `cloid` was applied (the order open or recently closed).
    pub fn fill_applied(&self, cloid: &Cloid, fill_id: &str) -> bool {
        // An id is never both open and closed: a resubmitted id takes its closed fills along.
        match self.orders.get(cloid) {
            Some(order) => order.fill_ids.contains(fill_id),
            None => self.closed_orders.iter().any(|c| c.cloid == *cloid && c.fill_ids.contains(fill_id)),
        }
    }

    /// How many fill ids the trader remembers (bounded: see [`TraderState::closed_orders`]).
    pub fn fill_ids_kept(&self) -> usize {
        self.orders.values().map(|o| o.fill_ids.len()).sum::<usize>()
            + self.closed_orders.iter().map(|c| c.fill_ids.len()).sum::<usize>()
    }

    /// Moves an order that left `orders` to `closed_orders`, forgetting the oldest beyond the
    /// window. A completely filled order is not kept: every fill it can have has been applied,
    /// so any later fill naming it is a repeat, and "unknown order: not applied" is the right
    /// answer without its ids. The window then holds only the orders that can still get a
    /// genuine late fill (cancelled or rejected with quantity left: a fill and the cancel
    /// travel on separate streams), so a busy trader's filled orders cannot push them out.
    fn close(&mut self, order: Order) {
        if order.filled_qty >= order.intent.qty {
            return;
        }
        self.closed_orders.push_back(ClosedOrder { cloid: order.intent.cloid, fill_ids: order.fill_ids });
        while self.closed_orders.len() > CLOSED_ORDERS_KEPT {
            self.closed_orders.pop_front();
        }
    }

    /// The leverage the trader trades `symbol` at: its own, capped by the instrument.
    pub fn leverage(&self, instrument: Option<&Instrument>) -> Decimal {
        let own = self.start.as_ref().map_or(Decimal::ONE, |s| s.leverage);
        let own = if own > Decimal::ZERO { own } else { Decimal::ONE };
        match instrument {
            Some(i) if i.max_leverage > Decimal::ZERO => own.min(i.max_leverage),
            _ => own,
        }
    }
}

impl State {
    /// A state folded over `envelopes` from scratch.
    pub fn fold<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> State {
        let mut state = State::default();
        for env in envelopes {
            state.apply(env);
        }
        state
    }

    /// The blake3 digest of the canonical encoding: equal digests, equal states.
    pub fn digest(&self) -> Hash {
        hash::state(&codec::encode_value(self))
    }

    /// Evolves the state by one journaled event. Total: never fails, never panics
    /// on a journal that passed the chain checks.
    pub fn apply(&mut self, env: &Envelope) {
        self.apply_ref(&env.as_ref());
    }

    /// [`State::apply`] of an envelope by parts.
    pub fn apply_ref(&mut self, env: &EnvelopeRef<'_>) {
        if let Some(last) = self.last_seq {
            if env.seq <= last {
                self.anomaly(env, format!("seq {} after {last}: applied anyway", env.seq));
            }
        }
        self.last_seq = Some(env.seq);
        self.last_hash = env.hash;
        self.time_ms = self.time_ms.max(env.time_ms);
        self.events_applied += 1;
        self.apply_event(env);
    }

    fn apply_event(&mut self, env: &EnvelopeRef<'_>) {
        match env.event {
            Event::KlineReceived(k) => {
                self.set_mark(&k.symbol, k.close, env.time_ms);
            }
            Event::TickerReceived(t) => {
                if let Some(price) = t.mark.or(t.last) {
                    self.set_mark(&t.symbol, price, env.time_ms);
                }
            }
            Event::DataPointReceived { series, value } => {
                self.data.insert(series.clone(), DataPoint { value: *value, time_ms: env.time_ms });
            }
            Event::InstrumentDefined(i) => {
                self.instruments.insert(i.symbol.clone(), i.clone());
            }
            Event::TraderStarted(start) => self.start_trader(env, start),
            Event::StrategyLoaded(load) => self.load_strategy(env, load),
            Event::StrategyStateChanged { changes } => {
                if let Some(strategy) = self.trader_mut(env).strategy.as_mut() {
                    for (key, value) in changes {
                        strategy.kv.insert(key.clone(), value.clone());
                    }
                } else {
                    self.anomaly(env, "state change for a trader with no strategy".into());
                }
            }
            Event::StrategyErred { .. } => {
                if let Some(s) = self.trader_mut(env).strategy.as_mut() {
                    s.errors += 1;
                }
            }
            Event::StrategyRestarted { attempt } => {
                if let Some(s) = self.trader_mut(env).strategy.as_mut() {
                    s.restarts = *attempt;
                }
            }
            Event::StrategyStopped { reason } => {
                if let Some(s) = self.trader_mut(env).strategy.as_mut() {
                    s.stopped = Some(reason.clone());
                }
            }
            Event::NotificationSent { .. } => self.trader_mut(env).stats.notifications += 1,
            Event::LlmPromptRendered { digest, prompt, .. } => {
                if prompt.is_some() {
                    self.contents_seen.insert(*digest);
                }
            }
            Event::LlmResponded { tokens_prompt, tokens_completion, cost_usd, .. } => {
                let stats = &mut self.trader_mut(env).stats;
                stats.llm_calls += 1;
                stats.llm_tokens =
                    stats.llm_tokens.saturating_add(u64::from(*tokens_prompt) + u64::from(*tokens_completion));
                stats.llm_cost_usd = stats.llm_cost_usd.checked_add(*cost_usd).unwrap_or(stats.llm_cost_usd);
            }
            Event::OrderSubmitted(intent) => {
                let mut order = Order {
                    intent: intent.clone(),
                    status: OrderStatus::Submitted,
                    filled_qty: Decimal::ZERO,
                    exchange_order_id: None,
                    cancel_requested: false,
                    submitted_seq: env.seq,
                    submitted_ms: env.time_ms,
                    fill_ids: BTreeSet::new(),
                };
                let trader = self.trader_mut(env);
                trader.stats.orders_submitted += 1;
                // A reused id takes over the fill ids already applied under it.
                if let Some(at) = trader.closed_orders.iter().position(|c| c.cloid == intent.cloid) {
                    order.fill_ids.extend(trader.closed_orders.remove(at).map(|c| c.fill_ids).unwrap_or_default());
                }
                if let Some(replaced) = trader.orders.remove(&intent.cloid) {
                    order.fill_ids.extend(replaced.fill_ids);
                    trader.orders.insert(intent.cloid, order);
                    self.anomaly(env, format!("order {} submitted twice; the later one replaced it", intent.cloid));
                } else {
                    trader.orders.insert(intent.cloid, order);
                }
            }
            Event::OrderRejected { cloid, reason } => {
                self.trader_mut(env).stats.orders_rejected += 1;
                // A duplicate id names the order that already holds it: that order lives on.
                if *reason != RejectReason::DuplicateCloid {
                    self.update_order(env, cloid, OrderUpdate::Rejected, None);
                }
            }
            Event::OrderAccepted { cloid, exchange_order_id } => {
                self.update_order(env, cloid, OrderUpdate::Accepted, Some(exchange_order_id));
            }
            Event::OrderCancelled { cloid, .. } => {
                self.trader_mut(env).stats.orders_cancelled += 1;
                self.update_order(env, cloid, OrderUpdate::Cancelled, None);
            }
            Event::OrderCancelRequested { cloid } => match self.trader_mut(env).orders.get_mut(cloid) {
                Some(order) => order.cancel_requested = true,
                None => self.anomaly(env, format!("cancel requested for unknown order {cloid}")),
            },
            Event::OrderFilled(fill) => self.apply_fill(env, fill),
            Event::FundingPaid { symbol, amount_quote, .. } => {
                let trader = self.trader_mut(env);
                let mut position = trader.positions.get(symbol).cloned().unwrap_or_default();
                match trader.ledger_after(&mut position, Decimal::ZERO, Decimal::ZERO, *amount_quote) {
                    Some(ledger) => trader.commit_ledger(symbol, position, ledger),
                    None => self.anomaly(env, format!("funding {amount_quote} overflows the ledger: not applied")),
                }
            }
            Event::PositionLiquidated { symbol, price, fee_quote } => self.liquidate(env, symbol, *price, *fee_quote),
            Event::ExchangeReconciled(rec) => {
                for mismatch in &rec.mismatches {
                    self.anomaly(env, format!("reconciliation: {mismatch}"));
                }
            }
            // The venue's settings and funding rates move no money: the venue's answers
            // (`FundingPaid`) do.
            Event::ClockTicked
            | Event::VenueConfigured(_)
            | Event::FundingRateReceived { .. }
            | Event::StrategyStopRequested { .. }
            | Event::SeriesRecorded { .. }
            | Event::LlmFailed { .. }
            | Event::DecisionParsed { .. }
            | Event::RiskChecked { .. }
            | Event::LlmTraderLoaded(_)
            | Event::LlmCacheHit { .. }
            | Event::LlmModelSwitched { .. }
            | Event::LlmCycleSkipped { .. }
            | Event::NotificationDelivered { .. }
            | Event::NoncesReserved { .. } => {}
        }
    }

    fn set_mark(&mut self, symbol: &str, price: Decimal, time_ms: i64) {
        match self.marks.get_mut(symbol) {
            Some(mark) => *mark = Mark { price, time_ms },
            None => {
                self.marks.insert(symbol.to_owned(), Mark { price, time_ms });
            }
        }
    }

    fn start_trader(&mut self, env: &EnvelopeRef<'_>, start: &TraderStart) {
        if self.traders.get(env.trader).is_some_and(|t| t.start.is_some()) {
            self.anomaly(env, "trader started twice; the first start stands".into());
            return;
        }
        let trader = self.traders.entry(env.trader.to_owned()).or_default();
        trader.cash = trader.cash.checked_add(start.capital_quote).unwrap_or(trader.cash);
        trader.start = Some(start.clone());
    }

    fn load_strategy(&mut self, env: &EnvelopeRef<'_>, load: &StrategyLoad) {
        if load.source.is_some() {
            self.contents_seen.insert(load.code_hash);
        }
        let trader = self.trader_mut(env);
        // A reload keeps the journaled ctx.state: restarts resume from it.
        let kv = trader.strategy.take().map(|s| s.kv).unwrap_or_default();
        trader.strategy = Some(StrategyState {
            name: load.name.clone(),
            file: load.file.clone(),
            code_hash: load.code_hash,
            params: load.params.clone(),
            seed: load.seed,
            stopped: None,
            restarts: 0,
            errors: 0,
            kv,
        });
    }

    fn update_order(
        &mut self,
        env: &EnvelopeRef<'_>,
        cloid: &Cloid,
        update: OrderUpdate,
        exchange_id: Option<&String>,
    ) {
        let trader = self.trader_mut(env);
        let Some(order) = trader.orders.get_mut(cloid) else {
            // Rejections from the checks never had an open order; that is expected.
            if update != OrderUpdate::Rejected {
                self.anomaly(env, format!("{update:?} for unknown order {cloid}"));
            }
            return;
        };
        match orders::transition(order.status, update) {
            Ok(next) => {
                order.status = next;
                if let Some(id) = exchange_id {
                    order.exchange_order_id = Some(id.clone());
                }
                if next.is_terminal() {
                    if let Some(order) = trader.orders.remove(cloid) {
                        trader.close(order);
                    }
                }
            }
            Err((status, update)) => self.anomaly(env, format!("order {cloid}: {update:?} while {status:?}")),
        }
    }

    fn apply_fill(&mut self, env: &EnvelopeRef<'_>, fill: &Fill) {
        let trader = self.trader_mut(env);
        if trader.fill_applied(&fill.cloid, &fill.fill_id) {
            self.anomaly(env, format!("duplicate fill id {}: not applied again", fill.fill_id));
            return;
        }
        if fill.qty <= Decimal::ZERO || fill.price <= Decimal::ZERO {
            self.anomaly(env, format!("fill {} with qty {} at {}: not applied", fill.fill_id, fill.qty, fill.price));
            return;
        }
        // Only an order open or recently closed remembers its fills, so only such a fill can be
        // told from a repeat: any other is noted and not applied.
        let open = trader.orders.contains_key(&fill.cloid);
        let closed = if open { None } else { trader.closed_orders.iter().position(|c| c.cloid == fill.cloid) };
        if !open && closed.is_none() {
            self.anomaly(env, format!("fill {} for unknown order {}: not applied", fill.fill_id, fill.cloid));
            return;
        }
        let mut position = trader.positions.get(&fill.symbol).cloned().unwrap_or_default();
        let Some(ledger) = position
            .fill(fill.side.sign() * fill.qty, fill.price)
            .and_then(|realized| trader.ledger_after(&mut position, realized, fill.fee_quote, Decimal::ZERO))
        else {
            self.anomaly(env, format!("fill {} overflows the ledger: not applied", fill.fill_id));
            return;
        };
        trader.commit_ledger(&fill.symbol, position, ledger);
        trader.stats.fills += 1;
        trader.stats.volume_quote = fill
            .qty
            .checked_mul(fill.price)
            .and_then(|notional| trader.stats.volume_quote.checked_add(notional.round_dp(8)))
            .unwrap_or(trader.stats.volume_quote);

        if let Some(at) = closed {
            // The fill is a fact and was applied; the order it names had already ended.
            trader.closed_orders[at].fill_ids.insert(fill.fill_id.clone());
            self.anomaly(env, format!("fill {} for closed order {}", fill.fill_id, fill.cloid));
            return;
        }
        let Some(order) = trader.orders.get_mut(&fill.cloid) else { return };
        order.fill_ids.insert(fill.fill_id.clone());
        order.filled_qty = order.filled_qty.saturating_add(fill.qty);
        let complete = order.filled_qty >= order.intent.qty;
        let overfilled = order.filled_qty > order.intent.qty;
        match orders::transition(order.status, OrderUpdate::Filled { complete }) {
            Ok(next) => {
                order.status = next;
                if next.is_terminal() {
                    if let Some(order) = trader.orders.remove(&fill.cloid) {
                        trader.close(order);
                    }
                    trader.stats.orders_filled += 1;
                }
            }
            Err((status, update)) => {
                self.anomaly(env, format!("order {}: {update:?} while {status:?}", fill.cloid));
            }
        }
        if overfilled {
            self.anomaly(env, format!("order {} filled beyond its quantity", fill.cloid));
        }
    }

    fn liquidate(&mut self, env: &EnvelopeRef<'_>, symbol: &str, price: Decimal, fee: Decimal) {
        let trader = self.trader_mut(env);
        // A flat position (left by closing fills or funding) has nothing to liquidate.
        let Some(mut position) = trader.positions.get(symbol).filter(|p| !p.qty.is_zero()).cloned() else {
            self.anomaly(env, format!("liquidation of {symbol} with no position"));
            return;
        };
        let Some(ledger) = position
            .fill(-position.qty, price)
            .and_then(|realized| trader.ledger_after(&mut position, realized, fee, Decimal::ZERO))
        else {
            self.anomaly(env, format!("liquidation of {symbol} overflows the ledger: not applied"));
            return;
        };
        trader.commit_ledger(symbol, position, ledger);
        trader.stats.liquidations += 1;
        // Resting orders on the symbol die with the position.
        let doomed: Vec<Cloid> =
            trader.orders.iter().filter(|(_, o)| o.intent.symbol == symbol).map(|(cloid, _)| *cloid).collect();
        for cloid in doomed {
            if let Some(order) = trader.orders.remove(&cloid) {
                trader.close(order);
            }
        }
    }

    /// The trader the envelope belongs to; an unknown trader is created empty
    /// (and noted) so that its facts still fold.
    fn trader_mut(&mut self, env: &EnvelopeRef<'_>) -> &mut TraderState {
        if !self.traders.contains_key(env.trader) {
            self.anomaly(env, format!("event for trader {:?} before it started", env.trader));
            self.traders.insert(env.trader.to_owned(), TraderState::default());
        }
        self.traders.get_mut(env.trader).expect("invariant: inserted above")
    }

    fn anomaly(&mut self, env: &EnvelopeRef<'_>, message: String) {
        self.anomalies_total += 1;
        if self.anomalies.len() < ANOMALIES_KEPT_MAX {
            self.anomalies.push(Anomaly { seq: env.seq, trader: env.trader.to_owned(), message });
        }
    }

    /// The mark price of `symbol`, if any price was seen.
    pub fn mark(&self, symbol: &str) -> Option<Decimal> {
        self.marks.get(symbol).map(|m| m.price)
    }

    /// A trader's account valued at the current marks.
    pub fn account(&self, trader: &str) -> Option<AccountView> {
        let t = self.traders.get(trader)?;
        let unrealized = self.unrealized_pnl(t);
        let mut margin = Decimal::ZERO;
        for (symbol, position) in &t.positions {
            margin = margin.saturating_add(position.margin(t.leverage(self.instruments.get(symbol))));
        }
        let mut order_margin = Decimal::ZERO;
        for order in t.orders.values().filter(|o| !o.intent.reduce_only) {
            let price = order.intent.price.or(order.intent.trigger_price).or(self.mark(&order.intent.symbol));
            let leverage = t.leverage(self.instruments.get(&order.intent.symbol));
            // As in the checks: only the part that would open exposure holds margin.
            let held = t.positions.get(&order.intent.symbol).map_or(Decimal::ZERO, |p| p.qty);
            let closable = positions::closable_qty(held, order.intent.side);
            let opening = (order.remaining_qty() - closable).max(Decimal::ZERO);
            if let Some(price) = price {
                let notional = opening.saturating_mul(price);
                order_margin =
                    order_margin.saturating_add(notional.checked_div(leverage).unwrap_or(notional).round_dp(8));
            }
        }
        let equity = t.cash.saturating_add(unrealized);
        debug_assert_eq!(Some(equity), self.equity(trader));
        Some(AccountView {
            cash: t.cash,
            equity,
            unrealized_pnl: unrealized,
            margin_used: margin,
            order_margin,
            available: equity.saturating_sub(margin).saturating_sub(order_margin),
            currency: t.start.as_ref().map_or_else(|| "USDT".to_owned(), |s| s.currency.clone()),
        })
    }

    /// [`State::account`]'s `equity` alone (cash plus unrealized PnL at the current marks),
    /// without the margin figures: the backtester samples it at every bar.
    pub fn equity(&self, trader: &str) -> Option<Decimal> {
        Some(self.trader_equity(self.traders.get(trader)?))
    }

    /// [`State::equity`] of a trader already looked up.
    pub fn trader_equity(&self, t: &TraderState) -> Decimal {
        t.cash.saturating_add(self.unrealized_pnl(t))
    }

    fn unrealized_pnl(&self, t: &TraderState) -> Decimal {
        t.positions.iter().fold(Decimal::ZERO, |sum, (symbol, position)| {
            sum.saturating_add(position.unrealized_pnl(self.mark(symbol).unwrap_or(position.entry_price)))
        })
    }
}

/// A trader's account at the current marks (derived, never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    #[serde(with = "dec")]
    pub cash: Decimal,
    #[serde(with = "dec")]
    pub equity: Decimal,
    #[serde(with = "dec")]
    pub unrealized_pnl: Decimal,
    #[serde(with = "dec")]
    pub margin_used: Decimal,
    #[serde(with = "dec")]
    pub order_margin: Decimal,
    #[serde(with = "dec")]
    pub available: Decimal,
    pub currency: String,
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::{
        event::{Kline, Liquidity, Side, Ticker},
        testkit::chain,
    };

    fn start(capital: Decimal) -> Event {
        Event::TraderStarted(TraderStart {
            exchange: "sim".into(),
            account: "main".into(),
            currency: "USDT".into(),
            allocation_pct: dec!(100),
            capital_quote: capital,
            leverage: dec!(5),
        })
    }

    fn fill(id: &str, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> Event {
        Event::OrderFilled(Fill {
            cloid: Cloid([7; 16]),
            fill_id: id.into(),
            symbol: "BTCUSDT".into(),
            side,
            qty,
            price,
            fee_quote: fee,
            liquidity: Liquidity::Taker,
        })
    }

    /// A resting order for the test fills' cloid, large enough never to fill completely.
    fn order() -> Event {
        Event::OrderSubmitted(crate::event::OrderIntent {
            cloid: Cloid([7; 16]),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: crate::event::OrderKind::Limit,
            qty: dec!(1000000),
            price: Some(dec!(1)),
            trigger_price: None,
            reduce_only: false,
            tif: crate::event::TimeInForce::Gtc,
        })
    }

    fn fold(events: Vec<Event>) -> State {
        let items: Vec<_> = events.into_iter().map(|e| (0, "alice".to_owned(), e)).collect();
        State::fold(&chain(&items))
    }

    #[test]
    fn fills_funding_and_liquidation_move_cash_by_hand() {
        let state = fold(vec![
            start(dec!(1000)),
            order(),
            // Long 2 @ 100, fee 0.2.
            fill("a", Side::Buy, dec!(2), dec!(100), dec!(0.2)),
            // Funding paid: −1.5.
            Event::FundingPaid { symbol: "BTCUSDT".into(), rate: dec!(0.0001), amount_quote: dec!(-1.5) },
            // Liquidated at 90: realizes 2 × (90 − 100) = −20, fee 0.5.
            Event::PositionLiquidated { symbol: "BTCUSDT".into(), price: dec!(90), fee_quote: dec!(0.5) },
        ]);
        let alice = &state.traders["alice"];
        assert_eq!(alice.realized_pnl, dec!(-20));
        assert_eq!(alice.fees_paid, dec!(0.7));
        assert_eq!(alice.funding_net, dec!(-1.5));
        // 1000 − 20 − 0.7 − 1.5
        assert_eq!(alice.cash, dec!(977.8));
        assert_eq!(alice.positions["BTCUSDT"].qty, dec!(0));
        assert_eq!(alice.stats.liquidations, 1);
    }

    #[test]
    fn liquidating_a_flat_position_is_a_no_position_anomaly() {
        // The position exists (opened and closed) but is flat: nothing to liquidate.
        let state = fold(vec![
            start(dec!(1000)),
            order(),
            fill("a", Side::Buy, dec!(1), dec!(100), dec!(0)),
            fill("b", Side::Sell, dec!(1), dec!(110), dec!(0)),
            Event::PositionLiquidated { symbol: "BTCUSDT".into(), price: dec!(90), fee_quote: dec!(0.5) },
        ]);
        let alice = &state.traders["alice"];
        assert_eq!((alice.cash, alice.fees_paid, alice.stats.liquidations), (dec!(1010), dec!(0), 0));
        let last = state.anomalies.last().expect("an anomaly");
        assert_eq!((last.seq, last.message.as_str()), (4, "liquidation of BTCUSDT with no position"));
    }

    #[test]
    fn absurd_numbers_become_anomalies_not_panics() {
        struct Case {
            name: &'static str,
            events: Vec<Event>,
        }
        let max = Decimal::MAX;
        let cases = [
            Case {
                name: "a fill whose notional overflows after flipping a short",
                events: vec![
                    fill("a", Side::Sell, dec!(1), dec!(1), dec!(0)),
                    fill("b", Side::Buy, max, dec!(2), dec!(0)),
                ],
            },
            Case {
                name: "a mark at the bottom of the range under a long",
                events: vec![
                    fill("a", Side::Buy, dec!(1), dec!(1000), dec!(0)),
                    Event::TickerReceived(Ticker {
                        symbol: "BTCUSDT".into(),
                        last: None,
                        bid: None,
                        ask: None,
                        mark: Some(Decimal::MIN),
                        index: None,
                        funding_rate: None,
                        next_funding_ms: None,
                    }),
                ],
            },
            Case {
                name: "an order of absurd negative size, then a fill",
                events: vec![
                    Event::OrderSubmitted(crate::event::OrderIntent {
                        cloid: Cloid([7; 16]),
                        symbol: "BTCUSDT".into(),
                        side: Side::Buy,
                        kind: crate::event::OrderKind::Limit,
                        qty: Decimal::MIN,
                        price: Some(dec!(1)),
                        trigger_price: None,
                        reduce_only: false,
                        tif: crate::event::TimeInForce::Gtc,
                    }),
                    fill("a", Side::Buy, dec!(1), dec!(1), dec!(0)),
                ],
            },
            Case {
                name: "funding that overflows the cash",
                events: vec![
                    Event::FundingPaid { symbol: "BTCUSDT".into(), rate: dec!(0), amount_quote: max },
                    Event::FundingPaid { symbol: "BTCUSDT".into(), rate: dec!(0), amount_quote: max },
                ],
            },
            Case {
                name: "a kline close at the top of the range",
                events: vec![
                    fill("a", Side::Sell, dec!(2), dec!(3), dec!(0)),
                    Event::KlineReceived(Kline {
                        symbol: "BTCUSDT".into(),
                        interval_ms: 60_000,
                        open_time_ms: 0,
                        open: max,
                        high: max,
                        low: max,
                        close: max,
                        volume: max,
                        closed: true,
                    }),
                ],
            },
        ];
        for case in cases {
            let mut events = vec![start(dec!(1000)), order()];
            events.extend(case.events);
            let outcome = std::panic::catch_unwind(|| {
                let state = fold(events);
                (state.account("alice"), state.anomalies_total)
            });
            assert!(outcome.is_ok(), "{}: the fold or the account view panicked", case.name);
        }
    }

    #[test]
    fn a_duplicate_fill_id_is_noted_and_not_applied() {
        let once = fold(vec![start(dec!(1000)), order(), fill("a", Side::Buy, dec!(1), dec!(100), dec!(0.1))]);
        let twice = fold(vec![
            start(dec!(1000)),
            order(),
            fill("a", Side::Buy, dec!(1), dec!(100), dec!(0.1)),
            fill("a", Side::Buy, dec!(1), dec!(100), dec!(0.1)),
        ]);
        assert_eq!(once.traders, twice.traders);
        assert_eq!(twice.anomalies.last().map(|a| a.message.as_str()), Some("duplicate fill id a: not applied again"));
    }
}

#[cfg(test)]
mod fill_memory_tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::{
        event::{Liquidity, OrderIntent, OrderKind, Side, TimeInForce},
        testkit::chain,
    };

    fn submit(n: u8, qty: Decimal) -> Event {
        Event::OrderSubmitted(OrderIntent {
            cloid: Cloid([n; 16]),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: OrderKind::Limit,
            qty,
            price: Some(dec!(100)),
            trigger_price: None,
            reduce_only: false,
            tif: TimeInForce::Gtc,
        })
    }

    fn fill(n: u8, id: &str) -> Event {
        Event::OrderFilled(Fill {
            cloid: Cloid([n; 16]),
            fill_id: id.into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            qty: dec!(1),
            price: dec!(100),
            fee_quote: dec!(0),
            liquidity: Liquidity::Maker,
        })
    }

    fn fold(events: Vec<Event>) -> State {
        let mut items = vec![(
            0,
            "alice".to_owned(),
            Event::TraderStarted(TraderStart {
                exchange: "sim".into(),
                account: "main".into(),
                currency: "USDT".into(),
                allocation_pct: dec!(100),
                capital_quote: dec!(1000000),
                leverage: dec!(1),
            }),
        )];
        items.extend(events.into_iter().map(|e| (0, "alice".to_owned(), e)));
        State::fold(&chain(&items))
    }

    fn qty(state: &State) -> Decimal {
        state.traders["alice"].positions.get("BTCUSDT").map_or(Decimal::ZERO, |p| p.qty)
    }

    #[test]
    fn a_fill_for_an_order_never_seen_is_noted_and_not_applied() {
        let state = fold(vec![fill(9, "x")]);
        assert_eq!((qty(&state), state.traders["alice"].stats.fills), (dec!(0), 0));
        let last = state.anomalies.last().expect("noted");
        assert_eq!(last.message, format!("fill x for unknown order {}: not applied", Cloid([9; 16])));
    }

    #[test]
    fn a_late_fill_for_a_recently_closed_order_is_applied_once() {
        let cancel = Event::OrderCancelled { cloid: Cloid([1; 16]), reason: "asked".into() };
        let state = fold(vec![submit(1, dec!(5)), fill(1, "a"), cancel, fill(1, "b"), fill(1, "b"), fill(1, "a")]);
        assert_eq!(qty(&state), dec!(2), "a before the cancel, b after it, each once");
        let alice = &state.traders["alice"];
        assert!(alice.orders.is_empty());
        assert_eq!(alice.closed_orders.len(), 1);
        assert!(alice.fill_applied(&Cloid([1; 16]), "a") && alice.fill_applied(&Cloid([1; 16]), "b"));
        assert_eq!(alice.fill_ids_kept(), 2);
    }

    #[test]
    fn beyond_the_window_a_closed_order_takes_no_fill_and_its_ids_are_forgotten() {
        // Order 0 fills completely, then CLOSED_ORDERS_KEPT other orders close after it.
        let mut events = vec![submit(0, dec!(1)), fill(0, "first")];
        for n in 1..=CLOSED_ORDERS_KEPT {
            let n = u8::try_from(n % 250 + 1).expect("small");
            events.push(submit(n, dec!(1)));
            events.push(Event::OrderCancelled { cloid: Cloid([n; 16]), reason: "asked".into() });
        }
        events.push(fill(0, "first"));
        events.push(fill(0, "late"));
        let state = fold(events);
        assert_eq!(qty(&state), dec!(1), "neither the repeat nor the late fill is applied");
        let alice = &state.traders["alice"];
        assert!(!alice.fill_applied(&Cloid([0; 16]), "first"), "forgotten with the order");
        assert_eq!(alice.closed_orders.len(), CLOSED_ORDERS_KEPT);
        assert_eq!(alice.fill_ids_kept(), 0);
        let notes: Vec<&str> = state.anomalies.iter().rev().take(2).map(|a| a.message.as_str()).collect();
        assert!(notes.iter().all(|m| m.contains("for unknown order") && m.ends_with("not applied")), "{notes:?}");
    }

    #[test]
    fn a_state_of_another_layout_does_not_decode() {
        let state = fold(vec![submit(1, dec!(2)), fill(1, "a")]);
        let bytes = codec::encode_value(&state);
        assert_eq!(bytes[0], 2, "the layout comes first");
        assert_eq!(codec::decode_value::<State>(&bytes).expect("decodes"), state);
        // Layout 1 began with `last_seq`'s option tag: 0 or 1.
        for first in [0u8, 1] {
            let mut old = bytes.clone();
            old[0] = first;
            let err = codec::decode_value::<State>(&old).expect_err("refused");
            assert!(err.to_string().contains(&format!("a state of layout {first}, not 2")), "{err}");
        }
        // The digest is a function of the events: the same fold, the same digest.
        assert_eq!(state.digest(), fold(vec![submit(1, dec!(2)), fill(1, "a")]).digest());
    }
}

#[cfg(test)]
mod property_tests {
    use proptest::{prelude::*, sample::Index};

    use super::*;
    use crate::testkit::{arb_envelope_stream, arb_ledger_stream, arb_workload, chain, Auditor};

    /// The state without what every event changes (position in the log, time, notes).
    fn without_bookkeeping(state: &State) -> State {
        State {
            last_seq: None,
            last_hash: Hash::ZERO,
            time_ms: 0,
            events_applied: 0,
            anomalies: Vec::new(),
            anomalies_total: 0,
            ..state.clone()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Arbitrary streams (absurd decimals near `Decimal::MAX`, unknown traders,
        /// fills for unknown orders, repeated ids): the fold and the account views
        /// never panic, and every event is counted.
        #[test]
        fn prop_apply_never_panics_on_arbitrary_streams(
            stream in prop_oneof![arb_envelope_stream(0..80), arb_ledger_stream(0..80)],
        ) {
            let mut state = State::default();
            for env in &stream {
                state.apply(env);
            }
            prop_assert_eq!(state.events_applied, stream.len() as u64);
            prop_assert_eq!(state.last_seq, stream.last().map(|e| e.seq));
            prop_assert!(state.anomalies.len() as u64 <= state.anomalies_total);
            for trader in state.traders.keys() {
                prop_assert!(state.account(trader).is_some());
            }
            let _ = state.digest();
        }

        /// Fold a prefix, snapshot it (encode and decode as the store does), fold
        /// the rest on top: same digest as folding everything.
        #[test]
        fn prop_fold_of_prefix_then_rest_equals_fold_of_all(stream in arb_envelope_stream(0..60), cut in any::<Index>()) {
            let cut = cut.index(stream.len() + 1);
            let prefix = State::fold(&stream[..cut]);
            let mut resumed: State = codec::decode_value(&codec::encode_value(&prefix)).expect("a snapshot decodes");
            for env in &stream[cut..] {
                resumed.apply(env);
            }
            prop_assert_eq!(resumed.digest(), State::fold(&stream).digest());
        }

        /// Over plausible sessions, after every event: positions equal the sum of
        /// applied fills, cash = capital + realized − fees + funding, fees and
        /// funding match the events, each fill id is applied once (see [`Auditor`]).
        #[test]
        fn prop_ledger_invariants_hold_over_workloads(workload in arb_workload(1..120)) {
            let envelopes = chain(&workload.items());
            let mut state = State::default();
            let mut auditor = Auditor::default();
            for env in &envelopes {
                state.apply(env);
                auditor.observe(env);
                if let Err(problem) = auditor.check(&state) {
                    return Err(TestCaseError::fail(format!("after seq {} ({:?}): {problem}", env.seq, env.event)));
                }
            }
            let overflow = state.anomalies.iter().find(|a| a.message.contains("overflow"));
            prop_assert!(overflow.is_none(), "sane workloads never overflow: {:?}", overflow);
        }

        /// Orders of 1 to 4 units, fills of one unit for open orders, cancels, and copies of
        /// earlier fills replayed at random later points, often long after their order closed
        /// and left the window: every fill id moves cash and positions at most once, and the
        /// fill ids kept never exceed 4 per open order plus 4 per remembered closed order.
        #[test]
        fn prop_each_fill_id_moves_the_ledger_at_most_once_and_memory_stays_bounded(
            ops in proptest::collection::vec((0u8..10, any::<Index>(), 1u32..=4), 100..700),
        ) {
            use rust_decimal_macros::dec;
            use crate::event::{Liquidity, OrderIntent, OrderKind, Side, TimeInForce};
            const FILLS_PER_ORDER_MAX: usize = 4;
            let start = Event::TraderStarted(TraderStart {
                exchange: "sim".into(),
                account: "main".into(),
                currency: "USDT".into(),
                allocation_pct: dec!(100),
                capital_quote: dec!(100000000),
                leverage: dec!(1),
            });
            let mut state = State::default();
            let mut seq = 0u64;
            let mut apply = |state: &mut State, event: Event| {
                let env = Envelope {
                    seq, time_ms: 0, trader: "t".into(), event, prev_hash: Hash::ZERO, hash: Hash::ZERO,
                };
                seq += 1;
                state.apply(&env);
            };
            apply(&mut state, start);
            let (mut orders, mut fills_made) = (0u64, 0u64);
            let mut fills: Vec<Fill> = Vec::new();
            let mut applied: BTreeSet<String> = BTreeSet::new();
            let mut repeats = 0u32;
            for (op, pick, units) in ops {
                let open: Vec<Cloid> = state.traders["t"].orders.keys().copied().collect();
                let event = match op {
                    0..=2 => {
                        orders += 1;
                        Event::OrderSubmitted(OrderIntent {
                            cloid: Cloid::derive("t", orders, 0),
                            symbol: "BTCUSDT".into(),
                            side: Side::Buy,
                            kind: OrderKind::Limit,
                            qty: Decimal::from(units),
                            price: Some(dec!(100)),
                            trigger_price: None,
                            reduce_only: false,
                            tif: TimeInForce::Gtc,
                        })
                    }
                    3..=5 if !open.is_empty() => {
                        fills_made += 1;
                        let fill = Fill {
                            cloid: open[pick.index(open.len())],
                            fill_id: format!("f{fills_made}"),
                            symbol: "BTCUSDT".into(),
                            side: Side::Buy,
                            qty: Decimal::ONE,
                            price: dec!(100) + Decimal::from(fills_made % 7),
                            fee_quote: dec!(0.01),
                            liquidity: Liquidity::Maker,
                        };
                        fills.push(fill.clone());
                        Event::OrderFilled(fill)
                    }
                    6 if !open.is_empty() => {
                        Event::OrderCancelled { cloid: open[pick.index(open.len())], reason: "asked".into() }
                    }
                    7..=9 if !fills.is_empty() => {
                        repeats += 1;
                        Event::OrderFilled(fills[pick.index(fills.len())].clone())
                    }
                    _ => Event::ClockTicked,
                };
                let before = state.traders["t"].clone();
                let fill_id = match &event { Event::OrderFilled(f) => Some(f.fill_id.clone()), _ => None };
                apply(&mut state, event);
                let after = &state.traders["t"];
                let moved = after.cash != before.cash || after.positions != before.positions;
                if let Some(id) = fill_id {
                    prop_assert_eq!(moved, after.stats.fills == before.stats.fills + 1, "fill {} counted iff applied", &id);
                    if moved {
                        prop_assert!(applied.insert(id.clone()), "fill {} applied a second time", id);
                    }
                } else {
                    prop_assert!(!moved);
                }
                let bound = FILLS_PER_ORDER_MAX * (after.orders.len() + after.closed_orders.len());
                prop_assert!(after.closed_orders.len() <= CLOSED_ORDERS_KEPT);
                prop_assert!(after.fill_ids_kept() <= bound, "{} fill ids kept, bound {}", after.fill_ids_kept(), bound);
            }
            prop_assert_eq!(state.traders["t"].stats.fills, applied.len() as u64);
            prop_assert!(repeats > 0, "not vacuous: repeats happened");
        }

        /// A repeated fill id changes nothing but the bookkeeping (seq, hash, time,
        /// count and a noted anomaly).
        #[test]
        fn prop_duplicate_fills_change_nothing_but_bookkeeping(workload in arb_workload(1..120)) {
            let envelopes = chain(&workload.items());
            let mut state = State::default();
            for env in &envelopes {
                let duplicate = match &env.event {
                    Event::OrderFilled(fill) => state.traders.get(&env.trader).is_some_and(|t| t.fill_applied(&fill.cloid, &fill.fill_id)),
                    _ => false,
                };
                let before = without_bookkeeping(&state);
                let anomalies_before = state.anomalies_total;
                state.apply(env);
                if duplicate {
                    prop_assert_eq!(without_bookkeeping(&state).digest(), before.digest(), "seq {} changed the ledger", env.seq);
                    prop_assert_eq!(state.anomalies_total, anomalies_before + 1, "seq {}: the duplicate is noted", env.seq);
                }
            }
        }
    }
}
