//! API tokens for the CLI and scripts: `fzt_` followed by 40 hex digits, shown once.

use super::secret_hash;
use crate::storage::StorageError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection, OptionalExtension};

/// Prefix of every token, so leaked tokens are easy to grep for.
pub const PREFIX: &str = "fzt_";

/// A token as listed (never the secret itself).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Stable id (`tok_…`).
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last successful use.
    pub last_used_at: Option<UnixMillis>,
    /// Revocation time.
    pub revoked_at: Option<UnixMillis>,
}

/// Longest token name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Creates a token; returns its info and the secret (to show once).
pub fn create(
    conn: &Connection,
    name: &str,
    user_id: Option<&str>,
    now: UnixMillis,
) -> Result<(TokenInfo, String), StorageError> {
    let secret = format!("{PREFIX}{}", crate::ids::new_secret(20));
    let info = TokenInfo {
        id: crate::ids::new_id("tok"),
        name: name.into(),
        prefix: secret[..8].to_string(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    conn.execute(
        "INSERT INTO api_tokens(id, name, token_hash, prefix, user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![info.id, info.name, secret_hash(&secret), info.prefix, user_id, now],
    )?;
    Ok((info, secret))
}

/// Every token, newest first.
pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at DESC, id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                prefix: r.get(2)?,
                created_at: r.get(3)?,
                last_used_at: r.get(4)?,
                revoked_at: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Revokes a token; false when no live token has that id.
pub fn revoke(conn: &Connection, id: &str, now: UnixMillis) -> Result<bool, StorageError> {
    Ok(conn.execute(
        "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
        params![now, id],
    )? == 1)
}

/// Checks a presented token; returns its id when it is live. Does not record the use
/// (see [`touch`]), so the check needs only a read connection.
pub fn check(conn: &Connection, secret: &str) -> Result<Option<String>, StorageError> {
    if !secret.starts_with(PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            "SELECT id FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
            [secret_hash(secret)],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records a use of a token.
pub fn touch(conn: &Connection, id: &str, now: UnixMillis) -> Result<(), StorageError> {
    conn.execute("UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2", params![now, id])?;
    Ok(())
}
