//! `fazt server start`: take the data lock, open (or create) the data file, pick the
//! real hardware ([`Hal::linux`]), bind, and serve ([`super::serve`]) until SIGINT or
//! SIGTERM, with the banner on stdout.

use super::lock::DataLock;
use super::serve::{Node, NodeOptions};
use crate::config::{NodeConfig, Setting};
use crate::kernel::Kernel;
use crate::net::tls::Tls;
use crate::security::{password, tokens, users};
use crate::storage::Storage;
use crate::time::Clock;
use anyhow::Context;
use async_io::Async;
use fazt_hal::{Hal, HalSettings};
use futures_lite::StreamExt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// Overrides given on the command line for one run (not stored).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The data file.
    pub data: PathBuf,
    /// Listen address instead of the stored `listen`.
    pub listen: Option<IpAddr>,
    /// Port instead of the stored `port` (0: any free port).
    pub port: Option<u16>,
    /// HTTPS port instead of the stored `https.port` (0: any free port).
    pub https_port: Option<u16>,
    /// Where to save a client config on first start (none: do not).
    pub client_config: Option<PathBuf>,
    /// A simulated board clock this far off (milliseconds), with no RTC.
    pub clock_offset_ms: Option<i64>,
}

/// What a first start created: shown once to the user.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The admin user name.
    pub username: String,
    /// The generated password.
    pub password: String,
    /// An API token for the CLI on this machine.
    pub token: String,
    /// The first-boot setup code: set when the password was generated, not chosen.
    pub setup_code: Option<String>,
}

/// Creates the admin user and a first API token when the data file has none. A
/// generated password also leaves the node unclaimed (see [`crate::security::setup`]).
pub fn bootstrap(
    storage: &Storage,
    clock: &Clock,
    password: Option<String>,
) -> anyhow::Result<Option<Bootstrap>> {
    if storage.read_blocking(users::has_admin)? {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(password::generate);
    let now = clock.now_millis();
    let (token, setup_code) = storage.write_blocking(|conn| -> anyhow::Result<_> {
        users::set_admin(conn, "admin", &password, now)?;
        let (info, secret) = tokens::create(conn, "first start", None, now)?;
        let code = generated.then(|| crate::security::setup::create_code(conn, &info.id)).transpose()?;
        Ok((secret, code))
    })?;
    Ok(Some(Bootstrap { username: "admin".into(), password, token, setup_code }))
}

/// What `data.db` says about the hardware, for [`Hal::linux`].
pub fn hal_settings(config: &NodeConfig, clock_offset_ms: Option<i64>) -> HalSettings {
    let keys = crate::keys::key_devices(config);
    HalSettings {
        clock_offset_ms,
        key_backend: keys.backend,
        tpm_tcti: keys.tcti,
        tpm_fallback: keys.fallback,
    }
}

/// Runs a node in the foreground until SIGINT or SIGTERM.
pub fn run(opts: StartOptions) -> anyhow::Result<()> {
    let lock = DataLock::acquire(&opts.data)?;
    let started = std::time::Instant::now();
    let storage = Storage::open(&opts.data).with_context(|| format!("opening {}", opts.data.display()))?;
    remove_stale_spools(&opts.data);
    let config = NodeConfig::load(&storage)?;
    let hal = Hal::linux(&hal_settings(&config, opts.clock_offset_ms));
    let ip = match opts.listen {
        Some(ip) => ip,
        None => config.get(Setting::Listen).parse().context("stored listen address")?,
    };
    let port = match opts.port {
        Some(port) => port,
        None => config.get(Setting::Port).parse().context("stored port")?,
    };
    let listener = Async::<TcpListener>::bind(SocketAddr::new(ip, port))
        .with_context(|| format!("cannot listen on {ip}:{port} (in use? try --port)"))?;
    let options = NodeOptions { https_port: opts.https_port, ..NodeOptions::default() };
    let node = Node::build(listener, hal, storage, options)?;
    let kernel = node.kernel().clone();
    let web = node.web().clone();
    let bound = node.http_addr();

    // `fazt proc status|stop` find the node and its addresses through the lock file.
    let holder = super::lock::Holder {
        pid: std::process::id(),
        version: Some(crate::VERSION.to_string()),
        started_at: u64::try_from(kernel.clock.now_millis() / 1000).ok(),
        http: Some(bound),
        https: node.https_addr(),
    };
    if let Err(err) = lock.record(&holder) {
        tracing::warn!(error = %err, "cannot write the node's pid into the lock file");
    }

    // A port given for this run only (say `--port 0`) would not be right after a restart,
    // so the client config is saved only for the stored port.
    let client_config = opts.client_config.as_deref().filter(|_| opts.port.is_none());
    announce(&kernel, &web.tls, bound, node.bootstrap(), client_config);
    drop((kernel, web));

    let shutdown = async {
        match async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int]) {
            Ok(mut signals) => {
                let signal = signals.next().await;
                tracing::info!(?signal, "signal received");
            }
            Err(err) => {
                tracing::warn!(error = %err, "no signal handling; stop with kill");
                std::future::pending::<()>().await;
            }
        }
    };
    // The last line of the banner: scripts and tests wait for it, so it comes once every
    // socket is bound (the time server's UDP port too), not when the HTTP one is.
    node.run(shutdown, || println!("fazt is ready (started in {} ms)", started.elapsed().as_millis()))
        .context("serving")?;
    Ok(())
}

/// Deletes upload spool files left by a node that was killed mid-upload; we hold the
/// data lock, so none of them can belong to a live upload.
fn remove_stale_spools(data: &Path) {
    let dir = match data.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".fazt-upload-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Prints the setup page's address and code while the node is unclaimed and the page on.
fn announce_setup(kernel: &Kernel, bound: SocketAddr) {
    use crate::security::setup::SetupMode;
    if kernel.setup.mode == SetupMode::Off || !kernel.setup.maybe_unclaimed() {
        return;
    }
    let code = match kernel.storage.read_blocking(crate::security::setup::code) {
        Ok(Some(code)) => code,
        _ => return,
    };
    let host = match kernel.beacon.config().enabled {
        true => format!("{}.local", kernel.beacon.name()),
        false => kernel.config.domain().to_string(),
    };
    let who = match kernel.setup.mode {
        SetupMode::Lan => "from this network",
        _ => "from this machine",
    };
    println!(
        "  setup:     http://{host}:{}/  {who}, setup code {code}  (until the admin logs in)",
        bound.port()
    );
}

/// Prints where the node is and, on first start, how to log in.
fn announce(
    kernel: &Kernel,
    tls: &Tls,
    bound: SocketAddr,
    first: Option<&Bootstrap>,
    client_config: Option<&Path>,
) {
    let admin = kernel.app_url("admin");
    println!("fazt {} listening on {bound}", crate::VERSION);
    println!("  sites:     {}  (apps at {})", kernel.app_url("root"), kernel.app_url("<app>"));
    println!("  dashboard: {admin}");
    println!("  data:      {}", kernel.storage.path().display());
    match kernel.beacon.config().enabled {
        true => println!(
            "  beacon:    http://{}.local:{}/  (node {})",
            kernel.beacon.name(),
            bound.port(),
            kernel.identity.id
        ),
        false => println!("  beacon:    off  (node {})", kernel.identity.id),
    }
    if tls.server_config().is_some() {
        let host = format!("admin.{}", kernel.config.domain());
        let url = match tls.port() {
            443 => format!("https://{host}/"),
            port => format!("https://{host}:{port}/"),
        };
        println!("  https:     {url}  (certificates: {}, port {})", tls.mode.as_str(), tls.port());
        if let Some(ca) = &tls.lan_ca {
            println!(
                "  LAN CA:    sha256 {}  (trust it: {}api/tls/ca.pem)",
                ca.fingerprint,
                kernel.app_url("admin")
            );
        }
    }
    announce_setup(kernel, bound);
    let Some(first) = first else { return };
    println!();
    println!("First start: log in to the dashboard as '{}' with password:", first.username);
    println!();
    println!("    {}", first.password);
    println!();
    println!("  It is shown only now; change it with `fazt server set-credentials`.");
    println!("  API token for the CLI: {}", first.token);
    let server = admin.trim_end_matches('/').to_string();
    let saved = client_config.and_then(|path| {
        if path.exists() {
            return None;
        }
        super::client_config::ClientConfig { server: server.clone(), token: first.token.clone() }
            .save(path)
            .ok()
            .map(|_| path)
    });
    match saved {
        Some(path) => println!(
            "  The CLI on this machine is set up ({}): try `fazt deploy ./my-site --name blog`.",
            path.display()
        ),
        None => {
            println!("  Set up the CLI with: fazt client set-auth-token {} --server {server}", first.token)
        }
    }
    println!();
}
