//! Nearest list words to a mistyped one, by edit distance.
//!
//! The distance counts inserted, deleted and replaced letters and swapped neighbours
//! ("optimal string alignment"), the slips people make when copying words. A suggestion
//! is only made when one word is strictly nearest: with a tie, guessing would be a coin
//! toss.

use super::wordlist::{self, WORDS};

/// Furthest a word may be from a typed one and still be suggested in an error message
/// (a person checks it). Short words get 1, since two edits rewrite most of them.
pub fn suggestion_limit(typed: &str) -> usize {
    if typed.len() <= 3 {
        1
    } else {
        2
    }
}

/// Furthest a word may be from a typed one for fuzzy decoding to use it without asking.
///
/// One edit only, and here is why that is safe: if the typed word is one slip away from
/// the word meant, that word is at distance 1, so the nearest word is either it or a tie
/// (refused). A wrong guess needs two or more slips in one word, and must then also pass
/// the checksum.
pub const FUZZY_LIMIT: usize = 1;

/// The list word strictly nearest to `typed` (lowercase) within `limit` edits, and its
/// distance.
pub fn nearest(typed: &str, limit: usize) -> Option<(u16, usize)> {
    match nearest_all(typed, limit) {
        (candidates, distance) if candidates.len() == 1 => Some((candidates[0], distance)),
        _ => None,
    }
}

/// Every list word at the smallest distance from `typed` (lowercase), if that distance
/// is within `limit`, and the distance; empty when no word is that close.
pub fn nearest_all(typed: &str, limit: usize) -> (Vec<u16>, usize) {
    let typed = typed.as_bytes();
    let typed_letters = letters(typed);
    let mut best = Vec::new();
    let mut best_distance = limit;
    for (index, word) in WORDS.iter().enumerate() {
        // Each edit removes at most one kind of letter and brings in at most one, so
        // words with too many letters the typed one lacks (or the other way round) are
        // out of reach without filling in the table.
        let theirs = LETTERS[index];
        if (typed_letters & !theirs).count_ones() as usize > best_distance
            || (theirs & !typed_letters).count_ones() as usize > best_distance
        {
            continue;
        }
        if let Some(d) = distance_within(typed, word.as_bytes(), best_distance) {
            if d < best_distance || best.is_empty() {
                best.clear();
                best_distance = d;
            }
            // The list has 2048 words, so the index fits in a u16.
            best.push(index as u16);
        }
    }
    (best, best_distance)
}

/// The kinds of letters in each list word, as for [`letters`].
// Built from the list file rather than from `WORDS`: older compilers (rust-version
// 1.80) do not let constant evaluation read a static.
static LETTERS: [u32; wordlist::LEN] = letter_sets(wordlist::split_lines(wordlist::TEXT));

/// The kinds of bytes in `text`: bit 0 to 25 for `a` to `z`, bit 26 for anything else.
const fn letters(text: &[u8]) -> u32 {
    let mut set = 0;
    let mut i = 0;
    while i < text.len() {
        set |= match text[i] {
            b @ b'a'..=b'z' => 1 << (b - b'a'),
            _ => 1 << 26,
        };
        i += 1;
    }
    set
}

/// [`letters`] of every list word, computed at compile time.
const fn letter_sets(words: [&str; wordlist::LEN]) -> [u32; wordlist::LEN] {
    let mut sets = [0; wordlist::LEN];
    let mut i = 0;
    while i < wordlist::LEN {
        sets[i] = letters(words[i].as_bytes());
        i += 1;
    }
    sets
}

/// Longest word the distance table handles on the stack; list words have at most 8
/// letters, and longer ones are never within reach of a short limit anyway.
const MAX_LEN: usize = 15;

/// The optimal-string-alignment distance between `a` and `b` if it is at most `limit`.
pub fn distance_within(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    // Length alone bounds the distance from below; this also keeps long garbage tokens
    // from costing any real work.
    if a.len().abs_diff(b.len()) > limit || a.len() > MAX_LEN || b.len() > MAX_LEN {
        return None;
    }
    // Three rolling rows of the classic table: the one before last is needed for swaps.
    let mut before = [0usize; MAX_LEN + 1];
    let mut last = [0usize; MAX_LEN + 1];
    let mut row = [0usize; MAX_LEN + 1];
    for (j, cell) in last.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    let mut last_min = 0;
    for i in 1..=a.len() {
        row[0] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
            row_min = row_min.min(d);
        }
        // A row's smallest cell is at least the smaller of the row above's and (through a
        // swap) the row before that's plus one: once two rows in a row are over the
        // limit, every later row is too, and so is the answer.
        if row_min > limit && last_min > limit {
            return None;
        }
        last_min = row_min;
        before = last;
        last = row;
    }
    Some(last[b.len()]).filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mnemonic::wordlist::word;

    fn distance(a: &[u8], b: &[u8]) -> usize {
        distance_within(a, b, MAX_LEN).unwrap()
    }

    #[test]
    fn distance_counts_common_slips_as_one() {
        assert_eq!(distance(b"moon", b"moon"), 0);
        assert_eq!(distance(b"mxon", b"moon"), 1, "replaced");
        assert_eq!(distance(b"catle", b"castle"), 1, "dropped");
        assert_eq!(distance(b"castlle", b"castle"), 1, "doubled");
        assert_eq!(distance(b"catsle", b"castle"), 1, "swapped");
        assert_eq!(distance(b"", b"zoo"), 3);
        assert_eq!(distance(b"kitten", b"sitting"), 3);
    }

    #[test]
    fn nearest_finds_the_spec_examples() {
        assert_eq!(nearest("mxon", 2).map(|(i, _)| word(i)), Some("moon"));
        assert_eq!(nearest("castel", 2).map(|(i, _)| word(i)), Some("castle"));
        // The upstream spec's own fuzzy example is a tie: "cable", "castle" and "cattle"
        // are all one letter from "catle". Only the checksum can tell them apart.
        let (tied, distance) = nearest_all("catle", 2);
        let tied: Vec<&str> = tied.into_iter().map(word).collect();
        assert_eq!((tied, distance), (vec!["cable", "castle", "cattle"], 1));
        assert_eq!(nearest("catle", 2), None);
    }

    #[test]
    fn limits_are_respected() {
        assert_eq!(distance_within(b"abc", b"abcdef", 2), None);
        assert_eq!(distance_within(b"abcxyz", b"abcdef", 2), None);
        assert_eq!(distance_within(b"abcdxf", b"abcdef", 1), Some(1));
        assert_eq!(nearest_all("qqqqqqqq", 2), (vec![], 2));
    }

    #[test]
    fn ties_and_far_words_give_no_suggestion() {
        // "bat" is one edit from "bag", "bar", "hat", "cat", ... : no single nearest.
        assert_eq!(nearest("bat", 1), None);
        assert_eq!(nearest("qqqqqqqq", 2), None);
        assert_eq!(nearest(&"x".repeat(4000), 2), None);
    }
}
