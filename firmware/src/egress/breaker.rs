//! Circuit breakers, one per destination host: after `failures` failures in a row the
//! circuit opens and requests to that host fail at once (`circuit_open`) for the
//! cool-down; then one request goes through as a probe (half-open): its success closes
//! the circuit, its failure opens it for another cool-down. A failure is a connection
//! error, a timeout or a 5xx answer; refusals that send nothing do not count. Every
//! admitted request must be recorded, or a half-open circuit would wait for ever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Hosts tracked at most; past it, closed circuits are forgotten first, and a new host
/// goes untracked (no breaker) while every tracked one is open.
pub const MAX_HOSTS: usize = 4096;

/// The state of one host's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests go through; this many failed in a row.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Requests fail fast until `until`.
    Open {
        /// When a probe may go.
        until: Instant,
    },
    /// One probe is on its way; everything else fails fast.
    HalfOpen,
}

/// A change worth an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The circuit opened (again, if a probe failed).
    Opened,
    /// A probe succeeded: the circuit closed.
    Closed,
}

/// Whether a request may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Yes.
    Go,
    /// Yes, as the half-open probe.
    Probe,
    /// No: the circuit is open; try again after this long.
    Open(Duration),
}

/// The breakers of every host.
#[derive(Debug)]
pub struct Breakers {
    failures: u32,
    cooldown: Duration,
    hosts: HashMap<String, State>,
}

impl Breakers {
    /// Breakers that open after `failures` failures in a row (0: never) for `cooldown`.
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        Breakers { failures, cooldown, hosts: HashMap::new() }
    }

    /// Asks to send a request to `host` at `now`.
    pub fn admit(&mut self, host: &str, now: Instant) -> Admit {
        let Some(state) = self.hosts.get_mut(host) else { return Admit::Go };
        match *state {
            State::Closed { .. } => Admit::Go,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                Admit::Probe
            }
            State::Open { until } => Admit::Open(until - now),
            // The probe's answer decides; until then, wait about a cool-down at most.
            State::HalfOpen => Admit::Open(self.cooldown),
        }
    }

    /// Records how a request to `host` ended.
    pub fn record(&mut self, host: &str, success: bool, now: Instant) -> Option<Change> {
        if self.failures == 0 {
            return None;
        }
        if !self.hosts.contains_key(host) {
            if success {
                return None;
            }
            if !self.make_room() {
                return None;
            }
            self.hosts.insert(host.to_string(), State::Closed { failures: 0 });
        }
        let state = self.hosts.get_mut(host)?;
        let (next, change) = match (*state, success) {
            (State::HalfOpen, true) => (State::Closed { failures: 0 }, Some(Change::Closed)),
            (State::HalfOpen, false) => (State::Open { until: now + self.cooldown }, Some(Change::Opened)),
            (State::Closed { .. }, true) => (State::Closed { failures: 0 }, None),
            (State::Closed { failures }, false) if failures + 1 >= self.failures => {
                (State::Open { until: now + self.cooldown }, Some(Change::Opened))
            }
            (State::Closed { failures }, false) => (State::Closed { failures: failures + 1 }, None),
            // A request admitted before the circuit opened ended now: it changes nothing.
            (open @ State::Open { .. }, _) => (open, None),
        };
        *state = next;
        if next == (State::Closed { failures: 0 }) {
            self.hosts.remove(host);
        }
        change
    }

    /// Makes room for one more host; false when every tracked host's circuit is open.
    fn make_room(&mut self) -> bool {
        if self.hosts.len() < MAX_HOSTS {
            return true;
        }
        let closed: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, s)| matches!(s, State::Closed { .. }))
            .map(|(h, _)| h.clone())
            .collect();
        for host in closed {
            self.hosts.remove(&host);
        }
        self.hosts.len() < MAX_HOSTS
    }

    /// Every host with failures or an open circuit, by name.
    pub fn snapshot(&self) -> Vec<(String, State)> {
        let mut list: Vec<(String, State)> = self.hosts.iter().map(|(h, s)| (h.clone(), *s)).collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// Consecutive failures that open a circuit, and the cool-down.
    pub fn settings(&self) -> (u32, Duration) {
        (self.failures, self.cooldown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_fails_fast_then_probes_once_and_recovers() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = Breakers::new(3, cool);
        assert_eq!(b.admit("h", t0), Admit::Go);
        assert_eq!(b.record("h", false, t0), None);
        assert_eq!(b.record("h", false, t0), None);
        // A success in between starts the count again.
        assert_eq!(b.record("h", true, t0), None);
        assert_eq!(b.record("h", false, t0), None);
        assert_eq!(b.record("h", false, t0), None);
        assert_eq!(b.record("h", false, t0), Some(Change::Opened));
        assert_eq!(b.admit("h", t0 + Duration::from_secs(4)), Admit::Open(Duration::from_secs(6)));
        assert_eq!(b.admit("other", t0), Admit::Go, "per host");
        // After the cool-down: one probe, the others still fail fast.
        let t1 = t0 + cool;
        assert_eq!(b.admit("h", t1), Admit::Probe);
        assert!(matches!(b.admit("h", t1), Admit::Open(_)));
        // The probe fails: open again for a full cool-down.
        assert_eq!(b.record("h", false, t1), Some(Change::Opened));
        assert!(matches!(b.admit("h", t1 + Duration::from_secs(9)), Admit::Open(_)));
        let t2 = t1 + cool;
        assert_eq!(b.admit("h", t2), Admit::Probe);
        assert_eq!(b.record("h", true, t2), Some(Change::Closed));
        assert_eq!(b.admit("h", t2), Admit::Go);
        assert!(b.snapshot().is_empty(), "a healthy host is forgotten");
    }

    #[test]
    fn late_answers_and_zero_threshold_change_nothing() {
        let t0 = Instant::now();
        let mut b = Breakers::new(1, Duration::from_secs(5));
        assert_eq!(b.record("h", false, t0), Some(Change::Opened));
        // A request admitted before it opened ends late, successfully.
        assert_eq!(b.record("h", true, t0), None);
        assert!(matches!(b.admit("h", t0), Admit::Open(_)));
        let mut never = Breakers::new(0, Duration::from_secs(5));
        for _ in 0..100 {
            assert_eq!(never.record("h", false, t0), None);
        }
        assert_eq!(never.admit("h", t0), Admit::Go);
    }

    #[test]
    fn tracked_hosts_are_bounded() {
        let t0 = Instant::now();
        let mut b = Breakers::new(1, Duration::from_secs(5));
        for i in 0..MAX_HOSTS + 10 {
            b.record(&format!("h{i}"), false, t0);
        }
        assert_eq!(b.snapshot().len(), MAX_HOSTS, "open circuits are kept; new hosts go untracked");
        let mut b = Breakers::new(2, Duration::from_secs(5));
        for i in 0..MAX_HOSTS + 10 {
            b.record(&format!("h{i}"), false, t0);
        }
        assert!(b.snapshot().len() <= MAX_HOSTS, "closed ones make room");
    }
}
