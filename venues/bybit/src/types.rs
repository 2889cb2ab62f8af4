//! What Bybit reports, typed: orders, executions, positions, the wallet, instruments.
//! Parsed from REST lists and WebSocket `data` arrays alike (the field names are the same).
//!
//! Bybit sends numbers as strings (`"16649.5"`, `""` for none) and times as ms strings in
//! REST and sometimes as JSON numbers on the WebSocket; the readers here take both.
//! Every amount becomes a `Decimal`; nothing goes through `f64`.

use std::str::FromStr;

use journal::event::{Kline, Side};
use rust_decimal::Decimal;
use serde_json::Value;

/// `GET /v5/market/instruments-info`, one linear symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentInfo {
    pub symbol: String,
    pub tick_size: Decimal,
    pub qty_step: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_notional: Decimal,
    pub max_leverage: Decimal,
}

/// `orderStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Untriggered,
    Rejected,
    Filled,
    Cancelled,
    Triggered,
    Deactivated,
    Other(String),
}

impl OrderStatus {
    /// Still working at the venue (can fill).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::Untriggered | OrderStatus::Triggered
        )
    }
}

/// An order as `GET /v5/order/realtime` and the `order` topic report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderReport {
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: String,
    pub price: Option<Decimal>,
    pub qty: Decimal,
    pub cum_exec_qty: Decimal,
    pub leaves_qty: Decimal,
    pub status: OrderStatus,
    pub reject_reason: String,
    pub cancel_type: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One execution (`GET /v5/execution/list`, the `execution` topic). `exec_type` is
/// "Trade" for fills, "Funding" for a funding settlement (then `fee` is what was paid,
/// negative when received, and `fee_rate` the funding rate), and others Bybit documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub exec_id: String,
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub exec_type: String,
    pub qty: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub fee_rate: Decimal,
    pub is_maker: bool,
    pub mark_price: Option<Decimal>,
    pub time_ms: i64,
}

/// A one-way-mode position (`GET /v5/position/list`, the `position` topic). `qty` is signed:
/// positive long, negative short, zero flat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionReport {
    pub symbol: String,
    pub qty: Decimal,
    pub entry_price: Decimal,
    pub updated_ms: i64,
}

/// The USDT of the unified account (`GET /v5/account/wallet-balance`, the `wallet` topic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletReport {
    pub wallet_balance: Decimal,
    pub equity: Decimal,
    pub available: Decimal,
}

/// Why a JSON item is not the report it should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

type Parsed<T> = Result<T, ParseError>;

impl OrderStatus {
    pub fn parse(text: &str) -> OrderStatus {
        match text {
            "New" => OrderStatus::New,
            "PartiallyFilled" => OrderStatus::PartiallyFilled,
            "Untriggered" => OrderStatus::Untriggered,
            "Rejected" => OrderStatus::Rejected,
            "Filled" => OrderStatus::Filled,
            "Cancelled" => OrderStatus::Cancelled,
            "Triggered" => OrderStatus::Triggered,
            "Deactivated" => OrderStatus::Deactivated,
            other => OrderStatus::Other(other.to_owned()),
        }
    }
}

impl InstrumentInfo {
    /// One item of `instruments-info`'s `result.list`.
    pub fn from_json(item: &Value) -> Parsed<InstrumentInfo> {
        let price = field(item, "priceFilter")?;
        let lot = field(item, "lotSizeFilter")?;
        let leverage = field(item, "leverageFilter")?;
        Ok(InstrumentInfo {
            symbol: string(item, "symbol")?,
            tick_size: decimal(price, "tickSize")?,
            qty_step: decimal(lot, "qtyStep")?,
            min_qty: decimal(lot, "minOrderQty")?,
            max_qty: decimal(lot, "maxOrderQty")?,
            min_notional: decimal_or_zero(lot, "minNotionalValue")?,
            max_leverage: decimal(leverage, "maxLeverage")?,
        })
    }
}

impl OrderReport {
    /// One order of `order/realtime`, `order/history` or the `order` topic.
    pub fn from_json(item: &Value) -> Parsed<OrderReport> {
        Ok(OrderReport {
            order_id: string(item, "orderId")?,
            order_link_id: string_or_empty(item, "orderLinkId")?,
            symbol: string(item, "symbol")?,
            side: side(item, "side")?,
            order_type: string_or_empty(item, "orderType")?,
            // Market orders report price "0" or "": no price.
            price: decimal_opt(item, "price")?.filter(|price| !price.is_zero()),
            qty: decimal(item, "qty")?,
            cum_exec_qty: decimal_or_zero(item, "cumExecQty")?,
            leaves_qty: decimal_or_zero(item, "leavesQty")?,
            status: OrderStatus::parse(&string(item, "orderStatus")?),
            reject_reason: string_or_empty(item, "rejectReason")?,
            cancel_type: string_or_empty(item, "cancelType")?,
            created_ms: time_ms_or_zero(item, "createdTime")?,
            updated_ms: time_ms_or_zero(item, "updatedTime")?,
        })
    }
}

impl Execution {
    /// One execution of `execution/list` or the `execution` topic.
    pub fn from_json(item: &Value) -> Parsed<Execution> {
        Ok(Execution {
            exec_id: string(item, "execId")?,
            order_id: string_or_empty(item, "orderId")?,
            order_link_id: string_or_empty(item, "orderLinkId")?,
            symbol: string(item, "symbol")?,
            side: side(item, "side")?,
            exec_type: string_or_empty(item, "execType")?,
            qty: decimal(item, "execQty")?,
            price: decimal(item, "execPrice")?,
            fee: decimal_or_zero(item, "execFee")?,
            fee_rate: decimal_or_zero(item, "feeRate")?,
            is_maker: boolean(item, "isMaker")?,
            mark_price: decimal_opt(item, "markPrice")?,
            time_ms: time_ms(item, "execTime")?,
        })
    }
}

impl PositionReport {
    /// One position of `position/list` or the `position` topic: `size` is unsigned with
    /// `side` "Buy"/"Sell" ("" or "None" when flat); the entry price is `avgPrice` in REST
    /// and `entryPrice` on the topic.
    pub fn from_json(item: &Value) -> Parsed<PositionReport> {
        let size = decimal_or_zero(item, "size")?;
        let qty = match string_or_empty(item, "side")?.as_str() {
            "Buy" => size,
            "Sell" => -size,
            _ => Decimal::ZERO,
        };
        let entry_price = match decimal_opt(item, "entryPrice")? {
            Some(price) => price,
            None => decimal_or_zero(item, "avgPrice")?,
        };
        Ok(PositionReport {
            symbol: string(item, "symbol")?,
            qty,
            entry_price,
            updated_ms: time_ms_or_zero(item, "updatedTime")?,
        })
    }
}

impl WalletReport {
    /// One account of `wallet-balance`'s `result.list` (or of the `wallet` topic's `data`):
    /// its USDT coin. `available` is the account's `totalAvailableBalance` when given, else
    /// the coin's `availableToWithdraw`, else its wallet balance less the margin in use.
    /// An account without a USDT coin has nothing: all zero.
    pub fn from_json(account: &Value) -> Parsed<WalletReport> {
        let coins = account.get("coin").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let Some(usdt) = coins.iter().find(|coin| coin.get("coin").and_then(Value::as_str) == Some("USDT")) else {
            return Ok(WalletReport { wallet_balance: Decimal::ZERO, equity: Decimal::ZERO, available: Decimal::ZERO });
        };
        let wallet_balance = decimal_or_zero(usdt, "walletBalance")?;
        let equity = match decimal_opt(usdt, "equity")? {
            Some(equity) => equity,
            None => wallet_balance,
        };
        let available =
            match (decimal_opt(account, "totalAvailableBalance")?, decimal_opt(usdt, "availableToWithdraw")?) {
                (Some(available), _) | (None, Some(available)) => available,
                (None, None) => {
                    wallet_balance - decimal_or_zero(usdt, "totalPositionIM")? - decimal_or_zero(usdt, "totalOrderIM")?
                }
            };
        Ok(WalletReport { wallet_balance, equity, available })
    }
}

/// `(takerFeeRate, makerFeeRate)` of one item of `account/fee-rate`'s `result.list`.
pub fn fee_rates_from_json(item: &Value) -> Parsed<(Decimal, Decimal)> {
    Ok((decimal(item, "takerFeeRate")?, decimal(item, "makerFeeRate")?))
}

/// One row of `market/kline`'s `result.list`: `[startTime, open, high, low, close, volume, turnover]`.
pub fn kline_from_rest_row(symbol: &str, interval_ms: i64, row: &Value) -> Parsed<Kline> {
    let cells = row.as_array().ok_or_else(|| ParseError(format!("kline row is not an array: {row}")))?;
    let cell = |i: usize| -> Parsed<&Value> {
        cells.get(i).ok_or_else(|| ParseError(format!("kline row has {} cells, wanted 7: {row}", cells.len())))
    };
    Ok(Kline {
        symbol: symbol.to_owned(),
        interval_ms,
        open_time_ms: time_value(cell(0)?).ok_or_else(|| ParseError(format!("bad kline start time: {row}")))?,
        open: decimal_value(cell(1)?, "open")?,
        high: decimal_value(cell(2)?, "high")?,
        low: decimal_value(cell(3)?, "low")?,
        close: decimal_value(cell(4)?, "close")?,
        volume: decimal_value(cell(5)?, "volume")?,
        closed: true,
    })
}

/// One item of a `kline.{interval}.{symbol}` push, with whether it is closed (`confirm`).
/// `interval_ms` is the subscribed bar length; None takes it from `end - start + 1`.
pub fn kline_from_ws(symbol: &str, interval_ms: Option<i64>, item: &Value) -> Parsed<Kline> {
    let start = time_ms(item, "start")?;
    let interval_ms = match interval_ms {
        Some(ms) => ms,
        None => time_ms(item, "end")? - start + 1,
    };
    Ok(Kline {
        symbol: symbol.to_owned(),
        interval_ms,
        open_time_ms: start,
        open: decimal(item, "open")?,
        high: decimal(item, "high")?,
        low: decimal(item, "low")?,
        close: decimal(item, "close")?,
        volume: decimal(item, "volume")?,
        closed: boolean(item, "confirm")?,
    })
}

// ---- field readers ---------------------------------------------------------------------

fn field<'a>(item: &'a Value, name: &str) -> Parsed<&'a Value> {
    item.get(name).filter(|v| !v.is_null()).ok_or_else(|| ParseError(format!("missing field {name}")))
}

fn string(item: &Value, name: &str) -> Parsed<String> {
    match field(item, name)? {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(ParseError(format!("field {name} is not a string: {other}"))),
    }
}

fn string_or_empty(item: &Value, name: &str) -> Parsed<String> {
    match item.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => string(item, name),
    }
}

fn side(item: &Value, name: &str) -> Parsed<Side> {
    match string(item, name)?.as_str() {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        other => Err(ParseError(format!("field {name} is not Buy or Sell: {other:?}"))),
    }
}

fn boolean(item: &Value, name: &str) -> Parsed<bool> {
    match item.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(true),
        Some(Value::String(s)) if s == "false" || s == "0" || s.is_empty() => Ok(false),
        Some(other) => Err(ParseError(format!("field {name} is not a boolean: {other}"))),
    }
}

fn decimal_value(value: &Value, name: &str) -> Parsed<Decimal> {
    let parsed = match value {
        Value::String(s) => Decimal::from_str(s.trim()).or_else(|_| Decimal::from_scientific(s.trim())),
        Value::Number(n) => {
            let text = n.to_string();
            Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text))
        }
        other => return Err(ParseError(format!("field {name} is not a number: {other}"))),
    };
    parsed.map_err(|e| ParseError(format!("field {name} is not a decimal ({value}): {e}")))
}

/// A number that may be absent: missing, null or `""` is None.
fn decimal_opt(item: &Value, name: &str) -> Parsed<Option<Decimal>> {
    match item.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(value) => decimal_value(value, name).map(Some),
    }
}

fn decimal(item: &Value, name: &str) -> Parsed<Decimal> {
    decimal_opt(item, name)?.ok_or_else(|| ParseError(format!("missing field {name}")))
}

fn decimal_or_zero(item: &Value, name: &str) -> Parsed<Decimal> {
    Ok(decimal_opt(item, name)?.unwrap_or_default())
}

/// A ms time as a string (REST) or a number (some WebSocket fields).
fn time_value(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn time_ms(item: &Value, name: &str) -> Parsed<i64> {
    let value = field(item, name)?;
    time_value(value).ok_or_else(|| ParseError(format!("field {name} is not a ms time: {value}")))
}

fn time_ms_or_zero(item: &Value, name: &str) -> Parsed<i64> {
    match item.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
        Some(_) => time_ms(item, name),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use serde_json::json;

    use super::*;

    #[test]
    fn instrument_from_the_documented_btcusdt() {
        let item = json!({
            "symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
            "baseCoin": "BTC", "quoteCoin": "USDT", "settleCoin": "USDT", "priceScale": "2",
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
            "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                "maxMktOrderQty": "500.000", "minNotionalValue": "5", "postOnlyMaxOrderQty": "1190.000"},
            "fundingInterval": 480
        });
        let info = InstrumentInfo::from_json(&item).unwrap();
        assert_eq!(
            info,
            InstrumentInfo {
                symbol: "BTCUSDT".into(),
                tick_size: dec!(0.10),
                qty_step: dec!(0.001),
                min_qty: dec!(0.001),
                max_qty: dec!(1190.000),
                min_notional: dec!(5),
                max_leverage: dec!(100.00),
            }
        );
    }

    #[test]
    fn order_from_a_rest_item() {
        let item = json!({
            "orderId": "fd4300ae-7847-404e-b947-b46980a4d140", "orderLinkId": "test-000005",
            "blockTradeId": "", "symbol": "ETHUSDT", "price": "1600.00", "qty": "0.10", "side": "Buy",
            "isLeverage": "", "positionIdx": 1, "orderStatus": "New", "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError", "avgPrice": "0", "leavesQty": "0.10", "leavesValue": "160",
            "cumExecQty": "0.00", "cumExecValue": "0", "cumExecFee": "0", "timeInForce": "GTC",
            "orderType": "Limit", "stopOrderType": "UNKNOWN", "orderIv": "", "triggerPrice": "0.00",
            "takeProfit": "2500.00", "stopLoss": "1500.00", "reduceOnly": false, "closeOnTrigger": false,
            "createdTime": "1684738540559", "updatedTime": "1684738540561"
        });
        let order = OrderReport::from_json(&item).unwrap();
        assert_eq!(order.order_link_id, "test-000005");
        assert_eq!(order.side, Side::Buy);
        assert_eq!(order.price, Some(dec!(1600.00)));
        assert_eq!(order.qty, dec!(0.10));
        assert_eq!(order.leaves_qty, dec!(0.10));
        assert_eq!(order.cum_exec_qty, Decimal::ZERO);
        assert_eq!(order.status, OrderStatus::New);
        assert!(order.status.is_open());
        assert_eq!(order.created_ms, 1_684_738_540_559);
        assert_eq!(order.updated_ms, 1_684_738_540_561);
    }

    #[test]
    fn the_second_filled_of_a_cancel_racing_a_fill_parses() {
        // The `order` topic's second `Filled` when a cancel raced the fill.
        let item = json!({
            "category": "linear", "symbol": "BTCUSDT", "orderId": "5cf98598-39a7-459e-97bf-76ca765ee020",
            "orderLinkId": "0123456789abcdef0123456789abcdef", "side": "Sell", "orderType": "Market",
            "price": "", "qty": "0.001", "timeInForce": "IOC", "orderStatus": "Filled",
            "leavesQty": "0", "cumExecQty": "0.001", "cumExecValue": "16.5", "avgPrice": "16500",
            "cumExecFee": "0.0099", "closedPnl": "0", "positionIdx": 0, "reduceOnly": false,
            "rejectReason": "EC_OrigClOrdIDDoesNotExist", "cancelType": "CancelByUser",
            "createdTime": 1672364262444_i64, "updatedTime": 1672364262457_i64
        });
        let order = OrderReport::from_json(&item).unwrap();
        assert_eq!(order.status, OrderStatus::Filled);
        assert!(!order.status.is_open());
        assert_eq!(order.price, None);
        assert_eq!(order.cancel_type, "CancelByUser");
        assert_eq!(order.reject_reason, "EC_OrigClOrdIDDoesNotExist");
        assert_eq!(order.updated_ms, 1_672_364_262_457);
    }

    #[test]
    fn execution_from_a_topic_item() {
        let item = json!({
            "category": "linear", "symbol": "XRPUSDT", "execFee": "0.005061", "execId": "7e2ae69c-4edf-5800-a352-893d52b446aa",
            "execPrice": "0.3374", "execQty": "25", "execType": "Trade", "execValue": "8.435", "isMaker": false,
            "feeRate": "0.0006", "tradeIv": "", "markIv": "", "blockTradeId": "", "markPrice": "0.3391",
            "indexPrice": "", "underlyingPrice": "", "leavesQty": "0", "orderId": "f6e324ff-99c2-4e89-9739-3086e47f9381",
            "orderLinkId": "", "orderPrice": "0.3207", "orderQty": "25", "orderType": "Market", "stopOrderType": "UNKNOWN",
            "side": "Sell", "execTime": "1672364174443", "isLeverage": "0", "closedSize": "", "seq": 4688002127_i64
        });
        let execution = Execution::from_json(&item).unwrap();
        assert_eq!(execution.exec_id, "7e2ae69c-4edf-5800-a352-893d52b446aa");
        assert_eq!(execution.side, Side::Sell);
        assert_eq!(execution.qty, dec!(25));
        assert_eq!(execution.price, dec!(0.3374));
        assert_eq!(execution.fee, dec!(0.005061));
        assert_eq!(execution.fee_rate, dec!(0.0006));
        assert!(!execution.is_maker);
        assert_eq!(execution.mark_price, Some(dec!(0.3391)));
        assert_eq!(execution.time_ms, 1_672_364_174_443);
        assert_eq!(execution.order_link_id, "");
    }

    #[test]
    fn funding_execution_keeps_a_negative_fee() {
        let item = json!({"symbol": "BTCUSDT", "execId": "f1", "orderId": "", "orderLinkId": "", "side": "Buy",
            "execType": "Funding", "execQty": "0.01", "execPrice": "30000", "execFee": "-0.03", "feeRate": "-0.0001",
            "isMaker": false, "markPrice": "", "execTime": "1700000000000"});
        let execution = Execution::from_json(&item).unwrap();
        assert_eq!(execution.fee, dec!(-0.03));
        assert_eq!(execution.fee_rate, dec!(-0.0001));
        assert_eq!(execution.mark_price, None);
    }

    #[test]
    fn positions_are_signed_by_side() {
        struct Case {
            side: &'static str,
            size: &'static str,
            qty: Decimal,
        }
        for case in [
            Case { side: "Buy", size: "0.5", qty: dec!(0.5) },
            Case { side: "Sell", size: "0.5", qty: dec!(-0.5) },
            Case { side: "", size: "0", qty: dec!(0) },
            Case { side: "None", size: "0", qty: dec!(0) },
        ] {
            let item = json!({"symbol": "BTCUSDT", "side": case.side, "size": case.size, "avgPrice": "30000.5",
                "updatedTime": "1700000000001", "positionIdx": 0});
            let position = PositionReport::from_json(&item).unwrap();
            assert_eq!(position.qty, case.qty, "side {:?}", case.side);
            assert_eq!(position.entry_price, dec!(30000.5));
            assert_eq!(position.updated_ms, 1_700_000_000_001);
        }
    }

    #[test]
    fn position_topic_takes_entry_price() {
        let item = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "size": "0.01",
            "entryPrice": "41000", "avgPrice": "", "updatedTime": "1700000000002"});
        let position = PositionReport::from_json(&item).unwrap();
        assert_eq!(position.qty, dec!(-0.01));
        assert_eq!(position.entry_price, dec!(41000));
    }

    #[test]
    fn wallet_reads_the_usdt_coin() {
        let account = json!({"accountType": "UNIFIED", "totalEquity": "3.31", "totalWalletBalance": "3.0",
        "totalAvailableBalance": "2.5",
        "coin": [
            {"coin": "BTC", "equity": "0.1", "walletBalance": "0.1"},
            {"coin": "USDT", "equity": "10100.5", "walletBalance": "10000", "availableToWithdraw": "",
             "totalPositionIM": "100", "totalOrderIM": "20", "unrealisedPnl": "100.5"}
        ]});
        let wallet = WalletReport::from_json(&account).unwrap();
        assert_eq!(wallet, WalletReport { wallet_balance: dec!(10000), equity: dec!(10100.5), available: dec!(2.5) });

        let mut without_total = account.clone();
        without_total["totalAvailableBalance"] = json!("");
        let wallet = WalletReport::from_json(&without_total).unwrap();
        assert_eq!(wallet.available, dec!(9880));

        let empty = WalletReport::from_json(&json!({"coin": []})).unwrap();
        assert_eq!(empty.wallet_balance, Decimal::ZERO);
    }

    #[test]
    fn fee_rates() {
        let item = json!({"symbol": "ETHUSDT", "takerFeeRate": "0.00055", "makerFeeRate": "0.0001"});
        assert_eq!(fee_rates_from_json(&item).unwrap(), (dec!(0.00055), dec!(0.0001)));
    }

    #[test]
    fn kline_rows_and_pushes() {
        let row = json!(["1670608800000", "17071", "17073", "17027", "17055.5", "268611", "15.74462667"]);
        let kline = kline_from_rest_row("BTCUSDT", 60_000, &row).unwrap();
        assert_eq!(kline.open_time_ms, 1_670_608_800_000);
        assert_eq!(
            (kline.open, kline.high, kline.low, kline.close),
            (dec!(17071), dec!(17073), dec!(17027), dec!(17055.5))
        );
        assert_eq!(kline.volume, dec!(268611));
        assert!(kline.closed);
        assert!(kline_from_rest_row("BTCUSDT", 60_000, &json!(["1", "2"])).is_err());

        let push = json!({"start": 1672324800000_i64, "end": 1672325099999_i64, "interval": "5", "open": "16649.5",
            "close": "16677", "high": "16677", "low": "16608", "volume": "2.081", "turnover": "34666.4005",
            "confirm": false, "timestamp": 1672324988882_i64});
        let kline = kline_from_ws("BTCUSDT", None, &push).unwrap();
        assert_eq!(kline.interval_ms, 300_000);
        assert!(!kline.closed);
        assert_eq!(kline.close, dec!(16677));
    }

    #[test]
    fn bad_items_are_errors_not_panics() {
        assert!(OrderReport::from_json(&json!({})).is_err());
        assert!(OrderReport::from_json(&json!("nonsense")).is_err());
        assert!(Execution::from_json(&json!({"execId": "x", "symbol": "B", "side": "Up"})).is_err());
        assert!(Execution::from_json(&json!({"execId": "x", "symbol": "B", "side": "Buy", "execQty": "1e",
            "execPrice": "1", "execTime": "1"}))
        .is_err());
        assert!(InstrumentInfo::from_json(&json!({"symbol": "B"})).is_err());
    }
}
