//! Live audio on the sound devices, through cpal (ALSA on Linux).
//!
//! cpal calls back on its own audio thread; samples cross to and from it through
//! a mutex-guarded buffer (playing) or a bounded channel (capturing), so a slow
//! consumer drops audio instead of growing memory.

use super::{AudioError, Capture, DeviceInfo, ErrorType, Play};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Blocks of captured audio buffered between cpal's thread and the reader (a few
/// seconds at usual block sizes); more means the reader stalled, and is dropped.
const CAPTURE_QUEUE: usize = 256;
/// How long a capture waits for the device before calling it dead.
const CAPTURE_STALL: Duration = Duration::from_secs(5);
/// Time left for the device's own buffer to drain after the last sample is handed
/// over, so the tail of a message is not cut.
const DRAIN: Duration = Duration::from_millis(300);

fn backend(e: impl std::fmt::Display) -> AudioError {
    AudioError::Backend(e.to_string())
}

pub fn devices() -> Result<Vec<DeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let default_in = host.default_input_device().and_then(|d| d.name().ok());
    let default_out = host.default_output_device().and_then(|d| d.name().ok());
    let mut out = Vec::new();
    for d in host.devices().map_err(backend)? {
        let name = d.name().unwrap_or_else(|_| "(unnamed)".into());
        let input = d.supported_input_configs().map(|mut c| c.next().is_some()).unwrap_or(false);
        let output = d.supported_output_configs().map(|mut c| c.next().is_some()).unwrap_or(false);
        let default = Some(&name) == default_in.as_ref() || Some(&name) == default_out.as_ref();
        out.push(DeviceInfo { name, input, output, default });
    }
    Ok(out)
}

/// The device of a direction named `name` (exactly, as `devices` lists it), or the
/// default one; an unknown name is an error that lists the names there are.
fn pick(name: Option<&str>, input: bool) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let direction = if input { "input" } else { "output" };
    let Some(name) = name else {
        let default = if input { host.default_input_device() } else { host.default_output_device() };
        return default.ok_or(AudioError::NoDevice(direction));
    };
    let all: Vec<cpal::Device> = if input {
        host.input_devices().map_err(backend)?.collect()
    } else {
        host.output_devices().map_err(backend)?.collect()
    };
    let mut known = Vec::new();
    for d in all {
        let Ok(n) = d.name() else { continue };
        if n == name {
            return Ok(d);
        }
        known.push(n);
    }
    Err(AudioError::UnknownDevice { name: name.to_string(), direction, known })
}

pub fn output(name: Option<&str>) -> Result<Box<dyn Play<Error = AudioError>>, AudioError> {
    let device = pick(name, false)?;
    Ok(Box::new(LiveOutput { device }))
}

pub fn input(name: Option<&str>) -> Result<Box<dyn Capture<Error = AudioError>>, AudioError> {
    let device = pick(name, true)?;
    let config = device.default_input_config().map_err(backend)?;
    let rate = config.sample_rate().0;
    let channels = config.channels() as usize;
    let (tx, rx) = mpsc::sync_channel(CAPTURE_QUEUE);
    let stream = match config.sample_format() {
        SampleFormat::F32 => capture_stream::<f32>(&device, &config.into(), channels, tx)?,
        SampleFormat::I16 => capture_stream::<i16>(&device, &config.into(), channels, tx)?,
        SampleFormat::I32 => capture_stream::<i32>(&device, &config.into(), channels, tx)?,
        SampleFormat::U16 => capture_stream::<u16>(&device, &config.into(), channels, tx)?,
        other => return Err(AudioError::Unsupported(format!("capture format {other:?}"))),
    };
    stream.play().map_err(backend)?;
    Ok(Box::new(LiveInput { _stream: stream, rx, rate, pending: VecDeque::new() }))
}

fn capture_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    tx: SyncSender<Vec<f32>>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = channels.max(1);
    device
        .build_input_stream(
            config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                let mono: Vec<f32> = data
                    .chunks(channels)
                    .map(|f| f.iter().map(|s| f32::from_sample_(*s)).sum::<f32>() / channels as f32)
                    .collect();
                // Full queue: the reader stalled. Dropping keeps memory bounded.
                let _ = tx.try_send(mono);
            },
            |_| {},
            None,
        )
        .map_err(backend)
}

/// An output device.
struct LiveOutput {
    device: cpal::Device,
}

impl ErrorType for LiveOutput {
    type Error = AudioError;
}

impl Play for LiveOutput {
    fn play(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        let supported = self
            .device
            .supported_output_configs()
            .map_err(backend)?
            .filter(|c| c.min_sample_rate().0 <= rate && rate <= c.max_sample_rate().0)
            .filter(|c| matches!(c.sample_format(), SampleFormat::F32 | SampleFormat::I16))
            .max_by_key(|c| c.sample_format() == SampleFormat::F32)
            .ok_or_else(|| AudioError::Unsupported(format!("playing at {rate} Hz")))?
            .with_sample_rate(cpal::SampleRate(rate));
        let channels = supported.channels() as usize;
        let shared = Arc::new(Mutex::new((samples.to_vec(), 0usize)));
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let stream = match supported.sample_format() {
            SampleFormat::F32 => {
                play_stream::<f32>(&self.device, &supported.into(), channels, shared, done_tx)?
            }
            _ => play_stream::<i16>(&self.device, &supported.into(), channels, shared, done_tx)?,
        };
        stream.play().map_err(backend)?;
        let length = Duration::from_secs_f64(samples.len() as f64 / rate as f64);
        match done_rx.recv_timeout(length + Duration::from_secs(3)) {
            Ok(()) => {
                std::thread::sleep(DRAIN);
                Ok(())
            }
            Err(_) => Err(AudioError::Backend("the output device stopped taking samples".into())),
        }
    }
}

fn play_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    shared: Arc<Mutex<(Vec<f32>, usize)>>,
    done: SyncSender<()>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = channels.max(1);
    device
        .build_output_stream(
            config,
            move |out: &mut [T], _: &cpal::OutputCallbackInfo| {
                let Ok(mut guard) = shared.lock() else { return };
                let (samples, at) = &mut *guard;
                for frame in out.chunks_mut(channels) {
                    let s = samples.get(*at).copied().unwrap_or(0.0);
                    *at += 1;
                    frame.iter_mut().for_each(|o| *o = T::from_sample_(s));
                }
                if *at >= samples.len() {
                    let _ = done.try_send(());
                }
            },
            |_| {},
            None,
        )
        .map_err(backend)
}

/// An input device, as a stream.
struct LiveInput {
    _stream: cpal::Stream,
    rx: Receiver<Vec<f32>>,
    rate: u32,
    pending: VecDeque<f32>,
}

impl ErrorType for LiveInput {
    type Error = AudioError;
}

impl Capture for LiveInput {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn capture(&mut self, buf: &mut [f32]) -> Result<usize, AudioError> {
        if self.pending.is_empty() {
            match self.rx.recv_timeout(CAPTURE_STALL) {
                Ok(block) => self.pending.extend(block),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(AudioError::Backend("the input device sent nothing for 5 s".into()))
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        while let Ok(block) = self.rx.try_recv() {
            self.pending.extend(block);
        }
        let n = buf.len().min(self.pending.len());
        for (b, s) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *b = s;
        }
        Ok(n)
    }
}
