//! Rebuilding a local journal from its mirror: every record of `qf.journal.<id>`, in
//! order, checked (position, chain link, hash) before it is appended; the new journal
//! re-chains to the same hashes, so its head equals the original's at the last seq mirrored.

use std::path::Path;

use anyhow::{bail, Context as _};
use async_nats::jetstream::consumer::pull;
use futures_util::StreamExt as _;
use journal::{codec::RawRecord, Durability, Envelope, Hash, Journal};

use crate::mirror::{self, SEQ_HEADER};

/// Records appended per batch.
const BATCH: usize = 4096;

/// What a restore wrote.
pub struct Restored {
    pub records: u64,
    pub head: Hash,
}

/// Writes the mirrored journal `journal_id` into a new journal at `to`.
pub async fn restore(url: &str, journal_id: &str, to: &Path) -> anyhow::Result<Restored> {
    mirror::check_id(journal_id)?;
    let js = crate::connect(url).await?;
    let stream = mirror::journals(&js).await?;
    let subject = mirror::subject(journal_id);
    // Where the mirror ends now: records appended to it later are not waited for.
    let last = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => message.sequence,
        Err(e) if e.kind() == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            bail!("{url} holds no journal {journal_id:?}")
        }
        Err(e) => return Err(e).context("cannot read the journals stream"),
    };
    let mut messages = stream
        .create_consumer(pull::OrderedConfig { filter_subject: subject.clone(), ..Default::default() })
        .await
        .context("cannot read the journals stream")?
        .messages()
        .await
        .context("cannot read the journals stream")?;
    let mut target =
        Journal::create(to, Durability::None).with_context(|| format!("cannot create the journal {}", to.display()))?;
    let mut chain = Chain { next: 0, head: Hash::ZERO, batch: Vec::with_capacity(BATCH) };
    while let Some(message) = messages.next().await {
        let message = message.context("reading the journals stream")?;
        let stream_seq = message.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
        let seq = message.headers.as_ref().and_then(|h| h.get(SEQ_HEADER)).and_then(|v| v.as_str().parse::<u64>().ok());
        let seq = seq.with_context(|| format!("message {stream_seq} has no {SEQ_HEADER} header"))?;
        chain.take(seq, &message.payload)?;
        if chain.batch.len() >= BATCH {
            chain.flush(&mut target)?;
        }
        if stream_seq >= last {
            break;
        }
    }
    chain.flush(&mut target)?;
    target.sync()?;
    Ok(Restored { records: chain.next, head: chain.head })
}

/// The records checked so far, and those waiting to be appended.
struct Chain {
    next: u64,
    head: Hash,
    batch: Vec<Envelope>,
}

impl Chain {
    fn take(&mut self, seq: u64, bytes: &[u8]) -> anyhow::Result<()> {
        let raw = RawRecord::split(bytes).map_err(|e| anyhow::anyhow!("record {seq}: {e}"))?;
        if raw.seq != seq {
            bail!("the message of record {seq} holds record {}", raw.seq);
        }
        if seq < self.next {
            // Shipped again after a failure: the stream keeps both copies.
            return Ok(());
        }
        if seq > self.next {
            bail!("records {}..{} are missing from the mirror", self.next, seq - 1);
        }
        if raw.prev_hash != self.head {
            bail!("record {seq}: chain broken (its prev_hash is not the hash of record {})", seq.wrapping_sub(1));
        }
        if !raw.hash_matches() {
            bail!("record {seq}: hash mismatch (the mirrored bytes were altered)");
        }
        self.batch.push(raw.decode().map_err(|e| anyhow::anyhow!("record {seq}: {e}"))?);
        self.head = raw.hash;
        self.next = seq + 1;
        Ok(())
    }

    fn flush(&mut self, target: &mut Journal) -> anyhow::Result<()> {
        let Some(last) = self.batch.last() else { return Ok(()) };
        let (seq, hash) = (last.seq, last.hash);
        let appended = target.append_batch(self.batch.iter().map(|e| (e.time_ms, e.trader.as_str(), &e.event)))?;
        self.batch.clear();
        if appended.last().map(|a| (a.seq, a.hash)) != Some((seq, hash)) {
            bail!("record {seq} re-chains to a different hash in the restored journal");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use journal::{codec::encode_event_record, Event};

    use super::*;

    /// Records 0..n of clock ticks, chained.
    fn records(n: u64) -> Vec<Vec<u8>> {
        let mut prev = Hash::ZERO;
        (0..n)
            .map(|seq| {
                let (hash, bytes) = encode_event_record(seq, &prev, 1_000 + seq as i64, "", &Event::ClockTicked);
                prev = hash;
                bytes
            })
            .collect()
    }

    fn chain() -> Chain {
        Chain { next: 0, head: Hash::ZERO, batch: Vec::new() }
    }

    #[test]
    fn copies_shipped_twice_are_taken_once() {
        let r = records(3);
        let mut c = chain();
        for (seq, bytes) in [(0, &r[0]), (1, &r[1]), (0, &r[0]), (1, &r[1]), (2, &r[2])] {
            c.take(seq, bytes).unwrap();
        }
        assert_eq!(c.next, 3);
        assert_eq!(c.batch.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(c.head, c.batch[2].hash);
    }

    #[test]
    fn a_gap_a_changed_byte_or_a_misnumbered_message_is_refused() {
        let r = records(3);
        let mut c = chain();
        c.take(0, &r[0]).unwrap();
        assert!(c.take(2, &r[2]).unwrap_err().to_string().contains("missing"));
        assert!(c.take(2, &r[1]).unwrap_err().to_string().contains("holds record 1"));
        let mut altered = r[1].clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(c.take(1, &altered).is_err());
        // Record 1 of another chain does not link to this record 0.
        let (_, other) = encode_event_record(1, &Hash([7; 32]), 0, "", &Event::ClockTicked);
        assert!(c.take(1, &other).unwrap_err().to_string().contains("chain broken"));
        c.take(1, &r[1]).unwrap();
    }
}
