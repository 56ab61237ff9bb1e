//! JavaScript worker threads: each takes jobs from the shared queue and keeps warm
//! instances of the apps it has run.

use super::instance::{Host, Instance};
use super::{Job, RuntimeError};
use crate::syscall::{env, limits};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Warm instances kept per worker; the least recently used goes first.
const MAX_INSTANCES: usize = 16;

/// What a worker shares with the kernel.
#[derive(Debug)]
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
}

/// The worker loop; returns when the queue closes.
pub(crate) fn run(jobs: async_channel::Receiver<Job>, ctx: WorkerContext) {
    let host =
        Host { storage: ctx.storage.clone(), clock: ctx.clock.clone(), timekeeper: ctx.timekeeper.clone() };
    let mut instances: HashMap<String, (Instance, u64)> = HashMap::new();
    let mut tick = 0u64;
    while let Ok(job) = jobs.recv_blocking() {
        tick += 1;
        // A panic in one job must not take the worker (and every later request) down.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(&host, &ctx, &mut instances, &job, tick)
        }));
        let result = outcome.unwrap_or_else(|_| {
            instances.clear();
            Err(RuntimeError::Unavailable("internal error in the JavaScript worker".into()))
        });
        let _ = job.reply.send_blocking(result);
    }
}

fn handle(
    host: &Host,
    ctx: &WorkerContext,
    instances: &mut HashMap<String, (Instance, u64)>,
    job: &Job,
    tick: u64,
) -> Result<super::JsResponse, RuntimeError> {
    let app_id = &job.site.app_id;
    let generation = ctx.config_generation.load(Ordering::Acquire);
    let fresh = instances.get(app_id).is_some_and(|(i, _)| {
        i.deployment_id == job.site.deployment_id && i.generation == generation && i.entry == job.entry
    });
    if !fresh {
        instances.remove(app_id);
        let (vars, limits) = host
            .storage
            .read_blocking(|c| {
                Ok::<_, crate::syscall::SyscallError>((
                    env::list(c, ctx.sealer.as_ref(), app_id)?,
                    limits::get(c, app_id)?,
                ))
            })
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let built = Instance::new(host, job.site.clone(), job.entry, vars, limits, generation);
        let instance = match built {
            Ok(instance) => instance,
            Err(err) => {
                // Script errors are already in the app's log, with their stack; other
                // failures (limits, a missing or unreadable entry file) are logged here.
                if !matches!(err, RuntimeError::Load(_)) || !job.site.files.contains_key("api/main.js") {
                    let line =
                        vec![(host.clock.now_millis(), "error", format!("loading the app failed: {err}"))];
                    let _ = host.storage.write_blocking(|c| crate::syscall::logs::append(c, app_id, &line));
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
    let result = instance.invoke(&job.request);
    instance.flush_logs(host);
    if instance.poisoned {
        instances.remove(app_id);
    }
    result
}
