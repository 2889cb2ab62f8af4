//! Telegram delivery of a live run, as real processes on loopback: `quantfold live` (paper)
//! on the local Bybit server, notifying on every bar, delivering to `quantfold telegram-sim`.
//! The journal is the outbox: killed mid-run and restarted, nothing journaled as delivered is
//! sent again and nothing is lost; a clean restart sends nothing twice.

mod live_support;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use live_support::*;
use serde_json::Value;

const KLINES: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13_head.csv";
const LAST_BAR_MS: i64 = 1_670_889_600_000 + 119 * 60_000;
const TOKEN: &str = "7001:AAH-live_test_token_0123456789abcdef";
const CHAT: &str = "5150";
/// The local server replays 2022's bars while its clock (which stamps a new journal's set-up)
/// says today: by event time the notifications look years old, so they are allowed to be.
const MAX_AGE: &str = "max_age = \"3650d\"\n";

/// `quantfold telegram-sim` and its base URL.
fn telegram_sim(dir: &Path, args: &[&str]) -> (Proc, String) {
    let mut command = Command::new(bin());
    command
        .args(["telegram-sim", "--listen", "127.0.0.1:0", "--chat", CHAT])
        .args(args)
        .env("TELEGRAM_BOT_TOKEN", TOKEN);
    let (proc, line) = announcing(command, &dir.join("telegram.stderr"));
    let url = line.trim().strip_prefix("telegram-sim ").unwrap_or_else(|| panic!("first line: {line:?}")).to_owned();
    (proc, url)
}

/// The messages the server delivered.
fn delivered(url: &str) -> Vec<Value> {
    let (_, body) = http_get(url, "/sim/messages");
    serde_json::from_str::<Value>(&body)
        .unwrap_or_else(|e| panic!("{e}: {body}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// How many times each `#seq` arrived.
fn arrivals(url: &str) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for m in delivered(url) {
        let text = m["text"].as_str().unwrap_or_default();
        let seq = text.strip_prefix('#').and_then(|t| t.split(' ').next()).and_then(|s| s.parse().ok());
        *counts.entry(seq.unwrap_or_else(|| panic!("a message without #seq: {text}"))).or_default() += 1;
    }
    counts
}

/// The journal's telegram notifications (seq → text as sent) and the seqs journaled delivered.
fn outbox(records: &[Value]) -> (BTreeMap<u64, String>, Vec<u64>) {
    let mut sent = BTreeMap::new();
    let mut done = Vec::new();
    for r in records {
        match event(r) {
            ("NotificationSent", n) if n["channel"] == "telegram" => {
                let seq = r["seq"].as_u64().unwrap();
                sent.insert(
                    seq,
                    format!("#{seq} {}: {}", r["trader"].as_str().unwrap(), n["message"].as_str().unwrap()),
                );
            }
            ("NotificationDelivered", d) => done.push(d["seq"].as_u64().unwrap()),
            _ => {}
        }
    }
    (sent, done)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn telegram_config(dir: &Path, server: &Server, url: &str) -> std::path::PathBuf {
    let traders =
        [TraderSpec { id: "notifier", strategy: "tests/strategies/notify.js", params: "{}", capital: "1000" }];
    let path = config(dir, "paper", server, &traders, "");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[telegram]\nbase_url = \"{url}\"\nchat_id = {CHAT}\ntoken_env = \"QF_TEST_TELEGRAM\"\nper_minute = 1800\n{MAX_AGE}"
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn live_telegram(config: &Path, journal: &Path, stderr: &Path) -> Proc {
    live_env(config, journal, stderr, &[], &[("QF_TEST_TELEGRAM", TOKEN)])
}

#[test]
fn notifications_survive_a_kill_and_a_restart_without_a_delivered_one_sent_again() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    // One bar every 100 ms; the server holds after the last bar.
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "600", "--hold"]);
    // A flood limit tighter than the pace we send at and slower than the bars come: 429s on
    // the way, and a backlog that the kill leaves undelivered.
    let (_telegram, url) = telegram_sim(dir.path(), &["--rate", "8/1"]);
    let config = telegram_config(dir.path(), &server, &url);
    let journal = dir.path().join("paper");
    let stderr = dir.path().join("live.stderr");

    // Killed once some messages are out.
    let mut first = live_telegram(&config, &journal, &stderr);
    wait_until("the first deliveries", Duration::from_secs(60), || delivered(&url).len() >= 15);
    first.kill();
    let (sent_before, done_before) = outbox(&records(&journal));
    assert!(!done_before.is_empty(), "deliveries are journaled as they happen");
    assert!(
        sent_before.len() > done_before.len() + 5,
        "the kill should leave a backlog: {} sent, {} delivered",
        sent_before.len(),
        done_before.len()
    );
    let before_kill = arrivals(&url);

    // Restarted: it catches up the bars it missed and delivers what is owed.
    let mut second = live_telegram(&config, &journal, &stderr);
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(60));
    // The journal is locked while the run goes: wait for the deliveries to settle.
    let mut last = 0;
    wait_until("the deliveries to settle", Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(2500));
        let now = delivered(&url).len();
        std::mem::replace(&mut last, now) == now
    });
    assert_eq!(second.terminate(Duration::from_secs(30)), Some(0), "{}", second.stderr_text());

    let all = records(&journal);
    let (sent, done) = outbox(&all);
    let arrived = arrivals(&url);
    // Nothing lost: every notification arrived, with the text the journal holds.
    assert_eq!(
        arrived.keys().copied().collect::<BTreeSet<_>>(),
        sent.keys().copied().collect(),
        "{}",
        second.stderr_text()
    );
    let texts: BTreeSet<String> = delivered(&url).iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, sent.values().cloned().collect());
    // Each journaled delivery once; none journaled twice.
    let mut unique = done.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), done.len(), "a delivery journaled twice");
    assert_eq!(unique, sent.keys().copied().collect::<Vec<_>>(), "every notification journaled delivered");
    // What was journaled delivered before the kill was never sent again; a repeat can only
    // be one whose delivery the kill kept out of the journal.
    for seq in &done_before {
        assert_eq!(arrived[seq], 1, "#{seq} was journaled delivered before the kill, then sent again");
    }
    let repeats: Vec<u64> = arrived.iter().filter(|(_, n)| **n > 1).map(|(s, _)| *s).collect();
    for seq in &repeats {
        assert!(before_kill.contains_key(seq) && !done_before.contains(seq), "#{seq} repeated without cause");
    }
    assert!(sent_before.keys().all(|s| sent.contains_key(s)), "a notification made durable before the kill was lost");

    // A clean restart after everything was delivered sends nothing.
    let count = delivered(&url).len();
    let mut third = live_telegram(&config, &journal, &stderr);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(third.terminate(Duration::from_secs(30)), Some(0), "{}", third.stderr_text());
    assert_eq!(delivered(&url).len(), count, "a clean restart sent again");

    // The token is in no journal record and no log line; the journal replays.
    let exported = std::fs::read_to_string(journal.with_extension("export.jsonl")).unwrap();
    assert!(!exported.contains("AAH-live"), "the token reached the journal");
    assert!(!std::fs::read_to_string(&stderr).unwrap().contains("AAH-live"), "the token reached the log");
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

#[test]
fn a_refused_token_halts_delivery_and_the_next_start_with_the_right_one_delivers() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "3000", "--hold"]);
    let (_telegram, url) = telegram_sim(dir.path(), &["--rate", "1000/1"]);
    let config = telegram_config(dir.path(), &server, &url);
    let journal = dir.path().join("paper");
    let stderr = dir.path().join("live.stderr");

    // The wrong token: Telegram says 401, delivery halts, the run trades on.
    let wrong_token = [("QF_TEST_TELEGRAM", "7001:AAH-wrong_token_for_this_bot_000000")];
    let mut wrong = live_env(&config, &journal, &stderr, &[], &wrong_token);
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(wrong.terminate(Duration::from_secs(30)), Some(0), "{}", wrong.stderr_text());
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("Telegram delivery stopped") && log.contains("401"), "{log}");
    assert!(!log.contains("AAH-wrong"), "the token reached the log");
    assert!(delivered(&url).is_empty());
    let (sent, done) = outbox(&records(&journal));
    assert!(sent.len() >= 100 && done.is_empty(), "{} sent, {} delivered", sent.len(), done.len());

    // Started again with the right token: everything owed goes out, once.
    let mut right = live_telegram(&config, &journal, &stderr);
    wait_until("the owed notifications", Duration::from_secs(60), || arrivals(&url).len() >= sent.len());
    assert_eq!(right.terminate(Duration::from_secs(30)), Some(0), "{}", right.stderr_text());
    let arrived = arrivals(&url);
    assert!(arrived.values().all(|n| *n == 1), "{arrived:?}");
    assert_eq!(arrived.keys().copied().collect::<Vec<_>>(), sent.keys().copied().collect::<Vec<_>>());
    let (_, done) = outbox(&records(&journal));
    assert_eq!(done.len(), sent.len());
}

#[test]
fn a_missing_token_is_refused_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "3000", "--hold"]);
    let config = telegram_config(dir.path(), &server, "http://127.0.0.1:9");
    let out = Command::new(bin())
        .args(["live", "--config"])
        .arg(&config)
        .arg("--journal")
        .arg(dir.path().join("j"))
        .env_remove("QF_TEST_TELEGRAM")
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("QF_TEST_TELEGRAM") && !err.contains("panicked"), "{err}");
    // Refused before anything was written: the same command with the token starts afresh.
    assert!(!dir.path().join("j").exists(), "a refused start left a journal behind");
}
