//! The canonical codec: how records, the header and snapshots are laid out in bytes.
//!
//! A record value is `seq (u64 BE) ‖ prev_hash (32) ‖ hash (32) ‖ body`, where the
//! body is bincode 2.0.1 with `config::standard()` (varint integers, little endian)
//! over `(time_ms, trader, event)`. The hash covers `prev_hash ‖ seq ‖ body`, so it
//! is checked from the stored bytes without re-encoding, and a record written
//! under the wrong key is caught by its embedded sequence number.
//!
//! Versions: the codec version names this byte layout and the bincode config;
//! the schema version names the [`Event`] enum. Both are written in the journal
//! header. A journal with a newer version than this build knows is refused; an
//! older schema is decoded by the matching legacy module (none yet: v1 is the first).

use crate::{
    event::{Envelope, Event},
    hash::{self, Hash},
};

/// The byte layout and bincode configuration of records.
pub const CODEC_VERSION: u16 = 1;
/// The version of the event schema this build writes.
pub const SCHEMA_VERSION: u16 = 1;
/// The oldest schema version this build still reads.
pub const SCHEMA_VERSION_MIN: u16 = 1;
/// Identifies a quantfold journal's header.
pub const MAGIC: &[u8; 8] = b"QFJOURNL";

const HEADER_LEN: usize = 8 + 32 + 32;
const CONFIG: bincode::config::Configuration = bincode::config::standard();
/// Decoding refuses to allocate more than this in total: a corrupt length prefix
/// becomes an error instead of a huge allocation that aborts the process. (The
/// limit does not change the byte layout; it only bounds what a decode may claim.)
const DECODE_LIMIT_BYTES: usize = 1 << 30;
const DECODE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT_BYTES>,
> = CONFIG.with_limit::<DECODE_LIMIT_BYTES>();

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("record is {0} bytes, shorter than its {HEADER_LEN}-byte header")]
    Truncated(usize),
    #[error("payload does not decode: {0}")]
    Payload(String),
    #[error("{0} trailing bytes after the payload")]
    Trailing(usize),
}

/// The journal header: what wrote the journal and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub codec_version: u16,
    pub schema_version: u16,
}

impl Header {
    pub const CURRENT: Header = Header { codec_version: CODEC_VERSION, schema_version: SCHEMA_VERSION };

    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.codec_version.to_be_bytes());
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out
    }

    /// `None` when the bytes are not a quantfold header at all.
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        if bytes.len() != 12 || &bytes[..8] != MAGIC {
            return None;
        }
        Some(Header {
            codec_version: u16::from_be_bytes([bytes[8], bytes[9]]),
            schema_version: u16::from_be_bytes([bytes[10], bytes[11]]),
        })
    }
}

/// The canonical body bytes of an event: what the hash covers.
pub fn encode_body(time_ms: i64, trader: &str, event: &Event) -> Vec<u8> {
    // Encoding into a Vec cannot fail for these types: every field is a plain
    // value, string, sequence or fixed array.
    bincode::serde::encode_to_vec((time_ms, trader, event), CONFIG).expect("invariant: events always encode")
}

/// The stored value of a record.
pub fn encode_record(seq: u64, prev_hash: &Hash, body: &[u8]) -> (Hash, Vec<u8>) {
    let hash = hash::record(prev_hash, seq, body);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&prev_hash.0);
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(body);
    (hash, out)
}

/// The stored value of a record for an event, encoded straight into one buffer
/// (the append hot path: one allocation, no copy of the body).
pub fn encode_event_record(seq: u64, prev_hash: &Hash, time_ms: i64, trader: &str, event: &Event) -> (Hash, Vec<u8>) {
    let mut out = Vec::with_capacity(HEADER_LEN + 192);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&prev_hash.0);
    out.extend_from_slice(&[0; 32]);
    bincode::serde::encode_into_std_write((time_ms, trader, event), &mut out, CONFIG)
        .expect("invariant: events always encode into a Vec");
    let hash = hash::record(prev_hash, seq, &out[HEADER_LEN..]);
    out[40..72].copy_from_slice(&hash.0);
    (hash, out)
}

/// A stored record split into its parts, body not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub seq: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub body: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// Splits stored bytes.
    ///
    /// # Errors
    /// [`CodecError::Truncated`] when the bytes are shorter than the record header.
    pub fn split(bytes: &'a [u8]) -> Result<RawRecord<'a>, CodecError> {
        if bytes.len() < HEADER_LEN {
            return Err(CodecError::Truncated(bytes.len()));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[..8]);
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&bytes[8..40]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[40..72]);
        Ok(RawRecord { seq: u64::from_be_bytes(seq), prev_hash: Hash(prev), hash: Hash(hash), body: &bytes[72..] })
    }

    /// Whether the stored hash matches the one recomputed from the bytes.
    pub fn hash_matches(&self) -> bool {
        hash::record(&self.prev_hash, self.seq, self.body) == self.hash
    }

    /// Decodes the body into an envelope.
    ///
    /// # Errors
    /// The body is not a valid event of this schema, or has trailing bytes.
    pub fn decode(&self) -> Result<Envelope, CodecError> {
        let ((time_ms, trader, event), used): ((i64, String, Event), usize) =
            bincode::serde::decode_from_slice(self.body, DECODE_CONFIG)
                .map_err(|e| CodecError::Payload(e.to_string()))?;
        if used != self.body.len() {
            return Err(CodecError::Trailing(self.body.len() - used));
        }
        Ok(Envelope { seq: self.seq, time_ms, trader, event, prev_hash: self.prev_hash, hash: self.hash })
    }
}

/// Encodes any serde value with the journal's bincode configuration (snapshots).
pub fn encode_value<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, CONFIG).expect("invariant: ledger state always encodes")
}

/// Decodes what [`encode_value`] wrote.
///
/// # Errors
/// The bytes are not a `T`, or have trailing bytes.
pub fn decode_value<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, DECODE_CONFIG).map_err(|e| CodecError::Payload(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_other_bytes() {
        let bytes = Header::CURRENT.encode();
        assert_eq!(bytes.len(), 12, "magic (8) + codec (2) + schema (2)");
        assert_eq!(Header::decode(&bytes), Some(Header::CURRENT));
        let newer = Header { codec_version: 7, schema_version: 300 };
        assert_eq!(Header::decode(&newer.encode()), Some(newer));
        assert_eq!(Header::decode(b"QFJOURNL\0\x01"), None, "too short");
        assert_eq!(Header::decode(b"NOTAJRNL\0\x01\0\x01"), None, "wrong magic");
    }

    #[test]
    fn json_floats_come_back_bit_for_bit() {
        // serde_json's default float parser reads this one back one ULP off; the
        // `float_roundtrip` feature is what keeps snapshots' digests stable.
        let value = 1.947700395895162e-169_f64;
        let event =
            Event::StrategyStateChanged { changes: vec![("x".into(), crate::event::Json(serde_json::json!([value])))] };
        let back: Event = decode_value(&encode_value(&event)).expect("decodes");
        let Event::StrategyStateChanged { changes } = back else { unreachable!("same variant") };
        assert_eq!(changes[0].1 .0[0].as_f64().map(f64::to_bits), Some(value.to_bits()));
    }

    #[test]
    fn every_nan_encodes_as_the_one_nan() {
        // JSON Lines can only say "NaN", so the binary form must not keep a NaN's
        // sign or payload either, or an export re-imported would hash differently.
        let series = |value| codec_body(Event::SeriesRecorded { name: "x".into(), value });
        let canonical = series(f64::NAN);
        assert_eq!(series(-f64::NAN), canonical);
        assert_eq!(series(f64::from_bits(0x7ff8_0000_0000_0001)), canonical);
        assert_ne!(series(f64::INFINITY), canonical);
    }

    fn codec_body(event: Event) -> Vec<u8> {
        encode_body(0, "", &event)
    }

    #[test]
    fn a_length_prefix_beyond_the_input_is_an_error_not_an_abort() {
        // time_ms 0, then a trader string claiming 2^61 bytes (varint marker 253 + u64).
        let mut body = vec![0u8, 253];
        body.extend_from_slice(&(1u64 << 61).to_le_bytes());
        let (_, bytes) = encode_record(0, &Hash::ZERO, &body);
        let raw = RawRecord::split(&bytes).expect("long enough");
        assert!(matches!(raw.decode(), Err(CodecError::Payload(_))));
    }

    #[test]
    fn short_and_padded_records_are_refused() {
        assert_eq!(RawRecord::split(&[0; 71]).err(), Some(CodecError::Truncated(71)));
        let body = encode_body(1, "alice", &Event::ClockTicked);
        let mut padded = body.clone();
        padded.extend_from_slice(&[0, 0]);
        let (_, bytes) = encode_record(3, &Hash::ZERO, &padded);
        let raw = RawRecord::split(&bytes).expect("long enough");
        assert!(raw.hash_matches(), "the hash covers the padded body as stored");
        assert_eq!(raw.decode().err(), Some(CodecError::Trailing(2)));
    }
}

#[cfg(test)]
mod property_tests {
    use proptest::{collection::vec, prelude::*};

    use super::*;
    use crate::{
        state::State,
        testkit::{arb_envelope_stream, arb_event, arb_hash, arb_item},
    };

    fn has_nan(event: &Event) -> bool {
        matches!(event, Event::SeriesRecorded { value, .. } if value.is_nan())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Bytes are compared, not values: `PartialEq` says `1.50 == 1.5` and
        /// `NaN != NaN`, while the encoding keeps the scale and the float bits.
        #[test]
        fn prop_records_round_trip_through_the_binary_codec(
            (time_ms, trader, event) in arb_item(),
            seq in any::<u64>(),
            prev in arb_hash(),
        ) {
            let body = encode_body(time_ms, &trader, &event);
            let (hash, bytes) = encode_record(seq, &prev, &body);
            prop_assert_eq!(hash, hash::record(&prev, seq, &body));
            // The append hot path must write exactly the same bytes.
            prop_assert_eq!(encode_event_record(seq, &prev, time_ms, &trader, &event), (hash, bytes.clone()));
            let raw = RawRecord::split(&bytes).expect("a whole record splits");
            prop_assert_eq!((raw.seq, raw.prev_hash, raw.hash, raw.body), (seq, prev, hash, body.as_slice()));
            prop_assert!(raw.hash_matches());
            let env = raw.decode().expect("a record we encoded decodes");
            prop_assert_eq!((env.seq, env.time_ms, env.trader.as_str(), env.prev_hash, env.hash), (seq, time_ms, trader.as_str(), prev, hash));
            prop_assert_eq!(encode_body(env.time_ms, &env.trader, &env.event), body);
            if !has_nan(&event) {
                prop_assert_eq!(&env.event, &event);
            }
        }

        #[test]
        fn prop_events_round_trip_through_encode_value(event in arb_event()) {
            let bytes = encode_value(&event);
            let back: Event = decode_value(&bytes).expect("decodes");
            prop_assert_eq!(encode_value(&back), bytes);
            prop_assert_eq!(back.kind(), event.kind());
        }

        /// Snapshots are `encode_value` of a `State`: decoding must give back the
        /// same state, or `verify` would report an intact snapshot as corrupt.
        #[test]
        fn prop_folded_states_round_trip_through_encode_value(stream in arb_envelope_stream(0..40)) {
            let state = State::fold(&stream);
            let bytes = encode_value(&state);
            let back: State = decode_value(&bytes).expect("decodes");
            prop_assert_eq!(back.digest(), state.digest());
            prop_assert_eq!(&back, &state);
        }

        #[test]
        fn prop_any_single_byte_change_is_caught_or_decodes_without_panic(
            (time_ms, trader, event) in arb_item(),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let body = encode_body(time_ms, &trader, &event);
            let (_, mut bytes) = encode_record(0, &Hash::ZERO, &body);
            let at = position.index(bytes.len());
            bytes[at] ^= flip;
            let raw = RawRecord::split(&bytes).expect("same length");
            // A changed seq byte is caught by the store's key check, anything else by the hash.
            prop_assert!(raw.seq != 0 || !raw.hash_matches(), "byte {} changed undetected", at);
            let _ = raw.decode();
        }

        #[test]
        fn prop_decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..400)) {
            if let Ok(raw) = RawRecord::split(&bytes) {
                let _ = raw.decode();
            }
            let _ = decode_value::<State>(&bytes);
            let _ = decode_value::<Event>(&bytes);
        }
    }
}
