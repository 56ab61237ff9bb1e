//! The slips people make copying a phrase: misspelled, wrong, swapped, missing and
//! doubled words.
//!
//! What is guaranteed and what is only likely differs, and the tests say which:
//! - A misspelling that is no list word is always reported, with its position; with
//!   fuzzy decoding, one slip (one letter dropped, added, changed, or two swapped) is
//!   corrected to the original word or reported as ambiguous, never turned into other
//!   bytes.
//! - A wrong list word, swapped words, or a phrase cut short can only be caught by the
//!   checksum, which lets a random change through with probability 2^-bits: 1 in 16 for
//!   12 words, 1 in 256 for 24, at most 1 in 128 for framed phrases. The tests try every
//!   such change and check the leak rate stays within that bound.

use super::{corpus, phrase, Rng};
use crate::mnemonic::bits::BitWriter;
use crate::mnemonic::decode::from_indices;
use crate::mnemonic::{decode, decode_with, framing, wordlist, Correction, Error, Options};

const FUZZY: Options = Options { fuzzy: true };

/// Single-slip misspellings of `word`: every dropped letter and swap of neighbours, and
/// a few random changed and added letters.
fn slips(word: &str, rng: &mut Rng) -> Vec<String> {
    let w = word.as_bytes();
    let letter = |rng: &mut Rng| b'a' + rng.below(26) as u8;
    let mut out: Vec<Vec<u8>> = Vec::new();
    for i in 0..w.len() {
        let mut dropped = w.to_vec();
        dropped.remove(i);
        out.push(dropped);
    }
    for i in 1..w.len() {
        let mut swapped = w.to_vec();
        swapped.swap(i - 1, i);
        out.push(swapped);
    }
    for _ in 0..3 {
        let mut changed = w.to_vec();
        let i = rng.below(w.len());
        changed[i] = letter(rng);
        out.push(changed);
        let mut added = w.to_vec();
        added.insert(rng.below(w.len() + 1), letter(rng));
        out.push(added);
    }
    out.into_iter().filter(|typo| typo != w).map(|typo| String::from_utf8(typo).unwrap()).collect()
}

/// Whether a typed word is read as a list word (exactly or by prefix) without fuzzing.
fn resolves(typed: &str) -> Option<u16> {
    wordlist::index_of(typed).or_else(|| wordlist::by_prefix(typed))
}

#[test]
fn a_misspelled_word_is_named_with_its_position_and_fuzzy_restores_it_or_refuses() {
    let mut rng = Rng::new(1);
    let (mut corrected, mut refused) = (0, 0);
    for (payload, indices) in corpus() {
        for (i, &original) in indices.iter().enumerate() {
            let word = wordlist::word(original);
            for typo in slips(word, &mut rng) {
                if resolves(&typo).is_some() {
                    // Another list word or a prefix: a wrong-word case, tested below.
                    continue;
                }
                let mut words: Vec<&str> = indices.iter().map(|&j| wordlist::word(j)).collect();
                words[i] = &typo;
                let text = words.join(" ");
                match decode(&text) {
                    Err(Error::UnknownWord { word: typed, position, suggestion }) => {
                        assert_eq!(typed, typo);
                        assert_eq!(position, i + 1);
                        assert!(suggestion.is_none() || suggestion == Some(word), "{typo}");
                    }
                    other => panic!("{text}: {other:?}"),
                }
                match decode_with(&text, FUZZY) {
                    Ok(decoded) => {
                        assert_eq!(decoded.bytes, payload, "{text}");
                        assert_eq!(
                            decoded.corrections,
                            [Correction { position: i + 1, typed: typo.clone(), word }]
                        );
                        corrected += 1;
                    }
                    Err(Error::Ambiguous { position, candidates, .. }) => {
                        assert_eq!(position, i + 1);
                        assert!(candidates.contains(&word), "{text}: {candidates:?}");
                        refused += 1;
                    }
                    Err(other) => panic!("{text}: {other:?}"),
                }
            }
        }
    }
    eprintln!("single slips: {corrected} corrected, {refused} ambiguous");
    // Refusals are ties between list words one slip away that the checksum cannot
    // settle; they should be rare.
    assert!(corrected > 9 * refused, "{corrected} corrected, {refused} refused");
}

#[test]
fn fuzzy_fixes_several_slips_at_once_and_reports_each() {
    for (payload, indices) in corpus() {
        if indices.len() < 3 {
            continue;
        }
        let mut words: Vec<String> = indices.iter().map(|&j| wordlist::word(j).into()).collect();
        // Doubling a letter is one slip, and "x" rarely makes a list word.
        let first = format!("{}x", words[0]);
        let last = format!("x{}", words[words.len() - 1]);
        let n = words.len();
        words[0] = first;
        words[n - 1] = last;
        match decode_with(&words.join(" "), FUZZY) {
            Ok(decoded) => {
                assert_eq!(decoded.bytes, payload);
                let positions: Vec<usize> = decoded.corrections.iter().map(|c| c.position).collect();
                assert_eq!(positions, [1, n]);
            }
            Err(Error::Ambiguous { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
}

/// A payload whose phrase has `word` at position 2, for `words` = 12 or 24.
fn payload_with_second_word(word: &str, words: usize) -> Vec<u8> {
    let mut bits = BitWriter::new();
    bits.push(1, 11);
    bits.push(u32::from(wordlist::index_of(word).unwrap()), 11);
    for i in 2..words - 1 {
        bits.push(i as u32 * 97, 11);
    }
    // The last word holds the last entropy bits and then the checksum.
    bits.push(0, 11 - words / 3);
    bits.as_bytes().to_vec()
}

#[test]
fn fuzzy_lets_a_strong_checksum_settle_a_tie() {
    // "catle" is one slip from "cable", "castle" and "cattle" alike.
    let payload = payload_with_second_word("castle", 24);
    let phrase = crate::mnemonic::encode(&payload).unwrap();
    assert_eq!(phrase.split(' ').nth(1), Some("castle"));
    let typed = phrase.replacen("castle", "catle", 1);
    let decoded = decode_with(&typed, FUZZY).unwrap();
    assert_eq!(decoded.bytes, payload);
    assert_eq!(decoded.corrections[0].word, "castle");

    // Twelve words have a 4-bit checksum: too weak to pick among three guesses.
    let payload = payload_with_second_word("castle", 12);
    let phrase = crate::mnemonic::encode(&payload).unwrap();
    let typed = phrase.replacen("castle", "catle", 1);
    assert_eq!(
        decode_with(&typed, FUZZY),
        Err(Error::Ambiguous {
            word: "catle".into(),
            position: 2,
            candidates: vec!["cable", "castle", "cattle"]
        })
    );
}

#[test]
fn fuzzy_refuses_a_correction_the_checksum_does_not_confirm() {
    let (_, indices) = &corpus()[0];
    let mut words: Vec<&str> = indices.iter().map(|&j| wordlist::word(j)).collect();
    // "abandon" is wrong at position 1 (the original is also abandon, so use "zoo"),
    // and "abot" is one slip from "about".
    words[0] = "zoo";
    let last = words.len() - 1;
    assert_eq!(words[last], "about");
    words[last] = "abuot";
    match decode_with(&words.join(" "), FUZZY) {
        Err(Error::FuzzyRejected { corrections }) => {
            assert_eq!(corrections.len(), 1);
            assert_eq!(corrections[0].word, "about");
        }
        other => panic!("{other:?}"),
    }
}

/// Tally of changed phrases that still decode, against the number a checksum of their
/// length would let through by chance.
#[derive(Default)]
struct Leaks {
    tried: usize,
    accepted: usize,
    expected: f64,
}

impl Leaks {
    fn try_phrase(&mut self, payload: &[u8], changed: &[u16]) {
        self.tried += 1;
        let words = changed.len();
        if (1..=framing::MAX_WORDS).contains(&words) {
            let bits = match framing::Format::for_word_count(words) {
                framing::Format::Bip39 => words / 3,
                framing::Format::Framed => framing::MIN_CHECKSUM_BITS,
            };
            self.expected += 0.5f64.powi(bits as i32);
        }
        if let Ok((bytes, _)) = from_indices(changed) {
            // Decoding is one-to-one, so a changed phrase cannot give the same bytes.
            assert_ne!(bytes, payload, "{}", phrase(changed));
            self.accepted += 1;
        }
    }

    fn check(&self, what: &str) {
        // Twice the expected count plus a little slack: loose enough for chance, tight
        // enough to catch a checksum that is not checked.
        let bound = 2.0 * self.expected + 8.0;
        // Shown with --nocapture: the numbers quoted in docs/mnemonic.md.
        eprintln!(
            "{what}: {} of {} accepted (chance predicts {:.1})",
            self.accepted, self.tried, self.expected
        );
        assert!(
            (self.accepted as f64) <= bound,
            "{what}: {} of {} accepted, expected about {:.1}",
            self.accepted,
            self.tried,
            self.expected
        );
    }
}

#[test]
fn wrong_words_are_caught_at_the_checksum_rate() {
    let mut leaks = Leaks::default();
    let (mut first_words, mut caught_by_count) = (0, 0);
    let mut rng = Rng::new(2);
    // One phrase of each kind: 12, 24 and 48 plain words; 2, 5, 10, 23 and 47 framed.
    // The weakest (12 words) and the shortest (2) get every other word in every
    // position; the rest 256 random ones per position, which measures the same rate.
    let wanted = [12, 24, 48, 2, 5, 10, 23, 47];
    let mut seen = Vec::new();
    for (payload, indices) in corpus() {
        if !wanted.contains(&indices.len()) || seen.contains(&indices.len()) {
            continue;
        }
        seen.push(indices.len());
        let framed = framing::Format::for_word_count(indices.len()) == framing::Format::Framed;
        for i in 0..indices.len() {
            let others: Vec<u16> = if matches!(indices.len(), 2 | 12) {
                (0..wordlist::LEN as u16).collect()
            } else {
                (0..256).map(|_| rng.below(wordlist::LEN) as u16).collect()
            };
            for other in others {
                if other == indices[i] {
                    continue;
                }
                let mut changed = indices.clone();
                changed[i] = other;
                leaks.try_phrase(&payload, &changed);
                if i == 0 && framed {
                    first_words += 1;
                    if matches!(from_indices(&changed), Err(Error::WrongWordCount { .. })) {
                        caught_by_count += 1;
                    }
                }
            }
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [2, 5, 10, 12, 23, 24, 47, 48]);
    leaks.check("wrong words");
    // A framed phrase's first word announces its length, so most wrong first words are
    // caught by the count before the checksum is even looked at.
    assert!(caught_by_count * 10 > first_words * 9, "{caught_by_count} of {first_words}");
}

#[test]
fn every_swap_of_neighbouring_words_is_caught_at_the_checksum_rate() {
    let mut leaks = Leaks::default();
    for (payload, indices) in corpus() {
        for i in 1..indices.len() {
            if indices[i - 1] != indices[i] {
                let mut changed = indices.clone();
                changed.swap(i - 1, i);
                leaks.try_phrase(&payload, &changed);
            }
        }
    }
    leaks.check("swaps");
}

#[test]
fn every_cut_dropped_or_doubled_word_is_caught() {
    let mut leaks = Leaks::default();
    for (payload, indices) in corpus() {
        for end in 0..indices.len() {
            let cut = &indices[..end];
            leaks.try_phrase(&payload, cut);
            let result = from_indices(cut);
            if end == 0 {
                assert_eq!(result, Err(Error::EmptyPhrase));
            }
            let mut dropped = indices.clone();
            dropped.remove(end);
            leaks.try_phrase(&payload, &dropped);
            let mut doubled = indices.clone();
            doubled.insert(end, indices[end]);
            leaks.try_phrase(&payload, &doubled);
        }
    }
    leaks.check("cut, dropped or doubled words");
}

#[test]
fn the_spec_examples_give_the_spec_messages() {
    assert_eq!(
        decode("river castle mxon bright").unwrap_err().to_string(),
        "unknown word 'mxon' at position 3, did you mean 'moon'?"
    );
    assert!(matches!(decode("river castle moon"), Err(Error::WrongWordCount { got: 3, .. })));
    // A 12-word phrase with every word known but the last one wrong.
    let wrong_last = "river castle moon bright seven table hotel alpha river castle moon zoo";
    assert_eq!(decode(wrong_last), Err(Error::BadChecksum));
}

#[test]
fn a_framed_phrase_missing_a_word_says_how_many_it_needs() {
    let phrase = crate::mnemonic::encode(b"hello").unwrap();
    let words: Vec<&str> = phrase.split(' ').collect();
    assert_eq!(words.len(), 5);
    let short = words[..4].join(" ");
    assert_eq!(decode(&short), Err(Error::WrongWordCount { got: 4, expected: Some(5) }));
}
