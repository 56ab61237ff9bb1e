//! How the kernel clock moves toward a better estimate: step once at boot, then slew.
//!
//! The kernel clock is the board clock plus a correction. A new estimate of the right
//! correction arrives now and then (NTP, peers, RTC, the persisted last time); this
//! decides how the correction gets there. Rules, in order:
//! - the first estimate from a real source may step the clock either way (a Pi after a
//!   power cut believes it is last week; waiting for a slew would take months);
//! - later, an error of more than [`STEP_THRESHOLD`] is stepped only forward, since
//!   timestamps already handed out must stay in the past;
//! - everything else is slewed at [`MAX_SLEW_PPM`], so the clock never runs backwards
//!   and never runs faster or slower than 0.05% of real time.
//!
//! Pure arithmetic on board-clock readings: no clock is read here, which keeps it
//! testable.

use super::UnixNanos;

/// The fastest slew: 500 parts per million (0.5 ms per second), as in NTP.
pub const MAX_SLEW_PPM: i64 = 500;
/// Errors above this are stepped (forward) rather than slewed; NTP's default.
pub const STEP_THRESHOLD: i64 = 128_000_000;

/// What [`Discipline::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// The correction jumped by this many nanoseconds.
    Stepped(i64),
    /// The clock will drift toward the estimate; this many nanoseconds remain.
    Slewing(i64),
}

/// How an estimate may be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A real time source (NTP, peer consensus, RTC): may use the one boot step.
    Source,
    /// A lower bound only (the persisted last-known time, the RTC): steps forward, never
    /// back, and does not use up the boot step.
    Floor,
    /// A source that may only slew the clock, never step it (fazt peers after the boot
    /// step: anyone on the LAN can mint node identities, so peers must not be able to
    /// throw a running clock forward).
    Slew,
}

/// The correction of the kernel clock over the board clock, and where it is heading.
#[derive(Debug, Clone)]
pub struct Discipline {
    /// Board time of the last change.
    anchor_raw: UnixNanos,
    /// Correction at `anchor_raw`.
    anchor_correction: i64,
    /// The correction being slewed to.
    target: i64,
    /// Whether a source already used the boot step.
    boot_step_used: bool,
}

impl Default for Discipline {
    fn default() -> Self {
        Discipline::new()
    }
}

impl Discipline {
    /// No correction.
    pub fn new() -> Self {
        Discipline { anchor_raw: 0, anchor_correction: 0, target: 0, boot_step_used: false }
    }

    /// The correction in force at board time `raw`.
    pub fn correction_at(&self, raw: UnixNanos) -> i64 {
        // A board clock stepped backwards (elapsed < 0) freezes the slew rather than
        // reversing it.
        let elapsed = raw.saturating_sub(self.anchor_raw).max(0) as i128;
        let max_move = (elapsed * MAX_SLEW_PPM as i128 / 1_000_000).min(i64::MAX as i128) as i64;
        let wanted = self.target.saturating_sub(self.anchor_correction);
        self.anchor_correction.saturating_add(wanted.clamp(-max_move, max_move))
    }

    /// The part of the last estimate not yet applied at board time `raw`.
    pub fn remaining_at(&self, raw: UnixNanos) -> i64 {
        self.target.saturating_sub(self.correction_at(raw))
    }

    /// Whether a source already stepped the clock in this run.
    pub fn boot_step_used(&self) -> bool {
        self.boot_step_used
    }

    /// Keeps the kernel clock where it was across a step of the board clock by `jump`
    /// nanoseconds (the OS or a person set it): the correction absorbs the jump, and the
    /// next source round decides what is right.
    pub fn absorb_board_step(&mut self, jump: i64) {
        self.anchor_raw = self.anchor_raw.saturating_add(jump);
        self.anchor_correction = self.anchor_correction.saturating_sub(jump);
        self.target = self.target.saturating_sub(jump);
    }

    /// Moves toward `estimate` (the correction that would make the kernel clock right)
    /// measured at board time `raw`.
    pub fn apply(&mut self, raw: UnixNanos, estimate: i64, authority: Authority) -> Adjustment {
        let current = self.correction_at(raw);
        let error = estimate.saturating_sub(current);
        let may_step = match authority {
            Authority::Floor => error > 0,
            Authority::Source => {
                error.unsigned_abs() > STEP_THRESHOLD as u64 && (error > 0 || !self.boot_step_used)
            }
            Authority::Slew => false,
        };
        if authority == Authority::Floor && !may_step {
            return Adjustment::Slewing(self.remaining_at(raw));
        }
        self.anchor_raw = raw;
        if may_step {
            self.anchor_correction = estimate;
            self.target = estimate;
            if authority == Authority::Source {
                self.boot_step_used = true;
            }
            Adjustment::Stepped(error)
        } else {
            self.anchor_correction = current;
            self.target = estimate;
            if authority != Authority::Floor {
                // A first source that agrees within the threshold also settles boot.
                self.boot_step_used = true;
            }
            Adjustment::Slewing(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const HOUR: i64 = 3600 * S;

    #[test]
    fn the_first_source_steps_either_way_then_only_forward() {
        let mut d = Discipline::new();
        assert_eq!(d.apply(1000 * S, -HOUR, Authority::Source), Adjustment::Stepped(-HOUR));
        assert_eq!(d.correction_at(1000 * S), -HOUR);
        // A second large backward error is slewed, never stepped.
        assert_eq!(d.apply(1001 * S, -2 * HOUR, Authority::Source), Adjustment::Slewing(-HOUR));
        assert_eq!(d.correction_at(1001 * S), -HOUR);
        assert_eq!(d.correction_at(1002 * S), -HOUR - 500_000, "0.5 ms per second");
        // Forward errors are stepped at any time.
        assert!(matches!(d.apply(1003 * S, 0, Authority::Source), Adjustment::Stepped(_)));
        assert_eq!(d.correction_at(1003 * S), 0);
    }

    #[test]
    fn small_errors_slew_and_arrive() {
        let mut d = Discipline::new();
        assert_eq!(d.apply(0, 10_000_000, Authority::Source), Adjustment::Slewing(10_000_000));
        assert_eq!(d.correction_at(10 * S), 5_000_000);
        assert_eq!(d.correction_at(20 * S), 10_000_000);
        assert_eq!(d.correction_at(500 * S), 10_000_000, "stops at the target");
        assert_eq!(d.remaining_at(500 * S), 0);
        // A board clock stepped back does not reverse the slew.
        assert_eq!(d.correction_at(-5 * S), 0);
    }

    #[test]
    fn the_floor_only_pushes_forward_and_keeps_the_boot_step() {
        let mut d = Discipline::new();
        assert_eq!(d.apply(0, -HOUR, Authority::Floor), Adjustment::Slewing(0));
        assert_eq!(d.correction_at(S), 0);
        assert_eq!(d.apply(0, HOUR, Authority::Floor), Adjustment::Stepped(HOUR));
        assert!(!d.boot_step_used());
        // The persisted time was wrong (in the future): the first real source fixes it.
        assert_eq!(d.apply(S, 0, Authority::Source), Adjustment::Stepped(-HOUR));
    }

    #[test]
    fn slew_only_sources_never_step_and_board_steps_are_absorbed() {
        let mut d = Discipline::new();
        assert_eq!(d.apply(0, HOUR, Authority::Slew), Adjustment::Slewing(HOUR));
        assert_eq!(d.correction_at(S), 500_000);
        // The board clock jumps 10 s forward: the kernel clock stays put.
        let before = S + d.correction_at(S);
        d.absorb_board_step(10 * S);
        assert_eq!(11 * S + d.correction_at(11 * S), before);
    }

    #[test]
    fn extreme_values_saturate() {
        let mut d = Discipline::new();
        d.apply(i64::MIN, i64::MAX, Authority::Source);
        let _ = d.correction_at(i64::MAX);
        let _ = d.remaining_at(i64::MIN);
    }
}
