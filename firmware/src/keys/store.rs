//! Where key material lives: the `node_keys` table of `data.db`.
//!
//! A software key's 32-byte seed is stored sealed (see [`super::sealed_text`] and
//! `fazt_hal::keystore::sealer`): a backup of the database alone does not reveal it.
//! A TPM key is stored as the blob the TPM made, which only that TPM can load. The
//! public key sits beside it in the clear, so listing keys needs no secret.

use crate::storage::{Storage, StorageError};
use crate::time::Clock;
use fazt_hal::keystore::{
    BlobStore, EcdsaKeystore, Error, Keystore, MemorySeeds, PublicKey, Sealer, SeedStore, SoftwareKeystore,
};
use rusqlite::OptionalExtension;
use std::sync::Arc;

/// The label a key's sealed seed is bound to: its row.
pub fn seal_label(name: &str) -> String {
    format!("node_keys:{name}")
}

/// Key material in `data.db`, sealed by `sealer`.
#[derive(Debug, Clone)]
pub struct DbKeyStore {
    storage: Arc<Storage>,
    clock: Arc<Clock>,
    sealer: Arc<dyn Sealer>,
}

impl DbKeyStore {
    /// Keys kept by `storage`, sealed by `sealer`, stamped with `clock`.
    pub fn new(storage: Arc<Storage>, clock: Arc<Clock>, sealer: Arc<dyn Sealer>) -> Self {
        DbKeyStore { storage, clock, sealer }
    }

    fn insert(
        &self,
        name: &str,
        algorithm: &str,
        material: Vec<u8>,
        public: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let now = self.clock.now_millis();
        let (name, algorithm) = (name.to_string(), algorithm.to_string());
        // Durable: a new identity or CA key must not be rolled back by a power cut
        // after the node has used it (announced its id, issued a certificate).
        self.storage
            .write_durable_blocking(move |conn| {
                // OR IGNORE: never replace an existing key (an identity, a CA).
                conn.execute(
                    "INSERT OR IGNORE INTO node_keys(name, algorithm, seed, public_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![name, algorithm, material, public, now],
                )?;
                Ok::<_, StorageError>(())
            })
            .map_err(|e| storage_error("writing node_keys", e))
    }
}

fn storage_error(what: &str, err: StorageError) -> Error {
    Error::Storage { what: what.to_string(), err: Box::new(err) }
}

/// The raw row of `name`: algorithm and stored material.
pub fn raw_row(storage: &Storage, name: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
    storage
        .read_blocking(|conn| {
            Ok::<_, StorageError>(
                conn.query_row("SELECT algorithm, seed FROM node_keys WHERE name = ?1", [name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?,
            )
        })
        .map_err(|e| storage_error("reading node_keys", e))
}

/// The public key a seed gives for `algorithm` (SEC1 for P-256, raw for Ed25519).
pub fn public_of_seed(algorithm: &str, seed: &[u8; 32]) -> Option<Vec<u8>> {
    let memory = MemorySeeds::default();
    memory.save("k", seed).ok()?;
    let keys = SoftwareKeystore::new(memory);
    match algorithm {
        "ed25519" => keys.public_key("k").ok().map(|k| k.0.to_vec()),
        "p256" => keys.ecdsa_public_key("k").ok().map(|k| k.0),
        _ => None,
    }
}

impl SeedStore for DbKeyStore {
    fn load(&self, name: &str) -> Result<Option<[u8; 32]>, Error> {
        let Some((_, material)) = raw_row(&self.storage, name)? else { return Ok(None) };
        // A plain 32-byte seed (from before sealing) is sealed by the start-up sweep
        // before anything loads it; one found here was planted: refused as damaged.
        let plain = self.sealer.unseal(&seal_label(name), &material)?;
        plain.try_into().map(Some).map_err(|_| Error::Corrupt(name.to_string()))
    }

    fn save(&self, name: &str, seed: &[u8; 32]) -> Result<(), Error> {
        self.save_for(name, "ed25519", seed)
    }

    fn save_for(&self, name: &str, algorithm: &str, seed: &[u8; 32]) -> Result<(), Error> {
        let sealed = self.sealer.seal(&seal_label(name), seed)?;
        self.insert(name, algorithm, sealed, public_of_seed(algorithm, seed))
    }
}

impl BlobStore for DbKeyStore {
    fn load_blob(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        raw_row(&self.storage, name)
    }

    fn save_blob(&self, name: &str, algorithm: &str, blob: &[u8]) -> Result<(), Error> {
        // Without TPM support the blob cannot be read, and the column stays empty.
        let public = fazt_hal::keystore::tpm::Tpm::blob_public_key(name, blob).ok().map(|k| k.0);
        self.insert(name, algorithm, blob.to_vec(), public)
    }
}

/// The node's Ed25519 public key as stored, without creating one or opening a secret
/// (offline `beacon status`).
pub fn stored_public_key(storage: &Storage, name: &str) -> Option<PublicKey> {
    let (public, material): (Option<Vec<u8>>, Vec<u8>) = storage
        .read_blocking(|conn| {
            Ok::<_, StorageError>(
                conn.query_row("SELECT public_key, seed FROM node_keys WHERE name = ?1", [name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?,
            )
        })
        .ok()
        .flatten()?;
    // A row from before public keys were stored holds the plain seed (until the next
    // start seals it): derive the key from that.
    let public = match (public, <[u8; 32]>::try_from(material.as_slice())) {
        (Some(public), _) => public,
        (None, Ok(seed)) => public_of_seed("ed25519", &seed)?,
        (None, Err(_)) => return None,
    };
    Some(PublicKey(public.try_into().ok()?))
}
