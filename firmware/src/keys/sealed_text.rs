//! Secrets kept in text columns (an ACME account's JSON, a certificate's private key
//! PEM), sealed: `sealed:` followed by the base64 of the sealed blob.
//!
//! A value without the prefix was written before sealing existed: the start-up sweep
//! ([`super::sweep`]) seals it before anything reads it, and [`open`] refuses it, so a
//! value planted in the database by hand (a key of the attacker's choosing) is never
//! used.

use base64::Engine as _;
use fazt_hal::keystore::{Error, KeyOrigin, Sealer};

/// A text column that holds sealed secrets; a value's label is `<table>:<id>`.
#[derive(Debug, Clone, Copy)]
pub struct TextSecret {
    /// What it is, for listings: "acme-account", "certificate-key", "app-env".
    pub kind: &'static str,
    /// The table.
    pub table: &'static str,
    /// The SQL expression that names a row (its label after `<table>:`).
    pub id: &'static str,
    /// The column.
    pub column: &'static str,
}

/// Every text column that holds sealed secrets.
pub const TEXT_SECRETS: &[TextSecret] = &[
    TextSecret { kind: "acme-account", table: "acme_accounts", id: "directory", column: "credentials" },
    TextSecret { kind: "certificate-key", table: "tls_certs", id: "name", column: "key_pem" },
    TextSecret { kind: "app-env", table: "app_env", id: "app_id || '/' || key", column: "value" },
];

impl TextSecret {
    /// The label of the row named `id`.
    pub fn label(&self, id: &str) -> String {
        format!("{}:{id}", self.table)
    }

    /// Every `(id, stored value, source)` of the column (`source` is tls_certs' own
    /// column, empty elsewhere).
    pub fn rows(&self, conn: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
        let source = if self.table == "tls_certs" { "source" } else { "''" };
        let sql = format!("SELECT {}, {}, {source} FROM {} ORDER BY 1", self.id, self.column, self.table);
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect();
        rows
    }

    /// Replaces the stored value of row `id`.
    pub fn update(&self, conn: &rusqlite::Connection, id: &str, stored: &str) -> rusqlite::Result<usize> {
        let sql = format!("UPDATE {} SET {} = ?2 WHERE {} = ?1", self.table, self.column, self.id);
        conn.execute(&sql, rusqlite::params![id, stored])
    }

    /// Deletes row `id`.
    pub fn delete(&self, conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<usize> {
        conn.execute(&format!("DELETE FROM {} WHERE {} = ?1", self.table, self.id), [id])
    }
}

/// The prefix that marks a sealed text value.
pub const PREFIX: &str = "sealed:";

/// Seals `text` under `label` (the row it is stored in).
pub fn seal(sealer: &dyn Sealer, label: &str, text: &str) -> Result<String, Error> {
    Ok(encode(&sealer.seal(label, text.as_bytes())?))
}

/// The text form of a sealed blob.
pub fn encode(blob: &[u8]) -> String {
    format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(blob))
}

/// The sealed blob inside a stored value, or `None` for a plain (older) value.
pub fn blob_of(stored: &str) -> Option<Result<Vec<u8>, ()>> {
    let encoded = stored.strip_prefix(PREFIX)?;
    Some(base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded).map_err(|_| ()))
}

/// Which key sealed a stored value (`None` for a plain value).
pub fn origin_of(stored: &str) -> Option<KeyOrigin> {
    KeyOrigin::of(&blob_of(stored)?.ok()?)
}

/// Opens a stored value; a value that is not sealed is refused as damaged.
pub fn open(sealer: &dyn Sealer, label: &str, stored: &str) -> Result<String, Error> {
    let Some(blob) = blob_of(stored) else { return Err(Error::Corrupt(format!("{label} (not sealed)"))) };
    let blob = blob.map_err(|()| Error::Corrupt(label.to_string()))?;
    let plain = sealer.unseal(label, &blob)?;
    String::from_utf8(plain).map_err(|_| Error::Corrupt(label.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fazt_hal::keystore::{AeadSealer, ErrorKind};

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_and_any_stored_value_opens_or_fails_cleanly(text in ".{0,300}", junk in ".{0,300}") {
            let sealer = AeadSealer::new([5; 32], KeyOrigin::MachineFile, "test");
            let stored = seal(&sealer, "row", &text).unwrap();
            proptest::prop_assert_eq!(open(&sealer, "row", &stored).unwrap(), text);
            // Hostile stored values: an error or the plain value, never a panic.
            let _ = open(&sealer, "row", &junk);
            let _ = open(&sealer, "row", &format!("{PREFIX}{junk}"));
            let _ = origin_of(&junk);
        }
    }

    #[test]
    fn round_trip_plain_values_and_damage() {
        let sealer = AeadSealer::new([5; 32], KeyOrigin::MachineFile, "test");
        let stored = seal(&sealer, "acme:x", "{\"key\":\"secret\"}").unwrap();
        assert!(stored.starts_with(PREFIX) && !stored.contains("secret"));
        assert_eq!(open(&sealer, "acme:x", &stored).unwrap(), "{\"key\":\"secret\"}");
        assert_eq!(origin_of(&stored), Some(KeyOrigin::MachineFile));
        assert_eq!(
            open(&sealer, "acme:x", "-----BEGIN KEY").unwrap_err().kind(),
            ErrorKind::Corrupt,
            "plain values are refused"
        );
        assert_eq!(origin_of("plain"), None);
        assert_eq!(open(&sealer, "acme:x", "sealed:!!").unwrap_err().kind(), ErrorKind::Corrupt);
        assert!(open(&sealer, "acme:y", &stored).is_err(), "bound to its row");
        let other = AeadSealer::new([6; 32], KeyOrigin::MachineFile, "other");
        assert_eq!(open(&other, "acme:x", &stored).unwrap_err().kind(), ErrorKind::SealedElsewhere);
    }
}
