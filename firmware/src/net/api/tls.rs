//! `/api/tls`: HTTPS status, custom certificates and the LAN CA certificate.

use super::read_json;
use crate::kernel::Kernel;
use crate::net::response::{json, ok, ApiError, Body, Resp};
use crate::net::tls::{stapler::OcspStatus, store::Stored, TlsError};
use crate::time::rfc3339;
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

fn certs_json(kernel: &Kernel, certs: &[Stored]) -> Vec<serde_json::Value> {
    let ocsp = kernel.tls.stapler.status(kernel.clock.now_millis());
    certs.iter().map(|c| cert_json(c, &ocsp)).collect()
}

impl From<TlsError> for ApiError {
    fn from(err: TlsError) -> Self {
        match err {
            TlsError::Cert(e) => ApiError::bad_request("bad_certificate", e.to_string()),
            TlsError::NotFound(_) => ApiError::not_found(err.to_string()),
            TlsError::Storage(e) => e.into(),
            other => {
                tracing::error!(error = %other, "TLS error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "tls_error", other.to_string())
            }
        }
    }
}

/// `GET /api/tls`: mode, port, LAN CA fingerprint and every certificate.
pub async fn status(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let tls = kernel.tls.clone();
    let certs = blocking::unblock(move || tls.list()).await?;
    let tls = &kernel.tls;
    Ok(ok(serde_json::json!({
        "mode": tls.mode.as_str(),
        "port": tls.server_config().map(|_| tls.port()),
        "redirect": tls.redirect,
        "hsts": tls.hsts().and_then(|h| h.to_str().ok()),
        "lan_ca": tls.lan_ca.as_ref().map(|ca| serde_json::json!({
            "fingerprint_sha256": ca.fingerprint,
            "download": "/api/tls/ca.pem",
        })),
        "certs": certs_json(kernel, &certs),
        "acme": tls.acme.as_ref().map(|m| m.status()),
        "handshakes": {
            "in_progress": tls.handshakes.in_progress(),
            "max": tls.handshakes.max(),
            "evicted": tls.handshakes.evicted(),
        },
    })))
}

/// `GET /api/tls/certs`.
pub async fn list(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let tls = kernel.tls.clone();
    let certs = blocking::unblock(move || tls.list()).await?;
    Ok(ok(serde_json::json!({ "certs": certs_json(kernel, &certs) })))
}

/// `POST /api/tls/certs`: add (or replace) a custom certificate; checked first, so a
/// refused one changes nothing.
pub async fn add(kernel: &Arc<Kernel>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body: AddBody = read_json(kernel, req).await?;
    let tls = kernel.tls.clone();
    let stored =
        blocking::unblock(move || tls.add_custom(&body.domain, &body.cert_pem, &body.key_pem)).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "cert": cert_json(&stored, &kernel.tls.stapler.status(kernel.clock.now_millis())) }),
    ))
}

/// `DELETE /api/tls/certs/<name>`.
pub async fn remove(kernel: &Arc<Kernel>, name: &str) -> Result<Resp, ApiError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
    let tls = kernel.tls.clone();
    blocking::unblock(move || tls.remove_custom(&name)).await?;
    Ok(ok(serde_json::json!({ "removed": true })))
}

/// Unauthenticated `GET /api/tls/ca.pem`: the LAN CA certificate, to install as trusted
/// (public by nature; compare its fingerprint with the one the node prints).
pub fn ca_pem(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let ca = kernel.tls.lan_ca.as_ref().ok_or_else(|| {
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
