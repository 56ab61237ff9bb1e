//! The BIP-39 English word list, embedded in the binary.
//!
//! `english.txt` is the official file from the BIP, byte for byte (its SHA-256 is checked
//! by a test), so anyone can compare it with `sha256sum`. It is split into an array at
//! compile time: no parsing, allocation or lazy initialisation at run time.

/// Number of words in the list: each word carries 11 bits.
pub const LEN: usize = 2048;

/// The official list file, one word per line, as published with BIP-39.
pub(crate) const TEXT: &str = include_str!("english.txt");

/// The 2048 words in list order: a word's position is the 11-bit value it stands for.
pub static WORDS: [&str; LEN] = split_lines(TEXT);

/// Splits the list file into words at compile time; a malformed file fails the build.
pub(crate) const fn split_lines(text: &'static str) -> [&'static str; LEN] {
    let bytes = text.as_bytes();
    let mut words = [""; LEN];
    let mut count = 0;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            assert!(count < LEN, "english.txt has more than 2048 lines");
            let (line, _) = bytes.split_at(i);
            let (_, word) = line.split_at(start);
            words[count] = match core::str::from_utf8(word) {
                Ok(word) => word,
                Err(_) => panic!("english.txt is not UTF-8"),
            };
            count += 1;
            start = i + 1;
        }
        i += 1;
    }
    assert!(count == LEN, "english.txt must have exactly 2048 lines");
    assert!(start == bytes.len(), "english.txt must end with a newline");
    words
}

/// The word that stands for an 11-bit value; values of 2048 and above wrap (never happens
/// for values read 11 bits at a time, and it keeps this function free of panics).
pub fn word(index: u16) -> &'static str {
    WORDS[usize::from(index) % LEN]
}

/// The position of an exact, lowercase word in the list.
pub fn index_of(word: &str) -> Option<u16> {
    // The list is sorted (a test checks it), so a binary search finds any word.
    WORDS.binary_search(&word).ok().and_then(|i| u16::try_from(i).ok())
}

/// The one word that starts with `prefix`, for prefixes of four or more letters.
///
/// BIP-39 chose its words so that the first four letters tell every word apart (a test
/// checks it), which is what makes writing down only four letters safe.
pub fn by_prefix(prefix: &str) -> Option<u16> {
    if prefix.len() < 4 {
        return None;
    }
    let i = WORDS.partition_point(|word| *word < prefix);
    match WORDS.get(i) {
        Some(word) if word.starts_with(prefix) => u16::try_from(i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The SHA-256 of english.txt as listed in the BIP-39 repository and by every wallet
    /// library that embeds it.
    const OFFICIAL_SHA256: &str = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda";

    #[test]
    fn list_is_the_official_file() {
        assert_eq!(hex::encode(Sha256::digest(TEXT.as_bytes())), OFFICIAL_SHA256);
        let rebuilt: String = WORDS.iter().map(|w| format!("{w}\n")).collect();
        assert_eq!(rebuilt, TEXT);
    }

    #[test]
    fn list_is_sorted_lowercase_ascii_of_three_to_eight_letters() {
        assert!(WORDS.windows(2).all(|pair| pair[0] < pair[1]));
        for word in WORDS {
            assert!((3..=8).contains(&word.len()), "{word}");
            assert!(word.bytes().all(|b| b.is_ascii_lowercase()), "{word}");
        }
    }

    #[test]
    fn first_four_letters_identify_every_word() {
        for (i, word) in WORDS.iter().enumerate() {
            assert_eq!(index_of(word), Some(i as u16));
            if word.len() >= 4 {
                for end in 4..=word.len() {
                    assert_eq!(by_prefix(&word[..end]), Some(i as u16), "{word}");
                }
            }
        }
        assert_eq!(by_prefix("aba"), None, "three letters are not enough");
        assert_eq!(by_prefix("zzzz"), None);
        assert_eq!(by_prefix("abandons"), None);
    }
}
