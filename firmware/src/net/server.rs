//! The HTTP server: an accept loop on smol, each connection served by hyper (HTTP/1.1
//! with keep-alive, or h2c by prior knowledge; over TLS, h2 or HTTP/1.1 by ALPN) through
//! [`super::conn`], which gives hyper's buffers back while a connection is idle;
//! `smol-hyper` supplies the executor and timer glue.

use super::cache::SiteCache;
use super::conn::{self, Protocol, Protocols};
use super::host::{request_host, route, Route};
use super::response::{ApiError, Resp};
use super::static_files;
use super::tls::handshakes::Slot;
use super::Web;
use crate::fs::site::Site;
use crate::storage::Storage;
use async_io::Async;
use futures_lite::future;
use futures_rustls::server::TlsStream;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use smol::Executor;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Serves HTTP on `listener` until `shutdown` completes; HTTPS when `tls` is given.
///
/// Connections are spawned on `executor`, which the caller runs on as many threads as it
/// likes. When the connection limit is reached, the connection idle for longest is
/// closed to make room; when none is idle, accepting pauses and new clients wait in the
/// kernel's backlog instead of costing memory here. A client over its own cap
/// (`http.max_connections_per_client`) is closed at once. A TLS handshake that fails or
/// takes longer than [`HANDSHAKE_TIMEOUT`](super::tls::HANDSHAKE_TIMEOUT) ends its
/// connection with a (braked) log line; the listener keeps serving.
///
/// When `shutdown` completes, accepting stops, the open connections are closed (a
/// request in progress is dropped) and this returns once their tasks have ended, so
/// that nothing of this server is left on `executor`.
pub async fn serve(
    executor: Arc<Executor<'static>>,
    listener: Async<TcpListener>,
    web: Arc<Web>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = web.http.limits;
    let slots = Arc::new(async_lock::Semaphore::new(limits.max_connections));
    let protocols = Arc::new(Protocols::new(executor.clone(), limits));
    // Closed at shutdown: every connection task ends at its next wake-up.
    let (closing, closed) = async_channel::bounded::<()>(1);
    // Each connection task holds a sender; when the last is gone, they have all ended.
    let (alive, all_ended) = async_channel::bounded::<()>(1);

    let accept_loop = async {
        loop {
            let permit = match slots.try_acquire_arc() {
                Some(permit) => permit,
                None => {
                    // Full: the longest-idle connection makes room (nginx reuses idle
                    // keep-alive connections the same way); with none idle, wait.
                    web.http.clients.evict_idle();
                    slots.acquire_arc().await
                }
            };
            let (stream, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: log, breathe, and keep serving the others.
                    tracing::warn!(error = %err, "accept failed");
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admission = match web.http.clients.admit(peer.ip()) {
                Ok(admission) => admission,
                Err(over) => {
                    web.http.over_cap.warn(&format!(
                        "closed a connection from {}: it holds {} already (http.max_connections_per_client)",
                        peer.ip(),
                        over.cap
                    ));
                    continue;
                }
            };
            let _ = stream.get_ref().set_nodelay(true);
            let web = web.clone();
            let protocols = protocols.clone();
            let tls = tls.clone();
            let closed = closed.clone();
            let alive = alive.clone();
            let task = async move {
                let served = async {
                    match tls {
                        None => {
                            conn::serve(protocols, web, peer, false, stream, Protocol::Sniff, admission).await
                        }
                        Some(config) => serve_tls(protocols, web, peer, config, stream, admission).await,
                    }
                };
                future::or(served, async {
                    let _ = closed.recv().await;
                })
                .await;
                drop(permit);
                drop(alive);
            };
            executor.spawn(task).detach();
        }
    };
    let result = future::or(accept_loop, async {
        shutdown.await;
        Ok(())
    })
    .await;
    closing.close();
    drop(alive);
    // Never receives a message: ends with an error once every sender is dropped.
    let _ = all_ended.recv().await;
    result
}

/// The TLS handshake (bounded in time), then HTTP by the protocol ALPN chose.
async fn serve_tls(
    protocols: Arc<Protocols>,
    web: Arc<Web>,
    peer: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    stream: Async<TcpStream>,
    admission: super::clients::Admission,
) {
    // Handshakes have their own cap (https.max_handshakes), which evicts the oldest.
    admission.busy();
    let slot = web.tls.handshakes.begin();
    let stream = match handshake(config, stream, slot).await {
        Ok(stream) => stream,
        Err(err) => {
            web.tls.handshake_errors.warn(&format!("TLS handshake from {peer} failed: {err}"));
            return;
        }
    };
    let protocol = match stream.get_ref().1.alpn_protocol() {
        // An ACME TLS-ALPN-01 validation only needs the handshake.
        Some(super::tls::resolver::ACME_TLS_ALPN) => return,
        Some(b"h2") => Protocol::Http2,
        Some(b"http/1.1") => Protocol::Http1,
        _ => Protocol::Sniff,
    };
    conn::serve(protocols, web, peer, true, stream, protocol, admission).await;
}

type Handshake = Pin<Box<dyn Future<Output = std::io::Result<Box<TlsStream<Async<TcpStream>>>>> + Send>>;

/// The handshake, bounded by [`HANDSHAKE_TIMEOUT`](super::tls::HANDSHAKE_TIMEOUT), and
/// given up when `slot` is taken for a newer one (see [`super::tls::handshakes`]).
/// Boxed by a plain function so that its state is freed when it is done: built inside
/// the connection's async fn, it would keep its room in the task for the connection's
/// whole life. The stream comes out boxed too (about 1.2 KB), for the same reason.
fn handshake(config: Arc<rustls::ServerConfig>, stream: Async<TcpStream>, slot: Slot) -> Handshake {
    let accept = futures_rustls::TlsAcceptor::from(config).accept(stream);
    Box::pin(async move {
        let timeout = async {
            async_io::Timer::after(super::tls::HANDSHAKE_TIMEOUT).await;
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timed out"))
        };
        let evicted = async {
            slot.evicted().await;
            Err(std::io::Error::other(
                "closed to make room: too many handshakes in progress (https.max_handshakes)",
            ))
        };
        let result = future::or(future::or(accept, timeout), evicted).await.map(Box::new);
        drop(slot);
        result
    })
}

/// Loads the current site of `app` through the site cache.
pub async fn load_site(
    sites: &SiteCache,
    storage: &Arc<Storage>,
    app: &str,
) -> Result<Option<Arc<Site>>, ApiError> {
    if let Some(site) = sites.get(app) {
        return Ok(Some(site));
    }
    let generation = sites.generation();
    let name = app.to_string();
    let site = storage.read(move |conn| crate::fs::site::load_site(conn, &name)).await?;
    Ok(site.map(|site| {
        let site = Arc::new(site);
        sites.insert_if_current(site.clone(), generation);
        site
    }))
}

/// Answers one request; `secure` when it came over TLS.
pub(super) async fn handle(
    web: Arc<Web>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
    secure: bool,
) -> Resp {
    if secure {
        req.extensions_mut().insert(super::OverTls);
    }
    if !secure {
        if let Some(resp) = super::tls::redirect::intercept(&web.tls, web.kernel.config.domain(), &req) {
            return resp;
        }
    }
    let hsts = match secure {
        true => request_host(req.version(), req.uri(), req.headers())
            .ok()
            .and_then(|host| web.tls.hsts_for(host))
            .cloned(),
        false => None,
    };
    let mut resp = route_request(web.clone(), peer, req).await;
    if let Some(hsts) = hsts {
        resp.headers_mut().insert(http::header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    resp
}

/// Routes a request to the admin API, a serverless backend or static files.
async fn route_request(web: Arc<Web>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    // HTTP/2 carries the host in the authority; HTTP/1.1 in the Host header.
    let host = match request_host(req.version(), req.uri(), req.headers()) {
        Ok(host) => host,
        Err(err) => return ApiError::bad_request(err.code(), err.to_string()).into_response(),
    };
    let route = match route(host, web.kernel.config.domain()) {
        Ok(route) => route,
        _ => return ApiError::bad_request("bad_host", "malformed Host header").into_response(),
    };
    // While nobody has claimed the node, its own names show the first-boot setup page.
    let req = match super::setup::intercept(&web.kernel, &web.http, peer, req, &route).await {
        Ok(resp) => return resp,
        Err(req) => req,
    };
    let admin = route == Route::Admin;
    if admin && (req.uri().path() == "/api" || req.uri().path().starts_with("/api/")) {
        return super::api::handle(&web, peer, req).await;
    }
    if let Route::App(name) = &route {
        // Decided on the normalised path, the one static serving would use, so that
        // `/%61pi/x` or `//api/x` cannot slip past the backend to the files.
        let site_path = crate::fs::path::request_to_site_path(req.uri().path()).unwrap_or_default();
        if site_path == "api" || site_path.starts_with("api/") {
            match load_site(&web.sites, &web.kernel.storage, name).await {
                Ok(Some(site)) => {
                    if let Some(entry) = crate::runtime::Entry::of(&site) {
                        return super::serverless::serve(&web, site, entry, req).await;
                    }
                }
                Ok(None) => {}
                Err(err) => return err.into_response(),
            }
        }
    }
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let mut resp = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "static files answer GET and HEAD only",
        )
        .into_response();
        resp.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let app = match &route {
        Route::Admin => "admin",
        Route::App(name) => name.as_str(),
        Route::Unknown => return static_files::not_found(&web, None, &method, req.headers(), false).await,
    };
    match load_site(&web.sites, &web.kernel.storage, app).await {
        Ok(Some(site)) => static_files::serve(&web, &site, &method, req.uri(), req.headers(), admin).await,
        Ok(None) => static_files::not_found(&web, None, &method, req.headers(), admin).await,
        Err(err) => err.into_response(),
    }
}
