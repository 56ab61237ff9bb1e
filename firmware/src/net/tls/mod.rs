//! HTTPS: rustls (ring provider, TLS 1.2 and 1.3, ALPN h2 and http/1.1) with
//! certificates chosen by SNI from `data.db`.
//!
//! # Layout
//! - [`acme`]: certificates from an ACME CA (HTTP-01), renewals, backoff.
//! - [`store`]: parsing and checking PEM certificates, the `tls_certs` rows.
//! - [`resolver`]: the SNI certificate table rustls asks during a handshake.
//! - [`lan_ca`]: the node's own CA for the LAN (key in the keystore).
//! - [`ocsp`] and [`stapler`]: OCSP answers from the CA, checked and stapled.
//! - [`redirect`]: plain HTTP beside HTTPS (ACME challenges, redirects).
//! - [`handshakes`]: the cap on handshakes in progress.
//! - [`time`]: the kernel clock as rustls's time source.
//!
//! Modes (`https.mode`): `off`; `lan`, where the node's CA issues its certificate; and
//! `acme`, where certificates come from an ACME CA. Custom certificates
//! (`fazt cert add`) are served in both, and win over the others for their names.

pub mod acme;
pub mod handshakes;
pub mod lan_ca;
pub mod ocsp;
pub mod redirect;
pub mod resolver;
pub mod stapler;
pub mod store;
pub mod time;

use crate::config::{NodeConfig, Setting};
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::keystore::{EcdsaKeystore, Sealer};
use resolver::{Resolver, Table};
use rustls::ServerConfig;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::Source;

/// Certificates are renewed when less than this is left (30 days).
pub const RENEW_BEFORE_MS: i64 = 30 * 86_400_000;

/// A client has this long to finish a TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing `data.db` failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The keystore failed (the LAN CA key).
    #[error("the LAN CA key: {0}")]
    Keystore(fazt_hal::keystore::Error),
    /// Making a certificate failed.
    #[error("making a certificate: {0}")]
    Rcgen(rcgen::Error),
    /// A certificate was refused.
    #[error(transparent)]
    Cert(#[from] store::CertError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Stored TLS state is damaged.
    #[error("damaged TLS state in data.db: {0}")]
    Corrupt(String),
    /// No custom certificate has that name.
    #[error("no custom certificate for '{0}' (see `fazt cert list`)")]
    NotFound(String),
}

impl From<rusqlite::Error> for TlsError {
    fn from(e: rusqlite::Error) -> Self {
        TlsError::Storage(StorageError::from(e))
    }
}

/// How the node gets its certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No HTTPS listener.
    Off,
    /// The node's own LAN CA.
    Lan,
    /// An ACME CA (Let's Encrypt by default).
    Acme,
}

impl Mode {
    /// From the `https.mode` value.
    pub fn from_config(value: &str) -> Mode {
        match value {
            "lan" => Mode::Lan,
            "acme" => Mode::Acme,
            _ => Mode::Off,
        }
    }

    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Lan => "lan",
            Mode::Acme => "acme",
        }
    }
}

/// Logs a repeated warning at most once per 10 seconds, with the count of the
/// repeats it held back: a handshake flood must not flood the log too.
#[derive(Debug)]
pub struct LogBrake {
    what: &'static str,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogBrake {
    /// A brake for warnings about `what`.
    pub fn new(what: &'static str) -> Self {
        LogBrake { what, state: Mutex::new((None, 0)) }
    }

    /// Logs `message` unless one was logged in the last 10 s.
    pub fn warn(&self, message: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state.0.is_some_and(|last| now.duration_since(last) < Duration::from_secs(10)) {
            state.1 += 1;
            return;
        }
        if state.1 > 0 {
            tracing::warn!(suppressed = state.1, "{} more {} in the last seconds", state.1, self.what);
        }
        tracing::warn!("{message}");
        *state = (Some(now), 0);
    }
}

/// What LAN mode puts in the node's certificate.
#[derive(Debug, Clone)]
pub struct LanNames {
    /// DNS names: `<name>.local`, the domain and `*.<domain>`, `localhost`.
    pub names: Vec<String>,
    /// Loopback and LAN addresses.
    pub ips: Vec<IpAddr>,
}

impl LanNames {
    /// The names for a node called `beacon_name` under `domain`, with `addresses`.
    ///
    /// Besides `*.<domain>`, each app's name is listed: TLS clients refuse a wildcard
    /// directly under a single label (`*.localhost`, `*.lan`), so those need the names.
    pub fn new(beacon_name: &str, domain: &str, addresses: &[IpAddr]) -> Self {
        let mut names = vec![format!("{beacon_name}.local"), domain.to_string(), format!("*.{domain}")];
        names.extend(["admin", "root"].iter().map(|a| format!("{a}.{domain}")));
        if domain != "localhost" {
            names.push("localhost".into());
        }
        names.sort();
        names.dedup();
        let mut ips: Vec<IpAddr> =
            vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)];
        ips.extend(addresses.iter().copied().filter(|ip| !ip.is_loopback() && !ip.is_unspecified()));
        ips.sort();
        ips.dedup();
        LanNames { names, ips }
    }
}

/// The `Strict-Transport-Security` value a node sends on HTTPS: in ACME mode only, whose
/// certificates every browser trusts, and not when `max_age` is 0. Never with the LAN
/// CA: a browser that has not trusted the CA must still be able to pass the warning,
/// and HSTS takes that choice away for `max_age` seconds.
pub fn hsts_header(mode: Mode, max_age: u64) -> Option<http::HeaderValue> {
    match (mode, max_age) {
        (Mode::Acme, age) if age > 0 => http::HeaderValue::from_str(&format!("max-age={age}")).ok(),
        _ => None,
    }
}

/// The HTTPS state of a running node.
pub struct Tls {
    /// The mode from `https.mode`.
    pub mode: Mode,
    /// The SNI certificate table.
    pub resolver: Arc<Resolver>,
    config: Option<Arc<ServerConfig>>,
    /// The LAN CA (LAN mode only).
    pub lan_ca: Option<lan_ca::LanCa>,
    lan_names: Mutex<Option<LanNames>>,
    /// Names asked for (handshakes, deploys) in LAN mode, for [`Tls::maintain`].
    lan_wanted: (async_channel::Sender<String>, async_channel::Receiver<String>),
    domain: String,
    storage: Arc<Storage>,
    clock: Arc<Clock>,
    /// Seals the private keys and the ACME account key kept in `data.db`.
    sealer: Arc<dyn Sealer>,
    /// `Strict-Transport-Security` for HTTPS answers for the node's domain and its
    /// subdomains, in ACME mode with `https.hsts_max_age` > 0 (see [`Tls::hsts_for`]).
    hsts: Option<http::HeaderValue>,
    /// Redirect plain HTTP to HTTPS for the node's own names (`https.redirect`).
    pub redirect: bool,
    port: AtomicU16,
    /// Failed handshakes (malformed ClientHellos, floods, timeouts), logged braked.
    pub handshake_errors: LogBrake,
    /// Handshakes in progress, capped by `https.max_handshakes`.
    pub handshakes: Arc<handshakes::Handshakes>,
    /// Handshakes for names the node does not serve (LAN mode), logged braked.
    unknown_names: LogBrake,
    /// The ACME worker's handle (ACME mode only).
    pub acme: Option<Arc<acme::Manager>>,
    /// HTTP-01 answers by token, while an ACME order is open.
    challenges: Mutex<std::collections::HashMap<String, String>>,
    /// OCSP answers stapled to the certificates whose CA runs a responder.
    pub stapler: stapler::Stapler,
    /// Wakes [`Tls::staple`] when a certificate with a responder appears.
    ocsp_wake: (async_channel::Sender<()>, async_channel::Receiver<()>),
    /// One reload at a time: a slow one must not replace the table a newer one built.
    reload_lock: Mutex<()>,
    /// Where `cert.issued` and `cert.failing` go.
    events: Arc<crate::events::Events>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl Tls {
    /// Sets up HTTPS as configured: in LAN mode, makes the CA on first use and makes
    /// sure the node's certificate is current; loads every stored certificate.
    // One argument per dependency, so that what TLS needs of the kernel is in its
    // signature; the composition root (`proc::serve`) passes them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &NodeConfig,
        storage: Arc<Storage>,
        clock: Arc<Clock>,
        keystore: Arc<dyn EcdsaKeystore>,
        sealer: Arc<dyn Sealer>,
        node_id: &str,
        lan_names: LanNames,
        events: Arc<crate::events::Events>,
    ) -> Result<Tls, TlsError> {
        let mode = Mode::from_config(config.get(Setting::HttpsMode));
        let resolver = Arc::new(Resolver::default());
        let lan_ca = match mode {
            Mode::Lan => {
                Some(lan_ca::LanCa::load_or_create(&storage, keystore, node_id, clock.now_millis())?)
            }
            _ => None,
        };
        let server_config = match mode {
            Mode::Off => None,
            _ => Some(server_config(resolver.clone(), clock.clone())?),
        };
        let hsts = hsts_header(mode, config.get_u64(Setting::HttpsHstsMaxAge));
        let tls = Tls {
            mode,
            resolver,
            config: server_config,
            lan_ca,
            lan_names: Mutex::new((mode == Mode::Lan).then_some(lan_names)),
            lan_wanted: async_channel::bounded(64),
            domain: config.domain().to_string(),
            storage,
            clock,
            sealer,
            hsts,
            redirect: config.get_bool(Setting::HttpsRedirect) && mode != Mode::Off,
            port: AtomicU16::new(config.get_u64(Setting::HttpsPort) as u16),
            handshake_errors: LogBrake::new("failed TLS handshakes"),
            handshakes: handshakes::Handshakes::new(config.get_u64(Setting::HttpsMaxHandshakes) as usize),
            unknown_names: LogBrake::new("TLS handshakes for unknown names"),
            challenges: Mutex::default(),
            stapler: stapler::Stapler::default(),
            ocsp_wake: async_channel::bounded(1),
            reload_lock: Mutex::new(()),
            events,
            acme: (mode == Mode::Acme)
                .then(|| Arc::new(acme::Manager::new(acme::Settings::from_config(config)))),
        };
        if let Some(manager) = &tls.acme {
            let manager = manager.clone();
            tls.resolver.on_miss(Box::new(move |name| manager.request(name)));
        }
        if mode == Mode::Lan {
            let apps = tls.storage.read_blocking(crate::apps::list)?;
            let mut guard = tls.lan_names.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(names) = guard.as_mut() {
                names.names.extend(apps.iter().map(|a| format!("{}.{}", a.name, tls.domain)));
                names.names.sort();
                names.names.dedup();
            }
            drop(guard);
            let wanted = tls.lan_wanted.0.clone();
            tls.resolver.on_miss(Box::new(move |name| {
                let _ = wanted.try_send(name.to_string());
            }));
        }
        tls.renew_lan()?;
        tls.reload()?;
        Ok(tls)
    }

    /// The `Strict-Transport-Security` header for an HTTPS answer to `host`: only for
    /// the node's domain and its subdomains, the names ACME certificates cover. A LAN CA
    /// or a bare address gets none, so a browser that does not trust the CA (yet) can
    /// still click through its warning.
    pub fn hsts_for(&self, host: Option<&str>) -> Option<&http::HeaderValue> {
        let hsts = self.hsts.as_ref()?;
        crate::net::host::under_domain(host?, &self.domain).then_some(hsts)
    }

    /// The configured HSTS header, whatever the host (for the status API).
    pub fn hsts(&self) -> Option<&http::HeaderValue> {
        self.hsts.as_ref()
    }

    /// The rustls configuration, when HTTPS is on.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.config.clone()
    }

    /// The HTTP-01 answer for `token`, while its challenge is open.
    pub fn challenge_answer(&self, token: &str) -> Option<String> {
        self.challenges.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }

    /// Opens (`Some`) or closes (`None`) an HTTP-01 challenge.
    pub fn set_challenge(&self, token: &str, answer: Option<String>) {
        let mut map = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Some(a) => map.insert(token.to_string(), a),
            None => map.remove(token),
        };
    }

    /// The HTTPS port clients reach (the bound one once listening).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// Records the port the HTTPS listener got.
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// In LAN mode, reissues the node's certificate when names changed or 30 days are
    /// left; true when it did.
    pub fn renew_lan(&self) -> Result<bool, TlsError> {
        let names = self.lan_names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (Some(ca), Some(names)) = (&self.lan_ca, names) else { return Ok(false) };
        let now = self.clock.now_millis();
        let row = ca.ensure_leaf(&self.storage, self.sealer.as_ref(), &names.names, &names.ips, now)?;
        let issued = row.updated_at == now;
        if issued {
            self.cert_issued(&row.name, "lan-ca", row.not_after, &row.names);
        }
        Ok(issued)
    }

    /// Publishes `cert.issued`: `issuer` is `acme` or `lan-ca`, `names` what it covers.
    pub(crate) fn cert_issued(&self, name: &str, issuer: &str, not_after: i64, names: &[String]) {
        self.events.notify(
            crate::events::Kind::CertIssued,
            None,
            serde_json::json!({
                "name": name, "issuer": issuer, "names": names,
                "not_after": crate::time::rfc3339(not_after),
            }),
        );
    }

    /// Publishes `cert.failing`: obtaining or renewing `name` failed; the next attempt
    /// is at `next_retry` (Unix ms).
    pub(crate) fn cert_failing(&self, name: &str, error: &str, next_retry: i64) {
        self.events.notify(
            crate::events::Kind::CertFailing,
            None,
            serde_json::json!({
                "name": name, "error": error.chars().take(1024).collect::<String>(),
                "next_retry": crate::time::rfc3339(next_retry),
            }),
        );
    }

    /// Rebuilds the SNI table from `data.db`. A certificate that cannot be served
    /// (expired, damaged) is logged and left out; the others keep serving.
    pub fn reload(&self) -> Result<(), TlsError> {
        let _one_at_a_time = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (rows, kept) = self.storage.read_blocking(|c| {
            Ok::<_, StorageError>((store::list(c)?, stapler::kept(c).unwrap_or_default()))
        })?;
        let mut served = std::collections::HashSet::new();
        let now = self.clock.now_millis();
        let mut table = Table::default();
        // Custom certificates last, so that they win for their names.
        let order = |s: Source| match s {
            Source::Lan => 0,
            Source::Acme => 1,
            Source::Custom => 2,
        };
        let mut rows = rows;
        rows.sort_by_key(|r| order(r.source));
        for row in rows {
            let key_pem = match crate::keys::sealed_text::open(
                self.sealer.as_ref(),
                &store::seal_label(&row.name),
                &row.key_pem,
            ) {
                Ok(pem) => pem,
                Err(err) => {
                    tracing::warn!(name = row.name, error = %err, "the key of a stored certificate cannot be opened; skipped");
                    continue;
                }
            };
            let parsed = match store::parse(&row.chain_pem, &key_pem) {
                Ok(p) => p,
                Err(err) => {
                    tracing::warn!(name = row.name, error = %err, "stored certificate cannot be served; skipped");
                    continue;
                }
            };
            if parsed.not_after <= now {
                tracing::warn!(
                    name = row.name,
                    source = row.source.as_str(),
                    "certificate for '{}' expired on {}; not served (replace it with `fazt cert add`)",
                    row.name,
                    crate::time::rfc3339(parsed.not_after)
                );
                continue;
            }
            if row.source == Source::Lan && self.mode == Mode::Lan {
                table.set_fallback(parsed.key.clone());
            }
            if row.source == Source::Lan && self.mode != Mode::Lan {
                continue;
            }
            let (staple, new) = self.stapler.staple_for(
                kept.get(&row.name).map(Vec::as_slice),
                &row.name,
                &parsed.key.cert,
                now,
            );
            if new {
                let _ = self.ocsp_wake.0.try_send(());
            }
            let key = match staple {
                Some(der) => {
                    Arc::new(rustls::sign::CertifiedKey { ocsp: Some(der), ..(*parsed.key).clone() })
                }
                None => parsed.key.clone(),
            };
            if row.source == Source::Lan && self.mode == Mode::Lan {
                table.set_fallback(key.clone());
            }
            table.insert(&parsed.names, &key);
            served.insert(row.name);
        }
        self.stapler.retain(&served);
        self.resolver.replace(table);
        Ok(())
    }

    /// Keeps OCSP answers fresh for every certificate whose CA runs a responder:
    /// fetches, checks and staples them (see [`stapler`]); runs for the node's life.
    pub async fn staple(self: Arc<Self>) {
        let mut reload = false;
        loop {
            for item in self.stapler.due(self.clock.now_millis()) {
                // Expired staples go at once, not after a round of slow responders.
                if self.stapler.expire(self.clock.now_millis()) {
                    reload = !self.reload_now().await;
                }
                let outcome = blocking::unblock({
                    let subject = item.subject.clone();
                    let clock = self.clock.clone();
                    move || {
                        let request = subject.request()?;
                        let answer = ocsp::fetch(&subject.responder, &request)?;
                        subject.check(&answer, clock.now_millis())
                    }
                })
                .await;
                let now = self.clock.now_millis();
                let name = item.name.clone();
                let written = match self.stapler.record(&item, outcome, now) {
                    stapler::Change::Nothing => continue,
                    stapler::Change::Stapled(der) => {
                        self.storage
                            .write(move |c| Ok::<_, StorageError>(stapler::store(c, &name, &der, now)?))
                            .await
                    }
                    stapler::Change::Revoked => {
                        self.storage.write(move |c| Ok::<_, StorageError>(stapler::forget(c, &name)?)).await
                    }
                };
                if let Err(err) = written {
                    tracing::warn!(name = item.name, error = %err, "keeping the OCSP answer in data.db failed");
                }
                reload = true;
            }
            if self.stapler.expire(self.clock.now_millis()) {
                reload = true;
            }
            // A failed reload is retried within seconds: until it works, handshakes carry
            // the old staples (maybe of a certificate since revoked).
            let mut wait = 3_600_000;
            if reload {
                reload = !self.reload_now().await;
                if reload {
                    wait = 5_000;
                }
            }
            // Sleep until the next check or expiry (at most an hour), or a new certificate.
            let now = self.clock.now_millis();
            if let Some(next) = self.stapler.next_event(now) {
                wait = wait.min((next - now).clamp(1_000, 3_600_000));
            }
            futures_lite::future::or(
                async {
                    let _ = self.ocsp_wake.1.recv().await;
                },
                async {
                    async_io::Timer::after(Duration::from_millis(wait as u64)).await;
                },
            )
            .await;
        }
    }

    /// Rebuilds the SNI table on the blocking pool; false (logged) when it failed.
    async fn reload_now(self: &Arc<Self>) -> bool {
        let tls = self.clone();
        match blocking::unblock(move || tls.reload()).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "reloading certificates after an OCSP check failed; retrying");
                false
            }
        }
    }

    /// Checks and stores a custom certificate for `name`, then serves it.
    pub fn add_custom(&self, name: &str, chain_pem: &str, key_pem: &str) -> Result<store::Stored, TlsError> {
        let name = store::normalise_name(name)?;
        let parsed = store::parse(chain_pem, key_pem)?;
        let now = self.clock.now_millis();
        store::check_for(&parsed, &name, now)?;
        let stored_name = name.clone();
        let (chain, key) = (chain_pem.to_string(), key_pem.to_string());
        let key = crate::keys::sealed_text::seal(self.sealer.as_ref(), &store::seal_label(&name), &key)
            .map_err(TlsError::Keystore)?;
        let row = self.storage.write_blocking(move |c| {
            store::put(c, &stored_name, Source::Custom, &parsed, &chain, &key, now)?;
            Ok::<_, StorageError>(store::get(c, &stored_name)?)
        })?;
        self.reload()?;
        tracing::info!(name, "custom certificate added");
        row.ok_or_else(|| TlsError::Corrupt("the certificate vanished after writing".into()))
    }

    /// Removes the custom certificate for `name`.
    pub fn remove_custom(&self, name: &str) -> Result<(), TlsError> {
        let name = store::normalise_name(name)?;
        let key = name.clone();
        if !self.storage.write_blocking(move |c| {
            let removed = store::delete(c, &key, Source::Custom)?;
            stapler::forget(c, &key)?;
            Ok::<_, StorageError>(removed)
        })? {
            return Err(TlsError::NotFound(name));
        }
        self.reload()?;
        tracing::info!(name, "custom certificate removed");
        Ok(())
    }

    /// Every stored certificate (without keys).
    pub fn list(&self) -> Result<Vec<store::Stored>, TlsError> {
        Ok(self.storage.read_blocking(|c| Ok::<_, StorageError>(store::list(c)?))?)
    }

    /// Asks for a certificate covering `name` (a new app, or a handshake for a name
    /// without one); never blocks. ACME obtains one; LAN mode reissues its certificate.
    pub fn want(&self, name: &str) {
        match (&self.acme, self.mode) {
            (Some(manager), _) => manager.request(name),
            (None, Mode::Lan) => {
                let _ = self.lan_wanted.0.try_send(name.to_string());
            }
            _ => {}
        }
    }

    /// In LAN mode: reissues the certificate for newly wanted app names, and checks it
    /// twice a day for renewal.
    pub async fn maintain(self: Arc<Self>) {
        const EVERY: Duration = Duration::from_secs(12 * 3600);
        loop {
            let asked = futures_lite::future::or(async { self.lan_wanted.1.recv().await.ok() }, async {
                async_io::Timer::after(EVERY).await;
                None
            })
            .await;
            let tls = self.clone();
            let result = blocking::unblock(move || {
                if let Some(name) = asked {
                    let covered = tls
                        .lan_names
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_ref()
                        .is_some_and(|n| n.names.contains(&name));
                    if covered {
                        return Ok(());
                    }
                    if !app_name_allowed(&tls, &tls.domain, &name) {
                        tls.unknown_names.warn(&format!(
                            "TLS handshake for unknown name '{name}': served the LAN certificate, which does not cover it"
                        ));
                        return Ok(());
                    }
                    if let Some(names) = tls.lan_names.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        names.names.push(name);
                        names.names.sort();
                        names.names.dedup();
                    }
                }
                tls.renew_lan().and_then(|_| tls.reload())
            })
            .await;
            if let Err(err) = result {
                tracing::warn!(error = %err, "renewing the LAN certificate failed; retrying later");
                // Retried at the next name asked for, or at the next check.
                let next = self.clock.now_millis() + EVERY.as_millis() as i64;
                self.cert_failing(lan_ca::LEAF_ROW, &err.to_string(), next);
            }
        }
    }
}

/// True for names under `domain` a certificate may be made or obtained for: the
/// domain, `admin.` and `root.`, and one label for each existing app (so strangers'
/// SNI cannot spend a CA's limits or grow the LAN certificate).
pub(crate) fn app_name_allowed(tls: &Tls, domain: &str, name: &str) -> bool {
    if name == domain {
        return true;
    }
    let Some(label) = name.strip_suffix(domain).and_then(|r| r.strip_suffix('.')) else { return false };
    if label.contains('.') || !crate::rules::names::is_dns_label(label) {
        return false;
    }
    if label == "admin" || label == "root" {
        return true;
    }
    let label = label.to_string();
    tls.storage
        .read_blocking(move |c| {
            Ok::<bool, StorageError>(
                c.query_row(
                    "SELECT 1 FROM apps WHERE name = ?1 AND deleted_at IS NULL",
                    [&label],
                    |_| Ok(()),
                )
                .is_ok(),
            )
        })
        .unwrap_or(false)
}

/// A TLS client configuration trusting only the certificates in the PEM file `path`
/// (a LAN CA, or a private ACME CA): for the CLI and the ACME client.
pub fn client_config_trusting(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: rustls_pki_types::CertificateDer<'static> =
            cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The rustls server configuration: ring, TLS 1.3 and 1.2, h2 and http/1.1, session
/// resumption by tickets and by a bounded cache, the kernel clock.
fn server_config(resolver: Arc<Resolver>, clock: Arc<Clock>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_details(provider, Arc::new(time::KernelTime(clock)))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    // acme-tls/1 last: only an ACME validator offers it (and gets nothing else).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), resolver::ACME_TLS_ALPN.to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(1024);
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_with_acme_and_a_max_age() {
        assert_eq!(hsts_header(Mode::Acme, 31_536_000).unwrap(), "max-age=31536000");
        assert_eq!(hsts_header(Mode::Acme, 0), None, "https.hsts_max_age 0 turns it off");
        assert_eq!(hsts_header(Mode::Lan, 600), None, "never with the LAN CA");
        assert_eq!(hsts_header(Mode::Off, 600), None);
    }
}
