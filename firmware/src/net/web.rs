//! [`Web`]: what the HTTP server holds of its own (site and blob caches, TLS, HTTP
//! limits), beside the kernel's services it serves with.

use super::cache::{BlobCache, SiteCache};
use super::limits::{HttpGuard, HttpLimits};
use super::tls::Tls;
use crate::config::Setting;
use crate::kernel::Kernel;
use std::sync::Arc;

/// The server's state: the kernel's services, and what only the server holds.
pub struct Web {
    /// The kernel's services (storage, clock, config, events, runtime, ...).
    pub kernel: Arc<Kernel>,
    /// Current deployments by app name, for serving.
    pub sites: SiteCache,
    /// Hot file bodies by content hash.
    pub blobs: BlobCache,
    /// HTTPS: certificates by SNI, the LAN CA.
    pub tls: Arc<Tls>,
    /// HTTP limits: timeouts, connection caps, the request-body budget.
    pub http: HttpGuard,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").field("kernel", &self.kernel).finish_non_exhaustive()
    }
}

impl Web {
    /// The server's state over `kernel`, with `tls` built by the composition root and
    /// caches and limits as the kernel's configuration sets them.
    pub fn new(kernel: Arc<Kernel>, tls: Arc<Tls>) -> Web {
        let config = &kernel.config;
        let blobs = BlobCache::new(
            config.get_u64(Setting::CacheMaxBytes),
            config.get_u64(Setting::CacheMaxFileBytes),
        );
        let http = HttpGuard::new(HttpLimits::from_config(config));
        Web { sites: SiteCache::default(), blobs, tls, http, kernel }
    }
}
