#!/usr/bin/env python3
"""Helpers for bench/static.sh (stdlib only).

Subcommands:
  free-port                      print a free TCP port on 127.0.0.1
  gen-site DIR FILES BYTES SEED  write a deterministic site of FILES files, BYTES in total
                                 (mixed text/HTML/JS/CSS and incompressible binary files)
  gen-apps DIR COUNT SEED        write COUNT small, distinct apps as DIR/app-NNN/
  gen-fixed FILE BYTES SEED      write one HTML file of exactly BYTES bytes
  wrk-parse FILE                 print "rps p50_ms p99_ms non2xx socket_errors requests"
  sample-rss PID SECONDS         sample VmRSS every 50 ms; print "max_rss_kb hwm_kb"
  hold PORT HOST PATH N SECONDS PID
                                 open N keep-alive connections, one request on each, hold
                                 them for SECONDS while sampling PID's VmRSS; print
                                 "opened ok_first ok_second max_rss_kb hwm_kb"
  startup RUNS PORT HOST PATH -- CMD...
                                 spawn CMD RUNS times; per run time the ready line, the
                                 first HTTP 200 on HOST PATH, and the SIGTERM-to-exit time;
                                 print medians as "ready_ms http_ms self_ms stop_ms" then
                                 one line per run
  median N...                    print the median of the numbers
"""

import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

READY_LINE = "fazt is ready"


# ---------------------------------------------------------------- generation

WORDS_SEED_SYLLABLES = [
    "ka", "ro", "mi", "ten", "sa", "lo", "vi", "dan", "qu", "ex", "por", "tal", "ne", "zu",
    "bri", "ost", "ul", "fen", "ga", "hy", "pe", "ri", "mon", "cal", "de", "sto", "an", "ir",
]


def _vocabulary(rng, size=3000):
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(WORDS_SEED_SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def _text_pool(rng, nbytes):
    """Pseudo-prose, compressible about like real text (roughly 3:1 with gzip)."""
    vocab = _vocabulary(rng)
    # Zipf-like weights: a few words are very common, as in real text.
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    out = []
    total = 0
    while total < nbytes:
        chunk = " ".join(rng.choices(vocab, weights=weights, k=20000))
        out.append(chunk)
        total += len(chunk) + 1
    return ("\n".join(out)).encode()[:nbytes]


TEXT_KINDS = [
    # (extension, folder, prefix, suffix)
    ("html", "pages", b"<!doctype html>\n<html><head><meta charset=utf-8><title>%s</title></head><body><p>\n",
     b"\n</p></body></html>\n"),
    ("js", "assets/js", b"// %s\n(function(){var text=`\n", b"\n`;console.log(text.length)})();\n"),
    ("css", "assets/css", b"/* %s */\n.c{content:\"\n", b"\"}\nbody{margin:0;font:16px/1.5 sans-serif}\n"),
    ("json", "data", b"{\"name\":\"%s\",\"text\":\"", b"\"}\n"),
    ("svg", "assets/icons", b"<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- %s --><desc>", b"</desc></svg>\n"),
    ("md", "docs", b"# %s\n\n", b"\n"),
]
BIN_KINDS = [("png", "assets/img"), ("jpg", "assets/photos"), ("woff2", "assets/fonts"),
             ("webp", "assets/img"), ("bin", "downloads")]


def _sizes(rng, count, total, sigma, minimum):
    raw = [rng.lognormvariate(0, sigma) for _ in range(count)]
    scale = (total - minimum * count) / sum(raw)
    sizes = [minimum + int(r * scale) for r in raw]
    sizes[-1] += total - sum(sizes)
    return sizes


def gen_site(root, files, total, seed):
    rng = random.Random(seed)
    # About 75 % of the files are text and hold 20 % of the bytes; the rest are
    # incompressible binaries (images, fonts, downloads), as on a typical site.
    n_text = files * 3 // 4
    n_bin = files - n_text
    text_total = total // 5
    bin_total = total - text_total
    text_sizes = _sizes(rng, n_text, text_total, 1.0, 200)
    bin_sizes = _sizes(rng, n_bin, bin_total, 1.0, 1024)
    pool = _text_pool(rng, max(text_sizes) + 1024 * 1024)
    written = 0
    paths = []
    for i, size in enumerate(text_sizes):
        ext, folder, pre, post = TEXT_KINDS[i % len(TEXT_KINDS)]
        if i == 0:
            rel = "index.html"
            ext, folder, pre, post = TEXT_KINDS[0]
        else:
            rel = f"{folder}/s{i % 17:02d}/f{i:04d}.{ext}"
        name = rel.encode()
        pre = pre.replace(b"%s", name)
        body_len = max(0, size - len(pre) - len(post))
        off = rng.randrange(0, len(pool) - body_len)
        data = pre + pool[off:off + body_len] + post
        paths.append((rel, data))
    for j, size in enumerate(bin_sizes):
        ext, folder = BIN_KINDS[j % len(BIN_KINDS)]
        rel = f"{folder}/b{j % 13:02d}/f{j:04d}.{ext}"
        paths.append((rel, rng.randbytes(size)))
    for rel, data in paths:
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        written += len(data)
    print(f"{len(paths)} {written}")


def gen_apps(root, count, seed):
    rng = random.Random(seed)
    for i in range(count):
        d = os.path.join(root, f"app-{i:03d}")
        os.makedirs(d, exist_ok=True)
        tag = "%016x" % rng.getrandbits(64)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(f"<!doctype html><html><head><title>app {i}</title>"
                    f"<link rel=stylesheet href=style.css></head><body><h1>app {i}</h1>"
                    f"<p>{tag}</p><script src=app.js></script></body></html>\n")
        with open(os.path.join(d, "style.css"), "w") as f:
            f.write(f"/* app {i} {tag} */ body{{margin:0;color:#{i:03d}}} h1{{font-size:2em}}\n")
        with open(os.path.join(d, "app.js"), "w") as f:
            f.write(f"// app {i} {tag}\nconsole.log('hello from app {i}');\n")
    print(count)


def gen_fixed(path, nbytes, seed):
    rng = random.Random(seed)
    pre = b"<!doctype html>\n<html><head><meta charset=utf-8><title>bench</title></head><body><p>\n"
    post = b"\n</p></body></html>\n"
    body = _text_pool(rng, nbytes)[: nbytes - len(pre) - len(post)]
    data = pre + body + post
    assert len(data) == nbytes, (len(data), nbytes)
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- measuring

def _to_ms(value, unit):
    v = float(value)
    return {"us": v / 1000.0, "ms": v, "s": v * 1000.0, "m": v * 60000.0}[unit]


def wrk_parse(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    reqs = re.search(r"(\d+) requests in", text)
    print(" ".join([
        f"{float(rps.group(1)):.0f}" if rps else "NA",
        f"{_to_ms(*p50.groups()):.3f}" if p50 else "NA",
        f"{_to_ms(*p99.groups()):.3f}" if p99 else "NA",
        non2xx.group(1) if non2xx else "0",
        str(sum(int(x) for x in errs.groups())) if errs else "0",
        reqs.group(1) if reqs else "NA",
    ]))


def _status_kb(pid):
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def sample_rss(pid, seconds):
    deadline = time.monotonic() + seconds
    peak = 0
    while time.monotonic() < deadline:
        rss, _ = _status_kb(pid)
        peak = max(peak, rss)
        time.sleep(0.05)
    _, hwm = _status_kb(pid)
    print(f"{peak} {hwm}")


def _request(host, path):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fazt-bench\r\n\r\n".encode()


def _read_response(sock, buf=b""):
    """Reads one HTTP/1.1 response with a Content-Length body; returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before headers")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in body")
        rest += chunk
    return status, rest[length:]


def _request_round(socks, req):
    """Sends `req` on every socket, then reads every answer; returns how many were 200."""
    for s in socks:
        try:
            s.sendall(req)
        except OSError:
            pass
    ok = 0
    for s in socks:
        try:
            status, _ = _read_response(s)
            ok += status == 200
        except (OSError, ValueError, ConnectionError):
            pass
    return ok


def hold(port, host, path, n, seconds, pid):
    socks = []
    ok_first = 0
    req = _request(host, path)
    deadline = time.monotonic() + 60
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        except OSError as e:
            print(f"hold: connect failed after {len(socks)}: {e}", file=sys.stderr)
            break
    # Send on all first, then read: the node sees every connection busy at once.
    ok_first += _request_round(socks, req)
    # Hold the idle keep-alive connections open and watch the node's memory.
    peak = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, _status_kb(pid)[0])
        time.sleep(0.05)
    # Are they still usable? A second request on each.
    ok_second = _request_round(socks, req)
    peak = max(peak, _status_kb(pid)[0])
    _, hwm = _status_kb(pid)
    for s in socks:
        s.close()
    print(f"{len(socks)} {ok_first} {ok_second} {peak} {hwm}")


def _http_ok(port, host, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(_request(host, path))
            status, _ = _read_response(s)
            return status == 200
    except (OSError, ValueError, ConnectionError):
        return False


def startup(runs, port, host, path, cmd):
    results = []
    for run in range(runs):
        ready_at = [None]
        self_ms = [None]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

        def reader():
            for line in proc.stdout:
                if READY_LINE in line and ready_at[0] is None:
                    ready_at[0] = time.monotonic()
                    m = re.search(r"started in (\d+) ms", line)
                    if m:
                        self_ms[0] = int(m.group(1))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        http_at = None
        deadline = t0 + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if _http_ok(port, host, path):
                http_at = time.monotonic()
                break
            time.sleep(0.002)
        # The ready line is printed before the first request can be answered.
        while ready_at[0] is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.002)
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
            stop_ms = (time.monotonic() - t_stop) * 1000
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stop_ms = float("nan")
        th.join(timeout=2)
        if ready_at[0] is None or http_at is None:
            print(f"startup: run {run} failed (ready={ready_at[0]}, http={http_at}, rc={proc.returncode})",
                  file=sys.stderr)
            sys.exit(1)
        results.append(((ready_at[0] - t0) * 1000, (http_at - t0) * 1000, self_ms[0] or 0, stop_ms))
        time.sleep(0.2)
    med = [statistics.median(r[i] for r in results) for i in range(4)]
    print(" ".join(f"{m:.1f}" for m in med))
    for r in results:
        print(" ".join(f"{x:.1f}" for x in r))


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "free-port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
    elif cmd == "gen-site":
        gen_site(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "gen-apps":
        gen_apps(args[0], int(args[1]), int(args[2]))
    elif cmd == "gen-fixed":
        gen_fixed(args[0], int(args[1]), int(args[2]))
    elif cmd == "wrk-parse":
        wrk_parse(args[0])
    elif cmd == "sample-rss":
        sample_rss(int(args[0]), float(args[1]))
    elif cmd == "hold":
        hold(int(args[0]), args[1], args[2], int(args[3]), float(args[4]), int(args[5]))
    elif cmd == "startup":
        sep = args.index("--")
        startup(int(args[0]), int(args[1]), args[2], args[3], args[sep + 1:])
    elif cmd == "median":
        print(statistics.median(float(x) for x in args))
    else:
        print(f"unknown subcommand {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
