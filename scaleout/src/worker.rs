//! `quantfold worker`: takes backtest jobs from the work queue, N at once, and publishes
//! each one's result.
//!
//! A job is acknowledged only after its result is stored in the results stream, so a
//! worker killed at any moment loses nothing: the job comes back to some worker after
//! `ACK_WAIT`. While a job runs the worker says so every `PROGRESS_EVERY`, so a long run
//! is not handed out twice. A job that fails (bad strategy, bad data, even a panic) is a
//! result like any other, reported once, never retried.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, object_store::ObjectStore, AckKind};
use backtest::{report, run};
use futures_util::StreamExt as _;

use crate::jobs::{self, Done, Job, JobResult, Queues};

/// Runs until SIGINT/SIGTERM (or the process is killed: that loses nothing either).
pub async fn run(url: &str, parallel: usize) -> anyhow::Result<()> {
    let js = crate::connect(url).await?;
    let queues = Queues::open(&js).await?;
    let consumer = queues.workers().await?;
    let cache = tempfile::Builder::new().prefix("quantfold-worker-").tempdir().context("no temporary directory")?;
    let name = format!("{}:{}", hostname(), std::process::id());
    eprintln!("worker {name}: taking jobs from {url}, {parallel} at once");
    let shared = Arc::new(Shared { js, files: queues.files, name, cache: cache.path().to_owned() });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (shared, consumer) = (shared.clone(), consumer.clone());
        tasks.spawn(async move { take_jobs(&shared, &consumer).await });
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        Some(ended) = tasks.join_next() => ended.context("a worker task failed")?,
    }
    // Jobs still running are not acknowledged: they go to another worker after ACK_WAIT.
    eprintln!("worker {}: stopping", shared.name);
    Ok(())
}

struct Shared {
    js: jetstream::Context,
    files: ObjectStore,
    name: String,
    cache: std::path::PathBuf,
}

/// One job at a time, forever: a pull of one message, waiting up to a few seconds.
async fn take_jobs(shared: &Shared, consumer: &jetstream::consumer::Consumer<pull::Config>) {
    loop {
        let batch = consumer.batch().max_messages(1).expires(Duration::from_secs(5)).messages().await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                // The server went away for a while: the client reconnects; ask again later.
                tracing::warn!("cannot pull jobs: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => {
                    if let Err(e) = take(shared, message).await {
                        tracing::warn!("a job was not finished (it will be handed out again): {e:#}");
                    }
                }
                Err(e) => tracing::warn!("cannot pull jobs: {e}"),
            }
        }
    }
}

async fn take(shared: &Shared, message: jetstream::Message) -> anyhow::Result<()> {
    let message = Arc::new(message);
    let job: Job = match serde_json::from_slice(&message.payload) {
        Ok(job) => job,
        Err(e) => {
            // Not a job of this build: nothing can ever run it.
            message.ack_with(AckKind::Term).await.ok();
            anyhow::bail!("dropped a message that is not a job ({e})");
        }
    };
    let delivered = message.info().map_or(1, |i| i.delivered);
    eprintln!("worker {}: job {} of sweep {} (delivery {delivered})", shared.name, job.index, job.sweep);
    let alive = {
        let message = message.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(jobs::PROGRESS_EVERY).await;
                message.ack_with(AckKind::Progress).await.ok();
            }
        })
    };
    let outcome = run_job(shared, &job).await;
    alive.abort();
    let result = JobResult { sweep: job.sweep.clone(), index: job.index, worker: shared.name.clone(), outcome };
    let payload = serde_json::to_vec(&result)?;
    let publish = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(jobs::message_id(&job.sweep, job.index));
    // Stored first, acknowledged after: a crash in between runs the job twice, and the
    // Director counts it once.
    shared
        .js
        .send_publish(jobs::results_subject(&job.sweep), publish)
        .await?
        .await
        .context("the result was not stored")?;
    message.double_ack().await.map_err(|e| anyhow::anyhow!("the job was not acknowledged: {e}"))?;
    Ok(())
}

/// The run, on a blocking thread; every failure (a panic included) as its message.
async fn run_job(shared: &Shared, job: &Job) -> Result<Done, String> {
    let config = job.spec.config(&job.params, &shared.files, &shared.cache).await.map_err(|e| format!("{e:#}"))?;
    let ran = tokio::task::spawn_blocking(move || {
        let outcome = run::run(&config, &mut |_| {}).map_err(|e| format!("{e:#}"))?;
        let summary = report::summary(&outcome.record);
        Ok(Done { summary: summary.fields(), digest: outcome.state.digest().to_string() })
    })
    .await;
    match ran {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(format!("the run panicked: {}", panic_text(e.into_panic()))),
        Err(e) => Err(format!("the run did not finish: {e}")),
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn hostname() -> String {
    std::fs::read_to_string(Path::new("/etc/hostname")).map_or_else(|_| "localhost".to_owned(), |h| h.trim().to_owned())
}
