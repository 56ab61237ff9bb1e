//! `fazt storage status|migrate`: what is in a data file and which migrations it lacks,
//! read without changing a byte of it (a read-only connection; no lock, no migration).

use super::{migrations, StorageError, BUSY_TIMEOUT};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The tables that grow with use, reported with their row counts and bytes.
pub const BIG_TABLES: &[&str] = &["blobs", "files", "kv", "app_logs", "events"];

/// A schema migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migration {
    /// Its version.
    pub version: i64,
    /// What it does.
    pub description: &'static str,
}

/// One table's size.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// The table.
    pub name: &'static str,
    /// Its rows.
    pub rows: u64,
    /// The bytes of its values (SQLite's page overhead not counted).
    pub bytes: u64,
}

/// A data file's state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// The size of its `-wal` (0 when there is none).
    pub wal_bytes: u64,
    /// The highest migration applied.
    pub schema_version: i64,
    /// The highest this binary knows.
    pub latest_version: i64,
    /// Known migrations the file has not had (empty when it is newer than this binary).
    pub pending: Vec<Migration>,
    /// SQLite's page size.
    pub page_size: u64,
    /// Pages in the file.
    pub page_count: u64,
    /// Pages free for reuse (`VACUUM` would give them back).
    pub freelist_count: u64,
    /// The big tables that exist in this file.
    pub tables: Vec<Table>,
}

impl Status {
    /// True when a newer fazt wrote the file.
    pub fn too_new(&self) -> bool {
        self.schema_version > self.latest_version
    }
}

/// Reads the state of the fazt data file at `path`; refuses a missing file, a file that
/// is not SQLite and a SQLite file that is not fazt's.
pub fn status(path: &Path) -> Result<Status, StorageError> {
    let conn = open(path)?;
    let schema_version = migrations::current_version(&conn)?;
    if schema_version == 0 {
        return Err(StorageError::NotFazt { path: path.to_path_buf(), what: "a fazt database" });
    }
    let latest_version = migrations::latest_version();
    let pending = if schema_version > latest_version {
        Vec::new()
    } else {
        migrations::pending(&conn)?
            .into_iter()
            .map(|(version, description)| Migration { version, description })
            .collect()
    };
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let (page_size, page_count, freelist_count) =
        (pragma("page_size")?, pragma("page_count")?, pragma("freelist_count")?);
    let mut tables = Vec::new();
    for name in BIG_TABLES {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if columns.is_empty() {
            continue;
        }
        // octet_length reads a value's size from the record header, not the value.
        let bytes: Vec<String> =
            columns.iter().map(|c| format!("coalesce(octet_length(\"{c}\"), 0)")).collect();
        let sql = format!("SELECT count(*), coalesce(sum({}), 0) FROM \"{name}\"", bytes.join(" + "));
        let (rows, bytes): (i64, i64) = conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        tables.push(Table { name, rows: rows as u64, bytes: bytes as u64 });
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Ok(Status {
        path: path.to_path_buf(),
        file_bytes: size(path),
        wal_bytes: size(&PathBuf::from(format!("{}-wal", path.display()))),
        schema_version,
        latest_version,
        pending,
        page_size: page_size as u64,
        page_count: page_count as u64,
        freelist_count: freelist_count as u64,
        tables,
    })
}

/// Applies the pending migrations of the fazt data file at `path` (the caller holds the
/// data lock) and returns them. The file is checked first, read-only: a missing file,
/// one that is not fazt's or one a newer fazt wrote is refused unchanged.
pub fn migrate(path: &Path) -> Result<Vec<Migration>, StorageError> {
    let before = status(path)?;
    if before.too_new() {
        return Err(StorageError::TooNew { found: before.schema_version, known: before.latest_version });
    }
    if before.pending.is_empty() {
        return Ok(Vec::new());
    }
    drop(super::Storage::open(path)?);
    Ok(before.pending)
}

/// A read-only connection to an existing SQLite file.
fn open(path: &Path) -> Result<Connection, StorageError> {
    let meta = std::fs::metadata(path).map_err(|_| StorageError::Missing(path.to_path_buf()))?;
    if !meta.is_file() {
        return Err(StorageError::NotFazt { path: path.to_path_buf(), what: "a file" });
    }
    // Checked here so the answer is "not SQLite", not a query failing later.
    let mut header = [0u8; 16];
    let sqlite = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| &header == b"SQLite format 3\0");
    if !sqlite {
        return Err(StorageError::NotFazt { path: path.to_path_buf(), what: "a SQLite database" });
    }
    // Without a `-wal` every page is in the file itself, and no node has it open (a node
    // keeps its WAL while it runs): read it as immutable, so SQLite does not leave a
    // `-wal` and `-shm` behind. Otherwise a plain read-only connection, which shares the
    // node's WAL index.
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let target = match (wal.exists(), std::path::absolute(path)) {
        (false, Ok(abs)) => format!("file:{}?immutable=1", uri_path(&abs.to_string_lossy())),
        _ => format!("file:{}?mode=ro", uri_path(&path.to_string_lossy())),
    };
    let conn = Connection::open_with_flags(&target, flags)
        .map_err(|err| StorageError::Open { path: path.to_path_buf(), err })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// A path as the path part of a `file:` URI.
fn uri_path(path: &str) -> String {
    path.replace('%', "%25").replace('?', "%3f").replace('#', "%23")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_fresh_file_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        drop(super::super::Storage::open(&path).unwrap());
        let status = status(&path).unwrap();
        assert_eq!(status.schema_version, migrations::latest_version());
        assert!(status.pending.is_empty() && !status.too_new());
        assert!(status.page_size > 0 && status.page_count > 0);
        let names: Vec<&str> = status.tables.iter().map(|t| t.name).collect();
        assert_eq!(names, BIG_TABLES);
        assert!(migrate(&path).unwrap().is_empty());

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello, this is not a database at all").unwrap();
        assert!(super::status(&text).unwrap_err().to_string().contains("not a SQLite database"));
        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t(x)").unwrap();
        assert!(super::status(&other).unwrap_err().to_string().contains("not a fazt database"));
        assert!(matches!(super::status(&dir.path().join("nope.db")), Err(StorageError::Missing(_))));
    }
}
