//! The beacon's peer changes as public events (`peer.found`, `peer.lost`).

use super::peers::{Peer, PeerEvent};
use crate::events::{Events, Kind};
use std::sync::Arc;

/// Turns each change of the beacon's peer table into an event until the beacon's feed
/// closes. Runs as a task; it only waits on the feed.
pub async fn follow(events: Arc<Events>, feed: async_channel::Receiver<PeerEvent>) {
    while let Ok(change) = feed.recv().await {
        match change {
            PeerEvent::Found { peer } => events.notify(Kind::PeerFound, None, describe(&peer, None)),
            PeerEvent::Lost { peer, reason } => {
                events.notify(Kind::PeerLost, None, describe(&peer, serde_json::to_value(reason).ok()))
            }
        }
    }
}

/// What an app may learn about a peer: what the peer announces to the whole LAN anyway.
fn describe(peer: &Peer, reason: Option<serde_json::Value>) -> serde_json::Value {
    let record = &peer.record;
    let mut data = serde_json::json!({
        "id": record.id, "name": record.name, "addresses": record.addresses, "port": record.port,
        "version": record.version, "verified": record.verified,
    });
    if let Some(reason) = reason {
        data["reason"] = reason;
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacon::peers::{LostReason, PeerTable};
    use crate::beacon::record::NodeRecord;
    use crate::events::{Filter, Viewer, Visibility};

    #[test]
    fn peers_found_and_lost_are_public_events() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::Storage::open(&dir.path().join("data.db")).unwrap();
        let events = Events::start(storage, Arc::new(crate::time::Clock::new()), 100).unwrap();
        let record = NodeRecord {
            fullname: "kitchen._fazt._tcp.local.".into(),
            id: Some("node_1".into()),
            name: "kitchen".into(),
            host: "kitchen.local.".into(),
            addresses: vec!["10.0.0.7".parse().unwrap()],
            port: 8080,
            version: Some("0.7.0".into()),
            services: vec![],
            public_key: None,
            ca_fingerprint: None,
            verified: true,
            ntp_port: None,
            seq: None,
        };
        let (_, peer) = PeerTable::new(4).upsert(record, 0, std::time::Instant::now());
        let (tx, rx) = async_channel::unbounded();
        tx.try_send(PeerEvent::Found { peer: Box::new(peer.clone()) }).unwrap();
        tx.try_send(PeerEvent::Lost { peer: Box::new(peer), reason: LostReason::Goodbye }).unwrap();
        drop(tx);
        smol::block_on(follow(events.clone(), rx));
        let app = Filter { viewer: Viewer::App("any".into()), ..Filter::default() };
        let seen = events.query_blocking(&app, 0, 10).unwrap();
        let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["peer.found", "peer.lost"]);
        assert!(seen.iter().all(|e| e.visibility == Visibility::Public && e.data["name"] == "kitchen"));
        assert_eq!(seen[1].data["reason"], "goodbye");
    }
}
