//! The node's name on the LAN: a DNS label, announced as `<name>.local`.

/// True for a name the beacon can announce: a DNS label, 1-63 of `a-z0-9-`, not
/// starting or ending with `-` (RFC 1123; mDNS would allow more, browsers and phones
/// handle this much).
pub fn is_valid(name: &str) -> bool {
    crate::rules::names::is_dns_label(name)
}

/// A valid name made from any text (a host name such as `Kitchen_Pi.lan`): lower case,
/// the first label only, other characters turned into `-`; `fallback` when nothing is
/// left.
pub fn sanitize(text: &str, fallback: &str) -> String {
    let first = text.trim().split('.').next().unwrap_or("");
    let mapped: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(63)
        .collect();
    let trimmed = mapped.trim_matches('-');
    if is_valid(trimmed) {
        trimmed.to_string()
    } else {
        fallback.to_string()
    }
}

/// The name used when `beacon.name` is empty: the machine's host name, like Avahi.
pub fn default_name() -> String {
    // The kernel's UTS name; the same as `hostname` prints.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    sanitize(&host, "fazt")
}

/// The label of a full mDNS host name: `kitchen-pi-2.local.` gives `kitchen-pi-2`.
pub fn label_of_host(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    host.strip_suffix(".local").unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert!(is_valid("kitchen-pi"));
        assert!(is_valid("pi4"));
        for bad in ["", "-pi", "pi-", "Pi", "kitchen pi", "a.b", &"x".repeat(64)] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn host_names_are_sanitized() {
        assert_eq!(sanitize("Kitchen_Pi.lan\n", "fazt"), "kitchen-pi");
        assert_eq!(sanitize("---", "fazt"), "fazt");
        assert_eq!(sanitize("", "fazt"), "fazt");
        assert_eq!(sanitize(&"a".repeat(80), "fazt").len(), 63);
        assert!(is_valid(&default_name()));
    }

    #[test]
    fn host_labels() {
        assert_eq!(label_of_host("kitchen-pi-2.local."), "kitchen-pi-2");
        assert_eq!(label_of_host("kitchen-pi.local"), "kitchen-pi");
    }
}
