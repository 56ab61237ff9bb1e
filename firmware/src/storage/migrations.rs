//! Append-only schema migrations, embedded in the binary.
//!
//! Evolutionary database design: a migration is never edited once released, and runs at
//! start inside one transaction with its record in `schema_migrations`, so a crash
//! mid-migration leaves the previous schema intact. Most only add tables, columns or
//! indexes; a few rewrite rows (10 gives apps UUIDs, 11 moves state rows out of
//! `config`), and tests/e2e/upgrade.rs opens an old database through the real binary.

use super::StorageError;
use rusqlite::Connection;

/// (version, description, SQL). Append new entries; never change an existing one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "cartridge core: config, users, sessions, tokens, apps, VFS",
        r#"
    CREATE TABLE config (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE api_tokens (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        token_hash   TEXT NOT NULL UNIQUE,
        prefix       TEXT NOT NULL,
        user_id      TEXT REFERENCES users(id),
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at   INTEGER
    );
    CREATE TABLE apps (
        id                    TEXT PRIMARY KEY,
        name                  TEXT NOT NULL,
        system                INTEGER NOT NULL DEFAULT 0,
        current_deployment_id TEXT,
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL,
        deleted_at            INTEGER
    );
    CREATE UNIQUE INDEX apps_live_name ON apps(name) WHERE deleted_at IS NULL;
    -- Content-addressed file bodies: identical files are stored once. The compressed
    -- variants are made once, at deploy time, never per request.
    CREATE TABLE blobs (
        hash       TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        data       BLOB NOT NULL,
        gzip       BLOB,
        brotli     BLOB,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE deployments (
        id         TEXT PRIMARY KEY,
        app_id     TEXT NOT NULL REFERENCES apps(id),
        created_at INTEGER NOT NULL,
        file_count INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL
    );
    CREATE TABLE files (
        deployment_id TEXT NOT NULL REFERENCES deployments(id),
        app_id        TEXT NOT NULL REFERENCES apps(id),
        path          TEXT NOT NULL,
        hash          TEXT NOT NULL REFERENCES blobs(hash),
        size          INTEGER NOT NULL,
        content_type  TEXT NOT NULL,
        PRIMARY KEY (deployment_id, path)
    );
    CREATE INDEX files_app ON files(app_id);
    "#,
    ),
    (
        2,
        "serverless runtime: key-value store, app logs, app environment, app limits",
        r#"
    CREATE TABLE kv (
        app_id     TEXT NOT NULL REFERENCES apps(id),
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        expires_at INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, key)
    );
    CREATE TABLE app_logs (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id  TEXT NOT NULL REFERENCES apps(id),
        at      INTEGER NOT NULL,
        level   TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX app_logs_app ON app_logs(app_id, id);
    CREATE TABLE app_env (
        app_id TEXT NOT NULL REFERENCES apps(id),
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (app_id, key)
    );
    CREATE TABLE app_limits (
        app_id       TEXT PRIMARY KEY REFERENCES apps(id),
        timeout_ms   INTEGER,
        memory_bytes INTEGER
    );
    "#,
    ),
    // Versions 2 and 3 were built on separate branches; the runner applies any version
    // not yet recorded, so a file made on either branch gets the other one too.
    (
        3,
        "beacon: node key seeds and discovered nodes",
        r#"
    -- Secret seeds of the node's Ed25519 keys (software keystore; a TPM keeps its own).
    -- In data.db so that the identity moves with a backup, like the password hashes.
    CREATE TABLE node_keys (
        name       TEXT PRIMARY KEY,
        algorithm  TEXT NOT NULL,
        seed       BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    -- Nodes the beacon currently sees (advisory: pruned on expiry, bounded by
    -- beacon.max_nodes). Keyed by the DNS-SD instance name, unique on the link.
    CREATE TABLE beacon_nodes (
        fullname   TEXT PRIMARY KEY,
        id         TEXT,
        name       TEXT NOT NULL,
        host       TEXT NOT NULL,
        addresses  TEXT NOT NULL,
        port       INTEGER NOT NULL,
        version    TEXT,
        services   TEXT NOT NULL,
        public_key TEXT,
        verified   INTEGER NOT NULL DEFAULT 0,
        meta       TEXT,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL
    );
    CREATE INDEX beacon_nodes_last_seen ON beacon_nodes(last_seen);
    "#,
    ),
    // Version 4 is the timekeeper's (built on its own branch); the runner applies both.
    (
        5,
        "https: certificates, the LAN CA certificate and ACME accounts",
        r#"
    -- Certificates the node serves, one row per name it was added or obtained for.
    -- In data.db so that a backup carries them (the LAN CA key is in node_keys).
    CREATE TABLE tls_certs (
        name       TEXT PRIMARY KEY,   -- e.g. blog.example.com, or *.example.com
        source     TEXT NOT NULL,      -- custom, acme or lan
        names      TEXT NOT NULL,      -- JSON array: every DNS name and IP it covers
        chain_pem  TEXT NOT NULL,      -- leaf first, then intermediates
        key_pem    TEXT NOT NULL,      -- PKCS#8, SEC1 or PKCS#1 private key
        not_before INTEGER NOT NULL,
        not_after  INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    -- The node's own certificate authority for the LAN (its key: node_keys 'lan-ca-p256').
    CREATE TABLE lan_ca (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        cert_pem   TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    -- ACME accounts by directory URL; credentials hold the account key (JSON).
    CREATE TABLE acme_accounts (
        directory   TEXT PRIMARY KEY,
        credentials TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    "#,
    ),
    (
        6,
        "keys: public keys beside sealed key material",
        r#"
    -- node_keys.seed now holds sealed material (see keys/): a seed encrypted with the
    -- machine's wrapping key, or a TPM key blob. The public key is kept in the clear so
    -- that listing keys and offline status need no secret.
    ALTER TABLE node_keys ADD COLUMN public_key BLOB;
    "#,
    ),
    (
        7,
        "https: the last good OCSP answer of each certificate",
        r#"
    -- Kept so that a node restarted without internet still staples a valid answer; it
    -- is checked again (certificate, signature, dates) before being stapled.
    CREATE TABLE tls_ocsp (
        name       TEXT PRIMARY KEY,   -- the tls_certs name
        response   BLOB NOT NULL,      -- the DER OCSPResponse, status good
        fetched_at INTEGER NOT NULL
    );
    "#,
    ),
    (
        8,
        "per-app storage quotas: bytes each app keeps in its KV store",
        r#"
    -- NULL: the default quota (syscall::limits::DEFAULT_STORAGE_BYTES).
    ALTER TABLE app_limits ADD COLUMN storage_bytes INTEGER;
    -- Kept by triggers, so every way a row changes (set, delete, expiry sweep, app
    -- deletion) is counted, and a quota check costs one row read.
    CREATE TABLE app_usage (
        app_id   TEXT PRIMARY KEY,
        kv_bytes INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO app_usage(app_id, kv_bytes)
        SELECT app_id, sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM kv GROUP BY app_id;
    CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
        INSERT INTO app_usage(app_id, kv_bytes)
            VALUES (NEW.app_id, length(CAST(NEW.key AS BLOB)) + length(CAST(NEW.value AS BLOB)))
            ON CONFLICT(app_id) DO UPDATE SET kv_bytes = kv_bytes + excluded.kv_bytes;
    END;
    CREATE TRIGGER kv_usage_update AFTER UPDATE ON kv BEGIN
        UPDATE app_usage SET kv_bytes = kv_bytes
            - (length(CAST(OLD.key AS BLOB)) + length(CAST(OLD.value AS BLOB)))
            + (length(CAST(NEW.key AS BLOB)) + length(CAST(NEW.value AS BLOB)))
            WHERE app_id = NEW.app_id;
    END;
    CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
        UPDATE app_usage SET kv_bytes = kv_bytes - (length(CAST(OLD.key AS BLOB)) + length(CAST(OLD.value AS BLOB)))
            WHERE app_id = OLD.app_id;
    END;
    "#,
    ),
    (
        9,
        "events: the kernel event bus's bounded history",
        r#"
    -- The last events.max_rows events of the bus (see events/ring.rs). id is the bus's
    -- own number, not one SQLite picks, so live and stored events share one sequence.
    -- app_id has no foreign key: an app's events outlive it (apps.deleted).
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        time       INTEGER NOT NULL,
        type       TEXT NOT NULL,
        app_id     TEXT,
        app_name   TEXT,
        visibility TEXT NOT NULL,      -- private (its app and the admin) or public
        data       TEXT NOT NULL       -- JSON, at most 16 KiB
    );
    "#,
    ),
    (
        10,
        "apps: UUIDv7 ids instead of app_… ids, in every table that names an app",
        r#"
    -- Each old id gets a UUIDv7 made of the app's created_at (48 bits of ms) and 74
    -- random bits. The map stays: env values are sealed under a label that holds the
    -- app id, and only the keys layer (which has the sealer) can seal them again under
    -- the new id (keys/relabel.rs); it deletes each row once done.
    CREATE TABLE app_id_changes (
        old_id TEXT PRIMARY KEY,
        new_id TEXT NOT NULL UNIQUE
    );
    INSERT INTO app_id_changes(old_id, new_id)
        SELECT id, lower(
            substr(printf('%012x', min(max(created_at, 0), 281474976710655)), 1, 8) || '-' ||
            substr(printf('%012x', min(max(created_at, 0), 281474976710655)), 9, 4) || '-' ||
            '7' || substr(hex(randomblob(2)), 1, 3) || '-' ||
            substr('89ab', (random() & 3) + 1, 1) || substr(hex(randomblob(2)), 1, 3) || '-' ||
            hex(randomblob(6)))
        FROM apps WHERE id LIKE 'app\_%' ESCAPE '\';
    -- The children point at apps(id): checked at commit, once every table agrees.
    PRAGMA defer_foreign_keys = ON;
    UPDATE apps SET id = (SELECT new_id FROM app_id_changes WHERE old_id = apps.id)
        WHERE id IN (SELECT old_id FROM app_id_changes);
    UPDATE deployments SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = deployments.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    UPDATE files SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = files.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    UPDATE kv SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = kv.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    UPDATE app_logs SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = app_logs.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    UPDATE app_env SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = app_env.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    UPDATE app_limits SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = app_limits.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    UPDATE events SET app_id = (SELECT new_id FROM app_id_changes WHERE old_id = events.app_id)
        WHERE app_id IN (SELECT old_id FROM app_id_changes);
    -- The kv triggers moved bytes between usage rows as keys changed hands: count again.
    DELETE FROM app_usage;
    INSERT INTO app_usage(app_id, kv_bytes)
        SELECT app_id, sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM kv GROUP BY app_id;
    "#,
    ),
    (
        11,
        "state: internal state rows move out of the config table",
        r#"
    -- What the node remembers that is not a setting (storage/state.rs); config keeps
    -- only settings. The keys are those of StateKey::ALL.
    CREATE TABLE state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO state(key, value) SELECT key, value FROM config
        WHERE key IN ('setup.code', 'setup.first_token', 'beacon.boot', 'time.last_known_ms',
                      'state.system_apps_hash', 'acme.status');
    DELETE FROM config
        WHERE key IN ('setup.code', 'setup.first_token', 'beacon.boot', 'time.last_known_ms',
                      'state.system_apps_hash', 'acme.status');
    "#,
    ),
    (
        12,
        "egress: each app's allow-list of outbound hosts, its own limits, and the outbound request log",
        r#"
    CREATE TABLE egress_allow (
        app_id     TEXT NOT NULL REFERENCES apps(id),
        host       TEXT NOT NULL,              -- a name, *.domain, or an IP address
        port       INTEGER NOT NULL DEFAULT 0, -- 0: any port
        private    INTEGER NOT NULL DEFAULT 0, -- 1: may reach private addresses (exact host:port)
        created_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, host, port)
    );
    CREATE TABLE egress_limits (               -- NULL: the node's egress.* setting
        app_id             TEXT PRIMARY KEY REFERENCES apps(id),
        max_concurrent     INTEGER,
        max_request_bytes  INTEGER,
        max_response_bytes INTEGER,
        timeout_ms         INTEGER
    );
    CREATE TABLE egress_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,
        app_id      TEXT NOT NULL,
        method      TEXT NOT NULL,
        host        TEXT NOT NULL,
        status      INTEGER,                   -- NULL: no answer
        bytes       INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        error       TEXT                       -- the error code, when it failed
    );
    CREATE INDEX egress_log_app ON egress_log(app_id, id);
    "#,
    ),
];

/// The highest version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The highest version applied to `conn` (0 for a new file).
pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
}

/// Every migration this binary knows: (version, description).
pub fn known() -> impl Iterator<Item = (i64, &'static str)> {
    MIGRATIONS.iter().map(|m| (m.0, m.1))
}

/// The migrations `conn` has not had yet (all of them for a new file), in order.
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<(i64, &'static str)>> {
    let applied: Vec<i64> = if current_version(conn)? == 0 {
        Vec::new()
    } else {
        conn.prepare("SELECT version FROM schema_migrations")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    Ok(known().filter(|m| !applied.contains(&m.0)).collect())
}

/// Applies every migration the file has not had yet.
pub fn run(conn: &mut Connection) -> Result<(), StorageError> {
    apply(conn, MIGRATIONS)
}

/// Applies the migrations up to `version` only: the schema an older release left.
pub fn run_through(conn: &mut Connection, version: i64) -> Result<(), StorageError> {
    let older: Vec<_> = MIGRATIONS.iter().copied().filter(|m| m.0 <= version).collect();
    apply(conn, &older)
}

fn apply(conn: &mut Connection, migrations: &[(i64, &str, &str)]) -> Result<(), StorageError> {
    let latest = migrations.last().map(|m| m.0).unwrap_or(0);
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at  INTEGER NOT NULL
        )",
    )?;
    let current = current_version(&tx)?;
    if current > latest {
        return Err(StorageError::TooNew { found: current, known: latest });
    }
    // Every version not yet recorded, not only those above the highest: branches add
    // migrations in parallel (see version 3), and a file made by one must still get
    // the other's.
    let applied: Vec<i64> = tx
        .prepare("SELECT version FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (version, description, sql) in migrations.iter().filter(|m| !applied.contains(&m.0)) {
        tx.execute_batch(sql)?;
        // Migration time is bookkeeping only; 0 keeps this module free of the clock.
        tx.execute(
            "INSERT INTO schema_migrations(version, description, applied_at) VALUES (?1, ?2, 0)",
            rusqlite::params![version, description],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
    }

    #[test]
    fn a_missing_lower_version_is_still_applied() {
        // A file made by a build with versions 1 and 3, opened by one with 1, 2 and 3.
        let one = (1, "one", "CREATE TABLE one (x);");
        let two = (2, "two", "CREATE TABLE two (x);");
        let three = (3, "three", "CREATE TABLE three (x);");
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, &[one, three]).unwrap();
        apply(&mut conn, &[one, two, three]).unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
        conn.execute("INSERT INTO two VALUES (1)", []).unwrap();
    }

    #[test]
    fn pending_lists_what_run_applies() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(pending(&conn).unwrap().len(), MIGRATIONS.len());
        run(&mut conn).unwrap();
        assert!(pending(&conn).unwrap().is_empty());
        conn.execute("DELETE FROM schema_migrations WHERE version = 3", []).unwrap();
        assert_eq!(pending(&conn).unwrap(), [(3, MIGRATIONS.iter().find(|m| m.0 == 3).unwrap().1)]);
    }

    /// A database made by the schema before `version`, as the binary of that time left it.
    fn database_before(version: i64) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        run_through(&mut conn, version - 1).unwrap();
        conn
    }

    #[test]
    fn app_ids_become_uuids_in_every_table_with_the_data_intact() {
        let mut conn = database_before(10);
        conn.execute_batch(
            r#"
            INSERT INTO apps(id, name, system, current_deployment_id, created_at, updated_at)
                VALUES ('app_00000000000000aa', 'blog', 0, 'dep_1', 1796670585159, 1),
                       ('app_00000000000000bb', 'admin', 1, 'dep_2', 5, 5),
                       ('app_00000000000000cc', 'gone', 0, NULL, 7, 7);
            UPDATE apps SET deleted_at = 9 WHERE name = 'gone';
            INSERT INTO blobs(hash, size, data, created_at) VALUES ('h1', 2, x'6869', 1);
            INSERT INTO deployments VALUES ('dep_1', 'app_00000000000000aa', 1, 1, 2),
                                           ('dep_2', 'app_00000000000000bb', 1, 1, 2);
            INSERT INTO files VALUES ('dep_1', 'app_00000000000000aa', 'index.html', 'h1', 2, 'text/html'),
                                     ('dep_2', 'app_00000000000000bb', 'index.html', 'h1', 2, 'text/html');
            INSERT INTO kv(app_id, key, value, updated_at) VALUES ('app_00000000000000aa', 'k', '"v"', 1),
                                                                  ('app_00000000000000cc', 'old', '1', 1);
            INSERT INTO app_logs(app_id, at, level, message) VALUES ('app_00000000000000aa', 1, 'info', 'hi');
            INSERT INTO app_env VALUES ('app_00000000000000aa', 'API_KEY', 'sealed:xyz');
            INSERT INTO app_limits(app_id, timeout_ms) VALUES ('app_00000000000000aa', 1234);
            INSERT INTO events VALUES (1, 1, 'apps.deployed', 'app_00000000000000aa', 'blog', 'private', '{}'),
                                      (2, 2, 'login.failed', NULL, NULL, 'private', '{}');
            "#,
        )
        .unwrap();
        run(&mut conn).unwrap();
        let id_of = |name: &str| -> String {
            conn.query_row("SELECT id FROM apps WHERE name = ?1", [name], |r| r.get(0)).unwrap()
        };
        let blog = id_of("blog");
        assert!(crate::ids::is_uuid(&blog), "{blog}");
        assert_eq!(&blog[14..15], "7", "a v7 UUID: {blog}");
        // Its time is the app's created_at.
        let ms = i64::from_str_radix(&blog[..8], 16).unwrap() << 16
            | i64::from_str_radix(&blog[9..13], 16).unwrap();
        assert_eq!(ms, 1796670585159);
        let (admin, gone) = (id_of("admin"), id_of("gone"));
        assert!(crate::ids::is_uuid(&admin) && crate::ids::is_uuid(&gone));
        assert!(blog != admin && admin != gone);
        let count = |sql: &str, id: &str| -> i64 { conn.query_row(sql, [id], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM deployments WHERE app_id = ?1", &blog), 1);
        assert_eq!(count("SELECT count(*) FROM files WHERE app_id = ?1", &blog), 1);
        assert_eq!(count("SELECT count(*) FROM files WHERE app_id = ?1", &admin), 1);
        assert_eq!(count("SELECT count(*) FROM kv WHERE app_id = ?1 AND value = '\"v\"'", &blog), 1);
        assert_eq!(count("SELECT count(*) FROM kv WHERE app_id = ?1", &gone), 1, "a deleted app's rows too");
        assert_eq!(count("SELECT count(*) FROM app_logs WHERE app_id = ?1 AND message = 'hi'", &blog), 1);
        assert_eq!(count("SELECT count(*) FROM app_env WHERE app_id = ?1", &blog), 1);
        assert_eq!(count("SELECT timeout_ms FROM app_limits WHERE app_id = ?1", &blog), 1234);
        assert_eq!(count("SELECT count(*) FROM events WHERE app_id = ?1 AND app_name = 'blog'", &blog), 1);
        assert_eq!(count("SELECT kv_bytes FROM app_usage WHERE app_id = ?1", &blog), 4, "'k' + '\"v\"'");
        // No old id is left anywhere, and every reference resolves.
        for table in
            ["apps", "deployments", "files", "kv", "app_logs", "app_env", "app_limits", "app_usage", "events"]
        {
            let column = if table == "apps" { "id" } else { "app_id" };
            let sql = format!("SELECT count(*) FROM {table} WHERE {column} LIKE 'app%'");
            assert_eq!(conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap(), 0, "{table}");
        }
        let broken: i64 =
            conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(broken, 0);
        assert_eq!(
            count("SELECT count(*) FROM app_id_changes WHERE new_id = ?1", &blog),
            1,
            "kept for keys/relabel"
        );
        let current: String = conn
            .query_row("SELECT current_deployment_id FROM apps WHERE id = ?1", [&blog], |r| r.get(0))
            .unwrap();
        assert_eq!(current, "dep_1");
    }

    #[test]
    fn state_rows_move_out_of_config_and_settings_stay() {
        let mut conn = database_before(11);
        for key in super::super::state::StateKey::ALL {
            conn.execute("INSERT INTO config(key, value) VALUES (?1, 'v')", [key.as_str()]).unwrap();
        }
        conn.execute("INSERT INTO config(key, value) VALUES ('domain', 'example.com')", []).unwrap();
        run(&mut conn).unwrap();
        for &key in super::super::state::StateKey::ALL {
            assert_eq!(super::super::state::get(&conn, key).unwrap().as_deref(), Some("v"), "{key:?}");
        }
        let left: Vec<String> = conn
            .prepare("SELECT key FROM config")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, ["domain"]);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)", []).unwrap();
        assert!(matches!(run(&mut conn), Err(StorageError::TooNew { found: 999, .. })));
    }
}
