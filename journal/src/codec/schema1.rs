//! Schema 1, as far as it differs from schema 2: a `StrategyLoaded` without limits.
//!
//! bincode writes an enum variant as its index (a varint `u32`) followed by its
//! fields, so a schema-1 body `(time_ms, trader, StrategyLoaded(load))` has exactly
//! the bytes of the tuple `(time_ms, trader, 6u32, load)`, with `load` in its
//! schema-1 form below. Every other variant is byte for byte the same in both
//! schemas, so only this one needs decoding here.

use serde::Deserialize;

use crate::{
    event::{Event, Json, StrategyLimits, StrategyLoad},
    hash::Hash,
};

/// The index of `Event::StrategyLoaded` (pinned by a test against the encoder).
pub(super) const STRATEGY_LOADED_INDEX: u32 = 6;

/// `StrategyLoad` as schema 1 wrote it: the fields of schema 2 up to `seed`.
#[derive(Deserialize)]
struct StrategyLoadV1 {
    name: String,
    file: String,
    code_hash: Hash,
    source: Option<String>,
    params: Json,
    seed: u64,
}

/// A schema-1 `StrategyLoaded` body as the current event, with the limits of schema 1;
/// `None` when the body is not one.
pub(super) fn decode_body(body: &[u8]) -> Option<(i64, String, Event)> {
    let (time_ms, trader, index, v1) = super::decode_value::<(i64, String, u32, StrategyLoadV1)>(body).ok()?;
    if index != STRATEGY_LOADED_INDEX {
        return None;
    }
    let load = StrategyLoad {
        name: v1.name,
        file: v1.file,
        code_hash: v1.code_hash,
        source: v1.source,
        params: v1.params,
        seed: v1.seed,
        limits: StrategyLimits::SCHEMA_1,
    };
    Some((time_ms, trader, Event::StrategyLoaded(load)))
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::codec::{encode_body, encode_record, encode_value, RawRecord};

    /// What a schema-1 build wrote for a `StrategyLoad`.
    #[derive(Serialize)]
    struct WrittenV1<'a> {
        name: &'a str,
        file: &'a str,
        code_hash: Hash,
        source: Option<&'a str>,
        params: Json,
        seed: u64,
    }

    fn v1_body(time_ms: i64, trader: &str) -> Vec<u8> {
        let load = WrittenV1 {
            name: "sma",
            file: "sma.js",
            code_hash: Hash([3; 32]),
            source: Some("function st_heartbeat() {}"),
            params: Json(serde_json::json!({ "fast": 5 })),
            seed: 42,
        };
        encode_value(&(time_ms, trader, STRATEGY_LOADED_INDEX, load))
    }

    #[test]
    fn a_schema_1_strategy_load_decodes_with_the_limits_of_schema_1() {
        let body = v1_body(7, "alice");
        let (_, bytes) = encode_record(4, &Hash::ZERO, &body);
        let raw = RawRecord::split(&bytes).expect("long enough");
        assert!(raw.hash_matches(), "the stored bytes are what the hash covers");
        let env = raw.decode().expect("a schema-1 record decodes");
        assert_eq!((env.seq, env.time_ms, env.trader.as_str()), (4, 7, "alice"));
        let Event::StrategyLoaded(load) = &env.event else { panic!("not a load: {:?}", env.event) };
        assert_eq!((load.name.as_str(), load.file.as_str(), load.seed), ("sma", "sma.js", 42));
        assert_eq!(load.source.as_deref(), Some("function st_heartbeat() {}"));
        assert_eq!(load.params.0, serde_json::json!({ "fast": 5 }));
        assert_eq!(load.limits, StrategyLimits::SCHEMA_1);
        assert_eq!(
            (load.limits.call_fuel, load.limits.call_timeout_ms, load.limits.memory_limit_bytes),
            (500, 1_000, 64 * 1024 * 1024),
            "schema 1 ran under the defaults of its builds"
        );
        assert_eq!((load.limits.restarts_max, load.limits.restart_reset_after_ms), (3, None));
    }

    #[test]
    fn the_schema_2_body_is_the_schema_1_body_followed_by_the_limits() {
        // Pins the variant index and the field order the legacy decoder relies on.
        let v1 = v1_body(7, "alice");
        let (_, _, event) = decode_body(&v1).expect("decodes");
        let v2 = encode_body(7, "alice", &event);
        assert!(v2.len() > v1.len() && v2.starts_with(&v1), "schema 2 appends the limits");
        assert_eq!(&v2[v1.len()..], encode_value(&StrategyLimits::SCHEMA_1).as_slice());
        // And the current decoder takes a schema-2 body as schema 2 (never as schema 1).
        assert!(decode_body(&v2).is_none(), "trailing bytes for schema 1");
        assert_eq!(crate::codec::decode_body(&v2).expect("schema 2").2, event);
    }

    #[test]
    fn other_variants_and_bad_bodies_are_not_schema_1_loads() {
        assert!(decode_body(&encode_body(1, "a", &Event::ClockTicked)).is_none());
        let restarted = encode_body(1, "a", &Event::StrategyRestarted { attempt: 6 });
        assert!(decode_body(&restarted).is_none());
        let mut cut = v1_body(7, "alice");
        cut.pop();
        assert!(decode_body(&cut).is_none());
        assert!(crate::codec::decode_body(&cut).is_err(), "a cut body decodes in no schema");
    }
}
