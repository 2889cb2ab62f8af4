//! CSV chunk source: the file is cut into blocks of whole lines (so every block starts at a known
//! line number), and each line is split at its commas and its numbers parsed exactly by
//! [`super::num`] in one pass, stopping at the first bad line with its number. This is ours rather
//! than polars' CSV reader: these files are six (or twelve) unquoted numeric fields per line, the
//! prices must stay exact (polars' Decimal parser rounds to one scale per column, so it would have
//! to hand over strings for us to parse anyway), and every error must name its line. Building
//! polars' string columns first cost three times what parsing the lines costs.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::error::{DataError, Loc};
use super::num::{parse_decimal, parse_i64, trim_field, NumError};
use super::{Bar, Format, RawChunk, TimeUnit};

const READ_SIZE: u64 = 4 << 20;
/// A line longer than this (bytes, without the newline) is an error: bounds memory on binary or
/// newline-free input.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;
/// A block is cut early (at a line end) once it holds this many bytes.
const MAX_BLOCK_BYTES: usize = 32 << 20;
pub(crate) const KLINE_HEADER: [&str; 6] = ["open_time_ms", "open", "high", "low", "close", "volume"];
const BINANCE_NAMES: [&str; 12] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
];
/// Microsecond detection: an open time at or above 10^14 is taken as µs (10^14 ms is the year 5138,
/// 10^14 µs is 1973; Binance ms stamps have 13 digits, µs stamps 16).
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;

pub(crate) struct CsvSource {
    path: Arc<Path>,
    file: File,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    eof: bool,
    /// Line number (1-based) of `buf[start]`.
    next_line: u64,
    ncols: usize,
    names: &'static [&'static str],
    chunk_rows: usize,
    /// Binance: detect ms/µs per row, all rows must agree with the first.
    detect_us: bool,
    unit: Option<TimeUnit>,
}

/// What the first line told us.
pub(crate) struct Opened {
    pub source: CsvSource,
    pub format: Format,
}

fn loc(path: &Arc<Path>, line: u64) -> Loc {
    Loc { path: path.clone(), line, is_row: false }
}

fn io_err(path: &Path, e: std::io::Error) -> DataError {
    DataError::Io { path: path.into(), source: e }
}

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&c| c == b',')
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r'))
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() > 120 {
        let mut t: String = s.chars().take(120).collect();
        t.push('…');
        t
    } else {
        s.into_owned()
    }
}

impl CsvSource {
    /// Open, detect the format from the first line (unless forced), consume the header if any.
    pub(crate) fn open(path: Arc<Path>, forced: Option<Format>, chunk_rows: usize) -> Result<Opened, DataError> {
        let file = File::open(&path).map_err(|e| io_err(&path, e))?;
        let mut src = CsvSource {
            path,
            file,
            buf: Vec::with_capacity(READ_SIZE as usize + 4096),
            start: 0,
            eof: false,
            next_line: 1,
            ncols: 6,
            names: &KLINE_HEADER,
            chunk_rows: chunk_rows.max(1),
            detect_us: false,
            unit: None,
        };
        // Get the first line.
        let first_end = loop {
            if let Some(i) = memchr::memchr(b'\n', &src.buf) {
                break i;
            }
            if src.eof {
                break src.buf.len();
            }
            if src.buf.len() > MAX_LINE_BYTES {
                return Err(DataError::LineTooLong { loc: loc(&src.path, 1), max: MAX_LINE_BYTES });
            }
            src.fill()?;
        };
        if src.buf.starts_with(b"\xef\xbb\xbf") {
            src.start = 3;
        }
        if src.buf[src.start..].iter().all(|c| c.is_ascii_whitespace()) && src.eof {
            return Err(DataError::EmptyFile { path: src.path.as_ref().into() });
        }
        let first = strip_cr(&src.buf[src.start..first_end]);
        let first_fields: Vec<&[u8]> = fields(first).map(trim_field).collect();
        let is_kline_header = first_fields.len() == 6
            && first_fields.iter().zip(KLINE_HEADER).all(|(f, h)| f.eq_ignore_ascii_case(h.as_bytes()));
        let starts_numeric = first_fields.first().is_some_and(|f| parse_i64(f).is_some());
        let is_binance_header = first_fields.len() == 12
            && !starts_numeric
            && first_fields[0].to_ascii_lowercase().windows(4).any(|w| w == b"open");
        let l1 = loc(&src.path, 1);
        let found = || lossy(first);
        let (format, has_header) = match forced {
            Some(Format::KlineCsv) | None if is_kline_header => (Format::KlineCsv, true),
            Some(Format::KlineCsv) => return Err(DataError::MissingHeader { loc: l1, found: found() }),
            Some(Format::BinanceCsv) | None if is_binance_header => (Format::BinanceCsv, true),
            Some(Format::BinanceCsv) => (Format::BinanceCsv, false),
            None if starts_numeric && first_fields.len() == 12 => (Format::BinanceCsv, false),
            None if first_fields.len() == 6 => return Err(DataError::MissingHeader { loc: l1, found: found() }),
            None => return Err(DataError::UnknownFormat { loc: l1, found: found() }),
            Some(Format::Parquet) => unreachable!("parquet is not opened as CSV"),
        };
        if format == Format::BinanceCsv {
            src.ncols = 12;
            src.names = &BINANCE_NAMES;
            src.detect_us = true;
        } else {
            src.unit = Some(TimeUnit::Millis);
        }
        if has_header {
            src.start = (first_end + 1).min(src.buf.len());
            src.next_line = 2;
        }
        Ok(Opened { source: src, format })
    }

    pub(crate) fn path(&self) -> Arc<Path> {
        self.path.clone()
    }

    pub(crate) fn unit(&self) -> Option<TimeUnit> {
        self.unit
    }

    /// Append up to READ_SIZE bytes, compacting first.
    fn fill(&mut self) -> Result<(), DataError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let n = (&mut self.file).take(READ_SIZE).read_to_end(&mut self.buf).map_err(|e| io_err(&self.path, e))?;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Next block of up to `chunk_rows` whole lines (fewer if they exceed [`MAX_BLOCK_BYTES`]):
    /// (byte range in buf, first line, n lines). At EOF trailing blank lines/whitespace are dropped.
    fn next_block(&mut self) -> Result<Option<(usize, usize, u64, usize)>, DataError> {
        // Offsets relative to `self.start` (which `fill` may move).
        let mut scanned = 0usize;
        let mut lines = 0usize;
        let mut last_end = 0usize; // end of the last complete line
        loop {
            let mut cut = None;
            let mut long_line = false;
            for pos in memchr::memchr_iter(b'\n', &self.buf[self.start + scanned..]) {
                if scanned + pos - last_end > MAX_LINE_BYTES {
                    long_line = true;
                    break;
                }
                lines += 1;
                last_end = scanned + pos + 1;
                if lines == self.chunk_rows {
                    cut = Some(last_end);
                    break;
                }
            }
            let pending = self.buf.len() - self.start;
            long_line |= cut.is_none() && pending - last_end > MAX_LINE_BYTES;
            if cut.is_none() && lines > 0 && (pending >= MAX_BLOCK_BYTES || long_line) {
                // Hand out the complete lines first; a too-long line is reported on the next call.
                cut = Some(last_end);
            }
            if long_line && lines == 0 {
                return Err(DataError::LineTooLong { loc: loc(&self.path, self.next_line), max: MAX_LINE_BYTES });
            }
            if let Some(rel) = cut {
                let block = (self.start, self.start + rel, self.next_line, lines);
                self.next_line += lines as u64;
                self.start += rel;
                return Ok(Some(block));
            }
            if self.eof {
                let mut end = self.buf.len();
                while end > self.start && self.buf[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                if end == self.start {
                    self.start = self.buf.len();
                    return Ok(None);
                }
                let n = memchr::memchr_iter(b'\n', &self.buf[self.start..end]).count() + 1;
                let block = (self.start, end, self.next_line, n);
                self.next_line += n as u64;
                self.start = self.buf.len();
                return Ok(Some(block));
            }
            scanned = pending;
            self.fill()?;
        }
    }

    /// Parse the next block. `None` at end of file.
    pub(crate) fn next_chunk(&mut self) -> Option<RawChunk> {
        let (a, b, first_line, n_lines) = match self.next_block() {
            Ok(Some(x)) => x,
            Ok(None) => return None,
            Err(e) => {
                return Some(RawChunk { first_line: self.next_line, bars: vec![], error: Some(e), unit: self.unit })
            }
        };
        let buf = std::mem::take(&mut self.buf);
        let (mut chunk, blank_tail) = self.parse_block(&buf[a..b], first_line, n_lines);
        self.buf = buf;
        if blank_tail {
            // Blank lines from here to the end of the block: fine if the rest of the file is blank too.
            match self.rest_is_blank() {
                Ok(true) => chunk.error = None,
                Ok(false) => {}
                Err(e) => chunk.error = Some(e),
            }
        }
        chunk.unit = self.unit;
        Some(chunk)
    }

    /// Is everything after the current block whitespace? Consumes it if so.
    fn rest_is_blank(&mut self) -> Result<bool, DataError> {
        loop {
            if !self.buf[self.start..].iter().all(|c| c.is_ascii_whitespace()) {
                return Ok(false);
            }
            if self.eof {
                self.start = self.buf.len();
                return Ok(true);
            }
            self.start = self.buf.len();
            self.fill()?;
        }
    }

    /// Parses a block of whole lines into bars, stopping at the first bad line (the chunk then
    /// carries its error). Also says whether it stopped at a blank line followed only by blank
    /// lines in this block.
    fn parse_block(&mut self, block: &[u8], first_line: u64, n_lines: usize) -> (RawChunk, bool) {
        let mut bars = Vec::with_capacity(n_lines);
        let mut error = None;
        let mut blank_tail = false;
        // A block cut at a newline ends with '\n'; that is not an extra (empty) line.
        let block = block.strip_suffix(b"\n").unwrap_or(block);
        let mut offset = 0usize;
        for i in 0.. {
            if offset > block.len() {
                break;
            }
            let rest = &block[offset..];
            let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
            offset += line.len() + 1;
            let line = strip_cr(line);
            let plain = if self.detect_us { None } else { plain_line(line) };
            match plain.map_or_else(|| self.general_line(line, first_line + i as u64), Ok) {
                Ok(bar) => bars.push(bar),
                Err(e) => {
                    if matches!(e, DataError::EmptyLine { .. }) {
                        blank_tail = rest.iter().all(|c| c.is_ascii_whitespace());
                    }
                    error = Some(e);
                    break;
                }
            }
        }
        (RawChunk { first_line, bars, error, unit: None }, blank_tail)
    }

    /// Any line, or exactly what is wrong with it: line `ln` of the file.
    fn general_line(&mut self, line: &[u8], ln: u64) -> Result<Bar, DataError> {
        let l = || loc(&self.path, ln);
        if is_blank(line) {
            return Err(DataError::EmptyLine { loc: l() });
        }
        if !line.is_ascii() && std::str::from_utf8(line).is_err() {
            return Err(DataError::InvalidUtf8 { loc: l() });
        }
        let mut text: [&[u8]; 6] = [b""; 6];
        let mut n = 0;
        for f in fields(line) {
            if n < 6 {
                text[n] = f;
            }
            n += 1;
        }
        if n != self.ncols {
            return Err(DataError::ColumnCount { loc: l(), expected: self.ncols, found: n });
        }
        let raw_time = parse_i64(text[0]).ok_or(text[0]);
        if self.unit.is_none() {
            self.unit = Some(unit_of(raw_time.unwrap_or(0)));
        }
        let ctx = RowCtx {
            path: &self.path,
            names: self.names,
            detect_us: self.detect_us,
            unit: self.unit.unwrap_or(TimeUnit::Millis),
        };
        ctx.row(raw_time, [text[1], text[2], text[3], text[4], text[5]], ln)
    }
}

/// The common line of a kline CSV, parsed in one pass: six fields, each only digits with at most
/// one `.` (prices) and a leading `-` allowed, nothing else. Anything else (blanks, quotes, `+`,
/// exponents, more than 18 digits of time or 19 of a price, another field count) gives `None`,
/// and the line takes the general path, which reads it the same way or says what is wrong with it
/// (the tests compare both on every fixture).
fn plain_line(line: &[u8]) -> Option<Bar> {
    let mut at = 0;
    let time = plain_int(line, &mut at)?;
    let mut vals = [rust_decimal::Decimal::ZERO; 5];
    for v in &mut vals {
        if line.get(at) != Some(&b',') {
            return None;
        }
        at += 1;
        *v = plain_decimal(line, &mut at)?;
    }
    if at != line.len() {
        return None;
    }
    Some(Bar { open_time_ms: time, open: vals[0], high: vals[1], low: vals[2], close: vals[3], volume: vals[4] })
}

fn plain_int(b: &[u8], at: &mut usize) -> Option<i64> {
    let neg = b.get(*at) == Some(&b'-');
    *at += usize::from(neg);
    let start = *at;
    let mut v: i64 = 0;
    while let Some(&c) = b.get(*at) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + i64::from(d);
        *at += 1;
        if *at - start > 18 {
            return None;
        }
    }
    (*at > start).then_some(if neg { -v } else { v })
}

/// Exactly what `num::parse_decimal`'s fast path makes of such a field.
fn plain_decimal(b: &[u8], at: &mut usize) -> Option<rust_decimal::Decimal> {
    let neg = b.get(*at) == Some(&b'-');
    *at += usize::from(neg);
    let (mut mant, mut digits, mut scale, mut dot) = (0u64, 0u32, 0u32, false);
    while let Some(&c) = b.get(*at) {
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            if digits == 19 {
                return None;
            }
            mant = mant * 10 + u64::from(d);
            digits += 1;
            scale += u32::from(dot);
        } else if c == b'.' && !dot {
            dot = true;
        } else {
            break;
        }
        *at += 1;
    }
    (digits > 0)
        .then(|| rust_decimal::Decimal::from_parts(mant as u32, (mant >> 32) as u32, 0, neg && mant != 0, scale))
}

struct RowCtx<'a> {
    path: &'a Arc<Path>,
    names: &'static [&'static str],
    detect_us: bool,
    unit: TimeUnit,
}

fn unit_of(raw: i64) -> TimeUnit {
    if raw.unsigned_abs() >= MICROS_THRESHOLD as u64 {
        TimeUnit::Micros
    } else {
        TimeUnit::Millis
    }
}

impl RowCtx<'_> {
    /// One row: the open time (parsed, or its unparseable text) and the five decimal fields.
    #[inline]
    fn row(&self, time: Result<i64, &[u8]>, text: [&[u8]; 5], line: u64) -> Result<Bar, DataError> {
        let l = || loc(self.path, line);
        let raw = time.map_err(|t| DataError::Unparseable { loc: l(), column: self.names[0], text: lossy(t) })?;
        let open_time_ms = if self.detect_us {
            let unit = unit_of(raw);
            if unit != self.unit {
                return Err(DataError::TimeUnitChanged {
                    loc: l(),
                    raw,
                    unit: unit.name(),
                    first_unit: self.unit.name(),
                });
            }
            match unit {
                TimeUnit::Millis => raw,
                TimeUnit::Micros => {
                    if raw % 1000 != 0 {
                        return Err(DataError::SubMillisecond { loc: l(), raw });
                    }
                    raw / 1000
                }
            }
        } else {
            raw
        };
        let mut vals = [rust_decimal::Decimal::ZERO; 5];
        for k in 0..5 {
            vals[k] = parse_decimal(text[k]).map_err(|e| {
                let (loc, column, text) = (l(), self.names[k + 1], lossy(text[k]));
                match e {
                    NumError::Syntax => DataError::Unparseable { loc, column, text },
                    NumError::NonFinite => DataError::NonFinite { loc, column, text },
                    NumError::Inexact => DataError::Inexact { loc, column, text },
                }
            })?;
        }
        Ok(Bar { open_time_ms, open: vals[0], high: vals[1], low: vals[2], close: vals[3], volume: vals[4] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The one-pass reader's decimals: up to 19 digits, a point anywhere (or none), a
        /// sign, then a comma; the same mantissa and scale as `Decimal::from_str`, and the
        /// cursor left at the comma.
        #[test]
        fn plain_decimals_read_as_from_str_reads_them(digits in "[0-9]{1,19}", point in proptest::option::of(0usize..=19), neg: bool) {
            let mut text = digits.clone();
            if let Some(at) = point.filter(|&at| at <= digits.len()) {
                text.insert(at, '.');
            }
            if neg {
                text.insert(0, '-');
            }
            let line = format!("{text},1");
            let mut at = 0;
            let got = plain_decimal(line.as_bytes(), &mut at);
            let want = <rust_decimal::Decimal as std::str::FromStr>::from_str(&text).ok();
            proptest::prop_assert_eq!(got.map(|d| (d.mantissa(), d.scale())), want.map(|d| (d.mantissa(), d.scale())), "{}", text);
            proptest::prop_assert_eq!(at, text.len());
        }
    }

    /// The one-pass reader of plain lines reads exactly what the general path reads, and
    /// leaves everything else to it.
    #[test]
    fn plain_lines_read_as_the_general_path_reads_them() {
        let dir = tempfile_dir();
        let path = dir.join("x.csv");
        std::fs::write(&path, "open_time_ms,open,high,low,close,volume\n").unwrap();
        let mut source = CsvSource::open(Arc::from(path.as_path()), None, 16).unwrap().source;
        let plain = [
            "1640995200000,20000.00,20012.03,19984.41,19991.59,8.306",
            "0,1,2,0.5,1.,.5",
            "-5,-0,-0.00,-1.5,0.00002025,1234567890123456789",
            "1,9999999999999999999,1,1,1,0",
            "123456789012345678,1.5,1.5,1.5,1.5,1.5",
        ];
        for line in plain {
            let fast = plain_line(line.as_bytes()).unwrap_or_else(|| panic!("{line} is plain"));
            let general = source.general_line(line.as_bytes(), 2).unwrap();
            assert_eq!(fast, general, "{line}");
            for (a, b) in [(fast.open, general.open), (fast.volume, general.volume)] {
                assert_eq!(
                    (a.mantissa(), a.scale(), a.is_sign_negative()),
                    (b.mantissa(), b.scale(), b.is_sign_negative())
                );
            }
        }
        let not_plain = [
            "1, 2,3,4,5,6",
            "1,\"2\",3,4,5,6",
            "1,+2,3,4,5,6",
            "1,2e3,3,4,5,6",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "1,2,3,4,5,6,",
            "1,10000000000000000000,3,4,5,6",
            "1234567890123456789,2,3,4,5,6",
            "1,2..,3,4,5,6",
            "1,,3,4,5,6",
            "-,2,3,4,5,6",
            "",
        ];
        for line in not_plain {
            assert_eq!(plain_line(line.as_bytes()), None, "{line:?} is not plain");
        }
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("quantfold-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
