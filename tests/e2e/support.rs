//! The harness: a running node in a temp folder, a raw HTTP/1.1 client, CLI runners.
//!
//! A node runs either inside the test process ([`Node::in_process`]: `fazt::serve` over
//! `Hal::fake()`, on its own threads, the admin token taken from the bootstrap) or as
//! the `fazt` binary ([`Node::start`]: for what needs a real process, such as signals,
//! `kill -9`, the banner, offline CLI commands or the real mDNS). Both answer the same
//! request helpers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The fazt binary under test.
pub fn fazt_bin() -> &'static str {
    env!("CARGO_BIN_EXE_fazt")
}

/// A node inside the test process: stopping it closes `stop` and waits for the thread.
struct InProcess {
    stop: async_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Stops the node (a clean shutdown) and waits until its threads are gone.
    fn shut_down(&mut self) {
        self.stop.close();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the in-process node's thread panicked");
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.close();
        if let Some(thread) = self.thread.take() {
            // A panic there must not turn a failing test's drop into an abort.
            let _ = thread.join();
        }
    }
}

/// A node (a process, or inside this one) with its own data folder.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    /// The HTTPS address of an in-process node, when HTTPS is on.
    pub https_addr: Option<SocketAddr>,
    /// Set for a node running inside the test process.
    in_process: Option<InProcess>,
    /// Whether [`Node::spawn`] starts the node inside the test process.
    in_process_mode: bool,
    /// The board clock of the next in-process start is this far off (ms).
    in_process_clock_ms: Option<i64>,
    pub addr: SocketAddr,
    pub password: Option<String>,
    pub token: String,
    pub stdout: String,
    /// `--clock-offset-ms` for the next spawn.
    clock_offset_ms: Option<i64>,
    /// Extra arguments for `server start` (e.g. `--https-port 0`).
    pub extra_args: Vec<String>,
    /// Where the node's log (stderr) goes, when not to the test's stderr.
    pub log: Option<PathBuf>,
    /// The HTTP port to ask for (0: any free one).
    pub port: u16,
}

impl Node {
    /// A node over the data folder `dir` that is not running yet (a binary node unless
    /// the caller sets the in-process fields).
    fn unstarted(dir: tempfile::TempDir, password: Option<String>, token: String) -> Node {
        Node {
            dir,
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            password,
            token,
            stdout: String::new(),
            clock_offset_ms: None,
            extra_args: Vec::new(),
            log: None,
            port: 0,
            https_addr: None,
            in_process: None,
            in_process_mode: false,
            in_process_clock_ms: None,
        }
    }

    /// Starts a fresh node (first start: generated password and token).
    pub fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node::unstarted(dir, None, String::new());
        node.first_start();
        node
    }

    /// Starts the binary on a data file with no admin yet, and takes the API token the
    /// first start prints.
    pub fn first_start(&mut self) {
        self.spawn();
        self.token = self
            .stdout
            .lines()
            .find_map(|l| l.split("API token for the CLI: ").nth(1))
            .expect("first start prints an API token")
            .trim()
            .to_string();
    }

    /// Starts a node whose data file was made with `server init` and then given
    /// `settings` (config keys), with a board clock `clock_offset_ms` off.
    pub fn start_with(settings: &[(&str, &str)], clock_offset_ms: Option<i64>) -> Node {
        let mut node = Node::init_with(settings);
        node.clock_offset_ms = clock_offset_ms;
        node.spawn();
        node
    }

    /// A node whose data file was made with `server init` and then given `settings`
    /// (config keys); not started yet.
    pub fn init_with(settings: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.db");
        let init = Command::new(fazt_bin())
            .args(["server", "init", "--password", "harness-password-1", "--data"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let token = String::from_utf8_lossy(&init.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("API token: "))
            .expect("init prints an API token")
            .trim()
            .to_string();
        for (key, value) in settings {
            let out = Command::new(fazt_bin())
                .args(["config", "set", key, value, "--data"])
                .arg(&data)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        Node::unstarted(dir, Some("harness-password-1".into()), token)
    }

    /// Starts a fresh node inside the test process (first start: generated password
    /// and token, taken from the bootstrap).
    pub fn in_process() -> Node {
        Node::in_process_at(tempfile::tempdir().unwrap(), &[], None, None)
    }

    /// Starts a node inside the test process whose data file was given `settings`
    /// (config keys) and the admin password `harness-password-1` before its first
    /// start, with a board clock `clock_offset_ms` off.
    pub fn in_process_with(settings: &[(&str, &str)], clock_offset_ms: Option<i64>) -> Node {
        let password = Some("harness-password-1".to_string());
        Node::in_process_at(tempfile::tempdir().unwrap(), settings, password, clock_offset_ms)
    }

    fn in_process_at(
        dir: tempfile::TempDir,
        settings: &[(&str, &str)],
        password: Option<String>,
        clock_offset_ms: Option<i64>,
    ) -> Node {
        // FAZT_E2E_PROCESS=1 runs these tests against the binary instead, to compare.
        if std::env::var_os("FAZT_E2E_PROCESS").is_some() {
            if password.is_none() {
                return Node::start();
            }
            let mut node = Node::init_with(settings);
            node.clock_offset_ms = clock_offset_ms;
            node.extra_args = vec!["--https-port".into(), "0".into()];
            node.spawn();
            return node;
        }
        let mut node = Node::unstarted(dir, password, String::new());
        node.in_process_mode = true;
        node.in_process_clock_ms = clock_offset_ms;
        let storage = fazt::storage::Storage::open(&node.data()).unwrap();
        // The default `runtime.workers` (one per core, plus one): with fewer, the tests
        // whose handlers spin until their time limit wait for a free worker.
        for (key, value) in settings {
            fazt::config::set(&storage, key, value).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        }
        drop(storage);
        node.spawn_in_process();
        node
    }

    /// Starts the node inside the test process on the existing data folder (again
    /// after [`Node::stop`]), and waits until it serves.
    pub fn spawn_in_process(&mut self) {
        let storage = fazt::storage::Storage::open(&self.data()).unwrap();
        let listener = async_io::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], self.port)).unwrap();
        let mut hal = fazt_hal::Hal::fake();
        if let Some(ms) = self.in_process_clock_ms {
            hal.clock = std::sync::Arc::new(fazt_hal::time::FakeClock::new(ms.saturating_mul(1_000_000)));
        }
        let options = fazt::NodeOptions {
            https_port: Some(0),
            password: self.password.clone(),
            executor_threads: Some(1),
        };
        let node = fazt::proc::serve::Node::build(listener, hal, storage, options).expect("build the node");
        self.addr = node.http_addr();
        self.https_addr = node.https_addr();
        if let Some(first) = node.bootstrap() {
            self.token = first.token.clone();
            self.password = Some(first.password.clone());
        }
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("in-process-node".into())
            .stack_size(8 << 20)
            .spawn(move || {
                let shutdown = async move {
                    let _ = stopped.recv().await;
                };
                let ready = move || {
                    let _ = ready_tx.send(());
                };
                node.run(shutdown, ready).expect("the in-process node failed");
            })
            .unwrap();
        ready_rx.recv_timeout(Duration::from_secs(60)).expect("the in-process node did not start");
        self.in_process = Some(InProcess { stop, thread: Some(thread) });
    }

    /// Sets `--clock-offset-ms` (in process: the fake board clock) for the next
    /// [`Node::spawn`].
    pub fn set_clock_offset(&mut self, ms: Option<i64>) {
        self.clock_offset_ms = ms;
        self.in_process_clock_ms = ms;
    }

    /// `GET /api/system/time` (through `fazt time status --json`).
    pub fn time(&self) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["time", "status", "--json"])).unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data.db")
    }

    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("client.json")
    }

    /// Starts the node (the process, or inside this one for an in-process node) on the
    /// existing data folder and waits until it listens.
    pub fn spawn(&mut self) {
        if self.in_process_mode {
            return self.spawn_in_process();
        }
        let mut child = Command::new(fazt_bin())
            .args(["server", "start", "--listen", "127.0.0.1", "--port", &self.port.to_string(), "--data"])
            .arg(self.data())
            .arg("--config")
            .arg(self.client_config())
            .args(self.clock_offset_ms.map(|ms| format!("--clock-offset-ms={ms}")))
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(match &self.log {
                Some(path) => {
                    Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap())
                }
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("start fazt");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        let mut addr = None;
        let mut password_next = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!("fazt did not start ({e}); output so far:\n{seen}"),
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = Some(rest.trim().parse().unwrap());
            }
            if password_next && !line.trim().is_empty() {
                self.password = Some(line.trim().to_string());
                password_next = false;
            }
            if line.contains("with password:") {
                password_next = true;
            }
            if line.starts_with("fazt is ready") {
                break;
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.addr = addr.unwrap();
        self.stdout = seen;
        self.child = Some(child);
    }

    /// Stops the node with SIGKILL (no clean shutdown; an in-process node is stopped
    /// cleanly).
    pub fn kill9(&mut self) {
        // Dropped, not shut down: a panic there must not abort a test already failing.
        drop(self.in_process.take());
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Stops the node with SIGTERM (in process: its shutdown future) and waits.
    pub fn stop(&mut self) {
        if let Some(mut node) = self.in_process.take() {
            node.shut_down();
        }
        if let Some(mut child) = self.child.take() {
            unsafe_sigterm(child.id());
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// `http://admin.localhost:<port>`.
    pub fn admin_url(&self) -> String {
        format!("http://admin.localhost:{}", self.addr.port())
    }

    /// Runs a CLI command against this node (its client config and data file).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(fazt_bin())
            .args(args)
            .env("FAZT_CONFIG", self.client_config())
            .env("FAZT_SERVER", self.admin_url())
            .env("FAZT_TOKEN", &self.token)
            .env("FAZT_DATA", self.data())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a CLI command and asserts success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "fazt {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A request to `host` (e.g. "blog.localhost").
    pub fn get(&self, host: &str, path: &str) -> Resp {
        self.request("GET", host, path, &[], b"")
    }

    /// Any request with extra headers and a body.
    pub fn request(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let host = if host.contains(':') || host.is_empty() {
            host.to_string()
        } else {
            format!("{host}:{}", self.addr.port())
        };
        raw_request(self.addr, method, &host, path, headers, body)
    }

    /// Opens a connection and sends the head of a deploy to `app` that announces
    /// `content_length` body bytes; the caller sends (some of) the body, or not.
    pub fn begin_deploy(&self, app: &str, content_length: usize) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            stream,
            "POST /api/deploy?name={app} HTTP/1.1\r\nHost: admin.localhost\r\nAuthorization: Bearer {}\r\nContent-Length: {content_length}\r\n\r\n",
            self.token
        )
        .unwrap();
        stream
    }

    /// An admin API call with the node's API token.
    pub fn api(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        self.request(
            method,
            "admin.localhost",
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            &body,
        )
    }

    /// Deploys `files` (path, content) as a plain tar.gz through the API.
    pub fn deploy_files(&self, app: &str, files: &[(&str, &[u8])]) -> Resp {
        let archive = tar_gz(files);
        let auth = format!("Bearer {}", self.token);
        self.request(
            "POST",
            "admin.localhost",
            &format!("/api/deploy?name={app}"),
            &[("Authorization", &auth)],
            &archive,
        )
    }

    /// Waits until the node has saved a time of at least `ms` (Unix ms) as its floor
    /// for the next start (`time.last_known_ms`, read by a separate connection), which
    /// it does at start and then every `time.persist_interval_secs`.
    pub fn wait_for_saved_time(&self, ms: i64) {
        let saved = || -> Option<i64> {
            let conn = rusqlite::Connection::open(self.data()).ok()?;
            let value: String = conn
                .query_row("SELECT value FROM state WHERE key = 'time.last_known_ms'", [], |r| r.get(0))
                .ok()?;
            value.parse().ok()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while saved().is_none_or(|saved| saved < ms) {
            assert!(std::time::Instant::now() < deadline, "the node saved no time of at least {ms} in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `PRAGMA integrity_check` of the data file, read by a separate connection.
    pub fn integrity(&self) -> String {
        let conn = rusqlite::Connection::open(self.data()).unwrap();
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The stable error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_string()
    }
}

/// Sends one request on a new connection and reads the response to EOF.
pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !host.is_empty() {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw, method == "HEAD")
}

/// Sends only the head of a request that announces `content_length` body bytes, and
/// reads the answer (for limits checked before any body is read).
pub fn head_only(addr: SocketAddr, method: &str, host: &str, path: &str, content_length: u64) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {content_length}\r\n\r\n")
        .unwrap();
    let mut raw = vec![0u8; 8192];
    let n = stream.read(&mut raw).unwrap();
    parse_response(&raw[..n], false)
}

/// Parses one HTTP/1.1 response (Content-Length or close-delimited body).
pub fn parse_response(raw: &[u8], head_only: bool) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let rest = &raw[split + 4..];
    let body = if head_only {
        Vec::new()
    } else if let Some(len) = headers.get("content-length") {
        rest[..len.parse::<usize>().unwrap().min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Resp { status, headers, body }
}

/// A tar.gz of regular files.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Writes a site folder from (path, content) pairs.
pub fn write_site(root: &Path, files: &[(&str, &[u8])]) {
    for (path, data) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }
}
