//! The bar for this server: the official Python SDKs, `openai` and `anthropic`, work against it
//! with only their base URLs changed (see `sdk_client.py`), and their retries show in the
//! server's request log.

use std::{process::Stdio, time::Duration};

use llm_server::{Api, Config, Script};

/// The versions this test was written and run against.
const PIP_INSTALL: &str = "pip install openai==3.63.0 anthropic==2.17.0";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn require_sdks() {
    let import = std::process::Command::new("python3").args(["-c", "import openai, anthropic"]).output();
    match import {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            panic!("the official SDKs are not installed ({PIP_INSTALL}): {}", String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => panic!("python3 cannot run ({e}); install Python 3 and {PIP_INSTALL}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_work_against_the_server() {
    require_sdks();
    let script = Script::parse("429:0.05@3,529@5,500@9-11").unwrap();
    let server =
        llm_server::serve(Config { script, api_key: Some("qf-test-key".into()), ..Config::default() }).await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk_client.py");
    let child = tokio::process::Command::new("python3")
        .args([path, &server.openai_base_url(), &server.anthropic_base_url()])
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
    assert!(output.status.success(), "sdk_client.py failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("sdk ok"), "{stdout}\n{stderr}");

    // The log tells what the SDKs did: which API, the status each try got, and the retry count
    // the SDK itself sent (`x-stainless-retry-count`).
    let seen: Vec<(u64, Api, u16, Option<u32>)> =
        server.requests().into_iter().map(|e| (e.n, e.api, e.status, e.sdk_retry_count)).collect();
    let expected = vec![
        (1, Api::OpenAi, 200, Some(0)),
        (2, Api::Anthropic, 200, Some(0)),
        // The 429 and the retry it asked for.
        (3, Api::OpenAi, 429, Some(0)),
        (4, Api::OpenAi, 200, Some(1)),
        // Anthropic's 529 overloaded, retried.
        (5, Api::Anthropic, 529, Some(0)),
        (6, Api::Anthropic, 200, Some(1)),
        // Invalid requests: one try each.
        (7, Api::OpenAi, 400, Some(0)),
        (8, Api::Anthropic, 400, Some(0)),
        // 500, then both default retries.
        (9, Api::OpenAi, 500, Some(0)),
        (10, Api::OpenAi, 500, Some(1)),
        (11, Api::OpenAi, 500, Some(2)),
    ];
    assert_eq!(seen, expected, "{stdout}\n{stderr}");
    server.shutdown().await;
}
