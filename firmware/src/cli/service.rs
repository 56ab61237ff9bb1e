//! `fazt service install`: run fazt under systemd on a VPS.

use crate::proc::service::{unit_file, UnitOptions};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::Command;

/// `fazt service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Write a systemd unit and create the system user it runs as.
    Install {
        /// Database path the service uses.
        #[arg(long, default_value = "/var/lib/fazt/data.db")]
        data: PathBuf,
        /// System user to run as.
        #[arg(long, default_value = "fazt")]
        user: String,
        /// The binary to run (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Where unit files go.
        #[arg(long, default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
        /// Do not create the user (it exists, or is managed elsewhere).
        #[arg(long)]
        no_create_user: bool,
        /// Print the unit and the steps, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs `fazt service …`.
pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let Sub::Install { data, user, binary, unit_dir, no_create_user, dry_run } = args.command;
    if !crate::rules::names::is_dns_label(&user) {
        bail!("invalid user name '{user}'");
    }
    let binary = match binary {
        Some(b) => b,
        None => std::env::current_exe().context("finding this binary")?,
    };
    if !binary.is_absolute() || !data.is_absolute() {
        bail!("--binary and --data must be absolute paths (systemd needs them)");
    }
    let unit = unit_file(&UnitOptions {
        binary: binary.display().to_string(),
        data: data.display().to_string(),
        user: user.clone(),
    });
    let unit_path = unit_dir.join("fazt.service");
    let data_dir = data.parent().context("--data has no folder")?.to_path_buf();
    if dry_run {
        println!("# would write {}:", unit_path.display());
        print!("{unit}");
        if !no_create_user {
            println!(
                "# would run: useradd --system --home-dir {} --shell /usr/sbin/nologin {user}",
                data_dir.display()
            );
        }
        println!("# would create {} owned by {user}, mode 0700", data_dir.display());
        return Ok(());
    }
    if !no_create_user {
        let exists =
            Command::new("id").arg("-u").arg(&user).output().map(|o| o.status.success()).unwrap_or(false);
        if !exists {
            let status = Command::new("useradd")
                .args(["--system", "--home-dir"])
                .arg(&data_dir)
                .args(["--shell", "/usr/sbin/nologin", &user])
                .status()
                .context("running useradd (are you root?)")?;
            if !status.success() {
                bail!("useradd failed for '{user}'");
            }
        }
    }
    // Owner-only when we make it: data.db, its backups and machine.key live there.
    if !data_dir.exists() {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
    }
    if !no_create_user {
        let status = Command::new("chown").arg(format!("{user}:{user}")).arg(&data_dir).status()?;
        if !status.success() {
            bail!("chown of {} failed", data_dir.display());
        }
    }
    std::fs::create_dir_all(&unit_dir)?;
    std::fs::write(&unit_path, unit)
        .with_context(|| format!("writing {} (are you root?)", unit_path.display()))?;
    println!("wrote {}", unit_path.display());
    println!("next: systemctl daemon-reload && systemctl enable --now fazt && journalctl -u fazt -f");
    Ok(())
}
