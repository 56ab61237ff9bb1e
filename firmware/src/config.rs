//! Node configuration: typed settings kept as key/value rows in `data.db`.
//!
//! Every key is declared once in [`KEYS`] with its default and its kind, so `set-config`
//! refuses unknown keys and bad values before anything is written.

use crate::storage::{Storage, StorageError};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;

/// The kind of value a key holds, for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A DNS name (the node's domain).
    Domain,
    /// A TCP port, 0..=65535.
    Port,
    /// An IP address to listen on.
    Ip,
    /// A non-negative integer (bytes, counts).
    Count,
    /// `true` or `false`.
    Bool,
    /// A DNS label such as `kitchen-pi`, or empty for "derive one".
    Label,
    /// Network interface names separated by commas, or empty for "choose".
    Interfaces,
    /// Host names or IP addresses with optional `:port`, separated by commas.
    Hosts,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// An `https://` (or `http://`) URL.
    Url,
    /// Any one line of text (a file path, an e-mail address), or empty.
    Text,
}

/// A declared configuration key.
#[derive(Debug)]
pub struct Key {
    /// The key, e.g. `domain`.
    pub name: &'static str,
    /// Its value when unset.
    pub default: &'static str,
    /// How its values are checked.
    pub kind: Kind,
    /// One line for `fazt server set-config --help` and the docs.
    pub help: &'static str,
}

/// Every configuration key fazt knows.
pub const KEYS: &[Key] = &[
    Key {
        name: "domain",
        default: "localhost",
        kind: Kind::Domain,
        help: "apps are served at <app>.<domain>",
    },
    Key { name: "port", default: "8080", kind: Kind::Port, help: "HTTP port" },
    Key {
        name: "listen",
        default: "0.0.0.0",
        kind: Kind::Ip,
        help: "address to listen on (0.0.0.0: every interface, so the LAN can reach the node)",
    },
    Key {
        name: "cache.max_bytes",
        default: "67108864",
        kind: Kind::Count,
        help: "memory for hot files (bytes)",
    },
    Key {
        name: "cache.max_file_bytes",
        default: "4194304",
        kind: Kind::Count,
        help: "larger files are read from the database per request",
    },
    Key {
        name: "deploy.max_archive_bytes",
        default: "268435456",
        kind: Kind::Count,
        help: "largest deploy upload (bytes, compressed)",
    },
    Key {
        name: "deploy.max_site_bytes",
        default: "536870912",
        kind: Kind::Count,
        help: "largest site after decompression (bytes)",
    },
    Key {
        name: "deploy.max_file_bytes",
        default: "104857600",
        kind: Kind::Count,
        help: "largest single file (bytes)",
    },
    Key { name: "deploy.max_files", default: "20000", kind: Kind::Count, help: "most files in one site" },
    Key {
        name: "storage.max_db_bytes",
        default: "0",
        kind: Kind::Count,
        help: "cap on data.db size (0: no cap)",
    },
    Key {
        name: "events.max_rows",
        default: "10000",
        kind: Kind::Count,
        help: "events kept in data.db for `fazt events` and /api/events (0: live only; just the newest is kept, to number on from it)",
    },
    Key {
        name: "runtime.workers",
        default: "0",
        kind: Kind::Count,
        help: "JavaScript worker threads (0: one per core, plus one)",
    },
    Key {
        name: "runtime.inline_ms",
        default: "0",
        kind: Kind::Count,
        help: "N > 0: run handlers on the HTTP threads; one running over N ms gets a spare thread and its app goes to the workers for 30 s (0: always the workers)",
    },
    Key {
        name: "runtime.max_body_bytes",
        default: "1048576",
        kind: Kind::Count,
        help: "largest request body a serverless handler receives",
    },
    Key {
        name: "http.max_connections",
        default: "4096",
        kind: Kind::Count,
        help: "concurrent connections; when all are taken, the one idle for longest is closed to make room, and new clients wait in the kernel's accept queue while none is idle",
    },
    Key {
        name: "http.max_connections_per_client",
        default: "128",
        kind: Kind::Count,
        help: "concurrent connections from one client (an IPv4 address or an IPv6 /64); more are closed at once (0: no cap)",
    },
    Key {
        name: "http.header_timeout_secs",
        default: "30",
        kind: Kind::Count,
        help: "seconds a client has to send a request's headers, and to start HTTP/2",
    },
    Key {
        name: "http.body_timeout_secs",
        default: "30",
        kind: Kind::Count,
        help: "longest wait, in seconds, between two pieces of a request body (nginx's client_body_timeout); a slower client gets 408",
    },
    Key {
        name: "http.idle_timeout_secs",
        default: "60",
        kind: Kind::Count,
        help: "seconds a keep-alive connection (HTTP/1.1), or an HTTP/2 connection with no request open, may stay idle",
    },
    Key {
        name: "http.max_body_memory_bytes",
        default: "67108864",
        kind: Kind::Count,
        help: "request bodies held in memory at once, node-wide (serverless and API bodies); over it, requests get 503 and Retry-After",
    },
    Key {
        name: "beacon.enabled",
        default: "true",
        kind: Kind::Bool,
        help: "announce this node on the LAN (mDNS) and find other fazt nodes",
    },
    Key {
        name: "beacon.name",
        default: "",
        kind: Kind::Label,
        help: "the node's name on the LAN, <name>.local (empty: from the host name)",
    },
    Key {
        name: "beacon.interfaces",
        default: "",
        kind: Kind::Interfaces,
        help: "interfaces to announce on, e.g. eth0,wlan0 (empty: all but loopback and container bridges)",
    },
    Key {
        name: "beacon.announce_interval_secs",
        default: "30",
        kind: Kind::Count,
        help: "seconds between announcements (0: only at start and on changes)",
    },
    Key {
        name: "beacon.expiry_secs",
        default: "300",
        kind: Kind::Count,
        help: "a node not heard from for this long is dropped",
    },
    Key {
        name: "beacon.max_nodes",
        default: "100",
        kind: Kind::Count,
        help: "most nodes the beacon remembers",
    },
    Key {
        name: "time.enabled",
        default: "true",
        kind: Kind::Bool,
        help: "keep the kernel clock right from NTP servers, fazt peers, the RTC and the last known time",
    },
    Key {
        name: "time.ntp_servers",
        default: "",
        kind: Kind::Hosts,
        help: "NTP servers to poll, e.g. pool.ntp.org,10.0.0.1:123 (empty: trust the OS if it keeps the clock, else peers)",
    },
    Key {
        name: "time.peers",
        default: "true",
        kind: Kind::Bool,
        help: "take the time from fazt nodes the beacon finds (signed answers, majority rule)",
    },
    Key {
        name: "time.ntp_port",
        default: "123",
        kind: Kind::Port,
        help: "UDP port of this node's NTP server for peers and NTP clients (0: no server)",
    },
    Key {
        name: "time.poll_interval_secs",
        default: "64",
        kind: Kind::Count,
        help: "seconds between polls of the time sources (at least 1)",
    },
    Key {
        name: "time.local_stratum",
        default: "10",
        kind: Kind::Count,
        help: "NTP stratum this node serves while no better source sets it (1-15)",
    },
    Key {
        name: "time.persist_interval_secs",
        default: "60",
        kind: Kind::Count,
        help: "seconds between saves of the current time, the floor after a reboot without a clock",
    },
    Key {
        name: "keys.backend",
        default: "auto",
        kind: Kind::Choice(&["auto", "software", "tpm"]),
        help: "where node secrets live: tpm (a TPM 2.0 holds and seals them), software (sealed with machine.key beside data.db), auto (the TPM when there is one)",
    },
    Key {
        name: "keys.tpm_tcti",
        default: "device:/dev/tpmrm0",
        kind: Kind::Text,
        help: "how to reach the TPM: device:/dev/tpmrm0, or swtpm:host=H,port=P for a software TPM",
    },
    Key {
        name: "keys.tpm_fallback",
        default: "false",
        kind: Kind::Bool,
        help: "with keys.backend tpm: run on the software backend when the TPM is absent (only while no key is held by a TPM yet)",
    },
    Key {
        name: "https.mode",
        default: "off",
        kind: Kind::Choice(&["off", "lan", "acme"]),
        help: "HTTPS: off, lan (the node's own CA) or acme (Let's Encrypt or another ACME CA)",
    },
    Key { name: "https.port", default: "443", kind: Kind::Port, help: "HTTPS port (0: any free port)" },
    Key {
        name: "https.redirect",
        default: "false",
        kind: Kind::Bool,
        help: "answer plain HTTP for the node's names with a redirect to HTTPS",
    },
    Key { name: "https.max_handshakes", default: "64", kind: Kind::Count, help: "TLS handshakes in progress at once; a new one over the cap closes the oldest" },
    Key {
        name: "https.hsts_max_age",
        default: "31536000",
        kind: Kind::Count,
        help: "Strict-Transport-Security max-age in seconds on HTTPS answers for the domain and its apps, in acme mode only (never with the LAN CA); 0: no header",
    },
    Key {
        name: "setup.page",
        default: "off",
        kind: Kind::Choice(&["off", "loopback", "lan"]),
        help: "who sees the first-boot setup page (setup code, set the admin password) until the node is claimed: off, loopback, or lan (loopback, private and link-local addresses; the Pi image's choice)",
    },
    Key {
        name: "acme.directory_url",
        default: "https://acme-v02.api.letsencrypt.org/directory",
        kind: Kind::Url,
        help: "the ACME CA's directory (default: Let's Encrypt production)",
    },
    Key {
        name: "acme.email",
        default: "",
        kind: Kind::Text,
        help: "contact e-mail for the ACME account (optional)",
    },
    Key {
        name: "acme.ca_file",
        default: "",
        kind: Kind::Text,
        help: "PEM file of extra roots to trust for the ACME directory (a private or test CA)",
    },
    Key {
        name: "acme.challenge",
        default: "http-01",
        kind: Kind::Choice(&["http-01", "tls-alpn-01"]),
        help: "how the ACME CA checks the node: http-01 (on the HTTP port, 80) or tls-alpn-01 (on the HTTPS port, 443)",
    },
    Key {
        name: "acme.retry_secs",
        default: "60",
        kind: Kind::Count,
        help:
            "first wait after an ACME error; doubles per failure up to 6 h (1 h at least when rate-limited)",
    },
    Key {
        name: "acme.check_secs",
        default: "3600",
        kind: Kind::Count,
        help: "how often ACME certificates are checked for renewal (renewed 30 days before expiry)",
    },
];

/// A bad `set-config` request.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The key is not declared.
    #[error("unknown config key '{0}' (known keys: {known})", known = KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "))]
    UnknownKey(String),
    /// The value does not fit the key's kind.
    #[error("invalid value '{value}' for {key}: {why}")]
    BadValue {
        /// The key.
        key: String,
        /// The refused value.
        value: String,
        /// What was expected.
        why: &'static str,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks that `key` is declared.
pub fn validate_key(key: &str) -> Result<(), ConfigError> {
    KEYS.iter().any(|k| k.name == key).then_some(()).ok_or_else(|| ConfigError::UnknownKey(key.into()))
}

/// Checks `value` for `key` and returns it normalised.
pub fn validate(key: &str, value: &str) -> Result<String, ConfigError> {
    let decl = KEYS.iter().find(|k| k.name == key).ok_or_else(|| ConfigError::UnknownKey(key.into()))?;
    let bad = |why| ConfigError::BadValue { key: key.into(), value: value.into(), why };
    let value = value.trim();
    match decl.kind {
        Kind::Domain => {
            let v = value.to_ascii_lowercase();
            if crate::rules::names::is_valid_domain(&v) {
                Ok(v)
            } else {
                Err(bad("expected a domain name such as example.com or localhost"))
            }
        }
        Kind::Port => value.parse::<u16>().map(|p| p.to_string()).map_err(|_| bad("expected a port 0-65535")),
        Kind::Ip => value
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| bad("expected an IP address such as 0.0.0.0 or 127.0.0.1")),
        Kind::Count => {
            value.parse::<u64>().map(|n| n.to_string()).map_err(|_| bad("expected a whole number"))
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok("true".into()),
            "false" | "off" | "no" | "0" => Ok("false".into()),
            _ => Err(bad("expected true or false")),
        },
        Kind::Label => {
            let v = value.to_ascii_lowercase();
            if v.is_empty() || crate::rules::names::is_dns_label(&v) {
                Ok(v)
            } else {
                Err(bad(
                    "expected a DNS label: 1-63 letters, digits and '-', not starting or ending with '-'",
                ))
            }
        }
        Kind::Interfaces => {
            let names: Vec<&str> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
            let valid = |n: &&str| {
                n.len() <= 15 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
            };
            if names.iter().all(valid) {
                Ok(names.join(","))
            } else {
                Err(bad("expected interface names separated by commas, e.g. eth0,wlan0"))
            }
        }
        Kind::Hosts => {
            let hosts: Vec<&str> = value.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
            let valid = |h: &&str| {
                h.len() <= 253
                    && (h.parse::<std::net::SocketAddr>().is_ok()
                        || h.parse::<std::net::IpAddr>().is_ok()
                        || match h.rsplit_once(':') {
                            Some((name, port)) => {
                                port.parse::<u16>().is_ok_and(|p| p > 0)
                                    && crate::rules::names::is_valid_domain(&name.to_ascii_lowercase())
                            }
                            None => crate::rules::names::is_valid_domain(&h.to_ascii_lowercase()),
                        })
            };
            if hosts.len() <= 16 && hosts.iter().all(valid) {
                Ok(hosts.join(","))
            } else {
                Err(bad("expected up to 16 host names or IP addresses with an optional :port, separated by commas"))
            }
        }
        Kind::Url => {
            let ok = (value.starts_with("https://") || value.starts_with("http://"))
                && value.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
            if ok {
                Ok(value.to_string())
            } else {
                Err(bad("expected a URL such as https://acme-v02.api.letsencrypt.org/directory"))
            }
        }
        Kind::Text => {
            if value.len() <= 1024 && !value.chars().any(char::is_control) {
                Ok(value.to_string())
            } else {
                Err(bad("expected one line of text"))
            }
        }
        Kind::Choice(words) => {
            let v = value.to_ascii_lowercase();
            match words.iter().find(|w| **w == v) {
                Some(w) => Ok(w.to_string()),
                None => Err(bad("expected one of the words listed in `fazt config list`")),
            }
        }
    }
}

/// The effective configuration of a node (defaults overlaid with stored values).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    values: BTreeMap<String, String>,
}

impl NodeConfig {
    /// Reads every key from the database.
    pub fn load(storage: &Storage) -> Result<Self, StorageError> {
        storage.read_blocking(|conn| {
            let mut values: BTreeMap<String, String> =
                KEYS.iter().map(|k| (k.name.to_string(), k.default.to_string())).collect();
            let mut stmt = conn.prepare("SELECT key, value FROM config")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (key, value) = row?;
                // Only declared keys; other rows (internal state) are not configuration.
                if values.contains_key(&key) {
                    values.insert(key, value);
                }
            }
            Ok(NodeConfig { values })
        })
    }

    /// The value of a declared key.
    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    /// A boolean key (`true` only for the stored word `true`).
    pub fn get_bool(&self, key: &str) -> bool {
        self.get(key) == "true"
    }

    /// A numeric key (declared keys of kind Count/Port always parse; 0 otherwise).
    pub fn get_u64(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap_or(0)
    }

    /// The node's domain.
    pub fn domain(&self) -> &str {
        self.get("domain")
    }

    /// Every key and value, for the API and `server status`.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

/// Validates and stores one key.
pub fn set(storage: &Storage, key: &str, value: &str) -> Result<String, ConfigError> {
    let value = validate(key, value)?;
    let stored = value.clone();
    storage.write_blocking(move |conn| {
        conn.execute(
            "INSERT INTO config(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, stored],
        )?;
        Ok::<_, StorageError>(())
    })?;
    Ok(value)
}

/// Reads an internal state row (not a declared key), e.g. the system-apps version.
pub fn get_state(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM config WHERE key = ?1", [key], |r| r.get(0)).optional()
}

/// Writes an internal state row.
pub fn set_state(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO config(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_refuses_bad_values() {
        assert!(matches!(validate("nope", "1"), Err(ConfigError::UnknownKey(_))));
        assert!(matches!(validate("port", "70000"), Err(ConfigError::BadValue { .. })));
        assert!(matches!(validate("domain", "bad domain"), Err(ConfigError::BadValue { .. })));
        assert!(matches!(validate("listen", "localhost"), Err(ConfigError::BadValue { .. })));
        assert_eq!(validate("domain", " Example.COM ").unwrap(), "example.com");
        assert_eq!(validate("port", "0").unwrap(), "0");
        assert_eq!(validate("beacon.enabled", "OFF").unwrap(), "false");
        assert!(validate("beacon.enabled", "maybe").is_err());
        assert_eq!(validate("beacon.name", "Kitchen-Pi").unwrap(), "kitchen-pi");
        assert!(validate("beacon.name", "-pi").is_err());
        assert!(validate("beacon.name", "a.b").is_err());
        assert_eq!(validate("beacon.interfaces", " eth0, wlan0 ").unwrap(), "eth0,wlan0");
        assert!(validate("beacon.interfaces", "eth0;rm").is_err());
        assert_eq!(
            validate("time.ntp_servers", "pool.ntp.org, 10.0.0.1, 10.0.0.2:1123, [::1]:123").unwrap(),
            "pool.ntp.org,10.0.0.1,10.0.0.2:1123,[::1]:123"
        );
        assert_eq!(validate("time.ntp_servers", "").unwrap(), "");
        assert!(validate("time.ntp_servers", "bad host").is_err());
        assert!(validate("time.ntp_servers", "pool.ntp.org:0").is_err());
        assert!(validate("time.ntp_servers", "x:99999").is_err());
        assert_eq!(validate("https.mode", " LAN ").unwrap(), "lan");
        assert!(validate("https.mode", "maybe").is_err());
        assert!(validate("acme.directory_url", "ftp://x").is_err());
        assert!(validate("acme.directory_url", "https://127.0.0.1:14000/dir").is_ok());
        assert!(validate("acme.email", "a\nb").is_err());
    }

    #[test]
    fn stored_values_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        assert_eq!(NodeConfig::load(&storage).unwrap().domain(), "localhost");
        set(&storage, "domain", "pi.example").unwrap();
        assert_eq!(NodeConfig::load(&storage).unwrap().domain(), "pi.example");
        assert!(set(&storage, "port", "x").is_err());
        assert_eq!(NodeConfig::load(&storage).unwrap().get("port"), "8080");
    }
}
