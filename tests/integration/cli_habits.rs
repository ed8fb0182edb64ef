//! What a command line is expected to do besides its commands: bare
//! `transitwatch` prints the help; `completions SHELL` writes scripts the
//! shells themselves accept; `man` writes pages that `man` renders, one per
//! command; `-q` and `-v` move the log level (and `TRANSITWATCH_LOG` wins
//! over them).

use crate::support::{self, bin, have_all, text};

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("TRANSITWATCH_LOG")
        .output()
        .expect("run transitwatch")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn bare_transitwatch_prints_the_help_as_a_usage_error() {
    let out = run(&[]);
    // As clap does for a missing subcommand: the help on stderr, exit 2.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "Usage: transitwatch",
        "Commands:",
        "trace",
        "completions",
        "--verbose",
        "--quiet",
    ] {
        assert!(help.contains(needle), "`{needle}` missing: {help}");
    }
    // The same text `--help` prints on stdout.
    let asked = stdout(&run(&["--help"]));
    assert_eq!(asked.trim(), help.trim());
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    let dir = tempfile::tempdir().unwrap();
    let bash = stdout(&run(&["completions", "bash"]));
    assert!(bash.contains("check-config") && bash.contains("--max-ttl"));
    let path = dir.path().join("transitwatch.bash");
    std::fs::write(&path, &bash).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(out.status.success(), "bash -n: {}", text(&out));
    // Loaded, it completes the subcommands.
    let probe = format!(
        "source '{}'; COMP_WORDS=(transitwatch tr); COMP_CWORD=1; _transitwatch transitwatch tr transitwatch; echo \"${{COMPREPLY[*]}}\"",
        path.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "trace",
        "{}",
        text(&out)
    );

    let test = "completion_scripts_parse_in_their_shells";
    if have_all(test, &["zsh", "fish"]) {
        for (shell, check) in [
            ("zsh", vec!["zsh", "-n"]),
            ("fish", vec!["fish", "--no-execute"]),
        ] {
            let script = stdout(&run(&["completions", shell]));
            let path = dir.path().join(format!("transitwatch.{shell}"));
            std::fs::write(&path, &script).unwrap();
            let out = Command::new(check[0])
                .args(&check[1..])
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}: {}", text(&out));
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `man -l FILE` as plain text, with groff's warnings on its stderr.
fn render(page: &std::path::Path) -> (String, String) {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MANROFFOPT", "-ww")
        .env_remove("MANPAGER")
        .env("PAGER", "cat")
        .output()
        .expect("run man");
    assert!(
        out.status.success(),
        "man -l {}: {}",
        page.display(),
        text(&out)
    );
    (
        plain(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Text without the terminal's overstrikes (`X\bX` bold, `_\bX` underline).
fn plain(shown: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(shown.len());
    for c in shown.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

#[test]
fn man_pages_render_one_per_command() {
    let test = "man_pages_render_one_per_command";
    if !have_all(test, &["man", "groff"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("stdout.1");
    std::fs::write(&page, stdout(&run(&["man"]))).unwrap();
    let (shown, warnings) = render(&page);
    for needle in [
        "NAME",
        "SYNOPSIS",
        "transitwatch",
        "SUBCOMMANDS",
        "check-config",
    ] {
        assert!(shown.contains(needle), "`{needle}` missing: {shown}");
    }
    assert!(warnings.trim().is_empty(), "groff warns: {warnings}");

    let pages = dir.path().join("man1");
    let out = run(&["man", "--dir", pages.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let trace = pages.join("transitwatch-trace.1");
    assert!(pages.join("transitwatch.1").is_file());
    assert!(pages.join("transitwatch-geo-lookup.1").is_file());
    let (shown, warnings) = render(&trace);
    assert!(shown.contains("--max-ttl"), "{shown}");
    assert!(warnings.trim().is_empty(), "groff warns: {warnings}");
}

#[test]
fn verbose_and_quiet_move_the_level_and_the_environment_wins() {
    let both = run(&["-q", "-v", "geo", "hint", "core1.jnb.example.net"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));

    const CAP_NET_RAW: u32 = 13;
    let test = "verbose_and_quiet_move_the_level_and_the_environment_wins";
    if !support::has_cap(CAP_NET_RAW) && support::skip(test, "`run` needs CAP_NET_RAW") {
        return;
    }
    // A one-shot command logs at warn: the prober's debug lines show at
    // -vv only. (A trace of loopback: nothing leaves the machine.)
    for (flags, shown) in [(&[][..], false), (&["-vv"][..], true)] {
        let mut args = flags.to_vec();
        args.extend(["trace", "127.0.0.1", "-n", "--max-ttl", "2", "--json"]);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.contains("destination RTT measured"),
            shown,
            "{flags:?}: {}",
            text(&out)
        );
    }
    // The daemon logs its start at info: `-q` leaves it out, unless
    // TRANSITWATCH_LOG says otherwise.
    for (log, started) in [(None, false), (Some("info"), true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &crate::log_colour::daemon_command(dir.path(), "--quiet"),
        ]);
        match log {
            Some(value) => sh.env("TRANSITWATCH_LOG", value),
            None => sh.env_remove("TRANSITWATCH_LOG"),
        };
        let out = sh.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.contains("transitwatch running"),
            started,
            "TRANSITWATCH_LOG={log:?}: {}",
            text(&out)
        );
    }
}
