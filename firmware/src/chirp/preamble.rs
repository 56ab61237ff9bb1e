//! The chirp preamble: finding frames in a long recording and measuring the
//! sender's clock.
//!
//! A frame opens with two identical sweeps ([`Sweep`]): a long rising one (1 to
//! 6.5 kHz, 100 ms) for robust mode, a short falling one (6.5 to 1 kHz, 50 ms)
//! for the others. The kind of sweep and the distance between the two name the
//! mode, and the ratio of the measured to the nominal distance is the sender's
//! clock relative to ours. A long frame ends with a third sweep, which measures
//! that ratio over the whole frame.
//!
//! Sweeps are found in two steps. Detection correlates the whole recording with
//! the four quarters of the sweep's analytic (complex) form and adds their
//! magnitudes, which tolerates a clock offset; it is normalised by the energy of
//! the recording under it, so it reads 1.0 for a clean sweep at any volume and
//! stays near 0 for noise, speech, music or a sweep of the other kind. Then
//! [`refine`] correlates coherently with the sweep stretched to the measured
//! clock, near each detection, for a position good to a small fraction of a
//! sample. Sweeps survive clipping.

pub(crate) use super::mode::Sweep;
use rustfft::num_complex::Complex32;
use rustfft::FftPlanner;
use std::f64::consts::PI;

/// Peak amplitude of a sweep: its RMS (0.32) matches the data symbols', so the
/// frame is evenly loud and the preamble is not what clips first.
const CHIRP_AMPLITUDE: f32 = 0.45;
/// Taper at each end of the sweep (5 ms): a click would spread over the whole band.
const TAPER: usize = 80;
/// Normalised correlation above which a sweep counts as present. Noise alone stays
/// below about 0.12 (long sweep) or 0.17 (short) over an hour of audio; a long sweep
/// at 0 dB in-band SNR reads 0.7.
pub(crate) const THRESHOLD: f32 = 0.3;
/// Largest clock offset between sender and receiver that the search allows for (0.7%,
/// a margin over the 0.5% a cheap sound card may be off).
pub(crate) const MAX_CLOCK_OFFSET: f64 = 0.007;
/// FFT block for the overlap-save correlation.
const BLOCK: usize = 8192;

/// Amplitude envelope of the sweep at (fractional) sample `i`.
fn envelope(sweep: &Sweep, i: f64) -> f64 {
    let edge = i.min(sweep.len as f64 - 1.0 - i);
    if edge < 0.0 {
        0.0
    } else if edge >= TAPER as f64 {
        1.0
    } else {
        0.5 - 0.5 * (PI * edge / TAPER as f64).cos()
    }
}

/// Phase of the sweep at (fractional) sample `i`.
fn phase(sweep: &Sweep, i: f64, rate: f64) -> f64 {
    let t = i / rate;
    let dur = sweep.len as f64 / rate;
    2.0 * PI * (sweep.from * t + (sweep.to - sweep.from) * t * t / (2.0 * dur))
}

/// The sweep as transmitted, at the internal rate.
pub(crate) fn chirp(sweep: &Sweep, rate: f64) -> Vec<f32> {
    (0..sweep.len)
        .map(|i| (envelope(sweep, i as f64) * phase(sweep, i as f64, rate).cos()) as f32 * CHIRP_AMPLITUDE)
        .collect()
}

/// Pieces the sweep is cut into for detection. Each piece is correlated on its own
/// and their magnitudes are added: a clock offset turns the phase of a long sweep
/// enough to halve a whole-sweep correlation at 0.5%, but barely turns a quarter.
const PIECES: usize = 4;

/// Normalised correlation of a whole recording with the sweep.
#[derive(Debug)]
pub(crate) struct Correlation {
    /// The sweep looked for.
    pub sweep: Sweep,
    /// `values[n]`: how much the recording from sample `n` on looks like a sweep (0..~1).
    pub values: Vec<f32>,
}

impl Correlation {
    /// Correlates `x` (at the internal rate) with `sweep`.
    pub fn new(x: &[f32], rate: f64, sweep: Sweep) -> Correlation {
        let chirp_len = sweep.len;
        if x.len() < chirp_len {
            return Correlation { sweep, values: Vec::new() };
        }
        let outputs = x.len() - chirp_len + 1;
        let mut planner = FftPlanner::<f32>::new();
        let fwd = planner.plan_fft_forward(BLOCK);
        let inv = planner.plan_fft_inverse(BLOCK);
        let norm_t: f64 = (0..chirp_len).map(|i| envelope(&sweep, i as f64).powi(2)).sum::<f64>().sqrt();
        let piece = chirp_len.div_ceil(PIECES);
        let templates: Vec<Vec<Complex32>> = (0..PIECES)
            .map(|k| {
                let mut t: Vec<Complex32> = (0..BLOCK)
                    .map(|i| {
                        if i / piece == k && i < chirp_len {
                            let p = phase(&sweep, i as f64, rate);
                            let a = envelope(&sweep, i as f64) / norm_t;
                            Complex32::new((a * p.cos()) as f32, (a * p.sin()) as f32)
                        } else {
                            Complex32::new(0.0, 0.0)
                        }
                    })
                    .collect();
                fwd.process(&mut t);
                t.iter().map(|v| v.conj()).collect()
            })
            .collect();
        // Running energy under the template, in f64 so an hour of audio keeps precision.
        let mut energy = Vec::with_capacity(x.len() + 1);
        energy.push(0.0f64);
        for &s in x {
            let last = *energy.last().unwrap_or(&0.0);
            energy.push(last + (s as f64) * (s as f64));
        }
        let mut values = vec![0.0f32; outputs];
        let mut power = vec![0.0f32; BLOCK];
        let hop = BLOCK - chirp_len + 1;
        let mut spectrum = vec![Complex32::new(0.0, 0.0); BLOCK];
        let mut buf = vec![Complex32::new(0.0, 0.0); BLOCK];
        let mut start = 0;
        while start < outputs {
            for (i, b) in spectrum.iter_mut().enumerate() {
                *b = Complex32::new(x.get(start + i).copied().unwrap_or(0.0), 0.0);
            }
            fwd.process(&mut spectrum);
            power.iter_mut().for_each(|p| *p = 0.0);
            for t in &templates {
                for ((b, s), t) in buf.iter_mut().zip(&spectrum).zip(t) {
                    *b = s * t;
                }
                inv.process(&mut buf);
                for (p, b) in power.iter_mut().zip(&buf) {
                    *p += b.norm_sqr();
                }
            }
            let fft_gain = (BLOCK as f32) * (BLOCK as f32);
            let count = hop.min(outputs - start);
            let window = |n: usize| energy[start + n + chirp_len] - energy[start + n];
            // FFT round-off leaves a faint copy of the block's loudest sound everywhere
            // in it; in digital silence, dividing by the tiny energy there would make
            // that residue look like a sweep. So the energy is floored 60 dB under the
            // loudest window of the block.
            let loudest = (0..count).map(window).fold(0.0f64, f64::max);
            let floor = (loudest * 1e-6).max(1e-12);
            for n in 0..count {
                // A real sweep puts half its energy in the conjugate band, and the pieces
                // split the rest: 2 * PIECES makes a clean sweep read 1.0.
                let v = 2.0 * PIECES as f32 * power[n] / fft_gain / window(n).max(floor) as f32;
                values[start + n] = v.sqrt();
            }
            start += hop;
        }
        Correlation { sweep, values }
    }

    /// The position (fractional, by a parabola through the top three values) and
    /// height of the highest value in `lo..hi`, if it is at least the threshold.
    pub fn peak_in(&self, lo: f64, hi: f64) -> Option<(f64, f32)> {
        let lo = lo.max(0.0).floor() as usize;
        let hi = (hi.ceil() as usize).min(self.values.len());
        if lo >= hi {
            return None;
        }
        let (best, &val) = self.values[lo..hi].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        let best = best + lo;
        if val < THRESHOLD {
            return None;
        }
        let mut pos = best as f64;
        if best > 0 && best + 1 < self.values.len() {
            let (a, b, c) = (self.values[best - 1] as f64, val as f64, self.values[best + 1] as f64);
            let den = a - 2.0 * b + c;
            if den < 0.0 {
                pos += (0.5 * (a - c) / den).clamp(-0.5, 0.5);
            }
        }
        Some((pos, val))
    }

    /// Positions where a sweep starts, in order: each the highest point of its
    /// neighbourhood (so an echo right behind a sweep is not a second sweep).
    pub fn candidates(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        let v = &self.values;
        // Half a sweep ahead: short of the second sweep of an overlapping pair (the
        // short sweeps are 440 or 480 samples apart), which stays a candidate of its own.
        let ahead = self.sweep.len / 2;
        while i < v.len() {
            if v[i] >= THRESHOLD {
                // Climb to the top of this bump, looking half a sweep ahead each time.
                let mut top = i;
                loop {
                    let end = (top + ahead).min(v.len());
                    let next = (top..end).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(top);
                    if next == top {
                        break;
                    }
                    top = next;
                }
                out.push(top);
                i = top + ahead;
            } else {
                i += 1;
            }
        }
        out
    }
}

/// Locates a sweep precisely: coherent correlation with the sweep as a sender
/// whose clock is `clock` (received length / sent length) would have played it,
/// around `approx`, to a fraction of a sample. `None` if nothing is there.
pub(crate) fn refine(x: &[f32], rate: f64, approx: f64, clock: f64, sweep: &Sweep) -> Option<f64> {
    const REACH: i64 = 6;
    let len = (sweep.len as f64 * clock).ceil() as usize;
    let template: Vec<(f32, f32)> = (0..len)
        .map(|i| {
            let t = i as f64 / clock;
            let a = envelope(sweep, t);
            let p = phase(sweep, t, rate);
            ((a * p.cos()) as f32, -(a * p.sin()) as f32)
        })
        .collect();
    let center = approx.round() as i64;
    let mags: Vec<f32> = (center - REACH..=center + REACH)
        .map(|n| {
            if n < 0 || n as usize + len > x.len() {
                return 0.0;
            }
            let w = &x[n as usize..n as usize + len];
            let (re, im) = w
                .iter()
                .zip(&template)
                .fold((0.0f32, 0.0f32), |(re, im), (s, t)| (re + s * t.0, im + s * t.1));
            (re * re + im * im).sqrt()
        })
        .collect();
    let (best, &top) = mags.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    if top <= 0.0 || best == 0 || best + 1 == mags.len() {
        return None;
    }
    let (a, c) = (mags[best - 1] as f64, mags[best + 1] as f64);
    let den = a - 2.0 * top as f64 + c;
    let frac = if den < 0.0 { (0.5 * (a - c) / den).clamp(-0.5, 0.5) } else { 0.0 };
    Some((center - REACH + best as i64) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_sweep_reads_one_and_noise_reads_little() {
        for sweep in Sweep::ALL {
            sweep_is_found(sweep);
        }
    }

    #[test]
    fn a_sweep_of_one_kind_is_not_taken_for_the_other() {
        let rate = 16_000.0;
        let mut x = vec![0.0f32; 8_000];
        x[2_000..2_000 + Sweep::LONG.len].copy_from_slice(&chirp(&Sweep::LONG, rate));
        x[5_000..5_000 + Sweep::SHORT.len].copy_from_slice(&chirp(&Sweep::SHORT, rate));
        let long = Correlation::new(&x, rate, Sweep::LONG);
        let short = Correlation::new(&x, rate, Sweep::SHORT);
        assert_eq!(long.candidates(), vec![2_000]);
        assert_eq!(short.candidates(), vec![5_000]);
        let cross = long.values[4_000..].iter().chain(&short.values[..4_000]).fold(0.0f32, |m, v| m.max(*v));
        assert!(cross < THRESHOLD, "{cross}");
    }

    fn sweep_is_found(sweep: Sweep) {
        let rate = 16_000.0;
        let mut x = vec![0.0f32; 20_000];
        let c = chirp(&sweep, rate);
        x[5_000..5_000 + sweep.len].copy_from_slice(&c);
        // Deterministic pseudo-noise at a low level everywhere.
        let mut s = 1u32;
        for v in x.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *v += (s as f32 / u32::MAX as f32 - 0.5) * 0.01;
        }
        let corr = Correlation::new(&x, rate, sweep);
        assert_eq!(corr.candidates(), vec![5_000]);
        let (pos, val) = corr.peak_in(4_990.0, 5_010.0).unwrap();
        assert!((pos - 5_000.0).abs() < 1.0, "{pos}");
        let fine = refine(&x, rate, pos, 1.0, &sweep).unwrap();
        assert!((fine - 5_000.0).abs() < 0.1, "{fine}");
        assert!(val > 0.95, "{val}");
        let noise = corr.values[10_000..].iter().fold(0.0f32, |m, v| m.max(*v));
        assert!(noise < 0.2, "{noise}");
    }
}
