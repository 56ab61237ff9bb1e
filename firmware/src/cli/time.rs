//! `fazt time status|sync|peers`: the node's clock, where its time comes from, and the
//! sources it polls (asks the running node over its API).

use super::http::Client;
use super::ClientArgs;
use clap::{Args, Subcommand};
use serde_json::Value;

/// `fazt time`.
#[derive(Debug, Args)]
pub struct TimeArgs {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Show the kernel clock: its time, source, estimated error and time server.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// Print JSON (the answer of GET /api/system/time).
        #[arg(long)]
        json: bool,
    },
    /// Poll every source now and show the result.
    Sync {
        #[command(flatten)]
        client: ClientArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the NTP servers and fazt peers polled, and which ones count.
    Peers {
        #[command(flatten)]
        client: ClientArgs,
        /// Print JSON (the sources list).
        #[arg(long)]
        json: bool,
    },
}

/// Runs `fazt time …`.
pub fn run(args: TimeArgs) -> anyhow::Result<()> {
    match args.command {
        Sub::Status { client, json } => {
            let status = Client::from_args(&client)?.get_json("/api/system/time")?;
            print(&status, json, false)
        }
        Sub::Sync { client, json } => {
            let status = Client::from_args(&client)?.post_json("/api/system/time/sync", &Value::Null)?;
            print(&status, json, true)
        }
        Sub::Peers { client, json } => {
            let status = Client::from_args(&client)?.get_json("/api/system/time")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status["sources"])?);
            } else {
                print_sources(&status["sources"]);
            }
            Ok(())
        }
    }
}

fn print(status: &Value, json: bool, with_sources: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(());
    }
    let sources = status["sources"].as_array().cloned().unwrap_or_default();
    let included = sources.iter().filter(|s| s["included"] == true).count();
    println!("Time:     {} (kernel clock)", status["now_text"].as_str().unwrap_or("?"));
    println!(
        "Source:   {}{}, stratum {}, {}",
        status["source"].as_str().unwrap_or("?"),
        match included {
            0 => String::new(),
            n => format!(" ({n} of {} sources count)", sources.len()),
        },
        status["stratum"],
        if status["synchronized"] == true { "synchronized" } else { "not synchronized" }
    );
    println!("Error:    ±{} ms (estimated)", status["error_ms"]);
    println!(
        "Offset:   {} ms from the board clock ({}), {} ms still to slew",
        status["offset_ms"],
        status["board_clock"].as_str().unwrap_or("?"),
        status["slewing_ms"]
    );
    if let Some(step) = status["last_step"].as_object() {
        println!(
            "Stepped:  {} ms by {} at {}",
            step["by_ms"],
            step["source"].as_str().unwrap_or("?"),
            step["at"].as_i64().map(crate::time::rfc3339).unwrap_or_default()
        );
    }
    let server = &status["server"];
    match server["listening"].as_str() {
        Some(addr) => println!(
            "Server:   NTP on udp {addr}: {} answers ({} signed); ignored {} malformed, {} wrong version, {} wrong mode, {} over the rate limit",
            server["answered"], server["signed"], server["malformed"], server["wrong_version"], server["wrong_mode"], server["rate_limited"]
        ),
        None => println!("Server:   {}", server["error"].as_str().unwrap_or("off")),
    }
    let client = &status["client"];
    println!(
        "Polls:    {} rounds, {} requests; ignored answers: {} unmatched or replayed, {} unsigned, {} bad signature, {} malformed",
        client["polls"], client["requests"], client["unmatched"], client["unsigned"], client["bad_signature"], client["malformed"]
    );
    if let Some(note) = status["note"].as_str() {
        println!("Note:     {note}");
    }
    if with_sources {
        println!();
        print_sources(&status["sources"]);
    }
    Ok(())
}

fn print_sources(sources: &Value) {
    let sources = sources.as_array().cloned().unwrap_or_default();
    if sources.is_empty() {
        println!("No time sources: no NTP servers configured (time.ntp_servers) and no fazt peers with a time server found.");
        return;
    }
    for s in &sources {
        let verdict = match (s["reachable"].as_bool(), s["included"].as_bool()) {
            (Some(true), Some(true)) => "counted".to_string(),
            (Some(true), _) => "outvoted or not needed".to_string(),
            _ => format!("unreachable: {}", s["error"].as_str().unwrap_or("no answer")),
        };
        println!(
            "  {:<4} {:<24} {:<22} offset {:>10} ms  delay {:>7} ms  stratum {:>2}  {verdict}",
            s["kind"].as_str().unwrap_or("?"),
            s["name"].as_str().unwrap_or("?"),
            s["address"].as_str().unwrap_or("-"),
            s["offset_ms"],
            s["delay_ms"],
            s["stratum"],
        );
    }
}
