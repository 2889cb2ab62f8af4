//! The sled-backed store: the one module of this crate that touches disk.
//!
//! Layout of a journal directory (sled 0.34.7):
//! - default tree, key `header`: [`Header`] (magic, codec and schema versions);
//! - tree `events`: key = seq as u64 big-endian (dense from 0, our own counter,
//!   recovered from the last key on open), value = a record (see [`crate::codec`]);
//! - tree `snapshots`: key = seq big-endian, value = state digest (32) ‖ encoded [`State`].
//!
//! Durability: a returned sled `insert` is not durable until `flush`. The
//! [`Durability`] policy decides when this store flushes, and every append
//! reports how far the journal is known to be durable.

use std::{
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    codec::{self, CodecError, Header, RawRecord},
    event::{Envelope, Event},
    hash::{self, Hash},
    state::State,
};

const HEADER_KEY: &[u8] = b"header";
const EVENTS_TREE: &[u8] = b"events";
const SNAPSHOTS_TREE: &[u8] = b"snapshots";

/// When appends become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flush after every append: each returned sequence number is durable.
    EveryAppend,
    /// Flush once `max_events` appends are pending or the oldest pending one is
    /// `max_delay_ms` old (checked on append and by [`Journal::flush_if_due`]).
    /// The flush runs on a background thread, so appends go on meanwhile; if
    /// flushing falls behind by `8 * max_events`, appends wait for it.
    Group { max_delay_ms: u64, max_events: u64 },
    /// Never flush explicitly (backtests): sled's background flusher and
    /// [`Journal::sync`] at the end are all there is.
    None,
}

impl Durability {
    /// Group commit at 10 ms / 4096 events: the default for live journals.
    pub const GROUP_DEFAULT: Durability = Durability::Group { max_delay_ms: 10, max_events: 4096 };
}

/// What went wrong with a journal on disk.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}: no such directory")]
    Missing(PathBuf),
    #[error("{0}: not a quantfold journal (no journal header)")]
    NotAJournal(PathBuf),
    #[error("{0}: already exists and is not empty; refusing to create a journal there")]
    AlreadyExists(PathBuf),
    #[error(
        "{path}: written by a newer quantfold (codec v{codec}, schema v{schema}); this build reads codec v{}, schema v{}..=v{}; upgrade quantfold",
        codec::CODEC_VERSION, codec::SCHEMA_VERSION_MIN, codec::SCHEMA_VERSION
    )]
    NewerVersion { path: PathBuf, codec: u16, schema: u16 },
    #[error("{path}: unsupported journal version (codec v{codec}, schema v{schema})")]
    OlderVersion { path: PathBuf, codec: u16, schema: u16 },
    #[error("{path}: storage error: {message}")]
    Storage { path: PathBuf, message: String },
    #[error("{path}: seq {seq}: {problem}")]
    Corrupt { path: PathBuf, seq: u64, problem: String },
}

/// What an append returns: where the event went, and how much is durable now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: Hash,
    /// Every seq up to and including this one is durable (`None`: nothing yet).
    pub durable_through: Option<u64>,
}

/// An open journal.
pub struct Journal {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    snapshots: sled::Tree,
    header: Header,
    next_seq: u64,
    last_hash: Hash,
    durability: Durability,
    /// Every seq below this is durable (shared with the background flusher).
    durable_next: Arc<AtomicU64>,
    /// Every seq below this has been handed to a flush.
    requested_next: u64,
    pending_since: Option<Instant>,
    flusher: Option<Flusher>,
    /// Set when the last record failed its checks on open: reads still work (so
    /// `verify` and `inspect` can say where), appends are refused.
    damaged: Option<(u64, String)>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).field("next_seq", &self.next_seq).finish()
    }
}

impl Journal {
    /// Creates a new, empty journal at `path` (which must not exist or be empty).
    ///
    /// # Errors
    /// The path holds other files, or sled cannot create the database.
    pub fn create(path: &Path, durability: Durability) -> Result<Journal, StoreError> {
        if path.exists() && std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
            return Err(StoreError::AlreadyExists(path.to_owned()));
        }
        let db = open_sled(path)?;
        let storage = |e: sled::Error| StoreError::Storage { path: path.to_owned(), message: e.to_string() };
        db.insert(HEADER_KEY, Header::CURRENT.encode()).map_err(storage)?;
        db.flush().map_err(storage)?;
        Journal::from_db(path, db, durability)
    }

    /// Opens an existing journal, checking its header and recovering the next
    /// sequence number and chain head from the last record.
    ///
    /// # Errors
    /// Missing directory, not a journal, a newer format, or a corrupt last record.
    pub fn open(path: &Path, durability: Durability) -> Result<Journal, StoreError> {
        if !path.is_dir() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        // sled would happily create a fresh database in any directory; refuse
        // before it does, so pointing at the wrong directory changes nothing.
        if !path.join("conf").is_file() || !path.join("db").is_file() {
            return Err(StoreError::NotAJournal(path.to_owned()));
        }
        let db = open_sled(path)?;
        Journal::from_db(path, db, durability)
    }

    /// Opens the journal at `path`, creating it when the directory is absent or empty.
    ///
    /// # Errors
    /// As [`Journal::open`] and [`Journal::create`].
    pub fn open_or_create(path: &Path, durability: Durability) -> Result<Journal, StoreError> {
        let empty = !path.exists() || std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
        if empty {
            Journal::create(path, durability)
        } else {
            Journal::open(path, durability)
        }
    }

    fn from_db(path: &Path, db: sled::Db, durability: Durability) -> Result<Journal, StoreError> {
        let storage = |e: sled::Error| StoreError::Storage { path: path.to_owned(), message: e.to_string() };
        let header_bytes =
            db.get(HEADER_KEY).map_err(storage)?.ok_or_else(|| StoreError::NotAJournal(path.to_owned()))?;
        let header = Header::decode(&header_bytes).ok_or_else(|| StoreError::NotAJournal(path.to_owned()))?;
        if header.codec_version > codec::CODEC_VERSION || header.schema_version > codec::SCHEMA_VERSION {
            return Err(StoreError::NewerVersion {
                path: path.to_owned(),
                codec: header.codec_version,
                schema: header.schema_version,
            });
        }
        if header.codec_version != codec::CODEC_VERSION || header.schema_version < codec::SCHEMA_VERSION_MIN {
            return Err(StoreError::OlderVersion {
                path: path.to_owned(),
                codec: header.codec_version,
                schema: header.schema_version,
            });
        }
        let events = db.open_tree(EVENTS_TREE).map_err(storage)?;
        let snapshots = db.open_tree(SNAPSHOTS_TREE).map_err(storage)?;
        let mut damaged = None;
        let (next_seq, last_hash) = match events.last().map_err(storage)? {
            None => (0, Hash::ZERO),
            Some((key, value)) => {
                let seq = key_to_seq(&key)
                    .ok_or_else(|| corrupt(path, 0, format!("a key of {} bytes in the events tree", key.len())))?;
                match RawRecord::split(&value) {
                    Ok(raw) if raw.seq == seq && raw.hash_matches() => (seq + 1, raw.hash),
                    Ok(raw) => {
                        damaged = Some((seq, "the last record does not match its key or hash".to_owned()));
                        (seq + 1, raw.hash)
                    }
                    Err(e) => {
                        damaged = Some((seq, e.to_string()));
                        (seq + 1, Hash::ZERO)
                    }
                }
            }
        };
        Ok(Journal {
            path: path.to_owned(),
            db,
            events,
            snapshots,
            header,
            next_seq,
            last_hash,
            durability,
            durable_next: Arc::new(AtomicU64::new(next_seq)),
            requested_next: next_seq,
            pending_since: None,
            flusher: None,
            damaged,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// The number of records, which is also the next sequence number.
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// The hash of the last record (zeros when empty).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    /// The highest sequence number known durable.
    pub fn durable_through(&self) -> Option<u64> {
        self.durable_next.load(Ordering::Acquire).checked_sub(1)
    }

    /// Appends one event.
    ///
    /// # Errors
    /// sled failed to write or flush.
    pub fn append(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<Appended, StoreError> {
        self.refuse_if_damaged()?;
        let seq = self.next_seq;
        let (hash, value) = codec::encode_event_record(seq, &self.last_hash, time_ms, trader, event);
        self.events.insert(seq.to_be_bytes(), value).map_err(|e| self.storage(e))?;
        self.next_seq += 1;
        self.last_hash = hash;
        self.after_append(1)?;
        Ok(Appended { seq, hash, durable_through: self.durable_through() })
    }

    /// Appends several events atomically (all or none survive a crash).
    ///
    /// # Errors
    /// sled failed to write or flush.
    pub fn append_batch<'a>(
        &mut self,
        items: impl IntoIterator<Item = (i64, &'a str, &'a Event)>,
    ) -> Result<Vec<Appended>, StoreError> {
        self.refuse_if_damaged()?;
        let mut batch = sled::Batch::default();
        let mut appended = Vec::new();
        let (mut seq, mut prev) = (self.next_seq, self.last_hash);
        for (time_ms, trader, event) in items {
            let (hash, value) = codec::encode_event_record(seq, &prev, time_ms, trader, event);
            batch.insert(&seq.to_be_bytes(), value);
            appended.push(Appended { seq, hash, durable_through: None });
            prev = hash;
            seq += 1;
        }
        if appended.is_empty() {
            return Ok(appended);
        }
        self.events.apply_batch(batch).map_err(|e| self.storage(e))?;
        let count = seq - self.next_seq;
        self.next_seq = seq;
        self.last_hash = prev;
        self.after_append(count)?;
        let durable = self.durable_through();
        for a in &mut appended {
            a.durable_through = durable;
        }
        Ok(appended)
    }

    fn after_append(&mut self, _count: u64) -> Result<(), StoreError> {
        match self.durability {
            Durability::EveryAppend => self.sync(),
            Durability::Group { .. } => {
                self.pending_since.get_or_insert_with(Instant::now);
                self.flush_if_due()
            }
            Durability::None => Ok(()),
        }
    }

    /// Under group commit, hands pending appends to the background flusher when
    /// the batch is full or old enough. Drivers call this on their clock ticks so
    /// a quiet journal still becomes durable.
    ///
    /// # Errors
    /// A previous background flush failed, or a synchronous one did.
    pub fn flush_if_due(&mut self) -> Result<(), StoreError> {
        let Durability::Group { max_delay_ms, max_events } = self.durability else {
            return Ok(());
        };
        if let Some(message) = self.flusher.as_ref().and_then(Flusher::failure) {
            return Err(StoreError::Storage { path: self.path.clone(), message });
        }
        let unrequested = self.next_seq - self.requested_next;
        let old = self.pending_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(max_delay_ms));
        if unrequested == 0 || (unrequested < max_events && !old) {
            return Ok(());
        }
        let behind = self.next_seq - self.durable_next.load(Ordering::Acquire);
        if behind >= max_events.saturating_mul(8) {
            // Backpressure: the disk is slower than the appends.
            return self.sync();
        }
        if self.flusher.is_none() {
            self.flusher = Some(Flusher::start(self.db.clone(), Arc::clone(&self.durable_next)));
        }
        let flusher = self.flusher.as_ref().expect("invariant: started above");
        if flusher.request(self.next_seq) {
            self.requested_next = self.next_seq;
            self.pending_since = None;
        }
        Ok(())
    }

    /// Flushes (fsync) everything appended so far, synchronously.
    ///
    /// # Errors
    /// sled failed to flush.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.durable_next.load(Ordering::Acquire) == self.next_seq {
            return Ok(());
        }
        self.db.flush().map_err(|e| self.storage(e))?;
        self.durable_next.fetch_max(self.next_seq, Ordering::AcqRel);
        self.requested_next = self.next_seq;
        self.pending_since = None;
        Ok(())
    }

    /// Records from `from` on, each checked (key, density, chain link, hash) and decoded.
    pub fn records(&self, from: u64) -> Records<'_> {
        Records::new(self, from, true)
    }

    /// As [`Journal::records`] but trusting the hashes (the chain link and density
    /// are still checked). For rebuilds of a journal that `verify` has passed.
    pub fn records_unverified(&self, from: u64) -> Records<'_> {
        Records::new(self, from, false)
    }

    /// The record at `seq`, checked and decoded.
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        let Some(value) = self.events.get(seq.to_be_bytes()).map_err(|e| self.storage(e))? else {
            return Ok(None);
        };
        let raw = RawRecord::split(&value).map_err(|e| corrupt(&self.path, seq, e.to_string()))?;
        check_raw(&self.path, seq, &raw, None, true)?;
        raw.decode().map(Some).map_err(|e| corrupt(&self.path, seq, e.to_string()))
    }

    /// Saves a snapshot of `state` at `state.last_seq`, flushed.
    ///
    /// # Errors
    /// Storage failure, or a state that does not belong to this journal's chain.
    pub fn write_snapshot(&mut self, state: &State) -> Result<(), StoreError> {
        let Some(seq) = state.last_seq else { return Ok(()) };
        if seq >= self.next_seq {
            return Err(corrupt(&self.path, seq, "snapshot beyond the end of the journal".into()));
        }
        let encoded = codec::encode_value(state);
        let mut value = hash::state(&encoded).0.to_vec();
        value.extend_from_slice(&encoded);
        self.snapshots.insert(seq.to_be_bytes(), value).map_err(|e| self.storage(e))?;
        self.sync()?;
        self.snapshots.flush().map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Sequence numbers of all snapshots, ascending.
    ///
    /// # Errors
    /// Storage failure or a malformed key.
    pub fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for item in self.snapshots.iter().keys() {
            let key = item.map_err(|e| self.storage(e))?;
            out.push(key_to_seq(&key).ok_or_else(|| corrupt(&self.path, 0, "malformed snapshot key".into()))?);
        }
        Ok(out)
    }

    /// The snapshot at `seq`, its digest checked against its bytes.
    ///
    /// # Errors
    /// Storage failure, a digest mismatch, or bytes that do not decode.
    pub fn snapshot(&self, seq: u64) -> Result<Option<State>, StoreError> {
        let Some(value) = self.snapshots.get(seq.to_be_bytes()).map_err(|e| self.storage(e))? else {
            return Ok(None);
        };
        let bad = |problem: &str| corrupt(&self.path, seq, format!("snapshot: {problem}"));
        if value.len() < 32 || hash::state(&value[32..]).0 != value[..32] {
            return Err(bad("digest does not match its contents"));
        }
        let state: State = codec::decode_value(&value[32..]).map_err(|e| bad(&e.to_string()))?;
        if state.last_seq != Some(seq) {
            return Err(bad("stored under the wrong sequence number"));
        }
        Ok(Some(state))
    }

    /// The latest snapshot at or before `seq` (or the latest of all), checked.
    ///
    /// # Errors
    /// As [`Journal::snapshot`].
    pub fn latest_snapshot(&self, at_or_before: Option<u64>) -> Result<Option<State>, StoreError> {
        let upper = at_or_before.unwrap_or(u64::MAX);
        let found = self.snapshots.range(..=upper.to_be_bytes()).next_back();
        match found {
            None => Ok(None),
            Some(item) => {
                let (key, _) = item.map_err(|e| self.storage(e))?;
                let seq = key_to_seq(&key).ok_or_else(|| corrupt(&self.path, 0, "malformed snapshot key".into()))?;
                self.snapshot(seq)
            }
        }
    }

    /// Keeps the newest `keep` snapshots and deletes the rest.
    ///
    /// # Errors
    /// Storage failure.
    pub fn prune_snapshots(&mut self, keep: usize) -> Result<usize, StoreError> {
        let seqs = self.snapshot_seqs()?;
        let doomed = seqs.len().saturating_sub(keep);
        for seq in &seqs[..doomed] {
            self.snapshots.remove(seq.to_be_bytes()).map_err(|e| self.storage(e))?;
        }
        Ok(doomed)
    }

    /// Rebuilds the state at `to` (or the end): the latest snapshot at or before
    /// it, then the tail folded on top. State only: no decider runs.
    ///
    /// # Errors
    /// A corrupt snapshot or record.
    pub fn rebuild(&self, to: Option<u64>) -> Result<State, StoreError> {
        let mut state = self.latest_snapshot(to)?.unwrap_or_default();
        let from = state.last_seq.map_or(0, |s| s + 1);
        if let Some(snapshot_seq) = state.last_seq {
            // The snapshot must sit on this journal's chain, not merely decode.
            let record = self
                .get(snapshot_seq)?
                .ok_or_else(|| corrupt(&self.path, snapshot_seq, "snapshot of a missing record".into()))?;
            if record.hash != state.last_hash {
                return Err(corrupt(&self.path, snapshot_seq, "snapshot does not match the record's hash".into()));
            }
        }
        let end = to.map_or(self.next_seq, |t| t.saturating_add(1).min(self.next_seq));
        for record in self.records(from) {
            let env = record?;
            if env.seq >= end {
                break;
            }
            state.apply(&env);
        }
        Ok(state)
    }

    /// Appending after a damaged record would chain new events onto garbage.
    fn refuse_if_damaged(&self) -> Result<(), StoreError> {
        match &self.damaged {
            Some((seq, problem)) => Err(corrupt(&self.path, *seq, format!("{problem}; refusing to append"))),
            None => Ok(()),
        }
    }

    fn storage(&self, e: sled::Error) -> StoreError {
        StoreError::Storage { path: self.path.clone(), message: e.to_string() }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Stop the flusher first, then flush: a clean shutdown leaves everything durable.
        drop(self.flusher.take());
        let _ = self.db.flush();
    }
}

/// The group-commit flusher: a thread that fsyncs on request and publishes how
/// far the journal is durable.
struct Flusher {
    requests: Option<mpsc::SyncSender<u64>>,
    failed: Arc<Mutex<Option<String>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(db: sled::Db, durable_next: Arc<AtomicU64>) -> Flusher {
        // Capacity 1: one flush running and one queued cover everything appended meanwhile.
        let (requests, inbox) = mpsc::sync_channel::<u64>(1);
        let failed = Arc::new(Mutex::new(None));
        let failed_in_thread = Arc::clone(&failed);
        let handle = thread::Builder::new()
            .name("journal-flusher".into())
            .spawn(move || {
                for target in inbox {
                    match db.flush() {
                        Ok(_) => {
                            durable_next.fetch_max(target, Ordering::AcqRel);
                        }
                        Err(e) => {
                            *failed_in_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            return;
                        }
                    }
                }
            })
            .expect("failed to spawn the journal flusher thread");
        Flusher { requests: Some(requests), failed, handle: Some(handle) }
    }

    /// Asks for everything below `target` to be flushed; false when a flush is
    /// already queued (it will be asked again on a later append).
    fn request(&self, target: u64) -> bool {
        self.requests.as_ref().is_some_and(|r| r.try_send(target).is_ok())
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Iterates records in order, checking each as it goes; stops after the first error.
pub struct Records<'a> {
    journal: &'a Journal,
    iter: sled::Iter,
    expected: u64,
    prev: Option<Hash>,
    verify_hashes: bool,
    failed: bool,
}

impl<'a> Records<'a> {
    fn new(journal: &'a Journal, from: u64, verify_hashes: bool) -> Records<'a> {
        Records {
            journal,
            iter: journal.events.range(from.to_be_bytes()..),
            expected: from,
            // Seq 0 links to zeros; a later start learns its link from the record before it.
            prev: if from == 0 { Some(Hash::ZERO) } else { None },
            verify_hashes,
            failed: false,
        }
    }

    fn next_checked(&mut self, item: sled::Result<(sled::IVec, sled::IVec)>) -> Result<Envelope, StoreError> {
        let path = &self.journal.path;
        let (key, value) = item.map_err(|e| self.journal.storage(e))?;
        let seq = key_to_seq(&key).ok_or_else(|| corrupt(path, self.expected, "malformed key".into()))?;
        if seq != self.expected {
            return Err(corrupt(path, self.expected, format!("missing (the next record is seq {seq})")));
        }
        let raw = RawRecord::split(&value).map_err(|e| corrupt(path, seq, e.to_string()))?;
        if self.prev.is_none() && seq > 0 {
            self.prev = Some(self.journal.get(seq - 1)?.map_or(Hash::ZERO, |e| e.hash));
        }
        check_raw(path, seq, &raw, self.prev.as_ref(), self.verify_hashes)?;
        let env = raw.decode().map_err(|e: CodecError| corrupt(path, seq, e.to_string()))?;
        self.prev = Some(raw.hash);
        self.expected += 1;
        Ok(env)
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Envelope, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.iter.next()?;
        let result = self.next_checked(item);
        self.failed = result.is_err();
        Some(result)
    }
}

fn check_raw(
    path: &Path,
    seq: u64,
    raw: &RawRecord<'_>,
    prev: Option<&Hash>,
    verify_hash: bool,
) -> Result<(), StoreError> {
    if raw.seq != seq {
        return Err(corrupt(path, seq, format!("record says it is seq {} (misplaced write)", raw.seq)));
    }
    if let Some(prev) = prev {
        if raw.prev_hash != *prev {
            return Err(corrupt(path, seq, "chain broken: prev_hash does not match the previous record".into()));
        }
    }
    if verify_hash && !raw.hash_matches() {
        return Err(corrupt(path, seq, "hash mismatch: the record was altered".into()));
    }
    Ok(())
}

fn corrupt(path: &Path, seq: u64, problem: String) -> StoreError {
    StoreError::Corrupt { path: path.to_owned(), seq, problem }
}

fn key_to_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// How long opening waits for sled's directory lock: a journal dropped a moment
/// ago in this process releases it when sled's background thread exits.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Opens sled, turning its panics on damaged files (seen in 0.34) into errors,
/// and waiting briefly for a lock that a just-dropped handle still holds.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let started = Instant::now();
    loop {
        let config = sled::Config::new().path(path);
        match panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => return Ok(db),
            // sled reports a held lock as a plain io error with this text (config.rs).
            Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= LOCK_WAIT {
                    let message = "the journal is in use by another process (its lock is held)".to_owned();
                    return Err(StoreError::Storage { path: path.to_owned(), message });
                }
                thread::sleep(Duration::from_millis(20));
            }
            Ok(Err(e)) => return Err(StoreError::Storage { path: path.to_owned(), message: e.to_string() }),
            Err(_) => {
                return Err(StoreError::Storage {
                    path: path.to_owned(),
                    message: "sled panicked while opening: the database files are damaged".into(),
                })
            }
        }
    }
}
