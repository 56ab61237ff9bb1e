//! Syscalls: every operation a user or an app can perform exists once, here, in Rust,
//! and is exposed three ways: the JavaScript bindings (`runtime/`), the HTTP API
//! (`net/api/`) and the CLI's offline commands (`cli/`). Those are thin adapters: they
//! parse input, build the [`Caller`], call the syscall and render its answer.
//!
//! Each syscall takes only the handles it needs (`&Storage`, `&Clock`, `&Events`, ...)
//! and the caller, checks the caller's rights first (through [`Caller`], the one place
//! permissions are decided), and fails with a [`SyscallError`] whose [`code`]
//! (`not_found`, `invalid`, `forbidden`, `storage_full`, ...) is stable: the HTTP API
//! answers it as is, mapping its [`Kind`] to a status in one place.
//!
//! The calls the kernel makes on an app's behalf (appending its log lines, loading its
//! environment and limits to run it: `logs::append`, `env::list`, `limits::get`) take a
//! caller like every other: the kernel passes [`Caller::Kernel`], which no adapter builds
//! from a request. The first-boot setup page's client, who has no credentials yet, is a
//! [`Caller::Visitor`].
//!
//! [`code`]: SyscallError::code
//!
//! # Layout
//! - [`caller`]: who calls ([`Caller`]) and what each caller may touch.
//! - [`apps`]: list, show, rename and delete apps; check a handler call.
//! - [`deploy`]: the storage part of a deploy (a spooled archive becomes the current
//!   deployment) and which content the node lacks.
//! - [`files`]: an app's deployed files (`fs ls`) and reading one.
//! - [`tokens`]: API tokens: create, list, revoke.
//! - [`sessions`]: password login and logout.
//! - [`setup`]: the first-boot setup page's claim of an unclaimed node.
//! - [`kv`]: `fazt.storage.kv`, a per-app key-value store with TTLs.
//! - [`logs`]: per-app logs (`console.*`, `fazt.log.*`).
//! - [`env`]: per-app environment variables (`fazt.app.env`).
//! - [`limits`]: per-app runtime limits.
//! - [`certs`]: HTTPS certificates (list, add, remove), over the TLS store `net` owns.
//! - [`keys`]: the node's keys: list, rotate, reset.
//! - [`config`]: node settings: get, set (validated), list.
//! - [`time`]: `fazt.time` and the timekeeper's status.
//! - [`beacon`]: this node on the LAN and its peers.
//! - [`egress`]: `fazt.net.fetch`, the apps' allow-lists, the outbound request log and
//!   circuit breakers.
//! - [`events`]: custom events (`fazt.events`, `POST /api/events`) and who may read what.
//! - [`system`]: the node as a whole: health, database, storage status and migrations,
//!   backups, a new node's settings.

pub mod apps;
pub mod beacon;
pub mod caller;
pub mod certs;
pub mod config;
pub mod deploy;
pub mod egress;
pub mod env;
pub mod events;
pub mod files;
pub mod keys;
pub mod kv;
pub mod limits;
pub mod logs;
pub mod sessions;
pub mod setup;
pub mod system;
pub mod time;
pub mod tokens;

pub use caller::Caller;

use crate::storage::StorageError;

/// What kind of refusal an error is; the HTTP API turns it into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input breaks a documented limit or format (400).
    Invalid,
    /// The credentials are wrong (401).
    Unauthenticated,
    /// The caller may not do this (403).
    Forbidden,
    /// What was named does not exist (404).
    NotFound,
    /// The state of the node does not allow it now (409).
    Conflict,
    /// What was asked for is over for good: the node is claimed already (410).
    Gone,
    /// The input is larger than a limit (413).
    TooLarge,
    /// Too many attempts; try later (429).
    RateLimited,
    /// The disk, the database or a quota is full (507).
    Full,
    /// The database is busy, or a destination's circuit is open; try again (503).
    Busy,
    /// A destination outside the node failed or answered badly (502).
    Upstream,
    /// A destination outside the node did not answer in time (504).
    Timeout,
    /// Something failed that is not the caller's fault (500).
    Internal,
}

/// A syscall refused or failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SyscallError {
    /// The input breaks a documented limit or format (code `invalid`).
    #[error("{0}")]
    Invalid(String),
    /// Refused with its own stable code (`not_found`, `forbidden`, `bad_name`, ...).
    #[error("{message}")]
    Refused {
        /// What kind of refusal.
        kind: Kind,
        /// The stable machine code.
        code: &'static str,
        /// What to tell the user.
        message: String,
        /// Seconds to wait before trying again, when that is known.
        retry_after: Option<u64>,
    },
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
    Storage(#[from] StorageError),
}

impl SyscallError {
    /// A refusal of some kind with a stable code.
    pub fn refused(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        SyscallError::Refused { kind, code, message: message.into(), retry_after: None }
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::refused(Kind::NotFound, "not_found", message)
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            SyscallError::Invalid(_) => "invalid",
            SyscallError::Refused { code, .. } => code,
            SyscallError::QuotaExceeded { .. } => "storage_full",
            SyscallError::Storage(StorageError::Full) => "storage_full",
            SyscallError::Storage(StorageError::Busy) => "db_busy",
            SyscallError::Storage(_) => "storage_error",
        }
    }

    /// What kind of refusal this is.
    pub fn kind(&self) -> Kind {
        match self {
            SyscallError::Invalid(_) => Kind::Invalid,
            SyscallError::Refused { kind, .. } => *kind,
            SyscallError::QuotaExceeded { .. } | SyscallError::Storage(StorageError::Full) => Kind::Full,
            SyscallError::Storage(StorageError::Busy) => Kind::Busy,
            SyscallError::Storage(_) => Kind::Internal,
        }
    }
}

impl From<rusqlite::Error> for SyscallError {
    fn from(e: rusqlite::Error) -> Self {
        SyscallError::Storage(e.into())
    }
}

impl From<crate::fs::deploy::DeployError> for SyscallError {
    fn from(err: crate::fs::deploy::DeployError) -> Self {
        use crate::fs::deploy::DeployError;
        let kind = match &err {
            DeployError::Storage(_) => Kind::Internal,
            DeployError::TooLarge(_) => Kind::TooLarge,
            DeployError::MissingBlob(_) => Kind::Conflict,
            DeployError::Io(_) => Kind::Internal,
            _ => Kind::Invalid,
        };
        match err {
            DeployError::Storage(storage) => storage.into(),
            other => SyscallError::refused(kind, other.code(), other.to_string()),
        }
    }
}

impl From<crate::events::EventError> for SyscallError {
    fn from(err: crate::events::EventError) -> Self {
        use crate::events::EventError;
        let (kind, code) = match err {
            EventError::BadType(_) => (Kind::Invalid, "bad_type"),
            EventError::TooLarge(_) => (Kind::TooLarge, "too_large"),
            EventError::RateLimited(_) => (Kind::RateLimited, "rate_limited"),
        };
        SyscallError::refused(kind, code, err.to_string())
    }
}
