//! Outbound HTTP for apps (`fazt.net.fetch`) and its administration: each app's
//! allow-list (`fazt net allow|deny|list`), the request log (`fazt net logs`), and the
//! limits and circuit breakers in force (`fazt net limits`). The work is the
//! [`crate::egress`] service's; this file decides who may ask.

use super::{Caller, Kind, SyscallError};
use crate::apps::AppSummary;
use crate::egress::store::{self, AppLimits, LogEntry, Rule};
use crate::egress::{CircuitStatus, Egress, EgressError, Request, Response, Settings};
use crate::storage::Storage;
use crate::time::UnixMillis;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

impl From<EgressError> for SyscallError {
    fn from(err: EgressError) -> Self {
        let kind = match &err {
            EgressError::BadUrl(_) | EgressError::Invalid(_) => Kind::Invalid,
            EgressError::HostNotAllowed(_) | EgressError::PrivateAddress(_) => Kind::Forbidden,
            EgressError::TooLarge(_) => Kind::TooLarge,
            EgressError::Timeout(_) => Kind::Timeout,
            EgressError::CircuitOpen { .. } => Kind::Busy,
            EgressError::TooManyRedirects(_) | EgressError::Upstream(_) => Kind::Upstream,
            EgressError::Busy(_) => Kind::RateLimited,
            EgressError::Storage(_) => Kind::Internal,
        };
        let retry_after = match &err {
            EgressError::CircuitOpen { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        match err {
            EgressError::Storage(storage) => SyscallError::Storage(storage),
            other => {
                SyscallError::Refused { kind, code: other.code(), message: other.to_string(), retry_after }
            }
        }
    }
}

/// Sends `request` as the app `app_id`: only the app itself may (an app's allow-list
/// is its own), within `budget` when given (the handler's time left).
pub fn fetch(
    egress: &Egress,
    caller: &Caller,
    app_id: &str,
    request: Request,
    budget: Option<Duration>,
) -> Result<Response, SyscallError> {
    if caller.app_id() != Some(app_id) {
        return Err(SyscallError::refused(
            Kind::Forbidden,
            "forbidden",
            "outbound requests are made by an app's own code (fazt.net.fetch)",
        ));
    }
    Ok(egress.fetch(app_id, request, budget)?)
}

/// Adds `host` (`HOST`, `HOST:PORT`, `*.DOMAIN`; with `private`, an exact `HOST:PORT`
/// that may be a LAN address) to the allow-list of the app `app` (name or id). Returns
/// the app, the entry as stored, and whether it changed anything.
pub async fn allow(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: &str,
    host: &str,
    private: bool,
    now: UnixMillis,
) -> Result<(AppSummary, Rule, bool), SyscallError> {
    caller.require_admin()?;
    let rule = Rule::parse(host, private)?;
    let found = super::apps::find(storage, caller, app).await?;
    let (id, stored) = (found.id.clone(), rule.clone());
    let changed = storage.write(move |c| store::allow(c, &id, &stored, now)).await?;
    Ok((found, rule, changed))
}

/// Removes `host` (`HOST`: every port; `HOST:PORT`: that one) from the app's
/// allow-list; how many entries went.
pub async fn deny(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: &str,
    host: &str,
) -> Result<usize, SyscallError> {
    caller.require_admin()?;
    let rule = Rule::parse(host, false)?;
    let found = super::apps::find(storage, caller, app).await?;
    Ok(storage.write(move |c| store::deny(c, &found.id, &rule.host, rule.port)).await?)
}

/// The allow-list of one app (name or id), or of every app: (app id, app name, entry).
pub async fn list(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: Option<&str>,
) -> Result<Vec<(String, String, Rule)>, SyscallError> {
    caller.require_admin()?;
    match app {
        Some(app) => {
            let found = super::apps::find(storage, caller, app).await?;
            let id = found.id.clone();
            let rules = storage.read(move |c| store::rules(c, &id)).await?;
            Ok(rules.into_iter().map(|r| (found.id.clone(), found.name.clone(), r)).collect())
        }
        None => Ok(storage.read(store::all_rules).await?),
    }
}

/// Outbound requests (of one app, name or id, when given), oldest first: the last
/// `limit`, or with `after` the first `limit` after that id.
pub async fn logs(
    storage: &Arc<Storage>,
    caller: &Caller,
    app: Option<&str>,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<LogEntry>, SyscallError> {
    caller.require_admin()?;
    let id = match app {
        Some(app) => Some(super::apps::find(storage, caller, app).await?.id),
        None => None,
    };
    Ok(storage.read(move |c| store::recent(c, id.as_deref(), after, limit)).await?)
}

/// The app's own limits (`None`: the node's) and the limits in force for it.
pub async fn app_limits(
    storage: &Arc<Storage>,
    egress: &Egress,
    caller: &Caller,
    app: &str,
) -> Result<(AppSummary, AppLimits, Settings), SyscallError> {
    caller.require_admin()?;
    let found = super::apps::find(storage, caller, app).await?;
    let id = found.id.clone();
    let own = storage.read(move |c| store::app_limits(c, &id)).await?;
    let effective = own.over(egress.settings());
    Ok((found, own, effective))
}

/// Replaces the app's own limits (all `None`: back to the node's); checked first, so a
/// refused change changes nothing.
pub async fn set_app_limits(
    storage: &Arc<Storage>,
    egress: &Egress,
    caller: &Caller,
    app: &str,
    limits: AppLimits,
) -> Result<(AppSummary, AppLimits, Settings), SyscallError> {
    caller.require_admin()?;
    limits.check()?;
    let found = super::apps::find(storage, caller, app).await?;
    let id = found.id.clone();
    storage.write(move |c| store::set_app_limits(c, &id, &limits)).await?;
    Ok((found, limits, limits.over(egress.settings())))
}

/// What `fazt net limits` shows.
#[derive(Debug, Clone)]
pub struct Status {
    /// The limits in force.
    pub settings: Settings,
    /// Hosts whose circuit has failures or is open.
    pub circuits: Vec<CircuitStatus>,
    /// Requests in flight per app id.
    pub in_flight: BTreeMap<String, usize>,
}

/// The limits and the circuit breakers' state.
pub fn status(egress: &Egress, caller: &Caller) -> Result<Status, SyscallError> {
    caller.require_admin()?;
    Ok(Status { settings: egress.settings(), circuits: egress.circuits(), in_flight: egress.in_flight() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_app_itself_fetches_and_only_the_admin_administers() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let clock = Arc::new(crate::time::Clock::new());
        let egress = Egress::new(storage.clone(), clock, None, Settings::default());
        let request = || Request { url: "http://example.com/".into(), ..Request::default() };
        for caller in [Caller::app("b"), Caller::Local, Caller::Kernel, Caller::Visitor { ip: None }] {
            let err = fetch(&egress, &caller, "a", request(), None).unwrap_err();
            assert_eq!(err.code(), "forbidden", "{caller:?}");
        }
        // Nothing on the list: refused before any name is resolved.
        let err = fetch(&egress, &Caller::app("a"), "a", request(), None).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("host_not_allowed", Kind::Forbidden));
        assert_eq!(status(&egress, &Caller::app("a")).unwrap_err().code(), "forbidden");
        assert!(status(&egress, &Caller::Local).is_ok());
        let logged = smol::block_on(logs(&storage, &Caller::Local, None, None, 10)).unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].error.as_deref(), Some("host_not_allowed"));
        let app = Caller::app("a");
        assert_eq!(smol::block_on(logs(&storage, &app, None, None, 10)).unwrap_err().code(), "forbidden");
        assert_eq!(
            smol::block_on(allow(&storage, &app, "a", "example.com", false, 0)).unwrap_err().code(),
            "forbidden"
        );
    }

    #[test]
    fn egress_errors_keep_their_codes_and_get_their_kinds() {
        let cases: Vec<(EgressError, &str, Kind)> = vec![
            (EgressError::BadUrl("x".into()), "bad_url", Kind::Invalid),
            (EgressError::HostNotAllowed("x".into()), "host_not_allowed", Kind::Forbidden),
            (EgressError::PrivateAddress("x".into()), "private_address", Kind::Forbidden),
            (EgressError::TooLarge("x".into()), "too_large", Kind::TooLarge),
            (EgressError::Timeout("x".into()), "timeout", Kind::Timeout),
            (EgressError::TooManyRedirects("x".into()), "too_many_redirects", Kind::Upstream),
            (EgressError::Upstream("x".into()), "upstream_error", Kind::Upstream),
            (EgressError::Busy("x".into()), "rate_limited", Kind::RateLimited),
        ];
        for (err, code, kind) in cases {
            let sys = SyscallError::from(err);
            assert_eq!((sys.code(), sys.kind()), (code, kind));
        }
        let open = SyscallError::from(EgressError::CircuitOpen {
            host: "h".into(),
            failures: 3,
            retry_after: Duration::from_millis(2500),
        });
        assert_eq!((open.code(), open.kind()), ("circuit_open", Kind::Busy));
        assert!(matches!(open, SyscallError::Refused { retry_after: Some(2), .. }));
    }
}
