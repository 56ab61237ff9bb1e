//! `fazt mnemonic encode|decode|validate`, run as a user would: the real binary, real
//! stdin, stdout, stderr, files and exit codes. No node or database is needed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The 16 zero bytes of the first official BIP-39 vector, and its phrase.
const ZEROS_16: &str = "00000000000000000000000000000000";
const ZEROS_16_WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                              abandon abandon abandon about";

/// Runs `fazt mnemonic ARGS` with `stdin` piped in.
fn fazt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fazt"))
        .arg("mnemonic")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fazt starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The binary may stop reading early (input too large); a broken pipe is fine then.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("fazt runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts a failure: a non-zero exit, nothing on stdout, one line on stderr; returns it.
fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure: {output:?}");
    assert!(output.stdout.is_empty(), "stdout: {:?}", stdout(output));
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "stderr: {err:?}");
    err.trim_end().to_owned()
}

/// Asserts success and returns stdout.
fn success(output: &Output) -> String {
    assert!(output.status.success(), "expected success: {output:?}");
    stdout(output)
}

/// A path in the temp dir unique to this run and test.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fazt-e2e-mnemonic-{}-{name}", std::process::id()))
}

#[test]
fn encode_hex_gives_the_standard_bip39_phrase() {
    let out = success(&fazt(&["encode", "--hex", ZEROS_16], b""));
    assert_eq!(out, format!("{ZEROS_16_WORDS}\n"));
}

#[test]
fn decode_gives_the_exact_bytes_back_for_every_kind_of_length() {
    for len in [1, 5, 15, 16, 20, 33, 63, 64] {
        // Bytes a text pipeline would mangle: zeros, newlines, non-UTF-8.
        let payload: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
        let words = success(&fazt(&["encode"], &payload));
        let words = words.trim_end();
        let decoded = fazt(&["decode", words], b"");
        assert_eq!(decoded.stdout, payload, "{len} bytes: {words}");
        assert!(decoded.status.success());
        assert!(decoded.stderr.is_empty());
    }
}

#[test]
fn encode_text_from_stdin_and_decode_it_from_stdin() {
    let words = success(&fazt(&["encode"], b"secret data"));
    assert_eq!(words.split_whitespace().count(), 10);
    let decoded = success(&fazt(&["decode"], words.as_bytes()));
    assert_eq!(decoded, "secret data");
}

#[test]
fn words_may_be_separate_arguments_and_written_sloppily() {
    let mut args = vec!["decode", "--format", "hex"];
    let shouted = ZEROS_16_WORDS.to_uppercase();
    args.extend(shouted.split(' '));
    assert_eq!(success(&fazt(&args, b"")), format!("{ZEROS_16}\n"));
    let abbreviated = "aban aban aban aban aban aban aban aban aban aban aban abou";
    let out = success(&fazt(&["decode", "--format", "hex", abbreviated], b""));
    assert_eq!(out, format!("{ZEROS_16}\n"));
}

#[test]
fn numbered_output_decodes_as_written() {
    let numbered = success(&fazt(&["encode", "--numbered", "--hex", ZEROS_16], b""));
    assert_eq!(numbered.lines().count(), 12);
    assert!(numbered.starts_with(" 1. abandon\n"));
    assert!(numbered.ends_with("12. about\n"));
    let out = success(&fazt(&["decode", "--format", "base64"], numbered.as_bytes()));
    assert_eq!(out, "AAAAAAAAAAAAAAAAAAAAAA==\n");
}

#[test]
fn file_in_and_file_out() {
    let input = temp_path("in");
    let output = temp_path("out");
    let payload = b"{\"id\":\"node-7\",\"k\":\"\x00\xff\"}";
    std::fs::write(&input, payload).unwrap();
    let words = success(&fazt(&["encode", "--file", input.to_str().unwrap()], b""));
    let out = fazt(&["decode", "--output", output.to_str().unwrap(), words.trim_end()], b"");
    assert!(success(&out).is_empty(), "nothing on stdout with --output");
    assert_eq!(std::fs::read(&output).unwrap(), payload);
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(output);
}

#[test]
fn base64_input_and_output() {
    let words = success(&fazt(&["encode", "--base64", "aGVsbG8"], b""));
    let out = success(&fazt(&["decode", "--format", "base64", words.trim_end()], b""));
    assert_eq!(out, "aGVsbG8=\n");
}

#[test]
fn unknown_word_is_named_with_a_suggestion() {
    let err = failure(&fazt(&["decode", "river castle mxon bright"], b""));
    assert_eq!(err, "fazt: unknown word 'mxon' at position 3, did you mean 'moon'?");
    let err = failure(&fazt(&["validate", "river castle mxon bright"], b""));
    assert!(err.contains("did you mean 'moon'?"), "{err}");
}

#[test]
fn fuzzy_corrects_a_slip_and_says_so() {
    let typo = ZEROS_16_WORDS.replace("about", "abuot");
    let strict = failure(&fazt(&["decode", &typo], b""));
    assert!(strict.contains("unknown word 'abuot' at position 12"), "{strict}");
    let out = fazt(&["decode", "--fuzzy", "--format", "hex", &typo], b"");
    assert_eq!(success(&out), format!("{ZEROS_16}\n"));
    assert_eq!(stderr(&out), "fazt: corrected word 12 'abuot' to 'about' (the checksum confirms it)\n");
    let out = success(&fazt(&["validate", "--fuzzy", &typo], b""));
    assert_eq!(out, "valid after 1 correction(s): 12 words, standard BIP-39, 16 bytes\n");
}

#[test]
fn checksum_and_word_count_errors_never_give_bytes() {
    let wrong = ZEROS_16_WORDS.replace("about", "zoo");
    let err = failure(&fazt(&["decode", &wrong], b""));
    assert!(err.starts_with("fazt: checksum mismatch"), "{err}");
    let err = failure(&fazt(&["decode", "--fuzzy", "river castle moon"], b""));
    assert!(err.starts_with("fazt: got 3 words"), "{err}");
    let err = failure(&fazt(&["decode", &"zoo ".repeat(49)], b""));
    assert_eq!(err, "fazt: got 49 words, more than the 48 a phrase can have");
}

#[test]
fn validate_names_the_format() {
    let out = success(&fazt(&["validate", ZEROS_16_WORDS], b""));
    assert_eq!(out, "valid: 12 words, standard BIP-39, 16 bytes\n");
    let words = success(&fazt(&["encode", "--hex", "0102030405"], b""));
    let out = success(&fazt(&["validate", words.trim_end()], b""));
    assert_eq!(out, "valid: 5 words, fazt framed, 5 bytes\n");
    let words = success(&fazt(&["encode", "--hex", &"ab".repeat(64)], b""));
    let out = success(&fazt(&["validate", words.trim_end()], b""));
    assert_eq!(out, "valid: 48 words, standard BIP-39, 64 bytes\n");
}

#[test]
fn too_much_or_no_data_to_encode_is_refused() {
    let err = failure(&fazt(&["encode"], &[7; 65]));
    assert!(err.contains("stdin has more than the 64 bytes"), "{err}");
    let err = failure(&fazt(&["encode", "--hex", &"00".repeat(65)], b""));
    assert!(err.contains("65 bytes, more than the 64"), "{err}");
    let err = failure(&fazt(&["encode"], b""));
    assert!(err.contains("nothing to encode"), "{err}");
    let err = failure(&fazt(&["encode", "--hex", "0g"], b""));
    assert!(err.starts_with("fazt: --hex is not hex"), "{err}");
    let err = failure(&fazt(&["encode", "--base64", "***"], b""));
    assert!(err.starts_with("fazt: --base64 is not base64"), "{err}");
    let err = failure(&fazt(&["encode", "--file", "/nonexistent/fazt-e2e"], b""));
    assert!(err.starts_with("fazt: cannot read /nonexistent/fazt-e2e"), "{err}");
}

#[test]
fn two_inputs_at_once_is_a_usage_error() {
    let out = fazt(&["encode", "--hex", "00", "--base64", "AA=="], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
}

#[test]
fn garbage_on_stdin_is_an_error_not_a_crash() {
    let err = failure(&fazt(&["decode"], &[0xff, 0xfe, b' ', 0x80]));
    assert!(err.contains("not valid UTF-8"), "{err}");
    let huge = vec![b'a'; 10 << 20];
    let err = failure(&fazt(&["decode"], &huge));
    assert!(err.contains("phrase text is 4097 bytes"), "{err}");
    let err = failure(&fazt(&["decode"], b"\n \n"));
    assert!(err.contains("no words found"), "{err}");
    let err = failure(&fazt(&["validate", "\u{1b}[31mred"], b""));
    assert!(err.contains("'\\u{1b}[31mred'"), "escape sequences are escaped: {err}");
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_an_error_not_a_crash() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_fazt"))
        .args(["mnemonic", "decode"])
        .arg(OsStr::from_bytes(b"zoo \xff"))
        .stdin(Stdio::null())
        .output()
        .expect("fazt runs");
    let err = failure(&out);
    assert!(err.contains("not valid UTF-8 text (bad byte at offset 4)"), "{err}");
}
