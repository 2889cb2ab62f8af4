//! Sweeps across worker processes on NATS JetStream (`quantfold worker`, `backtest --grid
//! --nats`): each test starts its own nats-server on loopback with a temporary store.

mod common;
mod live_support;
mod nats_support;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use live_support::{bin, root, serial, Proc};
use nats_support::{free_port, wait_for_text, Nats};

const DATA: &str = "fixtures/klines/coinbase_BTCUSD_1h_2017-07_2019-10.csv";
const STRATEGY: &str = "strategies/sma_cross.js";
const GRID: &str = "fast=5..15:5,slow=30..50:10";

fn worker(dir: &Path, name: &str, url: &str) -> Proc {
    let stderr = dir.join(format!("{name}.stderr"));
    let child = Command::new(bin())
        .args(["worker", "--nats", url, "--jobs", "1"])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let proc = Proc { child, stderr };
    assert!(
        wait_for_text(&proc.stderr, "taking jobs", Duration::from_secs(20)),
        "{name} did not start:\n{}",
        proc.stderr_text()
    );
    proc
}

/// `quantfold backtest` with `args`, in the background: stdout to `<name>.stdout`.
fn director(dir: &Path, name: &str, args: &[&str]) -> Proc {
    let stderr = dir.join(format!("{name}.stderr"));
    let child = Command::new(bin())
        .arg("backtest")
        .args(args)
        .current_dir(root())
        .stdout(std::fs::File::create(dir.join(format!("{name}.stdout"))).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Proc { child, stderr }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_sweep_on_three_workers_one_killed_mid_job_one_late_equals_the_local_sweep() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let local_out = d.join("local");
    let local = common::ok(&[
        "backtest",
        "--strategy",
        STRATEGY,
        "--data",
        DATA,
        "--grid",
        GRID,
        "--out",
        common::p(&local_out),
    ]);

    let nats = Nats::start(d);
    let url = nats.url();
    let mut doomed = worker(d, "doomed", &url);
    let steady = worker(d, "steady", &url);
    let remote_out = d.join("remote");
    let mut sweep = director(
        d,
        "director",
        &["--strategy", STRATEGY, "--data", DATA, "--grid", GRID, "--out", common::p(&remote_out), "--nats", &url],
    );
    // Not random: the kill comes as soon as the doomed worker has started its first job.
    assert!(
        wait_for_text(&doomed.stderr, "job ", Duration::from_secs(60)),
        "the doomed worker got no job:\n{}\n{}",
        doomed.stderr_text(),
        sweep.stderr_text()
    );
    doomed.kill();
    let late = worker(d, "late", &url);
    let code = sweep.wait(Duration::from_secs(180));
    assert_eq!(code, Some(0), "the sweep failed or hung:\n{}", sweep.stderr_text());

    assert_eq!(read(&remote_out.join("sweep.csv")), read(&local_out.join("sweep.csv")));
    assert_eq!(read(&d.join("director.stdout")), common::stdout(&local));
    // The killed worker's job went to another worker after the ack wait.
    let others = read(&steady.stderr) + &read(&late.stderr);
    assert!(others.contains("(delivery 2)"), "no job was delivered twice:\n{others}");
    drop(nats);
}

#[test]
fn a_job_that_always_fails_is_reported_once_with_its_error() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let nats = Nats::start(d);
    let url = nats.url();
    let w = worker(d, "worker", &url);
    let bad = "fixtures/klines/bad_zero_price.csv";
    let mut sweep =
        director(d, "director", &["--strategy", STRATEGY, "--data", bad, "--grid", "fast=5..6:1", "--nats", &url]);
    let code = sweep.wait(Duration::from_secs(60));
    assert_eq!(code, Some(1), "the sweep should fail, and not hang:\n{}", sweep.stderr_text());
    let err = read(&sweep.stderr);
    assert!(!err.contains("panicked"), "{err}");
    for params in [r#"{"fast":5}"#, r#"{"fast":6}"#] {
        assert_eq!(
            err.matches(&format!("run with params {params}:")).count(),
            1,
            "want one report of {params}:\n{err}"
        );
    }
    assert!(err.contains("price"), "the data error is not shown:\n{err}");
    // Each job ran once: a clean failure is a result, not a reason to retry.
    let ran = read(&w.stderr);
    assert_eq!(ran.matches("(delivery 1)").count(), 2, "{ran}");
    assert!(!ran.contains("(delivery 2)"), "{ran}");
}

/// The server SIGKILLed and restarted mid-sweep: the workers and the Director reconnect
/// (the Director reads its results again), and the table is still the local sweep's.
#[test]
fn a_sweep_survives_the_server_killed_and_restarted_mid_sweep() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = "fast=5..10:5,slow=30..40:10";
    let local_out = d.join("local");
    common::ok(&["backtest", "--strategy", STRATEGY, "--data", DATA, "--grid", grid, "--out", common::p(&local_out)]);
    let mut nats = Nats::start(d);
    let url = nats.url();
    let w = worker(d, "worker", &url);
    let remote_out = d.join("remote");
    let mut sweep = director(
        d,
        "director",
        &["--strategy", STRATEGY, "--data", DATA, "--grid", grid, "--out", common::p(&remote_out), "--nats", &url],
    );
    // Not random: the server dies once the worker is on its second job.
    assert!(wait_for_text(&w.stderr, "job 1 ", Duration::from_secs(60)), "{}", w.stderr_text());
    nats.kill();
    std::thread::sleep(Duration::from_secs(1));
    nats.restart();
    assert_eq!(sweep.wait(Duration::from_secs(120)), Some(0), "the sweep failed or hung:\n{}", sweep.stderr_text());
    assert_eq!(read(&remote_out.join("sweep.csv")), read(&local_out.join("sweep.csv")));
}

/// The delivery limit: a job whose worker dies every time is given up after three
/// deliveries (the server's advisory comes when a worker next asks for work) and reported
/// once; it is never handed out a fourth time.
#[test]
fn a_job_that_kills_its_worker_every_time_is_given_up_after_three_deliveries() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let nats = Nats::start(d);
    let url = nats.url();
    let mut sweep =
        director(d, "director", &["--strategy", STRATEGY, "--data", DATA, "--grid", "fast=5..5:1", "--nats", &url]);
    for delivery in 1..=3 {
        let mut w = worker(d, &format!("worker-{delivery}"), &url);
        let mark = format!("(delivery {delivery})");
        assert!(wait_for_text(&w.stderr, &mark, Duration::from_secs(30)), "no {mark}:\n{}", w.stderr_text());
        w.kill();
    }
    let last = worker(d, "worker-4", &url);
    assert_eq!(
        sweep.wait(Duration::from_secs(60)),
        Some(1),
        "the sweep should fail, and not hang:\n{}",
        sweep.stderr_text()
    );
    let err = read(&sweep.stderr);
    assert_eq!(err.matches("given up after 3 deliveries").count(), 1, "{err}");
    assert!(!read(&last.stderr).contains("job "), "the job was handed out a fourth time");
}

#[test]
fn a_worker_or_director_pointed_at_a_server_that_is_down_says_so_and_exits() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let err = common::fails(&["worker", "--nats", &url]);
    assert!(err.contains(&url) && err.contains("cannot reach"), "{err}");
    let err =
        common::fails(&["backtest", "--strategy", STRATEGY, "--data", DATA, "--grid", "fast=5..6:1", "--nats", &url]);
    assert!(err.contains(&url) && err.contains("cannot reach"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}
