//! Helpers of the server tests: a small market, signed `/exchange` requests, `/info`
//! queries, WebSocket clients.
#![allow(dead_code)]

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use hyperliquid::{
    types::{Action, Limit, OrderType, OrderWire, Tif},
    wire::cloid_to_wire,
    Address, ExchangeRequest, Network, Wallet,
};
use hyperliquid_server::{Config, Server, DEFAULT_PRIVATE_KEY};
use journal::event::{Cloid, Kline};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

pub const COIN: &str = "BTC";
pub const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;
/// A key no server accepts.
pub const STRANGER_KEY: &str = "0xe908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The klines' symbol: the server trades it as [`COIN`].
pub const SYMBOL: &str = "BTCUSDT";

/// Bar `i` of a 1m market: open 100+i, high open+2, low open−2, close open+1, volume 1.
pub fn bar(i: i64) -> Kline {
    let open = Decimal::from(100 + i);
    Kline {
        symbol: SYMBOL.into(),
        interval_ms: 60_000,
        open_time_ms: T0 + i * 60_000,
        open,
        high: open + Decimal::TWO,
        low: open - Decimal::TWO,
        close: open + Decimal::ONE,
        volume: Decimal::ONE,
        closed: true,
    }
}

pub fn bars(n: i64) -> Vec<Kline> {
    (0..n).map(bar).collect()
}

/// A held market (the clock waits for a candle subscription) of `n` bars at `speed`, with 3
/// bars of history and size decimals 2 (prices take up to 4 decimals and 5 figures).
pub fn held(n: usize, speed: f64) -> (Config, Vec<Kline>) {
    let config = Config { hold: true, speed, history: 3, sz_decimals: 2, ..Config::default() };
    (config, bars(n as i64))
}

pub async fn serve(config: Config, klines: Vec<Kline>) -> Server {
    hyperliquid_server::start(config, COIN, klines).await.expect("the server starts")
}

/// Wall ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A client for one server, signing with the default key for testnet.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub wallet: Wallet,
    pub network: Network,
    pub nonce: AtomicU64,
}

/// A response: status, JSON body (Null when not JSON) and the raw text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// `response` of an `{"status": "err"}` answer.
    pub fn err(&self) -> &str {
        assert_eq!(self.body["status"], "err", "{}", self.text);
        self.body["response"].as_str().unwrap_or("")
    }

    /// The per-order or per-cancel statuses of an ok answer.
    pub fn statuses(&self) -> Vec<Value> {
        assert_eq!(self.body["status"], "ok", "{}", self.text);
        self.body["response"]["data"]["statuses"].as_array().cloned().unwrap_or_default()
    }
}

impl Client {
    pub fn new(server: &Server) -> Client {
        Client {
            http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(),
            base: server.rest_url(),
            wallet: Wallet::from_hex(DEFAULT_PRIVATE_KEY).unwrap(),
            network: Network::Testnet,
            nonce: AtomicU64::new(now_ms()),
        }
    }

    pub fn address(&self) -> Address {
        self.wallet.address()
    }

    /// A fresh nonce: the wall ms, or one more than the last if that is not larger.
    pub fn next_nonce(&self) -> u64 {
        let now = now_ms();
        let mut current = self.nonce.load(Ordering::SeqCst);
        loop {
            let next = current.max(now.saturating_sub(1)) + 1;
            match self.nonce.compare_exchange(current, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(actual) => current = actual,
            }
        }
    }

    async fn send(&self, path: &str, body: String) -> Reply {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the request is answered");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    pub async fn info(&self, body: Value) -> Reply {
        self.send("/info", body.to_string()).await
    }

    /// `/info` answered 200, its body.
    pub async fn info_ok(&self, body: Value) -> Value {
        let reply = self.info(body).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.send(path, body.to_owned()).await
    }

    /// `action` signed with `nonce` by `wallet` for `network`, as a JSON body.
    pub fn signed_with(&self, action: Action, nonce: u64, wallet: &Wallet, network: Network) -> Value {
        let request = ExchangeRequest::sign(wallet, action, nonce, None, None, network).unwrap();
        serde_json::to_value(&request).unwrap()
    }

    pub async fn exchange_with(&self, action: Action, nonce: u64, wallet: &Wallet, network: Network) -> Reply {
        let body = self.signed_with(action, nonce, wallet, network);
        self.send("/exchange", body.to_string()).await
    }

    pub async fn exchange(&self, action: Action) -> Reply {
        let nonce = self.next_nonce();
        self.exchange_with(action, nonce, &self.wallet.clone(), self.network).await
    }

    /// One limit order.
    pub async fn order(&self, is_buy: bool, px: &str, sz: &str, tif: Tif, cloid: Option<Cloid>) -> Reply {
        self.exchange(Action::orders(vec![limit(is_buy, px, sz, tif, cloid)])).await
    }

    pub async fn user_query(&self, kind: &str) -> Value {
        self.info_ok(json!({"type": kind, "user": self.address().to_string()})).await
    }

    pub async fn order_status(&self, oid: Value) -> Value {
        self.info_ok(json!({"type": "orderStatus", "user": self.address().to_string(), "oid": oid})).await
    }

    /// The last price (`allMids`).
    pub async fn mid(&self) -> Decimal {
        let mids = self.info_ok(json!({"type": "allMids"})).await;
        mids[COIN].as_str().unwrap().parse().unwrap()
    }
}

/// A limit order on asset 0 with wire strings as given (not checked here: the server checks).
pub fn limit(is_buy: bool, px: &str, sz: &str, tif: Tif, cloid: Option<Cloid>) -> OrderWire {
    OrderWire {
        asset: 0,
        is_buy,
        limit_px: px.into(),
        sz: sz.into(),
        reduce_only: false,
        order_type: OrderType::Limit(Limit { tif }),
        cloid,
    }
}

pub fn cloid(n: u8) -> Cloid {
    let mut bytes = [0u8; 16];
    bytes[15] = n;
    Cloid(bytes)
}

pub fn cloid_text(n: u8) -> String {
    cloid_to_wire(&cloid(n))
}

/// A connection, its greeting read and checked.
pub async fn connect(server: &Server) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url()).await.expect("ws connects");
    let greeting = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    match greeting {
        Ok(Some(Ok(Message::Text(text)))) => assert_eq!(text.as_str(), hyperliquid_server::ws::GREETING),
        other => panic!("no greeting: {other:?}"),
    }
    ws
}

pub async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into())).await.expect("ws sends");
}

/// The next JSON text message, within `timeout`; `None` on timeout or a closed socket (the
/// plain-text greeting, read by [`connect`], is skipped if met again).
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == hyperliquid_server::ws::GREETING => continue,
            Ok(Some(Ok(Message::Text(text)))) => {
                return Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Messages until one satisfies `wanted` (returned), within `timeout`.
pub async fn until(ws: &mut Ws, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let message = next_json(ws, left).await?;
        if wanted(&message) {
            return Some(message);
        }
    }
}

/// Subscribes and checks the ack.
pub async fn subscribe(ws: &mut Ws, subscription: Value) {
    send(ws, json!({"method": "subscribe", "subscription": subscription})).await;
    let ack = until(ws, Duration::from_secs(5), |m| m["channel"] == "subscriptionResponse" || m["channel"] == "error")
        .await
        .expect("a subscribe answer");
    assert_eq!(ack["channel"], "subscriptionResponse", "{ack}");
    assert_eq!(ack["data"]["subscription"], subscription, "{ack}");
}

/// A connection watching the candles (which starts a held clock).
pub async fn watch_candles(server: &Server) -> Ws {
    let mut ws = connect(server).await;
    subscribe(&mut ws, json!({"type": "candle", "coin": COIN, "interval": "1m"})).await;
    ws
}

/// Waits until `n` bars are closed.
pub async fn wait_bars(server: &Server, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.bars_closed() < n {
        assert!(Instant::now() < deadline, "bar {n} never closed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the bar's messages out.
    tokio::time::sleep(Duration::from_millis(30)).await;
}

pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hyperliquid-server-{}-{name}", std::process::id()))
}
