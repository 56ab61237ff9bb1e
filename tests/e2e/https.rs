//! HTTPS: the LAN CA, custom certificates, TLS versions and ALPN, redirects and HSTS,
//! and hostile TLS input. Real peers: curl and `openssl s_client` (tests/setup).

use crate::support::Node;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A node with `settings` applied, restarted with an HTTPS listener on a free port and
/// its log in a file.
pub fn https_node(settings: &[(&str, &str)]) -> Node {
    let mut node = Node::start();
    node.stop();
    for (key, value) in settings {
        node.cli_ok(&["server", "set-config", key, value]);
    }
    node.extra_args = vec!["--https-port".into(), "0".into()];
    node.log = Some(node.dir.path().join("node.log"));
    node.spawn();
    node
}

/// A node inside the test process with `settings` applied before its first start
/// (HTTPS on a free port).
pub fn https_node_in_process(settings: &[(&str, &str)]) -> Node {
    Node::in_process_with(settings, None)
}

/// The HTTPS port the node printed (in process: the one it bound).
pub fn https_port(node: &Node) -> u16 {
    if let Some(addr) = node.https_addr {
        return addr.port();
    }
    let line = node.stdout.lines().find(|l| l.trim_start().starts_with("https:")).expect("an https line");
    let port = line.rsplit("port ").next().unwrap().trim_end_matches(')');
    port.parse().unwrap_or_else(|_| panic!("no port in {line:?}"))
}

/// The node's log so far.
pub fn log(node: &Node) -> String {
    std::fs::read_to_string(node.log.as_ref().unwrap()).unwrap_or_default()
}

/// Runs curl against the node at `url` (names resolved to loopback).
pub fn curl(args: &[&str], port: u16, host: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(args)
        .output()
        .expect("curl (tests/setup installs it)")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `curl [extra] https://<host>:<port><path>` trusting `ca`: the output, or a panic.
fn https_ok(ca: &Path, port: u16, host: &str, path: &str, extra: &[&str]) -> String {
    let url = format!("https://{host}:{port}{path}");
    let mut args = extra.to_vec();
    args.extend(["--cacert", ca.to_str().unwrap(), url.as_str()]);
    ok(&curl(&args, port, host))
}

/// `openssl s_client` with `args`, its stdin closed; returns stdout + stderr.
pub fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl (tests/setup installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Waits up to 20 s for `f`.
fn wait_for(f: impl FnMut() -> bool) {
    wait_for_secs(20, f)
}

/// Waits up to `secs` seconds for `f`.
pub fn wait_for_secs(secs: u64, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out after {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn download_ca(node: &Node) -> PathBuf {
    let path = node.dir.path().join("ca.pem");
    node.cli_ok(&["cert", "ca", "-o", path.to_str().unwrap()]);
    path
}

#[test]
fn https_lan_ca_certificate_verifies_with_curl_and_openssl() {
    let node =
        https_node(&[("https.mode", "lan"), ("beacon.enabled", "false"), ("beacon.name", "kitchen-pi")]);
    let port = https_port(&node);
    assert!(node.stdout.contains("LAN CA:    sha256 "), "{}", node.stdout);
    let ca = download_ca(&node);
    let ca_arg = ca.to_str().unwrap();
    // The same certificate from the unauthenticated endpoint, over plain HTTP.
    let plain = node.get("admin.localhost", "/api/tls/ca.pem");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), std::fs::read_to_string(&ca).unwrap());

    // The admin app, an app subdomain, the .local name and the bare IP all verify.
    let health = https_ok(&ca, port, "admin.localhost", "/api/system/health", &[]);
    assert!(health.contains("\"ok\""), "{health}");
    // A new app's name is added to the certificate when it is deployed.
    node.deploy_files("blog", &[("index.html", b"<h1>tls blog</h1>")]);
    let blog_url = format!("https://blog.localhost:{port}/");
    wait_for(|| curl(&["--cacert", ca_arg, &blog_url], port, "blog.localhost").status.success());
    let blog = ok(&curl(&["--cacert", ca_arg, &blog_url], port, "blog.localhost"));
    assert!(blog.contains("tls blog"), "{blog}");
    // Each issuance of the LAN certificate is a cert.issued event: at start, and again
    // for the new app's name (before the certificate was served).
    let issued = node.api("GET", "/api/events?since=0&type=cert.issued", None).json();
    let issued = issued["events"].as_array().unwrap().clone();
    assert!(issued.len() >= 2, "{issued:?}");
    assert!(
        issued.iter().all(|e| e["data"]["issuer"] == "lan-ca" && e["data"]["name"] == "lan"),
        "{issued:?}"
    );
    let names = |e: &serde_json::Value| e["data"]["names"].as_array().unwrap().clone();
    assert!(names(&issued[0]).contains(&"kitchen-pi.local".into()), "{issued:?}");
    assert!(names(issued.last().unwrap()).contains(&"blog.localhost".into()), "{issued:?}");
    assert!(issued[0]["data"]["not_after"].as_str().unwrap().ends_with('Z'));
    https_ok(&ca, port, "kitchen-pi.local", "/", &[]);
    https_ok(&ca, port, "127.0.0.1", "/", &[]);

    // ALPN: curl gets HTTP/2 by default and HTTP/1.1 when it asks for it. Over HTTP/1.1
    // two requests share one connection: the second finds it open after it idled.
    let cases: [(&[&str], &str); 3] = [
        (&["-w", "%{http_version}"], "2"),
        (&["--http1.1", "-w", "%{http_version}"], "1.1"),
        (
            &["--http1.1", "-w", "%{http_version} %{num_connects};", "-o", "/dev/null", &blog_url],
            "1.1 1;1.1 0;",
        ),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["-o", "/dev/null"];
        args.extend(extra);
        assert_eq!(https_ok(&ca, port, "blog.localhost", "/", &args), expect, "{extra:?}");
    }

    // openssl: the chain verifies; TLS 1.2 and 1.3 are spoken, each with ALPN.
    for (version, alpn) in [("-tls1_3", "h2"), ("-tls1_2", "http/1.1"), ("-tls1_2", "h2")] {
        let (_, text) =
            s_client(port, &[version, "-servername", "blog.localhost", "-alpn", alpn, "-CAfile", ca_arg]);
        assert!(text.contains("Verify return code: 0 (ok)"), "{version}: {text}");
        assert!(text.contains(&format!("ALPN protocol: {alpn}")), "{version} {alpn}: {text}");
        let proto = if version == "-tls1_3" { "TLSv1.3" } else { "TLSv1.2" };
        assert!(
            text.contains(&format!("Protocol  : {proto}")) || text.contains(&format!("New, {proto}")),
            "{text}"
        );
    }
    // TLS 1.1 and 1.0 are refused.
    for version in ["-tls1_1", "-tls1"] {
        let (success, text) =
            s_client(port, &[version, "-servername", "blog.localhost", "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!success && text.contains("Cipher is (NONE)"), "{version} was accepted: {text}");
    }

    // The CA and the certificate survive a restart unchanged (they live in data.db).
    let first = std::fs::read_to_string(&ca).unwrap();
    let mut node = node;
    node.stop();
    node.spawn();
    let port = https_port(&node);
    assert_eq!(std::fs::read_to_string(download_ca(&node)).unwrap(), first);
    https_ok(&ca, port, "admin.localhost", "/", &[]);
}

/// A self-signed certificate and key for `name` made by openssl, valid `days` days.
fn openssl_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
        ])
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

#[test]
fn https_custom_certificates_are_served_and_bad_ones_refused() {
    let node = https_node_in_process(&[("https.mode", "lan"), ("beacon.enabled", "false")]);
    let port = https_port(&node);
    let dir = node.dir.path();
    let (cert, key) = openssl_cert(dir, "shop.localhost");
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let out = node.cli_ok(&["cert", "add", "shop.localhost", "--cert", cert_s, "--key", key_s]);
    assert!(out.contains("serving shop.localhost"), "{out}");
    // Served for its name (verifies against itself), and listed.
    ok(&curl(&["--cacert", cert_s, &format!("https://shop.localhost:{port}/")], port, "shop.localhost"));
    let list = node.cli_ok(&["cert", "list"]);
    assert!(list.contains("shop.localhost") && list.contains("custom"), "{list}");

    // Bad input: a clear one-line error, exit 2, nothing changed.
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
    let (other_cert, other_key) = openssl_cert(dir, "other.localhost");
    let expired = expired_cert(dir, "old.localhost");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["shop.localhost", "--cert", garbage.to_str().unwrap(), "--key", key_s], "malformed PEM"),
        (vec!["shop.localhost", "--cert", cert_s, "--key", other_key.to_str().unwrap()], "does not match"),
        (
            vec![
                "shop.localhost",
                "--cert",
                other_cert.to_str().unwrap(),
                "--key",
                other_key.to_str().unwrap(),
            ],
            "does not cover",
        ),
        (
            vec![
                "old.localhost",
                "--cert",
                expired.0.to_str().unwrap(),
                "--key",
                expired.1.to_str().unwrap(),
            ],
            "expired",
        ),
        (vec!["shop.localhost", "--cert", "/nonexistent.pem", "--key", key_s], "cannot read"),
        (vec!["bad name", "--cert", cert_s, "--key", key_s], "invalid domain"),
    ];
    for (args, expect) in cases {
        let mut all = vec!["cert", "add"];
        all.extend(args);
        let out = node.cli(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
        assert!(err.contains(expect), "{all:?}: expected {expect:?} in {err}");
    }
    assert_eq!(node.cli_ok(&["cert", "list"]), list, "a refused certificate changed nothing");
    ok(&curl(&["--cacert", cert_s, &format!("https://shop.localhost:{port}/")], port, "shop.localhost"));

    // Removed: the name falls back to the LAN certificate.
    node.cli_ok(&["cert", "remove", "shop.localhost"]);
    let out = curl(&["--cacert", cert_s, &format!("https://shop.localhost:{port}/")], port, "shop.localhost");
    assert!(!out.status.success());
    let out = node.cli(&["cert", "remove", "shop.localhost"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A certificate whose validity ended yesterday (rcgen, as openssl cannot back-date).
fn expired_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn https_redirect_and_no_hsts_with_the_lan_ca() {
    let node = https_node_in_process(&[
        ("https.mode", "lan"),
        ("beacon.enabled", "false"),
        ("https.redirect", "true"),
        ("https.hsts_max_age", "600"),
    ]);
    let port = https_port(&node);
    let resp = node.get("blog.localhost", "/a/b?c=d");
    assert_eq!(resp.status, 308);
    assert_eq!(resp.header("location"), Some(format!("https://blog.localhost:{port}/a/b?c=d").as_str()));
    // A bare IP has no name to redirect to: served as before.
    assert_eq!(node.get(&format!("127.0.0.1:{}", node.addr.port()), "/").status, 200);
    let ca = download_ca(&node);
    let head = ok(&curl(
        &[
            "--cacert",
            ca.to_str().unwrap(),
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("https://admin.localhost:{port}/"),
        ],
        port,
        "admin.localhost",
    ));
    // HSTS never comes with the LAN CA, even when asked for: a browser that does not trust
    // the CA yet must still be able to pass its warning (issue 17).
    assert!(head.starts_with("HTTP/"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("strict-transport-security"), "{head}");

    // Over HTTPS the session cookie is Secure and `__Host-`, which an app on a sibling
    // subdomain cannot set for the admin host (issue 17, cookie tossing).
    let body = serde_json::json!({"password": node.password.clone().unwrap()}).to_string();
    let login = https_ok(
        &ca,
        port,
        "admin.localhost",
        "/api/login",
        &["-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/json", "--data", &body],
    );
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .unwrap_or_else(|| panic!("no cookie: {login}"));
    assert!(cookie.starts_with("__Host-fazt_session=") && cookie.contains("; Secure;"), "{cookie}");
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    let session = cookie.split(';').next().unwrap();
    let tossed = format!("Cookie: fazt_session=tossed; {session}");
    let me = https_ok(&ca, port, "admin.localhost", "/api/me", &["-H", &tossed]);
    assert!(me.contains("\"user\":\"admin\""), "{me}");

    // The CLI follows the node to HTTPS when told to trust its LAN CA; a CA file it
    // cannot read is a clear error (exit 2).
    let cases: [(&Path, Option<&str>); 2] =
        [(&ca, None), (Path::new("/nonexistent/ca.pem"), Some("--ca-file: cannot read /nonexistent/ca.pem"))];
    for (ca_file, error) in cases {
        let out = std::process::Command::new(crate::support::fazt_bin())
            .args(["app", "list"])
            .env("FAZT_SERVER", format!("https://admin.localhost:{port}"))
            .env("FAZT_TOKEN", &node.token)
            .env("FAZT_CA_FILE", ca_file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match error {
            None => assert!(out.status.success(), "{stderr}"),
            Some(error) => assert!(out.status.code() == Some(2) && stderr.contains(error), "{stderr}"),
        }
    }
}

#[test]
fn https_hostile_handshakes_leave_the_node_serving() {
    let node = https_node(&[("https.mode", "lan"), ("beacon.enabled", "false")]);
    let port = https_port(&node);
    let addr = format!("127.0.0.1:{port}");
    let ca = download_ca(&node);
    // Not TLS at all, a ClientHello with a lying length, and a truncated one.
    let hostile: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0xff, 0xfb, 0x03, 0x03, 0x00],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
        &[0x16, 0x03, 0x03, 0x00, 0x00],
    ];
    for bytes in hostile {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(bytes).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        // Either an alert record (type 21) or a plain close, never a hang.
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    }
    // A bounded flood: 300 connections that start a handshake and never finish it.
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&addr).ok()?;
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).ok()?;
            Some(s)
        })
        .collect();
    // While they hang, a real client still gets through.
    https_ok(&ca, port, "admin.localhost", "/", &[]);
    drop(flood);
    // An unknown name gets the LAN certificate, which does not verify for it.
    let out = curl(
        &["--cacert", ca.to_str().unwrap(), &format!("https://evil.example.com:{port}/")],
        port,
        "evil.example.com",
    );
    assert!(!out.status.success());
    https_ok(&ca, port, "admin.localhost", "/", &[]);
    let log = log(&node);
    assert!(log.contains("TLS handshake from 127.0.0.1"), "{log}");
    wait_for(|| crate::https::log(&node).contains("TLS handshake for unknown name 'evil.example.com'"));
}

/// `https.max_handshakes`: a flood of handshakes that never finish holds at most the
/// cap; each newcomer over it closes the oldest, so a real client still gets through,
/// and the evictions are counted (`GET /api/tls`) and logged.
#[test]
fn https_handshake_cap_closes_the_oldest_and_keeps_serving() {
    let node =
        https_node(&[("https.mode", "lan"), ("beacon.enabled", "false"), ("https.max_handshakes", "4")]);
    let port = https_port(&node);
    let ca = download_ca(&node);
    let flooders = 40;
    let mut flood: Vec<TcpStream> = (0..flooders)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            // A handshake record header that announces 512 bytes and never sends them.
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
            s
        })
        .collect();
    // The oldest flooder is closed (at once, long before its 10 s handshake timeout
    // would; the read timeout only guards against a hang).
    flood[0].set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(flood[0].read(&mut byte), Ok(0) | Err(_)) || byte[0] == 21);
    // A real client gets through while the rest of the flood still hangs.
    for _ in 0..3 {
        https_ok(&ca, port, "admin.localhost", "/api/system/health", &[]);
    }
    let status = node.api("GET", "/api/tls", None).json();
    let handshakes = &status["handshakes"];
    assert_eq!(handshakes["max"], 4, "{status}");
    assert!(handshakes["in_progress"].as_u64().unwrap() <= 4, "{status}");
    // Every flooder but the last four made room for a newer one, at least.
    assert!(handshakes["evicted"].as_u64().unwrap() >= flooders - 4, "{status}");
    wait_for(|| crate::https::log(&node).contains("too many handshakes in progress (https.max_handshakes)"));
    drop(flood);
}

#[test]
fn https_expired_custom_certificate_is_logged_and_skipped() {
    let mut node = https_node(&[("https.mode", "lan"), ("beacon.enabled", "false")]);
    let dir = node.dir.path().to_path_buf();
    let (cert, key) = openssl_cert(&dir, "late.localhost");
    node.cli_ok(&[
        "cert",
        "add",
        "late.localhost",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    node.stop();
    // Its validity ends while the node is down (rewritten in place to an expired one,
    // its key sealed with the node's machine key as the node itself stores keys).
    let (c, k) = expired_cert(&dir, "late.localhost");
    let machine_key: [u8; 32] =
        std::fs::read(node.dir.path().join("machine.key")).unwrap().try_into().unwrap();
    let sealer =
        fazt_hal::keystore::AeadSealer::new(machine_key, fazt_hal::keystore::KeyOrigin::MachineFile, "test");
    let sealed_key = fazt::keys::sealed_text::seal(
        &sealer,
        "tls_certs:late.localhost",
        &std::fs::read_to_string(k).unwrap(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(node.data()).unwrap();
    conn.execute(
        "UPDATE tls_certs SET chain_pem = ?1, key_pem = ?2 WHERE name = 'late.localhost'",
        [std::fs::read_to_string(c).unwrap(), sealed_key],
    )
    .unwrap();
    drop(conn);
    node.spawn();
    let port = https_port(&node);
    let ca = download_ca(&node);
    https_ok(&ca, port, "admin.localhost", "/", &[]);
    let log = log(&node);
    assert!(log.contains("certificate for 'late.localhost' expired on 2021-01-01"), "{log}");
}
