//! Creating a journal atomically: a kill at any moment leaves either no
//! journal or a valid empty one, never a directory that `open` refuses.
//!
//! The journal is built in a hidden sibling, `.NAME.creating-PID`: sled's files
//! and the header (flushed), the empty head file and the segments directory,
//! everything fsynced; then one rename puts it in place (over an empty
//! directory, if the user made one). A sibling left by a killed creator is
//! garbage, removed by the next create of the same journal.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use super::{head, segments::SEGMENTS_DIR, StoreError, HEADER_KEY};
use crate::codec::Header;

const CREATING: &str = ".creating-";

/// Builds a journal with `header` at `path`, which is absent or an empty directory.
pub(super) fn journal_dir(path: &Path, header: Header) -> Result<(), StoreError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| StoreError::Storage {
        path: path.to_owned(),
        message: format!("cannot create the journal: {what}: {e}"),
    };
    let (parent, name) = split(path).ok_or_else(|| failed("no directory name", &path.display()))?;
    fs::create_dir_all(&parent).map_err(|e| failed("creating its parent directory", &e))?;
    remove_leftovers(&parent, &name).map_err(|e| failed("removing what a killed create left", &e))?;
    let temp = parent.join(format!(".{name}{CREATING}{}", std::process::id()));
    if temp.exists() {
        fs::remove_dir_all(&temp).map_err(|e| failed("removing an old temporary directory", &e))?;
    }
    build(&temp, header).map_err(|e| failed(&format!("building it in {}", temp.display()), &e))?;
    // Renaming over an empty directory is allowed; over anything else it fails
    // (another process created the journal meanwhile), and the temp is dropped.
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_dir_all(&temp);
        return Err(failed("moving it into place", &e));
    }
    sync_dir(&parent).map_err(|e| failed("syncing its parent directory", &e))
}

/// Everything a new journal holds, made durable before it gets its name.
fn build(temp: &Path, header: Header) -> io::Result<()> {
    fs::create_dir(temp)?;
    {
        // No background flusher thread: dropping the handle then closes the
        // files (and releases sled's lock) at once, before the rename.
        let config = sled::Config::new().path(temp).flush_every_ms(None);
        let db = config.open().map_err(io::Error::other)?;
        db.insert(HEADER_KEY, header.encode()).map_err(io::Error::other)?;
        db.flush().map_err(io::Error::other)?;
    }
    head::write(temp, head::Head::EMPTY)?;
    fs::create_dir(temp.join(SEGMENTS_DIR))?;
    sync_tree(temp)
}

/// fsyncs every file and directory under `dir` (sled does not fsync its `conf`).
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The parent directory (`.` for a bare name) and the final name of `path`.
fn split(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Some((parent, name))
}

/// Removes `.NAME.creating-PID` siblings whose process is gone.
fn remove_leftovers(parent: &Path, name: &str) -> io::Result<()> {
    let prefix = format!(".{name}{CREATING}");
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        if !process_alive(pid) {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Whether a process with this id runs (Linux: it has a `/proc` entry). Where
/// there is no `/proc`, every leftover counts as garbage.
fn process_alive(pid: &str) -> bool {
    pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists()
}

/// The temporary siblings of the journal at `path` (for tests).
#[cfg(any(test, feature = "testkit"))]
pub fn leftovers(path: &Path) -> Vec<PathBuf> {
    let Some((parent, name)) = split(path) else { return Vec::new() };
    let prefix = format!(".{name}{CREATING}");
    let Ok(entries) = fs::read_dir(parent) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
        .map(|e| e.path())
        .collect()
}
