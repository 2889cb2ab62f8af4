//! The server's wire behaviour over real sockets, as raw HTTP: error bodies and headers, the
//! request log, faults by number and the seeded random mode. (The official SDKs' view is in
//! `sdk.rs`.)

use std::time::Duration;

use llm_server::{Api, Config, Script, Server};
use serde_json::{json, Value};

const KEY: &str = "qf-test-key";
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const PROMPT: &str = "symbol: ETHUSDT current_price: 1900 ema20: 2000 rsi14: 45";

async fn server(spec: &str, seed: u64) -> Server {
    let config =
        Config { script: Script::parse(spec).unwrap(), seed, api_key: Some(KEY.to_owned()), ..Config::default() };
    llm_server::serve(config).await.unwrap()
}

fn openai_body() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]})
}

fn anthropic_body() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": [{"name": "decide", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "decide"},
    })
}

/// Posts and returns status, headers and the body as JSON (Null when it is not JSON).
async fn post(url: String, headers: &[(&str, &str)], body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().post(url).header("content-type", "application/json").body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(TEST_TIMEOUT, request.send())
        .await
        .expect("answered in time")
        .expect("the request is sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn openai(server: &Server, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let auth = format!("Bearer {KEY}");
    post(format!("{}/chat/completions", server.openai_base_url()), &[("authorization", &auth)], &body.to_string()).await
}

async fn anthropic(server: &Server, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let headers = [("x-api-key", KEY), ("anthropic-version", "2023-06-01")];
    post(format!("{}/v1/messages", server.anthropic_base_url()), &headers, &body.to_string()).await
}

#[tokio::test]
async fn answers_carry_the_decision_ids_and_usage() {
    let server = server("", 3).await;
    let (status, headers, body) = openai(&server, &openai_body()).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let decision: Value = serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!((decision["signal"].as_str(), decision["symbol"].as_str()), (Some("sell_to_enter"), Some("ETHUSDT")));
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap())
    );

    let (status, headers, body) = anthropic(&server, &anthropic_body()).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("request-id"));
    assert_eq!((body["type"].as_str(), body["stop_reason"].as_str()), (Some("message"), Some("tool_use")));
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["input"], decision, "one prompt and seed, one decision, whichever API");
    server.shutdown().await;
}

#[tokio::test]
async fn error_bodies_have_each_providers_shape() {
    let server = server("429:0.25@4,529@5,quota@6,503@7", 0).await;
    // 1: no key (OpenAI): all four keys, nulls included.
    let (status, _, body) = post(format!("{}/chat/completions", server.openai_base_url()), &[], "{}").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"].as_object().map(|e| e.len()), Some(4), "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // 2: no anthropic-version.
    let url = format!("{}/v1/messages", server.anthropic_base_url());
    let (status, _, body) = post(url.clone(), &[("x-api-key", KEY)], &anthropic_body().to_string()).await;
    assert_eq!(
        (status, &body["type"], &body["error"]["type"]),
        (400, &json!("error"), &json!("invalid_request_error")),
        "{body}"
    );
    assert!(body["request_id"].as_str().is_some_and(|id| id.starts_with("req_")));
    // 3: a wrong key (Anthropic).
    let (status, _, body) = post(url, &[("x-api-key", "nope"), ("anthropic-version", "2023-06-01")], "{}").await;
    assert_eq!((status, body["error"]["type"].as_str()), (401, Some("authentication_error")));
    // An unknown path: not an API request, so it takes no number.
    let (status, _, body) = post(format!("{}/engines", server.openai_base_url()), &[], "{}").await;
    assert_eq!((status, body["error"]["message"].as_str()), (404, Some("Invalid URL (POST /v1/engines)")));
    // 4: a 429 that names its wait in both headers.
    let (status, headers, body) = openai(&server, &openai_body()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limit_exceeded")));
    assert_eq!((headers["retry-after"].to_str().unwrap(), headers["retry-after-ms"].to_str().unwrap()), ("1", "250"));
    // 5: Anthropic's overload.
    let (status, _, body) = anthropic(&server, &anthropic_body()).await;
    assert_eq!(
        (status, body["error"]["type"].as_str(), body["error"]["message"].as_str()),
        (529, Some("overloaded_error"), Some("Overloaded"))
    );
    // 6: an exhausted quota says so, and names no wait.
    let (status, headers, body) = openai(&server, &openai_body()).await;
    assert_eq!(
        (status, body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (429, Some("insufficient_quota"), Some("insufficient_quota"))
    );
    assert!(!headers.contains_key("retry-after"));
    // 7: OpenAI's overload.
    let (status, _, body) = openai(&server, &openai_body()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("server_is_overloaded")));

    let log: Vec<(u64, Api, Option<String>, u16)> =
        server.requests().into_iter().map(|e| (e.n, e.api, e.fault, e.status)).collect();
    assert_eq!(
        log,
        vec![
            (1, Api::OpenAi, None, 401),
            (2, Api::Anthropic, None, 400),
            (3, Api::Anthropic, None, 401),
            (4, Api::OpenAi, Some("429:0.25".into()), 429),
            (5, Api::Anthropic, Some("529".into()), 529),
            (6, Api::OpenAi, Some("quota".into()), 429),
            (7, Api::OpenAi, Some("503".into()), 503),
        ],
        "the 404 takes no number"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn answer_faults_and_token_limits() {
    let server = server("refusal@1,length@2,schema_violation@3,bad_body@4,refusal@5", 0).await;
    let (_, _, body) = openai(&server, &openai_body()).await;
    let message = &body["choices"][0]["message"];
    assert_eq!((message["content"].is_null(), message["refusal"].is_string()), (true, true), "{body}");
    let (_, _, body) = openai(&server, &openai_body()).await;
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert!(serde_json::from_str::<Value>(body["choices"][0]["message"]["content"].as_str().unwrap()).is_err());
    let (_, _, body) = anthropic(&server, &anthropic_body()).await;
    assert_eq!(body["content"][0]["input"]["confidence"], 150);
    let (status, _, body) = anthropic(&server, &anthropic_body()).await;
    assert_eq!((status, body), (200, Value::Null), "a body that is not JSON");
    let (_, _, body) = anthropic(&server, &anthropic_body()).await;
    assert_eq!((body["stop_reason"].as_str(), body["content"][0]["type"].as_str()), (Some("refusal"), Some("text")));
    // No fault, but a token limit smaller than the answer: cut as a real model would be.
    let mut small = anthropic_body();
    small["max_tokens"] = json!(5);
    let (_, _, body) = anthropic(&server, &small).await;
    assert_eq!((body["stop_reason"].as_str(), body["usage"]["output_tokens"].as_u64()), (Some("max_tokens"), Some(5)));
    let mut small = openai_body();
    small["max_completion_tokens"] = json!(5);
    let (_, _, body) = openai(&server, &small).await;
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() <= 5);
    server.shutdown().await;
}

#[tokio::test]
async fn the_random_mode_repeats_with_its_seed() {
    let faults_of = |seed| async move {
        let server = server("random:0.5", seed).await;
        for _ in 0..12 {
            // Slow faults are part of the draw; the bounded request above keeps each in time.
            let _ = anthropic(&server, &anthropic_body()).await;
        }
        let faults: Vec<Option<String>> = server.requests().into_iter().map(|e| e.fault).collect();
        server.shutdown().await;
        faults
    };
    let first = faults_of(11).await;
    assert_eq!(first, faults_of(11).await);
    assert!(first.iter().any(Option::is_some) && first.iter().any(Option::is_none), "{first:?}");
}

#[tokio::test]
async fn tests_can_wait_for_a_slow_request_to_arrive() {
    let server = server("slow:20000@1", 0).await;
    let url = format!("{}/chat/completions", server.openai_base_url());
    let auth = format!("Bearer {KEY}");
    let request = reqwest::Client::new().post(url).header("authorization", auth).json(&openai_body()).send();
    let pending = tokio::spawn(request);
    assert!(server.wait_for_requests(1, TEST_TIMEOUT).await);
    assert_eq!(server.requests()[0].status, 0, "still being answered");
    assert!(!server.wait_for_requests(2, Duration::from_millis(50)).await);
    // Stopping the server ends the slow answer instead of leaving the client hanging.
    server.shutdown().await;
    let _ = tokio::time::timeout(TEST_TIMEOUT, pending).await.expect("the pending request ends once the server stops");
}
