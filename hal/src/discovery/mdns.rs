//! The real discovery backend: multicast DNS on UDP port 5353 with `mdns-sd`.
//!
//! # Implementation
//! `mdns-sd` runs one daemon thread that owns the sockets (one IPv4, one IPv6, bound to
//! port 5353 with SO_REUSEPORT so Avahi or a second fazt can share it) and polls them
//! with mio; it re-reads the interface list every 5 s, which is how announced addresses
//! follow DHCP changes. Its events are carried to [`Event`]s by a [`Pump`], a future
//! the caller runs on its own executor: no thread of ours, and no memory beyond the
//! events waiting (the event channel grows with its content, up to [`EVENT_CAPACITY`]).

use super::{Announcement, Discovery, Error, Event, NameKind, Service, EVENT_CAPACITY};
use futures_lite::{Future, Stream};
use mdns_sd::{DaemonEvent, IfKind, IfPredicate, RRType, ServiceDaemon, ServiceEvent, ServiceInfo};
use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
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

impl Interfaces {
    /// The addresses announced for this choice: those of the chosen interfaces that
    /// are up (as mdns-sd picks them), sorted; for `Address`, every address of that
    /// family on the interface that holds it.
    pub fn addresses(&self) -> Vec<std::net::IpAddr> {
        let list: Vec<_> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.is_oper_up() && !i.is_p2p())
            .collect();
        let holder = match self {
            Interfaces::Address(ip) => list.iter().find(|i| i.ip() == *ip).map(|i| (i.index, ip.is_ipv4())),
            _ => None,
        };
        let mut addresses: Vec<_> = list
            .iter()
            .filter(|i| match self {
                Interfaces::Auto => !skipped_by_default(&i.name, i.is_loopback()),
                Interfaces::Only(names) => names.contains(&i.name),
                Interfaces::Address(_) => {
                    holder.is_some_and(|(index, v4)| i.index == index && i.ip().is_ipv4() == v4)
                }
            })
            .map(|i| i.ip())
            .collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }
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
    interfaces: Interfaces,
    /// Browses started, handed to the [`Pump`].
    browses: async_channel::Sender<NewBrowse>,
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

/// Sends `event` without waiting; drops and counts it when [`EVENT_CAPACITY`] events
/// are already waiting. False when the consumer is gone.
///
/// The channel is unbounded and the bound is checked here: a bounded channel allocates
/// all its slots up front (over 100 KB for 1024 events), an unbounded one only what
/// waits.
fn forward(tx: &async_channel::Sender<Event>, dropped: &AtomicI64, event: Event) -> bool {
    if tx.len() >= EVENT_CAPACITY {
        dropped.fetch_add(1, Ordering::Relaxed);
        return !tx.is_closed();
    }
    tx.try_send(event).is_ok()
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
    /// Starts the mDNS daemon on the chosen interfaces, and returns it with the [`Pump`]
    /// that must run (spawned on the caller's executor) for events to arrive.
    ///
    /// Sockets are opened by the daemon thread; a machine without a usable interface
    /// still starts, and simply finds nothing.
    pub fn new(options: MdnsOptions) -> Result<(Self, Pump), Error> {
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
        let (tx, rx) = async_channel::unbounded();
        let (browses, added) = async_channel::unbounded();
        let monitor = daemon.monitor().map_err(backend)?;
        let this = MdnsDiscovery {
            daemon: daemon.clone(),
            interfaces: options.interfaces.clone(),
            browses,
            tx: tx.clone(),
            rx,
            announced: Mutex::default(),
            dropped: Arc::new(AtomicI64::new(0)),
            closed: Arc::new(AtomicBool::new(false)),
        };
        let mut pump = PumpState {
            daemon,
            monitor: Some(Box::pin(monitor.into_stream())),
            added: Box::pin(added),
            browses: Vec::new(),
            tx,
            dropped: this.dropped.clone(),
            closed: this.closed.clone(),
        };
        Ok((this, Box::pin(futures_lite::future::poll_fn(move |cx| pump.poll(cx)))))
    }
}

/// The future that carries the daemon's events (resolved and removed services, name
/// changes) to [`Discovery::events`]; it ends when the daemon stops or the events are
/// no longer wanted.
pub type Pump = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

type Events<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

/// A browse started: its service type and the daemon's channel of its events.
type NewBrowse = (String, mdns_sd::Receiver<ServiceEvent>);

/// Events handled in one poll before the pump lets other tasks run (a flood of
/// packets must not hold an executor thread).
const PUMP_BUDGET: usize = 64;

/// How long a browse whose channel overflowed waits before browsing again.
const REBROWSE_AFTER: Duration = Duration::from_secs(1);

struct Browse {
    service_type: String,
    events: Option<Events<ServiceEvent>>,
    retry: Option<async_io::Timer>,
}

struct PumpState {
    daemon: ServiceDaemon,
    monitor: Option<Events<DaemonEvent>>,
    added: Pin<Box<async_channel::Receiver<NewBrowse>>>,
    browses: Vec<Browse>,
    tx: async_channel::Sender<Event>,
    dropped: Arc<AtomicI64>,
    closed: Arc<AtomicBool>,
}

impl PumpState {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = PUMP_BUDGET;
        let mut spend = |cx: &mut Context<'_>| {
            if budget == 0 {
                cx.waker().wake_by_ref();
                return false;
            }
            budget -= 1;
            true
        };
        while let Poll::Ready(Some((service_type, rx))) = self.added.as_mut().poll_next(cx) {
            self.browses.push(Browse { service_type, events: Some(Box::pin(rx.into_stream())), retry: None });
        }
        // Name changes (conflict renames). The daemon drops its monitors when it exits.
        if let Some(monitor) = self.monitor.as_mut() {
            loop {
                if !spend(cx) {
                    return Poll::Pending;
                }
                match monitor.as_mut().poll_next(cx) {
                    Poll::Ready(Some(DaemonEvent::NameChange(change))) => {
                        let kind = match change.rr_type {
                            RRType::A | RRType::AAAA => NameKind::Host,
                            _ => NameKind::Instance,
                        };
                        let renamed = Event::Renamed { kind, from: change.original, to: change.new_name };
                        if !forward(&self.tx, &self.dropped, renamed) {
                            return Poll::Ready(());
                        }
                    }
                    Poll::Ready(Some(_)) => {}
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
        }
        'browses: for browse in self.browses.iter_mut() {
            loop {
                if let Some(timer) = browse.retry.as_mut() {
                    if Pin::new(timer).poll(cx).is_pending() {
                        continue 'browses;
                    }
                    browse.retry = None;
                    match self.daemon.browse(&browse.service_type) {
                        Ok(rx) => browse.events = Some(Box::pin(rx.into_stream())),
                        Err(_) => continue 'browses,
                    }
                }
                let Some(events) = browse.events.as_mut() else { continue 'browses };
                if !spend(cx) {
                    return Poll::Pending;
                }
                match events.as_mut().poll_next(cx) {
                    Poll::Ready(Some(event)) => {
                        let event = match event {
                            ServiceEvent::ServiceResolved(r) => Event::Resolved(to_service(&r)),
                            ServiceEvent::ServiceRemoved(_, fullname) => Event::Removed { fullname },
                            _ => continue,
                        };
                        if !forward(&self.tx, &self.dropped, event) {
                            return Poll::Ready(());
                        }
                    }
                    // mdns-sd ends a browse whose channel overflowed (a flood of fake
                    // services); browsing again a little later resumes, from its cache.
                    Poll::Ready(None) => {
                        browse.events = None;
                        if self.closed.load(Ordering::Relaxed) {
                            continue 'browses;
                        }
                        browse.retry = Some(async_io::Timer::after(REBROWSE_AFTER));
                    }
                    Poll::Pending => continue 'browses,
                }
            }
        }
        self.browses.retain(|b| b.events.is_some() || b.retry.is_some());
        Poll::Pending
    }
}

impl Discovery for MdnsDiscovery {
    fn events(&self) -> async_channel::Receiver<Event> {
        self.rx.clone()
    }

    fn addresses(&self) -> Vec<std::net::IpAddr> {
        self.interfaces.addresses()
    }

    fn browse(&self, service_type: &str) -> Result<(), Error> {
        let events = self.daemon.browse(service_type).map_err(backend)?;
        self.browses.try_send((service_type.to_string(), events)).map_err(|_| Error::Closed)
    }

    fn announce(&self, a: &Announcement) -> Result<(), Error> {
        let host = format!("{}.local.", a.host);
        let txt: Vec<(&str, &str)> = a.txt.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let info = ServiceInfo::new(&a.service_type, &a.instance, &host, (), a.port, &txt[..])
            .map_err(|e| Error::InvalidInput { what: "announcement", why: e.to_string() })?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        // Announced already: one packet per interface and family refreshes it (mdns-sd
        // patched, see vendor/mdns-sd); new records get the RFC's two announcements.
        if announced.contains(&fullname) {
            self.daemon.refresh(info).map_err(backend)?;
        } else {
            self.daemon.register(info).map_err(backend)?;
            announced.insert(fullname);
        }
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

/// The real network: multicast DNS on UDP 5353, as a responder (its own multicast does
/// not loop back, see [`MdnsOptions::multicast_loop`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct MdnsLan;

impl super::Lan for MdnsLan {
    fn open(&self, interfaces: &Interfaces) -> Result<(Arc<dyn Discovery>, Option<Pump>), Error> {
        let options = MdnsOptions { interfaces: interfaces.clone(), port: MDNS_PORT, multicast_loop: false };
        let (discovery, pump) = MdnsDiscovery::new(options)?;
        Ok((Arc::new(discovery), Some(pump)))
    }

    fn addresses(&self) -> Vec<std::net::IpAddr> {
        lan_addresses()
    }
}

/// The machine's own IP addresses on its interfaces (loopback included), for the names
/// a LAN certificate covers; empty when the list cannot be read.
pub fn lan_addresses() -> Vec<std::net::IpAddr> {
    if_addrs::get_if_addrs().map(|list| list.into_iter().map(|i| i.ip()).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_channel_is_bounded_and_counts_what_it_drops() {
        let (tx, rx) = async_channel::unbounded();
        let dropped = AtomicI64::new(0);
        let removed = |i: usize| Event::Removed { fullname: format!("n{i}._fazt._tcp.local.") };
        for i in 0..EVENT_CAPACITY + 10 {
            assert!(forward(&tx, &dropped, removed(i)));
        }
        assert_eq!(rx.len(), EVENT_CAPACITY);
        assert_eq!(dropped.load(Ordering::Relaxed), 10);
        // Room again once the consumer caught up.
        rx.try_recv().unwrap();
        assert!(forward(&tx, &dropped, removed(0)));
        assert_eq!(rx.len(), EVENT_CAPACITY);
        drop(rx);
        assert!(!forward(&tx, &dropped, removed(0)), "no consumer: the pump stops");
    }
}
