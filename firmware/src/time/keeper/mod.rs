//! The timekeeper: the background service that keeps the kernel clock right.
//!
//! At boot it applies the floor (the last time saved before the node stopped, so the
//! clock never goes backwards across a reboot, like fake-hwclock) and the RTC when the
//! board has one. Then it polls its sources every `time.poll_interval_secs` (and at once,
//! with a burst of samples, when the beacon finds a new peer or `fazt time sync` asks):
//! configured NTP servers, and fazt peers that answer with a signature of the node key
//! the beacon announced. [`decide`] picks the source and the correction; the clock's
//! [`crate::time::discipline`] applies it (one boot step, then slewing). It also runs
//! the node's time server and saves the current time now and then.

mod decide;
mod peers;

pub use decide::{decide, Decision, Inputs, Measured, SourceKind};
pub use peers::{PeerChange, PeerDirectory, TimePeer};

use super::client::{self, ClientCounters, QueryError, Sample, MAX_DRIFT_PPM, PRECISION_FLOOR};
use super::discipline::{Adjustment, Authority};
use super::server::{Advertised, ServerCounters, TimeServer};
use super::{rfc3339, Clock, UnixMillis};
use crate::config::{NodeConfig, Setting};
use crate::identity::{self, NodeIdentity};
use crate::storage::{Storage, StorageError};
use async_io::Timer;
use fazt_hal::keystore::PublicKey;
use fazt_hal::time::{Rtc, SyncState};
use futures_lite::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Samples kept per source; the one with the least delay is used (NTP's clock filter).
const HISTORY: usize = 8;
/// How long one exchange may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Samples per source in a burst (boot, new peer, `fazt time sync`).
const BURST: usize = 4;
/// Pause between the samples of a burst to a fazt peer (our own server, which allows it).
const PEER_BURST_SPACING: Duration = Duration::from_millis(150);
/// Pause between the samples of a burst to an NTP server: what chrony's `iburst` uses,
/// which public servers accept.
const NTP_BURST_SPACING: Duration = Duration::from_secs(2);
/// Rounds an NTP server is left alone after it answered "RATE" (slow down).
const RATE_BACKOFF_ROUNDS: u64 = 8;
/// Sources that claim to be further off than this are not used (NTP's MAXDIST, with a
/// margin for the user-space timestamps): a source saying "I may be wrong by a minute"
/// would otherwise overlap everything and always be counted.
const MAX_DISTANCE: i64 = 1_500_000_000;
/// The error assumed for our own clock while nothing has set it.
const UNSYNCED_OWN_DISTANCE: i64 = 100_000_000;

/// The `time.*` settings.
#[derive(Debug, Clone)]
pub struct TimeSettings {
    /// Whether sources are polled and the clock corrected.
    pub enabled: bool,
    /// NTP servers, `host[:port]`.
    pub ntp_servers: Vec<String>,
    /// Whether fazt peers are sources.
    pub use_peers: bool,
    /// UDP port of our time server (0: none).
    pub ntp_port: u16,
    /// Time between polls.
    pub poll_interval: Duration,
    /// Stratum served while no better source sets the clock.
    pub local_stratum: u8,
    /// Time between saves of the current time.
    pub persist_interval: Duration,
}

impl TimeSettings {
    /// Reads the settings from the node configuration.
    pub fn from_config(config: &NodeConfig) -> Self {
        TimeSettings {
            enabled: config.get_bool(Setting::TimeEnabled),
            ntp_servers: config
                .get(Setting::TimeNtpServers)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            use_peers: config.get_bool(Setting::TimePeers),
            ntp_port: config.get_u64(Setting::TimeNtpPort) as u16,
            poll_interval: Duration::from_secs(config.get_u64(Setting::TimePollIntervalSecs).max(1)),
            local_stratum: config.get_u64(Setting::TimeLocalStratum).clamp(1, 15) as u8,
            persist_interval: Duration::from_secs(config.get_u64(Setting::TimePersistIntervalSecs).max(1)),
        }
    }
}

/// One source and its recent samples.
#[derive(Debug)]
struct Tracked {
    kind: &'static str,
    name: String,
    id: Option<String>,
    key: Option<PublicKey>,
    address: Option<SocketAddr>,
    samples: VecDeque<Sample>,
    error: Option<String>,
    included: bool,
    /// No polls before this round (the server asked us to slow down).
    quiet_until_round: u64,
    /// The server refused us for good (DENY / RSTR kiss codes): not polled again.
    refused: bool,
}

impl Tracked {
    fn new(kind: &'static str, name: String) -> Self {
        Tracked {
            kind,
            name,
            id: None,
            key: None,
            address: None,
            samples: VecDeque::new(),
            error: None,
            included: false,
            quiet_until_round: 0,
            refused: false,
        }
    }

    fn push(&mut self, sample: Sample) {
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The recent sample with the least delay (least queueing, so least asymmetry).
    fn best(&self, now: i64, max_age: i64) -> Option<Sample> {
        self.samples.iter().filter(|s| now.saturating_sub(s.at) <= max_age).min_by_key(|s| s.delay).copied()
    }
}

/// What one source gave in a round: kind, key (server or node id), address, the
/// peer's public key, and the samples or why there are none.
type PollResult = (&'static str, String, Option<SocketAddr>, Option<PublicKey>, Result<Vec<Sample>, String>);

/// A step of the clock, for the status.
#[derive(Debug, Clone, serde::Serialize)]
struct StepRecord {
    at: UnixMillis,
    by_ms: f64,
    source: SourceKind,
}

#[derive(Debug)]
struct State {
    source: SourceKind,
    error: i64,
    stratum: u8,
    last_sync: Option<UnixMillis>,
    last_sync_board: i64,
    last_step: Option<StepRecord>,
    note: Option<String>,
    ntp: Vec<Tracked>,
    peers: BTreeMap<String, Tracked>,
    polls: u64,
    requests: u64,
    server: Result<SocketAddr, String>,
    /// The clock's board-step count when the samples were taken.
    board_steps: u64,
}

/// The timekeeper of a node.
#[derive(Debug)]
pub struct Timekeeper {
    clock: Arc<Clock>,
    storage: Arc<Storage>,
    identity: Arc<NodeIdentity>,
    peers: Arc<dyn PeerDirectory>,
    settings: TimeSettings,
    state: Mutex<State>,
    advertised: Arc<Mutex<Advertised>>,
    server_counters: Arc<ServerCounters>,
    client_counters: Arc<ClientCounters>,
    poll_lock: async_lock::Mutex<()>,
    executor: OnceLock<Arc<smol::Executor<'static>>>,
    fingerprint: [u8; 4],
    /// Where steps of the clock are reported (`time.stepped`), once attached.
    on_step: OnceLock<StepHook>,
}

/// Told of every step of the kernel clock with `{"by_ms", "source"}`; the node turns it
/// into a `time.stepped` event (time sits below the event bus, so it only calls back).
pub type OnStep = Box<dyn Fn(Value) + Send + Sync>;

struct StepHook(OnStep);

impl std::fmt::Debug for StepHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepHook")
    }
}

/// A reference id naming a fazt node: the first bytes of its public key.
fn fingerprint(key: &PublicKey) -> [u8; 4] {
    [key.0[0], key.0[1], key.0[2], key.0[3]]
}

fn ms(nanos: i64) -> f64 {
    (nanos as f64 / 1e4).round() / 100.0
}

impl Timekeeper {
    /// A timekeeper for the kernel clock `clock` (see [`boot_floor`] for the RTC).
    pub fn new(
        clock: Arc<Clock>,
        storage: Arc<Storage>,
        identity: Arc<NodeIdentity>,
        peers: Arc<dyn PeerDirectory>,
        settings: TimeSettings,
    ) -> Self {
        let stratum = settings.local_stratum;
        let fingerprint = fingerprint(&identity.public_key);
        Timekeeper {
            advertised: Arc::new(Mutex::new(Advertised {
                stratum,
                leap: 0,
                reference_id: *b"LOCL",
                reference_time: 0,
                root_delay: 0,
                root_dispersion: UNSYNCED_OWN_DISTANCE,
            })),
            state: Mutex::new(State {
                source: SourceKind::Board,
                error: UNSYNCED_OWN_DISTANCE,
                stratum,
                last_sync: None,
                last_sync_board: 0,
                last_step: None,
                note: None,
                ntp: settings.ntp_servers.iter().map(|s| Tracked::new("ntp", s.clone())).collect(),
                peers: BTreeMap::new(),
                polls: 0,
                requests: 0,
                server: Err("not started".into()),
                board_steps: 0,
            }),
            clock,
            storage,
            identity,
            peers,
            settings,
            server_counters: Arc::default(),
            client_counters: Arc::default(),
            poll_lock: async_lock::Mutex::new(()),
            executor: OnceLock::new(),
            on_step: OnceLock::new(),
            fingerprint,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings in force.
    pub fn settings(&self) -> &TimeSettings {
        &self.settings
    }

    /// Reports every step of the kernel clock from now on to `on_step` (the first one
    /// attached stays).
    pub fn on_step(&self, on_step: OnStep) {
        let _ = self.on_step.set(StepHook(on_step));
    }

    /// Records what [`boot_floor`] did before the kernel existed.
    pub fn record_boot(&self, floor: Option<(SourceKind, i64)>) {
        if let Some((source, by)) = floor {
            self.record(source, Some(by), UNSYNCED_OWN_DISTANCE);
        }
    }

    fn record(&self, source: SourceKind, stepped_by: Option<i64>, error: i64) {
        let now = self.clock.now_millis();
        let mut state = self.state();
        state.source = source;
        state.error = error;
        if let Some(by) = stepped_by {
            state.last_step = Some(StepRecord { at: now, by_ms: ms(by), source });
        }
    }

    /// Starts the time server (when `time.ntp_port` is set), the polling loop (when
    /// `time.enabled`) and the saving of the current time on `executor`. The tasks stop
    /// when the returned handles are dropped.
    pub fn start(
        self: &Arc<Self>,
        executor: &Arc<smol::Executor<'static>>,
        listen: IpAddr,
    ) -> Vec<smol::Task<()>> {
        let _ = self.executor.set(executor.clone());
        let mut tasks = Vec::new();
        if let Some(server) = self.bind_server(listen) {
            tasks.push(executor.spawn(server.run()));
        }
        if self.settings.enabled {
            tasks.push(executor.spawn(self.clone().poll_loop()));
        }
        tasks.push(executor.spawn(self.clone().persist_loop()));
        tasks
    }

    fn bind_server(&self, listen: IpAddr) -> Option<TimeServer> {
        let port = self.settings.ntp_port;
        if port == 0 {
            self.state().server = Err("off (time.ntp_port is 0)".into());
            return None;
        }
        let addr = SocketAddr::new(listen, port);
        match TimeServer::bind(
            addr,
            self.clock.clone(),
            self.identity.clone(),
            self.advertised.clone(),
            self.server_counters.clone(),
        ) {
            Ok(server) => {
                let bound = server.local_addr().unwrap_or(addr);
                self.peers.announce_ntp_port(bound.port());
                self.state().server = Ok(bound);
                tracing::info!(%bound, "time server listening");
                Some(server)
            }
            Err(err) => {
                let why = match err.kind() {
                    std::io::ErrorKind::PermissionDenied => format!(
                        "cannot listen on UDP {addr}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; or set time.ntp_port)"
                    ),
                    std::io::ErrorKind::AddrInUse => {
                        format!("cannot listen on UDP {addr}: in use (another time server runs here?); set time.ntp_port")
                    }
                    _ => format!("cannot listen on UDP {addr}: {err}"),
                };
                // An unprivileged node on a laptop cannot have port 123, and that is fine:
                // say so quietly; anything else is worth a warning.
                if err.kind() == std::io::ErrorKind::PermissionDenied {
                    tracing::info!("{why}; the node runs without a time server");
                } else {
                    tracing::warn!("{why}; the node runs without a time server");
                }
                self.state().server = Err(why);
                None
            }
        }
    }

    /// Polls at start, then every poll interval, and at once (with a burst) when a new
    /// peer appears (`fazt time sync` polls directly, through [`Timekeeper::sync`]).
    async fn poll_loop(self: Arc<Self>) {
        let mut changes = self.peers.changes();
        let mut burst = BURST;
        loop {
            self.poll(burst).await;
            burst = 1;
            let tick = async {
                Timer::after(self.settings.poll_interval).await;
                false
            };
            let found = async {
                loop {
                    match changes.next().await {
                        Some(PeerChange::Found) => break,
                        Some(PeerChange::Lost) => continue,
                        None => std::future::pending::<()>().await,
                    }
                }
                // Peers often appear together: let the rest arrive, then poll once.
                Timer::after(Duration::from_millis(500)).await;
                while let Some(Some(_)) = futures_lite::future::poll_once(changes.next()).await {}
                true
            };
            if futures_lite::future::or(tick, found).await {
                burst = BURST;
            }
        }
    }

    /// Polls every source now with a burst and returns the status afterwards
    /// (`fazt time sync`).
    pub async fn sync(self: &Arc<Self>) -> Value {
        if self.settings.enabled {
            self.poll(BURST).await;
        }
        self.status()
    }

    /// One round: ask every source, then decide and adjust.
    async fn poll(self: &Arc<Self>, burst: usize) {
        let _one_at_a_time = self.poll_lock.lock().await;
        let targets = self.targets().await;
        let mut results = Vec::with_capacity(targets.len());
        let mut pending = Vec::new();
        for (kind, key, address, peer_key) in targets {
            let Some(address) = address else {
                results.push((kind, key, None, peer_key, Err("cannot resolve the address".to_string())));
                continue;
            };
            let me = self.clone();
            let public_key = peer_key;
            let job = async move {
                let peer_key = public_key;
                let mut samples = Vec::new();
                let mut last_error = None;
                let spacing = if peer_key.is_some() { PEER_BURST_SPACING } else { NTP_BURST_SPACING };
                for i in 0..burst {
                    if i > 0 {
                        Timer::after(spacing).await;
                    }
                    me.state().requests += 1;
                    match client::query(
                        address,
                        &me.clock,
                        peer_key.as_ref(),
                        QUERY_TIMEOUT,
                        &me.client_counters,
                    )
                    .await
                    {
                        Ok(sample) => samples.push(sample),
                        Err(err @ QueryError::Kiss(_)) => {
                            last_error = Some(err.to_string());
                            break;
                        }
                        Err(err) => last_error = Some(err.to_string()),
                    }
                }
                (samples, last_error)
            };
            match self.executor.get() {
                Some(ex) => pending.push((kind, key, address, public_key, Some(ex.spawn(job)), None)),
                None => pending.push((kind, key, address, public_key, None, Some(job.await))),
            }
        }
        for (kind, key, address, public_key, task, done) in pending {
            let (samples, error) = match (task, done) {
                (Some(task), _) => task.await,
                (None, Some(done)) => done,
                (None, None) => continue,
            };
            let outcome = if samples.is_empty() { Err(error.unwrap_or_default()) } else { Ok(samples) };
            results.push((kind, key, Some(address), public_key, outcome));
        }
        self.update_and_decide(results);
    }

    /// What to poll: (kind, key, address, peer key).
    async fn targets(&self) -> Vec<(&'static str, String, Option<SocketAddr>, Option<PublicKey>)> {
        let mut targets = Vec::new();
        let skip: Vec<String> = {
            let state = self.state();
            let skip = state.ntp.iter().filter(|t| t.refused || t.quiet_until_round > state.polls + 1);
            skip.map(|t| t.name.clone()).collect()
        };
        for server in &self.settings.ntp_servers {
            if skip.contains(server) {
                continue;
            }
            let host = server.clone();
            let address = blocking::unblock(move || resolve(&host)).await;
            targets.push(("ntp", server.clone(), address, None));
        }
        if self.settings.use_peers {
            for record in self.peers.peers() {
                let (Some(id), Some(port), true) = (&record.id, record.ntp_port, record.verified) else {
                    continue;
                };
                let Some(key) = record.public_key.as_deref().and_then(identity::decode_key) else { continue };
                if *id == self.identity.id {
                    continue;
                }
                let address = pick_address(&record.addresses).map(|ip| SocketAddr::new(ip, port));
                targets.push(("peer", id.clone(), address, Some(key)));
            }
        }
        targets
    }

    fn update_and_decide(&self, results: Vec<PollResult>) {
        let now = self.clock.board_nanos();
        let max_age = self.max_sample_age();
        let names: BTreeMap<String, String> =
            self.peers.peers().into_iter().filter_map(|p| Some((p.id?, p.name))).collect();
        let mut state = self.state();
        state.polls += 1;
        // Samples taken before a step of the board clock measured a clock that is gone.
        let steps = self.clock.board_steps();
        if steps != state.board_steps {
            state.board_steps = steps;
            let st = &mut *state;
            st.ntp.iter_mut().chain(st.peers.values_mut()).for_each(|t| t.samples.clear());
        }
        let round = state.polls;
        let mut seen_peers = Vec::new();
        for (kind, key, address, public_key, outcome) in results {
            let tracked = match kind {
                "ntp" => match state.ntp.iter_mut().position(|t| t.name == key) {
                    Some(i) => &mut state.ntp[i],
                    None => continue,
                },
                _ => {
                    seen_peers.push(key.clone());
                    let name = names.get(&key).cloned().unwrap_or_else(|| key.clone());
                    let entry =
                        state.peers.entry(key.clone()).or_insert_with(|| Tracked::new("peer", name.clone()));
                    entry.name = name;
                    entry.id = Some(key.clone());
                    entry.key = public_key;
                    entry
                }
            };
            tracked.address = address;
            match outcome {
                Ok(samples) => {
                    tracked.error = None;
                    samples.into_iter().for_each(|s| tracked.push(s));
                }
                Err(error) => {
                    // Kiss-o'-death (RFC 5905 section 7.4): DENY and RSTR mean stop,
                    // RATE means slow down.
                    if error.contains("kiss code DENY") || error.contains("kiss code RSTR") {
                        tracked.refused = true;
                    } else if error.contains("kiss code RATE") {
                        tracked.quiet_until_round = round + RATE_BACKOFF_ROUNDS;
                    }
                    tracked.error = Some(error);
                }
            }
        }
        // Peers the beacon no longer sees are forgotten.
        state.peers.retain(|id, _| seen_peers.contains(id));

        let measure = |t: &Tracked| {
            t.best(now, max_age)
                .filter(|sample| sample.distance(now) <= MAX_DISTANCE)
                .map(|sample| Measured { sample, loops_to_us: sample.reference_id == self.fingerprint })
        };
        let ntp_index: Vec<usize> =
            (0..state.ntp.len()).filter(|&i| measure(&state.ntp[i]).is_some()).collect();
        let ntp: Vec<Measured> = ntp_index.iter().filter_map(|&i| measure(&state.ntp[i])).collect();
        let peer_ids: Vec<String> =
            state.peers.iter().filter(|(_, t)| measure(t).is_some()).map(|(k, _)| k.clone()).collect();
        let peers: Vec<Measured> = peer_ids.iter().filter_map(|id| measure(&state.peers[id])).collect();
        let (current, _) = self.clock.correction();
        let own_distance = match state.last_sync {
            Some(_) if state.source != SourceKind::Board => state
                .error
                .saturating_add(now.saturating_sub(state.last_sync_board).max(0) / 1_000_000 * MAX_DRIFT_PPM)
                .saturating_add(PRECISION_FLOOR)
                .min(UNSYNCED_OWN_DISTANCE),
            _ => UNSYNCED_OWN_DISTANCE,
        };
        let os_synchronized = match self.clock.board().sync_state() {
            SyncState::Synchronized { max_error_us } => Some(max_error_us.saturating_mul(1000)),
            _ => None,
        };
        let inputs = Inputs {
            now,
            ntp: &ntp,
            os_synchronized,
            peers: &peers,
            local_stratum: self.settings.local_stratum,
            current,
            own_distance,
        };
        let Some(decision) = decide(&inputs) else {
            state.note = Some(match peers.len() {
                0 if state.ntp.is_empty() => {
                    "no time source answered: no NTP servers configured and no fazt peers found".into()
                }
                0 => "no time source answered".into(),
                n => format!(
                    "no majority among {n} peer(s) and this node's own clock; the clock is left as it is"
                ),
            });
            let st = &mut *state;
            for t in st.ntp.iter_mut().chain(st.peers.values_mut()) {
                t.included = false;
            }
            // Without a source for a while, stop telling clients we are synchronized.
            let stale = state.last_sync.is_none() || now.saturating_sub(state.last_sync_board) > max_age;
            if stale {
                let error = state.error;
                drop(state);
                let mut ad = self.advertised.lock().unwrap_or_else(|e| e.into_inner());
                ad.stratum = self.settings.local_stratum;
                ad.reference_id = *b"LOCL";
                ad.root_delay = 0;
                ad.root_dispersion = error.max(UNSYNCED_OWN_DISTANCE);
            }
            return;
        };
        for (k, &i) in ntp_index.iter().enumerate() {
            state.ntp[i].included = decision.ntp_included[k];
        }
        for t in state.peers.values_mut() {
            t.included = false;
        }
        for (k, id) in peer_ids.iter().enumerate() {
            if let Some(t) = state.peers.get_mut(id) {
                t.included = decision.peers_included[k];
            }
        }
        // Peers may step the clock only at boot: anyone on the LAN can mint node
        // identities, so a running clock is only ever slewed by them (at most 43 s a day).
        let authority = match decision.source {
            SourceKind::Peers if self.clock.boot_step_used() => Authority::Slew,
            _ => Authority::Source,
        };
        let adjustment = self.clock.adjust(now, decision.estimate, authority);
        let synced_at = self.clock.now_millis();
        match adjustment {
            Adjustment::Stepped(by) => {
                tracing::warn!(by_ms = ms(by), source = decision.source.as_str(), "kernel clock stepped");
                state.last_step = Some(StepRecord { at: synced_at, by_ms: ms(by), source: decision.source });
                if let Some(StepHook(on_step)) = self.on_step.get() {
                    on_step(serde_json::json!({"by_ms": ms(by), "source": decision.source.as_str()}));
                }
            }
            Adjustment::Slewing(by) if by.abs() > super::discipline::STEP_THRESHOLD => tracing::warn!(
                by_ms = ms(by),
                source = decision.source.as_str(),
                "kernel clock is ahead of its source; slewing back at 0.5 ms/s (it never jumps backwards while running; a restart steps it)"
            ),
            Adjustment::Slewing(_) => {}
        }
        state.note = None;
        state.source = decision.source;
        state.error = decision.error;
        state.stratum = decision.stratum;
        state.last_sync = Some(synced_at);
        state.last_sync_board = now;
        let reference_id = match decision.source {
            SourceKind::Ntp => state
                .ntp
                .iter()
                .find(|t| t.included)
                .and_then(|t| match t.address {
                    Some(SocketAddr::V4(a)) => Some(a.ip().octets()),
                    _ => None,
                })
                .unwrap_or(*b"NTP6"),
            SourceKind::System => *b"SYST",
            SourceKind::Peers if decision.stratum < self.settings.local_stratum => state
                .peers
                .values()
                .filter(|t| t.included)
                .min_by_key(|t| t.samples.back().map(|s| s.stratum))
                .and_then(|t| t.key.as_ref().map(fingerprint))
                .unwrap_or(*b"FAZT"),
            _ => *b"FAZT",
        };
        let root_delay = match decision.source {
            SourceKind::Ntp | SourceKind::Peers => {
                let included = state.ntp.iter().chain(state.peers.values()).filter(|t| t.included);
                included
                    .filter_map(|t| t.best(now, max_age))
                    .map(|s| s.root_delay + s.delay)
                    .min()
                    .unwrap_or(0)
            }
            _ => 0,
        };
        drop(state);
        *self.advertised.lock().unwrap_or_else(|e| e.into_inner()) = Advertised {
            stratum: decision.stratum,
            leap: 0,
            reference_id,
            reference_time: self.clock.now_nanos(),
            root_delay,
            root_dispersion: decision.error,
        };
    }

    /// How long a sample counts: the last [`HISTORY`] polls.
    fn max_sample_age(&self) -> i64 {
        (self.settings.poll_interval.as_nanos() as i64).saturating_mul(HISTORY as i64)
    }

    /// Saves the current time every `time.persist_interval_secs`.
    async fn persist_loop(self: Arc<Self>) {
        loop {
            self.persist().await;
            Timer::after(self.settings.persist_interval).await;
        }
    }

    async fn persist(&self) {
        let now = self.clock.now_millis().to_string();
        let result = self
            .storage
            .write(move |conn| {
                Ok::<_, StorageError>(crate::storage::state::set(
                    conn,
                    crate::storage::state::StateKey::TimeLastKnownMs,
                    &now,
                )?)
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot save the current time");
        }
    }

    /// Saves the current time now (at shutdown).
    pub fn persist_blocking(&self) {
        let now = self.clock.now_millis().to_string();
        let result = self.storage.write_blocking(move |conn| {
            Ok::<_, StorageError>(crate::storage::state::set(
                conn,
                crate::storage::state::StateKey::TimeLastKnownMs,
                &now,
            )?)
        });
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot save the current time");
        }
    }

    /// Everything `fazt time status` shows.
    pub fn status(&self) -> Value {
        let now_ms = self.clock.now_millis();
        let board = self.clock.board_nanos();
        let (correction, remaining) = self.clock.correction();
        let max_age = self.max_sample_age();
        let state = self.state();
        let age = board.saturating_sub(state.last_sync_board).max(0);
        let error = match state.last_sync {
            Some(_) => state.error.saturating_add(age / 1_000_000 * MAX_DRIFT_PPM),
            None => state.error,
        };
        let synchronized = state.last_sync.is_some()
            && matches!(state.source, SourceKind::Ntp | SourceKind::System | SourceKind::Peers)
            && age <= max_age;
        let sources: Vec<Value> = state
            .ntp
            .iter()
            .chain(state.peers.values())
            .map(|t| {
                let best = t.best(board, max_age);
                json!({
                    "kind": t.kind,
                    "name": t.name,
                    "id": t.id,
                    "address": t.address.map(|a| a.to_string()),
                    "reachable": t.error.is_none() && best.is_some(),
                    "included": t.included,
                    // How far the source is from the kernel clock now (positive: ahead of us).
                    "offset_ms": best.map(|s| ms(s.offset - correction)),
                    "delay_ms": best.map(|s| ms(s.delay)),
                    "distance_ms": best.map(|s| ms(s.distance(board))),
                    "stratum": best.map(|s| s.stratum),
                    "samples": t.samples.len(),
                    "error": t.error,
                })
            })
            .collect();
        let c = &self.client_counters;
        let s = &self.server_counters;
        json!({
            "now": now_ms,
            "now_text": rfc3339(now_ms),
            "source": state.source,
            "synchronized": synchronized,
            "stratum": state.stratum,
            "error_ms": ms(error),
            "offset_ms": ms(correction),
            "slewing_ms": ms(remaining),
            "last_sync": state.last_sync,
            "last_step": state.last_step,
            "note": state.note,
            "board_clock": match self.clock.board().sync_state() {
                SyncState::Synchronized { .. } => "synchronized by the OS",
                SyncState::Unsynchronized => "not synchronized",
                SyncState::Unknown => "unknown",
            },
            "settings": {
                "enabled": self.settings.enabled,
                "ntp_servers": self.settings.ntp_servers,
                "peers": self.settings.use_peers,
                "poll_interval_secs": self.settings.poll_interval.as_secs(),
                "local_stratum": self.settings.local_stratum,
            },
            "sources": sources,
            "server": {
                "listening": state.server.as_ref().ok().map(|a| a.to_string()),
                "error": state.server.as_ref().err(),
                "answered": s.answered.load(Ordering::Relaxed),
                "signed": s.signed.load(Ordering::Relaxed),
                "malformed": s.malformed.load(Ordering::Relaxed),
                "wrong_version": s.wrong_version.load(Ordering::Relaxed),
                "wrong_mode": s.wrong_mode.load(Ordering::Relaxed),
                "rate_limited": s.rate_limited.load(Ordering::Relaxed),
                "sign_failed": s.sign_failed.load(Ordering::Relaxed),
            },
            "client": {
                "polls": state.polls,
                "requests": state.requests,
                "malformed": c.malformed.load(Ordering::Relaxed),
                "unmatched": c.unmatched.load(Ordering::Relaxed),
                "unsigned": c.unsigned.load(Ordering::Relaxed),
                "bad_signature": c.bad_signature.load(Ordering::Relaxed),
            },
        })
    }
}

/// Applies what is known before any network, as early as possible at start (before the
/// first rows are written): the last time saved in `data.db` and the RTC, both as floors
/// that only ever move the clock forward (a dead RTC battery reads years behind, and
/// Linux already set the board clock from it). Blocking. Returns what moved the clock.
pub fn boot_floor(storage: &Storage, clock: &Clock, rtc: &dyn Rtc) -> Option<(SourceKind, i64)> {
    let mut moved = None;
    let saved = storage
        .read_blocking(|conn| {
            Ok::<_, StorageError>(crate::storage::state::get(
                conn,
                crate::storage::state::StateKey::TimeLastKnownMs,
            )?)
        })
        .ok()
        .flatten()
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(saved_ms) = saved {
        let raw = clock.board_nanos();
        let floor = saved_ms.saturating_mul(1_000_000);
        if let Adjustment::Stepped(by) = clock.adjust(raw, floor.saturating_sub(raw), Authority::Floor) {
            tracing::warn!(
                by_secs = by / 1_000_000_000,
                last_known = %rfc3339(saved_ms),
                "the board clock is behind the last time this node saw; moved forward to it"
            );
            moved = Some((SourceKind::Persisted, by));
        }
    }
    if matches!(clock.board().sync_state(), SyncState::Synchronized { .. }) {
        return moved;
    }
    match rtc.read_secs() {
        Ok(Some(secs)) => {
            let raw = clock.board_nanos();
            let estimate = secs.saturating_mul(1_000_000_000).saturating_sub(raw);
            let (current, _) = clock.correction();
            // The RTC counts whole seconds: only a real disagreement is acted on.
            if estimate.saturating_sub(current) > 2_000_000_000 {
                if let Adjustment::Stepped(by) = clock.adjust(raw, estimate, Authority::Floor) {
                    tracing::warn!(
                        by_secs = by / 1_000_000_000,
                        "the board clock is behind the RTC; moved forward to it"
                    );
                    moved = Some((SourceKind::Rtc, by));
                }
            }
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "cannot read the RTC"),
    }
    moved
}

/// `host[:port]` to an address (port 123 when not given).
fn resolve(host: &str) -> Option<SocketAddr> {
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Some(addr);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 123));
    }
    let with_port = if host.contains(':') { host.to_string() } else { format!("{host}:123") };
    with_port.to_socket_addrs().ok()?.next()
}

/// The address to reach a peer at: IPv4 first, then IPv6 that needs no scope.
fn pick_address(addresses: &[IpAddr]) -> Option<IpAddr> {
    let usable = |ip: &&IpAddr| match ip {
        IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast(),
        IpAddr::V6(v6) => !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    };
    addresses.iter().filter(usable).find(|ip| ip.is_ipv4()).or_else(|| addresses.iter().find(usable)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_prefer_ipv4_and_skip_link_local_v6() {
        let a: Vec<IpAddr> =
            vec!["fe80::1".parse().unwrap(), "fd00::2".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(pick_address(&a), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(pick_address(&a[..2]), Some("fd00::2".parse().unwrap()));
        assert_eq!(pick_address(&a[..1]), None);
        assert_eq!(resolve("10.0.0.1"), Some("10.0.0.1:123".parse().unwrap()));
        assert_eq!(resolve("10.0.0.1:1123"), Some("10.0.0.1:1123".parse().unwrap()));
        assert_eq!(resolve("[::1]:5"), Some("[::1]:5".parse().unwrap()));
    }

    #[test]
    fn the_best_sample_is_the_quickest_recent_one() {
        let mut t = Tracked::new("ntp", "x".into());
        let s = |delay, at| Sample {
            offset: delay,
            delay,
            root_delay: 0,
            root_dispersion: 0,
            stratum: 2,
            reference_id: [0; 4],
            at,
        };
        for i in 0..10 {
            t.push(s(100 + i, 1000 + i));
        }
        assert_eq!(t.samples.len(), HISTORY);
        assert_eq!(t.best(1010, 100).unwrap().delay, 102, "the two oldest fell out of the history");
        assert_eq!(t.best(1010, 2).unwrap().delay, 108, "only recent samples count");
        assert!(t.best(5000, 2).is_none());
    }
}
