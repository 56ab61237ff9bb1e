//! The storage engine: the one owner of `data.db`.
//!
//! Only this module opens the SQLite file. Everyone else borrows a connection through
//! [`Storage::read`] or [`Storage::write`], which run the closure on the blocking thread
//! pool so that SQLite never stalls the async executor. There is one writer connection
//! (SQLite serialises writers anyway; one handle makes that explicit and avoids
//! SQLITE_BUSY between our own threads) and a small pool of readers, all in WAL mode so
//! readers never wait for the writer.

mod error;
mod migrations;
pub mod state;
pub mod status;
pub mod watch;

pub use error::StorageError;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a statement waits for a lock held by another process (a CLI backup, a second
/// fazt) before it fails with `db_busy`. Long enough for a backup step, short enough that
/// an HTTP client gets an answer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers kept open; more concurrent reads open a temporary connection.
const MAX_IDLE_READERS: usize = 4;

/// The shared handle to `data.db`.
#[derive(Debug)]
pub struct Storage {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Storage {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    /// The file is made readable by its owner only (see [`make_private`]).
    pub fn open(path: &Path) -> Result<Arc<Self>, StorageError> {
        make_private(path)?;
        let mut writer = open_connection(path, true)?;
        migrations::run(&mut writer)?;
        Ok(Arc::new(Storage {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        }))
    }

    /// Opens an existing database without creating it; for offline CLI commands.
    pub fn open_existing(path: &Path) -> Result<Arc<Self>, StorageError> {
        if !path.exists() {
            return Err(StorageError::Missing(path.to_path_buf()));
        }
        Self::open(path)
    }

    /// Opens an existing database read-only, without migrating it: for reading a backup
    /// or a node's file that another (maybe older) fazt owns. Refuses files that are not
    /// fazt databases or are newer than this binary.
    pub fn open_readonly(path: &Path) -> Result<Arc<Self>, StorageError> {
        if !path.exists() {
            return Err(StorageError::Missing(path.to_path_buf()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|err| StorageError::Open { path: path.to_path_buf(), err })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version = migrations::current_version(&conn)?;
        if version == 0 {
            return Err(StorageError::Corrupt(format!("{} is not a fazt database", path.display())));
        }
        if version > migrations::latest_version() {
            return Err(StorageError::TooNew { found: version, known: migrations::latest_version() });
        }
        Ok(Arc::new(Storage {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        }))
    }

    /// The path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a read connection, off the executor.
    pub async fn read<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        blocking::unblock(move || this.read_blocking(f)).await
    }

    /// Runs `f` on the writer connection, off the executor.
    pub async fn write<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        blocking::unblock(move || this.write_blocking(f)).await
    }

    /// Runs `f` on a read connection on the current thread.
    pub fn read_blocking<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None if self
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_readonly(rusqlite::DatabaseName::Main)
                .unwrap_or(false) =>
            {
                // A read-only handle has one connection; reads share it.
                return f(&self.writer.lock().unwrap_or_else(|e| e.into_inner()));
            }
            None => open_connection(&self.path, false)?,
        };
        let result = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        result
    }

    /// Runs `f` on the writer connection on the current thread.
    pub fn write_blocking<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        // A panic while holding the lock cannot leave SQLite half-written (an open
        // transaction is rolled back when its guard drops), so a poisoned lock is usable.
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }

    /// Like [`Storage::write`], but the commit is synced to disk before it returns
    /// (`synchronous=FULL`), so a power cut right after cannot undo it. For deploys,
    /// whose "done" the user relies on; everyday writes (KV, logs, sessions) use NORMAL,
    /// which in WAL mode survives any crash of the process and keeps the file sound.
    pub async fn write_durable<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        blocking::unblock(move || this.write_durable_blocking(f)).await
    }

    /// [`Storage::write_durable`] on the current thread.
    pub fn write_durable_blocking<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_blocking(|conn| {
            conn.pragma_update(None, "synchronous", "FULL").map_err(StorageError::from)?;
            let result = f(conn);
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(StorageError::from)?;
            result
        })
    }

    /// Size of the database file plus its WAL, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        [&self.path, &wal].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
    }

    /// Caps the database size (0 = no cap), so a full quota fails cleanly with
    /// `storage_full` instead of filling the disk under the OS.
    pub fn set_max_bytes(&self, max_bytes: u64) -> Result<(), StorageError> {
        self.write_blocking(|conn| {
            let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = if max_bytes == 0 { 1 << 30 } else { (max_bytes as i64 / page_size).max(1) };
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
            Ok(())
        })
    }

    /// Runs SQLite's `PRAGMA integrity_check` and returns its verdict ("ok" when sound).
    pub fn integrity_check(&self) -> Result<String, StorageError> {
        self.read_blocking(|conn| {
            let rows: Vec<String> = conn
                .prepare("PRAGMA integrity_check")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows.join("; "))
        })
    }

    /// The highest applied schema version.
    pub fn schema_version(&self) -> Result<i64, StorageError> {
        self.read_blocking(|conn| Ok(migrations::current_version(conn)?))
    }

    /// Copies the live database into `dest` with SQLite's online backup, safe while the
    /// node serves (readers and the writer keep going between steps).
    pub fn backup_to(&self, dest: &Path) -> Result<(), StorageError> {
        make_private(dest)?;
        self.read_blocking(|conn| {
            let mut target = Connection::open(dest)?;
            let backup = rusqlite::backup::Backup::new(conn, &mut target)?;
            backup.run_to_completion(256, Duration::from_millis(5), None)?;
            Ok(())
        })
    }
}

/// Owner-only access for a database file: it holds the password hashes, session and
/// token hashes, sealed keys and every app's data.
const PRIVATE_MODE: u32 = 0o600;

/// Creates `path` empty with mode 0600 when it is missing (SQLite would create it with
/// 0644 minus the umask, and gives its `-wal` and `-shm` files the main file's mode),
/// and takes group and other access away from an existing one and its `-wal`/`-shm`
/// (files made by an older fazt). A file we cannot change (another owner) is left as
/// it is with a log line: the open then fails or succeeds on its own terms.
pub fn make_private(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(PRIVATE_MODE).open(path);
    match created {
        Ok(_) => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(StorageError::Create { path: path.to_path_buf(), err }),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        let mode = meta.permissions().mode();
        if !meta.is_file() || mode & 0o077 == 0 {
            continue;
        }
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => {
                tracing::info!(file = %file.display(), "made readable by its owner only (was {:o})", mode & 0o777)
            }
            Err(err) => tracing::warn!(file = %file.display(), error = %err, "cannot make it private"),
        }
    }
    Ok(())
}

/// Opens one connection with the pragmas every connection needs.
/// Creates a database at `path` with the migrations up to `version` only, opened as the
/// node opens it: the file an older release made, for tests that upgrade it.
#[doc(hidden)]
pub fn create_at_version(path: &Path, version: i64) -> Result<Connection, StorageError> {
    make_private(path)?;
    let mut conn = open_connection(path, true)?;
    migrations::run_through(&mut conn, version)?;
    Ok(conn)
}

fn open_connection(path: &Path, create: bool) -> Result<Connection, StorageError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|err| StorageError::Open { path: path.to_path_buf(), err })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block on the writer. synchronous=NORMAL: in WAL mode a crash of
    // the process loses nothing and the file stays sound; only a power cut may undo the
    // last commits, so deploys use `write_durable` (FULL) on top.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let storage = Storage::open(&path).unwrap();
        let version = storage.schema_version().unwrap();
        assert!(version >= 1);
        drop(storage);
        let storage = Storage::open_existing(&path).unwrap();
        assert_eq!(storage.schema_version().unwrap(), version);
        assert_eq!(storage.integrity_check().unwrap(), "ok");
    }

    // See: issue 17 (data.db was created 0644, readable by every local user).
    #[test]
    fn database_files_and_backups_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let storage = Storage::open(&path).unwrap();
        let write = |c: &mut Connection| -> Result<(), StorageError> {
            Ok(c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")?)
        };
        storage.write_blocking(write).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        let backup = dir.path().join("backup.db");
        storage.backup_to(&backup).unwrap();
        assert_eq!(mode(&backup), 0o600);
        drop(storage);
        // A file an older fazt made 0644 is tightened when opened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Storage::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        // A missing folder is a clear error, not a panic.
        let err = Storage::open(&dir.path().join("nope/data.db")).unwrap_err();
        assert!(err.to_string().contains("check that the folder exists"), "{err}");
    }

    #[test]
    fn readonly_open_refuses_non_fazt_files_and_never_writes() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        Connection::open(&junk).unwrap().execute_batch("CREATE TABLE t(x)").unwrap();
        assert!(matches!(Storage::open_readonly(&junk), Err(StorageError::Corrupt(_))));
        let path = dir.path().join("data.db");
        drop(Storage::open(&path).unwrap());
        let ro = Storage::open_readonly(&path).unwrap();
        assert_eq!(ro.integrity_check().unwrap(), "ok");
        let err = ro
            .write_blocking(|c| c.execute("DELETE FROM config", []).map_err(StorageError::from))
            .unwrap_err();
        assert!(matches!(err, StorageError::Sqlite(_)), "{err:?}");
    }

    #[test]
    fn missing_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Storage::open_existing(&dir.path().join("nope.db")).unwrap_err();
        assert!(err.to_string().contains("nope.db"), "{err}");
    }

    #[test]
    fn quota_gives_storage_full() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        storage.set_max_bytes(storage.size_bytes()).unwrap();
        let err = storage
            .write_blocking(|conn| {
                conn.execute("INSERT INTO config(key, value) VALUES ('big', ?1)", [vec![b'x'; 1 << 20]])?;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, StorageError::Full), "{err:?}");
    }
}
