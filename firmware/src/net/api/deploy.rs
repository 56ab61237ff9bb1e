//! `/api/deploy`: publishing a site.
//!
//! The CLI first asks `POST /api/deploy/check` which content hashes the node lacks, then
//! uploads a tar.gz holding a manifest of the whole site and only those files. Plain
//! `curl --data-binary @site.tar.gz` works too (no manifest: the archive is the site).
//!
//! The upload is spooled to a temporary file beside `data.db` first, so a slow client
//! never holds the database writer; the archive is then checked and stored in one
//! transaction.

use super::read_json;
use crate::config::Setting;
use crate::fs::archive::Limits;
use crate::kernel::Kernel;
use crate::net::limits::HttpGuard;
use crate::net::response::{ok, ApiError, Resp};
use crate::net::Web;
use crate::syscall::{self, Caller};
use futures_lite::AsyncWriteExt;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

#[derive(Deserialize)]
struct CheckBody {
    hashes: Vec<String>,
}

/// `POST /api/deploy/check`: which of these hashes does the node lack?
pub async fn check(
    kernel: &Kernel,
    http: &HttpGuard,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: CheckBody = read_json(http, req).await?;
    let max = kernel.config.get_u64(Setting::DeployMaxFiles);
    let missing = syscall::deploy::missing(&kernel.storage, caller, body.hashes, max).await?;
    Ok(ok(serde_json::json!({ "missing": missing })))
}

fn query_param(uri: &http::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

/// `POST /api/deploy?name=<app>` with a tar or tar.gz body.
pub async fn deploy(web: &Web, caller: &Caller, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let kernel = &web.kernel;
    let name = query_param(req.uri(), "name")
        .ok_or_else(|| ApiError::bad_request("bad_app_name", "missing ?name=<app>"))?;
    // Refused before a byte is spooled.
    syscall::deploy::begin(caller, &name)?;
    let max_upload = kernel.config.get_u64(Setting::DeployMaxArchiveBytes);
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the upload is larger than deploy.max_archive_bytes ({max_upload} bytes)"),
        )
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_upload) {
        return Err(too_large());
    }

    let spool_dir = kernel.storage.path().parent().map(|p| p.to_path_buf()).unwrap_or_else(|| ".".into());
    // A full disk is said as such before the upload, when its size is known: the spool,
    // then the files in the database, take about twice the archive.
    if let Some(declared) = declared {
        let dir = spool_dir.clone();
        if let Ok(free) = blocking::unblock(move || fs2::available_space(&dir)).await {
            let needed = declared.saturating_mul(2).saturating_add(DISK_HEADROOM);
            if free < needed {
                return Err(disk_full(&format!(
                    "the disk has {} MB free and this upload needs about {} MB",
                    free >> 20,
                    needed.div_ceil(1 << 20)
                )));
            }
        }
    }
    let spool =
        blocking::unblock(move || tempfile::Builder::new().prefix(".fazt-upload-").tempfile_in(spool_dir))
            .await
            .map_err(io_error)?;
    let mut writer = blocking::Unblock::new(spool.reopen().map_err(io_error)?);
    let mut body = req.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request("upload_truncated", format!("the upload was cut off: {e}")))?;
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if received > max_upload {
                return Err(too_large());
            }
            writer.write_all(&data).await.map_err(io_error)?;
        }
    }
    writer.flush().await.map_err(io_error)?;
    drop(writer);
    if declared.is_some_and(|n| n != received) {
        return Err(ApiError::bad_request(
            "upload_truncated",
            "the upload is shorter than its Content-Length",
        ));
    }

    let limits = Limits {
        max_site_bytes: kernel.config.get_u64(Setting::DeployMaxSiteBytes),
        max_file_bytes: kernel.config.get_u64(Setting::DeployMaxFileBytes),
        max_files: kernel.config.get_u64(Setting::DeployMaxFiles),
    };
    let archive = std::fs::File::open(spool.path()).map_err(io_error)?;
    let report = syscall::deploy::deploy(
        &kernel.storage,
        &kernel.clock,
        &kernel.events,
        caller,
        &name,
        archive,
        limits,
    )
    .await?;
    // The spool lives until the archive is stored.
    drop(spool);
    web.sites.invalidate(&name);
    // A new app's name gets its certificate now rather than at its first handshake.
    web.tls.want(&format!("{name}.{}", kernel.config.domain()));
    let mut json = serde_json::to_value(&report).unwrap_or_default();
    json["url"] = kernel.app_url(&name).into();
    Ok(ok(json))
}

/// Free space a deploy leaves at least, for the database's own growth (WAL, indexes).
const DISK_HEADROOM: u64 = 16 << 20;

fn disk_full(detail: &str) -> ApiError {
    ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", format!("the disk is full: {detail}"))
}

fn io_error(err: std::io::Error) -> ApiError {
    // ENOSPC: the spool could not be written. Through the blocking pool's pipe it may
    // arrive as "write zero" instead.
    if err.raw_os_error() == Some(28)
        || matches!(err.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::WriteZero)
    {
        disk_full("the upload could not be stored")
    } else {
        tracing::error!(error = %err, "spooling an upload failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "io_error",
            format!("could not store the upload: {err}"),
        )
    }
}
