//! The bar for this server: the official Python client, pybit 5.17.0, works against it with
//! only its base URLs changed (see `pybit_client.py`).

mod common;

use std::{process::Stdio, time::Duration};

use bybit_server::Config;
use common::*;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pybit_works_against_the_server() {
    let import = std::process::Command::new("python3").args(["-c", "import pybit"]).output();
    match import {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            panic!("pybit is not installed (pip install pybit==5.17.0): {}", String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => panic!("python3 cannot run ({e}); install Python 3 and pip install pybit==5.17.0"),
    }
    // Three bars of history, then one bar a second.
    let config = Config { history: 3, speed: 60.0, ..Config::default() };
    let server = serve(config, bars(200)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pybit_client.py");
    let child = tokio::process::Command::new("python3")
        .args([script, &server.rest_url(), &server.ws_url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .expect("the pybit script finishes in time")
        .expect("the pybit script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pybit_client.py failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("pybit ok"), "{stdout}\n{stderr}");
    server.shutdown().await;
}
