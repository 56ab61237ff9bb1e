//! The node's UDP time server: answers NTP clients (`ntpdig`, `chronyd`, `sntp`, other
//! fazt nodes) with the kernel clock, so a LAN without internet can take its time from
//! a fazt node.
//!
//! A plain request gets a plain NTP answer. A request with fazt's nonce extension gets
//! the answer signed with the node key over the header and that nonce, which is how
//! peers tell a real fazt node from anyone else on the LAN. Malformed requests and
//! other modes (control, broadcast) are ignored and counted; answers are capped per
//! second so the server cannot be used to flood.

use super::ntp::{self, mode, Extension, NtpTimestamp, Packet, PacketError};
use super::{Clock, UnixNanos};
use crate::identity::NodeIdentity;
use async_io::Async;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most answers per second (plain and signed together); more requests are dropped.
pub const MAX_ANSWERS_PER_SECOND: u64 = 2000;
/// Most signed answers per second (a signature costs more than an answer).
pub const MAX_SIGNED_PER_SECOND: u64 = 200;
/// Most answers per second to one address, so one sender cannot use up the budget of
/// the honest peers.
pub const MAX_ANSWERS_PER_ADDRESS: u32 = 64;
/// Most signed answers per second to one address.
pub const MAX_SIGNED_PER_ADDRESS: u32 = 16;
/// Addresses tracked per second; senders beyond this share the global budget only.
const MAX_TRACKED_ADDRESSES: usize = 4096;

/// What the server tells clients about its clock, kept current by the timekeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    /// Stratum (1..=15).
    pub stratum: u8,
    /// Leap indicator (0; 3 only if the node must not be used).
    pub leap: u8,
    /// Reference id.
    pub reference_id: [u8; 4],
    /// When the clock was last corrected (kernel clock), or 0.
    pub reference_time: UnixNanos,
    /// Round trip to the reference, nanoseconds.
    pub root_delay: i64,
    /// Error estimate, nanoseconds.
    pub root_dispersion: i64,
}

/// Requests seen, by outcome.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Answered.
    pub answered: AtomicU64,
    /// Answered with a signature.
    pub signed: AtomicU64,
    /// Not NTP at all (short, oversized, bad extension).
    pub malformed: AtomicU64,
    /// An NTP version we do not speak.
    pub wrong_version: AtomicU64,
    /// Not a client request (control messages, broadcasts, server answers).
    pub wrong_mode: AtomicU64,
    /// Dropped by the per-second cap.
    pub rate_limited: AtomicU64,
    /// Signing failed (keystore error).
    pub sign_failed: AtomicU64,
}

/// The answer to `request`, received at kernel time `received` and sent at `sent`.
pub fn answer(request: &Packet, received: UnixNanos, sent: UnixNanos, ad: &Advertised) -> Packet {
    Packet {
        leap: ad.leap,
        version: request.version,
        mode: mode::SERVER,
        stratum: ad.stratum,
        poll: request.poll.clamp(4, 17),
        precision: -20,
        root_delay: ntp::nanos_to_short(ad.root_delay),
        root_dispersion: ntp::nanos_to_short(ad.root_dispersion),
        reference_id: ad.reference_id,
        reference: match ad.reference_time {
            0 => NtpTimestamp::default(),
            t => NtpTimestamp::from_unix_nanos(t),
        },
        origin: request.transmit,
        receive: NtpTimestamp::from_unix_nanos(received),
        transmit: NtpTimestamp::from_unix_nanos(sent),
        extensions: Vec::new(),
    }
}

/// A per-second budget, global and per sender address.
#[derive(Debug)]
struct Budget {
    window: Instant,
    plain: u64,
    signed: u64,
    per_address: HashMap<IpAddr, (u32, u32)>,
}

impl Budget {
    fn new() -> Self {
        Budget { window: Instant::now(), plain: 0, signed: 0, per_address: HashMap::new() }
    }

    /// Takes one answer (signed or not) for `from`; false when over a limit. A sender
    /// over its own limit does not use up the global budget.
    fn take(&mut self, from: IpAddr, signed: bool) -> bool {
        if self.window.elapsed().as_secs() >= 1 {
            *self = Budget::new();
        }
        if self.per_address.contains_key(&from) || self.per_address.len() < MAX_TRACKED_ADDRESSES {
            let entry = self.per_address.entry(from).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u32::from(signed);
            if entry.0 > MAX_ANSWERS_PER_ADDRESS || entry.1 > MAX_SIGNED_PER_ADDRESS {
                return false;
            }
        }
        self.plain += 1;
        self.signed += u64::from(signed);
        self.plain <= MAX_ANSWERS_PER_SECOND && self.signed <= MAX_SIGNED_PER_SECOND
    }
}

/// The running server.
#[derive(Debug)]
pub struct TimeServer {
    socket: Async<UdpSocket>,
    clock: Arc<Clock>,
    identity: Arc<NodeIdentity>,
    advertised: Arc<Mutex<Advertised>>,
    counters: Arc<ServerCounters>,
}

impl TimeServer {
    /// Binds the UDP port (`port` 0: any free port).
    pub fn bind(
        addr: SocketAddr,
        clock: Arc<Clock>,
        identity: Arc<NodeIdentity>,
        advertised: Arc<Mutex<Advertised>>,
        counters: Arc<ServerCounters>,
    ) -> io::Result<TimeServer> {
        let socket = Async::<UdpSocket>::bind(addr)?;
        Ok(TimeServer { socket, clock, identity, advertised, counters })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Answers requests until the task is dropped.
    pub async fn run(self) {
        let mut buf = [0u8; ntp::MAX_PACKET + 1];
        let mut budget = Budget::new();
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf).await {
                Ok(got) => got,
                Err(err) => {
                    tracing::warn!(error = %err, "time server receive failed");
                    async_io::Timer::after(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let received = self.clock.now_nanos();
            if let Some(reply) = self.handle(&buf[..len], from.ip(), received, &mut budget).await {
                if let Err(err) = self.socket.send_to(&reply, from).await {
                    tracing::debug!(error = %err, %from, "time answer not sent");
                }
            }
        }
    }

    async fn handle(
        &self,
        bytes: &[u8],
        from: IpAddr,
        received: UnixNanos,
        budget: &mut Budget,
    ) -> Option<Vec<u8>> {
        let count = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        let request = match Packet::parse(bytes) {
            Ok(p) => p,
            Err(err) => {
                count(match err {
                    PacketError::Version(_) => &self.counters.wrong_version,
                    _ => &self.counters.malformed,
                });
                return None;
            }
        };
        if request.mode != mode::CLIENT {
            count(&self.counters.wrong_mode);
            return None;
        }
        let nonce = request.extension(ntp::EXT_FAZT_NONCE).map(<[u8]>::to_vec);
        if !budget.take(from, nonce.is_some()) {
            count(&self.counters.rate_limited);
            return None;
        }
        let advertised = *self.advertised.lock().unwrap_or_else(|e| e.into_inner());
        let mut reply = answer(&request, received, self.clock.now_nanos(), &advertised);
        if let Some(nonce) = nonce {
            let message = ntp::signed_answer(&reply.header_bytes(), &nonce);
            let identity = self.identity.clone();
            match blocking::unblock(move || identity.sign(&message)).await {
                Ok(sig) => {
                    reply.extensions.push(Extension { kind: ntp::EXT_FAZT_SIGNATURE, value: sig.0.to_vec() });
                    count(&self.counters.signed);
                }
                Err(err) => {
                    count(&self.counters.sign_failed);
                    tracing::warn!(error = %err, "cannot sign a time answer");
                    return None;
                }
            }
        }
        count(&self.counters.answered);
        Some(reply.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sender_cannot_use_up_the_budget_of_the_others() {
        let mut budget = Budget::new();
        let noisy: IpAddr = "10.0.0.66".parse().unwrap();
        let honest: IpAddr = "10.0.0.2".parse().unwrap();
        let granted = (0..1000).filter(|_| budget.take(noisy, true)).count();
        assert_eq!(granted, MAX_SIGNED_PER_ADDRESS as usize);
        assert!(budget.take(honest, true), "an honest peer still gets its answer");
    }

    #[test]
    fn answers_echo_the_request_and_carry_our_clock() {
        let request = Packet {
            version: 3,
            mode: mode::CLIENT,
            transmit: NtpTimestamp(42),
            poll: 30,
            ..Packet::default()
        };
        let ad = Advertised {
            stratum: 9,
            leap: 0,
            reference_id: *b"LOCL",
            reference_time: 0,
            root_delay: 0,
            root_dispersion: 10_000_000,
        };
        let reply = answer(&request, 1_000_000_000_000_000_000, 1_000_000_000_000_500_000, &ad);
        assert_eq!(reply.version, 3, "answers in the client's version");
        assert_eq!(reply.mode, mode::SERVER);
        assert_eq!(reply.origin, NtpTimestamp(42));
        assert_eq!(reply.poll, 17);
        assert_eq!(reply.stratum, 9);
        assert!(reply.reference.is_zero());
        assert!(reply.transmit.0 > reply.receive.0);
    }
}
