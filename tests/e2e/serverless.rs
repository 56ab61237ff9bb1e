//! Serverless JavaScript apps: handlers, modules, logs, env, KV, limits and isolation,
//! all through the real binary.

use crate::support::Node;
use std::time::Duration;

fn deploy(node: &Node, app: &str, files: &[(&str, &str)]) {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, s)| (*p, s.as_bytes())).collect();
    let resp = node.deploy_files(app, &files);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn call(node: &Node, app: &str, method: &str, path: &str, body: &str) -> crate::support::Resp {
    node.request(
        method,
        &format!("{app}.localhost"),
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

const ECHO: &str = r#"
const started = await Promise.resolve('awaited at load');
module.exports = async function (request) {
  const { pathname } = request.url;
  if (pathname === '/api/echo') return { json: { request, started } };
  if (pathname === '/api/shape') return { json: { own: Object.keys(request.url.query), proto: Object.getPrototypeOf(request.url.query) === Object.prototype, polluted: ({}).polluted === undefined ? 'no' : 'yes', hasJson: 'json' in request, body: request.body } };
  if (pathname === '/api/text') return 'plain text';
  if (pathname === '/api/nothing') return undefined;
  if (pathname === '/api/created') return { status: 201, headers: { 'X-Custom': 'yes', 'Content-Length': '999' }, body: 'made' };
  if (pathname === '/api/go') return { redirect: '/elsewhere' };
  if (pathname === '/api/later') { await new Promise((r) => setTimeout(r, 30)); return { body: 'waited' }; }
  if (pathname === '/api/throw') { console.log('about to throw'); throw new Error('boom: secret detail'); }
  if (pathname === '/api/number') return 42;
  if (pathname === '/api/array') return [1, 'two'];
  if (pathname === '/api/badstatus') return { status: 9999, body: 'x' };
  if (pathname === '/api/leave-timer') { setTimeout(() => fazt.storage.kv.set('leaked', true), 10); return 'left a timer'; }
  if (pathname === '/api/leaked') { await new Promise((r) => setTimeout(r, 50)); return { json: { leaked: (await fazt.storage.kv.get('leaked')) ?? false } }; }
  if (pathname === '/api/badttl') { try { await fazt.storage.kv.set('k', 1, { ttl: -5 }); return 'accepted'; } catch (e) { return e.message; } }
  if (pathname === '/api/fnvalue') { try { await fazt.storage.kv.set('k', () => 1); return 'accepted'; } catch (e) { return e.message; } }
  if (pathname === '/api/globals') return { json: { process: typeof process, require: typeof require, std: typeof std, os: typeof os, env: fazt.app.env, name: fazt.app.name } };
  return { status: 404, json: { error: 'no route' } };
};
"#;

#[test]
fn handlers_get_the_request_and_shape_the_response() {
    let node = Node::in_process();
    deploy(&node, "echo", &[("api/main.js", ECHO), ("index.html", "static home")]);
    let resp = call(&node, "echo", "POST", "/api/echo?page=2&q=a+b", r#"{"name":"Alice"}"#);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let json = resp.json();
    let req = &json["request"];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["url"]["pathname"], "/api/echo");
    assert_eq!(req["url"]["search"], "?page=2&q=a+b");
    assert_eq!(req["url"]["query"]["q"], "a b");
    assert_eq!(req["headers"]["content-type"], "application/json");
    assert_eq!(req["body"], r#"{"name":"Alice"}"#);
    assert_eq!(req["json"]["name"], "Alice");
    assert_eq!(json["started"], "awaited at load", "top-level await in the module");
    // Hostile query names are plain own properties; a body that claims JSON and is not
    // stays text, with no `json`.
    let shape =
        call(&node, "echo", "POST", "/api/shape?__proto__=x&constructor=y&polluted=z", "{not json").json();
    assert_eq!(shape["own"], serde_json::json!(["__proto__", "constructor", "polluted"]));
    assert_eq!(shape["proto"], true, "the query object's prototype was replaced");
    assert_eq!(shape["polluted"], "no");
    assert_eq!(shape["hasJson"], false);
    assert_eq!(shape["body"], "{not json");

    assert_eq!(call(&node, "echo", "GET", "/api/text", "").text(), "plain text");
    assert_eq!(call(&node, "echo", "GET", "/api/nothing", "").status, 204);
    let created = call(&node, "echo", "GET", "/api/created", "");
    assert_eq!((created.status, created.header("x-custom")), (201, Some("yes")));
    assert_eq!(created.header("content-length"), Some("4"), "the server owns framing headers");
    let go = call(&node, "echo", "GET", "/api/go", "");
    assert_eq!((go.status, go.header("location")), (302, Some("/elsewhere")));
    assert_eq!(call(&node, "echo", "GET", "/api/later", "").text(), "waited");
    assert_eq!(call(&node, "echo", "GET", "/api/nope", "").status, 404);
    assert_eq!(call(&node, "echo", "GET", "/api/number", "").text(), "42");
    assert_eq!(call(&node, "echo", "GET", "/api/array", "").json(), serde_json::json!([1, "two"]));
    assert_eq!(call(&node, "echo", "GET", "/api/badstatus", "").code(), "handler_error");
    assert!(call(&node, "echo", "GET", "/api/badttl", "").text().contains("ttl must be a positive"));
    assert!(call(&node, "echo", "GET", "/api/fnvalue", "").text().contains("must be JSON"));
    // A timer left behind by one request never fires inside a later one.
    assert_eq!(call(&node, "echo", "GET", "/api/leave-timer", "").text(), "left a timer");
    assert_eq!(call(&node, "echo", "GET", "/api/leaked", "").json()["leaked"], false);
    // Static files of the same app are still served...
    assert_eq!(node.get("echo.localhost", "/").text(), "static home");
    // ...but never the backend's source, however the path is spelled.
    for path in [
        "/api/main.js",
        "/%61pi/main.js",
        "//api/main.js",
        "/./api/main.js",
        "/api%2Fmain.js",
        "/x/../api/main.js",
    ] {
        let resp = node.get("echo.localhost", path);
        assert!(!resp.text().contains("module.exports"), "{path} leaked the source");
    }
}

#[test]
fn thrown_errors_are_500_with_the_stack_in_the_app_log() {
    let node = Node::in_process();
    deploy(&node, "echo", &[("api/main.js", ECHO)]);
    let resp = call(&node, "echo", "GET", "/api/throw", "");
    assert_eq!(resp.status, 500);
    assert_eq!(resp.code(), "handler_error");
    assert!(!resp.text().contains("main.js"), "no stack to the client: {}", resp.text());
    let logs = node.cli_ok(&["app", "logs", "echo"]);
    assert!(logs.contains("about to throw"), "{logs}");
    assert!(logs.contains("boom: secret detail") && logs.contains("api/main.js"), "stack in the log: {logs}");
    // The API can wait for new lines (what `fazt app logs --follow` uses).
    let last =
        node.api("GET", "/api/apps/echo/logs?tail=1&limit=1", None).json()["last_id"].as_i64().unwrap();
    let waiter = {
        let (addr, token) = (node.addr, node.token.clone());
        std::thread::spawn(move || {
            let auth = format!("Bearer {token}");
            crate::support::raw_request(
                addr,
                "GET",
                "admin.localhost",
                &format!("/api/apps/echo/logs?after={last}&wait=20"),
                &[("Authorization", &auth)],
                b"",
            )
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    call(&node, "echo", "GET", "/api/throw", "");
    let followed = waiter.join().unwrap().json();
    assert!(
        followed["logs"].as_array().unwrap().iter().any(|l| l["message"] == "about to throw"),
        "{followed}"
    );
}

#[test]
fn modules_load_from_the_api_folder_only() {
    let node = Node::in_process();
    deploy(
        &node,
        "mods",
        &[
            (
                "api/main.js",
                r#"
const a = require('./a.js');
const cfg = require('./config.json');
const util = require('./lib/util');
module.exports = async (request) => {
  const p = request.url.pathname;
  if (p === '/api/ok') return { json: { a: a.name, b: a.b(), cfg: cfg.mode, up: util.up('x') } };
  if (p === '/api/escape') { try { require('../index.html'); } catch (e) { return { body: e.message }; } }
  if (p === '/api/absolute') { try { require('/etc/passwd'); } catch (e) { return { body: e.message }; } }
  if (p === '/api/bare') { try { require('fs'); } catch (e) { return { body: e.message }; } }
  if (p === '/api/missing') { try { require('./nope.js'); } catch (e) { return { body: e.message }; } }
  if (p === '/api/deep') { try { require('./d0.js'); } catch (e) { return { body: e.message }; } }
};"#,
            ),
            (
                "api/a.js",
                "const b = require('./b.js'); module.exports.name = 'a'; module.exports.b = () => b.name;",
            ),
            ("api/b.js", "const a = require('./a.js'); module.exports = { name: 'b', sawA: typeof a };"),
            ("api/config.json", r#"{"mode": "test"}"#),
            (
                "api/lib/util.js",
                "const h = require('../lib/helper.js'); module.exports = { up: (s) => h.upper(s) };",
            ),
            ("api/lib/helper.js", "module.exports = { upper: (s) => s.toUpperCase() };"),
            ("index.html", "<p>secret page</p>"),
            ("api/d0.js", "require('./d1.js')"),
            ("api/d1.js", "require('./d2.js')"),
            ("api/d2.js", "require('./d3.js')"),
            ("api/d3.js", "require('./d4.js')"),
            ("api/d4.js", "require('./d5.js')"),
            ("api/d5.js", "require('./d6.js')"),
            ("api/d6.js", "require('./d7.js')"),
            ("api/d7.js", "require('./d8.js')"),
            ("api/d8.js", "require('./d9.js')"),
            ("api/d9.js", "require('./d10.js')"),
            ("api/d10.js", "require('./d11.js')"),
            ("api/d11.js", "module.exports = 1"),
        ],
    );
    let ok = call(&node, "mods", "GET", "/api/ok", "").json();
    assert_eq!(ok["a"], "a");
    assert_eq!(ok["b"], "b", "cycles resolve to the partial exports");
    assert_eq!(ok["cfg"], "test");
    assert_eq!(ok["up"], "X");
    assert!(call(&node, "mods", "GET", "/api/escape", "").text().contains("outside the api/ folder"));
    assert!(call(&node, "mods", "GET", "/api/absolute", "").text().contains("only relative paths"));
    assert!(call(&node, "mods", "GET", "/api/bare", "").text().contains("only relative paths"));
    assert!(call(&node, "mods", "GET", "/api/missing", "").text().contains("cannot find module"));
    assert!(call(&node, "mods", "GET", "/api/deep", "").text().contains("depth limit"));
}

#[test]
fn env_kv_and_run_without_http() {
    let node = Node::in_process();
    deploy(
        &node,
        "counter",
        &[(
            "api/main.js",
            r#"
module.exports = async (request) => {
  const kv = fazt.storage.kv;
  const p = request.url.pathname;
  if (p === '/api/count') { const n = (await kv.get('n')) || 0; await kv.set('n', n + 1); return { json: { n: n + 1 } }; }
  if (p === '/api/types') {
    const v = { int: 1, float: 1.5, neg: -0.25, s: 'ü ✓', t: true, f: false, nil: null, arr: [1, [2]], obj: { a: { b: 'c' } } };
    await kv.set('types', v);
    return { json: { same: JSON.stringify(await kv.get('types')) === JSON.stringify(v), back: await kv.get('types') } };
  }
  if (p === '/api/ttl') { await kv.set('short', 'x', { ttl: 100 }); const before = await kv.get('short'); await new Promise((r) => setTimeout(r, 250)); return { json: { before, after: (await kv.get('short')) ?? 'gone' } }; }
  if (p === '/api/list') { await kv.set('user:1', 1); await kv.set('user:2', 2); await kv.set('other', 3); await kv.delete('user:2'); return { json: await kv.list('user:') }; }
  if (p === '/api/steal') return { json: { n: await kv.get('n') } };
  if (p === '/api/env') return { json: { env: fazt.app.env, path: typeof fazt.app.env.PATH, home: typeof fazt.app.env.HOME } };
  if (p === '/api/input') return { json: { got: request.json, method: request.method } };
};"#,
        )],
    );
    assert_eq!(call(&node, "counter", "POST", "/api/count", "").json()["n"], 1);
    assert_eq!(call(&node, "counter", "POST", "/api/count", "").json()["n"], 2);
    let types = call(&node, "counter", "GET", "/api/types", "").json();
    assert_eq!(types["same"], true, "{types}");
    assert_eq!(types["back"]["s"], "ü ✓");
    let ttl = call(&node, "counter", "GET", "/api/ttl", "").json();
    assert_eq!((ttl["before"].as_str(), ttl["after"].as_str()), (Some("x"), Some("gone")));
    let list = call(&node, "counter", "GET", "/api/list", "").json();
    assert_eq!(list, serde_json::json!([{"key": "user:1", "value": 1}]));

    // Another app with the same code sees none of this app's keys.
    deploy(
        &node,
        "other",
        &[(
            "api/main.js",
            "module.exports = async () => ({ json: { n: (await fazt.storage.kv.get('n')) ?? null } })",
        )],
    );
    assert_eq!(call(&node, "other", "GET", "/api/steal", "").json()["n"], serde_json::Value::Null);

    node.cli_ok(&["app", "env", "set", "counter", "GREETING=hello world", "MODE=test", "MY_VAR=1"]);
    let env = call(&node, "counter", "GET", "/api/env", "").json();
    assert_eq!(env["env"]["GREETING"], "hello world");
    assert_eq!(env["env"]["MY_VAR"], "1", "names with _ survive the CLI's URL encoding");
    assert_eq!(env["path"], "undefined", "never the host's environment");
    assert!(node.cli_ok(&["app", "env", "list", "counter"]).contains("MODE=test"));
    node.cli_ok(&["app", "env", "unset", "counter", "MODE"]);
    assert_eq!(call(&node, "counter", "GET", "/api/env", "").json()["env"]["MODE"], serde_json::Value::Null);
    assert!(!node.cli(&["app", "env", "set", "counter", "1BAD=x"]).status.success());

    let out =
        node.cli_ok(&["app", "run", "counter", "--path", "/api/input", "--input", r#"{"name":"Alice"}"#]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["got"]["name"], "Alice");
    assert_eq!(out["method"], "POST");
}

#[test]
fn limits_stop_loops_and_memory_bombs_and_others_keep_answering() {
    let node = Node::in_process();
    let hostile = r#"
module.exports = async (request) => {
  const p = request.url.pathname;
  if (p === '/api/loop') { while (true) {} }
  if (p === '/api/bomb') { const a = []; while (true) a.push('x'.repeat(1024) + a.length); }
  if (p === '/api/recurse') { const f = (n) => f(n + 1) + 1; return { body: String(f(0)) }; }
  if (p === '/api/sleep') { await new Promise((r) => setTimeout(r, 60000)); return 'late'; }
  if (p === '/api/hang') { await new Promise(() => {}); }
  return { body: 'alive' };
};"#;
    deploy(&node, "hostile", &[("api/main.js", hostile)]);
    deploy(&node, "good", &[("api/main.js", "module.exports = async () => 'fine'")]);
    node.cli_ok(&["app", "limits", "hostile", "--timeout-ms", "1500", "--memory-mb", "16"]);

    let looping = {
        let addr = node.addr;
        std::thread::spawn(move || {
            crate::support::raw_request(addr, "GET", "hostile.localhost", "/api/loop", &[], b"")
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // While one worker spins, another app answers: before the loop is stopped (an
    // order of events, not a time limit).
    assert_eq!(call(&node, "good", "GET", "/api/x", "").text(), "fine");
    assert!(!looping.is_finished(), "another app waited until the spinning one was stopped");
    let looped = looping.join().unwrap();
    assert_eq!((looped.status, looped.code().as_str()), (504, "timeout"), "{}", looped.text());

    // Clients that hang up on a spinning handler do not free its slot while it spins:
    // the app keeps to its share of the workers and another app still answers.
    for _ in 0..4 {
        let mut s = std::net::TcpStream::connect(node.addr).unwrap();
        std::io::Write::write_all(&mut s, b"GET /api/loop HTTP/1.1\r\nHost: hostile.localhost\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
    }
    // One more loop, held open: it waits behind the abandoned ones (or spins itself), so
    // it ends only after a loop was stopped.
    let held = {
        let addr = node.addr;
        std::thread::spawn(move || {
            crate::support::raw_request(addr, "GET", "hostile.localhost", "/api/loop", &[], b"")
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(call(&node, "good", "GET", "/api/x", "").text(), "fine");
    assert!(!held.is_finished(), "another app waited until the spinning app's loops were stopped");
    // The held loop ran after the abandoned ones: all have timed out once it has.
    let held = held.join().unwrap();
    assert_eq!((held.status, held.code().as_str()), (504, "timeout"), "{}", held.text());

    let bomb = call(&node, "hostile", "GET", "/api/bomb", "");
    assert_eq!((bomb.status, bomb.code().as_str()), (500, "memory_limit"), "{}", bomb.text());
    let deep = call(&node, "hostile", "GET", "/api/recurse", "");
    assert_eq!(deep.status, 500);
    assert_eq!(call(&node, "hostile", "GET", "/api/sleep", "").code(), "timeout");
    assert_eq!(call(&node, "hostile", "GET", "/api/hang", "").status, 500);
    // The app itself recovers on the next request, and the node is fine.
    assert_eq!(call(&node, "hostile", "GET", "/api/ok", "").text(), "alive");
    assert_eq!(call(&node, "good", "GET", "/api/x", "").text(), "fine");
    assert_eq!(node.get("localhost", "/").status, 200);
}

#[test]
fn apps_cannot_reach_the_host_or_each_other() {
    let node = Node::in_process();
    deploy(&node, "echo", &[("api/main.js", ECHO)]);
    let globals = call(&node, "echo", "GET", "/api/globals", "").json();
    for name in ["process", "std", "os"] {
        assert_eq!(globals[name], "undefined", "{name}: {globals}");
    }
    assert_eq!(globals["require"], "function");
    assert_eq!(globals["name"], "echo");
    // A huge body is refused from its Content-Length, before it is sent.
    let big = crate::support::head_only(node.addr, "POST", "echo.localhost", "/api/echo", 2 << 20);
    assert_eq!((big.status, big.code().as_str()), (413, "too_large"));
    // A script over the size limit does not load.
    let huge = format!("module.exports = async () => 'x'; // {}", "y".repeat(1 << 20));
    deploy(&node, "huge", &[("api/main.js", &huge)]);
    let resp = call(&node, "huge", "GET", "/api/x", "");
    assert_eq!((resp.status, resp.code().as_str()), (500, "load_error"), "{}", resp.text());
    // A syntax error is a load error with the detail in the log.
    deploy(&node, "broken", &[("api/main.js", "module.exports = async () => 1;\nconst x = ;\n")]);
    assert_eq!(call(&node, "broken", "GET", "/api/x", "").code(), "load_error");
    let logs = node.cli_ok(&["app", "logs", "broken"]);
    assert!(logs.contains("SyntaxError") && logs.contains("api/main.js:2"), "the line of the error: {logs}");
}

#[test]
fn v07_main_js_with_req_and_res_still_works() {
    let node = Node::in_process();
    deploy(&node, "old", &[("main.js", "if (req.path === '/api/hi') { res.status(200).json({ hi: req.query.name }); } else { res.status(404).send('no'); }")]);
    let hi = call(&node, "old", "GET", "/api/hi?name=bob", "");
    assert_eq!(hi.json()["hi"], "bob");
    assert_eq!(call(&node, "old", "GET", "/api/other", "").status, 404);
    // Without any backend, /api paths are plain static paths.
    deploy(&node, "plain", &[("index.html", "x")]);
    assert_eq!(call(&node, "plain", "GET", "/api/anything", "").status, 404);
}

#[test]
fn inline_runs_keep_other_apps_answering_while_a_handler_spins() {
    // runtime.inline_ms: handlers run on the HTTP threads, watched (runtime::inline).
    let node = Node::in_process_with(&[("runtime.inline_ms", "2")], None);
    deploy(&node, "echo", &[("api/main.js", ECHO)]);
    let spin = "module.exports = async (r) => { if (r.url.pathname === '/api/loop') { while (true) {} } return 'alive'; };";
    deploy(&node, "spin", &[("api/main.js", spin)]);
    deploy(
        &node,
        "good",
        &[("api/main.js", "module.exports = async (r) => ({ json: { path: r.url.pathname } })")],
    );
    node.cli_ok(&["app", "limits", "spin", "--timeout-ms", "8000"]);

    // The same answers as on the workers, timers and KV included.
    let echo = call(&node, "echo", "POST", "/api/echo?x=1", r#"{"a":1}"#);
    assert_eq!(echo.status, 200, "{}", echo.text());
    assert_eq!(echo.json()["request"]["json"]["a"], 1);
    assert_eq!(echo.json()["request"]["url"]["query"]["x"], "1");
    let created = call(&node, "echo", "GET", "/api/created", "");
    assert_eq!(
        (created.status, created.header("x-custom"), created.text().as_str()),
        (201, Some("yes"), "made")
    );
    assert_eq!(call(&node, "echo", "GET", "/api/later", "").text(), "waited");
    assert_eq!(call(&node, "echo", "GET", "/api/badstatus", "").status, 500);
    assert_eq!(call(&node, "echo", "GET", "/api/number", "").text(), "42");

    // Two spinning handlers, as many as the node has HTTP threads on two cores: the
    // watchdog lends spare threads, so other connections and apps keep being served
    // while both still spin.
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let addr = node.addr;
            std::thread::spawn(move || {
                crate::support::raw_request(addr, "GET", "spin.localhost", "/api/loop", &[], b"")
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..20 {
        let path = format!("/api/n{i}");
        assert_eq!(call(&node, "good", "GET", &path, "").json()["path"], path.as_str());
    }
    assert_eq!(node.get("localhost", "/").status, 200);
    assert!(loops.iter().all(|l| !l.is_finished()), "the other requests were answered while both spun");
    for l in loops {
        let looped = l.join().unwrap();
        assert_eq!((looped.status, looped.code().as_str()), (504, "timeout"), "{}", looped.text());
    }
    // The spinning app itself recovers (served by the workers for a while).
    assert_eq!(call(&node, "spin", "GET", "/api/ok", "").text(), "alive");
}

// See: issue 17 (a handler could answer `101 Switching Protocols`, handing the client's
// connection over to a protocol nobody speaks).
#[test]
fn informational_statuses_become_a_500_with_a_log_line() {
    let node = Node::in_process();
    let handler = "module.exports = async (r) => ({ status: Number(r.url.query.s), headers: { upgrade: 'websocket' }, body: 'x' })";
    deploy(&node, "upgrader", &[("api/main.js", handler)]);
    for status in ["101", "100", "103"] {
        let resp = call(&node, "upgrader", "GET", &format!("/api/x?s={status}"), "");
        assert_eq!((resp.status, resp.code().as_str()), (500, "bad_status"), "{status}: {}", resp.text());
        assert_eq!(resp.header("upgrade"), None);
    }
    assert_eq!(call(&node, "upgrader", "GET", "/api/x?s=200", "").status, 200);
    deploy(&node, "old", &[("main.js", "res.status(101).send('switching')")]);
    assert_eq!(call(&node, "old", "GET", "/api/x", "").code(), "bad_status");
    let logs = node.cli_ok(&["app", "logs", "upgrader"]);
    assert!(logs.contains("status 101") && logs.contains("1xx"), "{logs}");
}

// See: issue 17 (a site with a front-end bundle named `main.js` at its root became a v0.7
// backend, and the bundle was no longer served).
#[test]
fn a_main_js_bundle_loaded_by_a_page_is_served_not_run() {
    let node = Node::in_process();
    let page = r#"<!doctype html><div id="app"></div><script type="module" src="/main.js"></script>"#;
    let bundle = "document.getElementById('app').textContent = req.path;";
    deploy(&node, "spa", &[("index.html", page), ("main.js", bundle)]);
    let served = node.get("spa.localhost", "/main.js");
    assert_eq!((served.status, served.text().as_str()), (200, bundle));
    assert!(served.header("content-type").unwrap().contains("javascript"));
    // No backend: /api paths are plain static paths.
    assert_eq!(call(&node, "spa", "GET", "/api/x", "").status, 404);
    // A v0.7 app with a page that does not load main.js keeps its backend, and its
    // source stays private.
    let legacy = "res.json({ path: req.path })";
    deploy(
        &node,
        "old",
        &[("index.html", "<h1>home</h1><script src=\"js/main.js\"></script>"), ("main.js", legacy)],
    );
    assert_eq!(call(&node, "old", "GET", "/api/hi", "").json()["path"], "/api/hi");
    assert_eq!(node.get("old.localhost", "/main.js").status, 404);
}
