//! Requests to `/api/*` of an app with `api/main.js` (or a v0.7 `main.js`): built into
//! a JavaScript request object, run by the runtime, answered from what it returned.

use super::body::Reservation;
use super::limits::HttpGuard;
use super::response::{ApiError, Resp};
use super::Web;
use crate::config::Setting;
use crate::fs::site::Site;
use crate::kernel::Kernel;
use crate::runtime::request::JsUrl;
use crate::runtime::{Entry, JsRequest, JsResponse, RuntimeError};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Headers a handler may not set: the server owns framing and connection handling.
const RESERVED: &[&str] =
    &["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"];

impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        let status = match err {
            RuntimeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            RuntimeError::Busy | RuntimeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut api = ApiError::new(status, err.code(), err.to_string());
        if matches!(err, RuntimeError::Busy) {
            api.retry_after = Some(1);
        }
        api
    }
}

/// Builds the request object from an HTTP request; the reservation holds the body's
/// bytes against the node's body budget until it is dropped.
pub async fn js_request(
    config: &crate::config::NodeConfig,
    http: &HttpGuard,
    req: Request<Incoming>,
) -> Result<(JsRequest, Reservation), ApiError> {
    let (parts, body) = req.into_parts();
    let limit = config.get_u64(Setting::RuntimeMaxBodyBytes) as usize;
    let limits = http.body_limits(limit);
    let (body, reservation) = crate::net::body::read(&parts.headers, body, limits, &http.bodies).await?;
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| *v = format!("{v}, {value}"))
            .or_insert(value);
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let json_body = headers.get("content-type").is_some_and(|t| t.contains("json"));
    let request = JsRequest {
        method: parts.method.to_string(),
        url: JsUrl::parse(parts.uri.path(), parts.uri.query()),
        headers,
        body,
        json_body,
    };
    Ok((request, reservation))
}

/// Turns a handler's response into HTTP, dropping what it may not set.
pub fn http_response(js: JsResponse) -> Resp {
    let status = StatusCode::from_u16(js.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(super::response::Body::new(Bytes::from(js.body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    for (name, value) in js.headers {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
        {
            headers.append(name, value);
        }
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// Serves one `/api/*` request of an app with a backend.
pub async fn serve(web: &Web, site: Arc<Site>, entry: Entry, req: Request<Incoming>) -> Resp {
    let (request, reservation) = match js_request(&web.kernel.config, &web.http, req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let app_id = site.app_id.clone();
    let path = request.url.pathname.clone();
    let result = web.kernel.runtime.invoke(site.clone(), entry, request).await;
    // The body's bytes are held until the handler is done with them.
    drop(reservation);
    match result {
        Ok(js) if js.status < 200 => informational(&web.kernel, app_id, js.status).await,
        Ok(js) => http_response(js),
        Err(err) => {
            report(&web.kernel.events, &site, &path, &err);
            ApiError::from(err).into_response()
        }
    }
}

/// A handler answered `101 Switching Protocols` or another 1xx status. Such a status is
/// never a final answer: sent as one, a `101` would hand the connection over to a
/// protocol nobody speaks and a `100` would leave the client waiting for the real
/// answer. The client gets a 500 and the app's log says why.
async fn informational(kernel: &Kernel, app_id: String, status: u16) -> Resp {
    let message = format!(
        "the handler answered with status {status}; informational (1xx) statuses, such as \
         101 Switching Protocols, cannot be a response: use 200-599"
    );
    let line = vec![(kernel.clock.now_millis(), "error", message.clone())];
    let logged = kernel
        .storage
        .write(move |conn| {
            crate::syscall::logs::append(conn, &crate::syscall::Caller::Kernel, &app_id, &line)
        })
        .await;
    if let Err(err) = logged {
        tracing::warn!(error = %err, "could not write an app log line");
    }
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad_status", message).into_response()
}

/// Puts a failed invocation on the event bus: `handler.error` for a throw or a load
/// failure, `limit.timeout` / `limit.memory` for a limit hit. A busy app is the
/// caller's answer (503), not something that happened to the app.
pub fn report(events: &crate::events::Events, site: &Site, path: &str, err: &RuntimeError) {
    use crate::events::Kind;
    let kind = match err {
        RuntimeError::Handler(_) | RuntimeError::Load(_) => Kind::HandlerError,
        RuntimeError::Timeout(_) => Kind::LimitTimeout,
        RuntimeError::Memory(_) => Kind::LimitMemory,
        RuntimeError::Busy | RuntimeError::Unavailable(_) => return,
    };
    // The message is the app's text (a thrown string can be megabytes); the stack is
    // in the app's log.
    let message: String = err.to_string().chars().take(1024).collect();
    let path: String = path.chars().take(256).collect();
    events.notify(
        kind,
        Some((&site.app_id, &site.app_name)),
        serde_json::json!({"code": err.code(), "message": message, "path": path}),
    );
}
