//! `fazt app list|info|delete`.

use super::http::Client;
use super::{human_bytes, ClientArgs};
use anyhow::bail;
use clap::{Args, Subcommand};
use std::io::IsTerminal;

/// `fazt app`.
#[derive(Debug, Args)]
pub struct AppArgs {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// List apps with their URLs, sizes and deploy times.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one app and its files.
    Info {
        /// App name or id.
        app: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an app (its name is free again at once).
    Delete {
        /// App name or id.
        app: String,
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
}

/// Runs `fazt app …`.
pub fn run(args: AppArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    match args.command {
        Sub::List { json } => {
            let answer = client.get_json("/api/apps")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer["apps"])?);
                return Ok(());
            }
            println!("{:<20} {:>6} {:>10}  {:<21} URL", "NAME", "FILES", "SIZE", "DEPLOYED");
            for app in answer["apps"].as_array().into_iter().flatten() {
                let mut name = app["name"].as_str().unwrap_or("").to_string();
                if app["system"].as_bool() == Some(true) {
                    name.push_str(" (system)");
                }
                println!(
                    "{:<20} {:>6} {:>10}  {:<21} {}",
                    name,
                    app["file_count"].as_u64().unwrap_or(0),
                    human_bytes(app["size_bytes"].as_u64().unwrap_or(0)),
                    app["deployed_at"].as_str().unwrap_or("-"),
                    app["url"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Sub::Info { app, json } => {
            let answer = client.get_json(&format!("/api/apps/{}", encode(&app)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            for key in ["name", "id", "url", "deployed_at"] {
                println!("{key:<12} {}", answer[key].as_str().unwrap_or("-"));
            }
            println!("{:<12} {}", "size", human_bytes(answer["size_bytes"].as_u64().unwrap_or(0)));
            println!("{:<12} {}", "deployments", answer["deployments"].as_u64().unwrap_or(0));
            println!("files:");
            for file in answer["files"].as_array().into_iter().flatten() {
                println!(
                    "  {:>10}  {}",
                    human_bytes(file["size"].as_u64().unwrap_or(0)),
                    file["path"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Sub::Delete { app, yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!("refusing to delete '{app}' without confirmation; pass --yes");
                }
                eprint!("delete app '{app}'? [y/N] ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    bail!("not deleted");
                }
            }
            client.delete(&format!("/api/apps/{}", encode(&app)))?;
            println!("deleted {app}");
            Ok(())
        }
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
