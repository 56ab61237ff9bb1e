//! The node record: what a fazt node puts in its `_fazt._tcp` TXT record, signed with
//! the node key, and the checks applied to records heard from the LAN (which anyone can
//! send, so every field is bounded before it is kept).

use super::identity::{self, NodeIdentity};
use fazt_hal::discovery::Service;
use fazt_hal::keystore;
use serde::Serialize;
use std::net::IpAddr;

/// The DNS-SD service type of fazt nodes.
pub const SERVICE_TYPE: &str = "_fazt._tcp.local.";

/// Version of the signed message layout, part of what is signed.
const SIGNED_TAG: &str = "fazt-beacon-v1";

/// Bounds on what a peer may claim (a TXT record may hold 64 KB of anything).
const MAX_NAME: usize = 63;
const MAX_ID: usize = 64;
const MAX_VERSION: usize = 32;
const MAX_SERVICES: usize = 16;
const MAX_SERVICE_LEN: usize = 32;
const MAX_ADDRESSES: usize = 8;
const MAX_FULLNAME: usize = 255;

/// The bytes a node signs: every TXT field that says who it is and where to reach it,
/// one per line, so that no field can be shifted into another. The LAN CA fingerprint
/// is appended only when announced, so records without one keep their old layout.
fn signed_message(
    id: &str,
    name: &str,
    port: u16,
    version: &str,
    services: &str,
    ca: Option<&str>,
) -> Vec<u8> {
    let mut message = format!("{SIGNED_TAG}\n{id}\n{name}\n{port}\n{version}\n{services}");
    if let Some(ca) = ca {
        message.push_str("\nca:");
        message.push_str(ca);
    }
    message.into_bytes()
}

/// True for a SHA-256 fingerprint as announced: 64 lowercase hex digits.
fn is_fingerprint(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Our TXT record: id, name, version, services, the LAN CA fingerprint (when the node
/// has a LAN CA, so other fazt nodes can pin it), public key and signature.
pub fn own_txt(
    identity: &NodeIdentity,
    name: &str,
    port: u16,
    services: &[&str],
    ca: Option<&str>,
) -> Result<Vec<(String, String)>, keystore::Error> {
    let services = services.join(",");
    let version = crate::VERSION;
    let sig = identity.sign(&signed_message(&identity.id, name, port, version, &services, ca))?;
    let mut txt = vec![
        ("id".into(), identity.id.clone()),
        ("name".into(), name.into()),
        ("version".into(), version.into()),
        ("services".into(), services),
        ("pk".into(), identity::encode_key(&identity.public_key)),
        ("sig".into(), identity::encode_signature(&sig)),
    ];
    if let Some(ca) = ca {
        txt.push(("ca".into(), ca.to_string()));
    }
    Ok(txt)
}

/// A node heard on the LAN, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRecord {
    /// The DNS-SD instance full name (unique on the link).
    pub fullname: String,
    /// The node id it claims (proven when `verified`).
    pub id: Option<String>,
    /// Its name.
    pub name: String,
    /// Its mDNS host name, e.g. `kitchen-pi.local.`.
    pub host: String,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Its HTTP port.
    pub port: u16,
    /// The fazt version it runs.
    pub version: Option<String>,
    /// The services it offers.
    pub services: Vec<String>,
    /// Its public key (base64url), when it sent one.
    pub public_key: Option<String>,
    /// SHA-256 of its LAN CA certificate (hex), when it has one; signed with the rest.
    pub ca_fingerprint: Option<String>,
    /// True when the record is signed by the key whose id it claims.
    pub verified: bool,
    /// The UDP port of its time server, when it runs one.
    pub ntp_port: Option<u16>,
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// A field is longer than any real node sends.
    #[error("oversized {0}")]
    Oversized(&'static str),
    /// A field has characters no real node sends.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A key and signature are present but do not match the fields or the id.
    #[error("bad signature")]
    BadSignature,
}

fn printable(s: &str) -> bool {
    s.chars().all(|c| !c.is_control())
}

/// Checks a resolved `_fazt._tcp` service. Unsigned records (an older fazt, or a
/// service published by hand with `avahi-publish`) are kept as unverified; a record
/// whose signature is present but wrong is refused, since only forgery produces one.
pub fn parse(service: &Service) -> Result<NodeRecord, Rejected> {
    if service.fullname.len() > MAX_FULLNAME || service.host.len() > MAX_FULLNAME {
        return Err(Rejected::Oversized("name"));
    }
    if service.port == 0 {
        return Err(Rejected::Malformed("port"));
    }
    let txt = |key: &str| service.txt.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let instance = service.instance(SERVICE_TYPE);
    let name = txt("name").unwrap_or(instance);
    if name.chars().count() > MAX_NAME {
        return Err(Rejected::Oversized("name"));
    }
    if !printable(name) || !printable(&service.fullname) || !printable(&service.host) {
        return Err(Rejected::Malformed("name"));
    }
    let id = txt("id");
    if let Some(id) = id {
        if id.len() > MAX_ID {
            return Err(Rejected::Oversized("id"));
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(Rejected::Malformed("id"));
        }
    }
    let version = txt("version");
    if version.is_some_and(|v| v.len() > MAX_VERSION || !printable(v)) {
        return Err(Rejected::Oversized("version"));
    }
    let services_text = txt("services").unwrap_or("");
    let services: Vec<String> =
        services_text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if services.len() > MAX_SERVICES || services.iter().any(|s| s.len() > MAX_SERVICE_LEN) {
        return Err(Rejected::Oversized("services"));
    }
    if !services.iter().all(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')) {
        return Err(Rejected::Malformed("services"));
    }
    let ca = txt("ca");
    if ca.is_some_and(|c| !is_fingerprint(c)) {
        return Err(Rejected::Malformed("ca"));
    }
    let verified = match (txt("pk"), txt("sig")) {
        (Some(pk), Some(sig)) => {
            let key = identity::decode_key(pk).ok_or(Rejected::BadSignature)?;
            let sig = identity::decode_signature(sig).ok_or(Rejected::BadSignature)?;
            let message = signed_message(
                id.unwrap_or(""),
                name,
                service.port,
                version.unwrap_or(""),
                services_text,
                ca,
            );
            if id != Some(identity::id_for(&key).as_str()) || !keystore::verify(&key, &message, &sig) {
                return Err(Rejected::BadSignature);
            }
            true
        }
        _ => false,
    };
    Ok(NodeRecord {
        fullname: service.fullname.clone(),
        id: id.map(str::to_string),
        name: name.to_string(),
        host: service.host.clone(),
        addresses: service.addresses.iter().copied().take(MAX_ADDRESSES).collect(),
        port: service.port,
        version: version.map(str::to_string),
        services,
        public_key: txt("pk").filter(|_| verified).map(str::to_string),
        ca_fingerprint: ca.map(str::to_string),
        verified,
        ntp_port: txt("ntp").and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fazt_hal::keystore::{Keystore, MemorySeeds, SoftwareKeystore};
    use std::sync::Arc;

    fn identity() -> NodeIdentity {
        let keystore: Arc<dyn Keystore> = Arc::new(SoftwareKeystore::new(MemorySeeds::default()));
        NodeIdentity::load_or_create(keystore).unwrap()
    }

    fn service(txt: Vec<(String, String)>) -> Service {
        Service {
            fullname: format!("pi.{SERVICE_TYPE}"),
            host: "pi.local.".into(),
            port: 8080,
            addresses: vec!["10.77.0.1".parse().unwrap()],
            txt: txt.into_iter().collect(),
        }
    }

    #[test]
    fn own_record_verifies() {
        let me = identity();
        let record = parse(&service(own_txt(&me, "pi", 8080, &["web"], None).unwrap())).unwrap();
        assert!(record.verified);
        assert_eq!(record.id.as_deref(), Some(me.id.as_str()));
        assert_eq!(record.services, vec!["web"]);
        assert_eq!(record.ntp_port, None);
        let mut with_ntp = service(own_txt(&me, "pi", 8080, &["web"], None).unwrap());
        with_ntp.txt.insert("ntp".into(), "123".into());
        assert_eq!(parse(&with_ntp).unwrap().ntp_port, Some(123));
        with_ntp.txt.insert("ntp".into(), "99999".into());
        assert_eq!(parse(&with_ntp).unwrap().ntp_port, None, "a bad port is ignored, not trusted");
    }

    #[test]
    fn tampered_records_are_refused() {
        let me = identity();
        let txt = own_txt(&me, "pi", 8080, &["web"], None).unwrap();
        let mut moved = service(txt.clone());
        moved.port = 9090;
        assert_eq!(parse(&moved), Err(Rejected::BadSignature));
        let mut renamed = service(txt.clone());
        renamed.txt.insert("name".into(), "evil".into());
        assert_eq!(parse(&renamed), Err(Rejected::BadSignature));
        let other = identity();
        let mut stolen_id = service(txt);
        stolen_id.txt.insert("pk".into(), identity::encode_key(&other.public_key));
        assert_eq!(parse(&stolen_id), Err(Rejected::BadSignature));
    }

    #[test]
    fn the_ca_fingerprint_is_signed() {
        let me = identity();
        let fp = "ab".repeat(32);
        let txt = own_txt(&me, "pi", 8080, &["web"], Some(&fp)).unwrap();
        let record = parse(&service(txt.clone())).unwrap();
        assert!(record.verified);
        assert_eq!(record.ca_fingerprint.as_deref(), Some(fp.as_str()));
        let mut swapped = service(txt.clone());
        swapped.txt.insert("ca".into(), "cd".repeat(32));
        assert_eq!(parse(&swapped), Err(Rejected::BadSignature));
        let mut dropped = service(txt.clone());
        dropped.txt.remove("ca");
        assert_eq!(parse(&dropped), Err(Rejected::BadSignature));
        let mut junk = service(txt);
        junk.txt.insert("ca".into(), "<not hex>".into());
        assert_eq!(parse(&junk), Err(Rejected::Malformed("ca")));
    }

    #[test]
    fn unsigned_records_are_kept_unverified() {
        let record = parse(&service(vec![("id".into(), "abc".into())])).unwrap();
        assert!(!record.verified);
        assert_eq!(record.name, "pi");
    }

    #[test]
    fn hostile_fields_are_bounded() {
        let big = |k: &str, n: usize| service(vec![(k.to_string(), "x".repeat(n))]);
        assert_eq!(parse(&big("name", 64)), Err(Rejected::Oversized("name")));
        assert_eq!(parse(&big("id", 65)), Err(Rejected::Oversized("id")));
        assert_eq!(parse(&big("version", 33)), Err(Rejected::Oversized("version")));
        let many = (0..17).map(|i| format!("s{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(parse(&service(vec![("services".into(), many)])), Err(Rejected::Oversized("services")));
        assert_eq!(
            parse(&service(vec![("name".into(), "a\u{0}b".into())])),
            Err(Rejected::Malformed("name"))
        );
        assert_eq!(parse(&service(vec![("id".into(), "<script>".into())])), Err(Rejected::Malformed("id")));
        let mut zero = service(vec![]);
        zero.port = 0;
        assert!(parse(&zero).is_err());
    }
}
