//! The account: a `journal::State` in which the account is one trader, the Bybit-side records
//! of its orders and executions, and the three things that change them — create, cancel and a
//! bar's settlement.
//!
//! The ledger is the backtest's: `InstrumentDefined`, `TraderStarted`, every closed bar as
//! `KlineReceived` at its close, and each order as `OrderSubmitted` + the sim's acknowledgement,
//! stamped with the open of the bar in progress, as if it had arrived at the open. The bar's end
//! folds `sim::on_bar`'s events (stamped with the bar's open) before the bar's `KlineReceived`,
//! exactly the backtest's order, so the fills are the backtest's. The one addition is the volume
//! cap ([`Account::settle`]).

use std::collections::{BTreeMap, BTreeSet};

use journal::{
    check,
    event::{Cloid, Event, Fill, Instrument, Kline, Liquidity, OrderIntent, OrderKind, Side, Ticker, TimeInForce, TraderStart},
    state::positions::closable_qty,
    Envelope, State,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sim::SimConfig;

use crate::{config::Config, error::ApiError, market::Market, views};

/// The account's trader in its ledger.
pub const TRADER: &str = "account";
/// `orderLinkId`'s maximum length.
pub const LINK_ID_LEN_MAX: usize = 36;

/// An order's status as v5 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    New,
    PartiallyFilled,
    Untriggered,
    Filled,
    Cancelled,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "New",
            Status::PartiallyFilled => "PartiallyFilled",
            Status::Untriggered => "Untriggered",
            Status::Filled => "Filled",
            Status::Cancelled => "Cancelled",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Status::New | Status::PartiallyFilled | Status::Untriggered)
    }
}

/// The Bybit side of one order.
#[derive(Clone, Debug)]
pub struct OrderRecord {
    /// 1, 2, ... in creation order: sorts newest first and is the pagination cursor.
    pub number: u64,
    pub cloid: Cloid,
    pub order_id: String,
    pub link_id: String,
    pub side: Side,
    pub kind: OrderKind,
    pub qty: Decimal,
    pub price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    pub tif: TimeInForce,
    pub reduce_only: bool,
    pub status: Status,
    pub cum_qty: Decimal,
    pub cum_value: Decimal,
    pub cum_fee: Decimal,
    pub cancel_type: &'static str,
    pub reject_reason: &'static str,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub last_price_on_created: Decimal,
}

impl OrderRecord {
    pub fn leaves_qty(&self) -> Decimal {
        if self.status.is_open() {
            (self.qty - self.cum_qty).max(Decimal::ZERO)
        } else {
            Decimal::ZERO
        }
    }

    pub fn order_type(&self) -> &'static str {
        match self.kind {
            OrderKind::Limit => "Limit",
            OrderKind::Market | OrderKind::Stop => "Market",
        }
    }
}

/// One execution (a trade, or a liquidation's `BustTrade`).
#[derive(Clone, Debug)]
pub struct Execution {
    /// 1, 2, ...: sorts newest first and is the pagination cursor.
    pub seq: u64,
    pub exec_id: String,
    pub order_id: String,
    pub link_id: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    pub fee_rate: Decimal,
    pub is_maker: bool,
    pub exec_type: &'static str,
    pub exec_ms: i64,
    pub order_type: &'static str,
    pub order_price: Option<Decimal>,
    pub order_qty: Decimal,
    pub leaves_qty: Decimal,
    pub closed_size: Decimal,
    pub mark_price: Decimal,
    pub exec_pnl: Decimal,
}

/// A private stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    Order,
    Execution,
    Position,
    Wallet,
}

impl Topic {
    /// The topic names a client may subscribe to for this stream.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Topic::Order => &["order", "order.linear"],
            Topic::Execution => &["execution", "execution.linear"],
            Topic::Position => &["position", "position.linear"],
            Topic::Wallet => &["wallet"],
        }
    }

    pub fn of(name: &str) -> Option<Topic> {
        [Topic::Order, Topic::Execution, Topic::Position, Topic::Wallet].into_iter().find(|t| t.names().contains(&name))
    }
}

/// A private message to push: its stream and its `data` items.
#[derive(Clone, Debug)]
pub struct Push {
    pub topic: Topic,
    pub data: Vec<Value>,
}

/// The account and its ledger.
#[derive(Debug)]
pub struct Account {
    pub symbol: String,
    pub instrument: Instrument,
    pub state: State,
    seq: u64,
    sim: SimConfig,
    min_notional: Decimal,
    partial_above: Decimal,
    interval_ms: i64,
    orders: BTreeMap<u64, OrderRecord>,
    open: BTreeSet<u64>,
    by_cloid: BTreeMap<Cloid, u64>,
    by_order_id: BTreeMap<String, u64>,
    by_link_id: BTreeMap<String, u64>,
    executions: Vec<Execution>,
    pub position_created_ms: i64,
    pub position_updated_ms: i64,
    pub position_seq: u64,
    /// Ground-truth lines not yet written (the server drains them into `--log`).
    pub log_lines: Vec<Value>,
}

/// What a create or cancel did: the order afterwards and the messages to push.
#[derive(Debug)]
pub struct Outcome {
    pub order: OrderRecord,
    pub pushes: Vec<Push>,
}

impl Account {
    /// The account at the start of `market`: instrument, trader and the history bars folded.
    pub fn new(config: &Config, market: &Market) -> Account {
        let instrument = Instrument {
            symbol: market.symbol.clone(),
            tick_size: config.tick,
            qty_step: config.qty_step,
            min_qty: config.min_qty,
            max_leverage: config.max_leverage,
            maintenance_margin_rate: config.maintenance_margin_rate,
            taker_fee_rate: config.taker_fee,
            maker_fee_rate: config.maker_fee,
        };
        let mut account = Account {
            symbol: market.symbol.clone(),
            instrument: instrument.clone(),
            state: State::default(),
            seq: 0,
            sim: SimConfig::default(),
            min_notional: config.min_notional,
            partial_above: config.partial_above,
            interval_ms: market.interval_ms,
            orders: BTreeMap::new(),
            open: BTreeSet::new(),
            by_cloid: BTreeMap::new(),
            by_order_id: BTreeMap::new(),
            by_link_id: BTreeMap::new(),
            executions: Vec::new(),
            position_created_ms: 0,
            position_updated_ms: 0,
            position_seq: 0,
            log_lines: Vec::new(),
        };
        let start_ms = market.all()[0].open_time_ms;
        account.fold(start_ms, "", Event::InstrumentDefined(instrument));
        let start = TraderStart {
            exchange: "bybit-server".into(),
            account: TRADER.into(),
            currency: "USDT".into(),
            allocation_pct: Decimal::ONE_HUNDRED,
            capital_quote: config.balance,
            leverage: config.leverage,
        };
        account.fold(start_ms, TRADER, Event::TraderStarted(start));
        for bar in market.closed() {
            account.fold(bar.open_time_ms + bar.interval_ms, "", Event::KlineReceived(bar.clone()));
        }
        if market.closed().is_empty() {
            // Before any close the checks need a price: the first open, as the tickers say.
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

    /// The ledger's position quantity (signed) in the symbol.
    pub fn position_qty(&self) -> Decimal {
        self.state.traders.get(TRADER).and_then(|t| t.positions.get(&self.symbol)).map_or(Decimal::ZERO, |p| p.qty)
    }

    /// The account's leverage on the symbol.
    pub fn leverage(&self) -> Decimal {
        self.state.traders.get(TRADER).map_or(Decimal::ONE, |t| t.leverage(Some(&self.instrument)))
    }

    /// `POST /v5/order/create`.
    ///
    /// # Errors
    /// The order is refused, with Bybit's retCode.
    pub fn create(&mut self, body: &Value, market: &Market) -> Result<Outcome, ApiError> {
        let request = CreateRequest::parse(body, &self.symbol)?;
        if !request.link_id.is_empty() && self.by_link_id.contains_key(&request.link_id) {
            return Err(ApiError::new(110072, "OrderLinkedID is duplicate"));
        }
        let intent = self.validate(&request, market)?;
        let stamp_ms = market.order_stamp_ms();
        let event = check::order(&self.state, TRADER, intent);
        let intent = match event {
            Event::OrderSubmitted(intent) => intent,
            Event::OrderRejected { reason, .. } => return Err(self.refusal(&reason)),
            _ => return Err(ApiError::new(10016, "internal error: the checks answered neither way")),
        };
        self.fold(stamp_ms, TRADER, Event::OrderSubmitted(intent.clone()));
        let answer = sim::acknowledge(&self.state, TRADER, &intent);
        let crossed = matches!(answer, Event::OrderRejected { .. });
        self.fold(stamp_ms, TRADER, answer);

        let number = self.orders.len() as u64 + 1;
        let now_ms = market.event_ms();
        let status = match (crossed, intent.kind) {
            (true, _) => Status::Cancelled,
            (false, OrderKind::Stop) => Status::Untriggered,
            (false, _) => Status::New,
        };
        let record = OrderRecord {
            number,
            cloid: intent.cloid,
            order_id: uuid_of(&intent.cloid.0),
            link_id: request.link_id.clone(),
            side: intent.side,
            kind: intent.kind,
            qty: intent.qty,
            price: intent.price,
            trigger_price: intent.trigger_price,
            tif: intent.tif,
            reduce_only: intent.reduce_only,
            status,
            cum_qty: Decimal::ZERO,
            cum_value: Decimal::ZERO,
            cum_fee: Decimal::ZERO,
            cancel_type: if crossed { "CancelByUser" } else { "UNKNOWN" },
            reject_reason: if crossed { "EC_PostOnlyWillTakeLiquidity" } else { "EC_NoError" },
            created_ms: now_ms,
            updated_ms: now_ms,
            last_price_on_created: market.last_price(),
        };
        self.log_lines.push(views::order_log(&record, &self.symbol));
        self.by_cloid.insert(record.cloid, number);
        self.by_order_id.insert(record.order_id.clone(), number);
        if !record.link_id.is_empty() {
            self.by_link_id.insert(record.link_id.clone(), number);
        }
        if record.status.is_open() {
            self.open.insert(number);
        }
        self.orders.insert(number, record.clone());
        self.position_seq += 1;
        let pushes = self.order_pushes(&[number], now_ms);
        Ok(Outcome { order: record, pushes })
    }

    /// Bybit's own checks, before the ledger's: grid, minimums, order types.
    fn validate(&self, request: &CreateRequest, market: &Market) -> Result<OrderIntent, ApiError> {
        let i = &self.instrument;
        let qty = request.qty;
        if qty <= Decimal::ZERO {
            return Err(ApiError::params(format!("params error: qty {qty} must be positive")));
        }
        let on_grid = check::round_down_to_step(qty, i.qty_step).unwrap_or(Decimal::ZERO);
        if on_grid.is_zero() {
            return Err(ApiError::new(110017, "orderQty will be truncated to zero"));
        }
        if on_grid != qty {
            return Err(ApiError::params(format!(
                "params error: qty {} is not a multiple of qtyStep {}",
                qty.normalize(),
                i.qty_step.normalize()
            )));
        }
        if qty < i.min_qty {
            return Err(ApiError::params(format!(
                "The number of contracts exceeds minimum limit allowed: too small, order_qty:{} < min_qty:{}",
                qty.normalize(),
                i.min_qty.normalize()
            )));
        }
        for (name, value) in [("price", request.price), ("triggerPrice", request.trigger_price)] {
            let Some(value) = value else { continue };
            if value <= Decimal::ZERO {
                return Err(ApiError::params(format!("params error: {name} {value} must be positive")));
            }
            if (value % i.tick_size) != Decimal::ZERO {
                return Err(ApiError::params(format!(
                    "params error: {name} {} is not a multiple of tickSize {}",
                    value.normalize(),
                    i.tick_size.normalize()
                )));
            }
        }
        let kind = match (request.order_type, request.trigger_price) {
            (OrderKind::Limit, Some(_)) => {
                return Err(ApiError::params("params error: conditional limit orders are not supported here"))
            }
            (OrderKind::Limit, None) if request.price.is_none() => {
                return Err(ApiError::params("params error: price is required for a Limit order"))
            }
            (OrderKind::Market, Some(_)) => OrderKind::Stop,
            (kind, None) => kind,
            (OrderKind::Stop, _) => OrderKind::Stop,
        };
        let tif = if kind == OrderKind::Limit { request.tif } else { TimeInForce::Ioc };
        let price = if kind == OrderKind::Limit { request.price } else { None };
        let reference = price.or(request.trigger_price).unwrap_or_else(|| market.last_price());
        if !request.reduce_only && qty * reference < self.min_notional {
            return Err(ApiError::new(
                110094,
                format!("Order does not meet minimum order value {}USDT", self.min_notional.normalize()),
            ));
        }
        let number = self.orders.len() as u64 + 1;
        Ok(OrderIntent {
            cloid: Cloid::derive(TRADER, number, 0),
            symbol: self.symbol.clone(),
            side: request.side,
            kind,
            qty,
            price,
            trigger_price: request.trigger_price,
            reduce_only: request.reduce_only,
            tif,
        })
    }

    /// A ledger check's rejection as Bybit says it.
    fn refusal(&self, reason: &journal::event::RejectReason) -> ApiError {
        use journal::event::RejectReason as R;
        match reason {
            R::InsufficientCapital { .. } => ApiError::new(110007, "ab not enough for new order"),
            R::ReduceOnlyWouldIncrease if self.position_qty().is_zero() => {
                ApiError::new(110017, "current position is zero, cannot fix reduce-only order qty")
            }
            R::ReduceOnlyWouldIncrease => {
                ApiError::new(110017, "reduce-only order qty is more than the position can reduce")
            }
            other => ApiError::params(format!("params error: {other}")),
        }
    }

    /// `POST /v5/order/cancel`.
    ///
    /// # Errors
    /// 10001 without an id; 110001 for an order unknown, filled or cancelled.
    pub fn cancel(&mut self, body: &Value, market: &Market) -> Result<Outcome, ApiError> {
        let object = body.as_object().ok_or_else(|| ApiError::params("params error: the body is not a JSON object"))?;
        check_category_symbol(object, &self.symbol)?;
        let order_id = optional_str(object, "orderId")?.unwrap_or_default();
        let link_id = optional_str(object, "orderLinkId")?.unwrap_or_default();
        if order_id.is_empty() && link_id.is_empty() {
            return Err(ApiError::params("params error: orderId or orderLinkId is required"));
        }
        // orderId wins when both are given.
        let number = if order_id.is_empty() { self.by_link_id.get(link_id) } else { self.by_order_id.get(order_id) };
        let not_found = || ApiError::new(110001, "order not exists or too late to cancel");
        let number = *number.ok_or_else(not_found)?;
        if !self.open.contains(&number) {
            return Err(not_found());
        }
        let cloid = self.orders[&number].cloid;
        let stamp_ms = market.order_stamp_ms();
        self.fold(stamp_ms, TRADER, Event::OrderCancelRequested { cloid });
        if let Some(answer) = sim::cancel(&self.state, TRADER, &cloid) {
            self.fold(stamp_ms, TRADER, answer);
        }
        let now_ms = market.event_ms();
        if let Some(record) = self.orders.get_mut(&number) {
            record.status = Status::Cancelled;
            record.cancel_type = "CancelByUser";
            record.updated_ms = now_ms;
        }
        self.open.remove(&number);
        self.position_seq += 1;
        let pushes = self.order_pushes(&[number], now_ms);
        Ok(Outcome { order: self.orders[&number].clone(), pushes })
    }

    /// `POST /v5/position/set-leverage`: the ledger has no event for it, so the trader's start is
    /// edited in place (this ledger is the server's own and is never journaled).
    ///
    /// # Errors
    /// 10001 for a bad value, 110043 when it is unchanged.
    pub fn set_leverage(&mut self, body: &Value) -> Result<Vec<Push>, ApiError> {
        let object = body.as_object().ok_or_else(|| ApiError::params("params error: the body is not a JSON object"))?;
        check_category_symbol(object, &self.symbol)?;
        let buy = required_decimal(object, "buyLeverage")?;
        let sell = required_decimal(object, "sellLeverage")?;
        if buy != sell {
            return Err(ApiError::params("params error: buyLeverage must equal sellLeverage in one-way mode"));
        }
        if buy < Decimal::ONE || buy > self.instrument.max_leverage {
            return Err(ApiError::params(format!(
                "params error: leverage {buy} is out of range [1, {}]",
                self.instrument.max_leverage.normalize()
            )));
        }
        if buy == self.leverage() {
            return Err(ApiError::new(110043, "leverage not modified"));
        }
        if let Some(start) = self.state.traders.get_mut(TRADER).and_then(|t| t.start.as_mut()) {
            start.leverage = buy;
        }
        self.position_seq += 1;
        Ok(vec![Push { topic: Topic::Position, data: vec![views::position(self, true)] }])
    }

    /// Settles the bar that just closed: the sim's events, then the bar itself.
    ///
    /// The volume cap: a fill larger than `partial_above × volume` (rounded down to the step)
    /// fills only that much, and the order rests on with the rest. The sim computed the bar's
    /// later events assuming the whole fill, so they are dropped and the bar is simulated again
    /// with the capped orders left out (they are done for this bar); each pass caps one more
    /// order, so this ends.
    pub fn settle(&mut self, bar: &Kline) -> Vec<Push> {
        let exec_ms = bar.open_time_ms + self.interval_ms - 1;
        let cap = (self.partial_above > Decimal::ZERO)
            .then(|| check::round_down_to_step(bar.volume.saturating_mul(self.partial_above), self.instrument.qty_step))
            .flatten();
        let mut done: BTreeSet<Cloid> = BTreeSet::new();
        let mut changed: Vec<u64> = Vec::new();
        let mut executions: Vec<Value> = Vec::new();
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
                            self.answer(time_ms, Event::OrderFilled(capped), exec_ms, &mut changed, &mut executions);
                        }
                        again = true;
                        break;
                    }
                }
                self.answer(time_ms, event, exec_ms, &mut changed, &mut executions);
            }
            if !again {
                break;
            }
        }
        self.fold(bar.open_time_ms + self.interval_ms, "", Event::KlineReceived(bar.clone()));

        let mut pushes = Vec::new();
        if !changed.is_empty() {
            let data = changed.iter().filter_map(|n| self.orders.get(n)).map(|o| views::order(o, &self.symbol, true));
            pushes.push(Push { topic: Topic::Order, data: data.collect() });
        }
        if !executions.is_empty() {
            pushes.push(Push { topic: Topic::Execution, data: executions });
            self.position_updated_ms = exec_ms;
            self.position_seq += 1;
            pushes.push(Push { topic: Topic::Position, data: vec![views::position(self, true)] });
            pushes.push(Push { topic: Topic::Wallet, data: vec![views::wallet(self)] });
        } else if !changed.is_empty() {
            pushes.push(Push { topic: Topic::Position, data: vec![views::position(self, true)] });
            pushes.push(Push { topic: Topic::Wallet, data: vec![views::wallet(self)] });
        }
        pushes
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
    fn answer(&mut self, time_ms: i64, event: Event, exec_ms: i64, changed: &mut Vec<u64>, executions: &mut Vec<Value>) {
        let before = self.position_qty();
        let mark = self.state.mark(&self.symbol).unwrap_or(Decimal::ZERO);
        let cancel_type = match &event {
            Event::OrderCancelled { reason, .. } if reason.starts_with("reduce-only") => Some("CancelByReduceOnly"),
            Event::OrderCancelled { reason, .. } if reason.starts_with("cancelled on request") => Some("CancelByUser"),
            Event::PositionLiquidated { .. } => Some("CancelByPrepareLiq"),
            _ => None,
        };
        self.fold(time_ms, TRADER, event.clone());
        match &event {
            Event::OrderFilled(fill) => {
                let Some(&number) = self.by_cloid.get(&fill.cloid) else { return };
                let Some(record) = self.orders.get_mut(&number) else { return };
                record.cum_qty += fill.qty;
                record.cum_value += fill.qty * fill.price;
                record.cum_fee += fill.fee_quote;
                record.updated_ms = exec_ms;
                record.status = if record.cum_qty >= record.qty { Status::Filled } else { Status::PartiallyFilled };
                let closed_size = closable_qty(before, fill.side).min(fill.qty);
                let record = record.clone();
                let execution = Execution {
                    seq: self.executions.len() as u64 + 1,
                    exec_id: uuid_of(&digest16(&format!("{}/{}", fill.cloid, fill.fill_id))),
                    order_id: record.order_id.clone(),
                    link_id: record.link_id.clone(),
                    side: fill.side,
                    price: fill.price,
                    qty: fill.qty,
                    fee: fill.fee_quote,
                    fee_rate: match fill.liquidity {
                        Liquidity::Maker => self.instrument.maker_fee_rate,
                        Liquidity::Taker => self.instrument.taker_fee_rate,
                    },
                    is_maker: fill.liquidity == Liquidity::Maker,
                    exec_type: "Trade",
                    exec_ms,
                    order_type: record.order_type(),
                    order_price: record.price,
                    order_qty: record.qty,
                    leaves_qty: record.leaves_qty(),
                    closed_size,
                    mark_price: mark,
                    exec_pnl: Decimal::ZERO,
                };
                self.record_execution(execution, executions);
                changed.push(number);
            }
            Event::PositionLiquidated { price, fee_quote, .. } if !before.is_zero() => {
                let qty = before.abs();
                let number = self.executions.len() as u64 + 1;
                let execution = Execution {
                    seq: number,
                    exec_id: uuid_of(&digest16(&format!("liquidation/{number}"))),
                    order_id: uuid_of(&digest16(&format!("liquidation-order/{number}"))),
                    link_id: String::new(),
                    side: if before > Decimal::ZERO { Side::Sell } else { Side::Buy },
                    price: *price,
                    qty,
                    fee: *fee_quote,
                    fee_rate: Decimal::ZERO,
                    is_maker: false,
                    exec_type: "BustTrade",
                    exec_ms,
                    order_type: "Market",
                    order_price: Some(*price),
                    order_qty: qty,
                    leaves_qty: Decimal::ZERO,
                    closed_size: qty,
                    mark_price: mark,
                    exec_pnl: Decimal::ZERO,
                };
                self.record_execution(execution, executions);
            }
            _ => {}
        }
        // Whatever left the ledger's open orders is closed here too.
        let open_in_ledger: BTreeSet<Cloid> =
            self.state.traders.get(TRADER).map(|t| t.orders.keys().copied().collect()).unwrap_or_default();
        let closed: Vec<u64> =
            self.open.iter().copied().filter(|n| !open_in_ledger.contains(&self.orders[n].cloid)).collect();
        for number in closed {
            self.open.remove(&number);
            if let Some(record) = self.orders.get_mut(&number) {
                if record.cum_qty < record.qty {
                    record.status = Status::Cancelled;
                    record.cancel_type = cancel_type.unwrap_or("UNKNOWN");
                }
                record.updated_ms = exec_ms;
            }
            if changed.last() != Some(&number) {
                changed.push(number);
            }
        }
    }

    fn record_execution(&mut self, execution: Execution, executions: &mut Vec<Value>) {
        self.log_lines.push(views::execution_log(&execution, &self.symbol));
        executions.push(views::execution(&execution, &self.symbol, true));
        if self.position_created_ms == 0 {
            self.position_created_ms = execution.exec_ms;
        }
        self.executions.push(execution);
    }

    /// The order, position and wallet messages after a create or cancel (Bybit pushes a
    /// position message on every create and cancel, changed or not).
    fn order_pushes(&self, numbers: &[u64], _now_ms: i64) -> Vec<Push> {
        let orders = numbers.iter().filter_map(|n| self.orders.get(n)).map(|o| views::order(o, &self.symbol, true));
        vec![
            Push { topic: Topic::Order, data: orders.collect() },
            Push { topic: Topic::Position, data: vec![views::position(self, true)] },
            Push { topic: Topic::Wallet, data: vec![views::wallet(self)] },
        ]
    }

    /// An order by `orderId` or `orderLinkId` (open or closed).
    pub fn find(&self, order_id: &str, link_id: &str) -> Option<&OrderRecord> {
        let number = if order_id.is_empty() { self.by_link_id.get(link_id) } else { self.by_order_id.get(order_id) };
        number.and_then(|n| self.orders.get(n))
    }

    /// Every order, newest first.
    pub fn orders_newest_first(&self) -> impl Iterator<Item = &OrderRecord> {
        self.orders.values().rev()
    }

    /// Every execution, newest first.
    pub fn executions_newest_first(&self) -> impl Iterator<Item = &Execution> {
        self.executions.iter().rev()
    }
}

/// A create request's fields, checked for shape.
#[derive(Debug)]
struct CreateRequest {
    side: Side,
    order_type: OrderKind,
    qty: Decimal,
    price: Option<Decimal>,
    trigger_price: Option<Decimal>,
    tif: TimeInForce,
    link_id: String,
    reduce_only: bool,
}

impl CreateRequest {
    fn parse(body: &Value, symbol: &str) -> Result<CreateRequest, ApiError> {
        let object = body.as_object().ok_or_else(|| ApiError::params("params error: the body is not a JSON object"))?;
        check_category_symbol(object, symbol)?;
        let side = match optional_str(object, "side")? {
            Some("Buy") => Side::Buy,
            Some("Sell") => Side::Sell,
            Some(other) => return Err(ApiError::params(format!("params error: side {other:?} is invalid"))),
            None => return Err(ApiError::params("params error: side is required")),
        };
        let order_type = match optional_str(object, "orderType")? {
            Some("Market") => OrderKind::Market,
            Some("Limit") => OrderKind::Limit,
            Some(other) => return Err(ApiError::params(format!("params error: orderType {other:?} is invalid"))),
            None => return Err(ApiError::params("params error: orderType is required")),
        };
        let qty = required_decimal(object, "qty")?;
        let price = optional_decimal(object, "price")?.filter(|p| !p.is_zero() || order_type == OrderKind::Limit);
        let trigger_price = optional_decimal(object, "triggerPrice")?.filter(|p| !p.is_zero());
        let tif = match optional_str(object, "timeInForce")? {
            None | Some("GTC") => TimeInForce::Gtc,
            Some("IOC") => TimeInForce::Ioc,
            Some("FOK") => TimeInForce::Fok,
            Some("PostOnly") => TimeInForce::PostOnly,
            Some(other) => return Err(ApiError::params(format!("params error: timeInForce {other:?} is invalid"))),
        };
        let link_id = optional_str(object, "orderLinkId")?.unwrap_or_default().to_owned();
        if link_id.len() > LINK_ID_LEN_MAX
            || !link_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ApiError::params(format!(
                "params error: orderLinkId {link_id:?} must be at most 36 characters of [0-9A-Za-z_-]"
            )));
        }
        let reduce_only = match object.get("reduceOnly") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => return Err(ApiError::params(format!("params error: reduceOnly {other} is not a boolean"))),
        };
        match object.get("positionIdx") {
            None | Some(Value::Null) => {}
            Some(v) if v.as_i64() == Some(0) || v.as_str() == Some("0") => {}
            Some(_) => return Err(ApiError::params("position idx not match position mode")),
        }
        Ok(CreateRequest { side, order_type, qty, price, trigger_price, tif, link_id, reduce_only })
    }
}

fn check_category_symbol(object: &Map<String, Value>, symbol: &str) -> Result<(), ApiError> {
    match optional_str(object, "category")? {
        Some("linear") => {}
        Some(other) => return Err(ApiError::params(format!("params error: category {other:?} is not served here (linear only)"))),
        None => return Err(ApiError::params("params error: category is required")),
    }
    match optional_str(object, "symbol")? {
        Some(s) if s == symbol => Ok(()),
        Some(_) => Err(ApiError::params("params error: symbol invalid")),
        None => Err(ApiError::params("params error: symbol is required")),
    }
}

fn optional_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(ApiError::params(format!("params error: {name} {other} is not a string"))),
    }
}

/// A number given as a string (as v5 documents) or, leniently, as a JSON number.
fn optional_decimal(object: &Map<String, Value>, name: &str) -> Result<Option<Decimal>, ApiError> {
    let text = match object.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(ApiError::params(format!("params error: {name} {other} is not a number"))),
    };
    let parsed = text.parse::<Decimal>().or_else(|_| Decimal::from_scientific(&text));
    parsed.map(Some).map_err(|_| ApiError::params(format!("params error: {name} {text:?} is not a number")))
}

fn required_decimal(object: &Map<String, Value>, name: &str) -> Result<Decimal, ApiError> {
    optional_decimal(object, name)?.ok_or_else(|| ApiError::params(format!("params error: {name} is required")))
}

/// The first 16 bytes of SHA-256 of `text`.
pub fn digest16(text: &str) -> [u8; 16] {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// 16 bytes in the 8-4-4-4-12 form Bybit's ids have.
pub fn uuid_of(bytes: &[u8; 16]) -> String {
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}
