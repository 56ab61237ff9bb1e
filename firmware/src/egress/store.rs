//! What egress keeps in `data.db`: each app's allow-list (`egress_allow`) and the
//! request log (`egress_log`), a ring trimmed to `egress.log_max_rows` as rows come.

use super::EgressError;
use crate::time::UnixMillis;
use rusqlite::{params, Connection};

/// Longest host pattern kept, in bytes.
pub const MAX_HOST_BYTES: usize = 255;
/// Entries one app may hold.
pub const MAX_RULES_PER_APP: i64 = 1000;
/// Most log rows one read returns.
pub const MAX_LOG_READ: usize = 1000;

/// One entry of an app's allow-list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// A host name (`api.example.com`), a wildcard over its subdomains
    /// (`*.example.com`), or an IP address (IPv6 without brackets).
    pub host: String,
    /// The one port allowed; 0 for any.
    pub port: u16,
    /// Whether it may reach private addresses (a LAN service: host and port exact).
    pub private: bool,
}

impl Rule {
    /// Parses `HOST`, `HOST:PORT`, `*.DOMAIN`, `[V6]:PORT` as the admin typed it; a
    /// private entry needs an exact host and a port.
    pub fn parse(text: &str, private: bool) -> Result<Rule, EgressError> {
        let invalid = |m: &str| {
            EgressError::Invalid(format!(
                "'{}': {m}",
                text.chars().take(80).collect::<String>().escape_default()
            ))
        };
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_HOST_BYTES {
            return Err(invalid("a host is 1 to 255 bytes"));
        }
        if text.bytes().any(|b| b <= b' ' || b == 0x7f || b"/?#@\\".contains(&b)) {
            return Err(invalid("give a host (and port), not a URL"));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(|| invalid("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| invalid("bad port"))?),
            };
            (format!("[{v6}]"), port)
        } else if text.matches(':').count() > 1 {
            (format!("[{text}]"), None)
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (text.to_string(), None),
            }
        };
        let port = match port {
            None => 0,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(invalid("the port is 1 to 65535")),
            },
        };
        let (wildcard, bare) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, host),
        };
        let parsed = url::Host::parse(&bare).map_err(|e| invalid(&format!("not a host: {e}")))?;
        let host = match parsed {
            url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        if host.is_empty() || host.contains('*') {
            return Err(invalid("not a host"));
        }
        if wildcard && host.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid("a wildcard covers the subdomains of a name, not an address"));
        }
        if private && (wildcard || port == 0) {
            return Err(invalid("--private opens one service: give an exact HOST:PORT"));
        }
        let host = if wildcard { format!("*.{host}") } else { host };
        Ok(Rule { host, port, private })
    }

    /// True when this entry covers `host` (normalised as [`super::target::Target`]) on `port`.
    pub fn covers(&self, host: &str, port: u16) -> bool {
        let name = match self.host.strip_prefix("*.") {
            Some(domain) => {
                host.len() > domain.len() + 1
                    && host.ends_with(domain)
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            }
            None => self.host == host,
        };
        name && (self.port == 0 || self.port == port)
    }
}

/// An app's allow-list.
pub fn rules(conn: &Connection, app_id: &str) -> Result<Vec<Rule>, EgressError> {
    let mut statement = conn.prepare_cached(
        "SELECT host, port, private FROM egress_allow WHERE app_id = ?1 ORDER BY host, port",
    )?;
    let rows = statement.query_map([app_id], |r| {
        Ok(Rule { host: r.get(0)?, port: r.get::<_, i64>(1)? as u16, private: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every app's allow-list: (app id, app name, entry).
pub fn all_rules(conn: &Connection) -> Result<Vec<(String, String, Rule)>, EgressError> {
    let mut statement = conn.prepare_cached(
        "SELECT e.app_id, a.name, e.host, e.port, e.private FROM egress_allow e JOIN apps a ON a.id = e.app_id
         WHERE a.deleted_at IS NULL ORDER BY a.name, e.host, e.port",
    )?;
    let rows = statement.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            Rule { host: r.get(2)?, port: r.get::<_, i64>(3)? as u16, private: r.get(4)? },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds (or replaces) an entry; false when it was there already, the same.
pub fn allow(conn: &Connection, app_id: &str, rule: &Rule, now: UnixMillis) -> Result<bool, EgressError> {
    let count: i64 =
        conn.query_row("SELECT count(*) FROM egress_allow WHERE app_id = ?1", [app_id], |r| r.get(0))?;
    if count >= MAX_RULES_PER_APP {
        return Err(EgressError::Invalid(format!("an app holds at most {MAX_RULES_PER_APP} egress entries")));
    }
    let changed = conn.execute(
        "INSERT INTO egress_allow(app_id, host, port, private, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(app_id, host, port) DO UPDATE SET private = excluded.private
         WHERE private != excluded.private",
        params![app_id, rule.host, rule.port as i64, rule.private, now],
    )?;
    Ok(changed > 0)
}

/// Removes the entries for `host` (every port, when `port` is 0); how many went.
pub fn deny(conn: &Connection, app_id: &str, host: &str, port: u16) -> Result<usize, EgressError> {
    Ok(conn.execute(
        "DELETE FROM egress_allow WHERE app_id = ?1 AND host = ?2 AND (?3 = 0 OR port = ?3)",
        params![app_id, host, port as i64],
    )?)
}

/// An app's own limits; `None` takes the node's `egress.*` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppLimits {
    /// Requests in flight at once (1 to 1024).
    pub max_concurrent: Option<u64>,
    /// Largest request body (0 to 64 MiB).
    pub max_request_bytes: Option<u64>,
    /// Largest answer body (0 to 256 MiB).
    pub max_response_bytes: Option<u64>,
    /// Total time of one fetch, in ms (1 to 600,000).
    pub timeout_ms: Option<u64>,
}

impl AppLimits {
    /// Refuses values out of their ranges.
    pub fn check(&self) -> Result<(), EgressError> {
        let ranges = [
            ("max_concurrent", self.max_concurrent, 1, 1024),
            ("max_request_bytes", self.max_request_bytes, 0, 64 << 20),
            ("max_response_bytes", self.max_response_bytes, 0, 256 << 20),
            ("timeout_ms", self.timeout_ms, 1, 600_000),
        ];
        for (name, value, low, high) in ranges {
            if let Some(v) = value {
                if !(low..=high).contains(&v) {
                    return Err(EgressError::Invalid(format!("{name} is {low} to {high}")));
                }
            }
        }
        Ok(())
    }

    /// These limits over the node's `settings`.
    pub fn over(&self, settings: super::Settings) -> super::Settings {
        super::Settings {
            max_concurrent_per_app: self
                .max_concurrent
                .map_or(settings.max_concurrent_per_app, |n| n as usize),
            max_request_bytes: self.max_request_bytes.map_or(settings.max_request_bytes, |n| n as usize),
            max_response_bytes: self.max_response_bytes.map_or(settings.max_response_bytes, |n| n as usize),
            timeout: self.timeout_ms.map_or(settings.timeout, std::time::Duration::from_millis),
            ..settings
        }
    }
}

/// An app's own limits (all `None` when it has none).
pub fn app_limits(conn: &Connection, app_id: &str) -> Result<AppLimits, EgressError> {
    use rusqlite::OptionalExtension;
    let row = conn
        .prepare_cached(
            "SELECT max_concurrent, max_request_bytes, max_response_bytes, timeout_ms FROM egress_limits WHERE app_id = ?1",
        )?
        .query_row([app_id], |r| {
            let get = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.map(|n| n.max(0) as u64));
            Ok(AppLimits {
                max_concurrent: get(0)?,
                max_request_bytes: get(1)?,
                max_response_bytes: get(2)?,
                timeout_ms: get(3)?,
            })
        })
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// Replaces an app's own limits (checked); all `None` removes them.
pub fn set_app_limits(conn: &Connection, app_id: &str, limits: &AppLimits) -> Result<(), EgressError> {
    limits.check()?;
    if *limits == AppLimits::default() {
        conn.execute("DELETE FROM egress_limits WHERE app_id = ?1", [app_id])?;
        return Ok(());
    }
    let n = |v: Option<u64>| v.map(|n| n as i64);
    conn.execute(
        "INSERT INTO egress_limits(app_id, max_concurrent, max_request_bytes, max_response_bytes, timeout_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(app_id) DO UPDATE SET max_concurrent = excluded.max_concurrent,
             max_request_bytes = excluded.max_request_bytes, max_response_bytes = excluded.max_response_bytes,
             timeout_ms = excluded.timeout_ms",
        params![
            app_id,
            n(limits.max_concurrent),
            n(limits.max_request_bytes),
            n(limits.max_response_bytes),
            n(limits.timeout_ms)
        ],
    )?;
    Ok(())
}

/// One request in the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    /// Increasing.
    pub id: i64,
    /// When it started.
    pub at: UnixMillis,
    /// The app.
    pub app_id: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The destination host (of the last hop).
    pub host: String,
    /// The answer's status; `None` when there was none.
    pub status: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    /// Milliseconds from start to end.
    pub duration_ms: u64,
    /// The error code when it failed (`timeout`, `host_not_allowed`, ...).
    pub error: Option<String>,
}

/// Appends a log row and trims the ring to `max_rows` (0: keep none).
pub fn log(conn: &Connection, entry: &LogEntry, max_rows: u64) -> Result<(), EgressError> {
    if max_rows == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO egress_log(at, app_id, method, host, status, bytes, duration_ms, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.at,
        entry.app_id,
        entry.method,
        entry.host,
        entry.status,
        entry.bytes as i64,
        entry.duration_ms as i64,
        entry.error
    ])?;
    let last = conn.last_insert_rowid();
    conn.prepare_cached("DELETE FROM egress_log WHERE id <= ?1")?
        .execute([last.saturating_sub(max_rows.min(i64::MAX as u64) as i64)])?;
    Ok(())
}

/// Log rows (of one app when given), oldest first: the last `limit`, or with `after`
/// the first `limit` after that id (to follow the log).
pub fn recent(
    conn: &Connection,
    app_id: Option<&str>,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<LogEntry>, EgressError> {
    let limit = limit.clamp(1, MAX_LOG_READ) as i64;
    let mut statement = conn.prepare_cached(
        "SELECT id, at, app_id, method, host, status, bytes, duration_ms, error FROM egress_log
         WHERE (?1 IS NULL OR app_id = ?1) AND (?3 IS NULL OR id > ?3)
         ORDER BY CASE WHEN ?3 IS NULL THEN -id ELSE id END LIMIT ?2",
    )?;
    let rows = statement.query_map(params![app_id, limit, after], |r| {
        Ok(LogEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            app_id: r.get(2)?,
            method: r.get(3)?,
            host: r.get(4)?,
            status: r.get::<_, Option<i64>>(5)?.map(|s| s as u16),
            bytes: r.get::<_, i64>(6)?.max(0) as u64,
            duration_ms: r.get::<_, i64>(7)?.max(0) as u64,
            error: r.get(8)?,
        })
    })?;
    let mut list: Vec<LogEntry> = rows.collect::<Result<_, _>>()?;
    if after.is_none() {
        list.reverse();
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_normalise_and_refuse_urls_and_odd_input() {
        let r = |t: &str| Rule::parse(t, false).unwrap();
        assert_eq!(r("API.Example.com"), Rule { host: "api.example.com".into(), port: 0, private: false });
        assert_eq!(r("example.com:8443").port, 8443);
        assert_eq!(r("*.Example.com").host, "*.example.com");
        assert_eq!(r("[::1]:80"), Rule { host: "::1".into(), port: 80, private: false });
        assert_eq!(r("::1").host, "::1");
        assert_eq!(r("0x7f.1").host, "127.0.0.1");
        let p = Rule::parse("127.0.0.1:8080", true).unwrap();
        assert!(p.private && p.port == 8080);
        for bad in [
            "",
            " ",
            "http://example.com",
            "example.com/path",
            "user@example.com",
            "example.com:0",
            "example.com:99999",
            "example.com:+80",
            "example.com:",
            "*.*.example.com",
            "*.10.0.0.1",
            "*",
            "[::1",
            "[::1]x",
            "exa mple.com",
            "a\nb",
            "a\0b",
        ] {
            assert!(Rule::parse(bad, false).is_err(), "{bad:?}");
        }
        for bad in ["127.0.0.1", "*.lan:80", "nas.lan"] {
            assert!(Rule::parse(bad, true).is_err(), "--private {bad}");
        }
        assert!(Rule::parse(&"a".repeat(300), false).is_err());
    }

    #[test]
    fn entries_cover_their_host_and_port_only() {
        let r = |t: &str| Rule::parse(t, false).unwrap();
        assert!(r("example.com").covers("example.com", 443));
        assert!(!r("example.com").covers("api.example.com", 443));
        assert!(r("*.example.com").covers("api.example.com", 80));
        assert!(r("*.example.com").covers("a.b.example.com", 80));
        assert!(!r("*.example.com").covers("example.com", 80));
        assert!(!r("*.example.com").covers("badexample.com", 80));
        assert!(r("example.com:8080").covers("example.com", 8080));
        assert!(!r("example.com:8080").covers("example.com", 80));
    }

    #[test]
    fn the_log_is_a_bounded_ring_and_the_allow_list_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::Storage::open(&dir.path().join("data.db")).unwrap();
        storage.write_blocking(test_body).unwrap();
    }

    fn test_body(conn: &mut Connection) -> Result<(), EgressError> {
        let conn = &*conn;
        conn.execute("INSERT INTO apps(id, name, created_at, updated_at) VALUES ('a', 'a', 0, 0)", [])
            .unwrap();
        let rule = Rule::parse("example.com", false).unwrap();
        assert!(allow(conn, "a", &rule, 1).unwrap());
        assert!(!allow(conn, "a", &rule, 1).unwrap(), "the same again changes nothing");
        assert_eq!(rules(conn, "a").unwrap(), vec![rule.clone()]);
        assert_eq!(all_rules(conn).unwrap()[0].1, "a");
        assert_eq!(deny(conn, "a", "example.com", 0).unwrap(), 1);
        assert!(rules(conn, "a").unwrap().is_empty());
        for i in 0..25 {
            let entry = LogEntry {
                id: 0,
                at: i,
                app_id: if i % 2 == 0 { "a".into() } else { "b".into() },
                method: "GET".into(),
                host: "h".into(),
                status: Some(200),
                bytes: 1,
                duration_ms: 2,
                error: None,
            };
            log(conn, &entry, 10).unwrap();
        }
        let count: i64 = conn.query_row("SELECT count(*) FROM egress_log", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 10);
        let all = recent(conn, None, None, 100).unwrap();
        assert_eq!(all.first().unwrap().at, 15);
        assert_eq!(all.last().unwrap().at, 24);
        assert!(recent(conn, Some("a"), None, 100).unwrap().iter().all(|e| e.app_id == "a"));
        assert_eq!(recent(conn, None, None, 3).unwrap().len(), 3);
        let first = all[0].id;
        let next = recent(conn, None, Some(first), 2).unwrap();
        assert_eq!(next.iter().map(|e| e.id).collect::<Vec<_>>(), [first + 1, first + 2], "following");
        assert!(recent(conn, None, Some(all[9].id), 10).unwrap().is_empty());

        // Per-app limits: stored, read back, laid over the node's, refused out of range.
        assert_eq!(app_limits(conn, "a")?, AppLimits::default());
        let mine = AppLimits { timeout_ms: Some(500), max_response_bytes: Some(10), ..AppLimits::default() };
        set_app_limits(conn, "a", &mine)?;
        assert_eq!(app_limits(conn, "a")?, mine);
        let node = super::super::Settings::default();
        let effective = mine.over(node);
        assert_eq!(effective.timeout, std::time::Duration::from_millis(500));
        assert_eq!(effective.max_response_bytes, 10);
        assert_eq!(effective.max_request_bytes, node.max_request_bytes);
        for bad in [
            AppLimits { max_concurrent: Some(0), ..AppLimits::default() },
            AppLimits { max_concurrent: Some(5000), ..AppLimits::default() },
            AppLimits { timeout_ms: Some(0), ..AppLimits::default() },
            AppLimits { max_response_bytes: Some(u64::MAX), ..AppLimits::default() },
        ] {
            assert!(set_app_limits(conn, "a", &bad).is_err(), "{bad:?}");
        }
        assert_eq!(app_limits(conn, "a")?, mine, "a refused change changes nothing");
        set_app_limits(conn, "a", &AppLimits::default())?;
        assert_eq!(app_limits(conn, "a")?, AppLimits::default());
        Ok(())
    }
}
