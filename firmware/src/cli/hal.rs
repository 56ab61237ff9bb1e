//! `fazt hal`: what hardware this node sees.

use crate::config::Setting;
use fazt_hal::audio;

/// Arguments of `fazt hal`.
#[derive(Debug, clap::Args)]
pub struct HalArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Sound devices.
    Audio {
        #[command(subcommand)]
        command: AudioCommand,
    },
    /// The TPM 2.0 that can hold the node's keys.
    Tpm {
        #[command(subcommand)]
        command: TpmCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum TpmCommand {
    /// Whether a TPM is there, what it is, and which of the node's keys it holds.
    Status {
        /// How to reach the TPM (default: keys.tpm_tcti of the node, else
        /// device:/dev/tpmrm0).
        #[arg(long)]
        tcti: Option<String>,
        #[command(flatten)]
        data: super::DataArg,
    },
}

#[derive(Debug, clap::Subcommand)]
enum AudioCommand {
    /// List the sound devices live audio can use.
    List,
}

/// Runs `fazt hal`.
pub fn run(args: HalArgs) -> anyhow::Result<()> {
    match args.command {
        Command::Tpm { command: TpmCommand::Status { tcti, data } } => tpm_status(tcti, &data.data),
        Command::Audio { command: AudioCommand::List } => {
            let devices = audio::devices()?;
            if devices.is_empty() {
                println!("no sound devices found");
            }
            for d in devices {
                let dir = match (d.input, d.output) {
                    (true, true) => "in/out",
                    (true, false) => "in",
                    (false, true) => "out",
                    (false, false) => "-",
                };
                println!("{:<6} {}{}", dir, d.name, if d.default { " (default)" } else { "" });
            }
            Ok(())
        }
    }
}

fn tpm_status(tcti: Option<String>, data: &std::path::Path) -> anyhow::Result<()> {
    let storage = data.exists().then(|| crate::storage::Storage::open_readonly(data)).transpose()?;
    let configured = match &storage {
        Some(s) => Some(crate::config::NodeConfig::load(s)?),
        None => None,
    };
    let tcti = tcti.unwrap_or_else(|| match &configured {
        Some(c) => c.get(Setting::KeysTpmTcti).to_string(),
        None => "device:/dev/tpmrm0".to_string(),
    });
    if let Some(config) = &configured {
        println!("keys.backend:  {}", config.get(Setting::KeysBackend));
    }
    println!("tcti:          {tcti}");
    tpm_probe(&tcti)?;
    if let Some(storage) = &storage {
        let held: Vec<_> = crate::keys::list::list(storage)?
            .into_iter()
            .filter(|e| e.tpm && !e.name.contains('@'))
            .collect();
        if held.is_empty() {
            println!("held:          none (the node keeps its keys in software)");
        }
        for e in held {
            println!("held:          {}: {}", e.label(), e.held);
        }
    }
    Ok(())
}

fn tpm_probe(tcti: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let tpm = fazt_hal::keystore::tpm::Tpm::connect_shared(tcti)?;
    let info = tpm.info();
    println!("present:       yes");
    println!("vendor:        {}", info.vendor);
    println!("manufacturer:  {}", info.manufacturer);
    println!("firmware:      {}", info.firmware);
    println!("spec revision: {}", info.revision);
    println!("connect:       {} ms (with the storage key)", started.elapsed().as_millis());
    Ok(())
}
