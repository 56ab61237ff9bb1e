//! Choosing a certificate by the name the client asks for (SNI), without ever waiting.
//!
//! The table is swapped whole when certificates change, so a handshake only takes a
//! read lock for a map lookup. A name with no certificate yet gets the fallback (LAN
//! mode) or a clear handshake failure, and is reported to whoever obtains certificates
//! (ACME): the handshake never stalls while one is being obtained.

use super::store::covers;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Certificates by the names they serve.
#[derive(Debug, Default, Clone)]
pub struct Table {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the parent of a `*.parent` name.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Served when the client sends no SNI (an IP address) or an unknown one.
    fallback: Option<Arc<CertifiedKey>>,
}

impl Table {
    /// Serves `key` for each of `names` (later inserts win over earlier ones).
    pub fn insert(&mut self, names: &[String], key: &Arc<CertifiedKey>) {
        for name in names {
            match name.strip_prefix("*.") {
                Some(parent) => self.wildcard.insert(parent.to_string(), key.clone()),
                None => self.exact.insert(name.clone(), key.clone()),
            };
        }
    }

    /// Serves `key` to clients whose name has no certificate.
    pub fn set_fallback(&mut self, key: Arc<CertifiedKey>) {
        self.fallback = Some(key);
    }

    /// The certificate for `name`, if one covers it.
    pub fn find(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        self.exact.get(name).or_else(|| {
            let (_, parent) = name.split_once('.')?;
            self.wildcard.get(parent).filter(|_| covers(&format!("*.{parent}"), name))
        })
    }

    /// Number of names served.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    /// True when no name is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Called with a name that has no certificate; must not block (it runs in a handshake).
pub type OnMiss = Box<dyn Fn(&str) + Send + Sync>;

/// The ALPN protocol of ACME TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The rustls certificate resolver of the node.
pub struct Resolver {
    table: RwLock<Arc<Table>>,
    /// TLS-ALPN-01 challenge certificates by name, while an order is open.
    alpn_challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    on_miss: Mutex<Option<OnMiss>>,
    misses: super::LogBrake,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("names", &self.table().len()).finish_non_exhaustive()
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            table: RwLock::new(Arc::new(Table::default())),
            alpn_challenges: RwLock::default(),
            on_miss: Mutex::new(None),
            misses: super::LogBrake::new("TLS handshakes for names without a certificate"),
        }
    }
}

impl Resolver {
    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the table.
    pub fn replace(&self, table: Table) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }

    /// Opens (`Some`) or closes (`None`) a TLS-ALPN-01 challenge for `name`.
    pub fn set_alpn_challenge(&self, name: &str, key: Option<Arc<CertifiedKey>>) {
        let mut map = self.alpn_challenges.write().unwrap_or_else(|e| e.into_inner());
        match key {
            Some(k) => map.insert(name.to_string(), k),
            None => map.remove(name),
        };
    }

    /// Sets who hears about names without a certificate.
    pub fn on_miss(&self, f: OnMiss) {
        *self.on_miss.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table();
        let Some(name) = hello.server_name() else {
            return table.fallback.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        // An ACME validator offers only acme-tls/1 and must get the challenge certificate.
        if hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN)) {
            return self.alpn_challenges.read().unwrap_or_else(|e| e.into_inner()).get(&name).cloned();
        }
        if let Some(key) = table.find(&name) {
            return Some(key.clone());
        }
        if let Some(f) = self.on_miss.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            f(&name);
        }
        match &table.fallback {
            Some(key) => Some(key.clone()),
            None => {
                self.misses.warn(&format!("no certificate for '{name}'; handshake refused"));
                None
            }
        }
    }
}
