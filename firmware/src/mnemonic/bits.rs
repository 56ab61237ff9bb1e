//! Bit strings, most significant bit first: the layout BIP-39 uses for entropy,
//! checksum and 11-bit word indices.
//!
//! Bits move in runs of up to one byte at a time: a phrase holds at most 528 bits, but
//! fuzzy decoding and the tests decode many candidate phrases, so the inner loop matters.

use super::wordlist;

/// Bits per word: 2^11 = 2048 words in the list.
pub const WORD_BITS: usize = 11;

/// A string of bits that grows at the end.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    len: usize,
}

impl BitWriter {
    /// An empty bit string.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the low `width` (at most 32) bits of `value`, highest first.
    pub fn push(&mut self, value: u32, width: usize) {
        let mut width = width.min(32);
        while width > 0 {
            let offset = self.len % 8;
            if offset == 0 {
                self.bytes.push(0);
            }
            // As many bits as fit in the current byte.
            let take = (8 - offset).min(width);
            let bits = (value >> (width - take)) & low_mask(take);
            if let Some(last) = self.bytes.last_mut() {
                *last |= (bits << (8 - offset - take)) as u8;
            }
            self.len += take;
            width -= take;
        }
    }

    /// Appends whole bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(u32::from(byte), 8);
        }
    }

    /// Appends the first `bits` bits of `bytes` (a checksum taken from a hash).
    pub fn push_prefix(&mut self, bytes: &[u8], bits: usize) {
        let mut left = bits.min(bytes.len() * 8);
        for &byte in bytes {
            if left == 0 {
                break;
            }
            let take = left.min(8);
            self.push(u32::from(byte) >> (8 - take), take);
            left -= take;
        }
    }

    /// Number of bits written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Cuts the bits into 11-bit word indices; a trailing partial word is dropped, which
    /// callers avoid by writing a multiple of 11 bits.
    pub fn to_indices(&self) -> Vec<u16> {
        let mut reader = BitReader::new(&self.bytes, self.len);
        let mut indices = Vec::with_capacity(self.len / WORD_BITS);
        while let Some(index) = reader.read(WORD_BITS) {
            // 11 bits always fit in a u16.
            indices.push(index as u16);
        }
        indices
    }

    /// The bits written, as bytes (the last one padded with zeros).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The low `bits` bits set (`bits` at most 8 here).
fn low_mask(bits: usize) -> u32 {
    (1u32 << bits) - 1
}

/// Packs word indices into a bit string, 11 bits each.
pub fn from_indices(indices: &[u16]) -> BitWriter {
    let mut bits = BitWriter::new();
    for &index in indices {
        bits.push(u32::from(index) % wordlist::LEN as u32, WORD_BITS);
    }
    bits
}

/// Reads a bit string from the front.
#[derive(Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    len: usize,
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads the first `len` bits of `bytes`.
    pub fn new(bytes: &'a [u8], len: usize) -> Self {
        BitReader { bytes, len: len.min(bytes.len() * 8), pos: 0 }
    }

    /// The next `width` (at most 32) bits as a number, or `None` when fewer are left.
    pub fn read(&mut self, width: usize) -> Option<u32> {
        if width > 32 || self.remaining() < width {
            return None;
        }
        let mut value = 0u32;
        let mut width = width;
        while width > 0 {
            let offset = self.pos % 8;
            let take = (8 - offset).min(width);
            let byte = u32::from(*self.bytes.get(self.pos / 8)?);
            let bits = (byte >> (8 - offset - take)) & low_mask(take);
            // `take` is at most 8, so the shift never drops bits still needed.
            value = (value << take) | bits;
            self.pos += take;
            width -= take;
        }
        Some(value)
    }

    /// The next `count` whole bytes, or `None` when fewer bits are left.
    pub fn read_bytes(&mut self, count: usize) -> Option<Vec<u8>> {
        if self.remaining() < count.saturating_mul(8) {
            return None;
        }
        // Eight bits always fit in a u8.
        (0..count).map(|_| self.read(8).map(|b| b as u8)).collect()
    }

    /// Whether the next `bits` bits equal the first `bits` bits of `expected`; consumes
    /// them either way.
    pub fn matches_prefix(&mut self, expected: &[u8], bits: usize) -> bool {
        if bits > expected.len() * 8 || bits > self.remaining() {
            self.pos += bits.min(self.remaining());
            return false;
        }
        let mut same = true;
        let mut left = bits;
        for &byte in expected {
            if left == 0 {
                break;
            }
            let take = left.min(8);
            same &= self.read(take) == Some(u32::from(byte) >> (8 - take));
            left -= take;
        }
        same
    }

    /// Bits not read yet.
    pub fn remaining(&self) -> usize {
        self.len - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_and_bytes_line_up_msb_first() {
        let mut bits = BitWriter::new();
        bits.push_bytes(&[0xff, 0xe0]);
        bits.push(0b1, 1);
        assert_eq!(bits.len(), 17);
        // 1111_1111_111 | 0_0000_1
        assert_eq!(bits.to_indices(), vec![2047]);
        let mut reader = BitReader::new(bits.as_bytes(), bits.len());
        assert_eq!(reader.read(11), Some(2047));
        assert_eq!(reader.read(6), Some(1));
        assert_eq!(reader.read(1), None);
    }

    #[test]
    fn prefix_comparison() {
        let hash = [0b1010_0000u8, 0xff];
        let mut bits = BitWriter::new();
        bits.push(0b1010, 4);
        let mut reader = BitReader::new(bits.as_bytes(), bits.len());
        assert!(reader.matches_prefix(&hash, 4));
        let mut reader = BitReader::new(bits.as_bytes(), bits.len());
        assert!(!reader.matches_prefix(&[0u8], 4));
        let mut reader = BitReader::new(bits.as_bytes(), bits.len());
        assert!(!reader.matches_prefix(&hash, 5), "more bits than left never matches");
    }

    proptest::proptest! {
        #[test]
        fn what_is_pushed_reads_back(fields in proptest::collection::vec((proptest::prelude::any::<u32>(), 0usize..=32), 0..40)) {
            let mut bits = BitWriter::new();
            for &(value, width) in &fields {
                bits.push(value, width);
            }
            let total: usize = fields.iter().map(|&(_, width)| width).sum();
            proptest::prop_assert_eq!(bits.len(), total);
            let mut reader = BitReader::new(bits.as_bytes(), bits.len());
            for &(value, width) in &fields {
                let want = if width == 32 { value } else { value & ((1u32 << width) - 1) };
                proptest::prop_assert_eq!(reader.read(width), Some(want));
            }
            proptest::prop_assert_eq!(reader.remaining(), 0);
        }
    }
}
