//! The NTP packet (RFC 5905) with extension fields (RFC 7822): parse and encode.
//!
//! One codec serves both sides: the time server answers `ntpdig`, `chronyd` and other
//! fazt nodes, and the client polls NTP servers and peers. fazt adds two extension
//! fields of its own, which standard clients never send and ignore when they receive:
//! a request nonce and the node's Ed25519 signature over the answer and that nonce.
//! Everything read from the network is bounded: a packet is at most [`MAX_PACKET`]
//! bytes with at most [`MAX_EXTENSIONS`] extension fields.

use super::UnixNanos;

/// The fixed header size.
pub const HEADER_LEN: usize = 48;
/// The largest packet we parse (larger ones are refused, not truncated).
pub const MAX_PACKET: usize = 512;
/// The most extension fields we accept in one packet.
pub const MAX_EXTENSIONS: usize = 4;
/// Extension field type of a fazt request nonce (from the experimental range).
pub const EXT_FAZT_NONCE: u16 = 0xFA01;
/// Extension field type of a fazt answer signature.
pub const EXT_FAZT_SIGNATURE: u16 = 0xFA02;
/// Size of the request nonce.
pub const NONCE_LEN: usize = 24;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// Association modes we deal with.
pub mod mode {
    /// A client request.
    pub const CLIENT: u8 = 3;
    /// A server answer.
    pub const SERVER: u8 = 4;
}

/// Why bytes are not an NTP packet we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer than 48 bytes.
    #[error("short packet ({0} bytes)")]
    Short(usize),
    /// More than [`MAX_PACKET`] bytes.
    #[error("oversized packet ({0} bytes)")]
    Oversized(usize),
    /// A version other than 1 to 4.
    #[error("unsupported NTP version {0}")]
    Version(u8),
    /// An extension field with a bad length, or too many of them.
    #[error("malformed extension field")]
    Extension,
}

/// A 64-bit NTP timestamp: seconds since 1900 (mod 2^32) and a 32-bit fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The NTP timestamp of a Unix time (eras wrap every 136 years; the era is
    /// recovered on decoding).
    pub fn from_unix_nanos(nanos: UnixNanos) -> Self {
        let secs = nanos.div_euclid(1_000_000_000) + NTP_UNIX_OFFSET;
        let frac_nanos = nanos.rem_euclid(1_000_000_000) as u64;
        let frac = (frac_nanos << 32) / 1_000_000_000;
        NtpTimestamp(((secs as u64 & 0xFFFF_FFFF) << 32) | frac)
    }

    /// The Unix time this timestamp means, taking the era nearest to `near` (within
    /// 68 years either side), so 2036's era rollover is handled.
    pub fn to_unix_nanos(self, near: UnixNanos) -> UnixNanos {
        let secs = (self.0 >> 32) as u32;
        let frac = self.0 & 0xFFFF_FFFF;
        let near_secs = (near.div_euclid(1_000_000_000) + NTP_UNIX_OFFSET) as u64 as u32;
        let diff = secs.wrapping_sub(near_secs) as i32 as i64;
        let unix_secs = near.div_euclid(1_000_000_000) + diff;
        let nanos = ((frac * 1_000_000_000) >> 32) as i64;
        unix_secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    }

    /// True for the all-zero "unknown" timestamp.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// A 32-bit NTP short format value (16.16 seconds), in nanoseconds.
pub fn short_to_nanos(value: u32) -> i64 {
    ((value as u64 * 1_000_000_000) >> 16) as i64
}

/// Nanoseconds as a 32-bit NTP short format value (saturating).
pub fn nanos_to_short(nanos: i64) -> u32 {
    let v = (nanos.max(0) as u128) << 16;
    (v / 1_000_000_000).min(u32::MAX as u128) as u32
}

/// An extension field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Field type.
    pub kind: u16,
    /// Value, without the 4-byte header; padded to a multiple of 4 on encoding.
    pub value: Vec<u8>,
}

/// An NTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// Leap indicator (3: unsynchronized).
    pub leap: u8,
    /// Version, 1 to 4.
    pub version: u8,
    /// Association mode.
    pub mode: u8,
    /// Stratum (0: kiss-o'-death, 16: unsynchronized).
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Clock precision, log2 seconds.
    pub precision: i8,
    /// Round-trip delay to the reference, 16.16 seconds.
    pub root_delay: u32,
    /// Dispersion to the reference, 16.16 seconds.
    pub root_dispersion: u32,
    /// Reference id (an IPv4 address or four ASCII letters).
    pub reference_id: [u8; 4],
    /// When the clock was last set.
    pub reference: NtpTimestamp,
    /// T1 as echoed by the server (the client's transmit timestamp).
    pub origin: NtpTimestamp,
    /// T2: when the server received the request.
    pub receive: NtpTimestamp,
    /// T3 (or, in a request, T1): when the packet left.
    pub transmit: NtpTimestamp,
    /// Extension fields.
    pub extensions: Vec<Extension>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    ((u32_at(b, at) as u64) << 32) | u32_at(b, at + 4) as u64
}

impl Packet {
    /// Parses a datagram.
    pub fn parse(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::Short(bytes.len()));
        }
        if bytes.len() > MAX_PACKET {
            return Err(PacketError::Oversized(bytes.len()));
        }
        let version = (bytes[0] >> 3) & 0x7;
        if !(1..=4).contains(&version) {
            return Err(PacketError::Version(version));
        }
        let mut packet = Packet {
            leap: bytes[0] >> 6,
            version,
            mode: bytes[0] & 0x7,
            stratum: bytes[1],
            poll: bytes[2] as i8,
            precision: bytes[3] as i8,
            root_delay: u32_at(bytes, 4),
            root_dispersion: u32_at(bytes, 8),
            reference_id: [bytes[12], bytes[13], bytes[14], bytes[15]],
            reference: NtpTimestamp(u64_at(bytes, 16)),
            origin: NtpTimestamp(u64_at(bytes, 24)),
            receive: NtpTimestamp(u64_at(bytes, 32)),
            transmit: NtpTimestamp(u64_at(bytes, 40)),
            extensions: Vec::new(),
        };
        let mut rest = &bytes[HEADER_LEN..];
        // What follows the header is extension fields, or a legacy MAC (4 + 16 or
        // 4 + 20 bytes), which we neither check nor refuse: symmetric keys are not used.
        if rest.len() == 20 || rest.len() == 24 {
            return Ok(packet);
        }
        while !rest.is_empty() {
            if rest.len() < 4 || packet.extensions.len() == MAX_EXTENSIONS {
                return Err(PacketError::Extension);
            }
            let kind = u16::from_be_bytes([rest[0], rest[1]]);
            let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            if len < 4 || !len.is_multiple_of(4) || len > rest.len() {
                return Err(PacketError::Extension);
            }
            packet.extensions.push(Extension { kind, value: rest[4..len].to_vec() });
            rest = &rest[len..];
        }
        Ok(packet)
    }

    /// The 48-byte header as sent.
    pub fn header_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = (self.leap << 6) | ((self.version & 0x7) << 3) | (self.mode & 0x7);
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        b[12..16].copy_from_slice(&self.reference_id);
        b[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        b[24..32].copy_from_slice(&self.origin.0.to_be_bytes());
        b[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        b[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        b
    }

    /// The whole datagram: header, then extension fields padded to 4 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header_bytes().to_vec();
        for ext in &self.extensions {
            let padded = ext.value.len().div_ceil(4) * 4;
            out.extend_from_slice(&ext.kind.to_be_bytes());
            out.extend_from_slice(&((padded + 4) as u16).to_be_bytes());
            out.extend_from_slice(&ext.value);
            out.resize(out.len() + padded - ext.value.len(), 0);
        }
        out
    }

    /// The value of the first extension field of `kind`.
    pub fn extension(&self, kind: u16) -> Option<&[u8]> {
        self.extensions.iter().find(|e| e.kind == kind).map(|e| e.value.as_slice())
    }
}

/// What a fazt node signs in an answer: a tag, the answer's header and the nonce of the
/// request it answers, so an answer can neither be altered nor replayed to another
/// request.
pub fn signed_answer(header: &[u8; HEADER_LEN], nonce: &[u8]) -> Vec<u8> {
    let mut message = b"fazt-time-v1\n".to_vec();
    message.extend_from_slice(header);
    message.extend_from_slice(nonce);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timestamps_round_trip_and_cross_the_2036_era() {
        let now = 1_795_755_000_123_456_789;
        let ts = NtpTimestamp::from_unix_nanos(now);
        assert!((ts.to_unix_nanos(now) - now).abs() <= 1);
        // 2040 is in NTP era 1: its 32-bit seconds wrapped, decoding near 2040 recovers it.
        let later = 2_208_988_800_000_000_000 + 100;
        let ts = NtpTimestamp::from_unix_nanos(later);
        assert!((ts.to_unix_nanos(later - 1_000_000_000_000) - later).abs() <= 1);
    }

    #[test]
    fn short_format_converts_both_ways() {
        assert_eq!(short_to_nanos(1 << 16), 1_000_000_000);
        assert_eq!(nanos_to_short(500_000_000), 1 << 15);
        assert_eq!(nanos_to_short(-5), 0);
        assert_eq!(nanos_to_short(i64::MAX), u32::MAX);
    }

    #[test]
    fn packets_round_trip_with_extensions() {
        let packet = Packet {
            leap: 0,
            version: 4,
            mode: mode::SERVER,
            stratum: 3,
            poll: 6,
            precision: -20,
            root_delay: 7,
            root_dispersion: 9,
            reference_id: *b"PEER",
            reference: NtpTimestamp(1),
            origin: NtpTimestamp(2),
            receive: NtpTimestamp(3),
            transmit: NtpTimestamp(4),
            extensions: vec![
                Extension { kind: EXT_FAZT_NONCE, value: vec![7; NONCE_LEN] },
                Extension { kind: EXT_FAZT_SIGNATURE, value: vec![1; 64] },
            ],
        };
        let bytes = packet.encode();
        assert_eq!(bytes.len(), 48 + 28 + 68);
        assert_eq!(Packet::parse(&bytes).unwrap(), packet);
    }

    #[test]
    fn hostile_packets_are_refused() {
        assert_eq!(Packet::parse(&[0x23; 47]), Err(PacketError::Short(47)));
        assert_eq!(Packet::parse(&[0x23; 600]), Err(PacketError::Oversized(600)));
        let mut v5 = [0u8; 48];
        v5[0] = 5 << 3 | 3;
        assert_eq!(Packet::parse(&v5), Err(PacketError::Version(5)));
        let mut bad_ext = vec![0x23u8; 48];
        bad_ext.extend_from_slice(&[0xFA, 0x01, 0x00, 0x50, 0, 0, 0, 0]); // claims 80 bytes
        assert_eq!(Packet::parse(&bad_ext), Err(PacketError::Extension));
        let mut many = vec![0x23u8; 48];
        for _ in 0..7 {
            many.extend_from_slice(&[0, 1, 0, 4]);
        }
        assert_eq!(Packet::parse(&many), Err(PacketError::Extension));
        // A legacy MAC after the header is tolerated (ntpdig can send one).
        let mut mac = vec![0x23u8; 48];
        mac.extend_from_slice(&[0; 20]);
        assert!(Packet::parse(&mac).is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_what_parses_re_encodes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(packet) = Packet::parse(&bytes) {
                let again = Packet::parse(&packet.encode()).unwrap();
                prop_assert_eq!(again.header_bytes(), packet.header_bytes());
            }
        }

        #[test]
        fn timestamps_round_trip_within_a_nanosecond(nanos in 0i64..4_000_000_000_000_000_000) {
            let ts = NtpTimestamp::from_unix_nanos(nanos);
            prop_assert!((ts.to_unix_nanos(nanos) - nanos).abs() <= 1);
        }
    }
}
