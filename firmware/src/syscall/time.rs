//! `fazt.time.status()`: the part of the timekeeper's status an app may see (no
//! addresses or node ids of the LAN's peers, which are the node owner's business).

use crate::time::{Clock, Timekeeper};
use serde_json::{json, Value};

/// The clock's state for apps: `{ now, source, synchronized, stratum, errorMs,
/// offsetMs, sources, lastSync }`.
pub fn status(timekeeper: Option<&Timekeeper>, clock: &Clock) -> Value {
    let Some(keeper) = timekeeper else {
        return json!({ "now": clock.now_millis(), "source": "board", "synchronized": false });
    };
    let full = keeper.status();
    let sources = full["sources"].as_array().map(|s| s.iter().filter(|s| s["included"] == true).count());
    json!({
        "now": full["now"],
        "source": full["source"],
        "synchronized": full["synchronized"],
        "stratum": full["stratum"],
        "errorMs": full["error_ms"],
        "offsetMs": full["offset_ms"],
        "sources": sources,
        "lastSync": full["last_sync"],
    })
}
