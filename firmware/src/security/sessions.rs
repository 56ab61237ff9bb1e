//! Browser sessions: a random cookie value whose hash is stored with an expiry.

use super::secret_hash;
use crate::storage::StorageError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection, OptionalExtension};

/// How long a session lasts without a new login: a week, like most dashboards.
pub const SESSION_TTL_MILLIS: i64 = 7 * 24 * 3600 * 1000;

/// The cookie name.
pub const COOKIE: &str = "fazt_session";

/// Creates a session for `user_id`; returns the cookie value.
pub fn create(conn: &Connection, user_id: &str, now: UnixMillis) -> Result<String, StorageError> {
    let secret = crate::ids::new_secret(32);
    // Expired sessions are swept here rather than by a timer: logins are rare.
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
    conn.execute(
        "INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![secret_hash(&secret), user_id, now, now + SESSION_TTL_MILLIS],
    )?;
    Ok(secret)
}

/// The user of a live session.
pub fn lookup(conn: &Connection, secret: &str, now: UnixMillis) -> Result<Option<String>, StorageError> {
    Ok(conn
        .query_row(
            "SELECT user_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
            params![secret_hash(secret), now],
            |r| r.get(0),
        )
        .optional()?)
}

/// Ends a session.
pub fn delete(conn: &Connection, secret: &str) -> Result<(), StorageError> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [secret_hash(secret)])?;
    Ok(())
}
