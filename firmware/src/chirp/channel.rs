//! A simulated room for tests: what happens between a speaker and a microphone.
//!
//! In order: the room's reverberation (a synthetic impulse response), an echo (a
//! delayed, weaker copy), the sender's clock running off,
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
    /// Reverberation of a room.
    pub reverb: Option<Reverb>,
    /// Clip at this fraction of the received peak.
    pub clip: Option<f32>,
    /// Silence (seconds) before and after.
    pub padding: (f64, f64),
    pub seed: u32,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            snr_db: None,
            clock: 1.0,
            rate: None,
            echo: None,
            reverb: None,
            clip: None,
            padding: (0.0, 0.0),
            seed: 1,
        }
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
            reverb: None,
            clip: Some(0.7),
            padding: (1.3, 0.7),
            seed,
        }
    }

    /// The room, plus the reverberation of a living room (RT60 0.4 s) heard at
    /// `drr_db` direct-to-reverberant ratio: about +6 dB at 30 cm, 0 dB at 60 cm.
    pub fn reverberant(snr_db: f32, drr_db: f32, seed: u32) -> Channel {
        Channel { reverb: Some(Reverb { rt60: 0.4, drr_db }), ..Channel::room(snr_db, seed) }
    }

    /// Passes `x` (at `rate` Hz) through the channel; returns the samples and their rate.
    pub fn apply(&self, x: &[f32], rate: u32) -> (Vec<f32>, u32) {
        let reverberant;
        let x = match &self.reverb {
            Some(r) => {
                reverberant = convolve(x, &r.impulse_response(rate, self.seed));
                &reverberant[..]
            }
            None => x,
        };
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

/// A room's reverberation: an exponentially decaying diffuse tail after a few
/// early reflections off walls, furniture and the table.
#[derive(Clone, Debug)]
pub(crate) struct Reverb {
    /// Time (seconds) for the tail to decay by 60 dB.
    pub rt60: f64,
    /// Energy of the direct sound over that of everything after it (dB).
    pub drr_db: f32,
}

impl Reverb {
    /// The impulse response at `rate` Hz: 1.0 at time 0, then reflections and tail.
    pub fn impulse_response(&self, rate: u32, seed: u32) -> Vec<f32> {
        let mut rng = Prng::new(seed.wrapping_add(0x5245_5642));
        let len = (self.rt60 * rate as f64) as usize;
        let mut h = vec![0.0f32; len.max(1)];
        // Early reflections (2 to 25 ms), then a tail of decaying noise from 5 ms on.
        for (ms, gain) in [(2.5, 0.6), (6.0, 0.45), (11.0, 0.35), (17.0, 0.3), (24.0, 0.25)] {
            let at = (ms * 1e-3 * rate as f64) as usize;
            if at < len {
                h[at] += gain * if rng.next_u32() & 1 == 0 { 1.0 } else { -1.0 };
            }
        }
        let tail_from = (0.005 * rate as f64) as usize;
        let decay = 6.9 / (self.rt60 * rate as f64); // amplitude e-folding: 60 dB over rt60
        for (i, v) in h.iter_mut().enumerate().skip(tail_from) {
            *v += 0.1 * gaussian(&mut rng) * (-(decay * (i - tail_from) as f64)).exp() as f32;
        }
        // Scale all but the direct sound to the wanted ratio.
        let rest: f64 = h[1..].iter().map(|v| (*v as f64).powi(2)).sum();
        let want = 10f64.powf(-self.drr_db as f64 / 10.0);
        let scale = if rest > 0.0 { (want / rest).sqrt() as f32 } else { 0.0 };
        h[1..].iter_mut().for_each(|v| *v *= scale);
        h[0] = 1.0;
        h
    }
}

/// `x` convolved with `h` (by FFT: a room's response is thousands of taps long).
fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    use rustfft::num_complex::Complex32;
    let n = (x.len() + h.len()).next_power_of_two();
    let mut planner = rustfft::FftPlanner::<f32>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let spectrum = |v: &[f32]| {
        let mut b: Vec<Complex32> =
            (0..n).map(|i| Complex32::new(v.get(i).copied().unwrap_or(0.0), 0.0)).collect();
        fwd.process(&mut b);
        b
    };
    let (a, b) = (spectrum(x), spectrum(h));
    let mut y: Vec<Complex32> = a.iter().zip(&b).map(|(a, b)| a * b).collect();
    inv.process(&mut y);
    y.iter().take(x.len() + h.len() - 1).map(|v| v.re / n as f32).collect()
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut Prng) -> f32 {
    let u1 = (rng.next_u32() as f32 + 1.0) / (u32::MAX as f32 + 2.0);
    let u2 = rng.next_u32() as f32 / u32::MAX as f32;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}
