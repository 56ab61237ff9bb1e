//! Per-app environment variables (`fazt.app.env`), never the host's environment.
//!
//! Values are often secrets (API keys), so they are stored sealed (see
//! [`crate::keys::sealed_text`]), each bound to its app and name.

use super::SyscallError;
use crate::keys::sealed_text;
use fazt_hal::keystore::Sealer;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// Most variables per app.
pub const MAX_VARS: usize = 100;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Checks a variable name: a letter or `_`, then letters, digits and `_`, at most 128.
pub fn check_name(name: &str) -> Result<(), SyscallError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > 128 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(SyscallError::Invalid(format!(
            "invalid variable name '{}': use letters, digits and _, not starting with a digit",
            name.escape_default()
        )));
    }
    Ok(())
}

/// The label a value is sealed under: its app and name.
pub fn seal_label(app_id: &str, name: &str) -> String {
    format!("app_env:{app_id}/{name}")
}

fn sealing(err: fazt_hal::keystore::Error) -> SyscallError {
    // Only sealing on write fails here (no randomness): rare, and not the caller's fault.
    SyscallError::Invalid(format!("app environment: {err}"))
}

/// Sets a variable.
pub fn set(
    conn: &Connection,
    sealer: &dyn Sealer,
    app_id: &str,
    name: &str,
    value: &str,
) -> Result<(), SyscallError> {
    check_name(name)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(SyscallError::Invalid(format!("values are at most {MAX_VALUE_BYTES} bytes")));
    }
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM app_env WHERE app_id = ?1 AND key != ?2",
        params![app_id, name],
        |r| r.get(0),
    )?;
    if count as usize >= MAX_VARS {
        return Err(SyscallError::Invalid(format!("an app has at most {MAX_VARS} variables")));
    }
    conn.execute(
        "INSERT INTO app_env(app_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT(app_id, key) DO UPDATE SET value = excluded.value",
        params![app_id, name, sealed_text::seal(sealer, &seal_label(app_id, name), value).map_err(sealing)?],
    )?;
    Ok(())
}

/// Removes a variable; true when it existed.
pub fn unset(conn: &Connection, app_id: &str, name: &str) -> Result<bool, SyscallError> {
    check_name(name)?;
    Ok(conn.execute("DELETE FROM app_env WHERE app_id = ?1 AND key = ?2", params![app_id, name])? == 1)
}

/// Every variable of an app.
pub fn list(
    conn: &Connection,
    sealer: &dyn Sealer,
    app_id: &str,
) -> Result<BTreeMap<String, String>, SyscallError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached("SELECT key, value FROM app_env WHERE app_id = ?1")?
        .query_map([app_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // A value that does not open (damaged) is left out with a warning, so that one bad
    // variable does not take the whole app down.
    Ok(rows
        .into_iter()
        .filter_map(|(name, stored)| match sealed_text::open(sealer, &seal_label(app_id, &name), &stored) {
            Ok(value) => Some((name, value)),
            Err(err) => {
                tracing::warn!(app = app_id, variable = name, error = %err, "an environment variable cannot be opened; left out");
                None
            }
        })
        .collect())
}
