//! The beacon loop: announce, listen, confirm quiet peers, expire silent ones, follow
//! name changes, and mirror the peer table into `beacon_nodes`.

use super::freshness::Seq;
use super::peers::{Peer, PeerEvent, Upsert};
use super::record::{self, SERVICE_TYPE};
use super::{name, Beacon, State};
use crate::storage::state::{self, StateKey};
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::discovery::{Announcement, Discovery, Event, Lan, NameKind};
use futures_lite::{future, StreamExt};
use std::sync::Arc;
use std::time::Instant;

enum Step {
    Event(Option<Event>),
    Tick,
}

impl Beacon {
    /// Opens discovery on `lan` (the HAL's) and starts the beacon loop on `executor`;
    /// `None` when the beacon is off or discovery cannot be used (logged; the node runs
    /// on without it).
    pub fn start(
        self: &Arc<Self>,
        executor: &smol::Executor<'static>,
        lan: &dyn Lan,
        storage: Arc<Storage>,
        clock: Arc<Clock>,
    ) -> Option<smol::Task<()>> {
        if !self.config.enabled {
            let reason = self.config.off_reason.as_deref().unwrap_or("off");
            tracing::info!(reason, "beacon off");
            return None;
        }
        match lan.open(&self.config.interfaces) {
            Ok((discovery, pump)) => {
                // Ends by itself when the backend stops at shutdown.
                if let Some(pump) = pump {
                    executor.spawn(pump).detach();
                }
                Some(executor.spawn(self.clone().run(discovery, storage, clock)))
            }
            Err(err) => {
                tracing::warn!(error = %err, "beacon unavailable; the node runs without LAN discovery");
                let mut inner = self.inner();
                inner.state = State::Unavailable;
                inner.error = Some(err.to_string());
                None
            }
        }
    }

    /// The loop, over any discovery backend; returns when the backend stops.
    pub async fn run(
        self: Arc<Self>,
        discovery: Arc<dyn Discovery>,
        storage: Arc<Storage>,
        clock: Arc<Clock>,
    ) {
        self.inner().discovery = Some(discovery.clone());
        // The table mirrors what is seen now; rows from an earlier run are stale.
        if let Err(err) =
            storage.write(|conn| Ok::<_, StorageError>(conn.execute("DELETE FROM beacon_nodes", [])?)).await
        {
            tracing::warn!(error = %err, "beacon: clearing beacon_nodes");
        }
        self.start_boot(&storage, &clock).await;
        let events = discovery.events();
        let started = discovery.browse(SERVICE_TYPE).and_then(|()| self.announce(&*discovery));
        if let Err(err) = started {
            tracing::warn!(error = %err, "beacon unavailable; the node runs without LAN discovery");
            let mut inner = self.inner();
            inner.state = State::Unavailable;
            inner.error = Some(err.to_string());
            return;
        }
        {
            let mut inner = self.inner();
            inner.state = State::Announcing;
            inner.error = None;
            tracing::info!(name = %inner.name, id = %self.identity.id, "beacon announcing {}.local", inner.name);
        }
        let mut ticks = async_io::Timer::interval(self.config.tick());
        let mut last_announce = Instant::now();
        let mut dirty = false;
        loop {
            let step = future::or(async { Step::Event(events.recv().await.ok()) }, async {
                ticks.next().await;
                Step::Tick
            })
            .await;
            match step {
                Step::Event(None) => break,
                Step::Event(Some(event)) => dirty |= self.handle(event, &*discovery, &clock),
                Step::Tick => {
                    dirty |= self.liveness(&*discovery, &clock);
                    let interval = self.config.announce_interval;
                    let due = if interval.is_zero() { super::Duration::from_secs(30) } else { interval };
                    // The signed address list must follow DHCP changes at once: peers
                    // ignore addresses it does not list.
                    let moved = discovery.addresses() != self.inner().announced_addresses;
                    if moved {
                        if let Err(err) = self.announce(&*discovery) {
                            tracing::warn!(error = %err, "beacon: announcing new addresses");
                        }
                    }
                    // Half a tick of slack: a tick that comes a hair early must not
                    // push the announcement a whole tick later.
                    if last_announce.elapsed() + self.config.tick() / 2 >= due {
                        last_announce = Instant::now();
                        self.follow_name(&*discovery, &storage).await;
                        if !interval.is_zero() {
                            if let Err(err) = self.announce(&*discovery) {
                                tracing::warn!(error = %err, "beacon: announcing");
                            }
                        }
                    }
                    if dirty {
                        dirty = false;
                        self.save(&storage).await;
                    }
                }
            }
        }
        let mut inner = self.inner();
        if inner.state == State::Announcing {
            inner.state = State::Stopped;
        }
    }

    /// Picks this start's boot value (see [`super::freshness`]) and keeps it in
    /// `data.db` for the next start.
    async fn start_boot(&self, storage: &Arc<Storage>, clock: &Clock) {
        let now = clock.now_millis();
        let boot = storage
            .write(move |conn| {
                let previous = state::get(conn, StateKey::BeaconBoot)?.and_then(|v| v.parse::<u64>().ok());
                let boot = Seq::next_boot(previous, now);
                state::set(conn, StateKey::BeaconBoot, &boot.to_string())?;
                Ok::<_, StorageError>(boot)
            })
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "beacon: keeping the boot sequence");
                Seq::next_boot(None, now)
            });
        self.inner().boot = Some((boot, Instant::now()));
    }

    /// This announcement's sequence.
    fn seq(&self) -> Seq {
        let (boot, since) = self.inner().boot.unwrap_or((0, Instant::now()));
        Seq { boot, n: since.elapsed().as_secs() }
    }

    /// Announces (or re-announces) our service and host name.
    fn announce(&self, discovery: &dyn Discovery) -> Result<(), fazt_hal::discovery::Error> {
        let name = self.name();
        let ca = self.ca_fingerprint();
        let addresses = discovery.addresses();
        let own = record::Own {
            name: &name,
            port: self.port,
            services: super::SERVICES,
            ca: ca.as_deref(),
            addresses: &addresses,
            seq: self.seq(),
        };
        let mut txt = record::own_txt(&self.identity, &own)
            .map_err(|e| fazt_hal::discovery::Error::Backend(format!("signing the announcement: {e}")))?;
        txt.extend(self.extra_txt());
        let announcement = Announcement {
            service_type: SERVICE_TYPE.into(),
            instance: name.clone(),
            host: name,
            port: self.port,
            txt,
        };
        discovery.announce(&announcement)?;
        let mut inner = self.inner();
        inner.announced = Some(announcement.fullname());
        inner.announced_addresses = addresses;
        inner.counters.announcements += 1;
        Ok(())
    }

    /// Switches to `new_name`: goodbye for the old records, then announce the new.
    fn rename(&self, discovery: &dyn Discovery, new_name: String) {
        let old = {
            let mut inner = self.inner();
            inner.name = new_name;
            inner.announced.take()
        };
        if let Some(old) = old {
            let _ = discovery.withdraw(&old);
        }
        if let Err(err) = self.announce(discovery) {
            tracing::warn!(error = %err, "beacon: announcing the new name");
        }
    }

    /// Applies one discovery event; true when the peer table changed.
    fn handle(&self, event: Event, discovery: &dyn Discovery, clock: &Clock) -> bool {
        match event {
            Event::Resolved(service) => {
                let record = match record::parse(&service) {
                    Ok(record) => record,
                    Err(why) => {
                        tracing::debug!(%why, fullname = %service.fullname, "beacon: record refused");
                        self.inner().counters.rejected += 1;
                        return false;
                    }
                };
                // Our own announcement comes back (multicast loop). Tell it by the id,
                // not the name: a peer may hold the name we asked for (see `Renamed`).
                if record.id.as_deref() == Some(self.identity.id.as_str()) {
                    return false;
                }
                // A signed record older than one already seen from that node: a replay.
                if let (Some(id), Some(seq)) = (record.id.as_deref(), record.seq) {
                    let mut inner = self.inner();
                    if !inner.freshness.admit(id, seq) {
                        inner.counters.replayed += 1;
                        tracing::debug!(fullname = %service.fullname, %seq, "beacon: replayed record refused");
                        return false;
                    }
                }
                if self.clashes(&record) {
                    self.yield_name(discovery, &record.host);
                }
                let (outcome, peer) = {
                    let mut inner = self.inner();
                    let result = inner.peers.upsert(record, clock.now_millis(), Instant::now());
                    match result.0 {
                        Upsert::Found => inner.counters.found += 1,
                        Upsert::Full => inner.counters.ignored_full += 1,
                        _ => {}
                    }
                    result
                };
                match outcome {
                    Upsert::Found => {
                        tracing::info!(name = %peer.record.name, addresses = ?peer.record.addresses, "beacon: node found");
                        self.publish(PeerEvent::Found { peer: Box::new(peer) });
                        true
                    }
                    Upsert::Changed => true,
                    Upsert::Seen | Upsert::Full => false,
                }
            }
            Event::Removed { fullname } => {
                let removed = {
                    let mut inner = self.inner();
                    let removed = inner.peers.remove(&fullname);
                    if removed.is_some() {
                        inner.counters.lost += 1;
                    }
                    removed
                };
                match removed {
                    Some((peer, reason)) => {
                        tracing::info!(name = %peer.record.name, ?reason, "beacon: node lost");
                        self.publish(PeerEvent::Lost { peer: Box::new(peer), reason });
                        self.promote();
                        true
                    }
                    None => false,
                }
            }
            Event::Renamed { kind: NameKind::Host, from, to } => {
                let label = name::label_of_host(&to).to_string();
                if name::is_valid(&label) && label != self.name() {
                    tracing::warn!(%from, %to, "beacon: the name is taken on the LAN; renamed as RFC 6762 says");
                    self.inner().counters.renamed += 1;
                    self.rename(discovery, label);
                }
                false
            }
            Event::Renamed { from, to, .. } => {
                tracing::debug!(%from, %to, "beacon: service instance renamed");
                false
            }
            _ => false,
        }
    }

    /// True when `peer` announces our host name and has the better claim to it.
    ///
    /// Probing (done by the mDNS layer) catches a name that is already in use, but two
    /// nodes that probe at the same moment can both win, and RFC 6762 section 9 asks
    /// for the conflict to be resolved whenever it is seen. The node with the smaller id
    /// keeps the name, so exactly one of the two moves; a peer without an id (not a
    /// fazt node, or an old one) keeps it too.
    fn clashes(&self, peer: &super::record::NodeRecord) -> bool {
        let ours = format!("{}.local.", self.name());
        peer.host.eq_ignore_ascii_case(&ours)
            && peer.id.as_deref().is_none_or(|id| id < self.identity.id.as_str())
    }

    /// Moves to the first `<wanted>-N` that no known peer uses.
    fn yield_name(&self, discovery: &dyn Discovery, taken: &str) {
        let (wanted, hosts) = {
            let inner = self.inner();
            let hosts: Vec<String> =
                inner.peers.list().iter().map(|p| p.record.host.to_ascii_lowercase()).collect();
            (inner.wanted.clone(), hosts)
        };
        let free = (2..1000).map(|n| format!("{wanted}-{n}")).find(|c| {
            name::is_valid(c)
                && !hosts.contains(&format!("{c}.local."))
                && !taken.eq_ignore_ascii_case(&format!("{c}.local."))
        });
        if let Some(new_name) = free {
            tracing::warn!(taken, to = %new_name, "beacon: another node announces our name; renaming as RFC 6762 says");
            self.inner().counters.renamed += 1;
            self.rename(discovery, new_name);
        }
    }

    /// Confirms quiet peers and drops the ones that can no longer be confirmed.
    fn liveness(&self, discovery: &dyn Discovery, clock: &Clock) -> bool {
        let window = self.config.confirm_window();
        let (confirm, expired): (Vec<String>, Vec<Peer>) = {
            let mut inner = self.inner();
            let result = inner.peers.tick(Instant::now(), clock.now_millis(), self.config.expiry, window);
            inner.counters.lost += result.1.len() as u64;
            result
        };
        for fullname in &confirm {
            if let Err(err) = discovery.verify(fullname, window) {
                tracing::debug!(error = %err, %fullname, "beacon: confirming");
            }
        }
        let changed = !expired.is_empty() || !confirm.is_empty();
        for peer in expired {
            tracing::info!(name = %peer.record.name, "beacon: node expired");
            self.publish(PeerEvent::Lost { peer: Box::new(peer), reason: super::peers::LostReason::Expired });
        }
        self.promote() || changed
    }

    /// Lets waiting newcomers into places that freed up; true when any came in.
    fn promote(&self) -> bool {
        let promoted = {
            let mut inner = self.inner();
            let promoted = inner.peers.promote();
            inner.counters.found += promoted.len() as u64;
            promoted
        };
        let any = !promoted.is_empty();
        for peer in promoted {
            tracing::info!(name = %peer.record.name, "beacon: node found (was waiting for a place)");
            self.publish(PeerEvent::Found { peer: Box::new(peer) });
        }
        any
    }

    /// Picks up `fazt beacon set-name` on a running node: the stored name is read at
    /// every announcement.
    async fn follow_name(&self, discovery: &dyn Discovery, storage: &Arc<Storage>) {
        let stored = storage
            .read(|conn| {
                Ok::<_, StorageError>(crate::config::stored(conn, crate::config::Setting::BeaconName)?)
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let wanted = if stored.is_empty() { self.config.name.clone() } else { stored };
        let changed = {
            let mut inner = self.inner();
            let changed = name::is_valid(&wanted) && inner.wanted != wanted;
            if changed {
                inner.wanted = wanted.clone();
            }
            changed
        };
        if changed {
            tracing::info!(name = %wanted, "beacon: new name");
            self.rename(discovery, wanted);
        }
    }

    /// Mirrors the peer table into `beacon_nodes`.
    async fn save(&self, storage: &Arc<Storage>) {
        let peers = self.peers();
        let result = storage
            .write(move |conn| {
                let tx = conn.transaction()?;
                tx.execute("DELETE FROM beacon_nodes", [])?;
                for p in &peers {
                    let r = &p.record;
                    tx.execute(
                        "INSERT INTO beacon_nodes(fullname, id, name, host, addresses, port, version, services,
                             public_key, verified, meta, first_seen, last_seen)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, ?12)",
                        rusqlite::params![
                            r.fullname,
                            r.id,
                            r.name,
                            r.host,
                            serde_json::to_string(&r.addresses).unwrap_or_default(),
                            r.port,
                            r.version,
                            serde_json::to_string(&r.services).unwrap_or_default(),
                            r.public_key,
                            r.verified,
                            p.first_seen,
                            p.last_seen,
                        ],
                    )?;
                }
                tx.commit()?;
                Ok::<_, StorageError>(())
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "beacon: saving beacon_nodes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacon::BeaconConfig;
    use crate::identity::NodeIdentity;
    use fazt_hal::discovery::loopback::LoopbackNetwork;
    use fazt_hal::discovery::mdns::Interfaces;
    use fazt_hal::keystore::{Keystore, MemorySeeds, SoftwareKeystore};
    use std::time::Duration;

    struct TestNode {
        beacon: Arc<Beacon>,
        endpoint: Arc<fazt_hal::discovery::loopback::LoopbackDiscovery>,
        _dir: tempfile::TempDir,
    }

    fn config(name: &str) -> BeaconConfig {
        BeaconConfig {
            enabled: true,
            off_reason: None,
            name: name.into(),
            interfaces: Interfaces::Auto,
            announce_interval: Duration::from_millis(300),
            expiry: Duration::from_secs(2),
            max_nodes: 3,
        }
    }

    fn node(ex: &smol::Executor<'static>, lan: &LoopbackNetwork, last: u8, name: &str) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let keystore: Arc<dyn Keystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        let identity = Arc::new(NodeIdentity::load_or_create(keystore).unwrap());
        let beacon = Arc::new(Beacon::new(identity, config(name), 8080));
        let endpoint = Arc::new(lan.endpoint([10, 0, 0, last]));
        let discovery: Arc<dyn Discovery> = endpoint.clone();
        ex.spawn(beacon.clone().run(discovery, storage, Arc::new(Clock::new()))).detach();
        TestNode { beacon, endpoint, _dir: dir }
    }

    fn wait(ex: &smol::Executor<'static>, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            smol::block_on(ex.run(async_io::Timer::after(Duration::from_millis(20))));
        }
    }

    #[test]
    fn nodes_find_each_other_and_a_goodbye_is_lost_at_once() {
        let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let lan = LoopbackNetwork::new();
        let a = node(ex, &lan, 1, "a");
        let b = node(ex, &lan, 2, "b");
        let events = a.beacon.subscribe();
        wait(ex, "a sees b", || a.beacon.peers().iter().any(|p| p.record.name == "b"));
        wait(ex, "b sees a", || b.beacon.peers().iter().any(|p| p.record.name == "a"));
        assert!(a.beacon.peers().iter().all(|p| p.record.verified));
        b.beacon.stop();
        wait(ex, "a loses b", || a.beacon.peers().is_empty());
        let mut lost = None;
        while let Ok(event) = events.try_recv() {
            if let PeerEvent::Lost { reason, .. } = event {
                lost = Some(reason);
            }
        }
        assert_eq!(lost, Some(super::super::peers::LostReason::Goodbye));
    }

    #[test]
    fn a_crashed_node_expires() {
        let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let lan = LoopbackNetwork::new();
        let a = node(ex, &lan, 1, "a");
        let b = node(ex, &lan, 2, "b");
        wait(ex, "a sees b", || a.beacon.peers().len() == 1);
        let events = a.beacon.subscribe();
        let crashed = Instant::now();
        b.endpoint.crash();
        wait(ex, "a loses b", || a.beacon.peers().is_empty());
        // Expiry 2 s and a 1 s confirmation window, checked every 300 ms.
        assert!(crashed.elapsed() < Duration::from_secs(4), "{:?}", crashed.elapsed());
        assert!(matches!(
            events.try_recv(),
            Ok(PeerEvent::Lost { reason: super::super::peers::LostReason::Expired, .. })
        ));
    }

    #[test]
    fn a_name_clash_renames_the_newcomer() {
        let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let lan = LoopbackNetwork::new();
        let first = node(ex, &lan, 1, "pi");
        wait(ex, "first announces", || first.beacon.state() == State::Announcing);
        let second = node(ex, &lan, 2, "pi");
        wait(ex, "rename", || second.beacon.name() == "pi-2");
        wait(ex, "first sees pi-2", || first.beacon.peers().iter().any(|p| p.record.name == "pi-2"));
        assert_eq!(first.beacon.name(), "pi");
    }

    #[test]
    fn a_clash_seen_after_probing_moves_exactly_one_node() {
        let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let lan = LoopbackNetwork::new();
        let a = node(ex, &lan, 1, "pi");
        wait(ex, "announcing", || a.beacon.state() == State::Announcing);
        // Another node that won the same name at the same moment, with a smaller id.
        let twin = |id: &str| fazt_hal::discovery::Service {
            fullname: format!("pi.{SERVICE_TYPE}"),
            host: "pi.local.".into(),
            port: 8080,
            addresses: vec![],
            txt: [("id".to_string(), id.to_string())].into_iter().collect(),
        };
        lan.inject(SERVICE_TYPE, twin("node_ffffffffffffffff"));
        smol::block_on(ex.run(async_io::Timer::after(Duration::from_millis(200))));
        assert_eq!(a.beacon.name(), "pi", "a larger id yields");
        lan.inject(SERVICE_TYPE, twin("node_0000000000000000"));
        wait(ex, "rename", || a.beacon.name() == "pi-2");
    }

    #[test]
    fn replayed_and_redirected_records_are_refused() {
        let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let lan = LoopbackNetwork::new();
        let a = node(ex, &lan, 1, "a");
        wait(ex, "announcing", || a.beacon.state() == State::Announcing);
        // Another node's real, signed announcements, as recorded off the link.
        let keystore: Arc<dyn Keystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        let x = NodeIdentity::load_or_create(keystore).unwrap();
        let home: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let announcement = |seq: Seq, resolved: std::net::IpAddr| {
            let own =
                record::Own { name: "x", port: 8080, services: &["web"], ca: None, addresses: &[home], seq };
            fazt_hal::discovery::Service {
                fullname: format!("x.{SERVICE_TYPE}"),
                host: "x.local.".into(),
                port: 8080,
                addresses: vec![resolved],
                txt: record::own_txt(&x, &own).unwrap().into_iter().collect(),
            }
        };
        let seen = |a: &TestNode| a.beacon.peers().iter().find(|p| p.record.name == "x").cloned();
        let old = Seq { boot: 7, n: 30 };
        let new = Seq { boot: 7, n: 60 };
        lan.inject(SERVICE_TYPE, announcement(new, home));
        wait(ex, "x found", || seen(&a).is_some_and(|p| p.record.seq == Some(new)));
        // The older one, replayed: refused and counted; the newer one stays.
        lan.inject(SERVICE_TYPE, announcement(old, home));
        wait(ex, "replay counted", || a.beacon.inner().counters.replayed == 1);
        let kept = seen(&a).unwrap();
        assert_eq!(kept.record.seq, Some(new));
        assert_eq!(kept.record.addresses, vec![home]);
        // The newest one, answered for from another address: that address is not
        // signed, so the record is refused and the peer keeps its signed address.
        let rejected = a.beacon.inner().counters.rejected;
        lan.inject(SERVICE_TYPE, announcement(new, "10.0.0.66".parse().unwrap()));
        wait(ex, "redirect refused", || a.beacon.inner().counters.rejected == rejected + 1);
        assert_eq!(seen(&a).unwrap().record.addresses, vec![home]);
        // After the node left, an old announcement of it is still refused.
        lan.remove(SERVICE_TYPE, &format!("x.{SERVICE_TYPE}"));
        wait(ex, "x lost", || seen(&a).is_none());
        lan.inject(SERVICE_TYPE, announcement(old, home));
        wait(ex, "second replay counted", || a.beacon.inner().counters.replayed == 2);
        assert!(seen(&a).is_none());
        // A restart (a later boot) is welcome.
        lan.inject(SERVICE_TYPE, announcement(Seq { boot: 8, n: 0 }, home));
        wait(ex, "x back", || seen(&a).is_some());
    }

    #[test]
    fn a_flood_of_fake_nodes_is_bounded() {
        let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
        let lan = LoopbackNetwork::new();
        let a = node(ex, &lan, 1, "a");
        wait(ex, "announcing", || a.beacon.state() == State::Announcing);
        for i in 0..500 {
            let service = fazt_hal::discovery::Service {
                fullname: format!("fake{i}.{SERVICE_TYPE}"),
                host: format!("fake{i}.local."),
                port: 80,
                addresses: vec![],
                txt: [("id".to_string(), format!("x{i}"))].into_iter().collect(),
            };
            lan.inject(SERVICE_TYPE, service);
        }
        wait(ex, "table full", || a.beacon.peers().len() == 3);
        wait(ex, "counted", || a.beacon.inner().counters.ignored_full > 0);
        assert_eq!(a.beacon.peers().len(), 3);
    }
}
