//! A deployed site as the server sees it: an immutable file table for one deployment.

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
    /// Cache-Control for a 200 of this file.
    pub cache_control: HeaderValue,
}

impl SiteFile {
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
                cache_control: HeaderValue::from_static(crate::net::static_files::cache_control(&path)),
                hash,
            };
            Ok((path, Arc::new(file)))
        })?
        .collect::<Result<HashMap<_, _>, _>>()?;
    let last_modified = header(&httpdate::fmt_http_date(crate::time::to_system_time(deployed_at)));
    Ok(Some(Site {
        app_id,
        app_name: app_name.into(),
        system,
        deployment_id,
        deployed_at,
        last_modified,
        files,
    }))
}

/// Reads one encoding of a blob.
pub fn read_blob(conn: &Connection, hash: &str, encoding: Encoding) -> Result<Option<Vec<u8>>, StorageError> {
    let sql = format!("SELECT {} FROM blobs WHERE hash = ?1", encoding.column());
    Ok(conn.prepare_cached(&sql)?.query_row([hash], |r| r.get::<_, Option<Vec<u8>>>(0)).optional()?.flatten())
}
