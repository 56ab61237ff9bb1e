//! `fazt client …`: this machine's CLI settings.

use crate::proc::client_config::{default_path, ClientConfig};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `fazt client`.
#[derive(Debug, Args)]
pub struct ClientCommand {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Save the node URL and API token the CLI uses.
    SetAuthToken {
        /// The API token (`fzt_…`), from the dashboard or the first start.
        token: String,
        /// The node's admin URL.
        #[arg(long, env = "FAZT_SERVER", default_value = "http://admin.localhost:8080")]
        server: String,
        /// Client config file.
        #[arg(long, env = "FAZT_CONFIG")]
        config: Option<PathBuf>,
        /// Save without checking the token against the node.
        #[arg(long)]
        no_verify: bool,
    },
}

/// Runs `fazt client …`.
pub fn run(args: ClientCommand) -> anyhow::Result<()> {
    match args.command {
        Sub::SetAuthToken { token, server, config, no_verify } => {
            let token = token.trim().to_string();
            if !token.starts_with(crate::security::tokens::PREFIX) {
                anyhow::bail!(
                    "that is not a fazt API token (they start with '{}')",
                    crate::security::tokens::PREFIX
                );
            }
            if !no_verify {
                super::http::Client::new(&server, Some(token.clone())).get_json("/api/me")?;
            }
            let path = config.unwrap_or_else(default_path);
            ClientConfig { server: server.trim_end_matches('/').into(), token }.save(&path)?;
            println!("saved to {}", path.display());
            Ok(())
        }
    }
}
