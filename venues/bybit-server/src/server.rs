//! Start and stop: the shared exchange, the listener (REST and both WebSocket paths on one
//! port), and the task that plays the market.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use journal::event::Kline;
use serde_json::{json, Value};
use tokio::{
    sync::{broadcast, watch, Notify},
    task::JoinHandle,
};

use crate::{
    account::{digest16, uuid_of, Account, Push, Topic},
    config::Config,
    faults::{Dice, Fault},
    log::Log,
    market::Market,
    ratelimit::RateLimiter,
};

/// Messages a slow WebSocket reader may fall behind by before it skips (and is told nothing,
/// as a real exchange would not wait either).
const BROADCAST_CAPACITY: usize = 4096;
/// Between a bar's private messages and the bar itself, so its fills are on the wire first.
const KLINE_AFTER_FILLS: Duration = Duration::from_millis(5);
/// How far a bar's private messages trail the bar under the `late_fills` fault.
const LATE_FILLS: Duration = Duration::from_millis(150);
/// How long [`Server::shutdown`] waits for connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The market and the account, behind one lock: every change and its pushes happen together.
#[derive(Debug)]
pub struct Exchange {
    pub market: Market,
    pub account: Account,
    log: Option<Log>,
}

/// A public message: its topic and its text.
#[derive(Debug)]
pub struct PublicMessage {
    pub topic: String,
    pub text: String,
}

/// A private message before it is addressed to the topic names a connection subscribed to.
#[derive(Debug)]
pub struct PrivateMessage {
    pub topic: Topic,
    pub id: String,
    pub creation_ms: i64,
    pub data: Vec<Value>,
}

impl PrivateMessage {
    /// The text under topic `name` (VENUES.md §2: `id, topic, creationTime, data`).
    pub fn text(&self, name: &str) -> String {
        json!({"id": self.id, "topic": name, "creationTime": self.creation_ms, "data": self.data}).to_string()
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    exchange: Mutex<Exchange>,
    dice: Mutex<Dice>,
    limits: Mutex<RateLimiter>,
    pub public: broadcast::Sender<Arc<PublicMessage>>,
    pub private: broadcast::Sender<Arc<PrivateMessage>>,
    clock_started: Notify,
    pub shutdown: watch::Receiver<bool>,
    messages: AtomicU64,
    connections: AtomicU64,
}

/// Locks a mutex, recovering from a panicked holder: every critical section leaves the data
/// consistent or not at all, and a server that stops answering helps no test.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resolves once the server is stopping (the guard `wait_for` returns is dropped here, so
/// callers stay `Send`).
pub async fn until_stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Wall-clock ms since the Unix epoch.
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Shared {
    pub fn exchange(&self) -> MutexGuard<'_, Exchange> {
        lock(&self.exchange)
    }

    pub fn dice(&self) -> MutexGuard<'_, Dice> {
        lock(&self.dice)
    }

    pub fn limits(&self) -> MutexGuard<'_, RateLimiter> {
        lock(&self.limits)
    }

    /// The clock authentication and server time read: the wall plus the skew fault.
    pub fn auth_now_ms(&self) -> i64 {
        wall_ms() + self.config.faults.skew_ms
    }

    /// A connection id, unique per server.
    pub fn connection_id(&self) -> String {
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        format!("qf{n:06}-{}", &hex::encode(digest16(&format!("conn/{n}")))[..12])
    }

    /// Writes the ground truth the account produced and pushes its messages (under the
    /// exchange lock, so messages leave in the order of the changes).
    pub fn publish(&self, exchange: &mut Exchange, pushes: Vec<Push>) {
        let lines = std::mem::take(&mut exchange.account.log_lines);
        if let Some(log) = exchange.log.as_mut() {
            for line in &lines {
                log.write(line);
            }
        }
        let creation_ms = exchange.market.event_ms();
        for push in pushes.into_iter().filter(|p| !p.data.is_empty()) {
            let n = self.messages.fetch_add(1, Ordering::Relaxed);
            let id = uuid_of(&digest16(&format!("message/{n}")));
            // No receiver is not an error: nobody is listening yet.
            let _ = self.private.send(Arc::new(PrivateMessage { topic: push.topic, id, creation_ms, data: push.data }));
        }
    }

    /// Starts the market clock (with `hold`, at the first kline subscription).
    pub fn start_clock(&self) {
        if self.exchange().market.start() {
            self.clock_started.notify_one();
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT` (paths `/v5/public/linear` and `/v5/private`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The market clock in ms (for tests that wait on the market).
    pub fn market_now_ms(&self) -> i64 {
        self.shared.exchange().market.now_ms()
    }

    /// How many bars are closed (history included).
    pub fn bars_closed(&self) -> usize {
        self.shared.exchange().market.closed().len()
    }

    /// Stops accepting, closes WebSockets and hanging responses, and waits for the tasks a
    /// little before cutting them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
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
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts a server on `klines` of `symbol` (one interval, in time order) and returns once it
/// listens.
///
/// # Errors
/// Bad settings or klines, a log that cannot be created, an address that cannot be bound.
pub async fn start(config: Config, symbol: &str, klines: Vec<Kline>) -> anyhow::Result<Server> {
    config.check()?;
    let mut market = Market::new(symbol, klines, config.history, config.speed)?;
    let account = Account::new(&config, &market);
    let log = config.log.as_deref().map(Log::create).transpose()?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let addr = listener.local_addr().context("failed to read the bound address")?;
    if !config.hold {
        market.start();
    }
    let (stop, shutdown) = watch::channel(false);
    let shared = Arc::new(Shared {
        dice: Mutex::new(Dice::new(config.faults.clone(), config.seed)),
        config,
        exchange: Mutex::new(Exchange { market, account, log }),
        limits: Mutex::new(RateLimiter::default()),
        public: broadcast::channel(BROADCAST_CAPACITY).0,
        private: broadcast::channel(BROADCAST_CAPACITY).0,
        clock_started: Notify::new(),
        shutdown,
        messages: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    });
    let app = crate::rest::router(shared.clone());
    let mut stopped = shared.shutdown.clone();
    let serve = tokio::spawn(async move {
        let signal = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
            tracing::error!("bybit-server stopped serving: {e}");
        }
    });
    let clock = tokio::spawn(play_market(shared.clone()));
    Ok(Server { addr, shared, stop, tasks: vec![serve, clock] })
}

/// Closes bars as the market clock passes their ends, until the last one.
async fn play_market(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let wait = {
            let exchange = shared.exchange();
            if exchange.market.current().is_none() {
                return;
            }
            exchange.market.wall_until_close()
        };
        match wait {
            None => {
                tokio::select! {
                    () = shared.clock_started.notified() => {}
                    () = until_stopped(&mut shutdown) => return,
                }
            }
            Some(wait) if !wait.is_zero() => {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = until_stopped(&mut shutdown) => return,
                }
            }
            Some(_) => {
                let (kline, late) = {
                    let mut guard = shared.exchange();
                    let exchange = &mut *guard;
                    let Some(bar) = exchange.market.close_current() else { return };
                    let pushes = exchange.account.settle(&bar);
                    let late = !pushes.is_empty() && shared.dice().roll(Fault::LateFills);
                    let late = if late {
                        // The log is the ground truth of the moment: written now, pushed later.
                        shared.publish(exchange, Vec::new());
                        pushes
                    } else {
                        shared.publish(exchange, pushes);
                        Vec::new()
                    };
                    let message = exchange.market.kline_message(&bar, exchange.market.now_ms());
                    (PublicMessage { topic: exchange.market.topic(), text: message.to_string() }, late)
                };
                tokio::time::sleep(KLINE_AFTER_FILLS).await;
                let _ = shared.public.send(Arc::new(kline));
                if !late.is_empty() {
                    // The private stream lags the public one: a strategy hears of the bar before
                    // its fills, and may cancel an order the venue has filled already.
                    tokio::select! {
                        () = tokio::time::sleep(LATE_FILLS) => {}
                        () = until_stopped(&mut shutdown) => return,
                    }
                    let mut guard = shared.exchange();
                    shared.publish(&mut guard, late);
                }
            }
        }
    }
}
