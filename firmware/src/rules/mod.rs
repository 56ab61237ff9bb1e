//! Shared names and rules that every layer may use and that use no other module of
//! fazt: the leaf of the module graph (see docs/architecture.md).
//!
//! # Layout
//! - [`client`]: who a client is, for connection caps and rate limits.

pub mod client;
