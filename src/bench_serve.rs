//! `quantfold bench serve`: what the control plane costs. A journaled backtest of seeded
//! bars is folded into a replica (against the bare ledger fold of the same records, the
//! baseline measured in the same run), then served on loopback and each endpoint asked
//! `requests` times over fresh connections, one at a time. `live_feed` is what `live
//! --serve` adds to the engine thread per record (read back and send, against reading alone).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use journal::{Durability, Journal, State};
use serde_json::json;

/// The endpoints timed; the trader of a backtest of the default strategy is `sma_cross`.
const ENDPOINTS: [&str; 9] = [
    "/api/leaderboard",
    "/api/account-totals",
    "/api/trades?limit=100",
    "/api/positions",
    "/api/analytics",
    "/api/traders/sma_cross/equity?limit=1000",
    "/api/traders/sma_cross/fills?limit=100",
    "/api/journal",
    "/metrics",
];

pub fn serve(bars: usize, requests: usize, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(bars >= 100 && requests >= 1, "--bars must be at least 100 and --requests at least 1");
    let scratch = match dir {
        Some(d) => tempfile::Builder::new().prefix("qf-bench-").tempdir_in(d),
        None => tempfile::Builder::new().prefix("qf-bench-").tempdir(),
    }
    .context("failed to create a scratch directory")?;
    let data = scratch.path().join("bench_BTCUSDT_1m.csv");
    let file = std::fs::File::create(&data).context("failed to create the bars file")?;
    backtest::data::synth(bars, 60_000, 1, 1_640_995_200_000, std::io::BufWriter::new(file))?;
    let journal_dir = scratch.path().join("journal");
    let exe = std::env::current_exe().context("cannot find the quantfold binary")?;
    let out = std::process::Command::new(exe)
        .args(["backtest", "--format", "json", "--data"])
        .arg(&data)
        .arg("--journal")
        .arg(&journal_dir)
        .arg("--out")
        .arg(scratch.path().join("report"))
        .output()
        .context("failed to run the backtest")?;
    anyhow::ensure!(out.status.success(), "the backtest failed: {}", String::from_utf8_lossy(&out.stderr));

    // Baseline: the ledger's own fold of the same records, read the same way.
    let journal = Journal::open(&journal_dir, Durability::None)?;
    let began = Instant::now();
    let mut state = State::default();
    for record in journal.records(0) {
        state.apply(&record?);
    }
    let state_fold = began.elapsed();
    let records = journal.len();
    let began = Instant::now();
    let mut replica = control::Replica::new();
    for record in journal.records(0) {
        replica.apply(&record?);
    }
    let replica_fold = began.elapsed();
    anyhow::ensure!(replica.state == state, "the replica's state is not the ledger's fold");
    // What `live --serve` adds to the engine thread: reading records back and sending them
    // (against reading alone), and when the folding task has caught up.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let began = Instant::now();
    for record in journal.records_unverified(0) {
        record?;
    }
    let read_only = began.elapsed();
    let (feed, fold) = control::arena::feed(&control::Shared::default(), "bench");
    let fold = runtime.spawn(fold);
    let began = Instant::now();
    for record in journal.records_unverified(0) {
        feed.record(&record?);
    }
    let sent = began.elapsed();
    drop(feed);
    runtime.block_on(fold)?;
    let caught_up = began.elapsed();
    drop(journal);
    let began = Instant::now();
    let source = control::arena::load(&journal_dir)?;
    let load = began.elapsed();

    let shared = control::Shared::new(control::Arena { sources: vec![source], ready: true });
    let metrics = control::Metrics::new(shared.clone());
    let bound = runtime.block_on(control::bind("127.0.0.1:0".parse()?, None))?;
    let addr = bound.addr;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(control::serve(bound, shared, metrics, async {
        let _ = stop_rx.await;
    }));
    let mut endpoints = Vec::new();
    for path in ENDPOINTS {
        endpoints.push(time_endpoint(addr, path, requests)?);
    }
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);

    let rate = |d: Duration| records as f64 / d.as_secs_f64().max(1e-9);
    let report = json!({
        "bars": bars,
        "records": records,
        "fold": {
            "state_records_per_s": rate(state_fold).round(),
            "replica_records_per_s": rate(replica_fold).round(),
            "replica_vs_state": (replica_fold.as_secs_f64() / state_fold.as_secs_f64().max(1e-9) * 100.0).round() / 100.0,
            "load_with_verify_ms": load.as_millis(),
        },
        "live_feed": {
            "read_back_records_per_s": rate(read_only).round(),
            "read_back_and_send_records_per_s": rate(sent).round(),
            "replica_caught_up_ms": caught_up.as_millis(),
        },
        "requests_per_endpoint": requests,
        "endpoints": endpoints,
    });
    say!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Latency percentiles (µs) and bytes of `requests` sequential GETs of `path`.
fn time_endpoint(addr: SocketAddr, path: &str, requests: usize) -> anyhow::Result<serde_json::Value> {
    let mut micros = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests {
        let began = Instant::now();
        let mut stream = TcpStream::connect(addr)?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        micros.push(began.elapsed().as_micros() as u64);
        anyhow::ensure!(
            raw.starts_with(b"HTTP/1.1 200"),
            "{path}: {}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
        bytes = raw.len();
    }
    micros.sort_unstable();
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    Ok(json!({ "path": path, "p50_us": at(0.5), "p99_us": at(0.99), "max_us": at(1.0), "response_bytes": bytes }))
}
