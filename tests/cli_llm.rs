//! LLM traders end to end, as a user runs them: `quantfold backtest --trader` against the
//! local model server (`llm_server::serve` on loopback) on bundled real klines, then
//! `quantfold replay verify` of the journal; every fail-closed path through the server's
//! scripted faults; the model chain's fallback and return; the budget's alert and stop; the
//! prompt-digest cache and `--llm-cache`; a changed template and an edited response found by
//! replay at their seq.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{p, text};
use serde_json::Value;

const KLINES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/klines/coinbase_BTCUSD_1h_2017-07_2019-10.csv");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/llm");
const TRADER: &str = "llm-btc";

/// The local model server on its own runtime, for as long as the test holds it.
struct Model {
    server: llm_server::Server,
    _runtime: tokio::runtime::Runtime,
}

impl Model {
    fn start(script: &str) -> Model {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = llm_server::Config { script: llm_server::Script::parse(script).unwrap(), ..Default::default() };
        let server = runtime.block_on(llm_server::serve(config)).unwrap();
        Model { server, _runtime: runtime }
    }
}

/// The example trader, copied into `dir` with its `base_url`s pointing at `model` and `edit`
/// applied to the TOML text; returns the trader file.
fn trader_file(dir: &Path, model: &Model, edit: impl FnOnce(String) -> String) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["nof0.tmpl", "decision.schema.json"] {
        std::fs::copy(Path::new(EXAMPLE).join(file), dir.join(file)).unwrap();
    }
    let toml = std::fs::read_to_string(Path::new(EXAMPLE).join("trader.toml")).unwrap();
    let toml = toml
        .replace("http://127.0.0.1:8089/v1", &model.server.openai_base_url())
        .replace("http://127.0.0.1:8089", &model.server.anthropic_base_url());
    let file = dir.join("trader.toml");
    std::fs::write(&file, edit(toml)).unwrap();
    file
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantfold"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("QF_LLM_KEY", "test-key")
        .output()
        .expect("failed to run quantfold")
}

#[track_caller]
fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "quantfold {args:?} failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    out
}

/// Backtests `trader` from 2018-01-01 to `to` into the journal `journal`; returns the summary.
fn backtest(trader: &Path, journal: &Path, to: &str, extra: &[&str]) -> Value {
    let out_dir = journal.with_extension("reports");
    let mut args = vec![
        "backtest",
        "--trader",
        p(trader),
        "--data",
        KLINES,
        "--from",
        "2018-01-01",
        "--to",
        to,
        "--journal",
        p(journal),
        "--out",
        p(&out_dir),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_slice(&ok(&args).stdout).unwrap()
}

/// Every event of a journal, as JSON objects `{seq, time_ms, trader, event: {Kind: ...}}`.
fn events(journal: &Path) -> Vec<Value> {
    let file = journal.with_extension("jsonl");
    ok(&["journal", "export", p(journal), "--jsonl", p(&file)]);
    std::fs::read_to_string(&file).unwrap().lines().skip(1).map(|l| serde_json::from_str::<Value>(l).unwrap()).collect()
}

fn kind(e: &Value) -> &str {
    match &e["event"] {
        Value::Object(m) => m.keys().next().map_or("", String::as_str),
        Value::String(s) => s,
        _ => "",
    }
}

fn of_kind<'a>(all: &'a [Value], k: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| kind(e) == k).collect()
}

fn verify(journal: &Path, extra: &[&str]) -> (bool, Value) {
    let mut args = vec!["replay", "verify", "--journal", p(journal), "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    (out.status.success(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn notifications(all: &[Value]) -> Vec<String> {
    of_kind(all, "NotificationSent")
        .iter()
        .map(|e| e["event"]["NotificationSent"]["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn backtest_against_the_local_server_then_replay_verify_template_change_and_tampering() {
    let model = Model::start("");
    let tmp = tempfile::tempdir().unwrap();
    let trader = trader_file(tmp.path(), &model, |t| t);
    let journal = tmp.path().join("journal");
    let summary = backtest(&trader, &journal, "2018-01-06", &[]);
    assert!(summary["trades"].as_u64().unwrap() > 0, "the example trader traded: {summary}");
    let all = events(&journal);
    let prompts = of_kind(&all, "LlmPromptRendered");
    let answers = of_kind(&all, "LlmResponded");
    // One decision every 4 hours over 5 days, each asked over HTTP once.
    assert!(prompts.len() >= 25, "{} prompts", prompts.len());
    assert_eq!(answers.len(), prompts.len());
    assert_eq!(model.server.request_count(), prompts.len() as u64);
    assert!(!of_kind(&all, "RiskChecked").is_empty());
    assert!(!of_kind(&all, "OrderSubmitted").is_empty());
    // The prompt text is stored the first time its digest appears (here: every time).
    assert!(prompts.iter().all(|e| e["event"]["LlmPromptRendered"]["prompt"].is_string()));
    // No secret in the journal.
    assert!(!std::fs::read_to_string(journal.with_extension("jsonl")).unwrap().contains("test-key"));

    let (passed, report) = verify(&journal, &[]);
    assert!(passed, "replay verify failed: {report}");
    assert!(report["divergence"].is_null());

    // A changed template diverges at the first prompt it changes: the first one here.
    let changed = tmp.path().join("changed.tmpl");
    let template = std::fs::read_to_string(tmp.path().join("nof0.tmpl")).unwrap();
    std::fs::write(&changed, template.replace("default to HOLD", "default to HOLD, always")).unwrap();
    let (passed, report) = verify(&journal, &["--template", &format!("{TRADER}={}", p(&changed))]);
    assert!(!passed);
    assert_eq!(report["divergence"]["seq"], prompts[0]["seq"], "{report}");
    assert_eq!(report["divergence"]["kind"], "decision");
    // The same template given as an override changes nothing.
    let same = tmp.path().join("same.tmpl");
    std::fs::write(&same, &template).unwrap();
    let (passed, report) = verify(&journal, &["--template", &format!("{TRADER}={}", p(&same))]);
    assert!(passed, "{report}");

    // An edited response (the confidence of an entry), re-chained: caught where the trader
    // re-reads it, the DecisionParsed right after the edited LlmResponded.
    let jsonl = journal.with_extension("jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&jsonl).unwrap().lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"LlmResponded\"") && l.contains("buy_to_enter"))
        .or_else(|| lines.iter().position(|l| l.contains("\"LlmResponded\"") && l.contains("sell_to_enter")))
        .expect("an entry among the answers");
    let mut record: Value = serde_json::from_str(&lines[at]).unwrap();
    let raw = record["event"]["LlmResponded"]["raw"].as_str().unwrap().to_owned();
    let mut body: Value = serde_json::from_str(&raw).unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    let mut decision: Value = serde_json::from_str(&content).unwrap();
    decision["confidence"] = Value::from(99);
    body["choices"][0]["message"]["content"] = Value::String(decision.to_string());
    record["event"]["LlmResponded"]["raw"] = Value::String(body.to_string());
    let edited_seq = record["seq"].as_u64().unwrap();
    lines[at] = record.to_string();
    let forged_file = tmp.path().join("forged.jsonl");
    std::fs::write(&forged_file, lines.join("\n") + "\n").unwrap();
    let forged = tmp.path().join("forged");
    ok(&["journal", "import", p(&forged), "--jsonl", p(&forged_file)]);
    // The re-chained journal's chain is sound: only re-deriving finds the edit.
    ok(&["journal", "verify", p(&forged)]);
    let (passed, report) = verify(&forged, &[]);
    assert!(!passed);
    assert_eq!(report["divergence"]["seq"].as_u64(), Some(edited_seq + 1), "{report}");
    assert_eq!(
        report["divergence"]["journaled"]["event"].as_object().and_then(|m| m.keys().next().cloned()).as_deref(),
        Some("DecisionParsed")
    );
}

#[test]
fn every_unusable_answer_fails_closed_falls_back_and_returns_to_the_primary() {
    // Requests 1-5: unusable answers of every kind (the primary fails twice, falls back; the
    // fallback fails three times more, and has no model after it); 6-8 good (three successes
    // on the fallback: back to the primary); 9: an exhausted quota (no answer at all).
    let model = Model::start("malformed_json@1,schema_violation@2,refusal@3,length@4,bad_body@5,quota@9");
    let tmp = tempfile::tempdir().unwrap();
    let trader = trader_file(tmp.path(), &model, |t| t);
    let journal = tmp.path().join("journal");
    backtest(&trader, &journal, "2018-01-03", &[]);
    let all = events(&journal);
    let parsed = of_kind(&all, "DecisionParsed");
    let invalid: Vec<_> = parsed.iter().filter(|e| e["event"]["DecisionParsed"]["valid"] == false).collect();
    assert_eq!(invalid.len(), 5, "five unusable answers: {invalid:?}");
    let failed = of_kind(&all, "LlmFailed");
    assert_eq!(failed.len(), 1);
    // Fail closed: no order in any cycle whose answer was unusable. The first valid decision
    // comes with request 6, so nothing is ordered before it.
    let first_valid =
        parsed.iter().find(|e| e["event"]["DecisionParsed"]["valid"] == true).unwrap()["seq"].as_u64().unwrap();
    assert!(of_kind(&all, "OrderSubmitted").iter().all(|e| e["seq"].as_u64().unwrap() > first_valid));
    let notes = notifications(&all);
    assert!(notes.iter().filter(|n| n.starts_with("no decision")).count() >= 6, "{notes:?}");
    // The chain: primary -> fallback after two failures, back after three successes.
    let switches = of_kind(&all, "LlmModelSwitched");
    let moves: Vec<(String, String)> = switches
        .iter()
        .map(|e| {
            let s = &e["event"]["LlmModelSwitched"];
            (s["from"].as_str().unwrap().to_owned(), s["to"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        moves[..2],
        [
            ("gpt-4o-mini".to_owned(), "claude-sonnet-4-5".to_owned()),
            ("claude-sonnet-4-5".to_owned(), "gpt-4o-mini".to_owned())
        ],
        "{moves:?}"
    );
    // Requests 3 to 8 went to the fallback (Anthropic), 9 to the primary again.
    let apis: Vec<String> = model.server.requests().iter().map(|r| format!("{:?}", r.api)).collect();
    assert!(apis[..2].iter().all(|a| a.contains("OpenAi") || a.contains("Openai")), "{apis:?}");
    assert!(apis[2..8].iter().all(|a| a.contains("Anthropic")), "{apis:?}");
    let (passed, report) = verify(&journal, &[]);
    assert!(passed, "{report}");
}

#[test]
fn budget_alert_then_stop_and_the_next_day_trades_again() {
    let model = Model::start("");
    let tmp = tempfile::tempdir().unwrap();
    // About 370 tokens a call: the alert at 80 % of 1000 comes with the third call, the stop
    // before the fourth.
    let trader = trader_file(tmp.path(), &model, |t| t.replace("tokens_per_day = 200000", "tokens_per_day = 1000"));
    let journal = tmp.path().join("journal");
    backtest(&trader, &journal, "2018-01-02T12:00:00Z", &[]);
    let all = events(&journal);
    let notes = notifications(&all);
    assert_eq!(notes.iter().filter(|n| n.starts_with("budget alert")).count(), 2, "one alert a day: {notes:?}");
    let skipped = of_kind(&all, "LlmCycleSkipped");
    assert!(skipped
        .iter()
        .all(|e| e["event"]["LlmCycleSkipped"]["reason"].as_str().unwrap().starts_with("budget exhausted")));
    // Six decisions a day: on day 1 three calls, then three cycles skipped; on day 2 (until
    // 12:00) three calls again, then one skipped.
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    let responded: Vec<i64> = of_kind(&all, "LlmResponded").iter().map(|e| e["time_ms"].as_i64().unwrap()).collect();
    let day = |t: i64| t.div_euclid(86_400_000);
    assert_eq!(responded.iter().filter(|t| day(**t) == day(responded[0])).count(), 3);
    assert!(responded.iter().any(|t| day(*t) > day(responded[0])));
    let (passed, report) = verify(&journal, &[]);
    assert!(passed, "{report}");
}

#[test]
fn the_digest_cache_and_the_cache_journal_answer_without_a_call() {
    let model = Model::start("");
    let tmp = tempfile::tempdir().unwrap();
    // A template whose text never changes: one digest for every cycle.
    let trader = trader_file(tmp.path(), &model, |t| t.replace("cache_ttl = \"0\"", "cache_ttl = \"8h\""));
    std::fs::write(
        tmp.path().join("nof0.tmpl"),
        "Version: v1\nsymbol: BTCUSD current_price: 100 ema20: 100 rsi14: 50 account_value: 10000\n",
    )
    .unwrap();
    let journal = tmp.path().join("journal");
    backtest(&trader, &journal, "2018-01-02", &[]);
    let all = events(&journal);
    let answers = of_kind(&all, "LlmResponded");
    let hits = of_kind(&all, "LlmCacheHit");
    // Decisions at 01, 04, 08, 12, 16, 20 and 00 h: a call at 01 h answers 04 and 08 h (within
    // 8 h), one at 12 h answers 16 and 20 h, one at 00 h.
    assert_eq!((answers.len(), hits.len()), (3, 4));
    assert_eq!(hits[0]["event"]["LlmCacheHit"]["original_seq"], answers[0]["seq"]);
    assert_eq!(model.server.request_count(), answers.len() as u64);
    // Only the first prompt carries the text: the digest is stored once.
    let texts = of_kind(&all, "LlmPromptRendered")
        .iter()
        .filter(|e| e["event"]["LlmPromptRendered"]["prompt"].is_string())
        .count();
    assert_eq!(texts, 1);
    let (passed, report) = verify(&journal, &[]);
    assert!(passed, "{report}");

    // --llm-cache: the same run answered from the first journal, no model call at all.
    let before = model.server.request_count();
    let again = tmp.path().join("again");
    backtest(&trader, &again, "2018-01-02", &["--llm-cache", p(&journal)]);
    assert_eq!(model.server.request_count(), before);
    assert_eq!(of_kind(&events(&again), "LlmResponded").len(), answers.len());
}

#[test]
fn a_template_without_its_version_header_is_refused_at_start() {
    let model = Model::start("");
    let tmp = tempfile::tempdir().unwrap();
    let trader = trader_file(tmp.path(), &model, |t| t.replace("prompt_version = \"v1\"", "prompt_version = \"v2\""));
    let out =
        run(&["backtest", "--trader", p(&trader), "--data", KLINES, "--from", "2018-01-01", "--to", "2018-01-02"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("nof0.tmpl") && err.contains("line 1") && err.contains("v2"), "{err}");
    assert_eq!(model.server.request_count(), 0);
}

#[test]
fn the_overall_budget_stops_every_trader_at_its_limit_and_replays() {
    let model = Model::start("");
    let tmp = tempfile::tempdir().unwrap();
    // Two traders in one file, each with a budget of its own far from reached, and 1000
    // tokens a day for both together (about 370 a call).
    let trader = trader_file(tmp.path(), &model, |t| {
        let t = t.replace("capital = 10000", "capital = 5000");
        let second = t[t.find("[[trader]]").unwrap()..].replace("id = \"llm-btc\"", "id = \"llm-two\"");
        format!("[overall_budget]\ntokens_per_day = 1000\nalert_pct = 50\n\n{t}\n{second}")
    });
    let journal = tmp.path().join("journal");
    backtest(&trader, &journal, "2018-01-03", &[]);
    let all = events(&journal);
    let day = |e: &Value| e["time_ms"].as_i64().unwrap().div_euclid(86_400_000);
    let tokens = |e: &Value| {
        let r = &e["event"]["LlmResponded"];
        r["tokens_prompt"].as_u64().unwrap() + r["tokens_completion"].as_u64().unwrap()
    };
    // Walking the journal in order: no prompt is rendered once the day's answers of both
    // traders together reached the limit, and every cycle after it says why.
    let (mut today, mut used, mut overall_skips, mut calls) = (i64::MIN, 0u64, 0, 0);
    let mut days_past_half = std::collections::BTreeSet::new();
    for e in &all {
        if day(e) != today {
            (today, used) = (day(e), 0);
        }
        match kind(e) {
            "LlmResponded" => {
                used += tokens(e);
                if used >= 500 {
                    days_past_half.insert(today);
                }
            }
            "LlmPromptRendered" => {
                assert!(used < 1000, "a prompt after the overall budget was used up: {e}");
                calls += 1;
            }
            "LlmCycleSkipped" => {
                let reason = e["event"]["LlmCycleSkipped"]["reason"].as_str().unwrap();
                assert!(reason.starts_with("overall budget exhausted"), "{reason}");
                assert!(used >= 1000, "skipped under the limit: {e}");
                overall_skips += 1;
            }
            _ => {}
        }
    }
    let traders: std::collections::BTreeSet<&str> =
        of_kind(&all, "LlmResponded").iter().map(|e| e["trader"].as_str().unwrap()).collect();
    assert_eq!(traders.len(), 2, "both traders called: {traders:?}");
    assert!(overall_skips >= 4 && calls >= 4, "skips {overall_skips}, calls {calls}");
    let alerts: Vec<String> =
        notifications(&all).into_iter().filter(|n| n.starts_with("overall budget alert")).collect();
    assert!(days_past_half.len() >= 2);
    assert_eq!(alerts.len(), days_past_half.len(), "one overall alert a day past 50 %: {alerts:?}");
    let (passed, report) = verify(&journal, &[]);
    assert!(passed, "{report}");
}

#[test]
fn bench_llm_prints_its_measurements() {
    let out = ok(&["bench", "llm", "--decisions", "20", "--traders", "3", "--rounds", "2"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    let ordered = |p: &Value| {
        let (p50, p99, max) =
            (p["p50_us"].as_u64().unwrap(), p["p99_us"].as_u64().unwrap(), p["max_us"].as_u64().unwrap());
        assert!(p50 <= p99 && p99 <= max, "{report}");
    };
    assert_eq!(report["target"]["decision_p99_us_max"], 1000, "{report}");

    // The overhead: exactly the decisions asked for, each rendered, answered, parsed, once.
    let overhead = &report["overhead"];
    assert_eq!(overhead["decisions"], 20, "{report}");
    assert!(overhead["target_met"].is_boolean(), "{report}");
    for part in [&overhead["decision_us"], &overhead["baseline_bar_without_decision_us"]] {
        ordered(part);
    }
    for part in ["prompt_us", "answer_us", "model_rule_us_excluded"] {
        ordered(&overhead["breakdown"][part]);
    }
    let outcomes = overhead["decision_us_by_outcome"].as_object().unwrap();
    assert_eq!(outcomes.values().map(|o| o["decisions"].as_u64().unwrap()).sum::<u64>(), 20, "{report}");
    outcomes.values().for_each(ordered);
    let journaled = &overhead["journaled"];
    for kind in ["LlmPromptRendered", "LlmResponded", "DecisionParsed"] {
        assert_eq!(journaled[kind], 20, "{kind}: {report}");
    }
    let signals: u64 = journaled["signals"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(signals, 20, "every answer is a valid decision: {report}");
    assert!(overhead["events_journaled_per_decision"].as_f64().unwrap() >= 4.0, "{report}");

    // The traders against the local server: one call per trader per round, all answered.
    let traders = &report["traders"];
    assert_eq!((traders["traders"].as_u64(), traders["rounds"].as_u64()), (Some(3), Some(2)), "{report}");
    assert_eq!(traders["decisions"], 6, "{report}");
    assert_eq!(traders["server_requests"], 6, "{report}");
    assert_eq!(traders["failed_calls"], 0, "{report}");
    assert_eq!(traders["journaled"]["LlmResponded"], 6, "{report}");
    assert!(traders["decisions_per_s"].as_f64().unwrap() > 0.0, "{report}");
    for part in ["decision_us", "http_round_trip_us", "bar_with_all_prompts_us"] {
        ordered(&traders[part]);
    }
}
