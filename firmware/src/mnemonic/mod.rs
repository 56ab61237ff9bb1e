//! Mnemonic: small payloads as BIP-39 words, for moving data through people.
//!
//! A phone call, a sheet of paper or a radio link carries words when nothing else
//! works. [`encode()`] turns up to 64 bytes into words from the BIP-39 English list;
//! [`decode_with`] turns words back into the exact bytes, forgiving about how words are
//! typed and strict about the checksum: a phrase that does not check out never yields
//! bytes.
//!
//! - 16 and 32 bytes (and 20, 24, 28) give standard BIP-39 phrases of 12 and 24 (15, 18,
//!   21) words, the same words any BIP-39 tool gives for that entropy; 64 bytes give 48
//!   words by the same rule.
//! - Other lengths from 1 to 63 bytes use fazt framing, which records the exact length;
//!   see [`framing`] for the layout.
//!
//! This is encoding, not encryption: anyone who hears the words has the bytes. Encrypt
//! secrets first.
//!
//! # Layout
//!
//! - [`wordlist`]: the official English list, embedded.
//! - [`framing`]: which lengths are plain BIP-39, and the framed layout for the others.
//! - [`encode`](mod@encode): bytes to words.
//! - [`decode`](mod@decode): words to bytes; reading typed words, checking counts and
//!   checksums.
//! - `suggest`: nearest list words, for "did you mean" and fuzzy correction.
//! - `bits`: most-significant-first bit strings.
//! - [`error`]: what can go wrong, worded for the person fixing it.
//!
//! # Implementation
//!
//! Pure computation: no threads, files, devices or I/O of any kind, so the CLI, the
//! HTTP API and JavaScript apps (`fazt.mnemonic.*`) share it. No input can make it
//! panic, and text longer than [`MAX_PHRASE_BYTES`] is refused before any work.
//!
//! # Examples
//!
//! Doctests do not run in a binary crate; `tests::vectors::module_doc_example_holds`
//! runs this one.
//!
//! ```ignore
//! use fazt::mnemonic::{self, Options};
//!
//! let words = mnemonic::encode(&[0u8; 16])?;
//! assert_eq!(words, "abandon abandon abandon abandon abandon abandon abandon abandon \
//!                    abandon abandon abandon about");
//! let typed = "ABANDON aban aban aban aban aban aban aban aban aban aban abuot";
//! let decoded = mnemonic::decode_with(typed, Options { fuzzy: true })?;
//! assert_eq!(decoded.bytes, [0u8; 16]);
//! assert_eq!(decoded.corrections[0].word, "about");
//! ```

pub mod decode;
pub mod encode;
pub mod error;
pub mod framing;
pub mod wordlist;

mod bits;
mod suggest;

#[cfg(test)]
mod tests;

pub use decode::{decode, decode_bytes, decode_with, validate, Decoded, Options};
pub use encode::encode;
pub use error::{Correction, Error};
pub use framing::{Format, MAX_PAYLOAD, MAX_WORDS};

/// Longest phrase text accepted, in bytes. 48 words of at most 8 letters take about
/// 430 bytes; this leaves room for list numbers, line breaks and pasted noise while
/// bounding the work an input can cause (each unknown word is compared with all 2048).
pub const MAX_PHRASE_BYTES: usize = 4096;

/// Words needed for a payload of `len` bytes, or `None` when it is empty or longer
/// than [`MAX_PAYLOAD`].
pub fn word_count(len: usize) -> Option<usize> {
    framing::word_count(len)
}
