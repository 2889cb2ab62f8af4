//! Replay: prove what a journal says, rebuild state from it, compare two runs.
//!
//! # Layout
//! - [`rebuild`]: state only — the latest snapshot at or before a seq plus the
//!   tail, no decider runs. The crash-recovery path.
//! - [`verify`]: the chain and snapshots, then every decision re-derived: the
//!   journal's inputs are folded and routed to the deciders (the strategy code
//!   stored in the journal, or a new version of it), and every event they derive
//!   must equal the journaled one, in order.
//! - [`resume`]: rebuild state *and* deciders by re-deriving the journal, finish a step
//!   a crash cut short, and go on appending: how a restarted run continues.
//! - [`diff`]: where two journals of the same market inputs part.

pub mod diff;
pub mod rebuild;
pub mod resume;
pub mod verify;
