//! Login, logout and request authentication.

use super::read_json;
use crate::kernel::Kernel;
use crate::net::response::{ok, ApiError, Resp};
use crate::net::Web;
use crate::security::sessions;
use crate::storage::Storage;
use crate::syscall::sessions::Guards;
use crate::syscall::{self, Caller};
use http::{header, HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    username: String,
    password: String,
}

/// The session secrets the request carries (see [`sessions::presented`]).
fn session_cookies(req: &Request<Incoming>) -> Vec<String> {
    sessions::presented(req.headers()).into_iter().map(str::to_string).collect()
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    // The scheme is case-insensitive (RFC 9110 section 11.1).
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// True when the request carries the header a cross-site form cannot send.
fn has_csrf_header(req: &Request<Incoming>) -> bool {
    req.headers().get("x-requested-with").is_some_and(|v| v.as_bytes() == b"fazt")
}

/// True when the request carries any credentials.
pub fn has_credentials(req: &Request<Incoming>) -> bool {
    bearer(req).is_some() || !sessions::presented(req.headers()).is_empty()
}

/// `POST /api/login`.
pub async fn login(web: &Web, peer: SocketAddr, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let kernel = &web.kernel;
    let secure = crate::net::over_tls(&req);
    let guards =
        Guards { limiter: &kernel.login_limiter, checks: &kernel.password_checks, setup: &kernel.setup };
    let body: LoginBody = read_json(&web.http, req).await?;
    let (username, secret) = syscall::sessions::login(
        &kernel.storage,
        &kernel.clock,
        &kernel.events,
        guards,
        peer.ip(),
        &body.username,
        body.password,
    )
    .await?;
    let mut resp = ok(serde_json::json!({ "user": username }));
    if let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(&secret, secure)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /api/logout`: ends the session (always answers 200).
pub async fn logout(storage: &Arc<Storage>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    // Apps on sibling subdomains count as same-site, so without this check any deployed
    // page could log the admin out.
    if !has_csrf_header(&req) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing X-Requested-With: fazt header"));
    }
    // Every session the browser presented ends, the admin's own among any tossed ones.
    syscall::sessions::logout(storage, session_cookies(&req)).await?;
    let mut resp = ok(serde_json::json!({}));
    for expired in sessions::clear_cookies(crate::net::over_tls(&req)) {
        if let Ok(v) = HeaderValue::from_str(&expired) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// Authenticates a request by token or session cookie.
pub async fn authenticate(kernel: &Kernel, req: &Request<Incoming>) -> Result<Caller, ApiError> {
    if let Some(token) = bearer(req) {
        return Ok(syscall::sessions::token(&kernel.storage, &kernel.clock, &kernel.setup, token).await?);
    }
    let caller = syscall::sessions::session(&kernel.storage, &kernel.clock, session_cookies(req)).await?;
    // Cookies ride along on cross-site requests; a custom header cannot be sent
    // cross-site without a CORS preflight we never grant. So state changes need it.
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !has_csrf_header(req) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing X-Requested-With: fazt header"));
    }
    Ok(caller)
}

/// `GET /api/me`.
pub async fn me(storage: &Arc<Storage>, caller: &Caller) -> Result<Resp, ApiError> {
    match caller {
        Caller::Token { id } => Ok(ok(serde_json::json!({ "user": "token", "token_id": id }))),
        _ => {
            let name = syscall::sessions::whoami(storage, caller).await?;
            Ok(ok(serde_json::json!({ "user": name.unwrap_or_default() })))
        }
    }
}
