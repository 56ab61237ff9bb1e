//! The kernel: the handles every subsystem shares, built once at start.

use crate::beacon::{Beacon, BeaconConfig};
use crate::config::{NodeConfig, Setting};
use crate::identity::NodeIdentity;
use crate::security::ratelimit::LoginLimiter;
use crate::storage::Storage;
use crate::time::keeper::TimeSettings;
use crate::time::{Clock, Timekeeper};
use fazt_hal::board::Board;
use fazt_hal::discovery::Lan;
use fazt_hal::Hal;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Why a kernel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Reading configuration failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The keystore (software or TPM) could not be opened.
    #[error("cannot open the node's keys: {0}")]
    Keys(#[from] crate::keys::KeysError),
    /// The node identity key could not be loaded or created.
    #[error("cannot load the node identity: {0}")]
    Identity(fazt_hal::keystore::Error),
    /// The JavaScript worker threads could not be started.
    #[error("cannot start the JavaScript workers: {0}")]
    Workers(std::io::Error),
}

/// The kernel's services of a running node, shared by everything above it. What only
/// the HTTP server holds (caches, TLS, HTTP limits) is `net`'s, not here: the kernel
/// sits below `net` and does not know it.
pub struct Kernel {
    /// The one owner of `data.db`.
    pub storage: Arc<Storage>,
    /// The one clock.
    pub clock: Arc<Clock>,
    /// Configuration as loaded at start.
    pub config: NodeConfig,
    /// The board we run on (HAL).
    pub board: Box<dyn Board>,
    /// The LAN: discovery for the beacon, and this machine's addresses (HAL).
    pub lan: Arc<dyn Lan>,
    /// The serverless JavaScript runtime.
    pub runtime: crate::runtime::JsRuntime,
    /// Password-guessing brake.
    pub login_limiter: LoginLimiter,
    /// Password hashes checked at once (one per core): argon2 is slow and memory-hungry
    /// on purpose.
    pub password_checks: async_lock::Semaphore,
    /// When the node started, for uptime.
    pub started: Instant,
    /// The port clients reach us on (for the URLs we print and return).
    pub public_port: u16,
    /// The keystores (software or TPM) and the sealer of secrets in `data.db`.
    pub keys: crate::keys::Keys,
    /// Who this node is (key pair in the keystore, id derived from it).
    pub identity: Arc<NodeIdentity>,
    /// LAN announcement and the peer list.
    pub beacon: Arc<Beacon>,
    /// Keeps `clock` right (NTP, peers, RTC, persisted time) and serves it.
    pub timekeeper: Arc<Timekeeper>,
    /// First-boot setup: whether the node is still unclaimed, and who may see the page.
    pub setup: crate::security::setup::SetupState,
    /// The event bus: what happened, live and as a bounded history.
    pub events: Arc<crate::events::Events>,
    /// Outbound HTTP for apps: allow-lists, address rules, limits, circuit breakers, log.
    pub egress: Arc<crate::egress::Egress>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("storage", &self.storage.path()).finish_non_exhaustive()
    }
}

impl Kernel {
    /// Builds the kernel over an opened database and the devices of `hal`, for a node
    /// listening on `listen`; creates the node key on the very first start. `clock`
    /// runs over `hal.clock`. The database's size cap is not set here: the composition
    /// root sets it once TLS has stored what it makes at start.
    pub fn new(
        storage: Arc<Storage>,
        clock: Arc<Clock>,
        hal: Hal,
        listen: IpAddr,
        public_port: u16,
    ) -> Result<Self, KernelError> {
        let config = NodeConfig::load(&storage)?;
        let key_settings = crate::keys::KeySettings {
            devices: hal.keys,
            machine_key: crate::keys::machine_key_path(storage.path()),
        };
        let keys = crate::keys::Keys::open(&storage, &clock, &key_settings)?;
        let identity =
            Arc::new(NodeIdentity::load_or_create(keys.identity.clone()).map_err(KernelError::Identity)?);
        let beacon =
            Arc::new(Beacon::new(identity.clone(), BeaconConfig::from_config(&config, listen), public_port));
        let timekeeper = Arc::new(Timekeeper::new(
            clock.clone(),
            storage.clone(),
            identity.clone(),
            beacon.clone(),
            TimeSettings::from_config(&config),
        ));
        // Started before the composition root builds TLS over the kernel: issuing the LAN
        // certificate at start is a `cert.issued` event.
        let events = crate::events::Events::start(
            storage.clone(),
            clock.clone(),
            config.get_u64(Setting::EventsMaxRows),
        )?;
        let setup = crate::security::setup::SetupState::load(
            &storage,
            crate::security::setup::SetupMode::parse(config.get(Setting::SetupPage)),
        )?;
        let egress = Arc::new(crate::egress::Egress::new(
            storage.clone(),
            clock.clone(),
            Some(events.clone()),
            crate::egress::Settings::from_config(&config),
        ));
        let workers = match config.get_u64(Setting::RuntimeWorkers) {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) + 1,
            n => n.min(256) as usize,
        };
        let runtime = crate::runtime::JsRuntime::start(
            workers,
            storage.clone(),
            clock.clone(),
            Some(timekeeper.clone()),
            keys.sealer.clone(),
            Some(events.clone()),
            Some(egress.clone()),
        )
        .map_err(KernelError::Workers)?;
        Ok(Kernel {
            keys,
            storage,
            clock,
            config,
            board: hal.board,
            lan: hal.lan,
            runtime,
            login_limiter: LoginLimiter::default(),
            password_checks: async_lock::Semaphore::new(
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            ),
            started: Instant::now(),
            public_port,
            identity,
            beacon,
            timekeeper,
            setup,
            events,
            egress,
        })
    }

    /// The URL of an app, e.g. `http://blog.localhost:8080/`.
    pub fn app_url(&self, app_name: &str) -> String {
        let domain = self.config.domain();
        let host = if app_name == "root" { domain.to_string() } else { format!("{app_name}.{domain}") };
        match self.public_port {
            80 => format!("http://{host}/"),
            port => format!("http://{host}:{port}/"),
        }
    }
}
