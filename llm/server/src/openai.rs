//! `POST /v1/chat/completions` (VENUES.md §4.1): validation and error bodies as OpenAI's,
//! `{"error": {"message", "type", "param", "code"}}` with all four keys, and the answer.
//!
//! Order of checks, as a real API gateway has them: the key (401), the scripted HTTP faults
//! (429/5xx), a slow fault's wait, then the body (400), then the answer and its faults.
//! Not modelled: streaming (a `stream: true` request is refused with 400), tools, logprobs.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri},
    response::Response,
};
use serde_json::{json, Map, Value};

use crate::{
    model::{self, count_tokens, TOKENS_PER_MESSAGE},
    script::Fault,
    server::{wall_s, Api, Shared},
    wire::{self, header, json_response, type_name},
};

const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];
/// What the refusal fault says, in the shape OpenAI's safety refusals take.
pub const REFUSAL: &str = "I'm sorry, but I can't help with that request.";
/// The most choices one request may ask for (OpenAI's limit is 128; a local server needs few).
const N_MAX: u64 = 8;

/// An OpenAI error answer.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&'static str>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code,
            headers: Vec::new(),
        }
    }

    fn missing(param: &str) -> ApiError {
        ApiError::invalid(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
        let message = format!("Invalid type for '{param}': expected {expected}, but got {} instead.", type_name(got));
        ApiError::invalid(message, Some(param), Some("invalid_type"))
    }

    fn into_response(self, request_id: &str) -> Response {
        let body =
            json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}});
        let mut headers = self.headers;
        headers.push(("x-request-id", request_id.to_owned()));
        json_response(self.status, &body, &headers)
    }
}

/// The error answer of an HTTP-level fault; `None` for faults inside a normal answer.
fn fault_error(fault: Fault) -> Option<ApiError> {
    let server_error = |status, message: &str, kind, code| ApiError {
        status,
        message: message.to_owned(),
        kind,
        param: None,
        code,
        headers: Vec::new(),
    };
    let error = match fault {
        Fault::RateLimited { retry_after_s } => {
            let wait = retry_after_s.map_or_else(|| "a moment".to_owned(), |s| format!("{s}s"));
            let message = format!(
                "Rate limit reached in organization org-quantfold on requests per min (RPM): Limit 60, Used 60, \
                 Requested 1. Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more."
            );
            let mut headers = wire::retry_headers(retry_after_s);
            headers.extend([
                ("x-ratelimit-limit-requests", "60".to_owned()),
                ("x-ratelimit-remaining-requests", "0".to_owned()),
                ("x-ratelimit-reset-requests", retry_after_s.map_or_else(|| "1s".to_owned(), |s| format!("{s}s"))),
            ]);
            ApiError { headers, ..server_error(429, &message, "requests", Some("rate_limit_exceeded")) }
        }
        Fault::Quota => server_error(
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information on this \
             error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
        Fault::Status(503) => {
            server_error(503, "The server is overloaded or not ready yet.", "service_unavailable_error", Some("server_is_overloaded"))
        }
        // OpenAI does not answer 529; the fault sends it anyway, with an overload body, to test
        // clients that meet it through OpenAI-compatible routers.
        Fault::Status(529) => server_error(529, "The server is overloaded.", "server_error", Some("overloaded")),
        Fault::Status(408) => server_error(408, "Request timed out.", "invalid_request_error", None),
        Fault::Status(409) => server_error(409, "Conflict: the request collided with another.", "invalid_request_error", None),
        Fault::Status(status) => server_error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        _ => return None,
    };
    Some(error)
}

/// What the answer needs from a valid request.
#[derive(Debug)]
struct Parsed {
    model: String,
    prompt: String,
    prompt_tokens: u64,
    max_tokens: Option<u64>,
    n: u64,
}

fn get_str<'a>(object: &'a Map<String, Value>, key: &str, param: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::wrong_type(param, "a string", other)),
    }
}

fn positive_integer(object: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(v) if v >= 1 => Ok(Some(v as u64)),
            Some(v) => Err(ApiError::invalid(
                format!("Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {v} instead."),
                Some(key),
                Some("integer_below_min_value"),
            )),
            None => Err(ApiError::wrong_type(key, "an integer", value)),
        },
    }
}

fn check_messages(object: &Map<String, Value>) -> Result<(String, u64), ApiError> {
    let messages = match object.get("messages") {
        None => return Err(ApiError::missing("messages")),
        Some(Value::Array(messages)) => messages,
        Some(other) => return Err(ApiError::wrong_type("messages", "an array of objects", other)),
    };
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            Some("messages"),
            Some("empty_array"),
        ));
    }
    let mut texts = Vec::with_capacity(messages.len());
    let mut tokens = 0;
    for (i, message) in messages.iter().enumerate() {
        let Some(message) = message.as_object() else {
            return Err(ApiError::wrong_type(&format!("messages[{i}]"), "an object", message));
        };
        let role_param = format!("messages[{i}].role");
        let role = get_str(message, "role", &role_param)?.ok_or_else(|| ApiError::missing(&role_param))?;
        if !ROLES.contains(&role) {
            return Err(ApiError::invalid(
                format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                ),
                Some(&role_param),
                Some("invalid_value"),
            ));
        }
        let content = message.get("content").unwrap_or(&Value::Null);
        if content.is_null() && role != "assistant" {
            return Err(ApiError::missing(&format!("messages[{i}].content")));
        }
        let text = wire::content_text(content);
        tokens += count_tokens(&text) + TOKENS_PER_MESSAGE;
        texts.push(text);
    }
    Ok((texts.join("\n"), tokens))
}

/// Strict mode's JSON-Schema subset (VENUES.md §4.1): every object lists all its properties in
/// `required` and sets `additionalProperties: false`; the root is an object.
fn check_strict(schema: &Value, name: &str, context: &str) -> Result<(), ApiError> {
    let fail = |why: String| {
        ApiError::invalid(
            format!("Invalid schema for response_format '{name}': In context=({context}), {why}."),
            Some("response_format"),
            None,
        )
    };
    let is_object = match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        _ => false,
    };
    if context.is_empty() && !is_object {
        return Err(ApiError::invalid(
            format!("Invalid schema for response_format '{name}': schema must be a JSON Schema of 'type: \"object\"'."),
            Some("response_format"),
            None,
        ));
    }
    if is_object {
        if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(fail("'additionalProperties' is required to be supplied and to be false".to_owned()));
        }
        let properties = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(missing) = properties.keys().find(|key| !required.contains(&key.as_str())) {
            return Err(fail(format!(
                "'required' is required to be supplied and to be an array including every key in properties. Missing '{missing}'"
            )));
        }
        for (key, property) in &properties {
            let inner = if context.is_empty() {
                format!("'properties', '{key}'")
            } else {
                format!("{context}, 'properties', '{key}'")
            };
            check_strict(property, name, &inner)?;
        }
    }
    if let Some(items) = schema.get("items") {
        check_strict(items, name, &format!("{context}, 'items'"))?;
    }
    Ok(())
}

fn check_response_format(object: &Map<String, Value>, prompt: &str) -> Result<(), ApiError> {
    let Some(format) = object.get("response_format").filter(|f| !f.is_null()) else { return Ok(()) };
    let Some(format) = format.as_object() else {
        return Err(ApiError::wrong_type("response_format", "an object", format));
    };
    let kind =
        get_str(format, "type", "response_format.type")?.ok_or_else(|| ApiError::missing("response_format.type"))?;
    match kind {
        "text" => Ok(()),
        "json_object" if !prompt.to_ascii_lowercase().contains("json") => Err(ApiError::invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            Some("messages"),
            None,
        )),
        "json_object" => Ok(()),
        "json_schema" => {
            let spec = match format.get("json_schema") {
                None => return Err(ApiError::missing("response_format.json_schema")),
                Some(Value::Object(spec)) => spec,
                Some(other) => return Err(ApiError::wrong_type("response_format.json_schema", "an object", other)),
            };
            let name = get_str(spec, "name", "response_format.json_schema.name")?
                .ok_or_else(|| ApiError::missing("response_format.json_schema.name"))?;
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(ApiError::invalid(
                    "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that \
                     matches the pattern '^[a-zA-Z0-9_-]+$' and is at most 64 characters long.",
                    Some("response_format.json_schema.name"),
                    Some("invalid_value"),
                ));
            }
            if spec.get("strict") == Some(&Value::Bool(true)) {
                let schema = spec.get("schema").unwrap_or(&Value::Null);
                check_strict(schema, name, "")?;
            }
            Ok(())
        }
        other => Err(ApiError::invalid(
            format!("Invalid value: '{other}'. Supported values are: 'text', 'json_object', and 'json_schema'."),
            Some("response_format.type"),
            Some("invalid_value"),
        )),
    }
}

fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP \
             library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    let Some(object) = value.as_object() else { return Err(ApiError::wrong_type("body", "an object", &value)) };
    let model = get_str(object, "model", "model")?
        .ok_or_else(|| ApiError::invalid("you must provide a model parameter", None, None))?
        .to_owned();
    let (prompt, prompt_tokens) = check_messages(object)?;
    if object.get("stream") == Some(&Value::Bool(true)) {
        return Err(ApiError::invalid(
            "This server does not stream: set 'stream' to false.",
            Some("stream"),
            Some("unsupported_value"),
        ));
    }
    if let Some(t) = object.get("temperature").filter(|t| !t.is_null()) {
        match t.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => {}
            Some(t) => {
                return Err(ApiError::invalid(
                    format!(
                    "Invalid 'temperature': decimal out of range. Expected a value from 0 to 2, but got {t} instead."
                ),
                    Some("temperature"),
                    Some("decimal_out_of_range"),
                ))
            }
            None => return Err(ApiError::wrong_type("temperature", "a decimal", t)),
        }
    }
    let max_tokens = match positive_integer(object, "max_completion_tokens")? {
        Some(max) => Some(max),
        None => positive_integer(object, "max_tokens")?,
    };
    let n = positive_integer(object, "n")?.unwrap_or(1);
    if n > N_MAX {
        return Err(ApiError::invalid(
            format!("Invalid 'n': integer above maximum value. Expected a value <= {N_MAX}, but got {n} instead."),
            Some("n"),
            Some("integer_above_max_value"),
        ));
    }
    check_response_format(object, &prompt)?;
    Ok(Parsed { model, prompt, prompt_tokens, max_tokens, n })
}

/// The `message` and `finish_reason` of the answer, with the fault applied.
fn answer(parsed: &Parsed, seed: u64, fault: Option<Fault>) -> (Value, &'static str, u64) {
    let decision = model::decide(&parsed.prompt, seed);
    let text = match fault {
        Some(Fault::SchemaViolation) => model::violate(&decision).to_string(),
        _ => decision.to_string(),
    };
    let (content, finish) = match fault {
        Some(Fault::Refusal) => {
            let message = json!({"role": "assistant", "content": null, "refusal": REFUSAL, "annotations": []});
            return (message, "stop", count_tokens(REFUSAL));
        }
        Some(Fault::MalformedJson) => (model::cut(&text), "stop"),
        Some(Fault::Length) => (model::cut(&text), "length"),
        _ => match parsed.max_tokens {
            Some(limit) => match wire::fit(&text, limit) {
                (cut, true) => (cut, "length"),
                (whole, false) => (whole, "stop"),
            },
            None => (text, "stop"),
        },
    };
    let tokens = match (fault, parsed.max_tokens) {
        (Some(Fault::Length), Some(limit)) => limit,
        _ => count_tokens(&content),
    };
    (json!({"role": "assistant", "content": content, "refusal": null, "annotations": []}), finish, tokens)
}

/// The handler.
pub async fn chat_completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (n, fault) = shared.arrive(Api::OpenAi, wire::sdk_retry_count(&headers));
    let request_id = shared.id("req_", n);
    let response = respond(&shared, n, fault, &headers, &body, &request_id).await;
    shared.answered(n, response.status().as_u16());
    response
}

async fn respond(
    shared: &Shared,
    n: u64,
    fault: Option<Fault>,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Response {
    let key = header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match key {
        None => {
            return ApiError {
                status: 401,
                ..ApiError::invalid(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using \
                     Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    None,
                    None,
                )
            }
            .into_response(request_id)
        }
        Some(key) if !shared.key_ok(key) => {
            // Like OpenAI, show only the key's ends, so logs of this answer do not leak it.
            let shown: String = if key.chars().count() > 8 {
                format!(
                    "{}***{}",
                    key.chars().take(3).collect::<String>(),
                    key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<String>()
                )
            } else {
                "***".to_owned()
            };
            return ApiError {
                status: 401,
                ..ApiError::invalid(
                    format!("Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."),
                    None,
                    Some("invalid_api_key"),
                )
            }
            .into_response(request_id);
        }
        Some(_) => {}
    }
    if let Some(error) = fault.and_then(fault_error) {
        return error.into_response(request_id);
    }
    if wire::wait_if_slow(shared, fault).await {
        return fault_error(Fault::Status(503))
            .map_or_else(|| json_response(503, &json!({}), &[]), |e| e.into_response(request_id));
    }
    let parsed = match parse(body) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(request_id),
    };
    let (message, finish_reason, completion_tokens) = answer(&parsed, shared.config.seed, fault);
    let choices: Vec<Value> = (0..parsed.n)
        .map(|index| json!({"index": index, "message": message, "finish_reason": finish_reason, "logprobs": null}))
        .collect();
    let completion_tokens = completion_tokens * parsed.n;
    let body = json!({
        "id": shared.id("chatcmpl-", n),
        "object": "chat.completion",
        "created": wall_s(),
        "model": parsed.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": parsed.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": parsed.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": format!("fp_qf{:x}", shared.config.seed),
    });
    let headers = [("x-request-id", request_id.to_owned()), ("openai-processing-ms", "1".to_owned())];
    if fault == Some(Fault::BadBody) {
        return wire::bad_body(&body, &headers);
    }
    json_response(200, &body, &headers)
}

/// Any other path: OpenAI's 404 for an unknown URL.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    let body = json!({"error": {"message": format!("Invalid URL ({method} {})", uri.path()), "type": "invalid_request_error", "param": null, "code": null}});
    json_response(404, &body, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_schemas_must_close_and_require_every_object() {
        let good = json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "object", "additionalProperties": false, "required": [], "properties": {}}}});
        assert!(check_strict(&good, "d", "").is_ok());
        let open = json!({"type": "object", "required": [], "properties": {}});
        assert!(check_strict(&open, "d", "").unwrap_err().message.contains("'additionalProperties' is required"));
        let optional = json!({"type": "object", "additionalProperties": false, "required": [], "properties": {"a": {"type": "string"}}});
        assert!(check_strict(&optional, "d", "").unwrap_err().message.contains("Missing 'a'"));
        let nested = json!({"type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "object", "properties": {}}}});
        assert!(check_strict(&nested, "d", "").unwrap_err().message.contains("context=('properties', 'a')"));
        assert!(check_strict(&json!({"type": "array"}), "d", "").unwrap_err().message.contains("type: \"object\""));
    }

    #[test]
    fn bad_requests_get_openai_errors() {
        let cases: [(&str, Option<&str>, Option<&str>); 11] = [
            ("{", None, None),
            ("[]", Some("body"), Some("invalid_type")),
            (r#"{"model": 4, "messages": []}"#, Some("model"), Some("invalid_type")),
            (r#"{"model": "m", "messages": "hi"}"#, Some("messages"), Some("invalid_type")),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}"#,
                Some("response_format.type"),
                Some("invalid_value"),
            ),
            (r#"{"messages": []}"#, None, None),
            (r#"{"model": "m"}"#, Some("messages"), Some("missing_required_parameter")),
            (r#"{"model": "m", "messages": []}"#, Some("messages"), Some("empty_array")),
            (
                r#"{"model": "m", "messages": [{"role": "robot", "content": "x"}]}"#,
                Some("messages[0].role"),
                Some("invalid_value"),
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0}"#,
                Some("max_completion_tokens"),
                Some("integer_below_min_value"),
            ),
            (
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}"#,
                Some("response_format.json_schema.name"),
                Some("missing_required_parameter"),
            ),
        ];
        for (body, param, code) in cases {
            let error = parse(body.as_bytes()).unwrap_err();
            assert_eq!((error.status, error.param.as_deref(), error.code), (400, param, code), "{body}");
        }
    }
}
