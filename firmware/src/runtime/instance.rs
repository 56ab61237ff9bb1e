//! One app's JavaScript world on one worker: a QuickJS runtime with its memory limit and
//! interrupt handler, a context holding the prelude, the app's modules and `fazt.*`.

use super::request::{JsRequest, JsResponse};
use super::{Entry, RuntimeError};
use crate::fs::site::{read_blob, Encoding, Site};
use crate::storage::Storage;
use crate::syscall::limits::{Limits, MAX_REQUIRE_DEPTH, MAX_SCRIPT_BYTES};
use crate::syscall::{kv, logs, Caller, SyscallError};
use crate::time::{Clock, UnixMillis};
use rquickjs::context::EvalOptions;
use rquickjs::object::Property;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Exception, Function, Object, Persistent, Promise, Runtime, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PRELUDE: &str = include_str!("prelude.js");

/// Log lines kept per invocation; more are counted and summarised in one line.
const MAX_LOG_LINES: usize = 1000;
/// Bytes of log text kept per invocation (lines are clipped to
/// [`logs::MAX_MESSAGE_BYTES`] as they arrive): this buffer lives in Rust memory, outside
/// the app's JavaScript heap and its limit, so it is bounded on its own.
const MAX_LOG_BYTES: usize = 256 * 1024;

/// QuickJS's own stack budget; deep recursion becomes a RangeError well before the
/// worker thread's stack (4 MB) is at risk.
const JS_STACK_BYTES: usize = 1 << 20;

/// Log lines gathered during one invocation, written to `data.db` once at its end.
#[derive(Debug, Default)]
struct LogBuffer {
    lines: Vec<(UnixMillis, &'static str, String)>,
    /// Bytes of text in `lines`.
    bytes: usize,
    dropped: usize,
}

/// What an instance needs from the kernel.
#[derive(Debug, Clone)]
pub struct Host {
    /// The database.
    pub storage: Arc<Storage>,
    /// The kernel clock.
    pub clock: Arc<Clock>,
    /// Its keeper, for `fazt.time.status()`.
    pub timekeeper: Option<Arc<crate::time::Timekeeper>>,
    /// The event bus, for `fazt.events`.
    pub events: Option<Arc<crate::events::Events>>,
    /// Outbound HTTP, for `fazt.net.fetch`.
    pub egress: Option<Arc<crate::egress::Egress>>,
}

/// How long the kernel's own bookkeeping calls into JavaScript (clearing timers after a
/// request) may take; they run under a deadline like app code, so that nothing the app
/// did to the shared globals can hold the worker.
const HOUSEKEEPING_BUDGET: Duration = Duration::from_millis(100);

/// A loaded app.
pub struct Instance {
    // Field order matters: the hooks and the context must be dropped before the runtime.
    /// The prelude's entry points (`loadMain`, `invoke`, `invokeLegacy`, `nextTimer`,
    /// `fireTimers`, `resetTimers`), held here and never reachable from app code.
    hooks: Persistent<Object<'static>>,
    ctx: Context,
    /// Owned for the context's sake only: the context must drop first (field order).
    _rt: Runtime,
    /// The deployment whose code is loaded.
    pub deployment_id: String,
    /// The configuration generation it was built with.
    pub generation: u64,
    /// Its entry point.
    pub entry: Entry,
    app_id: String,
    limits: Limits,
    deadline: Arc<AtomicU64>,
    interrupted: Arc<AtomicBool>,
    epoch: Instant,
    logs: Rc<RefCell<LogBuffer>>,
    legacy_source: Option<String>,
    meter: super::memory::MemoryMeter,
    /// Set after a timeout or out-of-memory: the instance must not be reused.
    pub poisoned: bool,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

fn js_err(ctx: &Ctx<'_>, err: SyscallError) -> rquickjs::Error {
    Exception::throw_message(ctx, &err.to_string())
}

/// Reads one file of the site as UTF-8 source, within the script size limit.
fn read_source(storage: &Storage, site: &Site, path: &str) -> Result<String, String> {
    let file = site.files.get(path).ok_or_else(|| format!("cannot find module '{path}'"))?;
    if file.size as usize > MAX_SCRIPT_BYTES {
        return Err(format!(
            "'{path}' is {} bytes, over the {MAX_SCRIPT_BYTES} byte script limit",
            file.size
        ));
    }
    let data = storage
        .read_blocking(|conn| read_blob(conn, &file.hash, Encoding::Identity))
        .map_err(|e| format!("cannot read '{path}': {e}"))?
        .ok_or_else(|| format!("'{path}' has no content"))?;
    String::from_utf8(data).map_err(|_| format!("'{path}' is not UTF-8 text"))
}

/// `__native.compile(name, source)`: evaluates a function expression with a file name,
/// so stacks point at the app's own files.
fn compile<'js>(ctx: Ctx<'js>, name: String, source: String) -> rquickjs::Result<Function<'js>> {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some(name);
    ctx.eval_with_options(source, options)
}

/// Reads the prelude's normalised response (`{ status, headers, body }`, all checked
/// and turned into strings by `normalizeResponse`) straight from the JavaScript object.
fn read_response(value: Value<'_>) -> Option<JsResponse> {
    let object = value.into_object()?;
    let status: f64 = object.get("status").ok()?;
    let status = (100.0..=599.0).contains(&status).then_some(status as u16)?;
    let headers: Object = object.get("headers").ok()?;
    let headers = headers.props::<String, String>().collect::<rquickjs::Result<BTreeMap<_, _>>>().ok()?;
    let body: String = object.get("body").ok()?;
    Some(JsResponse { status, headers, body })
}

/// What an instance's native functions share with the instance itself.
struct Shared<'a> {
    /// Zero of `monotonicMs` and of the deadline.
    epoch: Instant,
    /// This invocation's log lines.
    logs: &'a Rc<RefCell<LogBuffer>>,
    /// The app's limits (storage quota, the `kv.list` cap).
    limits: Limits,
    /// The current run's deadline; a new value marks a new invocation.
    deadline: &'a Arc<AtomicU64>,
}

/// Gives the context its `__native` functions and runs the prelude; returns the prelude's
/// kernel hooks.
fn install(
    context: &Context,
    host: &Host,
    site: &Arc<Site>,
    env: BTreeMap<String, String>,
    shared: Shared<'_>,
) -> rquickjs::Result<Persistent<Object<'static>>> {
    let Shared { epoch, logs, limits, deadline } = shared;
    context.with(|ctx| {
        let native = Object::new(ctx.clone())?;
        native.set("maxRequireDepth", MAX_REQUIRE_DEPTH)?;
        native.set("maxLogBytes", logs::MAX_MESSAGE_BYTES)?;
        let info = serde_json::json!({"id": site.app_id, "name": site.app_name, "env": env}).to_string();
        native.set("appInfo", Function::new(ctx.clone(), move || info.clone())?)?;
        native.set(
            "monotonicMs",
            Function::new(ctx.clone(), move || epoch.elapsed().as_secs_f64() * 1000.0)?,
        )?;

        let clock = host.clock.clone();
        native.set("timeNow", Function::new(ctx.clone(), move || clock.now_millis() as f64)?)?;
        let (timekeeper, clock) = (host.timekeeper.clone(), host.clock.clone());
        let caller = Caller::app(site.app_id.clone());
        native.set(
            "timeStatus",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>| -> rquickjs::Result<String> {
                crate::syscall::time::status(timekeeper.as_deref(), &clock, &caller)
                    .map(|status| status.to_string())
                    .map_err(|e| js_err(&ctx, e))
            })?,
        )?;

        let logs = logs.clone();
        let clock = host.clock.clone();
        native.set(
            "log",
            Function::new(ctx.clone(), move |level: String, message: String, length: Option<f64>| {
                let mut buffer = logs.borrow_mut();
                // `length`: the line's length before the prelude cut it, for the marker.
                let message = logs::clip_of(&message, length.map_or(0, |n| n as usize));
                if buffer.lines.len() >= MAX_LOG_LINES || buffer.bytes + message.len() > MAX_LOG_BYTES {
                    buffer.dropped += 1;
                    return;
                }
                buffer.bytes += message.len();
                let level = match level.as_str() {
                    "debug" => "debug",
                    "warn" => "warn",
                    "error" => "error",
                    _ => "info",
                };
                buffer.lines.push((clock.now_millis(), level, message));
            })?,
        )?;

        let (storage, source_site) = (host.storage.clone(), site.clone());
        native.set(
            "readModule",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>, path: String| -> rquickjs::Result<String> {
                // The prelude already confines paths to api/; checked again here
                // because this is the boundary that matters.
                let normal =
                    crate::fs::path::normalize_site_path(&path).ok().filter(|p| p.starts_with("api/"));
                let Some(path) = normal else {
                    return Err(Exception::throw_message(
                        &ctx,
                        &format!("require('{path}'): outside the api/ folder"),
                    ));
                };
                read_source(&storage, &source_site, &path).map_err(|e| Exception::throw_message(&ctx, &e))
            })?,
        )?;
        native.set("compile", Function::new(ctx.clone(), compile)?)?;

        // Every kv call runs as this app: the syscall refuses any other app's data.
        let (app_id, caller) = (site.app_id.clone(), Caller::app(site.app_id.clone()));
        let (storage, clock) = (host.storage.clone(), host.clock.clone());
        native.set(
            "kvGet",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'_>, key: String| -> rquickjs::Result<Option<String>> {
                    let now = clock.now_millis();
                    storage
                        .read_blocking(|c| kv::get(c, &caller, &app_id, &key, now))
                        .map_err(|e| js_err(&ctx, e))
                },
            )?,
        )?;
        // Every kv call runs as this app: the syscall refuses any other app's data.
        let (app_id, caller) = (site.app_id.clone(), Caller::app(site.app_id.clone()));
        let (storage, clock) = (host.storage.clone(), host.clock.clone());
        native.set(
            "kvSet",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'_>, key: String, json: String, ttl: f64| -> rquickjs::Result<()> {
                    let now = clock.now_millis();
                    let ttl = (ttl >= 0.0).then_some(ttl as i64);
                    storage
                        .write_blocking(|c| {
                            kv::set(c, &caller, &app_id, &key, &json, ttl, now, limits.storage_bytes)
                        })
                        .map_err(|e| js_err(&ctx, e))
                },
            )?,
        )?;
        // Every kv call runs as this app: the syscall refuses any other app's data.
        let (app_id, caller) = (site.app_id.clone(), Caller::app(site.app_id.clone()));
        let (storage, clock) = (host.storage.clone(), host.clock.clone());
        native.set(
            "kvDelete",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>, key: String| -> rquickjs::Result<bool> {
                let now = clock.now_millis();
                storage
                    .write_blocking(|c| kv::delete(c, &caller, &app_id, &key, now))
                    .map_err(|e| js_err(&ctx, e))
            })?,
        )?;
        // Every kv call runs as this app: the syscall refuses any other app's data.
        let (app_id, caller) = (site.app_id.clone(), Caller::app(site.app_id.clone()));
        let (storage, clock) = (host.storage.clone(), host.clock.clone());
        native.set(
            "kvList",
            Function::new(ctx.clone(), move |ctx: Ctx<'_>, prefix: String| -> rquickjs::Result<String> {
                let now = clock.now_millis();
                // Built in Rust memory, outside the heap's limit: capped at half of it,
                // since the text and what it parses into must fit in the heap anyway.
                let max_bytes = (limits.memory_bytes / 2) as usize;
                let entries = storage
                    .read_blocking(|c| kv::list(c, &caller, &app_id, &prefix, now, max_bytes))
                    .map_err(|e| js_err(&ctx, e))?;
                let mut json = String::with_capacity(
                    entries.iter().map(|(k, v)| k.len() + v.len() + 24).sum::<usize>() + 2,
                );
                json.push('[');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    json.push_str("{\"key\":");
                    json.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    json.push_str(",\"value\":");
                    // Stored values are JSON text already (checked when written).
                    json.push_str(value);
                    json.push('}');
                }
                json.push(']');
                Ok(json)
            })?,
        )?;
        install_events(&native, host, site, deadline)?;
        install_net(&native, host, site, epoch, deadline)?;
        ctx.globals().set("__native", native)?;
        let mut options = EvalOptions::default();
        options.global = true;
        options.filename = Some("fazt:prelude".into());
        let hooks: Object = ctx.eval_with_options(PRELUDE, options)?;
        Ok(Persistent::save(&ctx, hooks))
    })
}

/// `fazt.events`: emit as this app (types under `app.`, at most
/// [`crate::syscall::events::MAX_EMITS_PER_INVOCATION`] per invocation) and read what it
/// may see.
fn install_events<'js>(
    native: &Object<'js>,
    host: &Host,
    site: &Site,
    deadline: &Arc<AtomicU64>,
) -> rquickjs::Result<()> {
    use crate::events::{EventError, Visibility};
    use crate::syscall::events;
    let ctx = native.ctx().clone();
    let unavailable = |ctx: &Ctx<'_>| Exception::throw_message(ctx, "fazt.events is not available here");
    let (bus, app_id, app_name) = (host.events.clone(), site.app_id.clone(), site.app_name.clone());
    let caller = Caller::app(site.app_id.clone());
    // Each run arms a new deadline, so a changed deadline means a new invocation and a
    // fresh quota; no hook into the invocation itself is needed.
    let (deadline, quota) = (deadline.clone(), RefCell::new((u64::MAX, events::Quota::default())));
    native.set(
        "eventsEmit",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, kind: String, json: String, public: bool| -> rquickjs::Result<String> {
                let bus = bus.as_ref().ok_or_else(|| unavailable(&ctx))?;
                let throw = |e: EventError| Exception::throw_message(&ctx, &e.to_string());
                // Refused before parsing: an app can hand over megabytes of JSON.
                if json.len() > crate::events::event::MAX_DATA_BYTES {
                    return Err(throw(EventError::TooLarge(json.len())));
                }
                let data: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|_| Exception::throw_message(&ctx, "fazt.events.emit: data must be JSON"))?;
                {
                    let mut quota = quota.borrow_mut();
                    let run = deadline.load(Ordering::Relaxed);
                    if quota.0 != run {
                        *quota = (run, events::Quota::default());
                    }
                    quota.1.take().map_err(throw)?;
                }
                let visibility = if public { Visibility::Public } else { Visibility::Private };
                let event = events::emit(bus, &caller, Some((&app_id, &app_name)), &kind, data, visibility)
                    .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
                Ok(serde_json::to_string(&*event).unwrap_or_default())
            },
        )?,
    )?;
    let (bus, caller) = (host.events.clone(), Caller::app(site.app_id.clone()));
    native.set(
        "eventsSince",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'_>, since: f64, kind: String, limit: f64| -> rquickjs::Result<String> {
                let bus = bus.as_ref().ok_or_else(|| unavailable(&ctx))?;
                let since = if since.is_finite() && since > 0.0 { since as u64 } else { 0 };
                let limit = if limit.is_finite() && limit >= 1.0 { limit as usize } else { 100 };
                let found = events::since(bus, &caller, since, Some(&kind), limit)
                    .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
                let found: Vec<&crate::events::Event> = found.iter().map(|e| &**e).collect();
                Ok(serde_json::to_string(&found).unwrap_or_default())
            },
        )?,
    )?;
    Ok(())
}

/// Largest JSON list of request headers `netFetch` takes from the prelude.
const MAX_FETCH_HEADER_JSON: usize = 256 * 1024;

/// `fazt.net.fetch`: one outbound request as this app, through the kernel's egress
/// service, within the handler's time left. Answers `{"ok": response}` or
/// `{"error": {"code", "message"}}`; the prelude throws the latter with its code.
fn install_net<'js>(
    native: &Object<'js>,
    host: &Host,
    site: &Site,
    epoch: Instant,
    deadline: &Arc<AtomicU64>,
) -> rquickjs::Result<()> {
    let ctx = native.ctx().clone();
    let (egress, app_id, caller) =
        (host.egress.clone(), site.app_id.clone(), Caller::app(site.app_id.clone()));
    let deadline = deadline.clone();
    native.set(
        "netFetch",
        Function::new(
            ctx.clone(),
            move |url: String, method: String, headers: String, body: String| -> String {
                let error = |code: &str, message: String| {
                    serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
                };
                let Some(egress) = egress.as_ref() else {
                    return error("unavailable", "fazt.net.fetch is not available here".into());
                };
                if headers.len() > MAX_FETCH_HEADER_JSON {
                    return error("invalid", "net.fetch: the headers are too large".into());
                }
                let Ok(headers) = serde_json::from_str::<Vec<(String, String)>>(&headers) else {
                    return error("invalid", "net.fetch: headers must be an object of strings".into());
                };
                // What is left of this invocation's time (the deadline counts µs since `epoch`).
                let budget = match deadline.load(Ordering::Relaxed) {
                    u64::MAX => None,
                    end => {
                        Some(Duration::from_micros(end.saturating_sub(epoch.elapsed().as_micros() as u64)))
                    }
                };
                let request = crate::egress::Request { method, url, headers, body };
                match crate::syscall::egress::fetch(egress, &caller, &app_id, request, budget) {
                    Ok(response) => serde_json::json!({ "ok": response }).to_string(),
                    Err(err) => error(err.code(), err.to_string()),
                }
            },
        )?,
    )?;
    Ok(())
}

impl Instance {
    /// Builds an instance: runtime, limits, `fazt.*`, and (for `api/main.js` apps) the
    /// app's modules evaluated up to their top-level awaits.
    pub fn new(
        host: &Host,
        site: Arc<Site>,
        entry: Entry,
        env: BTreeMap<String, String>,
        limits: Limits,
        generation: u64,
    ) -> Result<Self, RuntimeError> {
        let unavailable = |e: rquickjs::Error| RuntimeError::Unavailable(e.to_string());
        let meter = super::memory::MemoryMeter::default();
        let allocator = super::memory::LimitedAllocator::new(limits.memory_bytes as usize, meter.clone());
        let rt = Runtime::new_with_alloc(allocator).map_err(unavailable)?;
        rt.set_max_stack_size(JS_STACK_BYTES);
        let epoch = Instant::now();
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let interrupted = Arc::new(AtomicBool::new(false));
        {
            let (deadline, interrupted) = (deadline.clone(), interrupted.clone());
            // Called by QuickJS every few thousand instructions: an infinite loop ends here.
            rt.set_interrupt_handler(Some(Box::new(move || {
                let now = epoch.elapsed().as_micros() as u64;
                let stop = now > deadline.load(Ordering::Relaxed);
                if stop {
                    interrupted.store(true, Ordering::Relaxed);
                }
                stop
            })));
        }
        let ctx = Context::full(&rt).map_err(unavailable)?;
        let logs = Rc::new(RefCell::new(LogBuffer::default()));
        let legacy_source = match entry {
            Entry::Legacy => Some(read_source(&host.storage, &site, "main.js").map_err(RuntimeError::Load)?),
            Entry::Api => None,
        };
        let hooks =
            install(&ctx, host, &site, env, Shared { epoch, logs: &logs, limits, deadline: &deadline })
                .map_err(unavailable)?;
        let instance = Instance {
            hooks,
            ctx,
            _rt: rt,
            deployment_id: site.deployment_id.clone(),
            generation,
            entry,
            app_id: site.app_id.clone(),
            limits,
            deadline,
            interrupted,
            epoch,
            logs,
            legacy_source,
            meter,
            poisoned: false,
        };
        if entry == Entry::Api {
            instance.arm();
            let loaded = instance.ctx.with(|ctx| -> Result<(), RuntimeError> {
                let load = instance.hook(&ctx, "loadMain").map_err(unavailable)?;
                let promise = match load.call::<_, Promise>(()) {
                    Ok(p) => p,
                    Err(_) => return Err(instance.failure(&ctx, ctx.catch(), true)),
                };
                instance.settle(&ctx, promise, true).map(|_| ())
            });
            instance.disarm();
            if let Err(err) = instance.classify_memory(loaded) {
                // Keep the stack and whatever the app logged while loading.
                instance.flush_logs(host);
                return Err(err);
            }
        }
        Ok(instance)
    }

    /// One of the prelude's kernel hooks.
    fn hook<'js>(&self, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Function<'js>> {
        self.hooks.clone().restore(ctx)?.get(name)
    }

    fn arm(&self) {
        self.arm_for(self.limits.timeout);
    }

    /// Starts a deadline `budget` from now (and a fresh memory record).
    fn arm_for(&self, budget: Duration) {
        self.meter.reset();
        let deadline = self.epoch.elapsed() + budget;
        self.interrupted.store(false, Ordering::Relaxed);
        self.deadline.store(deadline.as_micros() as u64, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.deadline.store(u64::MAX, Ordering::Relaxed);
    }

    fn deadline(&self) -> Instant {
        self.epoch + Duration::from_micros(self.deadline.load(Ordering::Relaxed))
    }

    fn timeout_ms(&self) -> u64 {
        self.limits.timeout.as_millis() as u64
    }

    /// Turns a thrown value into the right error, logging the stack for the app.
    fn failure<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>, loading: bool) -> RuntimeError {
        if self.interrupted.load(Ordering::Relaxed) {
            return RuntimeError::Timeout(self.timeout_ms());
        }
        let (message, stack) = match thrown.as_exception() {
            Some(exc) => {
                let name: String = exc.get("name").unwrap_or_else(|_| "Error".into());
                (format!("{name}: {}", exc.message().unwrap_or_default()), exc.stack().unwrap_or_default())
            }
            None => {
                let text = ctx
                    .json_stringify(thrown.clone())
                    .ok()
                    .flatten()
                    .and_then(|s| s.to_string().ok())
                    .unwrap_or_else(|| format!("{:?}", thrown.type_of()));
                (text, String::new())
            }
        };
        if message.contains("out of memory") {
            return RuntimeError::Memory(self.limits.memory_bytes);
        }
        let what = if loading { "loading the app failed" } else { "the handler threw" };
        self.log_line("error", format!("{what}: {message}\n{stack}").trim_end().to_string());
        if loading {
            RuntimeError::Load(message)
        } else {
            RuntimeError::Handler(message)
        }
    }

    /// When QuickJS runs out of memory it may not manage to build a proper error object
    /// (it throws `null`); the allocator's own record says whether the limit was hit.
    fn classify_memory<T>(&self, result: Result<T, RuntimeError>) -> Result<T, RuntimeError> {
        match result {
            Err(RuntimeError::Handler(_) | RuntimeError::Load(_)) if self.meter.exhausted() => {
                Err(RuntimeError::Memory(self.limits.memory_bytes))
            }
            other => other,
        }
    }

    fn log_line(&self, level: &'static str, message: String) {
        let mut buffer = self.logs.borrow_mut();
        // The kernel clock is read when the buffer is flushed for these internal lines.
        buffer.lines.push((0, level, message));
    }

    /// Runs jobs and timers until `promise` settles or the deadline passes.
    fn settle<'js>(
        &self,
        ctx: &Ctx<'js>,
        promise: Promise<'js>,
        loading: bool,
    ) -> Result<Value<'js>, RuntimeError> {
        loop {
            while ctx.execute_pending_job() {}
            if self.interrupted.load(Ordering::Relaxed) {
                return Err(RuntimeError::Timeout(self.timeout_ms()));
            }
            match promise.state() {
                PromiseState::Resolved => {
                    return promise
                        .result::<Value>()
                        .unwrap_or(Ok(Value::new_undefined(ctx.clone())))
                        .map_err(|_| {
                            let thrown = ctx.catch();
                            self.failure(ctx, thrown, loading)
                        })
                }
                PromiseState::Rejected => {
                    let thrown = match promise.result::<Value>() {
                        Some(Err(_)) => ctx.catch(),
                        Some(Ok(v)) => v,
                        None => Value::new_undefined(ctx.clone()),
                    };
                    return Err(self.failure(ctx, thrown, loading));
                }
                PromiseState::Pending => {}
            }
            // The timer hooks are looked up only here: most handlers settle without
            // waiting, and the hot path should not pay for them.
            let next: f64 = self
                .hook(ctx, "nextTimer")
                .and_then(|f| f.call(()))
                .map_err(|_| self.failure(ctx, ctx.catch(), loading))?;
            if next < 0.0 {
                let message = "the handler's promise never settled (nothing left to wait for)".to_string();
                self.log_line("error", message.clone());
                return Err(RuntimeError::Handler(message));
            }
            let wake = Instant::now() + Duration::from_micros((next * 1000.0) as u64);
            let deadline = self.deadline();
            if wake >= deadline {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return Err(RuntimeError::Timeout(self.timeout_ms()));
            }
            std::thread::sleep(wake.saturating_duration_since(Instant::now()));
            let fire_timers =
                self.hook(ctx, "fireTimers").map_err(|_| self.failure(ctx, ctx.catch(), loading))?;
            if fire_timers.call::<_, ()>(()).is_err() {
                // A throwing timer callback is the app's bug, not the request's end:
                // log it, as Node would print it, and keep waiting.
                let thrown = ctx.catch();
                if self.interrupted.load(Ordering::Relaxed) {
                    return Err(RuntimeError::Timeout(self.timeout_ms()));
                }
                let err = self.failure(ctx, thrown, loading);
                if matches!(err, RuntimeError::Memory(_)) {
                    return Err(err);
                }
            }
        }
    }

    /// Calls the handler for one request.
    pub fn invoke(&mut self, request: &JsRequest) -> Result<JsResponse, RuntimeError> {
        self.arm();
        let result = self.ctx.with(|ctx| -> Result<JsResponse, RuntimeError> {
            let called = request_object(&ctx, request).and_then(|object| match &self.legacy_source {
                None => self.hook(&ctx, "invoke")?.call::<_, Promise>((object, request.json_body)),
                Some(source) => self.hook(&ctx, "invokeLegacy")?.call::<_, Promise>((
                    object,
                    request.json_body,
                    source.clone(),
                )),
            });
            let promise = called.map_err(|_| self.failure(&ctx, ctx.catch(), false))?;
            let value = self.settle(&ctx, promise, false)?;
            read_response(value)
                .ok_or_else(|| RuntimeError::Handler("the handler's response could not be read".into()))
        });
        let result = self.classify_memory(result);
        self.disarm();
        // Timers left by this request must not fire inside the next one. Under its own
        // short deadline: an instance that cannot even do this is not reused.
        self.arm_for(HOUSEKEEPING_BUDGET);
        let reset = self.ctx.with(|ctx| self.hook(&ctx, "resetTimers")?.call::<_, ()>(()));
        self.disarm();
        if reset.is_err() {
            self.poisoned = true;
        }
        if matches!(result, Err(RuntimeError::Timeout(_) | RuntimeError::Memory(_))) {
            self.poisoned = true;
            let why = match &result {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            self.log_line("error", why);
        }
        result
    }

    /// Writes this invocation's log lines to the app's log.
    pub fn flush_logs(&self, host: &Host) {
        let (mut lines, dropped) = {
            let mut buffer = self.logs.borrow_mut();
            buffer.bytes = 0;
            (std::mem::take(&mut buffer.lines), std::mem::take(&mut buffer.dropped))
        };
        let now = host.clock.now_millis();
        if dropped > 0 {
            lines.push((now, "warn", format!("{dropped} more log lines of this invocation were dropped")));
        }
        for line in &mut lines {
            if line.0 == 0 {
                line.0 = now;
            }
        }
        if lines.is_empty() {
            return;
        }
        let app_id = self.app_id.clone();
        if let Err(err) =
            host.storage.write_blocking(|c| crate::syscall::logs::append(c, &Caller::Kernel, &app_id, &lines))
        {
            tracing::warn!(app = %self.app_id, error = %err, "could not write app logs");
        }
    }
}

/// The handler's `request` object, built field by field: a JSON text parsed in
/// JavaScript was about 5 % of the CPU of a hello-world request (perf).
fn request_object<'js>(ctx: &Ctx<'js>, request: &JsRequest) -> rquickjs::Result<Object<'js>> {
    fn string_map<'js>(ctx: &Ctx<'js>, map: &BTreeMap<String, String>) -> rquickjs::Result<Object<'js>> {
        let object = Object::new(ctx.clone())?;
        for (key, value) in map {
            // Defined, not assigned: a client's `__proto__` or `constructor` becomes a
            // plain own property, as JSON.parse would make it, never a prototype.
            let property = Property::from(value.as_str()).writable().configurable().enumerable();
            object.prop(key.as_str(), property)?;
        }
        Ok(object)
    }
    let url = Object::new(ctx.clone())?;
    url.set("pathname", request.url.pathname.as_str())?;
    url.set("search", request.url.search.as_str())?;
    url.set("query", string_map(ctx, &request.url.query)?)?;
    let object = Object::new(ctx.clone())?;
    object.set("method", request.method.as_str())?;
    object.set("url", url)?;
    object.set("headers", string_map(ctx, &request.headers)?)?;
    object.set("body", request.body.as_str())?;
    Ok(object)
}
