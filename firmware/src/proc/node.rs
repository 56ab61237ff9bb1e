//! Starting a node: open (or create) the data file, seed the system apps, bind, serve
//! until SIGINT/SIGTERM.

use super::lock::DataLock;
use crate::config::{NodeConfig, Setting};
use crate::kernel::Kernel;
use crate::security::{password, tokens, users};
use crate::storage::Storage;
use crate::time::Clock;
use anyhow::Context;
use async_io::Async;
use fazt_hal::board::LinuxBoard;
use fazt_hal::time::{NoRtc, OffsetClock, Rtc, SysfsRtc, SystemClock};
use futures_lite::StreamExt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Runs a node in the foreground until SIGINT or SIGTERM.
pub fn run(opts: StartOptions) -> anyhow::Result<()> {
    let lock = DataLock::acquire(&opts.data)?;
    let started = std::time::Instant::now();
    let storage = Storage::open(&opts.data).with_context(|| format!("opening {}", opts.data.display()))?;
    remove_stale_spools(&opts.data);
    let (clock, rtc): (Arc<Clock>, Box<dyn Rtc>) = match opts.clock_offset_ms {
        Some(offset) => {
            let board = OffsetClock::new(Arc::new(SystemClock), offset.saturating_mul(1_000_000));
            (Arc::new(Clock::on(Arc::new(board))), Box::new(NoRtc))
        }
        None => (Arc::new(Clock::new()), Box::new(SysfsRtc::default())),
    };
    // The clock floor first, so that even the first rows carry the best time known.
    let floor = crate::time::keeper::boot_floor(&storage, &clock, rtc.as_ref());
    let first = bootstrap(&storage, &clock, None)?;
    if crate::apps::system::seed(&storage, clock.now_millis())? {
        tracing::info!("system apps deployed");
    }
    let config = NodeConfig::load(&storage)?;
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
    let bound = listener.get_ref().local_addr()?;
    let kernel = Arc::new(Kernel::new(storage, clock, Box::new(LinuxBoard), ip, bound.port())?);
    kernel.timekeeper.record_boot(floor);
    if let Some((source, by)) = floor {
        let data = serde_json::json!({"by_ms": by as f64 / 1e6, "source": source.as_str(), "at_boot": true});
        kernel.events.notify(crate::events::Kind::TimeStepped, None, data);
    }
    let events = kernel.events.clone();
    kernel
        .timekeeper
        .on_step(Box::new(move |data| events.notify(crate::events::Kind::TimeStepped, None, data)));
    let https = match kernel.tls.server_config() {
        Some(config) => {
            let port = opts.https_port.unwrap_or(kernel.tls.port());
            let listener = Async::<TcpListener>::bind(SocketAddr::new(ip, port)).with_context(|| {
                format!("cannot listen for HTTPS on {ip}:{port} (in use, or below 1024 without root? try --https-port)")
            })?;
            kernel.tls.set_port(listener.get_ref().local_addr()?.port());
            Some((listener, config))
        }
        None => None,
    };

    // `fazt proc status|stop` find the node and its addresses through the lock file.
    let holder = super::lock::Holder {
        pid: std::process::id(),
        version: Some(crate::VERSION.to_string()),
        started_at: u64::try_from(kernel.clock.now_millis() / 1000).ok(),
        http: Some(bound),
        https: https.as_ref().and_then(|(l, _)| l.get_ref().local_addr().ok()),
    };
    if let Err(err) = lock.record(&holder) {
        tracing::warn!(error = %err, "cannot write the node's pid into the lock file");
    }

    // A port given for this run only (say `--port 0`) would not be right after a restart,
    // so the client config is saved only for the stored port.
    let client_config = opts.client_config.as_deref().filter(|_| opts.port.is_none());
    announce(&kernel, bound, first.as_ref(), client_config);

    let executor = Arc::new(smol::Executor::new());
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).saturating_sub(1);
    // The main thread runs the executor too, so N cores get N executor threads.
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let ex = executor.clone();
            let stop = stop_rx.clone();
            std::thread::Builder::new()
                .name(format!("fazt-worker-{i}"))
                // JavaScript handlers run on these threads too (runtime::inline).
                .stack_size(crate::runtime::inline::THREAD_STACK_BYTES)
                .spawn(move || smol::block_on(ex.run(async { stop.recv().await.ok() })))
        })
        .collect::<Result<_, _>>()?;

    let shutdown = async {
        match async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int]) {
            Ok(mut signals) => {
                let signal = signals.next().await;
                tracing::info!(?signal, "shutting down");
            }
            Err(err) => {
                tracing::warn!(error = %err, "no signal handling; stop with kill");
                std::future::pending::<()>().await;
            }
        }
    };
    // Subscribed before the beacon starts, so the first peers found are events too.
    executor.spawn(crate::beacon::events::follow(kernel.events.clone(), kernel.beacon.subscribe())).detach();
    // The time server first: its port goes into the beacon's announcement.
    let time = kernel.timekeeper.start(&executor, ip);
    let beacon = kernel.beacon.start(&executor, kernel.storage.clone(), kernel.clock.clone());
    executor.spawn(sweep_expired_kv(kernel.clone())).detach();
    executor.spawn(watch_storage(kernel.clone())).detach();
    if let Some((listener, config)) = https {
        let serve = crate::net::server::serve(
            executor.clone(),
            listener,
            kernel.clone(),
            Some(config),
            std::future::pending(),
        );
        executor
            .spawn(async move {
                if let Err(err) = serve.await {
                    tracing::error!(error = %err, "the HTTPS listener stopped");
                }
            })
            .detach();
        executor.spawn(kernel.tls.clone().maintain()).detach();
        executor.spawn(kernel.tls.clone().staple()).detach();
        if let Some(manager) = kernel.tls.acme.clone() {
            let domain = kernel.config.domain().to_string();
            executor.spawn(crate::net::tls::acme::run(kernel.tls.clone(), manager, domain)).detach();
        }
    }
    let inline_ms = kernel.config.get_u64(Setting::RuntimeInlineMs);
    if inline_ms > 0 {
        kernel
            .runtime
            .run_inline(executor.clone(), std::time::Duration::from_millis(inline_ms.min(10_000)))?;
    }
    // A task, not the main thread's own future: the main thread may be busy running a
    // JavaScript handler inline, and accepting must go on on the other threads.
    let server =
        executor.spawn(crate::net::server::serve(executor.clone(), listener, kernel.clone(), None, shutdown));
    // The last line of the banner: scripts and tests wait for it, so it comes once every
    // socket is bound (the time server's UDP port too), not when the HTTP one is.
    println!("fazt is ready (started in {} ms)", started.elapsed().as_millis());
    let result = smol::block_on(executor.run(server));
    // Goodbyes before exit, so peers drop this node at once instead of at expiry.
    kernel.beacon.stop();
    drop(beacon);
    drop(time);
    kernel.timekeeper.persist_blocking();
    // What the bus has not written yet goes to data.db before the process ends.
    kernel.events.close();
    stop_tx.close();
    for worker in workers {
        let _ = worker.join();
    }
    result.context("serving")?;
    Ok(())
}

/// Deletes expired KV entries now and then. Reads already ignore them; this only gives
/// the space back.
async fn sweep_expired_kv(kernel: Arc<Kernel>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    loop {
        let now = kernel.clock.now_millis();
        match kernel.storage.write(move |c| crate::syscall::kv::sweep(c, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "expired KV entries removed"),
            Err(err) => tracing::warn!(error = %err, "sweeping expired KV entries failed"),
        }
        async_io::Timer::after(EVERY).await;
    }
}

/// Looks at the disk and `data.db` every minute, and puts `storage.near_full` on the
/// event bus when they cross 90 % used (of the disk, or of `storage.max_db_bytes`).
async fn watch_storage(kernel: Arc<Kernel>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
    let cap = kernel.config.get_u64(crate::config::Setting::StorageMaxDbBytes);
    let mut near_full = crate::storage::watch::NearFull::default();
    loop {
        let storage = kernel.storage.clone();
        let reading =
            blocking::unblock(move || crate::storage::watch::read(storage.path(), storage.size_bytes(), cap))
                .await;
        match reading {
            Ok(reading) if near_full.crossed(&reading) => {
                tracing::warn!(
                    free_mb = reading.disk_free >> 20,
                    db_mb = reading.db_bytes >> 20,
                    "storage is nearly full"
                );
                kernel.events.notify(
                    crate::events::Kind::StorageNearFull,
                    None,
                    serde_json::json!({
                        "disk_free_bytes": reading.disk_free,
                        "disk_total_bytes": reading.disk_total,
                        "db_bytes": reading.db_bytes,
                        "db_cap_bytes": reading.db_cap,
                    }),
                );
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "cannot read the disk's free space"),
        }
        async_io::Timer::after(EVERY).await;
    }
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
fn announce(kernel: &Kernel, bound: SocketAddr, first: Option<&Bootstrap>, client_config: Option<&Path>) {
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
    if kernel.tls.server_config().is_some() {
        let tls = &kernel.tls;
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
