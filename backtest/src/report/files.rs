//! The CSV and Parquet tables, written with polars.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_decimal::Decimal;

use super::{iso_utc, metrics, push_iso_utc, ReportError};
use crate::record::RunRecord;

/// How money columns are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Money {
    /// The exact decimal text (CSV).
    Text,
    /// Parquet DECIMAL(38, s), s the column's largest scale (text if that does not fit).
    Decimal,
}

fn money_column(name: &str, values: &[Decimal], how: Money) -> PolarsResult<Column> {
    if how == Money::Decimal {
        let scale = values.iter().map(|d| d.scale()).max().unwrap_or(0);
        let limit = 10i128.pow(38);
        let mantissas: Option<Vec<i128>> = values
            .iter()
            .map(|d| {
                10i128
                    .checked_pow(scale - d.scale())
                    .and_then(|f| d.mantissa().checked_mul(f))
                    .filter(|m| m.abs() < limit)
            })
            .collect();
        if let Some(m) = mantissas {
            let ca = Int128Chunked::from_vec(name.into(), m).into_decimal(38, scale as usize)?;
            return Ok(ca.into_series().into_column());
        }
    }
    Ok(Column::new(name.into(), values.iter().map(|d| d.to_string()).collect::<Vec<_>>()))
}

fn trades_frame(record: &RunRecord, how: Money) -> PolarsResult<DataFrame> {
    let t = &record.trades;
    let dec = |name: &str, f: &dyn Fn(&crate::record::Trade) -> Decimal| {
        money_column(name, &t.iter().map(f).collect::<Vec<_>>(), how)
    };
    DataFrame::new_infer_height(vec![
        Column::new("symbol".into(), t.iter().map(|x| x.symbol.as_str()).collect::<Vec<_>>()),
        Column::new("side".into(), t.iter().map(|x| x.side.as_str()).collect::<Vec<_>>()),
        Column::new("entry_time".into(), t.iter().map(|x| iso_utc(x.entry_time_ms)).collect::<Vec<_>>()),
        Column::new("exit_time".into(), t.iter().map(|x| iso_utc(x.exit_time_ms)).collect::<Vec<_>>()),
        dec("qty", &|x| x.qty)?,
        dec("entry_price", &|x| x.entry_price)?,
        dec("exit_price", &|x| x.exit_price)?,
        dec("pnl", &|x| x.pnl)?,
        dec("fees", &|x| x.fees)?,
        dec("net_pnl", &|x| x.pnl - x.fees)?,
    ])
}

/// Rows per batch of the equity tables: bounds the memory their time strings take (a 10M-bar
/// run would otherwise hold 10M strings at once).
const EQUITY_BATCH_ROWS: usize = 1 << 16;

fn equity_schema() -> Schema {
    Schema::from_iter([
        Field::new("time".into(), DataType::String),
        Field::new("time_ms".into(), DataType::Int64),
        Field::new("equity".into(), DataType::Float64),
        Field::new("drawdown_pct".into(), DataType::Float64),
    ])
}

/// The equity table (time (ISO), time_ms, equity, drawdown_pct) in batches of
/// [`EQUITY_BATCH_ROWS`], each handed to `write`.
fn equity_batches(record: &RunRecord, mut write: impl FnMut(&DataFrame) -> PolarsResult<()>) -> PolarsResult<()> {
    let df = metrics::equity_frame(record)?;
    let mut iso = String::new();
    for (offset, points) in (0..).step_by(EQUITY_BATCH_ROWS).zip(record.equity.chunks(EQUITY_BATCH_ROWS)) {
        let part = df.slice(offset, points.len());
        let mut time = StringChunkedBuilder::new("time".into(), points.len());
        for p in points {
            iso.clear();
            push_iso_utc(&mut iso, p.time_ms);
            time.append_value(&iso);
        }
        let mut columns = vec![time.finish().into_column()];
        for name in ["time_ms", "equity", "drawdown_pct"] {
            columns.push(part.column(name)?.clone());
        }
        write(&DataFrame::new_infer_height(columns)?)?;
    }
    Ok(())
}

fn series_frame(record: &RunRecord) -> PolarsResult<DataFrame> {
    let s = &record.series;
    DataFrame::new_infer_height(vec![
        Column::new("time".into(), s.iter().map(|p| iso_utc(p.time_ms)).collect::<Vec<_>>()),
        Column::new("time_ms".into(), s.iter().map(|p| p.time_ms).collect::<Vec<_>>()),
        Column::new("name".into(), s.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()),
        Column::new("value".into(), s.iter().map(|p| p.value).collect::<Vec<_>>()),
    ])
}

fn create(path: &Path) -> Result<BufWriter<File>, ReportError> {
    File::create(path).map(BufWriter::new).map_err(|e| ReportError::io(path, e))
}

fn write_csv(mut df: DataFrame, path: &Path) -> Result<PathBuf, ReportError> {
    let mut file = create(path)?;
    CsvWriter::new(&mut file).finish(&mut df).map_err(|e| ReportError::polars(path.display().to_string(), e))?;
    file.flush().map_err(|e| ReportError::io(path, e))?;
    Ok(path.to_path_buf())
}

fn write_parquet(mut df: DataFrame, path: &Path) -> Result<PathBuf, ReportError> {
    let mut file = create(path)?;
    parquet_writer(&mut file).finish(&mut df).map_err(|e| ReportError::polars(path.display().to_string(), e))?;
    file.flush().map_err(|e| ReportError::io(path, e))?;
    Ok(path.to_path_buf())
}

fn built<T>(what: &Path, r: PolarsResult<T>) -> Result<T, ReportError> {
    r.map_err(|e| ReportError::polars(what.display().to_string(), e))
}

/// `equity.csv` at `path`: time (ISO), time_ms, equity, drawdown_pct, from the record's
/// `f64` curve (floats in their shortest round-trip form). The driver may stream an exact
/// one instead and skip this (see [`super::WriteOptions`]).
///
/// # Errors
/// polars or the file system.
pub fn write_equity_csv(record: &RunRecord, path: &Path) -> Result<PathBuf, ReportError> {
    let mut file = create(path)?;
    let mut writer = CsvWriter::new(&mut file).batched(&equity_schema()).map_err(|e| polars_at(path, e))?;
    equity_batches(record, |df| writer.write_batch(df)).map_err(|e| polars_at(path, e))?;
    writer.finish().map_err(|e| polars_at(path, e))?;
    drop(writer);
    file.flush().map_err(|e| ReportError::io(path, e))?;
    Ok(path.to_path_buf())
}

/// `equity.parquet` at `path`: the same table as `equity.csv`.
pub(crate) fn write_equity_parquet(record: &RunRecord, path: &Path) -> Result<PathBuf, ReportError> {
    let mut file = create(path)?;
    let mut writer = parquet_writer(&mut file).batched(&equity_schema()).map_err(|e| polars_at(path, e))?;
    equity_batches(record, |df| writer.write_batch(df)).map_err(|e| polars_at(path, e))?;
    writer.finish().map_err(|e| polars_at(path, e))?;
    drop(writer);
    file.flush().map_err(|e| ReportError::io(path, e))?;
    Ok(path.to_path_buf())
}

/// Snappy, Parquet's customary codec: every reader has it, and it costs a fraction of zstd's
/// time on a 10M-row equity curve (the tables are small next to the run that made them).
fn parquet_writer<W: Write>(file: W) -> ParquetWriter<W> {
    ParquetWriter::new(file).with_compression(ParquetCompression::Snappy)
}

fn polars_at(path: &Path, e: PolarsError) -> ReportError {
    ReportError::polars(path.display().to_string(), e)
}

/// `trades.csv` (exact decimal text) and `trades.parquet` (DECIMAL columns) in `dir`.
///
/// # Errors
/// polars or the file system.
pub fn write_trades(record: &RunRecord, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let csv = dir.join("trades.csv");
    let parquet = dir.join("trades.parquet");
    Ok(vec![
        write_csv(built(&csv, trades_frame(record, Money::Text))?, &csv)?,
        write_parquet(built(&parquet, trades_frame(record, Money::Decimal))?, &parquet)?,
    ])
}

/// `series.csv` and `series.parquet` in `dir`: time (ISO), time_ms, name, value (long format).
///
/// # Errors
/// polars or the file system.
pub fn write_series(record: &RunRecord, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let csv = dir.join("series.csv");
    let parquet = dir.join("series.parquet");
    let df = built(&csv, series_frame(record))?;
    Ok(vec![write_csv(df.clone(), &csv)?, write_parquet(df, &parquet)?])
}
