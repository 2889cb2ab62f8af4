//! Segment files: a second copy of every block written to sled, in plain
//! checksummed files that can be read without sled. When sled's files are
//! damaged, `recover` reads the segments up to the first bad frame instead.
//!
//! ```text
//! segments/000001.seg, 000002.seg, …  (a new file once one passes SEGMENT_MAX_BYTES)
//! file  = file header ‖ frame ‖ frame ‖ …
//! file header = "QFSEGMNT" ‖ codec (u16 BE) ‖ schema (u16 BE) ‖ first key (u64 BE) ‖ check (4)
//! frame = len (u32 BE) ‖ key (u64 BE) ‖ crc (u32 BE) ‖ block (len bytes, exactly the sled value)
//! check = the first bytes of blake3 over the header bytes before it
//! crc = CRC-32 (IEEE) of len ‖ key ‖ block (what sled uses too: cheap on the flush path)
//! ```
//!
//! Only codec v2 journals have segments. The appending thread only keeps a
//! reference to each block it gives sled ([`Frames`]); framing, checksums,
//! writes and the fsync happen on the flush that makes those blocks durable
//! (group commit: the background flusher), beside sled's flush and before the
//! head file.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use crate::codec::{Header, Layout};

pub(super) const SEGMENTS_DIR: &str = "segments";
/// A frame that starts past this size goes to a new file: files stay small
/// enough to read whole when recovering or reopening.
const SEGMENT_MAX_BYTES: u64 = 32 << 20;
const MAGIC: &[u8; 8] = b"QFSEGMNT";
const FILE_HEADER_LEN: usize = 8 + 2 + 2 + 8 + 4;
const FRAME_HEADER_LEN: usize = 4 + 8 + 4;
/// Without a background flusher (durability `None`), buffered frames are
/// written once they pass this size rather than waiting for the next sync.
pub(super) const FRAMES_SPILL_BYTES: usize = 1 << 20;

/// The blocks written to sled since the last flush, shared with sled (an
/// `IVec` clone is a reference count): what the appending thread hands to the
/// flush, which frames, checksums and writes them. An append copies nothing
/// for the segments.
#[derive(Debug, Default)]
pub(super) struct Frames {
    blocks: Vec<(u64, sled::IVec)>,
    bytes: usize,
}

impl Frames {
    /// An empty list with room for `capacity` blocks (a reused allocation).
    pub(super) fn with_capacity(capacity: usize) -> Frames {
        Frames { blocks: Vec::with_capacity(capacity), bytes: 0 }
    }

    pub(super) fn push(&mut self, key: u64, block: sled::IVec) {
        self.bytes += FRAME_HEADER_LEN + block.len();
        self.blocks.push((key, block));
    }

    /// The bytes the frames take on disk.
    pub(super) fn len(&self) -> usize {
        self.bytes
    }

    pub(super) fn capacity(&self) -> usize {
        self.blocks.capacity()
    }

    fn clear(&mut self) {
        self.blocks.clear();
        self.bytes = 0;
    }
}

/// The bytes the writer gathers before a `write` syscall.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

fn frame_check(len_and_key: &[u8], block: &[u8]) -> [u8; 4] {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_and_key);
    hasher.update(block);
    hasher.finalize().to_be_bytes()
}

fn header_check(bytes: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&blake3::hash(bytes).as_bytes()[..4]);
    out
}

fn encode_file_header(header: Header, first_key: u64) -> [u8; FILE_HEADER_LEN] {
    let mut out = [0u8; FILE_HEADER_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..10].copy_from_slice(&header.codec_version.to_be_bytes());
    out[10..12].copy_from_slice(&header.schema_version.to_be_bytes());
    out[12..20].copy_from_slice(&first_key.to_be_bytes());
    let check = header_check(&out[..20]);
    out[20..].copy_from_slice(&check);
    out
}

/// The journal header and first key a segment file's header names.
fn decode_file_header(bytes: &[u8]) -> Option<(Header, u64)> {
    let head = bytes.get(..FILE_HEADER_LEN)?;
    if &head[..8] != MAGIC || header_check(&head[..20]) != head[20..] {
        return None;
    }
    let header = Header {
        codec_version: u16::from_be_bytes([head[8], head[9]]),
        schema_version: u16::from_be_bytes([head[10], head[11]]),
    };
    Some((header, u64::from_be_bytes(head[12..20].try_into().ok()?)))
}

fn file_name(index: u32) -> String {
    format!("{index:06}.seg")
}

/// The segment files of a journal directory, in order, with their numbers.
pub(super) fn list(journal_dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    list_in(&journal_dir.join(SEGMENTS_DIR))
}

fn list_in(dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let index = name.to_str().and_then(|n| n.strip_suffix(".seg")).and_then(|n| n.parse::<u32>().ok());
        if let Some(index) = index {
            files.push((index, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// One frame read back: the sled key and value of a block, and where it was.
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) key: u64,
    pub(super) block: Vec<u8>,
    pub(super) file: PathBuf,
    pub(super) offset: u64,
}

/// A frame as [`Reader::next_frame`] lends it: the block stays in the reader's buffer.
#[derive(Debug)]
pub(super) struct FrameRef<'a> {
    pub(super) key: u64,
    /// How many records the block holds (counted once, here).
    pub(super) records: u64,
    pub(super) block: &'a [u8],
    pub(super) file: &'a Path,
    pub(super) offset: u64,
}

/// Why reading the segments stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Damage {
    pub(super) file: PathBuf,
    pub(super) offset: u64,
    pub(super) problem: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}: {}", self.file.display(), self.offset, self.problem)
    }
}

/// Every intact frame of a journal's segments in order, then the first damage
/// (if any) that ended the read. Each file's frames must continue the keys of
/// the file before (a block's key plus its record count is the next key).
#[derive(Debug)]
pub(super) struct Reader {
    files: std::vec::IntoIter<(u32, PathBuf)>,
    /// The file being read, and where in `bytes` its next frame starts.
    current: Option<(PathBuf, usize)>,
    /// The current file's bytes, in one buffer reused for every file: a fresh buffer per
    /// file cost a page fault for every 4 KiB read (a million-event journal has ~200 MB).
    bytes: Vec<u8>,
    header: Option<Header>,
    next_key: u64,
    done: bool,
}

impl Reader {
    /// Reads the segments of the journal at `journal_dir` (none: an empty read).
    pub(super) fn open(journal_dir: &Path) -> io::Result<Reader> {
        let files = list(journal_dir)?;
        Ok(Reader {
            files: files.into_iter(),
            current: None,
            bytes: Vec::new(),
            header: None,
            next_key: 0,
            done: false,
        })
    }

    /// Where the intact frames end: the key the next block would have.
    #[cfg(test)]
    pub(super) fn end_key(&self) -> u64 {
        self.next_key
    }

    fn damage(&mut self, file: &Path, offset: usize, problem: String) -> Option<Result<FrameRef<'_>, Damage>> {
        self.done = true;
        Some(Err(Damage { file: file.to_owned(), offset: offset as u64, problem }))
    }

    fn open_next_file(&mut self) -> Option<Result<(), Damage>> {
        let (_, path) = self.files.next()?;
        self.bytes.clear();
        if let Err(e) = File::open(&path).and_then(|mut file| file.read_to_end(&mut self.bytes)) {
            return Some(Err(Damage { file: path, offset: 0, problem: format!("cannot read it: {e}") }));
        }
        let Some((header, first_key)) = decode_file_header(&self.bytes) else {
            let problem = "the segment file header is damaged".into();
            return Some(Err(Damage { file: path, offset: 0, problem }));
        };
        if first_key != self.next_key || self.header.is_some_and(|h| h != header) {
            let problem =
                format!("the file starts at seq {first_key}, but the segments before it end at seq {}", self.next_key);
            return Some(Err(Damage { file: path, offset: 0, problem }));
        }
        self.header = Some(header);
        self.current = Some((path, FILE_HEADER_LEN));
        Some(Ok(()))
    }

    /// The next intact frame, lent from the reader's buffer, or the damage that ends the read.
    pub(super) fn next_frame(&mut self) -> Option<Result<FrameRef<'_>, Damage>> {
        loop {
            if self.done {
                return None;
            }
            let exhausted = self.current.as_ref().is_none_or(|(_, offset)| *offset == self.bytes.len());
            if exhausted {
                self.current = None;
                match self.open_next_file()? {
                    Ok(()) => continue,
                    Err(damage) => {
                        self.done = true;
                        return Some(Err(damage));
                    }
                }
            }
            let (file, offset) = self.current.take().expect("invariant: checked above");
            let rest = &self.bytes[offset..];
            let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
                let problem = format!("{} bytes left, too few for a frame header", rest.len());
                return self.damage(&file, offset, problem);
            };
            let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
            let key = u64::from_be_bytes(head[4..12].try_into().expect("8 bytes"));
            let Some(block) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
                return self.damage(&file, offset, format!("a frame of {len} bytes runs past the end of the file"));
            };
            if frame_check(&head[..12], block) != head[12..16] {
                return self.damage(&file, offset, format!("the frame of the block at seq {key} fails its checksum"));
            }
            if key != self.next_key {
                let problem = format!("a block at seq {key} where the block at seq {} belongs", self.next_key);
                return self.damage(&file, offset, problem);
            }
            let records = Layout::Packed.records(block).count() as u64;
            if records == 0 {
                return self.damage(&file, offset, format!("the block at seq {key} is empty"));
            }
            self.next_key = key + records;
            let start = offset + FRAME_HEADER_LEN;
            self.current = Some((file, start + len));
            let file = &self.current.as_ref().expect("just set").0;
            let block = &self.bytes[start..start + len];
            return Some(Ok(FrameRef { key, records, block, file, offset: offset as u64 }));
        }
    }
}

impl Iterator for Reader {
    type Item = Result<Frame, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_frame()?.map(|f| Frame {
            key: f.key,
            block: f.block.to_vec(),
            file: f.file.to_owned(),
            offset: f.offset,
        }))
    }
}

/// Appends frames to the last segment file; owned by whichever thread flushes.
#[derive(Debug)]
pub(super) struct Writer {
    dir: PathBuf,
    header: Header,
    file: File,
    index: u32,
    size: u64,
    /// Frames gathered for the next `write` syscall (kept between flushes).
    buffer: Vec<u8>,
}

impl Writer {
    /// Opens the segments of `journal_dir` for appending after sled's stored
    /// blocks (keys below `stored_end`). After a crash the segments may be
    /// behind sled (sled flushed on its own), have a torn last frame, or hold
    /// blocks sled lost (they were never reported durable): the last file is cut
    /// back to its intact frames below `stored_end`, and blocks sled has beyond
    /// them are copied from `events`.
    pub(super) fn open(journal_dir: &Path, header: Header, events: &sled::Tree, stored_end: u64) -> io::Result<Writer> {
        let dir = journal_dir.join(SEGMENTS_DIR);
        fs::create_dir_all(&dir)?;
        let mut files = list(journal_dir)?;
        let mut writer = None;
        while let Some((index, path)) = files.pop() {
            let bytes = fs::read(&path)?;
            match decode_file_header(&bytes) {
                Some((found, first_key)) if found == header && first_key <= stored_end => {
                    let (kept, end_key) = intact_prefix(&bytes, first_key, stored_end);
                    let file = OpenOptions::new().write(true).open(&path)?;
                    file.set_len(kept as u64)?;
                    drop(file);
                    let file = OpenOptions::new().append(true).open(&path)?;
                    let size = kept as u64;
                    writer =
                        Some((Writer { dir: dir.clone(), header, file, index, size, buffer: Vec::new() }, end_key));
                    break;
                }
                // Blocks past sled's end only, or a file not ours: never durable.
                _ => fs::remove_file(&path)?,
            }
        }
        let (mut writer, end_key) = match writer {
            Some(found) => found,
            None => (Writer::create(&dir, header, 1, 0)?, 0),
        };
        if end_key < stored_end {
            writer.catch_up(events, end_key)?;
        }
        Ok(writer)
    }

    fn create(dir: &Path, header: Header, index: u32, first_key: u64) -> io::Result<Writer> {
        let path = dir.join(file_name(index));
        let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
        file.write_all(&encode_file_header(header, first_key))?;
        file.sync_data()?;
        // The new file's name must survive a crash as well as its bytes.
        File::open(dir)?.sync_all()?;
        let file = OpenOptions::new().append(true).open(&path)?;
        let size = FILE_HEADER_LEN as u64;
        Ok(Writer { dir: dir.to_owned(), header, file, index, size, buffer: Vec::new() })
    }

    /// Copies sled's blocks from key `from` on; when sled has no block starting
    /// there, the segments no longer line up with it and are rewritten whole.
    fn catch_up(&mut self, events: &sled::Tree, from: u64) -> io::Result<()> {
        let storage = |e: sled::Error| io::Error::other(format!("reading the database to copy into the segments: {e}"));
        let lines_up = from == 0 || events.get(from.to_be_bytes()).map_err(storage)?.is_some();
        let from = if lines_up {
            from
        } else {
            for (_, path) in list_in(&self.dir)? {
                fs::remove_file(path)?;
            }
            *self = Writer::create(&self.dir, self.header, 1, 0)?;
            0
        };
        let mut frames = Frames::default();
        for item in events.range(from.to_be_bytes()..) {
            let (key, value) = item.map_err(storage)?;
            let key = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| io::Error::other("a malformed key"))?);
            frames.push(key, value);
            if frames.len() >= FRAMES_SPILL_BYTES {
                self.write(&mut frames)?;
            }
        }
        self.write(&mut frames)?;
        self.sync()
    }

    /// Frames the blocks, checksums them and appends them, starting a new file
    /// at a frame boundary when the current one is full. Not durable until
    /// [`Writer::sync`]. `frames` is left empty, its allocation kept for reuse.
    pub(super) fn write(&mut self, frames: &mut Frames) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.buffer);
        let written = self.write_with(&mut out, frames);
        out.clear();
        self.buffer = out;
        frames.clear();
        written
    }

    fn write_with(&mut self, out: &mut Vec<u8>, frames: &Frames) -> io::Result<()> {
        for (key, block) in &frames.blocks {
            let size = self.size + out.len() as u64;
            if size >= SEGMENT_MAX_BYTES && size > FILE_HEADER_LEN as u64 {
                self.append(out)?;
                self.rotate(*key)?;
            }
            let len = u32::try_from(block.len()).expect("invariant: a block is far below 4 GiB").to_be_bytes();
            let mut head = [0u8; FRAME_HEADER_LEN];
            head[..4].copy_from_slice(&len);
            head[4..12].copy_from_slice(&key.to_be_bytes());
            let check = frame_check(&head[..12], block);
            head[12..16].copy_from_slice(&check);
            out.extend_from_slice(&head);
            out.extend_from_slice(block);
            if out.len() >= WRITE_BUFFER_BYTES {
                self.append(out)?;
            }
        }
        self.append(out)
    }

    fn append(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.file.write_all(out)?;
        self.size += out.len() as u64;
        out.clear();
        Ok(())
    }

    /// The full file is made durable before the next one starts.
    fn rotate(&mut self, first_key: u64) -> io::Result<()> {
        self.file.sync_data()?;
        let buffer = std::mem::take(&mut self.buffer);
        *self = Writer::create(&self.dir, self.header, self.index + 1, first_key)?;
        self.buffer = buffer;
        Ok(())
    }

    pub(super) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// How many bytes of a segment file hold intact, consecutive frames below
/// `stored_end`, and the key after the last of them.
fn intact_prefix(bytes: &[u8], first_key: u64, stored_end: u64) -> (usize, u64) {
    let (mut offset, mut next_key) = (FILE_HEADER_LEN, first_key);
    while let Some(head) = bytes.get(offset..offset + FRAME_HEADER_LEN) {
        let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let key = u64::from_be_bytes(head[4..12].try_into().expect("8 bytes"));
        let Some(block) = bytes.get(offset + FRAME_HEADER_LEN..offset + FRAME_HEADER_LEN + len) else { break };
        let records = Layout::Packed.records(block).count() as u64;
        if key != next_key || key >= stored_end || records == 0 || frame_check(&head[..12], block) != head[12..16] {
            break;
        }
        offset += FRAME_HEADER_LEN + len;
        next_key = key + records;
    }
    (offset, next_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec, event::Event, hash::Hash};

    fn block(first_seq: u64, records: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        for seq in first_seq..first_seq + records {
            codec::push_framed_event_record(&mut bytes, seq, &Hash::ZERO, 0, "", &Event::ClockTicked);
        }
        bytes
    }

    #[test]
    fn frames_read_back_in_order_and_a_flipped_byte_ends_the_read_there() {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(root.path().join(SEGMENTS_DIR)).expect("mkdir");
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let events = db.open_tree("events").expect("tree");
        let mut writer = Writer::open(root.path(), Header::CURRENT, &events, 0).expect("opens");
        let mut frames = Frames::default();
        for key in (0..50).step_by(5) {
            frames.push(key, block(key, 5).into());
        }
        writer.write(&mut frames).expect("writes");
        writer.sync().expect("syncs");
        let read: Vec<u64> = Reader::open(root.path()).expect("reads").map(|f| f.expect("intact").key).collect();
        assert_eq!(read, (0..50).step_by(5).collect::<Vec<_>>());

        let path = root.path().join(SEGMENTS_DIR).join(file_name(1));
        let mut bytes = fs::read(&path).expect("reads");
        let third = FILE_HEADER_LEN + 2 * (FRAME_HEADER_LEN + block(0, 5).len());
        bytes[third + FRAME_HEADER_LEN + 30] ^= 1;
        fs::write(&path, bytes).expect("writes");
        let mut reader = Reader::open(root.path()).expect("reads");
        assert_eq!(reader.by_ref().filter_map(Result::ok).count(), 2);
        assert_eq!(reader.end_key(), 10);
    }

    #[test]
    fn reopening_cuts_a_torn_tail_and_copies_what_sled_has_beyond_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let events = db.open_tree("events").expect("tree");
        for key in (0..30).step_by(5) {
            events.insert(u64::to_be_bytes(key), block(key, 5)).expect("inserts");
        }
        // The segments hold the first two blocks and half of the third.
        let mut writer = Writer::open(root.path(), Header::CURRENT, &events, 0).expect("opens");
        let mut frames = Frames::default();
        for key in [0, 5, 10] {
            frames.push(key, block(key, 5).into());
        }
        writer.write(&mut frames).expect("writes");
        drop(writer);
        let path = root.path().join(SEGMENTS_DIR).join(file_name(1));
        let len = fs::metadata(&path).expect("stat").len();
        OpenOptions::new().write(true).open(&path).expect("opens").set_len(len - 40).expect("truncates");

        let writer = Writer::open(root.path(), Header::CURRENT, &events, 30).expect("reopens");
        drop(writer);
        let mut reader = Reader::open(root.path()).expect("reads");
        let frames: Vec<Frame> = reader.by_ref().map(|f| f.expect("intact")).collect();
        assert_eq!(frames.iter().map(|f| f.key).collect::<Vec<_>>(), [0, 5, 10, 15, 20, 25]);
        assert_eq!(frames[3].block, block(15, 5));
        assert_eq!(reader.end_key(), 30);
    }
}
