//! Parquet chunk source: polars' `ParquetReader` with a row slice per chunk (the footer is read once
//! and reused), so only one chunk of rows is decoded and held at a time.
//!
//! Column types accepted, all converted exactly:
//! - `open_time_ms`: any integer type, or a string of digits. Milliseconds, no unit detection.
//! - prices/volume: String (parsed like CSV text), Decimal (i128 mantissa + column scale, exact),
//!   integers (exact), or Float32/Float64: each float is converted through its *shortest round-trip*
//!   decimal text (Rust's `Display`, e.g. `0.1f64` -> "0.1", never "0.1000000000000000055...") and that
//!   text is parsed as a decimal. This is exact w.r.t. the text a float writer meant, not w.r.t. the
//!   binary value; write prices as strings or decimals if that distinction matters.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;
use rust_decimal::Decimal;

use super::error::{DataError, Loc};
use super::num::{parse_decimal, parse_i64, NumError};
use super::{guard, Bar, RawChunk, TimeUnit};

pub(crate) const COLUMNS: [&str; 6] = ["open_time_ms", "open", "high", "low", "close", "volume"];

pub(crate) struct ParquetSource {
    path: Arc<Path>,
    metadata: FileMetadataRef,
    n_rows: usize,
    offset: usize,
    chunk_rows: usize,
}

fn perr(path: &Path, e: PolarsError) -> DataError {
    DataError::Polars { path: path.into(), source: e }
}

impl ParquetSource {
    pub(crate) fn path(&self) -> Arc<Path> {
        self.path.clone()
    }

    pub(crate) fn open(path: Arc<Path>, chunk_rows: usize) -> Result<Self, DataError> {
        let file = File::open(&path).map_err(|e| DataError::Io { path: path.as_ref().into(), source: e })?;
        let mut reader = ParquetReader::new(file);
        let (metadata, schema) = guard(|| {
            let metadata = reader.get_metadata()?.clone();
            Ok((metadata, reader.schema()?))
        })
        .map_err(|e| perr(&path, e))?;
        for c in COLUMNS {
            if !schema.contains(c) {
                return Err(DataError::ParquetSchema {
                    path: path.as_ref().into(),
                    column: c,
                    problem: "column not found".into(),
                });
            }
        }
        let n_rows = metadata.num_rows;
        if n_rows == 0 {
            return Err(DataError::NoBars { path: path.as_ref().into() });
        }
        Ok(ParquetSource { path, metadata, n_rows, offset: 0, chunk_rows: chunk_rows.max(1) })
    }

    pub(crate) fn next_chunk(&mut self) -> Option<RawChunk> {
        if self.offset >= self.n_rows {
            return None;
        }
        let off = self.offset;
        let len = self.chunk_rows.min(self.n_rows - off);
        self.offset += len;
        let first_line = off as u64 + 1;
        Some(match self.read(off, len) {
            Ok((bars, error)) => RawChunk { first_line, bars, error, unit: Some(TimeUnit::Millis) },
            Err(e) => {
                self.offset = self.n_rows;
                RawChunk { first_line, bars: vec![], error: Some(e), unit: Some(TimeUnit::Millis) }
            }
        })
    }

    fn read(&self, off: usize, len: usize) -> Result<(Vec<Bar>, Option<DataError>), DataError> {
        let file = File::open(&self.path).map_err(|e| DataError::Io { path: self.path.as_ref().into(), source: e })?;
        let mut reader = ParquetReader::new(file)
            .with_columns(Some(COLUMNS.iter().map(|c| c.to_string()).collect()))
            .with_slice(Some((off, len)));
        reader.set_metadata(self.metadata.clone());
        let df = guard(|| reader.finish()).map_err(|e| perr(&self.path, e))?;
        let n = df.height();
        let time = df.column(COLUMNS[0]).map_err(|e| perr(&self.path, e))?;
        let times = TimeCol::new(time).ok_or_else(|| DataError::ParquetSchema {
            path: self.path.as_ref().into(),
            column: COLUMNS[0],
            problem: format!("unsupported type {} (need an integer type or string)", time.dtype()),
        })?;
        let mut vals: Vec<ValCol> = Vec::with_capacity(5);
        for c in &COLUMNS[1..] {
            let col = df.column(c).map_err(|e| perr(&self.path, e))?;
            vals.push(ValCol::new(col).ok_or_else(|| DataError::ParquetSchema {
                path: self.path.as_ref().into(),
                column: c,
                problem: format!("unsupported type {} (need string, decimal, integer or float)", col.dtype()),
            })?);
        }
        // Column by column (sequential access); each stops at its first bad cell. The reported
        // error is the earliest row, and within a row the first column.
        let (t, t_err) = times.convert();
        let mut cols: Vec<Vec<Decimal>> = Vec::with_capacity(5);
        let mut first_err: Option<(usize, usize, CellError)> = t_err.map(|(r, e)| (r, 0, e));
        for (k, v) in vals.iter().enumerate() {
            let (c, err) = v.convert();
            if let Some((r, e)) = err {
                if first_err.as_ref().is_none_or(|(fr, _, _)| r < *fr) {
                    first_err = Some((r, k + 1, e));
                }
            }
            cols.push(c);
        }
        let good = first_err.as_ref().map_or(n, |(r, _, _)| *r);
        let bars = (0..good)
            .map(|i| Bar {
                open_time_ms: t[i],
                open: cols[0][i],
                high: cols[1][i],
                low: cols[2][i],
                close: cols[3][i],
                volume: cols[4][i],
            })
            .collect();
        let error = first_err.map(|(r, k, e)| {
            e.into_error(Loc { path: self.path.clone(), line: (off + r) as u64 + 1, is_row: true }, COLUMNS[k])
        });
        Ok((bars, error))
    }
}

enum CellError {
    Null,
    Num(NumError, String),
    Int(String),
}

impl CellError {
    fn into_error(self, loc: Loc, column: &'static str) -> DataError {
        match self {
            CellError::Null => DataError::Missing { loc, column },
            CellError::Int(text) => DataError::Unparseable { loc, column, text },
            CellError::Num(NumError::Syntax, text) => DataError::Unparseable { loc, column, text },
            CellError::Num(NumError::NonFinite, text) => DataError::NonFinite { loc, column, text },
            CellError::Num(NumError::Inexact, text) => DataError::Inexact { loc, column, text },
        }
    }
}

enum TimeCol {
    Int(Int64Chunked),
    Str(StringChunked),
}

impl TimeCol {
    fn new(c: &Column) -> Option<Self> {
        let dt = c.dtype();
        if dt.is_integer() {
            // u64 values above i64::MAX become null (then reported as missing) rather than wrap.
            Some(TimeCol::Int(c.cast(&DataType::Int64).ok()?.i64().ok()?.clone()))
        } else if dt.is_string() {
            Some(TimeCol::Str(c.str().ok()?.clone()))
        } else {
            None
        }
    }

    /// Values up to the first bad one, and that one's index and problem.
    fn convert(&self) -> (Vec<i64>, Option<(usize, CellError)>) {
        let mut out = Vec::new();
        match self {
            TimeCol::Int(ca) => {
                out.reserve(ca.len());
                for v in ca.iter() {
                    let i = out.len();
                    match v {
                        Some(v) => out.push(v),
                        None => return (out, Some((i, CellError::Null))),
                    }
                }
            }
            TimeCol::Str(ca) => {
                out.reserve(ca.len());
                for v in ca.iter() {
                    let i = out.len();
                    let Some(s) = v else { return (out, Some((i, CellError::Null))) };
                    match parse_i64(s.as_bytes()) {
                        Some(t) => out.push(t),
                        None => return (out, Some((i, CellError::Int(s.to_string())))),
                    }
                }
            }
        }
        (out, None)
    }
}

enum ValCol {
    Str(StringChunked),
    Dec(Int128Chunked, u32),
    Int(Int64Chunked),
    F64(Float64Chunked),
    F32(Float32Chunked),
}

impl ValCol {
    fn new(c: &Column) -> Option<Self> {
        Some(match c.dtype() {
            DataType::String => ValCol::Str(c.str().ok()?.clone()),
            DataType::Decimal(_, scale) => {
                let ca = c.decimal().ok()?;
                ValCol::Dec(ca.physical().clone(), u32::try_from(*scale).ok()?)
            }
            DataType::Float64 => ValCol::F64(c.f64().ok()?.clone()),
            DataType::Float32 => ValCol::F32(c.f32().ok()?.clone()),
            dt if dt.is_integer() => ValCol::Int(c.cast(&DataType::Int64).ok()?.i64().ok()?.clone()),
            _ => return None,
        })
    }

    /// Values up to the first bad one, and that one's index and problem.
    fn convert(&self) -> (Vec<Decimal>, Option<(usize, CellError)>) {
        fn run<T>(
            it: impl Iterator<Item = Option<T>>,
            len: usize,
            mut f: impl FnMut(T) -> Result<Decimal, CellError>,
        ) -> (Vec<Decimal>, Option<(usize, CellError)>) {
            let mut out = Vec::with_capacity(len);
            for v in it {
                let i = out.len();
                match v.ok_or(CellError::Null).and_then(&mut f) {
                    Ok(d) => out.push(d),
                    Err(e) => return (out, Some((i, e))),
                }
            }
            (out, None)
        }
        fn num(text: &str) -> Result<Decimal, CellError> {
            parse_decimal(text.as_bytes()).map_err(|e| CellError::Num(e, text.to_string()))
        }
        let mut scratch = String::new();
        match self {
            ValCol::Str(ca) => run(ca.iter(), ca.len(), num),
            ValCol::Dec(ca, scale) => run(ca.iter(), ca.len(), |m| {
                Decimal::try_from_i128_with_scale(m, *scale)
                    .map_err(|_| CellError::Num(NumError::Inexact, format!("{m}e-{scale}")))
            }),
            ValCol::Int(ca) => run(ca.iter(), ca.len(), |v| Ok(Decimal::from(v))),
            ValCol::F64(ca) => run(ca.iter(), ca.len(), |f| {
                scratch.clear();
                let _ = write!(scratch, "{f}");
                num(&scratch)
            }),
            ValCol::F32(ca) => run(ca.iter(), ca.len(), |f| {
                scratch.clear();
                let _ = write!(scratch, "{f}");
                num(&scratch)
            }),
        }
    }
}
