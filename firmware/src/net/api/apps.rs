//! `/api/apps`: list, inspect and delete apps, and read their files.

use crate::apps::{self, AppSummary};
use crate::kernel::Kernel;
use crate::net::response::{ok, ApiError, Body, Resp};
use crate::time::rfc3339;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
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

/// A live app by id or name (percent-decoded), or a 404.
pub(super) async fn find(kernel: &Arc<Kernel>, id: &str) -> Result<AppSummary, ApiError> {
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    kernel
        .storage
        .read(move |conn| apps::find(conn, &key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no app '{id}'")))
}

/// `GET /api/apps`.
pub async fn list(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let list = kernel.storage.read(apps::list).await?;
    let apps: Vec<_> = list.iter().map(|a| app_json(kernel, a)).collect();
    Ok(ok(serde_json::json!({ "apps": apps })))
}

/// `GET /api/apps/{id}`: the app and its files.
pub async fn get(kernel: &Arc<Kernel>, id: &str) -> Result<Resp, ApiError> {
    let app = find(kernel, id).await?;
    let app_id = app.id.clone();
    let files = kernel.storage.read(move |conn| apps::files(conn, &app_id)).await?;
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
pub async fn files(kernel: &Arc<Kernel>, id: &str) -> Result<Resp, ApiError> {
    let app = find(kernel, id).await?;
    let files = kernel.storage.read(move |conn| apps::files(conn, &app.id)).await?;
    Ok(ok(serde_json::json!({ "files": files_json(&files) })))
}

/// `GET /api/apps/{id}/files/{path}`: the raw content of one file of that app.
pub async fn file_content(kernel: &Arc<Kernel>, id: &str, raw_path: &str) -> Result<Resp, ApiError> {
    let app = find(kernel, id).await?;
    let path = crate::fs::path::request_to_site_path(raw_path)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("bad_path", "invalid file path"))?;
    let found = kernel
        .storage
        .read(move |conn| -> Result<_, ApiError> {
            let file = apps::files(conn, &app.id)?.into_iter().find(|f| f.path == path);
            match file {
                Some(f) => Ok(Some((
                    crate::fs::site::read_blob(conn, &f.hash, crate::fs::site::Encoding::Identity)?,
                    f.content_type,
                ))),
                None => Ok(None),
            }
        })
        .await?;
    let Some((Some(data), content_type)) = found else {
        return Err(ApiError::not_found(format!("no such file in app '{id}'")));
    };
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
pub async fn delete(kernel: &Arc<Kernel>, id: &str) -> Result<Resp, ApiError> {
    let app = find(kernel, id).await?;
    if app.system {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "system_app",
            format!("'{}' is a system app and cannot be deleted", app.name),
        ));
    }
    let now = kernel.clock.now_millis();
    let app_id = app.id.clone();
    kernel.storage.write(move |conn| apps::delete(conn, &app_id, now)).await?;
    kernel.sites.invalidate(&app.name);
    tracing::info!(app = %app.name, id = %app.id, "app deleted");
    kernel.events.notify(crate::events::Kind::AppDeleted, Some((&app.id, &app.name)), serde_json::json!({}));
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
    kernel: &Arc<Kernel>,
    id: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<Resp, ApiError> {
    let body: RenameBody = super::read_json(kernel, req).await?;
    let key = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    let now = kernel.clock.now_millis();
    let renamed =
        kernel.storage.write(move |conn| apps::rename(conn, &key, &body.name, now)).await.map_err(|err| {
            match err {
                apps::RenameError::Storage(storage) => storage.into(),
                apps::RenameError::NotFound(_) => ApiError::not_found(format!("no app '{id}'")),
                apps::RenameError::Taken(_) => {
                    ApiError::new(StatusCode::CONFLICT, err.code(), err.to_string())
                }
                apps::RenameError::System(_) => {
                    ApiError::new(StatusCode::FORBIDDEN, err.code(), err.to_string())
                }
                apps::RenameError::BadName(_) => ApiError::bad_request(err.code(), err.to_string()),
            }
        })?;
    if renamed.changed {
        kernel.sites.invalidate(&renamed.old_name);
        kernel.sites.invalidate(&renamed.new_name);
        // Instances are kept by app id and carry the name (`fazt.app.name`): build anew.
        kernel.runtime.config_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        kernel.tls.want(&format!("{}.{}", renamed.new_name, kernel.config.domain()));
        tracing::info!(id = %renamed.id, old = %renamed.old_name, new = %renamed.new_name, "app renamed");
        kernel.events.notify(
            crate::events::Kind::AppRenamed,
            Some((&renamed.id, &renamed.new_name)),
            serde_json::json!({"id": renamed.id, "old": renamed.old_name, "new": renamed.new_name}),
        );
    }
    get(kernel, &renamed.id).await
}
