//! `live --mirror URL`: the session's durable records copied to NATS JetStream
//! (`scaleout::mirror`), off the engine thread.
//!
//! The engine thread only hands records and the durable point over an unbounded channel
//! (in `Session::forward_tail`, with the served replica and the outbox); a task on the
//! session's runtime ships each record once it is durable. A server that is down — at
//! start or later — costs the engine nothing: the task keeps the records, retries, and
//! catches up when the server returns. At start the session forwards the whole journal,
//! and the task skips what the stream already holds: a mirror that was down while the
//! process was not running catches up from the local journal.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use journal::{Envelope, Hash};
use scaleout::mirror::{self, Mirror};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

enum Note {
    // Boxed: a record is large, the durable point small, and both share the channel.
    Record(Box<Envelope>),
    Durable(u64),
}

/// The engine's side of the mirror.
pub struct LiveMirror {
    tx: UnboundedSender<Note>,
    durable: Option<u64>,
}

impl LiveMirror {
    /// Starts the shipping task for the journal `journal_id` on `runtime`.
    ///
    /// # Errors
    /// The id cannot name a subject.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        url: &str,
        journal_id: &str,
        metrics: Option<Arc<control::Metrics>>,
    ) -> anyhow::Result<LiveMirror> {
        mirror::check_id(journal_id)?;
        let (tx, rx) = unbounded_channel();
        runtime.spawn(ship(url.to_owned(), journal_id.to_owned(), rx, metrics));
        Ok(LiveMirror { tx, durable: None })
    }

    /// A journaled record, in order.
    pub fn record(&self, env: &Envelope) {
        self.tx.send(Note::Record(Box::new(env.clone()))).ok();
    }

    /// The journal's durable point, sent when it moved.
    pub fn durable(&mut self, durable: Option<u64>) {
        if let Some(seq) = durable.filter(|_| durable != self.durable) {
            self.durable = durable;
            self.tx.send(Note::Durable(seq)).ok();
        }
    }
}

/// How long the task waits before trying a server that failed again.
const RETRY: Duration = Duration::from_secs(1);
/// Records shipped per try.
const BATCH: usize = 4096;

async fn ship(url: String, id: String, mut rx: UnboundedReceiver<Note>, metrics: Option<Arc<control::Metrics>>) {
    let mut pending: VecDeque<(u64, Vec<u8>, Hash)> = VecDeque::new();
    let mut durable: Option<u64> = None;
    let mut mirror: Option<Mirror> = None;
    // When to try again without news (after a failure, or with a batch left over).
    let mut quiet_until: Option<Instant> = None;
    let mut failing = false;
    loop {
        // News, or, while something is owed after a failure, the time to try again.
        let note = match quiet_until {
            Some(until) => tokio::select! {
                note = rx.recv() => match note { Some(note) => Some(note), None => return },
                () = tokio::time::sleep_until(until.into()) => None,
            },
            None => match rx.recv().await {
                Some(note) => Some(note),
                None => return,
            },
        };
        for note in note.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match note {
                Note::Record(env) => match mirror::record_bytes(&env) {
                    Ok(bytes) => pending.push_back((env.seq, bytes, env.hash)),
                    Err(e) => {
                        eprintln!("mirror: stopped: {e:#}");
                        return;
                    }
                },
                Note::Durable(seq) => durable = Some(seq),
            }
        }
        let behind = lag(&pending, durable, metrics.as_deref());
        if quiet_until.is_some_and(|until| Instant::now() < until) {
            continue;
        }
        quiet_until = None;
        let connected = match &mut mirror {
            Some(connected) => connected,
            None => match Mirror::connect(&url, &id).await {
                Ok(m) => {
                    eprintln!("mirror: connected to {url}; the stream holds {} records of {id}", m.next());
                    mirror.insert(m)
                }
                Err(e) => {
                    if !failing {
                        eprintln!("mirror: {e:#}; trading goes on, the mirror retries");
                    }
                    failing = true;
                    quiet_until = Some(Instant::now() + RETRY);
                    continue;
                }
            },
        };
        while pending.front().is_some_and(|r| r.0 < connected.next()) {
            pending.pop_front();
        }
        let ready: Vec<(u64, Vec<u8>, Hash)> =
            pending.iter().take_while(|r| durable.is_some_and(|d| r.0 <= d)).take(BATCH).cloned().collect();
        match connected.ship(&ready).await {
            Ok(()) => {
                if failing {
                    eprintln!("mirror: back, through seq {}", connected.next().saturating_sub(1));
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    eprintln!("mirror: {e:#}; {behind} records behind, retrying");
                }
                failing = true;
                quiet_until = Some(Instant::now() + RETRY);
                connected.resync().await.ok();
            }
        }
        while pending.front().is_some_and(|r| r.0 < connected.next()) {
            pending.pop_front();
        }
        lag(&pending, durable, metrics.as_deref());
        // A batch left over: go again without waiting for news.
        if quiet_until.is_none() && pending.front().is_some_and(|r| durable.is_some_and(|d| r.0 <= d)) {
            quiet_until = Some(Instant::now());
        }
    }
}

/// The durable records owed (the pending ones are consecutive), also to `/metrics`.
fn lag(pending: &VecDeque<(u64, Vec<u8>, Hash)>, durable: Option<u64>, metrics: Option<&control::Metrics>) -> u64 {
    let lag = match (pending.front(), durable) {
        (Some(front), Some(d)) => (d + 1).saturating_sub(front.0),
        _ => 0,
    };
    if let Some(metrics) = metrics {
        metrics.shell.mirror_lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
    }
    lag
}
