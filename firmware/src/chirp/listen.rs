//! Decoding a live stream: feed audio as it comes, get messages as they end.

use super::receive::scan;
use super::{check_rate, ChirpError, Received, MAX_SAMPLES};

/// New audio (seconds) to gather between two scans: often enough to answer within
/// half a second of a message's end, rarely enough to cost little.
const SCAN_EVERY: f64 = 0.5;
/// Audio (seconds) kept when nothing is pending: a preamble may have begun in it.
const KEEP: f64 = 0.4;

/// Incremental decoder over a stream of mono samples.
///
/// Keeps only the audio that may still hold the start of a message, so memory stays
/// bounded by the longest frame (about 100 s for 4 KiB in robust mode).
#[derive(Debug)]
pub struct Listener {
    rate: u32,
    buf: Vec<f32>,
    /// Samples dropped from the front of `buf` so far.
    dropped: u64,
    /// Length of `buf` at the last scan.
    scanned: usize,
    /// Don't scan again before `buf` reaches this length (a frame is still arriving).
    wait_for: usize,
}

impl Listener {
    /// A listener for a stream at `rate` Hz.
    pub fn new(rate: u32) -> Result<Listener, ChirpError> {
        check_rate(rate)?;
        Ok(Listener { rate, buf: Vec::new(), dropped: 0, scanned: 0, wait_for: 0 })
    }

    /// Adds samples; returns the messages (and damaged messages) that ended in them.
    /// `start` of each is counted from the first sample ever pushed.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Received> {
        self.buf.extend_from_slice(&super::sanitize(samples));
        let every = (SCAN_EVERY * self.rate as f64) as usize;
        if self.buf.len() < self.scanned + every || self.buf.len() < self.wait_for {
            return Vec::new();
        }
        self.flush_inner(false)
    }

    /// Scans what is left, as at the end of the stream: frames cut short are
    /// reported as truncated.
    pub fn finish(&mut self) -> Vec<Received> {
        self.flush_inner(true)
    }

    fn flush_inner(&mut self, end: bool) -> Vec<Received> {
        let result = scan(&self.buf, self.rate);
        let offset = self.dropped as f64 / self.rate as f64;
        let mut out = Vec::new();
        for mut r in result.found {
            if !end && matches!(r.result, Err(super::Damage::Truncated)) {
                break;
            }
            r.start += offset;
            out.push(r);
        }
        let keep = (KEEP * self.rate as f64) as usize;
        let mut drop_to = match result.pending_from {
            Some(p) if !end => {
                // Until the pending frame can have ended, scanning again is wasted work.
                self.wait_for = result.wait_until.map_or(0, |w| w.saturating_sub(p));
                p
            }
            _ => {
                self.wait_for = 0;
                self.buf.len().saturating_sub(keep).max(result.consumed)
            }
        };
        // A frame that never ends (or a stream of garbage) must not grow the buffer forever.
        if self.buf.len() - drop_to > MAX_SAMPLES / 2 {
            drop_to = self.buf.len() - MAX_SAMPLES / 2;
        }
        drop_to = drop_to.min(self.buf.len());
        self.buf.drain(..drop_to);
        self.dropped += drop_to as u64;
        self.scanned = self.buf.len();
        out
    }
}
