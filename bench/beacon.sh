#!/usr/bin/env bash
# Measures the beacon's costs on a private virtual LAN (three network namespaces on a
# bridge; 10.77.0.0/24 exists only inside them): time from node start to being seen by a
# peer, idle CPU and memory of a node with the beacon on and off, and packets sent per
# hour when idle. A measurement, not a test; needs root (namespaces). Removes everything
# it made on exit, also on failure or Ctrl-C.
#   FAZT_BIN (default target/release/fazt), IDLE_SECS (default 300), RUNS (default 5),
#   DEBUG=1 (print the nodes' logs at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FAZT_BIN:-target/release/fazt}
IDLE_SECS=${IDLE_SECS:-300}
RUNS=${RUNS:-5}
[ -x "$BIN" ] || { echo "no $BIN: build it with 'nice -n 19 cargo build --release -p fazt'" >&2; exit 1; }
TMP=$(mktemp -d)
PIDS=()
links_down() {
  for i in 1 2 3; do ip netns del "fzbench$i" 2>/dev/null || true; done
  ip link del fzbench 2>/dev/null || true
}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  links_down
  rm -rf "$TMP"
}
trap cleanup EXIT
[ -n "${DEBUG:-}" ] && trap 'cat $TMP/*.out >&2; cleanup' EXIT
links_down
ip link add fzbench type bridge && ip link set fzbench up
for i in 1 2 3; do
  ip netns add "fzbench$i"
  ip link add "fzbenchv$i" type veth peer name eth0 netns "fzbench$i"
  ip link set "fzbenchv$i" master fzbench up
  ip -n "fzbench$i" addr add "10.77.0.$i/24" dev eth0
  ip -n "fzbench$i" link set eth0 up
  ip -n "fzbench$i" link set lo up
done

init() { # host name beacon.enabled
  mkdir -p "$TMP/$1"
  "$BIN" server init --data "$TMP/$1/data.db" --port 8080 --password bench-password \
    | sed -n 's/^API token: //p' >"$TMP/$1.tok"
  "$BIN" config set beacon.name "$2" --data "$TMP/$1/data.db" >/dev/null
  "$BIN" config set beacon.enabled "$3" --data "$TMP/$1/data.db" >/dev/null
}
start() { # host -> LAST (pid)
  ip netns exec "fzbench$1" "$BIN" server start --data "$TMP/$1/data.db" --config "$TMP/$1/c.json" \
    >"$TMP/$1.out" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
  for _ in $(seq 100); do grep -q '^fazt is ready' "$TMP/$1.out" && return; sleep 0.05; done
  echo "node $1 did not start" >&2; cat "$TMP/$1.out" >&2; exit 1
}
POLLS=0
sees() { # host name: does the node on host $1 list a peer called $2?
  local out
  POLLS=$((POLLS + 1))
  out=$(ip netns exec "fzbench$1" "$BIN" beacon status --json --server http://admin.localhost:8080 \
    --token "$(cat "$TMP/$1.tok")" --data "$TMP/$1/data.db" 2>/dev/null || true)
  grep -q "\"name\": \"$2\"" <<<"$out"
}
now_ms() { date +%s%3N; }
tx_packets() { ip -n "fzbench$1" -s link show eth0 | awk '/TX:/{getline; print $2}'; }
# Counts the mDNS packets (UDP to port 5353, IPv4 and IPv6) host $1 sends on eth0 for
# $2 seconds, into $TMP/mdns$1 (python3 with a raw socket; the kernel counters above
# also count the timekeeper's NTP, ARP and IPv6 housekeeping).
count_mdns() {
  ip netns exec "fzbench$1" python3 - "$2" >"$TMP/mdns$1" <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0)); s.settimeout(0.5)
end, n = time.time() + float(sys.argv[1]), 0
while time.time() < end:
    try: data, addr = s.recvfrom(65535)
    except socket.timeout: continue
    if addr[2] != socket.PACKET_OUTGOING: continue
    kind, ip = struct.unpack("!H", data[12:14])[0], data[14:]
    if kind == 0x0800 and ip[9] == 17: udp = ip[(ip[0] & 15) * 4:]
    elif kind == 0x86DD and ip[6] == 17: udp = ip[40:]
    else: continue
    n += struct.unpack("!H", udp[2:4])[0] == 5353
print(n)
PY
  SNIFFERS+=($!)
}
SNIFFERS=()
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
rss_split() { awk '/RssAnon/{a=$2} /RssFile/{f=$2} END{print a " + " f}' "/proc/$1/status"; }
threads() { awk '/Threads/{print $2}' "/proc/$1/status"; }

init 1 watcher true; init 2 newcomer true; init 3 quiet false
start 1; WATCHER=$LAST
echo "bench/beacon.sh: start-to-seen, $RUNS runs" >&2
seen=()
for run in $(seq "$RUNS"); do
  t0=$(now_ms)
  start 2; NEW=$LAST
  for _ in $(seq 200); do sees 1 newcomer && break; sleep 0.02; done
  sees 1 newcomer || { echo "the newcomer was not seen" >&2; exit 1; }
  seen+=($(( $(now_ms) - t0 )))
  kill "$NEW"; wait "$NEW" 2>/dev/null || true
  for _ in $(seq 100); do sees 1 newcomer || break; sleep 0.05; done
done
start 2; NEW=$LAST
start 3; QUIET=$LAST
# The watcher answered POLLS status requests; the quiet node answers as many, so that
# the HTTP and JSON code both have touched counts in their memory, not only the beacon.
n=$POLLS
for _ in $(seq "$n"); do sees 3 newcomer || true; done
echo "bench/beacon.sh: idle for ${IDLE_SECS}s (after a 10 s settle)" >&2
sleep 10
tx0_on=$(tx_packets 1); tx0_off=$(tx_packets 3)
cpu0_on=$(cpu_ticks "$WATCHER"); cpu0_off=$(cpu_ticks "$QUIET")
if command -v python3 >/dev/null; then count_mdns 1 "$IDLE_SECS"; count_mdns 3 "$IDLE_SECS"; fi
sleep "$IDLE_SECS"
for pid in "${SNIFFERS[@]}"; do wait "$pid" || true; done
tx_on=$(( $(tx_packets 1) - tx0_on )); tx_off=$(( $(tx_packets 3) - tx0_off ))
cpu_on=$(( $(cpu_ticks "$WATCHER") - cpu0_on )); cpu_off=$(( $(cpu_ticks "$QUIET") - cpu0_off ))
hz=$(getconf CLK_TCK)
per_hour() { echo $(( $1 * 3600 / IDLE_SECS )); }
cat <<REPORT
| measurement | beacon on | beacon off |
| --- | --- | --- |
| start to seen by a peer (ms, $RUNS runs) | ${seen[*]} | - |
| idle CPU over ${IDLE_SECS} s (ticks of 1/${hz} s) | $cpu_on | $cpu_off |
| RSS when idle (KiB) | $(rss_kb "$WATCHER") | $(rss_kb "$QUIET") |
| of which anonymous + file-backed (KiB) | $(rss_split "$WATCHER") | $(rss_split "$QUIET") |
| threads | $(threads "$WATCHER") | $(threads "$QUIET") |
| packets sent in ${IDLE_SECS} s (all of the host's eth0) | $tx_on | $tx_off |
| packets sent per hour, extrapolated | $(per_hour "$tx_on") | $(per_hour "$tx_off") |
| of which mDNS (UDP to port 5353), per hour | $(per_hour "$(cat "$TMP/mdns1" 2>/dev/null || echo 0)") | $(per_hour "$(cat "$TMP/mdns3" 2>/dev/null || echo 0)") |
REPORT
