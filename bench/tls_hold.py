"""Holds N idle TLS keep-alive connections to a server and reports the server's memory.

    python3 tls_hold.py PORT HOST CAFILE N SECONDS PID [PID...]

Opens N TLS connections to 127.0.0.1:PORT (SNI and Host: HOST, verified against CAFILE;
CAFILE "-" opens plain TCP connections instead, for the same measure without TLS),
sends one request on each (so every connection has finished its handshake and served a
request), then holds them idle for SECONDS and prints
"<connections> <ok> <rss_kb_before> <rss_kb_idle>", where RSS is the sum over PIDs.
"""
import socket
import ssl
import sys
import time


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def main(argv):
    port, host, cafile, n, seconds = int(argv[0]), argv[1], argv[2], int(argv[3]), float(argv[4])
    pids = []
    for p in argv[5:]:
        pids.append(int(p))
        pids.extend(children(int(p)))
    if cafile != "-":
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["http/1.1"])
    time.sleep(1)
    before = rss_kb(pids)
    socks, ok = [], 0
    req = f"GET /small.html HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    deadline = time.monotonic() + 120
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            s = raw if cafile == "-" else ctx.wrap_socket(raw, server_hostname=host)
            s.sendall(req)
            data = s.recv(65536)
            ok += data.startswith(b"HTTP/1.1 200")
            socks.append(s)
        except OSError as e:
            print(f"tls_hold: connection {len(socks)} failed: {e}", file=sys.stderr)
            break
    time.sleep(seconds)
    idle = rss_kb(pids)
    for s in socks:
        s.close()
    print(f"{len(socks)} {ok} {before} {idle}")


if __name__ == "__main__":
    main(sys.argv[1:])
