//! What can go wrong with one LLM call. No variant holds the API key: messages that come from a
//! server are redacted before they are stored (see [`crate::ApiKey::redact`]).

use thiserror::Error;

/// A failed LLM call.
///
/// `body` fields hold the raw response text of an answer that arrived but is unusable, so the
/// caller can journal exactly what the model said.
#[derive(Debug, Error)]
pub enum LlmError {
    /// The API key's environment variable is unset or empty.
    #[error("the API key variable {env} is not set or empty")]
    MissingKey { env: String },
    /// The client could not be built (a bad base URL, a TLS backend that fails to start).
    #[error("the LLM client cannot be set up: {0}")]
    Setup(String),
    /// An HTTP error answer, after any retries: the status and the provider's error type, code
    /// (OpenAI `code`, Anthropic `details.error_code`) and message.
    #[error("HTTP {status} {}: {message} (after {attempts} attempt(s))", kind.as_deref().unwrap_or("error"))]
    Api {
        status: u16,
        kind: Option<String>,
        code: Option<String>,
        message: String,
        /// The wait the server asked for, if any (`retry-after-ms`, else `retry-after`).
        retry_after_ms: Option<u64>,
        attempts: u32,
    },
    /// No complete answer within the per-request timeout, on every attempt.
    #[error("no answer within {timeout_ms} ms (after {attempts} attempt(s))")]
    Timeout { timeout_ms: u64, attempts: u32 },
    /// The connection failed (refused, reset, cut mid-body), on every attempt.
    #[error("the connection failed: {message} (after {attempts} attempt(s))")]
    Connection { message: String, attempts: u32 },
    /// A success status whose body is not the provider's response shape.
    #[error("malformed response body (HTTP {status}): {detail}")]
    MalformedBody { status: u16, detail: String, body: String },
    /// The model's answer is not JSON.
    #[error("the answer is not valid JSON: {detail}")]
    MalformedJson { detail: String, text: String, body: String },
    /// The model's answer is JSON that breaks the schema.
    #[error("the answer breaks the schema: {detail}")]
    SchemaViolation { detail: String, json: String, body: String },
    /// The model refused (OpenAI `refusal`, `content_filter`; Anthropic `stop_reason: refusal`).
    #[error("the model refused: {message}")]
    Refusal { message: String, body: String },
    /// The answer was cut by the token limit (`finish_reason: length`, `stop_reason: max_tokens`).
    #[error("the answer was cut by the token limit ({reason})")]
    Truncated { reason: String, body: String },
}

impl LlmError {
    /// The raw response body of an answer that arrived but is unusable.
    pub fn body(&self) -> Option<&str> {
        match self {
            LlmError::MalformedBody { body, .. }
            | LlmError::MalformedJson { body, .. }
            | LlmError::SchemaViolation { body, .. }
            | LlmError::Refusal { body, .. }
            | LlmError::Truncated { body, .. } => Some(body),
            _ => None,
        }
    }
}
