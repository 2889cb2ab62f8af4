//! What both APIs' handlers share: reading texts out of messages, cutting answers to a token
//! limit, waiting out a slow fault, and JSON answers with extra headers.

use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::{
    model::count_tokens,
    script::Fault,
    server::{until_stopped, Shared},
};

/// The text of a message's `content`: a string, or the `text` of its parts (OpenAI content parts,
/// Anthropic text and tool-result blocks), joined by newlines. Anything else adds nothing.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part.get("text").or_else(|| part.get("content")) {
                Some(Value::String(text)) => Some(text.clone()),
                Some(nested @ Value::Array(_)) => Some(content_text(nested)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The words of `text` that fit in `limit` tokens, and whether anything was cut.
pub fn fit(text: &str, limit: u64) -> (String, bool) {
    if count_tokens(text) <= limit {
        return (text.to_owned(), false);
    }
    let mut used = 0;
    let mut end = 0;
    for (start, word) in text.split(' ').scan(0usize, |offset, word| {
        let start = *offset;
        *offset += word.len() + 1;
        Some((start, word))
    }) {
        used += count_tokens(word);
        if used > limit {
            break;
        }
        end = start + word.len();
    }
    (text[..end].to_owned(), true)
}

/// Waits out a `slow` fault (or returns early when the server stops). Returns whether the
/// server is stopping, in which case the handler answers 503 instead of the late answer.
pub async fn wait_if_slow(shared: &Shared, fault: Option<Fault>) -> bool {
    let Some(Fault::Slow { delay_ms }) = fault else { return false };
    let mut shutdown = shared.shutdown.clone();
    tokio::select! {
        () = tokio::time::sleep(std::time::Duration::from_millis(delay_ms)) => false,
        () = until_stopped(&mut shutdown) => true,
    }
}

/// A JSON body with `status` and extra headers (pairs whose value is not a valid header are
/// dropped: they are ours, built from numbers and ids).
pub fn json_response(status: u16, body: &Value, headers: &[(&str, String)]) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [("content-type", "application/json")], body.to_string()).into_response();
    add_headers(response.headers_mut(), headers);
    response
}

/// A 200 whose body is the JSON of `body` cut in half: the `bad_body` fault.
pub fn bad_body(body: &Value, headers: &[(&str, String)]) -> Response {
    let text = body.to_string();
    let cut: String = text.chars().take(text.chars().count() / 2).collect();
    let mut response = (StatusCode::OK, [("content-type", "application/json")], cut).into_response();
    add_headers(response.headers_mut(), headers);
    response
}

fn add_headers(map: &mut HeaderMap, headers: &[(&str, String)]) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(*name), HeaderValue::from_str(value)) {
            map.insert(name, value);
        }
    }
}

/// A header's value as text, if present and printable.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The SDKs' `x-stainless-retry-count`, for the request log.
pub fn sdk_retry_count(headers: &HeaderMap) -> Option<u32> {
    header(headers, "x-stainless-retry-count").and_then(|v| v.parse().ok())
}

/// `retry-after` (whole seconds, rounded up, as the header's grammar wants) and
/// `retry-after-ms` for a 429 that names its wait.
pub fn retry_headers(retry_after_s: Option<f64>) -> Vec<(&'static str, String)> {
    match retry_after_s {
        Some(seconds) => vec![
            ("retry-after", format!("{}", seconds.ceil() as u64)),
            ("retry-after-ms", format!("{}", (seconds * 1000.0).round() as u64)),
        ],
        None => Vec::new(),
    }
}

/// The name of a JSON value's type, as the APIs' type errors spell it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_string_and_part_contents() {
        assert_eq!(content_text(&json!("hi")), "hi");
        assert_eq!(
            content_text(&json!([{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}])),
            "a\nb"
        );
        assert_eq!(content_text(&json!([{"type": "tool_result", "content": [{"type": "text", "text": "c"}]}])), "c");
        assert_eq!(content_text(&json!(3)), "");
    }

    #[test]
    fn fits_words_to_a_token_limit() {
        assert_eq!(fit("aaaa bbbb cccc", 3), ("aaaa bbbb cccc".to_owned(), false));
        assert_eq!(fit("aaaa bbbb cccc", 2), ("aaaa bbbb".to_owned(), true));
        assert_eq!(fit("aaaaaaaa", 1), (String::new(), true));
    }
}
