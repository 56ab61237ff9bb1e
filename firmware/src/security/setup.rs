//! First-boot setup: a node with no keyboard or screen is claimed from a web page.
//!
//! A data file whose admin password was generated (not chosen) starts *unclaimed*: it
//! holds a one-time setup code (the `setup.code` state row). While the code exists, the
//! setup page (see `net::setup`) shows it to clients on the local network, and a POST
//! with the code sets the admin password. The node is *claimed*, and the row deleted for
//! good, by the first of: the setup POST, a successful password login, any request
//! with a valid API token, or `fazt server set-credentials`. Nothing creates the row
//! again, so the page cannot come back once the node is claimed.

use super::{password, sessions, tokens, users};
use crate::storage::state::{self, StateKey};
use crate::storage::{Storage, StorageError};
use crate::time::UnixMillis;
use rusqlite::Connection;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Who may see the setup page (the `setup.page` config key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupMode {
    /// Never shown.
    Off,
    /// Only to clients on this machine (127.0.0.0/8, ::1).
    Loopback,
    /// To clients on loopback, private (RFC 1918, fc00::/7) and link-local addresses.
    Lan,
}

impl SetupMode {
    /// The mode for a stored `setup.page` value (unknown words: off).
    pub fn parse(value: &str) -> SetupMode {
        match value {
            "lan" => SetupMode::Lan,
            "loopback" => SetupMode::Loopback,
            _ => SetupMode::Off,
        }
    }

    /// True when a client at `ip` may see the page in this mode.
    pub fn allows(self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            SetupMode::Off => false,
            SetupMode::Loopback => ip.is_loopback(),
            SetupMode::Lan => match ip {
                IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
                IpAddr::V6(v6) => {
                    let first = v6.segments()[0];
                    v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
                }
            },
        }
    }
}

/// Why a setup request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The node was claimed already.
    #[error("this node is set up already; log in with the admin password")]
    Claimed,
    /// The code does not match.
    #[error("wrong setup code; reload the setup page and use the code it shows")]
    WrongCode,
    /// The new username or password is not acceptable.
    #[error(transparent)]
    Credentials(#[from] users::CredentialsError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for SetupError {
    fn from(e: rusqlite::Error) -> Self {
        SetupError::Storage(e.into())
    }
}

/// What a completed setup hands back to the browser.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// A session cookie value for the new admin.
    pub session: String,
    /// A new API token for the CLI (shown once).
    pub token: String,
}

/// Writes a new setup code, making the node unclaimed; for `bootstrap` only.
/// `first_token` is the API token printed at first start (console, HDMI, the CLI's
/// config): the setup page revokes it, since whoever claims the node from the page
/// gets a new one and may not be the only one who saw the screen.
pub fn create_code(conn: &Connection, first_token: &str) -> Result<String, StorageError> {
    let code = generate_code();
    state::set(conn, StateKey::SetupCode, &code)?;
    state::set(conn, StateKey::SetupFirstToken, first_token)?;
    Ok(code)
}

/// The setup code, while the node is unclaimed.
pub fn code(conn: &Connection) -> Result<Option<String>, StorageError> {
    Ok(state::get(conn, StateKey::SetupCode)?)
}

/// Marks the node claimed; true when it was unclaimed until now.
pub fn claim(conn: &Connection) -> Result<bool, StorageError> {
    state::delete(conn, StateKey::SetupFirstToken)?;
    Ok(state::delete(conn, StateKey::SetupCode)?)
}

/// Checks `code`, sets the admin credentials, claims the node, and opens a session and a
/// new API token, all in one transaction: on any error nothing has changed.
pub fn complete(
    conn: &mut Connection,
    code: &str,
    username: &str,
    new_password: &str,
    now: UnixMillis,
) -> Result<Claimed, SetupError> {
    // Checked before the code, so a bad password never costs the code.
    users::check_username(username)?;
    password::check_length(new_password).map_err(users::CredentialsError::from)?;
    let tx = conn.transaction()?;
    let Some(stored) = state::get(&tx, StateKey::SetupCode)? else {
        return Err(SetupError::Claimed);
    };
    if !same_code(&stored, code) {
        return Err(SetupError::WrongCode);
    }
    users::set_admin_in(&tx, username, new_password, now)?;
    // The token shown at first start stops working: the page hands out a new one.
    if let Some(first) = state::get(&tx, StateKey::SetupFirstToken)? {
        tokens::revoke(&tx, &first, now)?;
    }
    claim(&tx)?;
    let user_id = users::user_id(&tx, username)?.ok_or(SetupError::Claimed)?;
    let session = sessions::create(&tx, &user_id, now)?;
    let (_, token) = tokens::create(&tx, "first-boot setup", Some(&user_id), now)?;
    tx.commit()?;
    Ok(Claimed { session, token })
}

/// Compares codes case- and space-insensitively, in time independent of where they differ.
fn same_code(stored: &str, given: &str) -> bool {
    let given: Vec<u8> = given.trim().bytes().map(|b| b.to_ascii_lowercase()).collect();
    let stored = stored.as_bytes();
    given.len() == stored.len() && given.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Twelve characters from an alphabet without look-alikes, in groups of four.
fn generate_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..3)
        .map(|_| (0..4).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The running node's view: the mode, and whether the node may still be unclaimed.
#[derive(Debug)]
pub struct SetupState {
    /// Who may see the page.
    pub mode: SetupMode,
    /// False once the node is known to be claimed; the database decides while true.
    maybe_unclaimed: AtomicBool,
}

impl SetupState {
    /// Loads the state at start.
    pub fn load(storage: &Storage, mode: SetupMode) -> Result<SetupState, StorageError> {
        let unclaimed = storage.read_blocking(code)?.is_some();
        Ok(SetupState { mode, maybe_unclaimed: AtomicBool::new(unclaimed) })
    }

    /// False once the node is known to be claimed (no database read).
    pub fn maybe_unclaimed(&self) -> bool {
        self.maybe_unclaimed.load(Ordering::Acquire)
    }

    /// The setup code while the node is unclaimed. Read from the database each time, so
    /// that `set-credentials` run beside the node ends the page too.
    pub async fn pending_code(&self, storage: &Arc<Storage>) -> Result<Option<String>, StorageError> {
        if !self.maybe_unclaimed() {
            return Ok(None);
        }
        let code = storage.read(code).await?;
        if code.is_none() {
            self.maybe_unclaimed.store(false, Ordering::Release);
        }
        Ok(code)
    }

    /// Claims the node after a login or a token use; a no-op once claimed.
    pub async fn claim(&self, storage: &Arc<Storage>, how: &'static str) {
        if !self.maybe_unclaimed() {
            return;
        }
        match storage.write_durable(|conn| claim(conn)).await {
            Ok(true) => tracing::info!(by = how, "node claimed; the first-boot setup page is gone for good"),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "could not record the claim; the setup page may stay");
                return;
            }
        }
        self.maybe_unclaimed.store(false, Ordering::Release);
    }

    /// Records that the setup POST claimed the node.
    pub fn claimed(&self) {
        self.maybe_unclaimed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, Arc<Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        (dir, storage)
    }

    #[test]
    fn modes_allow_only_their_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(SetupMode::Loopback.allows(ip(local)), "{local}");
        }
        for lan in ["10.1.2.3", "172.16.0.9", "192.168.1.10", "169.254.3.4", "fe80::1", "fd00::5"] {
            assert!(SetupMode::Lan.allows(ip(lan)), "{lan}");
            assert!(!SetupMode::Loopback.allows(ip(lan)), "{lan}");
        }
        for public in ["8.8.8.8", "100.64.0.1", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!SetupMode::Lan.allows(ip(public)), "{public}");
        }
        assert!(!SetupMode::Off.allows(ip("127.0.0.1")));
        assert_eq!(SetupMode::parse("nonsense"), SetupMode::Off);
    }

    #[test]
    fn complete_checks_everything_before_changing_anything() {
        let (_dir, storage) = storage();
        let (code, first_token) = storage
            .write_blocking(|conn| -> Result<(String, String), StorageError> {
                users::set_admin(conn, "admin", "generated-pass", 1).map_err(|e| match e {
                    users::CredentialsError::Storage(s) => s,
                    other => panic!("{other}"),
                })?;
                let (_, secret) = tokens::create(conn, "first start", None, 1)?;
                Ok((create_code(conn, &tokens::check(conn, &secret)?.unwrap())?, secret))
            })
            .unwrap();
        let token_works =
            || storage.read_blocking(|conn| tokens::check(conn, &first_token)).unwrap().is_some();
        assert_eq!(code.len(), 14);
        let attempt = |c: &str, user: &str, pass: &str| {
            storage.write_blocking(|conn| -> Result<Claimed, SetupError> { complete(conn, c, user, pass, 2) })
        };
        assert!(matches!(attempt("wrong-code-xx", "admin", "a new password"), Err(SetupError::WrongCode)));
        assert!(matches!(attempt(&code, "admin", "short"), Err(SetupError::Credentials(_))));
        assert!(matches!(attempt(&code, "bad name", "a new password"), Err(SetupError::Credentials(_))));
        // Nothing changed: the old password works, the code is still there.
        let still =
            storage.read_blocking(|conn| users::check_login(conn, "admin", "generated-pass")).unwrap();
        assert!(still.is_some());
        assert_eq!(storage.read_blocking(super::code).unwrap().as_deref(), Some(code.as_str()));
        assert!(token_works(), "a refused setup leaves the first-start token alone");
        // Codes are compared ignoring case and surrounding space.
        attempt(&format!("  {}  ", code.to_uppercase()), "admin", "a new password").unwrap();
        assert!(storage.read_blocking(super::code).unwrap().is_none());
        assert!(!token_works(), "the token printed at first start is revoked by the setup page");
        assert!(matches!(attempt(&code, "admin", "another password"), Err(SetupError::Claimed)));
        let new = storage.read_blocking(|conn| users::check_login(conn, "admin", "a new password")).unwrap();
        assert!(new.is_some());
    }
}
