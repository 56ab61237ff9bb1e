//! The OS surface: `fazt proc status|stop|restart`, `fazt fs ls`, `fazt storage
//! status|migrate`, including hostile input (unknown apps, `..`, files that are not
//! SQLite, schemas from a newer fazt) that must get a clear error and change nothing.

use crate::support::{fazt_bin, Node};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// Runs fazt with no environment pointing at a node.
fn fazt(args: &[&str]) -> Output {
    Command::new(fazt_bin())
        .args(args)
        .env_remove("FAZT_DATA")
        .env_remove("FAZT_SERVER")
        .env_remove("FAZT_TOKEN")
        .env_remove("FAZT_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit status 2 and one `fazt:` line on stderr containing `needle`.
fn assert_refused(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
    assert!(stderr(out).contains(needle), "expected '{needle}' in: {}", stderr(out));
    assert!(stderr(out).lines().any(|l| l.starts_with("fazt: ")), "{}", stderr(out));
}

/// The bytes and modification time of a file, and which `-wal`/`-shm`/`.lock` exist.
fn snapshot(path: &Path) -> (Vec<u8>, SystemTime, Vec<bool>) {
    let extra =
        ["-wal", "-shm", ".lock"].iter().map(|s| Path::new(&format!("{}{s}", path.display())).exists());
    (std::fs::read(path).unwrap(), std::fs::metadata(path).unwrap().modified().unwrap(), extra.collect())
}

#[test]
fn proc_status_stop_and_restart() {
    let mut node = Node::start();
    let pid = node.child.as_ref().unwrap().id();
    let data = node.data();
    let data = data.to_str().unwrap();

    let text = node.cli_ok(&["proc", "status"]);
    assert!(text.contains(&format!("node:     running, pid {pid}")), "{text}");
    assert!(text.contains(&format!("http:     {}", node.addr)), "{text}");
    assert!(text.contains("answers:  yes, http://admin.localhost:"), "{text}");
    assert!(text.contains(" resident, ") && text.contains(" threads"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&node.cli_ok(&["proc", "status", "--json"])).unwrap();
    assert_eq!(json["running"], true);
    assert_eq!(json["pid"], pid);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["answering"], true);
    assert_eq!(json["http"], node.addr.to_string());
    assert!(json["rss_bytes"].as_u64().unwrap() > 1_000_000, "{json}");
    assert!(json["threads"].as_u64().unwrap() >= 2, "{json}");
    assert!(json["uptime_secs"].as_u64().unwrap() < 600, "{json}");

    // Not under systemd: restart changes nothing and says what to run.
    let restart = fazt(&["proc", "restart", "--data", data]);
    assert_refused(&restart, "was not started by systemd");
    assert!(stderr(&restart).contains("fazt proc stop") && stderr(&restart).contains("server start"));
    assert!(
        node.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "restart must not stop a node it cannot start"
    );

    let stop = fazt(&["proc", "stop", "--data", data, "--timeout", "30"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(stdout(&stop).contains(&format!("stopped the node on {data} (pid {pid})")), "{}", stdout(&stop));
    let mut child = node.child.take().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");

    assert!(stdout(&fazt(&["proc", "status", "--data", data])).contains("node:     not running"));
    assert_refused(&fazt(&["proc", "stop", "--data", data]), "no node is running on");
    assert_refused(&fazt(&["proc", "restart", "--data", data]), "no node is running on");
    assert_refused(&fazt(&["proc", "status", "--data", "/nonexistent/data.db"]), "no database at");
}

#[test]
fn proc_status_names_a_foreign_lock_holder_and_migrate_refuses_it() {
    let node = Node::init_with(&[]);
    let data = node.data();
    let lock = format!("{}.lock", data.display());
    // Someone else (not a node, wrote no pid) holds the lock: /proc/locks names it.
    let mut holder = Command::new("flock").args(["-o", &lock, "sleep", "60"]).spawn().expect("flock(1)");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let json: serde_json::Value = serde_json::from_str(&stdout(&fazt(&[
            "proc",
            "status",
            "--json",
            "--data",
            data.to_str().unwrap(),
        ])))
        .unwrap();
        if json["running"] == true || std::time::Instant::now() > deadline {
            break json;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["pid"], holder.id(), "{status}");
    assert_eq!(status["answering"], false);

    // A pending migration (the last one undone), which migrate must not apply under a holder.
    {
        let conn = rusqlite::Connection::open(&data).unwrap();
        conn.execute_batch("DELETE FROM schema_migrations WHERE version = 9; DROP TABLE events;").unwrap();
    }
    let before = snapshot(&data);
    assert_refused(&fazt(&["storage", "migrate", "--data", data.to_str().unwrap()]), "stop it first");
    assert_eq!(snapshot(&data), before);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let applied = fazt(&["storage", "migrate", "--data", data.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert!(stdout(&applied).contains("applied 1 migration"), "{}", stdout(&applied));
}

#[test]
fn fs_ls_through_the_api_and_from_the_data_file() {
    let mut node = Node::start();
    let files: &[(&str, &[u8])] = &[
        ("index.html", b"<h1>hi</h1>"),
        ("assets/app.css", b"body { color: red }"),
        ("assets/img/logo.svg", b"<svg/>"),
        ("docs/index.html", b"docs"),
    ];
    assert_eq!(node.deploy_files("blog", files).status, 200);

    let all = node.cli_ok(&["fs", "ls", "blog"]);
    for (path, _) in files {
        assert!(all.contains(path), "{path} in {all}");
    }
    assert!(all.contains("4 files, "), "{all}");
    assert!(all.contains("text/css"), "{all}");
    let css_hash = hex_sha256(b"body { color: red }");
    assert!(all.contains(&css_hash[..12]), "{all}");

    let assets = node.cli_ok(&["fs", "ls", "blog", "assets"]);
    assert!(assets.contains("assets/app.css") && assets.contains("assets/img/logo.svg"), "{assets}");
    assert!(!assets.contains("index.html") && assets.contains("2 files"), "{assets}");
    let one = node.cli_ok(&["fs", "ls", "blog", "/assets/app.css"]);
    assert!(one.contains("1 file, 19 B"), "{one}");
    let json: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["fs", "ls", "blog", "docs", "--json"])).unwrap();
    assert_eq!(json[0]["path"], "docs/index.html");
    assert_eq!(json[0]["hash"], hex_sha256(b"docs"));
    assert_eq!(json[0]["size"], 4);

    assert_refused(&node.cli(&["fs", "ls", "nope"]), "no app 'nope'");
    assert_refused(&node.cli(&["fs", "ls", "blog", "../../etc/passwd"]), "invalid path");
    assert_refused(&node.cli(&["fs", "ls", "blog", "assets/.."]), "invalid path");
    assert_refused(&node.cli(&["fs", "ls", "blog", "asset"]), "no file or folder 'asset' in app 'blog'");

    // From the data file: while the node runs (read-only) and once it is stopped.
    let data = node.data();
    let data = data.to_str().unwrap();
    let offline = fazt(&["fs", "ls", "blog", "--data", data]);
    assert!(offline.status.success(), "{}", stderr(&offline));
    assert_eq!(stdout(&offline), all);
    node.stop();
    let before = snapshot(node.data().as_path());
    assert_eq!(stdout(&fazt(&["fs", "ls", "blog", "assets", "--data", data])), assets);
    assert_refused(&fazt(&["fs", "ls", "nope", "--data", data]), "no app 'nope'");
    assert_refused(&fazt(&["fs", "ls", "blog", "a/../../b", "--data", data]), "invalid path");
    assert_eq!(snapshot(node.data().as_path()).0, before.0);
    let junk = node.dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database, just some text that is long enough").unwrap();
    assert_refused(&fazt(&["fs", "ls", "blog", "--data", junk.to_str().unwrap()]), "not a SQLite");
    assert_eq!(std::fs::read(&junk).unwrap(), b"this is not a database, just some text that is long enough");
}

#[test]
fn storage_status_and_migrate_dry_run_change_nothing() {
    let node = Node::init_with(&[]);
    let data = node.data();
    let path = data.to_str().unwrap();
    let text = stdout(&fazt(&["storage", "status", "--data", path]));
    assert!(text.contains("up to date"), "{text}");
    assert!(text.contains("node:     not running"), "{text}");
    for table in ["blobs", "files", "kv", "app_logs", "events"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(table)), "{table} in {text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&fazt(&["storage", "status", "--json", "--data", path]))).unwrap();
    assert_eq!(json["schema_version"], json["latest_version"]);
    assert_eq!(json["pending"], serde_json::json!([]));
    assert!(json["page_size"].as_u64().unwrap() >= 512);
    assert!(json["tables"][0]["rows"].as_u64().unwrap() >= 3, "the system apps' blobs: {json}");
    assert!(stdout(&fazt(&["storage", "migrate", "--dry-run", "--data", path])).contains("nothing to do"));

    // Undo the last migration: it is pending now.
    {
        let conn = rusqlite::Connection::open(&data).unwrap();
        conn.execute_batch("DELETE FROM schema_migrations WHERE version = 9; DROP TABLE events;").unwrap();
    }
    let before = snapshot(&data);
    std::thread::sleep(Duration::from_millis(20));
    let dry = fazt(&["storage", "migrate", "--dry-run", "--data", path]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("would apply 1 migration"), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("9  events: the kernel event bus"), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("nothing was changed"));
    let status = stdout(&fazt(&["storage", "status", "--data", path]));
    assert!(
        status.contains("(1 pending migration; this fazt knows 9)") || status.contains("1 pending migration"),
        "{status}"
    );
    assert!(!status.lines().any(|l| l.trim_start().starts_with("events")), "{status}");
    assert_eq!(
        snapshot(&data),
        before,
        "status and --dry-run change no byte, no mtime, and leave no -wal/-shm"
    );

    let applied = fazt(&["storage", "migrate", "--data", path]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert!(stdout(&applied).contains("applied 1 migration"), "{}", stdout(&applied));
    assert!(stdout(&fazt(&["storage", "status", "--data", path])).contains("up to date"));

    // A schema from a newer fazt: shown, never migrated.
    {
        let conn = rusqlite::Connection::open(&data).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 0)", []).unwrap();
    }
    let before = snapshot(&data);
    let status = fazt(&["storage", "status", "--data", path]);
    assert!(stdout(&status).contains("version 999, newer than this fazt knows"), "{}", stdout(&status));
    assert_refused(&fazt(&["storage", "migrate", "--dry-run", "--data", path]), "schema version 999, newer");
    assert_refused(&fazt(&["storage", "migrate", "--data", path]), "schema version 999, newer");
    assert_eq!(snapshot(&data).0, before.0);

    // Not SQLite, another program's SQLite, nothing at all.
    let junk = node.dir.path().join("junk.db");
    std::fs::write(&junk, b"SQLite? no. Just text pretending.").unwrap();
    let junk_path = junk.to_str().unwrap();
    for args in [&["storage", "status"][..], &["storage", "migrate", "--dry-run"], &["storage", "migrate"]] {
        let mut args = args.to_vec();
        args.extend(["--data", junk_path]);
        assert_refused(&fazt(&args), "is not a SQLite database");
    }
    assert_eq!(std::fs::read(&junk).unwrap(), b"SQLite? no. Just text pretending.");
    assert!(!Path::new(&format!("{junk_path}.lock")).exists());
    let other = node.dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE notes(x)").unwrap();
    let before = std::fs::read(&other).unwrap();
    assert_refused(
        &fazt(&["storage", "migrate", "--data", other.to_str().unwrap()]),
        "is not a fazt database",
    );
    assert_eq!(std::fs::read(&other).unwrap(), before);
    let missing = node.dir.path().join("missing.db");
    assert_refused(&fazt(&["storage", "migrate", "--data", missing.to_str().unwrap()]), "no database at");
    assert!(!missing.exists());
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
