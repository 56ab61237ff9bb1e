//! A simulated room for tests: what happens between a speaker and a microphone.
//!
//! In order: an echo (a delayed, weaker copy), the sender's clock running off,
//! the receiver's sample rate, silence around the message, white noise at a given
//! SNR, and clipping in the receiver. SNR is the signal's mean power over the
//! whole band of the receiver's rate, against white noise over that same band
//! (at 48 kHz the noise spreads over 24 kHz, of which the modem uses 4 to 5.5).

use super::resample::resample_at;
use super::scramble::Prng;

/// One channel condition.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    /// Signal-to-noise ratio in dB; `None` for no noise.
    pub snr_db: Option<f32>,
    /// Sender's clock relative to the receiver's (1.005 = 0.5% fast).
    pub clock: f64,
    /// Receiver's sample rate; `None` for the sender's.
    pub rate: Option<u32>,
    /// Echo delay (seconds) and gain.
    pub echo: Option<(f64, f32)>,
    /// Clip at this fraction of the received peak.
    pub clip: Option<f32>,
    /// Silence (seconds) before and after.
    pub padding: (f64, f64),
    pub seed: u32,
}

impl Default for Channel {
    fn default() -> Self {
        Channel { snr_db: None, clock: 1.0, rate: None, echo: None, clip: None, padding: (0.0, 0.0), seed: 1 }
    }
}

impl Channel {
    /// The room everything must survive: noise, 0.5% clock, 44.1 -> 48 kHz, echo, clipping.
    pub fn room(snr_db: f32, seed: u32) -> Channel {
        Channel {
            snr_db: Some(snr_db),
            clock: 1.005,
            rate: Some(48_000),
            echo: Some((0.004, 0.3)),
            clip: Some(0.7),
            padding: (1.3, 0.7),
            seed,
        }
    }

    /// Passes `x` (at `rate` Hz) through the channel; returns the samples and their rate.
    pub fn apply(&self, x: &[f32], rate: u32) -> (Vec<f32>, u32) {
        let mut y = x.to_vec();
        if let Some((delay, gain)) = self.echo {
            let d = (delay * rate as f64) as usize;
            y.resize(x.len() + d, 0.0);
            for (i, s) in x.iter().enumerate() {
                y[i + d] += gain * s;
            }
        }
        let out_rate = self.rate.unwrap_or(rate);
        let step = self.clock * rate as f64 / out_rate as f64;
        let count = (y.len() as f64 / step) as usize;
        let y = resample_at(&y, 0.0, step, count);
        let power = y.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / y.len().max(1) as f64;
        let lead = (self.padding.0 * out_rate as f64) as usize;
        let trail = (self.padding.1 * out_rate as f64) as usize;
        let mut out = vec![0.0f32; lead];
        out.extend_from_slice(&y);
        out.resize(out.len() + trail, 0.0);
        if let Some(snr) = self.snr_db {
            let sigma = (power / 10f64.powf(snr as f64 / 10.0)).sqrt() as f32;
            let mut rng = Prng::new(self.seed.wrapping_add(0x4E4F_4953));
            for s in out.iter_mut() {
                *s += sigma * gaussian(&mut rng);
            }
        }
        if let Some(level) = self.clip {
            let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs())) * level;
            out.iter_mut().for_each(|s| *s = s.clamp(-peak, peak));
        }
        (out, out_rate)
    }
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut Prng) -> f32 {
    let u1 = (rng.next_u32() as f32 + 1.0) / (u32::MAX as f32 + 2.0);
    let u2 = rng.next_u32() as f32 / u32::MAX as f32;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}
