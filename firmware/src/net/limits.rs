//! The HTTP server's node-wide limits and the state that enforces them: timeouts for
//! every phase of a connection, connection caps (node-wide and per client), and the
//! budget of request-body bytes held in memory. Defaults follow nginx's
//! (`client_header_timeout`, `client_body_timeout`, `keepalive_timeout`, `limit_conn`);
//! docs/serving.md lists them.

use super::body::BodyBudget;
use super::clients::Clients;
use crate::config::{NodeConfig, Setting};
use std::sync::Arc;
use std::time::Duration;

/// HTTP/2 streams a connection may have open at once (nginx: 128).
pub const H2_MAX_STREAMS: u32 = 128;
/// HTTP/2 flow-control window of one stream: what a client may send before the node
/// reads it. hyper's default (1 MB) let three connections park 450 MB of bodies.
pub const H2_STREAM_WINDOW: u32 = 128 * 1024;
/// HTTP/2 flow-control window of a whole connection.
pub const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// An HTTP/2 connection is pinged when it has been quiet this long (a request may be
/// open, waiting for a slow handler, so quiet is not idle)...
pub const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// ...and closed when a ping is not answered in this long.
pub const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The `http.*` settings, read once at start.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections at once, per listener.
    pub max_connections: usize,
    /// Connections at once from one client (0: no cap).
    pub per_client: u32,
    /// Time to send a request's headers (and to start HTTP/2).
    pub header_timeout: Duration,
    /// Longest pause inside a request body.
    pub body_timeout: Duration,
    /// Longest idle keep-alive (HTTP/1.1), or HTTP/2 without open requests.
    pub idle_timeout: Duration,
    /// Request-body bytes in memory at once, node-wide.
    pub body_memory: usize,
}

impl HttpLimits {
    /// The limits `config` sets (a timeout of 0 counts as 1 s).
    pub fn from_config(config: &NodeConfig) -> HttpLimits {
        let secs = |key: Setting| Duration::from_secs(config.get_u64(key).max(1));
        HttpLimits {
            max_connections: config.get_u64(Setting::HttpMaxConnections).clamp(1, 1 << 20) as usize,
            per_client: config.get_u64(Setting::HttpMaxConnectionsPerClient).min(u32::MAX as u64) as u32,
            header_timeout: secs(Setting::HttpHeaderTimeoutSecs),
            body_timeout: secs(Setting::HttpBodyTimeoutSecs),
            idle_timeout: secs(Setting::HttpIdleTimeoutSecs),
            body_memory: config.get_u64(Setting::HttpMaxBodyMemoryBytes).min(usize::MAX as u64) as usize,
        }
    }
}

/// The HTTP server's shared guards: its limits, who is connected, and the body budget.
#[derive(Debug)]
pub struct HttpGuard {
    /// The settings.
    pub limits: HttpLimits,
    /// Connections by client, and which are idle.
    pub clients: Arc<Clients>,
    /// Request-body bytes in memory.
    pub bodies: Arc<BodyBudget>,
    /// Log brake for connections closed over the per-client cap.
    pub over_cap: super::tls::LogBrake,
}

impl HttpGuard {
    /// Guards for `limits`.
    pub fn new(limits: HttpLimits) -> HttpGuard {
        HttpGuard {
            clients: Clients::new(limits.per_client),
            bodies: BodyBudget::new(limits.body_memory),
            over_cap: super::tls::LogBrake::new("connections closed over the per-client cap"),
            limits,
        }
    }

    /// Limits for reading one body of at most `max_bytes` into memory.
    pub fn body_limits(&self, max_bytes: usize) -> super::body::BodyLimits {
        super::body::BodyLimits { max_bytes, idle: self.limits.body_timeout }
    }
}
