//! The client against a small Bybit of the test's own (axum on 127.0.0.1): it checks
//! signatures and timestamps the way Bybit does, keeps a rolling-second limit on creates
//! with the real headers, and answers scripted 10002/10006/403 and rejections.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bybit::{Credentials, Endpoints, Error, Rest, RestOptions, StreamConfig, StreamEvent};
use journal::event::{Cloid, OrderIntent, OrderKind, Side, TimeInForce};
use rust_decimal_macros::dec;
use serde_json::{json, Value};

const KEY: &str = "mock-key";
const SECRET: &str = "mock-secret-0123456789";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An answer the test puts in front of a path's normal behaviour.
#[derive(Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

#[derive(Default)]
struct Mock {
    skew_ms: AtomicI64,
    /// (path, instant) of every request that reached the server.
    hits: Mutex<Vec<(String, Instant)>>,
    creates: Mutex<VecDeque<Instant>>,
    too_many_answered: AtomicUsize,
    script: Mutex<HashMap<String, VecDeque<Scripted>>>,
    /// What the WebSocket handlers do: "public", "private", "silent", "bad-auth".
    ws_mode: Mutex<String>,
    ws_connections: AtomicUsize,
    /// What `execution/list` knows, oldest first.
    executions: Mutex<Vec<Value>>,
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl Mock {
    fn server_ms(&self) -> i64 {
        now_ms() + self.skew_ms.load(Ordering::Relaxed)
    }

    fn push(&self, path: &str, scripted: Scripted) {
        self.script.lock().unwrap().entry(path.to_owned()).or_default().push_back(scripted);
    }

    fn hits(&self, path: &str) -> Vec<Instant> {
        self.hits.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, t)| *t).collect()
    }
}

fn envelope(code: i64, msg: &str, result: Value, time: i64) -> String {
    json!({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": time}).to_string()
}

fn answer(status: u16, headers: Vec<(&'static str, String)>, body: String) -> Response<Body> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response.body(Body::from(body)).unwrap()
}

async fn rest(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response<Body> {
    let path = uri.path().to_owned();
    mock.hits.lock().unwrap().push((path.clone(), Instant::now()));
    let server = mock.server_ms();
    if path == "/v5/market/time" {
        let result = json!({"timeSecond": (server / 1000).to_string(), "timeNano": (i128::from(server) * 1_000_000).to_string()});
        return answer(200, vec![], envelope(0, "OK", result, server));
    }
    if let Some(scripted) = mock.script.lock().unwrap().get_mut(&path).and_then(VecDeque::pop_front) {
        return answer(scripted.status, scripted.headers, scripted.body);
    }
    if path == "/v5/market/kline" {
        // Every minute has a bar; the newest `limit` of [start, end], newest first.
        let q = query(&uri);
        let (start, end, limit): (i64, i64, usize) =
            (q["start"].parse().unwrap(), q["end"].parse().unwrap(), q["limit"].parse().unwrap());
        let first = (start + 59_999) / 60_000 * 60_000;
        let mut rows: Vec<Value> = (0..)
            .map(|i| first + i * 60_000)
            .take_while(|t| *t <= end)
            .map(|t| json!([t.to_string(), "1", "2", "0.5", "1.5", "10", "15"]))
            .collect();
        rows.reverse();
        rows.truncate(limit);
        return answer(
            200,
            vec![],
            envelope(0, "OK", json!({"category": "linear", "symbol": q["symbol"], "list": rows}), server),
        );
    }
    if path.starts_with("/v5/market/") {
        return answer(200, vec![], envelope(0, "OK", json!({"list": []}), server));
    }
    // Private: Bybit's checks, in Bybit's order.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if header("X-BAPI-API-KEY") != KEY {
        return answer(200, vec![], envelope(10003, "API key is invalid.", json!({}), server));
    }
    let timestamp: i64 = header("X-BAPI-TIMESTAMP").parse().unwrap_or(0);
    let window: i64 = header("X-BAPI-RECV-WINDOW").parse().unwrap_or(5000);
    if !(server - window <= timestamp && timestamp < server + 1000) {
        let msg = format!("invalid request, please check your server timestamp or recv_window param. req_timestamp[{timestamp}],server_timestamp[{server}],recv_window[{window}]");
        return answer(200, vec![], envelope(10002, &msg, json!({}), server));
    }
    let payload = if method == Method::GET { uri.query().unwrap_or_default().to_owned() } else { body.clone() };
    let origin = format!("{timestamp}{KEY}{window}{payload}");
    let expected = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(origin.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    if header("X-BAPI-SIGN") != expected {
        return answer(
            200,
            vec![],
            envelope(10004, &format!("error sign! origin_string[{origin}]"), json!({}), server),
        );
    }
    match path.as_str() {
        "/v5/order/create" => {
            // A rolling one-second window of 10, as Bybit counts.
            let mut creates = mock.creates.lock().unwrap();
            let now = Instant::now();
            while creates.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                creates.pop_front();
            }
            let reset = creates.front().map_or(server, |t| server + 1000 - now.duration_since(*t).as_millis() as i64);
            if creates.len() >= 10 {
                mock.too_many_answered.fetch_add(1, Ordering::Relaxed);
                let headers = vec![
                    ("X-Bapi-Limit", "10".into()),
                    ("X-Bapi-Limit-Status", "0".into()),
                    ("X-Bapi-Limit-Reset-Timestamp", reset.to_string()),
                ];
                return answer(200, headers, envelope(10006, "Too many visits!", json!({}), server));
            }
            creates.push_back(now);
            let remaining = 10 - creates.len();
            let reset = creates.front().map_or(server, |t| server + 1000 - now.duration_since(*t).as_millis() as i64);
            let headers = vec![
                ("X-Bapi-Limit", "10".into()),
                ("X-Bapi-Limit-Status", remaining.to_string()),
                ("X-Bapi-Limit-Reset-Timestamp", reset.to_string()),
            ];
            let link = serde_json::from_str::<Value>(&body).unwrap()["orderLinkId"].clone();
            answer(
                200,
                headers,
                envelope(0, "OK", json!({"orderId": format!("oid-{}", creates.len()), "orderLinkId": link}), server),
            )
        }
        "/v5/execution/list" => {
            let q = query(&uri);
            // Without a range Bybit answers for the last 7 days.
            let end: i64 = q.get("endTime").map_or(server, |e| e.parse().unwrap());
            let start: i64 = q.get("startTime").map_or(end - 7 * 86_400_000, |s| s.parse().unwrap());
            if end - start > 7 * 86_400_000 {
                return answer(200, vec![], envelope(10001, "The time range is over 7 days", json!({}), server));
            }
            let limit: usize = q["limit"].parse().unwrap();
            let offset: usize = q.get("cursor").map_or(0, |c| c.trim_start_matches("offset%3D").parse().unwrap());
            let executions = mock.executions.lock().unwrap();
            let mut hits: Vec<&Value> = executions
                .iter()
                .filter(|e| (start..=end).contains(&e["execTime"].as_str().unwrap().parse::<i64>().unwrap()))
                .collect();
            hits.reverse();
            let page: Vec<&Value> = hits.iter().skip(offset).take(limit).copied().collect();
            let cursor =
                if offset + limit < hits.len() { format!("offset%3D{}", offset + limit) } else { String::new() };
            answer(
                200,
                vec![],
                envelope(0, "OK", json!({"list": page, "nextPageCursor": cursor, "category": "linear"}), server),
            )
        }
        "/v5/account/wallet-balance" => {
            let result = json!({"list": [{"accountType": "UNIFIED", "totalAvailableBalance": "9000",
                "coin": [{"coin": "USDT", "equity": "10000", "walletBalance": "10000"}]}]});
            answer(200, vec![], envelope(0, "OK", result, server))
        }
        _ => answer(200, vec![], envelope(0, "OK", json!({"list": []}), server)),
    }
}

async fn ws(State(mock): State<Arc<Mock>>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(move |socket| ws_session(mock, socket))
}

async fn recv_json(socket: &mut WebSocket) -> Option<Value> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn send_json(socket: &mut WebSocket, value: Value) {
    let _ = socket.send(Message::Text(value.to_string().into())).await;
}

async fn ws_session(mock: Arc<Mock>, mut socket: WebSocket) {
    let connection = mock.ws_connections.fetch_add(1, Ordering::Relaxed);
    let mode = mock.ws_mode.lock().unwrap().clone();
    if mode == "private" || mode == "bad-auth" || mode == "silent" {
        let Some(auth) = recv_json(&mut socket).await else { return };
        assert_eq!(auth["op"], "auth");
        let expires = auth["args"][1].as_i64().unwrap();
        let expected = {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("GET/realtime{expires}").as_bytes());
            hex::encode(mac.finalize().into_bytes())
        };
        let good =
            auth["args"][0] == KEY && auth["args"][2] == expected.as_str() && expires > now_ms() && mode != "bad-auth";
        send_json(
            &mut socket,
            json!({"success": good, "ret_msg": if good { "" } else { "Params Error" }, "op": "auth", "conn_id": "c"}),
        )
        .await;
        if !good {
            return;
        }
    }
    let Some(subscribe) = recv_json(&mut socket).await else { return };
    assert_eq!(subscribe["op"], "subscribe");
    send_json(&mut socket, json!({"success": true, "ret_msg": "", "conn_id": "c", "req_id": "", "op": "subscribe"}))
        .await;
    match mode.as_str() {
        "public" => {
            let bar = |start: i64, confirm: bool| {
                json!({"start": start, "end": start + 59_999, "interval": "1", "open": "100",
                "close": "101", "high": "102", "low": "99", "volume": "5", "turnover": "500", "confirm": confirm, "timestamp": start + 1})
            };
            send_json(&mut socket, json!({"topic": "kline.1.BTCUSDT", "type": "snapshot", "ts": 1, "data": [bar(60_000 * connection as i64, false)]})).await;
            send_json(&mut socket, json!({"topic": "kline.1.BTCUSDT", "type": "snapshot", "ts": 1, "data": [bar(60_000 * connection as i64, true)]})).await;
            let _ = socket.send(Message::Text("not json {".into())).await;
            // Answers pings until the test's connection budget is spent, then drops the first one.
            if connection == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
        "private" => {
            let order = |reject: &str, cancel: &str| {
                json!({"category": "linear", "symbol": "BTCUSDT", "orderId": "o1",
                "orderLinkId": "c1", "side": "Buy", "orderType": "Limit", "price": "100", "qty": "1", "orderStatus": "Filled",
                "leavesQty": "0", "cumExecQty": "1", "rejectReason": reject, "cancelType": cancel,
                "createdTime": "1", "updatedTime": "2"})
            };
            send_json(
                &mut socket,
                json!({"id": "1", "topic": "order", "creationTime": 2,
                "data": [order("EC_NoError", "UNKNOWN"), order("EC_OrigClOrdIDDoesNotExist", "CancelByUser")]}),
            )
            .await;
            send_json(&mut socket, json!({"id": "2", "topic": "execution", "creationTime": 2, "data": [
                {"category": "linear", "symbol": "BTCUSDT", "execId": "e1", "orderId": "o1", "orderLinkId": "c1", "side": "Buy",
                 "execType": "Trade", "execQty": "1", "execPrice": "100", "execFee": "0.06", "feeRate": "0.0006",
                 "isMaker": false, "markPrice": "100", "execTime": "2"}]})).await;
        }
        // "silent": subscribed, then never a word (not even pongs).
        _ => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
    }
    while let Some(frame) = recv_json(&mut socket).await {
        if frame["op"] == "ping" {
            send_json(
                &mut socket,
                json!({"success": true, "ret_msg": "pong", "conn_id": "c", "req_id": "", "op": "ping"}),
            )
            .await;
        }
    }
}

async fn start() -> (Arc<Mock>, Endpoints) {
    let mock = Arc::new(Mock::default());
    *mock.ws_mode.lock().unwrap() = "public".into();
    let app = Router::new()
        .route("/v5/public/linear", get(ws))
        .route("/v5/private", get(ws))
        .fallback(rest)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (mock, Endpoints::local(&format!("http://{address}"), &format!("ws://{address}")))
}

fn client(endpoints: &Endpoints, options: RestOptions) -> Rest {
    Rest::new(endpoints, Some(Credentials::new(KEY, SECRET)), options)
}

fn intent(n: u8) -> OrderIntent {
    OrderIntent {
        cloid: Cloid([n; 16]),
        symbol: "BTCUSDT".into(),
        side: Side::Buy,
        kind: OrderKind::Limit,
        qty: dec!(0.001),
        price: Some(dec!(25000)),
        trigger_price: None,
        reduce_only: false,
        tif: TimeInForce::Gtc,
    }
}

#[tokio::test]
async fn signed_requests_pass_the_servers_checks() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    // The first private call syncs the clock by itself.
    let wallet = rest.wallet().await.unwrap();
    assert_eq!(wallet.available, dec!(9000));
    assert_eq!(mock.hits("/v5/market/time").len(), 1);
    let created = rest.create_order(&intent(1)).await.unwrap();
    assert_eq!(created.order_id, "oid-1");
    assert!(rest.open_orders("BTCUSDT").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_an_api_error_that_never_shows_the_secret() {
    let (mock, endpoints) = start().await;
    let wrong_secret = "wrong-secret-that-must-stay-hidden";
    let rest = Rest::new(&endpoints, Some(Credentials::new(KEY, wrong_secret)), RestOptions::default());
    let error = rest.wallet().await.unwrap_err();
    assert_eq!(error.code(), Some(10004), "{error}");
    for text in [error.to_string(), format!("{error:?}"), format!("{rest:?}")] {
        assert!(!text.contains(wrong_secret), "{text}");
    }
    // A server that echoes the secret back is scrubbed too.
    mock.push(
        "/v5/account/wallet-balance",
        Scripted {
            status: 200,
            headers: vec![],
            body: envelope(10001, &format!("bad param {wrong_secret}"), json!({}), 0),
        },
    );
    mock.push(
        "/v5/account/wallet-balance",
        Scripted { status: 502, headers: vec![], body: format!("<html>gateway {wrong_secret}</html>") },
    );
    for _ in 0..2 {
        let error = rest.wallet().await.unwrap_err();
        assert!(!error.to_string().contains(wrong_secret) && !format!("{error:?}").contains(wrong_secret), "{error}");
    }
    // And a transport error (nothing listens there).
    let dead = Rest::new(
        &Endpoints::local("http://127.0.0.1:9", "ws://127.0.0.1:9"),
        Some(Credentials::new(KEY, wrong_secret)),
        RestOptions::default(),
    );
    let error = dead.wallet().await.unwrap_err();
    assert!(error.is_ambiguous() && !format!("{error:?}").contains(wrong_secret), "{error:?}");
}

#[tokio::test]
async fn timestamp_rejection_resyncs_the_clock_and_retries_once() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    rest.sync_time().await.unwrap();
    // The server's clock jumps 20 s ahead: the next request is outside the window.
    mock.skew_ms.store(20_000, Ordering::Relaxed);
    rest.wallet().await.unwrap();
    assert_eq!(mock.hits("/v5/market/time").len(), 2);
    assert_eq!(mock.hits("/v5/account/wallet-balance").len(), 2);
    assert!((rest.server_now_ms() - mock.server_ms()).abs() < 500);
    // A second 10002 after the resync is the caller's.
    let skewed = |code| Scripted {
        status: 200,
        headers: vec![],
        body: envelope(code, "invalid request, please check your server timestamp", json!({}), 0),
    };
    mock.push("/v5/account/wallet-balance", skewed(10002));
    mock.push("/v5/account/wallet-balance", skewed(10002));
    assert_eq!(rest.wallet().await.unwrap_err().code(), Some(10002));
}

#[tokio::test]
async fn a_burst_of_30_creates_queues_and_never_trips_10006() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    rest.sync_time().await.unwrap();
    let started = Instant::now();
    let creates = (0..30u8).map(|n| {
        let rest = rest.clone();
        tokio::spawn(async move { rest.create_order(&intent(n)).await })
    });
    for create in creates.collect::<Vec<_>>() {
        create.await.unwrap().unwrap();
    }
    assert_eq!(mock.too_many_answered.load(Ordering::Relaxed), 0);
    assert_eq!(mock.hits("/v5/order/create").len(), 30);
    // 30 at 10 a second: about three seconds.
    assert!(started.elapsed() >= Duration::from_millis(2_800), "{:?}", started.elapsed());
}

#[tokio::test]
async fn klines_page_newest_first_answers_into_oldest_first_bars() {
    let (mock, endpoints) = start().await;
    let rest = Rest::new(&endpoints, None, RestOptions::default());
    let start = 1_700_000_000_000 / 60_000 * 60_000;
    let end = start + 2_499 * 60_000;
    let bars = rest.klines("BTCUSDT", 60_000, start, end).await.unwrap();
    assert_eq!(bars.len(), 2_500);
    assert!(bars.windows(2).all(|w| w[1].open_time_ms == w[0].open_time_ms + 60_000));
    assert_eq!((bars[0].open_time_ms, bars[2_499].open_time_ms), (start, end));
    assert!(bars.iter().all(|b| b.closed && b.interval_ms == 60_000 && b.symbol == "BTCUSDT" && b.close == dec!(1.5)));
    assert_eq!(mock.hits("/v5/market/kline").len(), 3);
    assert!(matches!(rest.klines("BTCUSDT", 7_000, start, end).await, Err(Error::Decode(_))));
}

#[tokio::test]
async fn executions_page_by_cursor_in_7_day_windows_oldest_first_once_each() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    let now = now_ms();
    let day = 86_400_000;
    let execution = |id: usize, time: i64| {
        json!({"symbol": "BTCUSDT", "execId": format!("e{id}"), "orderId": "o", "orderLinkId": "c",
        "side": "Buy", "execType": "Trade", "execQty": "1", "execPrice": "100", "execFee": "0.01", "feeRate": "0.0001",
        "isMaker": true, "markPrice": "100", "execTime": time.to_string()})
    };
    // 250 executions over 20 days: three windows, the fullest paged.
    let times: Vec<i64> = (0..250).map(|i| now - 20 * day + i * (20 * day / 250)).collect();
    *mock.executions.lock().unwrap() = times.iter().enumerate().map(|(i, t)| execution(i, *t)).collect();
    let got = rest.executions("BTCUSDT", now - 21 * day).await.unwrap();
    assert_eq!(got.len(), 250);
    assert!(got.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert_eq!(
        got.iter().map(|e| e.exec_id.as_str()).collect::<Vec<_>>(),
        (0..250).map(|i| format!("e{i}")).collect::<Vec<_>>()
    );
    assert!(mock.hits("/v5/execution/list").len() >= 4, "the last 7 days paged, then the older windows");
    // From a later start only the later ones.
    let later = rest.executions("BTCUSDT", times[200]).await.unwrap();
    assert_eq!(later.first().map(|e| e.exec_id.as_str()), Some("e200"));
    assert_eq!(later.len(), 50);
}

/// 10006 with the limit headers saying none are left until `reset_ms`.
fn too_many_visits(reset_ms: i64) -> Scripted {
    Scripted {
        status: 200,
        headers: vec![
            ("X-Bapi-Limit", "50".into()),
            ("X-Bapi-Limit-Status", "0".into()),
            ("X-Bapi-Limit-Reset-Timestamp", reset_ms.to_string()),
        ],
        body: envelope(10006, "Too many visits!", json!({}), 0),
    }
}

#[tokio::test]
async fn too_many_visits_waits_for_the_reset_and_retries() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    rest.sync_time().await.unwrap();
    let reset = mock.server_ms() + 400;
    let too_many = too_many_visits(reset);
    mock.push("/v5/position/list", too_many.clone());
    rest.positions("BTCUSDT").await.unwrap();
    let hits = mock.hits("/v5/position/list");
    assert_eq!(hits.len(), 2);
    assert!(hits[1] - hits[0] >= Duration::from_millis(380), "{:?}", hits[1] - hits[0]);

    // Bounded: 10006 every time ends as the error after the retries.
    let rest = client(&endpoints, RestOptions { max_rate_limit_retries: 2, ..RestOptions::default() });
    for _ in 0..3 {
        let mut again = too_many.clone();
        again.headers[2].1 = (mock.server_ms() + 50).to_string();
        mock.push("/v5/execution/list", again);
    }
    assert_eq!(rest.executions("BTCUSDT", now_ms() - 60_000).await.unwrap_err().code(), Some(10006));
}

#[tokio::test]
async fn limit_status_zero_holds_the_class_until_the_reset() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    rest.sync_time().await.unwrap();
    let reset = mock.server_ms() + 500;
    let last = Scripted {
        status: 200,
        headers: vec![
            ("X-Bapi-Limit", "50".into()),
            ("X-Bapi-Limit-Status", "0".into()),
            ("X-Bapi-Limit-Reset-Timestamp", reset.to_string()),
        ],
        body: envelope(0, "OK", json!({"list": []}), 0),
    };
    mock.push("/v5/order/realtime", last);
    rest.open_orders("BTCUSDT").await.unwrap();
    // Another class is not held.
    let before = Instant::now();
    rest.positions("BTCUSDT").await.unwrap();
    assert!(before.elapsed() < Duration::from_millis(300));
    rest.open_orders("BTCUSDT").await.unwrap();
    let hits = mock.hits("/v5/order/realtime");
    assert!(hits[1] - hits[0] >= Duration::from_millis(450), "{:?}", hits[1] - hits[0]);
}

#[tokio::test]
async fn http_403_waits_the_configured_ban_and_retries_a_bounded_number_of_times() {
    let (mock, endpoints) = start().await;
    let options = RestOptions { ip_ban_wait_ms: 300, max_rate_limit_retries: 2, ..RestOptions::default() };
    let rest = client(&endpoints, options);
    rest.sync_time().await.unwrap();
    let banned = Scripted { status: 403, headers: vec![], body: "access too frequent".into() };
    mock.push("/v5/position/list", banned.clone());
    rest.positions("BTCUSDT").await.unwrap();
    let hits = mock.hits("/v5/position/list");
    assert!(hits[1] - hits[0] >= Duration::from_millis(290));
    for _ in 0..3 {
        mock.push("/v5/position/list", banned.clone());
    }
    let error = rest.positions("BTCUSDT").await.unwrap_err();
    assert_eq!(error, Error::Http { status: 403, body: "access too frequent".into() });
    assert!(!error.is_ambiguous());
}

#[tokio::test]
async fn a_rejected_create_without_order_id_is_an_api_error() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    for (code, msg) in [(110_072, "OrderLinkedID is duplicate"), (110_017, "orderQty will be truncated to zero")] {
        mock.push(
            "/v5/order/create",
            Scripted { status: 200, headers: vec![], body: envelope(code, msg, json!({}), 1) },
        );
        assert_eq!(rest.create_order(&intent(7)).await.unwrap_err(), Error::Api { code, message: msg.into() });
    }
    // An OK without orderId is not a created order either.
    mock.push("/v5/order/create", Scripted { status: 200, headers: vec![], body: envelope(0, "OK", json!({}), 1) });
    assert!(matches!(rest.create_order(&intent(7)).await.unwrap_err(), Error::Decode(_)));
    // A 5xx page is ambiguous.
    mock.push("/v5/order/create", Scripted { status: 502, headers: vec![], body: "<html>bad gateway</html>".into() });
    assert!(rest.create_order(&intent(7)).await.unwrap_err().is_ambiguous());
}

#[tokio::test]
async fn dry_run_signs_but_sends_nothing_that_changes_anything() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions { dry_run: true, ..RestOptions::default() });
    assert_eq!(rest.create_order(&intent(1)).await, Err(Error::DryRun));
    assert_eq!(rest.cancel_order("BTCUSDT", &Cloid([1; 16])).await, Err(Error::DryRun));
    assert_eq!(rest.set_leverage("BTCUSDT", dec!(3)).await, Err(Error::DryRun));
    assert!(mock.hits("/v5/order/create").is_empty() && mock.hits("/v5/order/cancel").is_empty());
    assert!(mock.hits("/v5/position/set-leverage").is_empty());
    // Reads still go out.
    rest.wallet().await.unwrap();
}

#[tokio::test]
async fn leverage_not_modified_is_success_and_no_key_is_an_error() {
    let (mock, endpoints) = start().await;
    let rest = client(&endpoints, RestOptions::default());
    mock.push(
        "/v5/position/set-leverage",
        Scripted { status: 200, headers: vec![], body: envelope(110_043, "Set leverage not modified", json!({}), 1) },
    );
    rest.set_leverage("BTCUSDT", dec!(5)).await.unwrap();
    rest.set_leverage("BTCUSDT", dec!(5)).await.unwrap();
    let anonymous = Rest::new(&endpoints, None, RestOptions::default());
    assert_eq!(anonymous.wallet().await, Err(Error::NoCredentials));
}

#[tokio::test]
async fn public_stream_forwards_closed_bars_and_comes_back_after_a_close() {
    let (mock, endpoints) = start().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = StreamConfig {
        endpoints,
        credentials: None,
        klines: vec![("BTCUSDT".into(), 60_000)],
        ping_every: Duration::from_millis(200),
        clock: None,
    };
    let task = bybit::stream::spawn(config, tx);
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.iter().filter(|e| matches!(e, StreamEvent::Up { .. })).count() < 2 {
        let event = tokio::time::timeout_at(deadline, rx.recv()).await.expect("events in time").expect("stream open");
        seen.push(event);
    }
    // Up, the confirmed bar (not the forming one, not the garbage), Down, Up.
    assert!(matches!(seen[0], StreamEvent::Up { private: false }), "{seen:?}");
    let StreamEvent::Kline { kline, .. } = &seen[1] else { panic!("{seen:?}") };
    assert_eq!((kline.open_time_ms, kline.interval_ms, kline.closed), (0, 60_000, true));
    assert!(matches!(&seen[2], StreamEvent::Down { private: false, .. }), "{seen:?}");
    assert!(matches!(seen[3], StreamEvent::Up { private: false }), "{seen:?}");
    assert_eq!(seen.len(), 4, "{seen:?}");
    let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert!(matches!(next, StreamEvent::Kline { ref kline, .. } if kline.open_time_ms == 60_000), "{next:?}");
    // It keeps pinging and stays up past 2× ping_every.
    assert!(tokio::time::timeout(Duration::from_millis(700), rx.recv()).await.is_err());
    assert_eq!(mock.ws_connections.load(Ordering::Relaxed), 2);
    // Dropping the receiver ends the task.
    drop(rx);
    tokio::time::timeout(Duration::from_secs(3), task).await.expect("the task ends").unwrap();
}

#[tokio::test]
async fn private_stream_authenticates_and_passes_both_filled_through() {
    let (mock, endpoints) = start().await;
    *mock.ws_mode.lock().unwrap() = "private".into();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rest = client(&endpoints, RestOptions::default());
    rest.sync_time().await.unwrap();
    let config = StreamConfig {
        endpoints,
        credentials: Some(Credentials::new(KEY, SECRET)),
        klines: vec![],
        ping_every: Duration::from_secs(20),
        clock: Some(rest.clock()),
    };
    let _task = bybit::stream::spawn(config, tx);
    let mut next = async || tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert!(matches!(next().await, StreamEvent::Up { private: true }));
    for reject in ["EC_NoError", "EC_OrigClOrdIDDoesNotExist"] {
        let event = next().await;
        assert!(matches!(&event, StreamEvent::Order(o) if o.reject_reason == reject), "{event:?}");
    }
    assert!(matches!(next().await, StreamEvent::Execution(e) if e.exec_id == "e1" && e.fee == dec!(0.06)));
}

#[tokio::test]
async fn refused_auth_and_silence_are_losses() {
    let (mock, endpoints) = start().await;
    *mock.ws_mode.lock().unwrap() = "bad-auth".into();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = StreamConfig {
        endpoints,
        credentials: Some(Credentials::new(KEY, SECRET)),
        klines: vec![],
        ping_every: Duration::from_millis(150),
        clock: None,
    };
    let _task = bybit::stream::spawn(config, tx);
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    let StreamEvent::Down { private: true, reason } = event else { panic!("{event:?}") };
    assert!(reason.contains("auth refused: Params Error"), "{reason}");
    assert!(!reason.contains(SECRET));
    // Retries that fail the same way report no further Down.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.try_recv().is_err());
    assert!(mock.ws_connections.load(Ordering::Relaxed) >= 2);

    // The server now authenticates, subscribes, then says nothing: dead after 2× ping_every.
    *mock.ws_mode.lock().unwrap() = "silent".into();
    let up = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert!(matches!(up, StreamEvent::Up { private: true }), "{up:?}");
    let started = Instant::now();
    let down = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    let StreamEvent::Down { private: true, reason } = down else { panic!("{down:?}") };
    assert!(reason.contains("silent"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
}

/// Records what the client tells its observer.
#[derive(Debug, Default)]
struct Heard {
    answered: Mutex<Vec<(String, Option<String>)>>,
    waited: Mutex<Vec<(String, Duration)>>,
}

impl bybit::Observer for Heard {
    fn answered(&self, endpoint: &str, _took: Duration, code: Option<&str>) {
        self.answered.lock().unwrap().push((endpoint.to_owned(), code.map(str::to_owned)));
    }

    fn waited(&self, endpoint: &str, took: Duration) {
        self.waited.lock().unwrap().push((endpoint.to_owned(), took));
    }
}

#[tokio::test]
async fn the_observer_hears_each_attempt_its_code_and_the_limiters_waits() {
    let (mock, endpoints) = start().await;
    let heard = Arc::new(Heard::default());
    let observer: Arc<dyn bybit::Observer> = heard.clone();
    let rest = client(&endpoints, RestOptions { observer: Some(observer), ..RestOptions::default() });
    rest.sync_time().await.unwrap();
    let reset = mock.server_ms() + 300;
    mock.push("/v5/position/list", too_many_visits(reset));
    rest.positions("BTCUSDT").await.unwrap();
    let answered = heard.answered.lock().unwrap().clone();
    assert_eq!(
        answered,
        [
            ("/v5/market/time".to_owned(), None),
            ("/v5/position/list".to_owned(), Some("10006".to_owned())),
            ("/v5/position/list".to_owned(), None),
        ]
    );
    // The retry waited for the reset, and said so; nothing else waited that long.
    let waited = heard.waited.lock().unwrap().clone();
    assert!(
        waited.iter().any(|(e, took)| e == "/v5/position/list" && *took >= Duration::from_millis(250)),
        "{waited:?}"
    );
    assert!(waited.iter().all(|(e, _)| e == "/v5/position/list"), "{waited:?}");
}
