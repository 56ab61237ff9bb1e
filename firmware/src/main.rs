//! The `fazt` binary: parse the command line, set up logging, run.

use clap::Parser;

fn main() {
    // tpm2-tss prints its own errors to stderr; fazt reports them itself, with advice.
    // Set before any thread starts (setting the environment is only safe then).
    #[cfg(feature = "tpm")]
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            // tss_esapi logs the same errors again through `log`: off unless asked for.
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "info,tss_esapi=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = fazt::cli::run(fazt::cli::Cli::parse()) {
        eprintln!("fazt: {err:#}");
        std::process::exit(fazt::cli::exit_code(&err));
    }
}
