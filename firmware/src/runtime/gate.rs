//! A per-app concurrency gate that serves waiters first come, first served.
//!
//! `async_lock::Semaphore` lets a newcomer take a permit that was just released ahead of
//! the waiter that was woken for it; the woken waiter then queues again at the back.
//! Under load (50 connections to one app that may run 2 requests at once) some requests
//! lose that race many times in a row, which showed as a p99 three times Node's. Here a
//! released permit is handed to the oldest waiter directly, and a newcomer queues behind
//! anyone already waiting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// At most `limit` holders at once; waiters in arrival order.
#[derive(Debug)]
pub struct FairGate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// One slot per waiter: a permit is handed over by sending into it.
    waiting: VecDeque<async_channel::Sender<()>>,
}

/// A held place in a [`FairGate`]; given back (to the next waiter) when dropped.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<FairGate>,
}

impl FairGate {
    /// A gate with `limit` places (at least 1).
    pub fn new(limit: usize) -> Self {
        FairGate { state: Mutex::new(State { free: limit.max(1), waiting: VecDeque::new() }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a place, behind everyone who asked before.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        let handed = {
            let mut state = self.state();
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return Permit { gate: self.clone() };
            }
            let (tx, rx) = async_channel::bounded(1);
            state.waiting.push_back(tx);
            rx
        };
        // If this future is dropped after a place was handed over but before it was
        // taken, the place must go on to the next waiter, not be lost.
        let mut waiting = Waiting { gate: self.clone(), handed, taken: false };
        // The gate keeps the sender until it sends (see `release`), so this returns
        // only when a place was handed over.
        let _ = waiting.handed.recv().await;
        waiting.taken = true;
        Permit { gate: self.clone() }
    }

    /// Gives a place to the oldest waiter still waiting, or back to the pool.
    fn release(&self) {
        let mut state = self.state();
        while let Some(next) = state.waiting.pop_front() {
            // A waiter that gave up (its future dropped) has closed its slot.
            if next.try_send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A waiter's slot while it waits; on drop, passes on a place it was handed.
struct Waiting {
    gate: Arc<FairGate>,
    handed: async_channel::Receiver<()>,
    /// The place was received and now belongs to a [`Permit`].
    taken: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        self.handed.close();
        if self.handed.try_recv().is_ok() {
            self.gate.release();
        } else {
            // Forget the closed slot now: clients that give up while an app is at its
            // limit (say, behind 30 s loops) must not pile up until the next release.
            self.gate.state().waiting.retain(|slot| !slot.is_closed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn a_released_place_goes_to_the_oldest_waiter_not_a_newcomer() {
        let gate = Arc::new(FairGate::new(1));
        let first = future::block_on(gate.acquire());
        let mut older = Box::pin(gate.acquire());
        assert!(future::block_on(future::poll_once(&mut older)).is_none(), "the gate is full");
        drop(first);
        // A newcomer arriving right after the release must queue, even though the
        // older waiter has not been polled since.
        let mut newcomer = Box::pin(gate.acquire());
        assert!(
            future::block_on(future::poll_once(&mut newcomer)).is_none(),
            "the newcomer jumped the queue"
        );
        let held = future::block_on(future::poll_once(&mut older)).expect("the older waiter got the place");
        drop(held);
        assert!(future::block_on(future::poll_once(&mut newcomer)).is_some());
    }

    #[test]
    fn a_waiter_that_gives_up_does_not_lose_the_place() {
        let gate = Arc::new(FairGate::new(1));
        let first = future::block_on(gate.acquire());
        let mut quitter = Box::pin(gate.acquire());
        assert!(future::block_on(future::poll_once(&mut quitter)).is_none());
        let mut next = Box::pin(gate.acquire());
        assert!(future::block_on(future::poll_once(&mut next)).is_none());
        // The place is handed to the quitter, which is dropped before taking it.
        drop(first);
        drop(quitter);
        assert!(future::block_on(future::poll_once(&mut next)).is_some(), "the place was lost");
        // And a quitter that leaves before any release is skipped.
        let gate = Arc::new(FairGate::new(1));
        let first = future::block_on(gate.acquire());
        let mut quitter = Box::pin(gate.acquire());
        assert!(future::block_on(future::poll_once(&mut quitter)).is_none());
        drop(quitter);
        drop(first);
        let again = future::block_on(future::poll_once(&mut Box::pin(gate.acquire())));
        assert!(again.is_some(), "the place went to a waiter that had left");
    }

    #[test]
    fn waiters_that_give_up_leave_nothing_behind() {
        let gate = Arc::new(FairGate::new(1));
        let _held = future::block_on(gate.acquire());
        for _ in 0..1000 {
            let mut quitter = Box::pin(gate.acquire());
            assert!(future::block_on(future::poll_once(&mut quitter)).is_none());
        }
        assert_eq!(gate.state().waiting.len(), 0);
    }

    #[test]
    fn at_most_limit_hold_places_at_once() {
        let gate = Arc::new(FairGate::new(2));
        let a = future::block_on(gate.acquire());
        let _b = future::block_on(gate.acquire());
        let mut c = Box::pin(gate.acquire());
        assert!(future::block_on(future::poll_once(&mut c)).is_none());
        drop(a);
        assert!(future::block_on(future::poll_once(&mut c)).is_some());
    }
}
