//! The first-boot setup: a client on the local network claims an unclaimed node with the
//! one-time setup code (see [`crate::security::setup`]). The caller is a
//! [`Caller::Visitor`] (no credentials yet: the code is the credential), let in by
//! [`Caller::require_setup`] from the addresses `setup.page` allows. The page itself,
//! its headers and the CSRF header check are HTTP and stay in `net::setup`.

use super::{Caller, Kind, SyscallError};
use crate::security::ratelimit::LoginLimiter;
use crate::security::setup::{self, Claimed, SetupError, SetupMode, SetupState};
use crate::security::{password, users};
use crate::storage::Storage;
use crate::time::Clock;
use std::sync::Arc;

impl From<SetupError> for SyscallError {
    fn from(err: SetupError) -> Self {
        match err {
            SetupError::Claimed => already_set_up(),
            SetupError::WrongCode => {
                SyscallError::refused(Kind::Forbidden, "bad_setup_code", err.to_string())
            }
            SetupError::Credentials(credentials) => credentials.into(),
            SetupError::Storage(storage) => storage.into(),
        }
    }
}

fn already_set_up() -> SyscallError {
    SyscallError::refused(Kind::Gone, "already_set_up", SetupError::Claimed.to_string())
}

/// Refuses unless the setup page is on (`not_found` when `setup.page` is off) and the
/// caller may use it (`not_local`, see [`Caller::require_setup`]).
pub fn admit(state: &SetupState, caller: &Caller) -> Result<(), SyscallError> {
    if state.mode == SetupMode::Off {
        return Err(SyscallError::not_found("the first-boot setup page is off (setup.page = off)"));
    }
    caller.require_setup(state.mode)
}

/// Refuses with `already_set_up` (gone for good) once the node is known to be claimed.
pub fn still_open(state: &SetupState) -> Result<(), SyscallError> {
    match state.maybe_unclaimed() {
        true => Ok(()),
        false => Err(already_set_up()),
    }
}

/// The setup code to show the caller, while the node is unclaimed (`None` after).
pub async fn code(
    storage: &Arc<Storage>,
    state: &SetupState,
    caller: &Caller,
) -> Result<Option<String>, SyscallError> {
    admit(state, caller)?;
    Ok(state.pending_code(storage).await?)
}

/// What the caller chose for the admin.
#[derive(Debug)]
pub struct Claim<'a> {
    /// The setup code as typed.
    pub code: &'a str,
    /// The admin's user name (`admin` when empty or absent).
    pub username: Option<&'a str>,
    /// The admin's new password.
    pub password: String,
}

/// Checks the setup code, sets the admin's credentials, claims the node and answers the
/// user name with a new session and API token. Malformed input is refused first
/// (`bad_username`, `bad_password`), then tries are braked per address like logins
/// (`rate_limited`), then a wrong code is `bad_setup_code`; any refusal changes nothing.
pub async fn claim(
    storage: &Arc<Storage>,
    clock: &Clock,
    limiter: &LoginLimiter,
    state: &SetupState,
    caller: &Caller,
    claim: Claim<'_>,
) -> Result<(String, Claimed), SyscallError> {
    admit(state, caller)?;
    still_open(state)?;
    let username = claim.username.filter(|u| !u.is_empty()).unwrap_or("admin").to_string();
    // Malformed input is refused before the brake: only tries of a code count.
    users::check_username(&username)?;
    password::check_length(&claim.password).map_err(users::CredentialsError::from)?;
    let ip = match caller {
        Caller::Visitor { ip } => *ip,
        _ => None,
    };
    if let Some(ip) = ip {
        if let Err(wait) = limiter.attempt(ip, clock.now_millis()) {
            return Err(SyscallError::Refused {
                kind: Kind::RateLimited,
                code: "rate_limited",
                message: format!("too many attempts; try again in {wait} s"),
                retry_after: Some(wait),
            });
        }
    }
    let now = clock.now_millis();
    let (code, name, new_password) = (claim.code.to_string(), username.clone(), claim.password);
    let result = storage
        .write_durable(move |conn| -> Result<_, SetupError> {
            setup::complete(conn, &code, &name, &new_password, now)
        })
        .await;
    match result {
        Ok(claimed) => {
            state.claimed();
            tracing::warn!(?ip, user = %username, "first-boot setup done: admin password set, node claimed");
            Ok((username, claimed))
        }
        Err(err) => {
            match err {
                SetupError::Claimed => state.claimed(),
                SetupError::WrongCode => tracing::warn!(?ip, "first-boot setup with a wrong code"),
                _ => {}
            }
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::node;

    fn unclaimed(storage: &Storage, mode: SetupMode) -> (SetupState, String) {
        let code = storage.write_blocking(|conn| setup::create_code(conn, "first-token-id")).unwrap();
        (SetupState::load(storage, mode).unwrap(), code)
    }

    fn visitor(ip: &str) -> Caller {
        Caller::Visitor { ip: Some(ip.parse().unwrap()) }
    }

    fn chosen<'a>(code: &'a str, password: &str) -> Claim<'a> {
        Claim { code, username: None, password: password.into() }
    }

    #[test]
    fn only_visitors_from_where_the_mode_allows_see_the_code_or_claim() {
        let (_dir, storage, _bus) = node();
        let (state, secret) = unclaimed(&storage, SetupMode::Loopback);
        let (clock, limiter) = (Clock::new(), LoginLimiter::default());
        smol::block_on(async {
            let app = Caller::app("a");
            let token = Caller::Token { id: "t".into() };
            for (caller, expected) in [
                (&app, "forbidden"),
                (&token, "forbidden"),
                (&visitor("192.168.1.2"), "not_local"),
                (&Caller::Visitor { ip: None }, "not_local"),
            ] {
                assert_eq!(code(&storage, &state, caller).await.unwrap_err().code(), expected);
                let err =
                    claim(&storage, &clock, &limiter, &state, caller, chosen(&secret, "long enough pw"))
                        .await
                        .unwrap_err();
                assert_eq!((err.code(), err.kind()), (expected, Kind::Forbidden), "{caller:?}");
            }
            let here = visitor("127.0.0.1");
            assert_eq!(code(&storage, &state, &here).await.unwrap().as_deref(), Some(secret.as_str()));
            assert!(state.maybe_unclaimed(), "refused claims claim nothing");
            let (user, _claimed) =
                claim(&storage, &clock, &limiter, &state, &here, chosen(&secret, "long enough pw"))
                    .await
                    .unwrap();
            assert_eq!(user, "admin");
            let again = claim(&storage, &clock, &limiter, &state, &here, chosen(&secret, "long enough pw"))
                .await
                .unwrap_err();
            assert_eq!((again.code(), again.kind()), ("already_set_up", Kind::Gone));
            assert_eq!(code(&storage, &state, &here).await.unwrap(), None);
        });
        let off = SetupState::load(&storage, SetupMode::Off).unwrap();
        assert_eq!(admit(&off, &visitor("127.0.0.1")).unwrap_err().code(), "not_found");
    }

    #[test]
    fn hostile_claims_are_refused_with_stable_codes_and_change_nothing() {
        let (_dir, storage, _bus) = node();
        let (state, code) = unclaimed(&storage, SetupMode::Lan);
        let (clock, limiter) = (Clock::new(), LoginLimiter::default());
        let here = visitor("10.0.0.7");
        smol::block_on(async {
            let long = "x".repeat(10_000);
            let cases: [(Claim<'_>, &str); 5] = [
                (
                    Claim { code: &code, username: Some("a b'; --"), password: "long enough pw".into() },
                    "bad_username",
                ),
                (chosen(&code, "short"), "bad_password"),
                (chosen("wrong-code-0000", "long enough pw"), "bad_setup_code"),
                (chosen(&long, "long enough pw"), "bad_setup_code"),
                (chosen("", "long enough pw"), "bad_setup_code"),
            ];
            for (attempt, expected) in cases {
                let err = claim(&storage, &clock, &limiter, &state, &here, attempt).await.unwrap_err();
                assert_eq!(err.code(), expected);
            }
            assert!(state.maybe_unclaimed());
            assert_eq!(storage.read_blocking(setup::code).unwrap().as_deref(), Some(code.as_str()));
            assert_eq!(storage.read_blocking(|c| users::login_record(c, "admin")).unwrap(), None);
        });
    }
}
