//! The live-trading failure reports of VENUES.md §5 that apply to Bybit, reproduced
//! against the local Bybit server's faults: each run ends with the venue's own log
//! compared against the journal.

mod live_support;

use std::{collections::BTreeSet, path::Path, time::Duration};

use live_support::*;
use serde_json::Value;

const KLINES: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13_head.csv";
const FIRST_BAR_MS: i64 = 1_670_889_600_000;

/// Runs `strategy` live on a market of the first `bars` bars of the fixture until the
/// market has ended (so the venue fills nothing after the stop), then stops it cleanly.
fn run(dir: &Path, server_args: &[&str], strategy: &str, params: &str, bars: i64) -> (Server, std::path::PathBuf) {
    let mut args = vec!["--speed", "400", "--hold"];
    args.extend_from_slice(server_args);
    let text = std::fs::read_to_string(root().join(KLINES)).unwrap();
    let market = dir.join("bybit_BTCUSDT_1m.csv");
    std::fs::write(&market, text.lines().take(bars as usize + 1).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let server = server(dir, &market, &args);
    let traders = [TraderSpec { id: "t", strategy, params, capital: "10000" }];
    let config = config(dir, "bybit", &server, &traders, "");
    let journal = dir.join("live");
    let mut live = live(&config, &journal, &dir.join("live.stderr"));
    server.wait_for_bar("BTCUSDT", FIRST_BAR_MS + (bars - 1) * 60_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());
    (server, journal)
}

/// The venue's executions each journaled once, no other fill, one order per decision,
/// no anomaly in the ledger, and the journal verifies.
fn agrees_with_the_venue(server: &Server, journal: &Path) -> Vec<Value> {
    let records = records(journal);
    let fills: Vec<String> = records
        .iter()
        .filter(|r| event(r).0 == "OrderFilled")
        .map(|r| event(r).1["fill_id"].as_str().unwrap().to_owned())
        .collect();
    let log = server.log_lines();
    let venue: Vec<String> =
        log.iter().filter(|l| l["type"] == "execution").map(|l| l["execId"].as_str().unwrap().to_owned()).collect();
    let (mut a, mut b) = (fills.clone(), venue.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "journaled fills and the venue's executions differ");
    assert_eq!(fills.iter().collect::<BTreeSet<_>>().len(), fills.len(), "a fill journaled twice");
    let links: Vec<&str> =
        log.iter().filter(|l| l["type"] == "order").map(|l| l["orderLinkId"].as_str().unwrap()).collect();
    assert_eq!(links.iter().collect::<BTreeSet<_>>().len(), links.len(), "a decision sent as two orders");
    let state: Value =
        serde_json::from_str(&ok(&["replay", "rebuild", "--journal", journal.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(state["anomalies"], 0, "the ledger noted anomalies");
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
    records
}

fn rejections(records: &[Value]) -> Vec<String> {
    records.iter().filter(|r| event(r).0 == "OrderRejected").map(|r| event(r).1.to_string()).collect()
}

/// barter-rs#206: the WebSocket's NEW→FILLED came before the REST create answer, and the
/// engine re-created the order. Here every REST ack comes after the stream's messages.
#[test]
fn a_rest_ack_after_the_websocket_fill_changes_nothing() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (server, journal) = run(dir.path(), &["--faults", "late_ack=1"], "tests/strategies/churn.js", "{}", 25);
    let records = agrees_with_the_venue(&server, &journal);
    assert!(records.iter().filter(|r| event(r).0 == "OrderFilled").count() >= 10);
}

/// hummingbot#8250, PR nautilus#4991: streams dropped in the middle of fills, and
/// duplicated messages; the gap is filled by REST and nothing is counted twice.
#[test]
fn websocket_drops_and_duplicates_in_the_middle_of_fills_lose_and_double_nothing() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (server, journal) =
        run(dir.path(), &["--faults", "drop_ws=0.05,dup_ws=0.3", "--seed", "7"], "tests/strategies/churn.js", "{}", 40);
    let records = agrees_with_the_venue(&server, &journal);
    let cancels = records.iter().filter(|r| event(r).0 == "OrderCancelled").count();
    assert!(cancels >= 5, "churn cancels every bar: {cancels} cancels journaled");
}

/// The fill racing the cancel (VENUES.md §5): the venue fills an order while the engine,
/// which heard of the bar before the fill, cancels it. The venue refuses the cancel
/// (110001), the order is looked up and stays filled, its late fill is journaled once,
/// and nothing is taken for cancelled.
#[test]
fn a_cancel_racing_the_fill_loses_no_fill_and_cancels_nothing_filled() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (server, journal) =
        run(dir.path(), &["--faults", "late_fills=1", "--seed", "3"], "tests/strategies/racer.js", "{}", 20);
    let records = agrees_with_the_venue(&server, &journal);
    let filled: BTreeSet<String> = records
        .iter()
        .filter(|r| event(r).0 == "OrderFilled")
        .map(|r| event(r).1["cloid"].as_str().unwrap().to_owned())
        .collect();
    let cancelled: BTreeSet<String> = records
        .iter()
        .filter(|r| event(r).0 == "OrderCancelled")
        .map(|r| event(r).1["cloid"].as_str().unwrap().to_owned())
        .collect();
    let raced: Vec<&String> = records
        .iter()
        .filter(|r| event(r).0 == "OrderCancelRequested")
        .map(|r| event(r).1["cloid"].as_str().unwrap())
        .filter_map(|c| filled.get(c))
        .collect();
    assert!(raced.len() >= 5, "the cancels should race the fills: {} raced", raced.len());
    let both: Vec<&&String> = raced.iter().filter(|c| cancelled.contains(**c)).collect();
    assert!(both.is_empty(), "filled orders journaled as cancelled: {both:?}");
}

/// pybit#191, bybit-api#206: 10002 when the local clock is off. The adapter keeps the
/// server's time and resynchronises, so orders go through.
#[test]
fn clock_skew_is_absorbed_by_the_server_time_offset() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (server, journal) = run(dir.path(), &["--faults", "skew_ms=-9000"], "tests/strategies/churn.js", "{}", 15);
    let records = agrees_with_the_venue(&server, &journal);
    assert!(rejections(&records).iter().all(|r| !r.contains("10002")), "{:?}", rejections(&records));
    assert!(server.log_lines().iter().any(|l| l["type"] == "order"), "no order went through under skew");
}

/// freqtrade#7187 and the 10006 reports: a burst of decisions queues under the per-UID
/// limit instead of tripping it.
#[test]
fn a_burst_of_orders_stays_under_the_rate_limit() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (server, journal) = run(dir.path(), &[], "tests/strategies/churn.js", "{ burst = 30 }", 12);
    let records = agrees_with_the_venue(&server, &journal);
    assert!(rejections(&records).iter().all(|r| !r.contains("10006")), "{:?}", rejections(&records));
    let orders = server.log_lines().iter().filter(|l| l["type"] == "order").count();
    assert!(orders >= 30, "the burst's orders should all be accepted, {orders} were");
}

/// nautilus#5000 and #3176: a SIGKILL with working orders; after the restart every order
/// open at the venue is tracked, none is placed again, none is dropped.
#[test]
fn a_restart_with_working_orders_tracks_them_and_places_nothing_again() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "400", "--hold"]);
    let traders = [TraderSpec { id: "t", strategy: "tests/strategies/resting.js", params: "{}", capital: "10000" }];
    let config = config(dir.path(), "bybit", &server, &traders, "");
    let journal = dir.path().join("live");
    let stderr = dir.path().join("live.stderr");
    let mut first = live(&config, &journal, &stderr);
    server.wait_for_bar("BTCUSDT", FIRST_BAR_MS + 5 * 60_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    first.kill();
    let placed = server.log_lines().iter().filter(|l| l["type"] == "order").count();
    assert_eq!(placed, 5, "the strategy places five working orders");
    for _restart in 0..3 {
        let mut again = live(&config, &journal, &stderr);
        std::thread::sleep(Duration::from_millis(1500));
        again.kill();
    }
    let mut last = live(&config, &journal, &stderr);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(last.terminate(Duration::from_secs(20)), Some(0), "{}", last.stderr_text());

    assert_eq!(server.log_lines().iter().filter(|l| l["type"] == "order").count(), 5, "an order was placed again");
    let open = server.get_signed("/v5/order/realtime", "category=linear&symbol=BTCUSDT");
    let venue_open: BTreeSet<String> =
        open["list"].as_array().unwrap().iter().map(|o| o["orderLinkId"].as_str().unwrap().to_owned()).collect();
    let state: Value =
        serde_json::from_str(&ok(&["replay", "rebuild", "--journal", journal.to_str().unwrap(), "--json"])).unwrap();
    let ledger_open: BTreeSet<String> = state["traders"]["t"]["open_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["cloid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(venue_open.len(), 5);
    assert_eq!(ledger_open, venue_open, "the journal's open orders are the venue's");
    let records = records(&journal);
    let reconciliations: Vec<&Value> = records.iter().filter(|r| event(r).0 == "ExchangeReconciled").collect();
    assert!(reconciliations.len() >= 4, "one reconciliation per start");
    let last = event(reconciliations.last().unwrap()).1;
    assert_eq!(last["mismatches"], serde_json::json!([]), "{last}");
    assert_eq!(last["open_orders"].as_array().unwrap().len(), 5, "{last}");
}

/// Orders placed by hand on the same account (VENUES.md §5, nautilus#3176's "external
/// orders"): two traders share the account; a resting order and a filled one that no
/// trader made are reported in every reconciliation, with the position they leave the
/// traders' sum short of, and never touched.
#[test]
fn orders_placed_by_hand_are_reported_and_left_alone() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "400", "--hold"]);
    let hand_limit = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"8000","orderLinkId":"by-hand-1"}"#;
    let hand_market = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.003","orderLinkId":"by-hand-2"}"#;
    server.post_signed("/v5/order/create", hand_limit);
    server.post_signed("/v5/order/create", hand_market);
    let traders = [
        TraderSpec { id: "a", strategy: "tests/strategies/resting.js", params: "{ count = 2 }", capital: "5000" },
        TraderSpec { id: "b", strategy: "tests/strategies/churn.js", params: "{}", capital: "5000" },
    ];
    let config = config(dir.path(), "bybit", &server, &traders, "");
    let journal = dir.path().join("live");
    let stderr = dir.path().join("live.stderr");
    let mut live = live(&config, &journal, &stderr);
    server.wait_for_bar("BTCUSDT", FIRST_BAR_MS + 10 * 60_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());

    let records = records(&journal);
    let reconciliations: Vec<&Value> =
        records.iter().filter(|r| event(r).0 == "ExchangeReconciled").map(|r| event(r).1).collect();
    let first = reconciliations.first().expect("a reconciliation at start");
    let last = reconciliations.last().unwrap();
    let says = |rec: &Value, what: &str| {
        rec["mismatches"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().contains(what))
    };
    assert!(says(first, "by-hand-1"), "the hand-placed order is reported at start: {first}");
    assert!(says(last, "by-hand-1"), "and at the stop: {last}");
    assert!(says(last, "by-hand-2"), "the hand-placed fill is reported: {last}");
    // The traders' positions sum to the venue's less the hand-made 0.003.
    let state: Value =
        serde_json::from_str(&ok(&["replay", "rebuild", "--journal", journal.to_str().unwrap(), "--json"])).unwrap();
    let qty = |t: &str| {
        state["traders"][t]["positions"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["symbol"] == "BTCUSDT"))
            .map_or(rust_decimal::Decimal::ZERO, |p| p["qty"].as_str().unwrap().parse().unwrap())
    };
    let positions = server.get_signed("/v5/position/list", "category=linear&symbol=BTCUSDT");
    let size: rust_decimal::Decimal = positions["list"][0]["size"].as_str().unwrap().parse().unwrap();
    let venue = if positions["list"][0]["side"] == "Sell" { -size } else { size };
    let hand = rust_decimal::Decimal::new(3, 3);
    assert_eq!(qty("a") + qty("b") + hand, venue, "the traders' sum and the hand-made position make the venue's");
    // "BTCUSDT: the venue holds V, the traders' positions sum to L", numbers compared as numbers.
    let difference = last["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str()?.strip_prefix("BTCUSDT: the venue holds "))
        .find_map(|rest| rest.split_once(", the traders' positions sum to "))
        .map(|(v, l)| (v.parse::<rust_decimal::Decimal>().unwrap(), l.parse::<rust_decimal::Decimal>().unwrap()))
        .unwrap_or_else(|| panic!("the position difference is journaled: {last}"));
    assert_eq!(difference, (venue, qty("a") + qty("b")), "{last}");
    assert!(std::fs::read_to_string(&stderr).unwrap().contains("the venue and the journal disagree"), "and shown");
    // Never touched: still open at the venue, never named by the journal.
    let open = server.get_signed("/v5/order/realtime", "category=linear&symbol=BTCUSDT&orderLinkId=by-hand-1");
    assert_eq!(open["list"][0]["orderStatus"], "New", "{open}");
    let touched =
        records.iter().filter(|r| r.to_string().contains("by-hand-")).filter(|r| event(r).0 != "ExchangeReconciled");
    assert_eq!(touched.count(), 0, "the journal acted on a hand-placed order");
}
