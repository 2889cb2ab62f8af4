//! The HTTP endpoints (VENUES.md §3.2–3.3, 3.7): `POST /info`, `POST /exchange`, and `/ws`.
//!
//! Answers are the venue's: `/info` answers the bare JSON of each request type; `/exchange`
//! answers `{"status": "ok", "response": {...}}` or `{"status": "err", "response": "text"}`,
//! both with HTTP 200. A body that is not JSON is HTTP 400 and one that is JSON but not a
//! request is HTTP 422, each with the plain-text message of the venue's HTTP framework; an
//! IP over its weight budget gets HTTP 429; the `http_5xx` fault a 502 or 503 HTML page.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use hyperliquid::{
    types::{Action, OrderType, Tif},
    wire::{cloid_to_wire, parse_cloid, to_wire},
    Address, ExchangeRequest,
};
use journal::event::Cloid;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    account::text,
    faults::Fault,
    ratelimit::{info_extra_weight, info_weight},
    server::{until_stopped, Shared},
    views, ws,
};

/// How long a `late_ack` order waits before answering.
const LATE_ACK: Duration = Duration::from_millis(200);
/// How long a `lose_response` request hangs: past any client's timeout.
const LOST_RESPONSE_HANG: Duration = Duration::from_secs(300);
/// The most fills `userFills` and `userFillsByTime` answer.
const FILLS_MAX: usize = 2000;
/// The most candles `candleSnapshot` answers.
const CANDLES_MAX: usize = 5000;
/// How far ahead a scheduled cancel must be (the docs: at least 5 s).
const SCHEDULE_CANCEL_AHEAD_MS: i64 = 5000;

/// The whole HTTP surface.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/info", post(info))
        .route("/exchange", post(exchange))
        .route("/ws", get(ws::upgrade))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found") })
        .with_state(shared)
}

/// A refusal before the request reached the exchange: a status and a plain-text body.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    text: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, [("content-type", "text/plain; charset=utf-8")], self.text).into_response()
    }
}

fn plain(status: StatusCode, text: String) -> Refusal {
    Refusal { status, text }
}

/// The body's JSON, or the framework's refusal (400: not JSON; 422 is the caller's, for JSON
/// that is not a request).
fn parse_body(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| plain(StatusCode::BAD_REQUEST, format!("Failed to parse the request body as JSON: {e}")))
}

fn unprocessable(detail: impl std::fmt::Display) -> Refusal {
    plain(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("Failed to deserialize the JSON body into the target type: {detail}"),
    )
}

/// The `http_5xx` fault: the gateway failed before the exchange saw anything.
fn gateway_failure(shared: &Shared) -> Option<Response> {
    if !shared.dice().roll(Fault::Http5xx) {
        return None;
    }
    let status =
        if shared.dice().coin(Fault::Http5xx) { StatusCode::BAD_GATEWAY } else { StatusCode::SERVICE_UNAVAILABLE };
    let text =
        format!("<html><body><h1>{} {}</h1></body></html>", status.as_u16(), status.canonical_reason().unwrap_or(""));
    Some((status, [("content-type", "text/html")], text).into_response())
}

fn too_many_requests() -> Refusal {
    plain(StatusCode::TOO_MANY_REQUESTS, "Too many requests: the IP's weight budget of this minute is spent".into())
}

// ---------------------------------------------------------------------------------------
// /info

async fn info(State(shared): State<Arc<Shared>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if let Some(failure) = gateway_failure(&shared) {
        return failure;
    }
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(kind) = request.get("type").and_then(Value::as_str).map(str::to_owned) else {
        return unprocessable("missing field `type`").into_response();
    };
    if !shared.budget().try_spend(peer.ip(), info_weight(&kind), shared.now_ms()) {
        return too_many_requests().into_response();
    }
    match answer_info(&shared, &kind, &request) {
        Ok(answer) => {
            let items = answer.as_array().map_or(0, Vec::len);
            shared.budget().charge(peer.ip(), info_extra_weight(&kind, items), shared.now_ms());
            axum::Json(answer).into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `user`: one of the accepted wallets (`Some(true)`), another address (`Some(false)`: the
/// venue answers an unknown user with empty data), or a refusal.
fn user_of(shared: &Shared, request: &Value) -> Result<bool, Refusal> {
    let text = request.get("user").and_then(Value::as_str).ok_or_else(|| unprocessable("missing field `user`"))?;
    let address = Address::parse(text).map_err(unprocessable)?;
    Ok(shared.config.wallets.contains(&address))
}

fn u64_field(request: &Value, name: &str) -> Result<Option<u64>, Refusal> {
    match request.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| unprocessable(format!("invalid type for `{name}`"))),
    }
}

fn answer_info(shared: &Shared, kind: &str, request: &Value) -> Result<Value, Refusal> {
    let exchange = shared.exchange();
    let account = &exchange.account;
    let market = &exchange.market;
    let coin = account.coin.as_str();
    let answer = match kind {
        "meta" => views::meta(account),
        "spotMeta" => views::spot_meta(),
        "metaAndAssetCtxs" => {
            let day = usize::try_from(86_400_000 / market.interval_ms.max(1)).unwrap_or(1).max(1);
            let closed = market.closed();
            let recent = &closed[closed.len().saturating_sub(day)..];
            let previous = recent.first().map_or_else(|| market.last_price(), |b| b.open);
            let volume =
                recent.iter().fold(Decimal::ZERO, |sum, b| sum.saturating_add(b.volume.saturating_mul(b.close)));
            json!([views::meta(account), [views::asset_ctx(market.last_price(), previous, volume)]])
        }
        "allMids" => json!({ coin: to_wire(market.last_price()) }),
        "clearinghouseState" => {
            if user_of(shared, request)? {
                views::clearinghouse(account, market.last_price(), shared.now_ms())
            } else {
                json!({
                    "marginSummary": {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"},
                    "crossMarginSummary": {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"},
                    "crossMaintenanceMarginUsed": "0.0",
                    "withdrawable": "0.0",
                    "assetPositions": [],
                    "time": shared.now_ms(),
                })
            }
        }
        "openOrders" | "frontendOpenOrders" => {
            let ours = user_of(shared, request)?;
            let frontend = kind == "frontendOpenOrders";
            // Newest first, as the venue lists them.
            let orders: Vec<Value> = account
                .open_orders()
                .filter(|_| ours)
                .map(|o| if frontend { views::frontend_order(o, coin) } else { views::open_order(o, coin) })
                .collect();
            Value::Array(orders.into_iter().rev().collect())
        }
        "userFills" => {
            let ours = user_of(shared, request)?;
            let fills = account.fills().iter().rev().filter(|_| ours).take(FILLS_MAX).map(|f| views::fill(f, coin));
            Value::Array(fills.collect())
        }
        "userFillsByTime" => {
            let ours = user_of(shared, request)?;
            let start = u64_field(request, "startTime")?.ok_or_else(|| unprocessable("missing field `startTime`"))?;
            let end = u64_field(request, "endTime")?.unwrap_or(u64::MAX);
            let fills = account
                .fills()
                .iter()
                .filter(|_| ours)
                .filter(|f| u64::try_from(f.time_ms).is_ok_and(|t| t >= start && t <= end))
                .take(FILLS_MAX)
                .map(|f| views::fill(f, coin));
            Value::Array(fills.collect())
        }
        "orderStatus" => {
            let ours = user_of(shared, request)?;
            let order = match request.get("oid") {
                Some(Value::Number(n)) => {
                    let oid = n.as_u64().ok_or_else(|| unprocessable("invalid type for `oid`"))?;
                    account.order(oid)
                }
                Some(Value::String(text)) => {
                    let cloid: Cloid = parse_cloid(text).map_err(unprocessable)?;
                    account.order_by_cloid(&cloid)
                }
                _ => return Err(unprocessable("missing field `oid`")),
            };
            match order.filter(|_| ours) {
                Some(order) => views::order_status(order, coin),
                None => json!({"status": "unknownOid"}),
            }
        }
        "candleSnapshot" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Req {
                coin: String,
                interval: String,
                start_time: u64,
                end_time: Option<u64>,
            }
            let req = request.get("req").cloned().ok_or_else(|| unprocessable("missing field `req`"))?;
            let req = Req::deserialize(req).map_err(unprocessable)?;
            if hyperliquid::types::interval_ms(&req.interval).is_none() && req.interval != "1M" {
                return Err(unprocessable(format!("unknown variant `{}`", req.interval)));
            }
            let end = req.end_time.unwrap_or(u64::MAX);
            let candles: Vec<Value> = if req.coin == coin && req.interval == shared.interval {
                let closed: Vec<_> = market
                    .closed()
                    .iter()
                    .filter(|b| u64::try_from(b.open_time_ms).is_ok_and(|t| t >= req.start_time && t <= end))
                    .collect();
                let skip = closed.len().saturating_sub(CANDLES_MAX);
                closed[skip..].iter().map(|b| views::candle(b, coin, &shared.interval)).collect()
            } else {
                Vec::new()
            };
            Value::Array(candles)
        }
        other => return Err(unprocessable(format!("unknown variant `{other}`"))),
    };
    Ok(answer)
}

// ---------------------------------------------------------------------------------------
// /exchange

fn err(text: impl Into<String>) -> Value {
    json!({"status": "err", "response": text.into()})
}

fn ok_default() -> Value {
    json!({"status": "ok", "response": {"type": "default"}})
}

/// One order's answer: decided at once, or (an `Ioc` order) after the next bar.
enum Pending {
    Now(Value),
    AfterBar(u64, Option<Cloid>),
}

async fn exchange(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    if let Some(failure) = gateway_failure(&shared) {
        return failure;
    }
    let value = match parse_body(&body) {
        Ok(value) => value,
        Err(refusal) => return refusal.into_response(),
    };
    let request = match ExchangeRequest::deserialize(&value) {
        Ok(request) => request,
        Err(e) => return unprocessable(e).into_response(),
    };
    if !shared.budget().try_spend(peer.ip(), request.action.weight(), shared.now_ms()) {
        return too_many_requests().into_response();
    }
    let order_entry = matches!(request.action, Action::Order(_) | Action::Cancel(_) | Action::CancelByCloid(_));
    let (answer, carried_out) = match authenticate(&shared, &request) {
        Err(refusal) => (err(refusal), false),
        Ok(()) => (act(&shared, &request.action).await, true),
    };
    if order_entry && carried_out && shared.dice().roll(Fault::LoseResponse) {
        // Done, but the answer never comes: hang until the client gives up (or the server stops).
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(LOST_RESPONSE_HANG) => {}
            () = until_stopped(&mut shutdown) => {}
        }
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    if matches!(request.action, Action::Order(_)) && carried_out && shared.dice().roll(Fault::LateAck) {
        // The orderUpdates push is already out; the answer trails it.
        tokio::time::sleep(LATE_ACK).await;
    }
    axum::Json(answer).into_response()
}

/// The venue's checks before an action: who signed it (for this server's network), whether
/// that address may act, expiry, and the signer's nonce.
fn authenticate(shared: &Shared, request: &ExchangeRequest) -> Result<(), String> {
    let signer = request.recover_signer(shared.config.network).map_err(|_| "Unable to recover signer.".to_owned())?;
    if !shared.config.wallets.contains(&signer) {
        // A signature over other bytes (another network's agent, a changed action, another
        // key) recovers another address: that is how the venue sees every signing mistake.
        return Err(format!("User or API Wallet {signer} does not exist."));
    }
    if let Some(vault) = request.vault_address {
        return Err(format!("Vault not registered: {vault}"));
    }
    let now_ms = shared.now_ms();
    if request.expires_after.is_some_and(|at| i128::from(at) < i128::from(now_ms)) {
        return Err("Action already expired".into());
    }
    shared.nonces().spend(signer, request.nonce, now_ms)
}

async fn act(shared: &Arc<Shared>, action: &Action) -> Value {
    match action {
        Action::Order(order) => {
            if order.orders.is_empty() {
                return err("Order batch is empty.");
            }
            let (pending, target) = {
                let mut guard = shared.exchange();
                let exchange = &mut *guard;
                shared.check_scheduled_cancel(exchange);
                let ended = exchange.market.current().is_none();
                let mut pending = Vec::with_capacity(order.orders.len());
                for wire in &order.orders {
                    let ioc = matches!(&wire.order_type, OrderType::Limit(limit) if limit.tif == Tif::Ioc);
                    pending.push(match exchange.account.place(wire, &exchange.market) {
                        Err(text) => Pending::Now(json!({"error": text})),
                        Ok(oid) if ioc && ended => {
                            // No bar will come to meet it.
                            exchange.account.reject_ioc(oid, &exchange.market);
                            Pending::Now(json!({"error": text::IOC_NO_MATCH}))
                        }
                        Ok(oid) if ioc => Pending::AfterBar(oid, wire.cloid),
                        Ok(oid) => Pending::Now(with_cloid(json!({"oid": oid}), wire.cloid, "resting")),
                    });
                }
                shared.publish(exchange, false);
                (pending, *shared.settled.borrow() + 1)
            };
            if pending.iter().any(|p| matches!(p, Pending::AfterBar(..))) {
                // An Ioc order meets the next bar's open: its answer waits for that bar.
                let mut settled = shared.settled.subscribe();
                let mut shutdown = shared.shutdown.clone();
                tokio::select! {
                    _ = settled.wait_for(|n| *n >= target) => {}
                    () = until_stopped(&mut shutdown) => {}
                }
            }
            let exchange = shared.exchange();
            let statuses: Vec<Value> = pending
                .into_iter()
                .map(|p| match p {
                    Pending::Now(status) => status,
                    Pending::AfterBar(oid, cloid) => match exchange.account.order(oid) {
                        Some(o) if !o.filled_sz.is_zero() => {
                            let average = o.filled_value.checked_div(o.filled_sz).unwrap_or_default().round_dp(8);
                            let filled =
                                json!({"totalSz": to_wire(o.filled_sz), "avgPx": to_wire(average), "oid": oid});
                            with_cloid(filled, cloid, "filled")
                        }
                        _ => json!({"error": text::IOC_NO_MATCH}),
                    },
                })
                .collect();
            json!({"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}})
        }
        Action::Cancel(cancel) => {
            let refs: Vec<Result<u64, Cloid>> = cancel.cancels.iter().map(|c| Ok(c.oid)).collect();
            cancels(shared, &refs, cancel.cancels.iter().map(|c| c.asset).collect())
        }
        Action::CancelByCloid(cancel) => {
            let refs: Vec<Result<u64, Cloid>> = cancel.cancels.iter().map(|c| Err(c.cloid)).collect();
            cancels(shared, &refs, cancel.cancels.iter().map(|c| c.asset).collect())
        }
        Action::UpdateLeverage(update) => {
            if update.asset != 0 {
                return err(format!("Invalid asset id {}.", update.asset));
            }
            match shared.exchange().account.update_leverage(update.leverage) {
                Ok(()) => ok_default(),
                Err(text) => err(text),
            }
        }
        Action::ScheduleCancel(schedule) => {
            let now_ms = shared.now_ms();
            let mut exchange = shared.exchange();
            match schedule.time.map(|t| i64::try_from(t).unwrap_or(i64::MAX)) {
                Some(at) if at < now_ms + SCHEDULE_CANCEL_AHEAD_MS => {
                    err("Scheduled cancel time too early, must be at least 5 seconds from now.")
                }
                at => {
                    exchange.account.scheduled_cancel_ms = at;
                    if let Some(at) = at {
                        // The switch fires on time even when no bar closes and nothing is sent;
                        // a later schedule replaces this one (the check reads the latest time).
                        let shared = shared.clone();
                        let wait = Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0));
                        tokio::spawn(async move {
                            let mut shutdown = shared.shutdown.clone();
                            tokio::select! {
                                () = tokio::time::sleep(wait) => {
                                    let mut exchange = shared.exchange();
                                    shared.check_scheduled_cancel(&mut exchange);
                                }
                                () = until_stopped(&mut shutdown) => {}
                            }
                        });
                    }
                    ok_default()
                }
            }
        }
        Action::Noop => ok_default(),
    }
}

/// `{"resting": {"oid", "cloid"?}}` / `{"filled": {...}}`: the cloid is echoed when the order had one.
fn with_cloid(mut inner: Value, cloid: Option<Cloid>, key: &str) -> Value {
    if let (Some(cloid), Some(map)) = (cloid, inner.as_object_mut()) {
        map.insert("cloid".into(), json!(cloid_to_wire(&cloid)));
    }
    json!({ key: inner })
}

/// The answer of a cancel batch: "success" or the venue's error per element.
fn cancels(shared: &Shared, refs: &[Result<u64, Cloid>], assets: Vec<u32>) -> Value {
    if refs.is_empty() {
        return err("Cancel batch is empty.");
    }
    let mut guard = shared.exchange();
    let exchange = &mut *guard;
    let statuses: Vec<Value> = refs
        .iter()
        .zip(assets)
        .map(|(r, asset)| {
            let result = if asset != 0 {
                Err(text::MISSING_ORDER.to_owned())
            } else {
                match r {
                    Ok(oid) => exchange.account.cancel(*oid, &exchange.market),
                    Err(cloid) => exchange.account.cancel_by_cloid(cloid, &exchange.market),
                }
            };
            match result {
                Ok(()) => json!("success"),
                Err(text) => json!({"error": text}),
            }
        })
        .collect();
    shared.publish(exchange, false);
    json!({"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}})
}
