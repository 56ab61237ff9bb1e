//! How long a browser may keep a served file: decided from its path when a site is
//! loaded (`fs`), turned into a `Cache-Control` header by `net`.

/// The caching class of a static file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheClass {
    /// HTML: revalidated every time, so a redeploy shows at once.
    Revalidate,
    /// A fingerprinted asset (`app.3f2a9c1b.js`): it never changes.
    Immutable,
    /// Any other asset: reused for five minutes.
    Short,
}

impl CacheClass {
    /// The class of the file at site path `path`.
    pub fn of(path: &str) -> CacheClass {
        if path.ends_with(".html") || path.ends_with(".htm") {
            return CacheClass::Revalidate;
        }
        let fingerprinted = path.rsplit('/').next().unwrap_or(path).split(['.', '-', '_']).any(|part| {
            // A content hash has hex letters and digits; a date (20240101) has no letters.
            part.len() >= 8
                && part.bytes().all(|b| b.is_ascii_hexdigit())
                && part.bytes().any(|b| b.is_ascii_digit())
                && part.bytes().any(|b| b.is_ascii_alphabetic())
        });
        if fingerprinted {
            CacheClass::Immutable
        } else {
            CacheClass::Short
        }
    }

    /// The `Cache-Control` value for a 200 of such a file.
    pub const fn directive(self) -> &'static str {
        match self {
            CacheClass::Revalidate => "no-cache",
            CacheClass::Immutable => "public, max-age=31536000, immutable",
            CacheClass::Short => "public, max-age=300",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CacheClass;

    #[test]
    fn cache_class_by_kind() {
        assert_eq!(CacheClass::of("index.html").directive(), "no-cache");
        assert_eq!(
            CacheClass::of("assets/app.3f2a9c1b.js").directive(),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(CacheClass::of("logo.png").directive(), "public, max-age=300");
        // A date is not a content hash.
        assert_eq!(CacheClass::of("photo-20240101.jpg"), CacheClass::Short);
    }
}
