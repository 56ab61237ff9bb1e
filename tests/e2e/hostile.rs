//! Bad input changes nothing: hostile archives, limits, truncated uploads, a full quota,
//! a locked database. Each gets a JSON error with a stable code, the previous deploy
//! keeps serving and the database stays sound.

use crate::support::{tar_gz, Node};
use std::io::Write;

/// A tar.gz whose single entry has exactly this raw name, type and data (the tar crate's
/// safe builders refuse such names, which is the point).
fn raw_archive(name: &[u8], kind: tar::EntryType, data: &[u8], link: Option<&[u8]>) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    tar.append(&header, data).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn node_with_blog() -> Node {
    let node = Node::in_process();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"good version")]).status, 200);
    node
}

fn post_archive(node: &Node, archive: &[u8]) -> crate::support::Resp {
    let auth = format!("Bearer {}", node.token);
    node.request("POST", "admin.localhost", "/api/deploy?name=blog", &[("Authorization", &auth)], archive)
}

fn assert_unchanged(node: &Node) {
    assert_eq!(node.get("blog.localhost", "/").text(), "good version");
    let apps = node.api("GET", "/api/apps/blog", None).json();
    assert_eq!(apps["deployments"], 1, "a refused deploy must not create a deployment");
    assert_eq!(node.integrity(), "ok");
}

#[test]
fn hostile_archive_entries_are_refused() {
    let node = node_with_blog();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (raw_archive(b"../escape.html", tar::EntryType::Regular, b"x", None), "archive_bad_path"),
        (raw_archive(b"a/../../escape.html", tar::EntryType::Regular, b"x", None), "archive_bad_path"),
        (raw_archive(b"/etc/passwd", tar::EntryType::Regular, b"x", None), "archive_bad_path"),
        (raw_archive(b"link.html", tar::EntryType::Symlink, b"", Some(b"/etc/passwd")), "archive_bad_entry"),
        (raw_archive(b"hard.html", tar::EntryType::Link, b"", Some(b"index.html")), "archive_bad_entry"),
        (raw_archive(b"dev", tar::EntryType::Char, b"", None), "archive_bad_entry"),
        (raw_archive(b"blk", tar::EntryType::Block, b"", None), "archive_bad_entry"),
        (raw_archive(b"fifo", tar::EntryType::Fifo, b"", None), "archive_bad_entry"),
        (raw_archive(b"bad\xffname", tar::EntryType::Regular, b"x", None), "archive_bad_entry"),
        (raw_archive(b"back\\slash", tar::EntryType::Regular, b"x", None), "archive_bad_path"),
        (b"this is not an archive at all".to_vec(), "archive_corrupt"),
        (tar_gz(&[]), "empty_site"),
    ];
    for (archive, code) in cases {
        let resp = post_archive(&node, &archive);
        assert!(resp.status >= 400 && resp.status < 500, "{code}: {} {}", resp.status, resp.text());
        assert_eq!(resp.code(), code, "{}", resp.text());
    }
    assert_unchanged(&node);
}

#[test]
fn truncated_and_garbled_uploads_are_refused() {
    let node = node_with_blog();
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let archive = tar_gz(&[("index.html", b"new version"), ("big.bin", &big)]);
    let cut = &archive[..archive.len() / 2];
    let resp = post_archive(&node, cut);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(["archive_corrupt", "upload_truncated"].contains(&resp.code().as_str()), "{}", resp.text());
    let mut flipped = archive.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    assert_eq!(post_archive(&node, &flipped).status, 400);

    // A client that promises more bytes than it sends and hangs up.
    let mut stream = node.begin_deploy("blog", archive.len());
    stream.write_all(&archive[..1000]).unwrap();
    drop(stream);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_unchanged(&node);
    // No spool files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(node.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".fazt-upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn size_limits_and_zip_bombs_are_refused() {
    let mut node = node_with_blog();
    node.stop();
    node.cli_ok(&["server", "set-config", "deploy.max_file_bytes", "100000"]);
    node.cli_ok(&["server", "set-config", "deploy.max_site_bytes", "300000"]);
    node.cli_ok(&["server", "set-config", "deploy.max_archive_bytes", "200000"]);
    node.cli_ok(&["server", "set-config", "deploy.max_files", "50"]);
    node.spawn();
    // One file over the file limit.
    let resp = post_archive(&node, &tar_gz(&[("big.bin", &vec![1u8; 100_001])]));
    assert_eq!((resp.status, resp.code().as_str()), (413, "too_large"), "{}", resp.text());
    // A zip bomb: tiny upload, huge once decompressed.
    let files: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("f{i}.txt"), vec![0u8; 99_000])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    let bomb = tar_gz(&refs);
    assert!(bomb.len() < 10_000);
    let resp = post_archive(&node, &bomb);
    assert_eq!((resp.status, resp.code().as_str()), (413, "too_large"), "{}", resp.text());
    // Too many entries.
    let many: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("f{i}.txt"), vec![b'x'])).collect();
    let refs: Vec<(&str, &[u8])> = many.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    assert_eq!(post_archive(&node, &tar_gz(&refs)).status, 413);
    // An upload over the archive limit is refused from its Content-Length alone, before
    // any of it is sent.
    let mut stream = node.begin_deploy("blog", 250_000);
    let mut answer = vec![0u8; 4096];
    let n = std::io::Read::read(&mut stream, &mut answer).unwrap();
    let answer = crate::support::parse_response(&answer[..n], false);
    assert_eq!((answer.status, answer.code().as_str()), (413, "too_large"));
    assert_unchanged(&node);
}

#[test]
fn manifest_lies_are_refused() {
    let node = node_with_blog();
    let hash = "0".repeat(64);
    let manifest =
        serde_json::json!({"files": [{"path": "index.html", "hash": hash, "size": 3}]}).to_string();
    let resp = post_archive(&node, &tar_gz(&[(".fazt-manifest.json", manifest.as_bytes())]));
    assert_eq!((resp.status, resp.code().as_str()), (409, "missing_content"), "{}", resp.text());
    let manifest =
        serde_json::json!({"files": [{"path": "index.html", "hash": hash, "size": 3}]}).to_string();
    let resp =
        post_archive(&node, &tar_gz(&[(".fazt-manifest.json", manifest.as_bytes()), ("index.html", b"abc")]));
    assert_eq!((resp.status, resp.code().as_str()), (400, "manifest_mismatch"), "{}", resp.text());
    let resp = post_archive(&node, &tar_gz(&[(".fazt-manifest.json", b"{not json")]));
    assert_eq!(resp.code(), "bad_manifest");
    let traversal = serde_json::json!({"files": [{"path": "../x", "hash": hash, "size": 1}]}).to_string();
    assert_eq!(
        post_archive(&node, &tar_gz(&[(".fazt-manifest.json", traversal.as_bytes())])).code(),
        "archive_bad_path"
    );
    assert_unchanged(&node);
}

// See: issue 17 (the deploy manifest's sizes were trusted: a 100,000-byte file was
// recorded as 3 bytes, and served with that Content-Length).
#[test]
fn manifest_sizes_must_match_the_content() {
    let node = node_with_blog();
    let big = vec![b'x'; 100_000];
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big));
    let lie = serde_json::json!({"files": [{"path": "index.html", "hash": hash, "size": 3}]}).to_string();
    let resp = post_archive(&node, &tar_gz(&[(".fazt-manifest.json", lie.as_bytes()), ("index.html", &big)]));
    assert_eq!((resp.status, resp.code().as_str()), (400, "manifest_mismatch"), "{}", resp.text());
    assert!(resp.text().contains("100000 bytes"), "{}", resp.text());
    assert_unchanged(&node);
    // Content the node already holds is checked against its stored size too.
    let honest =
        serde_json::json!({"files": [{"path": "big.html", "hash": hash, "size": 100_000}]}).to_string();
    let resp =
        post_archive(&node, &tar_gz(&[(".fazt-manifest.json", honest.as_bytes()), ("big.html", &big)]));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let reuse = serde_json::json!({"files": [{"path": "index.html", "hash": hash, "size": 3}]}).to_string();
    let resp = post_archive(&node, &tar_gz(&[(".fazt-manifest.json", reuse.as_bytes())]));
    assert_eq!((resp.status, resp.code().as_str()), (400, "manifest_mismatch"), "{}", resp.text());
    assert_eq!(node.get("blog.localhost", "/big.html").body.len(), 100_000);
}

#[test]
fn reserved_and_malformed_app_names_are_refused() {
    let node = node_with_blog();
    let auth = format!("Bearer {}", node.token);
    let archive = tar_gz(&[("index.html", b"x")]);
    for name in ["admin", "root", "404", "Bad", "-x", "a.b", "%00", &"a".repeat(64)] {
        let resp = node.request(
            "POST",
            "admin.localhost",
            &format!("/api/deploy?name={name}"),
            &[("Authorization", &auth)],
            &archive,
        );
        assert_eq!(resp.status, 400, "{name}");
        assert_eq!(resp.code(), "bad_app_name", "{name}");
    }
    assert_eq!(node.get("admin.localhost", "/").status, 200);
    assert!(node.get("admin.localhost", "/").text().contains("login-form"));
}

#[test]
fn full_quota_gives_storage_full_and_keeps_serving() {
    let mut node = node_with_blog();
    node.stop();
    let size = std::fs::metadata(node.data()).unwrap().len();
    node.cli_ok(&["server", "set-config", "storage.max_db_bytes", &(size + 200_000).to_string()]);
    node.spawn();
    let mut noise = vec![0u8; 2_000_000];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut noise);
    let resp = post_archive(&node, &tar_gz(&[("index.html", b"new"), ("noise.bin", &noise)]));
    assert_eq!((resp.status, resp.code().as_str()), (507, "storage_full"), "{}", resp.text());
    assert_unchanged(&node);
}

#[test]
fn locked_database_gives_db_busy_and_keeps_serving() {
    let node = node_with_blog();
    let holder = rusqlite::Connection::open(node.data()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let resp = post_archive(&node, &tar_gz(&[("index.html", b"new")]));
    assert_eq!((resp.status, resp.code().as_str()), (503, "db_busy"), "{}", resp.text());
    assert!(resp.header("retry-after").is_some());
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_unchanged(&node);
}
