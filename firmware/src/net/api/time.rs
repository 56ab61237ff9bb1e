//! `GET /api/system/time` and `POST /api/system/time/sync`: the kernel clock, where its
//! time comes from, how wrong it may be, and every source the timekeeper polls.

use crate::kernel::Kernel;
use crate::net::response::{ok, ApiError, Resp};
use std::sync::Arc;

/// The timekeeper's status.
pub async fn status(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    Ok(ok(kernel.timekeeper.status()))
}

/// Polls every source now (a burst of samples each) and answers the status after.
pub async fn sync(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    if !kernel.timekeeper.settings().enabled {
        return Err(ApiError::new(
            hyper::StatusCode::CONFLICT,
            "time_disabled",
            "the timekeeper is off (time.enabled is false); set it to true and restart the node",
        ));
    }
    Ok(ok(kernel.timekeeper.sync().await))
}
