//! The event bus through the real binary: `fazt events watch` sees deploys, handler
//! errors and failed logins at once; apps read only their own and public events; bad
//! input to `/api/events` is refused and changes nothing.

use crate::support::{fazt_bin, Node};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `fazt events watch --json`, its lines timestamped as they arrive.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Watch {
    fn start(node: &Node, args: &[&str]) -> Watch {
        let mut child = Command::new(fazt_bin())
            .args(["events", "watch", "--json"])
            .args(args)
            .env("FAZT_CONFIG", node.client_config())
            .env("FAZT_SERVER", node.admin_url())
            .env("FAZT_TOKEN", &node.token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// Waits until the watch is connected: a probe emitted now comes through (emitted
    /// again now and then, as one sent before it subscribed is not replayed).
    fn ready(self, node: &Node) -> Watch {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            node.cli_ok(&["events", "emit", "watch.ready"]);
            if let Ok((_, line)) = self.lines.recv_timeout(Duration::from_millis(500)) {
                assert!(line.contains("app.watch.ready"), "{line}");
                return self;
            }
        }
        panic!("fazt events watch did not connect");
    }

    /// The next event of type `kind` (others are skipped) and when its line arrived.
    fn next_of(&self, kind: &str, timeout: Duration) -> (Instant, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) =
                self.lines.recv_timeout(left).unwrap_or_else(|e| panic!("no {kind} event ({e})"));
            let event: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if event["type"] == kind {
                return (at, event);
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Milliseconds from `done` (the action's answer read) to `arrived` (the watch line);
/// negative when the line came first (the event is emitted before the answer is sent).
fn latency_ms(done: Instant, arrived: Instant) -> f64 {
    match arrived.checked_duration_since(done) {
        Some(after) => after.as_secs_f64() * 1000.0,
        None => -(done.duration_since(arrived).as_secs_f64() * 1000.0),
    }
}

const APP: &str = r#"
module.exports = async function (request) {
  const q = request.url.query;
  switch (request.url.pathname) {
    case '/api/throw': throw new Error('boom');
    case '/api/spin': for (;;) {}
    case '/api/emit':
      return { json: await fazt.events.emit(q.type, { secret: q.secret }, { public: q.public === '1' }) };
    case '/api/since':
      return { json: await fazt.events.since(Number(q.id || 0), { type: q.type, limit: 1000 }) };
    case '/api/flood': {
      let n = 0;
      try { for (;;) { await fazt.events.emit('flood', { n }); n++; } } catch (e) { return { json: { n, error: e.message } }; }
    }
    case '/api/big':
      try { await fazt.events.emit('big', 'x'.repeat(20000)); return 'accepted'; } catch (e) { return e.message; }
    default: return { status: 404, body: 'no route' };
  }
};
"#;

fn deploy(node: &Node, app: &str) -> Instant {
    let resp = node.deploy_files(app, &[("api/main.js", APP.as_bytes())]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    Instant::now()
}

fn call(node: &Node, app: &str, path: &str) -> crate::support::Resp {
    node.get(&format!("{app}.localhost"), path)
}

/// The issue's target: a deploy, a handler error and a failed login each show in a
/// running `fazt events watch` within 100 ms of the action's answer.
#[test]
fn watch_shows_deploys_handler_errors_and_failed_logins_at_once() {
    let node = Node::in_process();
    let watch = Watch::start(&node, &[]).ready(&node);
    let mut latencies = Vec::new();

    let done = deploy(&node, "shop");
    let (at, event) = watch.next_of("apps.deployed", Duration::from_secs(10));
    latencies.push(("apps.deployed", latency_ms(done, at)));
    assert_eq!(event["app_name"], "shop");
    assert_eq!(event["visibility"], "private");
    assert!(event["data"]["files"].as_u64() == Some(1), "{event}");

    let resp = call(&node, "shop", "/api/throw");
    let done = Instant::now();
    assert_eq!(resp.status, 500);
    let (at, event) = watch.next_of("handler.error", Duration::from_secs(10));
    latencies.push(("handler.error", latency_ms(done, at)));
    assert_eq!(
        (event["app_name"].as_str(), event["data"]["code"].as_str()),
        (Some("shop"), Some("handler_error"))
    );
    assert_eq!(event["data"]["path"], "/api/throw");

    let resp = node.request(
        "POST",
        "admin.localhost",
        "/api/login",
        &[("Content-Type", "application/json")],
        br#"{"username":"admin","password":"wrong"}"#,
    );
    let done = Instant::now();
    assert_eq!(resp.status, 401);
    let (at, event) = watch.next_of("login.failed", Duration::from_secs(10));
    latencies.push(("login.failed", latency_ms(done, at)));
    assert_eq!(event["data"]["user"], "admin");
    assert!(event["app"].is_null());

    let shown: Vec<String> = latencies.iter().map(|(t, ms)| format!("{t} {ms:+.2} ms")).collect();
    eprintln!("event latency after the action's answer: {}", shown.join(", "));
    // The target is 100 ms; a shared 2-core machine can stall any process for longer
    // now and then, so each must be under it except by a scheduling hiccup (1 s), and
    // the typical one (the median) must meet it.
    let mut ms: Vec<f64> = latencies.iter().map(|l| l.1).collect();
    ms.sort_by(f64::total_cmp);
    assert!(ms[1] < 100.0, "median event latency {} ms: {latencies:?}", ms[1]);
    assert!(ms[2] < 1000.0, "{latencies:?}");

    // The history has them too, in order, and ids only grow.
    let all = node.api("GET", "/api/events?since=0", None).json();
    // storage.near_full depends on the machine's disk, not on this test.
    let types: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| !t.starts_with("storage."))
        .collect();
    let first = types.iter().position(|t| *t == "apps.deployed").unwrap();
    assert!(types[..first].iter().all(|t| *t == "app.watch.ready"), "{types:?}");
    assert_eq!(types[first..], ["apps.deployed", "handler.error", "login.failed"]);
    let ids: Vec<u64> = all["events"].as_array().unwrap().iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

/// A watch that is given `--type` and `--app` prints only those; `--since` replays.
#[test]
fn watch_filters_and_replays() {
    let node = Node::in_process();
    deploy(&node, "one");
    deploy(&node, "two");
    let watch = Watch::start(&node, &["--since", "0", "--type", "apps", "--app", "two"]);
    node.cli_ok(&["events", "emit", "noise"]);
    node.cli_ok(&["app", "delete", "two", "--yes"]);
    let line =
        |timeout| watch.lines.recv_timeout(timeout).map(|(_, l)| serde_json::from_str::<Value>(&l).unwrap());
    let deployed = line(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (deployed["type"].as_str(), deployed["app_name"].as_str()),
        (Some("apps.deployed"), Some("two"))
    );
    let deleted = line(Duration::from_secs(10)).unwrap();
    assert_eq!((deleted["type"].as_str(), deleted["app_name"].as_str()), (Some("apps.deleted"), Some("two")));
    assert!(line(Duration::from_millis(500)).is_err(), "nothing else matches");
}

/// An app sees its own events and public ones, never another app's private ones, and
/// cannot flood the history or pass for the kernel.
#[test]
fn apps_cannot_read_each_others_private_events() {
    let node = Node::in_process();
    deploy(&node, "alice");
    deploy(&node, "bob");
    let secret = call(&node, "bob", "/api/emit?type=secret&secret=bob-pin-4711").json();
    assert_eq!(
        (secret["type"].as_str(), secret["visibility"].as_str()),
        (Some("app.secret"), Some("private"))
    );
    call(&node, "bob", "/api/emit?type=news&public=1&secret=public-news");
    call(&node, "alice", "/api/emit?type=mine&secret=alice-own");
    let forged = call(&node, "alice", "/api/emit?type=login.failed").json();
    assert_eq!(forged["type"], "app.login.failed", "an app cannot emit kernel types");
    assert_eq!(call(&node, "alice", "/api/throw").status, 500);

    let seen = call(&node, "alice", "/api/since?id=0");
    assert_eq!(seen.status, 200, "{}", seen.text());
    let text = seen.text();
    assert!(!text.contains("bob-pin-4711"), "alice read bob's private event: {text}");
    let seen = seen.json();
    for event in seen.as_array().unwrap() {
        let own = event["app_name"] == "alice";
        assert!(own || event["visibility"] == "public", "alice saw {event}");
    }
    let types: Vec<&str> = seen.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in ["apps.deployed", "app.news", "app.mine", "app.login.failed", "handler.error"] {
        assert!(types.contains(&expected), "{expected} missing from {types:?}");
    }
    assert!(!types.contains(&"app.secret") && !types.contains(&"login.failed"), "{types:?}");
    let filtered = call(&node, "alice", "/api/since?id=0&type=app.secret").json();
    assert_eq!(filtered, json!([]));
    // Bob sees his own secret; the admin sees everything.
    assert!(call(&node, "bob", "/api/since?id=0&type=app.secret").text().contains("bob-pin-4711"));
    assert!(node.api("GET", "/api/events?app=bob&type=app.secret", None).text().contains("bob-pin-4711"));

    // At most 100 emits per invocation, counted afresh for the next one.
    let flood = call(&node, "alice", "/api/flood").json();
    assert_eq!(flood["n"], 100, "{flood}");
    assert!(flood["error"].as_str().unwrap().contains("100"), "{flood}");
    assert_eq!(call(&node, "alice", "/api/flood").json()["n"], 100);
    assert!(call(&node, "alice", "/api/big").text().contains("16384 byte limit"));
}

/// Bad input to `/api/events` gets a clear 400 (or 404/413) and changes nothing.
#[test]
fn hostile_input_to_the_events_api_is_refused() {
    let node = Node::in_process();
    node.cli_ok(&["events", "emit", "before", "--data", r#"{"n":1}"#]);
    let before = node.api("GET", "/api/events?since=0", None).json();
    let huge = "a".repeat(10_000);
    let (huge_type, huge_app) = (format!("/api/events?type={huge}"), format!("/api/events?app={huge}"));
    let gets = [
        ("/api/events?since=abc", "bad_since"),
        ("/api/events?since=-1", "bad_since"),
        ("/api/events?since=99999999999999999999999", "bad_since"),
        (huge_type.as_str(), "bad_type"),
        ("/api/events?type=Bad%20Type", "bad_type"),
        ("/api/events?limit=0", "bad_limit"),
        ("/api/events?limit=100000", "bad_limit"),
        ("/api/events?wait=soon", "bad_wait"),
        (huge_app.as_str(), "bad_app"),
    ];
    for (path, code) in gets {
        let resp = node.api("GET", path, None);
        assert_eq!((resp.status, resp.code()), (400, code.to_string()), "{}", resp.text());
        assert!(resp.body.len() < 1024, "the refusal echoes the input: {}", resp.text());
    }
    let auth = format!("Bearer {}", node.token);
    let post = |body: &[u8]| {
        node.request("POST", "admin.localhost", "/api/events", &[("Authorization", &auth)], body)
    };
    let big = format!(r#"{{"type":"x","data":"{}"}}"#, "x".repeat(20_000));
    let posts: [(&str, u16, &str); 6] = [
        ("{not json", 400, "bad_json"),
        (r#"{"type":"x","surprise":1}"#, 400, "bad_json"),
        (r#"{"data":{}}"#, 400, "bad_json"),
        (r#"{"type":"Bad Type"}"#, 400, "bad_type"),
        (r#"{"type":"x","app":"nobody"}"#, 404, "not_found"),
        (&big, 413, "too_large"),
    ];
    for (body, status, code) in posts {
        let resp = post(body.as_bytes());
        assert_eq!((resp.status, resp.code()), (status, code.to_string()), "{}", resp.text());
    }
    let cli = node.cli(&["events", "emit", "x", "--data", "{oops"]);
    assert_eq!(cli.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cli.stderr).contains("--data is not JSON"));
    let anonymous = node.request("GET", "admin.localhost", "/api/events", &[], b"");
    assert_eq!(anonymous.status, 401);
    assert_eq!(node.api("DELETE", "/api/events", None).status, 405);
    assert_eq!(
        node.api("GET", "/api/events?since=0", None).json(),
        before,
        "a refused request changed the history"
    );
}

/// `wait=` answers as soon as a matching event comes; `last_id` lets a poller go on.
#[test]
fn long_poll_answers_when_an_event_comes() {
    let node = Node::in_process();
    let head = node.api("GET", "/api/events", None).json()["last_id"].as_u64().unwrap();
    let (admin, token) = (node.addr, node.token.clone());
    let poll = std::thread::spawn(move || {
        let started = Instant::now();
        let auth = format!("Bearer {token}");
        let path = format!("/api/events?since={head}&type=app.ping&wait=20");
        let resp = crate::support::raw_request(
            admin,
            "GET",
            "admin.localhost",
            &path,
            &[("Authorization", &auth)],
            b"",
        );
        (started.elapsed(), resp.json())
    });
    std::thread::sleep(Duration::from_millis(300));
    node.cli_ok(&["events", "emit", "other"]);
    node.cli_ok(&["events", "emit", "ping", "--data", "7"]);
    let (took, answer) = poll.join().unwrap();
    assert!(took < Duration::from_secs(10), "the poll waited {took:?}");
    assert_eq!(answer["events"][0]["type"], "app.ping");
    assert_eq!(answer["events"][0]["data"], 7);
    assert_eq!(answer["last_id"], answer["events"][0]["id"]);
}

/// A handler that runs past its wall-time limit is a `limit.timeout` event of its app.
#[test]
fn limit_hits_are_events() {
    let node = Node::in_process();
    deploy(&node, "spinner");
    node.cli_ok(&["app", "limits", "spinner", "--timeout-ms", "100"]);
    assert_eq!(call(&node, "spinner", "/api/spin").status, 504);
    let answer = node.api("GET", "/api/events?type=limit", None).json();
    let event = &answer["events"][0];
    assert_eq!(
        (event["type"].as_str(), event["app_name"].as_str()),
        (Some("limit.timeout"), Some("spinner"))
    );
    assert_eq!(event["data"]["code"], "timeout");
}

/// A reconnecting EventSource sends `Last-Event-ID` and gets what came after it, then
/// live events.
#[test]
fn server_sent_events_resume_after_last_event_id() {
    use std::io::{Read, Write};
    let node = Node::in_process();
    let first = node.cli_ok(&["events", "emit", "one", "--json"]);
    let first: Value = serde_json::from_str(&first).unwrap();
    node.cli_ok(&["events", "emit", "two"]);
    let mut stream = std::net::TcpStream::connect(node.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: admin.localhost\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\nLast-Event-ID: {}\r\n\r\n",
        node.token, first["id"]
    )
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut emitted = false;
    while !seen.contains("app.three") {
        let n = stream.read(&mut buf).expect("the stream went quiet");
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.contains("app.two") && !emitted {
            node.cli_ok(&["events", "emit", "three"]);
            emitted = true;
        }
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");
    assert!(!seen.contains("app.one"), "replayed the event the client already had: {seen}");
    assert!(seen.find("app.two") < seen.find("app.three"), "{seen}");
}

/// A node that ran an hour ahead and restarts on the true clock steps to its persisted
/// floor at boot: a public `time.stepped` event.
#[test]
fn a_clock_step_is_a_public_event() {
    const HOUR_MS: i64 = 3_600_000;
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let settings =
        [("time.ntp_port", port.as_str()), ("time.persist_interval_secs", "1"), ("beacon.enabled", "false")];
    let mut node = Node::in_process_with(&settings, Some(HOUR_MS));
    let ahead = node.api("GET", "/api/system/time", None).json()["now"].as_i64().unwrap();
    node.wait_for_saved_time(ahead); // a periodic save happens
    node.kill9();
    node.set_clock_offset(None);
    node.spawn();
    let answer = node.api("GET", "/api/events?type=time", None).json();
    let event = &answer["events"][0];
    assert_eq!(
        (event["type"].as_str(), event["visibility"].as_str()),
        (Some("time.stepped"), Some("public")),
        "{answer}"
    );
    assert_eq!(
        (event["data"]["source"].as_str(), event["data"]["at_boot"].as_bool()),
        (Some("persisted"), Some(true))
    );
    assert!(event["data"]["by_ms"].as_f64().unwrap() > 3_590_000.0, "{event}");
}
