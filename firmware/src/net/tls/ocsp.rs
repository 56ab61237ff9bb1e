//! OCSP stapling: asking a certificate's CA whether it is still good, and handing the
//! signed answer to clients in the handshake, so they need not ask the CA themselves
//! (faster, and the CA does not learn who visits the site).
//!
//! Only certificates whose CA names an OCSP responder (the Authority Information Access
//! extension) are stapled: custom certificates from such CAs, and ACME certificates
//! where the CA still runs OCSP (Let's Encrypt stopped in 2025). The node's own LAN CA
//! has no responder: its clients trust it directly.
//!
//! An answer is stapled only after it checks out ([`check`]): it is for this very
//! certificate, signed by its issuer (or a responder the issuer delegated to), current
//! by the kernel clock, and says "good". A "revoked" answer is never stapled; it is
//! reported loudly instead, like nginx does.

use rustls_pki_types::SignatureVerificationAlgorithm;
use std::io::Read;
use std::time::Duration;
use x509_cert::der::asn1::{Null, OctetString};
use x509_cert::der::oid::db::{rfc5280, rfc5912, rfc6960};
use x509_cert::der::{self, Decode, Encode};
use x509_cert::Certificate;
use x509_ocsp::{BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus};

/// The largest OCSP answer read from a responder (real ones are 0.5 to 3 KB).
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// Clock skew allowed between the node and the responder on `thisUpdate`.
const SKEW_MS: i64 = 5 * 60_000;

/// How long an answer without `nextUpdate` is trusted after its `thisUpdate`.
const NO_NEXT_UPDATE_MS: i64 = 3_600_000;

/// Why no OCSP answer can be stapled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The certificate or its issuer cannot be read.
    #[error("the certificate cannot be read for OCSP: {0}")]
    BadCertificate(String),
    /// The chain holds no issuer certificate after the leaf.
    #[error("the chain has no issuer certificate after the leaf (add the intermediate to the PEM)")]
    NoIssuer,
    /// The responder could not be reached or answered with an HTTP error.
    #[error("OCSP responder {url}: {why}")]
    Fetch {
        /// The responder.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The answer is not a well-formed OCSP response.
    #[error("malformed OCSP response: {0}")]
    Malformed(String),
    /// The responder refused (tryLater, unauthorized, ...).
    #[error("the OCSP responder refused: {0:?}")]
    Refused(OcspResponseStatus),
    /// The answer does not speak of this certificate.
    #[error("the OCSP response is about another certificate")]
    Unrelated,
    /// The signature does not verify with the issuer's key or a delegated responder's.
    #[error("the OCSP response is not signed by the certificate's issuer or a responder it delegated to")]
    BadSignature,
    /// The answer is not current by the kernel clock.
    #[error("the OCSP response is not current (valid {this_update} to {next_update})")]
    NotCurrent {
        /// Its `thisUpdate`, RFC 3339.
        this_update: String,
        /// Its `nextUpdate` (or `thisUpdate` plus an hour), RFC 3339.
        next_update: String,
    },
}

/// What a checked answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Good: staple `der` until `next_update`.
    Good {
        /// The whole OCSP response, as stapled.
        der: Vec<u8>,
        /// Its `thisUpdate`, Unix ms.
        this_update: i64,
        /// When it stops being valid, Unix ms.
        next_update: i64,
    },
    /// The CA revoked the certificate at `at` (Unix ms).
    Revoked {
        /// Revocation time, Unix ms.
        at: i64,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A leaf and its issuer, read for OCSP.
#[derive(Debug, Clone)]
pub struct Subject {
    leaf: Certificate,
    issuer: Certificate,
    /// The issuer's subject name exactly as encoded in its certificate (hashed into the
    /// certificate id; re-encoding could reorder a multi-valued name).
    issuer_name_der: Vec<u8>,
    /// The responder URL from the leaf (plain `http://`, as RFC 6960 expects).
    pub responder: String,
}

fn read_cert(der: &[u8]) -> Result<Certificate, OcspError> {
    Certificate::from_der(der).map_err(|e| OcspError::BadCertificate(e.to_string()))
}

impl Subject {
    /// Reads a chain (DER, leaf first). `Ok(None)` when the leaf names no OCSP
    /// responder: there is nothing to staple.
    pub fn from_chain(chain: &[impl AsRef<[u8]>]) -> Result<Option<Subject>, OcspError> {
        let leaf = read_cert(chain.first().ok_or(OcspError::NoIssuer)?.as_ref())?;
        let Some(responder) = responder_url(&leaf) else { return Ok(None) };
        let issuer_der = chain.get(1).ok_or(OcspError::NoIssuer)?.as_ref();
        let issuer = read_cert(issuer_der)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(issuer_der)
            .map_err(|e| OcspError::BadCertificate(e.to_string()))?;
        let issuer_name_der = parsed.tbs_certificate.subject.as_raw().to_vec();
        Ok(Some(Subject { leaf, issuer, issuer_name_der, responder }))
    }

    /// The id of the certificate in requests and answers (SHA-1, as RFC 5019 asks and
    /// every responder understands).
    fn cert_id(&self) -> Result<CertId, OcspError> {
        let bad = |e: der::Error| OcspError::BadCertificate(e.to_string());
        let sha1 = |data: &[u8]| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
        let name = &self.issuer_name_der;
        let key = self.issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        Ok(CertId {
            hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                oid: rfc5912::ID_SHA_1,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new(sha1(name).as_ref()).map_err(bad)?,
            issuer_key_hash: OctetString::new(sha1(key).as_ref()).map_err(bad)?,
            serial_number: self.leaf.tbs_certificate.serial_number.clone(),
        })
    }

    /// The DER of an unsigned request for this certificate.
    pub fn request(&self) -> Result<Vec<u8>, OcspError> {
        let request = OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                request_list: vec![x509_ocsp::Request {
                    req_cert: self.cert_id()?,
                    single_request_extensions: None,
                }],
                ..Default::default()
            },
            optional_signature: None,
        };
        request.to_der().map_err(|e| OcspError::BadCertificate(e.to_string()))
    }

    /// Checks an answer from the responder at `now` (Unix ms, the kernel clock).
    pub fn check(&self, der: &[u8], now: i64) -> Result<Verdict, OcspError> {
        let response = OcspResponse::from_der(der).map_err(malformed)?;
        if response.response_status != OcspResponseStatus::Successful {
            return Err(OcspError::Refused(response.response_status));
        }
        let bytes =
            response.response_bytes.ok_or_else(|| OcspError::Malformed("no response bytes".into()))?;
        if bytes.response_type != rfc6960::ID_PKIX_OCSP_BASIC {
            return Err(OcspError::Malformed(format!("unknown response type {}", bytes.response_type)));
        }
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(malformed)?;
        let id = self.cert_id()?;
        // Should an answer list this certificate twice, a revocation wins.
        let mut mine = basic.tbs_response_data.responses.iter().filter(|r| same_cert(&r.cert_id, &id));
        let first = mine.next().ok_or(OcspError::Unrelated)?;
        let single = mine.find(|r| matches!(r.cert_status, CertStatus::Revoked(_))).unwrap_or(first);
        let parts = basic_parts(bytes.response.as_bytes())?;
        self.check_signature(&basic, &parts, now)?;
        let this_update = unix_ms(&single.this_update.0);
        let next_update = match &single.next_update {
            Some(t) => unix_ms(&t.0),
            None => this_update.saturating_add(NO_NEXT_UPDATE_MS),
        };
        if this_update > now.saturating_add(SKEW_MS) || next_update <= now {
            return Err(OcspError::NotCurrent {
                this_update: crate::time::rfc3339(this_update),
                next_update: crate::time::rfc3339(next_update),
            });
        }
        Ok(match &single.cert_status {
            CertStatus::Good(_) => Verdict::Good { der: der.to_vec(), this_update, next_update },
            CertStatus::Revoked(info) => Verdict::Revoked { at: unix_ms(&info.revocation_time.0) },
            CertStatus::Unknown(_) => Verdict::Unknown,
        })
    }

    /// The answer must be signed by the issuer, or by a certificate in the answer that
    /// the issuer signed for OCSP signing (RFC 6960 4.2.2.2).
    fn check_signature(
        &self,
        basic: &BasicOcspResponse,
        parts: &BasicParts,
        now: i64,
    ) -> Result<(), OcspError> {
        let signature = basic.signature.as_bytes().ok_or(OcspError::BadSignature)?;
        if verify(&self.issuer, &basic.signature_algorithm, &parts.signed, signature) {
            return Ok(());
        }
        for raw in &parts.certs {
            let Ok(responder) = Certificate::from_der(raw) else { continue };
            if self.delegated(&responder, raw, now)
                && verify(&responder, &basic.signature_algorithm, &parts.signed, signature)
            {
                return Ok(());
            }
        }
        Err(OcspError::BadSignature)
    }

    /// True when `responder` (whose DER, as received, is `raw`) was issued by our
    /// issuer for OCSP signing and is current. Its signature is checked over its
    /// `tbsCertificate` as received: the certificates of an answer are outside the
    /// signed part, so re-encoded bytes could verify while a client's check fails.
    fn delegated(&self, responder: &Certificate, raw: &[u8], now: i64) -> bool {
        let tbs = &responder.tbs_certificate;
        if tbs.issuer != self.issuer.tbs_certificate.subject {
            return false;
        }
        let validity = &tbs.validity;
        let from = validity.not_before.to_unix_duration().as_millis() as i64;
        let to = validity.not_after.to_unix_duration().as_millis() as i64;
        if now < from || now >= to {
            return false;
        }
        let ocsp_signing = tbs.extensions.iter().flatten().any(|ext| {
            ext.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE
                && x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
                    .is_ok_and(|eku| eku.0.contains(&rfc5280::ID_KP_OCSP_SIGNING))
        });
        let Ok(signed) = first_element(raw) else { return false };
        let Some(signature) = responder.signature.as_bytes() else { return false };
        ocsp_signing && verify(&self.issuer, &responder.signature_algorithm, &signed, signature)
    }
}

/// The leaf's OCSP responder, when it names a plain-HTTP one.
fn responder_url(leaf: &Certificate) -> Option<String> {
    use x509_cert::ext::pkix::name::GeneralName;
    let ext = leaf
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == rfc5280::ID_PE_AUTHORITY_INFO_ACCESS)?;
    let access = x509_cert::ext::pkix::AuthorityInfoAccessSyntax::from_der(ext.extn_value.as_bytes()).ok()?;
    access.0.iter().find_map(|d| match &d.access_location {
        GeneralName::UniformResourceIdentifier(uri)
            if d.access_method == rfc5280::ID_AD_OCSP && uri.as_str().starts_with("http://") =>
        {
            Some(uri.as_str().to_string())
        }
        _ => None,
    })
}

/// A BasicOCSPResponse's pieces exactly as the responder sent them (not re-encoded
/// from the parsed form, which could differ from what was signed).
struct BasicParts {
    /// `tbsResponseData`: what the signature covers.
    signed: Vec<u8>,
    /// Each certificate of `certs`, whole.
    certs: Vec<Vec<u8>>,
}

fn malformed(e: der::Error) -> OcspError {
    OcspError::Malformed(e.to_string())
}

/// Splits a BasicOCSPResponse: `SEQUENCE { tbsResponseData, signatureAlgorithm,
/// signature, [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }`.
fn basic_parts(der_bytes: &[u8]) -> Result<BasicParts, OcspError> {
    use der::Reader;
    let outer = der::asn1::AnyRef::from_der(der_bytes).map_err(malformed)?;
    let mut reader = der::SliceReader::new(outer.value()).map_err(malformed)?;
    let signed = der::asn1::AnyRef::decode(&mut reader).map_err(malformed)?.to_der().map_err(malformed)?;
    der::asn1::AnyRef::decode(&mut reader).map_err(malformed)?;
    der::asn1::AnyRef::decode(&mut reader).map_err(malformed)?;
    let mut certs = Vec::new();
    if !reader.is_finished() {
        let explicit = der::asn1::AnyRef::decode(&mut reader).map_err(malformed)?;
        let list = der::asn1::AnyRef::from_der(explicit.value()).map_err(malformed)?;
        let mut items = der::SliceReader::new(list.value()).map_err(malformed)?;
        while !items.is_finished() {
            certs
                .push(der::asn1::AnyRef::decode(&mut items).map_err(malformed)?.to_der().map_err(malformed)?);
        }
    }
    Ok(BasicParts { signed, certs })
}

/// The first element of a DER SEQUENCE, whole, as received (a certificate's
/// `tbsCertificate`).
fn first_element(der_bytes: &[u8]) -> Result<Vec<u8>, OcspError> {
    let outer = der::asn1::AnyRef::from_der(der_bytes).map_err(malformed)?;
    let mut reader = der::SliceReader::new(outer.value()).map_err(malformed)?;
    der::asn1::AnyRef::decode(&mut reader).map_err(malformed)?.to_der().map_err(malformed)
}

fn same_cert(a: &CertId, b: &CertId) -> bool {
    a.hash_algorithm.oid == b.hash_algorithm.oid
        && a.issuer_name_hash == b.issuer_name_hash
        && a.issuer_key_hash == b.issuer_key_hash
        && a.serial_number == b.serial_number
}

fn unix_ms(t: &der::asn1::GeneralizedTime) -> i64 {
    i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
}

/// The DER contents of an AlgorithmIdentifier, as rustls's algorithms name themselves.
fn algorithm_contents(alg: &x509_cert::spki::AlgorithmIdentifierOwned) -> Option<Vec<u8>> {
    let der = alg.to_der().ok()?;
    let any = der::asn1::AnyRef::from_der(&der).ok()?;
    Some(any.value().to_vec())
}

/// Verifies `signature` over `message` with `signer`'s public key, with the algorithms
/// rustls trusts (ring: ECDSA P-256/P-384, RSA PKCS#1 and PSS, Ed25519).
fn verify(
    signer: &Certificate,
    algorithm: &x509_cert::spki::AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let spki = &signer.tbs_certificate.subject_public_key_info;
    let (Some(key_alg), Some(sig_alg), Some(key)) = (
        algorithm_contents(&spki.algorithm),
        algorithm_contents(algorithm),
        spki.subject_public_key.as_bytes(),
    ) else {
        return false;
    };
    let provider = rustls::crypto::ring::default_provider();
    provider.signature_verification_algorithms.all.iter().any(|alg: &&dyn SignatureVerificationAlgorithm| {
        alg.public_key_alg_id().as_ref() == key_alg.as_slice()
            && alg.signature_alg_id().as_ref() == sig_alg.as_slice()
            && alg.verify_signature(key, message, signature).is_ok()
    })
}

/// POSTs `request` to the responder and reads its answer (at most
/// [`MAX_RESPONSE_BYTES`]); blocking, so call it from the blocking pool.
pub fn fetch(url: &str, request: &[u8]) -> Result<Vec<u8>, OcspError> {
    let fail = |why: String| OcspError::Fetch { url: url.to_string(), why };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .redirects(0)
        .build();
    let response = agent
        .post(url)
        .set("Content-Type", "application/ocsp-request")
        .set("Accept", "application/ocsp-response")
        .send_bytes(request)
        .map_err(|e| {
            fail(match e {
                ureq::Error::Status(code, _) => format!("HTTP status {code}"),
                ureq::Error::Transport(t) => {
                    let why = t
                        .message()
                        .map(str::to_string)
                        .or_else(|| std::error::Error::source(&t).map(|s| s.to_string()));
                    match why {
                        Some(why) => format!("{}: {why}", t.kind()),
                        None => t.kind().to_string(),
                    }
                }
            })
        })?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| fail(e.to_string()))?;
    if body.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(fail(format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes")));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A CA and a leaf naming an OCSP responder, made with rcgen.
    fn chain() -> Vec<Vec<u8>> {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["a.example.com".to_string()]).unwrap();
        // AuthorityInfoAccess { ocsp: http://127.0.0.1:9/ }, DER by hand (rcgen has no builder for it).
        let url = b"http://127.0.0.1:9/";
        let mut access =
            vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x86, url.len() as u8];
        access.extend_from_slice(url);
        let mut desc = vec![0x30, access.len() as u8];
        desc.extend(access);
        let mut syntax = vec![0x30, desc.len() as u8];
        syntax.extend(desc);
        leaf.custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], syntax));
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()]
    }

    #[test]
    fn the_responder_and_a_request_come_from_the_chain() {
        let chain = chain();
        let subject = Subject::from_chain(&chain).unwrap().expect("a responder");
        assert_eq!(subject.responder, "http://127.0.0.1:9/");
        let request = OcspRequest::from_der(&subject.request().unwrap()).unwrap();
        let id = &request.tbs_request.request_list[0].req_cert;
        assert!(same_cert(id, &subject.cert_id().unwrap()));
        assert_eq!(id.issuer_name_hash.as_bytes().len(), 20);
    }

    #[test]
    fn a_chain_without_responder_or_issuer_is_told_apart() {
        let plain = rcgen::generate_simple_self_signed(vec!["a.example.com".into()]).unwrap();
        assert!(Subject::from_chain(&[plain.cert.der().to_vec()]).unwrap().is_none());
        let chain = chain();
        assert_eq!(Subject::from_chain(&chain[..1]).unwrap_err(), OcspError::NoIssuer);
        assert!(matches!(Subject::from_chain(&[b"junk".to_vec()]), Err(OcspError::BadCertificate(_))));
    }

    #[test]
    fn refusals_and_garbage_are_errors() {
        let subject = Subject::from_chain(&chain()).unwrap().unwrap();
        // OCSPResponse { responseStatus: tryLater } and { unauthorized }.
        assert_eq!(
            subject.check(&[0x30, 0x03, 0x0a, 0x01, 0x03], 0),
            Err(OcspError::Refused(OcspResponseStatus::TryLater))
        );
        assert_eq!(
            subject.check(&[0x30, 0x03, 0x0a, 0x01, 0x06], 0),
            Err(OcspError::Refused(OcspResponseStatus::Unauthorized))
        );
        // successful, but no response bytes.
        assert!(matches!(subject.check(&[0x30, 0x03, 0x0a, 0x01, 0x00], 0), Err(OcspError::Malformed(_))));
        for junk in [&b""[..], b"\x30", b"\x30\x84\xff\xff\xff\xff", b"<html>not ocsp</html>"] {
            assert!(matches!(subject.check(junk, 0), Err(OcspError::Malformed(_))), "{junk:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_answers_never_panic_and_are_never_good(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let subject = Subject::from_chain(&chain()).unwrap().unwrap();
            let good = matches!(subject.check(&bytes, 0), Ok(Verdict::Good { .. }));
            prop_assert!(!good);
        }
    }
}
