//! The serverless runtime: JavaScript apps (`api/main.js`) running inside the fazt
//! process on QuickJS (rquickjs).
//!
//! # Layout
//! - [`request`]: the request and response objects handed to and from JavaScript.
//! - [`instance`]: one app's JavaScript world (runtime, context, modules, `fazt.*`).
//! - [`memory`]: the allocator that enforces and reports the memory limit.
//! - [`worker`]: the threads that run instances, each with its own cache of them.
//! - [`priority`]: scheduling priority of a thread (the workers run lower than HTTP).
//! - [`gate`]: the per-app limit on concurrent runs and the queue of requests waiting.
//! - [`inline`]: handlers run on the HTTP executor's own threads, watched.
//! - `prelude.js`: the JavaScript side of `require`, `console`, timers and `fazt.*`.
//!
//! # Implementation
//! QuickJS is single-threaded; every thread that runs JavaScript keeps its own warm
//! instance per app (module code evaluated once per deploy); an instance is thrown away
//! after a timeout, an out-of-memory or a redeploy. Once the node attaches its executor
//! ([`JsRuntime::run_inline`]), a request runs on the executor thread that received it
//! (no hand-off between threads); a watchdog lends the executor a spare thread for any
//! run that takes longer than the inline budget and sends that app to the worker
//! threads for a while (see [`inline`]). Without an executor, or for such apps, requests
//! go to the worker threads. An app may run at most `workers - 1` requests at once, so
//! one busy or hostile app cannot starve the others. Limits per invocation: wall time
//! (interrupt handler), memory (QuickJS allocator limit), script size and require depth.

pub mod gate;
pub mod inline;
pub mod instance;
pub mod memory;
pub mod priority;
pub mod request;
pub mod worker;

pub use request::{JsRequest, JsResponse};

use crate::fs::site::Site;
use crate::storage::Storage;
use crate::time::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Which entry point an app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `api/main.js` exporting a handler (v0.10 style).
    Api,
    /// `main.js` at the root using `req`/`res` globals (v0.7 style).
    Legacy,
}

impl Entry {
    /// The entry point of a site, if it has one. A root `main.js` that a page of the
    /// site loads is a browser bundle, not a backend (see [`Site::legacy_backend`]).
    pub fn of(site: &Site) -> Option<Entry> {
        if site.files.contains_key("api/main.js") {
            Some(Entry::Api)
        } else if site.legacy_backend {
            Some(Entry::Legacy)
        } else {
            None
        }
    }
}

/// Why an invocation produced no response from the app.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// The handler threw (or its promise rejected); the stack went to the app's log.
    #[error("{0}")]
    Handler(String),
    /// The wall-time limit was reached.
    #[error("the handler did not finish within {0} ms")]
    Timeout(u64),
    /// The memory limit was reached.
    #[error("the handler reached its memory limit ({0} bytes)")]
    Memory(u64),
    /// The app's code could not be loaded (syntax error, missing module, ...).
    #[error("{0}")]
    Load(String),
    /// Too many invocations of this app are running or waiting.
    #[error("this app is busy; try again")]
    Busy,
    /// The runtime is shutting down or failed internally.
    #[error("the JavaScript runtime is unavailable: {0}")]
    Unavailable(String),
}

impl RuntimeError {
    /// Stable code for the HTTP error body.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeError::Handler(_) => "handler_error",
            RuntimeError::Timeout(_) => "timeout",
            RuntimeError::Memory(_) => "memory_limit",
            RuntimeError::Load(_) => "load_error",
            RuntimeError::Busy => "busy",
            RuntimeError::Unavailable(_) => "runtime_unavailable",
        }
    }
}

/// One request for an app's handler, as it waits in the app's gate.
pub(crate) struct Pending {
    site: Arc<Site>,
    entry: Entry,
    request: JsRequest,
    reply: async_channel::Sender<Result<JsResponse, RuntimeError>>,
}

impl gate::Queued for Pending {
    fn abandoned(&self) -> bool {
        // The invoking future (and with it the receiver) is gone: its client hung up.
        self.reply.is_closed()
    }
}

/// A job for a worker: a request and the app's place it runs in. The place travels with
/// the job and is passed on by the worker when the run is done, not when the invoking
/// future is dropped: a client that hangs up must not free its app's place while the
/// JavaScript keeps running.
pub(crate) struct Job {
    slot: gate::Slot<Pending>,
    pending: Pending,
}

/// Invocations waiting per app beyond those running, before `busy` answers.
const MAX_QUEUED_PER_APP: usize = 256;

/// The pool of JavaScript workers.
pub struct JsRuntime {
    jobs: async_channel::Sender<Job>,
    per_app: usize,
    gates: Mutex<HashMap<String, Arc<gate::AppGate<Pending>>>>,
    /// Bumped when any app's environment or limits change, so instances reload them.
    pub config_generation: Arc<std::sync::atomic::AtomicU64>,
    /// What inline runs share with the workers.
    context: worker::WorkerContext,
    /// Set once the node attaches its executor.
    inline: OnceLock<inline::Inline>,
    /// The worker threads, joined by [`JsRuntime::shutdown`].
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for JsRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsRuntime").field("per_app", &self.per_app).finish_non_exhaustive()
    }
}

impl JsRuntime {
    /// Starts `workers` threads (at least 2, so one app can never take them all).
    pub fn start(
        workers: usize,
        storage: Arc<Storage>,
        clock: Arc<Clock>,
        timekeeper: Option<Arc<crate::time::Timekeeper>>,
        sealer: Arc<dyn fazt_hal::keystore::Sealer>,
        events: Option<Arc<crate::events::Events>>,
        egress: Option<Arc<crate::egress::Egress>>,
    ) -> std::io::Result<Self> {
        let workers = workers.max(2);
        let (tx, rx) = async_channel::unbounded::<Job>();
        let config_generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let context = worker::WorkerContext {
            storage,
            clock,
            timekeeper,
            config_generation: config_generation.clone(),
            sealer,
            events,
            egress,
        };
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            let ctx = context.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("fazt-js-{i}"))
                .stack_size(inline::THREAD_STACK_BYTES)
                .spawn(move || worker::run(rx, ctx));
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(err) => {
                    // The ones already started end when the channel closes.
                    tx.close();
                    return Err(err);
                }
            }
        }
        Ok(JsRuntime {
            jobs: tx,
            per_app: workers - 1,
            gates: Mutex::new(HashMap::new()),
            config_generation,
            context,
            inline: OnceLock::new(),
            threads: Mutex::new(threads),
        })
    }

    /// Stops the runtime (a node shutting down): queued jobs are still run, then the
    /// worker threads end and are waited for, and so does the inline watchdog. Calls
    /// made after it answer "unavailable".
    pub fn shutdown(&self) {
        self.jobs.close();
        if let Some(inline) = self.inline.get() {
            inline.stop();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// From now on, runs handlers on the threads of `executor` that receive their
    /// requests, lending it a spare thread whenever one runs past `budget` (see
    /// [`inline`]). The threads running `executor` need [`inline::THREAD_STACK_BYTES`] of
    /// stack. Only the first call counts.
    pub fn run_inline(
        &self,
        executor: Arc<smol::Executor<'static>>,
        budget: Duration,
    ) -> std::io::Result<()> {
        if self.inline.get().is_none() {
            let _ = self.inline.set(inline::Inline::start(executor, budget)?);
        }
        Ok(())
    }

    /// Runs the app's handler for one request.
    pub async fn invoke(
        &self,
        site: Arc<Site>,
        entry: Entry,
        request: JsRequest,
    ) -> Result<JsResponse, RuntimeError> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            gates
                .entry(site.app_id.clone())
                .or_insert_with(|| {
                    // A queued job that finds no thread to take it (its place was freed by
                    // an inline run) goes to the workers.
                    let jobs = self.jobs.clone();
                    let dispatch: gate::Dispatch<Pending> = Box::new(move |slot, pending| {
                        // Fails only when the workers have stopped; dropping the job then
                        // answers its client "unavailable".
                        let _ = jobs.try_send(Job { slot, pending });
                    });
                    Arc::new(gate::AppGate::new(self.per_app, MAX_QUEUED_PER_APP, dispatch))
                })
                .clone()
        };
        let (reply, answer) = async_channel::bounded(1);
        let pending = Pending { site, entry, request, reply };
        match gate.admit(pending) {
            gate::Admission::Full => return Err(RuntimeError::Busy),
            // A worker finishing a run of this app takes it (see [`gate`]).
            gate::Admission::Queued => {}
            gate::Admission::Run(slot, pending) => {
                if let Some(run) = self.inline.get().and_then(|inline| inline.begin(&pending.site.app_id)) {
                    let result =
                        inline::run_here(&run, &self.context, &pending.site, pending.entry, &pending.request);
                    drop(run);
                    // Passes the place to the app's next queued job, on a worker.
                    drop(slot);
                    return result;
                }
                self.jobs
                    .send(Job { slot, pending })
                    .await
                    .map_err(|_| RuntimeError::Unavailable("workers stopped".into()))?;
            }
        }
        answer.recv().await.map_err(|_| RuntimeError::Unavailable("a worker stopped".into()))?
    }
}
