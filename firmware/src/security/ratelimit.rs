//! Login rate limiting: a token bucket per client, and one for all clients, in memory.
//!
//! Per client (an IPv4 address or an IPv6 /64, as the connection caps count them): five
//! attempts at once, then one every twelve seconds (five a minute), slow enough to make
//! guessing a generated password hopeless and lenient enough for a typo or two.
//!
//! All clients together: thirty at once, then one every two seconds. Without it, a
//! guesser spread over many addresses (200 loopback addresses, or the many /64s of a
//! cloud provider) gets five tries from each. There are two of these: one for local
//! clients (loopback, private and link-local addresses) and one for the rest, so that a
//! flood from the internet cannot lock the owner out from their own LAN.

use crate::rules::client::ClientKey;
use crate::security::setup::SetupMode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Attempts one client may make in a burst.
const BURST: f64 = 5.0;
/// Milliseconds for one client to earn back one attempt.
const REFILL_MILLIS: f64 = 12_000.0;
/// Attempts all local (or all public) clients together may make in a burst.
const GLOBAL_BURST: f64 = 30.0;
/// Milliseconds for all clients together to earn back one attempt.
const GLOBAL_REFILL_MILLIS: f64 = 2_000.0;
/// Clients tracked at most; beyond that the fullest buckets are forgotten first, so a
/// flood of spoofed sources cannot grow memory.
const MAX_TRACKED: usize = 10_000;

/// A token bucket: tokens left, as of a time (ms).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

impl Bucket {
    fn full(burst: f64, now: i64) -> Bucket {
        Bucket { tokens: burst, at: now }
    }

    /// The bucket refilled up to `now`.
    fn at(self, now: i64, burst: f64, refill_millis: f64) -> Bucket {
        let tokens = (self.tokens + (now - self.at).max(0) as f64 / refill_millis).min(burst);
        Bucket { tokens, at: now.max(self.at) }
    }

    /// Seconds until one token is back (0 when one is there now).
    fn wait(self, refill_millis: f64) -> u64 {
        if self.tokens >= 1.0 {
            0
        } else {
            (((1.0 - self.tokens) * refill_millis / 1000.0).ceil() as u64).max(1)
        }
    }
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<ClientKey, Bucket>,
    /// All local clients, then all public ones.
    global: [Option<Bucket>; 2],
}

/// The login limiter: per client and for all clients.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    state: Mutex<State>,
}

impl LoginLimiter {
    /// Takes one attempt for a client at `ip` at time `now` (ms); `Err(seconds)` says
    /// how long to wait. A refused attempt takes nothing.
    pub fn attempt(&self, ip: IpAddr, now: i64) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = ClientKey::of(ip);
        if state.clients.len() >= MAX_TRACKED && !state.clients.contains_key(&key) {
            state.clients.retain(|_, b| b.at(now, BURST, REFILL_MILLIS).tokens < BURST);
        }
        let client = state.clients.get(&key).copied().unwrap_or(Bucket::full(BURST, now)).at(
            now,
            BURST,
            REFILL_MILLIS,
        );
        let which = usize::from(!SetupMode::Lan.allows(ip));
        let global = state.global[which].unwrap_or(Bucket::full(GLOBAL_BURST, now)).at(
            now,
            GLOBAL_BURST,
            GLOBAL_REFILL_MILLIS,
        );
        let wait = client.wait(REFILL_MILLIS).max(global.wait(GLOBAL_REFILL_MILLIS));
        if wait > 0 {
            state.clients.insert(key, client);
            state.global[which] = Some(global);
            return Err(wait);
        }
        state.clients.insert(key, Bucket { tokens: client.tokens - 1.0, ..client });
        state.global[which] = Some(Bucket { tokens: global.tokens - 1.0, ..global });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_wait_then_recover() {
        let limiter = LoginLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..5 {
            limiter.attempt(ip, 0).unwrap();
        }
        let wait = limiter.attempt(ip, 0).unwrap_err();
        assert_eq!(wait, 12);
        // Another address is not affected.
        limiter.attempt("10.0.0.2".parse().unwrap(), 0).unwrap();
        limiter.attempt(ip, 12_000).unwrap();
        assert!(limiter.attempt(ip, 12_000).is_err());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let limiter = LoginLimiter::default();
        for i in 0..5 {
            limiter.attempt(format!("2001:db8:0:1::{i}").parse().unwrap(), 0).unwrap();
        }
        assert!(limiter.attempt("2001:db8:0:1:ffff::1".parse().unwrap(), 0).is_err());
        limiter.attempt("2001:db8:0:2::1".parse().unwrap(), 0).unwrap();
    }

    #[test]
    fn many_addresses_share_one_global_budget_and_public_ones_cannot_lock_out_local_ones() {
        let limiter = LoginLimiter::default();
        let public = |i: u32| IpAddr::from([203, 0, (i >> 8) as u8, i as u8]);
        let allowed = (0..200).filter(|&i| limiter.attempt(public(i), 0).is_ok()).count();
        assert_eq!(allowed, 30, "200 public addresses get the global burst, not 5 each");
        assert_eq!(limiter.attempt(public(500), 0), Err(2));
        // Two seconds later, one more.
        limiter.attempt(public(501), 2_000).unwrap();
        assert!(limiter.attempt(public(502), 2_000).is_err());
        // The owner on the LAN is not locked out by the flood.
        limiter.attempt("192.168.1.20".parse().unwrap(), 2_000).unwrap();
        limiter.attempt("127.0.0.1".parse().unwrap(), 2_000).unwrap();
    }
}
