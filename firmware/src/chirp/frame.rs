//! The frame: what is sent, in which order, and where each part sits.
//!
//! ```text
//! | sweep | sweep | gap | [reference] | header + payload ...      | gap | sweep |
//! 0  <- spacing ->      ^ body start   coded, one byte stream           only if the
//!   (with the sweep's kind, names the mode)                             body > 2 s
//! ```
//!
//! The body after the reference symbol is one stream of bytes packed into
//! symbols. The header is a Reed-Solomon codeword at the front of it (2 data
//! bytes: format version and payload length; 10 or 14 parity bytes), spread
//! evenly over the symbols it shares with the payload so that a notch in the band
//! does not take it out. The payload, followed by its CRC-32, is cut into
//! codewords ([`fec::Layout`]), interleaved and whitened
//! ([`scramble`](super::scramble)), and fills the rest of the stream; the last
//! symbol is padded with pseudo-random bytes.

use super::fec::{self, Layout};
use super::mode::{Mode, Params, INTERNAL_RATE};
use super::scramble::{permutation, whiten, Prng};

/// Version of the frame format, in the header's high nibble.
const VERSION: u8 = 2;
/// Header data bytes: version (4 bits) and payload length - 1 (12 bits).
pub(crate) const HEADER_DATA: usize = 2;
/// Bytes of the CRC-32 that follows the payload inside its codewords.
const CRC_LEN: usize = 4;
/// A body longer than this (2 s) gets a closing sweep: over a longer frame the clock
/// estimate from the preamble alone could drift by more than the guard can absorb.
const POSTAMBLE_AFTER: usize = 2 * INTERNAL_RATE as usize;
/// Largest payload a frame carries (4 KiB), as the spec limits it.
pub const MAX_PAYLOAD: usize = 4096;

/// The decoded header fields (the mode comes from the preamble).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub mode: Mode,
    pub len: usize,
}

impl Header {
    /// The header for `payload` in `mode`.
    pub fn for_payload(payload: &[u8], mode: Mode) -> Header {
        Header { mode, len: payload.len() }
    }

    /// The header's data bytes. The caller keeps `len` in 1..=[`MAX_PAYLOAD`].
    pub fn to_bytes(self) -> [u8; HEADER_DATA] {
        let n = (self.len - 1) as u16;
        [VERSION << 4 | (n >> 8) as u8, n as u8]
    }

    /// Reads header data bytes; `None` unless they are of this format version.
    pub fn parse(bytes: &[u8], mode: Mode) -> Option<Header> {
        if bytes.len() != HEADER_DATA || bytes[0] >> 4 != VERSION {
            return None;
        }
        let len = (((bytes[0] & 0x0F) as usize) << 8 | bytes[1] as usize) + 1;
        Some(Header { mode, len })
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

/// The header's codeword in a mode.
fn header_code(p: &Params) -> Layout {
    Layout::single(HEADER_DATA, p.header_parity)
}

/// Symbols that hold (part of) the header in a mode, reference excluded.
pub(crate) fn header_symbols(p: &Params) -> usize {
    header_code(p).coded_len().div_ceil(p.bytes_per_symbol())
}

/// Where the header's bytes sit in the stream: spread evenly over its symbols.
fn header_positions(p: &Params) -> Vec<usize> {
    let h = header_code(p).coded_len();
    let room = header_symbols(p) * p.bytes_per_symbol();
    (0..h).map(|j| j * room / h).collect()
}

/// Where the payload's coded bytes sit in a stream of `total` bytes: everywhere
/// the header is not, in order.
fn payload_positions(p: &Params, total: usize) -> impl Iterator<Item = usize> {
    let header = header_positions(p);
    let mut next = header.into_iter().peekable();
    (0..total).filter(move |&i| {
        if next.peek() == Some(&i) {
            next.next();
            false
        } else {
            true
        }
    })
}

/// Where the body (first symbol) starts, from the first sweep's start.
pub(crate) fn body_start(p: &Params) -> usize {
    p.chirp_spacing + p.sweep.len + p.sweep.gap
}

/// Index of the first header symbol in the body.
pub(crate) fn header_first_symbol(p: &Params) -> usize {
    usize::from(p.has_reference())
}

/// The geometry of a frame for a payload length and mode.
#[derive(Clone, Debug)]
pub(crate) struct FrameLayout {
    pub params: Params,
    /// The codewords of the payload and its CRC-32.
    pub code: Layout,
    /// Bytes in the stream: header and payload codewords, padding excluded.
    pub stream_len: usize,
    /// Symbols in the body: reference (if any), then the stream's.
    pub body_symbols: usize,
}

impl FrameLayout {
    pub fn new(mode: Mode, len: usize) -> FrameLayout {
        let params = mode.params();
        let code = Layout::new(len + CRC_LEN, &params);
        let stream_len = header_code(&params).coded_len() + code.coded_len();
        let stream_symbols = stream_len.div_ceil(params.bytes_per_symbol());
        FrameLayout { params, code, stream_len, body_symbols: header_first_symbol(&params) + stream_symbols }
    }

    /// Sample just after the last body symbol.
    pub fn body_end(&self) -> usize {
        body_start(&self.params) + self.body_symbols * self.params.symbol_len()
    }

    /// Where the closing sweep starts, if the frame has one.
    pub fn postamble(&self) -> Option<usize> {
        let body = self.body_symbols * self.params.symbol_len();
        (body > POSTAMBLE_AFTER).then(|| self.body_end() + self.params.sweep.gap)
    }

    /// Length of the whole frame in internal samples.
    pub fn total_len(&self) -> usize {
        match self.postamble() {
            Some(p) => p + self.params.sweep.len,
            None => self.body_end(),
        }
    }
}

/// The bytes of the body's symbols (the stream), each symbol's bytes in a row,
/// reference symbol excluded.
pub(crate) fn body_bytes(payload: &[u8], mode: Mode) -> Vec<u8> {
    let layout = FrameLayout::new(mode, payload.len());
    let p = &layout.params;
    let total = (layout.body_symbols - header_first_symbol(p)) * p.bytes_per_symbol();
    let mut out = vec![0u8; total];

    let mut header = fec::encode(&Header::for_payload(payload, mode).to_bytes(), &header_code(p));
    whiten(&mut header, seed(HEADER_SEED, mode, 0));
    for (byte, at) in header.into_iter().zip(header_positions(p)) {
        out[at] = byte;
    }

    let mut data = payload.to_vec();
    data.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    let coded = fec::encode(&data, &layout.code);
    let perm = permutation(coded.len(), seed(SHUFFLE_SEED, mode, payload.len()));
    let mut slots = vec![0u8; coded.len()];
    for (byte, &slot) in coded.iter().zip(&perm) {
        slots[slot as usize] = *byte;
    }
    whiten(&mut slots, seed(PAYLOAD_SEED, mode, payload.len()));
    let mut pad = Prng::new(PAD_SEED);
    let mut slots = slots.into_iter();
    for at in payload_positions(p, total) {
        out[at] = slots.next().unwrap_or_else(|| pad.next_u8());
    }
    out
}

/// Reads the header from the stream's first bytes and their confidences (at least
/// [`header_symbols`] symbols' worth).
pub(crate) fn read_header(bytes: &[u8], conf: &[f32], mode: Mode) -> Option<Header> {
    let p = mode.params();
    let code = header_code(&p);
    let at = header_positions(&p);
    if at.last().is_none_or(|&last| last >= bytes.len().min(conf.len())) {
        return None;
    }
    let mut coded: Vec<u8> = at.iter().map(|&i| bytes[i]).collect();
    let cconf: Vec<f32> = at.iter().map(|&i| conf[i]).collect();
    whiten(&mut coded, seed(HEADER_SEED, mode, 0));
    let decoded = fec::decode(&coded, &cconf, &code)?;
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

/// Reads the payload from the whole stream's bytes. Returns the payload and how
/// many bytes error correction repaired.
pub(crate) fn read_payload(
    bytes: &[u8],
    conf: &[f32],
    header: &Header,
) -> Result<(Vec<u8>, usize), PayloadError> {
    let layout = FrameLayout::new(header.mode, header.len);
    let n = layout.code.coded_len();
    let total = bytes.len().min(conf.len());
    if total < layout.stream_len {
        return Err(PayloadError::Unrecoverable);
    }
    let at: Vec<usize> = payload_positions(&layout.params, total).take(n).collect();
    let mut slots: Vec<u8> = at.iter().map(|&i| bytes[i]).collect();
    whiten(&mut slots, seed(PAYLOAD_SEED, header.mode, header.len));
    let perm = permutation(n, seed(SHUFFLE_SEED, header.mode, header.len));
    let coded: Vec<u8> = perm.iter().map(|&s| slots[s as usize]).collect();
    let cconf: Vec<f32> = perm.iter().map(|&s| conf[at[s as usize]]).collect();
    let mut decoded = fec::decode(&coded, &cconf, &layout.code).ok_or(PayloadError::Unrecoverable)?;
    let crc = decoded.data.split_off(header.len);
    if crc32fast::hash(&decoded.data).to_be_bytes()[..] != crc[..] {
        return Err(PayloadError::Checksum);
    }
    Ok((decoded.data, decoded.corrected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_other_versions() {
        for len in [1, 255, 256, MAX_PAYLOAD] {
            let h = Header { mode: Mode::Fast, len };
            assert_eq!(Header::parse(&h.to_bytes(), Mode::Fast), Some(h));
        }
        let mut b = Header { mode: Mode::Fast, len: 7 }.to_bytes();
        b[0] ^= 0x30;
        assert_eq!(Header::parse(&b, Mode::Fast), None);
        assert_eq!(Header::parse(&b[..1], Mode::Fast), None);
    }

    #[test]
    fn the_header_is_spread_over_its_symbols_and_the_payload_fills_the_rest() {
        for mode in Mode::ALL {
            let p = mode.params();
            let at = header_positions(&p);
            let room = header_symbols(&p) * p.bytes_per_symbol();
            assert!(at.windows(2).all(|w| w[0] < w[1]) && *at.last().unwrap() < room, "{mode}");
            let rest: Vec<usize> = payload_positions(&p, room + 5).collect();
            assert_eq!(rest.len() + at.len(), room + 5, "{mode}");
            assert!(rest.iter().all(|i| !at.contains(i)), "{mode}");
        }
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
            let (out, fixed) = read_payload(&bytes, &conf, &h).unwrap();
            assert_eq!((out, fixed), (payload.clone(), 0));
            // A header misread as another length reads nothing, not wrong bytes.
            let wrong = Header { mode, len: 299 };
            assert!(read_payload(&bytes, &conf, &wrong).is_err());
        }
    }
}
