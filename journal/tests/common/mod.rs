//! What the journal's integration tests share: varied events, journals built
//! from them, and raw access to a closed journal's sled database.

// Each test file uses a different part of this.
#![allow(dead_code)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use journal::{
    codec,
    testkit::{workload_from_seed, Item},
    Durability, Envelope, Journal, StoreError,
};

/// `n` varied events (instruments, traders, prices, orders, fills, ...).
pub fn items(n: usize) -> Vec<Item> {
    let mut items = workload_from_seed(11, n).items();
    items.truncate(n);
    assert_eq!(items.len(), n, "the workload has enough events");
    items
}

/// A journal at `dir` holding `items`, appended one by one; returns the envelopes as read back.
pub fn journal_with(dir: &Path, items: &[Item]) -> (Journal, Vec<Envelope>) {
    journal_with_codec(dir, items, codec::CODEC_VERSION)
}

pub fn journal_with_codec(dir: &Path, items: &[Item], codec_version: u16) -> (Journal, Vec<Envelope>) {
    let mut journal = Journal::create_with_codec(dir, Durability::None, codec_version).expect("creates");
    for (time_ms, trader, event) in items {
        journal.append(*time_ms, trader, event).expect("appends");
    }
    let envelopes = read_all(&journal);
    (journal, envelopes)
}

pub fn read_all(journal: &Journal) -> Vec<Envelope> {
    journal.records(0).collect::<Result<_, _>>().expect("an intact journal reads")
}

/// Retries `open` while sled's file lock is still held: sled 0.34's background
/// threads can keep a just-dropped database alive (and locked) for a moment.
pub fn retry_while_locked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Err(e) if e.to_string().contains("could not acquire lock") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

pub fn reopen(dir: &Path) -> Result<Journal, StoreError> {
    retry_while_locked(|| Journal::open(dir, Durability::None))
}

/// Opens the journal's sled database directly (the journal must be closed).
pub fn with_sled(dir: &Path, change: impl FnOnce(&sled::Tree, &sled::Tree, &sled::Db)) {
    let db = retry_while_locked(|| sled::open(dir)).expect("sled opens the journal directory");
    let events = db.open_tree("events").expect("events tree");
    let snapshots = db.open_tree("snapshots").expect("snapshots tree");
    change(&events, &snapshots, &db);
    db.flush().expect("flushes");
}

pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}
