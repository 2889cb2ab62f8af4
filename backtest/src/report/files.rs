//! The trades tables (`trades.csv`, `trades.parquet`), written with polars.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_decimal::Decimal;

use super::{iso_utc, ReportError};
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

fn create(path: &Path) -> Result<BufWriter<File>, ReportError> {
    File::create(path).map(|f| BufWriter::with_capacity(1 << 20, f)).map_err(|e| ReportError::io(path, e))
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

/// Snappy, Parquet's customary codec: every reader has it (the trades table is small).
fn parquet_writer<W: Write>(file: W) -> ParquetWriter<W> {
    ParquetWriter::new(file).with_compression(ParquetCompression::Snappy)
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
