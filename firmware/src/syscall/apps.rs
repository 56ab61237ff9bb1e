//! Apps as the admin sees them: list, show (with files) and delete. The rows are
//! `crate::apps`'s; this adds who may ask and the stable errors.

use super::{Caller, Kind, SyscallError};
use crate::apps::{self, AppSummary, FileSummary};
use crate::events::{Events, Kind as EventKind};
use crate::storage::Storage;
use crate::time::Clock;
use std::sync::Arc;

/// Longest app id or name looked up; longer input cannot name an app.
const MAX_KEY_BYTES: usize = 128;

/// A live app by id or name, which the caller may touch; `not_found` otherwise.
pub async fn find(storage: &Arc<Storage>, caller: &Caller, key: &str) -> Result<AppSummary, SyscallError> {
    let shown = || format!("no app '{}'", key.chars().take(64).collect::<String>().escape_default());
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(SyscallError::not_found(shown()));
    }
    let owned = key.to_string();
    let app = storage
        .read(move |conn| apps::find(conn, &owned))
        .await?
        .ok_or_else(|| SyscallError::not_found(shown()))?;
    caller.require_app(&app.id)?;
    Ok(app)
}

/// Every live app, system apps first.
pub async fn list(storage: &Arc<Storage>, caller: &Caller) -> Result<Vec<AppSummary>, SyscallError> {
    caller.require_admin()?;
    Ok(storage.read(apps::list).await?)
}

/// One app and the files of its current deployment.
pub async fn show(
    storage: &Arc<Storage>,
    caller: &Caller,
    key: &str,
) -> Result<(AppSummary, Vec<FileSummary>), SyscallError> {
    let app = find(storage, caller, key).await?;
    let id = app.id.clone();
    let files = storage.read(move |conn| apps::files(conn, &id)).await?;
    Ok((app, files))
}

/// The app `key` whose handler the caller wants to run outside HTTP routing (`fazt app
/// run`): the admin's to do, since the handler then acts with the app's data.
pub async fn to_invoke(
    storage: &Arc<Storage>,
    caller: &Caller,
    key: &str,
) -> Result<AppSummary, SyscallError> {
    caller.require_admin()?;
    find(storage, caller, key).await
}

/// A handler call the admin asked for (`POST /api/apps/{id}/invoke`), checked: running
/// it is the runtime's, a layer above, which `net` hands it to.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The app whose handler runs.
    pub app: AppSummary,
    /// The HTTP method the handler sees (upper case).
    pub method: String,
    /// The path the handler sees, under `/api`.
    pub path: String,
    /// The query string, if the path had one.
    pub query: Option<String>,
}

/// Checks a handler call of the app `key` outside HTTP routing (`fazt app run`): the
/// admin's (see [`to_invoke`]); `path` (default `/api`) must be `/api` or below it and
/// `method` (default `POST`) a word, else `invalid`.
pub async fn invocation(
    storage: &Arc<Storage>,
    caller: &Caller,
    key: &str,
    path: Option<&str>,
    method: Option<&str>,
) -> Result<Invocation, SyscallError> {
    let app = to_invoke(storage, caller, key).await?;
    let path = path.unwrap_or("/api");
    let method = method.unwrap_or("POST").to_ascii_uppercase();
    if !(path == "/api" || path.starts_with("/api/") || path.starts_with("/api?"))
        || method.len() > 16
        || !method.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return Err(SyscallError::Invalid("path must start with /api and method be a word".into()));
    }
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path.to_string(), None),
    };
    Ok(Invocation { app, method, path, query })
}

/// Deletes a user app (its name is free again at once) and tells the event bus; a
/// system app is refused with `system_app`.
pub async fn delete(
    storage: &Arc<Storage>,
    clock: &Clock,
    events: &Events,
    caller: &Caller,
    key: &str,
) -> Result<AppSummary, SyscallError> {
    caller.require_admin()?;
    let app = find(storage, caller, key).await?;
    if app.system {
        return Err(SyscallError::refused(
            Kind::Forbidden,
            "system_app",
            format!("'{}' is a system app and cannot be deleted", app.name),
        ));
    }
    let now = clock.now_millis();
    let id = app.id.clone();
    storage.write(move |conn| apps::delete(conn, &id, now)).await?;
    tracing::info!(app = %app.name, id = %app.id, "app deleted");
    events.notify(EventKind::AppDeleted, Some((&app.id, &app.name)), serde_json::json!({}));
    Ok(app)
}

/// Renames a live user app to `new_name`, keeping its id and so everything it owns, and
/// tells the event bus. The caller (`net`) then drops what it caches under the names.
pub async fn rename(
    storage: &Arc<Storage>,
    clock: &Clock,
    events: &Events,
    caller: &Caller,
    key: &str,
    new_name: &str,
) -> Result<apps::Renamed, SyscallError> {
    caller.require_admin()?;
    let app = find(storage, caller, key).await?;
    let now = clock.now_millis();
    let (id, new) = (app.id.clone(), new_name.to_string());
    let renamed = storage.write(move |conn| apps::rename(conn, &id, &new, now)).await?;
    if renamed.changed {
        tracing::info!(id = %renamed.id, old = %renamed.old_name, new = %renamed.new_name, "app renamed");
        events.notify(
            EventKind::AppRenamed,
            Some((&renamed.id, &renamed.new_name)),
            serde_json::json!({"id": renamed.id, "old": renamed.old_name, "new": renamed.new_name}),
        );
    }
    Ok(renamed)
}

impl From<apps::RenameError> for SyscallError {
    fn from(err: apps::RenameError) -> Self {
        let kind = match &err {
            apps::RenameError::NotFound(_) => Kind::NotFound,
            apps::RenameError::BadName(_) => Kind::Invalid,
            apps::RenameError::Taken(_) => Kind::Conflict,
            apps::RenameError::System(_) => Kind::Forbidden,
            apps::RenameError::Storage(_) => Kind::Internal,
        };
        if let apps::RenameError::Storage(storage) = err {
            return storage.into();
        }
        SyscallError::refused(kind, err.code(), err.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A data file with a system app `admin`, and user apps `a` (files `index.html`,
    /// `assets/app.js`) and `b`, with their event bus.
    pub(crate) fn node() -> (tempfile::TempDir, Arc<Storage>, Arc<Events>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        crate::apps::system::seed(&storage, 0).unwrap();
        for name in ["a", "b"] {
            let mut archive = tar::Builder::new(Vec::new());
            for (path, body) in [("index.html", &b"<h1>hi</h1>"[..]), ("assets/app.js", &b"1"[..])] {
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                archive.append_data(&mut header, path, body).unwrap();
            }
            let bytes = archive.into_inner().unwrap();
            storage
                .write_blocking(|conn| -> Result<(), SyscallError> {
                    let tx = conn.transaction()?;
                    crate::fs::deploy::deploy_archive(&tx, name, &bytes[..], big_limits(), 0)?;
                    tx.commit()?;
                    Ok(())
                })
                .unwrap();
        }
        let bus = Events::start(storage.clone(), Arc::new(Clock::new()), 100).unwrap();
        (dir, storage, bus)
    }

    fn big_limits() -> crate::fs::archive::Limits {
        crate::fs::archive::Limits { max_site_bytes: 1 << 30, max_file_bytes: 1 << 30, max_files: 1000 }
    }

    /// The id of app `name`.
    pub(crate) fn id_of(storage: &Arc<Storage>, name: &str) -> String {
        storage.read_blocking(|c| crate::apps::find(c, name)).unwrap().unwrap().id
    }

    #[test]
    fn apps_are_for_the_admin_and_an_app_sees_only_itself() {
        let (_dir, storage, bus) = node();
        let a = Caller::app(id_of(&storage, "a"));
        smol::block_on(async {
            assert_eq!(list(&storage, &a).await.unwrap_err().code(), "forbidden");
            assert_eq!(list(&storage, &Caller::Local).await.unwrap().len(), 5);
            assert_eq!(show(&storage, &a, "a").await.unwrap().1.len(), 2);
            assert_eq!(show(&storage, &a, "b").await.unwrap_err().code(), "forbidden");
            assert_eq!(to_invoke(&storage, &a, "a").await.unwrap_err().code(), "forbidden");
            let refused = delete(&storage, &Clock::new(), &bus, &a, "a").await.unwrap_err();
            assert_eq!(refused.code(), "forbidden");
            assert!(find(&storage, &Caller::Local, "a").await.is_ok(), "a refused delete deletes nothing");
        });
    }

    #[test]
    fn invocations_are_the_admins_and_hostile_paths_or_methods_are_invalid() {
        let (_dir, storage, _bus) = node();
        let a = Caller::app(id_of(&storage, "a"));
        smol::block_on(async {
            assert_eq!(invocation(&storage, &a, "a", None, None).await.unwrap_err().code(), "forbidden");
            let local = Caller::Local;
            let long = "A".repeat(17);
            for (path, method) in [
                (Some("/"), None),
                (Some("/apix"), None),
                (Some("../api"), None),
                (Some("/admin/api"), None),
                (None, Some("GE T")),
                (None, Some("GET\r\nX: y")),
                (None, Some(long.as_str())),
            ] {
                let err = invocation(&storage, &local, "a", path, method).await.unwrap_err();
                assert_eq!((err.code(), err.kind()), ("invalid", Kind::Invalid), "{path:?} {method:?}");
            }
            let call = invocation(&storage, &local, "a", Some("/api/x?q=1"), Some("get")).await.unwrap();
            assert_eq!(
                (call.method.as_str(), call.path.as_str(), call.query.as_deref()),
                ("GET", "/api/x", Some("q=1"))
            );
        });
    }

    #[test]
    fn hostile_names_and_system_apps_are_refused_with_stable_codes() {
        let (_dir, storage, bus) = node();
        let admin = Caller::Token { id: "t".into() };
        smol::block_on(async {
            for key in ["", "nope", "a' OR 1=1 --", &"x".repeat(10_000), "a\0"] {
                assert_eq!(show(&storage, &admin, key).await.unwrap_err().code(), "not_found", "{key:?}");
            }
            let system = delete(&storage, &Clock::new(), &bus, &admin, "admin").await.unwrap_err();
            assert_eq!((system.code(), system.kind()), ("system_app", Kind::Forbidden));
            assert!(find(&storage, &admin, "admin").await.is_ok());
            delete(&storage, &Clock::new(), &bus, &admin, "b").await.unwrap();
            assert_eq!(find(&storage, &admin, "b").await.unwrap_err().code(), "not_found");
            assert_eq!(bus.last_id(), 1, "one app.deleted event");
        });
    }
}
