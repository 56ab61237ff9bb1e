//! `fazt.storage.kv`: a key-value store per app. Values are JSON text, stored as given,
//! so every JSON type round-trips exactly. Expiry uses the kernel clock. Each call
//! takes the caller, which must be the app itself (or the admin).

use super::{Caller, SyscallError};
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
    caller: &Caller,
    app_id: &str,
    key: &str,
    now: UnixMillis,
) -> Result<Option<String>, SyscallError> {
    caller.require_app(app_id)?;
    check_key(key)?;
    Ok(conn
        .prepare_cached(
            "SELECT value FROM kv WHERE app_id = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )?
        .query_row(params![app_id, key, now], |r| r.get(0))
        .optional()?)
}

/// Stores JSON text under `key`, expiring after `ttl_ms` when given, as long as the
/// app's data stays within `quota` bytes (keys and values).
#[allow(clippy::too_many_arguments)]
pub fn set(
    conn: &Connection,
    caller: &Caller,
    app_id: &str,
    key: &str,
    json: &str,
    ttl_ms: Option<i64>,
    now: UnixMillis,
    quota: u64,
) -> Result<(), SyscallError> {
    caller.require_app(app_id)?;
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
    check_quota(conn, app_id, key, (key.len() + json.len()) as u64, now, quota)?;
    conn.prepare_cached(
        "INSERT INTO kv(app_id, key, value, expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(app_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
             updated_at = excluded.updated_at",
    )?
    .execute(params![app_id, key, json, expires, now])?;
    Ok(())
}

/// Bytes of keys and values `app_id` keeps (expired entries count until swept).
pub fn usage(conn: &Connection, app_id: &str) -> Result<u64, SyscallError> {
    let used: Option<i64> = conn
        .prepare_cached("SELECT kv_bytes FROM app_usage WHERE app_id = ?1")?
        .query_row([app_id], |r| r.get(0))
        .optional()?;
    Ok(used.unwrap_or(0).max(0) as u64)
}

/// Refuses a write of an entry of `size` bytes under `key` that would take the app over
/// `quota`. Growing past the quota is refused; shrinking or replacing within it is not.
fn check_quota(
    conn: &Connection,
    app_id: &str,
    key: &str,
    size: u64,
    now: UnixMillis,
    quota: u64,
) -> Result<(), SyscallError> {
    // The common case costs one row read: the app stays within its quota even if the
    // key is new.
    if usage(conn, app_id)?.saturating_add(size) <= quota {
        return Ok(());
    }
    let after = |conn: &Connection| -> Result<(u64, u64), SyscallError> {
        let old: Option<i64> = conn
            .prepare_cached(
                "SELECT length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) FROM kv WHERE app_id = ?1 AND key = ?2",
            )?
            .query_row(params![app_id, key], |r| r.get(0))
            .optional()?;
        let used = usage(conn, app_id)?;
        Ok((used, (used + size).saturating_sub(old.unwrap_or(0).max(0) as u64)))
    };
    let (used, total) = after(conn)?;
    if total <= quota || total <= used {
        return Ok(());
    }
    // Expired entries count until swept: sweep this app's, then look again.
    let swept = conn
        .prepare_cached("DELETE FROM kv WHERE app_id = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2")?
        .execute(params![app_id, now])?;
    if swept > 0 {
        let (used, total) = after(conn)?;
        if total <= quota || total <= used {
            return Ok(());
        }
        return Err(SyscallError::QuotaExceeded { quota, used });
    }
    Err(SyscallError::QuotaExceeded { quota, used })
}

/// Deletes `key`; true when a live entry was there.
pub fn delete(
    conn: &Connection,
    caller: &Caller,
    app_id: &str,
    key: &str,
    now: UnixMillis,
) -> Result<bool, SyscallError> {
    caller.require_app(app_id)?;
    check_key(key)?;
    let live = get(conn, caller, app_id, key, now)?.is_some();
    conn.prepare_cached("DELETE FROM kv WHERE app_id = ?1 AND key = ?2")?.execute(params![app_id, key])?;
    Ok(live)
}

/// Live entries whose key starts with `prefix`, by key, at most [`MAX_LIST`] of them
/// and `max_bytes` of keys and values: a longer answer is refused, not cut, so that a
/// caller never mistakes part of a listing for all of it.
pub fn list(
    conn: &Connection,
    caller: &Caller,
    app_id: &str,
    prefix: &str,
    now: UnixMillis,
    max_bytes: usize,
) -> Result<Vec<(String, String)>, SyscallError> {
    caller.require_app(app_id)?;
    if prefix.len() > MAX_KEY_BYTES {
        return Err(SyscallError::Invalid(format!("kv prefixes are at most {MAX_KEY_BYTES} bytes")));
    }
    // substr compares bytes exactly; LIKE would treat % and _ in the prefix as wildcards.
    let mut statement = conn.prepare_cached(
        "SELECT key, value FROM kv WHERE app_id = ?1 AND substr(key, 1, length(?2)) = ?2
         AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?4",
    )?;
    let rows = statement.query_map(params![app_id, prefix, now, MAX_LIST as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    for row in rows {
        let (key, value) = row?;
        bytes += key.len() + value.len();
        if bytes > max_bytes {
            return Err(SyscallError::Invalid(format!(
                "kv.list: the entries under '{prefix}' hold over {max_bytes} bytes, more than half the app's memory; list a narrower prefix"
            )));
        }
        entries.push((key, value));
    }
    Ok(entries)
}

/// Removes expired entries of every app (called now and then; reads ignore them anyway).
pub fn sweep(conn: &Connection, now: UnixMillis) -> Result<usize, SyscallError> {
    Ok(conn.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    /// A quota no test reaches.
    const Q: u64 = 1 << 30;

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
                set(c, &Caller::app("a"), "a", "k", r#"{"n":1.5,"s":"x","l":[true,null]}"#, None, 0, Q)?;
                assert_eq!(
                    get(c, &Caller::app("a"), "a", "k", 0)?.as_deref(),
                    Some(r#"{"n":1.5,"s":"x","l":[true,null]}"#)
                );
                assert_eq!(get(c, &Caller::app("b"), "b", "k", 0)?, None, "another app's key is invisible");
                assert!(set(c, &Caller::app("a"), "a", "bad", "{not json", None, 0, Q).is_err());
                assert!(set(c, &Caller::app("a"), "a", "", "1", None, 0, Q).is_err());
                assert!(delete(c, &Caller::app("a"), "a", "k", 0)?);
                assert!(!delete(c, &Caller::app("a"), "a", "k", 0)?);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_app_cannot_reach_another_apps_keys() {
        let (_dir, storage) = db();
        storage
            .write_blocking(|c| -> Result<(), SyscallError> {
                set(c, &Caller::app("b"), "b", "k", "1", None, 0, Q)?;
                let a = Caller::app("a");
                assert_eq!(get(c, &a, "b", "k", 0).unwrap_err().code(), "forbidden");
                assert_eq!(set(c, &a, "b", "k", "2", None, 0, Q).unwrap_err().code(), "forbidden");
                assert_eq!(delete(c, &a, "b", "k", 0).unwrap_err().code(), "forbidden");
                assert_eq!(list(c, &a, "b", "", 0, 1 << 20).unwrap_err().code(), "forbidden");
                assert_eq!(get(c, &Caller::app("b"), "b", "k", 0)?.as_deref(), Some("1"), "nothing changed");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn ttl_and_prefix_listing() {
        let (_dir, storage) = db();
        storage
            .write_blocking(|c| -> Result<(), SyscallError> {
                set(c, &Caller::app("a"), "a", "user:1", "1", None, 0, Q)?;
                set(c, &Caller::app("a"), "a", "user:2", "2", Some(100), 0, Q)?;
                set(c, &Caller::app("a"), "a", "user_%", "3", None, 0, Q)?;
                set(c, &Caller::app("b"), "b", "user:3", "3", None, 0, Q)?;
                assert_eq!(list(c, &Caller::app("a"), "a", "user:", 50, 1 << 20)?.len(), 2);
                assert_eq!(
                    list(c, &Caller::app("a"), "a", "user:", 100, 1 << 20)?.len(),
                    1,
                    "expired at its deadline"
                );
                assert_eq!(get(c, &Caller::app("a"), "a", "user:2", 99)?.as_deref(), Some("2"));
                assert_eq!(get(c, &Caller::app("a"), "a", "user:2", 100)?, None);
                assert_eq!(
                    list(c, &Caller::app("a"), "a", "user_", 0, 1 << 20)?.len(),
                    1,
                    "no LIKE wildcards"
                );
                assert!(
                    list(c, &Caller::app("a"), "a", "user", 0, 12).is_err(),
                    "over the byte cap: refused, not cut"
                );
                assert_eq!(list(c, &Caller::app("a"), "a", "user", 0, 21)?.len(), 3);
                assert!(set(c, &Caller::app("a"), "a", "x", "1", Some(0), 0, Q).is_err());
                assert_eq!(sweep(c, 1000)?, 1);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn quota_refuses_growth_counts_every_change_and_frees_expired_entries() {
        let (_dir, storage) = db();
        storage
            .write_blocking(|c| -> Result<(), SyscallError> {
                // "k" + 10 bytes = 11; quota 30.
                set(c, &Caller::app("a"), "a", "k1", "\"12345678\"", None, 0, 30)?;
                assert_eq!(usage(c, "a")?, 12);
                set(c, &Caller::app("a"), "a", "k2", "\"12345678\"", Some(50), 0, 30)?;
                assert_eq!(usage(c, "a")?, 24);
                let full = set(c, &Caller::app("a"), "a", "k3", "\"12345678\"", None, 0, 30).unwrap_err();
                assert!(matches!(full, SyscallError::QuotaExceeded { quota: 30, used: 24 }), "{full:?}");
                assert!(full.to_string().starts_with("storage_full:"), "{full}");
                assert_eq!(get(c, &Caller::app("a"), "a", "k3", 0)?, None, "a refused write writes nothing");
                // Replacing within the quota, and shrinking, are fine.
                set(c, &Caller::app("a"), "a", "k1", "\"87654321\"", None, 0, 30)?;
                set(c, &Caller::app("a"), "a", "k1", "1", None, 0, 30)?;
                assert_eq!(usage(c, "a")?, 15);
                // Another app has its own count.
                set(c, &Caller::app("b"), "b", "k1", "\"12345678\"", None, 0, 30)?;
                assert_eq!(usage(c, "b")?, 12);
                // Once k2 expires, a write that needs its room sweeps it.
                set(c, &Caller::app("a"), "a", "k3", "\"1234567890123\"", None, 100, 30)?;
                assert_eq!(get(c, &Caller::app("a"), "a", "k2", 0)?, None);
                assert_eq!(usage(c, "a")?, 3 + 17);
                delete(c, &Caller::app("a"), "a", "k3", 100)?;
                assert_eq!(usage(c, "a")?, 3);
                sweep(c, 1_000)?;
                Ok(())
            })
            .unwrap();
    }
}
