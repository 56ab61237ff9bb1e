//! `/api/events`: the event bus over HTTP. `GET` answers a page of history, waits for
//! the next matching event (`wait=`), or streams Server-Sent Events (`Accept:
//! text/event-stream`); `POST` emits a custom `app.*` event as the admin.

use super::read_json;
use crate::events::{Event, Events, Filter, Next, Subscription, Visibility, MAX_QUERY};
use crate::kernel::Kernel;
use crate::net::limits::HttpGuard;
use crate::net::response::{ok, ApiError, Body, Resp};
use crate::syscall::{Caller, SyscallError};
use bytes::Bytes;
use futures_lite::future;
use http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a `wait=` request waits, like the app logs' long poll.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A comment line this often keeps proxies and NAT tables from dropping a quiet stream
/// (many cut idle connections at 30-60 s).
const HEARTBEAT: Duration = Duration::from_secs(15);

/// A stream ends after this long and the client reconnects (`Last-Event-ID`), so a
/// forgotten tab does not hold a connection and a subscription for days.
const STREAM_LIFETIME: Duration = Duration::from_secs(600);

/// Events per page when `limit=` is not given.
const DEFAULT_LIMIT: usize = 100;

/// Longest `app=` accepted: an app name (a DNS label) or an id.
const MAX_APP_BYTES: usize = 128;

/// A `GET` request's parameters, checked.
struct Query {
    since: Option<u64>,
    filter: Filter,
    limit: usize,
    wait: Duration,
    stream: bool,
}

fn parse(req: &Request<Incoming>) -> Result<Query, ApiError> {
    let mut query = Query {
        since: None,
        filter: Filter::default(),
        limit: DEFAULT_LIMIT,
        wait: Duration::ZERO,
        stream: req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream"))),
    };
    let since = |text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            let shown: String = text.chars().take(32).collect();
            ApiError::bad_request(
                "bad_since",
                format!("since must be an event id (a whole number), not '{}'", shown.escape_default()),
            )
        })
    };
    for pair in req.uri().query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        match key {
            "since" => query.since = Some(since(&value)?),
            "type" => {
                let prefix = value.trim().trim_end_matches('.');
                if !prefix.is_empty() {
                    crate::events::event::check_type(prefix).map_err(SyscallError::from)?;
                    query.filter.type_prefix = Some(prefix.to_string());
                }
            }
            "app" => {
                if value.len() > MAX_APP_BYTES || value.chars().any(char::is_control) {
                    return Err(ApiError::bad_request("bad_app", "app must be an app name or id"));
                }
                query.filter.app = (!value.is_empty()).then(|| value.into_owned());
            }
            "limit" => {
                query.limit =
                    value.parse::<usize>().ok().filter(|n| (1..=MAX_QUERY).contains(n)).ok_or_else(|| {
                        ApiError::bad_request("bad_limit", format!("limit must be 1 to {MAX_QUERY}"))
                    })?
            }
            "wait" => {
                let secs = value.parse::<u64>().map_err(|_| {
                    ApiError::bad_request("bad_wait", "wait must be a whole number of seconds")
                })?;
                query.wait = Duration::from_secs(secs).min(MAX_WAIT);
            }
            _ => {}
        }
    }
    // A reconnecting EventSource says where it stopped; that beats the URL it reuses.
    if let Some(last) = req.headers().get("last-event-id") {
        query.since = Some(since(last.to_str().unwrap_or("?"))?);
    }
    Ok(query)
}

/// `GET /api/events?since=ID&type=PREFIX&app=NAME&limit=N&wait=SECS`.
pub async fn list(events: &Arc<Events>, caller: &Caller, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let mut query = parse(&req)?;
    // What the caller may see is the syscall's decision.
    query.filter.viewer = crate::syscall::events::viewer(caller);
    if query.stream {
        return Ok(stream(events, query));
    }
    let since = query.since.unwrap_or(0);
    // Subscribed before the first look, so an event between the look and the wait is
    // not missed.
    let mut live = (!query.wait.is_zero()).then(|| events.subscribe());
    let deadline = Instant::now() + query.wait;
    loop {
        // Read before the query: every event up to `head` is in what the query sees.
        let head = events.last_id();
        let found = events.query(query.filter.clone(), since, query.limit).await?;
        let waiting = live.as_mut().filter(|_| found.is_empty() && Instant::now() < deadline);
        let Some(live) = waiting else {
            // Where the next poll starts: past what was returned and, when the page is
            // not full, past the events that did not match too.
            let last = match found.last() {
                Some(e) if found.len() == query.limit => e.id,
                other => other.map_or(since, |e| e.id).max(head).max(since),
            };
            let events: Vec<&Event> = found.iter().map(|e| &**e).collect();
            return Ok(ok(serde_json::json!({ "events": events, "last_id": last })));
        };
        wait_for(live, &query.filter, since, deadline).await;
    }
}

/// Returns when a matching event after `since` arrives, the feed lagged or closed, or
/// `deadline` passes.
async fn wait_for(live: &mut Subscription, filter: &Filter, since: u64, deadline: Instant) {
    loop {
        let next = future::or(async { Some(live.next().await) }, async {
            async_io::Timer::at(deadline).await;
            None
        })
        .await;
        match next {
            Some(Next::Event(e)) if e.id <= since || !filter.matches(&e) => continue,
            _ => return,
        }
    }
}

/// One event as an SSE message: its id (for `Last-Event-ID`) and its JSON on one line.
fn message(event: &Event) -> String {
    format!("id: {}\ndata: {}\n\n", event.id, serde_json::to_string(event).unwrap_or_default())
}

/// Where a stream is.
struct Stream {
    events: Arc<Events>,
    live: Subscription,
    filter: Filter,
    /// The last id sent (or the start).
    last: u64,
    /// History still to send before live events (at the start, or after a lag).
    catching_up: bool,
    started: bool,
    ends: Instant,
}

impl Stream {
    /// The next chunk, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            // Sent at once, so the client knows it is connected (and has the headers)
            // before the first event; the id alone (no data) tells it where the stream
            // starts, so a reconnect before any event resumes from there.
            return Some(Bytes::from(format!("retry: 1000\nid: {}\n\n", self.last)));
        }
        loop {
            if self.catching_up {
                let page = match self.events.query(self.filter.clone(), self.last, MAX_QUERY).await {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::warn!(error = %err, "event stream: reading the history failed; ending it");
                        return None;
                    }
                };
                self.catching_up = page.len() == MAX_QUERY;
                if let Some(last) = page.last() {
                    self.last = last.id;
                    return Some(Bytes::from(page.iter().map(|e| message(e)).collect::<String>()));
                }
            }
            let left = self.ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let live = &mut self.live;
            let next = future::or(async { Some(live.next().await) }, async {
                async_io::Timer::after(HEARTBEAT.min(left)).await;
                None
            })
            .await;
            match next {
                Some(Next::Event(e)) if e.id > self.last && self.filter.matches(&e) => {
                    self.last = e.id;
                    return Some(Bytes::from(message(&e)));
                }
                Some(Next::Event(_)) => {}
                // Told, then filled in from the history, which usually still has them.
                Some(Next::Lagged(missed)) => {
                    self.catching_up = true;
                    return Some(Bytes::from(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n")));
                }
                Some(Next::Closed) => return None,
                None => return Some(Bytes::from_static(b": ping\n\n")),
            }
        }
    }
}

/// The Server-Sent Events answer: history after `since` (if given), then live events.
fn stream(events: &Arc<Events>, query: Query) -> Resp {
    let live = events.subscribe();
    // No `since`: live events only, from the moment of subscribing.
    let last = query.since.unwrap_or_else(|| events.last_id());
    let state = Stream {
        events: events.clone(),
        live,
        filter: query.filter,
        last,
        catching_up: query.since.is_some(),
        started: false,
        ends: Instant::now() + STREAM_LIFETIME,
    };
    let body = futures_lite::stream::unfold(state, |mut state| async move {
        let chunk = state.next().await?;
        Some((chunk, state))
    });
    let mut resp = Response::new(Body::stream(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // Reverse proxies (nginx) would otherwise hold events back to fill a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
    /// An app name or id to tag the event with (it becomes private to that app).
    app: Option<String>,
    #[serde(default)]
    public: bool,
}

/// `POST /api/events` with `{"type": "...", "data": ..., "app": "...", "public": bool}`.
pub async fn emit(
    kernel: &Kernel,
    http: &HttpGuard,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: EmitBody = read_json(http, req).await?;
    let app = match &body.app {
        Some(name) => Some(crate::syscall::apps::find(&kernel.storage, caller, name).await?),
        None => None,
    };
    let visibility = if body.public { Visibility::Public } else { Visibility::Private };
    let event = crate::syscall::events::emit(
        &kernel.events,
        caller,
        app.as_ref().map(|a| (a.id.as_str(), a.name.as_str())),
        &body.kind,
        body.data,
        visibility,
    )?;
    Ok(ok(serde_json::to_value(&*event).unwrap_or_default()))
}
