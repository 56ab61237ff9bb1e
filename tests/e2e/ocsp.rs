//! OCSP stapling against real OCSP responders: `openssl ocsp` processes on loopback,
//! answering from an openssl CA index (good certificates and a revoked one). One signs
//! as a delegated responder, one as the CA itself; hostile ones sign with a stranger's
//! key, a CA-issued certificate without the OCSP-signing purpose, or the delegate of a
//! rogue CA with the same name; two plain servers answer garbage and 1 MB. The client
//! side is `openssl s_client -status`.

use crate::https::{https_node, https_port, log, s_client, wait_for_secs};
use crate::support::Node;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Runs openssl with `args` in `dir`, or panics with its stderr.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl (tests/setup)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A free loopback port (the responder binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A P-256 key and a certificate for `name` with the extensions `exts` (openssl
/// syntax), signed by the certificate and key `<signer>.crt|.key` in `dir`, or
/// self-signed when `signer` is None.
fn issue(dir: &Path, name: &str, serial: &str, exts: &[&str], signer: Option<&str>) -> (PathBuf, PathBuf) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let subject = format!("/CN={name}");
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &subject,
        "-keyout",
        &key,
    ];
    match signer {
        None => {
            let mut args = vec!["req", "-x509", "-days", "30", "-set_serial", serial, "-out", &crt];
            args.extend(new_key);
            for ext in exts {
                args.extend(["-addext", ext]);
            }
            openssl(dir, &args);
        }
        Some(ca) => {
            let (csr, ext_file) = (format!("{name}.csr"), format!("{name}.ext"));
            std::fs::write(dir.join(&ext_file), format!("[v3]\n{}\n", exts.join("\n"))).unwrap();
            let mut args = vec!["req", "-new", "-out", &csr];
            args.extend(new_key);
            openssl(dir, &args);
            let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_crt,
                    "-CAkey",
                    &ca_key,
                    "-set_serial",
                    serial,
                    "-days",
                    "30",
                    "-extfile",
                    &ext_file,
                    "-extensions",
                    "v3",
                    "-out",
                    &crt,
                ],
            );
        }
    }
    (dir.join(crt), dir.join(key))
}

/// A leaf for `name` whose OCSP responder is on loopback `port`, as `fullchain.pem`
/// (leaf then CA) and key.
fn leaf(dir: &Path, name: &str, serial: &str, port: u16) -> (PathBuf, PathBuf) {
    let (san, aia) = (
        format!("subjectAltName=DNS:{name}"),
        format!("authorityInfoAccess=OCSP;URI:http://127.0.0.1:{port}/"),
    );
    let (crt, key) = issue(dir, name, serial, &[&san, &aia, "extendedKeyUsage=serverAuth"], Some("ca"));
    let chain = dir.join(format!("{name}.chain.pem"));
    let mut pem = std::fs::read_to_string(&crt).unwrap();
    pem.push_str(&std::fs::read_to_string(dir.join("ca.crt")).unwrap());
    std::fs::write(&chain, pem).unwrap();
    (chain, key)
}

/// `openssl ocsp` answering on `port` from the index in `dir`, signing with `signer`.
struct Responder(Child);

impl Responder {
    fn start(dir: &Path, port: u16, signer: &str) -> Responder {
        let log = dir.join(format!("responder-{port}.log"));
        let child = Command::new("openssl")
            .current_dir(dir)
            .args(["ocsp", "-index", "index.txt", "-CA", "ca.crt", "-ndays", "1", "-ignore_err"])
            .args([
                "-port",
                &port.to_string(),
                "-rsigner",
                &format!("{signer}.crt"),
                "-rkey",
                &format!("{signer}.key"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("openssl ocsp");
        // Ready once it says so. (Not by probing the port: a connection closed without a
        // request hangs this single-threaded responder.)
        wait_for_secs(10, || {
            std::fs::read_to_string(&log).unwrap_or_default().contains("waiting for OCSP client connections")
        });
        Responder(child)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP server on `port` answering every request with `body` (a broken responder).
fn junk_responder(port: u16, body: Vec<u8>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
}

/// The `ocsp` object of certificate `name` in `GET /api/tls`.
fn ocsp_of(node: &Node, name: &str) -> serde_json::Value {
    let status = node.api("GET", "/api/tls", None).json();
    let certs = status["certs"].as_array().cloned().unwrap_or_default();
    certs.into_iter().find(|c| c["name"] == name).map(|c| c["ocsp"].clone()).unwrap_or_default()
}

fn add(node: &Node, name: &str, (chain, key): &(PathBuf, PathBuf)) {
    node.cli_ok(&["cert", "add", name, "--cert", chain.to_str().unwrap(), "--key", key.to_str().unwrap()]);
}

#[test]
fn ocsp_answers_are_stapled_refreshed_kept_and_bad_ones_refused() {
    let mut node = https_node(&[("https.mode", "lan"), ("beacon.enabled", "false")]);
    let port = https_port(&node);
    let dir = node.dir.path().join("pki");
    std::fs::create_dir(&dir).unwrap();
    let ca_exts =
        ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"];
    issue(&dir, "ca", "1", &ca_exts, None);
    issue(&dir, "delegate", "0x2001", &["extendedKeyUsage=OCSPSigning"], Some("ca"));
    issue(&dir, "stranger", "0x2002", &["extendedKeyUsage=OCSPSigning"], None);
    // A delegate the CA issued without the OCSP-signing purpose.
    issue(&dir, "plain-delegate", "0x2003", &["extendedKeyUsage=serverAuth"], Some("ca"));
    // A rogue CA with the same name as the real one, and an OCSP delegate it issued.
    let rogue = dir.join("rogue");
    std::fs::create_dir(&rogue).unwrap();
    issue(&rogue, "ca", "1", &ca_exts, None);
    issue(&rogue, "delegate", "0x3001", &["extendedKeyUsage=OCSPSigning"], Some("ca"));
    let (no_eku, rogue_port) = (free_port(), free_port());
    let (delegated, by_ca, forged, junk, huge) =
        (free_port(), free_port(), free_port(), free_port(), free_port());
    let shop = leaf(&dir, "shop.localhost", "0x1001", delegated);
    let gone = leaf(&dir, "gone.localhost", "0x1002", by_ca);
    let fake = leaf(&dir, "fake.localhost", "0x1003", forged);
    let junky = leaf(&dir, "junk.localhost", "0x1004", junk);
    let big = leaf(&dir, "big.localhost", "0x1005", huge);
    let unfit = leaf(&dir, "unfit.localhost", "0x1006", no_eku);
    let rogued = leaf(&dir, "rogue.localhost", "0x1007", rogue_port);
    // The CA's index: 1001, 1003, 1004, 1005 valid; 1002 revoked.
    let mut index = String::new();
    for (flag, revoked, serial, cn) in [
        ("V", "", "1001", "shop"),
        ("R", "261101000000Z", "1002", "gone"),
        ("V", "", "1003", "fake"),
        ("V", "", "1004", "junk"),
        ("V", "", "1005", "big"),
        ("V", "", "1006", "unfit"),
        ("V", "", "1007", "rogue"),
    ] {
        index.push_str(&format!("{flag}\t301231000000Z\t{revoked}\t{serial}\tunknown\t/CN={cn}.localhost\n"));
    }
    std::fs::write(dir.join("index.txt"), index).unwrap();
    std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n").unwrap();

    // Added while its responder is down: served without a staple, the failure shown.
    add(&node, "shop.localhost", &shop);
    wait_for_secs(20, || ocsp_of(&node, "shop.localhost")["status"] == "error");
    let status = ocsp_of(&node, "shop.localhost");
    assert_eq!(status["stapled"], false, "{status}");
    assert!(status["error"].as_str().unwrap().contains("127.0.0.1"), "{status}");
    let (ok, text) = s_client(port, &["-servername", "shop.localhost", "-status"]);
    assert!(ok && text.contains("OCSP response: no response sent"), "{text}");

    // The responder comes up (a delegated signer): the retry staples its answer.
    let delegate_responder = Responder::start(&dir, delegated, "delegate");
    wait_for_secs(30, || ocsp_of(&node, "shop.localhost")["stapled"] == true);
    let status = ocsp_of(&node, "shop.localhost");
    assert_eq!(status["status"], "good", "{status}");
    let (ok, text) = s_client(port, &["-servername", "shop.localhost", "-status"]);
    assert!(ok && text.contains("OCSP Response Status: successful"), "{text}");
    assert!(text.contains("Cert Status: good"), "{text}");
    let list = node.cli_ok(&["cert", "list"]);
    assert!(list.contains("OCSP good") && list.contains("stapled, valid until"), "{list}");

    // Revoked (the CA signs itself): never stapled, shown and logged loudly.
    let _ca_responder = Responder::start(&dir, by_ca, "ca");
    add(&node, "gone.localhost", &gone);
    wait_for_secs(20, || ocsp_of(&node, "gone.localhost")["status"] == "revoked");
    let (_, text) = s_client(port, &["-servername", "gone.localhost", "-status"]);
    assert!(text.contains("OCSP response: no response sent"), "{text}");
    assert!(log(&node).contains("REVOKED"), "{}", log(&node));
    assert!(node.cli_ok(&["cert", "list"]).contains("REVOKED by the CA"));

    // Hostile responders: signed by a stranger, by a delegate without the OCSP-signing
    // purpose, by a delegate of a rogue CA of the same name; garbage; 1 MB. Refused,
    // nothing stapled.
    let _forger = Responder::start(&dir, forged, "stranger");
    let _unfit = Responder::start(&dir, no_eku, "plain-delegate");
    let _rogue = Responder::start(&dir, rogue_port, "rogue/delegate");
    junk_responder(junk, b"<html>this is not OCSP</html>".to_vec());
    junk_responder(huge, vec![0x30; 1 << 20]);
    add(&node, "fake.localhost", &fake);
    add(&node, "junk.localhost", &junky);
    add(&node, "big.localhost", &big);
    add(&node, "unfit.localhost", &unfit);
    add(&node, "rogue.localhost", &rogued);
    for (name, expect) in [
        ("fake.localhost", "not signed by the certificate's issuer"),
        ("unfit.localhost", "not signed by the certificate's issuer"),
        ("rogue.localhost", "not signed by the certificate's issuer"),
        ("junk.localhost", "malformed OCSP response"),
        ("big.localhost", "larger than"),
    ] {
        wait_for_secs(20, || ocsp_of(&node, name)["status"] == "error");
        let status = ocsp_of(&node, name);
        assert!(status["error"].as_str().unwrap_or("").contains(expect), "{name}: {status}");
        let (_, text) = s_client(port, &["-servername", name, "-status"]);
        assert!(text.contains("OCSP response: no response sent"), "{name}: {text}");
    }

    // Restarted with every responder gone: the kept answer is checked and stapled again.
    drop(delegate_responder);
    node.stop();
    node.spawn();
    let port = https_port(&node);
    let status = ocsp_of(&node, "shop.localhost");
    assert_eq!(status["stapled"], true, "{status}");
    let (ok, text) = s_client(port, &["-servername", "shop.localhost", "-status"]);
    assert!(ok && text.contains("Cert Status: good"), "{text}");
    // Removing the certificate forgets its answer.
    let kept = |node: &Node| -> i64 {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let db = rusqlite::Connection::open_with_flags(node.data(), flags).unwrap();
        db.query_row("SELECT count(*) FROM tls_ocsp WHERE name = 'shop.localhost'", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(kept(&node), 1);
    node.cli_ok(&["cert", "remove", "shop.localhost"]);
    assert_eq!(kept(&node), 0);
    assert!(node.integrity().contains("ok"));
}
