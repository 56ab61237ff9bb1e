//! Band-limited resampling at any ratio (windowed sinc).
//!
//! One routine serves three purposes: converting the sound card's rate to the
//! modem's internal rate and back, and undoing a sender whose clock runs fast or
//! slow (the receiver measures the ratio from the preamble and resamples with it).

use std::sync::OnceLock;

/// Zero crossings of the sinc on each side. 12 keeps aliasing of the out-of-band
/// noise below about -60 dB, which is far below anything the demodulator notices.
const ZERO_CROSSINGS: usize = 12;
/// Table steps per zero crossing; linear interpolation between them.
const TABLE_STEPS: usize = 256;
/// Passband edge as a fraction of the lower Nyquist frequency; leaves room for the
/// transition band so the modem's top carrier (6.5 kHz of 8 kHz) passes untouched.
const PASSBAND: f64 = 0.86;

/// The windowed sinc at `u` zero crossings from its centre (0 beyond the window).
fn kernel(u: f64) -> f64 {
    let u = u.abs();
    let x = u / ZERO_CROSSINGS as f64;
    if x >= 1.0 {
        return 0.0;
    }
    let sinc = if u == 0.0 { 1.0 } else { (std::f64::consts::PI * u).sin() / (std::f64::consts::PI * u) };
    // Blackman window: simple, -58 dB sidelobes.
    let w = 0.42 + 0.5 * (std::f64::consts::PI * x).cos() + 0.08 * (2.0 * std::f64::consts::PI * x).cos();
    sinc * w
}

/// The kernel sampled on `[0, ZERO_CROSSINGS]`, built once, for arbitrary ratios.
fn table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let n = ZERO_CROSSINGS * TABLE_STEPS + 2;
        (0..n).map(|i| kernel(i as f64 / TABLE_STEPS as f64) as f32).collect()
    })
}

/// Most filter phases precomputed for a rational ratio (`to / gcd`): 44.1 <-> 16
/// kHz needs 160 or 441; odd ratios beyond this fall back to the table.
const MAX_PHASES: usize = 1024;

/// Reads `count` output samples from `input`: output `i` is the input evaluated at
/// position `start + i * step` (in input samples). `step > 1` shrinks (lower rate),
/// `step < 1` stretches. Positions outside the input read as silence.
pub(crate) fn resample_at(input: &[f32], start: f64, step: f64, count: usize) -> Vec<f32> {
    let table = table();
    // Cutoff in units of the input's sample rate, lowered when shrinking so that what
    // cannot be represented at the output rate is filtered instead of aliased.
    let scale = if step > 1.0 { 1.0 / step } else { 1.0 } * PASSBAND;
    let half_width = ZERO_CROSSINGS as f64 / scale;
    let mut out = Vec::with_capacity(count);
    let len = input.len() as i64;
    // Kernel table steps per input sample; u walks the table as j walks the input.
    let du = (scale * TABLE_STEPS as f64) as f32;
    let last = table.len() - 2;
    for i in 0..count {
        let center = start + i as f64 * step;
        let lo = ((center - half_width).ceil() as i64).max(0);
        let hi = ((center + half_width).floor() as i64).min(len - 1);
        let mut acc = 0.0f32;
        let mut norm = 0.0f32;
        if lo <= hi {
            let mut u = ((lo as f64 - center) * scale * TABLE_STEPS as f64) as f32;
            for &x in &input[lo as usize..=hi as usize] {
                let a = u.abs();
                let idx = (a as usize).min(last);
                let w = table[idx] + (table[idx + 1] - table[idx]) * (a - idx as f32);
                acc += w * x;
                norm += w;
                u += du;
            }
        }
        // Normalising by the kernel sum keeps the gain exact at every fractional phase.
        // Where the kernel runs off the input, the sum is partial and would amplify:
        // use the full kernel's sum (1/scale) instead, as if the outside were silence.
        let inside = center - half_width >= 0.0 && center + half_width <= (len - 1) as f64;
        out.push(if inside && norm > 0.0 { acc / norm } else { acc * scale as f32 });
    }
    out
}

/// Converts a whole signal from `from` Hz to `to` Hz.
///
/// Rates are integers, so the ratio is rational: every output falls on one of `to
/// / gcd` positions between input samples, whose filters are computed once. Each
/// output is then a plain dot product, which the compiler vectorises; this is what
/// keeps decoding a minute of audio well under a second.
pub(crate) fn convert(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to {
        return input.to_vec();
    }
    let step = from as f64 / to as f64;
    let count = (input.len() as f64 / step).floor() as usize;
    let g = gcd(from, to);
    let (phases, stride) = ((to / g) as usize, (from / g) as usize);
    if phases > MAX_PHASES {
        return resample_at(input, 0.0, step, count);
    }
    let scale = if step > 1.0 { 1.0 / step } else { 1.0 } * PASSBAND;
    let reach = (ZERO_CROSSINGS as f64 / scale).ceil() as usize;
    let taps = 2 * reach;
    // Filter for phase r: output centre at q + r / phases, taps at q - reach + 1 + t.
    let mut bank = vec![0.0f32; phases * taps];
    for (r, filter) in bank.chunks_exact_mut(taps).enumerate() {
        let frac = r as f64 / phases as f64;
        let weights: Vec<f64> =
            (0..taps).map(|t| kernel((t as f64 - (reach as f64 - 1.0) - frac) * scale)).collect();
        let sum: f64 = weights.iter().sum();
        for (f, w) in filter.iter_mut().zip(&weights) {
            *f = (w / sum) as f32;
        }
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let pos = i * stride;
        let (q, r) = (pos / phases, pos % phases);
        let lo = q as i64 - reach as i64 + 1;
        if lo >= 0 && lo as usize + taps <= input.len() {
            let lo = lo as usize;
            out.push(dot(&bank[r * taps..(r + 1) * taps], &input[lo..lo + taps]));
        } else {
            // The first and last few outputs, whose filter runs off the input.
            out.extend(resample_at(input, i as f64 * step, step, 1));
        }
    }
    out
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

/// Dot product in eight lanes, so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: f64, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin() as f32).collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level_across_rates() {
        let input = tone(3000.0, 44_100.0, 44_100);
        let out = convert(&input, 44_100, 16_000);
        let expect = tone(3000.0, 16_000.0, out.len());
        // Skip the edges, where the kernel runs off the input.
        let err: f32 = out[100..out.len() - 100]
            .iter()
            .zip(&expect[100..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn the_fast_rational_path_matches_the_general_one() {
        let input = tone(1234.5, 44_100.0, 20_000);
        let fast = convert(&input, 44_100, 16_000);
        let general = resample_at(&input, 0.0, 44_100.0 / 16_000.0, fast.len());
        let err = fast.iter().zip(&general).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 2e-3, "max difference {err}");
    }

    #[test]
    fn what_does_not_fit_under_the_new_nyquist_is_filtered_out() {
        let input = tone(12_000.0, 48_000.0, 48_000);
        let out = convert(&input, 48_000, 16_000);
        let peak = out[100..out.len() - 100].iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak < 0.01, "aliased peak {peak}");
    }
}
