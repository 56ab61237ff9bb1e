//! Board information: which machine a node runs on and how much memory it has and uses.
//!
//! # Examples
//! ```
//! use fazt_hal::board::{Board, FixedBoard};
//! let board = FixedBoard::new("test board", 1 << 30);
//! assert_eq!(board.info().unwrap().model, "test board");
//! ```

use std::fs;
use std::io;
use std::path::Path;

/// What kind of failure a board backend met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The information is not available on this machine.
    Unsupported,
    /// Any other failure.
    Other,
}

/// Error of a board backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a system file failed.
    #[error("cannot read {path}: {err} (is /proc mounted?)")]
    Read {
        /// The file that could not be read.
        path: String,
        /// The underlying error.
        err: io::Error,
    },
    /// The platform has no way to tell.
    #[error("board information is not available on this platform")]
    Unsupported,
}

impl Error {
    /// The kind of this error, for generic code that matches on it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unsupported => ErrorKind::Unsupported,
            Error::Read { .. } => ErrorKind::Other,
        }
    }
}

/// Static facts about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardInfo {
    /// Human-readable model, e.g. "Raspberry Pi 4 Model B Rev 1.4" or "QEMU Standard PC".
    pub model: String,
    /// Total memory in bytes (0 when unknown).
    pub memory_total_bytes: u64,
    /// Number of CPUs available to this process.
    pub cpus: usize,
}

/// A source of board information and process memory use.
///
/// # Note for implementers
/// `info` is called rarely (health pages) and may read files; it must not block for long.
pub trait Board: Send + Sync {
    /// Facts about the machine.
    fn info(&self) -> Result<BoardInfo, Error>;

    /// Resident memory of this process in bytes, when the platform can tell.
    fn process_rss_bytes(&self) -> Result<u64, Error> {
        Err(Error::Unsupported)
    }
}

/// The real backend: reads Linux's /proc and /sys.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxBoard;

impl LinuxBoard {
    fn read(path: &str) -> Result<String, Error> {
        fs::read_to_string(path).map_err(|err| Error::Read { path: path.into(), err })
    }

    fn model() -> String {
        // Device-tree boards (every Pi) name themselves here; x86 machines use DMI.
        if let Ok(model) = Self::read("/proc/device-tree/model") {
            return model.trim_end_matches('\0').trim().to_string();
        }
        let vendor = Self::read("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
        let product = Self::read("/sys/class/dmi/id/product_name").unwrap_or_default();
        let model = format!("{} {}", vendor.trim(), product.trim());
        let model = model.trim();
        if model.is_empty() {
            "unknown".into()
        } else {
            model.into()
        }
    }
}

/// Reads the `kB` value of `key` from a /proc status-style text.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

impl Board for LinuxBoard {
    fn info(&self) -> Result<BoardInfo, Error> {
        if !Path::new("/proc/meminfo").exists() {
            return Err(Error::Unsupported);
        }
        let meminfo = Self::read("/proc/meminfo")?;
        Ok(BoardInfo {
            model: Self::model(),
            memory_total_bytes: kb_field(&meminfo, "MemTotal:").unwrap_or(0),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    }

    fn process_rss_bytes(&self) -> Result<u64, Error> {
        let status = Self::read("/proc/self/status")?;
        kb_field(&status, "VmRSS:").ok_or(Error::Unsupported)
    }
}

/// A fixed backend for tests and unknown platforms.
#[derive(Debug, Clone)]
pub struct FixedBoard {
    info: BoardInfo,
    rss_bytes: Option<u64>,
}

impl FixedBoard {
    /// A board that reports the given model and memory size and one CPU, and cannot
    /// tell the process's memory use.
    pub fn new(model: &str, memory_total_bytes: u64) -> Self {
        FixedBoard { info: BoardInfo { model: model.into(), memory_total_bytes, cpus: 1 }, rss_bytes: None }
    }

    /// The same board, reporting `bytes` as the process's resident memory.
    pub fn with_rss(mut self, bytes: u64) -> Self {
        self.rss_bytes = Some(bytes);
        self
    }
}

impl Board for FixedBoard {
    fn info(&self) -> Result<BoardInfo, Error> {
        Ok(self.info.clone())
    }

    fn process_rss_bytes(&self) -> Result<u64, Error> {
        self.rss_bytes.ok_or(Error::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_field_parses_proc_lines() {
        let text = "Name:\tfazt\nVmRSS:\t    1234 kB\n";
        assert_eq!(kb_field(text, "VmRSS:"), Some(1234 * 1024));
        assert_eq!(kb_field(text, "VmHWM:"), None);
        assert_eq!(kb_field("VmRSS: lots kB", "VmRSS:"), None);
    }

    #[test]
    fn linux_board_reports_memory() {
        let info = LinuxBoard.info().unwrap();
        assert!(info.memory_total_bytes > 0);
        assert!(LinuxBoard.process_rss_bytes().unwrap() > 0);
    }
}
