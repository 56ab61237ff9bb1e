//! A live feed of the bus for one reader: bounded, so a reader that falls behind loses
//! events instead of holding up the emitter, and is told how many it lost.

use super::event::Event;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Events queued per subscriber before new ones are dropped for it. A reader on a
/// healthy connection drains in microseconds; 256 rides out a burst (a big deploy, a
/// flood of app events) without holding much memory (the events are shared `Arc`s).
pub const QUEUE: usize = 256;

/// What a subscriber reads next.
#[derive(Debug)]
pub enum Next {
    /// The next event.
    Event(Arc<Event>),
    /// This many events were dropped because the reader was too slow; the history
    /// ([`super::Events::query`]) may still hold them.
    Lagged(u64),
    /// The bus shut down.
    Closed,
}

/// The bus's end of a subscription.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: async_channel::Sender<Arc<Event>>,
    missed: Arc<AtomicU64>,
}

impl Feed {
    /// Hands over an event without waiting; false once the reader is gone.
    pub(crate) fn offer(&self, event: &Arc<Event>) -> bool {
        match self.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(async_channel::TrySendError::Full(_)) => {
                self.missed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(async_channel::TrySendError::Closed(_)) => false,
        }
    }
}

/// A reader's end: every event emitted after it was made, unless it lags.
#[derive(Debug)]
pub struct Subscription {
    rx: async_channel::Receiver<Arc<Event>>,
    missed: Arc<AtomicU64>,
}

/// A connected pair.
pub(crate) fn pair() -> (Feed, Subscription) {
    let (tx, rx) = async_channel::bounded(QUEUE);
    let missed = Arc::new(AtomicU64::new(0));
    (Feed { tx, missed: missed.clone() }, Subscription { rx, missed })
}

impl Subscription {
    /// Waits for the next event; a lag is reported before the events that follow it.
    pub async fn next(&mut self) -> Next {
        let missed = self.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            return Next::Lagged(missed);
        }
        match self.rx.recv().await {
            Ok(event) => Next::Event(event),
            Err(_) => Next::Closed,
        }
    }
}
