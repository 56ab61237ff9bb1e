//! Reed-Solomon error correction over GF(2^8), with erasures from soft decisions.
//!
//! The codec is the `reed-solomon` crate: of the Rust Reed-Solomon crates it is
//! the one that corrects errors at unknown positions (Berlekamp-Massey, Chien
//! search, Forney) and also takes known erasures; `reed-solomon-erasure`,
//! `reed-solomon-simd` and `reed-solomon-novelpoly` only rebuild lost shards at
//! known positions, which is not what a noisy channel produces. The crate is small
//! and old, and panics outside its contract (codeword over 255 bytes, more parity
//! than fits its fixed 256-entry polynomials, erasure positions out of range), so
//! every call goes through [`correct`], which checks that contract first; a fuzz
//! test below hammers it with garbage.
//!
//! A corrected codeword is re-checked by the crate (syndromes zero); the frame adds
//! a CRC-32 over the whole payload on top, so a miscorrection is reported as a
//! corrupted message, never returned as wrong bytes.

use super::mode::Params;
use reed_solomon::{Decoder, Encoder};

/// Most parity bytes a codeword may have: the crate's polynomials hold 256 terms
/// and decoding multiplies two of length `parity + 1`.
const MAX_PARITY: usize = 127;
/// Longest codeword in GF(2^8).
const MAX_CODEWORD: usize = 255;

/// How a payload of a given length is cut into codewords: `(data, parity)` each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub blocks: Vec<(usize, usize)>,
}

impl Layout {
    /// The codewords for `len` payload bytes in a mode: as few as fit, evenly sized,
    /// so no codeword is a weak short tail.
    pub fn new(len: usize, p: &Params) -> Layout {
        if len == 0 {
            return Layout { blocks: Vec::new() };
        }
        let count = len.div_ceil(p.max_block_data);
        let base = len / count;
        let extra = len % count;
        let blocks = (0..count)
            .map(|i| {
                let k = base + usize::from(i < extra);
                let parity = ((k as f32 * p.parity_ratio).ceil() as usize)
                    .max(p.min_parity)
                    .min(MAX_PARITY)
                    .min(MAX_CODEWORD - k);
                (k, parity)
            })
            .collect();
        Layout { blocks }
    }

    /// A layout of one codeword with `data` and `parity` bytes (the header's).
    pub fn single(data: usize, parity: usize) -> Layout {
        Layout { blocks: vec![(data, parity)] }
    }

    /// Total coded bytes.
    pub fn coded_len(&self) -> usize {
        self.blocks.iter().map(|(k, p)| k + p).sum()
    }
}

/// Encodes `data` into the codewords of `layout`, concatenated.
pub(crate) fn encode(data: &[u8], layout: &Layout) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.coded_len());
    let mut at = 0;
    for &(k, p) in &layout.blocks {
        let block = &data[at..at + k];
        at += k;
        out.extend_from_slice(&Encoder::new(p).encode(block));
    }
    out
}

/// What decoding did: the data and how many bytes it had to repair.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub data: Vec<u8>,
    pub corrected: usize,
}

/// Decodes the codewords of `layout` from `coded`; `confidence[i]` says how sure the
/// demodulator was of byte `i` (higher is surer). `None` if any codeword is beyond repair.
///
/// A codeword that fails on its own is tried again with its least trusted bytes
/// declared erased: an erasure costs one parity byte, an error at an unknown place two.
pub(crate) fn decode(coded: &[u8], confidence: &[f32], layout: &Layout) -> Option<Decoded> {
    if coded.len() != layout.coded_len() || confidence.len() != coded.len() {
        return None;
    }
    let mut data = Vec::new();
    let mut corrected = 0;
    let mut at = 0;
    for &(k, p) in &layout.blocks {
        let n = k + p;
        let word = &coded[at..at + n];
        let conf = &confidence[at..at + n];
        at += n;
        let (fixed, count) = correct_with_erasures(word, conf, p)?;
        data.extend_from_slice(&fixed[..k]);
        corrected += count;
    }
    Some(Decoded { data, corrected })
}

fn correct_with_erasures(word: &[u8], conf: &[f32], parity: usize) -> Option<(Vec<u8>, usize)> {
    if let Some(ok) = correct(word, parity, &[]) {
        return Some(ok);
    }
    let mut order: Vec<usize> = (0..word.len()).collect();
    order.sort_by(|&a, &b| conf[a].total_cmp(&conf[b]));
    // Erasing a correct byte wastes one parity byte; missing a wrong one costs two.
    // A few fractions of the parity cover the cases from "a few weak bytes" to "many".
    // Never erase more than half the parity: with all of it spent on erasures, any
    // garbage "decodes" (nothing is left to check the result against).
    for eighth in 1..=4 {
        let count = parity * eighth / 8;
        if count == 0 {
            continue;
        }
        let erased: Vec<u8> = order[..count].iter().map(|&i| i as u8).collect();
        if let Some(ok) = correct(word, parity, &erased) {
            return Some(ok);
        }
    }
    None
}

/// One call into the codec, inside its contract. Returns the corrected codeword and
/// the number of bytes changed.
fn correct(word: &[u8], parity: usize, erasures: &[u8]) -> Option<(Vec<u8>, usize)> {
    let n = word.len();
    if n > MAX_CODEWORD || parity == 0 || parity > MAX_PARITY || parity >= n {
        return None;
    }
    if erasures.len() > parity || erasures.iter().any(|&e| e as usize >= n) {
        return None;
    }
    let mut seen = [false; 256];
    for &e in erasures {
        if std::mem::replace(&mut seen[e as usize], true) {
            return None;
        }
    }
    let decoder = Decoder::new(parity);
    let erase = if erasures.is_empty() { None } else { Some(erasures) };
    let (buf, _) = decoder.correct_err_count(word, erase).ok()?;
    // The buffer holds data then parity; recompute what changed against the input.
    let fixed: Vec<u8> = buf.data().iter().chain(buf.ecc().iter()).copied().collect();
    if fixed.len() != n || decoder.is_corrupted(&fixed) {
        return None;
    }
    let changed = fixed.iter().zip(word).filter(|(a, b)| a != b).count();
    Some((fixed, changed))
}

#[cfg(test)]
mod tests {
    use super::super::mode::Mode;
    use super::super::scramble::Prng;
    use super::*;

    #[test]
    fn layouts_cover_the_payload_with_even_codewords() {
        for mode in Mode::ALL {
            let p = mode.params();
            for len in [1, 2, 100, 127, 128, 1000, 4096] {
                let l = Layout::new(len, &p);
                assert_eq!(l.blocks.iter().map(|b| b.0).sum::<usize>(), len);
                let ks: Vec<usize> = l.blocks.iter().map(|b| b.0).collect();
                assert!(ks.iter().max().unwrap() - ks.iter().min().unwrap() <= 1);
                assert!(l.blocks.iter().all(|&(k, p)| k + p <= 255 && p >= 12));
            }
        }
    }

    #[test]
    fn errors_up_to_half_the_parity_are_corrected() {
        let layout = Layout::single(100, 32);
        let mut rng = Prng::new(1);
        let data: Vec<u8> = (0..100).map(|_| rng.next_u8()).collect();
        let mut coded = encode(&data, &layout);
        for i in 0..16 {
            coded[i * 7] ^= 0x5A;
        }
        let conf = vec![1.0; coded.len()];
        let out = decode(&coded, &conf, &layout).unwrap();
        assert_eq!(out.data, data);
        assert_eq!(out.corrected, 16);
    }

    #[test]
    fn low_confidence_bytes_become_erasures_and_stretch_the_correction() {
        let layout = Layout::single(100, 32);
        let data = vec![42u8; 100];
        let mut coded = encode(&data, &layout);
        let mut conf = vec![1.0; coded.len()];
        // 20 errors: beyond 16 at unknown positions; 16 of them erased leave 4 errors,
        // within the 8 the remaining 16 parity bytes correct.
        for i in 0..20 {
            coded[i * 5] ^= 0xFF;
            conf[i * 5] = 0.1;
        }
        assert_eq!(decode(&coded, &conf, &layout).unwrap().data, data);
    }

    /// Guards the contract wrapper: garbage of every shape must give `None` or a
    /// valid codeword, never a panic (the crate panics outside its contract).
    #[test]
    fn the_codec_never_panics_on_garbage() {
        let mut rng = Prng::new(99);
        for round in 0..3000 {
            let n = 2 + rng.below(254);
            let parity = 1 + rng.below(n - 1).min(MAX_PARITY - 1);
            let mut word: Vec<u8> = (0..n).map(|_| rng.next_u8()).collect();
            if round % 3 == 0 {
                // A valid codeword with many errors: the hardest case for the decoder.
                let data: Vec<u8> = (0..n - parity).map(|_| rng.next_u8()).collect();
                word = Encoder::new(parity).encode(&data).to_vec();
                for _ in 0..rng.below(parity + 4) {
                    let i = rng.below(n);
                    word[i] = rng.next_u8();
                }
            }
            let erasures: Vec<u8> = (0..rng.below(parity + 2)).map(|_| rng.below(300) as u8).collect();
            if let Some((fixed, _)) = correct(&word, parity, &erasures) {
                assert!(!Decoder::new(parity).is_corrupted(&fixed));
            }
            let _ = correct(&word, parity, &[]);
        }
    }
}
