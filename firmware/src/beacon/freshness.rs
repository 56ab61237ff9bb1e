//! Replay protection: every signed announcement carries a sequence (`seq` in the TXT
//! record), and a node refuses a signed record older than the newest it has seen from
//! the same node id. A recorded announcement replayed later (to point peers at an
//! address the node has left) is then refused by every node that heard a newer one.
//!
//! The sequence is `<boot>-<n>`: `boot` grows at every start of the node (the larger of
//! the kernel clock in milliseconds and the previous boot plus one, kept in
//! `data.db`, so neither a clock set back nor a restored backup alone makes it go
//! back), `n` counts seconds since the beacon started (steady clock). No clock of the
//! receiver is involved, so a node whose clock is wrong (the timekeeper is there to fix
//! it, from these very peers) still accepts its peers.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Where an announcement stands in its node's history; later ones compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Seq {
    /// Grows at every start of the node.
    pub boot: u64,
    /// Seconds since the beacon started.
    pub n: u64,
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.boot, self.n)
    }
}

impl Seq {
    /// Parses [`Seq`]'s text strictly (`<digits>-<digits>`, at most 20 digits each).
    pub fn parse(text: &str) -> Option<Seq> {
        let (boot, n) = text.split_once('-')?;
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        Some(Seq { boot: number(boot)?, n: number(n)? })
    }

    /// The boot value of a start now: `now_ms`, unless the previous boot was not
    /// smaller (a clock set back), then one more than it.
    pub fn next_boot(previous: Option<u64>, now_ms: i64) -> u64 {
        let now = u64::try_from(now_ms).unwrap_or(0);
        match previous {
            Some(previous) if previous >= now => previous.saturating_add(1),
            _ => now,
        }
    }
}

/// The newest sequence seen per node id, for at most `max` ids (the least recently
/// updated are forgotten first, so a flood of made-up ids cannot grow memory).
#[derive(Debug)]
pub struct Freshness {
    max: usize,
    newest: HashMap<String, (Seq, u64)>,
    /// Update stamp -> id, oldest first.
    order: BTreeMap<u64, String>,
    stamp: u64,
}

impl Freshness {
    /// Remembers at most `max` ids (at least 1).
    pub fn new(max: usize) -> Self {
        Freshness { max: max.max(1), newest: HashMap::new(), order: BTreeMap::new(), stamp: 0 }
    }

    /// True when `seq` is not older than the newest seen from `id` (and remembers it);
    /// false for a replay of an older announcement.
    pub fn admit(&mut self, id: &str, seq: Seq) -> bool {
        self.stamp += 1;
        let stamp = self.stamp;
        if let Some((newest, at)) = self.newest.get_mut(id) {
            if seq < *newest {
                return false;
            }
            *newest = seq;
            self.order.remove(at);
            *at = stamp;
            self.order.insert(stamp, id.to_string());
            return true;
        }
        if self.newest.len() >= self.max {
            if let Some((_, oldest)) = self.order.pop_first() {
                self.newest.remove(&oldest);
            }
        }
        self.newest.insert(id.to_string(), (seq, stamp));
        self.order.insert(stamp, id.to_string());
        true
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.newest.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(boot: u64, n: u64) -> Seq {
        Seq { boot, n }
    }

    #[test]
    fn older_announcements_are_refused() {
        let mut fresh = Freshness::new(10);
        assert!(fresh.admit("a", seq(5, 30)));
        assert!(fresh.admit("a", seq(5, 30)), "the same announcement again (an answer to a query)");
        assert!(fresh.admit("a", seq(5, 60)));
        assert!(!fresh.admit("a", seq(5, 30)), "a replay within the boot");
        assert!(!fresh.admit("a", seq(4, 9999)), "a replay from an earlier boot");
        assert!(fresh.admit("a", seq(6, 0)), "a restart");
        assert!(fresh.admit("b", seq(1, 0)), "ids are independent");
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_least_recent() {
        let mut fresh = Freshness::new(3);
        for id in ["a", "b", "c"] {
            assert!(fresh.admit(id, seq(1, 10)));
        }
        assert!(fresh.admit("a", seq(1, 20)), "a is now the most recent");
        assert!(fresh.admit("d", seq(1, 0)));
        assert_eq!(fresh.len(), 3);
        assert!(!fresh.admit("a", seq(1, 10)), "a is still remembered");
        assert!(fresh.admit("b", seq(1, 0)), "b was forgotten");
        for i in 0..1000 {
            fresh.admit(&format!("flood{i}"), seq(1, 0));
        }
        assert_eq!(fresh.len(), 3);
    }

    #[test]
    fn seq_text_is_parsed_strictly() {
        assert_eq!(Seq::parse("1764250000000-42"), Some(seq(1764250000000, 42)));
        assert_eq!(seq(7, 3).to_string(), "7-3");
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "+1-2",
            "1- 2",
            "a-1",
            "123456789012345678901-1",
            "99999999999999999999-1",
        ] {
            assert_eq!(Seq::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn boots_grow_even_when_the_clock_goes_back() {
        assert_eq!(Seq::next_boot(None, 1000), 1000);
        assert_eq!(Seq::next_boot(Some(500), 1000), 1000);
        assert_eq!(Seq::next_boot(Some(1000), 1000), 1001);
        assert_eq!(Seq::next_boot(Some(5000), 1000), 5001, "clock set back");
        assert_eq!(Seq::next_boot(None, -5), 0);
    }
}
