//! `quantfold live` on Hyperliquid, against the local Hyperliquid server (`quantfold
//! venue-sim hyperliquid`), as real processes on loopback: parity with a backtest of the same
//! bars; SIGKILLs at seeded moments with faults on, the venue's own log compared with the
//! journal at the end; a crash between signing an order and sending it; the stream and REST
//! both reporting a fill; a cancel of an order already gone. Seeds are printed on failure;
//! rerun the crash test with `QF_CHAOS_SEED=N cargo test --test live_hyperliquid`.

mod live_support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use live_support::{
    bin, decisions, each_decision_sent_once, each_fill_journaled_once, event, fills, jsonl, ok, records, root, serial,
    word_after, Proc,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The API wallet the local server trades for by default: the official SDKs' test key (not
/// anyone's secret), and its address.
const WALLET_KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
const ACCOUNT: &str = "0x14791697260e4c9a71f18484c9f997b308e59325";
const KLINES: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13_head.csv";
/// The fixture's bars under the coin's name, for the server and the backtest alike.
const FIXTURE_BARS: &str = "hyperliquid_BTC_1m.csv";
const START_MS: i64 = 1_670_889_600_000;
/// A one-minute bar at `--speed 240`.
const BAR: Duration = Duration::from_millis(250);

/// The local Hyperliquid server on a kline file, with its URL and log.
struct Server {
    _proc: Proc,
    rest: String,
    log: PathBuf,
}

impl Server {
    /// The server on the fixture's bars, copied into `dir` under the coin's name.
    fn on_fixture_bars(dir: &Path, args: &[&str]) -> Server {
        let klines = dir.join(FIXTURE_BARS);
        std::fs::copy(root().join(KLINES), &klines).unwrap();
        Server::start(dir, &klines, args)
    }

    fn start(dir: &Path, klines: &Path, args: &[&str]) -> Server {
        let log = dir.join("server.jsonl");
        let mut command = Command::new(bin());
        command.args(["venue-sim", "hyperliquid", "--klines"]).arg(klines).arg("--log").arg(&log).args(args);
        let (proc, line) = live_support::announcing(command, &dir.join("server.stderr"));
        Server { _proc: proc, rest: word_after(&line, "rest="), log }
    }

    /// `POST /info` over a plain socket.
    fn info(&self, body: &Value) -> Value {
        let body_value = body.clone();
        let hostport = self.rest.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(hostport).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = body.to_string();
        write!(
            stream,
            "POST /info HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        // The trader shares the address's weight budget: a refusal is waited out; so is a
        // 5xx the server's faults inject.
        if head.starts_with("HTTP/1.1 429") || head.starts_with("HTTP/1.1 5") {
            std::thread::sleep(Duration::from_secs(2));
            return self.info(&body_value);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "/info {body}: {head}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("/info answered {body}: {e}"))
    }

    /// Waits until the server has played the bar opening at `open_ms`: first `expected` (a
    /// candle snapshot weighs 20 of the 1200 a minute the test shares with the trader on one
    /// loopback address), then asking once a second.
    fn wait_for_bar(&self, open_ms: i64, expected: Duration, timeout: Duration) {
        let end = Instant::now() + timeout;
        std::thread::sleep(expected);
        loop {
            let candles = self.info(&json!({"type": "candleSnapshot", "req": {
                "coin": "BTC", "interval": "1m", "startTime": open_ms, "endTime": open_ms + 60_000 }}));
            if candles.as_array().is_some_and(|c| c.iter().any(|c| c["t"].as_i64() == Some(open_ms))) {
                return;
            }
            assert!(Instant::now() < end, "the server did not reach the bar at {open_ms} in {timeout:?}");
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn log_lines(&self) -> Vec<Value> {
        jsonl(&self.log)
    }
}

/// A config for one trader, `trader`, on BTC against `server`.
fn config(dir: &Path, server: &Server, trader: &str, strategy: &str, params: &str) -> PathBuf {
    let text = format!(
        "[venue]\nkind = \"hyperliquid\"\nrest_url = \"{}\"\nkey_env = \"QF_HL_KEY\"\n\n\
         [[trader]]\nid = \"{trader}\"\nstrategy = \"{}\"\nsymbols = [\"BTC\"]\ninterval = \"1m\"\ncapital = \"10000\"\nparams = {params}\n",
        server.rest,
        root().join(strategy).display()
    );
    let path = dir.join("live.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `quantfold live` with the API wallet's key in the environment (and `env`).
fn live(config: &Path, journal: &Path, stderr: &Path, env: &[(&str, &str)]) -> Proc {
    live_support::live_env(config, journal, stderr, &[], &[&[("QF_HL_KEY", WALLET_KEY)], env].concat())
}

fn dec(value: &Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}

/// The trader's position equals the venue's, and so does cash less the position's cost basis.
fn ledger_equals_the_venue(journal: &Path, server: &Server, trader: &str) {
    let state: Value =
        serde_json::from_str(&ok(&["replay", "rebuild", "--journal", journal.to_str().unwrap(), "--json"])).unwrap();
    let trader = &state["traders"][trader];
    let position = trader["positions"].as_array().and_then(|ps| ps.iter().find(|p| p["symbol"] == "BTC"));
    let ledger_qty = position.map_or(Decimal::ZERO, |p| dec(&p["qty"]));
    let ledger_entry = position.map_or(Decimal::ZERO, |p| dec(&p["entry_price"]));
    let account = server.info(&json!({"type": "clearinghouseState", "user": ACCOUNT}));
    let venue = account["assetPositions"].as_array().and_then(|ps| ps.iter().find(|p| p["position"]["coin"] == "BTC"));
    let venue_qty = venue.map_or(Decimal::ZERO, |p| dec(&p["position"]["szi"]));
    let venue_entry =
        venue.and_then(|p| p["position"]["entryPx"].as_str()).map_or(Decimal::ZERO, |s| s.parse().unwrap());
    let unrealized = venue.map_or(Decimal::ZERO, |p| dec(&p["position"]["unrealizedPnl"]));
    assert_eq!(ledger_qty, venue_qty, "position: journal {ledger_qty}, venue {venue_qty}");
    // Cash less the cost basis does not depend on the order fills were applied in (see
    // live_chaos.rs); the venue's entry price and PnL are rounded, hence the tolerance.
    let venue_cash = dec(&account["marginSummary"]["accountValue"]) - unrealized;
    let ledger_cash = dec(&trader["cash"]);
    let (ledger_basis, venue_basis) = (ledger_cash - ledger_qty * ledger_entry, venue_cash - venue_qty * venue_entry);
    let rounding = Decimal::new(1, 4) + venue_qty.abs() * Decimal::new(1, 4);
    assert!(
        (ledger_basis - venue_basis).abs() <= rounding,
        "cash less cost basis: journal {ledger_basis} (cash {ledger_cash}), venue {venue_basis} (cash {venue_cash})"
    );
}

fn verified(journal: &Path) {
    ok(&["journal", "verify", journal.to_str().unwrap()]);
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

#[test]
fn live_on_the_local_hyperliquid_server_trades_as_the_backtest_of_the_same_bars() {
    let _one = serial();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::on_fixture_bars(dir, &["--speed", "240", "--hold", "--partial-above", "0"]);
    let klines = dir.join(FIXTURE_BARS);
    let params = r#"{ fast = 3, slow = 8, fraction = 0.1, record = false }"#;
    let config = config(dir, &server, "sma_cross", "strategies/sma_cross.js", params);
    let journal = dir.join("live");
    let mut live = live(&config, &journal, &dir.join("live.stderr"), &[]);
    server.wait_for_bar(START_MS + 119 * 60_000, BAR * 120, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "live did not stop cleanly:\n{}", live.stderr_text());

    // The instrument as the live session journaled it (Hyperliquid's rules: sizes at
    // szDecimals, prices at five significant figures), the fee rates its config gave.
    let live_records = records(&journal);
    let instrument = live_records.iter().find(|r| event(r).0 == "InstrumentDefined").expect("an instrument");
    let i = event(instrument).1;
    let instruments = dir.join("instruments.toml");
    let fields = [
        "tick_size",
        "qty_step",
        "min_qty",
        "max_leverage",
        "maintenance_margin_rate",
        "taker_fee_rate",
        "maker_fee_rate",
    ];
    let mut text = "[BTC]\n".to_owned();
    for field in fields {
        // The local server fills at the file's prices, which are 0.1 apart: the backtest's
        // simulated exchange, which rounds fills to the tick, gets the file's tick. (Orders
        // here are market orders: the tick changes no decision.)
        let value = if field == "tick_size" { json!("0.1") } else { i[field].clone() };
        text.push_str(&format!("{field} = {value}\n"));
    }
    std::fs::write(&instruments, text).unwrap();
    let backtest = dir.join("backtest");
    ok(&[
        "backtest",
        "--strategy",
        "strategies/sma_cross.js",
        "--data",
        klines.to_str().unwrap(),
        "--params",
        r#"{"fast":3,"slow":8,"fraction":0.1,"record":false}"#,
        "--instruments",
        instruments.to_str().unwrap(),
        "--journal",
        backtest.to_str().unwrap(),
        "--out",
        dir.join("report").to_str().unwrap(),
    ]);
    let backtest_records = records(&backtest);
    let (live_decisions, backtest_decisions) = (decisions(&live_records), decisions(&backtest_records));
    assert!(backtest_decisions.len() >= 4, "the scenario should trade: {backtest_decisions:?}");
    assert_eq!(live_decisions.join("\n"), backtest_decisions.join("\n"), "decisions differ");
    assert_eq!(fills(&live_records), fills(&backtest_records), "fills differ");

    let log = server.log_lines();
    assert_eq!(each_decision_sent_once(&live_records, &log, "cloid"), live_decisions.len());
    each_fill_journaled_once(&live_records, &log, "fill", "tid");
    ledger_equals_the_venue(&journal, &server, "sma_cross");
    verified(&journal);

    // The API wallet's key is nowhere: not in the journal, not in the log.
    let secret = WALLET_KEY.trim_start_matches("0x");
    let export = std::fs::read_to_string(journal.with_extension("export.jsonl")).unwrap();
    assert!(!export.contains(secret), "the key is in the journal");
    assert!(
        !live.stderr_text().contains(secret)
            && !std::fs::read_to_string(dir.join("live.stderr")).unwrap().contains(secret)
    );
}

#[test]
fn bad_hyperliquid_settings_are_refused_at_start_with_what_to_fix() {
    let _one = serial();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::on_fixture_bars(dir, &["--speed", "240", "--hold"]);
    let run = |config: &Path, env: &[(&str, &str)]| {
        let stderr = dir.join("refused.stderr");
        let _ = std::fs::remove_file(&stderr);
        let mut live = live_support::live_env(config, &dir.join("never"), &stderr, &[], env);
        let code = live.wait(Duration::from_secs(30));
        assert!(code.is_some_and(|c| c != 0), "live should refuse to start: {code:?}");
        std::fs::read_to_string(&stderr).unwrap()
    };
    // A Bybit symbol: Hyperliquid names coins.
    let config = config(dir, &server, "t", "strategies/sma_cross.js", "{}");
    let text = std::fs::read_to_string(&config).unwrap().replace("[\"BTC\"]", "[\"BTCUSDT\"]");
    let bybit_symbol = dir.join("bybit-symbol.toml");
    std::fs::write(&bybit_symbol, text).unwrap();
    let said = run(&bybit_symbol, &[("QF_HL_KEY", WALLET_KEY)]);
    assert!(said.contains("BTCUSDT is not a Hyperliquid perpetual"), "{said}");
    // No key in the environment: the variable is named, nothing is journaled.
    let said = run(&config, &[]);
    assert!(said.contains("QF_HL_KEY"), "{said}");
    assert!(!dir.join("never").exists() || std::fs::read_dir(dir.join("never")).unwrap().next().is_none());
    // A key that is not one: refused without echoing it.
    let said = run(&config, &[("QF_HL_KEY", "0xnot-a-key-but-a-secret-all-the-same")]);
    assert!(!said.contains("not-a-key-but-a-secret"), "the bad key was echoed: {said}");
}

/// Kills per run (the issue asks for at least 30).
const KILLS: usize = 30;

#[test]
fn thirty_kills_on_hyperliquid_lose_nothing_and_send_nothing_twice() {
    let _one = serial();
    let seed: u64 = std::env::var("QF_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_208);
    if let Err(panic) = std::panic::catch_unwind(|| chaos(seed)) {
        eprintln!("hyperliquid chaos failed with seed {seed} (rerun: QF_CHAOS_SEED={seed} cargo test --test live_hyperliquid)");
        std::panic::resume_unwind(panic);
    }
}

fn chaos(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let klines = dir.join(FIXTURE_BARS);
    let bars = 240;
    ok(&[
        "data",
        "synth",
        "--bars",
        &bars.to_string(),
        "--seed",
        &seed.to_string(),
        "--start-ms",
        &START_MS.to_string(),
        "--out",
        klines.to_str().unwrap(),
    ]);
    // A bar every 250 ms; an order a bar at most, so the trader stays inside the venue's
    // 1200-a-minute weight budget with the reconciliations after every reconnect.
    let faults = "drop_ws=0.01,lose_response=0.05,http_5xx=0.03,late_ack=0.1,dup_ws=0.1,late_fills=0.2";
    let server = Server::start(
        dir,
        &klines,
        &[
            "--speed",
            "240",
            "--hold",
            "--faults",
            faults,
            "--seed",
            &seed.to_string(),
            "--partial-above",
            "0.2",
            // Thirty starts in half a minute, each reading the account afresh: more than one
            // address's minute of weight. Each process still keeps to the venue's 1200.
            "--ip-weight-per-minute",
            "12000",
        ],
    );
    let config = config(dir, &server, "t", "tests/strategies/churn.js", "{ qty = 0.002, every = 2 }");
    let journal = dir.join("live");
    let stderr = dir.join("live.stderr");
    let started = Instant::now();
    for kill in 0..KILLS {
        let mut live = live(&config, &journal, &stderr, &[]);
        let wait = Duration::from_millis(rng.random_range(400..1600));
        std::thread::sleep(wait);
        if let Ok(Some(status)) = live.child.try_wait() {
            panic!("live exited by itself ({status}) before kill {kill}:\n{}", live.stderr_text());
        }
        live.kill();
        assert!(started.elapsed() < Duration::from_secs(240), "the chaos run took too long");
    }
    let mut live = live(&config, &journal, &stderr, &[]);
    server.wait_for_bar(START_MS + (bars - 1) * 60_000, Duration::ZERO, Duration::from_secs(180));
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(live.terminate(Duration::from_secs(30)), Some(0), "{}", live.stderr_text());

    let records = records(&journal);
    let log = server.log_lines();
    let orders = each_decision_sent_once(&records, &log, "cloid");
    assert!(orders > 50, "the run should have placed many orders, placed {orders}");
    each_fill_journaled_once(&records, &log, "fill", "tid");
    ledger_equals_the_venue(&journal, &server, "t");
    // No nonce was used twice: the venue would have refused the action whole.
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        !text.contains("Invalid nonce"),
        "a nonce was refused:\n{}",
        text.lines().filter(|l| l.contains("Invalid nonce")).collect::<Vec<_>>().join("\n")
    );
    nonces_reserved_ever_higher(&records);
    verified(&journal);
}

/// Each reservation reaches beyond the one before: a restart never signs below what the
/// dead process may have used.
fn nonces_reserved_ever_higher(records: &[Value]) {
    let through: Vec<u64> = records
        .iter()
        .filter(|r| event(r).0 == "NoncesReserved")
        .map(|r| event(r).1["through"].as_u64().unwrap())
        .collect();
    assert!(!through.is_empty(), "no nonce reservation journaled");
    assert!(through.windows(2).all(|w| w[0] < w[1]), "reservations not increasing: {through:?}");
}

#[test]
fn a_crash_between_signing_and_sending_reuses_no_nonce_and_sends_no_order_twice() {
    let _one = serial();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::on_fixture_bars(dir, &["--speed", "240", "--hold"]);
    let config = config(dir, &server, "t", "tests/strategies/churn.js", "{ qty = 0.002, every = 1 }");
    let journal = dir.join("live");
    let stderr = dir.join("live.stderr");
    // The process aborts right after signing its second order action (the second bar's
    // orders), before the request is written.
    let mut crashing = live(&config, &journal, &stderr, &[("QF_FAILPOINT", "kill-after-sign:2")]);
    let status = crashing.wait(Duration::from_secs(60)).expect("the failpoint should end the process");
    assert_ne!(status, 0, "the process should have died at the failpoint:\n{}", crashing.stderr_text());
    let before = records(&journal);
    let signed_not_sent: Vec<String> = before
        .iter()
        .filter(|r| event(r).0 == "OrderSubmitted")
        .map(|r| format!("0x{}", event(r).1["cloid"].as_str().unwrap()))
        .filter(|cloid| !server.log_lines().iter().any(|l| l["type"] == "order" && l["cloid"] == cloid.as_str()))
        .collect();
    assert!(!signed_not_sent.is_empty(), "the crash should leave a decided order the venue never got");

    let mut live = live(&config, &journal, &stderr, &[]);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(live.terminate(Duration::from_secs(30)), Some(0), "{}", live.stderr_text());
    let records = records(&journal);
    let log = server.log_lines();
    each_decision_sent_once(&records, &log, "cloid");
    // The orders the dead process never sent were placed by the next one, once.
    for cloid in &signed_not_sent {
        let placed = log.iter().filter(|l| l["type"] == "order" && l["cloid"] == cloid.as_str()).count();
        let resolved = records.iter().any(|r| {
            matches!(event(r).0, "OrderAccepted" | "OrderRejected")
                && format!("0x{}", event(r).1["cloid"].as_str().unwrap_or("")) == *cloid
        });
        assert!(placed == 1 || resolved, "order {cloid} of the crashed process: placed {placed} times, never resolved");
    }
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(!text.contains("Invalid nonce"), "a nonce was reused after the crash");
    nonces_reserved_ever_higher(&records);
    each_fill_journaled_once(&records, &log, "fill", "tid");
    verified(&journal);
}

#[test]
fn a_fill_reported_by_the_stream_and_by_rest_after_reconnects_is_journaled_once() {
    let _one = serial();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Sockets dropped often, fills pushed late and twice: after each reconnect the new
    // subscription's snapshot and the REST catch-up both report the fills around the drop.
    let faults = "drop_ws=0.08,dup_ws=0.3,late_fills=0.5";
    let server = Server::on_fixture_bars(dir, &["--speed", "240", "--hold", "--faults", faults, "--seed", "11"]);
    // On its third turn the trader decides six orders in one step: one action carries them.
    let config = config(dir, &server, "t", "tests/strategies/churn.js", "{ qty = 0.002, every = 1, burst = 4 }");
    let journal = dir.join("live");
    let stderr = dir.join("live.stderr");
    let mut live = live(&config, &journal, &stderr, &[]);
    server.wait_for_bar(START_MS + 119 * 60_000, BAR * 120, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(live.terminate(Duration::from_secs(30)), Some(0), "{}", live.stderr_text());
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(text.contains("orders=6"), "the burst's six orders should go as one action");
    let reconnects = text.matches("stream lost").count();
    assert!(reconnects >= 3, "the scenario should reconnect a few times, reconnected {reconnects}");
    let records = records(&journal);
    let log = server.log_lines();
    assert!(each_fill_journaled_once(&records, &log, "fill", "tid") > 20, "the scenario should fill");
    ledger_equals_the_venue(&journal, &server, "t");
    verified(&journal);
}

#[test]
fn cancelling_orders_already_filled_or_gone_neither_loops_nor_crashes() {
    let _one = serial();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Every bar's fills pushed after the next bar's candle.
    let server = Server::on_fixture_bars(dir, &["--speed", "240", "--hold", "--faults", "late_fills=1"]);
    let config = config(dir, &server, "t", "tests/strategies/cancel_gone.js", "{ qty = 0.002 }");
    let journal = dir.join("live");
    let stderr = dir.join("live.stderr");
    let (mut live, url) = live_support::live_serving_env(&config, &journal, &stderr, &[], &[("QF_HL_KEY", WALLET_KEY)]);
    server.wait_for_bar(START_MS + 60 * 60_000, BAR * 60, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(1000));
    // The client's requests are in the session's metrics, named by the venue's request types.
    let (_, metrics) = live_support::http_get(&url, "/metrics");
    for endpoint in ["/exchange order", "/exchange cancelByCloid", "/info orderStatus"] {
        let family = format!("exchange_rest_latency_seconds_count{{venue=\"hyperliquid\",endpoint=\"{endpoint}\"}}");
        assert!(metrics.contains(&family), "no {family} in /metrics:\n{metrics}");
    }
    assert_eq!(live.terminate(Duration::from_secs(30)), Some(0), "{}", live.stderr_text());
    let records = records(&journal);
    let count = |kind: &str| records.iter().filter(|r| event(r).0 == kind).count();
    let bars = count("KlineReceived");
    assert!(count("OrderCancelRequested") >= 20, "the strategy should have asked for cancels");
    // The strategy asks once per bar per order; nothing asks again on its own.
    assert!(
        count("OrderCancelRequested") <= 2 * bars,
        "cancels looped: {} for {bars} bars",
        count("OrderCancelRequested")
    );
    // The order under $10 was refused before it was signed, the reason journaled as an
    // input, and the trader went on.
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| event(r).0 == "OrderRejected")
        .filter_map(|r| event(r).1["reason"]["Refused"].as_str().map(|_| r))
        .collect();
    assert_eq!(refused.len(), 1, "one order refused before signing");
    let reason = event(refused[0]).1["reason"]["Refused"].as_str().unwrap();
    assert!(reason.contains("below Hyperliquid's minimum of $10"), "{reason}");
    let log = server.log_lines();
    each_decision_sent_once(&records, &log, "cloid");
    each_fill_journaled_once(&records, &log, "fill", "tid");
    verified(&journal);
}
