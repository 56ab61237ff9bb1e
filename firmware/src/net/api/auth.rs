//! Login, logout and request authentication.

use super::read_json;
use crate::kernel::Kernel;
use crate::net::response::{ok, ApiError, Resp};
use crate::security::{sessions, tokens, users};
use http::{header, HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A browser session of a user.
    Session {
        /// The user's id.
        user_id: String,
    },
    /// An API token.
    Token {
        /// The token's id.
        token_id: String,
    },
}

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
pub async fn login(kernel: &Arc<Kernel>, peer: SocketAddr, req: Request<Incoming>) -> Result<Resp, ApiError> {
    if let Err(wait) = kernel.login_limiter.attempt(peer.ip(), kernel.clock.now_millis()) {
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many login attempts; try again in {wait} s"),
        );
        err.retry_after = Some(wait);
        return Err(err);
    }
    let secure = crate::net::over_tls(&req);
    let body: LoginBody = read_json(kernel, req).await?;
    let username = if body.username.is_empty() { "admin".to_string() } else { body.username };
    // argon2 takes tens of milliseconds and a lot of memory: it runs on the blocking
    // pool, a few at a time, never inside the database writer (where it would stall
    // every write of the node).
    let name = username.clone();
    let record = kernel.storage.read(move |conn| users::login_record(conn, &name)).await?;
    let user_id = {
        let _check = kernel.password_checks.acquire().await;
        let password = body.password;
        blocking::unblock(move || users::verify_login(record, &password)).await
    };
    let now = kernel.clock.now_millis();
    let session = match user_id {
        Some(user_id) => Some(kernel.storage.write(move |conn| sessions::create(conn, &user_id, now)).await?),
        None => None,
    };
    let Some(secret) = session else {
        tracing::warn!(%peer, "failed admin login");
        // The name as typed, cut: it comes from whoever is guessing.
        let user: String = username.chars().take(64).collect();
        kernel.events.notify(
            crate::events::Kind::LoginFailed,
            None,
            serde_json::json!({"user": user, "ip": peer.ip().to_string()}),
        );
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials", "wrong username or password"));
    };
    kernel.setup.claim(&kernel.storage, "password login").await;
    let mut resp = ok(serde_json::json!({ "user": username }));
    if let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(&secret, secure)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /api/logout`: ends the session (always answers 200).
pub async fn logout(kernel: &Arc<Kernel>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    // Apps on sibling subdomains count as same-site, so without this check any deployed
    // page could log the admin out.
    if !has_csrf_header(&req) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing X-Requested-With: fazt header"));
    }
    // Every session the browser presented ends, the admin's own among any tossed ones.
    let secrets = session_cookies(&req);
    if !secrets.is_empty() {
        kernel
            .storage
            .write(move |conn| secrets.iter().try_for_each(|secret| sessions::delete(conn, secret)))
            .await?;
    }
    let mut resp = ok(serde_json::json!({}));
    for expired in sessions::clear_cookies(crate::net::over_tls(&req)) {
        if let Ok(v) = HeaderValue::from_str(&expired) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// Authenticates a request by token or session cookie.
pub async fn authenticate(kernel: &Arc<Kernel>, req: &Request<Incoming>) -> Result<Principal, ApiError> {
    let now = kernel.clock.now_millis();
    if let Some(token) = bearer(req).map(str::to_string) {
        let id = kernel.storage.read(move |conn| tokens::check(conn, &token)).await?;
        let Some(token_id) = id else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "the API token is wrong or revoked; create one in the dashboard and run `fazt client set-auth-token`"));
        };
        let touched = token_id.clone();
        kernel.storage.write(move |conn| tokens::touch(conn, &touched, now)).await?;
        kernel.setup.claim(&kernel.storage, "API token").await;
        return Ok(Principal::Token { token_id });
    }
    // Any live session among the cookies counts: an app on a sibling subdomain can add
    // `fazt_session` cookies for the parent domain over plain HTTP, and must not be able
    // to shadow the admin's own that way.
    let secrets = session_cookies(req);
    if secrets.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in or send an API token",
        ));
    }
    let user = kernel.storage.read(move |conn| sessions::lookup_any(conn, &secrets, now)).await?;
    let Some(user_id) = user else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the session has ended; log in again",
        ));
    };
    // Cookies ride along on cross-site requests; a custom header cannot be sent
    // cross-site without a CORS preflight we never grant. So state changes need it.
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !has_csrf_header(req) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing X-Requested-With: fazt header"));
    }
    Ok(Principal::Session { user_id })
}

/// `GET /api/me`.
pub async fn me(kernel: &Arc<Kernel>, principal: &Principal) -> Result<Resp, ApiError> {
    match principal {
        Principal::Session { user_id } => {
            let id = user_id.clone();
            let name = kernel.storage.read(move |conn| users::username(conn, &id)).await?;
            Ok(ok(serde_json::json!({ "user": name.unwrap_or_default() })))
        }
        Principal::Token { token_id } => Ok(ok(serde_json::json!({ "user": "token", "token_id": token_id }))),
    }
}
