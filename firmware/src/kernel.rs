//! The kernel: the handles every subsystem shares, built once at start.

use crate::beacon::{Beacon, BeaconConfig};
use crate::config::{NodeConfig, Setting};
use crate::identity::NodeIdentity;
use crate::net::cache::{BlobCache, SiteCache};
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
    /// HTTPS could not be set up.
    #[error("cannot set up HTTPS: {0}")]
    Tls(#[from] crate::net::tls::TlsError),
}

/// Shared state of a running node.
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
    /// Current deployments by app name, for serving.
    pub sites: SiteCache,
    /// Hot file bodies by content hash.
    pub blobs: BlobCache,
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
    /// HTTPS: certificates by SNI, the LAN CA.
    pub tls: Arc<crate::net::tls::Tls>,
    /// First-boot setup: whether the node is still unclaimed, and who may see the page.
    pub setup: crate::security::setup::SetupState,
    /// HTTP limits: timeouts, connection caps, the request-body budget.
    pub http: crate::net::limits::HttpGuard,
    /// The event bus: what happened, live and as a bounded history.
    pub events: Arc<crate::events::Events>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("storage", &self.storage.path()).finish_non_exhaustive()
    }
}

impl Kernel {
    /// Builds the kernel over an opened database and the devices of `hal`, for a node
    /// listening on `listen`; creates the node key on the very first start. `clock`
    /// runs over `hal.clock`.
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
        let addresses = match listen.is_unspecified() {
            true => hal.lan.addresses(),
            false => vec![listen],
        };
        // Before TLS: issuing the LAN certificate at start is a `cert.issued` event.
        let events = crate::events::Events::start(
            storage.clone(),
            clock.clone(),
            config.get_u64(Setting::EventsMaxRows),
        )?;
        let lan_names = crate::net::tls::LanNames::new(&beacon.name(), config.domain(), &addresses);
        let tls = Arc::new(crate::net::tls::Tls::new(
            &config,
            storage.clone(),
            clock.clone(),
            keys.ecdsa.clone(),
            keys.sealer.clone(),
            &identity.id,
            lan_names,
            events.clone(),
        )?);
        beacon.set_ca_fingerprint(tls.lan_ca.as_ref().map(|ca| ca.fingerprint.clone()));
        storage.set_max_bytes(config.get_u64(Setting::StorageMaxDbBytes))?;
        let setup = crate::security::setup::SetupState::load(
            &storage,
            crate::security::setup::SetupMode::parse(config.get(Setting::SetupPage)),
        )?;
        let blobs = BlobCache::new(
            config.get_u64(Setting::CacheMaxBytes),
            config.get_u64(Setting::CacheMaxFileBytes),
        );
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
        )
        .map_err(KernelError::Workers)?;
        let http = crate::net::limits::HttpGuard::new(crate::net::limits::HttpLimits::from_config(&config));
        Ok(Kernel {
            http,
            keys,
            storage,
            clock,
            config,
            board: hal.board,
            lan: hal.lan,
            sites: SiteCache::default(),
            blobs,
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
            tls,
            setup,
            events,
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
