//! `fazt proc status|stop|restart`: the node process running on a data file, found
//! through the data-file lock (see [`crate::proc::lock`]). Offline commands: they read
//! the lock file and `/proc`, and ask the node's health endpoint when it answers.

use super::{human_bytes, DataArg};
use crate::config::NodeConfig;
use crate::proc::{info, lock};
use crate::storage::Storage;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// `fazt proc`.
#[derive(Debug, Args)]
pub struct ProcArgs {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Whether a node runs on the data file: pid, uptime, addresses, version, memory.
    Status {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the node running on the data file (SIGTERM) and wait until it has stopped.
    Stop {
        #[command(flatten)]
        data: DataArg,
        /// How long to wait for it to stop.
        #[arg(long, value_name = "SECONDS", default_value = "10")]
        timeout: u64,
    },
    /// Restart the node: with `systemctl restart` when it runs as a systemd service;
    /// otherwise changes nothing and prints the command to start it again.
    Restart {
        #[command(flatten)]
        data: DataArg,
        /// How long to wait for the new node to hold the data file.
        #[arg(long, value_name = "SECONDS", default_value = "30")]
        timeout: u64,
    },
}

/// Runs `fazt proc …`.
pub fn run(args: ProcArgs) -> anyhow::Result<()> {
    match args.command {
        Sub::Status { data, json } => status(&data.data, json),
        Sub::Stop { data, timeout } => stop(&data.data, Duration::from_secs(timeout)),
        Sub::Restart { data, timeout } => restart(&data.data, Duration::from_secs(timeout)),
    }
}

/// The running node's holder record, or a clear error.
fn running(data: &Path) -> anyhow::Result<lock::Holder> {
    if !data.exists() {
        bail!("no database at {} (pass --data)", data.display());
    }
    match lock::holder(data)? {
        Some(holder) if holder.pid != 0 => Ok(holder),
        Some(_) => bail!(
            "a process holds {} but did not say its pid (an older fazt?); stop it yourself",
            lock::lock_path(data).display()
        ),
        None => bail!("no node is running on {}", data.display()),
    }
}

fn status(data: &Path, json: bool) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("no database at {} (pass --data)", data.display());
    }
    let Some(holder) = lock::holder(data)? else {
        if json {
            println!("{}", serde_json::json!({ "running": false, "data": data.display().to_string() }));
        } else {
            println!("node:     not running ({})", data.display());
        }
        return Ok(());
    };
    let pid = holder.pid;
    let stats = info::stats(pid);
    let uptime = info::uptime_secs(pid);
    let unit = info::systemd_unit(pid);
    let (url, health) = match holder.http {
        Some(addr) => ask_health(data, addr),
        None => (None, None),
    };
    let version = health.as_ref().and_then(|h| h["version"].as_str().map(str::to_string)).or(holder.version);
    let started_at = holder.started_at.map(|s| crate::time::rfc3339(s as i64 * 1000));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "running": true,
                "data": data.display().to_string(),
                "pid": pid,
                "version": version,
                "started_at": started_at,
                "uptime_secs": uptime,
                "http": holder.http.map(|a| a.to_string()),
                "https": holder.https.map(|a| a.to_string()),
                "rss_bytes": stats.map(|s| s.rss_bytes),
                "threads": stats.map(|s| s.threads),
                "systemd_unit": unit,
                "answering": health.is_some(),
                "health_url": url,
            })
        );
        return Ok(());
    }
    let unknown = || "unknown".to_string();
    println!("node:     running, pid {pid}{}", unit.map(|u| format!(" (systemd {u})")).unwrap_or_default());
    println!("data:     {}", data.display());
    println!("version:  {}", version.unwrap_or_else(unknown));
    println!(
        "started:  {}{}",
        started_at.unwrap_or_else(unknown),
        uptime.map(|u| format!(" (up {})", duration(u))).unwrap_or_default()
    );
    if let Some(addr) = holder.http {
        println!("http:     {addr}");
    }
    if let Some(addr) = holder.https {
        println!("https:    {addr}");
    }
    match stats {
        Some(s) => println!("memory:   {} resident, {} threads", human_bytes(s.rss_bytes), s.threads),
        None => println!("memory:   unknown (no /proc/{pid})"),
    }
    println!(
        "answers:  {}",
        match (&url, health.is_some()) {
            (Some(url), true) => format!("yes, {url}"),
            (Some(url), false) => format!("no answer from {url}"),
            (None, _) => "unknown (the node did not record its address; an older fazt?)".into(),
        }
    );
    Ok(())
}

/// `GET /api/system/health` (without credentials) of the node listening on `addr`,
/// under its admin host name; the URL asked and the answer.
fn ask_health(data: &Path, addr: SocketAddr) -> (Option<String>, Option<serde_json::Value>) {
    let domain = Storage::open_readonly(data)
        .ok()
        .and_then(|s| NodeConfig::load(&s).ok())
        .map(|c| c.domain().to_string())
        .unwrap_or_else(|| "localhost".into());
    let connect = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    };
    let server = format!("http://admin.{domain}:{}", addr.port());
    let answer = super::http::Client::at(&server, connect).get_json("/api/system/health").ok();
    (Some(format!("{server}/api/system/health")), answer.filter(|h| h["status"] == "ok"))
}

/// `3d 4h`, `2h 3m`, `5m 10s`, `42s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn stop(data: &Path, timeout: Duration) -> anyhow::Result<()> {
    let holder = running(data)?;
    let pid = holder.pid;
    let started = Instant::now();
    info::terminate(pid).with_context(|| format!("cannot signal the node (pid {pid})"))?;
    while lock::holder(data)?.is_some() {
        if started.elapsed() >= timeout {
            bail!(
                "the node (pid {pid}) still runs {} s after SIGTERM; wait longer (--timeout) or force it with `kill -9 {pid}`",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "stopped the node on {} (pid {pid}) in {:.1} s",
        data.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn restart(data: &Path, timeout: Duration) -> anyhow::Result<()> {
    let holder = running(data)?;
    let pid = holder.pid;
    let Some(unit) = info::systemd_unit(pid) else {
        let how = match (info::cwd(pid), info::cmdline(pid)) {
            (Some(cwd), Some(args)) => format!(
                "cd {} && {}",
                shell_quote(&cwd.display().to_string()),
                args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
            ),
            _ => format!("fazt server start --data {}", shell_quote(&data.display().to_string())),
        };
        bail!(
            "the node (pid {pid}) was not started by systemd, so fazt cannot start it again the way it was started; \
             nothing was changed. Run `fazt proc stop`, then: {how}"
        );
    };
    let started = Instant::now();
    let out = std::process::Command::new("systemctl")
        .args(["restart", &unit])
        .output()
        .context("cannot run systemctl")?;
    if !out.status.success() {
        bail!("systemctl restart {unit} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    loop {
        match lock::holder(data)? {
            Some(new) if new.pid != pid && new.http.is_some() => {
                println!(
                    "restarted {unit}: pid {pid} → {} in {:.1} s",
                    new.pid,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            _ if started.elapsed() >= timeout => {
                bail!(
                    "systemctl restarted {unit}, but no new node holds {} yet; see `journalctl -u {unit}`",
                    data.display()
                )
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `arg` as one word for a POSIX shell.
fn shell_quote(arg: &str) -> String {
    let plain =
        !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./=:@%+,".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_quoting() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(310), "5m 10s");
        assert_eq!(duration(7380), "2h 3m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(shell_quote("/srv/fazt/data.db"), "/srv/fazt/data.db");
        assert_eq!(shell_quote("my dir"), "'my dir'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
