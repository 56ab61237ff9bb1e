//! Keys and sealed secrets: the software keystore (machine.key beside data.db), a
//! database moved to another machine, rotation, and, with `--features tpm`, a real
//! software TPM (Debian's `swtpm`, started here on loopback; `tests/setup-tpm`).

use crate::https::{curl, https_node, https_port, log};
use crate::support::{fazt_bin, Node};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The node id the node printed at start.
fn node_id(node: &Node) -> String {
    node.stdout
        .lines()
        .find_map(|l| l.split("(node ").nth(1))
        .map(|rest| rest.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no node id in:\n{}", node.stdout))
}

/// The LAN CA certificate, downloaded through the CLI.
fn lan_ca(node: &Node, file: &str) -> (PathBuf, String) {
    let path = node.dir.path().join(file);
    node.cli_ok(&["cert", "ca", "-o", path.to_str().unwrap()]);
    let pem = std::fs::read_to_string(&path).unwrap();
    (path, pem)
}

/// `https://localhost/` through curl, verified against `ca`.
fn verified_get(node: &Node, ca: &Path) -> Output {
    let port = https_port(node);
    curl(&["--cacert", ca.to_str().unwrap(), &format!("https://localhost:{port}/")], port, "localhost")
}

const ENV_APP: &str = "module.exports = async () => ({ json: { token: fazt.app.env.TOKEN ?? null } })";

/// Deploys an app that returns its `TOKEN` variable, and sets it.
fn app_with_secret(node: &Node, value: &str) {
    assert_eq!(node.deploy_files("vault", &[("api/main.js", ENV_APP.as_bytes())]).status, 200);
    node.cli_ok(&["app", "env", "set", "vault", &format!("TOKEN={value}")]);
}

/// The `TOKEN` the app sees.
fn app_secret(node: &Node) -> serde_json::Value {
    node.get("vault.localhost", "/api/x").json()["token"].clone()
}

/// Every `(name, algorithm, material)` row of node_keys.
fn key_rows(data: &Path) -> Vec<(String, String, Vec<u8>)> {
    let conn = rusqlite::Connection::open(data).unwrap();
    let mut stmt = conn.prepare("SELECT name, algorithm, seed FROM node_keys ORDER BY name").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Puts a copy of `from`'s database (a backup) in place of `to`'s; both stopped.
fn copy_db(from: &Node, to: &Node) {
    let backup = from.dir.path().join(format!("copy-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&backup);
    from.cli_ok(&["backup", "create", backup.to_str().unwrap()]);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", to.data().display()));
    }
    std::fs::copy(&backup, to.data()).unwrap();
}

/// Runs `fazt <args>` on `data` with no node running.
fn offline(data: &Path, args: &[&str]) -> Output {
    Command::new(fazt_bin()).args(args).env("FAZT_DATA", data).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts a node on an existing data file and returns its output if it fails to start.
fn start_fails(data: &Path) -> String {
    let out = Command::new(fazt_bin())
        .args(["server", "start", "--listen", "127.0.0.1", "--port", "0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the node started:\n{}", String::from_utf8_lossy(&out.stdout));
    stderr(&out)
}

#[test]
fn keys_software_secrets_are_sealed_with_the_machine_key_and_never_stored_in_the_clear() {
    let mut node = https_node(&[("https.mode", "lan")]);
    let id = node_id(&node);
    let (ca, ca_pem) = lan_ca(&node, "ca.pem");
    assert!(verified_get(&node, &ca).status.success(), "{}", log(&node));
    app_with_secret(&node, "s3cr3t-api-key");
    assert_eq!(app_secret(&node), "s3cr3t-api-key");
    node.stop();

    let key = node.dir.path().join("machine.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    for (name, algorithm, material) in key_rows(&node.data()) {
        if algorithm != "canary" {
            assert_eq!(material.len(), 1 + 12 + 32 + 16, "{name} is a sealed seed");
        }
        assert_eq!(material[0], 0xF1, "{name} is sealed by the machine file");
    }
    // A backup file holds no private key in the clear.
    let backup = node.dir.path().join("backup.db");
    node.cli_ok(&["backup", "create", backup.to_str().unwrap()]);
    let bytes = std::fs::read(&backup).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("PRIVATE KEY"), "a PEM private key is in the backup");
    assert!(!text.contains("s3cr3t-api-key"), "an app secret is in the backup");
    let listed = node.cli_ok(&["keys", "list"]);
    assert!(listed.contains("node (ed25519)") && listed.contains("sealed with machine.key"), "{listed}");
    node.spawn();
    let api = node.api("GET", "/api/system/keys", None).json();
    assert_eq!(api["backend"], "software", "{api}");
    let node_key = api["keys"].as_array().unwrap().iter().find(|k| k["name"] == "node").cloned().unwrap();
    assert_eq!(node_key["held"], "sealed with machine.key");
    assert!(!api.to_string().contains("s3cr3t-api-key"));
    assert!(node.api("GET", "/api/system/health", None).json()["keys"]
        .as_str()
        .unwrap()
        .starts_with("software"));
    assert_eq!(
        node.get("admin.localhost", "/api/system/keys").status,
        401,
        "the admin API needs credentials"
    );
    node.stop();
    assert!(listed.contains("certificate-key lan") && listed.contains("app-env "), "{listed}");
    assert!(!listed.contains("in the clear"), "{listed}");

    // Restart: same identity, same CA, secrets open.
    node.spawn();
    assert_eq!(node_id(&node), id);
    assert_eq!(lan_ca(&node, "ca2.pem").1, ca_pem);
    assert!(verified_get(&node, &ca).status.success());
    assert_eq!(app_secret(&node), "s3cr3t-api-key");
}

#[test]
fn keys_a_database_moved_without_its_machine_key_is_refused_until_reset() {
    let mut node = https_node(&[("https.mode", "lan")]);
    let id = node_id(&node);
    let (_, ca_pem) = lan_ca(&node, "ca.pem");
    app_with_secret(&node, "moved-secret");
    node.stop();

    // With its machine key, the copy is the same node.
    let mut same = https_node(&[("https.mode", "lan")]);
    same.stop();
    copy_db(&node, &same);
    std::fs::copy(node.dir.path().join("machine.key"), same.dir.path().join("machine.key")).unwrap();
    same.spawn();
    assert_eq!(node_id(&same), id);
    assert_eq!(app_secret(&same), "moved-secret");
    same.stop();

    // With another machine's key, or none, nothing opens: the node refuses to start,
    // says what is lost and how to go on, and changes nothing.
    let mut moved = https_node(&[("https.mode", "lan")]);
    moved.stop();
    copy_db(&node, &moved);
    let before = key_rows(&moved.data());
    let err = start_fails(&moved.data());
    assert!(err.contains("sealed on another machine") && err.contains("fazt keys reset --yes"), "{err}");
    assert!(err.contains("the node identity") && err.contains("environment variable TOKEN of app"), "{err}");
    assert_eq!(key_rows(&moved.data()), before, "nothing changed");
    std::fs::remove_file(moved.dir.path().join("machine.key")).unwrap();
    let err = start_fails(&moved.data());
    assert!(err.contains("machine.key is missing") && err.contains("fazt keys reset --yes"), "{err}");
    assert!(!moved.dir.path().join("machine.key").exists(), "no new machine key over sealed secrets");
    assert_eq!(key_rows(&moved.data()), before, "nothing changed");

    // Reset: new identity, new CA, the node serves; the lost value is gone, not garbage.
    let refused = moved.cli(&["keys", "reset"]);
    assert!(!refused.status.success() && stderr(&refused).contains("--yes"));
    let out = moved.cli_ok(&["keys", "reset", "--yes"]);
    assert!(out.contains("set aside") && out.contains("app environment variable"), "{out}");
    moved.spawn();
    assert_ne!(node_id(&moved), id, "a new identity");
    let (ca, new_pem) = lan_ca(&moved, "ca.pem");
    assert_ne!(new_pem, ca_pem, "a new LAN CA");
    assert!(verified_get(&moved, &ca).status.success(), "{}", log(&moved));
    assert_eq!(app_secret(&moved), serde_json::Value::Null);
    let listed = moved.cli_ok(&["keys", "list"]);
    assert!(listed.contains("node@orphaned-") && listed.contains("set aside"), "{listed}");
}

#[test]
fn keys_sealed_in_the_clear_by_an_older_version_are_sealed_at_start() {
    let mut node = Node::start();
    let id = node_id(&node);
    app_with_secret(&node, "placeholder");
    node.stop();
    // What an older fazt left: plain seeds and values, no public keys, no canary, no
    // machine.key.
    let seed: [u8; 32] = [7; 32];
    {
        let conn = rusqlite::Connection::open(node.data()).unwrap();
        conn.execute("UPDATE node_keys SET seed = ?1, public_key = NULL WHERE name = 'node'", [&seed[..]])
            .unwrap();
        conn.execute("DELETE FROM node_keys WHERE name != 'node'", []).unwrap();
        conn.execute("UPDATE app_env SET value = 'plain-old-value'", []).unwrap();
    }
    std::fs::remove_file(node.dir.path().join("machine.key")).unwrap();
    let offline_status = offline(&node.data(), &["beacon", "status"]);
    let before = String::from_utf8_lossy(&offline_status.stdout).into_owned();
    node.spawn();
    let old_seed_id = node_id(&node);
    assert_ne!(old_seed_id, id, "the identity is now the one of the stored seed");
    assert!(before.contains(&old_seed_id), "offline status derives the id from a plain seed: {before}");
    assert_eq!(app_secret(&node), "plain-old-value");
    node.stop();
    let rows = key_rows(&node.data());
    let (_, _, material) = rows.iter().find(|r| r.0 == "node").unwrap();
    assert_eq!(material[0], 0xF1, "sealed at start");
    assert!(rows.iter().any(|r| r.1 == "canary"), "a canary now");
    let conn = rusqlite::Connection::open(node.data()).unwrap();
    let value: String = conn.query_row("SELECT value FROM app_env", [], |r| r.get(0)).unwrap();
    assert!(value.starts_with("sealed:") && !value.contains("plain-old-value"), "{value}");
    node.spawn();
    assert_eq!(node_id(&node), old_seed_id, "and still the same identity");
    assert_eq!(app_secret(&node), "plain-old-value");
}

#[test]
fn keys_a_plain_key_planted_in_a_sealed_database_is_refused() {
    let mut node = Node::start();
    node.stop();
    // Someone with write access to data.db puts in a seed of their choosing.
    {
        let conn = rusqlite::Connection::open(node.data()).unwrap();
        conn.execute("UPDATE node_keys SET seed = ?1 WHERE name = 'node'", [&[7u8; 32][..]]).unwrap();
    }
    let before = key_rows(&node.data());
    let err = start_fails(&node.data());
    assert!(err.contains("node identity") && err.contains("damaged"), "{err}");
    assert_eq!(key_rows(&node.data()), before, "not sealed and adopted");
}

#[test]
fn keys_one_damaged_secret_is_left_out_and_the_node_still_starts() {
    let mut node = Node::start();
    let id = node_id(&node);
    app_with_secret(&node, "will-be-damaged");
    node.stop();
    {
        let conn = rusqlite::Connection::open(node.data()).unwrap();
        let value: String = conn.query_row("SELECT value FROM app_env", [], |r| r.get(0)).unwrap();
        // Flip one base64 digit in the middle: the seal no longer verifies.
        let mut bytes = value.into_bytes();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        conn.execute("UPDATE app_env SET value = ?1", [String::from_utf8(bytes).unwrap()]).unwrap();
    }
    let before = key_rows(&node.data());
    node.spawn();
    assert_eq!(node_id(&node), id, "the machine key is right: one damaged value is not a moved database");
    assert_eq!(app_secret(&node), serde_json::Value::Null, "the damaged value is left out, never garbage");
    node.stop();
    assert_eq!(key_rows(&node.data()), before);
}

#[test]
fn keys_rotate_machine_keeps_every_secret_and_rotate_node_asks_first() {
    let mut node = https_node(&[("https.mode", "lan")]);
    let id = node_id(&node);
    let (ca, ca_pem) = lan_ca(&node, "ca.pem");
    // Rotating needs the node stopped.
    let busy = node.cli(&["keys", "rotate", "machine"]);
    assert!(!busy.status.success() && stderr(&busy).contains("stopped"), "{}", stderr(&busy));
    node.stop();
    let old_key = std::fs::read(node.dir.path().join("machine.key")).unwrap();
    let out = node.cli_ok(&["keys", "rotate", "machine"]);
    assert!(out.contains("sealed again"), "{out}");
    assert_ne!(std::fs::read(node.dir.path().join("machine.key")).unwrap(), old_key);
    assert!(!node.dir.path().join("machine.key.new").exists());
    node.spawn();
    assert_eq!(node_id(&node), id);
    assert_eq!(lan_ca(&node, "ca2.pem").1, ca_pem);
    assert!(verified_get(&node, &ca).status.success(), "{}", log(&node));
    node.stop();

    // The node key: refused without --yes (nothing changes), then a new id.
    let refused = node.cli(&["keys", "rotate", "node"]);
    assert!(!refused.status.success() && stderr(&refused).contains("--yes"));
    node.spawn();
    assert_eq!(node_id(&node), id);
    node.stop();
    node.cli_ok(&["keys", "rotate", "node", "--yes"]);
    node.cli_ok(&["keys", "rotate", "lan-ca"]);
    node.spawn();
    assert_ne!(node_id(&node), id);
    let (new_ca, new_pem) = lan_ca(&node, "ca3.pem");
    assert_ne!(new_pem, ca_pem);
    assert!(verified_get(&node, &new_ca).status.success());
    assert!(!verified_get(&node, &ca).status.success(), "the old CA no longer verifies the node");
}

#[test]
fn keys_an_interrupted_machine_key_rotation_is_finished_or_undone() {
    let mut node = Node::start();
    let id = node_id(&node);
    node.stop();
    // A crash before the commit: machine.key.new exists, the rows are under the old key.
    let pending = node.dir.path().join("machine.key.new");
    std::fs::write(&pending, [9u8; 32]).unwrap();
    node.spawn();
    assert_eq!(node_id(&node), id);
    assert!(!pending.exists(), "an uncommitted rotation is undone");
}

#[test]
fn keys_a_machine_key_rotation_cut_after_its_commit_is_finished_at_start() {
    let mut node = Node::start();
    let id = node_id(&node);
    app_with_secret(&node, "kept-through-rotation");
    node.stop();
    let key = node.dir.path().join("machine.key");
    let old = std::fs::read(&key).unwrap();
    node.cli_ok(&["keys", "rotate", "machine"]);
    let new = std::fs::read(&key).unwrap();
    // Put the files back as a power cut between the commit and the rename leaves them.
    std::fs::write(&key, &old).unwrap();
    std::fs::write(node.dir.path().join("machine.key.new"), &new).unwrap();
    node.spawn();
    assert_eq!(node_id(&node), id);
    assert_eq!(app_secret(&node), "kept-through-rotation");
    assert_eq!(std::fs::read(&key).unwrap(), new, "the rotation was finished");
    assert!(!node.dir.path().join("machine.key.new").exists());
}

#[test]
fn keys_hostile_settings_and_damaged_secrets_give_clear_errors_and_change_nothing() {
    let mut node = Node::start();
    node.stop();
    let data = node.data();
    let before = key_rows(&data);

    // A damaged machine key: the node refuses to start and leaves the file alone.
    let key = node.dir.path().join("machine.key");
    let good = std::fs::read(&key).unwrap();
    std::fs::write(&key, b"short").unwrap();
    let err = start_fails(&data);
    assert!(err.contains("machine.key") && err.contains("damaged"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), b"short");
    assert_eq!(key_rows(&data), before);
    std::fs::write(&key, &good).unwrap();

    for (k, v) in [("keys.backend", "hsm"), ("keys.tpm_fallback", "maybe"), ("keys.tpm_tcti", "a\nb")] {
        let out = offline(&data, &["config", "set", k, v]);
        assert!(!out.status.success(), "{k}={v:?} was accepted");
    }
    for bad in [
        &["keys", "rotate", "everything"][..],
        &["keys", "reset"],
        &["keys", "list", "--data", "/nonexistent/data.db"],
    ] {
        let out = offline(&data, bad);
        assert!(!out.status.success(), "{bad:?}");
    }
    assert_eq!(key_rows(&data), before);
    node.spawn();
}

#[cfg(not(feature = "tpm"))]
#[test]
fn keys_a_build_without_tpm_support_says_so() {
    let mut node = Node::start();
    node.stop();
    let data = node.data();
    let out = offline(&data, &["hal", "tpm", "status"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not compiled") || stderr(&out).contains("without TPM support"),
        "{}",
        stderr(&out)
    );
    offline(&data, &["config", "set", "keys.backend", "tpm"]);
    let err = start_fails(&data);
    assert!(err.contains("without TPM support"), "{err}");
    // Allowed to fall back: the node runs on the software keystore.
    assert!(offline(&data, &["config", "set", "keys.tpm_fallback", "true"]).status.success());
    node.spawn();
    // A database whose keys a TPM holds cannot be opened by this build.
    node.stop();
    {
        let conn = rusqlite::Connection::open(&data).unwrap();
        conn.execute("UPDATE node_keys SET algorithm = 'p256-tpm' WHERE name = 'node'", []).unwrap();
    }
    let err = start_fails(&data);
    assert!(err.contains("held by a TPM") && err.contains("fazt keys reset"), "{err}");
}

#[cfg(feature = "tpm")]
#[path = "../../hal/tests/support/swtpm.rs"]
mod swtpm;

#[cfg(feature = "tpm")]
mod tpm {
    //! Against a real software TPM: Debian's swtpm on loopback ports.
    use super::swtpm::Swtpm;
    use super::*;
    use std::net::TcpListener;

    /// A node whose keys are in `swtpm` from its first start, serving HTTPS (LAN CA).
    fn tpm_node(swtpm: &Swtpm) -> Node {
        let tcti = swtpm.tcti();
        let mut node =
            Node::init_with(&[("https.mode", "lan"), ("keys.backend", "tpm"), ("keys.tpm_tcti", &tcti)]);
        node.extra_args = vec!["--https-port".into(), "0".into()];
        node.log = Some(node.dir.path().join("node.log"));
        node.spawn();
        node
    }

    #[test]
    fn keys_tpm_holds_the_ca_key_and_seals_the_rest_across_restarts() {
        let state = tempfile::tempdir().unwrap();
        let mut swtpm = Swtpm::start(state.path());
        let mut node = tpm_node(&swtpm);
        let id = node_id(&node);
        let (ca, ca_pem) = lan_ca(&node, "ca.pem");
        // The LAN certificate was signed inside the TPM; curl checks it outside.
        assert!(verified_get(&node, &ca).status.success(), "{}", log(&node));
        node.stop();
        let rows = key_rows(&node.data());
        let algorithm = |n: &str| rows.iter().find(|r| r.0 == n).map(|r| r.1.clone()).unwrap();
        assert_eq!(algorithm("lan-ca-p256"), "p256-tpm");
        assert_eq!(algorithm("machine-key"), "tpm-sealed");
        let node_row = rows.iter().find(|r| r.0 == "node").unwrap();
        assert_eq!(node_row.2[0], 0xF2, "the identity seed is sealed under the TPM's wrapping key");
        assert!(!node.dir.path().join("machine.key").exists(), "no machine secret file in TPM mode");
        let status = offline(&node.data(), &["hal", "tpm", "status"]);
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(status.status.success(), "{}", stderr(&status));
        assert!(
            text.contains("manufacturer:  IBM") && text.contains("held:          lan-ca-p256 (p256-tpm)"),
            "{text}"
        );

        // A power cycle of the TPM and a restart of the node: the same keys.
        let port = swtpm.port;
        swtpm.stop();
        let err = start_fails(&node.data());
        assert!(err.contains("held by a TPM") && err.contains("not available"), "{err}");
        let _swtpm = Swtpm::start_on(state.path(), port);
        node.spawn();
        assert_eq!(node_id(&node), id);
        assert_eq!(lan_ca(&node, "ca2.pem").1, ca_pem);
        assert!(verified_get(&node, &ca).status.success());
    }

    #[test]
    fn keys_tpm_a_database_moved_to_another_tpm_is_refused_until_reset() {
        let (a_state, b_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Swtpm::start(a_state.path());
        let b = Swtpm::start(b_state.path());
        let mut node = tpm_node(&a);
        let id = node_id(&node);
        let (_, ca_pem) = lan_ca(&node, "ca.pem");
        node.stop();
        let mut moved = tpm_node(&b);
        moved.stop();
        copy_db(&node, &moved);
        offline(&moved.data(), &["config", "set", "keys.tpm_tcti", &b.tcti()]);
        let before = key_rows(&moved.data());
        let err = start_fails(&moved.data());
        assert!(err.contains("sealed by another TPM") && err.contains("lan-ca-p256"), "{err}");
        assert!(err.contains("fazt keys reset --yes"), "{err}");
        assert_eq!(key_rows(&moved.data()), before, "nothing changed");
        moved.cli_ok(&["keys", "reset", "--yes"]);
        moved.spawn();
        assert_ne!(node_id(&moved), id);
        let (ca, new_pem) = lan_ca(&moved, "ca.pem");
        assert_ne!(new_pem, ca_pem);
        assert!(verified_get(&moved, &ca).status.success(), "{}", log(&moved));
        // Back on its own TPM, the original database still opens.
        node.spawn();
        assert_eq!(node_id(&node), id);
    }

    #[test]
    fn keys_tpm_a_software_database_moved_to_a_tpm_node_is_refused_and_left_as_it_was() {
        let state = tempfile::tempdir().unwrap();
        let swtpm = Swtpm::start(state.path());
        let mut node = https_node(&[("https.mode", "lan"), ("keys.backend", "software")]);
        let id = node_id(&node);
        node.stop();
        let mut other = tpm_node(&swtpm);
        other.stop();
        copy_db(&node, &other);
        offline(&other.data(), &["config", "set", "keys.backend", "tpm"]);
        offline(&other.data(), &["config", "set", "keys.tpm_tcti", &swtpm.tcti()]);
        let before = key_rows(&other.data());
        let err = start_fails(&other.data());
        assert!(err.contains("sealed on another machine"), "{err}");
        assert_eq!(key_rows(&other.data()), before, "no wrapping key was written by a start that refused");
        // Back where it came from (with its machine.key), the database still works.
        copy_db(&other, &node);
        offline(&node.data(), &["config", "set", "keys.backend", "software"]);
        node.spawn();
        assert_eq!(node_id(&node), id);
    }

    #[test]
    fn keys_tpm_software_keys_move_under_the_tpm_and_the_ca_moves_in_on_rotation() {
        let state = tempfile::tempdir().unwrap();
        let swtpm = Swtpm::start(state.path());
        let mut node = https_node(&[("https.mode", "lan"), ("keys.backend", "software")]);
        let id = node_id(&node);
        let (_, ca_pem) = lan_ca(&node, "ca.pem");
        node.stop();
        node.cli_ok(&["config", "set", "keys.backend", "tpm"]);
        node.cli_ok(&["config", "set", "keys.tpm_tcti", &swtpm.tcti()]);
        node.spawn();
        assert_eq!(node_id(&node), id, "the identity survives the move under the TPM");
        assert_eq!(lan_ca(&node, "ca2.pem").1, ca_pem, "the CA key stays (sealed by the TPM) until rotated");
        node.stop();
        for (name, algorithm, material) in key_rows(&node.data()) {
            if algorithm == "ed25519" || algorithm == "p256" {
                assert_eq!(material[0], 0xF2, "{name} is now sealed under the TPM's key");
            }
        }
        node.cli_ok(&["keys", "rotate", "lan-ca"]);
        node.cli_ok(&["keys", "rotate", "machine"]);
        node.spawn();
        let (ca, new_pem) = lan_ca(&node, "ca3.pem");
        assert_ne!(new_pem, ca_pem);
        assert!(verified_get(&node, &ca).status.success(), "{}", log(&node));
        assert_eq!(node_id(&node), id);
        let listed = node.cli_ok(&["keys", "list"]);
        assert!(listed.contains("lan-ca-p256 (p256-tpm)"), "{listed}");
    }

    #[test]
    fn keys_tpm_absent_or_locked_gives_a_clear_error_and_fallback_keeps_the_node_running() {
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut node = Node::start();
        node.stop();
        let data = node.data();
        let before = key_rows(&data);
        offline(&data, &["config", "set", "keys.backend", "tpm"]);
        offline(&data, &["config", "set", "keys.tpm_tcti", &format!("swtpm:host=127.0.0.1,port={free}")]);
        let err = start_fails(&data);
        assert!(err.contains("cannot reach the TPM"), "{err}");
        assert_eq!(key_rows(&data), before, "nothing changed");
        // An owner password on the TPM: refused with a clear error.
        let state = tempfile::tempdir().unwrap();
        let swtpm = Swtpm::start(state.path());
        swtpm.set_owner_password("s3cret");
        offline(&data, &["config", "set", "keys.tpm_tcti", &swtpm.tcti()]);
        let err = start_fails(&data);
        assert!(err.contains("owner password"), "{err}");
        assert_eq!(key_rows(&data), before, "nothing changed");
        // With the fallback allowed, the node runs on its software keys.
        offline(&data, &["config", "set", "keys.tpm_fallback", "true"]);
        let id = node_id(&node);
        node.spawn();
        assert_eq!(node_id(&node), id);
    }
}
