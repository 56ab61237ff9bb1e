//! DNS names as fazt accepts them: app names, domains, the beacon's LAN name and service
//! user names are all DNS labels, checked once here.

/// True for a DNS label: 1-63 of `a-z0-9-`, not starting or ending with `-`.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// True for a domain name made of DNS labels, at most 253 bytes.
pub fn is_valid_domain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}
