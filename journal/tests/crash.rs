//! A real crash: this test binary re-runs itself as a child that appends to a
//! journal under group commit, and the parent SIGKILLs it at a random moment.
//! After every kill the journal must open, verify, hold every sequence number
//! the child saw reported durable, decode every record, contain no part of a
//! batch without the rest, and hold exactly what the child appended: the parent
//! regenerates the child's appends from its seed and compares every record.
//! The children are `#[ignore]`d tests that run only when spawned (`--ignored`).
//!
//! A second child stops with records in its open block (codec v2 packs
//! appends in memory until a block fills or a flush needs them): a kill loses
//! exactly those, and the journal reopens at the last synced record.
//!
//! Reproduce a failure with the seed it prints: `QF_CRASH_SEED=<seed> cargo test -p journal --test crash`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use journal::{
    testkit::{arb_item, workload_from_seed, Item},
    verify, Durability, Event, Journal,
};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Set for the child: the journal directory to append to.
const CHILD_DIR_ENV: &str = "QF_CRASH_CHILD_DIR";
/// Set for the open-block child: the journal directory to append to.
const OPEN_BLOCK_CHILD_DIR_ENV: &str = "QF_CRASH_OPEN_BLOCK_CHILD_DIR";
/// Records the open-block child syncs, and those it leaves in its open block.
const SYNCED: u64 = 100;
const UNSYNCED: u64 = 5;
/// Set for the child: the seed of what it appends.
const CHILD_SEED_ENV: &str = "QF_CRASH_CHILD_SEED";
/// Overrides the parent's seed.
const SEED_ENV: &str = "QF_CRASH_SEED";
const DEFAULT_SEED: u64 = 20_260_101;
const KILLS: usize = 32;
/// The notification channel that opens a batch: its message is "<batch id> <len>".
const BATCH_CHANNEL: &str = "\u{1}crash-test-batch";

/// The child: appends forever, printing `durable <seq>` whenever durability advances.
#[test]
#[ignore = "the crash test's child: runs only when the crash test spawns it"]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let seed: u64 = std::env::var(CHILD_SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut journal = Journal::open_or_create(Path::new(&dir), Durability::Group { max_delay_ms: 2, max_events: 64 })
        .expect("the child opens the journal");
    let mut appends = ChildAppends::new(seed);
    let mut stdout = std::io::stdout();
    // The leading newline ends libtest's "test crash_child_writer ... " line.
    writeln!(stdout, "\nready {}", journal.len()).expect("stdout");
    stdout.flush().expect("stdout");
    let mut reported = journal.durable_through();
    loop {
        let batch = appends.next_append();
        if batch.len() > 1 {
            journal
                .append_batch(batch.iter().map(|(t, trader, e)| (*t, trader.as_str(), e)))
                .expect("the child appends a batch");
        } else {
            let (time_ms, trader, event) = &batch[0];
            journal.append(*time_ms, trader, event).expect("the child appends");
        }
        if journal.durable_through() > reported {
            reported = journal.durable_through();
            writeln!(stdout, "durable {}", reported.expect("advanced past None")).expect("stdout");
            stdout.flush().expect("stdout");
        }
    }
}

/// What the child with a seed appends, one append (a record, or a batch opened by its
/// marker) at a time: the child appends it, the parent regenerates it to compare.
struct ChildAppends {
    items: Vec<Item>,
    rng: ChaCha8Rng,
    next: usize,
    batch_id: u64,
}

impl ChildAppends {
    fn new(seed: u64) -> ChildAppends {
        ChildAppends { items: child_items(seed), rng: ChaCha8Rng::seed_from_u64(seed), next: 0, batch_id: 0 }
    }

    fn item(&mut self) -> Item {
        let item = self.items[self.next % self.items.len()].clone();
        self.next += 1;
        item
    }

    fn next_append(&mut self) -> Vec<Item> {
        if self.rng.random_range(0..4) == 0 {
            let len = self.rng.random_range(2..12usize);
            let message = format!("{} {len}", self.batch_id);
            self.batch_id += 1;
            let marker = Event::NotificationSent { channel: BATCH_CHANNEL.into(), message };
            std::iter::once((0, String::new(), marker)).chain((1..len).map(|_| self.item())).collect()
        } else {
            vec![self.item()]
        }
    }
}

/// The records from `from` on must be, in order, what the child with `seed` appended.
fn check_contents(dir: &Path, context: &str, seed: u64, from: u64) {
    let journal = Journal::open(dir, Durability::None).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let mut expected = ChildAppends::new(seed);
    let mut pending = Vec::new().into_iter();
    for record in journal.records_unverified(from) {
        let env = record.unwrap_or_else(|e| panic!("{context}: {e}"));
        let (time_ms, trader, event) = pending.next().unwrap_or_else(|| {
            pending = expected.next_append().into_iter();
            pending.next().expect("an append has a record")
        });
        // Canonical bytes: a NaN in an arbitrary event equals itself.
        let want = journal::codec::encode_body(time_ms, &trader, &event);
        let got = journal::codec::encode_body(env.time_ms, &env.trader, &env.event);
        assert!(got == want, "{context}: seq {} is not what the child appended: {:?}", env.seq, env.event);
    }
}

/// Varied events: a trading session interleaved with arbitrary events of every kind.
fn child_items(seed: u64) -> Vec<Item> {
    let session = workload_from_seed(seed, 200).items();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let strategy = arb_item();
    let mut items = Vec::new();
    for (i, item) in session.into_iter().enumerate() {
        items.push(item);
        if i % 3 == 0 {
            items.push(strategy.new_tree(&mut runner).expect("generates").current());
        }
    }
    items
}

/// What the child printed, line by line.
enum Line {
    Ready(u64),
    Durable(u64),
}

struct Run {
    child: Child,
    lines: mpsc::Receiver<Line>,
    stderr: thread::JoinHandle<String>,
}

fn spawn_child(dir: &Path, seed: u64, context: &str) -> Run {
    spawn(
        &[(CHILD_DIR_ENV, dir.as_os_str()), (CHILD_SEED_ENV, seed.to_string().as_ref())],
        "crash_child_writer",
        context,
    )
}

fn spawn(env: &[(&str, &std::ffi::OsStr)], test: &str, context: &str) -> Run {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{context}: cannot spawn the child: {e}"));
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (send, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parsed = match line.split_once(' ') {
                Some(("ready", n)) => n.parse().ok().map(Line::Ready),
                Some(("durable", n)) => n.parse().ok().map(Line::Durable),
                _ => None,
            };
            if let Some(parsed) = parsed {
                if send.send(parsed).is_err() {
                    break;
                }
            }
        }
    });
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Run { child, lines, stderr }
}

/// Opens the journal after a kill and checks everything; returns its length.
fn check_after_kill(dir: &Path, context: &str, durable_max: Option<u64>, len_before: u64) -> u64 {
    let journal =
        Journal::open(dir, Durability::None).unwrap_or_else(|e| panic!("{context}: the journal does not open: {e}"));
    let report = verify::journal(&journal).unwrap_or_else(|e| panic!("{context}: verify failed: {e}"));
    let len = journal.len();
    assert_eq!(report.events, len, "{context}");
    if let Some(durable) = durable_max {
        assert!(len > durable, "{context}: seq {durable} was reported durable but the journal has {len} records");
    }
    assert!(len >= len_before, "{context}: the journal shrank from {len_before} to {len} records");
    let mut decoded = 0u64;
    for record in journal.records_unverified(0) {
        let env = record.unwrap_or_else(|e| panic!("{context}: a torn record: {e}"));
        if let Event::NotificationSent { channel, message } = &env.event {
            if channel == BATCH_CHANNEL {
                let batch_len: u64 = message
                    .split(' ')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{context}: seq {}: a bad batch marker {message:?}", env.seq));
                assert!(
                    env.seq + batch_len <= len,
                    "{context}: the batch starting at seq {} has {batch_len} events but the journal ends at {len}",
                    env.seq
                );
            }
        }
        decoded += 1;
    }
    assert_eq!(decoded, len, "{context}: every record decodes");
    len
}

/// The open-block child: syncs `SYNCED` records, appends `UNSYNCED` more that
/// stay in its open block, says so, and waits to be killed.
#[test]
#[ignore = "the crash test's child: runs only when the crash test spawns it"]
fn crash_child_with_an_open_block() {
    let Some(dir) = std::env::var_os(OPEN_BLOCK_CHILD_DIR_ENV) else { return };
    let mut journal = Journal::create(Path::new(&dir), Durability::None).expect("the child creates the journal");
    let items = workload_from_seed(7, SYNCED as usize).items();
    for (time_ms, trader, event) in items.iter().cycle().take(SYNCED as usize) {
        journal.append(*time_ms, trader, event).expect("the child appends");
    }
    journal.sync().expect("the child syncs");
    for _ in 0..UNSYNCED {
        journal.append(0, "", &Event::ClockTicked).expect("the child appends");
    }
    assert_eq!(journal.open_block_len(), UNSYNCED, "the last appends wait in the open block");
    println!("\nready {}", journal.len());
    std::io::stdout().flush().expect("stdout");
    thread::sleep(Duration::from_secs(600));
}

#[test]
fn sigkill_loses_exactly_the_open_block_and_the_chain_goes_on() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() || std::env::var_os(OPEN_BLOCK_CHILD_DIR_ENV).is_some() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("journal");
    let context = "open-block child";
    let mut run = spawn(&[(OPEN_BLOCK_CHILD_DIR_ENV, dir.as_os_str())], "crash_child_with_an_open_block", context);
    match run.lines.recv_timeout(Duration::from_secs(60)) {
        Ok(Line::Ready(len)) => assert_eq!(len, SYNCED + UNSYNCED),
        _ => {
            let _ = run.child.kill();
            let _ = run.child.wait();
            panic!("{context} never got ready: {}", run.stderr.join().unwrap_or_default());
        }
    }
    run.child.kill().expect("SIGKILL");
    run.child.wait().expect("reaped");
    let mut journal = Journal::open(&dir, Durability::None).expect("the journal opens after the kill");
    assert_eq!(journal.len(), SYNCED, "everything synced survives; the open block is gone");
    let report = verify::journal(&journal).expect("verifies");
    let appended = journal.append(0, "", &Event::ClockTicked).expect("appends after the crash");
    assert_eq!((appended.seq, journal.get(SYNCED).expect("reads").map(|e| e.prev_hash)), (SYNCED, Some(report.head)));
    assert_eq!(verify::journal(&journal).expect("verifies").events, SYNCED + 1);
}

#[test]
fn sigkill_loses_nothing_durable_and_tears_nothing() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() || std::env::var_os(OPEN_BLOCK_CHILD_DIR_ENV).is_some() {
        return;
    }
    let seed: u64 = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    println!("crash test seed {seed} (override with {SEED_ENV})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let root = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut dir = PathBuf::new();
    let (mut len, mut durable_reports, mut kills_during_open) = (0u64, 0usize, 0usize);
    for iteration in 0..KILLS {
        // Even iterations start a fresh journal; odd ones reopen the one just
        // killed, so recovery and the appends after it are killed too.
        let fresh = iteration % 2 == 0;
        if fresh {
            dir = root.path().join(format!("journal-{iteration}"));
            len = 0;
        }
        let context = format!("seed {seed} iteration {iteration} ({})", dir.display());
        let child_seed: u64 = rng.random();
        let mut run = spawn_child(&dir, child_seed, &context);
        // Mostly kill while appending; on a reopen, sometimes during recovery.
        let during_open = !fresh && rng.random_range(0..3) == 0;
        let delay = Duration::from_millis(rng.random_range(0..60));
        let mut durable_max = None;
        if during_open {
            kills_during_open += 1;
            thread::sleep(delay / 2);
        } else {
            match run.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(Line::Ready(recovered)) => {
                    assert_eq!(recovered, len, "{context}: the child recovered a different length")
                }
                Ok(Line::Durable(_)) => panic!("{context}: durable before ready"),
                Err(_) => {
                    let _ = run.child.kill();
                    let _ = run.child.wait();
                    panic!("{context}: the child never got ready: {}", run.stderr.join().unwrap_or_default());
                }
            }
            thread::sleep(delay);
        }
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!("{context}: the child exited on its own ({status}): {}", run.stderr.join().unwrap_or_default());
        }
        run.child.kill().unwrap_or_else(|e| panic!("{context}: SIGKILL failed: {e}"));
        run.child.wait().unwrap_or_else(|e| panic!("{context}: the child was not reaped: {e}"));
        // The reader thread ends when the pipe closes; everything printed is in the channel.
        for line in run.lines.iter() {
            if let Line::Durable(seq) = line {
                durable_max = durable_max.max(Some(seq));
                durable_reports += 1;
            }
        }
        let _ = run.stderr.join();
        // A kill before sled created the directory leaves nothing to check.
        if during_open && !dir.join("db").exists() {
            continue;
        }
        let before = len;
        len = check_after_kill(&dir, &context, durable_max, len);
        check_contents(&dir, &context, child_seed, before);
    }
    println!(
        "{KILLS} kills ({kills_during_open} during recovery), {durable_reports} durability reports, {:?}",
        started.elapsed()
    );
    assert!(
        durable_reports >= KILLS / 2,
        "seed {seed}: only {durable_reports} durability reports: the kills came too early to test much"
    );
}
