//! The names of the keys in the keystore that more than one module knows: the module that
//! uses a key, the sealing sweep and key rotation (`keys/`) all match on these.

/// The node identity's Ed25519 key (beacon records, signed time answers).
pub const NODE_KEY: &str = "node";

/// The LAN certificate authority's P-256 key.
pub const LAN_CA_KEY: &str = "lan-ca-p256";
