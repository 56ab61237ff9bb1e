//! The default seed store of the node key: the `node_keys` table of `data.db`, so the
//! identity travels with a backup (the file keystore of the HAL is the alternative for
//! boards that keep secrets elsewhere; a TPM replaces both).

use crate::storage::Storage;
use crate::time::Clock;
use fazt_hal::keystore::{Error, Keystore, MemorySeeds, PublicKey, SeedStore, SoftwareKeystore};
use rusqlite::OptionalExtension;
use std::sync::Arc;

/// Seeds in `data.db`.
#[derive(Debug, Clone)]
pub struct DbSeeds {
    storage: Arc<Storage>,
    clock: Arc<Clock>,
}

impl DbSeeds {
    /// Seeds kept by `storage`, stamped with `clock`.
    pub fn new(storage: Arc<Storage>, clock: Arc<Clock>) -> Self {
        DbSeeds { storage, clock }
    }
}

fn storage_error(what: &str, err: crate::storage::StorageError) -> Error {
    Error::Storage { what: what.to_string(), err: Box::new(err) }
}

impl SeedStore for DbSeeds {
    fn load(&self, name: &str) -> Result<Option<[u8; 32]>, Error> {
        let row: Option<Vec<u8>> = self
            .storage
            .read_blocking(|conn| {
                Ok::<_, crate::storage::StorageError>(
                    conn.query_row("SELECT seed FROM node_keys WHERE name = ?1", [name], |r| r.get(0))
                        .optional()?,
                )
            })
            .map_err(|e| storage_error("reading node_keys", e))?;
        row.map(|bytes| bytes.try_into().map_err(|_| Error::Corrupt(name.to_string()))).transpose()
    }

    fn save(&self, name: &str, seed: &[u8; 32]) -> Result<(), Error> {
        self.save_for(name, "ed25519", seed)
    }

    fn save_for(&self, name: &str, algorithm: &str, seed: &[u8; 32]) -> Result<(), Error> {
        let now = self.clock.now_millis();
        self.storage
            .write_blocking(|conn| {
                // OR IGNORE: never replace an existing identity.
                conn.execute(
                    "INSERT OR IGNORE INTO node_keys(name, algorithm, seed, created_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![name, algorithm, seed.as_slice(), now],
                )?;
                Ok::<_, crate::storage::StorageError>(())
            })
            .map_err(|e| storage_error("writing node_keys", e))
    }
}

/// The node's public key as stored, without creating one (offline `beacon status`).
pub fn stored_public_key(storage: &Storage, name: &str) -> Option<PublicKey> {
    let seed: Vec<u8> = storage
        .read_blocking(|conn| {
            Ok::<_, crate::storage::StorageError>(
                conn.query_row("SELECT seed FROM node_keys WHERE name = ?1", [name], |r| r.get(0))
                    .optional()?,
            )
        })
        .ok()??;
    let seed: [u8; 32] = seed.try_into().ok()?;
    // Derive it through a throwaway in-memory store holding the same seed.
    let memory = MemorySeeds::default();
    memory.save(name, &seed).ok()?;
    SoftwareKeystore::new(memory).public_key(name).ok()
}
