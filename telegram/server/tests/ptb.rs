//! The bar for this server: the official `python-telegram-bot` works against it with only its
//! base URL changed (see `ptb_client.py`), and what it sent shows in the server's logs.

use std::{process::Stdio, time::Duration};

use telegram_server::{Config, Rate, Script};

/// The version this test was written and run against.
const PIP_INSTALL: &str = "pip install python-telegram-bot==22.8";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
const TOKEN: &str = "7001:AAH-local_test_token_0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_telegram_bot_works_against_the_server() {
    match std::process::Command::new("python3").args(["-c", "import telegram"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            panic!("python-telegram-bot is not installed ({PIP_INSTALL}): {}", String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => panic!("python3 cannot run ({e}); install Python 3 and {PIP_INSTALL}"),
    }
    let config = Config {
        listen: "127.0.0.1:0".into(),
        token: TOKEN.into(),
        chats: vec!["5150".into()],
        rate: Rate::default(),
        script: Script::parse("429:1@2").unwrap(),
    };
    let server = telegram_server::serve(config).await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ptb_client.py");
    let child = tokio::process::Command::new("python3")
        .args([path, &server.base_url(), TOKEN, "5150"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .expect("the script finishes in time")
        .expect("the script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("ptb ok"),
        "ptb_client.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );

    let texts: Vec<String> = server.messages().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["first: BTCUSDT long 0.01 @ 43000", "second"]);
    let statuses: Vec<u16> = server.requests().into_iter().map(|e| e.status).collect();
    assert_eq!(statuses, [200, 429, 400, 400, 400, 200]);
    server.shutdown();
}
