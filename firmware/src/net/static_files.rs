//! Serving a site's files as a real web server does: index files and clean URLs,
//! validators (ETag, Last-Modified) and 304s, byte ranges (206/416), HEAD, precompressed
//! gzip/brotli by Accept-Encoding, cache and security headers.

use super::cache::BlobCache;
use super::response::{Body, Resp};
use super::Web;
use crate::fs::path::request_to_site_path;
use crate::fs::redirects::{Kind, Redirects, FILE_NAME as REDIRECTS_FILE};
use crate::fs::site::{Encoding, Site, SiteFile};
use crate::rules::cache::CacheClass;
use crate::storage::Storage;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::sync::Arc;
use std::time::SystemTime;

/// What a request path names inside a site.
#[derive(Debug)]
pub enum Resolved {
    /// A file (site path and its entry).
    File(String, Arc<SiteFile>),
    /// A folder requested without its trailing slash: redirect there.
    AddSlash,
    /// Nothing.
    NotFound,
}

/// Finds the file for a request path: exact name, `index.html` in folders, and clean URLs
/// (`/about` serves `about.html`).
pub fn resolve(site: &Site, uri_path: &str) -> Resolved {
    let Some(path) = request_to_site_path(uri_path) else {
        return Resolved::NotFound;
    };
    // An app's backend code is never served as a file: that would publish its source
    // (and any secrets in it).
    let backend = crate::runtime::Entry::of(site);
    let hidden = |p: &str| match backend {
        Some(crate::runtime::Entry::Api) => p.starts_with("api/"),
        Some(crate::runtime::Entry::Legacy) => p == "main.js",
        None => false,
    };
    let lookup = |p: &str| {
        // The rules file is configuration, not content (as on Netlify).
        if hidden(p) || p == REDIRECTS_FILE {
            return None;
        }
        site.files.get(p).map(|f| Resolved::File(p.to_string(), f.clone()))
    };
    if path.is_empty() || uri_path.ends_with('/') {
        let index = if path.is_empty() { "index.html".to_string() } else { format!("{path}/index.html") };
        return lookup(&index).unwrap_or(Resolved::NotFound);
    }
    if let Some(found) = lookup(&path) {
        return found;
    }
    if let Some(found) = lookup(&format!("{path}.html")) {
        return found;
    }
    if site.files.contains_key(&format!("{path}/index.html")) {
        return Resolved::AddSlash;
    }
    Resolved::NotFound
}

/// Serves `site` for a GET/HEAD request; `not_found` supplies the 404 site.
pub async fn serve(
    web: &Web,
    site: &Site,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    admin: bool,
) -> Resp {
    let resolved = resolve(site, uri.path());
    if let Some(rules) = &site.redirects {
        let exists = !matches!(resolved, Resolved::NotFound);
        if let Some(resp) = redirect(web, site, rules, exists, method, uri, headers, admin).await {
            return resp;
        }
    }
    match resolved {
        Resolved::File(_, file) => serve_file(web, site, &file, StatusCode::OK, method, headers, admin).await,
        Resolved::AddSlash => {
            let location = match uri.query() {
                Some(q) => format!("{}/?{q}", uri.path()),
                None => format!("{}/", uri.path()),
            };
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&location) {
                headers.insert(header::LOCATION, v);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            security_headers(&mut headers, admin);
            with_headers(StatusCode::MOVED_PERMANENTLY, headers, Bytes::new())
        }
        Resolved::NotFound => not_found(web, Some(site), method, headers, admin).await,
    }
}

/// Applies the site's `_redirects` rules to a request: the first rule that matches (only
/// forced ones when a file `exists` at the path) answers; `None` when none does. A
/// rewrite (200) or a 404 rule serves its target's file in one step: the target is not
/// matched against the rules again.
#[allow(clippy::too_many_arguments)]
async fn redirect(
    web: &Web,
    site: &Site,
    rules: &Redirects,
    exists: bool,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    admin: bool,
) -> Option<Resp> {
    let path = request_to_site_path(uri.path())?;
    let matched = rules.find(&path, uri.query(), exists)?;
    let status = match matched.kind {
        Kind::Redirect(code) => {
            let mut out = HeaderMap::new();
            // The target was built from the owner's text and percent-encoded values, so it
            // is always a valid header; refuse to answer with a broken one all the same.
            let location = HeaderValue::from_str(&matched.target).ok()?;
            out.insert(header::LOCATION, location);
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            security_headers(&mut out, admin);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            return Some(with_headers(status, out, Bytes::new()));
        }
        Kind::Rewrite => StatusCode::OK,
        Kind::NotFound => StatusCode::NOT_FOUND,
    };
    let file = match resolve(site, &matched.target) {
        Resolved::File(_, file) => Some(file),
        Resolved::AddSlash => match resolve(site, &format!("{}/", matched.target)) {
            Resolved::File(_, file) => Some(file),
            _ => None,
        },
        Resolved::NotFound => None,
    };
    Some(match file {
        Some(file) => serve_file(web, site, &file, status, method, headers, admin).await,
        None => not_found(web, Some(site), method, headers, admin).await,
    })
}

/// The 404 response: the site's own `404.html` if it has one, else the system 404 app.
pub async fn not_found(
    web: &Web,
    site: Option<&Site>,
    method: &Method,
    headers: &HeaderMap,
    admin: bool,
) -> Resp {
    if let Some(site) = site {
        if let Some(file) = site.files.get("404.html") {
            return serve_file(web, site, file, StatusCode::NOT_FOUND, method, headers, admin).await;
        }
    }
    if let Ok(Some(system)) = super::server::load_site(&web.sites, &web.kernel.storage, "404").await {
        if let Some(file) = system.files.get("index.html") {
            return serve_file(web, &system, file, StatusCode::NOT_FOUND, method, headers, admin).await;
        }
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// A small text/plain response.
pub fn plain(status: StatusCode, text: &'static str) -> Resp {
    let mut resp = Response::new(Body::new(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Reads a body through the blob cache.
async fn body(blobs: &BlobCache, storage: &Arc<Storage>, hash: &str, encoding: Encoding) -> Option<Bytes> {
    if let Some(body) = blobs.get(hash, encoding) {
        return Some(body);
    }
    let owned = hash.to_string();
    let data = storage
        .read(move |conn| crate::fs::site::read_blob(conn, &owned, encoding))
        .await
        .map_err(|e| tracing::error!(error = %e, "reading a blob failed"))
        .ok()??;
    let data = Bytes::from(data);
    blobs.insert(hash, encoding, data.clone());
    Some(data)
}

#[allow(clippy::too_many_arguments)]
async fn serve_file(
    web: &Web,
    site: &Site,
    file: &SiteFile,
    status: StatusCode,
    method: &Method,
    req: &HeaderMap,
    admin: bool,
) -> Resp {
    let last_modified = crate::time::to_system_time(site.deployed_at);
    let range = if status == StatusCode::OK && *method == Method::GET {
        range_request(req, file.etag(Encoding::Identity), last_modified)
    } else {
        None
    };
    let encoding = if range.is_some() { Encoding::Identity } else { negotiate(req, file) };
    let etag = file.etag(encoding);

    let mut headers = HeaderMap::with_capacity(14);
    headers.insert(header::CONTENT_TYPE, file.content_type.clone());
    if status == StatusCode::OK {
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::LAST_MODIFIED, site.last_modified.clone());
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(header::CACHE_CONTROL, cache_control(file.cache));
    } else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if file.gzip_size.is_some() || file.brotli_size.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    security_headers(&mut headers, admin);

    if status == StatusCode::OK && not_modified(req, etag, last_modified) {
        return with_headers(StatusCode::NOT_MODIFIED, headers, Bytes::new());
    }
    if let Some(enc) = encoding.token() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    // A file too large for the cache is streamed from the database piece by piece: a
    // hundred clients downloading a 1 GB file cost a hundred pieces, not 100 GB. (Such a
    // body is never in the cache: it only keeps bodies up to that size.)
    let encoded = file.encoded_size(encoding).unwrap_or(file.size);
    if encoded > web.blobs.max_entry_bytes() {
        let Some((status, start, len)) = apply_range(range, encoded, status, &mut headers) else {
            return with_headers(StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new());
        };
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        let body = if *method == Method::HEAD {
            Body::new(Bytes::new())
        } else {
            Body::stream(stream_blob(web.kernel.storage.clone(), file.hash.clone(), encoding, start, len))
        };
        let mut resp: Response<Body> = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        return resp;
    }
    let Some(data) = body(&web.blobs, &web.kernel.storage, &file.hash, encoding).await else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "file content missing\n");
    };
    let Some((status, start, len)) = apply_range(range, data.len() as u64, status, &mut headers) else {
        return with_headers(StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new());
    };
    let data = data.slice(start as usize..(start + len) as usize);
    if *method == Method::HEAD {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
        return with_headers(status, headers, Bytes::new());
    }
    with_headers(status, headers, data)
}

/// Applies a range request to a body of `total` bytes: the status, first byte and length
/// to send (with `Content-Range` set for a part); `None` for a range outside the body,
/// with the headers of its `416` set.
fn apply_range(
    range: Option<RangeSpec>,
    total: u64,
    status: StatusCode,
    headers: &mut HeaderMap,
) -> Option<(StatusCode, u64, u64)> {
    let content_range =
        |value: String| HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
    match range.map(|spec| spec.resolve(total)) {
        Some(Some((start, end))) => {
            headers.insert(header::CONTENT_RANGE, content_range(format!("bytes {start}-{end}/{total}")));
            Some((StatusCode::PARTIAL_CONTENT, start, end - start + 1))
        }
        Some(None) => {
            headers.remove(header::CONTENT_TYPE);
            headers.insert(header::CONTENT_RANGE, content_range(format!("bytes */{total}")));
            None
        }
        None => Some((status, 0, total)),
    }
}

/// Bytes of a streamed file read per step: what one download holds in memory.
const STREAM_CHUNK: u64 = 256 * 1024;

/// `len` bytes of a blob from `start`, read from the database one chunk at a time as the
/// client takes them. Each chunk is its own short read, so a slow client holds no
/// database connection; the blob is found by its content hash each time, so a redeploy
/// meanwhile either leaves it (same hash, same bytes) or ends the stream early, and the
/// client sees a short body, never other bytes.
fn stream_blob(
    storage: Arc<crate::storage::Storage>,
    hash: String,
    encoding: Encoding,
    start: u64,
    len: u64,
) -> impl futures_lite::Stream<Item = Bytes> + Send + 'static {
    futures_lite::stream::unfold((start, start + len), move |(at, end)| {
        let (storage, hash) = (storage.clone(), hash.clone());
        async move {
            if at >= end {
                return None;
            }
            let n = (end - at).min(STREAM_CHUNK) as usize;
            let chunk = storage
                .read(move |conn| crate::fs::site::read_blob_range(conn, &hash, encoding, at, n))
                .await
                .map_err(|e| tracing::warn!(error = %e, "streaming a file failed"))
                .ok()??;
            Some((Bytes::from(chunk), (at + n as u64, end)))
        }
    })
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Bytes) -> Resp {
    let mut resp: Response<Body> = Response::new(Body::new(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// The Cache-Control header of a 200 of a file of `class`. The values are constants:
/// making one copies three words, like cloning a pre-built header, and allocates nothing.
fn cache_control(class: CacheClass) -> HeaderValue {
    const REVALIDATE: HeaderValue = HeaderValue::from_static(CacheClass::Revalidate.directive());
    const IMMUTABLE: HeaderValue = HeaderValue::from_static(CacheClass::Immutable.directive());
    const SHORT: HeaderValue = HeaderValue::from_static(CacheClass::Short.directive());
    match class {
        CacheClass::Revalidate => REVALIDATE,
        CacheClass::Immutable => IMMUTABLE,
        CacheClass::Short => SHORT,
    }
}

fn security_headers(headers: &mut HeaderMap, admin: bool) {
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("strict-origin-when-cross-origin"));
    if admin {
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
        );
    } else {
        headers.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    }
}

/// Picks the best stored variant the client accepts (brotli, then gzip, then identity).
fn negotiate(req: &HeaderMap, file: &SiteFile) -> Encoding {
    let Some(accept) = req.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return Encoding::Identity;
    };
    let accepts = |token: &str| {
        accept.split(',').any(|part| {
            let mut fields = part.split(';');
            let name = fields.next().unwrap_or("").trim();
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            name.eq_ignore_ascii_case(token) && q > 0.0
        })
    };
    if file.brotli_size.is_some() && accepts("br") {
        Encoding::Brotli
    } else if file.gzip_size.is_some() && accepts("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// True when the client's cached copy is current (If-None-Match, else If-Modified-Since).
fn not_modified(req: &HeaderMap, etag: &HeaderValue, last_modified: SystemTime) -> bool {
    let etag = etag.as_bytes();
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/").as_bytes() == etag
        });
    }
    if let Some(ims) = req.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()) {
        if let Ok(since) = httpdate::parse_http_date(ims) {
            // HTTP dates have whole seconds; compare at that precision.
            let lm =
                httpdate::parse_http_date(&httpdate::fmt_http_date(last_modified)).unwrap_or(last_modified);
            return lm <= since;
        }
    }
    false
}

/// A parsed single byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` or `bytes=a-`.
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The inclusive byte span within `total`, or `None` when unsatisfiable.
    pub fn resolve(self, total: u64) -> Option<(u64, u64)> {
        match self {
            RangeSpec::From(start, end) if start < total => {
                Some((start, end.unwrap_or(u64::MAX).min(total - 1)))
            }
            RangeSpec::From(..) => None,
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(n) if total > 0 => Some((total.saturating_sub(n), total - 1)),
            RangeSpec::Suffix(_) => None,
        }
    }
}

/// Parses `Range: bytes=…`; `None` for absent, malformed or multi-range headers (those
/// get the whole file, which RFC 9110 allows).
pub fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.trim().split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().map(RangeSpec::Suffix);
    }
    let start: u64 = a.parse().ok()?;
    if b.is_empty() {
        return Some(RangeSpec::From(start, None));
    }
    let end: u64 = b.parse().ok()?;
    (end >= start).then_some(RangeSpec::From(start, Some(end)))
}

/// The range a GET asks for, when it applies to the current version (If-Range).
fn range_request(req: &HeaderMap, etag: &HeaderValue, last_modified: SystemTime) -> Option<RangeSpec> {
    let spec = parse_range(req.get(header::RANGE)?.to_str().ok()?)?;
    // If-Range: only honour the range when the client's copy is this version.
    if let Some(if_range) = req.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let current = if_range.trim().as_bytes() == etag.as_bytes()
            || httpdate::parse_http_date(if_range)
                .is_ok_and(|d| d >= last_modified - std::time::Duration::from_secs(1));
        if !current {
            return None;
        }
    }
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9"), Some(RangeSpec::From(0, Some(9))));
        assert_eq!(parse_range("bytes=5-"), Some(RangeSpec::From(5, None)));
        assert_eq!(parse_range("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(parse_range("bytes=9-1"), None);
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=abc"), None);
        assert_eq!(parse_range("bytes=99999999999999999999-"), None);
    }

    #[test]
    fn resolves_ranges_against_length() {
        assert_eq!(RangeSpec::From(0, Some(9)).resolve(5), Some((0, 4)));
        assert_eq!(RangeSpec::From(5, None).resolve(5), None);
        assert_eq!(RangeSpec::Suffix(3).resolve(10), Some((7, 9)));
        assert_eq!(RangeSpec::Suffix(30).resolve(10), Some((0, 9)));
        assert_eq!(RangeSpec::Suffix(0).resolve(10), None);
        assert_eq!(RangeSpec::From(0, None).resolve(0), None);
    }

    #[test]
    fn cache_control_headers_match_the_class() {
        for class in [CacheClass::Revalidate, CacheClass::Immutable, CacheClass::Short] {
            assert_eq!(cache_control(class), class.directive());
        }
    }
}
