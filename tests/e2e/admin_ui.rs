//! The admin dashboard in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`, installed by tests/setup).

use crate::support::Node;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (installed by tests/setup)");
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{root}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let session: Value =
            agent.post(&format!("{root}/session")).send_json(caps).expect("new session").into_json().unwrap();
        let id = session["value"]["sessionId"].as_str().unwrap().to_string();
        Browser { driver, base: format!("{root}/session/{id}"), agent, _profile: profile }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let req = self.agent.request(method, &format!("{}{path}", self.base));
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) => r.into_json::<Value>().unwrap()["value"].clone(),
            Err(ureq::Error::Status(_, r)) => r.into_json::<Value>().unwrap_or_default()["value"].clone(),
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        }
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Waits until `css` matches an element; returns its id.
    fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Visible: in the document and rendered (no hidden ancestor).
            let script = "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;";
            let shown = self.call("POST", "/execute/sync", Some(json!({"script": script, "args": [css]})));

            if shown == Value::Bool(true) {
                let found =
                    self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));

                if let Some(id) = found[ELEMENT].as_str() {
                    return id.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no visible {css} at {}; page:\n{}",
                self.call("GET", "/url", None),
                self.call("GET", "/source", None)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, css: &str) -> String {
        let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        let Some(id) = found[ELEMENT].as_str() else { return String::new() };
        self.call("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or("").to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css);
        self.call("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    fn click(&self, css: &str) {
        let id = self.wait_for(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

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
