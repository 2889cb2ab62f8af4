//! `quantfold replay ...` as a user runs it: the golden journal, tampering,
//! changed strategies, two runs compared, a killed backtest, and parity.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::{fails_output, ok, p, quantfold, text};
use journal::testkit::stored;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/journals/golden_sma_cross_bybit_1m.jsonl");
const BYBIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/klines/bybit_BTCUSDT_1m_2022-12-13.csv");
const SMA_CROSS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/strategies/sma_cross_every_bar.js");

fn import(jsonl: &Path, dir: &Path) {
    ok(&["journal", "import", p(dir), "--jsonl", p(jsonl)]);
}

/// The golden export, with `edit` applied to its lines, imported (re-chained) into a fresh journal.
fn forged(tmp: &Path, name: &str, edit: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let mut lines: Vec<String> = std::fs::read_to_string(GOLDEN).unwrap().lines().map(str::to_owned).collect();
    edit(&mut lines);
    let file = tmp.join(format!("{name}.jsonl"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let dir = tmp.join(name);
    import(&file, &dir);
    dir
}

/// The index of the first line whose event is `kind` (line 0 is the header).
fn first_line(lines: &[String], kind: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(&format!("{{\"{kind}\"")))
        .unwrap_or_else(|| panic!("no {kind} in the golden journal"))
}

fn verify_json(dir: &Path, extra: &[&str]) -> (bool, serde_json::Value) {
    let mut args = vec!["replay", "verify", "--journal", p(dir), "--json"];
    args.extend_from_slice(extra);
    let out = quantfold(&args);
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("not JSON: {}\n{}", text(&out.stdout), text(&out.stderr))),
    )
}

#[test]
fn the_golden_journal_is_reproduced_by_todays_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("golden");
    import(Path::new(GOLDEN), &dir);
    let out = ok(&["replay", "verify", "--journal", p(&dir)]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ok: 1782 events"), "{stdout}");
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(reproduced);
    // Every derived event was re-derived: events = inputs + decisions (StrategyLoaded counts as a decision here).
    assert_eq!(report["inputs"].as_u64().unwrap() + report["decisions_checked"].as_u64().unwrap(), 1782);
}

#[test]
fn tampering_is_detected_and_located() {
    let tmp = tempfile::tempdir().unwrap();
    let golden: Vec<String> = std::fs::read_to_string(GOLDEN).unwrap().lines().map(str::to_owned).collect();
    let submitted = first_line(&golden, "OrderSubmitted");
    let seq_of = |line: usize| line as u64 - 1;

    // A flipped byte in a stored payload breaks the chain at that record.
    let dir = tmp.path().join("flipped");
    import(Path::new(GOLDEN), &dir);
    {
        let db = sled::open(&dir).unwrap();
        let mut record = stored::record(&db, seq_of(submitted)).unwrap();
        let at = record.len() - 5;
        record[at] ^= 0x20;
        stored::replace(&db, seq_of(submitted), Some(&record));
        db.flush().unwrap();
    }
    let err = text(&fails_output(&["replay", "verify", "--journal", p(&dir)]).stderr);
    assert!(err.contains(&format!("seq {}", seq_of(submitted))), "{err}");

    // An edited decision, re-chained so the hashes are valid: the re-run disagrees at that seq.
    let dir = forged(tmp.path(), "edited", |lines| {
        lines[submitted] = lines[submitted].replacen("\"Buy\"", "\"Sell\"", 1);
    });
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"], seq_of(submitted));
    assert_eq!(report["divergence"]["journaled"]["event"]["OrderSubmitted"]["side"], "Sell");
    assert_eq!(report["divergence"]["rederived"]["event"]["OrderSubmitted"]["side"], "Buy");
    assert!(!report["divergence"]["inputs"].as_array().unwrap().is_empty(), "the inputs that led to it are shown");

    // A deleted decision: the re-run derives it where the journal has the next record.
    let dir = forged(tmp.path(), "deleted", |lines| {
        lines.remove(submitted);
    });
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"], seq_of(submitted));

    // A reordered pair: the decision swapped with the state change after it.
    let dir = forged(tmp.path(), "reordered", |lines| lines.swap(submitted, submitted + 1));
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"], seq_of(submitted));

    // An edited strategy source: its code hash gives it away at the StrategyLoaded record.
    let loaded = first_line(&golden, "StrategyLoaded");
    let dir = forged(tmp.path(), "source", |lines| {
        lines[loaded] = lines[loaded].replacen("fraction: 0.95", "fraction: 0.50", 1);
        assert!(lines[loaded].contains("fraction: 0.50"), "the edit must apply");
    });
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"], seq_of(loaded));
    assert!(report["divergence"]["explanation"].as_str().unwrap().contains("code hash"));
}

#[test]
fn a_changed_strategy_is_located_by_verify_and_counted_by_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("golden");
    import(Path::new(GOLDEN), &dir);

    // The same strategy with one default changed: entries use half the balance.
    let changed = tmp.path().join("sma_cross.js");
    let source = std::fs::read_to_string(SMA_CROSS).unwrap().replacen("fraction: 0.95", "fraction: 0.5", 1);
    std::fs::write(&changed, source).unwrap();
    let override_arg = format!("sma_cross={}", changed.display());
    let (reproduced, report) = verify_json(&dir, &["--strategy", &override_arg]);
    assert!(!reproduced);
    let golden: Vec<String> = std::fs::read_to_string(GOLDEN).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(
        report["divergence"]["seq"],
        first_line(&golden, "OrderSubmitted") as u64 - 1,
        "the first entry order is the first affected decision"
    );
    // The unchanged file reproduces everything through the same override path.
    let same = format!("sma_cross={SMA_CROSS}");
    assert!(verify_json(&dir, &["--strategy", &same]).0);

    // Two runs of the same inputs with one parameter apart.
    let run = |name: &str, params: &str| {
        let journal = tmp.path().join(name);
        ok(&[
            "backtest",
            "--data",
            BYBIT,
            "--params",
            params,
            "--journal",
            p(&journal),
            "--out",
            p(&tmp.path().join(format!("{name}-out"))),
            "--format",
            "json",
        ]);
        journal
    };
    let a = run("a", r#"{"fast":5,"slow":20,"record":false}"#);
    let b = run("b", r#"{"fast":6,"slow":20,"record":false}"#);
    let out = ok(&["replay", "diff", p(&a), p(&b), "--json"]);
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(diff["inputs_differ_at_step"].is_null(), "same market inputs");
    assert!(diff["differing_steps"].as_u64().unwrap() > 0);
    assert!(diff["first"]["a"].is_object() || diff["first"]["b"].is_object());
    let same = ok(&["replay", "diff", p(&a), p(&a), "--json"]);
    let same: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(same["differing_steps"], 0);
    assert_eq!(same["a"]["fills"], same["b"]["fills"]);
}

#[test]
fn a_journaled_backtest_matches_its_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("j");
    let out = ok(&[
        "backtest",
        "--data",
        BYBIT,
        "--journal",
        p(&journal),
        "--out",
        p(&tmp.path().join("out")),
        "--format",
        "json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rebuilt = ok(&["replay", "rebuild", "--journal", p(&journal), "--json"]);
    let rebuilt: serde_json::Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(rebuilt["digest"], summary["state_digest"], "one fold: same final state");
    assert_eq!(rebuilt["traders"]["sma_cross"]["equity"], summary["final_equity"]);
    ok(&["journal", "verify", p(&journal)]);
    // sma_cross declares its averages and is woken on crosses: replay recomputes the averages
    // from the journaled klines and re-derives every decision.
    let (reproduced, report) = verify_json(&journal, &[]);
    assert!(reproduced, "{report}");
    assert!(summary["trades"].as_u64().unwrap() >= 2, "{summary}");
    // The backtest's own run, without a journal, reaches the same equity.
    let plain = ok(&["backtest", "--data", BYBIT, "--out", p(&tmp.path().join("plain")), "--format", "json"]);
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(plain["final_equity"], summary["final_equity"]);
    assert_eq!(plain["trades"], summary["trades"]);
}

#[test]
fn a_killed_journaled_backtest_leaves_a_verifiable_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    // Long enough to be caught in the middle on any machine: 300k bars, every-bar strategy.
    let data = tmp.path().join("BTCUSDT.csv");
    ok(&["data", "synth", "--bars", "300000", "--interval", "1m", "--seed", "3", "--out", p(&data)]);
    let journal = tmp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quantfold"))
        .args([
            "backtest",
            "--strategy",
            SMA_CROSS,
            "--data",
            p(&data),
            "--symbol",
            "BTCUSDT",
            "--journal",
            p(&journal),
        ])
        .args(["--out", p(&tmp.path().join("out"))])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once sled has written a few MiB of blocks: well into the run, far from its end.
    let started = std::time::Instant::now();
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        let written: u64 = std::fs::read_dir(&journal)
            .map(|dir| dir.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        if written > 4 << 20 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the journal never grew");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let verified = ok(&["journal", "verify", p(&journal)]);
    assert!(text(&verified.stdout).starts_with("ok: "), "{}", text(&verified.stdout));
    let rebuilt = ok(&["replay", "rebuild", "--journal", p(&journal), "--json"]);
    let state: serde_json::Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert!(state["last_seq"].as_u64().is_some_and(|s| s > 1000), "{state}");
    // The prefix is a valid journal of decisions too.
    let (reproduced, report) = verify_json(&journal, &[]);
    assert!(reproduced, "{report}");
}

/// A journal as the first release wrote it (`fixtures/journals/wave1_sma_cross_sled`: schema 1,
/// a snapshot of the old state layout, no head file, no segment copy), written by that build's
/// `backtest --to 2017-08-15 --journal`. Today's build verifies it, re-derives every decision,
/// and rebuilds it to the final equity that build's own summary reported.
#[test]
fn a_journal_of_the_first_release_still_verifies_replays_and_rebuilds() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/journals/wave1_sma_cross_sled");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    std::fs::create_dir(&dir).unwrap();
    for file in ["db", "conf"] {
        std::fs::copy(fixture.join(file), dir.join(file)).unwrap();
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("summary_of_the_run.json")).unwrap()).unwrap();

    let verified = text(&ok(&["journal", "verify", p(&dir)]).stdout);
    assert!(
        verified.starts_with("ok: 1162 events, 0 snapshots (1 more of another build's state layout, skipped)"),
        "{verified}"
    );

    let replayed: serde_json::Value =
        serde_json::from_slice(&ok(&["replay", "verify", "--journal", p(&dir), "--json"]).stdout).unwrap();
    assert_eq!(replayed["reproduced"], true, "{replayed}");
    assert_eq!(replayed["decisions_checked"], 31);

    let rebuilt: serde_json::Value =
        serde_json::from_slice(&ok(&["replay", "rebuild", "--journal", p(&dir), "--json"]).stdout).unwrap();
    assert_eq!(rebuilt["traders"]["sma_cross"]["equity"], summary["final_equity"]);
    assert_eq!(rebuilt["traders"]["sma_cross"]["fills"], 29);
}
