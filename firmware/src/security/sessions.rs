//! Browser sessions: a random cookie value whose hash is stored with an expiry.

use super::secret_hash;
use crate::storage::StorageError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection, OptionalExtension};

/// How long a session lasts without a new login: a week, like most dashboards.
pub const SESSION_TTL_MILLIS: i64 = 7 * 24 * 3600 * 1000;

/// The cookie name over plain HTTP.
pub const COOKIE: &str = "fazt_session";

/// The cookie name over HTTPS. Browsers accept a `__Host-` cookie only with `Secure`,
/// `Path=/` and no `Domain`, so an app on a sibling subdomain cannot set one that the
/// admin host would receive ("cookie tossing").
pub const SECURE_COOKIE: &str = "__Host-fazt_session";

/// Session cookies tried per request. Over plain HTTP any app on a sibling subdomain can
/// add `fazt_session` cookies for the parent domain (sent before the admin's own when
/// their path is longer), so every one is tried; the cap bounds the lookups a single
/// request can cost.
pub const MAX_TRIED: usize = 16;

/// The `Set-Cookie` value that starts a session; `secure` when the request came over
/// TLS (the cookie is then `Secure` and named [`SECURE_COOKIE`]).
pub fn set_cookie(secret: &str, secure: bool) -> String {
    let max_age = SESSION_TTL_MILLIS / 1000;
    match secure {
        true => {
            format!("{SECURE_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
        }
        false => format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"),
    }
}

/// The `Set-Cookie` values that end a session in the browser.
pub fn clear_cookies(secure: bool) -> Vec<String> {
    let plain = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    match secure {
        true => {
            vec![format!("{SECURE_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"), plain]
        }
        false => vec![plain],
    }
}

/// The session secrets a request's `Cookie` headers carry, [`SECURE_COOKIE`] first, at
/// most [`MAX_TRIED`]; a request is authenticated when any of them is a live session.
pub fn presented(headers: &http::HeaderMap) -> Vec<&str> {
    let pairs = || {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
    };
    let named = |name: &'static str| pairs().filter(move |(n, _)| *n == name).map(|(_, v)| v.trim());
    named(SECURE_COOKIE).chain(named(COOKIE)).filter(|v| !v.is_empty()).take(MAX_TRIED).collect()
}

/// Creates a session for `user_id`; returns the cookie value.
pub fn create(conn: &Connection, user_id: &str, now: UnixMillis) -> Result<String, StorageError> {
    let secret = crate::ids::new_secret(32);
    // Expired sessions are swept here rather than by a timer: logins are rare.
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
    conn.execute(
        "INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![secret_hash(&secret), user_id, now, now + SESSION_TTL_MILLIS],
    )?;
    Ok(secret)
}

/// The user of a live session.
pub fn lookup(conn: &Connection, secret: &str, now: UnixMillis) -> Result<Option<String>, StorageError> {
    Ok(conn
        .query_row(
            "SELECT user_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
            params![secret_hash(secret), now],
            |r| r.get(0),
        )
        .optional()?)
}

/// The user of the first live session among `secrets`.
pub fn lookup_any(
    conn: &Connection,
    secrets: &[String],
    now: UnixMillis,
) -> Result<Option<String>, StorageError> {
    for secret in secrets {
        if let Some(user) = lookup(conn, secret, now)? {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// Ends a session.
pub fn delete(conn: &Connection, secret: &str) -> Result<(), StorageError> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [secret_hash(secret)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for c in cookies {
            map.append(http::header::COOKIE, http::HeaderValue::from_str(c).unwrap());
        }
        map
    }

    #[test]
    fn every_session_cookie_is_presented_host_prefixed_first() {
        // A sibling app tossed `fazt_session=junk` for the parent domain: the browser
        // sends it first, then the admin's own.
        let h = headers(&["fazt_session=junk; theme=dark; fazt_session=real", "__Host-fazt_session=tls"]);
        assert_eq!(presented(&h), ["tls", "junk", "real"]);
        assert!(presented(&headers(&["xfazt_session=a; fazt_session_x=b; fazt_session="])).is_empty());
        let many = vec!["fazt_session=x"; 40].join("; ");
        assert_eq!(presented(&headers(&[&many])).len(), MAX_TRIED);
    }

    #[test]
    fn the_cookie_is_secure_and_host_only_over_tls() {
        let tls = set_cookie("s3cret", true);
        assert!(tls.starts_with("__Host-fazt_session=s3cret; Path=/; Secure; HttpOnly"), "{tls}");
        assert!(!tls.contains("Domain"));
        let plain = set_cookie("s3cret", false);
        assert!(plain.starts_with("fazt_session=s3cret; Path=/; HttpOnly") && !plain.contains("Secure"));
        assert_eq!(clear_cookies(true).len(), 2);
    }
}
