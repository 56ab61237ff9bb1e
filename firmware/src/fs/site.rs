//! A deployed site as the server sees it: an immutable file table for one deployment.

use crate::rules::cache::CacheClass;
use crate::storage::StorageError;
use crate::time::UnixMillis;
use http::HeaderValue;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::Arc;

/// A content encoding of a stored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The file as deployed.
    Identity,
    /// The gzip variant.
    Gzip,
    /// The brotli variant.
    Brotli,
}

impl Encoding {
    /// The Content-Encoding token, `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    fn column(self) -> &'static str {
        match self {
            Encoding::Identity => "data",
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "brotli",
        }
    }
}

/// One file of a site.
///
/// The response headers that never change for a deployed file are built once, when the
/// site is loaded, so that serving a hot file allocates almost nothing.
#[derive(Debug, Clone)]
pub struct SiteFile {
    /// Content hash (the key of its blob).
    pub hash: String,
    /// Size as deployed.
    pub size: u64,
    /// Content-Type header value.
    pub content_type: HeaderValue,
    /// Size of the gzip variant, when there is one.
    pub gzip_size: Option<u64>,
    /// Size of the brotli variant, when there is one.
    pub brotli_size: Option<u64>,
    /// Strong ETags of the identity, gzip and brotli representations.
    pub etags: [HeaderValue; 3],
    /// How long browsers may keep it (`net` makes the Cache-Control of a 200 from it).
    pub cache: CacheClass,
}

impl SiteFile {
    /// The size of one representation, when it exists.
    pub fn encoded_size(&self, encoding: Encoding) -> Option<u64> {
        match encoding {
            Encoding::Identity => Some(self.size),
            Encoding::Gzip => self.gzip_size,
            Encoding::Brotli => self.brotli_size,
        }
    }

    /// The ETag of one representation.
    pub fn etag(&self, encoding: Encoding) -> &HeaderValue {
        match encoding {
            Encoding::Identity => &self.etags[0],
            Encoding::Gzip => &self.etags[1],
            Encoding::Brotli => &self.etags[2],
        }
    }
}

fn header(value: &str) -> HeaderValue {
    // Every value here is ASCII we built (hex, a MIME type, a date); fall back to an empty
    // value rather than fail a whole site on an impossible case.
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The current deployment of an app.
#[derive(Debug)]
pub struct Site {
    /// The app's stable id.
    pub app_id: String,
    /// The app's name (its subdomain).
    pub app_name: String,
    /// True for the embedded system apps.
    pub system: bool,
    /// The deployment these files belong to.
    pub deployment_id: String,
    /// When it was deployed.
    pub deployed_at: UnixMillis,
    /// `deployed_at` as a Last-Modified header value.
    pub last_modified: HeaderValue,
    /// Files by site path.
    pub files: HashMap<String, Arc<SiteFile>>,
    /// The rules of the site's `_redirects` file, parsed once per load; `None` when it has
    /// none (or none that parses: deploys refuse those, so only an older deployment can).
    pub redirects: Option<super::redirects::Redirects>,
    /// The root `main.js` is a v0.7 backend (see [`legacy_backend`]), not a file to serve.
    pub legacy_backend: bool,
}

/// Top-level pages read to decide whether `main.js` is a browser bundle, and the
/// largest one read: a bundle's page is small, and this bounds what a site load reads.
const MAX_PAGES_READ: usize = 16;
const MAX_PAGE_BYTES: u64 = 1 << 20;

/// True when the site's root `main.js` is a v0.7 backend: there is no `api/main.js`
/// (the v0.10 entry wins) and no top-level page loads `main.js` as a script. A page
/// that loads it (`<script src="main.js">`, Angular's and Elm's output) makes it a
/// browser bundle, served like any file; a v0.7 backend is never loaded by a page, as it
/// needs the `req` and `res` only the runtime gives it.
fn legacy_backend(conn: &Connection, files: &HashMap<String, Arc<SiteFile>>) -> Result<bool, StorageError> {
    if !files.contains_key("main.js") || files.contains_key("api/main.js") {
        return Ok(false);
    }
    let mut pages: Vec<(&String, &Arc<SiteFile>)> = files
        .iter()
        .filter(|(path, file)| {
            !path.contains('/')
                && (path.ends_with(".html") || path.ends_with(".htm"))
                && file.size <= MAX_PAGE_BYTES
        })
        .collect();
    // index.html first: the page a bundle most often hangs from.
    pages.sort_by_key(|(path, _)| (path.as_str() != "index.html", path.as_str()));
    for (_, file) in pages.into_iter().take(MAX_PAGES_READ) {
        if let Some(html) = read_blob(conn, &file.hash, Encoding::Identity)? {
            if loads_main_js(&String::from_utf8_lossy(&html)) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// True when an HTML text refers to the site's root `main.js` as a URL: `main.js`,
/// `./main.js` or `/main.js` right after a quote or `=`, and followed by a quote, a
/// space, `>`, `?` or `#` (not `js/main.js`, not `main.json`, not prose).
pub fn loads_main_js(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    lower.match_indices("main.js").any(|(at, _)| {
        let after = lower[at + "main.js".len()..].chars().next();
        if !matches!(after, None | Some('"' | '\'' | '>' | '?' | '#') | Some(' ' | '\t' | '\n' | '\r')) {
            return false;
        }
        let before = &lower[..at];
        let before = before.strip_suffix("./").or_else(|| before.strip_suffix('/')).unwrap_or(before);
        matches!(before.chars().last(), Some('"' | '\'' | '='))
    })
}

/// Loads the current deployment of the live app named `app_name`, if any.
pub fn load_site(conn: &Connection, app_name: &str) -> Result<Option<Site>, StorageError> {
    let head: Option<(String, bool, String, UnixMillis)> = conn
        .prepare_cached(
            "SELECT a.id, a.system, d.id, d.created_at FROM apps a
             JOIN deployments d ON d.id = a.current_deployment_id
             WHERE a.name = ?1 AND a.deleted_at IS NULL",
        )?
        .query_row([app_name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((app_id, system, deployment_id, deployed_at)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT f.path, f.hash, f.size, f.content_type, length(b.gzip), length(b.brotli)
         FROM files f JOIN blobs b ON b.hash = f.hash WHERE f.deployment_id = ?1",
    )?;
    let files = stmt
        .query_map([&deployment_id], |r| {
            let path: String = r.get(0)?;
            let hash: String = r.get(1)?;
            let tag = &hash[..hash.len().min(20)];
            let file = SiteFile {
                size: r.get::<_, i64>(2)? as u64,
                content_type: header(&r.get::<_, String>(3)?),
                gzip_size: r.get::<_, Option<i64>>(4)?.map(|n| n as u64),
                brotli_size: r.get::<_, Option<i64>>(5)?.map(|n| n as u64),
                etags: [
                    header(&format!("\"{tag}\"")),
                    header(&format!("\"{tag}-gz\"")),
                    header(&format!("\"{tag}-br\"")),
                ],
                cache: CacheClass::of(&path),
                hash,
            };
            Ok((path, Arc::new(file)))
        })?
        .collect::<Result<HashMap<_, _>, _>>()?;
    let last_modified = header(&httpdate::fmt_http_date(crate::time::to_system_time(deployed_at)));
    let legacy_backend = legacy_backend(conn, &files)?;
    let redirects = load_redirects(conn, app_name, &files)?;
    Ok(Some(Site {
        app_id,
        app_name: app_name.into(),
        system,
        deployment_id,
        deployed_at,
        last_modified,
        files,
        redirects,
        legacy_backend,
    }))
}

/// The parsed `_redirects` of a site, if it has one with rules.
fn load_redirects(
    conn: &Connection,
    app_name: &str,
    files: &HashMap<String, Arc<SiteFile>>,
) -> Result<Option<super::redirects::Redirects>, StorageError> {
    use super::redirects::{Redirects, FILE_NAME, MAX_BYTES};
    let Some(file) = files.get(FILE_NAME) else { return Ok(None) };
    if file.size > MAX_BYTES as u64 {
        tracing::warn!(app = %app_name, "_redirects is too large; its rules are ignored");
        return Ok(None);
    }
    let Some(data) = read_blob(conn, &file.hash, Encoding::Identity)? else { return Ok(None) };
    match Redirects::parse(&data) {
        Ok(rules) if rules.rules().is_empty() => Ok(None),
        Ok(rules) => Ok(Some(rules)),
        Err(err) => {
            tracing::warn!(app = %app_name, error = %err, "_redirects does not parse; its rules are ignored");
            Ok(None)
        }
    }
}

/// Reads one encoding of a blob.
pub fn read_blob(conn: &Connection, hash: &str, encoding: Encoding) -> Result<Option<Vec<u8>>, StorageError> {
    let sql = format!("SELECT {} FROM blobs WHERE hash = ?1", encoding.column());
    Ok(conn.prepare_cached(&sql)?.query_row([hash], |r| r.get::<_, Option<Vec<u8>>>(0)).optional()?.flatten())
}

/// Reads `len` bytes from `offset` of one representation of a blob, without reading the
/// rest (SQLite's incremental blob I/O): large files are served piece by piece. `None`
/// when the blob or the representation is gone, or is shorter than asked.
pub fn read_blob_range(
    conn: &Connection,
    hash: &str,
    encoding: Encoding,
    offset: u64,
    len: usize,
) -> Result<Option<Vec<u8>>, StorageError> {
    // Only the rowid: any test of the column itself (even `IS NOT NULL`) makes SQLite
    // read the whole value, which is what this function exists to avoid.
    let rowid: Option<i64> = conn
        .prepare_cached("SELECT rowid FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?;
    let Some(rowid) = rowid else { return Ok(None) };
    // A representation that is NULL (no gzip variant) cannot be opened: none to read.
    let Ok(blob) = conn.blob_open(rusqlite::DatabaseName::Main, "blobs", encoding.column(), rowid, true)
    else {
        return Ok(None);
    };
    let (Ok(start), true) = (usize::try_from(offset), offset.saturating_add(len as u64) <= blob.len() as u64)
    else {
        return Ok(None);
    };
    let mut buf = vec![0u8; len];
    blob.read_at_exact(&mut buf, start)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::loads_main_js;

    #[test]
    fn a_page_that_loads_main_js_makes_it_a_bundle() {
        for yes in [
            r#"<script src="main.js"></script>"#,
            r#"<script type="module" src="/main.js?v=3" defer></script>"#,
            "<script src='./main.js'></script>",
            "<script src=main.js></script>",
            r#"<link rel="modulepreload" href="/MAIN.JS">"#,
            "<script type=module>import './main.js'</script>",
        ] {
            assert!(loads_main_js(yes), "{yes}");
        }
        for no in [
            r#"<script src="js/main.js"></script>"#,
            r#"<script src="https://cdn.example/main.js"></script>"#,
            r#"<a href="/main.json">data</a>"#,
            "<p>the backend is in main.js</p>",
            "<p>see main.js.</p>",
            "<p>the backend is main.js here</p>",
            "",
        ] {
            assert!(!loads_main_js(no), "{no}");
        }
    }
}
