//! Synthetic klines: a seeded geometric random walk written as Kline CSV.

use std::io::{self, BufWriter, Write};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Per-bar volatility of the close (0.1 %).
const SIGMA: f64 = 0.001;
const START_PRICE: f64 = 20_000.0;
const SQRT3: f64 = 1.732_050_807_568_877_2;

/// Write `bars` bars in the Kline CSV format (header `open_time_ms,open,high,low,close,volume`),
/// open times `start_ms + i * interval_ms`.
///
/// The close follows a geometric random walk from 20000.00: `close *= 1 + 0.001 z + 0.001²/2`, `z` an
/// Irwin–Hall(4) variate scaled to unit variance (the `σ²/2` keeps the log-price driftless), floored at
/// 1.00. Open = previous close; high/low add a random wick of up to 0.1 % above max(open, close) /
/// below min(open, close) (low >= 0.01). Prices have 2 decimals, volume (0.001..=100.000) 3.
///
/// Deterministic: the same arguments give byte-identical output on every platform. The generator is
/// ChaCha8 seeded with `seed`; only IEEE-754 `+ - * round` are used (no `ln`/`cos`, whose last bit
/// may differ between libms), and prices are carried as integer cents/thousandths when formatted.
/// No allocation per row; output goes through a 64 KiB buffer.
pub fn synth(bars: usize, interval_ms: i64, seed: u64, start_ms: i64, writer: impl Write) -> io::Result<()> {
    if interval_ms <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "interval_ms must be positive"));
    }
    let last = i64::try_from(bars.saturating_sub(1))
        .ok()
        .and_then(|n| n.checked_mul(interval_ms))
        .and_then(|d| d.checked_add(start_ms));
    if last.is_none() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "open times overflow i64"));
    }
    let mut w = BufWriter::with_capacity(1 << 16, writer);
    w.write_all(b"open_time_ms,open,high,low,close,volume\n")?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut unit = move || (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let mut price = START_PRICE;
    let mut close_c = (price * 100.0).round() as i64;
    let mut line: Vec<u8> = Vec::with_capacity(128);
    let mut t = start_ms;
    for i in 0..bars {
        if i > 0 {
            t += interval_ms;
        }
        let open_c = close_c;
        let z = (unit() + unit() + unit() + unit() - 2.0) * SQRT3;
        price *= 1.0 + SIGMA * z + SIGMA * SIGMA * 0.5;
        if price < 1.0 {
            price = 1.0;
        }
        close_c = ((price * 100.0).round() as i64).max(1);
        let (lo_base, hi_base) = (open_c.min(close_c), open_c.max(close_c));
        let high = hi_base + (hi_base as f64 * SIGMA * unit()).round() as i64;
        let low = (lo_base - (lo_base as f64 * SIGMA * unit()).round() as i64).max(1);
        let vol = 1 + (unit() * 100_000.0) as i64; // thousandths: 0.001 ..= 100.000

        line.clear();
        push_int(&mut line, t);
        for (v, d) in [(open_c, 2), (high, 2), (low, 2), (close_c, 2), (vol, 3)] {
            line.push(b',');
            push_fixed(&mut line, v, d);
        }
        line.push(b'\n');
        w.write_all(&line)?;
    }
    w.flush()
}

fn push_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs(), 1);
}

/// At least `min_digits` digits (zero padded).
fn push_u64(out: &mut Vec<u8>, mut v: u64, min_digits: usize) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v > 0 || tmp.len() - i < min_digits {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Non-negative `v` scaled by 10^-decimals, e.g. (12345, 2) -> "123.45", (5, 3) -> "0.005".
fn push_fixed(out: &mut Vec<u8>, v: i64, decimals: u32) {
    let p = 10u64.pow(decimals);
    let v = v.unsigned_abs();
    push_u64(out, v / p, 1);
    out.push(b'.');
    push_u64(out, v % p, decimals as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_formatting() {
        let mut o = Vec::new();
        push_fixed(&mut o, 12345, 2);
        o.push(b' ');
        push_fixed(&mut o, 5, 3);
        o.push(b' ');
        push_int(&mut o, -1200);
        o.push(b' ');
        push_int(&mut o, 0);
        assert_eq!(std::str::from_utf8(&o).unwrap(), "123.45 0.005 -1200 0");
    }
}
