//! `quantfold live` against the local Bybit server, as real processes on loopback:
//! parity with a backtest of the same bars, paper trading end to end, configs refused
//! with file:line, and the secret never written anywhere.

mod live_support;

use std::{path::Path, time::Duration};

use live_support::*;
use serde_json::Value;

const KLINES: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13_head.csv";
/// The open time of the file's last bar (120 one-minute bars from 2022-12-13 00:00 UTC).
const LAST_BAR_MS: i64 = 1_670_889_600_000 + 119 * 60_000;
const SMA_PARAMS: &str = r#"{"fast":3,"slow":8,"fraction":0.1,"record":false}"#;

/// The ledger of `trader` as `replay rebuild --json` reports it: cash, PnL, fees, positions.
fn ledger(journal: &Path, trader: &str) -> Value {
    let out = ok(&["replay", "rebuild", "--journal", journal.to_str().unwrap(), "--json"]);
    let state: Value = serde_json::from_str(&out).unwrap();
    let t = &state["traders"][trader];
    assert!(!t.is_null(), "no trader {trader} in {out}");
    let positions: Vec<Value> = t["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .map(|p| serde_json::json!([p["symbol"], amount(&p["qty"]), amount(&p["entry_price"])]))
        .collect();
    serde_json::json!({
        "cash": amount(&t["cash"]), "realized_pnl": amount(&t["realized_pnl"]), "fees_paid": amount(&t["fees_paid"]),
        "positions": positions
    })
}

#[test]
fn live_on_the_local_server_trades_as_the_backtest_of_the_same_bars() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    // A bar every 250 ms: an order decided on a bar must reach the venue before the next bar
    // closes to fill at its open, as the backtest fills it; on a loaded two-core machine
    // 50 ms was not always enough.
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "240", "--hold", "--partial-above", "0"]);
    let params = r#"{ fast = 3, slow = 8, fraction = 0.1, record = false }"#;
    let traders = [TraderSpec { id: "sma_cross", strategy: "strategies/sma_cross.js", params, capital: "10000" }];
    let config = config(dir.path(), "bybit", &server, &traders, "");
    let journal = dir.path().join("live");
    let mut live = live(&config, &journal, &dir.path().join("live.stderr"));
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(120));
    // The last bar's messages are on their way: give them a moment, then stop cleanly.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "live did not stop cleanly:\n{}", live.stderr_text());

    let instruments = dir.path().join("instruments.toml");
    std::fs::write(
        &instruments,
        "[BTCUSDT]\ntick_size = \"0.1\"\nqty_step = \"0.001\"\nmin_qty = \"0.001\"\nmax_leverage = \"100\"\n\
         maintenance_margin_rate = \"0.005\"\ntaker_fee_rate = \"0.00055\"\nmaker_fee_rate = \"0.0002\"\n",
    )
    .unwrap();
    let backtest = dir.path().join("backtest");
    ok(&[
        "backtest",
        "--strategy",
        "strategies/sma_cross.js",
        "--data",
        KLINES,
        "--params",
        SMA_PARAMS,
        "--instruments",
        instruments.to_str().unwrap(),
        "--journal",
        backtest.to_str().unwrap(),
        "--out",
        dir.path().join("report").to_str().unwrap(),
    ]);

    let (live_records, backtest_records) = (records(&journal), records(&backtest));
    let (live_decisions, backtest_decisions) = (decisions(&live_records), decisions(&backtest_records));
    assert!(backtest_decisions.len() >= 4, "the scenario should trade: {backtest_decisions:?}");
    assert_eq!(live_decisions.join("\n"), backtest_decisions.join("\n"), "decisions differ");
    assert_eq!(fills(&live_records), fills(&backtest_records), "fills differ");
    assert_eq!(ledger(&journal, "sma_cross"), ledger(&backtest, "sma_cross"), "ledgers differ");

    // The venue's own log agrees: one order per decision, every execution journaled once.
    let log = server.log_lines();
    let orders = log.iter().filter(|l| l["type"] == "order").count();
    assert_eq!(orders, live_decisions.iter().filter(|d| !d.ends_with("cancel")).count());
    let executions: Vec<&Value> = log.iter().filter(|l| l["type"] == "execution").collect();
    assert_eq!(executions.len(), fills(&live_records).len());

    ok(&["journal", "verify", journal.to_str().unwrap()]);
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

#[test]
fn paper_trading_fills_on_the_simulated_exchange_and_replays() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "3000", "--hold"]);
    let params = r#"{ fast = 3, slow = 8, fraction = 0.5, record = false }"#;
    let traders = [
        TraderSpec { id: "a", strategy: "strategies/sma_cross.js", params, capital: "5000" },
        TraderSpec { id: "b", strategy: "tests/strategies/churn.js", params: "{ qty = 0.01 }", capital: "5000" },
    ];
    let config = config(dir.path(), "paper", &server, &traders, "");
    let journal = dir.path().join("paper");
    let mut live = live(&config, &journal, &dir.path().join("live.stderr"));
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());

    let records = records(&journal);
    assert!(fills(&records).len() >= 10, "paper trading should fill orders: {:?}", fills(&records));
    // Paper orders never reach the venue: its log has none.
    assert!(server.log_lines().is_empty(), "paper trading sent orders to the venue");
    let venue = records.iter().find(|r| event(r).0 == "VenueConfigured").expect("VenueConfigured");
    assert_eq!(event(venue).1["kind"], "sim");
    // replay verify re-runs the simulated exchange on a paper journal, as on a backtest's.
    let report = ok(&["replay", "verify", "--journal", journal.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(report["divergence"].is_null() && report["reproduced"] == true, "{report}");
    assert_eq!(report["venue_rederived"], true, "{report}");
    assert!(report["decisions_checked"].as_u64().unwrap_or(0) > 20, "{report}");

    // Restarted on the same journal after a clean stop: the strategies load again, and the
    // journal still verifies (the market has ended, so the restart only reloads and stops).
    let mut again = live_support::live(&config, &journal, &dir.path().join("live2.stderr"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(again.terminate(Duration::from_secs(20)), Some(0), "{}", again.stderr_text());
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

#[test]
fn bad_configs_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[venue]\nkind = \"binanse\"\n", 2, "unknown venue kind"),
        ("[venue]\nkind = \"paper\"\n\n[[trader]]\nid = \"a\"\nstrategy = \"strategies/sma_cross.js\"\nsymbols = [\"BTCUSDT\"]\ninterval = \"1m\"\ncapital = \"lots\"\n", 9, "not a decimal"),
        ("[venue]\nkind = \"bybit\"\napi_secret = \"hunter2\"\n", 3, "unknown field"),
        ("[venue\nkind = \"paper\"\n", 1, ""),
    ];
    for (text, line, needle) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text.replace("strategies/", &format!("{}/strategies/", root().display()))).unwrap();
        let out = std::process::Command::new(bin())
            .args(["live", "--config", path.to_str().unwrap(), "--journal", dir.path().join("j").to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(&format!("bad.toml:{line}:")), "want line {line}: {err}");
        assert!(err.contains(needle), "want {needle:?}: {err}");
        assert!(!dir.path().join("j").exists(), "a refused config left a journal behind");
    }
}

#[test]
fn the_secret_is_never_written_to_the_journal_logs_or_errors() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "600", "--hold"]);
    let traders = [TraderSpec { id: "churn", strategy: "tests/strategies/churn.js", params: "{}", capital: "10000" }];
    let config = config(dir.path(), "bybit", &server, &traders, "");
    let journal = dir.path().join("live");
    let stderr = dir.path().join("live.stderr");
    let mut live = live(&config, &journal, &stderr);
    server.wait_for_bar("BTCUSDT", 1_670_889_600_000 + 30 * 60_000, Duration::from_secs(60));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());
    assert!(records(&journal).iter().any(|r| event(r).0 == "OrderFilled"), "the run should have traded");

    // A wrong secret: refused by the venue; the error names the problem, not the secret.
    let wrong = "not-the-secret-0123456789";
    let out = std::process::Command::new(bin())
        .args(["live", "--config", config.to_str().unwrap(), "--journal", dir.path().join("j2").to_str().unwrap()])
        .env("QF_TEST_KEY", KEY)
        .env("QF_TEST_SECRET", wrong)
        .env("QUANTFOLD_LOG", "debug")
        .output()
        .unwrap();
    let wrong_err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "a wrong secret should not trade");
    assert!(!wrong_err.contains(wrong), "the secret leaked into an error: {wrong_err}");

    // Nothing anywhere under the run's directory holds the secret: journal files, logs, exports.
    let mut leaks = Vec::new();
    let mut stack = vec![dir.path().to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()) {
                    leaks.push(path.display().to_string());
                }
            }
        }
    }
    assert!(leaks.is_empty(), "the secret is in {leaks:?}");
}

/// `--dry-run`: every order is decided, journaled, signed and logged, and none reaches the
/// venue; the journal says so for each (rejected as a dry run) and still replays.
#[test]
fn a_dry_run_signs_and_logs_orders_and_sends_none() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "600", "--hold"]);
    let traders = [TraderSpec { id: "churn", strategy: "tests/strategies/churn.js", params: "{}", capital: "10000" }];
    let config = config(dir.path(), "bybit", &server, &traders, "");
    let journal = dir.path().join("live");
    let stderr = dir.path().join("live.stderr");
    let mut live = live_with(&config, &journal, &stderr, &["--dry-run"]);
    server.wait_for_bar("BTCUSDT", 1_670_889_600_000 + 12 * 60_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());

    assert_eq!(server.log_lines().iter().filter(|l| l["type"] == "order").count(), 0, "a dry run sent an order");
    let records = records(&journal);
    let submitted = records.iter().filter(|r| event(r).0 == "OrderSubmitted").count();
    let dry: Vec<&Value> = records
        .iter()
        .filter(|r| event(r).0 == "OrderRejected" && event(r).1.to_string().contains("dry run"))
        .collect();
    assert!(submitted >= 5, "the strategy should have decided orders: {submitted}");
    assert_eq!(dry.len(), submitted, "each decided order is journaled as a dry run");
    let log = std::fs::read_to_string(&stderr).unwrap();
    let signed =
        log.lines().filter(|l| l.contains("dry run: signed, not sent") && l.contains("/v5/order/create")).count();
    assert_eq!(signed, submitted, "each order is signed and logged");
    assert!(!log.contains(SECRET), "the secret is not in the log");
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}
