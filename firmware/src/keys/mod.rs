//! The node's keys and sealed secrets, and which backend holds them.
//!
//! Opened once at start ([`Keys::open`]) and handed to the rest of the program as HAL
//! traits: the node identity signs through a [`Keystore`], the LAN CA through an
//! [`EcdsaKeystore`], and secrets kept in `data.db` (key seeds, the ACME account key,
//! certificate keys) are sealed through a [`Sealer`]. Nothing else knows whether a TPM
//! is there.
//!
//! - **software** (the default without a TPM): seeds and secrets are sealed with a key
//!   derived from `machine.key`, a file beside `data.db` (mode 0600). A stolen backup
//!   of `data.db` reveals nothing; someone who reads the whole disk does.
//! - **tpm** (cargo feature `tpm`): the LAN CA's P-256 key is made inside the TPM and
//!   never leaves it; a random wrapping key is sealed by the TPM and seals the rest
//!   (TPM 2.0 has no Ed25519, so the identity seed is sealed, not held, by the TPM).
//!   The disk alone reveals nothing; the database opens only on this machine.
//!
//! A database moved to another machine (or whose `machine.key` was lost, or whose TPM
//! is another one) cannot open what was sealed: the node then does not start, and says
//! what stays behind and what `fazt keys reset` would regenerate. It never throws keys
//! away on its own: a missing file or a wrong TPM may be a mistake the user can undo.

pub mod list;
pub mod relabel;
pub mod rotate;
pub mod sealed_text;
pub mod store;
pub mod sweep;
mod tpm;

use crate::config::{NodeConfig, Setting};
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::keystore::devices::{KeyBackend, KeyDevices};
use fazt_hal::keystore::{
    machine_secret, AeadSealer, EcdsaKeystore, EcdsaPublicKey, Error, KeyOrigin, Keystore, Sealer,
    SoftwareKeystore,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::DbKeyStore;
pub use tpm::Tpm;

/// The `node_keys` row of the TPM-sealed wrapping key.
pub const MACHINE_KEY_ROW: &str = "machine-key";
/// Its algorithm column.
pub const TPM_SEALED: &str = "tpm-sealed";
/// The algorithm column of a P-256 key held in a TPM.
pub const P256_TPM: &str = "p256-tpm";
/// The `node_keys` row holding a known value sealed with the current wrapping key, so
/// that which key is current can always be told (see [`rotate::finish_interrupted`]).
pub const CANARY_ROW: &str = "machine-check";
/// Its algorithm column.
pub const CANARY: &str = "canary";
/// The value it seals.
pub(crate) const CANARY_VALUE: &[u8] = b"fazt machine key check";

/// How the keys are opened.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// Which device holds them (the HAL's choice of TPM or software).
    pub devices: KeyDevices,
    /// The machine secret file of the software backend.
    pub machine_key: PathBuf,
}

impl KeySettings {
    /// The settings of the node whose database is `data`.
    pub fn from_config(config: &NodeConfig, data: &Path) -> Self {
        KeySettings { devices: key_devices(config), machine_key: machine_key_path(data) }
    }
}

/// The key devices the configuration asks for (`keys.backend`, `keys.tpm_tcti`,
/// `keys.tpm_fallback`), for the HAL.
pub fn key_devices(config: &NodeConfig) -> KeyDevices {
    KeyDevices {
        backend: match config.get(Setting::KeysBackend) {
            "software" => KeyBackend::Software,
            "tpm" => KeyBackend::Tpm,
            _ => KeyBackend::Auto,
        },
        tcti: config.get(Setting::KeysTpmTcti).to_string(),
        fallback: config.get_bool(Setting::KeysTpmFallback),
    }
}

/// Where the machine secret of the node whose database is `data` lives: `machine.key`
/// in the same directory (outside the database, so a backup does not carry it).
pub fn machine_key_path(data: &Path) -> PathBuf {
    let dir = data.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join("machine.key")
}

/// Why the keys could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A TPM was asked for and this build has none.
    #[error("keys.backend is tpm, but this fazt was built without TPM support (build it with --features tpm, or run `fazt config set keys.backend software`)")]
    NotCompiled,
    /// A TPM was asked for and is not usable.
    #[error("keys.backend is tpm and the TPM is not usable: {0} (check keys.tpm_tcti, or set keys.tpm_fallback true to run on the software keystore)")]
    TpmUnavailable(Error),
    /// Secrets in the database were sealed elsewhere and cannot be opened here.
    #[error("this database's secrets were sealed on another machine (or with another machine.key or TPM) and cannot be opened here: {lost}. Keys held by another machine's TPM stay behind with it. Start the node where the database came from (or put that machine's machine.key beside data.db); to keep the data and make new keys instead, stop here and run `fazt keys reset --yes`")]
    SealedElsewhere {
        /// What cannot be opened, and what reset does about each.
        lost: String,
    },
    /// The machine key file is missing while the database holds secrets sealed with it.
    #[error("{path} is missing, and {count} secret(s) in the database were sealed with it. Put the machine.key of this node back beside data.db (from where the database came from); to make new keys instead, run `fazt keys reset --yes`")]
    MachineKeyMissing {
        /// The expected file.
        path: String,
        /// How many secrets it sealed.
        count: usize,
    },
    /// Keys are held by a TPM that is not available now.
    #[error("this node's keys ({held}) are held by a TPM, which is not available: {why}. Fix the TPM (or keys.tpm_tcti); to give the node new keys instead, run `fazt keys reset`")]
    TpmHeld {
        /// The keys held there.
        held: String,
        /// Why the TPM is not available.
        why: String,
    },
    /// A keystore operation failed.
    #[error(transparent)]
    Keystore(#[from] Error),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for KeysError {
    fn from(err: rusqlite::Error) -> Self {
        KeysError::Storage(err.into())
    }
}

/// Where the keys are held, for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Sealed with a machine secret file.
    Software {
        /// The file.
        machine_key: PathBuf,
    },
    /// In and sealed by a TPM.
    Tpm {
        /// Its vendor string.
        vendor: String,
        /// How it is reached.
        tcti: String,
    },
}

impl Holder {
    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            Holder::Software { machine_key } => format!("software (sealed with {})", machine_key.display()),
            Holder::Tpm { vendor, tcti } => format!("TPM 2.0 '{vendor}' at {tcti}"),
        }
    }
}

/// The node's keystores, opened.
#[derive(Debug)]
pub struct Keys {
    /// Ed25519 keys: the node identity.
    pub identity: Arc<dyn Keystore>,
    /// P-256 keys: the LAN CA.
    pub ecdsa: Arc<dyn EcdsaKeystore>,
    /// Seals secrets kept in `data.db`.
    pub sealer: Arc<dyn Sealer>,
    /// Where they are held.
    pub holder: Holder,
    /// What the start-up sweep did.
    pub report: sweep::Report,
    /// The TPM, when the keys are held by one.
    pub tpm: Option<Arc<Tpm>>,
}

impl Keys {
    /// Opens the keys of the node in `storage`: connects the TPM if configured, makes
    /// the wrapping key on first use and seals what older versions stored in the clear;
    /// fails, changing nothing, if a secret cannot be opened here (see the module docs).
    pub fn open(
        storage: &Arc<Storage>,
        clock: &Arc<Clock>,
        settings: &KeySettings,
    ) -> Result<Keys, KeysError> {
        rotate::finish_interrupted(storage, &settings.machine_key)?;
        let held = tpm_held(storage)?;
        let tpm = tpm::connect(settings, &held)?;
        let file_sealer = |path: &Path| -> Result<Arc<AeadSealer>, Error> {
            let (secret, created) = machine_secret(path)?;
            if created {
                tracing::info!(path = %path.display(), "created the machine secret that seals this node's keys (keep it out of backups)");
            }
            Ok(Arc::new(AeadSealer::new(secret, KeyOrigin::MachineFile, &path.display().to_string())))
        };
        let key_exists = settings.machine_key.try_exists().map_err(|e| Error::Storage {
            what: format!("looking for {}", settings.machine_key.display()),
            err: Box::new(e),
        })?;
        let file_sealed = sealed_by(storage, KeyOrigin::MachineFile)?;
        let mut new_rows = Vec::new();
        let (sealer, previous, holder): (Arc<dyn Sealer>, Option<Arc<AeadSealer>>, Holder) = match &tpm {
            Some(t) => {
                // Rows sealed before the TPM was used open with the file key, if it is
                // still there; the sweep seals them again under the TPM's key.
                let previous = match key_exists && file_sealed > 0 {
                    true => Some(file_sealer(&settings.machine_key)?),
                    false => None,
                };
                let (sealer, new_key) = tpm::wrapping_sealer(storage, t)?;
                new_rows.extend(new_key);
                (sealer, previous, tpm::holder(t))
            }
            None => {
                // Never make a new machine key over secrets the old one sealed: that
                // would make them unreadable for good.
                if !key_exists && file_sealed > 0 {
                    return Err(KeysError::MachineKeyMissing {
                        path: settings.machine_key.display().to_string(),
                        count: file_sealed,
                    });
                }
                (
                    file_sealer(&settings.machine_key)?,
                    None,
                    Holder::Software { machine_key: settings.machine_key.clone() },
                )
            }
        };
        if store::raw_row(storage, CANARY_ROW)?.is_none() {
            let material = sealer.seal(&store::seal_label(CANARY_ROW), CANARY_VALUE)?;
            new_rows.push(sweep::NewRow { name: CANARY_ROW, algorithm: CANARY, material });
        }
        // Before the sweep: values still sealed under an app's old id would look damaged.
        relabel::run(storage, sealer.as_ref(), previous.as_deref().map(|s| s as &dyn Sealer))?;
        let report = sweep::run(
            storage,
            sealer.as_ref(),
            previous.as_deref().map(|s| s as &dyn Sealer),
            tpm.as_deref(),
            new_rows,
            clock.now_millis(),
        )?;
        if report.sealed > 0 {
            tracing::info!(
                count = report.sealed,
                "sealed secrets under the current key (kept in the clear by an older version, or moved under the TPM)"
            );
        }
        let db = DbKeyStore::new(storage.clone(), clock.clone(), sealer.clone());
        let software = Arc::new(SoftwareKeystore::new(db.clone()));
        let ecdsa: Arc<dyn EcdsaKeystore> = match &tpm {
            Some(t) => Arc::new(Routed {
                software: software.clone(),
                tpm: tpm::keystore(t.clone(), db),
                storage: storage.clone(),
            }),
            None => software.clone(),
        };
        Ok(Keys { identity: software, ecdsa, sealer, holder, report, tpm })
    }
}

/// How many live secrets (keys and sealed text) `origin` sealed.
fn sealed_by(storage: &Storage, origin: KeyOrigin) -> Result<usize, StorageError> {
    Ok(list::list(storage)?
        .iter()
        .filter(|e| !e.name.contains('@') && e.name != CANARY_ROW && e.sealed_by == Some(origin.name()))
        .count())
}

/// Whether `sealer` opens the canary row: `None` when there is no canary.
pub fn opens_canary(storage: &Storage, sealer: &dyn Sealer) -> Result<Option<bool>, KeysError> {
    Ok(store::raw_row(storage, CANARY_ROW)?.map(|(_, blob)| {
        sealer.unseal(&store::seal_label(CANARY_ROW), &blob).is_ok_and(|v| v == CANARY_VALUE)
    }))
}

/// The names of keys held or sealed by a TPM.
pub fn tpm_held(storage: &Storage) -> Result<Vec<String>, StorageError> {
    storage.read_blocking(|c| {
        let mut stmt = c.prepare(
            "SELECT name FROM node_keys WHERE algorithm IN ('tpm-sealed', 'p256-tpm') AND name NOT LIKE '%@%' ORDER BY name",
        )?;
        let names = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    })
}

/// P-256 keys in TPM mode: a key made before the TPM was used stays in software (sealed
/// by the TPM's key) until it is rotated; new keys are made inside the TPM.
#[derive(Debug)]
struct Routed {
    software: Arc<SoftwareKeystore<DbKeyStore>>,
    tpm: Arc<dyn EcdsaKeystore>,
    storage: Arc<Storage>,
}

impl Routed {
    fn pick(&self, name: &str) -> Result<&dyn EcdsaKeystore, Error> {
        match store::raw_row(&self.storage, name)? {
            Some((algorithm, _)) if algorithm == "p256" => Ok(self.software.as_ref()),
            _ => Ok(self.tpm.as_ref()),
        }
    }
}

impl EcdsaKeystore for Routed {
    fn ecdsa_public_key(&self, name: &str) -> Result<EcdsaPublicKey, Error> {
        self.pick(name)?.ecdsa_public_key(name)
    }

    fn ecdsa_sign(&self, name: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.pick(name)?.ecdsa_sign(name, message)
    }
}
