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
pub async fn health(kernel: &Arc<Kernel>, blobs: &BlobCache, caller: &Caller) -> Result<Resp, ApiError> {
    let health = syscall::system::health(&kernel.storage, kernel.board.as_ref(), caller).await?;
    Ok(ok(serde_json::json!({
        "status": "ok",
        "version": crate::VERSION,
        "uptime_secs": kernel.started.elapsed().as_secs(),
        "apps": health.apps,
        "db_size_bytes": health.db_size_bytes,
        "memory_rss_bytes": health.memory_rss_bytes,
        "board": health.board,
        "memory_total_bytes": health.memory_total_bytes,
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
pub async fn db(kernel: &Arc<Kernel>, caller: &Caller) -> Result<Resp, ApiError> {
    let db = syscall::system::database(&kernel.storage, caller).await?;
    Ok(ok(serde_json::json!({
        "path": db.path.display().to_string(),
        "size_bytes": db.size_bytes,
        "schema_version": db.schema_version,
        "page_count": db.page_count,
        "page_size": db.page_size,
        "blobs": db.blobs,
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
