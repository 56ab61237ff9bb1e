//! Words back to bytes, strict about the checksum and forgiving about how words are
//! typed.

use super::bits::{self, WORD_BITS};
use super::error::{quote, Correction, Error};
use super::framing::{self, Format, HEADER_BITS, MAX_WORDS};
use super::suggest::{self, FUZZY_LIMIT};
use super::wordlist;
use super::MAX_PHRASE_BYTES;

/// How forgiving decoding is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Replace each unknown word with a list word one slip away (a letter dropped,
    /// added or changed, or two swapped), and accept the result only if the checksum
    /// then passes. When several words are one slip away, the checksum picks, if exactly
    /// one of them passes and the checksum is strong enough to judge (see
    /// [`max_guesses`]).
    pub fuzzy: bool,
}

/// A decoded phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The payload.
    pub bytes: Vec<u8>,
    /// Which rule the phrase follows.
    pub format: Format,
    /// Number of words in the phrase.
    pub words: usize,
    /// Words fuzzy decoding replaced; empty unless [`Options::fuzzy`] was set.
    pub corrections: Vec<Correction>,
}

/// The payload of `phrase`, decoded strictly (no fuzzy correction).
pub fn decode(phrase: &str) -> Result<Vec<u8>, Error> {
    decode_with(phrase, Options::default()).map(|decoded| decoded.bytes)
}

/// Whether `phrase` decodes: `Ok` or the error saying exactly what is wrong.
pub fn validate(phrase: &str) -> Result<(), Error> {
    decode(phrase).map(drop)
}

/// Decodes `phrase` as text given as bytes (stdin, a file, an HTTP body), checking its
/// size before its encoding so that huge inputs cost nothing.
pub fn decode_bytes(phrase: &[u8], options: Options) -> Result<Decoded, Error> {
    check_size(phrase.len())?;
    let text = std::str::from_utf8(phrase).map_err(|err| Error::NotUtf8 { offset: err.valid_up_to() })?;
    decode_with(text, options)
}

/// Decodes `phrase`.
///
/// Words are separated by whitespace or commas; case does not matter; a word may be
/// given by its first four (or more) letters; list numbers such as `1.` or `12)` in
/// front of words are skipped. Errors come in this order: input too large, more than
/// 48 words, unknown words (the first one), word count, checksum.
pub fn decode_with(phrase: &str, options: Options) -> Result<Decoded, Error> {
    check_size(phrase.len())?;
    let tokens: Vec<&str> = tokens(phrase).collect();
    if tokens.is_empty() {
        return Err(Error::EmptyPhrase);
    }
    // Counted before looking words up: looking up an unknown word compares it with the
    // whole list, and no phrase has more than 48 words.
    if tokens.len() > MAX_WORDS {
        return Err(Error::WrongWordCount { got: tokens.len(), expected: None });
    }
    let mut indices = Vec::with_capacity(tokens.len());
    let mut unknown = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let lower = token.to_ascii_lowercase();
        if let Some(index) = lookup(&lower) {
            indices.push(index);
            continue;
        }
        let position = i + 1;
        let (candidates, _) =
            if options.fuzzy { suggest::nearest_all(&lower, FUZZY_LIMIT) } else { (Vec::new(), 0) };
        if candidates.is_empty() {
            let near = suggest::nearest(&lower, suggest::suggestion_limit(&lower));
            return Err(Error::UnknownWord {
                word: quote(token),
                position,
                suggestion: near.map(|(index, _)| wordlist::word(index)),
            });
        }
        // A placeholder, replaced by each guess in turn.
        indices.push(candidates[0]);
        unknown.push(Unknown { position, typed: quote(token), candidates });
    }
    if unknown.is_empty() {
        let (bytes, format) = from_indices(&indices)?;
        return Ok(Decoded { bytes, format, words: indices.len(), corrections: Vec::new() });
    }
    correct(indices, &unknown)
}

/// An unknown word and the list words one slip away from it.
#[derive(Debug)]
struct Unknown {
    position: usize,
    typed: String,
    candidates: Vec<u16>,
}

/// Most fuzzy guesses worth trying on a phrase of `words` words.
///
/// Each wrong guess passes the checksum by chance with probability 2^-bits. Trying at
/// most 2^(bits - 4) guesses keeps the chance that some wrong guess passes at 1 in 16
/// (a 12-word BIP-39 phrase's own odds for a single wrong word) when the word meant is
/// not among the guesses. When it is (one slip per word), it always passes, and a
/// wrong guess that also passes makes the answer ambiguous, never wrong. Capped at 64
/// so the work stays small.
pub fn max_guesses(words: usize) -> usize {
    let bits = match Format::for_word_count(words) {
        Format::Bip39 => words / 3,
        Format::Framed => framing::MIN_CHECKSUM_BITS,
    };
    1 << bits.saturating_sub(4).min(6)
}

/// Fuzzy correction: tries every combination of guesses for the unknown words and
/// accepts the one combination that passes the checksum.
fn correct(mut indices: Vec<u16>, unknown: &[Unknown]) -> Result<Decoded, Error> {
    let guesses = unknown.iter().try_fold(1usize, |product, word| product.checked_mul(word.candidates.len()));
    let ambiguous = |passing: &[Vec<u16>]| {
        // The first word with more than one guess left, and those guesses.
        unknown
            .iter()
            .enumerate()
            .find_map(|(k, word)| {
                let mut left: Vec<u16> = if passing.is_empty() {
                    word.candidates.clone()
                } else {
                    passing.iter().map(|combo| combo[k]).collect()
                };
                left.sort_unstable();
                left.dedup();
                (left.len() > 1).then(|| Error::Ambiguous {
                    word: word.typed.clone(),
                    position: word.position,
                    candidates: left.into_iter().map(wordlist::word).collect(),
                })
            })
            .unwrap_or(Error::BadChecksum)
    };
    if guesses.is_none_or(|n| n > max_guesses(indices.len())) {
        return Err(ambiguous(&[]));
    }
    // Odometer over the candidates of each unknown word.
    let mut choice = vec![0usize; unknown.len()];
    let mut passing = Vec::new();
    let mut count_error = None;
    let mut other_errors = 0;
    loop {
        let combo: Vec<u16> = unknown.iter().zip(&choice).map(|(word, &c)| word.candidates[c]).collect();
        for (word, &index) in unknown.iter().zip(&combo) {
            indices[word.position - 1] = index;
        }
        match from_indices(&indices) {
            Ok((bytes, format)) => passing.push((combo, bytes, format)),
            // A guess for a framed phrase's first word changes the count it announces.
            Err(err @ Error::WrongWordCount { .. }) => count_error = count_error.or(Some(err)),
            Err(_) => other_errors += 1,
        }
        if !advance(&mut choice, unknown) {
            break;
        }
    }
    if passing.len() > 1 {
        let combos: Vec<Vec<u16>> = passing.into_iter().map(|(combo, ..)| combo).collect();
        return Err(ambiguous(&combos));
    }
    let Some((combo, bytes, format)) = passing.pop() else {
        return Err(if other_errors == 0 {
            // Every guess gives a wrong count: the count is the problem, not the guesses.
            count_error.unwrap_or(Error::BadChecksum)
        } else {
            Error::FuzzyRejected {
                corrections: unknown
                    .iter()
                    .flat_map(|word| {
                        word.candidates.iter().map(|&index| Correction {
                            position: word.position,
                            typed: word.typed.clone(),
                            word: wordlist::word(index),
                        })
                    })
                    .collect(),
            }
        });
    };
    Ok(Decoded {
        bytes,
        format,
        words: indices.len(),
        corrections: unknown
            .iter()
            .zip(combo)
            .map(|(word, index)| Correction {
                position: word.position,
                typed: word.typed.clone(),
                word: wordlist::word(index),
            })
            .collect(),
    })
}

/// Steps an odometer whose digit `k` counts through `unknown[k].candidates`; false once
/// every combination has been seen.
fn advance(choice: &mut [usize], unknown: &[Unknown]) -> bool {
    for (digit, word) in choice.iter_mut().zip(unknown) {
        *digit += 1;
        if *digit < word.candidates.len() {
            return true;
        }
        *digit = 0;
    }
    false
}

/// Refuses text longer than any phrase before doing any work on it.
fn check_size(len: usize) -> Result<(), Error> {
    if len > MAX_PHRASE_BYTES {
        Err(Error::InputTooLarge { len })
    } else {
        Ok(())
    }
}

/// The words of a phrase: split at whitespace (any Unicode space, including the
/// ideographic one other BIP-39 languages use) and commas, list numbers dropped.
fn tokens(phrase: &str) -> impl Iterator<Item = &str> {
    phrase
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|token| !token.is_empty() && !is_list_number(token))
}

/// Whether a token numbers a written-down list ("1", "1.", "12)", "3:"): digits are
/// never words, so skipping them loses nothing.
fn is_list_number(token: &str) -> bool {
    let digits = token.trim_end_matches(['.', ')', ':']);
    token.len() - digits.len() <= 1
        && (1..=2).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A lowercase token as a list word: the word itself, or four or more of its first
/// letters.
fn lookup(lower: &str) -> Option<u16> {
    wordlist::index_of(lower).or_else(|| wordlist::by_prefix(lower))
}

/// The payload and rule of a phrase given as word indices.
pub(crate) fn from_indices(indices: &[u16]) -> Result<(Vec<u8>, Format), Error> {
    let words = indices.len();
    if words == 0 {
        return Err(Error::EmptyPhrase);
    }
    if words > MAX_WORDS {
        return Err(Error::WrongWordCount { got: words, expected: None });
    }
    let bits = bits::from_indices(indices);
    let mut reader = bits::BitReader::new(bits.as_bytes(), bits.len());
    match Format::for_word_count(words) {
        Format::Bip39 => {
            // words × 11 bits = 33 × len / 4 bits, so len = 4 × words / 3.
            let len = words * 4 / 3;
            let payload = reader.read_bytes(len).ok_or(Error::BadChecksum)?;
            let checksum = framing::bip39_checksum(&payload);
            if reader.matches_prefix(&checksum, len / 4) {
                Ok((payload, Format::Bip39))
            } else {
                Err(Error::BadChecksum)
            }
        }
        Format::Framed => {
            let len = reader.read(HEADER_BITS).unwrap_or(0) as usize;
            let expected = match Format::for_len(len) {
                Some(Format::Framed) => framing::word_count(len),
                _ => None,
            };
            if expected != Some(words) {
                return Err(Error::WrongWordCount { got: words, expected });
            }
            let payload = reader.read_bytes(len).ok_or(Error::BadChecksum)?;
            let checksum = framing::framed_checksum(&payload);
            let checksum_bits = words * WORD_BITS - HEADER_BITS - 8 * len;
            if reader.matches_prefix(&checksum, checksum_bits) {
                Ok((payload, Format::Framed))
            } else {
                Err(Error::BadChecksum)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_numbers_are_recognised() {
        for token in ["1", "1.", "12)", "3:", "48"] {
            assert!(is_list_number(token), "{token}");
        }
        for token in ["", ".", "123", "1..", "a1", "1a", "１"] {
            assert!(!is_list_number(token), "{token}");
        }
    }

    #[test]
    fn tokens_split_on_any_space_and_commas() {
        let got: Vec<&str> = tokens(" 1. zoo,\tzoo\u{3000}2) Zoo\r\n").collect();
        assert_eq!(got, ["zoo", "zoo", "Zoo"]);
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let huge = "abandon ".repeat(100_000);
        assert_eq!(decode(&huge), Err(Error::InputTooLarge { len: huge.len() }));
        assert_eq!(
            decode_bytes(&vec![0xff; MAX_PHRASE_BYTES + 1], Options::default()),
            Err(Error::InputTooLarge { len: MAX_PHRASE_BYTES + 1 })
        );
    }

    #[test]
    fn non_utf8_bytes_are_reported_with_their_offset() {
        assert_eq!(decode_bytes(b"zoo \xff zoo", Options::default()), Err(Error::NotUtf8 { offset: 4 }));
    }

    #[test]
    fn too_many_words_is_a_count_error_not_an_unknown_word() {
        let phrase = "qqq ".repeat(49);
        assert_eq!(decode(&phrase), Err(Error::WrongWordCount { got: 49, expected: None }));
    }

    #[test]
    fn empty_phrase() {
        assert_eq!(decode(""), Err(Error::EmptyPhrase));
        assert_eq!(decode(" \n\t, 1. 2. "), Err(Error::EmptyPhrase));
        assert_eq!(from_indices(&[]), Err(Error::EmptyPhrase));
    }
}
