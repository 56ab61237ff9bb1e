//! The frame: what is sent, in which order, and where each part sits.
//!
//! ```text
//! | sweep | gap | sweep | gap | [reference] | header | payload ...      | gap | sweep |
//! 0       <- spacing ->       ^ body start   1+ sym   coded, interleaved       only if the
//!          (names the mode)                                                    body > 2 s
//! ```
//!
//! The header is one Reed-Solomon codeword filling its symbols (16 bytes in
//! robust, 22 in fast, 32 in standard), of which 7 are data: version and mode
//! (1 byte), payload length (2 bytes, big-endian), CRC-32 of the payload (4
//! bytes); the rest is parity. The payload is cut into codewords ([`fec::Layout`]),
//! interleaved and whitened ([`scramble`](super::scramble)), then packed into
//! symbols; the last symbol is padded with pseudo-random bytes.

use super::fec::{self, Layout};
use super::mode::{Mode, Params, INTERNAL_RATE};
use super::preamble::CHIRP_LEN;
use super::scramble::{permutation, whiten, Prng};

/// Version of the frame format, in the header's high nibble.
const VERSION: u8 = 1;
/// Header data bytes: version+mode, length (2), payload CRC-32 (4).
pub(crate) const HEADER_DATA: usize = 7;
/// Fewest header parity bytes (corrects 4 bad bytes of 16). Where the header's
/// symbols have room for more, the rest of the room is parity too: the header is
/// the one part of a frame whose loss costs the whole frame.
const HEADER_MIN_PARITY: usize = 9;
/// Silence after the preamble and before the closing sweep (20 ms), so the sweep's
/// echo has faded before data starts.
pub(crate) const GAP: usize = 320;
/// A body longer than this (2 s) gets a closing sweep: over a longer frame the clock
/// estimate from the preamble alone could drift by more than the guard can absorb.
const POSTAMBLE_AFTER: usize = 2 * INTERNAL_RATE as usize;
/// Largest payload a frame carries (4 KiB), as the spec limits it.
pub const MAX_PAYLOAD: usize = 4096;

/// The decoded header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub mode: Mode,
    pub len: usize,
    pub crc: u32,
}

impl Header {
    /// The header for `payload` in `mode`.
    pub fn for_payload(payload: &[u8], mode: Mode) -> Header {
        Header { mode, len: payload.len(), crc: crc32fast::hash(payload) }
    }

    /// The header's data bytes.
    pub fn to_bytes(self) -> [u8; HEADER_DATA] {
        let len = (self.len as u16).to_be_bytes();
        let crc = self.crc.to_be_bytes();
        [VERSION << 4 | self.mode.id(), len[0], len[1], crc[0], crc[1], crc[2], crc[3]]
    }

    /// Reads header data bytes; `None` unless they make sense for a frame whose
    /// preamble said `mode` (a garbled header must not send us decoding nonsense).
    pub fn parse(bytes: &[u8], mode: Mode) -> Option<Header> {
        if bytes.len() != HEADER_DATA || bytes[0] >> 4 != VERSION {
            return None;
        }
        if Mode::from_id(bytes[0] & 0x0F)? != mode {
            return None;
        }
        let len = u16::from_be_bytes([bytes[1], bytes[2]]) as usize;
        if len == 0 || len > MAX_PAYLOAD {
            return None;
        }
        let crc = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]);
        Some(Header { mode, len, crc })
    }
}

/// Seeds for the pseudo-random streams, distinct per use and mode.
fn seed(purpose: u32, mode: Mode, len: usize) -> u32 {
    purpose ^ (mode.id() as u32) << 24 ^ (len as u32) << 4
}
const HEADER_SEED: u32 = 0x4845_4144;
const PAYLOAD_SEED: u32 = 0x5041_594C;
const SHUFFLE_SEED: u32 = 0x5348_5546;
const PAD_SEED: u32 = 0x5041_4444;

/// Symbols needed by the header in a mode.
pub(crate) fn header_symbols(p: &Params) -> usize {
    (HEADER_DATA + HEADER_MIN_PARITY).div_ceil(p.bytes_per_symbol())
}

/// The header's codeword in a mode: all of its symbols' room.
fn header_code(p: &Params) -> Layout {
    Layout::single(HEADER_DATA, header_symbols(p) * p.bytes_per_symbol() - HEADER_DATA)
}

/// Where the body (first symbol) starts, from the first sweep's start.
pub(crate) fn body_start(p: &Params) -> usize {
    p.chirp_spacing + CHIRP_LEN + GAP
}

/// Index of the first header symbol in the body.
pub(crate) fn header_first_symbol(p: &Params) -> usize {
    usize::from(p.has_reference())
}

/// The geometry of a frame for a payload length and mode.
#[derive(Clone, Debug)]
pub(crate) struct FrameLayout {
    pub params: Params,
    pub code: Layout,
    /// Symbols in the body: reference (if any), header, payload.
    pub body_symbols: usize,
    pub payload_first_symbol: usize,
}

impl FrameLayout {
    pub fn new(mode: Mode, len: usize) -> FrameLayout {
        let params = mode.params();
        let code = Layout::new(len, &params);
        let payload_first_symbol = header_first_symbol(&params) + header_symbols(&params);
        let payload_symbols = code.coded_len().div_ceil(params.bytes_per_symbol());
        FrameLayout {
            params,
            code,
            body_symbols: payload_first_symbol + payload_symbols,
            payload_first_symbol,
        }
    }

    /// Sample just after the last body symbol.
    pub fn body_end(&self) -> usize {
        body_start(&self.params) + self.body_symbols * self.params.symbol_len()
    }

    /// Where the closing sweep starts, if the frame has one.
    pub fn postamble(&self) -> Option<usize> {
        let body = self.body_symbols * self.params.symbol_len();
        (body > POSTAMBLE_AFTER).then(|| self.body_end() + GAP)
    }

    /// Length of the whole frame in internal samples.
    pub fn total_len(&self) -> usize {
        match self.postamble() {
            Some(p) => p + CHIRP_LEN,
            None => self.body_end(),
        }
    }
}

/// The bytes of the body's symbols (header then payload), each symbol's bytes in a
/// row, reference symbol excluded.
pub(crate) fn body_bytes(payload: &[u8], mode: Mode) -> Vec<u8> {
    let layout = FrameLayout::new(mode, payload.len());
    let p = &layout.params;
    let bps = p.bytes_per_symbol();
    let mut out = header_bytes(Header::for_payload(payload, mode), p);

    let coded = fec::encode(payload, &layout.code);
    let perm = permutation(coded.len(), seed(SHUFFLE_SEED, mode, payload.len()));
    let mut slots = vec![0u8; coded.len()];
    for (byte, &slot) in coded.iter().zip(&perm) {
        slots[slot as usize] = *byte;
    }
    whiten(&mut slots, seed(PAYLOAD_SEED, mode, payload.len()));
    let padded = slots.len().div_ceil(bps) * bps;
    let mut pad = Prng::new(PAD_SEED);
    slots.resize_with(padded, || pad.next_u8());
    out.extend_from_slice(&slots);
    out
}

fn header_bytes(h: Header, p: &Params) -> Vec<u8> {
    let mut coded = fec::encode(&h.to_bytes(), &header_code(p));
    whiten(&mut coded, seed(HEADER_SEED, h.mode, 0));
    coded
}

/// Reads the header from the header symbols' bytes and confidences.
pub(crate) fn read_header(bytes: &[u8], conf: &[f32], mode: Mode) -> Option<Header> {
    let code = header_code(&mode.params());
    let n = code.coded_len();
    if bytes.len() < n || conf.len() < n {
        return None;
    }
    let mut coded = bytes[..n].to_vec();
    whiten(&mut coded, seed(HEADER_SEED, mode, 0));
    let decoded = fec::decode(&coded, &conf[..n], &code)?;
    Header::parse(&decoded.data, mode)
}

/// Why a payload could not be read, once its header was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// Reed-Solomon could not repair a codeword.
    Unrecoverable,
    /// Every codeword decoded but the CRC-32 disagrees (a miscorrection).
    Checksum,
}

/// Reads the payload from the payload symbols' bytes. Returns the payload and how
/// many bytes error correction repaired.
pub(crate) fn read_payload(
    bytes: &[u8],
    conf: &[f32],
    header: &Header,
) -> Result<(Vec<u8>, usize), PayloadError> {
    let layout = FrameLayout::new(header.mode, header.len);
    let n = layout.code.coded_len();
    if bytes.len() < n || conf.len() < n {
        return Err(PayloadError::Unrecoverable);
    }
    let mut slots = bytes[..n].to_vec();
    whiten(&mut slots, seed(PAYLOAD_SEED, header.mode, header.len));
    let perm = permutation(n, seed(SHUFFLE_SEED, header.mode, header.len));
    let coded: Vec<u8> = perm.iter().map(|&s| slots[s as usize]).collect();
    let cconf: Vec<f32> = perm.iter().map(|&s| conf[s as usize]).collect();
    let decoded = fec::decode(&coded, &cconf, &layout.code).ok_or(PayloadError::Unrecoverable)?;
    if crc32fast::hash(&decoded.data) != header.crc {
        return Err(PayloadError::Checksum);
    }
    Ok((decoded.data, decoded.corrected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_nonsense() {
        let h = Header { mode: Mode::Fast, len: 4096, crc: 0xDEAD_BEEF };
        assert_eq!(Header::parse(&h.to_bytes(), Mode::Fast), Some(h));
        // The preamble said another mode: not ours.
        assert_eq!(Header::parse(&h.to_bytes(), Mode::Robust), None);
        let mut b = h.to_bytes();
        b[1] = 0xFF;
        assert_eq!(Header::parse(&b, Mode::Fast), None);
    }

    #[test]
    fn body_bytes_read_back_through_header_and_payload() {
        for mode in Mode::ALL {
            let payload: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
            let bytes = body_bytes(&payload, mode);
            let p = mode.params();
            let hlen = header_symbols(&p) * p.bytes_per_symbol();
            let conf = vec![1.0; bytes.len()];
            let h = read_header(&bytes[..hlen], &conf[..hlen], mode).unwrap();
            assert_eq!(h.len, 300);
            let (out, fixed) = read_payload(&bytes[hlen..], &conf[hlen..], &h).unwrap();
            assert_eq!((out, fixed), (payload, 0));
        }
    }
}
