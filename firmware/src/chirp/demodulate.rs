//! Sound to bytes: reads the body symbols of a frame that is already aligned
//! (sample 0 is the first sweep's start, clock offset undone).
//!
//! Every byte comes with a confidence, which the error correction uses to pick
//! erasures. MFSK: how much the winning tone of each group stands out from the
//! runner-up. DPSK: how far each phase step is from a decision boundary (a byte
//! is as sure as the least sure carrier it rides on).
//!
//! DPSK also tracks timing: whatever clock error is left after resampling shows
//! up as a phase slope across carriers from one symbol to the next. Raising the
//! phase steps to the M-th power (4 for DQPSK, 8 for D8PSK) removes the data
//! (steps are multiples of 360/M degrees) and leaves M times the slope, which is
//! measured from neighbouring carriers,
//! summed over the symbols so far, taken out of every decision, and used to slide
//! the FFT window along; only when its standard error is small, which in practice
//! means a clean channel.

use super::frame::body_start;
use super::mode::{Modulation, Params};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::f32::consts::PI;
use std::sync::Arc;

/// Largest timing drift per symbol believed (samples): the clock left after the
/// preamble's correction is within about 1e-4, a tenth of a sample per symbol.
const MAX_DRIFT: f32 = 0.25;
/// Largest standard error (samples) of a drift estimate that is used. A wrong turn
/// costs more than none (D8PSK's decision sectors are 45 degrees: 0.25 samples of
/// error turns the top carrier by 37), so a noisy estimate is left out.
const MAX_DRIFT_ERROR: f32 = 0.02;

/// Reads the first `symbols` symbols of the body of `y` (reference included).
/// Returns each symbol's bytes in a row, and their confidences; `None` if `y` ends
/// before the last symbol does.
pub(crate) fn body(y: &[f32], params: &Params, symbols: usize) -> Option<(Vec<u8>, Vec<f32>)> {
    let mut reader = Reader::new(params);
    match params.modulation {
        Modulation::Mfsk { groups } => reader.mfsk(y, groups, symbols),
        Modulation::Dpsk { carriers, bits } => reader.dpsk(y, carriers, bits, symbols),
    }
}

struct Reader {
    params: Params,
    fft: Arc<dyn Fft<f32>>,
    buf: Vec<Complex32>,
}

impl Reader {
    fn new(params: &Params) -> Reader {
        let fft = FftPlanner::new().plan_fft_forward(params.fft_len);
        Reader { params: *params, fft, buf: vec![Complex32::new(0.0, 0.0); params.fft_len] }
    }

    /// The mode's bins of the FFT window starting at `pos`.
    fn spectrum(&mut self, y: &[f32], pos: i64) -> Option<Vec<Complex32>> {
        let n = self.params.fft_len;
        if pos < 0 || pos as usize + n > y.len() {
            return None;
        }
        let pos = pos as usize;
        for (b, &s) in self.buf.iter_mut().zip(&y[pos..pos + n]) {
            *b = Complex32::new(s, 0.0);
        }
        self.fft.process(&mut self.buf);
        let k0 = self.params.first_bin;
        Some(self.buf[k0..k0 + self.params.bins()].to_vec())
    }

    fn window(&self, symbol: usize) -> i64 {
        (body_start(&self.params) + symbol * self.params.symbol_len() + self.params.window_offset()) as i64
    }

    fn mfsk(&mut self, y: &[f32], groups: usize, symbols: usize) -> Option<(Vec<u8>, Vec<f32>)> {
        let mut bytes = Vec::with_capacity(symbols * groups / 2);
        let mut conf = Vec::with_capacity(symbols * groups / 2);
        for s in 0..symbols {
            let spec = self.spectrum(y, self.window(s))?;
            let mut byte = 0u8;
            let mut sure = f32::INFINITY;
            for g in 0..groups {
                let energy = spec[g * 16..g * 16 + 16].iter().map(|c| c.norm_sqr());
                let (mut best, mut e1, mut e2) = (0usize, -1.0f32, 0.0f32);
                for (t, e) in energy.enumerate() {
                    if e > e1 {
                        e2 = e1.max(0.0);
                        e1 = e;
                        best = t;
                    } else if e > e2 {
                        e2 = e;
                    }
                }
                byte = byte << 4 | best as u8;
                sure = sure.min(1.0 - e2 / e1.max(1e-20));
                if g % 2 == 1 {
                    bytes.push(byte);
                    conf.push(sure);
                    byte = 0;
                    sure = f32::INFINITY;
                }
            }
        }
        Some((bytes, conf))
    }

    fn dpsk(
        &mut self,
        y: &[f32],
        carriers: usize,
        bits: usize,
        symbols: usize,
    ) -> Option<(Vec<u8>, Vec<f32>)> {
        let n = self.params.fft_len as f32;
        let k0 = self.params.first_bin as f32;
        let m = 1usize << bits;
        let sector = 2.0 * PI / m as f32;
        let per_symbol = carriers * bits / 8;
        let mut bytes = Vec::with_capacity(symbols * per_symbol);
        let mut conf = Vec::with_capacity(symbols * per_symbol);
        let mut shift = 0i64;
        let mut tau = 0.0f32;
        let mut slope = Complex32::new(0.0, 0.0);
        let mut spread = 0.0f32;
        let mut terms = 0usize;
        let mut prev = self.spectrum(y, self.window(0))?;
        let mut z = vec![Complex32::new(0.0, 0.0); carriers];
        for s in 1..symbols {
            let cur = self.spectrum(y, self.window(s) + shift)?;
            for k in 0..carriers {
                z[k] = cur[k] * prev[k].conj();
            }
            // Phase slope across carriers, data removed by the M-th power. One symbol's
            // slope is too noisy at low SNR (the power multiplies the phase noise), but
            // the drift is the same in every symbol: sum the slopes over all symbols so far.
            let stripped = z.iter().map(|v| {
                let mag = v.norm();
                if mag > 0.0 {
                    v.powi(m as i32) / mag.powi(m as i32 - 1)
                } else {
                    *v
                }
            });
            let mut last: Option<Complex32> = None;
            for q in stripped {
                if let Some(l) = last {
                    let term = q * l.conj();
                    slope += term;
                    spread += term.norm();
                    terms += 1;
                }
                last = Some(q);
            }
            // A delay of d samples turns carrier k by -2 pi k d / n; the M-th power makes
            // it M times that. Only trusted when the estimate is precise (at low SNR the
            // terms point every way; the preamble's clock then has to do).
            // How well the terms agree (length of their sum over the sum of their
            // lengths) gives the spread of their angles, and from it the standard error
            // of the mean slope over `terms` measurements, in samples of drift.
            let agree = (slope.norm() / spread.max(1e-20)).clamp(1e-6, 1.0);
            let angle_error = ((1.0 - agree * agree) / (terms.max(1) as f32 * agree * agree)).sqrt();
            let drift_error = angle_error * n / (2.0 * PI * m as f32);
            let d = if drift_error <= MAX_DRIFT_ERROR {
                (-slope.arg() * n / (2.0 * PI * m as f32)).clamp(-MAX_DRIFT, MAX_DRIFT)
            } else {
                0.0
            };
            let mean_mag = z.iter().map(|v| v.norm()).sum::<f32>() / carriers as f32 + 1e-20;
            let first = bytes.len();
            bytes.resize(first + per_symbol, 0u8);
            conf.resize(first + per_symbol, f32::INFINITY);
            for (k, v) in z.iter().enumerate() {
                let undo = Complex32::from_polar(1.0, 2.0 * PI * (k0 + k as f32) * d / n);
                let v = *v * undo;
                let index = ((v.arg() / sector).round() as i32).rem_euclid(m as i32) as u8;
                // Phase index to bits: the Gray code that `step_phase` inverts.
                let value = index ^ (index >> 1);
                let r = v * Complex32::from_polar(1.0, -(index as f32) * sector);
                let sure = r.norm() * (sector / 2.0 - r.arg().abs()).sin() / mean_mag;
                for b in 0..bits {
                    let at = k * bits + b;
                    let i = first + at / 8;
                    bytes[i] |= ((value >> (bits - 1 - b)) & 1) << (7 - at % 8);
                    conf[i] = conf[i].min(sure);
                }
            }
            // Follow the drift: move the window by whole samples, and turn the stored
            // spectrum by what that move will add to the next one.
            tau += d;
            let step = tau.round();
            prev = cur;
            if step != 0.0 {
                shift += step as i64;
                tau -= step;
                for (k, p) in prev.iter_mut().enumerate() {
                    *p *= Complex32::from_polar(1.0, 2.0 * PI * (k0 + k as f32) * step / n);
                }
            }
        }
        Some((bytes, conf))
    }
}
