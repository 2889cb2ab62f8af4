//! The deterministic core of quantfold and its log.
//!
//! # Layout
//! - [`event`]: the event schema and the record envelope.
//! - [`money`]: exact-decimal serde forms (strings in JSON, 16 bytes in the journal).
//! - [`hash`]: the blake3 hash chain, state digests and content hashes.
//! - [`codec`]: canonical bytes, versions and the journal header.
//! - [`state`]: the ledger `State` and its pure, total `apply`.
//! - [`check`]: pre-append order checks (accept or journal a rejection).
//! - [`store`]: the sled store with durability policies and snapshots — the only
//!   module here that does I/O.
//! - [`verify`]: whole-journal verification (chain, density, snapshot digests).
//! - [`jsonl`]: the JSON Lines export/import form.

pub mod check;
pub mod codec;
pub mod describe;
pub mod event;
pub mod hash;
pub mod jsonl;
pub mod money;
pub mod state;
pub mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod verify;

pub use event::{Cloid, Envelope, EnvelopeRef, Event};
pub use hash::Hash;
pub use state::State;
pub use store::{Appended, Durability, Journal, Records, StoreError, Timings};
