//! What the timekeeper needs from peer discovery, so that `time` does not depend on the
//! beacon (which sits above it): the peers heard now, a stream of changes, and a way to
//! announce the time server's port. The beacon implements [`PeerDirectory`]; tests can
//! give the timekeeper any other.

use futures_lite::stream::Boxed;
use std::net::IpAddr;

/// A peer as the timekeeper sees it: the parts of its announcement that time needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePeer {
    /// Its node id, when it announced one.
    pub id: Option<String>,
    /// Its name on the LAN.
    pub name: String,
    /// The addresses it announced.
    pub addresses: Vec<IpAddr>,
    /// Its public node key (base64url), when announced.
    pub public_key: Option<String>,
    /// Whether its announcement carried a valid signature of that key.
    pub verified: bool,
    /// The UDP port of its time server, when it runs one.
    pub ntp_port: Option<u16>,
}

/// A change in the set of peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerChange {
    /// A peer appeared (the timekeeper polls at once).
    Found,
    /// A peer left.
    Lost,
}

/// Where the timekeeper learns about peers and announces its own time server.
pub trait PeerDirectory: Send + Sync + std::fmt::Debug {
    /// The peers heard now.
    fn peers(&self) -> Vec<TimePeer>;
    /// Changes from now on; the stream ends when discovery stops.
    fn changes(&self) -> Boxed<PeerChange>;
    /// Announces that this node's time server answers on UDP `port`.
    fn announce_ntp_port(&self, port: u16);
}
