//! Tests of the modem as a whole: encode, a channel, decode.

use super::channel::{Channel, Reverb};
use super::scramble::Prng;
use super::*;

fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut rng = Prng::new(seed);
    (0..len).map(|_| rng.next_u8()).collect()
}

fn only_message(found: &[Received]) -> Result<Vec<u8>, Damage> {
    assert_eq!(found.len(), 1, "expected one message, found {found:?}");
    found[0].result.clone()
}

#[test]
fn every_mode_round_trips_clean_at_48k() {
    for mode in Mode::ALL {
        for len in [1, 16, 100, 300] {
            let data = payload(len, len as u32);
            let samples = encode(&data, mode, 48_000).unwrap();
            let found = decode(&samples, 48_000).unwrap();
            assert_eq!(only_message(&found), Ok(data), "{mode} {len}");
            assert_eq!(found[0].mode, mode);
            assert_eq!(found[0].corrected, 0, "{mode} {len}");
        }
    }
}

#[test]
fn every_length_round_trips_across_symbol_boundaries() {
    // Header and payload share symbols: every split of a short message between
    // them, and every amount of padding in the last symbol, must read back.
    for mode in Mode::ALL {
        let longest = if mode == Mode::Robust { 24 } else { 140 };
        for len in 1..=longest {
            let data = payload(len, 1000 + len as u32);
            let samples = encode(&data, mode, 16_000).unwrap();
            assert_eq!(only_message(&decode(&samples, 16_000).unwrap()), Ok(data), "{mode} {len}");
        }
    }
}

/// Throughput is payload bytes per second of the sound `encode` makes (preamble,
/// header, padding and the 2 x 20 ms of silence included): a property of the
/// format, not of the machine. The targets (standard 200 B/s, fast 500
/// B/s) must hold for messages from 64 and 256 bytes on, and robust must stay
/// over 3x ggwave's most robust audible protocol (8.5 B/s at 32 bytes).
#[test]
fn throughput_targets_hold_from_small_messages_on() {
    let bps = |len: usize, mode: Mode| {
        let samples = encode(&payload(len, 3), mode, 48_000).unwrap();
        let seconds = samples.len() as f64 / 48_000.0;
        assert!((seconds - airtime(len, mode)).abs() < 1e-3, "{mode} {len}");
        len as f64 / seconds
    };
    let mut table = String::new();
    for mode in Mode::ALL {
        table += &format!("\n{mode:>9}");
        for len in [32, 64, 128, 256, 1024, 4096] {
            table += &format!(" {len}: {:.0}", bps(len, mode));
        }
    }
    println!("payload bytes per second of sound:{table}");
    for len in [64, 100, 200, 256, 1024, 4096] {
        assert!(bps(len, Mode::Standard) >= 200.0, "standard at {len} B:{table}");
    }
    for len in [256, 300, 1024, 4096] {
        assert!(bps(len, Mode::Fast) >= 500.0, "fast at {len} B:{table}");
    }
    assert!(bps(32, Mode::Robust) >= 3.0 * 8.5, "{table}");
}

#[test]
fn every_mode_survives_the_room_at_10_db() {
    // The quick channel test of the default run: noise, 0.5% clock, 44.1 -> 48 kHz,
    // echo, clipping and silence all at once. The full table is `success_rates`.
    for mode in Mode::ALL {
        for seed in 0..2 {
            let data = payload(64, seed + 10);
            let samples = encode(&data, mode, 44_100).unwrap();
            let (rx, rate) = Channel::room(10.0, seed).apply(&samples, 44_100);
            let found = decode(&rx, rate).unwrap();
            assert_eq!(only_message(&found), Ok(data), "{mode} seed {seed}");
            assert!((found[0].clock_offset + 0.005 / 1.005).abs() < 3e-4, "{:?}", found[0]);
        }
    }
}

#[test]
fn robust_and_standard_survive_a_reverberant_room() {
    // The README's reverberation claims (full table: `reverb_rates`): robust reads
    // through a living room at +6 dB direct-to-reverberant (about 30 cm), standard at
    // +12 dB (about 15 cm), both with the room's other impairments and 20 dB of noise.
    for (mode, drr) in [(Mode::Robust, 6.0), (Mode::Standard, 12.0)] {
        for seed in 0..2 {
            let data = payload(32, seed + 40);
            let samples = encode(&data, mode, 44_100).unwrap();
            let (rx, rate) = Channel::reverberant(20.0, drr, seed).apply(&samples, 44_100);
            assert_eq!(only_message(&decode(&rx, rate).unwrap()), Ok(data), "{mode} seed {seed}");
        }
    }
}

#[test]
fn clock_offsets_both_ways_and_both_rates_decode() {
    for mode in Mode::ALL {
        for (clock, from, to) in [(0.995, 48_000, 44_100), (1.005, 44_100, 48_000), (1.0, 16_000, 96_000)] {
            let data = payload(200, 5);
            let samples = encode(&data, mode, from).unwrap();
            let ch = Channel { clock, rate: Some(to), snr_db: Some(20.0), ..Channel::default() };
            let (rx, rate) = ch.apply(&samples, from);
            assert_eq!(only_message(&decode(&rx, rate).unwrap()), Ok(data), "{mode} {clock} {from}->{to}");
        }
    }
}

/// Success rate of each mode per SNR through the full room channel, and throughput
/// (payload bytes per second of sound). Long: run with
/// `cargo test --release -p fazt --lib success_rates -- --ignored --nocapture`
/// (`CHIRP_TRIALS=50 CHIRP_SIZES=32,256,4096` to change the defaults).
#[test]
#[ignore]
fn success_rates() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let trials: u32 = env("CHIRP_TRIALS", "20").parse().unwrap();
    let sizes: Vec<usize> = env("CHIRP_SIZES", "32,256").split(',').map(|s| s.parse().unwrap()).collect();
    let snrs = [20.0, 15.0, 10.0, 5.0, 0.0, -5.0, -10.0];
    println!(
        "{trials} trials per cell; room = 0.5% clock, 44.1->48 kHz, echo 4 ms -10 dB, clip 70%, padding"
    );
    println!(
        "{:>9} {:>5} {:>7} | clean {}",
        "mode",
        "bytes",
        "B/s",
        snrs.map(|s| format!("{s:>5}dB")).join("")
    );
    for mode in Mode::ALL {
        for &len in &sizes {
            let mut row = format!("{:>9} {:>5} {:>7.1} |", mode.name(), len, len as f64 / airtime(len, mode));
            for snr in std::iter::once(None).chain(snrs.iter().map(|s| Some(*s))) {
                let mut ok = 0;
                for t in 0..trials {
                    let data = payload(len, t * 7 + 1);
                    let samples = encode(&data, mode, 44_100).unwrap();
                    let ch = match snr {
                        None => Channel::default(),
                        Some(snr) => Channel::room(snr, t),
                    };
                    let (rx, rate) = ch.apply(&samples, 44_100);
                    let found = decode(&rx, rate).unwrap();
                    for r in &found {
                        if let Ok(bytes) = &r.result {
                            assert_eq!(bytes, &data, "wrong bytes delivered");
                        }
                    }
                    if found.iter().any(|r| r.result.as_ref() == Ok(&data)) {
                        ok += 1;
                    }
                }
                row += &format!("{:>6.0}%", 100.0 * ok as f64 / trials as f64);
            }
            println!("{row}");
        }
    }
}

/// Success rate of each mode through reverberant rooms, with the room's other
/// impairments and 20 dB of noise. Long: run with
/// `cargo test --release -p fazt --lib reverb_rates -- --ignored --nocapture`.
#[test]
#[ignore]
fn reverb_rates() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let trials: u32 = env("CHIRP_TRIALS", "20").parse().unwrap();
    let sizes: Vec<usize> = env("CHIRP_SIZES", "32,256").split(',').map(|s| s.parse().unwrap()).collect();
    let drrs = [12.0, 6.0, 3.0, 0.0, -3.0];
    println!("{trials} trials per cell; room + RT60 0.4 s reverberation + 20 dB noise; by direct-to-reverberant ratio");
    println!("{:>9} {:>5} |{}", "mode", "bytes", drrs.map(|d| format!("{d:>6}dB")).join(""));
    for mode in Mode::ALL {
        for &len in &sizes {
            let mut row = format!("{:>9} {:>5} |", mode.name(), len);
            for drr in drrs {
                let mut ok = 0;
                for t in 0..trials {
                    let data = payload(len, t * 7 + 1);
                    let samples = encode(&data, mode, 44_100).unwrap();
                    let (rx, rate) = Channel::reverberant(20.0, drr, t).apply(&samples, 44_100);
                    let found = decode(&rx, rate).unwrap();
                    for r in &found {
                        if let Ok(bytes) = &r.result {
                            assert_eq!(bytes, &data, "wrong bytes delivered");
                        }
                    }
                    ok += u32::from(found.iter().any(|r| r.result.as_ref() == Ok(&data)));
                }
                row += &format!("{:>7.0}%", 100.0 * ok as f64 / trials as f64);
            }
            println!("{row}");
        }
    }
}

/// Each impairment of the room alone, per mode, with what the decoder saw. A
/// diagnostic: `cargo test --release -p fazt --lib impairments_one_by_one -- --ignored --nocapture`.
#[test]
#[ignore]
fn impairments_one_by_one() {
    let len = 64;
    for mode in Mode::ALL {
        let conds: Vec<(&str, Channel)> = vec![
            ("clean", Channel::default()),
            ("snr20", Channel { snr_db: Some(20.0), ..Channel::default() }),
            ("snr15", Channel { snr_db: Some(15.0), ..Channel::default() }),
            ("snr10", Channel { snr_db: Some(10.0), ..Channel::default() }),
            ("snr5", Channel { snr_db: Some(5.0), ..Channel::default() }),
            ("clock", Channel { clock: 1.005, ..Channel::default() }),
            ("rate", Channel { rate: Some(48_000), ..Channel::default() }),
            ("echo", Channel { echo: Some((0.004, 0.3)), ..Channel::default() }),
            ("echo10ms-6dB", Channel { echo: Some((0.010, 0.5)), ..Channel::default() }),
            ("echo20ms-6dB", Channel { echo: Some((0.020, 0.5)), ..Channel::default() }),
            ("echo50ms-10dB", Channel { echo: Some((0.050, 0.3)), ..Channel::default() }),
            ("clip", Channel { clip: Some(0.7), ..Channel::default() }),
            ("reverb+6dB", Channel { reverb: Some(Reverb { rt60: 0.4, drr_db: 6.0 }), ..Channel::default() }),
            ("reverb0dB", Channel { reverb: Some(Reverb { rt60: 0.4, drr_db: 0.0 }), ..Channel::default() }),
            ("pad", Channel { padding: (1.3, 0.7), ..Channel::default() }),
            ("room10", Channel::room(10.0, 1)),
        ];
        for (name, ch) in conds {
            let data = payload(len, 11);
            let samples = encode(&data, mode, 44_100).unwrap();
            let (rx, rate) = ch.apply(&samples, 44_100);
            let found = decode(&rx, rate).unwrap();
            let summary: Vec<String> = found
                .iter()
                .map(|r| {
                    format!(
                        "{:?} fixed {} clock {:.5} sig {:.2}",
                        r.result.as_ref().map(|d| d.len()),
                        r.corrected,
                        r.clock_offset,
                        r.signal
                    )
                })
                .collect();
            println!("{mode:>9} {name:>7}: {summary:?}");
        }
    }
}

#[test]
fn the_largest_payload_round_trips_in_every_mode() {
    for mode in Mode::ALL {
        let data = payload(MAX_PAYLOAD, 77);
        let samples = encode(&data, mode, 16_000).unwrap();
        assert_eq!(only_message(&decode(&samples, 16_000).unwrap()), Ok(data), "{mode}");
    }
}

#[test]
fn random_sizes_round_trip() {
    let mut rng = Prng::new(2024);
    for i in 0..9 {
        let mode = Mode::ALL[i % 3];
        let len = 1 + rng.below(1500);
        let data = payload(len, i as u32);
        let samples = encode(&data, mode, 44_100).unwrap();
        assert_eq!(only_message(&decode(&samples, 44_100).unwrap()), Ok(data), "{mode} {len}");
    }
}

#[test]
fn several_messages_in_one_noisy_recording_are_all_found_in_order() {
    let rate = 48_000;
    let messages: Vec<(Mode, Vec<u8>)> = vec![
        (Mode::Fast, b"first".to_vec()),
        (Mode::Robust, payload(40, 3)),
        (Mode::Standard, payload(500, 4)),
    ];
    let mut recording = Vec::new();
    for (mode, data) in &messages {
        recording.extend(vec![0.0; rate as usize / 3]);
        recording.extend(encode(data, *mode, rate).unwrap());
    }
    let ch = Channel { snr_db: Some(15.0), clock: 0.996, padding: (2.0, 1.0), ..Channel::default() };
    let (rx, rx_rate) = ch.apply(&recording, rate);
    let found = decode(&rx, rx_rate).unwrap();
    let got: Vec<(Mode, Result<Vec<u8>, Damage>)> =
        found.iter().map(|r| (r.mode, r.result.clone())).collect();
    let want: Vec<(Mode, Result<Vec<u8>, Damage>)> = messages.into_iter().map(|(m, d)| (m, Ok(d))).collect();
    assert_eq!(got, want);
    assert!(found.windows(2).all(|w| w[0].start < w[1].start));
}

#[test]
fn noise_and_silence_hold_no_message() {
    let (rx, rate) =
        Channel { snr_db: Some(0.0), padding: (3.0, 0.0), ..Channel::default() }.apply(&[0.3; 100], 48_000);
    assert!(decode(&rx, rate).unwrap().is_empty());
    assert!(decode(&vec![0.0; 48_000], 48_000).unwrap().is_empty());
    assert!(decode(&[], 48_000).unwrap().is_empty());
    // Not-a-number samples (a broken float source) are silence, not a crash.
    let mut samples = encode(b"nan around", Mode::Fast, 48_000).unwrap();
    samples.splice(0..0, vec![f32::NAN; 1000]);
    samples.extend(vec![f32::INFINITY; 1000]);
    assert_eq!(only_message(&decode(&samples, 48_000).unwrap()), Ok(b"nan around".to_vec()));
}

#[test]
fn a_damaged_message_is_reported_never_delivered_wrong() {
    for mode in Mode::ALL {
        let data = payload(300, 9);
        let mut samples = encode(&data, mode, 48_000).unwrap();
        // Drown the second half of the message in loud noise: the preamble and header
        // are intact, the payload is beyond repair.
        let half = samples.len() / 2;
        let mut rng = Prng::new(5);
        for s in &mut samples[half..] {
            *s = (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0;
        }
        let found = decode(&samples, 48_000).unwrap();
        assert!(matches!(only_message(&found), Err(Damage::Payload { len: 300 })), "{mode}: {found:?}");
    }
}

#[test]
fn a_cut_recording_reports_a_truncated_message() {
    let samples = encode(&payload(200, 1), Mode::Standard, 48_000).unwrap();
    let found = decode(&samples[..samples.len() * 2 / 3], 48_000).unwrap();
    assert_eq!(only_message(&found), Err(Damage::Truncated));
}

#[test]
fn bad_arguments_are_errors() {
    assert!(matches!(encode(&[], Mode::Fast, 48_000), Err(ChirpError::Empty)));
    assert!(matches!(encode(&[0; MAX_PAYLOAD + 1], Mode::Fast, 48_000), Err(ChirpError::TooLarge { .. })));
    assert!(matches!(encode(b"x", Mode::Fast, 8_000), Err(ChirpError::Rate { rate: 8_000 })));
    assert!(matches!(decode(&[0.0; 10], 0), Err(ChirpError::Rate { rate: 0 })));
}

#[test]
fn a_listener_fed_in_small_chunks_finds_each_message_once() {
    let rate = 44_100;
    let mut stream = vec![0.0; rate as usize];
    stream.extend(encode(b"one", Mode::Fast, rate).unwrap());
    stream.extend(vec![0.0; 3000]);
    stream.extend(encode(&payload(900, 8), Mode::Standard, rate).unwrap());
    stream.extend(vec![0.0; rate as usize]);
    let (rx, rate) =
        Channel { snr_db: Some(20.0), clock: 1.004, seed: 3, ..Channel::default() }.apply(&stream, rate);
    let mut listener = Listener::new(rate).unwrap();
    let mut got = Vec::new();
    for chunk in rx.chunks(1024) {
        got.extend(listener.push(chunk));
    }
    got.extend(listener.finish());
    let results: Vec<_> = got.iter().map(|r| r.result.clone()).collect();
    assert_eq!(results, vec![Ok(b"one".to_vec()), Ok(payload(900, 8))]);
    assert!((got[0].start - 1.0 - PADDING_SECONDS).abs() < 0.01, "{}", got[0].start);
}

/// Time of each decoding stage on a minute of noise at 48 kHz: `cargo test
/// --release -p fazt --lib stage_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn stage_timing() {
    let mut rec = vec![0.0f32; 48_000 * 60];
    let mut rng = Prng::new(1);
    for s in rec.iter_mut() {
        *s = (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 0.1;
    }
    let t = std::time::Instant::now();
    let internal = resample::convert(&rec, 48_000, INTERNAL_RATE);
    println!("convert: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for sweep in mode::Sweep::ALL {
        let corr = preamble::Correlation::new(&internal, 16_000.0, sweep);
        println!(
            "correlation ({} samples): {:?} ({} candidates)",
            sweep.len,
            t.elapsed(),
            corr.candidates().len()
        );
    }
    let t = std::time::Instant::now();
    let _ = decode(&rec, 48_000).unwrap();
    println!("decode: {:?}", t.elapsed());
}

/// Guards against FFT round-off in digital silence passing for a sweep (it did:
/// a phantom "unreadable header" before every message from a silent WAV).
#[test]
fn digital_silence_before_a_message_holds_no_phantom_message() {
    let rate = 48_000;
    let mut stream = vec![0.0; 14_400];
    stream.extend(encode(b"first", Mode::Robust, rate).unwrap());
    let whole = decode(&stream, rate).unwrap();
    assert_eq!(only_message(&whole), Ok(b"first".to_vec()));
    let mut listener = Listener::new(rate).unwrap();
    let mut got = Vec::new();
    for chunk in stream.chunks(4800) {
        got.extend(listener.push(chunk));
    }
    got.extend(listener.finish());
    assert_eq!(only_message(&got), Ok(b"first".to_vec()));
    assert!(got[0].clock_offset.abs() < 2e-5, "{:?}", got[0]);
}

/// Fuzzes the decoder with mangled WAV files of a real message: cut anywhere, bytes
/// flipped in the header and the samples. Any answer is fine but a panic, and a
/// message delivered must be the one sent.
#[test]
fn mangled_wav_files_never_panic_nor_deliver_wrong_bytes() {
    let sent = b"fuzz me".to_vec();
    let good = wav::encode_wav(&sent, Mode::Fast, 16_000).unwrap();
    let mut rng = Prng::new(4242);
    for round in 0..300 {
        let mut bytes = good.clone();
        match round % 3 {
            0 => bytes.truncate(rng.below(bytes.len())),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(60);
                    bytes[i] = rng.next_u8();
                }
            }
            _ => {
                for _ in 0..1 + rng.below(200) {
                    let i = 44 + rng.below(bytes.len() - 44);
                    bytes[i] = rng.next_u8();
                }
            }
        }
        if let Ok(found) = wav::decode_wav(&bytes) {
            for r in found {
                if let Ok(data) = r.result {
                    assert_eq!(data, sent, "round {round}");
                }
            }
        }
    }
    let random: Vec<u8> = (0..20_000).map(|_| rng.next_u8()).collect();
    assert!(wav::decode_wav(&random).is_err());
}
