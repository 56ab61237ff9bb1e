//! The node's life: init, restart, kill -9 in the middle of a deploy, backup and restore,
//! configuration, the systemd unit.

use crate::support::{fazt_bin, tar_gz, Node};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

#[test]
fn first_start_prints_login_and_restart_keeps_everything() {
    let mut node = Node::start();
    assert!(node.stdout.contains("dashboard: http://admin.localhost:"), "{}", node.stdout);
    // A port given for one run (here --port 0) is not saved into the CLI config.
    assert!(!node.client_config().exists());
    let password = node.password.clone().unwrap();
    assert!(password.len() >= 16, "a generated password, never a fixed default");
    assert_eq!(node.deploy_files("blog", &[("index.html", b"kept")]).status, 200);
    node.stop();
    node.spawn();
    assert!(!node.stdout.contains("First start"), "no new password on restart:\n{}", node.stdout);
    assert_eq!(node.get("blog.localhost", "/").text(), "kept");
    // A second node on the same data file is refused.
    let second = Command::new(fazt_bin())
        .args(["server", "start", "--listen", "127.0.0.1", "--port", "0", "--data"])
        .arg(node.data())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another fazt process"));
}

#[test]
fn kill_9_during_a_deploy_leaves_the_old_version_serving() {
    let mut node = Node::start();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"old version")]).status, 200);
    // A large compressible site keeps the node busy compressing inside the deploy
    // transaction, so the kill lands in the middle of it.
    let text: Vec<u8> =
        (0..6_000_000u32).map(|i| b"abcdefghij"[(i * 7 % 10) as usize] ^ (i % 3) as u8).collect();
    let archive = tar_gz(&[
        ("index.html", b"new version"),
        ("a.txt", &text),
        ("b.css", &text[1..]),
        ("c.js", &text[2..]),
    ]);
    let mut stream = node.begin_deploy("blog", archive.len());
    let wal = node.dir.path().join("data.db-wal");
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let before = wal_size();
    stream.write_all(&archive).unwrap();
    // SQLite spills a big transaction's pages into the WAL before it commits: once the
    // WAL has grown by a few MB, the deploy transaction is under way. Kill it then.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while wal_size() < before + 3_000_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    node.kill9();
    node.spawn();
    assert_eq!(node.get("blog.localhost", "/").text(), "old version");
    assert_eq!(node.integrity(), "ok");
    // And the node still deploys afterwards.
    assert_eq!(node.deploy_files("blog", &[("index.html", b"after")]).status, 200);
    assert_eq!(node.get("blog.localhost", "/").text(), "after");
}

#[test]
fn backup_while_serving_then_restore_serves_the_same() {
    let mut node = Node::start();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"backed up"), ("a.css", b"a{}")]).status, 200);
    let backup = node.dir.path().join("backup.db");
    let out = node.cli_ok(&["backup", "create", backup.to_str().unwrap()]);
    assert!(out.contains("backup written"), "{out}");
    assert!(
        !node.cli(&["backup", "create", backup.to_str().unwrap()]).status.success(),
        "no silent overwrite"
    );
    // Changes after the backup...
    assert_eq!(node.deploy_files("blog", &[("index.html", b"later")]).status, 200);
    // ...restore refuses while the node runs...
    let refused = node.cli(&["backup", "restore", backup.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another fazt process"));
    // ...and brings back exactly the backed-up state once it is stopped.
    node.stop();
    // A backup on read-only media restores too, and is never modified.
    let mut perms = std::fs::metadata(&backup).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&backup, perms).unwrap();
    let before = std::fs::read(&backup).unwrap();
    node.cli_ok(&["backup", "restore", backup.to_str().unwrap()]);
    assert_eq!(std::fs::read(&backup).unwrap(), before);
    node.spawn();
    assert_eq!(node.get("blog.localhost", "/").text(), "backed up");
    assert_eq!(node.get("blog.localhost", "/a.css").text(), "a{}");
    assert_eq!(node.integrity(), "ok");
}

#[test]
fn restore_of_a_bad_file_changes_nothing() {
    let mut node = Node::start();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"precious")]).status, 200);
    node.stop();
    let junk = node.dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not sqlite").unwrap();
    assert!(!node.cli(&["backup", "restore", junk.to_str().unwrap()]).status.success());
    let missing = node.dir.path().join("missing.db");
    assert!(!node.cli(&["backup", "restore", missing.to_str().unwrap()]).status.success());
    node.spawn();
    assert_eq!(node.get("blog.localhost", "/").text(), "precious");
}

#[test]
fn server_init_status_and_set_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.db");
    let run = |args: &[&str]| Command::new(fazt_bin()).args(args).env("FAZT_DATA", &data).output().unwrap();
    let bad = run(&["server", "init", "--domain", "not a domain"]);
    assert!(!bad.status.success());
    assert!(!data.exists(), "a refused init creates nothing");
    let long = "x".repeat(2000);
    let bad = run(&["server", "init", "--password", &long]);
    assert!(!bad.status.success());
    assert!(!data.exists(), "a refused password creates nothing");
    let ok = run(&["server", "init", "--domain", "Example.COM", "--port", "9999"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("admin password:") && text.contains("API token: fzt_"), "{text}");
    assert!(!run(&["server", "init"]).status.success(), "init never overwrites");
    let status = String::from_utf8_lossy(&run(&["server", "status"]).stdout).into_owned();
    assert!(
        status.contains("example.com") && status.contains("9999") && status.contains("not running"),
        "{status}"
    );
    for (key, value) in
        [("nope", "1"), ("port", "70000"), ("listen", "everywhere"), ("cache.max_bytes", "-1")]
    {
        let out = run(&["server", "set-config", "--", key, value]);
        assert!(!out.status.success(), "{key}={value}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1);
    }
    assert!(run(&["server", "set-config", "cache.max_bytes", "1000000"]).status.success());
    let status = String::from_utf8_lossy(&run(&["server", "status"]).stdout).into_owned();
    assert!(status.contains("1000000"), "{status}");
    let missing = Command::new(fazt_bin())
        .args(["server", "status", "--data", "/nonexistent/data.db"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("fazt server init"));
}

#[test]
fn service_install_writes_a_systemd_unit() {
    let dir = tempfile::tempdir().unwrap();
    let dry = Command::new(fazt_bin())
        .args(["service", "install", "--dry-run", "--binary", "/usr/local/bin/fazt"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("ExecStart=/usr/local/bin/fazt server start --data /var/lib/fazt/data.db"),
        "{text}"
    );
    assert!(text.contains("useradd --system"), "{text}");
    assert!(
        !std::path::Path::new("/etc/systemd/system/fazt.service").exists() || text.contains("would write")
    );

    let units = dir.path().join("units");
    let data = dir.path().join("var/fazt/data.db");
    let out = Command::new(fazt_bin())
        .args(["service", "install", "--no-create-user", "--user", "fazt", "--binary", "/opt/fazt/bin/fazt"])
        .arg("--unit-dir")
        .arg(&units)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unit = std::fs::read_to_string(units.join("fazt.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart=/opt/fazt/bin/fazt server start --data {}", data.display())));
    assert!(unit.contains("User=fazt") && unit.contains("Restart=on-failure"));
    assert!(unit.contains(&format!("ReadWritePaths={}", data.parent().unwrap().display())));
    assert!(data.parent().unwrap().is_dir());
    // See: issue 17 (no UMask in the unit; the data folder 0755).
    assert!(unit.contains("\nUMask=0077\n"), "{unit}");
    assert_eq!(mode(data.parent().unwrap()), 0o700);
    let relative = Command::new(fazt_bin())
        .args(["service", "install", "--dry-run", "--data", "data.db"])
        .output()
        .unwrap();
    assert!(!relative.status.success());
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

// See: issue 17 (data.db was created 0644: every local user could read the password
// hashes, sealed keys and every app's data).
#[test]
fn data_files_and_backups_are_owner_only() {
    let node = Node::start();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"x")]).status, 200);
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", node.data().display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let backup = node.dir.path().join("backup.db");
    node.cli_ok(&["backup", "create", backup.to_str().unwrap()]);
    assert_eq!(mode(&backup), 0o600);
}

/// An in-process node stops cleanly: its port closes, an idle keep-alive connection is
/// closed by the server (not left hanging), and the same data file serves again after
/// a restart in the same process, with what was deployed before.
#[test]
fn in_process_nodes_stop_cleanly_and_restart_on_the_same_data() {
    let mut node = Node::in_process();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"kept")]).status, 200);
    let mut idle = std::net::TcpStream::connect(node.addr).unwrap();
    idle.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let first = node.addr;
    node.stop();
    let mut rest = Vec::new();
    // EOF, not a timeout: the server closed the connection at shutdown.
    assert_eq!(std::io::Read::read_to_end(&mut idle, &mut rest).unwrap(), 0);
    assert!(std::net::TcpStream::connect(first).is_err(), "the listener is closed");
    for _ in 0..3 {
        node.spawn();
        assert_eq!(node.get("blog.localhost", "/").text(), "kept");
        node.stop();
    }
}
