//! API tokens: create (the secret is answered once), list, revoke.

use super::{Caller, Kind, SyscallError};
use crate::events::{Events, Kind as EventKind};
use crate::security::tokens::{self, TokenInfo, MAX_NAME_LEN};
use crate::storage::Storage;
use crate::time::Clock;
use std::sync::Arc;

/// Checks a token name: 1 to [`MAX_NAME_LEN`] printable characters (trimmed).
fn check_name(name: &str) -> Result<String, SyscallError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(SyscallError::refused(
            Kind::Invalid,
            "bad_name",
            format!("a token name is 1-{MAX_NAME_LEN} printable characters"),
        ));
    }
    Ok(name.to_string())
}

/// Creates a token named `name`, owned by the caller's user when a session creates it;
/// returns its info and the secret, which is in this answer and nowhere else, ever.
pub async fn create(
    storage: &Arc<Storage>,
    clock: &Clock,
    events: &Events,
    caller: &Caller,
    name: &str,
) -> Result<(TokenInfo, String), SyscallError> {
    caller.require_admin()?;
    let name = check_name(name)?;
    let user = caller.user().map(str::to_string);
    let now = clock.now_millis();
    let (info, secret) = storage.write(move |conn| tokens::create(conn, &name, user.as_deref(), now)).await?;
    events.notify(
        EventKind::TokenCreated,
        None,
        serde_json::json!({"id": info.id, "name": info.name, "prefix": info.prefix}),
    );
    Ok((info, secret))
}

/// Every token (never a secret), newest first.
pub async fn list(storage: &Arc<Storage>, caller: &Caller) -> Result<Vec<TokenInfo>, SyscallError> {
    caller.require_admin()?;
    Ok(storage.read(tokens::list).await?)
}

/// Revokes the live token `id`; `not_found` when there is none.
pub async fn revoke(
    storage: &Arc<Storage>,
    clock: &Clock,
    events: &Events,
    caller: &Caller,
    id: &str,
) -> Result<(), SyscallError> {
    caller.require_admin()?;
    let now = clock.now_millis();
    let key = id.to_string();
    if !storage.write(move |conn| tokens::revoke(conn, &key, now)).await? {
        let shown: String = id.chars().take(64).collect();
        return Err(SyscallError::not_found(format!("no live token '{}'", shown.escape_default())));
    }
    events.notify(EventKind::TokenRevoked, None, serde_json::json!({"id": id}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::apps::tests::node;

    #[test]
    fn apps_cannot_touch_tokens_and_bad_names_change_nothing() {
        let (_dir, storage, bus) = node();
        let clock = Clock::new();
        let app = Caller::app("a");
        smol::block_on(async {
            assert_eq!(create(&storage, &clock, &bus, &app, "x").await.unwrap_err().code(), "forbidden");
            assert_eq!(list(&storage, &app).await.unwrap_err().code(), "forbidden");
            for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_LEN + 1)] {
                let err = create(&storage, &clock, &bus, &Caller::Local, bad).await.unwrap_err();
                assert_eq!((err.code(), err.kind()), ("bad_name", Kind::Invalid), "{bad:?}");
            }
            assert!(
                list(&storage, &Caller::Local).await.unwrap().is_empty(),
                "refused creates wrote nothing"
            );
            let admin = Caller::Token { id: "t".into() };
            let (info, secret) = create(&storage, &clock, &bus, &admin, " ci ").await.unwrap();
            assert_eq!((info.name.as_str(), &secret[..4]), ("ci", "fzt_"));
            assert_eq!(revoke(&storage, &clock, &bus, &app, &info.id).await.unwrap_err().code(), "forbidden");
            assert!(list(&storage, &admin).await.unwrap()[0].revoked_at.is_none());
            revoke(&storage, &clock, &bus, &admin, &info.id).await.unwrap();
            assert_eq!(
                revoke(&storage, &clock, &bus, &admin, &info.id).await.unwrap_err().code(),
                "not_found"
            );
        });
    }
}
