//! Serde forms for exact decimals.
//!
//! Every `Decimal` in an event or in the state goes through [`dec`] (or [`dec_opt`]):
//! human-readable formats (the JSON Lines export, the API) see the exact decimal
//! string ("0.00002025", scale kept), binary formats (the bincode journal codec)
//! see rust_decimal's fixed 16-byte form. One derive serves both, and neither path
//! ever goes through `f64`.

use rust_decimal::{prelude::ToPrimitive, Decimal};
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

/// The largest scale rust_decimal can represent; a decoded value above it is corrupt.
const SCALE_MAX: u8 = 28;

/// `#[serde(with = "crate::money::dec")]` for `Decimal` fields.
pub mod dec {
    use super::*;

    /// Writes the exact string (human-readable) or the 16-byte form (binary).
    ///
    /// # Errors
    /// Only the serializer's own errors.
    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(value)
        } else {
            value.serialize().serialize(serializer)
        }
    }

    /// Reads what [`serialize`] wrote; JSON also accepts a plain number when it is an integer.
    ///
    /// # Errors
    /// Text that is not a decimal, or a 16-byte form with an impossible scale.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        if deserializer.is_human_readable() {
            match TextOrInteger::deserialize(deserializer)? {
                TextOrInteger::Text(text) => parse(&text).map_err(D::Error::custom),
                TextOrInteger::Signed(n) => Ok(Decimal::from(n)),
                TextOrInteger::Unsigned(n) => Ok(Decimal::from(n)),
            }
        } else {
            let bytes = <[u8; 16]>::deserialize(deserializer)?;
            // Byte 2 holds the scale; bits of byte 0/1 and byte 3 other than the sign are unused.
            if bytes[2] > SCALE_MAX || bytes[0] != 0 || bytes[1] != 0 || bytes[3] & 0x7f != 0 {
                return Err(D::Error::custom("corrupt decimal bytes"));
            }
            Ok(Decimal::deserialize(bytes))
        }
    }
}

/// A decimal in a human-readable format: its exact text, or a JSON integer
/// (exact too; a JSON float is refused because it has been through `f64`).
#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrInteger {
    Text(String),
    Signed(i64),
    Unsigned(u64),
}

/// `#[serde(with = "crate::money::dec_opt")]` for `Option<Decimal>` fields.
pub mod dec_opt {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "dec")] Decimal);

    /// # Errors
    /// Only the serializer's own errors.
    pub fn serialize<S: Serializer>(value: &Option<Decimal>, serializer: S) -> Result<S::Ok, S::Error> {
        value.map(Wrap).serialize(serializer)
    }

    /// # Errors
    /// As [`dec::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
    }
}

/// Parses a decimal exactly from text, accepting plain and exponent notation
/// ("0.00002025", "2.025e-05"); refuses NaN, infinities and anything else.
///
/// # Errors
/// A message naming the text.
pub fn parse(text: &str) -> Result<Decimal, String> {
    let trimmed = text.trim();
    let parsed =
        if trimmed.contains(['e', 'E']) { Decimal::from_scientific(trimmed) } else { trimmed.parse::<Decimal>() };
    parsed.map_err(|_| format!("{text:?} is not a decimal number"))
}

/// The `f64` a strategy sees for a decimal: bit for bit what `Decimal::to_f64` answers (so
/// journaled decisions replay unchanged), with its arithmetic in `u64` when the mantissa
/// fits, which is several times faster than the `u128` path it takes otherwise (a backtest
/// converts prices on every bar).
pub fn to_f64(d: Decimal) -> f64 {
    let scale = d.scale();
    let magnitude = d.mantissa().unsigned_abs();
    let Ok(magnitude) = u64::try_from(magnitude) else { return d.to_f64().unwrap_or(f64::NAN) };
    if scale == 0 || scale > 19 {
        return d.to_f64().unwrap_or(f64::NAN);
    }
    // The steps of `Decimal::as_f64` (rust_decimal 1.x), on the same values; a division by
    // each constant power of ten compiles to a multiplication, several times cheaper.
    let precision = 10u64.pow(scale);
    let (integral, fraction) = match scale {
        1 => (magnitude / 10u64.pow(1), magnitude % 10u64.pow(1)),
        2 => (magnitude / 10u64.pow(2), magnitude % 10u64.pow(2)),
        3 => (magnitude / 10u64.pow(3), magnitude % 10u64.pow(3)),
        4 => (magnitude / 10u64.pow(4), magnitude % 10u64.pow(4)),
        5 => (magnitude / 10u64.pow(5), magnitude % 10u64.pow(5)),
        6 => (magnitude / 10u64.pow(6), magnitude % 10u64.pow(6)),
        7 => (magnitude / 10u64.pow(7), magnitude % 10u64.pow(7)),
        8 => (magnitude / 10u64.pow(8), magnitude % 10u64.pow(8)),
        9 => (magnitude / 10u64.pow(9), magnitude % 10u64.pow(9)),
        10 => (magnitude / 10u64.pow(10), magnitude % 10u64.pow(10)),
        11 => (magnitude / 10u64.pow(11), magnitude % 10u64.pow(11)),
        12 => (magnitude / 10u64.pow(12), magnitude % 10u64.pow(12)),
        13 => (magnitude / 10u64.pow(13), magnitude % 10u64.pow(13)),
        14 => (magnitude / 10u64.pow(14), magnitude % 10u64.pow(14)),
        15 => (magnitude / 10u64.pow(15), magnitude % 10u64.pow(15)),
        16 => (magnitude / 10u64.pow(16), magnitude % 10u64.pow(16)),
        17 => (magnitude / 10u64.pow(17), magnitude % 10u64.pow(17)),
        18 => (magnitude / 10u64.pow(18), magnitude % 10u64.pow(18)),
        19 => (magnitude / 10u64.pow(19), magnitude % 10u64.pow(19)),
        _ => unreachable!("scale is from 1 to 19 here"),
    };
    let integral = integral as f64;
    let fraction = fraction as f64 / precision as f64;
    let value = if fraction == 0.0 {
        integral
    } else {
        let round_to = 10f64.powi(scale as i32);
        ((integral + fraction) * round_to).round() / round_to
    };
    if d.is_sign_negative() {
        -value
    } else {
        value
    }
}

/// `#[serde(with = "crate::money::float")]` for recorded series values (not
/// money): JSON has no NaN or infinities, so those travel as the strings
/// "NaN", "Infinity" and "-Infinity" and come back exactly.
pub mod float {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Number(f64),
        Word(String),
    }

    /// # Errors
    /// Only the serializer's own errors.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        // Every NaN is written as the one NaN: the text form cannot carry a
        // NaN's sign or payload, so the binary form must not either, or an
        // export re-imported would hash differently (x86's 0.0 / 0.0 has the sign bit set).
        let value = &if value.is_nan() { f64::NAN } else { *value };
        if !serializer.is_human_readable() || value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if *value > 0.0 {
            serializer.serialize_str("Infinity")
        } else {
            serializer.serialize_str("-Infinity")
        }
    }

    /// # Errors
    /// Anything but a number or one of the three words.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        if !deserializer.is_human_readable() {
            return f64::deserialize(deserializer);
        }
        match Text::deserialize(deserializer)? {
            Text::Number(n) => Ok(n),
            Text::Word(w) => match w.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(D::Error::custom(format!("{w:?} is not a number"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Amount(#[serde(with = "dec")] Decimal);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Series(#[serde(with = "float")] f64);

    #[test]
    fn parse_is_exact_and_refuses_non_numbers() {
        struct Case {
            text: &'static str,
            expected: Option<(i64, u32)>,
        }
        let cases = [
            Case { text: "0.00002025", expected: Some((2025, 8)) },
            Case { text: "2.025e-05", expected: Some((2025, 8)) },
            Case { text: "1.50", expected: Some((150, 2)) },
            Case { text: " -7 ", expected: Some((-7, 0)) },
            Case { text: "NaN", expected: None },
            Case { text: "inf", expected: None },
            Case { text: "", expected: None },
            Case { text: "1.2.3", expected: None },
        ];
        for case in cases {
            let got = parse(case.text).ok().map(|d| (d.mantissa() as i64, d.scale()));
            assert_eq!(got, case.expected, "{:?}", case.text);
        }
        assert!(parse("abc").unwrap_err().contains("\"abc\""), "the message names the text");
    }

    #[test]
    fn json_decimals_are_strings_and_integers_are_accepted_as_documented() {
        assert_eq!(serde_json::to_string(&Amount("1.50".parse().unwrap())).unwrap(), r#""1.50""#);
        assert_eq!(serde_json::from_str::<Amount>(r#""1.50""#).unwrap().0.scale(), 2);
        assert_eq!(serde_json::from_str::<Amount>("42").unwrap(), Amount(Decimal::from(42)));
        assert_eq!(serde_json::from_str::<Amount>("-3").unwrap(), Amount(Decimal::from(-3)));
        assert!(serde_json::from_str::<Amount>("1.5").is_err(), "a JSON float would go through f64");
        assert!(serde_json::from_str::<Amount>(r#""1e999""#).is_err());
    }

    #[test]
    fn binary_decimals_with_impossible_bytes_are_refused() {
        let config = bincode::config::standard();
        let good = Decimal::new(-150, 2);
        let bytes = bincode::serde::encode_to_vec(Amount(good), config).unwrap();
        let (back, _): (Amount, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!((back.0, back.0.scale()), (good, 2));
        // Fixed arrays are written raw, so byte 2 of the value is the scale.
        let mut bad_scale = bytes.clone();
        bad_scale[2] = 29;
        assert!(bincode::serde::decode_from_slice::<Amount, _>(&bad_scale, config).is_err());
        let mut stray_flag = bytes;
        stray_flag[0] = 1;
        assert!(bincode::serde::decode_from_slice::<Amount, _>(&stray_flag, config).is_err());
    }

    proptest::proptest! {
        #[test]
        fn to_f64_is_decimal_to_f64_bit_for_bit(
            mantissa in proptest::prelude::any::<i128>(),
            small in proptest::prelude::any::<i64>(),
            scale in 0u32..=28,
        ) {
            use rust_decimal::prelude::ToPrimitive;
            let big = mantissa % 79_228_162_514_264_337_593_543_950_335i128;
            for m in [big, i128::from(small), i128::from(small % 100_000_000), i128::from(small % 1000)] {
                let d = Decimal::from_i128_with_scale(m, scale);
                let expected = d.to_f64().unwrap();
                proptest::prop_assert_eq!(to_f64(d).to_bits(), expected.to_bits(), "{}", d);
            }
        }
    }

    #[test]
    fn series_floats_survive_json_including_nan_and_infinities() {
        for value in [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e-310, 0.1 + 0.2] {
            let text = serde_json::to_string(&Series(value)).unwrap();
            let back = serde_json::from_str::<Series>(&text).unwrap().0;
            let expected = if value.is_nan() { f64::NAN } else { value };
            assert_eq!(back.to_bits(), expected.to_bits(), "{value} as {text}");
        }
        assert!(serde_json::from_str::<Series>(r#""nan""#).is_err(), "only the three exact words");
    }
}
