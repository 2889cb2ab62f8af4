//! `quantfold serve` as a user runs it: a real backtest journal, served on a real socket,
//! every endpoint checked against the journal's own fold as other commands print it
//! (`replay rebuild --json`, `journal verify --json`, the backtest's summary) and the kline
//! file itself.
//!
//! Needs `promtool` (Debian: `apt-get install -y prometheus`) and, for the dashboard test,
//! `chromium` (Debian: `apt-get install -y chromium`).

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{ok, p};
use serde_json::Value;

const DATA: &str = "fixtures/klines/bybit_BTCUSDT_1m_2022-12-13.csv";
const TRADER: &str = "sma_cross";

/// A running `quantfold serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str], token: Option<&str>) -> Result<Server, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quantfold"));
    command.arg("serve").args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    command.env_remove("QUANTFOLD_API_TOKEN");
    if let Some(token) = token {
        command.env("QUANTFOLD_API_TOKEN", token);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("failed to run quantfold");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let _ = child.wait();
        return Err(err);
    }
    let base = line.trim().strip_prefix("serving ").unwrap_or_else(|| panic!("first line names the URL: {line}"));
    Ok(Server { child, base: base.trim_end_matches('/').to_owned() })
}

/// A plain HTTP/1.1 GET over a fresh connection: (status, headers, body).
fn get_with(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, head.to_owned(), body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn get(base: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = get_with(base, path, &[]);
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")))
}

#[track_caller]
fn get_ok(base: &str, path: &str) -> Value {
    let (status, body) = get(base, path);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(body["serverTime"].as_i64().is_some_and(|t| t > 1_700_000_000_000), "{path}: serverTime: {body}");
    body
}

/// The float nof0's fields carry for an exact decimal string.
fn f(text: &Value) -> f64 {
    text.as_str().unwrap().parse().unwrap()
}

struct Run {
    _tmp: tempfile::TempDir,
    journal: PathBuf,
    summary: Value,
    rebuild: Value,
    verify: Value,
}

fn backtest() -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let out = ok(&[
        "backtest",
        "--data",
        DATA,
        "--journal",
        p(&journal),
        "--out",
        p(&tmp.path().join("out")),
        "--format",
        "json",
    ]);
    let summary = serde_json::from_slice(&out.stdout).unwrap();
    let rebuild =
        serde_json::from_slice(&ok(&["replay", "rebuild", "--journal", p(&journal), "--json"]).stdout).unwrap();
    let verify = serde_json::from_slice(&ok(&["journal", "verify", p(&journal), "--json"]).stdout).unwrap();
    Run { _tmp: tmp, journal, summary, rebuild, verify }
}

/// The last close of the kline file, read without quantfold.
fn last_close(path: &Path) -> f64 {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    last.split(',').nth(4).unwrap().parse().unwrap()
}

#[test]
fn every_endpoint_answers_what_the_journal_says() {
    let run = backtest();
    let server = serve(&["--journal", p(&run.journal), "--listen", "127.0.0.1:0"], None).unwrap();
    let base = &server.base;
    let want = &run.rebuild["traders"][TRADER];
    assert!(want.is_object(), "rebuild names the trader: {}", run.rebuild);

    let board = get_ok(base, "/api/leaderboard");
    let row = &board["leaderboard"][0];
    assert_eq!(row["id"], TRADER);
    assert_eq!(row["equity_exact"], want["equity"]);
    assert_eq!(row["equity"].as_f64().unwrap(), f(&want["equity"]));
    assert_eq!(row["num_trades"], run.summary["trades"], "round trips as the backtest counts them");
    let win_rate = row["num_wins"].as_f64().unwrap() / row["num_trades"].as_f64().unwrap() * 100.0;
    assert!((win_rate - run.summary["win_rate_pct"].as_f64().unwrap()).abs() < 1e-9);
    let capital = f(&want["capital"]);
    let return_pct = (f(&want["equity"]) - capital) / capital * 100.0;
    assert!((row["return_pct"].as_f64().unwrap() - return_pct).abs() < 1e-9);
    // Both sample equity at every 1m close and annualize the same way.
    let sharpe = run.summary["sharpe"].as_f64().unwrap();
    assert!((row["sharpe"].as_f64().unwrap() - sharpe).abs() < 1e-6 * sharpe.abs(), "{row} vs {sharpe}");
    // The KPIs beside nof0's: the same drawdown and win rate as the backtest's summary, its fees.
    let drawdown = run.summary["max_drawdown_pct"].as_f64().unwrap();
    assert!(drawdown > 0.0, "the run should have a drawdown: {}", run.summary);
    assert!(
        (row["max_drawdown_pct"].as_f64().unwrap() - drawdown).abs() < 1e-9 * drawdown.max(1.0),
        "{row} vs {drawdown}"
    );
    assert!((row["win_rate_pct"].as_f64().unwrap() - run.summary["win_rate_pct"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(row["fees_paid"].as_f64().unwrap(), f(&want["fees_paid"]));

    let totals = get_ok(base, "/api/account-totals");
    let account = &totals["accountTotals"][0];
    assert_eq!(account["model_id"], TRADER);
    assert_eq!(account["dollar_equity"].as_f64().unwrap(), f(&want["equity"]));
    assert_eq!(account["realized_pnl"].as_f64().unwrap(), f(&want["realized_pnl"]));
    assert_eq!(account["positions"].as_object().unwrap().len(), want["positions"].as_array().unwrap().len());
    // One day of 1m bars: 24 hours since inception; a caller already there gets nothing newer.
    assert_eq!(account["since_inception_hourly_marker"], 24);
    assert_eq!(get_ok(base, "/api/account-totals?lastHourlyMarker=24")["accountTotals"], serde_json::json!([]));
    // From hour 20 on: hours 21, 22, 23 from the equity curve, then the latest row.
    let since = get_ok(base, "/api/account-totals?lastHourlyMarker=20");
    let rows = since["accountTotals"].as_array().unwrap();
    let markers: Vec<i64> = rows.iter().map(|r| r["since_inception_hourly_marker"].as_i64().unwrap()).collect();
    assert_eq!(markers, [21, 22, 23, 24]);
    assert_eq!(rows[3], *account);
    // Hour 23's row is the equity at the last bar close before hour 24 (00:00 + 24 h − 1 min).
    let curve = get_ok(base, &format!("/api/traders/{TRADER}/equity?limit=2"));
    assert_eq!(rows[2]["dollar_equity_exact"], curve["points"][0]["equity"]);
    assert_eq!(rows[2]["timestamp"].as_f64().unwrap() * 1000.0, curve["points"][0]["time_ms"].as_f64().unwrap());

    let positions = get_ok(base, "/api/positions");
    assert_eq!(positions["accountTotals"][0]["model_id"], TRADER);
    assert_eq!(positions["accountTotals"][0]["positions"], account["positions"]);

    // Every round trip's net PnL adds up to the ledger's realized PnL less fees (the run ends flat).
    let trades = get_ok(base, "/api/trades?limit=1000");
    let trades = trades["trades"].as_array().unwrap();
    assert_eq!(trades.len() as u64, run.summary["trades"].as_u64().unwrap());
    assert!(want["positions"].as_array().unwrap().is_empty(), "the fixture's run ends flat");
    let net: rust_decimal::Decimal = trades
        .iter()
        .map(|t| t["realized_net_pnl_exact"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    let ledger: rust_decimal::Decimal =
        want["realized_pnl"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap()
            - want["fees_paid"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    assert_eq!(net, ledger);
    for field in [
        "id",
        "model_id",
        "symbol",
        "side",
        "entry_price",
        "exit_price",
        "quantity",
        "entry_time",
        "exit_time",
        "realized_net_pnl",
    ] {
        assert!(!trades[0][field].is_null(), "trade field {field}: {}", trades[0]);
    }
    assert!(trades.windows(2).all(|w| w[0]["exit_time"].as_f64() >= w[1]["exit_time"].as_f64()), "newest first");
    assert_eq!(get_ok(base, "/api/trades?limit=3")["trades"].as_array().unwrap().len(), 3);

    let prices = get_ok(base, "/api/crypto-prices");
    assert_eq!(prices["prices"]["BTCUSDT"]["price"].as_f64().unwrap(), last_close(Path::new(DATA)));
    assert_eq!(prices["prices"]["BTCUSDT"]["symbol"], "BTCUSDT");

    let inception = get_ok(base, "/api/since-inception-values");
    assert_eq!(inception["sinceInceptionValues"][0]["nav_since_inception"].as_f64().unwrap(), capital);
    assert_eq!(inception["sinceInceptionValues"][0]["model_id"], TRADER);

    let conversations = get_ok(base, "/api/conversations");
    assert_eq!(conversations["conversations"][0]["model_id"], TRADER);
    assert_eq!(conversations["conversations"][0]["messages"], serde_json::json!([]), "a JS strategy asks no LLM");

    let analytics = get_ok(base, "/api/analytics");
    assert_eq!(analytics["analytics"].as_array().unwrap().len(), 1);
    let one = get_ok(base, &format!("/api/analytics/{TRADER}"));
    assert_eq!(one["analytics"]["overall_trades_overview_table"]["total_trades"], run.summary["trades"]);
    assert_eq!(
        one["analytics"]["fee_pnl_moves_breakdown_table"]["total_fees_paid"].as_f64().unwrap(),
        f(&want["fees_paid"])
    );
    assert_eq!(one["analytics"], analytics["analytics"][0]);

    let equity = get_ok(base, &format!("/api/traders/{TRADER}/equity?limit=1000"));
    let points = equity["points"].as_array().unwrap();
    assert_eq!(points.len(), 1000);
    assert_eq!(points.last().unwrap()["equity"], want["equity"]);
    assert_eq!(equity["capital"], want["capital"]);
    let whole = get_ok(base, &format!("/api/traders/{TRADER}/equity?span=all&limit=50"));
    assert_eq!(whole["points"].as_array().unwrap().len(), 50);
    assert_eq!(whole["points"][0]["equity"], want["capital"], "the whole curve starts at the capital");
    assert_eq!(whole["points"][49], *points.last().unwrap());
    // A point at the start and one per bar close.
    assert_eq!(equity["points_total"].as_u64().unwrap(), run.summary["bars"].as_u64().unwrap() + 1);

    let fills = get_ok(base, &format!("/api/traders/{TRADER}/fills?limit=1000"));
    assert_eq!(fills["fills_total"], want["fills"]);
    assert_eq!(fills["fills"].as_array().unwrap().len() as u64, want["fills"].as_u64().unwrap());
    let fees: rust_decimal::Decimal = fills["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fee_quote"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    assert_eq!(fees, want["fees_paid"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap());

    let orders = get_ok(base, &format!("/api/traders/{TRADER}/orders?limit=1000"));
    assert_eq!(orders["open"].as_u64().unwrap() as usize, want["open_orders"].as_array().unwrap().len());
    let orders = orders["orders"].as_array().unwrap();
    assert_eq!(orders.len() as u64, want["fills"].as_u64().unwrap(), "one fill per market order");
    assert!(orders.iter().all(|o| o["status"] == "filled" && o["filled_qty"] == o["qty"]), "{orders:?}");

    let journal = get_ok(base, "/api/journal");
    let j = &journal["journals"][0];
    assert_eq!(j["records"], run.verify["events"]);
    assert_eq!(j["head_hash"], run.verify["head"]);
    assert_eq!(j["head_seq"], run.rebuild["last_seq"]);
    assert_eq!(j["state_digest"], run.rebuild["digest"]);
    assert_eq!(j["verify"]["ok"], true);
    assert_eq!(j["durable_seq"], run.rebuild["last_seq"], "a closed journal is durable to its end");
    assert_eq!(j["durable_lag_records"], 0);

    assert_eq!(get(base, "/healthz"), (200, serde_json::json!({ "status": "ok" })));
    assert_eq!(get(base, "/readyz").0, 200);
}

#[test]
fn bad_requests_get_json_errors() {
    let run = backtest();
    let server = serve(&["--journal", p(&run.journal), "--listen", "127.0.0.1:0"], None).unwrap();
    let base = &server.base;
    for path in [
        "/api/traders/nobody/equity",
        "/api/traders/nobody/orders",
        "/api/traders/nobody/fills",
        "/api/analytics/nobody",
        "/api/no-such-endpoint",
    ] {
        let (status, body) = get(base, path);
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["status"], 404, "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
    }
    for path in [
        "/api/trades?limit=1001",
        "/api/trades?limit=0",
        "/api/trades?limit=-1",
        "/api/trades?limit=ten",
        "/api/positions?limit=99999999999999999999999",
        "/api/conversations?limit=",
        &format!("/api/traders/{TRADER}/fills?limit=1.5"),
        "/api/account-totals?lastHourlyMarker=x",
        &format!("/api/traders/{TRADER}/equity?span=everything"),
    ] {
        let (status, body) = get(base, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["status"], 400, "{path}: {body}");
    }
    drop(server);
    // One journal given twice: its trader is told apart by the journals' names.
    let server =
        serve(&["--journal", p(&run.journal), "--journal", p(&run.journal), "--listen", "127.0.0.1:0"], None).unwrap();
    let base = &server.base;
    let board = get_ok(base, "/api/leaderboard");
    let mut ids: Vec<&str> =
        board["leaderboard"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["journal-2:sma_cross", "journal:sma_cross"]);
    let fills = get_ok(base, "/api/traders/journal-2:sma_cross/fills");
    assert_eq!(fills["fills_total"], run.rebuild["traders"][TRADER]["fills"]);
    assert_eq!(get(base, &format!("/api/traders/{TRADER}/fills")).0, 404, "the bare name is ambiguous");
    // Read-only: anything but GET is refused, in JSON too.
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /api/leaderboard HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(raw.contains("\"status\":405"), "{raw}");
    // The biggest limit allowed is fine.
    assert_eq!(get(base, "/api/trades?limit=1000").0, 200);
}

#[test]
fn a_non_loopback_address_needs_a_token_and_the_token_guards_the_data() {
    let run = backtest();
    let journal = p(&run.journal);
    let err = serve(&["--journal", journal, "--listen", "0.0.0.0:0"], None).err().expect("refused without a token");
    assert!(err.contains("QUANTFOLD_API_TOKEN") && !err.contains("panicked"), "{err}");
    let err = serve(&["--journal", journal, "--listen", "0.0.0.0:0"], Some("short")).err().expect("short token");
    assert!(err.contains("shorter"), "{err}");

    let token = "correct-horse-battery-staple";
    let server = serve(&["--journal", journal, "--listen", "0.0.0.0:0"], Some(token)).unwrap();
    // Reach the wildcard address over loopback.
    let port = server.base.rsplit(':').next().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for path in ["/api/leaderboard", "/api/journal", "/metrics", &format!("/api/traders/{TRADER}/fills")] {
        let (status, head, body) = get_with(&base, path, &[]);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");
        assert!(!body.contains(token));
        let (status, _, _) = get_with(&base, path, &[("Authorization", "Bearer correct-horse-battery-stapleX")]);
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, _, _) = get_with(&base, path, &[("Authorization", &format!("Bearer {token}"))]);
        assert_eq!(status, 200, "{path} with the token");
    }
    // Health and the (data-free) page need no token.
    assert_eq!(get_with(&base, "/healthz", &[]).0, 200);
    assert_eq!(get_with(&base, "/", &[]).0, 200);
}

#[test]
fn metrics_pass_promtool_and_count_what_the_journal_holds() {
    let run = backtest();
    let server = serve(&["--journal", p(&run.journal), "--listen", "127.0.0.1:0"], None).unwrap();
    let (status, head, text) = get_with(&server.base, "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    common::promtool_check(&text);
    let want = &run.rebuild["traders"][TRADER];
    let sample = |name: &str| common::metric_sample(&text, name);
    assert_eq!(sample(&format!("quantfold_fills_total{{trader=\"{TRADER}\"}}")), want["fills"].as_f64().unwrap());
    assert_eq!(sample(&format!("quantfold_equity_quote{{trader=\"{TRADER}\"}}")), f(&want["equity"]));
    assert_eq!(sample(&format!("quantfold_pnl_quote{{trader=\"{TRADER}\"}}")), f(&want["pnl"]));
    assert_eq!(sample("quantfold_journal_records{journal=\"journal\"}"), run.verify["events"].as_f64().unwrap());
    assert_eq!(sample("quantfold_journal_durable_lag_records{journal=\"journal\"}"), 0.0);
    assert_eq!(
        sample(&format!("quantfold_orders_total{{trader=\"{TRADER}\",status=\"filled\"}}")),
        want["fills"].as_f64().unwrap()
    );
}

/// Headless chromium's DOM of `url` after the page's script ran (`--virtual-time-budget`
/// lets its fetches and first draw finish).
fn chromium_dom(url: &str) -> String {
    let out = match Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom", url])
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("chromium is needed ({e}): install it with `apt-get install -y chromium`"),
    };
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_dashboard_shows_what_the_api_says() {
    let run = backtest();
    let server = serve(&["--journal", p(&run.journal), "--listen", "127.0.0.1:0"], None).unwrap();
    let (status, head, page) = get_with(&server.base, "/", &[]);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-security-policy: default-src 'none'"), "{head}");
    assert!(!page.contains("http://") && !page.contains("https://"), "no asset from elsewhere:\n{page}");

    let dom = chromium_dom(&format!("{}/", server.base));
    let errors = dom.split("<ul id=\"errors\">").nth(1).and_then(|rest| rest.split("</ul>").next());
    assert_eq!(errors, Some(""), "the page reported errors:\n{dom}");
    let board = get_ok(&server.base, "/api/leaderboard");
    let journal = get_ok(&server.base, "/api/journal");
    let trades = get_ok(&server.base, "/api/trades?limit=1");
    let want = [
        board["leaderboard"][0]["equity_exact"].as_str().unwrap().to_owned(),
        format!("<td>{}</td>", board["leaderboard"][0]["num_trades"]),
        format!("<td>{:.2}</td>", board["leaderboard"][0]["max_drawdown_pct"].as_f64().unwrap()),
        journal["journals"][0]["head_hash"].as_str().unwrap()[..16].to_owned(),
        format!("<td>{}</td>", journal["journals"][0]["records"]),
        trades["trades"][0]["realized_net_pnl_exact"].as_str().unwrap().to_owned(),
        "<polyline".to_owned(),
        "no open positions".to_owned(),
        "no LLM conversations".to_owned(),
    ];
    for text in want {
        assert!(dom.contains(&text), "the page does not show {text:?}:\n{dom}");
    }
    assert!(!dom.contains("loading…"), "the script never finished a refresh:\n{dom}");

    // Behind a token: the page sends the one in its URL's fragment; without it the page
    // says what failed instead of showing stale or empty tables.
    let token = "correct-horse-battery-staple";
    let guarded = serve(&["--journal", p(&run.journal), "--listen", "0.0.0.0:0"], Some(token)).unwrap();
    let port = guarded.base.rsplit(':').next().unwrap();
    let dom = chromium_dom(&format!("http://127.0.0.1:{port}/#token={token}"));
    let errors = dom.split("<ul id=\"errors\">").nth(1).and_then(|rest| rest.split("</ul>").next());
    assert_eq!(errors, Some(""), "the page reported errors:\n{dom}");
    assert!(dom.contains(board["leaderboard"][0]["equity_exact"].as_str().unwrap()), "{dom}");
    let dom = chromium_dom(&format!("http://127.0.0.1:{port}/"));
    let errors = dom.split("<ul id=\"errors\">").nth(1).and_then(|rest| rest.split("</ul>").next()).unwrap();
    assert!(errors.contains("401"), "a refused request is shown in #errors:\n{dom}");
}

#[test]
fn bench_serve_prints_its_measurements() {
    let out = ok(&[
        "bench",
        "serve",
        "--bars",
        "300",
        "--requests",
        "3",
        "--rate",
        "50",
        "--seconds",
        "1",
        "--append-rate",
        "100",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(report["bars"], 300);
    assert!(report["records"].as_u64().unwrap() > 300, "{report}");
    assert!(report["fold"]["replica_records_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["live_feed"]["read_back_and_send_records_per_s"].as_f64().unwrap() > 0.0, "{report}");
    let endpoints = report["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 9);
    assert!(endpoints.iter().all(|e| e["p50_us"].as_u64().unwrap() <= e["max_us"].as_u64().unwrap()), "{report}");
    // The open-loop load: every request sent on schedule and answered, per endpoint.
    let load = &report["under_load"];
    assert_eq!(load["target_requests_per_s"], 50);
    assert_eq!(load["errors"], 0, "{load}");
    let per_endpoint = load["endpoints"].as_array().unwrap();
    assert_eq!(per_endpoint.len(), 9);
    assert_eq!(per_endpoint.iter().map(|e| e["requests"].as_u64().unwrap()).sum::<u64>(), 50);
    assert!(load["appended_records_per_s"].as_f64().unwrap() > 0.0, "the writer appended nothing: {load}");
}
