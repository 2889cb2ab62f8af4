//! The WebSocket client against the local Hyperliquid server (`hyperliquid_server::start`,
//! in-process, real sockets on loopback), orders placed by the REST client signed with the
//! server's default test key; and against a tiny peer that acknowledges subscriptions and
//! then says nothing. Fault tests are bounded by count and time; their seeds are fixed and
//! named in every assertion message.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyperliquid::stream::{self, StreamConfig, StreamEvent};
use hyperliquid::types::{ActionStatus, AssetRef, Cancel, OrderStatus, OrderWire, Tif, UserFill};
use hyperliquid::{Endpoints, Network, NonceAllocator, Rest, RestOptions, Wallet};
use hyperliquid_server::{Config, Faults, Server, DEFAULT_PRIVATE_KEY};
use journal::event::{Cloid, Kline, Side};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_tungstenite::tungstenite::Message;

const COIN: &str = "BTC";
const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;
const ASSET: AssetRef = AssetRef { asset: 0, sz_decimals: 2 };

/// Bar `i` of a 1m market, prices with decimals the wire keeps exactly.
fn bar(i: i64) -> Kline {
    let open = dec!(100.25) + Decimal::from(i) * dec!(0.13);
    Kline {
        symbol: "BTCUSDT".into(),
        interval_ms: 60_000,
        open_time_ms: T0 + i * 60_000,
        open,
        high: open + dec!(2.5),
        low: open - dec!(1.75),
        close: open + dec!(0.07),
        volume: dec!(1000.125),
        closed: true,
    }
}

fn bars(n: i64) -> Vec<Kline> {
    (0..n).map(bar).collect()
}

/// A market the first candle subscription starts, `speed` × real time, 2 bars of history.
fn config(speed: f64) -> Config {
    Config { hold: true, speed, history: 2, sz_decimals: 2, partial_above: Decimal::ZERO, ..Config::default() }
}

async fn serve(config: Config, n: i64) -> Server {
    hyperliquid_server::start(config, COIN, bars(n)).await.expect("the server starts")
}

fn endpoints(server: &Server) -> Endpoints {
    Endpoints::local(&server.rest_url(), Network::Testnet)
}

fn wallet() -> Wallet {
    Wallet::from_hex(DEFAULT_PRIVATE_KEY).unwrap()
}

/// The stream of the server's candles and the test wallet's orders and fills, with timings
/// short enough for tests.
fn stream_config(endpoints: &Endpoints, candles: bool) -> StreamConfig {
    let candles = if candles { vec![(COIN.to_owned(), 60_000)] } else { Vec::new() };
    StreamConfig {
        ping_every: Duration::from_millis(100),
        dead_after: Duration::from_millis(1_000),
        backoff_first: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        healthy_after: Duration::from_secs(1),
        ..StreamConfig::new(endpoints, candles, Some(wallet().address()))
    }
}

fn rest(server: &Server) -> Rest {
    Rest::new(&endpoints(server), Some(wallet()), None, RestOptions::default()).unwrap()
}

fn cloid(n: u8) -> Cloid {
    let mut bytes = [0u8; 16];
    bytes[15] = n;
    Cloid(bytes)
}

/// An `Ioc` order (what the SDKs send as a market order) far enough through the market to
/// fill at the next bar's open.
fn ioc(side: Side, cloid: Option<Cloid>) -> OrderWire {
    let px = if side == Side::Buy { dec!(150) } else { dec!(60) };
    OrderWire::limit(ASSET, side, px, dec!(0.2), Tif::Ioc, false, cloid).unwrap()
}

async fn next_event(rx: &mut UnboundedReceiver<StreamEvent>, within: Duration, what: &str) -> StreamEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no event in {within:?} while waiting for {what}"))
        .expect("the stream runs")
}

/// Everything the stream said, by kind.
#[derive(Debug, Default)]
struct Seen {
    ups: usize,
    downs: Vec<String>,
    candles: Vec<Kline>,
    orders: Vec<hyperliquid::types::OrderReport>,
    /// `(snapshot, fill)` in arrival order.
    fills: Vec<(bool, UserFill)>,
    snapshots: usize,
}

impl Seen {
    fn take(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Up => self.ups += 1,
            StreamEvent::Down { reason } => self.downs.push(reason),
            StreamEvent::Candle { kline, .. } => self.candles.push(kline),
            StreamEvent::Order(report) => self.orders.push(report),
            StreamEvent::Fills { snapshot, fills } => {
                self.snapshots += usize::from(snapshot);
                self.fills.extend(fills.into_iter().map(|f| (snapshot, f)));
            }
        }
    }

    /// Takes what has arrived and what arrives in the next `window` (a fixed window: a
    /// market still playing does not extend it).
    async fn drain(&mut self, rx: &mut UnboundedReceiver<StreamEvent>, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            self.take(event);
        }
    }

    fn tids(&self) -> Vec<u64> {
        self.fills.iter().map(|(_, f)| f.tid).collect()
    }
}

/// Reads events until `done` or the deadline.
async fn collect_until(
    rx: &mut UnboundedReceiver<StreamEvent>,
    seen: &mut Seen,
    within: Duration,
    done: impl Fn(&Seen) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) => seen.take(event),
            Ok(None) | Err(_) => return false,
        }
    }
    true
}

/// The file's bar as the stream forwards it: the coin as its symbol.
fn as_streamed(mut kline: Kline) -> Kline {
    kline.symbol = COIN.into();
    kline
}

#[tokio::test]
async fn candles_arrive_closed_in_order_and_exact() {
    let server = serve(config(600.0), 8).await;
    let (tx, mut rx) = unbounded_channel();
    let task = stream::spawn(StreamConfig { user: None, ..stream_config(&endpoints(&server), true) }, tx);
    assert!(matches!(next_event(&mut rx, Duration::from_secs(5), "Up").await, StreamEvent::Up));
    let mut seen = Seen::default();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.candles.len() >= 6).await,
        "six candles: {seen:?}"
    );
    // The bars after the history, each once, closed, exact, in order.
    let expected: Vec<Kline> = bars(8).into_iter().skip(2).map(as_streamed).collect();
    assert_eq!(seen.candles, expected);
    assert!(seen.downs.is_empty() && seen.fills.is_empty() && seen.orders.is_empty(), "{seen:?}");
    // The market has ended: nothing more, and the connection stays up.
    seen.drain(&mut rx, Duration::from_millis(400)).await;
    assert_eq!((seen.candles.len(), seen.ups, seen.downs.len()), (6, 0, 0), "{seen:?}");
    drop(rx);
    tokio::time::timeout(Duration::from_secs(3), task).await.expect("the stream ends with its receiver").unwrap();
}

#[tokio::test]
async fn orders_placed_by_rest_show_as_order_updates_and_fills() {
    let server = serve(config(300.0), 40).await;
    let rest = rest(&server);
    let user = wallet().address();
    let nonces = NonceAllocator::new();
    let (tx, mut rx) = unbounded_channel();
    let _task = stream::spawn(stream_config(&endpoints(&server), true), tx);
    assert!(matches!(next_event(&mut rx, Duration::from_secs(5), "Up").await, StreamEvent::Up));
    let mut seen = Seen::default();
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.snapshots == 1).await, "{seen:?}");
    assert!(seen.fills.is_empty(), "no fills yet: {seen:?}");

    // A resting order, then its cancel.
    let resting = OrderWire::limit(ASSET, Side::Buy, dec!(50.5), dec!(0.5), Tif::Gtc, false, Some(cloid(1))).unwrap();
    let statuses = rest.place_orders(vec![resting], nonces.next_now().unwrap()).await.unwrap();
    let [ActionStatus::Resting(resting)] = statuses.as_slice() else { panic!("{statuses:?}") };
    let oid = resting.oid;
    let has = |oid: u64, status: OrderStatus| {
        move |s: &Seen| s.orders.iter().any(|o| o.order.oid == oid && o.status == status)
    };
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), has(oid, OrderStatus::Open)).await, "{seen:?}");
    let open = seen.orders.iter().find(|o| o.order.oid == oid).unwrap();
    assert_eq!(
        (open.order.cloid, open.order.side, open.order.limit_px, open.order.sz, open.filled_size()),
        (Some(cloid(1)), Side::Buy, dec!(50.5), dec!(0.5), Some(dec!(0)))
    );
    let statuses = rest.cancel(vec![Cancel { asset: 0, oid }], nonces.next_now().unwrap()).await.unwrap();
    assert_eq!(statuses, [ActionStatus::Success]);
    let canceled =
        |s: &Seen| s.orders.iter().any(|o| o.order.oid == oid && matches!(o.status, OrderStatus::Canceled(_)));
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), canceled).await, "{seen:?}");

    // An Ioc order fills at the next bar's open: an update and a fill, as REST reports them.
    let statuses = rest.place_orders(vec![ioc(Side::Buy, Some(cloid(2)))], nonces.next_now().unwrap()).await.unwrap();
    let [ActionStatus::Filled(filled)] = statuses.as_slice() else { panic!("{statuses:?}") };
    let oid = filled.oid;
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| !s.fills.is_empty()).await, "{seen:?}");
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), has(oid, OrderStatus::Filled)).await, "{seen:?}");
    let filled_update = seen.orders.iter().find(|o| o.order.oid == oid && o.status == OrderStatus::Filled).unwrap();
    assert_eq!((filled_update.order.cloid, filled_update.filled_size()), (Some(cloid(2)), Some(dec!(0.2))));
    let rest_fills = rest.user_fills(user).await.unwrap();
    assert_eq!(rest_fills.len(), 1, "{rest_fills:?}");
    let (snapshot, fill) = &seen.fills[0];
    assert!(!snapshot);
    assert_eq!(fill, &rest_fills[0], "the stream's fill is REST's, field for field");
    assert_eq!((fill.oid, fill.cloid, fill.side, fill.sz), (oid, Some(cloid(2)), Side::Buy, dec!(0.2)));
    assert!(bars(40).iter().any(|b| b.open == fill.px), "fills at a bar's open: {fill:?}");
    assert!(fill.fee > Decimal::ZERO && fill.crossed, "a taker's fee: {fill:?}");
    assert!(seen.downs.is_empty(), "{seen:?}");
    // Candles keep coming, closed and in order.
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.candles.len() >= 2).await, "{seen:?}");
    assert!(
        !seen.candles.is_empty() && seen.candles.windows(2).all(|w| w[0].open_time_ms < w[1].open_time_ms),
        "{:?}",
        seen.candles
    );
}

/// Places `n` Ioc orders, alternating buy and sell, one after the other.
async fn trade(rest: &Rest, n: u8, nonces: &NonceAllocator) -> usize {
    let mut filled = 0;
    for i in 0..n {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let statuses =
            rest.place_orders(vec![ioc(side, Some(cloid(10 + i)))], nonces.next_now().unwrap()).await.unwrap();
        filled += usize::from(matches!(statuses.as_slice(), [ActionStatus::Filled(_)]));
    }
    filled
}

/// Every fill REST knows arrived on the stream exactly once.
async fn assert_every_fill_once(rest: &Rest, seen: &Seen, label: &str) {
    let truth: BTreeSet<u64> = rest.user_fills(wallet().address()).await.unwrap().iter().map(|f| f.tid).collect();
    let tids = seen.tids();
    let unique: BTreeSet<u64> = tids.iter().copied().collect();
    assert_eq!(unique.len(), tids.len(), "{label}: a fill forwarded twice: {tids:?}");
    assert_eq!(unique, truth, "{label}: the stream's fills are not REST's");
}

#[tokio::test]
async fn dropped_sockets_reconnect_resubscribe_and_lose_no_fill() {
    // drop_ws=1: every push (candle, order update, fill) closes the socket instead. Fills
    // then reach the client only through the snapshot of the next subscription.
    let seed = 7;
    let faults = Faults::parse("drop_ws=1").unwrap();
    let server = serve(Config { faults, seed, ..config(300.0) }, 40).await;
    let rest = rest(&server);
    let (tx, mut rx) = unbounded_channel();
    let _task = stream::spawn(stream_config(&endpoints(&server), true), tx);
    assert!(matches!(next_event(&mut rx, Duration::from_secs(5), "Up").await, StreamEvent::Up), "seed {seed}");
    let mut seen = Seen { ups: 1, ..Seen::default() };
    let filled = tokio::time::timeout(Duration::from_secs(10), trade(&rest, 4, &NonceAllocator::new())).await;
    assert_eq!(filled.expect("orders answered in time"), 4, "seed {seed}");
    let label = format!("drop_ws=1 seed {seed}");
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.tids().len() >= 4).await,
        "{label}: {seen:?}"
    );
    seen.drain(&mut rx, Duration::from_millis(300)).await;
    assert_every_fill_once(&rest, &seen, &label).await;
    assert!(seen.fills.iter().all(|(snapshot, _)| *snapshot), "{label}: pushes never get through: {seen:?}");
    assert!(seen.ups >= 2 && !seen.downs.is_empty(), "{label}: reconnected: {seen:?}");
    assert!(
        seen.downs.iter().all(|d| d.contains("connection ended") || d.contains("read")),
        "{label}: {:?}",
        seen.downs
    );
    assert!(seen.candles.is_empty(), "{label}: every candle push dropped the socket");
}

#[tokio::test]
async fn random_drops_and_duplicates_lose_and_double_nothing() {
    for seed in [3_u64, 42] {
        let label = format!("drop_ws=0.15,dup_ws=0.5 seed {seed}");
        let faults = Faults::parse("drop_ws=0.15,dup_ws=0.5").unwrap();
        let server = serve(Config { faults, seed, ..config(300.0) }, 40).await;
        let rest = rest(&server);
        let (tx, mut rx) = unbounded_channel();
        let task = stream::spawn(stream_config(&endpoints(&server), true), tx);
        let mut seen = Seen::default();
        assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.ups == 1).await, "{label}");
        let filled = tokio::time::timeout(Duration::from_secs(10), trade(&rest, 6, &NonceAllocator::new())).await;
        assert_eq!(filled.unwrap_or_else(|_| panic!("{label}: orders answered in time")), 6, "{label}");
        assert!(
            collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.tids().len() >= 6).await,
            "{label}: {seen:?}"
        );
        seen.drain(&mut rx, Duration::from_millis(300)).await;
        assert_every_fill_once(&rest, &seen, &label).await;
        // Candles: closed, exact, strictly increasing (pushes lost while down are the driver's
        // to fetch by REST after Up).
        let file: BTreeMap<i64, Kline> = bars(40).into_iter().map(|b| (b.open_time_ms, as_streamed(b))).collect();
        assert!(seen.candles.windows(2).all(|w| w[0].open_time_ms < w[1].open_time_ms), "{label}: {seen:?}");
        assert!(seen.candles.iter().all(|k| file.get(&k.open_time_ms) == Some(k)), "{label}: {seen:?}");
        // No order update forwarded twice.
        let keys: Vec<_> = seen
            .orders
            .iter()
            .map(|o| (o.order.oid, o.status.as_str().to_owned(), o.status_timestamp, o.order.sz))
            .collect();
        let unique: HashSet<_> = keys.iter().cloned().collect();
        assert_eq!(unique.len(), keys.len(), "{label}: {keys:?}");
        assert_eq!(seen.ups, seen.downs.len() + 1, "{label}: one Up per connection: {seen:?}");
        eprintln!(
            "{label}: {} reconnects, {} candles, {} order updates",
            seen.downs.len(),
            seen.candles.len(),
            keys.len()
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(3), task).await.expect("the stream ends").unwrap();
    }
}

#[tokio::test]
async fn duplicated_user_messages_are_dropped() {
    // dup_ws=1: every order update and fill message is sent twice.
    let seed = 4;
    let faults = Faults::parse("dup_ws=1").unwrap();
    let server = serve(Config { faults, seed, ..config(300.0) }, 40).await;
    let rest = rest(&server);
    let (tx, mut rx) = unbounded_channel();
    let _task = stream::spawn(stream_config(&endpoints(&server), true), tx);
    let mut seen = Seen::default();
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.snapshots == 1).await, "seed {seed}");
    assert_eq!(trade(&rest, 3, &NonceAllocator::new()).await, 3, "seed {seed}");
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.tids().len() >= 3).await, "{seen:?}");
    seen.drain(&mut rx, Duration::from_millis(400)).await;
    let label = format!("dup_ws=1 seed {seed}");
    assert_every_fill_once(&rest, &seen, &label).await;
    assert_eq!(seen.fills.iter().filter(|(snapshot, _)| !snapshot).count(), 3, "{label}: {seen:?}");
    let filled: Vec<u64> =
        seen.orders.iter().filter(|o| o.status == OrderStatus::Filled).map(|o| o.order.oid).collect();
    assert_eq!(filled.len(), 3, "{label}: each filled update once: {:?}", seen.orders);
    assert!(seen.downs.is_empty() && seen.ups == 1, "{label}: {seen:?}");
}

#[tokio::test]
async fn pings_keep_an_idle_connection_open_past_the_servers_idle_timeout() {
    // The venue closes a connection that sent nothing for 60 s; this server after 400 ms.
    // No candle subscription: the held market never starts, nothing is pushed.
    let server = serve(Config { ws_idle_timeout_ms: 400, ..config(60.0) }, 10).await;
    let pinging = StreamConfig { candles: Vec::new(), ..stream_config(&endpoints(&server), false) };
    let quiet = StreamConfig {
        ping_every: Duration::from_secs(30),
        dead_after: Duration::from_secs(60),
        backoff_first: Duration::from_secs(30),
        ..pinging.clone()
    };
    let (tx, mut rx) = unbounded_channel();
    let _pinging = stream::spawn(pinging, tx);
    let (quiet_tx, mut quiet_rx) = unbounded_channel();
    let _quiet = stream::spawn(quiet, quiet_tx);

    let mut seen = Seen::default();
    let mut quiet_seen = Seen::default();
    let started = Instant::now();
    let (done, quiet_done) = tokio::join!(
        collect_until(&mut rx, &mut seen, Duration::from_millis(1_500), |_| false),
        collect_until(&mut quiet_rx, &mut quiet_seen, Duration::from_millis(1_500), |s| !s.downs.is_empty()),
    );
    assert!(!done && started.elapsed() >= Duration::from_millis(1_500));
    // The pinging client: up once (with its empty snapshot), never down, for almost 4 idle timeouts.
    assert_eq!((seen.ups, seen.downs.len(), seen.snapshots), (1, 0, 1), "{seen:?}");
    // The one that does not ping is closed by the server.
    assert!(quiet_done, "{quiet_seen:?}");
    assert!(quiet_seen.downs[0].contains("closed by the server"), "{quiet_seen:?}");
}

/// A peer that greets, acknowledges every subscription and then answers nothing (no pong, no
/// data): counts connections and subscribe messages.
async fn silent_peer() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let subscribes = Arc::new(AtomicUsize::new(0));
    let (c, s) = (connections.clone(), subscribes.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                if ws.send(Message::text("Websocket connection established.")).await.is_err() {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else { continue };
                    let request: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    if request["method"] == "subscribe" {
                        s.fetch_add(1, Ordering::SeqCst);
                        let ack = json!({"channel": "subscriptionResponse", "data": request});
                        if ws.send(Message::text(ack.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, connections, subscribes)
}

#[tokio::test]
async fn a_silent_connection_is_found_dead_and_replaced_with_everything_resubscribed() {
    let (url, connections, subscribes) = silent_peer().await;
    let endpoints = Endpoints { rest: String::new(), ws: url, network: Network::Testnet };
    let config = StreamConfig { dead_after: Duration::from_millis(400), ..stream_config(&endpoints, true) };
    let (tx, mut rx) = unbounded_channel();
    let _task = stream::spawn(config, tx);
    let mut seen = Seen::default();
    assert!(collect_until(&mut rx, &mut seen, Duration::from_secs(5), |s| s.ups >= 3).await, "{seen:?}");
    assert!(seen.downs.len() >= 2, "{seen:?}");
    assert!(seen.downs.iter().all(|d| d.contains("nothing received for 400 ms")), "{:?}", seen.downs);
    assert!(connections.load(Ordering::SeqCst) >= 3);
    // candle, orderUpdates and userFills again on every connection.
    assert!(subscribes.load(Ordering::SeqCst) >= 3 * 3, "{}", subscribes.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_refused_subscription_is_a_loss_never_an_up() {
    let server = serve(config(60.0), 10).await;
    // The server trades BTC only: a candle subscription for ETH is refused.
    let config = StreamConfig { candles: vec![("ETH".into(), 60_000)], ..stream_config(&endpoints(&server), false) };
    let (tx, mut rx) = unbounded_channel();
    let _task = stream::spawn(config, tx);
    let mut seen = Seen::default();
    seen.drain(&mut rx, Duration::from_millis(800)).await;
    assert_eq!(seen.ups, 0, "{seen:?}");
    assert_eq!(seen.downs.len(), 1, "one Down for failed reconnects in a row: {seen:?}");
    assert!(seen.downs[0].contains("subscription refused"), "{seen:?}");
}
