//! Orders to Bybit: the engine's venue port for a live account, and the task that
//! carries out its effects.
//!
//! The engine hands an effect over only once its decision is durable in the journal
//! (write-ahead). [`BybitVenue::send`] checks it against the config's limits and
//! queues it; [`execute`] sends it, in decision order, and reports what became of it
//! as an [`Outcome`], which the driver journals as the venue's answer.
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
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bybit::{Error, OrderReport, Rest};
use engine::{Effect, Venue};
use journal::{
    event::{Cloid, OrderIntent},
    State,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc::UnboundedSender;

use super::{config::Limits, Msg};

/// Create attempts (sends, not queries) before an order is left for reconciliation.
const CREATE_ATTEMPTS_MAX: u32 = 4;
/// Queries for an order after an ambiguous answer, before the next send.
const QUERIES_PER_ATTEMPT: u32 = 3;

/// What the task is asked to do.
#[derive(Debug)]
pub enum Job {
    /// Place an order. `query_first` after a restart: the dead process may have sent it.
    Submit {
        trader: String,
        intent: OrderIntent,
        query_first: bool,
        tick: Option<Instant>,
    },
    Cancel {
        trader: String,
        symbol: String,
        cloid: Cloid,
    },
}

/// What became of a job.
#[derive(Debug)]
pub enum Outcome {
    Accepted {
        order_id: String,
    },
    /// The venue's own view of the order (after an ambiguous answer, a duplicate, a failed cancel).
    Known(OrderReport),
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

/// The engine's venue port for a live Bybit account.
#[derive(Debug)]
pub struct BybitVenue {
    /// None once closed (stopping): the order task ends when it has done what it holds.
    jobs: Option<UnboundedSender<Job>>,
    limits: Limits,
    /// Effects held back (while recovering) instead of queued.
    pub held: Option<Vec<Effect>>,
    /// Orders the limits refused: (trader, cloid, reason); the driver journals them.
    pub refused: Vec<(String, Cloid, String)>,
    /// When the kline being stepped was read from the socket (latency figures).
    pub tick: Option<Instant>,
}

impl BybitVenue {
    pub fn new(jobs: UnboundedSender<Job>, limits: Limits) -> BybitVenue {
        BybitVenue { jobs: Some(jobs), limits, held: None, refused: Vec::new(), tick: None }
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

impl Venue for BybitVenue {
    fn send(&mut self, effect: &Effect, state: &State) {
        if let Some(held) = &mut self.held {
            held.push(effect.clone());
            return;
        }
        match effect {
            Effect::Submit { trader, intent, .. } => {
                if let Some(reason) = self.refusal(state, trader, intent) {
                    self.refused.push((trader.clone(), intent.cloid, reason));
                    return;
                }
                self.queue(Job::Submit {
                    trader: trader.clone(),
                    intent: intent.clone(),
                    query_first: false,
                    tick: self.tick,
                });
            }
            Effect::Cancel { trader, cloid, .. } => {
                let symbol = state
                    .traders
                    .get(trader)
                    .and_then(|t| t.orders.get(cloid))
                    .map_or_else(String::new, |o| o.intent.symbol.clone());
                self.queue(Job::Cancel { trader: trader.clone(), symbol, cloid: *cloid });
            }
        }
    }

    /// Answers come from the streams and the task, through the driver's channel.
    fn poll(&mut self, _state: &State) -> Vec<engine::Input> {
        Vec::new()
    }
}

/// Tick-to-wire samples: from a kline frame read to its order's request about to be written.
pub type Latencies = Arc<Mutex<Vec<Duration>>>;

/// Carries out jobs in order until the driver drops its sender, reporting each outcome.
pub async fn execute(
    rest: Rest,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    out: UnboundedSender<Msg>,
    latencies: Option<Latencies>,
) {
    while let Some(job) = jobs.recv().await {
        let (trader, cloid, outcome) = match job {
            Job::Submit { trader, intent, query_first, tick } => {
                if let (Some(tick), Some(samples)) = (tick, &latencies) {
                    samples.lock().map(|mut s| s.push(tick.elapsed())).ok();
                }
                let outcome = submit(&rest, &intent, query_first).await;
                (trader, intent.cloid, outcome)
            }
            Job::Cancel { trader, symbol, cloid } => {
                let outcome = cancel(&rest, &symbol, &cloid).await;
                (trader, cloid, outcome)
            }
        };
        if out.send(Msg::Order { trader, cloid, outcome }).is_err() {
            return;
        }
    }
}

async fn submit(rest: &Rest, intent: &OrderIntent, query_first: bool) -> Outcome {
    if query_first {
        if let Some(known) = query(rest, &intent.symbol, &intent.cloid, 1).await {
            return Outcome::Known(known);
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
            return Outcome::Known(known);
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
        Some(known) => Outcome::Known(known),
        None if matches!(refused, Error::Api { code: 110_001 | 110_008 | 110_010, .. }) => Outcome::Unknown,
        None => Outcome::Unresolved(refused.to_string()),
    }
}

/// Asks for an order by its link id up to `tries` times (eventual consistency).
async fn query(rest: &Rest, symbol: &str, cloid: &Cloid, tries: u32) -> Option<OrderReport> {
    for attempt in 0..tries {
        match rest.order(symbol, cloid).await {
            Ok(Some(report)) => return Some(report),
            Ok(None) => {}
            Err(e) => tracing::warn!(%cloid, error = %e, "order query failed"),
        }
        if attempt + 1 < tries {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    None
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(5))
}
