//! Load-balanced paths on the lab: r1 balances the domestic services per
//! flow over two equal-cost next hops, ls2 (domestic) and za1 (through
//! South Africa). The daemon's multipath enumeration finds both paths and
//! says "1 of 2 load-balanced paths crosses South Africa (ZA)" in the
//! record, the metrics, and (with promtool) the alert the shipped rule
//! raises from those metrics.
//!
//! The enumeration is probabilistic by nature (the MDA's 95%): each one
//! starts its flows where the last ended, so the wait below is for the
//! first enumeration that found both paths (a hang guard, not a timing
//! assertion).

use crate::support;

use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use support::daemon::{store_section, write_config, LabDaemon, Metrics};
use support::services::poll;
use support::{root, text, Lab};

const TARGET: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"
multipath_interval = "1s"
"#;

const SUMMARY: &str = "1 of 2 load-balanced paths crosses South Africa (ZA)";

#[test]
fn ecmp_paths_one_through_za_are_counted_and_alerted() {
    let test = "ecmp_paths_one_through_za_are_counted_and_alerted";
    let Some(lab) = Lab::up(test) else {
        return;
    };
    if !support::have_all(test, &["curl"]) {
        return;
    }
    lab.ecmp(true, &[]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = write_config(dir.path(), &[&store_section(dir.path()), TARGET]);
    let daemon = LabDaemon::start(&lab, &config, &state);
    // The scrape that shows both paths, parsed and as text (the alert is
    // fed this very exposition: a later enumeration may miss a path, 5%
    // of the time at most).
    let (m, exposition) = poll(
        "an enumeration that found both paths",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            daemon.assert_running();
            let (code, body) = daemon.get("/metrics");
            let m = Metrics::parse(&body);
            let both = m.get("transitwatch_multipath_paths", &[("target", "gov-portal")]);
            (code == 200 && both == Some(2.0)).then_some((m, body))
        },
        || daemon.log_tail(),
    );
    let crossing = [("target", "gov-portal"), ("country", "ZA")];
    assert_eq!(
        m.get("transitwatch_multipath_foreign_paths", &crossing),
        Some(1.0)
    );
    assert_eq!(
        m.get("transitwatch_multipath_violating_paths", &crossing),
        Some(1.0)
    );
    // Two paths found: the MDA bound for two is 11 flows.
    let flows = m
        .get("transitwatch_multipath_flows", &[("target", "gov-portal")])
        .unwrap();
    assert!(flows >= 11.0, "{flows} flows");

    // The record of that enumeration, each path judged on its own, once
    // the store writer (which commits what arrives within 100 ms together)
    // has it.
    let last_body = std::cell::RefCell::new(String::new());
    let multipath: Value = poll(
        "the stored record with two paths",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let (code, body) = daemon.get("/api/v1/traces?target=gov-portal");
            assert_eq!(code, 200, "{body}");
            let found = body
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
                .filter_map(|r| r.get("multipath").cloned())
                .rfind(|m| m["paths"].as_array().is_some_and(|p| p.len() == 2));
            *last_body.borrow_mut() = body;
            found
        },
        || format!("no record with two paths:\n{}", last_body.borrow()),
    );
    assert_eq!(multipath["summary"], SUMMARY);
    assert_eq!(multipath["stop"], "confident");
    assert_eq!(multipath["port"], 33434);
    assert_eq!(
        multipath["crossing"],
        serde_json::json!([{"country": "ZA", "paths": 1, "violating": 1}])
    );
    let mut classes: Vec<&str> = multipath["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    classes.sort_unstable();
    assert_eq!(classes, ["domestic", "foreign_transit"]);
    for path in multipath["paths"].as_array().unwrap() {
        // Both reach the portal; the second hop is ls2 or za1.
        assert_eq!(path["reached"], true, "{path}");
        let second = path["hops"][1]["addr"].as_str().unwrap();
        let via_za = path["class"] == "foreign_transit";
        assert_eq!(
            second,
            if via_za { "198.18.4.2" } else { "198.18.2.2" },
            "{path}"
        );
        assert_eq!(path["violation"], via_za);
        assert!(!path["source_ports"].as_array().unwrap().is_empty());
    }
    let ports = |i: usize| {
        multipath["paths"][i]["source_ports"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(ports(0).iter().all(|p| !ports(1).contains(p)));

    // The target list says it in brief.
    let (code, body) = daemon.get("/api/v1/targets");
    assert_eq!(code, 200, "{body}");
    let targets: Value = serde_json::from_str(&body).unwrap();
    let brief = &targets[0]["paths"][0]["multipath"];
    assert!(brief["paths"].as_u64().is_some_and(|n| n >= 1), "{brief}");
    assert!(
        brief["summary"]
            .as_str()
            .is_some_and(|s| s.contains("load-balanced")),
        "{brief}"
    );

    alert_says_so(test, &exposition, dir.path());
    daemon.assert_running();
}

/// The shipped rule, fed the daemon's own multipath series, fires with the
/// finding as its summary (`promtool test rules`; skipped without it).
fn alert_says_so(test: &str, exposition: &str, dir: &std::path::Path) {
    if !support::have_all(test, &["promtool"]) {
        return;
    }
    let series: Vec<String> = exposition
        .lines()
        .filter(|l| l.starts_with("transitwatch_multipath_"))
        .map(|l| {
            let (name_labels, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = name_labels.split_once('{').unwrap();
            format!(
                "      - series: '{name}{{job=\"transitwatch\",instance=\"lab\",{labels}'\n        values: '{value}x10'\n"
            )
        })
        .collect();
    assert!(series.len() >= 4, "{exposition}");
    let rules = root().join("config/prometheus/transitwatch-rules.yml");
    let tests = format!(
        "rule_files:\n  - {rules:?}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n      - eval_time: 5m\n        alertname: LoadBalancedPathAbroad\n        exp_alerts:\n          - exp_labels:\n              severity: critical\n              job: transitwatch\n              instance: lab\n              target: gov-portal\n              country: ZA\n              name: South Africa\n            exp_annotations:\n              summary: \"gov-portal: {SUMMARY}\"\n{}",
        series.concat(),
        other_annotations(),
    );
    let file = dir.join("multipath.test.yml");
    std::fs::write(&file, tests).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool: {}", text(&out));
}

/// The description and runbook the rule gives this finding: promtool
/// compares every annotation, and the rule tests' gov-portal case has the
/// same finding, so its two lines are taken as they are.
fn other_annotations() -> String {
    let tests =
        std::fs::read_to_string(root().join("config/prometheus/transitwatch-rules.test.yml"))
            .unwrap();
    let lines: Vec<&str> = tests
        .lines()
        .skip_while(|l| !l.contains("summary: \"gov-portal: 1 of 2 load-balanced paths"))
        .skip(1)
        .take_while(|l| {
            let l = l.trim_start();
            l.starts_with("description:") || l.starts_with("runbook:")
        })
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "the rule tests lack the gov-portal multipath case"
    );
    lines.iter().map(|l| format!("{l}\n")).collect()
}
