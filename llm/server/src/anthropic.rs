//! `POST /v1/messages` (VENUES.md §4.2): headers, validation and error bodies as Anthropic's,
//! `{"type": "error", "error": {"type", "message"}, "request_id"}`, and the answer.
//!
//! Order of checks: the key, `x-api-key` or `Authorization: Bearer` (401), `anthropic-version` (400), the scripted HTTP faults
//! (429/5xx/529), a slow fault's wait, then the body (400), then the answer and its faults.
//!
//! `anthropic-version` must be present and shaped `YYYY-MM-DD`: the SDKs send their own pinned
//! date (2023-06-01 for years; newer SDKs newer dates), and a server that knew only one date would
//! refuse tomorrow's SDK. Not modelled: streaming (refused with 400), thinking, images.
//!
//! The tool the model calls: the one `tool_choice: {type: "tool", name}` forces, else (`any`,
//! `auto`) the first of `tools`; with `none` or no tools it answers with a text block holding
//! the JSON.

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde_json::{json, Map, Value};

use crate::{
    model::{self, count_tokens, TOKENS_PER_MESSAGE},
    script::Fault,
    server::{Api, Shared},
    wire::{self, header, json_response, type_name},
};

/// What the refusal fault says.
pub const REFUSAL: &str = "I can't help with placing trades or giving trading decisions.";

/// An Anthropic error answer.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    kind: &'static str,
    message: String,
    details: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into(), details: None, headers: Vec::new() }
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_request_error", message)
    }

    fn into_response(self, request_id: &str) -> Response {
        let mut error = json!({"type": self.kind, "message": self.message});
        if let (Some(details), Some(object)) = (self.details, error.as_object_mut()) {
            object.insert("details".into(), details);
        }
        let body = json!({"type": "error", "error": error, "request_id": request_id});
        let mut headers = self.headers;
        headers.push(("request-id", request_id.to_owned()));
        json_response(self.status, &body, &headers)
    }
}

fn fault_error(fault: Fault) -> Option<ApiError> {
    let error = match fault {
        Fault::RateLimited { retry_after_s } => {
            let mut headers = wire::retry_headers(retry_after_s);
            headers.extend([
                ("anthropic-ratelimit-requests-limit", "50".to_owned()),
                ("anthropic-ratelimit-requests-remaining", "0".to_owned()),
            ]);
            ApiError {
                headers,
                ..ApiError::new(
                    429,
                    "rate_limit_error",
                    "This request would exceed the rate limit for your organization of 50 requests per minute. \
                     For details, refer to: https://docs.claude.com/en/api/rate-limits.",
                )
            }
        }
        // A monthly spend cap: a 429 without `retry-after` whose details say waiting will not help.
        Fault::Quota => ApiError {
            details: Some(json!({"error_code": "enforced_spend_limit_reached"})),
            ..ApiError::new(
                429,
                "rate_limit_error",
                "You have reached your specified API usage limits. You will regain access on the first of next month.",
            )
        },
        Fault::Status(529) => ApiError::new(529, "overloaded_error", "Overloaded"),
        Fault::Status(408) => ApiError::new(408, "timeout_error", "Request timed out"),
        Fault::Status(409) => ApiError::new(409, "api_error", "Conflict"),
        Fault::Status(504) => ApiError::new(504, "timeout_error", "Gateway timeout"),
        Fault::Status(status) => ApiError::new(status, "api_error", "Internal server error"),
        _ => return None,
    };
    Some(error)
}

/// What the answer needs from a valid request.
#[derive(Debug)]
struct Parsed {
    model: String,
    prompt: String,
    input_tokens: u64,
    max_tokens: u64,
    /// The tool to call, if any.
    tool: Option<String>,
}

fn field<'a>(object: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a Value, ApiError> {
    object.get(key).ok_or_else(|| ApiError::invalid(format!("{path}: Field required")))
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, ApiError> {
    value.as_str().ok_or_else(|| ApiError::invalid(format!("{path}: Input should be a valid string")))
}

fn check_messages(object: &Map<String, Value>) -> Result<(Vec<String>, u64), ApiError> {
    let Some(messages) = field(object, "messages", "messages")?.as_array() else {
        return Err(ApiError::invalid("messages: Input should be a valid list"));
    };
    if messages.is_empty() {
        return Err(ApiError::invalid("messages: List should have at least 1 item after validation, not 0"));
    }
    let mut texts = Vec::with_capacity(messages.len());
    let mut tokens = 0;
    for (i, message) in messages.iter().enumerate() {
        let Some(message) = message.as_object() else {
            return Err(ApiError::invalid(format!("messages.{i}: Input should be a valid dictionary")));
        };
        let role = string(field(message, "role", &format!("messages.{i}.role"))?, &format!("messages.{i}.role"))?;
        if role != "user" && role != "assistant" {
            return Err(ApiError::invalid(format!("messages.{i}.role: Input should be 'user' or 'assistant'")));
        }
        let content = field(message, "content", &format!("messages.{i}.content"))?;
        if !(content.is_string() || content.is_array()) {
            return Err(ApiError::invalid(format!(
                "messages.{i}.content: Input should be a valid string or list, not {}",
                type_name(content)
            )));
        }
        let text = wire::content_text(content);
        tokens += count_tokens(&text) + TOKENS_PER_MESSAGE;
        texts.push(text);
    }
    Ok((texts, tokens))
}

/// The tool to call, after checking `tools` and `tool_choice`.
fn check_tools(object: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let tools = match object.get("tools") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(ApiError::invalid("tools: Input should be a valid list")),
    };
    let mut names = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let Some(tool) = tool.as_object() else {
            return Err(ApiError::invalid(format!("tools.{i}: Input should be a valid dictionary")));
        };
        let name = string(field(tool, "name", &format!("tools.{i}.name"))?, &format!("tools.{i}.name"))?;
        let name_ok =
            (1..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(ApiError::invalid(format!(
                "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )));
        }
        names.push(name.to_owned());
        if !field(tool, "input_schema", &format!("tools.{i}.input_schema"))?.is_object() {
            return Err(ApiError::invalid(format!("tools.{i}.input_schema: Input should be a valid dictionary")));
        }
    }
    let Some(choice) = object.get("tool_choice").filter(|c| !c.is_null()) else { return Ok(names.first().cloned()) };
    let Some(choice) = choice.as_object() else {
        return Err(ApiError::invalid("tool_choice: Input should be a valid dictionary"));
    };
    let kind = string(field(choice, "type", "tool_choice.type")?, "tool_choice.type")?;
    if kind != "none" && names.is_empty() {
        return Err(ApiError::invalid("tool_choice may only be specified while providing tools."));
    }
    match kind {
        "none" => Ok(None),
        "auto" | "any" => Ok(names.first().cloned()),
        "tool" => {
            let name = string(field(choice, "name", "tool_choice.name")?, "tool_choice.name")?;
            if names.iter().any(|n| n == name) {
                Ok(Some(name.to_owned()))
            } else {
                Err(ApiError::invalid(format!("tool_choice.name: tool '{name}' is not among the provided tools")))
            }
        }
        other => Err(ApiError::invalid(format!(
            "tool_choice: Input tag '{other}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        ))),
    }
}

fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("There was an error parsing the body of your request: {e}")))?;
    let Some(object) = value.as_object() else { return Err(ApiError::invalid("Input should be a valid dictionary")) };
    let model = string(field(object, "model", "model")?, "model")?.to_owned();
    let max_tokens = match field(object, "max_tokens", "max_tokens")?.as_i64() {
        Some(max) if max >= 1 => max as u64,
        Some(_) => return Err(ApiError::invalid("max_tokens: Input should be greater than or equal to 1")),
        None => return Err(ApiError::invalid("max_tokens: Input should be a valid integer")),
    };
    let (mut texts, mut input_tokens) = check_messages(object)?;
    match object.get("system") {
        None | Some(Value::Null) => {}
        Some(system @ (Value::String(_) | Value::Array(_))) => {
            let text = wire::content_text(system);
            input_tokens += count_tokens(&text);
            texts.insert(0, text);
        }
        Some(_) => return Err(ApiError::invalid("system: Input should be a valid string or list")),
    }
    if object.get("stream") == Some(&Value::Bool(true)) {
        return Err(ApiError::invalid("stream: this server does not stream; set it to false"));
    }
    if let Some(t) = object.get("temperature").filter(|t| !t.is_null()) {
        match t.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => {}
            Some(_) => return Err(ApiError::invalid("temperature: Input should be less than or equal to 1")),
            None => return Err(ApiError::invalid("temperature: Input should be a valid number")),
        }
    }
    let tool = check_tools(object)?;
    Ok(Parsed { model, prompt: texts.join("\n"), input_tokens, max_tokens, tool })
}

/// The first half of a decision's keys: what a tool call cut by `max_tokens` carries.
fn half_object(decision: &Value) -> Value {
    let Some(object) = decision.as_object() else { return json!({}) };
    Value::Object(object.iter().take(object.len() / 2).map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The content blocks, `stop_reason` and output tokens, with the fault applied.
fn answer(shared: &Shared, n: u64, parsed: &Parsed, fault: Option<Fault>) -> (Value, &'static str, u64) {
    let decision = model::decide(&parsed.prompt, shared.config.seed);
    let decision = if fault == Some(Fault::SchemaViolation) { model::violate(&decision) } else { decision };
    let text = decision.to_string();
    let text_block = |text: &str| json!({"type": "text", "text": text});
    match fault {
        Some(Fault::Refusal) => return (json!([text_block(REFUSAL)]), "refusal", count_tokens(REFUSAL)),
        // A model that ignored the forced tool and wrote broken JSON as text.
        Some(Fault::MalformedJson) => {
            let cut = model::cut(&text);
            return (json!([text_block(&cut)]), "end_turn", count_tokens(&cut));
        }
        _ => {}
    }
    let truncated = fault == Some(Fault::Length) || count_tokens(&text) > parsed.max_tokens;
    match &parsed.tool {
        Some(name) => {
            let input = if truncated { half_object(&decision) } else { decision };
            let tokens = if truncated { parsed.max_tokens } else { count_tokens(&text) };
            let block = json!({"type": "tool_use", "id": shared.id("toolu_", n), "name": name, "input": input});
            (json!([block]), if truncated { "max_tokens" } else { "tool_use" }, tokens)
        }
        None if truncated => {
            let (cut, _) = wire::fit(&text, parsed.max_tokens);
            let cut = if fault == Some(Fault::Length) { model::cut(&text) } else { cut };
            let tokens = count_tokens(&cut);
            (json!([text_block(&cut)]), "max_tokens", tokens)
        }
        None => (json!([text_block(&text)]), "end_turn", count_tokens(&text)),
    }
}

/// The handler.
pub async fn messages(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (n, fault) = shared.arrive(Api::Anthropic, wire::sdk_retry_count(&headers));
    let request_id = shared.id("req_01", n);
    let response = respond(&shared, n, fault, &headers, &body, &request_id).await;
    shared.answered(n, response.status().as_u16());
    response
}

fn version_ok(version: &str) -> bool {
    let bytes = version.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() })
        && version >= "2023-01-01"
}

async fn respond(
    shared: &Shared,
    n: u64,
    fault: Option<Fault>,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Response {
    // `x-api-key` as VENUES.md §4.2 has it; newer SDKs (anthropic 2.x) send the same key as
    // `Authorization: Bearer`, which the API accepts too.
    let bearer = header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match header(headers, "x-api-key").or(bearer) {
        None => {
            return ApiError::new(401, "authentication_error", "x-api-key header is required").into_response(request_id)
        }
        Some(key) if !shared.key_ok(key) => {
            return ApiError::new(401, "authentication_error", "invalid x-api-key").into_response(request_id)
        }
        Some(_) => {}
    }
    match header(headers, "anthropic-version") {
        None => return ApiError::invalid("anthropic-version: header is required").into_response(request_id),
        Some(version) if !version_ok(version) => {
            return ApiError::invalid(format!("anthropic-version: invalid version '{version}'"))
                .into_response(request_id)
        }
        Some(_) => {}
    }
    if let Some(error) = fault.and_then(fault_error) {
        return error.into_response(request_id);
    }
    if wire::wait_if_slow(shared, fault).await {
        return ApiError::new(529, "overloaded_error", "Overloaded").into_response(request_id);
    }
    let parsed = match parse(body) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(request_id),
    };
    let (content, stop_reason, output_tokens) = answer(shared, n, &parsed, fault);
    let body = json!({
        "id": shared.id("msg_01", n),
        "type": "message",
        "role": "assistant",
        "model": parsed.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": parsed.input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    });
    let headers = [("request-id", request_id.to_owned())];
    if fault == Some(Fault::BadBody) {
        return wire::bad_body(&body, &headers);
    }
    json_response(200, &body, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dates() {
        for (version, ok) in
            [("2023-06-01", true), ("2026-10-21", true), ("2022-01-01", false), ("latest", false), ("2023-6-1", false)]
        {
            assert_eq!(version_ok(version), ok, "{version}");
        }
    }

    #[test]
    fn bad_requests_get_anthropic_messages() {
        let cases = [
            ("{", "There was an error parsing the body"),
            ("[]", "Input should be a valid dictionary"),
            (r#"{"model": "m", "max_tokens": "10", "messages": []}"#, "max_tokens: Input should be a valid integer"),
            (
                r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": 5}]}"#,
                "messages.0.content: Input should be a valid string or list",
            ),
            (r#"{"max_tokens": 10, "messages": []}"#, "model: Field required"),
            (r#"{"model": "m", "messages": []}"#, "max_tokens: Field required"),
            (
                r#"{"model": "m", "max_tokens": 0, "messages": []}"#,
                "max_tokens: Input should be greater than or equal to 1",
            ),
            (r#"{"model": "m", "max_tokens": 10, "messages": []}"#, "messages: List should have at least 1 item"),
            (
                r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}"#,
                "messages.0.role: Input should be 'user' or 'assistant'",
            ),
            (
                r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "t"}]}"#,
                "tools.0.input_schema: Field required",
            ),
            (
                r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "tool", "name": "t"}}"#,
                "tool_choice may only be specified while providing tools",
            ),
            (
                r#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "t", "input_schema": {}}], "tool_choice": {"type": "tool", "name": "u"}}"#,
                "tool 'u' is not among",
            ),
        ];
        for (body, expected) in cases {
            let error = parse(body.as_bytes()).unwrap_err();
            assert_eq!((error.status, error.kind), (400, "invalid_request_error"), "{body}");
            assert!(error.message.contains(expected), "{body}: {}", error.message);
        }
    }
}
