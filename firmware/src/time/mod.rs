//! The kernel clock: the one place fazt reads the time of day.
//!
//! Every timestamp (sessions, tokens, deploys, logs) comes from [`Clock`], never straight
//! from the system clock, so that the timekeeper can later correct it (NTP, peers, RTC)
//! in one place. Today it reads the system clock and never goes backwards within a run.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub type UnixMillis = i64;

/// The kernel clock. Cheap to share (`Arc<Clock>`); reads are lock-free.
#[derive(Debug, Default)]
pub struct Clock {
    /// The largest value handed out so far: a system clock stepped backwards (NTP on a
    /// laptop, a Pi without RTC) must not make new rows look older than earlier ones.
    last: AtomicI64,
}

impl Clock {
    /// A clock that follows the system clock.
    pub fn new() -> Self {
        Clock { last: AtomicI64::new(0) }
    }

    /// Now, in milliseconds since the Unix epoch; never less than a previous answer.
    pub fn now_millis(&self) -> UnixMillis {
        let system =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64;
        let previous = self.last.fetch_max(system, Ordering::Relaxed);
        previous.max(system)
    }

    /// Now, as a `SystemTime` (for HTTP dates).
    pub fn now(&self) -> SystemTime {
        to_system_time(self.now_millis())
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

    #[test]
    fn clock_never_goes_backwards() {
        let clock = Clock::new();
        clock.last.store(i64::MAX / 2, Ordering::Relaxed);
        assert_eq!(clock.now_millis(), i64::MAX / 2);
    }

    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_755_000_000), "2026-11-27T04:50:00Z");
    }
}
