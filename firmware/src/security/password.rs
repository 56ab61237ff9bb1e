//! Password hashing with argon2id (the OWASP-recommended default parameters).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted by `set-credentials`.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Longest password hashed; longer input is refused before argon2 sees it.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The password is too short or too long.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the password must be at least {MIN_PASSWORD_LEN} characters and at most {MAX_PASSWORD_LEN} bytes")]
pub struct BadLength;

/// Checks a new password's length.
pub fn check_length(password: &str) -> Result<(), BadLength> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(BadLength);
    }
    Ok(())
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Only fails for parameter errors, which the defaults cannot produce.
        .unwrap_or_default()
}

/// True when `password` matches the PHC string `stored`.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A readable random password: four groups of five lowercase letters and digits.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..4)
        .map(|_| (0..5).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let stored = hash("correct horse");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert!(!verify("x", "not a phc string"));
        assert!(!verify(&"x".repeat(5000), &stored));
    }

    #[test]
    fn generated_passwords_differ_and_are_long() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 23);
    }
}
