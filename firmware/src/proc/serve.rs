//! The composition root: a node built from a listener, the devices of a [`Hal`] and an
//! opened [`Storage`], served until a shutdown future completes.
//!
//! [`serve`] is the whole of it; [`Node::build`] and [`Node::run`] are the two halves,
//! for callers that need what the build made before serving (the first start's admin
//! token, the HTTPS address, the kernel and the server's state for the banner).
//!
//! This is the one place that sees both the kernel and the server: it builds the
//! [`Kernel`] (the services), then TLS and the server's state ([`Web`]) over it, and does
//! the wiring that needs both (the beacon announces the LAN CA's fingerprint, the
//! certificate upkeep and ACME tasks run beside the servers). `fazt server start`
//! (`proc::node::run`) builds a node over [`Hal::linux`]; the end-to-end tests build
//! many over [`Hal::fake`] in one process.
//!
//! # Threads
//! [`Node::run`] runs the executor on the calling thread and on
//! [`NodeOptions::executor_threads`] more; the kernel adds the JavaScript workers, the
//! event bus writer and (with the beacon on) the mDNS threads of the HAL. When the
//! shutdown future completes, every one of them ends and is waited for, the open
//! connections are closed, and the kernel is dropped, so that a process can build and
//! stop nodes one after another.

use crate::beacon;
use crate::config::Setting;
use crate::events::Events;
use crate::kernel::{Kernel, KernelError};
use crate::net::tls::{LanNames, Tls, TlsError};
use crate::net::Web;
use crate::storage::{Storage, StorageError};
use crate::time::keeper::SourceKind;
use crate::time::{Clock, Timekeeper};
use async_io::Async;
use fazt_hal::Hal;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;

pub use super::node::Bootstrap;

/// Why a node could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A subsystem could not be started.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// HTTPS could not be set up.
    #[error("cannot set up HTTPS: {0}")]
    Tls(#[from] TlsError),
    /// The admin user of a first start could not be created.
    #[error("cannot create the admin user: {0:#}")]
    Bootstrap(anyhow::Error),
    /// The system apps could not be deployed.
    #[error("cannot deploy the system apps: {0}")]
    SystemApps(#[from] crate::fs::deploy::DeployError),
    /// The HTTPS port could not be bound.
    #[error(
        "cannot listen for HTTPS on {addr}: {err} (in use, or below 1024 without root? try --https-port)"
    )]
    HttpsListen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        err: std::io::Error,
    },
    /// A socket or thread could not be set up, or the listener failed.
    #[error("{what}: {err}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        err: std::io::Error,
    },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ServeError {
    move |err| ServeError::Io { what, err }
}

/// How a node is served, beyond what `data.db` configures.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// The HTTPS port, when HTTPS is on, instead of the stored `https.port` (0: any
    /// free one).
    pub https_port: Option<u16>,
    /// The admin password of a first start (none: a generated one, and the node stays
    /// unclaimed until the admin logs in).
    pub password: Option<String>,
    /// Executor threads besides the caller's (none: one per core, less the caller's).
    pub executor_threads: Option<usize>,
}

/// A node built and bound, not yet serving.
pub struct Node {
    web: Arc<Web>,
    listener: Async<TcpListener>,
    https: Option<(Async<TcpListener>, Arc<rustls::ServerConfig>)>,
    http_addr: SocketAddr,
    first: Option<Bootstrap>,
    executor_threads: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("http", &self.http_addr).finish_non_exhaustive()
    }
}

impl Node {
    /// Builds a node over `storage` and the devices of `hal`, serving on `listener`:
    /// sets the clock's floor (saved time, RTC), creates the admin on a first start,
    /// deploys the system apps, starts the kernel, sets up TLS and the server's state
    /// over it, and binds HTTPS when it is on.
    pub fn build(
        listener: Async<TcpListener>,
        hal: Hal,
        storage: Arc<Storage>,
        options: NodeOptions,
    ) -> Result<Node, ServeError> {
        let http_addr = listener.get_ref().local_addr().map_err(io("reading the listener's address"))?;
        let clock = Arc::new(Clock::on(hal.clock.clone()));
        // The clock floor first, so that even the first rows carry the best time known.
        let floor = crate::time::keeper::boot_floor(&storage, &clock, hal.rtc.as_ref());
        let first =
            super::node::bootstrap(&storage, &clock, options.password).map_err(ServeError::Bootstrap)?;
        if crate::apps::system::seed(&storage, clock.now_millis())? {
            tracing::info!("system apps deployed");
        }
        let ip = http_addr.ip();
        let kernel = Arc::new(Kernel::new(storage, clock, hal, ip, http_addr.port())?);
        let tls = (|| {
            let tls = build_tls(&kernel, ip)?;
            // After TLS, which may store the node's certificate at start (as when the
            // kernel built TLS): the cap applies to what the node writes from here on.
            kernel.storage.set_max_bytes(kernel.config.get_u64(Setting::StorageMaxDbBytes))?;
            Ok::<_, ServeError>(tls)
        })();
        let tls = match tls {
            Ok(tls) => tls,
            Err(err) => {
                // The kernel's threads are running already: stop them, as `run` would.
                kernel.runtime.shutdown();
                kernel.events.close();
                return Err(err);
            }
        };
        record_boot(&kernel.timekeeper, &kernel.events, floor);
        let web = Arc::new(Web::new(kernel, tls));
        let https = match web.tls.server_config() {
            Some(config) => {
                let addr = SocketAddr::new(ip, options.https_port.unwrap_or(web.tls.port()));
                let listener =
                    Async::<TcpListener>::bind(addr).map_err(|err| ServeError::HttpsListen { addr, err })?;
                let port = listener.get_ref().local_addr().map_err(io("reading the HTTPS address"))?.port();
                web.tls.set_port(port);
                Some((listener, config))
            }
            None => None,
        };
        let executor_threads = options.executor_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).saturating_sub(1)
        });
        Ok(Node { web, listener, https, http_addr, first, executor_threads })
    }

    /// The kernel, for what the caller shows or checks before serving.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.web.kernel
    }

    /// The server's state (TLS, caches, HTTP limits), for the banner's HTTPS lines.
    pub fn web(&self) -> &Arc<Web> {
        &self.web
    }

    /// The address HTTP is served on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address HTTPS is served on, when it is on.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|(l, _)| l.get_ref().local_addr().ok())
    }

    /// What a first start created (the admin's password and first API token); `None`
    /// when the data file already had an admin.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.first.as_ref()
    }

    /// Serves until `shutdown` completes, then stops everything the node started (see
    /// the module docs). `ready` is called on the calling thread once every service is
    /// started and every socket bound (the time server's too).
    pub fn run(self, shutdown: impl Future<Output = ()>, ready: impl FnOnce()) -> Result<(), ServeError> {
        let Node { web, listener, https, http_addr, first: _, executor_threads } = self;
        let executor = Arc::new(smol::Executor::new());
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let threads: Vec<_> = (0..executor_threads)
            .map(|i| {
                let ex = executor.clone();
                let stop = stop_rx.clone();
                std::thread::Builder::new()
                    .name(format!("fazt-worker-{i}"))
                    // JavaScript handlers run on these threads too (runtime::inline).
                    .stack_size(crate::runtime::inline::THREAD_STACK_BYTES)
                    .spawn(move || smol::block_on(ex.run(async { stop.recv().await.ok() })))
            })
            .collect::<Result<_, _>>()
            .map_err(io("starting the executor threads"))?;
        let result = smol::block_on(executor.run(serve_on(
            &executor,
            &web,
            listener,
            https,
            http_addr.ip(),
            shutdown,
            ready,
        )));
        // Nothing of the node is left on the executor: its threads can go.
        stop_tx.close();
        for thread in threads {
            let _ = thread.join();
        }
        web.kernel.runtime.shutdown();
        // What the bus has not written yet goes to data.db before the node is gone.
        web.kernel.events.close();
        result
    }
}

/// Builds a node (see [`Node::build`]) and serves it until `shutdown` completes.
pub fn serve(
    listener: Async<TcpListener>,
    hal: Hal,
    storage: Arc<Storage>,
    options: NodeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    Node::build(listener, hal, storage, options)?.run(shutdown, || {})
}

/// Sets up HTTPS over the kernel's keys, identity and event bus, for the names and
/// addresses the node answers on (`listen`, or every address of the LAN when it is
/// unspecified), and has the beacon announce the LAN CA's fingerprint.
fn build_tls(kernel: &Kernel, listen: IpAddr) -> Result<Arc<Tls>, TlsError> {
    let addresses = match listen.is_unspecified() {
        true => kernel.lan.addresses(),
        false => vec![listen],
    };
    let lan_names = LanNames::new(&kernel.beacon.name(), kernel.config.domain(), &addresses);
    let tls = Arc::new(Tls::new(
        &kernel.config,
        kernel.storage.clone(),
        kernel.clock.clone(),
        kernel.keys.ecdsa.clone(),
        kernel.keys.sealer.clone(),
        &kernel.identity.id,
        lan_names,
        kernel.events.clone(),
    )?);
    kernel.beacon.set_ca_fingerprint(tls.lan_ca.as_ref().map(|ca| ca.fingerprint.clone()));
    Ok(tls)
}

/// Reports the boot floor's step (saved time, RTC) to the timekeeper and the bus, and
/// wires the timekeeper's later steps to the bus.
fn record_boot(timekeeper: &Timekeeper, events: &Arc<Events>, floor: Option<(SourceKind, i64)>) {
    timekeeper.record_boot(floor);
    if let Some((source, by)) = floor {
        let data = serde_json::json!({"by_ms": by as f64 / 1e6, "source": source.as_str(), "at_boot": true});
        events.notify(crate::events::Kind::TimeStepped, None, data);
    }
    let events = events.clone();
    timekeeper.on_step(Box::new(move |data| events.notify(crate::events::Kind::TimeStepped, None, data)));
}

/// Starts the services on `executor`, serves until `shutdown`, and stops them again.
async fn serve_on(
    executor: &Arc<smol::Executor<'static>>,
    web: &Arc<Web>,
    listener: Async<TcpListener>,
    https: Option<(Async<TcpListener>, Arc<rustls::ServerConfig>)>,
    ip: IpAddr,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    let kernel = &web.kernel;
    let mut tasks = Vec::new();
    // Subscribed before the beacon starts, so the first peers found are events too.
    tasks.push(executor.spawn(beacon::events::follow(kernel.events.clone(), kernel.beacon.subscribe())));
    // The time server first: its port goes into the beacon's announcement.
    let time = kernel.timekeeper.start(executor, ip);
    let beacon =
        kernel.beacon.start(executor, kernel.lan.as_ref(), kernel.storage.clone(), kernel.clock.clone());
    tasks.push(executor.spawn(sweep_expired_kv(kernel.storage.clone(), kernel.clock.clone())));
    let cap = kernel.config.get_u64(Setting::StorageMaxDbBytes);
    tasks.push(executor.spawn(watch_storage(kernel.storage.clone(), kernel.events.clone(), cap)));
    // Closed when `shutdown` completes: both servers stop.
    let (closing, closed) = async_channel::bounded::<()>(1);
    let until_closed = || {
        let closed = closed.clone();
        async move {
            let _ = closed.recv().await;
        }
    };
    let https_server = https.map(|(listener, config)| {
        let serve =
            crate::net::server::serve(executor.clone(), listener, web.clone(), Some(config), until_closed());
        executor.spawn(serve)
    });
    if https_server.is_some() {
        tasks.push(executor.spawn(web.tls.clone().maintain()));
        tasks.push(executor.spawn(web.tls.clone().staple()));
        if let Some(manager) = web.tls.acme.clone() {
            let domain = kernel.config.domain().to_string();
            tasks.push(executor.spawn(crate::net::tls::acme::run(web.tls.clone(), manager, domain)));
        }
    }
    let inline_ms = kernel.config.get_u64(Setting::RuntimeInlineMs);
    if inline_ms > 0 {
        kernel
            .runtime
            .run_inline(executor.clone(), std::time::Duration::from_millis(inline_ms.min(10_000)))
            .map_err(io("starting the inline JavaScript watchdog"))?;
    }
    // A task, not this future: the calling thread may be busy running a JavaScript
    // handler inline, and accepting must go on on the other threads.
    let server = executor.spawn(crate::net::server::serve(
        executor.clone(),
        listener,
        web.clone(),
        None,
        until_closed(),
    ));
    ready();
    shutdown.await;
    tracing::info!("shutting down");
    closing.close();
    let result = server.await.map_err(io("serving HTTP"));
    if let Some(https) = https_server {
        if let Err(err) = https.await {
            tracing::error!(error = %err, "the HTTPS listener stopped");
        }
    }
    // Goodbyes before the tasks go, so peers drop this node at once instead of at expiry.
    kernel.beacon.stop();
    if let Some(beacon) = beacon {
        beacon.cancel().await;
    }
    for task in time.into_iter().chain(tasks) {
        task.cancel().await;
    }
    let timekeeper = kernel.timekeeper.clone();
    blocking::unblock(move || timekeeper.persist_blocking()).await;
    result
}

/// Deletes expired KV entries now and then. Reads already ignore them; this only gives
/// the space back.
async fn sweep_expired_kv(storage: Arc<Storage>, clock: Arc<Clock>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    loop {
        let now = clock.now_millis();
        match storage.write(move |c| crate::syscall::kv::sweep(c, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "expired KV entries removed"),
            Err(err) => tracing::warn!(error = %err, "sweeping expired KV entries failed"),
        }
        async_io::Timer::after(EVERY).await;
    }
}

/// Looks at the disk and `data.db` every minute, and puts `storage.near_full` on the
/// event bus when they cross 90 % used (of the disk, or of `cap`, `storage.max_db_bytes`).
async fn watch_storage(storage: Arc<Storage>, events: Arc<Events>, cap: u64) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
    let mut near_full = crate::storage::watch::NearFull::default();
    loop {
        let storage = storage.clone();
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
                events.notify(
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
