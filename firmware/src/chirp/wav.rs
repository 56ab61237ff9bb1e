//! WAV bytes to samples and back, for files that carry chirps.
//!
//! The careful reader itself lives in the HAL (`fazt_hal::audio::wav`), shared with
//! the WAV-file audio backend; this module fixes chirp's limits and mixes its
//! errors into [`ChirpError`](super::ChirpError).

pub use fazt_hal::audio::wav::{Audio, WavError};

use super::{ChirpError, MAX_SAMPLES};

/// Reads a WAV file's bytes (any common PCM or float format, mixed to mono).
/// Refuses more than [`MAX_SAMPLES`] samples without allocating them.
pub fn from_wav(bytes: &[u8]) -> Result<Audio, ChirpError> {
    Ok(fazt_hal::audio::wav::read(bytes, MAX_SAMPLES)?)
}

/// Writes samples as a 16-bit mono WAV file's bytes.
pub fn to_wav(samples: &[f32], rate: u32) -> Result<Vec<u8>, ChirpError> {
    Ok(fazt_hal::audio::wav::write(samples, rate)?)
}

/// Encodes `payload` straight to WAV bytes at `rate` Hz.
pub fn encode_wav(payload: &[u8], mode: super::Mode, rate: u32) -> Result<Vec<u8>, ChirpError> {
    to_wav(&super::encode(payload, mode, rate)?, rate)
}

/// Decodes every message in WAV bytes.
pub fn decode_wav(bytes: &[u8]) -> Result<Vec<super::Received>, ChirpError> {
    let audio = from_wav(bytes)?;
    super::decode(&audio.samples, audio.rate)
}
