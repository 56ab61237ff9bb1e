//! The node identity: an Ed25519 key pair kept by the keystore, and a node id derived
//! from its public key, so anyone holding the public key can check the id.

use crate::rules::keys::NODE_KEY;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fazt_hal::keystore::{self, Keystore, PublicKey, Signature};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Who this node is.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The node id, e.g. `node_3f9c2a7b1d0e4c58`.
    pub id: String,
    /// The public half of the node key.
    pub public_key: PublicKey,
    keystore: Arc<dyn Keystore>,
}

/// The id of the node whose public key is `key`: `node_` and the first 64 bits of
/// SHA-256 over a domain tag and the key. 64 bits keep the id short enough to read out;
/// forging a key for a given id takes about 2^64 tries, and the full key travels with
/// the id wherever it is checked.
pub fn id_for(key: &PublicKey) -> String {
    let digest = Sha256::new().chain_update(b"fazt-node-id\0").chain_update(key.0).finalize();
    format!("node_{}", hex::encode(&digest[..8]))
}

/// A public key as text (base64url without padding, 43 characters).
pub fn encode_key(key: &PublicKey) -> String {
    URL_SAFE_NO_PAD.encode(key.0)
}

/// Parses [`encode_key`]'s text.
pub fn decode_key(text: &str) -> Option<PublicKey> {
    let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
    Some(PublicKey(bytes.try_into().ok()?))
}

/// A signature as text (base64url without padding, 86 characters).
pub fn encode_signature(sig: &Signature) -> String {
    URL_SAFE_NO_PAD.encode(sig.0)
}

/// Parses [`encode_signature`]'s text.
pub fn decode_signature(text: &str) -> Option<Signature> {
    let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
    Some(Signature(bytes.try_into().ok()?))
}

impl NodeIdentity {
    /// Loads the node key from `keystore`, creating it on the very first start.
    pub fn load_or_create(keystore: Arc<dyn Keystore>) -> Result<Self, keystore::Error> {
        let public_key = keystore.public_key(NODE_KEY)?;
        Ok(NodeIdentity { id: id_for(&public_key), public_key, keystore })
    }

    /// Signs `message` with the node key.
    pub fn sign(&self, message: &[u8]) -> Result<Signature, keystore::Error> {
        self.keystore.sign(NODE_KEY, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fazt_hal::keystore::{MemorySeeds, SoftwareKeystore};

    #[test]
    fn id_is_stable_and_derived_from_the_key() {
        let keystore: Arc<dyn Keystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        let a = NodeIdentity::load_or_create(keystore.clone()).unwrap();
        let b = NodeIdentity::load_or_create(keystore).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.id, id_for(&a.public_key));
        assert!(a.id.starts_with("node_") && a.id.len() == 21, "{}", a.id);
        assert_eq!(decode_key(&encode_key(&a.public_key)), Some(a.public_key));
        let sig = a.sign(b"x").unwrap();
        assert_eq!(decode_signature(&encode_signature(&sig)), Some(sig));
        assert_eq!(decode_key("not base64!"), None);
        assert_eq!(decode_key("AAAA"), None);
    }
}
