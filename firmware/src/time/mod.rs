//! The kernel clock and the timekeeper that keeps it right without NTP.
//!
//! Every timestamp (sessions, tokens, deploys, logs, TTLs, signatures) comes from
//! [`Clock`], never straight from the system clock: the clock is the board's wall clock
//! (a HAL [`WallClock`]) plus a correction that the [`Timekeeper`] keeps right from the
//! best source it has (NTP servers, the OS's own synchronization, signed answers of fazt
//! peers found by the beacon, the RTC, the last time persisted in `data.db`).
//!
//! # Layout
//! - [`discipline`]: how the correction moves (one boot step, then slewing; never back).
//! - [`consensus`]: agreeing on a correction from several sources, some of them wrong.
//! - [`ntp`]: the NTP packet with fazt's signed extension fields.
//! - [`client`]: one NTP exchange with a server or a peer (four timestamps).
//! - [`server`]: the UDP time server other nodes, `ntpdig` and `chronyd` poll.
//! - [`keeper`]: the background service tying these together, and its status.

pub mod client;
pub mod consensus;
pub mod discipline;
pub mod keeper;
pub mod ntp;
pub mod server;

pub use keeper::Timekeeper;

use discipline::{Adjustment, Authority, Discipline};
use fazt_hal::time::{SystemClock, WallClock};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub type UnixMillis = i64;
/// Nanoseconds since the Unix epoch, the unit of time measurements.
pub type UnixNanos = i64;

/// A change of the board clock beyond this, against the steady clock, is a step (by the
/// OS or by hand), not drift.
const BOARD_STEP: i64 = 1_000_000_000;

/// The kernel clock. Cheap to share (`Arc<Clock>`).
#[derive(Debug)]
pub struct Clock {
    board: Arc<dyn WallClock>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    discipline: Discipline,
    /// The largest millisecond value handed out: a step back at boot must not make new
    /// rows look older than earlier ones.
    last_millis: i64,
    /// Board time minus steady time at the last reading, to notice board steps.
    board_minus_steady: Option<i64>,
    /// Board steps noticed so far (samples measured before one are stale).
    board_steps: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock that follows the system clock, uncorrected until a timekeeper runs.
    pub fn new() -> Self {
        Clock::on(Arc::new(SystemClock))
    }

    /// A clock over the board clock `board` (the system clock, or one shifted for tests).
    pub fn on(board: Arc<dyn WallClock>) -> Self {
        let inner = Inner {
            discipline: Discipline::new(),
            last_millis: i64::MIN,
            board_minus_steady: None,
            board_steps: 0,
        };
        Clock { board, inner: Mutex::new(inner) }
    }

    /// Reads the board clock under the lock, absorbing a step of it: if the OS (or a
    /// person) set the board clock, the kernel clock carries on where it was, and the
    /// next round of sources decides what is right. Without this, a correction fazt
    /// already made would be applied twice once timesyncd steps the board clock too.
    fn read(&self) -> (std::sync::MutexGuard<'_, Inner>, UnixNanos) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let raw = self.board.now_nanos();
        let diff = raw.saturating_sub(self.board.steady_nanos());
        if let Some(previous) = inner.board_minus_steady {
            let jump = diff.saturating_sub(previous);
            if jump.unsigned_abs() > BOARD_STEP as u64 {
                inner.discipline.absorb_board_step(jump);
                inner.board_steps += 1;
                tracing::warn!(
                    by_ms = jump / 1_000_000,
                    "the board clock was stepped; the kernel clock carries on"
                );
            }
        }
        inner.board_minus_steady = Some(diff);
        (inner, raw)
    }

    /// The board clock underneath.
    pub fn board(&self) -> &Arc<dyn WallClock> {
        &self.board
    }

    /// The board clock's reading, uncorrected (for measuring against sources).
    pub fn board_nanos(&self) -> UnixNanos {
        self.read().1
    }

    /// How many steps of the board clock were absorbed (samples taken before the
    /// latest one measured a board clock that is gone).
    pub fn board_steps(&self) -> u64 {
        self.read().0.board_steps
    }

    /// Now, corrected, in nanoseconds (NTP answers). Slews, but may step forward.
    pub fn now_nanos(&self) -> UnixNanos {
        let (inner, raw) = self.read();
        raw.saturating_add(inner.discipline.correction_at(raw))
    }

    /// Now, in milliseconds since the Unix epoch; never less than a previous answer.
    pub fn now_millis(&self) -> UnixMillis {
        let (mut inner, raw) = self.read();
        let now = raw.saturating_add(inner.discipline.correction_at(raw)).div_euclid(1_000_000);
        inner.last_millis = inner.last_millis.max(now);
        inner.last_millis
    }

    /// Now, as a `SystemTime` (for HTTP dates).
    pub fn now(&self) -> SystemTime {
        to_system_time(self.now_millis())
    }

    /// The correction in force now (kernel minus board), and the part still to slew.
    pub fn correction(&self) -> (i64, i64) {
        let (inner, raw) = self.read();
        (inner.discipline.correction_at(raw), inner.discipline.remaining_at(raw))
    }

    /// Whether a source already used the one boot step.
    pub fn boot_step_used(&self) -> bool {
        self.read().0.discipline.boot_step_used()
    }

    /// Moves toward `estimate` (the right correction), measured at board time `raw`.
    pub fn adjust(&self, raw: UnixNanos, estimate: i64, authority: Authority) -> Adjustment {
        let (mut inner, now_raw) = self.read();
        let adjustment = inner.discipline.apply(raw, estimate, authority);
        if let Adjustment::Stepped(by) = adjustment {
            if by < 0 {
                // The one allowed backward step (at boot): later answers follow it. Done
                // under the lock, so no reader can put the old time back.
                let now =
                    now_raw.saturating_add(inner.discipline.correction_at(now_raw)).div_euclid(1_000_000);
                inner.last_millis = now;
            }
        }
        adjustment
    }
}

/// Converts stored milliseconds to a `SystemTime`.
pub fn to_system_time(millis: UnixMillis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64)
}

/// Formats stored milliseconds as RFC 3339 UTC with second precision, e.g.
/// `2026-11-27T05:00:00Z`.
pub fn rfc3339(millis: UnixMillis) -> String {
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fazt_hal::time::OffsetClock;

    #[test]
    fn a_boot_step_back_is_followed_and_later_errors_slew() {
        const HOUR: i64 = 3_600_000_000_000;
        let clock = Clock::on(Arc::new(OffsetClock::new(Arc::new(SystemClock), 3 * HOUR)));
        let ahead = clock.now_millis();
        let raw = clock.board_nanos();
        assert!(matches!(clock.adjust(raw, -3 * HOUR, Authority::Source), Adjustment::Stepped(_)));
        let stepped = clock.now_millis();
        assert!((ahead - stepped - 3 * 3_600_000).abs() < 5_000, "stepped back once: {ahead} -> {stepped}");
        assert!(clock.boot_step_used());
        assert!(matches!(
            clock.adjust(clock.board_nanos(), -4 * HOUR, Authority::Source),
            Adjustment::Slewing(_)
        ));
        assert!(clock.now_millis() >= stepped, "never backwards after the boot step");
        assert!(clock.correction().1 < -HOUR / 2, "an hour left to slew");
    }

    /// The one-clock rule of the architecture, checked: nothing outside this module reads
    /// the system clock (the HAL's clock backend is the only other place).
    #[test]
    fn nothing_else_reads_the_system_clock() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let forbidden = ["SystemTime::", "now()"].concat();
        let mut offenders = Vec::new();
        for entry in walkdir::WalkDir::new(&src).into_iter().flatten() {
            let path = entry.path();
            if path.starts_with(src.join("time")) || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            if std::fs::read_to_string(path).unwrap().contains(&forbidden) {
                offenders.push(path.display().to_string());
            }
        }
        assert!(offenders.is_empty(), "read the kernel clock (crate::time::Clock) instead in {offenders:?}");
    }

    /// A board clock a test can set, with its own steady clock.
    #[derive(Debug, Default)]
    struct HandSetBoard {
        wall: std::sync::atomic::AtomicI64,
        steady: std::sync::atomic::AtomicI64,
    }

    impl WallClock for HandSetBoard {
        fn now_nanos(&self) -> UnixNanos {
            self.wall.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn steady_nanos(&self) -> i64 {
            self.steady.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn sync_state(&self) -> fazt_hal::time::SyncState {
            fazt_hal::time::SyncState::Unsynchronized
        }
    }

    #[test]
    fn a_step_of_the_board_clock_is_absorbed_not_applied_twice() {
        use std::sync::atomic::Ordering::Relaxed;
        const S: i64 = 1_000_000_000;
        let board = Arc::new(HandSetBoard::default());
        board.wall.store(1000 * S, Relaxed);
        let clock = Clock::on(board.clone());
        // The timekeeper corrected the clock by +1 h.
        clock.adjust(1000 * S, 3600 * S, Authority::Source);
        assert_eq!(clock.now_nanos(), 4600 * S);
        // One second later the OS steps the board clock by the same hour.
        board.wall.store(4601 * S, Relaxed);
        board.steady.store(S, Relaxed);
        assert_eq!(clock.now_nanos(), 4601 * S, "the hour is not added twice");
        assert_eq!(clock.board_steps(), 1);
        // Drift (small changes) is not a step.
        board.wall.store(4602 * S + 1_000_000, Relaxed);
        board.steady.store(2 * S, Relaxed);
        assert_eq!(clock.board_steps(), 1);
    }

    #[test]
    fn clock_never_goes_backwards() {
        let clock = Clock::new();
        assert!(clock.now_millis() > 1_577_836_800_000);
        clock.inner.lock().unwrap().last_millis = i64::MAX / 2;
        assert_eq!(clock.now_millis(), i64::MAX / 2);
    }

    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_755_000_000), "2026-11-27T04:50:00Z");
    }
}
