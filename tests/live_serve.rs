//! `quantfold live --serve`: the API of a running paper session, fed after each step,
//! checked against the journal the session leaves (its record at the served head, and
//! `replay rebuild --to` that seq).

mod common;
mod live_support;

use std::time::{Duration, Instant};

use live_support::*;
use serde_json::Value;

const KLINES: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13_head.csv";
/// The open time of the file's last bar (120 one-minute bars from 2022-12-13 00:00 UTC).
const LAST_BAR_MS: i64 = 1_670_889_600_000 + 119 * 60_000;

fn get(base: &str, path: &str) -> (u16, Value) {
    let (head, body) = http_get(base, path);
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(!head.to_ascii_lowercase().contains("chunked"), "a JSON answer has a length: {head}");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn get_text(base: &str, path: &str) -> String {
    let (head, body) = http_get(base, path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body
}

#[test]
fn the_api_of_a_running_paper_session_follows_its_journal() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &root().join(KLINES), &["--speed", "3000", "--hold"]);
    let params = r#"{ fast = 3, slow = 8, fraction = 0.5, record = false }"#;
    let traders = [TraderSpec { id: "a", strategy: "strategies/sma_cross.js", params, capital: "5000" }];
    let config = config(dir.path(), "paper", &server, &traders, "");
    let journal = dir.path().join("paper");
    let stderr = dir.path().join("live.stderr");
    let (mut live, base) = live_serving(&config, &journal, &stderr, &[]);

    // Ready once the folding task has taken the journal as it stood (it runs beside the
    // engine, so the first answers may still be 503): polled, as a readiness probe is.
    let ready_by = Instant::now() + Duration::from_secs(10);
    while get(&base, "/readyz").0 != 200 {
        assert!(Instant::now() < ready_by, "not ready 10 s after serving:\n{}", live.stderr_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(60));
    // The session is idle once the last bar is handled: wait for the served head to settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = Value::Null;
    let journal_now = loop {
        std::thread::sleep(Duration::from_millis(400));
        let (status, now) = get(&base, "/api/journal");
        assert_eq!(status, 200, "{now}");
        if now["journals"][0]["head_seq"] == last && !last.is_null() {
            break now;
        }
        assert!(Instant::now() < deadline, "the served head never settled: {now}");
        last = now["journals"][0]["head_seq"].clone();
    };
    let (_, fills) = get(&base, "/api/traders/a/fills?limit=1000");
    let (_, board) = get(&base, "/api/leaderboard");
    let metrics = get_text(&base, "/metrics");
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());

    // What only the running shell sees is in /metrics too, in valid Prometheus text.
    common::promtool_check(&metrics);
    let sample = |name: &str| common::metric_sample(&metrics, name);
    // The venue's REST round trips by endpoint: the instruments at start, the bars of the warm-up.
    assert!(
        sample(
            "quantfold_exchange_rest_latency_seconds_count{venue=\"bybit\",endpoint=\"/v5/market/instruments-info\"}"
        ) >= 1.0
    );
    assert!(
        sample("quantfold_exchange_rest_latency_seconds_count{venue=\"bybit\",endpoint=\"/v5/market/time\"}") >= 1.0
    );
    // A decision cycle per bar the trader saw, and the journal's appends and flushes.
    assert!(sample("quantfold_decision_cycle_latency_seconds_count{trader=\"a\"}") >= 100.0, "{metrics}");
    // One per append or batch: at least one per bar.
    let appends = sample("quantfold_journal_append_latency_seconds_count");
    assert!(appends >= 120.0, "{appends} appends");
    assert!(sample("quantfold_journal_flush_latency_seconds_count") >= 1.0);

    let served = &journal_now["journals"][0];
    let seq = served["head_seq"].as_u64().unwrap();
    assert!(seq > 120, "every bar was served: {served}");
    // The record at the served head is the journal's own.
    let record: Value = serde_json::from_str(
        ok(&["journal", "inspect", journal.to_str().unwrap(), "--from", &seq.to_string(), "--limit", "1", "--json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(served["head_hash"], record["hash"]);
    // And the served state is the journal's fold up to it.
    let rebuilt: Value = serde_json::from_str(&ok(&[
        "replay",
        "rebuild",
        "--journal",
        journal.to_str().unwrap(),
        "--to",
        &seq.to_string(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(served["state_digest"], rebuilt["digest"]);
    let want = &rebuilt["traders"]["a"];
    assert_eq!(fills["fills_total"], want["fills"]);
    assert!(want["fills"].as_u64().unwrap() >= 2, "the session traded: {want}");
    assert_eq!(board["leaderboard"][0]["equity_exact"], want["equity"]);
}
