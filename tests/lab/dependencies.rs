//! Beyond the route, on the lab: the daemon resolves each service's DNS
//! dependencies every cycle from the lab's recursive unbound, which asks
//! the lab's authoritative name servers (nsd, started by `lab.sh up`):
//! `gov.ls.test` served at home, `bank.ls.test` served from an address
//! reached only through the South African routers, and `cloud.ie.test` in
//! Ireland, run (says the test's operator table) by a company based in the
//! United States, into which `id.gov.ls.test` is an alias. Every name
//! server address is traced as a dependency path and judged.
//!
//! Then the figures: the records keep what DNS said; the DNS path through
//! ZA is traced and judged `foreign_transit`; `transitwatch whatif --country
//! ZA` (from the store) and `/api/v1/whatif` name exactly the bank as
//! losing its DNS; the metrics and the report carry the same figures; a
//! service whose zone has no name servers (`shop.ie.test`, in the
//! resolver's local data only) keeps its route verdict and says what could
//! not be established.

use crate::support;

use support::daemon::{store_section, write_config, LabDaemon};
use support::{text, Lab};

const TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"

[[target]]
name = "bank"
host = "bank.ls.test"
category = "finance"

[[target]]
name = "id"
host = "id.gov.ls.test"
category = "government"

[[target]]
name = "shop"
host = "shop.ie.test"
category = "commerce"
"#;

const OPERATORS: &str = r#"
[[operator]]
name = "Lab Telecom Lesotho"
country = "LS"
kind = "transit"
asns = [64500, 64501]

[[operator]]
name = "Lab Transit South Africa"
country = "ZA"
kind = "transit"
asns = [64510]

[[operator]]
name = "Emerald Cloud"
country = "US"
kind = "hosting"
asns = [64520]
"#;

fn dependency_section(dns: &str) -> String {
    format!(
        r#"
[dependency]
dns = true
dns_servers = ["{dns}"]
dns_timeout = "1s"
dns_deadline = "5s"
operators = "operators.toml"
"#
    )
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A lab with its DNS server and the tools these tests need; `None` (after
/// a skip line) without them.
fn lab_with_dns(test: &str) -> Option<(Lab, String)> {
    let lab = Lab::up(test)?;
    let dns = lab.dns_server(test)?;
    support::have_all(test, &["curl", "nsd"]).then_some((lab, dns))
}

/// The daemon at the vantage over `targets` with DNS dependencies on and
/// the lab's operator table, ready; and its configuration file.
fn start<'l>(
    lab: &'l Lab,
    dns: &str,
    dir: &std::path::Path,
    targets: &str,
) -> (std::path::PathBuf, LabDaemon<'l>) {
    std::fs::write(dir.join("operators.toml"), OPERATORS).unwrap();
    let config = write_config(
        dir,
        &[&store_section(dir), &dependency_section(dns), targets],
    );
    let daemon = LabDaemon::start(lab, &config, &dir.join("state"));
    daemon.wait_ready();
    (config, daemon)
}

#[test]
fn name_servers_are_traced_judged_and_counted_in_whatif_metrics_and_report() {
    let Some((lab, dns)) = lab_with_dns("name_servers_are_traced_judged") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (config, daemon) = start(&lab, &dns, dir.path(), TARGETS);
    let ns_bank = "dns:ns1.bank.ls.test/ipv4";
    let ns_gov = "dns:ns1.gov.ls.test/ipv4";
    let ns_cloud = "dns:ns1.cloud.ie.test/ipv4";
    let m = daemon.wait_metrics("every service and name server path judged", |m| {
        [
            "gov-portal",
            "bank",
            "id",
            "shop",
            ns_bank,
            ns_gov,
            ns_cloud,
        ]
        .iter()
        .all(|t| m.verdict(t).is_some())
            && m.get(
                "transitwatch_services_at_risk",
                &[
                    ("failure_kind", "country"),
                    ("failure", "ZA"),
                    ("loses", "dns"),
                ],
            ) == Some(1.0)
    });
    // The services' own routes.
    assert_eq!(m.verdict("gov-portal"), Some("domestic"));
    assert_eq!(m.verdict("bank"), Some("domestic"));
    assert_eq!(m.verdict("id"), Some("foreign_destination"));
    assert_eq!(m.verdict("shop"), Some("foreign_destination"));
    // The dependency paths: the bank's name server is reached through ZA.
    assert_eq!(m.verdict(ns_bank), Some("foreign_transit"));
    assert_eq!(
        m.get(
            "transitwatch_path_transit_country",
            &[("target", ns_bank), ("country", "ZA")]
        ),
        Some(2.0)
    );
    assert_eq!(m.verdict(ns_gov), Some("domestic"));
    assert_eq!(m.verdict(ns_cloud), Some("foreign_destination"));
    // Name servers' paths are no services: ZA is crossed by no service.
    assert_eq!(
        m.get(
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        None
    );
    // The DNS verdicts: the alias target's zone is all in Ireland and run
    // by one foreign-based operator; nothing else is flagged.
    assert_eq!(
        m.get(
            "transitwatch_service_dns_foreign_country",
            &[
                ("target", "id"),
                ("zone", "cloud.ie.test"),
                ("country", "IE"),
                ("accepted", "false")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "transitwatch_service_dns_foreign_operator",
            &[
                ("target", "id"),
                ("zone", "cloud.ie.test"),
                ("operator", "Emerald Cloud"),
                ("accepted", "false")
            ]
        ),
        Some(1.0)
    );
    for (target, flagged) in [
        ("gov-portal", 0.0),
        ("bank", 0.0),
        ("id", 1.0),
        ("shop", 0.0),
    ] {
        assert_eq!(
            m.get("transitwatch_service_dns_flagged", &[("target", target)]),
            Some(flagged),
            "{target}"
        );
    }
    assert_eq!(
        m.get(
            "transitwatch_service_dns_nameservers",
            &[
                ("target", "bank"),
                ("zone", "bank.ls.test"),
                ("role", "own"),
                ("country", "LS")
            ]
        ),
        Some(1.0)
    );
    for role in ["hosting", "dns"] {
        assert_eq!(
            m.get(
                "transitwatch_service_foreign_operator",
                &[
                    ("target", "id"),
                    ("role", role),
                    ("operator", "Emerald Cloud"),
                    ("country", "US"),
                    ("accepted", "false")
                ]
            ),
            Some(1.0),
            "{role}"
        );
    }
    // A zone without name servers: said, and the route verdict stands.
    assert!(
        m.get("transitwatch_service_dns_problems", &[("target", "shop")]) >= Some(1.0),
        "{:?}",
        m.get("transitwatch_service_dns_problems", &[("target", "shop")])
    );
    // What fails if South Africa does: the bank's DNS, nothing else.
    let at_risk = |failure: &str, loses: &str| {
        m.get(
            "transitwatch_services_at_risk",
            &[
                ("failure_kind", "country"),
                ("failure", failure),
                ("loses", loses),
            ],
        )
    };
    assert_eq!(at_risk("ZA", "dns"), Some(1.0));
    assert_eq!(at_risk("ZA", "route"), Some(0.0));
    assert_eq!(at_risk("ZA", "hosting"), Some(0.0));
    // Ireland: id and shop are hosted there; id's alias zone too.
    assert_eq!(at_risk("IE", "hosting"), Some(2.0));
    assert_eq!(at_risk("IE", "dns"), Some(1.0));

    // The records keep what DNS said.
    let (code, body) = daemon.get("/api/v1/targets/id/latest");
    assert_eq!(code, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    let dns_record = &latest[0]["dns"];
    assert_eq!(dns_record["name"], "id.gov.ls.test", "{body}");
    assert_eq!(dns_record["canonical"], "ls-id.cloud.ie.test", "{body}");
    assert_eq!(dns_record["zone"]["name"], "gov.ls.test", "{body}");
    assert_eq!(dns_record["target_zone"]["name"], "cloud.ie.test", "{body}");
    assert_eq!(
        dns_record["target_zone"]["nameservers"][0]["name"],
        "ns1.cloud.ie.test"
    );
    let (code, body) = daemon.get("/api/v1/targets/shop/latest");
    assert_eq!(code, 200, "{body}");
    let shop: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shop[0]["verdict"]["class"], "foreign_destination");
    let kinds: Vec<&str> = shop[0]["dns"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"no_nameservers"), "{body}");

    // The API's whatif and the overview say the same.
    let (code, body) = daemon.get("/api/v1/whatif?country=ZA");
    assert_eq!(code, 200, "{body}");
    let whatif: serde_json::Value = serde_json::from_str(&body).unwrap();
    let effects: Vec<(String, String)> = whatif["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["effect"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("bank", "loses_dns"),
        ("gov-portal", "unaffected"),
        ("id", "unaffected"),
        ("shop", "unaffected"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect();
    assert_eq!(effects, expected, "{body}");
    let (code, body) = daemon.get("/api/v1/dependencies");
    assert_eq!(code, 200, "{body}");
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(names(&overview["dns"]["flagged"]), ["id"], "{body}");
    let za = overview["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["failure"]["country"] == "ZA")
        .unwrap_or_else(|| panic!("no ZA in {body}"));
    assert_eq!(names(&za["loses_dns"]), ["bank"]);

    // Every domestic route now goes through South Africa: the home name
    // server with it. The portal and the bank lose their routes and their
    // DNS; id, hosted in Ireland, loses its DNS through its own zone.
    lab.route("za");
    let m = daemon.wait_metrics("the ZA route to be seen everywhere", |m| {
        m.verdict(ns_gov) == Some("foreign_transit")
            && m.verdict("gov-portal") == Some("foreign_transit")
            && m.verdict("bank") == Some("foreign_transit")
            && m.get(
                "transitwatch_services_at_risk",
                &[
                    ("failure_kind", "country"),
                    ("failure", "ZA"),
                    ("loses", "dns"),
                ],
            ) == Some(3.0)
    });
    assert_eq!(
        m.get(
            "transitwatch_services_at_risk",
            &[
                ("failure_kind", "country"),
                ("failure", "ZA"),
                ("loses", "route")
            ],
        ),
        Some(2.0)
    );
    let (_, body) = daemon.get("/api/v1/whatif?country=ZA");
    let whatif: serde_json::Value = serde_json::from_str(&body).unwrap();
    let effects: Vec<(&str, &str, bool)> = whatif["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["effect"].as_str().unwrap(),
                s["loses_dns"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        effects,
        [
            ("bank", "loses_route", true),
            ("gov-portal", "loses_route", true),
            ("id", "loses_dns", true),
            ("shop", "unaffected", false),
        ],
        "{body}"
    );
    lab.route("ls");
    daemon.wait_metrics("the LS route back", |m| {
        m.verdict(ns_gov) == Some("domestic")
            && m.verdict("gov-portal") == Some("domestic")
            && m.verdict("bank") == Some("domestic")
            && m.get(
                "transitwatch_services_at_risk",
                &[
                    ("failure_kind", "country"),
                    ("failure", "ZA"),
                    ("loses", "dns"),
                ],
            ) == Some(1.0)
    });

    // Stop, then ask the store as a regulator would.
    daemon.stop();
    let out = lab.transitwatch(&[
        "whatif",
        "--config",
        config.to_str().unwrap(),
        "--country",
        "ZA",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    support::schema::assert_valid("whatif.schema.json", &stored);
    assert_eq!(stored["counts"]["services"], 4, "{}", text(&out));
    assert_eq!(stored["counts"]["loses_dns"], 1);
    assert_eq!(stored["counts"]["loses_dns_only"], 1);
    assert_eq!(stored["counts"]["loses_route"], 0);
    let lost: Vec<&str> = stored["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["loses_dns"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(lost, ["bank"]);
    let text_out = lab.transitwatch(&[
        "whatif",
        "--config",
        config.to_str().unwrap(),
        "--country",
        "ZA",
    ]);
    let said = text(&text_out);
    assert!(
        said.contains("1 of 4 national services loses its DNS (its name servers): bank"),
        "{said}"
    );

    // The report: the same services, verdicts and figures.
    let out = lab.transitwatch(&[
        "report",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    support::schema::assert_valid("report.schema.json", &report);
    let services: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["bank", "gov-portal", "id", "shop"]);
    let deps = &report["summary"]["dependencies"];
    assert_eq!(names(&deps["dns"]["flagged"]), ["id"], "{deps}");
    let za = deps["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["failure"]["country"] == "ZA")
        .unwrap();
    assert_eq!(names(&za["loses_dns"]), ["bank"]);
    assert_eq!(names(&za["loses_route"]).len(), 0);
    let id = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "id")
        .unwrap();
    assert_eq!(id["dns"]["zones"][1]["single_foreign_country"], "IE");
    // The operator table behind the verdicts is named with its hash.
    let table = &report["method"]["operator_table"];
    let sha = {
        use sha2::{Digest, Sha256};
        Sha256::digest(OPERATORS.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(table["file_sha256"], sha.as_str(), "{table}");
    assert!(
        table["file"].as_str().unwrap().ends_with("operators.toml"),
        "{table}"
    );
    // The Markdown says it in words, with the same services.
    let out = lab.transitwatch(&[
        "report",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "md",
    ]);
    let md = text(&out);
    assert!(md.contains("## What fails if"), "{md}");
    assert!(md.contains("| South Africa (ZA) |  |  | bank |"), "{md}");
    assert!(
        md.contains("1 of 4 national services depends on name servers all in one foreign country or run by one foreign-based operator: id."),
        "{md}"
    );
    assert!(
        md.contains("cloud.ie.test (its alias target's zone): every name server (1) is in Ireland (IE) and run by Emerald Cloud, a foreign-based operator"),
        "{md}"
    );
}

const FAULTY: &str = r#"
[[target]]
name = "dark"
host = "www.dark.ls.test"
category = "government"

[[target]]
name = "lame"
host = "www.lame.ls.test"
category = "government"

[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"
"#;

#[test]
fn a_silent_or_failing_name_server_is_recorded_and_the_route_verdicts_stand() {
    let Some((lab, dns)) = lab_with_dns("a_silent_or_failing_name_server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, daemon) = start(&lab, &dns, dir.path(), FAULTY);
    let m = daemon.wait_metrics("the DNS problems of both faulty zones", |m| {
        ["dark", "lame"].iter().all(|t| {
            m.get("transitwatch_service_dns_problems", &[("target", t)])
                .is_some_and(|n| n >= 1.0)
        }) && m.verdict("dns:ns1.gov.ls.test/ipv4").is_some()
    });
    // The routes are judged as if nothing had happened to DNS.
    for target in ["dark", "lame", "gov-portal"] {
        assert_eq!(m.verdict(target), Some("domestic"), "{target}");
    }
    assert_eq!(
        m.get(
            "transitwatch_service_dns_problems",
            &[("target", "gov-portal")]
        ),
        Some(0.0)
    );
    // The records say what could not be established, and why.
    let problems = |target: &str| -> Vec<(String, String)> {
        let (code, body) = daemon.get(&format!("/api/v1/targets/{target}/latest"));
        assert_eq!(code, 200, "{body}");
        let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(latest[0]["verdict"]["class"], "domestic", "{body}");
        assert!(latest[0]["dns"]["zone"].is_null(), "{body}");
        latest[0]["dns"]["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("no problems in {body}"))
            .iter()
            .map(|p| {
                (
                    p["kind"].as_str().unwrap().to_string(),
                    p["query"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Nobody answers for dark.ls.test: the resolver gives up (in time, or
    // says SERVFAIL once it has marked the server down).
    let dark = problems("dark");
    assert!(
        dark.iter()
            .any(|(kind, query)| query == "NS" && (kind == "timeout" || kind == "serv_fail")),
        "{dark:?}"
    );
    // gov.ls.test's server refuses lame.ls.test: SERVFAIL for every part.
    let lame = problems("lame");
    assert!(
        lame.iter()
            .any(|(kind, query)| kind == "serv_fail" && query == "NS"),
        "{lame:?}"
    );
    // The overview says it in words.
    let (_, body) = daemon.get("/api/v1/dependencies");
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        names(&overview["dns"]["incomplete"]),
        ["dark", "lame"],
        "{body}"
    );
    let lame_dns = overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "lame")
        .unwrap()["dns"]["sentence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        lame_dns.contains("The zone of www.lame.ls.test could not be found")
            && lame_dns.contains("(serv_fail)"),
        "{lame_dns}"
    );
    daemon.assert_running();

    // Turned off by a reload: the records stop carrying DNS dependencies,
    // and the name servers' paths, which no service names any more, go.
    write_config(dir.path(), &[&store_section(dir.path()), FAULTY]);
    daemon.signal("HUP");
    let m = daemon.wait_metrics("the name servers' paths to be forgotten", |m| {
        m.verdict("dns:ns1.gov.ls.test/ipv4").is_none()
            && m.get("transitwatch_service_dns_problems", &[("target", "dark")])
                .is_none()
    });
    assert_eq!(m.verdict("gov-portal"), Some("domestic"));
    daemon.assert_running();
}
