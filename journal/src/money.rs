//! Serde forms for exact decimals.
//!
//! Every `Decimal` in an event or in the state goes through [`dec`] (or [`dec_opt`]):
//! human-readable formats (the JSON Lines export, the API) see the exact decimal
//! string ("0.00002025", scale kept), binary formats (the bincode journal codec)
//! see rust_decimal's fixed 16-byte form. One derive serves both, and neither path
//! ever goes through `f64`.

use rust_decimal::Decimal;
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
            let text = String::deserialize(deserializer)?;
            parse(&text).map_err(D::Error::custom)
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
    let parsed = if trimmed.contains(['e', 'E']) {
        Decimal::from_scientific(trimmed)
    } else {
        trimmed.parse::<Decimal>()
    };
    parsed.map_err(|_| format!("{text:?} is not a decimal number"))
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
