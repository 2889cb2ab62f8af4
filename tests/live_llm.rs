//! LLM traders in `quantfold live`, as real processes on loopback: `quantfold llm-sim` (the
//! local model server) and `quantfold venue-sim bybit` (the local Bybit). One LLM trader and
//! one JavaScript trader side by side on one paper account, then `replay verify` of that
//! journal; an LLM trader's order reaching a live account's venue; a missing model key and
//! over-allocated accounts refused at start with nothing journaled.

mod live_support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use live_support::*;
use serde_json::Value;

const KLINES: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13.csv";
/// The bars played: 12:00 to 14:00 UTC of that day (the US CPI print at 13:30 moves the
/// price well away from its EMA, where the local model enters; the calm morning it holds).
const FIRST_BAR: usize = 720;
const BARS: usize = 120;
const LAST_BAR_MS: i64 = 1_670_889_600_000 + (FIRST_BAR + BARS - 1) as i64 * 60_000;
const LLM: &str = "llm-btc";
const JS: &str = "churn";
const KEY_ENV: &str = "QF_TEST_LLM_KEY";

/// The played bars of the bundled day, written into `dir`.
fn market(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join(KLINES)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let bars: Vec<&str> = lines.skip(FIRST_BAR).take(BARS).collect();
    assert_eq!(bars.len(), BARS);
    let path = dir.join("bybit_BTCUSDT_1m_2022-12-13_noon.csv");
    std::fs::write(&path, format!("{header}\n{}\n", bars.join("\n"))).unwrap();
    path
}

/// `quantfold llm-sim` on an ephemeral port: (the process, its OpenAI base URL).
fn llm_sim(dir: &Path) -> (Proc, String) {
    let mut command = Command::new(bin());
    command.args(["llm-sim", "--listen", "127.0.0.1:0", "--seed", "7"]);
    let (proc, line) = announcing(command, &dir.join("llm-sim.stderr"));
    (proc, word_after(&line, "openai="))
}

/// An LLM trader file on one-minute BTCUSDT bars, deciding every bar, with gates the local
/// model's entries pass (its confidence starts at 60, its reward:risk is 3).
fn llm_trader_file(dir: &Path, openai: &str, capital: &str) -> PathBuf {
    for file in ["nof0.tmpl", "decision.schema.json"] {
        std::fs::copy(root().join("examples/llm").join(file), dir.join(file)).unwrap();
    }
    let text = format!(
        r#"[[trader]]
id = "{LLM}"
kind = "llm"
template = "nof0.tmpl"
schema = "decision.schema.json"
prompt_version = "v1"
symbols = ["BTCUSDT"]
interval = "1m"
decision_interval = "1m"
klines = 30
stale_after = "5m"
capital = {capital}
leverage = 10
max_slippage_bps = "50"

[trader.risk]
min_confidence = 0
min_risk_reward = "2"
max_positions = 1
max_position_size_usd = "5000"
max_margin_use_pct = "100"
leverage_major_max = 10
leverage_alt_max = 5
major_coins = ["BTCUSDT"]

[[trader.model]]
provider = "openai"
base_url = "{openai}"
model = "gpt-4o-mini"
key_env = "{KEY_ENV}"
priority = 1
timeout_ms = 5000
"#
    );
    let path = dir.join("llm-trader.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A live config: the LLM trader (by its file) and a JavaScript trader, on `kind`.
fn live_config(dir: &Path, kind: &str, server: &Server, llm_file: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"[venue]
kind = "{kind}"
rest_url = "{rest}"
ws_url = "{ws}"
key_env = "QF_TEST_KEY"
secret_env = "QF_TEST_SECRET"
{extra}
[[trader]]
id = "{LLM}"
kind = "llm"
file = "{file}"

[[trader]]
id = "{JS}"
strategy = "{churn}"
symbols = ["BTCUSDT"]
interval = "1m"
capital = "5000"
params = {{ qty = 0.01 }}
"#,
        rest = server.rest,
        ws = server.ws,
        file = llm_file.display(),
        churn = root().join("tests/strategies/churn.js").display(),
    );
    let path = dir.join("live.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `quantfold live` with the model key in the environment too.
fn live_llm(config: &Path, journal: &Path, stderr: &Path) -> Proc {
    live_env(config, journal, stderr, &[], &[(KEY_ENV, "qf-local-llm-key")])
}

fn of<'a>(records: &'a [Value], trader: &str, kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["trader"] == trader && event(r).0 == kind).collect()
}

/// The LLM trader's first cycle that got an answer, as the kinds of its events from the
/// prompt on (up to its first order, or the next prompt).
fn first_answered_cycle(records: &[Value]) -> Vec<String> {
    let mine: Vec<&Value> = records.iter().filter(|r| r["trader"] == LLM).collect();
    for (i, r) in mine.iter().enumerate() {
        if event(r).0 != "LlmPromptRendered" {
            continue;
        }
        let rest: Vec<String> = mine[i..]
            .iter()
            .map(|r| event(r).0.to_owned())
            .enumerate()
            .take_while(|(j, k)| *j == 0 || k != "LlmPromptRendered")
            .map(|(_, k)| k)
            .collect();
        if rest.iter().any(|k| k == "OrderSubmitted") {
            return rest;
        }
    }
    Vec::new()
}

#[test]
fn an_llm_and_a_javascript_trader_share_one_paper_account_and_the_journal_replays() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_model, openai) = llm_sim(dir.path());
    // A bar every 100 ms: time for a model call (a few ms on loopback) between bars.
    let server = server(dir.path(), &market(dir.path()), &["--speed", "600", "--hold"]);
    let llm_file = llm_trader_file(dir.path(), &openai, "5000");
    let config = live_config(dir.path(), "paper", &server, &llm_file, "");
    let journal = dir.path().join("paper");
    let mut live = live_llm(&config, &journal, &dir.path().join("live.stderr"));
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(90));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());

    let records = records(&journal);
    // Set up as a backtest sets up an LLM trader: started, then its resolved configuration.
    assert_eq!(of(&records, LLM, "TraderStarted").len(), 1);
    let loaded = of(&records, LLM, "LlmTraderLoaded");
    assert_eq!(loaded.len(), 1, "one LlmTraderLoaded");
    assert_eq!(event(loaded[0]).1["config"]["models"][0]["key_env"], KEY_ENV);
    assert!(!records.iter().any(|r| r.to_string().contains("qf-local-llm-key")), "the model key was journaled");

    // The LLM trader decided: prompt → answer → decision → gates → order, in that order.
    let cycle = first_answered_cycle(&records);
    let at = |k: &str| cycle.iter().position(|c| c == k).unwrap_or_else(|| panic!("no {k} in the cycle {cycle:?}"));
    assert!(at("LlmResponded") < at("DecisionParsed"), "{cycle:?}");
    assert!(at("DecisionParsed") < at("RiskChecked"), "{cycle:?}");
    assert!(at("RiskChecked") < at("OrderSubmitted"), "{cycle:?}");
    let responded = of(&records, LLM, "LlmResponded");
    assert!(responded.len() >= 5, "the model should answer many cycles: {}", responded.len());
    assert!(
        !of(&records, LLM, "OrderFilled").is_empty(),
        "the LLM trader's entry should fill on paper:\n{}",
        story(&records)
    );
    // Its answers are stepped at the ledger's time: never before the prompt they answer.
    for r in &responded {
        let digest = &event(r).1["digest"];
        let prompt = of(&records, LLM, "LlmPromptRendered")
            .into_iter()
            .rfind(|p| &event(p).1["digest"] == digest && p["seq"].as_u64() < r["seq"].as_u64())
            .expect("the answered prompt");
        assert!(prompt["time_ms"].as_i64() <= r["time_ms"].as_i64(), "{prompt} answered at {r}");
    }
    // The JavaScript trader traded beside it, on its own virtual capital.
    assert!(of(&records, JS, "OrderSubmitted").len() >= 10, "the JavaScript trader should trade");
    assert!(!of(&records, JS, "OrderFilled").is_empty(), "the JavaScript trader's orders should fill");
    assert!(server.log_lines().is_empty(), "paper trading sent orders to the venue");

    // replay verify re-renders every prompt, re-reads every answer and re-runs the simulated
    // exchange: the whole journal is reproduced.
    let report = ok(&["replay", "verify", "--journal", journal.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(report["divergence"].is_null() && report["reproduced"] == true, "{report}");
    assert_eq!(report["venue_rederived"], true, "{report}");

    // A restart after the clean stop resumes the journal (the market has ended): the LLM
    // trader is not loaded twice, and the journal still verifies.
    let mut again = live_llm(&config, &journal, &dir.path().join("live2.stderr"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(again.terminate(Duration::from_secs(20)), Some(0), "{}", again.stderr_text());
    assert_eq!(of(&records_again(&journal), LLM, "LlmTraderLoaded").len(), 1, "reloaded an unchanged trader");
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

/// The LLM trader's gates, orders and notifications, for a failure's message.
fn story(records: &[Value]) -> String {
    let kinds = ["RiskChecked", "OrderSubmitted", "OrderAccepted", "OrderRejected", "OrderCancelled", "OrderFilled"];
    records
        .iter()
        .filter(|r| r["trader"] == LLM && (kinds.contains(&event(r).0) || event(r).0 == "NotificationSent"))
        .map(|r| format!("{} {} {}", r["seq"], r["time_ms"], r["event"]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn records_again(journal: &Path) -> Vec<Value> {
    let out = journal.with_extension("again.jsonl");
    ok(&["journal", "export", journal.to_str().unwrap(), "--jsonl", out.to_str().unwrap()]);
    jsonl(&out)
}

#[test]
fn an_llm_traders_order_reaches_a_live_accounts_venue() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_model, openai) = llm_sim(dir.path());
    let server = server(dir.path(), &market(dir.path()), &["--speed", "240", "--hold", "--partial-above", "0"]);
    let llm_file = llm_trader_file(dir.path(), &openai, "5000");
    let config = live_config(dir.path(), "bybit", &server, &llm_file, "");
    let journal = dir.path().join("live");
    let mut live = live_llm(&config, &journal, &dir.path().join("live.stderr"));
    server.wait_for_bar("BTCUSDT", LAST_BAR_MS, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(live.terminate(Duration::from_secs(20)), Some(0), "{}", live.stderr_text());

    let records = records(&journal);
    let cloids: Vec<String> = of(&records, LLM, "OrderSubmitted")
        .iter()
        .filter_map(|r| event(r).1["cloid"].as_str().map(str::to_owned))
        .collect();
    assert!(!cloids.is_empty(), "the LLM trader should have ordered");
    let at_venue: Vec<Value> = server
        .log_lines()
        .into_iter()
        .filter(|l| l["type"] == "order" && cloids.iter().any(|c| l["orderLinkId"] == c.as_str()))
        .collect();
    assert!(!at_venue.is_empty(), "no LLM order reached the venue (cloids {cloids:?})");
    assert!(!of(&records, LLM, "OrderAccepted").is_empty(), "the venue's ack is journaled");
    ok(&["replay", "verify", "--journal", journal.to_str().unwrap()]);
}

#[test]
fn a_missing_model_key_and_over_allocation_are_refused_at_start() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &market(dir.path()), &["--hold"]);
    let llm_file = llm_trader_file(dir.path(), "http://127.0.0.1:9/v1", "5000");
    let run = |config: &Path, journal: &Path, with_key: bool| {
        let mut command = Command::new(bin());
        command
            .args(["live", "--config", config.to_str().unwrap(), "--journal", journal.to_str().unwrap()])
            .env("QF_TEST_KEY", KEY)
            .env("QF_TEST_SECRET", SECRET)
            .env_remove(KEY_ENV)
            .current_dir(root());
        if with_key {
            command.env(KEY_ENV, "k");
        }
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "should be refused: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!journal.exists(), "a refused start left a journal behind: {err}");
        err
    };

    // No key in the environment: a start-up error naming the variable.
    let config = live_config(dir.path(), "paper", &server, &llm_file, "");
    let err = run(&config, &dir.path().join("j1"), false);
    assert!(err.contains(KEY_ENV) && err.contains("is not set"), "{err}");

    // Paper: 5000 + 5000 of a 9000 account.
    let config = live_config(dir.path(), "paper", &server, &llm_file, "paper_equity = \"9000\"\n");
    let err = run(&config, &dir.path().join("j2"), true);
    assert!(err.contains("live.toml:19:11:") && err.contains("exceed 100%"), "{err}");

    // A live account (the local server's wallet: 10000 USDT) with 96 % in reserve: 400 left,
    // and the first trader (the LLM one, named at its `file`) is past it.
    let config = live_config(dir.path(), "bybit", &server, &llm_file, "\n[limits]\nreserve_pct = \"96\"\n");
    let err = run(&config, &dir.path().join("j3"), true);
    assert!(err.contains("live.toml:") && err.contains("exceed 100%") && err.contains(LLM), "{err}");
}
