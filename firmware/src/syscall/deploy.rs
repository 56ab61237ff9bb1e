//! The storage part of a deploy: an uploaded archive (already spooled to a file by
//! `net`, which owns the streaming) becomes the app's new current deployment in one
//! transaction, and which content hashes the node lacks (so a client uploads only those).

use super::{Caller, Kind, SyscallError};
use crate::events::{Events, Kind as EventKind};
use crate::fs::archive::Limits;
use crate::fs::deploy::{deploy_archive, missing_hashes, validate_app_name, DeployReport};
use crate::fs::is_content_hash;
use crate::storage::Storage;
use crate::time::Clock;
use std::sync::Arc;

/// Checks that the caller may deploy and that `name` can be an app's name, before a
/// single byte is uploaded.
pub fn begin(caller: &Caller, name: &str) -> Result<(), SyscallError> {
    caller.require_admin()?;
    Ok(validate_app_name(name)?)
}

/// Which of `hashes` (SHA-256 hex digests, at most `max` of them) the node lacks.
pub async fn missing(
    storage: &Arc<Storage>,
    caller: &Caller,
    hashes: Vec<String>,
    max: u64,
) -> Result<Vec<String>, SyscallError> {
    caller.require_admin()?;
    if hashes.len() as u64 > max {
        return Err(SyscallError::refused(Kind::TooLarge, "too_large", "more hashes than deploy.max_files"));
    }
    if let Some(bad) = hashes.iter().find(|h| !is_content_hash(h)) {
        let shown: String = bad.chars().take(80).collect();
        return Err(SyscallError::refused(
            Kind::Invalid,
            "bad_hash",
            format!("'{}' is not a SHA-256 hex digest", shown.escape_default()),
        ));
    }
    Ok(storage.read(move |conn| missing_hashes(conn, &hashes)).await?)
}

/// Makes the tar or tar.gz `archive` (with or without a manifest) the current
/// deployment of the app `name` (created if new), within `limits`, durably; tells the
/// event bus. A refused archive changes nothing.
pub async fn deploy(
    storage: &Arc<Storage>,
    clock: &Clock,
    events: &Events,
    caller: &Caller,
    name: &str,
    archive: std::fs::File,
    limits: Limits,
) -> Result<DeployReport, SyscallError> {
    begin(caller, name)?;
    let now = clock.now_millis();
    let app = name.to_string();
    let report = storage
        .write_durable(move |conn| -> Result<_, SyscallError> {
            let tx = conn.transaction()?;
            let report = deploy_archive(&tx, &app, archive, limits, now)?;
            tx.commit()?;
            Ok(report)
        })
        .await
        .inspect_err(|e| tracing::warn!(app = %name, error = %e, "deploy refused"))?;
    tracing::info!(app = %name, files = report.files, new = report.new_blobs, bytes = report.size_bytes, "deployed");
    events.notify(
        EventKind::AppDeployed,
        Some((&report.app_id, &report.app)),
        serde_json::json!({
            "deployment": report.deployment_id, "files": report.files, "bytes": report.size_bytes,
            "new_files": report.new_blobs, "new_bytes": report.new_bytes,
        }),
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::node;
    use std::io::{Seek, Write};

    fn limits() -> Limits {
        Limits { max_site_bytes: 1 << 20, max_file_bytes: 1 << 20, max_files: 10 }
    }

    fn spool(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.rewind().unwrap();
        file
    }

    #[test]
    fn apps_cannot_deploy_and_hostile_archives_change_nothing() {
        let (_dir, storage, bus) = node();
        let clock = Clock::new();
        let app = Caller::app("a");
        smol::block_on(async {
            assert_eq!(begin(&app, "a").unwrap_err().code(), "forbidden");
            let err = deploy(&storage, &clock, &bus, &app, "c", spool(b""), limits()).await.unwrap_err();
            assert_eq!(err.code(), "forbidden");
            assert_eq!(missing(&storage, &app, vec![], 10).await.unwrap_err().code(), "forbidden");
            assert_eq!(begin(&Caller::Local, "Bad_Name").unwrap_err().code(), "bad_app_name");
            let garbage = deploy(&storage, &clock, &bus, &Caller::Local, "c", spool(b"not a tar"), limits());
            let garbage = garbage.await.unwrap_err();
            assert_eq!(garbage.kind(), Kind::Invalid, "{garbage}");
            let hashes = vec!["nope".to_string()];
            assert_eq!(missing(&storage, &Caller::Local, hashes, 10).await.unwrap_err().code(), "bad_hash");
            let many = vec!["0".repeat(64); 11];
            let err = missing(&storage, &Caller::Local, many, 10).await.unwrap_err();
            assert_eq!((err.code(), err.kind()), ("too_large", Kind::TooLarge));
            assert_eq!(
                crate::syscall::apps::find(&storage, &Caller::Local, "c").await.unwrap_err().code(),
                "not_found",
                "no refused deploy made the app"
            );
            assert_eq!(bus.last_id(), 0, "nor an event");
        });
    }
}
