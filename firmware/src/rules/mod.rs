//! Shared names and rules that every layer may use and that use no other module of
//! fazt: the leaf of the module graph (see docs/architecture.md).
//!
//! # Layout
//! - [`cache`]: how long browsers may keep a static file.
//! - [`client`]: who a client is, for connection caps and rate limits.
//! - [`names`]: DNS labels and domains (app names, the domain, the beacon's name).
//! - [`hash`]: content hashes (SHA-256 in hex), the names of blobs.
//! - [`keys`]: the names of keystore keys that several modules know.

pub mod cache;
pub mod client;
pub mod hash;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod names;
