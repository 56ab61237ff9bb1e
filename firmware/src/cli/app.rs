//! `fazt app list|info|logs|run|env|limits|rename|delete`.

use super::http::{encode, Client};
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
    /// Show an app's log (console.* and fazt.log.* of its JavaScript).
    Logs {
        /// App name or id.
        app: String,
        /// Lines to show.
        #[arg(long, short = 'n', default_value = "100")]
        lines: i64,
        /// Keep printing new lines as they come (Ctrl-C to stop).
        #[arg(long, short)]
        follow: bool,
    },
    /// Run an app's handler without HTTP routing.
    Run {
        /// App name or id.
        app: String,
        /// The input, as JSON (becomes request.json and request.body).
        #[arg(long, default_value = "{}")]
        input: String,
        /// The request path the handler sees.
        #[arg(long, default_value = "/api")]
        path: String,
        /// The request method the handler sees.
        #[arg(long, default_value = "POST")]
        method: String,
    },
    /// Manage an app's environment variables (fazt.app.env).
    Env {
        #[command(subcommand)]
        command: EnvCommand,
    },
    /// Show or change an app's runtime limits.
    Limits {
        /// App name or id.
        app: String,
        /// Wall time per invocation, in ms.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// JavaScript memory, in MB.
        #[arg(long)]
        memory_mb: Option<u64>,
        /// Storage quota (KV keys and values), in MB.
        #[arg(long)]
        storage_mb: Option<u64>,
    },
    /// Give an app a new name (its files, KV, env, logs and limits stay with it).
    Rename {
        /// App name or id.
        app: String,
        /// The new name (a DNS label: a-z, 0-9 and '-').
        new_name: String,
        /// Rename in this data file directly (with no node running on it; if one runs,
        /// it is asked through its API instead).
        #[arg(long, value_name = "FILE")]
        data: Option<std::path::PathBuf>,
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

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// Set variables: `fazt app env set blog KEY=VALUE [KEY=VALUE...]`.
    Set {
        /// App name or id.
        app: String,
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Remove variables.
    Unset {
        /// App name or id.
        app: String,
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List variables.
    List {
        /// App name or id.
        app: String,
    },
}

fn print_logs(lines: &serde_json::Value) {
    for line in lines["logs"].as_array().into_iter().flatten() {
        println!(
            "{} {:<5} {}",
            line["at"].as_str().unwrap_or(""),
            line["level"].as_str().unwrap_or(""),
            line["message"].as_str().unwrap_or("")
        );
    }
}

/// Runs `fazt app …`.
pub fn run(args: AppArgs) -> anyhow::Result<()> {
    if let Sub::Rename { app, new_name, data: Some(data) } = &args.command {
        if crate::proc::lock::holder(data)?.is_none() {
            return rename_offline(data, app, new_name);
        }
        eprintln!("a node runs on {}: renaming through its API", data.display());
    }
    let client = Client::from_args(&args.client)?;
    match args.command {
        Sub::List { json } => {
            let answer = client.get_json("/api/apps")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer["apps"])?);
                return Ok(());
            }
            println!("{:<20} {:<36} {:>6} {:>10}  {:<21} URL", "NAME", "ID", "FILES", "SIZE", "DEPLOYED");
            for app in answer["apps"].as_array().into_iter().flatten() {
                let mut name = app["name"].as_str().unwrap_or("").to_string();
                if app["system"].as_bool() == Some(true) {
                    name.push_str(" (system)");
                }
                println!(
                    "{:<20} {:<36} {:>6} {:>10}  {:<21} {}",
                    name,
                    app["id"].as_str().unwrap_or(""),
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
        Sub::Logs { app, lines, follow } => {
            let base = format!("/api/apps/{}/logs", encode(&app));
            let answer = client.get_json(&format!("{base}?tail=1&limit={lines}"))?;
            print_logs(&answer);
            let mut last = answer["last_id"].as_i64().unwrap_or(0);
            if !follow {
                return Ok(());
            }
            // Long polling: the node answers as soon as there are lines, or after 25 s.
            loop {
                let answer = client.get_json(&format!("{base}?after={last}&limit=1000&wait=25"))?;
                print_logs(&answer);
                last = answer["last_id"].as_i64().unwrap_or(last);
            }
        }
        Sub::Run { app, input, path, method } => {
            let input: serde_json::Value =
                serde_json::from_str(&input).map_err(|e| anyhow::anyhow!("--input is not JSON: {e}"))?;
            let url = format!(
                "/api/apps/{}/invoke?path={}&method={}",
                encode(&app),
                encode(&path),
                encode(&method)
            );
            let answer = client.post_json(&url, &input)?;
            let status = answer["status"].as_u64().unwrap_or(0);
            match answer.get("json") {
                Some(json) => println!("{}", serde_json::to_string_pretty(json)?),
                None => println!("{}", answer["body"].as_str().unwrap_or("")),
            }
            if status >= 400 {
                bail!("the handler answered HTTP {status}");
            }
            Ok(())
        }
        Sub::Env { command } => match command {
            EnvCommand::Set { app, pairs } => {
                for pair in pairs {
                    let (name, value) =
                        pair.split_once('=').ok_or_else(|| anyhow::anyhow!("'{pair}' is not KEY=VALUE"))?;
                    let url = format!("/api/apps/{}/env/{}", encode(&app), encode(name));
                    client.put_json(&url, &serde_json::json!({ "value": value }))?;
                    println!("set {name}");
                }
                Ok(())
            }
            EnvCommand::Unset { app, names } => {
                for name in names {
                    client.delete(&format!("/api/apps/{}/env/{}", encode(&app), encode(&name)))?;
                    println!("unset {name}");
                }
                Ok(())
            }
            EnvCommand::List { app } => {
                let answer = client.get_json(&format!("/api/apps/{}/env", encode(&app)))?;
                for (name, value) in answer["env"].as_object().into_iter().flatten() {
                    println!("{name}={}", value.as_str().unwrap_or(""));
                }
                Ok(())
            }
        },
        Sub::Limits { app, timeout_ms, memory_mb, storage_mb } => {
            let url = format!("/api/apps/{}/limits", encode(&app));
            let answer = if timeout_ms.is_some() || memory_mb.is_some() || storage_mb.is_some() {
                let bytes = |mb: Option<u64>, flag: &str| -> anyhow::Result<Option<u64>> {
                    mb.map(|mb| mb.checked_mul(1 << 20).ok_or_else(|| anyhow::anyhow!("{flag} is too large")))
                        .transpose()
                };
                let body = serde_json::json!({
                    "timeout_ms": timeout_ms,
                    "memory_bytes": bytes(memory_mb, "--memory-mb")?,
                    "storage_bytes": bytes(storage_mb, "--storage-mb")?,
                });
                client.put_json(&url, &body)?
            } else {
                client.get_json(&url)?
            };
            println!("timeout_ms         {}", answer["timeout_ms"]);
            println!("memory_bytes       {}", answer["memory_bytes"]);
            println!("storage_bytes      {}", answer["storage_bytes"]);
            println!("storage_used_bytes {}", answer["storage_used_bytes"]);
            Ok(())
        }
        Sub::Rename { app, new_name, data: _ } => {
            let url = format!("/api/apps/{}/rename", encode(&app));
            let answer = client.post_json(&url, &serde_json::json!({ "name": new_name }))?;
            println!("renamed {app} to {new_name} ({})", answer["url"].as_str().unwrap_or(""));
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

/// `fazt app rename --data FILE` with no node on the file: renames under the data
/// file's lock through the same syscall as the API, over an event bus of this command's
/// own, which writes the `apps.renamed` event to the history for the next start.
fn rename_offline(data: &std::path::Path, app: &str, new_name: &str) -> anyhow::Result<()> {
    use crate::config::{NodeConfig, Setting};
    let _lock = crate::proc::lock::DataLock::acquire(data)?;
    let storage = crate::storage::Storage::open_existing(data)?;
    let max_rows = NodeConfig::load(&storage)?.get_u64(Setting::EventsMaxRows);
    let clock = std::sync::Arc::new(crate::time::Clock::new());
    let bus = crate::events::Events::start(storage.clone(), clock.clone(), max_rows)?;
    let local = crate::syscall::Caller::Local;
    let renamed = smol::block_on(crate::syscall::apps::rename(&storage, &clock, &bus, &local, app, new_name));
    // The rename stands even if its event cannot be written.
    if renamed.as_ref().is_ok_and(|r| r.changed) && !bus.flush(std::time::Duration::from_secs(10)) {
        eprintln!("warning: the apps.renamed event could not be recorded");
    }
    bus.close();
    let renamed = renamed.map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    match renamed.changed {
        true => println!("renamed {} to {} (id {})", renamed.old_name, renamed.new_name, renamed.id),
        false => println!("{} is already named {}", renamed.id, renamed.new_name),
    }
    Ok(())
}
