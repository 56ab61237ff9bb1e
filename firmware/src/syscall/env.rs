//! Per-app environment variables (`fazt.app.env`), never the host's environment.
//!
//! Values are often secrets (API keys), so they are stored sealed (see
//! [`crate::keys::sealed_text`]), each bound to its app and name.

use super::{Caller, SyscallError};
use crate::keys::sealed_text;
use crate::storage::Storage;
use fazt_hal::keystore::Sealer;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Every variable of the app `app_id`, for the kernel loading it to run the app (see
/// [`Caller::Kernel`]), the admin or the app itself.
pub fn list(
    conn: &Connection,
    sealer: &dyn Sealer,
    caller: &Caller,
    app_id: &str,
) -> Result<BTreeMap<String, String>, SyscallError> {
    caller.require_app(app_id)?;
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

/// Every variable of the app `app` (id or name), for the admin or the app itself.
pub async fn show(
    storage: &Arc<Storage>,
    sealer: &Arc<dyn Sealer>,
    caller: &Caller,
    app: &str,
) -> Result<BTreeMap<String, String>, SyscallError> {
    let app = super::apps::find(storage, caller, app).await?;
    let sealer = sealer.clone();
    let caller = caller.clone();
    storage.read(move |c| list(c, sealer.as_ref(), &caller, &app.id)).await
}

/// Sets a variable of the app `app` (id or name); only the admin may.
pub async fn put(
    storage: &Arc<Storage>,
    sealer: &Arc<dyn Sealer>,
    caller: &Caller,
    app: &str,
    name: &str,
    value: &str,
) -> Result<(), SyscallError> {
    caller.require_admin()?;
    let app = super::apps::find(storage, caller, app).await?;
    let (sealer, name, value) = (sealer.clone(), name.to_string(), value.to_string());
    storage.write(move |c| set(c, sealer.as_ref(), &app.id, &name, &value)).await
}

/// Removes a variable of the app `app` (id or name); `not_found` when it was not set.
pub async fn remove(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: &str,
    name: &str,
) -> Result<(), SyscallError> {
    caller.require_admin()?;
    let app = super::apps::find(storage, caller, app).await?;
    let key = name.to_string();
    if !storage.write(move |c| unset(c, &app.id, &key)).await? {
        return Err(SyscallError::not_found(format!("no variable '{}'", name.escape_default())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::{id_of, node};

    #[test]
    fn only_the_admin_sets_variables_and_bad_names_change_nothing() {
        let (_dir, storage, _bus) = node();
        let sealer: Arc<dyn Sealer> = Arc::new(fazt_hal::keystore::AeadSealer::new(
            [7; 32],
            fazt_hal::keystore::KeyOrigin::MachineFile,
            "test",
        ));
        let a = Caller::app(id_of(&storage, "a"));
        smol::block_on(async {
            assert_eq!(put(&storage, &sealer, &a, "a", "K", "v").await.unwrap_err().code(), "forbidden");
            assert_eq!(remove(&storage, &a, "a", "K").await.unwrap_err().code(), "forbidden");
            assert_eq!(show(&storage, &sealer, &a, "b").await.unwrap_err().code(), "forbidden");
            for bad in ["", "1A", "A-B", "A B", "A\0"] {
                let err = put(&storage, &sealer, &Caller::Local, "a", bad, "v").await.unwrap_err();
                assert_eq!(err.code(), "invalid", "{bad:?}");
            }
            let big = "x".repeat(MAX_VALUE_BYTES + 1);
            assert_eq!(
                put(&storage, &sealer, &Caller::Local, "a", "K", &big).await.unwrap_err().code(),
                "invalid"
            );
            assert!(show(&storage, &sealer, &a, "a").await.unwrap().is_empty(), "nothing was set");
            put(&storage, &sealer, &Caller::Local, "a", "K", "v").await.unwrap();
            assert_eq!(show(&storage, &sealer, &a, "a").await.unwrap()["K"], "v");
            assert_eq!(remove(&storage, &Caller::Local, "a", "NOPE").await.unwrap_err().code(), "not_found");
        });
    }
}
