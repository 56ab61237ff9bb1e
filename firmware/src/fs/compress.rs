//! Precompressed variants of a file, made once at deploy time.
//!
//! Serving picks a variant by Accept-Encoding; nothing is compressed per request, so a
//! Pi spends its CPU once per deploy instead of once per visitor.

use std::io::Write;

/// Files smaller than this are sent as they are: the headers cost more than the saving.
const MIN_SIZE: usize = 256;

/// A variant is kept only when it is at most this share of the original (in percent).
const MAX_RATIO_PERCENT: usize = 90;

/// Brotli quality 6 of 11: measured here on text, quality 9 compressed about 1 MB/s per
/// core and made a 50 MB deploy take 10 s; 6 is several times faster for a few percent
/// more bytes, which is the right trade on a Pi.
const BROTLI_QUALITY: u32 = 6;

/// True for content types worth compressing (text, scripts, JSON, SVG, WASM, fonts that
/// are not already compressed).
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
                | "application/vnd.ms-fontobject"
        )
}

/// The gzip and brotli variants of `data`, each `None` when not worth keeping.
pub fn variants(content_type: &str, data: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    if data.len() < MIN_SIZE || !is_compressible(content_type) {
        return (None, None);
    }
    let keep = |v: Vec<u8>| (v.len() * 100 <= data.len() * MAX_RATIO_PERCENT).then_some(v);
    (gzip(data).and_then(keep), brotli(data).and_then(keep))
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 3), flate2::Compression::new(6));
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

fn brotli(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 3);
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, 22);
        enc.write_all(data).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn text_gets_both_variants_that_decode_back() {
        let data = "hello fazt ".repeat(200).into_bytes();
        let (gz, br) = variants("text/html; charset=utf-8", &data);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz.unwrap()[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let mut back = Vec::new();
        brotli::Decompressor::new(&br.unwrap()[..], 4096).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn small_binary_and_incompressible_files_get_none() {
        assert_eq!(variants("text/plain", b"tiny"), (None, None));
        assert_eq!(variants("image/png", &[7u8; 4096]), (None, None));
        let mut noise = vec![0u8; 4096];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut noise);
        let (gz, _) = variants("text/plain", &noise);
        assert!(gz.is_none());
    }
}
