//! The regulator's report: which national services depend on which
//! foreign countries, since when, and for how much of a period, computed
//! from the trace history.
//!
//! Every figure is computed here, once, into a [`Report`]; the renderers
//! ([`markdown`], [`html`], and JSON through serde) only format it, so the
//! three formats always say the same. The JSON form is described by
//! `schemas/report.schema.json`.
//!
//! **Services, not paths.** A service is a target name; a target traced in
//! both families has two paths (`name/ipv4`, `name/ipv6`). A service
//! depends on a country at a moment when any of its paths measured then
//! crosses it; its class at that moment is the most severe class of its
//! paths (`foreign_destination` over `foreign_transit` over
//! `indeterminate` over `domestic`). National figures count services;
//! per-path figures are given inside each service.
//!
//! **Time.** A trace's verdict holds from its start until the next trace
//! of the same path, for at most the path's *hold*: three times the median
//! spacing of that path's traces (or the `gap` the caller gives). Time no
//! path of a service covers is *unmeasured*, not clean: shares are of the
//! whole period, so a service's class shares and its unmeasured share add
//! up to one. Time no path at all covers is a gap in measurement (a stopped
//! daemon), listed in the method section.

pub mod html;
pub mod map;
pub mod markdown;
pub mod shapes;

use crate::dependency::hosting::{
    national, path_hosting, service_hosting, NationalHosting, ServiceHosting,
};
use crate::dependency::nameservers::ServiceDns;
use crate::dependency::overview::{overview, Accepted, AtRisk, NationalDns, Overview};
use crate::model::{CountryCode, PathKey, TraceRecord, VerdictClass};
use crate::operators::OperatorTable;
use crate::store::{ProvenanceCount, Query, Store, StoreError, TimelineRow};
use crate::units::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The report format's schema name and version.
pub const REPORT_SCHEMA: &str = "transitwatch.report/1";

/// Most route changes listed per service (the count is always complete).
const CHANGES_LISTED: usize = 500;

/// Most timeline spans listed per service, the newest kept (the count is
/// always complete).
const SPANS_LISTED: usize = 1000;

/// Most distinct routes per path whose record is read for network names.
const ROUTES_READ: usize = 32;

/// What a report covers and what it knows besides the store.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Start of the period (Unix seconds); default the first trace.
    pub since: Option<i64>,
    /// End of the period; default `now`.
    pub until: Option<i64>,
    /// The time the report is made.
    pub now: i64,
    /// How long a verdict holds at most (seconds); default three times the
    /// median spacing of each path's traces.
    pub gap: Option<i64>,
    /// The configured services: name → category and allowed countries.
    pub services: BTreeMap<String, ServiceRule>,
    /// The home country, when known from the configuration.
    pub home: Option<String>,
    /// `[policy] min_confidence`, when known.
    pub min_confidence: Option<String>,
    /// SHA-256 of the configuration given, when one was.
    pub config_sha256: Option<String>,
    /// The daemon's address as people reach it: services' sections link
    /// to `{url}/report#service-NAME`.
    pub external_url: Option<String>,
    /// The operator table naming who hosts each service (the
    /// configuration's); `None`: the shipped one.
    pub operators: Option<OperatorTable>,
    /// The deployment's operator file over the shipped table, when the
    /// configuration names one: its path and SHA-256.
    pub operator_file: Option<(String, String)>,
}

impl Options {
    /// The report's options from the configuration (categories, rules).
    #[must_use]
    pub fn of_config(config: &crate::config::Config) -> Self {
        Self {
            services: config
                .targets
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        ServiceRule {
                            category: if t.category.is_empty() {
                                "uncategorised".to_string()
                            } else {
                                t.category.clone()
                            },
                            allowed_countries: t
                                .allowed_countries
                                .iter()
                                .map(|c| c.as_str().to_string())
                                .collect(),
                            accepted_operators: t.accepted_operators.clone(),
                            accepted_countries: t
                                .accepted_countries
                                .iter()
                                .map(ToString::to_string)
                                .collect(),
                        },
                    )
                })
                .collect(),
            home: Some(config.policy.home.as_str().to_string()),
            min_confidence: Some(config.policy.min_confidence.as_str().to_string()),
            config_sha256: Some(config.sha256.clone()),
            external_url: config.alert.external_url.clone(),
            operators: Some(config.dependency.table.clone()),
            operator_file: config
                .dependency
                .operators
                .as_ref()
                .zip(config.dependency.operators_sha256.as_ref())
                .map(|(path, sha)| (path.display().to_string(), sha.clone())),
            ..Self::default()
        }
    }
}

/// The report's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFormat {
    /// One standalone HTML page.
    #[default]
    Html,
    /// Markdown.
    Md,
    /// JSON (`schemas/report.schema.json`).
    Json,
}

crate::text_enum::text_enum! {
    /// The name used on the command line.
    ReportFormat {
        Html => "html",
        Md => "md" | "markdown",
        Json => "json",
    }
    parse_error: InvalidReportFormat
}

/// A `--format` that is not a report format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a report format (expected html, md or json)")]
pub struct InvalidReportFormat(pub String);

/// Render a built report in `format`.
#[must_use]
pub fn render(report: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Html => html::render(report),
        ReportFormat::Md => markdown::render(report),
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
            text.push('\n');
            text
        }
    }
}

/// A configured service's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRule {
    /// Its category (`government`, `finance`, ...).
    pub category: String,
    /// Countries its paths may cross.
    pub allowed_countries: Vec<String>,
    /// Operators the country accepts hosting it (`accepted_operators`).
    pub accepted_operators: Vec<String>,
    /// Foreign countries accepted for its DNS
    /// (`accepted_countries`).
    pub accepted_countries: Vec<String>,
}

/// The whole report. Fractions are of the period (time) or of traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// When it was made (RFC 3339).
    pub generated_at: Timestamp,
    /// The period covered.
    pub period: Period,
    /// The national figures.
    pub summary: Summary,
    /// Per service, by name.
    pub services: Vec<ServiceReport>,
    /// How the figures were made.
    pub method: Method,
}

/// A span of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// Its length in seconds.
    pub seconds: i64,
}

/// National figures: services, not paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Services with at least one trace in the period.
    pub services: u32,
    /// Of them, those that depended on some foreign country at some time.
    pub services_foreign: u32,
    /// The findings in plain words, most important first.
    pub sentences: Vec<String>,
    /// Foreign countries ranked by services, then by time.
    pub countries: Vec<CountryFigure>,
    /// Per category.
    pub categories: Vec<CategoryFigure>,
    /// Foreign networks on the paths.
    pub networks: Vec<NetworkFigure>,
    /// The routes at the end of the period: each country sequence the
    /// services' paths last took, with the services on it (what the map
    /// draws).
    pub routes: Vec<RouteFigure>,
    /// Who hosts the services: those hosted by foreign-based, domestic and
    /// unknown operators (from each path's last trace).
    pub hosting: NationalHosting,
    /// Beyond the route, from the latest path of every service and name
    /// server at the period's end: who answers for the services' names,
    /// and what fails if each country or operator seen does (the figures
    /// of `transitwatch whatif` and of the daemon's metrics).
    pub dependencies: DependencyFigures,
}

/// The dependency figures of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DependencyFigures {
    /// National DNS figures.
    pub dns: NationalDns,
    /// What fails if each country or operator seen does.
    pub at_risk: Vec<AtRisk>,
}

impl DependencyFigures {
    /// The failures that take some service's hosting, route or DNS with
    /// them (the rows the HTML and Markdown tables show).
    pub fn losses(&self) -> impl Iterator<Item = &AtRisk> {
        self.at_risk.iter().filter(|r| {
            !(r.loses_hosting.is_empty() && r.loses_route.is_empty() && r.loses_dns.is_empty())
        })
    }
}

/// A route some services' paths took last, as countries in path order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteFigure {
    /// Countries in path order, without immediate repeats (`LS ZA LS`);
    /// the vantage's country first.
    pub countries: Vec<String>,
    /// The class of those paths' last traces.
    pub class: VerdictClass,
    /// The services, by name.
    pub service_names: Vec<String>,
}

/// How much the country's services depend on one foreign country.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryFigure {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Its English name.
    pub name: String,
    /// Services that crossed it at least once.
    pub services_any: u32,
    /// Of them, those that crossed it all of their measured time.
    pub services_all: u32,
    /// `services_any` over all services.
    pub share_of_services: f64,
    /// Mean over all services of the share of the period they crossed it.
    pub time_share: f64,
    /// The services, by name.
    pub service_names: Vec<String>,
}

/// One category's services and the foreign countries they depend on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryFigure {
    /// The category (`uncategorised` when none is known).
    pub category: String,
    /// Its services.
    pub services: u32,
    /// Foreign country → services of the category that crossed it.
    pub countries: BTreeMap<String, u32>,
}

/// A foreign network some services' paths cross.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkFigure {
    /// The AS number.
    pub asn: u32,
    /// Its name, as the geolocation sources give it.
    pub name: Option<String>,
    /// Countries its hops were located in.
    pub countries: Vec<String>,
    /// Services crossing it.
    pub service_names: Vec<String>,
}

/// Shares of a period or of traces.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Shares {
    /// Class → share (every class present, zeros included).
    pub classes: BTreeMap<String, f64>,
    /// Foreign country → share.
    pub countries: BTreeMap<String, f64>,
    /// Share not measured (time shares only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<f64>,
}

/// A service's state at the end of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentState {
    /// The service's class (most severe of its paths).
    pub class: VerdictClass,
    /// Foreign countries of its paths, in path order.
    pub foreign_countries: Vec<String>,
    /// Since when, without interruption by another state (a gap in
    /// measurement does not interrupt it).
    pub since: Timestamp,
    /// Start of its last trace.
    pub last_trace: Timestamp,
}

/// One path of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathReport {
    /// The path key.
    pub path_key: String,
    /// The vantage point.
    pub vantage: String,
    /// Traces in the period.
    pub traces: u64,
    /// Shares of the period.
    pub time_share: Shares,
    /// Shares of its traces.
    pub trace_share: Shares,
}

/// A route change: the path's identity or class differs from its previous
/// trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// When the new route was first seen.
    pub at: Timestamp,
    /// On which path.
    pub path_key: String,
    /// The class before.
    pub from_class: VerdictClass,
    /// The class after.
    pub class: VerdictClass,
    /// Foreign countries after.
    pub foreign_countries: Vec<String>,
    /// The path identity after.
    pub path_id: String,
}

/// What the current state rests on: a path's last trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The path key.
    pub path_key: String,
    /// The trace id in the store (`export` finds it).
    pub trace_id: i64,
    /// When it started.
    pub started_at: Timestamp,
    /// The verdict's explanation.
    pub explanation: String,
    /// How sure the verdict is.
    pub confidence: Option<crate::model::Confidence>,
    /// The verdict's class.
    pub class: VerdictClass,
    /// The verdict's countries, in path order.
    pub countries: Vec<String>,
    /// The hops.
    pub hops: Vec<EvidenceHop>,
}

/// One hop of the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceHop {
    /// TTL.
    pub ttl: u8,
    /// Responding address, `None` when silent.
    pub addr: Option<String>,
    /// Its name.
    pub hostname: Option<String>,
    /// Located country.
    pub country: Option<String>,
    /// Located city.
    pub city: Option<String>,
    /// Origin AS.
    pub asn: Option<u32>,
    /// AS name.
    pub as_org: Option<String>,
    /// How sure the location is.
    pub confidence: Option<crate::model::Confidence>,
}

/// One service's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    /// The target name.
    pub name: String,
    /// Its category.
    pub category: String,
    /// A link to its section of the live report, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Traces of all its paths in the period.
    pub traces: u64,
    /// Its state at the end of the period.
    pub current: Option<CurrentState>,
    /// Shares of the period (time-weighted, services' rule).
    pub time_share: Shares,
    /// Shares of its traces.
    pub trace_share: Shares,
    /// Per path.
    pub paths: Vec<PathReport>,
    /// Route changes in the period (at most [`CHANGES_LISTED`] listed, newest kept).
    pub changes: Vec<Change>,
    /// Route changes in all.
    pub change_count: u64,
    /// The measured spans of the period, each in one class and set of
    /// foreign countries, in order (at most [`SPANS_LISTED`], newest
    /// kept); time between them was not measured.
    pub timeline: Vec<Span>,
    /// Spans in all.
    pub span_count: u64,
    /// The last trace of each path.
    pub evidence: Vec<Evidence>,
    /// Who hosts it, from each path's last trace: where its destination
    /// is, the organisation operating that network and where it is based.
    pub hosting: Option<ServiceHosting>,
    /// Who answers for its name, from its latest record that keeps its DNS
    /// dependencies and the latest paths to its name servers.
    pub dns: Option<ServiceDns>,
}

/// A measured span of a service's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// The service's class then.
    pub class: VerdictClass,
    /// Foreign countries of its paths then.
    pub foreign_countries: Vec<String>,
}

/// A span without any measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Length in seconds.
    pub seconds: i64,
}

/// A configuration generation's provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvenanceEntry {
    /// SHA-256 of the configuration file.
    pub config_sha256: Option<String>,
    /// The GeoIP databases with their build dates.
    pub geoip: Vec<DatabaseEntry>,
    /// The other location files (overrides, geofeeds, PeeringDB dump,
    /// host-name rules) with the SHA-256 of the bytes that were loaded;
    /// empty for traces stored before files were recorded.
    pub location_files: Vec<LocationFileEntry>,
    /// The transitwatch version.
    pub version: String,
    /// Traces made with it.
    pub traces: u64,
    /// First trace.
    pub first: Timestamp,
    /// Last trace.
    pub last: Timestamp,
}

impl ProvenanceEntry {
    /// The MMDB databases in words, as every format writes them:
    /// `GeoLite2-City (city, built 2026-11-20T00:00:00Z); ...`, or `none`.
    #[must_use]
    pub fn databases_text(&self) -> String {
        let dbs: Vec<String> = self
            .geoip
            .iter()
            .map(|d| {
                let built = d.built.map_or_else(|| "unknown".into(), |b| b.to_string());
                let made = d
                    .vendor
                    .as_ref()
                    .map_or_else(String::new, |v| format!("{v}, "));
                let sha = d
                    .sha256
                    .as_ref()
                    .map_or_else(String::new, |s| format!(", sha256 {s}"));
                format!("{} ({made}{}, built {built}{sha})", d.database_type, d.kind)
            })
            .collect();
        if dbs.is_empty() {
            "none".to_string()
        } else {
            dbs.join("; ")
        }
    }
}

/// A GeoIP database in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseEntry {
    /// Its record layout.
    pub kind: String,
    /// Its `database_type`.
    #[serde(rename = "type")]
    pub database_type: String,
    /// Its build date.
    pub built: Option<Timestamp>,
    /// Who made it, when recorded.
    pub vendor: Option<String>,
    /// SHA-256 of the file, when recorded.
    pub sha256: Option<String>,
}

/// A location file other than an MMDB in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationFileEntry {
    /// `overrides`, `geofeed`, `peeringdb` or `hostname_rules`.
    pub kind: String,
    /// Its path.
    pub path: String,
    /// SHA-256 (hex) of the bytes that were loaded.
    pub sha256: String,
}

/// How the figures were made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    /// Vantage points of the traces.
    pub vantages: Vec<String>,
    /// Traces in the period.
    pub traces: u64,
    /// Spans no path was measured (a stopped daemon, a lost vantage).
    pub gaps: Vec<Gap>,
    /// Their total, in seconds.
    pub unmeasured_seconds: i64,
    /// How long a verdict is taken to hold.
    pub hold_rule: String,
    /// The configuration generations: configuration, databases, other
    /// location files and versions.
    pub provenance: Vec<ProvenanceEntry>,
    /// The home country, when the configuration was given.
    pub home: Option<String>,
    /// `[policy] min_confidence`, when the configuration was given.
    pub min_confidence: Option<String>,
    /// The configuration given to the report, when one was.
    pub config_sha256: Option<String>,
    /// The services' rules, when the configuration was given.
    pub rules: BTreeMap<String, ServiceRule>,
    /// The operator table behind the hosting and DNS verdicts.
    pub operator_table: OperatorTableSource,
    /// What each class means.
    pub classes: BTreeMap<String, String>,
}

/// The operator table the hosting and DNS verdicts were made with: the
/// shipped one (its SHA-256 and size), and the deployment's file over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorTableSource {
    /// SHA-256 of the shipped table (`data/operators/operators.toml`).
    pub shipped_sha256: String,
    /// ASes the table used lists (shipped and file together).
    pub asns: usize,
    /// The deployment's file (`[dependency] operators`), when one was given.
    pub file: Option<String>,
    /// Its SHA-256.
    pub file_sha256: Option<String>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The period is empty.
    #[error("the period is empty: its start is not before its end")]
    EmptyPeriod,
}

/// A verdict state of one trace, interned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    class: VerdictClass,
    path_id: String,
    foreign: Vec<String>,
}

/// One trace on a path's timeline.
#[derive(Debug, Clone, Copy)]
struct Point {
    id: i64,
    at: i64,
    state: u32,
}

/// A path's traces, in order.
#[derive(Debug, Default)]
struct Series {
    target: String,
    points: Vec<Point>,
}

/// A span of one state.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: i64,
    end: i64,
    state: u32,
}

/// A foreign network as seen: its name, countries and services.
type NetworkSeen = (Option<String>, BTreeSet<String>, BTreeSet<String>);

/// Severity of a class, for a service's class from its paths'.
const fn severity(class: VerdictClass) -> u8 {
    match class {
        VerdictClass::Domestic => 0,
        VerdictClass::Indeterminate => 1,
        VerdictClass::ForeignTransit => 2,
        VerdictClass::ForeignDestination => 3,
    }
}

/// A country's English name (the code itself when unknown).
#[must_use]
pub fn country_name(code: &str) -> String {
    code.parse::<crate::model::CountryCode>()
        .ok()
        .and_then(|c| c.name())
        .unwrap_or(code)
        .to_string()
}

/// A class as the report's text writes it (`foreign transit`).
#[must_use]
pub const fn class_words(class: VerdictClass) -> &'static str {
    match class {
        VerdictClass::Domestic => "domestic",
        VerdictClass::ForeignTransit => "foreign transit",
        VerdictClass::ForeignDestination => "foreign destination",
        VerdictClass::Indeterminate => "indeterminate",
    }
}

/// A class's snake-case name (`foreign_transit`) in words; any other text
/// as it is.
#[must_use]
pub fn class_text(name: &str) -> &str {
    match VerdictClass::ALL.into_iter().find(|c| c.as_str() == name) {
        Some(class) => class_words(class),
        None => name,
    }
}

/// The class shares of `time` and `traces` in the report's order
/// (domestic, foreign transit, foreign destination, indeterminate), each
/// with the class in words: one row of a shares table.
pub fn class_rows<'a>(
    time: &'a Shares,
    traces: &'a Shares,
) -> impl Iterator<Item = (&'static str, f64, f64)> + 'a {
    VerdictClass::ALL.into_iter().map(|class| {
        let get = |s: &Shares| s.classes.get(class.as_str()).copied().unwrap_or(0.0);
        (class_words(class), get(time), get(traces))
    })
}

/// `n` and a noun, singular or plural (`1 route change`, `2 route changes`).
#[must_use]
pub fn count_of(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A fraction as a whole percentage, the one way every format writes it.
#[must_use]
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p > 0.0 && p < 0.5 {
        "<1%".to_string()
    } else if p < 100.0 && p > 99.5 {
        ">99%".to_string()
    } else {
        format!("{p:.0}%")
    }
}

/// What the classes mean, in the report's words.
fn class_meanings() -> BTreeMap<String, String> {
    [
        (
            VerdictClass::Domestic,
            "every located hop and the destination are in the home country (or an allowed one)",
        ),
        (
            VerdictClass::ForeignTransit,
            "the service answers from home, but the path to it crosses another country",
        ),
        (
            VerdictClass::ForeignDestination,
            "the service itself answers from abroad",
        ),
        (
            VerdictClass::Indeterminate,
            "too little located evidence to say where the path goes",
        ),
    ]
    .into_iter()
    .map(|(c, m)| (c.as_str().to_string(), m.to_string()))
    .collect()
}

fn ts(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix)
        .unwrap_or_else(|_| Timestamp::from_unix(0).unwrap_or_else(|_| Timestamp::now()))
}

fn median_spacing(points: &[Point]) -> Option<i64> {
    let mut d: Vec<i64> = points
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .filter(|d| *d > 0)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    Some(d[d.len() / 2])
}

#[allow(clippy::cast_precision_loss)] // seconds and counts far below 2^52
fn frac(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Time and trace tallies, turned into [`Shares`].
#[derive(Debug, Default)]
struct Tally {
    /// Per class, indexed by [`severity`].
    classes: [i64; 4],
    countries: BTreeMap<String, i64>,
    measured: i64,
}

impl Tally {
    fn add(&mut self, class: VerdictClass, foreign: &BTreeSet<&str>, amount: i64) {
        self.classes[usize::from(severity(class))] += amount;
        for c in foreign {
            *self.countries.entry((*c).to_string()).or_default() += amount;
        }
        self.measured += amount;
    }

    fn shares(&self, whole: i64, with_unmeasured: bool) -> Shares {
        Shares {
            classes: VerdictClass::ALL
                .iter()
                .map(|c| {
                    (
                        c.as_str().to_string(),
                        frac(self.classes[usize::from(severity(*c))], whole),
                    )
                })
                .collect(),
            countries: self
                .countries
                .iter()
                .map(|(c, n)| (c.clone(), frac(*n, whole)))
                .collect(),
            unmeasured: with_unmeasured.then(|| frac(whole - self.measured, whole)),
        }
    }
}

/// The dependency overview from the latest path of every service and name
/// server starting before `end`, under the configured rules.
fn dependency_overview(
    store: &Store,
    opts: &Options,
    end: i64,
    operators: &OperatorTable,
    home: Option<CountryCode>,
) -> Result<Overview, ReportError> {
    let mut latest: Vec<(PathKey, TraceRecord, Option<i64>)> = Vec::new();
    store.latest_per_path(Some(end - 1), |stored| {
        // A row that cannot be read is left out, like a missing trace.
        if let Ok(stored) = stored {
            let key = stored
                .path_key
                .parse()
                .unwrap_or_else(|_| PathKey::whole(stored.record.trace.target.name.clone()));
            let configured = opts.services.is_empty()
                || key.is_dependency()
                || opts.services.contains_key(key.target());
            if configured {
                latest.push((key, stored.record, Some(stored.id)));
            }
        }
    })?;
    let accepted: BTreeMap<String, Accepted> = opts
        .services
        .iter()
        .map(|(name, rule)| {
            let accepted = Accepted {
                countries: rule
                    .accepted_countries
                    .iter()
                    .filter_map(|c| c.parse().ok())
                    .collect(),
                operators: rule.accepted_operators.clone(),
            };
            (name.clone(), accepted)
        })
        .collect();
    let at = Timestamp::from_unix(end - 1).unwrap_or_else(|_| Timestamp::now());
    Ok(overview(
        at,
        latest.iter().map(|(k, r, id)| (k, r, *id)),
        operators,
        home,
        &accepted,
    ))
}

/// Build the report of the traces in the store for `opts`' period.
///
/// # Errors
/// The store fails, or the period is empty.
#[allow(clippy::too_many_lines)] // one pass per section, in order
pub fn build(store: &Store, opts: &Options) -> Result<Report, ReportError> {
    let query = Query {
        since: opts.since,
        until: opts.until,
        target: None,
        limit: None,
    };
    let mut states: Vec<State> = Vec::new();
    let mut interned: HashMap<State, u32> = HashMap::new();
    let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
    let mut vantages = BTreeSet::new();
    let mut traces = 0u64;
    store.timeline(&query, |row: TimelineRow| {
        traces += 1;
        let state = State {
            class: row.class,
            path_id: row.path_id,
            foreign: row.foreign,
        };
        let n = *interned.entry(state.clone()).or_insert_with(|| {
            states.push(state);
            u32::try_from(states.len() - 1).unwrap_or(u32::MAX)
        });
        if !vantages.contains(&row.vantage) {
            vantages.insert(row.vantage.clone());
        }
        let s = series.entry((row.path_key, row.vantage)).or_default();
        if s.target.is_empty() {
            s.target = row.target;
        }
        s.points.push(Point {
            id: row.id,
            at: row.started_at,
            state: n,
        });
    })?;
    let first = series
        .values()
        .filter_map(|s| s.points.first())
        .map(|p| p.at)
        .min();
    let start = opts.since.or(first).unwrap_or(opts.now);
    let end = opts.until.unwrap_or(opts.now).max(
        // A store read with no end: its last trace is inside the period.
        if opts.until.is_none() {
            series
                .values()
                .filter_map(|s| s.points.last())
                .map(|p| p.at + 1)
                .max()
                .unwrap_or(start)
        } else {
            start
        },
    );
    if start >= end && traces > 0 {
        return Err(ReportError::EmptyPeriod);
    }
    let whole = (end - start).max(0);

    // Segments per path.
    let spacings: Vec<i64> = series
        .values()
        .filter_map(|s| median_spacing(&s.points))
        .collect();
    let fallback_hold = {
        let mut v = spacings.clone();
        v.sort_unstable();
        v.get(v.len() / 2).map_or(0, |m| 3 * m)
    };
    let mut segments: BTreeMap<(String, String), Vec<Segment>> = BTreeMap::new();
    for (key, s) in &series {
        let hold = opts
            .gap
            .unwrap_or_else(|| median_spacing(&s.points).map_or(fallback_hold, |m| 3 * m));
        let mut out: Vec<Segment> = Vec::new();
        for (i, p) in s.points.iter().enumerate() {
            let next = s.points.get(i + 1).map_or(end, |n| n.at);
            let a = p.at.max(start);
            let b = next.min(p.at + hold).min(end);
            if b <= a {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.state == p.state && last.end == a => last.end = b,
                _ => out.push(Segment {
                    start: a,
                    end: b,
                    state: p.state,
                }),
            }
        }
        segments.insert(key.clone(), out);
    }

    // National gaps: the complement of every path's segments.
    let mut covered: Vec<(i64, i64)> = segments
        .values()
        .flatten()
        .map(|s| (s.start, s.end))
        .collect();
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut cursor = start;
    for (a, b) in covered {
        if a > cursor {
            gaps.push((cursor, a));
        }
        cursor = cursor.max(b);
    }
    if end > cursor {
        gaps.push((cursor, end));
    }

    // Services.
    let mut by_service: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (key, s) in &series {
        // Name servers' paths are dependencies of services, not services.
        if crate::model::is_dependency_target(&s.target) {
            continue;
        }
        by_service
            .entry(s.target.clone())
            .or_default()
            .push(key.clone());
    }
    let mut services = Vec::new();
    let mut networks: BTreeMap<u32, NetworkSeen> = BTreeMap::new();
    let operators = opts
        .operators
        .as_ref()
        .unwrap_or_else(|| OperatorTable::shipped());
    let home: Option<CountryCode> = opts.home.as_deref().and_then(|h| h.parse().ok());
    for (name, keys) in &by_service {
        let rule = opts.services.get(name);
        let accepted = rule.map_or(&[][..], |r| r.accepted_operators.as_slice());
        let mut hosting = Vec::new();
        let category = rule.map_or_else(|| "uncategorised".to_string(), |r| r.category.clone());
        // Elementary spans of the service's combined timeline.
        let mut bounds: Vec<i64> = vec![start, end];
        for k in keys {
            for s in &segments[k] {
                bounds.push(s.start);
                bounds.push(s.end);
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let mut cursors = vec![0usize; keys.len()];
        let mut time = Tally::default();
        // (start, end, class, countries) of measured spans, in order.
        let mut spans: Vec<(i64, i64, VerdictClass, Vec<String>)> = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let mut class: Option<VerdictClass> = None;
            let mut foreign: Vec<String> = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                let segs = &segments[k];
                while cursors[i] < segs.len() && segs[cursors[i]].end <= a {
                    cursors[i] += 1;
                }
                if let Some(seg) = segs.get(cursors[i]).filter(|s| s.start <= a) {
                    let st = &states[seg.state as usize];
                    if class.is_none_or(|c| severity(st.class) > severity(c)) {
                        class = Some(st.class);
                    }
                    for c in &st.foreign {
                        if !foreign.contains(c) {
                            foreign.push(c.clone());
                        }
                    }
                }
            }
            if let Some(class) = class {
                let set: BTreeSet<&str> = foreign.iter().map(String::as_str).collect();
                time.add(class, &set, b - a);
                match spans.last_mut() {
                    Some(last) if last.1 == a && last.2 == class && last.3 == foreign => last.1 = b,
                    _ => spans.push((a, b, class, foreign)),
                }
            }
        }
        let mut by_traces = Tally::default();
        let mut paths = Vec::new();
        let mut changes = Vec::new();
        let mut change_count = 0u64;
        let mut evidence = Vec::new();
        let mut last_trace = i64::MIN;
        for k in keys {
            let s = &series[k];
            let mut path_traces = Tally::default();
            let mut path_time = Tally::default();
            for seg in &segments[k] {
                let st = &states[seg.state as usize];
                path_time.add(
                    st.class,
                    &st.foreign.iter().map(String::as_str).collect(),
                    seg.end - seg.start,
                );
            }
            let mut seen_routes = BTreeSet::new();
            for (i, p) in s.points.iter().enumerate() {
                let st = &states[p.state as usize];
                let set: BTreeSet<&str> = st.foreign.iter().map(String::as_str).collect();
                path_traces.add(st.class, &set, 1);
                by_traces.add(st.class, &set, 1);
                if i > 0 {
                    let prev = &states[s.points[i - 1].state as usize];
                    if prev.path_id != st.path_id || prev.class != st.class {
                        change_count += 1;
                        changes.push(Change {
                            at: ts(p.at),
                            path_key: k.0.clone(),
                            from_class: prev.class,
                            class: st.class,
                            foreign_countries: st.foreign.clone(),
                            path_id: st.path_id.clone(),
                        });
                    }
                }
                // Names of the foreign networks: one record per route.
                if !st.foreign.is_empty()
                    && seen_routes.len() < ROUTES_READ
                    && seen_routes.insert(p.state)
                {
                    if let Ok(Some(stored)) = store.get(p.id) {
                        for hop in &stored.record.trace.hops {
                            let (Some(asn), Some(country)) =
                                (hop.geo.asn, hop.geo.country.as_ref())
                            else {
                                continue;
                            };
                            if !st.foreign.iter().any(|c| c == country.as_str()) {
                                continue;
                            }
                            let entry = networks.entry(asn).or_default();
                            if entry.0.is_none() {
                                entry.0.clone_from(&hop.geo.as_org);
                            }
                            entry.1.insert(country.as_str().to_string());
                            entry.2.insert(name.clone());
                        }
                    }
                }
            }
            if let Some(last) = s.points.last() {
                last_trace = last_trace.max(last.at);
                if let Ok(Some(stored)) = store.get(last.id) {
                    evidence.push(evidence_of(k.0.clone(), last.id, &stored.record));
                    hosting.push(path_hosting(
                        &k.0,
                        &stored.record,
                        Some(last.id),
                        home,
                        operators,
                        accepted,
                    ));
                }
            }
            paths.push(PathReport {
                path_key: k.0.clone(),
                vantage: k.1.clone(),
                traces: s.points.len() as u64,
                time_share: path_time.shares(whole, true),
                trace_share: path_traces.shares(s.points.len() as i64, false),
            });
        }
        changes.sort_by_key(|c| c.at);
        if changes.len() > CHANGES_LISTED {
            changes.drain(..changes.len() - CHANGES_LISTED);
        }
        let current = spans.last().map(|last| {
            let mut since = last.0;
            for span in spans.iter().rev().skip(1) {
                if span.2 == last.2 && span.3 == last.3 {
                    since = span.0;
                } else {
                    break;
                }
            }
            CurrentState {
                class: last.2,
                foreign_countries: last.3.clone(),
                since: ts(since),
                last_trace: ts(last_trace),
            }
        });
        let n_traces = by_traces.measured;
        let span_count = spans.len() as u64;
        let timeline: Vec<Span> = spans
            .into_iter()
            .rev()
            .take(SPANS_LISTED)
            .rev()
            .map(|(a, b, class, foreign)| Span {
                start: ts(a),
                end: ts(b),
                class,
                foreign_countries: foreign,
            })
            .collect();
        services.push((
            ServiceReport {
                name: name.clone(),
                category,
                url: opts
                    .external_url
                    .as_ref()
                    .map(|u| format!("{}/report#service-{name}", u.trim_end_matches('/'))),
                traces: u64::try_from(n_traces).unwrap_or(0),
                current,
                time_share: time.shares(whole, true),
                trace_share: by_traces.shares(n_traces, false),
                paths,
                changes,
                change_count,
                timeline,
                span_count,
                evidence,
                hosting: (!hosting.is_empty()).then(|| service_hosting(name, hosting)),
                dns: None,
            },
            time,
            by_traces,
        ));
    }

    // National figures.
    let n = u32::try_from(services.len()).unwrap_or(u32::MAX);
    let mut countries: BTreeMap<String, (u32, u32, i64, Vec<String>)> = BTreeMap::new();
    let mut categories: BTreeMap<String, (u32, BTreeMap<String, u32>)> = BTreeMap::new();
    let mut services_foreign = 0u32;
    for (svc, time, by_traces) in &services {
        let cat = categories.entry(svc.category.clone()).or_default();
        cat.0 += 1;
        if !by_traces.countries.is_empty() {
            services_foreign += 1;
        }
        for (country, traced) in &by_traces.countries {
            if *traced == 0 {
                continue;
            }
            let t = time.countries.get(country).copied().unwrap_or(0);
            let e = countries.entry(country.clone()).or_default();
            e.0 += 1;
            if time.measured > 0 && t == time.measured {
                e.1 += 1;
            }
            e.2 += t;
            e.3.push(svc.name.clone());
            *cat.1.entry(country.clone()).or_default() += 1;
        }
    }
    let mut country_figures: Vec<CountryFigure> = countries
        .into_iter()
        .map(|(country, (any, all, time, names))| CountryFigure {
            name: country_name(&country),
            country,
            services_any: any,
            services_all: all,
            share_of_services: frac(i64::from(any), i64::from(n)),
            time_share: frac(time, whole * i64::from(n)),
            service_names: names,
        })
        .collect();
    country_figures.sort_by(|a, b| {
        b.services_any
            .cmp(&a.services_any)
            .then(b.time_share.total_cmp(&a.time_share))
            .then(a.country.cmp(&b.country))
    });
    let mut sentences = sentences(n, services_foreign, &country_figures);
    let mut services: Vec<ServiceReport> = services.into_iter().map(|(s, _, _)| s).collect();
    let overview = dependency_overview(store, opts, end, operators, home)?;
    for s in &mut services {
        s.dns = overview
            .services
            .iter()
            .find(|d| d.name == s.name)
            .and_then(|d| d.dns.clone());
    }
    let hosting = national(
        services
            .iter()
            .filter_map(|s| s.hosting.as_ref().map(|h| (s.name.as_str(), h))),
    );
    if hosting.services > 0 {
        sentences.push(hosting.sentence.clone());
    }
    sentences.extend(overview.dns.sentences.iter().cloned());
    for risk in &overview.at_risk {
        let foreign_country = risk.failure.country.is_some_and(|c| Some(c) != home);
        let lost = !risk.loses_hosting.is_empty()
            || !risk.loses_route.is_empty()
            || !risk.loses_dns.is_empty();
        if foreign_country && lost {
            sentences.push(risk.sentence.clone());
        }
    }
    let routes = routes(&services);
    let unmeasured_seconds = gaps.iter().map(|(a, b)| b - a).sum();
    let report = Report {
        schema: REPORT_SCHEMA,
        generated_at: ts(opts.now),
        period: Period {
            start: ts(start),
            end: ts(end),
            seconds: whole,
        },
        summary: Summary {
            services: n,
            services_foreign,
            sentences,
            countries: country_figures,
            categories: categories
                .into_iter()
                .map(|(category, (services, countries))| CategoryFigure {
                    category,
                    services,
                    countries,
                })
                .collect(),
            networks: networks
                .into_iter()
                .map(|(asn, (name, countries, services))| NetworkFigure {
                    asn,
                    name,
                    countries: countries.into_iter().collect(),
                    service_names: services.into_iter().collect(),
                })
                .collect(),
            routes,
            hosting,
            dependencies: DependencyFigures {
                dns: overview.dns,
                at_risk: overview.at_risk,
            },
        },
        services,
        method: Method {
            vantages: vantages.into_iter().collect(),
            traces,
            gaps: gaps
                .iter()
                .map(|&(a, b)| Gap {
                    start: ts(a),
                    end: ts(b),
                    seconds: b - a,
                })
                .collect(),
            unmeasured_seconds,
            hold_rule: opts.gap.map_or_else(
                || "a verdict holds until the path's next trace, for at most three times the median spacing of that path's traces".to_string(),
                |g| format!("a verdict holds until the path's next trace, for at most {g} s"),
            ),
            provenance: store.provenance_counts(&query)?.into_iter().map(provenance_entry).collect(),
            home: opts.home.clone(),
            min_confidence: opts.min_confidence.clone(),
            config_sha256: opts.config_sha256.clone(),
            rules: opts.services.clone(),
            operator_table: OperatorTableSource {
                shipped_sha256: OperatorTable::shipped_sha256(),
                asns: operators.len(),
                file: opts.operator_file.as_ref().map(|f| f.0.clone()),
                file_sha256: opts.operator_file.as_ref().map(|f| f.1.clone()),
            },
            classes: class_meanings(),
        },
    };
    Ok(report)
}

fn provenance_entry(p: ProvenanceCount) -> ProvenanceEntry {
    ProvenanceEntry {
        config_sha256: p.config_sha256,
        geoip: p
            .geoip
            .into_iter()
            .map(|db| DatabaseEntry {
                kind: db.kind,
                database_type: db.database_type,
                built: i64::try_from(db.build_epoch)
                    .ok()
                    .and_then(|e| Timestamp::from_unix(e).ok()),
                vendor: db.vendor,
                sha256: db.sha256,
            })
            .collect(),
        location_files: p
            .location_files
            .into_iter()
            .map(|f| LocationFileEntry {
                kind: f.kind,
                path: f.path,
                sha256: f.sha256,
            })
            .collect(),
        version: p.version,
        traces: p.traces,
        first: ts(p.first),
        last: ts(p.last),
    }
}

/// The routes the services' paths took last, from their evidence.
fn routes(services: &[ServiceReport]) -> Vec<RouteFigure> {
    // Keyed by the class's severity: classes have no order of their own.
    let mut routes: BTreeMap<(Vec<String>, u8), (VerdictClass, BTreeSet<String>)> = BTreeMap::new();
    for s in services {
        for e in &s.evidence {
            let mut countries = e.countries.clone();
            countries.dedup();
            if countries.is_empty() {
                continue;
            }
            routes
                .entry((countries, severity(e.class)))
                .or_insert_with(|| (e.class, BTreeSet::new()))
                .1
                .insert(s.name.clone());
        }
    }
    routes
        .into_iter()
        .map(|((countries, _), (class, names))| RouteFigure {
            countries,
            class,
            service_names: names.into_iter().collect(),
        })
        .collect()
}

fn evidence_of(path_key: String, trace_id: i64, record: &TraceRecord) -> Evidence {
    Evidence {
        path_key,
        trace_id,
        started_at: record.trace.started_at,
        explanation: record.verdict.explanation.clone(),
        confidence: record.verdict.confidence,
        class: record.verdict.class,
        countries: record
            .verdict
            .countries
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        hops: record
            .trace
            .hops
            .iter()
            .map(|h| EvidenceHop {
                ttl: h.ttl,
                addr: h.addr.map(|a| a.to_string()),
                hostname: h.hostname.clone(),
                country: h.geo.country.as_ref().map(|c| c.as_str().to_string()),
                city: h.geo.city.clone(),
                asn: h.geo.asn,
                as_org: h.geo.as_org.clone(),
                confidence: h.geo.confidence,
            })
            .collect(),
    }
}

/// The national findings in plain words.
fn sentences(n: u32, foreign: u32, countries: &[CountryFigure]) -> Vec<String> {
    let services = |k: u32| if k == 1 { "service" } else { "services" };
    if n == 0 {
        return vec!["No traces were recorded in the period.".to_string()];
    }
    let mut out = vec![if foreign == 0 {
        format!(
            "None of the {n} national {} measured left the country during the period.",
            services(n)
        )
    } else {
        format!(
            "{foreign} of {n} national {} ({}) depended on at least one foreign country for at least part of the period.",
            services(n),
            percent(frac(i64::from(foreign), i64::from(n)))
        )
    }];
    for c in countries {
        let (was, their) = if c.services_any == 1 {
            ("was", "its")
        } else {
            ("were", "their")
        };
        let head = format!(
            "{} of {n} national {} ({}) {was} reached through {}",
            c.services_any,
            services(n),
            percent(c.share_of_services),
            c.name,
        );
        out.push(match c.services_all {
            0 => format!("{head} for part of the period."),
            k if k == c.services_any => format!("{head} all of {their} measured time."),
            k => format!(
                "{head} for at least part of the period; {k} of them all of the measured time."
            ),
        });
    }
    out
}
