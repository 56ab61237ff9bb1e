//! Process lifecycle: starting a node, the data-file lock, and systemd integration.
//!
//! # Layout
//! - [`serve`]: the composition root: a node built from a listener, a `Hal` and a
//!   storage, served until a shutdown future completes, then stopped cleanly.
//! - [`node`]: bootstrapping a data file, and `fazt server start` over the real
//!   hardware until a signal.
//! - [`lock`]: one node per `data.db`, and who holds it.
//! - [`info`]: what `/proc` says about a running node (memory, threads, uptime, unit).
//! - [`client_config`]: the CLI's client config (the first start writes one).
//! - [`service`]: the systemd unit for VPS installs.

pub mod client_config;
pub mod info;
pub mod lock;
pub mod node;
pub mod serve;
pub mod service;
