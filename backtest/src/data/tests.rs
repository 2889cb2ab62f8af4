use std::path::{Path, PathBuf};
use std::str::FromStr;

use polars::prelude::*;
use rand::{RngCore, SeedableRng};
use rust_decimal::Decimal;

use super::TimeUnit;
use super::*;

fn fx(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/klines").join(name)
}

/// A scratch file under the system temp dir (unique per process and name).
fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quantfold-backtest-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn opts() -> ReadOptions {
    ReadOptions::new().symbol("T")
}

/// The error for `path` must be exactly `path:line: msg`, whatever the chunk size (so validation
/// state and line numbers are right across chunk boundaries, and fast and slow paths agree).
fn assert_err_at(path: &Path, line: u64, msg: &str) {
    for prefetch in [false, true] {
        for chunk in [1, 2, 3, 4, 5, 7, DEFAULT_CHUNK_ROWS] {
            let e = load(path, &opts().chunk_rows(chunk).prefetch(prefetch)).expect_err("should fail");
            assert_eq!(
                e.to_string(),
                format!("{}:{}: {}", path.display(), line, msg),
                "chunk_rows {chunk} prefetch {prefetch}"
            );
            assert_eq!(e.loc().map(|l| l.line), Some(line));
        }
    }
}

fn assert_fx_err(name: &str, line: u64, msg: &str) {
    assert_err_at(&fx(name), line, msg)
}

#[test]
fn good_file_loads() {
    let (info, bars) = load(fx("good_TEST_1m.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(info.symbol, "TEST");
    assert_eq!(info.format, Format::KlineCsv);
    assert_eq!(info.bars, 6);
    assert_eq!(bars.len(), 6);
    assert_eq!(info.interval_ms, Some(60_000));
    assert_eq!(info.first_open_ms, Some(1_700_000_000_000));
    assert_eq!(info.last_open_ms, Some(1_700_000_300_000));
    assert_eq!(info.gaps, GapReport::default());
    assert_eq!(
        bars[3],
        Bar {
            open_time_ms: 1_700_000_180_000,
            open: d("101.2"),
            high: d("101.9"),
            low: d("100.9"),
            close: d("101.4"),
            volume: d("7.25"),
        }
    );
}

#[test]
fn crlf_bom_quotes_and_trailing_blank_lines_are_fine() {
    let (_, want) = load(fx("good_TEST_1m.csv"), &opts()).unwrap();
    for name in ["good_TEST_1m_crlf.csv", "good_TEST_1m_trailing-blank.csv", "good_TEST_1m_bom-quoted.csv"] {
        for chunk in [1, 2, 4, DEFAULT_CHUNK_ROWS] {
            let (info, bars) = load(fx(name), &ReadOptions::new().chunk_rows(chunk)).unwrap();
            assert_eq!(bars, want, "{name} chunk {chunk}");
            assert_eq!(info.symbol, "TEST");
        }
    }
}

#[test]
fn bad_numbers() {
    assert_fx_err("bad_unparseable.csv", 4, "high `1O1.5` is not a number");
    assert_fx_err("bad_nonfinite.csv", 5, "close `NaN` is not a finite number");
    assert_fx_err("bad_empty_field.csv", 5, "volume `` is not a number");
}

#[test]
fn bad_values() {
    assert_fx_err("bad_negative_price.csv", 3, "low -100.0 is negative");
    assert_fx_err("bad_negative_volume.csv", 6, "volume -3.0 is negative");
    assert_fx_err("bad_zero_price.csv", 4, "open is zero; prices must be positive");
    assert_fx_err("bad_high_below_low.csv", 5, "high 100.5 is below low 101");
    assert_fx_err("bad_open_outside.csv", 4, "open 102.0 is outside [low 100.5, high 101.5]");
    assert_fx_err("bad_close_outside.csv", 6, "close 100.0 is outside [low 101.0, high 101.6]");
}

#[test]
fn bad_times() {
    assert_fx_err("bad_duplicate_time.csv", 5, "duplicate open time 1700000120000 (also at line 4)");
    assert_fx_err(
        "bad_out_of_order.csv",
        6,
        "open time 1700000060000 is before the previous bar's 1700000180000 (line 5)",
    );
    // Steps 60s, 60s, 90s: interval inferred as 60s (most common), 90s is not a multiple.
    assert_fx_err(
        "bad_off_grid.csv",
        5,
        "step of 90000 ms from the previous bar (line 4) is not a whole multiple of the 1m interval",
    );
}

#[test]
fn bad_shape() {
    assert_fx_err("bad_too_many_columns.csv", 3, "expected 6 columns, found 7");
    assert_fx_err("bad_too_few_columns.csv", 4, "expected 6 columns, found 5");
    assert_fx_err("bad_blank_line.csv", 4, "empty line");
    assert_fx_err(
        "bad_missing_header.csv",
        1,
        "missing header: expected `open_time_ms,open,high,low,close,volume`, found \
         `1700000000000,100.0,101.0,99.5,100.5,12.3`",
    );
    assert_fx_err(
        "bad_wrong_header.csv",
        1,
        "missing header: expected `open_time_ms,open,high,low,close,volume`, found \
         `time,open,high,low,close,volume`",
    );
    let p = fx("bad_empty.csv");
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: empty file", p.display()));
    let p = fx("bad_header_only.csv");
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: no data rows", p.display()));
    // Garbage first line.
    let p = tmp("garbage.csv", b"hello world\n1,2,3\n");
    let e = load(&p, &opts()).unwrap_err();
    assert!(matches!(e, DataError::UnknownFormat { .. }), "{e}");
    assert_eq!(e.loc().unwrap().line, 1);
}

#[test]
fn first_error_in_file_order_wins() {
    // Steps 30s, 60s, 60s: interval 1m. Line 3 has the off-grid step, line 6 is unparseable: line 3
    // must be reported although the parse error is found first (the interval needs reading ahead).
    let body = "open_time_ms,open,high,low,close,volume\n\
        1700000000000,1,1,1,1,1\n\
        1700000030000,1,1,1,1,1\n\
        1700000090000,1,1,1,1,1\n\
        1700000150000,1,1,1,1,1\n\
        1700000210000,1,x,1,1,1\n";
    let p = tmp("order.csv", body.as_bytes());
    assert_err_at(&p, 3, "step of 30000 ms from the previous bar (line 2) is not a whole multiple of the 1m interval");
}

#[test]
fn exact_decimals() {
    let (info, bars) = load(fx("test_TINY-BTC_1m_exact.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(info.symbol, "TINY-BTC");
    assert_eq!(bars[0].open, d("0.00002025"));
    // Same mantissa and scale as written, not just numerically equal.
    assert_eq!(bars[0].open.to_string(), "0.00002025");
    assert_eq!(bars[0].open.mantissa(), 2025);
    assert_eq!(bars[0].open.scale(), 8);
    assert_eq!(bars[0].high.to_string(), "0.0000203");
    assert_eq!(bars[1].high.to_string(), "0.000020251");
    assert_eq!(bars[2].high.to_string(), "0.00002030");
    assert_eq!(bars[2].volume.to_string(), "31.00000001");
    // Exponent notation is applied exactly.
    assert_eq!(bars[3].open, d("0.0000203"));
    // Decimal arithmetic stays exact: 0.00002025 * 3 == 0.00006075.
    assert_eq!(bars[0].open * Decimal::from(3), d("0.00006075"));
    assert_eq!(info.gaps.count, 1);
}

#[test]
fn binance_ms_and_us() {
    let (_, want) = load(fx("binance_BTCBUSD_1m_2022-12-13_head.csv"), &ReadOptions::default()).unwrap();
    for (name, unit) in [
        ("binance_BTCBUSD_1m_2022-12-13_12col-ms.csv", TimeUnit::Millis),
        ("binance_BTCBUSD_1m_2022-12-13_12col-us.csv", TimeUnit::Micros),
    ] {
        for chunk in [7, DEFAULT_CHUNK_ROWS] {
            let (info, bars) = load(fx(name), &ReadOptions::new().chunk_rows(chunk)).unwrap();
            assert_eq!(info.format, Format::BinanceCsv, "{name}");
            assert_eq!(info.time_unit, unit, "{name}");
            assert_eq!(info.symbol, "BTCBUSD");
            assert_eq!(info.interval_ms, Some(60_000));
            assert_eq!(bars.len(), 60);
            assert_eq!(bars[..], want[..60], "{name}");
            assert_eq!(bars[0].open_time_ms, 1_670_889_600_000);
        }
    }
}

#[test]
fn binance_errors() {
    let row = |t: i64| format!("{t},1,1,1,1,1,{},0,0,0,0,0\n", t + 59_999);
    // Header row accepted and skipped; data rows then start at line 2.
    let header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,\
                  taker_buy_volume,taker_buy_quote_volume,ignore\n";
    let body = format!("{header}{}{}", row(1_700_000_000_000), row(1_700_000_060_000));
    let (info, bars) = load(tmp("bh.csv", body.as_bytes()), &opts()).unwrap();
    assert_eq!((info.format, bars.len()), (Format::BinanceCsv, 2));

    // µs file with one ms row.
    let body = format!("{}{}{}", row(1_700_000_000_000_000), row(1_700_000_060_000_000), row(1_700_000_120_000));
    let p = tmp("mixed.csv", body.as_bytes());
    assert_err_at(&p, 3, "open time 1700000120000 is in ms but the file started in µs");
    // µs not a whole ms.
    let body = format!("{}{}", row(1_700_000_000_000_000), row(1_700_000_060_000_500));
    let p = tmp("subms.csv", body.as_bytes());
    assert_err_at(&p, 2, "open time 1700000060000500 µs is not a whole millisecond");
    // 11 columns.
    let body = format!("{}1700000060000,1,1,1,1,1,1700000119999,0,0,0,0\n", row(1_700_000_000_000));
    let p = tmp("b11.csv", body.as_bytes());
    assert_err_at(&p, 2, "expected 12 columns, found 11");
}

fn write_parquet(name: &str, df: &mut DataFrame) -> PathBuf {
    let p = tmp(name, b"");
    let f = std::fs::File::create(&p).unwrap();
    ParquetWriter::new(f).with_row_group_size(Some(7)).finish(df).unwrap();
    p
}

#[test]
fn parquet_round_trip() {
    let src = fx("coinbase_BTCUSD_1m_2018-04-04_gaps.csv");
    let (csv_info, want) = load(&src, &ReadOptions::new().symbol("BTCUSD")).unwrap();
    // Columns as the exact text of the CSV file.
    let text = std::fs::read_to_string(&src).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let times: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    let col = |k: usize| Column::new(parquet::COLUMNS[k].into(), rows.iter().map(|r| r[k]).collect::<Vec<_>>());
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("open_time_ms".into(), times.clone()),
        col(1),
        col(2),
        col(3),
        col(4),
        col(5),
    ])
    .unwrap();
    let p = write_parquet("coinbase_BTCUSD_1m_str.parquet", &mut df);
    for chunk in [5, DEFAULT_CHUNK_ROWS] {
        let (info, bars) = load(&p, &ReadOptions::new().symbol("BTCUSD").chunk_rows(chunk)).unwrap();
        assert_eq!(info.format, Format::Parquet);
        assert_eq!(bars, want);
        // Same gaps; Parquet locations are data rows (CSV line 61 = row 60).
        assert_eq!((info.gaps.count, info.gaps.missing_bars), (2, 433));
        let mut g = csv_info.gaps.largest.clone().unwrap();
        g.line -= 1;
        assert_eq!(info.gaps.largest, Some(g));
    }

    // Decimal columns (scale 8, more decimals than most values have) read back exactly.
    let dec = |k: usize| {
        let m: Vec<i128> = want
            .iter()
            .map(|b| {
                let mut v = [b.open, b.high, b.low, b.close, b.volume][k - 1];
                v.rescale(8);
                v.mantissa()
            })
            .collect();
        Int128Chunked::from_vec(parquet::COLUMNS[k].into(), m).into_decimal(38, 8).unwrap().into_series().into_column()
    };
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("open_time_ms".into(), times.clone()),
        dec(1),
        dec(2),
        dec(3),
        dec(4),
        dec(5),
    ])
    .unwrap();
    let p = write_parquet("coinbase_BTCUSD_1m_dec.parquet", &mut df);
    let (_, bars) = load(&p, &ReadOptions::new().symbol("BTCUSD")).unwrap();
    assert_eq!(bars, want);
    assert_eq!(bars[0].volume.scale(), 8);

    // Float columns: each f64 goes through its shortest round-trip text.
    let flt = |k: usize| {
        Column::new(parquet::COLUMNS[k].into(), rows.iter().map(|r| r[k].parse::<f64>().unwrap()).collect::<Vec<_>>())
    };
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("open_time_ms".into(), times),
        flt(1),
        flt(2),
        flt(3),
        flt(4),
        flt(5),
    ])
    .unwrap();
    let p = write_parquet("coinbase_BTCUSD_1m_f64.parquet", &mut df);
    let (_, bars) = load(&p, &ReadOptions::new().symbol("BTCUSD")).unwrap();
    assert_eq!(bars, want);
}

#[test]
fn parquet_errors_name_the_row() {
    let mut df = df!(
        "open_time_ms" => [1_700_000_000_000i64, 1_700_000_060_000, 1_700_000_120_000],
        "open" => ["1", "1", "1"],
        "high" => ["2", "2", "0.5"],
        "low" => ["1", "1", "1"],
        "close" => ["1", "1", "1"],
        "volume" => [Some("1"), Some("1"), Some("1")],
    )
    .unwrap();
    let p = write_parquet("bad_hl.parquet", &mut df);
    let e = load(&p, &opts().chunk_rows(2)).unwrap_err();
    assert_eq!(e.to_string(), format!("{}:row 3: high 0.5 is below low 1", p.display()));

    let mut df = df!(
        "open_time_ms" => [1_700_000_000_000i64, 1_700_000_060_000],
        "open" => [1.5f64, 1.5],
        "high" => [2.0f64, 2.0],
        "low" => [1.0f64, 1.0],
        "close" => [1.5f64, f64::NAN],
        "volume" => [Some(1.0f64), None],
    )
    .unwrap();
    let p = write_parquet("bad_nan.parquet", &mut df);
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.to_string(), format!("{}:row 2: close `NaN` is not a finite number", p.display()));

    let mut df = df!("open_time_ms" => [1i64], "open" => ["1"]).unwrap();
    let p = write_parquet("missing_cols.parquet", &mut df);
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: parquet column `high`: column not found", p.display()));
}

#[test]
fn merge_orders_by_time_then_symbol() {
    // Both files start at 2022-12-13T00:00Z and have a bar every minute: every timestamp is a tie.
    let sources = [
        (fx("bybit_BTCUSDT_1m_2022-12-13_head.csv"), ReadOptions::new().chunk_rows(16)),
        (fx("binance_BTCBUSD_1m_2022-12-13_head.csv"), ReadOptions::new().chunk_rows(7)),
        (fx("coinbase_BTCUSD_1h_2017-07_head.csv"), ReadOptions::new().symbol("CB-BTCUSD")),
    ];
    let loaded = load_all(&sources).unwrap();
    let syms: Vec<&str> = loaded.series.iter().map(|s| s.symbol.as_str()).collect();
    assert_eq!(syms, ["BTCUSDT", "BTCBUSD", "CB-BTCUSD"]);
    assert_eq!(loaded.bars.len(), 120 + 120 + 200);
    // The 2017 hourly file comes first entirely.
    assert!(loaded.bars[..200].iter().all(|(i, _)| *i == 2));
    // Then alternating BTCBUSD (index 1) before BTCUSDT (index 0) at each minute.
    for (k, pair) in loaded.bars[200..].chunks(2).enumerate() {
        assert_eq!(pair[0].0, 1, "pair {k}");
        assert_eq!(pair[1].0, 0, "pair {k}");
        assert_eq!(pair[0].1.open_time_ms, pair[1].1.open_time_ms);
        assert_eq!(pair[0].1.open_time_ms, 1_670_889_600_000 + 60_000 * k as i64);
    }
    for w in loaded.bars.windows(2) {
        let key = |(i, b): &(usize, Bar)| (b.open_time_ms, loaded.series[*i].symbol.clone());
        assert!(key(&w[0]) < key(&w[1]));
    }
    // Each series' bars come out unchanged and in order.
    let (_, bybit) = load(&sources[0].0, &ReadOptions::default()).unwrap();
    let got: Vec<Bar> = loaded.bars.iter().filter(|(i, _)| *i == 0).map(|(_, b)| *b).collect();
    assert_eq!(got, bybit);
    assert_eq!(loaded.series[2].interval_ms, Some(3_600_000));

    // Same symbol twice is refused; an error inside a file surfaces through the merge.
    let e = load_all(&[(fx("good_TEST_1m.csv"), opts()), (fx("bad_high_below_low.csv"), opts())]).unwrap_err();
    assert!(matches!(e, DataError::DuplicateSymbol { .. }), "{e}");
    let e = load_all(&[
        (fx("good_TEST_1m.csv"), ReadOptions::default()),
        (fx("bad_high_below_low.csv"), ReadOptions::new().symbol("B")),
    ])
    .unwrap_err();
    assert_eq!(e.loc().unwrap().line, 5);
}

#[test]
fn gap_report_real_file() {
    // Rows 950..=1070 of QuantConnect LEAN coinbase btcusd 2018-04-04..06 (see fixtures README).
    // By hand from the file: line 59 is 16:45 (1522860300000), line 60 is 16:47 (1522860420000):
    // step 120000 ms = 2 bars -> 1 missing. Line 61 is 2018-04-05 00:00 (1522886400000):
    // step 25980000 ms = 433 bars -> 432 missing (16:48 .. 23:59 = 7h12m = 432 minutes).
    // All other steps are 60000 ms. So: 2 gaps, 433 missing bars, largest 432 bars = 25920000 ms.
    for chunk in [1, 60, DEFAULT_CHUNK_ROWS] {
        let (info, bars) =
            load(fx("coinbase_BTCUSD_1m_2018-04-04_gaps.csv"), &ReadOptions::new().chunk_rows(chunk)).unwrap();
        assert_eq!(info.symbol, "BTCUSD");
        assert_eq!(bars.len(), 121);
        assert_eq!(info.interval_ms, Some(60_000));
        assert_eq!(info.gaps.count, 2);
        assert_eq!(info.gaps.missing_bars, 433);
        assert_eq!(
            info.gaps.largest,
            Some(Gap {
                line: 61,
                from_ms: 1_522_860_420_000,
                to_ms: 1_522_886_400_000,
                missing_bars: 432,
                missing_ms: 25_920_000,
            })
        );
    }
}

#[test]
fn gap_report_hand_made() {
    // Steps: 60s, 180s (2 missing), 60s, 600s (9 missing), 120s (1 missing).
    // Most common step 60s -> interval 1m. 3 gaps, 2+9+1 = 12 missing, largest 9 bars = 540000 ms at
    // line 6 (1700000300000 -> 1700000900000).
    let (info, _) = load(fx("test_GAPPY_1m_hand.csv"), &ReadOptions::new().chunk_rows(2)).unwrap();
    assert_eq!(info.interval_ms, Some(60_000));
    assert_eq!(info.gaps.count, 3);
    assert_eq!(info.gaps.missing_bars, 12);
    let g = info.gaps.largest.unwrap();
    assert_eq!((g.line, g.missing_bars, g.missing_ms), (6, 9, 540_000));
    assert_eq!((g.from_ms, g.to_ms), (1_700_000_300_000, 1_700_000_900_000));
}

#[test]
fn interval_parsing_and_mismatch() {
    assert_eq!(parse_interval("1m").unwrap(), 60_000);
    assert_eq!(parse_interval("5m").unwrap(), 300_000);
    assert_eq!(parse_interval("1h").unwrap(), 3_600_000);
    assert_eq!(parse_interval("4h").unwrap(), 14_400_000);
    assert_eq!(parse_interval("1d").unwrap(), 86_400_000);
    assert_eq!(parse_interval("1w").unwrap(), 604_800_000);
    assert_eq!(parse_interval("30s").unwrap(), 30_000);
    for bad in ["", "m", "0m", "1M", "1 m", "-1m", "1.5h", "99999999999999999999m", "1mo"] {
        assert!(parse_interval(bad).is_err(), "{bad}");
    }
    assert_eq!(format_interval(60_000), "1m");
    assert_eq!(format_interval(14_400_000), "4h");
    assert_eq!(format_interval(90_000), "90s");
    assert_eq!(format_interval(1_500), "1500ms");

    let p = fx("good_TEST_1m.csv");
    let (info, _) = load(&p, &ReadOptions::new().interval("1m").unwrap()).unwrap();
    assert_eq!(info.interval_ms, Some(60_000));
    let e = load(&p, &ReadOptions::new().interval("5m").unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: interval mismatch: expected 5m, inferred 1m (most common step between the first bars)",
            p.display()
        )
    );
    // A single bar: nothing to infer; the expected interval is used if given.
    let one = tmp("one.csv", b"open_time_ms,open,high,low,close,volume\n1,1,1,1,1,1\n");
    let (info, _) = load(&one, &opts()).unwrap();
    assert_eq!((info.interval_ms, info.inferred_interval_ms), (None, None));
    let (info, _) = load(&one, &opts().interval_ms(60_000)).unwrap();
    assert_eq!(info.interval_ms, Some(60_000));
}

#[test]
fn symbols() {
    let s = |p: &str| symbol_from_path(Path::new(p));
    assert_eq!(s("data/binance_BTCUSDT_1h_2018-04-07_2018-04-28.csv").as_deref(), Some("BTCUSDT"));
    assert_eq!(s("ftx_BTC-PERP_1m_2022-01.csv").as_deref(), Some("BTC-PERP"));
    assert_eq!(s("binance_ETHUSDT_4h.parquet").as_deref(), Some("ETHUSDT"));
    assert_eq!(s("btcusdt.csv"), None);
    assert_eq!(s("bad_duplicate_time.csv"), None);
    assert_eq!(s("binance__1m.csv"), None);

    let p = fx("bad_duplicate_time.csv");
    let e = KlineReader::open(&p, &ReadOptions::default()).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: no symbol: the file name does not follow `exchange_SYMBOL_interval_...` and none was given",
            p.display()
        )
    );
    let r = KlineReader::open(fx("good_TEST_1m.csv"), &ReadOptions::new().symbol("OVERRIDE")).unwrap();
    assert_eq!(r.symbol(), "OVERRIDE");
}

#[test]
fn chunk_boundary_duplicate() {
    // chunk_rows = 3: chunk 1 = lines 2..=4, chunk 2 = lines 5..=7. Line 5 repeats line 4's open time,
    // so the duplicate straddles the boundary and must still be caught, at line 5.
    let p = fx("bad_duplicate_time.csv");
    let mut r = KlineReader::open(&p, &opts().chunk_rows(3)).unwrap();
    let first = r.next().unwrap().unwrap();
    assert_eq!(first.len(), 3);
    let e = r.next().unwrap().unwrap_err();
    assert_eq!(e.to_string(), format!("{}:5: duplicate open time 1700000120000 (also at line 4)", p.display()));
    assert!(r.next().is_none());

    // Dropping a prefetching reader mid-file stops its thread (the test would hang otherwise).
    let p = synth_file("drop.csv", 10_000, |_, l| l.to_string());
    let mut r = KlineReader::open(&p, &opts().chunk_rows(100)).unwrap();
    assert_eq!(r.next().unwrap().unwrap().len(), 100);
    drop(r);
}

/// Synthetic file with `n` bars; `edit(line_no, line) -> line` may alter lines (header = line 1).
fn synth_file(name: &str, n: usize, edit: impl Fn(usize, &str) -> String) -> PathBuf {
    let mut buf = Vec::new();
    synth(n, 60_000, 7, 1_600_000_000_000, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let mut out = String::with_capacity(text.len() + 64);
    for (i, l) in text.lines().enumerate() {
        out.push_str(&edit(i + 1, l));
        out.push('\n');
    }
    tmp(name, out.as_bytes())
}

#[test]
fn big_file_line_numbers_fast_and_slow_paths() {
    // 100k rows: several 65536-row chunks, parallel conversion, polars' multi-threaded parse.
    let n = 100_000;
    let dup_line = 70_001; // second chunk (lines 65538..); copy the previous line's time.
    let p = synth_file("big_dup.csv", n, |i, l| {
        if i == dup_line {
            let prev_t = 1_600_000_000_000i64 + 60_000 * (i as i64 - 3);
            let rest = l.split_once(',').unwrap().1;
            format!("{prev_t},{rest}")
        } else {
            l.to_string()
        }
    });
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.loc().unwrap().line, dup_line as u64, "{e}");
    assert!(matches!(e, DataError::DuplicateTime { prev_line: 70_000, .. }), "{e}");

    // Empty field deep in the file: polars yields a null, the slow path names the line.
    let bad_line = 99_999;
    let p = synth_file("big_empty.csv", n, |i, l| {
        if i == bad_line {
            l.rsplit_once(',').unwrap().0.to_string() + ","
        } else {
            l.to_string()
        }
    });
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.to_string(), format!("{}:{bad_line}: volume `` is not a number", p.display()));

    // Unparseable value in the second half of a chunk.
    let bad_line = 40_000;
    let p = synth_file("big_bad.csv", n, |i, l| {
        if i == bad_line {
            l.replacen(',', ",x", 2).replacen(",x", ",", 1)
        } else {
            l.to_string()
        }
    });
    let e = load(&p, &opts()).unwrap_err();
    assert_eq!(e.loc().unwrap().line, bad_line as u64, "{e}");
    assert!(matches!(e, DataError::Unparseable { column: "high", .. }), "{e}");
}

#[test]
fn synth_is_deterministic_and_valid() {
    let run = |seed| {
        let mut v = Vec::new();
        synth(5_000, 60_000, seed, 1_700_000_000_000, &mut v).unwrap();
        v
    };
    let a = run(42);
    assert_eq!(a, run(42), "same seed, same bytes");
    assert_ne!(a, run(43));
    let text = std::str::from_utf8(&a).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("open_time_ms,open,high,low,close,volume"));
    // Pinned: the output must not change across platforms/versions for a given seed.
    assert_eq!(lines.next(), Some(SYNTH_SEED42_LINE2));
    let p = tmp("synth_SYN_1m.csv", &a);
    let (info, bars) = load(&p, &ReadOptions::new().interval("1m").unwrap()).unwrap();
    assert_eq!(info.symbol, "SYN");
    assert_eq!(bars.len(), 5_000);
    assert_eq!(info.gaps, GapReport::default());
    for b in &bars {
        assert!(b.low <= b.open && b.open <= b.high && b.low <= b.close && b.close <= b.high);
        assert!(b.low > Decimal::ZERO && b.volume > Decimal::ZERO);
        assert!(b.open.scale() == 2 && b.volume.scale() == 3);
    }
    for w in bars.windows(2) {
        assert_eq!(w[1].open, w[0].close);
    }
    assert!(synth(1, 0, 1, 0, Vec::new()).is_err());
    let mut empty = Vec::new();
    synth(0, 60_000, 1, 0, &mut empty).unwrap();
    assert_eq!(empty, b"open_time_ms,open,high,low,close,volume\n");
}

const SYNTH_SEED42_LINE2: &str = "1700000000000,20000.00,20029.59,19997.00,20023.81,30.805";

#[test]
fn garbage_never_panics() {
    // Random byte edits of a valid file: every outcome must be Ok or a DataError, never a panic.
    let base = std::fs::read(fx("good_TEST_1m.csv")).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let alphabet = b"0123456789.,-+eE\n\r \"xN";
    for k in 0..300 {
        let mut b = base.clone();
        for _ in 0..1 + rng.next_u32() % 4 {
            let pos = (rng.next_u32() as usize) % (b.len() + 1);
            match rng.next_u32() % 3 {
                0 if pos < b.len() => {
                    b.remove(pos);
                }
                1 if pos < b.len() => b[pos] = alphabet[rng.next_u32() as usize % alphabet.len()],
                _ => b.insert(pos, alphabet[rng.next_u32() as usize % alphabet.len()]),
            }
        }
        if k % 2 == 0 {
            b.push(0xff);
        }
        let p = tmp("fuzz.csv", &b);
        for chunk in [1, 3, DEFAULT_CHUNK_ROWS] {
            let _ = load(&p, &opts().chunk_rows(chunk));
        }
        // The result must not depend on the chunk size.
        let a = load(&p, &opts().chunk_rows(1).prefetch(false)).map(|x| x.1).map_err(|e| e.to_string());
        let c = load(&p, &opts().chunk_rows(DEFAULT_CHUNK_ROWS)).map(|x| x.1).map_err(|e| e.to_string());
        assert_eq!(a, c, "case {k}: {:?}", String::from_utf8_lossy(&b));
    }
    let p = tmp("bin.csv", &[0u8, 159, 146, 150, b'\n', 1, 2]);
    assert!(load(&p, &opts()).is_err());
}

#[test]
fn corrupt_parquet_is_an_error_not_a_panic() {
    let mut df = df!(
        "open_time_ms" => (0..50i64).map(|i| 1_700_000_000_000 + 60_000 * i).collect::<Vec<_>>(),
        "open" => vec!["1.5"; 50],
        "high" => vec!["2"; 50],
        "low" => vec!["1"; 50],
        "close" => vec!["1.5"; 50],
        "volume" => vec!["3"; 50],
    )
    .unwrap();
    let p = write_parquet("good.parquet", &mut df);
    let (info, bars) = load(&p, &opts()).unwrap();
    assert_eq!((info.bars, bars.len()), (50, 50));
    let bytes = std::fs::read(&p).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let mut cases: Vec<Vec<u8>> = vec![
        b"PAR1".to_vec(),
        b"PAR1garbagegarbagePAR1".to_vec(),
        bytes[..bytes.len() / 2].to_vec(),
        bytes[..bytes.len() - 1].to_vec(),
    ];
    for _ in 0..60 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next_u32() % 8 {
            let pos = 4 + rng.next_u32() as usize % (b.len() - 8);
            b[pos] = rng.next_u32() as u8;
        }
        cases.push(b);
    }
    for (k, b) in cases.iter().enumerate() {
        let p = tmp(&format!("corrupt{k}.parquet"), b);
        // Ok (a flipped byte in a value can still decode) or Err, but no panic.
        let _ = load(&p, &opts().chunk_rows(7));
    }
}

#[test]
fn overlong_line_is_an_error() {
    let mut body = b"open_time_ms,open,high,low,close,volume\n1700000000000,1,1,1,1,1\n1700000060000,1,1,1,1,".to_vec();
    body.extend(std::iter::repeat_n(b'7', 3 << 20));
    body.extend_from_slice(b"\n1700000120000,1,1,1,1,1\n");
    let p = tmp("long.csv", &body);
    for chunk in [1, DEFAULT_CHUNK_ROWS] {
        let e = load(&p, &opts().chunk_rows(chunk)).unwrap_err();
        assert_eq!(e.to_string(), format!("{}:3: line longer than 1048576 bytes", p.display()));
    }
    // No newline at all: reported on line 1 without reading the whole file.
    let p = tmp("nonl.csv", &vec![b'x'; 3 << 20]);
    assert!(matches!(load(&p, &opts()).unwrap_err(), DataError::LineTooLong { .. }));
}
