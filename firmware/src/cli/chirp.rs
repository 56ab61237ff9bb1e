//! `fazt chirp`: send and receive small data over sound.
//!
//! A thin layer: payloads come from arguments, files or stdin; sound goes to WAV
//! files (`encode`, `decode`) or through the HAL's audio devices (`send`,
//! `listen`). All the signal work is in [`crate::chirp`].
//!
//! Exit codes: 0 when every message heard was delivered, 1 when no message was
//! heard ([`NothingHeard`]), 2 on any error, including a damaged message.

use crate::chirp::{self, Damage, Listener, Mode, Received, MAX_PAYLOAD};
use anyhow::{bail, Context};
use fazt_hal::audio::{self, wav::WavSink, wav::WavSource, Capture, Play};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest `listen --timeout` (the spec's limit): a listener is a deliberate act.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Silence played before a message: sound devices often swallow the first tenth of
/// a second while they wake up.
const SEND_LEAD_SECONDS: f64 = 0.3;

/// Arguments of `fazt chirp`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Send and receive small data over sound (speaker to microphone, no network)",
    after_help = "Modes (payload bytes per second, 32 B to 4 KB messages): robust 31-57 (noisy rooms, distance),\nstandard 121-574 (default), fast 147-1131 (quiet desk). The receiver detects the mode by itself.\nExit codes: 0 all messages delivered, 1 nothing heard, 2 error or damaged message."
)]
pub struct ChirpArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Encode data into a WAV file (no sound card needed).
    Encode {
        /// File to encode, or - for standard input.
        #[arg(required_unless_present = "text", conflicts_with = "text")]
        input: Option<String>,
        /// Encode this text instead of a file.
        #[arg(long)]
        text: Option<String>,
        /// WAV file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// robust, standard or fast.
        #[arg(long, default_value = "standard")]
        mode: Mode,
        /// Sample rate of the WAV file (Hz).
        #[arg(long, default_value_t = 48_000)]
        rate: u32,
    },
    /// Decode every message in a WAV file.
    Decode {
        /// WAV file to read (PCM 8/16/24/32-bit or float, any channels).
        input: PathBuf,
        /// Write the payload bytes here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Play data through the default (or a named) output device.
    Send {
        /// Text to send (else --file, else standard input).
        #[arg(conflicts_with = "file")]
        text: Option<String>,
        /// File to send.
        #[arg(long)]
        file: Option<PathBuf>,
        /// robust, standard or fast.
        #[arg(long, default_value = "standard")]
        mode: Mode,
        /// Write the sound to this WAV file instead of playing it.
        #[arg(long, value_name = "FILE", conflicts_with = "device")]
        wav: Option<PathBuf>,
        /// Play on this output device (a name from `fazt hal audio list`).
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
    },
    /// Wait on the default (or a named) input device and print the messages heard.
    Listen {
        /// Stop after this many messages.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Give up after this long (e.g. 30s, 2m; at most 5m).
        #[arg(long, default_value = "30s", value_parser = parse_timeout)]
        timeout: Duration,
        /// Write the payload bytes here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Listen to this WAV file instead of the microphone, as if it were live.
        #[arg(long, value_name = "FILE", conflicts_with = "device")]
        wav: Option<PathBuf>,
        /// Record from this input device (a name from `fazt hal audio list`).
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
    },
}

/// No message was heard (exit code 1, not an error of the program).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NothingHeard(String);

/// Runs `fazt chirp`.
pub fn run(args: ChirpArgs) -> anyhow::Result<()> {
    match args.command {
        Command::Encode { input, text, output, mode, rate } => {
            let payload = match (text, input) {
                (Some(t), _) => t.into_bytes(),
                (None, Some(path)) => read_input(&path)?,
                (None, None) => {
                    bail!("nothing to encode (give a file, - for standard input, or --text)")
                }
            };
            let bytes = chirp::wav::encode_wav(&payload, mode, rate)?;
            std::fs::write(&output, bytes).with_context(|| format!("cannot write {}", output.display()))?;
            eprintln!(
                "chirp: {} bytes in {mode} mode, {:.2} s of sound, written to {}",
                payload.len(),
                chirp::airtime(payload.len(), mode),
                output.display()
            );
            Ok(())
        }
        Command::Decode { input, output } => {
            let audio = audio::wav::read_file(&input, chirp::MAX_SAMPLES)?;
            let found = chirp::decode(&audio.samples, audio.rate)?;
            if found.is_empty() {
                return Err(NothingHeard(format!(
                    "no chirp found in {} (was it recorded loud enough, and at 16 kHz or more?)",
                    input.display()
                ))
                .into());
            }
            deliver(&found, output.as_deref())
        }
        Command::Send { text, file, mode, wav, device } => {
            let payload = match (text, file) {
                (Some(t), _) => t.into_bytes(),
                (None, Some(path)) => read_input(&path.to_string_lossy())?,
                (None, None) => read_input("-")?,
            };
            let rate = 48_000;
            let mut samples = vec![0.0; (SEND_LEAD_SECONDS * rate as f64) as usize];
            samples.extend(chirp::encode(&payload, mode, rate)?);
            match wav {
                Some(path) => WavSink::new(path).play(&samples, rate)?,
                None => audio::live_output(device.as_deref())?.play(&samples, rate)?,
            }
            eprintln!("chirp: sent {} bytes in {mode} mode", payload.len());
            Ok(())
        }
        Command::Listen { count, timeout, output, wav, device } => {
            let found = match wav {
                Some(path) => listen(&mut WavSource::open(&path)?, count, timeout)?,
                None => listen(&mut audio::live_input(device.as_deref())?, count, timeout)?,
            };
            if found.is_empty() {
                return Err(NothingHeard(format!(
                    "no chirp heard within {} s (turn the sender's volume up, or move closer)",
                    timeout.as_secs_f64()
                ))
                .into());
            }
            deliver(&found, output.as_deref())
        }
    }
}

/// Captures until `count` messages (delivered or damaged) were heard, the
/// timeout passed, or the stream ended.
fn listen<C: Capture>(source: &mut C, count: usize, timeout: Duration) -> anyhow::Result<Vec<Received>>
where
    C::Error: std::error::Error + Send + Sync + 'static,
{
    let rate = source.rate();
    let mut listener = Listener::new(rate)?;
    // Time is counted in samples, so a WAV source behaves exactly like a live one.
    let limit = (timeout.as_secs_f64() * rate as f64) as u64;
    let mut heard = 0u64;
    let mut buf = vec![0.0f32; (rate / 10) as usize];
    let mut found = Vec::new();
    while found.len() < count && heard < limit {
        let n = source.capture(&mut buf)?;
        if n == 0 {
            found.extend(listener.finish());
            break;
        }
        heard += n as u64;
        found.extend(listener.push(&buf[..n]));
    }
    found.truncate(count);
    Ok(found)
}

/// Writes the delivered payloads (to `output` or stdout), reports each message on
/// stderr, and fails if any was damaged.
fn deliver(found: &[Received], output: Option<&Path>) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    let mut damaged: Vec<(usize, &Damage)> = Vec::new();
    for (i, r) in found.iter().enumerate() {
        match &r.result {
            Ok(data) => {
                eprintln!(
                    "chirp: message {} at {:.2} s: {} bytes, {} mode, {} repaired, sender clock {:+.2}%",
                    i + 1,
                    r.start,
                    data.len(),
                    r.mode,
                    r.corrected,
                    r.clock_offset * 100.0
                );
                bytes.extend_from_slice(data);
                let stdout_tty = output.is_none() && std::io::stdout().is_terminal();
                if stdout_tty && !data.ends_with(b"\n") {
                    bytes.push(b'\n');
                }
            }
            Err(d) => {
                eprintln!("chirp: message {} at {:.2} s ({} mode): {d}", i + 1, r.start, r.mode);
                damaged.push((i + 1, d));
            }
        }
    }
    match output {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    if let Some((i, d)) = damaged.first() {
        bail!("{} of {} messages could not be read (message {i}: {d})", damaged.len(), found.len());
    }
    Ok(())
}

/// Reads a payload from a file or, for `-`, standard input; at most one byte over
/// the limit, so an endless input is refused without being swallowed.
fn read_input(path: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    let limit = MAX_PAYLOAD as u64 + 1;
    if path == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut data).context("cannot read standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut data))
            .with_context(|| format!("cannot read {path}"))?;
    }
    if data.len() > MAX_PAYLOAD {
        bail!("input is over {MAX_PAYLOAD} bytes, the most chirp carries (compress it or send it in parts)");
    }
    Ok(data)
}

/// Parses `30s`, `2m`, `500ms` or plain seconds, up to [`MAX_TIMEOUT`].
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 =
        num.trim().parse().map_err(|_| format!("{s:?} is not a duration (use e.g. 30s, 2m, 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(seconds > 0.0 && seconds <= MAX_TIMEOUT.as_secs_f64()) {
        return Err(format!("timeout must be above 0 and at most {} s", MAX_TIMEOUT.as_secs()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_units_and_limits() {
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        assert!(parse_timeout("6m").is_err());
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}
