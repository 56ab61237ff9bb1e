//! An in-memory LAN for tests: endpoints announce, browse, rename on conflicts, say
//! goodbye and crash, with no socket and no thread.

use super::{Announcement, Discovery, Error, Event, NameKind, Service, EVENT_CAPACITY};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Owner id of services put on the LAN with [`LoopbackNetwork::inject`].
const INJECTED: u64 = u64::MAX;

/// A shared in-memory link. Cheap to clone; clones are the same link.
#[derive(Debug, Clone, Default)]
pub struct LoopbackNetwork {
    net: Arc<Mutex<Net>>,
}

#[derive(Debug, Default)]
struct Net {
    next_id: u64,
    /// Announced services by lower-case full name.
    announced: BTreeMap<String, (u64, Service)>,
    /// (endpoint, service type, its event channel).
    browsers: Vec<(u64, String, async_channel::Sender<Event>)>,
}

impl Net {
    fn deliver(&self, service_type: &str, event: &Event, dropped: Option<&AtomicI64>) {
        for (_, ty, tx) in &self.browsers {
            if ty == service_type && tx.try_send(event.clone()).is_err() {
                if let Some(d) = dropped {
                    d.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn host_taken(&self, me: u64, host: &str) -> bool {
        self.announced.values().any(|(owner, s)| *owner != me && s.host.eq_ignore_ascii_case(host))
    }

    fn name_taken(&self, me: u64, fullname: &str) -> bool {
        self.announced.get(&fullname.to_ascii_lowercase()).is_some_and(|(owner, _)| *owner != me)
    }
}

impl LoopbackNetwork {
    /// A new, empty link.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new endpoint (a host) on this link with the IPv4 address `addr`.
    pub fn endpoint(&self, addr: impl Into<Ipv4Addr>) -> LoopbackDiscovery {
        let mut net = self.net.lock().unwrap_or_else(|e| e.into_inner());
        net.next_id += 1;
        let (tx, rx) = async_channel::bounded(EVENT_CAPACITY);
        LoopbackDiscovery {
            net: self.clone(),
            id: net.next_id,
            addr: IpAddr::V4(addr.into()),
            tx,
            rx,
            closed: AtomicBool::new(false),
            dropped: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Puts a service on the link as if a foreign host announced it (for hostile and
    /// interoperability tests).
    pub fn inject(&self, service_type: &str, service: Service) {
        let mut net = self.net.lock().unwrap_or_else(|e| e.into_inner());
        net.announced.insert(service.fullname.to_ascii_lowercase(), (INJECTED, service.clone()));
        net.deliver(service_type, &Event::Resolved(service), None);
    }
}

impl LoopbackNetwork {
    /// Takes an injected service off the link with a goodbye.
    pub fn remove(&self, service_type: &str, fullname: &str) {
        let mut net = self.net.lock().unwrap_or_else(|e| e.into_inner());
        net.announced.remove(&fullname.to_ascii_lowercase());
        net.deliver(service_type, &Event::Removed { fullname: fullname.to_string() }, None);
    }
}

/// An in-memory LAN for a node built inside a test process: each [`super::Lan::open`]
/// is a new endpoint on [`FakeLan::network`], where a test can put other hosts or
/// inject services; nothing else is ever found. The machine's addresses are loopback.
#[derive(Debug, Clone)]
pub struct FakeLan {
    /// The link the node's endpoints join.
    pub network: LoopbackNetwork,
    /// The address the node has on it.
    pub address: Ipv4Addr,
}

impl Default for FakeLan {
    fn default() -> Self {
        FakeLan { network: LoopbackNetwork::new(), address: Ipv4Addr::new(10, 0, 0, 1) }
    }
}

impl super::Lan for FakeLan {
    fn open(
        &self,
        _interfaces: &super::mdns::Interfaces,
    ) -> Result<(Arc<dyn Discovery>, Option<super::mdns::Pump>), Error> {
        Ok((Arc::new(self.network.endpoint(self.address)), None))
    }

    fn addresses(&self) -> Vec<IpAddr> {
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    }
}

/// One host on a [`LoopbackNetwork`].
#[derive(Debug)]
pub struct LoopbackDiscovery {
    net: LoopbackNetwork,
    id: u64,
    addr: IpAddr,
    tx: async_channel::Sender<Event>,
    rx: async_channel::Receiver<Event>,
    closed: AtomicBool,
    dropped: Arc<AtomicI64>,
}

impl LoopbackDiscovery {
    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Relaxed) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Vanishes without goodbye packets, like a host that lost power.
    pub fn crash(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let mut net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
        net.announced.retain(|_, (owner, _)| *owner != self.id);
        net.browsers.retain(|(owner, _, _)| *owner != self.id);
    }

    fn send(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The first free `base-N` (hosts) or `base (N)` (instances), N from 2, as RFC 6762
/// section 9 and DNS-SD responders do.
fn next_free(base: &str, mut taken: impl FnMut(&str) -> bool, instance: bool) -> String {
    (2..)
        .map(|n| if instance { format!("{base} ({n})") } else { format!("{base}-{n}") })
        .find(|candidate| !taken(candidate))
        .expect("an unbounded range has a free name")
}

impl Discovery for LoopbackDiscovery {
    fn events(&self) -> async_channel::Receiver<Event> {
        self.rx.clone()
    }

    fn addresses(&self) -> Vec<IpAddr> {
        vec![self.addr]
    }

    fn browse(&self, service_type: &str) -> Result<(), Error> {
        self.check_open()?;
        let mut net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
        net.browsers.push((self.id, service_type.to_string(), self.tx.clone()));
        let known: Vec<Service> = net
            .announced
            .values()
            .filter(|(_, s)| s.fullname.ends_with(service_type))
            .map(|(_, s)| s.clone())
            .collect();
        drop(net);
        for service in known {
            self.send(Event::Resolved(service));
        }
        Ok(())
    }

    fn announce(&self, a: &Announcement) -> Result<(), Error> {
        self.check_open()?;
        let mut net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
        let wanted_host = format!("{}.local.", a.host);
        let host = if net.host_taken(self.id, &wanted_host) {
            let label = next_free(&a.host, |c| net.host_taken(self.id, &format!("{c}.local.")), false);
            let to = format!("{label}.local.");
            self.send(Event::Renamed { kind: NameKind::Host, from: wanted_host, to: to.clone() });
            to
        } else {
            wanted_host
        };
        let wanted = a.fullname();
        let fullname = if net.name_taken(self.id, &wanted) {
            let label =
                next_free(&a.instance, |c| net.name_taken(self.id, &format!("{c}.{}", a.service_type)), true);
            let to = format!("{label}.{}", a.service_type);
            self.send(Event::Renamed { kind: NameKind::Instance, from: wanted, to: to.clone() });
            to
        } else {
            wanted
        };
        let service = Service {
            fullname: fullname.clone(),
            host,
            port: a.port,
            addresses: vec![self.addr],
            txt: a.txt.iter().cloned().collect(),
        };
        net.announced.insert(fullname.to_ascii_lowercase(), (self.id, service.clone()));
        net.deliver(&a.service_type, &Event::Resolved(service), Some(&self.dropped));
        Ok(())
    }

    fn withdraw(&self, fullname: &str) -> Result<(), Error> {
        self.check_open()?;
        let mut net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
        let key = fullname.to_ascii_lowercase();
        if net.announced.get(&key).is_some_and(|(owner, _)| *owner == self.id) {
            let (_, service) = net.announced.remove(&key).expect("checked above");
            let service_type = service.fullname.split_once('.').map(|(_, t)| t).unwrap_or("").to_string();
            net.deliver(&service_type, &Event::Removed { fullname: service.fullname }, Some(&self.dropped));
        }
        Ok(())
    }

    fn verify(&self, fullname: &str, _timeout: Duration) -> Result<(), Error> {
        self.check_open()?;
        let net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
        if !net.announced.contains_key(&fullname.to_ascii_lowercase()) {
            drop(net);
            self.send(Event::Removed { fullname: fullname.to_string() });
        }
        Ok(())
    }

    fn metrics(&self) -> BTreeMap<String, i64> {
        BTreeMap::from([("events-dropped".to_string(), self.dropped.load(Ordering::Relaxed))])
    }

    fn shutdown(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let mine: Vec<String> = {
            let net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
            net.announced.values().filter(|(o, _)| *o == self.id).map(|(_, s)| s.fullname.clone()).collect()
        };
        self.closed.store(false, Ordering::Relaxed);
        for fullname in mine {
            self.withdraw(&fullname)?;
        }
        self.closed.store(true, Ordering::Relaxed);
        let mut net = self.net.net.lock().unwrap_or_else(|e| e.into_inner());
        net.browsers.retain(|(owner, _, _)| *owner != self.id);
        self.tx.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TY: &str = "_fazt._tcp.local.";

    fn drain(d: &LoopbackDiscovery) -> Vec<Event> {
        std::iter::from_fn(|| d.events().try_recv().ok()).collect()
    }

    #[test]
    fn second_host_with_the_same_name_is_renamed() {
        let lan = LoopbackNetwork::new();
        let (a, b) = (lan.endpoint([10, 0, 0, 1]), lan.endpoint([10, 0, 0, 2]));
        a.announce(&Announcement::new(TY, "pi", 80)).unwrap();
        b.announce(&Announcement::new(TY, "pi", 80)).unwrap();
        let events = drain(&b);
        assert!(events.contains(&Event::Renamed {
            kind: NameKind::Host,
            from: "pi.local.".into(),
            to: "pi-2.local.".into()
        }));
    }

    #[test]
    fn goodbye_and_crash_are_told_apart() {
        let lan = LoopbackNetwork::new();
        let (a, b, watcher) =
            (lan.endpoint([10, 0, 0, 1]), lan.endpoint([10, 0, 0, 2]), lan.endpoint([10, 0, 0, 3]));
        watcher.browse(TY).unwrap();
        a.announce(&Announcement::new(TY, "a", 80)).unwrap();
        b.announce(&Announcement::new(TY, "b", 80)).unwrap();
        assert_eq!(drain(&watcher).len(), 2);
        a.shutdown().unwrap();
        assert_eq!(drain(&watcher), vec![Event::Removed { fullname: format!("a.{TY}") }]);
        b.crash();
        assert!(drain(&watcher).is_empty(), "a crash sends nothing");
        watcher.verify(&format!("b.{TY}"), Duration::from_secs(1)).unwrap();
        assert_eq!(drain(&watcher), vec![Event::Removed { fullname: format!("b.{TY}") }]);
    }
}
