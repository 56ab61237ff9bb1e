//! `GET /api/system/time` and `POST /api/system/time/sync`: the kernel clock, where its
//! time comes from, how wrong it may be, and every source the timekeeper polls.

use crate::net::response::{ok, ApiError, Resp};
use crate::syscall::{self, Caller};
use crate::time::Timekeeper;
use std::sync::Arc;

/// The timekeeper's status.
pub async fn status(timekeeper: &Timekeeper, caller: &Caller) -> Result<Resp, ApiError> {
    Ok(ok(syscall::time::keeper_status(timekeeper, caller)?))
}

/// Polls every source now (a burst of samples each) and answers the status after.
pub async fn sync(timekeeper: &Arc<Timekeeper>, caller: &Caller) -> Result<Resp, ApiError> {
    Ok(ok(syscall::time::sync(timekeeper, caller).await?))
}
