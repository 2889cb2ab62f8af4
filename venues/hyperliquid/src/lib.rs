//! The Hyperliquid perpetuals adapter, its foundations: signed L1 actions, wire numbers,
//! client ids, nonces, the typed actions and answers of `/exchange` and `/info`, and a REST
//! client that spends the per-IP weight budget before it sends.
//!
//! Like `venues/bybit`, this crate speaks the wire and nothing else: it knows no engine and
//! no trader, and journals nothing. Every price and size is a `Decimal`; nothing goes
//! through `f64`. The API wallet's private key comes from the environment
//! ([`Wallet::from_env`]) and appears in no `Debug` output, log line or error.
//!
//! # Layout
//!
//! - [`sign`]: the connection id (msgpack ‖ nonce ‖ vault ‖ expiresAfter → keccak256), the
//!   phantom agent's EIP-712 digest, secp256k1 signing ([`Wallet`]) and signer recovery
//!   ([`recover_l1_signer`], for the local server).
//! - [`wire`]: prices and sizes as Hyperliquid takes them (5 significant figures, at most
//!   `6 − szDecimals` decimals, sizes at `szDecimals`), refusing or rounding with an explicit
//!   direction; the $10 minimum notional; the `0x` + 32-hex-digit cloid.
//! - [`nonce`]: [`NonceAllocator`], strictly increasing nonces that survive restarts.
//! - [`types`]: the actions ([`Action`]), the `/exchange` body ([`ExchangeRequest`]), the
//!   `/info` requests ([`InfoRequest`]) and readers for every answer the adapter needs.
//! - [`rest`]: [`Rest`], `/info` and `/exchange` over HTTP under the per-IP weight budget
//!   ([`WeightBudget`]).
//! - [`stream`]: the WebSocket client ([`stream::spawn`]): closed candles, order updates and
//!   fills as [`StreamEvent`]s, ping, reconnect with backoff, resubscription, `Up`/`Down`,
//!   fills de-duplicated by `tid`.
//!
//! # Why these crates
//!
//! - `rmp-serde` (`to_vec_named`): the action hash is over msgpack *maps* whose keys come in
//!   the order of the struct's fields; serde keeps declaration order, so the documented order
//!   is the code's order, and the published test vectors check it byte for byte.
//! - `k256` (RustCrypto, ecdsa with recovery ids) and `sha3` (`Keccak256`): exactly the two
//!   primitives the scheme needs, pure Rust, on `digest` 0.10 like the `sha2`/`hmac` the
//!   workspace already builds. alloy would bring the same secp256k1 code (alloy signs with
//!   k256) behind a much larger dependency tree (the `sol!` macro, RLP, provider types)
//!   for the one fixed EIP-712 struct `Agent { source, connectionId }`, whose hash is six
//!   lines written out in [`sign::agent_digest`] and checked against the published vectors.
//! - `reqwest`, `tokio`, `governor`, `tokio-tungstenite` and `futures-util`: the HTTP
//!   client, runtime, rate limiter and WebSocket client the Bybit adapter already uses.

pub mod nonce;
pub mod rest;
pub mod sign;
pub mod stream;
pub mod types;
pub mod wire;

pub use nonce::{NonceAllocator, NonceError};
pub use rest::{Rest, RestError, RestOptions, WeightBudget};
pub use sign::{recover_l1_signer, sign_l1_action, Address, SignError, Signature, Wallet};
pub use stream::{StreamConfig, StreamEvent};
pub use types::{Action, ExchangeRequest, InfoRequest};
pub use wire::WireError;

/// Mainnet or testnet: the phantom agent's `source` and the URLs differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    Mainnet,
    Testnet,
}

impl Network {
    /// The phantom agent's `source`: "a" on mainnet, "b" on testnet.
    pub fn source(self) -> &'static str {
        match self {
            Network::Mainnet => "a",
            Network::Testnet => "b",
        }
    }
}

/// Where a Hyperliquid lives: the REST base URL (`/info`, `/exchange` under it) and the
/// WebSocket URL, and which network's signatures it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub rest: String,
    pub ws: String,
    pub network: Network,
}

impl Endpoints {
    pub fn mainnet() -> Endpoints {
        Endpoints {
            rest: "https://api.hyperliquid.xyz".into(),
            ws: "wss://api.hyperliquid.xyz/ws".into(),
            network: Network::Mainnet,
        }
    }

    pub fn testnet() -> Endpoints {
        Endpoints {
            rest: "https://api.hyperliquid-testnet.xyz".into(),
            ws: "wss://api.hyperliquid-testnet.xyz/ws".into(),
            network: Network::Testnet,
        }
    }

    /// A local server at `rest` (`http://127.0.0.1:PORT`) that checks signatures as `network`.
    pub fn local(rest: &str, network: Network) -> Endpoints {
        let rest = rest.trim_end_matches('/').to_owned();
        let ws = format!("{}/ws", rest.replacen("http", "ws", 1));
        Endpoints { rest, ws, network }
    }
}
