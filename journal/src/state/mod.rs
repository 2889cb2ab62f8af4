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

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use self::{
    orders::{Order, OrderStatus, OrderUpdate},
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

/// The folded state of a journal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
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
    /// Orders not yet filled, cancelled or rejected.
    pub orders: BTreeMap<Cloid, Order>,
    /// Every fill id applied, so a repeated one is never applied twice.
    pub fill_ids: BTreeSet<String>,
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
                let order = Order {
                    intent: intent.clone(),
                    status: OrderStatus::Submitted,
                    filled_qty: Decimal::ZERO,
                    exchange_order_id: None,
                    cancel_requested: false,
                    submitted_seq: env.seq,
                    submitted_ms: env.time_ms,
                };
                let trader = self.trader_mut(env);
                trader.stats.orders_submitted += 1;
                if trader.orders.insert(intent.cloid, order).is_some() {
                    self.anomaly(env, format!("order {} submitted twice; the later one replaced it", intent.cloid));
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
            | Event::RiskChecked { .. } => {}
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
                    trader.orders.remove(cloid);
                }
            }
            Err((status, update)) => self.anomaly(env, format!("order {cloid}: {update:?} while {status:?}")),
        }
    }

    fn apply_fill(&mut self, env: &EnvelopeRef<'_>, fill: &Fill) {
        let trader = self.trader_mut(env);
        if trader.fill_ids.contains(&fill.fill_id) {
            self.anomaly(env, format!("duplicate fill id {}: not applied again", fill.fill_id));
            return;
        }
        if fill.qty <= Decimal::ZERO || fill.price <= Decimal::ZERO {
            self.anomaly(env, format!("fill {} with qty {} at {}: not applied", fill.fill_id, fill.qty, fill.price));
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
        trader.fill_ids.insert(fill.fill_id.clone());
        trader.stats.fills += 1;
        trader.stats.volume_quote = fill
            .qty
            .checked_mul(fill.price)
            .and_then(|notional| trader.stats.volume_quote.checked_add(notional.round_dp(8)))
            .unwrap_or(trader.stats.volume_quote);

        let Some(order) = trader.orders.get_mut(&fill.cloid) else {
            // The fill is a fact and was applied; the order it names is gone or never was.
            self.anomaly(env, format!("fill {} for unknown order {}", fill.fill_id, fill.cloid));
            return;
        };
        order.filled_qty = order.filled_qty.saturating_add(fill.qty);
        let complete = order.filled_qty >= order.intent.qty;
        let overfilled = order.filled_qty > order.intent.qty;
        match orders::transition(order.status, OrderUpdate::Filled { complete }) {
            Ok(next) => {
                order.status = next;
                if next.is_terminal() {
                    trader.orders.remove(&fill.cloid);
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
        trader.orders.retain(|_, o| o.intent.symbol != symbol);
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

    fn fold(events: Vec<Event>) -> State {
        let items: Vec<_> = events.into_iter().map(|e| (0, "alice".to_owned(), e)).collect();
        State::fold(&chain(&items))
    }

    #[test]
    fn fills_funding_and_liquidation_move_cash_by_hand() {
        let state = fold(vec![
            start(dec!(1000)),
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
            fill("a", Side::Buy, dec!(1), dec!(100), dec!(0)),
            fill("b", Side::Sell, dec!(1), dec!(110), dec!(0)),
            Event::PositionLiquidated { symbol: "BTCUSDT".into(), price: dec!(90), fee_quote: dec!(0.5) },
        ]);
        let alice = &state.traders["alice"];
        assert_eq!((alice.cash, alice.fees_paid, alice.stats.liquidations), (dec!(1010), dec!(0), 0));
        let last = state.anomalies.last().expect("an anomaly");
        assert_eq!((last.seq, last.message.as_str()), (3, "liquidation of BTCUSDT with no position"));
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
            let mut events = vec![start(dec!(1000))];
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
        let once = fold(vec![start(dec!(1000)), fill("a", Side::Buy, dec!(1), dec!(100), dec!(0.1))]);
        let twice = fold(vec![
            start(dec!(1000)),
            fill("a", Side::Buy, dec!(1), dec!(100), dec!(0.1)),
            fill("a", Side::Buy, dec!(1), dec!(100), dec!(0.1)),
        ]);
        assert_eq!(once.traders, twice.traders);
        assert_eq!(twice.anomalies.last().map(|a| a.message.as_str()), Some("duplicate fill id a: not applied again"));
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

        /// A repeated fill id changes nothing but the bookkeeping (seq, hash, time,
        /// count and a noted anomaly).
        #[test]
        fn prop_duplicate_fills_change_nothing_but_bookkeeping(workload in arb_workload(1..120)) {
            let envelopes = chain(&workload.items());
            let mut state = State::default();
            for env in &envelopes {
                let duplicate = match &env.event {
                    Event::OrderFilled(fill) => state.traders.get(&env.trader).is_some_and(|t| t.fill_ids.contains(&fill.fill_id)),
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
