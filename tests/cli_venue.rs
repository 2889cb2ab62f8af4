//! `replay verify` of a backtest journal re-runs the simulated exchange: edited,
//! deleted and moved venue answers, and edited, deleted and reordered klines, in
//! journals re-chained so that their hashes are valid, are each caught at the
//! first answer they change; funding end to end with hand-computed cash.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, p, quantfold, text};
use serde_json::Value;

const BYBIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/klines/bybit_BTCUSDT_1m_2022-12-13.csv");
/// The open time of the data's first bar (2022-12-13 00:00 UTC).
const FIRST_BAR_MS: i64 = 1_670_889_600_000;
const HOUR_MS: i64 = 3_600_000;

/// Flat: enters at 45x of 50x, short and long in turn, so positions are open most of the day
/// and are liquidated on moves of about 1.5%.
const LIQUIDATED: &str = r#"
let entries = 0;
function st_heartbeat(ctx, tick) {
  if (ctx.api.getPositions().length > 0 || ctx.api.getOpenOrders().length > 0) return;
  const qty = Math.floor((ctx.api.getBalance().available * 45 / tick.close) * 1000) / 1000;
  if (qty < 0.001) return;
  entries += 1;
  ctx.api.placeOrder({ symbol: tick.symbol, side: entries % 2 ? "sell" : "buy", type: "market", qty: qty });
}
"#;

/// Buys 0.1 on the first bar and holds it.
const HOLD: &str = r#"
let bought = false;
function st_heartbeat(ctx, tick) {
  if (bought) return;
  bought = true;
  ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "market", qty: 0.1 });
}
"#;

/// A funding file: one rate an hour before the first bar, 0.0001 at 08:00, -0.0002 at 16:00.
fn funding_file(dir: &Path) -> PathBuf {
    let file = dir.join("funding.csv");
    let rows = [
        (FIRST_BAR_MS - HOUR_MS, "0.0001"),
        (FIRST_BAR_MS + 8 * HOUR_MS, "0.0001"),
        (FIRST_BAR_MS + 16 * HOUR_MS, "-0.0002"),
    ];
    let body: String = rows.iter().map(|(t, r)| format!("{t},{r}\n")).collect();
    std::fs::write(&file, format!("time_ms,rate\n{body}")).unwrap();
    file
}

/// A journaled backtest of `source` with the funding file; returns the journal and the summary.
fn backtest(dir: &Path, name: &str, source: &str, leverage: &str) -> (PathBuf, Value) {
    let strategy = dir.join(format!("{name}.js"));
    std::fs::write(&strategy, source).unwrap();
    let funding = format!("BTCUSDT={}", funding_file(dir).display());
    let journal = dir.join(name);
    let out = ok(&[
        "backtest",
        "--strategy",
        p(&strategy),
        "--data",
        BYBIT,
        "--leverage",
        leverage,
        "--funding",
        &funding,
        "--journal",
        p(&journal),
        "--out",
        p(&dir.join(format!("{name}-out"))),
        "--format",
        "json",
    ]);
    (journal, serde_json::from_slice(&out.stdout).unwrap())
}

fn export(journal: &Path) -> Vec<Value> {
    let file = journal.with_extension("jsonl");
    ok(&["journal", "export", "--jsonl", p(&file), p(journal)]);
    std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `lines` (the header first), with `edit` applied, imported (re-chained) into a fresh journal.
fn forged(tmp: &Path, lines: &[Value], name: &str, edit: impl FnOnce(&mut Vec<Value>)) -> PathBuf {
    let mut lines = lines.to_vec();
    edit(&mut lines);
    let file = tmp.join(format!("{name}.jsonl"));
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, body).unwrap();
    let dir = tmp.join(name);
    ok(&["journal", "import", p(&dir), "--jsonl", p(&file)]);
    dir
}

fn verify(dir: &Path) -> (bool, Value) {
    let out = quantfold(&["replay", "verify", "--journal", p(dir), "--json"]);
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {}", text(&out.stdout)));
    (out.status.success(), report)
}

fn kind(line: &Value) -> &str {
    line["event"].as_object().and_then(|e| e.keys().next()).map_or("", String::as_str)
}

/// The index of the `n`th line (0-based) whose event is `kind`, after line `from`.
fn nth_line(lines: &[Value], kind_name: &str, from: usize, n: usize) -> usize {
    (from + 1..lines.len())
        .filter(|&i| kind(&lines[i]) == kind_name)
        .nth(n)
        .unwrap_or_else(|| panic!("no {kind_name} #{n} after line {from}"))
}

/// The seq of line `i` of an export (line 0 is the header), as the importer renumbers it.
fn seq_of(i: usize) -> u64 {
    i as u64 - 1
}

/// A decimal string without trailing zeros after the point.
fn number(value: &Value) -> String {
    let s = value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}"));
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// The divergence's seq, parsed as a number, and its kind.
fn divergence(report: &Value) -> (u64, &str) {
    let d = &report["divergence"];
    (d["seq"].as_u64().expect("a numeric seq"), d["kind"].as_str().expect("a kind"))
}

#[test]
fn a_backtest_journal_has_its_venue_answers_rederived_and_tampering_with_them_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    let (journal, _) = backtest(tmp.path(), "liquidated", LIQUIDATED, "50");
    let (reproduced, report) = verify(&journal);
    assert!(reproduced, "{report}");
    assert_eq!(report["venue_rederived"], true, "{report}");
    let lines = export(&journal);
    let count = |k: &str| lines.iter().filter(|l| kind(l) == k).count() as u64;
    let answers = ["OrderAccepted", "OrderCancelled", "OrderFilled", "FundingPaid", "PositionLiquidated"].map(count);
    let answers: u64 = answers.iter().sum();
    assert!(count("PositionLiquidated") > 0 && count("FundingPaid") > 0, "the run must liquidate and pay funding");
    assert_eq!(report["venue_answers_checked"].as_u64(), Some(answers), "every answer re-derived");
    let events = report["events"].as_u64().unwrap();
    let parts = ["inputs", "decisions_checked", "venue_answers_checked"].map(|k| report[k].as_u64().unwrap());
    assert_eq!(parts.iter().sum::<u64>(), events, "every record is an input, a decision or a venue answer");

    // An edited fill: one hundred-millionth more fee.
    let fill = nth_line(&lines, "OrderFilled", 0, 0);
    let dir = forged(tmp.path(), &lines, "edited-fill", |lines| {
        let fee = &mut lines[fill]["event"]["OrderFilled"]["fee_quote"];
        let was = fee.as_str().unwrap().to_owned();
        *fee = Value::String(if was.contains('.') { format!("{was}1") } else { format!("{was}.00000001") });
    });
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(fill), "venue_answer"), "{report}");
    assert_eq!(report["divergence"]["rederived"]["event"], lines[fill]["event"], "the sim's own fill");

    // An invented fill: the fill journaled twice; the sim gave it once.
    let dir = forged(tmp.path(), &lines, "duplicated-fill", |lines| {
        let copy = lines[fill].clone();
        lines.insert(fill + 1, copy);
    });
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(fill + 1), "venue_answer"), "{report}");
    assert!(report["divergence"]["rederived"].is_null(), "the sim derived nothing there: {report}");

    // A deleted funding payment: the sim pays it where the journal has the next record.
    let funding = nth_line(&lines, "FundingPaid", 0, 0);
    let dir = forged(tmp.path(), &lines, "deleted-funding", |lines| {
        lines.remove(funding);
    });
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(funding), "venue_answer"), "{report}");
    assert_eq!(report["divergence"]["rederived"]["event"], lines[funding]["event"]);

    // A liquidation moved past the bar's kline.
    let liquidation = nth_line(&lines, "PositionLiquidated", 0, 0);
    let kline = nth_line(&lines, "KlineReceived", liquidation, 0);
    let dir = forged(tmp.path(), &lines, "moved-liquidation", |lines| {
        let moved = lines.remove(liquidation);
        lines.insert(kline, moved);
    });
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(liquidation), "venue_answer"), "{report}");
    assert_eq!(report["divergence"]["rederived"]["event"], lines[liquidation]["event"]);
    assert_eq!(kind(&report["divergence"]["journaled"]), "KlineReceived");
}

#[test]
fn tampered_klines_in_a_backtest_journal_are_located_at_the_first_venue_answer_they_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (journal, _) = backtest(tmp.path(), "liquidated", LIQUIDATED, "50");
    let lines = export(&journal);
    // The first fill, of a market order decided on the bar before: it fills at the open of
    // the bar whose kline follows it.
    let fill = nth_line(&lines, "OrderFilled", 0, 0);
    let bar = nth_line(&lines, "KlineReceived", fill, 0);
    let next_bar = nth_line(&lines, "KlineReceived", bar, 0);
    let k = |line: usize| lines[line]["event"]["KlineReceived"].clone();
    assert_eq!(lines[fill]["event"]["OrderFilled"]["price"], k(bar)["open"], "a market fill at the open");

    // An edited kline: the bar opens at its high instead. The sim fills at the edited open.
    let high = k(bar)["high"].clone();
    assert_ne!(high, k(bar)["open"], "the edit must change the open");
    let dir = forged(tmp.path(), &lines, "edited-kline", |lines| {
        lines[bar]["event"]["KlineReceived"]["open"] = high.clone();
    });
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(fill), "venue_answer"), "{report}");
    assert_eq!(report["divergence"]["rederived"]["event"]["OrderFilled"]["price"], high);

    // A deleted kline: the order first meets the next bar, and fills at its open and time.
    let dir = forged(tmp.path(), &lines, "deleted-kline", |lines| {
        lines.remove(bar);
    });
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(fill), "venue_answer"), "{report}");
    assert_eq!(report["divergence"]["rederived"]["time_ms"], k(next_bar)["open_time_ms"]);

    // Two klines swapped: the bar that now comes first is the one the order meets.
    let dir = forged(tmp.path(), &lines, "reordered-klines", |lines| lines.swap(bar, next_bar));
    let (reproduced, report) = verify(&dir);
    assert!(!reproduced);
    assert_eq!(divergence(&report), (seq_of(fill), "venue_answer"), "{report}");
    assert_eq!(report["divergence"]["rederived"]["time_ms"], k(next_bar)["open_time_ms"]);
    assert_eq!(report["divergence"]["rederived"]["event"]["OrderFilled"]["price"], k(next_bar)["open"]);
}

#[test]
fn funding_runs_end_to_end_with_hand_computed_cash_and_early_rates_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (journal, summary) = backtest(tmp.path(), "hold", HOLD, "1");
    // Hand-computed (bybit_BTCUSDT_1m_2022-12-13.csv): the buy of 0.1 fills at the second
    // bar's open 17206.64, fee 0.1 x 17206.64 x 0.0010 = 1.720664. Funding is paid at the
    // close of the last bar closed before the funding time: 08:00 at 17159.48 (the 07:58
    // bar), -0.1 x 17159.48 x 0.0001 = -0.1715948; 16:00 at 17750.38 (the 15:58 bar),
    // -0.1 x 17750.38 x -0.0002 = +0.3550076. The rate an hour before the first bar has no
    // price to be paid at: nothing, and the summary says so.
    assert_eq!(number(&summary["funding_net"]), "0.1834128", "{summary}");
    assert_eq!(number(&summary["fees_paid"]), "1.720664", "{summary}");
    let notes: Vec<&str> = summary["data_notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(notes.iter().any(|n| n.starts_with("funding: 1 rates of BTCUSDT before its first price")), "{notes:?}");
    let rebuilt = ok(&["replay", "rebuild", "--journal", p(&journal), "--json"]);
    let state: Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(number(&state["traders"]["hold"]["cash"]), "9998.4627488", "10000 - 1.720664 + 0.1834128");
    assert_eq!(number(&state["traders"]["hold"]["funding_net"]), "0.1834128");

    // All three rates are journaled as inputs; two payments are the sim's answers.
    let lines = export(&journal);
    let rates: Vec<_> = lines.iter().filter(|l| kind(l) == "FundingRateReceived").collect();
    assert_eq!(rates.len(), 3);
    assert_eq!(lines.iter().filter(|l| kind(l) == "FundingPaid").count(), 2);
    let (reproduced, report) = verify(&journal);
    assert!(reproduced, "{report}");
    assert_eq!(report["venue_rederived"], true);
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/journals/golden_sma_cross_bybit_1m.jsonl");

#[test]
fn re_running_the_golden_backtest_reproduces_it_and_its_hand_checked_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let golden: Vec<Value> =
        std::fs::read_to_string(GOLDEN).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // The recorded run (fixtures/klines/README.md), with the strategy the journal stores, at
    // the path it was recorded under.
    let source = golden[3]["event"]["StrategyLoaded"]["source"].as_str().unwrap();
    assert_eq!(golden[3]["event"]["StrategyLoaded"]["file"], "strategies/sma_cross.js");
    std::fs::create_dir(tmp.path().join("strategies")).unwrap();
    std::fs::write(tmp.path().join("strategies/sma_cross.js"), source).unwrap();
    let journal = tmp.path().join("rerun");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quantfold"))
        .current_dir(tmp.path())
        .args(["backtest", "--strategy", "strategies/sma_cross.js", "--data", BYBIT])
        .args(["--params", r#"{"fast":5,"slow":20,"record":false}"#, "--journal", p(&journal)])
        .args(["--out", p(&tmp.path().join("out")), "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Record by record, byte for byte (time, trader, event as exported), but for what
    // follows from the venue's settings that journals start with since the golden one was
    // recorded: one more record at seq 0, so every later seq is one higher, and the client
    // order ids, derived from the seq of the deciding input, are others (in the same order).
    let rerun = export(&journal);
    assert_eq!(kind(&rerun[1]), "VenueConfigured");
    let cloids = |lines: &[Value]| -> Vec<String> {
        let submitted = lines.iter().filter_map(|l| l["event"]["OrderSubmitted"]["cloid"].as_str());
        submitted.map(str::to_owned).collect()
    };
    let renamed: Vec<(String, String)> = cloids(&golden).into_iter().zip(cloids(&rerun)).collect();
    assert_eq!(renamed.len(), cloids(&golden).len().max(cloids(&rerun).len()), "as many orders");
    // And the sandbox limits, journaled in `StrategyLoaded` since schema 2: the golden
    // journal (schema 1) has none, which reads as schema 1's fixed limits; today's run
    // writes the build's, whose restart budget resets after an hour of event time.
    let body = |l: &Value, rename: bool| {
        let mut l = l.clone();
        if let Some(load) = l["event"]["StrategyLoaded"].as_object_mut() {
            load.remove("limits");
        }
        let mut event = l["event"].to_string();
        if rename {
            for (old, new) in &renamed {
                event = event.replace(old, new);
            }
        }
        (l["time_ms"].clone(), l["trader"].clone(), event)
    };
    let a: Vec<_> = golden[1..].iter().map(|l| body(l, true)).collect();
    let b: Vec<_> = rerun[2..].iter().map(|l| body(l, false)).collect();
    assert_eq!(a.len(), b.len());
    if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
        panic!("the re-run differs from the golden journal at its seq {i}:\n{}\n{}", a[i].2, b[i].2);
    }

    // The hand-checked entry: decided at seq 82, filled at 17156.2 with fee 9.47617560.
    let entry = &golden[83];
    assert_eq!((entry["seq"].as_u64(), kind(entry)), (Some(82), "OrderSubmitted"));
    let cloid = entry["event"]["OrderSubmitted"]["cloid"].clone();
    let fill = golden.iter().find(|l| l["event"]["OrderFilled"]["cloid"] == cloid).expect("the entry's fill");
    assert_eq!(fill["event"]["OrderFilled"]["price"], "17156.2");
    assert_eq!(fill["event"]["OrderFilled"]["fee_quote"], "9.47617560");
    // Its round trip: 0.552347 x (17145.38 - 17156.2) = -5.97639454 before fees.
    let trades = std::fs::read_to_string(tmp.path().join("out/trades.csv")).unwrap();
    let trade: Vec<&str> =
        trades.lines().find(|l| l.contains(",17156.2,")).expect("the round trip").split(',').collect();
    assert_eq!((trade[4], trade[5], trade[6], trade[7]), ("0.552347", "17156.2", "17145.38", "-5.97639454"));
    // The final equity: the starting cash plus every round trip's net PnL (the run ends flat).
    let net: Vec<f64> = trades.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    let equity: f64 = summary["final_equity"].as_str().unwrap().parse().unwrap();
    assert!((10_000.0 + net.iter().sum::<f64>() - equity).abs() < 1e-6, "{equity} vs {net:?}");
    let imported = tmp.path().join("golden");
    ok(&["journal", "import", p(&imported), "--jsonl", GOLDEN]);
    let rebuilt: Value =
        serde_json::from_slice(&ok(&["replay", "rebuild", "--journal", p(&imported), "--json"]).stdout).unwrap();
    assert_eq!(rebuilt["traders"]["sma_cross"]["equity"], summary["final_equity"]);
}
