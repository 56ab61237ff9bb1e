//! One running node per data file: an exclusive advisory lock on `<data>.lock`.
//!
//! Two nodes on one database would both seed, both serve and fight over the port; a
//! restore under a running node would swap the file under its feet. The lock is held by
//! the open file, so the kernel releases it when the process dies, even after `kill -9`.

use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The held lock; released on drop.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// The lock is held by someone else, or could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another fazt process is using {0} (stop it first)")]
    Busy(PathBuf),
    /// The lock file could not be opened.
    #[error("cannot open lock file {path}: {err}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
}

/// The lock file for a data file.
pub fn lock_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

impl DataLock {
    /// Takes the lock for `data` without waiting.
    pub fn acquire(data: &Path) -> Result<Self, LockError> {
        let path = lock_path(data);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| LockError::Io { path: path.clone(), err })?;
        file.try_lock_exclusive().map_err(|_| LockError::Busy(data.to_path_buf()))?;
        Ok(DataLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.db");
        let first = DataLock::acquire(&data).unwrap();
        assert!(matches!(DataLock::acquire(&data), Err(LockError::Busy(_))));
        drop(first);
        DataLock::acquire(&data).unwrap();
    }
}
