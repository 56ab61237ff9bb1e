//! `fazt config …`: read and change node settings in the data file (the same keys as
//! `fazt server set-config`; most take effect at the next start).

use super::DataArg;
use crate::config::{self, NodeConfig};
use crate::storage::Storage;
use crate::syscall::{self, Caller};
use clap::{Args, Subcommand};

/// `fazt config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Set one key, e.g. `fazt config set beacon.enabled false`.
    Set {
        #[command(flatten)]
        data: DataArg,
        /// The key (`fazt config list` shows them all).
        key: String,
        /// The value.
        value: String,
    },
    /// Print one key's value.
    Get {
        #[command(flatten)]
        data: DataArg,
        /// The key.
        key: String,
    },
    /// Print every key, its value and what it does.
    List {
        #[command(flatten)]
        data: DataArg,
    },
}

/// Runs `fazt config …`.
pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Set { data, key, value } => {
            let storage = Storage::open_existing(&data.data)?;
            let value = syscall::config::set(&storage, &Caller::Local, &key, &value)?;
            let when = if key == config::Setting::BeaconName.name() {
                "a running node follows within its announce interval"
            } else {
                "restart the node to apply"
            };
            println!("{key} = {value} ({when})");
            Ok(())
        }
        ConfigCommand::Get { data, key } => {
            let storage = Storage::open_existing(&data.data)?;
            println!("{}", syscall::config::get(&storage, &Caller::Local, &key)?);
            Ok(())
        }
        ConfigCommand::List { data } => {
            let config = NodeConfig::load(&*Storage::open_existing(&data.data)?)?;
            for (key, value) in syscall::config::list(&config, &Caller::Local)? {
                println!("{:<30} {:<12} {}", key.name(), value, key.key().help);
            }
            Ok(())
        }
    }
}
