//! The admin API: JSON over HTTP on `admin.<domain>/api/`.
//!
//! One file per resource; this module holds the route table ([`routes!`]) and the shared
//! request helpers.
//! Authentication is a session cookie (browser, after `POST /api/login`) or an API token
//! (`Authorization: Bearer fzt_…`, the CLI). Errors always have the shape of
//! [`ApiError`](super::response::ApiError).

mod apps;
mod auth;
mod backend;
mod beacon;
mod deploy;
mod egress;
mod events;
mod routes;
mod system;
mod time;
mod tls;
mod tokens;

use super::limits::HttpGuard;
use super::response::{ApiError, Resp};
use super::Web;
use crate::syscall::{Caller, Kind, SyscallError};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use routes::{Access, Captures, Route, Seg};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest JSON request body accepted.
const MAX_JSON_BYTES: usize = 256 * 1024;

/// The API, one row per endpoint: `Name: METHOD [path segments] access => |call| handler;`.
///
/// A segment is a literal (`"apps"`), a parameter bound by name for the handler (`id`),
/// or `..` for the rest of the path (`call.rest`). Access is `Public`, `Admin` (a
/// session or an API token, checked before the handler runs) or `PublicOrAdmin`. This
/// one table gives dispatch, 404 (no row has the path) and 405 with `Allow` (rows have
/// the path, none the method); see [`routes`].
macro_rules! routes {
    (@seg ..) => { Seg::Rest };
    (@seg $lit:literal) => { Seg::Lit($lit) };
    (@seg $param:ident) => { Seg::Param };
    (@bind $it:ident ..) => {};
    (@bind $it:ident $lit:literal) => {};
    (@bind $it:ident $param:ident) => { let $param: &str = $it.next().unwrap_or_default(); };
    ($( $name:ident : $method:ident [$($seg:tt),*] $access:ident => |$c:ident| $body:expr; )*) => {
        /// Which handler a row calls.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Handler { $($name),* }

        /// The table.
        static ROUTES: &[Route<Handler>] = &[$(
            Route {
                handler: Handler::$name,
                method: Method::$method,
                pattern: &[$(routes!(@seg $seg)),*],
                access: Access::$access,
            }
        ),*];

        /// Runs the handler of a row, its parameters bound by name.
        async fn call(handler: Handler, caps: Captures<'_>, call: Call<'_>) -> Result<Resp, ApiError> {
            match handler {
                $(Handler::$name => {
                    #[allow(unused_mut, unused_variables)]
                    let mut params = caps.params().iter().copied();
                    $(routes!(@bind params $seg);)*
                    let $c = call;
                    $body
                })*
            }
        }
    };
}

routes! {
    Login:         POST   ["login"]                      Public => |c| auth::login(c.web, c.peer, c.req).await;
    Logout:        POST   ["logout"]                     Public => |c| auth::logout(&c.web.kernel.storage, c.req).await;
    CaPem:         GET    ["tls", "ca.pem"]              Public => |c| tls::ca_pem(&c.web.tls);
    Health:        GET    ["system", "health"]           PublicOrAdmin => |c| match c.caller {
        None => Ok(system::liveness(&c.web.kernel)),
        Some(caller) => system::health(&c.web.kernel, &c.web.blobs, &caller).await,
    };
    Me:            GET    ["me"]                         Admin => |c| auth::me(&c.web.kernel.storage, signed_in(&c.caller)?).await;
    AppList:       GET    ["apps"]                       Admin => |c| apps::list(&c.web.kernel, signed_in(&c.caller)?).await;
    AppGet:        GET    ["apps", id]                   Admin => |c| apps::get(&c.web.kernel, signed_in(&c.caller)?, id).await;
    AppDelete:     DELETE ["apps", id]                   Admin => |c| apps::delete(&c.web.kernel, &c.web.sites, signed_in(&c.caller)?, id).await;
    AppRename:     POST   ["apps", id, "rename"]         Admin => |c| apps::rename(c.web, signed_in(&c.caller)?, id, c.req).await;
    AppFiles:      GET    ["apps", id, "files"]          Admin => |c| apps::files(&c.web.kernel.storage, signed_in(&c.caller)?, id).await;
    AppFile:       GET    ["apps", id, "files", ..]      Admin => |c| apps::file_content(&c.web.kernel.storage, signed_in(&c.caller)?, id, c.rest).await;
    AppLogs:       GET    ["apps", id, "logs"]           Admin => |c| backend::logs(&c.web.kernel, signed_in(&c.caller)?, id, c.req.uri()).await;
    AppInvoke:     POST   ["apps", id, "invoke"]         Admin => |c| backend::invoke(c.web, &signed_in(&c.caller)?.clone(), id, c.req).await;
    EnvList:       GET    ["apps", id, "env"]            Admin => |c| backend::env_list(&c.web.kernel, signed_in(&c.caller)?, id).await;
    EnvSet:        PUT    ["apps", id, "env", name]      Admin => |c| backend::env_set(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), id, name, c.req).await;
    EnvUnset:      DELETE ["apps", id, "env", name]      Admin => |c| backend::env_unset(&c.web.kernel, signed_in(&c.caller)?, id, name).await;
    LimitsGet:     GET    ["apps", id, "limits"]         Admin => |c| backend::limits_get(&c.web.kernel, signed_in(&c.caller)?, id).await;
    LimitsSet:     PUT    ["apps", id, "limits"]         Admin => |c| backend::limits_set(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), id, c.req).await;
    TokenList:     GET    ["tokens"]                     Admin => |c| tokens::list(&c.web.kernel.storage, signed_in(&c.caller)?).await;
    TokenCreate:   POST   ["tokens"]                     Admin => |c| tokens::create(&c.web.kernel, &c.web.http, signed_in(&c.caller)?.clone(), c.req).await;
    TokenRevoke:   DELETE ["tokens", id]                 Admin => |c| tokens::revoke(&c.web.kernel, signed_in(&c.caller)?, id).await;
    DeployCheck:   POST   ["deploy", "check"]            Admin => |c| deploy::check(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), c.req).await;
    Deploy:        POST   ["deploy"]                     Admin => |c| deploy::deploy(c.web, &signed_in(&c.caller)?.clone(), c.req).await;
    EventList:     GET    ["events"]                     Admin => |c| events::list(&c.web.kernel.events, signed_in(&c.caller)?, c.req).await;
    EventEmit:     POST   ["events"]                     Admin => |c| events::emit(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), c.req).await;
    SystemDb:      GET    ["system", "db"]               Admin => |c| system::db(&c.web.kernel, signed_in(&c.caller)?).await;
    SystemConfig:  GET    ["system", "config"]           Admin => |c| Ok(system::config(&c.web.kernel, signed_in(&c.caller)?)?);
    SystemKeys:    GET    ["system", "keys"]             Admin => |c| system::keys(&c.web.kernel, signed_in(&c.caller)?).await;
    SystemBeacon:  GET    ["system", "beacon"]           Admin => |c| beacon::status(&c.web.kernel.beacon, signed_in(&c.caller)?).await;
    NetAllowList:  GET    ["net", "allow"]               Admin => |c| egress::list(&c.web.kernel, signed_in(&c.caller)?, c.req.uri()).await;
    NetAllow:      POST   ["net", "allow"]               Admin => |c| egress::allow(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), c.req).await;
    NetDeny:       POST   ["net", "deny"]                Admin => |c| egress::deny(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), c.req).await;
    NetLogs:       GET    ["net", "logs"]                Admin => |c| egress::logs(&c.web.kernel, signed_in(&c.caller)?, c.req.uri()).await;
    NetLimits:     GET    ["net", "limits"]              Admin => |c| egress::limits(&c.web.kernel, signed_in(&c.caller)?).await;
    NetAppLimits:  GET    ["net", "limits", app]         Admin => |c| egress::app_limits(&c.web.kernel, signed_in(&c.caller)?, app).await;
    NetAppLimitsSet: PUT  ["net", "limits", app]         Admin => |c| egress::set_app_limits(&c.web.kernel, &c.web.http, &signed_in(&c.caller)?.clone(), app, c.req).await;
    TimeStatus:    GET    ["system", "time"]             Admin => |c| time::status(&c.web.kernel.timekeeper, signed_in(&c.caller)?).await;
    TimeSync:      POST   ["system", "time", "sync"]     Admin => |c| time::sync(&c.web.kernel.timekeeper, signed_in(&c.caller)?).await;
    TlsStatus:     GET    ["tls"]                        Admin => |c| tls::status(&c.web.tls, &c.web.kernel.clock, signed_in(&c.caller)?).await;
    CertList:      GET    ["tls", "certs"]               Admin => |c| tls::list(&c.web.tls, &c.web.kernel.clock, signed_in(&c.caller)?).await;
    CertAdd:       POST   ["tls", "certs"]               Admin => |c| tls::add(c.web, &signed_in(&c.caller)?.clone(), c.req).await;
    CertRemove:    DELETE ["tls", "certs", name]         Admin => |c| tls::remove(&c.web.tls, signed_in(&c.caller)?, name).await;
}

/// What a handler gets besides its named parameters.
struct Call<'a> {
    web: &'a Arc<Web>,
    peer: SocketAddr,
    req: Request<Incoming>,
    /// The caller, once its credentials are checked; `None` on public routes (and
    /// `PublicOrAdmin` ones called without credentials). What it may do is the
    /// syscalls' decision.
    caller: Option<Caller>,
    /// The `..` part of the path.
    rest: &'a str,
}

/// The checked caller of an `Admin` route (always there: dispatch checked it).
fn signed_in(caller: &Option<Caller>) -> Result<&Caller, ApiError> {
    caller.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in or send an API token")
    })
}

/// Routes an API request.
pub async fn handle(web: &Arc<Web>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    match dispatch(web, peer, req).await {
        Ok(resp) => resp,
        Err(err) => err.into_response(),
    }
}

async fn dispatch(web: &Arc<Web>, peer: SocketAddr, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let tail = path.strip_prefix("/api").unwrap_or(&path).trim_matches('/');
    let (route, caps) = routes::find(ROUTES, req.method(), tail, &path)?;
    let caller = match route.access {
        Access::Public => None,
        Access::PublicOrAdmin if !auth::has_credentials(&req) => None,
        Access::Admin | Access::PublicOrAdmin => Some(auth::authenticate(&web.kernel, &req).await?),
    };
    call(route.handler, caps, Call { web, peer, req, caller, rest: caps.rest }).await
}

/// The HTTP status of each kind of syscall refusal: the one place a syscall's error
/// becomes an HTTP answer (its code and message go out unchanged).
impl From<SyscallError> for ApiError {
    fn from(err: SyscallError) -> Self {
        let status = match err.kind() {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Gone => StatusCode::GONE,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::Full => StatusCode::INSUFFICIENT_STORAGE,
            Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Upstream => StatusCode::BAD_GATEWAY,
            Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match err {
            // The storage engine's own mapping logs what the client is not told.
            SyscallError::Storage(storage) => storage.into(),
            SyscallError::Refused { retry_after, .. } => {
                let mut api = ApiError::new(status, err.code(), err.to_string());
                api.retry_after = retry_after;
                api
            }
            other => ApiError::new(status, other.code(), other.to_string()),
        }
    }
}

/// Reads a JSON body of at most [`MAX_JSON_BYTES`], within the node's body limits.
pub(crate) async fn read_json<T: DeserializeOwned>(
    http: &HttpGuard,
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    let (parts, body) = req.into_parts();
    let limits = http.body_limits(MAX_JSON_BYTES);
    let (bytes, _reservation) = crate::net::body::read(&parts.headers, body, limits, &http.bodies).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("bad_json", format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::routes::{allow, find, match_path, overlap, MAX_PARAMS};
    use super::*;

    const METHODS: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];

    /// A path a route answers: its literals, `p1`, `p2`… for parameters, `a/b.html` for the rest.
    fn sample(pattern: &[Seg]) -> String {
        let mut n = 0;
        let parts: Vec<String> = pattern
            .iter()
            .map(|seg| match seg {
                Seg::Lit(lit) => lit.to_string(),
                Seg::Param => {
                    n += 1;
                    format!("p{n}")
                }
                Seg::Rest => "a/b.html".to_string(),
            })
            .collect();
        parts.join("/")
    }

    #[test]
    fn every_route_is_reached_and_its_path_answers_405_with_allow_for_other_methods() {
        for route in ROUTES {
            let path = sample(route.pattern);
            let (found, caps) = find(ROUTES, &route.method, &path, &path).unwrap();
            assert_eq!(found.handler, route.handler, "{} {path} reaches another row", route.method);
            let params = route.pattern.iter().filter(|s| **s == Seg::Param).count();
            assert_eq!(caps.params().len(), params, "{path}");
            let methods: Vec<&Method> =
                ROUTES.iter().filter(|r| match_path(r.pattern, &path).is_some()).map(|r| &r.method).collect();
            for method in &METHODS {
                match find(ROUTES, method, &path, &path) {
                    Ok((found, _)) => {
                        assert!(methods.contains(&method), "{method} {path}");
                        assert_eq!(found.method, *method);
                    }
                    Err(err) => {
                        assert!(!methods.contains(&method), "{method} {path}");
                        assert_eq!(err.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                        let mut expected: Vec<&str> = Vec::new();
                        for m in &methods {
                            if !expected.contains(&m.as_str()) {
                                expected.push(m.as_str());
                            }
                        }
                        assert_eq!(
                            err.allow.as_deref(),
                            Some(expected.join(", ").as_str()),
                            "{method} {path}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_two_routes_shadow_each_other() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    a.method != b.method || !overlap(a.pattern, b.pattern),
                    "{:?} and {:?} both take some {} path",
                    a.handler,
                    b.handler,
                    a.method
                );
                assert_ne!(a.handler, b.handler);
            }
            let rest = a.pattern.iter().position(|s| *s == Seg::Rest);
            assert!(rest.is_none_or(|at| at == a.pattern.len() - 1), "{:?}: `..` must be last", a.handler);
            assert!(a.pattern.iter().filter(|s| **s == Seg::Param).count() <= MAX_PARAMS, "{:?}", a.handler);
            assert!(!a.pattern.is_empty(), "{:?}", a.handler);
        }
    }

    #[test]
    fn syscall_errors_keep_their_code_and_get_the_status_of_their_kind() {
        let cases = [
            (SyscallError::Invalid("x".into()), StatusCode::BAD_REQUEST, "invalid"),
            (SyscallError::not_found("x"), StatusCode::NOT_FOUND, "not_found"),
            (SyscallError::refused(Kind::Forbidden, "system_app", "x"), StatusCode::FORBIDDEN, "system_app"),
            (
                SyscallError::refused(Kind::Conflict, "time_disabled", "x"),
                StatusCode::CONFLICT,
                "time_disabled",
            ),
            (
                SyscallError::QuotaExceeded { quota: 1, used: 1 },
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
            ),
            (crate::storage::StorageError::Full.into(), StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            (crate::storage::StorageError::Busy.into(), StatusCode::SERVICE_UNAVAILABLE, "db_busy"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.code(), code);
            let api = ApiError::from(err);
            assert_eq!((api.status, api.code), (status, code));
        }
        let wait = SyscallError::Refused {
            kind: Kind::RateLimited,
            code: "rate_limited",
            message: "later".into(),
            retry_after: Some(7),
        };
        let api = ApiError::from(wait);
        assert_eq!(
            (api.status, api.code, api.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(7))
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "",
            "nope",
            "system/nope",
            "apps/blog/nope",
            "apps/blog/env/A/B",
            "me/x",
            "tls/certs/a/b",
            "login/x",
        ] {
            for method in &METHODS {
                let err = find(ROUTES, method, path, path).unwrap_err();
                assert_eq!((err.status, err.allow), (StatusCode::NOT_FOUND, None), "{method} {path}");
            }
        }
    }

    #[test]
    fn allow_headers_and_public_rows() {
        for (path, methods) in [
            ("apps", "GET"),
            ("login", "POST"),
            ("apps/blog", "GET, DELETE"),
            ("apps/blog/env/KEY", "PUT, DELETE"),
            ("apps/blog/limits", "GET, PUT"),
            ("apps/blog/rename", "POST"),
            ("apps/blog/files/a/b", "GET"),
            ("tokens", "GET, POST"),
            ("events", "GET, POST"),
            ("tls/certs", "GET, POST"),
            ("tls/certs/example.com", "DELETE"),
            ("system/time/sync", "POST"),
        ] {
            assert_eq!(allow(ROUTES, path), methods, "{path}");
        }
        let public: Vec<String> = ROUTES
            .iter()
            .filter(|r| r.access != Access::Admin)
            .map(|r| format!("{} {} {:?}", r.method, sample(r.pattern), r.access))
            .collect();
        assert_eq!(
            public,
            [
                "POST login Public",
                "POST logout Public",
                "GET tls/ca.pem Public",
                "GET system/health PublicOrAdmin"
            ]
        );
    }
}
