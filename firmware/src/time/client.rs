//! One NTP exchange with a server or a fazt peer: the four timestamps of RFC 5905, so
//! the round trip is measured and taken out of the offset.
//!
//! T1 and T4 are read from the board clock (not the corrected kernel clock), so a
//! measurement says what the correction should be, whatever it is now. The request
//! carries a random transmit timestamp (the answer must echo it, which defeats blind
//! spoofing and replays) and, for a peer, a random nonce the peer signs with its node
//! key; an answer that fails either check is counted and ignored, and the exchange
//! keeps waiting for the real one until its timeout.

use super::ntp::{self, mode, Extension, NtpTimestamp, Packet};
use super::{Clock, UnixNanos};
use async_io::{Async, Timer};
use fazt_hal::keystore::{self, PublicKey, Signature};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a source's clock is assumed to drift at most while we do not hear from it
/// (parts per million), as NTP assumes.
pub const MAX_DRIFT_PPM: i64 = 15;
/// The least error claimed for any sample: timestamps are taken in user space, after
/// scheduling and system-call latency.
pub const PRECISION_FLOOR: i64 = 500_000;

/// One measurement of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Correction the source suggests (its time minus our board time), nanoseconds.
    pub offset: i64,
    /// Round-trip delay minus the source's processing time, nanoseconds.
    pub delay: i64,
    /// The source's own delay to its reference, nanoseconds.
    pub root_delay: i64,
    /// The source's own error estimate, nanoseconds.
    pub root_dispersion: i64,
    /// The source's stratum.
    pub stratum: u8,
    /// The source's reference id (where it takes its time from).
    pub reference_id: [u8; 4],
    /// Board time when the answer arrived.
    pub at: UnixNanos,
}

impl Sample {
    /// How wrong `offset` may be at board time `now` (root distance): half the round
    /// trips to the reference, the source's own error, and drift since the sample.
    pub fn distance(&self, now: UnixNanos) -> i64 {
        let age = now.saturating_sub(self.at).max(0);
        (self.delay / 2)
            .saturating_add(self.root_delay / 2)
            .saturating_add(self.root_dispersion)
            .saturating_add(PRECISION_FLOOR)
            .saturating_add(age / 1_000_000 * MAX_DRIFT_PPM)
    }
}

/// Why an exchange gave no sample.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Nothing acceptable arrived in time.
    #[error("no valid answer within {0:?}")]
    Timeout(Duration),
    /// The socket failed.
    #[error("network error: {0}")]
    Io(#[from] io::Error),
    /// The source says its own clock is not synchronized.
    #[error("the source is not synchronized (stratum {stratum}, leap {leap})")]
    Unsynchronized {
        /// Its stratum.
        stratum: u8,
        /// Its leap indicator.
        leap: u8,
    },
    /// A kiss-o'-death answer (RATE, DENY, ...): the server asks us to back off.
    #[error("the server refused us (kiss code {0})")]
    Kiss(String),
}

/// Answers that arrived but were ignored, by reason.
#[derive(Debug, Default)]
pub struct ClientCounters {
    /// Not an NTP packet (short, wrong version, bad extension).
    pub malformed: AtomicU64,
    /// Not an answer to our outstanding request (replayed, spoofed or late).
    pub unmatched: AtomicU64,
    /// From a peer but without a signature.
    pub unsigned: AtomicU64,
    /// From a peer with a signature that does not verify.
    pub bad_signature: AtomicU64,
}

/// Polls `addr` once. With `peer_key`, the answer must be signed by that key.
pub async fn query(
    addr: SocketAddr,
    clock: &Clock,
    peer_key: Option<&PublicKey>,
    timeout: Duration,
    counters: &ClientCounters,
) -> Result<Sample, QueryError> {
    let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
    let socket = Async::<UdpSocket>::bind(local)?;
    socket.get_ref().connect(addr)?;
    let mut nonce = [0u8; ntp::NONCE_LEN];
    let mut transmit = [0u8; 8];
    getrandom_fill(&mut nonce)?;
    getrandom_fill(&mut transmit)?;
    let transmit = NtpTimestamp(u64::from_be_bytes(transmit));
    let request = Packet {
        version: 4,
        mode: mode::CLIENT,
        transmit,
        extensions: match peer_key {
            Some(_) => vec![Extension { kind: ntp::EXT_FAZT_NONCE, value: nonce.to_vec() }],
            None => Vec::new(),
        },
        ..Packet::default()
    };
    let bytes = request.encode();
    let t1 = clock.board_nanos();
    socket.send(&bytes).await?;
    let wait = async {
        let mut buf = [0u8; ntp::MAX_PACKET + 1];
        loop {
            let len = socket.recv(&mut buf).await?;
            let t4 = clock.board_nanos();
            let answer = match Packet::parse(&buf[..len]) {
                Ok(p) if p.mode == mode::SERVER => p,
                _ => {
                    counters.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if answer.origin != transmit {
                counters.unmatched.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(key) = peer_key {
                match answer.extension(ntp::EXT_FAZT_SIGNATURE) {
                    None => {
                        counters.unsigned.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Some(sig) => {
                        let message = ntp::signed_answer(&answer.header_bytes(), &nonce);
                        let valid = <[u8; 64]>::try_from(sig)
                            .is_ok_and(|s| keystore::verify(key, &message, &Signature(s)));
                        if !valid {
                            counters.bad_signature.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
            }
            return to_sample(&answer, t1, t4);
        }
    };
    futures_lite::future::or(wait, async {
        Timer::after(timeout).await;
        Err(QueryError::Timeout(timeout))
    })
    .await
}

/// The offset and delay of an answer (RFC 5905 section 8).
fn to_sample(answer: &Packet, t1: UnixNanos, t4: UnixNanos) -> Result<Sample, QueryError> {
    if answer.stratum == 0 {
        return Err(QueryError::Kiss(String::from_utf8_lossy(&answer.reference_id).into_owned()));
    }
    if answer.leap == 3 || answer.stratum >= 16 || answer.transmit.is_zero() {
        return Err(QueryError::Unsynchronized { stratum: answer.stratum, leap: answer.leap });
    }
    let t2 = answer.receive.to_unix_nanos(t1);
    let t3 = answer.transmit.to_unix_nanos(t1);
    let offset = ((t2 as i128 - t1 as i128) + (t3 as i128 - t4 as i128)) / 2;
    let delay = (t4 as i128 - t1 as i128) - (t3 as i128 - t2 as i128);
    Ok(Sample {
        offset: offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        delay: delay.clamp(0, i64::MAX as i128) as i64,
        root_delay: ntp::short_to_nanos(answer.root_delay),
        root_dispersion: ntp::short_to_nanos(answer.root_dispersion),
        stratum: answer.stratum,
        reference_id: answer.reference_id,
        at: t4,
    })
}

fn getrandom_fill(buf: &mut [u8]) -> io::Result<()> {
    use rand::RngCore;
    rand::rngs::OsRng.try_fill_bytes(buf).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn offset_and_delay_take_the_round_trip_out() {
        // Server 10 s ahead; 4 ms each way; 1 ms processing.
        let t1 = 1_000 * S;
        let t2 = t1 + 10 * S + 4_000_000;
        let t3 = t2 + 1_000_000;
        let t4 = t1 + 9_000_000;
        let answer = Packet {
            version: 4,
            mode: mode::SERVER,
            stratum: 2,
            receive: NtpTimestamp::from_unix_nanos(t2),
            transmit: NtpTimestamp::from_unix_nanos(t3),
            ..Packet::default()
        };
        let sample = to_sample(&answer, t1, t4).unwrap();
        assert!((sample.offset - 10 * S).abs() < 10, "{sample:?}");
        assert!((sample.delay - 8_000_000).abs() < 10, "{sample:?}");
        assert!(sample.distance(t4) >= 4_000_000 + PRECISION_FLOOR);
        assert!(sample.distance(t4 + 1000 * S) > sample.distance(t4), "distance grows with age");
    }

    /// A fake peer on loopback: answers each request first with a replay (wrong
    /// origin), then unsigned, then with a bad signature, then properly signed.
    #[test]
    fn forged_replayed_and_unsigned_answers_are_counted_and_skipped() {
        use fazt_hal::keystore::{Keystore, MemorySeeds, SoftwareKeystore};
        let keys = SoftwareKeystore::new(MemorySeeds::default());
        let public = keys.public_key("node").unwrap();
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 600];
            let (len, from) = server.recv_from(&mut buf).unwrap();
            let request = Packet::parse(&buf[..len]).unwrap();
            let nonce = request.extension(ntp::EXT_FAZT_NONCE).unwrap().to_vec();
            let now = crate::time::Clock::new().now_nanos();
            let mut answer = Packet {
                version: 4,
                mode: mode::SERVER,
                stratum: 5,
                origin: request.transmit,
                receive: NtpTimestamp::from_unix_nanos(now),
                transmit: NtpTimestamp::from_unix_nanos(now),
                ..Packet::default()
            };
            let replay = Packet { origin: NtpTimestamp(request.transmit.0 ^ 1), ..answer.clone() };
            server.send_to(&replay.encode(), from).unwrap();
            server.send_to(&answer.encode(), from).unwrap();
            let mut forged = answer.clone();
            forged.extensions.push(Extension { kind: ntp::EXT_FAZT_SIGNATURE, value: vec![7; 64] });
            server.send_to(&forged.encode(), from).unwrap();
            server.send_to(b"garbage", from).unwrap();
            let sig = keys.sign("node", &ntp::signed_answer(&answer.header_bytes(), &nonce)).unwrap();
            answer.extensions.push(Extension { kind: ntp::EXT_FAZT_SIGNATURE, value: sig.0.to_vec() });
            server.send_to(&answer.encode(), from).unwrap();
        });
        let counters = ClientCounters::default();
        let clock = crate::time::Clock::new();
        let sample =
            smol::block_on(query(addr, &clock, Some(&public), Duration::from_secs(5), &counters)).unwrap();
        peer.join().unwrap();
        assert_eq!(sample.stratum, 5);
        assert!(sample.offset.abs() < 1_000_000_000, "{sample:?}");
        assert_eq!(counters.unmatched.load(Ordering::Relaxed), 1);
        assert_eq!(counters.unsigned.load(Ordering::Relaxed), 1);
        assert_eq!(counters.bad_signature.load(Ordering::Relaxed), 1);
        assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_silent_source_times_out() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let counters = ClientCounters::default();
        let clock = crate::time::Clock::new();
        let result = smol::block_on(query(
            silent.local_addr().unwrap(),
            &clock,
            None,
            Duration::from_millis(100),
            &counters,
        ));
        assert!(matches!(result, Err(QueryError::Timeout(_))), "{result:?}");
    }

    #[test]
    fn kiss_and_unsynchronized_answers_give_no_sample() {
        let kiss = Packet { mode: mode::SERVER, stratum: 0, reference_id: *b"RATE", ..Packet::default() };
        assert!(matches!(to_sample(&kiss, 0, 0), Err(QueryError::Kiss(code)) if code == "RATE"));
        let unsync =
            Packet { mode: mode::SERVER, stratum: 16, transmit: NtpTimestamp(1), ..Packet::default() };
        assert!(matches!(to_sample(&unsync, 0, 0), Err(QueryError::Unsynchronized { .. })));
    }
}
