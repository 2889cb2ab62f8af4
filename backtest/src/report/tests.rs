use std::path::PathBuf;
use std::str::FromStr;

use polars::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::record::{EquityPoint, PricePoint, RunRecord, Series, SeriesPoint, Trade};

const H: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn assert_close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: null, want {want}"));
    assert!(close(got, want, 1e-9), "{what}: got {got}, want {want}");
}

fn point(time_ms: i64, equity: f64, exposed: bool) -> EquityPoint {
    EquityPoint { time_ms, equity, exposed }
}

#[allow(clippy::too_many_arguments)]
fn trade(
    symbol: &str,
    side: &str,
    entry: i64,
    exit: i64,
    qty: &str,
    pe: &str,
    px: &str,
    pnl: &str,
    fees: &str,
) -> Trade {
    Trade {
        symbol: symbol.into(),
        side: side.into(),
        entry_time_ms: entry,
        exit_time_ms: exit,
        qty: d(qty),
        entry_price: d(pe),
        exit_price: d(px),
        pnl: d(pnl),
        fees: d(fees),
    }
}

/// Equity 100 (initial) → 110 → 99 → 121 on 1h bars, and four trades.
fn tiny() -> RunRecord {
    RunRecord {
        strategy: "tiny".into(),
        params: serde_json::json!({"fast": 3, "slow": 8}),
        symbols: vec!["BTCUSDT".into()],
        interval_ms: H,
        bars: 3,
        start_ms: 0,
        end_ms: 3 * H,
        initial_equity: d("100"),
        final_equity: d("121"),
        fees_paid: d("2.5"),
        funding_net: d("0"),
        equity: vec![point(H, 110.0, true), point(2 * H, 99.0, true), point(3 * H, 121.0, false)],
        trades: vec![
            // net = pnl − fees: 9 (win), −5.5, −0.5 (a gross win eaten by fees), 3 (win).
            trade("BTCUSDT", "long", 0, H, "1", "100", "110", "10", "1"),
            trade("BTCUSDT", "short", H, 3 * H, "1", "110", "115", "-5", "0.5"),
            trade("BTCUSDT", "long", 0, H / 2, "1", "100", "100.5", "0.5", "1"),
            trade("BTCUSDT", "long", 0, 3 * H + 20 * 60_000, "0.00002025", "1", "2", "3", "0"),
        ],
        prices: vec![vec![PricePoint { time_ms: H, close: 110.0 }]],
        ..RunRecord::default()
    }
}

#[test]
fn metrics_on_a_hand_computed_curve() {
    let s = summary(&tiny());
    // Returns: 110/100 − 1 = 0.1, 99/110 − 1 = −0.1, 121/99 − 1 = 2/9.
    // mean = (0.1 − 0.1 + 2/9) / 3 = 2/27 ≈ 0.0740741.
    // Deviations from the mean: 0.7/27, −4.7/27, 4/27; sum of squares = (0.49 + 22.09 + 16)/729 = 38.58/729;
    // sample variance = 38.58/729/2, stdev ≈ 0.162668.
    // Bars per year (1h) = 365.25 · 24 = 8766.
    let mean = 2.0 / 27.0;
    let sd = (38.58f64 / 729.0 / 2.0).sqrt();
    assert_close(s.sharpe, mean / sd * 8766f64.sqrt(), "sharpe"); // ≈ 42.63
                                                                  // Downside: min(r, 0)² = 0, 0.01, 0 → mean 0.01/3 → deviation sqrt(0.01/3) ≈ 0.057735.
    assert_close(s.sortino, mean / (0.01f64 / 3.0).sqrt() * 8766f64.sqrt(), "sortino"); // ≈ 120.1
                                                                                        // Peak 100, 110, 110, 121: the worst point is 99 under 110 → 11/110 = 10%.
    assert_close(s.max_drawdown_pct, 10.0, "max_drawdown_pct");
    // 121/100 − 1 = 21%.
    assert_close(s.total_return_pct, 21.0, "total_return_pct");
    // 3 hours is under a day: no CAGR, hence no Calmar.
    assert_eq!(s.cagr_pct, None);
    assert_eq!(s.calmar, None);
    // Exposed at 2 of 3 points.
    assert_close(s.exposure_pct, 200.0 / 3.0, "exposure_pct");
    // Nets 9, −5.5, −0.5, 3: 2 wins of 4 = 50%; profit factor (9 + 3) / (5.5 + 0.5) = 2.
    assert_close(s.win_rate_pct, 50.0, "win_rate_pct");
    assert_close(s.profit_factor, 2.0, "profit_factor");
    // Durations 1h, 2h, 30m, 3h20m = 24 600 000 ms / 4 = 6 150 000 ms = 1h 42m 30s → "1h 43m".
    assert_eq!(s.avg_trade_duration_ms, Some(6_150_000));
    assert_eq!(s.avg_trade_duration.as_deref(), Some("1h 43m"));
    assert_eq!(s.trades, 4);
    assert_eq!(s.interval, "1h");
    assert_eq!(s.start, "1970-01-01T00:00:00Z");
    assert_eq!(s.end, "1970-01-01T03:00:00Z");

    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(json["final_equity"], "121");
    assert_eq!(json["fees_paid"], "2.5");
    assert_eq!(json["cagr_pct"], serde_json::Value::Null);
    for key in [
        "start",
        "end",
        "bars",
        "trades",
        "final_equity",
        "total_return_pct",
        "cagr_pct",
        "sharpe",
        "sortino",
        "max_drawdown_pct",
        "calmar",
        "win_rate_pct",
        "profit_factor",
        "exposure_pct",
        "fees_paid",
        "avg_trade_duration",
        "avg_trade_duration_ms",
        "strategy",
        "params",
        "symbols",
        "interval",
        "initial_equity",
        "funding_net",
        "orders_rejected",
        "strategy_errors",
        "anomalies",
        "state_digest",
        "data_notes",
    ] {
        assert!(json.get(key).is_some(), "summary.json lacks {key}");
    }
}

#[test]
fn cagr_and_calmar_over_one_year() {
    // Same curve on daily bars spanning exactly 365.25 days: years = 1, so CAGR = total return = 21%,
    // Calmar = 21 / 10 = 2.1; Sharpe annualizes with sqrt(365.25).
    let mut r = tiny();
    r.interval_ms = DAY;
    r.end_ms = 31_557_600_000; // 365.25 days
    for (i, p) in r.equity.iter_mut().enumerate() {
        p.time_ms = (i as i64 + 1) * DAY;
    }
    let s = summary(&r);
    assert_close(s.cagr_pct, 21.0, "cagr_pct");
    assert_close(s.calmar, 2.1, "calmar");
    let sd = (38.58f64 / 729.0 / 2.0).sqrt();
    assert_close(s.sharpe, 2.0 / 27.0 / sd * 365.25f64.sqrt(), "sharpe");
    assert_eq!(s.interval, "1d");

    // Two years, 100 → 121: (1.21)^(1/2) − 1 = 10%.
    r.end_ms = 2 * 31_557_600_000;
    assert_close(summary(&r).cagr_pct, 10.0, "cagr_pct over two years");
}

#[test]
fn zero_trades_one_bar_and_empty_records_do_not_panic() {
    // One bar, no trades, equity unchanged.
    let r = RunRecord {
        interval_ms: 60_000,
        bars: 1,
        start_ms: 0,
        end_ms: 60_000,
        initial_equity: d("1000"),
        final_equity: d("1000"),
        equity: vec![point(60_000, 1000.0, false)],
        ..RunRecord::default()
    };
    let s = summary(&r);
    assert_eq!(s.trades, 0);
    assert_eq!((s.win_rate_pct, s.profit_factor), (None, None));
    assert_eq!((s.avg_trade_duration.clone(), s.avg_trade_duration_ms), (None, None));
    assert_eq!(s.sharpe, None, "one return has no sample stdev");
    assert_eq!(s.sortino, None, "no negative return");
    assert_eq!(s.max_drawdown_pct, Some(0.0));
    assert_eq!(s.calmar, None);
    assert_eq!(s.cagr_pct, None);
    assert_eq!(s.exposure_pct, Some(0.0));
    assert_eq!(s.total_return_pct, Some(0.0));

    // Flat equity over many bars: zero stdev → no Sharpe; no drawdown.
    let mut flat = r.clone();
    flat.equity = (1..=50).map(|i| point(i * 60_000, 1000.0, i % 2 == 0)).collect();
    let s = summary(&flat);
    assert_eq!((s.sharpe, s.sortino, s.calmar), (None, None, None));
    assert_eq!(s.max_drawdown_pct, Some(0.0));
    assert_eq!(s.exposure_pct, Some(50.0));

    // Nothing at all.
    let s = summary(&RunRecord::default());
    assert_eq!(s.total_return_pct, None);
    assert_eq!(s.max_drawdown_pct, None);
    assert_eq!(s.exposure_pct, None);
    assert_eq!(s.sharpe, None);
    let dir = scratch("empty");
    let mut files = write_tables(&RunRecord::default(), &dir).unwrap();
    files.extend(write_all(&RunRecord::default(), &s, &dir).unwrap());
    assert_eq!(files.len(), 8);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("No trades."));
}

#[test]
fn non_finite_results_are_null_in_json() {
    // Equity hits 0 and recovers: the return after 0 is +inf, so mean/Sharpe are not finite.
    let r = RunRecord {
        interval_ms: H,
        bars: 3,
        start_ms: 0,
        end_ms: 3 * H,
        initial_equity: d("100"),
        final_equity: d("50"),
        equity: vec![point(H, 100.0, true), point(2 * H, 0.0, true), point(3 * H, 50.0, true)],
        ..RunRecord::default()
    };
    let s = summary(&r);
    assert_eq!(s.sharpe, None);
    assert_eq!(s.sortino, None);
    assert_close(s.max_drawdown_pct, 100.0, "max_drawdown_pct");
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    assert!(json.contains("\"sharpe\":null"));
}

#[test]
fn helpers() {
    assert_eq!(iso_utc(1_704_067_200_000), "2024-01-01T00:00:00Z");
    assert_eq!(iso_utc(1_704_070_799_999), "2024-01-01T00:59:59.999Z");
    assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
    assert_eq!(iso_utc(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(iso_utc(1_000), "1970-01-01T00:00:01Z");
    assert_eq!(iso_utc(253_402_300_799_000), "9999-12-31T23:59:59Z");
    assert_eq!(iso_utc(253_402_300_800_010), "10000-01-01T00:00:00.010Z");
    for days in [-800_000i64, -1, 0, 59, 10_957, 19_723, 2_932_896] {
        let (ms, month) = (days * DAY, utc::month_index(days * DAY));
        assert!(utc::month_start_ms(month, 1) <= ms && ms < utc::month_start_ms(month + 1, 1), "day {days}");
    }
    assert_eq!(utc::month_start_ms(2024 * 12 + 1, 29), 1_709_164_800_000, "2024-02-29");
    assert_eq!(utc::short_time(1_704_067_200_000), "2024-01-01 00:00");
    assert_eq!(utc::short_time(1_704_070_799_999), "2024-01-01 00:59:59.999");
    assert_eq!(utc::short_time(253_402_300_800_000), "10000-01-01 00:00");
    assert_eq!(human_duration(12_000_000), "3h 20m");
    assert_eq!(human_duration(45_000), "45s");
    assert_eq!(human_duration(450), "450ms");
    assert_eq!(human_duration(2 * DAY + 4 * H), "2d 4h");
    assert_eq!(human_duration(3 * H), "3h");
    assert_eq!(human_duration(3_599_600), "1h", "rounding carries into the next unit");
    assert_eq!(human_duration(59_600), "1m");
    assert_eq!(human_duration(0), "0ms");
    assert_eq!(interval_label(900_000), "15m");
    assert_eq!(interval_label(4 * H), "4h");
    assert_eq!(interval_label(7 * DAY), "1w");
    assert_eq!(escape::esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    assert_eq!(svg::fmt_num(43_250.0, 50.0), "43,250");
    assert_eq!(svg::fmt_num(0.0000205, 0.0000005), "0.0000205");
    assert_eq!(svg::fmt_num(-0.0, 0.25), "0.00");
    assert_eq!(svg::fmt_num(-12.5, 2.5), "-12.5");
}

#[test]
fn downsample_keeps_spikes_and_bounds_points() {
    let mut pts: Vec<(i64, f64)> = (0..100_000).map(|i| (i, (i as f64 * 0.01).sin())).collect();
    pts[54_321].1 = 50.0;
    pts[77_777].1 = -50.0;
    pts[100].1 = f64::NAN;
    let out = svg::downsample(&pts, svg::MAX_POINTS);
    assert!(out.len() <= svg::MAX_POINTS, "{}", out.len());
    assert!(out.contains(&(54_321, 50.0)) && out.contains(&(77_777, -50.0)));
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
    assert!(out.iter().all(|p| p.1.is_finite()));
}

/// The streaming downsampler keeps exactly the points of the plain bucket algorithm: per
/// bucket of consecutive finite points, the first minimum and the first maximum, in time order.
#[test]
fn streaming_downsample_is_the_bucket_algorithm() {
    fn reference(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
        let pts: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
        if pts.len() <= max {
            return pts;
        }
        let buckets = max / 2;
        let mut out = Vec::new();
        for b in 0..buckets {
            let slice = &pts[b * pts.len() / buckets..(b + 1) * pts.len() / buckets];
            if slice.is_empty() {
                continue;
            }
            let (mut imin, mut imax) = (0, 0);
            for (i, p) in slice.iter().enumerate() {
                if p.1 < slice[imin].1 {
                    imin = i;
                }
                if p.1 > slice[imax].1 {
                    imax = i;
                }
            }
            let (a, b) = (imin.min(imax), imin.max(imax));
            out.push(slice[a]);
            if b != a {
                out.push(slice[b]);
            }
        }
        out
    }
    let mut x: u64 = 12345;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (n, max) in [(0, 10), (1, 10), (9, 10), (11, 10), (4001, 4000), (10_007, 400), (99_991, 4000)] {
        let pts: Vec<(i64, f64)> = (0..n)
            .map(|i| {
                let r = next();
                let v = if r % 97 == 0 { f64::NAN } else { (r % 1000) as f64 / 7.0 };
                (i as i64, v)
            })
            .collect();
        let streamed = svg::downsample_with(|| pts.iter().copied(), max);
        let want = reference(&pts, max);
        assert_eq!(streamed.len(), want.len(), "n={n} max={max}");
        assert!(streamed.iter().zip(&want).all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits()), "n={n}");
    }
}

#[test]
fn time_ticks_are_round_and_bounded() {
    let t0 = 1_704_067_200_000; // 2024-01-01
    for span in [10 * 60_000, 6 * H, 3 * DAY, 40 * DAY, 400 * DAY, 3000 * DAY] {
        let ticks = svg::time_ticks(t0 + 1234, t0 + span, 9);
        assert!(!ticks.is_empty() && ticks.len() <= 9, "span {span}: {} ticks", ticks.len());
        assert!(ticks.iter().all(|t| t.t >= t0 + 1234 && t.t <= t0 + span));
        // The first tick carries its date or year (year ticks are the year).
        assert!(ticks[0].sub.is_some() || ticks[0].main.parse::<i64>().is_ok(), "span {span}: {}", ticks[0].main);
    }
}

/// A scratch directory under the system temp dir (unique per process and name).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quantfold-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A realistic run: two symbols (one priced like 0.00002025), 120 days of 1h bars, trades, series.
pub(super) fn sample() -> RunRecord {
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    let n = 24 * 120;
    let mut btc = vec![];
    let mut pepe = vec![];
    let (mut p1, mut p2) = (42_000.0f64, 0.00002025f64);
    for i in 0..n {
        p1 *= 1.0 + (rand() - 0.495) * 0.012;
        p2 *= 1.0 + (rand() - 0.5) * 0.03;
        let t = start + (i + 1) * H;
        btc.push(PricePoint { time_ms: t, close: (p1 * 10.0).round() / 10.0 });
        pepe.push(PricePoint { time_ms: t, close: (p2 * 1e8).round() / 1e8 });
    }
    let initial = 10_000.0;
    let mut realized = 0.0;
    let mut trades = vec![];
    let mut equity = vec![];
    let mut open: Option<(usize, f64, f64, bool)> = None; // (entry index, price, qty, long)
    let mut series =
        vec![Series { name: "ema_20".into(), points: vec![] }, Series { name: "signal <z>".into(), points: vec![] }];
    let mut ema = btc[0].close;
    for i in 0..n as usize {
        let px = btc[i].close;
        ema += (px - ema) * 0.05;
        if i % 6 == 0 {
            series[0].points.push(SeriesPoint { time_ms: btc[i].time_ms, value: ema });
            series[1].points.push(SeriesPoint { time_ms: btc[i].time_ms, value: (px - ema) / ema * 100.0 });
        }
        match open {
            None if rand() < 0.03 => open = Some((i, px, 0.1, rand() < 0.6)),
            Some((e, pe, q, long)) if i - e > 4 && rand() < 0.08 => {
                let pnl = if long { (px - pe) * q } else { (pe - px) * q };
                let fees = (pe + px) * q * 0.0004;
                realized += pnl - fees;
                trades.push(Trade {
                    symbol: "BTCUSDT".into(),
                    side: if long { "long" } else { "short" }.into(),
                    entry_time_ms: btc[e].time_ms,
                    exit_time_ms: btc[i].time_ms,
                    qty: Decimal::from_str("0.1").unwrap(),
                    entry_price: Decimal::from_f64_retain(pe).unwrap().round_dp(1),
                    exit_price: Decimal::from_f64_retain(px).unwrap().round_dp(1),
                    pnl: Decimal::from_f64_retain(pnl).unwrap().round_dp(2),
                    fees: Decimal::from_f64_retain(fees).unwrap().round_dp(8),
                });
                open = None;
            }
            _ => {}
        }
        let unreal = open.map_or(0.0, |(_, pe, q, long)| if long { (px - pe) * q } else { (pe - px) * q });
        equity.push(EquityPoint {
            time_ms: btc[i].time_ms,
            equity: initial + realized + unreal,
            exposed: open.is_some(),
        });
    }
    trades.push(Trade {
        symbol: "1000PEPEUSDT".into(),
        side: "short".into(),
        entry_time_ms: pepe[100].time_ms,
        exit_time_ms: pepe[400].time_ms,
        qty: d("1000000"),
        entry_price: d("0.00002025"),
        exit_price: Decimal::from_f64_retain(pepe[400].close).unwrap().round_dp(8),
        pnl: d("0.5"),
        fees: d("0.00002025"),
    });
    let final_equity = Decimal::from_f64_retain(equity.last().unwrap().equity).unwrap().round_dp(8);
    RunRecord {
        strategy: "ema_cross <v2> & friends".into(),
        params: serde_json::json!({"fast": 20, "slow": 50, "note": "<b>bold</b>"}),
        symbols: vec!["BTCUSDT".into(), "1000PEPEUSDT".into()],
        interval_ms: H,
        bars: n as u64,
        start_ms: start,
        end_ms: start + n * H,
        initial_equity: d("10000"),
        final_equity,
        fees_paid: trades.iter().map(|t| t.fees).sum(),
        funding_net: d("-1.25"),
        equity,
        trades,
        prices: vec![btc, pepe],
        series,
        data_notes: vec!["BTCUSDT: 3 gaps, 17 missing bars, largest 9".into()],
        anomalies: 0,
        state_digest: "b3:5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0".into(),
        orders_rejected: 2,
        strategy_errors: 0,
        stopped: None,
    }
}

#[test]
fn write_all_produces_every_file() {
    let record = sample();
    let s = summary(&record);
    let dir = match std::env::var_os("QUANTFOLD_REPORT_SAMPLE_DIR") {
        Some(d) => PathBuf::from(d),
        None => scratch("sample"),
    };
    let mut files = write_tables(&record, &dir).unwrap();
    files.extend(write_all(&record, &s, &dir).unwrap());
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in [
        "summary.json",
        "trades.csv",
        "trades.parquet",
        "equity.csv",
        "equity.parquet",
        "series.csv",
        "series.parquet",
        "report.html",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not written: {names:?}");
        assert!(dir.join(want).metadata().unwrap().len() > 0, "{want} is empty");
    }

    // summary.json round-trips as JSON with exact decimal strings.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["final_equity"], record.final_equity.to_string());
    assert_eq!(json["funding_net"], "-1.25");

    // Exact decimals in trades.csv.
    let csv = std::fs::read_to_string(dir.join("trades.csv")).unwrap();
    assert!(csv.starts_with("symbol,side,entry_time,exit_time,qty,entry_price,exit_price,pnl,fees,net_pnl\n"), "{csv}");
    let pepe = csv.lines().find(|l| l.starts_with("1000PEPEUSDT")).unwrap();
    assert!(pepe.contains(",0.00002025,") && pepe.ends_with(",0.5,0.00002025,0.49997975"), "{pepe}");
    assert_eq!(csv.lines().count(), record.trades.len() + 1);

    let equity_csv = std::fs::read_to_string(dir.join("equity.csv")).unwrap();
    assert!(equity_csv.starts_with("time,time_ms,equity,drawdown_pct\n2024-01-01T01:00:00Z,1704070800000,"));
    let series_csv = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    assert!(series_csv.starts_with("time,time_ms,name,value\n"));

    // Parquet tables read back with polars, with the right shapes and exact decimals.
    let read = |name: &str| ParquetReader::new(std::fs::File::open(dir.join(name)).unwrap()).finish().unwrap();
    let trades = read("trades.parquet");
    assert_eq!(trades.height(), record.trades.len());
    let fees = trades.column("fees").unwrap();
    assert!(matches!(fees.dtype(), DataType::Decimal(_, 8)), "{:?}", fees.dtype());
    let last = fees.as_materialized_series().decimal().unwrap().physical().get(record.trades.len() - 1);
    assert_eq!(last, Some(2025), "0.00002025 at scale 8");
    assert_eq!(read("equity.parquet").height(), record.equity.len());
    let recorded: usize = record.series.iter().map(|s| s.points.len()).sum();
    assert_eq!(read("series.parquet").height(), recorded);
    assert_eq!(series_csv.lines().count(), recorded + 1);
    let equity = read("equity.parquet");
    let names: Vec<&str> = equity.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["time", "equity", "drawdown_pct"]);
    assert_eq!(
        equity.column("time").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
        "Parquet times are timestamps"
    );

    // The page: offline, charts present, strategy text escaped.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "external reference in the page");
    assert!(!html.contains("<script") && !html.contains("<link"), "no script, no linked resource");
    let charts = html.matches("<svg class=\"chart\"").count();
    // 2 price charts + equity + drawdown + 2 series.
    assert_eq!(charts, 6, "charts");
    assert!(html.contains("ema_cross &lt;v2&gt; &amp; friends"));
    assert!(!html.contains("<b>bold</b>") && html.contains("&lt;b&gt;bold&lt;/b&gt;"));
    assert!(html.contains("signal &lt;z&gt;"));
    assert!(html.contains("BTCUSDT: 3 gaps, 17 missing bars, largest 9"));
    // Every path is downsampled.
    for d in html.split(" d=\"").skip(1) {
        let d = &d[..d.find('"').unwrap()];
        assert!(d.matches('L').count() < svg::MAX_POINTS + 2, "a path has {} points", d.matches('L').count());
    }
}

#[test]
fn many_trades_are_capped_in_the_page() {
    let mut r = sample();
    let t = r.trades[0].clone();
    r.trades = (0..1200).map(|_| t.clone()).collect();
    let html = render_html(&r, &summary(&r));
    assert_eq!(html.matches("<tr><td class=\"num\">").count(), html::MAX_TRADE_ROWS);
    assert!(html.contains("Showing the first 500 of 1,200 trades"));
}

/// The equity tables are written in batches; every point arrives once, in order, with the
/// drawdown computed over the whole curve (not restarted per batch).
#[test]
fn equity_tables_span_batches_in_order() {
    let mut r = tiny();
    let n = 2 * 65_536 + 7;
    // Rises to a peak in the first batch, then only falls: the drawdown keeps growing across batches.
    r.equity = (0..n)
        .map(|i| {
            let e = if i < 1000 { 100.0 + i as f64 } else { 1099.0 - (i - 999) as f64 * 0.001 };
            point(1_704_067_200_000 + i as i64 * 60_000, e, false)
        })
        .collect();
    let dir = scratch("batches");
    write_tables(&r, &dir).unwrap();

    let csv = std::fs::read_to_string(dir.join("equity.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), n + 1);
    assert_eq!(lines[0], "time,time_ms,equity,drawdown_pct");
    for (i, line) in lines[1..].iter().enumerate() {
        let p = &r.equity[i];
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0], iso_utc(p.time_ms), "row {i}");
        assert_eq!(fields[1], p.time_ms.to_string(), "row {i}");
        assert_eq!(fields[2].parse::<f64>().unwrap(), p.equity, "row {i}");
    }
    let last_dd: f64 = lines[n].rsplit(',').next().unwrap().parse().unwrap();
    let want = (1099.0 - r.equity[n - 1].equity) / 1099.0 * 100.0;
    assert!(close(last_dd, want, 1e-12), "drawdown {last_dd}, want {want}");

    let parquet = ParquetReader::new(std::fs::File::open(dir.join("equity.parquet")).unwrap()).finish().unwrap();
    assert_eq!(parquet.height(), n);
    let times = parquet.column("time").unwrap().datetime().unwrap().physical().clone();
    assert!(times.iter().zip(&r.equity).all(|(t, p)| t == Some(p.time_ms)));
    let last_pq = parquet.column("drawdown_pct").unwrap().f64().unwrap().get(n - 1).unwrap();
    assert_eq!(last_pq.to_bits(), last_dd.to_bits(), "the same drawdown in both tables");

    // No points: the headers alone, and Parquet files with their schema and no rows.
    r.equity.clear();
    r.series.clear();
    let empty = scratch("empty-tables");
    write_tables(&r, &empty).unwrap();
    assert_eq!(std::fs::read_to_string(empty.join("equity.csv")).unwrap(), "time,time_ms,equity,drawdown_pct\n");
    assert_eq!(std::fs::read_to_string(empty.join("series.csv")).unwrap(), "time,time_ms,name,value\n");
    for (name, width) in [("equity.parquet", 3), ("series.parquet", 3)] {
        let df = ParquetReader::new(std::fs::File::open(empty.join(name)).unwrap()).finish().unwrap();
        assert_eq!((df.height(), df.width()), (0, width), "{name}");
    }
}

/// Series rows arrive in time order, several series per time; names needing quotes are quoted.
#[test]
fn series_tables_keep_every_value_in_order() {
    let dir = scratch("series");
    let mut tables = TableWriter::create(&dir, 100.0).unwrap();
    let n = 3 * 65_536 + 5; // several batches
    for i in 0..n as i64 {
        tables.series(0, "fast", i * 60_000, i as f64);
        tables.series(1, "a,b \"q\"", i * 60_000, -(i as f64));
    }
    tables.finish().unwrap();
    let csv = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2 * n + 1);
    assert_eq!(lines[1], "1970-01-01T00:00:00Z,0,fast,0.0");
    assert_eq!(lines[2], "1970-01-01T00:00:00Z,0,\"a,b \"\"q\"\"\",-0.0");
    assert_eq!(lines[2 * n - 1], format!("{},{},fast,{}.0", iso_utc((n as i64 - 1) * 60_000), (n - 1) * 60_000, n - 1));
    let df = ParquetReader::new(std::fs::File::open(dir.join("series.parquet")).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 2 * n);
    let names = df.column("name").unwrap().str().unwrap();
    assert_eq!((names.get(0), names.get(1)), (Some("fast"), Some("a,b \"q\"")));
    let values = df.column("value").unwrap().f64().unwrap();
    assert_eq!(values.get(2 * n - 2), Some((n - 1) as f64));
}

#[test]
fn a_short_run_without_trades_renders_hour_ticks() {
    // One day of 1m bars, no trades: hour ticks on the time axis, nulls in the page as "—".
    let start = 1_717_200_000_000; // 2024-06-01T00:00:00Z
    let mut r = sample();
    let n = 1440i64;
    r.interval_ms = 60_000;
    r.bars = n as u64;
    r.start_ms = start;
    r.end_ms = start + n * 60_000;
    r.trades.clear();
    r.symbols.truncate(1);
    r.prices = vec![(0..n)
        .map(|i| PricePoint { time_ms: start + (i + 1) * 60_000, close: 67_000.0 + (i as f64 / 30.0).sin() * 150.0 })
        .collect()];
    r.equity = (0..n).map(|i| point(start + (i + 1) * 60_000, 10_000.0, false)).collect();
    r.series = vec![Series {
        name: "z".into(),
        points: (0..n)
            .map(|i| SeriesPoint { time_ms: start + (i + 1) * 60_000, value: (i as f64 / 50.0).cos() })
            .collect(),
    }];
    r.final_equity = d("10000");
    r.stopped = Some("strategy error budget exhausted".into());
    let s = summary(&r);
    // 1440 bars of 1m span exactly one day: not under a day, so CAGR exists (flat: 0).
    assert_eq!(s.cagr_pct, Some(0.0));
    assert_eq!((s.sharpe, s.win_rate_pct), (None, None));
    let html = render_html(&r, &s);
    assert!(html.contains(">06:00<") && html.contains(">12:00<"), "hour ticks");
    assert!(html.contains("No trades.") && html.contains("The run stopped early"));
    if let Some(dir) = std::env::var_os("QUANTFOLD_REPORT_SAMPLE_DIR") {
        let dir = PathBuf::from(dir).join("short");
        write_tables(&r, &dir).unwrap();
        write_all(&r, &s, &dir).unwrap();
    }
}

#[test]
fn only_a_real_early_stop_is_a_warning() {
    let page = |stopped: &str, errors: u64| {
        let r = RunRecord { stopped: Some(stopped.into()), strategy_errors: errors, ..tiny() };
        render_html(&r, &summary(&r))
    };
    let end = page(crate::record::END_OF_DATA, 0);
    assert!(!end.contains("<div class=\"alert\">"), "a run that reached the end of its data has no warning");
    assert!(!end.contains("stopped early"));
    let failed = page("failed 4 times: st_heartbeat: TypeError: x is undefined", 4);
    assert!(
        failed.contains("<div class=\"alert\">The run stopped early: failed 4 times: st_heartbeat: TypeError"),
        "a strategy stopped by its errors is a warning"
    );
    assert!(failed.contains("<div class=\"alert\">4 strategy error(s) during the run.</div>"));
}

/// The order a reader reads the summary in: performance, trades, exposure and costs, bookkeeping.
const SUMMARY_ORDER: &[&str] = &[
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "calmar",
    "trades",
    "win_rate_pct",
    "profit_factor",
    "avg_trade_duration",
    "exposure_pct",
    "fees_paid",
    "funding_net",
    "initial_equity",
    "final_equity",
    "strategy",
    "params",
    "symbols",
    "interval",
    "interval_ms",
    "start",
    "end",
    "bars",
    "avg_trade_duration_ms",
    "orders_rejected",
    "strategy_errors",
    "anomalies",
    "stopped",
    "data_notes",
    "state_digest",
];

#[test]
fn the_summary_reads_in_order_not_alphabetically() {
    let want = SUMMARY_ORDER.to_vec();
    let s = summary(&tiny());
    let fields = s.fields();
    assert_eq!(fields.keys().map(String::as_str).collect::<Vec<_>>(), want);
    assert_eq!(fields["trades"], 4);
    assert_eq!(fields["final_equity"], "121");
    // summary.json: the same order, key by key.
    let dir = scratch("summary-order");
    write_all(&tiny(), &s, &dir).unwrap();
    let json = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let keys: Vec<&str> =
        json.lines().filter_map(|l| l.strip_prefix("  \"")).filter_map(|l| l.split_once('"')).map(|(k, _)| k).collect();
    assert_eq!(keys, want);
}
