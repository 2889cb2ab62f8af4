//! `/info` and `/exchange` over HTTP: one [`Rest`] client under the per-IP weight budget.
//!
//! Every request goes through one path (`Rest::post`):
//!
//! 1. **Budget.** Hyperliquid allows 1200 weight a minute per IP. A request spends its weight
//!    *before* it is sent ([`InfoRequest::weight`], [`Action::weight`]): the budget
//!    ([`WeightBudget`]) is a token bucket of `burst` weight refilled at
//!    `(per_minute − burst)` a minute, so no 60-second window ever sees more than
//!    `per_minute`. Turns are FIFO, so a heavy request is not starved by light ones. The
//!    extra weight of long answers (one per 20 fills, one per 60 candles) is spent when the
//!    answer arrives, before the next request.
//! 2. **Signature.** An action is signed by the API wallet for the client's network with the
//!    nonce the caller gives: the caller allocates it ([`crate::NonceAllocator`]) and
//!    journals it first, so a restart never reuses it.
//! 3. **Retries.** HTTP 429 waits [`RestOptions::rate_limited_wait_ms`] and sends the same
//!    bytes again, at most [`RestOptions::max_rate_limit_retries`] times. Re-sending a signed
//!    action is safe: its nonce can be used once, so a copy that already went through is
//!    refused as a duplicate nonce rather than executed twice.
//!
//! The key is never logged: the client logs action types, nonces and weights only.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use journal::event::Cloid;
use serde_json::Value;

use crate::sign::{Address, SignError, Wallet};
use crate::types::{
    self, ActionStatus, Cancel, CancelAction, CancelByCloid, CancelByCloidAction, Candle, CandleRequest,
    ClearinghouseState, ExchangeResponse, Meta, OpenOrder, OrderAction, OrderRef, OrderStatusAnswer, OrderWire,
    ParseError, UpdateLeverage, UserFill,
};
use crate::{Action, Endpoints, ExchangeRequest, InfoRequest, Network};

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct RestOptions {
    /// Per-request timeout, ms. An action that times out is ambiguous: query before re-sending
    /// anything new.
    pub timeout_ms: u64,
    /// The per-IP weight a minute (Hyperliquid's is 1200).
    pub weight_per_minute: u32,
    /// The weight that may go at once after a quiet spell. The refill is
    /// `weight_per_minute − burst_weight` a minute, so a window of 60 s never holds more than
    /// `weight_per_minute`.
    pub burst_weight: u32,
    /// Sign and log actions without sending them: they return [`RestError::DryRun`]. Reads
    /// still go out.
    pub dry_run: bool,
    /// How long an HTTP 429 stops this client before it sends the same request again, ms.
    pub rate_limited_wait_ms: u64,
    /// Re-sends of one request after HTTP 429.
    pub max_rate_limit_retries: u32,
    /// The most fills one `userFillsByTime` answer holds (2000 at the venue): a shorter page
    /// is the last one of [`Rest::user_fills_since`].
    pub fills_page_max: usize,
    /// Told of every attempt and every wait for the budget (metrics); none by default.
    pub observer: Option<Arc<dyn Observer>>,
}

/// What a caller may watch of the client's requests (`quantfold live --serve`'s metrics).
/// `endpoint` is the path and the request's type: `/info clearinghouseState`, `/exchange order`.
pub trait Observer: Send + Sync + fmt::Debug {
    /// One attempt answered (`code` None) or failed (`code`: the HTTP status, or "transport"),
    /// `took` from sending to the whole body read.
    fn answered(&self, endpoint: &str, took: Duration, code: Option<&str>);
    /// An attempt waited this long for the weight budget before it was sent.
    fn waited(&self, endpoint: &str, took: Duration);
}

impl Default for RestOptions {
    fn default() -> RestOptions {
        RestOptions {
            timeout_ms: 5_000,
            weight_per_minute: 1_200,
            burst_weight: 120,
            dry_run: false,
            rate_limited_wait_ms: 10_000,
            max_rate_limit_retries: 3,
            fills_page_max: 2_000,
            observer: None,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// `/exchange` answered `{"status": "err", "response": ...}`: the whole action was
    /// refused (bad signature, address rate limit, duplicate nonce, ...).
    #[error("hyperliquid refused the action: {0}")]
    Rejected(String),
    /// An HTTP status other than 200.
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The request may or may not have reached the venue (timeout, connection lost).
    #[error("transport: {0}")]
    Transport(String),
    /// An answer that does not parse.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The action could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// `dry_run`: signed and logged, not sent.
    #[error("dry run: not sent")]
    DryRun,
    /// An action without an API wallet.
    #[error("no API wallet configured")]
    NoWallet,
    /// The client could not be built (TLS backend) or the options are unusable.
    #[error("client set-up: {0}")]
    Setup(String),
}

impl RestError {
    /// The action may have taken effect at the venue: resolve by querying (orderStatus by
    /// cloid) before sending anything new.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            RestError::Transport(_) => true,
            RestError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl From<ParseError> for RestError {
    fn from(error: ParseError) -> RestError {
        RestError::Decode(error.0)
    }
}

/// The per-IP weight budget: a token bucket of `burst` refilled at `per_minute − burst` a
/// minute, spent in FIFO turns.
pub struct WeightBudget {
    turn: tokio::sync::Mutex<()>,
    limiter: DefaultDirectRateLimiter,
    burst: u32,
}

impl fmt::Debug for WeightBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightBudget").field("burst", &self.burst).finish_non_exhaustive()
    }
}

impl WeightBudget {
    /// A budget of `per_minute` weight in any minute, `burst` of it at once.
    ///
    /// # Errors
    /// [`RestError::Setup`] unless `0 < burst < per_minute`.
    pub fn new(per_minute: u32, burst: u32) -> Result<WeightBudget, RestError> {
        if burst == 0 || burst >= per_minute {
            return Err(RestError::Setup(format!(
                "the weight burst ({burst}) must be above zero and below the weight a minute ({per_minute})"
            )));
        }
        let refill_per_minute = per_minute - burst;
        let period = Duration::from_secs(60) / refill_per_minute;
        let burst_cells = NonZeroU32::new(burst).ok_or_else(|| RestError::Setup("zero burst".into()))?;
        let quota = Quota::with_period(period)
            .ok_or_else(|| RestError::Setup("a zero refill period".into()))?
            .allow_burst(burst_cells);
        Ok(WeightBudget { turn: tokio::sync::Mutex::new(()), limiter: RateLimiter::direct(quota), burst })
    }

    /// Waits until `weight` can be spent, then spends it. A weight above the burst is spent in
    /// burst-sized parts (it waits longer; nothing is refused).
    pub async fn spend(&self, weight: u32) {
        let _turn = self.turn.lock().await;
        let mut left = weight;
        while left > 0 {
            let part = left.min(self.burst);
            if let Some(cells) = NonZeroU32::new(part) {
                // `part` never exceeds the burst, so the capacity error cannot happen.
                let _ = self.limiter.until_n_ready(cells).await;
            }
            left -= part;
        }
    }

    /// Spends `weight` if it is available now, without waiting.
    pub fn try_spend(&self, weight: u32) -> bool {
        match NonZeroU32::new(weight) {
            None => true,
            Some(cells) => matches!(self.limiter.check_n(cells), Ok(Ok(()))),
        }
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    network: Network,
    wallet: Option<Wallet>,
    vault: Option<Address>,
    options: RestOptions,
    budget: WeightBudget,
}

/// The REST client. Cheap to clone (shared connection pool and budget).
#[derive(Clone)]
pub struct Rest {
    inner: Arc<Inner>,
}

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rest")
            .field("base", &self.inner.base)
            .field("network", &self.inner.network)
            .field("wallet", &self.inner.wallet)
            .field("vault", &self.inner.vault)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Rest {
    /// A client of `endpoints.rest` that signs with `wallet` (none: reads only) for
    /// `endpoints.network`, trading for `vault` if given (a vault or sub-account).
    ///
    /// # Errors
    /// [`RestError::Setup`] when the HTTP client cannot be built or the budget is unusable.
    pub fn new(
        endpoints: &Endpoints,
        wallet: Option<Wallet>,
        vault: Option<Address>,
        options: RestOptions,
    ) -> Result<Rest, RestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(options.timeout_ms))
            .connect_timeout(Duration::from_millis(options.timeout_ms))
            .build()
            .map_err(|e| RestError::Setup(format!("the HTTP client does not build: {e}")))?;
        let budget = WeightBudget::new(options.weight_per_minute, options.burst_weight)?;
        Ok(Rest {
            inner: Arc::new(Inner {
                http,
                base: endpoints.rest.trim_end_matches('/').to_owned(),
                network: endpoints.network,
                wallet,
                vault,
                options,
                budget,
            }),
        })
    }

    /// The address the API wallet signs as, if there is one.
    pub fn signer(&self) -> Option<Address> {
        self.inner.wallet.as_ref().map(Wallet::address)
    }

    /// The weight budget (shared by every clone).
    pub fn budget(&self) -> &WeightBudget {
        &self.inner.budget
    }

    /// POSTs `body` to `path` after spending `weight`; returns the 200 answer's body. `kind`
    /// (the request's type) names it to the observer.
    async fn post(&self, path: &str, kind: &str, body: String, weight: u32) -> Result<String, RestError> {
        let url = format!("{}{path}", self.inner.base);
        let observer = self.inner.options.observer.as_deref();
        let endpoint = || format!("{path} {kind}");
        let mut retries = 0;
        loop {
            let waiting = std::time::Instant::now();
            self.inner.budget.spend(weight).await;
            if let Some(observer) = observer {
                let waited = waiting.elapsed();
                if waited >= Duration::from_millis(1) {
                    observer.waited(&endpoint(), waited);
                }
            }
            let sent = std::time::Instant::now();
            let answer = async {
                let response = self
                    .inner
                    .http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            }
            .await;
            if let Some(observer) = observer {
                let code = match &answer {
                    Ok((200, _)) => None,
                    Ok((status, _)) => Some(status.to_string()),
                    Err(_) => Some("transport".to_owned()),
                };
                observer.answered(&endpoint(), sent.elapsed(), code.as_deref());
            }
            let (status, text) = answer.map_err(|e| RestError::Transport(e.to_string()))?;
            if status == 429 && retries < self.inner.options.max_rate_limit_retries {
                retries += 1;
                tracing::warn!(
                    path,
                    retries,
                    "hyperliquid rate limit (HTTP 429): waiting, then sending the same request"
                );
                tokio::time::sleep(Duration::from_millis(self.inner.options.rate_limited_wait_ms)).await;
                continue;
            }
            if status != 200 {
                return Err(RestError::Http { status, body: clip(&text) });
            }
            return Ok(text);
        }
    }

    // --- /info ---

    /// Any `/info` request: its JSON answer. Spends the request's weight before and the
    /// answer's extra weight after. A read changes nothing, so one that fails on a 5xx or a
    /// lost connection is sent again, [`READ_RETRIES`] times at most, after a short pause
    /// (never an `/exchange` action: those are resolved by the caller).
    ///
    /// # Errors
    /// [`RestError::Http`], [`RestError::Transport`], or [`RestError::Decode`] for a body that
    /// is not JSON.
    pub async fn info(&self, request: &InfoRequest) -> Result<Value, RestError> {
        let body = serde_json::to_string(request).map_err(|e| RestError::Decode(e.to_string()))?;
        let mut tries = 0;
        let text = loop {
            match self.post("/info", request.kind(), body.clone(), request.weight()).await {
                Err(e) if e.is_ambiguous() && tries < READ_RETRIES => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "hyperliquid /info failed: asking again");
                    tokio::time::sleep(Duration::from_millis(100 << tries)).await;
                }
                answer => break answer?,
            }
        };
        let value: Value =
            serde_json::from_str(&text).map_err(|e| RestError::Decode(format!("not JSON ({e}): {}", clip(&text))))?;
        let items = value.as_array().map_or(0, Vec::len);
        let extra = request.extra_weight(items);
        if extra > 0 {
            self.inner.budget.spend(extra).await;
        }
        Ok(value)
    }

    /// The perpetuals: asset ids, `szDecimals`, leverage caps.
    ///
    /// # Errors
    /// As [`Rest::info`], or [`RestError::Decode`] naming what does not parse.
    pub async fn meta(&self) -> Result<Meta, RestError> {
        Ok(Meta::from_json(&self.info(&InfoRequest::Meta).await?)?)
    }

    /// Every coin's mid price.
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn all_mids(&self) -> Result<std::collections::BTreeMap<String, rust_decimal::Decimal>, RestError> {
        Ok(types::all_mids(&self.info(&InfoRequest::AllMids).await?)?)
    }

    /// Positions and margin of `user` (the account, not the API wallet).
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn clearinghouse_state(&self, user: Address) -> Result<ClearinghouseState, RestError> {
        Ok(ClearinghouseState::from_json(&self.info(&InfoRequest::ClearinghouseState { user }).await?)?)
    }

    /// The open orders of `user`, with cloids and trigger details (`frontendOpenOrders`).
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn open_orders(&self, user: Address) -> Result<Vec<OpenOrder>, RestError> {
        Ok(OpenOrder::list_from_json(&self.info(&InfoRequest::FrontendOpenOrders { user }).await?)?)
    }

    /// At most 2000 fills of `user` from `start_time_ms` (to `end_time_ms`, or now).
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn user_fills_by_time(
        &self,
        user: Address,
        start_time_ms: u64,
        end_time_ms: Option<u64>,
    ) -> Result<Vec<UserFill>, RestError> {
        let request = InfoRequest::UserFillsByTime {
            user,
            start_time: start_time_ms,
            end_time: end_time_ms,
            aggregate_by_time: Some(false),
        };
        Ok(UserFill::list_from_json(&self.info(&request).await?)?)
    }

    /// Every fill of `user` from `start_time_ms` (to `end_time_ms`, or now), oldest first,
    /// paging `userFillsByTime` from the last fill's time and dropping the fills a page
    /// boundary repeats (a fill is its coin, trade id and order id). At most
    /// [`FILL_PAGES_MAX`] pages. The venue keeps only the 10000 most recent fills.
    ///
    /// A page that is full of fills of a single millisecond cannot be paged past by time; the
    /// next page starts a millisecond later (with a warning), so fills beyond a full page in
    /// that one millisecond (2000 of them) would be missed.
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn user_fills_since(
        &self,
        user: Address,
        start_time_ms: u64,
        end_time_ms: Option<u64>,
    ) -> Result<Vec<UserFill>, RestError> {
        let mut fills: Vec<UserFill> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut start = start_time_ms;
        for _ in 0..FILL_PAGES_MAX {
            let page = self.user_fills_by_time(user, start, end_time_ms).await?;
            let full = page.len() >= self.inner.options.fills_page_max;
            let last_ms = page.iter().map(|fill| fill.time).max().unwrap_or(start);
            for fill in page {
                if seen.insert((fill.coin.clone(), fill.tid, fill.oid)) {
                    fills.push(fill);
                }
            }
            if !full {
                fills.sort_by_key(|fill| fill.time);
                return Ok(fills);
            }
            start = if last_ms > start {
                last_ms
            } else {
                tracing::warn!(start, "a full page of fills in one millisecond: continuing from the next one");
                start.saturating_add(1)
            };
        }
        Err(RestError::Decode(format!("more than {FILL_PAGES_MAX} pages of fills since {start_time_ms}")))
    }

    /// The 2000 most recent fills of `user`.
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn user_fills(&self, user: Address) -> Result<Vec<UserFill>, RestError> {
        let request = InfoRequest::UserFills { user, aggregate_by_time: Some(false) };
        Ok(UserFill::list_from_json(&self.info(&request).await?)?)
    }

    /// Where an order of `user` stands, by oid or by our cloid.
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn order_status(&self, user: Address, oid: OrderRef) -> Result<OrderStatusAnswer, RestError> {
        Ok(OrderStatusAnswer::from_json(&self.info(&InfoRequest::OrderStatus { user, oid }).await?)?)
    }

    /// At most 5000 candles of `coin` at `interval` ("1m", "1h", ...) in `[start_ms, end_ms]`.
    ///
    /// # Errors
    /// As [`Rest::meta`].
    pub async fn candle_snapshot(
        &self,
        coin: &str,
        interval: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<Candle>, RestError> {
        let req = CandleRequest {
            coin: coin.to_owned(),
            interval: interval.to_owned(),
            start_time: start_ms,
            end_time: end_ms,
        };
        Ok(Candle::list_from_json(&self.info(&InfoRequest::CandleSnapshot { req }).await?)?)
    }

    // --- /exchange ---

    /// Signs `action` with `nonce` (allocated and journaled by the caller).
    ///
    /// # Errors
    /// [`RestError::NoWallet`], or [`RestError::Sign`].
    pub fn sign(
        &self,
        action: Action,
        nonce: u64,
        expires_after_ms: Option<u64>,
    ) -> Result<ExchangeRequest, RestError> {
        let wallet = self.inner.wallet.as_ref().ok_or(RestError::NoWallet)?;
        Ok(ExchangeRequest::sign(wallet, action, nonce, self.inner.vault, expires_after_ms, self.inner.network)?)
    }

    /// Sends a signed request; the venue's envelope as it came (a top-level `err` included).
    ///
    /// # Errors
    /// [`RestError::DryRun`], [`RestError::Http`], [`RestError::Transport`] (ambiguous), or
    /// [`RestError::Decode`].
    pub async fn send(&self, request: &ExchangeRequest) -> Result<ExchangeResponse, RestError> {
        let kind = action_type(&request.action);
        let weight = request.action.weight();
        let body = serde_json::to_string(request).map_err(|e| RestError::Decode(e.to_string()))?;
        if self.inner.options.dry_run {
            tracing::info!(kind, nonce = request.nonce, action = %action_json(&request.action), "dry run: signed, not sent");
            return Err(RestError::DryRun);
        }
        tracing::debug!(kind, nonce = request.nonce, weight, "hyperliquid action");
        let text = self.post("/exchange", kind, body, weight).await?;
        Ok(ExchangeResponse::parse(&text)?)
    }

    /// Signs and sends `action`; the outcome of each of its orders or cancels.
    ///
    /// # Errors
    /// [`RestError::Rejected`] when the venue refuses the whole action, else as [`Rest::send`].
    pub async fn exchange(&self, action: Action, nonce: u64) -> Result<Vec<ActionStatus>, RestError> {
        let batch_len = action.batch_len();
        let request = self.sign(action, nonce, None)?;
        match self.send(&request).await? {
            ExchangeResponse::Err(message) => Err(RestError::Rejected(message)),
            answer => Ok(answer.per_element(batch_len)),
        }
    }

    /// Places independent orders (`grouping` "na").
    ///
    /// # Errors
    /// As [`Rest::exchange`].
    pub async fn place_orders(&self, orders: Vec<OrderWire>, nonce: u64) -> Result<Vec<ActionStatus>, RestError> {
        self.exchange(Action::orders(orders), nonce).await
    }

    /// Places orders as a group (an entry with its TP/SL: `NormalTpsl`).
    ///
    /// # Errors
    /// As [`Rest::exchange`].
    pub async fn place_order_action(&self, action: OrderAction, nonce: u64) -> Result<Vec<ActionStatus>, RestError> {
        self.exchange(Action::Order(action), nonce).await
    }

    /// Cancels by the venue's order ids.
    ///
    /// # Errors
    /// As [`Rest::exchange`].
    pub async fn cancel(&self, cancels: Vec<Cancel>, nonce: u64) -> Result<Vec<ActionStatus>, RestError> {
        self.exchange(Action::Cancel(CancelAction { cancels }), nonce).await
    }

    /// Cancels one order of `asset` by our cloid.
    ///
    /// # Errors
    /// As [`Rest::exchange`].
    pub async fn cancel_by_cloid(&self, asset: u32, cloid: Cloid, nonce: u64) -> Result<ActionStatus, RestError> {
        let action = Action::CancelByCloid(CancelByCloidAction { cancels: vec![CancelByCloid { asset, cloid }] });
        let mut statuses = self.exchange(action, nonce).await?;
        statuses.pop().ok_or_else(|| RestError::Decode("a cancel answered with no status".into()))
    }

    /// Sets the leverage of `asset` (cross or isolated margin).
    ///
    /// # Errors
    /// As [`Rest::exchange`].
    pub async fn update_leverage(
        &self,
        asset: u32,
        is_cross: bool,
        leverage: u32,
        nonce: u64,
    ) -> Result<(), RestError> {
        let action = Action::UpdateLeverage(UpdateLeverage { asset, is_cross, leverage });
        match self.exchange(action, nonce).await?.as_slice() {
            [ActionStatus::Error(message), ..] => Err(RestError::Rejected(message.clone())),
            _ => Ok(()),
        }
    }
}

/// Times a failed `/info` read is sent again (5xx, lost connection).
pub const READ_RETRIES: u32 = 3;

/// Pages of one [`Rest::user_fills_since`] at most (a limit on everything): the venue keeps
/// 10000 fills, five full pages.
pub const FILL_PAGES_MAX: usize = 100;

fn action_type(action: &Action) -> &'static str {
    match action {
        Action::Order(_) => "order",
        Action::Cancel(_) => "cancel",
        Action::CancelByCloid(_) => "cancelByCloid",
        Action::UpdateLeverage(_) => "updateLeverage",
        Action::ScheduleCancel(_) => "scheduleCancel",
        Action::Noop => "noop",
    }
}

fn action_json(action: &Action) -> String {
    serde_json::to_string(action).unwrap_or_else(|e| format!("<unserializable: {e}>"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_burst_and_bad_settings() {
        // 101 a minute with a burst of 100: the refill is one a minute, so nothing comes back
        // during the test.
        let budget = WeightBudget::new(101, 100).unwrap();
        assert!(budget.try_spend(60));
        assert!(budget.try_spend(40));
        assert!(!budget.try_spend(1));
        assert!(budget.try_spend(0));
        assert!(WeightBudget::new(1_200, 1_200).is_err());
        assert!(WeightBudget::new(1_200, 0).is_err());
        // The default: 1200 a minute, 120 at once.
        let options = RestOptions::default();
        let budget = WeightBudget::new(options.weight_per_minute, options.burst_weight).unwrap();
        assert!(budget.try_spend(120));
        assert!(!budget.try_spend(20));
    }

    #[test]
    fn ambiguity_is_for_what_may_have_reached_the_venue() {
        assert!(RestError::Transport("timed out".into()).is_ambiguous());
        assert!(RestError::Http { status: 502, body: String::new() }.is_ambiguous());
        assert!(!RestError::Http { status: 429, body: String::new() }.is_ambiguous());
        assert!(!RestError::Rejected("Invalid nonce: duplicate nonce 1741107452532".into()).is_ambiguous());
    }
}
