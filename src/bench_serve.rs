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

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};

use anyhow::Context;
use journal::{event::Kline, Durability, Event, Journal, State};
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

/// The open-loop load of `bench serve`: `rate` requests a second over `seconds`, round robin
/// over the endpoints, while `append_rate` records a second are appended and fed.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub rate: u32,
    pub seconds: u64,
    pub append_rate: u32,
}

pub fn serve(bars: usize, requests: usize, dir: Option<&Path>, under: Load) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(bars >= 100 && requests >= 1, "--bars must be at least 100 and --requests at least 1");
    anyhow::ensure!(under.rate >= 1 && under.seconds >= 1, "--rate and --seconds must be at least 1");
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

    // The live case: the journal served through the live feed (as `live --serve` serves it)
    // while a writer appends to it and feeds what it appended, under an open-loop load.
    let loaded = under_load(&runtime, &journal_dir, under)?;

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
        "under_load": loaded,
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

/// Serves the journal at `dir` from a live feed, appends to it meanwhile, and times an
/// open-loop load: requests are sent on schedule whatever the answers take (so a slow answer
/// cannot hold back the next request and hide itself), each timed from its send.
fn under_load(runtime: &tokio::runtime::Runtime, dir: &Path, load: Load) -> anyhow::Result<serde_json::Value> {
    let mut journal = Journal::open(dir, Durability::GROUP_DEFAULT)?;
    let shared = control::Shared::default();
    let (feed, fold) = control::arena::feed(&shared, "bench");
    runtime.spawn(fold);
    let mut last: Option<Kline> = None;
    for record in journal.records_unverified(0) {
        let env = record?;
        if let Event::KlineReceived(k) = &env.event {
            last = Some(k.clone());
        }
        feed.record(&env);
    }
    feed.durable(journal.durable_through());
    feed.caught_up();
    let mut bar = last.context("the journal has no bar to continue from")?;
    let metrics = control::Metrics::new(shared.clone());
    let bound = runtime.block_on(control::bind("127.0.0.1:0".parse()?, None))?;
    let base = format!("http://{}", bound.addr);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(control::serve(bound, shared.clone(), metrics, async {
        let _ = stop_rx.await;
    }));
    // Wait for the fold to have everything before the clock starts.
    let ready_by = Instant::now() + Duration::from_secs(600);
    while !shared.read().ready {
        anyhow::ensure!(Instant::now() < ready_by, "the replica did not catch up in 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The writer: bars continuing the journal's last, appended, read back and fed as the live
    // shell does, at `append_rate` a second.
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, appended) = (stop.clone(), appended.clone());
        let per_ms = f64::from(load.append_rate) / 1000.0;
        std::thread::spawn(move || -> anyhow::Result<()> {
            let began = Instant::now();
            let mut next = journal.len();
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (began.elapsed().as_secs_f64() * 1000.0 * per_ms) as u64;
                while done < due {
                    bar.open_time_ms += bar.interval_ms;
                    journal.append(bar.open_time_ms + bar.interval_ms, "", &Event::KlineReceived(bar.clone()))?;
                    done += 1;
                }
                journal.flush_if_due()?;
                for record in journal.records_unverified(next) {
                    let env = record?;
                    next = env.seq + 1;
                    feed.record(&env);
                }
                feed.durable(journal.durable_through());
                appended.store(done, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            journal.sync()?;
            Ok(())
        })
    };

    // The load comes from a thread and runtime of its own, as a client on another machine
    // would: it does not share the server's worker threads.
    let (samples, lag_max) = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<_> {
                let client_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                client_runtime.block_on(open_loop(&base, load.rate, load.seconds))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
    })?;
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);

    let mut per_endpoint = Vec::new();
    let mut all: Vec<u64> = samples.iter().filter(|s| s.2).map(|s| s.1).collect();
    for (i, path) in ENDPOINTS.iter().enumerate() {
        let mut micros: Vec<u64> = samples.iter().filter(|s| s.0 == i && s.2).map(|s| s.1).collect();
        let errors = samples.iter().filter(|s| s.0 == i && !s.2).count();
        per_endpoint.push(json!({
            "path": path,
            "requests": micros.len() + errors,
            "errors": errors,
            "p50_us": percentile(&mut micros, 0.5),
            "p99_us": percentile(&mut micros, 0.99),
            "max_us": percentile(&mut micros, 1.0),
        }));
    }
    let ok = all.len();
    let seconds = load.seconds as f64;
    Ok(json!({
        "target_requests_per_s": load.rate,
        "seconds": load.seconds,
        "answered_per_s": (ok as f64 / seconds).round(),
        "errors": samples.len() - ok,
        "schedule_lag_max_us": lag_max,
        "appended_records_per_s": (appended.load(Ordering::Relaxed) as f64 / seconds).round(),
        "all": { "p50_us": percentile(&mut all, 0.5), "p99_us": percentile(&mut all, 0.99), "max_us": percentile(&mut all, 1.0) },
        "endpoints": per_endpoint,
    }))
}

/// The `q` quantile of `micros` (sorted here); 0 when empty.
fn percentile(micros: &mut [u64], q: f64) -> u64 {
    if micros.is_empty() {
        return 0;
    }
    micros.sort_unstable();
    micros[((micros.len() - 1) as f64 * q).round() as usize]
}

/// `rate` GETs a second for `seconds`, round robin over [`ENDPOINTS`], over a keep-alive
/// pool. Returns (endpoint, µs from send to the whole body, answered 200) per request, and
/// how late the schedule ran at worst.
async fn open_loop(base: &str, rate: u32, seconds: u64) -> anyhow::Result<(Vec<(usize, u64, bool)>, u64)> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(30)).build()?;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = u64::from(rate) * seconds;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut lag_max = 0u64;
    for i in 0..total {
        let scheduled = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        lag_max = lag_max.max(scheduled.elapsed().as_micros() as u64);
        let endpoint = usize::try_from(i).unwrap_or(0) % ENDPOINTS.len();
        let (client, url) = (client.clone(), format!("{base}{}", ENDPOINTS[endpoint]));
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = match client.get(&url).send().await {
                Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            (endpoint, sent.elapsed().as_micros() as u64, ok)
        }));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        samples.push(task.await?);
    }
    Ok((samples, lag_max))
}
