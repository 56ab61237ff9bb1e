//! `fazt mnemonic`: bytes to BIP-39 words and back, for data passed on by people.
//!
//! A thin layer over [`crate::mnemonic`]: it reads the input, calls the library and
//! prints. Works offline, with no node and no database.
//!
//! Input and output are bytes, exactly: `echo` adds a newline, so use `echo -n` or
//! `printf` to encode text. `decode` writes raw bytes when its output goes to a pipe or
//! a file; on a terminal it shows text as text and anything else as hex, so binary
//! never garbles the screen (`--format` chooses explicitly).

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use base64::Engine;

use crate::mnemonic::{self, Decoded, Options, MAX_PAYLOAD, MAX_PHRASE_BYTES};

/// Arguments of `fazt mnemonic`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "16 and 32 bytes give standard 12- and 24-word BIP-39 \
    phrases (20, 24 and 28 bytes give 15, 18 and 21 words); 64 bytes give 48 words by the same \
    rule; other lengths use fazt framing, which keeps the exact length. The words are not \
    encrypted: encrypt secrets first.")]
pub struct MnemonicArgs {
    #[command(subcommand)]
    command: Command,
}

/// The `fazt mnemonic` subcommands.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the words for some bytes (stdin, --file, --hex or --base64)
    Encode(EncodeArgs),
    /// Print the bytes a phrase stands for
    Decode(DecodeArgs),
    /// Say whether a phrase is valid, or exactly what is wrong with it
    Validate(PhraseArgs),
}

/// Arguments of `fazt mnemonic encode`.
#[derive(Debug, clap::Args)]
struct EncodeArgs {
    /// Read the bytes from this file instead of stdin
    #[arg(long, value_name = "FILE", group = "input")]
    file: Option<PathBuf>,
    /// Encode these bytes, given in hex (spaces and a 0x prefix are ignored)
    #[arg(long, value_name = "HEX", group = "input")]
    hex: Option<String>,
    /// Encode these bytes, given in base64 (standard or URL-safe, padding optional)
    #[arg(long, value_name = "BASE64", group = "input")]
    base64: Option<String>,
    /// Print one numbered word per line, for writing down
    #[arg(long)]
    numbered: bool,
}

/// Arguments shared by `decode` and `validate`: where the words come from.
#[derive(Debug, clap::Args)]
struct PhraseArgs {
    /// The words, quoted or not; read from stdin when absent
    #[arg(value_name = "WORDS")]
    words: Vec<OsString>,
    /// Replace each misspelled word by the one list word a single slip away, if the
    /// checksum then confirms it; corrections are listed on stderr
    #[arg(long)]
    fuzzy: bool,
}

/// Arguments of `fazt mnemonic decode`.
#[derive(Debug, clap::Args)]
struct DecodeArgs {
    #[command(flatten)]
    phrase: PhraseArgs,
    /// Write the bytes to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// How to write the bytes [default: raw, or on a terminal: text if printable, else hex]
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
}

/// How `decode` writes the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// The bytes themselves
    Raw,
    /// Lowercase hex and a newline
    Hex,
    /// Standard base64 with padding and a newline
    Base64,
}

/// Runs `fazt mnemonic`.
pub fn run(args: MnemonicArgs) -> anyhow::Result<()> {
    match args.command {
        Command::Encode(args) => encode(args),
        Command::Decode(args) => decode(args),
        Command::Validate(args) => validate(args),
    }
}

fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    let payload = if let Some(text) = &args.hex {
        parse_hex(text)?
    } else if let Some(text) = &args.base64 {
        parse_base64(text)?
    } else if let Some(path) = &args.file {
        let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        read_payload(file, &path.display().to_string())?
    } else {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!("no input: pipe the bytes in (e.g. printf 'text' | fazt mnemonic encode), or use --file, --hex or --base64");
        }
        read_payload(stdin.lock(), "stdin")?
    };
    let phrase = mnemonic::encode(&payload)?;
    let mut out = String::new();
    if args.numbered {
        for (i, word) in phrase.split(' ').enumerate() {
            out.push_str(&format!("{:>2}. {word}\n", i + 1));
        }
    } else {
        out = phrase + "\n";
    }
    write_stdout(out.as_bytes())
}

fn decode(args: DecodeArgs) -> anyhow::Result<()> {
    let decoded = read_and_decode(&args.phrase)?;
    report_corrections(&decoded);
    let bytes = &decoded.bytes;
    match &args.output {
        Some(path) => {
            let out = render(args.format.unwrap_or(OutputFormat::Raw), bytes);
            std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(())
        }
        None => {
            let terminal = std::io::stdout().is_terminal();
            let out = match args.format {
                Some(format) => render(format, bytes),
                None if terminal => for_terminal(bytes),
                None => bytes.clone(),
            };
            write_stdout(&out)
        }
    }
}

fn validate(args: PhraseArgs) -> anyhow::Result<()> {
    let decoded = read_and_decode(&args)?;
    report_corrections(&decoded);
    let fixed = if decoded.corrections.is_empty() {
        String::new()
    } else {
        format!(" after {} correction(s)", decoded.corrections.len())
    };
    let line =
        format!("valid{fixed}: {} words, {}, {} bytes\n", decoded.words, decoded.format, decoded.bytes.len());
    write_stdout(line.as_bytes())
}

/// Reads the phrase from the arguments or stdin and decodes it.
fn read_and_decode(args: &PhraseArgs) -> anyhow::Result<Decoded> {
    let options = Options { fuzzy: args.fuzzy };
    let text: Vec<u8> = if args.words.is_empty() {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!("no words: give the phrase as arguments (quoted or not), or pipe it in");
        }
        let mut text = Vec::new();
        // One byte past the limit is enough for the library to refuse oversized input
        // without us reading all of it.
        stdin.lock().take(MAX_PHRASE_BYTES as u64 + 1).read_to_end(&mut text).context("cannot read stdin")?;
        text
    } else {
        // Arguments may not be UTF-8 (Unix allows any bytes); the library reports that.
        let words: Vec<&[u8]> = args.words.iter().map(|w| w.as_encoded_bytes()).collect();
        words.join(&b' ')
    };
    Ok(mnemonic::decode_bytes(&text, options)?)
}

/// Tells, on stderr, which words fuzzy decoding replaced: the person should know their
/// copy has mistakes.
fn report_corrections(decoded: &Decoded) {
    for correction in &decoded.corrections {
        eprintln!("fazt: corrected {correction} (the checksum confirms it)");
    }
}

/// Reads at most one byte more than a phrase can carry, to tell "too long" without
/// reading a huge input.
fn read_payload(reader: impl Read, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut payload = Vec::new();
    reader
        .take(MAX_PAYLOAD as u64 + 1)
        .read_to_end(&mut payload)
        .with_context(|| format!("cannot read {name}"))?;
    if payload.len() > MAX_PAYLOAD {
        bail!(
            "{name} has more than the {MAX_PAYLOAD} bytes a phrase can carry: encrypt the \
             data and share the key as a phrase, or split it"
        );
    }
    Ok(payload)
}

fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.split_whitespace().collect();
    let digits = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")).unwrap_or(&digits);
    hex::decode(digits)
        .map_err(|err| anyhow::anyhow!("--hex is not hex ({err}): give two hex digits per byte, e.g. 00ff"))
}

fn parse_base64(text: &str) -> anyhow::Result<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    let config =
        general_purpose::GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    let text = text.trim();
    standard
        .decode(text)
        .or_else(|_| url_safe.decode(text))
        .map_err(|err| anyhow::anyhow!("--base64 is not base64 ({err})"))
}

fn render(format: OutputFormat, bytes: &[u8]) -> Vec<u8> {
    match format {
        OutputFormat::Raw => bytes.to_vec(),
        OutputFormat::Hex => format!("{}\n", hex::encode(bytes)).into_bytes(),
        OutputFormat::Base64 => {
            format!("{}\n", base64::engine::general_purpose::STANDARD.encode(bytes)).into_bytes()
        }
    }
}

/// What a terminal shows: printable text as is (with a final newline so the prompt
/// does not stick to it), anything else as hex.
fn for_terminal(bytes: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
            let mut out = text.as_bytes().to_vec();
            if !text.ends_with('\n') {
                out.push(b'\n');
            }
            out
        }
        _ => render(OutputFormat::Hex, bytes),
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminals_get_text_as_text_and_binary_as_hex() {
        assert_eq!(for_terminal(b"secret data"), b"secret data\n");
        assert_eq!(for_terminal(b"two\nlines\n"), b"two\nlines\n");
        assert_eq!(for_terminal(&[0, 1, 0xff]), b"0001ff\n");
        assert_eq!(for_terminal(b"\x1b[2J"), b"1b5b324a\n");
    }

    #[test]
    fn hex_and_base64_arguments_are_read_leniently() {
        assert_eq!(parse_hex("0x00 ff").unwrap(), [0, 0xff]);
        assert!(parse_hex("0g").is_err());
        assert_eq!(parse_base64("AP8=").unwrap(), [0, 0xff]);
        assert_eq!(parse_base64("AP8").unwrap(), [0, 0xff]);
        assert_eq!(parse_base64("-_8").unwrap(), [0xfb, 0xff]);
        assert!(parse_base64("*").is_err());
    }
}
