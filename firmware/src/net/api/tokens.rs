//! `/api/tokens`: API tokens for the CLI.

use super::auth::Principal;
use super::read_json;
use crate::kernel::Kernel;
use crate::net::response::{ok, ApiError, Resp};
use crate::security::tokens;
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
pub async fn list(kernel: &Arc<Kernel>) -> Result<Resp, ApiError> {
    let list = kernel.storage.read(tokens::list).await?;
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
    kernel: &Arc<Kernel>,
    principal: &Principal,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let body: CreateBody = read_json(kernel, req).await?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > tokens::MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_name",
            format!("a token name is 1-{} printable characters", tokens::MAX_NAME_LEN),
        ));
    }
    let user = match principal {
        Principal::Session { user_id } => Some(user_id.clone()),
        Principal::Token { .. } => None,
    };
    let now = kernel.clock.now_millis();
    let (info, secret) =
        kernel.storage.write(move |conn| tokens::create(conn, &name, user.as_deref(), now)).await?;
    kernel.events.notify(
        crate::events::Kind::TokenCreated,
        None,
        serde_json::json!({"id": info.id, "name": info.name, "prefix": info.prefix}),
    );
    Ok(ok(serde_json::json!({ "id": info.id, "name": info.name, "token": secret })))
}

/// `DELETE /api/tokens/{id}`.
pub async fn revoke(kernel: &Arc<Kernel>, id: &str) -> Result<Resp, ApiError> {
    let now = kernel.clock.now_millis();
    let key = id.to_string();
    if kernel.storage.write(move |conn| tokens::revoke(conn, &key, now)).await? {
        kernel.events.notify(crate::events::Kind::TokenRevoked, None, serde_json::json!({"id": id}));
        Ok(ok(serde_json::json!({})))
    } else {
        Err(ApiError::not_found(format!("no live token '{id}'")))
    }
}
