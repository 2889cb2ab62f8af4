//! The WebSocket streams: public klines, private order/execution/position/wallet.
//!
//! [`spawn`] runs one task per stream (the public one if there are klines to follow, the
//! private one if there are credentials). A session connects, authenticates (private),
//! subscribes and reports [`StreamEvent::Up`] on the subscribe ack; it pings every
//! `ping_every` and counts a connection silent for twice that as dead. Any loss (error,
//! close, refused auth or subscribe, silence) reports [`StreamEvent::Down`] once, then the
//! stream reconnects with capped exponential backoff (100 ms doubling to 5 s, plus up to
//! 20 % jitter) and, once subscribed again, reports `Up` again: the driver fills the gap
//! by REST. Failed reconnects in a row report no further `Down`.
//!
//! Frames that do not parse are logged and skipped; the tasks end when the receiver of
//! `tx` is dropped.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use journal::event::Kline;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

use crate::rest::ServerClock;
use crate::types;
use crate::{Credentials, Endpoints, Execution, OrderReport, PositionReport, WalletReport};

/// What the streams report, in the order frames were read.
#[derive(Clone, Debug)]
pub enum StreamEvent {
    /// A closed bar (`confirm: true`), with the instant its frame was read (for latency figures).
    Kline {
        kline: Kline,
        received: Instant,
    },
    Order(OrderReport),
    Execution(Execution),
    Position(PositionReport),
    Wallet(WalletReport),
    /// A stream is connected and subscribed (after every reconnect too: the driver fills the gap by REST).
    Up {
        private: bool,
    },
    /// A stream was lost; it reconnects with backoff.
    Down {
        private: bool,
        reason: String,
    },
}

/// What to subscribe to.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub endpoints: Endpoints,
    /// None: public stream only (paper trading).
    pub credentials: Option<Credentials>,
    /// `(symbol, interval_ms)` of every `kline.{interval}.{symbol}` topic.
    pub klines: Vec<(String, i64)>,
    /// 20 s as Bybit recommends.
    pub ping_every: Duration,
    /// The venue's clock for the auth op's `expires` ([`crate::Rest::clock`]); None: the local clock.
    pub clock: Option<ServerClock>,
}

impl StreamConfig {
    /// The streams of `endpoints` with Bybit's 20 s ping and the local clock for `expires`
    /// (set [`StreamConfig::clock`] to [`crate::Rest::clock`] to use the venue's).
    pub fn new(endpoints: Endpoints, credentials: Option<Credentials>, klines: Vec<(String, i64)>) -> StreamConfig {
        StreamConfig { endpoints, credentials, klines, ping_every: Duration::from_secs(20), clock: None }
    }
}

/// How long the auth op's signature stays valid after it is made.
const AUTH_EXPIRES_AFTER_MS: i64 = 10_000;
/// How long to wait for a connection, the auth answer and the subscribe ack.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A session up this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Runs the streams until `tx` is closed: connects, authenticates the private one,
/// subscribes, pings, and reconnects with backoff after any loss, resubscribing.
pub fn spawn(config: StreamConfig, tx: UnboundedSender<StreamEvent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let public = (!config.klines.is_empty()).then(|| tokio::spawn(run(config.clone(), false, tx.clone())));
        let private = config.credentials.is_some().then(|| tokio::spawn(run(config.clone(), true, tx.clone())));
        drop(tx);
        for task in [public, private].into_iter().flatten() {
            // A panic in a stream task is a bug; there is nothing to resume.
            if let Err(error) = task.await {
                tracing::error!(%error, "bybit stream task failed");
            }
        }
    })
}

/// How a session ended.
enum End {
    /// The receiver is gone: stop.
    Closed,
    /// The connection was lost; `up` says whether it had reported Up (and since when).
    Lost { reason: String, up_since: Option<Instant> },
}

async fn run(config: StreamConfig, private: bool, tx: UnboundedSender<StreamEvent>) {
    let mut backoff = BACKOFF_FIRST;
    // Down is reported once per loss: after an Up, or for the first failed connect.
    let mut down_reported = false;
    loop {
        if tx.is_closed() {
            return;
        }
        match session(&config, private, &tx).await {
            End::Closed => return,
            End::Lost { reason, up_since } => {
                if up_since.is_some() {
                    down_reported = false;
                }
                if up_since.is_some_and(|since| since.elapsed() >= HEALTHY_AFTER) {
                    backoff = BACKOFF_FIRST;
                }
                tracing::warn!(private, %reason, backoff_ms = backoff.as_millis(), "bybit stream lost; reconnecting");
                if !down_reported {
                    down_reported = true;
                    if tx.send(StreamEvent::Down { private, reason }).is_err() {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(with_jitter(backoff)) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Up to 20 % more, from the clock's nanoseconds (not a journal input: only reconnect spacing).
fn with_jitter(base: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 1000.0 * 0.2)
}

/// The topics of a stream.
fn topics(config: &StreamConfig, private: bool) -> Vec<String> {
    if private {
        return ["order", "execution", "position", "wallet"].map(String::from).to_vec();
    }
    config
        .klines
        .iter()
        .filter_map(|(symbol, interval_ms)| match crate::interval_label(*interval_ms) {
            Some(label) => Some(format!("kline.{label}.{symbol}")),
            None => {
                tracing::error!(symbol, interval_ms, "Bybit has no kline interval of this length; not subscribed");
                None
            }
        })
        .collect()
}

fn lost(reason: impl Into<String>, up_since: Option<Instant>) -> End {
    End::Lost { reason: reason.into(), up_since }
}

async fn session(config: &StreamConfig, private: bool, tx: &UnboundedSender<StreamEvent>) -> End {
    let url = if private { &config.endpoints.ws_private } else { &config.endpoints.ws_public };
    let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::connect_async(url.as_str())).await;
    let ws = match connected {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(error)) => return lost(format!("connect {url}: {error}"), None),
        Err(_) => return lost(format!("connect {url}: timed out"), None),
    };
    let (mut sink, mut stream) = ws.split();

    if private {
        let Some(credentials) = &config.credentials else { return lost("no credentials", None) };
        let now_ms = config.clock.as_ref().map_or_else(|| ServerClock::default().now_ms(), ServerClock::now_ms);
        let expires_ms = now_ms + AUTH_EXPIRES_AFTER_MS;
        let signature = crate::sign::ws_auth(credentials, expires_ms);
        let auth = json!({"req_id": "auth", "op": "auth", "args": [credentials.key, expires_ms, signature]});
        if let Err(error) = sink.send(Message::text(auth.to_string())).await {
            return lost(format!("send auth: {error}"), None);
        }
        match wait_for_op(&mut stream, "auth").await {
            Ok(answer) if answer.get("success").and_then(Value::as_bool) == Some(true) => {}
            Ok(answer) => return lost(format!("auth refused: {}", ret_msg(&answer)), None),
            Err(reason) => return lost(format!("auth: {reason}"), None),
        }
    }

    let topics = topics(config, private);
    let subscribe = json!({"req_id": "subscribe", "op": "subscribe", "args": topics});
    if let Err(error) = sink.send(Message::text(subscribe.to_string())).await {
        return lost(format!("send subscribe: {error}"), None);
    }

    let ping = json!({"req_id": "ping", "op": "ping"}).to_string();
    let silent_limit = config.ping_every * 2;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + config.ping_every, config.ping_every);
    let mut last_frame = tokio::time::Instant::now();
    let mut up_since: Option<Instant> = None;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let received = Instant::now();
                last_frame = tokio::time::Instant::now();
                let text = match frame {
                    None => return lost("connection ended", up_since),
                    Some(Err(error)) => return lost(format!("read: {error}"), up_since),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or_else(String::new, |f| format!(" ({} {})", f.code, f.reason));
                        return lost(format!("closed by the server{why}"), up_since);
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text.into(),
                        Err(_) => continue,
                    },
                    // Pings are answered by tungstenite; pongs and raw frames only show liveness.
                    Some(Ok(_)) => continue,
                };
                let value: Value = match serde_json::from_str(text.as_str()) {
                    Ok(value) => value,
                    Err(error) => {
                        tracing::warn!(private, %error, frame = %clip(text.as_str()), "bybit frame is not JSON; skipped");
                        continue;
                    }
                };
                if value.get("topic").is_some() {
                    if forward(config, &value, received, tx).is_err() {
                        return End::Closed;
                    }
                    continue;
                }
                match value.get("op").and_then(Value::as_str) {
                    Some("subscribe") => {
                        if value.get("success").and_then(Value::as_bool) != Some(true) {
                            return lost(format!("subscribe refused: {}", ret_msg(&value)), up_since);
                        }
                        if up_since.is_none() {
                            up_since = Some(Instant::now());
                            tracing::info!(private, "bybit stream up");
                            if tx.send(StreamEvent::Up { private }).is_err() {
                                return End::Closed;
                            }
                        }
                    }
                    Some("ping" | "pong") => {}
                    _ => tracing::debug!(private, frame = %clip(text.as_str()), "bybit frame ignored"),
                }
            }
            _ = pings.tick() => {
                if let Err(error) = sink.send(Message::text(ping.clone())).await {
                    return lost(format!("send ping: {error}"), up_since);
                }
            }
            () = tokio::time::sleep_until(last_frame + silent_limit) => {
                return lost(format!("silent for {} ms", silent_limit.as_millis()), up_since);
            }
            () = tx.closed() => return End::Closed,
        }
    }
}

/// Reads frames until the answer to `op` (auth): other frames before it are skipped.
async fn wait_for_op<S>(stream: &mut S, op: &str) -> Result<Value, String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, stream.next()).await.map_err(|_| "no answer".to_owned())?;
        match frame {
            None => return Err("connection ended".into()),
            Some(Err(error)) => return Err(error.to_string()),
            Some(Ok(Message::Close(_))) => return Err("closed by the server".into()),
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(text.as_str()) {
                Ok(value) if value.get("op").and_then(Value::as_str) == Some(op) => return Ok(value),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, frame = %clip(text.as_str()), "bybit frame is not JSON; skipped"),
            },
            Some(Ok(_)) => {}
        }
    }
}

fn ret_msg(answer: &Value) -> String {
    answer.get("ret_msg").or_else(|| answer.get("retMsg")).and_then(Value::as_str).unwrap_or("(no message)").to_owned()
}

fn clip(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The events of a topic frame, in the order of its `data` items; items that do not parse
/// are logged and skipped.
pub(crate) fn events(klines: &[(String, i64)], frame: &Value, received: Instant) -> Vec<StreamEvent> {
    let topic = frame.get("topic").and_then(Value::as_str).unwrap_or_default();
    let items: Vec<&Value> = match frame.get("data") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    };
    let mut parts = topic.split('.');
    let kind = parts.next().unwrap_or_default();
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let event = match kind {
            "kline" => {
                let (label, symbol) =
                    (parts.clone().next().unwrap_or_default(), parts.clone().nth(1).unwrap_or_default());
                let interval_ms = klines
                    .iter()
                    .find(|(s, ms)| s == symbol && crate::interval_label(*ms) == Some(label))
                    .map(|(_, ms)| *ms);
                match types::kline_from_ws(symbol, interval_ms, item) {
                    Ok(kline) if kline.closed => Ok(Some(StreamEvent::Kline { kline, received })),
                    Ok(_) => Ok(None),
                    Err(error) => Err(error),
                }
            }
            "order" => OrderReport::from_json(item).map(|o| Some(StreamEvent::Order(o))),
            "execution" => Execution::from_json(item).map(|e| Some(StreamEvent::Execution(e))),
            "position" => PositionReport::from_json(item).map(|p| Some(StreamEvent::Position(p))),
            "wallet" => WalletReport::from_json(item).map(|w| Some(StreamEvent::Wallet(w))),
            _ => Ok(None),
        };
        match event {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(error) => tracing::warn!(topic, %error, item = %item, "bybit push item does not parse; skipped"),
        }
    }
    events
}

fn forward(
    config: &StreamConfig,
    frame: &Value,
    received: Instant,
    tx: &UnboundedSender<StreamEvent>,
) -> Result<(), ()> {
    for event in events(&config.klines, frame, received) {
        tx.send(event).map_err(|_| ())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use journal::event::Side;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::OrderStatus;

    #[test]
    fn only_confirmed_bars_are_forwarded() {
        let frame = json!({"topic": "kline.5.BTCUSDT", "type": "snapshot", "ts": 1672324988882_i64, "data": [
            {"start": 1672324800000_i64, "end": 1672325099999_i64, "interval": "5", "open": "16649.5", "close": "16677",
             "high": "16677", "low": "16608", "volume": "2.081", "turnover": "34666.4005", "confirm": false, "timestamp": 1672324988882_i64},
            {"start": 1672324500000_i64, "end": 1672324799999_i64, "interval": "5", "open": "16600", "close": "16649.5",
             "high": "16650", "low": "16590", "volume": "3.5", "turnover": "1", "confirm": true, "timestamp": 1672324800001_i64}
        ]});
        let events = events(&[("BTCUSDT".into(), 300_000)], &frame, Instant::now());
        assert_eq!(events.len(), 1);
        let StreamEvent::Kline { kline, .. } = &events[0] else { panic!("a kline: {events:?}") };
        assert_eq!(kline.symbol, "BTCUSDT");
        assert_eq!(kline.interval_ms, 300_000);
        assert_eq!(kline.open_time_ms, 1_672_324_500_000);
        assert_eq!(kline.close, dec!(16649.5));
        assert!(kline.closed);
    }

    #[test]
    fn both_filled_of_a_race_pass_through() {
        let item = |reject: &str, cancel: &str| {
            json!({"category": "linear", "symbol": "BTCUSDT", "orderId": "o1", "orderLinkId": "c1", "side": "Buy",
                "orderType": "Limit", "price": "30000", "qty": "0.01", "orderStatus": "Filled", "leavesQty": "0",
                "cumExecQty": "0.01", "rejectReason": reject, "cancelType": cancel,
                "createdTime": "1672364262444", "updatedTime": "1672364262457"})
        };
        let frame = json!({"id": "x", "topic": "order", "creationTime": 1672364262474_i64,
            "data": [item("EC_NoError", "UNKNOWN"), item("EC_OrigClOrdIDDoesNotExist", "CancelByUser")]});
        let events = events(&[], &frame, Instant::now());
        assert_eq!(events.len(), 2);
        for event in &events {
            let StreamEvent::Order(order) = event else { panic!("an order: {event:?}") };
            assert_eq!(order.status, OrderStatus::Filled);
            assert_eq!(order.side, Side::Buy);
        }
    }

    #[test]
    fn private_topics_and_bad_items() {
        let frame = json!({"topic": "execution", "data": [
            {"symbol": "BTCUSDT", "execId": "e1", "orderId": "o1", "orderLinkId": "c1", "side": "Sell", "execType": "Trade",
             "execQty": "0.01", "execPrice": "30000", "execFee": "0.18", "feeRate": "0.0006", "isMaker": false,
             "markPrice": "30001", "execTime": "1700000000000"},
            {"symbol": "BTCUSDT", "execId": "e2"}
        ]});
        let events_ = events(&[], &frame, Instant::now());
        assert_eq!(events_.len(), 1, "the bad item is skipped");
        assert!(matches!(&events_[0], StreamEvent::Execution(e) if e.exec_id == "e1"));

        let position = json!({"topic": "position", "data": [{"symbol": "BTCUSDT", "side": "Buy", "size": "0.01",
            "entryPrice": "30000", "updatedTime": "1700000000000"}]});
        assert!(matches!(&events(&[], &position, Instant::now())[0], StreamEvent::Position(p) if p.qty == dec!(0.01)));

        let wallet = json!({"topic": "wallet", "data": [{"accountType": "UNIFIED", "totalAvailableBalance": "90",
            "coin": [{"coin": "USDT", "equity": "101", "walletBalance": "100"}]}]});
        assert!(matches!(&events(&[], &wallet, Instant::now())[0], StreamEvent::Wallet(w) if w.equity == dec!(101)));

        assert!(events(&[], &json!({"topic": "order", "data": "nonsense"}), Instant::now()).is_empty());
        assert!(events(&[], &json!({"topic": "greeks", "data": [{}]}), Instant::now()).is_empty());
    }

    #[test]
    fn topics_of_each_stream() {
        let config = StreamConfig {
            endpoints: Endpoints::mainnet(),
            credentials: None,
            klines: vec![("BTCUSDT".into(), 60_000), ("ETHUSDT".into(), 86_400_000), ("XRPUSDT".into(), 7)],
            ping_every: Duration::from_secs(20),
            clock: None,
        };
        assert_eq!(topics(&config, false), ["kline.1.BTCUSDT", "kline.D.ETHUSDT"]);
        assert_eq!(topics(&config, true), ["order", "execution", "position", "wallet"]);
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        for _ in 0..100 {
            let d = with_jitter(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(120), "{d:?}");
        }
    }
}
