//! The JSON Lines form of a journal: lossless, documented, human-readable.
//!
//! Line 1 is a header: `{"format":"quantfold-journal","codec_version":1,"schema_version":1}`.
//! Every further line is one [`Envelope`]: `{"seq", "time_ms", "trader", "event",
//! "prev_hash", "hash"}` where `event` is externally tagged (`{"KlineReceived":{...}}`,
//! or `"ClockTicked"` for variants without fields), decimals are exact strings
//! (`"0.00002025"`), hashes and client order ids are lowercase hex, and JSON
//! carried in events (params, `ctx.state` values) appears as itself.
//!
//! Import re-chains: it appends each line's `(time_ms, trader, event)` and
//! computes fresh sequence numbers and hashes, so importing an export into an
//! empty journal reproduces the original hashes exactly.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::{codec, event::Envelope};

pub const FORMAT: &str = "quantfold-journal";

/// The first line of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    pub format: String,
    pub codec_version: u16,
    pub schema_version: u16,
}

impl FileHeader {
    pub fn current() -> FileHeader {
        FileHeader {
            format: FORMAT.into(),
            codec_version: codec::CODEC_VERSION,
            schema_version: codec::SCHEMA_VERSION,
        }
    }
}

/// Why a JSON Lines file could not be read; `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Writes the header line.
///
/// # Errors
/// Write failures.
pub fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &FileHeader::current())?;
    out.write_all(b"\n")
}

/// Writes one envelope as a line.
///
/// # Errors
/// Write failures.
pub fn write_envelope(out: &mut impl Write, env: &Envelope) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, env)?;
    out.write_all(b"\n")
}

/// Reads envelopes from a JSON Lines export, checking the header line first.
/// Blank lines are skipped; every other line must be an envelope.
pub fn read(input: impl BufRead) -> impl Iterator<Item = Result<Envelope, JsonlError>> {
    let mut lines = input.lines().enumerate();
    let mut header_seen = false;
    std::iter::from_fn(move || loop {
        let (index, line) = lines.next()?;
        let line_no = index + 1;
        let text = match line {
            Ok(text) => text,
            Err(e) => return Some(Err(JsonlError::Line { line: line_no, message: e.to_string() })),
        };
        if text.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            return match serde_json::from_str::<FileHeader>(&text) {
                Ok(h) if h.format == FORMAT && h.schema_version <= codec::SCHEMA_VERSION => continue,
                Ok(h) => Some(Err(JsonlError::Line {
                    line: line_no,
                    message: format!("unsupported export: format {:?}, schema v{}", h.format, h.schema_version),
                })),
                Err(_) => Some(Err(JsonlError::Line {
                    line: line_no,
                    message: format!("not a quantfold journal export (the first line must be the {FORMAT:?} header)"),
                })),
            };
        }
        return Some(
            serde_json::from_str::<Envelope>(&text)
                .map_err(|e| JsonlError::Line { line: line_no, message: format!("not an event: {e}") }),
        );
    })
}
