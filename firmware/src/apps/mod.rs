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
