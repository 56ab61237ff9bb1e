//! Hostile clients and hostile apps against the real binary: every phase of a
//! connection is timed, caps hold per client, idle connections make room for new
//! clients, request bodies are budgeted, the kernel's hooks are out of apps' reach,
//! memory outside the JavaScript heap is bounded, storage quotas and a full disk answer
//! `storage_full`, and password guessing is limited node-wide.
//!
//! Waits here are upper bounds for something that must happen (a close, an answer), never
//! speed thresholds: a slow machine passes, a node that never acts fails.

use crate::support::{parse_response, Node, Resp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// A TCP connection to `addr` from the loopback address `source` (127.0.0.2, ...), so
/// that one test can be several clients.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// True when the server closes `stream` (end of stream or reset) within `within`; what
/// it sends first (an HTTP/2 GOAWAY, an error page) is read and dropped.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Reads a whole answer from `stream` (the server closes after it, or the read times out).
fn read_answer(stream: &mut TcpStream) -> Resp {
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw, false)
}

fn deploy_js(node: &Node, app: &str, main: &str) {
    let resp = node.deploy_files(app, &[("api/main.js", main.as_bytes())]);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

const ECHO: &str = "module.exports = async (request) => ({ json: { bytes: request.body.length } });";

/// Bytes that do not compress (xorshift), for uploads that must really take room.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn a_stalled_request_body_gets_408_on_every_path() {
    let node = Node::in_process_with(&[("http.body_timeout_secs", "1")], None);
    deploy_js(&node, "echo", ECHO);
    let host = format!("echo.localhost:{}", node.addr.port());
    let admin = format!("admin.localhost:{}", node.addr.port());
    let auth = format!("Authorization: Bearer {}\r\n", node.token);
    for (host, path, extra) in [(&host, "/api/x", ""), (&admin, "/api/tokens", auth.as_str())] {
        let mut stream = TcpStream::connect(node.addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 100\r\n\r\n0123456789"
        )
        .unwrap();
        let resp = read_answer(&mut stream);
        assert_eq!((resp.status, resp.code().as_str()), (408, "body_timeout"), "{path}: {}", resp.text());
    }
    // The node is fine, and a body sent in time still arrives whole.
    let resp = node.request("POST", "echo.localhost", "/api/x", &[], &[b'a'; 5000]);
    assert_eq!(resp.json()["bytes"], 5000, "{}", resp.text());
}

#[test]
fn idle_http2_and_keep_alive_connections_are_closed() {
    let node = Node::in_process_with(&[("http.idle_timeout_secs", "1")], None);
    // h2c by prior knowledge: the preface and an empty SETTINGS frame, then nothing.
    let mut h2 = TcpStream::connect(node.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").unwrap();
    assert!(closed_by_server(&mut h2, Duration::from_secs(30)), "an idle HTTP/2 connection stays open");
    // HTTP/1.1 keep-alive: one answer, then silence.
    let mut h1 = TcpStream::connect(node.addr).unwrap();
    write!(h1, "GET / HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", node.addr.port()).unwrap();
    assert!(closed_by_server(&mut h1, Duration::from_secs(30)), "an idle keep-alive connection stays open");
    // A connection that never sends a byte is closed by the header timeout: on a node
    // where that is short (its default, 30 s, was most of this test's time) and the
    // idle timeout is its default, 60 s, longer than the wait, so only it can close it.
    let node = Node::in_process_with(&[("http.header_timeout_secs", "1")], None);
    let mut silent = TcpStream::connect(node.addr).unwrap();
    assert!(closed_by_server(&mut silent, Duration::from_secs(30)), "a silent connection stays open");
}

#[test]
fn one_client_cannot_take_the_slots_and_idle_connections_make_room() {
    let node = Node::in_process_with(
        &[("http.max_connections_per_client", "4"), ("http.max_connections", "12")],
        None,
    );
    let mut hostile: Vec<TcpStream> = (0..4).map(|_| connect_from("127.0.0.2", node.addr)).collect();
    // Accepted in order: wait until the node has seen the four (a request on the fifth
    // connection of another client is answered only after its accept).
    assert_eq!(node.get("localhost", "/").status, 200);
    let mut fifth = connect_from("127.0.0.2", node.addr);
    assert!(
        closed_by_server(&mut fifth, Duration::from_secs(30)),
        "a fifth connection from one client is kept"
    );
    // Another client is not affected.
    assert_eq!(node.get("localhost", "/").status, 200);
    // Fill every slot with idle connections of other clients...
    for source in ["127.0.0.3", "127.0.0.4"] {
        for _ in 0..4 {
            hostile.push(connect_from(source, node.addr));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // ...and a real client still gets its answer: the longest-idle connection (the
    // first one of 127.0.0.2) makes room.
    let resp = node.get("localhost", "/");
    assert_eq!(resp.status, 200);
    assert!(
        closed_by_server(&mut hostile[0], Duration::from_secs(30)),
        "the longest-idle connection was kept"
    );
    assert!(
        !closed_by_server(&mut hostile[11], Duration::from_millis(200)),
        "the newest idle one was closed"
    );
}

#[test]
fn request_bodies_over_the_node_budget_get_503_and_the_budget_comes_back() {
    let node = Node::in_process_with(&[("http.max_body_memory_bytes", "100000")], None);
    deploy_js(&node, "echo", ECHO);
    let big = vec![b'b'; 200_000];
    let resp = node.request("POST", "echo.localhost", "/api/x", &[], &big);
    assert_eq!((resp.status, resp.code().as_str()), (503, "busy"), "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("1"));
    for _ in 0..20 {
        let resp = node.request("POST", "echo.localhost", "/api/x", &[], &[b's'; 60_000]);
        assert_eq!(resp.json()["bytes"], 60_000, "the budget is given back after each request");
    }
}

const HIJACK: &str = r#"
module.exports = async function (request) {
  const p = request.url.pathname;
  if (p === '/api/look') {
    return { json: { hooks: Object.getOwnPropertyNames(globalThis).filter((k) => k.startsWith('__')) } };
  }
  if (p === '/api/hijack') {
    const spin = () => { for (;;) {} };
    for (const name of ['__fazt_reset_timers', '__fazt_next_timer', '__fazt_fire_timers', '__fazt_invoke', '__fazt_invoke_legacy', '__fazt_load_main']) {
      globalThis[name] = spin;
    }
    Array.prototype.filter = spin;
    Array.prototype.map = spin;
    Array.prototype.sort = spin;
    Math.min = spin;
    return 'hijacked';
  }
  if (p === '/api/timer') { await new Promise((resolve) => setTimeout(resolve, 5)); return 'timer fired'; }
  return 'still here';
};
"#;

#[test]
fn kernel_hooks_are_out_of_reach_and_a_hijacking_app_freezes_nothing() {
    // Inline runs on: a frozen run would have held an HTTP thread, and with it the node.
    let mut node = Node::start_with(&[("runtime.inline_ms", "50")], None);
    deploy_js(&node, "hijack", HIJACK);
    deploy_js(&node, "other", "module.exports = async () => 'other app';");
    node.cli_ok(&["app", "limits", "hijack", "--timeout-ms", "500"]);
    let look = node.get("hijack.localhost", "/api/look");
    assert_eq!(
        look.json()["hooks"],
        serde_json::json!([]),
        "kernel hooks visible to the app: {}",
        look.text()
    );
    assert_eq!(node.get("hijack.localhost", "/api/hijack").text(), "hijacked");
    for _ in 0..5 {
        // The app only hurts itself: its next run answers, a timer in its spoiled world
        // ends at its own deadline, and a fresh instance takes over.
        assert_eq!(node.get("hijack.localhost", "/api/again").text(), "still here");
        assert_eq!(node.get("other.localhost", "/api/x").text(), "other app");
        assert_eq!(node.get("admin.localhost", "/api/system/health").status, 200);
    }
    let spoiled = node.get("hijack.localhost", "/api/timer");
    assert!(matches!(spoiled.status, 200 | 504), "{} {}", spoiled.status, spoiled.text());
    assert_eq!(node.get("hijack.localhost", "/api/hijack").text(), "hijacked");
    assert_eq!(node.get("other.localhost", "/api/x").text(), "other app");
    // SIGTERM still stops the node.
    let mut child = node.child.take().unwrap();
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let mut stopped = false;
    for _ in 0..600 {
        if let Ok(Some(_)) = child.try_wait() {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !stopped {
        child.kill().ok();
    }
    assert!(stopped, "the node ignored SIGTERM");
}

const HOG: &str = r#"
module.exports = async function (request) {
  const p = request.url.pathname;
  if (p === '/api/spam') { const big = 'x'.repeat(1 << 20); for (let i = 0; i < 1000; i++) console.log(big); return 'logged'; }
  if (p === '/api/fill') { const v = 'y'.repeat((1 << 20) - 16); for (let i = 0; i < 12; i++) await fazt.storage.kv.set('big:' + i, v); return 'filled'; }
  if (p === '/api/list') { try { return { json: { n: (await fazt.storage.kv.list('big:')).length } }; } catch (e) { return { json: { error: e.message } }; } }
  if (p === '/api/few') { const all = await fazt.storage.kv.list('big:1'); return { json: { keys: all.map((e) => e.key), len: all[0].value.length } }; }
  if (p === '/api/quota') {
    const v = 'z'.repeat(100 * 1024);
    let count = 0;
    try { for (;;) { await fazt.storage.kv.set('q:' + count, v); count++; } } catch (e) { return { json: { count, error: e.message } }; }
  }
  return 'hog';
};
"#;

/// The node's peak resident memory, in bytes.
fn peak_rss(node: &Node) -> u64 {
    let pid = node.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn memory_an_app_makes_outside_its_heap_is_bounded() {
    let node = Node::start();
    deploy_js(&node, "hog", HOG);
    node.cli_ok(&["app", "limits", "hog", "--memory-mb", "16"]);
    assert_eq!(node.get("hog.localhost", "/api/spam").text(), "logged");
    let logs = node.cli_ok(&["app", "logs", "hog", "--lines", "3"]);
    assert!(logs.contains("more log lines of this invocation were dropped"), "{logs}");
    assert!(logs.contains("[cut, 1048576 characters in all]"), "{}", &logs[logs.len().saturating_sub(300)..]);
    assert_eq!(node.get("hog.localhost", "/api/fill").text(), "filled");
    let listed = node.get("hog.localhost", "/api/list").json();
    assert!(listed["error"].as_str().unwrap_or("").contains("list a narrower prefix"), "{listed}");
    // A listing within the cap still works: big:1, big:10, big:11.
    let few = node.get("hog.localhost", "/api/few").json();
    assert_eq!(few["keys"], serde_json::json!(["big:1", "big:10", "big:11"]), "{few}");
    assert_eq!(few["len"], (1 << 20) - 16);
    // 1,000 lines of 1 MB and a 12 MB listing pushed the node past 800 MB before.
    let peak = peak_rss(&node);
    assert!(peak < 300 << 20, "peak RSS {} MB", peak >> 20);
}

#[test]
fn a_storage_quota_answers_storage_full_and_keeps_what_fits() {
    let node = Node::in_process();
    deploy_js(&node, "hog", HOG);
    node.cli_ok(&["app", "limits", "hog", "--storage-mb", "1"]);
    let quota = node.get("hog.localhost", "/api/quota").json();
    let error = quota["error"].as_str().unwrap_or("");
    assert!(error.starts_with("storage_full:"), "{quota}");
    // Each entry is 102,405 bytes (key, and the value's JSON text): ten fit in 1 MiB.
    assert_eq!(quota["count"], 10, "{quota}");
    let limits = node.cli_ok(&["app", "limits", "hog"]);
    let used: u64 =
        limits.lines().find_map(|l| l.strip_prefix("storage_used_bytes")).unwrap().trim().parse().unwrap();
    assert!(used <= 1 << 20 && used > 900_000, "{limits}");
    // Raising the quota lets the app write again.
    node.cli_ok(&["app", "limits", "hog", "--storage-mb", "2"]);
    let quota = node.get("hog.localhost", "/api/quota").json();
    assert_eq!(quota["count"], 20, "{quota}");
}

/// A small tmpfs under a node's data folder, for a disk that fills; unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Moves `dir`'s files onto a fresh `size` tmpfs mounted over `dir`.
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        let files: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root (the tests run as root)");
        for (path, bytes) in files {
            std::fs::write(path, bytes).unwrap();
        }
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_reported_as_such_by_the_api_and_the_cli() {
    let mut node = Node::init_with(&[]);
    let _disk = SmallDisk::mount(node.dir.path(), "48m");
    node.spawn();
    assert_eq!(node.deploy_files("small", &[("index.html", b"<h1>small</h1>")]).status, 200);

    // The CLI, with a file larger than the disk: a clear "disk is full", not "cannot reach".
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "big").unwrap();
    std::fs::write(site.path().join("noise.bin"), noise(40 << 20, 7)).unwrap();
    let out = node.cli(&["deploy", site.path().to_str().unwrap(), "--name", "big"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("disk is full") && stderr.contains("storage_full"), "{stderr}");
    assert!(!stderr.contains("cannot reach"), "{stderr}");

    // An upload of unknown length (chunked) fills the disk while spooling.
    let mut stream = TcpStream::connect(node.addr).unwrap();
    write!(
        stream,
        "POST /api/deploy?name=big HTTP/1.1\r\nHost: admin.localhost\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        node.token
    )
    .unwrap();
    let chunk = noise(1 << 20, 11);
    for _ in 0..60 {
        if write!(stream, "{:x}\r\n", chunk.len()).is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let resp = read_answer(&mut stream);
    assert_eq!((resp.status, resp.code().as_str()), (507, "storage_full"), "{}", resp.text());

    // Nothing half-done: the node serves, the small site is whole, the database is sound.
    assert_eq!(node.get("small.localhost", "/").text(), "<h1>small</h1>");
    assert_eq!(node.get("big.localhost", "/").status, 404);
    assert_eq!(node.integrity(), "ok");
    node.stop();
}

#[test]
fn password_guessing_from_many_addresses_shares_one_budget() {
    let node = Node::in_process();
    let addr = node.addr;
    let guesses: Vec<_> = (10..70)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = connect_from(&format!("127.0.0.{i}"), addr);
                let body = r#"{"password":"wrong guess"}"#;
                write!(
                    stream,
                    "POST /api/login HTTP/1.1\r\nHost: admin.localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                read_answer(&mut stream).status
            })
        })
        .collect();
    let statuses: Vec<u16> = guesses.into_iter().map(|t| t.join().unwrap()).collect();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(checked + limited, 60, "{statuses:?}");
    // 60 addresses would get 5 tries each; together they get the node-wide burst (30)
    // plus what it earns back while they run (one per 2 s).
    assert!(limited >= 20, "{checked} checked, {limited} refused");
    // The admin's token keeps working meanwhile.
    assert_eq!(node.api("GET", "/api/apps", None).status, 200);
}

#[test]
fn files_larger_than_the_cache_are_streamed_whole_in_ranges_and_in_bounded_memory() {
    let node = Node::start_with(&[("cache.max_file_bytes", "65536")], None);
    let big = noise(24 << 20, 3);
    // Hex of noise: compresses to about half, so its gzip variant is over the cache too.
    let text = hex::encode(noise(1 << 20, 5)).into_bytes();
    let resp = node.deploy_files("files", &[("big.bin", &big), ("big.txt", &text), ("index.html", b"hi")]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let before = peak_rss(&node);
    let addr = node.addr;
    let downloads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                crate::support::raw_request(addr, "GET", "files.localhost", "/big.bin", &[], b"")
            })
        })
        .collect();
    for download in downloads {
        let resp = download.join().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), big.len());
        assert!(resp.body == big, "a streamed body differs from the file");
    }
    // Eight downloads of 24 MB held whole would be 192 MB; streamed, a few chunks each.
    let grew = peak_rss(&node).saturating_sub(before);
    assert!(grew < 64 << 20, "peak RSS grew by {} MB", grew >> 20);

    // Ranges and HEAD on a streamed file.
    let part = node.request("GET", "files.localhost", "/big.bin", &[("Range", "bytes=1000000-1300000")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some(format!("bytes 1000000-1300000/{}", big.len()).as_str()));
    assert!(part.body == big[1_000_000..=1_300_000]);
    let tail = node.request("GET", "files.localhost", "/big.bin", &[("Range", "bytes=-10")], b"");
    assert!(tail.body == big[big.len() - 10..]);
    let beyond = node.request("GET", "files.localhost", "/big.bin", &[("Range", "bytes=999999999-")], b"");
    assert_eq!(beyond.status, 416);
    let head = node.request("HEAD", "files.localhost", "/big.bin", &[], b"");
    assert_eq!((head.status, head.header("content-length")), (200, Some(big.len().to_string().as_str())));
    // A compressed variant larger than the cache streams too, and decodes to the file.
    let gz = node.request("GET", "files.localhost", "/big.txt", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut plain).unwrap();
    assert!(plain == text, "the gzip variant decodes to other bytes");
}

#[test]
fn a_nearly_full_database_is_an_event() {
    let mut node = Node::in_process();
    node.stop();
    let size = std::fs::metadata(node.data()).unwrap().len();
    // 95 % of the cap is taken already: the first look at start crosses the line.
    node.cli_ok(&["server", "set-config", "storage.max_db_bytes", &(size + size / 19).to_string()]);
    node.spawn();
    let mut seen = None;
    for _ in 0..100 {
        let page = node.api("GET", "/api/events?since=0&type=storage", None).json();
        if let Some(event) = page["events"].as_array().and_then(|e| e.first()).cloned() {
            seen = Some(event);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let event = seen.expect("no storage.near_full event within 10 s of start");
    assert_eq!(event["type"], "storage.near_full", "{event}");
    assert!(event["data"]["db_cap_bytes"].as_u64().unwrap() > 0, "{event}");
    assert!(event["data"]["disk_total_bytes"].as_u64().unwrap() > 0, "{event}");
}
