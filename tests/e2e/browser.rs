//! A small WebDriver client for the dashboard tests: a chromedriver process and one
//! headless Chromium session (Debian's `chromium` and `chromium-driver`, installed by
//! tests/setup).

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
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
            // Prompts are answered by the test, never dismissed behind its back.
            "unhandledPromptBehavior": "ignore",
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

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn script(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// Polls `check` until it is true (20 s at most, then fails with the page).
    pub fn wait_until(&self, what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(Instant::now() < deadline, "{what}; page:\n{}", self.call("GET", "/source", None));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `css` matches a rendered element; returns its id.
    pub fn wait_for(&self, css: &str) -> String {
        let shown =
            "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;";
        self.wait_until(&format!("no visible {css}"), || {
            self.script(shown, json!([css])) == Value::Bool(true)
        });
        let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        found[ELEMENT].as_str().unwrap().to_string()
    }

    pub fn exists(&self, css: &str) -> bool {
        self.script("return !!document.querySelector(arguments[0]);", json!([css])) == Value::Bool(true)
    }

    /// The `textContent` of the first match of `css` (hidden text too), or "".
    pub fn text_content(&self, css: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';";
        self.script(script, json!([css])).as_str().unwrap_or("").to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css);
        self.call("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    pub fn click(&self, css: &str) {
        let id = self.wait_for(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Opens `url` in the session's window.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The rendered text of the first match of `css` (what a user sees), or "".
    pub fn text(&self, css: &str) -> String {
        let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        let Some(id) = found[ELEMENT].as_str() else { return String::new() };
        self.call("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or("").to_string()
    }

    /// Answers the open `prompt()` with `text` and accepts it.
    pub fn answer_prompt(&self, text: &str) {
        self.wait_until("no prompt opened", || self.call("GET", "/alert/text", None).is_string());
        self.call("POST", "/alert/text", Some(json!({ "text": text })));
        self.call("POST", "/alert/accept", Some(json!({})));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
