//! The bar for this server: the official Python SDK, hyperliquid-python-sdk 0.24.0, works
//! against it with only `base_url` changed (see `hl_sdk_client.py`).

mod common;

use std::{process::Stdio, time::Duration};

use common::*;
use hyperliquid_server::Config;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const PIP: &str = "pip install hyperliquid-python-sdk==0.24.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_works_against_the_server() {
    let import =
        std::process::Command::new("python3").args(["-c", "import hyperliquid.exchange, eth_account"]).output();
    match import {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("the Hyperliquid SDK is not installed ({PIP}): {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("python3 cannot run ({e}); install Python 3 and {PIP}"),
    }
    // Three bars of history, then one bar a second; sizes to 5 decimals as BTC's.
    let config = Config { history: 3, speed: 60.0, ..Config::default() };
    let server = serve(config, bars(300)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hl_sdk_client.py");
    let child = tokio::process::Command::new("python3")
        .args([script, &server.rest_url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .expect("the SDK script finishes in time")
        .expect("the SDK script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "hl_sdk_client.py failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("hyperliquid sdk ok"), "{stdout}\n{stderr}");
    server.shutdown().await;
}
