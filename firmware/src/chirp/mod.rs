//! Chirp: small data over sound, from a speaker to a microphone, with no network.
//!
//! A pure library: bytes in, samples out ([`encode`]); samples in, every message
//! found out ([`decode`], or [`Listener`] for a live stream). Playing and recording
//! belong to the HAL (`fazt_hal::audio`), files to [`wav`], commands to `cli::chirp`.
//!
//! ```
//! use fazt::chirp::{decode, encode, Mode};
//! let samples = encode(b"wifi: hunter2", Mode::Standard, 48_000).unwrap();
//! let found = decode(&samples, 48_000).unwrap();
//! assert_eq!(found[0].result.as_deref(), Ok(&b"wifi: hunter2"[..]));
//! ```
//!
//! # Layout
//! - [`mode`]: the three modes (robust, standard, fast) and their numbers.
//! - `preamble`: the sweeps that open a frame; finding them and measuring the clock.
//! - `frame`: header, order of the parts, bytes to and from the body.
//! - `fec`: Reed-Solomon over GF(2^8) with soft-decision erasures.
//! - `scramble`: whitening and interleaving.
//! - `modulate` / `demodulate`: bytes to symbols and back (MFSK, DQPSK, D8PSK).
//! - `receive`: the decoding pipeline over a recording.
//! - `resample`: rate conversion and clock correction.
//! - [`listen`]: incremental decoding of a live stream.
//! - [`wav`]: WAV bytes to samples and back.
//!
//! # Implementation
//! No I/O, no threads, no global state but a lazily built filter table. Memory is
//! bounded by the input: decoding holds about five copies of the recording at 16 kHz
//! plus the recording itself, and refuses recordings over [`MAX_SAMPLES`].

mod demodulate;
mod fec;
mod frame;
pub mod listen;
pub mod mode;
mod modulate;
mod preamble;
mod receive;
mod resample;
mod scramble;
pub mod wav;

#[cfg(test)]
mod channel;
#[cfg(test)]
mod tests;

pub use frame::MAX_PAYLOAD;
pub use listen::Listener;
pub use mode::{Mode, UnknownMode, INTERNAL_RATE};

/// Lowest sample rate accepted: the modes use up to 6.5 kHz, which needs 16 kHz.
pub const MIN_RATE: u32 = 16_000;
/// Highest sample rate accepted.
pub const MAX_RATE: u32 = 192_000;
/// Most samples [`decode`] takes at once: ten minutes at 48 kHz (about 115 MB as
/// f32). Longer recordings must be cut; a live [`Listener`] never gets near it.
pub const MAX_SAMPLES: usize = 48_000 * 600;
/// Silence added before and after a frame by [`encode`] (20 ms), so that a player
/// that starts a little late or a recorder that stops a little early does not cut
/// the frame. `fazt chirp send` adds more around it for devices that wake slowly.
const PADDING_SECONDS: f64 = 0.02;

/// Errors of the chirp library; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ChirpError {
    /// Nothing to send.
    #[error("nothing to send: the payload is empty")]
    Empty,
    /// The payload is over [`MAX_PAYLOAD`].
    #[error(
        "payload is {len} bytes but chirp carries at most {MAX_PAYLOAD} (compress it or send it in parts)"
    )]
    TooLarge {
        /// Length of the refused payload.
        len: usize,
    },
    /// The sample rate is outside [`MIN_RATE`]..=[`MAX_RATE`].
    #[error("sample rate {rate} Hz is not supported (use {MIN_RATE} to {MAX_RATE} Hz, e.g. 44100 or 48000)")]
    Rate {
        /// The refused rate.
        rate: u32,
    },
    /// The recording is over [`MAX_SAMPLES`].
    #[error("recording has {samples} samples, more than the {MAX_SAMPLES} chirp reads at once (cut it into parts of under 10 minutes)")]
    TooLong {
        /// Samples in the refused recording.
        samples: usize,
    },
    /// The WAV bytes could not be read or written.
    #[error(transparent)]
    Wav(#[from] wav::WavError),
}

/// Why a message that was heard could not be delivered. Its bytes are never
/// returned: a damaged message is reported, not guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The preamble was found but the header did not decode.
    #[error("a chirp was heard but its header is unreadable (too much noise or echo: move the devices closer, turn the volume up, or send with --mode robust)")]
    Header,
    /// Error correction could not repair the payload.
    #[error("a {len}-byte message was heard but is too damaged to repair (move the devices closer, turn the volume up, or send with --mode robust)")]
    Payload {
        /// Payload length from the header.
        len: usize,
    },
    /// The payload was "repaired" into bytes that fail the CRC-32: a miscorrection.
    #[error("a {len}-byte message was heard but fails its checksum after repair (send it again, or with --mode robust)")]
    Checksum {
        /// Payload length from the header.
        len: usize,
    },
    /// The recording stops before the message ends.
    #[error("the recording stops before the message ends (record for longer)")]
    Truncated,
}

/// One message found in a recording.
#[derive(Debug, Clone)]
pub struct Received {
    /// The mode, as told by the preamble.
    pub mode: Mode,
    /// Where the message starts in the recording, in seconds.
    pub start: f64,
    /// How far the sender's clock is off from the receiver's (0.001 = 0.1% fast).
    pub clock_offset: f64,
    /// Strength of the preamble (normalised correlation, 0.3..1; 1 is clean).
    pub signal: f32,
    /// Bytes that error correction repaired.
    pub corrected: usize,
    /// The payload, or why it could not be delivered.
    pub result: Result<Vec<u8>, Damage>,
}

fn check_rate(rate: u32) -> Result<(), ChirpError> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(ChirpError::Rate { rate })
    }
}

/// Turns `payload` (1 byte to [`MAX_PAYLOAD`]) into mono samples in -1..1 at `rate` Hz.
pub fn encode(payload: &[u8], mode: Mode, rate: u32) -> Result<Vec<f32>, ChirpError> {
    if payload.is_empty() {
        return Err(ChirpError::Empty);
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(ChirpError::TooLarge { len: payload.len() });
    }
    check_rate(rate)?;
    let internal = modulate::frame(payload, mode);
    let mut out = resample::convert(&internal, INTERNAL_RATE, rate);
    let pad = (PADDING_SECONDS * rate as f64) as usize;
    let mut padded = vec![0.0; pad];
    padded.append(&mut out);
    padded.resize(padded.len() + pad, 0.0);
    for s in padded.iter_mut() {
        *s = s.clamp(-1.0, 1.0);
    }
    Ok(padded)
}

/// Finds every message in a mono recording at `rate` Hz, in order of time,
/// damaged ones included (as [`Damage`]). An empty list means no chirp was heard.
pub fn decode(samples: &[f32], rate: u32) -> Result<Vec<Received>, ChirpError> {
    check_rate(rate)?;
    if samples.len() > MAX_SAMPLES {
        return Err(ChirpError::TooLong { samples: samples.len() });
    }
    Ok(receive::scan(&sanitize(samples), rate).found)
}

/// The samples with anything not finite (a broken float source) made silent, so
/// that no NaN reaches the correlations; borrowed when all is well.
pub(crate) fn sanitize(samples: &[f32]) -> std::borrow::Cow<'_, [f32]> {
    if samples.iter().all(|s| s.is_finite()) {
        std::borrow::Cow::Borrowed(samples)
    } else {
        samples.iter().map(|&s| if s.is_finite() { s } else { 0.0 }).collect()
    }
}

/// Seconds of sound [`encode`] makes for a payload of `len` bytes in `mode`.
pub fn airtime(len: usize, mode: Mode) -> f64 {
    let frame = frame::FrameLayout::new(mode, len).total_len();
    frame as f64 / INTERNAL_RATE as f64 + 2.0 * PADDING_SECONDS
}
