//! One event: its type (a kernel type or an app's `app.*` one), who may see it, and
//! its JSON data, checked against the limits before it gets an id.

use crate::time::UnixMillis;
use serde::Serialize;

/// Largest `data` of one event, as JSON text. Events are notices, not payloads: a bigger
/// one is refused rather than cut, so a subscriber never reads half a document.
pub const MAX_DATA_BYTES: usize = 16 * 1024;

/// Longest event type, in bytes.
pub const MAX_TYPE_BYTES: usize = 128;

/// The namespace of every type an app or the admin makes up.
pub const CUSTOM_PREFIX: &str = "app.";

/// The event types the kernel emits (a closed set; apps add `app.*`).
///
/// None starts with `app.`, so a custom type can never pass for a kernel one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A deploy finished (data: deployment id, files, bytes).
    AppDeployed,
    /// An app was deleted.
    AppDeleted,
    /// An app got a new name (data: id, old and new name).
    AppRenamed,
    /// A handler threw or failed to load.
    HandlerError,
    /// A handler ran past its wall-time limit.
    LimitTimeout,
    /// A handler reached its memory limit.
    LimitMemory,
    /// A password login failed.
    LoginFailed,
    /// An API token was created.
    TokenCreated,
    /// An API token was revoked.
    TokenRevoked,
    /// A certificate was obtained or issued.
    CertIssued,
    /// A certificate could not be obtained or renewed.
    CertFailing,
    /// The kernel clock was stepped.
    TimeStepped,
    /// The beacon found a fazt node on the LAN.
    PeerFound,
    /// A node the beacon knew left or expired.
    PeerLost,
    /// `data.db` is close to its size cap.
    StorageNearFull,
    /// Outbound requests to a host failed so often that its circuit opened (data: host,
    /// failures, cooldown_ms).
    EgressCircuitOpened,
    /// A probe to a host whose circuit was open succeeded (data: host).
    EgressCircuitClosed,
}

impl Kind {
    /// Every kernel type, for the docs and for refusing look-alikes.
    pub const ALL: &'static [Kind] = &[
        Kind::AppDeployed,
        Kind::AppDeleted,
        Kind::AppRenamed,
        Kind::HandlerError,
        Kind::LimitTimeout,
        Kind::LimitMemory,
        Kind::LoginFailed,
        Kind::TokenCreated,
        Kind::TokenRevoked,
        Kind::CertIssued,
        Kind::CertFailing,
        Kind::TimeStepped,
        Kind::PeerFound,
        Kind::PeerLost,
        Kind::StorageNearFull,
        Kind::EgressCircuitOpened,
        Kind::EgressCircuitClosed,
    ];

    /// The type string, e.g. `apps.deployed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AppDeployed => "apps.deployed",
            Kind::AppDeleted => "apps.deleted",
            Kind::AppRenamed => "apps.renamed",
            Kind::HandlerError => "handler.error",
            Kind::LimitTimeout => "limit.timeout",
            Kind::LimitMemory => "limit.memory",
            Kind::LoginFailed => "login.failed",
            Kind::TokenCreated => "token.created",
            Kind::TokenRevoked => "token.revoked",
            Kind::CertIssued => "cert.issued",
            Kind::CertFailing => "cert.failing",
            Kind::TimeStepped => "time.stepped",
            Kind::PeerFound => "peer.found",
            Kind::PeerLost => "peer.lost",
            Kind::StorageNearFull => "storage.near_full",
            Kind::EgressCircuitOpened => "egress.circuit_opened",
            Kind::EgressCircuitClosed => "egress.circuit_closed",
        }
    }

    /// Who sees this type by default: node-wide facts any app may react to are public;
    /// anything about security or about one app stays private (its app and the admin).
    pub fn visibility(self) -> Visibility {
        match self {
            Kind::TimeStepped | Kind::PeerFound | Kind::PeerLost | Kind::StorageNearFull => {
                Visibility::Public
            }
            _ => Visibility::Private,
        }
    }
}

/// Who may read an event besides the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the event's own app (none for a node event: the admin only).
    Private,
    /// Every app.
    Public,
}

impl Visibility {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    /// Parses the stored or wire form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "private" => Some(Visibility::Private),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// An event on the bus: immutable once it has its id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Increasing over the node's life (never reused, gaps allowed).
    pub id: u64,
    /// When it happened, by the kernel clock (Unix milliseconds).
    pub time: UnixMillis,
    /// The type, e.g. `apps.deployed` or `app.order.paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The app it belongs to (id), if any.
    pub app: Option<String>,
    /// That app's name when the event happened.
    pub app_name: Option<String>,
    /// Who may read it.
    pub visibility: Visibility,
    /// Details, at most [`MAX_DATA_BYTES`] of JSON.
    pub data: serde_json::Value,
}

/// An event before the bus numbers and timestamps it.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The type (checked by [`check_type`] or a [`Kind`]).
    pub kind: String,
    /// The app (id, name) it belongs to.
    pub app: Option<(String, String)>,
    /// Who may read it.
    pub visibility: Visibility,
    /// Details.
    pub data: serde_json::Value,
}

impl Draft {
    /// A kernel event with its type's default visibility.
    pub fn kernel(kind: Kind, app: Option<(&str, &str)>, data: serde_json::Value) -> Self {
        Draft {
            kind: kind.as_str().to_string(),
            app: app.map(|(id, name)| (id.to_string(), name.to_string())),
            visibility: kind.visibility(),
            data,
        }
    }
}

/// Why an event was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// The type is empty, too long or not dotted lowercase words.
    #[error("invalid event type '{0}': use 1-128 bytes of lowercase words (a-z, 0-9, _ and -) joined by dots, e.g. app.order.paid")]
    BadType(String),
    /// The data is larger than [`MAX_DATA_BYTES`] as JSON.
    #[error("event data is {0} bytes of JSON, over the {MAX_DATA_BYTES} byte limit; store the payload elsewhere (KV) and send its key")]
    TooLarge(usize),
    /// An app emitted more events in one invocation than it may.
    #[error("an app may emit at most {0} events per invocation")]
    RateLimited(u32),
}

/// Checks a type: dotted words of `a-z 0-9 _ -`, 1-128 bytes, no empty word.
pub fn check_type(kind: &str) -> Result<(), EventError> {
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    if kind.is_empty() || kind.len() > MAX_TYPE_BYTES || !kind.split('.').all(word_ok) {
        // Echo at most the first 64 characters: a refused 1 MB type should not come back.
        let shown: String = kind.chars().take(64).collect();
        return Err(EventError::BadType(shown.escape_default().to_string()));
    }
    Ok(())
}

/// A made-up type under `app.`: `order.paid` and `app.order.paid` both give
/// `app.order.paid`, so nobody but the kernel can emit `login.failed`.
pub fn custom_type(kind: &str) -> Result<String, EventError> {
    let kind = kind.trim();
    let full =
        if kind.starts_with(CUSTOM_PREFIX) { kind.to_string() } else { format!("{CUSTOM_PREFIX}{kind}") };
    check_type(&full).map_err(|_| {
        let shown: String = kind.chars().take(64).collect();
        EventError::BadType(shown.escape_default().to_string())
    })?;
    Ok(full)
}

/// The size of `data` as JSON text, refused over [`MAX_DATA_BYTES`].
pub fn check_data(data: &serde_json::Value) -> Result<usize, EventError> {
    let len = serde_json::to_vec(data).map(|v| v.len()).unwrap_or(usize::MAX);
    if len > MAX_DATA_BYTES {
        return Err(EventError::TooLarge(len));
    }
    Ok(len)
}

/// True when `kind` is `prefix` or lies under it: `app` matches `app.x` but not
/// `apps.deployed` (matching by words, not bytes). An empty prefix matches everything.
pub fn type_matches(kind: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('.');
    prefix.is_empty()
        || kind == prefix
        || (kind.len() > prefix.len() && kind.starts_with(prefix) && kind.as_bytes()[prefix.len()] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_types_live_under_app() {
        assert_eq!(custom_type("order.paid").unwrap(), "app.order.paid");
        assert_eq!(custom_type("app.order.paid").unwrap(), "app.order.paid");
        assert_eq!(custom_type("login.failed").unwrap(), "app.login.failed");
        for bad in ["", "Order", "a..b", "a b", "é", ".x", "x.", &"x".repeat(200)] {
            assert!(custom_type(bad).is_err(), "{bad:?}");
        }
        assert!(Kind::ALL
            .iter()
            .all(|k| !k.as_str().starts_with(CUSTOM_PREFIX) && check_type(k.as_str()).is_ok()));
    }

    #[test]
    fn prefixes_match_whole_words() {
        assert!(type_matches("app.order.paid", "app"));
        assert!(type_matches("app.order.paid", "app."));
        assert!(type_matches("app.order.paid", "app.order"));
        assert!(!type_matches("apps.deployed", "app"));
        assert!(!type_matches("app.orders", "app.order"));
        assert!(type_matches("login.failed", ""));
    }

    #[test]
    fn data_is_capped() {
        assert!(check_data(&serde_json::json!({"a": "x".repeat(MAX_DATA_BYTES - 100)})).is_ok());
        let big = serde_json::json!("x".repeat(MAX_DATA_BYTES));
        assert!(matches!(check_data(&big), Err(EventError::TooLarge(n)) if n > MAX_DATA_BYTES));
    }
}
