//! `/api/tls`: HTTPS status, custom certificates and the LAN CA certificate.

use super::read_json;
use crate::net::response::{json, ok, ApiError, Body, Resp};
use crate::net::tls::{stapler::OcspStatus, store::Stored, Tls, TlsError};
use crate::net::Web;
use crate::syscall::certs::{self, CertStore};
use crate::syscall::{Caller, Kind, SyscallError};
use crate::time::{rfc3339, Clock, UnixMillis};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The body of `POST /api/tls/certs`.
#[derive(Deserialize)]
struct AddBody {
    domain: String,
    cert_pem: String,
    key_pem: String,
}

/// A certificate as the API shows it; `ocsp` is null when its CA names no responder.
fn cert_json(c: &Stored, ocsp: &HashMap<String, OcspStatus>) -> serde_json::Value {
    serde_json::json!({
        "name": c.name, "source": c.source, "names": c.names,
        "not_before": rfc3339(c.not_before), "not_after": rfc3339(c.not_after),
        "updated_at": rfc3339(c.updated_at),
        "ocsp": ocsp.get(&c.name),
    })
}

impl From<TlsError> for SyscallError {
    fn from(err: TlsError) -> Self {
        match err {
            TlsError::Cert(e) => SyscallError::refused(Kind::Invalid, "bad_certificate", e.to_string()),
            TlsError::NotFound(_) => SyscallError::not_found(err.to_string()),
            TlsError::Storage(e) => e.into(),
            other => {
                tracing::error!(error = %other, "TLS error");
                SyscallError::refused(Kind::Internal, "tls_error", other.to_string())
            }
        }
    }
}

/// The certificate syscalls reach the store through this.
impl CertStore for Tls {
    fn certs(&self, now: UnixMillis) -> Result<Vec<serde_json::Value>, SyscallError> {
        let ocsp = self.stapler.status(now);
        Ok(self.list()?.iter().map(|c| cert_json(c, &ocsp)).collect())
    }

    fn add(
        &self,
        domain: &str,
        chain_pem: &str,
        key_pem: &str,
        now: UnixMillis,
    ) -> Result<serde_json::Value, SyscallError> {
        let stored = self.add_custom(domain, chain_pem, key_pem)?;
        Ok(cert_json(&stored, &self.stapler.status(now)))
    }

    fn remove(&self, name: &str) -> Result<(), SyscallError> {
        Ok(self.remove_custom(name)?)
    }
}

/// Every certificate through the syscall, off the executor.
async fn certs(
    tls: &Arc<Tls>,
    clock: &Arc<Clock>,
    caller: &Caller,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let (tls, clock, caller) = (tls.clone(), clock.clone(), caller.clone());
    Ok(blocking::unblock(move || certs::list(&*tls, &clock, &caller)).await?)
}

/// `GET /api/tls`: mode, port, LAN CA fingerprint and every certificate.
pub async fn status(tls: &Arc<Tls>, clock: &Arc<Clock>, caller: &Caller) -> Result<Resp, ApiError> {
    let certs = certs(tls, clock, caller).await?;
    Ok(ok(serde_json::json!({
        "mode": tls.mode.as_str(),
        "port": tls.server_config().map(|_| tls.port()),
        "redirect": tls.redirect,
        "hsts": tls.hsts().and_then(|h| h.to_str().ok()),
        "lan_ca": tls.lan_ca.as_ref().map(|ca| serde_json::json!({
            "fingerprint_sha256": ca.fingerprint,
            "download": "/api/tls/ca.pem",
        })),
        "certs": certs,
        "acme": tls.acme.as_ref().map(|m| m.status()),
        "handshakes": {
            "in_progress": tls.handshakes.in_progress(),
            "max": tls.handshakes.max(),
            "evicted": tls.handshakes.evicted(),
        },
    })))
}

/// `GET /api/tls/certs`.
pub async fn list(tls: &Arc<Tls>, clock: &Arc<Clock>, caller: &Caller) -> Result<Resp, ApiError> {
    Ok(ok(serde_json::json!({ "certs": certs(tls, clock, caller).await? })))
}

/// `POST /api/tls/certs`: add (or replace) a custom certificate; checked first, so a
/// refused one changes nothing.
pub async fn add(web: &Web, caller: &Caller, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body: AddBody = read_json(&web.http, req).await?;
    let (tls, clock, caller) = (web.tls.clone(), web.kernel.clock.clone(), caller.clone());
    let cert = blocking::unblock(move || {
        certs::add(&*tls, &clock, &caller, &body.domain, &body.cert_pem, &body.key_pem)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "cert": cert })))
}

/// `DELETE /api/tls/certs/<name>`.
pub async fn remove(tls: &Arc<Tls>, caller: &Caller, name: &str) -> Result<Resp, ApiError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
    let (tls, caller) = (tls.clone(), caller.clone());
    blocking::unblock(move || certs::remove(&*tls, &caller, &name)).await?;
    Ok(ok(serde_json::json!({ "removed": true })))
}

/// Unauthenticated `GET /api/tls/ca.pem`: the LAN CA certificate, to install as trusted
/// (public by nature; compare its fingerprint with the one the node prints).
pub fn ca_pem(tls: &Tls) -> Result<Resp, ApiError> {
    let ca = tls.lan_ca.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_lan_ca", "this node has no LAN CA (https.mode is not lan)")
    })?;
    let mut resp = Response::new(Body::new(Bytes::from(ca.cert_pem.clone())));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"fazt-lan-ca.pem\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
