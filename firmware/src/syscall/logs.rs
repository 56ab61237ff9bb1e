//! Per-app logs: what `console.*` and `fazt.log.*` print, kept in `data.db`.

use super::{Caller, SyscallError};
use crate::storage::Storage;
use crate::time::UnixMillis;
use rusqlite::{params, Connection};
use std::sync::Arc;

/// Lines kept per app; older ones are dropped as new ones arrive.
pub const KEEP_PER_APP: i64 = 10_000;
/// Longest message stored, in bytes (longer ones are cut, with a marker).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// One log line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    /// Increasing id, for following.
    pub id: i64,
    /// When it was written.
    pub at: UnixMillis,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text.
    pub message: String,
}

/// Cuts a message to [`MAX_MESSAGE_BYTES`] (its marker included) on a character boundary.
pub fn clip(message: &str) -> String {
    clip_of(message, 0)
}

/// Cuts a message to [`MAX_MESSAGE_BYTES`] on a character boundary; `original` is the
/// length (in JavaScript characters) of the line it was cut from by the runtime's
/// prelude, which cuts lines longer than [`MAX_MESSAGE_BYTES`] characters; 0 or less
/// than that: `message` is whole.
pub fn clip_of(message: &str, original: usize) -> String {
    let original = if original > MAX_MESSAGE_BYTES { original } else { 0 };
    if message.len() <= MAX_MESSAGE_BYTES && original == 0 {
        return message.to_string();
    }
    // Room is left for the marker, so that a clipped line is not clipped again.
    let mut end = message.len().min(MAX_MESSAGE_BYTES - 64);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    match original {
        0 => format!("{}… [cut, {} bytes in all]", &message[..end], message.len()),
        n => format!("{}… [cut, {n} characters in all]", &message[..end]),
    }
}

/// Appends lines for the app `app_id` in one go and trims the oldest beyond
/// [`KEEP_PER_APP`]: the kernel writing what the app's code logged or what went wrong
/// running it (see [`Caller::Kernel`]).
pub fn append(
    conn: &Connection,
    caller: &Caller,
    app_id: &str,
    lines: &[(UnixMillis, &str, String)],
) -> Result<(), SyscallError> {
    caller.require_app(app_id)?;
    if lines.is_empty() {
        return Ok(());
    }
    let mut insert =
        conn.prepare_cached("INSERT INTO app_logs(app_id, at, level, message) VALUES (?1, ?2, ?3, ?4)")?;
    let mut last = 0;
    for (at, level, message) in lines {
        insert.execute(params![app_id, at, level, clip(message)])?;
        last = conn.last_insert_rowid();
    }
    conn.prepare_cached("DELETE FROM app_logs WHERE app_id = ?1 AND id <= ?2")?
        .execute(params![app_id, last - KEEP_PER_APP])?;
    Ok(())
}

/// Lines of an app after id `after`, oldest first, at most `limit`. With `tail`, the
/// last `limit` lines instead.
pub fn list(
    conn: &Connection,
    app_id: &str,
    after: i64,
    limit: i64,
    tail: bool,
) -> Result<Vec<LogEntry>, SyscallError> {
    let limit = limit.clamp(1, 1000);
    let sql = if tail {
        "SELECT id, at, level, message FROM (SELECT * FROM app_logs WHERE app_id = ?1 AND id > ?2
         ORDER BY id DESC LIMIT ?3) ORDER BY id"
    } else {
        "SELECT id, at, level, message FROM app_logs WHERE app_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    };
    let rows = conn
        .prepare_cached(sql)?
        .query_map(params![app_id, after, limit], |r| {
            Ok(LogEntry { id: r.get(0)?, at: r.get(1)?, level: r.get(2)?, message: r.get(3)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Lines of the app `app_id` (see [`list`]), for the admin or the app itself.
pub async fn read(
    storage: &Arc<Storage>,
    caller: &Caller,
    app_id: &str,
    after: i64,
    limit: i64,
    tail: bool,
) -> Result<Vec<LogEntry>, SyscallError> {
    caller.require_app(app_id)?;
    let app_id = app_id.to_string();
    storage.read(move |c| list(c, &app_id, after, limit, tail)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_char_boundaries() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = clip(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.contains("[cut"));
        assert_eq!(clip(&cut), cut, "a clipped line is not clipped again");
        // A line the prelude already cut keeps the length it had in the marker.
        let pre_cut = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let cut = clip_of(&pre_cut, 1 << 20);
        assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.ends_with("[cut, 1048576 characters in all]"), "{cut}");
        assert_eq!(clip_of("short", 5), "short");
    }

    #[test]
    fn an_app_reads_only_its_own_logs() {
        let (_dir, storage, _bus) = crate::syscall::apps::tests::node();
        let (a, b) = (
            crate::syscall::apps::tests::id_of(&storage, "a"),
            crate::syscall::apps::tests::id_of(&storage, "b"),
        );
        let (a, b) = (a.as_str(), b.as_str());
        let line = [(0, "info", "secret".to_string())];
        let refused = storage.write_blocking(|c| append(c, &Caller::app(a), b, &line)).unwrap_err();
        assert_eq!(refused.code(), "forbidden", "an app cannot write another's log");
        storage.write_blocking(|c| append(c, &Caller::Kernel, b, &line)).unwrap();
        smol::block_on(async {
            assert_eq!(
                read(&storage, &Caller::app(a), b, 0, 10, false).await.unwrap_err().code(),
                "forbidden"
            );
            assert_eq!(read(&storage, &Caller::app(b), b, 0, 10, false).await.unwrap()[0].message, "secret");
            assert!(read(&storage, &Caller::app(a), a, 0, 10, false).await.unwrap().is_empty());
        });
    }
}
