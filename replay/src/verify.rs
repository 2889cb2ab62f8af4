//! Re-run the deciders on a journal's inputs and compare their decisions.
//!
//! The journal is walked in order, and every input (market data, exchange
//! answers, operator commands) goes through [`Engine::step`], the same step the
//! driver that wrote the journal ran; the engine's sink is a [`ReplaySink`],
//! which folds the journaled input and, for every event the strategies then
//! derive, takes the next journaled record and demands equality (trader, time
//! and event). The venue is [`NoVenue`]: its answers are in the journal. A `StrategyLoaded` record loads the strategy — with
//! the source stored in the journal, or with a file given for that trader, which
//! is how a new version of a strategy is checked against recorded history.
//!
//! The first difference stops the walk and is reported with both sides and the
//! inputs that led to it.
//!
//! Limits: each strategy runs under the limits its `StrategyLoaded` journaled
//! (fuel, memory, wall-clock backstop, restart policy; schema-1 records carry
//! the defaults of schema 1), never this build's defaults. A `StrategyErred` of
//! kind `Timeout` is a wall-clock fact: while a hook runs, the sink tells the
//! sandbox when the journal's next record is that timeout
//! ([`Sink::call_timed_out`]), and the call ends there as it did live; the
//! timeout and what follows it (restart, stop) are then compared as usual. The
//! journaled backstop still runs on the wall clock here: a call that times out
//! on replay but not in the journal (a much slower machine) is a divergence.

use std::{
    collections::{BTreeMap, VecDeque},
    path::{Path, PathBuf},
};

use engine::{Engine, NoVenue};
use journal::{
    codec,
    event::{StrategyErrorKind, StrategyLoad},
    verify as chain, Durability, Envelope, Event, Hash, Journal, Records, State, StoreError,
};
use serde::Serialize;
use strategies::{
    runtime::StrategySpec,
    sink::{Sink, SinkError},
};

/// How many inputs before a divergence the report shows.
const CONTEXT_INPUTS: usize = 5;

/// A strategy file to use instead of the journaled source, for one trader.
#[derive(Debug, Clone)]
pub struct Override {
    pub trader: String,
    pub file: PathBuf,
    pub source: String,
}

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Override { path: PathBuf, message: String },
}

/// One side of a divergence, as JSON (the export form).
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    pub seq: u64,
    pub trader: String,
    pub time_ms: i64,
    /// The journaled record at `seq` (None: the journal ended).
    pub journaled: Option<serde_json::Value>,
    /// What today's code derived there (None: it derived nothing).
    pub rederived: Option<serde_json::Value>,
    pub explanation: String,
    /// The last inputs before the divergence, oldest first.
    pub inputs: Vec<serde_json::Value>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub journal: PathBuf,
    pub events: u64,
    pub inputs: u64,
    /// Derived events re-derived and found equal.
    pub decisions_checked: u64,
    pub snapshots_checked: usize,
    pub traders: Vec<String>,
    pub strategies: Vec<String>,
    pub overrides: Vec<String>,
    pub head: Hash,
    pub state_digest: Hash,
    pub reproduced: bool,
    pub divergence: Option<Divergence>,
    /// The journal ends while a decision was being re-derived, as a journal cut
    /// by a crash does: everything it holds was reproduced.
    pub ends_mid_decision: bool,
}

/// Verifies the chain and snapshots, then re-derives every decision.
///
/// # Errors
/// The journal cannot be read or its chain is broken (the error names the
/// first bad seq); an override file cannot be read. A decision that differs is
/// not an error: it is the report's `divergence`.
pub fn verify(dir: &Path, overrides: &[Override]) -> Result<Report, VerifyError> {
    let journal = Journal::open(dir, Durability::None)?;
    let chain_report = chain::journal(&journal)?;
    let mut engine = Engine::new(ReplaySink::new(journal.records(0)));
    let walked = walk(&mut engine, overrides)?;
    let sink = engine.sink_mut();
    Ok(Report {
        journal: dir.to_owned(),
        events: journal.len(),
        inputs: walked.inputs,
        decisions_checked: sink.checked,
        snapshots_checked: chain_report.snapshots_checked,
        traders: chain_report.traders,
        strategies: walked.strategies,
        overrides: overrides.iter().map(|o| format!("{}={}", o.trader, o.file.display())).collect(),
        head: chain_report.head,
        state_digest: sink.state.digest(),
        reproduced: walked.divergence.is_none(),
        divergence: walked.divergence,
        ends_mid_decision: sink.journal_ended,
    })
}

/// What a walk of a journal found.
pub(crate) struct Walked {
    pub inputs: u64,
    /// "trader (file)" of every strategy loaded.
    pub strategies: Vec<String>,
    /// The first difference; None when everything was reproduced.
    pub divergence: Option<Divergence>,
}

/// Walks the journal behind `engine`'s sink from its first record: every input through
/// the engine's step, every `StrategyLoaded` through its load, every derived event
/// compared by the sink. Shared by [`verify`] and [`crate::resume`].
///
/// # Errors
/// The journal could not be read.
pub(crate) fn walk(engine: &mut Engine<ReplaySink<'_>>, overrides: &[Override]) -> Result<Walked, StoreError> {
    let mut sources: BTreeMap<Hash, String> = BTreeMap::new();
    let mut strategies = Vec::new();
    let mut inputs = 0u64;

    let outcome = loop {
        let sink = engine.sink_mut();
        let Some(record) = sink.next_record() else { break Ok(()) };
        let record = record?;
        if let Event::StrategyLoaded(load) = &record.event {
            if let Some(source) = &load.source {
                // A re-chained journal can carry an edited source: its hash gives it away.
                if journal::hash::content(source) != load.code_hash {
                    let explanation = format!(
                        "the stored source of {} does not match its code hash {}",
                        load.file,
                        load.code_hash.short()
                    );
                    break Err(sink.diverge(&record, None, explanation));
                }
                sources.insert(load.code_hash, source.clone());
            }
            let spec = match spec_for(&record, load, &sources, overrides) {
                Ok(spec) => spec,
                Err(explanation) => break Err(sink.diverge(&record, None, explanation)),
            };
            strategies.push(format!("{} ({})", record.trader, spec.file));
            // Loading derives the StrategyLoaded itself: the sink compares it (leniently
            // on the code when an override replaces it) and everything st_init derives.
            sink.pending_load = Some(record);
            sink.lenient_code =
                overrides.iter().any(|o| o.trader == sink.pending_load.as_ref().map_or("", |r| r.trader.as_str()));
            let time_ms = load_time(sink);
            if let Err(e) = engine.load(spec, time_ms, &mut NoVenue) {
                break Err(e);
            }
            continue;
        }
        if !record.event.is_input() {
            let explanation = format!("the journal has {} here, but today's code derived nothing", record.event.kind());
            break Err(sink.diverge(&record, None, explanation));
        }
        inputs += 1;
        // The step records the input as this journaled record (folded here), not the next one.
        sink.fold_input(&record);
        if let Err(e) = engine.step(record.time_ms, &record.trader, &record.event, &mut NoVenue) {
            break Err(e);
        }
    };
    let sink = engine.sink_mut();
    let divergence = match outcome {
        Ok(()) => sink.divergence.take(),
        Err(SinkError::Store(e)) => return Err(e),
        Err(SinkError::Divergence { .. }) if sink.journal_ended => None,
        Err(SinkError::Divergence { .. }) => sink.divergence.take(),
        // E.g. a journal that loads a second strategy for one trader: today's worker refuses.
        Err(SinkError::Refused(message)) => {
            let seq = sink.state.last_seq.map_or(0, |s| s + 1);
            sink.record_divergence(seq, None, None, message);
            sink.divergence.take()
        }
    };
    Ok(Walked { inputs, strategies, divergence })
}

fn load_time(sink: &ReplaySink<'_>) -> i64 {
    sink.pending_load.as_ref().map_or(0, |r| r.time_ms)
}

fn spec_for(
    record: &Envelope,
    load: &StrategyLoad,
    sources: &BTreeMap<Hash, String>,
    overrides: &[Override],
) -> Result<StrategySpec, String> {
    let (file, source) = match overrides.iter().find(|o| o.trader == record.trader) {
        Some(o) => (o.file.display().to_string(), o.source.clone()),
        None => {
            let source = sources
                .get(&load.code_hash)
                .ok_or_else(|| format!("the journal never stored the source of code {}", load.code_hash.short()))?;
            (load.file.clone(), source.clone())
        }
    };
    let mut spec = StrategySpec::new(&record.trader, &file, source, load.params.0.clone(), load.seed);
    spec.name = load.name.clone();
    spec.set_limits(&load.limits);
    Ok(spec)
}

/// The sink of a replay: derived events are compared with the journal instead of written.
pub struct ReplaySink<'a> {
    records: Records<'a>,
    pub state: State,
    /// The StrategyLoaded record a `worker.load` is about to re-derive.
    pending_load: Option<Envelope>,
    /// The seq of the journaled input the engine's step is about to record.
    journaled_input: Option<u64>,
    lenient_code: bool,
    checked: u64,
    recent_inputs: VecDeque<Envelope>,
    divergence: Option<Divergence>,
    peeked: Option<Result<Envelope, StoreError>>,
    journal_ended: bool,
    /// Resuming: where the journal ends, derived events are chained on here (to be
    /// appended once the walk is over) instead of ending the walk.
    tail: Option<Vec<Envelope>>,
}

impl<'a> ReplaySink<'a> {
    fn new(records: Records<'a>) -> ReplaySink<'a> {
        ReplaySink {
            records,
            state: State::default(),
            pending_load: None,
            journaled_input: None,
            lenient_code: false,
            checked: 0,
            recent_inputs: VecDeque::new(),
            divergence: None,
            peeked: None,
            journal_ended: false,
            tail: None,
        }
    }

    /// A sink that goes on past the journal's end (see `tail`): resuming after a crash.
    pub(crate) fn continuing(records: Records<'a>) -> ReplaySink<'a> {
        ReplaySink { tail: Some(Vec::new()), ..ReplaySink::new(records) }
    }

    /// Derived events re-derived and found equal so far.
    pub(crate) fn decisions_checked(&self) -> u64 {
        self.checked
    }

    /// The folded state, and the events derived past the journal's end (resuming).
    pub(crate) fn into_parts(self) -> (State, Vec<Envelope>) {
        (self.state, self.tail.unwrap_or_default())
    }

    fn next_record(&mut self) -> Option<Result<Envelope, StoreError>> {
        self.peeked.take().or_else(|| self.records.next())
    }

    fn fold_input(&mut self, record: &Envelope) {
        self.state.apply(record);
        if self.recent_inputs.len() == CONTEXT_INPUTS {
            self.recent_inputs.pop_front();
        }
        self.recent_inputs.push_back(record.clone());
        self.journaled_input = Some(record.seq);
    }

    fn diverge(&mut self, at: &Envelope, rederived: Option<(i64, &str, &Event)>, explanation: String) -> SinkError {
        self.record_divergence(at.seq, Some(at), rederived, explanation)
    }

    fn record_divergence(
        &mut self,
        seq: u64,
        at: Option<&Envelope>,
        rederived: Option<(i64, &str, &Event)>,
        explanation: String,
    ) -> SinkError {
        let as_json = |e: &Envelope| serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
        let rederived_json = rederived.map(
            |(time_ms, trader, event)| serde_json::json!({ "time_ms": time_ms, "trader": trader, "event": event }),
        );
        self.divergence = Some(Divergence {
            seq,
            trader: at.map(|r| r.trader.clone()).or_else(|| rederived.map(|r| r.1.to_owned())).unwrap_or_default(),
            time_ms: at.map(|r| r.time_ms).or_else(|| rederived.map(|r| r.0)).unwrap_or_default(),
            journaled: at.map(as_json),
            rederived: rederived_json,
            explanation: explanation.clone(),
            inputs: self.recent_inputs.iter().map(as_json).collect(),
        });
        SinkError::Divergence { seq, message: explanation }
    }
}

impl ReplaySink<'_> {
    /// Chains a derived event on past the journal's end, as the journal would append it.
    fn chain_on(&mut self, time_ms: i64, trader: &str, event: &Event) -> u64 {
        let seq = self.state.last_seq.map_or(0, |s| s + 1);
        let prev_hash = self.state.last_hash;
        let (hash, _) = codec::encode_event_record(seq, &prev_hash, time_ms, trader, event);
        let envelope = Envelope { seq, time_ms, trader: trader.to_owned(), event: event.clone(), prev_hash, hash };
        self.state.apply(&envelope);
        if let Some(tail) = &mut self.tail {
            tail.push(envelope);
        }
        seq
    }
}

impl Sink for ReplaySink<'_> {
    fn state(&self) -> &State {
        &self.state
    }

    fn call_timed_out(&mut self, trader: &str) -> bool {
        if self.pending_load.is_some() {
            return false;
        }
        if self.peeked.is_none() {
            self.peeked = self.records.next();
        }
        matches!(
            &self.peeked,
            Some(Ok(r)) if r.trader == trader
                && matches!(r.event, Event::StrategyErred { kind: StrategyErrorKind::Timeout, .. })
        )
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        if let Some(seq) = self.journaled_input.take() {
            // The input the step records: the walk has folded the journaled record already.
            return Ok(seq);
        }
        let record = match self.pending_load.take() {
            Some(load) => load,
            None => match self.next_record() {
                Some(r) => r?,
                None if self.tail.is_some() => return Ok(self.chain_on(time_ms, trader, event)),
                None => {
                    // A journal cut by a crash ends inside a decision; that is not a divergence.
                    self.journal_ended = true;
                    let seq = self.state.last_seq.map_or(0, |s| s + 1);
                    return Err(SinkError::Divergence {
                        seq,
                        message: format!("the journal ends before {}", event.kind()),
                    });
                }
            },
        };
        let same_code_aside = match (&record.event, event, self.lenient_code) {
            (Event::StrategyLoaded(a), Event::StrategyLoaded(b), true) => {
                self.lenient_code = false;
                a.name == b.name && a.params == b.params && a.seed == b.seed
            }
            _ => false,
        };
        // Canonical bytes, not PartialEq: a recorded NaN equals itself byte for byte.
        let equal = same_code_aside
            || codec::encode_body(record.time_ms, &record.trader, &record.event)
                == codec::encode_body(time_ms, trader, event);
        if !equal {
            let explanation = if record.event.is_input() {
                format!("today's code derived {} where the journal has the input {}", event.kind(), record.event.kind())
            } else {
                format!("today's code derived a different {}", event.kind())
            };
            return Err(self.diverge(&record, Some((time_ms, trader, event)), explanation));
        }
        self.checked += 1;
        self.state.apply(&record);
        Ok(record.seq)
    }
}
