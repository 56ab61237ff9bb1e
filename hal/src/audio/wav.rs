//! WAV files: a careful reader for untrusted bytes, a writer, and the file
//! backend of [`Play`] and [`Capture`].
//!
//! Reading is done here rather than with `hound`'s reader on purpose. The input is
//! hostile by assumption (a WAV posted on a chat), release builds abort on panic,
//! and recordings whose header was never finished (a recorder stopped with Ctrl-C
//! claims a data length of 0 or 4 GiB) are the common case, which `hound` rejects.
//! So the reader walks the chunks with checked arithmetic, never allocates from a
//! length the file claims (only from bytes actually present, within a cap), reads
//! what data is there, and accepts PCM 8/16/24/32-bit and 32/64-bit float, mono or
//! up to 8 channels (mixed down). Writing uses `hound`: 16-bit PCM mono.

use super::{AudioError, Capture, Error, ErrorKind, ErrorType, Play};
use std::path::{Path, PathBuf};

/// Largest WAV file read (256 MiB): more than ten minutes of 8-channel 32-bit audio
/// at 48 kHz is not a chirp recording.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Most channels accepted.
const MAX_CHANNELS: u16 = 8;
/// Sample rates accepted by the reader (Hz): wide, the consumer checks its own range.
const RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// What is wrong with a WAV file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not a RIFF/WAVE file at all.
    #[error("not a WAV file (expected a RIFF/WAVE header; convert it with e.g. `sox in.mp3 out.wav`)")]
    NotWav,
    /// A required chunk is missing or cut short.
    #[error("broken WAV file: {0} (re-export or re-record it)")]
    Broken(&'static str),
    /// A format this reader does not handle.
    #[error("unsupported WAV format: {0} (convert it with e.g. `sox in.wav -b 16 out.wav`)")]
    Unsupported(String),
    /// The sample rate is zero or absurd.
    #[error(
        "WAV sample rate {0} Hz is not plausible (the file is damaged, or re-export at 44100 or 48000 Hz)"
    )]
    Rate(u32),
    /// More samples than the caller accepts.
    #[error("WAV file holds {frames} samples, over the limit of {limit} (cut it into shorter parts)")]
    TooLong {
        /// Samples (per channel) present.
        frames: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// Writing failed.
    #[error("cannot write WAV: {0}")]
    Write(String),
}

impl Error for WavError {
    fn kind(&self) -> ErrorKind {
        match self {
            WavError::Unsupported(_) | WavError::Rate(_) => ErrorKind::Unsupported,
            WavError::Write(_) => ErrorKind::Io,
            _ => ErrorKind::Format,
        }
    }
}

/// Mono audio read from a WAV file.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// Samples in -1..1, channels mixed down.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub rate: u32,
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Int(u16),
    Float(u16),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Reads a WAV file's bytes into mono samples, refusing more than `max_frames`
/// samples per channel. Never panics, and allocates at most `max_frames` samples.
pub fn read(bytes: &[u8], max_frames: usize) -> Result<Audio, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12usize;
    let mut fmt: Option<(Format, u16, u32, usize)> = None;
    while let (Some(id), Some(size)) = (bytes.get(at..at + 4), u32_at(bytes, at + 4)) {
        let body = at + 8;
        // The claimed size may run past the end (unfinished header): clamp to what is there.
        let end = body.saturating_add(size as usize).min(bytes.len());
        let chunk = bytes.get(body..end).unwrap_or(&[]);
        match id {
            b"fmt " => fmt = Some(parse_fmt(chunk)?),
            b"data" => {
                let (format, channels, rate, align) =
                    fmt.ok_or(WavError::Broken("data before the fmt chunk"))?;
                // A header never finished claims 0 or ~4 GiB: take all that follows.
                let data =
                    if size == 0 || size == u32::MAX { &bytes[body.min(bytes.len())..] } else { chunk };
                return decode(data, format, channels, rate, align, max_frames);
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = match body.checked_add(size as usize).and_then(|e| e.checked_add(size as usize & 1)) {
            Some(next) if next > at => next,
            _ => break,
        };
    }
    Err(WavError::Broken(if fmt.is_none() { "no fmt chunk" } else { "no data chunk" }))
}

fn parse_fmt(chunk: &[u8]) -> Result<(Format, u16, u32, usize), WavError> {
    let short = WavError::Broken("fmt chunk too short");
    let tag = u16_at(chunk, 0).ok_or(short.clone())?;
    let channels = u16_at(chunk, 2).ok_or(short.clone())?;
    let rate = u32_at(chunk, 4).ok_or(short.clone())?;
    let align = u16_at(chunk, 12).ok_or(short.clone())?;
    let bits = u16_at(chunk, 14).ok_or(short)?;
    // WAVE_FORMAT_EXTENSIBLE keeps the real format in the first two bytes of its GUID.
    let tag = if tag == 0xFFFE {
        u16_at(chunk, 24).ok_or(WavError::Broken("extensible fmt chunk too short"))?
    } else {
        tag
    };
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(WavError::Unsupported(format!("{channels} channels (1 to {MAX_CHANNELS} are read)")));
    }
    if !RATES.contains(&rate) {
        return Err(WavError::Rate(rate));
    }
    let format = match (tag, bits) {
        (1, 8 | 16 | 24 | 32) => Format::Int(bits),
        (3, 32 | 64) => Format::Float(bits),
        (1 | 3, _) => return Err(WavError::Unsupported(format!("{bits}-bit samples"))),
        _ => return Err(WavError::Unsupported(format!("encoding {tag:#06x} (only PCM and float are read)"))),
    };
    let width = bits as usize / 8;
    if align as usize != width * channels as usize {
        return Err(WavError::Broken("block size does not match channels and sample size"));
    }
    Ok((format, channels, rate, align as usize))
}

fn decode(
    data: &[u8],
    format: Format,
    channels: u16,
    rate: u32,
    align: usize,
    max_frames: usize,
) -> Result<Audio, WavError> {
    let frames = data.len() / align;
    if frames > max_frames {
        return Err(WavError::TooLong { frames, limit: max_frames });
    }
    let width = align / channels as usize;
    let scale = 1.0 / channels as f32;
    let sample = |b: &[u8]| -> f32 {
        match (format, b) {
            (Format::Int(8), [a]) => (*a as f32 - 128.0) / 128.0,
            (Format::Int(16), [a, b]) => i16::from_le_bytes([*a, *b]) as f32 / 32768.0,
            (Format::Int(24), [a, b, c]) => (i32::from_le_bytes([0, *a, *b, *c]) >> 8) as f32 / 8_388_608.0,
            (Format::Int(32), [a, b, c, d]) => i32::from_le_bytes([*a, *b, *c, *d]) as f32 / 2_147_483_648.0,
            (Format::Float(32), [a, b, c, d]) => sane(f32::from_le_bytes([*a, *b, *c, *d])),
            (Format::Float(64), b) => b.try_into().map(|a| sane(f64::from_le_bytes(a) as f32)).unwrap_or(0.0),
            _ => 0.0,
        }
    };
    let samples = data
        .chunks_exact(align)
        .map(|frame| frame.chunks_exact(width).map(sample).sum::<f32>() * scale)
        .collect();
    Ok(Audio { samples, rate })
}

/// Float samples from an untrusted file: NaN and infinities become silence, the
/// rest is clamped (a float WAV may legally exceed 1.0).
fn sane(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Writes mono samples (-1..1, clamped) at `rate` Hz as a 16-bit PCM WAV file's bytes.
pub fn write(samples: &[f32], rate: u32) -> Result<Vec<u8>, WavError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let err = |e: hound::Error| WavError::Write(e.to_string());
    let mut w = hound::WavWriter::new(&mut out, spec).map_err(err)?;
    for &s in samples {
        let v = if s.is_finite() { (s.clamp(-1.0, 1.0) * 32767.0).round() as i16 } else { 0 };
        w.write_sample(v).map_err(err)?;
    }
    w.finalize().map_err(err)?;
    Ok(out.into_inner())
}

/// Reads a WAV file from disk, refusing files over [`MAX_FILE_BYTES`] before reading them.
pub fn read_file(path: &Path, max_frames: usize) -> Result<Audio, AudioError> {
    let file_err = |source| AudioError::File { path: path.to_path_buf(), source };
    let len = std::fs::metadata(path).map_err(file_err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(WavError::TooLong { frames: (len / 2) as usize, limit: max_frames }.into());
    }
    let bytes = std::fs::read(path).map_err(file_err)?;
    Ok(read(&bytes, max_frames)?)
}

/// "Plays" into a WAV file: each `play` writes the file anew.
#[derive(Debug, Clone)]
pub struct WavSink {
    path: PathBuf,
}

impl WavSink {
    /// A sink writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> WavSink {
        WavSink { path: path.into() }
    }
}

impl ErrorType for WavSink {
    type Error = AudioError;
}

impl Play for WavSink {
    fn play(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        let bytes = write(samples, rate)?;
        std::fs::write(&self.path, bytes)
            .map_err(|source| AudioError::File { path: self.path.clone(), source })
    }
}

/// "Captures" from a WAV file, as a stream that ends with the file.
#[derive(Debug, Clone)]
pub struct WavSource {
    audio: Audio,
    at: usize,
}

impl WavSource {
    /// Most samples a source reads: ten minutes at 48 kHz.
    pub const MAX_FRAMES: usize = 48_000 * 600;

    /// Opens and reads `path`.
    pub fn open(path: &Path) -> Result<WavSource, AudioError> {
        Ok(WavSource { audio: read_file(path, Self::MAX_FRAMES)?, at: 0 })
    }

    /// A source over samples already in memory.
    pub fn from_audio(audio: Audio) -> WavSource {
        WavSource { audio, at: 0 }
    }
}

impl ErrorType for WavSource {
    type Error = AudioError;
}

impl Capture for WavSource {
    fn rate(&self) -> u32 {
        self.audio.rate
    }

    fn capture(&mut self, buf: &mut [f32]) -> Result<usize, AudioError> {
        let rest = &self.audio.samples[self.at.min(self.audio.samples.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_spec(bits: u16, format: hound::SampleFormat, channels: u16) -> Vec<u8> {
        let spec =
            hound::WavSpec { channels, sample_rate: 44_100, bits_per_sample: bits, sample_format: format };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for i in 0..100 {
            let x = (i as f32 / 50.0) - 1.0;
            for _ in 0..channels {
                match (format, bits) {
                    (hound::SampleFormat::Float, _) => w.write_sample(x * 0.5).unwrap(),
                    (_, 8) => w.write_sample((x * 0.5 * 127.0) as i8).unwrap(),
                    (_, 16) => w.write_sample((x * 0.5 * 32767.0) as i16).unwrap(),
                    (_, 24) => w.write_sample((x * 0.5 * 8_388_607.0) as i32).unwrap(),
                    _ => w.write_sample((x * 0.5 * 2_147_483_647.0) as i32).unwrap(),
                }
            }
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn every_common_format_reads_the_same_signal() {
        let cases = [
            (8, hound::SampleFormat::Int, 1),
            (16, hound::SampleFormat::Int, 2),
            (24, hound::SampleFormat::Int, 1),
            (32, hound::SampleFormat::Int, 1),
            (32, hound::SampleFormat::Float, 2),
        ];
        for (bits, format, ch) in cases {
            let a = read(&with_spec(bits, format, ch), 1000).unwrap();
            assert_eq!((a.rate, a.samples.len()), (44_100, 100), "{bits} {format:?}");
            for (i, s) in a.samples.iter().enumerate() {
                let want = ((i as f32 / 50.0) - 1.0) * 0.5;
                assert!((s - want).abs() < 0.02, "{bits}-bit sample {i}: {s} vs {want}");
            }
        }
    }

    #[test]
    fn write_then_read_round_trips() {
        let samples: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.01).sin() * 0.8).collect();
        let a = read(&write(&samples, 48_000).unwrap(), 10_000).unwrap();
        assert_eq!(a.rate, 48_000);
        assert!(a.samples.iter().zip(&samples).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    #[test]
    fn an_unfinished_header_still_reads_what_is_there() {
        let mut b = with_spec(16, hound::SampleFormat::Int, 1);
        let data = b.windows(4).position(|w| w == b"data").unwrap();
        b[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read(&b, 1000).unwrap().samples.len(), 100);
        b[data + 4..data + 8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(read(&b, 1000).unwrap().samples.len(), 100);
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        let good = with_spec(16, hound::SampleFormat::Int, 1);
        let fmt = good.windows(4).position(|w| w == b"fmt ").unwrap() + 8;
        let mut zero_rate = good.clone();
        zero_rate[fmt + 4..fmt + 8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(read(&zero_rate, 1000), Err(WavError::Rate(0)));
        let mut no_channels = good.clone();
        no_channels[fmt + 2..fmt + 4].copy_from_slice(&0u16.to_le_bytes());
        assert!(matches!(read(&no_channels, 1000), Err(WavError::Unsupported(_))));
        let mut bad_align = good.clone();
        bad_align[fmt + 12..fmt + 14].copy_from_slice(&0u16.to_le_bytes());
        assert!(matches!(read(&bad_align, 1000), Err(WavError::Broken(_))));
        let mut odd_bits = good.clone();
        odd_bits[fmt + 14..fmt + 16].copy_from_slice(&12u16.to_le_bytes());
        assert!(read(&odd_bits, 1000).is_err());
        assert_eq!(read(b"RIFF", 10), Err(WavError::NotWav));
        assert!(matches!(read(&good, 10), Err(WavError::TooLong { .. })));
        // Every truncation and every single-byte corruption of the header.
        for cut in 0..good.len() {
            let _ = read(&good[..cut], 1000);
        }
        for i in 0..60 {
            for v in [0u8, 1, 0x7F, 0x80, 0xFF] {
                let mut b = good.clone();
                b[i] = v;
                let _ = read(&b, 1000);
            }
        }
    }
}
