//! Scripted faults: which request (numbered from 1, across both APIs) gets which fault.
//!
//! A spec is a comma-separated list of `FAULT@N` (the Nth request) or `FAULT@N-M` (requests N
//! to M), plus at most one `random:P` item: every request the list does not name gets a fault
//! with probability P, its kind drawn from [`Fault::RANDOM_KINDS`], all from one ChaCha stream
//! of the server's seed (so a seed and the order of requests reproduce a run).
//!
//! | fault | effect (OpenAI / Anthropic) |
//! |---|---|
//! | `malformed_json` | the answer's JSON is cut mid-object: `message.content` / a text block instead of the tool call |
//! | `schema_violation` | valid JSON that breaks the decision schema (unknown signal, confidence 150, a field missing, one extra) |
//! | `refusal` | `message.refusal` set and `content: null` / a text refusal with `stop_reason: "refusal"` |
//! | `length` | the answer cut in half, `finish_reason: "length"` / `stop_reason: "max_tokens"` |
//! | `bad_body` | HTTP 200 whose body is not JSON (cut mid-object) |
//! | `429` | 429 rate limit, no retry headers |
//! | `429:S` | 429 rate limit with `retry-after: ceil(S)` and `retry-after-ms: S×1000` (S may be fractional) |
//! | `quota` | 429 that must not be retried: `insufficient_quota` / `enforced_spend_limit_reached` |
//! | `408`, `409`, `500`, `502`, `503`, `504`, `529` | that status with the provider's error body (529: `overloaded_error`) |
//! | `slow:MS` | the normal answer, MS milliseconds late |
//!
//! Example: `malformed_json@3,schema_violation@5,refusal@7,length@9,429:2@11,500@13,503@14,529@15,slow:5000@17`.

use std::{collections::BTreeMap, fmt};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

/// One fault a request can get.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    MalformedJson,
    SchemaViolation,
    Refusal,
    Length,
    BadBody,
    /// 429; `retry_after_s` sets both retry headers when present.
    RateLimited {
        retry_after_s: Option<f64>,
    },
    /// A 429 saying the quota or spend limit is exhausted: retrying cannot help.
    Quota,
    /// An error status with the provider's body for it.
    Status(u16),
    /// The normal answer, late.
    Slow {
        delay_ms: u64,
    },
}

/// Statuses `Fault::Status` may carry: the ones the official SDKs retry.
const STATUSES: [u16; 7] = [408, 409, 500, 502, 503, 504, 529];

impl Fault {
    /// What `random:P` draws from: one of each kind, with mild retry-after and delay values.
    pub const RANDOM_KINDS: [Fault; 10] = [
        Fault::MalformedJson,
        Fault::SchemaViolation,
        Fault::Refusal,
        Fault::Length,
        Fault::BadBody,
        Fault::RateLimited { retry_after_s: Some(1.0) },
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(529),
        Fault::Slow { delay_ms: 2000 },
    ];

    fn parse(text: &str) -> Option<Fault> {
        let fault = match text {
            "malformed_json" => Fault::MalformedJson,
            "schema_violation" => Fault::SchemaViolation,
            "refusal" => Fault::Refusal,
            "length" => Fault::Length,
            "bad_body" => Fault::BadBody,
            "quota" => Fault::Quota,
            "429" => Fault::RateLimited { retry_after_s: None },
            _ => {
                if let Some(seconds) = text.strip_prefix("429:") {
                    let seconds = seconds.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)?;
                    Fault::RateLimited { retry_after_s: Some(seconds) }
                } else if let Some(ms) = text.strip_prefix("slow:") {
                    Fault::Slow { delay_ms: ms.parse().ok()? }
                } else {
                    let status = text.parse::<u16>().ok().filter(|s| STATUSES.contains(s))?;
                    Fault::Status(status)
                }
            }
        };
        Some(fault)
    }

    /// The HTTP status the fault answers with (200 for faults inside a normal answer).
    pub fn status(&self) -> u16 {
        match self {
            Fault::RateLimited { .. } | Fault::Quota => 429,
            Fault::Status(status) => *status,
            _ => 200,
        }
    }
}

impl fmt::Display for Fault {
    /// The spec's own spelling, so a logged fault can be pasted back into a script.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::MalformedJson => f.write_str("malformed_json"),
            Fault::SchemaViolation => f.write_str("schema_violation"),
            Fault::Refusal => f.write_str("refusal"),
            Fault::Length => f.write_str("length"),
            Fault::BadBody => f.write_str("bad_body"),
            Fault::Quota => f.write_str("quota"),
            Fault::RateLimited { retry_after_s: None } => f.write_str("429"),
            Fault::RateLimited { retry_after_s: Some(s) } => write!(f, "429:{s}"),
            Fault::Status(status) => write!(f, "{status}"),
            Fault::Slow { delay_ms } => write!(f, "slow:{delay_ms}"),
        }
    }
}

/// A spec that does not parse; the message names the bad item.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScriptError {
    #[error("script item {0:?} is not FAULT@N, FAULT@N-M or random:P")]
    NotAnItem(String),
    #[error("script item {0:?}: unknown fault (known: malformed_json, schema_violation, refusal, length, bad_body, 429, 429:S, quota, 408, 409, 500, 502, 503, 504, 529, slow:MS)")]
    UnknownFault(String),
    #[error("script item {0:?}: requests are numbered from 1, and a range must not run backwards")]
    BadRequestNumber(String),
    #[error("script item {0:?}: the probability must be a number from 0 to 1")]
    BadProbability(String),
    #[error("script item {0:?}: request {1} already has a fault")]
    Twice(String, u64),
}

/// The most requests one `@N-M` item may name: a limit on the table a spec can build.
const RANGE_MAX: u64 = 100_000;

/// A parsed spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    /// Request number → its fault.
    pub by_request: BTreeMap<u64, Fault>,
    /// The `random:P` probability (0 when absent).
    pub random: f64,
}

impl Script {
    /// Parses a spec (spaces around items allowed; empty items ignored).
    ///
    /// # Errors
    /// The first item that does not parse, or that names a request already scripted.
    pub fn parse(spec: &str) -> Result<Script, ScriptError> {
        let mut script = Script::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Some(p) = item.strip_prefix("random:") {
                script.random = p
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| ScriptError::BadProbability(item.to_owned()))?;
                continue;
            }
            let (fault, requests) = item.rsplit_once('@').ok_or_else(|| ScriptError::NotAnItem(item.to_owned()))?;
            let fault = Fault::parse(fault.trim()).ok_or_else(|| ScriptError::UnknownFault(item.to_owned()))?;
            let bad_number = || ScriptError::BadRequestNumber(item.to_owned());
            let (first, last) = match requests.trim().split_once('-') {
                Some((a, b)) => (
                    a.trim().parse::<u64>().map_err(|_| bad_number())?,
                    b.trim().parse::<u64>().map_err(|_| bad_number())?,
                ),
                None => {
                    let n = requests.trim().parse::<u64>().map_err(|_| bad_number())?;
                    (n, n)
                }
            };
            if first == 0 || last < first || last - first >= RANGE_MAX {
                return Err(bad_number());
            }
            for n in first..=last {
                if script.by_request.insert(n, fault).is_some() {
                    return Err(ScriptError::Twice(item.to_owned(), n));
                }
            }
        }
        Ok(script)
    }
}

/// The script and the seeded stream of its random mode.
#[derive(Debug)]
pub struct Dice {
    script: Script,
    rng: ChaCha8Rng,
}

impl Dice {
    pub fn new(script: Script, seed: u64) -> Dice {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Stream 1 is the faults'; the model draws from its own per-prompt streams.
        rng.set_stream(1);
        Dice { script, rng }
    }

    /// The fault of request `n`. The random mode draws only for requests the script does not
    /// name, and only when it is on, so adding `random:P` leaves scripted requests alone.
    pub fn fault_of(&mut self, n: u64) -> Option<Fault> {
        if let Some(fault) = self.script.by_request.get(&n) {
            return Some(*fault);
        }
        if self.script.random <= 0.0 || !self.rng.random_bool(self.script.random) {
            return None;
        }
        Some(Fault::RANDOM_KINDS[self.rng.random_range(0..Fault::RANDOM_KINDS.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_and_names_bad_items() {
        let script = Script::parse(
            "malformed_json@3,schema_violation@5,refusal@7,length@9,429:2@11,500@13,503@14,529@15,slow:5000@17",
        )
        .unwrap();
        assert_eq!(script.by_request.len(), 9);
        assert_eq!(script.by_request[&3], Fault::MalformedJson);
        assert_eq!(script.by_request[&11], Fault::RateLimited { retry_after_s: Some(2.0) });
        assert_eq!(script.by_request[&15], Fault::Status(529));
        assert_eq!(script.by_request[&17], Fault::Slow { delay_ms: 5000 });
        let ranged = Script::parse(" 500@1-2 , quota@4, 429:0.05@5, random:0.5").unwrap();
        assert_eq!(ranged.by_request.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4, 5]);
        assert_eq!(ranged.random, 0.5);
        let cases = [
            ("500", ScriptError::NotAnItem("500".into())),
            ("teapot@1", ScriptError::UnknownFault("teapot@1".into())),
            ("418@1", ScriptError::UnknownFault("418@1".into())),
            ("429:x@1", ScriptError::UnknownFault("429:x@1".into())),
            ("500@0", ScriptError::BadRequestNumber("500@0".into())),
            ("500@3-2", ScriptError::BadRequestNumber("500@3-2".into())),
            ("500@1-999999999", ScriptError::BadRequestNumber("500@1-999999999".into())),
            ("random:2", ScriptError::BadProbability("random:2".into())),
            ("500@1,503@1", ScriptError::Twice("503@1".into(), 1)),
        ];
        for (spec, expected) in cases {
            assert_eq!(Script::parse(spec), Err(expected), "{spec}");
        }
        assert_eq!(Script::parse(""), Ok(Script::default()));
    }

    #[test]
    fn a_fault_prints_as_its_spec() {
        for text in ["malformed_json", "429", "429:0.05", "quota", "529", "slow:10", "bad_body"] {
            assert_eq!(Fault::parse(text).map(|f| f.to_string()).as_deref(), Some(text));
        }
    }

    #[test]
    fn the_random_mode_is_seeded_and_spares_scripted_requests() {
        let script = Script::parse("refusal@2,random:0.5").unwrap();
        let draws = |seed| {
            let mut dice = Dice::new(script.clone(), seed);
            (1..=64).map(|n| dice.fault_of(n)).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_eq!(draws(7)[1], Some(Fault::Refusal));
        assert!(draws(7).iter().any(Option::is_none) && draws(7).iter().filter(|f| f.is_some()).count() > 2);
        let mut off = Dice::new(Script::default(), 7);
        assert!((1..=64).all(|n| off.fault_of(n).is_none()));
    }
}
