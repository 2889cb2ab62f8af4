//! State-only rebuild: what the live engine does at start-up after a crash.

use std::path::Path;

use journal::{Durability, Journal, State, StoreError};

/// The state at `to` (or the end): the latest snapshot at or before it, then
/// the tail folded on top. No decider runs and nothing is written.
///
/// # Errors
/// A missing or damaged journal, a snapshot off the chain, a corrupt record.
pub fn rebuild(dir: &Path, to: Option<u64>) -> Result<(State, u64), StoreError> {
    let journal = Journal::open(dir, Durability::None)?;
    let state = journal.rebuild(to)?;
    Ok((state, journal.len()))
}
