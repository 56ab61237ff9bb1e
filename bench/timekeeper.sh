#!/usr/bin/env bash
# The timekeeper against the true time and against chrony, on a private virtual LAN of
# network namespaces: convergence time and error with 1, 3 and 10 peers and with a liar,
# then packets per hour and idle CPU. Needs root; installs chrony and ntpdig through
# tests/setup. See bench/timekeeper.py for what is measured and how.
#   FAZT_BIN (default target/release/fazt), IDLE_SECS (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup
exec python3 bench/timekeeper.py
