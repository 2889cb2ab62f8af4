//! `quantfold journal ...` as a user runs it: the real binary, real sled journals.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok, p, stdout};
use journal::testkit::stored;

const SMALL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/journals/small.input.jsonl");

/// A fresh journal holding the small fixture's 13 events.
fn small_journal(tmp: &Path) -> PathBuf {
    let dir = tmp.join("journal");
    ok(&["journal", "import", dir.to_str().unwrap(), "--jsonl", SMALL]);
    dir
}

#[test]
fn import_verify_export_round_trip_is_lossless() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    let verified = stdout(&ok(&["journal", "verify", p(&dir)]));
    assert!(verified.starts_with("ok: 13 events, 0 snapshots, 1 traders"), "{verified}");

    let first = tmp.path().join("first.jsonl");
    ok(&["journal", "export", p(&dir), "--jsonl", p(&first)]);
    let again = tmp.path().join("again");
    ok(&["journal", "import", p(&again), "--jsonl", p(&first)]);
    let second = tmp.path().join("second.jsonl");
    ok(&["journal", "export", p(&again), "--jsonl", p(&second)]);
    let (a, b) = (std::fs::read_to_string(&first).unwrap(), std::fs::read_to_string(&second).unwrap());
    assert_eq!(a, b, "export -> import -> export must be byte-identical");
    assert_eq!(a.lines().count(), 14, "header + 13 events");
    // Exact decimals and the NaN series value survive as written.
    assert!(a.contains(r#""volume":"1.549151""#));
    assert!(a.contains(r#""qty":"0.050""#), "scale of 0.050 is kept");
    assert!(a.contains(r#""value":"NaN""#));
}

#[test]
fn inspect_table_json_filters_and_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    let table = stdout(&ok(&["journal", "inspect", p(&dir)]));
    assert!(table.contains("OrderFilled") && table.contains("17206.64"), "{table}");
    assert!(table.contains("13 of 13 events shown"));

    let json = stdout(&ok(&["journal", "inspect", p(&dir), "--json", "--from", "3", "--limit", "2"]));
    let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["seq"], 3);
    assert_eq!(lines[1]["seq"], 4);
    assert_eq!(lines[0]["event"]["KlineReceived"]["close"], "17205");

    let shared = stdout(&ok(&["journal", "inspect", p(&dir), "--json", "--trader", "-"]));
    let seqs: Vec<u64> = shared
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [0, 3, 6], "only the trader-less market events");
}

#[test]
fn verify_names_the_first_tampered_sequence_number() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    {
        let db = sled::open(&dir).unwrap();
        let mut record = stored::record(&db, 7).unwrap();
        let last = record.len() - 3;
        record[last] ^= 0x01;
        stored::replace(&db, 7, Some(&record));
        db.flush().unwrap();
    }
    let err = fails(&["journal", "verify", p(&dir)]);
    assert!(err.contains("seq 7") && err.contains("hash mismatch"), "{err}");
    // Records before the damage are still readable.
    let json = stdout(&ok(&["journal", "inspect", p(&dir), "--json", "--limit", "7"]));
    assert_eq!(json.lines().count(), 7);
}

#[test]
fn verify_names_a_deleted_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    {
        let db = sled::open(&dir).unwrap();
        stored::replace(&db, 5, None);
        db.flush().unwrap();
    }
    let err = fails(&["journal", "verify", p(&dir)]);
    assert!(err.contains("seq 5") && err.contains("missing"), "{err}");
}

#[test]
fn import_refuses_a_bad_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    let bad = tmp.path().join("bad.jsonl");
    let mut text = std::fs::read_to_string(SMALL).unwrap();
    text.push_str("{\"time_ms\":1,\"trader\":\"x\",\"event\":{\"NoSuchEvent\":{}}}\n");
    std::fs::write(&bad, text).unwrap();
    let err = fails(&["journal", "import", p(&dir), "--jsonl", p(&bad)]);
    assert!(err.contains("bad.jsonl") && err.contains("line 15"), "{err}");
    let verified = stdout(&ok(&["journal", "verify", p(&dir)]));
    assert!(verified.starts_with("ok: 13 events"), "nothing appended: {verified}");

    let not_export = tmp.path().join("plain.jsonl");
    std::fs::write(&not_export, "{\"hello\":1}\n").unwrap();
    let err = fails(&["journal", "import", p(&tmp.path().join("other")), "--jsonl", p(&not_export)]);
    assert!(err.contains("line 1") && err.contains("not a quantfold journal export"), "{err}");
}

#[test]
fn import_refuses_a_journal_with_a_broken_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    {
        let db = sled::open(&dir).unwrap();
        let (r2, r3) = (stored::record(&db, 2).unwrap(), stored::record(&db, 3).unwrap());
        stored::replace(&db, 2, Some(&r3));
        stored::replace(&db, 3, Some(&r2));
        db.flush().unwrap();
    }
    let err = fails(&["journal", "import", p(&dir), "--jsonl", SMALL]);
    assert!(err.contains("refusing to import") && err.contains("seq 2"), "{err}");
}

#[test]
fn bad_directories_get_clear_errors_and_stay_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let err = fails(&["journal", "verify", p(&missing)]);
    assert!(err.contains("no such directory"), "{err}");
    assert!(!missing.exists());

    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    for args in [["journal", "verify", p(&other)], ["journal", "inspect", p(&other)]] {
        let err = fails(&args);
        assert!(err.contains("not a quantfold journal"), "{err}");
    }
    let names: Vec<_> = std::fs::read_dir(&other).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["notes.txt"], "nothing written into a directory that is not a journal");
}

#[test]
fn a_journal_from_a_newer_quantfold_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    {
        let db = sled::open(&dir).unwrap();
        let mut header = b"QFJOURNL".to_vec();
        header.extend_from_slice(&1u16.to_be_bytes());
        header.extend_from_slice(&99u16.to_be_bytes());
        db.insert("header", header).unwrap();
        db.flush().unwrap();
    }
    let err = fails(&["journal", "inspect", p(&dir)]);
    assert!(err.contains("newer quantfold") && err.contains("schema v99"), "{err}");
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/journals/golden_sma_cross_bybit_1m.jsonl");

#[test]
fn verify_names_the_newest_records_deleted_and_recover_gets_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_journal(tmp.path());
    let before = tmp.path().join("before.jsonl");
    ok(&["journal", "export", p(&dir), "--jsonl", p(&before)]);
    {
        let db = sled::open(&dir).unwrap();
        stored::replace(&db, 12, None);
        stored::replace(&db, 11, None);
        db.flush().unwrap();
    }
    let err = fails(&["journal", "verify", p(&dir)]);
    assert!(err.contains("records 11..12 are missing: the durable head says seq 12, hash "), "{err}");
    assert!(err.contains("the segment files hold seq 0..=12 intact") && err.contains("journal recover"), "{err}");
    // `replay verify` walks only the records there are, and must not call the shorter journal reproduced.
    let err = fails(&["replay", "verify", "--journal", p(&dir)]);
    assert!(err.contains("records 11..12 are missing"), "{err}");

    let saved = tmp.path().join("saved");
    let out = stdout(&ok(&["journal", "recover", p(&dir), "--to", p(&saved)]));
    assert!(out.contains("recovered 13 events (seq 0..=12)") && out.contains("nothing durable was lost"), "{out}");
    let after = tmp.path().join("after.jsonl");
    ok(&["journal", "export", p(&saved), "--jsonl", p(&after)]);
    assert_eq!(std::fs::read_to_string(&before).unwrap(), std::fs::read_to_string(&after).unwrap());
}

#[test]
fn recover_saves_every_event_of_a_journal_whose_database_file_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("golden");
    ok(&["journal", "import", p(&dir), "--jsonl", GOLDEN]);
    let before = tmp.path().join("before.jsonl");
    ok(&["journal", "export", p(&dir), "--jsonl", p(&before)]);
    // Cut sled's data file to a third of its length, as a bad disk or a careless copy would.
    let db = std::fs::OpenOptions::new().write(true).open(dir.join("db")).unwrap();
    let len = db.metadata().unwrap().len();
    db.set_len(len / 3).unwrap();
    drop(db);

    let err = fails(&["journal", "verify", p(&dir)]);
    assert!(!err.contains("backtrace"), "a raw sled error: {err}");
    assert!(err.contains("the segment files hold seq 0..=1781 intact"), "{err}");

    let saved = tmp.path().join("saved");
    let out = stdout(&ok(&["journal", "recover", p(&dir), "--to", p(&saved)]));
    assert!(out.contains("recovered 1782 events (seq 0..=1781)"), "{out}");
    let verified = stdout(&ok(&["journal", "verify", p(&saved)]));
    assert!(verified.starts_with("ok: 1782 events"), "{verified}");
    let after = tmp.path().join("after.jsonl");
    ok(&["journal", "export", p(&saved), "--jsonl", p(&after)]);
    assert_eq!(std::fs::read_to_string(&before).unwrap(), std::fs::read_to_string(&after).unwrap(), "event for event");

    // The target must be new: recover never writes over a journal.
    let err = fails(&["journal", "recover", p(&dir), "--to", p(&saved)]);
    assert!(err.contains("already exists and is not empty"), "{err}");
}
