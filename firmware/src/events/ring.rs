//! The persisted history: a bounded ring of events in `data.db` (table `events`).
//!
//! Ids come from the bus and only grow, so the ring is trimmed by id: after inserting a
//! batch ending at id `last`, rows with `id <= last - max_rows` go. That range starts at
//! the oldest row (a seek on the primary key) and holds about as many rows as the batch
//! added, so trimming costs O(batch), not O(rows kept); and since ids are unique, at most
//! `max_rows` rows ever remain.

use super::event::{Event, Visibility};
use super::filter::Filter;
use crate::storage::StorageError;
use rusqlite::{params, Connection};

/// Writes a batch in one transaction and trims the ring to `max_rows`. With 0 the
/// newest event is still kept: the next start numbers on from it.
pub fn insert(
    conn: &mut Connection,
    events: &[std::sync::Arc<Event>],
    max_rows: u64,
) -> Result<(), StorageError> {
    let Some(last) = events.last().map(|e| e.id) else { return Ok(()) };
    let (events, max_rows) = match max_rows {
        0 => (&events[events.len() - 1..], 1),
        n => (events, n),
    };
    let tx = conn.transaction()?;
    {
        // OR REPLACE: an id can only come round again if a crash lost more events in
        // flight than the restart gap allows for (see `Events::start`); the newer wins.
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO events(id, time, type, app_id, app_name, visibility, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for e in events {
            stmt.execute(params![
                e.id as i64,
                e.time,
                e.kind,
                e.app,
                e.app_name,
                e.visibility.as_str(),
                e.data.to_string()
            ])?;
        }
        tx.prepare_cached("DELETE FROM events WHERE id <= ?1")?
            .execute([last.saturating_sub(max_rows) as i64])?;
    }
    tx.commit()?;
    Ok(())
}

/// The highest id stored (0 when none).
pub fn max_id(conn: &Connection) -> Result<u64, StorageError> {
    let id: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
    Ok(id.max(0) as u64)
}

/// Events after `since` that pass `filter`, oldest first, at most `limit`.
pub fn query(
    conn: &Connection,
    filter: &Filter,
    since: u64,
    limit: usize,
) -> Result<Vec<Event>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, time, type, app_id, app_name, visibility, data FROM events
         WHERE id > ?1
           AND (?2 IS NULL OR type = ?2 OR substr(type, 1, length(?2) + 1) = ?2 || '.')
           AND (?3 IS NULL OR app_id = ?3 OR app_name = ?3)
           AND (?4 IS NULL OR app_id = ?4 OR visibility = 'public')
         ORDER BY id LIMIT ?5",
    )?;
    let since = since.min(i64::MAX as u64) as i64;
    let rows = stmt.query_map(
        params![since, filter.sql_prefix(), filter.app, filter.sql_viewer(), limit as i64],
        |r| {
            let visibility: String = r.get(5)?;
            let data: String = r.get(6)?;
            Ok(Event {
                id: r.get::<_, i64>(0)? as u64,
                time: r.get(1)?,
                kind: r.get(2)?,
                app: r.get(3)?,
                app_name: r.get(4)?,
                // Rows are only written by `insert`; a damaged one reads as private, the
                // safe side.
                visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Private),
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::filter::Viewer;
    use crate::storage::Storage;
    use std::sync::Arc;

    fn event(id: u64, kind: &str, app: Option<&str>, visibility: Visibility) -> Arc<Event> {
        Arc::new(Event {
            id,
            time: id as i64,
            kind: kind.into(),
            app: app.map(str::to_string),
            app_name: app.map(|a| format!("{a}-name")),
            visibility,
            data: serde_json::json!({"n": id}),
        })
    }

    /// The bound: a million events through the real ring never leave more than
    /// `max_rows` rows, and ids keep increasing.
    #[test]
    fn ring_never_grows_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        const MAX: u64 = 10_000;
        const BATCH: u64 = 5_000;
        let started = std::time::Instant::now();
        let mut next = 1;
        while next <= 1_000_000 {
            let batch: Vec<_> = (next..next + BATCH)
                .map(|id| event(id, "app.tick", Some("a"), Visibility::Private))
                .collect();
            next += BATCH;
            storage.write_blocking(|c| insert(c, &batch, MAX)).unwrap();
            if next % 100_000 == 1 {
                let rows: u64 = storage
                    .read_blocking(|c| -> Result<i64, StorageError> {
                        Ok(c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
                    })
                    .unwrap() as u64;
                assert!(rows <= MAX, "{rows} rows after {} events", next - 1);
            }
        }
        let (rows, min, max): (i64, i64, i64) = storage
            .read_blocking(|c| -> Result<_, StorageError> {
                Ok(c.query_row("SELECT count(*), min(id), max(id) FROM events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?)
            })
            .unwrap();
        assert_eq!((rows as u64, min as u64, max as u64), (MAX, 1_000_000 - MAX + 1, 1_000_000));
        let tail = storage.read_blocking(|c| query(c, &Filter::default(), 999_990, 100)).unwrap();
        assert!(tail.windows(2).all(|w| w[0].id < w[1].id) && tail.len() == 10);
        eprintln!("1,000,000 events through the ring in {:?}", started.elapsed());
    }

    #[test]
    fn a_ring_of_zero_keeps_only_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let batch: Vec<_> = (1..=5).map(|id| event(id, "app.x", None, Visibility::Public)).collect();
        storage.write_blocking(|c| insert(c, &batch, 0)).unwrap();
        assert_eq!(storage.read_blocking(max_id).unwrap(), 5);
        assert_eq!(storage.read_blocking(|c| query(c, &Filter::default(), 0, 10)).unwrap().len(), 1);
    }

    #[test]
    fn queries_filter_by_type_app_and_viewer() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let events = vec![
            event(1, "app.secret", Some("a"), Visibility::Private),
            event(2, "app.news", Some("a"), Visibility::Public),
            event(3, "app.secret", Some("b"), Visibility::Private),
            event(4, "apps.deployed", Some("b"), Visibility::Private),
            event(5, "login.failed", None, Visibility::Private),
            event(6, "peer.found", None, Visibility::Public),
        ];
        storage.write_blocking(|c| insert(c, &events, 100)).unwrap();
        let ids = |filter: Filter, since| -> Vec<u64> {
            let sql: Vec<u64> = storage
                .read_blocking(|c| query(c, &filter, since, 100))
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            let rust: Vec<u64> =
                events.iter().filter(|e| e.id > since && filter.matches(e)).map(|e| e.id).collect();
            assert_eq!(sql, rust, "SQL and Rust disagree on {filter:?}");
            sql
        };
        assert_eq!(ids(Filter::default(), 0), [1, 2, 3, 4, 5, 6]);
        assert_eq!(ids(Filter::default(), 4), [5, 6]);
        let app = |id: &str| Filter { viewer: Viewer::App(id.into()), ..Filter::default() };
        assert_eq!(ids(app("a"), 0), [1, 2, 6]);
        assert_eq!(ids(app("b"), 0), [2, 3, 4, 6]);
        let typed = |p: &str| Filter { type_prefix: Some(p.into()), ..Filter::default() };
        assert_eq!(ids(typed("app"), 0), [1, 2, 3]);
        assert_eq!(ids(typed("app."), 0), [1, 2, 3]);
        assert_eq!(ids(typed("apps"), 0), [4]);
        assert_eq!(ids(typed("app.secret"), 0), [1, 3]);
        assert_eq!(ids(Filter { app: Some("b-name".into()), ..Filter::default() }, 0), [3, 4]);
        assert_eq!(ids(Filter { app: Some("a".into()), ..app("b") }, 0), [2]);
    }
}
