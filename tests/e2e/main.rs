//! End-to-end tests: each runs a node on a free loopback port with its own data file,
//! and drives it over HTTP and through the CLI. Most nodes run inside the test process
//! (`fazt::serve` over `Hal::fake()`); those that need a real process (signals,
//! `kill -9`, the banner, offline CLI commands, mDNS and NTP labs) start the binary.
//! `FAZT_E2E_PROCESS=1` runs every test against the binary.
//!
//! One module per feature; `support` holds the node harness and a raw HTTP client (raw,
//! so tests can send what a real client never would).

mod acme;
mod admin_rename;
mod admin_ui;
mod api;
mod apps;
mod beacon;
mod browser;
mod chirp;
mod deploy;
mod egress;
mod events;
mod hardening;
mod hostile;
mod https;
mod keys;
mod lifecycle;
mod mnemonic;
mod ocsp;
mod os;
mod permissions;
mod redirects;
mod serverless;
mod serving;
mod setup_page;
mod support;
mod timekeeper;
mod upgrade;
