//! A local LLM server: OpenAI Chat Completions and Anthropic Messages on loopback, answered by a
//! seeded rule instead of a model, with scripted faults.
//!
//! The official client libraries (`openai`, `anthropic`) and our own `llm` clients talk to it
//! unchanged, with only the base URL changed, so LLM traders can be tested end to end, offline,
//! with answers known in advance.
//!
//! # What it models
//! - **The wire protocols** as VENUES.md §4 describes them: `POST /v1/chat/completions`
//!   (`Authorization: Bearer`) and `POST /v1/messages` (`x-api-key`, `anthropic-version`), their
//!   request validation and error bodies with the right statuses, ids, `usage`,
//!   `finish_reason` / `stop_reason`. OpenAI `response_format: json_schema` (strict schemas are
//!   checked as OpenAI checks them) is answered with the JSON in `message.content`; Anthropic
//!   tool use (`tool_choice: {type: "tool", name}`) with a `tool_use` block whose `input` is it.
//! - **A model** ([`model`]): it reads the last price, a trend line and RSI from the prompt and
//!   decides by a documented rule, in nof0's decision schema. Same prompt and seed, same answer.
//!   Token counts are a documented heuristic, not a tokenizer.
//! - **Faults** ([`script`]): the Nth request gets a scripted fault (malformed or
//!   schema-violating JSON, a refusal, a cut answer, a body that is not JSON, 429 with retry
//!   headers, an exhausted quota, 5xx and 529, a slow answer), or a seeded random one.
//! - **A request log** ([`server::Entry`]): every request's number, API, fault, status and the
//!   SDKs' retry count, for tests to count retries with.
//!
//! # What it does not model
//! Streaming, OpenAI tools and logprobs, Anthropic thinking, images, prompt caching, real
//! tokenization, and rate limits other than the scripted ones.
//!
//! # The official SDKs
//! `tests/sdk.rs` runs `tests/sdk_client.py` with the official Python SDKs against the server;
//! it needs `pip install openai==3.63.0 anthropic==2.17.0` (the versions it was written against)
//! and fails, naming that command, without them. Two things those versions do that older notes
//! do not say: anthropic 2.x sends its key as `Authorization: Bearer` (accepted here beside
//! `x-api-key`) and its own `anthropic-version` date (any `YYYY-MM-DD` is accepted).
//!
//! # Layout
//! - [`server`]: settings, start and stop, the request log.
//! - [`openai`], [`anthropic`]: the two endpoints.
//! - [`model`]: reading the prompt, the decision rule, token counts.
//! - [`script`]: the fault spec and its seeded draws.
//! - [`wire`]: what both endpoints share.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = llm_server::Config { script: llm_server::Script::parse("429:0.05@1")?, ..Default::default() };
//! let server = llm_server::serve(config).await?;
//! println!("OPENAI_BASE_URL={} ANTHROPIC_BASE_URL={}", server.openai_base_url(), server.anthropic_base_url());
//! # Ok(()) }
//! ```

use std::io::Write;

use anyhow::Context;

pub mod anthropic;
pub mod model;
pub mod openai;
pub mod script;
pub mod server;
pub mod wire;

pub use script::{Fault, Script};
pub use server::{serve, Api, Config, Entry, Server};

/// `quantfold llm-sim ...`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Where to listen (loopback; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Seeds the model's draws and the random fault mode.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Faults by request number, e.g. "malformed_json@3,429:2@11,500@13,slow:5000@17,random:0.1".
    #[arg(long)]
    pub script: Option<String>,
    /// The one API key accepted (default: any non-empty key).
    #[arg(long)]
    pub api_key: Option<String>,
}

impl Args {
    /// The server's settings.
    ///
    /// # Errors
    /// A script that does not parse.
    pub fn config(&self) -> anyhow::Result<Config> {
        let script = Script::parse(self.script.as_deref().unwrap_or("")).context("bad --script")?;
        Ok(Config { listen: self.listen.clone(), seed: self.seed, script, api_key: self.api_key.clone() })
    }
}

/// Runs the server until ctrl-c. Prints both base URLs on the first line of stdout:
/// `llm-server openai=http://127.0.0.1:PORT/v1 anthropic=http://127.0.0.1:PORT`.
///
/// # Errors
/// Bad arguments or a socket that cannot be bound.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(async move {
        let server = serve(config).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "llm-server openai={} anthropic={}", server.openai_base_url(), server.anthropic_base_url())
            .and_then(|()| stdout.flush())
            .context("failed to write the URLs to stdout")?;
        drop(stdout);
        tokio::signal::ctrl_c().await.context("failed to wait for ctrl-c")?;
        server.shutdown().await;
        Ok(())
    })
}
