//! Errors of the storage engine, classified so callers can answer "disk full" and
//! "database busy" differently from a bug.

use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database file could not be opened.
    #[error("cannot open database {path}: {err} (check the path and its permissions)")]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        err: rusqlite::Error,
    },
    /// The database file could not be created, or its permissions not set.
    #[error("cannot create database {path}: {err} (check that the folder exists and is writable)")]
    Create {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        err: std::io::Error,
    },
    /// An offline command was pointed at a database that does not exist.
    #[error("no database at {0} (run `fazt server init` first, or pass --data)")]
    Missing(PathBuf),
    /// The disk or the configured quota is full.
    #[error("the database is full (disk full or storage.max_db_bytes reached)")]
    Full,
    /// Another process held a lock for longer than the busy timeout.
    #[error("the database is busy (locked by another process); try again")]
    Busy,
    /// The file is not a fazt database, or is damaged.
    #[error("the database is damaged or not a SQLite file: {0}")]
    Corrupt(String),
    /// The file is not what an offline command can read: not a file, not SQLite, or
    /// not a fazt database.
    #[error("{path} is not {what}")]
    NotFazt {
        /// The file.
        path: PathBuf,
        /// What it is not ("a SQLite database", "a fazt database").
        what: &'static str,
    },
    /// The file was written by a newer fazt.
    #[error("data.db has schema version {found}, newer than this fazt knows ({known}); upgrade fazt")]
    TooNew {
        /// Version found in the file.
        found: i64,
        /// Highest version this binary knows.
        known: i64,
    },
    /// Any other SQLite error (a bug, most likely).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StorageError::Full,
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StorageError::Busy,
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                StorageError::Corrupt(err.to_string())
            }
            _ => StorageError::Sqlite(err),
        }
    }
}
