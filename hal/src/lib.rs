//! The hardware abstraction layer of fazt: the devices a node may have, behind small traits.
//!
//! Every trait has a real backend (the device on a Pi or a VPS) and a file- or
//! fixed-value backend, so that the whole program runs on a laptop, in CI and in qemu.
//! Device backends that need system libraries sit behind cargo features; the default
//! features build with only Rust and a C compiler.
//!
//! # Layout
//! - [`Hal`] (module [`bundle`]): the devices one node uses, chosen in one place:
//!   [`Hal::linux`] for a real machine, [`Hal::fake`] for a node inside a test process.
//! - [`audio`]: play and capture sound. WAV-file backend always; live audio (cpal on
//!   ALSA) behind the `audio-alsa` cargo feature.
//! - [`board`]: what machine this is (model, memory, CPU count), for health reports and
//!   memory budgets.
//! - [`discovery`]: finding and announcing services on the LAN (mDNS / DNS-SD), with an
//!   in-memory LAN for tests.
//! - [`keystore`]: named Ed25519 (node identity) and ECDSA P-256 (LAN CA) key pairs
//!   that sign and seal; software backends, and a TPM behind the `tpm` feature
//!   (a stand-in type with no values without it).
//! - [`time`]: the board's wall clock (system clock, or one shifted by a fixed offset
//!   for tests) and its battery-backed RTC, which the kernel clock corrects.
//!
//! # Implementation
//! The Linux board backend reads `/proc/device-tree/model`, `/sys/class/dmi/id/*`,
//! `/proc/meminfo` and `/proc/self/status`; it opens no device and starts no thread.
//! The mDNS backend binds UDP port 5353 (IPv4 and IPv6) and runs the `mdns-sd` daemon
//! thread plus one thread per browse; the file keystore writes `<name>.ed25519` files.

#![warn(missing_docs, missing_debug_implementations)]

pub mod audio;
pub mod board;
pub mod bundle;
pub mod discovery;
pub mod keystore;
pub mod time;

pub use bundle::{Hal, HalSettings};
