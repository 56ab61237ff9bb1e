//! `fazt service install`: a systemd unit and a dedicated system user for VPS installs.

use std::path::Path;

/// What the unit should run.
#[derive(Debug, Clone)]
pub struct UnitOptions {
    /// Absolute path of the fazt binary.
    pub binary: String,
    /// Absolute path of data.db.
    pub data: String,
    /// The system user the node runs as.
    pub user: String,
}

/// The unit file text.
///
/// The node runs unprivileged with only CAP_NET_BIND_SERVICE (so it may listen on port 80),
/// sees the filesystem read-only except its data folder, creates files for its user only
/// (`UMask=0077`: `data.db` holds password hashes and sealed keys), and restarts on
/// failure; a `kill -9` or crash is safe because every deploy is one SQLite transaction.
pub fn unit_file(opts: &UnitOptions) -> String {
    let data_dir = Path::new(&opts.data)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/var/lib/fazt".into());
    format!(
        "# Written by `fazt service install`. Edit with `systemctl edit fazt`.\n\
[Unit]\n\
Description=fazt personal cloud node\n\
After=network-online.target\n\
Wants=network-online.target\n\
\n\
[Service]\n\
Type=simple\n\
User={user}\n\
Group={user}\n\
ExecStart={binary} server start --data {data}\n\
WorkingDirectory={data_dir}\n\
UMask=0077\n\
Restart=on-failure\n\
RestartSec=2s\n\
TimeoutStopSec=10s\n\
Environment=RUST_LOG=info\n\
AmbientCapabilities=CAP_NET_BIND_SERVICE\n\
CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n\
NoNewPrivileges=true\n\
ProtectSystem=strict\n\
ProtectHome=true\n\
PrivateTmp=true\n\
PrivateDevices=true\n\
ReadWritePaths={data_dir}\n\
LimitNOFILE=65536\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n",
        user = opts.user,
        binary = opts.binary,
        data = opts.data,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_runs_the_binary_on_the_data_file_as_the_user() {
        let unit = unit_file(&UnitOptions {
            binary: "/usr/local/bin/fazt".into(),
            data: "/var/lib/fazt/data.db".into(),
            user: "fazt".into(),
        });
        assert!(unit.contains("ExecStart=/usr/local/bin/fazt server start --data /var/lib/fazt/data.db\n"));
        assert!(unit.contains("User=fazt\n"));
        assert!(unit.contains("ReadWritePaths=/var/lib/fazt\n"));
        // See: issue 17 (the unit had no UMask, so files the node made were 0644).
        assert!(unit.contains("\nUMask=0077\n"), "{unit}");
        assert!(unit.contains("WantedBy=multi-user.target"));
    }
}
