//! `fazt.storage.kv`: a key-value store per app. Values are JSON text, stored as given,
//! so every JSON type round-trips exactly. Expiry uses the kernel clock.

use super::SyscallError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection, OptionalExtension};

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value (its JSON text), in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most entries one `list` returns.
pub const MAX_LIST: usize = 1000;

fn check_key(key: &str) -> Result<(), SyscallError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(SyscallError::Invalid(format!("kv keys are 1 to {MAX_KEY_BYTES} bytes")));
    }
    Ok(())
}

/// The JSON text stored under `key`, unless absent or expired.
pub fn get(
    conn: &Connection,
    app_id: &str,
    key: &str,
    now: UnixMillis,
) -> Result<Option<String>, SyscallError> {
    check_key(key)?;
    Ok(conn
        .prepare_cached(
            "SELECT value FROM kv WHERE app_id = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )?
        .query_row(params![app_id, key, now], |r| r.get(0))
        .optional()?)
}

/// Stores JSON text under `key`, expiring after `ttl_ms` when given.
pub fn set(
    conn: &Connection,
    app_id: &str,
    key: &str,
    json: &str,
    ttl_ms: Option<i64>,
    now: UnixMillis,
) -> Result<(), SyscallError> {
    check_key(key)?;
    if json.len() > MAX_VALUE_BYTES {
        return Err(SyscallError::Invalid(format!("kv values are at most {MAX_VALUE_BYTES} bytes of JSON")));
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(json).is_err() {
        return Err(SyscallError::Invalid("kv values must be JSON".into()));
    }
    let expires = match ttl_ms {
        Some(ttl) if ttl <= 0 => {
            return Err(SyscallError::Invalid("ttl must be a positive number of ms".into()))
        }
        Some(ttl) => Some(now.saturating_add(ttl)),
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO kv(app_id, key, value, expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(app_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
             updated_at = excluded.updated_at",
    )?
    .execute(params![app_id, key, json, expires, now])?;
    Ok(())
}

/// Deletes `key`; true when a live entry was there.
pub fn delete(conn: &Connection, app_id: &str, key: &str, now: UnixMillis) -> Result<bool, SyscallError> {
    check_key(key)?;
    let live = get(conn, app_id, key, now)?.is_some();
    conn.prepare_cached("DELETE FROM kv WHERE app_id = ?1 AND key = ?2")?.execute(params![app_id, key])?;
    Ok(live)
}

/// Live entries whose key starts with `prefix`, by key, at most [`MAX_LIST`].
pub fn list(
    conn: &Connection,
    app_id: &str,
    prefix: &str,
    now: UnixMillis,
) -> Result<Vec<(String, String)>, SyscallError> {
    if prefix.len() > MAX_KEY_BYTES {
        return Err(SyscallError::Invalid(format!("kv prefixes are at most {MAX_KEY_BYTES} bytes")));
    }
    // substr compares bytes exactly; LIKE would treat % and _ in the prefix as wildcards.
    let rows = conn
        .prepare_cached(
            "SELECT key, value FROM kv WHERE app_id = ?1 AND substr(key, 1, length(?2)) = ?2
             AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?4",
        )?
        .query_map(params![app_id, prefix, now, MAX_LIST as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Removes expired entries of every app (called now and then; reads ignore them anyway).
pub fn sweep(conn: &Connection, now: UnixMillis) -> Result<usize, SyscallError> {
    Ok(conn.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    fn db() -> (tempfile::TempDir, std::sync::Arc<Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        storage
            .write_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO apps(id, name, created_at, updated_at) VALUES ('a', 'a', 0, 0), ('b', 'b', 0, 0)",
                )
                .map_err(crate::storage::StorageError::from)
            })
            .unwrap();
        (dir, storage)
    }

    #[test]
    fn values_round_trip_and_apps_are_separate() {
        let (_dir, storage) = db();
        storage
            .write_blocking(|c| -> Result<(), SyscallError> {
                set(c, "a", "k", r#"{"n":1.5,"s":"x","l":[true,null]}"#, None, 0)?;
                assert_eq!(get(c, "a", "k", 0)?.as_deref(), Some(r#"{"n":1.5,"s":"x","l":[true,null]}"#));
                assert_eq!(get(c, "b", "k", 0)?, None, "another app's key is invisible");
                assert!(set(c, "a", "bad", "{not json", None, 0).is_err());
                assert!(set(c, "a", "", "1", None, 0).is_err());
                assert!(delete(c, "a", "k", 0)?);
                assert!(!delete(c, "a", "k", 0)?);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn ttl_and_prefix_listing() {
        let (_dir, storage) = db();
        storage
            .write_blocking(|c| -> Result<(), SyscallError> {
                set(c, "a", "user:1", "1", None, 0)?;
                set(c, "a", "user:2", "2", Some(100), 0)?;
                set(c, "a", "user_%", "3", None, 0)?;
                set(c, "b", "user:3", "3", None, 0)?;
                assert_eq!(list(c, "a", "user:", 50)?.len(), 2);
                assert_eq!(list(c, "a", "user:", 100)?.len(), 1, "expired at its deadline");
                assert_eq!(get(c, "a", "user:2", 99)?.as_deref(), Some("2"));
                assert_eq!(get(c, "a", "user:2", 100)?, None);
                assert_eq!(list(c, "a", "user_", 0)?.len(), 1, "no LIKE wildcards");
                assert!(set(c, "a", "x", "1", Some(0), 0).is_err());
                assert_eq!(sweep(c, 1000)?, 1);
                Ok(())
            })
            .unwrap();
    }
}
