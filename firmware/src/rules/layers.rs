//! The layer rule of docs/architecture.md as a test: a module imports only from its own
//! layer or the layers below it, and the leaf imports no module of fazt at all. It reads
//! every `.rs` file under `firmware/src` and names the file and line of each import that
//! reaches up, whether written as `use crate::net::…`, as a path in an expression
//! (`crate::net::host::route(…)`), in a group (`use crate::{fs, net}`) or through
//! `super::super::net`. Comments and string literals do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may import from its own layer and the ones below;
/// modules of the first layer (the leaf) import no module of fazt. A top-level module
/// missing here fails the test, so a new one has to be placed.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaf: shared names and rules, pure libraries", &["rules", "ids", "mnemonic", "chirp"]),
    ("storage: the database and what is read straight from it", &["storage", "config", "identity"]),
    ("clock", &["time"]),
    ("kernel subsystems", &["fs", "keys", "security", "events"]),
    // Egress is the kernel's one outbound HTTP client for apps: storage, clock, events.
    ("services", &["apps", "beacon", "egress"]),
    // Every operation of a user or an app, over the subsystems and services; the
    // JavaScript runtime above calls them for the apps it runs.
    ("syscalls", &["syscall"]),
    ("app runtime", &["runtime"]),
    // The services of a running node, built once; the server above holds its own state
    // (caches, TLS, HTTP limits) beside them, and the kernel never sees it.
    ("kernel", &["kernel"]),
    ("server", &["net"]),
    ("process", &["proc"]),
    ("command line", &["cli"]),
];

/// The forbidden imports of each top-level module, from [`LAYERS`]: (module, the modules
/// it must not name). The leaf gets every module of fazt.
fn forbidden_table() -> Vec<(&'static str, Vec<&'static str>)> {
    let all: Vec<&str> = LAYERS.iter().flat_map(|(_, mods)| mods.iter().copied()).collect();
    let mut table = Vec::new();
    for (rank, (_, mods)) in LAYERS.iter().enumerate() {
        for &module in *mods {
            let forbidden: Vec<&str> = if rank == 0 {
                all.iter().copied().filter(|m| *m != module).collect()
            } else {
                LAYERS[rank + 1..].iter().flat_map(|(_, above)| above.iter().copied()).collect()
            };
            table.push((module, forbidden));
        }
    }
    table
}

/// A reference from one place in the source to a top-level module of fazt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    /// 1-based line.
    line: usize,
    /// The top-level module named (`net` for `crate::net::host`).
    module: String,
}

/// The code of `source` with comments and the contents of string and char literals
/// blanked out (newlines kept, so line numbers stay right).
fn code_only(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for byte in &mut out[from..to] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    };
    let ident = |i: usize| i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (!ident(i) || (b[i - 1] == b'b' && !ident(i - 1))) && {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            b.get(i + 1 + hashes) == Some(&b'"')
        } {
            // A raw string: r"…", r#"…"#, br"…".
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i = (i + close.len()).min(b.len());
        } else if b[i] == b'"' || (b[i] == b'\'' && is_char_literal(&b[i..])) {
            let quote = b[i];
            i += 1;
            while i < b.len() && b[i] != quote {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else {
            i += 1;
            continue;
        }
        blank(&mut out, start, i);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when `rest` (starting at a `'`) is a char literal, not a lifetime or label.
fn is_char_literal(rest: &[u8]) -> bool {
    match rest.get(1) {
        Some(b'\\') => true,
        Some(_) => {
            // One character (1-4 bytes of UTF-8) and the closing quote.
            let len = std::str::from_utf8(&rest[1..rest.len().min(5)])
                .or_else(|e| std::str::from_utf8(&rest[1..1 + e.valid_up_to()]))
                .ok()
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            rest.get(1 + len) == Some(&b'\'')
        }
        None => false,
    }
}

/// Tokens of code: identifiers, `::`, and single punctuation characters, with lines.
fn tokens(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let mut ident = c.to_string();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                ident.push(c);
                chars.next();
            }
            out.push((line, ident));
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push((line, "::".into()));
        } else if !c.is_whitespace() {
            out.push((line, c.to_string()));
        }
    }
    out
}

/// Every top-level module of fazt that `source` names, for a file whose module path is
/// `module` (`["fs", "site"]` for `fs/site.rs`, `["fs"]` for `fs/mod.rs`). Inline
/// `mod name { … }` blocks count for `super`.
fn references(source: &str, module: &[&str]) -> Vec<Reference> {
    let toks = tokens(&code_only(source));
    let mut out = Vec::new();
    // Inline modules open at a brace depth, for resolving `super`.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let is_path_start = |k: usize| k == 0 || toks[k - 1].1 != "::";
    let mut k = 0;
    while k < toks.len() {
        let (line, tok) = (toks[k].0, toks[k].1.as_str());
        match tok {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            "mod" if toks.get(k + 2).is_some_and(|t| t.1 == "{") => {
                inline.push(depth);
            }
            "crate" if is_path_start(k) && toks.get(k + 1).is_some_and(|t| t.1 == "::") => {
                out.extend(group_heads(&toks, k + 2).into_iter().map(|m| Reference { line, module: m }));
            }
            "super" if is_path_start(k) => {
                let mut ups = 0;
                let mut j = k;
                while toks.get(j).is_some_and(|t| t.1 == "super")
                    && toks.get(j + 1).is_some_and(|t| t.1 == "::")
                {
                    ups += 1;
                    j += 2;
                }
                // The module this code is in: the file's, plus the inline modules open.
                let here = module.len() + inline.len();
                if ups >= here && ups > 0 {
                    // Reaches the crate root: the next name is a top-level module.
                    out.extend(group_heads(&toks, j).into_iter().map(|m| Reference { line, module: m }));
                }
                k = j.max(k + 1);
                continue;
            }
            _ => {}
        }
        k += 1;
    }
    out
}

/// The first names of the path(s) starting at token `k`: `net` for `net::host`,
/// `fs` and `net` for `{fs, net::host}`.
fn group_heads(toks: &[(usize, String)], k: usize) -> Vec<String> {
    let Some((_, first)) = toks.get(k) else { return Vec::new() };
    if first != "{" {
        return vec![first.clone()];
    }
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (_, t) in &toks[k..] {
        match t.as_str() {
            "{" => {
                depth += 1;
                expect_head = depth == 1;
            }
            "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => expect_head = true,
            t if expect_head && depth == 1 => {
                heads.push(t.to_string());
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The module path of a file relative to `src`: `fs/site.rs` is `["fs", "site"]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// Each breach of the rule in `source`, as `file:line: …`.
fn check(file: &str, module: &[&str], source: &str, table: &[(&str, Vec<&str>)]) -> Vec<String> {
    let Some(top) = module.first() else { return Vec::new() };
    let Some((_, forbidden)) = table.iter().find(|(m, _)| m == top) else { return Vec::new() };
    references(source, module)
        .into_iter()
        .filter(|r| forbidden.contains(&r.module.as_str()))
        .map(|r| format!("{file}:{}: `{top}` imports `{}`, a layer above it", r.line, r.module))
        .collect()
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// (file relative to src, module path, source) for every file of the crate.
fn sources() -> Vec<(String, Vec<String>, String)> {
    let src = src_dir();
    rust_files(&src)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap().to_path_buf();
            let source = std::fs::read_to_string(&path).unwrap();
            (format!("firmware/src/{}", relative.display()), module_of(&relative), source)
        })
        .collect()
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let table = forbidden_table();
    let mut breaches = Vec::new();
    for (file, module, source) in sources() {
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        breaches.extend(check(&file, &module, &source, &table));
    }
    assert!(
        breaches.is_empty(),
        "imports from a layer above (see docs/architecture.md):\n{}",
        breaches.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let placed: BTreeSet<&str> = LAYERS.iter().flat_map(|(_, mods)| mods.iter().copied()).collect();
    let mut missing = BTreeSet::new();
    for (_, module, _) in sources() {
        if let Some(top) = module.first().filter(|m| !placed.contains(m.as_str())) {
            missing.insert(top.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "place these modules in LAYERS (rules/layers.rs) and docs/architecture.md: {missing:?}"
    );
}

#[test]
fn no_cycles_between_top_level_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, source) in sources() {
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        let Some(top) = module.first() else { continue };
        let placed = |m: &str| LAYERS.iter().any(|(_, mods)| mods.contains(&m));
        for r in references(&source, &module) {
            if r.module != *top && placed(&r.module) {
                graph.entry(top.to_string()).or_default().insert(r.module);
            }
        }
    }
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            if m == to {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(graph.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut cycles = Vec::new();
    for (a, targets) in &graph {
        for b in targets {
            // Layers rule out cycles across layers; this catches one inside a layer.
            if reaches(b, a) {
                cycles.push(format!("{a} -> {b} -> … -> {a}"));
            }
        }
    }
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_catches_every_way_of_reaching_up() {
    let table = forbidden_table();
    let sample = r##"//! Talks about crate::net in a comment, which is fine.
use crate::storage::Storage;
use crate::net::host;
fn f() {
    let s = "crate::net::host in a string is fine";
    crate::net::host::route(None, s);
}
use crate::{time, cli::client};
mod inner {
    fn g() { super::super::super::kernel::Kernel::new(); super::super::path::x(); }
}
fn h<'a>() { super::super::proc::x(); /* crate::net /* nested */ here */ let c = '"'; crate::net::y(); }
const R: &str = r#"crate::net "quoted" in a raw string"#;
"##;
    let found = check("fs/site.rs", &["fs", "site"], sample, &table);
    let lines: Vec<&str> = found.iter().map(|f| f.split(": ").next().unwrap()).collect();
    assert_eq!(
        lines,
        ["fs/site.rs:3", "fs/site.rs:6", "fs/site.rs:8", "fs/site.rs:10", "fs/site.rs:12", "fs/site.rs:12"],
        "{found:#?}"
    );
    assert!(found[0].contains("`fs` imports `net`"), "{}", found[0]);
    // In `fs/mod.rs`, `super::` is already the crate root.
    let found = check("fs/mod.rs", &["fs"], "use super::net::x;\nuse super::time::Clock;\n", &table);
    assert_eq!(found.len(), 1, "{found:?}");
    // The leaf names no module of fazt, not even the ones below every other layer.
    let found = check(
        "rules/x.rs",
        &["rules", "x"],
        "use crate::storage::Storage;\nuse super::client::ClientKey;\n",
        &table,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    // The kernel sits below the server: it may not name `net` (whose state it once held).
    let found = check(
        "kernel.rs",
        &["kernel"],
        "use crate::net::cache::SiteCache;\nuse crate::runtime::JsRuntime;\n",
        &table,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    // Allowed: a lower layer, its own module, and `super` inside its own module.
    let fine = "use crate::storage::Storage;\nuse crate::fs::path;\nuse super::deploy;\n";
    assert!(check("fs/site.rs", &["fs", "site"], fine, &table).is_empty());
}
