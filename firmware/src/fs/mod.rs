//! The virtual filesystem: sites stored inside `data.db`.
//!
//! File bodies live in `blobs`, addressed by their SHA-256, so identical files across
//! apps and deploys are stored once. A deploy writes a new `deployments` row and its
//! `files` rows and then moves the app's `current_deployment_id`, all in one transaction:
//! readers see the old site or the new one, never a mix, and a crash at any point leaves
//! the previous deploy serving.
//!
//! # Layout
//! - [`path`]: checking and normalising paths inside a site.
//! - [`archive`]: reading an uploaded tar.gz with every limit enforced.
//! - [`deploy`]: storing blobs and switching an app to a new deployment.
//! - [`compress`]: gzip and brotli variants, made once at deploy time.
//! - [`site`]: loading a deployed site's file table for serving.
//! - [`redirects`]: an app's `_redirects` rules: parsing and matching.

pub mod archive;
pub mod compress;
pub mod deploy;
pub mod path;
pub mod redirects;
pub mod site;

pub use crate::rules::hash::{content_hash, is_content_hash};

/// The Content-Type for a path, with a charset for text.
pub fn content_type_for(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "image/svg+xml" | "application/xml"
        );
    if textual {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}
