//! The server over its sockets, as a client sees it: signatures, nonces, order texts, fills,
//! cancels, queries, the WebSocket, the weight budget, every fault and the log.
//!
//! The markets are held (the clock starts at the first candle subscription) with three bars
//! of history: the last price is 103 and bar 3 (open 103, high 105, low 101, close 104,
//! volume 1) is in progress, so what an order meets is known before the clock runs.

mod common;

use std::time::Duration;

use common::*;
use hyperliquid::{
    types::{
        Action, Cancel, CancelAction, CancelByCloid, CancelByCloidAction, OrderType, ScheduleCancel, Tif, Tpsl, Trigger,
    },
    Network, Wallet,
};
use hyperliquid_server::{account::text, Config, Faults};
use serde_json::{json, Value};

const DAY_MS: u64 = 86_400_000;

fn oid_of(status: &Value) -> u64 {
    status["resting"]["oid"].as_u64().or_else(|| status["filled"]["oid"].as_u64()).expect("an oid")
}

#[tokio::test]
async fn signatures_are_checked_by_recovering_the_signer_for_the_servers_network() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let ours = client.address().to_string();
    let order = || Action::orders(vec![limit(true, "90", "0.2", Tif::Gtc, None)]);

    let wallet = client.wallet.clone();
    let nonce = client.next_nonce();
    let mainnet = client.exchange_with(order(), nonce, &wallet, Network::Mainnet).await;
    let text = mainnet.err();
    assert!(text.starts_with("User or API Wallet 0x") && text.ends_with(" does not exist."), "{text}");
    assert!(!text.contains(&ours), "a mainnet signature recovers another address on testnet: {text}");

    let mut tampered = client.signed_with(order(), client.next_nonce(), &wallet, Network::Testnet);
    tampered["action"]["orders"][0]["p"] = json!("91");
    let reply = client.post_raw("/exchange", &tampered.to_string()).await;
    let text = reply.err();
    assert!(text.starts_with("User or API Wallet 0x") && !text.contains(&ours), "{text}");

    let stranger = Wallet::from_hex(STRANGER_KEY).unwrap();
    let reply = client.exchange_with(order(), client.next_nonce(), &stranger, Network::Testnet).await;
    assert_eq!(reply.err(), format!("User or API Wallet {} does not exist.", stranger.address()));

    // A refused signature spent nothing: the nonce of the mainnet attempt is still free.
    let reply = client.exchange_with(order(), nonce, &wallet, Network::Testnet).await;
    assert!(reply.statuses()[0]["resting"]["oid"].is_u64(), "{}", reply.text);
    assert!(client.user_query("openOrders").await.as_array().unwrap().len() == 1);

    // A mainnet server takes mainnet signatures.
    let (config, klines) = held(20, 60.0);
    let mainnet_server = serve(Config { network: Network::Mainnet, ..config }, klines).await;
    let mainnet_client = Client { network: Network::Mainnet, ..Client::new(&mainnet_server) };
    let reply = mainnet_client.exchange(order()).await;
    assert!(reply.statuses()[0]["resting"].is_object(), "{}", reply.text);
    server.shutdown().await;
    mainnet_server.shutdown().await;
}

#[tokio::test]
async fn nonces_are_refused_reused_too_old_or_too_far_ahead() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let wallet = client.wallet.clone();
    let nonce = client.next_nonce();
    let first = client.exchange_with(Action::Noop, nonce, &wallet, Network::Testnet).await;
    assert_eq!(first.body, json!({"status": "ok", "response": {"type": "default"}}));
    let again = client.exchange_with(Action::Noop, nonce, &wallet, Network::Testnet).await;
    assert_eq!(again.err(), format!("Invalid nonce: duplicate nonce {nonce}"));
    let old = now_ms() - 3 * DAY_MS;
    let reply = client.exchange_with(Action::Noop, old, &wallet, Network::Testnet).await;
    assert!(reply.err().starts_with(&format!("Invalid nonce: nonce too low {old} < ")), "{}", reply.text);
    let ahead = now_ms() + 2 * DAY_MS;
    let reply = client.exchange_with(Action::Noop, ahead, &wallet, Network::Testnet).await;
    assert!(reply.err().starts_with(&format!("Invalid nonce: nonce too high {ahead} > ")), "{}", reply.text);
    // Older than the others but inside the window and unused: taken (fewer than 100 kept).
    let reply = client.exchange_with(Action::Noop, nonce - 1000, &wallet, Network::Testnet).await;
    assert_eq!(reply.body["status"], "ok", "{}", reply.text);
    server.shutdown().await;
}

#[tokio::test]
async fn orders_off_the_tick_lot_or_minimum_get_the_venues_texts_one_per_order() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    // szDecimals 2: prices take 5 significant figures and at most 4 decimals.
    let batch = vec![
        limit(true, "90.12345", "0.2", Tif::Gtc, None),
        limit(true, "90.5", "0.123", Tif::Gtc, None),
        limit(true, "90", "0.1", Tif::Gtc, None),
        limit(true, "90", "0.2", Tif::Gtc, Some(cloid(1))),
        limit(true, "90", "0.2", Tif::Gtc, Some(cloid(1))),
        limit(true, "103", "0.2", Tif::Alo, None),
        limit(true, "abc", "0.2", Tif::Gtc, None),
        limit(true, "90", "-1", Tif::Gtc, None),
    ];
    let statuses = client.exchange(Action::orders(batch)).await.statuses();
    assert_eq!(statuses.len(), 8);
    assert_eq!(statuses[0], json!({"error": text::TICK}));
    assert_eq!(statuses[1], json!({"error": text::INVALID_SIZE}));
    assert_eq!(statuses[2], json!({"error": text::MIN_VALUE}));
    assert_eq!(statuses[3]["resting"]["cloid"], cloid_text(1), "{}", statuses[3]);
    assert_eq!(statuses[4], json!({"error": text::DUPLICATE_CLOID}));
    let alo = statuses[5]["error"].as_str().unwrap();
    assert!(alo.starts_with("Post only order would have immediately matched, bbo was 103@103"), "{alo}");
    assert_eq!(statuses[6], json!({"error": text::TICK}));
    assert_eq!(statuses[7], json!({"error": text::INVALID_SIZE}));
    let reduce = Action::orders(vec![hyperliquid::types::OrderWire {
        reduce_only: true,
        ..limit(false, "110", "0.2", Tif::Gtc, None)
    }]);
    assert_eq!(client.exchange(reduce).await.statuses()[0], json!({"error": text::REDUCE_ONLY}));
    let too_big = client.order(true, "90", "5000", Tif::Gtc, None).await.statuses();
    assert_eq!(too_big[0], json!({"error": "Insufficient margin to place order. asset=0"}));
    server.shutdown().await;
}

#[tokio::test]
async fn an_ioc_order_fills_at_the_open_of_the_bar_in_progress_and_shows_everywhere() {
    let log = temp_path("ioc.jsonl");
    let (config, klines) = held(200, 600.0);
    let server = serve(Config { log: Some(log.clone()), ..config }, klines).await;
    let client = Client::new(&server);
    // The Ioc answer waits for the bar; the clock starts only when someone watches candles.
    let order = {
        let client = Client::new(&server);
        tokio::spawn(async move { client.order(true, "200", "0.2", Tif::Ioc, Some(cloid(7))).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!order.is_finished(), "an Ioc order is answered after its bar");
    let _candles = watch_candles(&server).await;
    let reply = order.await.unwrap();
    let filled = &reply.statuses()[0]["filled"];
    assert_eq!(filled["totalSz"], "0.2", "{}", reply.text);
    assert_eq!(filled["avgPx"], "103", "the open of bar 3, the bar in progress when it came");
    assert_eq!(filled["cloid"], cloid_text(7));
    let oid = filled["oid"].as_u64().unwrap();

    let fills = client.user_query("userFills").await;
    let fill = &fills[0];
    assert_eq!(
        (fill["px"].as_str(), fill["sz"].as_str(), fill["side"].as_str()),
        (Some("103"), Some("0.2"), Some("B"))
    );
    assert_eq!((fill["dir"].as_str(), fill["startPosition"].as_str()), (Some("Open Long"), Some("0")));
    assert_eq!((fill["oid"].as_u64(), fill["crossed"].as_bool()), (Some(oid), Some(true)));
    assert_eq!(fill["fee"], "0.00927", "0.2 × 103 × 0.045 %");
    let by_cloid = client.order_status(json!(cloid_text(7))).await;
    assert_eq!(by_cloid["order"]["status"], "filled", "{by_cloid}");
    assert_eq!(by_cloid, client.order_status(json!(oid)).await, "by oid and by cloid: the same order");
    let state = client.user_query("clearinghouseState").await;
    let position = &state["assetPositions"][0]["position"];
    assert_eq!((position["szi"].as_str(), position["entryPx"].as_str()), (Some("0.2"), Some("103")), "{state}");
    let by_time =
        client.info_ok(json!({"type": "userFillsByTime", "user": client.address().to_string(), "startTime": 0})).await;
    assert_eq!(by_time.as_array().unwrap().len(), 1);

    // An Ioc whose limit the open does not reach gets the venue's text.
    let reply = client.order(true, "50", "0.4", Tif::Ioc, None).await;
    assert_eq!(
        reply.statuses()[0],
        json!({"error": "Order could not immediately match against any resting orders. asset=0"})
    );

    let lines: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let order_line = lines.iter().find(|l| l["type"] == "order" && l["oid"] == oid).expect("the order's line");
    assert_eq!(
        (
            order_line["cloid"].as_str(),
            order_line["coin"].as_str(),
            order_line["px"].as_str(),
            order_line["sz"].as_str()
        ),
        (Some(cloid_text(7).as_str()), Some("BTC"), Some("200"), Some("0.2"))
    );
    let fill_line = lines.iter().find(|l| l["type"] == "fill").expect("the fill's line");
    assert_eq!((fill_line["oid"].as_u64(), fill_line["tid"].as_u64()), (Some(oid), fill["tid"].as_u64()));
    assert_eq!((fill_line["px"].as_str(), fill_line["fee"].as_str()), (Some("103"), Some("0.00927")));
    assert_eq!(lines.iter().filter(|l| l["type"] == "order").count(), 2, "both accepted orders are logged");
    server.shutdown().await;
    let _ = std::fs::remove_file(log);
}

#[tokio::test]
async fn a_resting_order_fills_when_the_price_trades_through_and_a_large_one_in_parts() {
    // Bar volume 1 and partial_above 0.25: at most 0.25 fills per bar.
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let reply = client.order(true, "102.5", "0.5", Tif::Gtc, Some(cloid(3))).await;
    let oid = oid_of(&reply.statuses()[0]);
    let open = client.user_query("openOrders").await;
    assert_eq!(open[0]["oid"], oid);
    assert_eq!(
        (open[0]["limitPx"].as_str(), open[0]["sz"].as_str(), open[0]["side"].as_str()),
        (Some("102.5"), Some("0.5"), Some("B"))
    );

    let _candles = watch_candles(&server).await;
    wait_bars(&server, 4).await;
    let status = client.order_status(json!(oid)).await;
    assert_eq!(status["order"]["status"], "open", "{status}");
    assert_eq!(
        (status["order"]["order"]["sz"].as_str(), status["order"]["order"]["origSz"].as_str()),
        (Some("0.25"), Some("0.5"))
    );
    wait_bars(&server, 5).await;
    let status = client.order_status(json!(cloid_text(3))).await;
    assert_eq!(status["order"]["status"], "filled", "{status}");
    let fills = client.user_query("userFills").await;
    assert_eq!(fills.as_array().unwrap().len(), 2);
    for fill in fills.as_array().unwrap() {
        assert_eq!(
            (fill["px"].as_str(), fill["sz"].as_str(), fill["crossed"].as_bool()),
            (Some("102.5"), Some("0.25"), Some(false))
        );
        assert_eq!(fill["fee"], "0.00384375", "0.25 × 102.5 × 0.015 % (maker)");
        assert_eq!(fill["cloid"], cloid_text(3));
    }
    assert_eq!(fills[0]["startPosition"], "0.25", "newest first");
    assert!(client.user_query("openOrders").await.as_array().unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn an_ioc_order_after_the_last_bar_is_refused_at_once() {
    // Three bars of history and one to play: the market ends after one bar.
    let (config, klines) = held(4, 600.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let _candles = watch_candles(&server).await;
    wait_bars(&server, 4).await;
    let reply =
        tokio::time::timeout(Duration::from_secs(5), client.order(true, "200", "0.2", Tif::Ioc, Some(cloid(8))))
            .await
            .expect("answered at once: no bar will come");
    assert_eq!(reply.statuses()[0], json!({"error": text::IOC_NO_MATCH}));
    assert_eq!(client.order_status(json!(cloid_text(8))).await["order"]["status"], "iocCancelRejected");
    server.shutdown().await;
}

#[tokio::test]
async fn the_dead_mans_switch_cancels_every_open_order_on_time() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let oid = oid_of(&client.order(true, "90", "0.2", Tif::Gtc, None).await.statuses()[0]);
    let early = client.exchange(Action::ScheduleCancel(ScheduleCancel { time: Some(now_ms() + 1000) })).await;
    assert!(early.err().starts_with("Scheduled cancel time too early"), "{}", early.text);
    let at = now_ms() + 5200;
    let reply = client.exchange(Action::ScheduleCancel(ScheduleCancel { time: Some(at) })).await;
    assert_eq!(reply.body, json!({"status": "ok", "response": {"type": "default"}}));
    assert_eq!(client.order_status(json!(oid)).await["order"]["status"], "open");
    tokio::time::sleep(Duration::from_millis(at - now_ms() + 300)).await;
    assert_eq!(client.order_status(json!(oid)).await["order"]["status"], "scheduledCancel");
    server.shutdown().await;
}

#[tokio::test]
async fn trigger_orders_rest_until_the_price_reaches_them() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let order = {
        let client = Client::new(&server);
        tokio::spawn(async move { client.order(true, "110", "0.2", Tif::Ioc, None).await })
    };
    let _candles = watch_candles(&server).await;
    assert!(order.await.unwrap().statuses()[0]["filled"].is_object(), "long 0.2 at 103");
    // Every later bar's low (open − 2, from 102 up) is at most 103.5 for a while, so the stop
    // triggers in the next bar or two; no bar reaches the take-profit's 200.
    let stop = |px: &str, tpsl: Tpsl| hyperliquid::types::OrderWire {
        reduce_only: true,
        order_type: OrderType::Trigger(Trigger { is_market: true, trigger_px: px.into(), tpsl }),
        ..limit(false, px, "0.1", Tif::Gtc, None)
    };
    let statuses =
        client.exchange(Action::orders(vec![stop("103.5", Tpsl::Sl), stop("200", Tpsl::Tp)])).await.statuses();
    let sl = oid_of(&statuses[0]);
    let tp = oid_of(&statuses[1]);
    let frontend = client.user_query("frontendOpenOrders").await;
    let sl_view = frontend.as_array().unwrap().iter().find(|o| o["oid"] == sl).unwrap();
    assert_eq!((sl_view["orderType"].as_str(), sl_view["isTrigger"].as_bool()), (Some("Stop Market"), Some(true)));
    assert_eq!(
        (sl_view["triggerPx"].as_str(), sl_view["triggerCondition"].as_str()),
        (Some("103.5"), Some("Price below 103.5"))
    );
    let started = server.bars_closed();
    wait_bars(&server, started + 3).await;
    assert_eq!(client.order_status(json!(sl)).await["order"]["status"], "filled");
    assert_eq!(client.order_status(json!(tp)).await["order"]["status"], "open", "200 is never reached");
    server.shutdown().await;
}

#[tokio::test]
async fn cancels_by_oid_and_by_cloid_and_of_orders_already_gone() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let first = oid_of(&client.order(true, "90", "0.2", Tif::Gtc, Some(cloid(1))).await.statuses()[0]);
    let second = oid_of(&client.order(false, "120", "0.2", Tif::Gtc, Some(cloid(2))).await.statuses()[0]);
    let open = client.user_query("openOrders").await;
    let oids: Vec<u64> = open.as_array().unwrap().iter().map(|o| o["oid"].as_u64().unwrap()).collect();
    assert_eq!(oids, vec![second, first], "newest first");
    let frontend = client.user_query("frontendOpenOrders").await;
    assert_eq!(frontend[0]["cloid"], cloid_text(2));
    assert_eq!((frontend[0]["orderType"].as_str(), frontend[0]["tif"].as_str()), (Some("Limit"), Some("Gtc")));

    let cancel = |oid| Action::Cancel(CancelAction { cancels: vec![Cancel { asset: 0, oid }] });
    assert_eq!(client.exchange(cancel(first)).await.statuses(), vec![json!("success")]);
    assert_eq!(client.exchange(cancel(first)).await.statuses(), vec![json!({"error": text::MISSING_ORDER})]);
    assert_eq!(client.exchange(cancel(12345)).await.statuses(), vec![json!({"error": text::MISSING_ORDER})]);
    let by_cloid =
        |n| Action::CancelByCloid(CancelByCloidAction { cancels: vec![CancelByCloid { asset: 0, cloid: cloid(n) }] });
    let reply = client.exchange(by_cloid(2)).await;
    assert_eq!(reply.body["response"]["type"], "cancel");
    assert_eq!(reply.statuses(), vec![json!("success")]);
    assert_eq!(client.exchange(by_cloid(2)).await.statuses(), vec![json!({"error": text::MISSING_ORDER})]);
    assert_eq!(client.exchange(by_cloid(9)).await.statuses(), vec![json!({"error": text::MISSING_ORDER})]);

    let status = client.order_status(json!(cloid_text(1))).await;
    assert_eq!(status["order"]["status"], "canceled");
    assert_eq!(status["order"]["order"]["oid"], first);
    assert_eq!(client.order_status(json!(cloid_text(9))).await, json!({"status": "unknownOid"}));
    assert_eq!(client.order_status(json!(999)).await, json!({"status": "unknownOid"}));
    assert!(client.user_query("openOrders").await.as_array().unwrap().is_empty());
    // Another user's view is empty, as the venue answers an address it does not know.
    let stranger = Wallet::from_hex(STRANGER_KEY).unwrap().address().to_string();
    let other = client.info_ok(json!({"type": "orderStatus", "user": stranger, "oid": first})).await;
    assert_eq!(other, json!({"status": "unknownOid"}));
    server.shutdown().await;
}

#[tokio::test]
async fn meta_mids_candles_and_malformed_requests() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let meta = client.info_ok(json!({"type": "meta", "dex": ""})).await;
    assert_eq!(meta["universe"][0]["name"], "BTC");
    assert_eq!(meta["universe"][0]["szDecimals"], 2);
    let spot = client.info_ok(json!({"type": "spotMeta"})).await;
    assert_eq!(spot["tokens"][0]["name"], "USDC");
    assert_eq!(client.info_ok(json!({"type": "allMids"})).await, json!({"BTC": "103"}));
    let contexts = client.info_ok(json!({"type": "metaAndAssetCtxs"})).await;
    assert_eq!(contexts[1][0]["markPx"], "103");
    let candles = client
        .info_ok(json!({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": 0, "endTime": u64::MAX}}))
        .await;
    let candles = candles.as_array().unwrap();
    assert_eq!(candles.len(), 3, "the history, nothing of the bar in progress");
    assert_eq!(
        candles[0],
        json!({"t": T0, "T": T0 + 59_999, "s": "BTC", "i": "1m", "o": "100", "c": "101", "h": "102", "l": "98", "v": "1", "n": 0})
    );
    let later = client
        .info_ok(json!({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": T0 + 60_000, "endTime": T0 + 60_000}}))
        .await;
    assert_eq!(later.as_array().unwrap().len(), 1);
    let state = client.user_query("clearinghouseState").await;
    assert_eq!(state["marginSummary"]["accountValue"], "10000");
    assert_eq!(state["withdrawable"], "10000");

    let broken = client.post_raw("/info", "{\"type\": ").await;
    assert_eq!(broken.status, 400);
    assert!(broken.text.starts_with("Failed to parse the request body as JSON"), "{}", broken.text);
    let unknown = client.info(json!({"type": "noSuchThing"})).await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.text.starts_with("Failed to deserialize the JSON body into the target type"), "{}", unknown.text);
    let bad_action = client.post_raw("/exchange", "{\"action\": {\"type\": \"fly\"}, \"nonce\": 1}").await;
    assert_eq!(bad_action.status, 422, "{}", bad_action.text);
    let no_user = client.info(json!({"type": "openOrders"})).await;
    assert_eq!(no_user.status, 422);
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_the_frameworks_answers_and_never_break_the_server() {
    let (config, klines) = held(20, 60.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let infos = [
        "",
        "null",
        "[]",
        "{}",
        r#"{"type": 5}"#,
        r#"{"type": "orderStatus", "user": "0x12", "oid": 1}"#,
        r#"{"type": "orderStatus", "user": "0x0000000000000000000000000000000000000001", "oid": "0xnothex"}"#,
        r#"{"type": "orderStatus", "user": "0x0000000000000000000000000000000000000001", "oid": -1}"#,
        r#"{"type": "candleSnapshot", "req": {"coin": "BTC"}}"#,
        r#"{"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "7m", "startTime": 0}}"#,
        r#"{"type": "userFillsByTime", "user": "0x0000000000000000000000000000000000000001", "startTime": "x"}"#,
    ];
    for body in infos {
        let reply = client.post_raw("/info", body).await;
        assert!(reply.status == 400 || reply.status == 422, "{body}: {} {}", reply.status, reply.text);
    }
    let exchanges = [
        "{",
        r#"{"action": {"type": "order", "orders": [{"a": 0, "b": true, "p": 5, "s": "1", "r": false, "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"}, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}}"#,
        r#"{"action": {"type": "noop"}, "nonce": -1, "signature": {"r": "0x1", "s": "0x1", "v": 27}}"#,
        r#"{"action": {"type": "noop"}, "nonce": 1, "signature": {"r": "zz", "s": "0x1", "v": 99}}"#,
        r#"{"action": {"type": "cancel", "cancels": [{"a": 0}]}, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}}"#,
    ];
    for body in exchanges {
        let reply = client.post_raw("/exchange", body).await;
        assert!(reply.status == 400 || reply.status == 422, "{body}: {} {}", reply.status, reply.text);
    }
    // Well-formed, signed, absurd numbers: per-order errors, no panic.
    let statuses = client
        .exchange(Action::orders(vec![
            limit(true, "99999999999999999999999999999", "99999999999999999999999999999", Tif::Gtc, None),
            limit(true, "1e5", "1", Tif::Gtc, None),
            limit(true, "90", "0.2", Tif::Gtc, None),
        ]))
        .await
        .statuses();
    assert!(statuses[0]["error"].is_string() && statuses[1]["error"].is_string(), "{statuses:?}");
    assert!(statuses[2]["resting"].is_object(), "{statuses:?}");
    assert_eq!(client.info(json!({"type": "meta"})).await.status, 200, "still serving");
    server.shutdown().await;
}

#[tokio::test]
async fn the_ip_weight_budget_answers_429_when_spent() {
    let (config, klines) = held(20, 60.0);
    let server = serve(Config { ip_weight_per_minute: 50, ..config }, klines).await;
    let client = Client::new(&server);
    assert_eq!(client.info(json!({"type": "meta"})).await.status, 200);
    assert_eq!(client.info(json!({"type": "meta"})).await.status, 200);
    assert_eq!(client.info(json!({"type": "meta"})).await.status, 429, "20 + 20 + 20 > 50");
    assert_eq!(client.info(json!({"type": "allMids"})).await.status, 200, "weight 2 still fits");
    server.shutdown().await;
}

#[tokio::test]
async fn websocket_subscriptions_acks_snapshots_and_pushes() {
    let (config, klines) = held(200, 600.0);
    let server = serve(config, klines).await;
    let client = Client::new(&server);
    let user = client.address().to_string();
    let mut ws = connect(&server).await;
    send(&mut ws, json!({"method": "ping"})).await;
    assert_eq!(next_json(&mut ws, Duration::from_secs(5)).await, Some(json!({"channel": "pong"})));
    send(&mut ws, json!({"method": "subscribe", "subscription": {"type": "candle", "coin": "ETH", "interval": "1m"}}))
        .await;
    let error = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(error["channel"], "error", "{error}");
    subscribe(&mut ws, json!({"type": "orderUpdates", "user": user})).await;
    subscribe(&mut ws, json!({"type": "userFills", "user": user})).await;
    let snapshot = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(snapshot, json!({"channel": "userFills", "data": {"isSnapshot": true, "user": user, "fills": []}}));

    let order = {
        let client = Client::new(&server);
        tokio::spawn(async move { client.order(true, "200", "0.2", Tif::Ioc, Some(cloid(5))).await })
    };
    let update = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "orderUpdates").await.unwrap();
    assert_eq!(update["data"][0]["status"], "open", "{update}");
    assert_eq!(update["data"][0]["order"]["cloid"], cloid_text(5));
    subscribe(&mut ws, json!({"type": "candle", "coin": "BTC", "interval": "1m"})).await;
    let fills = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "userFills").await.unwrap();
    assert_eq!(fills["data"]["fills"][0]["px"], "103", "{fills}");
    assert!(fills["data"].get("isSnapshot").is_none(), "{fills}");
    let filled = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "orderUpdates").await.unwrap();
    assert_eq!(filled["data"][0]["status"], "filled", "{filled}");
    let candle = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "candle").await.unwrap();
    assert_eq!((candle["data"]["s"].as_str(), candle["data"]["i"].as_str()), (Some("BTC"), Some("1m")));
    assert_eq!(candle["data"]["t"], T0 + 3 * 60_000, "bar 3 closes first");
    assert!(order.await.unwrap().statuses()[0]["filled"].is_object());

    // A later subscriber gets the fill in its snapshot.
    let mut late = connect(&server).await;
    subscribe(&mut late, json!({"type": "userFills", "user": user})).await;
    let snapshot = next_json(&mut late, Duration::from_secs(5)).await.unwrap();
    assert_eq!(snapshot["data"]["isSnapshot"], true);
    assert_eq!(snapshot["data"]["fills"].as_array().unwrap().len(), 1);
    let subscription = json!({"type": "userFills", "user": user});
    send(&mut late, json!({"method": "unsubscribe", "subscription": subscription})).await;
    let ack = next_json(&mut late, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        ack,
        json!({"channel": "subscriptionResponse", "data": {"method": "unsubscribe", "subscription": subscription}})
    );
    server.shutdown().await;
}

/// A server with `faults` (seed printed for a failure).
async fn faulty(faults: &str, seed: u64) -> hyperliquid_server::Server {
    eprintln!("faults {faults:?} seed {seed}");
    let (config, klines) = held(200, 600.0);
    serve(Config { faults: Faults::parse(faults).unwrap(), seed, ..config }, klines).await
}

#[tokio::test]
async fn fault_http_5xx_answers_a_gateway_error_and_does_nothing() {
    let server = faulty("http_5xx=1", 1).await;
    let client = Client::new(&server);
    let reply = client.info(json!({"type": "meta"})).await;
    assert!(reply.status == 502 || reply.status == 503, "{}", reply.status);
    let reply = client.order(true, "90", "0.2", Tif::Gtc, None).await;
    assert!(reply.status == 502 || reply.status == 503, "{}", reply.status);
    server.shutdown().await;
}

#[tokio::test]
async fn fault_lose_response_carries_out_the_order_and_never_answers() {
    let server = faulty("lose_response=1", 2).await;
    let client = Client {
        http: reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap(),
        ..Client::new(&server)
    };
    let action = Action::orders(vec![limit(true, "90", "0.2", Tif::Gtc, Some(cloid(4)))]);
    let body = client.signed_with(action, client.next_nonce(), &client.wallet.clone(), Network::Testnet);
    let sent = client.http.post(format!("{}/exchange", client.base)).json(&body).send().await;
    assert!(sent.is_err_and(|e| e.is_timeout()), "the answer never comes");
    let status = Client::new(&server).order_status(json!(cloid_text(4))).await;
    assert_eq!(status["order"]["status"], "open", "but the order was placed: {status}");
    server.shutdown().await;
}

#[tokio::test]
async fn fault_late_ack_pushes_the_order_before_answering() {
    let server = faulty("late_ack=1", 3).await;
    let client = Client::new(&server);
    let mut ws = connect(&server).await;
    subscribe(&mut ws, json!({"type": "orderUpdates", "user": client.address().to_string()})).await;
    let order = {
        let client = Client::new(&server);
        tokio::spawn(async move { client.order(true, "90", "0.2", Tif::Gtc, None).await })
    };
    let update = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "orderUpdates").await.unwrap();
    assert!(!order.is_finished(), "the push came first: {update}");
    assert!(order.await.unwrap().statuses()[0]["resting"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn fault_dup_ws_sends_a_user_message_twice() {
    let server = faulty("dup_ws=1", 4).await;
    let client = Client::new(&server);
    let mut ws = connect(&server).await;
    subscribe(&mut ws, json!({"type": "orderUpdates", "user": client.address().to_string()})).await;
    client.order(true, "90", "0.2", Tif::Gtc, None).await;
    let first = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    let second = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first["channel"], "orderUpdates");
    assert_eq!(first, second);
    server.shutdown().await;
}

#[tokio::test]
async fn fault_drop_ws_closes_the_socket_instead_of_pushing() {
    let server = faulty("drop_ws=1", 5).await;
    let client = Client::new(&server);
    let mut ws = connect(&server).await;
    subscribe(&mut ws, json!({"type": "orderUpdates", "user": client.address().to_string()})).await;
    client.order(true, "90", "0.2", Tif::Gtc, None).await;
    assert_eq!(next_json(&mut ws, Duration::from_secs(5)).await, None, "the socket ended");
    server.shutdown().await;
}

#[tokio::test]
async fn fault_late_fills_sends_the_candle_before_the_bars_fills() {
    let server = faulty("late_fills=1", 6).await;
    let client = Client::new(&server);
    let user = client.address().to_string();
    let mut ws = connect(&server).await;
    subscribe(&mut ws, json!({"type": "userFills", "user": user})).await;
    let _snapshot = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    let order = {
        let client = Client::new(&server);
        tokio::spawn(async move { client.order(true, "200", "0.2", Tif::Ioc, None).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    subscribe(&mut ws, json!({"type": "candle", "coin": "BTC", "interval": "1m"})).await;
    let first = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "candle" || m["channel"] == "userFills")
        .await
        .unwrap();
    assert_eq!(first["channel"], "candle", "the bar before its fills: {first}");
    let fills = until(&mut ws, Duration::from_secs(5), |m| m["channel"] == "userFills").await.unwrap();
    assert_eq!(fills["data"]["fills"][0]["px"], "103");
    assert!(order.await.unwrap().statuses()[0]["filled"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn fault_skew_moves_the_servers_clock_for_the_nonce_window() {
    let server = faulty(&format!("skew_ms={}", 3 * DAY_MS), 7).await;
    let client = Client::new(&server);
    let nonce = client.next_nonce();
    let reply = client.exchange_with(Action::Noop, nonce, &client.wallet.clone(), Network::Testnet).await;
    assert!(reply.err().starts_with(&format!("Invalid nonce: nonce too low {nonce} < ")), "{}", reply.text);
    server.shutdown().await;
}
