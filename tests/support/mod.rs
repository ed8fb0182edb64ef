//! Test support: the namespace lab and helpers to run the real binary and
//! the peer tools inside it.
//!
//! `Lab::up()` builds the lab of `tests/lab/lab.sh` under a prefix unique to
//! this process and test, and tears it down on drop, also when the test
//! panics. Without CAP_NET_ADMIN and CAP_NET_RAW it prints a skip line and
//! returns `None`; with `TRANSITWATCH_REQUIRE_LAB=1` (set by CI) it panics
//! instead, so a lab test can never pass by being skipped there.
//!
//! `services` runs Prometheus and Alertmanager at the vantage, `daemon`
//! the daemon under test (`LabDaemon`, its configuration and its parsed
//! metrics) and `webhook` the webhook receiver, at the vantage or on this
//! host; `dns` a real DNS server (unbound) and hostile ones on this host;
//! each process is killed on drop. `records` builds trace records
//! like the daemon's; `dashboards` walks the Grafana dashboards' JSON.
//! `browser` drives headless Chromium in a network namespace and
//! `report_page` checks the report page it shows against the JSON report;
//! `schema` checks JSON documents against the published schemas; `pki`
//! makes the certificates and web configuration of the TLS tests.
#![allow(dead_code)]

pub mod browser;
pub mod daemon;
pub mod dashboards;
pub mod datasets;
pub mod dns;
pub mod loopback;
pub mod pki;
pub mod records;
pub mod report_page;
pub mod schema;
pub mod services;
pub mod webhook;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// The transitwatch binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_transitwatch")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab_script() -> PathBuf {
    root().join("tests/lab/lab.sh")
}

/// Whether this process holds a capability (by bit number).
pub fn has_cap(bit: u32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether every program of `tools` is on PATH; if one is not, `skip`
/// names it (a failure under `TRANSITWATCH_REQUIRE_LAB=1`).
pub fn have_all(test: &str, tools: &[&str]) -> bool {
    match tools.iter().find(|tool| !have(tool)) {
        Some(tool) => !skip(
            test,
            &format!("{tool} is not installed (scripts/setup.sh installs it)"),
        ),
        None => true,
    }
}

/// Skip (print and return `true`) unless the environment allows; under
/// `TRANSITWATCH_REQUIRE_LAB=1` a missing requirement fails the test.
pub fn skip(test: &str, why: &str) -> bool {
    if std::env::var("TRANSITWATCH_REQUIRE_LAB").as_deref() == Ok("1") {
        panic!("{test}: required but cannot run: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    true
}

/// A running lab; dropped, it deletes every namespace it made.
pub struct Lab {
    prefix: String,
    addrs: HashMap<String, String>,
}

impl Lab {
    /// Build a lab, or `None` (after printing why) when this process may not.
    pub fn up(test: &str) -> Option<Lab> {
        const CAP_NET_ADMIN: u32 = 12;
        const CAP_NET_RAW: u32 = 13;
        if !(has_cap(CAP_NET_ADMIN) && has_cap(CAP_NET_RAW)) {
            skip(
                test,
                "the lab needs CAP_NET_ADMIN and CAP_NET_RAW (run as root)",
            );
            return None;
        }
        for tool in ["ip", "nft", "sysctl"] {
            if !have(tool) {
                skip(test, &format!("`{tool}` is not installed"));
                return None;
            }
        }
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("twt{}x{n}", std::process::id());
        // Constructed before `up` so that a half-built lab is torn down too.
        let lab = Lab {
            prefix,
            addrs: addrs(),
        };
        let out = Command::new("bash")
            .arg(lab_script())
            .args(["up", &lab.prefix])
            .output()
            .expect("run lab.sh");
        assert!(
            out.status.success(),
            "lab.sh up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(lab)
    }

    /// The namespace prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A well-known lab address (`lab.sh addrs`), e.g. `DOMESTIC_V4`.
    pub fn addr(&self, key: &str) -> &str {
        self.addrs
            .get(key)
            .unwrap_or_else(|| panic!("no lab address {key}"))
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(lab_script())
            .args(args)
            .output()
            .expect("run lab.sh");
        assert!(
            out.status.success(),
            "lab.sh {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Send domestic-service traffic via `"ls"` or `"za"`.
    pub fn route(&self, via: &str) {
        self.script(&["route", &self.prefix, via]);
    }

    /// Send traffic for some destination prefixes only via `"ls"` or `"za"`.
    pub fn route_prefixes(&self, via: &str, dests: &[&str]) {
        let mut args = vec!["route", &self.prefix, via];
        args.extend_from_slice(dests);
        self.script(&args);
    }

    /// Balance domestic-service traffic (or only `dests`) per flow over the
    /// LS and the ZA route at r1 (`on`), or send it via LS again.
    pub fn ecmp(&self, on: bool, dests: &[&str]) {
        let mut args = vec!["ecmp", &self.prefix, if on { "on" } else { "off" }];
        args.extend_from_slice(dests);
        self.script(&args);
    }

    /// Silence (or restore) router ls2's time-exceeded replies.
    pub fn silence(&self, on: bool) {
        self.script(&["silence", &self.prefix, if on { "on" } else { "off" }]);
    }

    /// A command that runs `program args` inside lab node `node`.
    pub fn command(&self, node: &str, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-{node}", self.prefix)])
            .arg(program.as_ref());
        c
    }

    /// The lab's DNS server (unbound at the vantage, `DNS_V4` port 53) as
    /// `ADDR:PORT`, or `None` (after a skip line) when unbound is not
    /// installed and so the lab has none.
    pub fn dns_server(&self, test: &str) -> Option<String> {
        have_all(test, &["unbound", "dig"]).then(|| format!("{}:53", self.addr("DNS_V4")))
    }

    /// The pid files of the processes this lab runs (delay lines, DNS).
    pub fn pid_files(&self) -> Vec<PathBuf> {
        let dir = PathBuf::from("/run/transitwatch-lab").join(&self.prefix);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "pid"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Run transitwatch at the vantage.
    pub fn transitwatch(&self, args: &[&str]) -> Output {
        self.command("v", bin())
            .args(args)
            .output()
            .expect("run transitwatch")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(lab_script())
            .args(["down", &self.prefix])
            .output();
    }
}

fn addrs() -> HashMap<String, String> {
    let out = Command::new("bash")
        .arg(lab_script())
        .arg("addrs")
        .output()
        .expect("run lab.sh addrs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Output as text, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Build the lab's third-party city database (`tests/lab/lab-geo-db.csv`,
/// wrong for routers ls2 and za1) as `DIR/lab-geo-db.mmdb`, of the custom
/// type `LabGeo-City`: a database, not overrides.
pub fn lab_geo_database(dir: &Path) -> PathBuf {
    let mmdb = dir.join("lab-geo-db.mmdb");
    let out = Command::new(bin())
        .args(["geo", "build", "--database-type", "LabGeo-City", "--csv"])
        .arg(root().join("tests/lab/lab-geo-db.csv"))
        .arg("--output")
        .arg(&mmdb)
        .output()
        .expect("run transitwatch geo build");
    assert!(
        out.status.success(),
        "geo build --database-type: {}",
        text(&out)
    );
    mmdb
}

/// `transitwatch analyze --input-format atlas --home LS --json` of an Atlas
/// export, located with the lab's overrides.
pub fn analyze_atlas(atlas: &Path) -> Output {
    Command::new(bin())
        .args([
            "analyze",
            "--input-format",
            "atlas",
            "--home",
            "LS",
            "--json",
        ])
        .arg("--input")
        .arg(atlas)
        .arg("--overrides")
        .arg(root().join("tests/lab/lab-geo.csv"))
        .output()
        .expect("run transitwatch analyze")
}
