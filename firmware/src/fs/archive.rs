//! Reading an uploaded site archive (tar, optionally gzip-compressed) with every limit
//! enforced while streaming: nothing is unpacked to disk and nothing is trusted.

use super::deploy::DeployError;
use super::path::normalize_site_path;
use std::io::{self, Read};

/// Limits applied to one upload.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest decompressed total, in bytes (a zip bomb stops here).
    pub max_site_bytes: u64,
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Most files (folders and the manifest are not counted; entries of any kind are
    /// capped at twice this plus some slack, so folder entries cannot flood).
    pub max_files: u64,
}

/// One regular file read from an archive.
#[derive(Debug)]
pub struct ArchiveFile {
    /// Normalised site path.
    pub path: String,
    /// File content.
    pub data: Vec<u8>,
}

/// Counts bytes read and fails once more than `limit` have passed; remembers whether the
/// stream ran dry.
struct LimitedReader<R> {
    inner: R,
    read: u64,
    limit: u64,
    hit_eof: bool,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof = true;
        }
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(LimitExceeded));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct LimitExceeded;
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size limit exceeded")
    }
}
impl std::error::Error for LimitExceeded {}

fn is_limit(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<LimitExceeded>())
}

/// Reads every regular file of a tar or tar.gz stream, calling `each` in archive order.
/// Folders are skipped; symlinks, hard links, devices and FIFOs are refused.
pub fn read_archive(
    input: impl Read,
    limits: Limits,
    mut each: impl FnMut(ArchiveFile) -> Result<(), DeployError>,
) -> Result<(), DeployError> {
    // Sniff gzip's magic number so plain tar uploads work too.
    let mut input = io::BufReader::new(input);
    let head = io::BufRead::fill_buf(&mut input).map_err(|e| DeployError::Truncated(e.to_string()))?;
    let gzipped = head.starts_with(&[0x1f, 0x8b]);
    let decoded: Box<dyn Read> =
        if gzipped { Box::new(flate2::read::GzDecoder::new(input)) } else { Box::new(input) };
    // Tar headers and padding count against the site limit too: up to 1 KB per entry.
    let limit =
        limits.max_site_bytes.saturating_add(limits.max_files.saturating_mul(1024)).saturating_add(1024);
    let mut archive = tar::Archive::new(LimitedReader { inner: decoded, read: 0, limit, hit_eof: false });
    let map_io = |e: io::Error| {
        if is_limit(&e) {
            DeployError::TooLarge(format!(
                "the site is larger than {} bytes once decompressed",
                limits.max_site_bytes
            ))
        } else {
            DeployError::Corrupt(e.to_string())
        }
    };
    let mut entries_seen = 0u64;
    let mut files_seen = 0u64;
    let mut total = 0u64;
    for entry in archive.entries().map_err(map_io)? {
        let mut entry = entry.map_err(map_io)?;
        entries_seen += 1;
        let max_entries = limits.max_files.saturating_mul(2).saturating_add(16);
        if entries_seen > max_entries {
            return Err(DeployError::TooLarge(format!("more than {max_entries} archive entries")));
        }
        let raw_path = entry.path_bytes();
        let raw_path = std::str::from_utf8(&raw_path)
            .map_err(|_| DeployError::BadEntry("a path that is not UTF-8".into()))?
            .to_string();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                // Still check the name: a hostile folder entry is a hostile archive.
                if raw_path.trim_matches('/') != "." && !raw_path.trim_matches('/').is_empty() {
                    normalize_site_path(&raw_path).map_err(DeployError::BadPath)?;
                }
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            // pax/GNU metadata entries are consumed by the tar crate itself; any other
            // type (symlink, hard link, device, fifo) could point outside the site.
            other => {
                return Err(DeployError::BadEntry(format!("'{raw_path}' is a {}", entry_kind_name(other))));
            }
        }
        let path = normalize_site_path(&raw_path).map_err(DeployError::BadPath)?;
        if path != super::deploy::MANIFEST_NAME {
            files_seen += 1;
            if files_seen > limits.max_files {
                return Err(DeployError::TooLarge(format!("more than {} files", limits.max_files)));
            }
        }
        let size = entry.size();
        if size > limits.max_file_bytes {
            return Err(DeployError::TooLarge(format!(
                "'{path}' is {size} bytes, over the {} byte file limit",
                limits.max_file_bytes
            )));
        }
        total = total.saturating_add(size);
        if total > limits.max_site_bytes {
            return Err(DeployError::TooLarge(format!(
                "the site is larger than {} bytes once decompressed",
                limits.max_site_bytes
            )));
        }
        // The header's size is bounded above, so this allocation is too.
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry).take(size).read_to_end(&mut data).map_err(map_io)?;
        if data.len() as u64 != size {
            return Err(DeployError::Truncated(format!("'{path}' ends early")));
        }
        each(ArchiveFile { path, data })?;
    }
    // A complete tar ends with zero blocks, and the tar reader stops on them without
    // reaching the end of the stream. Reaching it means the upload was cut at an entry
    // boundary: refuse rather than publish half a site.
    let mut rest = archive.into_inner();
    if rest.hit_eof {
        return Err(DeployError::Truncated("the archive has no end-of-archive marker".into()));
    }
    // Drain the padding so gzip checks its trailer (CRC and length).
    io::copy(&mut rest, &mut io::sink()).map_err(map_io)?;
    Ok(())
}

fn entry_kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special file",
    }
}
