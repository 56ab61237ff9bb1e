//! Service discovery on the local network (mDNS / DNS-SD): announce a service under a
//! host name, browse for others, and hear when they leave.
//!
//! Backends:
//! - [`mdns::MdnsDiscovery`]: the real one, multicast DNS on UDP 5353 (`mdns-sd`).
//! - [`loopback::LoopbackNetwork`]: an in-memory LAN for tests, with conflicts, goodbyes
//!   and crashes, and no sockets.
//!
//! # Examples
//! ```
//! use fazt_hal::discovery::{loopback::LoopbackNetwork, Announcement, Discovery, Event};
//! let lan = LoopbackNetwork::new();
//! let (a, b) = (lan.endpoint([10, 0, 0, 1]), lan.endpoint([10, 0, 0, 2]));
//! b.browse("_fazt._tcp.local.").unwrap();
//! a.announce(&Announcement::new("_fazt._tcp.local.", "kitchen-pi", 8080)).unwrap();
//! match b.events().try_recv().unwrap() {
//!     Event::Resolved(service) => assert_eq!(service.host, "kitchen-pi.local."),
//!     other => panic!("{other:?}"),
//! }
//! ```

pub mod loopback;
pub mod mdns;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The local network as a node sees it: a way to open discovery, and the machine's own
/// addresses. [`mdns::MdnsLan`] is the real one; [`loopback::FakeLan`] an in-memory one.
pub trait Lan: Send + Sync + fmt::Debug {
    /// Opens discovery on `interfaces`, with the future that drives it when the backend
    /// needs one (run it on the caller's executor; it ends when the backend stops).
    fn open(&self, interfaces: &mdns::Interfaces) -> Result<(Arc<dyn Discovery>, Option<mdns::Pump>), Error>;
    /// This machine's own IP addresses (loopback included), for the names a LAN
    /// certificate covers; empty when they cannot be read.
    fn addresses(&self) -> Vec<IpAddr>;
}

/// What kind of failure a discovery backend met, for generic code that matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No usable network (no socket, no multicast): run degraded.
    Unavailable,
    /// A name, type or record was refused before anything was sent.
    InvalidInput,
    /// The backend was shut down.
    Closed,
    /// Any other failure.
    Other,
}

/// Error of a discovery backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network cannot be used for mDNS.
    #[error("mDNS is not available: {0} (is a network interface up? `fazt config set beacon.enabled false` turns discovery off)")]
    Unavailable(String),
    /// A refused input.
    #[error("invalid {what}: {why}")]
    InvalidInput {
        /// What was refused, e.g. "instance name".
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The backend has been shut down.
    #[error("the discovery backend has stopped")]
    Closed,
    /// The backend failed otherwise.
    #[error("mDNS: {0}")]
    Backend(String),
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Closed => ErrorKind::Closed,
            Error::Backend(_) => ErrorKind::Other,
        }
    }
}

/// A service to announce: `<instance>.<service_type>` on `<host>.local.`, port and TXT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The service type with domain, e.g. `_fazt._tcp.local.`.
    pub service_type: String,
    /// The instance label shown by browsers, e.g. `kitchen-pi`.
    pub instance: String,
    /// The host label answered with A/AAAA records, e.g. `kitchen-pi` for
    /// `kitchen-pi.local.`.
    pub host: String,
    /// The TCP or UDP port.
    pub port: u16,
    /// TXT key/value pairs, in order.
    pub txt: Vec<(String, String)>,
}

impl Announcement {
    /// An announcement whose instance and host share one label, with no TXT.
    pub fn new(service_type: &str, name: &str, port: u16) -> Self {
        Announcement {
            service_type: service_type.into(),
            instance: name.into(),
            host: name.into(),
            port,
            txt: Vec::new(),
        }
    }

    /// The DNS-SD full name, e.g. `kitchen-pi._fazt._tcp.local.`.
    pub fn fullname(&self) -> String {
        format!("{}.{}", self.instance, self.service_type)
    }
}

/// A service found on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The DNS-SD full name, unique on the link, e.g. `kitchen-pi._fazt._tcp.local.`.
    pub fullname: String,
    /// The host name of its SRV record, e.g. `kitchen-pi.local.`.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its addresses (A and AAAA), sorted.
    pub addresses: Vec<IpAddr>,
    /// Its TXT key/value pairs (values that are not UTF-8 are dropped).
    pub txt: BTreeMap<String, String>,
}

impl Service {
    /// The instance label: the full name without the service type.
    pub fn instance(&self, service_type: &str) -> &str {
        self.fullname.strip_suffix(service_type).map(|s| s.trim_end_matches('.')).unwrap_or(&self.fullname)
    }
}

/// Which of our names a conflict renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The host name (A/AAAA records): `name` became `name-2`.
    Host,
    /// The service instance name (SRV/TXT).
    Instance,
}

/// Something a backend saw or did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A browsed service was resolved, or its records changed.
    Resolved(Service),
    /// A browsed service left: a goodbye (TTL 0), or its records expired or failed a
    /// [`Discovery::verify`].
    Removed {
        /// Its full name.
        fullname: String,
    },
    /// Probing found our name taken on the link and the backend renamed it (RFC 6762
    /// section 9); the new name is already being announced.
    Renamed {
        /// Which name.
        kind: NameKind,
        /// The name we asked for (a full DNS name).
        from: String,
        /// The name now in use.
        to: String,
    },
}

/// Announce and browse on the local network.
///
/// # Note for implementers
/// Methods return at once (work happens on the backend's own thread); results arrive
/// on the [`events`](Discovery::events) channel, which is bounded: when the consumer falls
/// behind, events are dropped (and counted) rather than buffered without limit, so a
/// flood of packets cannot grow memory. [`shutdown`](Discovery::shutdown) sends goodbye
/// packets for every announcement before it returns, or gives up after about a second.
pub trait Discovery: Send + Sync + fmt::Debug {
    /// The channel on which every event of this backend arrives.
    fn events(&self) -> async_channel::Receiver<Event>;

    /// The addresses this backend announces for our host name (A/AAAA records) now.
    fn addresses(&self) -> Vec<IpAddr>;

    /// Starts browsing `service_type` (e.g. `_fazt._tcp.local.`); results arrive as
    /// [`Event::Resolved`] and [`Event::Removed`].
    fn browse(&self, service_type: &str) -> Result<(), Error>;

    /// Announces `service` (probing its names first), replacing an announcement of the
    /// same full name; calling it again re-announces, with one packet per interface and
    /// IP family (a first announcement is sent twice, as RFC 6762 section 8.3 asks).
    fn announce(&self, service: &Announcement) -> Result<(), Error>;

    /// Withdraws an announcement with goodbye packets.
    fn withdraw(&self, fullname: &str) -> Result<(), Error>;

    /// Asks the link to confirm a browsed service (RFC 6762 section 10.4): when nobody
    /// answers within `timeout`, the service is flushed and [`Event::Removed`] follows.
    fn verify(&self, fullname: &str, timeout: Duration) -> Result<(), Error>;

    /// Counters for status pages (packets sent by kind, events dropped); may be empty.
    fn metrics(&self) -> BTreeMap<String, i64> {
        BTreeMap::new()
    }

    /// Withdraws everything with goodbyes and stops the backend.
    fn shutdown(&self) -> Result<(), Error>;
}

/// Capacity of a backend's event channel: enough for a busy LAN, small enough that a
/// flood of fake services costs at most a few hundred kilobytes before events drop.
pub const EVENT_CAPACITY: usize = 1024;
