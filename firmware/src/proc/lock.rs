//! One running node per data file: an exclusive advisory lock on `<data>.lock`.
//!
//! Two nodes on one database would both seed, both serve and fight over the port; a
//! restore under a running node would swap the file under its feet. The lock is held by
//! the open file, so the kernel releases it when the process dies, even after `kill -9`.
//!
//! The file also says who holds it: one line of JSON with the holder's pid, and for a
//! node its version, start time and addresses ([`Holder`]), which `fazt proc` reads.
//! Its content is only trusted while the lock is held (a stopped node leaves it behind).

use fs2::FileExt;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What the holder of the lock wrote into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// fazt version of a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the node started (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// The HTTP address the node listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<SocketAddr>,
    /// The HTTPS address, when HTTPS is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<SocketAddr>,
}

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
        let lock = DataLock { _file: file };
        // Whatever an earlier holder wrote is stale now; say who holds it.
        lock.record(&Holder { pid: std::process::id(), ..Holder::default() })
            .map_err(|err| LockError::Io { path, err })?;
        Ok(lock)
    }

    /// Replaces what the lock file says about its holder (a node adds its addresses
    /// once it listens).
    pub fn record(&self, holder: &Holder) -> std::io::Result<()> {
        let mut file = &self._file;
        let mut line = serde_json::to_string(holder).map_err(std::io::Error::other)?;
        line.push('\n');
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }
}

/// Who holds the lock of `data`, without taking it and without creating anything:
/// `None` when nobody does. The pid comes from the kernel's lock table (`/proc/locks`)
/// when it names the holder, else from the lock file.
pub fn holder(data: &Path) -> Result<Option<Holder>, LockError> {
    let path = lock_path(data);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(LockError::Io { path, err }),
    };
    if file.try_lock_exclusive().is_ok() {
        let _ = FileExt::unlock(&file);
        return Ok(None);
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut holder: Holder = serde_json::from_str(text.trim()).unwrap_or_default();
    if let Some(pid) = flock_holder(&file) {
        holder.pid = pid;
    }
    Ok(Some(holder))
}

/// The pid holding a `flock` on `file`, from `/proc/locks` (Linux).
fn flock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let id = format!("{:02x}:{:02x}:{}", libc::major(dev), libc::minor(dev), meta.ino());
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    parse_locks(&table, &id)
}

/// The holder's pid of the `FLOCK` line for `id` (`maj:min:inode`) in `/proc/locks`
/// text; waiting requests (`->`) are not holders.
fn parse_locks(table: &str, id: &str) -> Option<u32> {
    table.lines().filter(|l| !l.contains("->")).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // 1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id))
            .then(|| fields.get(4)?.parse().ok())?
    })
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

    #[test]
    fn holder_is_known_while_held_and_the_probe_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.db");
        assert_eq!(holder(&data).unwrap(), None);
        assert!(!lock_path(&data).exists(), "a probe creates no lock file");
        let lock = DataLock::acquire(&data).unwrap();
        // flock locks belong to the open file, so a probe from this process is refused too.
        assert_eq!(holder(&data).unwrap().unwrap().pid, std::process::id());
        let info = Holder {
            pid: std::process::id(),
            version: Some("9.9.9".into()),
            started_at: Some(1),
            http: Some("127.0.0.1:8080".parse().unwrap()),
            https: None,
        };
        lock.record(&info).unwrap();
        assert_eq!(holder(&data).unwrap(), Some(info));
        drop(lock);
        assert_eq!(holder(&data).unwrap(), None);
    }

    #[test]
    fn proc_locks_lines() {
        let table = "1: POSIX  ADVISORY  WRITE 99 08:01:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 103:02:5678 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 777 103:02:5678 0 EOF\n";
        assert_eq!(parse_locks(table, "103:02:5678"), Some(4242));
        assert_eq!(parse_locks(table, "08:01:77"), None, "not a flock");
        assert_eq!(parse_locks(table, "103:02:1"), None);
    }
}
