//! Both clients against the local LLM server over real sockets: answers, every fault's error,
//! retries counted in the server's request log (never timed on the wall clock), and the key
//! kept out of every error.

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use llm::{ApiKey, Client, ClientConfig, Clock, LlmError, Prompt, Provider, RetryPolicy};
use llm_server::{Config, Script, Server};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const KEY: &str = "qf-test-key-0123456789";
/// Every wait in these tests is bounded by this, so a hang fails instead of stalling the suite.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const USER: &str = "MARKET: symbol: BTCUSDT current_price: [61000, 62000] ema20: [59800, 60000] rsi14: 58\n\
                    ACCOUNT: account_value: 10000\nReturn only the JSON decision.";
const PROVIDERS: [Provider; 2] = [Provider::OpenAi, Provider::Anthropic];

/// A clock that moves `step` ns at every reading: latency is then a count of readings.
#[derive(Debug)]
struct StepClock {
    now_ns: AtomicI64,
    step_ns: i64,
}

impl Clock for StepClock {
    fn now_ns(&self) -> i64 {
        self.now_ns.fetch_add(self.step_ns, Ordering::SeqCst)
    }
}

/// Fast backoff, so retried tests finish quickly; the retry rules are the defaults'.
fn quick() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    }
}

async fn server(spec: &str) -> Server {
    let config = Config { script: Script::parse(spec).unwrap(), api_key: Some(KEY.to_owned()), ..Config::default() };
    llm_server::serve(config).await.unwrap()
}

fn config(server: &Server, provider: Provider, retry: RetryPolicy) -> ClientConfig {
    let mut config = match provider {
        Provider::OpenAi => ClientConfig::openai(&server.openai_base_url(), "gpt-4o-mini", "QF_LLM_TEST_KEY"),
        Provider::Anthropic => {
            ClientConfig::anthropic(&server.anthropic_base_url(), "claude-sonnet-4-5", "QF_LLM_TEST_KEY")
        }
    };
    config.retry = retry;
    config.timeout = Duration::from_secs(10);
    config
}

fn client_with(config: ClientConfig, key: &str) -> Client {
    let clock = Arc::new(StepClock { now_ns: AtomicI64::new(0), step_ns: 1_000_000 });
    Client::new(config, ApiKey::new(key).unwrap(), clock, ChaCha8Rng::seed_from_u64(7)).unwrap()
}

fn client(server: &Server, provider: Provider, retry: RetryPolicy) -> Client {
    client_with(config(server, provider, retry), KEY)
}

async fn ask(client: &Client) -> Result<llm::Completion, LlmError> {
    tokio::time::timeout(TEST_TIMEOUT, client.complete(&Prompt::decision("You are a careful trader.", USER)))
        .await
        .expect("the call ends within the test's timeout")
}

#[tokio::test]
async fn both_clients_get_a_checked_decision() {
    for provider in PROVIDERS {
        let server = server("").await;
        let completion = ask(&client(&server, provider, quick())).await.unwrap();
        let decision: Value = serde_json::from_str(&completion.json).unwrap();
        assert_eq!(decision["signal"], "buy_to_enter", "{provider:?}: {decision}");
        assert_eq!(decision["symbol"], "BTCUSDT");
        assert_eq!(completion.attempts, 1);
        assert!(completion.usage.input_tokens > 0 && completion.usage.output_tokens > 0, "{:?}", completion.usage);
        // Two readings of a clock that moves 1 ms per reading.
        assert_eq!(completion.latency_ns, 1_000_000);
        assert!(completion.raw_body.contains(&completion.id) && !completion.id.is_empty());
        let (model, stop) = match provider {
            Provider::OpenAi => ("gpt-4o-mini", "stop"),
            Provider::Anthropic => ("claude-sonnet-4-5", "tool_use"),
        };
        assert_eq!((completion.model.as_str(), completion.stop_reason.as_str()), (model, stop));
        assert_eq!(server.request_count(), 1);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn each_answer_fault_maps_to_its_error_without_a_retry() {
    type Check = fn(&LlmError, Provider) -> bool;
    let cases: [(&str, Check); 6] = [
        ("malformed_json", |e, _| matches!(e, LlmError::MalformedJson { .. })),
        ("schema_violation", |e, _| matches!(e, LlmError::SchemaViolation { .. })),
        ("refusal", |e, _| matches!(e, LlmError::Refusal { message, .. } if message.contains("can't help"))),
        ("length", |e, _| matches!(e, LlmError::Truncated { .. })),
        ("bad_body", |e, _| matches!(e, LlmError::MalformedBody { status: 200, .. })),
        ("quota", |e, provider| match (e, provider) {
            (LlmError::Api { status: 429, code: Some(code), attempts: 1, .. }, Provider::OpenAi) => {
                code == "insufficient_quota"
            }
            (LlmError::Api { status: 429, code: Some(code), attempts: 1, .. }, Provider::Anthropic) => {
                code == "enforced_spend_limit_reached"
            }
            _ => false,
        }),
    ];
    for (fault, check) in cases {
        for provider in PROVIDERS {
            let server = server(&format!("{fault}@1")).await;
            let error = ask(&client(&server, provider, quick())).await.unwrap_err();
            assert!(check(&error, provider), "{fault} {provider:?}: {error:?}");
            if !matches!(error, LlmError::Api { .. }) {
                assert!(error.body().is_some_and(|b| !b.is_empty()), "{fault}: the raw body is kept");
            }
            assert_eq!(server.request_count(), 1, "{fault} {provider:?}: not retried");
            server.shutdown().await;
        }
    }
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_an_answer() {
    for fault in ["429", "429:0.01", "408", "409", "500", "502", "503", "504", "529"] {
        for provider in PROVIDERS {
            let server = server(&format!("{fault}@1")).await;
            let completion = ask(&client(&server, provider, quick())).await;
            let completion = completion.unwrap_or_else(|e| panic!("{fault} {provider:?}: {e:?}"));
            assert_eq!(completion.attempts, 2, "{fault} {provider:?}");
            let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
            assert_eq!(statuses, vec![fault[..3].parse().unwrap(), 200], "{fault} {provider:?}");
            server.shutdown().await;
        }
    }
}

#[tokio::test]
async fn retries_stop_at_max_retries() {
    for (max_retries, expected_attempts) in [(0, 1), (1, 2), (2, 3)] {
        let server = server("500@1-3").await;
        let client = client(&server, Provider::Anthropic, RetryPolicy { max_retries, ..quick() });
        match ask(&client).await {
            Err(LlmError::Api { status: 500, kind: Some(kind), attempts, .. }) => {
                assert_eq!((kind.as_str(), attempts), ("api_error", expected_attempts));
            }
            other => panic!("max_retries {max_retries}: {other:?}"),
        }
        assert_eq!(server.request_count(), u64::from(expected_attempts));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn retry_after_is_honored_and_a_too_long_one_is_not_waited_out() {
    // The backoff would be an hour: the call can only finish within the test's timeout by
    // waiting the 10 ms the server's `retry-after-ms` asked for.
    let hour = Duration::from_secs(3600);
    let patient = RetryPolicy { initial_delay: hour, max_delay: hour, ..RetryPolicy::default() };
    for provider in PROVIDERS {
        let server = server("429:0.01@1").await;
        let completion = ask(&client(&server, provider, patient)).await.unwrap();
        assert_eq!(completion.attempts, 2);
        assert_eq!(server.request_count(), 2);
        server.shutdown().await;
    }
    // 120 s is past the 60 s the client waits out: the 429 comes back at once, with the wait.
    let server = server("429:120@1").await;
    match ask(&client(&server, Provider::OpenAi, quick())).await {
        Err(LlmError::Api { status: 429, retry_after_ms: Some(120_000), attempts: 1, code, .. }) => {
            assert_eq!(code.as_deref(), Some("rate_limit_exceeded"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.request_count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_answer_times_out_and_the_retry_gets_through() {
    for (max_retries, expect_ok) in [(0, false), (1, true)] {
        let server = server("slow:20000@1").await;
        let mut config = config(&server, Provider::OpenAi, RetryPolicy { max_retries, ..quick() });
        // Far below the 20 s delay, far above what an answer takes on a loaded machine.
        config.timeout = Duration::from_secs(2);
        let result = ask(&client_with(config, KEY)).await;
        match (result, expect_ok) {
            (Err(LlmError::Timeout { timeout_ms: 2000, attempts: 1 }), false) => {}
            (Ok(completion), true) => assert_eq!(completion.attempts, 2),
            (other, _) => panic!("max_retries {max_retries}: {other:?}"),
        }
        assert_eq!(server.request_count(), u64::from(max_retries) + 1);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_invalid_request_is_a_typed_400_not_retried() {
    for provider in PROVIDERS {
        let server = server("").await;
        let client = client(&server, provider, quick());
        // An empty tool or schema name is refused by both APIs.
        let prompt = Prompt { schema_name: String::new(), ..Prompt::decision("", USER) };
        let error = tokio::time::timeout(TEST_TIMEOUT, client.complete(&prompt)).await.unwrap().unwrap_err();
        assert!(
            matches!(&error, LlmError::Api { status: 400, kind: Some(kind), attempts: 1, .. } if kind == "invalid_request_error"),
            "{provider:?}: {error:?}"
        );
        assert_eq!(server.request_count(), 1);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_key_never_shows() {
    let secret = "sk-live-secret-0123456789abcdef";
    for provider in PROVIDERS {
        let server = server("").await;
        let client = client_with(config(&server, provider, quick()), secret);
        assert!(!format!("{client:?}").contains(secret));
        let error = ask(&client).await.unwrap_err();
        assert!(matches!(error, LlmError::Api { status: 401, attempts: 1, .. }), "{error:?}");
        for shown in [format!("{error}"), format!("{error:?}")] {
            assert!(!shown.contains(secret), "{shown}");
        }
        server.shutdown().await;
    }
    let missing = ClientConfig::openai("http://127.0.0.1:9/v1", "m", "QF_LLM_TEST_UNSET_VARIABLE");
    let clock = Arc::new(llm::SystemClock);
    let error = Client::from_env(missing, clock, ChaCha8Rng::seed_from_u64(0)).unwrap_err();
    assert!(matches!(&error, LlmError::MissingKey { env } if env == "QF_LLM_TEST_UNSET_VARIABLE"), "{error:?}");
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // A port that was just free: nothing listens there now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = ClientConfig {
        retry: RetryPolicy { max_retries: 1, ..quick() },
        ..ClientConfig::openai(&format!("http://{addr}/v1"), "m", "K")
    };
    match ask(&client_with(config, KEY)).await {
        Err(LlmError::Connection { attempts: 2, message }) => assert!(!message.is_empty()),
        other => panic!("{other:?}"),
    }
}
