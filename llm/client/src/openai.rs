//! OpenAI Chat Completions (VENUES.md §4.1): the request with a strict `json_schema` response
//! format, and reading the answer out of `choices[0].message`.

use serde_json::{json, Value};

use crate::{Answer, ClientConfig, LlmError, Prompt, Usage};

/// The request body.
pub fn body(config: &ClientConfig, prompt: &Prompt) -> Value {
    let mut messages = Vec::with_capacity(2);
    if !prompt.system.is_empty() {
        messages.push(json!({"role": "system", "content": prompt.system}));
    }
    messages.push(json!({"role": "user", "content": prompt.user}));
    let mut body = json!({
        "model": config.model,
        "messages": messages,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": prompt.schema_name, "strict": true, "schema": prompt.schema},
        },
        "max_completion_tokens": config.max_tokens,
    });
    if let Some(object) = body.as_object_mut() {
        if let Some(temperature) = config.temperature {
            object.insert("temperature".into(), json!(temperature));
        }
        if let Some(seed) = config.seed {
            object.insert("seed".into(), json!(seed));
        }
    }
    body
}

/// The answer's JSON text, model and usage, or why there is none. The JSON is not yet checked
/// against the schema (the caller does that for both providers alike).
pub fn read(text: &str, status: u16) -> Result<Answer, LlmError> {
    let malformed = |detail: &str| LlmError::MalformedBody { status, detail: detail.to_owned(), body: text.to_owned() };
    let value: Value = serde_json::from_str(text).map_err(|e| malformed(&format!("not JSON: {e}")))?;
    let choice = value.get("choices").and_then(|c| c.get(0)).ok_or_else(|| malformed("no choices[0]"))?;
    let message = choice.get("message").ok_or_else(|| malformed("no choices[0].message"))?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        return Err(LlmError::Refusal { message: refusal.to_owned(), body: text.to_owned() });
    }
    match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => {
            return Err(LlmError::Truncated { reason: "finish_reason: length".to_owned(), body: text.to_owned() })
        }
        Some("content_filter") => {
            return Err(LlmError::Refusal {
                message: "finish_reason: content_filter".to_owned(),
                body: text.to_owned(),
            })
        }
        _ => {}
    }
    let content =
        message.get("content").and_then(Value::as_str).ok_or_else(|| malformed("no choices[0].message.content"))?;
    let usage = value.get("usage");
    let count = |key| usage.and_then(|u| u.get(key)).and_then(Value::as_u64).unwrap_or(0);
    Ok(Answer {
        id: value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        model: value.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        usage: Usage { input_tokens: count("prompt_tokens"), output_tokens: count("completion_tokens") },
        json: content.to_owned(),
        stop_reason: choice.get("finish_reason").and_then(Value::as_str).unwrap_or_default().to_owned(),
    })
}

/// The error type, code and message of an error body (`{"error": {message, type, param, code}}`).
pub fn error_fields(body: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let error = body.get("error");
    let field = |key| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_owned);
    (field("type"), field("code"), field("message"))
}
