//! Apps: every site is an app with a stable id, a name (its subdomain) and a current
//! deployment. The landing page, the admin dashboard and the not-found page are apps too
//! (system apps), embedded in the binary and seeded on first start.

pub mod system;

use crate::storage::StorageError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection, OptionalExtension};

/// An app as listed by the API and the CLI.
#[derive(Debug, Clone)]
pub struct AppSummary {
    /// Stable id: a UUIDv7, kept across renames.
    pub id: String,
    /// Name, used as the subdomain.
    pub name: String,
    /// True for the embedded system apps.
    pub system: bool,
    /// Bytes in the current deployment.
    pub size_bytes: u64,
    /// Files in the current deployment.
    pub file_count: u64,
    /// When the current deployment was made.
    pub deployed_at: Option<UnixMillis>,
    /// Deployments made so far.
    pub deployments: u64,
}

const SUMMARY_SELECT: &str =
    "SELECT a.id, a.name, a.system, coalesce(d.size_bytes, 0), coalesce(d.file_count, 0),
        d.created_at, (SELECT count(*) FROM deployments x WHERE x.app_id = a.id)
     FROM apps a LEFT JOIN deployments d ON d.id = a.current_deployment_id
     WHERE a.deleted_at IS NULL";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AppSummary> {
    Ok(AppSummary {
        id: r.get(0)?,
        name: r.get(1)?,
        system: r.get(2)?,
        size_bytes: r.get::<_, i64>(3)? as u64,
        file_count: r.get::<_, i64>(4)? as u64,
        deployed_at: r.get(5)?,
        deployments: r.get::<_, i64>(6)? as u64,
    })
}

/// Every live app, system apps first, then by name.
pub fn list(conn: &Connection) -> Result<Vec<AppSummary>, StorageError> {
    let sql = format!("{SUMMARY_SELECT} ORDER BY a.system DESC, a.name");
    let apps = conn.prepare_cached(&sql)?.query_map([], summary_row)?.collect::<Result<_, _>>()?;
    Ok(apps)
}

/// A live app by id or by name.
pub fn find(conn: &Connection, id_or_name: &str) -> Result<Option<AppSummary>, StorageError> {
    let sql = format!("{SUMMARY_SELECT} AND (a.id = ?1 OR a.name = ?1)");
    Ok(conn.prepare_cached(&sql)?.query_row([id_or_name], summary_row).optional()?)
}

/// Soft-deletes an app (its rows stay until a purge; the name becomes free at once).
pub fn delete(conn: &Connection, app_id: &str, now: UnixMillis) -> Result<bool, StorageError> {
    let n = conn.execute(
        "UPDATE apps SET deleted_at = ?1 WHERE id = ?2 AND deleted_at IS NULL AND system = 0",
        params![now, app_id],
    )?;
    Ok(n == 1)
}

/// Why a rename was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    /// No live app has this name or id.
    #[error("no app '{0}'")]
    NotFound(String),
    /// The new name is not a DNS label, or is reserved for the system.
    #[error("{0}")]
    BadName(String),
    /// A live app already has the new name.
    #[error("an app named '{0}' exists already; delete or rename that one first")]
    Taken(String),
    /// System apps keep their names: the node serves them on fixed hosts.
    #[error("'{0}' is a system app and cannot be renamed")]
    System(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for RenameError {
    fn from(err: rusqlite::Error) -> Self {
        RenameError::Storage(err.into())
    }
}

impl RenameError {
    /// Stable machine-readable code for the HTTP API and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            RenameError::NotFound(_) => "not_found",
            RenameError::BadName(_) => "bad_app_name",
            RenameError::Taken(_) => "name_taken",
            RenameError::System(_) => "system_app",
            RenameError::Storage(_) => "storage_error",
        }
    }
}

/// What a rename did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    /// The app's id (unchanged).
    pub id: String,
    /// Its name before.
    pub old_name: String,
    /// Its name now.
    pub new_name: String,
    /// False when the app already had that name (nothing was written).
    pub changed: bool,
}

/// Renames a live app, found by name or id, to `new_name`. Everything the app owns
/// (deployments, files, KV, env, logs, limits, usage, events) is keyed by its id, which
/// stays, so one row changes. Its old name is free at once. The caller forgets what it
/// cached under either name (sites, JavaScript instances).
pub fn rename(
    conn: &Connection,
    id_or_name: &str,
    new_name: &str,
    now: UnixMillis,
) -> Result<Renamed, RenameError> {
    crate::fs::deploy::validate_app_name(new_name).map_err(|e| RenameError::BadName(e.to_string()))?;
    if crate::fs::deploy::RESERVED_NAMES.contains(&new_name) {
        return Err(RenameError::BadName(format!("'{new_name}' is reserved for the system")));
    }
    let app = find(conn, id_or_name)?.ok_or_else(|| RenameError::NotFound(id_or_name.to_string()))?;
    if app.system {
        return Err(RenameError::System(app.name));
    }
    let renamed = Renamed { id: app.id, old_name: app.name, new_name: new_name.to_string(), changed: false };
    if renamed.old_name == new_name {
        return Ok(renamed);
    }
    if find(conn, new_name)?.is_some_and(|other| other.name == new_name) {
        return Err(RenameError::Taken(new_name.to_string()));
    }
    let result = conn.execute(
        "UPDATE apps SET name = ?1, updated_at = ?2 WHERE id = ?3 AND deleted_at IS NULL AND system = 0",
        params![new_name, now, renamed.id],
    );
    match result {
        Ok(1) => Ok(Renamed { changed: true, ..renamed }),
        Ok(_) => Err(RenameError::NotFound(id_or_name.to_string())),
        // The unique index on live names, should a writer have taken it in between.
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(RenameError::Taken(new_name.to_string()))
        }
        Err(err) => Err(err.into()),
    }
}

/// One file of an app's current deployment, for listings.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// Site path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Content hash.
    pub hash: String,
    /// Content-Type.
    pub content_type: String,
}

/// The files of an app's current deployment, by path.
pub fn files(conn: &Connection, app_id: &str) -> Result<Vec<FileSummary>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.path, f.size, f.hash, f.content_type FROM files f
         JOIN apps a ON a.current_deployment_id = f.deployment_id
         WHERE a.id = ?1 ORDER BY f.path",
    )?;
    let rows = stmt
        .query_map([app_id], |r| {
            Ok(FileSummary {
                path: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                hash: r.get(2)?,
                content_type: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use std::collections::BTreeMap;

    fn deploy(storage: &Storage, name: &str) -> String {
        storage
            .write_blocking(|c| {
                let tx = c.transaction()?;
                crate::fs::deploy::store_blob(&tx, &"a".repeat(64), b"hi", "text/html", 1)?;
                let files = BTreeMap::from([("index.html".to_string(), ("a".repeat(64), 2))]);
                let report = crate::fs::deploy::switch_deployment(&tx, name, false, &files, 1)?;
                tx.commit()?;
                Ok::<_, crate::fs::deploy::DeployError>(report.app_id)
            })
            .unwrap()
    }

    #[test]
    fn rename_keeps_the_id_and_frees_the_old_name() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let id = deploy(&storage, "blog");
        deploy(&storage, "shop");
        let renamed = storage.write_blocking(|c| rename(c, "blog", "journal", 5)).unwrap();
        assert_eq!(
            renamed,
            Renamed { id: id.clone(), old_name: "blog".into(), new_name: "journal".into(), changed: true }
        );
        let found = storage.read_blocking(|c| find(c, &id)).unwrap().unwrap();
        assert_eq!((found.name.as_str(), found.file_count), ("journal", 1));
        assert!(storage.read_blocking(|c| find(c, "blog")).unwrap().is_none());
        // By id, and to its own name: nothing to do.
        let same = storage.write_blocking(|c| rename(c, &id, "journal", 6)).unwrap();
        assert!(!same.changed);
        // The old name can be deployed again, as a new app.
        assert_ne!(deploy(&storage, "blog"), id);
    }

    #[test]
    fn refused_renames_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        crate::apps::system::seed(&storage, 1).unwrap();
        deploy(&storage, "blog");
        deploy(&storage, "shop");
        let before = storage.read_blocking(list).unwrap();
        for (from, to, code) in [
            ("blog", "shop", "name_taken"),
            ("blog", "Blog", "bad_app_name"),
            ("blog", "-x", "bad_app_name"),
            ("blog", "a.b", "bad_app_name"),
            ("blog", "", "bad_app_name"),
            ("blog", "blog\0", "bad_app_name"),
            ("blog", &"x".repeat(64), "bad_app_name"),
            ("blog", "admin", "bad_app_name"),
            ("blog", "www", "bad_app_name"),
            ("nope", "fine", "not_found"),
            ("admin", "fine", "system_app"),
            ("404", "fine", "system_app"),
        ] {
            let err = storage.write_blocking(|c| rename(c, from, to, 9)).unwrap_err();
            assert_eq!(err.code(), code, "{from} -> {to}: {err}");
        }
        let after = storage.read_blocking(list).unwrap();
        let names =
            |apps: &[AppSummary]| apps.iter().map(|a| (a.id.clone(), a.name.clone())).collect::<Vec<_>>();
        assert_eq!(names(&before), names(&after));
    }
}
