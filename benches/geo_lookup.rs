//! Lookup throughput of `GeoDb` on one core, per database schema.
//!
//! Builds a fixture MMDB of 100,000 prefixes (80% IPv4 /16–/24, 20% IPv6
//! /32–/48) for each schema with that schema's record layout, an override
//! table of 100,000 prefixes, and a City + ASN pair, then times `locate` over
//! the same fixed-seed sequence of public addresses (half inside a fixture
//! prefix, half anywhere). When python3 has the `maxminddb` package, the
//! same addresses are looked up in the same files by it, in the same run,
//! and the ratio is printed.
//!
//! Run with `cargo bench --bench geo_lookup`.

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{Value, Writer};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use transitwatch::geo::{reserved_range, GeoDb};
use transitwatch::model::GeoSource;

type BoxError = Box<dyn std::error::Error>;

const PREFIXES: usize = 100_000;
const LOOKUPS: usize = 1_000_000;
const PEER_LOOKUPS: usize = 200_000;

/// A fixed-seed generator (splitmix64): the same addresses every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A public network of the fixture: `(network address, length)`.
fn random_net(rng: &mut Rng) -> (IpAddr, u8) {
    loop {
        let (addr, len) = if rng.below(5) < 4 {
            let len = 16 + rng.below(9) as u8;
            let bits = (rng.next() as u32) & (u32::MAX << (32 - u32::from(len)));
            (IpAddr::V4(Ipv4Addr::from(bits)), len)
        } else {
            let len = 32 + rng.below(17) as u8;
            // Global unicast, 2000::/3.
            let bits = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3
                | 0x2000_0000_0000_0000_0000_0000_0000_0000;
            let bits = bits & (u128::MAX << (128 - u32::from(len)));
            (IpAddr::V6(Ipv6Addr::from(bits)), len)
        };
        // 0/8 aside, and Teredo (2001::/32) and 6to4 (2002::/16), which an
        // IPv6 MMDB reserves for aliases of the IPv4 space.
        let usable = match addr {
            IpAddr::V4(a) => a.octets()[0] != 0,
            IpAddr::V6(a) => !matches!(a.segments(), [0x2001, 0, ..] | [0x2002, ..]),
        };
        if usable && reserved_range(addr).is_none() {
            return (addr, len);
        }
    }
}

/// An address inside `net`.
fn inside(rng: &mut Rng, (addr, len): (IpAddr, u8)) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let host = (rng.next() as u32).checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
        }
        IpAddr::V6(a) => {
            let r = u128::from(rng.next()) << 64 | u128::from(rng.next());
            IpAddr::V6(Ipv6Addr::from(
                u128::from(a) | r.checked_shr(u32::from(len)).unwrap_or(0),
            ))
        }
    }
}

fn names(en: &str) -> Value {
    Value::map([("de", Value::from(en)), ("en", Value::from(en))])
}

const COUNTRIES: [&str; 12] = [
    "LS", "ZA", "BW", "NA", "MZ", "SZ", "KE", "NG", "GB", "DE", "US", "FR",
];

/// The record of fixture entry `i` in a schema's layout.
fn record(schema: &str, i: usize) -> Option<Value> {
    let cc = COUNTRIES[i % COUNTRIES.len()];
    let city = format!("City {}", i % 5_000);
    let lat = (i % 170) as f64 - 85.0 + 0.25;
    let lon = (i % 350) as f64 - 175.0 + 0.5;
    let asn = 1 + (i % 10_000) as u32;
    let org = format!("Operator {asn}");
    let country = || {
        Value::map([
            (
                "geoname_id",
                Value::from(1_000 + (i % COUNTRIES.len()) as u32),
            ),
            ("iso_code", Value::from(cc)),
            ("names", names(cc)),
        ])
    };
    let continent = || Value::map([("code", Value::from("AF")), ("names", names("Africa"))]);
    Some(match schema {
        "GeoLite2-City" => Value::map([
            (
                "city",
                Value::map([
                    ("geoname_id", Value::from(i as u32 % 5_000)),
                    ("names", names(&city)),
                ]),
            ),
            ("continent", continent()),
            ("country", country()),
            (
                "location",
                Value::map([
                    ("accuracy_radius", Value::from(20_u16 + (i % 500) as u16)),
                    ("latitude", Value::from(lat)),
                    ("longitude", Value::from(lon)),
                    ("time_zone", Value::from("Africa/Maseru")),
                ]),
            ),
            ("registered_country", country()),
            (
                "subdivisions",
                Value::array([Value::map([
                    ("iso_code", Value::from("A")),
                    ("names", names("Region")),
                ])]),
            ),
        ]),
        "GeoLite2-Country" => Value::map([
            ("continent", continent()),
            ("country", country()),
            ("registered_country", country()),
        ]),
        "GeoLite2-ASN" | "DBIP-ASN-Lite (compat=GeoLite2-ASN)" => Value::map([
            ("autonomous_system_number", Value::from(asn)),
            ("autonomous_system_organization", Value::from(org)),
        ]),
        "DBIP-City-Lite" => Value::map([
            (
                "city",
                Value::map([("names", Value::map([("en", Value::from(city))]))]),
            ),
            ("continent", continent()),
            ("country", country()),
            (
                "location",
                Value::map([
                    ("latitude", Value::from(lat)),
                    ("longitude", Value::from(lon)),
                ]),
            ),
        ]),
        "DBIP-Country-Lite" => Value::map([("continent", continent()), ("country", country())]),
        "ipinfo lite" => Value::map([
            ("as_domain", Value::from("example.net")),
            ("as_name", Value::from(org)),
            ("asn", Value::from(format!("AS{asn}"))),
            ("continent", Value::from("Africa")),
            ("continent_code", Value::from("AF")),
            ("country", Value::from(cc)),
            ("country_code", Value::from(cc)),
        ]),
        "country" => Value::map([("country_code", Value::from(cc))]),
        "city" => Value::map([
            ("city", Value::from(city)),
            ("country_code", Value::from(cc)),
            ("latitude", Value::from(lat as f32)),
            ("longitude", Value::from(lon as f32)),
            ("postcode", Value::from("")),
            ("state1", Value::from("Region")),
            ("state2", Value::from("")),
            ("timezone", Value::from("Africa/Maseru")),
        ]),
        _ => return None,
    })
}

fn build_db(dir: &Path, database_type: &str, nets: &[(IpAddr, u8)]) -> Result<PathBuf, BoxError> {
    let mut writer = Writer::new(database_type);
    for (i, &(addr, len)) in nets.iter().enumerate() {
        let net = IpNet::new(addr, len)?;
        let value = record(database_type, i)
            .ok_or_else(|| format!("no fixture layout for {database_type}"))?;
        writer.insert_value(net, value)?;
    }
    let file = dir.join(format!(
        "{}.mmdb",
        database_type.replace([' ', '(', ')', '='], "_")
    ));
    std::fs::write(&file, writer.to_bytes()?)?;
    Ok(file)
}

fn build_overrides(dir: &Path, nets: &[(IpAddr, u8)]) -> Result<PathBuf, BoxError> {
    let mut csv = String::from("prefix,country,city,lat,lon,asn,note\n");
    for (i, &(addr, len)) in nets.iter().enumerate() {
        let cc = COUNTRIES[i % COUNTRIES.len()];
        let _ = writeln!(
            csv,
            "{addr}/{len},{cc},City {},-29.31,27.48,{},",
            i % 5_000,
            1 + i % 10_000
        );
    }
    let file = dir.join("overrides.csv");
    std::fs::write(&file, csv)?;
    Ok(file)
}

/// Times lookups of every address; returns ns per lookup and how many
/// addresses something was found for.
fn time_ours(db: &GeoDb, addrs: &[IpAddr]) -> (f64, usize) {
    for a in addrs.iter().take(10_000) {
        black_box(db.locate(*a));
    }
    let start = Instant::now();
    let mut located = 0;
    for a in addrs {
        if black_box(db.locate(*a)).source != GeoSource::None {
            located += 1;
        }
    }
    (
        start.elapsed().as_secs_f64() * 1e9 / addrs.len() as f64,
        located,
    )
}

const PYTHON_TIMER: &str = r#"
import sys, time, maxminddb
reader = maxminddb.open_database(sys.argv[1])
addrs = open(sys.argv[2]).read().split()
for a in addrs[:10000]:
    reader.get(a)
start = time.perf_counter()
for a in addrs:
    reader.get(a)
elapsed = time.perf_counter() - start
print(elapsed / len(addrs) * 1e9, type(reader).__module__)
"#;

/// ns per lookup of Python's maxminddb over the same addresses, and its mode.
fn time_python(file: &Path, addr_file: &Path) -> Option<(f64, String)> {
    let out = Command::new("python3")
        .args(["-c", PYTHON_TIMER])
        .arg(file)
        .arg(addr_file)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace();
    let ns = parts.next()?.parse().ok()?;
    Some((ns, parts.next().unwrap_or("?").to_string()))
}

fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut rng = Rng(0x005E_ED0F_7A5E_2026);
    let mut seen = HashSet::new();
    let mut nets = Vec::with_capacity(PREFIXES);
    while nets.len() < PREFIXES {
        let net = random_net(&mut rng);
        if seen.insert(net) {
            nets.push(net);
        }
    }
    let mut addrs = Vec::with_capacity(LOOKUPS);
    while addrs.len() < LOOKUPS {
        let a = if rng.below(2) == 0 {
            let net = nets[rng.below(nets.len() as u64) as usize];
            inside(&mut rng, net)
        } else {
            let net = random_net(&mut rng);
            inside(&mut rng, net)
        };
        if reserved_range(a).is_none() {
            addrs.push(a);
        }
    }
    let addr_file = d.join("addrs.txt");
    let peer_addrs: String = addrs[..PEER_LOOKUPS]
        .iter()
        .map(|a| format!("{a}\n"))
        .collect();
    std::fs::write(&addr_file, peer_addrs)?;
    let python = Command::new("python3")
        .args(["-c", "import maxminddb"])
        .status()
        .is_ok_and(|s| s.success());

    let schemas = [
        "GeoLite2-City",
        "GeoLite2-Country",
        "GeoLite2-ASN",
        "DBIP-City-Lite",
        "DBIP-Country-Lite",
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        "ipinfo lite",
        "country",
        "city",
    ];
    println!(
        "geo_lookup: {PREFIXES} prefixes per database, {LOOKUPS} lookups on one core \
         ({} IPv6), python peer: {} lookups",
        addrs.iter().filter(|a| a.is_ipv6()).count(),
        if python {
            PEER_LOOKUPS.to_string()
        } else {
            "not available".into()
        }
    );
    println!(
        "{:<16} {:>8} {:>12} {:>10} {:>9} {:>12} {:>8}",
        "schema", "size MB", "lookups/s", "ns/lookup", "located", "python ns", "ratio"
    );
    let mut peer_mode = None;
    let mut city_file = None;
    let mut asn_file = None;
    for database_type in schemas {
        let started = Instant::now();
        let file = build_db(d, database_type, &nets)?;
        let build_time = started.elapsed();
        let db = GeoDb::open(std::slice::from_ref(&file), None)?;
        let label = db.databases()[0].schema.name();
        let (per, located) = time_ours(&db, &addrs);
        let peer = python.then(|| time_python(&file, &addr_file)).flatten();
        if let Some((_, mode)) = &peer {
            peer_mode.get_or_insert_with(|| mode.clone());
        }
        print_row(label, &file, per, located, peer.as_ref().map(|p| p.0));
        eprintln!("  ({database_type}: built in {build_time:.1?})");
        match database_type {
            "GeoLite2-City" => city_file = Some(file),
            "GeoLite2-ASN" => asn_file = Some(file),
            _ => {}
        }
    }
    if let (Some(city), Some(asn)) = (city_file, asn_file) {
        let db = GeoDb::open(&[city, asn], None)?;
        let (per, located) = time_ours(&db, &addrs);
        print_row_plain("city + asn", per, located);
    }
    let overrides = build_overrides(d, &nets)?;
    let started = Instant::now();
    let db = GeoDb::open(&[], Some(&overrides))?;
    eprintln!(
        "  (overrides: {PREFIXES} rows loaded in {:.1?})",
        started.elapsed()
    );
    let (per, located) = time_ours(&db, &addrs);
    print_row_plain("overrides", per, located);
    if let Some(mode) = peer_mode {
        println!("python maxminddb reader: {mode}; ratio = python ns / transitwatch ns");
    }
    Ok(())
}

fn print_row(label: &str, file: &Path, ns: f64, located: usize, peer_ns: Option<f64>) {
    let size = std::fs::metadata(file).map_or(0, |m| m.len()) as f64 / 1e6;
    let (peer, ratio) = match peer_ns {
        Some(p) => (format!("{p:.0}"), format!("{:.1}x", p / ns)),
        None => ("-".into(), "-".into()),
    };
    println!(
        "{label:<16} {size:>8.1} {:>12.0} {ns:>10.0} {:>8.1}% {peer:>12} {ratio:>8}",
        1e9 / ns,
        located as f64 * 100.0 / LOOKUPS as f64
    );
}

fn print_row_plain(label: &str, ns: f64, located: usize) {
    println!(
        "{label:<16} {:>8} {:>12.0} {ns:>10.0} {:>8.1}% {:>12} {:>8}",
        "-",
        1e9 / ns,
        located as f64 * 100.0 / LOOKUPS as f64,
        "-",
        "-"
    );
}
