//! `fazt hal`: what hardware this node sees.

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
}

#[derive(Debug, clap::Subcommand)]
enum AudioCommand {
    /// List the sound devices live audio can use.
    List,
}

/// Runs `fazt hal`.
pub fn run(args: HalArgs) -> anyhow::Result<()> {
    match args.command {
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
