//! `quantfold backtest`, `strategy check` and `data synth` as a user runs them.

mod common;

use std::path::PathBuf;

use common::{fails, ok, p, text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    root().join("fixtures/klines").join(name).display().to_string()
}

#[test]
fn default_backtest_prints_json_only_and_writes_every_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = ok(&["backtest", "--format", "json", "--out", p(&out_dir)]);
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout must be exactly the JSON summary");
    assert_eq!(summary["bars"], 20111, "the bundled hourly fixture has 20111 bars");
    assert_eq!(summary["strategy"], "sma_cross");
    assert!(summary["trades"].as_u64().unwrap() > 10);
    assert_eq!(summary["anomalies"], 0);
    for file in [
        "summary.json",
        "trades.csv",
        "equity.csv",
        "series.csv",
        "trades.parquet",
        "equity.parquet",
        "series.parquet",
        "report.html",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && !html.contains("https://") && !html.contains("http://"),
        "self-contained with charts"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written, summary);
}

#[test]
fn the_summary_table_reads_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&["backtest", "--data", &fixture("bybit_BTCUSDT_1m_2022-12-13.csv"), "--out", p(tmp.path())]);
    let table = text(&out.stdout);
    // The first cell of each row that holds a metric, top to bottom.
    let rows: Vec<&str> = table
        .lines()
        .filter_map(|l| l.trim_start_matches('│').split('┆').next())
        .map(str::trim)
        .filter(|cell| {
            !cell.is_empty() && *cell != "metric" && cell.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .collect();
    let want = [
        "total_return_pct",
        "cagr_pct",
        "sharpe",
        "sortino",
        "max_drawdown_pct",
        "calmar",
        "trades",
        "win_rate_pct",
        "profit_factor",
        "avg_trade_duration",
        "exposure_pct",
        "fees_paid",
    ];
    assert_eq!(rows[..want.len()], want, "{table}");
    assert_eq!(rows.last(), Some(&"state_digest"), "the bookkeeping last:\n{table}");
}

#[test]
fn every_bad_data_file_is_named_with_its_line() {
    // (file, the 1-based line of its one defect, or 0 when the defect is the whole file)
    let cases = [
        ("bad_blank_line.csv", 4),
        ("bad_close_outside.csv", 6),
        ("bad_duplicate_time.csv", 5),
        ("bad_empty_field.csv", 5),
        ("bad_high_below_low.csv", 5),
        ("bad_missing_header.csv", 1),
        ("bad_negative_price.csv", 3),
        ("bad_negative_volume.csv", 6),
        ("bad_nonfinite.csv", 5),
        ("bad_off_grid.csv", 5),
        ("bad_open_outside.csv", 4),
        ("bad_out_of_order.csv", 6),
        ("bad_too_few_columns.csv", 4),
        ("bad_too_many_columns.csv", 3),
        ("bad_unparseable.csv", 4),
        ("bad_wrong_header.csv", 1),
        ("bad_zero_price.csv", 4),
        ("bad_empty.csv", 0),
        ("bad_header_only.csv", 0),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (file, line) in cases {
        let err =
            fails(&["backtest", "--data", &fixture(file), "--symbol", "TEST", "--out", p(&tmp.path().join(file))]);
        assert!(err.contains(file), "{file}: error does not name the file: {err}");
        if line > 0 {
            assert!(err.contains(&format!("{file}:{line}")), "{file}: want line {line}: {err}");
        }
    }
}

#[test]
fn a_missing_data_file_and_bad_arguments_are_refused() {
    let err = fails(&["backtest", "--data", "no/such/file.csv"]);
    assert!(err.contains("no/such/file.csv"), "{err}");
    let err = fails(&["backtest", "--params", "{not json"]);
    assert!(err.contains("--params"), "{err}");
    let err = fails(&["backtest", "--from", "yesterday"]);
    assert!(err.contains("--from"), "{err}");
    let err = fails(&["backtest", "--data", &fixture("bybit_BTCUSDT_1m_2022-12-13.csv"), "--interval", "5m"]);
    assert!(err.contains("bybit_BTCUSDT_1m_2022-12-13.csv") && err.contains("interval"), "{err}");
}

#[test]
fn a_broken_strategy_is_named_with_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.js");
    std::fs::write(&bad, "function st_heartbeat(ctx, tick) {\n  let x = ;\n}\n").unwrap();
    let err = fails(&["strategy", "check", p(&bad)]);
    assert!(err.contains("broken.js:2:11"), "{err}");
    let err = fails(&["backtest", "--strategy", p(&bad)]);
    assert!(err.contains("broken.js:2:11"), "{err}");

    let no_heartbeat = tmp.path().join("idle.js");
    std::fs::write(&no_heartbeat, "function st_init(ctx) {}\n").unwrap();
    let err = fails(&["strategy", "check", p(&no_heartbeat)]);
    assert!(err.contains("idle.js: defines no st_heartbeat function; it would never trade"), "{err}");
    let err = fails(&["backtest", "--strategy", p(&no_heartbeat)]);
    assert!(err.contains("idle.js: defines no st_heartbeat function"), "{err}");
}

#[test]
fn strategy_check_lists_hooks_params_and_init() {
    let out = ok(&["strategy", "check", "strategies/sma_cross.js"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("hooks: st_init, st_heartbeat, st_exit"), "{stdout}");
    assert!(stdout.contains(r#""fast":10"#) && stdout.contains(r#""slow":30"#), "{stdout}");
    assert!(stdout.contains("st_init returned"), "{stdout}");
}

#[test]
fn a_grid_sweep_runs_every_combination_and_sorts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&[
        "backtest",
        "--data",
        &fixture("bybit_BTCUSDT_1m_2022-12-13.csv"),
        "--grid",
        "fast=5..10:5,slow=20..30:10",
        "--sort",
        "total_return_pct",
        "--format",
        "json",
        "--out",
        p(tmp.path()),
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 4, "2 x 2 combinations");
    let returns: Vec<f64> = rows.iter().map(|r| r["summary"]["total_return_pct"].as_f64().unwrap()).collect();
    assert!(returns.windows(2).all(|w| w[0] >= w[1]), "sorted descending: {returns:?}");
    let csv = std::fs::read_to_string(tmp.path().join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "header + 4 rows:\n{csv}");
    assert_eq!(
        csv.lines().next(),
        Some(
            "fast,slow,total_return_pct,sharpe,sortino,max_drawdown_pct,calmar,trades,win_rate_pct,profit_factor,final_equity"
        ),
        "the summary's order"
    );
    // The JSON text keeps the summary's order (a parsed `Value` would sort it).
    let json = text(&out.stdout);
    let at = |key: &str| json.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} missing"));
    assert!(at("total_return_pct") < at("cagr_pct") && at("profit_factor") < at("anomalies"), "{json}");
    // Each combination equals a single run with the same params.
    let best = &rows[0];
    let single = ok(&[
        "backtest",
        "--data",
        &fixture("bybit_BTCUSDT_1m_2022-12-13.csv"),
        "--params",
        &best["params"].to_string(),
        "--format",
        "json",
        "--out",
        p(&tmp.path().join("single")),
    ]);
    let single: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
    assert_eq!(single["state_digest"], best["summary"]["state_digest"]);
}

#[test]
fn synthetic_data_is_seeded_and_backtests() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("synth_BTCUSDT_1m_a.csv");
    let b = tmp.path().join("synth_BTCUSDT_1m_b.csv");
    ok(&["data", "synth", "--bars", "3000", "--seed", "7", "--out", p(&a)]);
    ok(&["data", "synth", "--bars", "3000", "--seed", "7", "--out", p(&b)]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed, same bytes");
    let out = ok(&["backtest", "--data", p(&a), "--format", "json", "--out", p(&tmp.path().join("r"))]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["bars"], 3000);
    assert_eq!(summary["symbols"][0], "BTCUSDT");
}

#[test]
fn an_instruments_file_overrides_the_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("instruments.toml");
    std::fs::write(
        &file,
        "[BTCUSDT]\ntick_size = \"0.5\"\nqty_step = \"0.01\"\nmin_qty = \"0.01\"\nmax_leverage = \"3\"\n",
    )
    .unwrap();
    let journal = tmp.path().join("j");
    ok(&[
        "backtest",
        "--data",
        &fixture("bybit_BTCUSDT_1m_2022-12-13.csv"),
        "--instruments",
        p(&file),
        "--journal",
        p(&journal),
        "--out",
        p(&tmp.path().join("o")),
    ]);
    // The run starts with the venue's settings, then the instrument.
    let out = ok(&["journal", "inspect", p(&journal), "--json", "--from", "1", "--limit", "1"]);
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let instrument = &first["event"]["InstrumentDefined"];
    assert_eq!(instrument["tick_size"], "0.5");
    assert_eq!(instrument["qty_step"], "0.01");
    assert_eq!(instrument["taker_fee_rate"], "0.0010", "unset keys keep the defaults (10 bps)");
    // Every fill quantity sits on the 0.01 grid and every price on the 0.5 grid.
    let all = ok(&["journal", "inspect", p(&journal), "--json"]);
    let mut fills = 0;
    for line in text(&all.stdout).lines() {
        let env: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(fill) = env["event"].get("OrderFilled") {
            fills += 1;
            let qty: f64 = fill["qty"].as_str().unwrap().parse().unwrap();
            let price: f64 = fill["price"].as_str().unwrap().parse().unwrap();
            assert!(((qty * 100.0).round() - qty * 100.0).abs() < 1e-9, "qty {qty} off the 0.01 grid");
            assert!(((price * 2.0).round() - price * 2.0).abs() < 1e-9, "price {price} off the 0.5 grid");
        }
    }
    assert!(fills > 0);

    std::fs::write(&file, "[BTCUSDT]\ntick = \"0.5\"\n").unwrap();
    let err = fails(&["backtest", "--instruments", p(&file)]);
    assert!(err.contains("instruments.toml") && err.contains("unknown field `tick`"), "{err}");
}

#[test]
fn a_failed_run_leaves_neither_journal_nor_reports_and_the_same_command_then_works() {
    // 15,000 good bars, then a bad line: the run fails after it has journaled and tabled
    // thousands of bars.
    let tmp = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(fixture("coinbase_BTCUSD_1h_2017-07_2019-10.csv")).unwrap();
    let mut lines: Vec<&str> = source.lines().collect();
    let header_and_bars = 15_001;
    assert!(lines.len() > header_and_bars + 10);
    let good = lines[header_and_bars].to_owned();
    let broken = good.replacen(',', ",-", 1); // a negative open price
    lines[header_and_bars] = &broken;
    let data = tmp.path().join("coinbase_BTCUSD_1h.csv");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let (out_dir, journal_dir) = (tmp.path().join("out"), tmp.path().join("journal"));
    let args = ["backtest", "--data", p(&data), "--out", p(&out_dir), "--journal", p(&journal_dir), "--format", "json"];

    let error = fails(&args);
    assert!(error.contains("coinbase_BTCUSD_1h.csv:15002: open"), "the error names file and line: {error}");
    assert!(error.contains("nothing was written"), "the error says nothing was written: {error}");
    assert!(!out_dir.exists(), "no report directory after a failed run");
    assert!(!journal_dir.exists(), "no journal after a failed run");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the data file is left: {leftovers:?}");

    // Fixed, the same command runs, and leaves both.
    lines[header_and_bars] = &good;
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let out = ok(&args);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["bars"], 20111);
    assert!(out_dir.join("report.html").is_file() && out_dir.join("equity.parquet").is_file());
    let verify = ok(&["journal", "verify", p(&journal_dir)]);
    assert!(verify.status.success());

    // A second run into the same journal is refused, and the reports of the first stay.
    let error = fails(&args);
    assert!(error.contains("already exists and is not empty"), "{error}");
    assert!(out_dir.join("report.html").is_file());
}
