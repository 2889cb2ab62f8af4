//! `ctx.api`: the strategy's view of its account, answered from the folded
//! ledger, and its order entry, which goes through the pre-append checks and
//! leaves as journaled events. Nothing here touches the network.

use journal::{
    check,
    event::{Cloid, Event, OrderIntent, OrderKind, RejectReason, Side, TimeInForce},
    money, State,
};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value as Json};

use crate::{
    market::{num, parse_interval, tick_json, Market},
    sandbox::{Field, Host, Rows},
    sink::{Sink, SinkError},
};

/// The most orders one call may place: a runaway loop of `placeOrder` stops here.
pub const ORDERS_PER_CALL_MAX: u32 = 100;
/// The most klines `getKlines` returns.
pub const KLINES_LIMIT_MAX: usize = crate::market::KLINES_KEPT_MAX;

/// The `Host` of one sandbox call.
pub struct ApiHost<'a> {
    pub sink: &'a mut dyn Sink,
    pub market: &'a Market,
    pub trader: &'a str,
    pub now_ms: i64,
    /// The seq of the input being handled: client order ids derive from it.
    pub cycle_seq: u64,
    pub legs: u32,
    /// A sink failure stops the run; it is kept here because JS only sees a string.
    pub failure: Option<SinkError>,
}

impl Host for ApiHost<'_> {
    fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn timed_out(&mut self) -> bool {
        self.failure.is_none() && self.sink.call_timed_out(self.trader)
    }

    fn api_rows(&mut self, method: &str, _args: &[Json]) -> Option<Result<Rows, String>> {
        if self.failure.is_some() {
            return Some(Err("the engine stopped this run".into()));
        }
        let state = self.sink.state();
        match method {
            "getPositions" => Some(Ok(positions(state, self.trader))),
            "getBalance" => Some(Ok(balance(state, self.trader))),
            _ => None,
        }
    }

    fn api(&mut self, method: &str, args: Vec<Json>) -> Result<Json, String> {
        if self.failure.is_some() {
            return Err("the engine stopped this run".into());
        }
        match method {
            "placeOrder" => return self.place_order(args.into_iter().next().unwrap_or(Json::Null)),
            "cancelOrder" => return self.cancel_order(args.first()),
            _ => {}
        }
        let state = self.sink.state();
        match method {
            "getPositions" => Ok(positions(state, self.trader).to_json()),
            "getOpenOrders" => Ok(open_orders(state, self.trader)),
            "getBalance" => Ok(balance(state, self.trader).to_json()),
            "getKlines" => klines(self.market, &args),
            "getTicker" => ticker(state, args.first()),
            other => Err(format!("ctx.api.{other} is not a known method")),
        }
    }
}

impl ApiHost<'_> {
    fn place_order(&mut self, spec: Json) -> Result<Json, String> {
        if self.legs >= ORDERS_PER_CALL_MAX {
            return Err(format!("more than {ORDERS_PER_CALL_MAX} orders in one call"));
        }
        let cloid = Cloid::derive(self.trader, self.cycle_seq, self.legs);
        self.legs += 1;
        let event = match parse_order(cloid, &spec) {
            Ok(intent) => check::order(self.sink.state(), self.trader, intent),
            Err(reason) => Event::OrderRejected { cloid, reason },
        };
        let answer = match &event {
            Event::OrderSubmitted(_) => json!({ "cloid": cloid.to_string(), "status": "submitted" }),
            Event::OrderRejected { reason, .. } => {
                json!({ "cloid": cloid.to_string(), "status": "rejected", "reason": reason.to_string() })
            }
            _ => unreachable!("check::order yields a submission or a rejection"),
        };
        self.emit(event)?;
        Ok(answer)
    }

    fn cancel_order(&mut self, id: Option<&Json>) -> Result<Json, String> {
        let id = id.and_then(Json::as_str).ok_or("cancelOrder needs the order's cloid or exchange id")?;
        let trader = self.sink.state().traders.get(self.trader);
        let found = trader.and_then(|t| {
            let by_cloid = Cloid::parse(id).filter(|c| t.orders.contains_key(c));
            by_cloid.or_else(|| {
                t.orders.values().find(|o| o.exchange_order_id.as_deref() == Some(id)).map(|o| o.intent.cloid)
            })
        });
        let Some(cloid) = found else {
            return Ok(json!({ "status": "rejected", "reason": RejectReason::UnknownOrder.to_string() }));
        };
        self.emit(Event::OrderCancelRequested { cloid })?;
        Ok(json!({ "cloid": cloid.to_string(), "status": "cancel_requested" }))
    }

    fn emit(&mut self, event: Event) -> Result<(), String> {
        match self.sink.emit(self.now_ms, self.trader, &event) {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = e.to_string();
                self.failure = Some(e);
                Err(message)
            }
        }
    }
}

/// Reads `placeOrder`'s argument. A malformed order is a journaled rejection,
/// not an exception, so the audit trail shows what the strategy asked for.
pub fn parse_order(cloid: Cloid, spec: &Json) -> Result<OrderIntent, RejectReason> {
    let bad = |m: String| RejectReason::Other(m);
    let obj = spec.as_object().ok_or_else(|| bad("placeOrder needs an object".into()))?;
    let symbol = obj.get("symbol").and_then(Json::as_str).ok_or_else(|| bad("order has no symbol".into()))?;
    let side = match obj.get("side").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("buy" | "long") => Side::Buy,
        Some("sell" | "short") => Side::Sell,
        other => return Err(bad(format!("side must be buy or sell, not {other:?}"))),
    };
    let kind = match obj.get("type").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
        None | Some("market") => OrderKind::Market,
        Some("limit") => OrderKind::Limit,
        Some("stop" | "stop_market" | "stopmarket") => OrderKind::Stop,
        Some(other) => return Err(bad(format!("type must be market, limit or stop, not {other:?}"))),
    };
    let qty =
        decimal(obj.get("qty")).map_err(RejectReason::InvalidQty)?.ok_or(RejectReason::InvalidQty("missing".into()))?;
    let price = decimal(obj.get("price")).map_err(RejectReason::InvalidPrice)?;
    let trigger_price = decimal(obj.get("triggerPrice")).map_err(RejectReason::InvalidPrice)?;
    let reduce_only = match obj.get("reduceOnly") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => return Err(bad(format!("reduceOnly must be true or false, not {other}"))),
    };
    let tif = match obj.get("tif").and_then(Json::as_str).map(str::to_ascii_lowercase).as_deref() {
        None | Some("gtc") => TimeInForce::Gtc,
        Some("ioc") => TimeInForce::Ioc,
        Some("fok") => TimeInForce::Fok,
        Some("postonly" | "post_only") => TimeInForce::PostOnly,
        Some(other) => return Err(bad(format!("tif must be gtc, ioc, fok or postOnly, not {other:?}"))),
    };
    Ok(OrderIntent { cloid, symbol: symbol.to_owned(), side, kind, qty, price, trigger_price, reduce_only, tif })
}

/// A quantity or price from JS: a decimal string is taken exactly; a number by
/// its shortest decimal form (0.1 is 0.1, not 0.1000000000000000055).
fn decimal(value: Option<&Json>) -> Result<Option<Decimal>, String> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => money::parse(s).map(Some).map_err(|_| s.clone()),
        Some(Json::Number(n)) => money::parse(&n.to_string()).map(Some).map_err(|_| n.to_string()),
        Some(other) => Err(other.to_string()),
    }
}

/// A position's keys, in the order JS sees them (sorted, as in every JSON answer).
const POSITION_KEYS: &[&str] = &[
    "entryPrice",
    "leverage",
    "liquidationPrice",
    "markPrice",
    "qty",
    "realizedPnl",
    "side",
    "symbol",
    "unrealizedPnl",
];

fn positions(state: &State, trader: &str) -> Rows {
    let rows = state.traders.get(trader).map_or_else(Vec::new, |t| {
        t.positions
            .iter()
            .filter(|(_, p)| !p.qty.is_zero())
            .map(|(symbol, p)| {
                let instrument = state.instruments.get(symbol);
                let leverage = t.leverage(instrument);
                let mmr = instrument.map_or(Decimal::ZERO, |i| i.maintenance_margin_rate);
                let mark = state.mark(symbol).unwrap_or(p.entry_price);
                vec![
                    Field::Num(num(p.entry_price)),
                    Field::Num(num(leverage)),
                    p.liquidation_price(leverage, mmr).map_or(Field::Null, |x| Field::Num(num(x))),
                    Field::Num(num(mark)),
                    Field::Num(num(p.qty.abs())),
                    Field::Num(num(p.realized_pnl)),
                    Field::Str(if p.qty > Decimal::ZERO { "long" } else { "short" }.into()),
                    Field::Str(symbol.clone()),
                    Field::Num(num(p.unrealized_pnl(mark))),
                ]
            })
            .collect()
    });
    Rows { keys: POSITION_KEYS, rows, single: false }
}

fn open_orders(state: &State, trader: &str) -> Json {
    let Some(t) = state.traders.get(trader) else { return json!([]) };
    let mut orders: Vec<_> = t.orders.values().collect();
    orders.sort_by_key(|o| o.submitted_seq);
    Json::Array(
        orders
            .into_iter()
            .map(|o| {
                json!({
                    "cloid": o.intent.cloid.to_string(),
                    "id": o.exchange_order_id,
                    "symbol": o.intent.symbol,
                    "side": if o.intent.side == Side::Buy { "buy" } else { "sell" },
                    "type": format!("{:?}", o.intent.kind).to_ascii_lowercase(),
                    "qty": num(o.intent.qty),
                    "filledQty": num(o.filled_qty),
                    "price": o.intent.price.map(num),
                    "triggerPrice": o.intent.trigger_price.map(num),
                    "reduceOnly": o.intent.reduce_only,
                    "status": format!("{:?}", o.status).to_ascii_lowercase(),
                })
            })
            .collect(),
    )
}

/// The balance's keys, in the order JS sees them.
const BALANCE_KEYS: &[&str] = &["available", "cash", "currency", "equity", "marginUsed", "unrealizedPnl"];

fn balance(state: &State, trader: &str) -> Rows {
    let row = match state.account(trader) {
        Some(a) => vec![
            Field::Num(num(a.available)),
            Field::Num(num(a.cash)),
            Field::Str(a.currency.clone()),
            Field::Num(num(a.equity)),
            Field::Num(num(a.margin_used)),
            Field::Num(num(a.unrealized_pnl)),
        ],
        None => vec![
            Field::Num(0.0),
            Field::Num(0.0),
            Field::Str("USDT".into()),
            Field::Num(0.0),
            Field::Num(0.0),
            Field::Num(0.0),
        ],
    };
    Rows { keys: BALANCE_KEYS, rows: vec![row], single: true }
}

fn klines(market: &Market, args: &[Json]) -> Result<Json, String> {
    let symbol = args.first().and_then(Json::as_str).ok_or("getKlines(symbol, interval, limit): symbol missing")?;
    let interval = match args.get(1) {
        Some(Json::String(s)) => parse_interval(s).ok_or_else(|| format!("unknown interval {s:?}"))?,
        Some(Json::Number(n)) => n.as_i64().map(|m| m * 60_000).ok_or("interval must be like \"1m\"")?,
        _ => return Err("getKlines(symbol, interval, limit): interval missing".into()),
    };
    let limit = args.get(2).and_then(Json::as_u64).map_or(200, |l| l as usize).min(KLINES_LIMIT_MAX);
    Ok(Json::Array(market.recent(symbol, interval, limit).map(|k| tick_json(&k)).collect()))
}

fn ticker(state: &State, symbol: Option<&Json>) -> Result<Json, String> {
    let symbol = symbol.and_then(Json::as_str).ok_or("getTicker(symbol): symbol missing")?;
    let mut out = Map::new();
    out.insert("symbol".into(), json!(symbol));
    match state.marks.get(symbol) {
        Some(mark) => {
            out.insert("price".into(), json!(num(mark.price)));
            out.insert("time".into(), json!(mark.time_ms));
        }
        None => {
            out.insert("price".into(), Json::Null);
        }
    }
    Ok(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows reach JS in the order of their keys, JSON objects in sorted order: the keys must
    /// be sorted for the two to be the same value (`Object.keys`, `JSON.stringify`).
    #[test]
    fn answer_keys_are_in_json_order() {
        for keys in [POSITION_KEYS, BALANCE_KEYS] {
            let mut sorted = keys.to_vec();
            sorted.sort_unstable();
            assert_eq!(keys, sorted.as_slice());
        }
    }
}
