//! Syscalls: each operation behind a `fazt.*` JavaScript call exists once, here, in
//! Rust, and is exposed three ways (JavaScript, HTTP API, CLI). Every function takes the
//! app id from the kernel, never from app code, which is what keeps apps apart.
//!
//! # Layout
//! - [`kv`]: `fazt.storage.kv`, a per-app key-value store with TTLs.
//! - [`logs`]: per-app logs (`console.*`, `fazt.log.*`).
//! - [`env`]: per-app environment variables (`fazt.app.env`).
//! - [`events`]: custom events (`fazt.events`, `POST /api/events`) and what apps may read.
//! - [`limits`]: per-app runtime limits.
//! - [`time`]: `fazt.time`, the kernel clock's state.

pub mod env;
pub mod events;
pub mod kv;
pub mod limits;
pub mod logs;
pub mod time;

/// A syscall refused its input.
#[derive(Debug, thiserror::Error)]
pub enum SyscallError {
    /// The input breaks a documented limit or format.
    #[error("{0}")]
    Invalid(String),
    /// The app's storage quota would be exceeded; nothing was written.
    #[error("storage_full: the app's storage quota of {quota} bytes is used up ({used} bytes kept); delete keys, or raise it with `fazt app limits <app> --storage-mb N`")]
    QuotaExceeded {
        /// The quota, in bytes.
        quota: u64,
        /// Bytes the app keeps now.
        used: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl From<rusqlite::Error> for SyscallError {
    fn from(e: rusqlite::Error) -> Self {
        SyscallError::Storage(e.into())
    }
}
