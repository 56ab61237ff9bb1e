//! Plain HTTP beside HTTPS: ACME HTTP-01 challenge answers, and redirects to HTTPS for
//! the node's own names when `https.redirect` is on.

use crate::net::host::{route, Route};
use crate::net::response::{Body, Resp};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};

/// Where HTTP-01 challenges are fetched (RFC 8555 §8.3).
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Answers a plain HTTP request here when it is an ACME challenge or must be
/// redirected; `None` lets it through to the apps. `domain` is the node's.
pub fn intercept<B>(tls: &super::Tls, domain: &str, req: &Request<B>) -> Option<Resp> {
    if let Some(token) = req.uri().path().strip_prefix(CHALLENGE_PREFIX) {
        if let Some(answer) = tls.challenge_answer(token) {
            let mut resp = Response::new(Body::new(Bytes::from(answer)));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            return Some(resp);
        }
    }
    // The LAN CA stays reachable over plain HTTP: a device has to fetch it before it
    // can trust anything served over HTTPS.
    if !tls.redirect || req.uri().path() == "/api/tls/ca.pem" {
        return None;
    }
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok())?;
    let name = host.rsplit_once(':').map_or(host, |(n, p)| if p.parse::<u16>().is_ok() { n } else { host });
    // Only the node's own names: an IP address or a stranger's name has no certificate.
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return None;
    }
    match route(Some(host), domain) {
        Ok(Route::Admin) | Ok(Route::App(_)) => {}
        _ => return None,
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let authority = match tls.port() {
        443 => name,
        port => format!("{name}:{port}"),
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = HeaderValue::from_str(&format!("https://{authority}{path}")).ok()?;
    // 308 keeps the method and body (a POST stays a POST), unlike 301.
    let mut resp = Response::new(Body::new(Bytes::new()));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(header::LOCATION, location);
    Some(resp)
}
