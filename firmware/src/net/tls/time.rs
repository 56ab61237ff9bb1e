//! The kernel clock as rustls's time source, so certificate validity and ticket ages
//! follow the one clock of the node (and the timekeeper's corrections).

use crate::time::Clock;
use rustls::time_provider::TimeProvider;
use rustls_pki_types::UnixTime;
use std::sync::Arc;
use std::time::Duration;

/// rustls asks this for the time.
#[derive(Debug)]
pub struct KernelTime(pub Arc<Clock>);

impl TimeProvider for KernelTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_millis(self.0.now_millis().max(0) as u64)))
    }
}
