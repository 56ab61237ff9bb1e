//! The hardware of one node, chosen in one place.
//!
//! [`Hal::linux`] picks the real backends of the machine it runs on; [`Hal::fake`]
//! gives backends that touch no device and no network, so that a test process can
//! build many nodes side by side. The kernel takes what the bundle holds and never
//! names a backend itself.
//!
//! # Examples
//! ```
//! use fazt_hal::Hal;
//! let hal = Hal::fake();
//! assert_eq!(hal.rtc.read_secs().unwrap(), None, "a fake board has no RTC");
//! assert_eq!(hal.board.info().unwrap().model, "fake board");
//! ```

use crate::board::{Board, FixedBoard, LinuxBoard};
use crate::discovery::loopback::FakeLan;
use crate::discovery::mdns::MdnsLan;
use crate::discovery::Lan;
use crate::keystore::devices::{KeyBackend, KeyDevices};
use crate::time::{FakeClock, NoRtc, OffsetClock, Rtc, SysfsRtc, SystemClock, WallClock};
use std::sync::Arc;

/// What the real bundle is built from: plain values, which the caller reads from its
/// own configuration.
#[derive(Debug, Clone, Default)]
pub struct HalSettings {
    /// Pretend the board clock is this many milliseconds off, with no RTC (demos and
    /// tests of the timekeeper); `None`: the system clock and the board's RTC.
    pub clock_offset_ms: Option<i64>,
    /// Which keystore backend is asked for.
    pub key_backend: KeyBackend,
    /// How the TPM is reached, e.g. `device:/dev/tpmrm0`.
    pub tpm_tcti: String,
    /// Whether a required TPM that is not usable falls back to the software keystore.
    pub tpm_fallback: bool,
}

/// The devices a node uses. Fields are public so that a test can swap one backend
/// (say, a [`FakeClock`] it keeps a handle to) and keep the rest.
///
/// Audio is not here: a node neither plays nor records; `fazt chirp` opens the sound
/// device itself (see [`crate::audio`]).
pub struct Hal {
    /// The board's wall clock, which the kernel clock corrects.
    pub clock: Arc<dyn WallClock>,
    /// The battery-backed clock, or [`NoRtc`].
    pub rtc: Box<dyn Rtc>,
    /// Which machine this is.
    pub board: Box<dyn Board>,
    /// Service discovery on the LAN, and the machine's addresses.
    pub lan: Arc<dyn Lan>,
    /// Where the keys are held: a TPM or the software keystore.
    pub keys: KeyDevices,
}

impl std::fmt::Debug for Hal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hal")
            .field("clock", &self.clock)
            .field("rtc", &self.rtc)
            .field("lan", &self.lan)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Hal {
    /// The real devices of a Linux machine: the system clock and `rtc0` (or a clock
    /// shifted by `clock_offset_ms` and no RTC), `/proc` and `/sys` for the board, mDNS
    /// on UDP 5353, and the keystore backend the settings ask for.
    pub fn linux(settings: &HalSettings) -> Self {
        let (clock, rtc): (Arc<dyn WallClock>, Box<dyn Rtc>) = match settings.clock_offset_ms {
            Some(offset) => (
                Arc::new(OffsetClock::new(Arc::new(SystemClock), offset.saturating_mul(1_000_000))),
                Box::new(NoRtc),
            ),
            None => (Arc::new(SystemClock), Box::new(SysfsRtc::default())),
        };
        Hal {
            clock,
            rtc,
            board: Box::new(LinuxBoard),
            lan: Arc::new(MdnsLan),
            keys: KeyDevices {
                backend: settings.key_backend,
                tcti: settings.tpm_tcti.clone(),
                fallback: settings.tpm_fallback,
            },
        }
    }

    /// Devices for a node inside a test process: a [`FakeClock`] at the system time, no
    /// RTC, a fixed board (1 GiB, 64 MiB resident), an in-memory LAN that finds nothing unless a test puts
    /// something on it, and the software keystore (its machine secret beside the data
    /// file).
    pub fn fake() -> Self {
        Hal {
            clock: Arc::new(FakeClock::new(0)),
            rtc: Box::new(NoRtc),
            // Several nodes share a test process: its real RSS would be no one's.
            board: Box::new(FixedBoard::new("fake board", 1 << 30).with_rss(64 << 20)),
            lan: Arc::new(FakeLan::default()),
            keys: KeyDevices::software(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mdns::Interfaces;

    #[test]
    fn the_fake_lan_finds_nothing_and_the_linux_clock_takes_the_offset() {
        let hal = Hal::fake();
        let (discovery, pump) = hal.lan.open(&Interfaces::Auto).unwrap();
        assert!(pump.is_none());
        discovery.browse("_fazt._tcp.local.").unwrap();
        assert!(discovery.events().try_recv().is_err(), "nothing on an empty fake LAN");
        let hal = Hal::linux(&HalSettings { clock_offset_ms: Some(3_600_000), ..HalSettings::default() });
        let ahead = hal.clock.now_nanos() - SystemClock.now_nanos();
        assert!(ahead > 3_500_000_000_000, "{ahead}");
        assert_eq!(hal.rtc.read_secs().unwrap(), None);
    }
}
