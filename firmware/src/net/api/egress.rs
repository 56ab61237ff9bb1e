//! `/api/net`: the apps' outbound HTTP (egress): allow-lists, the request log, the
//! limits and circuit breakers. Each handler parses, calls one syscall of
//! `syscall::egress` and renders its answer.

use super::read_json;
use crate::kernel::Kernel;
use crate::net::limits::HttpGuard;
use crate::net::response::{ok, ApiError, Resp};
use crate::syscall::{egress, Caller};
use http::Request;
use hyper::body::Incoming;
use serde::Deserialize;
use std::sync::Arc;

/// A query parameter, percent-decoded.
fn param(uri: &http::Uri, key: &str) -> Option<String> {
    let raw = uri.query()?.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))?;
    Some(percent_encoding::percent_decode_str(&raw.replace('+', " ")).decode_utf8_lossy().into_owned())
}

/// `{"app": "...", "host": "...", "private": bool}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostBody {
    app: String,
    host: String,
    #[serde(default)]
    private: bool,
}

fn rule_json(app_id: &str, app_name: &str, rule: &crate::egress::store::Rule) -> serde_json::Value {
    serde_json::json!({"app_id": app_id, "app": app_name, "host": rule.host, "port": rule.port, "private": rule.private})
}

/// `GET /api/net/allow[?app=APP]`.
pub async fn list(kernel: &Arc<Kernel>, caller: &Caller, uri: &http::Uri) -> Result<Resp, ApiError> {
    let app = param(uri, "app");
    let rules = egress::list(&kernel.storage, caller, app.as_deref()).await?;
    let rules: Vec<_> = rules.iter().map(|(id, name, rule)| rule_json(id, name, rule)).collect();
    Ok(ok(serde_json::json!({ "allow": rules })))
}

/// `POST /api/net/allow` with [`HostBody`].
pub async fn allow(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: HostBody = read_json(http, req).await?;
    let now = kernel.clock.now_millis();
    let (app, rule, changed) =
        egress::allow(&kernel.storage, caller, &body.app, &body.host, body.private, now).await?;
    let mut json = rule_json(&app.id, &app.name, &rule);
    json["changed"] = changed.into();
    Ok(ok(json))
}

/// `POST /api/net/deny` with `{"app", "host"}`.
pub async fn deny(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: HostBody = read_json(http, req).await?;
    let removed = egress::deny(&kernel.storage, caller, &body.app, &body.host).await?;
    Ok(ok(serde_json::json!({ "removed": removed })))
}

/// `GET /api/net/logs[?app=APP&limit=N&after=ID]`: the last N outbound requests, or the
/// first N after ID, oldest first.
pub async fn logs(kernel: &Arc<Kernel>, caller: &Caller, uri: &http::Uri) -> Result<Resp, ApiError> {
    let app = param(uri, "app");
    let limit = match param(uri, "limit") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=crate::egress::store::MAX_LOG_READ).contains(n))
            .ok_or_else(|| ApiError::bad_request("bad_limit", "limit is 1 to 1000"))?,
    };
    let after = match param(uri, "after") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::bad_request("bad_after", "after is an id (0 or more)"))?,
        ),
    };
    let entries = egress::logs(&kernel.storage, caller, app.as_deref(), after, limit).await?;
    let json: Vec<_> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id, "at": crate::time::rfc3339(e.at), "app_id": e.app_id, "method": e.method,
                "host": e.host, "status": e.status, "bytes": e.bytes, "duration_ms": e.duration_ms,
                "error": e.error,
            })
        })
        .collect();
    Ok(ok(serde_json::json!({ "logs": json })))
}

fn settings_json(s: &crate::egress::Settings) -> serde_json::Value {
    serde_json::json!({
        "max_concurrent_per_app": s.max_concurrent_per_app,
        "max_request_bytes": s.max_request_bytes,
        "max_response_bytes": s.max_response_bytes,
        "timeout_ms": s.timeout.as_millis() as u64,
        "max_redirects": s.max_redirects,
        "breaker_failures": s.breaker_failures,
        "breaker_cooldown_secs": s.breaker_cooldown.as_secs(),
        "log_max_rows": s.log_max_rows,
    })
}

fn app_limits_json(
    app: &crate::apps::AppSummary,
    own: &crate::egress::store::AppLimits,
    effective: &crate::egress::Settings,
) -> serde_json::Value {
    serde_json::json!({ "app_id": app.id, "app": app.name, "own": own, "effective": settings_json(effective) })
}

/// `GET /api/net/limits/{app}`: the app's own limits and those in force for it.
pub async fn app_limits(kernel: &Arc<Kernel>, caller: &Caller, app: &str) -> Result<Resp, ApiError> {
    let app = percent_encoding::percent_decode_str(app).decode_utf8_lossy();
    let (found, own, effective) = egress::app_limits(&kernel.storage, &kernel.egress, caller, &app).await?;
    Ok(ok(app_limits_json(&found, &own, &effective)))
}

/// `PUT /api/net/limits/{app}` with `{"max_concurrent", "max_request_bytes",
/// "max_response_bytes", "timeout_ms"}` (each a number, or null/absent for the node's).
pub async fn set_app_limits(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    caller: &Caller,
    app: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let app = percent_encoding::percent_decode_str(app).decode_utf8_lossy().into_owned();
    let limits: crate::egress::store::AppLimits = read_json(http, req).await?;
    let (found, own, effective) =
        egress::set_app_limits(&kernel.storage, &kernel.egress, caller, &app, limits).await?;
    Ok(ok(app_limits_json(&found, &own, &effective)))
}

/// `GET /api/net/limits`: the limits in force and the circuit breakers.
pub async fn limits(kernel: &Arc<Kernel>, caller: &Caller) -> Result<Resp, ApiError> {
    let status = egress::status(&kernel.egress, caller)?;
    Ok(ok(serde_json::json!({
        "limits": settings_json(&status.settings),
        "circuits": status.circuits,
        "in_flight": status.in_flight,
    })))
}
