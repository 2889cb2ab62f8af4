//! The replicas one server shows: one per journal, behind one lock, with the trader ids the
//! API uses. Built once from closed journals, or fed record by record by a live engine
//! through [`Feed`] (the engine never waits for the API: it only sends on an unbounded
//! channel; a task folds into the replica and holds the write lock for one batch at a time).

use std::{
    path::Path,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use journal::{Durability, Envelope, Journal, StoreError};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::replica::Replica;

/// One journal's replica and its name (the journal directory's last component).
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub name: String,
    pub replica: Replica,
}

/// Everything served.
#[derive(Clone, Debug, Default)]
pub struct Arena {
    pub sources: Vec<Source>,
    /// False until the replicas hold what the journals held when serving began.
    pub ready: bool,
}

impl Arena {
    /// Adds a source, renaming it `NAME-2`, `NAME-3`, … if the name is taken (two journal
    /// directories of the same name, or one given twice), so trader ids stay unambiguous.
    pub fn add(&mut self, mut source: Source) {
        let base = source.name.clone();
        let mut n = 1;
        while self.sources.iter().any(|s| s.name == source.name) {
            n += 1;
            source.name = format!("{base}-{n}");
        }
        self.sources.push(source);
    }

    /// Every trader, in journal order then name order, with unambiguous ids.
    pub fn traders(&self) -> Vec<(String, &str, &Replica)> {
        let mut out = Vec::new();
        for source in &self.sources {
            for name in source.replica.traders.keys() {
                let shared = self.sources.iter().filter(|s| s.replica.traders.contains_key(name)).count() > 1;
                let id = if shared { format!("{}:{name}", source.name) } else { name.clone() };
                out.push((id, name.as_str(), &source.replica));
            }
        }
        out
    }

    /// The trader the API calls `id`.
    pub fn trader(&self, id: &str) -> Option<(String, &str, &Replica)> {
        self.traders().into_iter().find(|(i, _, _)| i == id)
    }
}

/// The arena shared between the server's handlers and whatever feeds it. A plain
/// `std` lock: nobody holds it across an `.await`, and readers only copy out what they show.
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<RwLock<Arena>>);

impl Shared {
    pub fn new(arena: Arena) -> Shared {
        Shared(Arc::new(RwLock::new(arena)))
    }

    /// Reads the arena. A writer that panicked left a whole record folded or not at all
    /// (the fold is total), so a poisoned lock still holds a consistent replica.
    pub fn read(&self) -> RwLockReadGuard<'_, Arena> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Arena> {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Folds a closed journal: every record checked on the way (chain link, hash, density),
/// then the whole-journal verification (snapshots, durable head, segments) for `/api/journal`.
///
/// # Errors
/// The journal is missing, damaged or unreadable.
pub fn load(dir: &Path) -> Result<Source, StoreError> {
    let journal = Journal::open(dir, Durability::None)?;
    let mut replica = Replica::new();
    for record in journal.records(0) {
        replica.apply(&record?);
    }
    replica.head.durable_through = journal.durable_through().or_else(|| replica.head.records.checked_sub(1));
    replica.head.verified = Some(journal::verify::journal(&journal).map(|r| r.state_digest).map_err(|e| e.to_string()));
    let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Source { name, replica })
}

/// What a live engine sends: each record it appended, and how far the journal is durable.
#[derive(Clone, Debug)]
pub enum Fed {
    Record(Box<Envelope>),
    Durable(Option<u64>),
    /// The replica holds the journal as it was when the engine started: ready to serve.
    CaughtUp,
}

/// The engine's end of the feed: sending never blocks and never fails the engine (a closed
/// server only means nobody is watching).
#[derive(Clone, Debug)]
pub struct Feed(UnboundedSender<Fed>);

impl Feed {
    pub fn record(&self, env: &Envelope) {
        let _ = self.0.send(Fed::Record(Box::new(env.clone())));
    }

    pub fn durable(&self, durable_through: Option<u64>) {
        let _ = self.0.send(Fed::Durable(durable_through));
    }

    pub fn caught_up(&self) {
        let _ = self.0.send(Fed::CaughtUp);
    }
}

/// A feed into source `index` of `shared` (created empty if absent), and the task that
/// folds it; run the task on the server's runtime.
pub fn feed(shared: &Shared, name: &str) -> (Feed, impl std::future::Future<Output = ()> + Send + 'static) {
    let index = {
        let mut arena = shared.write();
        arena.add(Source { name: name.to_owned(), replica: Replica::new() });
        arena.sources.len() - 1
    };
    let (tx, rx) = unbounded_channel();
    (Feed(tx), fold_task(shared.clone(), index, rx))
}

async fn fold_task(shared: Shared, index: usize, mut rx: UnboundedReceiver<Fed>) {
    let mut batch = Vec::with_capacity(256);
    // Batches: one lock per burst of records, so readers are not starved by a busy engine.
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut arena = shared.write();
        for fed in batch.drain(..) {
            match fed {
                Fed::Record(env) => {
                    if let Some(source) = arena.sources.get_mut(index) {
                        source.replica.apply(&env);
                    }
                }
                Fed::Durable(d) => {
                    if let Some(source) = arena.sources.get_mut(index) {
                        source.replica.head.durable_through = d;
                    }
                }
                Fed::CaughtUp => arena.ready = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use journal::{
        event::{Kline, TraderStart},
        testkit::chain,
        Event, State,
    };
    use rust_decimal::Decimal;

    use super::*;

    fn records(n: i64) -> Vec<Envelope> {
        let start = Event::TraderStarted(TraderStart {
            exchange: "sim".into(),
            account: "main".into(),
            currency: "USDT".into(),
            allocation_pct: Decimal::ONE_HUNDRED,
            capital_quote: Decimal::from(1000),
            leverage: Decimal::ONE,
        });
        let mut items = vec![(0, "t".to_owned(), start)];
        for i in 1..n {
            let kline = Kline { close: Decimal::from(100 + i % 5), interval_ms: 60_000, ..Kline::zeroed("BTCUSDT") };
            items.push((i * 60_000, String::new(), Event::KlineReceived(kline)));
        }
        chain(&items)
    }

    #[tokio::test]
    async fn the_feed_never_waits_for_readers_and_folds_what_it_was_sent() {
        let shared = Shared::default();
        let (feed, fold) = feed(&shared, "live");
        let task = tokio::spawn(fold);
        let envs = records(2000);
        {
            // A reader holds the lock for the whole time the engine sends: sending goes on.
            let _reader = shared.read();
            for env in &envs {
                feed.record(env);
            }
            feed.durable(Some(1500));
            feed.caught_up();
        }
        drop(feed);
        task.await.unwrap();
        let arena = shared.read();
        assert!(arena.ready);
        let replica = &arena.sources[0].replica;
        assert_eq!(replica.state, State::fold(&envs));
        assert_eq!(replica.head.records, 2000);
        assert_eq!(replica.head.durable_through, Some(1500));
        assert_eq!(replica.traders["t"].equity.len(), 2000, "the start and every close");
    }

    #[test]
    fn two_journals_sharing_a_trader_name_are_told_apart() {
        let replica = Replica::fold(&records(3));
        let arena = Arena {
            sources: vec![
                Source { name: "a".into(), replica: replica.clone() },
                Source { name: "b".into(), replica: replica.clone() },
            ],
            ready: true,
        };
        let ids: Vec<String> = arena.traders().into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, ["a:t", "b:t"]);
        let mut twice = Arena::default();
        twice.add(Source { name: "j".into(), replica: replica.clone() });
        twice.add(Source { name: "j".into(), replica: replica.clone() });
        let ids: Vec<String> = twice.traders().into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, ["j:t", "j-2:t"]);
        assert!(arena.trader("t").is_none());
        assert!(arena.trader("b:t").is_some());
        let one = Arena { sources: vec![Source { name: "a".into(), replica }], ready: true };
        assert_eq!(one.traders()[0].0, "t");
    }
}
