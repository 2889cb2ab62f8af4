//! The sled store: lifecycle, durability reporting, refusing the wrong
//! directories and versions, snapshots and rebuilds, and tamper detection by
//! `verify::journal`, naming the first bad sequence number.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    time::{Duration, Instant},
};

use common::{items, journal_with, journal_with_codec, key, read_all, reopen, retry_while_locked, with_sled};
use journal::{
    codec::{self, Header},
    hash,
    state::State,
    testkit::{arb_item, chain, stored},
    verify, Durability, Event, Journal, StoreError,
};
use proptest::{collection::vec, prelude::*, sample::Index};

fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("lists")
        .map(|entry| {
            let entry = entry.expect("entry");
            let bytes = fs::read(entry.path()).unwrap_or_default();
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// Polls until `done` (the group-commit flusher may run on another thread).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn create_append_reopen_recovers_next_seq_and_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j");
    let all = items(12);
    let expected = chain(&all);
    let (journal, envelopes) = journal_with(&path, &all[..7]);
    assert_eq!(journal.len(), 7);
    assert_eq!(envelopes, expected[..7], "records read back as chained by the testkit (same bytes, same hashes)");
    let head = journal.last_hash();
    assert_eq!(head, expected[6].hash);
    drop(journal);

    let mut journal = reopen(&path).expect("reopens");
    assert_eq!((journal.len(), journal.last_hash()), (7, head), "next seq and head recovered from the last record");
    assert_eq!(journal.durable_through(), Some(6), "what was read back from disk is durable");
    for (time_ms, trader, event) in &all[7..] {
        journal.append(*time_ms, trader, event).expect("appends after reopen");
    }
    assert_eq!(
        journal.get(7).expect("reads").expect("exists").prev_hash,
        head,
        "the first new record links to the old head"
    );
    assert_eq!(read_all(&journal), expected, "the chain continues as if never closed");
    let report = verify::journal(&journal).expect("verifies");
    assert_eq!((report.events, report.head), (12, expected[11].hash));
}

#[test]
fn open_or_create_creates_then_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new");
    let mut journal = Journal::open_or_create(&path, Durability::None).expect("creates a missing journal");
    journal.append(1, "alice", &Event::ClockTicked).expect("appends");
    drop(journal);
    let journal =
        retry_while_locked(|| Journal::open_or_create(&path, Durability::None)).expect("opens the existing one");
    assert_eq!(journal.len(), 1);
}

#[test]
fn append_batch_is_dense_chained_and_all_there_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("j");
    let all = items(9);
    let expected = chain(&all);
    let (mut journal, _) = journal_with(&path, &all[..2]);
    let batch: Vec<_> = all[2..].iter().map(|(t, trader, e)| (*t, trader.as_str(), e)).collect();
    let appended = journal.append_batch(batch).expect("appends a batch");
    let seqs: Vec<u64> = appended.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (2..9).collect::<Vec<_>>(), "dense, continuing the journal");
    for a in &appended {
        assert_eq!(a.hash, expected[a.seq as usize].hash, "seq {}", a.seq);
    }
    assert_eq!(journal.append_batch(Vec::new()).expect("an empty batch").len(), 0);
    assert_eq!(journal.len(), 9, "an empty batch appends nothing");
    drop(journal);
    let journal = reopen(&path).expect("reopens");
    assert_eq!(read_all(&journal), expected);
    verify::journal(&journal).expect("verifies");
}

#[test]
fn every_append_durability_reports_each_seq_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::create(&dir.path().join("j"), Durability::EveryAppend).expect("creates");
    assert_eq!(journal.durable_through(), None);
    let all = items(4);
    for (i, (t, trader, e)) in all.iter().enumerate() {
        let appended = journal.append(*t, trader, e).expect("appends");
        assert_eq!((appended.seq, appended.durable_through), (i as u64, Some(i as u64)));
    }
    let batch: Vec<_> = all.iter().map(|(t, trader, e)| (*t, trader.as_str(), e)).collect();
    for appended in journal.append_batch(batch).expect("appends a batch") {
        assert_eq!(appended.durable_through, Some(7), "seq {}: the whole batch is durable", appended.seq);
    }
}

#[test]
fn group_durability_waits_for_the_count_threshold_or_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal =
        Journal::create(&dir.path().join("j"), Durability::Group { max_delay_ms: 3_600_000, max_events: 4 })
            .expect("creates");
    for seq in 0..3 {
        let appended = journal.append(0, "alice", &Event::ClockTicked).expect("appends");
        assert_eq!((appended.seq, appended.durable_through), (seq, None), "below the threshold nothing is flushed");
    }
    assert_eq!(journal.durable_through(), None);
    journal.append(0, "alice", &Event::ClockTicked).expect("the fourth append reaches the threshold");
    eventually("seqs 0..=3 are durable", || journal.durable_through() == Some(3));
    let appended = journal.append(0, "alice", &Event::ClockTicked).expect("appends");
    assert_eq!(appended.durable_through, Some(3), "seq 4 alone is below the threshold");
    assert_eq!(journal.durable_through(), Some(3));
    journal.sync().expect("syncs");
    assert_eq!(journal.durable_through(), Some(4), "sync makes everything durable at once");
}

#[test]
fn group_durability_flushes_an_old_batch_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal =
        Journal::create(&dir.path().join("j"), Durability::Group { max_delay_ms: 200, max_events: 1_000 })
            .expect("creates");
    let appended = journal.append(0, "alice", &Event::ClockTicked).expect("appends");
    assert_eq!(appended.durable_through, None, "a fresh batch waits");
    journal.flush_if_due().expect("not due yet");
    assert_eq!(journal.durable_through(), None, "not yet 200 ms old");
    std::thread::sleep(Duration::from_millis(250));
    journal.flush_if_due().expect("due now");
    eventually("seq 0 is durable", || journal.durable_through() == Some(0));
}

#[test]
fn no_durability_reports_nothing_until_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::create(&dir.path().join("j"), Durability::None).expect("creates");
    for _ in 0..5 {
        assert_eq!(journal.append(0, "", &Event::ClockTicked).expect("appends").durable_through, None);
    }
    journal.sync().expect("syncs");
    assert_eq!(journal.durable_through(), Some(4));
}

#[test]
fn open_refuses_a_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope");
    let error = Journal::open(&path, Durability::None).expect_err("nothing there");
    assert!(matches!(&error, StoreError::Missing(p) if p == &path), "{error:?}");
    assert!(!path.exists(), "open must not create the directory");
}

#[test]
fn open_refuses_other_directories_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let other = dir.path().join("other");
    fs::create_dir(&other).expect("mkdir");
    fs::write(other.join("notes.txt"), b"not a journal").expect("writes");
    for path in [&empty, &other] {
        let before = listing(path);
        let error = Journal::open(path, Durability::None).expect_err("not a journal");
        assert!(matches!(&error, StoreError::NotAJournal(p) if p == path), "{error:?}");
        assert_eq!(listing(path), before, "{}: open created or changed files", path.display());
    }
}

#[test]
fn open_refuses_a_sled_database_without_a_journal_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = sled::open(dir.path()).expect("a plain sled database");
        db.insert(b"something", b"else").expect("inserts");
        db.flush().expect("flushes");
    }
    let error = reopen(dir.path()).expect_err("no header");
    assert!(matches!(error, StoreError::NotAJournal(_)), "{error:?}");
}

#[test]
fn create_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("keep.txt"), b"mine").expect("writes");
    let before = listing(dir.path());
    let error = Journal::create(dir.path(), Durability::None).expect_err("not empty");
    assert!(matches!(&error, StoreError::AlreadyExists(p) if p == dir.path()), "{error:?}");
    assert_eq!(listing(dir.path()), before, "create changed a directory it refused");

    let existing = dir.path().join("j");
    drop(Journal::create(&existing, Durability::None).expect("creates"));
    let error = Journal::create(&existing, Durability::None).expect_err("already a journal");
    assert!(matches!(error, StoreError::AlreadyExists(_)), "{error:?}");
}

#[test]
fn open_refuses_other_versions_with_a_clear_message() {
    struct Case {
        name: &'static str,
        header: Vec<u8>,
        check: fn(&StoreError) -> bool,
        message_parts: &'static [&'static str],
    }
    let newer_schema = Header { schema_version: codec::SCHEMA_VERSION + 1, ..Header::CURRENT };
    let newer_codec = Header { codec_version: codec::CODEC_VERSION + 1, ..Header::CURRENT };
    let older_codec = Header { codec_version: 0, ..Header::CURRENT };
    let cases = [
        Case {
            name: "newer schema",
            header: newer_schema.encode(),
            check: |e| matches!(e, StoreError::NewerVersion { codec: 2, schema: 3, .. }),
            message_parts: &[
                "written by a newer quantfold",
                "schema v3",
                "reads codec v1..=v2, schema v1..=v2",
                "upgrade quantfold",
            ],
        },
        Case {
            name: "newer codec",
            header: newer_codec.encode(),
            check: |e| matches!(e, StoreError::NewerVersion { codec: 3, .. }),
            message_parts: &["newer quantfold", "codec v3"],
        },
        Case {
            name: "older codec",
            header: older_codec.encode(),
            check: |e| matches!(e, StoreError::OlderVersion { codec: 0, .. }),
            message_parts: &["unsupported journal version (codec v0", "this build reads codec v1..=v2"],
        },
        Case {
            name: "garbage header",
            header: b"QFJOURNL?".to_vec(),
            check: |e| matches!(e, StoreError::NotAJournal(_)),
            message_parts: &["not a quantfold journal"],
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = journal_with(dir.path(), &items(3));
        drop(journal);
        with_sled(dir.path(), |_, _, db| {
            db.insert(b"header", case.header.clone()).expect("rewrites the header");
        });
        let error = reopen(dir.path()).expect_err(case.name);
        assert!((case.check)(&error), "{}: {error:?}", case.name);
        let message = error.to_string();
        for part in case.message_parts {
            assert!(message.contains(part), "{}: {message:?} lacks {part:?}", case.name);
        }
    }
}

#[test]
fn records_and_get_from_the_middle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, envelopes) = journal_with(dir.path(), &items(10));
    for from in [0, 1, 4, 9] {
        let tail: Vec<_> = journal.records(from).collect::<Result<_, _>>().expect("reads");
        assert_eq!(tail, envelopes[from as usize..], "records({from})");
        let unverified: Vec<_> = journal.records_unverified(from).collect::<Result<_, _>>().expect("reads");
        assert_eq!(unverified, tail, "records_unverified({from})");
    }
    assert_eq!(journal.records(10).count(), 0);
    assert_eq!(journal.records(1_000).count(), 0);
    assert_eq!(journal.get(5).expect("reads"), Some(envelopes[5].clone()));
    assert_eq!(journal.get(10).expect("reads"), None);
}

#[test]
fn snapshots_rebuild_to_any_seq_and_prune_keeps_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut journal, envelopes) = journal_with(dir.path(), &items(30));
    for seq in [4usize, 11, 19, 25] {
        journal.write_snapshot(&State::fold(&envelopes[..=seq])).expect("snapshots");
    }
    assert_eq!(journal.snapshot_seqs().expect("lists"), [4, 11, 19, 25]);
    assert_eq!(journal.latest_snapshot(Some(18)).expect("reads").and_then(|s| s.last_seq), Some(11));
    assert_eq!(journal.latest_snapshot(Some(3)).expect("reads"), None);
    assert_eq!(journal.latest_snapshot(None).expect("reads"), Some(State::fold(&envelopes[..=25])));
    for to in 0..envelopes.len() {
        let rebuilt = journal.rebuild(Some(to as u64)).expect("rebuilds");
        assert_eq!(rebuilt.digest(), State::fold(&envelopes[..=to]).digest(), "rebuild(Some({to}))");
    }
    let full = State::fold(&envelopes).digest();
    assert_eq!(journal.rebuild(None).expect("rebuilds").digest(), full);
    assert_eq!(journal.rebuild(Some(1_000)).expect("rebuilds").digest(), full, "past the end is the end");
    assert_eq!(verify::journal(&journal).expect("verifies").snapshots_checked, 4);

    assert_eq!(journal.prune_snapshots(2).expect("prunes"), 2);
    assert_eq!(journal.snapshot_seqs().expect("lists"), [19, 25], "the newest two stay");
    assert_eq!(journal.prune_snapshots(5).expect("prunes"), 0);
    assert_eq!(journal.rebuild(Some(12)).expect("rebuilds").digest(), State::fold(&envelopes[..=12]).digest());

    let beyond = State { last_seq: Some(30), ..State::default() };
    let error = journal.write_snapshot(&beyond).expect_err("no record 30");
    assert!(matches!(error, StoreError::Corrupt { seq: 30, .. }), "{error:?}");
    journal.write_snapshot(&State::default()).expect("an empty state has nothing to save");
    assert_eq!(journal.snapshot_seqs().expect("lists"), [19, 25]);
}

/// A tampering and the sequence number verify must name. `change` gets the
/// database (records are reached through `testkit::stored`) and the snapshots tree.
struct Tamper {
    name: &'static str,
    change: fn(&sled::Db, &sled::Tree),
    first_bad_seq: u64,
    problem: &'static str,
}

/// Byte offsets in a record: seq 0..8, prev_hash 8..40, hash 40..72, body 72..
const BODY_LAST: usize = usize::MAX;

/// Flips one bit of the record at `seq`, wherever its block keeps it.
fn flip(db: &sled::Db, seq: u64, at: usize) {
    let mut record = stored::record(db, seq).expect("the record exists");
    let at = at.min(record.len() - 1);
    record[at] ^= 0x01;
    stored::replace(db, seq, Some(&record));
}

fn flip_snapshot(snapshots: &sled::Tree, seq: u64, at: usize) {
    let mut value = snapshots.get(key(seq)).expect("reads").expect("exists").to_vec();
    value[at] ^= 0x01;
    snapshots.insert(key(seq), value).expect("writes");
}

/// Replaces the snapshot at 6 by a well-formed one (right digest) of a wrong state.
fn forge_snapshot(snapshots: &sled::Tree, edit: fn(&mut State)) {
    let value = snapshots.get(key(6)).expect("reads").expect("exists");
    let mut state: State = codec::decode_value(&value[32..]).expect("decodes");
    edit(&mut state);
    let encoded = codec::encode_value(&state);
    let mut forged = hash::state(&encoded).0.to_vec();
    forged.extend_from_slice(&encoded);
    snapshots.insert(key(6), forged).expect("writes");
}

#[test]
fn verify_names_the_first_tampered_seq() {
    let cases = [
        Tamper {
            name: "a flipped body byte",
            change: |e, _| flip(e, 3, 72),
            first_bad_seq: 3,
            problem: "hash mismatch",
        },
        Tamper {
            name: "a flipped prev_hash byte",
            change: |e, _| flip(e, 5, 10),
            first_bad_seq: 5,
            problem: "chain broken",
        },
        Tamper {
            name: "a flipped stored hash byte",
            change: |e, _| flip(e, 5, 50),
            first_bad_seq: 5,
            problem: "hash mismatch",
        },
        Tamper { name: "a flipped seq byte", change: |e, _| flip(e, 2, 7), first_bad_seq: 2, problem: "misplaced" },
        Tamper {
            name: "the last record flipped",
            change: |e, _| flip(e, 9, BODY_LAST),
            first_bad_seq: 9,
            problem: "hash mismatch",
        },
        Tamper {
            name: "a deleted record",
            change: |e, _| stored::replace(e, 4, None),
            first_bad_seq: 4,
            problem: "missing",
        },
        Tamper {
            name: "two records swapped",
            change: |e, _| {
                let (a, b) = (stored::record(e, 3).unwrap(), stored::record(e, 7).unwrap());
                stored::replace(e, 3, Some(&b));
                stored::replace(e, 7, Some(&a));
            },
            first_bad_seq: 3,
            problem: "misplaced",
        },
        Tamper {
            name: "a truncated record",
            change: |e, _| {
                let record = stored::record(e, 8).unwrap();
                stored::replace(e, 8, Some(&record[..20]));
            },
            first_bad_seq: 8,
            problem: "shorter",
        },
        Tamper {
            name: "a record rewritten with a recomputed hash (the next link breaks)",
            change: |e, _| {
                let record = stored::record(e, 4).unwrap();
                let raw = codec::RawRecord::split(&record).unwrap();
                let original = raw.decode().unwrap();
                let body = codec::encode_body(original.time_ms + 1, &original.trader, &original.event);
                stored::replace(e, 4, Some(&codec::encode_record(4, &raw.prev_hash, &body).1));
            },
            first_bad_seq: 5,
            problem: "chain broken",
        },
        Tamper {
            name: "a flipped snapshot byte",
            change: |_, s| flip_snapshot(s, 6, 40),
            first_bad_seq: 6,
            problem: "snapshot: digest",
        },
        Tamper {
            name: "a well-formed snapshot of the wrong state",
            change: |_, s| forge_snapshot(s, |state| state.events_applied += 1),
            first_bad_seq: 6,
            problem: "differs from the fold",
        },
        Tamper {
            name: "a snapshot moved to another seq",
            change: |_, s| {
                let value = s.remove(key(6)).unwrap().unwrap();
                s.insert(key(2), value).unwrap();
            },
            first_bad_seq: 2,
            problem: "wrong sequence number",
        },
        Tamper {
            name: "a snapshot past the last record",
            change: |_, s| {
                let value = s.get(key(6)).unwrap().unwrap();
                s.insert(key(20), value).unwrap();
            },
            first_bad_seq: 20,
            problem: "beyond the last record",
        },
    ];
    // Codec v1 keeps one record per value, v2 packs them into blocks: the same
    // tampering must be named the same way in both.
    for codec_version in [1, codec::CODEC_VERSION] {
        for case in &cases {
            let name = format!("codec v{codec_version}: {}", case.name);
            let dir = tempfile::tempdir().expect("tempdir");
            let (mut journal, envelopes) = journal_with_codec(dir.path(), &items(10), codec_version);
            journal.write_snapshot(&State::fold(&envelopes[..=6])).expect("snapshots");
            verify::journal(&journal).expect("intact before tampering");
            drop(journal);
            with_sled(dir.path(), |_, snapshots, db| (case.change)(db, snapshots));
            let journal = reopen(dir.path()).expect("a tampered journal still opens for verify");
            match verify::journal(&journal) {
                Err(StoreError::Corrupt { seq, problem, .. }) => {
                    assert_eq!(seq, case.first_bad_seq, "{name}: {problem}");
                    assert!(problem.contains(case.problem), "{name}: {problem:?} lacks {:?}", case.problem);
                }
                other => panic!("{name}: verify said {other:?}"),
            }
        }
    }
}

#[test]
fn a_damaged_last_record_refuses_appends_and_rebuild_refuses_a_foreign_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut journal, envelopes) = journal_with(dir.path(), &items(10));
    journal.write_snapshot(&State::fold(&envelopes[..=6])).expect("snapshots");
    drop(journal);
    with_sled(dir.path(), |_, snapshots, db| {
        flip(db, 9, BODY_LAST);
        // Same digest rules, but a chain position from another journal.
        forge_snapshot(snapshots, |state| state.last_hash = hash::content("elsewhere"));
    });
    let mut journal = reopen(dir.path()).expect("opens");
    let error = journal.append(0, "", &Event::ClockTicked).expect_err("appending onto garbage");
    assert!(
        matches!(&error, StoreError::Corrupt { seq: 9, problem, .. } if problem.contains("refusing to append")),
        "{error:?}"
    );
    assert_eq!(journal.len(), 10, "nothing was appended");
    let error = journal.rebuild(Some(7)).expect_err("the snapshot is not on this chain");
    assert!(matches!(error, StoreError::Corrupt { seq: 6, .. }), "{error:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Through a real journal: fold a prefix, snapshot it, and the rebuild (the
    /// latest snapshot plus the tail) equals folding everything; so does the
    /// snapshot read back with the records after it folded on top.
    #[test]
    fn prop_snapshot_then_tail_equals_full_fold(items in vec(arb_item(), 1..40), cut in any::<Index>(), batched in any::<bool>()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::create(dir.path(), Durability::None).expect("creates");
        if batched {
            journal.append_batch(items.iter().map(|(t, trader, e)| (*t, trader.as_str(), e))).expect("appends");
        } else {
            for (t, trader, e) in &items {
                journal.append(*t, trader, e).expect("appends");
            }
        }
        let envelopes = chain(&items);
        prop_assert_eq!(journal.last_hash(), envelopes.last().expect("non-empty").hash);
        let cut = cut.index(items.len());
        let prefix = State::fold(&envelopes[..=cut]);
        journal.write_snapshot(&prefix).expect("snapshots");
        let full = State::fold(&envelopes).digest();

        prop_assert_eq!(journal.rebuild(None).expect("rebuilds").digest(), full);
        let mut resumed = journal.latest_snapshot(None).expect("reads").expect("exists");
        prop_assert_eq!(resumed.digest(), prefix.digest());
        for record in journal.records(cut as u64 + 1) {
            resumed.apply(&record.expect("reads"));
        }
        prop_assert_eq!(resumed.digest(), full);
        prop_assert_eq!(verify::journal(&journal).expect("verifies").state_digest, full);
    }
}

#[test]
fn a_journal_reopens_right_after_it_is_dropped_and_a_held_one_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("j");
    for round in 0..20 {
        let mut journal = Journal::open_or_create(&path, Durability::None).expect("reopens after a drop");
        journal.append(round, "t", &journal::Event::ClockTicked).unwrap();
        journal.sync().unwrap();
    }
    let held = Journal::open(&path, Durability::None).unwrap();
    assert_eq!(held.len(), 20);
    let err = Journal::open(&path, Durability::None).expect_err("the lock is held");
    assert!(err.to_string().contains("in use by another process"), "{err}");
}
