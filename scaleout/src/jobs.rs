//! The streams, the job and result messages, and the files a job needs.
//!
//! - `QF_JOBS` (work-queue retention, subjects `qf.jobs.<sweep>`): one message per job; a
//!   job leaves the stream when a worker acknowledges it. The durable pull consumer
//!   `workers` hands each job to one worker at a time, redelivers it `ACK_WAIT` after the
//!   last sign of life, and gives up after `MAX_DELIVER` deliveries.
//! - `QF_RESULTS` (limits retention, kept a day, subjects `qf.results.<sweep>`): one
//!   message per finished job, de-duplicated by the message id `<sweep>.<index>`.
//! - The object store bucket `quantfold-files`: strategy and data files named by their
//!   blake3 hash, stored once however many sweeps use them.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use anyhow::{bail, Context as _};
use async_nats::jetstream::{self, consumer::pull, object_store::ObjectStore, stream};
use backtest::run::Config;
use indexmap::IndexMap;
use journal::event::Instrument;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::io::AsyncReadExt as _;

pub const JOBS_STREAM: &str = "QF_JOBS";
pub const RESULTS_STREAM: &str = "QF_RESULTS";
/// The durable consumer every worker pulls from: one queue, shared.
pub const WORKERS: &str = "workers";
pub const FILES_BUCKET: &str = "quantfold-files";
/// A job not acknowledged (nor marked in progress) this long is handed to another worker.
pub const ACK_WAIT: Duration = Duration::from_secs(6);
/// How often a worker says a job is still running (well inside `ACK_WAIT`).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Deliveries of one job before it is given up: a job that kills its workers must not
/// go round forever. (A job that fails cleanly is reported at once, not redelivered.)
pub const MAX_DELIVER: i64 = 3;

pub fn jobs_subject(sweep: &str) -> String {
    format!("qf.jobs.{sweep}")
}

pub fn results_subject(sweep: &str) -> String {
    format!("qf.results.{sweep}")
}

/// The message id of a job and of its result: JetStream drops a second publish of it
/// within the duplicate window, and the Director counts one result per id anyway.
pub fn message_id(sweep: &str, index: usize) -> String {
    format!("{sweep}.{index}")
}

/// A file a job reads, by content: workers fetch it from the bucket into a directory of
/// their own, under its original name (the symbol and the trader are taken from names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    pub hash: String,
}

/// Everything of a backtest's `Config` a worker needs, with files by content hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub strategy: FileRef,
    pub data: Vec<FileRef>,
    pub external: Vec<(String, FileRef)>,
    pub funding: Vec<(String, FileRef)>,
    pub symbol: Option<String>,
    pub interval: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub cash: Decimal,
    pub leverage: Decimal,
    pub fee_taker_bps: Decimal,
    pub fee_maker_bps: Decimal,
    pub slippage_bps: Decimal,
    pub intrabar: String,
    pub liquidation_fee_rate: Decimal,
    pub instruments: BTreeMap<String, Instrument>,
    pub seed: u64,
    pub call_fuel: Option<u64>,
}

/// One combination of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub sweep: String,
    pub index: usize,
    /// The run's whole `params` object (the base params with this combination over them).
    pub params: Json,
    pub spec: Spec,
}

/// What a worker reports for a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    pub sweep: String,
    pub index: usize,
    /// Which worker ran it (host and pid), for the logs.
    pub worker: String,
    pub outcome: Result<Done, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    /// `Summary::fields()`, in its order.
    pub summary: IndexMap<String, Json>,
    /// The final ledger state's digest: two runs of one job must agree on it.
    pub digest: String,
}

/// The streams, the workers' consumer and the file bucket, created if absent (by
/// whichever process comes first; the same configuration from everyone).
pub struct Queues {
    pub jobs: stream::Stream,
    pub results: stream::Stream,
    pub files: ObjectStore,
}

impl Queues {
    pub async fn open(js: &jetstream::Context) -> anyhow::Result<Queues> {
        let jobs = js
            .get_or_create_stream(stream::Config {
                name: JOBS_STREAM.to_owned(),
                subjects: vec!["qf.jobs.>".to_owned()],
                retention: stream::RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await
            .context("cannot open the jobs stream (is JetStream enabled: nats-server -js?)")?;
        let results = js
            .get_or_create_stream(stream::Config {
                name: RESULTS_STREAM.to_owned(),
                subjects: vec!["qf.results.>".to_owned()],
                max_age: Duration::from_secs(24 * 3600),
                ..Default::default()
            })
            .await
            .context("cannot open the results stream")?;
        let files = match js.get_object_store(FILES_BUCKET).await {
            Ok(files) => files,
            Err(_) => js
                .create_object_store(jetstream::object_store::Config {
                    bucket: FILES_BUCKET.to_owned(),
                    ..Default::default()
                })
                .await
                .context("cannot create the file bucket")?,
        };
        Ok(Queues { jobs, results, files })
    }

    /// The consumer all workers share.
    pub async fn workers(&self) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
        self.jobs
            .get_or_create_consumer(
                WORKERS,
                pull::Config {
                    durable_name: Some(WORKERS.to_owned()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_deliver: MAX_DELIVER,
                    ..Default::default()
                },
            )
            .await
            .context("cannot open the workers' consumer")
    }
}

/// The blake3 hash of a file's bytes, in hex.
fn hash_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Stores a file in the bucket under its hash, unless it is there already.
pub async fn put_file(files: &ObjectStore, path: &Path) -> anyhow::Result<FileRef> {
    let bytes = tokio::fs::read(path).await.with_context(|| format!("failed to read {}", path.display()))?;
    let hash = hash_of(&bytes);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", path.display()))?
        .to_owned();
    if files.info(&hash).await.is_err() {
        files
            .put(hash.as_str(), &mut bytes.as_slice())
            .await
            .with_context(|| format!("failed to store {} in the file bucket", path.display()))?;
    }
    Ok(FileRef { name, hash })
}

async fn put_named(files: &ObjectStore, list: &[(String, PathBuf)]) -> anyhow::Result<Vec<(String, FileRef)>> {
    let mut out = Vec::new();
    for (name, path) in list {
        out.push((name.clone(), put_file(files, path).await?));
    }
    Ok(out)
}

/// The file in `cache` (fetched from the bucket the first time, its hash checked).
pub async fn get_file(files: &ObjectStore, file: &FileRef, cache: &Path) -> anyhow::Result<PathBuf> {
    // Both parts become path components: nothing but a plain name may pass.
    let plain = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
    if !plain(&file.name) || !plain(&file.hash) {
        bail!("a job names the file {:?} ({}): not a plain file name", file.name, file.hash);
    }
    let dir = cache.join(&file.hash);
    let path = dir.join(&file.name);
    if path.exists() {
        return Ok(path);
    }
    let mut object = files.get(&file.hash).await.with_context(|| format!("{}: not in the file bucket", file.name))?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.with_context(|| format!("failed to fetch {}", file.name))?;
    if hash_of(&bytes) != file.hash {
        bail!("{}: the bucket's copy does not have the hash {}", file.name, file.hash);
    }
    // Written aside and renamed: two jobs fetching one file at once never see half of it.
    static FETCHES: AtomicU64 = AtomicU64::new(0);
    let partial = dir.join(format!(".{}.{}", file.name, FETCHES.fetch_add(1, Ordering::Relaxed)));
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&partial, &bytes).await?;
        tokio::fs::rename(&partial, &path).await
    };
    written.await.with_context(|| format!("failed to write {}", path.display()))?;
    Ok(path)
}

impl Spec {
    /// The spec of `config`, its files stored in the bucket.
    pub async fn upload(config: &Config, files: &ObjectStore) -> anyhow::Result<Spec> {
        let mut data = Vec::new();
        for path in &config.data {
            data.push(put_file(files, path).await?);
        }
        Ok(Spec {
            strategy: put_file(files, &config.strategy_file).await?,
            data,
            external: put_named(files, &config.external).await?,
            funding: put_named(files, &config.funding).await?,
            symbol: config.symbol.clone(),
            interval: config.interval.clone(),
            from_ms: config.from_ms,
            to_ms: config.to_ms,
            cash: config.cash,
            leverage: config.leverage,
            fee_taker_bps: config.fee_taker_bps,
            fee_maker_bps: config.fee_maker_bps,
            slippage_bps: config.sim.slippage_bps,
            intrabar: config.sim.intrabar.name().to_owned(),
            liquidation_fee_rate: config.sim.liquidation_fee_rate,
            instruments: config.instruments.clone(),
            seed: config.seed,
            call_fuel: config.call_fuel,
        })
    }

    /// The run's `Config`, its files fetched into `cache`.
    pub async fn config(&self, params: &Json, files: &ObjectStore, cache: &Path) -> anyhow::Result<Config> {
        let mut data = Vec::new();
        for file in &self.data {
            data.push(get_file(files, file, cache).await?);
        }
        let mut config = Config::new(get_file(files, &self.strategy, cache).await?, data);
        for (name, file) in &self.external {
            config.external.push((name.clone(), get_file(files, file, cache).await?));
        }
        for (name, file) in &self.funding {
            config.funding.push((name.clone(), get_file(files, file, cache).await?));
        }
        config.params = params.clone();
        config.symbol = self.symbol.clone();
        config.interval = self.interval.clone();
        config.from_ms = self.from_ms;
        config.to_ms = self.to_ms;
        config.cash = self.cash;
        config.leverage = self.leverage;
        config.fee_taker_bps = self.fee_taker_bps;
        config.fee_maker_bps = self.fee_maker_bps;
        config.sim.slippage_bps = self.slippage_bps;
        config.sim.intrabar = sim::Intrabar::parse(&self.intrabar)
            .with_context(|| format!("a job names the intrabar order {:?}, unknown to this build", self.intrabar))?;
        config.sim.liquidation_fee_rate = self.liquidation_fee_rate;
        config.instruments = self.instruments.clone();
        config.seed = self.seed;
        config.call_fuel = self.call_fuel;
        Ok(config)
    }
}
