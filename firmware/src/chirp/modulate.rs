//! Bytes to sound: symbols (MFSK or DQPSK) and the whole frame.

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
/// RMS of a DQPSK symbol, close to the MFSK symbols' and the sweeps' so that every
/// part of a frame is equally loud. OFDM peaks sit about 3.5x above the RMS; the
/// rare taller ones are clipped at 1.0, which the error correction absorbs.
const DQPSK_RMS: f32 = 0.27;
/// Seed of the reference symbol's phases (known to the receiver).
pub(crate) const REFERENCE_SEED: u32 = 0x5245_4631;

/// The QPSK phase step for a 2-bit value, Gray coded so that the likeliest
/// mistake (a neighbouring phase) costs one bit.
pub(crate) fn dibit_phase(d: u8) -> f32 {
    match d & 3 {
        0 => 0.0,
        1 => PI / 2.0,
        3 => PI,
        _ => 3.0 * PI / 2.0,
    }
}

/// The reference symbol's phase on each carrier.
pub(crate) fn reference_phases(carriers: usize) -> Vec<f32> {
    let mut rng = Prng::new(REFERENCE_SEED);
    (0..carriers).map(|_| dibit_phase(rng.next_u8())).collect()
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
    let sweep = chirp(INTERNAL_RATE as f64);
    out.extend_from_slice(&sweep);
    out.resize(p.chirp_spacing, 0.0);
    out.extend_from_slice(&sweep);
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
        Modulation::Dqpsk { carriers } => {
            let amp = DQPSK_RMS / (carriers as f32 / 2.0).sqrt();
            let mut phases = reference_phases(carriers);
            let values: Vec<Complex32> = phases.iter().map(|&ph| Complex32::from_polar(amp, ph)).collect();
            synth.push(&values, &mut out);
            for sym in bytes.chunks(bps) {
                for (c, ph) in phases.iter_mut().enumerate() {
                    let dibit = (sym[c / 4] >> (6 - 2 * (c % 4))) & 3;
                    *ph = (*ph + dibit_phase(dibit)) % (2.0 * PI);
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
    out
}
