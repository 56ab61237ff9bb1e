//! The beacon: this node announces itself on the LAN with mDNS (`_fazt._tcp.local` and
//! `<name>.local`) and keeps a bounded table of the other fazt nodes it hears, with found
//! and lost events for the timekeeper and the mesh. It needs no DNS, no internet and no
//! configuration.
//!
//! # Layout
//! - [`events`]: found and lost peers as public events on the kernel bus.
//! - [`name`]: the node's name, a DNS label.
//! - [`record`]: the signed TXT record and the checks on records heard from the LAN.
//! - [`freshness`]: the signed sequence that lets nodes refuse replayed announcements.
//! - [`peers`]: the bounded peer table and its liveness bookkeeping.
//! - [`scan`]: a one-off look at the LAN, without a running node.
//! - `run`: the loop that announces, listens and expires.
//!
//! # Implementation
//! The mDNS work happens on the HAL backend's threads (see
//! [`fazt_hal::discovery::mdns`]); the loop here is one task on the node's executor
//! that wakes on a discovery event or a timer tick (every few seconds to 30 s, see
//! [`BeaconConfig::tick`]), and writes the `beacon_nodes` table only when the peer
//! table changed.

pub mod events;
pub mod freshness;
pub mod name;
pub mod peers;
pub mod record;
mod run;
pub mod scan;

use crate::config::{NodeConfig, Setting};
use crate::identity::{self, NodeIdentity};
use fazt_hal::discovery::mdns::Interfaces;
use fazt_hal::discovery::Discovery;
use freshness::Freshness;
use peers::{Peer, PeerEvent, PeerTable};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a node offers, announced in its TXT record; later subsystems add theirs.
pub const SERVICES: &[&str] = &["web"];

/// Node ids whose newest sequence is remembered, per place in the peer table: nodes
/// that left are remembered too, so a replay of their old announcement is refused.
const FRESHNESS_PER_NODE: usize = 4;

/// Capacity of a subscriber's event queue; a subscriber that falls further behind
/// misses events rather than holding memory.
const SUBSCRIBER_CAPACITY: usize = 256;

/// The beacon's settings (the `beacon.*` keys).
#[derive(Debug, Clone)]
pub struct BeaconConfig {
    /// Announce and listen at all.
    pub enabled: bool,
    /// Why it is off although `beacon.enabled` is true (e.g. listening on loopback).
    pub off_reason: Option<String>,
    /// The name asked for (`beacon.name`, or one derived from the host name).
    pub name: String,
    /// Interfaces to use.
    pub interfaces: Interfaces,
    /// Time between announcements (zero: only at start and on changes).
    pub announce_interval: Duration,
    /// A node not heard from for this long is dropped.
    pub expiry: Duration,
    /// Most nodes kept.
    pub max_nodes: usize,
}

impl BeaconConfig {
    /// The settings of a node that listens on `listen`.
    ///
    /// A node listening on loopback only cannot be reached from the LAN, so announcing
    /// it would mislead peers; it stays quiet (and sends no multicast at all, which keeps
    /// test nodes off the host's network). A node bound to one address announces on
    /// that address's interface unless `beacon.interfaces` says otherwise.
    pub fn from_config(config: &NodeConfig, listen: IpAddr) -> Self {
        let configured = config.get(Setting::BeaconName);
        let list: Vec<String> = config
            .get(Setting::BeaconInterfaces)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let interfaces = if !list.is_empty() {
            Interfaces::Only(list)
        } else if listen.is_unspecified() {
            Interfaces::Auto
        } else {
            Interfaces::Address(listen)
        };
        let enabled = config.get_bool(Setting::BeaconEnabled);
        let off_reason = if !enabled {
            Some("beacon.enabled is false".to_string())
        } else if listen.is_loopback() {
            Some(format!("listening on {listen} only, which no LAN peer can reach"))
        } else {
            None
        };
        BeaconConfig {
            enabled: off_reason.is_none(),
            off_reason,
            name: if configured.is_empty() { name::default_name() } else { configured.to_string() },
            interfaces,
            announce_interval: Duration::from_secs(config.get_u64(Setting::BeaconAnnounceIntervalSecs)),
            expiry: Duration::from_secs(config.get_u64(Setting::BeaconExpirySecs).max(1)),
            max_nodes: config.get_u64(Setting::BeaconMaxNodes).clamp(1, 100_000) as usize,
        }
    }

    /// How often the loop wakes when the LAN is quiet: often enough to announce on time
    /// and to confirm a quiet peer before it expires, never more than every 30 s.
    pub fn tick(&self) -> Duration {
        let mut tick = self.expiry / 4;
        if !self.announce_interval.is_zero() {
            tick = tick.min(self.announce_interval);
        }
        tick.clamp(Duration::from_millis(250), Duration::from_secs(30))
    }

    /// How long a quiet peer gets to answer a confirmation query: a tenth of the expiry,
    /// between 1 and 10 s (RFC 6762 section 10.4 waits 10 s).
    pub fn confirm_window(&self) -> Duration {
        (self.expiry / 10).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }
}

/// The beacon's state, for status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Turned off (see the reason).
    Off,
    /// Starting up.
    Starting,
    /// Announcing and listening.
    Announcing,
    /// mDNS could not be used (no network); the node runs without it.
    Unavailable,
    /// Stopped with goodbyes at shutdown.
    Stopped,
}

/// Counters since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Nodes found.
    pub found: u64,
    /// Nodes lost.
    pub lost: u64,
    /// Records refused (malformed, oversized, forged).
    pub rejected: u64,
    /// Signed records refused for being older than one already seen from the same node
    /// (replays).
    pub replayed: u64,
    /// Newcomers ignored because the table was full.
    pub ignored_full: u64,
    /// Times our name was taken on the LAN and changed.
    pub renamed: u64,
    /// Announcements sent (the first is two packets per interface and family, later
    /// ones one).
    pub announcements: u64,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// The name in use (the configured one, or its `-N` form after a conflict).
    name: String,
    /// The name asked for, to notice `fazt beacon set-name` on a running node.
    wanted: String,
    /// The full name we registered, for goodbyes.
    announced: Option<String>,
    peers: PeerTable,
    /// The newest sequence seen per node id (kept after a node leaves).
    freshness: Freshness,
    /// This start's boot value (see [`freshness`]) and when the loop started.
    boot: Option<(u64, std::time::Instant)>,
    /// The addresses of our last announcement, to notice DHCP changes.
    announced_addresses: Vec<IpAddr>,
    discovery: Option<Arc<dyn Discovery>>,
    counters: Counters,
    error: Option<String>,
}

/// The beacon of a node.
#[derive(Debug)]
pub struct Beacon {
    identity: Arc<NodeIdentity>,
    config: BeaconConfig,
    port: u16,
    inner: Mutex<Inner>,
    subscribers: Mutex<Vec<async_channel::Sender<PeerEvent>>>,
    /// Unsigned TXT entries other subsystems add (the time server's port).
    extra_txt: Mutex<Vec<(String, String)>>,
    ca_fingerprint: Mutex<Option<String>>,
}

impl Beacon {
    /// A beacon for the node `identity` serving HTTP on `port`; it starts with
    /// [`Beacon::start`].
    pub fn new(identity: Arc<NodeIdentity>, config: BeaconConfig, port: u16) -> Self {
        let inner = Inner {
            state: if config.enabled { State::Starting } else { State::Off },
            name: config.name.clone(),
            wanted: config.name.clone(),
            announced: None,
            peers: PeerTable::new(config.max_nodes),
            freshness: Freshness::new(FRESHNESS_PER_NODE * config.max_nodes),
            boot: None,
            announced_addresses: Vec::new(),
            discovery: None,
            counters: Counters::default(),
            error: config.off_reason.clone(),
        };
        Beacon {
            identity,
            config,
            port,
            inner: Mutex::new(inner),
            subscribers: Mutex::default(),
            extra_txt: Mutex::default(),
            ca_fingerprint: Mutex::default(),
        }
    }

    /// Adds (or replaces) an unsigned TXT entry, e.g. `ntp=123`; set before
    /// [`Beacon::start`], since it is sent with the next announcement. Unsigned is
    /// enough for pointers such as a port: what is found there proves itself (the time
    /// server signs its answers with the node key).
    pub fn set_txt(&self, key: &str, value: &str) {
        let mut extra = self.extra_txt.lock().unwrap_or_else(|e| e.into_inner());
        extra.retain(|(k, _)| k != key);
        extra.push((key.to_string(), value.to_string()));
    }

    pub(crate) fn extra_txt(&self) -> Vec<(String, String)> {
        self.extra_txt.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Announces the SHA-256 of the node's LAN CA certificate (TXT `ca`), so other fazt
    /// nodes can pin it; set before [`Beacon::start`].
    pub fn set_ca_fingerprint(&self, fingerprint: Option<String>) {
        *self.ca_fingerprint.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
    }

    /// The LAN CA fingerprint announced, if any.
    pub fn ca_fingerprint(&self) -> Option<String> {
        self.ca_fingerprint.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node identity.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The settings.
    pub fn config(&self) -> &BeaconConfig {
        &self.config
    }

    /// The name in use on the LAN.
    pub fn name(&self) -> String {
        self.inner().name.clone()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner().state
    }

    /// The nodes seen now.
    pub fn peers(&self) -> Vec<Peer> {
        self.inner().peers.list()
    }

    /// Found and lost events from now on.
    pub fn subscribe(&self) -> async_channel::Receiver<PeerEvent> {
        let (tx, rx) = async_channel::bounded(SUBSCRIBER_CAPACITY);
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    fn publish(&self, event: PeerEvent) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers
            .retain(|tx| !matches!(tx.try_send(event.clone()), Err(async_channel::TrySendError::Closed(_))));
    }

    /// Packet counters of the discovery backend (may wait up to 200 ms: call it off the
    /// executor).
    pub fn metrics(&self) -> std::collections::BTreeMap<String, i64> {
        let discovery = self.inner().discovery.clone();
        discovery.map(|d| d.metrics()).unwrap_or_default()
    }

    /// Everything `GET /api/system/beacon` and `fazt beacon status` show.
    pub fn status(&self) -> serde_json::Value {
        let inner = self.inner();
        let host = format!("{}.local", inner.name);
        serde_json::json!({
            "enabled": self.config.enabled,
            "state": inner.state,
            "reason": inner.error,
            "node": {
                "id": self.identity.id,
                "name": inner.name,
                "host": host,
                "url": format!("http://{host}:{}/", self.port),
                "port": self.port,
                "version": crate::VERSION,
                "services": SERVICES,
                "public_key": identity::encode_key(&self.identity.public_key),
                "ca_fingerprint": self.ca_fingerprint(),
            },
            "settings": {
                "interfaces": match &self.config.interfaces {
                    Interfaces::Auto => "auto".to_string(),
                    Interfaces::Only(list) => list.join(","),
                    Interfaces::Address(ip) => format!("the interface of {ip}"),
                },
                "announce_interval_secs": self.config.announce_interval.as_secs(),
                "expiry_secs": self.config.expiry.as_secs(),
                "max_nodes": self.config.max_nodes,
            },
            "counters": inner.counters,
            "peers": inner.peers.list(),
        })
    }

    /// Withdraws our announcement with goodbye packets and stops mDNS; blocks for at
    /// most about two seconds (call it at shutdown, off the executor).
    pub fn stop(&self) {
        let discovery = {
            let mut inner = self.inner();
            if inner.state == State::Announcing {
                inner.state = State::Stopped;
            }
            inner.discovery.take()
        };
        if let Some(discovery) = discovery {
            if let Err(err) = discovery.shutdown() {
                tracing::warn!(error = %err, "beacon: stopping mDNS");
            }
        }
    }
}

/// The timekeeper learns about peers through this, without knowing the beacon.
impl crate::time::keeper::PeerDirectory for Beacon {
    fn peers(&self) -> Vec<crate::time::keeper::TimePeer> {
        let peers = self.peers().into_iter().map(|p| p.record);
        peers
            .map(|r| crate::time::keeper::TimePeer {
                id: r.id,
                name: r.name,
                addresses: r.addresses,
                public_key: r.public_key,
                verified: r.verified,
                ntp_port: r.ntp_port,
            })
            .collect()
    }

    fn changes(&self) -> futures_lite::stream::Boxed<crate::time::keeper::PeerChange> {
        use crate::time::keeper::PeerChange;
        use futures_lite::StreamExt;
        let changes = self.subscribe().map(|event| match event {
            PeerEvent::Found { .. } => PeerChange::Found,
            PeerEvent::Lost { .. } => PeerChange::Lost,
        });
        changes.boxed()
    }

    fn announce_ntp_port(&self, port: u16) {
        self.set_txt("ntp", &port.to_string());
    }
}
