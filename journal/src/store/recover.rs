//! Recovering a damaged journal into a new one: every record that can be read
//! and checked, from seq 0 up to the first damage.
//!
//! The segment files are read first: they need no sled, so a damaged sled
//! file costs nothing they hold. Where they stop (damaged, or missing in a
//! journal made before segments existed), sled's records take over from the
//! same seq, if sled opens and its record before that seq has the hash the
//! segments ended on. Every record is checked (position, chain link, hash)
//! before it is copied, and the copy re-chains to the same hashes.

use std::{
    panic::{self, AssertUnwindSafe},
    path::Path,
};

use super::{head, segments, Durability, Journal, StoreError};
use crate::{
    codec::{Layout, RawRecord},
    event::Envelope,
    hash::Hash,
};

/// Events copied per batch into the new journal.
const BATCH: usize = 4096;

/// What a recovery saved and where it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Records in the new journal: seq 0..events.
    pub events: u64,
    pub from_segments: u64,
    pub from_database: u64,
    /// The hash of the last record saved (zeros when none).
    pub last_hash: Hash,
    /// What the damaged journal's head file says was durable, when it has one.
    pub durable: Option<(u64, Hash)>,
    /// Why each source stopped, as sentences (empty: both read to their end).
    pub notes: Vec<String>,
}

impl Recovered {
    /// Durable records that could not be saved: `(first, last)` seqs.
    pub fn lost(&self) -> Option<(u64, u64)> {
        let (records, _) = self.durable?;
        (records > self.events).then(|| (self.events, records - 1))
    }
}

/// Writes a new journal at `to` holding every record of `from` that can be
/// read and checked, from seq 0 up to the first damage. `from` is only read.
///
/// # Errors
/// `to` is not empty, `from` is not a journal this build reads, or writing fails.
pub fn recover(from: &Path, to: &Path) -> Result<Recovered, StoreError> {
    if !from.is_dir() {
        return Err(StoreError::Missing(from.to_owned()));
    }
    let mut target = Journal::create(to, Durability::None)?;
    let mut saved =
        Saved { target: Some(&mut target), batch: Vec::with_capacity(BATCH), last_hash: Hash::ZERO, next: 0 };
    let mut notes = Vec::new();
    let durable = match head::read(from) {
        Ok(head) => head.map(|h| (h.records, h.hash)),
        Err(problem) => {
            notes.push(problem);
            None
        }
    };
    notes.extend(from_segments(from, &mut saved)?);
    let from_segments = saved.next;
    notes.extend(from_database(from, &mut saved)?);
    saved.flush()?;
    let (events, last_hash) = (saved.next, saved.last_hash);
    target.sync()?;
    Ok(Recovered { events, from_segments, from_database: events - from_segments, last_hash, durable, notes })
}

/// How many records of a journal's segment files are intact (checked as
/// [`recover`] checks them, nothing written), with the hash of the last of
/// them, and why the segments stop there, if they are damaged. What `verify`
/// tells a user whose sled files fail.
///
/// # Errors
/// Never in practice: a scan has no journal to write to.
pub fn salvageable(from: &Path) -> Result<(u64, Hash, Option<String>), StoreError> {
    let mut scan = Saved { target: None, batch: Vec::new(), last_hash: Hash::ZERO, next: 0 };
    let note = from_segments(from, &mut scan)?;
    Ok((scan.next, scan.last_hash, note))
}

/// The new journal (none for a scan) and what has been checked and queued for it.
struct Saved<'a> {
    target: Option<&'a mut Journal>,
    batch: Vec<Envelope>,
    last_hash: Hash,
    /// The seq the next record must have.
    next: u64,
}

impl Saved<'_> {
    fn push(&mut self, env: Envelope) -> Result<(), StoreError> {
        self.last_hash = env.hash;
        self.next = env.seq + 1;
        if self.target.is_none() {
            return Ok(());
        }
        self.batch.push(env);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let (Some(target), Some(last)) = (self.target.as_deref_mut(), self.batch.last()) else { return Ok(()) };
        let (seq, hash) = (last.seq, last.hash);
        let appended = target.append_batch(self.batch.iter().map(|e| (e.time_ms, e.trader.as_str(), &e.event)))?;
        self.batch.clear();
        // The same events from seq 0 chain to the same hashes; anything else is a bug here.
        if appended.last().map(|a| (a.seq, a.hash)) != Some((seq, hash)) {
            return Err(StoreError::Corrupt {
                path: target.path().to_owned(),
                seq,
                problem: "the recovered record re-chains to a different hash".into(),
            });
        }
        Ok(())
    }
}

/// Copies the segments' records up to the first damage; the note says where they stopped.
fn from_segments(from: &Path, saved: &mut Saved<'_>) -> Result<Option<String>, StoreError> {
    let reader = match segments::Reader::open(from) {
        Ok(reader) => reader,
        Err(e) => return Ok(Some(format!("{}: cannot list the segment files: {e}", from.display()))),
    };
    let mut any = false;
    for frame in reader {
        let frame = match frame {
            Ok(frame) => frame,
            Err(damage) => return Ok(Some(format!("the segments stop at seq {}: {damage}", saved.next))),
        };
        any = true;
        for (position, record) in (frame.key..).zip(Layout::Packed.records(&frame.block)) {
            match record.map_err(|e| e.to_string()).and_then(|bytes| checked(bytes, position, saved.last_hash)) {
                Ok(env) => saved.push(env)?,
                Err(problem) => {
                    let at = format!("{} at byte {}", frame.file.display(), frame.offset);
                    return Ok(Some(format!("the segments stop at seq {position} ({at}): {problem}")));
                }
            }
        }
    }
    Ok((!any).then(|| format!("{}: no segment files (a journal made before they existed)", from.display())))
}

/// Checks one record found at `seq`'s position after a record with hash `prev`.
fn checked(bytes: &[u8], seq: u64, prev: Hash) -> Result<Envelope, String> {
    let raw = RawRecord::split(bytes).map_err(|e| e.to_string())?;
    if raw.seq != seq {
        return Err(format!("the record says it is seq {}", raw.seq));
    }
    if raw.prev_hash != prev {
        return Err("chain broken: prev_hash does not match the previous record".into());
    }
    if !raw.hash_matches() {
        return Err("hash mismatch: the record was altered".into());
    }
    raw.decode().map_err(|e| e.to_string())
}

/// Continues from sled where the segments stopped; the note says why sled
/// stopped, if it did. sled 0.34 can panic on damaged files: a panic ends this
/// source like a read error.
fn from_database(from: &Path, saved: &mut Saved<'_>) -> Result<Option<String>, StoreError> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| database_records(from, saved)));
    outcome.unwrap_or_else(|_| Ok(Some(format!("{}: sled panicked reading the database files", from.display()))))
}

fn database_records(from: &Path, saved: &mut Saved<'_>) -> Result<Option<String>, StoreError> {
    let start = saved.next;
    let source = match Journal::open(from, Durability::None) {
        Ok(source) => source,
        Err(e) => return Ok(Some(format!("the database does not open: {e}"))),
    };
    if start >= source.len() {
        return Ok(None);
    }
    if let Some(before) = start.checked_sub(1) {
        match source.get(before) {
            Ok(Some(env)) if env.hash == saved.last_hash => {}
            Ok(_) => {
                let note = format!("the database's seq {before} differs from the segments'; not continuing from it");
                return Ok(Some(note));
            }
            Err(e) => return Ok(Some(format!("the database cannot continue the segments: {e}"))),
        }
    }
    for record in source.records(start) {
        match record {
            Ok(env) => saved.push(env)?,
            Err(e) => return Ok(Some(format!("the database stops at seq {}: {e}", saved.next))),
        }
    }
    Ok(None)
}
