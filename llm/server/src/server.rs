//! Start and stop, the shared state every handler reads, and the request log tests inspect.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use axum::{routing::post, Router};
use serde::Serialize;
use tokio::{sync::watch, task::JoinHandle};

use crate::script::{Dice, Fault, Script};

/// How long [`Server::shutdown`] waits for connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen: loopback, port 0 picks one.
    pub listen: String,
    /// Seeds the model's draws and the random fault mode.
    pub seed: u64,
    /// Which request gets which fault.
    pub script: Script,
    /// The one key accepted; `None` accepts any non-empty key (a missing key is still a 401).
    pub api_key: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config { listen: "127.0.0.1:0".to_owned(), seed: 0, script: Script::default(), api_key: None }
    }
}

/// Which wire protocol a request spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    OpenAi,
    Anthropic,
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// 1-based, across both APIs, in order of arrival: the number a script names.
    pub n: u64,
    pub api: Api,
    /// The scripted or drawn fault, if any (applied or not: a fault inside an answer is not
    /// applied to a request that fails validation).
    pub fault: Option<String>,
    /// The HTTP status answered; 0 while the answer is still being made (a slow one).
    pub status: u16,
    /// The official SDKs' `x-stainless-retry-count` header: how many retries preceded this one.
    pub sdk_retry_count: Option<u32>,
}

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    dice: Mutex<Dice>,
    log: Mutex<Vec<Entry>>,
    /// Bumped on every change to the log, so tests can wait for a count without polling.
    log_changed: watch::Sender<u64>,
    pub shutdown: watch::Receiver<bool>,
}

/// Locks a mutex, recovering from a panicked holder: every critical section here leaves the data
/// consistent, and a server that stops answering helps no test.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wall-clock seconds since the Unix epoch (for `created`, as the real APIs stamp it).
pub fn wall_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Shared {
    /// Numbers a new request, draws its fault and logs it.
    pub fn arrive(&self, api: Api, sdk_retry_count: Option<u32>) -> (u64, Option<Fault>) {
        let mut log = lock(&self.log);
        let n = log.len() as u64 + 1;
        let fault = lock(&self.dice).fault_of(n);
        log.push(Entry { n, api, fault: fault.map(|f| f.to_string()), status: 0, sdk_retry_count });
        drop(log);
        self.log_changed.send_modify(|v| *v += 1);
        (n, fault)
    }

    /// Records the status request `n` was answered with.
    pub fn answered(&self, n: u64, status: u16) {
        if let Some(entry) = lock(&self.log).get_mut((n - 1) as usize) {
            entry.status = status;
        }
        self.log_changed.send_modify(|v| *v += 1);
    }

    /// A short id unique to this server, seed and request: `{prefix}{24 hex}`.
    pub fn id(&self, prefix: &str, n: u64) -> String {
        let digest = blake3::hash(format!("{}/{n}", self.config.seed).as_bytes());
        format!("{prefix}{}", &digest.to_hex()[..24])
    }

    /// Whether the key is accepted (see [`Config::api_key`]).
    pub fn key_ok(&self, key: &str) -> bool {
        match &self.config.api_key {
            Some(expected) => key == expected,
            None => !key.is_empty(),
        }
    }
}

/// Resolves once the server is stopping.
pub async fn until_stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// `http://127.0.0.1:PORT/v1`: what the OpenAI SDKs take as `base_url`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`: what the Anthropic SDKs take as `base_url` (they add `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Entry> {
        lock(&self.shared.log).clone()
    }

    pub fn request_count(&self) -> u64 {
        lock(&self.shared.log).len() as u64
    }

    /// Waits until `n` requests have arrived, at most `timeout`; returns whether they did.
    pub async fn wait_for_requests(&self, n: u64, timeout: Duration) -> bool {
        let mut changed = self.shared.log_changed.subscribe();
        let shared = &self.shared;
        let reached = async move {
            let _ = changed.wait_for(|_| lock(&shared.log).len() as u64 >= n).await;
        };
        tokio::time::timeout(timeout, reached).await.is_ok() && self.request_count() >= n
    }

    /// Stops accepting, ends hanging (slow) answers and waits for the server task a little.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(crate::openai::chat_completions))
        .route("/v1/messages", post(crate::anthropic::messages))
        .fallback(crate::openai::not_found)
        .with_state(shared)
}

/// Starts a server and returns once it listens.
///
/// # Errors
/// An address that cannot be bound.
pub async fn serve(config: Config) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let addr = listener.local_addr().context("failed to read the bound address")?;
    let (stop, shutdown) = watch::channel(false);
    let shared = Arc::new(Shared {
        dice: Mutex::new(Dice::new(config.script.clone(), config.seed)),
        config,
        log: Mutex::new(Vec::new()),
        log_changed: watch::channel(0).0,
        shutdown,
    });
    let app = router(shared.clone());
    let mut stopped = shared.shutdown.clone();
    let task = tokio::spawn(async move {
        let signal = async move { until_stopped(&mut stopped).await };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
            tracing::error!("llm-server stopped serving: {e}");
        }
    });
    Ok(Server { addr, shared, stop, task: Some(task) })
}
