//! Seals app environment values again after their app got a new id.
//!
//! An env value is sealed under the label `app_env:<app id>/<name>` (the label is the
//! AEAD's associated data, so a value copied onto another app does not open). Migration
//! 10 gave every app a UUIDv7 in place of its `app_…` id but, being SQL, could not
//! touch the sealed values: it left the map of old to new ids in `app_id_changes`. At
//! start, before the sweep judges anything, each value of a mapped app is opened under
//! its old label and sealed under the new one, all in one durable transaction that also
//! drops the map rows it finished. A value that opens under neither sealer keeps its map
//! row (the sweep then says why the machine key is wrong), so nothing is lost by trying.

use super::sealed_text::{self, TEXT_SECRETS};
use super::KeysError;
use crate::storage::{Storage, StorageError};
use fazt_hal::keystore::Sealer;
use rusqlite::params;

/// One env value of a renumbered app: old id, new id, name, stored value (NULL when
/// the app has no env values).
type Row = (String, String, Option<String>, Option<String>);

/// Seals again every env value still under an old app id; returns how many.
pub fn run(
    storage: &Storage,
    sealer: &dyn Sealer,
    previous: Option<&dyn Sealer>,
) -> Result<usize, KeysError> {
    let env = TEXT_SECRETS.iter().find(|s| s.table == "app_env").expect("app_env is a sealed column");
    let rows: Vec<Row> = storage.read_blocking(|c| {
        let mut stmt = c.prepare(
            "SELECT m.old_id, m.new_id, e.key, e.value FROM app_id_changes m
             LEFT JOIN app_env e ON e.app_id = m.new_id ORDER BY m.old_id",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<Vec<Row>, _>>()?;
        Ok::<_, StorageError>(rows)
    })?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut updates = Vec::new();
    let mut unfinished = std::collections::HashSet::new();
    for (old_id, new_id, name, stored) in &rows {
        let (Some(name), Some(stored)) = (name, stored) else { continue };
        // A value from before sealing existed is the sweep's to seal (under the new label).
        if sealed_text::blob_of(stored).is_none() {
            continue;
        }
        let old_label = env.label(&format!("{old_id}/{name}"));
        let opened = sealed_text::open(sealer, &old_label, stored)
            .or_else(|err| previous.map_or(Err(err), |p| sealed_text::open(p, &old_label, stored)));
        match opened {
            Ok(plain) => {
                let new_label = env.label(&format!("{new_id}/{name}"));
                updates.push((new_id.clone(), name.clone(), sealed_text::seal(sealer, &new_label, &plain)?));
            }
            // Already under the new label (nothing to do), or not openable here yet.
            Err(_) if sealed_text::open(sealer, &env.label(&format!("{new_id}/{name}")), stored).is_ok() => {}
            Err(_) => {
                unfinished.insert(old_id.clone());
            }
        }
    }
    let done: Vec<&String> = rows.iter().map(|r| &r.0).filter(|id| !unfinished.contains(*id)).collect();
    let count = updates.len();
    storage.write_durable_blocking(|c| {
        let tx = c.transaction()?;
        for (app_id, name, value) in &updates {
            tx.execute(
                "UPDATE app_env SET value = ?3 WHERE app_id = ?1 AND key = ?2",
                params![app_id, name, value],
            )?;
        }
        for old_id in &done {
            tx.execute("DELETE FROM app_id_changes WHERE old_id = ?1", [old_id])?;
        }
        tx.commit()?;
        Ok::<_, StorageError>(())
    })?;
    if count > 0 {
        tracing::info!(count, "sealed app environment values again under their apps' new ids");
    }
    if !unfinished.is_empty() {
        tracing::warn!(
            apps = unfinished.len(),
            "some app environment values do not open under their old app id here; kept for the next start"
        );
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fazt_hal::keystore::{AeadSealer, KeyOrigin};

    #[test]
    fn env_values_follow_their_app_to_its_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let sealer = AeadSealer::new([7; 32], KeyOrigin::MachineFile, "test");
        let other = AeadSealer::new([8; 32], KeyOrigin::MachineFile, "other");
        let (old, new) = ("app_00000000000000aa", "01a25f1c-e447-7000-8000-000000000001");
        let sealed_old = sealed_text::seal(&sealer, &format!("app_env:{old}/API_KEY"), "s3cret").unwrap();
        let foreign = sealed_text::seal(&other, &format!("app_env:{old}/OTHER"), "x").unwrap();
        storage
            .write_blocking(|c| {
                c.execute(
                    "INSERT INTO apps(id, name, created_at, updated_at) VALUES (?1, 'blog', 1, 1)",
                    [new],
                )?;
                c.execute("INSERT INTO app_id_changes VALUES (?1, ?2)", [old, new])?;
                c.execute("INSERT INTO app_env VALUES (?1, 'API_KEY', ?2)", [new, &sealed_old])?;
                Ok::<_, StorageError>(())
            })
            .unwrap();
        assert_eq!(run(&storage, &sealer, None).unwrap(), 1);
        let stored: String = storage
            .read_blocking(|c| {
                Ok::<_, StorageError>(c.query_row("SELECT value FROM app_env", [], |r| r.get(0))?)
            })
            .unwrap();
        let plain = sealed_text::open(&sealer, &format!("app_env:{new}/API_KEY"), &stored).unwrap();
        assert_eq!(plain, "s3cret");
        let left = |s: &Storage| -> i64 {
            s.read_blocking(|c| {
                Ok::<_, StorageError>(c.query_row("SELECT count(*) FROM app_id_changes", [], |r| r.get(0))?)
            })
            .unwrap()
        };
        assert_eq!(left(&storage), 0, "the map row is done");
        assert_eq!(run(&storage, &sealer, None).unwrap(), 0, "a second start has nothing to do");

        // A value this machine cannot open keeps its map row and is not touched.
        storage
            .write_blocking(|c| {
                c.execute("INSERT INTO app_id_changes VALUES (?1, ?2)", [old, new])?;
                c.execute("INSERT INTO app_env VALUES (?1, 'OTHER', ?2)", [new, &foreign])?;
                Ok::<_, StorageError>(())
            })
            .unwrap();
        assert_eq!(run(&storage, &sealer, None).unwrap(), 0);
        assert_eq!(left(&storage), 1);
        // With the right key as the previous sealer it is sealed under the current one.
        assert_eq!(run(&storage, &sealer, Some(&other)).unwrap(), 1);
        assert_eq!(left(&storage), 0);
    }
}
