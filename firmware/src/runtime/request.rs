//! The request object JavaScript handlers receive and the response they return.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The request handed to a handler (see docs/serverless.md for its JavaScript shape).
/// It is built into a JavaScript object field by field (no JSON round trip).
#[derive(Debug, Clone)]
pub struct JsRequest {
    /// HTTP method.
    pub method: String,
    /// URL parts.
    pub url: JsUrl,
    /// Headers, names in lowercase (repeated headers joined with ", ").
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
    /// The body says it is JSON (its content type): the handler's request gets it
    /// parsed as `json` when it parses.
    pub json_body: bool,
}

/// URL parts of a request.
#[derive(Debug, Clone)]
pub struct JsUrl {
    /// Path, e.g. `/api/users`.
    pub pathname: String,
    /// Query string with its `?`, or empty.
    pub search: String,
    /// Query parameters (the last value wins for repeated names).
    pub query: BTreeMap<String, String>,
}

impl JsUrl {
    /// Splits a path and query.
    pub fn parse(path: &str, query: Option<&str>) -> Self {
        let query_map = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                };
                (decode(k), decode(v))
            })
            .collect();
        JsUrl {
            pathname: path.to_string(),
            search: query.map(|q| format!("?{q}")).unwrap_or_default(),
            query: query_map,
        }
    }
}

/// What a handler answered, normalised by the prelude.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, names in lowercase.
    pub headers: BTreeMap<String, String>,
    /// Body text.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let url = JsUrl::parse("/api/x", Some("page=1&q=a+b%21&flag&page=2"));
        assert_eq!(url.query["page"], "2");
        assert_eq!(url.query["q"], "a b!");
        assert_eq!(url.query["flag"], "");
        assert_eq!(url.search, "?page=1&q=a+b%21&flag&page=2");
        assert_eq!(JsUrl::parse("/", None).search, "");
    }
}
