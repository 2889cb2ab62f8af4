//! The sled-backed store: the one module of this crate that touches disk.
//!
//! Layout of a journal directory (sled 0.34.7):
//! - default tree, key `header`: [`Header`] (magic, codec and schema versions);
//! - tree `events`: key = the seq of the value's first record as u64 big-endian,
//!   value = a block of consecutive records (codec v2) or one record (codec v1),
//!   see [`crate::codec::Layout`]. Seqs are our own dense counter from 0,
//!   recovered from the last record on open;
//! - tree `snapshots`: key = seq big-endian, value = state digest (32) ‖ encoded [`State`].
//!
//! Appends to a codec v2 journal gather in an open block in memory, written as
//! one sled value when full ([`BLOCK_MAX_BYTES`]) and
//! before anything is flushed; reads through the journal see it too.
//!
//! Durability: a returned sled `insert` is not durable until `flush`. The
//! [`Durability`] policy decides when this store flushes, and every append
//! reports how far the journal is known to be durable.
//!
//! Beside sled: `HEAD`, the durable head (how many records the last flush made
//! durable, so a truncation is detectable), and `segments/`, a checksummed copy
//! of every block that [`recover`] can read without sled. Both are written by
//! the same flush as sled. A journal is created in a temporary sibling and
//! renamed into place, so a kill never leaves half a journal.

mod block;
mod create;
mod flush;
mod head;
mod records;
mod recover;
mod segments;

use std::{
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

#[cfg(any(test, feature = "testkit"))]
pub use self::create::leftovers;
pub use self::{
    block::BLOCK_MAX_BYTES,
    head::Head,
    records::{Records, CHECKER_MIN_RECORDS},
    recover::{recover, salvageable, Recovered},
};
use self::{
    block::{OpenBlock, Sealed},
    flush::{Files, Flusher, Request},
    records::BlockBytes,
    segments::{Frames, FRAMES_SPILL_BYTES},
};
use crate::{
    codec::{self, Header, Layout, RawRecord},
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
        "{path}: written by a newer quantfold (codec v{codec}, schema v{schema}); this build reads codec v{}..=v{}, schema v{}..=v{}; upgrade quantfold",
        codec::CODEC_VERSION_MIN, codec::CODEC_VERSION, codec::SCHEMA_VERSION_MIN, codec::SCHEMA_VERSION
    )]
    NewerVersion { path: PathBuf, codec: u16, schema: u16 },
    #[error(
        "{path}: unsupported journal version (codec v{codec}, schema v{schema}); this build reads codec v{}..=v{}, schema v{}..=v{}",
        codec::CODEC_VERSION_MIN, codec::CODEC_VERSION, codec::SCHEMA_VERSION_MIN, codec::SCHEMA_VERSION
    )]
    OlderVersion { path: PathBuf, codec: u16, schema: u16 },
    #[error("{path}: storage error: {message}")]
    Storage { path: PathBuf, message: String },
    #[error("{path}: seq {seq}: {problem}")]
    Corrupt { path: PathBuf, seq: u64, problem: String },
    #[error("{message}")]
    Head { message: String },
    /// The newest records are gone: the head file says more were durable.
    #[error("{path}: {}", truncation(*from, head))]
    Truncated { path: PathBuf, from: u64, head: Head },
}

/// Which records a truncation took, and what is still there.
fn truncation(from: u64, head: &Head) -> String {
    let last = head.records.saturating_sub(1);
    let left = match from.checked_sub(1) {
        Some(intact) => format!("seq 0..={intact} are intact"),
        None => "no record is left".into(),
    };
    format!("records {from}..{last} are missing: the durable head says seq {last}, hash {}; {left}", head.hash)
}

/// What an append returns: where the event went, and how much is durable now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: Hash,
    /// Every seq up to and including this one is durable (`None`: nothing yet).
    pub durable_through: Option<u64>,
}

/// Told how long appends and flushes take (the live driver's metrics). Called on the
/// appending thread and on the flusher thread: keep it cheap.
pub trait Timings: Send + Sync + std::fmt::Debug {
    /// One `append` (or one `append_batch`), encoding and sled insert included.
    fn appended(&self, took: std::time::Duration);
    /// One flush: segments, sled and the head file made durable.
    fn flushed(&self, took: std::time::Duration);
}

/// Shared by the journal and its files (which the flusher thread holds while it runs).
pub(crate) type TimingsSlot = Arc<std::sync::OnceLock<Arc<dyn Timings>>>;

/// An open journal.
pub struct Journal {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    snapshots: sled::Tree,
    header: Header,
    /// How records sit in sled values: what this journal's codec version writes and reads.
    layout: Layout,
    next_seq: u64,
    last_hash: Hash,
    /// Codec v2: the records after the last stored block (always empty for v1).
    open: OpenBlock,
    durability: Durability,
    /// Every seq below this is durable (shared with the background flusher).
    durable_next: Arc<AtomicU64>,
    /// Every seq below this has been handed to a flush.
    requested_next: u64,
    pending_since: Option<Instant>,
    flusher: Option<Flusher>,
    /// The segments and the head file, once this handle writes (`None` before,
    /// and while the flusher thread holds them).
    files: Option<Files>,
    /// Segment frames of blocks written to sled since the last flush.
    frames: Frames,
    /// What the head file said on open (records), where the head writer starts.
    head_on_open: u64,
    /// Set when the last record failed its checks on open, or the head file
    /// says records are missing: reads still work (so `verify` and `inspect`
    /// can say where), appends are refused.
    damaged: Option<(u64, String)>,
    timings: TimingsSlot,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).field("next_seq", &self.next_seq).finish()
    }
}

/// What the last stored record says on open: the next seq, the chain head, and
/// whether that record is damaged.
struct Tail {
    next_seq: u64,
    last_hash: Hash,
    damaged: Option<(u64, String)>,
}

impl Journal {
    /// Creates a new, empty journal at `path` (which must not exist or be empty).
    ///
    /// # Errors
    /// The path holds other files, or sled cannot create the database.
    pub fn create(path: &Path, durability: Durability) -> Result<Journal, StoreError> {
        Journal::create_with_header(path, durability, Header::CURRENT)
    }

    /// Creates a journal that writes codec `codec_version` (1 or 2) — for tests
    /// proving that this build still reads, verifies and appends to codec v1
    /// journals. Quantfold itself always creates the current codec.
    ///
    /// # Errors
    /// As [`Journal::create`], or a codec version this build does not write.
    #[cfg(any(test, feature = "testkit"))]
    pub fn create_with_codec(path: &Path, durability: Durability, codec_version: u16) -> Result<Journal, StoreError> {
        Journal::create_with_header(path, durability, Header { codec_version, ..Header::CURRENT })
    }

    fn create_with_header(path: &Path, durability: Durability, header: Header) -> Result<Journal, StoreError> {
        if path.exists() && std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
            return Err(StoreError::AlreadyExists(path.to_owned()));
        }
        check_versions(path, header)?;
        create::journal_dir(path, header)?;
        Journal::open(path, durability)
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
        let storage = |e: sled::Error| StoreError::Storage { path: path.to_owned(), message: sled_problem(&e) };
        let header_bytes =
            db.get(HEADER_KEY).map_err(storage)?.ok_or_else(|| StoreError::NotAJournal(path.to_owned()))?;
        let header = Header::decode(&header_bytes).ok_or_else(|| StoreError::NotAJournal(path.to_owned()))?;
        let layout = check_versions(path, header)?;
        let events = db.open_tree(EVENTS_TREE).map_err(storage)?;
        let snapshots = db.open_tree(SNAPSHOTS_TREE).map_err(storage)?;
        let mut tail = recover_tail(path, &events, layout)?;
        // A head file that cannot be read makes no claim; `verify` reports it.
        let head = head::read(path).ok().flatten();
        if let Some(head) = head.filter(|h| h.records > tail.next_seq && tail.damaged.is_none()) {
            tail.damaged = Some((tail.next_seq, truncation(tail.next_seq, &head)));
        }
        Ok(Journal {
            path: path.to_owned(),
            db,
            events,
            snapshots,
            header,
            layout,
            next_seq: tail.next_seq,
            last_hash: tail.last_hash,
            open: OpenBlock::new(tail.next_seq),
            durability,
            durable_next: Arc::new(AtomicU64::new(tail.next_seq)),
            timings: TimingsSlot::default(),
            requested_next: tail.next_seq,
            pending_since: None,
            flusher: None,
            files: None,
            frames: Frames::default(),
            head_on_open: head.map_or(0, |h| h.records),
            damaged: tail.damaged,
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

    /// Records appended but not yet written to sled (the open block of a codec
    /// v2 journal): readable through this handle, lost if the process dies.
    pub fn open_block_len(&self) -> u64 {
        self.open.records
    }

    /// Reports every append's and flush's duration to `timings` from now on. Once per
    /// journal: false if timings were set already.
    pub fn set_timings(&self, timings: Arc<dyn Timings>) -> bool {
        self.timings.set(timings).is_ok()
    }

    /// Appends one event.
    ///
    /// # Errors
    /// sled failed to write or flush.
    pub fn append(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<Appended, StoreError> {
        let Some(timings) = self.timings.get().cloned() else { return self.append_untimed(time_ms, trader, event) };
        let started = Instant::now();
        let appended = self.append_untimed(time_ms, trader, event);
        timings.appended(started.elapsed());
        appended
    }

    fn append_untimed(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<Appended, StoreError> {
        self.refuse_if_damaged()?;
        let seq = self.next_seq;
        let hash = match self.layout {
            Layout::Single => {
                let (hash, value) = codec::encode_event_record(seq, &self.last_hash, time_ms, trader, event);
                self.events.insert(seq.to_be_bytes(), value).map_err(|e| self.storage(e))?;
                hash
            }
            Layout::Packed => {
                let start = self.open.bytes.len();
                let hash =
                    codec::push_framed_event_record(&mut self.open.bytes, seq, &self.last_hash, time_ms, trader, event);
                self.settle(start, 1)?;
                hash
            }
        };
        self.next_seq += 1;
        self.last_hash = hash;
        self.after_append()?;
        Ok(Appended { seq, hash, durable_through: self.durable_through() })
    }

    /// Appends several events atomically (all or none survive a crash): in one
    /// block, or when they exceed a block, in several written by one sled batch.
    ///
    /// # Errors
    /// sled failed to write or flush.
    pub fn append_batch<'a>(
        &mut self,
        items: impl IntoIterator<Item = (i64, &'a str, &'a Event)>,
    ) -> Result<Vec<Appended>, StoreError> {
        let Some(timings) = self.timings.get().cloned() else { return self.append_batch_untimed(items) };
        let started = Instant::now();
        let appended = self.append_batch_untimed(items);
        timings.appended(started.elapsed());
        appended
    }

    fn append_batch_untimed<'a>(
        &mut self,
        items: impl IntoIterator<Item = (i64, &'a str, &'a Event)>,
    ) -> Result<Vec<Appended>, StoreError> {
        self.refuse_if_damaged()?;
        let mut appended = match self.layout {
            Layout::Single => self.append_batch_single(items)?,
            Layout::Packed => self.append_batch_packed(items)?,
        };
        let Some(last) = appended.last().copied() else { return Ok(appended) };
        self.next_seq = last.seq + 1;
        self.last_hash = last.hash;
        self.after_append()?;
        let durable = self.durable_through();
        for a in &mut appended {
            a.durable_through = durable;
        }
        Ok(appended)
    }

    /// Codec v1: one value per record, all in one sled batch.
    fn append_batch_single<'a>(
        &mut self,
        items: impl IntoIterator<Item = (i64, &'a str, &'a Event)>,
    ) -> Result<Vec<Appended>, StoreError> {
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
        if !appended.is_empty() {
            self.events.apply_batch(batch).map_err(|e| self.storage(e))?;
        }
        Ok(appended)
    }

    /// Codec v2: framed into the open block, which [`Journal::settle`] writes out as needed.
    fn append_batch_packed<'a>(
        &mut self,
        items: impl IntoIterator<Item = (i64, &'a str, &'a Event)>,
    ) -> Result<Vec<Appended>, StoreError> {
        let start = self.open.bytes.len();
        let mut appended = Vec::new();
        let (mut seq, mut prev) = (self.next_seq, self.last_hash);
        for (time_ms, trader, event) in items {
            let hash = codec::push_framed_event_record(&mut self.open.bytes, seq, &prev, time_ms, trader, event);
            appended.push(Appended { seq, hash, durable_through: None });
            prev = hash;
            seq += 1;
        }
        if !appended.is_empty() {
            self.settle(start, appended.len() as u64)?;
        }
        Ok(appended)
    }

    /// Writes whatever the `count` records just framed at the end of the open
    /// block make full. If sled refuses, they are dropped as if never appended.
    fn settle(&mut self, start: usize, count: u64) -> Result<(), StoreError> {
        let sealed = self.open.plan(start);
        if let Err(e) = self.write_blocks(&sealed) {
            self.open.abandon(start);
            return Err(e);
        }
        self.open.commit(&sealed, count);
        Ok(())
    }

    /// Writes the open block to sled, before anything is flushed: a seq reported
    /// durable must be in sled.
    fn write_open_block(&mut self) -> Result<(), StoreError> {
        let sealed = self.open.seal_all();
        self.write_blocks(&sealed)?;
        self.open.commit(&sealed, 0);
        Ok(())
    }

    /// Writes ranges of the open block's buffer as blocks; several go in one
    /// sled batch, so they all survive a crash or none does.
    /// Their segment frames wait in `frames` for the next flush.
    fn write_blocks(&mut self, sealed: &Sealed) -> Result<(), StoreError> {
        if sealed.is_empty() {
            return Ok(());
        }
        // Before the first block goes to sled: the segments catch up with what
        // sled holds without this handle's blocks.
        self.files()?;
        // One copy of each block, shared by sled and the segment frames.
        let block = |range: &std::ops::Range<usize>| sled::IVec::from(&self.open.bytes[range.clone()]);
        match sealed.as_slice() {
            [(key, range)] => {
                let value = block(range);
                self.events.insert(key.to_be_bytes(), value.clone()).map_err(|e| self.storage(e))?;
                self.frames.push(*key, value);
            }
            blocks => {
                let mut batch = sled::Batch::default();
                let values: Vec<_> = blocks.iter().map(|(key, range)| (*key, block(range))).collect();
                for (key, value) in &values {
                    batch.insert(&key.to_be_bytes(), value.clone());
                }
                self.events.apply_batch(batch).map_err(|e| self.storage(e))?;
                for (key, value) in values {
                    self.frames.push(key, value);
                }
            }
        }
        Ok(())
    }

    /// The files beside sled, opened on first use; `None` while the flusher holds them.
    fn files(&mut self) -> Result<Option<&mut Files>, StoreError> {
        if self.files.is_none() && self.flusher.is_none() {
            let stored_end = self.stored_end();
            let timings = Arc::clone(&self.timings);
            let files = Files::open(
                &self.path,
                self.header,
                self.layout,
                &self.events,
                stored_end,
                self.head_on_open,
                timings,
            )?;
            self.files = Some(files);
        }
        Ok(self.files.as_mut())
    }

    /// Stops the background flusher once its queued flushes are done, taking the files back.
    fn stop_flusher(&mut self) -> Result<(), StoreError> {
        let Some(flusher) = self.flusher.take() else { return Ok(()) };
        let failure = flusher.failure();
        self.files = flusher.stop();
        match failure {
            Some(message) => Err(StoreError::Storage { path: self.path.clone(), message }),
            None => Ok(()),
        }
    }

    /// Writes the pending frames, sled and the head: everything appended becomes durable.
    fn flush_here(&mut self) -> Result<(), StoreError> {
        let mut frames = std::mem::take(&mut self.frames);
        let head = Head { records: self.next_seq, hash: self.last_hash };
        let (db, path) = (self.db.clone(), self.path.clone());
        let flushed = match self.files()? {
            Some(files) => files.flush(&mut frames, &db, head).map_err(|message| StoreError::Storage { path, message }),
            None => unreachable!("invariant: the flusher was stopped first"),
        };
        self.frames = frames;
        flushed
    }

    fn after_append(&mut self) -> Result<(), StoreError> {
        match self.durability {
            Durability::EveryAppend => self.sync(),
            Durability::Group { .. } => {
                self.pending_since.get_or_insert_with(Instant::now);
                self.flush_if_due()
            }
            Durability::None => {
                // Keep a long backtest's frames from piling up until its final sync.
                if self.frames.len() >= FRAMES_SPILL_BYTES {
                    let mut frames = std::mem::take(&mut self.frames);
                    let path = self.path.clone();
                    let spilled = match self.files()? {
                        Some(files) => {
                            files.spill(&mut frames).map_err(|message| StoreError::Storage { path, message })
                        }
                        None => Ok(()),
                    };
                    self.frames = frames;
                    spilled?;
                }
                Ok(())
            }
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
        // Backpressure: when the disk is slower than the appends, this request
        // waits for room in the queue (the running flush to finish) instead of
        // being put off.
        let behind = self.next_seq - self.durable_next.load(Ordering::Acquire);
        let wait = behind >= max_events.saturating_mul(8);
        if !wait && self.flusher.as_ref().is_some_and(Flusher::is_queued) {
            // A request already waits, so this one would be refused: writing the
            // open block now would only make it smaller. Ask on a later append.
            return Ok(());
        }
        self.write_open_block()?;
        if self.flusher.is_none() {
            self.files()?;
            let Some(files) = self.files.take() else { unreachable!("invariant: no flusher, so the files are here") };
            match Flusher::start(self.db.clone(), files, Arc::clone(&self.durable_next)) {
                Ok(flusher) => self.flusher = Some(flusher),
                Err(files) => {
                    self.files = Some(files);
                    return Err(StoreError::Storage {
                        path: self.path.clone(),
                        message: "cannot start the flusher thread".into(),
                    });
                }
            }
        }
        let flusher = self.flusher.as_ref().expect("invariant: started above");
        let spare = flusher.spare(self.frames.capacity());
        let request = Request {
            head: Head { records: self.next_seq, hash: self.last_hash },
            frames: std::mem::replace(&mut self.frames, spare),
        };
        match flusher.request(request, wait) {
            Ok(()) => {
                self.requested_next = self.next_seq;
                self.pending_since = None;
            }
            Err(request) => self.frames = request.frames,
        }
        match flusher.failure() {
            Some(message) => Err(StoreError::Storage { path: self.path.clone(), message }),
            None => Ok(()),
        }
    }

    /// Flushes (fsync) everything appended so far, synchronously.
    ///
    /// # Errors
    /// sled failed to write or flush.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.write_open_block()?;
        if self.durable_next.load(Ordering::Acquire) == self.next_seq {
            return Ok(());
        }
        // The flusher's queued frames go first, so the segments stay in order.
        self.stop_flusher()?;
        self.flush_here()?;
        self.durable_next.fetch_max(self.next_seq, Ordering::AcqRel);
        self.requested_next = self.next_seq;
        self.pending_since = None;
        Ok(())
    }

    /// Records from `from` on, each checked (position, density, chain link, hash) and decoded.
    /// A long read checks hashes on a second thread, ahead of the caller.
    pub fn records(&self, from: u64) -> Records<'_> {
        Records::new(self, from, true)
    }

    /// As [`Journal::records`] but trusting the hashes (the chain link and density
    /// are still checked). For rebuilds of a journal that `verify` has passed.
    pub fn records_unverified(&self, from: u64) -> Records<'_> {
        Records::new(self, from, false)
    }

    /// The record at `seq`, checked (position and hash) and decoded.
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        let Some((key, block)) = self.block_holding(seq)? else { return Ok(None) };
        for (position, record) in (key..).zip(self.layout.records(&block)) {
            let bytes = record.map_err(|e| corrupt(&self.path, position, e.to_string()))?;
            if position == seq {
                let raw = RawRecord::split(bytes).map_err(|e| corrupt(&self.path, seq, e.to_string()))?;
                check_raw(&self.path, seq, &raw)?;
                return raw.decode().map(Some).map_err(|e| corrupt(&self.path, seq, e.to_string()));
            }
        }
        Ok(None)
    }

    /// The open or stored block whose records would include `seq`, with its key.
    fn block_holding(&self, seq: u64) -> Result<Option<(u64, BlockBytes<'_>)>, StoreError> {
        if self.open.records > 0 && seq >= self.open.first_seq {
            return Ok(Some((self.open.first_seq, BlockBytes::Open(&self.open.bytes))));
        }
        let found = match self.layout {
            Layout::Single => {
                self.events.get(seq.to_be_bytes()).map(|v| v.map(|v| (sled::IVec::from(&seq.to_be_bytes()), v)))
            }
            Layout::Packed => self.events.range(..=seq.to_be_bytes()).next_back().transpose(),
        };
        let Some((key, value)) = found.map_err(|e| self.storage(e))? else { return Ok(None) };
        let key = key_to_seq(&key).ok_or_else(|| corrupt(&self.path, seq, "malformed key".into()))?;
        Ok(Some((key, BlockBytes::Stored(value))))
    }

    /// Every seq below this is in sled; the open block holds the rest.
    fn stored_end(&self) -> u64 {
        self.next_seq - self.open.records
    }

    /// The key of the stored block holding `seq`: where reading from `seq` starts.
    fn first_block_key(&self, seq: u64) -> Result<u64, StoreError> {
        if self.layout == Layout::Single {
            return Ok(seq);
        }
        match self.events.range(..=seq.to_be_bytes()).next_back() {
            None => Ok(seq),
            Some(item) => {
                let (key, _) = item.map_err(|e| self.storage(e))?;
                Ok(key_to_seq(&key).unwrap_or(seq))
            }
        }
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
        // The records go to sled before the snapshot of them, so a crash in
        // between never leaves a snapshot of records that are not there.
        self.write_open_block()?;
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
        if !crate::state::is_current_layout(&value[32..]) {
            // Intact, but written by a build with another state layout: derived data this
            // build cannot use. Treated as absent, so the events rebuild the state.
            return Ok(None);
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

    /// What the head file says was durable at the last flush (`None`: a journal
    /// made before head files existed).
    ///
    /// # Errors
    /// The head file is damaged or unreadable.
    pub fn durable_head(&self) -> Result<Option<Head>, StoreError> {
        head::read(&self.path).map_err(|message| StoreError::Head { message })
    }

    /// Checks the segment files (codec v2) against sled's blocks: every intact
    /// frame below sled's end must hold exactly sled's block, and they must
    /// reach at least as far as `head` says was durable. Frames past sled's end,
    /// or a damaged tail past the head, are what a crash leaves, not damage.
    ///
    /// # Errors
    /// The first difference, or where the segments stop short of the head.
    pub fn check_segments(&self, head: Option<Head>) -> Result<(), StoreError> {
        if self.layout != Layout::Packed {
            return Ok(());
        }
        let required = head.map_or(0, |h| h.records);
        let seg_error = |e: std::io::Error| StoreError::Storage {
            path: self.path.clone(),
            message: format!("cannot read the segment files: {e}"),
        };
        if segments::list(&self.path).map_err(seg_error)?.is_empty() && required == 0 {
            // A journal made before segments existed, not yet written by this build.
            return Ok(());
        }
        let stored_end = self.stored_end();
        let mut blocks = self.events.iter();
        let (mut covered, mut damage) = (0u64, None);
        let mut reader = segments::Reader::open(&self.path).map_err(seg_error)?;
        while let Some(frame) = reader.next_frame() {
            let frame = match frame {
                Ok(frame) if frame.key < stored_end => frame,
                Ok(_) => break,
                Err(d) => {
                    damage = Some(d);
                    break;
                }
            };
            let block = blocks.next().transpose().map_err(|e| self.storage(e))?;
            if block.as_ref().is_none_or(|(key, value)| key_to_seq(key) != Some(frame.key) || value != frame.block) {
                let problem = format!(
                    "{} at byte {}: the segment copy of the block at seq {} differs from the database's",
                    frame.file.display(),
                    frame.offset,
                    frame.key
                );
                return Err(corrupt(&self.path, frame.key, problem));
            }
            covered = frame.key + frame.records;
        }
        if covered >= required {
            return Ok(());
        }
        let problem = match damage {
            Some(d) => format!("the segment copy is damaged: {d} (the database's records verify)"),
            None => format!(
                "the segment files end here, but the durable head says seq {} was durable: they were truncated",
                required - 1
            ),
        };
        Err(corrupt(&self.path, covered, problem))
    }

    /// Appending after a damaged record would chain new events onto garbage.
    fn refuse_if_damaged(&self) -> Result<(), StoreError> {
        match &self.damaged {
            Some((seq, problem)) => Err(corrupt(&self.path, *seq, format!("{problem}; refusing to append"))),
            None => Ok(()),
        }
    }

    fn storage(&self, e: sled::Error) -> StoreError {
        StoreError::Storage { path: self.path.clone(), message: sled_problem(&e) }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Stop the flusher first, then write the open block and flush: a clean
        // shutdown leaves everything durable. A handle that never wrote leaves
        // the segments and the head file alone.
        let _ = self.stop_flusher();
        let _ = self.write_open_block();
        if self.files.is_some() {
            let _ = self.flush_here();
        } else {
            let _ = self.db.flush();
        }
    }
}

/// What `get` checks of a single record: it sits where it says, and its hash holds.
fn check_raw(path: &Path, seq: u64, raw: &RawRecord<'_>) -> Result<(), StoreError> {
    if raw.seq != seq {
        return Err(corrupt(path, seq, format!("record says it is seq {} (misplaced write)", raw.seq)));
    }
    if !raw.hash_matches() {
        return Err(corrupt(path, seq, "hash mismatch: the record was altered".into()));
    }
    Ok(())
}

/// Reads the last stored record on open: the next seq and chain head, and
/// whether that record is damaged (a crash never tears a sled value, but a disk can).
fn recover_tail(path: &Path, events: &sled::Tree, layout: Layout) -> Result<Tail, StoreError> {
    let storage = |e: sled::Error| StoreError::Storage { path: path.to_owned(), message: sled_problem(&e) };
    let Some((key, value)) = events.last().map_err(storage)? else {
        return Ok(Tail { next_seq: 0, last_hash: Hash::ZERO, damaged: None });
    };
    let key =
        key_to_seq(&key).ok_or_else(|| corrupt(path, 0, format!("a key of {} bytes in the events tree", key.len())))?;
    let damaged = |seq: u64, problem: String, last_hash: Hash| Tail {
        next_seq: seq.saturating_add(1),
        last_hash,
        damaged: Some((seq, problem)),
    };
    let mut last = None;
    let mut seq = key;
    for record in layout.records(&value) {
        match record {
            Ok(bytes) => last = Some((seq, bytes)),
            Err(e) => return Ok(damaged(seq, e.to_string(), Hash::ZERO)),
        }
        seq = seq.saturating_add(1);
    }
    let Some((seq, bytes)) = last else { return Ok(damaged(key, "an empty block".into(), Hash::ZERO)) };
    Ok(match RawRecord::split(bytes) {
        Ok(raw) if raw.seq == seq && raw.hash_matches() => {
            Tail { next_seq: seq + 1, last_hash: raw.hash, damaged: None }
        }
        Ok(raw) => damaged(seq, "the last record does not match its position or hash".into(), raw.hash),
        Err(e) => damaged(seq, e.to_string(), Hash::ZERO),
    })
}

/// The layout of a journal's codec, or why this build cannot read it.
fn check_versions(path: &Path, header: Header) -> Result<Layout, StoreError> {
    let (codec, schema) = (header.codec_version, header.schema_version);
    if codec > codec::CODEC_VERSION || schema > codec::SCHEMA_VERSION {
        return Err(StoreError::NewerVersion { path: path.to_owned(), codec, schema });
    }
    match Layout::of(codec) {
        Some(layout) if codec >= codec::CODEC_VERSION_MIN && schema >= codec::SCHEMA_VERSION_MIN => Ok(layout),
        _ => Err(StoreError::OlderVersion { path: path.to_owned(), codec, schema }),
    }
}

/// A sled error as a sentence: sled's own text for corruption carries a
/// debug-printed disk pointer and an empty backtrace.
fn sled_problem(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => "the database file is damaged (sled found corrupted data)".into(),
        sled::Error::Io(e) => format!("i/o error: {e}"),
        other => other.to_string(),
    }
}

/// sled could not read the stored block holding `seq`: the records before it are intact.
fn unreadable(path: &Path, seq: u64, e: &sled::Error) -> StoreError {
    let intact = match seq.checked_sub(1) {
        Some(last) => format!("seq 0..={last} are intact"),
        None => "no record before it".into(),
    };
    corrupt(path, seq, format!("the database cannot read the block holding it: {}; {intact}", sled_problem(e)))
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
            Ok(Err(e)) => return Err(StoreError::Storage { path: path.to_owned(), message: sled_problem(&e) }),
            Err(_) => {
                return Err(StoreError::Storage {
                    path: path.to_owned(),
                    message: "sled panicked while opening: the database files are damaged".into(),
                })
            }
        }
    }
}
