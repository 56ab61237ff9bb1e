//! Process lifecycle: starting a node, the data-file lock, and systemd integration.
//!
//! # Layout
//! - [`node`]: bootstrapping a data file and running the server until a signal.
//! - [`lock`]: one node per `data.db`.
//! - [`service`]: the systemd unit for VPS installs.

pub mod lock;
pub mod node;
pub mod service;
