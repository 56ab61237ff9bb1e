//! The board's wall clock and its hardware RTC, the raw time the kernel clock corrects.
//!
//! The kernel never reads the system clock itself: it asks a [`WallClock`]. The real
//! backend is [`SystemClock`] (the Linux system clock, plus what the kernel knows about
//! whether something already keeps it synchronized); [`OffsetClock`] wraps another
//! clock with a fixed offset, so a test or a demo can run a node that believes it is
//! hours off without touching the host clock. [`Rtc`] reads a battery-backed clock
//! when the board has one ([`SysfsRtc`]), or says there is none ([`NoRtc`]).
//!
//! # Examples
//! ```
//! use fazt_hal::time::{OffsetClock, SystemClock, WallClock, SyncState};
//! use std::sync::Arc;
//! let real: Arc<dyn WallClock> = Arc::new(SystemClock);
//! let skewed = OffsetClock::new(real.clone(), 3_600_000_000_000);
//! let diff = skewed.now_nanos() - real.now_nanos();
//! assert!((diff - 3_600_000_000_000).abs() < 1_000_000_000);
//! assert_eq!(skewed.sync_state(), SyncState::Unsynchronized);
//! ```

mod rtc;

pub use rtc::{NoRtc, Rtc, SysfsRtc};

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (an i64 spans the years 1678 to 2262).
pub type UnixNanos = i64;

/// What the operating system knows about a clock's synchronization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Something (chrony, systemd-timesyncd, ntpd) keeps it synchronized; the kernel
    /// estimates its error at most `max_error_us` microseconds.
    Synchronized {
        /// The kernel's maximum-error estimate.
        max_error_us: i64,
    },
    /// Nothing keeps it synchronized (a Pi after boot, a container, a test clock).
    Unsynchronized,
    /// The platform cannot tell.
    Unknown,
}

/// A wall clock: what time the board believes it is.
pub trait WallClock: Send + Sync + Debug {
    /// Now, in nanoseconds since the Unix epoch, as this clock says.
    fn now_nanos(&self) -> UnixNanos;
    /// A clock that never jumps and counts suspended time (Linux `CLOCK_BOOTTIME`), in
    /// nanoseconds from an arbitrary start: how the kernel tells a step of the wall
    /// clock (by the OS, or by hand) from time passing.
    fn steady_nanos(&self) -> i64;
    /// Whether the operating system keeps this clock synchronized.
    fn sync_state(&self) -> SyncState;
}

/// The Linux system clock (`CLOCK_REALTIME`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_nanos(&self) -> UnixNanos {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
        }
    }

    fn steady_nanos(&self) -> i64 {
        boottime_nanos()
    }

    fn sync_state(&self) -> SyncState {
        kernel_sync_state()
    }
}

/// `CLOCK_BOOTTIME`: monotonic, and it keeps counting while the machine is suspended
/// (Rust's `Instant` does not, which would look like a wall-clock jump after a resume).
#[cfg(target_os = "linux")]
fn boottime_nanos() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; BOOTTIME always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return fallback_steady_nanos();
    }
    // The casts matter on 32-bit ARM, where time_t and long are 32 bits.
    #[allow(clippy::unnecessary_cast)]
    let (secs, nanos) = (ts.tv_sec as i64, ts.tv_nsec as i64);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(not(target_os = "linux"))]
fn boottime_nanos() -> i64 {
    fallback_steady_nanos()
}

fn fallback_steady_nanos() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// Asks the kernel (adjtimex with no changes) whether the system clock is synchronized.
#[cfg(target_os = "linux")]
fn kernel_sync_state() -> SyncState {
    // SAFETY: adjtimex with modes = 0 only reads; the struct is zeroed and owned here.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return SyncState::Unknown;
    }
    if state == libc::TIME_ERROR || tx.status & libc::STA_UNSYNC != 0 {
        SyncState::Unsynchronized
    } else {
        SyncState::Synchronized { max_error_us: tx.maxerror as i64 }
    }
}

#[cfg(not(target_os = "linux"))]
fn kernel_sync_state() -> SyncState {
    SyncState::Unknown
}

/// Another clock shifted by a fixed offset; never counts as synchronized. For tests
/// and demos of a board whose clock is wrong.
#[derive(Debug, Clone)]
pub struct OffsetClock {
    inner: Arc<dyn WallClock>,
    offset_nanos: i64,
}

impl OffsetClock {
    /// `inner` shifted by `offset_nanos` (positive: ahead).
    pub fn new(inner: Arc<dyn WallClock>, offset_nanos: i64) -> Self {
        OffsetClock { inner, offset_nanos }
    }
}

impl WallClock for OffsetClock {
    fn now_nanos(&self) -> UnixNanos {
        self.inner.now_nanos().saturating_add(self.offset_nanos)
    }

    fn steady_nanos(&self) -> i64 {
        self.inner.steady_nanos()
    }

    fn sync_state(&self) -> SyncState {
        SyncState::Unsynchronized
    }
}

/// The system clock shifted by an offset that can be changed while it runs (a test
/// stepping the board clock); never counts as synchronized. The steady clock does not
/// move with the offset, as with a real step.
#[derive(Debug, Default)]
pub struct FakeClock {
    offset_nanos: std::sync::atomic::AtomicI64,
}

impl FakeClock {
    /// The system clock shifted by `offset_nanos` (positive: ahead).
    pub fn new(offset_nanos: i64) -> Self {
        FakeClock { offset_nanos: offset_nanos.into() }
    }

    /// Shifts the clock to `offset_nanos` from the system clock, from now on.
    pub fn set_offset_nanos(&self, offset_nanos: i64) {
        self.offset_nanos.store(offset_nanos, std::sync::atomic::Ordering::Relaxed);
    }
}

impl WallClock for FakeClock {
    fn now_nanos(&self) -> UnixNanos {
        SystemClock.now_nanos().saturating_add(self.offset_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn steady_nanos(&self) -> i64 {
        SystemClock.steady_nanos()
    }

    fn sync_state(&self) -> SyncState {
        SyncState::Unsynchronized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_nanos() > 1_577_836_800_000_000_000);
        // Whatever the host says, the call must answer without failing.
        let _ = SystemClock.sync_state();
        let (a, b) = (SystemClock.steady_nanos(), SystemClock.steady_nanos());
        assert!(b >= a && a > 0);
    }

    #[test]
    fn fake_clock_moves_when_set() {
        let clock = FakeClock::new(0);
        let before = clock.now_nanos();
        clock.set_offset_nanos(3_600_000_000_000);
        assert!(clock.now_nanos() - before >= 3_600_000_000_000);
        assert_eq!(clock.sync_state(), SyncState::Unsynchronized);
    }

    #[test]
    fn offset_clock_saturates_instead_of_overflowing() {
        let clock = OffsetClock::new(Arc::new(SystemClock), i64::MAX);
        assert_eq!(clock.now_nanos(), i64::MAX);
    }
}
