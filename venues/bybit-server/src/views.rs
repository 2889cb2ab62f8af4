//! The v5 JSON of orders, executions, positions and the wallet (VENUES.md §1.6, §2): field
//! names as documented, numbers as strings, REST times as ms strings, WebSocket items with
//! `category`.

use journal::event::{OrderKind, Side, TimeInForce};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::account::{Account, Execution, OrderRecord, TRADER};

/// A decimal as v5 writes it: no exponent, no trailing zeros.
pub fn d(value: Decimal) -> String {
    value.normalize().to_string()
}

/// Money: 8 decimal places at most.
fn m(value: Decimal) -> String {
    d(value.round_dp(8))
}

fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    }
}

fn tif(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::PostOnly => "PostOnly",
    }
}

fn avg_price(order: &OrderRecord) -> Decimal {
    if order.cum_qty.is_zero() {
        Decimal::ZERO
    } else {
        (order.cum_value / order.cum_qty).round_dp(8)
    }
}

/// An order item of `/v5/order/realtime`, `/v5/order/history` and the `order` topic.
pub fn order(order: &OrderRecord, symbol: &str, ws: bool) -> Value {
    let leaves = order.leaves_qty();
    let price = order.price.unwrap_or(Decimal::ZERO);
    let mut item = json!({
        "orderId": order.order_id,
        "orderLinkId": order.link_id,
        "blockTradeId": "",
        "symbol": symbol,
        "price": d(price),
        "qty": d(order.qty),
        "side": side(order.side),
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": order.status.name(),
        "createType": "CreateByUser",
        "cancelType": order.cancel_type,
        "rejectReason": order.reject_reason,
        "avgPrice": d(avg_price(order)),
        "leavesQty": d(leaves),
        "leavesValue": m(leaves * price),
        "cumExecQty": d(order.cum_qty),
        "cumExecValue": m(order.cum_value),
        "cumExecFee": m(order.cum_fee),
        "cumFeeDetail": {"USDT": m(order.cum_fee)},
        "timeInForce": tif(order.tif),
        "orderType": order.order_type(),
        "stopOrderType": if order.kind == OrderKind::Stop { "Stop" } else { "" },
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": order.trigger_price.map_or_else(|| "0".to_owned(), d),
        "takeProfit": "0",
        "stopLoss": "0",
        "tpslMode": "",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": match (order.kind, order.side) {
            (OrderKind::Stop, Side::Buy) => 1,
            (OrderKind::Stop, Side::Sell) => 2,
            _ => 0,
        },
        "triggerBy": if order.kind == OrderKind::Stop { "LastPrice" } else { "" },
        "lastPriceOnCreated": d(order.last_price_on_created),
        "reduceOnly": order.reduce_only,
        "closeOnTrigger": false,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": order.created_ms.to_string(),
        "updatedTime": order.updated_ms.to_string(),
    });
    if ws {
        item["category"] = json!("linear");
        item["closedPnl"] = json!("0");
        item["feeCurrency"] = json!("USDT");
    }
    item
}

/// The `--log` line of an accepted order.
pub fn order_log(order: &OrderRecord, symbol: &str) -> Value {
    json!({
        "type": "order",
        "orderId": order.order_id,
        "orderLinkId": order.link_id,
        "symbol": symbol,
        "side": side(order.side),
        "orderType": order.order_type(),
        "qty": d(order.qty),
        "price": order.price.map_or_else(|| "0".to_owned(), d),
        "triggerPrice": order.trigger_price.map_or_else(|| "0".to_owned(), d),
        "timeInForce": tif(order.tif),
        "reduceOnly": order.reduce_only,
        "createdTime": order.created_ms.to_string(),
    })
}

/// An item of `/v5/execution/list` and the `execution` topic.
pub fn execution(e: &Execution, symbol: &str, ws: bool) -> Value {
    let mut item = json!({
        "symbol": symbol,
        "orderId": e.order_id,
        "orderLinkId": e.link_id,
        "side": side(e.side),
        "orderPrice": d(e.order_price.unwrap_or(Decimal::ZERO)),
        "orderQty": d(e.order_qty),
        "leavesQty": d(e.leaves_qty),
        "createType": "CreateByUser",
        "orderType": e.order_type,
        "stopOrderType": "",
        "execFee": m(e.fee),
        "execId": e.exec_id,
        "execPrice": d(e.price),
        "execQty": d(e.qty),
        "execType": e.exec_type,
        "execValue": m(e.qty * e.price),
        "execTime": e.exec_ms.to_string(),
        "feeCurrency": "USDT",
        "isMaker": e.is_maker,
        "feeRate": d(e.fee_rate),
        "tradeIv": "",
        "markIv": "",
        "markPrice": d(e.mark_price),
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": d(e.closed_size),
        "seq": e.seq,
        "extraFees": "",
    });
    if ws {
        item["category"] = json!("linear");
        item["execPnl"] = json!(m(e.exec_pnl));
        item["isLeverage"] = json!("");
    }
    item
}

/// The `--log` line of an execution.
pub fn execution_log(e: &Execution, symbol: &str) -> Value {
    json!({
        "type": "execution",
        "execId": e.exec_id,
        "orderId": e.order_id,
        "orderLinkId": e.link_id,
        "symbol": symbol,
        "side": side(e.side),
        "execQty": d(e.qty),
        "execPrice": d(e.price),
        "execFee": m(e.fee),
        "execType": e.exec_type,
        "execTime": e.exec_ms.to_string(),
        "isMaker": e.is_maker,
    })
}

/// The account's one position item (flat: size "0", side "").
pub fn position(account: &Account, ws: bool) -> Value {
    let trader = account.state.traders.get(TRADER);
    let position = trader.and_then(|t| t.positions.get(&account.symbol)).cloned().unwrap_or_default();
    let mark = account.state.mark(&account.symbol).unwrap_or(Decimal::ZERO);
    let leverage = account.leverage();
    let size = position.qty.abs();
    let entry = position.entry_price;
    let value = size * entry;
    let side = if position.qty > Decimal::ZERO {
        "Buy"
    } else if position.qty < Decimal::ZERO {
        "Sell"
    } else {
        ""
    };
    let liq = if size.is_zero() {
        String::new()
    } else {
        position.liquidation_price(leverage, account.instrument.maintenance_margin_rate).map_or_else(String::new, |p| {
            d(journal_to_tick(p, account.instrument.tick_size))
        })
    };
    let realised = position.realized_pnl - position.fees_paid + position.funding_net;
    let mut item = json!({
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": account.symbol,
        "side": side,
        "size": d(size),
        "avgPrice": m(entry),
        "positionValue": m(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": if size.is_zero() { 0 } else { 2 },
        "leverage": d(leverage),
        "positionBalance": m(value / leverage),
        "markPrice": d(mark),
        "liqPrice": liq,
        "bustPrice": "",
        "positionMM": m(value * account.instrument.maintenance_margin_rate),
        "positionIM": m(value / leverage),
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": m(position.unrealized_pnl(mark)),
        "curRealisedPnl": m(realised),
        "cumRealisedPnl": m(realised),
        "seq": account.position_seq,
        "isReduceOnly": false,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": account.position_created_ms.to_string(),
        "updatedTime": account.position_updated_ms.to_string(),
    });
    if ws {
        item["category"] = json!("linear");
        item["entryPrice"] = json!(m(entry));
    }
    item
}

/// A liquidation price as shown: on the tick grid.
fn journal_to_tick(price: Decimal, tick: Decimal) -> Decimal {
    if tick <= Decimal::ZERO {
        return price;
    }
    ((price / tick).round() * tick).normalize()
}

/// The UNIFIED account item of `/v5/account/wallet-balance` and the `wallet` topic.
pub fn wallet(account: &Account) -> Value {
    let view = account.state.account(TRADER);
    let (cash, equity, upl, im, order_im, available) = view.map_or(Default::default(), |v| {
        (v.cash, v.equity, v.unrealized_pnl, v.margin_used, v.order_margin, v.available)
    });
    let trader = account.state.traders.get(TRADER);
    let realised = trader.map_or(Decimal::ZERO, |t| t.realized_pnl - t.fees_paid + t.funding_net);
    let position_value = trader
        .and_then(|t| t.positions.get(&account.symbol))
        .map_or(Decimal::ZERO, |p| p.qty.abs() * p.entry_price);
    let mm = position_value * account.instrument.maintenance_margin_rate;
    let rate = |x: Decimal| if equity > Decimal::ZERO { d((x / equity).round_dp(4)) } else { "0".to_owned() };
    json!({
        "accountType": "UNIFIED",
        "accountIMRate": rate(im + order_im),
        "accountMMRate": rate(mm),
        "accountLTV": "0",
        "totalEquity": m(equity),
        "totalWalletBalance": m(cash),
        "totalMarginBalance": m(equity),
        "totalAvailableBalance": m(available.max(Decimal::ZERO)),
        "totalPerpUPL": m(upl),
        "totalInitialMargin": m(im + order_im),
        "totalMaintenanceMargin": m(mm),
        "coin": [{
            "coin": "USDT",
            "equity": m(equity),
            "usdValue": m(equity),
            "walletBalance": m(cash),
            "free": "",
            "locked": "0",
            "spotHedgingQty": "0",
            "borrowAmount": "0",
            "availableToWithdraw": m(available.max(Decimal::ZERO)),
            "availableToBorrow": "",
            "accruedInterest": "0",
            "totalOrderIM": m(order_im),
            "totalPositionIM": m(im),
            "totalPositionMM": m(mm),
            "unrealisedPnl": m(upl),
            "cumRealisedPnl": m(realised),
            "bonus": "0",
            "marginCollateral": true,
            "collateralSwitch": true,
            "autoCollateral": false,
        }],
    })
}
