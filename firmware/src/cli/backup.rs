//! `fazt backup create|restore`: the whole node is one file, so a backup is one file.

use super::{human_bytes, DataArg};
use crate::proc::lock::DataLock;
use crate::syscall::{system, Caller::Local};
use anyhow::Context;
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
    let size = system::backup(data, file, force, &Local)?;
    println!("backup written to {} ({})", file.display(), human_bytes(size));
    Ok(())
}

fn restore(file: &Path, data: &Path) -> anyhow::Result<()> {
    let _lock = DataLock::acquire(data).context("restore needs the node stopped")?;
    let apps = system::restore(file, data, &Local)?;
    println!("restored {} into {} ({} apps)", file.display(), data.display(), apps);
    Ok(())
}
