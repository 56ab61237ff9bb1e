//! Finding and reading every frame in a recording.
//!
//! 1. Convert the recording to the internal rate and correlate it with each kind
//!    of sweep (long rising, short falling).
//! 2. For each sweep, in order of time, look for its twin at the spacing of each
//!    mode that opens with that kind (allowing for a clock offset): the spacing
//!    that fits names the mode, and the measured spacing gives the sender's clock.
//! 3. Resample the frame from the original recording with that clock, aligned to
//!    the first sweep, and read the header.
//! 4. If the frame is long, find the closing sweep, which measures the clock over
//!    the whole frame, and resample again with the better figure.
//! 5. Read the payload, correct it, check its CRC-32.
//!
//! Working from the original recording each time (not from the converted copy)
//! means a frame is resampled once, with one filter, at the right ratio.

use super::demodulate;
use super::frame::{
    body_start, header_first_symbol, header_symbols, read_header, read_payload, FrameLayout, PayloadError,
};
use super::mode::{Mode, Sweep, INTERNAL_RATE};
use super::preamble::{refine, Correlation, MAX_CLOCK_OFFSET};
use super::resample::{convert, resample_at};
use super::{Damage, Received};

/// What a scan found, and from where a live listener must keep its audio.
#[derive(Debug)]
pub(crate) struct Scan {
    pub found: Vec<Received>,
    /// First sample (of the input) of a frame that runs past the end of the input,
    /// or of a sweep too close to the end to tell; `None` if nothing is pending.
    pub pending_from: Option<usize>,
    /// Where the pending frame should end (input samples), when its header told.
    pub wait_until: Option<usize>,
    /// End of the last frame delivered or given up on (input samples).
    pub consumed: usize,
}

/// Finds and reads every frame in `samples` (mono, `rate` Hz). The rate has been
/// checked by the caller.
pub(crate) fn scan(samples: &[f32], rate: u32) -> Scan {
    let internal = convert(samples, rate, INTERNAL_RATE);
    let corrs: Vec<Correlation> =
        Sweep::ALL.into_iter().map(|s| Correlation::new(&internal, INTERNAL_RATE as f64, s)).collect();
    let mut candidates: Vec<(usize, &Correlation)> =
        corrs.iter().flat_map(|c| c.candidates().into_iter().map(move |at| (at, c))).collect();
    candidates.sort_by_key(|c| c.0);
    let mut found = Vec::new();
    let mut pending_from = None;
    let mut wait_until = None;
    let mut consumed = 0;
    let mut next_free = 0.0f64;
    let to_input = rate as f64 / INTERNAL_RATE as f64;
    for (cand, corr) in candidates {
        if (cand as f64) < next_free {
            continue;
        }
        match read_frame(samples, rate, &internal, corr, cand) {
            Attempt::NoFrame => {}
            Attempt::Pending(at) => {
                pending_from = Some(keep_from(at * to_input, rate));
                break;
            }
            Attempt::Frame(received, end) => {
                let truncated = matches!(received.result, Err(Damage::Truncated));
                if truncated {
                    pending_from = Some(keep_from(received.start * rate as f64, rate));
                    wait_until = Some((end * to_input) as usize);
                } else {
                    consumed = (end * to_input) as usize;
                }
                found.push(received);
                next_free = end;
                if truncated {
                    break;
                }
            }
        }
    }
    Scan { found, pending_from, wait_until, consumed }
}

/// Where a listener keeps audio from, for a frame starting at input sample `start`:
/// a little before it, so that the sweep can still be located precisely.
fn keep_from(start: f64, rate: u32) -> usize {
    (start - 0.05 * rate as f64).max(0.0) as usize
}

enum Attempt {
    /// The sweep is not the start of a frame.
    NoFrame,
    /// The input ends before we can tell (a live listener should wait for more).
    Pending(f64),
    /// A frame (read or damaged) and where it ends, in internal samples.
    Frame(Received, f64),
}

fn read_frame(samples: &[f32], rate: u32, internal: &[f32], corr: &Correlation, cand: usize) -> Attempt {
    let Some((p1, v1)) = corr.peak_in(cand as f64 - 2.0, cand as f64 + 3.0) else {
        return Attempt::NoFrame;
    };
    // The twin sweep, at each mode's spacing give or take the clock offset.
    let mut best: Option<(Mode, f64, f32)> = None;
    let mut beyond_end = false;
    for mode in Mode::ALL.into_iter().filter(|m| m.params().sweep == corr.sweep) {
        let spacing = mode.params().chirp_spacing as f64;
        let lo = p1 + spacing * (1.0 - MAX_CLOCK_OFFSET) - 2.0;
        let hi = p1 + spacing * (1.0 + MAX_CLOCK_OFFSET) + 3.0;
        if hi as usize >= corr.values.len() {
            beyond_end = true;
        }
        if let Some((p2, v2)) = corr.peak_in(lo, hi) {
            if best.is_none_or(|b| v2 > b.2) {
                best = Some((mode, p2, v2));
            }
        }
    }
    let Some((mode, p2, v2)) = best else {
        return if beyond_end { Attempt::Pending(p1) } else { Attempt::NoFrame };
    };
    let params = mode.params();
    let spacing = params.chirp_spacing as f64;
    // Detection gives positions to about a sample; coherent refinement with the
    // sweep stretched to the coarse clock gives a small fraction of one.
    let coarse = (p2 - p1) / spacing;
    let rate_i = INTERNAL_RATE as f64;
    let sweep = &params.sweep;
    let (p1, clock0) =
        match (refine(internal, rate_i, p1, coarse, sweep), refine(internal, rate_i, p2, coarse, sweep)) {
            (Some(a), Some(b)) if ((b - a) / spacing - 1.0).abs() <= MAX_CLOCK_OFFSET => {
                (a, (b - a) / spacing)
            }
            _ => (p1, coarse),
        };
    let strength = v1.min(v2);
    let to_input = rate as f64 / INTERNAL_RATE as f64;
    let align = |clock: f64, len: usize| resample_at(samples, p1 * to_input, clock * to_input, len);
    let available = (samples.len() as f64 / to_input - p1) / clock0;
    let received = |clock: f64, result: Result<Vec<u8>, Damage>, corrected: usize| Received {
        mode,
        start: p1 / INTERNAL_RATE as f64,
        clock_offset: clock - 1.0,
        signal: strength,
        corrected,
        result,
    };

    // Header, with the clock from the preamble.
    let head_symbols = header_first_symbol(&params) + header_symbols(&params);
    let head_len = body_start(&params) + head_symbols * params.symbol_len() + params.guard;
    if (head_len as f64) > available {
        return Attempt::Frame(received(clock0, Err(Damage::Truncated), 0), p1 + available * clock0);
    }
    let y = align(clock0, head_len);
    let header = demodulate::body(&y, &params, head_symbols)
        .and_then(|(bytes, conf)| read_header(&bytes, &conf, mode));
    let Some(header) = header else {
        // Skip this preamble; what follows may still hold a readable frame.
        let skip = p1 + clock0 * (params.chirp_spacing + sweep.len) as f64;
        return Attempt::Frame(received(clock0, Err(Damage::Header), 0), skip);
    };

    let layout = FrameLayout::new(mode, header.len);
    let total = layout.total_len();
    let mut clock = clock0;
    if let Some(post) = layout.postamble() {
        // The clock from the preamble is good to about 1e-3 at worst; look that far.
        let expect = p1 + clock0 * post as f64;
        let margin = post as f64 * 1.5e-3 + 8.0;
        if let Some((p3, _)) = corr.peak_in(expect - margin, expect + margin) {
            let p3 = refine(internal, rate_i, p3, clock0, sweep).unwrap_or(p3);
            let measured = (p3 - p1) / post as f64;
            if (measured - 1.0).abs() <= MAX_CLOCK_OFFSET {
                clock = measured;
            }
        }
    }
    let end = p1 + clock * total as f64;
    let body_len = layout.body_end() + params.guard;
    if (layout.body_end() as f64) > available {
        return Attempt::Frame(received(clock, Err(Damage::Truncated), 0), end);
    }
    let y = align(clock, body_len);
    let Some((bytes, conf)) = demodulate::body(&y, &params, layout.body_symbols) else {
        return Attempt::Frame(received(clock, Err(Damage::Truncated), 0), end);
    };
    let result = match read_payload(&bytes, &conf, &header) {
        Ok((data, corrected)) => return Attempt::Frame(received(clock, Ok(data), corrected), end),
        Err(PayloadError::Unrecoverable) => Damage::Payload { len: header.len },
        Err(PayloadError::Checksum) => Damage::Checksum { len: header.len },
    };
    Attempt::Frame(received(clock, Err(result), 0), end)
}
