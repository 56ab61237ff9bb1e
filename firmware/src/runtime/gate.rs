//! A per-app gate: at most `limit` runs of one app at once, the rest queued in arrival
//! order, with the queued *jobs* kept here rather than the tasks that made them.
//!
//! Two earlier designs taught this one:
//! - `async_lock::Semaphore` let a newcomer take a place that was just released ahead of
//!   the waiter woken for it; under load (50 connections to one app that may run two
//!   requests at once) some requests lost that race many times over: p99 three times
//!   Node's.
//! - A first-come-first-served semaphore fixed the tail but cost ~15 % throughput: a
//!   released place went to a sleeping task, which had to wake on the HTTP executor and
//!   send its job to a worker while that worker sat idle.
//!
//! Here the thread that finishes one of an app's runs takes that app's next queued job
//! itself ([`Slot::next_job`]): no wake-up, no idle gap, still in order, and the app's
//! instance is already warm on that thread. A queued job whose client went away is
//! skipped when its turn comes ([`Queued::abandoned`]) and purged when the queue is full.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Something that waits in a gate's queue.
pub trait Queued: Send + 'static {
    /// Nobody waits for this any more (its client hung up): skip it.
    fn abandoned(&self) -> bool;
}

/// Starts a job that was queued when a place frees up without a thread to take it (a
/// slot dropped rather than passed on; for example after an inline run).
pub type Dispatch<T> = Box<dyn Fn(Slot<T>, T) + Send + Sync>;

/// One app's places and queue.
pub struct AppGate<T: Queued> {
    state: Mutex<State<T>>,
    limit: usize,
    max_queued: usize,
    dispatch: Dispatch<T>,
}

struct State<T> {
    running: usize,
    queued: VecDeque<T>,
}

/// What [`AppGate::admit`] did with a job.
pub enum Admission<T: Queued> {
    /// A place was free: run the job now, holding the slot until it is done.
    Run(Slot<T>, T),
    /// The job waits in the queue; a thread finishing a run of the app will start it.
    Queued,
    /// The queue is full: answer "busy" (the job is dropped).
    Full,
}

/// A held place in an [`AppGate`]. Dropping it passes the place to the next queued job
/// (through the gate's dispatch) or frees it.
pub struct Slot<T: Queued> {
    gate: Arc<AppGate<T>>,
    held: bool,
}

impl<T: Queued> std::fmt::Debug for AppGate<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("AppGate")
            .field("limit", &self.limit)
            .field("running", &state.running)
            .field("queued", &state.queued.len())
            .finish()
    }
}

impl<T: Queued> std::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("held", &self.held).finish_non_exhaustive()
    }
}

impl<T: Queued> std::fmt::Debug for Admission<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Admission::Run(..) => "Run",
            Admission::Queued => "Queued",
            Admission::Full => "Full",
        })
    }
}

impl<T: Queued> AppGate<T> {
    /// A gate with `limit` places (at least 1) and room for `max_queued` waiting jobs.
    pub fn new(limit: usize, max_queued: usize, dispatch: Dispatch<T>) -> Self {
        AppGate {
            state: Mutex::new(State { running: 0, queued: VecDeque::new() }),
            limit: limit.max(1),
            max_queued,
            dispatch,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` now if a place is free and nobody is queued, else queues it behind
    /// everyone who came before.
    pub fn admit(self: &Arc<Self>, job: T) -> Admission<T> {
        let mut state = self.state();
        if state.running < self.limit && state.queued.is_empty() {
            state.running += 1;
            return Admission::Run(Slot { gate: self.clone(), held: true }, job);
        }
        if state.queued.len() >= self.max_queued {
            // Clients that gave up still count until their turn; make room from them
            // before turning a live one away.
            state.queued.retain(|queued| !queued.abandoned());
            if state.queued.len() >= self.max_queued {
                return Admission::Full;
            }
        }
        state.queued.push_back(job);
        Admission::Queued
    }

    /// The oldest queued job still wanted; with none, the place is given back.
    fn take_next(&self) -> Option<T> {
        let mut state = self.state();
        while let Some(job) = state.queued.pop_front() {
            if !job.abandoned() {
                return Some(job);
            }
        }
        state.running = state.running.saturating_sub(1);
        None
    }
}

impl<T: Queued> Slot<T> {
    /// After a run: the app's next queued job, which this slot now runs; `None` gives the
    /// place back (nothing is waiting) and the slot is spent.
    pub fn next_job(&mut self) -> Option<T> {
        if !self.held {
            return None;
        }
        let next = self.gate.take_next();
        self.held = next.is_some();
        next
    }
}

impl<T: Queued> Drop for Slot<T> {
    fn drop(&mut self) {
        if let Some(next) = self.next_job() {
            let slot = Slot { gate: self.gate.clone(), held: true };
            (self.gate.dispatch)(slot, next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A job with a name and a flag for "its client hung up".
    struct TestJob(&'static str, Arc<AtomicBool>);

    impl Queued for TestJob {
        fn abandoned(&self) -> bool {
            self.1.load(Ordering::Relaxed)
        }
    }

    fn job(name: &'static str) -> TestJob {
        TestJob(name, Arc::new(AtomicBool::new(false)))
    }

    /// What a test gate's dispatch was handed, slots still held.
    type Dispatched = Arc<Mutex<Vec<(Slot<TestJob>, TestJob)>>>;

    /// A gate whose dispatch records what it was handed, keeping the slots held.
    fn gate(limit: usize, max_queued: usize) -> (Arc<AppGate<TestJob>>, Dispatched) {
        let dispatched = Arc::new(Mutex::new(Vec::new()));
        let sink = dispatched.clone();
        let dispatch: Dispatch<TestJob> = Box::new(move |slot, job| sink.lock().unwrap().push((slot, job)));
        (Arc::new(AppGate::new(limit, max_queued, dispatch)), dispatched)
    }

    fn run(admission: Admission<TestJob>) -> (Slot<TestJob>, TestJob) {
        match admission {
            Admission::Run(slot, job) => (slot, job),
            Admission::Queued => panic!("queued, expected to run"),
            Admission::Full => panic!("full, expected to run"),
        }
    }

    #[test]
    fn at_most_limit_run_and_the_rest_run_in_arrival_order() {
        let (gate, dispatched) = gate(2, 10);
        let (mut a, _) = run(gate.admit(job("a")));
        let (_b, _) = run(gate.admit(job("b")));
        assert!(matches!(gate.admit(job("c")), Admission::Queued));
        assert!(matches!(gate.admit(job("d")), Admission::Queued));
        // The thread that finished `a` goes on with `c`, then `d`, then is done.
        assert_eq!(a.next_job().map(|j| j.0), Some("c"));
        assert_eq!(a.next_job().map(|j| j.0), Some("d"));
        assert!(a.next_job().is_none());
        assert!(dispatched.lock().unwrap().is_empty(), "nothing needed a dispatch");
        // `a`'s place is free again: a newcomer runs at once.
        let _e = run(gate.admit(job("e")));
        assert!(matches!(gate.admit(job("f")), Admission::Queued), "both places are held");
    }

    #[test]
    fn a_newcomer_queues_behind_waiters_even_when_a_place_is_free() {
        let (gate, dispatched) = gate(1, 10);
        let (first, _) = run(gate.admit(job("first")));
        assert!(matches!(gate.admit(job("older")), Admission::Queued));
        // The place is passed on (by a drop, so through dispatch) before the newcomer
        // arrives: it goes to the older waiter.
        drop(first);
        let handed: Vec<_> = dispatched.lock().unwrap().drain(..).map(|(slot, job)| (slot, job.0)).collect();
        assert_eq!(handed.iter().map(|(_, name)| *name).collect::<Vec<_>>(), ["older"]);
        assert!(matches!(gate.admit(job("newcomer")), Admission::Queued), "the newcomer jumped the queue");
        drop(handed);
        assert_eq!(dispatched.lock().unwrap()[0].1 .0, "newcomer");
    }

    #[test]
    fn abandoned_jobs_are_skipped_and_make_room_when_the_queue_is_full() {
        let (gate, _) = gate(1, 2);
        let (mut slot, _) = run(gate.admit(job("running")));
        let quitter = job("quitter");
        let hung_up = quitter.1.clone();
        assert!(matches!(gate.admit(quitter), Admission::Queued));
        assert!(matches!(gate.admit(job("patient")), Admission::Queued));
        assert!(matches!(gate.admit(job("turned away")), Admission::Full), "the queue holds 2");
        hung_up.store(true, Ordering::Relaxed);
        assert!(matches!(gate.admit(job("late")), Admission::Queued), "the quitter's place was not reused");
        assert_eq!(slot.next_job().map(|j| j.0), Some("patient"));
        assert_eq!(slot.next_job().map(|j| j.0), Some("late"));
        assert!(slot.next_job().is_none());
    }

    #[test]
    fn a_slot_is_given_back_exactly_once() {
        let (gate, _) = gate(1, 10);
        let (mut slot, _) = run(gate.admit(job("a")));
        assert!(slot.next_job().is_none());
        assert!(slot.next_job().is_none());
        drop(slot);
        assert_eq!(gate.state().running, 0);
        let (_again, _) = run(gate.admit(job("b")));
        assert_eq!(gate.state().running, 1);
    }

    #[test]
    fn a_thousand_quitters_leave_nothing_behind() {
        let (gate, _) = gate(1, 256);
        let (mut slot, _) = run(gate.admit(job("held")));
        for _ in 0..1000 {
            let quitter = job("quitter");
            quitter.1.store(true, Ordering::Relaxed);
            assert!(!matches!(gate.admit(quitter), Admission::Full));
        }
        assert!(gate.state().queued.len() <= 256);
        assert!(slot.next_job().is_none());
        assert_eq!(gate.state().queued.len(), 0);
        assert_eq!(gate.state().running, 0);
    }
}
