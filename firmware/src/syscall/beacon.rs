//! This node as announced on the LAN, the nodes it sees, and its mDNS counters: the
//! node owner's business (peers' addresses and ids), so the admin's only.

use super::{Caller, SyscallError};
use crate::beacon::{peers::Peer, Beacon};
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
