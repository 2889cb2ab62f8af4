//! The seeded "model": it reads a few numbers out of the prompt and decides by a fixed rule,
//! answering in nof0's decision schema (VENUES.md §6.3).
//!
//! # Reading the prompt
//! The prompt is every message's text (and Anthropic's `system`), joined. A value is found by
//! its key, matched case-insensitively as a whole identifier (`price` does not match inside
//! `current_price`), followed by any of `" ' : =` and spaces, then a number or a JSON array of
//! numbers (nof0's snapshots list oldest → newest, so an array gives its **last** element). The
//! last occurrence in the prompt wins: newer context is appended after older.
//!
//! | value | keys, first found wins |
//! |---|---|
//! | price | `current_price`, `last_price`, `mark_price`, `price`, `close` |
//! | trend line | `ema20`, `ema_20`, `ema`, `sma20`, `sma` |
//! | RSI | `rsi14`, `rsi_14`, `rsi7`, `rsi_7`, `rsi` (50 when absent) |
//! | equity | `account_value`, `equity`, `available_cash` (10 000 when absent) |
//! | symbol | the string after `symbol`, else the last all-caps word ending in `USDT`, else `BTC` |
//!
//! A price, trend line or equity that is not positive or not below 10^12 counts as absent.
//!
//! # The rule
//! - No price or no trend line: `hold`.
//! - Price above the trend line by more than 0.1 % and RSI below 70: `buy_to_enter`.
//! - Price below it by more than 0.1 % and RSI above 30: `sell_to_enter`.
//! - Otherwise `hold`.
//!
//! An entry uses leverage 5, 20 % of equity as `position_size_usd`, a stop 2 % away and a
//! target 6 % away (reward:risk 3, nof0's minimum), `risk_usd` = size × 2 %. `confidence` is
//! 60 + 10 per 1 % of distance from the trend line (capped at 90), plus 0–9 drawn from the seed
//! and the prompt: the same prompt and seed give the same answer, another seed may differ by a
//! few points. A hold has leverage, size, prices and risk 0 and confidence 50 + the draw.
//!
//! # Tokens
//! Usage counts are deterministic, not a real tokenizer: a text's tokens are, over its
//! whitespace-separated words, the sum of ⌈chars / 4⌉. A prompt counts its texts plus 3 per
//! message (the role and framing), as OpenAI's cookbook estimate does.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// The tokens of `text` by the heuristic above.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().map(|word| (word.chars().count() as u64).div_ceil(4)).sum()
}

/// Per message, for its role and framing.
pub const TOKENS_PER_MESSAGE: u64 = 3;

/// What the model read in the prompt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub symbol: String,
    pub price: Option<f64>,
    pub trend: Option<f64>,
    pub rsi: Option<f64>,
    pub equity: Option<f64>,
}

const PRICE_KEYS: [&str; 5] = ["current_price", "last_price", "mark_price", "price", "close"];
const TREND_KEYS: [&str; 5] = ["ema20", "ema_20", "ema", "sma20", "sma"];
const RSI_KEYS: [&str; 5] = ["rsi14", "rsi_14", "rsi7", "rsi_7", "rsi"];
const EQUITY_KEYS: [&str; 3] = ["account_value", "equity", "available_cash"];
const RSI_DEFAULT: f64 = 50.0;
const EQUITY_DEFAULT: f64 = 10_000.0;

fn is_identifier(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Byte offsets just past every whole-identifier occurrence of `key` in `lower`.
fn key_ends<'a>(lower: &'a str, key: &'a str) -> impl Iterator<Item = usize> + 'a {
    let bytes = lower.as_bytes();
    lower.match_indices(key).filter_map(move |(start, _)| {
        let end = start + key.len();
        let before_ok = start == 0 || !is_identifier(bytes[start - 1]);
        let after_ok = end == bytes.len() || !is_identifier(bytes[end]);
        (before_ok && after_ok).then_some(end)
    })
}

fn skip_separators(text: &str) -> &str {
    text.trim_start_matches(|c: char| c == '"' || c == '\'' || c == ':' || c == '=' || c.is_whitespace())
}

/// The number at the start of `text` (a plain decimal, sign and exponent allowed).
fn leading_number(text: &str) -> Option<f64> {
    let end = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .map_or(text.len(), |(i, _)| i);
    text[..end].parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The value after one occurrence of a key: a number, or an array's last number.
fn value_at(rest: &str) -> Option<f64> {
    let rest = skip_separators(rest);
    if let Some(array) = rest.strip_prefix('[') {
        let inner = &array[..array.find(']')?];
        return inner.rsplit(',').find_map(|item| leading_number(skip_separators(item.trim())));
    }
    leading_number(rest)
}

/// The value of the first key that has one, at its last occurrence.
fn find_value(lower: &str, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|key| key_ends(lower, key).filter_map(|end| value_at(&lower[end..])).last())
}

fn find_symbol(text: &str, lower: &str) -> String {
    let quoted = key_ends(lower, "symbol")
        .filter_map(|end| {
            let rest = skip_separators(&text[end..]);
            let word: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            (!word.is_empty()).then_some(word)
        })
        .last();
    quoted
        .or_else(|| {
            text.rsplit(|c: char| !c.is_ascii_alphanumeric())
                .find(|w| {
                    w.len() > 4
                        && w.ends_with("USDT")
                        && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                })
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "BTC".to_owned())
}

/// Prices and equity above this are taken as misread: the rule's arithmetic on them could
/// leave the finite range, and JSON has no infinity.
const AMOUNT_MAX: f64 = 1e12;

fn plausible(amount: f64) -> bool {
    amount > 0.0 && amount < AMOUNT_MAX
}

/// Reads the prompt (see the module docs).
pub fn read(prompt: &str) -> Reading {
    let lower = prompt.to_ascii_lowercase();
    Reading {
        symbol: find_symbol(prompt, &lower),
        price: find_value(&lower, &PRICE_KEYS).filter(|p| plausible(*p)),
        trend: find_value(&lower, &TREND_KEYS).filter(|t| plausible(*t)),
        rsi: find_value(&lower, &RSI_KEYS),
        equity: find_value(&lower, &EQUITY_KEYS).filter(|e| plausible(*e)),
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A draw of 0–9 from the seed and the prompt, so the same pair always gives the same answer.
fn draw(prompt: &str, seed: u64) -> u64 {
    let digest = blake3::hash(prompt.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_bytes());
    for (byte, seed_byte) in key.iter_mut().zip(seed.to_le_bytes()) {
        *byte ^= seed_byte;
    }
    ChaCha8Rng::from_seed(key).random_range(0..10)
}

/// The decision for `prompt` under `seed`, as a JSON object in nof0's schema.
pub fn decide(prompt: &str, seed: u64) -> Value {
    let reading = read(prompt);
    let noise = draw(prompt, seed) as f64;
    let rsi = reading.rsi.unwrap_or(RSI_DEFAULT);
    let equity = reading.equity.unwrap_or(EQUITY_DEFAULT);
    let (Some(price), Some(trend)) = (reading.price, reading.trend) else {
        return hold(
            &reading.symbol,
            50.0 + noise,
            "no price or trend line in the prompt: nothing to act on".to_owned(),
        );
    };
    let distance = (price - trend) / trend;
    let long = distance > 0.001 && rsi < 70.0;
    let short = distance < -0.001 && rsi > 30.0;
    if !long && !short {
        let why = format!("price {price} near trend {trend} or RSI {rsi} stretched: waiting");
        return hold(&reading.symbol, 50.0 + noise, why);
    }
    let confidence = (60.0 + (distance.abs() * 1000.0).min(30.0) + noise).round().min(100.0);
    let size = round2(equity * 0.2);
    let (signal, stop, target, side) = if long {
        ("buy_to_enter", price * 0.98, price * 1.06, "above")
    } else {
        ("sell_to_enter", price * 1.02, price * 0.94, "below")
    };
    let (stop, target) = (round2(stop), round2(target));
    json!({
        "signal": signal,
        "symbol": reading.symbol,
        "leverage": 5,
        "position_size_usd": size,
        "entry_price": round2(price),
        "stop_loss": stop,
        "take_profit": target,
        "risk_usd": round2(size * 0.02),
        "confidence": confidence as u64,
        "invalidation_condition": format!("price closes beyond the stop at {stop}"),
        "reasoning": format!("price {price} is {side} the trend line {trend} by {:.2}% with RSI {rsi}", distance.abs() * 100.0),
    })
}

fn hold(symbol: &str, confidence: f64, reasoning: String) -> Value {
    json!({
        "signal": "hold",
        "symbol": symbol,
        "leverage": 0,
        "position_size_usd": 0.0,
        "entry_price": 0.0,
        "stop_loss": 0.0,
        "take_profit": 0.0,
        "risk_usd": 0.0,
        "confidence": confidence.round() as u64,
        "invalidation_condition": "none: no position",
        "reasoning": reasoning,
    })
}

/// A decision that breaks the schema in four ways at once: an unknown signal, confidence over
/// 100, `reasoning` missing, and a key the schema does not allow.
pub fn violate(decision: &Value) -> Value {
    let mut broken = decision.clone();
    if let Some(object) = broken.as_object_mut() {
        object.insert("signal".into(), json!("long"));
        object.insert("confidence".into(), json!(150));
        object.remove("reasoning");
        object.insert("mood".into(), json!("bullish"));
    }
    broken
}

/// The first half of `text` (on a char boundary): what an answer cut by a token limit looks like.
pub fn cut(text: &str) -> String {
    let half = text.chars().count() / 2;
    text.chars().take(half.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_arrays_and_symbols() {
        struct Case {
            prompt: &'static str,
            expected: Reading,
        }
        let cases = [
            Case {
                prompt: r#"{"symbol": "ETHUSDT", "current_price": 2000.5, "ema20": [1900, 1950.25], "rsi14": 55}"#,
                expected: Reading {
                    symbol: "ETHUSDT".into(),
                    price: Some(2000.5),
                    trend: Some(1950.25),
                    rsi: Some(55.0),
                    equity: None,
                },
            },
            Case {
                prompt: "BTCUSDT price=100 ema=101 (old)\nprice = 98, EMA: 100, RSI 40, account_value 5000",
                expected: Reading {
                    symbol: "BTCUSDT".into(),
                    price: Some(98.0),
                    trend: Some(100.0),
                    rsi: Some(40.0),
                    equity: Some(5000.0),
                },
            },
            Case {
                prompt: "nothing here; spriceless emanate",
                expected: Reading { symbol: "BTC".into(), ..Reading::default() },
            },
        ];
        for case in cases {
            assert_eq!(read(case.prompt), case.expected, "{}", case.prompt);
        }
    }

    #[test]
    fn decides_by_the_rule_and_the_seed_only_moves_confidence() {
        let long = decide("symbol: SOLUSDT price: 110 ema20: 100 rsi: 50", 1);
        assert_eq!(long["signal"], "buy_to_enter");
        assert_eq!(long["stop_loss"], 107.8);
        assert_eq!(long["take_profit"], 116.6);
        assert_eq!(long["position_size_usd"], 2000.0);
        let short = decide("price: 90 ema20: 100 rsi: 50", 1);
        assert_eq!(short["signal"], "sell_to_enter");
        assert_eq!(decide("price: 110 ema20: 100 rsi: 80", 1)["signal"], "hold");
        assert_eq!(decide("no numbers", 1)["signal"], "hold");
        assert_eq!(decide("price: 110 ema20: 100", 1), decide("price: 110 ema20: 100", 1));
        let confidences: Vec<_> =
            (0..20).map(|seed| decide("price: 110 ema20: 100", seed)["confidence"].as_u64()).collect();
        assert!(confidences.iter().all(|c| matches!(c, Some(90..=99))), "{confidences:?}");
        assert!(confidences.windows(2).any(|w| w[0] != w[1]), "the seed moves confidence: {confidences:?}");
    }

    #[test]
    fn misread_amounts_count_as_absent() {
        let reading = read("price: 1e300 ema: -5 equity: 0");
        assert_eq!((reading.price, reading.trend, reading.equity), (None, None, None));
    }

    #[test]
    fn counts_tokens_by_words_of_four_chars() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("a bb ccc dddd"), 4);
        assert_eq!(count_tokens("abcde  fghijklm\n"), 4);
    }
}

#[cfg(test)]
mod property_tests {
    use super::*;
    use proptest::prelude::*;

    /// Prompt text made of the keys the model looks for, numbers and separators, so the
    /// generator reaches the parsing paths instead of only missing them.
    fn prompt() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("price".to_owned()),
            Just("current_price".to_owned()),
            Just("ema20".to_owned()),
            Just("rsi".to_owned()),
            Just("equity".to_owned()),
            Just("symbol".to_owned()),
            Just("BTCUSDT".to_owned()),
            any::<f64>().prop_map(|f| f.to_string()),
            "[ :=,\\[\\]\"'-]{1,3}",
            ".{0,6}",
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn prop_every_prompt_gets_a_decision_in_the_schema(prompt in prompt(), seed in any::<u64>()) {
            let decision = decide(&prompt, seed);
            prop_assert!(["buy_to_enter", "sell_to_enter", "hold"].contains(&decision["signal"].as_str().unwrap_or("")));
            prop_assert!(decision["confidence"].as_u64().is_some_and(|c| c <= 100));
            for key in ["position_size_usd", "entry_price", "stop_loss", "take_profit", "risk_usd"] {
                prop_assert!(decision[key].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0), "{key}: {decision}");
            }
            prop_assert!(decision["symbol"].as_str().is_some_and(|s| !s.is_empty()));
            prop_assert_eq!(decide(&prompt, seed), decision);
        }
    }
}
