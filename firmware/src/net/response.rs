//! Response helpers and the one JSON error shape of the API:
//! `{"error":{"code":"<stable_code>","message":"<text>"}}`.

use crate::storage::StorageError;
use bytes::Bytes;
use futures_lite::{Stream, StreamExt};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The body of every response: bytes known up front, or chunks produced while the
/// client listens (Server-Sent Events). A stream is polled by the connection itself, so
/// it needs no task of its own and ends when the client hangs up.
pub struct Body(Inner);

enum Inner {
    Full(Full<Bytes>),
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl Body {
    /// A body of these bytes.
    pub fn new(data: Bytes) -> Self {
        Body(Inner::Full(Full::new(data)))
    }

    /// A body sent chunk by chunk as `stream` yields them, ending with it.
    pub fn stream(stream: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        Body(Inner::Stream(Box::pin(stream)))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Full(full) => full.fmt(f),
            Inner::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.0 {
            Inner::Full(full) => Pin::new(full).poll_frame(cx),
            Inner::Stream(stream) => stream.poll_next(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(full) => full.is_end_stream(),
            Inner::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(full) => full.size_hint(),
            Inner::Stream(_) => SizeHint::default(),
        }
    }
}

/// A complete response.
pub type Resp = Response<Body>;

/// An error answered as JSON with a stable code.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds for a Retry-After header.
    pub retry_after: Option<u64>,
    /// Methods for an Allow header (405 answers).
    pub allow: Option<String>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None, allow: None }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// The response for this error.
    pub fn into_response(self) -> Resp {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = json(self.status, &body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
        resp
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Full => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", err.to_string())
            }
            StorageError::Busy => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "db_busy", err.to_string());
                e.retry_after = Some(1);
                e
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage_error",
                    "internal storage error (see the node's log)",
                )
            }
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        StorageError::from(err).into()
    }
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Body::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// 200 with a JSON body.
pub fn ok(value: serde_json::Value) -> Resp {
    json(StatusCode::OK, &value)
}
