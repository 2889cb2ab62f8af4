//! Codec v2's packed blocks: how appends are packed (a batch never split
//! between two sled writes), records still in the open block read like stored
//! ones, `get` inside blocks, broken framing named by seq, the hash-check
//! thread of long reads, and codec v1 journals still read and appended to.

mod common;

use std::path::Path;

use common::{items, journal_with, read_all, reopen, with_sled};
use journal::{
    codec,
    state::State,
    store::{BLOCK_MAX_BYTES, CHECKER_MIN_RECORDS},
    testkit::{chain, stored, Item},
    verify, Durability, Envelope, Event, Journal, StoreError,
};

/// A notification of about 180 bytes as a framed record: 22 fit in a block.
fn note() -> Event {
    Event::NotificationSent { channel: "c".into(), message: "x".repeat(100) }
}

/// The stored values of a closed journal as (key, records, bytes).
fn blocks(dir: &Path) -> Vec<(u64, usize, usize)> {
    let mut out = Vec::new();
    with_sled(dir, |_, _, db| out = stored::blocks(db));
    out
}

#[track_caller]
fn assert_contiguous(blocks: &[(u64, usize, usize)], len: u64) {
    let mut next = 0;
    for &(key, records, bytes) in blocks {
        assert_eq!(key, next, "a block is keyed by its first seq, right after the one before: {blocks:?}");
        assert!(records > 0, "no empty blocks: {blocks:?}");
        assert!(bytes <= BLOCK_MAX_BYTES || records == 1, "only a lone record may exceed a block: {blocks:?}");
        next += records as u64;
    }
    assert_eq!(next, len, "{blocks:?}");
}

#[test]
fn appends_pack_into_contiguous_blocks_under_the_size_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = items(400);
    let (journal, envelopes) = journal_with(dir.path(), &all);
    assert_eq!(envelopes, chain(&all), "the same records and hashes as codec v1 would write");
    drop(journal);
    let blocks = blocks(dir.path());
    assert_contiguous(&blocks, 400);
    assert!(blocks.len() * 10 < 400, "records are packed: {} blocks for 400 records", blocks.len());
}

#[test]
fn a_batch_is_never_split_between_two_sled_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::create(dir.path(), Durability::None).expect("creates");
    let note = note();
    for _ in 0..18 {
        journal.append(0, "t", &note).expect("appends");
    }
    assert_eq!(journal.open_block_len(), 18, "18 notes fit in one block");
    // The batch would take the open block past its limit: the 18 are written
    // as a block, and the whole batch starts the next one.
    let batch = journal.append_batch(std::iter::repeat_n((0, "t", &note), 8)).expect("appends");
    assert_eq!((batch[0].seq, journal.open_block_len()), (18, 8));
    // A batch larger than a block is written at once, cut into full blocks that
    // go to sled in one atomic batch: nothing of it waits in the open block.
    let big = journal.append_batch(std::iter::repeat_n((0, "t", &note), 100)).expect("appends");
    assert_eq!((big[0].seq, journal.open_block_len()), (26, 0));
    journal.append(0, "t", &note).expect("appends");
    assert_eq!(journal.open_block_len(), 1);
    drop(journal);

    let blocks = blocks(dir.path());
    assert_contiguous(&blocks, 127);
    let keys: Vec<(u64, usize)> = blocks.iter().map(|&(key, records, _)| (key, records)).collect();
    assert_eq!(keys[..2], [(0, 18), (18, 8)], "the first batch sits whole in one block");
    assert_eq!(keys.last(), Some(&(126, 1)), "the last append was written when the journal closed");
    assert!(keys.len() > 4, "the big batch spans several blocks: {keys:?}");
}

#[test]
fn records_in_the_open_block_are_read_got_verified_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = items(60);
    let expected = chain(&all);
    let mut journal = Journal::create(dir.path(), Durability::None).expect("creates");
    for (time_ms, trader, event) in &all[..3] {
        journal.append(*time_ms, trader, event).expect("appends");
    }
    assert_eq!(journal.open_block_len(), 3, "nothing reached sled yet");
    assert_eq!(read_all(&journal), expected[..3]);
    assert_eq!(journal.get(1).expect("reads"), Some(expected[1].clone()));
    for (time_ms, trader, event) in &all[3..] {
        journal.append(*time_ms, trader, event).expect("appends");
    }
    let open = journal.open_block_len();
    assert!(open > 0 && open < 60, "some blocks stored, some records open: {open}");
    check_every_read(&journal, &expected);
    let report = verify::journal(&journal).expect("verifies");
    assert_eq!((report.events, report.head), (60, expected[59].hash));

    // A snapshot writes the records it covers first.
    journal.write_snapshot(&State::fold(&expected[..=57])).expect("snapshots");
    assert_eq!(journal.open_block_len(), 0);
    check_every_read(&journal, &expected);
    drop(journal);
    check_every_read(&reopen(dir.path()).expect("reopens"), &expected);
}

/// `records` and `records_unverified` from every seq, `get` of every seq, and rebuilds.
#[track_caller]
fn check_every_read(journal: &Journal, expected: &[Envelope]) {
    for from in 0..=expected.len() {
        let tail: Vec<Envelope> = journal.records(from as u64).collect::<Result<_, _>>().expect("reads");
        assert_eq!(tail, expected[from..], "records({from})");
        let trusted: Vec<Envelope> = journal.records_unverified(from as u64).collect::<Result<_, _>>().expect("reads");
        assert_eq!(trusted, expected[from..], "records_unverified({from})");
    }
    for env in expected {
        assert_eq!(journal.get(env.seq).expect("reads").as_ref(), Some(env), "get({})", env.seq);
    }
    assert_eq!(journal.get(expected.len() as u64).expect("reads"), None);
    for to in [0, 17, expected.len() - 1] {
        let rebuilt = journal.rebuild(Some(to as u64)).expect("rebuilds");
        assert_eq!(rebuilt.digest(), State::fold(&expected[..=to]).digest(), "rebuild(Some({to}))");
    }
}

#[test]
fn get_finds_every_record_inside_stored_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, envelopes) = journal_with(dir.path(), &items(300));
    drop(journal);
    let journal = reopen(dir.path()).expect("reopens");
    assert_eq!(journal.open_block_len(), 0);
    check_every_read(&journal, &envelopes);
}

/// Byte offsets of the frames of a stored block (`len u32 BE ‖ record`).
fn frame_offsets(block: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < block.len() {
        offsets.push(at);
        let len = u32::from_be_bytes(block[at..at + 4].try_into().expect("4 bytes"));
        at += 4 + len as usize;
    }
    offsets
}

/// Rewrites the stored block with key `key`.
fn edit_block(dir: &Path, key: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    with_sled(dir, |events, _, _| {
        let mut block = events.get(key.to_be_bytes()).expect("reads").expect("the block exists").to_vec();
        edit(&mut block);
        events.insert(key.to_be_bytes(), block).expect("writes");
    });
}

#[test]
fn broken_block_framing_names_the_seq_where_reading_fails() {
    struct Case {
        name: &'static str,
        /// Gets the block and the seq of its first record; returns the seq to name.
        edit: fn(&mut Vec<u8>, u64) -> u64,
    }
    let cases = [
        Case {
            name: "the first length runs past the block",
            edit: |block, key| {
                block[..4].copy_from_slice(&u32::MAX.to_be_bytes());
                key
            },
        },
        Case {
            name: "a length inside the block runs past it",
            edit: |block, key| {
                let fourth = frame_offsets(block)[3];
                block[fourth..fourth + 4].copy_from_slice(&100_000u32.to_be_bytes());
                key + 3
            },
        },
        Case {
            name: "trailing bytes too short for a length",
            edit: |block, key| {
                let records = frame_offsets(block).len() as u64;
                block.extend_from_slice(&[0, 1]);
                key + records
            },
        },
    ];
    for case in &cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, envelopes) = journal_with(dir.path(), &items(200));
        drop(journal);
        let blocks = blocks(dir.path());
        // A block in the middle, so reading reaches it from both sides.
        let (key, _, _) = blocks[blocks.len() / 2];
        let mut bad_seq = 0;
        edit_block(dir.path(), key, |block| bad_seq = (case.edit)(block, key));
        let journal = reopen(dir.path()).expect("opens: the last block is intact");
        match verify::journal(&journal) {
            Err(StoreError::Corrupt { seq, problem, .. }) => {
                assert_eq!(seq, bad_seq, "{}: {problem}", case.name);
                assert!(problem.contains("block framing broken"), "{}: {problem}", case.name);
            }
            other => panic!("{}: verify said {other:?}", case.name),
        }
        let read: Vec<_> = journal.records(0).collect();
        assert_eq!(read.len() as u64, bad_seq + 1, "{}: every record before it, then the error", case.name);
        let intact: Vec<Envelope> =
            read[..bad_seq as usize].iter().map(|r| r.as_ref().expect("intact").clone()).collect();
        assert_eq!(intact, envelopes[..bad_seq as usize], "{}", case.name);
    }
}

#[test]
fn a_broken_last_block_refuses_appends_naming_the_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _) = journal_with(dir.path(), &items(100));
    drop(journal);
    let (key, _, _) = *blocks(dir.path()).last().expect("blocks");
    let mut bad_seq = 0;
    edit_block(dir.path(), key, |block| {
        let second = frame_offsets(block)[1];
        block[second..second + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        bad_seq = key + 1;
    });
    let mut journal = reopen(dir.path()).expect("opens for inspection");
    let error = journal.append(0, "", &Event::ClockTicked).expect_err("appending after a broken block");
    assert!(
        matches!(&error, StoreError::Corrupt { seq, problem, .. } if *seq == bad_seq && problem.contains("refusing to append")),
        "{error:?}"
    );
}

/// A tampering of a long journal, read with the hash-check thread.
struct Tamper {
    name: &'static str,
    change: fn(&sled::Db),
    /// The record changed: every record before it must come back as written.
    altered: u64,
    first_bad_seq: u64,
    problem: &'static str,
}

fn flip(db: &sled::Db, seq: u64, at: usize) {
    let mut record = stored::record(db, seq).expect("exists");
    let at = at.min(record.len() - 1);
    record[at] ^= 0x01;
    stored::replace(db, seq, Some(&record));
}

/// `n` events: the varied workload, repeated.
fn many(n: usize) -> Vec<Item> {
    items(500).into_iter().cycle().take(n).collect()
}

#[test]
fn a_long_verified_read_checks_hashes_ahead_and_stops_at_the_first_bad_seq() {
    let len = CHECKER_MIN_RECORDS + 1500;
    let all = many(len as usize);
    let cases = [
        Tamper {
            name: "a flipped body byte, deep",
            change: |db| flip(db, 5000, 80),
            altered: 5000,
            first_bad_seq: 5000,
            problem: "hash",
        },
        Tamper {
            name: "a flipped stored hash",
            change: |db| flip(db, 4500, 50),
            altered: 4500,
            first_bad_seq: 4500,
            problem: "hash",
        },
        Tamper {
            name: "the first record",
            change: |db| flip(db, 0, 72),
            altered: 0,
            first_bad_seq: 0,
            problem: "hash",
        },
        Tamper {
            name: "the last record",
            change: |db| flip(db, 5595, 90),
            altered: 5595,
            first_bad_seq: 5595,
            problem: "hash",
        },
        Tamper {
            name: "a deleted record",
            change: |db| stored::replace(db, 3000, None),
            altered: 3000,
            first_bad_seq: 3000,
            problem: "missing",
        },
        Tamper {
            name: "a re-hashed record breaks the next link",
            change: |db| {
                let record = stored::record(db, 2000).expect("exists");
                let raw = codec::RawRecord::split(&record).expect("splits");
                let env = raw.decode().expect("decodes");
                let body = codec::encode_body(env.time_ms + 1, &env.trader, &env.event);
                stored::replace(db, 2000, Some(&codec::encode_record(2000, &raw.prev_hash, &body).1));
            },
            // The forged record is consistent in itself; its successor's link gives it away.
            altered: 2000,
            first_bad_seq: 2001,
            problem: "chain broken",
        },
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, expected) = journal_with(&dir.path().join("intact"), &all);
    assert_eq!(expected.len() as u64, len);
    assert_eq!(verify::journal(&journal).expect("verifies").events, len);
    // From the middle of a block deep in the journal, and stopping early.
    let tail: Vec<Envelope> = journal.records(4321).collect::<Result<_, _>>().expect("reads");
    assert_eq!(tail, expected[4321..]);
    let first_two: Vec<_> = journal.records(0).take(2).collect::<Result<_, _>>().expect("reads");
    assert_eq!(first_two, expected[..2], "an iterator dropped early stops its thread");
    drop(journal);

    for case in &cases {
        let path = dir.path().join(case.name);
        drop(journal_with(&path, &all));
        with_sled(&path, |_, _, db| (case.change)(db));
        let journal = reopen(&path).expect("opens");
        let read: Vec<_> = journal.records(0).collect();
        let error = read.last().expect("something read").as_ref().expect_err("ends in the error");
        match error {
            StoreError::Corrupt { seq, problem, .. } => {
                assert_eq!(*seq, case.first_bad_seq, "{}: {problem}", case.name);
                assert!(problem.contains(case.problem), "{}: {problem}", case.name);
            }
            other => panic!("{}: {other:?}", case.name),
        }
        assert_eq!(read.len() as u64, case.first_bad_seq + 1, "{}: no record after the bad one", case.name);
        for (got, want) in read.iter().zip(&expected[..case.altered as usize]) {
            assert_eq!(got.as_ref().ok(), Some(want), "{}: the records before it are yielded as written", case.name);
        }
    }
}

#[test]
fn a_codec_v1_journal_opens_verifies_appends_and_folds_like_v2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = items(80);
    let write = |path: &Path, codec_version: u16, range: std::ops::Range<usize>| {
        let mut journal = match codec_version {
            0 => reopen(path).expect("reopens"),
            v => Journal::create_with_codec(path, Durability::None, v).expect("creates"),
        };
        let (singles, batch) = all[range].split_at(10);
        for (time_ms, trader, event) in singles {
            journal.append(*time_ms, trader, event).expect("appends");
        }
        journal.append_batch(batch.iter().map(|(t, trader, e)| (*t, trader.as_str(), e))).expect("appends");
    };
    let v1 = dir.path().join("v1");
    write(&v1, 1, 0..40);
    let journal = reopen(&v1).expect("a codec v1 journal opens");
    assert_eq!(journal.header().codec_version, 1);
    assert_eq!(verify::journal(&journal).expect("verifies").events, 40);
    drop(journal);
    write(&v1, 0, 40..80);
    let blocks = blocks(&v1);
    assert!(blocks.iter().enumerate().all(|(i, &(key, records, _))| key == i as u64 && records == 1), "{blocks:?}");

    let v2 = dir.path().join("v2");
    write(&v2, codec::CODEC_VERSION, 0..40);
    write(&v2, 0, 40..80);
    let (v1, v2) = (reopen(&v1).expect("reopens"), reopen(&v2).expect("reopens"));
    assert_eq!(v2.header().codec_version, codec::CODEC_VERSION);
    let (report_v1, report_v2) = (verify::journal(&v1).expect("verifies"), verify::journal(&v2).expect("verifies"));
    assert_eq!(report_v1, report_v2, "the same events fold to the same digest and head");
    assert_eq!(report_v1.events, 80);
    assert_eq!(read_all(&v1), read_all(&v2));
    check_every_read(&v1, &chain(&all));
}
