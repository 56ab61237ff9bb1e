//! The kernel clock: `fazt.time.status()`, the part of the timekeeper's status an app may
//! see (no addresses or node ids of the LAN's peers, which are the node owner's
//! business), and the full status and a sync now for the admin.

use super::caller::Scope;
use super::{Caller, Kind, SyscallError};
use crate::time::{Clock, Timekeeper};
use serde_json::{json, Value};
use std::sync::Arc;

/// The clock's state for apps: `{ now, source, synchronized, stratum, errorMs,
/// offsetMs, sources, lastSync }`; any caller with credentials (see [`Scope::Clock`]).
pub fn status(
    timekeeper: Option<&Timekeeper>,
    clock: &Clock,
    caller: &Caller,
) -> Result<Value, SyscallError> {
    caller.require(Scope::Clock)?;
    let Some(keeper) = timekeeper else {
        return Ok(json!({ "now": clock.now_millis(), "source": "board", "synchronized": false }));
    };
    let full = keeper.status();
    let sources = full["sources"].as_array().map(|s| s.iter().filter(|s| s["included"] == true).count());
    Ok(json!({
        "now": full["now"],
        "source": full["source"],
        "synchronized": full["synchronized"],
        "stratum": full["stratum"],
        "errorMs": full["error_ms"],
        "offsetMs": full["offset_ms"],
        "sources": sources,
        "lastSync": full["last_sync"],
    }))
}

/// The timekeeper's full status (sources with their addresses, peers): the admin's.
pub fn keeper_status(keeper: &Timekeeper, caller: &Caller) -> Result<Value, SyscallError> {
    caller.require_admin()?;
    Ok(keeper.status())
}

/// Polls every source now (a burst of samples each) and answers the status after;
/// `time_disabled` when the timekeeper is off.
pub async fn sync(keeper: &Arc<Timekeeper>, caller: &Caller) -> Result<Value, SyscallError> {
    caller.require_admin()?;
    if !keeper.settings().enabled {
        return Err(SyscallError::refused(
            Kind::Conflict,
            "time_disabled",
            "the timekeeper is off (time.enabled is false); set it to true and restart the node",
        ));
    }
    Ok(keeper.sync().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_see_the_clock_but_not_the_timekeepers_peers_and_visitors_nothing() {
        let clock = Clock::new();
        let app = Caller::app("a");
        assert_eq!(status(None, &clock, &app).unwrap()["source"], "board");
        let visitor = Caller::Visitor { ip: Some("127.0.0.1".parse().unwrap()) };
        let err = status(None, &clock, &visitor).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("forbidden", Kind::Forbidden));
    }
}
