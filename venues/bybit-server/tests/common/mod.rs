//! Helpers of the server tests: a small market, signed requests, WebSocket clients.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bybit_server::{auth::sign, server::wall_ms, Config, Server, DEFAULT_API_KEY, DEFAULT_API_SECRET};
use futures_util::{SinkExt, StreamExt};
use journal::event::Kline;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

pub const SYMBOL: &str = "BTCUSDT";
pub const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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

/// A held market (the clock waits for a kline subscription) of `n` bars at `speed`.
pub fn held(n: usize, speed: f64) -> (Config, Vec<Kline>) {
    let config = Config { hold: true, speed, ..Config::default() };
    (config, bars(n as i64))
}

pub async fn serve(config: Config, klines: Vec<Kline>) -> Server {
    bybit_server::start(config, SYMBOL, klines).await.expect("the server starts")
}

/// A client for one server, signing as the default key.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
    pub secret: String,
    /// Added to the local clock when signing.
    pub clock_offset_ms: i64,
}

/// A response: status, headers, JSON body (Null when not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> i64 {
        self.body["retCode"].as_i64().unwrap_or(-1)
    }

    pub fn message(&self) -> &str {
        self.body["retMsg"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

impl Client {
    pub fn new(server: &Server) -> Client {
        Client {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
            base: server.rest_url(),
            key: DEFAULT_API_KEY.into(),
            secret: DEFAULT_API_SECRET.into(),
            clock_offset_ms: 0,
        }
    }

    fn signed(&self, builder: reqwest::RequestBuilder, payload: &str) -> reqwest::RequestBuilder {
        let ts = (wall_ms() + self.clock_offset_ms).to_string();
        let signature = sign(&self.secret, format!("{ts}{}5000{payload}", self.key).as_bytes());
        builder
            .header("X-BAPI-API-KEY", &self.key)
            .header("X-BAPI-TIMESTAMP", ts)
            .header("X-BAPI-SIGN", signature)
            .header("X-BAPI-RECV-WINDOW", "5000")
    }

    async fn send(builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    pub async fn get(&self, path: &str, query: &str) -> Reply {
        let url = format!("{}{path}?{query}", self.base);
        Client::send(self.signed(self.http.get(url), query)).await
    }

    pub async fn public(&self, path: &str, query: &str) -> Reply {
        Client::send(self.http.get(format!("{}{path}?{query}", self.base))).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Reply {
        let request = self.http.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        Client::send(self.signed(request, body).body(body.to_owned())).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, &body.to_string()).await
    }

    /// A create; `extra` fields override the defaults (a 0.1 market buy: 10 USDT).
    pub async fn create(&self, extra: Value) -> Reply {
        let mut body =
            json!({"category": "linear", "symbol": SYMBOL, "side": "Buy", "orderType": "Market", "qty": "0.1"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.post("/v5/order/create", &body).await
    }

    pub async fn executions(&self) -> Vec<Value> {
        let reply = self.get("/v5/execution/list", &format!("category=linear&symbol={SYMBOL}")).await;
        assert_eq!(reply.code(), 0, "{}", reply.body);
        reply.body["result"]["list"].as_array().cloned().unwrap_or_default()
    }

    pub async fn order(&self, link_id: &str) -> Value {
        let reply =
            self.get("/v5/order/realtime", &format!("category=linear&orderLinkId={link_id}&symbol={SYMBOL}")).await;
        assert_eq!(reply.code(), 0, "{}", reply.body);
        reply.body["result"]["list"][0].clone()
    }
}

pub async fn connect(server: &Server, path: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}{path}", server.ws_url())).await.expect("ws connects");
    ws
}

pub async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into())).await.expect("ws sends");
}

/// The next text message as JSON, within `timeout`.
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
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

/// Subscribes a public connection to the market's klines (which starts a held clock).
pub async fn watch_klines(server: &Server) -> Ws {
    let mut ws = connect(server, "/v5/public/linear").await;
    send(&mut ws, json!({"op": "subscribe", "req_id": "k", "args": [format!("kline.1.{SYMBOL}")]})).await;
    let ack = next_json(&mut ws, Duration::from_secs(5)).await.expect("a subscribe ack");
    assert_eq!(ack["success"], true, "{ack}");
    ws
}

/// An authenticated private connection subscribed to `topics`.
pub async fn private_ws(server: &Server, topics: &[&str]) -> Ws {
    let mut ws = connect(server, "/v5/private").await;
    let expires = wall_ms() + 10_000;
    let signature = sign(DEFAULT_API_SECRET, format!("GET/realtime{expires}").as_bytes());
    send(&mut ws, json!({"op": "auth", "args": [DEFAULT_API_KEY, expires, signature]})).await;
    let ack = next_json(&mut ws, Duration::from_secs(5)).await.expect("an auth answer");
    assert_eq!(ack["success"], true, "{ack}");
    send(&mut ws, json!({"op": "subscribe", "req_id": "p", "args": topics})).await;
    let ack = next_json(&mut ws, Duration::from_secs(5)).await.expect("a subscribe ack");
    assert_eq!(ack["success"], true, "{ack}");
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
    tokio::time::sleep(Duration::from_millis(20)).await;
}

pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bybit-server-{}-{name}", std::process::id()))
}
