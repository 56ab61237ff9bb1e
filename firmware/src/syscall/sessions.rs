//! Who a caller is: a password login (which makes a session), a session or an API
//! token presented with a request, and logout. These build the [`Caller`] every other
//! syscall takes; the HTTP parts (cookies, headers, CSRF) stay in `net`.

use super::{Caller, Kind, SyscallError};
use crate::events::{Events, Kind as EventKind};
use crate::security::ratelimit::LoginLimiter;
use crate::security::setup::SetupState;
use crate::security::{sessions, tokens, users};
use crate::storage::Storage;
use crate::time::Clock;
use std::net::IpAddr;
use std::sync::Arc;

/// What a login consults besides the database: the guessing brake, the cap on
/// concurrent password checks, and the first-boot setup that a login ends.
#[derive(Debug, Clone, Copy)]
pub struct Guards<'a> {
    /// Password-guessing brake per client address.
    pub limiter: &'a LoginLimiter,
    /// Password hashes checked at once.
    pub checks: &'a async_lock::Semaphore,
    /// First-boot setup state.
    pub setup: &'a SetupState,
}

fn unauthenticated(code: &'static str, message: &str) -> SyscallError {
    SyscallError::refused(Kind::Unauthenticated, code, message)
}

/// Checks `username` (default `admin`) and `password` from `ip`; answers the user name
/// and a new session secret. A failed login is told to the event bus; too many from
/// one address are refused with `rate_limited` before any check.
pub async fn login(
    storage: &Arc<Storage>,
    clock: &Clock,
    events: &Events,
    guards: Guards<'_>,
    ip: IpAddr,
    username: &str,
    password: String,
) -> Result<(String, String), SyscallError> {
    if let Err(wait) = guards.limiter.attempt(ip, clock.now_millis()) {
        return Err(SyscallError::Refused {
            kind: Kind::RateLimited,
            code: "rate_limited",
            message: format!("too many login attempts; try again in {wait} s"),
            retry_after: Some(wait),
        });
    }
    let username = if username.is_empty() { "admin" } else { username }.to_string();
    // argon2 takes tens of milliseconds and a lot of memory: it runs on the blocking
    // pool, a few at a time, never inside the database writer (where it would stall
    // every write of the node).
    let name = username.clone();
    let record = storage.read(move |conn| users::login_record(conn, &name)).await?;
    let user_id = {
        let _check = guards.checks.acquire().await;
        blocking::unblock(move || users::verify_login(record, &password)).await
    };
    let Some(user_id) = user_id else {
        tracing::warn!(%ip, "failed admin login");
        // The name as typed, cut: it comes from whoever is guessing.
        let user: String = username.chars().take(64).collect();
        events.notify(EventKind::LoginFailed, None, serde_json::json!({"user": user, "ip": ip.to_string()}));
        return Err(unauthenticated("bad_credentials", "wrong username or password"));
    };
    let now = clock.now_millis();
    let secret = storage.write(move |conn| sessions::create(conn, &user_id, now)).await?;
    guards.setup.claim(storage, "password login").await;
    Ok((username, secret))
}

/// The caller an API token makes (and records its use); `invalid_token` when it is
/// wrong or revoked.
pub async fn token(
    storage: &Arc<Storage>,
    clock: &Clock,
    setup: &SetupState,
    secret: &str,
) -> Result<Caller, SyscallError> {
    let presented = secret.to_string();
    let Some(id) = storage.read(move |conn| tokens::check(conn, &presented)).await? else {
        return Err(unauthenticated(
            "invalid_token",
            "the API token is wrong or revoked; create one in the dashboard and run `fazt client set-auth-token`",
        ));
    };
    let now = clock.now_millis();
    let touched = id.clone();
    storage.write(move |conn| tokens::touch(conn, &touched, now)).await?;
    setup.claim(storage, "API token").await;
    Ok(Caller::Token { id })
}

/// The caller a live session among `secrets` makes; `unauthenticated` when none is
/// live. Any live one counts: an app on a sibling subdomain can add session cookies
/// for the parent domain, and must not be able to shadow the admin's own that way.
pub async fn session(
    storage: &Arc<Storage>,
    clock: &Clock,
    secrets: Vec<String>,
) -> Result<Caller, SyscallError> {
    if secrets.is_empty() {
        return Err(unauthenticated("unauthenticated", "log in or send an API token"));
    }
    let now = clock.now_millis();
    match storage.read(move |conn| sessions::lookup_any(conn, &secrets, now)).await? {
        Some(user) => Ok(Caller::Admin { user }),
        None => Err(unauthenticated("unauthenticated", "the session has ended; log in again")),
    }
}

/// Ends every session among `secrets` (holding a session's secret is what allows
/// ending it).
pub async fn logout(storage: &Arc<Storage>, secrets: Vec<String>) -> Result<(), SyscallError> {
    if secrets.is_empty() {
        return Ok(());
    }
    Ok(storage
        .write(move |conn| secrets.iter().try_for_each(|secret| sessions::delete(conn, secret)))
        .await?)
}

impl From<users::CredentialsError> for SyscallError {
    fn from(err: users::CredentialsError) -> Self {
        match err {
            users::CredentialsError::Storage(storage) => storage.into(),
            users::CredentialsError::BadUsername => {
                SyscallError::refused(Kind::Invalid, "bad_username", err.to_string())
            }
            users::CredentialsError::BadPassword(_) => {
                SyscallError::refused(Kind::Invalid, "bad_password", err.to_string())
            }
        }
    }
}

/// Sets the admin's user name and password (ending every browser session) and claims
/// the node, so the first-boot setup page is gone. Blocking (argon2): for the offline
/// CLI. A refused name or password changes nothing.
pub fn set_credentials(
    storage: &Storage,
    clock: &Clock,
    caller: &Caller,
    username: &str,
    password: &str,
) -> Result<(), SyscallError> {
    caller.require_admin()?;
    let now = clock.now_millis();
    storage.write_blocking(|conn| -> Result<(), SyscallError> {
        users::set_admin(conn, username, password, now)?;
        crate::security::setup::claim(conn)?;
        Ok(())
    })
}

/// The name of the caller's user (`None` for a token or an app).
pub async fn whoami(storage: &Arc<Storage>, caller: &Caller) -> Result<Option<String>, SyscallError> {
    let Some(id) = caller.user().map(str::to_string) else { return Ok(None) };
    Ok(storage.read(move |conn| users::username(conn, &id)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::node;

    #[test]
    fn hostile_tokens_and_sessions_are_refused_with_stable_codes() {
        let (_dir, storage, _bus) = node();
        let clock = Clock::new();
        let setup = SetupState::load(&storage, crate::security::setup::SetupMode::Off).unwrap();
        smol::block_on(async {
            for bad in ["", "fzt_", "fzt_0000", "Bearer x", &format!("fzt_{}", "a".repeat(10_000))] {
                let err = token(&storage, &clock, &setup, bad).await.unwrap_err();
                assert_eq!((err.code(), err.kind()), ("invalid_token", Kind::Unauthenticated), "{bad:?}");
            }
            assert_eq!(session(&storage, &clock, vec![]).await.unwrap_err().code(), "unauthenticated");
            let forged = vec!["x".repeat(100), "'; DELETE FROM sessions; --".into()];
            assert_eq!(session(&storage, &clock, forged).await.unwrap_err().code(), "unauthenticated");
            let (_info, secret) =
                crate::syscall::tokens::create(&storage, &clock, &_bus, &Caller::Local, "ci").await.unwrap();
            assert!(matches!(token(&storage, &clock, &setup, &secret).await.unwrap(), Caller::Token { .. }));
        });
    }

    #[test]
    fn apps_cannot_set_credentials_and_bad_ones_change_nothing() {
        let (_dir, storage, _bus) = node();
        let clock = Clock::new();
        let app = Caller::app("a");
        assert_eq!(
            set_credentials(&storage, &clock, &app, "admin", "long enough pw").unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(
            set_credentials(&storage, &clock, &Caller::Local, "admin", "short").unwrap_err().code(),
            "bad_password"
        );
        let err =
            set_credentials(&storage, &clock, &Caller::Local, "a b'; --", "long enough pw").unwrap_err();
        assert_eq!(err.code(), "bad_username");
        assert_eq!(
            storage.read_blocking(|c| users::login_record(c, "admin")).unwrap(),
            None,
            "no user was made"
        );
        set_credentials(&storage, &clock, &Caller::Local, "admin", "long enough pw").unwrap();
        assert!(storage.read_blocking(|c| users::login_record(c, "admin")).unwrap().is_some());
    }
}
