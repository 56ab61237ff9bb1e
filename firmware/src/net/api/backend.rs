//! `/api/apps/{id}/logs|invoke|env|limits`: the serverless side of an app.

use super::read_json;
use crate::kernel::Kernel;
use crate::net::limits::HttpGuard;
use crate::net::response::{ok, ApiError, Resp};
use crate::net::Web;
use crate::runtime::request::JsUrl;
use crate::runtime::{Entry, JsRequest};
use crate::syscall::{env, limits, logs, Caller};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Longest a logs request waits for new lines (`?wait=`), so a follower costs one
/// request every half minute at most.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A path segment as the client meant it (`MY%5FVAR` is `MY_VAR`).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn param<'a>(uri: &'a http::Uri, key: &str) -> Option<&'a str> {
    uri.query()?.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// `GET /api/apps/{id}/logs?after=N&limit=M&wait=S&tail=1`.
pub async fn logs(
    kernel: &Arc<Kernel>,
    caller: &Caller,
    id: &str,
    uri: &http::Uri,
) -> Result<Resp, ApiError> {
    let app = super::apps::find(&kernel.storage, caller, id).await?;
    let number = |key, default: i64| param(uri, key).and_then(|v| v.parse::<i64>().ok()).unwrap_or(default);
    let after = number("after", 0);
    let limit = number("limit", 100);
    let tail = param(uri, "tail").is_some_and(|v| v == "1" || v == "true");
    let wait = Duration::from_secs(number("wait", 0).clamp(0, MAX_WAIT.as_secs() as i64) as u64);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let lines = logs::read(&kernel.storage, caller, &app.id, after, limit, tail).await?;
        if !lines.is_empty() || std::time::Instant::now() >= deadline {
            let last = lines.last().map(|l| l.id).unwrap_or(after);
            let json: Vec<_> = lines
                .iter()
                .map(|l| {
                    serde_json::json!({"id": l.id, "at": crate::time::rfc3339(l.at), "level": l.level, "message": l.message})
                })
                .collect();
            return Ok(ok(serde_json::json!({ "logs": json, "last_id": last })));
        }
        async_io::Timer::after(Duration::from_millis(250)).await;
    }
}

/// `POST /api/apps/{id}/invoke?path=/api/x&method=POST`: runs the handler without HTTP
/// routing; the body is the input (JSON).
pub async fn invoke(web: &Web, caller: &Caller, id: &str, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let kernel = &web.kernel;
    let path = param(req.uri(), "path").map(decode);
    let method = param(req.uri(), "method").map(str::to_string);
    let call = crate::syscall::apps::invocation(
        &kernel.storage,
        caller,
        &decode(id),
        path.as_deref(),
        method.as_deref(),
    )
    .await?;
    let (app, method, path, query) = (call.app, call.method, call.path, call.query);
    let input: serde_json::Value = read_json(&web.http, req).await?;
    let site = crate::net::server::load_site(&web.sites, &kernel.storage, &app.name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("app '{}' has no deployment", app.name)))?;
    let Some(entry) = Entry::of(&site) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_backend",
            format!("app '{}' has no api/main.js", app.name),
        ));
    };
    let request = JsRequest {
        method,
        url: JsUrl::parse(&path, query.as_deref()),
        headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
        body: input.to_string(),
        json_body: true,
    };
    let response = match kernel.runtime.invoke(site.clone(), entry, request).await {
        Ok(response) => response,
        Err(err) => {
            crate::net::serverless::report(&kernel.events, &site, &path, &err);
            return Err(err.into());
        }
    };
    let json = serde_json::from_str::<serde_json::Value>(&response.body).ok();
    let mut answer =
        serde_json::json!({"status": response.status, "headers": response.headers, "body": response.body});
    if let Some(json) = json {
        answer["json"] = json;
    }
    Ok(ok(answer))
}

/// `GET /api/apps/{id}/env`.
pub async fn env_list(kernel: &Arc<Kernel>, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    let vars = env::show(&kernel.storage, &kernel.keys.sealer, caller, &decode(id)).await?;
    Ok(ok(serde_json::json!({ "env": vars })))
}

#[derive(Deserialize)]
struct EnvValue {
    value: String,
}

/// `PUT /api/apps/{id}/env/{name}` with `{"value": "..."}`.
pub async fn env_set(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    caller: &Caller,
    id: &str,
    name: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: EnvValue = read_json(http, req).await?;
    env::put(&kernel.storage, &kernel.keys.sealer, caller, &decode(id), &decode(name), &body.value).await?;
    kernel.runtime.config_generation.fetch_add(1, Ordering::AcqRel);
    Ok(ok(serde_json::json!({})))
}

/// `DELETE /api/apps/{id}/env/{name}`.
pub async fn env_unset(
    kernel: &Arc<Kernel>,
    caller: &Caller,
    id: &str,
    name: &str,
) -> Result<Resp, ApiError> {
    env::remove(&kernel.storage, caller, &decode(id), &decode(name)).await?;
    kernel.runtime.config_generation.fetch_add(1, Ordering::AcqRel);
    Ok(ok(serde_json::json!({})))
}

fn limits_json(l: limits::Limits, used: u64) -> serde_json::Value {
    serde_json::json!({
        "timeout_ms": l.timeout.as_millis() as u64,
        "memory_bytes": l.memory_bytes,
        "storage_bytes": l.storage_bytes,
        "storage_used_bytes": used,
    })
}

/// `GET /api/apps/{id}/limits`: the limits, and the storage the app uses.
pub async fn limits_get(kernel: &Arc<Kernel>, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    let (l, used) = limits::show(&kernel.storage, caller, &decode(id)).await?;
    Ok(ok(limits_json(l, used)))
}

/// `PUT /api/apps/{id}/limits` with any of `{"timeout_ms": N, "memory_bytes": N,
/// "storage_bytes": N}`.
pub async fn limits_set(
    kernel: &Arc<Kernel>,
    http: &HttpGuard,
    caller: &Caller,
    id: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let change: limits::LimitsChange = read_json(http, req).await?;
    let (l, used) = limits::change(&kernel.storage, caller, &decode(id), change).await?;
    kernel.runtime.config_generation.fetch_add(1, Ordering::AcqRel);
    Ok(ok(limits_json(l, used)))
}
