//! The open block: records appended to a codec v2 journal but not yet written
//! to sled. It lives only in memory, so it is readable through the journal that
//! holds it and lost in a crash; it is written as one sled value when full and
//! whenever anything must become durable.

use std::ops::Range;

use crate::codec::Layout;

/// A block is written once it would grow past this many bytes. sled 0.34.7
/// stores a log message over `segment_size / 4 - 20` bytes (131,052 with the
/// default 512 KiB segments) as a separate blob file, and it logs a whole leaf
/// node — up to 17 values before the leaf splits — as one message; 17 blocks of
/// 4 KiB stay far below that, so packed journals never make blob files.
///
/// No record count limit is needed: a record is at least 75 bytes (its 72-byte
/// header and a 3-byte body) plus its 4-byte frame, so a block holds at most
/// 51, which keeps a `get` inside a block short.
pub const BLOCK_MAX_BYTES: usize = 4096;

/// Framed records (see [`Layout::Packed`]) starting at `first_seq`.
#[derive(Debug, Default)]
pub(super) struct OpenBlock {
    pub(super) first_seq: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) records: u64,
}

/// Blocks to write, as (key, byte range of the open block's buffer).
pub(super) type Sealed = Vec<(u64, Range<usize>)>;

impl OpenBlock {
    pub(super) fn new(first_seq: u64) -> OpenBlock {
        OpenBlock { first_seq, bytes: Vec::with_capacity(BLOCK_MAX_BYTES + 512), records: 0 }
    }

    /// Where the records just framed at `bytes[start..]` (one append or one
    /// batch) go: into this block if it has room; otherwise the records before them form a block of
    /// their own, and the new ones start the next block — or, when they alone
    /// exceed a block, are cut into several blocks that the caller writes in one
    /// atomic sled batch (a batch is never split between two sled writes).
    /// Returns the blocks to write now; nothing changes until [`OpenBlock::commit`].
    pub(super) fn plan(&self, start: usize) -> Sealed {
        if self.bytes.len() <= BLOCK_MAX_BYTES {
            return Vec::new();
        }
        let mut sealed = Vec::new();
        if start > 0 {
            sealed.push((self.first_seq, 0..start));
        }
        if self.bytes.len() - start > BLOCK_MAX_BYTES {
            sealed.extend(self.cut(start, self.first_seq + self.records));
        }
        sealed
    }

    /// Cuts the framed records at `bytes[start..]` into full blocks.
    fn cut(&self, start: usize, first_seq: u64) -> Sealed {
        let mut blocks: Sealed = Vec::new();
        let (mut block_start, mut seq, mut in_block) = (start, first_seq, 0u64);
        let mut frames = Layout::Packed.records_from(&self.bytes, start);
        loop {
            let frame_start = frames.offset();
            // These frames were encoded by this process a moment ago.
            let Some(Ok(_)) = frames.next() else { break };
            if in_block > 0 && frames.offset() - block_start > BLOCK_MAX_BYTES {
                blocks.push((seq - in_block, block_start..frame_start));
                (block_start, in_block) = (frame_start, 0);
            }
            in_block += 1;
            seq += 1;
        }
        if in_block > 0 {
            blocks.push((seq - in_block, block_start..self.bytes.len()));
        }
        blocks
    }

    /// Applies a plan once its blocks are written: what was written leaves the
    /// buffer, and whatever is left stays open.
    pub(super) fn commit(&mut self, sealed: &Sealed, count: u64) {
        self.records += count;
        let Some((last_key, last)) = sealed.last() else { return };
        let written_records = self.records_in(sealed, *last_key);
        self.bytes.drain(..last.end);
        self.first_seq += written_records;
        self.records -= written_records;
    }

    /// How many records the sealed blocks hold: all before the last block's key,
    /// plus the last block's own frames.
    fn records_in(&self, sealed: &Sealed, last_key: u64) -> u64 {
        let last = &sealed[sealed.len() - 1].1;
        let frames = Layout::Packed.records(&self.bytes[last.clone()]).count() as u64;
        last_key - self.first_seq + frames
    }

    /// Forgets records framed at `bytes[start..]` whose write failed.
    pub(super) fn abandon(&mut self, start: usize) {
        self.bytes.truncate(start);
    }

    /// The whole block, for writing it before a flush.
    pub(super) fn seal_all(&self) -> Sealed {
        if self.records == 0 {
            Vec::new()
        } else {
            vec![(self.first_seq, 0..self.bytes.len())]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec, event::Event, hash::Hash};

    /// Frames `count` records of about `body` bytes each at the end of the buffer.
    fn push(block: &mut OpenBlock, count: u64, body: usize) -> usize {
        let start = block.bytes.len();
        let first = block.first_seq + block.records;
        for seq in first..first + count {
            let message = "x".repeat(body);
            let event = Event::NotificationSent { channel: String::new(), message };
            codec::push_framed_event_record(&mut block.bytes, seq, &Hash::ZERO, 0, "", &event);
        }
        start
    }

    fn settle(block: &mut OpenBlock, count: u64, body: usize) -> Vec<(u64, usize)> {
        let start = push(block, count, body);
        let sealed = block.plan(start);
        let described =
            sealed.iter().map(|(k, r)| (*k, Layout::Packed.records(&block.bytes[r.clone()]).count())).collect();
        block.commit(&sealed, count);
        described
    }

    #[test]
    fn records_fill_a_block_until_the_next_would_not_fit() {
        let mut block = OpenBlock::new(10);
        // Frames of 4 + 72 + ~104 bytes: 22 fit in 4 KiB.
        let mut written = Vec::new();
        for _ in 0..30 {
            written.extend(settle(&mut block, 1, 100));
        }
        assert_eq!(written.len(), 1, "{written:?}");
        let (key, count) = written[0];
        assert_eq!(key, 10);
        assert!(count > 10 && count * 180 <= BLOCK_MAX_BYTES, "{count}");
        assert_eq!(block.first_seq, 10 + count as u64);
        assert_eq!(block.records, 30 - count as u64);
        assert_eq!(Layout::Packed.records(&block.bytes).count() as u64, block.records);
    }

    #[test]
    fn the_smallest_records_fill_a_block_with_at_most_51() {
        let mut block = OpenBlock::new(0);
        let event = Event::ClockTicked;
        let mut written = Vec::new();
        for seq in 0..200 {
            let start = block.bytes.len();
            codec::push_framed_event_record(&mut block.bytes, seq, &Hash::ZERO, 0, "", &event);
            assert_eq!(block.bytes.len() - start, 79, "4 + 72 + a 3-byte body");
            let sealed = block.plan(start);
            written.extend(sealed.iter().map(|(k, r)| (*k, Layout::Packed.records(&block.bytes[r.clone()]).count())));
            block.commit(&sealed, 1);
        }
        assert_eq!(written[..3], [(0, 51), (51, 51), (102, 51)]);
    }

    #[test]
    fn a_batch_that_does_not_fit_starts_the_next_block_whole() {
        let mut block = OpenBlock::new(0);
        assert!(settle(&mut block, 15, 100).is_empty());
        // 15 + 10 records of ~180 bytes overflow 4 KiB: the 10 go together into the next block.
        assert_eq!(settle(&mut block, 10, 100), [(0, 15)]);
        assert_eq!((block.first_seq, block.records), (15, 10));
    }

    #[test]
    fn a_batch_larger_than_a_block_is_cut_into_full_blocks_written_together() {
        let mut block = OpenBlock::new(0);
        assert!(settle(&mut block, 3, 100).is_empty());
        let written = settle(&mut block, 100, 100);
        assert_eq!(written[0], (0, 3), "the records before the batch");
        let batch: usize = written[1..].iter().map(|(_, n)| n).sum();
        assert_eq!(batch, 100, "the whole batch is written now: {written:?}");
        for pair in written.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + pair[0].1 as u64, "blocks are contiguous: {written:?}");
        }
        assert_eq!((block.first_seq, block.records, block.bytes.len()), (103, 0, 0));
    }

    #[test]
    fn a_record_larger_than_a_block_gets_a_block_of_its_own() {
        let mut block = OpenBlock::new(5);
        assert!(settle(&mut block, 1, 10).is_empty());
        assert_eq!(settle(&mut block, 1, 10_000), [(5, 1), (6, 1)]);
        assert_eq!((block.first_seq, block.records), (7, 0));
    }
}
