#!/usr/bin/env bash
# Static-file benchmark: fazt side by side with nginx on this machine, plus fazt's
# memory, start-up time, binary size and deploy times. See bench/README.md.
#
#   bash bench/static.sh              # full run (a few minutes)
#   QUICK=1 bash bench/static.sh      # short runs, for checking the script
#
# Environment (all optional):
#   FAZT_BIN           use this fazt binary (default: $CARGO_TARGET_DIR/release/fazt,
#                      built with `nice -n 19 cargo build --release -p fazt` if missing)
#   CARGO_TARGET_DIR   cargo's target dir (default: <repo>/target)
#   DURATION           wrk duration per measured run (default 10s; QUICK: 3s)
#   WARMUP             wrk warm-up before each measured run (default 2s; QUICK: 1s)
#   CONNECTIONS        wrk connections for the throughput runs (default 64)
#   THREADS            wrk threads (default 2)
#   C1000_DURATION     wrk duration of the 1,000-connection run (default 5s; QUICK: 2s)
#   HOLD_CONNECTIONS   idle keep-alive connections held open (default 1000)
#   APPS               apps deployed for the idle-memory figure (default 100)
#   SITE_FILES         files in the deploy-test site (default 1000)
#   SITE_BYTES         bytes in the deploy-test site (default 52428800 = 50 MiB)
#   STARTUP_RUNS       start-up timings, median reported (default 5; QUICK: 3)
#   RESULTS_DIR        where the Markdown report is written (default bench/results)
#   KEEP_TMP=1         keep the temporary folder (printed) for inspection
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
LIB="$BENCH_DIR/benchlib.py"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  DURATION="${DURATION:-3s}"; WARMUP="${WARMUP:-1s}"; C1000_DURATION="${C1000_DURATION:-2s}"
  STARTUP_RUNS="${STARTUP_RUNS:-3}"
else
  DURATION="${DURATION:-10s}"; WARMUP="${WARMUP:-2s}"; C1000_DURATION="${C1000_DURATION:-5s}"
  STARTUP_RUNS="${STARTUP_RUNS:-5}"
fi
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
HOLD_CONNECTIONS="${HOLD_CONNECTIONS:-1000}"
APPS="${APPS:-100}"
SITE_FILES="${SITE_FILES:-1000}"
SITE_BYTES="${SITE_BYTES:-52428800}"
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
HOST_APP="bench.localhost"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ cleanup
TMP=""
FAZT_PID=""
NGINX_PID=""
BG_PIDS=()
cleanup() {
  local status=$?
  set +e
  for pid in "${BG_PIDS[@]}"; do
    kill "$pid" 2>/dev/null
  done
  if [ -n "$FAZT_PID" ]; then
    kill -TERM "$FAZT_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$FAZT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FAZT_PID" 2>/dev/null
  fi
  if [ -n "$NGINX_PID" ]; then
    # The master stops its workers on QUIT/TERM.
    kill -TERM "$NGINX_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null
  fi
  wait 2>/dev/null
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then
      log "kept $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
  if [ "$status" != 0 ]; then
    log "failed (exit $status)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ prerequisites
bash "$BENCH_DIR/setup"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
# 1,000 connections (plus wrk's own) need more than the usual 1,024 descriptors; fazt and
# nginx inherit the limit from this shell.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 4096 ] || log "warning: ulimit -n is $(ulimit -n); the 1,000-connection runs may fail"

if [ -z "${FAZT_BIN:-}" ]; then
  FAZT_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/fazt"
  if [ ! -x "$FAZT_BIN" ]; then
    log "building $FAZT_BIN (nice -n 19 cargo build --release -p fazt)"
    (cd "$REPO" && nice -n 19 cargo build --release -p fazt >&2)
  fi
fi
[ -x "$FAZT_BIN" ] || die "no fazt binary at $FAZT_BIN"
FAZT_BIN="$(cd "$(dirname "$FAZT_BIN")" && pwd)/$(basename "$FAZT_BIN")"
# Drop the binary's pages from the page cache first, so that every binary is read back
# the same way whatever wrote it last: a file just written by the linker or cp sits in
# 128 KB folios, and the kernel maps a whole folio on a fault, so the same start-up
# touches about 1.5 MB more of a fresh binary (RSS comparisons between two binaries
# were skewed by which one was copied last).
dd if="$FAZT_BIN" iflag=nocache count=0 status=none 2>/dev/null || true

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fazt-bench.XXXXXX")"
# nginx's workers run as nobody: they must be able to walk into the served folder.
chmod 755 "$TMP"
DATA="$TMP/node/data.db"
CLIENT="$TMP/node/client.json"
mkdir -p "$TMP/node" "$TMP/out"
FAZT_PORT="$(python3 "$LIB" free-port)"
NGINX_PORT="$(python3 "$LIB" free-port)"
while [ "$NGINX_PORT" = "$FAZT_PORT" ]; do NGINX_PORT="$(python3 "$LIB" free-port)"; done

kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
cpu_secs() { # user+system CPU seconds a process has used
  awk -v t="$CLK_TCK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
secs() { # wrk duration (10, 10s, 2m) -> whole seconds
  case "$1" in *m) echo $(( ${1%m} * 60 )) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac
}

# ------------------------------------------------------------------ fazt control
start_fazt() {
  local logf="$TMP/out/fazt-$(date +%s%N).log"
  "$FAZT_BIN" server start --data "$DATA" --listen 127.0.0.1 --port "$FAZT_PORT" --config "$CLIENT" \
    >"$logf" 2>&1 &
  FAZT_PID=$!
  local i
  for i in $(seq 1 300); do
    if grep -q 'fazt is ready' "$logf"; then
      FAZT_LOG="$logf"
      return 0
    fi
    kill -0 "$FAZT_PID" 2>/dev/null || { cat "$logf" >&2; die "fazt exited during start"; }
    sleep 0.1
  done
  cat "$logf" >&2
  die "fazt was not ready within 30 s"
}

stop_fazt() {
  [ -n "$FAZT_PID" ] || return 0
  kill -TERM "$FAZT_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$FAZT_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$FAZT_PID" 2>/dev/null; then
    log "warning: fazt did not stop within 10 s of SIGTERM; killing it"
    ODD+=("fazt did not stop within 10 s of SIGTERM")
    kill -KILL "$FAZT_PID" 2>/dev/null || true
  fi
  wait "$FAZT_PID" 2>/dev/null || true
  FAZT_PID=""
}

deploy() { # deploy DIR NAME -> prints fazt's summary line; sets DEPLOY_SECS
  local t0 out
  t0="$(now)"
  out="$(FAZT_CONFIG="$CLIENT" "$FAZT_BIN" deploy "$1" --name "$2" 2>&1)" || { echo "$out" >&2; die "deploy of $2 failed"; }
  DEPLOY_SECS="$(since "$t0")"
  DEPLOY_LINE="$(echo "$out" | grep -m1 '^deployed' || true)"
}

http_code() { # http_code PORT HOST PATH
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: $2" "http://127.0.0.1:$1$3"
}

# ------------------------------------------------------------------ nginx control
start_nginx() {
  local n="$TMP/nginx"
  mkdir -p "$n/logs" "$n/tmp"
  cat >"$n/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $n/nginx.pid;
error_log $n/logs/error.log warn;
events {
    worker_connections 8192;
}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $n/tmp/body;
    proxy_temp_path $n/tmp/proxy;
    fastcgi_temp_path $n/tmp/fastcgi;
    uwsgi_temp_path $n/tmp/uwsgi;
    scgi_temp_path $n/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name $HOST_APP;
        root $TMP/www;
    }
}
EOF
  "$NGINX" -p "$n/" -c "$n/nginx.conf" -e "$n/logs/error.log" >"$n/logs/stdout.log" 2>&1 &
  NGINX_PID=$!
  local i
  for i in $(seq 1 100); do
    [ "$(http_code "$NGINX_PORT" "$HOST_APP" /small.html)" = 200 ] && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$n/logs/"* >&2; die "nginx exited during start"; }
    sleep 0.1
  done
  cat "$n/logs/"* >&2
  die "nginx did not answer within 10 s"
}

nginx_rss_kb() { # master + workers
  local total=0 pid
  for pid in "$NGINX_PID" $(ps -o pid= --ppid "$NGINX_PID" 2>/dev/null); do
    total=$((total + $(status_kb "$pid" VmRSS)))
  done
  echo "$total"
}

# ------------------------------------------------------------------ wrk
run_wrk() { # run_wrk NAME PORT PATH CONNS DURATION -> sets W_RPS W_P50 W_P99 W_BAD
  local name="$1" port="$2" path="$3" conns="$4" dur="$5" out="$TMP/out/wrk-$1.txt"
  local threads="$THREADS"
  [ "$threads" -le "$conns" ] || threads="$conns"
  wrk -t"$threads" -c"$conns" -d"$WARMUP" -H "Host: $HOST_APP" "http://127.0.0.1:$port$path" >/dev/null 2>&1 || true
  wrk -t"$threads" -c"$conns" -d"$dur" --timeout 5s --latency -H "Host: $HOST_APP" \
    "http://127.0.0.1:$port$path" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  read -r W_RPS W_P50 W_P99 W_NON2XX W_ERRS W_REQS < <(python3 "$LIB" wrk-parse "$out")
  W_BAD=""
  if [ "$W_NON2XX" != 0 ] || [ "$W_ERRS" != 0 ]; then
    W_BAD=" (non-2xx: $W_NON2XX, socket errors: $W_ERRS)"
    ODD+=("$name: $W_NON2XX non-2xx responses and $W_ERRS socket errors out of $W_REQS requests")
  fi
  log "$name: $W_RPS req/s, p50 $W_P50 ms, p99 $W_P99 ms$W_BAD"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

ODD=()
REPORT="$TMP/out/report.md"
cpu_busy_pct() { # share of all CPU time that was busy over the next $1 seconds
  local a b
  a="$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)"
  sleep "$1"
  b="$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)"
  echo "$a $b" | awk '{ busy = $3 - $1; idle = $4 - $2; printf "%.0f", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY_START="$(cpu_busy_pct 3)"
[ "$BUSY_START" -le 15 ] || log "warning: the CPUs were ${BUSY_START}% busy before the run; numbers will be skewed"
STARTED="$(now)"

# ------------------------------------------------------------------ 0. inputs
log "fazt: $FAZT_BIN; ports: fazt $FAZT_PORT, nginx $NGINX_PORT; tmp: $TMP"
FAZT_VERSION="$( ("$FAZT_BIN" --version 2>/dev/null || true) | head -1)"
NGINX_VERSION="$( ("$NGINX" -v 2>&1 || true) | sed 's/^nginx version: //')"
WRK_VERSION="$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')"
BIN_BYTES="$(stat -c %s "$FAZT_BIN")"
BIN_MB="$(awk -v b="$BIN_BYTES" 'BEGIN { printf "%.2f", b / 1048576 }')"

log "generating files"
mkdir -p "$TMP/www" "$TMP/apps" "$TMP/site"
python3 "$LIB" gen-fixed "$TMP/www/small.html" 1024 1
python3 "$LIB" gen-fixed "$TMP/www/large.html" 102400 2
python3 "$LIB" gen-apps "$TMP/apps" "$APPS" 3 >/dev/null
read -r SITE_N SITE_B < <(python3 "$LIB" gen-site "$TMP/site" "$SITE_FILES" "$SITE_BYTES" 4)
chmod -R a+rX "$TMP/www"

# ------------------------------------------------------------------ 1. idle RSS, 100 apps
log "first start (creates data.db)"
start_fazt
# A port given on the command line is not saved into the CLI config, so save it here
# from the token the first start prints.
TOKEN="$(sed -n 's/.*API token for the CLI: \(fzt_[0-9a-f]*\).*/\1/p' "$FAZT_LOG" | head -n 1)"
[ -n "$TOKEN" ] || die "fazt did not print an API token on first start"
"$FAZT_BIN" client set-auth-token "$TOKEN" --server "http://admin.localhost:$FAZT_PORT" --config "$CLIENT" \
  >/dev/null || die "could not save the client config"
RSS_EMPTY="$(status_kb "$FAZT_PID" VmRSS)"

log "deploying $APPS apps"
t_apps="$(now)"
for d in "$TMP"/apps/app-*; do
  deploy "$d" "$(basename "$d")"
done
APPS_SECS="$(since "$t_apps")"
APPS_PER_DEPLOY_MS="$(awk -v s="$APPS_SECS" -v n="$APPS" 'BEGIN { printf "%.0f", s * 1000 / n }')"
sleep 5
RSS_AFTER_DEPLOYS="$(status_kb "$FAZT_PID" VmRSS)"
HWM_AFTER_DEPLOYS="$(status_kb "$FAZT_PID" VmHWM)"
code="$(http_code "$FAZT_PORT" "app-007.localhost" /)"
[ "$code" = 200 ] || ODD+=("app-007.localhost/ answered $code after deploy")

log "restart; idle RSS with $APPS apps"
stop_fazt
# wrk's 1,000 connections all come from 127.0.0.1: one client, which fazt caps at 128
# connections by default (http.max_connections_per_client). A load test from one
# machine is exactly what that cap refuses, so it is lifted for this benchmark.
# (A binary older than the cap has no such key and no cap.)
"$FAZT_BIN" config set http.max_connections_per_client 0 --data "$DATA" >/dev/null 2>&1 || true
start_fazt
sleep 5
RSS_IDLE_RESTART="$(status_kb "$FAZT_PID" VmRSS)"
for d in "$TMP"/apps/app-*; do
  for f in / /style.css /app.js; do
    code="$(http_code "$FAZT_PORT" "$(basename "$d").localhost" "$f")"
    [ "$code" = 200 ] || { ODD+=("$(basename "$d").localhost$f answered $code"); break 2; }
  done
done
sleep 5
RSS_IDLE_TOUCHED="$(status_kb "$FAZT_PID" VmRSS)"
HEALTH_RSS="$(curl -s --max-time 10 -H 'Host: admin.localhost' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$FAZT_PORT/api/system/health" |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("memory_rss_bytes", 0))' 2>/dev/null || echo 0)"

# ------------------------------------------------------------------ 2. throughput vs nginx
log "deploying the throughput site; starting nginx"
deploy "$TMP/www" bench
start_nginx
for f in small.html large.html; do
  curl -s --max-time 10 -H "Host: $HOST_APP" "http://127.0.0.1:$FAZT_PORT/$f" -o "$TMP/out/fazt-$f"
  curl -s --max-time 10 -H "Host: $HOST_APP" "http://127.0.0.1:$NGINX_PORT/$f" -o "$TMP/out/nginx-$f"
  cmp -s "$TMP/out/fazt-$f" "$TMP/www/$f" || die "fazt serves a different $f"
  cmp -s "$TMP/out/nginx-$f" "$TMP/www/$f" || die "nginx serves a different $f"
done
curl -s -D - -o /dev/null --max-time 10 -H "Host: $HOST_APP" "http://127.0.0.1:$FAZT_PORT/small.html" \
  | tr -d '\r' >"$TMP/out/fazt-headers.txt"
curl -s -D - -o /dev/null --max-time 10 -H "Host: $HOST_APP" "http://127.0.0.1:$NGINX_PORT/small.html" \
  | tr -d '\r' >"$TMP/out/nginx-headers.txt"

declare -A RPS P50 P99 BAD
for f in small.html large.html; do
  for s in fazt nginx; do
    port="$FAZT_PORT"; [ "$s" = nginx ] && port="$NGINX_PORT"
    run_wrk "$s-$f" "$port" "/$f" "$CONNECTIONS" "$DURATION"
    RPS[$s-$f]="$W_RPS"; P50[$s-$f]="$W_P50"; P99[$s-$f]="$W_P99"; BAD[$s-$f]="$W_BAD"
  done
done
RSS_AFTER_LOAD="$(status_kb "$FAZT_PID" VmRSS)"
HWM_AFTER_LOAD="$(status_kb "$FAZT_PID" VmHWM)"

# ------------------------------------------------------------------ 3. 1,000 connections
log "restart; $HOLD_CONNECTIONS idle keep-alive connections"
stop_fazt
start_fazt
for _ in 1 2 3; do http_code "$FAZT_PORT" "$HOST_APP" /small.html >/dev/null; done
sleep 2
RSS_BEFORE_HOLD="$(status_kb "$FAZT_PID" VmRSS)"
read -r H_OPEN H_OK1 H_OK2 H_PEAK H_HWM < <(python3 "$LIB" hold "$FAZT_PORT" "$HOST_APP" /small.html \
  "$HOLD_CONNECTIONS" 3 "$FAZT_PID")
[ "$H_OK1" = "$H_OPEN" ] && [ "$H_OK2" = "$H_OPEN" ] ||
  ODD+=("held connections: $H_OPEN opened, $H_OK1 answered the first request, $H_OK2 the second")
log "hold: $H_OPEN open, peak RSS ${H_PEAK} kB, HWM ${H_HWM} kB"
NG_BEFORE_HOLD="$(nginx_rss_kb)"
python3 "$LIB" hold "$NGINX_PORT" "$HOST_APP" /small.html "$HOLD_CONNECTIONS" 3 "$NGINX_PID" \
  >"$TMP/out/nginx-hold.txt" &
hold_pid=$!
BG_PIDS+=("$hold_pid")
NG_PEAK_HOLD=0
for _ in $(seq 1 80); do
  kill -0 "$hold_pid" 2>/dev/null || break
  v="$(nginx_rss_kb)"; [ "$v" -gt "$NG_PEAK_HOLD" ] && NG_PEAK_HOLD="$v"
  sleep 0.1
done
wait "$hold_pid" || true

log "wrk with 1,000 connections"
python3 "$LIB" sample-rss "$FAZT_PID" "$(( $(secs "$C1000_DURATION") + $(secs "$WARMUP") + 2 ))" >"$TMP/out/sample.txt" &
sampler=$!
BG_PIDS+=("$sampler")
run_wrk "fazt-c1000" "$FAZT_PORT" /small.html 1000 "$C1000_DURATION"
C1K_FAZT_RPS="$W_RPS"; C1K_FAZT_P99="$W_P99"; C1K_FAZT_BAD="$W_BAD"
wait "$sampler" || true
read -r C1K_PEAK C1K_HWM <"$TMP/out/sample.txt"
C1K_NG_PEAK=0
# In the background (a subshell) so that nginx's memory can be sampled meanwhile.
run_wrk "nginx-c1000" "$NGINX_PORT" /small.html 1000 "$C1000_DURATION" &
wrk_job=$!
BG_PIDS+=("$wrk_job")
for _ in $(seq 1 $(( ($(secs "$C1000_DURATION") + $(secs "$WARMUP") + 5) * 10 ))); do
  kill -0 "$wrk_job" 2>/dev/null || break
  v="$(nginx_rss_kb)"; [ "$v" -gt "$C1K_NG_PEAK" ] && C1K_NG_PEAK="$v"
  sleep 0.1
done
wait "$wrk_job" || true
# run_wrk ran in a subshell: read its numbers back.
read -r C1K_NG_RPS _ C1K_NG_P99 C1K_NG_NON2XX C1K_NG_ERRS C1K_NG_REQS < <(python3 "$LIB" wrk-parse "$TMP/out/wrk-nginx-c1000.txt")
C1K_NG_BAD=""
if [ "$C1K_NG_NON2XX" != 0 ] || [ "$C1K_NG_ERRS" != 0 ]; then
  C1K_NG_BAD=" (non-2xx: $C1K_NG_NON2XX, socket errors: $C1K_NG_ERRS)"
  ODD+=("nginx-c1000: $C1K_NG_NON2XX non-2xx responses and $C1K_NG_ERRS socket errors out of $C1K_NG_REQS requests")
fi

# ------------------------------------------------------------------ 4. deploy 1,000 files / 50 MB
log "restart; deploying the $SITE_N-file site"
stop_fazt
start_fazt
cpu0="$(cpu_secs "$FAZT_PID")"
deploy "$TMP/site" bigsite
DEP_FIRST="$DEPLOY_SECS"; DEP_FIRST_LINE="$DEPLOY_LINE"
DEP_FIRST_CPU="$(awk -v a="$cpu0" -v b="$(cpu_secs "$FAZT_PID")" 'BEGIN { printf "%.2f", b - a }')"
deploy "$TMP/site" bigsite
DEP_SAME="$DEPLOY_SECS"; DEP_SAME_LINE="$DEPLOY_LINE"
printf '\n<!-- changed by the benchmark at %s -->\n' "$(date +%s%N)" >>"$TMP/site/index.html"
deploy "$TMP/site" bigsite
DEP_ONE="$DEPLOY_SECS"; DEP_ONE_LINE="$DEPLOY_LINE"
curl -s --max-time 10 -H "Host: bigsite.localhost" "http://127.0.0.1:$FAZT_PORT/index.html" -o "$TMP/out/index.html"
cmp -s "$TMP/out/index.html" "$TMP/site/index.html" || ODD+=("bigsite/index.html does not show the change after redeploy")
some_bin="$(cd "$TMP/site" && find . -name '*.png' | sort | head -1)"
curl -s --max-time 10 -H "Host: bigsite.localhost" "http://127.0.0.1:$FAZT_PORT/${some_bin#./}" -o "$TMP/out/some.bin"
cmp -s "$TMP/out/some.bin" "$TMP/site/${some_bin#./}" || ODD+=("bigsite/${some_bin#./} differs from the deployed file")
HWM_DEPLOY="$(status_kb "$FAZT_PID" VmHWM)"
RSS_AFTER_BIG="$(status_kb "$FAZT_PID" VmRSS)"
stop_fazt
DB_BYTES="$(( $(stat -c %s "$DATA") + $(stat -c %s "$DATA-wal" 2>/dev/null || echo 0) ))"

# ------------------------------------------------------------------ 5. start-up time
log "start-up time, $STARTUP_RUNS runs"
python3 "$LIB" startup "$STARTUP_RUNS" "$FAZT_PORT" "$HOST_APP" /small.html -- \
  "$FAZT_BIN" server start --data "$DATA" --listen 127.0.0.1 --port "$FAZT_PORT" --config "$CLIENT" \
  >"$TMP/out/startup.txt"
read -r ST_READY ST_HTTP ST_SELF ST_STOP <"$TMP/out/startup.txt"
ST_RUNS="$(tail -n +2 "$TMP/out/startup.txt" | awk '{printf "%s%s", (NR > 1 ? ", " : ""), $2}')"

LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"
TOTAL_SECS="$(since "$STARTED")"

# ------------------------------------------------------------------ report
hdr() { grep -i "^$2:" "$TMP/out/$1-headers.txt" | head -1 | cut -d' ' -f2- || true; }
{
  echo "# fazt static benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- fazt: \`$FAZT_VERSION\` ($FAZT_BIN)"
  echo "- nginx: $NGINX_VERSION (worker_processes auto, sendfile, access_log off, keep-alive); wrk $WRK_VERSION"
  echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
  echo "- CPU busy in the 3 s before the run: ${BUSY_START}% (other work on the machine skews the numbers); load average at start: $LOADAVG_START, at end: $LOADAVG_END (the benchmark's own load is included)"
  echo "- wrk: -t$THREADS -c$CONNECTIONS -d$DURATION --latency (after a $WARMUP warm-up), keep-alive, no Accept-Encoding; wrk, the server and everything else share the same cores"
  echo "- total run time: ${TOTAL_SECS} s$( [ "$QUICK" = 1 ] && echo '; QUICK mode')"
  echo
  echo "## Throughput and latency (fazt vs nginx)"
  echo
  echo "| file | fazt req/s | nginx req/s | fazt/nginx | fazt p99 (ms) | nginx p99 (ms) | fazt p50 (ms) | nginx p50 (ms) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for f in small.html large.html; do
    label="1 KB"; [ "$f" = large.html ] && label="100 KB"
    echo "| $label ($f) | ${RPS[fazt-$f]}${BAD[fazt-$f]} | ${RPS[nginx-$f]}${BAD[nginx-$f]} | $(ratio "${RPS[fazt-$f]}" "${RPS[nginx-$f]}") | ${P99[fazt-$f]} | ${P99[nginx-$f]} | ${P50[fazt-$f]} | ${P50[nginx-$f]} |"
  done
  echo "| 1 KB, 1,000 connections (-d$C1000_DURATION) | $C1K_FAZT_RPS$C1K_FAZT_BAD | $C1K_NG_RPS$C1K_NG_BAD | $(ratio "$C1K_FAZT_RPS" "$C1K_NG_RPS") | $C1K_FAZT_P99 | $C1K_NG_P99 | | |"
  echo
  echo "p99 ratio fazt/nginx: 1 KB $(ratio "${P99[fazt-small.html]}" "${P99[nginx-small.html]}"), 100 KB $(ratio "${P99[fazt-large.html]}" "${P99[nginx-large.html]}") (lower is better for fazt)."
  echo
  echo "## Memory (fazt, VmRSS unless noted)"
  echo
  echo "| situation | MB |"
  echo "| --- | ---: |"
  echo "| fresh node, no user apps | $(kb_to_mb "$RSS_EMPTY") |"
  echo "| right after deploying $APPS apps (5 s idle; VmHWM $(kb_to_mb "$HWM_AFTER_DEPLOYS")) | $(kb_to_mb "$RSS_AFTER_DEPLOYS") |"
  echo "| **idle with $APPS apps**, after a restart (5 s idle) | **$(kb_to_mb "$RSS_IDLE_RESTART")** |"
  echo "| idle with $APPS apps, after one request to each of their 3 files | $(kb_to_mb "$RSS_IDLE_TOUCHED") (health API: $(awk -v b="$HEALTH_RSS" 'BEGIN { printf "%.1f", b / 1048576 }')) |"
  echo "| after the throughput runs (VmHWM $(kb_to_mb "$HWM_AFTER_LOAD")) | $(kb_to_mb "$RSS_AFTER_LOAD") |"
  echo "| fresh restart, warm, before opening connections | $(kb_to_mb "$RSS_BEFORE_HOLD") |"
  echo "| **$H_OPEN idle keep-alive connections open** (peak sampled; VmHWM $(kb_to_mb "$H_HWM")) | **$(kb_to_mb "$H_PEAK")** |"
  echo "| **wrk -c1000 for $C1000_DURATION** (peak sampled; VmHWM $(kb_to_mb "$C1K_HWM")) | **$(kb_to_mb "$C1K_PEAK")** |"
  echo "| during deploys of the $SITE_N-file site (VmHWM after a fresh start) | $(kb_to_mb "$HWM_DEPLOY") |"
  echo "| after those deploys | $(kb_to_mb "$RSS_AFTER_BIG") |"
  echo
  echo "nginx for reference (master + workers, summed VmRSS, shared pages counted per process): $(kb_to_mb "$NG_BEFORE_HOLD") MB at rest, $(kb_to_mb "$NG_PEAK_HOLD") MB peak with $HOLD_CONNECTIONS idle connections, $(kb_to_mb "$C1K_NG_PEAK") MB peak under wrk -c1000."
  echo
  echo "## Start-up, size, deploy"
  echo
  echo "| measure | value |"
  echo "| --- | ---: |"
  echo "| release binary | $BIN_BYTES bytes ($BIN_MB MiB) |"
  echo "| start to \"fazt is ready\" line, existing data.db (median of $STARTUP_RUNS) | $ST_READY ms |"
  echo "| start to first HTTP 200 for /small.html (median of $STARTUP_RUNS; runs: $ST_RUNS) | $ST_HTTP ms |"
  echo "| fazt's own \"started in\" figure (median) | $ST_SELF ms |"
  echo "| SIGTERM to exit (median) | $ST_STOP ms |"
  echo "| data.db used for the start-up runs ($((APPS + 2)) user apps incl. the site below) | $(awk -v b="$DB_BYTES" 'BEGIN { printf "%.1f MB", b / 1048576 }') |"
  echo "| deploy $APPS small apps, one CLI run each | ${APPS_SECS} s (${APPS_PER_DEPLOY_MS} ms per deploy) |"
  echo "| **first deploy, $SITE_N files, $(awk -v b="$SITE_B" 'BEGIN { printf "%.0f", b / 1048576 }') MiB** | **${DEP_FIRST} s** (node CPU: ${DEP_FIRST_CPU} s) |"
  echo "| redeploy, nothing changed | ${DEP_SAME} s |"
  echo "| **redeploy, one file changed** | **${DEP_ONE} s** |"
  echo
  echo "fazt's summaries: \`$DEP_FIRST_LINE\` / \`$DEP_SAME_LINE\` / \`$DEP_ONE_LINE\`"
  echo
  echo "Deploy-test site: $SITE_N files ($((SITE_FILES * 3 / 4)) text: HTML, JS, CSS, JSON, SVG, Markdown; the rest random bytes as PNG, JPEG, WOFF2, WebP, BIN), $SITE_B bytes, 80 % of them incompressible, seed 4."
  echo
  echo "## Response headers for /small.html"
  echo
  echo "| header | fazt | nginx |"
  echo "| --- | --- | --- |"
  for h in Content-Type Content-Length Cache-Control ETag Last-Modified Vary; do
    echo "| $h | $(hdr fazt "$h") | $(hdr nginx "$h") |"
  done
  echo
  echo "## Notes"
  echo
  if [ ${#ODD[@]} -eq 0 ]; then
    echo "- nothing odd: every response checked was 200 with the expected bytes, and fazt stopped cleanly on SIGTERM each time."
  else
    for o in "${ODD[@]}"; do echo "- $o"; done
  fi
} >"$REPORT"

mkdir -p "$RESULTS_DIR"
OUT_FILE="$RESULTS_DIR/static-$(date +%Y-%m-%d-%H%M%S).md"
cp "$REPORT" "$OUT_FILE"
cat "$REPORT"
log "report written to $OUT_FILE"
