//! Which source sets the clock, and to what: a pure function of what was measured.
//!
//! Best first:
//! 1. NTP servers the user configured, by majority ([`consensus::select`]).
//! 2. The OS, when something else (chrony, systemd-timesyncd) already keeps the board
//!    clock synchronized: the correction goes back to zero.
//! 3. fazt peers. Peers synchronized to something better than a local clock (stratum
//!    below our local stratum) are preferred, and we follow them; otherwise all peers
//!    and our own clock vote as equals, so one node alone (or a minority) can neither
//!    drag the others nor be dragged, and two nodes that disagree both stay put.
//!
//! With none of these, nothing changes (the RTC and the persisted time were applied
//! at boot).

use crate::time::client::{Sample, PRECISION_FLOOR};
use crate::time::consensus::{self, Candidate};
use serde::Serialize;

/// Where the kernel clock's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Configured NTP servers.
    Ntp,
    /// The OS keeps the board clock synchronized.
    System,
    /// Consensus of fazt peers.
    Peers,
    /// The board's battery-backed clock, read at boot.
    Rtc,
    /// The last time saved before the node stopped (a floor, not a source of truth).
    Persisted,
    /// The board clock alone, unsynchronized.
    Board,
}

impl SourceKind {
    /// A short name for logs and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Ntp => "ntp",
            SourceKind::System => "system",
            SourceKind::Peers => "peers",
            SourceKind::Rtc => "rtc",
            SourceKind::Persisted => "persisted",
            SourceKind::Board => "board",
        }
    }
}

/// A source's best recent sample, with what marks it.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// The sample.
    pub sample: Sample,
    /// The source takes its time from us (its reference id is ours): using it would be
    /// a loop.
    pub loops_to_us: bool,
}

/// What is known at the moment of deciding.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// Board time now.
    pub now: i64,
    /// Best sample per reachable NTP server.
    pub ntp: &'a [Measured],
    /// The OS's error bound when it keeps the board clock synchronized.
    pub os_synchronized: Option<i64>,
    /// Best sample per reachable peer.
    pub peers: &'a [Measured],
    /// The stratum of a local clock.
    pub local_stratum: u8,
    /// The correction in force.
    pub current: i64,
    /// How wrong our own clock may be, for its vote among equal peers.
    pub own_distance: i64,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The winning kind of source.
    pub source: SourceKind,
    /// The correction to move to.
    pub estimate: i64,
    /// Its error bound, nanoseconds.
    pub error: i64,
    /// The stratum to serve.
    pub stratum: u8,
    /// Per NTP server (input order): whether it counted.
    pub ntp_included: Vec<bool>,
    /// Per peer (input order): whether it counted.
    pub peers_included: Vec<bool>,
}

/// Decides; `None` keeps the clock as it is.
pub fn decide(inputs: &Inputs) -> Option<Decision> {
    let candidate =
        |m: &Measured| Candidate { offset: m.sample.offset, distance: m.sample.distance(inputs.now) };
    let usable = |m: &Measured| !m.loops_to_us;
    let mut decision = Decision {
        source: SourceKind::Board,
        estimate: inputs.current,
        error: 0,
        stratum: inputs.local_stratum,
        ntp_included: vec![false; inputs.ntp.len()],
        peers_included: vec![false; inputs.peers.len()],
    };
    // 1. NTP servers.
    let ntp: Vec<usize> = (0..inputs.ntp.len()).filter(|&i| usable(&inputs.ntp[i])).collect();
    if let Some(v) = consensus::select(&ntp.iter().map(|&i| candidate(&inputs.ntp[i])).collect::<Vec<_>>()) {
        let best_stratum = mark_included(&mut decision.ntp_included, &ntp, &v.included, inputs.ntp);
        decision.source = SourceKind::Ntp;
        decision.estimate = v.offset;
        decision.error = v.error;
        decision.stratum = (best_stratum + 1).min(15);
        return Some(decision);
    }
    // 2. The OS.
    if let Some(max_error) = inputs.os_synchronized {
        decision.source = SourceKind::System;
        decision.estimate = 0;
        decision.error = max_error;
        decision.stratum = 3.min(inputs.local_stratum);
        return Some(decision);
    }
    // 3. Peers: the better-synchronized class if there is one, else all as equals.
    let synced: Vec<usize> = (0..inputs.peers.len())
        .filter(|&i| usable(&inputs.peers[i]) && inputs.peers[i].sample.stratum < inputs.local_stratum)
        .collect();
    let (voters, with_self) = if synced.is_empty() {
        ((0..inputs.peers.len()).filter(|&i| usable(&inputs.peers[i])).collect::<Vec<_>>(), true)
    } else {
        (synced, false)
    };
    // Our own clock and one other are no majority: neither moves (two nodes that
    // disagree must not swap times or meet halfway, round after round).
    if voters.is_empty() || (with_self && voters.len() < 2) {
        return None;
    }
    let mut candidates: Vec<Candidate> = voters.iter().map(|&i| candidate(&inputs.peers[i])).collect();
    if with_self {
        candidates.push(Candidate { offset: inputs.current, distance: inputs.own_distance });
    }
    let v = consensus::select(&candidates)?;
    let best_stratum = mark_included(&mut decision.peers_included, &voters, &v.included, inputs.peers);
    decision.source = SourceKind::Peers;
    decision.estimate = v.offset;
    decision.error = if with_self {
        // Among equals nobody knows the true time; what can be stated is how closely the
        // majority agrees, plus what one exchange cannot see (half the quickest round
        // trip, timestamping). The interval width would only echo the peers' own
        // pessimism back and forth.
        let quickest = voters
            .iter()
            .zip(&v.included)
            .filter(|(_, k)| **k)
            .map(|(&i, _)| inputs.peers[i].sample.delay)
            .min()
            .unwrap_or(0);
        v.spread.saturating_add(quickest / 2).saturating_add(PRECISION_FLOOR)
    } else {
        v.error
    };
    // Among equals nobody is a reference: the stratum stays local, or it would creep up
    // by one per round as the nodes take their time from each other.
    decision.stratum = if with_self { inputs.local_stratum } else { (best_stratum + 1).min(15) };
    Some(decision)
}

/// Copies a verdict's `included` (one per voter, `voters` indexing `measured`) into
/// `flags` (one per measured source); returns the best stratum among those included.
fn mark_included(flags: &mut [bool], voters: &[usize], included: &[bool], measured: &[Measured]) -> u8 {
    let mut best_stratum = 15;
    for (&i, &counted) in voters.iter().zip(included) {
        flags[i] = counted;
        if counted {
            best_stratum = best_stratum.min(measured[i].sample.stratum);
        }
    }
    best_stratum
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;
    const HOUR: i64 = 3_600_000 * MS;

    fn m(offset: i64, stratum: u8) -> Measured {
        Measured {
            sample: Sample {
                offset,
                delay: MS / 5,
                root_delay: 0,
                root_dispersion: 0,
                stratum,
                reference_id: [0; 4],
                at: 0,
            },
            loops_to_us: false,
        }
    }

    fn inputs<'a>(ntp: &'a [Measured], peers: &'a [Measured], current: i64) -> Inputs<'a> {
        Inputs {
            now: 0,
            ntp,
            os_synchronized: None,
            peers,
            local_stratum: 10,
            current,
            own_distance: 100 * MS,
        }
    }

    #[test]
    fn ntp_beats_everything() {
        let d = decide(&Inputs { os_synchronized: Some(MS), ..inputs(&[m(5 * MS, 2)], &[m(HOUR, 1)], 0) })
            .unwrap();
        assert_eq!((d.source, d.estimate, d.stratum), (SourceKind::Ntp, 5 * MS, 3));
    }

    #[test]
    fn a_synchronized_os_is_trusted_over_peers() {
        let d = decide(&Inputs { os_synchronized: Some(MS), ..inputs(&[], &[m(HOUR, 10)], HOUR) }).unwrap();
        assert_eq!((d.source, d.estimate), (SourceKind::System, 0));
    }

    #[test]
    fn a_node_hours_off_joins_the_majority_of_its_equals() {
        // Our clock is 3 h ahead: peers say -3 h; our own vote (0) is outvoted.
        let peers =
            [m(-3 * HOUR, 10), m(-3 * HOUR + MS / 4, 10), m(-3 * HOUR - MS / 4, 10), m(-2 * HOUR, 10)];
        let d = decide(&inputs(&[], &peers, 0)).unwrap();
        assert_eq!(d.source, SourceKind::Peers);
        assert!((d.estimate + 3 * HOUR).abs() <= MS, "{d:?}");
        assert_eq!(d.peers_included, vec![true, true, true, false], "the liar does not count");
        assert_eq!(d.stratum, 10, "equals do not raise the stratum");
    }

    #[test]
    fn one_peer_against_us_moves_nobody() {
        assert_eq!(decide(&inputs(&[], &[m(HOUR, 10)], 0)), None);
        assert_eq!(decide(&inputs(&[], &[m(MS, 10)], 0)), None, "not even halfway when close");
    }

    #[test]
    fn synchronized_peers_are_followed_and_loops_avoided() {
        let peers = [m(HOUR, 4), m(0, 10), m(0, 10)];
        let d = decide(&inputs(&[], &peers, 0)).unwrap();
        assert_eq!((d.estimate, d.stratum), (HOUR, 5), "one synchronized peer outranks local clocks");
        let looped = [Measured { loops_to_us: true, ..m(HOUR, 4) }, m(0, 10), m(0, 10)];
        let d = decide(&inputs(&[], &looped, 0)).unwrap();
        assert_eq!(d.estimate, 0, "a peer that takes its time from us is not a source");
    }
}
