//! The command line: one file per command group, each a thin layer over the syscalls
//! (offline commands, as `Caller::Local`) or the HTTP API of a running node (everything
//! else).

pub mod app;
pub mod backup;
pub mod beacon;
pub mod cert;
pub mod chirp;
pub mod client;
pub mod config;
pub mod deploy;
pub mod events;
pub mod fs;
pub mod hal;
pub mod http;
pub mod keys;
pub mod mnemonic;
pub mod net;
pub mod proc;
pub mod server;
pub mod service;
pub mod storage;
pub mod time;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// fazt: a personal cloud in one binary and one SQLite file.
#[derive(Debug, Parser)]
#[command(name = "fazt", version, about, propagate_version = true)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the node's database is (offline commands and `server start`).
#[derive(Debug, Clone, clap::Args)]
pub struct DataArg {
    /// The node's database file.
    #[arg(long, env = "FAZT_DATA", default_value = "data.db")]
    pub data: PathBuf,
}

/// Which node the client talks to and with what token.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Client config file (server URL and API token).
    #[arg(long, env = "FAZT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Node URL, overriding the config (e.g. http://admin.localhost:8080).
    #[arg(long, env = "FAZT_SERVER", global = true)]
    pub server: Option<String>,
    /// API token, overriding the config.
    #[arg(long, env = "FAZT_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Trust only this CA (PEM) for an https:// node, e.g. its LAN CA from `fazt cert ca`.
    #[arg(long, env = "FAZT_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run and manage a node (init, start, status, set-credentials, set-config).
    Server(server::ServerArgs),
    /// Configure this machine's CLI.
    Client(client::ClientCommand),
    /// Publish a folder as an app.
    Deploy(deploy::DeployArgs),
    /// List, inspect and delete apps; their logs, environment and limits; run handlers.
    App(app::AppArgs),
    /// Follow the node's events (deploys, errors, logins, apps' own), or emit one.
    Events(events::EventsArgs),
    /// Apps' outbound HTTP: allow hosts, the request log, limits and circuit breakers.
    Net(net::NetArgs),
    /// Back up or restore the database.
    Backup(backup::BackupArgs),
    /// Install fazt as a systemd service.
    Service(service::ServiceArgs),
    /// Send and receive small data over sound (speaker and microphone, or WAV files).
    Chirp(chirp::ChirpArgs),
    /// Show the hardware this node sees.
    Hal(hal::HalArgs),
    /// Turn up to 64 bytes into BIP-39 words and back, to pass data on by voice or paper.
    Mnemonic(mnemonic::MnemonicArgs),
    /// This node on the LAN (mDNS) and the fazt nodes around it.
    Beacon(beacon::BeaconArgs),
    /// Read and change node settings (like `server set-config`).
    Config(config::ConfigArgs),
    /// The node's clock: its source (NTP, peers, RTC), error and time server.
    Time(time::TimeArgs),
    /// HTTPS certificates: add your own, list, remove; download the LAN CA.
    Cert(cert::CertArgs),
    /// The node's keys and sealed secrets: where they are held (software or TPM),
    /// rotating them.
    Keys(keys::KeysArgs),
    /// The node process on a data file: status (pid, uptime, memory), stop, restart.
    Proc(proc::ProcArgs),
    /// An app's deployed files (`fs ls APP [PATH]`).
    Fs(fs::FsArgs),
    /// The data file: schema version, pending migrations, sizes; apply migrations.
    Storage(storage::StorageArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server(args) => server::run(args),
        Command::Client(args) => client::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::App(args) => app::run(args),
        Command::Events(args) => events::run(args),
        Command::Net(args) => net::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Service(args) => service::run(args),
        Command::Mnemonic(args) => mnemonic::run(args),
        Command::Chirp(args) => chirp::run(args),
        Command::Hal(args) => hal::run(args),
        Command::Beacon(args) => beacon::run(args),
        Command::Config(args) => config::run(args),
        Command::Time(args) => time::run(args),
        Command::Cert(args) => cert::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Proc(args) => proc::run(args),
        Command::Fs(args) => fs::run(args),
        Command::Storage(args) => storage::run(args),
    }
}

/// The process exit code for an error: 1 when a command found nothing (like grep's
/// "no match": `chirp listen` heard no message), 2 for every real error.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<chirp::NothingHeard>().is_some() {
        1
    } else {
        2
    }
}

/// Human-readable bytes: `1.5 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
