//! Process lifecycle: starting a node, the data-file lock, and systemd integration.
//!
//! # Layout
//! - [`node`]: bootstrapping a data file and running the server until a signal.
//! - [`lock`]: one node per `data.db`.
//! - [`priority`]: scheduling priority of a thread (the JavaScript workers run lower).
//! - [`service`]: the systemd unit for VPS installs.

pub mod lock;
pub mod node;
pub mod priority;
pub mod service;
