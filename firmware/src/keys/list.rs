//! `fazt keys list`: every key and sealed secret of a node, and where it is held; read
//! from `data.db` without opening any secret (works with the node stopped or running).

use super::{sealed_text, MACHINE_KEY_ROW, P256_TPM, TPM_SEALED};
use crate::storage::{Storage, StorageError};
use fazt_hal::keystore::KeyOrigin;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One key or secret.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// What it is: "key", "acme-account" or "certificate-key".
    pub kind: &'static str,
    /// Its name (key name, ACME directory, certificate name).
    pub name: String,
    /// Its algorithm, for keys.
    pub algorithm: String,
    /// Where it is held or what seals it, in words.
    pub held: String,
    /// Which key seals it: "machine-file" or "tpm" (none for a key inside the TPM, a
    /// plain or damaged value, or one set aside).
    pub sealed_by: Option<&'static str>,
    /// Whether a TPM holds it or seals it.
    pub tpm: bool,
    /// The first 16 hex digits of the SHA-256 of the public key, for keys.
    pub fingerprint: Option<String>,
    /// When it was created (Unix ms), for keys.
    pub created_at: Option<i64>,
}

impl Entry {
    /// How listings name it: `node (ed25519)` for a key, `app-env app_1/TOKEN` otherwise.
    pub fn label(&self) -> String {
        match self.kind {
            "key" => format!("{} ({})", self.name, self.algorithm),
            kind => format!("{kind} {}", self.name),
        }
    }
}

/// The words, the origin and the TPM flag of a sealed (or plain) value.
fn held_by_origin(origin: Option<KeyOrigin>, plain: bool) -> (String, Option<&'static str>, bool) {
    match (origin, plain) {
        (_, true) => ("in the clear (sealed at the next start)".into(), None, false),
        (Some(o @ KeyOrigin::MachineFile), _) => ("sealed with machine.key".into(), Some(o.name()), false),
        (Some(o @ KeyOrigin::Tpm), _) => ("sealed by the TPM".into(), Some(o.name()), true),
        (None, _) => ("damaged".into(), None, false),
    }
}

/// Every key and secret in `storage`.
pub fn list(storage: &Storage) -> Result<Vec<Entry>, StorageError> {
    storage.read_blocking(|c| {
        let mut out = Vec::new();
        let mut stmt =
            c.prepare("SELECT name, algorithm, seed, public_key, created_at FROM node_keys ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
                r.get(4)?,
            ))
        })?;
        for row in rows {
            let (name, algorithm, material, public, created_at) = row?;
            let (held, sealed_by, tpm) = if let Some((_, when)) = name.split_once("@orphaned-") {
                (format!("set aside by `fazt keys rotate` or `reset` (at {when})"), None, false)
            } else if name == MACHINE_KEY_ROW || algorithm == TPM_SEALED {
                ("sealed by the TPM (wraps the other secrets)".into(), None, true)
            } else if algorithm == P256_TPM {
                ("inside the TPM (not exportable)".into(), None, true)
            } else {
                held_by_origin(KeyOrigin::of(&material), material.len() == 32)
            };
            let fingerprint = public.map(|p| hex::encode(&Sha256::digest(&p)[..8]));
            let created_at = Some(created_at);
            out.push(Entry { kind: "key", name, algorithm, held, sealed_by, tpm, fingerprint, created_at });
        }
        for secret in sealed_text::TEXT_SECRETS {
            for (name, stored, _) in secret.rows(c)? {
                let plain = !stored.starts_with(sealed_text::PREFIX);
                let (held, sealed_by, tpm) = held_by_origin(sealed_text::origin_of(&stored), plain);
                out.push(Entry {
                    kind: secret.kind,
                    name,
                    algorithm: String::new(),
                    held,
                    sealed_by,
                    tpm,
                    fingerprint: None,
                    created_at: None,
                });
            }
        }
        Ok(out)
    })
}
