//! Paths inside a site: one normal form, and nothing that can escape the site.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Empty after normalisation.
    #[error("empty path")]
    Empty,
    /// Starts at the filesystem root.
    #[error("absolute path '{0}' (paths must be relative to the site folder)")]
    Absolute(String),
    /// Contains a `..` component.
    #[error("path '{0}' leaves the site folder (contains '..')")]
    Traversal(String),
    /// Contains a NUL, a backslash or a control character.
    #[error("path '{0}' contains a forbidden character")]
    BadCharacter(String),
    /// Longer than [`MAX_PATH_LEN`].
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
}

/// Longest path accepted, in bytes; real sites stay far below it.
pub const MAX_PATH_LEN: usize = 1024;

/// Normalises a path from an archive or a manifest: forward slashes, no leading `./` or
/// `/` runs, no empty or `.` components. Refuses absolute paths and `..`.
pub fn normalize_site_path(raw: &str) -> Result<String, PathError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if raw.chars().any(|c| c == '\0' || c == '\\' || c.is_control()) {
        return Err(PathError::BadCharacter(raw.escape_default().to_string()));
    }
    if raw.starts_with('/') {
        return Err(PathError::Absolute(raw.into()));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(PathError::Traversal(raw.into())),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}

/// Turns a request path (`/docs/a%20b.html`) into a site path (`docs/a b.html`), or
/// `None` when it cannot name a file (bad escapes, `..`, NUL). The empty string is the
/// site root.
pub fn request_to_site_path(uri_path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(uri_path).decode_utf8().ok()?;
    if decoded.chars().any(|c| c == '\0' || c == '\\') {
        return None;
    }
    let mut parts = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_harmless_forms() {
        assert_eq!(normalize_site_path("./a//b/./c.html").unwrap(), "a/b/c.html");
        assert_eq!(normalize_site_path("index.html").unwrap(), "index.html");
    }

    #[test]
    fn refuses_escapes() {
        assert!(matches!(normalize_site_path("../etc/passwd"), Err(PathError::Traversal(_))));
        assert!(matches!(normalize_site_path("a/../../b"), Err(PathError::Traversal(_))));
        assert!(matches!(normalize_site_path("/etc/passwd"), Err(PathError::Absolute(_))));
        assert!(matches!(normalize_site_path("a\\..\\b"), Err(PathError::BadCharacter(_))));
        assert!(matches!(normalize_site_path("a\0b"), Err(PathError::BadCharacter(_))));
        assert!(matches!(normalize_site_path("./"), Err(PathError::Empty)));
        assert!(matches!(normalize_site_path(&"a".repeat(2000)), Err(PathError::TooLong)));
    }

    #[test]
    fn request_paths_decode_and_refuse_traversal() {
        assert_eq!(request_to_site_path("/").unwrap(), "");
        assert_eq!(request_to_site_path("/a%20b/c.html").unwrap(), "a b/c.html");
        assert_eq!(request_to_site_path("/a/%2e%2e/b"), None);
        assert_eq!(request_to_site_path("/%00"), None);
        assert_eq!(request_to_site_path("/%ff"), None);
    }
}
