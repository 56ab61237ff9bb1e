//! Whether the node's storage is nearly full: the disk under `data.db`, and `data.db`
//! against `storage.max_db_bytes`. Checked now and then by the node, which puts a
//! `storage.near_full` event on the bus when the answer turns from no to yes.

/// Nearly full from this share of the disk (or of the cap) used...
const NEAR_FULL: f64 = 0.90;
/// ...and no longer, so that the next crossing is an event again, below this one. The
/// gap keeps a disk hovering at the line from raising an event per check.
const CLEAR: f64 = 0.85;

/// One look at the storage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Bytes free on the disk holding `data.db`, for unprivileged writers.
    pub disk_free: u64,
    /// The disk's size.
    pub disk_total: u64,
    /// `data.db` with its WAL.
    pub db_bytes: u64,
    /// `storage.max_db_bytes` (0: no cap).
    pub db_cap: u64,
}

impl Reading {
    /// The larger of the two shares used: the disk's, and the database's of its cap.
    pub fn used_share(&self) -> f64 {
        let disk = match self.disk_total {
            0 => 0.0,
            total => 1.0 - self.disk_free.min(total) as f64 / total as f64,
        };
        let db = match self.db_cap {
            0 => 0.0,
            cap => self.db_bytes as f64 / cap as f64,
        };
        disk.max(db)
    }
}

/// Remembers whether the storage was last seen nearly full.
#[derive(Debug, Default)]
pub struct NearFull {
    raised: bool,
}

impl NearFull {
    /// Takes a reading; true when it is the one that crossed into "nearly full".
    pub fn crossed(&mut self, reading: &Reading) -> bool {
        let share = reading.used_share();
        if !self.raised && share >= NEAR_FULL {
            self.raised = true;
            return true;
        }
        if self.raised && share < CLEAR {
            self.raised = false;
        }
        false
    }
}

/// Reads the disk and the database sizes for `data` (blocking: a few syscalls).
pub fn read(data: &std::path::Path, db_bytes: u64, db_cap: u64) -> std::io::Result<Reading> {
    let dir = match data.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    Ok(Reading {
        disk_free: fs2::available_space(dir)?,
        disk_total: fs2::total_space(dir)?,
        db_bytes,
        db_cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(free: u64) -> Reading {
        Reading { disk_free: free, disk_total: 100, db_bytes: 0, db_cap: 0 }
    }

    #[test]
    fn raised_once_per_crossing_with_a_gap_before_the_next() {
        let mut watch = NearFull::default();
        assert!(!watch.crossed(&disk(50)));
        assert!(watch.crossed(&disk(10)), "90 % used");
        assert!(!watch.crossed(&disk(5)), "still full: no second event");
        assert!(!watch.crossed(&disk(12)), "88 %: inside the gap");
        assert!(!watch.crossed(&disk(9)), "never cleared, so no new event");
        assert!(!watch.crossed(&disk(20)), "80 %: cleared");
        assert!(watch.crossed(&disk(8)), "a new crossing is a new event");
    }

    #[test]
    fn the_database_cap_counts_too_and_odd_readings_do_not_panic() {
        let capped = Reading { disk_free: 90, disk_total: 100, db_bytes: 95, db_cap: 100 };
        assert!((capped.used_share() - 0.95).abs() < 1e-9);
        assert!(NearFull::default().crossed(&capped));
        let odd = Reading { disk_free: 500, disk_total: 0, db_bytes: 1, db_cap: 0 };
        assert_eq!(odd.used_share(), 0.0);
        let odd = Reading { disk_free: 500, disk_total: 100, db_bytes: 0, db_cap: 0 };
        assert_eq!(odd.used_share(), 0.0);
    }

    #[test]
    fn reads_a_real_disk() {
        let dir = tempfile::tempdir().unwrap();
        let reading = read(&dir.path().join("data.db"), 10, 0).unwrap();
        assert!(reading.disk_total > 0 && reading.disk_free <= reading.disk_total);
    }
}
