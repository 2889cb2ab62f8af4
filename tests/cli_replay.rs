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

/// The seq (parsed as a number) and the kind of problem of a chain error, `...: seq N: problem: ...`.
fn corrupt_at(err: &str) -> (u64, &str) {
    let (_, after) = err.split_once(": seq ").unwrap_or_else(|| panic!("no seq in {err}"));
    let (seq, problem) = after.split_once(": ").unwrap_or_else(|| panic!("no problem in {err}"));
    let kind = problem.split(':').next().unwrap_or_default().trim();
    (seq.parse().unwrap_or_else(|_| panic!("seq {seq:?} is not a number")), kind)
}

/// The golden export's lines as JSON (line 0 is the header).
fn golden_json() -> Vec<serde_json::Value> {
    std::fs::read_to_string(GOLDEN).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The golden export with `edit` applied to its lines as JSON, imported (re-chained).
fn forged_json(tmp: &Path, name: &str, edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> PathBuf {
    let mut lines = golden_json();
    edit(&mut lines);
    forged(tmp, name, |text| *text = lines.iter().map(ToString::to_string).collect())
}

fn is_kline(line: &serde_json::Value) -> bool {
    line["event"].get("KlineReceived").is_some()
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
    assert_eq!(corrupt_at(&err), (seq_of(submitted), "hash mismatch"), "{err}");

    // An edited decision, re-chained so the hashes are valid: the re-run disagrees at that seq.
    let dir = forged(tmp.path(), "edited", |lines| {
        lines[submitted] = lines[submitted].replacen("\"Buy\"", "\"Sell\"", 1);
    });
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"], seq_of(submitted));
    assert_eq!(report["divergence"]["journaled"]["event"]["OrderSubmitted"]["side"], "Sell");
    assert_eq!(report["divergence"]["rederived"]["event"]["OrderSubmitted"]["side"], "Buy");
    let inputs: Vec<u64> = report["divergence"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|input| input["seq"].as_u64().unwrap_or_else(|| panic!("an input record, not {input}")))
        .collect();
    assert!(!inputs.is_empty(), "the inputs that led to it are shown");
    assert!(inputs.windows(2).all(|w| w[0] < w[1]), "oldest first: {inputs:?}");
    assert!(*inputs.last().unwrap() < seq_of(submitted), "all before the divergence: {inputs:?}");

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
fn tampered_inputs_are_located_at_the_first_decision_they_change() {
    // The golden journal predates VenueConfigured: its venue answers are inputs, so what
    // verify re-derives from an edited kline is the strategy's decisions.
    let tmp = tempfile::tempdir().unwrap();
    let golden = golden_json();
    // The hand-checked entry (fixtures/klines/README.md): decided at seq 82 on the kline at seq 81.
    let submitted = 83;
    assert_eq!(
        (golden[submitted]["seq"].as_u64(), golden[submitted]["event"]["OrderSubmitted"]["side"].as_str()),
        (Some(82), Some("Buy"))
    );
    let trigger = submitted - 1;
    assert!(is_kline(&golden[trigger]) && is_kline(&golden[trigger - 1]));
    let (reproduced, report) = verify_json(&import_golden(tmp.path()), &[]);
    assert!(reproduced && report["venue_rederived"] == false, "{report}");
    assert!(report["venue"].as_str().unwrap().contains("no VenueConfigured"), "{report}");

    // An edited kline: the bar that made the fast average cross closes far lower; no entry.
    let dir = forged_json(tmp.path(), "edited-kline", |lines| {
        lines[trigger]["event"]["KlineReceived"]["close"] = "17000".into();
    });
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"].as_u64(), Some(seq_of(submitted)), "{report}");
    assert_eq!(report["divergence"]["kind"], "underived", "the journal's entry is derived no more");

    // A deleted kline: the entry now sits where the kline was, after a bar that decided nothing.
    let dir = forged_json(tmp.path(), "deleted-kline", |lines| {
        lines.remove(trigger);
    });
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"].as_u64(), Some(seq_of(trigger)), "{report}");
    assert_eq!(report["divergence"]["kind"], "underived");

    // Two klines swapped: the closes the averages cover at the decision are the same, so the
    // entry is still decided there, but sized at the other bar's close.
    let dir = forged_json(tmp.path(), "reordered-klines", |lines| lines.swap(trigger - 1, trigger));
    let (reproduced, report) = verify_json(&dir, &[]);
    assert!(!reproduced);
    assert_eq!(report["divergence"]["seq"].as_u64(), Some(seq_of(submitted)), "{report}");
    assert_eq!(report["divergence"]["kind"], "decision");
    let qty = |side: &str| report["divergence"][side]["event"]["OrderSubmitted"]["qty"].clone();
    assert_ne!(qty("journaled"), qty("rederived"));

    // What re-derivation cannot see: two warm-up klines swapped change no decision. The
    // journal is reproduced; only its head hash, which pins the inputs, tells it apart.
    let dir = forged_json(tmp.path(), "reordered-warmup", |lines| lines.swap(4, 5));
    let (reproduced, swapped) = verify_json(&dir, &[]);
    assert!(reproduced, "{swapped}");
    assert_ne!(swapped["head"], report_of_golden(tmp.path())["head"]);
}

fn seq_of(line: usize) -> u64 {
    line as u64 - 1
}

fn import_golden(tmp: &Path) -> PathBuf {
    let dir = tmp.join("golden");
    if !dir.exists() {
        import(Path::new(GOLDEN), &dir);
    }
    dir
}

fn report_of_golden(tmp: &Path) -> serde_json::Value {
    verify_json(&import_golden(tmp), &[]).1
}

#[test]
fn diff_counts_differing_decisions_inputs_and_length() {
    let tmp = tempfile::tempdir().unwrap();
    let golden = import_golden(tmp.path());
    let lines = golden_json();
    let diff = |a: &Path, b: &Path| -> serde_json::Value {
        serde_json::from_slice(&ok(&["replay", "diff", p(a), p(b), "--json"]).stdout).unwrap()
    };
    // Steps are cut at market inputs; step 0 is what comes before the first one, so a
    // decision belongs to step k after the k-th kline.
    let klines_before = |line: usize| lines[..line].iter().filter(|l| is_kline(l)).count() as u64;

    let same = diff(&golden, &golden);
    assert_eq!((same["identical"].as_bool(), same["steps_only_in_a"].as_u64()), (Some(true), Some(0)));

    // One edited decision: one step differs, by two decisions (its two versions).
    let submitted = lines.iter().position(|l| l["event"].get("OrderSubmitted").is_some()).unwrap();
    let edited = forged_json(tmp.path(), "edited-decision", |lines| {
        lines[submitted]["event"]["OrderSubmitted"]["qty"] = "0.5".into();
    });
    let d = diff(&golden, &edited);
    assert_eq!((d["differing_steps"].as_u64(), d["differing_decisions"].as_u64()), (Some(1), Some(2)), "{d}");
    assert_eq!(d["first"]["step"].as_u64(), Some(klines_before(submitted)));
    assert!(d["inputs_differ_at_step"].is_null() && d["identical"] == false);

    // Different inputs: an edited kline is named by its step.
    let kline = lines.iter().rposition(is_kline).unwrap() - 100;
    assert!(is_kline(&lines[kline]));
    let other = forged_json(tmp.path(), "other-inputs", |lines| {
        lines[kline]["event"]["KlineReceived"]["volume"] = "1".into();
    });
    assert_eq!(diff(&golden, &other)["inputs_differ_at_step"].as_u64(), Some(klines_before(kline) + 1));

    // A journal against its own prefix: no decision differs, the length does.
    let cut = kline;
    let prefix = forged_json(tmp.path(), "prefix", |lines| lines.truncate(cut));
    let rest = lines[cut..].iter().filter(|l| is_kline(l)).count() as u64;
    let d = diff(&golden, &prefix);
    assert_eq!(d["differing_steps"].as_u64(), Some(0), "{d}");
    assert_eq!((d["steps_only_in_a"].as_u64(), d["steps_only_in_b"].as_u64()), (Some(rest), Some(0)), "{d}");
    assert_eq!(d["identical"], false);
    let d = diff(&prefix, &golden);
    assert_eq!((d["steps_only_in_a"].as_u64(), d["steps_only_in_b"].as_u64()), (Some(0), Some(rest)));
    let text = text(&ok(&["replay", "diff", p(&golden), p(&prefix)]).stdout);
    assert!(text.contains(&format!("A goes on for {rest} steps after the other ends")), "{text}");
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
