//! Which addresses an app's request may connect to. Checked on the resolved address,
//! never on the name: a public name that resolves to 127.0.0.1 is refused like the
//! literal. The connection then goes to the checked address itself (see `client`), so a
//! second, different DNS answer (rebinding) cannot slip in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, as far as egress cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A public unicast address: allowed for any allowed host.
    Public,
    /// Loopback, private (RFC 1918), link-local, CGNAT (100.64/10), unique-local IPv6,
    /// and reserved or documentation ranges: only through an explicit
    /// `--private HOST:PORT` entry.
    Private,
    /// Never reachable, not even through a private entry: the unspecified address,
    /// multicast, broadcast, and cloud metadata endpoints.
    Never,
}

/// The cloud metadata endpoints (AWS, GCP, Azure, ...; AWS's IPv6 one).
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The class of an IPv4 address.
pub fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip == METADATA_V4 || ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Class::Never;
    }
    let private = o[0] == 0                                  // 0/8 "this network"
        || o[0] == 10                                        // 10/8
        || o[0] == 127                                       // loopback
        || (o[0] == 100 && (o[1] & 0xc0) == 64)              // 100.64/10 CGNAT
        || (o[0] == 169 && o[1] == 254)                      // link-local
        || (o[0] == 172 && (o[1] & 0xf0) == 16)              // 172.16/12
        || (o[0] == 192 && o[1] == 168)                      // 192.168/16
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)           // 192.0.0/24 IETF
        || (o[0] == 192 && o[1] == 0 && o[2] == 2)           // TEST-NET-1
        || (o[0] == 198 && (o[1] & 0xfe) == 18)              // 198.18/15 benchmarking
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)        // TEST-NET-2
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)         // TEST-NET-3
        || o[0] >= 240; // 240/4 reserved
    if private {
        Class::Private
    } else {
        Class::Public
    }
}

/// The class of an IPv6 address; IPv4 inside it (mapped, compatible, NAT64, 6to4) is
/// judged as that IPv4 address.
pub fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if ip == METADATA_V6 || ip.is_unspecified() || ip.is_multicast() {
        return Class::Never;
    }
    if ip.is_loopback() {
        return Class::Private;
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (the deprecated compatible form).
    if s[0..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return classify_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    // 64:ff9b::/96 NAT64 and 64:ff9b:1::/48 local-use NAT64.
    if s[0] == 0x64 && s[1] == 0xff9b {
        if s[2] == 1 {
            return Class::Private;
        }
        return classify_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    // 2002::/16 6to4 carries an IPv4 address in its next 32 bits.
    if s[0] == 0x2002 {
        return match classify_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
        {
            Class::Public => Class::Public,
            _ => Class::Private,
        };
    }
    let private = (s[0] & 0xfe00) == 0xfc00   // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80           // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0           // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8)  // documentation
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // 100::/64 discard
        || s[0] == 0; // the rest of ::/16 (reserved)
    if private {
        Class::Private
    } else {
        Class::Public
    }
}

/// The class of an address.
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// True when a request may connect to `ip`: public addresses always, private ones only
/// when the app holds a private entry for this host and port (`private_ok`).
pub fn permitted(ip: IpAddr, private_ok: bool) -> bool {
    match classify(ip) {
        Class::Public => true,
        Class::Private => private_ok,
        Class::Never => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_table() {
        use Class::*;
        let table: &[(&str, Class)] = &[
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("127.0.0.1", Private),
            ("127.255.255.254", Private),
            ("0.1.2.3", Private),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("192.0.2.1", Private),
            ("198.18.0.1", Private),
            ("203.0.113.9", Private),
            ("240.0.0.1", Private),
            ("0.0.0.0", Never),
            ("255.255.255.255", Never),
            ("224.0.0.251", Never),
            ("239.255.255.250", Never),
            ("169.254.169.254", Never),
            ("2606:4700:4700::1111", Public),
            ("2001:4860:4860::8888", Public),
            ("::1", Private),
            ("::", Never),
            ("fe80::1", Private),
            ("febf::1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("2001:db8::1", Private),
            ("ff02::fb", Never),
            ("ff05::1:3", Never),
            ("fd00:ec2::254", Never),
            ("::ffff:127.0.0.1", Private),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", Never),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Private),
            ("64:ff9b::7f00:1", Private),
            ("64:ff9b::808:808", Public),
            ("64:ff9b:1::1", Private),
            ("2002:7f00:1::1", Private),
            ("2002:a9fe:a9fe::1", Private),
            ("2002:808:808::1", Public),
            ("100::1", Private),
        ];
        for (text, class) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(classify(ip), *class, "{text}");
        }
    }

    #[test]
    fn private_entries_open_private_addresses_but_never_metadata_or_multicast() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(permitted(ip("8.8.8.8"), false));
        assert!(!permitted(ip("127.0.0.1"), false));
        assert!(permitted(ip("127.0.0.1"), true));
        assert!(permitted(ip("192.168.0.10"), true));
        for never in ["169.254.169.254", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "::ffff:169.254.169.254"] {
            assert!(!permitted(ip(never), true), "{never}");
        }
    }
}
