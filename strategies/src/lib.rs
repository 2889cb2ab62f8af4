//! The deciders: the QuickJS sandbox host and the indicators it exposes.

pub mod indicator;
pub mod sandbox;
pub mod api;
pub mod bench;
pub mod market;
pub mod runtime;
pub mod sink;
pub mod worker;
