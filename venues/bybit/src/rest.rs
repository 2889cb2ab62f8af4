//! Signed REST: one [`Rest`] client for the endpoints the live driver uses.
//! (Skeleton: the contract between the driver and the adapter; bodies to come.)

use journal::event::{Cloid, Kline, OrderIntent};

use crate::{Credentials, Endpoints, Execution, InstrumentInfo, OrderReport, PositionReport, WalletReport};

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct RestOptions {
    /// `X-BAPI-RECV-WINDOW`, ms.
    pub recv_window_ms: u64,
    /// Sign and log requests that change something (create, cancel) without sending them.
    pub dry_run: bool,
    /// Per-request timeout, ms: a create that times out is ambiguous.
    pub timeout_ms: u64,
}

impl Default for RestOptions {
    fn default() -> RestOptions {
        RestOptions { recv_window_ms: 5_000, dry_run: false, timeout_ms: 5_000 }
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
    /// An answer that does not parse.
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
}

/// A create the venue took: its order id and the server time of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub order_id: String,
    pub time_ms: i64,
}

/// The REST client. Cheap to clone (shared connection pool, clock offset and limits).
#[derive(Clone, Debug)]
pub struct Rest {}

#[allow(unused_variables, clippy::unused_async)]
impl Rest {
    pub fn new(endpoints: &Endpoints, credentials: Option<Credentials>, options: RestOptions) -> Rest {
        todo!()
    }

    /// Fetches `/v5/market/time`, keeps the offset to the local clock, returns the server time (ms).
    pub async fn sync_time(&self) -> Result<i64, Error> {
        todo!()
    }

    /// The server time now, as estimated from the last sync (ms).
    pub fn server_now_ms(&self) -> i64 {
        todo!()
    }

    pub async fn instrument(&self, symbol: &str) -> Result<InstrumentInfo, Error> {
        todo!()
    }

    /// The bars of `symbol` whose open time is in `[start_ms, end_ms]`, oldest first
    /// (Bybit answers newest first, 1000 at most a page; this pages and reverses).
    /// Every bar is marked closed; the caller drops the one still forming.
    pub async fn klines(&self, symbol: &str, interval_ms: i64, start_ms: i64, end_ms: i64) -> Result<Vec<Kline>, Error> {
        todo!()
    }

    /// `POST /v5/order/create` with the intent's cloid as `orderLinkId`.
    pub async fn create_order(&self, intent: &OrderIntent) -> Result<Created, Error> {
        todo!()
    }

    /// `POST /v5/order/cancel` by `orderLinkId`; returns the server time of the answer.
    pub async fn cancel_order(&self, symbol: &str, cloid: &Cloid) -> Result<i64, Error> {
        todo!()
    }

    /// The order of `orderLinkId` `cloid`, open or recently closed; None if the venue has none.
    pub async fn order(&self, symbol: &str, cloid: &Cloid) -> Result<Option<OrderReport>, Error> {
        todo!()
    }

    /// Every open order of `symbol` (all pages).
    pub async fn open_orders(&self, symbol: &str) -> Result<Vec<OrderReport>, Error> {
        todo!()
    }

    /// Executions of `symbol` with `execTime >= start_ms`, oldest first (all pages).
    pub async fn executions(&self, symbol: &str, start_ms: i64) -> Result<Vec<Execution>, Error> {
        todo!()
    }

    pub async fn positions(&self, symbol: &str) -> Result<Vec<PositionReport>, Error> {
        todo!()
    }

    pub async fn wallet(&self) -> Result<WalletReport, Error> {
        todo!()
    }

    /// `(taker, maker)` fee rates of `symbol` for this account.
    pub async fn fee_rate(&self, symbol: &str) -> Result<(rust_decimal::Decimal, rust_decimal::Decimal), Error> {
        todo!()
    }
}
