//! The beacon on a private virtual LAN: network namespaces joined by a bridge, each
//! running a real fazt node (or Avahi, or a hostile sender), as the issue asks.
//!
//! Everything here stays inside namespaces the test makes (10.77.0.0/24 exists only
//! there) and is removed by [`Lab`]'s Drop, which also runs when a test fails. Tests
//! skip, with a printed reason, only when namespaces cannot be made at all (no root).
//! Namespaces and links are global to the machine: their names carry the test
//! process's id, so that two runs of the suite at once (two checkouts on one machine)
//! never use, or clean up, each other's labs.

use super::support::fazt_bin;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A private LAN: `hosts` namespaces on one bridge, host `i` at 10.77.0.`i`.
pub struct Lab {
    tag: String,
    hosts: usize,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

impl Lab {
    /// Makes the LAN, or prints why it cannot and returns `None`.
    pub fn new(tag: &str, hosts: usize) -> Option<Lab> {
        assert!(tag.len() <= 4 && hosts <= 9);
        let tag = format!("{}{tag}", run_id(std::process::id()));
        let lab = Lab { tag, hosts, children: Vec::new(), dir: tempfile::tempdir().unwrap() };
        remove_dead_runs(); // leftovers of runs that were killed before their cleanup
        lab.remove_links(); // and of an earlier process with our id
        let probe = ip(&["netns", "add", &lab.ns(1)]);
        if !probe.status.success() {
            eprintln!(
                "SKIPPED beacon lab test: cannot create a network namespace ({}); run as root",
                String::from_utf8_lossy(&probe.stderr).trim()
            );
            return None;
        }
        let bridge = lab.bridge();
        ok(Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]));
        ok(Command::new("ip").args(["link", "set", &bridge, "up"]));
        for i in 1..=hosts {
            let (ns, veth) = (lab.ns(i), format!("{}v{i}", lab.bridge()));
            if i > 1 {
                ok(Command::new("ip").args(["netns", "add", &ns]));
            }
            ok(Command::new("ip")
                .args(["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]));
            ok(Command::new("ip").args(["link", "set", &veth, "master", &bridge, "up"]));
            ok(Command::new("ip").args([
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.77.0.{i}/24"),
                "dev",
                "eth0",
            ]));
            ok(Command::new("ip").args(["-n", &ns, "link", "set", "eth0", "up"]));
            ok(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]));
        }
        Some(lab)
    }

    /// The namespace of host `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("fzb{}{i}", self.tag)
    }

    fn bridge(&self) -> String {
        format!("fzb{}", self.tag)
    }

    /// A command run on host `i`.
    pub fn cmd(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(i), program]);
        cmd
    }

    /// A temp folder for files of this lab.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Keeps a child process, to be killed at cleanup.
    pub fn keep(&mut self, child: Child) {
        self.children.push(child);
    }

    fn remove_links(&self) {
        for i in 1..=9 {
            let _ = ip(&["netns", "del", &self.ns(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.hosts;
        self.remove_links();
    }
}

/// `pid` as five base-36 digits (process ids are below 36^5), the start of lab names
/// after `fzb`. A bridge `fzb` + 5 + a tag of 4 with `v9` added for its veths is 14
/// bytes, within the 15 of an interface name.
fn run_id(mut pid: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = [b'0'; 5];
    for digit in id.iter_mut().rev() {
        *digit = DIGITS[(pid % 36) as usize];
        pid /= 36;
    }
    String::from_utf8(id.to_vec()).unwrap()
}

/// Whether `name` is a lab's namespace or bridge made by a process that is gone.
fn of_dead_run(name: &str) -> bool {
    let Some(id) = name.strip_prefix("fzb").and_then(|rest| rest.get(..5)) else { return false };
    match u32::from_str_radix(id, 36) {
        Ok(pid) => name.len() > 8 && !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

/// Removes the namespaces and bridges of labs whose test process is gone (killed
/// before its cleanup). Those of running processes are left alone.
fn remove_dead_runs() {
    for entry in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if of_dead_run(&name) {
            let _ = ip(&["netns", "del", &name]);
        }
    }
    let links = ip(&["-o", "link", "show", "type", "bridge"]);
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        // "12: fzb00abcd: <BROADCAST,...> ..."
        if let Some(name) = line.split(": ").nth(1).filter(|name| of_dead_run(name)) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

/// A fazt node on host `i` of a lab.
pub struct LabNode {
    ns: String,
    dir: tempfile::TempDir,
    token: String,
    child: Option<Child>,
    pub id: String,
    /// Extra `server start` arguments (e.g. `--clock-offset-ms`).
    args: Vec<String>,
}

impl LabNode {
    /// Creates a data file with `settings` (config keys) and starts the node on host
    /// `i`, port 8080, listening on every address.
    pub fn start(lab: &Lab, i: usize, settings: &[(&str, &str)]) -> LabNode {
        LabNode::start_with(lab, i, settings, &[])
    }

    /// Like [`LabNode::start`], with extra `server start` arguments.
    pub fn start_with(lab: &Lab, i: usize, settings: &[(&str, &str)], args: &[&str]) -> LabNode {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.db");
        let init = ok(Command::new(fazt_bin())
            .args(["server", "init", "--port", "8080", "--password", "lab-password-1", "--data"])
            .arg(&data));
        let token = init.lines().find_map(|l| l.strip_prefix("API token: ")).unwrap().trim().to_string();
        for (key, value) in settings {
            ok(Command::new(fazt_bin()).args(["config", "set", key, value, "--data"]).arg(&data));
        }
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut node = LabNode { ns: lab.ns(i), dir, token, child: None, id: String::new(), args };
        node.spawn();
        node
    }

    /// Starts the process again on the same data file.
    pub fn spawn(&mut self) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, fazt_bin(), "server", "start", "--data"])
            .arg(self.dir.path().join("data.db"))
            .arg("--config")
            .arg(self.dir.path().join("client.json"))
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some(id) = line.split("(node ").nth(1) {
                        self.id = id.trim_end_matches(')').to_string();
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                    if line.starts_with("fazt is ready") {
                        break;
                    }
                }
                Err(e) => panic!("node on {} did not start ({e}):\n{seen}", self.ns),
            }
        }
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.child = Some(child);
    }

    /// Runs the fazt CLI on this node's host, with its data file.
    pub fn cli(&self, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns, fazt_bin()])
            .args(args)
            .arg("--data")
            .arg(self.dir.path().join("data.db")))
    }

    /// Runs `fazt beacon status` against this node's API.
    pub fn status_cli(&self, args: &[&str]) -> Output {
        let mut all =
            vec!["beacon", "status", "--server", "http://admin.localhost:8080", "--token", &self.token];
        all.extend_from_slice(args);
        self.cli(&all)
    }

    /// `GET /api/system/beacon`, through `fazt beacon status --json`.
    pub fn beacon(&self) -> Value {
        let out = self.status_cli(&["--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `GET /api/system/time`, through `fazt time status --json`.
    pub fn time(&self) -> Value {
        let out = run(Command::new("ip").args(["netns", "exec", &self.ns, fazt_bin()]).args([
            "time",
            "status",
            "--json",
            "--server",
            "http://admin.localhost:8080",
            "--token",
            &self.token,
        ]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Names of the peers this node sees.
    pub fn peer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.beacon()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// SIGTERM: a clean shutdown (goodbye packets).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL: gone without a word.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LabNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `cond` every 100 ms for at most `limit`; returns the time it took.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// Quick settings for tests: announce every 2 s, expire after 4 s.
const FAST: &[(&str, &str)] = &[("beacon.announce_interval_secs", "2"), ("beacon.expiry_secs", "4")];

fn with(name: &str, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = FAST.iter().map(|(k, v)| (*k, v.to_string())).collect();
    v.push(("beacon.name", name.to_string()));
    v.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    v
}

fn start(lab: &Lab, i: usize, settings: &[(&'static str, String)]) -> LabNode {
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    LabNode::start(lab, i, &pairs)
}

#[test]
fn three_nodes_find_each_other_then_leave_by_goodbye_and_by_kill9() {
    let Some(lab) = Lab::new("a", 3) else { return };
    // Host 1 also has a container bridge; its address must not be announced.
    ok(Command::new("ip").args(["-n", &lab.ns(1), "link", "add", "docker0", "type", "bridge"]));
    ok(Command::new("ip").args(["-n", &lab.ns(1), "addr", "add", "172.31.77.1/24", "dev", "docker0"]));
    ok(Command::new("ip").args(["-n", &lab.ns(1), "link", "set", "docker0", "up"]));
    // Two nodes ask for the same name: exactly one must move (RFC 6762 §9).
    let a = start(&lab, 1, &with("twin", &[]));
    let mut b = start(&lab, 2, &with("twin", &[]));
    // The third one has HTTPS with a LAN CA: its TXT record carries the CA fingerprint.
    let mut c = start(&lab, 3, &with("third", &[("beacon.interfaces", "eth0"), ("https.mode", "lan")]));
    let took = wait_for("every node to see the other two", Duration::from_secs(20), || {
        [&a, &b, &c].iter().all(|n| n.peer_names().len() == 2)
    });
    eprintln!("beacon: three nodes saw each other {took:?} after the last start");
    let names: Vec<String> =
        [&a, &b, &c].iter().map(|n| n.beacon()["node"]["name"].as_str().unwrap().into()).collect();
    assert_eq!(names[2], "third");
    assert_ne!(names[0], names[1], "the name clash was not resolved: {names:?}");
    assert!(
        names[..2].contains(&"twin".to_string()) && names[..2].iter().any(|n| n.starts_with("twin-")),
        "{names:?}"
    );
    let status = a.beacon();
    for peer in status["peers"].as_array().unwrap() {
        assert_eq!(peer["verified"], true, "{peer}");
        assert_eq!(peer["port"], 8080);
        assert!(peer["id"].as_str().unwrap().starts_with("node_"));
        assert_eq!(peer["services"], serde_json::json!(["web"]));
    }
    assert!(status["peers"].as_array().unwrap().iter().any(|p| p["id"] == b.id.as_str()));
    let seen_a =
        b.beacon()["peers"].as_array().unwrap().iter().find(|p| p["id"] == a.id.as_str()).cloned().unwrap();
    assert!(seen_a["addresses"].as_array().unwrap().contains(&"10.77.0.1".into()), "{seen_a}");
    assert!(
        !seen_a.to_string().contains("172.31.77.1"),
        "a container bridge address was announced: {seen_a}"
    );
    let c_ca = c.beacon()["node"]["ca_fingerprint"].as_str().expect("c announces its LAN CA").to_string();
    assert_eq!(c_ca.len(), 64);
    let seen_c =
        a.beacon()["peers"].as_array().unwrap().iter().find(|p| p["id"] == c.id.as_str()).cloned().unwrap();
    assert_eq!(seen_c["ca_fingerprint"], c_ca.as_str(), "{seen_c}");
    assert_eq!(seen_c["verified"], true);
    assert!(seen_a["ca_fingerprint"].is_null(), "{seen_a}");

    // A clean stop sends goodbyes: the others drop it well before the 4 s expiry.
    c.stop();
    let took = wait_for("the stopped node to vanish", Duration::from_secs(3), || {
        a.peer_names().len() == 1 && b.peer_names().len() == 1
    });
    eprintln!("beacon: a stopped node vanished after {took:?} (goodbye)");

    // kill -9 sends nothing: it vanishes after expiry (4 s) plus the confirmation window.
    b.kill9();
    let took = wait_for("the killed node to expire", Duration::from_secs(12), || a.peer_names().is_empty());
    eprintln!("beacon: a killed node vanished after {took:?} (expiry 4 s)");
    assert!(a.beacon()["counters"]["lost"].as_u64().unwrap() >= 2);
    // The node keeps serving.
    let text = a.status_cli(&[]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Announcing: "), "{text:?}");
}

/// A private D-Bus and Avahi daemon on host `i` (started as the lab's children).
fn start_avahi(lab: &mut Lab, i: usize, host_name: &str) -> String {
    let dir = lab.dir().join(format!("avahi{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let bus = dir.join("bus");
    std::fs::write(
        dir.join("dbus.conf"),
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/>
<allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/></policy>
<includedir>/usr/share/dbus-1/system.d</includedir></busconfig>"#,
            bus.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("avahi.conf"),
        format!(
            "[server]\nhost-name={host_name}\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=eth0\nenable-dbus=yes\n\
             [wide-area]\nenable-wide-area=no\n[publish]\npublish-addresses=yes\npublish-hinfo=no\npublish-workstation=no\n"
        ),
    )
    .unwrap();
    let address = format!("unix:path={}", bus.display());
    let dbus = lab
        .cmd(i, "dbus-daemon")
        .args(["--nofork", "--nopidfile", "--config-file"])
        .arg(dir.join("dbus.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("dbus-daemon (installed by tests/setup)");
    lab.keep(dbus);
    wait_for("the private D-Bus socket", Duration::from_secs(10), || bus.exists());
    // Avahi refuses to start twice on one machine because of its pid file under /run:
    // give it a private mount namespace with its own /run.
    let script = format!(
        "mount -t tmpfs none /run && mkdir -p /run/avahi-daemon && exec avahi-daemon -f {} --no-drop-root --no-chroot",
        dir.join("avahi.conf").display()
    );
    let avahi = lab
        .cmd(i, "unshare")
        .args(["-m", "sh", "-c", &script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("avahi-daemon (installed by tests/setup)");
    lab.keep(avahi);
    wait_for("avahi-daemon on D-Bus", Duration::from_secs(15), || {
        run(lab
            .cmd(i, "avahi-browse")
            .args(["-pt", "_nothing._tcp"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address))
        .status
        .success()
    });
    address
}

#[test]
fn avahi_sees_fazt_and_fazt_sees_avahi() {
    let Some(mut lab) = Lab::new("b", 2) else { return };
    let bus = start_avahi(&mut lab, 2, "lab-avahi");
    let node = start(&lab, 1, &with("kitchen-pi", &[]));

    // Avahi browses and resolves the fazt service, with its TXT record.
    let mut line = String::new();
    wait_for("avahi-browse to resolve _fazt._tcp", Duration::from_secs(15), || {
        let out =
            ok(lab.cmd(2, "avahi-browse").args(["-rpt", "_fazt._tcp"]).env("DBUS_SYSTEM_BUS_ADDRESS", &bus));
        line = out.lines().find(|l| l.starts_with('=') && l.contains("kitchen-pi")).unwrap_or("").to_string();
        !line.is_empty()
    });
    // =;eth0;IPv4;kitchen-pi;_fazt._tcp;local;kitchen-pi.local;10.77.0.1;8080;"sig=…" "id=…"
    let fields: Vec<&str> = line.split(';').collect();
    assert_eq!(fields[6], "kitchen-pi.local", "{line}");
    assert_eq!(fields[7], "10.77.0.1", "{line}");
    assert_eq!(fields[8], "8080", "{line}");
    assert!(fields[9].contains(&format!("\"id={}\"", node.id)), "{line}");
    assert!(fields[9].contains("\"services=web\""), "{line}");

    // Avahi resolves the host name, and the name reaches the node over HTTP.
    let resolved = ok(lab
        .cmd(2, "avahi-resolve")
        .args(["-4", "-n", "kitchen-pi.local"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus));
    assert_eq!(resolved.split_whitespace().nth(1), Some("10.77.0.1"), "{resolved}");
    let page = ok(lab
        .cmd(2, "curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", "kitchen-pi.local:8080:10.77.0.1"])
        .arg("http://kitchen-pi.local:8080/"));
    assert_eq!(page, "200");

    // fazt finds a service that Avahi publishes (unsigned, so unverified).
    let publish = lab
        .cmd(2, "avahi-publish")
        .args(["-s", "peer-one", "_fazt._tcp", "8081", "id=abc", "name=peer-one", "services=mesh"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.keep(publish);
    let mut scanned = Value::Null;
    wait_for("fazt beacon scan to find peer-one", Duration::from_secs(20), || {
        let out = ok(lab.cmd(1, fazt_bin()).args(["beacon", "scan", "--json", "--timeout", "2"]));
        scanned = serde_json::from_str(&out).unwrap();
        scanned["nodes"].as_array().unwrap().iter().any(|n| n["name"] == "peer-one")
    });
    let nodes = scanned["nodes"].as_array().unwrap();
    let peer = nodes.iter().find(|n| n["name"] == "peer-one").unwrap();
    assert_eq!(peer["port"], 8081);
    assert_eq!(peer["verified"], false);
    assert!(peer["addresses"].as_array().unwrap().contains(&"10.77.0.2".into()), "{peer}");
    assert_eq!(peer["services"], serde_json::json!(["mesh"]));
    // The scan runs beside the node on the same port; the node keeps its multicast off
    // this host (see MdnsOptions::multicast_loop), so the scan lists only the others.
    assert!(!nodes.iter().any(|n| n["name"] == "kitchen-pi"), "{scanned}");
    // And the running node lists the Avahi service among its peers.
    wait_for("the node to list peer-one", Duration::from_secs(10), || {
        node.peer_names().contains(&"peer-one".into())
    });
}

#[test]
fn set_name_is_followed_and_disabled_beacon_stays_quiet() {
    let Some(lab) = Lab::new("c", 3) else { return };
    let a = start(&lab, 1, &with("before", &[]));
    let quiet = start(&lab, 2, &with("quiet", &[("beacon.enabled", "false")]));
    assert_eq!(quiet.beacon()["state"], "off");
    let out = a.cli(&["beacon", "set-name", "after"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the new name to be announced", Duration::from_secs(10), || {
        a.beacon()["node"]["name"] == "after"
    });
    // A new address (DHCP renewing with another lease) is announced without a restart.
    let b = start(&lab, 3, &with("watcher", &[]));
    wait_for("b to see a", Duration::from_secs(10), || b.peer_names() == vec!["after".to_string()]);
    ok(Command::new("ip").args(["-n", &lab.ns(1), "addr", "add", "10.77.0.11/24", "dev", "eth0"]));
    // (While a's record is replaced by its new announcement, b may list no peer for a
    // moment: that is "not yet", not a failure.)
    wait_for("the new address to reach the peer", Duration::from_secs(20), || {
        b.beacon()["peers"][0]["addresses"].as_array().is_some_and(|a| a.contains(&"10.77.0.11".into()))
    });
    drop(b);
    let out = a.cli(&["beacon", "set-name", "Not A Label"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DNS label"));
    // The disabled node sends nothing, so a scan from its host finds only "after".
    let scan: Value = serde_json::from_str(&ok(lab.cmd(2, fazt_bin()).args([
        "beacon",
        "scan",
        "--json",
        "--timeout",
        "2.5",
    ])))
    .unwrap();
    let names: Vec<&str> =
        scan["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["after"]);
    drop(quiet);
}

/// Runs `f` on a thread that has entered the network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace fd only changes this thread's network
        // namespace; the thread ends with `f`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// A DNS message under construction (enough of RFC 1035 to forge mDNS responses).
struct Packet(Vec<u8>);

impl Packet {
    fn response(answers: u16) -> Packet {
        let mut p = vec![0, 0, 0x84, 0x00, 0, 0];
        p.extend(answers.to_be_bytes());
        p.extend([0, 0, 0, 0]);
        Packet(p)
    }
    fn name(&mut self, name: &str) -> &mut Self {
        for label in name.trim_end_matches('.').split('.') {
            self.0.push(label.len() as u8);
            self.0.extend(label.as_bytes());
        }
        self.0.push(0);
        self
    }
    fn rr(&mut self, name: &str, ty: u16, class: u16, rdata: &[u8]) -> &mut Self {
        self.name(name);
        self.0.extend(ty.to_be_bytes());
        self.0.extend(class.to_be_bytes());
        self.0.extend(120u32.to_be_bytes());
        self.0.extend((rdata.len() as u16).to_be_bytes());
        self.0.extend(rdata);
        self
    }
}

fn encoded_name(name: &str) -> Vec<u8> {
    let mut p = Packet(Vec::new());
    p.name(name);
    p.0
}

fn txt(entries: &[String]) -> Vec<u8> {
    entries.iter().flat_map(|e| std::iter::once(e.len() as u8).chain(e.bytes())).collect()
}

/// A complete fake `_fazt._tcp` service: PTR, SRV, TXT and A in one response.
fn fake_service(instance: &str, txt_entries: &[String]) -> Vec<u8> {
    let full = format!("{instance}._fazt._tcp.local");
    let host = format!("{instance}.local");
    let mut srv = vec![0, 0, 0, 0, 0x1f, 0x90];
    srv.extend(encoded_name(&host));
    let mut p = Packet::response(4);
    p.rr("_fazt._tcp.local", 12, 1, &encoded_name(&full))
        .rr(&full, 33, 0x8001, &srv)
        .rr(&full, 16, 0x8001, &txt(txt_entries))
        .rr(&host, 1, 0x8001, &[10, 77, 0, 3]);
    p.0
}

#[test]
fn hostile_mdns_packets_leave_the_node_serving_and_its_table_bounded() {
    let Some(lab) = Lab::new("d", 3) else { return };
    let node = start(&lab, 1, &with("target", &[("beacon.max_nodes", "10")]));
    let rss = |n: &LabNode| -> u64 {
        let out = run(lab
            .cmd(1, "curl")
            .args(["-s", "-H", &format!("Authorization: Bearer {}", n.token), "-H", "Host: admin.localhost"])
            .arg("http://127.0.0.1:8080/api/system/health"));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["memory_rss_bytes"].as_u64().unwrap()
    };
    let rss_before = rss(&node);
    ok(Command::new("ip").args(["-n", &lab.ns(3), "route", "add", "224.0.0.0/4", "dev", "eth0"]));
    let sent = in_netns(&lab.ns(3), || {
        // Responses must come from port 5353 (RFC 6762 section 6) to be considered.
        let sock = std::net::UdpSocket::bind("0.0.0.0:5353").unwrap();
        sock.set_multicast_ttl_v4(255).unwrap();
        let group = "224.0.0.251:5353";
        let mut sent = 0;
        let mut send = |bytes: &[u8]| {
            if sock.send_to(bytes, group).is_ok() {
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        // Malformed: empty, random, truncated (claims 5 answers), a name pointing at
        // itself, a pointer past the end, a label longer than the packet.
        send(&[]);
        send(&[0xff; 11]);
        send(&[0, 0, 0x84, 0, 0, 0, 0, 5, 0, 0, 0, 0, 3, b'a', b'b']);
        send(&[
            0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 1, 2, 3, 4,
        ]);
        send(&[
            0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0xff, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 1, 2, 3, 4,
        ]);
        send(&[0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 63, b'x', b'y']);
        // Oversized TXT: a 250-byte name, and 1200 bytes of entries.
        send(&fake_service("huge-name", &[format!("name={}", "n".repeat(245)), "id=huge".into()]));
        let many: Vec<String> = (0..100).map(|i| format!("k{i:03}=vvvvvvv")).collect();
        send(&fake_service(
            "many-keys",
            &[vec!["id=many".to_string(), format!("version={}", "9".repeat(200))], many].concat(),
        ));
        // A forged signature for someone else's id.
        send(&fake_service(
            "forged",
            &[
                "id=node_0123456789abcdef".into(),
                format!("pk={}", "A".repeat(43)),
                format!("sig={}", "B".repeat(86)),
            ],
        ));
        // A flood of well-formed fake nodes, far beyond beacon.max_nodes.
        for i in 0..300 {
            send(&fake_service(&format!("fake{i}"), &[format!("id=fake{i}"), format!("name=fake{i}")]));
        }
        sent
    });
    assert!(sent >= 300, "only {sent} packets sent");
    let status = node.beacon();
    let peers = status["peers"].as_array().unwrap().len();
    assert!(peers <= 10, "the table grew to {peers}");
    assert!(status["counters"]["ignored_full"].as_u64().unwrap() > 0, "{}", status["counters"]);
    assert!(status["counters"]["rejected"].as_u64().unwrap() >= 2, "{}", status["counters"]);
    assert!(!status["peers"].to_string().contains("forged"));
    let rss_after = rss(&node);
    eprintln!("beacon: RSS before the flood {rss_before} B, after {rss_after} B");
    assert!(rss_after < rss_before + 16 * 1024 * 1024, "RSS grew from {rss_before} to {rss_after}");

    // A real node that arrives during the flood gets in once the fakes, which answer
    // nothing, have expired.
    let real = start(&lab, 2, &with("real", &[]));
    let deadline = Instant::now() + Duration::from_secs(25);
    while !node.peer_names().contains(&"real".into()) {
        assert!(Instant::now() < deadline, "the real node was not listed: {}", node.beacon());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(real.peer_names().contains(&"target".into()));
}

#[test]
fn replayed_and_redirected_announcements_are_refused() {
    let Some(lab) = Lab::new("e", 3) else { return };
    let watcher = start(&lab, 1, &with("watcher", &[]));
    let mut victim = start(&lab, 2, &with("victim", &[]));
    // Host 3 records one of the victim's signed announcements off the link.
    ok(Command::new("ip").args(["-n", &lab.ns(3), "route", "add", "224.0.0.0/4", "dev", "eth0"]));
    let recorded = in_netns(&lab.ns(3), || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:5353").unwrap();
        sock.join_multicast_v4(&[224, 0, 0, 251].into(), &[10, 77, 0, 3].into()).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 9000];
        while Instant::now() < deadline {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let packet = &buf[..n];
                // A response (not a probe), with the TXT record.
                if from.ip() == std::net::IpAddr::from([10, 77, 0, 2])
                    && n > 12
                    && packet[2] & 0x80 != 0
                    && packet.windows(4).any(|w| w == b"seq=")
                {
                    return Some(packet.to_vec());
                }
            }
        }
        None
    })
    .expect("no announcement of the victim was heard");
    // The victim restarts: a newer boot, which the watcher hears.
    wait_for("the watcher to see the victim", Duration::from_secs(20), || {
        watcher.peer_names().contains(&"victim".into())
    });
    victim.stop();
    wait_for("the goodbye", Duration::from_secs(10), || !watcher.peer_names().contains(&"victim".into()));
    victim.spawn();
    wait_for("the victim back", Duration::from_secs(20), || watcher.peer_names().contains(&"victim".into()));
    let counter = |name: &str| watcher.beacon()["counters"][name].as_u64().unwrap();
    let replayed = counter("replayed");
    // The recording replayed as is, then with its address record (type A, class IN with
    // cache-flush, TTL 120) pointing at host 3 instead.
    let a_record = [0, 1, 0x80, 0x01, 0, 0, 0, 120, 0, 4, 10, 77, 0, 2];
    let at = recorded.windows(a_record.len()).position(|w| w == a_record);
    let at = at.expect("the recorded announcement has the victim's A record");
    let mut redirected = recorded.clone();
    redirected[at + a_record.len() - 1] = 3;
    // A socket made in host 3's namespace stays there.
    let sock = in_netns(&lab.ns(3), || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:5353").unwrap();
        sock.set_multicast_ttl_v4(255).unwrap();
        sock
    });
    sock.send_to(&recorded, "224.0.0.251:5353").unwrap();
    wait_for("the replay to be refused", Duration::from_secs(10), || counter("replayed") > replayed);
    // Sent again until heard as a change (mdns-sd reports changes of its cache, and the
    // victim's own announcements every 2 s change it back).
    let refused = counter("rejected") + counter("replayed");
    wait_for("the redirect to be refused", Duration::from_secs(20), || {
        sock.send_to(&redirected, "224.0.0.251:5353").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        counter("rejected") + counter("replayed") > refused
    });
    // (The victim itself hears its name announced with other data, and renames its
    // service instance as RFC 6762 section 9 says: any host on a link can force that.)
    let status = watcher.beacon();
    let peer = status["peers"].as_array().unwrap().iter().find(|p| p["name"] == "victim").cloned();
    let peer = peer.unwrap_or_else(|| panic!("the victim was dropped: {status}"));
    // Only the addresses the victim signed (its IPv4 and IPv6 link-local ones).
    let addresses = peer["addresses"].as_array().unwrap();
    assert!(addresses.contains(&"10.77.0.2".into()), "{peer}");
    assert!(!addresses.contains(&"10.77.0.3".into()), "{peer}");
    assert_eq!(peer["verified"], true);
}
