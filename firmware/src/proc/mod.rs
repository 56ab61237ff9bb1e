//! Process lifecycle: starting a node, the data-file lock, and systemd integration.
//!
//! # Layout
//! - [`node`]: bootstrapping a data file and running the server until a signal.
//! - [`lock`]: one node per `data.db`, and who holds it.
//! - [`info`]: what `/proc` says about a running node (memory, threads, uptime, unit).
//! - [`priority`]: scheduling priority of a thread (the JavaScript workers run lower).
//! - [`service`]: the systemd unit for VPS installs.

pub mod info;
pub mod lock;
pub mod node;
pub mod priority;
pub mod service;
