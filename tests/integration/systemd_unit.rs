//! The systemd unit in `systemd/`: systemd accepts it, rates its exposure,
//! and the daemon works inside what it grants.
//!
//! There is no systemd as PID 1 on the test machines, so the unit is never
//! started. Instead:
//! - `systemd-analyze verify` and `systemd-analyze security --offline=yes`
//!   check the unit file itself (exposure at most [`MAX_EXPOSURE`]);
//! - `systemd-sysusers --root` and `systemd-tmpfiles --root` apply the
//!   sysusers and tmpfiles snippets to a scratch root;
//! - `setpriv` reproduces the unit's identity and capabilities (a non-root
//!   user, CAP_NET_RAW ambient, inheritable and bounding, nothing else), a
//!   fresh procfs mounted `hidepid=invisible,subset=pid` reproduces
//!   `ProtectProc=invisible` + `ProcSubset=pid`, and `umask 0077` is
//!   `UMask=`: the binary traces 127.0.0.1, and without the ambient
//!   capability fails in one line;
//! - `strace` records every system call and socket family of traces over
//!   ICMP, UDP and TCP, IPv4 and IPv6, and by name, and checks them against
//!   the unit's `SystemCallFilter=`, `RestrictAddressFamilies=` and
//!   `MemoryDenyWriteExecute=`;
//! - `transitwatch run` runs in the same simulation under strace: it serves
//!   metrics of traces to 127.0.0.1 and ::1, survives the unit's
//!   `ExecReload=`, stops cleanly on `KillSignal=` within `TimeoutStopSec=`,
//!   and keeps its state private in `$STATE_DIRECTORY` (`UMask=0077`);
//! - `unshare --user` shows why `PrivateUsers=` is left out.
//!
//! A test whose tool is missing, or that needs root without it, prints
//! `SKIPPED <name>: <why>` and passes; with `TRANSITWATCH_REQUIRE_LAB=1` (set
//! by CI as root) it fails instead.

use crate::support;
use crate::support::loopback::{free_port, http_get};

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Highest acceptable "Overall exposure level" of `systemd-analyze security`.
const MAX_EXPOSURE: f64 = 2.0;

/// Where the unit expects the binary; rewritten to the built one for checks
/// that need an executable there.
const INSTALLED_BIN: &str = "/usr/local/bin/transitwatch";

/// Capability bits (linux/capability.h) the `setpriv` tests need.
const CAP_CHOWN: u32 = 0;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SETPCAP: u32 = 8;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

/// Traces of this file run one at a time: probes of concurrent tracers to
/// the same address are told apart by identifiers that rarely, but can,
/// collide between processes.
static TRACING: Mutex<()> = Mutex::new(());

fn one_trace_at_a_time() -> MutexGuard<'static, ()> {
    TRACING.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unit_path() -> PathBuf {
    support::root().join("systemd/transitwatch.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).expect("systemd/transitwatch.service")
}

/// The values of `key=` in the unit, in order (comments ignored).
fn directive(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// The only value of `key=` in the unit.
fn single(unit: &str, key: &str) -> String {
    let values = directive(unit, key);
    assert_eq!(values.len(), 1, "{key}= should be set once: {values:?}");
    values[0].clone()
}

/// The unit copied into `dir` with ExecStart= pointing at the built binary,
/// so that `systemd-analyze verify` finds an executable.
fn unit_with_built_binary(dir: &Path) -> PathBuf {
    let text = unit_text();
    assert!(
        text.contains(&format!("ExecStart={INSTALLED_BIN} ")),
        "the unit's ExecStart= no longer starts with {INSTALLED_BIN}"
    );
    let rewritten = text.replace(
        &format!("ExecStart={INSTALLED_BIN} "),
        &format!("ExecStart={} ", support::bin()),
    );
    let path = dir.join("transitwatch.service");
    std::fs::write(&path, rewritten).expect("write unit copy");
    path
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether the test process may switch user and hand down CAP_NET_RAW.
fn can_switch_user() -> bool {
    [CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_NET_RAW]
        .iter()
        .all(|&bit| support::has_cap(bit))
}

/// The unprivileged identity the simulations run as: `nobody`, which every
/// Debian system has, so the tests change no user database.
fn nobody() -> (String, String) {
    let id = |flag: &str| {
        let out = run(Command::new("id").args([flag, "nobody"]));
        assert!(
            out.status.success(),
            "id {flag} nobody: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    };
    (id("-u"), id("-g"))
}

/// The binary as `nobody` can execute it: the built one when every folder
/// above it lets others through, else a copy (a target directory under a
/// 0700 home would not do).
struct Staged {
    _dir: Option<tempfile::TempDir>,
    bin: PathBuf,
}

/// Whether others may execute `path` (mode bits; ACLs are not consulted).
fn others_may_execute(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors().all(|p| {
        p.as_os_str().is_empty()
            || std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

fn stage_binary() -> Staged {
    use std::os::unix::fs::PermissionsExt;
    let built = Path::new(support::bin());
    if others_may_execute(built) {
        return Staged {
            _dir: None,
            bin: built.to_path_buf(),
        };
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
    let bin = dir.path().join("transitwatch");
    std::fs::copy(built, &bin).expect("copy binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod binary");
    // A process forked by another test thread while the copy was open for
    // writing holds that descriptor until its own execve: executing the
    // copy fails with ETXTBSY until then.
    for _ in 0..200 {
        match Command::new(&bin).arg("--version").output() {
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("cannot run {}: {e}", bin.display()),
            Ok(_) => break,
        }
    }
    Staged {
        _dir: Some(dir),
        bin,
    }
}

/// `setpriv` arguments giving the unit's identity: `nobody`, no supplementary
/// groups, and CAP_NET_RAW as the only capability (bounding, inheritable
/// and, when `ambient`, ambient, as AmbientCapabilities= does).
fn setpriv_args(ambient: bool) -> Vec<String> {
    let (uid, gid) = nobody();
    vec![
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
        "--inh-caps=-all,+net_raw".into(),
        if ambient {
            "--ambient-caps=+net_raw".into()
        } else {
            "--ambient-caps=-all".into()
        },
        "--bounding-set=-all,+net_raw".into(),
    ]
}

/// `program args` as the unit would start it: in a private mount namespace
/// whose /proc is a fresh procfs mounted `hidepid=invisible,subset=pid` (what
/// ProtectProc=invisible and ProcSubset=pid mount), with UMask=0077, then
/// through `setpriv`. Exit status 99: the procfs could not be mounted.
fn service_command(ambient: bool, program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "mount -t proc -o hidepid=invisible,subset=pid proc /proc || exit 99; \
             umask 0077; exec setpriv \"$@\"",
        )
        .arg("sh")
        .args(setpriv_args(ambient))
        .arg(program)
        .args(args)
        .current_dir(std::env::temp_dir());
    cmd
}

/// Runs [`service_command`] to its end.
fn run_as_service(ambient: bool, program: &Path, args: &[&str]) -> Output {
    let out = run(&mut service_command(ambient, program, args));
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot mount a restricted procfs: {}",
        text(&out.stderr)
    );
    out
}

/// A directory anyone may write (the service user writes logs into it).
fn shared_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod shared dir");
    dir
}

/// Skips unless the simulation of the service's identity can run here.
fn service_simulation_available(test: &str) -> bool {
    for tool in ["setpriv", "unshare", "id"] {
        if !support::have(tool) {
            return !support::skip(
                test,
                &format!("{tool} is missing (Debian package util-linux)"),
            );
        }
    }
    if !(can_switch_user() && support::has_cap(CAP_SYS_ADMIN)) {
        return !support::skip(
            test,
            "switching to an unprivileged user with CAP_NET_RAW ambient needs root",
        );
    }
    true
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let test = "unit_passes_systemd_analyze_verify";
    if !support::have("systemd-analyze") {
        support::skip(test, "systemd-analyze is missing (Debian package systemd)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_with_built_binary(dir.path());
    // Nothing is filtered: any output, also about the units it pulls in from
    // the host (network-online.target, multi-user.target), fails the test.
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed ({}): {stderr}",
        out.status
    );
    assert!(
        stderr.trim().is_empty() && text(&out.stdout).trim().is_empty(),
        "systemd-analyze verify reported findings:\n{stderr}{}",
        text(&out.stdout)
    );
}

#[test]
fn unit_exposure_is_at_most_two() {
    let test = "unit_exposure_is_at_most_two";
    if !support::have("systemd-analyze") {
        support::skip(test, "systemd-analyze is missing (Debian package systemd)");
        return;
    }
    // `--offline=yes` (systemd >= 250) rates the file without a running
    // manager; older versions cannot rate a unit that is not loaded.
    let help = run(Command::new("systemd-analyze").args(["security", "--help"]));
    if !text(&help.stdout).contains("--offline") {
        support::skip(
            test,
            "this systemd-analyze has no `security --offline` (systemd < 250)",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_with_built_binary(dir.path());
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .env("SYSTEMD_COLORS", "0"));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze security failed ({}): {}{stdout}",
        out.status,
        text(&out.stderr)
    );
    let level = stdout
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for transitwatch.service:")
                .map(|(_, rest)| rest.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no overall exposure line in:\n{stdout}"));
    let score: f64 = level
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unreadable exposure level `{level}`"));
    println!("exposure: {level}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} is above {MAX_EXPOSURE}:\n{stdout}"
    );
}

#[test]
fn unit_keeps_its_contract() {
    // What the daemon and operators rely on, which neither `verify` nor the
    // exposure score would miss if it went.
    let unit = unit_text();
    assert_eq!(
        single(&unit, "ExecStart"),
        format!("{INSTALLED_BIN} run --config /etc/transitwatch/transitwatch.toml")
    );
    assert_eq!(single(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(single(&unit, "KillSignal"), "SIGTERM");
    assert_eq!(single(&unit, "TimeoutStopSec"), "30s");
    assert_eq!(single(&unit, "Restart"), "on-failure");
    assert_eq!(single(&unit, "StateDirectory"), "transitwatch");
    assert_eq!(single(&unit, "ConfigurationDirectory"), "transitwatch");
    assert_eq!(single(&unit, "ProtectSystem"), "strict");
    assert_eq!(single(&unit, "NoNewPrivileges"), "yes");
    assert_eq!(single(&unit, "UMask"), "0077");
    let read_only = directive(&unit, "ReadOnlyPaths");
    for path in ["-/var/lib/GeoIP", "/etc/transitwatch"] {
        assert!(
            read_only
                .iter()
                .any(|v| v.split_whitespace().any(|p| p == path)),
            "ReadOnlyPaths= should hold {path}: {read_only:?}"
        );
    }
    assert!(
        directive(&unit, "IPAddressDeny").is_empty(),
        "the prober must reach any address"
    );
}

#[test]
fn tmpfiles_snippet_creates_a_root_owned_config_dir() {
    use std::os::unix::fs::MetadataExt;
    let test = "tmpfiles_snippet_creates_a_root_owned_config_dir";
    if !support::have("systemd-tmpfiles") {
        support::skip(test, "systemd-tmpfiles is missing (Debian package systemd)");
        return;
    }
    if !support::has_cap(CAP_CHOWN) {
        // The snippet hands the directory to root.
        support::skip(test, "creating a root-owned directory needs root");
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("etc/transitwatch");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // As systemd 252 leaves it when ConfigurationDirectory= creates it.
    let chown = run(Command::new("chown").args(["65534:65534"]).arg(&dir));
    assert!(chown.status.success(), "{}", text(&chown.stderr));
    let snippet = support::root().join("systemd/transitwatch.tmpfiles");
    let out = run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(&snippet));
    assert!(
        out.status.success(),
        "systemd-tmpfiles failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let meta = std::fs::metadata(&dir).expect("etc/transitwatch");
    assert!(meta.is_dir());
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "owned by root");
    assert_eq!(meta.mode() & 0o7777, 0o755);
}

#[test]
fn sysusers_snippet_creates_the_units_user() {
    let test = "sysusers_snippet_creates_the_units_user";
    if !support::have("systemd-sysusers") {
        support::skip(test, "systemd-sysusers is missing (Debian package systemd)");
        return;
    }
    let unit = unit_text();
    let user = single(&unit, "User");
    assert_eq!(
        single(&unit, "Group"),
        user,
        "Group= should be the user's group"
    );
    assert!(
        directive(&unit, "DynamicUser").is_empty(),
        "the unit uses a static user from the sysusers snippet"
    );
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(root.path().join("etc")).expect("mkdir etc");
    let snippet = support::root().join("systemd/transitwatch.sysusers");
    let out = run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(&snippet));
    assert!(
        out.status.success(),
        "systemd-sysusers failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).expect("etc/passwd");
    let entry: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == user)
        .unwrap_or_else(|| panic!("no `{user}` in the generated passwd:\n{passwd}"));
    let uid: u32 = entry[2].parse().expect("uid");
    assert!(
        uid > 0 && uid < 1000,
        "`{user}` should be a system user: {entry:?}"
    );
    assert_eq!(entry[5], "/var/lib/transitwatch", "home: {entry:?}");
    assert_eq!(entry[6], "/usr/sbin/nologin", "shell: {entry:?}");
    let group = std::fs::read_to_string(root.path().join("etc/group")).expect("etc/group");
    assert!(
        group
            .lines()
            .any(|l| l.split(':').next() == Some(user.as_str())),
        "no `{user}` group in:\n{group}"
    );
}

#[test]
fn traces_as_an_unprivileged_user_with_only_ambient_net_raw() {
    let test = "traces_as_an_unprivileged_user_with_only_ambient_net_raw";
    if !service_simulation_available(test) {
        return;
    }
    let unit = unit_text();
    assert_eq!(single(&unit, "AmbientCapabilities"), "CAP_NET_RAW");
    assert_eq!(single(&unit, "CapabilityBoundingSet"), "CAP_NET_RAW");
    assert_eq!(single(&unit, "ProtectProc"), "invisible");
    assert_eq!(single(&unit, "ProcSubset"), "pid");

    let staged = stage_binary();
    let _one = one_trace_at_a_time();
    let out = run_as_service(true, &staged.bin, &["trace", "127.0.0.1", "--json"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "trace as nobody with CAP_NET_RAW ambient failed ({}):\n{}{stdout}",
        out.status,
        text(&out.stderr)
    );
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 1, "one record for one address:\n{stdout}");
    let record = &records[0];
    assert_eq!(record["schema"], "transitwatch.trace/1");
    assert_eq!(record["target"]["addr"], "127.0.0.1");
    assert_eq!(record["reached"], true, "{record}");
    let last = record["hops"]
        .as_array()
        .and_then(|h| h.last())
        .unwrap_or_else(|| panic!("no hops: {record}"));
    assert_eq!(last["addr"], "127.0.0.1", "{record}");
}

#[test]
fn without_the_ambient_capability_it_fails_in_one_line() {
    let test = "without_the_ambient_capability_it_fails_in_one_line";
    if !service_simulation_available(test) {
        return;
    }
    let staged = stage_binary();
    let out = run_as_service(false, &staged.bin, &["trace", "127.0.0.1", "--json"]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1 without CAP_NET_RAW; stderr: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no record without a trace: {}",
        text(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    assert!(
        lines[0].starts_with("transitwatch: error: ") && lines[0].contains("CAP_NET_RAW"),
        "unexpected message: {stderr}"
    );
    assert!(
        lines[0].contains(transitwatch::privilege::missing_message()),
        "not the capability check's message: {stderr}"
    );
}

/// Every system call name in the groups `systemd-analyze syscall-filter`
/// knows, with nested groups expanded.
fn syscall_groups() -> HashMap<String, BTreeSet<String>> {
    let out = run(Command::new("systemd-analyze").arg("syscall-filter"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut raw: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text(&out.stdout).lines() {
        if line.starts_with('@') {
            current = Some(line.trim().to_string());
            raw.entry(line.trim().to_string()).or_default();
        } else if line.starts_with(char::is_whitespace) {
            let item = line.trim();
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            if let Some(group) = &current {
                raw.get_mut(group).expect("group").push(item.to_string());
            }
        } else {
            current = None;
        }
    }
    fn expand(
        name: &str,
        raw: &HashMap<String, Vec<String>>,
        into: &mut BTreeSet<String>,
        depth: usize,
    ) {
        assert!(depth < 16, "syscall groups nest too deep at {name}");
        for item in raw
            .get(name)
            .unwrap_or_else(|| panic!("unknown group {name}"))
        {
            if item.starts_with('@') {
                expand(item, raw, into, depth + 1);
            } else {
                into.insert(item.clone());
            }
        }
    }
    raw.keys()
        .map(|g| {
            let mut set = BTreeSet::new();
            expand(g, &raw, &mut set, 0);
            (g.clone(), set)
        })
        .collect()
}

/// What the unit's SystemCallFilter= lines allow: the first line sets an
/// allow list (or, starting with `~`, a deny list), later lines add to it or
/// (with `~`) remove from it, as systemd.exec(5) describes.
struct SyscallFilter {
    allow: Option<BTreeSet<String>>,
    deny: BTreeSet<String>,
}

impl SyscallFilter {
    fn from_unit(unit: &str, groups: &HashMap<String, BTreeSet<String>>) -> SyscallFilter {
        let names = |list: &str| -> BTreeSet<String> {
            list.split_whitespace()
                .flat_map(|item| {
                    if item.starts_with('@') {
                        groups
                            .get(item)
                            .unwrap_or_else(|| panic!("unknown group {item}"))
                            .clone()
                    } else {
                        // `name:errno` assigns an error to one call.
                        BTreeSet::from([item.split(':').next().unwrap_or(item).to_string()])
                    }
                })
                .collect()
        };
        let mut filter = SyscallFilter {
            allow: None,
            deny: BTreeSet::new(),
        };
        for (i, value) in directive(unit, "SystemCallFilter").iter().enumerate() {
            if let Some(denied) = value.strip_prefix('~') {
                let denied = names(denied);
                match &mut filter.allow {
                    Some(allow) => allow.retain(|s| !denied.contains(s)),
                    None => filter.deny.extend(denied),
                }
            } else if i == 0 {
                filter.allow = Some(names(value));
            } else {
                let allowed = names(value);
                match &mut filter.allow {
                    Some(allow) => allow.extend(allowed),
                    None => filter.deny.retain(|s| !allowed.contains(s)),
                }
            }
        }
        filter
    }

    fn admits(&self, syscall: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(syscall)) && !self.deny.contains(syscall)
    }
}

/// Whether the loopback interface has ::1 (containers sometimes lack IPv6).
fn have_ipv6_loopback() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("00000000000000000000000000000001 "))
    })
}

/// System call name of an strace line (`PID name(args...`), if it has one.
fn strace_call(line: &str) -> Option<(&str, &str)> {
    let rest = line.split_once(' ')?.1.trim_start();
    let (name, args) = rest.split_once('(')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some((name, args))
}

/// What the unit's seccomp, address-family and W^X settings admit, checked
/// against `strace -f` logs.
struct Sandbox {
    filter: SyscallFilter,
    families: BTreeSet<String>,
    /// Every system call seen in the logs checked so far.
    seen: BTreeSet<String>,
    /// What the unit would refuse, one line each.
    refused: BTreeSet<String>,
}

impl Sandbox {
    fn from_unit(unit: &str) -> Sandbox {
        let filter = SyscallFilter::from_unit(unit, &syscall_groups());
        assert!(filter.allow.is_some(), "the unit should set an allow list");
        assert_eq!(single(unit, "MemoryDenyWriteExecute"), "yes");
        Sandbox {
            filter,
            families: single(unit, "RestrictAddressFamilies")
                .split_whitespace()
                .map(String::from)
                .collect(),
            seen: BTreeSet::new(),
            refused: BTreeSet::new(),
        }
    }

    fn check_log(&mut self, what: &str, log: &Path) {
        let trace = std::fs::read_to_string(log).expect("strace log");
        for line in trace.lines() {
            let Some((name, args)) = strace_call(line) else {
                continue;
            };
            self.seen.insert(name.to_string());
            if !self.filter.admits(name) {
                self.refused.insert(format!("{what}: system call {name}"));
            }
            if name == "socket" || name == "socketpair" {
                let family = args.split(',').next().unwrap_or("").trim();
                if !self.families.contains(family) {
                    self.refused
                        .insert(format!("{what}: address family {family}: {line}"));
                }
            }
            if matches!(name, "mmap" | "mprotect" | "pkey_mprotect")
                && args.contains("PROT_WRITE")
                && args.contains("PROT_EXEC")
            {
                self.refused
                    .insert(format!("{what}: writable+executable memory: {line}"));
            }
        }
    }

    /// Fails unless the logs were read (`calls` were seen) and nothing would
    /// be refused.
    fn assert_admitted(&self, calls: &[&str]) {
        for call in calls {
            assert!(
                self.seen.contains(*call),
                "no {call} in the strace logs: {:?}",
                self.seen
            );
        }
        assert!(
            self.refused.is_empty(),
            "the unit's sandbox would refuse:\n{}",
            self.refused.iter().cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

/// Skips unless strace and the syscall groups of systemd-analyze are here,
/// besides the identity simulation.
fn strace_available(test: &str) -> bool {
    if !service_simulation_available(test) {
        return false;
    }
    for (tool, package) in [("strace", "strace"), ("systemd-analyze", "systemd")] {
        if !support::have(tool) {
            support::skip(
                test,
                &format!("{tool} is missing (Debian package {package})"),
            );
            return false;
        }
    }
    true
}

#[test]
fn sandbox_admits_every_call_the_prober_makes() {
    let test = "sandbox_admits_every_call_the_prober_makes";
    if !strace_available(test) {
        return;
    }
    let mut sandbox = Sandbox::from_unit(&unit_text());
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["127.0.0.1"],
        vec!["127.0.0.1", "--protocol", "udp"],
        vec!["127.0.0.1", "--protocol", "tcp", "--port", "9"],
        // A name goes through glibc's resolver (nsswitch, /etc/hosts, nscd).
        vec!["localhost", "-4"],
    ];
    if have_ipv6_loopback() {
        runs.push(vec!["::1", "-6"]);
        runs.push(vec!["::1", "-6", "--protocol", "udp"]);
        runs.push(vec!["::1", "-6", "--protocol", "tcp", "--port", "9"]);
    } else {
        println!("{test}: no ::1 on loopback, IPv6 traces not recorded");
    }

    let staged = stage_binary();
    let logs = shared_dir();
    let strace = which("strace");
    let _one = one_trace_at_a_time();
    for (n, target) in runs.iter().enumerate() {
        let log = logs.path().join(format!("strace.{n}"));
        let log_arg = log.display().to_string();
        let bin_arg = staged.bin.display().to_string();
        let mut args = vec!["-f", "-qq", "-o", &log_arg, &bin_arg, "trace"];
        args.extend(target);
        args.push("--json");
        // setpriv gives strace the service's identity, and the binary it
        // starts inherits it (ambient capabilities survive the execve), so
        // what is recorded is the binary as the unit runs it.
        let out = run_as_service(true, &strace, &args);
        assert!(
            out.status.success(),
            "trace {target:?} failed under strace ({}): {}",
            out.status,
            text(&out.stderr)
        );
        sandbox.check_log(&format!("trace {target:?}"), &log);
    }
    // The logs were read: a trace opens sockets and sends probes.
    sandbox.assert_admitted(&["execve", "socket", "sendto"]);
}

/// The value of `transitwatch_trace_runs_total` for a target's reached
/// traces in a metrics page.
fn reached_runs(metrics: &str, target: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("transitwatch_trace_runs_total{"))
        .filter(|l| l.contains(&format!("target=\"{target}\"")))
        .filter(|l| l.contains("outcome=\"reached\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The child of `parent` running `comm`, if there is one yet (found through
/// every process's stat line: `pid (comm) state ppid ...`).
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // comm may hold spaces and parentheses: split at the last ')'.
                let Some((head, rest)) = stat.rsplit_once(')') else {
                    return false;
                };
                let ppid = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u32>().ok());
                head.split_once('(').map(|(_, c)| c) == Some(comm) && ppid == Some(parent)
            })
        })
}

/// Seconds of a systemd time span such as `30s`, `1min 30s` or `90`.
fn seconds(span: &str) -> u64 {
    span.split_whitespace()
        .map(|part| {
            let digits = part.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let n: u64 = digits
                .parse()
                .unwrap_or_else(|_| panic!("unreadable time span `{span}`"));
            match &part[digits.len()..] {
                "" | "s" | "sec" => n,
                "m" | "min" => n * 60,
                "h" | "hr" => n * 3600,
                unit => panic!("unexpected time unit `{unit}` in `{span}`"),
            }
        })
        .sum()
}

/// The daemon started under strace by the daemon test; killed on drop, so a
/// failing test leaves nothing behind.
struct Daemon {
    /// `unshare`, which became `setpriv`, then `strace`.
    tracer: std::process::Child,
    /// The daemon itself, strace's child.
    pid: u32,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // strace's death would detach, not end, the daemon: end both.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.tracer.kill();
        let _ = self.tracer.wait();
    }
}

#[test]
fn daemon_runs_reloads_and_stops_inside_the_sandbox() {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};
    let test = "daemon_runs_reloads_and_stops_inside_the_sandbox";
    if !strace_available(test) {
        return;
    }
    let unit = unit_text();
    let mut sandbox = Sandbox::from_unit(&unit);
    let staged = stage_binary();
    let help = run(Command::new(&staged.bin).args(["run", "--help"]));
    if !help.status.success() {
        support::skip(test, "this build has no `run` subcommand");
        return;
    }

    // The unit's layout: a root-owned configuration directory the service
    // reads, a state directory only the service user may enter
    // ($STATE_DIRECTORY, as StateDirectory= sets it).
    let (uid, gid) = nobody();
    let (uid, gid): (u32, u32) = (uid.parse().expect("uid"), gid.parse().expect("gid"));
    let base = shared_dir();
    let config_dir = base.path().join("etc");
    let state = base.path().join("state");
    std::fs::create_dir(&config_dir).expect("mkdir etc");
    std::fs::create_dir(&state).expect("mkdir state");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod etc");
        std::os::unix::fs::chown(&state, Some(uid), Some(gid)).expect("chown state");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700))
            .expect("chmod state");
    }
    let port = free_port();
    let ipv6 = have_ipv6_loopback();
    let mut targets = vec!["loop4"];
    let mut config = format!(
        r#"[vantage]
name = "loopback"
country = "LS"

[probe]
interval = "1s"
jitter = "100ms"
deadline = "1s"
concurrency = 2

[metrics]
listen = "127.0.0.1:{port}"

[[target]]
name = "loop4"
host = "127.0.0.1"
"#
    );
    if ipv6 {
        targets.push("loop6");
        config.push_str("\n[[target]]\nname = \"loop6\"\nhost = \"::1\"\n");
    }
    let config_file = config_dir.join("transitwatch.toml");
    std::fs::write(&config_file, config).expect("write config");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config_file, std::fs::Permissions::from_mode(0o644))
            .expect("chmod config");
    }

    let log = base.path().join("strace.log");
    let stderr_file = base.path().join("daemon.stderr");
    let log_arg = log.display().to_string();
    let bin_arg = staged.bin.display().to_string();
    let config_arg = config_file.display().to_string();
    let _one = one_trace_at_a_time();
    let tracer = service_command(
        true,
        &which("strace"),
        &[
            "-f",
            "-qq",
            "-o",
            &log_arg,
            &bin_arg,
            "run",
            "--config",
            &config_arg,
        ],
    )
    .env("STATE_DIRECTORY", &state)
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
    .spawn()
    .expect("start the daemon");
    let mut daemon = Daemon { tracer, pid: 0 };
    let daemon_stderr = || std::fs::read_to_string(&stderr_file).unwrap_or_default();

    // Hang guards, not timing assertions.
    let start = Instant::now();
    while daemon.pid == 0 {
        assert!(
            daemon.tracer.try_wait().expect("try_wait").is_none(),
            "the daemon ended at start: {}",
            daemon_stderr()
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "strace started no daemon"
        );
        // Before strace runs, the wrapper's own children (mount) show up;
        // after its fork, strace's child is named strace until its execve.
        daemon.pid = child_named(daemon.tracer.id(), "transitwatch").unwrap_or(0);
        std::thread::sleep(Duration::from_millis(20));
    }
    let wait_for_traces = |after: f64| -> f64 {
        let start = Instant::now();
        loop {
            let page = http_get(port, "/metrics").filter(|(code, _)| *code == 200);
            if let Some((_, body)) = &page {
                let least = targets
                    .iter()
                    .map(|t| reached_runs(body, t))
                    .fold(f64::INFINITY, f64::min);
                if least > after {
                    return least;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no reached traces of {targets:?} after {after}; last page: {page:?}; stderr: {}",
                daemon_stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let before_reload = wait_for_traces(0.0);

    // ExecReload=, with $MAINPID the daemon: it survives SIGHUP (whose
    // default action would end it) and goes on tracing.
    let reload = single(&unit, "ExecReload").replace("$MAINPID", &daemon.pid.to_string());
    let status = run(Command::new("sh").args(["-c", &reload])).status;
    assert!(status.success(), "`{reload}` failed: {status}");
    wait_for_traces(before_reload);
    assert!(
        daemon.tracer.try_wait().expect("try_wait").is_none(),
        "the daemon ended on SIGHUP: {}",
        daemon_stderr()
    );

    // KillSignal= ends it cleanly within TimeoutStopSec=.
    let signal = single(&unit, "KillSignal");
    let timeout = Duration::from_secs(seconds(&single(&unit, "TimeoutStopSec")));
    let status = run(Command::new("kill").args([
        format!("-{}", signal.trim_start_matches("SIG")),
        daemon.pid.to_string(),
    ]))
    .status;
    assert!(status.success(), "kill -{signal} failed: {status}");
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = daemon.tracer.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(
            start.elapsed() < timeout,
            "the daemon did not stop within TimeoutStopSec ({timeout:?}) after {signal}: {}",
            daemon_stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // strace exits with the daemon's status.
    assert!(
        exit.success(),
        "the daemon exited with {exit} after {signal}: {}",
        daemon_stderr()
    );

    // UMask=0077: whatever it wrote is the service user's alone.
    let mut written = 0;
    for entry in std::fs::read_dir(&state).expect("state dir") {
        let meta = entry.expect("entry").metadata().expect("metadata");
        written += 1;
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{meta:?}");
        assert_eq!(meta.mode() & 0o077, 0, "mode {:o}", meta.mode());
    }
    assert!(written > 0, "the daemon kept no state in $STATE_DIRECTORY");

    sandbox.check_log("run", &log);
    // The log was read: the daemon listened and probed.
    sandbox.assert_admitted(&["listen", "socket", "sendto"]);
}

/// A program's full path (setpriv execs it without a PATH search of ours).
fn which(program: &str) -> PathBuf {
    let out = run(Command::new("sh").args(["-c", &format!("command -v {program}")]));
    assert!(out.status.success(), "{program} is not on PATH");
    PathBuf::from(text(&out.stdout).trim())
}

#[test]
fn private_users_would_break_raw_sockets() {
    // PrivateUsers= is left out of the unit: in a user namespace of its own
    // the process holds CAP_NET_RAW only over namespaces that namespace owns,
    // and the host's network namespace is not one of them.
    let test = "private_users_would_break_raw_sockets";
    let unit = unit_text();
    assert!(
        directive(&unit, "PrivateUsers")
            .iter()
            .all(|v| v == "no" || v == "false"),
        "PrivateUsers= would take raw sockets away from the service"
    );
    if !support::have("unshare") {
        support::skip(test, "unshare is missing (Debian package util-linux)");
        return;
    }
    let probe = run(Command::new("unshare").args(["--user", "--map-root-user", "true"]));
    if !probe.status.success() {
        // Not a missing tool: the kernel or a sysctl forbids user namespaces
        // here, so the directive could not be demonstrated either way.
        println!(
            "SKIPPED {test}: user namespaces are unavailable: {}",
            text(&probe.stderr).trim()
        );
        return;
    }
    let out = run(Command::new("unshare")
        .args(["--user", "--map-root-user"])
        .arg(support::bin())
        .args(["trace", "127.0.0.1", "--json"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.starts_with("transitwatch: error: ")
            && !stderr.contains(transitwatch::privilege::missing_message()),
        "the capability is held in the namespace, the socket is refused: {stderr}"
    );
}
