//! What an app asks for: the URL (parsed and normalised by the `url` crate, then held to
//! fazt's rules), the method and the headers. Everything here is checked before any
//! name is resolved or any byte is sent.

use super::EgressError;

/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Most request headers an app may set.
pub const MAX_HEADERS: usize = 64;
/// Longest header name plus value, in bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// A request's destination, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The whole URL, normalised.
    pub url: url::Url,
    /// The host as the allow-list names it: a lower-case DNS name (IDNA to punycode),
    /// an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
}

impl Target {
    /// `host:port` (`[v6]:port` for IPv6) for messages and private entries.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn bad(message: impl Into<String>) -> EgressError {
    EgressError::BadUrl(message.into())
}

/// Parses an absolute `http://` or `https://` URL with a host and no credentials.
pub fn parse(text: &str) -> Result<Target, EgressError> {
    if text.len() > MAX_URL_BYTES {
        return Err(bad(format!("URLs are at most {MAX_URL_BYTES} bytes")));
    }
    if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(bad("the URL holds control characters"));
    }
    let url = url::Url::parse(text).map_err(|e| bad(format!("not a URL: {e}")))?;
    check(url)
}

/// A redirect's `Location`, relative to the URL that answered it.
pub fn join(base: &url::Url, location: &str) -> Result<Target, EgressError> {
    if location.len() > MAX_URL_BYTES || location.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(bad("the redirect's Location is not a usable URL"));
    }
    let url = base.join(location).map_err(|e| bad(format!("the redirect's Location is not a URL: {e}")))?;
    check(url)
}

fn check(mut url: url::Url) -> Result<Target, EgressError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("only http and https URLs, not '{}:'", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("URLs with credentials (user:password@) are refused; send an Authorization header"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() || name.len() > 253 {
                return Err(bad("the URL's host name is empty or too long"));
            }
            name
        }
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(bad("the URL has no host")),
    };
    let port = url.port_or_known_default().ok_or_else(|| bad("the URL has no port"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    url.set_fragment(None);
    Ok(Target { url, host, port })
}

/// Methods an app may send.
pub fn method(text: &str) -> Result<&'static str, EgressError> {
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let upper = text.to_ascii_uppercase();
    METHODS
        .iter()
        .find(|m| **m == upper)
        .copied()
        .ok_or_else(|| EgressError::Invalid(format!("method must be one of {}", METHODS.join(", "))))
}

/// Headers the kernel sets itself (or that would change how the message is framed).
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "expect",
];

/// Checks the app's headers: names are HTTP tokens, values hold no CR, LF or NUL, the
/// kernel's own are refused, and there are at most [`MAX_HEADERS`] of
/// [`MAX_HEADER_BYTES`] each. Names come back lower-case.
pub fn headers(list: Vec<(String, String)>) -> Result<Vec<(String, String)>, EgressError> {
    if list.len() > MAX_HEADERS {
        return Err(EgressError::Invalid(format!("at most {MAX_HEADERS} request headers")));
    }
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let mut out = Vec::with_capacity(list.len());
    for (name, value) in list {
        if name.is_empty() || !name.bytes().all(token) {
            return Err(EgressError::Invalid(format!(
                "'{}' is not a header name",
                name.chars().take(64).collect::<String>().escape_default()
            )));
        }
        if name.len() + value.len() > MAX_HEADER_BYTES {
            return Err(EgressError::Invalid(format!("header '{name}' is over {MAX_HEADER_BYTES} bytes")));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(EgressError::Invalid(format!("header '{name}' holds CR, LF or NUL")));
        }
        let name = name.to_ascii_lowercase();
        if RESERVED.contains(&name.as_str()) {
            return Err(EgressError::Invalid(format!("header '{name}' is set by the kernel")));
        }
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_hostile_ones_refused() {
        let t = parse("HTTPS://Example.COM./a?b#frag").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.url.as_str()),
            ("example.com", 443, "https://example.com./a?b")
        );
        let t = parse("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.authority().as_str()), ("::1", 8080, "[::1]:8080"));
        // Odd IPv4 spellings become the address they mean, so the address rules see it.
        for odd in ["http://0x7f.1/", "http://2130706433/", "http://127.1/", "http://0177.0.0.1/"] {
            assert_eq!(parse(odd).unwrap().host, "127.0.0.1", "{odd}");
        }
        assert_eq!(parse("http://bücher.example/").unwrap().host, "xn--bcher-kva.example");
        // WHATWG parsing: extra slashes are skipped, so this names the host "path".
        assert_eq!(parse("http:///path").unwrap().host, "path");
        for hostile in [
            "",
            "example.com",
            "/relative",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://127.0.0.1:25/",
            "javascript:alert(1)",
            "data:text/plain,hi",
            "http://user:pw@example.com/",
            "http://user@example.com/",
            "http://example.com:0/",
            "http://example.com:99999/",
            "http://exa mple.com/",
            "http://example.com/\r\nHost: evil",
            "http://example.com/\0",
            "http://[::1/",
            "http://",
            "https://%00/",
        ] {
            assert!(parse(hostile).is_err(), "{hostile:?} was accepted");
        }
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(parse(&long).unwrap_err().code(), "bad_url");
        let huge_host = format!("http://{}.com/", "a.".repeat(200));
        assert!(parse(&huge_host).is_err());
    }

    #[test]
    fn redirects_resolve_relative_locations_and_keep_the_rules() {
        let base = parse("https://a.example/x/y").unwrap().url;
        assert_eq!(join(&base, "/z").unwrap().url.as_str(), "https://a.example/z");
        assert_eq!(join(&base, "z").unwrap().url.as_str(), "https://a.example/x/z");
        assert_eq!(join(&base, "//b.example/").unwrap().host, "b.example");
        assert_eq!(join(&base, "http://10.0.0.1/").unwrap().host, "10.0.0.1");
        for bad in ["file:///etc/passwd", "ftp://a/", "http://u:p@a/", "http://a/\r\n"] {
            assert!(join(&base, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_and_headers() {
        assert_eq!(method("post").unwrap(), "POST");
        assert!(method("CONNECT").is_err() && method("TRACE").is_err() && method("").is_err());
        let ok = headers(vec![("X-Key".into(), "v".into()), ("Accept".into(), "*/*".into())]).unwrap();
        assert_eq!(ok[0].0, "x-key");
        for (name, value) in [
            ("Host", "evil"),
            ("content-length", "5"),
            ("Transfer-Encoding", "chunked"),
            ("X-A", "a\r\nInjected: 1"),
            ("X-A", "a\nb"),
            ("X-A", "a\0"),
            ("Bad Name", "v"),
            ("", "v"),
            ("X:Y", "v"),
            ("Ünï", "v"),
        ] {
            assert!(headers(vec![(name.into(), value.into())]).is_err(), "{name:?}: {value:?}");
        }
        let many = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), String::new())).collect();
        assert!(headers(many).is_err());
        assert!(headers(vec![("x".into(), "v".repeat(MAX_HEADER_BYTES))]).is_err());
    }
}
