//! Location sources beyond the databases, each kept as its own evidence:
//! RFC 8805 geofeeds, PeeringDB exchange LANs, registration-country
//! databases, operators' own database types (which locate reserved ranges),
//! their precedence, `GeoDb::evidence`, `geo lookup` and `geo build
//! --database-type`, and the errors bad files give (also from
//! `check-config`).

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Value, Writer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use transitwatch::geo::{GeoDb, GeoSources, BUILD_DATABASE_TYPE};
use transitwatch::model::{EvidenceKind, EvidenceStatus, GeoSource};

use crate::support::{self, bin};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sample_pdb() -> PathBuf {
    support::root().join("tests/resources/peeringdb/sample.json")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An MMDB of `database_type` whose records are GeoIP2 City-shaped.
fn city_db(dir: &Path, file: &str, database_type: &str, records: &[(&str, &str, &str)]) -> PathBuf {
    let mut writer = Writer::builder(database_type)
        .ip_version(IpVersion::V6)
        .description(&[("en", "fixture")])
        .build();
    for (net, cc, city) in records {
        let value = Value::map([
            ("country", Value::map([("iso_code", Value::from(*cc))])),
            (
                "city",
                Value::map([("names", Value::map([("en", Value::from(*city))]))]),
            ),
        ]);
        writer
            .insert_value(net.parse::<IpNet>().unwrap(), value)
            .unwrap();
    }
    let path = dir.join(file);
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

/// A flat `country_code` MMDB, as ip-location-db's registration-country
/// files are (`database_type` `country ipv4` and so on).
fn country_db(dir: &Path, file: &str, database_type: &str, records: &[(&str, &str)]) -> PathBuf {
    let mut writer = Writer::builder(database_type)
        .ip_version(IpVersion::V6)
        .description(&[("en", "fixture")])
        .build();
    for (net, cc) in records {
        writer
            .insert_value(
                net.parse::<IpNet>().unwrap(),
                Value::map([("country_code", Value::from(*cc))]),
            )
            .unwrap();
    }
    let path = dir.join(file);
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run transitwatch")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kinds(db: &GeoDb, addr: &str) -> Vec<EvidenceKind> {
    db.evidence(ip(addr)).iter().map(|e| e.kind).collect()
}

#[test]
fn the_peeringdb_sample_places_hops_at_their_exchange() {
    let db = GeoDb::open_with(&GeoSources {
        peeringdb: Some(sample_pdb()),
        ..GeoSources::default()
    })
    .unwrap();
    assert_eq!(db.peeringdb().map(|(_, x, p)| (x, p)), Some((4, 7)));

    let lixp = db.ixp(ip("192.0.2.10")).unwrap();
    assert_eq!(
        (
            lixp.id,
            lixp.name.as_str(),
            lixp.country.as_str(),
            lixp.city.as_deref()
        ),
        (1101, "LIXP", "LS", Some("Maseru"))
    );
    let geo = db.locate(ip("192.0.2.10"));
    assert_eq!(geo.country.unwrap().as_str(), "LS");
    assert_eq!(geo.source, GeoSource::Ixp);
    assert_eq!(geo.ixp, Some(lixp.clone()));
    assert_eq!(db.ixp(ip("2001:db8:1101::20")), Some(lixp));

    let items = db.evidence(ip("192.0.2.10"));
    assert_eq!(items.len(), 1, "{items:?}");
    let e = &items[0];
    assert_eq!(e.kind, EvidenceKind::Ixp);
    assert_eq!(e.source, "LIXP");
    assert_eq!(e.country.unwrap().as_str(), "LS");
    assert_eq!(e.city.as_deref(), Some("Maseru"));
    assert_eq!((e.lat, e.lon), (None, None));
    assert_eq!(e.status, EvidenceStatus::Agrees);
    assert_eq!(e.reason, None);
    let detail = e.detail.as_deref().unwrap();
    assert!(
        detail.contains("Lesotho Internet Exchange Point")
            && detail.contains("192.0.2.0/26")
            && detail.contains("ix 1101"),
        "{detail}"
    );

    // Two South African exchanges side by side, and one abroad.
    assert_eq!(
        db.ixp(ip("198.51.100.127")).unwrap().name,
        "NAPAfrica IX Johannesburg"
    );
    assert_eq!(db.ixp(ip("198.51.100.128")).unwrap().name, "JINX");
    assert_eq!(
        db.ixp(ip("2001:db8:1104:ff::1")).unwrap().country.as_str(),
        "DE"
    );
    // The deleted exchange's LAN and addresses off every LAN.
    assert_eq!(db.ixp(ip("192.0.2.70")), None);
    assert_eq!(db.ixp(ip("8.8.8.8")), None);
    assert!(db.evidence(ip("192.0.2.70")).is_empty());
    assert_eq!(db.locate(ip("192.0.2.70")).country, None);
}

#[test]
fn geofeeds_answer_by_longest_prefix_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "isp-ls.csv",
        "# ip_prefix,alpha2code,region,city,postal_code\n\
         41.203.64.0/18,LS,LS-A,Maseru,\n\
         41.203.65.0/24,LS,LS-D,Teyateyaneng,\n\
         41.203.66.0/24,,,,\n",
    );
    let second = write(
        dir.path(),
        "isp-za.csv",
        "41.203.0.0/16,ZA,ZA-GP,Johannesburg,\n2c0f:f8f0::/32,ZA,,Cape Town\n",
    );
    let db = GeoDb::open_with(&GeoSources {
        geofeeds: vec![first.clone(), second],
        ..GeoSources::default()
    })
    .unwrap();
    let country = |a: &str| db.locate(ip(a)).country.map(|c| c.to_string());
    // The first feed decides where it covers the address, by its longest prefix.
    let geo = db.locate(ip("41.203.65.9"));
    assert_eq!(geo.country.unwrap().as_str(), "LS");
    assert_eq!(geo.city.as_deref(), Some("Teyateyaneng"));
    assert_eq!(geo.source, GeoSource::Geofeed);
    assert_eq!(geo.database.as_deref(), Some("isp-ls.csv"));
    assert_eq!(country("41.203.70.1").as_deref(), Some("LS"));
    // An entry without a country locates nothing; the next feed answers.
    assert_eq!(country("41.203.66.1").as_deref(), Some("ZA"));
    assert_eq!(country("41.203.200.1").as_deref(), Some("ZA"));
    assert_eq!(country("2c0f:f8f0::1").as_deref(), Some("ZA"));
    assert_eq!(country("41.204.0.1"), None);

    // Every feed that covers the address is its own item, in order.
    let items = db.evidence(ip("41.203.65.9"));
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].source, "isp-ls.csv");
    assert_eq!(
        items[0].detail.as_deref(),
        Some(format!("{}:3: 41.203.65.0/24,LS,LS-D,Teyateyaneng", first.display()).as_str())
    );
    assert_eq!(items[1].source, "isp-za.csv");
    assert_eq!(items[1].country.unwrap().as_str(), "ZA");
    let unlocated = db.evidence(ip("41.203.66.1"));
    assert_eq!(unlocated[0].country, None);
    assert!(
        unlocated[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("not be located"),
        "{unlocated:?}"
    );
}

#[test]
fn every_source_is_its_own_item_strongest_first_and_precedence_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let addr = "41.203.64.10";
    let overrides = write(
        d,
        "ov.csv",
        "41.203.64.0/24,LS,Maseru,-29.31,27.48,64500,core\n",
    );
    let feed = write(d, "feed.csv", "41.203.64.0/24,LS,LS-A,Maseru,\n");
    let pdb = write(
        d,
        "pdb.json",
        r#"{"ix": {"data": [{"id": 7, "name": "LIXP", "city": "Maseru", "country": "LS", "media": "Ethernet"}]},
            "ixlan": {"data": [{"id": 8, "ix_id": 7}]},
            "ixpfx": {"data": [{"id": 9, "ixlan_id": 8, "protocol": "IPv4", "prefix": "41.203.64.0/24"}]}}"#,
    );
    let city = city_db(
        d,
        "city.mmdb",
        "GeoLite2-City",
        &[("41.203.0.0/16", "IE", "Dublin")],
    );
    let own = city_db(
        d,
        "own.mmdb",
        "acme-routers",
        &[("41.203.64.0/24", "ZA", "Johannesburg")],
    );
    let registration = country_db(
        d,
        "whois.mmdb",
        "geo-whois-asn-country ipv4",
        &[("41.203.0.0/16", "BW")],
    );
    let all = GeoSources {
        files: vec![city.clone(), own.clone()],
        overrides: Some(overrides),
        geofeeds: vec![feed],
        peeringdb: Some(pdb),
        registration: vec![registration.clone()],
        hostname_rules: None,
    };
    let db = GeoDb::open_with(&all).unwrap();
    let items = db.evidence(ip(addr));
    assert_eq!(
        items.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [
            EvidenceKind::Override,
            EvidenceKind::Geofeed,
            EvidenceKind::Ixp,
            EvidenceKind::Database,
            EvidenceKind::Database,
            EvidenceKind::Registration,
        ]
    );
    let said: Vec<(String, String)> = items
        .iter()
        .map(|e| (e.source.clone(), e.country.unwrap().to_string()))
        .collect();
    assert_eq!(
        said,
        [
            ("override", "LS"),
            ("feed.csv", "LS"),
            ("LIXP", "LS"),
            ("GeoLite2-City", "IE"),
            ("acme-routers", "ZA"),
            ("geo-whois-asn-country ipv4", "BW"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(items
        .iter()
        .all(|e| e.status == EvidenceStatus::Agrees && e.reason.is_none()));
    assert!(items[0]
        .detail
        .as_deref()
        .unwrap()
        .ends_with("ov.csv:1: 41.203.64.0/24 (core)"));
    assert_eq!((items[0].lat, items[0].lon), (Some(-29.31), Some(27.48)));
    assert_eq!(
        items[3].detail.as_deref(),
        Some(city.display().to_string().as_str())
    );
    assert_eq!(
        items[5].detail.as_deref(),
        Some(registration.display().to_string().as_str())
    );

    // locate: override > geofeed > exchange LAN > databases; registration never.
    let decide = |sources: &GeoSources| {
        let geo = GeoDb::open_with(sources).unwrap().locate(ip(addr));
        (geo.source, geo.country.map(|c| c.to_string()))
    };
    let ls = Some("LS".to_string());
    assert_eq!(decide(&all), (GeoSource::Override, ls.clone()));
    let mut s = all.clone();
    s.overrides = None;
    assert_eq!(decide(&s), (GeoSource::Geofeed, ls.clone()));
    s.geofeeds.clear();
    assert_eq!(decide(&s), (GeoSource::Ixp, ls));
    s.peeringdb = None;
    assert_eq!(decide(&s), (GeoSource::Mmdb, Some("IE".to_string())));
    s.files.clear();
    assert_eq!(decide(&s), (GeoSource::None, None));
    assert_eq!(
        GeoDb::open_with(&s).unwrap().evidence(ip(addr))[0].kind,
        EvidenceKind::Registration
    );
    // The exchange is named whichever source decided.
    assert_eq!(db.locate(ip(addr)).ixp.unwrap().name, "LIXP");
    // A source that says nothing gives no item.
    assert_eq!(
        kinds(&db, "41.203.99.1"),
        [EvidenceKind::Database, EvidenceKind::Registration]
    );
    assert!(db.evidence(ip("8.8.8.8")).is_empty());
}

#[test]
fn an_operators_own_database_type_locates_reserved_ranges_and_public_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let records = [
        ("198.18.0.0/15", "LS", "Maseru"),
        ("10.0.0.0/8", "ZA", "Johannesburg"),
        ("fd00::/8", "LS", "Maseru"),
    ];
    let own = city_db(d, "lab.mmdb", "Lesotho-Telecom-Routers", &records);
    let public = city_db(d, "city.mmdb", "GeoLite2-City", &records);
    let registration = country_db(d, "whois.mmdb", "country ipv4", &[("10.0.0.0/8", "US")]);

    let own_db = GeoDb::open(&[own], None).unwrap();
    for (a, cc) in [
        ("198.18.4.2", "LS"),
        ("198.19.255.1", "LS"),
        ("10.9.8.7", "ZA"),
        ("fd00::1", "LS"),
    ] {
        let geo = own_db.locate(ip(a));
        assert_eq!(
            geo.country.map(|c| c.to_string()).as_deref(),
            Some(cc),
            "{a}"
        );
        assert_eq!(geo.database.as_deref(), Some("Lesotho-Telecom-Routers"));
        assert_eq!(kinds(&own_db, a), [EvidenceKind::Database], "{a}");
        let all = own_db.lookup_all(ip(a));
        assert_eq!(all[0].source, "reserved");
        let note = all[0].note.as_deref().unwrap();
        assert!(
            note.contains("databases of other types still locate it") && !note.contains("  "),
            "{note}"
        );
        assert_eq!(all[1].note, None, "{a}: not ignored");
    }

    let public_db = GeoDb::open_with(&GeoSources {
        files: vec![public],
        registration: vec![registration],
        ..GeoSources::default()
    })
    .unwrap();
    for a in ["198.18.4.2", "10.9.8.7", "fd00::1"] {
        assert_eq!(public_db.locate(ip(a)).country, None, "{a}");
        assert!(public_db.evidence(ip(a)).is_empty(), "{a}");
        let all = public_db.lookup_all(ip(a));
        assert_eq!(
            all[1].note.as_deref(),
            Some("ignored: reserved range"),
            "{a}"
        );
    }
}

#[test]
fn geo_build_writes_a_custom_type_that_locates_lab_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = write(
        d,
        "lab.csv",
        "198.18.0.0/15,LS,Maseru,-29.31,27.48,64500\n10.0.0.0/8,ZA,Johannesburg,,,64510\n",
    );
    let custom = d.join("custom.mmdb");
    let out = run(&[
        "geo",
        "build",
        "--csv",
        csv.to_str().unwrap(),
        "--output",
        custom.to_str().unwrap(),
        "--database-type",
        "acme-lab",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("database type acme-lab"));
    let default = d.join("default.mmdb");
    let out = run(&[
        "geo",
        "build",
        "--csv",
        csv.to_str().unwrap(),
        "--output",
        default.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let db = GeoDb::open(std::slice::from_ref(&custom), None).unwrap();
    assert_eq!(db.databases()[0].database_type, "acme-lab");
    assert_eq!(db.locate(ip("198.18.4.2")).country.unwrap().as_str(), "LS");
    assert_eq!(db.locate(ip("198.18.4.2")).asn, Some(64500));
    assert_eq!(db.locate(ip("10.1.2.3")).country.unwrap().as_str(), "ZA");
    assert_eq!(kinds(&db, "10.1.2.3"), [EvidenceKind::Database]);
    let db = GeoDb::open(&[default], None).unwrap();
    assert_eq!(db.databases()[0].database_type, BUILD_DATABASE_TYPE);
    assert_eq!(kinds(&db, "10.1.2.3"), [EvidenceKind::Override]);

    // A public vendor's type is refused, naming the output.
    let out = run(&[
        "geo",
        "build",
        "--csv",
        csv.to_str().unwrap(),
        "--output",
        d.join("fake.mmdb").to_str().unwrap(),
        "--database-type",
        "GeoLite2-City",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fake.mmdb") && stderr.contains("public vendor"),
        "{stderr}"
    );
    assert!(!d.join("fake.mmdb").exists());
}

#[test]
fn bad_geofeeds_and_peeringdb_dumps_name_file_and_line_also_in_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let feed = write(
        d,
        "feed.csv",
        "# ok\n192.0.2.0/24,LS,,Maseru,\n192.0.2.0/33,LS,,,\n",
    );
    let pdb = write(
        d,
        "pdb.json",
        "{\"ix\": {\"data\": [\n  {\"id\": 1, \"name\": \"LIXP\",}\n]}}\n",
    );
    let pdb_missing = write(
        d,
        "pdb-missing.json",
        r#"{"ix": {"data": [{"id": 42, "name": "LIXP", "city": "Maseru"}]}, "ixlan": {"data": []}, "ixpfx": {"data": []}}"#,
    );

    let open = |sources: GeoSources| GeoDb::open_with(&sources).unwrap_err().to_string();
    let e = open(GeoSources {
        geofeeds: vec![feed.clone()],
        ..GeoSources::default()
    });
    assert!(
        e.starts_with(&format!("{}:3: field `ip_prefix`:", feed.display())),
        "{e}"
    );
    let e = open(GeoSources {
        peeringdb: Some(pdb.clone()),
        ..GeoSources::default()
    });
    assert!(e.starts_with(&format!("{}:2:", pdb.display())), "{e}");
    assert!(e.contains("not a PeeringDB dump"), "{e}");
    let e = open(GeoSources {
        peeringdb: Some(pdb_missing.clone()),
        ..GeoSources::default()
    });
    assert_eq!(
        e,
        format!(
            "{}: ix 42: field `country` is missing",
            pdb_missing.display()
        )
    );

    let config = write(
        d,
        "tw.toml",
        "[vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\n[geoip]\ngeofeeds = [\"feed.csv\"]\npeeringdb = \"pdb.json\"\nregistration = [\"missing.mmdb\"]\n",
    );
    let out = run(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for needle in [
        "3 files named here cannot be used",
        &format!("field `geoip.geofeeds[0]`: {}:3:", feed.display()),
        &format!("field `geoip.peeringdb`: {}:2:", pdb.display()),
        "field `geoip.registration[0]`:",
        "missing.mmdb",
    ] {
        assert!(lines[0].contains(needle), "`{needle}` missing: {stderr}");
    }

    // The good files check clean, and say what they are.
    write(d, "feed.csv", "192.0.2.0/24,LS,,Maseru,\n");
    std::fs::copy(sample_pdb(), &pdb).unwrap();
    country_db(d, "missing.mmdb", "country ipv4", &[("41.0.0.0/8", "ZA")]);
    let out = run(&["check-config", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 geofeed, PeeringDB, 1 registration database"),
        "{stdout}"
    );
}

#[test]
fn geo_lookup_lists_every_evidence_item_and_the_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "feed.csv", "192.0.2.0/24,LS,LS-A,Maseru,\n");
    std::fs::copy(sample_pdb(), d.join("pdb.json")).unwrap();
    city_db(
        d,
        "lab.mmdb",
        "acme-lab",
        &[("192.0.2.0/24", "IE", "Dublin")],
    );
    let config = write(
        d,
        "tw.toml",
        "[vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\n[geoip]\nfiles = [\"lab.mmdb\"]\ngeofeeds = [\"feed.csv\"]\npeeringdb = \"pdb.json\"\n",
    );
    let config = config.to_str().unwrap();

    let out = run(&["geo", "lookup", "192.0.2.10", "--config", config]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exchange: LIXP (PeeringDB ix 1101), Maseru, LS"),
        "{stdout}"
    );
    let evidence: Vec<&str> = stdout
        .lines()
        .skip_while(|l| l.trim() != "evidence:")
        .skip(1)
        .collect();
    assert_eq!(evidence.len(), 3, "{stdout}");
    for (line, words) in evidence.iter().zip([
        [
            "geofeed",
            "feed.csv",
            "LS",
            "Maseru",
            "feed.csv:1: 192.0.2.0/24,LS,LS-A,Maseru",
        ],
        ["ixp", "LIXP", "LS", "Maseru", "peering LAN 192.0.2.0/26"],
        ["database", "acme-lab", "IE", "Dublin", "lab.mmdb"],
    ]) {
        for w in words {
            assert!(line.contains(w), "`{w}` missing in {line}\n{stdout}");
        }
    }

    let out = run(&[
        "geo",
        "lookup",
        "192.0.2.10",
        "203.0.113.9",
        "--config",
        config,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["ixp"]["name"], "LIXP");
    assert_eq!(lines[0]["ixp"]["id"], 1101);
    assert_eq!(lines[0]["geo"]["source"], "geofeed");
    let kinds: Vec<&str> = lines[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["geofeed", "ixp", "database"]);
    assert_eq!(lines[0]["evidence"][1]["source"], "LIXP");
    assert_eq!(lines[0]["evidence"][1]["status"], "agrees");
    assert_eq!(lines[1]["ixp"]["name"], "DE-CIX Frankfurt");
    assert_eq!(lines[1]["evidence"][0]["country"], "DE");
}

#[test]
fn geo_lookup_weighs_a_host_names_hints_against_the_databases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A database that is wrong for a Maseru router: it says Dublin.
    let csv = write(d, "lab.csv", "198.18.2.0/24,IE,Dublin,53.35,-6.26,64500\n");
    let db = d.join("lab.mmdb");
    let out = run(&[
        "geo",
        "build",
        "--csv",
        csv.to_str().unwrap(),
        "--output",
        db.to_str().unwrap(),
        "--database-type",
        "acme-lab",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let lookup = |extra: &[&str]| {
        let mut args = vec![
            "geo",
            "lookup",
            "198.18.2.2",
            "--geoip",
            db.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out));
        out
    };
    // Without a name the database alone decides, with low confidence.
    let alone: serde_json::Value = serde_json::from_slice(&lookup(&["--json"]).stdout).unwrap();
    assert_eq!(alone["geo"]["country"], "IE", "{alone}");
    assert_eq!(alone["geo"]["confidence"], "low", "{alone}");
    assert_eq!(alone["hostname"], serde_json::Value::Null, "{alone}");
    // The router's name says Maseru: the name wins, the database disagrees.
    let name = "ae2.core1.msu2.ls.example.net";
    let named: serde_json::Value =
        serde_json::from_slice(&lookup(&["--hostname", name, "--json"]).stdout).unwrap();
    assert_eq!(named["hostname"], name, "{named}");
    assert_eq!(named["geo"]["country"], "LS", "{named}");
    assert_eq!(named["geo"]["source"], "hostname", "{named}");
    let status = |kind: &str, country: &str| {
        named["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind && e["country"] == country)
            .map(|e| e["status"].as_str().unwrap().to_string())
    };
    assert_eq!(
        status("hostname", "LS").as_deref(),
        Some("chosen"),
        "{named}"
    );
    assert_eq!(
        status("database", "IE").as_deref(),
        Some("disagrees"),
        "{named}"
    );
    // The text form shows each item's status and the name.
    let table = String::from_utf8(lookup(&["--hostname", name]).stdout).unwrap();
    assert!(
        table.contains(&format!("198.18.2.2 ({name}): LS")),
        "{table}"
    );
    assert!(table.contains("disagrees database"), "{table}");
    assert!(table.contains("chosen    hostname"), "{table}");
}
