//! The system apps (landing `root`, `admin`, `404`), embedded in the binary.
//!
//! They are deployed like any site, through the same VFS, so they are served, cached and
//! backed up the same way. On start, when the embedded files differ from what the
//! database holds (first start, or a new binary), they are deployed again.

use crate::fs::deploy::{store_blob, switch_deployment, DeployError};
use crate::fs::{content_hash, content_type_for};
use crate::storage::state::{self, StateKey};
use crate::storage::Storage;
use crate::time::UnixMillis;
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

static SYSTEM_APPS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/system-apps");

/// The system apps by name: the folder names under `firmware/system-apps/`.
pub const NAMES: &[&str] = &["root", "admin", "404"];

fn embedded_files(app: &str) -> Vec<(String, &'static [u8])> {
    let mut out = Vec::new();
    if let Some(dir) = SYSTEM_APPS.get_dir(app) {
        collect(dir, app, &mut out);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn collect(dir: &'static Dir<'static>, prefix: &str, out: &mut Vec<(String, &'static [u8])>) {
    for file in dir.files() {
        let rel = file.path().to_string_lossy();
        let rel = rel.strip_prefix(prefix).unwrap_or(&rel).trim_start_matches('/').to_string();
        out.push((rel, file.contents()));
    }
    for sub in dir.dirs() {
        collect(sub, prefix, out);
    }
}

/// A fingerprint of every embedded system file.
fn embedded_hash() -> String {
    let mut hasher = Sha256::new();
    for app in NAMES {
        for (path, data) in embedded_files(app) {
            hasher.update(app.as_bytes());
            hasher.update(path.as_bytes());
            hasher.update(content_hash(data).as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// Deploys the embedded system apps when the database holds other versions; returns true
/// when it did.
pub fn seed(storage: &Storage, now: UnixMillis) -> Result<bool, DeployError> {
    let wanted = embedded_hash();
    storage.write_durable_blocking(|conn| {
        let tx = conn.transaction()?;
        if state::get(&tx, StateKey::SystemAppsHash)?.as_deref() == Some(wanted.as_str()) {
            return Ok(false);
        }
        for app in NAMES {
            let mut files = BTreeMap::new();
            for (path, data) in embedded_files(app) {
                let hash = content_hash(data);
                store_blob(&tx, &hash, data, &content_type_for(&path), now)?;
                files.insert(path, (hash, data.len() as u64));
            }
            switch_deployment(&tx, app, true, &files, now)?;
        }
        state::set(&tx, StateKey::SystemAppsHash, &wanted)?;
        tx.commit()?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_app_has_an_index() {
        for app in NAMES {
            let files = embedded_files(app);
            assert!(files.iter().any(|(p, _)| p == "index.html"), "{app} lacks index.html: {files:?}");
        }
    }

    #[test]
    fn seeding_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        assert!(seed(&storage, 1).unwrap());
        assert!(!seed(&storage, 2).unwrap());
        let apps = storage.read_blocking(crate::apps::list).unwrap();
        assert_eq!(apps.iter().filter(|a| a.system).count(), 3);
        assert!(apps.iter().all(|a| crate::ids::is_uuid(&a.id)), "system apps have UUIDs: {apps:?}");
    }
}
