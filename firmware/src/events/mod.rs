//! The kernel event bus: what happened on the node (a deploy, a failed login, a handler
//! error, an app's own `app.*` events), numbered, timestamped by the kernel clock, sent
//! live to subscribers and kept in a bounded ring in `data.db`.
//!
//! # Layout
//! - [`event`]: the event, the kernel's closed set of types, the limits on input.
//! - [`filter`]: what a reader asked for and may see (apps see their own and public ones).
//! - [`subscription`]: a live, bounded feed that reports when its reader lagged.
//! - [`ring`]: the persisted history in `data.db` and its O(batch) trimming.
//! - `writer`: the thread that writes the history in batches.
//!
//! # Implementation
//! Emitting takes one mutex for a few microseconds (number, time, hand-offs) and never
//! touches SQLite. The last [`RECENT`] events (at most [`RECENT_BYTES`] of data) stay
//! in memory: subscribers get them at once, a thread (`fazt-events`) writes them to
//! `data.db` up to [`writer::BATCH`] per transaction through the one writer connection,
//! and readers catching up are answered from memory when it reaches back far enough.
//! Everything not written yet is still in memory, so a reader never misses an event in
//! between. If the disk falls so far behind that unwritten events leave memory, they
//! went out live but are missing from the history (counted, with a warning).

pub mod event;
pub mod filter;
pub mod ring;
pub mod subscription;
mod writer;

pub use event::{Draft, Event, EventError, Kind, Visibility};
pub use filter::{Filter, Viewer};
pub use subscription::{Next, Subscription};

use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events kept in memory: enough that the writer is never that far behind, and that
/// subscribers and pollers rarely need the ring.
pub const RECENT: usize = 4096;

/// Data kept in memory at most (JSON bytes), so that events with large data (16 KiB
/// each at most) hold 8 MiB, not 64, in the worst case.
pub const RECENT_BYTES: usize = 8 << 20;

/// Rough memory of an event besides its data, for [`RECENT_BYTES`].
const EVENT_OVERHEAD: usize = 200;

/// The jump in ids at each start, past the highest stored one: events still unwritten
/// when the process died (at most [`RECENT`]) had ids that are not in `data.db`, and a
/// reader may have seen them live; their numbers are not handed out again.
const RESTART_GAP: u64 = RECENT as u64;

/// Most events one query returns.
pub const MAX_QUERY: usize = 1000;

/// The bus. Cheap to share (`Arc<Events>`).
pub struct Events {
    clock: Arc<Clock>,
    storage: Arc<Storage>,
    state: Mutex<State>,
    /// Nudges the writer thread; closed at shutdown.
    wake: async_channel::Sender<()>,
    /// The last id written to the ring (or given up on).
    persisted: AtomicU64,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    unstored: AtomicU64,
}

struct State {
    next_id: u64,
    /// The last events, ids increasing; each with its size for [`RECENT_BYTES`].
    recent: VecDeque<(Arc<Event>, usize)>,
    recent_bytes: usize,
    feeds: Vec<subscription::Feed>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("last_id", &self.last_id()).finish_non_exhaustive()
    }
}

impl Events {
    /// Opens the bus over the ring in `storage`, keeping at most `max_rows` events
    /// there (0: none), and starts its writer thread.
    pub fn start(storage: Arc<Storage>, clock: Arc<Clock>, max_rows: u64) -> Result<Arc<Self>, StorageError> {
        let stored = storage.read_blocking(ring::max_id)?;
        let next_id = if stored == 0 { 1 } else { stored + RESTART_GAP + 1 };
        // Room for one nudge: more while the writer is busy add nothing, it reads all
        // that is new anyway.
        let (wake, woken) = async_channel::bounded(1);
        let events = Arc::new(Events {
            clock,
            storage,
            state: Mutex::new(State {
                next_id,
                recent: VecDeque::with_capacity(RECENT),
                recent_bytes: 0,
                feeds: Vec::new(),
            }),
            wake,
            persisted: AtomicU64::new(next_id - 1),
            writer: Mutex::new(None),
            unstored: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&events);
        let writer = std::thread::Builder::new()
            .name("fazt-events".into())
            .spawn(move || writer::run(weak, woken, max_rows))
            .map_err(|e| StorageError::Corrupt(format!("cannot start the event writer thread: {e}")))?;
        *events.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
        Ok(events)
    }

    /// Numbers, timestamps and publishes an event; refuses a bad type or oversized data.
    pub fn emit(&self, draft: Draft) -> Result<Arc<Event>, EventError> {
        event::check_type(&draft.kind)?;
        let size = event::check_data(&draft.data)? + EVENT_OVERHEAD;
        let (app, app_name) = match draft.app {
            Some((id, name)) => (Some(id), Some(name)),
            None => (None, None),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Under the lock, so ids and times rise together and every subscriber sees the
        // same order.
        let event = Arc::new(Event {
            id: state.next_id,
            time: self.clock.now_millis(),
            kind: draft.kind,
            app,
            app_name,
            visibility: draft.visibility,
            data: draft.data,
        });
        state.next_id += 1;
        state.recent.push_back((event.clone(), size));
        state.recent_bytes += size;
        while state.recent.len() > RECENT || state.recent_bytes > RECENT_BYTES {
            let Some((old, old_size)) = state.recent.pop_front() else { break };
            state.recent_bytes -= old_size;
            if old.id > self.persisted.load(Ordering::Acquire) {
                let n = self.unstored.fetch_add(1, Ordering::Relaxed) + 1;
                // Once, then every thousandth: a flood must not become a flood of logs.
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(
                        unstored = n,
                        "the event history cannot keep up; events left out of data.db"
                    );
                }
            }
        }
        state.feeds.retain(|feed| feed.offer(&event));
        drop(state);
        let _ = self.wake.try_send(());
        Ok(event)
    }

    /// Up to `max` events in memory not written yet, oldest first (for the writer).
    fn unwritten(&self, max: usize) -> Vec<Arc<Event>> {
        let after = self.persisted.load(Ordering::Acquire);
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let start = state.recent.partition_point(|(e, _)| e.id <= after);
        state.recent.range(start..).take(max).map(|(e, _)| e.clone()).collect()
    }

    /// Emits a kernel event; an emit site's mistake (data too large) is logged, never
    /// passed on to the operation that emitted it.
    pub fn notify(&self, kind: Kind, app: Option<(&str, &str)>, data: serde_json::Value) {
        if let Err(err) = self.emit(Draft::kernel(kind, app, data)) {
            tracing::warn!(kind = kind.as_str(), error = %err, "kernel event refused");
        }
    }

    /// A live feed of every event from now on.
    pub fn subscribe(&self) -> Subscription {
        let (feed, subscription) = subscription::pair();
        self.state.lock().unwrap_or_else(|e| e.into_inner()).feeds.push(feed);
        subscription
    }

    /// The id of the last event emitted (0 when none yet).
    pub fn last_id(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).next_id - 1
    }

    /// Events after `since` that pass `filter`, oldest first, at most `limit` (capped at
    /// [`MAX_QUERY`]): from memory when it reaches back far enough, else from the ring
    /// plus what is not written yet.
    pub fn query_blocking(
        &self,
        filter: &Filter,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Event>>, StorageError> {
        let limit = limit.clamp(1, MAX_QUERY);
        let (covered, recent) = self.recent_after(filter, since);
        if covered {
            return Ok(recent.into_iter().take(limit).collect());
        }
        let stored = self.storage.read_blocking(|c| ring::query(c, filter, since, limit))?;
        let mut merged: Vec<Arc<Event>> = stored.into_iter().map(Arc::new).collect();
        let last = merged.last().map(|e| e.id).unwrap_or(since);
        // Anything in memory above what the ring returned: events not written yet.
        merged.extend(recent.into_iter().filter(|e| e.id > last));
        merged.truncate(limit);
        Ok(merged)
    }

    /// [`Events::query_blocking`] off the executor.
    pub async fn query(
        self: &Arc<Self>,
        filter: Filter,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Event>>, StorageError> {
        let this = self.clone();
        blocking::unblock(move || this.query_blocking(&filter, since, limit)).await
    }

    /// Matching events in memory after `since`, and whether memory holds every event
    /// after `since` (so the ring need not be read).
    fn recent_after(&self, filter: &Filter, since: u64) -> (bool, Vec<Arc<Event>>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let covered = match state.recent.front() {
            Some((first, _)) => first.id <= since.saturating_add(1),
            // Nothing emitted since start: memory covers only "after the last id".
            None => since >= state.next_id - 1,
        };
        let start = state.recent.partition_point(|(e, _)| e.id <= since);
        let matching =
            state.recent.range(start..).map(|(e, _)| e).filter(|e| filter.matches(e)).cloned().collect();
        (covered, matching)
    }

    /// Waits up to `timeout` until every event emitted so far is in `data.db`; true if so.
    pub fn flush(&self, timeout: Duration) -> bool {
        let target = self.last_id();
        let deadline = Instant::now() + timeout;
        while self.persisted.load(Ordering::Acquire) < target {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Stops taking events for the history, writes what is queued and ends the writer
    /// thread (at shutdown). Live subscribers are told the bus closed.
    pub fn close(&self) {
        self.wake.close();
        self.state.lock().unwrap_or_else(|e| e.into_inner()).feeds.clear();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a guard against a writer that hangs: the writer's speed is not under test,
    /// and a loaded machine (parallel tests, a slow disk) can take seconds for 5,000 rows.
    const FLUSH_HANG_GUARD: Duration = Duration::from_secs(300);

    fn bus(max_rows: u64) -> (tempfile::TempDir, Arc<Storage>, Arc<Events>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let events = Events::start(storage.clone(), Arc::new(Clock::new()), max_rows).unwrap();
        (dir, storage, events)
    }

    fn custom(kind: &str, app: Option<&str>, visibility: Visibility) -> Draft {
        Draft {
            kind: kind.into(),
            app: app.map(|a| (a.to_string(), a.to_string())),
            visibility,
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn ids_and_times_rise_and_history_is_kept() {
        let (_dir, storage, events) = bus(100);
        let a = events.emit(custom("app.one", None, Visibility::Private)).unwrap();
        let b = events.emit(custom("app.two", None, Visibility::Private)).unwrap();
        assert!(b.id == a.id + 1 && b.time >= a.time);
        assert!(events.flush(FLUSH_HANG_GUARD));
        let stored = storage.read_blocking(|c| ring::query(c, &Filter::default(), 0, 10)).unwrap();
        assert_eq!(stored.iter().map(|e| e.id).collect::<Vec<_>>(), [a.id, b.id]);
        assert_eq!(stored[1], *b);
        // A restart numbers on past everything stored, leaving room for lost ones.
        events.close();
        let again = Events::start(storage, Arc::new(Clock::new()), 100).unwrap();
        let c = again.emit(custom("app.three", None, Visibility::Private)).unwrap();
        assert!(c.id > b.id + RESTART_GAP, "{} after {}", c.id, b.id);
        let all = again.query_blocking(&Filter::default(), 0, 10).unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [a.id, b.id, c.id]);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let (_dir, _storage, events) = bus(100);
        assert!(matches!(
            events.emit(custom("Bad Type", None, Visibility::Public)),
            Err(EventError::BadType(_))
        ));
        let mut big = custom("app.big", None, Visibility::Public);
        big.data = serde_json::json!("x".repeat(event::MAX_DATA_BYTES + 1));
        assert!(matches!(events.emit(big), Err(EventError::TooLarge(_))));
        assert_eq!(events.last_id(), 0);
    }

    #[test]
    fn a_slow_subscriber_lags_and_is_told() {
        let (_dir, _storage, events) = bus(10_000);
        let mut slow = events.subscribe();
        let total = subscription::QUEUE + 10;
        for _ in 0..total {
            events.emit(custom("app.tick", None, Visibility::Public)).unwrap();
        }
        smol::block_on(async {
            assert!(matches!(slow.next().await, Next::Lagged(10)));
            let mut got = 0;
            while got < subscription::QUEUE {
                match slow.next().await {
                    Next::Event(e) => assert_eq!(e.id, got as u64 + 1),
                    other => panic!("{other:?}"),
                }
                got += 1;
            }
        });
        // Nothing was lost for the history.
        assert!(events.flush(FLUSH_HANG_GUARD));
        assert_eq!(events.query_blocking(&Filter::default(), 0, MAX_QUERY).unwrap().len(), total);
    }

    #[test]
    fn queries_reach_past_memory_into_the_ring() {
        let (_dir, _storage, events) = bus(100_000);
        // In two halves with a flush between: memory holds only RECENT events, and a
        // writer slower than this loop (a loaded machine) would otherwise be left behind
        // and drop the oldest, as designed, which is not what this test is about.
        for half in [RECENT / 2, RECENT / 2 + 500] {
            for _ in 0..half {
                events.emit(custom("app.tick", None, Visibility::Public)).unwrap();
            }
            assert!(events.flush(FLUSH_HANG_GUARD));
        }
        events.emit(custom("app.secret", Some("b"), Visibility::Private)).unwrap();
        assert!(events.flush(FLUSH_HANG_GUARD));
        let first = events.query_blocking(&Filter::default(), 0, 10).unwrap();
        assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        let a = Filter { viewer: Viewer::App("a".into()), ..Filter::default() };
        let seen = events.query_blocking(&a, RECENT as u64 + 490, 100).unwrap();
        assert_eq!(seen.len(), 10, "the private event of b is not among them");
        let b = Filter {
            viewer: Viewer::App("b".into()),
            type_prefix: Some("app.secret".into()),
            ..Filter::default()
        };
        assert_eq!(events.query_blocking(&b, 0, 100).unwrap().len(), 1);
    }
}
