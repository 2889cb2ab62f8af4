//! The adapter against `bybit-server` (the local Bybit of `venues/bybit-server`) on
//! 127.0.0.1: REST round trips, the server's errors, its clock-skew fault, the rate limit
//! under a burst, and the streams, including reconnects after its `drop_ws` fault.

use std::time::Duration;

use bybit::{Credentials, Endpoints, Error, OrderStatus, Rest, RestOptions, StreamConfig, StreamEvent};
use bybit_server::{Config, Faults, Server, DEFAULT_API_KEY, DEFAULT_API_SECRET};
use journal::event::{Cloid, Kline, OrderIntent, OrderKind, Side, TimeInForce};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::mpsc::UnboundedReceiver;

const SYMBOL: &str = "BTCUSDT";
const MINUTE_MS: i64 = 60_000;
/// The first bar's open (a whole minute).
const T0_MS: i64 = 1_700_000_040_000;
const HISTORY: usize = 10;

/// 1m bars around 30000, each with room to fill small orders.
fn bars(count: usize) -> Vec<Kline> {
    (0..count)
        .map(|i| {
            let open = dec!(30000) + Decimal::from(i % 7) * dec!(10);
            Kline {
                symbol: SYMBOL.into(),
                interval_ms: MINUTE_MS,
                open_time_ms: T0_MS + i as i64 * MINUTE_MS,
                open,
                high: open + dec!(50),
                low: open - dec!(50),
                close: open + dec!(5),
                volume: dec!(100),
                closed: true,
            }
        })
        .collect()
}

/// A server playing a 1m bar every 100 ms (speed 600) after `HISTORY` closed ones.
async fn server(faults: Faults) -> Server {
    let config = Config { history: HISTORY, speed: 600.0, faults, seed: 7, ..Config::default() };
    bybit_server::start(config, SYMBOL, bars(2_000)).await.expect("the server starts")
}

fn endpoints(server: &Server) -> Endpoints {
    Endpoints::local(&server.rest_url(), &server.ws_url())
}

fn credentials() -> Credentials {
    Credentials::new(DEFAULT_API_KEY, DEFAULT_API_SECRET)
}

fn client(server: &Server, options: RestOptions) -> Rest {
    Rest::new(&endpoints(server), Some(credentials()), options)
}

fn limit_buy(n: u32, price: Decimal) -> OrderIntent {
    OrderIntent {
        cloid: Cloid::derive("adapter-test", u64::from(n), 0),
        symbol: SYMBOL.into(),
        side: Side::Buy,
        kind: OrderKind::Limit,
        qty: dec!(0.001),
        price: Some(price),
        trigger_price: None,
        reduce_only: false,
        tif: TimeInForce::Gtc,
    }
}

fn market(n: u32, side: Side) -> OrderIntent {
    OrderIntent { kind: OrderKind::Market, price: None, side, qty: dec!(0.01), ..limit_buy(n, dec!(0)) }
}

async fn next_event(rx: &mut UnboundedReceiver<StreamEvent>, within: Duration) -> StreamEvent {
    tokio::time::timeout(within, rx.recv()).await.expect("an event in time").expect("the stream runs")
}

#[tokio::test]
async fn rest_round_trips() {
    let server = server(Faults::default()).await;
    let rest = client(&server, RestOptions::default());
    rest.sync_time().await.unwrap();

    let instrument = rest.instrument(SYMBOL).await.unwrap();
    assert_eq!((instrument.tick_size, instrument.qty_step, instrument.min_qty), (dec!(0.1), dec!(0.001), dec!(0.001)));
    assert_eq!((instrument.min_notional, instrument.max_leverage), (dec!(5), dec!(100)));
    assert_eq!(rest.fee_rate(SYMBOL).await.unwrap(), (dec!(0.00055), dec!(0.0002)));
    rest.set_leverage(SYMBOL, dec!(5)).await.unwrap();
    rest.set_leverage(SYMBOL, dec!(5)).await.expect("110043 (not modified) is success");

    let history = rest.klines(SYMBOL, MINUTE_MS, T0_MS, T0_MS + (HISTORY as i64 - 1) * MINUTE_MS).await.unwrap();
    assert_eq!(history, bars(HISTORY));

    let wallet = rest.wallet().await.unwrap();
    assert_eq!(wallet.wallet_balance, dec!(10000));

    // A resting limit far below the market: created, listed, cancelled.
    let resting = limit_buy(1, dec!(10000));
    let created = rest.create_order(&resting).await.unwrap();
    assert!(!created.order_id.is_empty());
    let order = rest.order(SYMBOL, &resting.cloid).await.unwrap().expect("the order is known");
    assert_eq!(
        (order.status.clone(), order.order_id.clone(), order.price),
        (OrderStatus::New, created.order_id.clone(), Some(dec!(10000)))
    );
    assert_eq!(order.order_link_id, resting.cloid.to_string());
    let open = rest.open_orders(SYMBOL).await.unwrap();
    assert_eq!(open.iter().map(|o| o.order_link_id.clone()).collect::<Vec<_>>(), [resting.cloid.to_string()]);
    // The same orderLinkId again: 110072, not a second order.
    let duplicate = rest.create_order(&resting).await.unwrap_err();
    assert_eq!(duplicate.code(), Some(110_072), "{duplicate}");
    assert!(!duplicate.is_ambiguous());
    rest.cancel_order(SYMBOL, &resting.cloid).await.unwrap();
    let order = rest.order(SYMBOL, &resting.cloid).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert!(rest.open_orders(SYMBOL).await.unwrap().is_empty());
    // Cancelling it again, or an order never placed: 110001.
    assert_eq!(rest.cancel_order(SYMBOL, &resting.cloid).await.unwrap_err().code(), Some(110_001));
    assert_eq!(rest.order(SYMBOL, &Cloid([9; 16])).await.unwrap(), None);

    // A market buy fills when its bar closes.
    let buy = market(2, Side::Buy);
    rest.create_order(&buy).await.unwrap();
    for _ in 0..50 {
        if rest.order(SYMBOL, &buy.cloid).await.unwrap().is_some_and(|o| o.status == OrderStatus::Filled) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server's executions carry market time (2023): 7-day windows from there to now.
    let executions = rest.executions(SYMBOL, T0_MS).await.unwrap();
    assert_eq!(executions.len(), 1, "{executions:?}");
    let fill = &executions[0];
    assert_eq!(
        (fill.order_link_id.as_str(), fill.side, fill.qty, fill.exec_type.as_str()),
        (buy.cloid.to_string().as_str(), Side::Buy, dec!(0.01), "Trade")
    );
    assert!(fill.fee > Decimal::ZERO && !fill.is_maker);
    assert_eq!(rest.order(SYMBOL, &buy.cloid).await.unwrap().unwrap().status, OrderStatus::Filled);
    let positions = rest.positions(SYMBOL).await.unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].qty, dec!(0.01));
    assert_eq!(positions[0].entry_price, fill.price);
    // Executions from after the fill: none; the start is inclusive.
    assert!(rest.executions(SYMBOL, fill.time_ms + 1).await.unwrap().is_empty());
    assert_eq!(rest.executions(SYMBOL, fill.time_ms).await.unwrap().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_drifted_clock_is_resynced_on_10002() {
    // The server's clock runs 20 s ahead of ours: beyond the 5 s receive window.
    let server = server(Faults { skew_ms: 20_000, ..Faults::default() }).await;
    let rest = client(&server, RestOptions::default());
    rest.sync_time().await.unwrap();
    let offset_ms = rest.clock().offset_ms();
    assert!((offset_ms - 20_000).abs() < 500, "{offset_ms}");
    // Our idea of the offset drifts away: the next request is refused with 10002, the client
    // re-syncs and the retry goes through.
    rest.clock().set_offset_ms(0);
    rest.wallet().await.unwrap();
    assert!((rest.clock().offset_ms() - 20_000).abs() < 500);
    // Never synced at all: the first private request syncs first.
    let fresh = client(&server, RestOptions::default());
    fresh.positions(SYMBOL).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_30_creates_never_gets_10006() {
    let server = server(Faults::default()).await;
    // No retries: a single 10006 would surface as an error.
    let rest = client(&server, RestOptions { max_rate_limit_retries: 0, ..RestOptions::default() });
    rest.sync_time().await.unwrap();
    let creates: Vec<_> = (0..30)
        .map(|n| {
            let rest = rest.clone();
            tokio::spawn(async move { rest.create_order(&limit_buy(100 + n, dec!(10000))).await })
        })
        .collect();
    for create in creates {
        create.await.unwrap().expect("every create goes through");
    }
    assert_eq!(rest.open_orders(SYMBOL).await.unwrap().len(), 30);
    // And 30 cancels right after.
    let cancels: Vec<_> = (0..30)
        .map(|n| {
            let rest = rest.clone();
            tokio::spawn(async move { rest.cancel_order(SYMBOL, &limit_buy(100 + n, dec!(10000)).cloid).await })
        })
        .collect();
    for cancel in cancels {
        cancel.await.unwrap().expect("every cancel goes through");
    }
    assert!(rest.open_orders(SYMBOL).await.unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn streams_deliver_klines_orders_and_executions() {
    let server = server(Faults::default()).await;
    let rest = client(&server, RestOptions::default());
    rest.sync_time().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut config = StreamConfig::new(endpoints(&server), Some(credentials()), vec![(SYMBOL.into(), MINUTE_MS)]);
    config.clock = Some(rest.clock());
    let task = bybit::stream::spawn(config, tx);

    let (mut public_up, mut private_up) = (false, false);
    while !(public_up && private_up) {
        match next_event(&mut rx, Duration::from_secs(5)).await {
            StreamEvent::Up { private } => {
                if private {
                    private_up = true;
                } else {
                    public_up = true;
                }
            }
            StreamEvent::Kline { .. } => {}
            other => panic!("{other:?} before both streams were up"),
        }
    }
    let buy = market(1, Side::Buy);
    rest.create_order(&buy).await.unwrap();
    let (mut kline, mut filled, mut execution, mut position) = (None, false, None, false);
    while kline.is_none() || !filled || execution.is_none() || !position {
        match next_event(&mut rx, Duration::from_secs(5)).await {
            StreamEvent::Kline { kline: bar, .. } => kline = Some(bar),
            StreamEvent::Order(order) if order.order_link_id == buy.cloid.to_string() => {
                filled |= order.status == OrderStatus::Filled;
            }
            StreamEvent::Execution(e) => execution = Some(e),
            StreamEvent::Position(p) => position |= p.qty == dec!(0.01),
            StreamEvent::Down { private, reason } => panic!("down ({private}): {reason}"),
            _ => {}
        }
    }
    let kline = kline.unwrap();
    assert_eq!((kline.symbol.as_str(), kline.interval_ms, kline.closed), (SYMBOL, MINUTE_MS, true));
    assert_eq!((kline.open_time_ms - T0_MS) % MINUTE_MS, 0);
    let execution = execution.unwrap();
    assert_eq!((execution.order_link_id, execution.qty), (buy.cloid.to_string(), dec!(0.01)));
    // The same fill by REST.
    let executions = rest.executions(SYMBOL, T0_MS).await.unwrap();
    assert_eq!(executions.iter().map(|e| e.exec_id.clone()).collect::<Vec<_>>(), [execution.exec_id]);
    drop(rx);
    tokio::time::timeout(Duration::from_secs(3), task).await.expect("the streams end with the receiver").unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn streams_come_back_after_dropped_sockets() {
    // Every other push cuts the socket instead of arriving.
    let server = server(Faults { drop_ws: 0.5, ..Faults::default() }).await;
    let rest = client(&server, RestOptions::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut config = StreamConfig::new(endpoints(&server), Some(credentials()), vec![(SYMBOL.into(), MINUTE_MS)]);
    config.clock = Some(rest.clock());
    let _task = bybit::stream::spawn(config, tx);
    // The private stream gets pushes once orders move.
    for n in 0..3 {
        rest.create_order(&limit_buy(n, dec!(10000))).await.unwrap();
    }
    let mut ups = [0, 0];
    let mut downs = [0, 0];
    let mut bars = 0;
    while ups[0] < 3 || bars < 3 || ups[1] < 2 {
        match next_event(&mut rx, Duration::from_secs(10)).await {
            StreamEvent::Up { private } => ups[usize::from(private)] += 1,
            StreamEvent::Down { private, reason } => {
                downs[usize::from(private)] += 1;
                assert_eq!(downs[usize::from(private)], ups[usize::from(private)], "one Down per Up: {reason}");
            }
            StreamEvent::Kline { kline, .. } => {
                bars += 1;
                assert!(kline.closed);
            }
            _ => {}
        }
        if ups[1] >= 1 && downs[1] == 0 {
            // Pushes for the private stream: cancel one order (an order and a position message).
            let _ = rest.cancel_order(SYMBOL, &limit_buy(ups[1], dec!(10000)).cloid).await;
        }
    }
    assert!(downs[0] >= 2, "{downs:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_ambiguous_and_found_by_its_cloid() {
    // Failure report #11: the create is carried out, its answer never comes.
    let server = server(Faults { lose_response: 1.0, ..Faults::default() }).await;
    let rest = client(&server, RestOptions { timeout_ms: 500, ..RestOptions::default() });
    let intent = limit_buy(1, dec!(10000));
    let error = rest.create_order(&intent).await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)) && error.is_ambiguous(), "{error:?}");
    // Resolve by querying, never by re-sending blind.
    let order = rest.order(SYMBOL, &intent.cloid).await.unwrap().expect("the create took effect");
    assert_eq!(order.status, OrderStatus::New);
    // A re-send with the same cloid cannot make a second order.
    assert_eq!(rest.create_order(&intent).await.unwrap_err().code(), Some(110_072));
    assert_eq!(rest.open_orders(SYMBOL).await.unwrap().len(), 1);
    server.shutdown().await;
}
