//! Journals mirrored to NATS JetStream (`backtest --journal --mirror`, `journal restore`):
//! each test starts its own nats-server on loopback with a temporary store.

mod common;
mod live_support;
mod nats_support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use live_support::{bin, config, http_get, live_serving, root, serial, server, Proc, TraderSpec};
use nats_support::{free_port, wait_for, wait_for_text, Nats};

const DATA: &str = "fixtures/klines/coinbase_BTCUSD_1h_2017-07_2019-10.csv";

#[test]
fn a_journal_mirrored_through_a_server_killed_and_restarted_restores_equal_to_the_local_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut nats = Nats::start(d);
    let url = nats.url();
    let journal = d.join("run-1");
    let stderr = d.join("backtest.stderr");
    let child = Command::new(bin())
        .args(["backtest", "--data", DATA, "--out"])
        .arg(d.join("out"))
        .arg("--journal")
        .arg(&journal)
        .args(["--mirror", &url])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut run = Proc { child, stderr };
    // Not random: the server dies as soon as the run has started (the mirror is connected by
    // then), and comes back once the mirror, shipping after the run, has failed and is retrying.
    let staged = d.join(format!(".out.partial-{}", run.pid()));
    assert!(wait_for(|| staged.exists(), Duration::from_secs(60)), "the run did not start:\n{}", run.stderr_text());
    nats.kill();
    assert!(
        wait_for_text(&run.stderr, "retrying", Duration::from_secs(90)),
        "the mirror never saw the server go:\n{}",
        run.stderr_text()
    );
    nats.restart();
    assert_eq!(run.wait(Duration::from_secs(120)), Some(0), "the mirrored run failed:\n{}", run.stderr_text());
    assert!(run.stderr_text().contains(" records on nats://"), "{}", run.stderr_text());

    let restored = d.join("restored");
    let out =
        common::ok(&["journal", "restore", "--nats", &url, "--journal-id", "run-1", "--to", common::p(&restored)]);
    let verify =
        |path: &std::path::Path| common::stdout(&common::ok(&["journal", "verify", "--json", common::p(path)]));
    let (original, copy): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&verify(&journal)).unwrap(), serde_json::from_str(&verify(&restored)).unwrap());
    assert_eq!(copy["events"], original["events"]);
    assert_eq!(copy["head"], original["head"], "{}", common::stdout(&out));
    // Record for record the same: the exports are equal.
    common::ok(&["journal", "export", common::p(&journal), "--jsonl", common::p(&d.join("a.jsonl"))]);
    common::ok(&["journal", "export", common::p(&restored), "--jsonl", common::p(&d.join("b.jsonl"))]);
    assert!(std::fs::read(d.join("a.jsonl")).unwrap() == std::fs::read(d.join("b.jsonl")).unwrap());
}

#[test]
fn a_mirror_or_restore_pointed_at_a_server_that_is_down_says_so_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let journal = dir.path().join("j");
    let args = ["backtest", "--data", DATA, "--journal", common::p(&journal), "--mirror", &url];
    let err = common::fails(&args);
    assert!(err.contains(&url) && err.contains("cannot reach"), "{err}");
    let to = dir.path().join("r");
    let err = common::fails(&["journal", "restore", "--nats", &url, "--journal-id", "j", "--to", common::p(&to)]);
    assert!(err.contains(&url) && err.contains("cannot reach"), "{err}");
}

/// `quantfold live --mirror` on paper: the server down when the session starts and killed
/// again mid-run; the mirror catches up each time, and the restored journal is the local
/// one's first records, record for record.
#[test]
fn a_live_session_mirrors_through_two_outages_and_the_restore_is_a_prefix_of_its_journal() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut nats = Nats::start(d);
    let url = nats.url();
    nats.kill();
    // One bar every 100 ms; the server holds after the last bar.
    let venue =
        server(d, &root().join("fixtures/klines/bybit_BTCUSDT_1m_2022-12-13_head.csv"), &["--speed", "600", "--hold"]);
    let traders = [TraderSpec { id: "sma", strategy: "strategies/sma_cross.js", params: "{}", capital: "1000" }];
    let live_config = config(d, "paper", &venue, &traders, "");
    let journal = d.join("paper-1");
    let stderr = d.join("live.stderr");
    // Served too: the mirror's lag is a metric.
    let (mut live, api) = live_serving(&live_config, &journal, &stderr, &["--mirror", &url]);
    assert!(wait_for_text(&stderr, "the mirror retries", Duration::from_secs(60)), "{}", live.stderr_text());
    std::thread::sleep(Duration::from_secs(1));
    nats.restart();
    assert!(wait_for_text(&stderr, "mirror: connected", Duration::from_secs(30)), "{}", live.stderr_text());
    std::thread::sleep(Duration::from_secs(1));
    nats.kill();
    // Back once the mirror has failed to ship (the bars keep coming, so it tries).
    assert!(wait_for_text(&stderr, "records behind, retrying", Duration::from_secs(60)), "{}", live.stderr_text());
    nats.restart();
    venue.wait_for_bar("BTCUSDT", 1_670_889_600_000 + 119 * 60_000, Duration::from_secs(60));
    assert!(wait_for_text(&stderr, "mirror: back", Duration::from_secs(30)), "{}", live.stderr_text());
    // Caught up: nothing durable is owed (a publish lost in the reconnect waits out its timeout).
    let caught_up = || http_get(&api, "/metrics").1.lines().any(|l| l == "quantfold_journal_mirror_lag_records 0");
    assert!(wait_for(caught_up, Duration::from_secs(30)), "{}", http_get(&api, "/metrics").1);
    assert_eq!(live.terminate(Duration::from_secs(30)), Some(0), "{}", live.stderr_text());

    let restored = d.join("restored");
    common::ok(&["journal", "restore", "--nats", &url, "--journal-id", "paper-1", "--to", common::p(&restored)]);
    common::ok(&["journal", "verify", common::p(&restored)]);
    common::ok(&["journal", "export", common::p(&journal), "--jsonl", common::p(&d.join("a.jsonl"))]);
    common::ok(&["journal", "export", common::p(&restored), "--jsonl", common::p(&d.join("b.jsonl"))]);
    let (local, copy) =
        (std::fs::read_to_string(d.join("a.jsonl")).unwrap(), std::fs::read_to_string(d.join("b.jsonl")).unwrap());
    let (local, copy): (Vec<&str>, Vec<&str>) = (local.lines().collect(), copy.lines().collect());
    assert!(copy.len() > 100 && copy.len() <= local.len(), "restored {} of {} lines", copy.len(), local.len());
    assert!(local.starts_with(&copy), "the restored journal is not the local one's first records");

    // The restored journal trades on through the usual recovery: resumed (its decisions
    // re-derived), running, stopped cleanly, and still a verified journal that starts with
    // the copy.
    let resumed_log = d.join("resumed.stderr");
    let mut resumed = live_support::live(&live_config, &restored, &resumed_log);
    assert!(wait_for_text(&resumed_log, "resumed", Duration::from_secs(60)), "{}", resumed.stderr_text());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(resumed.terminate(Duration::from_secs(30)), Some(0), "{}", resumed.stderr_text());
    assert!(resumed.stderr_text().contains("journal flushed"), "{}", resumed.stderr_text());
    common::ok(&["journal", "verify", common::p(&restored)]);
    common::ok(&["journal", "export", common::p(&restored), "--jsonl", common::p(&d.join("c.jsonl"))]);
    let after = std::fs::read_to_string(d.join("c.jsonl")).unwrap();
    let after: Vec<&str> = after.lines().collect();
    assert!(after.starts_with(&copy), "resuming did not go on from the restored records");
}
