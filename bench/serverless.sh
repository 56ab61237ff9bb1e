#!/usr/bin/env bash
# Serverless benchmark: a hello-JSON handler in fazt (api/main.js on QuickJS) side by
# side with the same handler on Node's http module, in one run on this machine; plus a
# KV-counter handler (a read and a write per request), cold-versus-warm first request
# after a deploy, and memory growth over 100,000 requests. See bench/README.md.
#
#   bash bench/serverless.sh            # full run (about a minute and a half)
#   QUICK=1 bash bench/serverless.sh    # short runs
#
# Environment: FAZT_BIN, CARGO_TARGET_DIR, DURATION (default 10s), CONNECTIONS
# (default 50), THREADS (default 2), GROWTH_REQUESTS (default 100000), INLINE_MS (sets
# the node's runtime.inline_ms; default: the node's default, 0 = worker threads),
# FAZT_SET (more node settings, "key=value key=value", e.g. "runtime.workers=2").
# Everything talks to 127.0.0.1 only; every loop is bounded.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
QUICK="${QUICK:-0}"
DURATION="${DURATION:-$([ "$QUICK" = 1 ] && echo 3s || echo 10s)}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-2}"
GROWTH_REQUESTS="${GROWTH_REQUESTS:-$([ "$QUICK" = 1 ] && echo 20000 || echo 100000)}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
FAZT_BIN="${FAZT_BIN:-$TARGET/release/fazt}"
LIB="$BENCH_DIR/benchlib.py"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bash "$BENCH_DIR/setup"
command -v node >/dev/null 2>&1 || die "node is needed for the reference (apt-get install nodejs)"
if [ ! -x "$FAZT_BIN" ]; then
  log "building the release binary"
  (cd "$REPO" && nice -n 19 cargo build --release -p fazt >&2)
fi
# Drop the binary's pages from the page cache first, so that every binary is read back
# the same way whatever wrote it last: a file just written by the linker or cp sits in
# 128 KB folios, and the kernel maps a whole folio on a fault, so the same start-up
# touches about 1.5 MB more of a fresh binary (RSS comparisons between two binaries
# were skewed by which one was copied last).
dd if="$FAZT_BIN" iflag=nocache count=0 status=none 2>/dev/null || true

TMP="$(mktemp -d /tmp/fazt-bench-js.XXXXXX)"
FAZT_PID=""
NODE_PID=""
cleanup() {
  [ -n "$FAZT_PID" ] && kill "$FAZT_PID" 2>/dev/null || true
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

FAZT_PORT="$(free_port)"
NODE_PORT="$(free_port)"
mkdir -p "$TMP/node" "$TMP/hello/api" "$TMP/counter/api" "$TMP/out"
cat >"$TMP/hello/api/main.js" <<'JS'
module.exports = async function (request) {
  return { json: { hello: 'world', path: request.url.pathname } };
};
JS
cat >"$TMP/counter/api/main.js" <<'JS'
module.exports = async function () {
  const n = (await fazt.storage.kv.get('hits')) || 0;
  await fazt.storage.kv.set('hits', n + 1);
  return { json: { hits: n + 1 } };
};
JS

SETTINGS="${FAZT_SET:-}"
[ -n "${INLINE_MS:-}" ] && SETTINGS="runtime.inline_ms=$INLINE_MS $SETTINGS"
if [ -n "${SETTINGS// /}" ]; then
  "$FAZT_BIN" server init --password bench-password-1 --data "$TMP/node/data.db" >"$TMP/out/init.log"
  for setting in $SETTINGS; do
    "$FAZT_BIN" server set-config "${setting%%=*}" "${setting#*=}" --data "$TMP/node/data.db" >&2
  done
fi
log "starting fazt ($FAZT_BIN) on $FAZT_PORT and node on $NODE_PORT"
"$FAZT_BIN" server start --data "$TMP/node/data.db" --listen 127.0.0.1 --port "$FAZT_PORT" \
  --config "$TMP/node/client.json" >"$TMP/out/fazt.log" 2>&1 &
FAZT_PID=$!
for _ in $(seq 1 300); do grep -q 'fazt is ready' "$TMP/out/fazt.log" && break; sleep 0.1; done
grep -q 'fazt is ready' "$TMP/out/fazt.log" || die "fazt did not start: $(cat "$TMP/out/fazt.log")"
TOKEN="$(sed -n 's/.*API token for the CLI: \(fzt_[0-9a-f]*\).*/\1/p' "$TMP/out/fazt.log" | head -n 1)"
if [ -z "$TOKEN" ] && [ -f "$TMP/out/init.log" ]; then
  TOKEN="$(sed -n 's/^API token: \(fzt_[0-9a-f]*\).*/\1/p' "$TMP/out/init.log" | head -n 1)"
fi
export FAZT_SERVER="http://admin.localhost:$FAZT_PORT" FAZT_TOKEN="$TOKEN"
"$FAZT_BIN" deploy "$TMP/hello" --name hello >&2
"$FAZT_BIN" deploy "$TMP/counter" --name counter >&2
node "$BENCH_DIR/node-hello.js" "$NODE_PORT" >"$TMP/out/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$NODE_PORT/api/hello" && break; sleep 0.1; done

run_wrk() { # run_wrk PORT HOST PATH -> "rps p50 p99 non2xx errors requests"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Host: $2" "http://127.0.0.1:$1$3" >/dev/null 2>&1 || true
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency -H "Host: $2" \
    "http://127.0.0.1:$1$3" >"$TMP/out/wrk.txt" 2>&1 || die "wrk failed: $(cat "$TMP/out/wrk.txt")"
  python3 "$LIB" wrk-parse "$TMP/out/wrk.txt"
}

log "hello-JSON: fazt"
read -r F_RPS F_P50 F_P99 F_BAD F_ERR _ < <(run_wrk "$FAZT_PORT" hello.localhost /api/hello)
log "hello-JSON: node"
read -r N_RPS N_P50 N_P99 N_BAD N_ERR _ < <(run_wrk "$NODE_PORT" localhost /api/hello)
log "KV counter: fazt"
read -r K_RPS K_P50 K_P99 K_BAD K_ERR _ < <(run_wrk "$FAZT_PORT" counter.localhost /api/count)
HITS="$(curl -s -H 'Host: counter.localhost' "http://127.0.0.1:$FAZT_PORT/api/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"])')"

time_get() { curl -s -o /dev/null -w '%{time_total}' -H "Host: $1" "http://127.0.0.1:$FAZT_PORT$2"; }
log "cold versus warm after a deploy (median of 5 each)"
COLD=()
WARM=()
for i in 1 2 3 4 5; do
  echo "// version $i" >>"$TMP/hello/api/main.js"
  "$FAZT_BIN" deploy "$TMP/hello" --name hello >/dev/null
  COLD+=("$(time_get hello.localhost /api/hello)")
  # Each JavaScript thread builds its own instance of the app on its first request, so
  # the second request may be cold too (on another thread); warm is the tenth.
  for _ in 1 2 3 4 5 6 7 8; do time_get hello.localhost /api/hello >/dev/null; done
  WARM+=("$(time_get hello.localhost /api/hello)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] * 1000 }'; }
COLD_MS="$(median "${COLD[@]}")"
WARM_MS="$(median "${WARM[@]}")"

log "memory growth over $GROWTH_REQUESTS requests"
RSS_BEFORE="$(status_kb "$FAZT_PID" VmRSS)"
# wrk has no request count: run long enough for the count at the measured rate, bounded.
GROWTH_SECS="$(awk -v n="$GROWTH_REQUESTS" -v r="$F_RPS" 'BEGIN { s = int(n / (r > 0 ? r : 1000)) + 2; if (s > 120) s = 120; print s }')"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${GROWTH_SECS}s" -H "Host: hello.localhost" \
  "http://127.0.0.1:$FAZT_PORT/api/hello" >"$TMP/out/growth.txt" 2>&1 || true
GROWTH_DONE="$(awk '/requests in/ { print $1 }' "$TMP/out/growth.txt")"
sleep 2
RSS_AFTER="$(status_kb "$FAZT_PID" VmRSS)"

cat <<REPORT
# fazt serverless benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- fazt: \`$("$FAZT_BIN" --version)\` (settings: ${SETTINGS:-defaults}), node: $(node --version); wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, keep-alive, loopback; $(nproc) cores shared by wrk and the servers

| handler | fazt req/s | node req/s | fazt/node | fazt p99 (ms) | node p99 (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
| hello-JSON | $F_RPS | $N_RPS | $(ratio "$F_RPS" "$N_RPS") | $F_P99 | $N_P99 |
| KV counter (read + write per request) | $K_RPS | | | $K_P99 | |

| measure | value |
| --- | ---: |
| first request after a deploy (cold, median of 5) | $COLD_MS ms |
| tenth request (warm, median of 5) | $WARM_MS ms |
| RSS before / after $GROWTH_DONE more requests | $(kb_to_mb "$RSS_BEFORE") / $(kb_to_mb "$RSS_AFTER") MB |
| counter value after the run (every write kept) | $HITS |

Non-2xx / socket errors: fazt hello $F_BAD/$F_ERR, node $N_BAD/$N_ERR, fazt counter $K_BAD/$K_ERR.
REPORT
