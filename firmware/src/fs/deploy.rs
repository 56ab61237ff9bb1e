//! Deploying a site: store new blobs, then switch the app to the new file table in the
//! same transaction.

use super::archive::{read_archive, ArchiveFile, Limits};
use super::path::{normalize_site_path, PathError};
use super::{compress, content_hash, content_type_for, is_content_hash};
use crate::storage::StorageError;
use crate::time::UnixMillis;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

/// The name of the manifest entry the CLI puts first in its archive.
pub const MANIFEST_NAME: &str = ".fazt-manifest.json";

/// Why a deploy was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A path in the archive or manifest is unsafe.
    #[error("bad path in archive: {0}")]
    BadPath(PathError),
    /// An entry is a symlink, device or similar.
    #[error("bad archive entry: {0}; only regular files and folders are allowed")]
    BadEntry(String),
    /// Some limit was exceeded.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The stream is not a valid tar/tar.gz.
    #[error("the archive is damaged or not a tar/tar.gz: {0}")]
    Corrupt(String),
    /// The stream ended early.
    #[error("the upload ended early: {0}")]
    Truncated(String),
    /// The manifest is malformed or disagrees with the archive.
    #[error("bad manifest: {0}")]
    Manifest(String),
    /// A file's size or hash in the manifest is not that of its content (uploaded or
    /// stored).
    #[error("the manifest disagrees with the content: {0}")]
    Mismatch(String),
    /// The manifest names content the node does not have and the archive lacks.
    #[error("the node lacks the content of '{0}'; run the deploy again")]
    MissingBlob(String),
    /// Nothing to serve.
    #[error("the site has no files")]
    Empty,
    /// The app name is reserved or malformed.
    #[error("{0}")]
    BadName(String),
    /// The site's `_redirects` file is malformed (see [`super::redirects`]).
    #[error("{0}")]
    BadRedirects(String),
    /// The spooled upload could not be read back.
    #[error("cannot read the spooled upload: {0}")]
    Io(String),
    /// The database failed (full, busy, ...).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for DeployError {
    fn from(err: rusqlite::Error) -> Self {
        DeployError::Storage(err.into())
    }
}

impl DeployError {
    /// Stable machine-readable code for the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            DeployError::BadPath(_) => "archive_bad_path",
            DeployError::BadEntry(_) => "archive_bad_entry",
            DeployError::TooLarge(_) => "too_large",
            DeployError::Corrupt(_) => "archive_corrupt",
            DeployError::Truncated(_) => "upload_truncated",
            DeployError::Manifest(_) => "bad_manifest",
            DeployError::Mismatch(_) => "manifest_mismatch",
            DeployError::MissingBlob(_) => "missing_content",
            DeployError::Empty => "empty_site",
            DeployError::BadName(_) => "bad_app_name",
            DeployError::BadRedirects(_) => "bad_redirects",
            DeployError::Io(_) => "io_error",
            DeployError::Storage(_) => "storage_error",
        }
    }
}

/// One file of a manifest: what the site should contain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Site path.
    pub path: String,
    /// SHA-256 of the content, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
}

/// The full list of files of a deploy; the archive then carries only the new contents.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    /// Every file of the site.
    pub files: Vec<ManifestFile>,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployReport {
    /// The app's stable id.
    pub app_id: String,
    /// The app's name.
    pub app: String,
    /// The new deployment's id.
    pub deployment_id: String,
    /// Files in the site.
    pub files: u64,
    /// Total size of the site.
    pub size_bytes: u64,
    /// Files whose content arrived in this upload and was new to the node.
    pub new_blobs: u64,
    /// Bytes of new content stored.
    pub new_bytes: u64,
}

/// Names that cannot be deployed to: they are hosts with a fixed meaning.
pub const RESERVED_NAMES: &[&str] = &["admin", "root", "404", "www", "api"];

/// Checks an app name: a DNS label (it becomes `<name>.<domain>`).
pub fn validate_app_name(name: &str) -> Result<(), DeployError> {
    if !crate::rules::names::is_dns_label(name) {
        return Err(DeployError::BadName(format!(
            "invalid app name '{}': use 1-63 lowercase letters, digits and '-', not starting or ending with '-'",
            name.escape_default()
        )));
    }
    Ok(())
}

/// True when the node already stores content with this hash.
fn has_blob(tx: &Transaction, hash: &str) -> Result<bool, DeployError> {
    Ok(tx.query_row("SELECT count(*) > 0 FROM blobs WHERE hash = ?1", [hash], |r| r.get(0))?)
}

fn insert_blob(
    tx: &Transaction,
    blob: &NewBlob,
    variants: &Variants,
    now: UnixMillis,
) -> Result<(), DeployError> {
    tx.execute(
        "INSERT OR IGNORE INTO blobs(hash, size, data, gzip, brotli, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![blob.hash, blob.data.len() as i64, blob.data, variants.0, variants.1, now],
    )?;
    Ok(())
}

/// Stores `data` under its hash unless present; returns true when it was new.
pub fn store_blob(
    tx: &Transaction,
    hash: &str,
    data: &[u8],
    content_type: &str,
    now: UnixMillis,
) -> Result<bool, DeployError> {
    if has_blob(tx, hash)? {
        return Ok(false);
    }
    let blob =
        NewBlob { hash: hash.to_string(), data: data.to_vec(), content_type: content_type.to_string() };
    insert_blob(tx, &blob, &compress::variants(content_type, data), now)?;
    Ok(true)
}

/// New content waiting for its compressed variants.
struct NewBlob {
    hash: String,
    data: Vec<u8>,
    content_type: String,
}

/// The gzip and brotli variants of one blob.
type Variants = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Compressing is the slow part of a deploy, so new files are gathered into batches of
/// this many bytes and compressed on every core at once. The batch bounds the memory a
/// deploy holds beyond the file being read.
const BATCH_BYTES: usize = 16 << 20;

/// Compresses a batch on all cores and stores it.
fn flush_batch(tx: &Transaction, batch: &mut Vec<NewBlob>, now: UnixMillis) -> Result<(), DeployError> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(batch.len().max(1));
    let mut variants: Vec<Option<Variants>> = (0..batch.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let mut shares: Vec<Vec<(usize, &mut Option<Variants>)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, slot) in variants.iter_mut().enumerate() {
            shares[i % threads].push((i, slot));
        }
        for share in shares {
            let batch = &*batch;
            scope.spawn(move || {
                for (i, slot) in share {
                    *slot = Some(compress::variants(&batch[i].content_type, &batch[i].data));
                }
            });
        }
    });
    for (blob, variants) in batch.iter().zip(variants) {
        insert_blob(tx, blob, &variants.unwrap_or((None, None)), now)?;
    }
    batch.clear();
    Ok(())
}

/// Returns which of `hashes` the node does not have.
pub fn missing_hashes(conn: &rusqlite::Connection, hashes: &[String]) -> Result<Vec<String>, StorageError> {
    let mut stmt = conn.prepare_cached("SELECT count(*) > 0 FROM blobs WHERE hash = ?1")?;
    let mut missing = Vec::new();
    for hash in hashes {
        let present: bool = stmt.query_row([hash], |r| r.get(0))?;
        if !present {
            missing.push(hash.clone());
        }
    }
    Ok(missing)
}

/// Deploys a tar/tar.gz stream to `app_name` inside `tx` (the caller commits).
pub fn deploy_archive(
    tx: &Transaction,
    app_name: &str,
    input: impl Read,
    limits: Limits,
    now: UnixMillis,
) -> Result<DeployReport, DeployError> {
    validate_app_name(app_name)?;
    if RESERVED_NAMES.contains(&app_name) {
        return Err(DeployError::BadName(format!("'{app_name}' is reserved for the system")));
    }
    let mut manifest: Option<Manifest> = None;
    let mut uploaded: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let (mut new_blobs, mut new_bytes) = (0u64, 0u64);
    let mut batch: Vec<NewBlob> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut pending = std::collections::HashSet::new();
    read_archive(input, limits, |ArchiveFile { path, data }| {
        if path == MANIFEST_NAME {
            if manifest.is_some() {
                return Err(DeployError::Manifest("two manifests in one archive".into()));
            }
            manifest = Some(serde_json::from_slice(&data).map_err(|e| DeployError::Manifest(e.to_string()))?);
            return Ok(());
        }
        let hash = content_hash(&data);
        let size = data.len() as u64;
        if uploaded.insert(path.clone(), (hash.clone(), size)).is_some() {
            return Err(DeployError::Manifest(format!("'{path}' appears twice in the archive")));
        }
        if !pending.contains(&hash) && !has_blob(tx, &hash)? {
            new_blobs += 1;
            new_bytes += size;
            batch_bytes += data.len();
            pending.insert(hash.clone());
            batch.push(NewBlob { hash, data, content_type: content_type_for(&path) });
            if batch_bytes >= BATCH_BYTES {
                flush_batch(tx, &mut batch, now)?;
                batch_bytes = 0;
            }
        }
        Ok(())
    })?;
    flush_batch(tx, &mut batch, now)?;

    let files = match manifest {
        None => uploaded,
        Some(manifest) => merge_manifest(tx, manifest, uploaded, limits)?,
    };
    let mut report = switch_deployment(tx, app_name, false, &files, now)?;
    report.new_blobs = new_blobs;
    report.new_bytes = new_bytes;
    Ok(report)
}

/// Checks a manifest against the uploaded files and the blobs already stored.
fn merge_manifest(
    tx: &Transaction,
    manifest: Manifest,
    uploaded: BTreeMap<String, (String, u64)>,
    limits: Limits,
) -> Result<BTreeMap<String, (String, u64)>, DeployError> {
    if manifest.files.len() as u64 > limits.max_files {
        return Err(DeployError::TooLarge(format!("more than {} files", limits.max_files)));
    }
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for file in manifest.files {
        let path = normalize_site_path(&file.path).map_err(DeployError::BadPath)?;
        if !is_content_hash(&file.hash) {
            return Err(DeployError::Manifest(format!("'{path}' has a malformed hash")));
        }
        total = total.saturating_add(file.size);
        if file.size > limits.max_file_bytes || total > limits.max_site_bytes {
            return Err(DeployError::TooLarge(format!("'{path}' takes the site over the size limit")));
        }
        // The size recorded for the file is the one checked here against the bytes
        // received or stored: it becomes the Content-Length and the Range arithmetic of
        // every answer, so a manifest must not be able to make it up.
        let actual = match uploaded.get(&path) {
            Some((hash, _)) if *hash != file.hash => {
                return Err(DeployError::Mismatch(format!(
                    "'{path}' has the SHA-256 {hash}, not the manifest's {}",
                    file.hash
                )));
            }
            Some((_, size)) => *size,
            None => {
                let size: Option<i64> = tx
                    .query_row("SELECT size FROM blobs WHERE hash = ?1", [&file.hash], |r| r.get(0))
                    .optional()?;
                match size {
                    Some(size) => size as u64,
                    None => return Err(DeployError::MissingBlob(path)),
                }
            }
        };
        if actual != file.size {
            return Err(DeployError::Mismatch(format!(
                "'{path}' is {actual} bytes, but the manifest says {}",
                file.size
            )));
        }
        if files.insert(path.clone(), (file.hash, file.size)).is_some() {
            return Err(DeployError::Manifest(format!("'{path}' is listed twice")));
        }
    }
    if let Some(extra) = uploaded.keys().find(|p| !files.contains_key(*p)) {
        return Err(DeployError::Manifest(format!("'{extra}' was uploaded but is not in the manifest")));
    }
    Ok(files)
}

/// Refuses a site whose `_redirects` file does not parse: a rule skipped or applied
/// without its condition could publish what the owner meant to hide.
fn check_redirects(tx: &Transaction, files: &BTreeMap<String, (String, u64)>) -> Result<(), DeployError> {
    use super::redirects::{Redirects, FILE_NAME, MAX_BYTES};
    let Some((hash, size)) = files.get(FILE_NAME) else { return Ok(()) };
    if *size > MAX_BYTES as u64 {
        return Err(DeployError::BadRedirects(format!(
            "_redirects is {size} bytes, more than the {MAX_BYTES} allowed"
        )));
    }
    let data: Option<Vec<u8>> =
        tx.query_row("SELECT data FROM blobs WHERE hash = ?1", [hash], |r| r.get(0)).optional()?;
    let data = data.ok_or_else(|| DeployError::MissingBlob(FILE_NAME.into()))?;
    Redirects::parse(&data).map_err(|e| DeployError::BadRedirects(e.to_string()))?;
    Ok(())
}

/// Creates the app if needed, writes a deployment with `files` and makes it current.
pub fn switch_deployment(
    tx: &Transaction,
    app_name: &str,
    system: bool,
    files: &BTreeMap<String, (String, u64)>,
    now: UnixMillis,
) -> Result<DeployReport, DeployError> {
    if files.is_empty() {
        return Err(DeployError::Empty);
    }
    check_redirects(tx, files)?;
    let existing: Option<(String, bool)> = tx
        .query_row("SELECT id, system FROM apps WHERE name = ?1 AND deleted_at IS NULL", [app_name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let app_id = match existing {
        Some((_, existing_system)) if existing_system != system => {
            return Err(DeployError::BadName(format!("'{app_name}' is reserved for the system")));
        }
        Some((id, _)) => id,
        None => {
            // A UUIDv7 stamped with the kernel clock's time of creation.
            let id = crate::ids::new_uuid_v7(now);
            tx.execute(
                "INSERT INTO apps(id, name, system, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, app_name, system, now],
            )?;
            id
        }
    };
    let deployment_id = crate::ids::new_id("dep");
    let size_bytes: u64 = files.values().map(|(_, size)| size).sum();
    tx.execute(
        "INSERT INTO deployments(id, app_id, created_at, file_count, size_bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![deployment_id, app_id, now, files.len() as i64, size_bytes as i64],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO files(deployment_id, app_id, path, hash, size, content_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (path, (hash, size)) in files {
            insert.execute(params![
                deployment_id,
                app_id,
                path,
                hash,
                *size as i64,
                content_type_for(path)
            ])?;
        }
    }
    tx.execute(
        "UPDATE apps SET current_deployment_id = ?1, updated_at = ?2 WHERE id = ?3",
        params![deployment_id, now, app_id],
    )?;
    Ok(DeployReport {
        app_id,
        app: app_name.into(),
        deployment_id,
        files: files.len() as u64,
        size_bytes,
        new_blobs: 0,
        new_bytes: 0,
    })
}
