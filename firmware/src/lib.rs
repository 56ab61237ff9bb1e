//! fazt: a personal cloud appliance in one binary and one SQLite file.
//!
//! # Layout
//! - [`proc`]: the composition root ([`serve`]: a node from a listener, a
//!   [`fazt_hal::Hal`] and a storage), `fazt server start`, the data-file lock, systemd.
//! - [`net`]: the HTTP server, host routing, static serving, the admin API; its state is
//!   [`net::Web`], over the kernel.
//! - [`kernel`]: the services of a running node, shared by everything above it.
//! - [`fs`]: the virtual filesystem inside `data.db` (content-addressed blobs, deploys).
//! - [`apps`]: apps and the embedded system apps.
//! - [`chirp`]: data over sound (the acoustic modem, a pure library).
//! - [`runtime`]: serverless JavaScript apps on QuickJS.
//! - [`syscall`]: every operation of a user or an app, checked against its caller; the
//!   HTTP API, the CLI and `fazt.*` are adapters over it.
//! - [`storage`]: the one owner of `data.db`, with append-only migrations.
//! - [`events`]: the kernel event bus (live feed and a bounded history in `data.db`).
//! - [`security`]: passwords, sessions, API tokens, login rate limits.
//! - [`time`]: the kernel clock.
//! - [`mnemonic`]: bytes to BIP-39 word lists and back (data through people).
//! - [`identity`]: the node identity (a key in the keystore and the node id made from it).
//! - [`beacon`]: LAN announcement (mDNS) and the peer list.
//! - [`config`]: typed node settings.
//! - [`rules`]: shared names and rules, the leaf every layer may import.
//! - [`cli`]: the command line.
//!
//! # Implementation
//! One process. A smol executor runs on one thread per core; SQLite work runs on the
//! `blocking` thread pool. Files touched: `data.db` (+ `-wal`, `-shm`), `data.db.lock`,
//! short-lived `.fazt-upload-*` spool files beside it, and the client config. The event
//! bus adds one thread (`fazt-events`) that writes its history. The beacon
//! adds UDP port 5353 and the mDNS threads of the HAL (unless it is off).

#![warn(missing_docs, missing_debug_implementations)]

pub mod apps;
pub mod beacon;
pub mod chirp;
pub mod cli;
pub mod config;
pub mod egress;
pub mod events;
pub mod fs;
pub mod identity;
pub mod ids;
pub mod kernel;
pub mod keys;
pub mod mnemonic;
pub mod net;
pub mod proc;
pub mod rules;
pub mod runtime;
pub mod security;
pub mod storage;
pub mod syscall;
pub mod time;

pub use proc::serve::{serve, NodeOptions, ServeError};

/// The version of this binary.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
