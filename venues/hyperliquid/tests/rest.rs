//! The REST client against a tiny local server that does what the venue does with a signed
//! action: read the JSON, recover the signer from the signature, and refuse a signer it does
//! not know ("User or API Wallet 0x... does not exist.") or a nonce it has seen.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hyperliquid::types::{
    ActionStatus, AssetRef, Cancel, ExchangeResponse, Filled, OrderRef, OrderStatus, OrderStatusAnswer, OrderWire,
    Resting, Tif,
};
use hyperliquid::{
    Action, Address, Endpoints, ExchangeRequest, Network, NonceAllocator, Rest, RestError, RestOptions, Wallet,
};
use journal::event::{Cloid, Side};
use rust_decimal_macros::dec;
use serde_json::{json, Value};

const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
const ACCOUNT: &str = "0x5e9ee1089755c3435139848e47e6635505d5a13a";
const ETH: AssetRef = AssetRef { asset: 1, sz_decimals: 4 };

/// The local venue: which signer it knows, on which network it checks signatures.
struct Venue {
    network: Network,
    known_signer: Address,
    nonces: Mutex<HashSet<u64>>,
    /// What it accepted, in order.
    accepted: Mutex<Vec<ExchangeRequest>>,
    /// Every request body it received, /info and /exchange alike.
    received: Mutex<Vec<String>>,
    next_oid: AtomicU64,
    /// Answer this many requests with HTTP 429 first.
    refuse_with_429: AtomicU32,
}

fn err(message: String) -> Response {
    Json(json!({"status": "err", "response": message})).into_response()
}

/// Records the body; true if this request is to be answered with HTTP 429.
fn receive(venue: &Venue, body: &str) -> bool {
    venue.received.lock().unwrap().push(body.to_owned());
    venue.refuse_with_429.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok()
}

fn too_many_requests() -> Response {
    (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response()
}

async fn exchange(State(venue): State<Arc<Venue>>, body: String) -> Response {
    if receive(&venue, &body) {
        return too_many_requests();
    }
    let request: ExchangeRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(e) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, format!("Failed to deserialize the JSON body: {e}"))
                .into_response()
        }
    };
    // The venue never sees the key: it knows who signed only by recovering the address.
    let signer = match request.recover_signer(venue.network) {
        Ok(signer) => signer,
        Err(e) => return err(format!("bad signature: {e}")),
    };
    if signer != venue.known_signer {
        return err(format!("User or API Wallet {signer} does not exist."));
    }
    if !venue.nonces.lock().unwrap().insert(request.nonce) {
        return err(format!("Invalid nonce: duplicate nonce {}", request.nonce));
    }
    let answer = match &request.action {
        Action::Order(action) => {
            let statuses = action
                .orders
                .iter()
                .map(|order| {
                    let oid = venue.next_oid.fetch_add(1, Ordering::SeqCst);
                    match order.order_type {
                        hyperliquid::types::OrderType::Limit(ref limit) if limit.tif == Tif::Ioc => {
                            ActionStatus::Filled(Filled {
                                total_sz: order.sz.parse().unwrap(),
                                avg_px: order.limit_px.parse().unwrap(),
                                oid,
                                cloid: order.cloid,
                            })
                        }
                        _ => ActionStatus::Resting(Resting { oid, cloid: order.cloid }),
                    }
                })
                .collect();
            ExchangeResponse::Ok { kind: "order".into(), statuses }
        }
        Action::Cancel(action) => ExchangeResponse::Ok {
            kind: "cancel".into(),
            statuses: action
                .cancels
                .iter()
                .map(|cancel| {
                    if cancel.oid < 1_000 {
                        ActionStatus::Success
                    } else {
                        ActionStatus::Error("Order was never placed, already canceled, or filled.".into())
                    }
                })
                .collect(),
        },
        Action::CancelByCloid(action) => {
            ExchangeResponse::Ok { kind: "cancel".into(), statuses: vec![ActionStatus::Success; action.cancels.len()] }
        }
        Action::UpdateLeverage(_) | Action::ScheduleCancel(_) | Action::Noop => {
            ExchangeResponse::Ok { kind: "default".into(), statuses: vec![] }
        }
    };
    venue.accepted.lock().unwrap().push(request);
    Json(answer.to_json()).into_response()
}

async fn info(State(venue): State<Arc<Venue>>, body: String) -> Response {
    if receive(&venue, &body) {
        return too_many_requests();
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    let answer = match request["type"].as_str().unwrap() {
        "meta" => json!({"universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
            {"name": "ETH", "szDecimals": 4, "maxLeverage": 50}
        ]}),
        "allMids" => json!({"BTC": "97123.5", "ETH": "1891.45"}),
        "clearinghouseState" => json!({
            "assetPositions": [{"position": {"coin": "ETH", "szi": "-0.5", "entryPx": "1900.0",
                "leverage": {"type": "cross", "value": 5}, "liquidationPx": "2500.1", "marginUsed": "190.0",
                "positionValue": "945.7", "returnOnEquity": "0.02", "unrealizedPnl": "4.3"}, "type": "oneWay"}],
            "crossMaintenanceMarginUsed": "10.0",
            "crossMarginSummary": {"accountValue": "1000.0", "totalMarginUsed": "190.0", "totalNtlPos": "945.7", "totalRawUsd": "1945.7"},
            "marginSummary": {"accountValue": "1000.0", "totalMarginUsed": "190.0", "totalNtlPos": "945.7", "totalRawUsd": "1945.7"},
            "time": 1_700_000_000_000u64,
            "withdrawable": "810.0"
        }),
        "frontendOpenOrders" => json!([{"coin": "ETH", "side": "B", "limitPx": "1800.0", "sz": "0.5", "oid": 3,
            "timestamp": 1_700_000_000_000u64, "origSz": "0.5", "cloid": "0x00000000000000000000000000000007"}]),
        "userFillsByTime" => {
            // Pages of at most FILLS_PAGE fills from startTime, oldest first, as the venue pages.
            let start = request["startTime"].as_u64().unwrap();
            let page: Vec<Value> = FILL_TIMES
                .iter()
                .enumerate()
                .filter(|(_, time)| **time >= start)
                .take(FILLS_PAGE)
                .map(|(tid, time)| fill(tid as u64 + 11, *time))
                .collect();
            Value::Array(page)
        }
        "orderStatus" => match request["oid"].as_str() {
            Some("0x00000000000000000000000000000007") => json!({"status": "order", "order": {
                "order": {"coin": "ETH", "side": "B", "limitPx": "1800.0", "sz": "0.5", "oid": 3,
                          "timestamp": 1_700_000_000_000u64, "cloid": "0x00000000000000000000000000000007"},
                "status": "open", "statusTimestamp": 1_700_000_000_000u64}}),
            _ => json!({"status": "unknownOid"}),
        },
        "candleSnapshot" => json!([{"T": 1681924499999u64, "c": "29258.0", "h": "29309.0", "i": "15m", "l": "29250.0",
            "n": 189, "o": "29295.0", "s": "BTC", "t": 1681923600000u64, "v": "0.98639"}]),
        other => return (StatusCode::BAD_REQUEST, format!("unknown type {other}")).into_response(),
    };
    Json(answer).into_response()
}

/// The times of the fills the venue holds: two share a millisecond across a page boundary.
const FILL_TIMES: [u64; 5] =
    [1_700_000_000_000, 1_700_000_000_020, 1_700_000_000_020, 1_700_000_000_030, 1_700_000_000_040];
/// The venue's page size of `userFillsByTime` (2000 at the real one).
const FILLS_PAGE: usize = 2;

fn fill(tid: u64, time: u64) -> Value {
    json!({"closedPnl": "0.0", "coin": "ETH", "crossed": true, "dir": "Open Short",
        "hash": "0xabc", "oid": 2, "px": "1900.0", "side": "A", "startPosition": "0.0", "sz": "0.5",
        "time": time, "fee": "0.4275", "feeToken": "USDC", "tid": tid})
}

/// A venue on a free port, checking signatures as `network`, knowing `signer`.
async fn start(network: Network, signer: Address) -> (String, Arc<Venue>) {
    let venue = Arc::new(Venue {
        network,
        known_signer: signer,
        nonces: Mutex::new(HashSet::new()),
        accepted: Mutex::new(Vec::new()),
        received: Mutex::new(Vec::new()),
        next_oid: AtomicU64::new(77_738_308),
        refuse_with_429: AtomicU32::new(0),
    });
    let app =
        Router::new().route("/exchange", post(exchange)).route("/info", post(info)).with_state(Arc::clone(&venue));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), venue)
}

fn wallet() -> Wallet {
    Wallet::from_hex(KEY).unwrap()
}

fn fast_options() -> RestOptions {
    RestOptions { rate_limited_wait_ms: 10, ..RestOptions::default() }
}

fn cloid(n: u8) -> Cloid {
    let mut bytes = [0u8; 16];
    bytes[15] = n;
    Cloid(bytes)
}

#[tokio::test]
async fn orders_are_signed_by_the_api_wallet_and_answered_per_order() {
    let (url, venue) = start(Network::Testnet, wallet().address()).await;
    let rest = Rest::new(&Endpoints::local(&url, Network::Testnet), Some(wallet()), None, fast_options()).unwrap();
    let nonces = NonceAllocator::new();

    let resting = OrderWire::limit(ETH, Side::Buy, dec!(1800), dec!(0.5), Tif::Gtc, false, Some(cloid(7))).unwrap();
    let taking = OrderWire::limit(ETH, Side::Sell, dec!(1850.5), dec!(0.01), Tif::Ioc, false, None).unwrap();
    let statuses = rest.place_orders(vec![resting, taking], nonces.next(1_700_000_000_000).unwrap()).await.unwrap();
    assert_eq!(
        statuses,
        vec![
            ActionStatus::Resting(Resting { oid: 77_738_308, cloid: Some(cloid(7)) }),
            ActionStatus::Filled(Filled { total_sz: dec!(0.01), avg_px: dec!(1850.5), oid: 77_738_309, cloid: None }),
        ]
    );
    // The body went out as documented: strings without trailing zeros, the cloid in 0x form.
    let body: Value = serde_json::from_str(&venue.received.lock().unwrap()[0]).unwrap();
    assert_eq!(
        body["action"]["orders"][0],
        json!({"a": 1, "b": true, "p": "1800", "s": "0.5", "r": false,
        "t": {"limit": {"tif": "Gtc"}}, "c": "0x00000000000000000000000000000007"})
    );
    assert_eq!(body["nonce"], json!(1_700_000_000_000u64));
    assert_eq!(body["vaultAddress"], Value::Null);

    // Same millisecond, next action: a different nonce, accepted.
    let statuses = rest
        .cancel(
            vec![Cancel { asset: 1, oid: 5 }, Cancel { asset: 1, oid: 5_000 }],
            nonces.next(1_700_000_000_000).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        statuses,
        vec![ActionStatus::Success, ActionStatus::Error("Order was never placed, already canceled, or filled.".into())]
    );
    assert_eq!(
        rest.cancel_by_cloid(1, cloid(7), nonces.next(1_700_000_000_000).unwrap()).await,
        Ok(ActionStatus::Success)
    );
    assert_eq!(rest.update_leverage(1, true, 10, nonces.next(1_700_000_000_000).unwrap()).await, Ok(()));
    let accepted: Vec<u64> = venue.accepted.lock().unwrap().iter().map(|request| request.nonce).collect();
    assert_eq!(accepted, vec![1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002, 1_700_000_000_003]);
}

#[tokio::test]
async fn a_wrong_signature_recovers_an_unknown_wallet_and_is_refused() {
    // The client signs as mainnet; the venue checks as testnet: it recovers some other address.
    let (url, venue) = start(Network::Testnet, wallet().address()).await;
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), Some(wallet()), None, fast_options()).unwrap();
    let order = OrderWire::limit(ETH, Side::Buy, dec!(1800), dec!(0.5), Tif::Gtc, false, None).unwrap();
    let refused = rest.place_orders(vec![order], 1).await.unwrap_err();
    let RestError::Rejected(message) = refused else { panic!("expected a refusal, got {refused:?}") };
    assert!(message.starts_with("User or API Wallet 0x") && message.ends_with("does not exist."), "{message}");
    assert!(!message.contains(&wallet().address().to_string()));
    assert!(venue.accepted.lock().unwrap().is_empty());

    // A vault changes the hash too: a client trading for a vault the venue checks without.
    let vault = Address::parse(ACCOUNT).unwrap();
    let (url, _venue) = start(Network::Testnet, wallet().address()).await;
    let rest =
        Rest::new(&Endpoints::local(&url, Network::Testnet), Some(wallet()), Some(vault), fast_options()).unwrap();
    let request = rest.sign(Action::Noop, 9, None).unwrap();
    assert_eq!(request.vault_address, Some(vault));
    assert_eq!(request.recover_signer(Network::Testnet), Ok(wallet().address()));
    let stripped = ExchangeRequest { vault_address: None, ..request };
    assert_ne!(stripped.recover_signer(Network::Testnet), Ok(wallet().address()));
}

#[tokio::test]
async fn a_resent_action_is_refused_as_a_duplicate_nonce_not_executed_twice() {
    let (url, venue) = start(Network::Mainnet, wallet().address()).await;
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), Some(wallet()), None, fast_options()).unwrap();
    let order = OrderWire::limit(ETH, Side::Buy, dec!(1800), dec!(0.5), Tif::Gtc, false, Some(cloid(1))).unwrap();
    let request = rest.sign(Action::orders(vec![order]), 1_741_107_452_532, None).unwrap();
    assert!(matches!(rest.send(&request).await, Ok(ExchangeResponse::Ok { .. })));
    assert_eq!(
        rest.send(&request).await,
        Ok(ExchangeResponse::Err("Invalid nonce: duplicate nonce 1741107452532".into()))
    );
    assert_eq!(venue.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn http_429_is_waited_out_and_the_same_bytes_sent_again() {
    let (url, venue) = start(Network::Mainnet, wallet().address()).await;
    venue.refuse_with_429.store(2, Ordering::SeqCst);
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), Some(wallet()), None, fast_options()).unwrap();
    assert_eq!(rest.exchange(Action::Noop, 42).await, Ok(vec![]));
    let received = venue.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|body| body == &received[0]));

    // Past the retries, the 429 is the answer.
    venue.refuse_with_429.store(10, Ordering::SeqCst);
    let options = RestOptions { max_rate_limit_retries: 1, ..fast_options() };
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), None, None, options).unwrap();
    assert!(matches!(rest.all_mids().await, Err(RestError::Http { status: 429, .. })));
}

#[tokio::test]
async fn dry_run_signs_but_sends_nothing_and_reads_need_no_wallet() {
    let (url, venue) = start(Network::Mainnet, wallet().address()).await;
    let options = RestOptions { dry_run: true, ..fast_options() };
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), Some(wallet()), None, options).unwrap();
    assert_eq!(rest.exchange(Action::Noop, 1).await, Err(RestError::DryRun));
    assert!(venue.received.lock().unwrap().is_empty());

    let reader = Rest::new(&Endpoints::local(&url, Network::Mainnet), None, None, fast_options()).unwrap();
    assert_eq!(reader.exchange(Action::Noop, 1).await, Err(RestError::NoWallet));
    assert_eq!(reader.signer(), None);
    // The client's Debug output shows the wallet's address, never its key.
    let debug = format!("{rest:?}");
    assert!(debug.contains("key: <redacted>") && !debug.contains("0123456789012345"), "{debug}");
}

#[tokio::test]
async fn info_answers_are_read_into_exact_types() {
    let (url, _venue) = start(Network::Mainnet, wallet().address()).await;
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), None, None, fast_options()).unwrap();
    let account = Address::parse(ACCOUNT).unwrap();

    let meta = rest.meta().await.unwrap();
    assert_eq!(meta.asset("ETH").map(|eth| (eth.asset, eth.sz_decimals)), Some((1, 4)));
    assert_eq!(rest.all_mids().await.unwrap()["ETH"], dec!(1891.45));
    let state = rest.clearinghouse_state(account).await.unwrap();
    assert_eq!(state.asset_positions[0].position.szi, dec!(-0.5));
    assert_eq!(state.withdrawable, dec!(810.0));
    let orders = rest.open_orders(account).await.unwrap();
    assert_eq!((orders[0].oid, orders[0].cloid), (3, Some(cloid(7))));
    let fills = rest.user_fills_by_time(account, 1_699_999_000_000, None).await.unwrap();
    assert_eq!((fills[0].side, fills[0].fee, fills[0].tid), (Side::Sell, dec!(0.4275), 11));
    assert_eq!(fills.len(), FILLS_PAGE);
    let OrderStatusAnswer::Found(report) = rest.order_status(account, OrderRef::Cloid(cloid(7))).await.unwrap() else {
        panic!("the order is known by its cloid")
    };
    assert_eq!(report.status, OrderStatus::Open);
    assert_eq!(rest.order_status(account, OrderRef::Oid(99)).await, Ok(OrderStatusAnswer::Unknown));
    let candles = rest.candle_snapshot("BTC", "15m", 1_681_923_600_000, 1_681_924_499_999).await.unwrap();
    assert_eq!(candles[0].close, dec!(29258.0));
}

#[tokio::test]
async fn the_weight_budget_is_spent_before_sending() {
    // A budget of 4 at once and 2 a second: allMids weighs 2, so two go at once and the third
    // waits about a second.
    let (url, venue) = start(Network::Mainnet, wallet().address()).await;
    let options = RestOptions { weight_per_minute: 124, burst_weight: 4, ..fast_options() };
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), None, None, options).unwrap();
    let started = Instant::now();
    rest.all_mids().await.unwrap();
    rest.all_mids().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500), "the burst goes at once");
    rest.all_mids().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800), "the third waits for the refill: {:?}", started.elapsed());
    assert_eq!(venue.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn fills_are_paged_by_time_without_repeats_or_gaps() {
    let (url, venue) = start(Network::Mainnet, wallet().address()).await;
    let options = RestOptions { fills_page_max: FILLS_PAGE, ..fast_options() };
    let rest = Rest::new(&Endpoints::local(&url, Network::Mainnet), None, None, options).unwrap();
    let fills = rest.user_fills_since(Address::parse(ACCOUNT).unwrap(), 0, None).await.unwrap();
    let got: Vec<(u64, u64)> = fills.iter().map(|fill| (fill.tid, fill.time)).collect();
    let expected: Vec<(u64, u64)> = FILL_TIMES.iter().enumerate().map(|(i, time)| (i as u64 + 11, *time)).collect();
    assert_eq!(got, expected);
    // Pages from 0, from the boundary millisecond (repeating one fill), from the next
    // millisecond (a full page stuck in one), then the short last page.
    let starts: Vec<u64> = venue
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|body| serde_json::from_str::<Value>(body).unwrap()["startTime"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, vec![0, 1_700_000_000_020, 1_700_000_000_021, 1_700_000_000_040]);
}
