//! The admin user. v0.7 has one; the table allows more later.

use super::password;
use crate::storage::StorageError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection, OptionalExtension};

/// Why credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The username is not acceptable.
    #[error("invalid username: use 1-64 letters, digits, '.', '_' or '-'")]
    BadUsername,
    /// The password is too short or too long.
    #[error(transparent)]
    BadPassword(#[from] password::BadLength),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for CredentialsError {
    fn from(e: rusqlite::Error) -> Self {
        CredentialsError::Storage(e.into())
    }
}

/// Checks a new admin username: 1-64 letters, digits, '.', '_' or '-'.
pub fn check_username(username: &str) -> Result<(), CredentialsError> {
    let valid = !username.is_empty()
        && username.len() <= 64
        && username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    valid.then_some(()).ok_or(CredentialsError::BadUsername)
}

/// Sets (or replaces) the single admin user's name and password, and ends its sessions.
pub fn set_admin(
    conn: &mut Connection,
    username: &str,
    password: &str,
    now: UnixMillis,
) -> Result<(), CredentialsError> {
    let tx = conn.transaction()?;
    set_admin_in(&tx, username, password, now)?;
    tx.commit()?;
    Ok(())
}

/// [`set_admin`] inside a transaction the caller holds.
pub fn set_admin_in(
    conn: &Connection,
    username: &str,
    password: &str,
    now: UnixMillis,
) -> Result<(), CredentialsError> {
    check_username(username)?;
    password::check_length(password)?;
    let hash = password::hash(password);
    let existing: Option<String> =
        conn.query_row("SELECT id FROM users ORDER BY created_at LIMIT 1", [], |r| r.get(0)).optional()?;
    match existing {
        Some(id) => {
            conn.execute(
                "UPDATE users SET username = ?1, password_hash = ?2, updated_at = ?3 WHERE id = ?4",
                params![username, hash, now, id],
            )?;
            // A new password ends every open browser session.
            conn.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
        }
        None => {
            conn.execute(
                "INSERT INTO users(id, username, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![crate::ids::new_id("usr"), username, hash, now],
            )?;
        }
    }
    Ok(())
}

/// Checks a username and password; returns the user id on success. Runs argon2 even for
/// unknown users so that timing does not tell which usernames exist.
pub fn check_login(
    conn: &Connection,
    username: &str,
    password: &str,
) -> Result<Option<String>, StorageError> {
    Ok(verify_login(login_record(conn, username)?, password))
}

/// What a password check needs of a user: its id and password hash (`None`: no such
/// user). Read apart from [`verify_login`] so that the slow hash runs outside the
/// database.
pub fn login_record(conn: &Connection, username: &str) -> Result<Option<(String, String)>, StorageError> {
    Ok(conn
        .query_row("SELECT id, password_hash FROM users WHERE username = ?1", [username], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// The user's id when `password` matches `record`; an unknown user costs the same time
/// as a known one.
pub fn verify_login(record: Option<(String, String)>, password: &str) -> Option<String> {
    match record {
        Some((id, stored)) => password::verify(password, &stored).then_some(id),
        None => {
            static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let _ =
                password::verify(password, DUMMY_HASH.get_or_init(|| password::hash("not a real password")));
            None
        }
    }
}

/// The name of a user.
pub fn username(conn: &Connection, user_id: &str) -> Result<Option<String>, StorageError> {
    Ok(conn.query_row("SELECT username FROM users WHERE id = ?1", [user_id], |r| r.get(0)).optional()?)
}

/// The id of the user named `username`.
pub fn user_id(conn: &Connection, username: &str) -> Result<Option<String>, StorageError> {
    Ok(conn.query_row("SELECT id FROM users WHERE username = ?1", [username], |r| r.get(0)).optional()?)
}

/// True when an admin user exists.
pub fn has_admin(conn: &Connection) -> Result<bool, StorageError> {
    Ok(conn.query_row("SELECT count(*) > 0 FROM users", [], |r| r.get(0))?)
}
