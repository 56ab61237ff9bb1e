//! Outbound HTTP for apps (`fazt.net.fetch`) against a tiny origin on loopback that the
//! test starts itself (no traffic leaves the machine): an allowed origin answers, a host
//! not on the list and a private address not opened with `--private` are refused with
//! their codes, a huge answer is cut with `too_large`, a slow one gives `timeout`,
//! redirect loops stop, and repeated failures open the host's circuit (and a probe after
//! the cool-down closes it), with events and `fazt net limits|logs` showing it.

use crate::support::Node;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 origin: one thread per connection, `Connection: close`.
fn origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn serve(mut stream: TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut length = 0usize;
    let mut test_header = String::new();
    let mut host = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = lower.strip_prefix("host:") {
            host = v.trim().to_string();
        }
        if let Some(v) = lower.strip_prefix("x-test:") {
            test_header = v.trim().to_string();
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok();
    let reply = |stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok();
        stream.write_all(body).ok();
    };
    match path.as_str() {
        "/hello" => {
            let text =
                format!("{method} {path} x-test={test_header} body={}", String::from_utf8_lossy(&body));
            reply(&mut stream, "200 OK", "X-Origin: yes\r\n", text.as_bytes());
        }
        "/big" => reply(&mut stream, "200 OK", "", &vec![b'x'; 200_000]),
        "/endless" => {
            // No length: it just keeps sending until the client goes.
            stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").ok();
            let chunk = vec![b'y'; 16 * 1024];
            for _ in 0..10_000 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            reply(&mut stream, "200 OK", "", b"late");
        }
        "/fail" => reply(&mut stream, "500 Internal Server Error", "", b"broken"),
        "/loop" => reply(&mut stream, "302 Found", "Location: /loop\r\n", b""),
        "/hop" => reply(&mut stream, "302 Found", "Location: /hello\r\n", b""),
        // To the same service under the name `localhost`, which is allowed but not
        // opened with --private: each hop is checked on its own.
        "/away" => {
            let port = host.rsplit(':').next().unwrap_or("");
            let location = format!("Location: http://localhost:{port}/hello\r\n");
            reply(&mut stream, "302 Found", &location, b"")
        }
        _ => reply(&mut stream, "404 Not Found", "", b"no"),
    }
}

const APP: &str = r#"
module.exports = async function (request) {
  const q = request.url.query;
  try {
    const r = await fazt.net.fetch(q.url, { method: q.method || 'GET', headers: { 'X-Test': 'yes' }, body: q.body });
    return { json: { ok: true, status: r.status, headers: r.headers, body: r.body.length > 200 ? `${r.body.length} bytes` : r.body } };
  } catch (e) {
    return { json: { ok: false, code: e.code, message: e.message } };
  }
};
"#;

fn fetch(node: &Node, url: &str, extra: &str) -> Value {
    let encoded = percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC);
    let resp = node.get("fetcher.localhost", &format!("/api/fetch?url={encoded}{extra}"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()
}

#[test]
fn apps_fetch_only_what_they_are_allowed_within_the_limits_and_circuits_open() {
    let port = origin();
    let node = Node::in_process_with(
        &[
            ("egress.max_response_bytes", "65536"),
            ("egress.timeout_ms", "800"),
            ("egress.breaker_failures", "3"),
            ("egress.breaker_cooldown_secs", "1"),
            ("egress.max_redirects", "3"),
        ],
        None,
    );
    let resp = node.deploy_files("fetcher", &[("api/main.js", APP.as_bytes())]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let base = format!("http://127.0.0.1:{port}");

    // Nothing is allowed at first.
    let answer = fetch(&node, &format!("{base}/hello"), "");
    assert_eq!(answer["code"], "host_not_allowed", "{answer}");

    // A loopback address allowed without --private is still refused, after resolution:
    // `localhost` is a name that resolves to 127.0.0.1.
    node.cli_ok(&["net", "allow", "fetcher", &format!("localhost:{port}")]);
    let answer = fetch(&node, &format!("http://localhost:{port}/hello"), "");
    assert_eq!(answer["code"], "private_address", "{answer}");
    let answer = fetch(&node, &format!("{base}/hello"), "");
    assert_eq!(answer["code"], "host_not_allowed", "{answer}");

    // Opened explicitly: the one service answers.
    let out = node.cli_ok(&["net", "allow", "fetcher", "--private", &format!("127.0.0.1:{port}")]);
    assert!(out.contains("may reach 127.0.0.1"), "{out}");
    let answer = fetch(&node, &format!("{base}/hello"), "&method=POST&body=ping");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"], "POST /hello x-test=yes body=ping");
    assert_eq!(answer["headers"]["x-origin"], "yes");
    // Another port of the same address is not opened.
    let answer = fetch(&node, &format!("http://127.0.0.1:{}/hello", port.wrapping_add(1).max(1)), "");
    assert_eq!(answer["code"], "host_not_allowed", "{answer}");
    // Metadata, and schemes other than http(s), never.
    let answer = fetch(&node, "http://169.254.169.254/latest/meta-data/", "");
    assert_eq!(answer["code"], "host_not_allowed", "{answer}");
    for bad in ["file:///etc/passwd", "gopher://127.0.0.1/", "http://user:pw@127.0.0.1/", "not a url"] {
        let answer = fetch(&node, bad, "");
        assert_eq!(answer["code"], "bad_url", "{bad}: {answer}");
    }

    // A redirect to an allowed path is followed; a loop stops.
    let answer = fetch(&node, &format!("{base}/hop"), "");
    assert_eq!(answer["body"], "GET /hello x-test=yes body=", "{answer}");
    let answer = fetch(&node, &format!("{base}/away"), "");
    assert_eq!(answer["code"], "private_address", "a redirect is checked like a request: {answer}");
    let answer = fetch(&node, &format!("{base}/loop"), "");
    assert_eq!(answer["code"], "too_many_redirects", "{answer}");

    // Huge answers are cut, with a length and without one.
    for path in ["/big", "/endless"] {
        let answer = fetch(&node, &format!("{base}{path}"), "");
        assert_eq!(answer["code"], "too_large", "{path}: {answer}");
    }

    // An app's own limits go over the node's, and back.
    let out = node.cli_ok(&["net", "limits", "fetcher", "--max-response-bytes", "10"]);
    assert!(out.contains("max_response_bytes       10 *"), "{out}");
    assert_eq!(fetch(&node, &format!("{base}/hello"), "")["code"], "too_large");
    node.cli_ok(&["net", "limits", "fetcher", "--reset"]);
    assert_eq!(fetch(&node, &format!("{base}/hello"), "")["ok"], true);

    // A slow origin: timeout, in about the configured time.
    let started = Instant::now();
    let answer = fetch(&node, &format!("{base}/slow"), "");
    assert_eq!(answer["code"], "timeout", "{answer}");
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
    // A success sets the host's failure count back to zero.
    assert_eq!(fetch(&node, &format!("{base}/hello"), "")["ok"], true);

    // Three failures in a row open the circuit; the fourth request fails fast.
    for _ in 0..3 {
        let answer = fetch(&node, &format!("{base}/fail"), "");
        assert_eq!((answer["ok"].clone(), answer["status"].clone()), (Value::Bool(true), Value::from(500)));
    }
    let answer = fetch(&node, &format!("{base}/hello"), "");
    assert_eq!(answer["code"], "circuit_open", "{answer}");
    let limits = node.cli_ok(&["net", "limits"]);
    assert!(limits.contains("circuit 127.0.0.1") && limits.contains("open"), "{limits}");
    let events = node.api("GET", "/api/events?type=egress", None).json();
    assert_eq!(events["events"][0]["type"], "egress.circuit_opened", "{events}");
    assert_eq!(events["events"][0]["data"]["host"], "127.0.0.1");

    // After the cool-down one probe goes; the host answers (too large for the app, but
    // an answer) and the circuit closes.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(fetch(&node, &format!("{base}/big"), "")["code"], "too_large");
    assert_eq!(fetch(&node, &format!("{base}/hello"), "")["ok"], true);
    let events = node.api("GET", "/api/events?type=egress", None).json();
    assert_eq!(events["events"][1]["type"], "egress.circuit_closed", "{events}");
    assert!(node.cli_ok(&["net", "limits"]).contains("all closed"));

    // Every request is in the log, refusals with their codes.
    let logs = node.cli_ok(&["net", "logs", "fetcher", "-n", "100"]);
    for code in ["host_not_allowed", "private_address", "too_large", "timeout", "circuit_open"] {
        assert!(logs.contains(code), "{code} missing from\n{logs}");
    }
    assert!(logs.contains("POST") && logs.contains(" 200 "), "{logs}");
    let json = node.api("GET", "/api/net/logs?app=fetcher&limit=1000", None).json();
    let last = json["logs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["host"].clone(), last["status"].clone()), (Value::from("127.0.0.1"), Value::from(200)));
    // Following: only what came after an id.
    fetch(&node, &format!("{base}/hello"), "&method=PUT");
    let after = node.api("GET", &format!("/api/net/logs?after={}", last["id"]), None).json();
    assert_eq!(after["logs"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after["logs"][0]["method"], "PUT");
    // `fazt net logs --follow` prints what comes next.
    let mut follow = std::process::Command::new(crate::support::fazt_bin())
        .args(["net", "logs", "fetcher", "-n", "1", "--follow"])
        .env("FAZT_CONFIG", node.client_config())
        .env("FAZT_SERVER", node.admin_url())
        .env("FAZT_TOKEN", &node.token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line =
        || lines.recv_timeout(Duration::from_secs(15)).expect("fazt net logs --follow printed nothing");
    let first = line();
    assert!(first.contains("PUT"), "the last one first: {first}");
    fetch(&node, &format!("{base}/hello"), "&method=DELETE");
    let next = line();
    follow.kill().ok();
    follow.wait().ok();
    assert!(next.contains("DELETE") && next.contains(" 200 "), "{next}");

    // A name is resolved once, checked, and the connection goes to that address.
    node.cli_ok(&["net", "allow", "fetcher", "--private", &format!("localhost:{port}")]);
    let answer = fetch(&node, &format!("http://localhost:{port}/hello"), "");
    assert_eq!(answer["body"], "GET /hello x-test=yes body=", "{answer}");

    // Nothing listening: upstream_error, quickly.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    node.cli_ok(&["net", "allow", "fetcher", "--private", &format!("127.0.0.1:{closed}")]);
    let answer = fetch(&node, &format!("http://127.0.0.1:{closed}/"), "");
    assert_eq!(answer["code"], "upstream_error", "{answer}");
    // TLS with a server that does not speak it: a typed error too, and the node is fine.
    let answer = fetch(&node, &format!("https://127.0.0.1:{port}/hello"), "");
    assert_eq!(answer["code"], "upstream_error", "{answer}");

    // Deny takes it away again.
    node.cli_ok(&["net", "deny", "fetcher", &format!("127.0.0.1:{port}")]);
    assert_eq!(fetch(&node, &format!("{base}/hello"), "")["code"], "host_not_allowed");
    let list = node.cli_ok(&["net", "list", "fetcher"]);
    assert!(!list.contains(&format!("127.0.0.1:{port}")), "{list}");
    assert!(list.contains(&format!("127.0.0.1:{closed}  private")), "{list}");
}

#[test]
fn the_net_api_refuses_bad_input_and_changes_nothing() {
    let node = Node::in_process();
    let resp = node.deploy_files("a", &[("index.html", b"x".as_slice())]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let cases: &[(&str, Value, u16, &str)] = &[
        ("/api/net/allow", serde_json::json!({"app": "a", "host": "http://x.com/"}), 400, "invalid"),
        (
            "/api/net/allow",
            serde_json::json!({"app": "a", "host": "10.0.0.1", "private": true}),
            400,
            "invalid",
        ),
        (
            "/api/net/allow",
            serde_json::json!({"app": "a", "host": "*.x.com:80", "private": true}),
            400,
            "invalid",
        ),
        ("/api/net/allow", serde_json::json!({"app": "a", "host": "x.com\nevil"}), 400, "invalid"),
        ("/api/net/allow", serde_json::json!({"app": "a", "host": "a".repeat(300)}), 400, "invalid"),
        ("/api/net/allow", serde_json::json!({"app": "nope", "host": "x.com"}), 404, "not_found"),
        ("/api/net/allow", serde_json::json!({"app": "a"}), 400, "bad_json"),
        ("/api/net/allow", serde_json::json!({"app": "a", "host": "x.com", "extra": 1}), 400, "bad_json"),
        ("/api/net/deny", serde_json::json!({"app": "a", "host": ""}), 400, "invalid"),
    ];
    for (path, body, status, code) in cases {
        let resp = node.api("POST", path, Some(body));
        assert_eq!((resp.status, resp.code().as_str()), (*status, *code), "{body}: {}", resp.text());
    }
    let limits: &[(Value, u16, &str)] = &[
        (serde_json::json!({"timeout_ms": 0}), 400, "invalid"),
        (serde_json::json!({"max_concurrent": 100000}), 400, "invalid"),
        (serde_json::json!({"max_response_bytes": -1}), 400, "bad_json"),
        (serde_json::json!({"bogus": 1}), 400, "bad_json"),
    ];
    for (body, status, code) in limits {
        let resp = node.api("PUT", "/api/net/limits/a", Some(body));
        assert_eq!((resp.status, resp.code().as_str()), (*status, *code), "{body}: {}", resp.text());
    }
    assert_eq!(node.api("PUT", "/api/net/limits/nope", Some(&serde_json::json!({}))).status, 404);
    let own = node.api("GET", "/api/net/limits/a", None).json();
    assert_eq!(own["own"]["timeout_ms"], Value::Null, "nothing was stored: {own}");
    for query in ["limit=0", "limit=100000", "limit=x"] {
        let resp = node.api("GET", &format!("/api/net/logs?{query}"), None);
        assert_eq!((resp.status, resp.code().as_str()), (400, "bad_limit"), "{query}");
    }
    assert_eq!(node.api("GET", "/api/net/logs?app=nope", None).status, 404);
    for query in ["after=-1", "after=x", "after=99999999999999999999"] {
        let resp = node.api("GET", &format!("/api/net/logs?{query}"), None);
        assert_eq!((resp.status, resp.code().as_str()), (400, "bad_after"), "{query}");
    }
    let list = node.api("GET", "/api/net/allow", None).json();
    assert_eq!(list["allow"], serde_json::json!([]), "nothing was stored");
    // Without credentials: nothing.
    let resp = node.request("GET", "admin.localhost", "/api/net/limits", &[], b"");
    assert_eq!(resp.status, 401);
}
