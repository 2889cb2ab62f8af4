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
    bincode::serde::encode_to_vec((time_ms, trader, event), CONFIG)
        .expect("invariant: events always encode")
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
            bincode::serde::decode_from_slice(self.body, CONFIG).map_err(|e| CodecError::Payload(e.to_string()))?;
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
    let (value, used) = bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|e| CodecError::Payload(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(value)
}
