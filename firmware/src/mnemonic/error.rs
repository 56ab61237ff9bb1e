//! What can go wrong turning bytes into words and back, worded so a person can fix it.

use super::framing::{MAX_PAYLOAD, MAX_WORDS};
use super::MAX_PHRASE_BYTES;

/// Why a payload could not be encoded or a phrase could not be decoded.
///
/// Variants are stable: match on them, or use [`Error::code`] where a string is needed
/// (HTTP and JavaScript errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing to encode.
    #[error("nothing to encode: the data is empty (a phrase carries 1 to {MAX_PAYLOAD} bytes)")]
    EmptyPayload,

    /// The payload is longer than a phrase can carry.
    #[error(
        "the data is {len} bytes, more than the {MAX_PAYLOAD} a phrase can carry: \
         encrypt it and share the key as a phrase, or split it"
    )]
    TooLong {
        /// Length of the payload in bytes.
        len: usize,
    },

    /// The phrase has no words at all.
    #[error("no words found: give the phrase as words separated by spaces")]
    EmptyPhrase,

    /// The phrase text is far longer than any phrase; refused before any work is done.
    #[error(
        "the phrase text is {len} bytes, far more than a {MAX_WORDS}-word phrase needs \
         (at most {MAX_PHRASE_BYTES} bytes): give only the words"
    )]
    InputTooLarge {
        /// Length of the text in bytes.
        len: usize,
    },

    /// The phrase text is not UTF-8.
    #[error(
        "the phrase is not valid UTF-8 text (bad byte at offset {offset}): \
         give the words as plain text"
    )]
    NotUtf8 {
        /// Offset of the first byte that is not UTF-8.
        offset: usize,
    },

    /// A word is not in the BIP-39 English list, nor the first four or more letters of one.
    #[error("{}", unknown_word(word, *position, *suggestion))]
    UnknownWord {
        /// The word as typed, with control characters escaped and cut to 24 characters.
        word: String,
        /// Its position in the phrase, counting from 1.
        position: usize,
        /// The one list word closest to it, when there is a single closest.
        suggestion: Option<&'static str>,
    },

    /// Fuzzy decoding found several list words one slip away from a typed word, and the
    /// checksum could not tell which one is meant (or is too weak to be asked).
    #[error(
        "word '{word}' at position {position} could be {}: check it against the original",
        alternatives(candidates)
    )]
    Ambiguous {
        /// The word as typed (escaped and shortened like [`Error::UnknownWord`]'s).
        word: String,
        /// Its position in the phrase, counting from 1.
        position: usize,
        /// The list words it could be.
        candidates: Vec<&'static str>,
    },

    /// The number of words matches no phrase.
    #[error("{}", wrong_word_count(*got, *expected))]
    WrongWordCount {
        /// Words given.
        got: usize,
        /// Words the first word announces, for a framed phrase whose header is readable.
        expected: Option<usize>,
    },

    /// Every word is in the list but the checksum does not match: some word is wrong
    /// (another list word) or words are out of order.
    #[error(
        "checksum mismatch: every word is in the list, but they do not fit together; \
         check each word and their order against the original"
    )]
    BadChecksum,

    /// Fuzzy correction found list words one slip away from the unknown words, but no
    /// combination of them passes the checksum, so none is trusted.
    #[error(
        "checksum mismatch after correcting {}: the guess is wrong or another word is; \
         check each word against the original",
        list(corrections)
    )]
    FuzzyRejected {
        /// The corrections that were tried, several for one position when it had
        /// several candidates.
        corrections: Vec<Correction>,
    },
}

impl Error {
    /// A short, stable, machine-readable name for the error (for HTTP and JavaScript).
    pub fn code(&self) -> &'static str {
        match self {
            Error::EmptyPayload => "empty_payload",
            Error::TooLong { .. } => "too_long",
            Error::EmptyPhrase => "empty_phrase",
            Error::InputTooLarge { .. } => "input_too_large",
            Error::NotUtf8 { .. } => "not_utf8",
            Error::UnknownWord { .. } => "unknown_word",
            Error::Ambiguous { .. } => "ambiguous_word",
            Error::WrongWordCount { .. } => "wrong_word_count",
            Error::BadChecksum => "bad_checksum",
            Error::FuzzyRejected { .. } => "fuzzy_rejected",
        }
    }
}

/// A word that fuzzy decoding replaced with its single nearest list word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// Position in the phrase, counting from 1.
    pub position: usize,
    /// The word as typed (escaped and shortened like [`Error::UnknownWord`]'s).
    pub typed: String,
    /// The list word used instead.
    pub word: &'static str,
}

impl std::fmt::Display for Correction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "word {} '{}' to '{}'", self.position, self.typed, self.word)
    }
}

/// Longest part of a typed word quoted back in messages: enough to recognise it, short
/// enough that pasted garbage does not flood the terminal.
const QUOTE_CHARS: usize = 24;

/// A typed word made safe to print: control characters and quotes escaped (no terminal
/// escape sequences from pasted input), cut to [`QUOTE_CHARS`] characters.
pub(crate) fn quote(typed: &str) -> String {
    let mut out = String::new();
    for (i, c) in typed.chars().enumerate() {
        if i == QUOTE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || c == '\'' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn unknown_word(word: &str, position: usize, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(near) => {
            format!("unknown word '{word}' at position {position}, did you mean '{near}'?")
        }
        None => format!(
            "unknown word '{word}' at position {position}: it is not in the BIP-39 English \
             word list; check its spelling"
        ),
    }
}

fn wrong_word_count(got: usize, expected: Option<usize>) -> String {
    let s = if got == 1 { "" } else { "s" };
    match expected {
        _ if got > MAX_WORDS => {
            format!("got {got} words, more than the {MAX_WORDS} a phrase can have")
        }
        Some(expected) => format!(
            "got {got} word{s}, but standard phrases have 12, 15, 18, 21, 24 or 48 words and \
             a framed one starting with this word has {expected}: check for a missing, extra \
             or wrong word"
        ),
        None => format!(
            "got {got} word{s}, which is not the length of any phrase (standard ones have \
             12, 15, 18, 21, 24 or 48 words): check for a missing, extra or wrong word"
        ),
    }
}

/// Corrections as a list, those for one position joined by "or".
fn list(corrections: &[Correction]) -> String {
    let mut out = String::new();
    let mut previous = None;
    for correction in corrections {
        if previous == Some(correction.position) {
            out.push_str(&format!(" or '{}'", correction.word));
        } else {
            if previous.is_some() {
                out.push_str(", ");
            }
            out.push_str(&correction.to_string());
        }
        previous = Some(correction.position);
    }
    out
}

/// "'a'", "'a' or 'b'", "'a', 'b' or 'c'".
fn alternatives(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_word_message_matches_the_spec() {
        let err = Error::UnknownWord { word: "mxon".into(), position: 3, suggestion: Some("moon") };
        assert_eq!(err.to_string(), "unknown word 'mxon' at position 3, did you mean 'moon'?");
    }

    #[test]
    fn fuzzy_messages_group_alternatives() {
        let tried = |word| Correction { position: 2, typed: "catle".into(), word };
        let err = Error::FuzzyRejected { corrections: vec![tried("castle"), tried("cattle")] };
        assert!(err
            .to_string()
            .starts_with("checksum mismatch after correcting word 2 'catle' to 'castle' or 'cattle':"));
        let err =
            Error::Ambiguous { word: "bal".into(), position: 3, candidates: vec!["bag", "ball", "bar"] };
        assert_eq!(
            err.to_string(),
            "word 'bal' at position 3 could be 'bag', 'ball' or 'bar': check it against the \
             original"
        );
    }

    #[test]
    fn quoting_escapes_control_characters_and_cuts_long_words() {
        assert_eq!(quote("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(quote("it's"), "it\\'s");
        assert_eq!(quote(&"x".repeat(100)), format!("{}…", "x".repeat(24)));
    }

    #[test]
    fn every_message_is_one_line() {
        let errors = [
            Error::EmptyPayload,
            Error::TooLong { len: 65 },
            Error::EmptyPhrase,
            Error::InputTooLarge { len: 9999 },
            Error::NotUtf8 { offset: 3 },
            Error::UnknownWord { word: "zz".into(), position: 1, suggestion: None },
            Error::WrongWordCount { got: 1, expected: None },
            Error::WrongWordCount { got: 5, expected: Some(7) },
            Error::WrongWordCount { got: 50, expected: None },
            Error::BadChecksum,
            Error::Ambiguous { word: "catle".into(), position: 2, candidates: vec!["castle", "cattle"] },
            Error::FuzzyRejected {
                corrections: vec![Correction { position: 2, typed: "catle".into(), word: "castle" }],
            },
        ];
        for err in errors {
            let message = err.to_string();
            assert!(!message.contains('\n'), "{message}");
            assert!(!err.code().is_empty());
        }
    }
}
