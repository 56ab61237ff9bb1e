//! JavaScript worker threads: each takes jobs from the shared queue and keeps warm
//! instances of the apps it has run ([`Warm`], also used by inline runs on the executor).

use super::instance::{Host, Instance};
use super::request::{JsRequest, JsResponse};
use super::{Entry, Job, RuntimeError};
use crate::fs::site::Site;
use crate::syscall::{env, limits, Caller};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many nice levels below the HTTP threads the workers run.
const WORKER_NICE_STEP: i32 = 5;

/// Warm instances kept per worker; the least recently used goes first.
const MAX_INSTANCES: usize = 16;

/// What a worker shares with the kernel.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    /// The database.
    pub storage: Arc<crate::storage::Storage>,
    /// The kernel clock.
    pub clock: Arc<crate::time::Clock>,
    /// Its keeper, for `fazt.time.status()` (none in tests of the runtime alone).
    pub timekeeper: Option<Arc<crate::time::Timekeeper>>,
    /// Bumped when env or limits change.
    pub config_generation: Arc<AtomicU64>,
    /// Opens the apps' sealed environment values.
    pub sealer: Arc<dyn fazt_hal::keystore::Sealer>,
    /// The event bus, for `fazt.events` (none in tests of the runtime alone).
    pub events: Option<Arc<crate::events::Events>>,
    /// Outbound HTTP, for `fazt.net.fetch` (none in tests of the runtime alone).
    pub egress: Option<Arc<crate::egress::Egress>>,
}

/// The worker loop; returns when the queue closes. After each run the worker goes on
/// with the same app's next queued request, if any, while it holds the app's place.
pub(crate) fn run(jobs: async_channel::Receiver<Job>, ctx: WorkerContext) {
    // Handlers yield the CPU to the HTTP threads (see runtime::priority).
    if let Err(err) = super::priority::lower_current_thread(WORKER_NICE_STEP) {
        tracing::debug!(error = %err, "could not lower a JavaScript worker's priority");
    }
    let mut warm = Warm::new(&ctx);
    while let Ok(Job { mut slot, mut pending }) = jobs.recv_blocking() {
        loop {
            // A request whose client hung up while it waited is not run.
            if !pending.reply.is_closed() {
                let result = warm.invoke(&ctx, &pending.site, pending.entry, &pending.request, &|| {});
                // The reply channel has room for exactly this one answer.
                let _ = pending.reply.try_send(result);
            }
            match slot.next_job() {
                Some(next) => pending = next,
                None => break,
            }
        }
    }
}

/// One thread's warm instances, keyed by app id.
pub(crate) struct Warm {
    host: Host,
    instances: HashMap<String, (Instance, u64)>,
    tick: u64,
}

impl Warm {
    /// An empty cache for the current thread.
    pub(crate) fn new(ctx: &WorkerContext) -> Self {
        let host = Host {
            storage: ctx.storage.clone(),
            clock: ctx.clock.clone(),
            timekeeper: ctx.timekeeper.clone(),
            events: ctx.events.clone(),
            egress: ctx.egress.clone(),
        };
        Warm { host, instances: HashMap::new(), tick: 0 }
    }

    /// Runs one request on this thread, building or rebuilding the app's instance first
    /// when needed; `ready` is called when the instance is there and the handler starts.
    pub(crate) fn invoke(
        &mut self,
        ctx: &WorkerContext,
        site: &Arc<Site>,
        entry: Entry,
        request: &JsRequest,
        ready: &dyn Fn(),
    ) -> Result<JsResponse, RuntimeError> {
        self.tick += 1;
        // A panic in one job must not take the thread (and every later request) down.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(self, ctx, site, entry, request, ready)
        }));
        outcome.unwrap_or_else(|_| {
            self.instances.clear();
            Err(RuntimeError::Unavailable("internal error in the JavaScript worker".into()))
        })
    }
}

/// Runs one request with `warm`'s instances (see [`Warm::invoke`]).
fn handle(
    warm: &mut Warm,
    ctx: &WorkerContext,
    site: &Arc<Site>,
    entry: Entry,
    request: &JsRequest,
    ready: &dyn Fn(),
) -> Result<JsResponse, RuntimeError> {
    let (host, instances, tick) = (&warm.host, &mut warm.instances, warm.tick);
    let app_id = &site.app_id;
    let generation = ctx.config_generation.load(Ordering::Acquire);
    let fresh = instances.get(app_id).is_some_and(|(i, _)| {
        i.deployment_id == site.deployment_id && i.generation == generation && i.entry == entry
    });
    if !fresh {
        instances.remove(app_id);
        let (vars, limits) = host
            .storage
            .read_blocking(|c| {
                Ok::<_, crate::syscall::SyscallError>((
                    env::list(c, ctx.sealer.as_ref(), &Caller::Kernel, app_id)?,
                    limits::get(c, &Caller::Kernel, app_id)?,
                ))
            })
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let built = Instance::new(host, site.clone(), entry, vars, limits, generation);
        let instance = match built {
            Ok(instance) => instance,
            Err(err) => {
                // Script errors are already in the app's log, with their stack; other
                // failures (limits, a missing or unreadable entry file) are logged here.
                if !matches!(err, RuntimeError::Load(_)) || !site.files.contains_key("api/main.js") {
                    let line =
                        vec![(host.clock.now_millis(), "error", format!("loading the app failed: {err}"))];
                    let _ = host
                        .storage
                        .write_blocking(|c| crate::syscall::logs::append(c, &Caller::Kernel, app_id, &line));
                }
                return Err(err);
            }
        };
        if instances.len() >= MAX_INSTANCES {
            if let Some(oldest) = instances.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
            {
                instances.remove(&oldest);
            }
        }
        instances.insert(app_id.clone(), (instance, tick));
    }
    let Some((instance, used)) = instances.get_mut(app_id) else {
        return Err(RuntimeError::Unavailable("instance vanished".into()));
    };
    *used = tick;
    ready();
    let result = instance.invoke(request);
    instance.flush_logs(host);
    if instance.poisoned {
        instances.remove(app_id);
    }
    result
}
