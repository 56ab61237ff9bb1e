//! A cap on TLS handshakes in progress (`https.max_handshakes`).
//!
//! A handshake holds rustls state (a few KB) and, once the ClientHello is in, costs an
//! ECDHE and a signature. A flood of clients that start handshakes and never finish them
//! would hold that state for [`HANDSHAKE_TIMEOUT`](super::HANDSHAKE_TIMEOUT) each, with no
//! bound but the connection limit. So at most `max` handshakes run at once; a new one
//! over the cap closes the *oldest* one in progress. A real client finishes its
//! handshake in a round trip or two, so under a flood the oldest handshake is almost
//! always one that was never going to finish, and a real client still gets through as
//! long as fewer than `max` new connections arrive during its own handshake. (Making
//! newcomers wait instead would queue real clients behind the whole flood.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The handshakes in progress.
#[derive(Debug)]
pub struct Handshakes {
    max: usize,
    open: Mutex<Open>,
    evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    /// By age: the sender closes to tell a handshake to give up.
    slots: BTreeMap<u64, async_channel::Sender<()>>,
}

/// One handshake's place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    owner: Arc<Handshakes>,
    closed: async_channel::Receiver<()>,
}

impl Handshakes {
    /// At most `max` (at least 1) handshakes at once.
    pub fn new(max: usize) -> Arc<Handshakes> {
        Arc::new(Handshakes { max: max.max(1), open: Mutex::default(), evicted: AtomicU64::new(0) })
    }

    /// A place for a new handshake, closing the oldest one when all are taken.
    pub fn begin(self: &Arc<Self>) -> Slot {
        let (tx, rx) = async_channel::bounded(1);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.slots.len() >= self.max {
            if let Some((_, oldest)) = open.slots.pop_first() {
                oldest.close();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = open.next;
        open.next += 1;
        open.slots.insert(id, tx);
        Slot { id, owner: self.clone(), closed: rx }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Handshakes in progress now.
    pub fn in_progress(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).slots.len()
    }

    /// Handshakes closed so far to make room for newer ones.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

impl Slot {
    /// Completes when this handshake has been closed to make room for a newer one.
    pub async fn evicted(&self) {
        // Nothing is ever sent: the channel closes.
        let _ = self.closed.recv().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner.open.lock().unwrap_or_else(|e| e.into_inner()).slots.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_handshake_makes_room_and_finished_ones_free_theirs() {
        let h = Handshakes::new(2);
        let a = h.begin();
        let b = h.begin();
        assert_eq!((h.in_progress(), h.evicted()), (2, 0));
        let c = h.begin();
        assert_eq!((h.in_progress(), h.evicted()), (2, 1));
        // `a` was told to give up; `b` and `c` were not.
        futures_lite::future::block_on(a.evicted());
        assert!(futures_lite::future::block_on(futures_lite::future::or(
            async {
                b.evicted().await;
                false
            },
            async { true }
        )));
        drop(b);
        drop(a);
        assert_eq!(h.in_progress(), 1);
        let _d = h.begin();
        assert_eq!((h.in_progress(), h.evicted()), (2, 1), "a free place is used first");
        drop(c);
        assert_eq!(h.in_progress(), 1);
    }

    #[test]
    fn a_cap_of_zero_is_one() {
        let h = Handshakes::new(0);
        assert_eq!(h.max(), 1);
        let _a = h.begin();
        let _b = h.begin();
        assert_eq!((h.in_progress(), h.evicted()), (1, 1));
    }
}
