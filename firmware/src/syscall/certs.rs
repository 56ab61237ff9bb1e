//! HTTPS certificates: list the ones served, add a custom one, remove it. The TLS
//! store belongs to `net` (a layer above), so these take it through [`CertStore`],
//! which `net::tls` implements. Blocking: adding one parses and checks keys.

use super::{Caller, SyscallError};
use crate::time::{Clock, UnixMillis};

/// What the certificate syscalls need of the TLS subsystem.
pub trait CertStore {
    /// Every certificate served, as the API shows it (OCSP state as of `now`).
    fn certs(&self, now: UnixMillis) -> Result<Vec<serde_json::Value>, SyscallError>;
    /// Checks and stores a custom certificate for `domain` (replacing an earlier one);
    /// a refused one changes nothing. Answers it as [`CertStore::certs`] shows it.
    fn add(
        &self,
        domain: &str,
        chain_pem: &str,
        key_pem: &str,
        now: UnixMillis,
    ) -> Result<serde_json::Value, SyscallError>;
    /// Stops serving the custom certificate `name`; `not_found` when there is none.
    fn remove(&self, name: &str) -> Result<(), SyscallError>;
}

/// Every certificate the node serves.
pub fn list(
    store: &dyn CertStore,
    clock: &Clock,
    caller: &Caller,
) -> Result<Vec<serde_json::Value>, SyscallError> {
    caller.require_admin()?;
    store.certs(clock.now_millis())
}

/// Adds (or replaces) the custom certificate for `domain`.
pub fn add(
    store: &dyn CertStore,
    clock: &Clock,
    caller: &Caller,
    domain: &str,
    chain_pem: &str,
    key_pem: &str,
) -> Result<serde_json::Value, SyscallError> {
    caller.require_admin()?;
    store.add(domain, chain_pem, key_pem, clock.now_millis())
}

/// Removes the custom certificate `name`.
pub fn remove(store: &dyn CertStore, caller: &Caller, name: &str) -> Result<(), SyscallError> {
    caller.require_admin()?;
    store.remove(name)
}

/// The ACME client's last status as stored in the data file (JSON of `net::tls::acme`'s
/// `Status`, which lives above), for `fazt server status` with or without a node.
pub fn acme_status(
    storage: &crate::storage::Storage,
    caller: &Caller,
) -> Result<Option<String>, SyscallError> {
    caller.require_admin()?;
    use crate::storage::state::{self, StateKey};
    storage.read_blocking(|c| Ok::<_, SyscallError>(state::get(c, StateKey::AcmeStatus)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A store that counts what reaches it.
    #[derive(Default)]
    struct Counting(Cell<u32>);

    impl CertStore for Counting {
        fn certs(&self, _: UnixMillis) -> Result<Vec<serde_json::Value>, SyscallError> {
            self.0.set(self.0.get() + 1);
            Ok(vec![])
        }
        fn add(&self, _: &str, _: &str, _: &str, _: UnixMillis) -> Result<serde_json::Value, SyscallError> {
            self.0.set(self.0.get() + 1);
            Ok(serde_json::json!({}))
        }
        fn remove(&self, _: &str) -> Result<(), SyscallError> {
            self.0.set(self.0.get() + 1);
            Ok(())
        }
    }

    #[test]
    fn apps_never_reach_the_certificate_store() {
        let (store, clock, app) = (Counting::default(), Clock::new(), Caller::app("a"));
        assert_eq!(list(&store, &clock, &app).unwrap_err().code(), "forbidden");
        assert_eq!(add(&store, &clock, &app, "a.example", "", "").unwrap_err().code(), "forbidden");
        assert_eq!(remove(&store, &app, "a.example").unwrap_err().code(), "forbidden");
        assert_eq!(store.0.get(), 0);
        list(&store, &clock, &Caller::Local).unwrap();
        assert_eq!(store.0.get(), 1);
    }
}
