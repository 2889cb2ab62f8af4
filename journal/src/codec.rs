//! The canonical codec: how records, blocks, the header and snapshots are laid out in bytes.
//!
//! A record is `seq (u64 BE) ‖ prev_hash (32) ‖ hash (32) ‖ body`, where the
//! body is bincode 2.0.1 with `config::standard()` (varint integers, little endian)
//! over `(time_ms, trader, event)`. The hash covers `prev_hash ‖ seq ‖ body`, so it
//! is checked from the stored bytes without re-encoding, and a record stored at
//! the wrong position is caught by its embedded sequence number.
//!
//! How records sit in sled values is the [`Layout`]: codec v1 stores one record
//! per value; codec v2 packs consecutive records into a block, each record
//! framed as `len (u32 BE) ‖ record`. The record bytes and hashes are the same in
//! both, so a v1 journal reads, verifies and folds exactly like a v2 one.
//!
//! Versions: the codec version names the layout and the bincode config; the
//! schema version names the [`Event`] enum. Both are written in the journal
//! header. A journal with a newer version than this build knows is refused;
//! codec v1 journals are read and appended to in their own layout; an older
//! schema is decoded by the matching legacy module.
//!
//! Schema 2 added `limits` at the end of [`crate::event::StrategyLoad`]; nothing
//! else changed. A record does not name its schema (and this build appends
//! schema-2 records to a schema-1 journal in place), so a body is decoded by its
//! shape: as schema 2, else as schema 1 ([`schema1`]), which gives a
//! `StrategyLoaded` the limits of schema 1. The two cannot both succeed: a
//! schema-1 `StrategyLoaded` body is a strict prefix of its schema-2 form, too
//! short for schema 2, and a schema-2 body has trailing bytes for schema 1.

mod direct;
mod schema1;

use crate::{
    event::{Envelope, Event},
    hash::{self, Hash},
};

/// The byte layout and bincode configuration of records: v2 packs records into blocks.
pub const CODEC_VERSION: u16 = 2;
/// The oldest codec version this build still reads and appends to (v1: one record per value).
pub const CODEC_VERSION_MIN: u16 = 1;
/// The version of the event schema this build writes (2: `StrategyLoad` carries its limits).
pub const SCHEMA_VERSION: u16 = 2;
/// The oldest schema version this build still reads.
pub const SCHEMA_VERSION_MIN: u16 = 1;
/// Identifies a quantfold journal's header.
pub const MAGIC: &[u8; 8] = b"QFJOURNL";

const HEADER_LEN: usize = 8 + 32 + 32;
/// The length prefix of a record inside a codec v2 block.
const FRAME_LEN_BYTES: usize = 4;
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
    #[error("block framing broken at byte {offset}: {problem}")]
    Framing { offset: usize, problem: String },
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

/// [`encode_body`] into `out`, replacing what it held (a caller comparing many bodies
/// reuses one buffer instead of allocating one per body).
pub fn encode_body_into(out: &mut Vec<u8>, time_ms: i64, trader: &str, event: &Event) {
    out.clear();
    bincode::serde::encode_into_std_write((time_ms, trader, event), out, CONFIG)
        .expect("invariant: events always encode into a Vec");
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
/// (the codec v1 append path: one allocation, no copy of the body).
pub fn encode_event_record(seq: u64, prev_hash: &Hash, time_ms: i64, trader: &str, event: &Event) -> (Hash, Vec<u8>) {
    let mut out = Vec::with_capacity(HEADER_LEN + 192);
    let hash = push_event_record(&mut out, seq, prev_hash, time_ms, trader, event);
    (hash, out)
}

/// Appends the record of an event to `out`, framed for a codec v2 block (the
/// append hot path: encoded in place at the end of the open block).
pub fn push_framed_event_record(
    out: &mut Vec<u8>,
    seq: u64,
    prev_hash: &Hash,
    time_ms: i64,
    trader: &str,
    event: &Event,
) -> Hash {
    let frame = out.len();
    out.extend_from_slice(&[0; FRAME_LEN_BYTES]);
    let hash = push_event_record(out, seq, prev_hash, time_ms, trader, event);
    let len = frame_len(out.len() - frame - FRAME_LEN_BYTES);
    out[frame..frame + FRAME_LEN_BYTES].copy_from_slice(&len);
    hash
}

/// Appends any record's bytes to `out`, framed for a codec v2 block.
pub fn push_frame(out: &mut Vec<u8>, record: &[u8]) {
    out.extend_from_slice(&frame_len(record.len()));
    out.extend_from_slice(record);
}

/// A frame's length prefix. A record longer than 4 GiB cannot come from an
/// event (sled could not store it either), so this is a programming error.
fn frame_len(len: usize) -> [u8; FRAME_LEN_BYTES] {
    u32::try_from(len).expect("invariant: a record is shorter than 4 GiB").to_be_bytes()
}

fn push_event_record(out: &mut Vec<u8>, seq: u64, prev_hash: &Hash, time_ms: i64, trader: &str, event: &Event) -> Hash {
    let start = out.len();
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&prev_hash.0);
    out.extend_from_slice(&[0; 32]);
    bincode::serde::encode_into_std_write((time_ms, trader, event), &mut *out, CONFIG)
        .expect("invariant: events always encode into a Vec");
    let hash = hash::record(prev_hash, seq, &out[start + HEADER_LEN..]);
    out[start + 40..start + 72].copy_from_slice(&hash.0);
    hash
}

/// How records sit in the sled values of the `events` tree; the key of a value
/// is always the seq of its first record (u64 BE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Codec v1: a value is exactly one record.
    Single,
    /// Codec v2: a value is a block of one or more consecutive records, each
    /// framed as `len (u32 BE) ‖ record`, with nothing before, between or after.
    Packed,
}

impl Layout {
    /// The layout a codec version writes; `None` for versions this build does not know.
    pub fn of(codec_version: u16) -> Option<Layout> {
        match codec_version {
            1 => Some(Layout::Single),
            2 => Some(Layout::Packed),
            _ => None,
        }
    }

    /// The records of a stored value, in order; stops after the first framing error.
    pub fn records(self, value: &[u8]) -> BlockRecords<'_> {
        self.records_from(value, 0)
    }

    /// The records of a stored value from the frame at byte `offset` on (a
    /// [`BlockRecords::offset`]); a v1 value has only the record at 0.
    pub fn records_from(self, value: &[u8], offset: usize) -> BlockRecords<'_> {
        let done = self == Layout::Single && offset > 0;
        BlockRecords { layout: self, value, offset, done }
    }
}

/// The records of one stored value (see [`Layout::records`]).
#[derive(Debug, Clone)]
pub struct BlockRecords<'a> {
    layout: Layout,
    value: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> BlockRecords<'a> {
    /// The byte offset of the next record's frame in the value.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn next_frame(&mut self) -> Result<&'a [u8], CodecError> {
        let rest = &self.value[self.offset..];
        let framing = |problem: String| CodecError::Framing { offset: self.offset, problem };
        let Some((len, body)) = rest.split_first_chunk::<FRAME_LEN_BYTES>() else {
            return Err(framing(format!("{} bytes left, too few for a record length", rest.len())));
        };
        let len = u32::from_be_bytes(*len) as usize;
        let Some(record) = body.get(..len) else {
            return Err(framing(format!("a record of {len} bytes overruns the block ({} bytes left)", body.len())));
        };
        self.offset += FRAME_LEN_BYTES + len;
        Ok(record)
    }
}

impl<'a> Iterator for BlockRecords<'a> {
    type Item = Result<&'a [u8], CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.layout {
            // A v1 value is one record, even an empty one (which then fails to split).
            Layout::Single => {
                self.done = true;
                self.offset = self.value.len();
                Ok(self.value)
            }
            Layout::Packed if self.offset == self.value.len() => return None,
            Layout::Packed => self.next_frame(),
        };
        self.done |= item.is_err();
        Some(item)
    }
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
        if let Some(envelope) = direct::decode_record(self) {
            return Ok(envelope);
        }
        let (time_ms, trader, event) = decode_body_through_serde(self.body)?;
        Ok(Envelope { seq: self.seq, time_ms, trader, event, prev_hash: self.prev_hash, hash: self.hash })
    }
}

/// Decodes a record body, `(time_ms, trader, event)`, of this schema or an older one
/// (see the module docs).
///
/// # Errors
/// The body is no event of any schema this build reads; the error is the current schema's.
pub fn decode_body(body: &[u8]) -> Result<(i64, String, Event), CodecError> {
    // Klines, most of a journal, are read directly; anything else goes through serde.
    if let Some(item) = direct::decode_body(body) {
        return Ok(item);
    }
    decode_body_through_serde(body)
}

/// [`decode_body`] for a body the direct decoder declined.
fn decode_body_through_serde(body: &[u8]) -> Result<(i64, String, Event), CodecError> {
    match decode_value::<(i64, String, Event)>(body) {
        Ok(item) => Ok(item),
        Err(current) => schema1::decode_body(body).ok_or(current),
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
    fn blocks_frame_records_and_name_where_framing_breaks() {
        let records: Vec<Vec<u8>> = (0..3u64).map(|seq| encode_record(seq, &Hash::ZERO, b"body").1).collect();
        let mut block = Vec::new();
        for record in &records {
            push_frame(&mut block, record);
        }
        assert_eq!(block.len(), 3 * (4 + 76), "a u32 length before each record, nothing else");
        assert_eq!(&block[..4], &76u32.to_be_bytes());
        let read: Vec<&[u8]> = Layout::Packed.records(&block).collect::<Result<_, _>>().expect("frames");
        assert_eq!(read, records.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(Layout::Packed.records_from(&block, 80).count(), 2, "from the second frame on");
        assert_eq!(Layout::Packed.records(&[]).count(), 0);

        let cut = &block[..block.len() - 1];
        let errors: Vec<_> = Layout::Packed.records(cut).filter_map(Result::err).collect();
        assert_eq!(errors.len(), 1, "the first error ends the block");
        assert!(matches!(&errors[0], CodecError::Framing { offset: 160, .. }), "{errors:?}");
        let short = &block[..82];
        let last = Layout::Packed.records(short).last().expect("something");
        assert!(matches!(last, Err(CodecError::Framing { offset: 80, .. })), "two bytes are too few for a length");

        // Codec v1: the value is the record, whatever its bytes.
        assert_eq!(Layout::Single.records(&block).collect::<Vec<_>>(), [Ok(block.as_slice())]);
        assert_eq!(Layout::Single.records_from(&block, 1).count(), 0);
        assert_eq!((Layout::of(1), Layout::of(2), Layout::of(3)), (Some(Layout::Single), Some(Layout::Packed), None));
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
            // So must the packed append path, inside its frame.
            let mut framed = vec![7u8];
            prop_assert_eq!(push_framed_event_record(&mut framed, seq, &prev, time_ms, &trader, &event), hash);
            let mut expected = vec![7u8];
            push_frame(&mut expected, &bytes);
            prop_assert_eq!(framed, expected);
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
        fn prop_encode_body_into_writes_what_encode_body_returns((time_ms, trader, event) in arb_item()) {
            let mut out = vec![1, 2, 3];
            encode_body_into(&mut out, time_ms, &trader, &event);
            prop_assert_eq!(out, encode_body(time_ms, &trader, &event));
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
            let mut end = 0;
            for record in Layout::Packed.records(&bytes) {
                match record {
                    Ok(record) => end += 4 + record.len(),
                    Err(CodecError::Framing { offset, .. }) => prop_assert_eq!(offset, end),
                    Err(other) => prop_assert!(false, "only framing errors: {other:?}"),
                }
            }
            prop_assert!(end <= bytes.len());
            let _ = decode_value::<State>(&bytes);
            let _ = decode_value::<Event>(&bytes);
        }
    }
}
