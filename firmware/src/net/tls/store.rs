//! Certificates in `data.db`: parsing and checking PEM, and the `tls_certs` rows.
//!
//! Every certificate the node serves (custom, ACME or LAN) is a row here, so a backup
//! carries them; the serving copy is rebuilt from the rows at start and after changes.

use rusqlite::{params, Connection, OptionalExtension};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use std::sync::Arc;

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Added by the user (`fazt cert add`).
    Custom,
    /// Obtained from an ACME CA.
    Acme,
    /// Issued by the node's own LAN CA.
    Lan,
}

impl Source {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Custom => "custom",
            Source::Acme => "acme",
            Source::Lan => "lan",
        }
    }

    fn parse(s: &str) -> Source {
        match s {
            "acme" => Source::Acme,
            "lan" => Source::Lan,
            _ => Source::Custom,
        }
    }
}

/// Why a certificate or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No `CERTIFICATE` block in the PEM.
    #[error("no certificate found (expected a PEM file with '-----BEGIN CERTIFICATE-----')")]
    NoCertificate,
    /// No private key block in the PEM.
    #[error("no private key found (expected a PEM file with '-----BEGIN PRIVATE KEY-----', EC or RSA)")]
    NoKey,
    /// The PEM text is malformed.
    #[error("malformed PEM: {0}")]
    BadPem(String),
    /// The certificate is not valid X.509.
    #[error("the certificate cannot be parsed: {0}")]
    BadCertificate(String),
    /// The key type is not supported, or the key is damaged.
    #[error("unsupported or damaged private key: {0}")]
    BadKey(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate (check you paired the right files)")]
    KeyMismatch,
    /// The certificate has expired.
    #[error("the certificate expired on {0}")]
    Expired(String),
    /// The certificate does not name the domain it is added for.
    #[error("the certificate does not cover {name} (it covers: {covers})")]
    NameNotCovered {
        /// The domain asked for.
        name: String,
        /// What the certificate covers.
        covers: String,
    },
    /// The domain is not a valid name.
    #[error("invalid domain '{0}' (expected a name such as example.com or *.example.com)")]
    BadName(String),
}

/// A certificate chain and its key, parsed and checked.
#[derive(Debug)]
pub struct Parsed {
    /// Every DNS name and IP address the leaf covers (lowercase).
    pub names: Vec<String>,
    /// Validity start, Unix milliseconds.
    pub not_before: i64,
    /// Validity end, Unix milliseconds.
    pub not_after: i64,
    /// The serving form for rustls.
    pub key: Arc<CertifiedKey>,
}

/// Parses a PEM chain (leaf first) and its private key, and checks that they belong
/// together. Expiry is not checked here (see [`check_for`]).
pub fn parse(chain_pem: &str, key_pem: &str) -> Result<Parsed, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::BadPem(e.to_string()))?;
    let leaf = chain.first().ok_or(CertError::NoCertificate)?;
    let key_der = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => return Err(CertError::NoKey),
        Err(e) => return Err(CertError::BadPem(e.to_string())),
    };
    let (names, not_before, not_after) = leaf_facts(leaf)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing =
        provider.key_provider.load_private_key(key_der).map_err(|e| CertError::BadKey(e.to_string()))?;
    let key = CertifiedKey::new(chain, signing);
    key.keys_match().map_err(|_| CertError::KeyMismatch)?;
    Ok(Parsed { names, not_before, not_after, key: Arc::new(key) })
}

/// Names (SAN DNS and IP entries; the CN when there are none) and validity of a leaf.
fn leaf_facts(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64, i64), CertError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(|s| s.to_ascii_lowercase()),
        );
    }
    let validity = cert.validity();
    Ok((names, validity.not_before.timestamp() * 1000, validity.not_after.timestamp() * 1000))
}

/// True when `pattern` (a certificate name, maybe `*.example.com`) covers `name`.
pub fn covers(pattern: &str, name: &str) -> bool {
    if pattern == name {
        return true;
    }
    match (pattern.strip_prefix("*."), name.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && rest == parent,
        _ => false,
    }
}

/// Checks that a parsed certificate can be served for `name` at `now`.
pub fn check_for(parsed: &Parsed, name: &str, now: i64) -> Result<(), CertError> {
    if parsed.not_after <= now {
        return Err(CertError::Expired(crate::time::rfc3339(parsed.not_after)));
    }
    if !parsed.names.iter().any(|p| covers(p, name) || p == name) {
        return Err(CertError::NameNotCovered { name: name.to_string(), covers: parsed.names.join(", ") });
    }
    Ok(())
}

/// Normalises a domain a certificate is added for (`*.` allowed in front).
pub fn normalise_name(name: &str) -> Result<String, CertError> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let base = lower.strip_prefix("*.").unwrap_or(&lower);
    if base.contains('.') && crate::rules::names::is_valid_domain(base) || base == "localhost" {
        Ok(lower)
    } else {
        Err(CertError::BadName(name.to_string()))
    }
}

/// One stored certificate.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    /// The name it was added or obtained for.
    pub name: String,
    /// Where it came from.
    pub source: Source,
    /// Every name it covers.
    pub names: Vec<String>,
    /// The chain, PEM.
    #[serde(skip)]
    pub chain_pem: String,
    /// The key, PEM, sealed (`sealed:…`; a value from before sealing is plain PEM).
    #[serde(skip)]
    pub key_pem: String,
    /// Validity start (Unix ms).
    pub not_before: i64,
    /// Validity end (Unix ms).
    pub not_after: i64,
    /// When the row was last written (Unix ms).
    pub updated_at: i64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let names: String = r.get(2)?;
    Ok(Stored {
        name: r.get(0)?,
        source: Source::parse(&r.get::<_, String>(1)?),
        names: serde_json::from_str(&names).unwrap_or_default(),
        chain_pem: r.get(3)?,
        key_pem: r.get(4)?,
        not_before: r.get(5)?,
        not_after: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

const COLUMNS: &str = "name, source, names, chain_pem, key_pem, not_before, not_after, updated_at";

/// Every stored certificate, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Stored>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM tls_certs ORDER BY name"))?;
    let rows = stmt.query_map([], row)?.collect();
    rows
}

/// One stored certificate.
pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<Stored>> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM tls_certs WHERE name = ?1"), [name], row).optional()
}

/// The label the sealed key of certificate `name` is bound to.
pub fn seal_label(name: &str) -> String {
    format!("tls_certs:{name}")
}

/// Writes (or replaces) the certificate for `name`; `key_pem` is stored as given
/// (sealed by the caller, see [`crate::keys::sealed_text`]).
pub fn put(
    conn: &Connection,
    name: &str,
    source: Source,
    parsed: &Parsed,
    chain_pem: &str,
    key_pem: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tls_certs(name, source, names, chain_pem, key_pem, not_before, not_after, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT(name) DO UPDATE SET source = excluded.source, names = excluded.names,
            chain_pem = excluded.chain_pem, key_pem = excluded.key_pem, not_before = excluded.not_before,
            not_after = excluded.not_after, updated_at = excluded.updated_at",
        params![
            name,
            source.as_str(),
            serde_json::to_string(&parsed.names).unwrap_or_else(|_| "[]".into()),
            chain_pem,
            key_pem,
            parsed.not_before,
            parsed.not_after,
            now
        ],
    )?;
    Ok(())
}

/// Deletes the certificate for `name` if it has the given source; true when one was.
pub fn delete(conn: &Connection, name: &str, source: Source) -> rusqlite::Result<bool> {
    Ok(conn
        .execute("DELETE FROM tls_certs WHERE name = ?1 AND source = ?2", params![name, source.as_str()])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("*.example.com", "blog.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(covers("example.com", "example.com"));
        assert!(!covers("example.com", "blog.example.com"));
    }

    #[test]
    fn names_are_normalised_or_refused() {
        assert_eq!(normalise_name(" Blog.Example.COM. ").unwrap(), "blog.example.com");
        assert_eq!(normalise_name("*.example.com").unwrap(), "*.example.com");
        for bad in ["", "com", "*.com", "a b.com", "*.*.example.com", "ex_ample.com"] {
            assert!(normalise_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn garbage_is_refused_with_a_clear_error() {
        assert!(matches!(parse("", ""), Err(CertError::NoCertificate)));
        assert!(matches!(parse("hello", "world"), Err(CertError::NoCertificate)));
        let bad_b64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(parse(bad_b64, ""), Err(CertError::BadPem(_))));
        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(matches!(parse(not_x509, &key), Err(CertError::BadCertificate(_))));
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["a.example.com".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.example.com".into()]).unwrap();
        let parsed = parse(&a.cert.pem(), &a.key_pair.serialize_pem()).unwrap();
        assert_eq!(parsed.names, vec!["a.example.com"]);
        assert!(check_for(&parsed, "a.example.com", 0).is_ok());
        assert!(matches!(check_for(&parsed, "b.example.com", 0), Err(CertError::NameNotCovered { .. })));
        assert!(matches!(check_for(&parsed, "a.example.com", i64::MAX), Err(CertError::Expired(_))));
        assert!(matches!(parse(&a.cert.pem(), &b.key_pair.serialize_pem()), Err(CertError::KeyMismatch)));
        assert!(matches!(parse(&a.cert.pem(), ""), Err(CertError::NoKey)));
    }
}
