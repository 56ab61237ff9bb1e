//! Login rate limiting: a token bucket per client address, in memory.
//!
//! Five attempts at once, then one every twelve seconds (five a minute): slow enough to
//! make guessing a generated password hopeless, lenient enough for a typo or two.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Attempts allowed in a burst.
const BURST: f64 = 5.0;
/// Milliseconds to earn back one attempt.
const REFILL_MILLIS: f64 = 12_000.0;
/// Addresses tracked at most; beyond that the fullest buckets are forgotten first, so a
/// flood of spoofed sources cannot grow memory.
const MAX_TRACKED: usize = 10_000;

/// Per-address login limiter.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    buckets: Mutex<HashMap<IpAddr, (f64, i64)>>,
}

impl LoginLimiter {
    /// Takes one attempt for `ip` at time `now` (ms); `Err(seconds)` says how long to wait.
    pub fn attempt(&self, ip: IpAddr, now: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            buckets.retain(|_, (tokens, at)| refill(*tokens, *at, now) < BURST);
        }
        let (tokens, at) = buckets.get(&ip).copied().unwrap_or((BURST, now));
        let tokens = refill(tokens, at, now);
        if tokens < 1.0 {
            buckets.insert(ip, (tokens, now));
            let wait = ((1.0 - tokens) * REFILL_MILLIS / 1000.0).ceil() as u64;
            return Err(wait.max(1));
        }
        buckets.insert(ip, (tokens - 1.0, now));
        Ok(())
    }
}

fn refill(tokens: f64, at: i64, now: i64) -> f64 {
    (tokens + (now - at).max(0) as f64 / REFILL_MILLIS).min(BURST)
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
}
