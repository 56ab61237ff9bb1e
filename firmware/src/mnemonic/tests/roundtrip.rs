//! Every payload from 1 to 64 bytes comes back exactly, through either rule.

use super::Rng;
use crate::mnemonic::{decode, decode_with, encode, word_count, Format, Options, MAX_PAYLOAD};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_payloads_round_trip(payload in prop::collection::vec(any::<u8>(), 1..=MAX_PAYLOAD)) {
        let phrase = encode(&payload).unwrap();
        prop_assert_eq!(Some(phrase.split(' ').count()), word_count(payload.len()));
        let decoded = decode_with(&phrase, Options { fuzzy: true }).unwrap();
        prop_assert_eq!(&decoded.bytes, &payload);
        prop_assert_eq!(Some(decoded.format), Format::for_len(payload.len()));
        prop_assert!(decoded.corrections.is_empty());
    }
}

/// Proptest picks lengths at random; this makes sure each one is covered, with the
/// payloads most likely to trip bit arithmetic (all zeros, all ones) among them.
#[test]
fn every_length_round_trips() {
    let mut rng = Rng::new(64);
    for len in 1..=MAX_PAYLOAD {
        let mut payloads = vec![vec![0u8; len], vec![0xff; len]];
        payloads.extend((0..20).map(|_| rng.bytes(len)));
        for payload in payloads {
            let phrase = encode(&payload).unwrap();
            assert_eq!(decode(&phrase).unwrap(), payload, "{len} bytes: {phrase}");
        }
    }
}

/// Distinct payloads give distinct phrases, also across lengths (a 15-byte and a
/// 16-byte payload must never share words).
#[test]
fn phrases_of_different_lengths_never_collide() {
    let mut seen = std::collections::HashSet::new();
    for len in 1..=MAX_PAYLOAD {
        for fill in [0u8, 0xff] {
            assert!(seen.insert(encode(&vec![fill; len]).unwrap()), "{len}");
        }
    }
}
