//! The deciders: the QuickJS sandbox host and the indicators it exposes.

pub mod api;
pub mod bench;
pub mod declare;
pub mod indicator;
pub mod llm;
pub mod market;
pub mod runtime;
pub mod sandbox;
pub mod sink;
pub mod worker;
