//! The node record: what a fazt node puts in its `_fazt._tcp` TXT record, signed with
//! the node key, and the checks applied to records heard from the LAN (which anyone can
//! send, so every field is bounded before it is kept).

use super::freshness::Seq;
use crate::identity::{self, NodeIdentity};
use fazt_hal::discovery::Service;
use fazt_hal::keystore;
use serde::Serialize;
use std::net::IpAddr;

/// The DNS-SD service type of fazt nodes.
pub const SERVICE_TYPE: &str = "_fazt._tcp.local.";

/// Version of the signed message layout, part of what is signed (v2 added the
/// addresses and the sequence).
const SIGNED_TAG: &str = "fazt-beacon-v2";

/// Bounds on what a peer may claim (a TXT record may hold 64 KB of anything).
const MAX_NAME: usize = 63;
const MAX_ID: usize = 64;
const MAX_VERSION: usize = 32;
const MAX_SERVICES: usize = 16;
const MAX_SERVICE_LEN: usize = 32;
const MAX_ADDRESSES: usize = 8;
const MAX_FULLNAME: usize = 255;
/// Longest `addrs` value: a TXT string holds at most 255 bytes, key included.
const MAX_ADDRS_TEXT: usize = 240;

/// What a node signs besides its id: every TXT field that says who it is, where to
/// reach it and when it said so.
struct Signed<'a> {
    name: &'a str,
    port: u16,
    version: &'a str,
    services: &'a str,
    /// The announced addresses, as in the `addrs` TXT entry.
    addrs: &'a str,
    /// The sequence, as in the `seq` TXT entry (see [`super::freshness`]).
    seq: &'a str,
    ca: Option<&'a str>,
}

/// The bytes a node signs: the fields one per line, so that no field can be shifted
/// into another. The LAN CA fingerprint is appended only when announced.
fn signed_message(id: &str, f: &Signed<'_>) -> Vec<u8> {
    let Signed { name, port, version, services, addrs, seq, ca } = f;
    let mut message = format!("{SIGNED_TAG}\n{id}\n{name}\n{port}\n{version}\n{services}\n{addrs}\n{seq}");
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

/// The `addrs` TXT value: the announced addresses, comma-separated, as many as fit
/// (at most 8 and 240 bytes; peers ignore an address that is not listed).
pub fn addrs_text(addresses: &[IpAddr]) -> String {
    let mut text = String::new();
    for address in addresses.iter().take(MAX_ADDRESSES) {
        let item = address.to_string();
        if text.len() + item.len() + 1 > MAX_ADDRS_TEXT {
            break;
        }
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(&item);
    }
    text
}

/// What this node announces about itself, to be signed into its TXT record.
#[derive(Debug, Clone)]
pub struct Own<'a> {
    /// The name in use.
    pub name: &'a str,
    /// The HTTP port.
    pub port: u16,
    /// The services offered.
    pub services: &'a [&'a str],
    /// The LAN CA fingerprint, when the node has a LAN CA.
    pub ca: Option<&'a str>,
    /// The addresses announced (A/AAAA records).
    pub addresses: &'a [IpAddr],
    /// This announcement's place in the node's history.
    pub seq: Seq,
}

/// Our TXT record: id, name, version, services, addresses, sequence, the LAN CA
/// fingerprint (when the node has a LAN CA, so other fazt nodes can pin it), public
/// key and signature.
pub fn own_txt(identity: &NodeIdentity, own: &Own<'_>) -> Result<Vec<(String, String)>, keystore::Error> {
    let services = own.services.join(",");
    let version = crate::VERSION;
    let addrs = addrs_text(own.addresses);
    let seq = own.seq.to_string();
    let signed = Signed {
        name: own.name,
        port: own.port,
        version,
        services: &services,
        addrs: &addrs,
        seq: &seq,
        ca: own.ca,
    };
    let sig = identity.sign(&signed_message(&identity.id, &signed))?;
    let ca = own.ca;
    let mut txt = vec![
        ("id".into(), identity.id.clone()),
        ("name".into(), own.name.into()),
        ("version".into(), version.into()),
        ("services".into(), services),
        ("addrs".into(), addrs),
        ("seq".into(), seq),
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
    /// Its addresses (of a signed record, only those it signed).
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
    /// The signed sequence of this announcement (see [`super::freshness`]).
    #[serde(skip)]
    pub seq: Option<Seq>,
}

impl NodeRecord {
    /// True when `other` announces the same as this record, whatever its sequence (a
    /// periodic announcement changes only that).
    pub fn same_as(&self, other: &NodeRecord) -> bool {
        let unsequenced = |r: &NodeRecord| NodeRecord { seq: None, ..r.clone() };
        unsequenced(self) == unsequenced(other)
    }
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
    /// A signed record resolved to addresses none of which it signed.
    #[error("addresses not signed")]
    UnsignedAddresses,
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
    let addrs = txt("addrs").unwrap_or("");
    if addrs.len() > MAX_ADDRS_TEXT {
        return Err(Rejected::Oversized("addrs"));
    }
    let signed_addresses = addrs
        .split(',')
        .filter(|a| !a.is_empty())
        .map(|a| a.parse::<IpAddr>().map_err(|_| Rejected::Malformed("addrs")))
        .collect::<Result<Vec<_>, _>>()?;
    let seq_text = txt("seq");
    let seq = match seq_text {
        Some(text) => Some(Seq::parse(text).ok_or(Rejected::Malformed("seq"))?),
        None => None,
    };
    let verified = match (txt("pk"), txt("sig")) {
        (Some(pk), Some(sig)) => {
            let key = identity::decode_key(pk).ok_or(Rejected::BadSignature)?;
            let sig = identity::decode_signature(sig).ok_or(Rejected::BadSignature)?;
            let signed = Signed {
                name,
                port: service.port,
                version: version.unwrap_or(""),
                services: services_text,
                addrs,
                seq: seq_text.unwrap_or(""),
                ca,
            };
            let message = signed_message(id.unwrap_or(""), &signed);
            // A signed record without a sequence could be replayed forever.
            if seq.is_none()
                || id != Some(identity::id_for(&key).as_str())
                || !keystore::verify(&key, &message, &sig)
            {
                return Err(Rejected::BadSignature);
            }
            true
        }
        _ => false,
    };
    let mut addresses: Vec<IpAddr> = service.addresses.iter().copied().take(MAX_ADDRESSES).collect();
    if verified {
        // Only the addresses the node signed: anyone on the link can answer for its host
        // name with another address.
        let resolved = !addresses.is_empty();
        addresses.retain(|a| signed_addresses.contains(a));
        if resolved && addresses.is_empty() {
            return Err(Rejected::UnsignedAddresses);
        }
        // Then the other signed ones, after those heard on this link. Address records
        // come in separate packets (A over IPv4, AAAA over IPv6), so right after a node
        // renames itself the mDNS layer may know only its link-local IPv6 address for
        // the new host name; the signed list still says how to reach it over IPv4.
        for signed in signed_addresses.iter().take(MAX_ADDRESSES) {
            if !addresses.contains(signed) && addresses.len() < MAX_ADDRESSES {
                addresses.push(*signed);
            }
        }
    }
    Ok(NodeRecord {
        fullname: service.fullname.clone(),
        id: id.map(str::to_string),
        name: name.to_string(),
        host: service.host.clone(),
        addresses,
        port: service.port,
        version: version.map(str::to_string),
        services,
        public_key: txt("pk").filter(|_| verified).map(str::to_string),
        ca_fingerprint: ca.map(str::to_string),
        verified,
        ntp_port: txt("ntp").and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0),
        seq: seq.filter(|_| verified),
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

    fn own(me: &NodeIdentity, ca: Option<&str>, seq: Seq) -> Vec<(String, String)> {
        let addresses: Vec<IpAddr> = vec!["10.77.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
        let own = Own { name: "pi", port: 8080, services: &["web"], ca, addresses: &addresses, seq };
        own_txt(me, &own).unwrap()
    }

    const SEQ: Seq = Seq { boot: 1_764_250_000_000, n: 30 };

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
        let record = parse(&service(own(&me, None, SEQ))).unwrap();
        assert!(record.verified);
        assert_eq!(record.id.as_deref(), Some(me.id.as_str()));
        assert_eq!(record.services, vec!["web"]);
        assert_eq!(record.ntp_port, None);
        let mut with_ntp = service(own(&me, None, SEQ));
        with_ntp.txt.insert("ntp".into(), "123".into());
        assert_eq!(parse(&with_ntp).unwrap().ntp_port, Some(123));
        with_ntp.txt.insert("ntp".into(), "99999".into());
        assert_eq!(parse(&with_ntp).unwrap().ntp_port, None, "a bad port is ignored, not trusted");
    }

    #[test]
    fn tampered_records_are_refused() {
        let me = identity();
        let txt = own(&me, None, SEQ);
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
        let txt = own(&me, Some(&fp), SEQ);
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
    fn addresses_and_sequence_are_signed() {
        let me = identity();
        let txt = own(&me, None, SEQ);
        let record = parse(&service(txt.clone())).unwrap();
        assert_eq!(record.seq, Some(SEQ));
        // Heard on the link first, then the rest of what it signed.
        let signed: Vec<IpAddr> = vec!["10.77.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(record.addresses, signed);
        // Only the link-local address heard so far (A and AAAA records come in separate
        // packets): the signed IPv4 address is still known.
        let mut v6_only = service(txt.clone());
        v6_only.addresses = vec!["fe80::1".parse().unwrap()];
        assert_eq!(parse(&v6_only).unwrap().addresses, vec![signed[1], signed[0]]);
        // Someone else answers for the host name with its own address: not kept.
        let mut both = service(txt.clone());
        both.addresses.push("10.77.0.66".parse().unwrap());
        assert_eq!(parse(&both).unwrap().addresses, record.addresses);
        let mut hijacked = service(txt.clone());
        hijacked.addresses = vec!["10.77.0.66".parse().unwrap()];
        assert_eq!(parse(&hijacked), Err(Rejected::UnsignedAddresses));
        // The lists and the sequence cannot be edited.
        let mut more = service(txt.clone());
        more.txt.insert("addrs".into(), "10.77.0.1,10.77.0.66".into());
        assert_eq!(parse(&more), Err(Rejected::BadSignature));
        let mut newer = service(txt.clone());
        newer.txt.insert("seq".into(), format!("{}-{}", SEQ.boot, SEQ.n + 1));
        assert_eq!(parse(&newer), Err(Rejected::BadSignature));
        let mut unsequenced = service(txt.clone());
        unsequenced.txt.remove("seq");
        assert_eq!(parse(&unsequenced), Err(Rejected::BadSignature));
        let mut junk = service(txt);
        junk.txt.insert("addrs".into(), "10.77.0.1,not-an-address".into());
        assert_eq!(parse(&junk), Err(Rejected::Malformed("addrs")));
        junk.txt.insert("addrs".into(), "1".repeat(241));
        assert_eq!(parse(&junk), Err(Rejected::Oversized("addrs")));
    }

    #[test]
    fn a_later_announcement_is_the_same_record() {
        let me = identity();
        let a = parse(&service(own(&me, None, SEQ))).unwrap();
        let b = parse(&service(own(&me, None, Seq { n: SEQ.n + 30, ..SEQ }))).unwrap();
        assert_ne!(a, b);
        assert!(a.same_as(&b));
        let mut moved = b.clone();
        moved.port = 9090;
        assert!(!a.same_as(&moved));
    }

    #[test]
    fn the_address_list_fits_a_txt_string() {
        let many: Vec<IpAddr> =
            (0..20).map(|i| format!("fd00:1234:5678:9abc:def0:1234:5678:{i:x}").parse().unwrap()).collect();
        let text = addrs_text(&many);
        assert!(text.len() <= MAX_ADDRS_TEXT && !text.is_empty(), "{}", text.len());
        assert!(text.split(',').all(|a| a.parse::<IpAddr>().is_ok()));
        assert_eq!(addrs_text(&[]), "");
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
