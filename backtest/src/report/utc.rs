//! UTC times as the reports write them. The calendar is chrono's; only the digits of the
//! ISO form are pushed by hand, because the per-bar tables write one time per bar.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};

/// The UTC date and time of epoch milliseconds. Times beyond chrono's range (±262,000 years,
/// far past any market data) are clamped to it.
pub(crate) fn datetime(ms: i64) -> NaiveDateTime {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.naive_utc(),
        None if ms < 0 => NaiveDateTime::MIN,
        None => NaiveDateTime::MAX,
    }
}

/// Epoch milliseconds of 00:00 UTC on the first of `month` (0-based, counted from year 0, so
/// month arithmetic needs no carrying), plus `day - 1` days.
pub(crate) fn month_start_ms(months_since_year_0: i64, day: u32) -> i64 {
    let (year, month) = (months_since_year_0.div_euclid(12), months_since_year_0.rem_euclid(12) as u32 + 1);
    let date = i32::try_from(year).ok().and_then(|y| NaiveDate::from_ymd_opt(y, month, day));
    let date = date.unwrap_or(if year < 0 { NaiveDate::MIN } else { NaiveDate::MAX });
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis()
}

/// Months since year 0 of the month holding `ms` (see [`month_start_ms`]).
pub(crate) fn month_index(ms: i64) -> i64 {
    let t = datetime(ms);
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

/// ISO-8601 UTC: `2024-01-05T14:00:00Z`, with `.mmm` when the milliseconds are not 0.
pub fn iso_utc(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_iso_utc(&mut out, ms);
    out
}

/// [`iso_utc`] appended to `out`. Digits are pushed by hand: the equity tables format one time
/// per bar, and `format!` made that the most expensive part of writing the reports.
pub(crate) fn push_iso_utc(out: &mut String, ms: i64) {
    let t = datetime(ms);
    let y = t.year();
    if !(0..=9999).contains(&y) {
        // Outside four-digit years: rare enough for the general formatter.
        let _ = write!(out, "{y:04}");
    } else {
        push_digits(out, y as u32, 4);
    }
    for (sep, value) in [('-', t.month()), ('-', t.day()), ('T', t.hour()), (':', t.minute()), (':', t.second())] {
        out.push(sep);
        push_digits(out, value, 2);
    }
    let milli = ms.rem_euclid(1000) as u32;
    if milli != 0 {
        out.push('.');
        push_digits(out, milli, 3);
    }
    out.push('Z');
}

/// "2024-01-05 14:00" (seconds / milliseconds only when not zero), UTC.
pub(crate) fn short_time(ms: i64) -> String {
    let t = datetime(ms);
    // Not chrono's `%Y`, which signs years past 9999.
    let mut out = format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute());
    let (s, milli) = (t.second(), ms.rem_euclid(1000));
    if s != 0 || milli != 0 {
        let _ = write!(out, ":{s:02}");
    }
    if milli != 0 {
        let _ = write!(out, ".{milli:03}");
    }
    out
}

/// `value` in decimal, zero-padded to `width` digits (`value` < 10^width).
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}
