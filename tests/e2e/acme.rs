//! HTTPS with certificates from a real ACME CA: Debian's pebble on loopback, with
//! pebble-challtestsrv as its DNS (every name is 127.0.0.1), validating HTTP-01 against
//! the node's own HTTP port. Issuance for the domain and an app on first use, renewal,
//! the account key kept across restarts, and recovery after the CA was away.

use crate::https::{https_port, log};
use crate::support::{raw_request, tar_gz, Node, Resp};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "fazt.test";

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// pebble and its DNS, killed on drop.
struct Pebble {
    dir: tempfile::TempDir,
    port: u16,
    management: u16,
    dns: u16,
    http_port: u16,
    tls_port: u16,
    pebble: Option<Child>,
    dns_server: Option<Child>,
}

impl Pebble {
    /// Prepares pebble (its listener certificate, config, DNS) validating HTTP-01 on
    /// `http_port`; `start` runs it.
    fn new(http_port: u16) -> Pebble {
        Self::with_ports(http_port, free_tcp())
    }

    /// Like `new`, validating TLS-ALPN-01 on `tls_port`.
    fn with_ports(http_port: u16, tls_port: u16) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        // pebble's own listener: a leaf under a test CA (rustls, like browsers, refuses a
        // CA certificate presented as the server's own).
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "pebble listener test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        let dns = free_udp();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", &format!("127.0.0.1:{dns}")])
            .args([
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_tcp()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (tests/setup installs pebble)");
        Pebble {
            port: free_tcp(),
            management: free_tcp(),
            dns,
            http_port,
            tls_port,
            dir,
            pebble: None,
            dns_server: Some(dns_server),
        }
    }

    /// What to trust for pebble's own listener.
    fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// Starts pebble. Its two ports were free when picked, but another test may bind
    /// one before pebble does: then pebble exits at once, and is started again on new
    /// ports.
    fn start(&mut self) {
        for _ in 0..5 {
            if self.try_start() {
                return;
            }
            let log = std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default();
            assert!(log.contains("address already in use"), "pebble exited:\n{log}");
            (self.port, self.management) = (free_tcp(), free_tcp());
        }
        panic!("pebble found no free port in 5 tries");
    }

    /// Starts pebble and waits until it answers (true) or exits (false).
    fn try_start(&mut self) -> bool {
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{}", self.port),
            "managementListenAddress": format!("127.0.0.1:{}", self.management),
            "certificate": self.dir.path().join("cert.pem"),
            "privateKey": self.dir.path().join("key.pem"),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let path = self.dir.path().join("pebble.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("pebble.log")).unwrap();
        let mut child = Command::new("pebble")
            .arg("-config")
            .arg(&path)
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("pebble (tests/setup installs it)");
        let mut exited = false;
        wait_until(Duration::from_secs(30), "pebble answers", || {
            exited = child.try_wait().unwrap().is_some();
            exited
                || Command::new("curl")
                    .args(["-sf", "--cacert"])
                    .arg(self.cert())
                    .arg(self.directory())
                    .output()
                    .is_ok_and(|o| o.status.success())
        });
        if !exited {
            self.pebble = Some(child);
        }
        !exited
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// pebble's run-time root, which issued certificates chain to.
    fn root(&self) -> PathBuf {
        let path = self.dir.path().join("root.pem");
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(self.cert())
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(&path, out.stdout).unwrap();
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut child) = self.dns_server.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A node for `fazt.test` in ACME mode against `pebble`, on a fixed HTTP port.
fn acme_node(pebble: &Pebble, http_port: u16) -> Node {
    acme_node_with(pebble, http_port, 0, &[])
}

/// Like `acme_node`, on a fixed HTTPS port (0: any) and with `extra` settings.
fn acme_node_with(pebble: &Pebble, http_port: u16, https_port: u16, extra: &[(&str, &str)]) -> Node {
    let mut node = Node::start();
    node.stop();
    let ca_file = pebble.cert();
    for (key, value) in [
        ("domain", DOMAIN),
        ("https.mode", "acme"),
        ("beacon.enabled", "false"),
        ("acme.directory_url", &pebble.directory()),
        ("acme.ca_file", ca_file.to_str().unwrap()),
        ("acme.retry_secs", "1"),
        ("acme.check_secs", "1"),
    ] {
        node.cli_ok(&["server", "set-config", key, value]);
    }
    for (key, value) in extra {
        node.cli_ok(&["server", "set-config", key, value]);
    }
    node.port = http_port;
    node.extra_args = vec!["--https-port".into(), https_port.to_string()];
    node.log = Some(node.dir.path().join("node.log"));
    node.spawn();
    node
}

/// An admin API call with Host `admin.fazt.test`.
fn api(node: &Node, method: &str, path: &str, body: &[u8]) -> Resp {
    let auth = format!("Bearer {}", node.token);
    raw_request(node.addr, method, &format!("admin.{DOMAIN}"), path, &[("Authorization", &auth)], body)
}

fn acme_certs(node: &Node) -> Vec<serde_json::Value> {
    let status = api(node, "GET", "/api/tls", b"").json();
    status["certs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["source"] == "acme")
        .collect()
}

fn has_cert(node: &Node, name: &str) -> bool {
    acme_certs(node).iter().any(|c| c["name"] == name)
}

fn curl(root: &PathBuf, port: u16, host: &str, path: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--resolve", &format!("{host}:{port}:127.0.0.1"), "--cacert"])
        .arg(root)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .unwrap()
}

#[test]
fn acme_pebble_issues_renews_and_reuses_the_account() {
    let http_port = free_tcp();
    let mut pebble = Pebble::new(http_port);
    pebble.start();
    let mut node = acme_node(&pebble, http_port);
    let port = https_port(&node);
    wait_until(Duration::from_secs(90), "the domain and admin have certificates", || {
        has_cert(&node, DOMAIN) && has_cert(&node, &format!("admin.{DOMAIN}"))
    });
    let root = pebble.root();
    let out = curl(&root, port, &format!("admin.{DOMAIN}"), "/api/system/health");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // HSTS is on by default with ACME certificates, over HTTPS only (issue 17).
    let head = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--max-time", "20", "--cacert"])
        .arg(&root)
        .args(["--resolve", &format!("admin.{DOMAIN}:{port}:127.0.0.1")])
        .arg(format!("https://admin.{DOMAIN}:{port}/"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(head.contains("strict-transport-security: max-age=31536000\r\n"), "{head}");
    let plain = raw_request(node.addr, "GET", &format!("admin.{DOMAIN}"), "/", &[], b"");
    assert_eq!(plain.header("strict-transport-security"), None);
    // openssl verifies the chain (leaf + pebble's intermediate) to pebble's root.
    let s = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", DOMAIN, "-CAfile"])
        .arg(&root)
        .args(["-verify_return_error", "-verify_hostname", DOMAIN])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&s.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");

    // No challenge is open now: the challenge path answers like any missing file.
    let plain = raw_request(node.addr, "GET", DOMAIN, "/.well-known/acme-challenge/nope", &[], b"");
    assert_eq!(plain.status, 404);

    // An app's name gets its certificate on first use. The deploy already asks for it,
    // so the first handshake either verifies (the CA was quick) or fails at once with a
    // handshake error (no certificate yet; curl exit 35): it never waits for the CA
    // (that would be curl's timeout, exit 28). A later one verifies.
    let deploy = api(&node, "POST", "/api/deploy?name=blog", &tar_gz(&[("index.html", b"acme blog")]));
    assert_eq!(deploy.status, 200, "{}", deploy.text());
    let blog = format!("blog.{DOMAIN}");
    let first = curl(&root, port, &blog, "/");
    assert!(
        first.status.success() || first.status.code() == Some(35),
        "first handshake: {:?} {}",
        first.status.code(),
        String::from_utf8_lossy(&first.stderr)
    );
    wait_until(Duration::from_secs(90), "blog has a certificate", || {
        curl(&root, port, &blog, "/").status.success()
    });
    assert!(String::from_utf8_lossy(&curl(&root, port, &blog, "/").stdout).contains("acme blog"));
    // A name that is no app gets none (strangers' SNI cannot spend the CA's limits).
    // Its handshake fails at once, the same way as an app's before its certificate.
    let stranger = curl(&root, port, &format!("nobody.{DOMAIN}"), "/");
    assert_eq!(stranger.status.code(), Some(35), "{}", String::from_utf8_lossy(&stranger.stderr));

    // Renewal: the stored expiry is moved to within 30 days; the node renews it.
    let before = cert_row(&node, &blog);
    let conn = rusqlite::Connection::open(node.data()).unwrap();
    let soon = before.1 - (before.1 - now_ms()) + 86_400_000;
    conn.execute("UPDATE tls_certs SET not_after = ?1 WHERE name = ?2", rusqlite::params![soon, blog])
        .unwrap();
    drop(conn);
    wait_until(Duration::from_secs(90), "blog was renewed", || cert_row(&node, &blog).0 != before.0);
    assert!(curl(&root, port, &blog, "/").status.success());
    assert!(!has_cert(&node, &format!("nobody.{DOMAIN}")));

    // The account key is kept in data.db and reused after a restart.
    let data = node.data();
    let accounts = || -> Vec<String> {
        let conn = rusqlite::Connection::open(&data).unwrap();
        let mut stmt = conn.prepare("SELECT credentials FROM acme_accounts").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let account = accounts();
    assert_eq!(account.len(), 1);
    node.stop();
    node.spawn();
    let port = https_port(&node);
    api(&node, "POST", "/api/deploy?name=shop", &tar_gz(&[("index.html", b"shop")]));
    let shop = format!("shop.{DOMAIN}");
    let _ = curl(&root, port, &shop, "/");
    wait_until(Duration::from_secs(90), "shop has a certificate", || {
        curl(&root, port, &shop, "/").status.success()
    });
    assert_eq!(accounts(), account, "the same account, no new one");

    let status = node.cli_ok(&["server", "status"]);
    assert!(status.contains("https:   acme") && status.contains("last issued"), "{status}");
    assert!(!log(&node).contains("panicked"));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// (chain PEM, not_after) of a stored certificate.
fn cert_row(node: &Node, name: &str) -> (String, i64) {
    let conn = rusqlite::Connection::open(node.data()).unwrap();
    conn.query_row("SELECT chain_pem, not_after FROM tls_certs WHERE name = ?1", [name], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

#[test]
fn acme_recovers_after_the_ca_was_unreachable() {
    let http_port = free_tcp();
    let mut pebble = Pebble::new(http_port);
    // The node starts while the CA is down: it keeps serving, logs, backs off, and says
    // so in `server status`.
    let mut node = acme_node(&pebble, http_port);
    wait_until(Duration::from_secs(30), "the error is recorded", || {
        let status = node.cli_ok(&["server", "status"]);
        status.contains("last error") && status.contains("next attempt at")
    });
    assert_eq!(raw_request(node.addr, "GET", "127.0.0.1", "/", &[], b"").status, 200);
    assert!(log(&node).contains("obtaining a certificate failed; backing off"), "{}", log(&node));
    pebble.start();
    wait_until(Duration::from_secs(120), "certificates once the CA is back", || has_cert(&node, DOMAIN));
    // The failure and then the certificate were events (cert.issued comes just after the
    // row is stored, so it is waited for too).
    let cert_events = |kind: &str| -> Vec<serde_json::Value> {
        let page = api(&node, "GET", &format!("/api/events?since=0&limit=1000&type={kind}"), b"").json();
        page["events"].as_array().cloned().unwrap_or_default()
    };
    let failing = cert_events("cert.failing");
    let first = failing.first().unwrap_or_else(|| panic!("no cert.failing event"));
    assert!([DOMAIN.to_string(), format!("admin.{DOMAIN}")]
        .contains(&first["data"]["name"].as_str().unwrap().to_string()));
    assert!(first["data"]["error"].as_str().unwrap().starts_with("ACME"), "{first}");
    assert!(first["data"]["next_retry"].as_str().unwrap().ends_with('Z'), "{first}");
    assert_eq!((first["app"].is_null(), first["visibility"].as_str()), (true, Some("private")));
    wait_until(Duration::from_secs(30), "cert.issued for the domain", || {
        cert_events("cert.issued").iter().any(|e| e["data"]["name"] == DOMAIN)
    });
    let issued = cert_events("cert.issued");
    let issued = issued.iter().find(|e| e["data"]["name"] == DOMAIN).unwrap();
    assert_eq!(issued["data"]["issuer"], "acme");
    assert_eq!(issued["data"]["names"], serde_json::json!([DOMAIN]));
    assert!(issued["data"]["not_after"].as_str().unwrap().ends_with('Z'), "{issued}");
    let root = pebble.root();
    let port = https_port(&node);
    assert!(curl(&root, port, DOMAIN, "/").status.success());
    node.stop();
    let _ = SocketAddr::from(([127, 0, 0, 1], port));
}

#[test]
fn acme_tls_alpn_01_challenge() {
    // pebble checks TLS-ALPN-01 on the node's HTTPS port; nothing listens on the
    // HTTP-01 port it was given, so only TLS-ALPN-01 can succeed.
    let (http_port, tls_port, unused) = (free_tcp(), free_tcp(), free_tcp());
    let mut pebble = Pebble::with_ports(unused, tls_port);
    pebble.start();
    let node = acme_node_with(&pebble, http_port, tls_port, &[("acme.challenge", "tls-alpn-01")]);
    assert_eq!(https_port(&node), tls_port);
    wait_until(Duration::from_secs(90), "certificates by TLS-ALPN-01", || has_cert(&node, DOMAIN));
    let root = pebble.root();
    assert!(curl(&root, tls_port, DOMAIN, "/").status.success());
    let log = std::fs::read_to_string(pebble.dir.path().join("pebble.log")).unwrap();
    assert!(log.contains("set VALID by completed challenge") && !log.contains("validate w/ HTTP"), "{log}");
}
