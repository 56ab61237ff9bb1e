//! Random identifiers and secrets.

use rand::RngCore;

/// A new stable id such as `app_3f9c2a7b1d0e4c58`: a kind prefix and 64 random bits.
pub fn new_id(kind: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{kind}_{}", hex::encode(bytes))
}

/// A new secret of `bytes` random bytes, hex-encoded.
pub fn new_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}
