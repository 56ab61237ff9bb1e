//! Sound: play a buffer of samples, capture samples as a stream.
//!
//! Shaped like embedded-hal: tiny traits ([`Play`], [`Capture`]) over a shared
//! [`ErrorType`], and errors that generic code can match through [`Error::kind`].
//! Samples are mono `f32` in -1..1; each side says its sample rate, and converting
//! rates is the caller's business (the chirp modem resamples anyway).
//!
//! Backends:
//! - [`wav`]: files. [`wav::WavSink`] "plays" into a WAV file, [`wav::WavSource`]
//!   "captures" from one. Always built; the tests use it.
//! - `live` (feature `audio-alsa`): a sound card through cpal, the default one or
//!   one picked by name as [`devices`] lists it. Without
//!   the feature, [`live_output`], [`live_input`] and [`devices`] return
//!   [`AudioError::NotCompiled`], which names the feature and the WAV fallback.
//!
//! # Examples
//! ```
//! use fazt_hal::audio::{wav::{WavSink, WavSource}, Capture, Play};
//! let dir = std::env::temp_dir().join(format!("fazt-hal-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("tone.wav");
//! WavSink::new(&path).play(&[0.0, 0.5, -0.5, 0.25], 48_000).unwrap();
//! let mut source = WavSource::open(&path).unwrap();
//! assert_eq!(source.rate(), 48_000);
//! let mut buf = [0.0f32; 16];
//! assert_eq!(source.capture(&mut buf).unwrap(), 4);
//! assert!((buf[1] - 0.5).abs() < 1e-3);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fmt::Debug;
use std::path::PathBuf;

#[cfg(feature = "audio-alsa")]
mod live;
pub mod wav;

/// What kind of failure an audio error is, for code generic over backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Live audio is not in this build.
    NotCompiled,
    /// No such device, or no default device.
    NoDevice,
    /// The device or file does not support what was asked (rate, format).
    Unsupported,
    /// Reading or writing failed.
    Io,
    /// The data is malformed (e.g. a broken WAV file).
    Format,
    /// Anything else.
    Other,
}

/// An audio error, whatever the backend.
pub trait Error: Debug {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

/// The error type of an audio backend.
pub trait ErrorType {
    /// The backend's error.
    type Error: Error;
}

impl<T: ErrorType + ?Sized> ErrorType for &mut T {
    type Error = T::Error;
}

impl<T: ErrorType + ?Sized> ErrorType for Box<T> {
    type Error = T::Error;
}

/// Sound out.
///
/// # Note for implementers
/// `play` returns once the samples have been played (or written): a caller that
/// plays, then captures, must not hear its own tail.
pub trait Play: ErrorType {
    /// Plays mono `samples` (-1..1) at `rate` Hz.
    fn play(&mut self, samples: &[f32], rate: u32) -> Result<(), Self::Error>;
}

impl<T: Play + ?Sized> Play for &mut T {
    fn play(&mut self, samples: &[f32], rate: u32) -> Result<(), Self::Error> {
        T::play(self, samples, rate)
    }
}

impl<T: Play + ?Sized> Play for Box<T> {
    fn play(&mut self, samples: &[f32], rate: u32) -> Result<(), Self::Error> {
        T::play(self, samples, rate)
    }
}

/// Sound in, as a stream.
///
/// # Note for implementers
/// `capture` blocks until at least one sample is available, returns how many it
/// wrote into `buf`, and returns 0 only at the end of the stream (a file's end;
/// a live device never ends).
pub trait Capture: ErrorType {
    /// Sample rate of the captured stream, in Hz.
    fn rate(&self) -> u32;

    /// Fills `buf` with the next mono samples; 0 means the stream has ended.
    fn capture(&mut self, buf: &mut [f32]) -> Result<usize, Self::Error>;
}

impl<T: Capture + ?Sized> Capture for &mut T {
    fn rate(&self) -> u32 {
        T::rate(self)
    }
    fn capture(&mut self, buf: &mut [f32]) -> Result<usize, Self::Error> {
        T::capture(self, buf)
    }
}

impl<T: Capture + ?Sized> Capture for Box<T> {
    fn rate(&self) -> u32 {
        T::rate(self)
    }
    fn capture(&mut self, buf: &mut [f32]) -> Result<usize, Self::Error> {
        T::capture(self, buf)
    }
}

/// The audio errors of this crate's backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// Built without the `audio-alsa` feature.
    #[error("live audio is not compiled into this build (rebuild with `--features audio-alsa`, which needs libasound2-dev), or use WAV files: `fazt chirp encode` / `fazt chirp decode`")]
    NotCompiled,
    /// No default device of the wanted direction.
    #[error("no {0} audio device found (check that a sound card or PulseAudio is running, and `fazt hal audio list`)")]
    NoDevice(&'static str),
    /// No device of the wanted direction has this name.
    #[error("no {direction} audio device is named {name:?} (the {direction} devices are: {}; see `fazt hal audio list`)", if known.is_empty() { "none".to_string() } else { known.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ") })]
    UnknownDevice {
        /// The name asked for.
        name: String,
        /// "input" or "output".
        direction: &'static str,
        /// The names of the devices of that direction.
        known: Vec<String>,
    },
    /// The device refused the configuration.
    #[error("the audio device does not support {0}")]
    Unsupported(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A WAV file is malformed or unsupported.
    #[error(transparent)]
    Wav(#[from] wav::WavError),
    /// The live backend failed.
    #[error("audio device error: {0}")]
    Backend(String),
}

impl Error for AudioError {
    fn kind(&self) -> ErrorKind {
        match self {
            AudioError::NotCompiled => ErrorKind::NotCompiled,
            AudioError::NoDevice(_) | AudioError::UnknownDevice { .. } => ErrorKind::NoDevice,
            AudioError::Unsupported(_) => ErrorKind::Unsupported,
            AudioError::File { .. } => ErrorKind::Io,
            AudioError::Wav(e) => e.kind(),
            AudioError::Backend(_) => ErrorKind::Other,
        }
    }
}

/// A sound device, as listed by [`devices`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The backend's name for it.
    pub name: String,
    /// Whether it can capture.
    pub input: bool,
    /// Whether it can play.
    pub output: bool,
    /// Whether it is the default of a direction.
    pub default: bool,
}

/// Lists the live sound devices.
pub fn devices() -> Result<Vec<DeviceInfo>, AudioError> {
    imp::devices()
}

/// The output device named `device` (as [`devices`] lists it), or the default one.
pub fn live_output(device: Option<&str>) -> Result<Box<dyn Play<Error = AudioError>>, AudioError> {
    imp::output(device)
}

/// The input device named `device` (as [`devices`] lists it), or the default one,
/// capturing at its preferred rate.
pub fn live_input(device: Option<&str>) -> Result<Box<dyn Capture<Error = AudioError>>, AudioError> {
    imp::input(device)
}

#[cfg(feature = "audio-alsa")]
use live as imp;

/// Stand-in for builds without live audio: every call says so.
#[cfg(not(feature = "audio-alsa"))]
mod imp {
    use super::{AudioError, Capture, DeviceInfo, Play};

    pub fn devices() -> Result<Vec<DeviceInfo>, AudioError> {
        Err(AudioError::NotCompiled)
    }
    pub fn output(_device: Option<&str>) -> Result<Box<dyn Play<Error = AudioError>>, AudioError> {
        Err(AudioError::NotCompiled)
    }
    pub fn input(_device: Option<&str>) -> Result<Box<dyn Capture<Error = AudioError>>, AudioError> {
        Err(AudioError::NotCompiled)
    }
}
