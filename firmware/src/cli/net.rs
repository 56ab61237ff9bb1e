//! `fazt net allow|deny|list|logs|limits`: the apps' outbound HTTP (`fazt.net.fetch`),
//! through the node's API.

use super::http::{encode, Client};
use super::ClientArgs;
use clap::{Args, Subcommand};

/// `fazt net`.
#[derive(Debug, Args)]
pub struct NetArgs {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Let an app reach a host: `HOST` (any port), `HOST:PORT`, or `*.DOMAIN`.
    Allow {
        /// App name or id.
        app: String,
        /// The host.
        host: String,
        /// Open one LAN service (an exact HOST:PORT) even though it has a private,
        /// loopback or link-local address.
        #[arg(long)]
        private: bool,
    },
    /// Take a host off an app's allow-list (`HOST`: every port; `HOST:PORT`: that one).
    Deny {
        /// App name or id.
        app: String,
        /// The host, as it was allowed.
        host: String,
    },
    /// The allow-list of one app, or of every app.
    List {
        /// App name or id.
        app: Option<String>,
    },
    /// The last outbound requests: method, host, status, bytes, time, error.
    Logs {
        /// Only this app (name or id).
        app: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
        /// Keep printing new requests as they come (Ctrl-C to stop).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// The limits in force and the circuit breakers of the destination hosts; with an
    /// app, its own limits (set them with the flags).
    #[command(alias = "status")]
    Limits {
        /// App name or id.
        app: Option<String>,
        #[command(flatten)]
        set: LimitFlags,
        /// Drop the app's own limits: the node's apply again.
        #[arg(long)]
        reset: bool,
    },
}

/// An app's own egress limits given on the command line (the names are the API's).
#[derive(Debug, Args)]
struct LimitFlags {
    /// Requests the app may have in flight (1-1024).
    #[arg(long)]
    max_concurrent: Option<u64>,
    /// Largest request body, in bytes.
    #[arg(long)]
    max_request_bytes: Option<u64>,
    /// Largest answer body, in bytes.
    #[arg(long)]
    max_response_bytes: Option<u64>,
    /// Total time of one fetch, in ms.
    #[arg(long)]
    timeout_ms: Option<u64>,
}

impl LimitFlags {
    /// Each limit's API name and the value given for it, if any.
    fn given(&self) -> [(&'static str, Option<u64>); 4] {
        [
            ("max_concurrent", self.max_concurrent),
            ("max_request_bytes", self.max_request_bytes),
            ("max_response_bytes", self.max_response_bytes),
            ("timeout_ms", self.timeout_ms),
        ]
    }

    /// Whether any limit was given.
    fn any(&self) -> bool {
        self.given().iter().any(|(_, v)| v.is_some())
    }
}

/// Runs `fazt net …`.
pub fn run(args: NetArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    match args.command {
        Sub::Allow { app, host, private } => {
            let answer = client.post_json(
                "/api/net/allow",
                &serde_json::json!({ "app": app, "host": host, "private": private }),
            )?;
            let what = if private { " (private: a LAN service)" } else { "" };
            let port =
                answer["port"].as_u64().filter(|p| *p != 0).map(|p| format!(":{p}")).unwrap_or_default();
            let host = answer["host"].as_str().unwrap_or("");
            let app = answer["app"].as_str().unwrap_or("");
            if answer["changed"] == true {
                println!("{app} may reach {host}{port}{what}");
            } else {
                println!("{app} could reach {host}{port} already{what}");
            }
            Ok(())
        }
        Sub::Deny { app, host } => {
            let answer =
                client.post_json("/api/net/deny", &serde_json::json!({ "app": app, "host": host }))?;
            match answer["removed"].as_u64().unwrap_or(0) {
                0 => println!("{host} was not on the list of {app}"),
                n => println!("removed {n} entr{} for {host} from {app}", if n == 1 { "y" } else { "ies" }),
            }
            Ok(())
        }
        Sub::List { app } => {
            let url = match &app {
                Some(app) => format!("/api/net/allow?app={}", encode(app)),
                None => "/api/net/allow".to_string(),
            };
            let answer = client.get_json(&url)?;
            let rules = answer["allow"].as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                println!("no app may reach any host (fazt net allow APP HOST)");
            }
            for rule in rules {
                let port =
                    rule["port"].as_u64().filter(|p| *p != 0).map(|p| format!(":{p}")).unwrap_or_default();
                let private = if rule["private"] == true { "  private" } else { "" };
                println!(
                    "{:<20} {}{port}{private}",
                    rule["app"].as_str().unwrap_or(""),
                    rule["host"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Sub::Logs { app, lines, follow } => {
            let filter = app.as_ref().map(|a| format!("&app={}", encode(a))).unwrap_or_default();
            let answer = client.get_json(&format!("/api/net/logs?limit={}{filter}", lines.clamp(1, 1000)))?;
            let mut last = print_logs(&answer).unwrap_or(0);
            // Polled once a second: the log is in data.db, and this is for a person watching.
            if !follow {
                return Ok(());
            }
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let answer = client.get_json(&format!("/api/net/logs?limit=1000&after={last}{filter}"))?;
                last = print_logs(&answer).unwrap_or(last);
            }
        }
        Sub::Limits { app: Some(app), set, reset } => {
            let url = format!("/api/net/limits/{}", encode(&app));
            let answer = if reset || set.any() {
                // Flags not given keep the app's current values (none after --reset).
                let mut own =
                    if reset { serde_json::json!({}) } else { client.get_json(&url)?["own"].clone() };
                for (name, value) in set.given() {
                    if let Some(v) = value {
                        own[name] = v.into();
                    }
                }
                client.put_json(&url, &own)?
            } else {
                client.get_json(&url)?
            };
            println!("{} (own values marked *)", answer["app"].as_str().unwrap_or(""));
            let own = &answer["own"];
            let mapping = [
                ("max_concurrent_per_app", "max_concurrent"),
                ("max_request_bytes", "max_request_bytes"),
                ("max_response_bytes", "max_response_bytes"),
                ("timeout_ms", "timeout_ms"),
            ];
            for (effective, mine) in mapping {
                let mark = if own[mine].is_null() { "" } else { " *" };
                println!("{effective:<24} {}{mark}", answer["effective"][effective]);
            }
            Ok(())
        }
        Sub::Limits { app: None, set, reset } => {
            if reset || set.any() {
                anyhow::bail!("name the app whose limits to change; the node's are the egress.* settings (fazt config set)");
            }
            let answer = client.get_json("/api/net/limits")?;
            for (name, value) in answer["limits"].as_object().into_iter().flatten() {
                println!("{name:<24} {value}");
            }
            let circuits = answer["circuits"].as_array().cloned().unwrap_or_default();
            if circuits.is_empty() {
                println!("circuits                 all closed");
            }
            for c in circuits {
                let detail = match c["state"].as_str().unwrap_or("") {
                    "open" => format!("open, a probe may go in {} ms", c["retry_in_ms"]),
                    "closed" => format!("closed, {} failures in a row", c["failures"]),
                    other => other.to_string(),
                };
                println!("circuit {:<30} {detail}", c["host"].as_str().unwrap_or(""));
            }
            Ok(())
        }
    }
}

/// Prints log rows; the id of the last one, if any.
fn print_logs(answer: &serde_json::Value) -> Option<i64> {
    let mut last = None;
    for e in answer["logs"].as_array().into_iter().flatten() {
        let status = e["status"].as_u64().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{}  {:<7} {:<30} {:>3} {:>9} B {:>6} ms  {}",
            e["at"].as_str().unwrap_or(""),
            e["method"].as_str().unwrap_or(""),
            e["host"].as_str().unwrap_or(""),
            status,
            e["bytes"],
            e["duration_ms"],
            e["error"].as_str().unwrap_or("")
        );
        last = e["id"].as_i64().or(last);
    }
    last
}
