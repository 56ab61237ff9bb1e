//! `/api/system`: health, database, configuration and keys.

use crate::kernel::Kernel;
use crate::net::cache::BlobCache;
use crate::net::response::{ok, ApiError, Resp};
use crate::syscall::{self, Caller};
use std::sync::Arc;

/// Unauthenticated `GET /api/system/health`: only says the node is up (for load
/// balancers and `fazt server status` without a token).
pub fn liveness(_kernel: &Arc<Kernel>) -> Resp {
    ok(serde_json::json!({ "status": "ok", "version": crate::VERSION }))
}

/// `GET /api/system/health` with credentials: the full picture.
pub async fn health(kernel: &Arc<Kernel>, blobs: &BlobCache) -> Result<Resp, ApiError> {
    let apps = kernel
        .storage
        .read(|conn| {
            Ok::<i64, ApiError>(conn.query_row(
                "SELECT count(*) FROM apps WHERE deleted_at IS NULL",
                [],
                |r| r.get(0),
            )?)
        })
        .await?;
    let board = kernel.board.info().ok();
    Ok(ok(serde_json::json!({
        "status": "ok",
        "version": crate::VERSION,
        "uptime_secs": kernel.started.elapsed().as_secs(),
        "apps": apps,
        "db_size_bytes": kernel.storage.size_bytes(),
        "memory_rss_bytes": kernel.board.process_rss_bytes().unwrap_or(0),
        "board": board.as_ref().map(|b| b.model.clone()),
        "memory_total_bytes": board.as_ref().map(|b| b.memory_total_bytes),
        "cache": blobs.stats(),
        "keys": kernel.keys.holder.describe(),
    })))
}

/// `GET /api/system/keys`: where the keys are held, and every key and sealed secret
/// (names, algorithms, fingerprints; never a secret).
pub async fn keys(kernel: &Arc<Kernel>, caller: &Caller) -> Result<Resp, ApiError> {
    let (storage, caller) = (kernel.storage.clone(), caller.clone());
    let entries = blocking::unblock(move || syscall::keys::list(&storage, &caller)).await?;
    Ok(ok(serde_json::json!({
        "holder": kernel.keys.holder.describe(),
        "backend": match kernel.keys.holder {
            crate::keys::Holder::Software { .. } => "software",
            crate::keys::Holder::Tpm { .. } => "tpm",
        },
        "keys": entries,
    })))
}

/// `GET /api/system/db`.
pub async fn db(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let storage = kernel.storage.clone();
    let (version, pages, page_size, blobs): (i64, i64, i64, i64) = kernel
        .storage
        .read(move |conn| -> Result<_, ApiError> {
            let version = storage.schema_version().unwrap_or(0);
            let pages = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let blobs = conn.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
            Ok((version, pages, page_size, blobs))
        })
        .await?;
    Ok(ok(serde_json::json!({
        "path": kernel.storage.path().display().to_string(),
        "size_bytes": kernel.storage.size_bytes(),
        "schema_version": version,
        "page_count": pages,
        "page_size": page_size,
        "blobs": blobs,
        "journal_mode": "wal",
    })))
}

/// `GET /api/system/config`: the settings the node runs with.
pub fn config(kernel: &Arc<Kernel>, caller: &Caller) -> Result<Resp, ApiError> {
    let settings = syscall::config::list(&kernel.config, caller)?;
    let all: serde_json::Map<String, serde_json::Value> =
        settings.into_iter().map(|(key, value)| (key.name().to_string(), value.into())).collect();
    Ok(ok(serde_json::json!({ "config": all })))
}
