//! Certificates from an ACME CA (RFC 8555; Let's Encrypt by default): obtained for the
//! domain and `admin.<domain>` at start and for each app's name on first use, renewed 30
//! days before expiry, backed off on errors (rate limits included), all in `data.db`.
//!
//! The protocol is instant-acme's; its HTTP goes through [`UreqHttp`] (ureq on the
//! `blocking` pool), so no tokio runtime is involved. HTTP-01 answers are served by the
//! node's plain HTTP listener (see [`super::redirect`]).

use super::store::{self, Source};
use super::Tls;
use crate::config::Setting;
use crate::storage::StorageError;
use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus,
};
use serde::Serialize;
use std::collections::BTreeSet;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Let's Encrypt's production directory, the default of `acme.directory_url`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Longest wait between retries after errors.
const MAX_BACKOFF_SECS: u64 = 6 * 3600;

/// Largest answer read from the CA (certificates chains are a few KB).
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// What the node knows about its ACME work, shown by `fazt server status` and the API.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Status {
    /// The directory URL.
    pub directory: String,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When it failed (RFC 3339).
    pub last_error_at: Option<String>,
    /// True when the CA said "rate limited".
    pub rate_limited: bool,
    /// Failed attempts in a row.
    pub failures: u32,
    /// When the next attempt is due (RFC 3339), while backing off.
    pub next_attempt_at: Option<String>,
    /// The last name a certificate was obtained for, and when.
    pub last_issued: Option<String>,
    /// When (RFC 3339).
    pub last_issued_at: Option<String>,
}

/// ACME settings from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `acme.directory_url`.
    pub directory: String,
    /// `acme.email` (may be empty).
    pub email: String,
    /// `acme.ca_file`: extra roots to trust for the directory (a test CA such as pebble).
    pub ca_file: String,
    /// `acme.retry_secs`: first wait after an error (doubling up to 6 h).
    pub retry_secs: u64,
    /// `acme.check_secs`: how often certificates are checked for renewal.
    pub check_secs: u64,
    /// `acme.challenge`: `http-01` (port 80) or `tls-alpn-01` (port 443).
    pub challenge: ChallengeType,
}

impl Settings {
    /// From the node config.
    pub fn from_config(config: &crate::config::NodeConfig) -> Self {
        Settings {
            directory: config.get(Setting::AcmeDirectoryUrl).to_string(),
            email: config.get(Setting::AcmeEmail).to_string(),
            ca_file: config.get(Setting::AcmeCaFile).to_string(),
            retry_secs: config.get_u64(Setting::AcmeRetrySecs).max(1),
            check_secs: config.get_u64(Setting::AcmeCheckSecs).max(1),
            challenge: match config.get(Setting::AcmeChallenge) {
                "tls-alpn-01" => ChallengeType::TlsAlpn01,
                _ => ChallengeType::Http01,
            },
        }
    }
}

/// Why obtaining a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with a problem or could not be reached.
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    /// The CA refused an authorization or the order.
    #[error("ACME: {0}")]
    Refused(String),
    /// Waiting for the CA took too long.
    #[error("ACME: the CA did not finish the order in time ({0})")]
    Timeout(&'static str),
    /// The certificate could not be made or stored.
    #[error(transparent)]
    Tls(#[from] super::TlsError),
    /// Reading or writing `data.db` failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The trust file for the CA could not be read.
    #[error("acme.ca_file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
}

impl AcmeError {
    /// True for the CA's "too many requests" answer.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            AcmeError::Protocol(instant_acme::Error::Api(p)) => {
                p.r#type.as_deref().is_some_and(|t| t.ends_with(":rateLimited")) || p.status == Some(429)
            }
            _ => false,
        }
    }
}

/// instant-acme's HTTP client: ureq, run on the `blocking` pool.
#[derive(Debug)]
pub struct UreqHttp {
    agent: ureq::Agent,
}

impl UreqHttp {
    /// A client trusting the system's web roots, plus `ca_file` when given.
    pub fn new(ca_file: &str) -> Result<Self, AcmeError> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .redirects(0);
        if !ca_file.is_empty() {
            let config = super::client_config_trusting(std::path::Path::new(ca_file))
                .map_err(|why| AcmeError::CaFile { path: ca_file.to_string(), why })?;
            builder = builder.tls_config(config);
        }
        Ok(UreqHttp { agent: builder.build() })
    }
}

fn other(err: impl std::fmt::Display) -> instant_acme::Error {
    instant_acme::Error::Other(err.to_string().into())
}

impl HttpClient for UreqHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let agent = self.agent.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map_err(other)?.to_bytes();
            blocking::unblock(move || {
                let mut request = agent.request(parts.method.as_str(), &parts.uri.to_string());
                for (name, value) in &parts.headers {
                    request = request.set(name.as_str(), value.to_str().map_err(other)?);
                }
                let response = match request.send_bytes(&body) {
                    Ok(r) => r,
                    Err(ureq::Error::Status(_, r)) => r,
                    Err(ureq::Error::Transport(t)) => return Err(other(t)),
                };
                let mut builder = http::Response::builder().status(response.status());
                for name in response.headers_names() {
                    for value in response.all(&name) {
                        builder = builder.header(name.as_str(), value);
                    }
                }
                let mut bytes = Vec::new();
                response.into_reader().take(MAX_ANSWER_BYTES).read_to_end(&mut bytes).map_err(other)?;
                let (parts, ()) = builder.body(()).map_err(other)?.into_parts();
                Ok(BytesResponse { parts, body: Box::new(Bytes::from(bytes)) })
            })
            .await
        })
    }
}

/// The ACME worker of a node: what it is asked for, and its status.
pub struct Manager {
    settings: Settings,
    requests: (async_channel::Sender<String>, async_channel::Receiver<String>),
    status: Mutex<Status>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("directory", &self.settings.directory).finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager for `settings`.
    pub fn new(settings: Settings) -> Self {
        let status = Status { directory: settings.directory.clone(), ..Status::default() };
        Manager { settings, requests: async_channel::bounded(64), status: Mutex::new(status) }
    }

    /// Asks for a certificate for `name` (from a handshake: never blocks; a full queue
    /// drops the request, and the next handshake asks again).
    pub fn request(&self, name: &str) {
        let _ = self.requests.0.try_send(name.to_string());
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_status(&self, tls: &Tls, f: impl FnOnce(&mut Status)) {
        let status = {
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s);
            s.clone()
        };
        let json = serde_json::to_string(&status).unwrap_or_default();
        if let Err(err) = tls.storage.write_blocking(move |c| {
            crate::storage::state::set(c, crate::storage::state::StateKey::AcmeStatus, &json)?;
            Ok::<_, StorageError>(())
        }) {
            tracing::warn!(error = %err, "cannot record the ACME status");
        }
    }
}

/// The names that need a certificate now: wanted, and without one that has more than
/// 30 days left (a custom certificate counts).
fn due(tls: &Tls, wanted: &BTreeSet<String>, now: i64) -> Vec<String> {
    let rows = tls.list().unwrap_or_default();
    wanted
        .iter()
        .filter(|name| {
            !rows.iter().any(|r| {
                r.source != Source::Lan
                    && r.names.iter().any(|p| store::covers(p, name))
                    && r.not_after - now > super::RENEW_BEFORE_MS
            })
        })
        .cloned()
        .collect()
}

/// Runs the ACME work of a node forever: at start, on requests from handshakes, and
/// every `acme.check_secs` for renewals.
pub async fn run(tls: Arc<Tls>, manager: Arc<Manager>, domain: String) {
    let mut wanted: BTreeSet<String> = [domain.clone(), format!("admin.{domain}")].into_iter().collect();
    for row in tls.list().unwrap_or_default().into_iter().filter(|r| r.source == Source::Acme) {
        wanted.insert(row.name);
    }
    let mut backoff_until: Option<i64> = None;
    loop {
        // Take every queued request first.
        while let Ok(name) = manager.requests.1.try_recv() {
            if !wanted.contains(&name) {
                let (t, d, n) = (tls.clone(), domain.clone(), name.clone());
                if blocking::unblock(move || super::app_name_allowed(&t, &d, &n)).await {
                    wanted.insert(name);
                }
            }
        }
        let now = tls.clock.now_millis();
        let waiting = backoff_until.is_some_and(|t| t > now);
        let todo = if waiting { Vec::new() } else { due(&tls, &wanted, now) };
        if todo.is_empty() {
            let sleep = match backoff_until.filter(|t| *t > now) {
                Some(t) => Duration::from_millis((t - now) as u64),
                None => Duration::from_secs(manager.settings.check_secs),
            };
            let recv = async {
                if let Ok(name) = manager.requests.1.recv().await {
                    // Put it back for the top of the loop.
                    let _ = manager.requests.0.try_send(name);
                }
            };
            futures_lite::future::or(recv, async {
                async_io::Timer::after(sleep).await;
            })
            .await;
            // A request during backoff waits for the backoff to end.
            if backoff_until.is_some_and(|t| t > tls.clock.now_millis()) {
                async_io::Timer::after(Duration::from_millis(200)).await;
            }
            continue;
        }
        for name in todo {
            match obtain(&tls, &manager.settings, &name).await {
                Ok(not_after) => {
                    backoff_until = None;
                    let at = crate::time::rfc3339(tls.clock.now_millis());
                    tracing::info!(
                        name,
                        until = crate::time::rfc3339(not_after),
                        "ACME certificate obtained"
                    );
                    tls.cert_issued(&name, "acme", not_after, std::slice::from_ref(&name));
                    manager.set_status(&tls, |s| {
                        s.failures = 0;
                        s.last_error = None;
                        s.rate_limited = false;
                        s.next_attempt_at = None;
                        s.last_issued = Some(name.clone());
                        s.last_issued_at = Some(at);
                    });
                }
                Err(err) => {
                    let failures = manager.status().failures + 1;
                    let base = manager.settings.retry_secs.saturating_mul(1 << (failures - 1).min(20));
                    let mut wait = base.min(MAX_BACKOFF_SECS);
                    if err.is_rate_limit() {
                        // The CA's limits reset hourly at best: never hammer it.
                        wait = wait.max(3600.min(MAX_BACKOFF_SECS));
                    }
                    let now = tls.clock.now_millis();
                    let next = now + (wait as i64) * 1000;
                    backoff_until = Some(next);
                    tracing::warn!(name, error = %err, retry_in_secs = wait, rate_limited = err.is_rate_limit(), "obtaining a certificate failed; backing off");
                    let message = err.to_string();
                    tls.cert_failing(&name, &message, next);
                    manager.set_status(&tls, |s| {
                        s.failures = failures;
                        s.last_error = Some(format!("{name}: {message}"));
                        s.last_error_at = Some(crate::time::rfc3339(now));
                        s.rate_limited = err.is_rate_limit();
                        s.next_attempt_at = Some(crate::time::rfc3339(next));
                    });
                    break;
                }
            }
        }
    }
}

/// The account for the directory: stored credentials (the account key) when there
/// are, a new account otherwise.
async fn account(tls: &Tls, settings: &Settings) -> Result<Account, AcmeError> {
    let directory = settings.directory.clone();
    let stored: Option<String> = tls.storage.read_blocking(|c| {
        use rusqlite::OptionalExtension;
        Ok::<_, StorageError>(
            c.query_row("SELECT credentials FROM acme_accounts WHERE directory = ?1", [&directory], |r| {
                r.get(0)
            })
            .optional()?,
        )
    })?;
    let http = || UreqHttp::new(&settings.ca_file).map(|h| Box::new(h) as Box<dyn HttpClient>);
    let label = format!("acme_accounts:{directory}");
    if let Some(stored) = stored {
        let json = crate::keys::sealed_text::open(tls.sealer.as_ref(), &label, &stored)
            .map_err(super::TlsError::Keystore)?;
        let credentials: AccountCredentials = serde_json::from_str(&json)
            .map_err(|e| super::TlsError::Corrupt(format!("stored ACME account: {e}")))?;
        return Ok(Account::builder_with_http(http()?).from_credentials(credentials).await?);
    }
    let contact = format!("mailto:{}", settings.email);
    let contacts: Vec<&str> = if settings.email.is_empty() { vec![] } else { vec![contact.as_str()] };
    let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) =
        Account::builder_with_http(http()?).create(&new, settings.directory.clone(), None).await?;
    let json = serde_json::to_string(&credentials).map_err(|e| super::TlsError::Corrupt(e.to_string()))?;
    let json = crate::keys::sealed_text::seal(tls.sealer.as_ref(), &label, &json)
        .map_err(super::TlsError::Keystore)?;
    let now = tls.clock.now_millis();
    tls.storage.write_blocking(move |c| {
        c.execute(
            "INSERT OR REPLACE INTO acme_accounts(directory, credentials, created_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![directory, json, now],
        )?;
        Ok::<_, StorageError>(())
    })?;
    tracing::info!(directory = settings.directory, "ACME account created");
    Ok(account)
}

/// Obtains and stores a certificate for `name` with HTTP-01; returns its expiry.
async fn obtain(tls: &Arc<Tls>, settings: &Settings, name: &str) -> Result<i64, AcmeError> {
    let account = account(tls, settings).await?;
    let ids = [Identifier::Dns(name.to_string())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await?;
    let mut tokens = Vec::new();
    let mut alpn_open = false;
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(AcmeError::Refused(format!("authorization for {name} is {other:?}"))),
            }
            let kind = settings.challenge.clone();
            let mut challenge = authz
                .challenge(kind.clone())
                .ok_or_else(|| AcmeError::Refused(format!("the CA offers no {kind:?} challenge")))?;
            let key_authorization = challenge.key_authorization();
            if kind == ChallengeType::TlsAlpn01 {
                tls.resolver.set_alpn_challenge(
                    name,
                    Some(alpn_certificate(name, key_authorization.digest().as_ref())?),
                );
                alpn_open = true;
            } else {
                tls.set_challenge(&challenge.token, Some(key_authorization.as_str().to_string()));
                tokens.push(challenge.token.clone());
            }
            challenge.set_ready().await?;
        }
        wait_for(&mut order, |s| matches!(s, OrderStatus::Ready | OrderStatus::Valid), "validation").await?;
        let key = rcgen::KeyPair::generate().map_err(super::TlsError::Rcgen)?;
        let csr = rcgen::CertificateParams::new(vec![name.to_string()])
            .and_then(|p| p.serialize_request(&key))
            .map_err(super::TlsError::Rcgen)?;
        if order.state().status == OrderStatus::Ready {
            order.finalize_csr(csr.der()).await?;
        }
        let mut chain = None;
        for _ in 0..120 {
            if let Some(pem) = order.certificate().await? {
                chain = Some(pem);
                break;
            }
            async_io::Timer::after(Duration::from_millis(500)).await;
        }
        let chain = chain.ok_or(AcmeError::Timeout("certificate"))?;
        Ok((chain, key.serialize_pem()))
    }
    .await;
    for token in &tokens {
        tls.set_challenge(token, None);
    }
    if alpn_open {
        tls.resolver.set_alpn_challenge(name, None);
    }
    let (chain, key) = result?;
    let parsed = store::parse(&chain, &key).map_err(super::TlsError::Cert)?;
    let key = crate::keys::sealed_text::seal(tls.sealer.as_ref(), &store::seal_label(name), &key)
        .map_err(super::TlsError::Keystore)?;
    let not_after = parsed.not_after;
    let now = tls.clock.now_millis();
    let row = name.to_string();
    tls.storage.write_blocking(move |c| {
        store::put(c, &row, Source::Acme, &parsed, &chain, &key, now)?;
        Ok::<_, StorageError>(())
    })?;
    let t = tls.clone();
    blocking::unblock(move || t.reload()).await?;
    Ok(not_after)
}

/// The self-signed TLS-ALPN-01 certificate for `name` (RFC 8737 §3): the name, and
/// the SHA-256 of the key authorization in a critical acmeIdentifier extension.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Arc<rustls::sign::CertifiedKey>, AcmeError> {
    let key = rcgen::KeyPair::generate().map_err(super::TlsError::Rcgen)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(super::TlsError::Rcgen)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(super::TlsError::Rcgen)?;
    // Built directly: webpki (behind `keys_match`) refuses the critical acmeIdentifier
    // extension it does not know, which is exactly what this certificate must carry.
    let der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| super::TlsError::Cert(store::CertError::BadKey(e.to_string())))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing)))
}

/// Polls the order until `done` (invalid is an error), at most about a minute.
async fn wait_for(
    order: &mut instant_acme::Order,
    done: impl Fn(OrderStatus) -> bool,
    what: &'static str,
) -> Result<(), AcmeError> {
    for _ in 0..120 {
        let state = order.refresh().await?;
        if done(state.status) {
            return Ok(());
        }
        if state.status == OrderStatus::Invalid {
            let why = state.error.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "no reason given".into());
            return Err(AcmeError::Refused(format!("the order became invalid: {why}")));
        }
        async_io::Timer::after(Duration::from_millis(500)).await;
    }
    Err(AcmeError::Timeout(what))
}
