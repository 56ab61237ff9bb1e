//! Identifiers (random ids, UUIDv7) and secrets.

use rand::RngCore;

/// A new stable id such as `app_3f9c2a7b1d0e4c58`: a kind prefix and 64 random bits.
pub fn new_id(kind: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{kind}_{}", hex::encode(bytes))
}

/// A new secret of `bytes` random bytes, hex-encoded.
pub fn new_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new UUIDv7 (RFC 9562) such as `0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b`: the 48-bit
/// Unix time in milliseconds `unix_ms` (from the kernel clock, so ids sort by creation
/// time like every other fazt timestamp), then 74 random bits. Times before 1970 or past
/// the year 10889 are clamped into the 48 bits.
pub fn new_uuid_v7(unix_ms: i64) -> String {
    let ms = unix_ms.clamp(0, (1 << 48) - 1) as u64;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes[6..]);
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f); // version 7
    bytes[8] = 0x80 | (bytes[8] & 0x3f); // variant 10 (RFC 9562)
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// True for a UUID in its lowercase hyphenated form (any version).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_has_its_version_variant_and_time() {
        let ms = 1_796_670_585_159;
        let id = new_uuid_v7(ms);
        assert!(is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "7", "version nibble: {id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "variant bits: {id}");
        let time =
            i64::from_str_radix(&id[..8], 16).unwrap() << 16 | i64::from_str_radix(&id[9..13], 16).unwrap();
        assert_eq!(time, ms);
        assert_ne!(new_uuid_v7(ms), id, "74 random bits");
        assert!(new_uuid_v7(ms + 1) > id, "later ids sort after earlier ones");
        assert!(new_uuid_v7(-5).starts_with("00000000-0000-7"));
    }

    #[test]
    fn uuid_shape() {
        assert!(!is_uuid("app_3f9c2a7b1d0e4c58"));
        assert!(!is_uuid("0190A1B2-C3D4-7E5F-8A6B-1C2D3E4F5A6B"));
        assert!(!is_uuid("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6"));
        assert!(!is_uuid("0190a1b2xc3d4-7e5f-8a6b-1c2d3e4f5a6b"));
    }
}
