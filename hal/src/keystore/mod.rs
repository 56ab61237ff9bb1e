//! Keys that prove who a node is: named Ed25519 key pairs that sign, and whose secret
//! half need never leave the store.
//!
//! The trait is shaped so that a TPM 2.0 backend can implement it with the private key
//! inside the chip (it only ever hands out public keys and signatures). Today's
//! backends keep a 32-byte secret seed in a [`SeedStore`] and sign in software:
//! - [`file::DirSeeds`]: one file per key in a directory (mode 0600).
//! - [`MemorySeeds`]: in memory, for tests.
//!
//! The kernel's default keeps the seed in `data.db` (a `SeedStore` in the firmware),
//! sealed by a [`Sealer`] so that a backup alone does not reveal it. With the `tpm`
//! feature, [`tpm`] holds P-256 keys inside a TPM 2.0 (non-exportable; a [`BlobStore`]
//! keeps the blobs only that TPM can load) and seals the wrapping key of the rest.
//! TPM 2.0 has no Ed25519, so the node's Ed25519 seed is sealed, not held, by the TPM.
//!
//! # Examples
//! ```
//! use fazt_hal::keystore::{verify, Keystore, MemorySeeds, SoftwareKeystore};
//! let keys = SoftwareKeystore::new(MemorySeeds::default());
//! let public = keys.public_key("node").unwrap();
//! let signature = keys.sign("node", b"hello").unwrap();
//! assert!(verify(&public, b"hello", &signature));
//! assert_eq!(keys.public_key("node").unwrap(), public, "created once, then kept");
//! ```

pub mod devices;
pub mod ecdsa;
pub mod file;
pub mod sealer;
// The one place the TPM backend is chosen: the real one, or a stand-in with no values.
#[cfg_attr(not(feature = "tpm"), path = "tpm_stub.rs")]
pub mod tpm;
mod tpm_common;

pub use ecdsa::{EcdsaKeystore, EcdsaPublicKey};
pub use sealer::{machine_secret, AeadSealer, KeyOrigin, Sealer};

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// What kind of failure a keystore met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store could not be read or written.
    Storage,
    /// A stored key is damaged.
    Corrupt,
    /// The name is not acceptable.
    InvalidInput,
    /// A sealed secret cannot be opened with this machine's key (moved from another
    /// machine, or damaged).
    SealedElsewhere,
    /// The key device (a TPM) is absent, unreachable or refuses to work.
    Device,
    /// Any other failure (no randomness).
    Other,
}

/// Error of a keystore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the backing store failed.
    #[error("keystore {what}: {err} (check the path and its permissions)")]
    Storage {
        /// What was being done, e.g. "writing /var/lib/fazt/keys/node.ed25519".
        what: String,
        /// The underlying error.
        err: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored key has the wrong size or format.
    #[error("the stored key '{0}' is damaged (restore it from a backup; deleting it gives the node a new identity)")]
    Corrupt(String),
    /// The key name is not acceptable.
    #[error("invalid key name '{0}' (use letters, digits, '-' and '_')")]
    InvalidName(String),
    /// The operating system gave no random bytes.
    #[error("no randomness for a new key: {0}")]
    Random(String),
    /// A sealed secret does not open with this machine's key.
    #[error("the secret '{name}' cannot be unsealed on this machine: {why}")]
    SealedElsewhere {
        /// The key or row name.
        name: String,
        /// Why (which key sealed it, which key tried).
        why: String,
    },
    /// The TPM failed or is not there.
    #[error("TPM: {0}")]
    Device(String),
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Storage { .. } => ErrorKind::Storage,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::InvalidName(_) => ErrorKind::InvalidInput,
            Error::Random(_) => ErrorKind::Other,
            Error::SealedElsewhere { .. } => ErrorKind::SealedElsewhere,
            Error::Device(_) => ErrorKind::Device,
        }
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ")")
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(..)")
    }
}

/// Named signing keys.
///
/// # Note for implementers
/// `public_key` creates the key pair on first use and must return the same key ever
/// after (the node id is derived from it); creating must be atomic, so a crash never
/// leaves half a key. The private key is never returned.
pub trait Keystore: Send + Sync + fmt::Debug {
    /// The public key of `name`, creating the key pair on first use.
    fn public_key(&self, name: &str) -> Result<PublicKey, Error>;

    /// Signs `message` with the private key of `name` (creating it on first use).
    fn sign(&self, name: &str, message: &[u8]) -> Result<Signature, Error>;
}

/// Checks an Ed25519 signature (no key store needed: anyone can verify).
pub fn verify(public: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&public.0) else { return false };
    key.verify(message, &ed25519_dalek::Signature::from_bytes(&signature.0)).is_ok()
}

/// Where a software keystore keeps its 32-byte secret seeds.
///
/// # Note for implementers
/// `save` is called only for a name that `load` reported missing, and must not replace
/// an existing seed (return the stored one's absence as an error instead of
/// overwriting): two processes racing to create a key must end with one key.
pub trait SeedStore: Send + Sync + fmt::Debug {
    /// The stored seed of `name`, if any.
    fn load(&self, name: &str) -> Result<Option<[u8; 32]>, Error>;

    /// Stores a new seed for `name`.
    fn save(&self, name: &str, seed: &[u8; 32]) -> Result<(), Error>;

    /// Stores a new seed for `name` that is the secret of an `algorithm` key
    /// (`"ed25519"` or `"p256"`); stores that record the algorithm override this.
    fn save_for(&self, name: &str, algorithm: &str, seed: &[u8; 32]) -> Result<(), Error> {
        let _ = algorithm;
        self.save(name, seed)
    }
}

/// Where key material that is not a 32-byte seed is kept (a TPM's key blobs, which
/// only that TPM can load).
///
/// # Note for implementers
/// As for [`SeedStore`]: `save` never replaces an existing entry.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// The stored blob of `name` and its algorithm, if any.
    fn load_blob(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, Error>;

    /// Stores a new blob for `name`, made for `algorithm` (e.g. `"p256-tpm"`).
    fn save_blob(&self, name: &str, algorithm: &str, blob: &[u8]) -> Result<(), Error>;
}

/// Seeds in memory (tests).
#[derive(Debug, Default)]
pub struct MemorySeeds(Mutex<HashMap<String, [u8; 32]>>);

impl SeedStore for MemorySeeds {
    fn load(&self, name: &str) -> Result<Option<[u8; 32]>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).get(name).copied())
    }

    fn save(&self, name: &str, seed: &[u8; 32]) -> Result<(), Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_insert(*seed);
        Ok(())
    }
}

impl<T: BlobStore + ?Sized> BlobStore for std::sync::Arc<T> {
    fn load_blob(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        (**self).load_blob(name)
    }

    fn save_blob(&self, name: &str, algorithm: &str, blob: &[u8]) -> Result<(), Error> {
        (**self).save_blob(name, algorithm, blob)
    }
}

/// Blobs in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryBlobs(Mutex<HashMap<String, (String, Vec<u8>)>>);

impl BlobStore for MemoryBlobs {
    fn load_blob(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned())
    }

    fn save_blob(&self, name: &str, algorithm: &str, blob: &[u8]) -> Result<(), Error> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_insert_with(|| (algorithm.to_string(), blob.to_vec()));
        Ok(())
    }
}

/// Checks that a key name is a short identifier (it becomes a file name or a row key).
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// A keystore that signs in software with seeds from a [`SeedStore`].
#[derive(Debug)]
pub struct SoftwareKeystore<S> {
    seeds: S,
    // Loaded keys, so signing does not read the store each time. `SigningKey` wipes
    // its secret when dropped.
    loaded: Mutex<HashMap<String, SigningKey>>,
    // Loaded P-256 keys (see `ecdsa`); also wiped on drop.
    loaded_p256: Mutex<HashMap<String, p256::ecdsa::SigningKey>>,
}

impl<S: SeedStore> SoftwareKeystore<S> {
    /// A keystore over `seeds`.
    pub fn new(seeds: S) -> Self {
        SoftwareKeystore { seeds, loaded: Mutex::default(), loaded_p256: Mutex::default() }
    }

    fn with_key<T>(&self, name: &str, f: impl FnOnce(&SigningKey) -> T) -> Result<T, Error> {
        check_name(name)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = loaded.get(name) {
            return Ok(f(key));
        }
        let seed = match self.seeds.load(name)? {
            Some(seed) => seed,
            None => {
                let mut seed = [0u8; 32];
                getrandom::getrandom(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
                self.seeds.save(name, &seed)?;
                // Read back: if another process created the key first, theirs wins.
                self.seeds.load(name)?.ok_or_else(|| Error::Corrupt(name.to_string()))?
            }
        };
        let key = SigningKey::from_bytes(&seed);
        let result = f(&key);
        loaded.insert(name.to_string(), key);
        Ok(result)
    }
}

impl<S: SeedStore> Keystore for SoftwareKeystore<S> {
    fn public_key(&self, name: &str) -> Result<PublicKey, Error> {
        self.with_key(name, |k| PublicKey(k.verifying_key().to_bytes()))
    }

    fn sign(&self, name: &str, message: &[u8]) -> Result<Signature, Error> {
        self.with_key(name, |k| Signature(k.sign(message).to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_message_or_key_fails_verification() {
        let keys = SoftwareKeystore::new(MemorySeeds::default());
        let (a, b) = (keys.public_key("a").unwrap(), keys.public_key("b").unwrap());
        assert_ne!(a, b);
        let sig = keys.sign("a", b"msg").unwrap();
        assert!(verify(&a, b"msg", &sig));
        assert!(!verify(&a, b"msG", &sig));
        assert!(!verify(&b, b"msg", &sig));
        assert!(!verify(&PublicKey([0xff; 32]), b"msg", &sig));
    }

    #[test]
    fn bad_names_are_refused() {
        let keys = SoftwareKeystore::new(MemorySeeds::default());
        for name in ["", "../x", "a/b", "a b"] {
            assert_eq!(keys.public_key(name).unwrap_err().kind(), ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
