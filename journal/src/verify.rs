//! Whole-journal verification: the hash chain, dense sequence numbers, every
//! payload decoding, every snapshot's digest against the fold of the records
//! before it, the durable head (no newest records missing) and the segment
//! copy of the blocks.

use serde::Serialize;

use crate::{
    hash::Hash,
    state::State,
    store::{Head, Journal, StoreError},
};

/// What an intact journal looks like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub events: u64,
    pub first_time_ms: Option<i64>,
    pub last_time_ms: Option<i64>,
    pub traders: Vec<String>,
    pub snapshots_checked: usize,
    /// Snapshots of another build's state layout: intact, not usable by this build, skipped.
    pub snapshots_skipped: usize,
    pub head: Hash,
    pub state_digest: Hash,
    pub anomalies: u64,
}

/// Checks everything; the error names the first bad sequence number.
///
/// # Errors
/// The first problem found, as [`StoreError::Corrupt`] (or a storage error).
pub fn journal(journal: &Journal) -> Result<Report, StoreError> {
    let snapshot_seqs = journal.snapshot_seqs()?;
    let mut next_snapshot = snapshot_seqs.iter().copied().peekable();
    let mut state = State::default();
    let mut first_time_ms = None;
    let mut snapshots_skipped = 0;
    for record in journal.records(0) {
        let env = record?;
        first_time_ms.get_or_insert(env.time_ms);
        state.apply(&env);
        while next_snapshot.peek().is_some_and(|&s| s <= env.seq) {
            let seq = next_snapshot.next().expect("invariant: peeked");
            if !check_snapshot(journal, seq, &state)? {
                snapshots_skipped += 1;
            }
        }
    }
    if let Some(seq) = next_snapshot.next() {
        return Err(StoreError::Corrupt {
            path: journal.path().to_owned(),
            seq,
            problem: "snapshot beyond the last record".into(),
        });
    }
    durability(journal)?;
    Ok(Report {
        events: journal.len(),
        first_time_ms,
        last_time_ms: state.last_seq.map(|_| state.time_ms),
        traders: state.traders.keys().cloned().collect(),
        snapshots_checked: snapshot_seqs.len() - snapshots_skipped,
        snapshots_skipped,
        head: journal.last_hash(),
        state_digest: state.digest(),
        anomalies: state.anomalies_total,
    })
}

/// What a walk of the records cannot see: records missing below the durable head
/// (a truncation), a rewritten head record, and the segment copy against sled's blocks.
///
/// # Errors
/// The first such problem.
pub fn durability(journal: &Journal) -> Result<(), StoreError> {
    let head = journal.durable_head()?;
    if let Some(head) = head {
        check_head(journal, head)?;
    }
    journal.check_segments(head)
}

/// The head is a lower bound: the records may go further (a crash between a
/// flush and the head write), never less far, and the record it names must
/// still have its hash.
fn check_head(journal: &Journal, head: Head) -> Result<(), StoreError> {
    if head.records > journal.len() {
        return Err(StoreError::Truncated { path: journal.path().to_owned(), from: journal.len(), head });
    }
    let Some(seq) = head.records.checked_sub(1) else { return Ok(()) };
    match journal.get(seq)? {
        Some(env) if env.hash == head.hash => Ok(()),
        _ => Err(StoreError::Corrupt {
            path: journal.path().to_owned(),
            seq,
            problem: format!("the durable head says this record has hash {}: history was rewritten", head.hash),
        }),
    }
}

/// Checks the snapshot at `seq` against the fold; false when it is of another build's state
/// layout (intact, unusable, skipped).
fn check_snapshot(journal: &Journal, seq: u64, folded: &State) -> Result<bool, StoreError> {
    let Some(stored) = journal.snapshot(seq)? else { return Ok(false) };
    let stored = Some(stored);
    let matches = folded.last_seq == Some(seq) && stored.is_some_and(|s| s.digest() == folded.digest());
    if matches {
        Ok(true)
    } else {
        Err(StoreError::Corrupt {
            path: journal.path().to_owned(),
            seq,
            problem: "snapshot digest differs from the fold of the records before it".into(),
        })
    }
}
