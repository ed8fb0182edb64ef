//! The Grafana dashboards and the Prometheus alerting rules against the real
//! components on the namespace lab: the daemon, Debian's Prometheus and
//! Debian's Alertmanager (`prometheus-alertmanager`).
//!
//! `every_dashboard_query_returns_data_from_a_real_prometheus`: the daemon
//! traces five lab services of every kind the dashboards show (domestic,
//! through the South African routers, hosted in Ireland, never answering,
//! and one whose route is moved through South Africa once during the run);
//! Prometheus scrapes it every second. Then every PromQL expression of every
//! dashboard (panel queries, also inside collapsed rows, and annotation
//! queries) runs against Prometheus' HTTP API with the dashboard's variables
//! resolved the way Grafana resolves them (`label_values(...)` through the
//! label values API; multi-value and `All` variables as a regex
//! alternation; single-value variables once per value). A query fails the
//! test if Prometheus answers with an error or with no data, if a label its
//! legend, annotation text or table/map fields name is missing, or if the
//! headline numbers are not what the lab's paths give.
//!
//! `alertmanager_delivers_foreign_transit_to_a_webhook`: Prometheus loads
//! the real rules (with `for:` shortened) and sends to a real Alertmanager
//! configured from `config/prometheus/alertmanager.yml`, which posts to a
//! webhook receiver (`tests/tools/webhook_receiver.py`). Moving the portal
//! onto the ZA route delivers a firing `ForeignTransitDetected` with the
//! plain-language annotations; moving it back delivers the resolution; an
//! allowed detour through ZA never alerts.
//!
//! Waits poll with generous bounds (hang guards, not timing assertions).

use crate::support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::daemon::{store_section, write_config, LabDaemon, LISTEN as DAEMON};
use support::dashboards::{all_panels, array};
use support::services::{self, label, sample_value, PromApi, Service, ALERTMANAGER, PROMETHEUS};
use support::webhook::Receiver;
use support::{root, Lab};

const DASHBOARDS: [&str; 3] = ["overview.json", "path-detail.json", "map.json"];
/// Hang guard of every wait.
const WAIT: Duration = Duration::from_secs(120);

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with each `(from, to)` replaced; every `from` must occur, so a
/// change to the shipped file fails here instead of being silently ignored.
fn rewrite(file: &str, text: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (from, to) in replacements {
        assert!(out.contains(from), "{file} no longer contains `{from}`");
        out = out.replace(from, to);
    }
    out
}

/// `text` contains each of `needles` (what the test's services assume).
fn assert_mentions(file: &str, text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            text.contains(needle),
            "{file} no longer contains `{needle}`"
        );
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The shipped `config/prometheus/prometheus.yml` and its rule file, copied
/// into `dir`, with the test's changes: scrape and evaluate every second
/// instead of every 30 s, and, with `short_for`, every rule's `for:`
/// shortened to 3 s so an alert fires within seconds of its condition
/// (the expressions and annotations are the shipped ones).
fn prometheus_config(dir: &Path, short_for: bool) -> PathBuf {
    let file = "config/prometheus/prometheus.yml";
    let config = rewrite(
        file,
        &read(file),
        &[
            ("scrape_interval: 30s", "scrape_interval: 1s"),
            ("evaluation_interval: 30s", "evaluation_interval: 1s"),
        ],
    );
    // The rule file beside it, the daemon and the Alertmanager as the
    // services here run them.
    assert_mentions(
        file,
        &config,
        &[
            "- transitwatch-rules.yml",
            &format!("[\"{DAEMON}\"]"),
            &format!("[\"{ALERTMANAGER}\"]"),
        ],
    );
    let mut rules = read("config/prometheus/transitwatch-rules.yml");
    if short_for {
        let mut shortened = 0;
        rules = rules
            .lines()
            .map(|line| match line.trim_start().strip_prefix("for: ") {
                Some(_) => {
                    shortened += 1;
                    let indent = &line[..line.len() - line.trim_start().len()];
                    format!("{indent}for: 3s")
                }
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(shortened >= 5, "only {shortened} `for:` lines in the rules");
    }
    std::fs::write(dir.join("transitwatch-rules.yml"), rules).unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Wait until `url` answers 200 while `service` runs.
fn wait_ready(lab: &Lab, url: &str, service: &Service) {
    services::wait_for(
        url,
        WAIT,
        || {
            service.assert_running();
            (services::http_get(lab, url).0 == 200).then_some(())
        },
        || service.log_tail(),
    );
}

// ------------------------------------------------------------- dashboards

/// Grafana's built-in variables, with values that fit this run (a few
/// minutes of samples, one a second). Grafana derives them from the
/// dashboard's time range, the panel's width and the data source's
/// `timeInterval` (30 s in `dashboards/datasource.yaml`):
///
/// | variable | in Grafana | here |
/// |---|---|---|
/// | `$__interval` | time range / max data points, at least `timeInterval` | `5s` |
/// | `$__interval_ms` | the same in milliseconds | `5000` |
/// | `$__rate_interval` | max(`$__interval` + scrape interval, 4 × scrape interval) | `30s` |
/// | `$__range` | the dashboard's time range | `10m` |
/// | `$__range_s`, `$__range_ms` | the same in seconds, milliseconds | `600`, `600000` |
///
/// Range queries cover the last `$__range` (the whole run) with the query's
/// own `step` or `interval`, else `$__interval`, and end now.
const BUILTINS: [(&str, &str); 6] = [
    ("__interval", "5s"),
    ("__interval_ms", "5000"),
    ("__rate_interval", "30s"),
    ("__range", "10m"),
    ("__range_s", "600"),
    ("__range_ms", "600000"),
];
const RANGE_SECONDS: f64 = 600.0;
const DEFAULT_STEP: &str = "5s";

/// Panel types Grafana draws over time: their queries also run as range
/// queries.
const TIME_PANELS: [&str; 5] = [
    "timeseries",
    "state-timeline",
    "status-history",
    "heatmap",
    "graph",
];

/// One PromQL expression of a dashboard.
struct Query {
    dashboard: &'static str,
    /// Where it is, for messages: the panel (id and title) or annotation.
    place: String,
    /// The panel's title or the annotation's name, for lookups.
    title: String,
    ref_id: String,
    expr: String,
    range: bool,
    step: Option<String>,
    /// Labels that legends, annotation texts and tags name (`{{label}}`).
    labels: BTreeSet<String>,
    /// An annotation: it marks events, so it has data only for the values
    /// of the single-value variables where the event happened (at least
    /// one), not for each.
    event: bool,
}

/// A panel whose transformations or map layers name fields: every one must
/// be a label of its queries' results.
struct FieldPanel {
    dashboard: &'static str,
    place: String,
    fields: BTreeSet<String>,
    geomap: bool,
}

/// The `{{label}}` names of a Grafana format string.
fn format_labels(format: &str) -> impl Iterator<Item = String> + '_ {
    format.split("{{").skip(1).filter_map(|rest| {
        let name = rest.split("}}").next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// Fields a panel's transformations and map layers name that come from
/// labels (Grafana's own `Time` and `Value...` columns aside).
fn named_fields(panel: &Value) -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for t in array(panel, "transformations") {
        let options = &t["options"];
        match t["id"].as_str() {
            Some("organize") => {
                for key in ["indexByName", "renameByName", "excludeByName"] {
                    if let Some(map) = options[key].as_object() {
                        // Excluded columns need not exist; the others must.
                        if key != "excludeByName" {
                            fields.extend(map.keys().cloned());
                        }
                    }
                }
            }
            Some("convertFieldType") => {
                for c in array(options, "conversions") {
                    fields.extend(c["targetField"].as_str().map(str::to_string));
                }
            }
            Some("sortBy") => {
                for s in array(options, "sort") {
                    fields.extend(s["field"].as_str().map(str::to_string));
                }
            }
            _ => {}
        }
    }
    for layer in array(&panel["options"], "layers") {
        let location = &layer["location"];
        for key in ["latitude", "longitude", "geohash", "lookup"] {
            fields.extend(location[key].as_str().map(str::to_string));
        }
    }
    fields.retain(|f| f != "Time" && f != "Value" && !f.starts_with("Value #"));
    fields
}

fn collect_queries(
    dashboard: &'static str,
    json: &Value,
    queries: &mut Vec<Query>,
    field_panels: &mut Vec<FieldPanel>,
) {
    for panel in all_panels(json) {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        let place = format!("panel {} `{title}`", panel["id"]);
        let kind = panel["type"].as_str().unwrap_or_default();
        let fields = named_fields(panel);
        if !fields.is_empty() {
            field_panels.push(FieldPanel {
                dashboard,
                place: place.clone(),
                fields,
                geomap: kind == "geomap",
            });
        }
        for target in array(panel, "targets") {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let range = target["range"].as_bool().unwrap_or(false) || TIME_PANELS.contains(&kind);
            queries.push(Query {
                dashboard,
                place: place.clone(),
                title: title.clone(),
                ref_id: target["refId"].as_str().unwrap_or("A").to_string(),
                expr: expr.to_string(),
                range,
                step: target["step"]
                    .as_str()
                    .or(target["interval"].as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                labels: target["legendFormat"]
                    .as_str()
                    .map(|f| format_labels(f).collect())
                    .unwrap_or_default(),
                event: false,
            });
        }
    }
    for annotation in array(&json["annotations"], "list") {
        let Some(expr) = annotation["expr"].as_str() else {
            continue; // Grafana's built-in annotations and alerts
        };
        let name = annotation["name"].as_str().unwrap_or_default().to_string();
        let mut labels: BTreeSet<String> = ["titleFormat", "textFormat"]
            .iter()
            .filter_map(|k| annotation[*k].as_str())
            .flat_map(format_labels)
            .collect();
        if let Some(tags) = annotation["tagKeys"].as_str() {
            labels.extend(
                tags.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            );
        }
        queries.push(Query {
            dashboard,
            place: format!("annotation `{name}`"),
            title: name,
            ref_id: "Anno".to_string(),
            expr: expr.to_string(),
            range: true,
            step: annotation["step"].as_str().map(str::to_string),
            labels,
            event: true,
        });
    }
}

/// A template variable, resolved.
struct Variable {
    name: String,
    values: Vec<String>,
    /// Multi-value or with an `All` option: Grafana's default `All` is
    /// substituted (every value at once).
    multi: bool,
    all_value: Option<String>,
}

/// Grafana's regex escape of one value of a multi-value variable in a
/// Prometheus query (`prometheusSpecialRegexEscape`): the backslash doubled
/// because it sits in a PromQL string.
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\^$*+?.()|{}[]".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Grafana's escape of a single value (`prometheusRegularEscape`).
fn plain_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

impl Variable {
    /// The text substituted for the `All` selection.
    fn all(&self) -> String {
        if let Some(all) = &self.all_value {
            return all.clone();
        }
        let escaped: Vec<String> = self.values.iter().map(|v| regex_escape(v)).collect();
        if escaped.len() == 1 {
            escaped[0].clone()
        } else {
            format!("({})", escaped.join("|"))
        }
    }
}

/// `text` with `$name`, `${name}`, `${name:format}` and `[[name]]` replaced
/// from `values`; an unknown name is an error.
fn interpolate(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let lookup = |name: &str| {
        values
            .get(name)
            .cloned()
            .ok_or_else(|| format!("`{text}` uses ${name}, which has no value"))
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(braced) = tail.strip_prefix("${") {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("`{text}`: unclosed ${{"))?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            out.push_str(&lookup(name)?);
            rest = &braced[end + 1..];
        } else if let Some(bracketed) = tail.strip_prefix("[[") {
            let end = bracketed
                .find("]]")
                .ok_or_else(|| format!("`{text}`: unclosed [["))?;
            let name = bracketed[..end].split(':').next().unwrap_or_default();
            out.push_str(&lookup(name)?);
            rest = &bracketed[end + 2..];
        } else if let Some(after) = tail.strip_prefix('$') {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                out.push('$'); // a regex anchor, not a variable
            } else if name.bytes().all(|b| b.is_ascii_digit()) {
                // label_replace's group reference (`$1`): no dashboard
                // variable has that name, and Grafana leaves it as written.
                out.push('$');
                out.push_str(&name);
            } else {
                out.push_str(&lookup(&name)?);
            }
            rest = &after[name.len()..];
        } else {
            out.push('[');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The uid of the provisioned data source (`dashboards/datasource.yaml`).
fn datasource_uid() -> String {
    read("dashboards/datasource.yaml")
        .lines()
        .find_map(|l| l.trim().strip_prefix("uid: "))
        .expect("dashboards/datasource.yaml has a uid")
        .trim()
        .to_string()
}

/// Resolve a dashboard's variables in order, as Grafana does on load.
fn resolve_variables(file: &str, json: &Value, prom: &PromApi) -> Vec<Variable> {
    let mut resolved: Vec<Variable> = Vec::new();
    for v in array(&json["templating"], "list") {
        let name = v["name"].as_str().expect("variable name").to_string();
        let query = match &v["query"] {
            Value::String(s) => s.clone(),
            other => other["query"].as_str().unwrap_or_default().to_string(),
        };
        let mut known: BTreeMap<String, String> = BUILTINS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for r in &resolved {
            known.insert(r.name.clone(), r.all());
        }
        let values = match v["type"].as_str().unwrap_or_default() {
            "datasource" => {
                assert_eq!(query, "prometheus", "{file}: variable {name}");
                vec![datasource_uid()]
            }
            "query" => {
                let query = interpolate(&query, &known)
                    .unwrap_or_else(|e| panic!("{file}: variable {name}: {e}"));
                let args = query
                    .strip_prefix("label_values(")
                    .and_then(|a| a.strip_suffix(')'))
                    .unwrap_or_else(|| {
                        panic!("{file}: variable {name}: only label_values(...) is supported, got `{query}`")
                    });
                let (selector, label_name) = match args.rsplit_once(',') {
                    Some((selector, label_name)) => (selector.trim(), label_name.trim()),
                    None => ("{__name__=~\".+\"}", args.trim()),
                };
                let regex = v["regex"].as_str().unwrap_or_default();
                assert!(
                    regex.is_empty(),
                    "{file}: variable {name}: a regex filter (`{regex}`) is not supported here"
                );
                prom.label_values(label_name, selector)
                    .unwrap_or_else(|e| panic!("{file}: variable {name}: `{query}`: {e}"))
            }
            "custom" => query.split(',').map(|s| s.trim().to_string()).collect(),
            "constant" | "textbox" => vec![query.clone()],
            other => panic!("{file}: variable {name}: type {other} is not supported here"),
        };
        assert!(
            !values.is_empty(),
            "{file}: variable {name} resolves to no values"
        );
        resolved.push(Variable {
            name,
            values,
            multi: v["multi"].as_bool().unwrap_or(false)
                || v["includeAll"].as_bool().unwrap_or(false),
            all_value: v["allValue"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        });
    }
    resolved
}

/// Every assignment of the variables: multi-value ones at `All`,
/// single-value ones at each of their values in turn.
fn assignments(variables: &[Variable]) -> Vec<BTreeMap<String, String>> {
    let mut base: BTreeMap<String, String> = BUILTINS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for v in variables.iter().filter(|v| v.multi) {
        base.insert(v.name.clone(), v.all());
    }
    let mut out = vec![base];
    for v in variables.iter().filter(|v| !v.multi) {
        out = out
            .into_iter()
            .flat_map(|assignment| {
                v.values.iter().map(move |value| {
                    let mut a = assignment.clone();
                    a.insert(v.name.clone(), plain_escape(value));
                    a
                })
            })
            .collect();
    }
    out
}

/// The single-value variables of an assignment, for messages and lookups.
fn describe(assignment: &BTreeMap<String, String>, variables: &[Variable]) -> String {
    variables
        .iter()
        .filter(|v| !v.multi && v.values.len() > 1)
        .map(|v| format!("{}={}", v.name, assignment[&v.name]))
        .collect::<Vec<_>>()
        .join(",")
}

/// One instant query's answer.
struct Answer {
    dashboard: &'static str,
    place: String,
    title: String,
    ref_id: String,
    /// The single-value variables' values (`describe`).
    at: String,
    series: Vec<Value>,
}

/// What the dashboard queries returned, and what failed.
#[derive(Default)]
struct Results {
    instant: Vec<Answer>,
    failures: Vec<String>,
    /// Queries run (instant and range).
    run: usize,
    /// Every dashboard's variables: (dashboard, name) → values.
    variables: BTreeMap<(&'static str, String), Vec<String>>,
}

impl Results {
    /// The instant result of the one query titled `title` (panel title or
    /// annotation name) with `ref_id` at `at`.
    fn get(&self, dashboard: &str, title: &str, ref_id: &str, at: &str) -> &[Value] {
        let found: Vec<&Answer> = self
            .instant
            .iter()
            .filter(|a| {
                a.dashboard == dashboard && a.title == title && a.ref_id == ref_id && a.at == at
            })
            .collect();
        match found.as_slice() {
            [one] => &one.series,
            _ => panic!(
                "{} results for {dashboard} `{title}` {ref_id} [{at}]",
                found.len()
            ),
        }
    }

    /// The instant results of every query of the panel at `place`.
    fn of_panel(&self, dashboard: &str, place: &str, at: &str) -> Vec<&Value> {
        self.instant
            .iter()
            .filter(|a| a.dashboard == dashboard && a.place == place && a.at == at)
            .flat_map(|a| &a.series)
            .collect()
    }

    /// `label value → sample value` of an instant result.
    fn by_label(&self, dashboard: &str, title: &str, at: &str, key: &str) -> BTreeMap<String, f64> {
        self.get(dashboard, title, "A", at)
            .iter()
            .map(|s| {
                (
                    label(s, key).unwrap_or_default().to_string(),
                    sample_value(s).unwrap_or(f64::NAN),
                )
            })
            .collect()
    }

    fn single(&self, dashboard: &str, title: &str, at: &str) -> f64 {
        match self.get(dashboard, title, "A", at) {
            [one] => sample_value(one).unwrap_or(f64::NAN),
            other => panic!("{dashboard} `{title}`: expected one sample, got {other:?}"),
        }
    }
}

fn run_query(
    prom: &PromApi,
    query: &Query,
    assignment: &BTreeMap<String, String>,
    at: &str,
    results: &mut Results,
) -> bool {
    let dashboard = query.dashboard;
    let place = &query.place;
    let expr = match interpolate(&query.expr, assignment) {
        Ok(expr) => expr,
        Err(e) => {
            results.failures.push(format!("{dashboard} {place}: {e}"));
            return false;
        }
    };
    let mut answers = vec![("instant", prom.query(&expr))];
    if query.range {
        let end = now();
        let step = query.step.as_deref().unwrap_or(DEFAULT_STEP);
        answers.push((
            "range",
            prom.query_range(&expr, end - RANGE_SECONDS, end, step),
        ));
    }
    let mut has_data = true;
    for (kind, answer) in answers {
        results.run += 1;
        let what = format!("{dashboard} {place} [{at}] {kind} query `{expr}`");
        match answer {
            Err(e) => results.failures.push(format!("{what}: error: {e}")),
            Ok(series) => {
                if series.is_empty() {
                    has_data = false;
                    if !query.event {
                        results.failures.push(format!("{what}: no data"));
                    }
                }
                for s in &series {
                    for l in &query.labels {
                        if label(s, l).is_none() {
                            results.failures.push(format!(
                                "{what}: a series without the label `{l}` its legend or text names: {}",
                                s["metric"]
                            ));
                        }
                    }
                }
                if kind == "instant" {
                    results.instant.push(Answer {
                        dashboard,
                        place: query.place.clone(),
                        title: query.title.clone(),
                        ref_id: query.ref_id.clone(),
                        at: at.to_string(),
                        series,
                    });
                }
            }
        }
    }
    has_data
}

/// Run every query of every dashboard; collect failures.
fn run_dashboards(prom: &PromApi) -> Results {
    let mut results = Results::default();
    for file in DASHBOARDS {
        let json: Value = serde_json::from_str(&read(&format!("dashboards/{file}")))
            .unwrap_or_else(|e| panic!("dashboards/{file}: {e}"));
        let mut queries = Vec::new();
        let mut field_panels = Vec::new();
        collect_queries(file, &json, &mut queries, &mut field_panels);
        assert!(!queries.is_empty(), "{file}: no queries");
        let variables = resolve_variables(file, &json, prom);
        for v in &variables {
            results
                .variables
                .insert((file, v.name.clone()), v.values.clone());
        }
        let assignments = assignments(&variables);
        for query in &queries {
            let mut any_data = false;
            for assignment in &assignments {
                let at = describe(assignment, &variables);
                any_data |= run_query(prom, query, assignment, &at, &mut results);
            }
            if query.event && !any_data {
                results.failures.push(format!(
                    "{file} {}: `{}` has no data for any value of the variables",
                    query.place, query.expr
                ));
            }
        }
        // Fields named by tables and maps are labels of the results.
        for panel in &field_panels {
            for assignment in &assignments {
                let at = describe(assignment, &variables);
                let mut seen = BTreeSet::new();
                let mut bad = Vec::new();
                for s in results.of_panel(file, &panel.place, &at) {
                    if let Some(metric) = s["metric"].as_object() {
                        seen.extend(metric.keys().cloned());
                    }
                    if panel.geomap {
                        check_coordinates(&mut bad, file, &panel.place, s);
                    }
                }
                results.failures.extend(bad);
                let missing: Vec<&String> = panel.fields.difference(&seen).collect();
                if !missing.is_empty() {
                    results.failures.push(format!(
                        "{} {} [{at}]: fields {missing:?} are named by the panel but no query returns them (labels: {seen:?})",
                        panel.dashboard, panel.place
                    ));
                }
            }
        }
    }
    results
}

/// A map marker needs numeric coordinates on the globe.
fn check_coordinates(failures: &mut Vec<String>, file: &str, place: &str, sample: &Value) {
    let coordinate = |name: &str, limit: f64| {
        label(sample, name)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && v.abs() <= limit)
    };
    if coordinate("lat", 90.0).is_none() || coordinate("lon", 180.0).is_none() {
        failures.push(format!(
            "{file} {place}: a marker without valid lat/lon: {}",
            sample["metric"]
        ));
    }
}

const DASHBOARD_TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"

[[target]]
name = "national-id"
host = "198.51.100.30"
category = "identity"

[[target]]
name = "bank"
host = "bank.ls.test"
category = "finance"

# Dual-stack: two paths (shop/ipv4, shop/ipv6), one service in every
# national figure.
[[target]]
name = "shop"
host = "shop.ie.test"
category = "commerce"
family = "both"

[[target]]
name = "silent"
host = "silent.ls.test"
category = "government"

# An alias into a cloud zone in Ireland run by a US-based operator: its
# DNS is flagged, its hosting and DNS depend on a foreign operator.
[[target]]
name = "id"
host = "id.gov.ls.test"
category = "identity"
"#;

/// The lab's networks as operators (who runs them, based where), and the
/// DNS dependencies resolved from the lab's resolver, so that every panel
/// of the "Beyond the route" row has series.
fn dependency_section(dir: &std::path::Path, dns: &str) -> String {
    std::fs::write(
        dir.join("operators.toml"),
        "[[operator]]\nname = \"Lab Telecom Lesotho\"\ncountry = \"LS\"\nkind = \"transit\"\nasns = [64500, 64501]\n\n\
         [[operator]]\nname = \"Lab Transit South Africa\"\ncountry = \"ZA\"\nkind = \"transit\"\nasns = [64510]\n\n\
         [[operator]]\nname = \"Emerald Cloud\"\ncountry = \"US\"\nkind = \"hosting\"\nasns = [64520]\n",
    )
    .unwrap();
    format!(
        "\n[dependency]\ndns = true\ndns_servers = [\"{dns}\"]\noperators = \"operators.toml\"\n"
    )
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let test = "every_dashboard_query_returns_data_from_a_real_prometheus";
    if !support::have_all(test, &["prometheus", "curl"]) {
        return;
    }
    let Some(lab) = Lab::up(test) else { return };
    let Some(dns) = lab.dns_server(test) else {
        return;
    };
    if !support::have_all(test, &["nsd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The bank's address goes through South Africa from the start; the
    // portal's is moved there during the run.
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let config = write_config(
        dir.path(),
        &[
            &store_section(dir.path()),
            &dependency_section(dir.path(), &dns),
            DASHBOARD_TARGETS,
        ],
    );
    // Per-hop metrics for every path, name servers' included, so that the
    // "Per hop" row has series for each.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("listen = \"{DAEMON}\""),
        &format!("listen = \"{DAEMON}\"\nper_hop = true"),
    );
    assert!(text.contains("per_hop = true"));
    std::fs::write(&config, text).unwrap();
    let daemon = LabDaemon::start(&lab, &config, &dir.path().join("state"));
    let prom_config = prometheus_config(dir.path(), false);
    let prometheus = services::prometheus(&lab, &prom_config, dir.path());
    wait_ready(&lab, &format!("http://{PROMETHEUS}/-/ready"), &prometheus);
    let prom = PromApi::new(&lab);
    let logs = || format!("{}\n{}", daemon.log_tail(), prometheus.log_tail());

    // Every target has a verdict, and Prometheus has seen the portal's
    // domestic route a few times.
    services::wait_for(
        "a verdict for all seven paths of the six services and the three name servers in Prometheus",
        WAIT,
        || {
            let targets = prom.scalar(
                "count(count by (target) (transitwatch_path_verdict{target!~\"dns:.*\"}))",
            )?;
            let servers = prom.scalar(
                "count(count by (target) (transitwatch_path_verdict{target=~\"dns:.*\"}))",
            )?;
            let flagged = prom.scalar("sum(transitwatch_service_dns_flagged)")?;
            let domestic = prom.scalar(
                "count_over_time(transitwatch_path_verdict{target=\"gov-portal\",class=\"domestic\"}[1h])",
            )?;
            let now_domestic =
                prom.scalar("transitwatch_path_verdict{target=\"gov-portal\",class=\"domestic\"}")?;
            (targets == 7.0
                && servers == 3.0
                && flagged == 1.0
                && domestic >= 3.0
                && now_domestic == 1.0)
                .then_some(())
        },
        logs,
    );
    daemon.assert_running();

    // The portal's route moves through South Africa: a path change.
    lab.route_prefixes("za", &["198.51.100.10/32"]);
    let seen = services::wait_for(
        "the portal's route change in Prometheus",
        WAIT,
        || {
            let changes = prom.scalar("transitwatch_path_changes_total{target=\"gov-portal\"}")?;
            let samples = prom.scalar(
                "count_over_time(transitwatch_path_changes_total{target=\"gov-portal\"}[1h])",
            )?;
            (changes == 1.0).then_some(samples)
        },
        logs,
    );
    // A few scrapes of the new route, so rates and increases see it.
    services::wait_for(
        "three scrapes after the change",
        WAIT,
        || {
            let samples = prom.scalar(
                "count_over_time(transitwatch_path_changes_total{target=\"gov-portal\"}[1h])",
            )?;
            (samples >= seen + 3.0).then_some(())
        },
        logs,
    );
    daemon.assert_running();

    let results = run_dashboards(&prom);
    assert!(
        results.failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}",
        results.failures.len(),
        results.run,
        results.failures.join("\n")
    );
    eprintln!("{} dashboard queries returned data", results.run);

    // The variables list what the lab measures: every path (the IPv4
    // address target included; the dual-stack shop's two), the foreign
    // countries crossed.
    let services = [
        "bank",
        "dns:ns1.bank.ls.test/ipv4",
        "dns:ns1.cloud.ie.test/ipv4",
        "dns:ns1.gov.ls.test/ipv4",
        "gov-portal",
        "id",
        "national-id",
        "shop/ipv4",
        "shop/ipv6",
        "silent",
    ];
    for file in DASHBOARDS {
        assert_eq!(
            results.variables[&(file, "target".to_string())],
            services,
            "{file}"
        );
    }
    assert_eq!(
        results.variables[&("overview.json", "country".to_string())],
        ["IE", "ZA"]
    );

    // The headline numbers are the lab's: of six services (seven paths:
    // the dual-stack shop counts once; the name servers' paths are no
    // services), the bank and the moved portal transit ZA (AS64510), the
    // shop and id are hosted in IE (AS64520), the silent one does not
    // answer.
    let overview = "overview.json";
    let all = "";
    let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let share = results.single(overview, "National services with foreign transit", all);
    assert!(
        near(share, 2.0 / 6.0),
        "share with foreign transit: {share}"
    );
    assert_eq!(results.single(overview, "Services measured", all), 6.0);
    assert_eq!(results.single(overview, "Services not answering", all), 1.0);
    assert_eq!(
        results.single(overview, "Services breaking their country policy", all),
        4.0
    );
    let by_country = results.by_label(overview, "Dependency by foreign country", all, "country");
    assert_eq!(by_country.len(), 2, "{by_country:?}");
    assert!(
        near(by_country["ZA"], 2.0 / 6.0) && near(by_country["IE"], 2.0 / 6.0),
        "{by_country:?}"
    );
    let by_as = results.by_label(overview, "Dependency by foreign AS", all, "asn");
    assert_eq!(by_as.len(), 2, "{by_as:?}");
    assert!(
        near(by_as["64510"], 2.0 / 6.0) && near(by_as["64520"], 2.0 / 6.0),
        "{by_as:?}"
    );
    // Beyond the route: id's alias zone is all in Ireland, run by one
    // foreign-based operator.
    assert_eq!(
        results.single(
            overview,
            "Services whose DNS is all in one foreign country or operator",
            all
        ),
        1.0
    );
    // Per-path figures stay per path.
    let verdicts = results.by_label(overview, "Verdict per path", all, "target");
    assert_eq!(verdicts.len(), 7, "{verdicts:?}");

    let detail = "path-detail.json";
    for (target, class) in [
        ("gov-portal", "foreign_transit"),
        ("national-id", "domestic"),
        ("bank", "foreign_transit"),
        ("shop/ipv4", "foreign_destination"),
        ("shop/ipv6", "foreign_destination"),
        ("silent", "indeterminate"),
        ("id", "foreign_destination"),
        ("dns:ns1.bank.ls.test/ipv4", "foreign_transit"),
    ] {
        let at = format!("target={target}");
        let verdict = results.by_label(detail, "Verdict", &at, "class");
        assert_eq!(
            verdict.keys().collect::<Vec<_>>(),
            [class],
            "path detail verdict of {target}"
        );
    }
    // The mtr view of the domestic national-id: its four hops in TTL
    // order, each with its address and no loss (the lab drops nothing).
    let mtr = results.get(detail, "Hops (mtr view)", "A", "target=national-id");
    let mut rows: Vec<(u64, String, f64)> = mtr
        .iter()
        .map(|s| {
            (
                label(s, "ttl").unwrap().parse().unwrap(),
                label(s, "addr").unwrap_or_default().to_string(),
                sample_value(s).unwrap(),
            )
        })
        .collect();
    rows.sort_by_key(|(ttl, _, _)| *ttl);
    assert_eq!(
        rows,
        [
            (1, lab.addr("R1_V4").to_string(), 0.0),
            (2, lab.addr("LS2_V4").to_string(), 0.0),
            (3, lab.addr("GW_VIA_LS_V4").to_string(), 0.0),
            (4, "198.51.100.30".to_string(), 0.0),
        ],
        "{mtr:?}"
    );

    // The route change is an annotation for the portal only.
    let changed = |target: &str| {
        !results
            .get(detail, "Route changes", "Anno", &format!("target={target}"))
            .is_empty()
    };
    assert!(changed("gov-portal"));
    assert!(!changed("national-id") && !changed("bank"));

    // The map places hops in Maseru, Johannesburg and Dublin.
    let places: BTreeSet<(String, String, String)> = results
        .get("map.json", "Where the path runs", "A", all)
        .iter()
        .map(|s| {
            let l = |k| label(s, k).unwrap_or_default().to_string();
            (l("country"), l("lat"), l("lon"))
        })
        .collect();
    for place in [
        ("LS", "-29.31", "27.48"),
        ("ZA", "-26.2", "28.04"),
        ("IE", "53.35", "-6.26"),
    ] {
        let place = (
            place.0.to_string(),
            place.1.to_string(),
            place.2.to_string(),
        );
        assert!(
            places.contains(&place),
            "{place:?} not on the map: {places:?}"
        );
    }
    daemon.assert_running();
}

// ------------------------------------------------------------------ alerts

const ALERT_TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"

# Crossing South Africa is allowed for this one: foreign transit without a
# violation, which must not alert.
[[target]]
name = "bank"
host = "bank.ls.test"
category = "finance"
allowed_countries = ["LS", "ZA"]
"#;

/// Every message the webhook received.
fn received(path: &Path) -> Vec<Value> {
    support::webhook::posts(path)
        .into_iter()
        .map(|post| {
            // The receiver records the request; the message is its body,
            // with the request path beside it.
            let mut message = post["body"].clone();
            assert!(
                message.is_object(),
                "webhook body is not a JSON object: {post}"
            );
            message["_path"] = post["path"].clone();
            message
        })
        .collect()
}

/// The alerts of every received message, with the message's receiver.
fn received_alerts(path: &Path) -> Vec<(Value, Value)> {
    received(path)
        .into_iter()
        .flat_map(|m| {
            array(&m, "alerts")
                .iter()
                .map(|a| (m.clone(), a.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn is_alert(alert: &Value, name: &str, target: &str, status: &str) -> bool {
    alert["labels"]["alertname"] == name
        && alert["labels"]["target"] == target
        && alert["status"] == status
}

#[test]
fn alertmanager_delivers_foreign_transit_to_a_webhook() {
    let test = "alertmanager_delivers_foreign_transit_to_a_webhook";
    if !support::have_all(
        test,
        &[
            "prometheus",
            "prometheus-alertmanager",
            "amtool",
            "python3",
            "curl",
        ],
    ) {
        return;
    }
    // The shipped Alertmanager configuration is valid as it stands.
    let shipped = root().join("config/prometheus/alertmanager.yml");
    let check = std::process::Command::new("amtool")
        .arg("check-config")
        .arg(&shipped)
        .output()
        .expect("run amtool");
    assert!(check.status.success(), "{}", support::text(&check));

    let Some(lab) = Lab::up(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    lab.route_prefixes("za", &["198.51.100.20/32"]);

    let receiver = Receiver::in_lab(&lab, dir.path(), "webhook", services::WEBHOOK, &[]);
    let (webhook, hook_file) = (receiver.service(), receiver.out());
    wait_ready(
        &lab,
        &format!("http://{}/ready", services::WEBHOOK),
        webhook,
    );

    // The shipped routing and receiver, grouped and flushed within a second
    // instead of 30 s / 5 min.
    let file = "config/prometheus/alertmanager.yml";
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        rewrite(
            file,
            &read(file),
            &[
                ("group_wait: 30s", "group_wait: 1s"),
                ("group_interval: 5m", "group_interval: 1s"),
            ],
        ),
    )
    .unwrap();
    assert_mentions(
        file,
        &read(file),
        &[&format!(
            "url: \"http://{}/alertmanager\"",
            services::WEBHOOK
        )],
    );
    let alertmanager = services::alertmanager(&lab, &am_config, dir.path());
    wait_ready(
        &lab,
        &format!("http://{ALERTMANAGER}/-/ready"),
        &alertmanager,
    );

    // The daemon first, so that Prometheus' first scrape finds it.
    // The daemon's address as the alerts' readers reach it: the rules link
    // to its live report.
    let external = format!("\n[alert]\nexternal_url = \"http://{DAEMON}\"\n");
    let config = write_config(
        dir.path(),
        &[&store_section(dir.path()), &external, ALERT_TARGETS],
    );
    let daemon = LabDaemon::start(&lab, &config, &dir.path().join("state"));
    let prom_config = prometheus_config(dir.path(), true);
    let prometheus = services::prometheus(&lab, &prom_config, dir.path());
    wait_ready(&lab, &format!("http://{PROMETHEUS}/-/ready"), &prometheus);
    let prom = PromApi::new(&lab);
    let logs = || {
        format!(
            "{}\n{}\n{}\n{}\n--- received\n{:#?}",
            daemon.log_tail(),
            prometheus.log_tail(),
            alertmanager.log_tail(),
            webhook.log_tail(),
            received(hook_file)
        )
    };

    // Prometheus loaded every shipped rule.
    let rules = prom
        .rules()
        .unwrap_or_else(|e| panic!("rules: {e}\n{}", logs()));
    let loaded: BTreeSet<&str> = array(&rules, "groups")
        .iter()
        .flat_map(|g| array(g, "rules"))
        .filter_map(|r| r["name"].as_str())
        .collect();
    for alert in [
        "ForeignTransitDetected",
        "PathPolicyViolation",
        "NewForeignDependency",
        "PathFlapping",
        "TargetUnreachable",
        "ProberStalled",
        "TransitwatchDown",
        "GeoIPDatabaseStale",
    ] {
        assert!(loaded.contains(alert), "{alert} not loaded: {rules}");
    }

    // The domestic portal and the allowed detour, seen for well over the
    // shortened `for:`: neither alert is ever pending or firing.
    services::wait_for(
        "ten scrapes of the domestic portal and the allowed detour",
        WAIT,
        || {
            let detour = prom.scalar(
                "count_over_time(transitwatch_path_verdict{target=\"bank\",class=\"foreign_transit\"}[1h])",
            )?;
            let domestic = prom.scalar(
                "count_over_time(transitwatch_path_verdict{target=\"gov-portal\",class=\"domestic\"}[1h])",
            )?;
            let detour_now = prom
                .scalar("transitwatch_path_verdict{target=\"bank\",class=\"foreign_transit\"}")?;
            let domestic_now =
                prom.scalar("transitwatch_path_verdict{target=\"gov-portal\",class=\"domestic\"}")?;
            (detour >= 10.0 && domestic >= 10.0 && detour_now == 1.0 && domestic_now == 1.0)
                .then_some(())
        },
        logs,
    );
    let quiet = prom
        .query(
            "count_over_time(ALERTS{alertname=~\"ForeignTransitDetected|PathPolicyViolation\"}[1h])",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(quiet.is_empty(), "alerts without a violation: {quiet:?}");
    assert!(
        !received_alerts(hook_file)
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "ForeignTransitDetected"),
        "{}",
        logs()
    );
    daemon.assert_running();

    // The portal's route moves through South Africa: the alert is delivered.
    lab.route_prefixes("za", &["198.51.100.10/32"]);
    let (message, alert) = services::wait_for(
        "a firing ForeignTransitDetected for gov-portal at the webhook",
        WAIT,
        || {
            received_alerts(hook_file)
                .into_iter()
                .find(|(_, a)| is_alert(a, "ForeignTransitDetected", "gov-portal", "firing"))
        },
        logs,
    );
    assert_eq!(message["receiver"], "transitwatch-webhook", "{message:#}");
    assert_eq!(message["_path"], "/alertmanager", "{message:#}");
    assert_eq!(message["version"], "4", "{message:#}");
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "critical", "{alert:#}");
    assert_eq!(labels["class"], "foreign_transit", "{alert:#}");
    assert_eq!(labels["job"], "transitwatch", "{alert:#}");
    assert_eq!(labels["instance"], DAEMON, "{alert:#}");
    let annotations = &alert["annotations"];
    assert_eq!(
        annotations["summary"], "gov-portal is reached through South Africa",
        "{alert:#}"
    );
    assert_eq!(
        annotations["description"],
        "The national service gov-portal answers from inside the country, but traffic from \
         here to it crosses South Africa (ZA) on the way. The path's countries, in order: \
         LS ZA LS.",
        "{alert:#}"
    );
    assert_eq!(
        annotations["runbook"],
        format!(
            "Since when, how much of the time and on what evidence: \
             http://{DAEMON}/report#service-gov-portal. Open the \"transitwatch / Path \
             detail\" dashboard for gov-portal and GET /api/v1/targets/gov-portal/latest on \
             the daemon for the hop list and explanation; ask the operators of the foreign \
             hops' networks (ASN column) why the domestic route leaves the country."
        ),
        "{alert:#}"
    );

    // Back on the domestic route: the resolution is delivered too.
    lab.route_prefixes("ls", &["198.51.100.10/32"]);
    services::wait_for(
        "a resolved ForeignTransitDetected for gov-portal at the webhook",
        WAIT,
        || {
            received_alerts(hook_file)
                .into_iter()
                .find(|(_, a)| is_alert(a, "ForeignTransitDetected", "gov-portal", "resolved"))
        },
        logs,
    );

    // The allowed detour never alerted, and nothing else violated policy.
    let alerts = received_alerts(hook_file);
    for (_, alert) in &alerts {
        let name = alert["labels"]["alertname"].as_str().unwrap_or_default();
        assert!(
            alert["labels"]["target"] != "bank"
                || !matches!(name, "ForeignTransitDetected" | "PathPolicyViolation"),
            "the allowed detour alerted: {alert:#}"
        );
        assert_ne!(name, "PathPolicyViolation", "{alert:#}");
    }
    daemon.assert_running();
    prometheus.assert_running();
    alertmanager.assert_running();
    webhook.assert_running();
}

/// The substitution rules themselves (no lab needed).
#[test]
fn variables_are_substituted_like_grafana() {
    let values: BTreeMap<String, String> = BUILTINS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([
            ("target".to_string(), "gov-portal".to_string()),
            ("country".to_string(), "(IE|ZA)".to_string()),
        ])
        .collect();
    let cases = [
        (
            r#"x{target="$target"}[$__rate_interval]"#,
            r#"x{target="gov-portal"}[30s]"#,
        ),
        (
            r#"x{target="${target}",country=~"${country:regex}"}"#,
            r#"x{target="gov-portal",country=~"(IE|ZA)"}"#,
        ),
        (r#"x{t="[[target]]"}"#, r#"x{t="gov-portal"}"#),
        ("$__interval_ms $__interval $__range_s", "5000 5s 600"),
        (r#"x{a=~"b$"} + y[5m:1m]"#, r#"x{a=~"b$"} + y[5m:1m]"#),
    ];
    for (text, expected) in cases {
        assert_eq!(
            interpolate(text, &values).as_deref(),
            Ok(expected),
            "{text}"
        );
    }
    assert!(interpolate("x{a=\"$nosuch\"}", &values).is_err());

    let all = Variable {
        name: "target".to_string(),
        values: vec!["a.b".to_string(), "c".to_string()],
        multi: true,
        all_value: None,
    };
    assert_eq!(all.all(), r"(a\\.b|c)");
}
