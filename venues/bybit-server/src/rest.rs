//! The REST endpoints (VENUES.md §1): one handler that routes by path, so that the faults,
//! authentication and rate limits wrap every endpoint the same way.
//!
//! Every answer is the v5 envelope `{retCode, retMsg, result, retExtInfo, time}` with HTTP 200,
//! except an unknown path (404, retCode 10017) and the `http_5xx` fault (502/503, no JSON).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::{
    auth,
    error::ApiError,
    faults::Fault,
    market::{interval_name, kline_row},
    ratelimit::Verdict,
    server::{until_stopped, wall_ms, Shared},
    views::{self, d},
    ws,
};

/// How long a `late_ack` create waits before answering.
const LATE_ACK: Duration = Duration::from_millis(200);
/// How long a `lose_response` request hangs: past any client's timeout.
const LOST_RESPONSE_HANG: Duration = Duration::from_secs(300);
/// `/v5/market/kline`'s limits.
const KLINE_LIMIT_DEFAULT: usize = 200;
const KLINE_LIMIT_MAX: usize = 1000;

/// Query parameters, decoded.
type Query = BTreeMap<String, String>;

/// The whole HTTP surface: REST on every path but the two WebSocket ones.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v5/public/linear", get(ws::public))
        .route("/v5/private", get(ws::private))
        .fallback(rest)
        .with_state(shared)
}

/// The envelope with HTTP 200.
fn envelope(shared: &Shared, result: Result<Value, ApiError>) -> Response {
    let (code, message, result) = match result {
        Ok(result) => (0, "OK".to_owned(), result),
        Err(e) => (e.code, e.message, json!({})),
    };
    let body = json!({
        "retCode": code,
        "retMsg": message,
        "result": result,
        "retExtInfo": {},
        "time": shared.auth_now_ms(),
    });
    let mut response = axum::Json(body).into_response();
    if let Ok(now) = HeaderValue::from_str(&shared.auth_now_ms().to_string()) {
        response.headers_mut().insert("Timenow", now);
    }
    response
}

fn with_limit_headers(mut response: Response, verdict: &Verdict) -> Response {
    let headers = response.headers_mut();
    let pairs = [
        ("X-Bapi-Limit", verdict.limit.to_string()),
        ("X-Bapi-Limit-Status", verdict.remaining.to_string()),
        ("X-Bapi-Limit-Reset-Timestamp", verdict.reset_ms.to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Every REST request.
async fn rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let raw_query = uri.query().unwrap_or("").to_owned();
    let known = is_public(&path) || is_private(&path).is_some();
    if known && shared.dice().roll(Fault::Http5xx) {
        // The gateway failed before the exchange saw anything.
        let status =
            if shared.dice().coin(Fault::Http5xx) { StatusCode::BAD_GATEWAY } else { StatusCode::SERVICE_UNAVAILABLE };
        let text = format!(
            "<html><body><h1>{} {}</h1></body></html>",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        return (status, [("content-type", "text/html")], text).into_response();
    }
    let query = parse_query(&raw_query);
    if is_public(&path) {
        if method != Method::GET {
            return not_found(&shared);
        }
        return envelope(&shared, public(&shared, &path, &query));
    }
    let Some(expected) = is_private(&path) else { return not_found(&shared) };
    if method != expected {
        return not_found(&shared);
    }
    let auth_headers = auth::Headers {
        api_key: header(&headers, "x-bapi-api-key"),
        timestamp: header(&headers, "x-bapi-timestamp"),
        sign: header(&headers, "x-bapi-sign"),
        recv_window: header(&headers, "x-bapi-recv-window"),
    };
    let payload: &[u8] = if method == Method::GET { raw_query.as_bytes() } else { &body };
    let config = &shared.config;
    if let Err(e) = auth::check_rest(&auth_headers, payload, &config.api_key, &config.api_secret, shared.auth_now_ms())
    {
        return envelope(&shared, Err(e));
    }
    let verdict = shared.limits().check(&path, wall_ms());
    if !verdict.allowed {
        return with_limit_headers(envelope(&shared, Err(ApiError::new(10006, "Too many visits!"))), &verdict);
    }
    let result = if method == Method::POST {
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) => private_post(&shared, &path, &body),
            Err(e) => Err(ApiError::params(format!("params error: the body is not valid JSON ({e})"))),
        }
    } else {
        private_get(&shared, &path, &query)
    };
    let carried_out = result.is_ok();
    let response = with_limit_headers(envelope(&shared, result), &verdict);
    let order_entry = path == "/v5/order/create" || path == "/v5/order/cancel";
    if order_entry && carried_out && shared.dice().roll(Fault::LoseResponse) {
        // Done, but the answer never comes: hang until the client gives up (or the server stops).
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(LOST_RESPONSE_HANG) => {}
            () = until_stopped(&mut shutdown) => {}
        }
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    if path == "/v5/order/create" && carried_out && shared.dice().roll(Fault::LateAck) {
        // The WebSocket messages are already out; the REST answer trails them.
        tokio::time::sleep(LATE_ACK).await;
    }
    response
}

fn not_found(shared: &Shared) -> Response {
    let mut response = envelope(shared, Err(ApiError::new(10017, "route not found")));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_public(path: &str) -> bool {
    matches!(path, "/v5/market/time" | "/v5/market/kline" | "/v5/market/instruments-info" | "/v5/market/tickers")
}

/// The method of a private endpoint.
fn is_private(path: &str) -> Option<Method> {
    match path {
        "/v5/order/create" | "/v5/order/cancel" | "/v5/position/set-leverage" => Some(Method::POST),
        "/v5/order/realtime"
        | "/v5/order/history"
        | "/v5/execution/list"
        | "/v5/position/list"
        | "/v5/account/wallet-balance"
        | "/v5/account/fee-rate" => Some(Method::GET),
        _ => None,
    }
}

/// `a=1&b=x%20y` decoded (`+` is a space); a malformed escape is kept as it is.
pub fn parse_query(query: &str) -> Query {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn require_linear(query: &Query) -> Result<(), ApiError> {
    match param(query, "category") {
        Some("linear") => Ok(()),
        Some(other) => {
            Err(ApiError::params(format!("params error: category {other:?} is not served here (linear only)")))
        }
        None => Err(ApiError::params("params error: category is required")),
    }
}

fn int_param(query: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    param(query, name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| ApiError::params(format!("params error: {name} {v:?} is not an integer")))
        })
        .transpose()
}

fn limit_param(query: &Query, default: usize, max: usize) -> Result<usize, ApiError> {
    match int_param(query, "limit")? {
        None => Ok(default),
        Some(n) if n >= 1 && n <= max as i64 => Ok(n as usize),
        Some(n) => Err(ApiError::params(format!("params error: limit {n} is out of range [1, {max}]"))),
    }
}

/// The `cursor` of a page: the number of the last item of the page before.
fn cursor_param(query: &Query) -> Result<Option<u64>, ApiError> {
    param(query, "cursor")
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::params(format!("params error: cursor {v:?} is invalid"))))
        .transpose()
}

fn public(shared: &Shared, path: &str, query: &Query) -> Result<Value, ApiError> {
    let exchange = shared.exchange();
    let market = &exchange.market;
    match path {
        "/v5/market/time" => {
            let now_ms = shared.auth_now_ms();
            Ok(
                json!({"timeSecond": (now_ms / 1000).to_string(), "timeNano": (i128::from(now_ms) * 1_000_000).to_string()}),
            )
        }
        "/v5/market/kline" => {
            if let Some(category) = param(query, "category") {
                if category != "linear" {
                    return Err(ApiError::params(format!("params error: category {category:?} is not served here")));
                }
            }
            let symbol = param(query, "symbol").ok_or_else(|| ApiError::params("params error: symbol is required"))?;
            if symbol != market.symbol {
                return Err(ApiError::params("Not supported symbols"));
            }
            let interval =
                param(query, "interval").ok_or_else(|| ApiError::params("params error: interval is required"))?;
            if interval != interval_name(market.interval_ms) {
                return Err(ApiError::params("Invalid period!"));
            }
            let start = int_param(query, "start")?.unwrap_or(i64::MIN);
            let end = int_param(query, "end")?.unwrap_or(i64::MAX);
            let limit = limit_param(query, KLINE_LIMIT_DEFAULT, KLINE_LIMIT_MAX)?;
            let list: Vec<Value> = market
                .closed()
                .iter()
                .rev()
                .filter(|b| b.open_time_ms >= start && b.open_time_ms <= end)
                .take(limit)
                .map(kline_row)
                .collect();
            Ok(json!({"symbol": market.symbol, "category": "linear", "list": list}))
        }
        "/v5/market/instruments-info" => {
            require_linear(query)?;
            let i = &exchange.account.instrument;
            let list = if param(query, "symbol").is_some_and(|s| s != market.symbol) {
                vec![]
            } else {
                let base = market.symbol.strip_suffix("USDT").unwrap_or(&market.symbol);
                vec![json!({
                    "symbol": market.symbol,
                    "contractType": "LinearPerpetual",
                    "status": "Trading",
                    "baseCoin": base,
                    "quoteCoin": "USDT",
                    "launchTime": market.all()[0].open_time_ms.to_string(),
                    "deliveryTime": "0",
                    "deliveryFeeRate": "",
                    "priceScale": i.tick_size.normalize().scale().to_string(),
                    "leverageFilter": {"minLeverage": "1", "maxLeverage": d(i.max_leverage), "leverageStep": "0.01"},
                    "priceFilter": {"minPrice": d(i.tick_size), "maxPrice": "1999999.8", "tickSize": d(i.tick_size)},
                    "lotSizeFilter": {
                        "maxOrderQty": "1000000",
                        "minOrderQty": d(i.min_qty),
                        "qtyStep": d(i.qty_step),
                        "postOnlyMaxOrderQty": "1000000",
                        "maxMktOrderQty": "1000000",
                        "minNotionalValue": d(shared.config.min_notional),
                    },
                    "unifiedMarginTrade": true,
                    "fundingInterval": 480,
                    "settleCoin": "USDT",
                    "copyTrading": "none",
                    "upperFundingRate": "0.00375",
                    "lowerFundingRate": "-0.00375",
                    "isPreListing": false,
                    "preListingInfo": null,
                    "displayName": "",
                })]
            };
            Ok(json!({"category": "linear", "list": list, "nextPageCursor": ""}))
        }
        "/v5/market/tickers" => {
            require_linear(query)?;
            let list = if param(query, "symbol").is_some_and(|s| s != market.symbol) {
                vec![]
            } else {
                let last = d(market.last_price());
                let day = market
                    .closed()
                    .iter()
                    .rev()
                    .take(1440usize.div_ceil((market.interval_ms / 60_000).max(1) as usize));
                let (mut high, mut low, mut volume) = (market.last_price(), market.last_price(), Decimal::ZERO);
                for bar in day {
                    high = high.max(bar.high);
                    low = low.min(bar.low);
                    volume += bar.volume;
                }
                vec![json!({
                    "symbol": market.symbol,
                    "lastPrice": last,
                    "indexPrice": last,
                    "markPrice": last,
                    "prevPrice24h": last,
                    "price24hPcnt": "0",
                    "highPrice24h": d(high),
                    "lowPrice24h": d(low),
                    "prevPrice1h": last,
                    "openInterest": "0",
                    "openInterestValue": "0",
                    "turnover24h": "0",
                    "volume24h": d(volume),
                    "fundingRate": "0",
                    "nextFundingTime": "0",
                    "predictedDeliveryPrice": "",
                    "basisRate": "",
                    "deliveryFeeRate": "",
                    "deliveryTime": "0",
                    "ask1Size": "0",
                    "bid1Price": last,
                    "ask1Price": last,
                    "bid1Size": "0",
                    "basis": "",
                })]
            };
            Ok(json!({"category": "linear", "list": list}))
        }
        _ => Err(ApiError::new(10017, "route not found")),
    }
}

fn private_post(shared: &Shared, path: &str, body: &Value) -> Result<Value, ApiError> {
    let mut guard = shared.exchange();
    let exchange = &mut *guard;
    match path {
        "/v5/order/create" | "/v5/order/cancel" => {
            let outcome = if path == "/v5/order/create" {
                exchange.account.create(body, &exchange.market)?
            } else {
                exchange.account.cancel(body, &exchange.market)?
            };
            shared.publish(exchange, outcome.pushes);
            Ok(json!({"orderId": outcome.order.order_id, "orderLinkId": outcome.order.link_id}))
        }
        "/v5/position/set-leverage" => {
            let pushes = exchange.account.set_leverage(body)?;
            shared.publish(exchange, pushes);
            Ok(json!({}))
        }
        _ => Err(ApiError::new(10017, "route not found")),
    }
}

/// `symbol` or `settleCoin`, as linear queries require; `false` when the symbol is not ours.
fn symbol_matches(query: &Query, symbol: &str) -> Result<bool, ApiError> {
    match (param(query, "symbol"), param(query, "settleCoin"), param(query, "baseCoin")) {
        (Some(s), _, _) => Ok(s == symbol),
        (None, Some(coin), _) => Ok(coin == "USDT"),
        (None, None, Some(coin)) => Ok(symbol.strip_suffix("USDT") == Some(coin)),
        (None, None, None) => {
            Err(ApiError::params("Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"))
        }
    }
}

/// A page of newest-first items numbered by `number`: at most `limit` after the cursor, and the
/// next cursor ("" on the last page).
fn page<T>(items: Vec<T>, number: impl Fn(&T) -> u64, cursor: Option<u64>, limit: usize) -> (Vec<T>, String) {
    let mut rest: Vec<T> = items.into_iter().filter(|i| cursor.is_none_or(|c| number(i) < c)).collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next = if more { rest.last().map_or_else(String::new, |i| number(i).to_string()) } else { String::new() };
    (rest, next)
}

fn private_get(shared: &Shared, path: &str, query: &Query) -> Result<Value, ApiError> {
    let exchange = shared.exchange();
    let account = &exchange.account;
    let symbol = account.symbol.as_str();
    match path {
        "/v5/order/realtime" | "/v5/order/history" => {
            require_linear(query)?;
            let realtime = path == "/v5/order/realtime";
            let ours = if realtime {
                symbol_matches(query, symbol)?
            } else {
                param(query, "symbol").is_none_or(|s| s == symbol)
            };
            let limit = limit_param(query, 20, 50)?;
            let cursor = cursor_param(query)?;
            let order_id = param(query, "orderId").unwrap_or("");
            let link_id = param(query, "orderLinkId").unwrap_or("");
            let open_only = int_param(query, "openOnly")?.unwrap_or(0);
            let start = int_param(query, "startTime")?.unwrap_or(i64::MIN);
            let end = int_param(query, "endTime")?.unwrap_or(i64::MAX);
            let status = param(query, "orderStatus");
            let orders: Vec<_> = if !ours {
                vec![]
            } else if !order_id.is_empty() || !link_id.is_empty() {
                // By id Bybit answers for the order whatever its state (recent orders).
                account.find(order_id, link_id).into_iter().collect()
            } else if realtime {
                account.orders_newest_first().filter(|o| o.status.is_open() == (open_only == 0)).take(500).collect()
            } else {
                account
                    .orders_newest_first()
                    .filter(|o| o.created_ms >= start && o.created_ms <= end)
                    .filter(|o| status.is_none_or(|s| s == o.status.name()))
                    .collect()
            };
            let (orders, next) = page(orders, |o| o.number, cursor, limit);
            let list: Vec<Value> = orders.iter().map(|o| views::order(o, symbol, false)).collect();
            Ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
        }
        "/v5/execution/list" => {
            require_linear(query)?;
            let ours = param(query, "symbol").is_none_or(|s| s == symbol);
            let limit = limit_param(query, 50, 100)?;
            let cursor = cursor_param(query)?;
            let start = int_param(query, "startTime")?.unwrap_or(i64::MIN);
            let end = int_param(query, "endTime")?.unwrap_or(i64::MAX);
            // Bybit's widest range. (Without one, Bybit answers for the last 7 days; this
            // market runs on its own clock, so it answers for all it has.)
            if start != i64::MIN && end != i64::MAX && end.saturating_sub(start) > 7 * 86_400_000 {
                return Err(ApiError::params("The time range between startTime and endTime cannot exceed 7 days"));
            }
            let order_id = param(query, "orderId");
            let link_id = param(query, "orderLinkId");
            let exec_type = param(query, "execType");
            let executions: Vec<_> = account
                .executions_newest_first()
                .filter(|_| ours)
                .filter(|e| e.exec_ms >= start && e.exec_ms <= end)
                .filter(|e| order_id.is_none_or(|id| id == e.order_id))
                .filter(|e| link_id.is_none_or(|id| id == e.link_id))
                .filter(|e| exec_type.is_none_or(|t| t == e.exec_type))
                .collect();
            let (executions, next) = page(executions, |e| e.seq, cursor, limit);
            let list: Vec<Value> = executions.iter().map(|e| views::execution(e, symbol, false)).collect();
            Ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
        }
        "/v5/position/list" => {
            require_linear(query)?;
            let list = if symbol_matches(query, symbol)? { vec![views::position(account, false)] } else { vec![] };
            Ok(json!({"category": "linear", "list": list, "nextPageCursor": ""}))
        }
        "/v5/account/wallet-balance" => {
            match param(query, "accountType") {
                Some("UNIFIED") => {}
                Some(other) => {
                    return Err(ApiError::params(format!("accountType only support UNIFIED, not {other:?}")))
                }
                None => return Err(ApiError::params("params error: accountType is required")),
            }
            Ok(json!({"list": [views::wallet(account)]}))
        }
        "/v5/account/fee-rate" => {
            let list = if param(query, "symbol").is_none_or(|s| s == symbol) {
                vec![json!({
                    "symbol": symbol,
                    "takerFeeRate": d(account.instrument.taker_fee_rate),
                    "makerFeeRate": d(account.instrument.maker_fee_rate),
                })]
            } else {
                vec![]
            };
            Ok(json!({"list": list}))
        }
        _ => Err(ApiError::new(10017, "route not found")),
    }
}
