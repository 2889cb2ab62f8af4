//! Direct decoding of the bodies most journals are made of: klines.
//!
//! A backtest journal is nearly all `KlineReceived` records. Decoding one through serde
//! walks each of its five decimals as a 16-element tuple, byte by byte through a visitor;
//! reading those bytes straight from the body is several times cheaper. The bytes are
//! the same (this is no new format): bincode's standard configuration, varint integers,
//! a string as its varint length and bytes, an enum as its varint variant index, a
//! `bool` as one byte 0 or 1, a decimal as rust_decimal's 16-byte form (see
//! [`crate::money::dec`]).
//!
//! This decoder only ever answers what the serde decoder would: it accepts a subset of
//! what serde accepts and gives the same value, and declines (`None`) anything else, even
//! bytes that serde would accept (a variant it does not handle, an integer form it does
//! not expect), which then go through serde as before. A property test holds it to that.

use rust_decimal::Decimal;

use super::RawRecord;
use crate::event::{Envelope, Event, Kline};

/// The variant index of `Event::KlineReceived` (pinned by a test against the encoder).
const KLINE_RECEIVED_INDEX: u8 = 0;
/// Bodies longer than this go through serde: a kline body is far shorter, and below this
/// no string can claim more than serde's decode limit allows.
const BODY_MAX_BYTES: usize = 1 << 16;

/// `(time_ms, trader, event)` of a body this decoder handles; `None` for any other.
pub(super) fn decode_body(body: &[u8]) -> Option<(i64, String, Event)> {
    let (time_ms, trader, kline) = read(body)?;
    Some((time_ms, trader.to_owned(), Event::KlineReceived(kline)))
}

/// The envelope of a record whose body this decoder handles, built in one place rather
/// than from [`decode_body`]'s tuple (one copy of the event fewer per record).
pub(super) fn decode_record(raw: &RawRecord<'_>) -> Option<Envelope> {
    let (time_ms, trader, kline) = read(raw.body)?;
    Some(Envelope {
        seq: raw.seq,
        time_ms,
        trader: trader.to_owned(),
        event: Event::KlineReceived(kline),
        prev_hash: raw.prev_hash,
        hash: raw.hash,
    })
}

#[inline(always)]
fn read(body: &[u8]) -> Option<(i64, &str, Kline)> {
    if body.len() > BODY_MAX_BYTES {
        return None;
    }
    let mut bytes = Bytes(body);
    let time_ms = bytes.i64()?;
    let trader = bytes.str()?;
    if bytes.byte()? != KLINE_RECEIVED_INDEX {
        return None;
    }
    let kline = Kline {
        symbol: bytes.str()?.to_owned(),
        interval_ms: bytes.i64()?,
        open_time_ms: bytes.i64()?,
        open: bytes.decimal()?,
        high: bytes.decimal()?,
        low: bytes.decimal()?,
        close: bytes.decimal()?,
        volume: bytes.decimal()?,
        closed: bytes.bool()?,
    };
    // Trailing bytes are serde's error to report.
    if !bytes.0.is_empty() {
        return None;
    }
    Some((time_ms, trader, kline))
}

/// The rest of a body, read from the front.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// A varint `u64` in every form bincode reads one: a byte up to 250, or the marker
    /// 251, 252 or 253 and a little-endian u16, u32 or u64.
    fn u64(&mut self) -> Option<u64> {
        match self.byte()? {
            small @ 0..=250 => Some(u64::from(small)),
            251 => Some(u64::from(u16::from_le_bytes(self.take()?))),
            252 => Some(u64::from(u32::from_le_bytes(self.take()?))),
            253 => Some(u64::from_le_bytes(self.take()?)),
            _ => None,
        }
    }

    /// A zigzag varint `i64`, as bincode reads one.
    fn i64(&mut self) -> Option<i64> {
        let n = self.u64()?;
        Some(if n % 2 == 0 { (n / 2) as i64 } else { !(n / 2) as i64 })
    }

    /// A string: its varint length, then that many bytes of UTF-8.
    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.u64()?).ok()?;
        let text = self.0.get(..len)?;
        self.0 = &self.0[len..];
        std::str::from_utf8(text).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// rust_decimal's 16-byte form, with the checks of `money::dec`.
    fn decimal(&mut self) -> Option<Decimal> {
        let bytes = self.take::<16>()?;
        if bytes[2] > 28 || bytes[0] != 0 || bytes[1] != 0 || bytes[3] & 0x7f != 0 {
            return None;
        }
        Some(Decimal::deserialize(bytes))
    }
}

#[cfg(test)]
mod tests {
    use proptest::{collection::vec, prelude::*};

    use super::*;
    use crate::{
        codec::{decode_value, encode_body},
        testkit::arb_item,
    };

    fn kline(symbol: &str, close: Decimal) -> Event {
        Event::KlineReceived(Kline {
            symbol: symbol.into(),
            interval_ms: 60_000,
            open_time_ms: 1_640_995_200_000,
            open: Decimal::new(4_710_012, 2),
            high: Decimal::new(-1, 28),
            low: Decimal::MAX,
            close,
            volume: Decimal::new(15, 1),
            closed: true,
        })
    }

    /// What serde answers for the body, as the canonical bytes it re-encodes to.
    fn by_serde(body: &[u8]) -> Option<Vec<u8>> {
        let (time_ms, trader, event) = decode_value::<(i64, String, Event)>(body).ok()?;
        Some(encode_body(time_ms, &trader, &event))
    }

    fn direct(body: &[u8]) -> Option<Vec<u8>> {
        let (time_ms, trader, event) = decode_body(body)?;
        Some(encode_body(time_ms, &trader, &event))
    }

    #[test]
    fn the_kline_variant_index_is_pinned() {
        let body = encode_body(0, "", &kline("X", Decimal::ONE));
        assert_eq!(body[2], KLINE_RECEIVED_INDEX, "time 0, empty trader, then the variant index");
    }

    #[test]
    fn klines_decode_as_serde_decodes_them_and_nothing_else_is_taken() {
        for (time_ms, trader, event) in [
            (1_640_995_260_000, "", kline("BTCUSDT", Decimal::new(4_710_099, 2))),
            (-5, "alice", kline("", Decimal::new(-150, 2))),
            (i64::MIN, "é", kline("ÉTH", Decimal::MIN)),
            (i64::MAX, "", kline("x".repeat(300).as_str(), Decimal::ZERO)),
        ] {
            let body = encode_body(time_ms, trader, &event);
            let got = decode_body(&body).expect("a kline body");
            assert_eq!((got.0, got.1.as_str(), &got.2), (time_ms, trader, &event));
            assert_eq!(direct(&body), by_serde(&body));
        }
        assert_eq!(decode_body(&encode_body(0, "", &Event::ClockTicked)), None, "not a kline: serde's");
        let mut trailing = encode_body(0, "", &kline("X", Decimal::ONE));
        trailing.push(0);
        assert_eq!(decode_body(&trailing), None, "trailing bytes: serde's error");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn prop_any_body_decodes_as_serde_decodes_it_or_is_declined((time_ms, trader, event) in arb_item()) {
            let body = encode_body(time_ms, &trader, &event);
            if let Some(got) = direct(&body) {
                prop_assert_eq!(Some(got), by_serde(&body));
            }
            if matches!(event, Event::KlineReceived(_)) {
                prop_assert!(decode_body(&body).is_some(), "every encoded kline is taken");
            }
        }

        /// Changed bytes: whatever the direct decoder accepts, serde accepts as the same.
        #[test]
        fn prop_changed_kline_bodies_are_never_taken_differently(
            time_ms in any::<i64>(),
            close in any::<i64>(),
            changes in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut body = encode_body(time_ms, "", &kline("BTCUSDT", Decimal::new(close, 3)));
            for (at, byte) in changes {
                let at = at.index(body.len());
                body[at] = byte;
            }
            if truncate {
                body.truncate(cut.index(body.len()));
            }
            if let Some(got) = direct(&body) {
                prop_assert_eq!(Some(got), by_serde(&body));
            }
        }
    }
}
