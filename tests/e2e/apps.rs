//! Apps as the kernel sees them: UUIDs, renaming (through the API, the CLI and offline on
//! the data file), and system apps that cannot be renamed, deleted or overwritten.

use crate::support::Node;

const HANDLER: &str = r#"
module.exports = async function (request) {
  const count = ((await fazt.storage.kv.get('count')) ?? 0) + 1;
  await fazt.storage.kv.set('count', count);
  console.log('hit ' + count);
  return { json: { count, secret: fazt.app.env.SECRET ?? null, name: fazt.app.name, id: fazt.app.id } };
};
"#;

fn hit(node: &Node, app: &str) -> serde_json::Value {
    let resp = node.request("POST", &format!("{app}.localhost"), "/api/hit", &[], b"");
    assert_eq!(resp.status, 200, "{app}: {}", resp.text());
    resp.json()
}

/// Every live app as (id, name), to show that a refused rename changed nothing.
fn apps(node: &Node) -> Vec<(String, String)> {
    let list = node.api("GET", "/api/apps", None).json();
    list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["name"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_renamed_app_keeps_its_files_kv_env_logs_and_limits_and_its_old_name_is_gone() {
    let mut node = Node::start();
    let files: &[(&str, &[u8])] = &[("index.html", b"the blog"), ("api/main.js", HANDLER.as_bytes())];
    assert_eq!(node.deploy_files("blog", files).status, 200);
    node.cli_ok(&["app", "env", "set", "blog", "SECRET=s3cret"]);
    node.cli_ok(&["app", "limits", "blog", "--timeout-ms", "4321"]);
    let first = hit(&node, "blog");
    assert_eq!((first["count"].as_i64(), first["name"].as_str()), (Some(1), Some("blog")));
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!((id.len(), &id[14..15]), (36, "7"), "a UUIDv7: {id}");
    assert_eq!(node.get("blog.localhost", "/").text(), "the blog", "cached under the old name now");
    let since = node.api("GET", "/api/events?since=0&limit=1000", None).json()["last_id"].as_u64().unwrap();

    let out = node.cli_ok(&["app", "rename", "blog", "journal"]);
    assert!(out.contains("renamed blog to journal"), "{out}");

    // Served under the new name at once, the old one is gone at once.
    assert_eq!(node.get("journal.localhost", "/").text(), "the blog");
    assert_eq!(node.get("blog.localhost", "/").status, 404);
    assert_eq!(node.get("blog.localhost", "/api/hit").status, 404);
    assert_eq!(node.api("GET", "/api/apps/blog", None).status, 404);
    // KV and env carried over; the handler sees its new name and the same id.
    let after = hit(&node, "journal");
    assert_eq!(after["count"], 2);
    assert_eq!(after["secret"], "s3cret");
    assert_eq!(after["name"], "journal", "the JavaScript instance was built anew");
    assert_eq!(after["id"], id.as_str());
    let logs = node.cli_ok(&["app", "logs", "journal"]);
    assert!(logs.contains("hit 1") && logs.contains("hit 2"), "{logs}");
    let limits = node.cli_ok(&["app", "limits", "journal"]);
    assert!(limits.contains("4321"), "{limits}");
    let env = node.cli_ok(&["app", "env", "list", "journal"]);
    assert!(env.contains("SECRET=s3cret"), "{env}");
    let info = node.api("GET", "/api/apps/journal", None).json();
    assert_eq!((info["id"].as_str(), info["file_count"].as_u64()), (Some(id.as_str()), Some(2)));
    assert!(info["url"].as_str().unwrap().starts_with("http://journal.localhost:"));
    let list = node.cli_ok(&["app", "list"]);
    assert!(list.lines().any(|l| l.starts_with("journal ") && l.contains(&id)), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("blog ")), "{list}");

    // One event, with the id and both names.
    let events = node.api("GET", &format!("/api/events?since={since}&type=apps.renamed"), None).json();
    let events = events["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["app"], id.as_str());
    assert_eq!(events[0]["app_name"], "journal");
    assert_eq!(events[0]["data"], serde_json::json!({"id": id, "old": "blog", "new": "journal"}));

    // The old name is free: a deploy there makes a new app.
    assert_eq!(node.deploy_files("blog", &[("index.html", b"new blog")]).status, 200);
    let new_blog = node.api("GET", "/api/apps/blog", None).json();
    assert_ne!(new_blog["id"], id.as_str());
    assert_eq!(node.get("journal.localhost", "/").text(), "the blog");

    // `--data` with the node running goes through its API.
    let data = node.data();
    let out = node.cli(&["app", "rename", "journal", "diary", "--data", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("through its API"));
    assert_eq!(node.get("diary.localhost", "/").text(), "the blog");

    // Offline, on the data file of a stopped node; the event is in the history.
    node.stop();
    let out = node.cli(&["app", "rename", "diary", "notes", "--data", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    let refused = node.cli(&["app", "rename", "notes", "blog", "--data", data.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("name_taken"));
    node.spawn();
    assert_eq!(node.get("notes.localhost", "/").text(), "the blog");
    assert_eq!(node.get("diary.localhost", "/").status, 404);
    assert_eq!(hit(&node, "notes")["count"], 3);
    let events = node.api("GET", &format!("/api/events?since={since}&type=apps.renamed"), None).json();
    let names: Vec<_> =
        events["events"].as_array().unwrap().iter().map(|e| e["data"]["new"].clone()).collect();
    assert_eq!(names, ["journal", "diary", "notes"]);
    assert_eq!(node.integrity(), "ok");
}

#[test]
fn hostile_renames_are_refused_and_change_nothing() {
    let node = Node::start();
    assert_eq!(node.deploy_files("blog", &[("index.html", b"blog")]).status, 200);
    assert_eq!(node.deploy_files("shop", &[("index.html", b"shop")]).status, 200);
    let before = apps(&node);
    let long = "x".repeat(64);
    let cases: &[(&str, serde_json::Value, u16, &str)] = &[
        ("blog", serde_json::json!({"name": "shop"}), 409, "name_taken"),
        ("blog", serde_json::json!({"name": "Blog"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "../etc"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "a.b"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "a b"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "-x"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": ""}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "bl\u{f6}g"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "x\u{0}"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": long}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "admin"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": "api"}), 400, "bad_app_name"),
        ("blog", serde_json::json!({"name": 5}), 400, "bad_json"),
        ("blog", serde_json::json!({}), 400, "bad_json"),
        ("blog", serde_json::json!({"name": "ok", "extra": 1}), 400, "bad_json"),
        ("nope", serde_json::json!({"name": "fine"}), 404, "not_found"),
        ("admin", serde_json::json!({"name": "fine"}), 403, "system_app"),
        ("root", serde_json::json!({"name": "fine"}), 403, "system_app"),
        ("404", serde_json::json!({"name": "fine"}), 403, "system_app"),
    ];
    for (app, body, status, code) in cases {
        let resp = node.api("POST", &format!("/api/apps/{app}/rename"), Some(body));
        assert_eq!((resp.status, resp.code().as_str()), (*status, *code), "{app} {body}: {}", resp.text());
    }
    // The CLI says why, with the code, and fails.
    for (args, code) in [
        (["app", "rename", "blog", "shop"], "name_taken"),
        (["app", "rename", "admin", "mine"], "system_app"),
        (["app", "rename", "blog", "NOPE"], "bad_app_name"),
    ] {
        let out = node.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(apps(&node), before);
    assert_eq!(node.get("blog.localhost", "/").text(), "blog");
    let events = node.api("GET", "/api/events?since=0&type=apps.renamed", None).json();
    assert_eq!(events["events"], serde_json::json!([]));
}

#[test]
fn system_apps_are_listed_with_uuids_and_cannot_be_deleted_or_overwritten() {
    let node = Node::start();
    let list = node.api("GET", "/api/apps", None).json();
    let system: Vec<_> =
        list["apps"].as_array().unwrap().iter().filter(|a| a["system"] == true).cloned().collect();
    let names: Vec<_> = system.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["404", "admin", "root"]);
    for app in &system {
        let id = app["id"].as_str().unwrap();
        assert_eq!((id.len(), &id[14..15]), (36, "7"), "{app}");
    }
    let listed = node.cli_ok(&["app", "list"]);
    assert!(listed.contains("admin (system)"), "{listed}");
    for name in ["admin", "root", "404"] {
        let resp = node.api("DELETE", &format!("/api/apps/{name}"), None);
        assert_eq!((resp.status, resp.code().as_str()), (403, "system_app"), "{name}");
        let resp = node.deploy_files(name, &[("index.html", b"mine now")]);
        assert_eq!((resp.status, resp.code().as_str()), (400, "bad_app_name"), "{name}");
        assert!(resp.text().contains("reserved for the system"), "{}", resp.text());
    }
    let after = node.api("GET", "/api/apps", None).json();
    assert_eq!(after, list);
}

#[test]
fn internal_state_is_kept_apart_from_the_settings() {
    let mut node = Node::start();
    node.stop();
    let conn = rusqlite::Connection::open(node.data()).unwrap();
    let state: Vec<String> = conn
        .prepare("SELECT key FROM state ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(state.iter().any(|k| k == "state.system_apps_hash"), "{state:?}");
    assert!(state.iter().any(|k| k == "setup.code"), "{state:?}");
    let leaked: i64 = conn
        .query_row(
            "SELECT count(*) FROM config WHERE key IN (SELECT key FROM state) OR key LIKE 'setup.%' OR key = 'acme.status'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaked, 0);
    drop(conn);
    let list = node.cli_ok(&["config", "list", "--data", node.data().to_str().unwrap()]);
    for key in &state {
        assert!(!list.contains(key.as_str()), "{key} in `config list`:\n{list}");
    }
}
