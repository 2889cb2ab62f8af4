//! Resuming a journal: after a crash, or to go on with a stopped run.
//!
//! The deciders' state (a strategy's variables, its declared indicators, the
//! market history it reads) lives in the JavaScript heap, which no snapshot holds.
//! So resuming walks the whole journal as `replay verify` does — every input
//! through the engine's step, every decision re-derived and compared — which
//! rebuilds the deciders exactly as they were, and proves on the way that this
//! build reproduces what the journal says (for a journal of the simulated exchange,
//! its answers too: the walk re-runs it). A journal cut by a crash in the
//! middle of a step is finished: the decisions the dead process had not
//! journaled yet are derived again and appended (they were never journaled, so
//! by write-ahead they never reached a venue). Then the engine goes on with a
//! sink that appends. Before trading on, a driver calls
//! [`Engine::recover`](engine::Engine::recover) so the venue resolves every
//! order the journal holds without an answer.
//!
//! A journal that today's code does not reproduce is not resumed: trading on
//! would mix two versions' decisions in one history. The error says where they
//! part (as `replay verify` would).

use std::path::Path;

use engine::Engine;
use journal::{Durability, Journal, StoreError};
use strategies::sink::JournalSink;

use crate::verify::{walk, Divergence, ReplaySink};

/// Why a journal could not be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: today's code does not reproduce the journal at seq {}: {}; run `quantfold replay verify` for both sides", .journal, .divergence.seq, .divergence.explanation)]
    Diverged { journal: String, divergence: Box<Divergence> },
}

/// An engine that goes on where a journal ends.
#[derive(Debug)]
pub struct Resumed {
    pub engine: Engine<JournalSink>,
    /// Records the journal held.
    pub events: u64,
    /// Decisions re-derived and found equal on the way.
    pub decisions_checked: u64,
    /// Decisions of an unfinished step derived again and appended.
    pub appended: u64,
}

/// Opens the journal at `dir`, rebuilds state and deciders by re-deriving it, finishes
/// an unfinished step, and returns an engine that appends from there.
///
/// # Errors
/// The journal cannot be read or written, or today's code does not reproduce it.
pub fn resume(dir: &Path, durability: Durability) -> Result<Resumed, ResumeError> {
    let mut journal = Journal::open(dir, durability)?;
    // A journal with records missing below its durable head, or a segment copy that
    // disagrees with sled, is damaged: `journal recover` first, never trade on.
    journal::verify::durability(&journal)?;
    let events = journal.len();
    let (state, tail, worker, decisions_checked) = {
        let mut engine = Engine::new(ReplaySink::continuing(&journal, journal.records(0)));
        let walked = walk(&mut engine, &[])?;
        if let Some(divergence) = walked.divergence {
            return Err(ResumeError::Diverged { journal: dir.display().to_string(), divergence: Box::new(divergence) });
        }
        let (sink, worker) = engine.into_parts();
        let checked = sink.decisions_checked();
        let (state, tail) = sink.into_parts();
        (state, tail, worker, checked)
    };
    for envelope in &tail {
        let appended = journal.append(envelope.time_ms, &envelope.trader, &envelope.event)?;
        if (appended.seq, appended.hash) != (envelope.seq, envelope.hash) {
            return Err(StoreError::Corrupt {
                path: dir.to_owned(),
                seq: appended.seq,
                problem: "the finished step does not chain on where the journal ended".into(),
            }
            .into());
        }
    }
    let sink = JournalSink { journal, state, snapshot_every: 100_000, snapshots_kept: 3 };
    Ok(Resumed { engine: Engine::from_parts(sink, worker), events, decisions_checked, appended: tail.len() as u64 })
}
