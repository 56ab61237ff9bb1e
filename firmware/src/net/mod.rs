//! Networking: the HTTP server, host routing, static serving and the admin API.
//!
//! The server's state is [`Web`]: the kernel's services (`web.kernel`) and what only the
//! server holds. Handlers take the parts they use: `&Kernel` or a single service when
//! that is all, `&Web` when they need the server's own state too.
//!
//! # Layout
//! - [`web`]: [`Web`], the server's state.
//! - [`server`]: the accept loop and hyper (HTTP/1.1 and h2c) on smol.
//! - [`conn`]: one connection: HTTP/1.1 that gives hyper's buffers back while idle, or HTTP/2.
//! - [`limits`]: node-wide timeouts, connection caps and the request-body budget.
//! - [`clients`]: connections counted per client, and the idle ones that make room.
//! - [`body`]: request bodies read into memory within the body budget.
//! - [`io`]: reading from smol's sockets into hyper's buffers.
//! - [`host`]: which app a Host header names.
//! - [`static_files`]: serving a site's files like a real web server.
//! - [`serverless`]: `/api/*` of apps with a JavaScript backend.
//! - [`cache`]: current sites and hot file bodies in memory.
//! - [`api`]: the admin JSON API on `admin.<domain>/api/`.
//! - [`response`]: response helpers and the JSON error shape.
//! - [`setup`]: the first-boot setup page of a node nobody has claimed yet.
//! - [`tls`]: HTTPS (rustls), certificates by SNI, the LAN CA.

pub mod api;
pub mod body;
pub mod cache;
pub mod clients;
pub mod conn;
pub mod host;
pub mod io;
pub mod limits;
pub mod response;
pub mod server;
pub mod serverless;
pub mod setup;
pub mod static_files;
pub mod tls;
pub mod web;

pub use web::Web;

/// Marks a request that came over TLS (a request extension set by [`server`]), for the
/// handlers that answer differently over HTTPS, such as the session cookie.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// True when `req` came over TLS.
pub fn over_tls<B>(req: &http::Request<B>) -> bool {
    req.extensions().get::<OverTls>().is_some()
}
