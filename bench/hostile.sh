#!/usr/bin/env bash
# Hostile-client benchmark: a real client's latency, and the server's memory, while
# thousands of hostile connections of one kind are held open; fazt and nginx side by
# side, attacked the same way, in one run. See bench/README.md ("hostile").
#
#   bash bench/hostile.sh              # every kind (about 8 minutes)
#   QUICK=1 bash bench/hostile.sh      # fewer connections and shorter attacks
#
# Environment (all optional):
#   FAZT_BIN      use this fazt binary (default: target/release/fazt, built if missing)
#   KINDS         attacks to run (default: silent slow-headers h2-idle slow-body keep-alive)
#   COUNT         hostile connections per attack (default 4096; QUICK: 1024)
#   SOURCES       loopback addresses they come from, 127.0.2.1... (default 32)
#   ATTACK_SECS   how long each attack lasts (default 45; QUICK: 20)
#   RAMP_SECS     wait after the attack starts before the client measures (default 10; QUICK: 5)
#   REQUESTS      the real client's requests per measurement (default 200)
#   TIMEOUT       seconds the real client gives one request (default 5; a failure counts as this)
#   RESULTS_DIR   where the Markdown report is written (default bench/results)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
LIB="$BENCH_DIR/benchlib.py"
HOSTILE="$BENCH_DIR/hostile.py"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  COUNT="${COUNT:-1024}"; ATTACK_SECS="${ATTACK_SECS:-20}"; RAMP_SECS="${RAMP_SECS:-5}"
else
  COUNT="${COUNT:-4096}"; ATTACK_SECS="${ATTACK_SECS:-45}"; RAMP_SECS="${RAMP_SECS:-10}"
fi
KINDS="${KINDS:-silent slow-headers h2-idle slow-body keep-alive}"
SOURCES="${SOURCES:-32}"
REQUESTS="${REQUESTS:-200}"
TIMEOUT="${TIMEOUT:-5}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
HOST_APP="bench.localhost"

log() { printf '[hostile %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

TMP=""
FAZT_PID=""
NGINX_PID=""
cleanup() {
  local status=$?
  set +e
  jobs -p | xargs -r kill 2>/dev/null
  [ -n "$FAZT_PID" ] && kill -TERM "$FAZT_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null
  sleep 0.5
  [ -n "$FAZT_PID" ] && kill -KILL "$FAZT_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill -KILL "$NGINX_PID" 2>/dev/null
  wait 2>/dev/null
  [ -n "$TMP" ] && rm -rf "$TMP"
  [ "$status" = 0 ] || log "failed (exit $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$BENCH_DIR/setup"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
# Thousands of connections on each side of loopback.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((COUNT * 2 + 256)) ] || log "warning: ulimit -n is $(ulimit -n), low for $COUNT connections"

if [ -z "${FAZT_BIN:-}" ]; then
  FAZT_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/fazt"
  if [ ! -x "$FAZT_BIN" ]; then
    log "building $FAZT_BIN (nice -n 19 cargo build --release -p fazt)"
    (cd "$REPO" && nice -n 19 cargo build --release -p fazt >&2)
  fi
fi
[ -x "$FAZT_BIN" ] || die "no fazt binary at $FAZT_BIN"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fazt-hostile.XXXXXX")"
chmod 755 "$TMP"
mkdir -p "$TMP/node" "$TMP/site/api" "$TMP/nginx/logs" "$TMP/nginx/tmp" "$TMP/www"
FAZT_PORT="$(python3 "$LIB" free-port)"
NGINX_PORT="$(python3 "$LIB" free-port)"
while [ "$NGINX_PORT" = "$FAZT_PORT" ]; do NGINX_PORT="$(python3 "$LIB" free-port)"; done
NGINX_H2_PORT="$(python3 "$LIB" free-port)"
while [ "$NGINX_H2_PORT" = "$FAZT_PORT" ] || [ "$NGINX_H2_PORT" = "$NGINX_PORT" ]; do
  NGINX_H2_PORT="$(python3 "$LIB" free-port)"
done

# The same page on both, and an endpoint the slow bodies go to (fazt: a handler that
# reads its body; nginx: a location that answers and discards it).
printf '<!doctype html><title>bench</title><h1>Hello from the bench</h1>\n' | tee "$TMP/site/index.html" >"$TMP/www/index.html"
printf 'module.exports = async (request) => ({ json: { bytes: request.body.length } });\n' >"$TMP/site/api/main.js"

# The first start makes the data file and writes the CLI's config (its token) to --config.
"$FAZT_BIN" server start --data "$TMP/node/data.db" --listen 127.0.0.1 --port "$FAZT_PORT" \
  --config "$TMP/node/client.json" >"$TMP/fazt.log" 2>&1 &
FAZT_PID=$!
for _ in $(seq 1 300); do grep -q 'fazt is ready' "$TMP/fazt.log" && break; sleep 0.1; done
grep -q 'fazt is ready' "$TMP/fazt.log" || { cat "$TMP/fazt.log" >&2; die "fazt did not start"; }
# A port given on the command line is not saved into the CLI config: save it here from
# the token the first start prints.
TOKEN="$(sed -n 's/.*API token for the CLI: \(fzt_[0-9a-f]*\).*/\1/p' "$TMP/fazt.log" | head -n 1)"
[ -n "$TOKEN" ] || die "fazt did not print an API token on first start"
"$FAZT_BIN" client set-auth-token "$TOKEN" --server "http://admin.localhost:$FAZT_PORT" \
  --config "$TMP/node/client.json" >/dev/null
FAZT_CONFIG="$TMP/node/client.json" "$FAZT_BIN" deploy "$TMP/site" --name bench >/dev/null

# nginx as Debian ships it, but for worker_connections (Debian's 768 would turn most of
# the attack away at the door, which is not what a server tuned for this load does).
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log crit;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        # nginx 1.22 speaks h2c (prior knowledge) only on a port of its own; the h2
        # attack goes there, everything else to the HTTP/1.1 port.
        listen 127.0.0.1:$NGINX_PORT;
        listen 127.0.0.1:$NGINX_H2_PORT http2;
        root $TMP/www;
        location /api/ { return 200 "ok\n"; }
    }
}
EOF
"$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$NGINX_PORT/" && break
  sleep 0.1
done

nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }

# measure PORT ATTACK_PORT PIDS KIND -> one JSON line: the client's latency, the attack's
# counts, the peak resident memory of PIDS
measure() {
  local port="$1" attack_port="$2" pids="$3" kind="$4" attack_out="$TMP/attack.json" peak=0 rss
  if [ "$kind" != none ]; then
    python3 "$HOSTILE" attack "$attack_port" "$kind" "$COUNT" "$SOURCES" "$ATTACK_SECS" "$HOST_APP" >"$attack_out" &
    local attacker=$!
    sleep "$RAMP_SECS"
  fi
  python3 "$HOSTILE" probe "$port" "$HOST_APP" / "$REQUESTS" "$TIMEOUT" >"$TMP/probe.json" &
  local prober=$!
  while kill -0 "$prober" 2>/dev/null; do
    # shellcheck disable=SC2086
    rss="$(python3 "$HOSTILE" rss $pids)"
    [ "$rss" -gt "$peak" ] && peak="$rss"
    sleep 0.5
  done
  wait "$prober"
  if [ "$kind" != none ]; then
    wait "$attacker"
  else
    echo '{}' >"$attack_out"
  fi
  python3 - "$TMP/probe.json" "$attack_out" "$peak" <<'EOF'
import json, sys
probe = json.load(open(sys.argv[1]))
attack = json.load(open(sys.argv[2]))
print(json.dumps({"probe": probe, "attack": attack, "peak_rss_kb": int(sys.argv[3])}))
EOF
}

row() { # row KIND FAZT_JSON NGINX_JSON
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
kind, f, n = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def cell(r):
    p = r["probe"]
    fails = f", {p['failures']} failed" if p["failures"] else ""
    return f"{p['p50_ms']} / {p['p99_ms']} ms{fails} | {r['peak_rss_kb'] / 1024:.1f} MB"
def held(r):
    a = r["attack"]
    return f"{a.get('live_at_end', '-')} / {a.get('closed_by_server', '-')}"
print(f"| {kind} | {cell(f)} | {held(f)} | {cell(n)} | {held(n)} |")
EOF
}

mkdir -p "$RESULTS_DIR"
REPORT="$RESULTS_DIR/hostile-$(date +%Y%m%d-%H%M%S).md"
{
  echo "# Hostile clients: fazt and nginx under the same attack"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$COUNT hostile connections per kind from $SOURCES loopback addresses, held ${ATTACK_SECS} s;"
  echo "the real client makes $REQUESTS requests, each on a new connection, from 127.0.0.1 after ${RAMP_SECS} s."
  echo
  echo "| attack | fazt p50 / p99 | fazt peak RSS | fazt: held at end / closed by it | nginx p50 / p99 | nginx peak RSS | nginx: held at end / closed by it |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
} >"$REPORT"

for kind in none $KINDS; do
  log "attack: $kind"
  f="$(measure "$FAZT_PORT" "$FAZT_PORT" "$FAZT_PID" "$kind")"
  nginx_attack_port="$NGINX_PORT"
  [ "$kind" = h2-idle ] && nginx_attack_port="$NGINX_H2_PORT"
  n="$(measure "$NGINX_PORT" "$nginx_attack_port" "$(nginx_pids)" "$kind")"
  row "$kind" "$f" "$n" | tee -a "$REPORT" >&2
  # Let both close what the attack left before the next kind.
  sleep 3
done
log "report: $REPORT"
cat "$REPORT"
