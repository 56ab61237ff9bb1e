//! The `fazt` binary: parse the command line, set up logging, run.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = fazt::cli::run(fazt::cli::Cli::parse()) {
        eprintln!("fazt: {err:#}");
        std::process::exit(fazt::cli::exit_code(&err));
    }
}
