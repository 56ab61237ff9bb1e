//! Any input at all gives bytes or an error, never a panic: the fuzz tests of the
//! decoder, run as property tests so they need no `cargo fuzz` toolchain.

use crate::mnemonic::decode::from_indices;
use crate::mnemonic::{
    decode, decode_bytes, decode_with, encode, encode::indices, wordlist, Error, Options, MAX_PHRASE_BYTES,
};
use proptest::prelude::*;

const BOTH: [Options; 2] = [Options { fuzzy: false }, Options { fuzzy: true }];

/// What every outcome must satisfy: bytes that encode back to the words read, or an
/// error with a one-line message.
fn check_outcome(result: Result<crate::mnemonic::Decoded, Error>) {
    match result {
        Ok(decoded) => {
            // Decoding is canonical: the payload encodes to a phrase of the same length
            // that decodes to it again.
            let again = encode(&decoded.bytes).expect("decoded bytes encode");
            assert_eq!(again.split(' ').count(), decoded.words);
            assert_eq!(decode(&again).expect("re-encoded phrase decodes"), decoded.bytes);
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.is_empty() && !message.contains('\n'), "{message:?}");
        }
    }
}

/// Text that looks like a phrase: list words, abbreviations, typos, shouting, numbers,
/// junk and odd separators, in any number.
fn phrase_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => (0..wordlist::LEN).prop_map(|i| wordlist::WORDS[i].to_owned()),
        1 => (0..wordlist::LEN).prop_map(|i| wordlist::WORDS[i].chars().take(4).collect()),
        1 => (0..wordlist::LEN, any::<u8>()).prop_map(|(i, b)| {
            let mut w = wordlist::WORDS[i].as_bytes().to_vec();
            let at = usize::from(b) % w.len();
            w[at] = b'a' + b % 26;
            String::from_utf8(w).unwrap_or_default()
        }),
        1 => (0..wordlist::LEN).prop_map(|i| wordlist::WORDS[i].to_uppercase()),
        1 => "[0-9]{1,3}[.):]?",
        1 => "\\PC{0,12}",
    ];
    let separator = prop_oneof![Just(" "), Just("  "), Just("\n"), Just(", "), Just("\t")];
    prop::collection::vec((token, separator), 0..60)
        .prop_map(|parts| parts.into_iter().flat_map(|(token, sep)| [token, sep.to_owned()]).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_string_is_handled(text in "\\PC{0,300}") {
        for options in BOTH {
            check_outcome(decode_with(&text, options));
        }
    }

    #[test]
    fn any_bytes_are_handled(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for options in BOTH {
            check_outcome(decode_bytes(&bytes, options));
        }
    }

    #[test]
    fn phrase_like_text_is_handled(text in phrase_like()) {
        for options in BOTH {
            check_outcome(decode_with(&text, options));
        }
    }

    #[test]
    fn any_sequence_of_list_words_decodes_canonically_or_not_at_all(
        chosen in prop::collection::vec(0..wordlist::LEN as u16, 0..60)
    ) {
        if let Ok((bytes, _)) = from_indices(&chosen) {
            prop_assert_eq!(indices(&bytes).unwrap(), chosen);
        }
    }
}

#[test]
fn huge_inputs_are_refused_at_once() {
    for len in [MAX_PHRASE_BYTES + 1, 1 << 20, 16 << 20] {
        let text = "zoo ".repeat(len / 4 + 1);
        assert_eq!(decode(&text), Err(Error::InputTooLarge { len: text.len() }));
        let bytes = vec![0x80u8; len];
        assert_eq!(decode_bytes(&bytes, Options { fuzzy: true }), Err(Error::InputTooLarge { len }));
    }
    assert_eq!(encode(&[7; 1 << 20]), Err(Error::TooLong { len: 1 << 20 }));
}

#[test]
fn the_most_expensive_accepted_input_stays_cheap() {
    // 48 unknown words that each need a full nearest-word search, at the size limit.
    let word = "qzqzqzqz";
    let text = vec![word; 48].join(" ");
    assert!(text.len() <= MAX_PHRASE_BYTES);
    let start = std::time::Instant::now();
    for options in BOTH {
        assert!(matches!(decode_with(&text, options), Err(Error::UnknownWord { position: 1, .. })));
    }
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}

/// The all-zero 16-byte vector in other BIP-39 languages: each is a valid phrase there,
/// and must be an error here, fuzzy or not.
#[test]
fn phrases_in_other_languages_are_refused() {
    let phrases = [
        "ábaco ábaco ábaco ábaco ábaco ábaco ábaco ábaco ábaco ábaco ábaco abierto",
        "abaisser abaisser abaisser abaisser abaisser abaisser abaisser abaisser abaisser \
         abaisser abaisser abeille",
        "abaco abaco abaco abaco abaco abaco abaco abaco abaco abaco abaco abete",
        "あいこくしん\u{3000}あいこくしん\u{3000}あいこくしん\u{3000}あいこくしん\u{3000}\
         あいこくしん\u{3000}あいこくしん\u{3000}あいこくしん\u{3000}あいこくしん\u{3000}\
         あいこくしん\u{3000}あいこくしん\u{3000}あいこくしん\u{3000}あおぞら",
        "的 的 的 的 的 的 的 的 的 的 的 在",
        "가격 가격 가격 가격 가격 가격 가격 가격 가격 가격 가격 가능",
        "abdikace abdikace abdikace abdikace abdikace abdikace abdikace abdikace abdikace \
         abdikace abdikace agrese",
        "abacate abacate abacate abacate abacate abacate abacate abacate abacate abacate \
         abacate abater",
    ];
    for text in phrases {
        for options in BOTH {
            match decode_with(text, options) {
                Err(Error::UnknownWord { position: 1, .. }) => {}
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
