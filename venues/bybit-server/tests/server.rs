//! The server over real sockets: signing, the envelope, order checks, rate limits, fills, the
//! WebSocket streams, the log and every fault.

mod common;

use std::time::{Duration, Instant};

use bybit_server::{Config, Faults};
use common::*;
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_is_checked_in_bybit_order() {
    let (config, klines) = held(3, 60.0);
    let server = serve(config, klines).await;
    let mut client = Client::new(&server);
    let wallet = "/v5/account/wallet-balance";
    let ok = client.get(wallet, "accountType=UNIFIED").await;
    assert_eq!(ok.code(), 0, "{}", ok.body);
    assert_eq!(ok.body["result"]["list"][0]["coin"][0]["walletBalance"], "10000");

    client.secret = "wrong".into();
    let bad_sign = client.get(wallet, "accountType=UNIFIED").await;
    assert_eq!(bad_sign.code(), 10004);
    assert!(bad_sign.message().starts_with("error sign! origin_string["), "{}", bad_sign.message());
    assert!(bad_sign.message().ends_with("5000accountType=UNIFIED]"), "{}", bad_sign.message());

    client.key = "someone-else".into();
    assert_eq!(client.get(wallet, "accountType=UNIFIED").await.code(), 10003);

    let mut late = Client::new(&server);
    late.clock_offset_ms = -6000;
    let stale = late.get(wallet, "accountType=UNIFIED").await;
    assert_eq!(stale.code(), 10002);
    assert!(stale
        .message()
        .starts_with("invalid request, please check your server timestamp or recv_window param. req_timestamp["));
    assert!(stale.message().ends_with(",recv_window[5000]"), "{}", stale.message());
    late.clock_offset_ms = 1500;
    assert_eq!(late.get(wallet, "accountType=UNIFIED").await.code(), 10002, "more than 1 s ahead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_server_clock_refuses_honest_timestamps() {
    let (config, klines) = held(3, 60.0);
    let server = serve(Config { faults: Faults { skew_ms: 10_000, ..Faults::default() }, ..config }, klines).await;
    let mut client = Client::new(&server);
    assert_eq!(client.get("/v5/position/list", "category=linear&symbol=BTCUSDT").await.code(), 10002);
    // The server's time says how far off it is; a client that syncs to it gets in.
    let time = client.public("/v5/market/time", "").await;
    let server_s: i64 = time.body["result"]["timeSecond"].as_str().unwrap().parse().unwrap();
    client.clock_offset_ms = server_s * 1000 - bybit_server::server::wall_ms();
    assert_eq!(client.get("/v5/position/list", "category=linear&symbol=BTCUSDT").await.code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_and_bad_requests() {
    let (config, klines) = held(3, 60.0);
    let server = serve(Config { history: 2, ..config }, klines).await;
    let client = Client::new(&server);
    let time = client.public("/v5/market/time", "").await;
    let keys: Vec<&str> = time.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["result", "retCode", "retExtInfo", "retMsg", "time"]);
    assert_eq!((time.status, time.code(), time.message()), (200, 0, "OK"));
    assert!(time.body["time"].is_i64());

    let unknown = client.public("/v5/nothing/here", "").await;
    assert_eq!((unknown.status, unknown.code()), (404, 10017));

    let malformed = client.post_raw("/v5/order/create", "{not json").await;
    assert_eq!((malformed.status, malformed.code()), (200, 10001));
    let not_object = client.post_raw("/v5/order/create", "[1,2]").await;
    assert_eq!(not_object.code(), 10001);

    let klines = client.public("/v5/market/kline", "category=linear&symbol=BTCUSDT&interval=1").await;
    let list = klines.body["result"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 2, "history only: bar 2 is in progress");
    assert_eq!(list[0][0], (T0 + 60_000).to_string(), "newest first");
    assert_eq!(list[0].as_array().unwrap().len(), 7);
    let limited = client.public("/v5/market/kline", "category=linear&symbol=BTCUSDT&interval=1&limit=1").await;
    assert_eq!(limited.body["result"]["list"].as_array().unwrap().len(), 1);
    let wrong = client.public("/v5/market/kline", "category=linear&symbol=BTCUSDT&interval=5").await;
    assert_eq!(wrong.code(), 10001);

    let info = client.public("/v5/market/instruments-info", "category=linear&symbol=BTCUSDT").await;
    let item = &info.body["result"]["list"][0];
    assert_eq!(item["priceFilter"]["tickSize"], "0.1");
    assert_eq!(item["lotSizeFilter"]["qtyStep"], "0.001");
    assert_eq!(item["lotSizeFilter"]["minNotionalValue"], "5");
    assert_eq!(item["leverageFilter"]["maxLeverage"], "100");
    let tickers = client.public("/v5/market/tickers", "category=linear&symbol=BTCUSDT").await;
    assert_eq!(tickers.body["result"]["list"][0]["lastPrice"], "102", "bar 1's close");
    let fees = client.get("/v5/account/fee-rate", "category=linear&symbol=BTCUSDT").await;
    assert_eq!(fees.body["result"]["list"][0]["takerFeeRate"], "0.00055");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_are_checked_like_bybit() {
    let (config, klines) = held(3, 60.0);
    let server = serve(Config { min_qty: "0.01".parse().unwrap(), ..config }, klines).await;
    let client = Client::new(&server);
    let cases = [
        (json!({"qty": "0.0004"}), 110017),
        (json!({"qty": "0.0105"}), 10001),
        (json!({"qty": "0.005"}), 10001),
        (json!({"orderType": "Limit", "price": "100.05"}), 10001),
        (json!({"orderType": "Limit"}), 10001),
        (json!({"qty": "0.01", "orderType": "Limit", "price": "100"}), 110094),
        (json!({"qty": "1000"}), 110007),
        (json!({"side": "Sideways"}), 10001),
        (json!({"symbol": "ETHUSDT"}), 10001),
        (json!({"reduceOnly": true, "qty": "0.1"}), 110017),
        (json!({"orderLinkId": "has spaces"}), 10001),
        (json!({"qty": "79228162514264337593543950335"}), 10001),
        (json!({"qty": "1000000000", "orderType": "Limit", "price": "1000000"}), 110007),
        (json!({"qty": 1e300}), 10001),
        (json!({"qty": ["x"]}), 10001),
    ];
    for (fields, code) in cases {
        let mut reply = client.create(fields.clone()).await;
        if reply.code() == 10006 {
            // More cases than creates per second.
            tokio::time::sleep(SECOND).await;
            reply = client.create(fields.clone()).await;
        }
        assert_eq!(reply.code(), code, "{fields} -> {}", reply.body);
    }
    let first = client.create(json!({"qty": "0.1", "orderLinkId": "once"})).await;
    assert_eq!(first.code(), 0, "{}", first.body);
    let order_id = first.body["result"]["orderId"].as_str().unwrap().to_owned();
    assert_eq!(order_id.len(), 36, "UUID-like: {order_id}");
    let again = client.create(json!({"qty": "0.1", "orderLinkId": "once"})).await;
    assert_eq!((again.code(), again.message()), (110072, "OrderLinkedID is duplicate"));

    let unknown =
        client.post("/v5/order/cancel", &json!({"category": "linear", "symbol": SYMBOL, "orderId": "nope"})).await;
    assert_eq!(unknown.code(), 110001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_create_in_a_second_is_refused_and_does_nothing() {
    let (config, klines) = held(3, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let started = Instant::now();
    for i in 0..10 {
        let reply = client
            .create(json!({"orderType": "Limit", "price": "50", "qty": "0.2", "orderLinkId": format!("r{i}")}))
            .await;
        assert_eq!(reply.code(), 0, "{}", reply.body);
        assert_eq!(reply.header("X-Bapi-Limit").as_deref(), Some("10"));
        assert_eq!(reply.header("X-Bapi-Limit-Status"), Some((9 - i).to_string()));
        assert!(reply.header("X-Bapi-Limit-Reset-Timestamp").is_some());
    }
    let refused = client.create(json!({"orderType": "Limit", "price": "50", "qty": "0.2", "orderLinkId": "r10"})).await;
    assert!(started.elapsed() < SECOND, "the test needs the 11 creates inside one second");
    assert_eq!((refused.status, refused.code(), refused.message()), (200, 10006, "Too many visits!"));
    assert_eq!(refused.header("X-Bapi-Limit-Status").as_deref(), Some("0"));
    let reset: i64 = refused.header("X-Bapi-Limit-Reset-Timestamp").unwrap().parse().unwrap();
    assert!(reset > bybit_server::server::wall_ms() - 100);
    let open = client.get("/v5/order/realtime", "category=linear&symbol=BTCUSDT&limit=50").await;
    assert_eq!(open.body["result"]["list"].as_array().unwrap().len(), 10, "the refused create placed nothing");
    assert_eq!(open.header("X-Bapi-Limit").as_deref(), Some("50"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_orders_fill_at_the_open_and_limits_only_when_traded_through() {
    let (config, klines) = held(4, 240.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    // Bar 0 (open 100, high 102, low 98, close 101) is in progress: a market buy, a buy limit at
    // 98 that bars only touch (bar 0's low is 98, later bars are higher), and a buy limit at 99.5
    // that bar 0 trades through (low 98 < 99.5): it fills at its limit, as a maker.
    assert_eq!(client.create(json!({"orderLinkId": "mkt"})).await.code(), 0);
    let touch = json!({"orderType": "Limit", "price": "98", "orderLinkId": "touch"});
    assert_eq!(client.create(touch).await.code(), 0);
    let through = json!({"orderType": "Limit", "price": "99.5", "orderLinkId": "through", "side": "Buy"});
    assert_eq!(client.create(through).await.code(), 0);
    let _klines = watch_klines(&server).await;
    wait_bars(&server, 1).await;
    let executions = client.executions().await;
    assert_eq!(executions.len(), 2, "{executions:?}");
    // Newest first; both are bar 0's, market orders first.
    let (market, limit) = (&executions[1], &executions[0]);
    assert_eq!(
        (&market["orderLinkId"], &market["execPrice"], &market["isMaker"]),
        (&json!("mkt"), &json!("100"), &json!(false))
    );
    assert_eq!(market["execFee"], "0.0055");
    assert_eq!(market["execTime"], (T0 + 59_999).to_string());
    assert_eq!(
        (&limit["orderLinkId"], &limit["execPrice"], &limit["isMaker"]),
        (&json!("through"), &json!("99.5"), &json!(true))
    );
    assert_eq!(limit["execFee"], "0.00199");
    wait_bars(&server, 2).await;
    assert_eq!(client.executions().await.len(), 2);
    assert_eq!(client.order("touch").await["orderStatus"], "New", "98 was touched, never traded through");
    let position = client.get("/v5/position/list", "category=linear&symbol=BTCUSDT").await;
    assert_eq!(position.body["result"]["list"][0]["size"], "0.2");
    assert_eq!(position.body["result"]["list"][0]["side"], "Buy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_order_fills_a_quarter_of_the_volume_per_bar() {
    let (config, klines) = held(4, 240.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    assert_eq!(client.create(json!({"qty": "0.6", "orderLinkId": "big"})).await.code(), 0);
    let _klines = watch_klines(&server).await;
    wait_bars(&server, 1).await;
    let order = client.order("big").await;
    assert_eq!(
        (&order["orderStatus"], &order["cumExecQty"], &order["leavesQty"]),
        (&json!("PartiallyFilled"), &json!("0.25"), &json!("0.35"))
    );
    wait_bars(&server, 3).await;
    let order = client.order("big").await;
    assert_eq!((&order["orderStatus"], &order["cumExecQty"]), (&json!("Filled"), &json!("0.6")));
    let prices: Vec<_> =
        client.executions().await.iter().map(|e| (e["execQty"].clone(), e["execPrice"].clone())).collect();
    assert_eq!(prices, [(json!("0.1"), json!("102")), (json!("0.25"), json!("101")), (json!("0.25"), json!("100"))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ops_and_private_pushes() {
    let (config, klines) = held(3, 60.0);
    let server = serve(config, klines).await;
    let mut public = connect(&server, "/v5/public/linear").await;
    send(&mut public, json!({"op": "ping", "req_id": "p1"})).await;
    let pong = next_json(&mut public, SECOND).await.unwrap();
    assert_eq!(
        (&pong["success"], &pong["ret_msg"], &pong["op"], &pong["req_id"]),
        (&json!(true), &json!("pong"), &json!("ping"), &json!("p1"))
    );
    assert!(pong["conn_id"].is_string());
    send(&mut public, json!({"op": "subscribe", "req_id": "s1", "args": ["kline.5.BTCUSDT"]})).await;
    assert_eq!(next_json(&mut public, SECOND).await.unwrap()["success"], false);

    let mut private = connect(&server, "/v5/private").await;
    send(&mut private, json!({"op": "subscribe", "req_id": "early", "args": ["order"]})).await;
    let early = next_json(&mut private, SECOND).await.unwrap();
    assert_eq!(early["success"], false);
    assert_eq!(early["ret_msg"], "error:topic:order needs auth first");
    let expired = bybit_server::server::wall_ms() - 1;
    let signature =
        bybit_server::auth::sign(bybit_server::DEFAULT_API_SECRET, format!("GET/realtime{expired}").as_bytes());
    send(&mut private, json!({"op": "auth", "args": [bybit_server::DEFAULT_API_KEY, expired, signature]})).await;
    let refused = next_json(&mut private, SECOND).await.unwrap();
    assert_eq!(
        (&refused["success"], &refused["ret_msg"], &refused["op"]),
        (&json!(false), &json!("Params Error"), &json!("auth"))
    );
    send(&mut private, json!({"op": "ping", "req_id": "pp"})).await;
    let pong = next_json(&mut private, SECOND).await.unwrap();
    assert_eq!((&pong["op"], &pong["req_id"]), (&json!("pong"), &json!("pp")));
    assert!(pong["args"][0].is_string());

    let mut ws = private_ws(&server, &["order", "execution.linear", "position", "wallet"]).await;
    let client = Client::new(&server);
    assert_eq!(client.create(json!({"orderLinkId": "ws-1"})).await.code(), 0);
    let order = until(&mut ws, SECOND, |m| m["topic"] == "order").await.expect("an order push");
    assert_eq!(order["data"][0]["orderStatus"], "New");
    assert_eq!(order["data"][0]["category"], "linear");
    assert!(order["id"].is_string() && order["creationTime"].is_i64());
    until(&mut ws, SECOND, |m| m["topic"] == "position").await.expect("a position push");
    until(&mut ws, SECOND, |m| m["topic"] == "wallet").await.expect("a wallet push");

    let mut klines = watch_klines(&server).await;
    let execution = until(&mut ws, 3 * SECOND, |m| m["topic"] == "execution.linear").await.expect("an execution push");
    assert_eq!(execution["data"][0]["orderLinkId"], "ws-1");
    assert_eq!(execution["data"][0]["execType"], "Trade");
    let filled = until(&mut ws, SECOND, |m| m["topic"] == "order").await.expect("the fill's order push");
    assert_eq!(filled["data"][0]["orderStatus"], "Filled");
    let kline = until(&mut klines, 3 * SECOND, |m| m["topic"] == "kline.1.BTCUSDT").await.expect("a kline");
    assert_eq!(kline["type"], "snapshot");
    assert_eq!(kline["data"][0]["confirm"], true);
    assert_eq!(kline["data"][0]["start"], T0);
    assert_eq!(kline["data"][0]["end"], T0 + 59_999);
    assert_eq!(kline["data"][0]["open"], "100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_every_order_and_execution() {
    let path = temp_path("log.jsonl");
    let (config, klines) = held(3, 240.0);
    let server = serve(Config { log: Some(path.clone()), ..config }, klines).await;
    let client = Client::new(&server);
    assert_eq!(client.create(json!({"orderLinkId": "logged"})).await.code(), 0);
    assert_eq!(client.create(json!({"qty": "0"})).await.code(), 10001);
    let _klines = watch_klines(&server).await;
    wait_bars(&server, 1).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        (&lines[0]["type"], &lines[0]["orderLinkId"], &lines[0]["orderType"]),
        (&json!("order"), &json!("logged"), &json!("Market"))
    );
    for key in ["orderId", "symbol", "side", "qty", "price", "timeInForce", "reduceOnly", "createdTime"] {
        assert!(lines[0].get(key).is_some(), "order line without {key}");
    }
    assert_eq!(
        (&lines[1]["type"], &lines[1]["execPrice"], &lines[1]["execQty"]),
        (&json!("execution"), &json!("100"), &json!("0.1"))
    );
    for key in ["execId", "orderId", "orderLinkId", "symbol", "side", "execFee", "execType", "execTime", "isMaker"] {
        assert!(lines[1].get(key).is_some(), "execution line without {key}");
    }
    let _ = std::fs::remove_file(path);
}

fn faulty(faults: Faults) -> (Config, Vec<journal::event::Kline>) {
    let (config, klines) = held(3, 60.0);
    (Config { faults, seed: 42, ..config }, klines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_5xx_answers_without_doing_anything() {
    let (config, klines) = faulty(Faults { http_5xx: 1.0, ..Faults::default() });
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let reply = client.create(json!({"orderLinkId": "never"})).await;
    assert!(reply.status == 502 || reply.status == 503, "{}", reply.status);
    assert!(reply.body.is_null(), "not JSON");
    assert_eq!(server.bars_closed(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lose_response_carries_out_the_create_but_never_answers() {
    let (config, klines) = faulty(Faults { lose_response: 1.0, ..Faults::default() });
    let server = serve(config, klines).await;
    let mut client = Client::new(&server);
    client.http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let url = format!("{}/v5/order/create", client.base);
    let body = json!({"category": "linear", "symbol": SYMBOL, "side": "Buy", "orderType": "Market", "qty": "0.1", "orderLinkId": "lost"}).to_string();
    let ts = bybit_server::server::wall_ms().to_string();
    let signature = bybit_server::auth::sign(&client.secret, format!("{ts}{}5000{body}", client.key).as_bytes());
    let request = client
        .http
        .post(url)
        .header("X-BAPI-API-KEY", &client.key)
        .header("X-BAPI-TIMESTAMP", ts)
        .header("X-BAPI-SIGN", signature)
        .header("X-BAPI-RECV-WINDOW", "5000")
        .body(body);
    assert!(request.send().await.is_err(), "the response is lost");
    let order = Client::new(&server).order("lost").await;
    assert_eq!(order["orderStatus"], "New", "the create happened: {order}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_ack_pushes_before_it_answers() {
    let (config, klines) = faulty(Faults { late_ack: 1.0, ..Faults::default() });
    let server = serve(config, klines).await;
    let mut ws = private_ws(&server, &["order"]).await;
    let client = Client::new(&server);
    let started = Instant::now();
    let create =
        tokio::spawn(async move { (client.create(json!({"orderLinkId": "late"})).await.code(), Instant::now()) });
    let pushed = until(&mut ws, SECOND, |m| m["topic"] == "order").await.expect("an order push");
    let pushed_at = Instant::now();
    assert_eq!(pushed["data"][0]["orderLinkId"], "late");
    let (code, answered_at) = create.await.unwrap();
    assert_eq!(code, 0);
    assert!(answered_at > pushed_at, "the REST answer trails the push");
    assert!(answered_at - started >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dup_ws_sends_private_messages_twice() {
    let (config, klines) = faulty(Faults { dup_ws: 1.0, ..Faults::default() });
    let server = serve(config, klines).await;
    let mut ws = private_ws(&server, &["order"]).await;
    assert_eq!(Client::new(&server).create(json!({"orderLinkId": "twice"})).await.code(), 0);
    let first = next_json(&mut ws, SECOND).await.unwrap();
    let second = next_json(&mut ws, SECOND).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first["data"][0]["orderLinkId"], "twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_ws_closes_the_socket_without_a_close_frame() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{error::ProtocolError, Error, Message};
    let (config, klines) = faulty(Faults { drop_ws: 1.0, ..Faults::default() });
    let server = serve(config, klines).await;
    let mut ws = private_ws(&server, &["order"]).await;
    assert_eq!(Client::new(&server).create(json!({"orderLinkId": "dropped"})).await.code(), 0);
    let next = tokio::time::timeout(SECOND, ws.next()).await.expect("the socket ends at once");
    match next {
        Some(Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake))) | None => {}
        Some(Ok(Message::Close(_))) => panic!("a close frame was sent"),
        other => panic!("unexpected {other:?}"),
    }
}
