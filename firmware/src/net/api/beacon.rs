//! `GET /api/system/beacon`: this node as announced on the LAN, and the nodes it sees.

use crate::beacon::Beacon;
use crate::net::response::{ok, ApiError, Resp};
use crate::syscall::{self, Caller};
use std::sync::Arc;

/// The beacon's status, peer list and mDNS packet counters.
pub async fn status(beacon: &Arc<Beacon>, caller: &Caller) -> Result<Resp, ApiError> {
    Ok(ok(syscall::beacon::status(beacon, caller).await?))
}
