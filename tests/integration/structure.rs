//! The module structure as a contract, read from the sources: the layers of
//! the README's module map hold (nothing below the daemon and the commands
//! imports them; the pipeline imports no output module), no function that
//! other modules may call returns `Result<_, String>`, and every file
//! replacement goes through the one atomic-write routine.

use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &mut out);
    assert!(out.len() > 40, "found only {} source files", out.len());
    out.into_iter()
        .map(|(p, t)| (p.strip_prefix(&root).unwrap().to_path_buf(), t))
        .collect()
}

/// The text of a file without its `#[cfg(test)] mod tests { ... }` (tests
/// may reach anywhere) and without comments.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]\nmod tests {") {
        out.push_str(&rest[..at]);
        let body = &rest[at..];
        let open = body.find('{').unwrap();
        rest = &body[open + matching_brace(&body[open..])..];
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The length up to and including the brace that closes the one `text`
/// starts with, skipping braces in strings, raw strings, characters and
/// comments.
fn matching_brace(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && !b[i.saturating_sub(1)].is_ascii_alphanumeric() =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let start = i + 2 + hashes;
                i = start + text[start..].find(&close).unwrap() + close.len() - 1;
            }
            b'"' => {
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while b[i] != b'\'' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced braces");
}

fn in_layer(path: &Path, prefixes: &[&str]) -> bool {
    let p = path.to_string_lossy();
    prefixes.iter().any(|pre| p == *pre || p.starts_with(pre))
}

#[test]
fn nothing_below_the_daemon_and_the_commands_imports_them() {
    let top = ["main.rs", "cli.rs", "lib.rs", "daemon.rs", "commands/"];
    let mut offenders = Vec::new();
    for (path, text) in sources() {
        if in_layer(&path, &top) {
            continue;
        }
        let code = code(&text);
        for needle in [
            "crate::daemon",
            "crate::commands",
            "crate::app",
            "crate::cli",
        ] {
            if code.contains(needle) {
                offenders.push(format!("{} uses {needle}", path.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn the_pipeline_and_the_model_import_no_output_module() {
    let outputs = [
        "crate::metrics",
        "crate::store",
        "crate::alert",
        "crate::http",
        "crate::export",
        "crate::paths",
        "crate::scheduler",
    ];
    for (path, text) in sources() {
        if !in_layer(
            &path,
            &["pipeline.rs", "model.rs", "units.rs", "atomic_file.rs"],
        ) {
            continue;
        }
        let code = code(&text);
        for needle in outputs {
            assert!(!code.contains(needle), "{} uses {needle}", path.display());
        }
    }
}

#[test]
fn no_function_other_modules_call_returns_a_string_error() {
    let mut offenders = Vec::new();
    for (path, text) in sources() {
        let code = code(&text);
        // Each `pub` or `pub(crate)` function signature, up to its body or `;`.
        for (at, _) in code.match_indices("fn ") {
            let before = &code[..at];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let prefix = before[line_start..].trim_start();
            if !(prefix.starts_with("pub ") || prefix.starts_with("pub(crate) ")) {
                continue;
            }
            let rest = &code[at..];
            let end = rest.find(['{', ';']).unwrap_or(rest.len());
            let signature: String = rest[..end].split_whitespace().collect();
            if signature.contains("Result<") && signature.ends_with(",String>") {
                offenders.push(format!("{}: {signature}", path.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn files_are_replaced_only_by_the_atomic_write_routine() {
    // Renames elsewhere only move a damaged or refused file aside.
    let allowed_move_aside = ["state_dir/mod.rs"];
    for (path, text) in sources() {
        let code = code(&text);
        if path == Path::new("atomic_file.rs") {
            assert!(code.contains("sync_all"), "the routine flushes");
            continue;
        }
        if code.contains("fs::rename(") {
            assert!(
                in_layer(&path, &allowed_move_aside),
                "{} renames a file itself instead of using atomic_file",
                path.display()
            );
        }
    }
}
