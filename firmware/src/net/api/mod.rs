//! The admin API: JSON over HTTP on `admin.<domain>/api/`.
//!
//! One file per resource; this module routes and holds the shared request helpers.
//! Authentication is a session cookie (browser, after `POST /api/login`) or an API token
//! (`Authorization: Bearer fzt_…`, the CLI). Errors always have the shape of
//! [`ApiError`](super::response::ApiError).

mod apps;
mod auth;
mod backend;
mod beacon;
mod deploy;
mod events;
mod system;
mod time;
mod tls;
mod tokens;

use super::response::{ApiError, Resp};
use crate::kernel::Kernel;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest JSON request body accepted.
const MAX_JSON_BYTES: usize = 256 * 1024;

/// Routes an API request.
pub async fn handle(kernel: &Arc<Kernel>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    match dispatch(kernel, peer, req).await {
        Ok(resp) => resp,
        Err(err) => err.into_response(),
    }
}

async fn dispatch(kernel: &Arc<Kernel>, peer: SocketAddr, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches("/api").trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let allowed = allowed_methods(&segments);
    if allowed.is_empty() {
        return Err(ApiError::not_found(format!("no API endpoint {path}")));
    }
    if !allowed.contains(&method) {
        let mut err = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        );
        err.allow = Some(allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", "));
        return Err(err);
    }
    // Public endpoints first; everything else needs a session or a token.
    match (&method, segments.as_slice()) {
        (&Method::POST, ["login"]) => return auth::login(kernel, peer, req).await,
        (&Method::POST, ["logout"]) => return auth::logout(kernel, req).await,
        (&Method::GET, ["system", "health"]) if !auth::has_credentials(&req) => {
            return Ok(system::liveness(kernel));
        }
        (&Method::GET, ["tls", "ca.pem"]) => return tls::ca_pem(kernel),
        _ => {}
    }
    let principal = auth::authenticate(kernel, &req).await?;
    match (&method, segments.as_slice()) {
        (&Method::GET, ["me"]) => auth::me(kernel, &principal).await,
        (&Method::GET, ["apps"]) => apps::list(kernel).await,
        (&Method::GET, ["apps", id]) => apps::get(kernel, id).await,
        (&Method::DELETE, ["apps", id]) => apps::delete(kernel, id).await,
        (&Method::GET, ["apps", id, "files"]) => apps::files(kernel, id).await,
        (&Method::GET, ["apps", id, "files", ..]) => {
            let prefix = format!("/api/apps/{id}/files/");
            let file_path = path.strip_prefix(&prefix).unwrap_or("").to_string();
            apps::file_content(kernel, id, &file_path).await
        }
        (&Method::GET, ["apps", id, "logs"]) => backend::logs(kernel, id, req.uri()).await,
        (&Method::POST, ["apps", id, "invoke"]) => backend::invoke(kernel, id, req).await,
        (&Method::GET, ["apps", id, "env"]) => backend::env_list(kernel, id).await,
        (&Method::PUT, ["apps", id, "env", name]) => backend::env_set(kernel, id, name, req).await,
        (&Method::DELETE, ["apps", id, "env", name]) => backend::env_unset(kernel, id, name).await,
        (&Method::GET, ["apps", id, "limits"]) => backend::limits_get(kernel, id).await,
        (&Method::PUT, ["apps", id, "limits"]) => backend::limits_set(kernel, id, req).await,
        (&Method::GET, ["tokens"]) => tokens::list(kernel).await,
        (&Method::POST, ["tokens"]) => tokens::create(kernel, &principal, req).await,
        (&Method::DELETE, ["tokens", id]) => tokens::revoke(kernel, id).await,
        (&Method::POST, ["deploy", "check"]) => deploy::check(kernel, req).await,
        (&Method::POST, ["deploy"]) => deploy::deploy(kernel, req).await,
        (&Method::GET, ["events"]) => events::list(kernel, req).await,
        (&Method::POST, ["events"]) => events::emit(kernel, req).await,
        (&Method::GET, ["system", "health"]) => system::health(kernel).await,
        (&Method::GET, ["system", "db"]) => system::db(kernel).await,
        (&Method::GET, ["system", "config"]) => Ok(system::config(kernel)),
        (&Method::GET, ["system", "keys"]) => system::keys(kernel).await,
        (&Method::GET, ["system", "beacon"]) => beacon::status(kernel).await,
        (&Method::GET, ["system", "time"]) => time::status(kernel).await,
        (&Method::POST, ["system", "time", "sync"]) => time::sync(kernel).await,
        (&Method::GET, ["tls"]) => tls::status(kernel).await,
        (&Method::GET, ["tls", "certs"]) => tls::list(kernel).await,
        (&Method::POST, ["tls", "certs"]) => tls::add(kernel, req).await,
        (&Method::DELETE, ["tls", "certs", name]) => tls::remove(kernel, name).await,
        _ => Err(ApiError::not_found(format!("no API endpoint {path}"))),
    }
}

/// The methods an endpoint answers; empty when there is no such endpoint. The one table
/// of routes that tells 404 (no such path) from 405 (wrong method).
fn allowed_methods(segments: &[&str]) -> &'static [Method] {
    const GET: &[Method] = &[Method::GET];
    const POST: &[Method] = &[Method::POST];
    const GET_POST: &[Method] = &[Method::GET, Method::POST];
    const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
    const DELETE: &[Method] = &[Method::DELETE];
    const GET_PUT: &[Method] = &[Method::GET, Method::PUT];
    const PUT_DELETE: &[Method] = &[Method::PUT, Method::DELETE];
    match segments {
        ["login"] | ["logout"] | ["deploy"] | ["deploy", "check"] => POST,
        ["me"] | ["apps"] | ["apps", _, "files"] | ["apps", _, "files", _, ..] => GET,
        ["system", "health" | "db" | "config" | "beacon" | "time" | "keys"] => GET,
        ["system", "time", "sync"] => POST,
        ["apps", _] => GET_DELETE,
        ["apps", _, "logs" | "env"] => GET,
        ["apps", _, "invoke"] => POST,
        ["apps", _, "env", _] => PUT_DELETE,
        ["apps", _, "limits"] => GET_PUT,
        ["tokens"] | ["events"] => GET_POST,
        ["tokens", _] => DELETE,
        ["tls"] | ["tls", "ca.pem"] => GET,
        ["tls", "certs"] => GET_POST,
        ["tls", "certs", _] => DELETE,
        _ => &[],
    }
}

/// Reads a JSON body of at most [`MAX_JSON_BYTES`], within the node's body limits.
pub(crate) async fn read_json<T: DeserializeOwned>(
    kernel: &Kernel,
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    let (parts, body) = req.into_parts();
    let limits = kernel.http.body_limits(MAX_JSON_BYTES);
    let (bytes, _reservation) =
        crate::net::body::read(&parts.headers, body, limits, &kernel.http.bodies).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("bad_json", format!("invalid JSON body: {e}")))
}
