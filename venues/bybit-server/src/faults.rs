//! Fault injection: the spec (`name=value,...`) and its seeded draws.
//!
//! Each fault kind draws from its own ChaCha stream of the one seed, so turning one fault on
//! does not change when another fires: a seed and the order of requests reproduce a run.
//!
//! | name | value | effect |
//! |---|---|---|
//! | `drop_ws` | probability | per pushed message, the socket is closed abruptly instead (no close frame) |
//! | `lose_response` | probability | an order create/cancel is carried out, its HTTP response never comes |
//! | `http_5xx` | probability | a REST request is answered 502 or 503 and does nothing |
//! | `late_ack` | probability | a create's WS messages go out first, its REST answer ~200 ms later |
//! | `dup_ws` | probability | a private message is sent twice |
//! | `late_fills` | probability | per bar with fills, its private messages go out ~150 ms after the bar itself |
//! | `skew_ms` | integer ms | the auth clock (and server time) is that far off the wall clock |

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

/// The faults to inject; all zero by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    pub drop_ws: f64,
    pub lose_response: f64,
    pub http_5xx: f64,
    pub late_ack: f64,
    pub dup_ws: f64,
    pub late_fills: f64,
    pub skew_ms: i64,
}

/// A fault spec that does not parse; the message names the bad item.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FaultSpecError {
    #[error("fault item {0:?} is not name=value")]
    NotNameValue(String),
    #[error("unknown fault {0:?} (known: drop_ws, lose_response, http_5xx, late_ack, dup_ws, late_fills, skew_ms)")]
    UnknownName(String),
    #[error("fault item {0:?}: the probability must be a number from 0 to 1")]
    BadProbability(String),
    #[error("fault item {0:?}: skew_ms must be a whole number of milliseconds")]
    BadSkew(String),
}

impl Faults {
    /// Parses `drop_ws=0.01,skew_ms=3000` (spaces around items allowed; empty items ignored).
    ///
    /// # Errors
    /// The first item that is not `known_name=valid_value`.
    pub fn parse(spec: &str) -> Result<Faults, FaultSpecError> {
        let mut faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').ok_or_else(|| FaultSpecError::NotNameValue(item.to_owned()))?;
            let (name, value) = (name.trim(), value.trim());
            let probability = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| FaultSpecError::BadProbability(item.to_owned()))
            };
            match name {
                "drop_ws" => faults.drop_ws = probability()?,
                "lose_response" => faults.lose_response = probability()?,
                "http_5xx" => faults.http_5xx = probability()?,
                "late_ack" => faults.late_ack = probability()?,
                "dup_ws" => faults.dup_ws = probability()?,
                "late_fills" => faults.late_fills = probability()?,
                "skew_ms" => faults.skew_ms = value.parse().map_err(|_| FaultSpecError::BadSkew(item.to_owned()))?,
                _ => return Err(FaultSpecError::UnknownName(name.to_owned())),
            }
        }
        Ok(faults)
    }
}

/// A fault kind that is drawn (skew is a constant, not a draw).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    DropWs,
    LoseResponse,
    Http5xx,
    LateAck,
    DupWs,
    LateFills,
}

impl Fault {
    const ALL: [Fault; 6] =
        [Fault::DropWs, Fault::LoseResponse, Fault::Http5xx, Fault::LateAck, Fault::DupWs, Fault::LateFills];
}

/// The seeded draws of every fault kind.
#[derive(Debug)]
pub struct Dice {
    faults: Faults,
    streams: Vec<ChaCha8Rng>,
}

impl Dice {
    pub fn new(faults: Faults, seed: u64) -> Dice {
        let streams = Fault::ALL
            .iter()
            .map(|&kind| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(kind as u64);
                rng
            })
            .collect();
        Dice { faults, streams }
    }

    fn probability(&self, kind: Fault) -> f64 {
        match kind {
            Fault::DropWs => self.faults.drop_ws,
            Fault::LoseResponse => self.faults.lose_response,
            Fault::Http5xx => self.faults.http_5xx,
            Fault::LateAck => self.faults.late_ack,
            Fault::DupWs => self.faults.dup_ws,
            Fault::LateFills => self.faults.late_fills,
        }
    }

    /// Whether `kind` fires now. A fault that is off draws nothing, so it costs nothing.
    pub fn roll(&mut self, kind: Fault) -> bool {
        let p = self.probability(kind);
        if p <= 0.0 {
            return false;
        }
        self.streams[kind as usize].random_bool(p)
    }

    /// A fair coin from `kind`'s stream (e.g. 502 or 503).
    pub fn coin(&mut self, kind: Fault) -> bool {
        self.streams[kind as usize].random_bool(0.5)
    }

    pub fn skew_ms(&self) -> i64 {
        self.faults.skew_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_names_bad_items() {
        let faults = Faults::parse(
            "drop_ws=0.01, lose_response=0.05,http_5xx=0.02,late_ack=0.1,dup_ws=0.5,late_fills=0.25,skew_ms=-3000",
        )
        .unwrap();
        assert_eq!(
            faults,
            Faults {
                drop_ws: 0.01,
                lose_response: 0.05,
                http_5xx: 0.02,
                late_ack: 0.1,
                dup_ws: 0.5,
                late_fills: 0.25,
                skew_ms: -3000
            }
        );
        let cases = [
            ("drop_ws", FaultSpecError::NotNameValue("drop_ws".into())),
            ("drop=0.1", FaultSpecError::UnknownName("drop".into())),
            ("dup_ws=1.5", FaultSpecError::BadProbability("dup_ws=1.5".into())),
            ("late_ack=x", FaultSpecError::BadProbability("late_ack=x".into())),
            ("skew_ms=1.5", FaultSpecError::BadSkew("skew_ms=1.5".into())),
        ];
        for (spec, expected) in cases {
            assert_eq!(Faults::parse(spec), Err(expected), "{spec}");
        }
        assert_eq!(Faults::parse(""), Ok(Faults::default()));
    }

    #[test]
    fn a_seed_reproduces_the_draws_and_streams_are_independent() {
        let faults = Faults { drop_ws: 0.5, dup_ws: 0.5, ..Faults::default() };
        let draws = |faults: &Faults, kind| {
            let mut dice = Dice::new(faults.clone(), 7);
            (0..64).map(|_| dice.roll(kind)).collect::<Vec<_>>()
        };
        assert_eq!(draws(&faults, Fault::DropWs), draws(&faults, Fault::DropWs));
        let only_drop = Faults { dup_ws: 0.0, ..faults.clone() };
        assert_eq!(draws(&faults, Fault::DropWs), draws(&only_drop, Fault::DropWs));
        assert!(draws(&faults, Fault::DropWs).contains(&true));
        assert!(!draws(&Faults::default(), Fault::DropWs).contains(&true));
    }
}
