//! `fazt cert add|list|remove|ca`: HTTPS certificates of a running node.

use super::http::Client;
use super::ClientArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `fazt cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    command: Sub,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Serve your own certificate for a domain (replaces an earlier one for it).
    Add {
        /// The domain it is for, e.g. blog.example.com or *.example.com.
        domain: String,
        /// The certificate chain, PEM (leaf first).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key, PEM.
        #[arg(long)]
        key: PathBuf,
    },
    /// List the certificates the node serves.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop serving a custom certificate.
    Remove {
        /// The domain it was added for.
        domain: String,
    },
    /// Download the node's LAN CA certificate (to trust on your devices).
    Ca {
        /// Write it here instead of to standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}

fn read_pem(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not a PEM text file", path.display()))
}

/// Runs `fazt cert …`.
pub fn run(args: CertArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    match args.command {
        Sub::Add { domain, cert, key } => {
            let body = serde_json::json!({
                "domain": domain,
                "cert_pem": read_pem(&cert, "certificate")?,
                "key_pem": read_pem(&key, "key")?,
            });
            let answer = client.post_json("/api/tls/certs", &body)?;
            let c = &answer["cert"];
            println!(
                "serving {} (covers {}; valid until {})",
                c["name"].as_str().unwrap_or(&domain),
                names(c),
                c["not_after"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        Sub::List { json } => {
            let status = client.get_json("/api/tls")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(());
            }
            println!("mode: {}", status["mode"].as_str().unwrap_or("?"));
            if let Some(fp) = status["lan_ca"]["fingerprint_sha256"].as_str() {
                println!("LAN CA sha256: {fp}");
            }
            let certs = status["certs"].as_array().cloned().unwrap_or_default();
            if certs.is_empty() {
                println!("no certificates");
            }
            for c in certs {
                println!(
                    "{:<30} {:<7} until {}  {}",
                    c["name"].as_str().unwrap_or(""),
                    c["source"].as_str().unwrap_or(""),
                    c["not_after"].as_str().unwrap_or(""),
                    names(&c)
                );
                if let Some(line) = ocsp_line(&c["ocsp"]) {
                    println!("{:<30} {line}", "");
                }
            }
            Ok(())
        }
        Sub::Remove { domain } => {
            let path = format!(
                "/api/tls/certs/{}",
                percent_encoding::utf8_percent_encode(&domain, percent_encoding::NON_ALPHANUMERIC)
            );
            client.delete(&path)?;
            println!("removed the custom certificate for {domain}");
            Ok(())
        }
        Sub::Ca { output } => {
            let pem = client.get_text("/api/tls/ca.pem")?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &pem).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {}; trust it on your devices (see docs/https.md)", path.display());
                }
                None => print!("{pem}"),
            }
            Ok(())
        }
    }
}

/// One line on a certificate's OCSP stapling, when its CA runs a responder.
fn ocsp_line(o: &serde_json::Value) -> Option<String> {
    let status = o["status"].as_str()?;
    let detail = match status {
        "good" => match o["valid_until"].as_str() {
            Some(until) => format!("stapled, valid until {until}"),
            None => "not stapled".to_string(),
        },
        "revoked" => format!(
            "REVOKED by the CA at {}: replace this certificate",
            o["revoked_at"].as_str().unwrap_or("?")
        ),
        "pending" => "not asked yet".to_string(),
        _ => format!(
            "{}{}; next try {}",
            o["error"].as_str().unwrap_or("failed"),
            if o["stapled"].as_bool() == Some(true) {
                " (the last good answer is still stapled)"
            } else {
                ""
            },
            o["next_check"].as_str().unwrap_or("?")
        ),
    };
    Some(format!("OCSP {status} ({}): {detail}", o["responder"].as_str().unwrap_or("?")))
}

fn names(c: &serde_json::Value) -> String {
    c["names"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}
