//! This node as announced on the LAN, the nodes it sees, and its mDNS counters: the
//! node owner's business (peers' addresses and ids), so the admin's only.

use super::{Caller, SyscallError};
use crate::beacon::{name, peers::Peer, Beacon};
use crate::config::{NodeConfig, Setting};
use crate::storage::Storage;
use std::sync::Arc;

/// The beacon's status and peer list, with its mDNS packet counters as `metrics`.
pub async fn status(beacon: &Arc<Beacon>, caller: &Caller) -> Result<serde_json::Value, SyscallError> {
    caller.require_admin()?;
    let backend = beacon.clone();
    // The backend answers metrics from its own thread; wait for it off the executor.
    let metrics = blocking::unblock(move || backend.metrics()).await;
    let mut body = beacon.status();
    body["metrics"] = serde_json::json!(metrics);
    Ok(body)
}

/// The fazt nodes this one sees on the LAN.
pub fn peers(beacon: &Beacon, caller: &Caller) -> Result<Vec<Peer>, SyscallError> {
    caller.require_admin()?;
    Ok(beacon.peers())
}

/// What the data file says a node would announce, with no node running on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// `beacon.enabled`.
    pub enabled: bool,
    /// The node id, once the first start made the node key.
    pub id: Option<String>,
    /// The name announced as `<name>.local`.
    pub name: String,
    /// The HTTP port.
    pub port: u64,
}

/// What a node on the data file in `storage` would announce (`fazt beacon status` with
/// no node answering).
pub fn announced(storage: &Storage, caller: &Caller) -> Result<Announced, SyscallError> {
    caller.require_admin()?;
    let config = NodeConfig::load(storage)?;
    let id = crate::keys::store::stored_public_key(storage, crate::rules::keys::NODE_KEY)
        .map(|k| crate::identity::id_for(&k));
    let configured = config.get(Setting::BeaconName);
    let name = if configured.is_empty() { name::default_name() } else { configured.to_string() };
    Ok(Announced {
        enabled: config.get_bool(Setting::BeaconEnabled),
        id,
        name,
        port: config.get_u64(Setting::Port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_admin_reads_what_the_node_would_announce() {
        let (_dir, storage, _bus) = crate::syscall::apps::tests::node();
        let err = announced(&storage, &Caller::app("a")).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("forbidden", super::super::Kind::Forbidden));
        let offline = announced(&storage, &Caller::Local).unwrap();
        assert_eq!((offline.id, offline.port), (None, 8080));
    }
}
