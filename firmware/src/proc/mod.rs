//! Process lifecycle: starting a node, the data-file lock, and systemd integration.
//!
//! # Layout
//! - [`node`]: bootstrapping a data file and running the server until a signal.
//! - [`lock`]: one node per `data.db`, and who holds it.
//! - [`info`]: what `/proc` says about a running node (memory, threads, uptime, unit).
//! - [`client_config`]: the CLI's client config (the first start writes one).
//! - [`service`]: the systemd unit for VPS installs.

pub mod client_config;
pub mod info;
pub mod lock;
pub mod node;
pub mod service;
