//! The shell's side of LLM traders: carries out `Effect::CallLlm` with the `llm` HTTP clients
//! and turns the outcome into the input the journal records.
//!
//! An answer that arrived is an `LlmResponded` with its raw body even when it is unusable (not
//! JSON, against the schema, a refusal, cut short): the trader reads the body itself, so the
//! reading is derived, journaled and re-checked by `replay verify`. No answer (HTTP errors after
//! the SDK-style retries, timeouts, connection failures, a missing key) is an `LlmFailed`. The
//! latency is measured here, on the wall clock, and journaled as data: the trader never reads it.
//!
//! [`Models`] is the one place that asks and converts: a backtest asks it synchronously through
//! [`HttpModels`] (the run waits for each answer), `quantfold live` asks it on the session's
//! runtime and sends the event back to the engine thread (`src/live`), which never waits.
//!
//! `--llm-cache JOURNAL` answers a digest that journal has answered from it (no call): a
//! re-run of a backtest costs nothing and gives the same decisions.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use engine::LlmPort;
use journal::{Durability, Event, Hash, Journal};
use llm::{Client, ClientConfig, Completion, LlmError, Prompt, SystemClock};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::Value as Json;
use strategies::llm::{
    config::{Provider, TraderConfig},
    LlmRequest,
};

/// A journaled answer, by digest.
#[derive(Debug, Clone)]
struct Cached {
    model: String,
    raw: String,
    tokens_prompt: u32,
    tokens_completion: u32,
    cost_usd: Decimal,
}

/// The model clients of a process, built on first use (one per base URL, model and key
/// variable) and shared: every call is `&self`, so live calls run side by side.
pub struct Models {
    clients: Mutex<BTreeMap<(String, String, String), Arc<Client>>>,
    seed: u64,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models").field("seed", &self.seed).finish_non_exhaustive()
    }
}

impl Models {
    /// `seed` seeds the retry jitter (waits only: nothing journaled depends on it).
    pub fn new(seed: u64) -> Models {
        Models { clients: Mutex::new(BTreeMap::new()), seed }
    }

    /// The request's client, built once.
    fn client(&self, request: &LlmRequest) -> Result<Arc<Client>, LlmError> {
        let m = &request.model;
        let key = (m.base_url.clone(), m.model.clone(), m.key_env.clone());
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut config = match m.provider {
            Provider::Openai => ClientConfig::openai(&m.base_url, &m.model, &m.key_env),
            Provider::Anthropic => ClientConfig::anthropic(&m.base_url, &m.model, &m.key_env),
        };
        config.max_tokens = m.max_tokens;
        config.temperature = m.temperature;
        config.timeout = std::time::Duration::from_millis(m.timeout_ms);
        let rng = ChaCha8Rng::seed_from_u64(self.seed);
        let client = Arc::new(Client::from_env(config, Arc::new(SystemClock), rng)?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Asks `request`'s model; the `LlmResponded` or `LlmFailed` to journal.
    pub async fn ask(&self, request: &LlmRequest) -> Event {
        let prompt = Prompt {
            system: request.system.clone(),
            user: request.user.clone(),
            schema_name: "trading_decision".to_owned(),
            schema: request.schema.clone(),
        };
        let started = std::time::Instant::now();
        let outcome = match self.client(request) {
            Ok(client) => client.complete(&prompt).await,
            Err(e) => Err(e),
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome_event(request, outcome, latency_ms)
    }
}

/// A call's outcome as the input the journal records.
pub fn outcome_event(request: &LlmRequest, outcome: Result<Completion, LlmError>, latency_ms: u64) -> Event {
    let digest = request.digest;
    match outcome {
        Ok(c) => {
            let tokens_prompt = u32::try_from(c.usage.input_tokens).unwrap_or(u32::MAX);
            let tokens_completion = u32::try_from(c.usage.output_tokens).unwrap_or(u32::MAX);
            Event::LlmResponded {
                digest,
                model: c.model,
                raw: c.raw_body,
                tokens_prompt,
                tokens_completion,
                cost_usd: cost(request, tokens_prompt, tokens_completion),
                latency_ms: u64::try_from(c.latency_ns / 1_000_000).unwrap_or(latency_ms),
            }
        }
        Err(e) => match e.body() {
            // An answer arrived: the trader reads it (and finds it unusable) itself.
            Some(body) => {
                let (tokens_prompt, tokens_completion) = usage_of(request.model.provider, body);
                Event::LlmResponded {
                    digest,
                    model: request.model.model.clone(),
                    raw: body.to_owned(),
                    tokens_prompt,
                    tokens_completion,
                    cost_usd: cost(request, tokens_prompt, tokens_completion),
                    latency_ms,
                }
            }
            None => Event::LlmFailed { digest, model: request.model.model.clone(), error: e.to_string() },
        },
    }
}

/// Every model of `traders` whose key variable is unset or empty, as one sentence per model:
/// a live session refuses to start on any (a missing key is never journaled).
pub fn missing_keys<'a>(traders: impl IntoIterator<Item = &'a TraderConfig>) -> Vec<String> {
    let mut missing = Vec::new();
    for t in traders {
        for m in &t.models {
            if std::env::var(&m.key_env).map_or(true, |v| v.is_empty()) {
                missing.push(format!(
                    "the environment variable {} (the API key of model {} of trader {}) is not set",
                    m.key_env, m.model, t.id
                ));
            }
        }
    }
    missing
}

/// What `tokens` cost at the model's prices.
fn cost(request: &LlmRequest, tokens_prompt: u32, tokens_completion: u32) -> Decimal {
    let million = Decimal::from(1_000_000);
    let input = request.model.usd_per_million_input.unwrap_or(Decimal::ZERO);
    let output = request.model.usd_per_million_output.unwrap_or(Decimal::ZERO);
    (Decimal::from(tokens_prompt) * input + Decimal::from(tokens_completion) * output) / million
}

/// Token counts out of an unusable body, where the provider reported them.
fn usage_of(provider: Provider, body: &str) -> (u32, u32) {
    let json: Json = serde_json::from_str(body).unwrap_or(Json::Null);
    let (a, b) = match provider {
        Provider::Openai => ("/usage/prompt_tokens", "/usage/completion_tokens"),
        Provider::Anthropic => ("/usage/input_tokens", "/usage/output_tokens"),
    };
    let read = |p: &str| json.pointer(p).and_then(Json::as_u64).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    (read(a), read(b))
}

/// Calls models synchronously (a backtest waits for each answer), with the `--llm-cache`.
pub struct HttpModels {
    runtime: tokio::runtime::Runtime,
    models: Models,
    cache: BTreeMap<Hash, Cached>,
    /// Calls made over the network and answers taken from the cache journal.
    pub calls: u64,
    pub cache_hits: u64,
}

impl std::fmt::Debug for HttpModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpModels").field("calls", &self.calls).finish_non_exhaustive()
    }
}

impl HttpModels {
    /// `seed` seeds the retry jitter (see [`Models::new`]).
    ///
    /// # Errors
    /// The async runtime cannot start.
    pub fn new(seed: u64) -> anyhow::Result<HttpModels> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the runtime for model calls")?;
        Ok(HttpModels { runtime, models: Models::new(seed), cache: BTreeMap::new(), calls: 0, cache_hits: 0 })
    }

    /// Takes every `LlmResponded` of the journal at `path` as the answer to its digest.
    ///
    /// # Errors
    /// The journal cannot be opened or read.
    pub fn with_cache(mut self, path: &Path) -> anyhow::Result<HttpModels> {
        let journal = Journal::open(path, Durability::None)
            .with_context(|| format!("failed to open the LLM cache journal {}", path.display()))?;
        for record in journal.records(0) {
            let record = record.with_context(|| format!("failed to read {}", path.display()))?;
            if let Event::LlmResponded { digest, model, raw, tokens_prompt, tokens_completion, cost_usd, .. } =
                record.event
            {
                self.cache.entry(digest).or_insert(Cached { model, raw, tokens_prompt, tokens_completion, cost_usd });
            }
        }
        Ok(self)
    }
}

impl LlmPort for HttpModels {
    fn call(&mut self, time_ms: i64, _trader: &str, request: &LlmRequest) -> (i64, Event) {
        if let Some(c) = self.cache.get(&request.digest).cloned() {
            self.cache_hits += 1;
            let event = Event::LlmResponded {
                digest: request.digest,
                model: c.model,
                raw: c.raw,
                tokens_prompt: c.tokens_prompt,
                tokens_completion: c.tokens_completion,
                cost_usd: c.cost_usd,
                latency_ms: 0,
            };
            return (time_ms, event);
        }
        self.calls += 1;
        (time_ms, self.runtime.block_on(self.models.ask(request)))
    }
}
