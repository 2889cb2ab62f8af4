//! Anthropic Messages (VENUES.md §4.2): the request forcing one tool whose input schema is the
//! answer's, and reading the answer out of its `tool_use` block.

use serde_json::{json, Value};

use crate::{Answer, ClientConfig, LlmError, Prompt, Usage};

/// The `anthropic-version` sent unless the config names another: the long-stable one.
pub const VERSION: &str = "2023-06-01";

/// The request body.
pub fn body(config: &ClientConfig, prompt: &Prompt) -> Value {
    let mut body = json!({
        "model": config.model,
        "max_tokens": config.max_tokens,
        "messages": [{"role": "user", "content": prompt.user}],
        "tools": [{
            "name": prompt.schema_name,
            "description": "Submit the answer. Its input is the whole answer.",
            "input_schema": prompt.schema,
        }],
        "tool_choice": {"type": "tool", "name": prompt.schema_name},
    });
    if let Some(object) = body.as_object_mut() {
        if !prompt.system.is_empty() {
            object.insert("system".into(), json!(prompt.system));
        }
        if let Some(temperature) = config.temperature {
            object.insert("temperature".into(), json!(temperature));
        }
    }
    body
}

/// The answer's JSON text (the forced tool's `input`), model and usage, or why there is none.
///
/// Without the tool's block, a text answer that is JSON is taken as the answer (a model that
/// ignored the tool but answered), and one that is not is malformed JSON.
pub fn read(text: &str, status: u16, tool: &str) -> Result<Answer, LlmError> {
    let malformed = |detail: &str| LlmError::MalformedBody { status, detail: detail.to_owned(), body: text.to_owned() };
    let value: Value = serde_json::from_str(text).map_err(|e| malformed(&format!("not JSON: {e}")))?;
    let blocks = value.get("content").and_then(Value::as_array).ok_or_else(|| malformed("no content array"))?;
    let stop_reason = value.get("stop_reason").and_then(Value::as_str).unwrap_or_default();
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type") == Some(&json!("text")))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    match stop_reason {
        "refusal" => return Err(LlmError::Refusal { message: texts.join("\n"), body: text.to_owned() }),
        "max_tokens" => {
            return Err(LlmError::Truncated { reason: "stop_reason: max_tokens".to_owned(), body: text.to_owned() })
        }
        _ => {}
    }
    let tool_input = blocks
        .iter()
        .find(|b| b.get("type") == Some(&json!("tool_use")) && b.get("name").and_then(Value::as_str) == Some(tool))
        .and_then(|b| b.get("input"));
    let json = match tool_input {
        Some(input) => input.to_string(),
        None => {
            let joined = texts.join("\n");
            if serde_json::from_str::<Value>(&joined).is_err() {
                return Err(LlmError::MalformedJson {
                    detail: format!("no {tool:?} tool_use block, and the text is not JSON"),
                    text: joined,
                    body: text.to_owned(),
                });
            }
            joined
        }
    };
    let usage = value.get("usage");
    let count = |key| usage.and_then(|u| u.get(key)).and_then(Value::as_u64).unwrap_or(0);
    Ok(Answer {
        id: value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        model: value.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        usage: Usage { input_tokens: count("input_tokens"), output_tokens: count("output_tokens") },
        json,
        stop_reason: stop_reason.to_owned(),
    })
}

/// The error type, code and message of an error body
/// (`{"type": "error", "error": {type, message, details?: {error_code}}}`).
pub fn error_fields(body: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let error = body.get("error");
    let field = |key| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_owned);
    let code = error
        .and_then(|e| e.get("details"))
        .and_then(|d| d.get("error_code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    (field("type"), code, field("message"))
}
