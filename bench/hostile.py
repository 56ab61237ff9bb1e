#!/usr/bin/env python3
"""Hostile clients for bench/hostile.sh, and the real client whose latency they hurt.

  hostile.py attack PORT KIND COUNT SOURCES SECONDS HOST
      Holds COUNT connections of one KIND to 127.0.0.1:PORT, spread over SOURCES
      loopback addresses (127.0.2.1, 127.0.2.2, ...), for SECONDS; a connection the
      server closes is opened again (at most 4 x COUNT opens in all). Prints one JSON
      line: connections opened, closed by the server, refused, and live at the end.

  hostile.py probe PORT HOST PATH REQUESTS TIMEOUT
      A real client from 127.0.0.1: REQUESTS GETs one after the other, each on a new
      connection, each given TIMEOUT seconds. Prints one JSON line: p50, p99 and max in
      ms (a failed or timed-out request counts as TIMEOUT), and the failures.

  hostile.py rss PID...
      The resident memory of these processes together, in KiB.

Kinds:
  silent        connects and sends nothing
  slow-headers  a request line, then one header line every 10 s (slowloris)
  h2-idle       the HTTP/2 preface and an empty SETTINGS frame, then nothing
  slow-body     a POST announcing 1 MiB, sent 16 KiB a second, to HOST's /api/echo
  keep-alive    one GET, its answer read, then nothing (an idle keep-alive connection)

Only loopback addresses are used. Loops are bounded in count and time.
"""

import json
import selectors
import socket
import sys
import time

from tls_hold import rss_kb  # the same VmRSS sum tls.sh reports

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class Conn:
    def __init__(self, sock, kind, host):
        self.sock = sock
        self.kind = kind
        self.host = host
        self.connected = False
        self.next_send = 0.0
        self.sent_body = 0
        self.opened = time.monotonic()

    def first_bytes(self):
        if self.kind == "slow-headers":
            return f"GET / HTTP/1.1\r\nHost: {self.host}\r\n".encode()
        if self.kind == "h2-idle":
            return H2_PREFACE
        if self.kind == "slow-body":
            return (f"POST /api/echo HTTP/1.1\r\nHost: {self.host}\r\n"
                    "Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n").encode()
        if self.kind == "keep-alive":
            return f"GET / HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
        return b""

    def tick(self, now):
        """What to send now, if anything."""
        if now < self.next_send:
            return b""
        if self.kind == "slow-headers":
            self.next_send = now + 10
            return b"X-Slow: 1\r\n"
        if self.kind == "slow-body" and self.sent_body < 1048576:
            self.next_send = now + 1
            chunk = min(16384, 1048576 - self.sent_body)
            self.sent_body += chunk
            return b"b" * chunk
        self.next_send = now + 3600
        return b""


def attack(port, kind, count, sources, seconds, host):
    sel = selectors.DefaultSelector()
    conns = {}
    stats = {"kind": kind, "opened": 0, "closed_by_server": 0, "refused": 0}
    max_opens = 4 * count
    deadline = time.monotonic() + seconds
    next_source = 0

    def open_one():
        nonlocal next_source
        if stats["opened"] >= max_opens:
            return
        src = f"127.0.2.{1 + next_source % sources}"
        next_source += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((src, 0))
            s.connect_ex(("127.0.0.1", port))
        except OSError:
            stats["refused"] += 1
            s.close()
            return
        stats["opened"] += 1
        c = Conn(s, kind, host)
        conns[s.fileno()] = c
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ, c)

    def drop(c, by_server):
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        conns.pop(c.sock.fileno(), None)
        c.sock.close()
        if by_server:
            stats["closed_by_server"] += 1

    # Ramp up in batches, so the server's accept queue is not the test.
    while len(conns) < count and time.monotonic() < deadline and stats["opened"] < max_opens:
        for _ in range(min(256, count - len(conns))):
            open_one()
        service(sel, conns, drop, 0.01)
    while time.monotonic() < deadline:
        service(sel, conns, drop, 0.2)
        while len(conns) < count and stats["opened"] < max_opens:
            open_one()
    stats["live_at_end"] = len(conns)
    for c in list(conns.values()):
        drop(c, False)
    print(json.dumps(stats), flush=True)


def service(sel, conns, drop, timeout):
    now = time.monotonic()
    for key, events in sel.select(timeout):
        c = key.data
        if events & selectors.EVENT_WRITE and not c.connected:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                drop(c, True)
                continue
            c.connected = True
            sel.modify(c.sock, selectors.EVENT_READ, c)
            first = c.first_bytes()
            if first:
                try:
                    c.sock.send(first)
                except OSError:
                    drop(c, True)
                    continue
            c.next_send = now + (10 if c.kind == "slow-headers" else 1)
        if events & selectors.EVENT_READ and c.connected:
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                drop(c, True)
                continue
            if not data:
                drop(c, True)
    for c in list(conns.values()):
        if not c.connected:
            continue
        out = c.tick(now)
        if out:
            try:
                c.sock.send(out)
            except BlockingIOError:
                pass
            except OSError:
                drop(c, True)


def probe(port, host, path, requests, timeout):
    times = []
    failures = 0
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    for _ in range(requests):
        start = time.monotonic()
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                s.settimeout(max(0.001, timeout - (time.monotonic() - start)))
                s.sendall(request)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                ok = data.startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        elapsed = time.monotonic() - start
        if not ok:
            failures += 1
            elapsed = timeout
        times.append(elapsed * 1000)
    times.sort()

    def pct(p):
        return round(times[min(len(times) - 1, int(len(times) * p))], 2)

    print(json.dumps({"p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(times[-1], 2),
                      "failures": failures, "requests": requests}), flush=True)


def rss(pids):
    print(rss_kb(pids))


def main(argv):
    if len(argv) >= 7 and argv[0] == "attack":
        attack(int(argv[1]), argv[2], int(argv[3]), int(argv[4]), float(argv[5]), argv[6])
    elif len(argv) == 6 and argv[0] == "probe":
        probe(int(argv[1]), argv[2], argv[3], int(argv[4]), float(argv[5]))
    elif len(argv) >= 2 and argv[0] == "rss":
        rss(argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
