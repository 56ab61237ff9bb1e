//! Whole-module tests of the mnemonic library, one file per concern.
//!
//! - `vectors`: the official BIP-39 English vectors and an independent reference rule.
//! - `roundtrip`: every payload length comes back exactly.
//! - `mistakes`: the slips people make are caught, and fuzzy fixes only what is safe.
//! - `garbage`: any input at all gives an error or bytes, never a panic.

mod garbage;
mod mistakes;
mod roundtrip;
mod vectors;

use super::{encode, wordlist};

/// A small deterministic generator (xorshift64*), so exhaustive tests are repeatable
/// without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The official English vectors: (entropy, phrase).
fn official_vectors() -> Vec<(Vec<u8>, String)> {
    let json = include_str!("vectors.json");
    // The fixture is a fixed, escape-free file: after the "english" key, the quoted
    // strings alternate entropy, phrase. Not worth a JSON dependency.
    let english = &json[json.find("\"english\"").expect("english key") + 9..];
    let strings: Vec<&str> = english.split('"').skip(1).step_by(2).collect();
    assert_eq!(strings.len() % 2, 0);
    strings.chunks(2).map(|pair| (hex::decode(pair[0]).expect("hex entropy"), pair[1].to_owned())).collect()
}

/// Payloads covering both rules: the official vectors plus framed payloads of
/// assorted lengths, each with its phrase as word indices.
fn corpus() -> Vec<(Vec<u8>, Vec<u16>)> {
    let mut rng = Rng::new(7);
    let mut payloads: Vec<Vec<u8>> = official_vectors().into_iter().map(|(e, _)| e).collect();
    payloads.push(rng.bytes(64));
    for len in [1, 2, 5, 11, 15, 17, 30, 33, 47, 63] {
        payloads.push(rng.bytes(len));
    }
    payloads
        .into_iter()
        .map(|payload| {
            let indices = encode::indices(&payload).expect("corpus payloads encode");
            (payload, indices)
        })
        .collect()
}

/// Word indices as a phrase.
fn phrase(indices: &[u16]) -> String {
    let words: Vec<&str> = indices.iter().map(|&i| wordlist::word(i)).collect();
    words.join(" ")
}
