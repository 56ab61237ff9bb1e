//! `/api/apps`: list, inspect and delete apps, and read their files.

use crate::apps::{self, AppSummary};
use crate::kernel::Kernel;
use crate::net::cache::SiteCache;
use crate::net::response::{ok, ApiError, Body, Resp};
use crate::net::Web;
use crate::storage::Storage;
use crate::syscall::{self, Caller};
use crate::time::rfc3339;
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use std::sync::Arc;

/// The JSON form of an app.
pub fn app_json(kernel: &Kernel, app: &AppSummary) -> serde_json::Value {
    serde_json::json!({
        "id": app.id,
        "name": app.name,
        "url": kernel.app_url(&app.name),
        "system": app.system,
        "size_bytes": app.size_bytes,
        "file_count": app.file_count,
        "deployed_at": app.deployed_at.map(rfc3339),
        "deployments": app.deployments,
    })
}

/// A live app by id or name (percent-decoded) that the caller may touch.
pub(super) async fn find(storage: &Arc<Storage>, caller: &Caller, id: &str) -> Result<AppSummary, ApiError> {
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    Ok(syscall::apps::find(storage, caller, &key).await?)
}

/// `GET /api/apps`.
pub async fn list(kernel: &Kernel, caller: &Caller) -> Result<Resp, ApiError> {
    let list = syscall::apps::list(&kernel.storage, caller).await?;
    let apps: Vec<_> = list.iter().map(|a| app_json(kernel, a)).collect();
    Ok(ok(serde_json::json!({ "apps": apps })))
}

/// `GET /api/apps/{id}`: the app and its files.
pub async fn get(kernel: &Kernel, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let (app, files) = syscall::apps::show(&kernel.storage, caller, &key).await?;
    let mut json = app_json(kernel, &app);
    json["files"] = files_json(&files);
    Ok(ok(json))
}

fn files_json(files: &[apps::FileSummary]) -> serde_json::Value {
    files
        .iter()
        .map(|f| serde_json::json!({"path": f.path, "size": f.size, "hash": f.hash, "content_type": f.content_type}))
        .collect()
}

/// `GET /api/apps/{id}/files`.
pub async fn files(storage: &Arc<Storage>, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let files = syscall::files::list(storage, caller, &key, None).await?;
    Ok(ok(serde_json::json!({ "files": files_json(&files) })))
}

/// `GET /api/apps/{id}/files/{path}`: the raw content of one file of that app.
pub async fn file_content(
    storage: &Arc<Storage>,
    caller: &Caller,
    id: &str,
    raw_path: &str,
) -> Result<Resp, ApiError> {
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let (data, content_type) = syscall::files::read(storage, caller, &key, raw_path).await?;
    let mut resp = Response::new(Body::new(Bytes::from(data)));
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    // Shown on the admin origin: never let it run as a page there.
    resp.headers_mut().insert("content-security-policy", HeaderValue::from_static("sandbox"));
    resp.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(resp)
}

/// `DELETE /api/apps/{id}`.
pub async fn delete(kernel: &Kernel, sites: &SiteCache, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let app = syscall::apps::delete(&kernel.storage, &kernel.clock, &kernel.events, caller, &key).await?;
    sites.invalidate(&app.name);
    Ok(ok(serde_json::json!({})))
}

/// The body of `POST /api/apps/{id}/rename`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

/// `POST /api/apps/{id}/rename` with `{"name": "NEW"}`: the app answers under the new
/// name at once, and the old one is free (404) at once.
pub async fn rename(
    web: &Web,
    caller: &Caller,
    id: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<Resp, ApiError> {
    let body: RenameBody = super::read_json(&web.http, req).await?;
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let kernel = &web.kernel;
    let renamed =
        syscall::apps::rename(&kernel.storage, &kernel.clock, &kernel.events, caller, &key, &body.name)
            .await?;
    if renamed.changed {
        web.sites.invalidate(&renamed.old_name);
        web.sites.invalidate(&renamed.new_name);
        // Instances are kept by app id and carry the name (`fazt.app.name`): build anew.
        kernel.runtime.config_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        web.tls.want(&format!("{}.{}", renamed.new_name, kernel.config.domain()));
    }
    get(kernel, caller, &renamed.id).await
}
