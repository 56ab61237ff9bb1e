//! Egress: the one way an app's code reaches out over HTTP (`fazt.net.fetch`). Every
//! request is held to the app's allow-list, to the address rules (no loopback, private,
//! link-local, CGNAT or metadata address unless the admin opened that one service with
//! `--private`), to the node's limits (requests in flight per app, request and response
//! size, total time, redirects), and to a circuit breaker per destination host; every
//! request is logged in `data.db`.
//!
//! # Layout
//! - [`address`]: which resolved addresses may be reached.
//! - [`target`]: parsing the URL, method and headers an app gives.
//! - [`breaker`]: the circuit breakers.
//! - [`store`]: the allow-lists and the request log in `data.db`.
//! - `client`: sending one request: resolve, check, connect to the checked address,
//!   follow redirects one by one, read within the limits.
//!
//! # Not yet (issue 22)
//! The HTTP cache, webhooks in and out, a rate limit
//! (only concurrency is capped), `app.json` permissions, and moving ACME and OCSP onto
//! this client are later slices. DNS resolution uses the system resolver on the calling
//! thread: its own time is not cut short by the request's deadline.

pub mod address;
pub mod breaker;
mod client;
pub mod store;
pub mod target;

use crate::config::{NodeConfig, Setting};
use crate::events::Events;
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a request was refused or failed. Nothing is retried behind the app's back.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The URL is not one egress sends to (`bad_url`).
    #[error("bad_url: {0}")]
    BadUrl(String),
    /// A method, header or other input breaks a rule (`invalid`).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The host is not on the app's allow-list (`host_not_allowed`).
    #[error("host_not_allowed: {0}")]
    HostNotAllowed(String),
    /// The host resolves only to addresses the app may not reach (`private_address`).
    #[error("private_address: {0}")]
    PrivateAddress(String),
    /// The request or the response is over its limit (`too_large`).
    #[error("too_large: {0}")]
    TooLarge(String),
    /// The request ran out of time (`timeout`).
    #[error("timeout: {0}")]
    Timeout(String),
    /// The host's circuit is open (`circuit_open`).
    #[error("circuit_open: {host} failed {failures} times in a row; requests to it fail at once for {}s more", retry_after.as_secs().max(1))]
    CircuitOpen {
        /// The host.
        host: String,
        /// Failures that opened it.
        failures: u32,
        /// When a probe may go.
        retry_after: Duration,
    },
    /// More redirects than allowed (`too_many_redirects`).
    #[error("too_many_redirects: {0}")]
    TooManyRedirects(String),
    /// The app has as many requests in flight as it may (`rate_limited`).
    #[error("rate_limited: {0}")]
    Busy(String),
    /// The host could not be resolved or reached, or answered something that is not
    /// HTTP (`upstream_error`).
    #[error("upstream_error: {0}")]
    Upstream(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for EgressError {
    fn from(e: rusqlite::Error) -> Self {
        EgressError::Storage(e.into())
    }
}

impl EgressError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            EgressError::BadUrl(_) => "bad_url",
            EgressError::Invalid(_) => "invalid",
            EgressError::HostNotAllowed(_) => "host_not_allowed",
            EgressError::PrivateAddress(_) => "private_address",
            EgressError::TooLarge(_) => "too_large",
            EgressError::Timeout(_) => "timeout",
            EgressError::CircuitOpen { .. } => "circuit_open",
            EgressError::TooManyRedirects(_) => "too_many_redirects",
            EgressError::Busy(_) => "rate_limited",
            EgressError::Upstream(_) => "upstream_error",
            EgressError::Storage(_) => "storage_error",
        }
    }

    /// True when it says something about the destination's health (counts for its
    /// circuit breaker): it could not be reached or ran out of time.
    fn is_failure(&self) -> bool {
        matches!(self, EgressError::Timeout(_) | EgressError::Upstream(_))
    }
}

/// The node-wide limits, from the `egress.*` settings (read at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Requests one app may have in flight.
    pub max_concurrent_per_app: usize,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
    /// Total time of one fetch, redirects included.
    pub timeout: Duration,
    /// Redirects followed at most.
    pub max_redirects: u32,
    /// Consecutive failures that open a host's circuit (0: never).
    pub breaker_failures: u32,
    /// How long an open circuit fails fast.
    pub breaker_cooldown: Duration,
    /// Rows kept in the request log.
    pub log_max_rows: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_concurrent_per_app: 8,
            max_request_bytes: 1 << 20,
            max_response_bytes: 4 << 20,
            timeout: Duration::from_secs(10),
            max_redirects: 5,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            log_max_rows: 10_000,
        }
    }
}

impl Settings {
    /// From the node's settings, each clamped to a sane range.
    pub fn from_config(config: &NodeConfig) -> Self {
        let get = |s: Setting| config.get_u64(s);
        Settings {
            max_concurrent_per_app: get(Setting::EgressMaxConcurrentPerApp).clamp(1, 1024) as usize,
            max_request_bytes: get(Setting::EgressMaxRequestBytes).min(64 << 20) as usize,
            max_response_bytes: get(Setting::EgressMaxResponseBytes).min(256 << 20) as usize,
            timeout: Duration::from_millis(get(Setting::EgressTimeoutMs).clamp(1, 600_000)),
            max_redirects: get(Setting::EgressMaxRedirects).min(20) as u32,
            breaker_failures: get(Setting::EgressBreakerFailures).min(1_000_000) as u32,
            breaker_cooldown: Duration::from_secs(get(Setting::EgressBreakerCooldownSecs).clamp(1, 86_400)),
            log_max_rows: get(Setting::EgressLogMaxRows),
        }
    }
}

/// What an app asks to send.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET` when empty.
    pub method: String,
    /// An absolute http(s) URL.
    pub url: String,
    /// Headers (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

/// The answer the app gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Headers, names lower-case, repeated ones joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 becomes U+FFFD).
    pub body: String,
    /// The URL that answered (after redirects).
    pub url: String,
}

/// The egress service of a running node. Cheap to share (`Arc<Egress>`).
pub struct Egress {
    storage: Arc<Storage>,
    clock: Arc<Clock>,
    events: Option<Arc<Events>>,
    settings: Settings,
    breakers: Mutex<breaker::Breakers>,
    /// Requests in flight per app id.
    in_flight: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// One host's circuit as `fazt net limits` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CircuitStatus {
    /// The host.
    pub host: String,
    /// `closed` (with failures counted), `open` or `half_open`.
    pub state: &'static str,
    /// Consecutive failures, while closed.
    pub failures: u32,
    /// Milliseconds until a probe may go, while open.
    pub retry_in_ms: u64,
}

/// A request slot of one app, given back when dropped.
struct Slot<'a> {
    egress: &'a Egress,
    app_id: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self.egress.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.app_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.app_id);
            }
        }
    }
}

impl Egress {
    /// The service, with `settings`; circuit changes go on `events` when given.
    pub fn new(
        storage: Arc<Storage>,
        clock: Arc<Clock>,
        events: Option<Arc<Events>>,
        settings: Settings,
    ) -> Self {
        Egress {
            storage,
            clock,
            events,
            breakers: Mutex::new(breaker::Breakers::new(
                settings.breaker_failures,
                settings.breaker_cooldown,
            )),
            settings,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Every circuit with failures or open, by host.
    pub fn circuits(&self) -> Vec<CircuitStatus> {
        let now = Instant::now();
        let list = self.breakers.lock().unwrap_or_else(|e| e.into_inner()).snapshot();
        list.into_iter()
            .map(|(host, state)| match state {
                breaker::State::Closed { failures } => {
                    CircuitStatus { host, state: "closed", failures, retry_in_ms: 0 }
                }
                breaker::State::Open { until } => CircuitStatus {
                    host,
                    state: "open",
                    failures: 0,
                    retry_in_ms: until.saturating_duration_since(now).as_millis() as u64,
                },
                breaker::State::HalfOpen => {
                    CircuitStatus { host, state: "half_open", failures: 0, retry_in_ms: 0 }
                }
            })
            .collect()
    }

    /// Requests in flight per app id.
    pub fn in_flight(&self) -> BTreeMap<String, usize> {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    fn take_slot(&self, app_id: &str, max: usize) -> Result<Slot<'_>, EgressError> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(app_id.to_string()).or_insert(0);
        if *n >= max {
            return Err(EgressError::Busy(format!(
                "the app has {max} requests in flight, its limit (egress.max_concurrent_per_app, or its own)"
            )));
        }
        *n += 1;
        Ok(Slot { egress: self, app_id: app_id.to_string() })
    }

    /// Sends `request` for the app `app_id` (its identity checked by the caller: see
    /// `syscall::egress::fetch`), within `budget` when shorter than the node's timeout;
    /// blocks the calling thread. Logged whatever the outcome.
    pub fn fetch(
        &self,
        app_id: &str,
        request: Request,
        budget: Option<Duration>,
    ) -> Result<Response, EgressError> {
        let started = Instant::now();
        let at = self.clock.now_millis();
        let method = if request.method.is_empty() { "GET".to_string() } else { request.method.clone() };
        let mut host = String::new();
        let result = self.app_policy(app_id).and_then(|(rules, settings)| {
            let _slot = self.take_slot(app_id, settings.max_concurrent_per_app)?;
            client::send(self, &rules, settings, request, budget, started, &mut host)
        });
        let entry = store::LogEntry {
            id: 0,
            at,
            app_id: app_id.to_string(),
            method: method.chars().take(16).collect(),
            host,
            status: result.as_ref().ok().map(|r| r.status),
            bytes: result.as_ref().map(|r| r.body.len() as u64).unwrap_or(0),
            duration_ms: started.elapsed().as_millis() as u64,
            error: result.as_ref().err().map(|e| e.code().to_string()),
        };
        let max_rows = self.settings.log_max_rows;
        if let Err(err) = self.storage.write_blocking(|c| store::log(c, &entry, max_rows)) {
            tracing::warn!(error = %err, "egress: cannot write the request log");
        }
        result
    }

    /// Asks the breaker of `host` whether a request may go.
    fn admit(&self, host: &str) -> Result<(), EgressError> {
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        match breakers.admit(host, Instant::now()) {
            breaker::Admit::Go | breaker::Admit::Probe => Ok(()),
            breaker::Admit::Open(retry_after) => Err(EgressError::CircuitOpen {
                host: host.to_string(),
                failures: breakers.settings().0,
                retry_after,
            }),
        }
    }

    /// Records how a request to `host` ended, and puts a changed circuit on the bus.
    fn record(&self, host: &str, success: bool) {
        let change =
            self.breakers.lock().unwrap_or_else(|e| e.into_inner()).record(host, success, Instant::now());
        let (Some(change), Some(events)) = (change, &self.events) else { return };
        let (kind, data) = match change {
            breaker::Change::Opened => (
                crate::events::Kind::EgressCircuitOpened,
                serde_json::json!({
                    "host": host,
                    "failures": self.settings.breaker_failures,
                    "cooldown_ms": self.settings.breaker_cooldown.as_millis() as u64,
                }),
            ),
            breaker::Change::Closed => {
                (crate::events::Kind::EgressCircuitClosed, serde_json::json!({ "host": host }))
            }
        };
        events.notify(kind, None, data);
    }

    /// An app's allow-list and its limits (its own over the node's), read for one fetch.
    fn app_policy(&self, app_id: &str) -> Result<(Vec<store::Rule>, Settings), EgressError> {
        let settings = self.settings;
        self.storage
            .read_blocking(|c| Ok((store::rules(c, app_id)?, store::app_limits(c, app_id)?.over(settings))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_per_app_are_capped_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let settings = Settings { max_concurrent_per_app: 2, ..Settings::default() };
        let egress = Egress::new(storage, Arc::new(Clock::new()), None, settings);
        let first = egress.take_slot("a", 2).unwrap();
        let second = egress.take_slot("a", 2).unwrap();
        assert_eq!(egress.take_slot("a", 2).err().unwrap().code(), "rate_limited");
        assert!(egress.take_slot("b", 2).is_ok(), "per app");
        assert_eq!(egress.in_flight().get("a"), Some(&2));
        drop(first);
        let third = egress.take_slot("a", 2).unwrap();
        drop((second, third));
        assert!(egress.in_flight().is_empty());
    }

    #[test]
    fn settings_are_clamped_to_sane_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        for (key, value) in [
            ("egress.max_concurrent_per_app", "0"),
            ("egress.timeout_ms", "0"),
            ("egress.max_redirects", "1000"),
            ("egress.breaker_cooldown_secs", "0"),
            ("egress.max_response_bytes", "99999999999"),
        ] {
            crate::config::set(&storage, key, value).unwrap();
        }
        let s = Settings::from_config(&NodeConfig::load(&storage).unwrap());
        assert_eq!(s.max_concurrent_per_app, 1);
        assert_eq!(s.timeout, Duration::from_millis(1));
        assert_eq!(s.max_redirects, 20);
        assert_eq!(s.breaker_cooldown, Duration::from_secs(1));
        assert_eq!(s.max_response_bytes, 256 << 20);
        let fresh = Storage::open(&dir.path().join("fresh.db")).unwrap();
        assert_eq!(Settings::from_config(&NodeConfig::load(&fresh).unwrap()), Settings::default());
    }
}
