//! `fazt events watch|emit`: follow the node's event bus, or put a custom event on it.

use super::http::{encode, Client};
use super::ClientArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::{BufRead, BufReader};
use std::time::Duration;

/// `fazt events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Print events as they happen, one line each (Ctrl-C to stop).
    Watch {
        /// Only types equal to or under this, e.g. `app`, `login`, `apps.deployed`.
        #[arg(long = "type", value_name = "PREFIX")]
        kind: Option<String>,
        /// Only events of this app (name or id).
        #[arg(long)]
        app: Option<String>,
        /// Start with the history after this event id (0: all that is kept).
        #[arg(long)]
        since: Option<u64>,
        /// Print each event as one line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// Emit a custom event as the admin (its type is put under `app.`).
    Emit {
        /// The type, e.g. `backup.done` (becomes `app.backup.done`).
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The event's data, as JSON.
        #[arg(long)]
        data: Option<String>,
        /// Tag the event with an app (name or id); it is then private to that app.
        #[arg(long)]
        app: Option<String>,
        /// Let every app read it.
        #[arg(long)]
        public: bool,
        /// Print the event as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `fazt events …`.
pub fn run(args: EventsArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    match args.command {
        Sub::Watch { kind, app, since, json } => watch(&client, kind, app, since, json),
        Sub::Emit { kind, data, app, public, json } => {
            let data: serde_json::Value = match data {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--data is not JSON: {e}"))?
                }
                None => serde_json::Value::Null,
            };
            let body = serde_json::json!({"type": kind, "data": data, "app": app, "public": public});
            let event = client.post_json("/api/events", &body)?;
            if json {
                println!("{event}");
            } else {
                println!("emitted {} (id {})", event["type"].as_str().unwrap_or("?"), event["id"]);
            }
            Ok(())
        }
    }
}

/// Follows the node's Server-Sent Events, reconnecting where it stopped when a stream
/// ends (the node ends each after 10 minutes) or the connection drops.
fn watch(
    client: &Client,
    kind: Option<String>,
    app: Option<String>,
    since: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let mut last = since;
    let mut connected_once = false;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut path = String::from("/api/events?");
        for (key, value) in
            [("type", kind.clone()), ("app", app.clone()), ("since", last.map(|n| n.to_string()))]
        {
            if let Some(value) = value {
                path.push_str(&format!("{key}={}&", encode(&value)));
            }
        }
        let stream = match client.get_stream(path.trim_end_matches(['?', '&']), "text/event-stream") {
            Ok(stream) => stream,
            // Bad input or a node that is not there at all: say so and stop.
            Err(err) if !connected_once || !err.is::<super::http::Unreachable>() => return Err(err),
            Err(err) => {
                eprintln!("fazt: {err:#}; retrying in {} s", backoff.as_secs());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        connected_once = true;
        backoff = Duration::from_secs(1);
        let mut message = Message::default();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if !line.is_empty() {
                message.push(&line);
                continue;
            }
            let done = std::mem::take(&mut message);
            // The node's first message carries only an id (where the stream starts), so
            // a reconnect resumes there even before any event came.
            if let Some(id) = done.id {
                last = Some(id);
            }
            match done.event.as_deref() {
                Some("lagged") => eprintln!(
                    "fazt: fell behind the node's events ({}); filling in from its history",
                    done.data
                ),
                _ if !done.data.is_empty() => print_event(&done.data, json)?,
                _ => {}
            }
        }
        // The stream ended (its lifetime, or the connection dropped): reconnect at once
        // from the last id seen.
    }
}

/// One Server-Sent Events message being read.
#[derive(Debug, Default)]
struct Message {
    id: Option<u64>,
    event: Option<String>,
    data: String,
}

impl Message {
    fn push(&mut self, line: &str) {
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = value.parse().ok(),
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
    }
}

fn print_event(data: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{data}");
        return Ok(());
    }
    let event: serde_json::Value =
        serde_json::from_str(data).context("the node sent an event that is not JSON")?;
    let ms = event["time"].as_i64().unwrap_or(0);
    let seconds = crate::time::rfc3339(ms);
    let time = format!("{}.{:03}Z", seconds.trim_end_matches('Z'), ms.rem_euclid(1000));
    println!(
        "{time} {:>6} {:<18} {:<16} {}",
        event["id"],
        event["type"].as_str().unwrap_or("?"),
        event["app_name"].as_str().unwrap_or("-"),
        event["data"]
    );
    Ok(())
}
