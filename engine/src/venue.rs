//! The venue port: where the engine's effects go and where the venue's answers come from.
//!
//! The engine never waits for a venue. It hands over an [`Effect`] once the
//! decision behind it is journaled (and durable, when the venue is outside the
//! process), and takes the venue's answers later as ordinary inputs
//! (`OrderAccepted`, `OrderRejected`, `OrderCancelled`, `OrderFilled`,
//! `FundingPaid`, `PositionLiquidated`, `ExchangeReconciled`). Answers may come
//! late, out of order, twice, or never: the fold is built for that (a fill is
//! self-contained and applied once per fill id; a fill before its ack still
//! counts; an unknown cancel is an anomaly, not an error), and a live driver
//! reconciles what never came.

use std::collections::VecDeque;

use journal::{
    event::{Cloid, Event, OrderIntent},
    State,
};
use strategies::llm::LlmRequest;

/// Something the deciders asked the venue to do, with the seq of the journaled decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Place the order of the `OrderSubmitted` at `seq` (its cloid is the idempotency key).
    Submit { seq: u64, trader: String, intent: OrderIntent },
    /// Cancel the order `cloid` (the `OrderCancelRequested` at `seq`).
    Cancel { seq: u64, trader: String, cloid: Cloid },
    /// Ask a model the prompt of the `LlmPromptRendered` at `seq`. The answer comes back as an
    /// input (`LlmResponded` or `LlmFailed`); an exchange venue ignores it (see [`WithLlm`]).
    CallLlm { seq: u64, trader: String, request: Box<LlmRequest> },
}

impl Effect {
    /// The seq of the journaled decision this effect carries out.
    pub fn seq(&self) -> u64 {
        match self {
            Effect::Submit { seq, .. } | Effect::Cancel { seq, .. } | Effect::CallLlm { seq, .. } => *seq,
        }
    }

    pub fn trader(&self) -> &str {
        match self {
            Effect::Submit { trader, .. } | Effect::Cancel { trader, .. } | Effect::CallLlm { trader, .. } => trader,
        }
    }

    /// The effect a journaled derived event asks for, if any.
    pub fn of(seq: u64, trader: &str, event: &Event) -> Option<Effect> {
        match event {
            Event::OrderSubmitted(intent) => {
                Some(Effect::Submit { seq, trader: trader.to_owned(), intent: intent.clone() })
            }
            Event::OrderCancelRequested { cloid } => {
                Some(Effect::Cancel { seq, trader: trader.to_owned(), cloid: *cloid })
            }
            _ => None,
        }
    }
}

/// An input as a venue (or a feed) hands it to the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub time_ms: i64,
    /// The trader it belongs to; empty for shared facts (market data).
    pub trader: String,
    pub event: Event,
}

impl Input {
    pub fn new(time_ms: i64, trader: impl Into<String>, event: Event) -> Input {
        Input { time_ms, trader: trader.into(), event }
    }
}

/// A venue: the simulated exchange, a live exchange adapter, or nothing (replay).
pub trait Venue {
    /// Whether an effect must be durable in the journal before [`Venue::send`] sees it.
    /// True for anything outside the process (a crash must never leave an order at the
    /// exchange that the journal does not know); the in-process simulator, which dies
    /// with the journal's unflushed tail, answers false.
    fn needs_durable(&self) -> bool {
        true
    }

    /// Takes an effect whose decision is journaled (and durable if [`Venue::needs_durable`]).
    /// Never blocks on the answer and never fails: what happens to the request comes back
    /// as inputs from [`Venue::poll`] (or, for a live venue, from its streams), or is found
    /// by reconciliation.
    fn send(&mut self, effect: &Effect, state: &State);

    /// The answers ready now, in the order they are to be journaled. `state` is the
    /// ledger as folded so far; nothing here may read a clock: answers are stamped with
    /// event time (a live venue stamps what it received with the exchange's own times).
    fn poll(&mut self, state: &State) -> Vec<Input>;
}

/// The venue of `replay verify` for a journal whose venue answers are inputs (a live venue's,
/// or a backtest's recorded before `VenueConfigured`): effects go nowhere, since the answers
/// are in the journal. A backtest journal is verified against the re-run `sim::SimVenue` instead.
#[derive(Debug, Default)]
pub struct NoVenue;

impl Venue for NoVenue {
    fn needs_durable(&self) -> bool {
        false
    }

    fn send(&mut self, _effect: &Effect, _state: &State) {}

    fn poll(&mut self, _state: &State) -> Vec<Input> {
        Vec::new()
    }
}

/// Carries out model calls: the shell's side of [`Effect::CallLlm`]. The answer is an input,
/// so it may read clocks and the network; what it returns is journaled as it is.
pub trait LlmPort {
    /// Asks `request` for `trader`; returns the `LlmResponded` or `LlmFailed` to journal, and
    /// its event time (the decision's own time in a backtest, the receipt time live).
    fn call(&mut self, time_ms: i64, trader: &str, request: &LlmRequest) -> (i64, Event);
}

/// A venue with a model port beside it: orders and cancels go to `inner`, model calls to the
/// port. Answers come back through [`Venue::poll`]: the exchange's first, then one model
/// answer at a time once the exchange has nothing more to say, so an answer's orders are
/// acknowledged in the next round. `replay verify` relies on this order (an LLM answer is
/// followed by a settle of the simulated exchange).
pub struct WithLlm<'a, V> {
    pub inner: V,
    port: &'a mut dyn LlmPort,
    calls: VecDeque<(i64, String, LlmRequest)>,
}

impl<V: std::fmt::Debug> std::fmt::Debug for WithLlm<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithLlm").field("inner", &self.inner).field("calls", &self.calls.len()).finish_non_exhaustive()
    }
}

impl<'a, V: Venue> WithLlm<'a, V> {
    pub fn new(inner: V, port: &'a mut dyn LlmPort) -> WithLlm<'a, V> {
        WithLlm { inner, port, calls: VecDeque::new() }
    }
}

impl<V: Venue> Venue for WithLlm<'_, V> {
    fn needs_durable(&self) -> bool {
        self.inner.needs_durable()
    }

    fn send(&mut self, effect: &Effect, state: &State) {
        match effect {
            Effect::CallLlm { trader, request, .. } => {
                self.calls.push_back((state.time_ms, trader.clone(), (**request).clone()))
            }
            other => self.inner.send(other, state),
        }
    }

    fn poll(&mut self, state: &State) -> Vec<Input> {
        let answers = self.inner.poll(state);
        if !answers.is_empty() {
            return answers;
        }
        match self.calls.pop_front() {
            Some((time_ms, trader, request)) => {
                let (time_ms, event) = self.port.call(time_ms, &trader, &request);
                vec![Input::new(time_ms, trader, event)]
            }
            None => Vec::new(),
        }
    }
}
