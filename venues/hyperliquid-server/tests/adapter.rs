//! Our own adapter (`hyperliquid::Rest`, with its typed readers) against the server: every
//! answer the adapter reads parses, and the orders it signs are taken. This holds the server's
//! shapes to what the adapter was written against.

mod common;

use std::time::Duration;

use common::*;
use hyperliquid::{
    types::{ActionStatus, OrderRef, OrderStatus, OrderStatusAnswer, Tif},
    Endpoints, Network, NonceAllocator, Rest, RestOptions, Wallet,
};
use hyperliquid_server::DEFAULT_PRIVATE_KEY;
use rust_decimal_macros::dec;

#[tokio::test]
async fn the_adapter_reads_every_answer_and_its_orders_are_taken() {
    let (config, klines) = held(200, 600.0);
    let server = serve(config, klines).await;
    let wallet = Wallet::from_hex(DEFAULT_PRIVATE_KEY).unwrap();
    let user = wallet.address();
    let rest =
        Rest::new(&Endpoints::local(&server.rest_url(), Network::Testnet), Some(wallet), None, RestOptions::default())
            .unwrap();
    let nonces = NonceAllocator::new();

    let meta = rest.meta().await.unwrap();
    let btc = meta.asset(COIN).expect("BTC is listed").clone();
    assert_eq!((btc.asset, btc.sz_decimals, btc.max_leverage), (0, 2, 50));
    assert_eq!(rest.all_mids().await.unwrap()[COIN], dec!(103));
    let state = rest.clearinghouse_state(user).await.unwrap();
    assert_eq!(state.margin_summary.account_value, dec!(10000));

    let resting = limit(true, "90", "0.2", Tif::Gtc, Some(cloid(1)));
    let statuses = rest.place_orders(vec![resting], nonces.next_now().unwrap()).await.unwrap();
    let ActionStatus::Resting(resting) = &statuses[0] else { panic!("{statuses:?}") };
    assert_eq!(resting.cloid, Some(cloid(1)));
    let open = rest.open_orders(user).await.unwrap();
    assert_eq!((open[0].oid, open[0].limit_px, open[0].cloid), (resting.oid, dec!(90), Some(cloid(1))));
    let OrderStatusAnswer::Found(report) = rest.order_status(user, OrderRef::Cloid(cloid(1))).await.unwrap() else {
        panic!("the order is known by its cloid")
    };
    assert_eq!((report.status.clone(), report.order.oid), (OrderStatus::Open, resting.oid));
    assert_eq!(rest.cancel_by_cloid(0, cloid(1), nonces.next_now().unwrap()).await.unwrap(), ActionStatus::Success);
    assert_eq!(
        rest.cancel_by_cloid(0, cloid(1), nonces.next_now().unwrap()).await.unwrap(),
        ActionStatus::Error(hyperliquid_server::account::text::MISSING_ORDER.into())
    );
    rest.update_leverage(0, true, 10, nonces.next_now().unwrap()).await.unwrap();

    let _candles = watch_candles(&server).await;
    let market = limit(true, "110", "0.2", Tif::Ioc, Some(cloid(2)));
    let statuses = rest.place_orders(vec![market], nonces.next_now().unwrap()).await.unwrap();
    let ActionStatus::Filled(filled) = &statuses[0] else { panic!("{statuses:?}") };
    assert_eq!((filled.total_sz, filled.avg_px, filled.cloid), (dec!(0.2), dec!(103), Some(cloid(2))));
    let fills = rest.user_fills(user).await.unwrap();
    assert_eq!((fills[0].oid, fills[0].px, fills[0].cloid), (filled.oid, dec!(103), Some(cloid(2))));
    let by_time = rest.user_fills_by_time(user, 0, None).await.unwrap();
    assert_eq!(by_time.len(), 1);
    let state = rest.clearinghouse_state(user).await.unwrap();
    assert_eq!(state.asset_positions[0].position.szi, dec!(0.2));
    assert_eq!(state.asset_positions[0].position.leverage.value, 10);
    wait_bars(&server, 5).await;
    let candles = rest.candle_snapshot(COIN, "1m", 0, u64::MAX / 2).await.unwrap();
    assert!(candles.len() >= 5, "{candles:?}");
    assert_eq!(candles[0].to_kline(true).unwrap(), journal::event::Kline { symbol: COIN.into(), ..bar(0) });
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.shutdown().await;
}
