//! Node settings: get one, set one (validated against the key table), list them.
//! Blocking (they read and write `data.db` at once): the CLI calls them directly, the
//! node from its blocking pool.

use super::{Caller, Kind, SyscallError};
use crate::config::{self as settings, ConfigError, NodeConfig, Setting};
use crate::storage::Storage;

impl From<ConfigError> for SyscallError {
    fn from(err: ConfigError) -> Self {
        match err {
            ConfigError::Storage(storage) => storage.into(),
            ConfigError::UnknownKey(_) => {
                SyscallError::refused(Kind::Invalid, "unknown_key", err.to_string())
            }
            ConfigError::BadValue { .. } => {
                SyscallError::refused(Kind::Invalid, "bad_value", err.to_string())
            }
        }
    }
}

/// The value of the setting `key` in the data file.
pub fn get(storage: &Storage, caller: &Caller, key: &str) -> Result<String, SyscallError> {
    caller.require_admin()?;
    let key = settings::validate_key(key)?;
    Ok(NodeConfig::load(storage)?.get(key).to_string())
}

/// Validates `value` for the setting `key` and stores it; answers it normalised. A
/// refused value changes nothing.
pub fn set(storage: &Storage, caller: &Caller, key: &str, value: &str) -> Result<String, SyscallError> {
    caller.require_admin()?;
    Ok(settings::set(storage, key, value)?)
}

/// Every setting with its value in `config`, in the key table's order.
pub fn list(config: &NodeConfig, caller: &Caller) -> Result<Vec<(Setting, String)>, SyscallError> {
    caller.require_admin()?;
    Ok(Setting::ALL.iter().map(|&key| (key, config.get(key).to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_cannot_read_settings_and_bad_values_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let app = Caller::app("a");
        assert_eq!(get(&storage, &app, "port").unwrap_err().code(), "forbidden");
        assert_eq!(set(&storage, &app, "port", "81").unwrap_err().code(), "forbidden");
        assert_eq!(list(&NodeConfig::load(&storage).unwrap(), &app).unwrap_err().code(), "forbidden");
        let before = get(&storage, &Caller::Local, "port").unwrap();
        assert_eq!(
            set(&storage, &Caller::Local, "port", "x; DROP TABLE config").unwrap_err().code(),
            "bad_value"
        );
        assert_eq!(set(&storage, &Caller::Local, "port", "99999999").unwrap_err().code(), "bad_value");
        assert_eq!(set(&storage, &Caller::Local, "nope", "1").unwrap_err().code(), "unknown_key");
        assert_eq!(get(&storage, &Caller::Local, "port").unwrap(), before, "nothing changed");
        assert_eq!(set(&storage, &Caller::Local, "port", "8081").unwrap(), "8081");
        assert_eq!(get(&storage, &Caller::Local, "port").unwrap(), "8081");
    }
}
