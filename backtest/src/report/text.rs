//! Fast text for the large CSV tables (one row per bar): times, integers and floats pushed
//! into a byte buffer. Floats use zmij, the shortest round-trip form polars' own CSV writer
//! uses (`NaN`, `inf`, `-inf` for non-finite values), so the tables read the same either way;
//! building them by hand skips a DataFrame of strings per batch, which cost several times the
//! formatting itself.

use chrono::Datelike;

use super::utc::{datetime, push_iso_utc};

/// ISO-8601 UTC times as [`super::iso_utc`] writes them, caching the date part: a run's rows
/// are in time order, so the date changes once a day at most and only the time of day is
/// formatted per row.
#[derive(Default)]
pub(crate) struct IsoTimes {
    /// The day (days since the epoch) `date` holds, and `"YYYY-MM-DDT"`.
    day: Option<i64>,
    date: Vec<u8>,
}

impl IsoTimes {
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, ms: i64) {
        let day = ms.div_euclid(86_400_000);
        if self.day != Some(day) {
            if !(0..=9999).contains(&datetime(ms).year()) {
                // Outside four-digit years: rare enough for the general formatter.
                let mut text = String::new();
                push_iso_utc(&mut text, ms);
                out.extend_from_slice(text.as_bytes());
                return;
            }
            let mut text = String::new();
            push_iso_utc(&mut text, day * 86_400_000);
            self.date.clear();
            self.date.extend_from_slice(&text.as_bytes()[..11]);
            self.day = Some(day);
        }
        // "HH:MM:SS" and, when the milliseconds are not 0, ".mmm"; then "Z".
        let in_day = ms.rem_euclid(86_400_000) as u32;
        let (secs, milli) = (in_day / 1000, in_day % 1000);
        let mut time = *b"00:00:00.000Z";
        time[0..2].copy_from_slice(two(secs / 3600));
        time[3..5].copy_from_slice(two(secs % 3600 / 60));
        time[6..8].copy_from_slice(two(secs % 60));
        let len = if milli == 0 {
            time[8] = b'Z';
            9
        } else {
            time[9..11].copy_from_slice(two(milli / 10));
            time[11] = b'0' + (milli % 10) as u8;
            13
        };
        out.extend_from_slice(&self.date);
        out.extend_from_slice(&time[..len]);
    }
}

/// Two digits of `value` (< 100), zero-padded.
fn two(value: u32) -> &'static [u8] {
    const DIGITS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let at = value as usize * 2;
    &DIGITS[at..at + 2]
}

pub(crate) fn push_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

pub(crate) fn push_f64(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(zmij::Buffer::new().format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::iso_utc;

    #[test]
    fn times_match_the_general_formatter() {
        let mut times = IsoTimes::default();
        let mut stamps: Vec<i64> = (0..5000).map(|i| 1_704_067_140_000 + i * 59_999).collect();
        stamps.extend([-1, 0, 951_782_400_000, 253_402_300_799_000, 253_402_300_800_010, 1_000, 86_399_999]);
        for ms in stamps {
            let mut out = Vec::new();
            times.push(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), iso_utc(ms), "{ms}");
        }
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        for x in [0.1 + 0.2, 1e21, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 10_000.0] {
            push_f64(&mut out, x);
            out.push(b' ');
        }
        push_i64(&mut out, -1_640_995_200_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0.30000000000000004 1e+21 -0.0 NaN inf -inf 10000.0 -1640995200000"
        );
    }
}
