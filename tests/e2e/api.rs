//! The admin API: login, sessions, CSRF, tokens, apps, files, system.

use crate::support::Node;

fn login(node: &Node, password: &str) -> crate::support::Resp {
    let body = serde_json::json!({"username": "admin", "password": password}).to_string();
    node.request(
        "POST",
        "admin.localhost",
        "/api/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

#[test]
fn password_login_gives_a_session_cookie_and_logout_ends_it() {
    let node = Node::in_process();
    let password = node.password.clone().expect("first start prints a password");
    let resp = login(&node, &password);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let cookie = resp.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let me = node.request("GET", "admin.localhost", "/api/me", &[("Cookie", &session)], b"");
    assert_eq!(me.json()["user"], "admin");

    // State changes with a cookie need the CSRF header.
    let body = br#"{"name":"from browser"}"#;
    let no_header = node.request("POST", "admin.localhost", "/api/tokens", &[("Cookie", &session)], body);
    assert_eq!(no_header.status, 403);
    assert_eq!(no_header.code(), "csrf");
    let with_header = node.request(
        "POST",
        "admin.localhost",
        "/api/tokens",
        &[("Cookie", &session), ("X-Requested-With", "fazt")],
        body,
    );
    assert_eq!(with_header.status, 200, "{}", with_header.text());

    // Logout needs the header too: a page on a sibling subdomain must not log us out.
    let forged = node.request("POST", "admin.localhost", "/api/logout", &[("Cookie", &session)], b"{}");
    assert_eq!(forged.code(), "csrf");
    assert_eq!(node.request("GET", "admin.localhost", "/api/me", &[("Cookie", &session)], b"").status, 200);
    let headers = [("Cookie", session.as_str()), ("X-Requested-With", "fazt")];
    let out = node.request("POST", "admin.localhost", "/api/logout", &headers, b"{}");
    assert_eq!(out.status, 200);
    let me = node.request("GET", "admin.localhost", "/api/me", &[("Cookie", &session)], b"");
    assert_eq!(me.status, 401);
    assert_eq!(me.code(), "unauthenticated");
}

#[test]
fn wrong_passwords_are_refused_then_rate_limited() {
    let node = Node::in_process();
    // Five attempts a minute: at most a few more get through while slow hashing lets
    // the bucket refill, then the node answers 429 at once.
    let mut refused = 0;
    let limited_at = (0..12).position(|_| {
        let resp = login(&node, "wrong password");
        if resp.status == 401 {
            assert_eq!(resp.code(), "bad_credentials");
            refused += 1;
        }
        resp.status == 429
    });
    assert!(refused >= 5 && limited_at.is_some(), "refused {refused}, limited at {limited_at:?}");
    let limited = login(&node, node.password.as_deref().unwrap());
    assert_eq!(limited.status, 429, "even the right password waits once limited");
    assert_eq!(limited.code(), "rate_limited");
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
}

#[test]
fn set_credentials_changes_the_password() {
    let mut node = Node::in_process();
    node.stop();
    let out = node.cli(&["server", "set-credentials", "--password", "short"]);
    assert!(!out.status.success(), "short passwords are refused");
    node.cli_ok(&[
        "server",
        "set-credentials",
        "--username",
        "owner",
        "--password",
        "a much better password",
    ]);
    node.spawn();
    let body = serde_json::json!({"username": "owner", "password": "a much better password"}).to_string();
    let resp = node.request("POST", "admin.localhost", "/api/login", &[], body.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(login(&node, node.password.as_deref().unwrap_or("x")).status, 401);
}

#[test]
fn tokens_create_list_revoke() {
    let node = Node::in_process();
    let created = node.api("POST", "/api/tokens", Some(&serde_json::json!({"name": "laptop"})));
    assert_eq!(created.status, 200);
    let secret = created.json()["token"].as_str().unwrap().to_string();
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("fzt_"));
    let list = node.api("GET", "/api/tokens", None).json();
    let entry = list["tokens"].as_array().unwrap().iter().find(|t| t["id"] == id.as_str()).unwrap().clone();
    assert_eq!(entry["name"], "laptop");
    assert!(entry.get("token").is_none(), "the secret is never listed");
    assert!(!list.to_string().contains(&secret));

    let auth = format!("Bearer {secret}");
    assert_eq!(
        node.request("GET", "admin.localhost", "/api/apps", &[("Authorization", &auth)], b"").status,
        200
    );
    assert_eq!(node.api("DELETE", &format!("/api/tokens/{id}"), None).status, 200);
    let revoked = node.request("GET", "admin.localhost", "/api/apps", &[("Authorization", &auth)], b"");
    assert_eq!(revoked.status, 401);
    assert_eq!(revoked.code(), "invalid_token");
    assert_eq!(node.api("DELETE", &format!("/api/tokens/{id}"), None).status, 404);
    for bad in [
        serde_json::json!({"name": ""}),
        serde_json::json!({"name": "x".repeat(200)}),
        serde_json::json!({"nope": 1}),
    ] {
        assert_eq!(node.api("POST", "/api/tokens", Some(&bad)).status, 400, "{bad}");
    }
}

#[test]
fn apps_and_files_through_the_api() {
    let node = Node::in_process();
    assert_eq!(
        node.deploy_files("blog", &[("index.html", b"blog"), ("notes/a b.txt", b"secret notes")]).status,
        200
    );
    assert_eq!(node.deploy_files("shop", &[("index.html", b"shop")]).status, 200);
    let apps = node.api("GET", "/api/apps", None).json();
    let names: Vec<&str> =
        apps["apps"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for name in ["root", "admin", "404", "blog", "shop"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let blog = node.api("GET", "/api/apps/blog", None).json();
    assert_eq!(blog["files"].as_array().unwrap().len(), 2);
    assert_eq!(blog["url"], format!("http://blog.localhost:{}/", node.addr.port()));
    let file = node.api("GET", "/api/apps/blog/files/notes/a%20b.txt", None);
    assert_eq!(file.text(), "secret notes");
    // Another app's files are not reachable through this app.
    assert_eq!(node.api("GET", "/api/apps/shop/files/notes/a%20b.txt", None).status, 404);
    assert_eq!(node.api("GET", "/api/apps/shop/files/../blog/files/index.html", None).status, 400);
    assert_eq!(node.api("GET", "/api/apps/nope", None).status, 404);
    assert_eq!(node.api("DELETE", "/api/apps/admin", None).code(), "system_app");
}

#[test]
fn system_endpoints_and_unknown_routes() {
    let node = Node::in_process();
    let health = node.api("GET", "/api/system/health", None).json();
    assert_eq!(health["status"], "ok");
    assert!(health["memory_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(health["apps"], 3);
    // Without credentials: liveness only.
    let public = node.request("GET", "admin.localhost", "/api/system/health", &[], b"").json();
    assert_eq!(public["status"], "ok");
    assert!(public.get("apps").is_none());
    let db = node.api("GET", "/api/system/db", None).json();
    assert!(db["schema_version"].as_i64().unwrap() >= 1);
    let config = node.api("GET", "/api/system/config", None).json();
    assert_eq!(config["config"]["domain"], "localhost");
    assert_eq!(node.api("GET", "/api/nope", None).status, 404);
    assert_eq!(node.api("GET", "/api/system/nope", None).status, 404);
    assert_eq!(node.api("GET", "/api/apps/blog/nope", None).status, 404);
    let wrong = node.api("PUT", "/api/apps", None);
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("GET")));
    let login = node.api("GET", "/api/login", None);
    assert_eq!((login.status, login.header("allow")), (405, Some("POST")));
    // The auth scheme is case-insensitive.
    let lower = format!("bearer {}", node.token);
    assert_eq!(
        node.request("GET", "admin.localhost", "/api/me", &[("Authorization", &lower)], b"").status,
        200
    );
    assert_eq!(node.request("GET", "admin.localhost", "/api/apps", &[], b"").status, 401);
    // The API is only on the admin host.
    assert_eq!(node.request("GET", "blog.localhost", "/api/apps", &[], b"").status, 404);
}

#[test]
fn hostile_json_bodies_are_refused() {
    let node = Node::in_process();
    let auth = format!("Bearer {}", node.token);
    for body in [&b"{"[..], b"null", b"[1,2]", b"\xff\xfe", b"{\"name\": 5}"] {
        let resp = node.request("POST", "admin.localhost", "/api/tokens", &[("Authorization", &auth)], body);
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(resp.code(), "bad_json");
    }
    let huge = vec![b' '; 300 * 1024];
    let resp = node.request("POST", "admin.localhost", "/api/tokens", &[("Authorization", &auth)], &huge);
    assert_eq!(resp.status, 413);
    let bad_hash = serde_json::json!({"hashes": ["../../etc/passwd"]});
    assert_eq!(node.api("POST", "/api/deploy/check", Some(&bad_hash)).code(), "bad_hash");
    let long_login = serde_json::json!({"password": "x".repeat(100_000)}).to_string();
    let resp = node.request("POST", "admin.localhost", "/api/login", &[], long_login.as_bytes());
    assert_eq!(resp.status, 401);
}

// See: issue 17 (cookie tossing). An app on a sibling subdomain can set `fazt_session`
// for the parent domain; the browser then sends it beside (often before) the admin's
// own, which must still work.
#[test]
fn a_tossed_session_cookie_does_not_log_the_admin_out() {
    let node = Node::in_process();
    let password = node.password.clone().unwrap();
    let resp = login(&node, &password);
    let cookie = resp.header("set-cookie").unwrap().to_string();
    // Over plain HTTP the cookie is not Secure (a browser would drop it).
    assert!(cookie.starts_with("fazt_session=") && !cookie.contains("Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let tossed = format!("fazt_session=tossed-by-an-app; theme=dark; {session}");
    let me = node.request("GET", "admin.localhost", "/api/me", &[("Cookie", &tossed)], b"");
    assert_eq!((me.status, me.json()["user"].as_str()), (200, Some("admin")), "{}", me.text());
    // Two Cookie headers (HTTP/2 sends one per cookie) work the same.
    let split = node.request(
        "GET",
        "admin.localhost",
        "/api/me",
        &[("Cookie", "fazt_session=junk"), ("Cookie", &session)],
        b"",
    );
    assert_eq!(split.status, 200, "{}", split.text());
    // Only junk: still unauthenticated.
    let junk = node.request("GET", "admin.localhost", "/api/me", &[("Cookie", "fazt_session=junk")], b"");
    assert_eq!(junk.code(), "unauthenticated");
    // Logout ends the real session even behind a tossed one.
    let headers = [("Cookie", tossed.as_str()), ("X-Requested-With", "fazt")];
    assert_eq!(node.request("POST", "admin.localhost", "/api/logout", &headers, b"{}").status, 200);
    let me = node.request("GET", "admin.localhost", "/api/me", &[("Cookie", &session)], b"");
    assert_eq!(me.status, 401);
}
