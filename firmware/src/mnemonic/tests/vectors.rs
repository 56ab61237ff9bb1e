//! The official BIP-39 English test vectors, and an independent rule for every plain
//! length, including 64 bytes which the vectors do not cover.

use super::{official_vectors, Rng};
use crate::mnemonic::{decode, decode_with, encode, wordlist, Format, Options};
use sha2::{Digest, Sha256};

#[test]
fn official_vectors_encode() {
    let vectors = official_vectors();
    assert_eq!(vectors.len(), 24);
    for (entropy, phrase) in vectors {
        assert_eq!(encode(&entropy).unwrap(), phrase, "{}", hex::encode(&entropy));
    }
}

#[test]
fn official_vectors_decode() {
    for (entropy, phrase) in official_vectors() {
        let decoded = decode_with(&phrase, Options::default()).unwrap();
        assert_eq!(decoded.bytes, entropy, "{phrase}");
        assert_eq!(decoded.format, Format::Bip39);
        assert_eq!(decoded.words, phrase.split(' ').count());
        assert!(decoded.corrections.is_empty());
    }
}

#[test]
fn official_vectors_decode_however_they_are_written() {
    for (entropy, phrase) in official_vectors() {
        let words: Vec<&str> = phrase.split(' ').collect();
        let shouted = phrase.to_uppercase();
        let abbreviated: Vec<&str> = words.iter().map(|w| &w[..w.len().min(4)]).collect();
        let numbered: Vec<String> =
            words.iter().enumerate().map(|(i, w)| format!("{}. {w}", i + 1)).collect();
        let written = [
            shouted,
            abbreviated.join(" "),
            numbered.join("\n"),
            format!("  \t{}\r\n", words.join(" ,  ")),
            words.join("\u{3000}"),
        ];
        for text in written {
            assert_eq!(decode(&text).unwrap(), entropy, "{text:?}");
        }
    }
}

/// BIP-39 written out a second way, on strings of '0' and '1', to check the bit
/// arithmetic against something that shares no code with it.
fn reference_words(entropy: &[u8]) -> String {
    let mut bits: String = entropy.iter().map(|b| format!("{b:08b}")).collect();
    let hash: String = Sha256::digest(entropy).iter().map(|b| format!("{b:08b}")).collect();
    bits.push_str(&hash[..entropy.len() * 8 / 32]);
    let words: Vec<&str> = bits
        .as_bytes()
        .chunks(11)
        .map(|chunk| {
            let index = usize::from_str_radix(std::str::from_utf8(chunk).unwrap(), 2).unwrap();
            wordlist::WORDS[index]
        })
        .collect();
    words.join(" ")
}

#[test]
fn every_plain_length_matches_the_reference_rule() {
    let mut rng = Rng::new(39);
    for len in [16, 20, 24, 28, 32, 64] {
        for _ in 0..50 {
            let entropy = rng.bytes(len);
            let phrase = encode(&entropy).unwrap();
            assert_eq!(phrase, reference_words(&entropy));
            assert_eq!(decode(&phrase).unwrap(), entropy);
        }
    }
    let zeros = encode(&[0; 64]).unwrap();
    assert_eq!(zeros.split(' ').count(), 48);
    assert_eq!(zeros, reference_words(&[0; 64]));
}

#[test]
fn module_doc_example_holds() {
    let words = encode(&[0u8; 16]).unwrap();
    assert_eq!(
        words,
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
         abandon about"
    );
    let typed = "ABANDON aban aban aban aban aban aban aban aban aban aban abuot";
    let decoded = decode_with(typed, Options { fuzzy: true }).unwrap();
    assert_eq!(decoded.bytes, [0u8; 16]);
    assert_eq!(decoded.corrections[0].word, "about");
    assert_eq!(decoded.corrections[0].position, 12);
}
