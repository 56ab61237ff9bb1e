//! Battery-backed real-time clocks.

use std::io;
use std::path::PathBuf;

/// A hardware real-time clock, read in whole seconds.
pub trait Rtc: Send + Sync + std::fmt::Debug {
    /// Seconds since the Unix epoch as the RTC says, or `None` when the board has no RTC.
    fn read_secs(&self) -> io::Result<Option<i64>>;
}

/// The first RTC the Linux kernel exposes, read through sysfs
/// (`/sys/class/rtc/rtc0/since_epoch`), which needs no ioctl and no device node.
#[derive(Debug, Clone)]
pub struct SysfsRtc {
    path: PathBuf,
}

impl Default for SysfsRtc {
    fn default() -> Self {
        SysfsRtc { path: PathBuf::from("/sys/class/rtc/rtc0/since_epoch") }
    }
}

impl SysfsRtc {
    /// An RTC read from another `since_epoch` file (tests, a second RTC).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        SysfsRtc { path: path.into() }
    }
}

impl Rtc for SysfsRtc {
    fn read_secs(&self) -> io::Result<Option<i64>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text.trim().parse::<i64>().map(Some).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a number", self.path.display()))
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A board without an RTC (most Raspberry Pis).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRtc;

impl Rtc for NoRtc {
    fn read_secs(&self) -> io::Result<Option<i64>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_rtc_reads_a_file_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("since_epoch");
        assert_eq!(SysfsRtc::at(&path).read_secs().unwrap(), None, "no RTC");
        std::fs::write(&path, "1795755000\n").unwrap();
        assert_eq!(SysfsRtc::at(&path).read_secs().unwrap(), Some(1_795_755_000));
        std::fs::write(&path, "soon").unwrap();
        assert!(SysfsRtc::at(&path).read_secs().is_err());
        assert_eq!(NoRtc.read_secs().unwrap(), None);
    }
}
