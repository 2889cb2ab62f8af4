//! Exact text -> number parsing for kline fields. Never goes through `f64`.
//!
//! Accepted decimal syntax: optional surrounding ASCII spaces/tabs, optionally wrapped in one pair of
//! double quotes, optional sign, digits with at most one `.` (`1.`, `.5` accepted), optionally an
//! exponent (`2.025e-05`), which is applied exactly (scale shift, no rounding). Anything that cannot be
//! represented exactly by `rust_decimal::Decimal` (more than 28 decimals, more than 96 bits of
//! mantissa) is an error, never silently rounded.

use rust_decimal::Decimal;

/// Why a field was rejected; the caller adds file, line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number (includes the empty field).
    Syntax,
    /// `NaN`, `inf`, `infinity` (any case, any sign).
    NonFinite,
    /// A well-formed number that `Decimal` cannot hold exactly.
    Inexact,
}

/// Strip blanks and one pair of surrounding double quotes.
#[inline]
pub(crate) fn trim_field(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = b {
        b = rest;
    }
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        b = &b[1..b.len() - 1];
        while let [b' ' | b'\t', rest @ ..] = b {
            b = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = b {
            b = rest;
        }
    }
    b
}

/// Parse a decimal exactly.
#[inline]
pub(crate) fn parse_decimal(field: &[u8]) -> Result<Decimal, NumError> {
    let b = trim_field(field);
    // Fast path: [sign] digits [. digits], at most 19 significant-or-not digits in total (fits u64).
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    // Integer digits, optional '.', fraction digits. Wrapping arithmetic: more than 19 digits may
    // overflow u64, and such input is sent to the slow path below anyway.
    let len = digits.len();
    let mut mant: u64 = 0;
    let mut i = 0;
    while i < len {
        let c = digits[i].wrapping_sub(b'0');
        if c > 9 {
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(u64::from(c));
        i += 1;
    }
    let int_digits = i;
    let mut scale = 0;
    if i < len && digits[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < len {
            let c = digits[i].wrapping_sub(b'0');
            if c > 9 {
                break;
            }
            mant = mant.wrapping_mul(10).wrapping_add(u64::from(c));
            i += 1;
        }
        scale = i - frac_start;
    }
    let n_digits = int_digits + scale;
    if i == len && n_digits <= 19 {
        if n_digits == 0 {
            return Err(NumError::Syntax);
        }
        return Ok(Decimal::from_parts(mant as u32, (mant >> 32) as u32, 0, neg && mant != 0, scale as u32));
    }
    parse_decimal_slow(b)
}

#[cold]
fn parse_decimal_slow(b: &[u8]) -> Result<Decimal, NumError> {
    let s = std::str::from_utf8(b).map_err(|_| NumError::Syntax)?;
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if ["nan", "inf", "infinity"].iter().any(|w| unsigned.eq_ignore_ascii_case(w)) {
        return Err(NumError::NonFinite);
    }
    let (base, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    // Validate the base strictly ourselves (rust_decimal also accepts `_` separators, we do not).
    let base_digits = base.strip_prefix(['-', '+']).unwrap_or(base);
    let mut dots = 0;
    let mut n_digits = 0;
    for c in base_digits.bytes() {
        match c {
            b'0'..=b'9' => n_digits += 1,
            b'.' => dots += 1,
            _ => return Err(NumError::Syntax),
        }
    }
    if n_digits == 0 || dots > 1 {
        return Err(NumError::Syntax);
    }
    // `from_str_exact` rejects (never rounds) values that need more than 28 decimals or 96 bits.
    // It does not accept a bare trailing/leading dot in every version, so normalise those.
    let mut owned: String;
    let mut base_norm = base;
    if base_digits.ends_with('.') || base_digits.starts_with('.') {
        owned = String::with_capacity(base.len() + 2);
        let (sign, body) = base.split_at(base.len() - base_digits.len());
        owned.push_str(sign);
        if body.starts_with('.') {
            owned.push('0');
        }
        owned.push_str(body.strip_suffix('.').unwrap_or(body));
        base_norm = &owned;
    }
    let mut d = Decimal::from_str_exact(base_norm).map_err(|_| NumError::Inexact)?;
    if let Some(exp) = exp {
        let exp_digits = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        if exp_digits.is_empty() || !exp_digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(NumError::Syntax);
        }
        let e: u32 = exp_digits.parse().map_err(|_| NumError::Inexact)?;
        if exp.starts_with('-') {
            let new_scale = d.scale().checked_add(e).ok_or(NumError::Inexact)?;
            if new_scale > 28 {
                // Could still be exact if the mantissa has trailing zeros; try normalised.
                let n = d.normalize();
                let ns = n.scale().checked_add(e).ok_or(NumError::Inexact)?;
                if ns > 28 {
                    return Err(NumError::Inexact);
                }
                d = n;
                d.set_scale(ns).map_err(|_| NumError::Inexact)?;
            } else {
                d.set_scale(new_scale).map_err(|_| NumError::Inexact)?;
            }
        } else if e <= d.scale() {
            let s = d.scale() - e;
            d.set_scale(s).map_err(|_| NumError::Inexact)?;
        } else {
            let mut up = e - d.scale();
            d.set_scale(0).map_err(|_| NumError::Inexact)?;
            let ten = Decimal::TEN;
            while up > 0 {
                d = d.checked_mul(ten).ok_or(NumError::Inexact)?;
                up -= 1;
            }
        }
    }
    Ok(d)
}

/// Parse a (possibly signed) integer exactly, e.g. an epoch timestamp.
#[inline]
pub(crate) fn parse_i64(field: &[u8]) -> Option<i64> {
    let b = trim_field(field);
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_exact() {
        let x = parse_decimal(b"0.00002025").unwrap();
        assert_eq!(x, d("0.00002025"));
        assert_eq!(x.to_string(), "0.00002025");
        assert_eq!(parse_decimal(b"2.025e-05").unwrap().to_string(), "0.00002025");
        assert_eq!(parse_decimal(b"1.2E3").unwrap(), d("1200"));
        assert_eq!(parse_decimal(b" \"42.10\" ").unwrap().to_string(), "42.10");
        assert_eq!(parse_decimal(b"-0").unwrap(), Decimal::ZERO);
        assert!(!parse_decimal(b"-0").unwrap().is_sign_negative());
        assert_eq!(parse_decimal(b"1.").unwrap(), d("1"));
        assert_eq!(parse_decimal(b".5").unwrap(), d("0.5"));
        // 25 digits: slow path, still exact.
        assert_eq!(parse_decimal(b"123456789012.3456789012345").unwrap().to_string(), "123456789012.3456789012345");
        assert_eq!(parse_decimal(b"0.00000000000000000000000000001"), Err(NumError::Inexact));
        for bad in [&b""[..], b"abc", b"1.2.3", b"1_000", b"--1", b"1e", b"e5", b".", b"0x10"] {
            assert_eq!(parse_decimal(bad), Err(NumError::Syntax), "{:?}", bad);
        }
        for nf in [&b"NaN"[..], b"inf", b"-Infinity", b"+INF"] {
            assert_eq!(parse_decimal(nf), Err(NumError::NonFinite));
        }
    }

    proptest::proptest! {
        /// Every decimal's own text reads back exactly: the same value, mantissa and scale
        /// as `Decimal::from_str` gives (both paths: up to 19 digits fast, beyond slow).
        #[test]
        fn any_decimal_reads_back_as_from_str_reads_it(m in -(10i128.pow(27))..10i128.pow(27), scale in 0u32..=27) {
            let text = Decimal::from_i128_with_scale(m, scale).to_string();
            let want = Decimal::from_str(&text).unwrap();
            let got = parse_decimal(text.as_bytes()).unwrap();
            proptest::prop_assert_eq!((got, got.mantissa(), got.scale()), (want, want.mantissa(), want.scale()), "{}", text);
        }

        /// Any plain text of sign, digits and a point: where `Decimal::from_str` reads it
        /// exactly, the parser reads the same mantissa and scale; where it is no number, the
        /// parser refuses it too.
        #[test]
        fn plain_text_reads_as_from_str_reads_it(text in "[+-]?[0-9]{0,14}(\\.[0-9]{0,13})?") {
            match (Decimal::from_str(&text), parse_decimal(text.as_bytes())) {
                (Ok(want), Ok(got)) => proptest::prop_assert_eq!((got.mantissa(), got.scale()), (want.mantissa(), want.scale()), "{}", text),
                (Err(_), Err(_)) => {}
                (want, got) => proptest::prop_assert!(false, "{:?}: from_str {:?}, parse_decimal {:?}", text, want, got),
            }
        }
    }

    #[test]
    fn ints() {
        assert_eq!(parse_i64(b"1524880320000"), Some(1524880320000));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"1.5"), None);
        assert_eq!(parse_i64(b""), None);
    }
}
