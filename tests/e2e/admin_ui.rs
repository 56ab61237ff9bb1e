//! The admin dashboard in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`, installed by tests/setup).

use crate::browser::Browser;
use crate::support::Node;
use serde_json::json;

#[test]
fn dashboard_shows_login_apps_files_tokens_and_health() {
    let node = Node::in_process();
    assert_eq!(
        node.deploy_files("blog", &[("index.html", b"<h1>hi</h1>"), ("css/site.css", b"body{color:red}")])
            .status,
        200
    );
    let browser = Browser::start();
    // Chromium resolves every *.localhost name to loopback by itself.
    browser.goto(&format!("{}/", node.admin_url()));

    browser.type_into("#login-username", "admin");
    browser.type_into("#login-password", "not the password");
    browser.click("#login-submit");
    browser.wait_for("#login-error");
    assert!(!browser.text("#login-error").is_empty());

    let password = node.password.clone().unwrap();
    browser.call("POST", &format!("/element/{}/clear", browser.wait_for("#login-password")), Some(json!({})));
    browser.type_into("#login-password", &password);
    browser.click("#login-submit");

    let row = "#apps-table tr[data-app=\"blog\"]";
    browser.wait_for(row);
    assert_eq!(browser.text(&format!("{row} .app-files")), "2");
    assert!(browser.text(&format!("{row} .app-name")).contains("blog"));
    assert!(!browser.text(&format!("{row} .app-deployed")).is_empty());
    assert!(browser.text("#apps-table").contains("admin"), "system apps are listed too");

    browser.click(row);
    browser.wait_for("#app-files-table tr[data-path=\"css/site.css\"]");
    assert!(browser.text("#app-files-table").contains("index.html"));

    browser.goto(&format!("{}/#/tokens", node.admin_url()));
    browser.type_into("#token-name", "from the browser");
    browser.click("#token-create-form button[type=submit], #token-create-form button");
    browser.wait_for("#new-token");
    let token = browser.text("#new-token");
    assert!(token.starts_with("fzt_"), "{token}");
    // The token the page showed works against the API.
    let auth = format!("Bearer {token}");
    assert_eq!(
        node.request("GET", "admin.localhost", "/api/apps", &[("Authorization", &auth)], b"").status,
        200
    );
    assert!(browser.text("#tokens-table").contains("from the browser"));

    browser.goto(&format!("{}/#/system", node.admin_url()));
    browser.wait_for("#health [data-health=\"version\"]");
    assert_eq!(browser.text("#health [data-health=\"version\"]"), env!("CARGO_PKG_VERSION"));

    browser.click("#logout");
    browser.wait_for("#login-form");
}

#[test]
fn first_boot_setup_page_sets_the_password_in_a_browser() {
    let mut node = Node::start();
    node.stop();
    node.cli_ok(&["config", "set", "setup.page", "loopback"]);
    node.spawn();
    let browser = Browser::start();
    // The bare IP address, as a user would type the Pi's address.
    let url = format!("http://127.0.0.1:{}/", node.addr.port());
    browser.goto(&url);
    browser.wait_for("#code");
    assert!(node.stdout.contains(&browser.text("#code")), "the page shows the code the node printed");

    browser.type_into("#p", "kitchen password 1");
    browser.type_into("#p2", "kitchen password 2");
    browser.click("#f button");
    browser.wait_for("#msg.err");
    assert!(browser.text("#msg").contains("differ"), "{}", browser.text("#msg"));

    browser.call("POST", &format!("/element/{}/clear", browser.wait_for("#p2")), Some(json!({})));
    browser.type_into("#p2", "kitchen password 1");
    browser.click("#f button");
    browser.wait_for("#msg pre");
    let cli = browser.text("#msg pre");
    let token =
        cli.split_whitespace().find(|w| w.starts_with("fzt_")).expect("a token in the CLI line").to_string();
    let auth = format!("Bearer {token}");
    assert_eq!(
        node.request("GET", "admin.localhost", "/api/me", &[("Authorization", &auth)], b"").status,
        200
    );
    let login = serde_json::json!({"password": "kitchen password 1"}).to_string();
    assert_eq!(node.request("POST", "admin.localhost", "/api/login", &[], login.as_bytes()).status, 200);

    // Claimed: the same address now serves the landing page.
    browser.goto(&url);
    let source = browser.call("GET", "/source", None);
    assert!(!source.as_str().unwrap_or("").contains("Setup code:"), "{source}");
}
