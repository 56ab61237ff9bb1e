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
    /// DQPSK over 176 carriers, 14 ms guard, rate-5/8 code: the default.
    Standard,
    /// D8PSK over 176 carriers, 12 ms guard, light code: for a quiet desk.
    Fast,
}

/// How a mode puts bytes on carriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modulation {
    /// `groups` groups of 16 tones; each group sends one nibble per symbol by
    /// lighting exactly one of its tones (non-coherent, needs no phase reference).
    Mfsk { groups: usize },
    /// Each carrier sends `bits` bits (2: DQPSK, 3: D8PSK) as a phase change from
    /// the previous symbol.
    Dpsk { carriers: usize, bits: usize },
}

/// The sweep that opens a frame (see `preamble`): robust's is long and rising, for
/// detection far into the noise; the other modes' is short and falling, for short
/// messages. Rising and falling sweeps barely correlate, so the two never mix up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sweep {
    /// Length in internal samples.
    pub len: usize,
    /// Start and end frequency (Hz).
    pub from: f64,
    pub to: f64,
    /// Silence after the preamble and before a closing sweep, so the sweep's echo
    /// has faded before data starts.
    pub gap: usize,
}

impl Sweep {
    /// 100 ms rising 1 to 6.5 kHz (27 dB of processing gain), 20 ms gap.
    pub const LONG: Sweep = Sweep { len: 1600, from: 1000.0, to: 6500.0, gap: 320 };
    /// 50 ms falling 6.5 to 1 kHz (24 dB of processing gain), 10 ms gap.
    pub const SHORT: Sweep = Sweep { len: 800, from: 6500.0, to: 1000.0, gap: 160 };
    /// Both sweeps, in the order the receiver looks for them.
    pub const ALL: [Sweep; 2] = [Sweep::LONG, Sweep::SHORT];
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
    /// The preamble's sweep.
    pub sweep: Sweep,
    /// Distance from the first to the second preamble sweep; with the sweep, it names
    /// the mode. The short sweeps overlap (two sweeps in 77 ms instead of 100).
    pub chirp_spacing: usize,
    /// Parity bytes of the header's Reed-Solomon codeword (its data is 2 bytes).
    pub header_parity: usize,
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

    /// The mode's number, which seeds its pseudo-random streams (the preamble, not
    /// the header, tells the mode).
    pub(crate) fn id(self) -> u8 {
        match self {
            Mode::Robust => 0,
            Mode::Standard => 1,
            Mode::Fast => 2,
        }
    }

    pub(crate) fn params(self) -> Params {
        match self {
            // 83.3 Hz tones, 1000..6333 Hz; 8 ms guard; 20 ms per symbol, 2 bytes each.
            Mode::Robust => Params {
                fft_len: 192,
                guard: 128,
                first_bin: 12,
                modulation: Modulation::Mfsk { groups: 4 },
                sweep: Sweep::LONG,
                chirp_spacing: 1760,
                header_parity: 10,
                max_block_data: 127,
                parity_ratio: 0.75,
                min_parity: 12,
            },
            // 31.25 Hz carriers, 1000..6500 Hz; 14 ms guard; 46 ms per symbol, 44 bytes.
            Mode::Standard => Params {
                fft_len: 512,
                guard: 224,
                first_bin: 32,
                modulation: Modulation::Dpsk { carriers: 176, bits: 2 },
                sweep: Sweep::SHORT,
                chirp_spacing: 440,
                header_parity: 14,
                max_block_data: 150,
                parity_ratio: 0.6,
                min_parity: 16,
            },
            // 31.25 Hz carriers, 1000..6500 Hz; 12 ms guard; 44 ms per symbol, 66 bytes.
            Mode::Fast => Params {
                fft_len: 512,
                guard: 192,
                first_bin: 32,
                modulation: Modulation::Dpsk { carriers: 176, bits: 3 },
                sweep: Sweep::SHORT,
                chirp_spacing: 480,
                header_parity: 14,
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
            Modulation::Dpsk { carriers, bits } => carriers * bits / 8,
        }
    }

    /// Number of FFT bins the mode uses, from `first_bin` on.
    pub fn bins(&self) -> usize {
        match self.modulation {
            Modulation::Mfsk { groups } => groups * 16,
            Modulation::Dpsk { carriers, .. } => carriers,
        }
    }

    /// Whether a known reference symbol precedes the header (differential phase needs one).
    pub fn has_reference(&self) -> bool {
        matches!(self.modulation, Modulation::Dpsk { .. })
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
    fn modes_parse_and_have_distinct_ids() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
            assert_eq!(Mode::ALL.iter().filter(|o| o.id() == m.id()).count(), 1);
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
            if let Modulation::Dpsk { carriers, bits } = p.modulation {
                assert_eq!(carriers * bits % 8, 0, "{m}: a symbol must hold whole bytes");
            }
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
