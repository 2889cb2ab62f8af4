//! The Director of a sweep: stores the strategy and data once, publishes one job per
//! combination, and gathers exactly one result per job.
//!
//! Results are keyed by the job's index: a job run twice (its worker died after storing
//! the result, before acknowledging the job) counts once, and its two digests are
//! compared. A job that kept killing its workers is given up by JetStream after
//! `MAX_DELIVER` deliveries; the server's advisory says so, and the job is reported with
//! that error (and removed from the queue).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use async_nats::jetstream::{consumer::pull, message::PublishMessage};
use backtest::run::Config;
use futures_util::StreamExt as _;
use serde_json::Value as Json;

use crate::jobs::{self, Done, Job, JobResult, Queues, Spec};

/// One outcome per entry of `params`, in their order. `progress` is told how many jobs
/// have finished, each time one does.
pub async fn run(
    url: &str,
    base: &Config,
    params: &[Json],
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<Vec<Result<Done, String>>> {
    let js = crate::connect(url).await?;
    let queues = Queues::open(&js).await?;
    // The consumer exists before the first job, with its delivery limit.
    queues.workers().await?;
    let spec = Spec::upload(base, &queues.files).await?;
    let sweep = sweep_id();
    // Listening before publishing: nothing a fast worker says is missed.
    let mut results = read_results(&queues, &sweep).await?;
    let mut given_up = js
        .client()
        .subscribe(format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}", jobs::JOBS_STREAM, jobs::WORKERS))
        .await
        .context("cannot subscribe to the delivery-limit advisories")?;

    let mut acks = Vec::with_capacity(params.len());
    for (index, params) in params.iter().enumerate() {
        let job = Job { sweep: sweep.clone(), index, params: params.clone(), spec: spec.clone() };
        let publish = PublishMessage::build()
            .payload(serde_json::to_vec(&job)?.into())
            .message_id(jobs::message_id(&sweep, index));
        acks.push(js.send_publish(jobs::jobs_subject(&sweep), publish).await.context("cannot publish a job")?);
    }
    // The stream sequence of each job, to read the delivery-limit advisories.
    let mut job_at = HashMap::new();
    for (index, ack) in acks.into_iter().enumerate() {
        job_at.insert(ack.await.context("a job was not stored")?.sequence, index);
    }
    eprintln!("sweep {sweep}: {} jobs queued at {url}; waiting for workers", params.len());

    let mut outcomes: Vec<Option<Result<Done, String>>> = vec![None; params.len()];
    let mut finished = 0;
    let mut last_heard = Instant::now();
    while finished < params.len() {
        tokio::select! {
            message = results.next() => {
                let message = match message {
                    Some(Ok(message)) => message,
                    // The server went away (and with it the consumer, kept in memory): read
                    // the sweep's results again from the start, once it is back. Results
                    // already counted are skipped by index.
                    Some(Err(e)) => {
                        tracing::warn!("reading results: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        match read_results(&queues, &sweep).await {
                            Ok(again) => results = again,
                            Err(e) => tracing::warn!("{e:#}"),
                        }
                        continue;
                    }
                    None => bail!("the results stream ended before every job had a result"),
                };
                last_heard = Instant::now();
                let Ok(result) = serde_json::from_slice::<JobResult>(&message.payload) else { continue };
                let Some(slot) = outcomes.get_mut(result.index) else { continue };
                match slot {
                    None => {
                        *slot = Some(result.outcome);
                        finished += 1;
                        progress(finished);
                    }
                    // Done twice: the same inputs must give the same state.
                    Some(Ok(first)) => {
                        if let Ok(again) = &result.outcome {
                            if again.digest != first.digest {
                                eprintln!(
                                    "warning: job {} gave two different states ({} and {}, the second from {})",
                                    result.index, first.digest, again.digest, result.worker
                                );
                            }
                        }
                    }
                    Some(Err(_)) => {}
                }
            }
            // A consumer can also go quiet without an error: after a while with no result,
            // read again from the start (cheap: a sweep's results are small).
            _ = tokio::time::sleep_until((last_heard + QUIET).into()) => {
                last_heard = Instant::now();
                if let Ok(again) = read_results(&queues, &sweep).await {
                    results = again;
                }
            }
            Some(advisory) = given_up.next() => {
                let Ok(advisory) = serde_json::from_slice::<Json>(&advisory.payload) else { continue };
                let seq = advisory.get("stream_seq").and_then(Json::as_u64).unwrap_or_default();
                let Some(&index) = job_at.get(&seq) else { continue };
                if outcomes[index].is_none() {
                    let deliveries = advisory.get("deliveries").and_then(Json::as_u64).unwrap_or_default();
                    outcomes[index] = Some(Err(format!(
                        "given up after {deliveries} deliveries: each worker that took it stopped before finishing"
                    )));
                    finished += 1;
                    progress(finished);
                    // Nobody will take it again: it should not sit in the queue.
                    queues.jobs.delete_message(seq).await.ok();
                }
            }
        }
    }
    Ok(outcomes.into_iter().map(|o| o.expect("every job finished")).collect())
}

/// How long a Director waits without a result before it reads the results again.
const QUIET: Duration = Duration::from_secs(15);

/// The sweep's results from the first: an ordered consumer on its subject.
async fn read_results(queues: &Queues, sweep: &str) -> anyhow::Result<pull::Ordered> {
    queues
        .results
        .create_consumer(pull::OrderedConfig { filter_subject: jobs::results_subject(sweep), ..Default::default() })
        .await
        .context("cannot read the results stream")?
        .messages()
        .await
        .context("cannot read the results stream")
}

/// Unique enough across Directors: the time in nanoseconds and the process id, hashed.
fn sweep_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seed = format!("{nanos}.{}", std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..16].to_owned()
}
