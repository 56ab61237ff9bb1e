//! ECDSA P-256 keys behind the keystore: the key of the node's LAN certificate
//! authority. P-256 because it is the curve every browser and TLS library accepts in a
//! certificate chain (Ed25519 is not accepted there by browsers).
//!
//! # Examples
//! ```
//! use fazt_hal::keystore::{EcdsaKeystore, MemorySeeds, SoftwareKeystore};
//! let keys = SoftwareKeystore::new(MemorySeeds::default());
//! let public = keys.ecdsa_public_key("ca").unwrap();
//! let der = keys.ecdsa_sign("ca", b"to be signed").unwrap();
//! assert!(public.verify(b"to be signed", &der));
//! ```

use super::{check_name, Error, SeedStore, SoftwareKeystore};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use std::fmt;

/// A P-256 public key as an uncompressed SEC1 point (65 bytes, starting with 0x04).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EcdsaPublicKey(pub Vec<u8>);

impl fmt::Debug for EcdsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcdsaPublicKey(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ")")
    }
}

impl EcdsaPublicKey {
    /// Checks a DER-encoded ECDSA-with-SHA-256 signature of `message`.
    pub fn verify(&self, message: &[u8], der: &[u8]) -> bool {
        let Ok(key) = VerifyingKey::from_sec1_bytes(&self.0) else { return false };
        let Ok(sig) = DerSignature::from_bytes(der) else { return false };
        key.verify(message, &sig).is_ok()
    }
}

/// Named ECDSA P-256 signing keys (SHA-256, DER signatures, as X.509 wants them).
///
/// # Note for implementers
/// As for [`super::Keystore`]: created on first use, atomic, never replaced, the private
/// key never returned. A TPM 2.0 backend can create the key inside the chip (P-256 is
/// the curve every TPM 2.0 supports).
pub trait EcdsaKeystore: Send + Sync + fmt::Debug {
    /// The public key of `name`, creating the key pair on first use.
    fn ecdsa_public_key(&self, name: &str) -> Result<EcdsaPublicKey, Error>;

    /// Signs `message` (hashed with SHA-256) with the private key of `name`; the
    /// signature is DER-encoded.
    fn ecdsa_sign(&self, name: &str, message: &[u8]) -> Result<Vec<u8>, Error>;
}

impl<S: SeedStore> SoftwareKeystore<S> {
    fn with_p256<T>(&self, name: &str, f: impl FnOnce(&SigningKey) -> T) -> Result<T, Error> {
        check_name(name)?;
        let mut loaded = self.loaded_p256.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = loaded.get(name) {
            return Ok(f(key));
        }
        let seed = match self.seeds.load(name)? {
            Some(seed) => seed,
            None => {
                // A P-256 secret is a scalar below the group order: draw until one is
                // (a random 32-byte string fails about once in 2^32 draws).
                let seed = loop {
                    let mut seed = [0u8; 32];
                    getrandom::getrandom(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
                    if SigningKey::from_slice(&seed).is_ok() {
                        break seed;
                    }
                };
                self.seeds.save_for(name, "p256", &seed)?;
                self.seeds.load(name)?.ok_or_else(|| Error::Corrupt(name.to_string()))?
            }
        };
        let key = SigningKey::from_slice(&seed).map_err(|_| Error::Corrupt(name.to_string()))?;
        let result = f(&key);
        loaded.insert(name.to_string(), key);
        Ok(result)
    }
}

impl<S: SeedStore> EcdsaKeystore for SoftwareKeystore<S> {
    fn ecdsa_public_key(&self, name: &str) -> Result<EcdsaPublicKey, Error> {
        self.with_p256(name, |k| {
            EcdsaPublicKey(k.verifying_key().to_encoded_point(false).as_bytes().to_vec())
        })
    }

    fn ecdsa_sign(&self, name: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.with_p256(name, |k| {
            let sig: DerSignature = k.sign(message);
            sig.as_bytes().to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::MemorySeeds;

    #[test]
    fn keys_are_kept_and_signatures_verify() {
        let keys = SoftwareKeystore::new(MemorySeeds::default());
        let a = keys.ecdsa_public_key("ca").unwrap();
        assert_eq!(a.0.len(), 65);
        assert_eq!(keys.ecdsa_public_key("ca").unwrap(), a);
        let sig = keys.ecdsa_sign("ca", b"msg").unwrap();
        assert!(a.verify(b"msg", &sig));
        assert!(!a.verify(b"msG", &sig));
        assert!(!keys.ecdsa_public_key("other").unwrap().verify(b"msg", &sig));
        assert!(!a.verify(b"msg", b"not der"));
    }

    #[test]
    fn a_zero_seed_is_reported_as_damaged() {
        let seeds = MemorySeeds::default();
        seeds.save("ca", &[0u8; 32]).unwrap();
        let keys = SoftwareKeystore::new(seeds);
        assert_eq!(keys.ecdsa_public_key("ca").unwrap_err().kind(), crate::keystore::ErrorKind::Corrupt);
    }
}
