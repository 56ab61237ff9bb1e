//! `/api/tokens`: API tokens for the CLI, over [`crate::syscall::tokens`].

use super::read_json;
use crate::kernel::Kernel;
use crate::net::limits::HttpGuard;
use crate::net::response::{ok, ApiError, Resp};
use crate::storage::Storage;
use crate::syscall::{tokens, Caller};
use crate::time::rfc3339;
use http::Request;
use hyper::body::Incoming;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
struct CreateBody {
    name: String,
}

/// `GET /api/tokens`.
pub async fn list(storage: &Arc<Storage>, caller: &Caller) -> Result<Resp, ApiError> {
    let list = tokens::list(storage, caller).await?;
    let json: Vec<_> = list
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "name": t.name, "prefix": t.prefix,
                "created_at": rfc3339(t.created_at),
                "last_used_at": t.last_used_at.map(rfc3339),
                "revoked_at": t.revoked_at.map(rfc3339),
            })
        })
        .collect();
    Ok(ok(serde_json::json!({ "tokens": json })))
}

/// `POST /api/tokens`: the secret is in this answer and nowhere else, ever.
pub async fn create(
    kernel: &Kernel,
    http: &HttpGuard,
    caller: Caller,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: CreateBody = read_json(http, req).await?;
    let (info, secret) =
        tokens::create(&kernel.storage, &kernel.clock, &kernel.events, &caller, &body.name).await?;
    Ok(ok(serde_json::json!({ "id": info.id, "name": info.name, "token": secret })))
}

/// `DELETE /api/tokens/{id}`.
pub async fn revoke(kernel: &Kernel, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    tokens::revoke(&kernel.storage, &kernel.clock, &kernel.events, caller, id).await?;
    Ok(ok(serde_json::json!({})))
}
