//! `fazt backup create|restore`: the whole node is one file, so a backup is one file.

use super::{human_bytes, DataArg};
use crate::proc::lock::DataLock;
use crate::storage::Storage;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// `fazt backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Copy the live database to FILE (safe while the node serves).
    Create {
        /// Where to write the backup.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the database with FILE (the node must be stopped).
    Restore {
        /// The backup to restore.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
}

/// Runs `fazt backup …`.
pub fn run(args: BackupArgs) -> anyhow::Result<()> {
    match args.command {
        Sub::Create { file, data, force } => create(&data.data, &file, force),
        Sub::Restore { file, data } => restore(&file, &data.data),
    }
}

fn create(data: &Path, file: &Path, force: bool) -> anyhow::Result<()> {
    if file.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", file.display());
    }
    let storage = Storage::open_readonly(data)?;
    // Write beside the target and rename, so an interrupted backup never leaves a
    // half-written file under the final name.
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let _ = std::fs::remove_file(&partial);
    storage.backup_to(&partial).with_context(|| format!("writing {}", partial.display()))?;
    let check = Storage::open_readonly(&partial)?.integrity_check()?;
    if check != "ok" {
        bail!("the backup failed its integrity check: {check}");
    }
    std::fs::rename(&partial, file)?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    let size = std::fs::metadata(file)?.len();
    println!("backup written to {} ({})", file.display(), human_bytes(size));
    Ok(())
}

fn restore(file: &Path, data: &Path) -> anyhow::Result<()> {
    let _lock = DataLock::acquire(data).context("restore needs the node stopped")?;
    if !file.is_file() {
        bail!("no backup at {}", file.display());
    }
    // Check the backup before touching anything: a bad file must change nothing.
    let source =
        Storage::open_readonly(file).with_context(|| format!("{} is not a fazt backup", file.display()))?;
    let check = source.integrity_check()?;
    if check != "ok" {
        bail!("{} is damaged: {check}", file.display());
    }
    let apps = source
        .read_blocking(crate::apps::list)
        .with_context(|| format!("{} is not a fazt database", file.display()))?;
    // SQLite's backup API writes the target page by page inside its own locking, and the
    // target is replaced as a whole when the copy commits.
    let target = Storage::open(data)?;
    target.write_blocking(|conn| -> anyhow::Result<()> {
        source.read_blocking(|src| -> anyhow::Result<()> {
            let backup = rusqlite::backup::Backup::new(src, conn)?;
            backup.run_to_completion(1024, std::time::Duration::ZERO, None)?;
            Ok(())
        })
    })?;
    println!("restored {} into {} ({} apps)", file.display(), data.display(), apps.len());
    Ok(())
}
