//! `quantfold bench sweep`: a sweep on NATS workers against the same sweep on this
//! machine's threads, and the journal mirror's throughput against a backtest's append rate.
//!
//! Everything runs as real processes: a nats-server of its own (from PATH, on a free
//! loopback port, its store in the scratch directory), `quantfold worker`s with one job
//! slot each, and `quantfold backtest` as the Director. One worker is compared with the
//! local sweep on one core (`taskset -c 0`), two with the local sweep on two.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::json;

use crate::bench::timed;

pub struct SweepBench<'a> {
    pub grid: &'a str,
    pub bars: usize,
    pub dir: Option<&'a Path>,
}

/// A child killed (and reaped) when dropped: the bench leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

pub fn sweep(bench: &SweepBench<'_>) -> anyhow::Result<ExitCode> {
    let scratch = match bench.dir {
        Some(d) => tempfile::Builder::new().prefix("qf-bench-").tempdir_in(d),
        None => tempfile::Builder::new().prefix("qf-bench-").tempdir(),
    }
    .context("failed to create a scratch directory")?;
    let dir = scratch.path();
    let exe = std::env::current_exe().context("cannot find the quantfold binary")?;
    let data = dir.join("synth_BTCUSDT_1m.csv");
    backtest::data::synth(
        bench.bars,
        60_000,
        42,
        1_640_995_200_000,
        std::io::BufWriter::new(std::fs::File::create(&data)?),
    )?;
    let strategy = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/sma_cross.js");
    let (_nats, url) = nats_server(dir)?;

    // The sweep on this machine's threads: on one core (`taskset`, which the local sweep's
    // thread count follows) and on all, to compare with one and two single-slot workers.
    let director = |out: &Path, nats: Option<&str>, one_core: bool| {
        let mut command = if one_core {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command.arg("backtest").arg("--strategy").arg(&strategy).arg("--data").arg(&data);
        command.args(["--grid", bench.grid, "--out"]).arg(out);
        if let Some(url) = nats {
            command.args(["--nats", url]);
        }
        command
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let local_out = dir.join("local");
    let local_s = timed(director(&local_out, None, false))?.0;
    let local_one_core_s = timed(director(&dir.join("local-1"), None, true)).context("taskset (util-linux)")?.0;
    let local_csv = std::fs::read_to_string(local_out.join("sweep.csv"))?;
    let jobs = local_csv.lines().count().saturating_sub(1);
    let mut remote = Vec::new();
    for workers in [1usize, 2] {
        let running: Vec<Running> = (0..workers)
            .map(|i| worker(&exe, &url, &dir.join(format!("worker-{workers}-{i}.stderr"))))
            .collect::<Result<_, _>>()?;
        let out = dir.join(format!("nats-{workers}"));
        let s = timed(director(&out, Some(&url), false))?.0;
        drop(running);
        let same = std::fs::read_to_string(out.join("sweep.csv"))? == local_csv;
        // Against the local sweep with as many threads as there are worker slots.
        let local = if workers == 1 { local_one_core_s } else { local_s };
        remote.push(json!({
            "workers": workers,
            "s": round3(s),
            "jobs_per_s": round3(jobs as f64 / s),
            "overhead_ms_per_job": round3((s - local) / jobs as f64 * 1000.0),
            "same_as_local": same,
        }));
    }

    // The mirror: the same backtest journaled, without and with --mirror (which ships the
    // whole journal once the run has made it durable).
    let journaled = |name: &str, mirror: Option<&str>| {
        let mut command = Command::new(&exe);
        command.arg("backtest").arg("--strategy").arg(&strategy).arg("--data").arg(&data);
        command.arg("--out").arg(dir.join(format!("{name}-out"))).arg("--journal").arg(dir.join(name));
        if let Some(url) = mirror {
            command.args(["--mirror", url]);
        }
        timed(command).map(|t| t.0)
    };
    let run_s = journaled("plain", None)?;
    let mirrored_s = journaled("mirrored", Some(&url))?;
    let records = journal::Journal::open(&dir.join("plain"), journal::Durability::None)?.len();
    let ship_s = (mirrored_s - run_s).max(1e-3);
    let (append_rate, ship_rate) = (records as f64 / run_s, records as f64 / ship_s);
    let report = json!({
        "grid": bench.grid,
        "bars": bench.bars,
        "jobs": jobs,
        "local": [
            { "threads": 1, "s": round3(local_one_core_s), "jobs_per_s": round3(jobs as f64 / local_one_core_s) },
            { "threads": threads, "s": round3(local_s), "jobs_per_s": round3(jobs as f64 / local_s) },
        ],
        "nats": remote,
        "mirror": {
            "records": records,
            "backtest_append_records_per_s": append_rate.round(),
            "mirror_records_per_s": ship_rate.round(),
            // A mirror fed as the records come keeps up when it ships faster than they come;
            // otherwise its lag grows by the difference every second.
            "lag_growth_records_per_s": (append_rate - ship_rate).max(0.0).round(),
        },
    });
    say!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// nats-server with JetStream on a free loopback port, and its URL.
fn nats_server(dir: &Path) -> anyhow::Result<(Running, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats-store"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nats-server (Debian: apt-get install -y nats-server)")?;
    let running = Running(child);
    let end = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > end {
            bail!("nats-server did not listen on {port} within 15 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((running, format!("nats://127.0.0.1:{port}")))
}

/// `quantfold worker` with one job slot, once it says it is taking jobs.
fn worker(exe: &PathBuf, url: &str, stderr: &Path) -> anyhow::Result<Running> {
    let child = Command::new(exe)
        .args(["worker", "--nats", url, "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr)?)
        .spawn()?;
    let running = Running(child);
    let end = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(stderr).is_ok_and(|t| t.contains("taking jobs")) {
        if Instant::now() > end {
            bail!("the worker did not start: {}", std::fs::read_to_string(stderr).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(running)
}
