//! The blake3 hash chain.
//!
//! A record's hash covers the previous record's hash, its own sequence number and
//! the canonical bytes of its body, under a domain tag, so a flipped byte, a
//! deleted record, a reordered pair or a record written at the wrong key all
//! break the chain at the first record they touch.

use std::{fmt, sync::OnceLock};

/// The domain tag of record hashes; a new codec version gets a new tag.
const RECORD_DOMAIN: &str = "quantfold 2026 journal record v1";
/// The domain tag of state digests.
const STATE_DOMAIN: &str = "quantfold 2026 ledger state v1";
/// The domain tag of content hashes (strategy code, prompts).
const CONTENT_DOMAIN: &str = "quantfold 2026 content v1";

/// A 32-byte blake3 hash, shown as 64 hex characters.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// Parses 64 hex characters.
    pub fn parse(text: &str) -> Option<Hash> {
        decode_hex::<32>(text).map(Hash)
    }

    /// The first 8 bytes in hex, for tables.
    pub fn short(&self) -> String {
        encode_hex(&self.0[..8])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_hex(&self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

/// The hash of a record: the chain link over `prev`, `seq` and the body bytes.
///
/// Keyed blake3 with a key derived once from the domain tag: the same domain
/// separation as `new_derive_key`, without re-deriving the key per record.
pub fn record(prev: &Hash, seq: u64, body: &[u8]) -> Hash {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| blake3::derive_key(RECORD_DOMAIN, b""));
    let mut hasher = blake3::Hasher::new_keyed(key);
    // The same bytes in one `update` when they fit on the stack (a kline's do): three small
    // updates cost the hash-check thread of a `replay verify` 6% more instructions.
    const SMALL: usize = 256;
    if body.len() <= SMALL - 40 {
        let mut bytes = [0u8; SMALL];
        bytes[..32].copy_from_slice(&prev.0);
        bytes[32..40].copy_from_slice(&seq.to_be_bytes());
        bytes[40..40 + body.len()].copy_from_slice(body);
        hasher.update(&bytes[..40 + body.len()]);
    } else {
        hasher.update(&prev.0);
        hasher.update(&seq.to_be_bytes());
        hasher.update(body);
    }
    Hash(*hasher.finalize().as_bytes())
}

/// The digest of an encoded ledger state.
pub fn state(encoded: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new_derive_key(STATE_DOMAIN);
    hasher.update(encoded);
    Hash(*hasher.finalize().as_bytes())
}

/// The content hash of a text stored once per hash (strategy source, prompt).
pub fn content(text: &str) -> Hash {
    let mut hasher = blake3::Hasher::new_derive_key(CONTENT_DOMAIN);
    hasher.update(text.as_bytes());
    Hash(*hasher.finalize().as_bytes())
}

/// Lowercase hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Exactly `N` bytes from `2 * N` hex characters (either case), or `None`.
pub fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Serde for fixed-size byte ids: hex text in JSON, raw bytes in the binary codec.
macro_rules! hex_serde {
    ($type:ident, $len:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serde::Serialize::serialize(&self.0, serializer)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                    let hex = text.strip_prefix("0x").unwrap_or(&text);
                    $crate::hash::decode_hex::<$len>(hex)
                        .map($type)
                        .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not {} hex characters", 2 * $len)))
                } else {
                    <[u8; $len] as serde::Deserialize>::deserialize(deserializer).map($type)
                }
            }
        }
    };
}
pub(crate) use hex_serde;

hex_serde!(Hash, 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(encode_hex(&bytes), "0001abff");
        assert_eq!(decode_hex::<4>("0001ABff"), Some(bytes));
        assert_eq!(decode_hex::<4>("0001abf"), None);
        assert_eq!(decode_hex::<4>("0001abfg"), None);
    }

    #[test]
    fn record_hash_depends_on_every_part() {
        let base = record(&Hash::ZERO, 1, b"body");
        assert_ne!(base, record(&Hash([1; 32]), 1, b"body"));
        assert_ne!(base, record(&Hash::ZERO, 2, b"body"));
        assert_ne!(base, record(&Hash::ZERO, 1, b"bodY"));
        assert_eq!(base, record(&Hash::ZERO, 1, b"body"));
    }
}
