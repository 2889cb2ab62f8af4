//! The ground-truth log: one JSON line per accepted order and per execution, written and
//! flushed line by line, so a test can read it while the server runs.

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde_json::Value;

/// An open `--log` file.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    file: File,
}

impl Log {
    /// Creates (truncates) the file.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path) -> anyhow::Result<Log> {
        let file = File::create(path).with_context(|| format!("failed to create the log {}", path.display()))?;
        Ok(Log { path: path.to_owned(), file })
    }

    /// Appends `line` (an object) as one line. A failed write is reported once per line on
    /// stderr and does not stop the server: the market goes on either way.
    pub fn write(&mut self, line: &Value) {
        let mut text = line.to_string();
        text.push('\n');
        if let Err(e) = self.file.write_all(text.as_bytes()).and_then(|()| self.file.flush()) {
            tracing::error!("failed to write the log {}: {e}", self.path.display());
        }
    }
}
