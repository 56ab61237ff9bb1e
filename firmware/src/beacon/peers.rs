//! The peer table: the fazt nodes the beacon sees now, bounded, with the bookkeeping
//! that tells a quiet node from a gone one.
//!
//! mDNS caches do not report that a record was heard again, only that it changed or
//! went away. So a peer is "seen" when it is resolved or changes (every announcement of
//! a fazt node changes, by its signed sequence), and when it has been
//! quiet for most of the expiry time the beacon asks the link to confirm it (RFC 6762
//! section 10.4): if nobody answers, the mDNS layer removes it; if the window passes
//! without a removal, it answered and counts as seen again.

use super::record::NodeRecord;
use crate::time::UnixMillis;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A node in the table.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    /// What it announced.
    #[serde(flatten)]
    pub record: NodeRecord,
    /// When it was first seen (kernel clock).
    pub first_seen: UnixMillis,
    /// When it was last seen or confirmed (kernel clock).
    pub last_seen: UnixMillis,
    #[serde(skip)]
    seen_at: Instant,
    #[serde(skip)]
    confirming_until: Option<Instant>,
}

/// Why a peer left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LostReason {
    /// It said goodbye (clean shutdown), or its records were withdrawn.
    Goodbye,
    /// It stopped answering and its records expired.
    Expired,
}

/// A change in the table, for subscribers (timekeeper, mesh).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PeerEvent {
    /// A node appeared.
    Found {
        /// The node.
        peer: Box<Peer>,
    },
    /// A node left.
    Lost {
        /// The node as last seen.
        peer: Box<Peer>,
        /// Why.
        reason: LostReason,
    },
}

/// What [`PeerTable::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new peer.
    Found,
    /// A known peer with changed records.
    Changed,
    /// A known peer, same records.
    Seen,
    /// The table is full; the newcomer was ignored.
    Full,
}

/// The bounded table, keyed by lower-case full name.
#[derive(Debug)]
pub struct PeerTable {
    max: usize,
    peers: BTreeMap<String, Peer>,
    /// Newcomers heard while the table was full, newest last, at most `max`: mDNS
    /// reports a node once, not at every announcement, so a node turned away would
    /// otherwise stay unknown until its records change.
    waiting: VecDeque<Peer>,
}

impl PeerTable {
    /// A table of at most `max` peers (at least 1).
    pub fn new(max: usize) -> Self {
        PeerTable { max: max.max(1), peers: BTreeMap::new(), waiting: VecDeque::new() }
    }

    /// Every peer, by name.
    pub fn list(&self) -> Vec<Peer> {
        self.peers.values().cloned().collect()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Records that `record` was heard. When the table is full a newcomer is ignored
    /// rather than evicting a known node: a flood of fake nodes then cannot push real
    /// ones out, and newcomers get in as old entries expire.
    pub fn upsert(&mut self, record: NodeRecord, now_ms: UnixMillis, now: Instant) -> (Upsert, Peer) {
        let key = record.fullname.to_ascii_lowercase();
        if let Some(peer) = self.peers.get_mut(&key) {
            let changed = !peer.record.same_as(&record);
            peer.record = record;
            peer.last_seen = now_ms;
            peer.seen_at = now;
            peer.confirming_until = None;
            return (if changed { Upsert::Changed } else { Upsert::Seen }, peer.clone());
        }
        let peer =
            Peer { record, first_seen: now_ms, last_seen: now_ms, seen_at: now, confirming_until: None };
        if self.peers.len() >= self.max {
            self.waiting.retain(|w| !w.record.fullname.eq_ignore_ascii_case(&peer.record.fullname));
            self.waiting.push_back(peer.clone());
            if self.waiting.len() > self.max {
                self.waiting.pop_front();
            }
            return (Upsert::Full, peer);
        }
        self.peers.insert(key, peer.clone());
        (Upsert::Found, peer)
    }

    /// Moves waiting newcomers (newest first) into free places; returns them. Their
    /// liveness clock starts when they were heard, so stale ones are confirmed soon.
    pub fn promote(&mut self) -> Vec<Peer> {
        let mut promoted = Vec::new();
        while self.peers.len() < self.max {
            let Some(peer) = self.waiting.pop_back() else { break };
            self.peers.insert(peer.record.fullname.to_ascii_lowercase(), peer.clone());
            promoted.push(peer);
        }
        promoted
    }

    /// Removes a peer by full name.
    pub fn remove(&mut self, fullname: &str) -> Option<(Peer, LostReason)> {
        self.waiting.retain(|w| !w.record.fullname.eq_ignore_ascii_case(fullname));
        let peer = self.peers.remove(&fullname.to_ascii_lowercase())?;
        // A removal while we were asking for confirmation is the silence we asked about.
        let reason = if peer.confirming_until.is_some() { LostReason::Expired } else { LostReason::Goodbye };
        Some((peer, reason))
    }

    /// One step of liveness bookkeeping at `now`:
    /// - peers whose confirmation window passed without a removal answered: seen again;
    /// - peers quiet for `expiry - window` are returned, to be confirmed within `window`;
    /// - peers quiet for longer than `expiry + window` (confirmation impossible, e.g.
    ///   the mDNS cache lost them) are dropped and returned as expired.
    pub fn tick(
        &mut self,
        now: Instant,
        now_ms: UnixMillis,
        expiry: Duration,
        window: Duration,
    ) -> (Vec<String>, Vec<Peer>) {
        let mut confirm = Vec::new();
        let mut expired = Vec::new();
        for (key, peer) in &mut self.peers {
            match peer.confirming_until {
                Some(until) if now >= until => {
                    peer.confirming_until = None;
                    peer.seen_at = now;
                    peer.last_seen = now_ms;
                }
                Some(_) => {}
                None => {
                    let quiet = now.saturating_duration_since(peer.seen_at);
                    if quiet >= expiry + window {
                        expired.push(key.clone());
                    } else if quiet + window >= expiry {
                        peer.confirming_until = Some(now + window);
                        confirm.push(peer.record.fullname.clone());
                    }
                }
            }
        }
        let expired = expired.iter().filter_map(|k| self.peers.remove(k)).collect();
        (confirm, expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> NodeRecord {
        NodeRecord {
            fullname: format!("{name}._fazt._tcp.local."),
            id: None,
            name: name.into(),
            host: format!("{name}.local."),
            addresses: vec![],
            port: 8080,
            version: None,
            services: vec![],
            public_key: None,
            ca_fingerprint: None,
            verified: false,
            ntp_port: None,
            seq: None,
        }
    }

    #[test]
    fn a_full_table_keeps_the_nodes_it_knows() {
        let mut table = PeerTable::new(2);
        let now = Instant::now();
        assert_eq!(table.upsert(record("a"), 1, now).0, Upsert::Found);
        assert_eq!(table.upsert(record("b"), 1, now).0, Upsert::Found);
        assert_eq!(table.upsert(record("c"), 1, now).0, Upsert::Full);
        assert_eq!(table.upsert(record("a"), 2, now).0, Upsert::Seen);
        let mut changed = record("a");
        changed.port = 1;
        assert_eq!(table.upsert(changed, 3, now).0, Upsert::Changed);
        assert_eq!(table.len(), 2);
        // When a place frees up, the newest turned-away node takes it.
        table.upsert(record("d"), 4, now);
        table.remove("b._fazt._tcp.local.");
        let promoted = table.promote();
        assert_eq!(promoted.len(), 1);
        assert_eq!(promoted[0].record.name, "d");
        assert!(table.promote().is_empty());
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn quiet_peers_are_confirmed_then_kept_or_expired() {
        let (expiry, window) = (Duration::from_secs(10), Duration::from_secs(2));
        let start = Instant::now();
        let mut table = PeerTable::new(10);
        table.upsert(record("a"), 0, start);
        table.upsert(record("b"), 0, start);
        let (confirm, expired) = table.tick(start + Duration::from_secs(5), 5, expiry, window);
        assert!(confirm.is_empty() && expired.is_empty());
        let (confirm, expired) = table.tick(start + Duration::from_secs(8), 8, expiry, window);
        assert_eq!(confirm.len(), 2);
        assert!(expired.is_empty());
        // b went silent: the mDNS layer removes it; a answered: the window passes.
        assert_eq!(table.remove("b._fazt._tcp.local.").unwrap().1, LostReason::Expired);
        let (confirm, expired) = table.tick(start + Duration::from_secs(10), 10, expiry, window);
        assert!(confirm.is_empty() && expired.is_empty());
        assert_eq!(table.list()[0].last_seen, 10);
        // Never confirmable (no tick while it was due): dropped after expiry + window.
        let mut table = PeerTable::new(10);
        table.upsert(record("d"), 0, start);
        let (_, expired) = table.tick(start + Duration::from_secs(12), 12, expiry, window);
        assert_eq!(expired.len(), 1);
        assert!(table.is_empty());
    }

    #[test]
    fn a_goodbye_is_not_an_expiry() {
        let mut table = PeerTable::new(10);
        table.upsert(record("a"), 0, Instant::now());
        assert_eq!(table.remove("A._fazt._tcp.local.").unwrap().1, LostReason::Goodbye);
        assert!(table.is_empty());
    }
}
