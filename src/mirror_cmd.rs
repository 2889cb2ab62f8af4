//! `backtest --journal DIR --mirror URL` and `journal restore`: the CLI side of
//! `scaleout::mirror` and `scaleout::restore`.

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::{bail, Context as _};
use journal::{Durability, Journal};
use scaleout::mirror::{self, Mirror};

/// How long the mirror keeps trying while nothing gets through before the command fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A connected mirror and the runtime it runs on.
pub struct Shipper {
    runtime: tokio::runtime::Runtime,
    mirror: Mirror,
    url: String,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

/// The journal id: the one given, else the directory's name.
pub fn journal_id(journal: &Path, id: Option<&str>) -> anyhow::Result<String> {
    match id {
        Some(id) => Ok(id.to_owned()),
        None => journal
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| format!("{}: no directory name to use as the journal id", journal.display())),
    }
}

impl Shipper {
    /// Connects for a new journal at `journal`: its id must not be on the server yet.
    pub fn connect(url: &str, journal: &Path, id: Option<&str>) -> anyhow::Result<Shipper> {
        let id = journal_id(journal, id)?;
        let runtime = runtime()?;
        let mirror = runtime.block_on(Mirror::connect(url, &id))?;
        if mirror.next() > 0 {
            bail!("{url} already holds a journal {id:?} ({} records): pass another --journal-id", mirror.next());
        }
        Ok(Shipper { runtime, mirror, url: url.to_owned() })
    }

    /// Ships every record of the (closed) journal at `path`, riding out outages of the server.
    pub fn ship_all(&mut self, path: &Path) -> anyhow::Result<()> {
        let journal = Journal::open(path, Durability::None)?;
        let mut records = Vec::with_capacity(usize::try_from(journal.len()).unwrap_or(0));
        for record in journal.records(0) {
            let env = record.with_context(|| format!("journal {}", path.display()))?;
            records.push((env.seq, mirror::record_bytes(&env)?, env.hash));
        }
        drop(journal);
        let total = records.len() as u64;
        let mut reported = 0;
        let shipped = &mut |next: u64| {
            if next >= reported + 5000 || next == total {
                reported = next;
                eprintln!("mirror: shipped through seq {} of {total} (lag {})", next.saturating_sub(1), total - next);
            }
        };
        self.runtime.block_on(mirror::catch_up(&mut self.mirror, &records, PATIENCE, shipped))?;
        eprintln!("mirror: {total} records on {} ({})", self.url, mirror::subject(self.mirror.id()));
        Ok(())
    }
}

/// `journal restore --nats URL --journal-id ID --to DIR`.
pub fn restore(url: &str, id: &str, to: &Path) -> anyhow::Result<ExitCode> {
    if std::fs::read_dir(to).is_ok_and(|mut d| d.next().is_some()) {
        return Err(journal::StoreError::AlreadyExists(to.to_owned()).into());
    }
    let restored = runtime()?.block_on(scaleout::restore::restore(url, id, to))?;
    say!("restored {} records of {id} into {}; head {}", restored.records, to.display(), restored.head);
    Ok(ExitCode::SUCCESS)
}
