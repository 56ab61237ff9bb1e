//! `fazt beacon status|scan|set-name`: this node on the LAN, and the fazt nodes around.

use super::http::Client;
use super::{ClientArgs, DataArg};
use crate::beacon::{name, scan};
use crate::config::Setting;
use crate::storage::Storage;
use anyhow::bail;
use clap::{Args, Subcommand};
use fazt_hal::discovery::mdns::Interfaces;
use std::time::Duration;

/// `fazt beacon`.
#[derive(Debug, Args)]
pub struct BeaconArgs {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Show what this node announces and the nodes it sees (asks the running node; reads
    /// the data file when none is running).
    Status {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        data: DataArg,
        /// Print JSON (the answer of GET /api/system/beacon).
        #[arg(long)]
        json: bool,
    },
    /// Look for fazt nodes on the LAN now (needs no running node; announces nothing).
    Scan {
        /// Seconds to listen.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Only this interface (repeatable; default: all but loopback and container bridges).
        #[arg(long)]
        interface: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set this node's name on the LAN (a DNS label: it becomes <name>.local).
    SetName {
        #[command(flatten)]
        data: DataArg,
        /// The name, e.g. kitchen-pi.
        name: String,
    },
}

/// Runs `fazt beacon …`.
pub fn run(args: BeaconArgs) -> anyhow::Result<()> {
    match args.command {
        Sub::Status { client, data, json } => status(client, data, json),
        Sub::Scan { timeout, interface, json } => {
            if !(0.0..=3600.0).contains(&timeout) {
                bail!("--timeout must be between 0 and 3600 seconds");
            }
            let interfaces =
                if interface.is_empty() { Interfaces::Auto } else { Interfaces::Only(interface) };
            let result = scan::scan(Duration::from_secs_f64(timeout), interfaces)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
                return Ok(());
            }
            print_nodes(&serde_json::to_value(&result.nodes)?);
            if result.rejected > 0 {
                println!("({} malformed or forged records ignored)", result.rejected);
            }
            Ok(())
        }
        Sub::SetName { data, name } => {
            let name = name.trim().to_ascii_lowercase();
            if !name::is_valid(&name) {
                bail!("'{name}' is not a DNS label (1-63 letters, digits and '-', not starting or ending with '-'), e.g. kitchen-pi");
            }
            let storage = Storage::open_existing(&data.data)?;
            crate::syscall::config::set(
                &storage,
                &crate::syscall::Caller::Local,
                Setting::BeaconName.name(),
                &name,
            )?;
            println!("name set to {name} (http://{name}.local); a running node announces it within its announce interval");
            Ok(())
        }
    }
}

fn print_nodes(nodes: &serde_json::Value) {
    let nodes = nodes.as_array().cloned().unwrap_or_default();
    match nodes.len() {
        0 => println!("No fazt nodes found."),
        1 => println!("Found 1 node:"),
        n => println!("Found {n} nodes:"),
    }
    for node in &nodes {
        let addresses: Vec<&str> =
            node["addresses"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).collect();
        let services: Vec<&str> =
            node["services"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).collect();
        println!(
            "  {} ({}:{}) {}{} - {}",
            node["name"].as_str().unwrap_or("?"),
            addresses.first().copied().unwrap_or("?"),
            node["port"],
            node["id"].as_str().unwrap_or("no id"),
            if node["verified"].as_bool() == Some(true) { "" } else { " (unverified)" },
            if services.is_empty() { "-".to_string() } else { services.join(", ") },
        );
    }
}

fn status(client: ClientArgs, data: DataArg, json: bool) -> anyhow::Result<()> {
    let answer = Client::from_args(&client).and_then(|c| c.get_json("/api/system/beacon"));
    let answer = match answer {
        Ok(answer) => answer,
        Err(err) if data.data.exists() => {
            // No node answering: show what the data file says it would announce.
            let storage = Storage::open_existing(&data.data)?;
            let crate::syscall::beacon::Announced { enabled, id, name, port } =
                crate::syscall::beacon::announced(&storage, &crate::syscall::Caller::Local)?;
            let offline = serde_json::json!({
                "enabled": enabled,
                "state": "not_running",
                "reason": format!("no node answered ({err:#})"),
                "node": { "id": id, "name": name, "host": format!("{name}.local"), "port": port },
                "peers": [],
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&offline)?);
            } else {
                println!(
                    "Not running: would announce {name}.local:{port} ({})",
                    id.as_deref().unwrap_or("identity created at first start")
                );
                println!("Beacon: {}", if enabled { "on" } else { "off (beacon.enabled is false)" });
            }
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let node = &answer["node"];
    match answer["state"].as_str().unwrap_or("") {
        "announcing" => println!(
            "Announcing: {} @ {} ({})",
            node["name"].as_str().unwrap_or("?"),
            node["url"].as_str().unwrap_or("?"),
            node["id"].as_str().unwrap_or("?")
        ),
        state => println!(
            "Beacon {state}: {} (node {})",
            answer["reason"].as_str().unwrap_or("no reason given"),
            node["id"].as_str().unwrap_or("?")
        ),
    }
    let services: Vec<&str> =
        node["services"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
    println!("Services: {}", services.join(", "));
    print_nodes(&answer["peers"]);
    Ok(())
}
