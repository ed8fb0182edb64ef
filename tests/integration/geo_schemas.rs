//! Geolocation against fixture databases built here with each vendor's real
//! record layout and `database_type`: schema detection, field extraction,
//! combining files, overrides, reserved ranges, `build`, enrichment with the
//! plausibility check, and every kind of bad input.

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Value, Writer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use transitwatch::geo::{self, enrich, great_circle_km, GeoDb, GeoError, NotMmdbReason, Schema};
use transitwatch::model::{
    Coordinates, GeoSource, Hop, HopGeo, Protocol, RttMs, TargetRef, Trace, VantageRef,
};

const MASERU: Coordinates = Coordinates {
    lat: -29.31,
    lon: 27.48,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn names(en: &str) -> Value {
    Value::map([
        ("de", Value::from(en)),
        ("en", Value::from(en)),
        ("fr", Value::from(en)),
    ])
}

/// Writes an MMDB with the given records into `dir`.
fn write_db(
    dir: &Path,
    file: &str,
    database_type: &str,
    version: IpVersion,
    records: &[(&str, Value)],
) -> PathBuf {
    let mut writer = Writer::builder(database_type)
        .ip_version(version)
        .description(&[("en", "fixture")])
        .build();
    for (net, value) in records {
        writer
            .insert_value(net.parse::<IpNet>().unwrap(), value.clone())
            .unwrap();
    }
    let path = dir.join(file);
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

/// A GeoIP2/GeoLite2 City record as MaxMind lays it out.
fn maxmind_city(cc: &str, country: &str, city: &str, lat: f64, lon: f64, radius: u16) -> Value {
    Value::map([
        (
            "city",
            Value::map([
                ("geoname_id", Value::from(932_505_u32)),
                ("names", names(city)),
            ]),
        ),
        (
            "continent",
            Value::map([
                ("code", Value::from("AF")),
                ("geoname_id", Value::from(6_255_146_u32)),
                ("names", names("Africa")),
            ]),
        ),
        (
            "country",
            Value::map([
                ("geoname_id", Value::from(932_692_u32)),
                ("iso_code", Value::from(cc)),
                ("names", names(country)),
            ]),
        ),
        (
            "location",
            Value::map([
                ("accuracy_radius", Value::from(radius)),
                ("latitude", Value::from(lat)),
                ("longitude", Value::from(lon)),
                ("time_zone", Value::from("Africa/Maseru")),
            ]),
        ),
        ("postal", Value::map([("code", Value::from("100"))])),
        (
            "registered_country",
            Value::map([
                ("geoname_id", Value::from(953_987_u32)),
                ("iso_code", Value::from("ZA")),
                ("names", names("South Africa")),
            ]),
        ),
        (
            "subdivisions",
            Value::array([Value::map([
                ("geoname_id", Value::from(932_504_u32)),
                ("iso_code", Value::from("A")),
                ("names", names("Maseru District")),
            ])]),
        ),
    ])
}

/// A GeoIP2/GeoLite2 Country record.
fn maxmind_country(cc: &str, registered: &str) -> Value {
    Value::map([
        (
            "continent",
            Value::map([("code", Value::from("AF")), ("names", names("Africa"))]),
        ),
        (
            "country",
            Value::map([
                ("geoname_id", Value::from(1_u32)),
                ("iso_code", Value::from(cc)),
                ("names", names(cc)),
            ]),
        ),
        (
            "registered_country",
            Value::map([
                ("geoname_id", Value::from(2_u32)),
                ("iso_code", Value::from(registered)),
                ("names", names(registered)),
            ]),
        ),
    ])
}

/// A record with only `registered_country` (as for some anycast blocks).
fn registered_only(cc: &str) -> Value {
    Value::map([(
        "registered_country",
        Value::map([("iso_code", Value::from(cc)), ("names", names(cc))]),
    )])
}

/// A GeoLite2-ASN (and DB-IP ASN lite) record.
fn asn_record(asn: u32, org: &str) -> Value {
    Value::map([
        ("autonomous_system_number", Value::from(asn)),
        ("autonomous_system_organization", Value::from(org)),
    ])
}

/// A DB-IP city lite record: the GeoIP2 layout, no accuracy radius.
fn dbip_city(cc: &str, city: &str, lat: f64, lon: f64) -> Value {
    Value::map([
        (
            "city",
            Value::map([("names", Value::map([("en", Value::from(city))]))]),
        ),
        (
            "continent",
            Value::map([
                ("code", Value::from("AF")),
                ("geoname_id", Value::from(6_255_146_u32)),
                ("names", names("Africa")),
            ]),
        ),
        (
            "country",
            Value::map([
                ("geoname_id", Value::from(953_987_u32)),
                ("is_in_european_union", Value::from(false)),
                ("iso_code", Value::from(cc)),
                ("names", names(cc)),
            ]),
        ),
        (
            "location",
            Value::map([
                ("latitude", Value::from(lat)),
                ("longitude", Value::from(lon)),
            ]),
        ),
        (
            "subdivisions",
            Value::array([Value::map([(
                "names",
                Value::map([("en", Value::from("Gauteng"))]),
            )])]),
        ),
    ])
}

/// A DB-IP country lite record.
fn dbip_country(cc: &str) -> Value {
    Value::map([
        (
            "continent",
            Value::map([("code", Value::from("EU")), ("names", names("Europe"))]),
        ),
        (
            "country",
            Value::map([
                ("is_in_european_union", Value::from(true)),
                ("iso_code", Value::from(cc)),
                ("names", names(cc)),
            ]),
        ),
    ])
}

/// An IPinfo lite record.
fn ipinfo_lite(cc: &str, country: &str, asn: &str, as_name: &str) -> Value {
    Value::map([
        ("as_domain", Value::from("example.net")),
        ("as_name", Value::from(as_name)),
        ("asn", Value::from(asn)),
        ("continent", Value::from("Africa")),
        ("continent_code", Value::from("AF")),
        ("country", Value::from(country)),
        ("country_code", Value::from(cc)),
    ])
}

/// An ip-location-db country record.
fn flat_country(cc: &str) -> Value {
    Value::map([("country_code", Value::from(cc))])
}

/// An ip-location-db city record (empty strings where data is missing).
fn flat_city(cc: &str, city: &str, lat: f32, lon: f32) -> Value {
    Value::map([
        ("city", Value::from(city)),
        ("country_code", Value::from(cc)),
        ("latitude", Value::from(lat)),
        ("longitude", Value::from(lon)),
        ("postcode", Value::from("")),
        ("state1", Value::from("Gauteng")),
        ("state2", Value::from("")),
        ("timezone", Value::from("Africa/Johannesburg")),
    ])
}

/// What a located address is expected to yield.
struct Expect {
    country: Option<&'static str>,
    city: Option<&'static str>,
    coords: Option<(f64, f64)>,
    accuracy: Option<u32>,
    asn: Option<u32>,
    org: Option<&'static str>,
}

const NOTHING: Expect = Expect {
    country: None,
    city: None,
    coords: None,
    accuracy: None,
    asn: None,
    org: None,
};

fn check(geo: &HopGeo, want: &Expect, database: &str, what: &str) {
    assert_eq!(
        geo.country.map(|c| c.to_string()).as_deref(),
        want.country,
        "{what}: country"
    );
    assert_eq!(geo.city.as_deref(), want.city, "{what}: city");
    match want.coords {
        Some((lat, lon)) => {
            assert!(
                (geo.lat.unwrap() - lat).abs() < 1e-4,
                "{what}: lat {:?}",
                geo.lat
            );
            assert!(
                (geo.lon.unwrap() - lon).abs() < 1e-4,
                "{what}: lon {:?}",
                geo.lon
            );
        }
        None => assert_eq!((geo.lat, geo.lon), (None, None), "{what}: coordinates"),
    }
    assert_eq!(geo.accuracy_km, want.accuracy, "{what}: accuracy");
    assert_eq!(geo.asn, want.asn, "{what}: asn");
    assert_eq!(geo.as_org.as_deref(), want.org, "{what}: as_org");
    assert_eq!(geo.source, GeoSource::Mmdb, "{what}: source");
    assert_eq!(geo.database.as_deref(), Some(database), "{what}: database");
    assert_eq!(geo.plausible, None, "{what}: plausible");
}

#[test]
fn every_schema_is_detected_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    struct Case {
        file: PathBuf,
        database_type: &'static str,
        schema: Schema,
        kind: &'static str,
        addr: &'static str,
        want: Expect,
    }
    let cases = [
        Case {
            file: write_db(
                d,
                "city.mmdb",
                "GeoLite2-City",
                IpVersion::V6,
                &[
                    (
                        "41.203.64.0/18",
                        maxmind_city("LS", "Lesotho", "Maseru", -29.3167, 27.4833, 20),
                    ),
                    (
                        "2c0f:f8f0::/32",
                        maxmind_city("LS", "Lesotho", "Maseru", -29.3, 27.5, 100),
                    ),
                ],
            ),
            database_type: "GeoLite2-City",
            schema: Schema::MaxMindCity,
            kind: "city",
            addr: "41.203.100.1",
            want: Expect {
                country: Some("LS"),
                city: Some("Maseru"),
                coords: Some((-29.3167, 27.4833)),
                accuracy: Some(20),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "country.mmdb",
                "GeoIP2-Country",
                IpVersion::V6,
                &[
                    ("196.11.0.0/16", maxmind_country("ZA", "ZA")),
                    ("196.12.0.0/16", registered_only("MU")),
                ],
            ),
            database_type: "GeoIP2-Country",
            schema: Schema::MaxMindCountry,
            kind: "country",
            addr: "196.11.5.5",
            want: Expect {
                country: Some("ZA"),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "asn.mmdb",
                "GeoLite2-ASN",
                IpVersion::V6,
                &[("41.203.64.0/18", asn_record(33567, "Telecom Lesotho"))],
            ),
            database_type: "GeoLite2-ASN",
            schema: Schema::MaxMindAsn,
            kind: "asn",
            addr: "41.203.64.9",
            want: Expect {
                asn: Some(33567),
                org: Some("Telecom Lesotho"),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "dbip-city-lite.mmdb",
                "DBIP-City-Lite",
                IpVersion::V6,
                &[(
                    "102.132.0.0/16",
                    dbip_city("ZA", "Johannesburg", -26.2041, 28.0473),
                )],
            ),
            database_type: "DBIP-City-Lite",
            schema: Schema::DbIpCity,
            kind: "city",
            addr: "102.132.1.1",
            want: Expect {
                country: Some("ZA"),
                city: Some("Johannesburg"),
                coords: Some((-26.2041, 28.0473)),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "dbip-country-lite.mmdb",
                "DBIP-Country-Lite",
                IpVersion::V6,
                &[("2a01:4f8::/32", dbip_country("DE"))],
            ),
            database_type: "DBIP-Country-Lite",
            schema: Schema::DbIpCountry,
            kind: "country",
            addr: "2a01:4f8:1::1",
            want: Expect {
                country: Some("DE"),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "dbip-asn-lite.mmdb",
                "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
                IpVersion::V6,
                &[("2a01:4f8::/32", asn_record(24940, "Hetzner Online GmbH"))],
            ),
            database_type: "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
            schema: Schema::DbIpAsn,
            kind: "asn",
            addr: "2a01:4f8::2",
            want: Expect {
                asn: Some(24940),
                org: Some("Hetzner Online GmbH"),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "ipinfo_lite.mmdb",
                "ipinfo lite",
                IpVersion::V6,
                &[(
                    "8.8.8.0/24",
                    ipinfo_lite("US", "United States", "AS15169", "Google LLC"),
                )],
            ),
            database_type: "ipinfo lite",
            schema: Schema::IpInfoLite,
            kind: "country+asn",
            addr: "8.8.8.8",
            want: Expect {
                country: Some("US"),
                asn: Some(15169),
                org: Some("Google LLC"),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "geolite2-country-ipv4.mmdb",
                "country",
                IpVersion::V4,
                &[("41.203.160.0/20", flat_country("ZA"))],
            ),
            database_type: "country",
            schema: Schema::FlatCountry,
            kind: "country",
            addr: "41.203.160.1",
            want: Expect {
                country: Some("ZA"),
                ..NOTHING
            },
        },
        Case {
            file: write_db(
                d,
                "geolite2-city-ipv4.mmdb",
                "city",
                IpVersion::V4,
                &[(
                    "41.203.160.0/20",
                    flat_city("ZA", "Alberton", -26.2296, 28.1272),
                )],
            ),
            database_type: "city",
            schema: Schema::FlatCity,
            kind: "city",
            addr: "41.203.175.255",
            want: Expect {
                country: Some("ZA"),
                city: Some("Alberton"),
                coords: Some((-26.2296, 28.1272)),
                ..NOTHING
            },
        },
    ];
    for case in &cases {
        let db = GeoDb::open(std::slice::from_ref(&case.file), None).unwrap();
        let info = &db.databases()[0];
        assert_eq!(info.schema, case.schema, "{}", case.database_type);
        assert_eq!(info.schema.as_str(), case.kind, "{}", case.database_type);
        assert_eq!(info.database_type, case.database_type);
        assert_eq!(info.path, case.file);
        assert!(info.node_count > 0 && info.build_epoch > 1_600_000_000);
        // The fingerprint of the file as read, and who made it.
        let sha = {
            use sha2::{Digest, Sha256};
            Sha256::digest(std::fs::read(&case.file).unwrap())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(info.sha256, sha, "{}", case.database_type);
        let maker = match case.database_type {
            t if t.starts_with("Geo") => "MaxMind",
            t if t.starts_with("DBIP") => "DB-IP",
            "ipinfo lite" => "IPinfo",
            _ => "other",
        };
        assert_eq!(info.vendor, maker, "{}", case.database_type);
        let geo = db.locate(ip(case.addr));
        check(&geo, &case.want, case.database_type, case.database_type);
        // Outside every record: nothing, from any schema.
        assert_eq!(
            db.locate(ip("1.1.1.1")),
            HopGeo::default(),
            "{}",
            case.database_type
        );
    }

    // IPv4-only files: ip_version 4, IPv6 addresses are simply not there.
    let flat = GeoDb::open(&[d.join("geolite2-country-ipv4.mmdb")], None).unwrap();
    assert_eq!(flat.databases()[0].ip_version, 4);
    assert_eq!(flat.locate(ip("2c0f:f8f0::1")), HopGeo::default());
    // IPv4-mapped IPv6 addresses are looked up as IPv4.
    assert_eq!(
        flat.locate(ip("::ffff:41.203.160.1"))
            .country
            .unwrap()
            .as_str(),
        "ZA"
    );

    // `registered_country` stands in only when `country` is absent.
    let country = GeoDb::open(&[d.join("country.mmdb")], None).unwrap();
    assert_eq!(
        country.locate(ip("196.12.0.1")).country.unwrap().as_str(),
        "MU"
    );

    // The IPv6 record of the City file.
    let city = GeoDb::open(&[d.join("city.mmdb")], None).unwrap();
    let v6 = city.locate(ip("2c0f:f8f0:1::1"));
    assert_eq!(v6.accuracy_km, Some(100));
    assert_eq!(v6.city.as_deref(), Some("Maseru"));
}

#[test]
fn a_location_file_and_an_asn_file_combine_and_the_first_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let city = write_db(
        d,
        "GeoLite2-City.mmdb",
        "GeoLite2-City",
        IpVersion::V6,
        &[
            (
                "41.203.64.0/18",
                maxmind_city("LS", "Lesotho", "Maseru", -29.3167, 27.4833, 20),
            ),
            (
                "105.0.0.0/8",
                maxmind_city("ZA", "South Africa", "Cape Town", -33.92, 18.42, 50),
            ),
        ],
    );
    let asn = write_db(
        d,
        "GeoLite2-ASN.mmdb",
        "GeoLite2-ASN",
        IpVersion::V6,
        &[
            ("41.203.64.0/18", asn_record(33567, "Telecom Lesotho")),
            ("196.0.0.0/8", asn_record(37100, "SEACOM")),
        ],
    );
    let country = write_db(
        d,
        "country.mmdb",
        "country",
        IpVersion::V6,
        &[
            ("41.203.64.0/18", flat_country("ZA")),
            ("196.0.0.0/8", flat_country("MU")),
        ],
    );
    for order in [
        vec![city.clone(), asn.clone()],
        vec![asn.clone(), city.clone()],
    ] {
        let db = GeoDb::open(&order, None).unwrap();
        let geo = db.locate(ip("41.203.65.1"));
        check(
            &geo,
            &Expect {
                country: Some("LS"),
                city: Some("Maseru"),
                coords: Some((-29.3167, 27.4833)),
                accuracy: Some(20),
                asn: Some(33567),
                org: Some("Telecom Lesotho"),
            },
            "GeoLite2-City",
            "city+asn",
        );
        // Only the City file knows 105/8; only the ASN file 196/8.
        let cape = db.locate(ip("105.1.1.1"));
        assert_eq!((cape.city.as_deref(), cape.asn), (Some("Cape Town"), None));
        let seacom = db.locate(ip("196.1.1.1"));
        assert_eq!((seacom.country, seacom.asn), (None, Some(37100)));
        assert_eq!(seacom.database.as_deref(), Some("GeoLite2-ASN"));
    }
    // Two location files: the first that knows the address decides.
    let db = GeoDb::open(&[country.clone(), city.clone(), asn.clone()], None).unwrap();
    let geo = db.locate(ip("41.203.65.1"));
    assert_eq!(geo.country.unwrap().as_str(), "ZA");
    assert_eq!(geo.city, None);
    assert_eq!(geo.database.as_deref(), Some("country"));
    assert_eq!(geo.asn, Some(33567));
    let db = GeoDb::open(&[city.clone(), country.clone()], None).unwrap();
    assert_eq!(db.locate(ip("41.203.65.1")).country.unwrap().as_str(), "LS");
    // The flat file fills in where the City file knows nothing.
    assert_eq!(db.locate(ip("196.2.2.2")).country.unwrap().as_str(), "MU");

    // lookup_all shows every file's own answer.
    let db = GeoDb::open(&[country, city, asn], None).unwrap();
    let all = db.lookup_all(ip("41.203.65.1"));
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].database, "country");
    assert_eq!(all[0].geo.as_ref().unwrap().country.unwrap().as_str(), "ZA");
    assert_eq!(all[1].geo.as_ref().unwrap().city.as_deref(), Some("Maseru"));
    assert_eq!(all[2].geo.as_ref().unwrap().asn, Some(33567));
    assert!(all[1].source.ends_with("GeoLite2-City.mmdb"));
    assert!(all.iter().all(|a| a.note.is_none()));
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn overrides_win_over_databases_and_may_locate_reserved_space() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let city = write_db(
        d,
        "city.mmdb",
        "GeoLite2-City",
        IpVersion::V6,
        &[
            (
                "41.203.64.0/18",
                maxmind_city("LS", "Lesotho", "Maseru", -29.3167, 27.4833, 20),
            ),
            (
                "10.0.0.0/8",
                maxmind_city("US", "United States", "Nowhere", 37.75, -97.82, 1000),
            ),
            (
                "198.51.100.0/24",
                maxmind_city("US", "United States", "Nowhere", 37.75, -97.82, 1000),
            ),
        ],
    );
    let asn = write_db(
        d,
        "asn.mmdb",
        "GeoLite2-ASN",
        IpVersion::V6,
        &[("41.203.64.0/18", asn_record(33567, "Telecom Lesotho"))],
    );
    let overrides = write_file(
        d,
        "overrides.csv",
        "# operator knowledge\n\
         prefix,country,city,lat,lon,asn,note\n\
         41.203.100.0/24,ZA,Johannesburg,-26.2041,28.0473,AS64510,leased from a ZA carrier\n\
         41.203.101.0/24,ZA\n\
         198.51.100.0/24,LS,Maseru,-29.31,27.48,64500,lab core\n\
         2001:db8:100::/48,LS,Maseru,,,,\n",
    );
    let db = GeoDb::open(&[city, asn], Some(&overrides)).unwrap();
    assert_eq!(db.override_count(), 4);
    assert_eq!(db.overrides_path(), Some(overrides.as_path()));

    let geo = db.locate(ip("41.203.100.7"));
    assert_eq!(geo.source, GeoSource::Override);
    assert_eq!(geo.database.as_deref(), Some("override"));
    assert_eq!(geo.country.unwrap().as_str(), "ZA");
    assert_eq!(geo.city.as_deref(), Some("Johannesburg"));
    assert_eq!((geo.lat, geo.lon), (Some(-26.2041), Some(28.0473)));
    assert_eq!(geo.asn, Some(64510));
    assert_eq!(geo.accuracy_km, None);
    // An override without an ASN keeps the databases' origin AS.
    let geo = db.locate(ip("41.203.101.7"));
    assert_eq!(
        (geo.country.unwrap().as_str(), geo.city.as_deref()),
        ("ZA", None)
    );
    assert_eq!(
        (geo.asn, geo.as_org.as_deref()),
        (Some(33567), Some("Telecom Lesotho"))
    );
    // Next door, the databases answer.
    assert_eq!(db.locate(ip("41.203.102.7")).source, GeoSource::Mmdb);
    // Documentation space, located by an override only.
    let geo = db.locate(ip("198.51.100.10"));
    assert_eq!(
        (geo.source, geo.country.unwrap().as_str(), geo.asn),
        (GeoSource::Override, "LS", Some(64500))
    );
    let geo = db.locate(ip("2001:db8:100::1"));
    assert_eq!((geo.country.unwrap().as_str(), geo.lat), ("LS", None));
    // Reserved space no override covers: nothing, whatever the file says.
    assert_eq!(db.locate(ip("10.1.2.3")), HopGeo::default());
    assert_eq!(db.locate(ip("2001:db8:200::1")), HopGeo::default());

    let all = db.lookup_all(ip("198.51.100.10"));
    let sources: Vec<&str> = all.iter().map(|a| a.source.as_str()).collect();
    assert_eq!(sources[..2], ["reserved", "override"]);
    assert!(all[0].note.as_deref().unwrap().contains("198.51.100.0/24"));
    assert!(all[1]
        .note
        .as_deref()
        .unwrap()
        .contains(":5: 198.51.100.0/24 (lab core)"));
    assert_eq!(
        all[2].geo.as_ref().unwrap().city.as_deref(),
        Some("Nowhere")
    );
    assert_eq!(all[2].note.as_deref(), Some("ignored: reserved range"));
}

#[test]
fn reserved_ranges_are_not_located_without_an_override() {
    let dir = tempfile::tempdir().unwrap();
    let nets = [
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    let records: Vec<(&str, Value)> = nets.iter().map(|n| (*n, flat_country("US"))).collect();
    let file = write_db(dir.path(), "all.mmdb", "country", IpVersion::V6, &records);
    let db = GeoDb::open(&[file], None).unwrap();
    for a in [
        "10.9.8.7",
        "100.100.1.1",
        "127.0.0.1",
        "169.254.10.10",
        "172.20.0.1",
        "192.0.2.1",
        "192.168.1.1",
        "198.19.0.1",
        "198.51.100.1",
        "203.0.113.200",
        "239.255.255.250",
        "2001:db8::1",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:192.168.1.1",
    ] {
        assert_eq!(db.locate(ip(a)), HopGeo::default(), "{a}");
        let all = db.lookup_all(ip(a));
        assert_eq!(all[0].source, "reserved", "{a}");
        assert!(
            all[0].note.as_deref().unwrap().contains("not located"),
            "{a}"
        );
        // The file itself does have data there.
        assert!(all[1].geo.is_some(), "{a}");
    }
}

#[test]
fn longest_prefix_wins_in_overrides_for_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = write_file(
        dir.path(),
        "lpm.csv",
        "0.0.0.0/0,ZZ\n\
         41.0.0.0/8,ZA\n\
         41.203.0.0/16,LS\n\
         41.203.64.0/18,BW\n\
         41.203.64.1,NA\n\
         2c0f::/16,ZA\n\
         2c0f:f8f0::/32,LS\n\
         2c0f:f8f0:1::/48,BW\n\
         2c0f:f8f0:1::1/128,NA\n",
    );
    let db = GeoDb::open(&[], Some(&overrides)).unwrap();
    let cc = |a: &str| db.locate(ip(a)).country.map(|c| c.to_string());
    for (a, want) in [
        ("8.8.8.8", "ZZ"),
        ("41.1.1.1", "ZA"),
        ("41.203.1.1", "LS"),
        ("41.203.64.0", "BW"),
        ("41.203.127.255", "BW"),
        ("41.203.128.0", "LS"),
        ("41.203.64.1", "NA"),
        ("41.203.64.2", "BW"),
        ("41.204.0.0", "ZA"),
        ("2c0f:1::1", "ZA"),
        ("2c0f:f8f0::1", "LS"),
        ("2c0f:f8f0:1::2", "BW"),
        ("2c0f:f8f0:1::1", "NA"),
        ("2c0f:f8f0:2::1", "LS"),
    ] {
        assert_eq!(cc(a).as_deref(), Some(want), "{a}");
    }
    // No IPv6 catch-all was given.
    assert_eq!(cc("2001:4860::1"), None);
}

#[test]
fn built_database_reads_back_like_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = write_file(
        d,
        "overrides.csv",
        "prefix,country,city,lat,lon,asn,note\n\
         41.203.0.0/16,LS,Maseru,-29.31,27.48,33567,national carrier\n\
         41.203.64.0/18,ZA,Johannesburg,-26.2041,28.0473,AS37100,\n\
         196.11.0.0/16,LS\n\
         2c0f:f8f0::/32,LS,Maseru,-29.31,27.48,,\n\
         2c0f:f8f0:1::/48,ZA,,,,64510,more specific\n",
    );
    let out = d.join("overrides.mmdb");
    let report = geo::build(&csv, &out).unwrap();
    assert_eq!(
        (report.prefixes, report.ipv4_prefixes, report.ipv6_prefixes),
        (5, 3, 2)
    );
    assert_eq!(report.output, out);
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());

    let built = GeoDb::open(std::slice::from_ref(&out), None).unwrap();
    let info = &built.databases()[0];
    assert_eq!(info.schema, Schema::CityAsn);
    assert_eq!(info.schema.as_str(), "city+asn");
    assert_eq!(info.database_type, geo::BUILD_DATABASE_TYPE);
    let from_csv = GeoDb::open(&[], Some(&csv)).unwrap();
    for a in [
        "41.203.1.1",
        "41.203.64.1",
        "41.203.200.1",
        "196.11.1.1",
        "::ffff:41.203.1.1",
        "2c0f:f8f0::1",
        "2c0f:f8f0:1::1",
        "8.8.8.8",
        "2001:4860::1",
    ] {
        let mut want = from_csv.locate(ip(a));
        let got = built.locate(ip(a));
        if want.source == GeoSource::Override {
            want.source = GeoSource::Mmdb;
            want.database = Some(geo::BUILD_DATABASE_TYPE.to_string());
        }
        assert_eq!(got, want, "{a}");
    }

    // An independent reader agrees, when installed.
    let mmdblookup = |addr: &str, path: &[&str]| {
        Command::new("mmdblookup")
            .arg("--file")
            .arg(&out)
            .args(["--ip", addr])
            .args(path)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    match mmdblookup("41.203.64.1", &["country", "iso_code"]) {
        Some(text) => {
            assert!(text.contains("\"ZA\""), "mmdblookup said: {text}");
            let text = mmdblookup("41.203.1.1", &["city", "names", "en"]).unwrap_or_default();
            assert!(text.contains("\"Maseru\""), "mmdblookup said: {text}");
            let text =
                mmdblookup("2c0f:f8f0:1::1", &["autonomous_system_number"]).unwrap_or_default();
            assert!(text.contains("64510"), "mmdblookup said: {text}");
        }
        None => eprintln!(
            "SKIPPED mmdblookup cross-check: mmdblookup is not installed (Debian package mmdb-bin)"
        ),
    }

    // Errors name the output, or the CSV line.
    let e = geo::build(&csv, &d.join("no-such-dir").join("x.mmdb")).unwrap_err();
    assert!(matches!(e, GeoError::Build { .. }), "{e}");
    assert!(e.to_string().contains("no-such-dir/x.mmdb"), "{e}");
    let bad = write_file(d, "bad.csv", "10.0.0.0/8,LS\n10.0.0.0/8,XXX\n");
    let e = geo::build(&bad, &out).unwrap_err().to_string();
    assert!(e.contains("bad.csv:2: field `country`"), "{e}");
    // The earlier output is untouched by the failed builds.
    assert!(GeoDb::open(&[out], None).is_ok());
}

fn hop(ttl: u8, addr: Option<&str>, best: Option<f64>) -> Hop {
    Hop {
        ttl,
        addr: addr.map(ip),
        addrs: addr.map(ip).into_iter().collect(),
        sent: 3,
        received: u32::from(addr.is_some()) * 3,
        rtt_ms: best.map(|b| RttMs {
            best: b,
            avg: b,
            worst: b,
        }),
        geo: HopGeo {
            // Stale data that enrichment must replace.
            country: "ZZ".parse().ok(),
            ..HopGeo::default()
        },
        hostname: None,
        mpls: Vec::new(),
    }
}

fn trace(hops: Vec<Hop>) -> Trace {
    Trace {
        target: TargetRef {
            name: "gov-portal".into(),
            host: "www.gov.ls".into(),
            addr: Some(ip("198.51.100.10")),
        },
        vantage: VantageRef {
            name: "maseru-1".into(),
            country: "LS".parse().ok(),
        },
        protocol: Protocol::Icmp,
        port: None,
        started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        reached: true,
        hops,
    }
}

#[test]
fn enrich_fills_hops_and_checks_plausibility() {
    let dir = tempfile::tempdir().unwrap();
    // 203.0.113.0/24 is placed in Frankfurt, about 9,000 km from Maseru.
    let overrides = write_file(
        dir.path(),
        "o.csv",
        "203.0.113.0/24,DE,Frankfurt,50.1109,8.6821,64496,\n\
         198.51.100.0/24,LS,,,,,no coordinates\n",
    );
    let frankfurt = Coordinates {
        lat: 50.1109,
        lon: 8.6821,
    };
    let distance = great_circle_km(MASERU, frankfurt);
    assert!((8_950.0..9_100.0).contains(&distance), "{distance}");
    let db = GeoDb::open(&[], Some(&overrides)).unwrap();
    let mut t = trace(vec![
        hop(1, Some("203.0.113.1"), Some(0.5)),
        hop(2, None, None),
        hop(3, Some("203.0.113.2"), Some(120.0)),
        hop(4, Some("198.51.100.10"), Some(0.5)),
        hop(5, Some("192.0.2.1"), Some(0.5)),
        hop(6, Some("203.0.113.3"), None),
    ]);
    enrich(&mut t, &db, Some(MASERU));
    let h = &t.hops;
    assert_eq!(h[0].geo.country.unwrap().as_str(), "DE");
    assert_eq!(h[0].geo.asn, Some(64496));
    assert_eq!(h[0].geo.database.as_deref(), Some("override"));
    assert_eq!(h[0].geo.plausible, Some(false), "9,000 km in 0.5 ms");
    assert_eq!(h[1].geo, HopGeo::default(), "silent hop");
    assert_eq!(h[2].geo.plausible, Some(true), "9,000 km in 120 ms");
    assert_eq!(h[3].geo.plausible, None, "no hop coordinates");
    assert_eq!(h[3].geo.country.unwrap().as_str(), "LS");
    assert_eq!(h[4].geo, HopGeo::default(), "reserved, no override");
    assert_eq!(h[5].geo.plausible, None, "no RTT");

    let mut t = trace(vec![hop(1, Some("203.0.113.1"), Some(0.5))]);
    enrich(&mut t, &db, None);
    assert_eq!(t.hops[0].geo.plausible, None, "no vantage coordinates");
    assert_eq!(t.hops[0].geo.country.unwrap().as_str(), "DE");

    // The MMDB accuracy radius widens what is plausible.
    let city = write_db(
        dir.path(),
        "city.mmdb",
        "GeoLite2-City",
        IpVersion::V6,
        &[
            (
                "81.2.69.0/24",
                maxmind_city("GB", "United Kingdom", "London", 51.5074, -0.1278, 5),
            ),
            (
                "81.2.70.0/24",
                maxmind_city("GB", "United Kingdom", "London", 51.5074, -0.1278, 9_500),
            ),
        ],
    );
    let db = GeoDb::open(&[city], None).unwrap();
    let mut t = trace(vec![
        hop(1, Some("81.2.69.1"), Some(0.5)),
        hop(2, Some("81.2.70.1"), Some(0.5)),
    ]);
    enrich(&mut t, &db, Some(MASERU));
    assert_eq!(t.hops[0].geo.plausible, Some(false));
    assert_eq!(t.hops[1].geo.plausible, Some(true));
    assert_eq!(t.hops[1].geo.accuracy_km, Some(9_500));
}

#[test]
fn the_empty_database_locates_nothing() {
    let db = GeoDb::empty();
    let mut t = trace(vec![hop(1, Some("8.8.8.8"), Some(10.0))]);
    enrich(&mut t, &db, Some(MASERU));
    assert_eq!(t.hops[0].geo, HopGeo::default());
}

fn open_err(files: &[PathBuf], overrides: Option<&Path>) -> GeoError {
    match GeoDb::open(files, overrides) {
        Ok(_) => panic!("opening {files:?} {overrides:?} should fail"),
        Err(e) => e,
    }
}

#[test]
fn bad_database_files_are_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write_db(
        d,
        "good.mmdb",
        "GeoLite2-Country",
        IpVersion::V6,
        &[("41.0.0.0/8", maxmind_country("ZA", "ZA"))],
    );

    let missing = d.join("missing.mmdb");
    let e = open_err(&[good.clone(), missing.clone()], None);
    assert!(matches!(e, GeoError::Read { .. }), "{e}");
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );

    let bytes = std::fs::read(&good).unwrap();
    let truncated = d.join("truncated.mmdb");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = open_err(std::slice::from_ref(&truncated), None);
    assert!(
        matches!(
            &e,
            GeoError::NotMmdb {
                reason: NotMmdbReason::NoMetadataMarker,
                ..
            }
        ),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("truncated.mmdb") && text.contains("truncated or of another format"),
        "{text}"
    );

    let random = d.join("random.mmdb");
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(&random, noise).unwrap();
    let e = open_err(&[random], None);
    assert!(matches!(&e, GeoError::NotMmdb { .. }), "{e}");
    assert!(e.to_string().contains("random.mmdb"), "{e}");

    let text_file = write_file(d, "notes.txt", "prefix,country\n10.0.0.0/8,LS\n");
    let e = open_err(&[text_file], None);
    assert!(
        matches!(
            &e,
            GeoError::NotMmdb {
                reason: NotMmdbReason::Text,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("notes.txt"), "{e}");

    let empty = write_file(d, "empty.mmdb", "");
    let e = open_err(&[empty], None);
    assert!(
        matches!(
            &e,
            GeoError::NotMmdb {
                reason: NotMmdbReason::Empty,
                ..
            }
        ),
        "{e}"
    );

    // Metadata cut short after its marker.
    let marker = b"\xab\xcd\xefMaxMind.com";
    let at = bytes
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap();
    let cut = d.join("cut-metadata.mmdb");
    std::fs::write(&cut, &bytes[..at + marker.len() + 5]).unwrap();
    let e = open_err(&[cut], None);
    assert!(
        matches!(
            &e,
            GeoError::NotMmdb {
                reason: NotMmdbReason::Corrupt(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("cut-metadata.mmdb"), "{e}");

    let acme = write_db(
        d,
        "acme.mmdb",
        "Acme-Thing",
        IpVersion::V6,
        &[("41.0.0.0/8", Value::map([("foo", Value::from(1_u32))]))],
    );
    let e = open_err(&[acme], None);
    assert!(matches!(&e, GeoError::UnknownSchema { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("acme.mmdb") && text.contains("Acme-Thing") && text.contains("foo (number)"),
        "{text}"
    );

    let directory = open_err(&[d.to_path_buf()], None);
    assert!(matches!(directory, GeoError::Read { .. }), "{directory}");
}

#[test]
fn bad_override_files_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            "bad-prefix.csv",
            "prefix,country\n41.0.0.0/8,ZA\n41.300.0.0/16,LS\n",
            ":3: field `prefix`",
            "41.300.0.0/16",
        ),
        (
            "bad-country.csv",
            "# comment\n41.0.0.0/8,ZA\n\n41.203.0.0/16,Lesotho\n",
            ":4: field `country`",
            "Lesotho",
        ),
        (
            "bad-lat.csv",
            "41.0.0.0/8,ZA,Johannesburg,-126.2,28.04\n",
            ":1: field `lat`",
            "-126.2",
        ),
        (
            "bad-lon.csv",
            "41.0.0.0/8,ZA,Johannesburg,-26.2,east\n",
            ":1: field `lon`",
            "east",
        ),
        (
            "bad-asn.csv",
            "41.0.0.0/8,ZA,,,,AS-1\n",
            ":1: field `asn`",
            "AS-1",
        ),
        (
            "host-bits.csv",
            "41.203.1.0/16,LS\n",
            ":1: field `prefix`",
            "did you mean 41.203.0.0/16",
        ),
    ];
    for (name, text, at, detail) in cases {
        let path = write_file(d, name, text);
        let e = open_err(&[], Some(&path));
        assert!(matches!(e, GeoError::Overrides { .. }), "{e}");
        let message = e.to_string();
        assert!(message.contains(&format!("{name}{at}")), "{message}");
        assert!(message.contains(detail), "{message}");
    }
    let e = open_err(&[], Some(&d.join("absent.csv")));
    assert!(matches!(e, GeoError::Read { .. }), "{e}");
    assert!(e.to_string().contains("absent.csv"), "{e}");
}

/// A writer the test can read back: the subscriber writes to it from
/// whichever thread logs, the test reads it afterwards, hence the mutex.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_damaged_record_is_not_located_and_logged_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write_db(
        d,
        "damaged.mmdb",
        "GeoLite2-Country",
        IpVersion::V6,
        &[
            ("41.0.0.0/8", maxmind_country("ZA", "ZA")),
            (
                "105.0.0.0/8",
                Value::map([
                    ("country", Value::map([("iso_code", Value::from("LS"))])),
                    ("zzdamaged", Value::from("x")),
                ]),
            ),
        ],
    );
    // Turn the control byte of the `zzdamaged` key (a 9-byte string: 0x49)
    // into an extended type whose number does not exist.
    let mut bytes = std::fs::read(&good).unwrap();
    let key = b"zzdamaged";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    assert_eq!(bytes[at - 1], 0x49);
    bytes[at - 1] = 0x00;
    bytes[at] = 0xF0;
    std::fs::write(&good, &bytes).unwrap();

    let db = GeoDb::open(std::slice::from_ref(&good), None).unwrap();
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let (damaged, fine, all) = tracing::subscriber::with_default(subscriber, || {
        (
            db.locate(ip("105.1.1.1")),
            db.locate(ip("41.1.1.1")),
            db.lookup_all(ip("105.1.1.1")),
        )
    });
    assert_eq!(damaged, HopGeo::default());
    assert_eq!(fine.country.unwrap().as_str(), "ZA");
    assert!(all[0].geo.is_none());
    assert!(
        all[0].note.as_deref().unwrap().contains("damaged"),
        "{all:?}"
    );
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("WARN") && logged.contains("damaged.mmdb"),
        "{logged}"
    );
}
