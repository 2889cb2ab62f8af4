//! The per-bar tables, `equity.csv`/`equity.parquet` and `series.csv`/`series.parquet`,
//! written while the run produces them, on a thread of their own.
//!
//! They hold one row per bar (and per recorded value), so a long run makes tens of millions of
//! rows: formatting them after the run would add a second pass as long as a good part of the
//! run itself, and holding every recorded value until then would cost memory. Streamed, they
//! are written on the core the run leaves free, and the run keeps only what the page draws.
//!
//! | file | columns |
//! |---|---|
//! | `equity.csv` | time (ISO), time_ms, equity, drawdown_pct |
//! | `equity.parquet` | time (UTC timestamp, ms), equity, drawdown_pct |
//! | `series.csv` | time (ISO), time_ms, name, value |
//! | `series.parquet` | time (UTC timestamp, ms), name, value |
//!
//! Series rows come in the order they were recorded: time order, and within one time the order
//! of the calls (declared indicators in name order). Floats are in their shortest round-trip
//! form ([`super::text`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;

use super::{
    metrics::Drawdown,
    text::{push_f64, push_i64, IsoTimes},
    ReportError,
};
use crate::record::EquityPoint;

/// Rows sent to the writer thread at once (and rows per Parquet batch).
const BATCH_ROWS: usize = 1 << 16;
/// Batches in flight: bounds the memory the writer can fall behind by.
const BATCHES_IN_FLIGHT: usize = 4;

/// One recorded value: the series is an index into the names registered so far.
#[derive(Debug, Clone, Copy)]
struct SeriesRow {
    time_ms: i64,
    series: u32,
    value: f64,
}

enum Batch {
    Equity(Vec<EquityPoint>),
    /// Names first registered with this batch (appended, in order), and the rows.
    Series(Vec<String>, Vec<SeriesRow>),
}

/// Streams the per-bar tables into a directory. Rows are buffered and handed to the writer
/// thread in batches; [`TableWriter::finish`] writes what is left and says what went wrong, if
/// anything did (a failed writer stops taking rows, and the run goes on).
pub struct TableWriter {
    tx: Option<mpsc::SyncSender<Batch>>,
    handle: Option<JoinHandle<Result<Vec<PathBuf>, ReportError>>>,
    equity: Vec<EquityPoint>,
    series: Vec<SeriesRow>,
    names: Vec<String>,
    /// Names registered since the last series batch.
    new_names: usize,
}

impl TableWriter {
    /// Creates the four files in `dir` (created if missing) and starts the writer thread.
    /// `initial_equity` starts the running peak of the drawdown.
    ///
    /// # Errors
    /// A file cannot be created.
    pub fn create(dir: &Path, initial_equity: f64) -> Result<TableWriter, ReportError> {
        std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
        let files = Files::create(dir, initial_equity)?;
        let (tx, rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let handle = std::thread::Builder::new()
            .name("report-tables".into())
            .spawn(move || files.run(rx))
            .map_err(|e| ReportError::io(dir, e))?;
        Ok(TableWriter {
            tx: Some(tx),
            handle: Some(handle),
            equity: Vec::with_capacity(BATCH_ROWS),
            series: Vec::with_capacity(BATCH_ROWS),
            names: Vec::new(),
            new_names: 0,
        })
    }

    pub fn equity(&mut self, point: EquityPoint) {
        self.equity.push(point);
        if self.equity.len() == BATCH_ROWS {
            let batch = std::mem::replace(&mut self.equity, Vec::with_capacity(BATCH_ROWS));
            self.send(Batch::Equity(batch));
        }
    }

    /// A recorded value of series number `series` (numbered in the order they first appear,
    /// from 0), called `name`: the name is read only the first time the number is seen.
    pub fn series(&mut self, series: usize, name: &str, time_ms: i64, value: f64) {
        if series >= self.names.len() {
            debug_assert_eq!(series, self.names.len(), "series are numbered in order of appearance");
            self.names.push(name.to_owned());
            self.new_names += 1;
        }
        self.series.push(SeriesRow { time_ms, series: series as u32, value });
        if self.series.len() == BATCH_ROWS {
            self.flush_series();
        }
    }

    fn flush_series(&mut self) {
        let names = self.names[self.names.len() - self.new_names..].to_vec();
        self.new_names = 0;
        let rows = std::mem::replace(&mut self.series, Vec::with_capacity(BATCH_ROWS));
        self.send(Batch::Series(names, rows));
    }

    fn send(&mut self, batch: Batch) {
        // A writer that failed has dropped its end; its error comes out of `finish`.
        if self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_err()) {
            self.tx = None;
        }
    }

    /// Writes the remaining rows, closes the files and returns their paths.
    ///
    /// # Errors
    /// The first write that failed.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, ReportError> {
        let equity = std::mem::take(&mut self.equity);
        if !equity.is_empty() {
            self.send(Batch::Equity(equity));
        }
        if !self.series.is_empty() || self.new_names > 0 {
            self.flush_series();
        }
        self.tx = None;
        let handle = self.handle.take().expect("invariant: finish runs once");
        handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        // Dropped without `finish` (the run failed): let the thread end, ignore its result.
        self.tx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The writer thread's side: the open files and the running state of the rows.
struct Files {
    dir: PathBuf,
    equity_csv: File,
    equity_parquet: BatchedWriter<File>,
    series_csv: File,
    series_parquet: BatchedWriter<File>,
    drawdown: Drawdown,
    times: IsoTimes,
    /// Series names as CSV fields, and as they are.
    csv_names: Vec<String>,
    names: Vec<String>,
    line: Vec<u8>,
}

impl Files {
    fn create(dir: &Path, initial_equity: f64) -> Result<Files, ReportError> {
        // Written a batch at a time straight from the batch's buffer: no BufWriter copy.
        let csv = |name: &str, header: &str| -> Result<File, ReportError> {
            let path = dir.join(name);
            let mut file = File::create(&path).map_err(|e| ReportError::io(&path, e))?;
            file.write_all(format!("{header}\n").as_bytes()).map_err(|e| ReportError::io(&path, e))?;
            Ok(file)
        };
        let parquet = |name: &str, schema: Schema| -> Result<BatchedWriter<File>, ReportError> {
            let path = dir.join(name);
            let file = File::create(&path).map_err(|e| ReportError::io(&path, e))?;
            // Uncompressed (still dictionary- and run-length-encoded by polars): compressing
            // tens of millions of rows cost a third of the table thread's time.
            ParquetWriter::new(file)
                .with_compression(ParquetCompression::Uncompressed)
                .batched(&schema)
                .map_err(|e| ReportError::polars(name, e))
        };
        let time = || Field::new("time".into(), DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)));
        Ok(Files {
            dir: dir.to_owned(),
            equity_csv: csv("equity.csv", "time,time_ms,equity,drawdown_pct")?,
            equity_parquet: parquet(
                "equity.parquet",
                Schema::from_iter([
                    time(),
                    Field::new("equity".into(), DataType::Float64),
                    Field::new("drawdown_pct".into(), DataType::Float64),
                ]),
            )?,
            series_csv: csv("series.csv", "time,time_ms,name,value")?,
            series_parquet: parquet(
                "series.parquet",
                Schema::from_iter([
                    time(),
                    Field::new("name".into(), DataType::String),
                    Field::new("value".into(), DataType::Float64),
                ]),
            )?,
            drawdown: Drawdown::new(initial_equity),
            times: IsoTimes::default(),
            csv_names: Vec::new(),
            names: Vec::new(),
            line: Vec::with_capacity(1 << 20),
        })
    }

    /// Takes batches until the sender is done, then closes the files. The first failure ends
    /// the thread (dropping the receiver, so the run stops sending).
    fn run(mut self, rx: mpsc::Receiver<Batch>) -> Result<Vec<PathBuf>, ReportError> {
        for batch in rx {
            match batch {
                Batch::Equity(points) => self.equity(&points)?,
                Batch::Series(names, rows) => {
                    self.csv_names.extend(names.iter().map(|n| csv_field(n)));
                    self.names.extend(names);
                    self.series(&rows)?;
                }
            }
        }
        let names = ["equity.csv", "equity.parquet", "series.csv", "series.parquet"];
        let paths: Vec<PathBuf> = names.iter().map(|n| self.dir.join(n)).collect();
        self.equity_csv.flush().map_err(|e| ReportError::io(&paths[0], e))?;
        self.equity_parquet.finish().map_err(|e| ReportError::polars("equity.parquet", e))?;
        self.series_csv.flush().map_err(|e| ReportError::io(&paths[2], e))?;
        self.series_parquet.finish().map_err(|e| ReportError::polars("series.parquet", e))?;
        Ok(paths)
    }

    fn equity(&mut self, points: &[EquityPoint]) -> Result<(), ReportError> {
        let drawdowns: Vec<f64> = points.iter().map(|p| self.drawdown.next(p.equity)).collect();
        let line = &mut self.line;
        line.clear();
        for (p, drawdown) in points.iter().zip(&drawdowns) {
            self.times.push(line, p.time_ms);
            line.push(b',');
            push_i64(line, p.time_ms);
            line.push(b',');
            push_f64(line, p.equity);
            line.push(b',');
            push_f64(line, *drawdown);
            line.push(b'\n');
        }
        let path = self.dir.join("equity.csv");
        self.equity_csv.write_all(line).map_err(|e| ReportError::io(&path, e))?;
        let times: Vec<i64> = points.iter().map(|p| p.time_ms).collect();
        let batch = DataFrame::new_infer_height(vec![
            time_column(times),
            Column::new("equity".into(), points.iter().map(|p| p.equity).collect::<Vec<_>>()),
            Column::new("drawdown_pct".into(), drawdowns),
        ])
        .map_err(|e| ReportError::polars("equity.parquet", e))?;
        self.equity_parquet.write_batch(&batch).map_err(|e| ReportError::polars("equity.parquet", e))
    }

    fn series(&mut self, rows: &[SeriesRow]) -> Result<(), ReportError> {
        if rows.is_empty() {
            return Ok(());
        }
        let line = &mut self.line;
        line.clear();
        for r in rows {
            self.times.push(line, r.time_ms);
            line.push(b',');
            push_i64(line, r.time_ms);
            line.push(b',');
            line.extend_from_slice(self.csv_names.get(r.series as usize).map_or("", String::as_str).as_bytes());
            line.push(b',');
            push_f64(line, r.value);
            line.push(b'\n');
        }
        let path = self.dir.join("series.csv");
        self.series_csv.write_all(line).map_err(|e| ReportError::io(&path, e))?;
        let names = &self.names;
        let batch = DataFrame::new_infer_height(vec![
            time_column(rows.iter().map(|r| r.time_ms).collect()),
            Column::new(
                "name".into(),
                rows.iter().map(|r| names.get(r.series as usize).map_or("", String::as_str)).collect::<Vec<_>>(),
            ),
            Column::new("value".into(), rows.iter().map(|r| r.value).collect::<Vec<_>>()),
        ])
        .map_err(|e| ReportError::polars("series.parquet", e))?;
        self.series_parquet.write_batch(&batch).map_err(|e| ReportError::polars("series.parquet", e))
    }
}

/// UTC milliseconds as a Parquet timestamp column named `time`.
fn time_column(times: Vec<i64>) -> Column {
    Int64Chunked::from_vec("time".into(), times)
        .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        .into_column()
}

/// A name as one CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_owned()
    }
}

/// Writes a finished record's tables (tests, and callers that did not stream them): the
/// whole equity curve, and the series as far as the record kept them.
///
/// # Errors
/// A file cannot be written.
pub fn write_tables(record: &crate::record::RunRecord, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut tables = TableWriter::create(dir, super::metrics::to_f64(record.initial_equity))?;
    for p in &record.equity {
        tables.equity(*p);
    }
    let mut rows: Vec<(i64, usize, f64)> = record
        .series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.points.iter().map(move |p| (p.time_ms, i, p.value)))
        .collect();
    rows.sort_by_key(|(t, i, _)| (*t, *i));
    // Numbered in order of first appearance, as the writer wants them.
    let mut number: Vec<Option<usize>> = vec![None; record.series.len()];
    let mut seen = 0;
    for (t, i, value) in rows {
        let n = *number[i].get_or_insert_with(|| {
            seen += 1;
            seen - 1
        });
        tables.series(n, &record.series[i].name, t, value);
    }
    tables.finish()
}
