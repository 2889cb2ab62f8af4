//! Journals mirrored off the machine: every durable record, as its exact bytes, on the
//! stream `QF_JOURNALS`, subject `qf.journal.<journal id>`.
//!
//! A record's message carries its seq in the header `Qf-Seq` and the id
//! `<journal id>.<seq>.<short hash>` (`Nats-Msg-Id`), so a record shipped twice within the
//! duplicate window is stored once; the mirror never relies on that alone: after any
//! failure it asks the stream for the last record it holds and goes on from there, which
//! also covers a server that lost acknowledged messages in a crash. Restore reads the
//! subject in order and skips what it already has.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use async_nats::jetstream::{self, message::PublishMessage, stream};
use journal::{codec, Envelope};

pub const JOURNALS_STREAM: &str = "QF_JOURNALS";
/// The header holding a record's seq.
pub const SEQ_HEADER: &str = "Qf-Seq";
/// Records in flight before the mirror waits for their acknowledgements (the client allows
/// 5000 before it holds publishes back).
const WINDOW: usize = 1024;

pub fn subject(journal_id: &str) -> String {
    format!("qf.journal.{journal_id}")
}

/// A journal id names a subject token: letters, digits, `-` and `_` only.
pub fn check_id(journal_id: &str) -> anyhow::Result<()> {
    if journal_id.is_empty() || !journal_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("{journal_id:?} cannot be a journal id on NATS: use letters, digits, - and _ (pass --journal-id)");
    }
    Ok(())
}

/// The record's bytes as the journal stores them (`seq ‖ prev_hash ‖ hash ‖ body`); an
/// error when they do not hash to the record's hash (a body of an older schema, which
/// re-encodes differently: such a journal cannot be mirrored record for record).
pub fn record_bytes(env: &Envelope) -> anyhow::Result<Vec<u8>> {
    let (hash, bytes) = codec::encode_event_record(env.seq, &env.prev_hash, env.time_ms, &env.trader, &env.event);
    if hash != env.hash {
        bail!("record {} does not re-encode to its hash (an older schema?): it cannot be mirrored", env.seq);
    }
    Ok(bytes)
}

/// The stream of mirrored journals, created if absent.
pub async fn journals(js: &jetstream::Context) -> anyhow::Result<stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: JOURNALS_STREAM.to_owned(),
        subjects: vec!["qf.journal.>".to_owned()],
        ..Default::default()
    })
    .await
    .context("cannot open the journals stream (is JetStream enabled: nats-server -js?)")
}

/// One journal's mirror.
pub struct Mirror {
    js: jetstream::Context,
    stream: stream::Stream,
    id: String,
    subject: String,
    /// The seq of the next record to ship.
    next: u64,
}

impl Mirror {
    /// Connects (failing at once when the server is down) and learns how far the stream is.
    pub async fn connect(url: &str, journal_id: &str) -> anyhow::Result<Mirror> {
        check_id(journal_id)?;
        let js = crate::connect(url).await?;
        let stream = journals(&js).await?;
        let mut mirror = Mirror { js, stream, id: journal_id.to_owned(), subject: subject(journal_id), next: 0 };
        mirror.next = mirror.held().await?;
        Ok(mirror)
    }

    /// The seq of the next record to ship: every record before it is on the stream.
    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many records the stream holds for this journal (its last seq plus one).
    async fn held(&self) -> anyhow::Result<u64> {
        match self.stream.get_last_raw_message_by_subject(&self.subject).await {
            Ok(message) => {
                let seq = message.headers.get(SEQ_HEADER).and_then(|v| v.as_str().parse::<u64>().ok());
                Ok(seq.context("a mirrored record has no Qf-Seq header")? + 1)
            }
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(e).context("cannot ask the journals stream how far it is"),
        }
    }

    /// Ships `records` (consecutive, from `self.next()`; earlier ones are skipped),
    /// waiting for the stream to store each window of them. On an error the caller calls
    /// [`Mirror::resync`] and ships again from `next()`.
    pub async fn ship(&mut self, records: &[(u64, Vec<u8>, journal::Hash)]) -> anyhow::Result<()> {
        for window in records.chunks(WINDOW) {
            let mut acks = Vec::with_capacity(window.len());
            for (seq, bytes, hash) in window {
                if *seq < self.next {
                    continue;
                }
                let publish = PublishMessage::build()
                    .payload(bytes.clone().into())
                    .message_id(format!("{}.{seq}.{}", self.id, hash.short()))
                    .header(SEQ_HEADER, seq.to_string().as_str());
                acks.push((*seq, self.js.send_publish(self.subject.clone(), publish).await?));
            }
            for (seq, ack) in acks {
                ack.await.with_context(|| format!("record {seq} was not stored"))?;
                self.next = seq + 1;
            }
        }
        Ok(())
    }

    /// After a failure: where the stream really is (it may have lost what it acknowledged).
    pub async fn resync(&mut self) -> anyhow::Result<()> {
        self.next = self.held().await?;
        Ok(())
    }
}

/// Ships every record of `records` (read from a local journal), riding out a server that
/// goes away: after each failure it waits, asks the stream where it is and goes on.
/// Gives up when nothing got through for `patience`. `shipped` is told the next seq after
/// each window.
pub async fn catch_up(
    mirror: &mut Mirror,
    records: &[(u64, Vec<u8>, journal::Hash)],
    patience: Duration,
    shipped: &mut dyn FnMut(u64),
) -> anyhow::Result<()> {
    let end = records.last().map_or(0, |r| r.0 + 1);
    let mut last_progress = Instant::now();
    while mirror.next() < end {
        let from = records.partition_point(|r| r.0 < mirror.next());
        let before = mirror.next();
        let result = mirror.ship(&records[from..(from + WINDOW * 4).min(records.len())]).await;
        if mirror.next() > before {
            last_progress = Instant::now();
            shipped(mirror.next());
        }
        if let Err(e) = result {
            if last_progress.elapsed() > patience {
                return Err(e.context(format!(
                    "the mirror is {} records behind and got nothing through for {}s",
                    end - mirror.next(),
                    patience.as_secs()
                )));
            }
            tracing::warn!("mirror: {e:#}; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = mirror.resync().await {
                tracing::warn!("mirror: {e:#}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_id_is_one_subject_token() {
        for good in ["paper", "run-1", "a_b_9"] {
            check_id(good).unwrap();
        }
        for bad in ["", "a.b", "a*", ">", "a b", "dir/x"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
