//! What Linux says about a running process (`/proc/<pid>/…`), for `fazt proc`.
//! Every reader returns `None` where `/proc` is missing or the process is gone.

use std::path::PathBuf;

/// Memory and threads of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Resident set size, in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Threads (`Threads`).
    pub threads: u64,
}

/// `/proc/<pid>/status` of a live process.
pub fn stats(pid: u32) -> Option<Stats> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_status(text: &str) -> Option<Stats> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(Stats { rss_bytes: field("VmRSS:")? * 1024, threads: field("Threads:")? })
}

/// How long the process has run, in seconds: its start in `/proc/<pid>/stat` against
/// the system's uptime (so a clock step does not change it).
pub fn uptime_secs(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let system: f64 =
        std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let start = start_ticks(&stat)?;
    (ticks > 0).then(|| (system - start as f64 / ticks as f64).max(0.0) as u64)
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The command line a process was started with.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// The folder a process runs in.
pub fn cwd(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// The systemd service a process runs under (`fazt.service`), from its cgroup.
pub fn systemd_unit(pid: u32) -> Option<String> {
    unit_of_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

/// `0::/system.slice/fazt.service` → `fazt.service`; user sessions and scopes are not
/// services systemd can restart.
fn unit_of_cgroup(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        let unit = path.split('/').rev().find(|part| part.ends_with(".service"))?;
        (path.starts_with("/system.slice/") && !unit.starts_with("user@")).then(|| unit.to_string())
    })
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    if pid <= 1 {
        return Err(std::io::Error::other("refusing to signal pid 0 or 1"));
    }
    // SAFETY: kill(2) with a positive pid signals that one process.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_stat_and_cgroup_lines() {
        let status = "Name:\tfazt\nVmRSS:\t   23456 kB\nThreads:\t9\n";
        assert_eq!(parse_status(status), Some(Stats { rss_bytes: 23456 * 1024, threads: 9 }));
        assert_eq!(parse_status("Name:\tx\n"), None);
        let stat = "4242 (fazt (odd) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 9 0 123456 0 0";
        assert_eq!(start_ticks(stat), Some(123456));
        assert_eq!(unit_of_cgroup("0::/system.slice/fazt.service\n").as_deref(), Some("fazt.service"));
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n"),
            None
        );
        assert_eq!(unit_of_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n"), None);
    }

    #[test]
    fn this_process_is_seen() {
        let me = std::process::id();
        let stats = stats(me).unwrap();
        assert!(stats.rss_bytes > 0 && stats.threads >= 1);
        assert!(alive(me));
        assert!(uptime_secs(me).is_some());
        assert!(cmdline(me).is_some());
        assert!(terminate(0).is_err() && terminate(1).is_err());
    }
}
