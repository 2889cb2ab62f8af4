//! Numbers and client ids as Hyperliquid takes them.
//!
//! **Prices** (perpetuals): at most 5 significant figures and at most `6 − szDecimals`
//! decimals; an integer price is always allowed, however many digits it has (123456 is a
//! price, 12345.6 is not). **Sizes**: at most `szDecimals` decimals. On the wire both are
//! strings without trailing zeros (the signed msgpack hashes the exact string: "100.0" and
//! "100" are different actions) and never "-0".
//!
//! Every function starts from an exact `Decimal`. The `check_*` and `*_to_wire` functions
//! refuse a value off the rules and say which rule; the `round_*` functions move it onto the
//! rules in the direction the caller names ([`Rounding`]), never silently.
//!
//! The minimum order value is $10 ([`check_min_notional`]): an order below it is refused
//! here, with the numbers, before it reaches the journal, rather than by the venue after.
//!
//! A **cloid** is the journal's 16-byte [`Cloid`] written `0x` + 32 lowercase hex digits.

use journal::event::{Cloid, RejectReason};
use rust_decimal::{Decimal, RoundingStrategy};

/// The most decimals a perpetual's price may have, before subtracting `szDecimals`.
pub const MAX_DECIMALS_PERP: u32 = 6;
/// The most significant figures of a non-integer price.
pub const MAX_SIGNIFICANT_FIGURES: u32 = 5;
/// The smallest order value the venue takes, in USD (USDC).
pub const MIN_NOTIONAL_USD: Decimal = Decimal::TEN;

/// Why a number or a cloid cannot go on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{what} {value} is not positive")]
    NotPositive { what: &'static str, value: Decimal },
    #[error(
        "price {price} has {figures} significant figures; Hyperliquid takes at most 5 unless the price is an integer"
    )]
    TooManySignificantFigures { price: Decimal, figures: u32 },
    #[error(
        "price {price} has {decimals} decimals; an asset with szDecimals {sz_decimals} takes at most {max_decimals}"
    )]
    TooManyPriceDecimals { price: Decimal, decimals: u32, sz_decimals: u32, max_decimals: u32 },
    #[error("size {size} has {decimals} decimals; the asset's szDecimals is {sz_decimals}")]
    TooManySizeDecimals { size: Decimal, decimals: u32, sz_decimals: u32 },
    #[error("{what} {value} rounds {rounding:?} to zero")]
    RoundsToZero { what: &'static str, value: Decimal, rounding: Rounding },
    #[error(
        "order value ${notional} (price {price} × size {size}) is below Hyperliquid's minimum of ${}",
        MIN_NOTIONAL_USD
    )]
    BelowMinimumNotional { price: Decimal, size: Decimal, notional: Decimal },
    #[error("invalid cloid {text:?}: {reason}")]
    InvalidCloid { text: String, reason: &'static str },
    /// An order the venue cannot express (a fill-or-kill order), or one missing a price it
    /// needs; the text says which.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl WireError {
    /// The journal's reason for refusing an order intent with this error, so the refusal is
    /// journaled (`OrderRejected`) before anything is signed, with the rule in its words.
    pub fn reject_reason(&self) -> RejectReason {
        match self {
            WireError::NotPositive { what: "size", value } => RejectReason::NonPositiveQty(*value),
            WireError::TooManySizeDecimals { .. } | WireError::RoundsToZero { what: "size", .. } => {
                RejectReason::InvalidQty(self.to_string())
            }
            WireError::NotPositive { .. }
            | WireError::TooManySignificantFigures { .. }
            | WireError::TooManyPriceDecimals { .. }
            | WireError::RoundsToZero { .. } => RejectReason::InvalidPrice(self.to_string()),
            WireError::Unsupported("a limit order needs a price") => RejectReason::PriceRequired,
            WireError::BelowMinimumNotional { .. } | WireError::InvalidCloid { .. } | WireError::Unsupported(_) => {
                RejectReason::Other(self.to_string())
            }
        }
    }
}

/// Which way a value off the rules moves onto them. Prices and sizes are positive, so
/// `Down` is toward zero and `Up` away from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Toward zero: a buy limit that must not pay more, a size that must not exceed a budget.
    Down,
    /// Away from zero: a sell limit that must not receive less.
    Up,
    /// To the nearest allowed value, a tie away from zero.
    Nearest,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::Down => RoundingStrategy::ToZero,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::Nearest => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// A decimal as the wire writes it: no trailing zeros, no exponent, never "-0".
pub fn to_wire(value: Decimal) -> String {
    let normalized = value.normalize();
    if normalized.is_zero() {
        // `normalize` already turns -0 into 0; say so where it matters.
        return "0".to_owned();
    }
    normalized.to_string()
}

/// The most decimals a price of an asset with `sz_decimals` may have: `6 − szDecimals`, and
/// zero (integers only) when `szDecimals` is 6 or more.
pub fn max_price_decimals(sz_decimals: u32) -> u32 {
    MAX_DECIMALS_PERP.saturating_sub(sz_decimals)
}

/// Whether `price` is a valid price of an asset with `sz_decimals`.
///
/// # Errors
/// The first rule it breaks: [`WireError::NotPositive`],
/// [`WireError::TooManySignificantFigures`] or [`WireError::TooManyPriceDecimals`].
pub fn check_price(price: Decimal, sz_decimals: u32) -> Result<(), WireError> {
    positive("price", price)?;
    let price = price.normalize();
    let decimals = price.scale();
    if decimals == 0 {
        return Ok(());
    }
    // A normalized non-integer has no trailing zeros in its mantissa and no leading ones,
    // so its significant figures are the mantissa's digits (0.001234 → 1234 → 4).
    let figures = digits(price.mantissa().unsigned_abs());
    if figures > MAX_SIGNIFICANT_FIGURES {
        return Err(WireError::TooManySignificantFigures { price, figures });
    }
    let max_decimals = max_price_decimals(sz_decimals);
    if decimals > max_decimals {
        return Err(WireError::TooManyPriceDecimals { price, decimals, sz_decimals, max_decimals });
    }
    Ok(())
}

/// A price's wire string, if it is valid (see [`check_price`]).
///
/// # Errors
/// As [`check_price`].
pub fn price_to_wire(price: Decimal, sz_decimals: u32) -> Result<String, WireError> {
    check_price(price, sz_decimals)?;
    Ok(to_wire(price))
}

/// The valid price nearest to `price` in the direction `rounding`: first to at most 5
/// significant figures, then to at most `6 − szDecimals` decimals (one rounding, to the
/// fewer decimals of the two, so there is no double rounding). A price of 10000 or more
/// becomes an integer.
///
/// # Errors
/// [`WireError::NotPositive`], or [`WireError::RoundsToZero`] when a tiny price rounds down
/// to nothing.
pub fn round_price(price: Decimal, sz_decimals: u32, rounding: Rounding) -> Result<Decimal, WireError> {
    positive("price", price)?;
    let price = price.normalize();
    if price.scale() == 0 {
        return Ok(price);
    }
    let decimals = significant_decimals(price).min(max_price_decimals(sz_decimals));
    let rounded = price.round_dp_with_strategy(decimals, rounding.strategy()).normalize();
    if rounded.is_zero() {
        return Err(WireError::RoundsToZero { what: "price", value: price, rounding });
    }
    // A carry only ever produces a 1 followed by zeros, which normalizes to fewer figures,
    // so the result is valid; check anyway rather than send a price the venue refuses.
    check_price(rounded, sz_decimals)?;
    Ok(rounded)
}

/// How many decimals keep at most 5 significant figures of a positive, normalized,
/// non-integer `price`: `5 − (integer digits)` at or above 1 (never negative), and
/// `(zeros after the point) + 5` below 1.
fn significant_decimals(price: Decimal) -> u32 {
    if price >= Decimal::ONE {
        let integer_digits = digits(price.trunc().mantissa().unsigned_abs());
        MAX_SIGNIFICANT_FIGURES.saturating_sub(integer_digits)
    } else {
        // price = mantissa × 10^-scale with `digits(mantissa)` digits: the zeros between the
        // point and the first digit number scale − digits.
        let leading_zeros = price.scale().saturating_sub(digits(price.mantissa().unsigned_abs()));
        leading_zeros + MAX_SIGNIFICANT_FIGURES
    }
}

/// Whether `size` is a valid size of an asset with `sz_decimals`.
///
/// # Errors
/// [`WireError::NotPositive`] or [`WireError::TooManySizeDecimals`].
pub fn check_size(size: Decimal, sz_decimals: u32) -> Result<(), WireError> {
    positive("size", size)?;
    let size = size.normalize();
    let decimals = size.scale();
    if decimals > sz_decimals {
        return Err(WireError::TooManySizeDecimals { size, decimals, sz_decimals });
    }
    Ok(())
}

/// A size's wire string, if it is valid (see [`check_size`]).
///
/// # Errors
/// As [`check_size`].
pub fn size_to_wire(size: Decimal, sz_decimals: u32) -> Result<String, WireError> {
    check_size(size, sz_decimals)?;
    Ok(to_wire(size))
}

/// `size` at `szDecimals` decimals, rounded in the direction `rounding`.
///
/// # Errors
/// [`WireError::NotPositive`], or [`WireError::RoundsToZero`] when less than one lot rounds
/// down (or to nearest) to nothing.
pub fn round_size(size: Decimal, sz_decimals: u32, rounding: Rounding) -> Result<Decimal, WireError> {
    positive("size", size)?;
    let rounded = size.round_dp_with_strategy(sz_decimals, rounding.strategy()).normalize();
    if rounded.is_zero() {
        return Err(WireError::RoundsToZero { what: "size", value: size.normalize(), rounding });
    }
    Ok(rounded)
}

/// The order's value `price × size` if it reaches the venue's $10 minimum.
///
/// # Errors
/// [`WireError::BelowMinimumNotional`] with the price, size and value, or
/// [`WireError::NotPositive`].
pub fn check_min_notional(price: Decimal, size: Decimal) -> Result<Decimal, WireError> {
    positive("price", price)?;
    positive("size", size)?;
    // An overflow means a value far above any minimum.
    let Some(notional) = price.checked_mul(size) else {
        return Ok(Decimal::MAX);
    };
    if notional < MIN_NOTIONAL_USD {
        return Err(WireError::BelowMinimumNotional {
            price: price.normalize(),
            size: size.normalize(),
            notional: notional.normalize(),
        });
    }
    Ok(notional)
}

fn positive(what: &'static str, value: Decimal) -> Result<(), WireError> {
    if value.is_sign_negative() || value.is_zero() {
        return Err(WireError::NotPositive { what, value });
    }
    Ok(())
}

/// The number of decimal digits of `n` (1 for 0).
fn digits(n: u128) -> u32 {
    n.checked_ilog10().map_or(1, |log| log + 1)
}

/// A cloid as Hyperliquid writes it: `0x` + 32 lowercase hex digits.
pub fn cloid_to_wire(cloid: &Cloid) -> String {
    format!("0x{}", hex::encode(cloid.0))
}

/// Parses `0x` + 32 hex digits (either case) into the journal's [`Cloid`].
///
/// # Errors
/// [`WireError::InvalidCloid`] naming what is wrong.
pub fn parse_cloid(text: &str) -> Result<Cloid, WireError> {
    let invalid = |reason| WireError::InvalidCloid { text: text.chars().take(80).collect(), reason };
    let digits = text.strip_prefix("0x").ok_or(invalid("no 0x prefix"))?;
    if digits.len() != 32 {
        return Err(invalid("not 32 hex digits (16 bytes)"));
    }
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(digits, &mut bytes).map_err(|_| invalid("not hex"))?;
    Ok(Cloid(bytes))
}

/// `#[serde(with = "cloid_serde")]`: a [`Cloid`] as `"0x…"`.
pub mod cloid_serde {
    use journal::event::Cloid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cloid: &Cloid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::cloid_to_wire(cloid))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cloid, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_cloid(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "cloid_serde_opt")]`: an optional [`Cloid`] as `"0x…"` or null.
pub mod cloid_serde_opt {
    use journal::event::Cloid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cloid: &Option<Cloid>, serializer: S) -> Result<S::Ok, S::Error> {
        match cloid {
            Some(cloid) => serializer.serialize_str(&super::cloid_to_wire(cloid)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cloid>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse_cloid(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// The examples of the tick-and-lot-size page (VENUES.md §3.6).
    #[test]
    fn documented_price_examples() {
        struct Case {
            price: Decimal,
            sz_decimals: u32,
            valid: bool,
        }
        let cases = [
            // "1234.5 ok / 1234.56 no"
            Case { price: dec!(1234.5), sz_decimals: 0, valid: true },
            Case { price: dec!(1234.56), sz_decimals: 0, valid: false },
            // "0.001234 ok / 0.0012345 no"
            Case { price: dec!(0.001234), sz_decimals: 0, valid: true },
            Case { price: dec!(0.0012345), sz_decimals: 0, valid: false },
            // "szDecimals=1 → 0.01234 ok / 0.012345 no"
            Case { price: dec!(0.01234), sz_decimals: 1, valid: true },
            Case { price: dec!(0.012345), sz_decimals: 1, valid: false },
            // "integer prices always allowed (123456 ok, 12345.6 not)"
            Case { price: dec!(123456), sz_decimals: 0, valid: true },
            Case { price: dec!(12345.6), sz_decimals: 0, valid: false },
            Case { price: dec!(123456.000), sz_decimals: 5, valid: true },
            // BTC (szDecimals 5): one decimal at most.
            Case { price: dec!(9876.5), sz_decimals: 5, valid: true },
            Case { price: dec!(987.65), sz_decimals: 5, valid: false },
            // szDecimals 6 and above: integers only.
            Case { price: dec!(1.5), sz_decimals: 6, valid: false },
            Case { price: dec!(15), sz_decimals: 7, valid: true },
        ];
        for case in cases {
            assert_eq!(
                check_price(case.price, case.sz_decimals).is_ok(),
                case.valid,
                "{} with szDecimals {}",
                case.price,
                case.sz_decimals
            );
        }
    }

    #[test]
    fn refusals_name_the_rule() {
        assert_eq!(
            check_price(dec!(1234.56), 0),
            Err(WireError::TooManySignificantFigures { price: dec!(1234.56), figures: 6 })
        );
        assert_eq!(
            check_price(dec!(0.012345), 1).unwrap_err().to_string(),
            "price 0.012345 has 6 decimals; an asset with szDecimals 1 takes at most 5"
        );
        assert_eq!(
            check_size(dec!(1.0001), 3),
            Err(WireError::TooManySizeDecimals { size: dec!(1.0001), decimals: 4, sz_decimals: 3 })
        );
        assert_eq!(check_price(dec!(-1), 0), Err(WireError::NotPositive { what: "price", value: dec!(-1) }));
        assert_eq!(check_size(Decimal::ZERO, 0), Err(WireError::NotPositive { what: "size", value: Decimal::ZERO }));
    }

    #[test]
    fn wire_strings_strip_trailing_zeros_and_never_say_minus_zero() {
        assert_eq!(to_wire(dec!(1670.10)), "1670.1");
        assert_eq!(to_wire(dec!(100.000)), "100");
        assert_eq!(to_wire(dec!(0.0147)), "0.0147");
        assert_eq!(to_wire(dec!(1e-7)), "0.0000001");
        assert_eq!(to_wire(dec!(-0.000)), "0");
        assert_eq!(to_wire(-Decimal::ZERO), "0");
        assert_eq!(price_to_wire(dec!(1670.10), 4).as_deref(), Ok("1670.1"));
        assert_eq!(size_to_wire(dec!(0.01470), 4).as_deref(), Ok("0.0147"));
        // sz 1.001 with szDecimals 3 is fine, 1.0001 is not (the docs' lot example).
        assert_eq!(size_to_wire(dec!(1.001), 3).as_deref(), Ok("1.001"));
        assert!(size_to_wire(dec!(1.0001), 3).is_err());
    }

    #[test]
    fn rounding_goes_where_it_is_told() {
        // 5 significant figures first: 1234.56 → 1234.5 / 1234.6.
        assert_eq!(round_price(dec!(1234.56), 0, Rounding::Down), Ok(dec!(1234.5)));
        assert_eq!(round_price(dec!(1234.56), 0, Rounding::Up), Ok(dec!(1234.6)));
        assert_eq!(round_price(dec!(1234.56), 0, Rounding::Nearest), Ok(dec!(1234.6)));
        // Then 6 − szDecimals decimals: ETH (4) keeps two, BTC (5) one.
        assert_eq!(round_price(dec!(3.14159), 4, Rounding::Down), Ok(dec!(3.14)));
        assert_eq!(round_price(dec!(3.14159), 4, Rounding::Up), Ok(dec!(3.15)));
        assert_eq!(round_price(dec!(98765.4), 5, Rounding::Down), Ok(dec!(98765)));
        assert_eq!(round_price(dec!(98765.4), 5, Rounding::Up), Ok(dec!(98766)));
        // A carry leaves fewer figures: 9.99999 → 10.
        assert_eq!(round_price(dec!(9.99999), 0, Rounding::Up), Ok(dec!(10)));
        // Integers never move.
        assert_eq!(round_price(dec!(123456), 5, Rounding::Down), Ok(dec!(123456)));
        // Below one, the leading zeros do not count: 0.00123456 → 0.0012345 with szDecimals 0
        // would be 7 decimals, more than 6, so 0.001234 / 0.001235.
        assert_eq!(round_price(dec!(0.00123456), 0, Rounding::Down), Ok(dec!(0.001234)));
        assert_eq!(round_price(dec!(0.00123456), 0, Rounding::Up), Ok(dec!(0.001235)));
        assert_eq!(
            round_price(dec!(0.0000001), 0, Rounding::Down),
            Err(WireError::RoundsToZero { what: "price", value: dec!(0.0000001), rounding: Rounding::Down })
        );
        assert_eq!(round_price(dec!(0.0000001), 0, Rounding::Up), Ok(dec!(0.000001)));

        assert_eq!(round_size(dec!(0.01479), 4, Rounding::Down), Ok(dec!(0.0147)));
        assert_eq!(round_size(dec!(0.01471), 4, Rounding::Up), Ok(dec!(0.0148)));
        assert_eq!(round_size(dec!(2.5), 0, Rounding::Nearest), Ok(dec!(3)));
        assert!(matches!(round_size(dec!(0.4), 0, Rounding::Down), Err(WireError::RoundsToZero { .. })));
    }

    #[test]
    fn minimum_notional_is_ten_dollars_with_a_reason() {
        assert_eq!(check_min_notional(dec!(100), dec!(0.1)), Ok(dec!(10.0)));
        let refused = check_min_notional(dec!(1891.4), dec!(0.005)).unwrap_err();
        assert_eq!(
            refused,
            WireError::BelowMinimumNotional { price: dec!(1891.4), size: dec!(0.005), notional: dec!(9.457) }
        );
        assert_eq!(
            refused.to_string(),
            "order value $9.457 (price 1891.4 × size 0.005) is below Hyperliquid's minimum of $10"
        );
    }

    #[test]
    fn cloids_are_0x_and_32_lowercase_hex_digits() {
        // The Python SDK's signing test uses this cloid.
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(cloid_to_wire(&Cloid(one)), "0x00000000000000000000000000000001");
        assert_eq!(parse_cloid("0x00000000000000000000000000000001"), Ok(Cloid(one)));
        // The docs' example, and an uppercase spelling of it, both read; we write lowercase.
        let example = parse_cloid("0x1234567890abcdef1234567890abcdef").unwrap();
        assert_eq!(parse_cloid("0x1234567890ABCDEF1234567890ABCDEF"), Ok(example));
        assert_eq!(cloid_to_wire(&example), "0x1234567890abcdef1234567890abcdef");
        // The journal's own form is the same 32 digits without the prefix.
        assert_eq!(cloid_to_wire(&example), format!("0x{example}"));
        let derived = Cloid::derive("trader", 42, 0);
        assert_eq!(parse_cloid(&cloid_to_wire(&derived)), Ok(derived));

        for (text, reason) in [
            ("1234567890abcdef1234567890abcdef", "no 0x prefix"),
            ("0x1234", "not 32 hex digits (16 bytes)"),
            ("0x1234567890abcdef1234567890abcdef00", "not 32 hex digits (16 bytes)"),
            ("0x1234567890abcdef1234567890abcdeg", "not hex"),
        ] {
            assert_eq!(parse_cloid(text), Err(WireError::InvalidCloid { text: text.to_owned(), reason }));
        }
    }
}

#[cfg(test)]
mod property_tests {
    use super::*;
    use proptest::prelude::*;

    /// The documented rules, read off the decimal *string* rather than the mantissa, so the
    /// oracle does not share the implementation's arithmetic: an integer is fine; otherwise
    /// at most 5 significant digits and at most `6 − szDecimals` decimals.
    fn oracle_price_ok(text: &str, sz_decimals: u32) -> bool {
        let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            return true;
        }
        let all_digits = format!("{integer}{fraction}");
        let significant = all_digits.trim_start_matches('0').len();
        significant <= 5 && fraction.len() as i64 <= 6 - i64::from(sz_decimals)
    }

    fn oracle_size_ok(text: &str, sz_decimals: u32) -> bool {
        let fraction = text.split_once('.').map_or("", |(_, f)| f).trim_end_matches('0');
        fraction.len() <= sz_decimals as usize
    }

    /// Positive decimals with up to 9 digits and up to 10 decimals: plenty of valid and
    /// invalid prices of every magnitude from 1e-10 to 1e9.
    fn positive_decimal() -> impl Strategy<Value = Decimal> {
        (1u64..1_000_000_000, 0u32..=10).prop_map(|(mantissa, scale)| Decimal::new(mantissa as i64, scale))
    }

    proptest! {
        #[test]
        fn prop_check_price_agrees_with_the_documented_rules(price in positive_decimal(), sz_decimals in 0u32..=7) {
            prop_assert_eq!(check_price(price, sz_decimals).is_ok(), oracle_price_ok(&price.to_string(), sz_decimals));
        }

        #[test]
        fn prop_price_wire_strings_are_canonical(price in positive_decimal(), sz_decimals in 0u32..=7) {
            if let Ok(text) = price_to_wire(price, sz_decimals) {
                prop_assert!(!text.contains('e') && !text.starts_with('-'));
                prop_assert!(!(text.contains('.') && (text.ends_with('0') || text.ends_with('.'))), "{}", text);
                prop_assert_eq!(text.parse::<Decimal>().unwrap(), price);
            }
        }

        #[test]
        fn prop_round_price_is_valid_directed_and_closest(
            price in positive_decimal(),
            sz_decimals in 0u32..=7,
        ) {
            let down = round_price(price, sz_decimals, Rounding::Down);
            let up = round_price(price, sz_decimals, Rounding::Up).unwrap();
            let nearest = round_price(price, sz_decimals, Rounding::Nearest);
            prop_assert!(oracle_price_ok(&up.to_string(), sz_decimals));
            prop_assert!(up >= price);
            match down {
                Ok(down) => {
                    prop_assert!(oracle_price_ok(&down.to_string(), sz_decimals));
                    prop_assert!(down <= price && down > Decimal::ZERO);
                    let nearest = nearest.unwrap();
                    prop_assert!(nearest == down || nearest == up);
                    prop_assert!((nearest - price).abs() <= (price - down).min(up - price));
                    // Closest: the two directions meet when the price is valid, and otherwise
                    // are one step apart at the decimals they share.
                    if check_price(price, sz_decimals).is_ok() {
                        prop_assert_eq!(down, price.normalize());
                        prop_assert_eq!(up, price.normalize());
                    } else {
                        let step = Decimal::new(1, down.scale().max(up.scale()));
                        prop_assert_eq!(up - down, step, "{} → {} / {}", price, down, up);
                    }
                }
                Err(WireError::RoundsToZero { .. }) => {
                    // Only below one: the allowed decimals run out (szDecimals 6 and up keep none).
                    prop_assert!(price < Decimal::ONE);
                    // Nearest goes up or to nothing.
                    prop_assert!(matches!(nearest, Ok(n) if n == up) || nearest.is_err());
                }
                Err(other) => prop_assert!(false, "unexpected {}", other),
            }
        }

        #[test]
        fn prop_round_size_is_valid_and_directed(size in positive_decimal(), sz_decimals in 0u32..=6) {
            if let Ok(down) = round_size(size, sz_decimals, Rounding::Down) {
                prop_assert!(oracle_size_ok(&down.to_string(), sz_decimals));
                prop_assert!(down <= size);
                prop_assert!(size - down < Decimal::new(1, sz_decimals));
            }
            let up = round_size(size, sz_decimals, Rounding::Up).unwrap();
            prop_assert!(oracle_size_ok(&up.to_string(), sz_decimals));
            prop_assert!(up >= size && up - size < Decimal::new(1, sz_decimals));
            prop_assert_eq!(check_size(size, sz_decimals).is_ok(), oracle_size_ok(&size.to_string(), sz_decimals));
        }

        #[test]
        fn prop_min_notional_refuses_exactly_below_ten(price in positive_decimal(), size in positive_decimal()) {
            let notional = price * size;
            prop_assert_eq!(check_min_notional(price, size).is_ok(), notional >= Decimal::TEN);
        }
    }
}
