//! Bytes to words.

use super::bits::BitWriter;
use super::error::Error;
use super::framing::{self, Format, HEADER_BITS};
use super::wordlist;

/// The words for `payload`, separated by single spaces.
///
/// 16, 20, 24, 28 and 32 bytes give standard BIP-39 phrases and 64 bytes 48 words by the
/// same rule; other lengths up to 63 bytes use fazt framing (see [`super::framing`]).
pub fn encode(payload: &[u8]) -> Result<String, Error> {
    let indices = indices(payload)?;
    let words: Vec<&str> = indices.into_iter().map(wordlist::word).collect();
    Ok(words.join(" "))
}

/// The word indices for `payload`.
pub(crate) fn indices(payload: &[u8]) -> Result<Vec<u16>, Error> {
    let len = payload.len();
    let format = match Format::for_len(len) {
        Some(format) => format,
        None if len == 0 => return Err(Error::EmptyPayload),
        None => return Err(Error::TooLong { len }),
    };
    let checksum_bits = framing::checksum_bits(len).ok_or(Error::TooLong { len })?;
    let mut bits = BitWriter::new();
    match format {
        Format::Bip39 => {
            bits.push_bytes(payload);
            bits.push_prefix(&framing::bip39_checksum(payload), checksum_bits);
        }
        Format::Framed => {
            // Framed lengths are 1..=63, which fit the 6-bit header.
            bits.push(len as u32, HEADER_BITS);
            bits.push_bytes(payload);
            bits.push_prefix(&framing::framed_checksum(payload), checksum_bits);
        }
    }
    Ok(bits.to_indices())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_oversized_payloads_are_refused() {
        assert_eq!(encode(&[]), Err(Error::EmptyPayload));
        assert_eq!(encode(&[0; 65]), Err(Error::TooLong { len: 65 }));
        assert_eq!(encode(&[0; 100_000]), Err(Error::TooLong { len: 100_000 }));
    }

    #[test]
    fn word_count_follows_the_framing_table() {
        for len in 1..=64 {
            let phrase = encode(&vec![0xa5; len]).unwrap();
            let words = phrase.split(' ').count();
            assert_eq!(Some(words), framing::word_count(len), "{len} bytes");
        }
    }
}
