//! The node as a whole: its health and database (`GET /api/system/health|db`), the data
//! file's schema and migrations (`fazt storage status|migrate`), backups (`fazt backup
//! create|restore`) and the settings a new data file starts with (`fazt server init`).
//! All the admin's: they show or replace everything the node holds.
//!
//! The offline ones take the data file's path, since they open it themselves (read-only
//! where they only look); taking the data file's lock is the CLI's part (`proc`, above).

use super::{Caller, Kind, SyscallError};
use crate::config::{self, Setting};
use crate::storage::status::{self, Migration, Status};
use crate::storage::{Storage, StorageError};
use fazt_hal::board::Board;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the node's health page shows of storage and the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Live apps, system apps included.
    pub apps: i64,
    /// The data file's size.
    pub db_size_bytes: u64,
    /// The process's resident memory (0 when the board cannot tell).
    pub memory_rss_bytes: u64,
    /// The board's model, when the board can tell.
    pub board: Option<String>,
    /// The board's memory, when the board can tell.
    pub memory_total_bytes: Option<u64>,
}

/// The node's health: app count, data file size, memory and board.
pub async fn health(
    storage: &Arc<Storage>,
    board: &dyn Board,
    caller: &Caller,
) -> Result<Health, SyscallError> {
    caller.require_admin()?;
    // The board first: it is not held across the database read.
    let info = board.info().ok();
    let memory_rss_bytes = board.process_rss_bytes().unwrap_or(0);
    let apps = storage
        .read(|conn| {
            conn.query_row("SELECT count(*) FROM apps WHERE deleted_at IS NULL", [], |r| r.get::<_, i64>(0))
                .map_err(StorageError::from)
        })
        .await?;
    Ok(Health {
        apps,
        db_size_bytes: storage.size_bytes(),
        memory_rss_bytes,
        board: info.as_ref().map(|b| b.model.clone()),
        memory_total_bytes: info.as_ref().map(|b| b.memory_total_bytes),
    })
}

/// The database as `GET /api/system/db` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// Where the data file is.
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
    /// The schema version (0 when it cannot be read).
    pub schema_version: i64,
    /// SQLite pages.
    pub page_count: i64,
    /// Bytes per page.
    pub page_size: i64,
    /// Content blobs stored.
    pub blobs: i64,
}

/// The running node's database: path, size, schema version, pages and blobs.
pub async fn database(storage: &Arc<Storage>, caller: &Caller) -> Result<Database, SyscallError> {
    caller.require_admin()?;
    let owned = storage.clone();
    let (schema_version, page_count, page_size, blobs) = storage
        .read(move |conn| -> Result<_, StorageError> {
            let version = owned.schema_version().unwrap_or(0);
            let pages = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let blobs = conn.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
            Ok((version, pages, page_size, blobs))
        })
        .await?;
    Ok(Database {
        path: storage.path().to_path_buf(),
        size_bytes: storage.size_bytes(),
        schema_version,
        page_count,
        page_size,
        blobs,
    })
}

/// The data file at `data`: schema version, pending migrations, sizes, big tables.
/// Read-only; a missing file or one that is not fazt's is refused.
pub fn storage_status(data: &Path, caller: &Caller) -> Result<Status, SyscallError> {
    caller.require_admin()?;
    Ok(status::status(data)?)
}

/// What `migrate` would apply to the data file at `data` (its status); a file a newer
/// fazt wrote is refused (`storage_error`), since this one cannot read it. Read-only.
pub fn migration_plan(data: &Path, caller: &Caller) -> Result<Status, SyscallError> {
    let s = storage_status(data, caller)?;
    if s.too_new() {
        return Err(StorageError::TooNew { found: s.schema_version, known: s.latest_version }.into());
    }
    Ok(s)
}

/// Applies the pending migrations of the data file at `data`, whose lock the caller
/// holds; answers what was applied. A refused file is left unchanged.
pub fn migrate(data: &Path, caller: &Caller) -> Result<Vec<Migration>, SyscallError> {
    caller.require_admin()?;
    Ok(status::migrate(data)?)
}

fn io_error(what: String, err: impl std::fmt::Display) -> SyscallError {
    SyscallError::refused(Kind::Internal, "io_error", format!("{what}: {err}"))
}

/// Copies the data file at `data` (safe while a node serves it) to `file`, checks the
/// copy and answers its size. An existing `file` is refused (`exists`) unless `force`.
pub fn backup(data: &Path, file: &Path, force: bool, caller: &Caller) -> Result<u64, SyscallError> {
    caller.require_admin()?;
    if file.exists() && !force {
        return Err(SyscallError::refused(
            Kind::Conflict,
            "exists",
            format!("{} exists; pass --force to overwrite it", file.display()),
        ));
    }
    let storage = Storage::open_readonly(data)?;
    // Written beside the target and renamed, so an interrupted backup never leaves a
    // half-written file under the final name.
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let _ = std::fs::remove_file(&partial);
    storage.backup_to(&partial).map_err(|e| io_error(format!("writing {}", partial.display()), e))?;
    let check = Storage::open_readonly(&partial)?.integrity_check()?;
    if check != "ok" {
        return Err(SyscallError::refused(
            Kind::Internal,
            "backup_damaged",
            format!("the backup failed its integrity check: {check}"),
        ));
    }
    std::fs::rename(&partial, file).map_err(|e| io_error(format!("renaming {}", partial.display()), e))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    std::fs::metadata(file).map(|m| m.len()).map_err(|e| io_error(file.display().to_string(), e))
}

/// Replaces the data file at `data` (whose lock the caller holds: no node runs on it)
/// with the backup `file`, and answers how many apps it holds. The backup is checked
/// first: a missing (`not_found`), foreign (`not_a_backup`) or damaged
/// (`backup_damaged`) one changes nothing.
pub fn restore(file: &Path, data: &Path, caller: &Caller) -> Result<usize, SyscallError> {
    caller.require_admin()?;
    if !file.is_file() {
        return Err(SyscallError::not_found(format!("no backup at {}", file.display())));
    }
    let not_a_backup = |what: &str, err: &dyn std::fmt::Display| {
        SyscallError::refused(
            Kind::Invalid,
            "not_a_backup",
            format!("{} is not a {what}: {err}", file.display()),
        )
    };
    let source = Storage::open_readonly(file).map_err(|e| not_a_backup("fazt backup", &e))?;
    let check = source.integrity_check()?;
    if check != "ok" {
        return Err(SyscallError::refused(
            Kind::Invalid,
            "backup_damaged",
            format!("{} is damaged: {check}", file.display()),
        ));
    }
    let apps = source.read_blocking(crate::apps::list).map_err(|e| not_a_backup("fazt database", &e))?;
    // SQLite's backup API writes the target page by page inside its own locking, and the
    // target is replaced as a whole when the copy commits.
    let target = Storage::open(data)?;
    target.write_blocking(|conn| {
        source.read_blocking(|src| -> Result<(), SyscallError> {
            let backup = rusqlite::backup::Backup::new(src, conn)?;
            backup.run_to_completion(1024, std::time::Duration::ZERO, None)?;
            Ok(())
        })
    })?;
    Ok(apps.len())
}

/// The settings `fazt server init` gives a new data file, checked before any file is
/// made (see [`NewNode::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    /// The domain apps are served under.
    pub domain: Option<String>,
    /// The HTTP port.
    pub port: Option<u16>,
    /// HTTPS with ACME certificates for `domain`.
    pub https: bool,
}

impl NewNode {
    /// Checks the settings and a chosen admin password, so that a typo leaves no file
    /// behind: a bad domain (`bad_value`), `--https` without a public domain
    /// (`https_needs_domain`), a short password (`bad_password`).
    pub fn check(
        domain: Option<&str>,
        port: Option<u16>,
        https: bool,
        password: Option<&str>,
    ) -> Result<NewNode, SyscallError> {
        let domain = domain.map(|d| config::validate(Setting::Domain.name(), d)).transpose()?;
        if https && !domain.as_deref().is_some_and(|d| d.contains('.') && !d.ends_with(".localhost")) {
            return Err(SyscallError::refused(
                Kind::Invalid,
                "https_needs_domain",
                "--https needs a public --domain such as example.com (on a LAN, use `fazt config set https.mode lan` instead)",
            ));
        }
        if let Some(p) = password {
            crate::security::password::check_length(p)
                .map_err(|e| SyscallError::refused(Kind::Invalid, "bad_password", e.to_string()))?;
        }
        Ok(NewNode { domain, port, https })
    }
}

/// Writes the settings of a new node into its fresh data file.
pub fn init(storage: &Storage, caller: &Caller, node: &NewNode) -> Result<(), SyscallError> {
    caller.require_admin()?;
    let set = |key: &str, value: &str| config::set(storage, key, value).map(drop);
    if let Some(domain) = &node.domain {
        set(Setting::Domain.name(), domain)?;
    }
    if node.https {
        set(Setting::HttpsMode.name(), "acme")?;
        set(Setting::HttpsRedirect.name(), "true")?;
        set(Setting::Port.name(), "80")?;
    }
    if let Some(port) = node.port {
        set(Setting::Port.name(), &port.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::node;

    /// A board that knows nothing, as a board without `/proc` would.
    struct NoBoard;
    impl Board for NoBoard {
        fn info(&self) -> Result<fazt_hal::board::BoardInfo, fazt_hal::board::Error> {
            Err(fazt_hal::board::Error::Unsupported)
        }
    }

    #[test]
    fn the_node_wide_pages_and_offline_commands_are_the_admins() {
        let (dir, storage, _bus) = node();
        let data = dir.path().join("data.db");
        let copy = dir.path().join("copy.db");
        let app = Caller::app(crate::syscall::apps::tests::id_of(&storage, "a"));
        let visitor = Caller::Visitor { ip: Some("127.0.0.1".parse().unwrap()) };
        for caller in [&app, &visitor] {
            let refused = [
                smol::block_on(health(&storage, &NoBoard, caller)).unwrap_err(),
                smol::block_on(database(&storage, caller)).unwrap_err(),
                storage_status(&data, caller).unwrap_err(),
                migration_plan(&data, caller).unwrap_err(),
                migrate(&data, caller).unwrap_err(),
                backup(&data, &copy, false, caller).unwrap_err(),
                restore(&data, &copy, caller).unwrap_err(),
                init(&storage, caller, &NewNode { domain: None, port: Some(1), https: false }).unwrap_err(),
            ];
            for err in refused {
                assert_eq!((err.code(), err.kind()), ("forbidden", Kind::Forbidden), "{caller:?}");
            }
        }
        assert!(!copy.exists(), "a refused backup writes nothing");
        let health = smol::block_on(health(&storage, &NoBoard, &Caller::Local)).unwrap();
        assert_eq!((health.apps, health.board), (5, None));
        let db = smol::block_on(database(&storage, &Caller::Kernel)).unwrap();
        assert!(db.schema_version > 0 && db.blobs > 0, "{db:?}");
        assert!(migration_plan(&data, &Caller::Local).unwrap().pending.is_empty());
        assert!(backup(&data, &copy, false, &Caller::Local).unwrap() > 0);
        assert_eq!(restore(&copy, &data, &Caller::Local).unwrap(), 5);
    }

    #[test]
    fn hostile_files_and_settings_are_refused_and_change_nothing() {
        let (dir, storage, _bus) = node();
        let data = dir.path().join("data.db");
        let local = Caller::Local;
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all, just bytes that go on for a while").unwrap();
        let before = std::fs::read(&junk).unwrap();
        assert_eq!(backup(&data, &junk, false, &local).unwrap_err().code(), "exists");
        assert_eq!(std::fs::read(&junk).unwrap(), before, "a refused backup keeps the file");
        assert_eq!(restore(&dir.path().join("none.db"), &data, &local).unwrap_err().code(), "not_found");
        assert_eq!(restore(&junk, &data, &local).unwrap_err().code(), "not_a_backup");
        assert_eq!(storage_status(&junk, &local).unwrap_err().code(), "storage_error");
        assert_eq!(storage.read_blocking(crate::apps::list).unwrap().len(), 5, "the data file is untouched");
        for (domain, https, password, code) in [
            (Some("bad domain!"), false, None, "bad_value"),
            (Some("../x"), false, None, "bad_value"),
            (None, true, None, "https_needs_domain"),
            (Some("box.localhost"), true, None, "https_needs_domain"),
            (None, false, Some("short"), "bad_password"),
        ] {
            let err = NewNode::check(domain, None, https, password).unwrap_err();
            assert_eq!((err.code(), err.kind()), (code, Kind::Invalid), "{domain:?} {https} {password:?}");
        }
        let ok = NewNode::check(Some("example.com"), Some(8080), true, Some("long enough")).unwrap();
        init(&storage, &local, &ok).unwrap();
        let config = crate::config::NodeConfig::load(&storage).unwrap();
        assert_eq!((config.domain(), config.get(Setting::Port)), ("example.com", "8080"));
    }
}
