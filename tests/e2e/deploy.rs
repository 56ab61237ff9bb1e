//! Deploying through the CLI: publish, redeploy only what changed, list, inspect, delete.

use crate::support::{write_site, Node};

#[test]
fn cli_deploy_serves_then_redeploy_uploads_only_changes() {
    let node = Node::in_process();
    let site = node.dir.path().join("my-site");
    write_site(
        &site,
        &[
            ("index.html", b"v1 home"),
            ("css/site.css", b"body{}"),
            ("img/logo.bin", &[9u8; 5000]),
            (".git/HEAD", b"ref"),
            (".env", b"SECRET=1"),
            (".well-known/security.txt", b"Contact: me"),
        ],
    );
    let out = node.cli_ok(&["deploy", site.to_str().unwrap(), "--name", "blog"]);
    assert!(out.contains("deployed blog: 4 files"), "{out}");
    assert!(out.contains("(4 new"), "{out}");
    assert_eq!(node.get("blog.localhost", "/.env").status, 404, "dot files are not published by default");
    assert_eq!(node.get("blog.localhost", "/.well-known/security.txt").text(), "Contact: me");
    assert!(out.contains(&format!("http://blog.localhost:{}/", node.addr.port())), "{out}");
    assert_eq!(node.get("blog.localhost", "/").text(), "v1 home");
    assert_eq!(node.get("blog.localhost", "/.git/HEAD").status, 404, ".git must not be published");

    write_site(&site, &[("index.html", b"v2 home")]);
    let out = node.cli_ok(&["deploy", site.to_str().unwrap(), "--name", "blog"]);
    assert!(out.contains("(1 new"), "only the changed file is uploaded: {out}");
    assert_eq!(node.get("blog.localhost", "/").text(), "v2 home");
    assert_eq!(node.get("blog.localhost", "/img/logo.bin").body, vec![9u8; 5000]);

    // Removing a file locally removes it from the site.
    std::fs::remove_file(site.join("css/site.css")).unwrap();
    node.cli_ok(&["deploy", site.to_str().unwrap(), "--name", "blog"]);
    assert_eq!(node.get("blog.localhost", "/css/site.css").status, 404);
}

#[test]
fn deploy_of_many_files_checks_hashes_in_chunks() {
    let node = Node::in_process();
    let site = node.dir.path().join("many");
    let files: Vec<(String, Vec<u8>)> =
        (0..4500).map(|i| (format!("f/{i}.txt"), format!("file {i}").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    write_site(&site, &refs);
    let out = node.cli_ok(&["deploy", site.to_str().unwrap(), "--name", "many"]);
    assert!(out.contains("deployed many: 4500 files"), "{out}");
    assert_eq!(node.get("many.localhost", "/f/4499.txt").text(), "file 4499");
}

#[test]
fn app_list_info_delete() {
    let node = Node::in_process();
    assert_eq!(node.deploy_files("shop", &[("index.html", b"shop")]).status, 200);
    let list = node.cli_ok(&["app", "list"]);
    assert!(list.contains("shop"), "{list}");
    assert!(list.contains("admin (system)"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&node.cli_ok(&["app", "list", "--json"])).unwrap();
    let shop = json.as_array().unwrap().iter().find(|a| a["name"] == "shop").unwrap().clone();
    assert_eq!(shop["file_count"], 1);
    // A UUIDv7, also in the table.
    let id = shop["id"].as_str().unwrap();
    assert_eq!((id.len(), &id[14..15]), (36, "7"), "{id}");
    assert!(list.lines().any(|l| l.starts_with("shop ") && l.contains(id)), "{list}");
    let info = node.cli_ok(&["app", "info", "shop"]);
    assert!(info.contains("index.html"), "{info}");
    // By id too.
    node.cli_ok(&["app", "info", shop["id"].as_str().unwrap()]);

    let refused = node.cli(&["app", "delete", "shop"]);
    assert!(!refused.status.success(), "delete without --yes and without a terminal must refuse");
    node.cli_ok(&["app", "delete", "shop", "--yes"]);
    assert_eq!(node.get("shop.localhost", "/").status, 404);
    let system = node.cli(&["app", "delete", "admin", "--yes"]);
    assert!(!system.status.success());
    assert!(String::from_utf8_lossy(&system.stderr).contains("system_app"));
    // The name is free again.
    assert_eq!(node.deploy_files("shop", &[("index.html", b"shop 2")]).status, 200);
    assert_eq!(node.get("shop.localhost", "/").text(), "shop 2");
}

#[test]
fn cli_errors_are_one_line_and_non_zero() {
    let node = Node::in_process();
    let site = node.dir.path().join("s");
    write_site(&site, &[("index.html", b"x")]);
    let bad = std::process::Command::new(crate::support::fazt_bin())
        .args([
            "deploy",
            site.to_str().unwrap(),
            "--name",
            "blog",
            "--token",
            "fzt_wrong",
            "--server",
            &node.admin_url(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("fazt: ") && err.contains("invalid_token") && err.trim().lines().count() == 1,
        "{err}"
    );
    let bad_name = node.cli(&["deploy", site.to_str().unwrap(), "--name", "Bad_Name"]);
    assert!(!bad_name.status.success());
    let unreachable = std::process::Command::new(crate::support::fazt_bin())
        .args(["app", "list", "--token", "fzt_x", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the node"));
}

#[test]
fn redeploy_is_atomic_for_concurrent_readers() {
    let node = Node::in_process();
    let version = |v: &str| {
        vec![
            ("index.html", v.as_bytes().to_vec()),
            ("a.txt", v.as_bytes().to_vec()),
            ("b.txt", v.as_bytes().to_vec()),
        ]
    };
    let deploy = |v: &str| {
        let files = version(v);
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (*p, d.as_slice())).collect();
        assert_eq!(node.deploy_files("atomic", &refs).status, 200);
    };
    deploy("v0");
    let addr = node.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut checks = 0;
            // Every file must come from one and the same version per site snapshot; a
            // reader sees versions only move forward.
            let mut last = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && checks < 2000 {
                let host = format!("atomic.localhost:{}", addr.port());
                let body = crate::support::raw_request(addr, "GET", &host, "/a.txt", &[], b"").text();
                let n: u32 = body
                    .trim_start_matches('v')
                    .parse()
                    .unwrap_or_else(|_| panic!("mixed or broken body {body:?}"));
                assert!(n >= last, "went back from v{last} to v{n}");
                last = n;
                checks += 1;
            }
            checks
        })
    };
    for i in 1..=10 {
        deploy(&format!("v{i}"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(node.get("atomic.localhost", "/b.txt").text(), "v10");
}

// See: issue 17 (`fazt deploy` followed symlinks out of the site folder, so it could
// publish `~/.aws/credentials`).
#[test]
fn deploy_skips_symlinks_that_leave_the_folder() {
    use std::os::unix::fs::symlink;
    let node = Node::in_process();
    let outside = node.dir.path().join("home");
    write_site(&outside, &[(".aws/credentials", b"aws_secret_access_key=SECRET"), ("notes.txt", b"private")]);
    let site = node.dir.path().join("site");
    write_site(&site, &[("index.html", b"home"), ("assets/logo.txt", b"logo")]);
    symlink(outside.join(".aws/credentials"), site.join("credentials.txt")).unwrap();
    symlink(&outside, site.join("backup")).unwrap();
    symlink("../../home/notes.txt", site.join("assets/notes.txt")).unwrap();
    symlink(site.join("nowhere"), site.join("dangling.txt")).unwrap();
    // Links that stay inside the folder are followed.
    symlink("index.html", site.join("latest.html")).unwrap();
    symlink("assets", site.join("static")).unwrap();

    let out = node.cli(&["deploy", site.to_str().unwrap(), "--name", "blog"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for name in ["credentials.txt", "backup", "assets/notes.txt", "dangling.txt"] {
        assert!(stderr.contains(&format!("warning: skipped {name}: a symbolic link")), "{name}: {stderr}");
    }
    // (`static/notes.txt` is the outside link again, seen through the inside one.)
    assert!(!stderr.contains("latest.html") && !stderr.contains("skipped static:"), "{stderr}");
    for path in ["/credentials.txt", "/backup/.aws/credentials", "/backup/notes.txt", "/assets/notes.txt"] {
        assert_eq!(node.get("blog.localhost", path).status, 404, "{path}");
    }
    let files = node.api("GET", "/api/apps/blog/files", None).text();
    assert!(!files.contains("SECRET") && !files.contains("credentials"), "{files}");
    assert_eq!(node.get("blog.localhost", "/latest.html").text(), "home");
    assert_eq!(node.get("blog.localhost", "/static/logo.txt").text(), "logo");
}
