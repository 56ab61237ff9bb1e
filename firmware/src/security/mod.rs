//! Security: who may use the admin API.
//!
//! # Layout
//! - [`password`]: argon2id hashing of the admin password.
//! - [`users`]: the admin user and its credentials.
//! - [`sessions`]: browser sessions (cookie) created by a password login.
//! - [`tokens`]: API tokens for the CLI, created, listed and revoked.
//! - [`ratelimit`]: slowing down password guessing per client address.
//! - [`setup`]: the one-time setup code of a node nobody has claimed yet.
//!
//! Secrets (session cookies, API tokens) are stored only as SHA-256 hashes: a copy of
//! `data.db` does not let anyone log in.

pub mod password;
pub mod ratelimit;
pub mod sessions;
pub mod setup;
pub mod tokens;
pub mod users;

/// The SHA-256 of a secret, as stored.
pub fn secret_hash(secret: &str) -> String {
    crate::rules::hash::content_hash(secret.as_bytes())
}
