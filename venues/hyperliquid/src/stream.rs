//! The WebSocket client (VENUES.md §3.8): closed candles, order updates and fills, kept
//! alive, reconnected and resubscribed, reported as typed [`StreamEvent`]s on a channel.
//!
//! # What it does
//!
//! [`spawn`] runs one task over **one connection** to `ws_url` carrying every subscription:
//! `candle` per `(coin, interval)`, and for the user address `orderUpdates` and `userFills`.
//! A session connects, skips the venue's plain-text greeting ("Websocket connection
//! established."; any text that is not JSON is skipped), sends the subscriptions and
//! reports [`StreamEvent::Up`] once every one is acknowledged (`subscriptionResponse`). An
//! `error` message before that (a refused subscription) ends the session.
//!
//! - **Keep-alive.** The venue closes a connection that has *sent* it nothing for 60 s, so
//!   `{"method": "ping"}` goes out every `ping_every` (20 s) whatever arrives; the venue
//!   answers `{"channel": "pong"}`. A connection from which nothing at all (pong, data,
//!   ack) arrives for `dead_after` (45 s: two pings unanswered) is dead.
//! - **Reconnect.** Any loss (read error, close, the socket ending without a close frame,
//!   silence, a refused subscription, a handshake that does not finish in 10 s) reports
//!   [`StreamEvent::Down`] once, then the client reconnects with capped exponential backoff
//!   (`backoff_first` doubling to `backoff_max`, plus up to 20 % jitter; reset after a
//!   session that stayed up `healthy_after`), subscribes to everything again and reports
//!   `Up` again. Failed reconnects in a row report no further `Down`. On `Up` the driver
//!   fills the gap by REST (`candleSnapshot`, `orderStatus`/`openOrders`,
//!   `userFillsByTime`): the venue replays missed **fills** in the `userFills` snapshot of
//!   the new subscription, but neither missed candles nor missed order updates.
//! - **Candles** ([`StreamEvent::Candle`]) are forwarded only closed, as `journal::event::Kline`
//!   (`symbol` is the coin, `closed: true`), each `(coin, interval)` in strictly increasing
//!   open time, prices and volume exact (`Decimal` from the venue's strings). The venue
//!   pushes a candle *in progress* again and again as it trades (Candle `{t, T, …}`,
//!   §3.8) and never says "closed", so the client decides, by two rules:
//!   1. **A newer candle starts**: the first message of a later open time `t` closes the
//!      one held, with its last values. Exact and free of clocks: the venue's own order.
//!   2. **Its close time has passed**: a candle whose close time `T` is more than
//!      `close_grace` (2 s) behind the local wall clock is closed — on arrival (a bar the
//!      venue sends after its end, e.g. the local server, which pushes only ended bars of a
//!      replayed, historical clock) or by a timer (a market without trades in the next
//!      interval sends no newer candle). The grace lets the venue's last update of the
//!      interval arrive first.
//!
//!   Rule 1 alone would hold every bar of a venue that pushes only ended bars until the
//!   next one, a whole interval late; rule 2 alone would trust the local clock for every
//!   bar. A message for a candle already forwarded (or older) is dropped, as is an update
//!   after rule 2 fired (the grace was too short for that venue).
//! - **Order updates** ([`StreamEvent::Order`]): each `WsOrder` item as an
//!   [`OrderReport`] (status, `oid`, `cloid`, sizes; [`OrderReport::filled_size`]).
//! - **Fills** ([`StreamEvent::Fills`]): each `userFills` message's fills as [`UserFill`]s
//!   (`tid`, `oid`, `cloid` if any, `px`, `sz`, `side`, `fee`, `time`, …), with
//!   `snapshot: true` for the first message of a subscription (`isSnapshot`). A snapshot is
//!   always forwarded, even empty (it tells the driver the user stream caught up); the
//!   driver de-duplicates its fills against its journal.
//! - **De-duplication of plain wire repeats**, across reconnects: a fill whose `tid` this
//!   client has forwarded already is dropped (a duplicated message, the replay of a
//!   reconnect's snapshot); so is an order update identical in `oid`, status, status time
//!   and remaining size to one already forwarded. Both memories are bounded (the last
//!   [`REMEMBERED`] of each), more than a snapshot holds.
//!
//! # What it does not do
//!
//! No secret is involved: subscriptions name the public address. It sends no order (post
//! over WebSocket is not used), subscribes to nothing else (`l2Book`, `trades`,
//! `userEvents`, …), does not unsubscribe, and fills no gap itself: it has no REST client,
//! and missed candles or order updates are the driver's to fetch after `Up`. It does not
//! correct the local clock (rule 2 reads the wall clock; a clock more than `close_grace`
//! ahead of the venue's closes candles early). Items that do not parse are logged and
//! skipped (a fill that does not parse at the error level: REST recovery must find it).
//! The task ends when the receiver of the channel is dropped.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use journal::event::Kline;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

use crate::sign::Address;
use crate::types::{interval_label, Candle, OrderReport, UserFill};
use crate::Endpoints;

/// What the stream reports, in the order messages were read.
#[derive(Clone, Debug)]
pub enum StreamEvent {
    /// A closed candle, with the instant the message that closed it was read.
    Candle { kline: Kline, received: Instant },
    /// An `orderUpdates` item.
    Order(OrderReport),
    /// The fills of a `userFills` message not forwarded before; `snapshot` for the first
    /// message of a subscription (forwarded even when empty).
    Fills { snapshot: bool, fills: Vec<UserFill> },
    /// Connected and every subscription acknowledged (after every reconnect too: the driver
    /// fills the gap by REST).
    Up,
    /// The connection was lost; the stream reconnects with backoff.
    Down { reason: String },
}

/// What to subscribe to and how to keep the connection.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// `wss://api.hyperliquid.xyz/ws`, or a local server's.
    pub ws_url: String,
    /// `(coin, interval_ms)` of every `candle` subscription; the interval must have a
    /// Hyperliquid name ("1m" … "1w"), others are logged and not subscribed.
    pub candles: Vec<(String, i64)>,
    /// The user of `orderUpdates` and `userFills` (the account's public address); None:
    /// candles only.
    pub user: Option<Address>,
    /// How often `{"method": "ping"}` goes out (20 s; the venue's limit is 60 s).
    pub ping_every: Duration,
    /// Nothing received for this long: the connection is dead (45 s).
    pub dead_after: Duration,
    /// How far past its close time a candle is closed without a newer one (2 s).
    pub close_grace: Duration,
    /// The first reconnect delay (100 ms), doubled after each failure up to `backoff_max` (5 s).
    pub backoff_first: Duration,
    pub backoff_max: Duration,
    /// A session up this long resets the backoff (10 s).
    pub healthy_after: Duration,
}

impl StreamConfig {
    /// The stream of `endpoints.ws` with the defaults above.
    pub fn new(endpoints: &Endpoints, candles: Vec<(String, i64)>, user: Option<Address>) -> StreamConfig {
        StreamConfig {
            ws_url: endpoints.ws.clone(),
            candles,
            user,
            ping_every: Duration::from_secs(20),
            dead_after: Duration::from_secs(45),
            close_grace: Duration::from_secs(2),
            backoff_first: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            healthy_after: Duration::from_secs(10),
        }
    }

    /// The subscription objects, in the order they are sent (`userFills` last: its
    /// snapshot follows the last acknowledgement).
    pub fn subscriptions(&self) -> Vec<Value> {
        let mut subscriptions: Vec<Value> = self
            .candles
            .iter()
            .filter_map(|(coin, interval_ms)| match interval_label(*interval_ms) {
                Some(label) => Some(json!({"type": "candle", "coin": coin, "interval": label})),
                None => {
                    tracing::error!(
                        coin,
                        interval_ms,
                        "Hyperliquid has no candle interval of this length; not subscribed"
                    );
                    None
                }
            })
            .collect();
        if let Some(user) = self.user {
            subscriptions.push(json!({"type": "orderUpdates", "user": user.to_string()}));
            subscriptions.push(json!({"type": "userFills", "user": user.to_string()}));
        }
        subscriptions
    }
}

/// How many fill ids and order updates the de-duplication remembers.
pub const REMEMBERED: usize = 20_000;
/// How long to wait for a connection and the subscription acknowledgements.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the stream until the receiver of `tx` is dropped: connects, subscribes, pings, and
/// reconnects with backoff after any loss, subscribing again.
pub fn spawn(config: StreamConfig, tx: UnboundedSender<StreamEvent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(config, tx))
}

/// How a session ended.
enum End {
    /// The receiver is gone: stop.
    Closed,
    /// The connection was lost; `up_since` says whether it had reported Up (and since when).
    Lost { reason: String, up_since: Option<Instant> },
}

fn lost(reason: impl Into<String>, up_since: Option<Instant>) -> End {
    End::Lost { reason: reason.into(), up_since }
}

async fn run(config: StreamConfig, tx: UnboundedSender<StreamEvent>) {
    let mut state = State::new(config.close_grace);
    let mut backoff = config.backoff_first;
    // Down is reported once per loss: after an Up, or for the first failed connect.
    let mut down_reported = false;
    loop {
        if tx.is_closed() {
            return;
        }
        match session(&config, &mut state, &tx).await {
            End::Closed => return,
            End::Lost { reason, up_since } => {
                if up_since.is_some() {
                    down_reported = false;
                }
                if up_since.is_some_and(|since| since.elapsed() >= config.healthy_after) {
                    backoff = config.backoff_first;
                }
                tracing::warn!(%reason, backoff_ms = backoff.as_millis(), "hyperliquid stream lost; reconnecting");
                if !down_reported {
                    down_reported = true;
                    if tx.send(StreamEvent::Down { reason }).is_err() {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(with_jitter(backoff)) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

/// Up to 20 % more, from the clock's nanoseconds (not a journal input: only reconnect spacing).
fn with_jitter(base: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 1000.0 * 0.2)
}

/// The wall clock in ms.
fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn session(config: &StreamConfig, state: &mut State, tx: &UnboundedSender<StreamEvent>) -> End {
    let url = config.ws_url.as_str();
    let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::connect_async(url)).await;
    let ws = match connected {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(error)) => return lost(format!("connect {url}: {error}"), None),
        Err(_) => return lost(format!("connect {url}: timed out"), None),
    };
    let (mut sink, mut stream) = ws.split();

    let subscriptions = config.subscriptions();
    for subscription in &subscriptions {
        let message = json!({"method": "subscribe", "subscription": subscription});
        if let Err(error) = sink.send(Message::text(message.to_string())).await {
            return lost(format!("send subscribe: {error}"), None);
        }
    }
    let mut acks = 0;
    let handshake_deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut up_since: Option<Instant> = None;
    if subscriptions.is_empty() {
        up_since = Some(Instant::now());
        if tx.send(StreamEvent::Up).is_err() {
            return End::Closed;
        }
    }

    let ping = json!({"method": "ping"}).to_string();
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + config.ping_every, config.ping_every);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        // A candle held past its close time (rule 2) without a newer one.
        let flush_at = state.candles.next_deadline_ms().map(|at_ms| {
            let wait = u64::try_from(at_ms.saturating_sub(wall_ms())).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(wait)
        });
        tokio::select! {
            frame = stream.next() => {
                let received = Instant::now();
                last_heard = tokio::time::Instant::now();
                let text = match frame {
                    None => return lost("connection ended", up_since),
                    Some(Err(error)) => return lost(format!("read: {error}"), up_since),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or_else(String::new, |f| format!(" ({} {})", f.code, f.reason));
                        return lost(format!("closed by the server{why}"), up_since);
                    }
                    Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text,
                        Err(_) => continue,
                    },
                    // Protocol pings are answered by tungstenite; pongs and raw frames only show liveness.
                    Some(Ok(_)) => continue,
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    // The greeting, "Websocket connection established.", is plain text.
                    tracing::debug!(frame = %clip(&text), "hyperliquid text that is not JSON; skipped");
                    continue;
                };
                match value.get("channel").and_then(Value::as_str) {
                    Some("subscriptionResponse") => {
                        acks += 1;
                        if up_since.is_none() && acks >= subscriptions.len() {
                            up_since = Some(Instant::now());
                            tracing::info!("hyperliquid stream up");
                            if tx.send(StreamEvent::Up).is_err() {
                                return End::Closed;
                            }
                        }
                    }
                    Some("error") if up_since.is_none() => {
                        return lost(format!("subscription refused: {}", clip(&value["data"].to_string())), None);
                    }
                    Some("error") => tracing::warn!(frame = %clip(&text), "hyperliquid stream error message"),
                    Some("pong") => {}
                    Some(_) => {
                        for event in state.events(&value, received, wall_ms()) {
                            if tx.send(event).is_err() {
                                return End::Closed;
                            }
                        }
                    }
                    None => tracing::debug!(frame = %clip(&text), "hyperliquid message without a channel; skipped"),
                }
            }
            _ = pings.tick() => {
                if let Err(error) = sink.send(Message::text(ping.clone())).await {
                    return lost(format!("send ping: {error}"), up_since);
                }
            }
            () = tokio::time::sleep_until(last_heard + config.dead_after) => {
                return lost(format!("nothing received for {} ms", config.dead_after.as_millis()), up_since);
            }
            () = tokio::time::sleep_until(handshake_deadline), if up_since.is_none() => {
                return lost(format!("{acks} of {} subscriptions acknowledged in time", subscriptions.len()), None);
            }
            () = sleep_until_opt(flush_at) => {
                for kline in state.candles.flush(wall_ms()) {
                    if tx.send(StreamEvent::Candle { kline, received: Instant::now() }).is_err() {
                        return End::Closed;
                    }
                }
            }
            () = tx.closed() => return End::Closed,
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn clip(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// ---------------------------------------------------------------------------------------
// What survives reconnects: the candles held, and what was forwarded already.

/// A set that remembers its last `capacity` insertions.
#[derive(Debug)]
struct Recent<K> {
    seen: HashSet<K>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> Recent<K> {
    fn new(capacity: usize) -> Recent<K> {
        Recent { seen: HashSet::new(), order: VecDeque::new(), capacity }
    }

    /// True if `key` is new (and now remembered).
    fn insert(&mut self, key: K) -> bool {
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// One `(coin, interval)`'s candles.
#[derive(Debug, Default)]
struct Series {
    /// The candle in progress, latest values.
    held: Option<Candle>,
    /// The open time of the last candle forwarded.
    forwarded_through: Option<u64>,
}

/// The candle-closing rules (see the module doc).
#[derive(Debug)]
struct Candles {
    grace_ms: i64,
    series: BTreeMap<(String, String), Series>,
}

impl Candles {
    fn closes_by_time(&self, candle: &Candle, now_ms: i64) -> bool {
        i64::try_from(candle.close_time_ms).map_or(true, |close| close.saturating_add(self.grace_ms) < now_ms)
    }

    /// The candles closed by `candle`'s arrival at `now_ms`, in order.
    fn on_candle(&mut self, candle: Candle, now_ms: i64) -> Vec<Candle> {
        let closes_by_time = self.closes_by_time(&candle, now_ms);
        let series = self.series.entry((candle.coin.clone(), candle.interval.clone())).or_default();
        if series.forwarded_through.is_some_and(|through| candle.open_time_ms <= through) {
            tracing::debug!(
                coin = candle.coin,
                open_time_ms = candle.open_time_ms,
                "hyperliquid candle closed already; dropped"
            );
            return Vec::new();
        }
        let mut closed = Vec::new();
        match &series.held {
            Some(held) if held.open_time_ms > candle.open_time_ms => return Vec::new(),
            Some(held) if held.open_time_ms < candle.open_time_ms => {
                // Rule 1: a newer candle starts.
                series.forwarded_through = Some(held.open_time_ms);
                closed.extend(series.held.take());
            }
            _ => {}
        }
        if closes_by_time {
            // Rule 2, on arrival.
            series.forwarded_through = Some(candle.open_time_ms);
            series.held = None;
            closed.push(candle);
        } else {
            series.held = Some(candle);
        }
        closed
    }

    /// When the earliest held candle closes by its close time (wall ms).
    fn next_deadline_ms(&self) -> Option<i64> {
        self.series
            .values()
            .filter_map(|s| s.held.as_ref())
            .map(|c| i64::try_from(c.close_time_ms).unwrap_or(i64::MAX).saturating_add(self.grace_ms).saturating_add(1))
            .min()
    }

    /// Rule 2 by the timer: the held candles whose close time is past.
    fn flush(&mut self, now_ms: i64) -> Vec<Kline> {
        let grace_ms = self.grace_ms;
        let mut closed = Vec::new();
        for series in self.series.values_mut() {
            let due = series.held.as_ref().is_some_and(|c| {
                i64::try_from(c.close_time_ms).map_or(true, |close| close.saturating_add(grace_ms) < now_ms)
            });
            if due {
                if let Some(candle) = series.held.take() {
                    series.forwarded_through = Some(candle.open_time_ms);
                    closed.extend(to_kline(&candle));
                }
            }
        }
        closed
    }
}

fn to_kline(candle: &Candle) -> Option<Kline> {
    match candle.to_kline(true) {
        Ok(kline) => Some(kline),
        Err(error) => {
            tracing::warn!(%error, "hyperliquid candle not forwarded");
            None
        }
    }
}

/// The client's memory across reconnects.
#[derive(Debug)]
struct State {
    candles: Candles,
    tids: Recent<u64>,
    /// `(oid, status, statusTimestamp, sz)` of the order updates forwarded.
    orders: Recent<(u64, String, u64, Decimal)>,
}

/// `userFills`' data.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WsUserFills {
    #[serde(default)]
    is_snapshot: bool,
    #[serde(default)]
    fills: Vec<Value>,
}

impl State {
    fn new(close_grace: Duration) -> State {
        State {
            candles: Candles {
                grace_ms: i64::try_from(close_grace.as_millis()).unwrap_or(i64::MAX),
                series: BTreeMap::new(),
            },
            tids: Recent::new(REMEMBERED),
            orders: Recent::new(REMEMBERED),
        }
    }

    /// The events of one data message (`{"channel", "data"}`), read at `now_ms`.
    fn events(&mut self, message: &Value, received: Instant, now_ms: i64) -> Vec<StreamEvent> {
        let channel = message.get("channel").and_then(Value::as_str).unwrap_or_default();
        let data = message.get("data").unwrap_or(&Value::Null);
        match channel {
            "candle" => {
                let items: Vec<&Value> = match data {
                    Value::Array(items) => items.iter().collect(),
                    item => vec![item],
                };
                let mut events = Vec::new();
                for item in items {
                    match Candle::deserialize(item) {
                        Ok(candle) => events.extend(
                            self.candles
                                .on_candle(candle, now_ms)
                                .iter()
                                .filter_map(to_kline)
                                .map(|kline| StreamEvent::Candle { kline, received }),
                        ),
                        Err(error) => {
                            tracing::warn!(%error, item = %item, "hyperliquid candle does not parse; skipped")
                        }
                    }
                }
                events
            }
            "orderUpdates" => {
                let Some(items) = data.as_array() else {
                    tracing::warn!(data = %data, "hyperliquid orderUpdates without a list; skipped");
                    return Vec::new();
                };
                let mut events = Vec::new();
                for item in items {
                    match OrderReport::deserialize(item) {
                        Ok(report) => {
                            let key = (
                                report.order.oid,
                                report.status.as_str().to_owned(),
                                report.status_timestamp,
                                report.order.sz,
                            );
                            if self.orders.insert(key) {
                                events.push(StreamEvent::Order(report));
                            } else {
                                tracing::debug!(oid = report.order.oid, "hyperliquid order update repeated; dropped");
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, item = %item, "hyperliquid order update does not parse; skipped");
                        }
                    }
                }
                events
            }
            "userFills" => {
                let message = match WsUserFills::deserialize(data) {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::error!(%error, data = %data, "hyperliquid userFills does not parse; skipped");
                        return Vec::new();
                    }
                };
                let mut fills = Vec::new();
                for item in &message.fills {
                    match UserFill::deserialize(item) {
                        Ok(fill) if self.tids.insert(fill.tid) => fills.push(fill),
                        Ok(fill) => tracing::debug!(tid = fill.tid, "hyperliquid fill seen already; dropped"),
                        Err(error) => {
                            tracing::error!(%error, item = %item, "hyperliquid fill does not parse; skipped");
                        }
                    }
                }
                if fills.is_empty() && !message.is_snapshot {
                    return Vec::new();
                }
                vec![StreamEvent::Fills { snapshot: message.is_snapshot, fills }]
            }
            other => {
                tracing::debug!(channel = other, "hyperliquid channel not handled; skipped");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The messages here are shaped as VENUES.md §3.8 quotes the venue's documentation.

    use journal::event::Side;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::types::OrderStatus;

    const MIN: u64 = 60_000;
    const T0: u64 = 1_681_923_600_000;

    fn candle(t: u64, close: &str) -> Value {
        json!({"channel": "candle", "data": {"t": t, "T": t + MIN - 1, "s": "BTC", "i": "1m",
            "o": "29295.0", "c": close, "h": "29309.0", "l": "29250.0", "v": "0.98639", "n": 189}})
    }

    fn closes(events: &[StreamEvent]) -> Vec<(i64, Decimal)> {
        events
            .iter()
            .map(|e| match e {
                StreamEvent::Candle { kline, .. } => {
                    assert!(kline.closed);
                    (kline.open_time_ms, kline.close)
                }
                other => panic!("not a candle: {other:?}"),
            })
            .collect()
    }

    fn now_during(t: u64) -> i64 {
        i64::try_from(t).unwrap() + 30_000
    }

    #[test]
    fn a_candle_in_progress_closes_when_a_newer_one_starts_with_its_last_values() {
        let mut state = State::new(Duration::from_secs(2));
        let at = Instant::now();
        assert!(state.events(&candle(T0, "29258.0"), at, now_during(T0)).is_empty());
        assert!(state.events(&candle(T0, "29260.5"), at, now_during(T0)).is_empty());
        let events = state.events(&candle(T0 + MIN, "29261"), at, now_during(T0 + MIN));
        assert_eq!(closes(&events), [(i64::try_from(T0).unwrap(), dec!(29260.5))]);
        let StreamEvent::Candle { kline, .. } = &events[0] else { unreachable!() };
        assert_eq!(
            (kline.symbol.as_str(), kline.interval_ms, kline.open, kline.high, kline.low, kline.volume),
            ("BTC", 60_000, dec!(29295.0), dec!(29309.0), dec!(29250.0), dec!(0.98639))
        );
        // A late repeat of the closed candle, or an older one, is dropped.
        assert!(state.events(&candle(T0, "1"), at, now_during(T0 + MIN)).is_empty());
        assert!(state.events(&candle(T0 - MIN, "1"), at, now_during(T0 + MIN)).is_empty());
    }

    #[test]
    fn a_candle_past_its_close_time_closes_on_arrival_or_by_the_timer() {
        let mut state = State::new(Duration::from_secs(2));
        let at = Instant::now();
        let t0 = i64::try_from(T0).unwrap();
        // An ended bar (the local server's pushes) is closed on arrival, once.
        let later = t0 + 10 * 60_000;
        assert_eq!(closes(&state.events(&candle(T0, "29258"), at, later)), [(t0, dec!(29258))]);
        assert!(state.events(&candle(T0, "29258"), at, later).is_empty());
        // Within the grace it is held; the timer closes it after.
        let close = t0 + 60_000 - 1;
        assert!(state.events(&candle(T0 + MIN, "1.5"), at, close + 1_000).is_empty());
        assert_eq!(state.candles.next_deadline_ms(), Some(close + 60_000 + 2_001));
        assert!(state.candles.flush(close + 60_000 + 2_000).is_empty());
        let flushed = state.candles.flush(close + 60_000 + 2_001);
        assert_eq!(flushed.iter().map(|k| (k.open_time_ms, k.close)).collect::<Vec<_>>(), [(t0 + 60_000, dec!(1.5))]);
        assert_eq!(state.candles.next_deadline_ms(), None);
        // Coins and intervals are separate series.
        let mut eth = candle(T0 + MIN, "2");
        eth["data"]["s"] = json!("ETH");
        assert_eq!(closes(&state.events(&eth, at, later)).len(), 1);
    }

    #[test]
    fn order_updates_are_typed_and_repeats_dropped() {
        let mut state = State::new(Duration::from_secs(2));
        let update = json!({"channel": "orderUpdates", "data": [
            {"order": {"coin": "BTC", "side": "B", "limitPx": "29000.5", "sz": "0.004", "oid": 77738308,
                "timestamp": 1681923600123_u64, "origSz": "0.01", "cloid": "0x00000000000000000000000000000001"},
             "status": "open", "statusTimestamp": 1681923601000_u64},
            {"order": {"coin": "BTC", "side": "A", "limitPx": "29100", "sz": "0", "oid": 77738309,
                "timestamp": 1681923600123_u64, "origSz": "0.01"},
             "status": "filled", "statusTimestamp": 1681923601000_u64},
            {"order": {"coin": "BTC"}, "status": "open"}
        ]});
        let events = state.events(&update, Instant::now(), 0);
        assert_eq!(events.len(), 2, "the bad item is skipped: {events:?}");
        let StreamEvent::Order(first) = &events[0] else { panic!("{events:?}") };
        assert_eq!(first.status, OrderStatus::Open);
        assert_eq!(first.order.oid, 77_738_308);
        assert_eq!(first.order.side, Side::Buy);
        assert_eq!(first.order.cloid.map(|c| c.0[15]), Some(1));
        assert_eq!(first.filled_size(), Some(dec!(0.006)));
        let StreamEvent::Order(second) = &events[1] else { panic!("{events:?}") };
        assert_eq!(
            (second.status.clone(), second.order.cloid, second.filled_size()),
            (OrderStatus::Filled, None, Some(dec!(0.01)))
        );
        assert!(state.events(&update, Instant::now(), 0).is_empty(), "the same message again is a repeat");
    }

    #[test]
    fn fills_are_typed_the_snapshot_marked_and_tids_forwarded_once() {
        let mut state = State::new(Duration::from_secs(2));
        let fill = |tid: u64| {
            json!({"closedPnl": "0.0", "coin": "BTC", "crossed": true, "dir": "Open Long", "hash": "0xab",
                "oid": 90542681, "px": "29250.5", "side": "B", "startPosition": "0", "sz": "0.0002",
                "time": 1681923600123_u64, "fee": "0.002633", "feeToken": "USDC", "tid": tid,
                "cloid": "0x00000000000000000000000000000002"})
        };
        let user = "0x5e9ee1089755c3435139848e47e6635505d5a13a";
        let snapshot = json!({"channel": "userFills", "data": {"isSnapshot": true, "user": user, "fills": [fill(1)]}});
        let events = state.events(&snapshot, Instant::now(), 0);
        let [StreamEvent::Fills { snapshot: true, fills }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(fills.len(), 1);
        let f = &fills[0];
        assert_eq!(
            (f.tid, f.oid, f.px, f.sz, f.side, f.fee, f.time),
            (1, 90_542_681, dec!(29250.5), dec!(0.0002), Side::Buy, dec!(0.002633), 1_681_923_600_123)
        );
        assert_eq!(f.cloid.map(|c| c.0[15]), Some(2));

        let push = json!({"channel": "userFills", "data": {"user": user, "fills": [fill(1), fill(2), {"tid": 3}]}});
        let events = state.events(&push, Instant::now(), 0);
        let [StreamEvent::Fills { snapshot: false, fills }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(fills.iter().map(|f| f.tid).collect::<Vec<_>>(), [2]);
        assert!(state.events(&push, Instant::now(), 0).is_empty(), "a repeated push forwards nothing");
        // A reconnect's snapshot is forwarded (marked) even when it holds nothing new.
        let events = state.events(&snapshot, Instant::now(), 0);
        assert!(matches!(events.as_slice(), [StreamEvent::Fills { snapshot: true, fills }] if fills.is_empty()));
    }

    #[test]
    fn the_remembered_set_is_bounded() {
        let mut recent = Recent::new(3);
        assert!((0..5).all(|k| recent.insert(k)));
        assert!(!recent.insert(4) && !recent.insert(2));
        assert!(recent.insert(0), "the oldest are forgotten");
        assert_eq!(recent.seen.len(), 3);
    }

    #[test]
    fn subscriptions_name_the_coin_interval_and_public_address() {
        let user = Address::parse("0x5E9EE1089755C3435139848E47E6635505D5A13A").unwrap();
        let config =
            StreamConfig::new(&Endpoints::testnet(), vec![("BTC".into(), 60_000), ("ETH".into(), 7)], Some(user));
        assert_eq!(config.ws_url, "wss://api.hyperliquid-testnet.xyz/ws");
        let lower = "0x5e9ee1089755c3435139848e47e6635505d5a13a";
        assert_eq!(
            config.subscriptions(),
            [
                json!({"type": "candle", "coin": "BTC", "interval": "1m"}),
                json!({"type": "orderUpdates", "user": lower}),
                json!({"type": "userFills", "user": lower}),
            ]
        );
        assert!(config.ping_every < Duration::from_secs(60) && config.dead_after > config.ping_every);
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        for _ in 0..100 {
            let d = with_jitter(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(120), "{d:?}");
        }
    }
}
