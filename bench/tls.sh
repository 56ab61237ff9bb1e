#!/usr/bin/env bash
# TLS benchmark: fazt and nginx (Debian) terminating TLS for the same 1 KB file on
# loopback, with the same ECDSA P-256 certificate:
#   - new TLS handshakes per second (wrk, a new connection per request: full handshakes)
#   - keep-alive HTTPS requests per second (wrk)
#   - memory per idle TLS connection (HOLD connections that did one request each)
#
#   bash bench/tls.sh               # full run
#   QUICK=1 bash bench/tls.sh       # short runs, for checking the script
#   MEMORY_ONLY=1 bash bench/tls.sh # only the idle-connection memory (TLS and plain HTTP)
#
# Environment (optional): FAZT_BIN, CARGO_TARGET_DIR, DURATION (10s; QUICK 3s),
# CONNECTIONS (64), THREADS (2), HOLD (1000 idle connections; QUICK 200).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
LIB="$BENCH_DIR/benchlib.py"
QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then DURATION="${DURATION:-3s}"; HOLD="${HOLD:-200}"; else DURATION="${DURATION:-10s}"; HOLD="${HOLD:-1000}"; fi
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
HOST_APP="bench.localhost"

log() { printf '[tls-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

TMP="" FAZT_PID="" NGINX_PID=""
cleanup() {
  local status=$?
  set +e
  [ -n "$FAZT_PID" ] && kill -TERM "$FAZT_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null
  wait 2>/dev/null
  [ -n "$TMP" ] && [ "${KEEP_TMP:-0}" != 1 ] && rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT

bash "$BENCH_DIR/setup"
command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
ulimit -n 65536 2>/dev/null || true
if [ -z "${FAZT_BIN:-}" ]; then
  FAZT_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/fazt"
  [ -x "$FAZT_BIN" ] || (cd "$REPO" && nice -n 19 cargo build --release -p fazt >&2)
fi
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fazt-tls-bench.XXXXXX")"
chmod 755 "$TMP"
mkdir -p "$TMP/www" "$TMP/site" "$TMP/node" "$TMP/nginx/logs" "$TMP/nginx/tmp"
python3 "$LIB" gen-fixed "$TMP/www/small.html" 1024 1
cp "$TMP/www/small.html" "$TMP/site/small.html"
echo ok >"$TMP/site/index.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=$HOST_APP" -addext "subjectAltName=DNS:$HOST_APP" \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
chmod 644 "$TMP/key.pem"

FAZT_PORT="$(python3 "$LIB" free-port)"
FAZT_TLS="$(python3 "$LIB" free-port)"
NGINX_TLS="$(python3 "$LIB" free-port)"
NGINX_PLAIN="$(python3 "$LIB" free-port)"
DATA="$TMP/node/data.db"
CLIENT="$TMP/node/client.json"

start_fazt() {
  "$FAZT_BIN" server start --data "$DATA" --listen 127.0.0.1 --port "$FAZT_PORT" --https-port "$FAZT_TLS" \
    --config "$CLIENT" >"$TMP/node/out.log" 2>&1 &
  FAZT_PID=$!
  for _ in $(seq 1 300); do grep -q 'fazt is ready' "$TMP/node/out.log" && return 0; sleep 0.1; done
  cat "$TMP/node/out.log" >&2; die "fazt did not start"
}
# A data file with HTTPS on (LAN mode), then the benchmark certificate.
TOKEN="$("$FAZT_BIN" server init --data "$DATA" --password benchbench | awk '/^API token:/ { print $3 }')"
"$FAZT_BIN" config set --data "$DATA" https.mode lan >/dev/null
"$FAZT_BIN" config set --data "$DATA" beacon.enabled false >/dev/null
start_fazt
export FAZT_TOKEN="$TOKEN" FAZT_SERVER="http://admin.localhost:$FAZT_PORT"
"$FAZT_BIN" deploy "$TMP/site" --name bench >/dev/null
"$FAZT_BIN" cert add "$HOST_APP" --cert "$TMP/cert.pem" --key "$TMP/key.pem" >/dev/null

cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 8192; }
http {
    default_type text/html;
    access_log off;
    sendfile on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_TLS ssl http2;
        listen 127.0.0.1:$NGINX_PLAIN;
        server_name $HOST_APP;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        root $TMP/www;
    }
}
CONF
start_nginx() {
  "$NGINX" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" >/dev/null 2>&1 &
  NGINX_PID=$!
}
wait_https() {
  for port in "$FAZT_TLS" "$NGINX_TLS"; do
    for _ in $(seq 1 100); do
      curl -sf -o /dev/null --cacert "$TMP/cert.pem" --resolve "$HOST_APP:$port:127.0.0.1" \
        "https://$HOST_APP:$port/small.html" && break
      sleep 0.1
    done
    curl -sf -o /dev/null --cacert "$TMP/cert.pem" --resolve "$HOST_APP:$port:127.0.0.1" \
      "https://$HOST_APP:$port/small.html" || die "no HTTPS answer on port $port"
  done
}
# Fresh processes, so that one hold does not reuse memory another one freed.
restart_both() {
  kill -TERM "$FAZT_PID" "$NGINX_PID" 2>/dev/null; wait "$FAZT_PID" "$NGINX_PID" 2>/dev/null || true
  start_fazt; start_nginx; wait_https
}
start_nginx
wait_https

# wrk connects to 127.0.0.1 (no name resolution); its SNI is then the IP (or none), so
# both servers answer with their default certificate: the same key type for both.
wrk_rps() { # wrk_rps PORT [extra wrk args] -> prints req/s
  local port="$1"; shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d1s -H "Host: $HOST_APP" "$@" "https://127.0.0.1:$port/small.html" >/dev/null 2>&1 || true
  local out="$TMP/wrk-$port-$RANDOM.txt"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency -H "Host: $HOST_APP" "$@" \
    "https://127.0.0.1:$port/small.html" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  python3 "$LIB" wrk-parse "$out" | awk '{ print $1, $3, $4 + $5 }'
}

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
FK=- FKP99=- FKBAD=- NK=- NKP99=- NKBAD=- FH=- FHP99=- FHBAD=- NH=- NHP99=- NHBAD=-
if [ "${MEMORY_ONLY:-0}" != 1 ]; then
  log "keep-alive HTTPS, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  read -r FK FKP99 FKBAD < <(wrk_rps "$FAZT_TLS")
  read -r NK NKP99 NKBAD < <(wrk_rps "$NGINX_TLS")
  log "new connection per request (full handshakes), Connection: close"
  read -r FH FHP99 FHBAD < <(wrk_rps "$FAZT_TLS" -H "Connection: close")
  read -r NH NHP99 NHBAD < <(wrk_rps "$NGINX_TLS" -H "Connection: close")
fi

log "memory: $HOLD idle TLS connections each, then (restarted) $HOLD idle plain-HTTP ones"
restart_both
read -r FN FOK FB FI < <(python3 "$BENCH_DIR/tls_hold.py" "$FAZT_TLS" "$HOST_APP" "$TMP/cert.pem" "$HOLD" 3 "$FAZT_PID")
read -r NN NOK NB NI < <(python3 "$BENCH_DIR/tls_hold.py" "$NGINX_TLS" "$HOST_APP" "$TMP/cert.pem" "$HOLD" 3 "$NGINX_PID")
restart_both
read -r FPN FPOK FPB FPI < <(python3 "$BENCH_DIR/tls_hold.py" "$FAZT_PORT" "$HOST_APP" - "$HOLD" 3 "$FAZT_PID")
read -r NPN NPOK NPB NPI < <(python3 "$BENCH_DIR/tls_hold.py" "$NGINX_PLAIN" "$HOST_APP" - "$HOLD" 3 "$NGINX_PID")
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n == 0) print "n/a"; else printf "%.1f", (b - a) / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

cat <<REPORT

| measure | fazt | nginx | fazt/nginx |
|---|---:|---:|---:|
| keep-alive HTTPS req/s (1 KB, -c$CONNECTIONS) | $FK | $NK | $(ratio "$FK" "$NK") |
| keep-alive p99 (ms) | $FKP99 | $NKP99 | |
| new TLS handshakes/s (one request per connection) | $FH | $NH | $(ratio "$FH" "$NH") |
| handshake p99 (ms) | $FHP99 | $NHP99 | |
| memory per idle TLS connection (KB, $FN / $NN held, $FOK / $NOK answered) | $(per "$FB" "$FI" "$FN") | $(per "$NB" "$NI" "$NN") | |
| memory per idle plain-HTTP connection (KB, $FPN / $NPN held, $FPOK / $NPOK answered) | $(per "$FPB" "$FPI" "$FPN") | $(per "$NPB" "$NPI" "$NPN") | |
| RSS before the TLS hold (KB, fresh process) | $FB | $NB | |

errors (non-2xx + socket errors): fazt $FKBAD / $FHBAD, nginx $NKBAD / $NHBAD
load average before the run: $LOADAVG_START (2 cores shared by wrk and the server)
TLS: TLS 1.3 (wrk's OpenSSL default), ECDSA P-256 certificates (fazt: its LAN certificate; nginx: the bench certificate), HTTP/1.1.
REPORT
