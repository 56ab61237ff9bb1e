//! The start-up sweep over every secret in `data.db`:
//! - a secret an older version stored in the clear is sealed;
//! - one sealed by the previous backend (the machine file, before a TPM was used) is
//!   sealed again by the current one;
//! - one that cannot be opened here (the database came from another machine, or
//!   `machine.key` was lost) is set aside or deleted, and what will be regenerated is
//!   reported: the node identity (a new node id), the LAN CA (clients must trust the new
//!   one), the ACME account and certificates (obtained again), custom certificates
//!   (must be added again).
//!
//! Damaged values are left alone: the feature that uses them reports them.

use super::{sealed_text, store, KeysError, Tpm, MACHINE_KEY_ROW, P256_TPM};
use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::keystore::{Error, ErrorKind, Sealer};
use rusqlite::params;
use std::sync::Arc;

/// A `node_keys` row: name, algorithm, material, public key.
type KeyRow = (String, String, Vec<u8>, Option<Vec<u8>>);

/// What the sweep did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Secrets newly sealed or sealed again under the current key.
    pub sealed: usize,
    /// What could not be opened here and will be regenerated, one sentence each.
    pub regenerated: Vec<String>,
}

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
    let is_plain = match plain_len {
        Some(len) => material.len() == len,
        None => false,
    };
    if is_plain {
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

/// Runs the sweep (see the module docs).
pub fn run(
    storage: &Arc<Storage>,
    clock: &Arc<Clock>,
    sealer: &dyn Sealer,
    previous: Option<&dyn Sealer>,
    tpm: Option<&Tpm>,
) -> Result<Report, KeysError> {
    let mut report = Report::default();
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
                Some(tpm) => match super::tpm::check_key(tpm, &name, &material) {
                    Err(err) if err.kind() == ErrorKind::SealedElsewhere => Verdict::Lost,
                    Err(err) if err.kind() == ErrorKind::Device => return Err(err.into()),
                    _ => Verdict::Keep,
                },
                None => Verdict::Keep,
            }
        } else {
            judge(&label, &material, Some(32), sealer, previous)?
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
                storage.write_blocking(|c| {
                    c.execute(
                        "UPDATE node_keys SET seed = ?2, public_key = ?3 WHERE name = ?1",
                        params![name, sealed, public],
                    )?;
                    Ok::<_, StorageError>(())
                })?;
                report.sealed += 1;
            }
            Verdict::Lost => {
                orphan(storage, clock, &name)?;
                report.regenerated.push(lost_key_sentence(&name));
                if name == crate::net::tls::lan_ca::CA_KEY_NAME {
                    storage.write_blocking(|c| {
                        c.execute("DELETE FROM lan_ca", [])?;
                        c.execute("DELETE FROM tls_certs WHERE source = 'lan'", [])?;
                        Ok::<_, StorageError>(())
                    })?;
                }
            }
        }
    }
    for secret in sealed_text::TEXT_SECRETS {
        sweep_text(storage, &mut report, sealer, previous, secret)?;
    }
    Ok(report)
}

/// A sentence saying what a lost key means.
fn lost_key_sentence(name: &str) -> String {
    match name {
        crate::beacon::identity::KEY_NAME => {
            "the node identity key could not be opened on this machine; a new identity (a new node id) is created, and peers see a new node".into()
        }
        crate::net::tls::lan_ca::CA_KEY_NAME => {
            "the LAN CA key could not be opened on this machine; a new LAN CA is created, and clients must download and trust its certificate again".into()
        }
        other => format!("the key '{other}' could not be opened on this machine; a new one is created on first use"),
    }
}

/// A sentence saying what a lost secret of `kind` means.
fn lost_text_sentence(kind: &str, id: &str, source: &str) -> String {
    match (kind, source) {
        ("acme-account", _) => format!(
            "the ACME account for {id} could not be opened here; a new account is registered at the next certificate order"
        ),
        ("certificate-key", "custom") => format!(
            "the key of the custom certificate for {id} could not be opened here and was removed; add it again with `fazt cert add`"
        ),
        ("certificate-key", "acme") => {
            format!("the key of the certificate for {id} could not be opened here; it is obtained again from the CA")
        }
        ("certificate-key", _) => format!("the key of the LAN certificate ({id}) could not be opened here; it is issued again"),
        (_, _) => {
            let (app, name) = id.split_once('/').unwrap_or((id, ""));
            format!("the environment variable {name} of app {app} could not be opened here and was removed; set it again with `fazt app env set`")
        }
    }
}

/// Seals the secrets of one text column; deletes the rows that cannot be opened here.
fn sweep_text(
    storage: &Arc<Storage>,
    report: &mut Report,
    sealer: &dyn Sealer,
    previous: Option<&dyn Sealer>,
    secret: &sealed_text::TextSecret,
) -> Result<(), KeysError> {
    let rows = storage.read_blocking(|c| Ok::<_, StorageError>(secret.rows(c)?))?;
    for (id, stored, source) in rows {
        let label = secret.label(&id);
        let verdict = match sealed_text::blob_of(&stored) {
            None => Verdict::Replace(sealed_text::seal(sealer, &label, &stored)?.into_bytes()),
            Some(Err(())) => Verdict::Keep,
            Some(Ok(blob)) => match judge(&label, &blob, None, sealer, previous)? {
                Verdict::Replace(sealed) => Verdict::Replace(sealed_text::encode(&sealed).into_bytes()),
                other => other,
            },
        };
        match verdict {
            Verdict::Keep => {}
            Verdict::Replace(text) => {
                let text = String::from_utf8(text).expect("sealed text is ASCII");
                storage.write_blocking(|c| Ok::<_, StorageError>(secret.update(c, &id, &text)?))?;
                report.sealed += 1;
            }
            Verdict::Lost => {
                storage.write_blocking(|c| Ok::<_, StorageError>(secret.delete(c, &id)?))?;
                report.regenerated.push(lost_text_sentence(secret.kind, &id, &source));
            }
        }
    }
    Ok(())
}

/// Sets a key row aside (renamed `name@orphaned-<ms>`): it is never used again, but
/// stays in the database in case the machine it belongs to comes back.
pub fn orphan(storage: &Storage, clock: &Clock, name: &str) -> Result<(), StorageError> {
    let renamed = format!("{name}@orphaned-{}", clock.now_millis());
    storage.write_blocking(|c| {
        c.execute("UPDATE node_keys SET name = ?2 WHERE name = ?1", params![name, renamed])?;
        Ok(())
    })
}
