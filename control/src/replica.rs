//! The API's read model: the journal's own fold ([`State`]) plus what the fold does not keep
//! because the engine does not need it — equity over time, round-trip trades, fills, the
//! orders that already ended, LLM conversations — all derived record by record from the
//! same events, in the same order, so a replica of a closed journal and one fed by a running
//! engine agree. Everything kept per trader is bounded (a long live run must not grow the
//! API's memory without limit); totals are counted over every event, not only what is kept.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use journal::{
    event::{Cloid, Event, Side},
    state::orders::OrderStatus,
    Envelope, Hash, State,
};
use rust_decimal::Decimal;

/// Equity points kept per trader before the series is thinned to every other point.
pub const EQUITY_POINTS_MAX: usize = 20_000;
/// Round trips, fills and orders kept per trader (the newest).
pub const HISTORY_MAX: usize = 10_000;
/// LLM messages kept per trader (the newest).
pub const MESSAGES_MAX: usize = 500;

/// One point of a trader's equity curve: the exact ledger equity at the marks of the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EquityPoint {
    pub time_ms: i64,
    pub equity: Decimal,
}

/// One round trip: a position opened from flat and closed back to flat (a flip closes one
/// and opens the next) — the backtester's definition, so both count the same trades.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trade {
    /// The trader's round trips numbered from 1.
    pub number: u64,
    pub symbol: String,
    pub long: bool,
    pub entry_time_ms: i64,
    pub exit_time_ms: i64,
    /// The largest absolute quantity held.
    pub qty: Decimal,
    pub entry_price: Decimal,
    pub exit_price: Decimal,
    /// Realized PnL before fees, as the ledger computed it.
    pub pnl: Decimal,
    pub fees: Decimal,
    pub entry_cloid: Option<Cloid>,
    pub exit_cloid: Option<Cloid>,
}

impl Trade {
    pub fn net(&self) -> Decimal {
        self.pnl - self.fees
    }
}

#[derive(Clone, Debug)]
struct OpenTrade {
    long: bool,
    entry_time_ms: i64,
    qty_max: Decimal,
    entry_qty: Decimal,
    entry_cost: Decimal,
    exit_qty: Decimal,
    exit_cost: Decimal,
    pnl: Decimal,
    fees: Decimal,
    entry_cloid: Option<Cloid>,
}

impl OpenTrade {
    fn new(long: bool, time_ms: i64, cloid: Option<Cloid>) -> OpenTrade {
        let zero = Decimal::ZERO;
        OpenTrade {
            long,
            entry_time_ms: time_ms,
            qty_max: zero,
            entry_qty: zero,
            entry_cost: zero,
            exit_qty: zero,
            exit_cost: zero,
            pnl: zero,
            fees: zero,
            entry_cloid: cloid,
        }
    }
}

/// A fill the ledger applied (a duplicate the fold ignored is not one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillRecord {
    pub seq: u64,
    pub time_ms: i64,
    pub cloid: Cloid,
    pub fill_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    pub fee_quote: Decimal,
    pub maker: bool,
}

/// An order as the API shows it: open or ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    pub cloid: Cloid,
    pub symbol: String,
    /// `None` for a rejection journaled without a submission (the checks refused the intent).
    pub side: Option<Side>,
    pub kind: String,
    pub qty: Decimal,
    pub price: Option<Decimal>,
    pub reduce_only: bool,
    pub status: OrderStatus,
    pub filled_qty: Decimal,
    pub submitted_ms: i64,
    pub updated_ms: i64,
    pub reason: Option<String>,
}

/// One message of an LLM conversation, from the journaled prompt and answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub seq: u64,
    pub time_ms: i64,
    /// "user" (the rendered prompt), "assistant" (the answer) or "error" (the call failed).
    pub role: &'static str,
    pub model: String,
    pub content: String,
    pub tokens: Option<u64>,
    pub cost_usd: Option<Decimal>,
    pub latency_ms: Option<u64>,
}

/// Totals over every round trip (not only those kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TradeTotals {
    pub count: u64,
    pub wins: u64,
    pub losses: u64,
    /// Sum of the winners' net PnL (positive) and of the losers' (negative), as nof0 reports them.
    pub win_dollars: Decimal,
    pub lose_dollars: Decimal,
    pub longs: u64,
    pub shorts: u64,
    pub biggest_gain: Decimal,
    pub biggest_loss: Decimal,
    pub holding_ms: i128,
}

/// A value derived from a view, kept while its key (what it was derived from) stays the
/// same: the API answers a trader's trades, fills and trade statistics from it instead of
/// deriving them again for every request. A clone starts empty.
#[derive(Debug)]
pub struct Memo<K, V>(Mutex<Option<(K, Arc<V>)>>);

impl<K: PartialEq, V> Memo<K, V> {
    /// The value for `key`: kept, or built now (and kept).
    pub fn get_or(&self, key: K, build: impl FnOnce() -> V) -> Arc<V> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((kept, value)) = slot.as_ref() {
            if *kept == key {
                return Arc::clone(value);
            }
        }
        let value = Arc::new(build());
        *slot = Some((key, Arc::clone(&value)));
        value
    }
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Memo<K, V> {
        Memo(Mutex::new(None))
    }
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Memo<K, V> {
        Memo::default()
    }
}

/// What a trader's trades answer depends on: (round trips, API id, leverage, limit).
pub type TradesKey = (u64, String, Decimal, usize);

/// The API's memos of one trader (see [`Memo`]).
#[derive(Clone, Debug, Default)]
pub struct ViewMemos {
    /// Trade statistics, by the number of round trips.
    pub stats: Memo<u64, crate::api::TradeStats>,
    /// The newest trades as JSON with their exit times, by (round trips, id, leverage, limit).
    pub trades: Memo<TradesKey, Vec<(i64, String)>>,
    /// The newest fills as a JSON array, by (the newest fill's seq, limit).
    pub fills: Memo<(Option<u64>, usize), String>,
}

/// Running mean and variance (Welford) of the equity curve's returns.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Returns {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Returns {
    fn add(&mut self, r: f64) {
        self.n += 1;
        let delta = r - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (r - self.mean);
    }

    /// The return from `a` to `b`, skipped (as the series' Sharpe skips it) from zero.
    fn add_step(&mut self, a: Decimal, b: Decimal) {
        let (a, b) = (journal::money::to_f64(a), journal::money::to_f64(b));
        if a != 0.0 {
            self.add(b / a - 1.0);
        }
    }
}

/// The deepest fall of equity from its running peak, over every sample (the kept curve is
/// thinned; this is not), in percent of the peak. Exact.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Drawdown {
    pub peak: Decimal,
    pub max_pct: Decimal,
    /// The latest sample's time and equity: final once a later time is sampled (several
    /// symbols closing at one time make one sample, the latest).
    last: Option<(i64, Decimal)>,
}

impl Drawdown {
    fn observe(&mut self, equity: Decimal) {
        if equity > self.peak {
            self.peak = equity;
        } else if self.peak > Decimal::ZERO {
            let pct = (self.peak - equity) / self.peak * Decimal::ONE_HUNDRED;
            if pct > self.max_pct {
                self.max_pct = pct;
            }
        }
    }

    fn sample(&mut self, time_ms: i64, equity: Decimal) {
        if let Some((time, value)) = self.last {
            if time != time_ms {
                self.observe(value);
            }
        }
        self.last = Some((time_ms, equity));
    }

    /// The maximum drawdown so far, the latest sample included.
    pub fn max_pct(&self) -> Decimal {
        let mut now = *self;
        if let Some((_, value)) = self.last {
            now.observe(value);
        }
        now.max_pct
    }
}

/// What the replica adds to the fold for one trader.
#[derive(Clone, Debug, Default)]
pub struct TraderView {
    pub equity: Vec<EquityPoint>,
    /// The returns between the equity points but the last (which may still move): the
    /// Sharpe ratio adds the last one at reading, so it costs O(1), not O(points).
    returns: Returns,
    pub memos: ViewMemos,
    pub drawdown: Drawdown,
    /// Every `stride`-th sample is kept (doubles each time the series is thinned).
    pub stride: u64,
    samples: u64,
    pub trades: VecDeque<Trade>,
    pub totals: TradeTotals,
    open: BTreeMap<String, OpenTrade>,
    pub fills: VecDeque<FillRecord>,
    pub orders: VecDeque<OrderRecord>,
    pub messages: VecDeque<Message>,
    pub llm_invocations: u64,
    pub first_time_ms: Option<i64>,
    /// The kline interval the equity was sampled at (for annualizing the Sharpe ratio).
    pub interval_ms: i64,
}

impl TraderView {
    fn sample(&mut self, time_ms: i64, equity: Decimal) {
        self.drawdown.sample(time_ms, equity);
        if let Some(last) = self.equity.last_mut() {
            // Several symbols closing at one time make one point, the latest.
            if last.time_ms == time_ms {
                last.equity = equity;
                return;
            }
        }
        self.samples += 1;
        if self.stride > 1 && self.samples % self.stride != 0 {
            return;
        }
        // The last point is final now: its return joins the running ones.
        if let [.., a, b] = &self.equity[..] {
            self.returns.add_step(a.equity, b.equity);
        }
        self.equity.push(EquityPoint { time_ms, equity });
        if self.equity.len() > EQUITY_POINTS_MAX {
            // Thin to every other point: memory stays bounded and the curve keeps its shape.
            let mut keep = false;
            self.equity.retain(|_| {
                keep = !keep;
                keep
            });
            self.stride = self.stride.max(1) * 2;
            self.returns = Returns::default();
            let last = self.equity.len().saturating_sub(1);
            for w in self.equity[..last].windows(2) {
                self.returns.add_step(w[0].equity, w[1].equity);
            }
        }
    }

    /// Trades from fills: a position leaving flat opens one, returning to flat (or flipping)
    /// closes it; `realized` is the ledger's own realized PnL change.
    #[allow(clippy::too_many_arguments)]
    fn observe_fill(
        &mut self,
        time_ms: i64,
        symbol: &str,
        cloid: Option<Cloid>,
        signed_qty: Decimal,
        price: Decimal,
        fee: Decimal,
        before: Decimal,
        realized: Decimal,
    ) {
        if signed_qty.is_zero() {
            return;
        }
        let after = before + signed_qty;
        let trade = self
            .open
            .entry(symbol.to_owned())
            .or_insert_with(|| OpenTrade::new(signed_qty > Decimal::ZERO, time_ms, cloid));
        trade.fees += fee;
        trade.pnl += realized;
        let increasing = before.is_zero() || (before > Decimal::ZERO) == (signed_qty > Decimal::ZERO);
        if increasing {
            trade.entry_qty += signed_qty.abs();
            trade.entry_cost += signed_qty.abs() * price;
        } else {
            let closed = signed_qty.abs().min(before.abs());
            trade.exit_qty += closed;
            trade.exit_cost += closed * price;
        }
        trade.qty_max = trade.qty_max.max(if increasing { after.abs() } else { before.abs() });
        let flipped = !before.is_zero() && !after.is_zero() && (before > Decimal::ZERO) != (after > Decimal::ZERO);
        if after.is_zero() || flipped {
            let Some(done) = self.open.remove(symbol) else { return };
            self.close_trade(symbol, done, time_ms, cloid);
            if flipped {
                let mut next = OpenTrade::new(after > Decimal::ZERO, time_ms, cloid);
                next.qty_max = after.abs();
                next.entry_qty = after.abs();
                next.entry_cost = after.abs() * price;
                self.open.insert(symbol.to_owned(), next);
            }
        }
    }

    fn close_trade(&mut self, symbol: &str, t: OpenTrade, exit_time_ms: i64, exit_cloid: Option<Cloid>) {
        let avg = |cost: Decimal, qty: Decimal| if qty.is_zero() { Decimal::ZERO } else { (cost / qty).round_dp(8) };
        self.totals.count += 1;
        let trade = Trade {
            number: self.totals.count,
            symbol: symbol.to_owned(),
            long: t.long,
            entry_time_ms: t.entry_time_ms,
            exit_time_ms,
            qty: t.qty_max,
            entry_price: avg(t.entry_cost, t.entry_qty),
            exit_price: avg(t.exit_cost, t.exit_qty),
            pnl: t.pnl,
            fees: t.fees,
            entry_cloid: t.entry_cloid,
            exit_cloid,
        };
        let net = trade.net();
        let totals = &mut self.totals;
        if net > Decimal::ZERO {
            totals.wins += 1;
            totals.win_dollars += net;
        } else if net < Decimal::ZERO {
            totals.losses += 1;
            totals.lose_dollars += net;
        }
        if trade.long {
            totals.longs += 1;
        } else {
            totals.shorts += 1;
        }
        totals.biggest_gain = totals.biggest_gain.max(net);
        totals.biggest_loss = totals.biggest_loss.min(net);
        totals.holding_ms += i128::from(exit_time_ms.saturating_sub(t.entry_time_ms));
        push_bounded(&mut self.trades, trade, HISTORY_MAX);
    }

    /// When the round trip still open in `symbol` began.
    pub fn open_entry_ms(&self, symbol: &str) -> Option<i64> {
        self.open.get(symbol).map(|t| t.entry_time_ms)
    }

    fn order_mut(&mut self, cloid: &Cloid) -> Option<&mut OrderRecord> {
        // The newest first: an order's updates come soon after its submission.
        self.orders.iter_mut().rev().find(|o| &o.cloid == cloid)
    }

    fn message(&mut self, message: Message) {
        push_bounded(&mut self.messages, message, MESSAGES_MAX);
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, max: usize) {
    queue.push_back(item);
    while queue.len() > max {
        queue.pop_front();
    }
}

/// Where the journal stands, for `/api/journal` and the lag metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalHead {
    /// Records folded (the next seq).
    pub records: u64,
    pub head_hash: Hash,
    /// Every seq up to this one is durable (`None`: nothing yet, or not known).
    pub durable_through: Option<u64>,
    /// The last whole-journal verification: `Ok(state digest)` or the first problem.
    pub verified: Option<Result<Hash, String>>,
}

/// The fold plus the API's views, built record by record.
#[derive(Clone, Debug, Default)]
pub struct Replica {
    pub state: State,
    pub traders: BTreeMap<String, TraderView>,
    pub head: JournalHead,
}

impl Replica {
    pub fn new() -> Replica {
        Replica::default()
    }

    /// A replica of `envelopes` from scratch.
    pub fn fold<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> Replica {
        let mut replica = Replica::new();
        for env in envelopes {
            replica.apply(env);
        }
        replica
    }

    /// Folds one record: the ledger's `apply`, then the views from what it changed.
    pub fn apply(&mut self, env: &Envelope) {
        let trader = env.trader.as_str();
        // What a fill or liquidation finds before the ledger applies it.
        let before = match &env.event {
            Event::OrderFilled(f) => self.position(trader, &f.symbol),
            Event::PositionLiquidated { symbol, .. } => self.position(trader, symbol),
            _ => (Decimal::ZERO, Decimal::ZERO),
        };
        let fills_before = self.state.traders.get(trader).map_or(0, |t| t.stats.fills);
        self.state.apply(env);
        self.head.records = env.seq + 1;
        self.head.head_hash = env.hash;
        self.observe(env, before, fills_before);
    }

    /// The (qty, realized PnL) of a trader's position in `symbol`.
    fn position(&self, trader: &str, symbol: &str) -> (Decimal, Decimal) {
        self.state
            .traders
            .get(trader)
            .and_then(|t| t.positions.get(symbol))
            .map_or((Decimal::ZERO, Decimal::ZERO), |p| (p.qty, p.realized_pnl))
    }

    fn observe(&mut self, env: &Envelope, before: (Decimal, Decimal), fills_before: u64) {
        let trader = env.trader.as_str();
        if self.state.traders.contains_key(trader) && !self.traders.contains_key(trader) {
            self.traders.insert(trader.to_owned(), TraderView { stride: 1, ..TraderView::default() });
        }
        match &env.event {
            Event::KlineReceived(k) if k.closed => self.sample_all(env.time_ms, k.interval_ms),
            Event::TraderStarted(_) => {
                let equity = self.state.equity(trader);
                if let (Some(view), Some(equity)) = (self.traders.get_mut(trader), equity) {
                    view.first_time_ms.get_or_insert(env.time_ms);
                    view.sample(env.time_ms, equity);
                }
            }
            Event::OrderFilled(f) => {
                let applied = self.state.traders.get(trader).map_or(0, |t| t.stats.fills) > fills_before;
                let after = self.position(trader, &f.symbol);
                let Some(view) = self.traders.get_mut(trader) else { return };
                if !applied {
                    return;
                }
                let signed = f.side.sign() * f.qty;
                view.observe_fill(
                    env.time_ms,
                    &f.symbol,
                    Some(f.cloid),
                    signed,
                    f.price,
                    f.fee_quote,
                    before.0,
                    after.1 - before.1,
                );
                push_bounded(
                    &mut view.fills,
                    FillRecord {
                        seq: env.seq,
                        time_ms: env.time_ms,
                        cloid: f.cloid,
                        fill_id: f.fill_id.clone(),
                        symbol: f.symbol.clone(),
                        side: f.side,
                        qty: f.qty,
                        price: f.price,
                        fee_quote: f.fee_quote,
                        maker: matches!(f.liquidity, journal::event::Liquidity::Maker),
                    },
                    HISTORY_MAX,
                );
                self.refresh_order(trader, &f.cloid, env.time_ms, OrderStatus::Filled, None);
            }
            Event::PositionLiquidated { symbol, price, fee_quote } => {
                let after = self.position(trader, symbol);
                if let Some(view) = self.traders.get_mut(trader) {
                    let signed = after.0 - before.0;
                    view.observe_fill(
                        env.time_ms,
                        symbol,
                        None,
                        signed,
                        *price,
                        *fee_quote,
                        before.0,
                        after.1 - before.1,
                    );
                }
            }
            Event::OrderSubmitted(intent) => {
                let Some(view) = self.traders.get_mut(trader) else { return };
                push_bounded(
                    &mut view.orders,
                    OrderRecord {
                        cloid: intent.cloid,
                        symbol: intent.symbol.clone(),
                        side: Some(intent.side),
                        kind: format!("{:?}", intent.kind),
                        qty: intent.qty,
                        price: intent.price.or(intent.trigger_price),
                        reduce_only: intent.reduce_only,
                        status: OrderStatus::Submitted,
                        filled_qty: Decimal::ZERO,
                        submitted_ms: env.time_ms,
                        updated_ms: env.time_ms,
                        reason: None,
                    },
                    HISTORY_MAX,
                );
                self.refresh_order(trader, &intent.cloid, env.time_ms, OrderStatus::Submitted, None);
            }
            Event::OrderAccepted { cloid, .. } => {
                self.refresh_order(trader, cloid, env.time_ms, OrderStatus::Open, None)
            }
            Event::OrderCancelled { cloid, reason } => {
                self.refresh_order(trader, cloid, env.time_ms, OrderStatus::Cancelled, Some(reason.clone()));
            }
            Event::OrderRejected { cloid, reason } => {
                let Some(view) = self.traders.get_mut(trader) else { return };
                if view.order_mut(cloid).is_none() {
                    push_bounded(
                        &mut view.orders,
                        OrderRecord {
                            cloid: *cloid,
                            symbol: String::new(),
                            side: None,
                            kind: String::new(),
                            qty: Decimal::ZERO,
                            price: None,
                            reduce_only: false,
                            status: OrderStatus::Rejected,
                            filled_qty: Decimal::ZERO,
                            submitted_ms: env.time_ms,
                            updated_ms: env.time_ms,
                            reason: None,
                        },
                        HISTORY_MAX,
                    );
                }
                self.refresh_order(trader, cloid, env.time_ms, OrderStatus::Rejected, Some(reason.to_string()));
            }
            Event::LlmPromptRendered { template_id, template_version, model, digest, prompt } => {
                let Some(view) = self.traders.get_mut(trader) else { return };
                let content = prompt.clone().unwrap_or_else(|| {
                    format!("(prompt {template_id} {template_version}, digest {digest}, text not journaled)")
                });
                view.message(Message {
                    seq: env.seq,
                    time_ms: env.time_ms,
                    role: "user",
                    model: model.clone(),
                    content,
                    tokens: None,
                    cost_usd: None,
                    latency_ms: None,
                });
            }
            Event::LlmResponded { model, raw, tokens_prompt, tokens_completion, cost_usd, latency_ms, .. } => {
                let Some(view) = self.traders.get_mut(trader) else { return };
                view.llm_invocations += 1;
                view.message(Message {
                    seq: env.seq,
                    time_ms: env.time_ms,
                    role: "assistant",
                    model: model.clone(),
                    content: raw.clone(),
                    tokens: Some(u64::from(*tokens_prompt) + u64::from(*tokens_completion)),
                    cost_usd: Some(*cost_usd),
                    latency_ms: Some(*latency_ms),
                });
            }
            Event::LlmFailed { model, error, .. } => {
                let Some(view) = self.traders.get_mut(trader) else { return };
                view.llm_invocations += 1;
                view.message(Message {
                    seq: env.seq,
                    time_ms: env.time_ms,
                    role: "error",
                    model: model.clone(),
                    content: error.clone(),
                    tokens: None,
                    cost_usd: None,
                    latency_ms: None,
                });
            }
            _ => {}
        }
    }

    /// Every started trader's equity at a bar close.
    fn sample_all(&mut self, time_ms: i64, interval_ms: i64) {
        for (name, view) in &mut self.traders {
            let Some(t) = self.state.traders.get(name) else { continue };
            if t.start.is_none() {
                continue;
            }
            if interval_ms > 0 {
                view.interval_ms = interval_ms;
            }
            view.first_time_ms.get_or_insert(time_ms);
            view.sample(time_ms, self.state.trader_equity(t));
        }
    }

    /// Copies an order's status from the fold while it is open; `ended` once the fold let it go.
    fn refresh_order(&mut self, trader: &str, cloid: &Cloid, time_ms: i64, ended: OrderStatus, reason: Option<String>) {
        let live = self.state.traders.get(trader).and_then(|t| t.orders.get(cloid)).map(|o| (o.status, o.filled_qty));
        let Some(view) = self.traders.get_mut(trader) else { return };
        let Some(record) = view.order_mut(cloid) else { return };
        record.updated_ms = time_ms;
        match live {
            Some((status, filled)) => {
                record.status = status;
                record.filled_qty = filled;
            }
            None => {
                if !record.status.is_terminal() {
                    record.status = ended;
                }
                if ended == OrderStatus::Filled && record.qty > Decimal::ZERO {
                    record.filled_qty = record.qty;
                }
            }
        }
        if reason.is_some() {
            record.reason = reason;
        }
    }

    /// The annualized Sharpe ratio of a trader's sampled equity: mean over sample standard
    /// deviation of the per-sample simple returns, times √(samples per year). `None` with
    /// fewer than three points or no variation.
    pub fn sharpe(&self, trader: &str) -> Option<f64> {
        let view = self.traders.get(trader)?;
        let mut returns = view.returns;
        if let [.., a, b] = &view.equity[..] {
            returns.add_step(a.equity, b.equity);
        }
        if returns.n < 2 {
            return None;
        }
        let mean = returns.mean;
        let sd = (returns.m2 / (returns.n - 1) as f64).sqrt();
        let step_ms = view.interval_ms.max(1) as f64 * view.stride.max(1) as f64;
        let annual = (365.25 * 86_400_000.0 / step_ms).sqrt();
        let sharpe = mean / sd * annual;
        (sd > 0.0 && sharpe.is_finite()).then_some(sharpe)
    }

    /// The capital a trader started with.
    pub fn capital(&self, trader: &str) -> Decimal {
        self.state.traders.get(trader).and_then(|t| t.start.as_ref()).map_or(Decimal::ZERO, |s| s.capital_quote)
    }
}

#[cfg(test)]
mod tests {
    use journal::{
        event::{Fill, Kline, Liquidity, OrderIntent, OrderKind, RejectReason, TimeInForce, TraderStart},
        testkit::chain,
    };
    use rust_decimal_macros::dec;

    use super::*;

    const T: &str = "gpt";

    fn start() -> Event {
        Event::TraderStarted(TraderStart {
            exchange: "sim".into(),
            account: "main".into(),
            currency: "USDT".into(),
            allocation_pct: dec!(100),
            capital_quote: dec!(1000),
            leverage: dec!(2),
        })
    }

    fn kline(close: Decimal) -> Event {
        Event::KlineReceived(Kline { close, interval_ms: 60_000, closed: true, ..Kline::zeroed("BTCUSDT") })
    }

    fn order(cloid: u8, side: Side, qty: Decimal) -> Event {
        Event::OrderSubmitted(OrderIntent {
            cloid: Cloid([cloid; 16]),
            symbol: "BTCUSDT".into(),
            side,
            kind: OrderKind::Market,
            qty,
            price: None,
            trigger_price: None,
            reduce_only: false,
            tif: TimeInForce::Ioc,
        })
    }

    fn fill(cloid: u8, id: &str, side: Side, qty: Decimal, price: Decimal) -> Event {
        Event::OrderFilled(Fill {
            cloid: Cloid([cloid; 16]),
            fill_id: id.into(),
            symbol: "BTCUSDT".into(),
            side,
            qty,
            price,
            fee_quote: dec!(1),
            liquidity: Liquidity::Taker,
        })
    }

    fn items(events: Vec<Event>) -> Vec<Envelope> {
        let items: Vec<_> = events.into_iter().enumerate().map(|(i, e)| (60_000 * i as i64, T.to_owned(), e)).collect();
        chain(&items)
    }

    #[test]
    fn a_round_trip_its_fills_and_orders() {
        let envs = items(vec![
            start(),
            kline(dec!(100)),
            order(1, Side::Buy, dec!(2)),
            fill(1, "a", Side::Buy, dec!(2), dec!(100)),
            // The same fill again: the ledger ignores it, so must the views.
            fill(1, "a", Side::Buy, dec!(2), dec!(100)),
            kline(dec!(110)),
            order(2, Side::Sell, dec!(2)),
            fill(2, "b", Side::Sell, dec!(2), dec!(110)),
            Event::OrderRejected { cloid: Cloid([3; 16]), reason: RejectReason::NoMarkPrice },
        ]);
        let r = Replica::fold(&envs);
        let v = &r.traders[T];
        assert_eq!(v.fills.len(), 2);
        assert_eq!(v.totals.count, 1);
        let trade = &v.trades[0];
        assert_eq!((trade.long, trade.qty, trade.entry_price, trade.exit_price), (true, dec!(2), dec!(100), dec!(110)));
        assert_eq!(trade.pnl, dec!(20));
        assert_eq!(trade.net(), dec!(18));
        assert_eq!(v.totals.win_dollars, dec!(18));
        let statuses: Vec<_> = v.orders.iter().map(|o| o.status).collect();
        assert_eq!(statuses, [OrderStatus::Filled, OrderStatus::Filled, OrderStatus::Rejected]);
        assert_eq!(v.orders[2].reason.as_deref(), Some("no price seen yet for the symbol"));
        // Equity at the start and at each close: 1000, 1000 − 1 fee, then + 20 unrealized − 1.
        let equity: Vec<_> = v.equity.iter().map(|p| p.equity).collect();
        assert_eq!(equity, [dec!(1000), dec!(1000), dec!(1019)]);
        assert_eq!(r.head.records, envs.len() as u64);
        assert_eq!(r.head.head_hash, envs.last().unwrap().hash);
        assert_eq!(r.state, State::fold(&envs), "the replica's state is the journal's fold");
    }

    #[test]
    fn a_flip_closes_one_trade_and_opens_the_next() {
        let envs = items(vec![
            start(),
            kline(dec!(100)),
            order(1, Side::Buy, dec!(1)),
            fill(1, "a", Side::Buy, dec!(1), dec!(100)),
            order(2, Side::Sell, dec!(3)),
            fill(2, "b", Side::Sell, dec!(3), dec!(90)),
        ]);
        let r = Replica::fold(&envs);
        let v = &r.traders[T];
        assert_eq!(v.totals.count, 1);
        assert_eq!(v.totals.losses, 1);
        assert_eq!(v.trades[0].pnl, dec!(-10));
        assert_eq!(v.open_entry_ms("BTCUSDT"), Some(5 * 60_000), "the short opened at the flip");
    }

    #[test]
    fn conversations_come_from_prompts_and_answers() {
        let digest = Hash([9; 32]);
        let envs = items(vec![
            start(),
            Event::LlmPromptRendered {
                template_id: "default".into(),
                template_version: "v1".into(),
                model: "gpt-5".into(),
                digest,
                prompt: Some("PROMPT TEXT".into()),
            },
            Event::LlmResponded {
                digest,
                model: "gpt-5".into(),
                raw: "{\"signal\":\"hold\"}".into(),
                tokens_prompt: 100,
                tokens_completion: 20,
                cost_usd: dec!(0.0021),
                latency_ms: 900,
            },
            Event::LlmPromptRendered {
                template_id: "default".into(),
                template_version: "v1".into(),
                model: "gpt-5".into(),
                digest,
                prompt: None,
            },
            Event::LlmFailed { digest, model: "gpt-5".into(), error: "timeout".into() },
        ]);
        let v = &Replica::fold(&envs).traders[T];
        let roles: Vec<_> = v.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["user", "assistant", "user", "error"]);
        assert_eq!(v.messages[0].content, "PROMPT TEXT");
        assert_eq!(v.messages[1].tokens, Some(120));
        assert_eq!(v.messages[1].cost_usd, Some(dec!(0.0021)));
        assert!(v.messages[2].content.contains(&digest.to_string()), "a prompt not journaled is named by digest");
        assert_eq!(v.llm_invocations, 2);
    }

    #[test]
    fn history_and_equity_stay_bounded() {
        let mut view = TraderView { stride: 1, ..TraderView::default() };
        for i in 0..(EQUITY_POINTS_MAX as i64 * 3) {
            view.sample(i, Decimal::from(i));
        }
        assert!(view.equity.len() <= EQUITY_POINTS_MAX);
        assert!(view.equity.len() > EQUITY_POINTS_MAX / 4);
        assert!(view.stride >= 2);
        assert!(view.equity.windows(2).all(|w| w[0].time_ms < w[1].time_ms), "still in time order");
        let mut q = VecDeque::new();
        for i in 0..(HISTORY_MAX + 5) {
            push_bounded(&mut q, i, HISTORY_MAX);
        }
        assert_eq!((q.len(), q.front()), (HISTORY_MAX, Some(&5)));
    }

    /// The Sharpe ratio over the equity curve, computed from scratch (what the running
    /// returns must agree with).
    fn naive_sharpe(view: &TraderView) -> Option<f64> {
        let values: Vec<f64> = view.equity.iter().map(|p| journal::money::to_f64(p.equity)).collect();
        let returns: Vec<f64> = values.windows(2).filter(|w| w[0] != 0.0).map(|w| w[1] / w[0] - 1.0).collect();
        if returns.len() < 2 {
            return None;
        }
        let n = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let step_ms = view.interval_ms.max(1) as f64 * view.stride.max(1) as f64;
        let sharpe = mean / sd * (365.25 * 86_400_000.0 / step_ms).sqrt();
        (sd > 0.0 && sharpe.is_finite()).then_some(sharpe)
    }

    #[test]
    fn the_running_sharpe_ratio_is_the_series_own_through_updates_and_thinning() {
        let mut replica = Replica::new();
        let mut view = TraderView { stride: 1, interval_ms: 60_000, ..TraderView::default() };
        // A seeded walk, long enough to be thinned twice, with repeated times (in-place
        // updates of the last point) and a zero equity (its return is skipped).
        let mut x: u64 = 7;
        let mut equity = dec!(10000);
        for i in 0..(2 * EQUITY_POINTS_MAX as i64 + 777) {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let step = Decimal::from((x >> 33) % 201) - dec!(100);
            equity = (equity + step / dec!(10)).max(dec!(1));
            let time = if i % 97 == 0 { i - 1 } else { i } * 60_000;
            view.sample(time, if i == 5 { Decimal::ZERO } else { equity });
            if i % 4_999 == 0 || i < 5 {
                replica.traders.insert(T.to_owned(), view.clone());
                let (running, naive) = (replica.sharpe(T), naive_sharpe(&view));
                match (running, naive) {
                    (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "at {i}: {a} vs {b}"),
                    (a, b) => assert_eq!(a, b, "at {i}"),
                }
            }
        }
        assert!(view.stride >= 4, "the test should have thinned the series twice");
    }

    #[test]
    fn memoized_trade_statistics_follow_each_new_round_trip() {
        let mut events = vec![start(), kline(dec!(100))];
        let mut replica = Replica::fold(&items(events.clone()));
        let stats = |r: &Replica| {
            let v = &r.traders[T];
            *v.memos.stats.get_or(v.totals.count, || crate::api::trade_stats(&v.trades))
        };
        assert_eq!(stats(&replica).net, (0.0, 0.0));
        for (n, exit) in [(1u8, dec!(110)), (3, dec!(90))] {
            events.extend([
                order(n, Side::Buy, dec!(1)),
                fill(n, &format!("in{n}"), Side::Buy, dec!(1), dec!(100)),
                order(n + 1, Side::Sell, dec!(1)),
                fill(n + 1, &format!("out{n}"), Side::Sell, dec!(1), exit),
            ]);
            let before = replica.traders[T].memos.stats.get_or(replica.traders[T].totals.count, || unreachable!());
            for env in &items(events.clone())[replica.state.last_seq.map_or(0, |s| s as usize + 1)..] {
                replica.apply(env);
            }
            let after = stats(&replica);
            assert_ne!(*before, after, "a new round trip must change the statistics");
            assert_eq!(after, crate::api::trade_stats(&replica.traders[T].trades));
        }
    }

    #[test]
    fn the_maximum_drawdown_counts_every_sample_and_only_the_latest_of_a_time() {
        let mut view = TraderView { stride: 1, ..TraderView::default() };
        // 100 → 120 (peak) → 90 (-25 %) → 130 (new peak) → 117 (-10 %).
        for (time, equity) in [(1, dec!(100)), (2, dec!(120)), (3, dec!(90)), (4, dec!(130)), (5, dec!(117))] {
            view.sample(time, equity);
        }
        assert_eq!(view.drawdown.max_pct(), dec!(25));
        // Two symbols closing at one time: a passing low of the first is no drawdown.
        view.sample(6, dec!(10));
        view.sample(6, dec!(129));
        assert_eq!(view.drawdown.max_pct(), dec!(25));
        // A fall deeper than any before, still the latest sample, counts already.
        view.sample(7, dec!(65));
        assert_eq!(view.drawdown.max_pct(), dec!(50));
        assert_eq!(view.drawdown.peak, dec!(130));
    }
}
