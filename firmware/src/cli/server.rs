//! `fazt server …`: create, run and configure a node.

use super::DataArg;
use crate::config::{NodeConfig, Setting};
use crate::proc::node::{self, StartOptions};
use crate::storage::Storage;
use crate::syscall::certs::CertStore;
use crate::syscall::Caller::Local;
use crate::syscall::{Kind, SyscallError};
use crate::time::Clock;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

/// `fazt server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    command: ServerCommand,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Create a data file with a domain, a port and an admin password.
    Init {
        #[command(flatten)]
        data: DataArg,
        /// The domain apps are served under.
        #[arg(long)]
        domain: Option<String>,
        /// HTTP port.
        #[arg(long)]
        port: Option<u16>,
        /// Serve HTTPS with certificates from Let's Encrypt (ACME) for --domain: listen
        /// on 443 and 80, and redirect HTTP to HTTPS.
        #[arg(long)]
        https: bool,
        /// Admin password (default: generated and printed once).
        #[arg(long, env = "FAZT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Run the node in the foreground (creating the data file on first start).
    Start {
        #[command(flatten)]
        data: DataArg,
        /// Listen address for this run (default: the stored `listen`).
        #[arg(long)]
        listen: Option<IpAddr>,
        /// Port for this run (default: the stored `port`; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// HTTPS port for this run (default: the stored `https.port`; 0 picks a free one).
        #[arg(long)]
        https_port: Option<u16>,
        /// Where to save the CLI config on first start (default: the usual client config).
        #[arg(long, env = "FAZT_CONFIG")]
        config: Option<PathBuf>,
        /// Pretend the board clock is off by this many milliseconds (and has no RTC):
        /// for trying the timekeeper without touching the host clock.
        #[arg(long, value_name = "MS", allow_negative_numbers = true)]
        clock_offset_ms: Option<i64>,
    },
    /// Show the data file's state and whether a node is answering.
    Status {
        #[command(flatten)]
        data: DataArg,
    },
    /// Set the admin user name and password (ends open browser sessions).
    SetCredentials {
        #[command(flatten)]
        data: DataArg,
        /// User name.
        #[arg(long, default_value = "admin")]
        username: String,
        /// New password (at least 8 characters).
        #[arg(long, env = "FAZT_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Set one configuration key (takes effect at the next start).
    SetConfig {
        #[command(flatten)]
        data: DataArg,
        /// The key (see `fazt server status` for the list).
        key: String,
        /// The value.
        value: String,
    },
}

/// Runs `fazt server …`.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    match args.command {
        ServerCommand::Init { data, domain, port, https, password } => {
            init(data.data, domain, port, https, password)
        }
        ServerCommand::Start { data, listen, port, https_port, config, clock_offset_ms } => {
            node::run(StartOptions {
                data: data.data,
                listen,
                port,
                https_port,
                client_config: Some(config.unwrap_or_else(crate::proc::client_config::default_path)),
                clock_offset_ms,
            })
        }
        ServerCommand::Status { data } => status(data.data),
        ServerCommand::SetCredentials { data, username, password } => {
            let storage = Storage::open_existing(&data.data)?;
            // Choosing the password claims the node: the first-boot setup page is gone.
            crate::syscall::sessions::set_credentials(&storage, &Clock::new(), &Local, &username, &password)?;
            println!("credentials updated for '{username}'; browser sessions were ended");
            Ok(())
        }
        ServerCommand::SetConfig { data, key, value } => {
            let storage = Storage::open_existing(&data.data)?;
            let value = crate::syscall::config::set(&storage, &Local, &key, &value)?;
            println!("{key} = {value} (restart the node to apply)");
            Ok(())
        }
    }
}

fn init(
    data: PathBuf,
    domain: Option<String>,
    port: Option<u16>,
    https: bool,
    password: Option<String>,
) -> anyhow::Result<()> {
    // Checked before the file is made, so a typo leaves nothing behind.
    let new = crate::syscall::system::NewNode::check(domain.as_deref(), port, https, password.as_deref())?;
    if data.exists() {
        bail!(
            "{} already exists; use `fazt server set-config` or `set-credentials` to change it",
            data.display()
        );
    }
    let _lock = crate::proc::lock::DataLock::acquire(&data)?;
    let storage = Storage::open(&data)?;
    crate::syscall::system::init(&storage, &Local, &new)?;
    let clock = Clock::new();
    let generated = password.is_none();
    let first = node::bootstrap(&storage, &clock, password)?.context("a new data file already has a user")?;
    crate::apps::system::seed(&storage, clock.now_millis())?;
    let config = NodeConfig::load(&storage)?;
    println!("created {} (domain {}, port {})", data.display(), config.domain(), config.get(Setting::Port));
    if https {
        println!(
            "HTTPS: certificates from {} on port {} (see docs/https.md)",
            config.get(Setting::AcmeDirectoryUrl),
            config.get(Setting::HttpsPort)
        );
    }
    if generated {
        println!("admin password: {}  (shown only now)", first.password);
    }
    println!("API token: {}", first.token);
    println!("start it with: fazt server start --data {}", data.display());
    Ok(())
}

fn status(data: PathBuf) -> anyhow::Result<()> {
    let storage = Storage::open_readonly(&data)?;
    let config = NodeConfig::load(&storage)?;
    let apps = smol::block_on(crate::syscall::apps::list(&storage, &Local))?;
    println!("data:    {} ({})", data.display(), super::human_bytes(storage.size_bytes()));
    println!("schema:  version {}", storage.schema_version()?);
    println!("apps:    {} ({} user apps)", apps.len(), apps.iter().filter(|a| !a.system).count());
    let running = crate::proc::lock::holder(&data)?.is_some();
    let port = config.get(Setting::Port);
    let url = format!("http://admin.{}:{port}", config.domain());
    let answering =
        if running { super::http::Client::local(&url).get_json("/api/system/health").is_ok() } else { false };
    println!(
        "node:    {}",
        match (running, answering) {
            (true, true) => format!("running, answering at {url}"),
            (true, false) => "running (holds the data file) but not answering on the stored port".into(),
            _ => "not running".into(),
        }
    );
    print_https(&storage, &config)?;
    print_keys(&storage, &config)?;
    println!("config:");
    for &key in Setting::ALL {
        println!("  {:<26} {:<12} {}", key.name(), config.get(key), key.key().help);
    }
    Ok(())
}

/// The keys part of `server status`: the backend asked for, and where each key is.
fn print_keys(storage: &Storage, config: &NodeConfig) -> anyhow::Result<()> {
    println!("keys:    backend {}", config.get(Setting::KeysBackend));
    let entries = crate::syscall::keys::list(storage, &Local)?;
    for e in entries.iter().filter(|e| e.kind == "key" && !e.name.contains('@')) {
        println!("  key    {:<22} {:<10} {}", e.name, e.algorithm, e.held);
    }
    Ok(())
}

/// The certificates in a data file with no TLS running on it, for
/// [`crate::syscall::certs::list`]: read-only, so adding or removing one is refused.
struct StoredCerts<'a>(&'a Storage);

impl CertStore for StoredCerts<'_> {
    fn certs(&self, _now: crate::time::UnixMillis) -> Result<Vec<serde_json::Value>, SyscallError> {
        let certs = self.0.read_blocking(|c| Ok::<_, SyscallError>(crate::net::tls::store::list(c)?))?;
        Ok(certs
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "source": c.source.as_str(), "not_after": c.not_after}))
            .collect())
    }

    fn add(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: crate::time::UnixMillis,
    ) -> Result<serde_json::Value, SyscallError> {
        Err(SyscallError::refused(Kind::Conflict, "read_only", "server status only reads the data file"))
    }

    fn remove(&self, _: &str) -> Result<(), SyscallError> {
        Err(SyscallError::refused(Kind::Conflict, "read_only", "server status only reads the data file"))
    }
}

/// The HTTPS part of `server status`: mode, certificates, and the last ACME error
/// (rate limits included), read from the data file.
fn print_https(storage: &Storage, config: &NodeConfig) -> anyhow::Result<()> {
    let mode = config.get(Setting::HttpsMode);
    println!("https:   {mode}");
    if mode == "off" {
        return Ok(());
    }
    let certs = crate::syscall::certs::list(&StoredCerts(storage), &Clock::new(), &Local)?;
    let acme = crate::syscall::certs::acme_status(storage, &Local)?;
    for cert in certs {
        println!(
            "  cert   {:<30} {:<6} until {}",
            cert["name"].as_str().unwrap_or("?"),
            cert["source"].as_str().unwrap_or("?"),
            crate::time::rfc3339(cert["not_after"].as_i64().unwrap_or(0))
        );
    }
    if let Some(status) = acme.and_then(|j| serde_json::from_str::<crate::net::tls::acme::Status>(&j).ok()) {
        println!("  acme   {}", status.directory);
        if let (Some(name), Some(at)) = (&status.last_issued, &status.last_issued_at) {
            println!("  acme   last issued: {name} at {at}");
        }
        if let Some(err) = &status.last_error {
            println!(
                "  acme   last error ({} in a row{}): {err}",
                status.failures,
                if status.rate_limited { ", rate-limited by the CA" } else { "" }
            );
            if let Some(next) = &status.next_attempt_at {
                println!("  acme   next attempt at {next}");
            }
        }
    }
    Ok(())
}
