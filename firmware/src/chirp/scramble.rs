//! Whitening and interleaving: deterministic shuffles both ends agree on.
//!
//! Whitening XORs the coded bytes with a pseudo-random stream so that a payload
//! of zeros does not become the same tone or phase over and over (a steady tone
//! is easy to confuse with hum, and equal OFDM phases make tall peaks that clip).
//! Interleaving spreads each codeword's bytes over the whole frame, so a burst
//! (a door slam, a notch in the room's response) costs many codewords one byte
//! each instead of one codeword all of its bytes.

/// A small, fast pseudo-random generator (xorshift32); only needs to be the same
/// on both ends, not unpredictable.
#[derive(Clone, Debug)]
pub(crate) struct Prng(u32);

impl Prng {
    /// A generator for one purpose (`seed`), never stuck at zero.
    pub fn new(seed: u32) -> Prng {
        Prng(seed.wrapping_mul(0x9E37_79B9) | 1)
    }

    pub fn next_u32(&mut self) -> u32 {
        let mut s = self.0;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        self.0 = s;
        s
    }

    pub fn next_u8(&mut self) -> u8 {
        (self.next_u32() >> 24) as u8
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u32() as u64 * n as u64) >> 32) as usize
    }
}

/// XORs `bytes` with the stream for `seed`; applying it twice restores the input.
pub(crate) fn whiten(bytes: &mut [u8], seed: u32) {
    let mut rng = Prng::new(seed);
    for b in bytes {
        *b ^= rng.next_u8();
    }
}

/// A permutation of `0..n`: coded byte `i` is sent in slot `perm[i]`.
pub(crate) fn permutation(n: usize, seed: u32) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let mut rng = Prng::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        perm.swap(i, j);
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitening_twice_is_identity_and_permutation_is_a_permutation() {
        let mut data = vec![0u8; 100];
        whiten(&mut data, 7);
        assert!(data.iter().filter(|&&b| b == 0).count() < 10);
        whiten(&mut data, 7);
        assert!(data.iter().all(|&b| b == 0));
        let mut p = permutation(1000, 3);
        p.sort_unstable();
        assert!(p.iter().enumerate().all(|(i, &v)| i as u32 == v));
    }
}
