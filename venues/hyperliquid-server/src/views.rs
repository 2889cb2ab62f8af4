//! The venue's JSON of orders, fills, candles, the clearinghouse state and the meta, and the
//! ground-truth log lines. Numbers are strings without trailing zeros, as the venue writes them.

use hyperliquid::{
    types::{Tif, Tpsl},
    wire::{cloid_to_wire, to_wire},
};
use journal::event::{Kline, Side};
use rust_decimal::{prelude::ToPrimitive, Decimal};
use serde_json::{json, Map, Value};

use crate::account::{Account, FillRecord, Kind, OrderRecord, TRADER};

/// A decimal as the wire writes it.
pub fn d(value: Decimal) -> String {
    to_wire(value)
}

fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "B",
        Side::Sell => "A",
    }
}

/// `orderType` as `frontendOpenOrders` names it.
fn order_type(order: &OrderRecord) -> &'static str {
    match order.kind {
        Kind::Limit(_) => "Limit",
        Kind::Trigger { tpsl: Tpsl::Sl, is_market: true } => "Stop Market",
        Kind::Trigger { tpsl: Tpsl::Sl, is_market: false } => "Stop Limit",
        Kind::Trigger { tpsl: Tpsl::Tp, is_market: true } => "Take Profit Market",
        Kind::Trigger { tpsl: Tpsl::Tp, is_market: false } => "Take Profit Limit",
    }
}

fn tif(order: &OrderRecord) -> Value {
    match order.kind {
        Kind::Limit(Tif::Gtc) => json!("Gtc"),
        Kind::Limit(Tif::Ioc) => json!("Ioc"),
        Kind::Limit(Tif::Alo) => json!("Alo"),
        Kind::Trigger { .. } => Value::Null,
    }
}

/// `openOrders`' item: `{coin, side, limitPx, sz, oid, timestamp, origSz, cloid?}`.
pub fn open_order(order: &OrderRecord, coin: &str) -> Value {
    let mut view = json!({
        "coin": coin,
        "side": side(order.side),
        "limitPx": d(order.limit_px),
        "sz": d(order.remaining()),
        "oid": order.oid,
        "timestamp": order.timestamp_ms,
        "origSz": d(order.orig_sz),
    });
    if let (Some(cloid), Some(map)) = (order.cloid, view.as_object_mut()) {
        map.insert("cloid".into(), json!(cloid_to_wire(&cloid)));
    }
    view
}

/// `frontendOpenOrders`' item (and `orderStatus`'s `order.order`): the base fields and the
/// trigger, type and flags.
pub fn frontend_order(order: &OrderRecord, coin: &str) -> Value {
    let mut view = open_order(order, coin);
    let trigger_condition = match (order.kind, order.trigger_px) {
        (Kind::Trigger { .. }, Some(px)) => {
            let above = match order.kind {
                Kind::Trigger { tpsl: Tpsl::Tp, .. } => order.side == Side::Sell,
                _ => order.side == Side::Buy,
            };
            format!("Price {} {}", if above { "above" } else { "below" }, d(px))
        }
        _ => "N/A".into(),
    };
    if let Some(map) = view.as_object_mut() {
        let extra = [
            ("triggerCondition", json!(trigger_condition)),
            ("isTrigger", json!(matches!(order.kind, Kind::Trigger { .. }))),
            ("triggerPx", json!(d(order.trigger_px.unwrap_or(Decimal::ZERO)))),
            ("children", json!([])),
            ("isPositionTpsl", json!(false)),
            ("reduceOnly", json!(order.reduce_only)),
            ("orderType", json!(order_type(order))),
            ("tif", tif(order)),
        ];
        for (key, value) in extra {
            map.insert(key.into(), value);
        }
        if !map.contains_key("cloid") {
            map.insert("cloid".into(), Value::Null);
        }
    }
    view
}

/// `orderStatus`'s answer for a known order.
pub fn order_status(order: &OrderRecord, coin: &str) -> Value {
    json!({
        "status": "order",
        "order": {"order": frontend_order(order, coin), "status": order.status, "statusTimestamp": order.status_ms},
    })
}

/// An `orderUpdates` item: `{order: {coin, side, limitPx, sz, oid, timestamp, origSz, cloid?}, status, statusTimestamp}`.
pub fn ws_order(order: &OrderRecord, coin: &str) -> Value {
    json!({"order": open_order(order, coin), "status": order.status, "statusTimestamp": order.status_ms})
}

/// The fill's hash: the venue's is a transaction hash; this one is derived from the trade id.
fn hash(tid: u64) -> String {
    format!("0x{}", hex::encode(hyperliquid::sign::keccak256(format!("hyperliquid-server/fill/{tid}").as_bytes())))
}

/// A `userFills` item.
pub fn fill(fill: &FillRecord, coin: &str) -> Value {
    let mut view = json!({
        "coin": coin,
        "px": d(fill.px),
        "sz": d(fill.sz),
        "side": side(fill.side),
        "time": fill.time_ms,
        "startPosition": d(fill.start_position),
        "dir": fill.dir,
        "closedPnl": d(fill.closed_pnl),
        "hash": hash(fill.tid),
        "oid": fill.oid,
        "crossed": fill.crossed,
        "fee": d(fill.fee),
        "tid": fill.tid,
        "feeToken": "USDC",
    });
    if let (Some(cloid), Some(map)) = (fill.cloid, view.as_object_mut()) {
        map.insert("cloid".into(), json!(cloid_to_wire(&cloid)));
    }
    view
}

/// A candle: `{t, T, s, i, o, c, h, l, v, n}`. The files carry no trade count: `n` is 0.
pub fn candle(bar: &Kline, coin: &str, interval: &str) -> Value {
    json!({
        "t": bar.open_time_ms,
        "T": bar.open_time_ms + bar.interval_ms - 1,
        "s": coin,
        "i": interval,
        "o": d(bar.open),
        "c": d(bar.close),
        "h": d(bar.high),
        "l": d(bar.low),
        "v": d(bar.volume),
        "n": 0,
    })
}

/// `meta`: the one perpetual.
pub fn meta(account: &Account) -> Value {
    json!({
        "universe": [{
            "name": account.coin,
            "szDecimals": account.sz_decimals,
            "maxLeverage": account.max_leverage,
            "marginTableId": account.max_leverage,
        }],
        "marginTables": [[account.max_leverage, {
            "description": "",
            "marginTiers": [{"lowerBound": "0.0", "maxLeverage": account.max_leverage}],
        }]],
        "collateralToken": 0,
    })
}

/// `spotMeta`: no spot pairs, and USDC (the SDK indexes the tokens when it starts).
pub fn spot_meta() -> Value {
    json!({
        "universe": [],
        "tokens": [{
            "name": "USDC",
            "szDecimals": 8,
            "weiDecimals": 8,
            "index": 0,
            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
            "isCanonical": true,
            "evmContract": null,
            "fullName": null,
        }],
    })
}

/// The asset context of `metaAndAssetCtxs`: every price is the last close (no book, no oracle).
pub fn asset_ctx(last: Decimal, previous_day: Decimal, day_volume: Decimal) -> Value {
    let last = d(last);
    json!({
        "funding": "0",
        "openInterest": "0",
        "prevDayPx": d(previous_day),
        "dayNtlVlm": d(day_volume),
        "premium": "0",
        "oraclePx": last,
        "markPx": last,
        "midPx": last,
        "impactPxs": [last, last],
        "dayBaseVlm": "0",
    })
}

/// `clearinghouseState`: the position and the margin summaries, valued at `mark`. Saturating
/// arithmetic: an absurd `--balance` gives absurd numbers, never a panic.
pub fn clearinghouse(account: &Account, mark: Decimal, time_ms: i64) -> Value {
    let leverage = account.leverage();
    let view = account.state.account(TRADER);
    let (equity, margin_used, available) =
        view.as_ref().map_or((Decimal::ZERO, Decimal::ZERO, Decimal::ZERO), |v| (v.equity, v.margin_used, v.available));
    let mut positions = Vec::new();
    let mut notional = Decimal::ZERO;
    let mut signed_notional = Decimal::ZERO;
    let mut maintenance = Decimal::ZERO;
    if let Some(position) = account.position().filter(|p| !p.qty.is_zero()) {
        let value = position.qty.abs().saturating_mul(mark).round_dp(6);
        notional = notional.saturating_add(value);
        signed_notional = signed_notional.saturating_add(position.qty.saturating_mul(mark));
        maintenance = maintenance.saturating_add(value.saturating_mul(account.instrument.maintenance_margin_rate));
        let margin = position.margin(leverage).round_dp(6);
        let unrealized = position.unrealized_pnl(mark).round_dp(6);
        let roe = unrealized.checked_div(margin).unwrap_or(Decimal::ZERO).round_dp(6);
        let liquidation = position
            .liquidation_price(leverage, account.instrument.maintenance_margin_rate)
            .map(|p| json!(d(p.round_dp(6))))
            .unwrap_or(Value::Null);
        positions.push(json!({
            "type": "oneWay",
            "position": {
                "coin": account.coin,
                "szi": d(position.qty),
                "leverage": {"type": "cross", "value": leverage.trunc().to_u32().unwrap_or(1)},
                "entryPx": d(position.entry_price),
                "positionValue": d(value),
                "unrealizedPnl": d(unrealized),
                "returnOnEquity": d(roe),
                "liquidationPx": liquidation,
                "marginUsed": d(margin),
                "maxLeverage": account.max_leverage,
                "cumFunding": {"allTime": "0", "sinceOpen": "0", "sinceChange": "0"},
            },
        }));
    }
    let summary = json!({
        "accountValue": d(equity.round_dp(6)),
        "totalNtlPos": d(notional),
        "totalRawUsd": d(equity.saturating_sub(signed_notional).round_dp(6)),
        "totalMarginUsed": d(margin_used.round_dp(6)),
    });
    json!({
        "marginSummary": summary,
        "crossMarginSummary": summary,
        "crossMaintenanceMarginUsed": d(maintenance.round_dp(6)),
        "withdrawable": d(available.max(Decimal::ZERO).round_dp(6)),
        "assetPositions": positions,
        "time": time_ms,
    })
}

/// The ground truth of an accepted order.
pub fn order_log(order: &OrderRecord, coin: &str) -> Value {
    let mut line = Map::new();
    line.insert("type".into(), json!("order"));
    line.insert("oid".into(), json!(order.oid));
    line.insert("cloid".into(), order.cloid.map_or(Value::Null, |c| json!(cloid_to_wire(&c))));
    line.insert("coin".into(), json!(coin));
    line.insert("side".into(), json!(side(order.side)));
    line.insert("px".into(), json!(d(order.limit_px)));
    line.insert("sz".into(), json!(d(order.orig_sz)));
    line.insert("orderType".into(), json!(order_type(order)));
    line.insert("tif".into(), tif(order));
    line.insert("triggerPx".into(), order.trigger_px.map_or(Value::Null, |p| json!(d(p))));
    line.insert("reduceOnly".into(), json!(order.reduce_only));
    line.insert("time".into(), json!(order.timestamp_ms));
    Value::Object(line)
}

/// The ground truth of a fill.
pub fn fill_log(fill: &FillRecord, coin: &str) -> Value {
    json!({
        "type": "fill",
        "oid": fill.oid,
        "cloid": fill.cloid.map_or(Value::Null, |c| json!(cloid_to_wire(&c))),
        "tid": fill.tid,
        "coin": coin,
        "side": side(fill.side),
        "px": d(fill.px),
        "sz": d(fill.sz),
        "fee": d(fill.fee),
        "crossed": fill.crossed,
        "dir": fill.dir,
        "closedPnl": d(fill.closed_pnl),
        "time": fill.time_ms,
    })
}
