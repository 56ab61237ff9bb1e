//! Bytes to sound: symbols (MFSK, DQPSK or D8PSK) and the whole frame.

use super::frame::{body_bytes, body_start, FrameLayout};
use super::mode::{Mode, Modulation, Params, INTERNAL_RATE};
use super::preamble::chirp;
use super::scramble::Prng;
use rustfft::num_complex::Complex32;
use rustfft::FftPlanner;
use std::f32::consts::PI;

/// Amplitude of each of the MFSK tones: four sound at once, so their sum peaks
/// below 0.9 and never clips.
const MFSK_AMPLITUDE: f32 = 0.22;
/// RMS of a DPSK symbol, close to the MFSK symbols' and the sweeps' so that every
/// part of a frame is equally loud. OFDM peaks sit about 3.5x above the RMS; the
/// rare taller ones are clipped at 1.0, which the error correction absorbs.
const DPSK_RMS: f32 = 0.27;
/// Seed of the reference symbol's phases (known to the receiver).
pub(crate) const REFERENCE_SEED: u32 = 0x5245_4631;

/// The phase step for a `bits`-bit value (QPSK or 8PSK), Gray coded so that the
/// likeliest mistake (a neighbouring phase) costs one bit.
pub(crate) fn step_phase(value: u8, bits: usize) -> f32 {
    let m = 1u8 << bits;
    let mut index = value & (m - 1);
    // Inverse Gray code: the index whose Gray code is `value`.
    let mut shift = index >> 1;
    while shift != 0 {
        index ^= shift;
        shift >>= 1;
    }
    index as f32 * 2.0 * PI / m as f32
}

/// The value of the `bits` bits of `bytes` (read as one big-endian bit stream)
/// starting at bit `at`.
pub(crate) fn bits_at(bytes: &[u8], at: usize, bits: usize) -> u8 {
    (0..bits).fold(0u8, |v, b| {
        let i = at + b;
        v << 1 | (bytes[i / 8] >> (7 - i % 8)) & 1
    })
}

/// The reference symbol's phase on each carrier.
pub(crate) fn reference_phases(carriers: usize) -> Vec<f32> {
    let mut rng = Prng::new(REFERENCE_SEED);
    (0..carriers).map(|_| step_phase(rng.next_u8(), 2)).collect()
}

/// Builds symbols (guard + FFT window) from carrier values.
struct Synth {
    params: Params,
    ifft: std::sync::Arc<dyn rustfft::Fft<f32>>,
    buf: Vec<Complex32>,
}

impl Synth {
    fn new(params: Params) -> Synth {
        let ifft = FftPlanner::new().plan_fft_inverse(params.fft_len);
        Synth { params, ifft, buf: vec![Complex32::new(0.0, 0.0); params.fft_len] }
    }

    /// Appends one symbol with `values[i]` (amplitude and phase of a cosine) on bin
    /// `first_bin + i`.
    fn push(&mut self, values: &[Complex32], out: &mut Vec<f32>) {
        let n = self.params.fft_len;
        self.buf.iter_mut().for_each(|b| *b = Complex32::new(0.0, 0.0));
        for (i, v) in values.iter().enumerate() {
            let k = self.params.first_bin + i;
            // Half on k and half (conjugated) on n - k makes a real cosine of amplitude |v|.
            self.buf[k] += *v * 0.5;
            self.buf[n - k] += v.conj() * 0.5;
        }
        self.ifft.process(&mut self.buf);
        let guard = self.params.guard;
        let fade = self.params.fade_len();
        let total = guard + n;
        for i in 0..total {
            // The guard repeats the symbol's end (cyclic prefix): an echo shorter than the
            // guard then only shifts the phase of each carrier, the same in every symbol.
            let s = self.buf[(i + n - guard) % n].re;
            let edge = i.min(total - 1 - i);
            let w =
                if edge < fade { 0.5 - 0.5 * (PI * (edge as f32 + 0.5) / fade as f32).cos() } else { 1.0 };
            out.push((s * w).clamp(-1.0, 1.0));
        }
    }
}

/// The whole frame for `payload` at the internal rate. The caller checks the length.
pub(crate) fn frame(payload: &[u8], mode: Mode) -> Vec<f32> {
    let layout = FrameLayout::new(mode, payload.len());
    let p = layout.params;
    let mut out = Vec::with_capacity(layout.total_len());
    let sweep = chirp(&p.sweep, INTERNAL_RATE as f64);
    // The second sweep may overlap the first (short sweeps): add, not append.
    out.resize(p.chirp_spacing + sweep.len(), 0.0);
    for (i, s) in sweep.iter().enumerate() {
        out[i] += s;
        out[p.chirp_spacing + i] += s;
    }
    out.resize(body_start(&p), 0.0);

    let bytes = body_bytes(payload, mode);
    let bps = p.bytes_per_symbol();
    let mut synth = Synth::new(p);
    let mut rng = Prng::new(0x4D46_534B);
    match p.modulation {
        Modulation::Mfsk { groups } => {
            let mut values = vec![Complex32::new(0.0, 0.0); p.bins()];
            for sym in bytes.chunks(bps) {
                values.iter_mut().for_each(|v| *v = Complex32::new(0.0, 0.0));
                for g in 0..groups {
                    let nibble = (sym[g / 2] >> if g % 2 == 0 { 4 } else { 0 }) & 0x0F;
                    // A random phase per tone keeps the four tones from peaking together.
                    let ph = rng.next_u32() as f32 / u32::MAX as f32 * 2.0 * PI;
                    values[g * 16 + nibble as usize] = Complex32::from_polar(MFSK_AMPLITUDE, ph);
                }
                synth.push(&values, &mut out);
            }
        }
        Modulation::Dpsk { carriers, bits } => {
            let amp = DPSK_RMS / (carriers as f32 / 2.0).sqrt();
            let mut phases = reference_phases(carriers);
            let values: Vec<Complex32> = phases.iter().map(|&ph| Complex32::from_polar(amp, ph)).collect();
            synth.push(&values, &mut out);
            for sym in bytes.chunks(bps) {
                for (c, ph) in phases.iter_mut().enumerate() {
                    *ph = (*ph + step_phase(bits_at(sym, c * bits, bits), bits)) % (2.0 * PI);
                }
                let values: Vec<Complex32> =
                    phases.iter().map(|&ph| Complex32::from_polar(amp, ph)).collect();
                synth.push(&values, &mut out);
            }
        }
    }
    debug_assert_eq!(out.len(), layout.body_end());
    if let Some(start) = layout.postamble() {
        out.resize(start, 0.0);
        out.extend_from_slice(&sweep);
    }
    debug_assert_eq!(out.len(), layout.total_len());
    // Where the two short sweeps overlap they add up; keep the sum in range.
    for s in out.iter_mut() {
        *s = s.clamp(-1.0, 1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_coded_neighbours_differ_by_one_bit() {
        for bits in [2, 3] {
            let m = 1usize << bits;
            let mut by_phase: Vec<(u32, u8)> = (0..m as u8)
                .map(|v| ((step_phase(v, bits) / (2.0 * PI) * m as f32).round() as u32, v))
                .collect();
            by_phase.sort();
            assert!(by_phase.iter().enumerate().all(|(i, (k, _))| *k == i as u32), "{bits}: {by_phase:?}");
            for i in 0..m {
                let (a, b) = (by_phase[i].1, by_phase[(i + 1) % m].1);
                assert_eq!((a ^ b).count_ones(), 1, "{bits}: {a} {b}");
            }
        }
        assert_eq!(bits_at(&[0b1011_0010, 0b1100_0000], 6, 3), 0b101);
    }
}
