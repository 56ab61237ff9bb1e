//! The TPM side of opening the keys. Whether there is a TPM is the HAL's choice
//! ([`fazt_hal::keystore::devices::KeyDevices::connect`]); in a build without the `tpm`
//! feature the HAL's [`Tpm`] is a type with no values, so these paths compile and a
//! node that finds TPM-held keys in its database says clearly that it cannot open them.

use super::{Holder, KeySettings, KeysError};
use crate::storage::Storage;
use fazt_hal::keystore::devices::{DeviceError, KeyDevice};
use fazt_hal::keystore::{EcdsaKeystore, Error, Sealer};
use std::sync::Arc;

pub use fazt_hal::keystore::tpm::Tpm;

/// Connects the TPM if the settings (or keys already held there, `held`) ask for one.
pub(super) fn connect(settings: &KeySettings, held: &[String]) -> Result<Option<Arc<Tpm>>, KeysError> {
    match settings.devices.connect(held) {
        Ok(KeyDevice::Tpm(tpm)) => {
            let info = tpm.info();
            tracing::info!(
                vendor = info.vendor,
                manufacturer = info.manufacturer,
                firmware = info.firmware,
                "keys held by the TPM"
            );
            Ok(Some(tpm))
        }
        Ok(KeyDevice::Software) => Ok(None),
        Ok(KeyDevice::FellBack(err)) => {
            tracing::warn!(error = %err, "the TPM is not usable; keys are kept by the software keystore");
            Ok(None)
        }
        Err(DeviceError::NotCompiled) => Err(KeysError::NotCompiled),
        Err(DeviceError::TpmUnavailable(err)) => Err(KeysError::TpmUnavailable(err)),
        Err(DeviceError::TpmHeld(why)) => Err(KeysError::TpmHeld { held: held.join(", "), why }),
    }
}

/// The sealer whose wrapping key the TPM seals, made on first use. A wrapping key that
/// another TPM sealed (a moved database, a cleared TPM) is an error: nothing is made
/// over it (see `fazt keys reset`).
pub(super) fn wrapping_sealer(
    storage: &Arc<Storage>,
    tpm: &Arc<Tpm>,
) -> Result<(Arc<dyn Sealer>, Option<super::sweep::NewRow>), KeysError> {
    use super::{MACHINE_KEY_ROW, TPM_SEALED};
    use fazt_hal::keystore::{AeadSealer, ErrorKind, KeyOrigin};
    let describe = format!("the TPM '{}'", tpm.info().vendor);
    let sealer = |key: Vec<u8>| -> Result<Arc<dyn Sealer>, KeysError> {
        let key: [u8; 32] = key.try_into().map_err(|_| Error::Corrupt(MACHINE_KEY_ROW.into()))?;
        Ok(Arc::new(AeadSealer::new(key, KeyOrigin::Tpm, &describe)))
    };
    if let Some((algorithm, blob)) = super::store::raw_row(storage, MACHINE_KEY_ROW)? {
        if algorithm == TPM_SEALED {
            match tpm.unseal(MACHINE_KEY_ROW, &blob) {
                Ok(key) => return Ok((sealer(key)?, None)),
                Err(err) if err.kind() == ErrorKind::SealedElsewhere => {
                    let held = super::tpm_held(storage)?;
                    return Err(KeysError::SealedElsewhere {
                        lost: format!(
                            "the wrapping key was sealed by another TPM (or this TPM was cleared), so every sealed secret is lost here, and the keys held by that TPM ({}) stay with it",
                            held.join(", ")
                        ),
                    });
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    // A new wrapping key. Its row is written by the sweep, in the same transaction as
    // the first secrets sealed with it, and only if the sweep finds nothing lost: a
    // start that refuses must leave the database as it was.
    // ThreadRng is a CSPRNG seeded from the OS.
    let key: [u8; 32] = rand::random();
    let blob = tpm.seal(&key)?;
    if tpm.unseal(MACHINE_KEY_ROW, &blob)? != key {
        return Err(Error::Device("the TPM returned another value than it sealed".into()).into());
    }
    let row = super::sweep::NewRow { name: MACHINE_KEY_ROW, algorithm: TPM_SEALED, material: blob };
    Ok((sealer(key.to_vec())?, Some(row)))
}

/// Where the keys are held.
pub(super) fn holder(tpm: &Tpm) -> Holder {
    Holder::Tpm { vendor: tpm.info().vendor.clone(), tcti: tpm.tcti().to_string() }
}

/// P-256 keys made inside the TPM, blobs in `data.db`.
pub(super) fn keystore(tpm: Arc<Tpm>, db: super::store::DbKeyStore) -> Arc<dyn EcdsaKeystore> {
    Arc::new(fazt_hal::keystore::tpm::TpmKeystore::new(tpm, db))
}

/// Checks that the TPM can use the key in `blob` (one signature).
pub(super) fn check_key(tpm: &Tpm, name: &str, blob: &[u8]) -> Result<(), Error> {
    tpm.sign_p256(name, blob, b"fazt key check").map(|_| ())
}
