//! Which payloads are plain BIP-39 and how fazt frames all the others.
//!
//! # Plain BIP-39
//!
//! Payloads of 16, 20, 24, 28 and 32 bytes are BIP-39 entropy: the bytes, then the first
//! `len / 4` bits of their SHA-256, cut into 11-bit words (12, 15, 18, 21 and 24 words).
//! Every BIP-39 tool produces and accepts these phrases. 64 bytes follow the same rule
//! (16 checksum bits, 48 words): standard tools cap entropy at 32 bytes, so they would
//! refuse it, but the construction is the standard one.
//!
//! # fazt framing (every other length from 1 to 63 bytes)
//!
//! ```text
//! | length: 6 bits | payload: 8 × length bits | checksum: the rest, at least 7 bits |
//! ```
//!
//! - `length` is the payload length in bytes (1..=63, never a plain length).
//! - `checksum` is the first bits of SHA-256(`"fazt-mnemonic-v1"` ‖ length as one byte ‖
//!   payload). It covers the length, and the tag keeps it unrelated to BIP-39 checksums.
//! - The word count is the fewest words that hold the header, the payload and 7
//!   checksum bits; if that count is one a plain phrase uses (12, 15, 18, 21, 24 or 48),
//!   one more word is added. The checksum fills every bit left over.
//!
//! So the word count alone tells a decoder which rule applies, a framed phrase can never
//! be mistaken for a plain one, and the first word announces how many words follow,
//! which turns a dropped or doubled word into a "wrong word count" error.

use sha2::{Digest, Sha256};

use super::bits::WORD_BITS;

/// The most bytes a phrase carries: 48 words, beyond which reading aloud stops working.
pub const MAX_PAYLOAD: usize = 64;

/// The most words a phrase has (64 bytes, plain rule).
pub const MAX_WORDS: usize = 48;

/// Bits of the length header at the front of a framed phrase (lengths up to 63).
pub const HEADER_BITS: usize = 6;

/// The fewest checksum bits a framed phrase gets: a random error slips through at most
/// 1 time in 128, already better than 12-word BIP-39's 4 bits (1 in 16). Eight bits
/// would push a 63-byte payload to 49 words, past the 48 of a 64-byte one.
pub const MIN_CHECKSUM_BITS: usize = 7;

/// Domain tag hashed in front of a framed payload, so that framed checksums have
/// nothing to do with BIP-39 ones; the version lets a future framing coexist.
pub const TAG: &[u8] = b"fazt-mnemonic-v1";

/// How a phrase maps to bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Standard BIP-39 entropy (16, 20, 24, 28 or 32 bytes) or its 64-byte extension.
    Bip39,
    /// fazt framing: a length header, the payload and a tagged checksum.
    Framed,
}

impl Format {
    /// The rule a payload of `len` bytes is encoded with, if it can be encoded at all.
    pub fn for_len(len: usize) -> Option<Format> {
        match len {
            16 | 20 | 24 | 28 | 32 | 64 => Some(Format::Bip39),
            1..=63 => Some(Format::Framed),
            _ => None,
        }
    }

    /// The rule a phrase of `words` words was made with, judged by its length alone.
    pub fn for_word_count(words: usize) -> Format {
        match words {
            12 | 15 | 18 | 21 | 24 | 48 => Format::Bip39,
            _ => Format::Framed,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Bip39 => "standard BIP-39",
            Format::Framed => "fazt framed",
        })
    }
}

/// Words needed for a payload of `len` bytes, or `None` for 0 or more than 64 bytes.
pub fn word_count(len: usize) -> Option<usize> {
    match Format::for_len(len)? {
        // (8 × len + len / 4) bits = 33 × len / 4 bits = 3 × len / 4 words.
        Format::Bip39 => Some(len * 3 / 4),
        Format::Framed => {
            let bits = HEADER_BITS + 8 * len + MIN_CHECKSUM_BITS;
            let words = bits.div_ceil(WORD_BITS);
            Some(match Format::for_word_count(words) {
                Format::Bip39 => words + 1,
                Format::Framed => words,
            })
        }
    }
}

/// Checksum bits of a payload of `len` bytes (both rules).
pub fn checksum_bits(len: usize) -> Option<usize> {
    match Format::for_len(len)? {
        Format::Bip39 => Some(len / 4),
        Format::Framed => Some(word_count(len)? * WORD_BITS - HEADER_BITS - 8 * len),
    }
}

/// The hash whose first bits are a plain phrase's checksum.
pub fn bip39_checksum(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

/// The hash whose first bits are a framed phrase's checksum.
pub fn framed_checksum(payload: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(TAG);
    // Framed payloads are under 64 bytes, so the length fits in one byte.
    hash.update([payload.len() as u8]);
    hash.update(payload);
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lengths_follow_bip39() {
        for (len, words) in [(16, 12), (20, 15), (24, 18), (28, 21), (32, 24), (64, 48)] {
            assert_eq!(Format::for_len(len), Some(Format::Bip39));
            assert_eq!(word_count(len), Some(words));
            assert_eq!(checksum_bits(len), Some(len / 4));
            assert_eq!(Format::for_word_count(words), Format::Bip39);
        }
    }

    #[test]
    fn framed_lengths_never_use_a_plain_word_count_nor_exceed_48_words() {
        for len in 1..=MAX_PAYLOAD {
            let words = word_count(len).unwrap();
            let format = Format::for_len(len).unwrap();
            assert_eq!(Format::for_word_count(words), format, "{len} bytes");
            assert!(words <= MAX_WORDS, "{len} bytes take {words} words");
            let checksum = checksum_bits(len).unwrap();
            if format == Format::Framed {
                assert!(checksum >= MIN_CHECKSUM_BITS, "{len} bytes");
                assert_eq!(HEADER_BITS + 8 * len + checksum, words * WORD_BITS);
            }
        }
    }

    #[test]
    fn lengths_outside_one_to_sixty_four_have_no_format() {
        assert_eq!(Format::for_len(0), None);
        assert_eq!(Format::for_len(65), None);
        assert_eq!(word_count(0), None);
        assert_eq!(word_count(usize::MAX), None);
    }

    /// The table in docs/mnemonic.md; if this changes, phrases already written down no
    /// longer decode, so it must not.
    #[test]
    fn word_counts_are_frozen() {
        let counts: Vec<usize> = (1..=64).map(|len| word_count(len).unwrap()).collect();
        assert_eq!(
            counts,
            [
                2, 3, 4, 5, 5, 6, 7, 7, 8, 9, 10, 10, 11, 13, 13, 12, 14, 16, 16, 15, 17, 19, 19, 18, 20, 22,
                22, 21, 23, 23, 25, 24, 26, 26, 27, 28, 29, 29, 30, 31, 31, 32, 33, 34, 34, 35, 36, 37, 37,
                38, 39, 39, 40, 41, 42, 42, 43, 44, 45, 45, 46, 47, 47, 48
            ]
        );
    }
}
