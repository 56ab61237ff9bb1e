//! The persistence thread: writes the bus's recent events to the ring, many per
//! transaction, through the one database writer, so emitting never waits for SQLite.

use super::Events;
use std::sync::atomic::Ordering;
use std::sync::Weak;

/// Most events written in one transaction. One transaction costs about one commit (a
/// WAL append); 256 rows of a few hundred bytes each keep it short for the writers
/// queued behind it (deploys, KV).
pub const BATCH: usize = 256;

/// Runs until `wake` is closed, writing whatever is new after each wake-up (and once
/// more after the close, so a shutdown loses nothing queued).
pub(crate) fn run(events: Weak<Events>, wake: async_channel::Receiver<()>, max_rows: u64) {
    loop {
        let open = wake.recv_blocking().is_ok();
        let Some(events) = events.upgrade() else { return };
        loop {
            let batch = events.unwritten(BATCH);
            let Some(last) = batch.last().map(|e| e.id) else { break };
            // A failed batch is logged and skipped: the live feed already had the
            // events, and retrying would only pile up behind a full or broken disk.
            if let Err(err) = events.storage.write_blocking(|c| super::ring::insert(c, &batch, max_rows)) {
                tracing::warn!(error = %err, events = batch.len(), "could not store events; left out of the history");
            }
            events.persisted.store(last, Ordering::Release);
        }
        if !open {
            return;
        }
    }
}
