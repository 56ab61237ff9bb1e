//! Static serving: routing by host, index files, clean URLs, validators, ranges, HEAD,
//! precompressed variants, headers, keep-alive and HTTP/2.

use crate::support::{raw_request, Node};
use std::io::{Read, Write};

fn site_node() -> Node {
    let node = Node::in_process();
    let big_text = "fazt serves this line again and again\n".repeat(200);
    let resp = node.deploy_files(
        "blog",
        &[
            ("index.html", b"<h1>blog home</h1>"),
            ("about.html", b"<p>about</p>"),
            ("docs/index.html", b"<p>docs</p>"),
            ("style.css", big_text.as_bytes()),
            ("data.bin", &(0..=255u8).cycle().take(1000).collect::<Vec<_>>()),
            ("app.3f2a9c1b.js", b"console.log(1)"),
        ],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    node
}

#[test]
fn routes_by_host_and_serves_system_apps() {
    let node = Node::in_process();
    let root = node.get("localhost", "/");
    assert_eq!(root.status, 200);
    assert!(root.text().contains("fazt"), "{}", root.text());
    assert_eq!(node.get("root.localhost", "/").body, root.body);
    // A bare IP is the landing page too.
    assert_eq!(node.get(&node.addr.to_string(), "/").body, root.body);
    let admin = node.get("admin.localhost", "/");
    assert_eq!(admin.status, 200);
    assert!(admin.text().contains("login-form"));
    assert!(admin.header("content-security-policy").unwrap().contains("default-src 'self'"));
    assert_eq!(admin.header("x-frame-options"), Some("DENY"));
    // Unknown apps and unknown domains get the 404 app with a 404 status.
    for host in ["nope.localhost", "example.com", "a.b.localhost"] {
        let resp = node.get(host, "/");
        assert_eq!(resp.status, 404, "{host}");
        assert!(resp.header("content-type").unwrap().starts_with("text/html"));
    }
}

#[test]
fn index_files_clean_urls_and_redirects() {
    let node = site_node();
    assert_eq!(node.get("blog.localhost", "/").text(), "<h1>blog home</h1>");
    assert_eq!(node.get("blog.localhost", "/about").text(), "<p>about</p>");
    assert_eq!(node.get("blog.localhost", "/about.html").text(), "<p>about</p>");
    assert_eq!(node.get("blog.localhost", "/docs/").text(), "<p>docs</p>");
    let redirect = node.get("blog.localhost", "/docs?x=1");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/docs/?x=1"));
    let missing = node.get("blog.localhost", "/missing");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("cache-control"), Some("no-store"));
    // Traversal out of the site resolves to nothing, not to another app's files.
    assert_eq!(node.get("blog.localhost", "/../admin/index.html").status, 404);
    assert_eq!(node.get("blog.localhost", "/%2e%2e/index.html").status, 404);
}

#[test]
fn content_types_cache_control_and_security_headers() {
    let node = site_node();
    let html = node.get("blog.localhost", "/");
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(html.header("cache-control"), Some("no-cache"));
    assert_eq!(html.header("x-content-type-options"), Some("nosniff"));
    assert!(html.header("referrer-policy").is_some());
    assert_eq!(
        node.get("blog.localhost", "/style.css").header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        node.get("blog.localhost", "/data.bin").header("content-type"),
        Some("application/octet-stream")
    );
    let js = node.get("blog.localhost", "/app.3f2a9c1b.js");
    assert!(js.header("content-type").unwrap().contains("javascript"));
    assert_eq!(js.header("cache-control"), Some("public, max-age=31536000, immutable"));
}

#[test]
fn etag_and_last_modified_give_304() {
    let node = site_node();
    let first = node.get("blog.localhost", "/style.css");
    let etag = first.header("etag").unwrap().to_string();
    let last_modified = first.header("last-modified").unwrap().to_string();
    let again = node.request("GET", "blog.localhost", "/style.css", &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let weak = format!("W/{etag}");
    assert_eq!(
        node.request("GET", "blog.localhost", "/style.css", &[("If-None-Match", &weak)], b"").status,
        304
    );
    assert_eq!(
        node.request("GET", "blog.localhost", "/style.css", &[("If-None-Match", "\"other\"")], b"").status,
        200
    );
    assert_eq!(
        node.request("GET", "blog.localhost", "/style.css", &[("If-Modified-Since", &last_modified)], b"")
            .status,
        304
    );
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    assert_eq!(
        node.request("GET", "blog.localhost", "/style.css", &[("If-Modified-Since", old)], b"").status,
        200
    );
}

#[test]
fn ranges_head_and_416() {
    let node = site_node();
    let expected: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let part = node.request("GET", "blog.localhost", "/data.bin", &[("Range", "bytes=10-19")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(part.body, &expected[10..20]);
    let tail = node.request("GET", "blog.localhost", "/data.bin", &[("Range", "bytes=-5")], b"");
    assert_eq!(tail.body, &expected[995..]);
    let open = node.request("GET", "blog.localhost", "/data.bin", &[("Range", "bytes=990-")], b"");
    assert_eq!(open.body, &expected[990..]);
    let past = node.request("GET", "blog.localhost", "/data.bin", &[("Range", "bytes=5000-")], b"");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */1000"));
    // Malformed or multiple ranges: the whole file, as RFC 9110 allows.
    for bad in ["bytes=a-b", "bytes=5-1", "bytes=0-1,5-6", "lines=1-2"] {
        let whole = node.request("GET", "blog.localhost", "/data.bin", &[("Range", bad)], b"");
        assert_eq!(whole.status, 200, "{bad}");
        assert_eq!(whole.body, expected);
    }
    // If-Range with a stale validator: the whole file.
    let stale = node.request(
        "GET",
        "blog.localhost",
        "/data.bin",
        &[("Range", "bytes=0-1"), ("If-Range", "\"stale\"")],
        b"",
    );
    assert_eq!(stale.status, 200);
    let head = node.request("HEAD", "blog.localhost", "/data.bin", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1000"));
    assert!(head.body.is_empty());
    let post = node.request("POST", "blog.localhost", "/data.bin", &[], b"x");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn gzip_and_brotli_chosen_by_accept_encoding() {
    let node = site_node();
    let plain = node.get("blog.localhost", "/style.css");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));

    let gz = node.request("GET", "blog.localhost", "/style.css", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.body.len() < plain.body.len() / 4);
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, plain.body);
    assert_ne!(gz.header("etag"), plain.header("etag"));

    let br =
        node.request("GET", "blog.localhost", "/style.css", &[("Accept-Encoding", "gzip, deflate, br")], b"");
    assert_eq!(br.header("content-encoding"), Some("br"));
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&br.body[..], 4096).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, plain.body);

    let refused =
        node.request("GET", "blog.localhost", "/style.css", &[("Accept-Encoding", "br;q=0, gzip;q=0")], b"");
    assert_eq!(refused.header("content-encoding"), None);
    // Tiny and binary files are never compressed.
    let tiny = node.request("GET", "blog.localhost", "/about", &[("Accept-Encoding", "gzip, br")], b"");
    assert_eq!(tiny.header("content-encoding"), None);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let node = site_node();
    let mut stream = std::net::TcpStream::connect(node.addr).unwrap();
    let host = format!("blog.localhost:{}", node.addr.port());
    for _ in 0..3 {
        write!(stream, "GET /about HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("<p>about</p>") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
    }
}

/// Between requests a connection idles and hyper's buffers are given back; a request
/// that arrives in pieces, pipelined behind another, or after a pause must still be
/// answered in order, whatever the connection was doing when the bytes came. The pauses
/// only make the idle path likely; nothing here depends on their length.
#[test]
fn idle_keep_alive_connections_answer_split_pipelined_and_body_requests() {
    let node = site_node();
    let host = format!("blog.localhost:{}", node.addr.port());
    let get = format!("GET /about HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let post = format!("POST /about HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello");
    let (head, tail) = get.split_at(20);
    let pipelined_split = format!("{get}{head}");
    let two = format!("{get}{get}");
    // (case, pieces written with a pause before each, answers expected in order)
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("after pauses", vec![&get, &get, &get], vec!["<p>about</p>"; 3]),
        ("two in one write", vec![&two], vec!["<p>about</p>"; 2]),
        ("head split by a pause", vec![head, tail, &get], vec!["<p>about</p>"; 2]),
        ("pipelined, second split", vec![&pipelined_split, tail], vec!["<p>about</p>"; 2]),
        ("a body, then a plain request", vec![&post, &get], vec!["HTTP/1.1 405", "<p>about</p>"]),
    ];
    for (case, pieces, answers) in cases {
        let mut stream = std::net::TcpStream::connect(node.addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        for piece in pieces {
            std::thread::sleep(std::time::Duration::from_millis(150));
            stream.write_all(piece.as_bytes()).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        let seen = |got: &[u8]| {
            let text = String::from_utf8_lossy(got);
            let mut at = 0;
            answers.iter().all(|a| match text[at..].find(a) {
                Some(i) => {
                    at += i + a.len();
                    true
                }
                None => false,
            })
        };
        while !seen(&got) {
            let n = stream
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("{case}: {e}; got {:?}", String::from_utf8_lossy(&got)));
            assert!(n > 0, "{case}: connection closed early; got {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 "), "{case}");
    }
}

#[test]
fn http2_prior_knowledge_h2c() {
    let node = site_node();
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_version}", "--resolve"])
        .arg(format!("blog.localhost:{}:127.0.0.1", node.addr.port()))
        .arg(format!("http://blog.localhost:{}/about", node.addr.port()))
        .output()
        .expect("curl (installed by tests/setup)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("<p>about</p>"), "{text}");
    assert!(text.trim_end().ends_with('2'), "not HTTP/2: {text}");
}

#[test]
fn malformed_host_headers_get_400() {
    let node = Node::in_process();
    for host in ["bad host", "blog.localhost:99999", "bl_og.localhost", "[::1"] {
        let resp = raw_request(node.addr, "GET", host, "/", &[], b"");
        assert_eq!(resp.status, 400, "{host}");
        assert_eq!(resp.code(), "bad_host");
    }
}

/// Sends `raw` bytes as they are on a new connection and parses the answer.
fn send_raw(node: &Node, raw: &str) -> crate::support::Resp {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(node.addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    crate::support::parse_response(&answer, false)
}

// See: issue 17 (absolute-form request line outranks the Host header; duplicate Host
// headers take the first). A proxy routing by Host and fazt routing by the request line
// would send the same request to different apps.
#[test]
fn ambiguous_hosts_get_400() {
    let node = Node::in_process();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"blog home")]).status, 200);
    let port = node.addr.port();
    let cases = [
        format!("GET http://admin.localhost:{port}/api/apps HTTP/1.1\r\nHost: blog.localhost:{port}\r\nConnection: close\r\n\r\n"),
        format!("GET http://admin.localhost/ HTTP/1.1\r\nHost: blog.localhost:{port}\r\nConnection: close\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: blog.localhost:{port}\r\nHost: admin.localhost:{port}\r\nConnection: close\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: blog.localhost:{port}\r\nhost: blog.localhost:{port}\r\nConnection: close\r\n\r\n"),
    ];
    for raw in &cases {
        let resp = send_raw(&node, raw);
        assert_eq!((resp.status, resp.code().as_str()), (400, "ambiguous_host"), "{raw:?}: {}", resp.text());
    }
    // An absolute-form target that agrees with Host is served as usual.
    let agreed = send_raw(
        &node,
        &format!("GET http://blog.localhost:{port}/ HTTP/1.1\r\nHost: blog.localhost:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!((agreed.status, agreed.text().as_str()), (200, "blog home"));
}
