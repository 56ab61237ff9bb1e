//! `fazt deploy <folder> --name <app>`: upload only what the node lacks, switch
//! atomically, show progress and a summary.

use super::http::Client;
use super::{human_bytes, ClientArgs};
use crate::fs::deploy::{Manifest, ManifestFile, MANIFEST_NAME};
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `fazt deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The folder to publish.
    pub folder: PathBuf,
    /// The app name (its subdomain); default: the folder's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Also publish dot files and folders (except .git), which are skipped by default.
    #[arg(long)]
    pub include_hidden: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Hashes per `/api/deploy/check` request (about 70 KB of JSON).
const CHECK_CHUNK: usize = 1000;

/// OS litter never published.
const SKIPPED: &[&str] = &["Thumbs.db", "desktop.ini", MANIFEST_NAME];

/// True for names not published: OS litter, `.git`, and unless `include_hidden`, every
/// dot file and folder (`.env`, `.DS_Store`, `.vscode`), which hold secrets and tooling
/// more often than content. `.well-known` is content (ACME, security.txt) and always
/// published.
fn skipped(name: &str, include_hidden: bool) -> bool {
    SKIPPED.contains(&name)
        || name == ".git"
        || (name.starts_with('.') && name != ".well-known" && !include_hidden)
}

struct LocalFile {
    full: PathBuf,
    manifest: ManifestFile,
}

fn hash_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Where a symbolic link inside the site leads, when that is outside `root` (the site
/// folder, canonical) or nowhere; `None` for a link that stays inside.
fn leaves(root: &Path, link: &Path) -> Option<String> {
    match link.canonicalize() {
        Ok(target) if target.starts_with(root) => None,
        Ok(target) => Some(format!("a symbolic link to {}, outside the folder", target.display())),
        Err(_) => Some("a symbolic link that leads nowhere".into()),
    }
}

/// The files to publish, in path order. Symbolic links are followed while they stay
/// inside the folder (a shared asset, `latest.html -> v3.html`); one that leads out of
/// it (`~/.aws/credentials`, `/etc`) or nowhere is skipped with a warning naming it:
/// publishing whatever a link happens to point at would leak files the user never put
/// in the site.
fn scan(folder: &Path, include_hidden: bool) -> anyhow::Result<Vec<LocalFile>> {
    let root = folder.canonicalize().with_context(|| format!("reading {}", folder.display()))?;
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(folder).follow_links(true).sort_by_file_name().into_iter();
    let keep = |e: &walkdir::DirEntry| {
        if e.depth() == 0 {
            return true;
        }
        if skipped(&e.file_name().to_string_lossy(), include_hidden) {
            return false;
        }
        match e.path_is_symlink().then(|| leaves(&root, e.path())).flatten() {
            Some(why) => {
                let rel = e.path().strip_prefix(folder).unwrap_or(e.path());
                eprintln!("warning: skipped {}: {why}", rel.display());
                false
            }
            None => true,
        }
    };
    for entry in walker.filter_entry(keep) {
        let entry = match entry {
            // A dangling link fails before the filter sees it (following it fails).
            Err(err) if err.path().is_some_and(|p| p.is_symlink() && !p.exists()) => {
                let path = err.path().unwrap_or(folder);
                let rel = path.strip_prefix(folder).unwrap_or(path);
                eprintln!("warning: skipped {}: a symbolic link that leads nowhere", rel.display());
                continue;
            }
            entry => entry.with_context(|| format!("reading {}", folder.display()))?,
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(folder).unwrap_or(entry.path());
        let rel = rel
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", rel.display()))?
            .replace('\\', "/");
        let path =
            crate::fs::path::normalize_site_path(&rel).with_context(|| format!("cannot publish {rel}"))?;
        let (hash, size) = hash_file(entry.path())?;
        files.push(LocalFile {
            full: entry.path().to_path_buf(),
            manifest: ManifestFile { path, hash, size },
        });
    }
    Ok(files)
}

/// Runs `fazt deploy`.
pub fn run(args: DeployArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if !args.folder.is_dir() {
        bail!("{} is not a folder", args.folder.display());
    }
    let name = match args.name {
        Some(name) => name,
        None => args
            .folder
            .canonicalize()?
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .context("cannot guess an app name; pass --name")?,
    };
    crate::fs::deploy::validate_app_name(&name)?;
    let client = Client::from_args(&args.client)?;

    let files = scan(&args.folder, args.include_hidden)?;
    if files.is_empty() {
        bail!("{} has no files to publish", args.folder.display());
    }
    let total: u64 = files.iter().map(|f| f.manifest.size).sum();
    let hashes: Vec<String> =
        files.iter().map(|f| f.manifest.hash.clone()).collect::<HashSet<_>>().into_iter().collect();
    // Ask in chunks: each request body stays far below the node's JSON limit.
    let mut missing: HashSet<String> = HashSet::new();
    for chunk in hashes.chunks(CHECK_CHUNK) {
        let answer = client.post_json("/api/deploy/check", &serde_json::json!({ "hashes": chunk }))?;
        let found = answer["missing"].as_array().into_iter().flatten().filter_map(|h| h.as_str());
        missing.extend(found.map(String::from));
    }

    // One copy of each missing content is enough: the manifest maps every path to it.
    let mut to_send: BTreeMap<&str, &LocalFile> = BTreeMap::new();
    for file in &files {
        if missing.contains(&file.manifest.hash) {
            to_send.entry(file.manifest.hash.as_str()).or_insert(file);
        }
    }
    let archive = build_archive(&files, to_send.values().copied())?;
    let archive_len = archive.as_file().metadata()?.len();

    let bar = ProgressBar::new(archive_len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("uploading {name}"));
    let mut reader = archive.reopen()?;
    reader.rewind()?;
    let path = format!("/api/deploy?name={name}");
    let report = client.post_stream(&path, "application/gzip", archive_len, bar.wrap_read(reader));
    bar.finish_and_clear();
    let report = report?;

    println!(
        "deployed {name}: {} files, {} ({} new, {} uploaded) in {:.1} s",
        files.len(),
        human_bytes(total),
        to_send.len(),
        human_bytes(archive_len),
        started.elapsed().as_secs_f64()
    );
    if let Some(url) = report["url"].as_str() {
        println!("  {url}");
    }
    Ok(())
}

/// Writes a tar.gz with the manifest first and then the files to send.
fn build_archive<'a>(
    all: &[LocalFile],
    send: impl Iterator<Item = &'a LocalFile>,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let spool = tempfile::NamedTempFile::new().context("creating a temporary file")?;
    // Fast compression: most of a site's bytes are images that do not shrink, and the
    // node makes its own best-effort variants anyway.
    let gz = flate2::write::GzEncoder::new(spool.reopen()?, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let manifest = Manifest { files: all.iter().map(|f| f.manifest.clone()).collect() };
    let manifest = serde_json::to_vec(&manifest)?;
    append(&mut tar, MANIFEST_NAME, &manifest[..], manifest.len() as u64)?;
    for file in send {
        let data =
            std::fs::File::open(&file.full).with_context(|| format!("reading {}", file.full.display()))?;
        append(&mut tar, &file.manifest.path, data, file.manifest.size)?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?.sync_all()?;
    Ok(spool)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: impl Read, size: u64) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    // A file that changes size while we read it would corrupt the archive; the node
    // then refuses it as truncated, which is the honest outcome.
    tar.append_data(&mut header, path, data.take(size)).with_context(|| format!("archiving {path}"))?;
    Ok(())
}
