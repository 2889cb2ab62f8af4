//! Outputs that appear whole or not at all: a run writes into a hidden sibling of
//! each output directory and renames it into place only when it succeeded, so a
//! failed run leaves nothing under the names it was given (and the same command,
//! run again after the cause is fixed, is not refused).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A directory being written under a temporary name beside its final one.
#[derive(Debug)]
pub struct Staged {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl Staged {
    /// Stages `target`: `.NAME.partial-PID` beside it, created empty (a leftover of an
    /// earlier crashed run with the same pid is removed first).
    ///
    /// # Errors
    /// The staging directory cannot be created.
    pub fn new(target: &Path) -> anyhow::Result<Staged> {
        let name = target.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).with_context(|| format!("cannot remove {}", staging.display()))?;
        }
        std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(Staged { target: target.to_owned(), staging, committed: false })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The final name.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the staged directory into place. A target that does not exist, or is an
    /// empty directory, is replaced by a rename; into an existing directory the staged
    /// files are renamed one by one (replacing files of the same name).
    ///
    /// # Errors
    /// A rename failed (the staged files stay where they are, and the error says where).
    pub fn commit(mut self) -> anyhow::Result<PathBuf> {
        let empty_dir = std::fs::read_dir(&self.target).is_ok_and(|mut d| d.next().is_none());
        if empty_dir {
            std::fs::remove_dir(&self.target).with_context(|| format!("cannot replace {}", self.target.display()))?;
        }
        if !self.target.exists() {
            std::fs::rename(&self.staging, &self.target)
                .with_context(|| format!("cannot rename {} to {}", self.staging.display(), self.target.display()))?;
        } else {
            for entry in std::fs::read_dir(&self.staging)? {
                let entry = entry?;
                let to = self.target.join(entry.file_name());
                if to.is_dir() {
                    std::fs::remove_dir_all(&to).with_context(|| format!("cannot replace {}", to.display()))?;
                }
                std::fs::rename(entry.path(), &to)
                    .with_context(|| format!("cannot move {} to {}", entry.path().display(), to.display()))?;
            }
            std::fs::remove_dir(&self.staging).ok();
        }
        // The rename is durable once the parent directory is.
        if let Some(parent) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staged {
    /// A run that did not commit leaves nothing behind.
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}
