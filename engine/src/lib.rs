//! The engine: the one step that backtest, replay and live trading all run.
//!
//! An [`Engine`] owns the journal sink and the worker (the deciders). Every
//! input — a kline, a data point, an exchange's ack, rejection, cancel or fill,
//! funding, a reconciliation, a stop request — goes through [`Engine::step`]:
//!
//! 1. the input is recorded by the sink (appended to the journal, or compared
//!    with it in replay) and folded into the ledger;
//! 2. it is routed to the deciders, whose decisions are recorded and folded the
//!    same way, as they are made (so `ctx.api` reads see the order just placed);
//! 3. the decisions that ask something of the venue become [`Effect`]s; they are
//!    made durable if the venue lives outside the process (write-ahead: a crash
//!    never leaves an order at an exchange that the journal does not know), and
//!    then handed to the [`Venue`].
//!
//! The drivers differ only in where inputs come from and which venue answers:
//! a backtest is an engine with a historical feed and the simulated exchange,
//! `replay verify` an engine fed with a journal's inputs and a sink that
//! compares instead of writing, live trading an engine with a live feed and an
//! exchange adapter. Time is an input: nothing in here reads a clock.

pub mod venue;

use journal::{Event, State};
use strategies::{
    runtime::StrategySpec,
    sink::{Sink, SinkError},
    worker::Worker,
};
pub use venue::{Effect, Input, LlmPort, NoVenue, Venue, WithLlm};

/// How many rounds of venue answers [`Engine::settle`] takes before it stops: a strategy
/// that answers every acknowledgement with a new order would otherwise loop forever.
/// What is left is answered at the next settle.
pub const SETTLE_ROUNDS_MAX: usize = 64;

/// The journal sink, the deciders, and the effects on their way to a venue.
#[derive(Debug)]
pub struct Engine<S> {
    sink: S,
    worker: Worker,
    /// Effects of the step in progress, in decision order.
    effects: Vec<Effect>,
    /// Effects handed to venues so far.
    sent: u64,
}

impl<S: Sink> Engine<S> {
    pub fn new(sink: S) -> Engine<S> {
        Engine { sink, worker: Worker::new(), effects: Vec::new(), sent: 0 }
    }

    /// The ledger as folded so far.
    pub fn state(&self) -> &State {
        self.sink.state()
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Effects handed to venues so far.
    pub fn effects_sent(&self) -> u64 {
        self.sent
    }

    /// Ends the engine, giving back its sink.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Ends the engine, giving back its sink and its deciders (resuming: the deciders of a
    /// walk through the journal go on with a sink that appends).
    pub fn into_parts(self) -> (S, Worker) {
        (self.sink, self.worker)
    }

    /// An engine of a sink and deciders that belong together (see [`Engine::into_parts`]).
    pub fn from_parts(sink: S, worker: Worker) -> Engine<S> {
        Engine { sink, worker, effects: Vec::new(), sent: 0 }
    }

    /// After a restart: hands `venue` again every order the ledger holds without the
    /// venue's answer (submitted, never acknowledged) and every cancel request not yet
    /// answered, traders in name order, orders in time priority. The process may have
    /// died before, while or after sending them; the venue resolves each by its client
    /// order id, which is the same every time, so nothing can be placed twice. A resent
    /// cancel carries the seq of its order's submission.
    ///
    /// # Errors
    /// The journal could not be made durable.
    pub fn recover(&mut self, venue: &mut dyn Venue) -> Result<(), SinkError> {
        for (name, trader) in &self.sink.state().traders {
            for order in trader.unanswered_orders() {
                let (seq, trader) = (order.submitted_seq, name.clone());
                self.effects.push(if order.cancel_requested {
                    Effect::Cancel { seq, trader, cloid: order.intent.cloid }
                } else {
                    Effect::Submit { seq, trader, intent: order.intent.clone() }
                });
            }
        }
        self.dispatch(venue)
    }

    /// One input: recorded, folded, routed to the deciders; their decisions recorded;
    /// their effects handed to `venue`. Returns the input's seq.
    ///
    /// # Errors
    /// The sink could not record an event (or, in replay, a decision diverged).
    pub fn step(&mut self, time_ms: i64, trader: &str, event: &Event, venue: &mut dyn Venue) -> Result<u64, SinkError> {
        let mut tap = Tap { inner: &mut self.sink, effects: &mut self.effects };
        let seq = tap.inner.emit(time_ms, trader, event)?;
        self.worker.on_input(&mut tap, seq, time_ms, trader, event)?;
        self.dispatch(venue)?;
        Ok(seq)
    }

    /// Loads a strategy for `spec.trader`: `StrategyLoaded` (an input: the driver's
    /// initiative), then whatever `st_init` decides.
    ///
    /// # Errors
    /// The trader already runs a strategy (`SinkError::Refused`), or a sink failure.
    pub fn load(&mut self, spec: StrategySpec, time_ms: i64, venue: &mut dyn Venue) -> Result<(), SinkError> {
        let mut tap = Tap { inner: &mut self.sink, effects: &mut self.effects };
        self.worker.load(spec, &mut tap, time_ms)?;
        self.dispatch(venue)
    }

    /// Stops one trader's strategy (a journaled `StrategyStopRequested`, `st_exit`, then
    /// `StrategyStopped`) and forgets it. False when it runs none.
    ///
    /// # Errors
    /// Sink failures.
    pub fn unload(
        &mut self,
        trader: &str,
        time_ms: i64,
        reason: &str,
        venue: &mut dyn Venue,
    ) -> Result<bool, SinkError> {
        let mut tap = Tap { inner: &mut self.sink, effects: &mut self.effects };
        let unloaded = self.worker.unload(trader, &mut tap, time_ms, reason)?;
        self.dispatch(venue)?;
        Ok(unloaded)
    }

    /// Asks every running strategy to stop (end of data, shutdown): one journaled
    /// `StrategyStopRequested` per trader.
    ///
    /// # Errors
    /// Sink failures.
    pub fn stop_all(&mut self, time_ms: i64, reason: &str, venue: &mut dyn Venue) -> Result<(), SinkError> {
        let mut tap = Tap { inner: &mut self.sink, effects: &mut self.effects };
        self.worker.exit(&mut tap, time_ms, reason)?;
        self.dispatch(venue)
    }

    /// Steps every answer `venue` has ready, round after round (an answer can make a
    /// strategy decide again, in `st_on_order`), until it has none or
    /// [`SETTLE_ROUNDS_MAX`] rounds have passed.
    ///
    /// # Errors
    /// As [`Engine::step`].
    pub fn settle(&mut self, venue: &mut dyn Venue) -> Result<(), SinkError> {
        for _round in 0..SETTLE_ROUNDS_MAX {
            let answers = venue.poll(self.sink.state());
            if answers.is_empty() {
                return Ok(());
            }
            for answer in answers {
                self.step(answer.time_ms, &answer.trader, &answer.event, venue)?;
            }
        }
        Ok(())
    }

    /// Hands the step's effects to the venue, durable first when it is outside the process.
    fn dispatch(&mut self, venue: &mut dyn Venue) -> Result<(), SinkError> {
        if self.effects.is_empty() {
            return Ok(());
        }
        if venue.needs_durable() {
            self.sink.make_durable()?;
        }
        for effect in self.effects.drain(..) {
            venue.send(&effect, self.sink.state());
            self.sent += 1;
        }
        Ok(())
    }
}

/// The sink the deciders write through during a step: records as the engine's sink
/// does, and notes the decisions that are effects.
struct Tap<'a, S> {
    inner: &'a mut S,
    effects: &'a mut Vec<Effect>,
}

impl<S: Sink> Sink for Tap<'_, S> {
    fn state(&self) -> &State {
        self.inner.state()
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        let seq = self.inner.emit(time_ms, trader, event)?;
        if let Some(effect) = Effect::of(seq, trader, event) {
            self.effects.push(effect);
        }
        Ok(seq)
    }

    fn plot(&mut self, time_ms: i64, trader: &str, names: &[String], values: &[f64]) {
        self.inner.plot(time_ms, trader, names, values);
    }

    fn make_durable(&mut self) -> Result<(), SinkError> {
        self.inner.make_durable()
    }

    fn call_timed_out(&mut self, trader: &str) -> bool {
        self.inner.call_timed_out(trader)
    }

    fn call_llm(&mut self, seq: u64, trader: &str, request: &strategies::llm::LlmRequest) {
        self.effects.push(Effect::CallLlm { seq, trader: trader.to_owned(), request: Box::new(request.clone()) });
    }
}

#[cfg(test)]
mod tests;
