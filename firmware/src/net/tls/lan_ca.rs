//! The node's own certificate authority for the LAN, where no public CA can vouch for
//! `kitchen-pi.local` or `192.168.1.20`.
//!
//! On first start in LAN mode the node makes a P-256 CA key in the keystore (the TPM can
//! hold it later: the key never leaves the [`EcdsaKeystore`]) and a self-signed CA
//! certificate kept in `data.db`. It then issues itself a server certificate for its
//! `.local` name, its domain and every app under it (`*.<domain>`), and its addresses.
//! A user trusts the CA once (downloaded from the admin page) and every node
//! certificate it issues verifies, including after renewals.

use super::store::{self, Source};
use super::TlsError;
use crate::rules::keys::LAN_CA_KEY;
use crate::storage::{Storage, StorageError};
use fazt_hal::keystore::EcdsaKeystore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, RemoteKeyPair, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

/// How long the CA certificate is valid: long, because every device that trusts it
/// would have to trust a new one.
const CA_VALIDITY_DAYS: i64 = 3650;

/// How long a server certificate is valid; renewed when 30 days are left.
pub const LEAF_VALIDITY_DAYS: i64 = 90;

/// A CA key held by the keystore, as rcgen signs with it.
struct KeystoreKey {
    keystore: Arc<dyn EcdsaKeystore>,
    public: Vec<u8>,
}

impl RemoteKeyPair for KeystoreKey {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.keystore.ecdsa_sign(LAN_CA_KEY, msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// The LAN CA: its certificate, and its key in the keystore.
pub struct LanCa {
    keystore: Arc<dyn EcdsaKeystore>,
    /// The CA certificate (PEM), what users download and trust.
    pub cert_pem: String,
    /// SHA-256 of the CA certificate (DER), lowercase hex: what `openssl x509
    /// -fingerprint -sha256` shows, and what the beacon announces.
    pub fingerprint: String,
}

impl std::fmt::Debug for LanCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanCa").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

fn key_pair(keystore: &Arc<dyn EcdsaKeystore>) -> Result<KeyPair, TlsError> {
    let public = keystore.ecdsa_public_key(LAN_CA_KEY).map_err(TlsError::Keystore)?;
    KeyPair::from_remote(Box::new(KeystoreKey { keystore: keystore.clone(), public: public.0 }))
        .map_err(TlsError::Rcgen)
}

/// Whether the certificate in `pem` is for the public key `public` (SEC1 bytes).
fn certifies(pem: &str, public: &[u8]) -> bool {
    let Ok(der) = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
    else {
        return false;
    };
    x509_parser::parse_x509_certificate(&der)
        .map(|(_, cert)| cert.public_key().subject_public_key.data.as_ref() == public)
        .unwrap_or(false)
}

fn datetime(millis: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

impl LanCa {
    /// Loads the CA, creating its key and certificate on first use.
    pub fn load_or_create(
        storage: &Storage,
        keystore: Arc<dyn EcdsaKeystore>,
        node_id: &str,
        now: i64,
    ) -> Result<LanCa, TlsError> {
        let stored: Option<String> = storage.read_blocking(|c| {
            Ok::<_, StorageError>(
                c.query_row("SELECT cert_pem FROM lan_ca WHERE id = 1", [], |r| r.get(0)).optional()?,
            )
        })?;
        let key = key_pair(&keystore)?;
        // A certificate made for another key (the key was set aside and remade, and a
        // crash came between) would sign nothing that verifies: make a new one.
        let stored = match stored {
            Some(pem) if !certifies(&pem, key.public_key_raw()) => {
                tracing::warn!(
                    "the stored LAN CA certificate is not for the CA key; making a new CA certificate"
                );
                storage.write_blocking(|c| {
                    c.execute("DELETE FROM lan_ca", [])?;
                    c.execute("DELETE FROM tls_certs WHERE source = 'lan'", [])?;
                    Ok::<_, StorageError>(())
                })?;
                None
            }
            other => other,
        };
        let cert_pem = match stored {
            Some(pem) => pem,
            None => {
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::OrganizationName, "fazt");
                dn.push(DnType::CommonName, format!("fazt LAN CA {node_id}"));
                params.distinguished_name = dn;
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                params.not_before = datetime(now - 86_400_000);
                params.not_after = datetime(now + CA_VALIDITY_DAYS * 86_400_000);
                params.serial_number = Some(random_serial());
                let pem = params.self_signed(&key).map_err(TlsError::Rcgen)?.pem();
                let saved = pem.clone();
                // OR IGNORE plus a read back: a racing first start keeps one CA.
                storage.write_blocking(move |c| {
                    c.execute(
                        "INSERT OR IGNORE INTO lan_ca(id, cert_pem, created_at) VALUES (1, ?1, ?2)",
                        rusqlite::params![saved, now],
                    )?;
                    Ok::<_, StorageError>(c.query_row(
                        "SELECT cert_pem FROM lan_ca WHERE id = 1",
                        [],
                        |r| r.get(0),
                    )?)
                })?
            }
        };
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
            .map_err(|e| TlsError::Corrupt(format!("stored LAN CA certificate: {e}")))?;
        let fingerprint = hex::encode(Sha256::digest(&der));
        Ok(LanCa { keystore, cert_pem, fingerprint })
    }

    /// Issues a server certificate for `names` and `ips`; returns (chain PEM, key PEM).
    pub fn issue(&self, names: &[String], ips: &[IpAddr], now: i64) -> Result<(String, String), TlsError> {
        let ca_key = key_pair(&self.keystore)?;
        let issuer = CertificateParams::from_ca_cert_pem(&self.cert_pem)
            .map_err(TlsError::Rcgen)?
            .self_signed(&ca_key)
            .map_err(TlsError::Rcgen)?;
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TlsError::Rcgen)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "fazt".into()));
        params.distinguished_name = dn;
        for name in names {
            let ia5 = name.clone().try_into().map_err(TlsError::Rcgen)?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = datetime(now - 3_600_000);
        params.not_after = datetime(now + LEAF_VALIDITY_DAYS * 86_400_000);
        params.serial_number = Some(random_serial());
        let leaf = params.signed_by(&leaf_key, &issuer, &ca_key).map_err(TlsError::Rcgen)?;
        Ok((format!("{}{}", leaf.pem(), self.cert_pem), leaf_key.serialize_pem()))
    }

    /// Makes sure the stored LAN certificate covers `names` and `ips` and has more than
    /// 30 days left, issuing a new one otherwise; returns the row.
    pub fn ensure_leaf(
        &self,
        storage: &Storage,
        sealer: &dyn fazt_hal::keystore::Sealer,
        names: &[String],
        ips: &[IpAddr],
        now: i64,
    ) -> Result<store::Stored, TlsError> {
        let mut wanted: Vec<String> = names.to_vec();
        wanted.extend(ips.iter().map(IpAddr::to_string));
        wanted.sort();
        let current = storage.read_blocking(|c| Ok::<_, StorageError>(store::get(c, LEAF_ROW)?))?;
        if let Some(row) = current.filter(|r| r.source == Source::Lan) {
            let mut have = row.names.clone();
            have.sort();
            let issued_by_us = row.chain_pem.ends_with(&self.cert_pem);
            if have == wanted && issued_by_us && row.not_after - now > super::RENEW_BEFORE_MS {
                return Ok(row);
            }
        }
        let (chain, key) = self.issue(names, ips, now)?;
        let parsed = store::parse(&chain, &key).map_err(TlsError::Cert)?;
        let key = crate::keys::sealed_text::seal(sealer, &store::seal_label(LEAF_ROW), &key)
            .map_err(TlsError::Keystore)?;
        storage.write_blocking(|c| {
            store::put(c, LEAF_ROW, Source::Lan, &parsed, &chain, &key, now)?;
            Ok::<_, StorageError>(())
        })?;
        tracing::info!(names = wanted.join(","), "issued the LAN certificate");
        let row = storage.read_blocking(|c| Ok::<_, StorageError>(store::get(c, LEAF_ROW)?))?;
        row.ok_or_else(|| TlsError::Corrupt("the LAN certificate vanished after writing".into()))
    }
}

/// The `tls_certs` row of the node's LAN certificate.
pub const LEAF_ROW: &str = "lan";

#[cfg(test)]
mod tests {
    use super::*;
    use fazt_hal::keystore::{MemorySeeds, SoftwareKeystore};

    #[test]
    fn a_stored_ca_certificate_for_another_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let now = 1_795_755_000_000;
        let first: Arc<dyn EcdsaKeystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        let old = LanCa::load_or_create(&storage, first, "node_1", now).unwrap();
        let second: Arc<dyn EcdsaKeystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        let new = LanCa::load_or_create(&storage, second.clone(), "node_1", now).unwrap();
        assert_ne!(old.fingerprint, new.fingerprint);
        assert!(certifies(&new.cert_pem, &second.ecdsa_public_key(LAN_CA_KEY).unwrap().0));
        assert!(!certifies("not a pem", &[4; 65]));
    }

    #[test]
    fn issued_certificates_chain_to_the_ca_and_the_ca_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        let keys: Arc<dyn EcdsaKeystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        let now = 1_795_755_000_000;
        let ca = LanCa::load_or_create(&storage, keys.clone(), "node_1", now).unwrap();
        let again = LanCa::load_or_create(&storage, keys, "node_1", now).unwrap();
        assert_eq!(ca.fingerprint, again.fingerprint);
        let names = vec!["pi.local".to_string(), "*.pi.home.arpa".to_string(), "blog.localhost".to_string()];
        let ips = vec!["127.0.0.1".parse().unwrap()];
        let sealer =
            fazt_hal::keystore::AeadSealer::new([1; 32], fazt_hal::keystore::KeyOrigin::MachineFile, "test");
        let row = ca.ensure_leaf(&storage, &sealer, &names, &ips, now).unwrap();
        assert!(row.names.contains(&"127.0.0.1".to_string()));
        // Same names, far from expiry: kept; different names: reissued.
        assert_eq!(ca.ensure_leaf(&storage, &sealer, &names, &ips, now).unwrap().updated_at, row.updated_at);
        let later = ca.ensure_leaf(&storage, &sealer, &names[..1], &ips, now + 1).unwrap();
        assert_eq!(later.updated_at, now + 1);

        // The chain verifies with webpki against the CA as the only root.
        use rustls::client::danger::ServerCertVerifier;
        let ca_der: rustls_pki_types::CertificateDer<'static> =
            rustls_pki_types::pem::PemObject::from_pem_slice(ca.cert_pem.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let chain: Vec<rustls_pki_types::CertificateDer<'static>> =
            rustls_pki_types::pem::PemObject::pem_slice_iter(row.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let at = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_millis(now as u64));
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &"pi.local".try_into().unwrap(), &[], at)
            .expect("the LAN certificate verifies against the CA");
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &"blog.localhost".try_into().unwrap(), &[], at)
            .expect("an app name verifies");
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &"shop.pi.home.arpa".try_into().unwrap(), &[], at)
            .expect("a wildcard under a two-label domain verifies");
    }
}
