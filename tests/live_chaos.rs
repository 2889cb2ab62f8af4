//! Crash tests of `quantfold live`: SIGKILLed at seeded moments while it trades against
//! the local Bybit server with faults on, restarted each time; at the end the venue's
//! own log is compared with the journal. The seed is printed on failure; rerun one with
//! `QF_CHAOS_SEED=N cargo test --test live_chaos`.

mod live_support;

use std::time::{Duration, Instant};

use live_support::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::Value;

/// Kills per run (the issue asks for at least 30).
const KILLS: usize = 30;

#[test]
fn thirty_kills_lose_nothing_and_send_nothing_twice() {
    let _one = serial();
    let seed: u64 = std::env::var("QF_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_204);
    let result = std::panic::catch_unwind(|| chaos(seed));
    if let Err(panic) = result {
        eprintln!("live chaos failed with seed {seed} (rerun: QF_CHAOS_SEED={seed} cargo test --test live_chaos)");
        std::panic::resume_unwind(panic);
    }
}

/// The run's directory (a path, so a kept one and a temporary one read alike).
struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

fn chaos(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let temp = tempfile::tempdir().unwrap();
    // QF_CHAOS_KEEP=1 keeps the journal, the server's log and the stderrs for a post-mortem.
    let (dir, _temp) = if std::env::var_os("QF_CHAOS_KEEP").is_some() {
        let path = temp.keep();
        eprintln!("live chaos: keeping {}", path.display());
        (Dir(path), None)
    } else {
        (Dir(temp.path().to_owned()), Some(temp))
    };
    let klines = dir.path().join("bybit_BTCUSDT_1m.csv");
    // 400 seeded one-minute bars at 150 ms a bar: a market of a minute, slow enough for the
    // venue's rate limit to keep up with the trader's orders.
    ok(&[
        "data",
        "synth",
        "--bars",
        "400",
        "--seed",
        &seed.to_string(),
        "--start-ms",
        "1670889600000",
        "--out",
        klines.to_str().unwrap(),
    ]);
    let faults = "drop_ws=0.01,lose_response=0.05,http_5xx=0.03,late_ack=0.1,dup_ws=0.1";
    let server = server(
        dir.path(),
        &klines,
        &["--speed", "400", "--hold", "--faults", faults, "--seed", &seed.to_string(), "--partial-above", "0.2"],
    );
    let traders = [TraderSpec {
        id: "churn",
        strategy: "tests/strategies/churn.js",
        params: "{ qty = 0.002 }",
        capital: "10000",
    }];
    let config = config(dir.path(), "bybit", &server, &traders, "");
    let journal = dir.path().join("live");
    let stderr = dir.path().join("live.stderr");

    let started = Instant::now();
    for kill in 0..KILLS {
        let mut live = live(&config, &journal, &stderr);
        // Long enough to get through recovery and trade a little, short enough to die mid-work.
        let wait = Duration::from_millis(rng.random_range(400..1600));
        std::thread::sleep(wait);
        if let Ok(Some(status)) = live.child.try_wait() {
            panic!("live exited by itself ({status}) before kill {kill}:\n{}", live.stderr_text());
        }
        live.kill();
        assert!(started.elapsed() < Duration::from_secs(240), "the chaos run took too long");
    }
    // The last run sees the market to its end, then stops cleanly.
    let mut live = live(&config, &journal, &stderr);
    server.wait_for_bar("BTCUSDT", 1_670_889_600_000 + 399 * 60_000, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(live.terminate(Duration::from_secs(30)), Some(0), "{}", live.stderr_text());

    let records = records(&journal);
    let log = server.log_lines();
    // No decision sent as two orders: one accepted order per orderLinkId, each a journaled cloid.
    let orders = each_decision_sent_once(&records, &log, "orderLinkId");
    assert!(orders > 50, "the run should have placed many orders, placed {orders}");
    // Every execution at the venue is in the journal exactly once, and the journal has no other.
    each_fill_journaled_once(&records, &log, "execution", "execId");

    // Positions and balance equal the venue's.
    let state: Value =
        serde_json::from_str(&ok(&["replay", "rebuild", "--journal", journal.to_str().unwrap(), "--json"])).unwrap();
    let trader = &state["traders"]["churn"];
    let position = trader["positions"].as_array().and_then(|ps| ps.iter().find(|p| p["symbol"] == "BTCUSDT"));
    let ledger_qty = position.map_or(Decimal::ZERO, |p| dec(&p["qty"]));
    let ledger_entry = position.map_or(Decimal::ZERO, |p| dec(&p["entry_price"]));
    let positions = server.get_signed("/v5/position/list", "category=linear&symbol=BTCUSDT");
    let size = positions["list"][0]["size"].as_str().map_or(Decimal::ZERO, |s| s.parse().unwrap());
    let venue_qty = if positions["list"][0]["side"] == "Sell" { -size } else { size };
    let venue_entry = positions["list"][0]["avgPrice"].as_str().map_or(Decimal::ZERO, |s| s.parse().unwrap());
    assert_eq!(ledger_qty, venue_qty, "position: journal {ledger_qty}, venue {venue_qty}");
    // The balance: average-cost accounting makes realized PnL depend on the order fills are
    // applied in, and a fill caught up after a crash is journaled after fills the venue made
    // later. What no order changes is cash less the open position's cost basis (the sum of
    // every fill's cash flow): exactly equal, but for the venue's 8-decimal avgPrice.
    let wallet = server.get_signed("/v5/account/wallet-balance", "accountType=UNIFIED");
    let venue_cash = dec(&wallet["list"][0]["coin"][0]["walletBalance"]);
    let ledger_cash = dec(&trader["cash"]);
    let ledger_basis = ledger_cash - ledger_qty * ledger_entry;
    let venue_basis = venue_cash - venue_qty * venue_entry;
    let rounding = venue_qty.abs() * Decimal::new(1, 8) + Decimal::new(1, 8);
    assert!(
        (ledger_basis - venue_basis).abs() <= rounding,
        "cash less cost basis: journal {ledger_basis} (cash {ledger_cash}), venue {venue_basis} (cash {venue_cash})"
    );

    ok(&["journal", "verify", journal.to_str().unwrap()]);
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

fn dec(value: &Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}
