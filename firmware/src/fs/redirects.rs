//! An app's `_redirects` file, in Netlify's format: parsing (bounded, every error with its
//! line number) and matching a request against the rules. Pure: no storage, no HTTP.
//!
//! A line is `FROM [key=value ...] TO [STATUS][!]`; `#` starts a comment line, blank lines
//! are ignored. `FROM` is a path (`/news/*`, `/blog/:year/:month`); the `key=value` pairs
//! between `FROM` and `TO` are query conditions (`id=:id` binds, `id=7` must equal). `TO`
//! is a path or an `http(s)://` URL, with `:splat` and the placeholders substituted.
//! `STATUS` is 301 (the default), 302, 303, 307, 308 (redirects), 200 (a rewrite: the
//! target's file is served under the requested URL) or 404 (the target's file served with
//! status 404). `!` forces the rule even when a file exists at the requested path; without
//! it, existing files win (Netlify's "shadowing").
//!
//! A malformed line refuses the whole file (and so the deploy): a silently skipped rule,
//! or one applied without its condition, could publish what the owner meant to hide.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The file's name at the top of a site.
pub const FILE_NAME: &str = "_redirects";
/// The largest `_redirects` file accepted.
pub const MAX_BYTES: usize = 64 * 1024;
/// The most rules in one file.
pub const MAX_RULES: usize = 1000;
/// The longest line, in bytes.
pub const MAX_LINE: usize = 2048;

/// Why a `_redirects` file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("_redirects line {line}: {message}")]
pub struct ParseError {
    /// 1-based line; 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 200: serve the target's file under the requested URL.
    Rewrite,
    /// 301, 302, 303, 307 or 308 to the target.
    Redirect(u16),
    /// 404: serve the target's file with status 404.
    NotFound,
}

/// One piece of a `FROM` path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

/// A query condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `key=:name`: the parameter must be present; its value is bound to `name`.
    Bind(String, String),
    /// `key=value`: the parameter must have this value.
    Equals(String, String),
}

/// One piece of a `TO` target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Splat,
    Placeholder(String),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line in the file.
    pub line: usize,
    from: Vec<Segment>,
    splat: bool,
    conditions: Vec<Condition>,
    to: Vec<Piece>,
    external: bool,
    /// What it does.
    pub kind: Kind,
    /// Applies even when a file exists at the requested path.
    pub force: bool,
}

/// The parsed rules of one deployment, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redirects {
    rules: Vec<Rule>,
}

/// What a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// What to do.
    pub kind: Kind,
    /// For a redirect, the `Location` (path or URL, query included); for a rewrite or a
    /// 404, the target path (starting with `/`, query dropped).
    pub target: String,
}

/// Bytes a placeholder value keeps as they are: unreserved characters and a few
/// harmless sub-delimiters. Everything else (CR, LF, `%`, `?`, `#`, `&`, `=`, `\`, `@`,
/// spaces, non-ASCII) is percent-encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b';')
    .remove(b':');

/// Bytes kept as they are in the literal parts of a target: every printable ASCII
/// character (the owner wrote them); non-ASCII is percent-encoded.
const LITERAL: &AsciiSet = &percent_encoding::CONTROLS.add(b' ');

impl Redirects {
    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Parses a `_redirects` file.
    pub fn parse(bytes: &[u8]) -> Result<Redirects, ParseError> {
        let whole = |message: String| ParseError { line: 0, message };
        if bytes.len() > MAX_BYTES {
            return Err(whole(format!(
                "the file is {} bytes, more than the {MAX_BYTES} allowed",
                bytes.len()
            )));
        }
        let mut rules = Vec::new();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let err = |message: String| ParseError { line, message };
            if raw.len() > MAX_LINE {
                return Err(err(format!("longer than {MAX_LINE} bytes")));
            }
            let text = std::str::from_utf8(raw).map_err(|_| err("not UTF-8".into()))?;
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.chars().any(|c| c.is_control() && c != '\t') {
                return Err(err("a control character (NUL, CR, ...) in the line".into()));
            }
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            if rules.len() == MAX_RULES {
                return Err(err(format!("more than {MAX_RULES} rules")));
            }
            rules.push(parse_line(text, line).map_err(err)?);
        }
        Ok(Redirects { rules })
    }

    /// The first rule that applies to a request for the site path `path` (decoded and
    /// normalised: no leading slash, `""` for the root) with the raw query string
    /// `query`. `file_exists` says whether a file answers the path: then only forced
    /// rules apply.
    pub fn find(&self, path: &str, query: Option<&str>, file_exists: bool) -> Option<Matched> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let params: Vec<(String, String)> = match query {
            Some(q) if self.rules.iter().any(|r| !r.conditions.is_empty()) => parse_query(q),
            _ => Vec::new(),
        };
        self.rules.iter().filter(|rule| rule.force || !file_exists).find_map(|rule| {
            let bound = rule.matches(&segments, &params)?;
            let target = rule.target(&bound);
            Some(match rule.kind {
                Kind::Redirect(_) => {
                    let location = match query {
                        Some(q) if rule.conditions.is_empty() && !target.contains('?') && !q.is_empty() => {
                            format!("{target}?{q}")
                        }
                        _ => target,
                    };
                    Matched { kind: rule.kind, target: location }
                }
                Kind::Rewrite | Kind::NotFound => {
                    let end = target.find(['?', '#']).unwrap_or(target.len());
                    Matched { kind: rule.kind, target: target[..end].to_string() }
                }
            })
        })
    }
}

/// What a rule bound: the splat and the placeholders by name.
struct Bound<'a> {
    splat: Option<String>,
    values: Vec<(&'a str, String)>,
}

impl Rule {
    fn matches<'a>(&'a self, segments: &[&str], params: &[(String, String)]) -> Option<Bound<'a>> {
        if segments.len() < self.from.len() || (!self.splat && segments.len() != self.from.len()) {
            return None;
        }
        let mut bound = Bound { splat: None, values: Vec::new() };
        for (pattern, segment) in self.from.iter().zip(segments) {
            match pattern {
                Segment::Literal(lit) if lit == segment => {}
                Segment::Literal(_) => return None,
                Segment::Placeholder(name) => bound.values.push((name, (*segment).to_string())),
            }
        }
        for condition in &self.conditions {
            match condition {
                Condition::Bind(key, name) => {
                    let (_, value) = params.iter().find(|(k, _)| k == key)?;
                    bound.values.push((name, value.clone()));
                }
                Condition::Equals(key, want) => {
                    params.iter().find(|(k, v)| k == key && v == want)?;
                }
            }
        }
        if self.splat {
            bound.splat = Some(segments[self.from.len()..].join("/"));
        }
        Some(bound)
    }

    /// The target with the values substituted, each percent-encoded so that it cannot
    /// add a line, a scheme, a host, a query or a fragment.
    fn target(&self, bound: &Bound) -> String {
        let mut out = String::new();
        for piece in &self.to {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Splat => {
                    let splat = bound.splat.as_deref().unwrap_or("");
                    for (i, segment) in splat.split('/').enumerate() {
                        if i > 0 {
                            out.push('/');
                        }
                        out.extend(utf8_percent_encode(segment, VALUE));
                    }
                }
                Piece::Placeholder(name) => {
                    let value = bound.values.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str());
                    out.extend(utf8_percent_encode(value, VALUE));
                }
            }
        }
        if !self.external {
            // A local target stays a path on this host: never `//host` or `/\host`.
            let rest = out.trim_start_matches(['/', '\\']);
            out = format!("/{rest}");
        }
        out
    }
}

/// `key=value` pairs of a query string, percent-decoded (`+` is a space).
fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(64)
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_external(to: &str) -> bool {
    let lower = to.get(..8).unwrap_or(to).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn parse_line(text: &str, line: usize) -> Result<Rule, String> {
    let mut tokens = text.split_whitespace();
    let from_text = tokens.next().unwrap_or_default();
    if is_external(from_text) {
        return Err(format!("'{from_text}': domain-level rules are not supported; FROM is a path like /old"));
    }
    if !from_text.starts_with('/') {
        return Err(format!("'{from_text}': FROM must be a path starting with /"));
    }
    if from_text.contains('?') {
        return Err(format!(
            "'{from_text}': write query conditions as key=value after the path (/store id=:id /products/:id)"
        ));
    }
    let decoded = percent_decode_str(from_text)
        .decode_utf8()
        .map_err(|_| format!("'{from_text}': a percent-escape that is not UTF-8"))?;
    let parts: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    let mut from = Vec::new();
    let mut splat = false;
    let mut names: Vec<String> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if *part == "*" {
            if i + 1 != parts.len() {
                return Err(format!("'{from_text}': * may only end the path (/news/*)"));
            }
            splat = true;
        } else if part.contains('*') {
            return Err(format!("'{from_text}': * must be a whole segment at the end (/news/*)"));
        } else if let Some(name) = part.strip_prefix(':') {
            if !is_name(name) || name == "splat" {
                return Err(format!("'{from_text}': bad placeholder ':{name}'"));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("'{from_text}': placeholder ':{name}' appears twice"));
            }
            names.push(name.to_string());
            from.push(Segment::Placeholder(name.to_string()));
        } else if *part == "." || *part == ".." {
            return Err(format!("'{from_text}': '.' and '..' segments never match"));
        } else {
            from.push(Segment::Literal(part.to_string()));
        }
    }

    let mut conditions = Vec::new();
    let to_text = loop {
        let Some(token) = tokens.next() else {
            return Err("no TO: a rule is FROM TO [STATUS]".into());
        };
        if token.starts_with('/') || is_external(token) {
            break token;
        }
        let Some((key, value)) = token.split_once('=') else {
            return Err(format!("'{token}': TO must be a path starting with / or an http(s):// URL"));
        };
        if key.is_empty() {
            return Err(format!("'{token}': a query condition needs a key"));
        }
        let key = percent_decode_str(key).decode_utf8_lossy().into_owned();
        if let Some(name) = value.strip_prefix(':') {
            if !is_name(name) || name == "splat" || names.iter().any(|n| n == name) {
                return Err(format!("'{token}': bad or repeated placeholder ':{name}'"));
            }
            names.push(name.to_string());
            conditions.push(Condition::Bind(key, name.to_string()));
        } else {
            conditions
                .push(Condition::Equals(key, percent_decode_str(value).decode_utf8_lossy().into_owned()));
        }
        if conditions.len() > 16 {
            return Err("more than 16 query conditions".into());
        }
    };
    let external = is_external(to_text);
    if !external && (to_text.starts_with("//") || to_text.starts_with("/\\")) {
        return Err(format!("'{to_text}': a target starting with // leaves the site; write https://host/…"));
    }
    if external && to_text.contains('\\') {
        return Err(format!("'{to_text}': a backslash in a URL"));
    }

    let (kind, force) = match tokens.next() {
        None => (Kind::Redirect(301), false),
        Some(status) => {
            let (code, force) = match status.strip_suffix('!') {
                Some(code) => (code, true),
                None => (status, false),
            };
            let kind = match code {
                "200" => Kind::Rewrite,
                "404" => Kind::NotFound,
                "301" | "302" | "303" | "307" | "308" => Kind::Redirect(code.parse().unwrap_or(301)),
                _ if status.contains('=') => {
                    return Err(format!(
                        "'{status}': conditions on country, language, role or cookie are not supported"
                    ))
                }
                _ => {
                    return Err(format!("'{status}': the status must be 200, 301, 302, 303, 307, 308 or 404"))
                }
            };
            (kind, force)
        }
    };
    if let Some(extra) = tokens.next() {
        return Err(if extra.contains('=') {
            format!("'{extra}': conditions on country, language, role or cookie are not supported")
        } else {
            format!("'{extra}': unexpected after the status")
        });
    }
    if external && !matches!(kind, Kind::Redirect(_)) {
        return Err(format!(
            "'{to_text}': a {} to another site (proxying) is not supported",
            status_of(kind)
        ));
    }

    Ok(Rule { line, from, splat, conditions, to: pieces(to_text, splat, &names), external, kind, force })
}

fn status_of(kind: Kind) -> u16 {
    match kind {
        Kind::Rewrite => 200,
        Kind::Redirect(code) => code,
        Kind::NotFound => 404,
    }
}

/// Splits a target into literal text and the placeholders the rule binds (`:splat` when
/// FROM ends with `*`); any other `:word` stays literal text (a port, say).
fn pieces(to: &str, splat: bool, names: &[String]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = to;
    while let Some(at) = rest.find(':') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        let name = &after[..len];
        let piece = if name == "splat" && splat {
            Some(Piece::Splat)
        } else if !name.is_empty() && names.iter().any(|n| n == name) {
            Some(Piece::Placeholder(name.to_string()))
        } else {
            None
        };
        match piece {
            Some(piece) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(utf8_percent_encode(&literal, LITERAL).to_string()));
                    literal.clear();
                }
                pieces.push(piece);
            }
            None => {
                literal.push(':');
                literal.push_str(name);
            }
        }
        rest = &after[len..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(utf8_percent_encode(&literal, LITERAL).to_string()));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Redirects {
        Redirects::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn go(rules: &Redirects, path: &str, query: Option<&str>) -> Option<(Kind, String)> {
        rules.find(path, query, false).map(|m| (m.kind, m.target))
    }

    #[test]
    fn netlify_basic_examples() {
        let rules = parse(
            "# Redirects from what the browser requests to what we serve\n\
             /home              /\n\
             /blog/my-post.php  /blog/my-post\n\
             /news              /blog\n\
             /cuties            https://www.petsofnetlify.com\n\
             /authors/c%C3%A9line /authors/about-c%C3%A9line\n",
        );
        assert_eq!(rules.rules().len(), 5);
        assert_eq!(go(&rules, "home", None), Some((Kind::Redirect(301), "/".into())));
        assert_eq!(go(&rules, "blog/my-post.php", None), Some((Kind::Redirect(301), "/blog/my-post".into())));
        assert_eq!(go(&rules, "news", Some("a=1")), Some((Kind::Redirect(301), "/blog?a=1".into())));
        assert_eq!(
            go(&rules, "cuties", None),
            Some((Kind::Redirect(301), "https://www.petsofnetlify.com".into()))
        );
        // FROM is matched decoded, like the file lookup; the target keeps its escapes.
        assert_eq!(
            go(&rules, "authors/céline", None),
            Some((Kind::Redirect(301), "/authors/about-c%C3%A9line".into()))
        );
        assert_eq!(go(&rules, "elsewhere", None), None);
    }

    #[test]
    fn netlify_status_examples() {
        let rules = parse(
            "/home         /              301\n\
             /my-redirect  /              302\n\
             /ecommerce    /store-closed  404\n\
             /pass-through /index.html    200\n\
             /other        /x             307\n\
             /perm         /y             308!\n",
        );
        assert_eq!(go(&rules, "my-redirect", None), Some((Kind::Redirect(302), "/".into())));
        assert_eq!(go(&rules, "ecommerce", None), Some((Kind::NotFound, "/store-closed".into())));
        assert_eq!(go(&rules, "pass-through", None), Some((Kind::Rewrite, "/index.html".into())));
        assert_eq!(go(&rules, "other", None), Some((Kind::Redirect(307), "/x".into())));
        assert!(rules.rules()[5].force);
        assert!(!rules.rules()[0].force);
    }

    #[test]
    fn splats_and_placeholders() {
        let rules = parse(
            "/news/*  /blog/:splat\n\
             /blog/:year/:month/:date/:slug  /posts/:year-:month-:date/:slug\n\
             /blog/:year/:month /posts/:year-:month\n\
             /*  /index.html  200\n",
        );
        assert_eq!(
            go(&rules, "news/2004/02/12/x", None),
            Some((Kind::Redirect(301), "/blog/2004/02/12/x".into()))
        );
        assert_eq!(go(&rules, "news", None), Some((Kind::Redirect(301), "/blog/".into())));
        assert_eq!(
            go(&rules, "blog/2004/02/12/my-story", None),
            Some((Kind::Redirect(301), "/posts/2004-02-12/my-story".into()))
        );
        assert_eq!(go(&rules, "blog/2024/05", None), Some((Kind::Redirect(301), "/posts/2024-05".into())));
        assert_eq!(go(&rules, "anything/else", None), Some((Kind::Rewrite, "/index.html".into())));
        assert_eq!(go(&rules, "", None), Some((Kind::Rewrite, "/index.html".into())));
    }

    #[test]
    fn query_conditions() {
        let rules = parse(
            "/store id=:id  /products/:id  301\n\
             /articles id=:id tag=:tag /posts/:tag/:id 301\n\
             /exact v=2 /v2 302\n",
        );
        assert_eq!(go(&rules, "store", Some("id=42")), Some((Kind::Redirect(301), "/products/42".into())));
        assert_eq!(go(&rules, "store", Some("x=1")), None);
        assert_eq!(go(&rules, "store", None), None);
        assert_eq!(
            go(&rules, "articles", Some("tag=rust&id=7&x=1")),
            Some((Kind::Redirect(301), "/posts/rust/7".into()))
        );
        assert_eq!(go(&rules, "articles", Some("id=7")), None);
        assert_eq!(go(&rules, "exact", Some("v=2")), Some((Kind::Redirect(302), "/v2".into())));
        assert_eq!(go(&rules, "exact", Some("v=3")), None);
    }

    #[test]
    fn existing_files_win_unless_forced() {
        let rules = parse("/a /b 200\n/a /c 200!\n/d /e 301\n");
        assert_eq!(rules.find("a", None, false).unwrap().target, "/b");
        assert_eq!(rules.find("a", None, true).unwrap().target, "/c");
        assert_eq!(rules.find("d", None, true), None);
    }

    #[test]
    fn placeholder_values_are_neutralised() {
        let rules = parse("/go/* /:splat 302\n/p/:x /to/:x 302\n/q x=:x https://example.com/?q=:x 302\n");
        // A splat cannot make a protocol-relative URL.
        for path in ["go//evil.com", "go/\\evil.com", "go/%5Cevil.com"] {
            let decoded = percent_decode_str(path).decode_utf8_lossy().into_owned();
            let normalized: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
            let target = go(&rules, &normalized.join("/"), None).unwrap().1;
            assert!(!target.starts_with("//") && !target.starts_with("/\\"), "{path}: {target}");
            assert!(!target.contains('\\'), "{target}");
        }
        // CR/LF (decoded from %0d%0a) come back escaped, never raw.
        let target = go(&rules, "p/a\r\nSet-Cookie: x=1", None).unwrap().1;
        assert_eq!(target, "/to/a%0D%0ASet-Cookie:%20x%3D1");
        let target = go(&rules, "p/https:", None).unwrap().1;
        assert!(target.starts_with("/to/"), "{target}");
        let target = go(&rules, "q", Some("x=%0d%0a%26admin%3D1#")).unwrap().1;
        assert_eq!(target, "https://example.com/?q=%0D%0A%26admin%3D1%23");
        assert!(target.bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, line) in [
            ("/a /b\nnope /c\n", 2),
            ("/a\n", 1),
            ("# c\n\n/a /b 418\n", 3),
            ("/a /b 301 Country=au,nz\n", 1),
            ("/admin/* 200! Role=admin\n", 1),
            ("http://blog.example.com/* https://www.example.com/blog/:splat 301\n", 1),
            ("/a //evil.com\n", 1),
            ("/a https://x.example 200\n", 1),
            ("/a/*/b /c\n", 1),
            ("/a?x=1 /c\n", 1),
            ("/a /b\0 301\n", 1),
            ("/a /b 301 extra\n", 1),
            ("/:x/:x /c\n", 1),
        ] {
            let err = Redirects::parse(text.as_bytes()).expect_err(text);
            assert_eq!(err.line, line, "{text}: {err}");
            assert!(err.to_string().starts_with(&format!("_redirects line {line}:")), "{err}");
        }
    }

    #[test]
    fn hostile_files_are_refused_without_panic() {
        assert_eq!(Redirects::parse(&vec![b'#'; MAX_BYTES + 1]).unwrap_err().line, 0);
        let long = format!("/a /{}\n", "b".repeat(MAX_LINE));
        assert_eq!(Redirects::parse(long.as_bytes()).unwrap_err().line, 1);
        let many: String = (0..10_000).map(|i| format!("/{i} /\n")).collect();
        // Bigger than 64 KiB: refused as a whole.
        assert_eq!(Redirects::parse(many.as_bytes()).unwrap_err().line, 0);
        // 10,000 short rules fit in 64 KiB: refused at the 1,001st.
        let tiny = "/a /\n".repeat(10_000);
        assert!(tiny.len() <= MAX_BYTES);
        assert_eq!(Redirects::parse(tiny.as_bytes()).unwrap_err().line, 1001);
        let many: String = (0..1001).map(|i| format!("/{i} /\n")).collect();
        assert!(many.len() <= MAX_BYTES);
        assert_eq!(Redirects::parse(many.as_bytes()).unwrap_err().line, 1001);
        assert!(Redirects::parse(&[0xff, 0xfe, b'\n']).is_err());
        assert!(Redirects::parse(b"/a\0 /b").is_err());
        // CRLF line ends and tabs are fine.
        let rules = parse("/a\t/b\r\n/c /d 302\r\n");
        assert_eq!(rules.rules().len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            if let Ok(rules) = Redirects::parse(&bytes) {
                let _ = rules.find("a/b/c", Some("id=1&x=%0d"), false);
            }
        }

        #[test]
        fn never_panics_on_rule_like_text(
            text in "([/:*a-z0-9=!?#%. \t]{0,40}\n){0,20}",
            path in "[a-z0-9/:%.]{0,30}",
            query in proptest::option::of("[a-z0-9=&%:]{0,20}"),
        ) {
            if let Ok(rules) = Redirects::parse(text.as_bytes()) {
                if let Some(m) = rules.find(&path, query.as_deref(), false) {
                    proptest::prop_assert!(m.target.bytes().all(|b| b.is_ascii_graphic()));
                    proptest::prop_assert!(!m.target.starts_with("//"));
                }
            }
        }
    }
}
