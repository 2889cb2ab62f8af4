//! Where events go: the one seam between the deciders and the drivers.
//!
//! Deciders never write to a journal themselves; they hand every event to a
//! [`Sink`], which records it and folds it into the ledger state at once, so
//! `ctx.api` reads later in the same call see the order just placed. The live
//! driver and a journaled backtest use [`JournalSink`], a plain backtest uses
//! [`FoldSink`], and `replay verify` uses a sink that compares each derived
//! event with the journaled one instead of writing it.

use journal::{Durability, EnvelopeRef, Event, Hash, Journal, State, StoreError};

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The driver asked for something the worker cannot do (e.g. a second strategy for one trader).
    #[error("{0}")]
    Refused(String),
    /// Replay: the re-run derived something other than what the journal says.
    #[error("divergence at seq {seq}: {message}")]
    Divergence { seq: u64, message: String },
}

/// Records events and keeps the folded state.
pub trait Sink {
    /// The ledger as folded so far.
    fn state(&self) -> &State;
    /// Records `event` for `trader` at `time_ms`, folds it, and returns its seq.
    ///
    /// # Errors
    /// The journal could not be written, or (replay) the event diverges.
    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError>;

    /// One bar's values of the indicators a strategy declared with `record: true`, for
    /// reports: `values[i]` belongs to the series `names[i]`. Not journaled: they are derived
    /// from journaled klines and recomputed on replay.
    fn plot(&mut self, _time_ms: i64, _trader: &str, _names: &[String], _values: &[f64]) {}

    /// Makes everything recorded so far durable (fsync): the engine calls it before an
    /// effect leaves the process. Sinks that write nothing have nothing to do.
    ///
    /// # Errors
    /// The journal could not be flushed.
    fn make_durable(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Replay: whether the journal says that the hook call in progress for `trader` was ended
    /// here by the wall-clock backstop (its next record is that trader's `StrategyErred` of kind
    /// `Timeout`). The sandbox then ends the call at its next interrupt check, as the backstop
    /// did live, and the runtime re-derives the timeout and what follows it. Asked during
    /// calls, between the events the call emits. Live and backtest sinks: never, the wall
    /// clock decides.
    fn call_timed_out(&mut self, _trader: &str) -> bool {
        false
    }

    /// An LLM trader asks for a model call: the `LlmPromptRendered` at `seq` is journaled.
    /// The engine makes it an effect for the shell, whose answer comes back as an input
    /// (`LlmResponded`, `LlmFailed`). Sinks outside an engine (and replay, where the answer
    /// is already in the journal) have nothing to do.
    fn call_llm(&mut self, _seq: u64, _trader: &str, _request: &crate::llm::LlmRequest) {}
}

/// Folds without writing anything: plain backtests. Records get dense sequence
/// numbers and a zero hash, so decisions (e.g. client order ids) are the same as
/// in a journaled run of the same inputs.
#[derive(Debug, Default)]
pub struct FoldSink {
    pub state: State,
    next_seq: u64,
}

impl FoldSink {
    pub fn new() -> FoldSink {
        FoldSink::default()
    }
}

impl Sink for FoldSink {
    fn state(&self) -> &State {
        &self.state
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.state.apply_ref(&EnvelopeRef { seq, time_ms, trader, event, hash: Hash::ZERO });
        Ok(seq)
    }
}

/// Appends every event to a journal, then folds the journaled envelope.
#[derive(Debug)]
pub struct JournalSink {
    pub journal: Journal,
    pub state: State,
    /// Write a snapshot every this many events (0: never).
    pub snapshot_every: u64,
    /// Keep at most this many snapshots.
    pub snapshots_kept: usize,
}

impl JournalSink {
    /// Opens (or creates) the journal at `path` and rebuilds its state.
    ///
    /// # Errors
    /// The journal cannot be opened or rebuilt.
    pub fn open(path: &std::path::Path, durability: Durability) -> Result<JournalSink, StoreError> {
        let journal = Journal::open_or_create(path, durability)?;
        // A snapshot of another build's state layout is skipped by the rebuild (see
        // `Journal::snapshot`): the events rebuild the state without it.
        let state = journal.rebuild(None)?;
        Ok(JournalSink { journal, state, snapshot_every: 100_000, snapshots_kept: 3 })
    }

    /// A snapshot of the current state, flushed, with old ones pruned (clean shutdown).
    ///
    /// # Errors
    /// The journal could not be written.
    pub fn snapshot(&mut self) -> Result<(), StoreError> {
        self.journal.write_snapshot(&self.state)?;
        self.journal.prune_snapshots(self.snapshots_kept)?;
        Ok(())
    }
}

impl Sink for JournalSink {
    fn state(&self) -> &State {
        &self.state
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        let appended = self.journal.append(time_ms, trader, event)?;
        self.state.apply_ref(&EnvelopeRef { seq: appended.seq, time_ms, trader, event, hash: appended.hash });
        if self.snapshot_every > 0 && (appended.seq + 1) % self.snapshot_every == 0 {
            self.snapshot()?;
        }
        Ok(appended.seq)
    }

    fn make_durable(&mut self) -> Result<(), SinkError> {
        Ok(self.journal.sync()?)
    }
}
