//! CSV chunk source: we cut the file into blocks of whole lines ourselves (so every block starts at a
//! known line number) and hand each block to polars' CSV parser, all columns typed `String` (polars'
//! own Decimal parser rounds to a fixed scale, so it is not exact for our inputs). The strings are then
//! parsed exactly by [`super::num`]. If polars rejects a block or returns nulls (ragged line, empty
//! field, blank line, bad UTF-8), the block is re-scanned line by line to name the exact line.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use super::error::{DataError, Loc};
use super::num::{parse_decimal, parse_i64, trim_field, NumError};
use super::{guard, Bar, Format, RawChunk, TimeUnit};

const READ_SIZE: u64 = 4 << 20;
/// A line longer than this (bytes, without the newline) is an error: bounds memory on binary or
/// newline-free input.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;
/// A block is cut early (at a line end) once it holds this many bytes.
const MAX_BLOCK_BYTES: usize = 32 << 20;
/// Below this many rows a block is converted on the calling thread.
const PAR_MIN_ROWS: usize = 8192;
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
    schema: SchemaRef,
    /// Binance: detect ms/µs per row, all rows must agree with the first.
    detect_us: bool,
    unit: Option<TimeUnit>,
    threads: usize,
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
            schema: Arc::new(Schema::default()),
            detect_us: false,
            unit: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(8),
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
        // The open time is parsed by polars as Int64 (strict: digits, optional sign, leading blanks);
        // everything else as String, converted exactly by us.
        src.schema = Arc::new(Schema::from_iter(
            src.names
                .iter()
                .enumerate()
                .map(|(i, n)| Field::new((*n).into(), if i == 0 { DataType::Int64 } else { DataType::String })),
        ));
        Ok(Opened { source: src, format })
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
        let block = &buf[a..b];
        let fast = self.parse_fast(block, first_line, n_lines);
        let (mut chunk, blank_tail) = match fast {
            Some(c) => (c, false),
            None => self.parse_slow(block, first_line),
        };
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

    /// polars path. `None`: polars refused the block or it contains nulls; use the slow path.
    fn parse_fast(&mut self, block: &[u8], first_line: u64, n_lines: usize) -> Option<RawChunk> {
        let parse_options = CsvParseOptions {
            // No quoting: one line is always one row, so row i is line first_line + i.
            // Fields wrapped in quotes are unwrapped by our number parser (the time column then
            // fails polars' integer parser and the block takes the slow path).
            quote_char: None,
            truncate_ragged_lines: false,
            ..Default::default()
        };
        let df = guard(|| {
            CsvReadOptions::default()
                .with_has_header(false)
                .with_schema(Some(self.schema.clone()))
                .with_parse_options(parse_options)
                .with_raise_if_empty(false)
                .into_reader_with_file_handle(Cursor::new(block))
                .finish()
        })
        .ok()?;
        if df.height() != n_lines || df.columns().iter().any(|c| c.null_count() > 0) {
            return None;
        }
        let times = df.columns()[0].i64().ok()?;
        let strs: Vec<&StringChunked> = df.columns()[1..6].iter().map(|c| c.str()).collect::<PolarsResult<_>>().ok()?;
        // polars returns one array per parse task; normally all columns share the boundaries.
        let t_lens: Vec<usize> = times.downcast_iter().map(|a| a.len()).collect();
        let aligned = strs.iter().all(|c| c.downcast_iter().map(|a| a.len()).eq(t_lens.iter().copied()));
        let (times, strs): (Cow<'_, Int64Chunked>, Vec<Cow<'_, StringChunked>>) = if aligned {
            (Cow::Borrowed(times), strs.into_iter().map(Cow::Borrowed).collect())
        } else {
            (times.rechunk(), strs.into_iter().map(|c| c.rechunk()).collect())
        };
        let t_arrs: Vec<_> = times.downcast_iter().collect();
        let s_arrs: Vec<Vec<_>> = strs.iter().map(|c| c.downcast_iter().collect()).collect();
        if self.unit.is_none() {
            self.unit = Some(unit_of(t_arrs.first().and_then(|a| a.get(0)).unwrap_or(0)));
        }
        let ctx = RowCtx {
            path: &self.path,
            names: self.names,
            detect_us: self.detect_us,
            unit: self.unit.unwrap_or(TimeUnit::Millis),
        };
        let n = df.height();
        let mut bars = vec![ZERO_BAR; n];
        // Split the arrays into `parts` contiguous groups of about n/parts rows, one per thread;
        // each group fills its own disjoint slice of `bars`.
        let parts = if n >= PAR_MIN_ROWS { self.threads.max(1) } else { 1 };
        let target = n.div_ceil(parts);
        let mut groups: Vec<(usize, usize, usize)> = Vec::new(); // (first array, end array, first row)
        let (mut g_start, mut g_rows, mut row) = (0, 0, 0);
        for (k, a) in t_arrs.iter().enumerate() {
            g_rows += a.len();
            if g_rows >= target || k + 1 == t_arrs.len() {
                groups.push((g_start, k + 1, row));
                row += g_rows;
                g_start = k + 1;
                g_rows = 0;
            }
        }
        let fill = |(a0, a1, r0): (usize, usize, usize), out: &mut [Bar]| -> Option<(usize, DataError)> {
            let mut i = 0;
            for k in a0..a1 {
                let (t, s) = (t_arrs[k], [s_arrs[0][k], s_arrs[1][k], s_arrs[2][k], s_arrs[3][k], s_arrs[4][k]]);
                for j in 0..t.len() {
                    let text = [
                        s[0].value(j).as_bytes(),
                        s[1].value(j).as_bytes(),
                        s[2].value(j).as_bytes(),
                        s[3].value(j).as_bytes(),
                        s[4].value(j).as_bytes(),
                    ];
                    match ctx.row(Ok(t.value(j)), text, first_line + (r0 + i) as u64) {
                        Ok(b) => out[i] = b,
                        Err(e) => return Some((i, e)),
                    }
                    i += 1;
                }
            }
            None
        };
        let mut slices: Vec<&mut [Bar]> = Vec::with_capacity(groups.len());
        let mut rest: &mut [Bar] = &mut bars;
        for w in 0..groups.len() {
            let end = groups.get(w + 1).map_or(n, |g| g.2);
            let (head, tail) = rest.split_at_mut(end - groups[w].2);
            slices.push(head);
            rest = tail;
        }
        let results: Vec<Option<(usize, DataError)>> = if groups.len() == 1 {
            vec![fill(groups[0], slices[0])]
        } else {
            std::thread::scope(|sc| {
                let handles: Vec<_> = groups
                    .iter()
                    .zip(slices)
                    .map(|(&g, out)| {
                        let fill = &fill;
                        sc.spawn(move || fill(g, out))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("conversion thread panicked")).collect()
            })
        };
        let mut error = None;
        for (g, r) in groups.iter().zip(results) {
            if let Some((i, e)) = r {
                bars.truncate(g.2 + i);
                error = Some(e);
                break;
            }
        }
        Some(RawChunk { first_line, bars, error, unit: None })
    }

    /// Line-by-line path: exact diagnostics for whatever polars did not like.
    /// Also says whether it stopped at a blank line followed only by blank lines in this block.
    fn parse_slow(&mut self, block: &[u8], first_line: u64) -> (RawChunk, bool) {
        let mut bars = Vec::new();
        let mut error = None;
        let mut blank_tail = false;
        let mut text: [&[u8]; 6] = [b""; 6];
        let mut offset = 0usize;
        // A block cut at a newline ends with '\n'; that is not an extra (empty) line.
        let block = block.strip_suffix(b"\n").unwrap_or(block);
        for (i, line) in block.split(|&c| c == b'\n').enumerate() {
            let ln = first_line + i as u64;
            let rest = &block[offset..];
            offset += line.len() + 1;
            let line = strip_cr(line);
            let l = || loc(&self.path, ln);
            if is_blank(line) {
                error = Some(DataError::EmptyLine { loc: l() });
                blank_tail = rest.iter().all(|c| c.is_ascii_whitespace());
                break;
            }
            if std::str::from_utf8(line).is_err() {
                error = Some(DataError::InvalidUtf8 { loc: l() });
                break;
            }
            let mut n = 0;
            for f in fields(line) {
                if n < 6 {
                    text[n] = f;
                }
                n += 1;
            }
            if n != self.ncols {
                error = Some(DataError::ColumnCount { loc: l(), expected: self.ncols, found: n });
                break;
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
            match ctx.row(raw_time, [text[1], text[2], text[3], text[4], text[5]], ln) {
                Ok(b) => bars.push(b),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        (RawChunk { first_line, bars, error, unit: None }, blank_tail)
    }
}

struct RowCtx<'a> {
    path: &'a Arc<Path>,
    names: &'static [&'static str],
    detect_us: bool,
    unit: TimeUnit,
}

const ZERO_BAR: Bar = Bar {
    open_time_ms: 0,
    open: rust_decimal::Decimal::ZERO,
    high: rust_decimal::Decimal::ZERO,
    low: rust_decimal::Decimal::ZERO,
    close: rust_decimal::Decimal::ZERO,
    volume: rust_decimal::Decimal::ZERO,
};

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
