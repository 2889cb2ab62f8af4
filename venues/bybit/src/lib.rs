//! The Bybit v5 adapter: signed REST requests, per-endpoint rate limits, and the
//! public and private WebSocket streams, turned into typed reports.
//!
//! This crate speaks the wire and nothing else: it knows no journal, no engine and
//! no trader. The live driver (`src/live/`) turns its reports into journaled inputs
//! and its effects into requests. Every amount is a `Decimal` parsed from Bybit's
//! strings; nothing here rounds money.
//!
//! - [`rest`]: [`Rest`], one client for every REST endpoint the driver needs, with the
//!   venue's clock ([`ServerClock`]) and per-endpoint rate-limit budgets ([`EndpointClass`]).
//! - [`stream`]: [`stream::spawn`], the WebSocket streams with auth, ping, reconnect.
//! - [`sign`]: the v5 signatures (REST and the WebSocket auth op).
//! - [`types`]: the reports ([`OrderReport`], [`Execution`], ...).

pub mod rest;
pub mod sign;
pub mod stream;
pub mod types;

use std::fmt;

pub use rest::{Created, EndpointClass, Error, Observer, Rest, RestOptions, ServerClock};
pub use stream::{StreamConfig, StreamEvent};
pub use types::{Execution, InstrumentInfo, OrderReport, OrderStatus, PositionReport, WalletReport};

/// An API key and its secret. The secret never leaves this value except into an HMAC:
/// `Debug` and `Display` show the key only.
#[derive(Clone)]
pub struct Credentials {
    pub key: String,
    secret: String,
}

impl Credentials {
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials { key: key.into(), secret: secret.into() }
    }

    /// The secret, for signing only.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials {{ key: {:?}, secret: <redacted> }}", self.key)
    }
}

/// Where a Bybit lives: the REST base URL and the two WebSocket URLs (linear public, private).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub rest: String,
    pub ws_public: String,
    pub ws_private: String,
}

impl Endpoints {
    pub fn mainnet() -> Endpoints {
        Endpoints {
            rest: "https://api.bybit.com".into(),
            ws_public: "wss://stream.bybit.com/v5/public/linear".into(),
            ws_private: "wss://stream.bybit.com/v5/private".into(),
        }
    }

    pub fn testnet() -> Endpoints {
        Endpoints {
            rest: "https://api-testnet.bybit.com".into(),
            ws_public: "wss://stream-testnet.bybit.com/v5/public/linear".into(),
            ws_private: "wss://stream-testnet.bybit.com/v5/private".into(),
        }
    }

    /// Demo trading (mainnet market data, demo account).
    pub fn demo() -> Endpoints {
        Endpoints {
            rest: "https://api-demo.bybit.com".into(),
            ws_public: "wss://stream.bybit.com/v5/public/linear".into(),
            ws_private: "wss://stream-demo.bybit.com/v5/private".into(),
        }
    }

    /// A local server (`quantfold venue-sim bybit`) at `ws_base` (`ws://127.0.0.1:PORT`):
    /// the documented paths under another host.
    pub fn local(rest: &str, ws_base: &str) -> Endpoints {
        let ws = ws_base.trim_end_matches('/');
        Endpoints {
            rest: rest.trim_end_matches('/').to_owned(),
            ws_public: format!("{ws}/v5/public/linear"),
            ws_private: format!("{ws}/v5/private"),
        }
    }
}

/// Bybit's interval label of a bar length in ms ("1", "5", "60", "D"), if it has one.
pub fn interval_label(interval_ms: i64) -> Option<&'static str> {
    const MIN: i64 = 60_000;
    Some(match interval_ms {
        x if x == MIN => "1",
        x if x == 3 * MIN => "3",
        x if x == 5 * MIN => "5",
        x if x == 15 * MIN => "15",
        x if x == 30 * MIN => "30",
        x if x == 60 * MIN => "60",
        x if x == 120 * MIN => "120",
        x if x == 240 * MIN => "240",
        x if x == 360 * MIN => "360",
        x if x == 720 * MIN => "720",
        x if x == 1440 * MIN => "D",
        x if x == 7 * 1440 * MIN => "W",
        _ => return None,
    })
}
