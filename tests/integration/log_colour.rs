//! Log lines and colour: the daemon colours its text logs only when stderr
//! is a terminal, never with `--log-format json`, never when `NO_COLOR` is
//! set and never under journald (`JOURNAL_STREAM`), so a log file or the
//! journal gets plain lines without escape codes.
//!
//! The daemon runs with no targets on loopback (nothing is probed) and gets
//! SIGTERM once its history database exists, so it has written its start
//! lines and then writes its stop lines. `run` needs CAP_NET_RAW: without
//! it these tests are skipped (a failure under `TRANSITWATCH_REQUIRE_LAB=1`).

use crate::support::{self, bin, text};

use std::path::Path;
use std::process::{Command, Output};

const CAP_NET_RAW: u32 = 13;
const ESC: u8 = 0x1b;

/// A shell command line that starts the daemon in `dir` with `extra`
/// arguments, waits for its database, stops it with SIGTERM and returns
/// its exit status (3 if the database never appeared within 30 s).
pub(crate) fn daemon_command(dir: &Path, extra: &str) -> String {
    let config = dir.join("transitwatch.toml");
    let db = dir.join("history.db");
    std::fs::write(
        &config,
        format!(
            "[vantage]\nname = \"log-test\"\ncountry = \"LS\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\
             [store]\npath = \"{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    format!(
        "'{bin}' run --config '{config}' --state-dir '{state}' {extra} & p=$!; \
         n=0; while [ ! -e '{db}' ]; do \
           n=$((n + 1)); \
           if [ $n -gt 600 ] || ! kill -0 $p 2>/dev/null; then kill -KILL $p 2>/dev/null; exit 3; fi; \
           sleep 0.05; \
         done; kill -TERM $p; wait $p",
        bin = bin(),
        config = config.display(),
        state = dir.join("state").display(),
        db = db.display(),
    )
}

fn may_run(test: &str) -> bool {
    support::has_cap(CAP_NET_RAW) || !support::skip(test, "`run` needs CAP_NET_RAW (run as root)")
}

/// The daemon's whole log output `log` ran to a clean stop.
fn assert_stopped(out: &Output, log: &[u8]) {
    assert!(out.status.success(), "{}", text(out));
    let log = String::from_utf8_lossy(log);
    assert!(log.contains("transitwatch running"), "{}", text(out));
    assert!(log.contains("transitwatch stopped"), "{}", text(out));
}

#[test]
fn daemon_logs_on_a_pipe_carry_no_escape_codes() {
    if !may_run("daemon_logs_on_a_pipe_carry_no_escape_codes") {
        return;
    }
    for extra in ["", "--log-format json"] {
        let dir = tempfile::tempdir().unwrap();
        // stderr is the pipe of `output()`, as for a log file or journald.
        let out = Command::new("sh")
            .args(["-c", &daemon_command(dir.path(), extra)])
            .env_remove("NO_COLOR")
            .env_remove("TRANSITWATCH_LOG")
            .output()
            .unwrap();
        assert_stopped(&out, &out.stderr);
        assert!(
            !out.stderr.contains(&ESC),
            "escape codes in a piped log ({extra:?}): {}",
            text(&out)
        );
    }
    // stderr a file, as `2>>transitwatch.log` makes it.
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("transitwatch.log");
    let out = Command::new("sh")
        .args(["-c", &daemon_command(dir.path(), "")])
        .env_remove("NO_COLOR")
        .env_remove("TRANSITWATCH_LOG")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .output()
        .unwrap();
    let log = std::fs::read(&log_path).unwrap();
    assert_stopped(&out, &log);
    assert!(
        !log.contains(&ESC),
        "escape codes in a log file: {}",
        String::from_utf8_lossy(&log)
    );
}

#[test]
fn daemon_logs_are_coloured_on_a_terminal_only_without_no_color_and_json() {
    let test = "daemon_logs_are_coloured_on_a_terminal_only_without_no_color_and_json";
    if !may_run(test) || !support::have_all(test, &["script"]) {
        return;
    }
    // (arguments, NO_COLOR, JOURNAL_STREAM, colour expected)
    let cases = [
        ("", None, None, true),
        ("", Some("1"), None, false),
        ("--log-format json", None, None, false),
        // A service whose output systemd sends to journald, even if it
        // were a terminal.
        ("", None, Some("8:12345"), false),
    ];
    for (extra, no_color, journal, coloured) in cases {
        let dir = tempfile::tempdir().unwrap();
        // `script` runs the command on a pseudo-terminal and copies what it
        // shows to its own stdout.
        let mut script = Command::new("script");
        script
            .args(["-qec", &daemon_command(dir.path(), extra), "/dev/null"])
            .env_remove("TRANSITWATCH_LOG");
        match no_color {
            Some(value) => script.env("NO_COLOR", value),
            None => script.env_remove("NO_COLOR"),
        };
        match journal {
            Some(value) => script.env("JOURNAL_STREAM", value),
            None => script.env_remove("JOURNAL_STREAM"),
        };
        let out = script.output().unwrap();
        assert_stopped(&out, &out.stdout);
        assert_eq!(
            out.stdout.contains(&ESC),
            coloured,
            "{extra:?} NO_COLOR={no_color:?} JOURNAL_STREAM={journal:?}: {}",
            text(&out)
        );
    }
}
