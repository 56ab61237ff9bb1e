//! `fazt storage status|migrate`: the data file's schema, pending migrations and sizes.
//! Offline commands; `status` and `migrate --dry-run` never write to the file.

use super::{human_bytes, DataArg};
use crate::proc::lock::{self, DataLock, LockError};
use crate::storage::status::Status;
use crate::syscall::{system, Caller::Local};
use anyhow::bail;
use clap::{Args, Subcommand};
use std::path::Path;

/// `fazt storage`.
#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Schema version, pending migrations, file and WAL sizes, pages and the big tables.
    Status {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply the pending schema migrations (a node applies them when it starts).
    Migrate {
        #[command(flatten)]
        data: DataArg,
        /// List what would be applied and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs `fazt storage …`.
pub fn run(args: StorageArgs) -> anyhow::Result<()> {
    match args.command {
        Sub::Status { data, json } => show(&data.data, json),
        Sub::Migrate { data, dry_run } => migrate(&data.data, dry_run),
    }
}

fn show(data: &Path, json: bool) -> anyhow::Result<()> {
    let s = system::storage_status(data, &Local)?;
    let running = lock::holder(data)?.map(|h| h.pid);
    if json {
        let mut value = serde_json::to_value(&s)?;
        value["node_pid"] = serde_json::json!(running);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "data:     {} ({}, WAL {})",
        data.display(),
        human_bytes(s.file_bytes),
        human_bytes(s.wal_bytes)
    );
    if s.too_new() {
        println!(
            "schema:   version {}, newer than this fazt knows ({}): upgrade fazt to use this file",
            s.schema_version, s.latest_version
        );
    } else if s.pending.is_empty() {
        println!("schema:   version {}, up to date", s.schema_version);
    } else {
        println!(
            "schema:   version {} ({} pending migration{}; this fazt knows {})",
            s.schema_version,
            s.pending.len(),
            if s.pending.len() == 1 { "" } else { "s" },
            s.latest_version
        );
        print_pending(&s);
    }
    println!(
        "pages:    {} × {} B, {} free ({})",
        s.page_count,
        s.page_size,
        s.freelist_count,
        human_bytes(s.freelist_count * s.page_size)
    );
    println!(
        "node:     {}",
        match running {
            Some(pid) if pid != 0 => format!("running (pid {pid})"),
            Some(_) => "running".into(),
            None => "not running".into(),
        }
    );
    println!("tables:");
    for t in &s.tables {
        println!("  {:<10} {:>10} rows {:>10}", t.name, t.rows, human_bytes(t.bytes));
    }
    Ok(())
}

fn print_pending(s: &Status) {
    for m in &s.pending {
        println!("  {:>4}  {}", m.version, m.description);
    }
}

fn migrate(data: &Path, dry_run: bool) -> anyhow::Result<()> {
    let s = system::migration_plan(data, &Local)?;
    if s.pending.is_empty() {
        println!("nothing to do: schema version {} is the latest this fazt knows", s.schema_version);
        return Ok(());
    }
    let count = format!("{} migration{}", s.pending.len(), if s.pending.len() == 1 { "" } else { "s" });
    if dry_run {
        println!("would apply {count} to {}:", data.display());
        print_pending(&s);
        println!(
            "nothing was changed (run without --dry-run to apply them; a node applies them when it starts)"
        );
        return Ok(());
    }
    let _lock = match DataLock::acquire(data) {
        Ok(lock) => lock,
        Err(LockError::Busy(_)) => bail!(
            "a node is using {} (it applied its migrations when it started); stop it first: `fazt proc stop`",
            data.display()
        ),
        Err(err) => return Err(err.into()),
    };
    let applied = system::migrate(data, &Local)?;
    println!("applied {count} to {}:", data.display());
    for m in &applied {
        println!("  {:>4}  {}", m.version, m.description);
    }
    Ok(())
}
