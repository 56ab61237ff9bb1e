//! `fazt.events` and `POST /api/events`: emitting custom events and reading the ones a
//! caller may see. Custom types always land under `app.`, so no caller can forge a
//! kernel event, and an app's reads are limited to its own events and public ones.

use super::{Caller, SyscallError};
use crate::events::{self, Draft, Event, EventError, Events, Filter, Viewer, Visibility};
use std::sync::Arc;

/// Most events one invocation of an app may emit: enough for any real handler, few
/// enough that a hostile app needs many invocations (each under its limits) to churn
/// the history.
pub const MAX_EMITS_PER_INVOCATION: u32 = 100;

/// Emits a custom event (`kind` is put under `app.`), tagged with `app` (id, name) when
/// given. The app comes from the kernel (the running app, or one the admin named),
/// never from what the caller wrote in the event: an app may tag only itself, and only
/// the admin may emit untagged events.
pub fn emit(
    bus: &Events,
    caller: &Caller,
    app: Option<(&str, &str)>,
    kind: &str,
    data: serde_json::Value,
    visibility: Visibility,
) -> Result<Arc<Event>, SyscallError> {
    match app {
        Some((id, _)) => caller.require_app(id)?,
        None => caller.require_admin()?,
    }
    let kind = events::event::custom_type(kind)?;
    Ok(bus.emit(Draft {
        kind,
        app: app.map(|(id, name)| (id.to_string(), name.to_string())),
        visibility,
        data,
    })?)
}

/// Who the caller reads the history as: the admin every event, an app its own and
/// public ones.
pub fn viewer(caller: &Caller) -> Viewer {
    match caller.app_id() {
        Some(id) => Viewer::App(id.to_string()),
        None => Viewer::Admin,
    }
}

/// Events after `since` that the caller may see (see [`viewer`]), whose type is under
/// `type_prefix`, oldest first, at most `limit`.
pub fn since(
    bus: &Events,
    caller: &Caller,
    since: u64,
    type_prefix: Option<&str>,
    limit: usize,
) -> Result<Vec<Arc<Event>>, SyscallError> {
    let filter = Filter {
        type_prefix: type_prefix.filter(|p| !p.is_empty()).map(str::to_string),
        app: None,
        viewer: viewer(caller),
    };
    Ok(bus.query_blocking(&filter, since, limit)?)
}

/// Counts one invocation's emits against [`MAX_EMITS_PER_INVOCATION`].
#[derive(Debug, Default)]
pub struct Quota {
    used: u32,
}

impl Quota {
    /// Takes one emit, or refuses once the invocation has had its share.
    pub fn take(&mut self) -> Result<(), EventError> {
        if self.used >= MAX_EMITS_PER_INVOCATION {
            return Err(EventError::RateLimited(MAX_EMITS_PER_INVOCATION));
        }
        self.used += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    #[test]
    fn apps_cannot_forge_kernel_events_nor_read_private_ones() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let bus = Events::start(storage, Arc::new(crate::time::Clock::new()), 100).unwrap();
        let (a, b) = (Caller::app("a"), Caller::app("b"));
        let forged =
            emit(&bus, &a, Some(("a", "alpha")), "login.failed", serde_json::json!({}), Visibility::Public);
        assert_eq!(forged.unwrap().kind, "app.login.failed");
        emit(&bus, &b, Some(("b", "beta")), "secret", serde_json::json!({"pin": 1234}), Visibility::Private)
            .unwrap();
        emit(&bus, &b, Some(("b", "beta")), "news", serde_json::json!({}), Visibility::Public).unwrap();
        bus.notify(crate::events::Kind::LoginFailed, None, serde_json::json!({}));
        let seen: Vec<String> =
            since(&bus, &a, 0, None, 100).unwrap().iter().map(|e| e.kind.clone()).collect();
        assert_eq!(seen, ["app.login.failed", "app.news"]);
        // Posing as another app, or untagged as the node, is refused and emits nothing.
        let last = bus.last_id();
        let posing = emit(&bus, &a, Some(("b", "beta")), "x", serde_json::json!({}), Visibility::Private);
        assert_eq!(posing.unwrap_err().code(), "forbidden");
        assert_eq!(
            emit(&bus, &a, None, "x", serde_json::json!({}), Visibility::Public).unwrap_err().code(),
            "forbidden"
        );
        let bad = emit(&bus, &Caller::Local, None, "Bad Type", serde_json::json!({}), Visibility::Public);
        assert_eq!(bad.unwrap_err().code(), "bad_type");
        assert_eq!(bus.last_id(), last);
        assert_eq!(since(&bus, &Caller::Local, 0, None, 100).unwrap().len(), 4, "the admin sees all");
        let mut quota = Quota::default();
        for _ in 0..MAX_EMITS_PER_INVOCATION {
            quota.take().unwrap();
        }
        assert!(matches!(quota.take(), Err(EventError::RateLimited(_))));
    }
}
