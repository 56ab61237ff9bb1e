//! The first-boot setup page: shown to local clients while nobody has claimed the node,
//! gone for good (also after kill -9 and restart) once the admin sets the password,
//! logs in or uses the API token; off by default; hostile input changes nothing.

use crate::support::{Node, Resp};

const MARKER: &str = "Setup code:";

/// A first-started node (generated password) restarted with `setup.page = mode`.
fn unclaimed_node(mode: &str) -> Node {
    let mut node = Node::start();
    node.log = Some(node.dir.path().join("node.log"));
    node.stop();
    node.cli_ok(&["config", "set", "setup.page", mode]);
    node.spawn();
    node
}

/// The setup code the node printed at start.
fn printed_code(node: &Node) -> String {
    let line = node
        .stdout
        .lines()
        .find(|l| l.contains("setup code "))
        .expect("the start banner names the setup code");
    line.split("setup code ").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

fn setup_post(node: &Node, host: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    node.request("POST", host, "/api/setup", headers, body)
}

/// Headers, body, the expected status and error code.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);

const JSON_CSRF: &[(&str, &str)] = &[("Content-Type", "application/json"), ("X-Requested-With", "fazt")];

fn shows_page(node: &Node, host: &str) -> bool {
    let resp = node.get(host, "/");
    resp.status == 200 && resp.text().contains(MARKER)
}

fn log(node: &Node) -> String {
    std::fs::read_to_string(node.dir.path().join("node.log")).unwrap_or_default()
}

#[test]
fn setup_page_sets_the_password_once_and_never_comes_back() {
    let mut node = unclaimed_node("loopback");
    let code = printed_code(&node);

    // Shown on the node's own names to a loopback client, with the code, not cached.
    for host in ["admin.localhost", "127.0.0.1", "kitchen-pi.local", "localhost"] {
        let resp = node.get(host, "/");
        assert_eq!(resp.status, 200, "{host}");
        assert!(resp.text().contains(MARKER) && resp.text().contains(&code), "{host}: {}", resp.text());
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        assert!(resp.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    }
    assert!(log(&node).contains("first-boot setup page shown"), "{}", log(&node));
    // Not on an app's host, not through a proxy.
    assert!(!shows_page(&node, "blog.localhost"));
    let proxied = node.request("GET", "admin.localhost", "/", &[("X-Forwarded-For", "203.0.113.9")], b"");
    assert!(!proxied.text().contains(MARKER));
    let proxied = setup_post(&node, "admin.localhost", &[("X-Forwarded-For", "203.0.113.9")], b"{}");
    assert_eq!((proxied.status, proxied.code().as_str()), (403, "not_local"));

    // Hostile or wrong input: a clear error each time, and nothing changes.
    let good = |password: &str| {
        serde_json::json!({"code": code, "username": "admin", "password": password}).to_string().into_bytes()
    };
    let cases: Vec<Case> = vec![
        (vec![("Content-Type", "application/json")], good("a fine password"), 403, "csrf"),
        (JSON_CSRF.to_vec(), b"{not json".to_vec(), 400, "bad_json"),
        (
            JSON_CSRF.to_vec(),
            br#"{"code":"x","password":"a fine password","admin":true}"#.to_vec(),
            400,
            "bad_json",
        ),
        (JSON_CSRF.to_vec(), good("short"), 400, "bad_password"),
        (
            JSON_CSRF.to_vec(),
            serde_json::json!({"code": code, "username": "../root", "password": "a fine password"})
                .to_string()
                .into_bytes(),
            400,
            "bad_username",
        ),
        (JSON_CSRF.to_vec(), good(&"x".repeat(2000)), 400, "bad_password"),
        (
            JSON_CSRF.to_vec(),
            serde_json::json!({"code": "aaaa-bbbb-cccc", "password": "a fine password"})
                .to_string()
                .into_bytes(),
            403,
            "bad_setup_code",
        ),
        (JSON_CSRF.to_vec(), vec![b' '; 300 * 1024], 413, "too_large"),
    ];
    for (headers, body, status, error) in &cases {
        let resp = setup_post(&node, "admin.localhost", headers, body);
        assert_eq!((resp.status, resp.code().as_str()), (*status, *error), "{}", resp.text());
    }
    let get = node.get("admin.localhost", "/api/setup");
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    assert!(shows_page(&node, "admin.localhost"), "refused input must leave the node unclaimed");
    assert!(node.get("127.0.0.1", "/").text().contains(&code), "the code is unchanged");

    // The right code from the bare IP: password set, session and a new token handed back.
    let done = setup_post(&node, "127.0.0.1", JSON_CSRF, &good("kitchen password 1"));
    assert_eq!(done.status, 200, "{}", done.text());
    let session = done.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let token = done.json()["token"].as_str().unwrap().to_string();
    assert!(done.json()["cli"].as_str().unwrap().contains(&token));
    let me = node.request(
        "GET",
        "admin.localhost",
        "/api/me",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(me.json()["user"], "token", "{}", me.text());
    let me = node.request("GET", "127.0.0.1", "/api/me", &[("Cookie", &session)], b"");
    assert_ne!(me.status, 500);
    assert!(log(&node).contains("first-boot setup done"));

    // Claimed: no page, the endpoint says so, the old generated password is gone.
    assert!(!shows_page(&node, "admin.localhost"));
    assert!(!shows_page(&node, "127.0.0.1"));
    let again = setup_post(&node, "admin.localhost", JSON_CSRF, &good("another password"));
    assert_eq!((again.status, again.code().as_str()), (410, "already_set_up"));
    let login = |password: &str| {
        let body = serde_json::json!({"password": password}).to_string();
        node.request("POST", "admin.localhost", "/api/login", &[], body.as_bytes()).status
    };
    assert_eq!(login(node.password.as_deref().unwrap()), 401);
    assert_eq!(login("kitchen password 1"), 200);
    // The token printed at first start (console, screen, the CLI's config) no longer works:
    // whoever claimed the node got a new one, and others may have seen the screen.
    let first_token = format!("Bearer {}", node.token);
    let old = node.request("GET", "admin.localhost", "/api/me", &[("Authorization", &first_token)], b"");
    assert_eq!(old.status, 401, "{}", old.text());

    // kill -9 and restart: still claimed.
    node.kill9();
    node.spawn();
    assert!(!node.stdout.contains("setup code"), "{}", node.stdout);
    assert!(!shows_page(&node, "admin.localhost"));
    assert!(!shows_page(&node, "127.0.0.1"));
}

#[test]
fn a_password_login_or_a_token_claims_the_node() {
    // Lan mode includes loopback.
    let mut by_login = unclaimed_node("lan");
    assert!(shows_page(&by_login, "admin.localhost"));
    let body = serde_json::json!({"password": by_login.password.clone().unwrap()}).to_string();
    let login = by_login.request("POST", "admin.localhost", "/api/login", &[], body.as_bytes());
    assert_eq!(login.status, 200, "{}", login.text());
    assert!(!shows_page(&by_login, "admin.localhost"));
    by_login.kill9();
    by_login.spawn();
    assert!(!shows_page(&by_login, "admin.localhost"));

    let mut by_token = unclaimed_node("loopback");
    assert!(shows_page(&by_token, "127.0.0.1"));
    assert_eq!(by_token.api("GET", "/api/me", None).status, 200);
    assert!(!shows_page(&by_token, "127.0.0.1"));
    let late = setup_post(&by_token, "admin.localhost", JSON_CSRF, b"{}");
    assert_eq!(late.code(), "already_set_up");
    by_token.kill9();
    by_token.spawn();
    assert!(!shows_page(&by_token, "127.0.0.1"));
}

#[test]
fn the_setting_off_hides_the_page_and_a_chosen_password_never_shows_it() {
    // Off is the default: a first start shows the dashboard, and the endpoint says why.
    let mut node = Node::start();
    assert!(!node.stdout.contains("setup code"));
    assert!(!shows_page(&node, "admin.localhost"));
    let off = setup_post(&node, "admin.localhost", JSON_CSRF, b"{}");
    assert_eq!((off.status, off.code().as_str()), (404, "not_found"), "{}", off.text());
    assert!(off.text().contains("setup.page"));
    // Turned on, then off again, while still unclaimed.
    node.stop();
    node.cli_ok(&["config", "set", "setup.page", "lan"]);
    node.spawn();
    assert!(shows_page(&node, "admin.localhost"));
    node.stop();
    node.cli_ok(&["config", "set", "setup.page", "off"]);
    node.spawn();
    assert!(!shows_page(&node, "admin.localhost"));
    // A bad value is refused and changes nothing.
    let bad = node.cli(&["config", "set", "setup.page", "everyone"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("setup.page"));
    assert_eq!(node.cli_ok(&["config", "get", "setup.page"]).trim(), "off");

    // `server init --password`: the admin chose the password, so there is nothing to claim.
    let chosen = Node::start_with(&[("setup.page", "loopback")], None);
    assert!(!chosen.stdout.contains("setup code"));
    assert!(!shows_page(&chosen, "admin.localhost"));
    assert_eq!(setup_post(&chosen, "admin.localhost", JSON_CSRF, b"{}").code(), "already_set_up");
}
