//! Which device holds a node's keys: a TPM, or nothing (the software keystore, sealed
//! with a machine secret file). The one place that decides; the kernel asks
//! [`KeyDevices::connect`] and gets a TPM or not.

use super::tpm::{Tpm, COMPILED};
use super::Error;
use std::sync::Arc;

/// Which keystore backend is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyBackend {
    /// The TPM when there is one (its device exists), the software keystore otherwise.
    #[default]
    Auto,
    /// Never a TPM.
    Software,
    /// A TPM, or an error (unless the fallback is allowed).
    Tpm,
}

/// How a node's keys are to be held.
#[derive(Debug, Clone, Default)]
pub struct KeyDevices {
    /// The backend asked for.
    pub backend: KeyBackend,
    /// How the TPM is reached, e.g. `device:/dev/tpmrm0`.
    pub tcti: String,
    /// Whether a TPM asked for but not usable falls back to the software keystore.
    pub fallback: bool,
}

/// What [`KeyDevices::connect`] found.
#[derive(Debug)]
pub enum KeyDevice {
    /// The keys are held by this TPM.
    Tpm(Arc<Tpm>),
    /// The software keystore, as asked (or no TPM exists and none was required).
    Software,
    /// A TPM was wanted but is not usable; the software keystore is used instead.
    FellBack(Error),
}

/// Why no key device could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A TPM is required and this build has no TPM support.
    #[error("this build has no TPM support")]
    NotCompiled,
    /// A TPM is required and is not usable.
    #[error("the TPM is not usable: {0}")]
    TpmUnavailable(Error),
    /// Keys are already held by a TPM, and that TPM cannot be used.
    #[error("keys are held by a TPM, which is not available: {0}")]
    TpmHeld(String),
}

impl KeyDevices {
    /// Only the software keystore.
    pub fn software() -> Self {
        KeyDevices { backend: KeyBackend::Software, tcti: String::new(), fallback: false }
    }

    /// Connects the TPM if the settings, or keys already held by one (`held`, their
    /// names), ask for it.
    pub fn connect(&self, held: &[String]) -> Result<KeyDevice, DeviceError> {
        if !COMPILED {
            if !held.is_empty() {
                return Err(DeviceError::TpmHeld(
                    "this fazt was built without TPM support (cargo feature tpm)".into(),
                ));
            }
            return match self.backend {
                KeyBackend::Tpm if !self.fallback => Err(DeviceError::NotCompiled),
                KeyBackend::Tpm => {
                    Ok(KeyDevice::FellBack(Error::Device("this fazt was built without TPM support".into())))
                }
                _ => Ok(KeyDevice::Software),
            };
        }
        let wanted = match self.backend {
            KeyBackend::Software => false,
            // Keys already held by a TPM: try it, so that the error says what is wrong.
            KeyBackend::Auto if !held.is_empty() => true,
            KeyBackend::Tpm => true,
            // Only try a TPM that exists: on most laptops there is no /dev/tpmrm0.
            KeyBackend::Auto => match self.tcti.strip_prefix("device:") {
                Some(path) => {
                    std::path::Path::new(if path.is_empty() { "/dev/tpmrm0" } else { path }).exists()
                }
                None => true,
            },
        };
        if !wanted {
            return match held.is_empty() {
                true => Ok(KeyDevice::Software),
                false => Err(DeviceError::TpmHeld("keys.backend is software".into())),
            };
        }
        match Tpm::connect(&self.tcti) {
            Ok(tpm) => Ok(KeyDevice::Tpm(Arc::new(tpm))),
            Err(err) if !held.is_empty() => Err(DeviceError::TpmHeld(err.to_string())),
            Err(err) if self.backend == KeyBackend::Tpm && !self.fallback => {
                Err(DeviceError::TpmUnavailable(err))
            }
            Err(err) => Ok(KeyDevice::FellBack(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_never_touches_a_tpm_and_refuses_held_keys() {
        assert!(matches!(KeyDevices::software().connect(&[]), Ok(KeyDevice::Software)));
        let held = vec!["lan-ca".to_string()];
        assert!(matches!(KeyDevices::software().connect(&held), Err(DeviceError::TpmHeld(_))));
    }

    #[test]
    fn a_required_tpm_that_is_not_there_is_an_error_unless_falling_back() {
        let devices =
            KeyDevices { backend: KeyBackend::Tpm, tcti: "device:/nonexistent/tpm".into(), fallback: false };
        assert!(devices.connect(&[]).is_err());
        let devices = KeyDevices { fallback: true, ..devices };
        assert!(matches!(devices.connect(&[]), Ok(KeyDevice::FellBack(_))));
    }
}
