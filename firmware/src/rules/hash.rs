//! Content hashes: how fazt names a blob, and checks a name it was given.

use sha2::{Digest, Sha256};

/// The content hash used everywhere: lowercase hex SHA-256.
pub fn content_hash(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// True for a well-formed content hash (64 lowercase hex digits).
pub fn is_content_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
