//! The TPM side of opening the keys (cargo feature `tpm`). Without the feature, [`Tpm`]
//! is a type with no values, so the same code paths compile and a node that finds
//! TPM-held keys in its database says clearly that this build cannot open them.

use super::{Backend, Holder, KeySettings, KeysError};
use crate::storage::Storage;
use fazt_hal::keystore::{EcdsaKeystore, Error, Sealer};
use std::sync::Arc;

#[cfg(feature = "tpm")]
pub use fazt_hal::keystore::tpm::Tpm;

/// Stands in for the TPM in a build without the `tpm` feature: there never is one.
#[cfg(not(feature = "tpm"))]
#[derive(Debug)]
pub enum Tpm {}

fn held_error(held: &[String], why: String) -> KeysError {
    KeysError::TpmHeld { held: held.join(", "), why }
}

/// Connects the TPM if the settings (or keys already held there) ask for one.
#[cfg(feature = "tpm")]
pub(super) fn connect(settings: &KeySettings, held: &[String]) -> Result<Option<Arc<Tpm>>, KeysError> {
    let wanted = match settings.backend {
        Backend::Software => false,
        // Keys already held by a TPM: try it, so that the error says what is wrong.
        Backend::Auto if !held.is_empty() => true,
        Backend::Tpm => true,
        // Only try a TPM that exists: on most laptops there is no /dev/tpmrm0.
        Backend::Auto => match settings.tcti.strip_prefix("device:") {
            Some(path) => std::path::Path::new(if path.is_empty() { "/dev/tpmrm0" } else { path }).exists(),
            None => true,
        },
    };
    if !wanted {
        return match held.is_empty() {
            true => Ok(None),
            false => Err(held_error(held, "keys.backend is software".into())),
        };
    }
    match Tpm::connect(&settings.tcti) {
        Ok(tpm) => {
            let info = tpm.info();
            tracing::info!(
                vendor = info.vendor,
                manufacturer = info.manufacturer,
                firmware = info.firmware,
                "keys held by the TPM"
            );
            Ok(Some(Arc::new(tpm)))
        }
        Err(err) if !held.is_empty() => Err(held_error(held, err.to_string())),
        Err(err) if settings.backend == Backend::Tpm && !settings.fallback => {
            Err(KeysError::TpmUnavailable(err))
        }
        Err(err) => {
            tracing::warn!(error = %err, "the TPM is not usable; keys are kept by the software keystore");
            Ok(None)
        }
    }
}

/// Connects the TPM if the settings (or keys already held there) ask for one.
#[cfg(not(feature = "tpm"))]
pub(super) fn connect(settings: &KeySettings, held: &[String]) -> Result<Option<Arc<Tpm>>, KeysError> {
    if !held.is_empty() {
        return Err(held_error(held, "this fazt was built without TPM support (cargo feature tpm)".into()));
    }
    match settings.backend {
        Backend::Tpm if !settings.fallback => Err(KeysError::NotCompiled),
        Backend::Tpm => {
            tracing::warn!("keys.backend is tpm, but this fazt was built without TPM support; keys are kept by the software keystore");
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The sealer whose wrapping key the TPM seals, made on first use. A wrapping key that
/// another TPM sealed (a moved database, a cleared TPM) is an error: nothing is made
/// over it (see `fazt keys reset`).
#[cfg(feature = "tpm")]
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

#[cfg(not(feature = "tpm"))]
pub(super) fn wrapping_sealer(
    _: &Arc<Storage>,
    tpm: &Arc<Tpm>,
) -> Result<(Arc<dyn Sealer>, Option<super::sweep::NewRow>), KeysError> {
    match **tpm {}
}

/// Where the keys are held.
#[cfg(feature = "tpm")]
pub(super) fn holder(tpm: &Tpm) -> Holder {
    Holder::Tpm { vendor: tpm.info().vendor.clone(), tcti: tpm.tcti().to_string() }
}

#[cfg(not(feature = "tpm"))]
pub(super) fn holder(tpm: &Tpm) -> Holder {
    match *tpm {}
}

/// P-256 keys made inside the TPM, blobs in `data.db`.
#[cfg(feature = "tpm")]
pub(super) fn keystore(tpm: Arc<Tpm>, db: super::store::DbKeyStore) -> Arc<dyn EcdsaKeystore> {
    Arc::new(fazt_hal::keystore::tpm::TpmKeystore::new(tpm, db))
}

#[cfg(not(feature = "tpm"))]
pub(super) fn keystore(tpm: Arc<Tpm>, _: super::store::DbKeyStore) -> Arc<dyn EcdsaKeystore> {
    match *tpm {}
}

/// Checks that the TPM can use the key in `blob` (one signature).
#[cfg(feature = "tpm")]
pub(super) fn check_key(tpm: &Tpm, name: &str, blob: &[u8]) -> Result<(), Error> {
    tpm.sign_p256(name, blob, b"fazt key check").map(|_| ())
}

#[cfg(not(feature = "tpm"))]
pub(super) fn check_key(tpm: &Tpm, _: &str, _: &[u8]) -> Result<(), Error> {
    match *tpm {}
}
