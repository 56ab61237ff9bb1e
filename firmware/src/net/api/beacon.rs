//! `GET /api/system/beacon`: this node as announced on the LAN, and the nodes it sees.

use crate::kernel::Kernel;
use crate::net::response::{ok, ApiError, Resp};
use std::sync::Arc;

/// The beacon's status, peer list and mDNS packet counters.
pub async fn status(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let beacon = kernel.beacon.clone();
    // The backend answers metrics from its own thread; wait for it off the executor.
    let metrics = blocking::unblock(move || beacon.metrics()).await;
    let mut body = kernel.beacon.status();
    body["metrics"] = serde_json::json!(metrics);
    Ok(ok(body))
}
