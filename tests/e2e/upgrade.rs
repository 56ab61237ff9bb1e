//! Upgrades: a data file exactly as a schema-9 node left it (apps with `app_…` ids, env
//! values sealed under labels holding those ids), started by this binary's real start
//! path. Migration 10 gives the apps UUIDs and the keys layer seals each env value again
//! under its new id (keys/relabel.rs); a mistake there would silently lose every app's
//! environment, so these tests read it back through the API, the CLI and a handler.

use crate::support::Node;
use fazt_hal::keystore::{AeadSealer, KeyOrigin, Sealer};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// The env values of the app `blog`, as its owner set them before the upgrade.
const ENV: &[(&str, &str)] =
    &[("API_KEY", "s3cret-key"), ("EMPTY", ""), ("GREETING", "hello, world = ✓ \"quoted\"\nsecond line")];

/// `blog`'s handler: what the runtime hands it (id, env) and its KV counter.
const HANDLER: &str = r#"
module.exports = async function () {
  const visits = (await fazt.storage.kv.get('visits')) + 1;
  await fazt.storage.kv.set('visits', visits);
  console.log('visit ' + visits);
  return { json: { id: fazt.app.id, env: fazt.app.env, visits } };
};
"#;

/// When the old node created `blog` (ms): the time part of its new UUIDv7.
const BLOG_CREATED_AT: i64 = 1_790_000_000_123;

/// A schema-9 node's folder, not started.
struct OldNode {
    node: Node,
    /// `blog`'s old id.
    blog: String,
    /// The node's sealer (its machine.key), to check the stored values directly.
    sealer: AeadSealer,
    /// A value sealed under `blog`'s old label by another machine's key, if asked for.
    foreign: Option<String>,
}

/// Builds, in a node's folder, the data file a schema-9 node made: migrations 1..=9, its
/// machine key and canary, and the apps `blog` (files, handler, KV, logs, limits, env,
/// an event), `gone` (deleted, with an env value) and the system app `admin`, all with
/// ids of the old form. With `foreign`, `blog` also has the env value `STALE` sealed by
/// a key this node does not have.
fn schema_9_node(foreign: bool) -> OldNode {
    let mut node = Node::init_with(&[]);
    // Only the harness (folder, port, CLI wiring) is kept: the file `server init` made
    // is of this binary's schema, and is replaced by an old one.
    for entry in std::fs::read_dir(node.dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    node.token.clear();
    node.password = None;
    let data = node.data();
    // The machine key as the node makes it, and the canary it sealed with it.
    let (secret, _) = fazt_hal::keystore::machine_secret(&fazt::keys::machine_key_path(&data)).unwrap();
    let sealer = AeadSealer::new(secret, KeyOrigin::MachineFile, "machine.key");
    let mut conn = fazt::storage::create_at_version(&data, 9).unwrap();
    let canary =
        sealer.seal(&fazt::keys::store::seal_label(fazt::keys::CANARY_ROW), b"fazt machine key check");
    conn.execute(
        "INSERT INTO node_keys(name, algorithm, seed, created_at) VALUES (?1, 'canary', ?2, 1)",
        rusqlite::params![fazt::keys::CANARY_ROW, canary.unwrap()],
    )
    .unwrap();

    // Ids as the schema-9 node made them (`app_` and 64 random bits).
    let (blog, gone, admin) = (fazt::ids::new_id("app"), fazt::ids::new_id("app"), fazt::ids::new_id("app"));
    assert!(blog.starts_with("app_") && blog.len() == 20, "{blog}");
    let tx = conn.transaction().unwrap();
    for (id, name, system, created) in
        [(&blog, "blog", false, BLOG_CREATED_AT), (&gone, "gone", false, 5), (&admin, "admin", true, 7)]
    {
        tx.execute(
            "INSERT INTO apps(id, name, system, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            rusqlite::params![id, name, system, created],
        )
        .unwrap();
    }
    tx.execute("UPDATE apps SET deleted_at = 9 WHERE id = ?1", [&gone]).unwrap();
    let deploy = |app: &str, system: bool, files: &[(&str, &[u8])]| {
        let mut listed = BTreeMap::new();
        for (path, body) in files {
            let hash = fazt::fs::content_hash(body);
            fazt::fs::deploy::store_blob(&tx, &hash, body, &fazt::fs::content_type_for(path), 10).unwrap();
            listed.insert(path.to_string(), (hash, body.len() as u64));
        }
        fazt::fs::deploy::switch_deployment(&tx, app, system, &listed, 10).unwrap();
    };
    deploy("blog", false, &[("index.html", b"the old blog"), ("api/main.js", HANDLER.as_bytes())]);
    deploy("admin", true, &[("index.html", b"an old admin")]);
    // The rest as the schema-9 syscalls wrote it (JSON KV values, sealed env values).
    tx.execute("INSERT INTO kv(app_id, key, value, updated_at) VALUES (?1, 'visits', '41', 10)", [&blog])
        .unwrap();
    tx.execute("INSERT INTO kv(app_id, key, value, updated_at) VALUES (?1, 'old', '1', 10)", [&gone])
        .unwrap();
    tx.execute(
        "INSERT INTO app_logs(app_id, at, level, message) VALUES (?1, 10, 'info', 'an old log line')",
        [&blog],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO app_limits(app_id, timeout_ms, memory_bytes, storage_bytes) VALUES (?1, 4321, NULL, 1048576)",
        [&blog],
    )
    .unwrap();
    let seal = |sealer: &dyn Sealer, app: &str, name: &str, value: &str| {
        fazt::keys::sealed_text::seal(sealer, &format!("app_env:{app}/{name}"), value).unwrap()
    };
    for (name, value) in ENV {
        tx.execute(
            "INSERT INTO app_env(app_id, key, value) VALUES (?1, ?2, ?3)",
            [&blog, *name, &seal(&sealer, &blog, name, value)],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO app_env(app_id, key, value) VALUES (?1, 'GONE_KEY', ?2)",
        [&gone, &seal(&sealer, &gone, "GONE_KEY", "still here")],
    )
    .unwrap();
    let foreign = foreign.then(|| {
        let elsewhere = AeadSealer::new(rand::random(), KeyOrigin::MachineFile, "another machine");
        let stored = seal(&elsewhere, &blog, "STALE", "from elsewhere");
        tx.execute("INSERT INTO app_env(app_id, key, value) VALUES (?1, 'STALE', ?2)", [&blog, &stored])
            .unwrap();
        stored
    });
    tx.execute(
        "INSERT INTO events(id, time, type, app_id, app_name, visibility, data)
         VALUES (1, 10, 'apps.deployed', ?1, 'blog', 'private', '{}')",
        [&blog],
    )
    .unwrap();
    tx.commit().unwrap();
    drop(conn);
    OldNode { node, blog, sealer, foreign }
}

/// Every row of every table that holds app data or the id map, to compare two starts.
fn snapshot(node: &Node) -> Vec<String> {
    let conn = Connection::open(node.data()).unwrap();
    let mut out = Vec::new();
    for table in [
        "apps",
        "deployments",
        "files",
        "blobs",
        "kv",
        "app_logs",
        "app_env",
        "app_limits",
        "app_usage",
        "app_id_changes",
        "node_keys",
        "schema_migrations",
    ] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..columns).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push(format!("{table}: {:?}", row.unwrap()));
        }
    }
    out
}

/// `SELECT` one value.
fn one<T: rusqlite::types::FromSql>(node: &Node, sql: &str, params: impl rusqlite::Params) -> T {
    Connection::open(node.data()).unwrap().query_row(sql, params, |r| r.get(0)).unwrap()
}

/// `blog`'s env through the API, as name -> value (JSON is exact for multi-line values,
/// which the CLI prints as they are).
fn env_listed(node: &Node) -> BTreeMap<String, String> {
    let answer = node.api("GET", "/api/apps/blog/env", None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    serde_json::from_value(answer.json()["env"].clone()).unwrap()
}

fn expected_env() -> BTreeMap<String, String> {
    ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// What every upgrade must keep: `blog` has a UUIDv7 stamped with its creation time, and
/// its env (API, CLI and handler), files, KV, logs, limits and events are as they were.
/// Returns its new id.
fn assert_blog_intact(old: &OldNode) -> String {
    let node = &old.node;
    let info = node.api("GET", "/api/apps/blog", None).json();
    let id = info["id"].as_str().unwrap().to_string();
    assert_eq!((id.len(), &id[14..15]), (36, "7"), "a UUIDv7: {id}");
    let ms = i64::from_str_radix(&id[..8], 16).unwrap() << 16 | i64::from_str_radix(&id[9..13], 16).unwrap();
    assert_eq!(ms, BLOG_CREATED_AT, "{id}");
    assert_eq!(info["file_count"], 2, "{info}");

    assert_eq!(env_listed(node), expected_env());
    let cli = node.cli_ok(&["app", "env", "list", "blog"]);
    assert!(cli.contains("API_KEY=s3cret-key\n") && cli.contains("EMPTY=\n"), "{cli}");

    let resp = node.request("POST", "blog.localhost", "/api/visit", &[], b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = resp.json();
    assert_eq!(seen["id"], id.as_str());
    assert_eq!(
        serde_json::from_value::<BTreeMap<String, String>>(seen["env"].clone()).unwrap(),
        expected_env()
    );
    assert_eq!(seen["visits"], 42, "the old KV value, and it can still be written");

    assert_eq!(node.get("blog.localhost", "/").text(), "the old blog");
    let logs = node.cli_ok(&["app", "logs", "blog"]);
    assert!(logs.contains("an old log line") && logs.contains("visit 42"), "{logs}");
    let limits = node.api("GET", "/api/apps/blog/limits", None).json();
    assert_eq!(
        (limits["timeout_ms"].as_u64(), limits["storage_bytes"].as_u64()),
        (Some(4321), Some(1 << 20))
    );
    assert_eq!(limits["storage_used_bytes"], "visits".len() + "42".len(), "{limits}");
    let events = node.api("GET", "/api/events?since=0&type=apps.deployed", None).json();
    let old_event = events["events"].as_array().unwrap().iter().find(|e| e["id"] == 1).cloned();
    assert_eq!(old_event.map(|e| e["app"].clone()), Some(id.clone().into()), "{events}");

    // The system app kept its row (with a UUID) and was deployed again over it.
    let apps = node.api("GET", "/api/apps", None).json();
    let admins: Vec<_> = apps["apps"].as_array().unwrap().iter().filter(|a| a["name"] == "admin").collect();
    assert_eq!(admins.len(), 1, "{apps}");
    assert_eq!(admins[0]["id"].as_str().unwrap().len(), 36, "{apps}");
    assert_ne!(node.get("admin.localhost", "/").text(), "an old admin");

    // No old id is left in any table, and each env value opens under its new label,
    // the deleted app's too.
    for (table, column) in [
        ("apps", "id"),
        ("deployments", "app_id"),
        ("files", "app_id"),
        ("kv", "app_id"),
        ("app_logs", "app_id"),
        ("app_env", "app_id"),
        ("app_limits", "app_id"),
        ("app_usage", "app_id"),
        ("events", "app_id"),
    ] {
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} LIKE 'app\\_%' ESCAPE '\\'");
        assert_eq!(one::<i64>(node, &sql, []), 0, "{table}");
    }
    let gone: String = one(node, "SELECT id FROM apps WHERE name = 'gone'", []);
    let stored: String =
        one(node, "SELECT value FROM app_env WHERE app_id = ?1 AND key = 'GONE_KEY'", [&gone]);
    let label = format!("app_env:{gone}/GONE_KEY");
    assert_eq!(fazt::keys::sealed_text::open(&old.sealer, &label, &stored).unwrap(), "still here");
    for (name, value) in ENV {
        let stored: String =
            one(node, "SELECT value FROM app_env WHERE app_id = ?1 AND key = ?2", [&id, *name]);
        let label = format!("app_env:{id}/{name}");
        assert_eq!(fazt::keys::sealed_text::open(&old.sealer, &label, &stored).unwrap(), *value);
    }
    id
}

#[test]
fn upgrade_from_schema_9_keeps_every_app_env_value_under_the_new_uuid() {
    let mut old = schema_9_node(false);
    // First start of the upgraded binary: a first start for the harness too (no admin
    // user yet), so its API token is read from the output.
    old.node.first_start();
    assert_blog_intact(&old);
    // Every migration this binary knows ran (the latest one, not a fixed number, so
    // that a new migration does not break this test).
    let latest = fazt::storage::status::status(&old.node.data()).unwrap().latest_version;
    assert!(latest >= 11);
    assert_eq!(one::<i64>(&old.node, "SELECT max(version) FROM schema_migrations", []), latest);
    assert_eq!(one::<i64>(&old.node, "SELECT count(*) FROM app_id_changes", []), 0, "every app is done");

    // A second start finds nothing to do: not a byte of app data changes.
    assert_restart_changes_nothing(&mut old.node);
}

#[test]
fn upgrade_keeps_a_value_sealed_elsewhere_and_its_map_row_for_a_later_start() {
    let mut old = schema_9_node(true);
    let log = old.node.dir.path().join("node.log");
    old.node.log = Some(log.clone());
    old.node.first_start();
    // The node starts, and the values it can open all made it across.
    let id = assert_blog_intact(&old);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("kept for the next start"), "{log_text}");
    // The one it cannot open is left exactly as stored, and so is its app's map row, so
    // that a start with the right key can still seal it under the new id.
    let foreign = old.foreign.as_deref().unwrap();
    let stored: String =
        one(&old.node, "SELECT value FROM app_env WHERE app_id = ?1 AND key = 'STALE'", [&id]);
    assert_eq!(stored, foreign);
    let map: (String, String) = Connection::open(old.node.data())
        .unwrap()
        .query_row("SELECT old_id, new_id FROM app_id_changes", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(map, (old.blog.clone(), id));
    assert_eq!(one::<i64>(&old.node, "SELECT count(*) FROM app_id_changes", []), 1, "only blog's row");

    // Another start changes nothing either.
    assert_restart_changes_nothing(&mut old.node);
}

/// Stops the node, starts it again and stops it: the env still reads the same, and not
/// a row of app data changed.
fn assert_restart_changes_nothing(node: &mut Node) {
    node.stop();
    let before = snapshot(node);
    node.spawn();
    assert_eq!(env_listed(node), expected_env());
    node.stop();
    assert_eq!(snapshot(node), before);
}
