#!/bin/sh
# Installs fazt as a systemd service on a VPS (run as root from the unpacked tarball):
# the binary goes to /usr/local/bin/fazt, `fazt service install` creates the `fazt`
# system user, /var/lib/fazt (where data.db lives) and /etc/systemd/system/fazt.service.
# Re-running it upgrades the binary and keeps the data.
set -eu
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
command -v systemctl >/dev/null || { echo "install.sh: systemd is needed (systemctl not found)" >&2; exit 1; }
./fazt --version >/dev/null 2>&1 || { echo "install.sh: this fazt does not run on $(uname -m)" >&2; exit 1; }
install -m 755 fazt /usr/local/bin/fazt.new && mv /usr/local/bin/fazt.new /usr/local/bin/fazt
/usr/local/bin/fazt service install --binary /usr/local/bin/fazt "$@"
systemctl daemon-reload
if systemctl is-active --quiet fazt; then
  systemctl restart fazt && echo "fazt restarted with the new binary"
else
  echo "start it with: systemctl enable --now fazt   (the admin password: journalctl -u fazt)"
fi
