//! `quantfold journal ...`: inspect, verify, export, import, recover.

use std::{
    fs::File,
    io::{BufReader, BufWriter, Write},
    path::Path,
    process::ExitCode,
};

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use journal::{describe, jsonl, store, verify, Durability, Journal, StoreError};

use crate::text;

/// Events appended per batch on import: one sled batch, one flush.
const IMPORT_BATCH_EVENTS: usize = 4096;

pub fn inspect(
    dir: &Path,
    from: u64,
    limit: Option<u64>,
    trader: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let journal = open(dir)?;
    let wanted = trader.map(|t| if t == "-" { "" } else { t });
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["seq", "time", "trader", "event", "details"]);
    let mut shown = 0u64;
    for record in journal.records(from) {
        if limit.is_some_and(|l| shown >= l) {
            break;
        }
        let env = record.with_context(|| format!("journal {}", dir.display()))?;
        if wanted.is_some_and(|t| env.trader != t) {
            continue;
        }
        shown += 1;
        if json {
            jsonl::write_envelope(&mut out, &env).context("failed to write to stdout")?;
        } else {
            table.add_row([
                env.seq.to_string(),
                text::time(env.time_ms),
                text::trader(&env.trader).to_owned(),
                env.event.kind().to_owned(),
                describe::summary(&env.event),
            ]);
        }
    }
    if !json {
        writeln!(out, "{table}")?;
        writeln!(out, "{shown} of {} events shown", journal.len())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn verify(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(dir, Durability::None).map_err(|e| salvage_hint(dir, e))?;
    let report = verify::journal(&journal)
        .map_err(|e| salvage_hint(dir, e))
        .with_context(|| "journal verification failed".to_string())?;
    if json {
        say!("{}", serde_json::to_string(&report)?);
    } else {
        let span = match (report.first_time_ms, report.last_time_ms) {
            (Some(a), Some(b)) => format!(", {} .. {}", text::time(a), text::time(b)),
            _ => String::new(),
        };
        let skipped = match report.snapshots_skipped {
            0 => String::new(),
            n => format!(" ({n} more of another build's state layout, skipped)"),
        };
        say!(
            "ok: {} events, {} snapshots{skipped}, {} traders, {} anomalies{span}, head {}",
            report.events,
            report.snapshots_checked,
            report.traders.len(),
            report.anomalies,
            report.head.short()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let journal = open(dir)?;
    let handle = File::create(file).with_context(|| format!("failed to create {}", file.display()))?;
    let mut out = BufWriter::new(handle);
    let write_error = || format!("failed to write {}", file.display());
    jsonl::write_header(&mut out).with_context(write_error)?;
    let mut count = 0u64;
    for record in journal.records(0) {
        let env = record.with_context(|| format!("journal {}", dir.display()))?;
        jsonl::write_envelope(&mut out, &env).with_context(write_error)?;
        count += 1;
    }
    out.flush().with_context(write_error)?;
    eprintln!("exported {count} events to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

pub fn import(dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let reader = || -> anyhow::Result<_> {
        let handle = File::open(file).with_context(|| format!("failed to open {}", file.display()))?;
        Ok(jsonl::read(BufReader::new(handle)))
    };
    // Pass 1: every line must be an event before anything is appended, so a bad
    // line leaves the journal exactly as it was.
    let mut total = 0usize;
    for envelope in reader()? {
        envelope.with_context(|| file.display().to_string())?;
        total += 1;
    }
    let mut journal =
        Journal::open_or_create(dir, Durability::None).with_context(|| "failed to open the journal".to_string())?;
    if !journal.is_empty() {
        verify::journal(&journal).context("refusing to import into a journal whose chain is broken")?;
    }
    let first = journal.len();
    let mut batch = Vec::with_capacity(IMPORT_BATCH_EVENTS);
    for envelope in reader()? {
        batch.push(envelope.with_context(|| file.display().to_string())?);
        if batch.len() == IMPORT_BATCH_EVENTS {
            append(&mut journal, &mut batch)?;
        }
    }
    append(&mut journal, &mut batch)?;
    journal.sync()?;
    match journal.len().checked_sub(1) {
        Some(last) if total > 0 => eprintln!("imported {total} events into {} as seq {first}..={last}", dir.display()),
        _ => eprintln!("imported 0 events into {}", dir.display()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds what the segment files can still give to a failure that the database
/// caused (the segments are read without sled): how far `recover` gets.
fn salvage_hint(dir: &Path, error: StoreError) -> anyhow::Error {
    let failed_at = match &error {
        StoreError::Storage { .. } | StoreError::Head { .. } => 0,
        StoreError::Corrupt { seq, .. } => *seq,
        StoreError::Truncated { from, .. } => *from,
        _ => return error.into(),
    };
    match store::salvageable(dir) {
        Ok((records, _, _)) if records > failed_at => anyhow::anyhow!(
            "{error}; the segment files hold seq 0..={} intact: `quantfold journal recover {} --to NEW_DIR` saves them",
            records - 1,
            dir.display()
        ),
        _ => error.into(),
    }
}

/// Writes a new journal at `to` with every event of `dir` up to the first
/// damage, verifies it, and says what was saved and what was lost.
pub fn recover(dir: &Path, to: &Path) -> anyhow::Result<ExitCode> {
    let recovered = store::recover(dir, to).with_context(|| format!("failed to recover {}", dir.display()))?;
    let journal = open(to)?;
    let report = verify::journal(&journal).context("the recovered journal does not verify")?;
    anyhow::ensure!(
        report.events == recovered.events,
        "the recovered journal has {} events, not {}",
        report.events,
        recovered.events
    );
    for note in &recovered.notes {
        eprintln!("note: {note}");
    }
    let saved = match recovered.events.checked_sub(1) {
        Some(last) => format!("seq 0..={last}"),
        None => "nothing".into(),
    };
    say!(
        "recovered {} events ({saved}) into {}: {} from the segment files, {} from the database; head {}",
        recovered.events,
        to.display(),
        recovered.from_segments,
        recovered.from_database,
        recovered.last_hash.short()
    );
    match recovered.lost() {
        Some((first, last)) => say!("lost: seq {first}..={last} (the durable head says seq {last} was durable)"),
        None => say!("nothing durable was lost; snapshots are not copied (replay rebuilds them)"),
    }
    Ok(ExitCode::SUCCESS)
}

fn append(journal: &mut Journal, batch: &mut Vec<journal::Envelope>) -> anyhow::Result<()> {
    journal.append_batch(batch.iter().map(|e| (e.time_ms, e.trader.as_str(), &e.event)))?;
    batch.clear();
    Ok(())
}

/// Opens an existing journal for reading (nothing is written by these commands).
fn open(dir: &Path) -> anyhow::Result<Journal> {
    Ok(Journal::open(dir, Durability::None)?)
}
