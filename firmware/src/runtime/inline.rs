//! Inline runs: a handler runs on the HTTP executor thread that received its request,
//! with no hand-off to a worker thread and back (two thread wake-ups per request, most
//! of the serverless cost on a small machine).
//!
//! # Why this stays safe
//! A handler that runs long would hold its executor thread and, with it, the other
//! connections that thread serves. A watchdog thread checks the inline runs every
//! `budget` (`runtime.inline_ms`); when one has run for longer, it *lends* the executor
//! a spare thread that serves in the stuck thread's place until that run ends, and it
//! sends the app's requests to the worker pool for a while ([`DEMOTION`]). So an endless
//! loop still ends at the app's wall-time limit with a 504 (the interrupt handler of the
//! instance, as on a worker), and other connections and apps keep being served by the
//! executor's full number of threads. The watchdog covers every way of being slow:
//! JavaScript, timers, KV calls waiting on SQLite, building an instance.
//!
//! Each thread that runs handlers inline keeps its own warm instances
//! ([`super::worker::Warm`]), so memory limits and isolation are those of the workers.

use super::request::{JsRequest, JsResponse};
use super::worker::{Warm, WorkerContext};
use super::{Entry, RuntimeError};
use crate::fs::site::Site;
use smol::Executor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an app that overran the inline budget is served by the worker pool.
pub const DEMOTION: Duration = Duration::from_secs(30);

/// Stack of a lent thread: QuickJS gets 1 MB of it, the HTTP stack the rest.
pub const THREAD_STACK_BYTES: usize = 4 << 20;

thread_local! {
    /// This thread's warm instances for inline runs.
    static WARM: RefCell<Option<Warm>> = const { RefCell::new(None) };
}

/// The inline runner of a [`super::JsRuntime`], present once an executor is attached.
pub(crate) struct Inline {
    shared: Arc<Shared>,
    watchdog: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Shared {
    executor: Arc<Executor<'static>>,
    budget: Duration,
    max_lent: usize,
    state: Mutex<State>,
    /// Wakes the watchdog when it parked for lack of inline runs.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    next_id: u64,
    runs: HashMap<u64, Run>,
    /// Apps served by the pool until the instant given.
    demoted: HashMap<String, Instant>,
    /// Runs started since the watchdog's last look; it parks after a tick with none.
    started_since_tick: u64,
    parked: bool,
    /// Spare threads serving the executor now, and those waiting to be lent.
    lent: usize,
    idle_spares: Vec<async_channel::Sender<async_channel::Receiver<()>>>,
    spares: usize,
    warned_cap: bool,
    /// Set by [`Inline::stop`]: the watchdog and the idle spare threads end.
    stopped: bool,
}

struct Run {
    app_id: String,
    started: Instant,
    /// False while the instance is being built: a slow build (the first request after a
    /// deploy) gets a loan but does not send the app to the pool.
    handling: bool,
    /// Set when a spare thread serves in this run's place; dropping it ends the loan.
    loan: Option<async_channel::Sender<()>>,
}

/// An inline run in progress; its drop ends it (and any loan made for it).
pub(crate) struct RunGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let run = self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).runs.remove(&self.id);
        // Dropped outside the lock: closing the loan's channel wakes the spare thread.
        drop(run);
    }
}

impl Inline {
    /// Starts the watchdog thread; handlers of apps that stay within `budget` then run
    /// on `executor`'s threads.
    pub(crate) fn start(executor: Arc<Executor<'static>>, budget: Duration) -> std::io::Result<Inline> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let shared = Arc::new(Shared {
            executor,
            budget,
            max_lent: (4 * cores).max(16),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let watched = shared.clone();
        let watchdog =
            std::thread::Builder::new().name("fazt-js-watchdog".into()).spawn(move || watchdog(&watched))?;
        Ok(Inline { shared, watchdog: Mutex::new(Some(watchdog)) })
    }

    /// Ends the watchdog (waiting for it) and the idle spare threads; a spare serving
    /// a loan ends when the loan does. For a node shutting down, once its executor has
    /// no more tasks.
    pub(crate) fn stop(&self) {
        let idle = {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.stopped = true;
            state.parked = false;
            std::mem::take(&mut state.idle_spares)
        };
        self.shared.wake.notify_all();
        // Closing its channel ends a spare waiting for a loan.
        for spare in idle {
            spare.close();
        }
        if let Some(watchdog) = self.watchdog.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = watchdog.join();
        }
    }

    /// Registers an inline run of `app_id`, or `None` when the app is to be served by the
    /// worker pool (it overran the budget not long ago).
    pub(crate) fn begin(&self, app_id: &str) -> Option<RunGuard> {
        let now = Instant::now();
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = state.demoted.get(app_id) {
            if now < *until {
                return None;
            }
            state.demoted.remove(app_id);
        }
        state.next_id += 1;
        let id = state.next_id;
        state.runs.insert(id, Run { app_id: app_id.to_string(), started: now, handling: false, loan: None });
        state.started_since_tick += 1;
        if state.parked {
            state.parked = false;
            self.shared.wake.notify_one();
        }
        drop(state);
        Some(RunGuard { shared: self.shared.clone(), id })
    }
}

impl RunGuard {
    /// The instance is ready and the handler starts: its budget counts from now.
    fn handling(&self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = state.runs.get_mut(&self.id) {
            run.handling = true;
            run.started = Instant::now();
        }
    }
}

/// Runs one request on the current thread with its thread-local warm instances.
pub(crate) fn run_here(
    run: &RunGuard,
    ctx: &WorkerContext,
    site: &Arc<Site>,
    entry: Entry,
    request: &JsRequest,
) -> Result<JsResponse, RuntimeError> {
    WARM.with(|warm| {
        // Not re-entrant by construction (a handler cannot reach the executor), but a
        // failed borrow must still answer rather than panic.
        let Ok(mut warm) = warm.try_borrow_mut() else {
            return Err(RuntimeError::Unavailable("inline runtime busy".into()));
        };
        warm.get_or_insert_with(|| Warm::new(ctx)).invoke(ctx, site, entry, request, &|| run.handling())
    })
}

/// The watchdog loop: every `budget` while inline runs happen, lend a spare thread for
/// each run past its budget and demote its app; parked while there are none.
fn watchdog(shared: &Arc<Shared>) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.runs.is_empty() && state.started_since_tick == 0 && !state.stopped {
            state.parked = true;
            while state.parked {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        if state.stopped {
            return;
        }
        state.started_since_tick = 0;
        state = shared.wake.wait_timeout(state, shared.budget).unwrap_or_else(|e| e.into_inner()).0;
        let now = Instant::now();
        let over: Vec<u64> = state
            .runs
            .iter()
            .filter(|(_, run)| run.loan.is_none() && now.duration_since(run.started) >= shared.budget)
            .map(|(id, _)| *id)
            .collect();
        for id in over {
            let Some(run) = state.runs.get(&id) else { continue };
            if run.handling {
                let app_id = run.app_id.clone();
                state.demoted.insert(app_id, now + DEMOTION);
            }
            if state.lent >= shared.max_lent {
                if !state.warned_cap {
                    state.warned_cap = true;
                    tracing::warn!(
                        max = shared.max_lent,
                        "every spare thread is serving in place of a slow JavaScript handler"
                    );
                }
                continue;
            }
            let (loan, ended) = async_channel::bounded::<()>(1);
            if let Some(run) = state.runs.get_mut(&id) {
                run.loan = Some(loan);
            }
            lend(shared, &mut state, ended);
        }
        // Demotions that ran out are forgotten, so the map stays as small as the set of
        // recently slow apps.
        state.demoted.retain(|_, until| now < *until);
    }
}

/// Hands the executor to a spare thread until `ended` closes.
fn lend(shared: &Arc<Shared>, state: &mut State, ended: async_channel::Receiver<()>) {
    state.lent += 1;
    let mut ended = Some(ended);
    while let Some(spare) = state.idle_spares.pop() {
        match spare.try_send(ended.take().expect("still held")) {
            Ok(()) => return,
            Err(err) => ended = Some(err.into_inner()),
        }
        state.spares = state.spares.saturating_sub(1);
    }
    let (to_spare, loans) = async_channel::bounded(1);
    let _ = to_spare.try_send(ended.take().expect("still held"));
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("fazt-spare-{}", state.spares))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || spare(&worker, to_spare, loans));
    match spawned {
        Ok(_) => state.spares += 1,
        Err(err) => {
            state.lent -= 1;
            tracing::warn!(error = %err, "could not start a spare thread for the executor");
        }
    }
}

/// A spare thread: serves the executor for each loan it gets, then waits for the next.
fn spare(
    shared: &Arc<Shared>,
    me: async_channel::Sender<async_channel::Receiver<()>>,
    loans: async_channel::Receiver<async_channel::Receiver<()>>,
) {
    while let Ok(ended) = loans.recv_blocking() {
        smol::block_on(shared.executor.run(async move {
            let _ = ended.recv().await;
        }));
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.lent = state.lent.saturating_sub(1);
        if state.stopped {
            return;
        }
        state.idle_spares.push(me.clone());
    }
}
