//! The node's keys and sealed secrets: list them (names, algorithms, where each is
//! held; never a secret), rotate one, reset them all. Blocking; rotating and resetting
//! need the node stopped, which the CLI makes sure of (it holds the data-file lock).

use super::{Caller, Kind, SyscallError};
use crate::keys::{self, list::Entry, rotate::Target, KeySettings, KeysError};
use crate::storage::Storage;
use crate::time::Clock;
use std::sync::Arc;

impl From<KeysError> for SyscallError {
    fn from(err: KeysError) -> Self {
        match err {
            KeysError::Storage(storage) => storage.into(),
            other => SyscallError::refused(Kind::Internal, "keys_error", other.to_string()),
        }
    }
}

/// Every key and sealed secret, and where each is held.
pub fn list(storage: &Storage, caller: &Caller) -> Result<Vec<Entry>, SyscallError> {
    caller.require_admin()?;
    Ok(keys::list::list(storage)?)
}

/// Replaces the key `target`; answers what was done, for the user.
pub fn rotate(
    storage: &Arc<Storage>,
    clock: &Arc<Clock>,
    settings: &KeySettings,
    caller: &Caller,
    target: Target,
) -> Result<String, SyscallError> {
    caller.require_admin()?;
    Ok(keys::rotate::rotate(storage, clock, settings, target)?)
}

/// Sets every key aside so the node makes new ones at its next start; answers what was
/// done, line by line.
pub fn reset(storage: &Storage, clock: &Clock, caller: &Caller) -> Result<Vec<String>, SyscallError> {
    caller.require_admin()?;
    Ok(keys::rotate::reset(storage, clock)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_cannot_list_rotate_or_reset_keys() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let app = Caller::app("a");
        let settings = KeySettings::from_config(
            &crate::config::NodeConfig::load(&storage).unwrap(),
            &dir.path().join("data.db"),
        );
        assert_eq!(list(&storage, &app).unwrap_err().code(), "forbidden");
        let clock = Arc::new(Clock::new());
        assert_eq!(
            rotate(&storage, &clock, &settings, &app, Target::Machine).unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(reset(&storage, &clock, &app).unwrap_err().code(), "forbidden");
        assert!(list(&storage, &Caller::Local).unwrap().is_empty(), "nothing was made");
    }
}
