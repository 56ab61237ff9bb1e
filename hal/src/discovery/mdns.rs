//! The real discovery backend: multicast DNS on UDP port 5353 with `mdns-sd`.
//!
//! # Implementation
//! `mdns-sd` runs one daemon thread that owns the sockets (one IPv4, one IPv6, bound to
//! port 5353 with SO_REUSEPORT so Avahi or a second fazt can share it) and polls them
//! with mio; it re-reads the interface list every 5 s, which is how announced addresses
//! follow DHCP changes. This backend adds one thread per browse and one for daemon
//! events, each blocked on a channel (no CPU when the link is quiet), that translate
//! into [`Event`]s on a bounded channel.

use super::{Announcement, Discovery, Error, Event, NameKind, Service, EVENT_CAPACITY};
use mdns_sd::{DaemonEvent, IfKind, IfPredicate, RRType, ServiceDaemon, ServiceEvent, ServiceInfo};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The standard mDNS port.
pub const MDNS_PORT: u16 = 5353;

/// How long [`Discovery::shutdown`] waits for the daemon to confirm each goodbye and its
/// own exit: the goodbye is sent when the command is processed, so this is only a bound
/// for a wedged daemon.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(1000);

/// Which network interfaces to announce and browse on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Interfaces {
    /// Every interface except loopback and container or VM bridges
    /// (see [`skipped_by_default`]).
    #[default]
    Auto,
    /// Only these interfaces, by name (e.g. `eth0`, `wlan0`).
    Only(Vec<String>),
    /// Only the interface that holds this address (a node bound to one address).
    Address(std::net::IpAddr),
}

/// Name prefixes of interfaces that `Auto` leaves alone: bridges and veths of Docker,
/// Podman, libvirt, LXC/LXD, Kubernetes CNIs and desktop hypervisors. Announcing there
/// would publish addresses that no LAN peer can reach.
const VIRTUAL_PREFIXES: &[&str] = &[
    "docker", "br-", "veth", "virbr", "lxcbr", "lxdbr", "cni", "flannel", "podman", "cali", "weave",
    "vboxnet", "vmnet",
];

/// Whether `Auto` skips the interface `name`.
///
/// ```
/// use fazt_hal::discovery::mdns::skipped_by_default;
/// assert!(skipped_by_default("docker0", false));
/// assert!(skipped_by_default("lo", true));
/// assert!(!skipped_by_default("eth0", false));
/// ```
pub fn skipped_by_default(name: &str, is_loopback: bool) -> bool {
    is_loopback || VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Options of the mDNS backend.
#[derive(Debug, Clone)]
pub struct MdnsOptions {
    /// Interfaces to use.
    pub interfaces: Interfaces,
    /// UDP port (5353 except in special set-ups).
    pub port: u16,
    /// Whether our own multicast comes back to this machine (other processes here,
    /// such as a local Avahi or `fazt beacon scan`, then see us). A responder turns it
    /// off: `mdns-sd` takes its own looped-back answers for a name conflict when an
    /// address is added to an interface, and renames itself for nothing.
    pub multicast_loop: bool,
}

impl Default for MdnsOptions {
    fn default() -> Self {
        MdnsOptions { interfaces: Interfaces::Auto, port: MDNS_PORT, multicast_loop: true }
    }
}

/// mDNS discovery over the `mdns-sd` daemon.
pub struct MdnsDiscovery {
    daemon: ServiceDaemon,
    tx: async_channel::Sender<Event>,
    rx: async_channel::Receiver<Event>,
    announced: Mutex<BTreeSet<String>>,
    dropped: Arc<AtomicI64>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for MdnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdnsDiscovery").field("announced", &self.announced).finish_non_exhaustive()
    }
}

fn backend(err: mdns_sd::Error) -> Error {
    match err {
        mdns_sd::Error::DaemonShutdown => Error::Closed,
        other => Error::Backend(other.to_string()),
    }
}

/// Sends `event` without waiting; counts it when the consumer is too far behind.
fn forward(tx: &async_channel::Sender<Event>, dropped: &AtomicI64, event: Event) -> bool {
    match tx.try_send(event) {
        Ok(()) => true,
        Err(async_channel::TrySendError::Full(_)) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(async_channel::TrySendError::Closed(_)) => false,
    }
}

fn to_service(resolved: &mdns_sd::ResolvedService) -> Service {
    let mut addresses: Vec<_> = resolved.get_addresses().iter().map(|ip| ip.to_ip_addr()).collect();
    addresses.sort();
    addresses.dedup();
    let txt = resolved
        .get_properties()
        .iter()
        .filter_map(|p| {
            let value = std::str::from_utf8(p.val().unwrap_or_default()).ok()?;
            Some((p.key().to_string(), value.to_string()))
        })
        .collect();
    Service {
        fullname: resolved.get_fullname().to_string(),
        host: resolved.get_hostname().to_string(),
        port: resolved.get_port(),
        addresses,
        txt,
    }
}

impl MdnsDiscovery {
    /// Starts the mDNS daemon on the chosen interfaces.
    ///
    /// Sockets are opened by the daemon thread; a machine without a usable interface
    /// still starts, and simply finds nothing.
    pub fn new(options: MdnsOptions) -> Result<Self, Error> {
        let daemon =
            ServiceDaemon::new_with_port(options.port).map_err(|e| Error::Unavailable(e.to_string()))?;
        match &options.interfaces {
            Interfaces::Auto => daemon
                .disable_interface(IfKind::Predicate(IfPredicate::new(|intf| {
                    skipped_by_default(&intf.name, intf.is_loopback())
                })))
                .map_err(backend)?,
            Interfaces::Only(names) => {
                daemon.disable_interface(IfKind::All).map_err(backend)?;
                let kinds: Vec<IfKind> = names.iter().map(|n| IfKind::Name(n.clone())).collect();
                daemon.enable_interface(kinds).map_err(backend)?;
            }
            Interfaces::Address(ip) => {
                daemon.disable_interface(IfKind::All).map_err(backend)?;
                daemon.enable_interface(IfKind::Addr(*ip)).map_err(backend)?;
            }
        }
        if !options.multicast_loop {
            daemon.set_multicast_loop_v4(false).map_err(backend)?;
            daemon.set_multicast_loop_v6(false).map_err(backend)?;
        }
        let (tx, rx) = async_channel::bounded(EVENT_CAPACITY);
        let this = MdnsDiscovery {
            daemon,
            tx,
            rx,
            announced: Mutex::default(),
            dropped: Arc::new(AtomicI64::new(0)),
            closed: Arc::new(AtomicBool::new(false)),
        };
        this.watch_daemon()?;
        Ok(this)
    }

    /// Forwards the daemon's name changes (conflict renames) as events.
    fn watch_daemon(&self) -> Result<(), Error> {
        let monitor = self.daemon.monitor().map_err(backend)?;
        let (tx, dropped) = (self.tx.clone(), self.dropped.clone());
        std::thread::Builder::new()
            .name("fazt-mdns-events".into())
            .spawn(move || {
                while let Ok(event) = monitor.recv() {
                    if let DaemonEvent::NameChange(change) = event {
                        let kind = match change.rr_type {
                            RRType::A | RRType::AAAA => NameKind::Host,
                            _ => NameKind::Instance,
                        };
                        let renamed = Event::Renamed { kind, from: change.original, to: change.new_name };
                        if !forward(&tx, &dropped, renamed) {
                            break;
                        }
                    }
                }
            })
            .map_err(|e| Error::Backend(format!("cannot start a thread: {e}")))?;
        Ok(())
    }
}

impl Discovery for MdnsDiscovery {
    fn events(&self) -> async_channel::Receiver<Event> {
        self.rx.clone()
    }

    fn browse(&self, service_type: &str) -> Result<(), Error> {
        let first = self.daemon.browse(service_type).map_err(backend)?;
        let (daemon, ty) = (self.daemon.clone(), service_type.to_string());
        let (tx, dropped, closed) = (self.tx.clone(), self.dropped.clone(), self.closed.clone());
        std::thread::Builder::new()
            .name("fazt-mdns-browse".into())
            .spawn(move || {
                let mut receiver = first;
                loop {
                    while let Ok(event) = receiver.recv() {
                        let event = match event {
                            ServiceEvent::ServiceResolved(r) => Event::Resolved(to_service(&r)),
                            ServiceEvent::ServiceRemoved(_, fullname) => Event::Removed { fullname },
                            _ => continue,
                        };
                        if !forward(&tx, &dropped, event) {
                            return;
                        }
                    }
                    // mdns-sd ends a browse whose channel overflowed (a flood of fake
                    // services); browsing again resumes, from its cache first.
                    if closed.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    match daemon.browse(&ty) {
                        Ok(r) => receiver = r,
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| Error::Backend(format!("cannot start a thread: {e}")))?;
        Ok(())
    }

    fn announce(&self, a: &Announcement) -> Result<(), Error> {
        let host = format!("{}.local.", a.host);
        let txt: Vec<(&str, &str)> = a.txt.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let info = ServiceInfo::new(&a.service_type, &a.instance, &host, (), a.port, &txt[..])
            .map_err(|e| Error::InvalidInput { what: "announcement", why: e.to_string() })?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        self.daemon.register(info).map_err(backend)?;
        self.announced.lock().unwrap_or_else(|e| e.into_inner()).insert(fullname);
        Ok(())
    }

    fn withdraw(&self, fullname: &str) -> Result<(), Error> {
        self.announced.lock().unwrap_or_else(|e| e.into_inner()).remove(fullname);
        self.daemon.unregister(fullname).map_err(backend)?;
        Ok(())
    }

    fn verify(&self, fullname: &str, timeout: Duration) -> Result<(), Error> {
        self.daemon.verify(fullname.to_string(), timeout).map_err(backend)
    }

    fn metrics(&self) -> BTreeMap<String, i64> {
        let mut metrics: BTreeMap<String, i64> = match self.daemon.get_metrics() {
            Ok(rx) => rx.recv_timeout(Duration::from_millis(200)).unwrap_or_default().into_iter().collect(),
            Err(_) => BTreeMap::new(),
        };
        metrics.insert("events-dropped".into(), self.dropped.load(Ordering::Relaxed));
        metrics
    }

    fn shutdown(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let names: Vec<String> =
            std::mem::take(&mut *self.announced.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        // Goodbyes first, and wait for each: the daemon exits at the next command, and
        // a goodbye still queued behind it would never be sent.
        for name in names {
            if let Ok(done) = self.daemon.unregister(&name) {
                let _ = done.recv_timeout(SHUTDOWN_WAIT);
            }
        }
        let status = self.daemon.shutdown().map_err(backend)?;
        let _ = status.recv_timeout(SHUTDOWN_WAIT);
        self.tx.close();
        Ok(())
    }
}

impl Drop for MdnsDiscovery {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The machine's own IP addresses on its interfaces (loopback included), for the names
/// a LAN certificate covers; empty when the list cannot be read.
pub fn lan_addresses() -> Vec<std::net::IpAddr> {
    if_addrs::get_if_addrs().map(|list| list.into_iter().map(|i| i.ip()).collect()).unwrap_or_default()
}
