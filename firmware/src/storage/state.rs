//! Internal state rows: what the node remembers between starts that is not a setting
//! (the setup code, the beacon's boot counter, the last known time, the system apps'
//! version, the ACME status). Kept in their own table, apart from the settings in
//! `config`, so that settings listings and exports never show them and a setting can
//! never be mistaken for state or the other way round.

use rusqlite::{params, Connection, OptionalExtension};

/// Every state row the node keeps, so a mistyped key does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKey {
    /// The one-time setup code of a node nobody has claimed yet.
    SetupCode,
    /// The API token printed at first start, revoked when the setup page is used.
    SetupFirstToken,
    /// The beacon's boot counter (its announcements' sequence numbers start from it).
    BeaconBoot,
    /// The kernel clock's last known time, a floor for the next boot.
    TimeLastKnownMs,
    /// The fingerprint of the system apps the database holds (their version).
    SystemAppsHash,
    /// The ACME worker's status (JSON), for `fazt server status`.
    AcmeStatus,
}

impl StateKey {
    /// Every key (migration 11 moved each of them out of `config`).
    pub const ALL: &'static [StateKey] = &[
        StateKey::SetupCode,
        StateKey::SetupFirstToken,
        StateKey::BeaconBoot,
        StateKey::TimeLastKnownMs,
        StateKey::SystemAppsHash,
        StateKey::AcmeStatus,
    ];

    /// The stored key.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKey::SetupCode => "setup.code",
            StateKey::SetupFirstToken => "setup.first_token",
            StateKey::BeaconBoot => "beacon.boot",
            StateKey::TimeLastKnownMs => "time.last_known_ms",
            StateKey::SystemAppsHash => "state.system_apps_hash",
            StateKey::AcmeStatus => "acme.status",
        }
    }
}

/// The value of a state row, if set.
pub fn get(conn: &Connection, key: StateKey) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM state WHERE key = ?1")?
        .query_row([key.as_str()], |r| r.get(0))
        .optional()
}

/// Sets a state row.
pub fn set(conn: &Connection, key: StateKey, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO state(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key.as_str(), value])?;
    Ok(())
}

/// Removes a state row; true when it was there.
pub fn delete(conn: &Connection, key: StateKey) -> rusqlite::Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM state WHERE key = ?1")?.execute([key.as_str()])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_delete() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::run(&mut conn).unwrap();
        assert_eq!(get(&conn, StateKey::BeaconBoot).unwrap(), None);
        set(&conn, StateKey::BeaconBoot, "1").unwrap();
        set(&conn, StateKey::BeaconBoot, "2").unwrap();
        assert_eq!(get(&conn, StateKey::BeaconBoot).unwrap().as_deref(), Some("2"));
        let in_config: i64 = conn.query_row("SELECT count(*) FROM config", [], |r| r.get(0)).unwrap();
        assert_eq!(in_config, 0, "state never lands among the settings");
        assert!(delete(&conn, StateKey::BeaconBoot).unwrap());
        assert!(!delete(&conn, StateKey::BeaconBoot).unwrap());
        assert_eq!(get(&conn, StateKey::BeaconBoot).unwrap(), None);
    }

    #[test]
    fn keys_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        assert!(StateKey::ALL.iter().all(|k| seen.insert(k.as_str())));
    }
}
