//! Beyond one machine, on NATS JetStream (nats-server 2.9 or newer).
//!
//! # Layout
//! - [`jobs`]: the streams, the job and result messages, and the files a job needs,
//!   stored once by content hash in an object store bucket.
//! - [`worker`]: takes backtest jobs from the work queue and publishes their results.
//! - [`director`]: publishes a sweep's jobs and gathers one result per job.
//! - [`mirror`]: ships a journal's durable records to a stream, riding out outages.
//! - [`restore`]: rebuilds a local journal from its mirror.
//!
//! Everything here is async over one NATS connection; the CLI (`src/`) drives it on a
//! tokio runtime of its own. See docs/scale-out.md for the streams, subjects and what
//! happens on each failure.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;

pub mod director;
pub mod jobs;
pub mod mirror;
pub mod restore;
pub mod worker;

/// How long connecting may take before the command gives up: a server that is down
/// must say so, not hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the server at `url` (once: a server that is down fails at once, naming the
/// URL) and opens its JetStream context.
pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .name("quantfold")
        .connect(url)
        .await
        .with_context(|| format!("cannot reach the NATS server at {url} (is nats-server -js running there?)"))?;
    let mut context = jetstream::new(client);
    // A JetStream call that the server does not answer (a server without -js, or one that
    // went away) fails after this long instead of waiting forever.
    context.set_timeout(Duration::from_secs(10));
    Ok(context)
}
