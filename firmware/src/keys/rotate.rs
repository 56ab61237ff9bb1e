//! `fazt keys rotate`: replacing a key, with the node stopped.
//!
//! - `machine`: a new wrapping key; every sealed secret is opened with the old one and
//!   sealed with the new one in one transaction. With the software backend the new
//!   secret is written to `machine.key.new` first and renamed over `machine.key` after
//!   the commit; [`finish_interrupted`] completes or undoes a rotation that a crash cut
//!   between the two.
//! - `lan-ca`, `node`: the key is set aside; the next start makes a new one (in the TPM
//!   when there is one), with a new CA certificate or a new node id.
//! - `acme`: the stored ACME accounts are forgotten; the next order registers anew.

use super::{sealed_text, store, sweep, KeySettings, Keys, KeysError, MACHINE_KEY_ROW, P256_TPM, TPM_SEALED};
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::keystore::{machine_secret, AeadSealer, Error, KeyOrigin, Sealer};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The wrapping key that seals every secret.
    Machine,
    /// The LAN certificate authority's key (and so its certificate).
    LanCa,
    /// The node identity key (and so the node id).
    Node,
    /// The ACME account keys.
    Acme,
}

fn pending_path(machine_key: &Path) -> PathBuf {
    let mut name = machine_key.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Rotates `target` for the node in `storage` (which must be stopped); returns what
/// was done, for the user.
pub fn rotate(
    storage: &Arc<Storage>,
    clock: &Arc<Clock>,
    settings: &KeySettings,
    target: Target,
) -> Result<String, KeysError> {
    match target {
        Target::LanCa => {
            let renamed = format!("{}@orphaned-{}", crate::rules::keys::LAN_CA_KEY, clock.now_millis());
            storage.write_durable_blocking(|c| {
                let tx = c.transaction()?;
                tx.execute(
                    "UPDATE node_keys SET name = ?2 WHERE name = ?1",
                    params![crate::rules::keys::LAN_CA_KEY, renamed],
                )?;
                tx.execute("DELETE FROM lan_ca", [])?;
                tx.execute("DELETE FROM tls_certs WHERE source = 'lan'", [])?;
                tx.commit()?;
                Ok::<_, StorageError>(())
            })?;
            Ok("the LAN CA key was set aside; the next start makes a new CA (clients must download and trust its certificate again)".into())
        }
        Target::Node => {
            sweep::orphan(storage, clock, crate::rules::keys::NODE_KEY)?;
            Ok("the node identity key was set aside; the next start makes a new identity with a new node id"
                .into())
        }
        Target::Acme => {
            let n = storage
                .write_blocking(|c| Ok::<_, StorageError>(c.execute("DELETE FROM acme_accounts", [])?))?;
            Ok(format!("{n} ACME account(s) forgotten; the next certificate order registers a new account"))
        }
        Target::Machine => rotate_machine(storage, clock, settings),
    }
}

fn rotate_machine(
    storage: &Arc<Storage>,
    clock: &Arc<Clock>,
    settings: &KeySettings,
) -> Result<String, KeysError> {
    let keys = Keys::open(storage, clock, settings)?;
    let old = keys.sealer.clone();
    // ThreadRng is a CSPRNG seeded from the OS.
    let fresh: [u8; 32] = rand::random();
    match old.origin() {
        KeyOrigin::MachineFile => {
            let pending = pending_path(&settings.machine_key);
            let _ = std::fs::remove_file(&pending);
            let (secret, _) = machine_secret(&pending)?;
            let new =
                AeadSealer::new(secret, KeyOrigin::MachineFile, &settings.machine_key.display().to_string());
            // Durable: once machine.key is replaced the old key is gone, so the rows
            // sealed with the new one must be on disk first.
            let count = storage.write_durable_blocking(|c| {
                let tx = c.transaction()?;
                let n = reseal_all(&tx, old.as_ref(), &new)?;
                tx.commit()?;
                Ok::<_, KeysError>(n)
            })?;
            // Backups made before now were sealed with the old key: keep it beside,
            // for the user to move off the machine with those backups, or delete.
            let kept =
                PathBuf::from(format!("{}.before-{}", settings.machine_key.display(), clock.now_millis()));
            std::fs::hard_link(&settings.machine_key, &kept).map_err(|e| Error::Storage {
                what: format!("keeping {}", kept.display()),
                err: Box::new(e),
            })?;
            std::fs::rename(&pending, &settings.machine_key).map_err(|e| Error::Storage {
                what: format!("renaming {}", pending.display()),
                err: Box::new(e),
            })?;
            sync_dir(&settings.machine_key);
            Ok(format!(
                "{count} secret(s) sealed again under a new {}. Backups made before now need the old key, kept as {}: move it off this machine with those backups, or delete it if the old key is compromised",
                settings.machine_key.display(),
                kept.display()
            ))
        }
        KeyOrigin::Tpm => {
            let blob = seal_in_tpm(&keys, &fresh)?;
            let new = AeadSealer::new(fresh, KeyOrigin::Tpm, &old.describe());
            let count = storage.write_durable_blocking(|c| {
                let tx = c.transaction()?;
                let n = reseal_all(&tx, old.as_ref(), &new)?;
                let updated = tx.execute(
                    "UPDATE node_keys SET seed = ?2 WHERE name = ?1 AND algorithm = ?3",
                    params![MACHINE_KEY_ROW, blob, TPM_SEALED],
                )?;
                if updated != 1 {
                    // Committing would leave secrets sealed with a key stored nowhere.
                    return Err(Error::Corrupt(MACHINE_KEY_ROW.into()).into());
                }
                tx.commit()?;
                Ok::<_, KeysError>(n)
            })?;
            Ok(format!("{count} secret(s) sealed again under a new wrapping key sealed by the TPM"))
        }
    }
}

fn seal_in_tpm(keys: &Keys, key: &[u8; 32]) -> Result<Vec<u8>, KeysError> {
    let tpm = keys.tpm.as_ref().ok_or_else(|| Error::Device("the keys are not held by a TPM".into()))?;
    Ok(tpm.seal(key)?)
}

/// Opens every sealed secret with `old` and seals it with `new`; returns how many.
fn reseal_all(tx: &Connection, old: &dyn Sealer, new: &dyn Sealer) -> Result<usize, KeysError> {
    let mut count = 0;
    let rows: Vec<(String, Vec<u8>)> = tx
        .prepare("SELECT name, seed FROM node_keys WHERE name NOT LIKE '%@%' AND algorithm NOT IN (?1, ?2)")?
        .query_map([P256_TPM, TPM_SEALED], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, material) in rows {
        let label = store::seal_label(&name);
        let plain = match material.len() {
            32 => material,
            _ => old.unseal(&label, &material)?,
        };
        tx.execute(
            "UPDATE node_keys SET seed = ?2 WHERE name = ?1",
            params![name, new.seal(&label, &plain)?],
        )?;
        count += 1;
    }
    for secret in sealed_text::TEXT_SECRETS {
        for (id, stored, _) in secret.rows(tx)? {
            let label = secret.label(&id);
            let plain = sealed_text::open(old, &label, &stored)?;
            secret.update(tx, &id, &sealed_text::seal(new, &label, &plain)?)?;
            count += 1;
        }
    }
    Ok(count)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Completes a machine-key rotation that a crash interrupted: if `machine.key.new`
/// exists and the database's secrets open with it, the commit happened and the file is
/// renamed into place; otherwise the rotation never committed and the file is removed.
pub fn finish_interrupted(storage: &Storage, machine_key: &Path) -> Result<(), KeysError> {
    let pending = pending_path(machine_key);
    if !pending.exists() {
        return Ok(());
    }
    let (secret, _) = machine_secret(&pending)?;
    let new = AeadSealer::new(secret, KeyOrigin::MachineFile, &pending.display().to_string());
    // The canary is sealed again in the rotation's own transaction, so it tells
    // exactly whether that transaction committed.
    let committed = match super::opens_canary(storage, &new)? {
        Some(opens) => opens,
        None => {
            // No canary: a database from before canaries, whose rotation (by this
            // version) would have made one. Keep both files and say so.
            return Err(Error::Corrupt(format!(
                "{} (an interrupted rotation left it, and the database cannot tell whether it is current; move it away if machine.key works)",
                pending.display()
            ))
            .into());
        }
    };
    if committed {
        std::fs::rename(&pending, machine_key).map_err(|e| Error::Storage {
            what: format!("renaming {}", pending.display()),
            err: Box::new(e),
        })?;
        tracing::warn!("completed a machine key rotation that was interrupted");
    } else {
        // Not the current key: set it aside rather than delete it (it may be the key of
        // a newer copy of the database, if an older one was put back since).
        let aside = PathBuf::from(format!("{}.unused-{}", pending.display(), std::process::id()));
        let _ = std::fs::rename(&pending, &aside);
        tracing::warn!(file = %aside.display(), "an interrupted machine key rotation had not committed; its key was set aside");
    }
    sync_dir(machine_key);
    Ok(())
}

/// Sets every key aside and forgets every secret sealed with them (ACME accounts,
/// stored certificates, the LAN CA certificate, app environment values); the next
/// start makes new keys.
/// Returns what was done, for the user.
pub fn reset(storage: &Storage, clock: &Clock) -> Result<Vec<String>, KeysError> {
    let suffix = format!("@orphaned-{}", clock.now_millis());
    storage.write_blocking(|c| {
        let tx = c.transaction()?;
        let keys = tx.execute("UPDATE node_keys SET name = name || ?1 WHERE name NOT LIKE '%@%'", [&suffix])?;
        let accounts = tx.execute("DELETE FROM acme_accounts", [])?;
        let vars = tx.execute("DELETE FROM app_env", [])?;
        let custom: Vec<String> = tx
            .prepare("SELECT name FROM tls_certs WHERE source = 'custom' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let certs = tx.execute("DELETE FROM tls_certs", [])?;
        tx.execute("DELETE FROM lan_ca", [])?;
        tx.commit()?;
        let mut out = vec![
            format!("{keys} key(s) set aside; the next start makes a new node identity (a new node id) and a new LAN CA"),
            format!("{accounts} ACME account(s) and {certs} certificate(s) forgotten; ACME certificates are obtained again"),
        ];
        out.extend(custom.iter().map(|n| format!("custom certificate for {n} removed: add it again with `fazt cert add`")));
        if vars > 0 {
            out.push(format!("{vars} app environment variable(s) removed: set them again with `fazt app env set`"));
        }
        Ok(out)
    })
}
