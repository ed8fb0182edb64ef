//! Hostile input: endless and huge files wherever a configuration names a
//! file (and as the configuration itself), at start, on `check-config` and
//! on reload; mutated configurations, override CSVs and Atlas/scamper
//! lines; one line of a gigabyte piped into `analyze`.
//!
//! The hostile files are `/dev/zero`, `/dev/urandom`, a FIFO nothing writes
//! to, a sparse file of 100 GB and a directory. Every one must be refused
//! before it is read: with one line naming it, quickly, and with peak memory
//! under the bounds below (measured with GNU time's maximum resident set
//! where it is installed, and always under an address-space limit set with
//! `prlimit --as`, which an unbounded read would hit at once).
//!
//! Deterministic: the mutations come from fixed seeds. Daemons listen on
//! 127.0.0.1 and trace nothing; every process and file is cleaned up, also
//! when a test fails.

use crate::support::loopback::{free_port, http_get};
use crate::support::{bin, root, text};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use transitwatch::config::{Config, ConfigError};

/// Peak resident memory allowed to `run` and `check-config` facing a
/// hostile file, and to a daemon after a reload refused one (KiB).
const RSS_BOUND_KIB: u64 = 128 << 10;

/// Peak resident memory allowed to `analyze` reading a 1 GB line (KiB): a
/// record is kept up to 64 MiB before it is given up.
const ANALYZE_RSS_BOUND_KIB: u64 = 256 << 10;

/// The address space every command runs in (bytes): an unbounded read of
/// `/dev/zero` fails at once under it.
const ADDRESS_SPACE: u64 = 1 << 30;

/// Hang guard of a command that must fail at start.
const QUICKLY: Duration = Duration::from_secs(10);

/// The daemon's drain time in these tests.
const DRAIN: Duration = Duration::from_secs(2);

/// Files no reader may take whole.
struct Hostile {
    dir: tempfile::TempDir,
    files: Vec<(&'static str, PathBuf)>,
}

fn hostile_files() -> Hostile {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo failed");
    let sparse = dir.path().join("sparse-100GB.mmdb");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(100_000_000_000)
        .unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    Hostile {
        files: vec![
            ("/dev/zero", PathBuf::from("/dev/zero")),
            ("/dev/urandom", PathBuf::from("/dev/urandom")),
            ("a FIFO", fifo),
            ("a sparse 100 GB file", sparse),
            ("a directory", folder),
        ],
        dir,
    }
}

/// Where a configuration names a file (or the configuration itself).
#[derive(Debug, Clone, Copy)]
enum Slot {
    Config,
    GeoIpFile,
    Overrides,
    SecretFile,
    CaFile,
}

const SLOTS: [Slot; 5] = [
    Slot::Config,
    Slot::GeoIpFile,
    Slot::Overrides,
    Slot::SecretFile,
    Slot::CaFile,
];

/// A daemon configuration on 127.0.0.1:`port` without targets, naming
/// `file` in `slot` (nothing for `Slot::Config`).
fn config_text(port: u16, slot: Slot, file: Option<&Path>) -> String {
    let mut text = format!(
        "[vantage]\nname = \"hostile\"\ncountry = \"LS\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let quoted = file.map(|f| format!("{:?}", f.to_str().expect("UTF-8 path")));
    match (slot, quoted) {
        (Slot::GeoIpFile, Some(f)) => text.push_str(&format!("\n[geoip]\nfiles = [{f}]\n")),
        (Slot::Overrides, Some(f)) => text.push_str(&format!("\n[geoip]\noverrides = {f}\n")),
        (Slot::SecretFile, Some(f)) => text.push_str(&format!(
            "\n[[alert.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = {f}\n"
        )),
        (Slot::CaFile, Some(f)) => text.push_str(&format!(
            "\n[[alert.webhook]]\nurl = \"https://127.0.0.1:9/hook\"\nca_file = {f}\n"
        )),
        _ => {}
    }
    text
}

/// Write the configuration of `slot` naming `file` at `dir/tw.toml`; for
/// `Slot::Config` the configuration is `file` itself.
fn config_naming(dir: &Path, port: u16, slot: Slot, file: &Path) -> PathBuf {
    match slot {
        Slot::Config => file.to_path_buf(),
        _ => {
            let path = dir.join("tw.toml");
            std::fs::write(&path, config_text(port, slot, Some(file))).unwrap();
            path
        }
    }
}

/// Whether GNU time is there to measure peak memory.
fn gnu_time() -> Option<PathBuf> {
    let time = PathBuf::from("/usr/bin/time");
    Command::new(&time)
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(time)
}

/// `transitwatch ARGS` under the address-space limit and, where GNU time
/// is installed, with its peak resident memory written to `rss_file`.
fn bounded_command(args: &[&std::ffi::OsStr], rss_file: &Path) -> Command {
    let mut command = Command::new("prlimit");
    command.arg(format!("--as={ADDRESS_SPACE}")).arg("--");
    if let Some(time) = gnu_time() {
        command.arg(time).arg("-o").arg(rss_file).args(["-f", "%M"]);
    }
    command.arg(bin()).args(args);
    command
}

/// Run to the end within `QUICKLY` (else killed, and the test fails).
fn run_quickly(mut command: Command) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start transitwatch");
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return (child.wait_with_output().unwrap(), started.elapsed());
        }
        if started.elapsed() > QUICKLY {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {QUICKLY:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// GNU time's peak resident memory (KiB) from its output file, if measured.
fn peak_rss(rss_file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(rss_file).ok()?;
    text.lines().last()?.trim().parse().ok()
}

/// Exit 2, one line on stderr naming `file`, no panic.
fn assert_one_line_naming(out: &Output, file: &Path, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {}", text(out));
    assert!(!stderr.contains("panicked"), "{what}: {}", text(out));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: one line expected: {}", text(out));
    assert!(
        lines[0].contains(file.to_str().unwrap()),
        "{what}: the file is not named: {}",
        text(out)
    );
}

#[test]
fn run_refuses_every_hostile_file_at_start_quickly_and_in_bounded_memory() {
    let hostile = hostile_files();
    let port = free_port();
    let state = hostile.dir.path().join("state");
    let rss_file = hostile.dir.path().join("rss");
    let mut peak = 0;
    for slot in SLOTS {
        for (name, file) in &hostile.files {
            let what = format!("{slot:?} = {name}");
            let config = config_naming(hostile.dir.path(), port, slot, file);
            let _ = std::fs::remove_file(&rss_file);
            let (out, took) = run_quickly(bounded_command(
                &[
                    "run".as_ref(),
                    "--config".as_ref(),
                    config.as_os_str(),
                    "--state-dir".as_ref(),
                    state.as_os_str(),
                ],
                &rss_file,
            ));
            assert_one_line_naming(&out, file, &what);
            if let Some(rss) = peak_rss(&rss_file) {
                assert!(rss < RSS_BOUND_KIB, "{what}: peak RSS {rss} KiB");
                peak = peak.max(rss);
            }
            eprintln!("{what}: refused in {took:?}");
        }
    }
    eprintln!("peak RSS of `run` refusing a hostile file: {peak} KiB (0: not measured)");
}

#[test]
fn check_config_names_every_hostile_file() {
    let hostile = hostile_files();
    let rss_file = hostile.dir.path().join("rss");
    for slot in SLOTS {
        for (name, file) in &hostile.files {
            let what = format!("{slot:?} = {name}");
            let config = config_naming(hostile.dir.path(), 19968, slot, file);
            let (out, _) = run_quickly(bounded_command(
                &[
                    "check-config".as_ref(),
                    "--config".as_ref(),
                    config.as_os_str(),
                ],
                &rss_file,
            ));
            assert_one_line_naming(&out, file, &what);
            if let Some(rss) = peak_rss(&rss_file) {
                assert!(rss < RSS_BOUND_KIB, "{what}: peak RSS {rss} KiB");
            }
        }
    }
}

#[test]
fn check_config_names_the_missing_geoip_files_of_the_sample() {
    let sample = root().join("config/transitwatch.toml");
    let text_of_sample = std::fs::read_to_string(&sample).unwrap();
    let files = [
        "/var/lib/GeoIP/GeoLite2-City.mmdb",
        "/var/lib/GeoIP/GeoLite2-ASN.mmdb",
    ];
    for file in files {
        assert!(text_of_sample.contains(file), "the sample names {file}");
        if Path::new(file).exists() {
            crate::support::skip(
                "check_config_names_the_missing_geoip_files_of_the_sample",
                &format!("{file} exists on this machine"),
            );
            return;
        }
    }
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&sample)
        .output()
        .unwrap();
    assert_one_line_naming(&out, Path::new(files[0]), "the sample");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (i, file) in files.iter().enumerate() {
        assert!(
            stderr.contains(&format!("field `geoip.files[{i}]`: {file}: ")),
            "{stderr}"
        );
    }
    assert!(stderr.contains(sample.to_str().unwrap()), "{stderr}");
}

/// `transitwatch run` on 127.0.0.1, logging to a file; killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Daemon {
    fn start(config: &Path, state: &Path, log: PathBuf, port: u16) -> Daemon {
        let child = Command::new(bin())
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .args(["--drain", "2s", "--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the daemon");
        let daemon = Daemon { child, log, port };
        daemon.wait_for("/metrics to answer", |d| {
            d.get("/metrics").is_some_and(|(code, _)| code == 200)
        });
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig}");
    }

    /// Poll `ok` (hang guard: 30 s).
    fn wait_for(&self, what: &str, ok: impl Fn(&Daemon) -> bool) {
        let started = Instant::now();
        while !ok(self) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path`: status and body, `None` if nothing answered.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// The daemon's peak resident memory so far (KiB).
    fn vm_hwm(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_reload_naming_a_hostile_file_keeps_the_old_configuration() {
    let hostile = hostile_files();
    let dir = hostile.dir.path();
    let port = free_port();
    let config = dir.join("tw.toml");
    let good = config_text(port, Slot::Config, None);
    std::fs::write(&config, &good).unwrap();
    let state = dir.join("state");
    let daemon = Daemon::start(&config, &state, dir.join("daemon.log"), port);
    let rejected = |d: &Daemon| d.log().matches("reload rejected").count();
    let mut attempts = 0;
    for slot in SLOTS {
        for (name, file) in &hostile.files {
            let what = format!("{slot:?} = {name}");
            let _ = std::fs::remove_file(&config);
            match slot {
                // The configuration file itself replaced by the hostile one.
                Slot::Config => std::os::unix::fs::symlink(file, &config).unwrap(),
                _ => std::fs::write(&config, config_text(port, slot, Some(file))).unwrap(),
            }
            daemon.signal("HUP");
            attempts += 1;
            daemon.wait_for(&format!("the reload of {what} to be rejected"), |d| {
                rejected(d) == attempts
            });
            let log = daemon.log();
            let line = log
                .lines()
                .rfind(|l| l.contains("reload rejected"))
                .unwrap();
            // The file as the configuration names it (the configuration
            // file: by the path the daemon was given).
            let named = match slot {
                Slot::Config => &config,
                _ => file,
            };
            assert!(
                line.contains(named.to_str().unwrap()),
                "{what}: the log does not name the file: {line}"
            );
            let (code, body) = daemon.get("/metrics").expect("/metrics answers");
            assert_eq!(code, 200, "{what}");
            assert!(
                body.contains("transitwatch_config_reload_success 0"),
                "{what}: {body}"
            );
            let rss = daemon.vm_hwm();
            assert!(rss < RSS_BOUND_KIB, "{what}: peak RSS {rss} KiB");
        }
    }
    eprintln!(
        "peak RSS of the daemon after {attempts} refused reloads: {} KiB",
        daemon.vm_hwm()
    );

    // A webhook URL with credentials: refused, and not written to the log.
    std::fs::remove_file(&config).unwrap();
    std::fs::write(
        &config,
        format!("{good}\n[[alert.webhook]]\nurl = \"https://user:pa55@127.0.0.1:9/hook\"\n"),
    )
    .unwrap();
    daemon.signal("HUP");
    attempts += 1;
    daemon.wait_for("the reload with credentials to be rejected", |d| {
        rejected(d) == attempts
    });
    let log = daemon.log();
    assert!(
        log.contains("https://***@127.0.0.1:9/hook") && !log.contains("pa55"),
        "{log}"
    );

    // The old configuration still runs: a good file reloads.
    let _ = std::fs::remove_file(&config);
    std::fs::write(&config, &good).unwrap();
    daemon.signal("HUP");
    daemon.wait_for("the good configuration to reload", |d| {
        d.get("/metrics")
            .is_some_and(|(_, body)| body.contains("transitwatch_config_reload_success 1"))
    });

    // A hostile reload and SIGTERM right behind it: stopped within the
    // drain time.
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    let mut daemon = daemon;
    daemon.signal("HUP");
    daemon.signal("TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < DRAIN,
            "not stopped within the drain time; log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
}

#[test]
fn config_mistakes_are_one_line_naming_file_position_and_field() {
    let path = Path::new("/etc/transitwatch/tw.toml");
    let vantage = "[vantage]\nname = \"m\"\ncountry = \"LS\"\n";
    let message = |text: &str| {
        let e = Config::from_str(text, path).expect_err(text);
        let m = e.to_string();
        assert!(!m.contains('\n') && !m.contains('\r'), "{m:?}");
        m
    };
    // A control character in a comment: the parser has no words for it.
    for c in ['\u{0}', '\u{1}', '\u{1b}', '\u{7f}', '\r'] {
        let m = message(&format!("# a {c} comment\n{vantage}"));
        assert_eq!(
            m,
            format!(
                "{}:1:5: the control character U+{:04X} is not allowed here (TOML allows none \
                 but tab, not even in comments; write it as an escape in a string)",
                path.display(),
                u32::from(c)
            )
        );
    }
    // Numbers out of every integer's range, wherever they stand.
    for (table, key, field) in [
        ("[probe]", "port", "probe.port"),
        ("[probe]", "concurrency", "probe.concurrency"),
        ("[alert]", "queue_capacity", "alert.queue_capacity"),
        (
            "[[target]]\nname = \"a\"\nhost = \"x.ls\"\n[[target]]\nname = \"b\"\nhost = \"y.ls\"",
            "port",
            "target[1].port",
        ),
    ] {
        let m = message(&format!("{vantage}{table}\n{key} = 99999999999999999999\n"));
        assert!(
            m.contains(&format!(": field `{field}`: number too large")),
            "{m}"
        );
    }
    // A URL where a host belongs.
    let m = message(&format!(
        "{vantage}[[target]]\nname = \"a\"\nhost = \"http://x.ls/\"\n"
    ));
    assert!(
        m.contains(":6:8: field `target[0].host`: `http://x.ls/` is not a host name")
            && m.contains("(e.g. \"x.ls\")"),
        "{m}"
    );
    // Credentials of a rejected webhook URL are not shown.
    for url in ["https://user:pa55@x.ls/hook", "ftp://user:pa55@x.ls/hook"] {
        let m = message(&format!("{vantage}[[alert.webhook]]\nurl = {url:?}\n"));
        assert!(m.contains("://***@x.ls/hook") && !m.contains("pa55"), "{m}");
    }
}

/// xorshift64*: the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() >> 33).unwrap_or(0) % n
    }
}

/// Bytes a mutation inserts: structure, numbers too large, control
/// characters, URLs and quotes.
const PIECES: &[&str] = &[
    "\u{1}",
    "\u{0}",
    "\u{7f}",
    "\r",
    "\t",
    "\"",
    "'",
    "[",
    "]]",
    "{",
    "=",
    ",",
    "#",
    "\n",
    "99999999999999999999999",
    "-1",
    "1e999",
    "0x10",
    "http://x.ls/",
    "https://user:pw@x.ls/",
    "é",
    "\\u0000",
    "nan",
    "true",
];

/// `text` with one to three random edits: a piece inserted, a span
/// deleted or duplicated, two lines swapped, the text cut short.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 | 1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                bytes.splice(at..at, piece.bytes());
            }
            2 => {
                let end = (at + 1 + rng.below(12)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + 1 + rng.below(40)).min(bytes.len());
                let copy = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, copy);
            }
            4 => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                bytes = lines.join("\n").into_bytes();
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether 1-based `line` and `column` of `text` lie after a `key =`.
fn after_a_key(text: &str, line: usize, column: usize) -> bool {
    text.lines().nth(line - 1).is_some_and(|l| {
        let before: String = l.chars().take(column.saturating_sub(1)).collect();
        before.contains('=') && !before.trim_start().starts_with('#') && !before.contains('"')
    })
}

#[test]
fn mutated_configs_give_one_line_errors_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(root().join("config/transitwatch.toml")).unwrap();
    // Files the sample's webhooks could name exist: mutations reach the
    // secret and CA readers.
    std::fs::write(dir.path().join("hook.secret"), "s3cret\n").unwrap();
    let base = format!(
        "{sample}\n[[alert.webhook]]\nurl = \"https://127.0.0.1:9/hook\"\nsecret_file = \"hook.secret\"\nca_file = {:?}\n",
        root().join("tests/resources/tls/ca.pem").to_str().unwrap()
    );
    let path = dir.path().join("mutated.toml");
    assert!(Config::from_str(&base, &path).is_ok());
    let mut rng = Rng(0x5eed_c0f1_0000_0011);
    let (mut errors, mut with_field) = (0, 0);
    for i in 0..400 {
        let text = mutate(&mut rng, &base);
        let result = std::panic::catch_unwind(|| Config::from_str(&text, &path));
        let Ok(result) = result else {
            panic!("mutation {i} panicked:\n{text}");
        };
        let Err(e) = result else { continue };
        errors += 1;
        let message = e.to_string();
        assert!(
            message.starts_with(path.to_str().unwrap()),
            "{i}: {message}"
        );
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{i}: {message:?}"
        );
        let (_, rest) = message.rsplit_once(": ").unwrap();
        assert!(!rest.trim().is_empty(), "{i}: empty message: {message}");
        match (&e, e.position()) {
            (ConfigError::Read { .. }, _) => panic!("{i}: {message}"),
            (_, Some((line, column))) => {
                assert!(
                    message.contains(&format!(":{line}:{column}: ")),
                    "{message}"
                );
                // A value after `key =`: its field is named.
                if after_a_key(&text, line, column) {
                    assert!(e.field().is_some(), "{i}: no field: {message}\n{text}");
                }
            }
            // Without a position only what is missing from the whole file.
            (_, None) => assert!(e.field().is_some(), "{i}: {message}"),
        }
        with_field += usize::from(e.field().is_some());
    }
    eprintln!("400 mutated configs: {errors} errors, {with_field} naming a field");
    assert!(errors > 100, "{errors} of 400 mutations were errors");

    // Through the binary: one line on stderr, exit 2.
    let mut rng = Rng(0x5eed_c0f1_0000_0012);
    let mut checked = 0;
    while checked < 15 {
        let text = mutate(&mut rng, &base);
        if Config::from_str(&text, &path).is_ok() {
            continue;
        }
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(bin())
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_one_line_naming(&out, &path, &text);
        checked += 1;
    }
}

#[test]
fn mutated_override_csvs_give_errors_naming_file_line_and_field() {
    let lab = std::fs::read_to_string(root().join("tests/lab/lab-geo.csv")).unwrap();
    let path = Path::new("/srv/geo/overrides.csv");
    assert!(transitwatch::geo::parse_overrides(path, &lab).is_ok());
    let mut rng = Rng(0x5eed_c5f0_0000_0021);
    let mut errors = 0;
    for i in 0..300 {
        let text = mutate(&mut rng, &lab);
        let result = std::panic::catch_unwind(|| transitwatch::geo::parse_overrides(path, &text));
        let Ok(result) = result else {
            panic!("mutation {i} panicked:\n{text}");
        };
        let Err(e) = result else { continue };
        errors += 1;
        let message = e.to_string();
        let transitwatch::geo::GeoError::Overrides { line, field, .. } = &e else {
            panic!("{i}: not an overrides error: {message}");
        };
        assert!(
            message.starts_with(&format!("{}:{line}: field `{field}`: ", path.display())),
            "{i}: {message}"
        );
        assert!(!message.contains('\n'), "{i}: {message:?}");
    }
    eprintln!("300 mutated override files: {errors} errors");
    assert!(errors > 100, "{errors} of 300 mutations were errors");
}

const ATLAS: &[&str] = &[
    r#"{"prb_id":1,"msm_id":5,"timestamp":1600000000,"proto":"ICMP","dst_addr":"198.51.100.9","dst_name":"portal.gov.ls","result":[{"hop":1,"result":[{"from":"10.0.0.1","rtt":1.0},{"from":"10.0.0.1","rtt":3.0},{"x":"*"}]},{"hop":2,"result":[{"from":"198.51.100.9","rtt":5.0}]}]}"#,
    r#"{"prb_id":2,"timestamp":1600000001,"proto":"UDP","dst_addr":"203.0.113.1","result":[{"hop":1,"result":[{"x":"*"},{"x":"*"},{"x":"*"}]}]}"#,
];

const SCAMPER: &[&str] = &[
    r#"{"type":"cycle-start","list_name":"default","id":1,"hostname":"v","start_time":1638999960}"#,
    r#"{"type":"trace","method":"udp-paris","src":"10.0.0.100","dst":"198.51.100.9","dport":33435,"stop_reason":"GAPLIMIT","start":{"sec":1638999963,"usec":5},"hop_count":4,"attempts":3,"firsthop":1,"hops":[{"addr":"10.0.0.1","probe_ttl":1,"probe_id":1,"rtt":0.5},{"addr":"10.0.0.3","probe_ttl":3,"probe_id":2,"rtt":4.0},{"addr":"*","probe_ttl":4,"probe_id":1,"rtt":1.0}]}"#,
    r#"{"type":"cycle-stop","list_name":"default","id":1,"hostname":"v","stop_time":1638999999}"#,
];

#[test]
fn mutated_atlas_and_scamper_lines_give_one_line_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (format, corpus, seed) in [
        ("atlas", ATLAS, 0x5eed_a71a_0000_0031_u64),
        ("scamper", SCAMPER, 0x5eed_5ca3_0000_0032),
    ] {
        let mut rng = Rng(seed);
        let mut file = String::new();
        let lines = 300;
        for i in 0..lines {
            let line = corpus[i % corpus.len()];
            // The first line intact: a `[` there would make the file one
            // JSON array.
            let mutated = if i == 0 || rng.below(4) == 0 {
                line.to_string()
            } else {
                mutate(&mut rng, line)
            };
            // One record per line.
            file.push_str(&mutated.replace(['\n', '\r'], " "));
            file.push('\n');
        }
        let path = dir.path().join(format!("mutated.{format}.jsonl"));
        std::fs::write(&path, &file).unwrap();
        let out = Command::new(bin())
            .args([
                "analyze",
                "--input-format",
                format,
                "--home",
                "LS",
                "--input",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{format}: {}", text(&out));
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
        let prefix = format!("transitwatch: {}:", path.display());
        let mut reported = Vec::new();
        for line in stderr.lines() {
            if line.starts_with("transitwatch: error: ") {
                continue; // the closing summary
            }
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{format}: not FILE:LINE: {line}"));
            let (number, message) = rest.split_once(": ").expect("LINE: MESSAGE");
            let number: usize = number.parse().expect("a line number");
            assert!((1..=lines).contains(&number), "{line}");
            assert!(!message.trim().is_empty(), "{line}");
            reported.push(number);
        }
        assert!(
            reported.windows(2).all(|w| w[0] < w[1]),
            "{format}: each line reported once, in order: {reported:?}"
        );
        assert!(
            reported.len() > lines / 3,
            "{format}: {} errors",
            reported.len()
        );
        eprintln!("{format}: {lines} lines, {} reported", reported.len());
    }
}

#[test]
fn analyze_refuses_devices_and_directories_as_input() {
    let dir = tempfile::tempdir().unwrap();
    for input in [
        Path::new("/dev/zero"),
        Path::new("/dev/urandom"),
        dir.path(),
    ] {
        let (out, _) = run_quickly({
            let mut c = Command::new(bin());
            c.args(["analyze", "--home", "LS", "--input"]).arg(input);
            c
        });
        assert_one_line_naming(&out, input, "analyze --input");
    }
}

#[test]
fn a_one_gigabyte_line_piped_to_analyze_is_one_error_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let rss_file = dir.path().join("rss");
    let mut command = bounded_command(
        &[
            "analyze".as_ref(),
            "--input-format".as_ref(),
            "atlas".as_ref(),
            "--home".as_ref(),
            "LS".as_ref(),
            "--input".as_ref(),
            "/dev/stdin".as_ref(),
        ],
        &rss_file,
    );
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start analyze");
    // A valid line, a line of 1 GB (1000 MiB) streamed through the pipe,
    // never on disk, and a valid line after it.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        writeln!(stdin, "{}", ATLAS[0])?;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..1000 {
            stdin.write_all(&chunk)?;
        }
        stdin.write_all(b"\n")?;
        writeln!(stdin, "{}", ATLAS[1])
    });
    let out = child.wait_with_output().unwrap();
    writer
        .join()
        .unwrap()
        .expect("analyze read the whole input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            "transitwatch: /dev/stdin:2: the record is longer than 64 MiB, the most one record may take; skipped"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(lines.len(), 2, "{}", text(&out));
    assert!(lines[1].contains("1 line(s)"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The lines around it were read.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("2 traces from /dev/stdin"), "{stdout}");
    if let Some(rss) = peak_rss(&rss_file) {
        eprintln!("a 1 GB line: peak RSS {rss} KiB");
        assert!(rss < ANALYZE_RSS_BOUND_KIB, "peak RSS {rss} KiB");
    }
}
