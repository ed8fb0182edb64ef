//! The Grafana dashboards (`dashboards/`) and the Prometheus rules
//! (`config/prometheus/`) against the metrics contract of `src/metrics/`.
//!
//! Dashboards: valid JSON, unique panel ids, a grid of at most 24 columns
//! without overlaps, every panel and query on the `${datasource}` variable,
//! every variable a query uses defined, and every `transitwatch_*` name a
//! family the daemon exports (histograms with their `_bucket`, `_sum` and
//! `_count` series).
//!
//! Rules: the same name check, every alert covered by a rule test where it
//! fires and one where it does not, then `promtool check rules`, `promtool test
//! rules`, `promtool check config`, a parse of every dashboard query, and
//! the headline overview queries evaluated on daemon-shaped series. Without
//! promtool these print `SKIPPED ...` and pass, unless
//! `TRANSITWATCH_REQUIRE_LAB=1`.

use crate::support;

use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::dashboards::{all_panels, array};
use support::root;

const DASHBOARDS: [&str; 3] = ["overview.json", "path-detail.json", "map.json"];
const RULES: &str = "config/prometheus/transitwatch-rules.yml";
const RULE_TESTS: &str = "config/prometheus/transitwatch-rules.test.yml";
const PROMETHEUS_CONFIG: &str = "config/prometheus/prometheus.yml";
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// Every `transitwatch_...` name in `text` (not preceded by an identifier
/// character).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("transitwatch_") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let name: String = text[at..]
            .chars()
            .take_while(|c| is_name_char(*c))
            .collect();
        names.insert(name);
    }
    names
}

/// The family names `src/metrics/` defines: the string literals of its
/// modules that are exactly a `transitwatch_...` name.
fn exported_families() -> BTreeSet<String> {
    let dir = root().join("src/metrics");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("reading src/metrics").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let source: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    let mut families = BTreeSet::new();
    for (at, _) in source.match_indices("\"transitwatch_") {
        let rest = &source[at + 1..];
        let name: String = rest.chars().take_while(|c| is_name_char(*c)).collect();
        if rest[name.len()..].starts_with('"') {
            families.insert(name);
        }
    }
    assert!(
        families.contains("transitwatch_path_verdict") && families.len() >= 10,
        "reading the families from src/metrics/ found only {families:?}"
    );
    families
}

fn is_exported(name: &str, families: &BTreeSet<String>) -> bool {
    families.contains(name)
        || HISTOGRAM_SUFFIXES.iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|family| families.contains(family))
        })
}

/// Names in `text` that are not exported families.
fn unknown_names(text: &str, families: &BTreeSet<String>) -> Vec<String> {
    metric_names(text)
        .into_iter()
        .filter(|n| !is_exported(n, families))
        .collect()
}

// ------------------------------------------------------------- dashboards

struct Dashboard {
    file: &'static str,
    json: Value,
}

fn dashboards() -> Vec<Dashboard> {
    DASHBOARDS
        .iter()
        .map(|file| {
            let text = read(&format!("dashboards/{file}"));
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("dashboards/{file} is not valid JSON: {e}"));
            Dashboard { file, json }
        })
        .collect()
}

/// Every PromQL query: panel targets, annotations and query variables.
fn all_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    for panel in all_panels(dashboard) {
        for target in array(panel, "targets") {
            if let Some(expr) = target.get("expr").and_then(Value::as_str) {
                queries.push(expr.to_string());
            }
        }
    }
    for annotation in array(&dashboard["annotations"], "list") {
        if let Some(expr) = annotation.get("expr").and_then(Value::as_str) {
            queries.push(expr.to_string());
        }
    }
    for variable in array(&dashboard["templating"], "list") {
        if variable["type"] == "query" {
            let query = match &variable["query"] {
                Value::String(s) => s.clone(),
                other => other["query"].as_str().unwrap_or_default().to_string(),
            };
            queries.push(query);
        }
    }
    queries
}

fn datasource_ref() -> Value {
    serde_json::json!({"type": "prometheus", "uid": "${datasource}"})
}

struct Cell {
    id: i64,
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

fn cell(file: &str, panel: &Value) -> Cell {
    let id = panel["id"].as_i64().unwrap_or(-1);
    let at = |key: &str| {
        panel["gridPos"][key]
            .as_i64()
            .unwrap_or_else(|| panic!("{file}: panel {id} has no integer gridPos.{key}"))
    };
    let cell = Cell {
        id,
        x: at("x"),
        y: at("y"),
        w: at("w"),
        h: at("h"),
    };
    assert!(
        cell.x >= 0 && cell.y >= 0 && cell.w >= 1 && cell.h >= 1 && cell.x + cell.w <= 24,
        "{file}: panel {id} lies outside the 24-column grid: x={} w={} y={} h={}",
        cell.x,
        cell.w,
        cell.y,
        cell.h
    );
    cell
}

fn assert_no_overlap(file: &str, cells: &[Cell]) {
    for (i, a) in cells.iter().enumerate() {
        for b in &cells[i + 1..] {
            let apart =
                a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
            assert!(apart, "{file}: panels {} and {} overlap", a.id, b.id);
        }
    }
}

#[test]
fn dashboards_have_identity_and_variables() {
    let mut uids = HashSet::new();
    for Dashboard { file, json } in dashboards() {
        let uid = json["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{file}: no uid");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} repeats");
        assert!(
            !json["title"].as_str().unwrap_or_default().is_empty(),
            "{file}: no title"
        );
        let schema = json["schemaVersion"].as_i64().unwrap_or(0);
        assert!(
            (36..=41).contains(&schema),
            "{file}: schemaVersion {schema}"
        );

        let variables = array(&json["templating"], "list");
        let datasource = variables
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(datasource["type"], "datasource", "{file}");
        assert_eq!(datasource["query"], "prometheus", "{file}");
        let target = variables
            .iter()
            .find(|v| v["name"] == "target")
            .unwrap_or_else(|| panic!("{file}: no target variable"));
        assert_eq!(target["type"], "query", "{file}");
        assert_eq!(
            target["definition"], "label_values(transitwatch_path_verdict, target)",
            "{file}"
        );
        for variable in variables.iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                variable["datasource"],
                datasource_ref(),
                "{file}: variable {}",
                variable["name"]
            );
        }

        // Every variable a query refers to is defined.
        let defined: HashSet<&str> = variables
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        for query in all_queries(&json) {
            for (at, _) in query.match_indices('$') {
                let rest = query[at + 1..].trim_start_matches('{');
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.starts_with("__") {
                    continue; // Grafana's built-ins
                }
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                    continue; // label_replace's `$1`, left as written
                }
                assert!(
                    defined.contains(name.as_str()),
                    "{file}: `{query}` uses ${name}, which is not a variable"
                );
            }
        }
    }
}

#[test]
fn dashboard_panels_have_unique_ids_and_fit_the_grid() {
    for Dashboard { file, json } in dashboards() {
        let panels = all_panels(&json);
        assert!(!panels.is_empty(), "{file}: no panels");
        let mut ids = HashSet::new();
        for panel in &panels {
            let id = panel["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: a panel without an integer id"));
            assert!(ids.insert(id), "{file}: panel id {id} repeats");
        }

        // The top level shares one grid; a collapsed row's panels are laid
        // out on their own when it opens, below the row.
        let top: Vec<Cell> = array(&json, "panels")
            .iter()
            .map(|p| cell(file, p))
            .collect();
        assert_no_overlap(file, &top);
        for row in array(&json, "panels").iter().filter(|p| p["type"] == "row") {
            let nested = array(row, "panels");
            let collapsed = row["collapsed"].as_bool().unwrap_or(false);
            assert!(
                collapsed || nested.is_empty(),
                "{file}: open row {} holds panels",
                row["id"]
            );
            let row_y = row["gridPos"]["y"].as_i64().unwrap_or(0);
            let cells: Vec<Cell> = nested.iter().map(|p| cell(file, p)).collect();
            for c in &cells {
                assert!(c.y > row_y, "{file}: panel {} lies above its row", c.id);
            }
            assert_no_overlap(file, &cells);
        }
    }
}

#[test]
fn dashboard_panels_and_queries_use_the_datasource_variable() {
    for Dashboard { file, json } in dashboards() {
        for panel in all_panels(&json) {
            assert_eq!(
                panel["datasource"],
                datasource_ref(),
                "{file}: panel {} ({})",
                panel["id"],
                panel["title"]
            );
            for target in array(panel, "targets") {
                assert!(
                    target.get("expr").and_then(Value::as_str).is_some(),
                    "{file}: panel {} has a query without expr",
                    panel["id"]
                );
                if let Some(ds) = target.get("datasource") {
                    assert_eq!(*ds, datasource_ref(), "{file}: panel {}", panel["id"]);
                }
            }
        }
        for annotation in array(&json["annotations"], "list") {
            if annotation.get("expr").is_some() {
                assert_eq!(annotation["datasource"], datasource_ref(), "{file}");
            }
        }
    }
}

#[test]
fn dashboard_queries_use_exported_families() {
    let families = exported_families();
    for Dashboard { file, json } in dashboards() {
        let queries = all_queries(&json);
        assert!(!queries.is_empty(), "{file}: no queries");
        for query in queries {
            let unknown = unknown_names(&query, &families);
            assert!(
                unknown.is_empty(),
                "{file}: `{query}` uses {unknown:?}, which src/metrics/ does not export"
            );
        }
    }
}

// ------------------------------------------------------------------ rules

#[test]
fn rules_use_exported_families() {
    let families = exported_families();
    for file in [RULES, RULE_TESTS] {
        let unknown = unknown_names(&read(file), &families);
        assert!(
            unknown.is_empty(),
            "{file} uses {unknown:?}, which src/metrics/ does not export"
        );
    }
}

/// The alert names of the rule file (`- alert: NAME`).
fn alert_names(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_string())
        .collect()
}

/// Every `alertname:` case of the rule tests: (alert, expects alerts).
fn alert_cases(tests: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let mut cases = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("alertname: ") else {
            continue;
        };
        let expected = lines[i + 1..]
            .iter()
            .find_map(|l| l.strip_prefix("exp_alerts:"))
            .unwrap_or_else(|| panic!("{RULE_TESTS}: case {name} has no exp_alerts"));
        cases.push((name.trim().to_string(), expected.trim() != "[]"));
    }
    cases
}

/// `promtool test rules` proves each alert both ways: every alert of the
/// rule file has a case where it fires and one where it does not.
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let alerts = alert_names(&read(RULES));
    assert!(alerts.len() >= 8, "{RULES}: only {alerts:?}");
    let cases = alert_cases(&read(RULE_TESTS));
    for alert in &alerts {
        for fires in [true, false] {
            assert!(
                cases.contains(&(alert.clone(), fires)),
                "{RULE_TESTS} has no case where {alert} {}",
                if fires { "fires" } else { "stays quiet" }
            );
        }
    }
    for (name, _) in &cases {
        assert!(
            alerts.contains(name),
            "{RULE_TESTS} tests {name}, which {RULES} lacks"
        );
    }
}

/// promtool, or `None` after a `SKIPPED` line.
fn promtool(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        support::skip(
            test,
            "promtool is not installed (Debian package prometheus)",
        );
    }
    found
}

fn run_promtool(promtool: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running promtool {args:?}: {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh scratch folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "transitwatch-dashboards-rules-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

#[test]
fn promtool_checks_the_rules_and_config() {
    let Some(promtool) = promtool("promtool check rules") else {
        return;
    };
    let root = root();
    run_promtool(&promtool, &["check", "rules", RULES], &root);
    run_promtool(&promtool, &["check", "config", PROMETHEUS_CONFIG], &root);
}

#[test]
fn promtool_rule_unit_tests_pass() {
    let Some(promtool) = promtool("promtool test rules") else {
        return;
    };
    run_promtool(&promtool, &["test", "rules", RULE_TESTS], &root());
}

/// A query with its variables replaced by sample values.
fn with_sample_variables(query: &str) -> String {
    query
        .replace("${target}", "gov-portal")
        .replace("$target", "gov-portal")
        .replace("${country}", ".*")
        .replace("$country", ".*")
}

#[test]
fn promtool_parses_every_dashboard_query() {
    let Some(promtool) = promtool("dashboard queries parse") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut count = 0;
    for Dashboard { json, .. } in dashboards() {
        for query in all_queries(&json) {
            if query.starts_with("label_values(") {
                continue; // Grafana's variable syntax, not PromQL
            }
            count += 1;
            let expr = Value::String(with_sample_variables(&query)).to_string();
            rules.push_str(&format!(
                "      - record: dashboard:query_{count}\n        expr: {expr}\n"
            ));
        }
    }
    let dir = scratch("parse");
    std::fs::write(dir.join("queries.yml"), rules).expect("writing queries.yml");
    run_promtool(&promtool, &["check", "rules", "queries.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The overview's headline queries on a foreign-transit path and a domestic
/// one: half the services transit abroad, and AS 37100 (the ZA hops) carries
/// half of them; unknown countries and ASNs are no dependency. A name
/// server's dependency path (`dns:...`, through ZA, AS 64999, not
/// answering, a violation) counts in no service figure, only in the name
/// servers' table; "What fails if" gives one row per failure.
#[test]
fn overview_dependency_queries_return_data() {
    let Some(promtool) = promtool("overview queries evaluate") else {
        return;
    };
    let overview = dashboards()
        .into_iter()
        .find(|d| d.file == "overview.json")
        .expect("overview.json")
        .json;
    let query = |title: &str| {
        let panel = all_panels(&overview)
            .into_iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("overview.json: no panel `{title}`"));
        let expr = panel["targets"][0]["expr"].as_str().expect("expr");
        Value::String(with_sample_variables(expr)).to_string()
    };
    let l = r#"job="transitwatch",instance="127.0.0.1:19968""#;
    // A name server's dependency path, no service.
    const NS: &str = "dns:ns1.bank.ls.test/ipv4";
    let series = [
        format!(r#"transitwatch_path_verdict{{{l},target="gov-portal",class="foreign_transit"}}"#),
        format!(r#"transitwatch_path_verdict{{{l},target="central-bank",class="domestic"}}"#),
        format!(r#"transitwatch_country_dependency_ratio{{{l},country="ZA"}}"#),
        format!(
            r#"transitwatch_hop_info{{{l},target="gov-portal",ttl="1",addr="10.0.0.1",country="LS",asn="33567"}}"#
        ),
        format!(
            r#"transitwatch_hop_info{{{l},target="gov-portal",ttl="2",addr="196.1.1.1",country="ZA",asn="37100"}}"#
        ),
        format!(
            r#"transitwatch_hop_info{{{l},target="gov-portal",ttl="3",addr="196.1.1.2",country="ZA",asn="37100"}}"#
        ),
        format!(
            r#"transitwatch_hop_info{{{l},target="gov-portal",ttl="4",addr="196.1.1.9",country="",asn=""}}"#
        ),
        format!(
            r#"transitwatch_hop_info{{{l},target="central-bank",ttl="1",addr="10.0.0.1",country="LS",asn="33567"}}"#
        ),
        format!(r#"transitwatch_path_verdict{{{l},target="{NS}",class="foreign_transit"}}"#),
        format!(r#"transitwatch_path_violation{{{l},target="{NS}"}}"#),
        format!(r#"transitwatch_path_reached{{{l},target="{NS}"}}"#),
        format!(
            r#"transitwatch_hop_info{{{l},target="{NS}",ttl="2",addr="196.1.2.1",country="ZA",asn="64999"}}"#
        ),
        format!(
            r#"transitwatch_services_at_risk{{{l},failure_kind="country",failure="ZA",loses="hosting"}}"#
        ),
        format!(
            r#"transitwatch_services_at_risk{{{l},failure_kind="country",failure="ZA",loses="route"}}"#
        ),
        format!(
            r#"transitwatch_services_at_risk{{{l},failure_kind="country",failure="ZA",loses="dns"}}"#
        ),
    ];
    let values = [
        "1x5", "1x5", "0.5x5", "1x5", "1x5", "1x5", "1x5", "1x5", "1x5", "1x5", "0x5", "1x5",
        "0x5", "1x5", "1x5",
    ];
    let mut input = String::new();
    for (s, v) in series.iter().zip(values) {
        input.push_str(&format!(
            "      - series: {}\n        values: '{v}'\n",
            Value::String(s.clone())
        ));
    }
    // The zero-valued classes of the targets.
    for (target, class) in [
        ("gov-portal", "domestic"),
        ("central-bank", "foreign_transit"),
        (NS, "domestic"),
    ] {
        input.push_str(&format!(
            "      - series: {}\n        values: '0x5'\n",
            Value::String(format!(
                r#"transitwatch_path_verdict{{{l},target="{target}",class="{class}"}}"#
            ))
        ));
    }
    let tests = format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{input}\
         \x20   promql_expr_test:\n\
         \x20     - expr: {share}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{}}'\n            value: 0.5\n\
         \x20     - expr: {by_as}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{asn=\"37100\"}}'\n            value: 0.5\n\
         \x20     - expr: {by_country}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{__name__=\"transitwatch_country_dependency_ratio\",country=\"ZA\",instance=\"127.0.0.1:19968\",job=\"transitwatch\"}}'\n            value: 0.5\n\
         \x20     - expr: {measured}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{}}'\n            value: 2\n\
         \x20     - expr: {breaking}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{}}'\n            value: 0\n\
         \x20     - expr: {silent}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{}}'\n            value: 0\n\
         \x20     - expr: {at_risk}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{failure=\"ZA\",failure_kind=\"country\",instance=\"127.0.0.1:19968\",job=\"transitwatch\"}}'\n            value: 0\n\
         \x20     - expr: {name_servers}\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{__name__=\"transitwatch_path_verdict\",class=\"foreign_transit\",instance=\"127.0.0.1:19968\",job=\"transitwatch\",target=\"{NS}\"}}'\n            value: 1\n",
        share = query("National services with foreign transit"),
        by_as = query("Dependency by foreign AS"),
        by_country = query("Dependency by foreign country"),
        measured = query("Services measured"),
        breaking = query("Services breaking their country policy"),
        silent = query("Services not answering"),
        at_risk = query("What fails if"),
        name_servers = query("Name servers' paths"),
    );
    let dir = scratch("overview");
    std::fs::write(dir.join("overview.test.yml"), tests).expect("writing overview.test.yml");
    run_promtool(&promtool, &["test", "rules", "overview.test.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
