#!/usr/bin/env bash
# Keystore: signatures per second through a TPM 2.0 (Debian's swtpm, started here on
# loopback) against the software keystore, and the start-up cost of the TPM backend.
# OpenSSL's own P-256 signing speed is printed beside it as the software reference.
# Installs swtpm and libtss2-dev through tests/setup-tpm. Writes bench/results/keystore.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-tpm
state=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
swtpm socket --tpm2 --tpmstate dir="$state" \
  --server type=tcp,port="$port",bindaddr=127.0.0.1 --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
  --flags not-need-init,startup-clear &
swtpm_pid=$!
trap 'kill $swtpm_pid 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
cargo build -q --release -p fazt-hal --features tpm --example keystore_bench
out=bench/results/keystore.md
{
  echo "# keystore benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
  echo
  TSS2_LOG=all+NONE target/release/examples/keystore_bench "swtpm:host=127.0.0.1,port=$port"
  echo
  echo "OpenSSL on the same machine (reference for software P-256 signing):"
  echo
  openssl speed -seconds 3 ecdsap256 2>/dev/null | grep -E "^ *256 bits ecdsa" | awk '{print "    openssl ecdsap256: " $(NF-1) " signatures/s"}'
} | tee "$out"
