//! Signed REST: one [`Rest`] client for the endpoints the live driver uses.
//!
//! Every request goes through one path (`Rest::call`):
//!
//! 1. **Budget.** Each endpoint class ([`EndpointClass`]) has its own FIFO queue and a
//!    governor pace of one request per `1.1 s / limit` (burst 1), so no rolling one-second
//!    window ever sees more than Bybit's per-UID limit, even with some network jitter; all
//!    classes together also stay under the IP limit (600 per 5 s). The answers' headers
//!    correct the budget: when `X-Bapi-Limit-Status` reaches 0 the class waits until
//!    `X-Bapi-Limit-Reset-Timestamp` before its next request.
//! 2. **Signature.** Private requests carry `X-BAPI-*` headers signed over the exact query
//!    string or body bytes sent, with the server time estimated from `/v5/market/time`.
//! 3. **Envelope.** `retCode` is read before anything in `result`: a rejection is an
//!    [`Error::Api`] whatever else it lacks.
//! 4. **Retries.** 10002 (timestamp outside the window): re-sync the clock, retry once.
//!    10006 (too many visits) and HTTP 429: wait for the reset, retry. HTTP 403 (IP ban):
//!    warn, wait [`RestOptions::ip_ban_wait_ms`], retry. At most
//!    [`RestOptions::max_rate_limit_retries`] rate-limit retries a call.
//!
//! The API secret appears in no log line, error or `Debug` output: error texts are
//! scrubbed of it even if a server echoes it.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use journal::event::{Cloid, Kline, OrderIntent, OrderKind, Side, TimeInForce};
use reqwest::header::HeaderMap;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::types::{self, ParseError};
use crate::{Credentials, Endpoints, Execution, InstrumentInfo, OrderReport, PositionReport, WalletReport};

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct RestOptions {
    /// `X-BAPI-RECV-WINDOW`, ms.
    pub recv_window_ms: u64,
    /// Sign and log requests that change something (create, cancel, set-leverage) without
    /// sending them: they return [`Error::DryRun`]. Reads still go out.
    pub dry_run: bool,
    /// Per-request timeout, ms: a create that times out is ambiguous.
    pub timeout_ms: u64,
    /// How long an HTTP 403 (IP rate limit breached) stops every request, ms. Bybit says
    /// the ban lasts at least 10 minutes.
    pub ip_ban_wait_ms: u64,
    /// Retries of one call after a rate-limit answer (10006, HTTP 429 or 403).
    pub max_rate_limit_retries: u32,
    /// Told of every request's latency and outcome and of rate-limit waits (metrics).
    pub observer: Option<Arc<dyn Observer>>,
}

/// What a driver learns of each request, for its metrics. Endpoints are paths
/// (`/v5/order/create`), codes an HTTP status or a `retCode`: never a message or a query.
pub trait Observer: Send + Sync + fmt::Debug {
    /// One attempt answered (`code` None) or failed (`code`: the HTTP status, the `retCode`,
    /// or "transport"), `took` from sending to the whole body read.
    fn answered(&self, endpoint: &str, took: Duration, code: Option<&str>);
    /// An attempt waited this long for the rate limiter before it was sent.
    fn waited(&self, endpoint: &str, took: Duration);
}

impl Default for RestOptions {
    fn default() -> RestOptions {
        RestOptions {
            recv_window_ms: 5_000,
            dry_run: false,
            timeout_ms: 5_000,
            ip_ban_wait_ms: 600_000,
            max_rate_limit_retries: 3,
            observer: None,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The venue answered with a non-zero `retCode`.
    #[error("bybit error {code}: {message}")]
    Api { code: i64, message: String },
    /// An HTTP status without a v5 envelope (403 rate limit, 5xx, ...).
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The request may or may not have reached the venue (timeout, connection lost).
    #[error("transport: {0}")]
    Transport(String),
    /// An answer that does not parse (or a request this client cannot express).
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// `--dry-run`: signed and logged, not sent.
    #[error("dry run: not sent")]
    DryRun,
    /// A private endpoint without credentials.
    #[error("no API key configured")]
    NoCredentials,
}

impl Error {
    /// The request may have taken effect at the venue: resolve by querying before any re-send.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Http { status, .. } => *status >= 500,
            Error::Api { code, .. } => matches!(code, 10000 | 10016),
            _ => false,
        }
    }

    /// The venue's `retCode`, if it answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<ParseError> for Error {
    fn from(error: ParseError) -> Error {
        Error::Decode(error.0)
    }
}

/// A create the venue took: its order id and the server time of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub order_id: String,
    pub time_ms: i64,
}

/// The venue's clock as seen from here: the local wall clock plus the offset measured by
/// the last [`Rest::sync_time`]. Clones share the offset (the streams use it for `expires`).
#[derive(Clone, Debug, Default)]
pub struct ServerClock {
    offset_ms: Arc<AtomicI64>,
    synced: Arc<AtomicBool>,
}

impl ServerClock {
    /// The server time now, ms (the local clock until the first sync).
    pub fn now_ms(&self) -> i64 {
        local_now_ms() + self.offset_ms()
    }

    /// Server minus local clock, ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Whether a sync has measured the offset.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// Sets server minus local clock, ms: for a driver that learned the venue's time some
    /// other way, and for tests of a drifting local clock.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
        self.synced.store(true, Ordering::Relaxed);
    }
}

fn local_now_ms() -> i64 {
    // The wall clock is an input of this adapter (signatures, server-time estimates), not of
    // the journal: the driver journals the times it gets from here.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A group of endpoints sharing one Bybit rate limit (per UID, rolling second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointClass {
    /// `POST /v5/order/create`: 10/s.
    Create,
    /// `POST /v5/order/cancel`: 10/s.
    Cancel,
    /// `POST /v5/position/set-leverage`: 10/s.
    Leverage,
    /// `GET /v5/order/realtime`, `/v5/order/history`: 50/s.
    Orders,
    /// `GET /v5/execution/list`: 50/s.
    Executions,
    /// `GET /v5/position/list`: 50/s.
    Positions,
    /// `GET /v5/account/wallet-balance`: 50/s.
    Wallet,
    /// `GET /v5/account/fee-rate`: not in Bybit's table; 10/s to be safe.
    FeeRate,
    /// Market endpoints (no UID limit, only the IP one): 50/s.
    Public,
}

impl EndpointClass {
    const ALL: [EndpointClass; 9] = [
        EndpointClass::Create,
        EndpointClass::Cancel,
        EndpointClass::Leverage,
        EndpointClass::Orders,
        EndpointClass::Executions,
        EndpointClass::Positions,
        EndpointClass::Wallet,
        EndpointClass::FeeRate,
        EndpointClass::Public,
    ];

    /// Requests per rolling second.
    pub fn limit_per_s(self) -> u32 {
        match self {
            EndpointClass::Create | EndpointClass::Cancel | EndpointClass::Leverage | EndpointClass::FeeRate => 10,
            EndpointClass::Orders
            | EndpointClass::Executions
            | EndpointClass::Positions
            | EndpointClass::Wallet
            | EndpointClass::Public => 50,
        }
    }

    fn index(self) -> usize {
        EndpointClass::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// One request every `1.1 s / per_period_limit`: never more than the limit in any window of
/// the period, with 10 % to spare for jitter between here and the venue.
fn pace(limit: u32, period: Duration, burst: u32) -> DefaultDirectRateLimiter {
    let interval = period.mul_f64(1.1) / limit.max(1);
    let quota = Quota::with_period(interval.max(Duration::from_micros(1)))
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("burst is at least 1"));
    RateLimiter::direct(quota)
}

/// A class's budget: a FIFO turn, the proactive pace, and the reactive stop from the headers.
struct Budget {
    turn: tokio::sync::Mutex<()>,
    pace: DefaultDirectRateLimiter,
    blocked_until: Mutex<Option<Instant>>,
}

impl Budget {
    fn new(pace: DefaultDirectRateLimiter) -> Budget {
        Budget { turn: tokio::sync::Mutex::new(()), pace, blocked_until: Mutex::new(None) }
    }

    fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut blocked = self.blocked_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocked.is_none_or(|b| b < until) {
            *blocked = Some(until);
        }
    }

    async fn wait_unblocked(&self) {
        loop {
            let until = *self.blocked_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    options: RestOptions,
    clock: ServerClock,
    budgets: Vec<Budget>,
    /// Every request: the IP limit (600 per 5 s) and the stop after an HTTP 403.
    ip: Budget,
}

/// The REST client. Cheap to clone (shared connection pool, clock offset and limits).
#[derive(Clone)]
pub struct Rest {
    inner: Arc<Inner>,
}

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rest")
            .field("base", &self.inner.base)
            .field("credentials", &self.inner.credentials)
            .field("options", &self.inner.options)
            .field("clock_offset_ms", &self.inner.clock.offset_ms())
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// One request: a GET with its query string or a POST with its JSON body.
struct Call<'a> {
    method: Method,
    path: &'a str,
    /// The query string (GET) or the JSON body (POST), exactly as sent and signed.
    payload: String,
    private: bool,
    class: EndpointClass,
}

/// The `result` and `time` of a `retCode: 0` envelope.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Answer {
    pub result: Value,
    pub time_ms: Option<i64>,
}

/// Reads a v5 envelope: `retCode` first; a non-zero code is [`Error::Api`] whatever the
/// rest holds (a rejection without `orderId` must not be mistaken for an answer).
pub(crate) fn envelope(body: &str) -> Result<Answer, Error> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| Error::Decode(format!("not JSON ({e}): {}", clip(body))))?;
    let code = value
        .get("retCode")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::Decode(format!("no retCode: {}", clip(body))))?;
    if code != 0 {
        let message = value.get("retMsg").and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(Error::Api { code, message });
    }
    Ok(Answer {
        result: value.get("result").cloned().unwrap_or(Value::Null),
        time_ms: value.get("time").and_then(Value::as_i64),
    })
}

fn clip(text: &str) -> String {
    const MAX: usize = 512;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A query string, percent-encoding all but unreserved characters and `%` (Bybit's cursors
/// come already encoded and go back as they came).
#[derive(Clone, Default)]
struct Query(String);

impl Query {
    fn new() -> Query {
        Query::default()
    }

    fn add(mut self, key: &str, value: impl fmt::Display) -> Query {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(key);
        self.0.push('=');
        for byte in value.to_string().bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'%') {
                self.0.push(char::from(byte));
            } else {
                self.0.push_str(&format!("%{byte:02X}"));
            }
        }
        self
    }
}

fn list(result: &Value) -> &[Value] {
    result.get("list").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// Executions in time order, each `execId` once (pages and windows may overlap).
fn oldest_first_once(executions: &mut Vec<Execution>) {
    executions.sort_by_key(|execution| execution.time_ms);
    let mut seen = HashSet::new();
    executions.retain(|execution| seen.insert(execution.exec_id.clone()));
}

fn next_cursor(result: &Value) -> Option<String> {
    result.get("nextPageCursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned)
}

/// The `POST /v5/order/create` body of an intent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    category: &'static str,
    symbol: &'a str,
    side: &'static str,
    order_type: &'static str,
    qty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger_direction: Option<u8>,
    time_in_force: &'static str,
    reduce_only: bool,
    position_idx: u8,
    order_link_id: String,
}

/// The v5 body of an intent: a Stop is a Market order with `triggerPrice` and
/// `triggerDirection` 1 (rise: a buy stop) or 2 (fall: a sell stop); Market orders are IOC.
pub fn create_body(intent: &OrderIntent) -> String {
    let side = match intent.side {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    };
    let (order_type, time_in_force, price, trigger_price, trigger_direction) = match intent.kind {
        OrderKind::Market => ("Market", "IOC", None, None, None),
        OrderKind::Limit => {
            let tif = match intent.tif {
                TimeInForce::Gtc => "GTC",
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                TimeInForce::PostOnly => "PostOnly",
            };
            ("Limit", tif, intent.price, None, None)
        }
        OrderKind::Stop => {
            let direction = match intent.side {
                Side::Buy => 1,
                Side::Sell => 2,
            };
            ("Market", "IOC", None, intent.trigger_price, Some(direction))
        }
    };
    let body = CreateBody {
        category: "linear",
        symbol: &intent.symbol,
        side,
        order_type,
        qty: intent.qty.to_string(),
        price: price.map(|p| p.to_string()),
        trigger_price: trigger_price.map(|p| p.to_string()),
        trigger_direction,
        time_in_force,
        reduce_only: intent.reduce_only,
        position_idx: 0,
        order_link_id: intent.cloid.to_string(),
    };
    serde_json::to_string(&body).expect("a struct of strings serializes")
}

const DAY_MS: i64 = 86_400_000;
/// Bybit's widest `execution/list` window.
const EXECUTION_WINDOW_MS: i64 = 7 * DAY_MS;
/// Windows of one [`Rest::executions`] at most: about ten years. Each window is one request
/// at least, so a start long ago costs (a local server's executions carry its kline file's
/// market time: one request per 7 days from then to now).
pub const EXECUTION_WINDOWS_MAX: i64 = 530;
/// Attempts after the first of a read that failed ambiguously (5xx, connection lost).
const READ_RETRIES_MAX: u32 = 4;
/// Pages of one listing at most (a limit on everything).
const MAX_PAGES: usize = 10_000;

impl Rest {
    /// A client of `endpoints.rest`. It sends nothing yet: call [`Rest::sync_time`] at start
    /// (the first private request does if nobody did).
    ///
    /// # Panics
    /// If the TLS backend cannot initialise (then no request could be made at all).
    pub fn new(endpoints: &Endpoints, credentials: Option<Credentials>, options: RestOptions) -> Rest {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(options.timeout_ms))
            .connect_timeout(Duration::from_millis(options.timeout_ms))
            .build()
            // Building fails only when TLS cannot initialise: nothing works without it.
            .expect("the HTTP client builds");
        let budgets = EndpointClass::ALL
            .iter()
            .map(|class| Budget::new(pace(class.limit_per_s(), Duration::from_secs(1), 1)))
            .collect();
        // 600 per 5 s per IP: a burst of 50, then one every 9.2 ms, stays under 600 in any 5 s.
        let ip = Budget::new(pace(600, Duration::from_secs(5), 50));
        Rest {
            inner: Arc::new(Inner {
                http,
                base: endpoints.rest.trim_end_matches('/').to_owned(),
                credentials,
                options,
                clock: ServerClock::default(),
                budgets,
                ip,
            }),
        }
    }

    /// The shared server clock (for [`crate::StreamConfig::clock`]).
    pub fn clock(&self) -> ServerClock {
        self.inner.clock.clone()
    }

    /// Fetches `/v5/market/time`, keeps the offset to the local clock, returns the server time (ms).
    pub async fn sync_time(&self) -> Result<i64, Error> {
        let mut retries = 0u32;
        let (before, answer, after) = loop {
            let before = local_now_ms();
            match self.send_once(&self.public("/v5/market/time", Query::new())).await {
                Ok(answer) => break (before, answer, local_now_ms()),
                // A read: asked again after a 5xx or a lost connection.
                Err(e) if e.is_ambiguous() && retries < READ_RETRIES_MAX => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(100 << retries)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let result = &answer.result;
        let from_nano = result
            .get("timeNano")
            .and_then(Value::as_str)
            .and_then(|nano| nano.parse::<i128>().ok())
            .and_then(|nano| i64::try_from(nano / 1_000_000).ok());
        let from_second = result
            .get("timeSecond")
            .and_then(Value::as_str)
            .and_then(|second| second.parse::<i64>().ok())
            .map(|second| second * 1000);
        let server_ms = from_nano
            .or(from_second)
            .or(answer.time_ms)
            .ok_or_else(|| Error::Decode(format!("no server time in {result}")))?;
        // The server read its clock somewhere in the round trip: assume the middle.
        let offset_ms = server_ms - (before + after) / 2;
        self.inner.clock.set_offset_ms(offset_ms);
        tracing::debug!(offset_ms, "bybit clock synced");
        Ok(server_ms)
    }

    /// The server time now, as estimated from the last sync (ms).
    pub fn server_now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub async fn instrument(&self, symbol: &str) -> Result<InstrumentInfo, Error> {
        let query = Query::new().add("category", "linear").add("symbol", symbol);
        let answer = self.call(self.public("/v5/market/instruments-info", query)).await?;
        let item =
            list(&answer.result).first().ok_or_else(|| Error::Decode(format!("no linear instrument {symbol}")))?;
        Ok(InstrumentInfo::from_json(item)?)
    }

    /// The bars of `symbol` whose open time is in `[start_ms, end_ms]`, oldest first
    /// (Bybit answers newest first, 1000 at most a page; this pages and reverses).
    /// Every bar is marked closed; the caller drops the one still forming.
    pub async fn klines(
        &self,
        symbol: &str,
        interval_ms: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Kline>, Error> {
        const PAGE: usize = 1000;
        let label = crate::interval_label(interval_ms)
            .ok_or_else(|| Error::Decode(format!("Bybit has no kline interval of {interval_ms} ms")))?;
        let mut bars: Vec<Kline> = Vec::new();
        let mut page_end = end_ms;
        let pages_max = usize::try_from((end_ms - start_ms).max(0) / interval_ms.max(1) / 1000).unwrap_or(0) + 2;
        for _ in 0..pages_max {
            if page_end < start_ms {
                break;
            }
            let query = Query::new()
                .add("category", "linear")
                .add("symbol", symbol)
                .add("interval", label)
                .add("start", start_ms)
                .add("end", page_end)
                .add("limit", PAGE);
            let answer = self.call(self.public("/v5/market/kline", query)).await?;
            let rows = list(&answer.result);
            let page: Vec<Kline> = rows
                .iter()
                .map(|row| types::kline_from_rest_row(symbol, interval_ms, row))
                .collect::<Result<_, _>>()?;
            let Some(oldest) = page.iter().map(|bar| bar.open_time_ms).min() else { break };
            let full = page.len() >= PAGE;
            bars.extend(page);
            if !full || oldest <= start_ms {
                break;
            }
            page_end = oldest - 1;
        }
        bars.retain(|bar| bar.open_time_ms >= start_ms && bar.open_time_ms <= end_ms);
        bars.sort_by_key(|bar| bar.open_time_ms);
        bars.dedup_by_key(|bar| bar.open_time_ms);
        Ok(bars)
    }

    /// `POST /v5/order/create` with the intent's cloid as `orderLinkId`.
    pub async fn create_order(&self, intent: &OrderIntent) -> Result<Created, Error> {
        let call = self.private_post("/v5/order/create", create_body(intent), EndpointClass::Create);
        let answer = self.call(call).await?;
        let order_id = answer
            .result
            .get("orderId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::Decode(format!("create answered without orderId: {}", answer.result)))?;
        Ok(Created { order_id: order_id.to_owned(), time_ms: answer.time_ms.unwrap_or_else(|| self.server_now_ms()) })
    }

    /// `POST /v5/order/cancel` by `orderLinkId`; returns the server time of the answer.
    pub async fn cancel_order(&self, symbol: &str, cloid: &Cloid) -> Result<i64, Error> {
        let body = serde_json::json!({"category": "linear", "symbol": symbol, "orderLinkId": cloid.to_string()});
        let answer = self.call(self.private_post("/v5/order/cancel", body.to_string(), EndpointClass::Cancel)).await?;
        Ok(answer.time_ms.unwrap_or_else(|| self.server_now_ms()))
    }

    /// `POST /v5/position/set-leverage`, both sides to `leverage`. Bybit's 110043 ("leverage
    /// not modified": it already is) is success.
    pub async fn set_leverage(&self, symbol: &str, leverage: Decimal) -> Result<(), Error> {
        let body = serde_json::json!({
            "category": "linear",
            "symbol": symbol,
            "buyLeverage": leverage.to_string(),
            "sellLeverage": leverage.to_string(),
        });
        match self.call(self.private_post("/v5/position/set-leverage", body.to_string(), EndpointClass::Leverage)).await
        {
            Ok(_) => Ok(()),
            Err(Error::Api { code: 110_043, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The account's `(taker, maker)` fee rates on `symbol` (`GET /v5/account/fee-rate`).
    pub async fn fee_rate(&self, symbol: &str) -> Result<(Decimal, Decimal), Error> {
        let query = Query::new().add("category", "linear").add("symbol", symbol);
        let answer = self.call(self.private_get("/v5/account/fee-rate", query, EndpointClass::FeeRate)).await?;
        let item = list(&answer.result)
            .iter()
            .find(|item| item.get("symbol").and_then(Value::as_str).is_none_or(|s| s == symbol))
            .ok_or_else(|| Error::Decode(format!("no fee rate for {symbol}: {}", answer.result)))?;
        Ok(types::fee_rates_from_json(item)?)
    }

    /// The order of `orderLinkId` `cloid`, open or recently closed; None if the venue has none.
    /// Asks `/v5/order/realtime` (which answers recent closed orders too when asked by id),
    /// then `/v5/order/history` (where closed orders are after a Bybit restart).
    pub async fn order(&self, symbol: &str, cloid: &Cloid) -> Result<Option<OrderReport>, Error> {
        for path in ["/v5/order/realtime", "/v5/order/history"] {
            let query = Query::new().add("category", "linear").add("symbol", symbol).add("orderLinkId", cloid);
            let answer = self.call(self.private_get(path, query, EndpointClass::Orders)).await?;
            let link = cloid.to_string();
            for item in list(&answer.result) {
                let order = OrderReport::from_json(item)?;
                if order.order_link_id == link {
                    return Ok(Some(order));
                }
            }
        }
        Ok(None)
    }

    /// Every open order of `symbol` (all pages).
    pub async fn open_orders(&self, symbol: &str) -> Result<Vec<OrderReport>, Error> {
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = Query::new().add("category", "linear").add("symbol", symbol).add("limit", 50);
            if let Some(cursor) = &cursor {
                query = query.add("cursor", cursor);
            }
            let answer = self.call(self.private_get("/v5/order/realtime", query, EndpointClass::Orders)).await?;
            for item in list(&answer.result) {
                let order = OrderReport::from_json(item)?;
                if order.status.is_open() {
                    orders.push(order);
                }
            }
            cursor = next_cursor(&answer.result);
            if cursor.is_none() || list(&answer.result).is_empty() {
                break;
            }
        }
        Ok(orders)
    }

    /// Executions of `symbol` with `execTime >= start_ms`, oldest first, each `execId` once.
    ///
    /// First the newest executions, paged back (Bybit's default window, the last 7 days)
    /// until one older than `start_ms`: after a reconnect or a restart that is one or two
    /// requests. Only when that runs out before reaching `start_ms`, and `start_ms` is older
    /// than the default window, is the older part asked as 7-day windows (Bybit's widest),
    /// at most [`EXECUTION_WINDOWS_MAX`] of them.
    pub async fn executions(&self, symbol: &str, start_ms: i64) -> Result<Vec<Execution>, Error> {
        let now_ms = self.server_now_ms();
        let (mut all, reached) = self.executions_newest(symbol, start_ms).await?;
        let default_window_start = now_ms - EXECUTION_WINDOW_MS;
        if !reached && start_ms < default_window_start {
            let earliest_ms = now_ms - EXECUTION_WINDOW_MS * (EXECUTION_WINDOWS_MAX - 1);
            let mut window_start = start_ms.max(earliest_ms);
            while window_start < default_window_start {
                let window_end = (window_start + EXECUTION_WINDOW_MS - 1).min(default_window_start);
                all.extend(self.execution_window(symbol, window_start, window_end).await?);
                window_start = window_end + 1;
            }
        }
        all.retain(|execution| execution.time_ms >= start_ms);
        oldest_first_once(&mut all);
        Ok(all)
    }

    /// The executions of the order with `orderLinkId` `cloid` (Bybit's default window, the
    /// last 7 days), oldest first, each once: what a catch-up asks for each order that can
    /// still be filled, whatever clock the venue stamps its executions with.
    pub async fn executions_of(&self, cloid: &Cloid) -> Result<Vec<Execution>, Error> {
        let query = Query::new().add("category", "linear").add("orderLinkId", cloid).add("limit", 100);
        let mut executions = self.execution_pages(query, MAX_PAGES).await?;
        oldest_first_once(&mut executions);
        Ok(executions)
    }

    /// The account's funding executions of `symbol` in Bybit's default window (the last 7
    /// days), newest page first, at most `pages` pages, oldest first, each once. Funding
    /// has no order to ask by: a catch-up asks for it by its `execType`.
    pub async fn funding_executions(&self, symbol: &str, pages: usize) -> Result<Vec<Execution>, Error> {
        let query =
            Query::new().add("category", "linear").add("symbol", symbol).add("execType", "Funding").add("limit", 100);
        let mut executions = self.execution_pages(query, pages.min(MAX_PAGES)).await?;
        executions.retain(|execution| execution.exec_type == "Funding");
        oldest_first_once(&mut executions);
        Ok(executions)
    }

    /// The newest executions back to the first older than `start_ms` (then true) or to the
    /// end of the venue's default window (false).
    async fn executions_newest(&self, symbol: &str, start_ms: i64) -> Result<(Vec<Execution>, bool), Error> {
        let mut executions = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = Query::new().add("category", "linear").add("symbol", symbol).add("limit", 100);
            if let Some(cursor) = &cursor {
                query = query.add("cursor", cursor);
            }
            let answer = self.call(self.private_get("/v5/execution/list", query, EndpointClass::Executions)).await?;
            let mut reached = false;
            for item in list(&answer.result) {
                let execution = Execution::from_json(item)?;
                reached |= execution.time_ms < start_ms;
                executions.push(execution);
            }
            cursor = next_cursor(&answer.result);
            if reached {
                return Ok((executions, true));
            }
            if cursor.is_none() || list(&answer.result).is_empty() {
                break;
            }
        }
        Ok((executions, false))
    }

    async fn execution_window(&self, symbol: &str, start_ms: i64, end_ms: i64) -> Result<Vec<Execution>, Error> {
        let query = Query::new()
            .add("category", "linear")
            .add("symbol", symbol)
            .add("startTime", start_ms)
            .add("endTime", end_ms)
            .add("limit", 100);
        self.execution_pages(query, MAX_PAGES).await
    }

    /// `/v5/execution/list` with `query`, followed by cursor for at most `pages` pages.
    async fn execution_pages(&self, query: Query, pages: usize) -> Result<Vec<Execution>, Error> {
        let mut executions = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..pages {
            let mut page = query.clone();
            if let Some(cursor) = &cursor {
                page = page.add("cursor", cursor);
            }
            let answer = self.call(self.private_get("/v5/execution/list", page, EndpointClass::Executions)).await?;
            for item in list(&answer.result) {
                executions.push(Execution::from_json(item)?);
            }
            cursor = next_cursor(&answer.result);
            if cursor.is_none() || list(&answer.result).is_empty() {
                break;
            }
        }
        Ok(executions)
    }

    pub async fn positions(&self, symbol: &str) -> Result<Vec<PositionReport>, Error> {
        let query = Query::new().add("category", "linear").add("symbol", symbol);
        let answer = self.call(self.private_get("/v5/position/list", query, EndpointClass::Positions)).await?;
        Ok(list(&answer.result).iter().map(PositionReport::from_json).collect::<Result<_, _>>()?)
    }

    pub async fn wallet(&self) -> Result<WalletReport, Error> {
        let query = Query::new().add("accountType", "UNIFIED").add("coin", "USDT");
        let answer = self.call(self.private_get("/v5/account/wallet-balance", query, EndpointClass::Wallet)).await?;
        let account = list(&answer.result)
            .first()
            .ok_or_else(|| Error::Decode(format!("no unified account in {}", answer.result)))?;
        Ok(WalletReport::from_json(account)?)
    }

    // ---- the one request path ----------------------------------------------------------

    fn public<'a>(&self, path: &'a str, query: Query) -> Call<'a> {
        Call { method: Method::Get, path, payload: query.0, private: false, class: EndpointClass::Public }
    }

    fn private_get<'a>(&self, path: &'a str, query: Query, class: EndpointClass) -> Call<'a> {
        Call { method: Method::Get, path, payload: query.0, private: true, class }
    }

    fn private_post<'a>(&self, path: &'a str, body: String, class: EndpointClass) -> Call<'a> {
        Call { method: Method::Post, path, payload: body, private: true, class }
    }

    /// Sends `call` with the retries of the module doc.
    async fn call(&self, call: Call<'_>) -> Result<Answer, Error> {
        if call.private && self.inner.credentials.is_none() {
            return Err(Error::NoCredentials);
        }
        // The driver syncs at start; a client that did not syncs before its first signature.
        if call.private && !self.inner.clock.is_synced() {
            self.sync_time().await?;
        }
        let mut resynced = false;
        let mut rate_limit_retries = 0;
        let mut read_retries = 0u32;
        loop {
            let error = match self.send_once(&call).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            match &error {
                Error::Api { code: 10_002, message } if !resynced => {
                    tracing::warn!(path = call.path, message = %message, "bybit 10002: request time outside the window; re-syncing the clock");
                    resynced = true;
                    self.sync_time().await?;
                }
                Error::Api { code: 10_006, .. } | Error::Http { status: 403 | 429, .. }
                    if rate_limit_retries < self.inner.options.max_rate_limit_retries =>
                {
                    // send_once has blocked the class (or every request) until the reset.
                    rate_limit_retries += 1;
                    tracing::warn!(path = call.path, error = %error, retry = rate_limit_retries, "bybit rate limit: waiting for the reset");
                }
                // A read changes nothing at the venue: asked again after a 5xx or a lost
                // connection (a create or cancel never is: the caller resolves it by a query).
                _ if call.method == Method::Get && error.is_ambiguous() && read_retries < READ_RETRIES_MAX => {
                    read_retries += 1;
                    tracing::warn!(path = call.path, error = %error, retry = read_retries, "bybit read failed: asking again");
                    tokio::time::sleep(Duration::from_millis(100 << read_retries)).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// One attempt: waits for the budget, signs, sends, reads the headers and the envelope.
    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let inner = &self.inner;
        let mutates = call.method == Method::Post;
        let budget = &inner.budgets[call.class.index()];
        if !(mutates && inner.options.dry_run) {
            let began = Instant::now();
            let _turn = budget.turn.lock().await;
            budget.wait_unblocked().await;
            inner.ip.wait_unblocked().await;
            budget.pace.until_ready().await;
            inner.ip.pace.until_ready().await;
            let waited = began.elapsed();
            // Under a millisecond is the lock, not the limiter.
            if let Some(observer) = inner.options.observer.as_ref().filter(|_| waited >= Duration::from_millis(1)) {
                observer.waited(call.path, waited);
            }
        }
        let sent = Instant::now();
        let answer = self.send_now(call, budget).await;
        if let Some(observer) = &inner.options.observer {
            let code = match &answer {
                Ok(_) | Err(Error::DryRun) => None,
                Err(Error::Api { code, .. }) => Some(code.to_string()),
                Err(Error::Http { status, .. }) => Some(status.to_string()),
                Err(Error::Transport(_)) => Some("transport".to_owned()),
                Err(_) => Some("other".to_owned()),
            };
            if !matches!(answer, Err(Error::DryRun)) {
                observer.answered(call.path, sent.elapsed(), code.as_deref());
            }
        }
        answer
    }

    /// Signs and sends one attempt, reads the headers and the envelope.
    async fn send_now(&self, call: &Call<'_>, budget: &Budget) -> Result<Answer, Error> {
        let inner = &self.inner;
        let mutates = call.method == Method::Post;

        let url = match call.method {
            Method::Get if !call.payload.is_empty() => format!("{}{}?{}", inner.base, call.path, call.payload),
            _ => format!("{}{}", inner.base, call.path),
        };
        let mut request = match call.method {
            Method::Get => inner.http.get(&url),
            Method::Post => inner
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(call.payload.clone()),
        };
        if call.private {
            let credentials = inner.credentials.as_ref().ok_or(Error::NoCredentials)?;
            let timestamp_ms = inner.clock.now_ms();
            let recv_window_ms = inner.options.recv_window_ms;
            let signature = crate::sign::rest(credentials, timestamp_ms, recv_window_ms, &call.payload);
            if mutates && inner.options.dry_run {
                tracing::info!(
                    method = "POST",
                    path = call.path,
                    body = %call.payload,
                    timestamp_ms,
                    recv_window_ms,
                    signature = %signature,
                    "dry run: signed, not sent"
                );
                return Err(Error::DryRun);
            }
            request = request
                .header("X-BAPI-API-KEY", &credentials.key)
                .header("X-BAPI-TIMESTAMP", timestamp_ms.to_string())
                .header("X-BAPI-SIGN", signature)
                .header("X-BAPI-RECV-WINDOW", recv_window_ms.to_string());
        } else if mutates && inner.options.dry_run {
            return Err(Error::DryRun);
        }

        let response = request.send().await.map_err(|e| self.transport(call, &e))?;
        let status = response.status().as_u16();
        let reset_wait = self.note_limit_headers(budget, response.headers());
        let body = response.text().await.map_err(|e| self.transport(call, &e))?;
        let body = self.redact(body);

        if status == 403 {
            let wait = Duration::from_millis(inner.options.ip_ban_wait_ms);
            tracing::warn!(path = call.path, wait_ms = inner.options.ip_ban_wait_ms, body = %clip(&body), "bybit HTTP 403: IP rate limit breached; every request waits");
            inner.ip.block_for(wait);
            return Err(Error::Http { status, body: clip(&body) });
        }
        if status == 429 {
            inner.ip.block_for(Duration::from_secs(1));
            return Err(Error::Http { status, body: clip(&body) });
        }
        match envelope(&body) {
            Err(Error::Decode(_)) if !(200..300).contains(&status) => Err(Error::Http { status, body: clip(&body) }),
            Err(Error::Api { code: 10_006, message }) => {
                // Until the reset the headers gave, but 200 ms at least (a reset read on a
                // clock that disagrees with ours may look past); without headers, a second.
                let wait = reset_wait.map_or(Duration::from_secs(1), |wait| wait.max(Duration::from_millis(200)));
                budget.block_for(wait);
                Err(Error::Api { code: 10_006, message })
            }
            other => other,
        }
    }

    /// `X-Bapi-Limit-Status` 0: the class waits until `X-Bapi-Limit-Reset-Timestamp`.
    /// Returns that wait (None without the headers or with requests left).
    fn note_limit_headers(&self, budget: &Budget, headers: &HeaderMap) -> Option<Duration> {
        let number =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
        let remaining = number("X-Bapi-Limit-Status")?;
        let reset_ms = number("X-Bapi-Limit-Reset-Timestamp")?;
        if remaining > 0 {
            return None;
        }
        // A bogus reset far away must not stop the client for long: at most 10 s.
        let wait_ms = (reset_ms - self.server_now_ms()).clamp(0, 10_000);
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0) + 5);
        tracing::debug!(wait_ms, "bybit limit status 0: waiting for the reset");
        budget.block_for(wait);
        Some(wait)
    }

    fn transport(&self, call: &Call<'_>, error: &reqwest::Error) -> Error {
        let what = if error.is_timeout() { "timed out" } else { "failed" };
        // The URL in reqwest's text holds the query string, never a header: no secret, but scrub anyway.
        Error::Transport(self.redact(format!("{} {} {what}: {error}", call.method.name(), call.path)))
    }

    /// `text` without the API secret in it (a server may echo what it got).
    fn redact(&self, text: String) -> String {
        match &self.inner.credentials {
            Some(credentials) if !credentials.secret().is_empty() && text.contains(credentials.secret()) => {
                text.replace(credentials.secret(), "<redacted>")
            }
            _ => text,
        }
    }
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

#[cfg(test)]
mod tests {
    use journal::event::{Cloid, OrderIntent, OrderKind, Side, TimeInForce};
    use rust_decimal_macros::dec;

    use super::*;

    fn intent(kind: OrderKind, side: Side, tif: TimeInForce) -> OrderIntent {
        OrderIntent {
            cloid: Cloid([0xab; 16]),
            symbol: "BTCUSDT".into(),
            side,
            kind,
            qty: dec!(0.010),
            price: (kind == OrderKind::Limit).then_some(dec!(25000.5)),
            trigger_price: (kind == OrderKind::Stop).then_some(dec!(24000)),
            reduce_only: false,
            tif,
        }
    }

    #[test]
    fn create_bodies() {
        struct Case {
            intent: OrderIntent,
            body: &'static str,
        }
        let link = "abababababababababababababababab";
        let cases = [
            Case {
                intent: intent(OrderKind::Limit, Side::Buy, TimeInForce::Gtc),
                body: r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.010","price":"25000.5","timeInForce":"GTC","reduceOnly":false,"positionIdx":0,"orderLinkId":"LINK"}"#,
            },
            Case {
                intent: intent(OrderKind::Limit, Side::Sell, TimeInForce::PostOnly),
                body: r#"{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Limit","qty":"0.010","price":"25000.5","timeInForce":"PostOnly","reduceOnly":false,"positionIdx":0,"orderLinkId":"LINK"}"#,
            },
            Case {
                intent: intent(OrderKind::Market, Side::Sell, TimeInForce::Gtc),
                body: r#"{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"0.010","timeInForce":"IOC","reduceOnly":false,"positionIdx":0,"orderLinkId":"LINK"}"#,
            },
            Case {
                intent: intent(OrderKind::Stop, Side::Sell, TimeInForce::Gtc),
                body: r#"{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"0.010","triggerPrice":"24000","triggerDirection":2,"timeInForce":"IOC","reduceOnly":false,"positionIdx":0,"orderLinkId":"LINK"}"#,
            },
            Case {
                intent: OrderIntent { reduce_only: true, ..intent(OrderKind::Stop, Side::Buy, TimeInForce::Ioc) },
                body: r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.010","triggerPrice":"24000","triggerDirection":1,"timeInForce":"IOC","reduceOnly":true,"positionIdx":0,"orderLinkId":"LINK"}"#,
            },
        ];
        for case in cases {
            assert_eq!(create_body(&case.intent), case.body.replace("LINK", link), "{:?}", case.intent.kind);
        }
    }

    #[test]
    fn envelope_reads_ret_code_before_result() {
        let ok =
            envelope(r#"{"retCode":0,"retMsg":"OK","result":{"orderId":"1"},"retExtInfo":{},"time":1671017382656}"#)
                .unwrap();
        assert_eq!(ok.result["orderId"], "1");
        assert_eq!(ok.time_ms, Some(1_671_017_382_656));
        // Failure report #13: a rejection without orderId, even with an empty or absent result.
        for body in [
            r#"{"retCode":110017,"retMsg":"orderQty will be truncated to zero","result":{},"retExtInfo":{},"time":1}"#,
            r#"{"retCode":110017,"retMsg":"orderQty will be truncated to zero"}"#,
            r#"{"retCode":110017,"retMsg":"orderQty will be truncated to zero","result":null}"#,
        ] {
            assert_eq!(
                envelope(body),
                Err(Error::Api { code: 110_017, message: "orderQty will be truncated to zero".into() })
            );
        }
        assert!(matches!(envelope("<html>502</html>"), Err(Error::Decode(_))));
        assert!(matches!(envelope(r#"{"result":{}}"#), Err(Error::Decode(_))));
    }

    #[test]
    fn ambiguity() {
        struct Case {
            error: Error,
            ambiguous: bool,
        }
        let api = |code| Error::Api { code, message: String::new() };
        let http = |status| Error::Http { status, body: String::new() };
        for case in [
            Case { error: Error::Transport("timed out".into()), ambiguous: true },
            Case { error: http(502), ambiguous: true },
            Case { error: http(500), ambiguous: true },
            Case { error: http(403), ambiguous: false },
            Case { error: http(404), ambiguous: false },
            Case { error: api(10_000), ambiguous: true },
            Case { error: api(10_016), ambiguous: true },
            Case { error: api(10_006), ambiguous: false },
            Case { error: api(110_072), ambiguous: false },
            Case { error: api(10_002), ambiguous: false },
            Case { error: Error::Decode(String::new()), ambiguous: false },
            Case { error: Error::DryRun, ambiguous: false },
            Case { error: Error::NoCredentials, ambiguous: false },
        ] {
            assert_eq!(case.error.is_ambiguous(), case.ambiguous, "{:?}", case.error);
        }
    }

    #[test]
    fn queries_encode_all_but_unreserved_and_percent() {
        let query =
            Query::new().add("category", "linear").add("cursor", "page_args%3D1%26symbol%3D6%26").add("x", "a b&c=d");
        assert_eq!(query.0, "category=linear&cursor=page_args%3D1%26symbol%3D6%26&x=a%20b%26c%3Dd");
    }

    #[test]
    fn limit_classes() {
        assert_eq!(EndpointClass::Create.limit_per_s(), 10);
        assert_eq!(EndpointClass::Cancel.limit_per_s(), 10);
        assert_eq!(EndpointClass::Executions.limit_per_s(), 50);
        for (i, class) in EndpointClass::ALL.iter().enumerate() {
            assert_eq!(class.index(), i);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let rest = Rest::new(
            &Endpoints::local("http://127.0.0.1:1", "ws://127.0.0.1:1"),
            Some(Credentials::new("k", "s3cr3t-value")),
            RestOptions::default(),
        );
        assert!(!format!("{rest:?}").contains("s3cr3t-value"));
    }
}
