//! Orders to a live account: the engine's venue port, and the task that carries out its
//! effects (on Bybit here; on Hyperliquid in `hl.rs`, by the same rules).
//!
//! The engine hands an effect over only once its decision is durable in the journal
//! (write-ahead). [`LiveVenue::send`] checks it against the config's limits (and, on
//! Hyperliquid, the wire rules, so an order the venue cannot take is journaled as rejected
//! before anything is signed) and queues it (on Hyperliquid the step's new orders go
//! together, as one action, when the step is done: [`LiveVenue::flush`]); [`execute`]
//! sends it (jobs of one order in order, different orders side by side) and reports what
//! became of it as an [`Outcome`], which the driver journals as the venue's answer.
//!
//! A create is never sent under a second id: its `orderLinkId` is the intent's cloid,
//! the same on every attempt. One that fails ambiguously (timeout, connection lost, 5xx)
//! is resolved by asking the venue for that `orderLinkId` before anything is re-sent;
//! a re-send that finds it placed after all gets 110072 ("duplicate"), which means
//! "it exists", and is resolved by the same query. "Not found" right after a create
//! may be the venue's eventual consistency, so it is asked again before a re-send, and
//! never taken to mean "not placed" for good: an order left unresolved stays waiting
//! in the ledger for the next reconciliation.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bybit::{Error, Rest};
use engine::{Effect, Venue};
use journal::{
    event::{Cloid, OrderIntent, RejectReason},
    State,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc::UnboundedSender;

use super::{config::Limits, hl::HlLink, inputs::OrderReport, link::bybit_order, Msg};

/// Who carries the jobs out.
#[derive(Clone)]
pub enum Exec {
    Bybit(Rest),
    Hyperliquid(Arc<HlLink>),
}

/// Create attempts (sends, not queries) before an order is left for reconciliation (both venues).
pub(super) const CREATE_ATTEMPTS_MAX: u32 = 4;
/// Queries for an order after an ambiguous answer, before the next send (both venues).
pub(super) const QUERIES_PER_ATTEMPT: u32 = 3;

/// What the task is asked to do.
#[derive(Debug)]
pub enum Job {
    /// Place an order. `query_first` after a restart: the dead process may have sent it.
    Submit {
        order: NewOrder,
        query_first: bool,
    },
    Cancel {
        trader: String,
        symbol: String,
        cloid: Cloid,
    },
    /// Hyperliquid: the new orders one step decided, placed as one action.
    Batch(Vec<NewOrder>),
}

/// An order to place, alone or in a [`Job::Batch`].
#[derive(Debug)]
pub struct NewOrder {
    pub trader: String,
    pub intent: OrderIntent,
    /// When the kline that led to it was read from the socket (latency figures).
    pub tick: Option<Instant>,
    /// The mark when it was decided: a Hyperliquid market order's limit is bounded from it.
    pub reference: Option<Decimal>,
}

impl Job {
    fn cloids(&self) -> Vec<Cloid> {
        match self {
            Job::Submit { order, .. } => vec![order.intent.cloid],
            Job::Cancel { cloid, .. } => vec![*cloid],
            Job::Batch(orders) => orders.iter().map(|o| o.intent.cloid).collect(),
        }
    }
}

/// What became of a job.
#[derive(Debug)]
pub enum Outcome {
    Accepted {
        order_id: String,
    },
    /// The venue's own view of the order (after an ambiguous answer, a duplicate, a failed cancel).
    /// (Boxed: a report is ten times the size of the other variants.)
    Known(Box<OrderReport>),
    Rejected {
        code: i64,
        message: String,
    },
    /// A cancel the venue refused because it has no such order, and a query found none.
    Unknown,
    /// A cancel that went out: the order stream brings the result.
    CancelSent,
    /// No answer that settles it: the order stays as it is in the ledger until reconciled.
    Unresolved(String),
}

/// Why an order was refused before it reached the venue.
#[derive(Debug)]
pub struct Refusal {
    pub trader: String,
    pub cloid: Cloid,
    pub reason: RejectReason,
    /// A limit of the config: the trader stops. (An order the venue's rules refuse does not
    /// stop it: the strategy is told, as by any rejection.)
    pub stops_trader: bool,
}

/// The engine's venue port for a live account.
pub struct LiveVenue {
    /// None once closed (stopping): the order task ends when it has done what it holds.
    jobs: Option<UnboundedSender<Job>>,
    limits: Limits,
    /// Effects held back (while recovering) instead of queued.
    pub held: Option<Vec<Effect>>,
    /// Orders refused before the venue; the driver journals them.
    pub refused: Vec<Refusal>,
    /// Hyperliquid: the wire rules every order is checked against before it is queued.
    wire: Option<Arc<HlLink>>,
    /// Hyperliquid: new orders of the step being taken, queued as one batch by [`LiveVenue::flush`].
    step_orders: Vec<NewOrder>,
    /// When the kline being stepped was read from the socket (latency figures).
    pub tick: Option<Instant>,
    /// Cancels sent and not yet answered: a strategy asking again (many cancel whatever
    /// `getOpenOrders` lists on every bar) is journaled, but not sent twice.
    cancels_in_flight: BTreeSet<Cloid>,
}

impl LiveVenue {
    pub fn new(jobs: UnboundedSender<Job>, limits: Limits, wire: Option<Arc<HlLink>>) -> LiveVenue {
        LiveVenue {
            jobs: Some(jobs),
            limits,
            held: None,
            refused: Vec::new(),
            wire,
            step_orders: Vec::new(),
            tick: None,
            cancels_in_flight: BTreeSet::new(),
        }
    }

    pub fn queue(&self, job: Job) {
        match &self.jobs {
            // The task ends only after the driver has stopped sending.
            Some(jobs) => {
                let _ = jobs.send(job);
            }
            None => tracing::warn!(?job, "stopping: not sent (the next start resolves it from the journal)"),
        }
    }

    /// Queues the new orders the step decided (Hyperliquid), one action for all of them.
    pub fn flush(&mut self) {
        let mut orders = std::mem::take(&mut self.step_orders);
        match orders.pop() {
            None => {}
            Some(order) if orders.is_empty() => self.queue(Job::Submit { order, query_first: false }),
            Some(last) => {
                orders.push(last);
                self.queue(Job::Batch(orders));
            }
        }
    }

    /// The venue answered a cancel (or it could not be sent): a new request goes out again.
    pub fn cancel_answered(&mut self, cloid: &Cloid) {
        self.cancels_in_flight.remove(cloid);
    }

    /// No more jobs: the order task finishes those it holds, then ends.
    pub fn close(&mut self) {
        self.jobs = None;
    }

    /// Why the config's limits refuse the order, if they do.
    fn refusal(&self, state: &State, trader: &str, intent: &OrderIntent) -> Option<String> {
        let account = state.traders.get(trader)?;
        if let Some(max) = self.limits.max_open_orders {
            // The new order is in the ledger already.
            let open = account.orders.len();
            if open > max {
                return Some(format!("limit: {open} open orders, max_open_orders is {max}"));
            }
        }
        if let Some(max) = self.limits.max_order_notional {
            let price = intent.price.or(intent.trigger_price).or_else(|| state.mark(&intent.symbol));
            let notional = price.map_or(Decimal::ZERO, |p| p * intent.qty);
            if notional > max {
                return Some(format!("limit: order notional {notional} exceeds max_order_notional {max}"));
            }
        }
        None
    }
}

impl Venue for LiveVenue {
    fn send(&mut self, effect: &Effect, state: &State) {
        if let Some(held) = &mut self.held {
            held.push(effect.clone());
            return;
        }
        match effect {
            Effect::Submit { trader, intent, .. } => {
                let (trader, cloid) = (trader.clone(), intent.cloid);
                if let Some(why) = self.refusal(state, &trader, intent) {
                    let reason = RejectReason::Refused(why);
                    self.refused.push(Refusal { trader, cloid, reason, stops_trader: true });
                    return;
                }
                let reference = state.mark(&intent.symbol);
                if let Some(why) = self.wire.as_ref().and_then(|hl| hl.refusal(intent, reference)) {
                    let reason = RejectReason::Refused(why);
                    self.refused.push(Refusal { trader, cloid, reason, stops_trader: false });
                    return;
                }
                let order = NewOrder { trader, intent: intent.clone(), tick: self.tick, reference };
                if self.wire.is_some() {
                    // Held until the step is done, then sent with the step's other orders.
                    self.step_orders.push(order);
                    return;
                }
                self.queue(Job::Submit { order, query_first: false });
            }
            // Model calls never get here: the session's port (`live::Port`) takes them.
            Effect::CallLlm { .. } => {}
            Effect::Cancel { trader, cloid, .. } => {
                let symbol = state
                    .traders
                    .get(trader)
                    .and_then(|t| t.orders.get(cloid))
                    .map_or_else(String::new, |o| o.intent.symbol.clone());
                if self.cancels_in_flight.insert(*cloid) {
                    // An order of this step is created before it is cancelled.
                    self.flush();
                    self.queue(Job::Cancel { trader: trader.clone(), symbol, cloid: *cloid });
                }
            }
        }
    }

    /// Answers come from the streams and the task, through the driver's channel.
    fn poll(&mut self, _state: &State) -> Vec<engine::Input> {
        Vec::new()
    }
}

/// What `quantfold bench live` measures of a run, and how it stops one.
#[derive(Debug, Default)]
pub struct Probe {
    /// From a kline frame read off the socket to the order it led to handed to the REST
    /// client (the decision and its write-ahead flush included; signing and the socket
    /// write not).
    pub to_request: Mutex<Vec<Duration>>,
    /// From the same frame to the venue's answer to that create (an upper bound on the
    /// request being written).
    pub to_answer: Mutex<Vec<Duration>>,
    /// From the session's start to trading: journal resumed, orders recovered, venue
    /// reconciled, strategies loaded.
    pub started: Mutex<Option<Duration>>,
    /// Set to stop the run as SIGTERM would.
    pub stop: AtomicBool,
}

impl Probe {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn sample(samples: &Mutex<Vec<Duration>>, since: Instant) {
    if let Ok(mut samples) = samples.lock() {
        samples.push(since.elapsed());
    }
}

/// Carries out jobs until the driver drops its sender, reporting each outcome; then
/// finishes every job it holds.
///
/// Jobs of one order (its create, then its cancel) run one after the other; jobs of
/// different orders run side by side, so one request that hangs (a lost response waits
/// for the timeout) does not hold up every other order. They start in decision order and
/// queue in that order for the rate-limit budgets.
pub async fn execute(
    exec: Exec,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    out: UnboundedSender<Msg>,
    probe: Option<Arc<Probe>>,
) {
    // Per order, the newest job still running says when it is done: the next job of that
    // order waits for it (a batch's job is every one of its orders' newest).
    let mut running: BTreeMap<Cloid, tokio::sync::watch::Receiver<bool>> = BTreeMap::new();
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    while let Some(job) = jobs.recv().await {
        running.retain(|_, done| !*done.borrow());
        tasks.retain(|task| !task.is_finished());
        let cloids = job.cloids();
        let before: Vec<_> = cloids.iter().filter_map(|cloid| running.remove(cloid)).collect();
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let (exec, out, probe) = (exec.clone(), out.clone(), probe.clone());
        tasks.push(tokio::spawn(async move {
            for mut done in before {
                // An error: that task ended without saying so (it panicked); go on.
                let _ = done.wait_for(|done| *done).await;
            }
            for (trader, cloid, outcome) in carry_out(&exec, job, probe.as_deref()).await {
                // The driver gone means the process is ending: the next start resolves it.
                let _ = out.send(Msg::Order { trader, cloid, outcome });
            }
            let _ = done_tx.send(true);
        }));
        for cloid in cloids {
            running.insert(cloid, done_rx.clone());
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn carry_out(exec: &Exec, job: Job, probe: Option<&Probe>) -> Vec<(String, Cloid, Outcome)> {
    match job {
        Job::Batch(orders) => {
            let timed: Vec<_> = orders.iter().filter_map(|o| o.tick.zip(probe)).collect();
            for (tick, probe) in &timed {
                sample(&probe.to_request, *tick);
            }
            let outcomes = match exec {
                Exec::Hyperliquid(hl) => {
                    let batch: Vec<_> = orders.iter().map(|o| (o.intent.clone(), o.reference)).collect();
                    hl.submit_batch(&batch).await
                }
                // Only Hyperliquid's port makes batches; Bybit's orders would go one by one.
                Exec::Bybit(rest) => {
                    let mut outcomes = Vec::new();
                    for o in &orders {
                        outcomes.push(submit(rest, &o.intent, false).await);
                    }
                    outcomes
                }
            };
            for (tick, probe) in &timed {
                sample(&probe.to_answer, *tick);
            }
            orders.into_iter().zip(outcomes).map(|(o, outcome)| (o.trader, o.intent.cloid, outcome)).collect()
        }
        Job::Submit { order: NewOrder { trader, intent, tick, reference }, query_first } => {
            let timed = tick.zip(probe);
            if let Some((tick, probe)) = timed {
                sample(&probe.to_request, tick);
            }
            let outcome = match exec {
                Exec::Bybit(rest) => submit(rest, &intent, query_first).await,
                Exec::Hyperliquid(hl) => hl.submit(&intent, reference, query_first).await,
            };
            if let Some((tick, probe)) = timed {
                sample(&probe.to_answer, tick);
            }
            vec![(trader, intent.cloid, outcome)]
        }
        Job::Cancel { trader, symbol, cloid } => {
            let outcome = match exec {
                Exec::Bybit(rest) => cancel(rest, &symbol, &cloid).await,
                Exec::Hyperliquid(hl) => hl.cancel(&symbol, &cloid).await,
            };
            vec![(trader, cloid, outcome)]
        }
    }
}

async fn submit(rest: &Rest, intent: &OrderIntent, query_first: bool) -> Outcome {
    if query_first {
        if let Some(known) = query(rest, &intent.symbol, &intent.cloid, 1).await {
            return Outcome::Known(Box::new(known));
        }
    }
    let mut last = String::new();
    for attempt in 0..CREATE_ATTEMPTS_MAX {
        match rest.create_order(intent).await {
            Ok(created) => return Outcome::Accepted { order_id: created.order_id },
            Err(Error::DryRun) => {
                return Outcome::Rejected { code: 0, message: "dry run: signed and logged, not sent".into() }
            }
            // The venue has it already: a re-send of this very order.
            Err(Error::Api { code: 110_072, message }) => {
                last = format!("bybit error 110072: {message}");
            }
            Err(e) if e.is_ambiguous() => last = e.to_string(),
            Err(Error::Api { code, message }) => {
                return Outcome::Rejected { code, message };
            }
            Err(e @ (Error::Http { .. } | Error::Transport(_) | Error::Decode(_) | Error::NoCredentials)) => {
                return Outcome::Rejected { code: -1, message: e.to_string() };
            }
        }
        if let Some(known) = query(rest, &intent.symbol, &intent.cloid, QUERIES_PER_ATTEMPT).await {
            return Outcome::Known(Box::new(known));
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
    Outcome::Unresolved(last)
}

async fn cancel(rest: &Rest, symbol: &str, cloid: &Cloid) -> Outcome {
    let refused = match rest.cancel_order(symbol, cloid).await {
        Ok(_) => return Outcome::CancelSent,
        Err(Error::DryRun) => return Outcome::Unresolved("dry run: cancel not sent".into()),
        Err(e) => e,
    };
    // Not there, already done, or no clear answer: what does the venue say of it?
    match query(rest, symbol, cloid, QUERIES_PER_ATTEMPT).await {
        Some(known) => Outcome::Known(Box::new(known)),
        None if matches!(refused, Error::Api { code: 110_001 | 110_008 | 110_010, .. }) => Outcome::Unknown,
        None => Outcome::Unresolved(refused.to_string()),
    }
}

/// Asks for an order by its link id up to `tries` times (eventual consistency).
async fn query(rest: &Rest, symbol: &str, cloid: &Cloid, tries: u32) -> Option<OrderReport> {
    for attempt in 0..tries {
        match rest.order(symbol, cloid).await {
            Ok(Some(report)) => return Some(bybit_order(&report)),
            Ok(None) => {}
            Err(e) => tracing::warn!(%cloid, error = %e, "order query failed"),
        }
        if attempt + 1 < tries {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    None
}

/// The pause before the next attempt or lookup (both venues): 100 ms doubling to 3.2 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(5))
}
