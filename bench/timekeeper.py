#!/usr/bin/env python3
"""Measures the timekeeper on a private virtual LAN (network namespaces on a bridge;
10.77.0.0/24 exists only inside them), side by side with chrony on the same LAN.

Every namespace shares the host clock, which is the true reference: a fazt node is started
with its board clock shifted (--clock-offset-ms; the host clock is never touched), and
`ntpdig` from another namespace reads the node's served time, whose offset from the host
clock is the node's error. chrony is measured the same way: a chrony server, and chronyd -Q
as a client reporting how wrong it finds the (true) host clock.

Scenarios: chrony -> chrony; fazt following chrony (NTP); fazt 3 h off among 1, 3 and 10
honest fazt peers; 3 honest peers plus one peer lying by an hour. For each: time from node
start until its error is under 5 ms, and the median absolute error of 10 ntpdig readings
after that. Then, on the 3-peer LAN left idle for IDLE_SECS: packets per hour per node and
idle CPU.

A measurement, not a test. Needs root. Everything is removed on exit, also on failure.
Environment: FAZT_BIN (default target/release/fazt), IDLE_SECS (default 300).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("FAZT_BIN", "target/release/fazt")
IDLE_SECS = int(os.environ.get("IDLE_SECS", "300"))
HOUR_MS = 3_600_000
BRIDGE = "fztk"
FAST = {"beacon.announce_interval_secs": "5", "beacon.expiry_secs": "60"}


def run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


class Lab:
    """`hosts` namespaces fztk1.. on one bridge, host i at 10.77.0.i."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="fazt-tk-")
        self.down()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "link", "set", BRIDGE, "up")
        for i in range(1, hosts + 1):
            ns = self.ns(i)
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", f"{BRIDGE}v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", f"{BRIDGE}v{i}", "master", BRIDGE, "up")
            run("ip", "-n", ns, "addr", "add", f"10.77.0.{i}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    @staticmethod
    def ns(i):
        return f"{BRIDGE}{i}"

    def down(self):
        for i in range(1, 20):
            # A namespace lives on while a process is in it (say, left by a killed run).
            pids = run("ip", "netns", "pids", self.ns(i), check=False).stdout.split()
            for pid in pids:
                run("kill", "-9", pid, check=False)
            run("ip", "netns", "del", self.ns(i), check=False)
            run("ip", "link", "del", f"{BRIDGE}v{i}", check=False)
        run("ip", "link", "del", BRIDGE, check=False)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.down()
        shutil.rmtree(self.dir, ignore_errors=True)

    def spawn(self, i, *cmd):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(i), *cmd],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        return p

    def node(self, i, offset_ms=0, settings=None):
        """Starts a fazt node on host i; returns (process, token)."""
        data = os.path.join(self.dir, f"n{i}", "data.db")
        os.makedirs(os.path.dirname(data))
        out = run(BIN, "server", "init", "--port", "8080", "--password", "bench-password", "--data", data).stdout
        token = next(l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("API token: "))
        for k, v in {**FAST, "beacon.name": f"host{i}", **(settings or {})}.items():
            run(BIN, "config", "set", k, v, "--data", data)
        p = self.spawn(i, BIN, "server", "start", "--data", data, "--config", data + ".client",
                       f"--clock-offset-ms={offset_ms}")
        for line in p.stdout:
            if line.startswith("fazt is ready"):
                break
        return p, token

    def status(self, i, token):
        out = run("ip", "netns", "exec", self.ns(i), BIN, "time", "status", "--json",
                  "--server", "http://admin.localhost:8080", "--token", token).stdout
        return json.loads(out)

    def ntpdig(self, from_host, server):
        """The served time's error in ms, as ntpdig on `from_host` sees it (None: no answer)."""
        r = run("ip", "netns", "exec", self.ns(from_host), "ntpdig", "-j", "-t", "2", server, check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["offset"] * 1000.0


def converge(lab, reader, server, started, limit_s=120):
    """Seconds from `started` until the served error is under 5 ms, and the median absolute
    error (ms) of 10 readings after a few more seconds."""
    took = None
    while time.monotonic() - started < limit_s:
        err = lab.ntpdig(reader, server)
        if err is not None and abs(err) < 5.0:
            took = time.monotonic() - started
            break
        time.sleep(0.2)
    if took is None:
        return None, lab.ntpdig(reader, server)
    time.sleep(5)
    errors = [e for e in (lab.ntpdig(reader, server) for _ in range(10)) if e is not None]
    return took, statistics.median(abs(e) for e in errors)


def chrony_conf(lab, name, lines):
    path = os.path.join(lab.dir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines + [f"pidfile {lab.dir}/{name}.pid", f"driftfile {lab.dir}/{name}.drift",
                                  "cmdport 0"]) + "\n")
    return path


def start_chrony_server(lab):
    """chrony as the LAN's time server on host 1 (local stratum 8, hands off the clock);
    returns once host 3 gets answers from it."""
    conf = chrony_conf(lab, "server.conf", ["local stratum 8", "allow 10.77.0.0/24", "port 123"])
    lab.spawn(1, "chronyd", "-d", "-x", "-f", conf)
    while lab.ntpdig(3, "10.77.0.1") is None:
        time.sleep(0.2)


def scenario_chrony():
    lab = Lab(3)
    try:
        start_chrony_server(lab)
        # chrony as a client: how wrong does it find the (true) host clock?
        errs = []
        for _ in range(5):
            client = chrony_conf(lab, "client.conf", ["server 10.77.0.1 iburst minpoll -4 maxpoll -4"])
            out = run("ip", "netns", "exec", lab.ns(2), "chronyd", "-Q", "-f", client, "-t", "20", check=False)
            for line in (out.stdout + out.stderr).splitlines():
                if "System clock wrong by" in line:
                    errs.append(abs(float(line.split("wrong by")[1].split()[0])) * 1000.0)
        chrony_err = statistics.median(errs) if errs else None
        # fazt following the same chrony, 2 h off at start.
        started = time.monotonic()
        lab.node(3, -2 * HOUR_MS, {"time.ntp_servers": "10.77.0.1", "beacon.enabled": "false"})
        took, fazt_err = converge(lab, 2, "10.77.0.3", started)
        return chrony_err, took, fazt_err
    finally:
        lab.close()


def scenario_peer_with_reference():
    """One fazt peer that follows a chrony server (the LAN's only node with a reference);
    the node under test, 3 h off, uses peers only."""
    lab = Lab(3)
    try:
        start_chrony_server(lab)
        lab.node(2, 0, {"time.ntp_servers": "10.77.0.1"})
        time.sleep(8)
        started = time.monotonic()
        _, token = lab.node(3, 3 * HOUR_MS)
        took, err = converge(lab, 1, "10.77.0.3", started)
        return took, err, lab.status(3, token)["stratum"]
    finally:
        lab.close()


def scenario_peers(peers, liar=False):
    hosts = peers + (1 if liar else 0) + 1
    lab = Lab(hosts)
    try:
        tokens = {}
        for i in range(1, peers + 1):
            _, tokens[i] = lab.node(i)
        if liar:
            lab.node(peers + 1, HOUR_MS, {"time.enabled": "false"})
        # Give the peers a moment to find each other, as on a LAN that has been up.
        time.sleep(8)
        started = time.monotonic()
        me = hosts
        _, tokens[me] = lab.node(me, 3 * HOUR_MS)
        took, err = converge(lab, 1, f"10.77.0.{me}", started)
        status = lab.status(me, tokens[me])
        counted = sum(1 for s in status["sources"] if s["included"])
        return took, err, counted, len(status["sources"]), lab, tokens
    except BaseException:
        lab.close()
        raise


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    if os.geteuid() != 0:
        sys.exit("bench/timekeeper.py needs root (network namespaces)")
    for tool in ("chronyd", "ntpdig", "ip"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: run bash tests/setup")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no {BIN}: build it with 'nice -n 19 cargo build --release -p fazt'")

    print("| scenario | converged (< 5 ms) after | error (median of 10, ms) |")
    print("| --- | --- | --- |")
    chrony_err, took, fazt_err = scenario_chrony()
    print(f"| chrony client of a chrony server (chronyd -Q, 5 runs) | - | {chrony_err:.3f} |")
    print(f"| fazt 2 h off, following that chrony (NTP) | {took:.1f} s | {fazt_err:.3f} |")
    took, err, stratum = scenario_peer_with_reference()
    print(f"| fazt 3 h off, 1 peer that follows chrony (the LAN's only reference) | {took:.1f} s | {err:.3f} (stratum {stratum}) |", flush=True)
    idle_line = None
    for peers, liar in ((1, False), (3, False), (10, False), (3, True)):
        took, err, counted, total, lab, tokens = scenario_peers(peers, liar)
        try:
            name = f"fazt 3 h off, {peers} honest peer{'s' if peers > 1 else ''}" + (" + 1 liar (1 h)" if liar else "")
            if peers == 1:
                name += ", no reference on the LAN"
            if took is None:
                print(f"| {name} | no (error {err:.0f} ms: {counted} of {total} sources counted) | - |", flush=True)
            else:
                print(f"| {name} | {took:.1f} s | {err:.3f} ({counted} of {total} sources counted) |", flush=True)
            if peers == 3 and not liar:
                idle_line = idle_costs(lab, tokens)
        finally:
            lab.close()
    print()
    print(idle_line)


def idle_costs(lab, tokens):
    """Idle costs of one node on a LAN of three (default 64 s polls)."""
    node = 1
    pid = int(run("ip", "netns", "pids", lab.ns(node)).stdout.split()[0])
    before = lab.status(node, tokens[node])
    ticks = cpu_ticks(pid)
    time.sleep(IDLE_SECS)
    after = lab.status(node, tokens[node])
    used = cpu_ticks(pid) - ticks
    sent = (after["client"]["requests"] - before["client"]["requests"]) + (
        after["server"]["answered"] - before["server"]["answered"])
    per_hour = sent * 3600 / IDLE_SECS
    hz = os.sysconf("SC_CLK_TCK")
    return (f"Idle node on the 3-peer LAN over {IDLE_SECS} s: {sent} NTP packets sent "
            f"({per_hour:.0f} per hour: requests + answers), CPU {used} ticks "
            f"({100.0 * used / hz / IDLE_SECS:.3f} % of one core, beacon included)")


if __name__ == "__main__":
    main()
