//! HTTP clients for the LLMs quantfold's traders ask: OpenAI-compatible Chat Completions with a
//! strict `json_schema` answer, and Anthropic Messages with one forced tool whose input is the
//! answer (VENUES.md §4).
//!
//! One call is [`Client::complete`]: a system and a user prompt in, the answer's JSON text out,
//! checked against the prompt's schema, with the raw body, model, token usage and latency (on
//! the caller's [`Clock`]) that a journal records. Failures are typed ([`LlmError`]): an HTTP
//! error with the provider's error type and message, a timeout, a connection failure, a body
//! that is not the provider's shape, JSON that does not parse or breaks the schema, a refusal,
//! an answer cut by the token limit. None of them carries the API key.
//!
//! Retries follow the official SDKs ([`retry`]): 408/409/429/5xx/529, timeouts and connection
//! failures; `retry-after-ms`, then `retry-after`, else exponential backoff with jitter drawn from
//! the caller's seeded RNG; never an exhausted quota. Content problems (refusal, bad JSON) are not
//! retried here: what to do about a bad answer is the trader's decision, and it is journaled.
//!
//! # Layout
//! - [`Client`], [`ClientConfig`], [`Prompt`], [`Completion`]: the call.
//! - [`retry`]: the retry rules, as pure functions.
//! - [`schema`]: nof0's decision schema and the checker for answers.
//! - [`openai`], [`anthropic`]: each provider's request body and answer reading.
//! - [`ApiKey`], [`Clock`], [`LlmError`].

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub mod anthropic;
mod clock;
mod error;
mod key;
pub mod openai;
pub mod retry;
pub mod schema;

pub use clock::{Clock, SystemClock};
pub use error::LlmError;
pub use key::ApiKey;
pub use retry::RetryPolicy;

/// Which wire protocol a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI Chat Completions, or any server speaking it (routers, local servers).
    OpenAi,
    Anthropic,
}

/// A client's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    pub provider: Provider,
    /// OpenAI: up to and including `/v1` (`https://api.openai.com/v1`); requests go to
    /// `{base_url}/chat/completions`. Anthropic: the host (`https://api.anthropic.com`); requests
    /// go to `{base_url}/v1/messages`. As the official SDKs take their `base_url`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (read by [`Client::from_env`]).
    pub api_key_env: String,
    /// The limit on one attempt, from sending to the last byte of the answer.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// `max_completion_tokens` (OpenAI) / `max_tokens` (Anthropic).
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    /// OpenAI's `seed` (best-effort determinism on their side); Anthropic has none.
    pub seed: Option<u64>,
    /// The `anthropic-version` header.
    pub anthropic_version: String,
}

/// Per attempt: nof0's decision timeout (VENUES.md §6.3).
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
/// Room for a decision with its reasoning.
pub const MAX_TOKENS_DEFAULT: u32 = 1024;
/// How much of an error body that is not the provider's JSON goes into [`LlmError::Api`].
const ERROR_TEXT_MAX: usize = 500;

impl ClientConfig {
    fn new(provider: Provider, base_url: &str, model: &str, api_key_env: &str) -> ClientConfig {
        ClientConfig {
            provider,
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key_env: api_key_env.to_owned(),
            timeout: TIMEOUT_DEFAULT,
            retry: RetryPolicy::default(),
            max_tokens: MAX_TOKENS_DEFAULT,
            temperature: None,
            seed: None,
            anthropic_version: anthropic::VERSION.to_owned(),
        }
    }

    /// An OpenAI-compatible client's defaults.
    pub fn openai(base_url: &str, model: &str, api_key_env: &str) -> ClientConfig {
        ClientConfig::new(Provider::OpenAi, base_url, model, api_key_env)
    }

    /// An Anthropic client's defaults.
    pub fn anthropic(base_url: &str, model: &str, api_key_env: &str) -> ClientConfig {
        ClientConfig::new(Provider::Anthropic, base_url, model, api_key_env)
    }

    fn url(&self) -> String {
        match self.provider {
            Provider::OpenAi => format!("{}/chat/completions", self.base_url),
            Provider::Anthropic => format!("{}/v1/messages", self.base_url),
        }
    }
}

/// What to ask.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// The OpenAI `json_schema.name` / the Anthropic tool's name: `^[a-zA-Z0-9_-]{1,64}$`.
    pub schema_name: String,
    /// The answer's JSON Schema, in strict mode's subset (see [`schema`]).
    pub schema: Value,
}

impl Prompt {
    /// A prompt whose answer is a decision in nof0's schema.
    pub fn decision(system: impl Into<String>, user: impl Into<String>) -> Prompt {
        Prompt {
            system: system.into(),
            user: user.into(),
            schema_name: "trading_decision".to_owned(),
            schema: schema::decision_schema(),
        }
    }
}

/// Token counts as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What a provider module reads out of a success body.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub id: String,
    pub model: String,
    pub usage: Usage,
    /// The answer's JSON text (OpenAI `message.content`; Anthropic the tool's `input`).
    pub json: String,
    /// `finish_reason` / `stop_reason`.
    pub stop_reason: String,
}

/// A usable answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The response body as received (with the key redacted, should a server echo it).
    pub raw_body: String,
    pub id: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    pub usage: Usage,
    /// From before the first attempt to the end of the last, on the caller's clock: what the
    /// trader waited, retries included.
    pub latency_ns: i64,
    /// The answer's JSON text, parsed and checked against the prompt's schema.
    pub json: String,
    pub stop_reason: String,
    /// Attempts made: 1 without retries.
    pub attempts: u32,
}

/// One LLM endpoint with its key, clock and jitter RNG.
pub struct Client {
    config: ClientConfig,
    key: ApiKey,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    rng: Mutex<ChaCha8Rng>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("config", &self.config).field("key", &self.key).finish_non_exhaustive()
    }
}

/// The outcome of one attempt.
enum Attempt {
    Answered { status: u16, headers: HeaderMap, text: String },
    TimedOut,
    Failed(String),
}

/// An error's message with its sources: reqwest's top-level message alone ("error sending
/// request") does not say what failed.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

impl Client {
    /// A client with the given key. `clock` measures latency and reads HTTP-date waits; `rng`
    /// draws the backoff jitter (seed it, and journal the seed, to reproduce a run's waits).
    ///
    /// # Errors
    /// [`LlmError::Setup`] when the HTTP client cannot be built.
    pub fn new(config: ClientConfig, key: ApiKey, clock: Arc<dyn Clock>, rng: ChaCha8Rng) -> Result<Client, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Setup(key.redact(&error_chain(&e))))?;
        Ok(Client { config, key, http, clock, rng: Mutex::new(rng) })
    }

    /// A client whose key is in the environment variable `config.api_key_env`.
    ///
    /// # Errors
    /// [`LlmError::MissingKey`] when the variable is unset or empty; [`LlmError::Setup`].
    pub fn from_env(config: ClientConfig, clock: Arc<dyn Clock>, rng: ChaCha8Rng) -> Result<Client, LlmError> {
        let key = ApiKey::from_env(&config.api_key_env)?;
        Client::new(config, key, clock, rng)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    async fn attempt(&self, url: &str, body: &Value) -> Attempt {
        let request = match self.config.provider {
            Provider::OpenAi => self.http.post(url).bearer_auth(self.key.expose()),
            Provider::Anthropic => self
                .http
                .post(url)
                .header("x-api-key", self.key.expose())
                .header("anthropic-version", &self.config.anthropic_version),
        };
        let exchange = async {
            let response = request.json(body).send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, headers, text))
        };
        // reqwest's own timeout covers the same span; this one also bounds anything it does not.
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Err(_) => Attempt::TimedOut,
            Ok(Err(e)) if e.is_timeout() => Attempt::TimedOut,
            Ok(Err(e)) => Attempt::Failed(self.key.redact(&error_chain(&e.without_url()))),
            Ok(Ok((status, headers, text))) => Attempt::Answered { status, headers, text: self.key.redact(&text) },
        }
    }

    /// The error of a non-success answer, and whether it may be retried.
    fn api_error(&self, status: u16, headers: &HeaderMap, text: &str, attempts: u32) -> (LlmError, Option<f64>, bool) {
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let (kind, code, message) = match self.config.provider {
            Provider::OpenAi => openai::error_fields(&body),
            Provider::Anthropic => anthropic::error_fields(&body),
        };
        let server_wait_ms = retry::server_wait_ms(headers, || self.clock.now_ns());
        let retryable = retry::retryable(status, headers, retry::exhausted(kind.as_deref(), code.as_deref()));
        let message = message.unwrap_or_else(|| text.chars().take(ERROR_TEXT_MAX).collect());
        let error = LlmError::Api {
            status,
            kind,
            code,
            message,
            retry_after_ms: server_wait_ms.filter(|ms| *ms > 0.0).map(|ms| ms.ceil() as u64),
            attempts,
        };
        (error, server_wait_ms, retryable)
    }

    /// Asks once, retrying as the official SDKs do; see the crate docs.
    ///
    /// # Errors
    /// Every [`LlmError`] but `MissingKey` and `Setup`.
    pub async fn complete(&self, prompt: &Prompt) -> Result<Completion, LlmError> {
        let url = self.config.url();
        let body = match self.config.provider {
            Provider::OpenAi => openai::body(&self.config, prompt),
            Provider::Anthropic => anthropic::body(&self.config, prompt),
        };
        let started_ns = self.clock.now_ns();
        let mut retries = 0;
        loop {
            let attempts = retries + 1;
            let (error, server_wait_ms, retryable) = match self.attempt(&url, &body).await {
                Attempt::Answered { status, text, .. } if (200..300).contains(&status) => {
                    let latency_ns = self.clock.now_ns() - started_ns;
                    return self.finish(prompt, status, text, latency_ns, attempts);
                }
                Attempt::Answered { status, headers, text } => self.api_error(status, &headers, &text, attempts),
                Attempt::TimedOut => {
                    let timeout_ms = u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX);
                    (LlmError::Timeout { timeout_ms, attempts }, None, true)
                }
                Attempt::Failed(message) => (LlmError::Connection { message, attempts }, None, true),
            };
            if !retryable || retries >= self.config.retry.max_retries {
                return Err(error);
            }
            // Drawn for every retry, used or not, so the stream's position depends only on the
            // number of retries.
            let unit: f64 = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner).random();
            let Some(wait) = self.config.retry.wait(retries, server_wait_ms, unit) else { return Err(error) };
            tracing::debug!(attempt = attempts, wait_ms = wait.as_millis() as u64, "llm: retrying after {error}");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    fn finish(
        &self,
        prompt: &Prompt,
        status: u16,
        text: String,
        latency_ns: i64,
        attempts: u32,
    ) -> Result<Completion, LlmError> {
        let answer = match self.config.provider {
            Provider::OpenAi => openai::read(&text, status)?,
            Provider::Anthropic => anthropic::read(&text, status, &prompt.schema_name)?,
        };
        let value: Value = serde_json::from_str(&answer.json).map_err(|e| LlmError::MalformedJson {
            detail: e.to_string(),
            text: answer.json.clone(),
            body: text.clone(),
        })?;
        schema::validate(&prompt.schema, &value).map_err(|detail| LlmError::SchemaViolation {
            detail,
            json: answer.json.clone(),
            body: text.clone(),
        })?;
        Ok(Completion {
            raw_body: text,
            id: answer.id,
            model: answer.model,
            usage: answer.usage,
            latency_ns,
            json: answer.json,
            stop_reason: answer.stop_reason,
            attempts,
        })
    }
}
