//! The three transmission modes and the numbers that define each one.
//!
//! Every number here is in samples of the modem's internal rate
//! ([`INTERNAL_RATE`]); the sound card's rate is converted at the edges, so a
//! mode sounds the same whatever rate the sender or the receiver runs at.

use std::fmt;
use std::str::FromStr;

/// Sample rate (Hz) at which the modem builds and reads symbols.
///
/// 16 kHz carries everything up to 8 kHz, which is all a laptop speaker and a
/// phone microphone reliably share; it also keeps decoding cheap.
pub const INTERNAL_RATE: u32 = 16_000;

/// How fast and how carefully a message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 16-tone MFSK, long guard, rate-4/7 code: for noisy rooms and distance.
    Robust,
    /// DQPSK over 128 carriers, 16 ms guard, rate-1/2 code: the default.
    Standard,
    /// DQPSK over 88 carriers, short guard, light code: for a quiet desk.
    Fast,
}

/// How a mode puts bytes on carriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modulation {
    /// `groups` groups of 16 tones; each group sends one nibble per symbol by
    /// lighting exactly one of its tones (non-coherent, needs no phase reference).
    Mfsk { groups: usize },
    /// Each carrier sends two bits as a phase change from the previous symbol.
    Dqpsk { carriers: usize },
}

/// The fixed parameters of one mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// FFT length: one symbol's useful part; carrier spacing is `INTERNAL_RATE / fft_len`.
    pub fft_len: usize,
    /// Cyclic prefix (guard) before each symbol; absorbs echoes shorter than it.
    pub guard: usize,
    /// FFT bin of the lowest carrier or tone.
    pub first_bin: usize,
    pub modulation: Modulation,
    /// Distance from the first to the second preamble chirp; it names the mode.
    pub chirp_spacing: usize,
    /// Most data bytes in one Reed-Solomon codeword.
    pub max_block_data: usize,
    /// Parity bytes per data byte (0.25 = a quarter as many parity as data bytes).
    pub parity_ratio: f32,
    /// Fewest parity bytes per codeword, so that short messages stay well protected.
    pub min_parity: usize,
}

impl Mode {
    /// All modes, most robust first.
    pub const ALL: [Mode; 3] = [Mode::Robust, Mode::Standard, Mode::Fast];

    /// The mode's name as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Robust => "robust",
            Mode::Standard => "standard",
            Mode::Fast => "fast",
        }
    }

    /// The two-bit number the header carries for this mode.
    pub(crate) fn id(self) -> u8 {
        match self {
            Mode::Robust => 0,
            Mode::Standard => 1,
            Mode::Fast => 2,
        }
    }

    /// The mode with header number `id`, if any.
    pub(crate) fn from_id(id: u8) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.id() == id)
    }

    pub(crate) fn params(self) -> Params {
        match self {
            // 83.3 Hz tones, 1000..6333 Hz; 8 ms guard; 20 ms per symbol, 2 bytes each.
            Mode::Robust => Params {
                fft_len: 192,
                guard: 128,
                first_bin: 12,
                modulation: Modulation::Mfsk { groups: 4 },
                chirp_spacing: 1760,
                max_block_data: 127,
                parity_ratio: 0.75,
                min_parity: 12,
            },
            // 31.25 Hz carriers, 1000..5000 Hz; 16 ms guard; 48 ms per symbol, 32 bytes.
            Mode::Standard => Params {
                fft_len: 512,
                guard: 256,
                first_bin: 32,
                modulation: Modulation::Dqpsk { carriers: 128 },
                chirp_spacing: 2080,
                max_block_data: 127,
                parity_ratio: 1.0,
                min_parity: 16,
            },
            // 62.5 Hz carriers, 1000..6500 Hz; 6 ms guard; 22 ms per symbol, 22 bytes.
            Mode::Fast => Params {
                fft_len: 256,
                guard: 96,
                first_bin: 16,
                modulation: Modulation::Dqpsk { carriers: 88 },
                chirp_spacing: 1920,
                max_block_data: 207,
                parity_ratio: 0.23,
                min_parity: 12,
            },
        }
    }
}

impl Params {
    /// Samples per symbol, guard included.
    pub fn symbol_len(&self) -> usize {
        self.fft_len + self.guard
    }

    /// Where the FFT window starts inside a symbol. Late in the guard, so an echo up to
    /// this long is absorbed, with a little room left for a late timing estimate.
    pub fn window_offset(&self) -> usize {
        self.guard - self.guard / 4
    }

    /// Length of the raised-cosine fade at each end of a symbol (outside the window),
    /// which keeps the jump between symbols from clicking in a speaker.
    pub fn fade_len(&self) -> usize {
        self.guard / 16
    }

    /// Bytes carried by one symbol.
    pub fn bytes_per_symbol(&self) -> usize {
        match self.modulation {
            Modulation::Mfsk { groups } => groups / 2,
            Modulation::Dqpsk { carriers } => carriers / 4,
        }
    }

    /// Number of FFT bins the mode uses, from `first_bin` on.
    pub fn bins(&self) -> usize {
        match self.modulation {
            Modulation::Mfsk { groups } => groups * 16,
            Modulation::Dqpsk { carriers } => carriers,
        }
    }

    /// Whether a known reference symbol precedes the header (differential phase needs one).
    pub fn has_reference(&self) -> bool {
        matches!(self.modulation, Modulation::Dqpsk { .. })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a mode name that is not one of robust, standard, fast.
#[derive(Debug, thiserror::Error)]
#[error("unknown chirp mode {0:?} (use robust, standard or fast)")]
pub struct UnknownMode(String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_round_trip_their_ids() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
            assert_eq!(Mode::from_id(m.id()), Some(m));
        }
        assert!("loud".parse::<Mode>().is_err());
    }

    #[test]
    fn modes_fit_under_the_internal_nyquist_and_are_told_apart_by_spacing() {
        let mut spacings = Vec::new();
        for m in Mode::ALL {
            let p = m.params();
            let top_hz = (p.first_bin + p.bins()) as f32 * INTERNAL_RATE as f32 / p.fft_len as f32;
            assert!(top_hz <= 7000.0, "{m} reaches {top_hz} Hz");
            assert!(p.max_block_data + ((p.max_block_data as f32) * p.parity_ratio).ceil() as usize <= 255);
            spacings.push(p.chirp_spacing as f32);
        }
        // The preamble search window is +-0.7% of the spacing: windows must not overlap.
        for a in &spacings {
            for b in &spacings {
                if a < b {
                    assert!(a * 1.01 < b * 0.99);
                }
            }
        }
    }
}
