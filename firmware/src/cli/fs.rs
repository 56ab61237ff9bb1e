//! `fazt fs ls APP [PATH]`: the files of an app's current deployment, through the
//! node's API (`GET /api/apps/{app}/files`) or, with `--data`, through the
//! [`crate::syscall::files`] syscall on the data file.

use super::http::{encode, Client};
use super::{human_bytes, ClientArgs};
use crate::storage::Storage;
use crate::syscall::{self, Caller};
use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `fazt fs`.
#[derive(Debug, Args)]
pub struct FsArgs {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// List the files of an app's current deployment (size, content hash, type), like `ls -l`.
    Ls {
        /// App name or id.
        app: String,
        /// A file or folder of the app (default: all of it).
        path: Option<String>,
        /// Read this data file directly instead of asking the node (works with the
        /// node stopped; read-only).
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// One file, as the API's `files` array has it.
#[derive(Debug, Deserialize)]
struct File {
    path: String,
    size: u64,
    hash: String,
    content_type: String,
}

/// Runs `fazt fs …`.
pub fn run(args: FsArgs) -> anyhow::Result<()> {
    match args.command {
        Sub::Ls { app, path, data, json } => ls(&args.client, &app, path.as_deref(), data.as_deref(), json),
    }
}

fn ls(
    client: &ClientArgs,
    app: &str,
    path: Option<&str>,
    data: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let files = match data {
        Some(data) => {
            let storage = Storage::open_readonly(data)?;
            smol::block_on(syscall::files::list(&storage, &Caller::Local, app, path))
                .map_err(|e| anyhow::anyhow!("{e} in {}", data.display()))?
                .into_iter()
                .map(|f| File { path: f.path, size: f.size, hash: f.hash, content_type: f.content_type })
                .collect()
        }
        None => {
            // Checked before anything is asked: `..` and the like never reach the node.
            let prefix = path.map(syscall::files::check_path).transpose()?.unwrap_or_default();
            let answer = Client::from_args(client)?.get_json(&format!("/api/apps/{}/files", encode(app)))?;
            let files: Vec<File> = serde_json::from_value(answer["files"].clone())?;
            let files: Vec<File> = files
                .into_iter()
                .filter(|f| {
                    prefix.is_empty() || f.path == prefix || f.path.starts_with(&format!("{prefix}/"))
                })
                .collect();
            if files.is_empty() && !prefix.is_empty() {
                bail!("no file or folder '{prefix}' in app '{app}'");
            }
            files
        }
    };
    if json {
        let list: Vec<_> = files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "size": f.size, "hash": f.hash, "content_type": f.content_type}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let type_width = files.iter().map(|f| f.content_type.len()).max().unwrap_or(0);
    for f in &files {
        let hash: String = f.hash.chars().take(12).collect();
        println!("{:>10}  {hash:<12}  {:<type_width$}  {}", human_bytes(f.size), f.content_type, f.path);
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    println!("{} file{}, {}", files.len(), if files.len() == 1 { "" } else { "s" }, human_bytes(total));
    Ok(())
}
