//! `fazt keys list|rotate|reset`: the node's keys and sealed secrets, where they are
//! held (software or TPM), and replacing them. Rotating and resetting need the node
//! stopped; listing reads the database and opens no secret.

use super::DataArg;
use crate::config::NodeConfig;
use crate::keys::{rotate::Target, KeySettings};
use crate::proc::lock::DataLock;
use crate::storage::Storage;
use crate::syscall::{self, Caller};
use crate::time::Clock;
use anyhow::{bail, Context};
use std::sync::Arc;

/// Arguments of `fazt keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List keys and sealed secrets, and where each is held.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a key (the node must be stopped).
    Rotate {
        /// machine (the wrapping key that seals every secret), lan-ca, node (a new node
        /// id) or acme (the ACME account keys).
        target: Target,
        #[command(flatten)]
        data: DataArg,
        /// Confirm rotating the node identity (peers then see a new node).
        #[arg(long)]
        yes: bool,
    },
    /// Give the node new keys when its old ones cannot be opened any more (a TPM that
    /// was cleared or replaced): sets every key aside, forgets ACME accounts and stored
    /// certificates. The node must be stopped.
    Reset {
        #[command(flatten)]
        data: DataArg,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `fazt keys …`.
pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    match args.command {
        Command::List { data, json } => list(&data, json),
        Command::Rotate { target, data, yes } => {
            if target == Target::Node && !yes {
                bail!("rotating the node key gives the node a new id (peers see a new node); pass --yes to do it");
            }
            let _lock = DataLock::acquire(&data.data).context("rotating a key needs the node stopped")?;
            let storage = Storage::open_existing(&data.data)?;
            let settings = KeySettings::from_config(&NodeConfig::load(&storage)?, &data.data);
            let done =
                syscall::keys::rotate(&storage, &Arc::new(Clock::new()), &settings, &Caller::Local, target)?;
            println!("{done}");
            Ok(())
        }
        Command::Reset { data, yes } => {
            if !yes {
                bail!("reset sets every key aside (new node id, new LAN CA, custom certificates must be added again); pass --yes to do it");
            }
            let _lock = DataLock::acquire(&data.data).context("resetting the keys needs the node stopped")?;
            let storage = Storage::open_existing(&data.data)?;
            for line in syscall::keys::reset(&storage, &Clock::new(), &Caller::Local)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

fn list(data: &DataArg, json: bool) -> anyhow::Result<()> {
    let storage = Storage::open_readonly(&data.data)?;
    let entries = syscall::keys::list(&storage, &Caller::Local)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no keys yet (they are made at the node's first start)");
    }
    for e in entries {
        let what = e.label();
        let fingerprint = e.fingerprint.map(|f| format!("  sha256:{f}")).unwrap_or_default();
        println!("{what:<40} {}{fingerprint}", e.held);
    }
    Ok(())
}
