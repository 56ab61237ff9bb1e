//! Host routing: `<app>.<domain>` serves that app, `admin.<domain>` the dashboard and its
//! API, the bare domain and `root.<domain>` the landing app, anything else the 404 app.
//! A bare IP address (a user typing the Pi's address) counts as the bare domain.

use crate::rules::names::is_valid_domain;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The admin app and the admin API.
    Admin,
    /// A named app (including `root` and `404`).
    App(String),
    /// No app claims this host.
    Unknown,
}

/// The Host header is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Host header")]
pub struct BadHost;

/// The request names its host ambiguously, the way request smuggling through a proxy
/// would: a proxy and fazt could route it to different apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// A Host header that is not visible ASCII.
    #[error("malformed Host header")]
    Malformed,
    /// Two or more Host headers (RFC 9112 section 3.2: answer 400).
    #[error("more than one Host header")]
    Duplicate,
    /// An absolute-form request line (`GET http://a.example/ HTTP/1.1`) whose host is not
    /// the one in the Host header.
    #[error("the request line names another host than the Host header")]
    Mismatch,
}

impl HostError {
    /// The stable error code for the JSON error body.
    pub fn code(self) -> &'static str {
        match self {
            HostError::Malformed => "bad_host",
            HostError::Duplicate | HostError::Mismatch => "ambiguous_host",
        }
    }
}

/// The host a request is for, before [`route`] checks its syntax: the HTTP/2
/// `:authority`, else the one Host header, else (HTTP/1.0) none.
///
/// In HTTP/1.x the request target may carry a host too (absolute form). RFC 9112 lets a
/// server prefer it, but a proxy in front may have routed by the Host header, so fazt
/// answers a disagreement with an error instead of choosing; the same for two Host
/// headers, which proxies may resolve differently (first or last).
pub fn request_host<'a>(
    version: http::Version,
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
) -> Result<Option<&'a str>, HostError> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let header = hosts.next().map(|v| v.to_str().map_err(|_| HostError::Malformed)).transpose()?;
    if hosts.next().is_some() {
        return Err(HostError::Duplicate);
    }
    let target = uri.authority().map(|a| a.as_str());
    if version >= http::Version::HTTP_2 {
        // `:authority` is authoritative in HTTP/2 (RFC 9113 section 8.3.1).
        return Ok(target.or(header));
    }
    match (target, header) {
        (Some(target), Some(header)) if !target.eq_ignore_ascii_case(header.trim()) => {
            Err(HostError::Mismatch)
        }
        (Some(target), _) => Ok(Some(target)),
        (None, header) => Ok(header),
    }
}

/// Routes a request by its host (from the Host header or the HTTP/2 authority).
pub fn route(host: Option<&str>, domain: &str) -> Result<Route, BadHost> {
    let Some(raw) = host else {
        // HTTP/1.0 without Host: treat as the bare domain, as most servers do.
        return Ok(Route::App("root".into()));
    };
    let name = strip_port(raw.trim()).ok_or(BadHost)?;
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(Route::App("root".into()));
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !is_valid_domain(&name) {
        return Err(BadHost);
    }
    // `<name>.local` is this node as the beacon announces it; mDNS answers for no
    // sub-name of it, so like an IP address it means the bare domain.
    let beacon_name = name.strip_suffix(".local").is_some_and(|l| !l.contains('.'));
    if name == domain || (beacon_name && domain != "local") {
        return Ok(Route::App("root".into()));
    }
    let Some(label) = name.strip_suffix(domain).and_then(|rest| rest.strip_suffix('.')) else {
        return Ok(Route::Unknown);
    };
    Ok(match label {
        "admin" => Route::Admin,
        l if l.contains('.') => Route::Unknown,
        l => Route::App(l.to_string()),
    })
}

/// True when `host` (a Host header or authority, port allowed) is `domain` or a name
/// under it.
pub fn under_domain(host: &str, domain: &str) -> bool {
    let Some(name) = strip_port(host.trim()) else { return false };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == domain || name.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// Strips `:port` (and the brackets of an IPv6 literal); `None` when malformed.
fn strip_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())) {
            return None;
        }
        return Some(ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() && !name.is_empty() => Some(name),
        Some(_) => None,
        None if host.is_empty() => None,
        None => Some(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: &str) -> Result<Route, BadHost> {
        route(Some(host), "localhost")
    }

    #[test]
    fn routes_by_subdomain() {
        assert_eq!(r("blog.localhost:8080"), Ok(Route::App("blog".into())));
        assert_eq!(r("BLOG.LocalHost."), Ok(Route::App("blog".into())));
        assert_eq!(r("admin.localhost"), Ok(Route::Admin));
        assert_eq!(r("localhost:8080"), Ok(Route::App("root".into())));
        assert_eq!(r("root.localhost"), Ok(Route::App("root".into())));
        assert_eq!(r("127.0.0.1:8080"), Ok(Route::App("root".into())));
        assert_eq!(r("[::1]:8080"), Ok(Route::App("root".into())));
        assert_eq!(r("a.b.localhost"), Ok(Route::Unknown));
        assert_eq!(r("example.com"), Ok(Route::Unknown));
        assert_eq!(r("evil-localhost"), Ok(Route::Unknown));
        assert_eq!(route(None, "localhost"), Ok(Route::App("root".into())));
    }

    #[test]
    fn beacon_name_is_the_bare_domain() {
        assert_eq!(r("kitchen-pi.local:8080"), Ok(Route::App("root".into())));
        assert_eq!(r("blog.kitchen-pi.local"), Ok(Route::Unknown));
        assert_eq!(route(Some("blog.local"), "local"), Ok(Route::App("blog".into())));
    }

    fn host(version: http::Version, uri: &http::Uri, hosts: &[&str]) -> Result<Option<String>, HostError> {
        let mut headers = http::HeaderMap::new();
        for h in hosts {
            headers.append(http::header::HOST, http::HeaderValue::from_str(h).unwrap());
        }
        request_host(version, uri, &headers).map(|h| h.map(str::to_string))
    }

    #[test]
    fn absolute_form_must_agree_with_the_host_header() {
        use http::Version;
        let abs: http::Uri = "http://admin.localhost:8080/api/apps".parse().unwrap();
        let origin: http::Uri = "/api/apps".parse().unwrap();
        let one = |h| Some(String::from(h));
        assert_eq!(host(Version::HTTP_11, &origin, &["blog.localhost"]), Ok(one("blog.localhost")));
        assert_eq!(host(Version::HTTP_11, &abs, &["ADMIN.localhost:8080"]), Ok(one("admin.localhost:8080")));
        assert_eq!(host(Version::HTTP_11, &abs, &["blog.localhost:8080"]), Err(HostError::Mismatch));
        assert_eq!(host(Version::HTTP_11, &abs, &["admin.localhost"]), Err(HostError::Mismatch));
        assert_eq!(host(Version::HTTP_10, &abs, &[]), Ok(one("admin.localhost:8080")));
        assert_eq!(host(Version::HTTP_10, &origin, &[]), Ok(None));
        // HTTP/2: the authority decides.
        assert_eq!(host(Version::HTTP_2, &abs, &["blog.localhost"]), Ok(one("admin.localhost:8080")));
    }

    #[test]
    fn duplicate_host_headers_are_refused() {
        let origin: http::Uri = "/".parse().unwrap();
        for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
            let twice = host(version, &origin, &["blog.localhost", "admin.localhost"]);
            assert_eq!(twice, Err(HostError::Duplicate));
            let same = host(version, &origin, &["blog.localhost", "blog.localhost"]);
            assert_eq!(same, Err(HostError::Duplicate));
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, http::HeaderValue::from_bytes(b"bl\xe9g").unwrap());
        assert_eq!(request_host(http::Version::HTTP_11, &origin, &headers), Err(HostError::Malformed));
    }

    #[test]
    fn names_under_the_domain() {
        for yes in ["example.com", "Admin.Example.com:443", "blog.example.com.", "a.b.example.com"] {
            assert!(under_domain(yes, "example.com"), "{yes}");
        }
        for no in ["badexample.com", "example.com.evil", "10.0.0.1", "[::1]:443", "pi.local", ""] {
            assert!(!under_domain(no, "example.com"), "{no}");
        }
    }

    #[test]
    fn refuses_malformed_hosts() {
        for bad in [
            "",
            "a b",
            "blog.localhost:99999",
            "blog.localhost:",
            ":80",
            "[::1",
            "bl_og.localhost",
            "x/y",
            "a..localhost",
            "\u{e9}.localhost",
        ] {
            assert_eq!(r(bad), Err(BadHost), "{bad:?}");
        }
    }
}
