//! Reading records back: the iterator behind [`Journal::records`], which walks
//! the stored blocks and then the open block, and the thread that checks hashes
//! ahead of it.
//!
//! Every record is checked before it is yielded: its position (the seq it says
//! it is, and its block's key), its chain link to the record before it, and —
//! unless the caller trusts the hashes — its hash. The first failure is
//! returned naming the seq where it was found, and the iteration ends there.

use std::{
    ops::Deref,
    sync::mpsc::{self, Receiver, SyncSender},
    thread::{self, JoinHandle},
};

use super::{corrupt, key_to_seq, unreadable, Journal, StoreError};
use crate::{
    codec::{CodecError, Layout, RawRecord},
    event::Envelope,
    hash::Hash,
};

/// A verified read of at least this many stored records checks hashes on a
/// second thread; below it a thread costs more than it saves.
pub const CHECKER_MIN_RECORDS: u64 = 4096;
/// The checker hands blocks over in batches of this many (about 700 records):
/// handing them over one by one woke the other thread every ~12 µs, and those
/// wake-ups cost the reader about as much as checking the hashes itself would.
const CHECKER_BATCH_BLOCKS: usize = 32;
/// Batches the checker may run ahead of the reader: enough to ride out the
/// reader's slow records (a big fold step) without holding much memory (the
/// blocks are shared with sled's cache, not copied).
const CHECKER_QUEUE_BATCHES: usize = 4;

/// The bytes of a block: a stored sled value, or the journal's open block.
pub(super) enum BlockBytes<'a> {
    Stored(sled::IVec),
    Open(&'a [u8]),
}

impl Deref for BlockBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            BlockBytes::Stored(value) => value,
            BlockBytes::Open(bytes) => bytes,
        }
    }
}

/// Iterates records in order, checking each as it goes; stops after the first error.
pub struct Records<'a> {
    journal: &'a Journal,
    source: Source,
    /// Whether the journal's open block is still to be walked after the stored blocks.
    open_pending: bool,
    block: Option<Block<'a>>,
    /// Records before this seq (at the start of the first block) are checked but not yielded.
    from: u64,
    expected: u64,
    prev: Option<Hash>,
    verify_hashes: bool,
    /// A failure found before the first record (looking up where to start).
    pending: Option<StoreError>,
    failed: bool,
}

/// Where stored blocks come from.
enum Source {
    /// Read on this thread; hashes, if verified, are checked record by record.
    /// (Boxed: a sled iterator is ten times the size of the other variants.)
    Here(Box<sled::Iter>),
    /// Read and hash-checked ahead on a second thread.
    Checker(Checker),
    Done,
}

/// A block being walked.
struct Block<'a> {
    key: u64,
    bytes: BlockBytes<'a>,
    /// Where the next record's frame starts, and how many records were taken.
    offset: usize,
    index: usize,
    /// How many leading records the checker found intact (`None`: check here).
    hashes_ok: Option<usize>,
}

impl Block<'_> {
    fn exhausted(&self, layout: Layout) -> bool {
        match layout {
            Layout::Single => self.index > 0,
            Layout::Packed => self.offset == self.bytes.len(),
        }
    }

    /// The next record and the offset after it; [`Block::advance`] moves on once it is checked.
    fn peek_record(&self, layout: Layout) -> Result<(&[u8], usize), CodecError> {
        let mut records = layout.records_from(&self.bytes, self.offset);
        let record = records.next().unwrap_or(Err(CodecError::Truncated(0)))?;
        Ok((record, records.offset()))
    }

    fn advance(&mut self, offset: usize) {
        self.offset = offset;
        self.index += 1;
    }

    fn hash_ok(&self, index: usize, raw: &RawRecord<'_>) -> bool {
        match self.hashes_ok {
            Some(intact) => index < intact,
            None => raw.hash_matches(),
        }
    }
}

impl<'a> Records<'a> {
    pub(super) fn new(journal: &'a Journal, from: u64, verify_hashes: bool) -> Records<'a> {
        let mut records = Records {
            journal,
            source: Source::Done,
            open_pending: false,
            block: None,
            from,
            expected: from,
            // Seq 0 links to zeros; a later start learns its link from the record before it.
            prev: if from == 0 { Some(Hash::ZERO) } else { None },
            verify_hashes,
            pending: None,
            failed: false,
        };
        if from >= journal.next_seq {
            return records;
        }
        records.open_pending = true;
        let stored_end = journal.stored_end();
        if from >= stored_end {
            // Everything wanted is still in the open block.
            records.expected = stored_end;
            return records;
        }
        match journal.first_block_key(from) {
            Ok(start) => {
                records.expected = start;
                records.source =
                    Source::start(journal, start, verify_hashes && stored_end - from >= CHECKER_MIN_RECORDS);
            }
            Err(e) => records.pending = Some(e),
        }
        records
    }

    /// The next record that the caller may see, or the first problem.
    fn step(&mut self) -> Result<Option<Envelope>, StoreError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        loop {
            let Some(mut block) = self.current_block()? else { return Ok(None) };
            let seq = self.expected;
            let env = self.take_record(&mut block, seq)?;
            self.block = Some(block);
            if env.is_some() {
                return Ok(env);
            }
        }
    }

    /// Checks the next record of `block` (which must be at `seq`); decodes it unless it is before `from`.
    fn take_record(&mut self, block: &mut Block<'a>, seq: u64) -> Result<Option<Envelope>, StoreError> {
        let path = &self.journal.path;
        let layout = self.journal.layout;
        let (bytes, after) = block.peek_record(layout).map_err(|e| corrupt(path, seq, e.to_string()))?;
        let raw = RawRecord::split(bytes).map_err(|e| corrupt(path, seq, e.to_string()))?;
        if raw.seq != seq {
            return Err(corrupt(path, seq, misplacement(layout, block, after, &raw, seq)));
        }
        if raw.prev_hash != self.prev_link(seq)? {
            return Err(corrupt(path, seq, "chain broken: prev_hash does not match the previous record".into()));
        }
        if self.verify_hashes && !block.hash_ok(block.index, &raw) {
            return Err(corrupt(path, seq, "hash mismatch: the record was altered".into()));
        }
        self.prev = Some(raw.hash);
        self.expected += 1;
        let env =
            if seq < self.from { None } else { Some(raw.decode().map_err(|e| corrupt(path, seq, e.to_string()))?) };
        block.advance(after);
        Ok(env)
    }

    /// The link the record at `seq` must carry: the hash of the record before it.
    fn prev_link(&mut self, seq: u64) -> Result<Hash, StoreError> {
        if let Some(prev) = self.prev {
            return Ok(prev);
        }
        let prev = match seq.checked_sub(1) {
            None => Hash::ZERO,
            Some(before) => self.journal.get(before)?.map_or(Hash::ZERO, |e| e.hash),
        };
        self.prev = Some(prev);
        Ok(prev)
    }

    /// The block holding the next record: the current one, or the next one checked for density.
    fn current_block(&mut self) -> Result<Option<Block<'a>>, StoreError> {
        let layout = self.journal.layout;
        if let Some(block) = self.block.take().filter(|b| !b.exhausted(layout)) {
            return Ok(Some(block));
        }
        let Some(block) = self.next_block()? else { return Ok(None) };
        let path = &self.journal.path;
        if block.key > self.expected {
            return Err(corrupt(path, self.expected, format!("missing (the next record is seq {})", block.key)));
        }
        if block.key < self.expected {
            let problem = format!("a block at seq {} overlaps the records before it (misplaced write)", block.key);
            return Err(corrupt(path, self.expected, problem));
        }
        if block.bytes.is_empty() && layout == Layout::Packed {
            return Err(corrupt(path, block.key, "an empty block".into()));
        }
        Ok(Some(block))
    }

    /// The next stored block, then the open block, then nothing.
    fn next_block(&mut self) -> Result<Option<Block<'a>>, StoreError> {
        let journal = self.journal;
        let stored = match &mut self.source {
            Source::Here(iter) => iter.next().map(|item| item.map(|(key, value)| (key, value, None))),
            Source::Checker(checker) => checker.next(),
            Source::Done => None,
        };
        let Some(stored) = stored else {
            self.source = Source::Done;
            return Ok(self.open_block());
        };
        let (key, value, hashes_ok) = stored.map_err(|e| unreadable(&journal.path, self.expected, &e))?;
        let key = key_to_seq(&key).ok_or_else(|| corrupt(&journal.path, self.expected, "malformed key".into()))?;
        Ok(Some(Block { key, bytes: BlockBytes::Stored(value), offset: 0, index: 0, hashes_ok }))
    }

    fn open_block(&mut self) -> Option<Block<'a>> {
        let open = &self.journal.open;
        if !std::mem::take(&mut self.open_pending) || open.records == 0 {
            return None;
        }
        Some(Block { key: open.first_seq, bytes: BlockBytes::Open(&open.bytes), offset: 0, index: 0, hashes_ok: None })
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Envelope, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self.step().transpose()?;
        self.failed = result.is_err();
        if self.failed {
            // Stop the checker now rather than when the iterator is dropped.
            self.source = Source::Done;
        }
        Some(result)
    }
}

/// Why the record at `seq`'s position says it is `raw.seq`: a record missing
/// before it — an intact record with a later seq, inside a block (a block's
/// first record must match its key), and `seq` nowhere later in the block — or
/// else a record written in the wrong place. `after` is where the next record starts.
fn misplacement(layout: Layout, block: &Block<'_>, after: usize, raw: &RawRecord<'_>, seq: u64) -> String {
    let later_claims_seq = || {
        let mut later = layout.records_from(&block.bytes, after).map_while(Result::ok);
        later.any(|bytes| RawRecord::split(bytes).is_ok_and(|other| other.seq == seq))
    };
    if block.index > 0 && raw.seq > seq && raw.hash_matches() && !later_claims_seq() {
        format!("missing (the next record is seq {})", raw.seq)
    } else {
        format!("record says it is seq {} (misplaced write)", raw.seq)
    }
}

/// A stored block as read by the checker: key, value, and how many leading records have intact hashes.
type Checked = (sled::IVec, sled::IVec, Option<usize>);

impl Source {
    fn start(journal: &Journal, start: u64, checker: bool) -> Source {
        let range = || journal.events.range(start.to_be_bytes()..);
        if checker {
            // A thread that cannot be spawned only costs speed: check here instead.
            if let Some(checker) = Checker::start(range(), journal.layout) {
                return Source::Checker(checker);
            }
        }
        Source::Here(Box::new(range()))
    }
}

/// A batch of checked blocks; a sled error ends the last batch.
type Batch = Vec<sled::Result<Checked>>;

/// Reads stored blocks and checks their hashes on a second thread, ahead of the
/// reader, which decodes and folds meanwhile. A record's hash covers only its
/// own bytes (its prev_hash is stored in it), so blocks are checked
/// independently; the chain links stay with the reader.
struct Checker {
    batches: Option<Receiver<Batch>>,
    /// The rest of the batch being read.
    batch: std::vec::IntoIter<sled::Result<Checked>>,
    thread: Option<JoinHandle<()>>,
}

impl Checker {
    fn start(iter: sled::Iter, layout: Layout) -> Option<Checker> {
        let (send, batches) = mpsc::sync_channel(CHECKER_QUEUE_BATCHES);
        let thread = thread::Builder::new()
            .name("journal-hash-check".into())
            .spawn(move || check_ahead(iter, layout, &send))
            .ok()?;
        Some(Checker { batches: Some(batches), batch: Vec::new().into_iter(), thread: Some(thread) })
    }

    /// The next checked block; `None` when the stored blocks are exhausted.
    fn next(&mut self) -> Option<sled::Result<Checked>> {
        if let Some(checked) = self.batch.next() {
            return Some(checked);
        }
        let batches = self.batches.as_ref()?;
        if let Ok(batch) = batches.recv() {
            self.batch = batch.into_iter();
            return self.batch.next();
        }
        // The thread hung up: it finished, or it panicked, which must not pass for the end.
        self.batches = None;
        let finished = self.thread.take().is_none_or(|t| t.join().is_ok());
        (!finished).then(|| Err(sled::Error::ReportableBug("the journal's hash-check thread panicked".into())))
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        // Hanging up makes the thread's next send fail, which ends it.
        drop(self.batches.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn check_ahead(mut iter: sled::Iter, layout: Layout, send: &SyncSender<Batch>) {
    loop {
        let mut batch = Vec::with_capacity(CHECKER_BATCH_BLOCKS);
        for item in iter.by_ref().take(CHECKER_BATCH_BLOCKS) {
            let checked = item.map(|(key, value)| {
                let intact = intact_hashes(layout, &value);
                (key, value, Some(intact))
            });
            let failed = checked.is_err();
            batch.push(checked);
            if failed {
                break;
            }
        }
        let last = batch.len() < CHECKER_BATCH_BLOCKS || batch.last().is_some_and(Result::is_err);
        // An empty batch is not sent: hanging up tells the reader that sled is exhausted.
        if batch.is_empty() || send.send(batch).is_err() || last {
            return;
        }
    }
}

/// How many leading records of a stored value split and have intact hashes.
fn intact_hashes(layout: Layout, value: &[u8]) -> usize {
    layout
        .records(value)
        .map_while(|record| record.ok().and_then(|bytes| RawRecord::split(bytes).ok()))
        .take_while(RawRecord::hash_matches)
        .count()
}
