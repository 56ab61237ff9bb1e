//! The syscall layer seen from outside: the HTTP API and the CLI's offline commands are
//! adapters over the same syscalls, so hostile input gets the same stable code either
//! way and changes nothing. (Which caller may do what is tested per syscall in
//! `firmware/src/syscall/`: no adapter can build a wrong caller from outside.)

use crate::support::{fazt_bin, Node};
use std::process::{Command, Stdio};

/// `fazt ARGS --data DATA`, offline: whatever the environment says about a node.
fn offline(args: &[&str], data: &str) -> std::process::Output {
    let mut command = Command::new(fazt_bin());
    command.args(args).args(["--data", data]).env_remove("FAZT_DATA").stdin(Stdio::null());
    command.output().unwrap()
}

#[test]
fn hostile_api_input_gets_stable_codes_and_changes_nothing() {
    let node = Node::start();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"<h1>blog</h1>")]).status, 200);
    let tokens_before = node.api("GET", "/api/tokens", None).json()["tokens"].as_array().unwrap().len();
    for name in ["", "a\u{7}b", &"x".repeat(65)] {
        let refused = node.api("POST", "/api/tokens", Some(&serde_json::json!({ "name": name })));
        assert_eq!((refused.status, refused.code().as_str()), (400, "bad_name"), "{name:?}");
    }
    let tokens_after = node.api("GET", "/api/tokens", None).json()["tokens"].as_array().unwrap().len();
    assert_eq!(tokens_after, tokens_before, "no refused token was made");

    let limits_before = node.api("GET", "/api/apps/blog/limits", None).json();
    let refused =
        node.api("PUT", "/api/apps/blog/limits", Some(&serde_json::json!({ "memory_bytes": 1u64 << 40 })));
    assert_eq!((refused.status, refused.code().as_str()), (400, "invalid"));
    assert_eq!(node.api("GET", "/api/apps/blog/limits", None).json(), limits_before);

    let refused = node.api("PUT", "/api/apps/blog/env/1BAD", Some(&serde_json::json!({ "value": "x" })));
    assert_eq!((refused.status, refused.code().as_str()), (400, "invalid"));
    assert_eq!(node.api("GET", "/api/apps/blog/env", None).json()["env"], serde_json::json!({}));

    for (path, status, code) in [
        ("/api/apps/nope", 404, "not_found"),
        ("/api/apps/nope/files/index.html", 404, "not_found"),
        ("/api/apps/blog/files/nope.html", 404, "not_found"),
        ("/api/apps/blog/files/a%00b", 400, "bad_path"),
        ("/api/apps/blog/limits/x", 404, "not_found"),
        ("/api/tokens/tok_nope", 405, "method_not_allowed"),
    ] {
        let answer = node.api("GET", path, None);
        assert_eq!((answer.status, answer.code().as_str()), (status, code), "{path}: {}", answer.text());
    }
    let gone = node.api("DELETE", "/api/tokens/tok_nope", None);
    assert_eq!((gone.status, gone.code().as_str()), (404, "not_found"));
    let system = node.api("DELETE", "/api/apps/admin", None);
    assert_eq!((system.status, system.code().as_str()), (403, "system_app"));
    assert_eq!(node.api("GET", "/api/apps/blog/files/index.html", None).text(), "<h1>blog</h1>");
}

#[test]
fn offline_config_commands_refuse_bad_values_with_the_syscalls_message() {
    let node = Node::init_with(&[]);
    let data = node.data();
    let data = data.to_str().unwrap();
    let port = String::from_utf8(offline(&["config", "get", "port"], data).stdout).unwrap();
    assert!(port.trim().parse::<u16>().is_ok(), "{port}");
    for (args, needle) in [
        (vec!["config", "set", "port", "80; rm -rf /"], "invalid value"),
        (vec!["config", "set", "nope", "1"], "unknown config key 'nope'"),
        (vec!["config", "get", "nope"], "unknown config key 'nope'"),
    ] {
        let out = offline(&args, data);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = String::from_utf8(offline(&["config", "get", "port"], data).stdout).unwrap();
    assert_eq!(after, port, "nothing changed");
}
