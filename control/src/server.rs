//! The HTTP surface: routes, the bearer-token rule, limits and JSON errors.
//!
//! Read-only by construction: every route is a GET that locks the arena for reading, copies
//! out what it shows and lets go. No CORS layer: browsers keep other origins' pages from
//! reading the answers. Request bodies are capped (no route reads one) and every request has
//! a deadline.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{rejection::QueryRejection, Path, Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use crate::{
    api,
    arena::{Arena, Shared},
    metrics::Metrics,
};

/// The environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "QUANTFOLD_API_TOKEN";
/// Tokens shorter than this are refused: a guessable token is no protection.
pub const TOKEN_LEN_MIN: usize = 16;
const BODY_BYTES_MAX: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server will not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{addr} is not a loopback address: set {TOKEN_ENV} to a bearer token (at least {TOKEN_LEN_MIN} characters) to serve it")]
    TokenRequired { addr: SocketAddr },
    #[error("{TOKEN_ENV} is shorter than {TOKEN_LEN_MIN} characters")]
    TokenTooShort,
}

/// The token rule: loopback needs none; any other address needs one. A token given is
/// always enforced.
///
/// # Errors
/// A non-loopback address without a token, or a token too short.
pub fn check_token(addr: SocketAddr, token: Option<&str>) -> Result<Option<Arc<[u8]>>, ConfigError> {
    match token.filter(|t| !t.is_empty()) {
        Some(t) if t.len() < TOKEN_LEN_MIN => Err(ConfigError::TokenTooShort),
        Some(t) => Ok(Some(Arc::from(t.as_bytes()))),
        None if addr.ip().is_loopback() => Ok(None),
        None => Err(ConfigError::TokenRequired { addr }),
    }
}

#[derive(Clone)]
struct AppState {
    shared: Shared,
    metrics: Arc<Metrics>,
}

/// An error answer: `{"error": {"status": 404, "message": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "status": self.status.as_u16(), "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// `limit`: 1..=1000, `default` when absent.
fn limit(params: &Params, default: usize) -> Result<usize, ApiError> {
    let params = params.as_ref().map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let Some(text) = params.get("limit") else { return Ok(default) };
    match text.parse::<usize>() {
        Ok(n) if (1..=api::LIMIT_MAX).contains(&n) => Ok(n),
        Ok(n) => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit {n} is outside 1..={}", api::LIMIT_MAX))),
        Err(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit {text:?} is not a whole number"))),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Builds the router over `shared`; `token`, when set, guards everything but `/`, its
/// assets, `/healthz` and `/readyz` (none of which show data).
pub fn router(shared: Shared, metrics: Arc<Metrics>, token: Option<Arc<[u8]>>) -> Router {
    let app = AppState { shared, metrics };
    let guarded = Router::new()
        .route("/api/account-totals", get(account_totals))
        .route("/api/analytics", get(analytics))
        .route("/api/analytics/{model_id}", get(model_analytics))
        .route("/api/crypto-prices", get(|s: State<AppState>| nof0(s, api::crypto_prices)))
        .route("/api/leaderboard", get(|s: State<AppState>| nof0(s, api::leaderboard)))
        .route("/api/since-inception-values", get(|s: State<AppState>| nof0(s, api::since_inception)))
        .route("/api/trades", get(trades))
        .route("/api/positions", get(positions))
        .route("/api/conversations", get(conversations))
        .route("/api/traders/{id}/equity", get(trader_equity))
        .route("/api/traders/{id}/orders", get(trader_orders))
        .route("/api/traders/{id}/fills", get(trader_fills))
        .route("/api/journal", get(|s: State<AppState>| nof0(s, api::journal)))
        .route("/metrics", get(metrics_text))
        .layer(middleware::from_fn_with_state(token, require_token));
    Router::new()
        .route("/", get(crate::dashboard::page))
        .route("/assets/dashboard.js", get(crate::dashboard::script))
        .route("/assets/dashboard.css", get(crate::dashboard::style))
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "read-only: only GET is served")
        })
        .layer(RequestBodyLimitLayer::new(BODY_BYTES_MAX))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .with_state(app)
}

async fn require_token(State(token): State<Option<Arc<[u8]>>>, request: Request, next: Next) -> Response {
    let Some(token) = token else { return next.run(request).await };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::as_bytes);
    // Constant time over the bytes (a length mismatch is still told apart, which reveals
    // only the length).
    let ok = given.is_some_and(|g| bool::from(g.ct_eq(&token)));
    if ok {
        return next.run(request).await;
    }
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is required").into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn nof0(State(app): State<AppState>, build: fn(&Arena, i64) -> Value) -> Json<Value> {
    Json(build(&app.shared.read(), now_ms()))
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.shared.read().ready {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "still folding the journal").into_response()
    }
}

async fn account_totals(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let params = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let marker = match params.get("lastHourlyMarker") {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("lastHourlyMarker {text:?} is not a whole number"))
        })?),
    };
    Ok(Json(api::account_totals(&app.shared.read(), marker, now_ms())))
}

async fn analytics(State(app): State<AppState>) -> Json<Value> {
    Json(api::analytics(&app.shared.read(), now_ms()))
}

fn unknown_trader(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no trader {id:?}"))
}

async fn model_analytics(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let arena = app.shared.read();
    let (id, name, replica) = arena.trader(&id).ok_or_else(|| unknown_trader(&id))?;
    Ok(Json(json!({ "analytics": api::model_analytics(&id, name, replica), "serverTime": now_ms() })))
}

/// An answer already written as JSON text.
fn json_text(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn trades(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let limit = limit(&params, 100)?;
    let text = api::trades(&app.shared.read(), limit, now_ms());
    Ok(json_text(text))
}

async fn positions(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let limit = limit(&params, api::LIMIT_MAX)?;
    Ok(Json(api::positions(&app.shared.read(), limit, now_ms())))
}

async fn conversations(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let limit = limit(&params, 100)?;
    Ok(Json(api::conversations(&app.shared.read(), limit, now_ms())))
}

type TraderView = fn(&str, &str, &crate::replica::Replica, usize, i64) -> Value;

fn per_trader(
    app: &AppState,
    id: &str,
    params: &Params,
    default: usize,
    view: TraderView,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(params, default)?;
    let arena = app.shared.read();
    let (id, name, replica) = arena.trader(id).ok_or_else(|| unknown_trader(id))?;
    Ok(Json(view(&id, name, replica, limit, now_ms())))
}

async fn trader_equity(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let whole = match params.as_ref().ok().and_then(|p| p.get("span").cloned()).as_deref() {
        None | Some("latest") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("span {other:?} is neither \"all\" nor \"latest\""),
            ))
        }
    };
    let limit = limit(&params, api::LIMIT_MAX)?;
    let arena = app.shared.read();
    let (id, name, replica) = arena.trader(&id).ok_or_else(|| unknown_trader(&id))?;
    let text = api::equity(&id, name, replica, limit, whole, now_ms());
    Ok(json_text(text))
}

async fn trader_orders(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    per_trader(&app, &id, &params, 100, api::orders)
}

async fn trader_fills(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = limit(&params, 100)?;
    let arena = app.shared.read();
    let (id, name, replica) = arena.trader(&id).ok_or_else(|| unknown_trader(&id))?;
    let text = api::fills(&id, name, replica, limit, now_ms());
    Ok(json_text(text))
}

async fn metrics_text(State(app): State<AppState>) -> Response {
    match app.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics failed to render").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_rule() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let v6_loopback: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let long = "0123456789abcdef";
        assert!(matches!(check_token(loopback, None), Ok(None)));
        assert!(matches!(check_token(v6_loopback, Some("")), Ok(None)), "an empty variable is no token");
        assert!(matches!(check_token(any, None), Err(ConfigError::TokenRequired { .. })));
        assert!(matches!(check_token(any, Some("short")), Err(ConfigError::TokenTooShort)));
        assert!(matches!(check_token(loopback, Some("short")), Err(ConfigError::TokenTooShort)));
        assert_eq!(check_token(any, Some(long)).unwrap().as_deref(), Some(long.as_bytes()));
        let message = check_token(any, None).unwrap_err().to_string();
        assert!(message.contains(TOKEN_ENV), "{message}");
    }
}
