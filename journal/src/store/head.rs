//! The durable head: a small file beside sled saying how many records were
//! durable at the last flush and the hash of the last of them. A truncation of
//! sled's records cannot reach it, so `verify` can tell a journal that lost its
//! newest records from one that never had them.
//!
//! The head is a lower bound: it is written after the flush it describes, so a
//! crash in between leaves it behind the records, which is fine. It is replaced
//! atomically (temp file, fsync, rename): a reader sees the old head or the new one.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use crate::hash::Hash;

pub(super) const HEAD_FILE: &str = "HEAD";
const HEAD_TEMP: &str = "HEAD.tmp";
const MAGIC: &[u8; 8] = b"QFHEAD\0\x01";
/// magic ‖ records (u64 BE) ‖ hash of the last record (32) ‖ checksum (8).
const LEN: usize = 8 + 8 + 32 + 8;

/// What the head file says: `records` records (seq 0..records) were durable,
/// the last of them with hash `hash` (zeros when `records` is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub records: u64,
    pub hash: Hash,
}

impl Head {
    pub(super) const EMPTY: Head = Head { records: 0, hash: Hash::ZERO };

    fn encode(self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&self.records.to_be_bytes());
        out[16..48].copy_from_slice(&self.hash.0);
        let check = checksum(&out[..48]);
        out[48..].copy_from_slice(&check);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Head> {
        if bytes.len() != LEN || &bytes[..8] != MAGIC || checksum(&bytes[..48]) != bytes[48..] {
            return None;
        }
        let records = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
        Some(Head { records, hash: Hash(bytes[16..48].try_into().ok()?) })
    }
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    let digest = blake3::hash(bytes);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest.as_bytes()[..8]);
    out
}

/// Reads the head file of the journal at `dir`: `Ok(None)` when there is none
/// (a journal made before heads existed), `Err` with a sentence when it is damaged.
pub(super) fn read(dir: &Path) -> Result<Option<Head>, String> {
    let path = dir.join(HEAD_FILE);
    match fs::read(&path) {
        Ok(bytes) => Head::decode(&bytes).map(Some).ok_or_else(|| {
            format!("{}: the durable head file is damaged (bad length, magic or checksum)", path.display())
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: cannot read the durable head file: {e}", path.display())),
    }
}

/// Writes the head file of one journal; never moves it backwards.
#[derive(Debug)]
pub(super) struct HeadWriter {
    dir: PathBuf,
    written: u64,
}

impl HeadWriter {
    /// A writer for `dir` whose head file already says `written` records (or less).
    pub(super) fn new(dir: &Path, written: u64) -> HeadWriter {
        HeadWriter { dir: dir.to_owned(), written }
    }

    /// Replaces the head file when `head` is ahead of what it says.
    pub(super) fn advance(&mut self, head: Head) -> io::Result<()> {
        if head.records <= self.written {
            return Ok(());
        }
        write(&self.dir, head)?;
        self.written = head.records;
        Ok(())
    }
}

/// Temp file, fsync, rename. The directory is not fsynced: losing the rename
/// in a power cut leaves the older head, which is still a true lower bound.
pub(super) fn write(dir: &Path, head: Head) -> io::Result<()> {
    let temp = dir.join(HEAD_TEMP);
    let mut file = File::create(&temp)?;
    file.write_all(&head.encode())?;
    file.sync_data()?;
    fs::rename(&temp, dir.join(HEAD_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_round_trips_and_any_flipped_bit_is_refused() {
        let head = Head { records: 4321, hash: Hash([7; 32]) };
        let bytes = head.encode();
        assert_eq!(Head::decode(&bytes), Some(head));
        for i in 0..LEN {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert_eq!(Head::decode(&bad), None, "byte {i}");
        }
        assert_eq!(Head::decode(&bytes[..LEN - 1]), None);
    }

    #[test]
    fn the_writer_never_moves_the_head_backwards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = HeadWriter::new(dir.path(), 0);
        assert_eq!(read(dir.path()), Ok(None));
        writer.advance(Head { records: 10, hash: Hash([1; 32]) }).expect("writes");
        writer.advance(Head { records: 5, hash: Hash([2; 32]) }).expect("ignored");
        assert_eq!(read(dir.path()), Ok(Some(Head { records: 10, hash: Hash([1; 32]) })));
    }
}
