//! The start-up sweep over every secret in `data.db`:
//! - a secret an older version stored in the clear is sealed;
//! - one sealed by the previous backend (the machine file, before a TPM was used) is
//!   sealed again by the current one.
//!
//! It first reads and judges everything, then writes all changes in one durable
//! transaction, so a power cut leaves either the old state or the new one.
//!
//! If anything cannot be opened here (the database came from another machine, or its
//! `machine.key` or TPM is not this one), the sweep changes nothing and fails with the
//! list of what is lost and what `fazt keys reset` would regenerate: keys are never
//! thrown away on the node's own initiative, since a wrong TPM or a missing file may be
//! a mistake that the user can still undo. Damaged values are left alone: the feature
//! that uses them reports them.

use super::{sealed_text, store, KeysError, Tpm, MACHINE_KEY_ROW, P256_TPM};
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::keystore::{Error, ErrorKind, Sealer};
use rusqlite::params;
use std::sync::Arc;

/// What the sweep did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Secrets newly sealed or sealed again under the current key.
    pub sealed: usize,
}

/// A `node_keys` row: name, algorithm, material, public key.
type KeyRow = (String, String, Vec<u8>, Option<Vec<u8>>);

/// What to do with one stored secret.
enum Verdict {
    Keep,
    /// Store this instead (sealed under the current key).
    Replace(Vec<u8>),
    /// It cannot be opened on this machine.
    Lost,
}

/// Opens `material` with the current sealer, else the previous one; decides.
fn judge(
    label: &str,
    material: &[u8],
    plain_len: Option<usize>,
    sealer: &dyn Sealer,
    previous: Option<&dyn Sealer>,
) -> Result<Verdict, Error> {
    if plain_len == Some(material.len()) {
        return Ok(Verdict::Replace(sealer.seal(label, material)?));
    }
    match sealer.unseal(label, material) {
        Ok(_) => Ok(Verdict::Keep),
        Err(err) if err.kind() == ErrorKind::SealedElsewhere => {
            match previous.map(|p| p.unseal(label, material)) {
                Some(Ok(plain)) => Ok(Verdict::Replace(sealer.seal(label, &plain)?)),
                _ => Ok(Verdict::Lost),
            }
        }
        Err(_) => Ok(Verdict::Keep),
    }
}

/// A `node_keys` row to insert with the sweep's changes (a new wrapping key, the
/// canary): written only if nothing is lost.
#[derive(Debug)]
pub struct NewRow {
    /// Its name.
    pub name: &'static str,
    /// Its algorithm column.
    pub algorithm: &'static str,
    /// Its material.
    pub material: Vec<u8>,
}

/// One change to write.
enum Change {
    Key { name: String, sealed: Vec<u8>, public: Option<Vec<u8>> },
    Text { secret: &'static sealed_text::TextSecret, id: String, stored: String },
}

/// Runs the sweep (see the module docs); `new_rows` are inserted in the same
/// transaction, and `now` stamps them.
pub fn run(
    storage: &Arc<Storage>,
    sealer: &dyn Sealer,
    previous: Option<&dyn Sealer>,
    tpm: Option<&Tpm>,
    new_rows: Vec<NewRow>,
    now: i64,
) -> Result<Report, KeysError> {
    let mut changes = Vec::new();
    let mut lost = Vec::new();
    // When the canary opens, the key is right: a row that does not open is damaged,
    // not sealed elsewhere, and is left for the feature that uses it to report.
    // Plain values are accepted (and sealed) only in a database from before sealing,
    // which has no canary yet; in any other, a plain value was planted by hand.
    let legacy = super::store::raw_row(storage, super::CANARY_ROW)?.is_none();
    let plain_seed = legacy.then_some(32);
    let canary = super::opens_canary(storage, sealer)?.unwrap_or(false)
        || previous.is_some_and(|p| super::opens_canary(storage, p).ok().flatten().unwrap_or(false));
    let mut damaged = Vec::new();
    let keys: Vec<KeyRow> = storage.read_blocking(|c| {
        let mut stmt = c.prepare(
            "SELECT name, algorithm, seed, public_key FROM node_keys WHERE name NOT LIKE '%@%' AND name != ?1",
        )?;
        let rows = stmt
            .query_map([MACHINE_KEY_ROW], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, StorageError>(rows)
    })?;
    for (name, algorithm, material, public) in keys {
        let label = store::seal_label(&name);
        let verdict = if algorithm == P256_TPM {
            match tpm {
                // A device error stops the start (`?`): a TPM that fails now must not
                // be taken for a TPM that never made the key.
                Some(tpm) => match super::tpm::check_key(tpm, &name, &material) {
                    Err(err) if err.kind() == ErrorKind::SealedElsewhere => Verdict::Lost,
                    Err(err) if err.kind() == ErrorKind::Device => return Err(err.into()),
                    _ => Verdict::Keep,
                },
                None => Verdict::Keep,
            }
        } else {
            judge(&label, &material, plain_seed, sealer, previous)?
        };
        match verdict {
            Verdict::Keep => {}
            Verdict::Replace(sealed) => {
                // The public key of a seed row, for listing without opening it.
                let public = public.or_else(|| {
                    let seed = match material.len() {
                        32 => material.clone(),
                        _ => previous?.unseal(&label, &material).ok()?,
                    };
                    store::public_of_seed(&algorithm, &seed.try_into().ok()?)
                });
                changes.push(Change::Key { name, sealed, public });
            }
            Verdict::Lost if canary => damaged.push(name),
            // A canary that no key opens (its key was lost while nothing else was
            // sealed with it) is simply made again under the current key.
            Verdict::Lost if name == super::CANARY_ROW => changes.push(Change::Key {
                sealed: sealer.seal(&label, super::CANARY_VALUE)?,
                name,
                public: None,
            }),
            Verdict::Lost => lost.push(lost_key_sentence(&name)),
        }
    }
    for secret in sealed_text::TEXT_SECRETS {
        let rows = storage.read_blocking(|c| Ok::<_, StorageError>(secret.rows(c)?))?;
        for (id, stored, source) in rows {
            let label = secret.label(&id);
            let verdict = match sealed_text::blob_of(&stored) {
                None if legacy => Verdict::Replace(sealed_text::seal(sealer, &label, &stored)?.into_bytes()),
                None => {
                    damaged.push(label.clone());
                    Verdict::Keep
                }
                Some(Err(())) => Verdict::Keep,
                Some(Ok(blob)) => match judge(&label, &blob, None, sealer, previous)? {
                    Verdict::Replace(sealed) => Verdict::Replace(sealed_text::encode(&sealed).into_bytes()),
                    other => other,
                },
            };
            match verdict {
                Verdict::Keep => {}
                Verdict::Replace(text) => {
                    let stored = String::from_utf8(text).expect("sealed text is ASCII");
                    changes.push(Change::Text { secret, id, stored });
                }
                Verdict::Lost if canary => damaged.push(secret.label(&id)),
                Verdict::Lost => lost.push(lost_text_sentence(secret.kind, &id, &source)),
            }
        }
    }
    if !lost.is_empty() {
        return Err(KeysError::SealedElsewhere { lost: lost.join("; ") });
    }
    for name in damaged {
        tracing::warn!(
            secret = name,
            "a sealed secret does not open, though the machine key is right: damaged; left as it is"
        );
    }
    let report = Report { sealed: changes.len() };
    if !changes.is_empty() || !new_rows.is_empty() {
        storage.write_durable_blocking(|c| {
            let tx = c.transaction()?;
            for row in &new_rows {
                tx.execute(
                    "INSERT INTO node_keys(name, algorithm, seed, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![row.name, row.algorithm, row.material, now],
                )?;
            }
            for change in changes {
                match change {
                    Change::Key { name, sealed, public } => {
                        tx.execute(
                            "UPDATE node_keys SET seed = ?2, public_key = ?3 WHERE name = ?1",
                            params![name, sealed, public],
                        )?;
                    }
                    Change::Text { secret, id, stored } => {
                        secret.update(&tx, &id, &stored)?;
                    }
                }
            }
            tx.commit()?;
            Ok::<_, StorageError>(())
        })?;
    }
    Ok(report)
}

/// What a lost key means, for the error message.
fn lost_key_sentence(name: &str) -> String {
    match name {
        crate::rules::keys::NODE_KEY => "the node identity (reset makes a new one: a new node id)".into(),
        crate::rules::keys::LAN_CA_KEY => {
            "the LAN CA key (reset makes a new CA: clients must trust its certificate again)".into()
        }
        other => format!("the key '{other}' (reset makes a new one)"),
    }
}

/// What a lost secret of `kind` means, for the error message.
fn lost_text_sentence(kind: &str, id: &str, source: &str) -> String {
    match (kind, source) {
        ("acme-account", _) => format!("the ACME account for {id} (reset registers a new one)"),
        ("certificate-key", "custom") => {
            format!(
                "the key of the custom certificate for {id} (add it again with `fazt cert add` after reset)"
            )
        }
        ("certificate-key", "acme") => {
            format!("the key of the certificate for {id} (obtained again after reset)")
        }
        ("certificate-key", _) => format!("the key of the LAN certificate {id} (issued again after reset)"),
        (_, _) => {
            let (app, name) = id.split_once('/').unwrap_or((id, ""));
            format!("the environment variable {name} of app {app} (set it again with `fazt app env set` after reset)")
        }
    }
}

/// Sets a key row aside (renamed `name@orphaned-<ms>`): it is never used again, but
/// stays in the database in case the machine it belongs to comes back.
pub fn orphan(storage: &Storage, clock: &Clock, name: &str) -> Result<(), StorageError> {
    let renamed = format!("{name}@orphaned-{}", clock.now_millis());
    storage.write_durable_blocking(|c| {
        c.execute("UPDATE node_keys SET name = ?2 WHERE name = ?1", params![name, renamed])?;
        Ok(())
    })
}
