//! The three holes of issue #11, each closed with a real journal on disk:
//!
//! 1. a SIGKILL at any moment of `Journal::create` leaves no journal or a valid
//!    empty one (a real child process, killed at seeded moments);
//! 2. deleting the newest durable records is reported, naming the missing range
//!    from the durable head file, while a head left behind by a crash is fine;
//! 3. seeded byte flips and truncations of sled's data file and of the segment
//!    files are harmless or detected, and `recover` keeps every event.
//!
//! Reproduce a failure with the seed it prints: `QF_DURABILITY_SEED=<seed>
//! cargo test -p journal --test durability`.

mod common;

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use common::{items, read_all, reopen, with_sled};
use journal::{
    store::{self, leftovers, Head},
    testkit::stored,
    verify, Durability, Envelope, Event, Journal, StoreError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Set for the create child: the directory it creates journals in, one after another.
const CREATE_CHILD_DIR_ENV: &str = "QF_CREATE_CHILD_DIR";
const SEED_ENV: &str = "QF_DURABILITY_SEED";
const DEFAULT_SEED: u64 = 20_261_204;

fn seed() -> u64 {
    std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED)
}

fn is_child() -> bool {
    std::env::var_os(CREATE_CHILD_DIR_ENV).is_some()
}

fn journal_name(n: u64) -> String {
    format!("j-{n}")
}

/// The child: creates `j-0`, `j-1`, … in its directory until it is killed,
/// printing `created <n>` after each.
#[test]
fn create_child() {
    let Some(dir) = std::env::var_os(CREATE_CHILD_DIR_ENV) else { return };
    let dir = PathBuf::from(dir);
    let mut stdout = std::io::stdout();
    writeln!(stdout, "\nready").expect("stdout");
    stdout.flush().expect("stdout");
    for n in 0.. {
        let journal = Journal::create(&dir.join(journal_name(n)), Durability::None).expect("the child creates");
        drop(journal);
        writeln!(stdout, "created {n}").expect("stdout");
        stdout.flush().expect("stdout");
    }
}

#[test]
fn a_kill_at_any_moment_of_create_leaves_nothing_or_a_valid_empty_journal() {
    if is_child() {
        return;
    }
    const KILLS: usize = 20;
    let seed = seed();
    println!("create-kill seed {seed} (override with {SEED_ENV})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let root = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let (mut with_leftover, mut created_total) = (0usize, 0u64);
    for kill in 0..KILLS {
        let dir = root.path().join(format!("kill-{kill}"));
        fs::create_dir(&dir).expect("mkdir");
        // A create takes tens of milliseconds (fsyncs): some kills land in the
        // first, others after a few.
        let delay = Duration::from_micros(rng.random_range(0..150_000));
        let context = format!("seed {seed} kill {kill} after {delay:?}");
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", "create_child", "--nocapture", "--test-threads=1"])
            .env(CREATE_CHILD_DIR_ENV, &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{context}: cannot spawn the child: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = lines.recv_timeout(Duration::from_secs(60));
        if ready.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{context}: the child never got ready");
        }
        thread::sleep(delay);
        child.kill().unwrap_or_else(|e| panic!("{context}: SIGKILL failed: {e}"));
        child.wait().unwrap_or_else(|e| panic!("{context}: not reaped: {e}"));
        let created = lines.iter().filter(|l| l.starts_with("created ")).count() as u64;
        created_total += created;

        // Every journal the child named, and the one it was making when killed.
        for n in 0..=created {
            let path = dir.join(journal_name(n));
            let leftover = !leftovers(&path).is_empty();
            with_leftover += usize::from(leftover);
            if n < created || path.exists() {
                let journal = Journal::open(&path, Durability::None)
                    .unwrap_or_else(|e| panic!("{context}: {} does not open: {e}", path.display()));
                assert_eq!(journal.len(), 0, "{context}: {}", path.display());
                verify::journal(&journal).unwrap_or_else(|e| panic!("{context}: {} fails verify: {e}", path.display()));
            }
            // `--journal` reuses whatever is there: a journal, or nothing.
            let mut journal = Journal::open_or_create(&path, Durability::None)
                .unwrap_or_else(|e| panic!("{context}: {} cannot be reused: {e}", path.display()));
            journal.append(0, "", &Event::ClockTicked).expect("appends");
            journal.sync().expect("syncs");
            assert!(leftovers(&path).is_empty(), "{context}: the killed create's temporary directory is still there");
        }
    }
    println!(
        "{KILLS} kills in {:?}: {created_total} journals created, {with_leftover} kills left a half-made temporary",
        started.elapsed()
    );
    assert!(with_leftover > 0, "seed {seed}: no kill landed inside a create: the test proves nothing");
}

/// A journal at `dir` holding `n` varied events, flushed and closed.
fn closed_journal(dir: &Path, n: usize) -> Vec<Envelope> {
    let mut journal = Journal::create(dir, Durability::GROUP_DEFAULT).expect("creates");
    for (time_ms, trader, event) in &items(n) {
        journal.append(*time_ms, trader, event).expect("appends");
    }
    journal.sync().expect("syncs");
    let envelopes = read_all(&journal);
    drop(journal);
    envelopes
}

#[test]
fn deleting_the_newest_records_is_reported_with_the_missing_range() {
    if is_child() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("journal");
    let original = closed_journal(&dir, 300);
    let last = original.last().expect("records");
    with_sled(&dir, |_, _, db| {
        for seq in (293..300).rev() {
            stored::replace(db, seq, None);
        }
    });
    let mut journal = reopen(&dir).expect("a truncated journal still opens for reading");
    assert_eq!(journal.len(), 293, "the records are gone from sled");
    let error = verify::journal(&journal).expect_err("the truncation is detected");
    assert!(
        matches!(error, StoreError::Truncated { from: 293, head: Head { records: 300, hash }, .. } if hash == last.hash),
        "{error:?}"
    );
    let message = error.to_string();
    let expected = format!("records 293..299 are missing: the durable head says seq 299, hash {}", last.hash);
    assert!(message.contains(&expected) && message.contains("seq 0..=292 are intact"), "{message}");
    // Appending would hide the hole behind new records.
    let refused = journal.append(0, "", &Event::ClockTicked).expect_err("appends are refused");
    assert!(refused.to_string().contains("records 293..299 are missing"), "{refused}");
}

#[test]
fn a_head_left_behind_by_a_crash_verifies_and_catches_up() {
    if is_child() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("journal");
    let events = items(150);
    let mut journal = Journal::create(&dir, Durability::None).expect("creates");
    for (time_ms, trader, event) in &events[..100] {
        journal.append(*time_ms, trader, event).expect("appends");
    }
    journal.sync().expect("syncs");
    let head_at_100 = fs::read(dir.join("HEAD")).expect("the head file");
    for (time_ms, trader, event) in &events[100..] {
        journal.append(*time_ms, trader, event).expect("appends");
    }
    drop(journal);
    // A crash after sled's flush and before the head write leaves the old head.
    fs::write(dir.join("HEAD"), head_at_100).expect("restores the old head");
    let mut journal = reopen(&dir).expect("opens");
    assert_eq!(journal.durable_head().expect("reads").map(|h| h.records), Some(100));
    let report = verify::journal(&journal).expect("a head behind the records is a lower bound, not damage");
    assert_eq!(report.events, 150);
    journal.append(0, "", &Event::ClockTicked).expect("appends");
    journal.sync().expect("syncs");
    let head = journal.durable_head().expect("reads").expect("a head");
    assert_eq!((head.records, head.hash), (151, journal.last_hash()));
}

#[test]
fn a_rewritten_record_at_the_head_is_reported() {
    if is_child() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("journal");
    let original = closed_journal(&dir, 40);
    // The same events, one changed and re-chained: every hash is valid, but the head remembers.
    let mut forged = Journal::create(&root.path().join("forged"), Durability::None).expect("creates");
    for env in &original[..39] {
        forged.append(env.time_ms, &env.trader, &env.event).expect("appends");
    }
    forged.append(0, "", &Event::ClockTicked).expect("appends");
    drop(forged);
    let forged_dir = root.path().join("forged");
    fs::copy(dir.join("HEAD"), forged_dir.join("HEAD")).expect("the original head");
    let journal = reopen(&forged_dir).expect("opens");
    let error = verify::journal(&journal).expect_err("detected");
    assert!(error.to_string().contains("seq 39: the durable head says this record has hash"), "{error}");
}

/// Copies a closed journal directory (sled's files, the head, the segments).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copies");
        }
    }
}

/// What `verify` says of a journal directory: its report, or the error text. A
/// panic is a failure of the test: no panic may reach a user.
fn verify_dir(dir: &Path) -> Result<verify::Report, String> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let journal = Journal::open(dir, Durability::None).map_err(|e| e.to_string())?;
        verify::journal(&journal).map_err(|e| e.to_string())
    }));
    outcome.unwrap_or_else(|_| Err("PANIC".into()))
}

#[test]
fn flipped_bytes_and_truncations_cost_at_most_the_events_after_them() {
    if is_child() {
        return;
    }
    const CASES: usize = 24;
    let seed = seed();
    println!("damage seed {seed} (override with {SEED_ENV})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let root = tempfile::tempdir().expect("tempdir");
    let pristine = root.path().join("pristine");
    let original = closed_journal(&pristine, 2000);
    let report = verify_dir(&pristine).expect("the pristine journal verifies");
    let files = [PathBuf::from("db"), Path::new("segments").join("000001.seg")];
    let started = Instant::now();
    let (mut harmless, mut detected) = (0usize, 0usize);
    for case in 0..CASES {
        let file = &files[case % files.len()];
        let len = fs::metadata(pristine.join(file)).expect("stat").len();
        let offset = rng.random_range(0..len);
        let truncate = rng.random_range(0..4) == 0;
        let what = if truncate { "truncated at" } else { "flipped a byte at" };
        let context = format!("seed {seed} case {case}: {} {what} offset {offset} of {len}", file.display());
        let dir = root.path().join(format!("case-{case}"));
        copy_dir(&pristine, &dir);
        let path = dir.join(file);
        let mut bytes = fs::read(&path).expect("reads");
        if truncate {
            bytes.truncate(offset as usize);
        } else {
            bytes[offset as usize] ^= 1 << rng.random_range(0..8);
        }
        fs::write(&path, bytes).expect("writes");

        match verify_dir(&dir) {
            Ok(after) => {
                assert_eq!(after, report, "{context}: verify passed with a different result: silent damage");
                harmless += 1;
            }
            Err(message) => {
                println!("{context}: {message}");
                assert!(message != "PANIC", "{context}: verify panicked");
                assert!(!message.contains("backtrace"), "{context}: a raw sled error reached the user: {message}");
                detected += 1;
            }
        }

        let saved = dir.with_extension("recovered");
        let recovered = store::recover(&dir, &saved).unwrap_or_else(|e| panic!("{context}: recover failed: {e}"));
        let journal = Journal::open(&saved, Durability::None).expect("the recovered journal opens");
        let again = verify::journal(&journal).unwrap_or_else(|e| panic!("{context}: the recovered journal: {e}"));
        let records = read_all(&journal);
        // Only one file is damaged each time, and the other holds every event.
        assert_eq!(records.len(), original.len(), "{context}: recover lost events: {recovered:?}");
        for (got, want) in records.iter().zip(&original) {
            assert_eq!(got, want, "{context}: seq {} differs after recovery", want.seq);
        }
        assert_eq!((again.head, again.state_digest), (report.head, report.state_digest), "{context}");
        assert_eq!(recovered.lost(), None, "{context}");
        drop(journal);
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&saved);
    }
    println!("{CASES} cases in {:?}: {harmless} harmless, {detected} detected", started.elapsed());
    assert!(detected > 0, "seed {seed}: no damage was detected: the test proves nothing");
}

#[test]
fn recover_from_segments_alone_keeps_every_event_before_the_damaged_frame() {
    if is_child() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let pristine = root.path().join("journal");
    let original = closed_journal(&pristine, 2000);
    // sled is gone entirely, and a frame in the middle of the segments is damaged.
    fs::remove_file(pristine.join("db")).expect("removes sled's data");
    let segment = pristine.join("segments").join("000001.seg");
    let mut bytes = fs::read(&segment).expect("reads");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&segment, bytes).expect("writes");

    let saved = root.path().join("saved");
    let recovered = store::recover(&pristine, &saved).expect("recovers");
    let journal = Journal::open(&saved, Durability::None).expect("opens");
    verify::journal(&journal).expect("the recovered journal verifies");
    let records = read_all(&journal);
    assert!(records.len() > 500 && records.len() < original.len(), "{} of {}", records.len(), original.len());
    assert_eq!(records[..], original[..records.len()], "every event before the damage, event for event");
    assert_eq!(recovered.lost(), Some((records.len() as u64, original.len() as u64 - 1)));
    assert!(recovered.notes.iter().any(|n| n.contains("000001.seg at byte")), "{:?}", recovered.notes);
}
