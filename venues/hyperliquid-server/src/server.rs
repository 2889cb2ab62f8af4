//! Start and stop: the shared exchange, the listener (`/info`, `/exchange` and `/ws` on one
//! port), and the task that plays the market.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context;
use bybit_server::{
    log::Log,
    market::Market,
    server::{lock, wall_ms},
};
use journal::event::Kline;
use tokio::{
    sync::{broadcast, watch, Notify},
    task::JoinHandle,
};

pub use bybit_server::server::until_stopped;

use crate::{
    account::{Account, Push},
    config::Config,
    faults::{Dice, Fault},
    nonces::Nonces,
    ratelimit::IpBudget,
    views,
};

/// Messages a slow WebSocket reader may fall behind by before it skips.
const BROADCAST_CAPACITY: usize = 4096;
/// Between a bar's user messages and the bar itself, so its fills are on the wire first.
const CANDLE_AFTER_FILLS: Duration = Duration::from_millis(5);
/// How far a bar's user messages trail the bar under the `late_fills` fault.
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

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    /// The candle interval's name ("1m", ...).
    pub interval: String,
    exchange: Mutex<Exchange>,
    dice: Mutex<Dice>,
    nonces: Mutex<Nonces>,
    budget: Mutex<IpBudget>,
    /// Closed candles, as `candle` channel messages.
    pub candles: broadcast::Sender<Arc<String>>,
    /// The account's `orderUpdates` and `userFills` messages.
    pub user: broadcast::Sender<Arc<Push>>,
    /// How many bars have been settled: an `Ioc` order's answer waits for the next one.
    pub settled: watch::Sender<usize>,
    clock_started: Notify,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn exchange(&self) -> MutexGuard<'_, Exchange> {
        lock(&self.exchange)
    }

    pub fn dice(&self) -> MutexGuard<'_, Dice> {
        lock(&self.dice)
    }

    pub fn nonces(&self) -> MutexGuard<'_, Nonces> {
        lock(&self.nonces)
    }

    pub fn budget(&self) -> MutexGuard<'_, IpBudget> {
        lock(&self.budget)
    }

    /// The server's clock: the wall plus the skew fault (the nonce window reads it).
    pub fn now_ms(&self) -> i64 {
        wall_ms() + self.config.faults.skew_ms
    }

    /// Writes the ground truth the account produced and pushes its messages (under the
    /// exchange lock, so messages leave in the order of the changes). Returns the pushes
    /// instead when `hold` (the `late_fills` fault sends them later).
    pub fn publish(&self, exchange: &mut Exchange, hold: bool) -> Vec<Push> {
        let lines = std::mem::take(&mut exchange.account.log_lines);
        if let Some(log) = exchange.log.as_mut() {
            for line in &lines {
                log.write(line);
            }
        }
        let pushes = std::mem::take(&mut exchange.account.pushes);
        if hold {
            return pushes;
        }
        self.send(pushes);
        Vec::new()
    }

    fn send(&self, pushes: Vec<Push>) {
        for push in pushes {
            // No receiver is not an error: nobody is listening yet.
            let _ = self.user.send(Arc::new(push));
        }
    }

    /// Starts the market clock (with `hold`, at the first candle subscription).
    pub fn start_clock(&self) {
        if self.exchange().market.start() {
            self.clock_started.notify_one();
        }
    }

    /// Fires the dead man's switch if its time has come.
    pub fn check_scheduled_cancel(&self, exchange: &mut Exchange) {
        if exchange.account.scheduled_cancel_ms.is_some_and(|at| at <= self.now_ms()) {
            exchange.account.scheduled_cancel_ms = None;
            let Exchange { market, account, .. } = exchange;
            account.cancel_all("scheduledCancel", market);
            self.publish(exchange, false);
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
    /// `http://127.0.0.1:PORT` (the SDKs' `base_url`).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
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

/// Starts a server on `klines` (one interval, in time order) traded as `coin`, and returns
/// once it listens.
///
/// # Errors
/// Bad settings or klines, an interval Hyperliquid has no name for, a log that cannot be
/// created, an address that cannot be bound.
pub async fn start(config: Config, coin: &str, mut klines: Vec<Kline>) -> anyhow::Result<Server> {
    config.check()?;
    // The file's symbol (BTCUSDT) is the coin here: the sim settles only orders of the bar's
    // own symbol, and the orders are the coin's.
    for kline in &mut klines {
        coin.clone_into(&mut kline.symbol);
    }
    let mut market = Market::new(coin, klines, config.history, config.speed)?;
    let interval = hyperliquid::types::interval_label(market.interval_ms)
        .with_context(|| format!("Hyperliquid has no candle interval of {} ms", market.interval_ms))?;
    let account = Account::new(&config, &market);
    let log = config.log.as_deref().map(Log::create).transpose()?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let addr = listener.local_addr().context("failed to read the bound address")?;
    if !config.hold {
        market.start();
    }
    let settled = market.closed().len();
    let (stop, shutdown) = watch::channel(false);
    let shared = Arc::new(Shared {
        dice: Mutex::new(Dice::new(config.faults.clone(), config.seed)),
        nonces: Mutex::new(Nonces::default()),
        budget: Mutex::new(IpBudget::new(config.ip_weight_per_minute)),
        interval: interval.to_owned(),
        config,
        exchange: Mutex::new(Exchange { market, account, log }),
        candles: broadcast::channel(BROADCAST_CAPACITY).0,
        user: broadcast::channel(BROADCAST_CAPACITY).0,
        settled: watch::channel(settled).0,
        clock_started: Notify::new(),
        shutdown,
    });
    let app = crate::rest::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut stopped = shared.shutdown.clone();
    let serve = tokio::spawn(async move {
        let signal = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
            tracing::error!("hyperliquid-server stopped serving: {e}");
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
            let mut exchange = shared.exchange();
            shared.check_scheduled_cancel(&mut exchange);
            if exchange.market.current().is_none() {
                // The market has ended: an Ioc order waiting for a bar learns there is none.
                shared.settled.send_modify(|n| *n += 1);
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
                let (candle, late) = {
                    let mut guard = shared.exchange();
                    let exchange = &mut *guard;
                    let Some(bar) = exchange.market.close_current() else { return };
                    exchange.account.settle(&bar);
                    let filled = !exchange.account.pushes.is_empty();
                    let late = filled && shared.dice().roll(Fault::LateFills);
                    // The log is the ground truth of the moment: written now, pushed maybe later.
                    let late = shared.publish(exchange, late);
                    shared.settled.send_modify(|n| *n += 1);
                    let data = views::candle(&bar, &exchange.account.coin, &shared.interval);
                    (serde_json::json!({"channel": "candle", "data": data}).to_string(), late)
                };
                tokio::time::sleep(CANDLE_AFTER_FILLS).await;
                let _ = shared.candles.send(Arc::new(candle));
                if !late.is_empty() {
                    // The user stream lags the candles: a strategy hears of the bar before its
                    // fills, and may cancel an order the venue has filled already.
                    tokio::select! {
                        () = tokio::time::sleep(LATE_FILLS) => {}
                        () = until_stopped(&mut shutdown) => return,
                    }
                    let _guard = shared.exchange();
                    shared.send(late);
                }
            }
        }
    }
}
