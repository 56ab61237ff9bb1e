//! Per-app runtime limits, with the node-wide defaults from the serverless spec.

use super::{Caller, SyscallError};
use crate::storage::Storage;
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Arc;
use std::time::Duration;

/// Wall time of one invocation by default (spec: 30 s).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Memory of one app's JavaScript heap by default (spec: 64 MB).
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// Bytes of KV data (keys and values) an app may keep by default.
pub const DEFAULT_STORAGE_BYTES: u64 = 256 << 20;
/// Largest script file (spec: 1 MB).
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Deepest `require` chain (spec: 10).
pub const MAX_REQUIRE_DEPTH: u32 = 10;

/// The limits one invocation runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget.
    pub timeout: Duration,
    /// JavaScript heap budget in bytes.
    pub memory_bytes: u64,
    /// Storage quota: bytes of KV keys and values the app may keep.
    pub storage_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            storage_bytes: DEFAULT_STORAGE_BYTES,
        }
    }
}

/// The effective limits of the app `app_id`, for the kernel running it (see
/// [`Caller::Kernel`]), the admin or the app itself.
pub fn get(conn: &Connection, caller: &Caller, app_id: &str) -> Result<Limits, SyscallError> {
    caller.require_app(app_id)?;
    effective(conn, app_id)
}

/// The effective limits of an app, once the caller is checked.
fn effective(conn: &Connection, app_id: &str) -> Result<Limits, SyscallError> {
    let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT timeout_ms, memory_bytes, storage_bytes FROM app_limits WHERE app_id = ?1")?
        .query_row([app_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let mut limits = Limits::default();
    if let Some((timeout, memory, storage)) = row {
        if let Some(bytes) = storage {
            limits.storage_bytes = bytes as u64;
        }
        if let Some(ms) = timeout {
            limits.timeout = Duration::from_millis(ms as u64);
        }
        if let Some(bytes) = memory {
            limits.memory_bytes = bytes as u64;
        }
    }
    Ok(limits)
}

/// A change of an app's limits; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct LimitsChange {
    /// Wall time per invocation, in ms (10 ms to 10 minutes).
    pub timeout_ms: Option<u64>,
    /// JavaScript memory, in bytes (1 MB to 1 GB).
    pub memory_bytes: Option<u64>,
    /// Storage quota, in bytes (0 to 1 TB).
    pub storage_bytes: Option<u64>,
}

/// Changes an app's limits. Bounded so that no app can be configured to hold a worker
/// for more than 10 minutes or to take 1 GB of memory.
pub fn set(conn: &Connection, app_id: &str, change: LimitsChange) -> Result<Limits, SyscallError> {
    let LimitsChange { timeout_ms, memory_bytes, storage_bytes } = change;
    if timeout_ms.is_some_and(|t| !(10..=600_000).contains(&t)) {
        return Err(SyscallError::Invalid("timeout must be 10 ms to 10 minutes".into()));
    }
    if memory_bytes.is_some_and(|m| !((1 << 20)..=(1 << 30)).contains(&m)) {
        return Err(SyscallError::Invalid("memory must be 1 MB to 1 GB".into()));
    }
    if storage_bytes.is_some_and(|s| s > 1 << 40) {
        return Err(SyscallError::Invalid("storage must be at most 1 TB".into()));
    }
    conn.execute(
        "INSERT INTO app_limits(app_id, timeout_ms, memory_bytes, storage_bytes) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(app_id) DO UPDATE SET timeout_ms = coalesce(excluded.timeout_ms, timeout_ms),
             memory_bytes = coalesce(excluded.memory_bytes, memory_bytes),
             storage_bytes = coalesce(excluded.storage_bytes, storage_bytes)",
        params![
            app_id,
            timeout_ms.map(|t| t as i64),
            memory_bytes.map(|m| m as i64),
            storage_bytes.map(|s| s as i64)
        ],
    )?;
    effective(conn, app_id)
}

/// The limits of the app `app` (id or name) and the storage bytes it uses, for the admin
/// or the app itself.
pub async fn show(storage: &Arc<Storage>, caller: &Caller, app: &str) -> Result<(Limits, u64), SyscallError> {
    let app = super::apps::find(storage, caller, app).await?;
    storage.read(move |c| Ok((effective(c, &app.id)?, super::kv::usage(c, &app.id)?))).await
}

/// Changes the limits of the app `app` (id or name): only the admin may, so that no app
/// raises its own. Answers the limits after and the storage bytes used.
pub async fn change(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: &str,
    change: LimitsChange,
) -> Result<(Limits, u64), SyscallError> {
    caller.require_admin()?;
    let app = super::apps::find(storage, caller, app).await?;
    storage.write(move |c| Ok((set(c, &app.id, change)?, super::kv::usage(c, &app.id)?))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::{id_of, node};

    #[test]
    fn an_app_reads_its_limits_but_cannot_raise_them_and_out_of_range_changes_nothing() {
        let (_dir, storage, _bus) = node();
        let a = Caller::app(id_of(&storage, "a"));
        smol::block_on(async {
            assert_eq!(show(&storage, &a, "a").await.unwrap().0, Limits::default());
            assert_eq!(show(&storage, &a, "b").await.unwrap_err().code(), "forbidden");
            let raise = LimitsChange { memory_bytes: Some(1 << 30), ..Default::default() };
            assert_eq!(change(&storage, &a, "a", raise).await.unwrap_err().code(), "forbidden");
            for bad in [
                LimitsChange { timeout_ms: Some(0), ..Default::default() },
                LimitsChange { timeout_ms: Some(u64::MAX), ..Default::default() },
                LimitsChange { memory_bytes: Some(1), ..Default::default() },
                LimitsChange { storage_bytes: Some(u64::MAX), ..Default::default() },
            ] {
                assert_eq!(change(&storage, &Caller::Local, "a", bad).await.unwrap_err().code(), "invalid");
            }
            assert_eq!(show(&storage, &a, "a").await.unwrap().0, Limits::default(), "nothing changed");
            let (after, _) = change(&storage, &Caller::Local, "a", raise).await.unwrap();
            assert_eq!(after.memory_bytes, 1 << 30);
        });
    }
}
