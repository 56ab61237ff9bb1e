//! Node configuration: typed settings kept as key/value rows in `data.db`.
//!
//! Every key is declared once, in the `settings!` table, with its default, its kind and
//! its help. The table makes both [`KEYS`] (so `set-config` refuses unknown keys and bad
//! values before anything is written) and the [`Setting`] enum that code reads keys by
//! (`config.get_u64(Setting::HttpMaxConnections)`), so a mistyped key does not compile.

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

/// Declares every key once, in one order: the [`Setting`] enum that code names (so a
/// mistyped key does not compile) and the [`KEYS`] table that `set-config` checks input
/// against (the key, its default, its kind, one line of help).
macro_rules! settings {
    ($($setting:ident => $name:literal, default $default:literal, $kind:expr, $help:literal;)*) => {
        /// A declared configuration key as code names it: `config.get(Setting::Port)`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Setting {
            $(#[doc = $help] $setting,)*
        }

        /// Every configuration key fazt knows, in the order of [`Setting`].
        pub const KEYS: &[Key] = &[$(Key { name: $name, default: $default, kind: $kind, help: $help },)*];

        impl Setting {
            /// Every key, in the order of [`KEYS`].
            pub const ALL: &[Setting] = &[$(Setting::$setting,)*];
        }
    };
}

settings! {
    Domain => "domain", default "localhost", Kind::Domain,
        "apps are served at <app>.<domain>";
    Port => "port", default "8080", Kind::Port,
        "HTTP port";
    Listen => "listen", default "0.0.0.0", Kind::Ip,
        "address to listen on (0.0.0.0: every interface, so the LAN can reach the node)";
    CacheMaxBytes => "cache.max_bytes", default "67108864", Kind::Count,
        "memory for hot files (bytes)";
    CacheMaxFileBytes => "cache.max_file_bytes", default "4194304", Kind::Count,
        "larger files are read from the database per request";
    DeployMaxArchiveBytes => "deploy.max_archive_bytes", default "268435456", Kind::Count,
        "largest deploy upload (bytes, compressed)";
    DeployMaxSiteBytes => "deploy.max_site_bytes", default "536870912", Kind::Count,
        "largest site after decompression (bytes)";
    DeployMaxFileBytes => "deploy.max_file_bytes", default "104857600", Kind::Count,
        "largest single file (bytes)";
    DeployMaxFiles => "deploy.max_files", default "20000", Kind::Count,
        "most files in one site";
    StorageMaxDbBytes => "storage.max_db_bytes", default "0", Kind::Count,
        "cap on data.db size (0: no cap)";
    EventsMaxRows => "events.max_rows", default "10000", Kind::Count,
        "events kept in data.db for `fazt events` and /api/events (0: live only; just the newest is kept, to number on from it)";
    RuntimeWorkers => "runtime.workers", default "0", Kind::Count,
        "JavaScript worker threads (0: one per core, plus one)";
    RuntimeInlineMs => "runtime.inline_ms", default "0", Kind::Count,
        "N > 0: run handlers on the HTTP threads; one running over N ms gets a spare thread and its app goes to the workers for 30 s (0: always the workers)";
    RuntimeMaxBodyBytes => "runtime.max_body_bytes", default "1048576", Kind::Count,
        "largest request body a serverless handler receives";
    EgressMaxConcurrentPerApp => "egress.max_concurrent_per_app", default "8", Kind::Count,
        "outbound requests (fazt.net.fetch) one app may have in flight (1-1024); more fail at once with rate_limited";
    EgressMaxRequestBytes => "egress.max_request_bytes", default "1048576", Kind::Count,
        "largest body an app may send with fazt.net.fetch (bytes)";
    EgressMaxResponseBytes => "egress.max_response_bytes", default "4194304", Kind::Count,
        "largest answer body fazt.net.fetch reads (bytes); a longer one fails with too_large";
    EgressTimeoutMs => "egress.timeout_ms", default "10000", Kind::Count,
        "total time of one fazt.net.fetch, redirects and body included (ms; at most the handler's own time left)";
    EgressMaxRedirects => "egress.max_redirects", default "5", Kind::Count,
        "redirects fazt.net.fetch follows (0-20), each checked like the first request";
    EgressBreakerFailures => "egress.breaker_failures", default "5", Kind::Count,
        "failures in a row (errors, timeouts, 5xx) that open a destination host's circuit (0: never)";
    EgressBreakerCooldownSecs => "egress.breaker_cooldown_secs", default "30", Kind::Count,
        "seconds an open circuit fails fast before one probe request may go";
    EgressLogMaxRows => "egress.log_max_rows", default "10000", Kind::Count,
        "outbound requests kept in the log of `fazt net logs` (0: none)";
    HttpMaxConnections => "http.max_connections", default "4096", Kind::Count,
        "concurrent connections; when all are taken, the one idle for longest is closed to make room, and new clients wait in the kernel's accept queue while none is idle";
    HttpMaxConnectionsPerClient => "http.max_connections_per_client", default "128", Kind::Count,
        "concurrent connections from one client (an IPv4 address or an IPv6 /64); more are closed at once (0: no cap)";
    HttpHeaderTimeoutSecs => "http.header_timeout_secs", default "30", Kind::Count,
        "seconds a client has to send a request's headers, and to start HTTP/2";
    HttpBodyTimeoutSecs => "http.body_timeout_secs", default "30", Kind::Count,
        "longest wait, in seconds, between two pieces of a request body (nginx's client_body_timeout); a slower client gets 408";
    HttpIdleTimeoutSecs => "http.idle_timeout_secs", default "60", Kind::Count,
        "seconds a keep-alive connection (HTTP/1.1), or an HTTP/2 connection with no request open, may stay idle";
    HttpMaxBodyMemoryBytes => "http.max_body_memory_bytes", default "67108864", Kind::Count,
        "request bodies held in memory at once, node-wide (serverless and API bodies); over it, requests get 503 and Retry-After";
    BeaconEnabled => "beacon.enabled", default "true", Kind::Bool,
        "announce this node on the LAN (mDNS) and find other fazt nodes";
    BeaconName => "beacon.name", default "", Kind::Label,
        "the node's name on the LAN, <name>.local (empty: from the host name)";
    BeaconInterfaces => "beacon.interfaces", default "", Kind::Interfaces,
        "interfaces to announce on, e.g. eth0,wlan0 (empty: all but loopback and container bridges)";
    BeaconAnnounceIntervalSecs => "beacon.announce_interval_secs", default "30", Kind::Count,
        "seconds between announcements (0: only at start and on changes)";
    BeaconExpirySecs => "beacon.expiry_secs", default "300", Kind::Count,
        "a node not heard from for this long is dropped";
    BeaconMaxNodes => "beacon.max_nodes", default "100", Kind::Count,
        "most nodes the beacon remembers";
    TimeEnabled => "time.enabled", default "true", Kind::Bool,
        "keep the kernel clock right from NTP servers, fazt peers, the RTC and the last known time";
    TimeNtpServers => "time.ntp_servers", default "", Kind::Hosts,
        "NTP servers to poll, e.g. pool.ntp.org,10.0.0.1:123 (empty: trust the OS if it keeps the clock, else peers)";
    TimePeers => "time.peers", default "true", Kind::Bool,
        "take the time from fazt nodes the beacon finds (signed answers, majority rule)";
    TimeNtpPort => "time.ntp_port", default "123", Kind::Port,
        "UDP port of this node's NTP server for peers and NTP clients (0: no server)";
    TimePollIntervalSecs => "time.poll_interval_secs", default "64", Kind::Count,
        "seconds between polls of the time sources (at least 1)";
    TimeLocalStratum => "time.local_stratum", default "10", Kind::Count,
        "NTP stratum this node serves while no better source sets it (1-15)";
    TimePersistIntervalSecs => "time.persist_interval_secs", default "60", Kind::Count,
        "seconds between saves of the current time, the floor after a reboot without a clock";
    KeysBackend => "keys.backend", default "auto", Kind::Choice(&["auto", "software", "tpm"]),
        "where node secrets live: tpm (a TPM 2.0 holds and seals them), software (sealed with machine.key beside data.db), auto (the TPM when there is one)";
    KeysTpmTcti => "keys.tpm_tcti", default "device:/dev/tpmrm0", Kind::Text,
        "how to reach the TPM: device:/dev/tpmrm0, or swtpm:host=H,port=P for a software TPM";
    KeysTpmFallback => "keys.tpm_fallback", default "false", Kind::Bool,
        "with keys.backend tpm: run on the software backend when the TPM is absent (only while no key is held by a TPM yet)";
    HttpsMode => "https.mode", default "off", Kind::Choice(&["off", "lan", "acme"]),
        "HTTPS: off, lan (the node's own CA) or acme (Let's Encrypt or another ACME CA)";
    HttpsPort => "https.port", default "443", Kind::Port,
        "HTTPS port (0: any free port)";
    HttpsRedirect => "https.redirect", default "false", Kind::Bool,
        "answer plain HTTP for the node's names with a redirect to HTTPS";
    HttpsMaxHandshakes => "https.max_handshakes", default "64", Kind::Count,
        "TLS handshakes in progress at once; a new one over the cap closes the oldest";
    HttpsHstsMaxAge => "https.hsts_max_age", default "31536000", Kind::Count,
        "Strict-Transport-Security max-age in seconds on HTTPS answers for the domain and its apps, in acme mode only (never with the LAN CA); 0: no header";
    SetupPage => "setup.page", default "off", Kind::Choice(&["off", "loopback", "lan"]),
        "who sees the first-boot setup page (setup code, set the admin password) until the node is claimed: off, loopback, or lan (loopback, private and link-local addresses; the Pi image's choice)";
    AcmeDirectoryUrl => "acme.directory_url", default "https://acme-v02.api.letsencrypt.org/directory", Kind::Url,
        "the ACME CA's directory (default: Let's Encrypt production)";
    AcmeEmail => "acme.email", default "", Kind::Text,
        "contact e-mail for the ACME account (optional)";
    AcmeCaFile => "acme.ca_file", default "", Kind::Text,
        "PEM file of extra roots to trust for the ACME directory (a private or test CA)";
    AcmeChallenge => "acme.challenge", default "http-01", Kind::Choice(&["http-01", "tls-alpn-01"]),
        "how the ACME CA checks the node: http-01 (on the HTTP port, 80) or tls-alpn-01 (on the HTTPS port, 443)";
    AcmeRetrySecs => "acme.retry_secs", default "60", Kind::Count,
        "first wait after an ACME error; doubles per failure up to 6 h (1 h at least when rate-limited)";
    AcmeCheckSecs => "acme.check_secs", default "3600", Kind::Count,
        "how often ACME certificates are checked for renewal (renewed 30 days before expiry)";
}

impl Setting {
    /// Its declaration: name, default, kind and help.
    pub fn key(self) -> &'static Key {
        &KEYS[self as usize]
    }

    /// Its name as stored and as `set-config` takes it, e.g. `http.max_connections`.
    pub fn name(self) -> &'static str {
        self.key().name
    }

    /// The key called `name`, if one is declared (for names typed by a user).
    pub fn from_name(name: &str) -> Option<Setting> {
        Setting::ALL.iter().copied().find(|s| s.name() == name)
    }
}

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

/// The declared key called `key`.
pub fn validate_key(key: &str) -> Result<Setting, ConfigError> {
    Setting::from_name(key).ok_or_else(|| ConfigError::UnknownKey(key.into()))
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
                // Only declared keys: a row a newer version wrote is not ours to read.
                if values.contains_key(&key) {
                    values.insert(key, value);
                }
            }
            Ok(NodeConfig { values })
        })
    }

    /// The value of a key (its default when unset).
    pub fn get(&self, key: Setting) -> &str {
        self.values.get(key.name()).map(String::as_str).unwrap_or("")
    }

    /// A boolean key (`true` only for the stored word `true`).
    pub fn get_bool(&self, key: Setting) -> bool {
        self.get(key) == "true"
    }

    /// A numeric key (declared keys of kind Count/Port always parse; 0 otherwise).
    pub fn get_u64(&self, key: Setting) -> u64 {
        self.get(key).parse().unwrap_or(0)
    }

    /// The node's domain.
    pub fn domain(&self) -> &str {
        self.get(Setting::Domain)
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

/// The stored value of one setting (`None` when unset: its default applies), read on
/// `conn` by code that is already in a transaction or follows a change at runtime.
pub fn stored(conn: &Connection, key: Setting) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM config WHERE key = ?1", [key.name()], |r| r.get(0)).optional()
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
    fn settings_and_keys_agree() {
        assert_eq!(Setting::Domain.name(), "domain");
        assert_eq!(Setting::HttpMaxConnections.name(), "http.max_connections");
        assert_eq!(Setting::from_name("beacon.name"), Some(Setting::BeaconName));
        assert_eq!(Setting::from_name("typo"), None);
        assert_eq!(Setting::ALL.len(), KEYS.len());
        let names: std::collections::BTreeSet<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(names.len(), KEYS.len(), "a key is declared twice");
        for key in KEYS {
            assert_eq!(
                validate(key.name, key.default).ok().as_deref(),
                Some(key.default),
                "the default of {}",
                key.name
            );
        }
    }

    #[test]
    fn stored_values_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("data.db")).unwrap();
        assert_eq!(NodeConfig::load(&storage).unwrap().domain(), "localhost");
        set(&storage, "domain", "pi.example").unwrap();
        assert_eq!(NodeConfig::load(&storage).unwrap().domain(), "pi.example");
        assert!(set(&storage, "port", "x").is_err());
        assert_eq!(NodeConfig::load(&storage).unwrap().get(Setting::Port), "8080");
    }
}
