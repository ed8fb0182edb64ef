//! Prometheus metrics: an owned registry that turns completed traces into
//! the `transitwatch_*` families of the metrics contract and renders them in
//! the text exposition format 0.0.4.
//!
//! [`Metrics`] owns its [`Registry`]; there is no global registry, so tests
//! and several daemons in one process never see each other's series. Values
//! are in base units (seconds, ratios 0..1) and carry no timestamps.
//!
//! The families this module defines are of two kinds:
//!
//! - process-wide ones (`transitwatch_trace_duration_seconds`, build info,
//!   configuration reloads, the target count) are ordinary `prometheus`
//!   metrics;
//! - every family derived from targets' last traces (verdicts, hops,
//!   countries, run counters, the country dependency ratio, the GeoIP
//!   databases, and the opt-in per-hop families of `per_hop`) is made at
//!   each scrape from one snapshot of immutable per-target views. An
//!   observation builds the target's new view and swaps it in, so its old
//!   path's series disappear in the same step as the new ones appear: a
//!   scrape sees either the old or the new path of a target, never a mix,
//!   and nothing has to remember which label sets to delete. The
//!   dependency ratio is recomputed from all views at each scrape.
//!
//! With `MetricVec`s the same families would need their own record of
//! published label sets for deletion, could be scraped half-replaced, and
//! would be sorted from hash order at every scrape; the snapshot emits its
//! series already in the registry's order. Its families are written as
//! text after the registry's rather than collected by it, so that they and
//! the per-hop families (see `per_hop`) come from the same snapshot and no
//! protobuf message is built per series (at 1000 targets of 12 hops that
//! was most of a scrape); the registry holds their names all the same.
//!
//! Other modules own their families and register them in this registry when
//! it is made: the notifier's (`transitwatch_alert*`, see
//! [`AlertMetrics`]), the store's (`transitwatch_store_writes_total`, see
//! [`StoreMetrics`]), the state directory's
//! (`transitwatch_state_saves_total`, see [`SaveMetrics`]) and the reverse
//! DNS resolver's (`transitwatch_rdns_*`, see `reverse_dns`). [`Metrics`]
//! hands out their handles.
//!
//! The dependency families (`transitwatch_services_at_risk`,
//! `transitwatch_service_dns_*`, `transitwatch_service_foreign_operator`,
//! see `src/metrics/dependency.rs`) come from a second collector that publishes one
//! [`DependencyView`], replaced whole each time the daemon recomputes the
//! dependency overview.

mod dependency;
mod per_hop;

pub use dependency::DependencyView;
pub use per_hop::{PerHop, DESTINATION_RTT_BUCKETS};

use crate::alert::AlertMetrics;
use crate::geo::DatabaseInfo;
use crate::model::multipath::Multipath;
use crate::model::{Confidence, CountryClaim, CountryCode, Hop, TraceRecord, VerdictClass};
use crate::reverse_dns::RdnsMetrics;
use crate::state_dir::SaveMetrics;
use crate::store::StoreMetrics;
use per_hop::{HopFigures, PathHops, RttHistogram};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Gauge, Histogram, HistogramOpts, IntGauge, IntGaugeVec, Opts, Registry};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the `transitwatch_trace_duration_seconds` buckets: a
/// trace of a nearby reachable host takes milliseconds, one of a silent
/// destination runs into the probe deadline (seconds, at most a minute).
pub const TRACE_DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Why metrics could not be set up or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// A metric family could not be created or registered (a defect in its
    /// definition).
    #[error("metric family `{name}` could not be set up: {reason}")]
    Setup {
        /// The family's name.
        name: &'static str,
        /// What the Prometheus library said.
        reason: String,
    },
    /// The registry's content could not be encoded as text.
    #[error("encoding the metrics exposition failed: {0}")]
    Encode(String),
}

// ------------------------------------------------------------ definitions

/// A family served by the target collector.
struct FamilyDef {
    name: &'static str,
    help: &'static str,
    counter: bool,
    labels: &'static [&'static str],
}

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> FamilyDef {
    FamilyDef {
        name,
        help,
        counter: false,
        labels,
    }
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> FamilyDef {
    FamilyDef {
        name,
        help,
        counter: true,
        labels,
    }
}

/// Indices into [`TARGET_FAMILIES`].
const VERDICT: usize = 0;
const TRANSIT: usize = 1;
const CHANGES: usize = 2;
const RATIO: usize = 3;
const HOP_INFO: usize = 4;
const HOP_LOCATION: usize = 5;
const RUNS: usize = 6;
const RTT: usize = 7;
const HOPS: usize = 8;
const VIOLATION: usize = 9;
const REACHED: usize = 10;
const LAST_TRACE: usize = 11;
const LAST_ERROR: usize = 12;
const DATABASES: usize = 13;
const DATABASE_BUILT: usize = 14;
const CONFIDENCE: usize = 15;
const SUSPECTED: usize = 16;
const COUNTRIES_INFO: usize = 17;
const DEPENDENTS_INFO: usize = 18;
const MULTIPATH_PATHS: usize = 19;
const MULTIPATH_FLOWS: usize = 20;
const MULTIPATH_FOREIGN: usize = 21;
const MULTIPATH_VIOLATING: usize = 22;

/// The families derived from per-target state, in index order.
const TARGET_FAMILIES: [FamilyDef; 23] = [
    gauge(
        "transitwatch_path_verdict",
        &["target", "class"],
        "Classification of the target's last path: 1 for its current class \
         (domestic, foreign_transit, foreign_destination, indeterminate), 0 for the other three.",
    ),
    gauge(
        "transitwatch_path_transit_country",
        &["target", "country"],
        "Located, plausible hops per country on the target's last path (the evidence the \
         verdict rests on); countries no longer on the path have no series.",
    ),
    counter(
        "transitwatch_path_changes_total",
        &["target"],
        "Times the target's responding hop sequence differed from its previous trace (route changes).",
    ),
    gauge(
        "transitwatch_country_dependency_ratio",
        &["country"],
        "Share (0..1) of services (targets with a verdict; a dual-stack target is one service) \
         any of whose last paths crosses this foreign country.",
    ),
    gauge(
        "transitwatch_hop_info",
        &["target", "ttl", "addr", "country", "asn"],
        "One series (value 1) per responding hop of the target's last path; \
         country and asn are empty when unknown.",
    ),
    gauge(
        "transitwatch_hop_location",
        &["target", "ttl", "lat", "lon", "country"],
        "One series (value 1) per hop of the target's last path that has coordinates, \
         for map panels; country is empty when unknown.",
    ),
    counter(
        "transitwatch_trace_runs_total",
        &["target", "outcome"],
        "Traces run per target by outcome: reached (the destination answered), \
         unreached (it did not), error (the trace could not run).",
    ),
    gauge(
        "transitwatch_path_rtt_seconds",
        &["target"],
        "Best round-trip time of the destination hop on the target's last path \
         (of the last responding hop when the destination did not answer).",
    ),
    gauge(
        "transitwatch_path_hops",
        &["target"],
        "Number of hops (TTLs, silent ones included) of the target's last path.",
    ),
    gauge(
        "transitwatch_path_violation",
        &["target"],
        "1 when the target's last path breaks its allowed-countries policy, else 0.",
    ),
    gauge(
        "transitwatch_path_reached",
        &["target"],
        "1 when the destination answered on the target's last trace, else 0.",
    ),
    gauge(
        "transitwatch_last_trace_timestamp_seconds",
        &["target"],
        "Unix time the target's last completed trace finished; \
         alert when it falls behind the probe interval.",
    ),
    gauge(
        "transitwatch_last_trace_error_timestamp_seconds",
        &["target"],
        "Unix time of the target's last trace that could not run \
         (resolution failure or probe error).",
    ),
    gauge(
        "transitwatch_geoip_database_info",
        &["kind", "type", "build_epoch"],
        "One series (value 1) per loaded GeoIP database: kind of data (city, country, asn, \
         country+asn, city+asn), MMDB database_type, and build_epoch (Unix seconds).",
    ),
    gauge(
        "transitwatch_geoip_database_build_timestamp_seconds",
        &["kind", "type"],
        "Unix time each loaded GeoIP database was built;          alert when `time()` minus it grows past the vendor's release cycle.",
    ),
    gauge(
        "transitwatch_path_confidence",
        &["target"],
        "How sure the verdict of the target's last path is: 3 high, 2 medium, 1 low, \
         0 none (indeterminate).",
    ),
    gauge(
        "transitwatch_path_suspected_countries",
        &["target"],
        "Foreign countries on the target's last path claimed with less confidence than the \
         policy's min_confidence: reported, not counted as violations.",
    ),
    gauge(
        "transitwatch_path_countries_info",
        &["target", "countries", "foreign", "foreign_names"],
        "One series (value 1) per target with a verdict: the countries of its last path in \
         path order (`LS ZA LS`), its foreign countries in path order (`ZA`) and their names \
         (`South Africa`), for alert texts; a route change replaces the series.",
    ),
    gauge(
        "transitwatch_country_dependents_info",
        &["country", "name", "services"],
        "One series (value 1) per foreign country some service's last path crosses: its \
         name and the services crossing it (`bank, gov-portal`), for alert texts.",
    ),
    gauge(
        "transitwatch_multipath_paths",
        &["target"],
        "Distinct load-balanced paths the target's last multipath enumeration found \
         (targets with a multipath_interval only).",
    ),
    gauge(
        "transitwatch_multipath_flows",
        &["target"],
        "Flows (UDP source ports) the target's last multipath enumeration sent.",
    ),
    gauge(
        "transitwatch_multipath_foreign_paths",
        &["target", "country", "name"],
        "Of the load-balanced paths of the target's last multipath enumeration, those \
         crossing this foreign country (name: the country's name, for alert texts); \
         countries no path crosses have no series.",
    ),
    gauge(
        "transitwatch_multipath_violating_paths",
        &["target", "country"],
        "Of the load-balanced paths of the target's last multipath enumeration crossing this \
         foreign country, those breaking its allowed-countries policy.",
    ),
];

/// `transitwatch_trace_runs_total` outcomes, in label-value order.
const OUTCOMES: [&str; 3] = ["error", "reached", "unreached"];
const ERROR: usize = 0;
const REACHED_RUN: usize = 1;
const UNREACHED_RUN: usize = 2;

/// Verdict classes in label-value order (the order a scrape lists them).
const CLASSES: [VerdictClass; 4] = {
    let [domestic, transit, destination, indeterminate] = VerdictClass::ALL;
    [domestic, destination, transit, indeterminate]
};

// ------------------------------------------------------------------ state

/// Label values (after `target`) of one `transitwatch_hop_info` series:
/// ttl, addr, country, asn.
type HopInfoLabels = [String; 4];
/// Label values (after `target`) of one `transitwatch_hop_location` series:
/// ttl, lat, lon, country.
type HopLocationLabels = [String; 4];
/// Label values of one `transitwatch_geoip_database_info` series: kind,
/// type, `build_epoch`.
type DatabaseLabels = [String; 3];

/// What the last completed trace of a target says. Immutable once built.
#[derive(Debug)]
struct PathView {
    class: VerdictClass,
    violation: bool,
    reached: bool,
    hops: usize,
    rtt_seconds: Option<f64>,
    finished_at: f64,
    /// Evidence hops per country, by country.
    transit: Vec<(String, u32)>,
    /// Ordered by label values, as a scrape lists them.
    hop_info: Vec<HopInfoLabels>,
    /// Ordered by label values, as a scrape lists them.
    hop_location: Vec<HopLocationLabels>,
    /// Foreign countries of the verdict, without repeats.
    foreign: BTreeSet<CountryCode>,
    /// The verdict's confidence as a number (0 none .. 3 high).
    confidence: f64,
    /// Suspected foreign claims.
    suspected: usize,
    /// The verdict's countries, then its foreign ones, in path order,
    /// space-separated.
    countries_info: [String; 3],
    /// Every hop's sent, received and round-trip times, for the per-hop
    /// families (published only for paths [`PerHop`] selects).
    hop_figures: Box<[HopFigures]>,
    /// The destination's best round-trip time, in seconds, when it
    /// answered: the next observation of the histogram.
    destination_rtt: Option<f64>,
}

impl PathView {
    fn new(record: &TraceRecord, finished_at: f64) -> Self {
        let trace = &record.trace;
        let mut hop_info = hop_info_labels(&trace.hops);
        hop_info.sort_unstable();
        let mut hop_location = hop_location_labels(&trace.hops);
        hop_location.sort_unstable();
        Self {
            class: record.verdict.class,
            violation: record.verdict.violation,
            reached: trace.reached,
            hops: trace.hops.len(),
            rtt_seconds: destination_rtt_ms(record).map(|ms| ms / 1000.0),
            finished_at,
            transit: evidence_counts(&trace.hops, &record.verdict.claims)
                .into_iter()
                .collect(),
            hop_info,
            hop_location,
            foreign: record.verdict.foreign_countries.iter().copied().collect(),
            confidence: confidence_value(record.verdict.confidence),
            suspected: record.verdict.claims.iter().filter(|c| c.suspected).count(),
            countries_info: countries_info(record),
            hop_figures: per_hop::hop_figures(&trace.hops),
            destination_rtt: per_hop::destination_rtt(record),
        }
    }
}

/// The label values of `transitwatch_path_countries_info`.
fn countries_info(record: &TraceRecord) -> [String; 3] {
    let codes = |list: &[CountryCode]| {
        list.iter()
            .map(CountryCode::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let names: Vec<String> = record
        .verdict
        .foreign_countries
        .iter()
        .map(|c| c.name().unwrap_or(c.as_str()).to_string())
        .collect();
    [
        codes(&record.verdict.countries),
        codes(&record.verdict.foreign_countries),
        names.join(", "),
    ]
}

/// A confidence as a sample value: 0 none, 1 low, 2 medium, 3 high.
fn confidence_value(c: Option<Confidence>) -> f64 {
    match c {
        None => 0.0,
        Some(Confidence::Low) => 1.0,
        Some(Confidence::Medium) => 2.0,
        Some(Confidence::High) => 3.0,
    }
}

/// Everything published about one target. Replaced, never mutated.
#[derive(Debug, Default)]
struct TargetView {
    /// Route changes seen.
    changes: u64,
    /// Runs per outcome, indexed like [`OUTCOMES`].
    runs: [u64; 3],
    /// When the last failed trace was reported.
    last_error: Option<f64>,
    /// The last completed trace; `None` until there is one.
    path: Option<Arc<PathView>>,
    /// The destination's round-trip times since the path was selected for
    /// per-hop metrics; `None` while it is not.
    histogram: Option<RttHistogram>,
    /// The last multipath enumeration; `None` until there is one.
    multipath: Option<Arc<MultipathView>>,
}

/// What the last multipath enumeration of a target found. Immutable once
/// built.
#[derive(Debug)]
struct MultipathView {
    paths: usize,
    flows: u32,
    /// Per foreign country (code order): its code, its name, paths
    /// crossing, those of them breaking the policy.
    foreign: Vec<(String, String, u32, u32)>,
}

impl MultipathView {
    fn new(m: &Multipath) -> Self {
        Self {
            paths: m.paths.len(),
            flows: m.flows,
            foreign: m
                .crossing
                .iter()
                .map(|c| {
                    let code = c.country.as_str().to_string();
                    let name = c.country.name().unwrap_or(&code).to_string();
                    (code, name, c.paths, c.violating)
                })
                .collect(),
        }
    }
}

/// What the collector publishes.
#[derive(Debug, Default)]
struct State {
    targets: BTreeMap<Arc<str>, Arc<TargetView>>,
    /// Ordered by label values.
    databases: Vec<DatabaseLabels>,
    /// The paths that export the per-hop families.
    per_hop: Arc<PerHop>,
}

/// One consistent look at [`State`], taken for a scrape.
struct Snapshot {
    targets: Vec<(Arc<str>, Arc<TargetView>)>,
    databases: Vec<DatabaseLabels>,
    per_hop: Arc<PerHop>,
}

/// The shared part of the target collector.
struct TargetTable {
    // A std Mutex, not tokio's: it is never held across an `.await` and
    // every critical section is short (a map insert, or cloning ~1000 `Arc`s
    // for a scrape), while observations come from async tasks and plain
    // threads alike. It makes the read-modify-write of a target's counters
    // atomic between concurrent observations of that target, and gives a
    // scrape one consistent set of views (the protobuf-built families and
    // the per-hop text are made from the same snapshot). Building label
    // strings and encoding happen outside it.
    state: Mutex<State>,
}

impl TargetTable {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock, and every update is a
        // single assignment, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            targets: state
                .targets
                .iter()
                .map(|(name, view)| (Arc::clone(name), Arc::clone(view)))
                .collect(),
            databases: state.databases.clone(),
            per_hop: Arc::clone(&state.per_hop),
        }
    }
}

impl Snapshot {
    /// Appends the target families to `text`, in the text exposition
    /// format, written straight from the views: at 1000 targets of 12 hops
    /// (about 40,000 series) building them as `prometheus` protobuf
    /// messages to be encoded took most of a scrape. (They are not a
    /// registered [`Collector`]: the registry would take its own look at
    /// the views, and the per-hop text written after them could then show
    /// a newer path than the families beside it.)
    fn write_families(&self, text: &mut String) {
        let Snapshot {
            targets, databases, ..
        } = self;
        let mut out: Vec<TextFamily> = TARGET_FAMILIES.iter().map(TextFamily::new).collect();
        // National figures count services, not paths: a target traced in
        // both families (`name/ipv4`, `name/ipv6`) is one service, which
        // depends on a country when any of its paths crosses it.
        let mut with_verdict: BTreeSet<&str> = BTreeSet::new();
        let mut dependents: BTreeMap<CountryCode, BTreeSet<&str>> = BTreeMap::new();

        for (target, view) in targets {
            let t: &str = target;
            out[CHANGES].push(&[t], count(view.changes));
            for (outcome, runs) in OUTCOMES.iter().zip(view.runs) {
                out[RUNS].push(&[t, outcome], count(runs));
            }
            if let Some(at) = view.last_error {
                out[LAST_ERROR].push(&[t], at);
            }
            if let Some(m) = &view.multipath {
                out[MULTIPATH_PATHS].push(&[t], count(m.paths));
                out[MULTIPATH_FLOWS].push(&[t], f64::from(m.flows));
                for (code, name, paths, _) in &m.foreign {
                    out[MULTIPATH_FOREIGN].push(&[t, code, name], f64::from(*paths));
                }
                for (code, _, _, violating) in &m.foreign {
                    out[MULTIPATH_VIOLATING].push(&[t, code], f64::from(*violating));
                }
            }
            let Some(path) = &view.path else { continue };
            let service = t.split_once('/').map_or(t, |(name, _)| name);
            // Name servers' paths are no services: they count through the
            // services that depend on them (the dependency families).
            if !crate::model::is_dependency_target(service) {
                with_verdict.insert(service);
                for country in &path.foreign {
                    dependents.entry(*country).or_default().insert(service);
                }
            }
            for class in CLASSES {
                out[VERDICT].push(&[t, class.as_str()], flag(class == path.class));
            }
            for (country, hops) in &path.transit {
                out[TRANSIT].push(&[t, country.as_str()], f64::from(*hops));
            }
            for [ttl, addr, country, asn] in &path.hop_info {
                out[HOP_INFO].push(&[t, ttl, addr, country, asn], 1.0);
            }
            for [ttl, lat, lon, country] in &path.hop_location {
                out[HOP_LOCATION].push(&[t, ttl, lat, lon, country], 1.0);
            }
            if let Some(rtt) = path.rtt_seconds {
                out[RTT].push(&[t], rtt);
            }
            out[HOPS].push(&[t], count(path.hops));
            out[VIOLATION].push(&[t], flag(path.violation));
            out[REACHED].push(&[t], flag(path.reached));
            out[LAST_TRACE].push(&[t], path.finished_at);
            out[CONFIDENCE].push(&[t], path.confidence);
            out[SUSPECTED].push(&[t], count(path.suspected));
            let [countries, foreign, names] = &path.countries_info;
            out[COUNTRIES_INFO].push(&[t, countries, foreign, names], 1.0);
        }
        for (country, services) in dependents {
            #[allow(clippy::cast_precision_loss)] // counts of targets
            let ratio = services.len() as f64 / with_verdict.len() as f64;
            let code = country.as_str();
            out[RATIO].push(&[code], ratio);
            let names = services.into_iter().collect::<Vec<_>>().join(", ");
            let name = country.name().unwrap_or(code);
            out[DEPENDENTS_INFO].push(&[code, name, &names], 1.0);
        }
        for [kind, database_type, build_epoch] in databases {
            out[DATABASES].push(&[kind, database_type, build_epoch], 1.0);
            if let Ok(epoch) = build_epoch.parse::<f64>() {
                out[DATABASE_BUILT].push(&[kind, database_type], epoch);
            }
        }
        for family in out {
            family.write(text);
        }
    }

    /// The per-hop families of the selected paths, as text.
    fn write_per_hop(&self, out: &mut String) {
        let paths: Vec<PathHops<'_>> = self
            .targets
            .iter()
            .filter(|(target, _)| self.per_hop.covers(target))
            .filter_map(|(target, view)| {
                Some(PathHops {
                    target,
                    hops: &view.path.as_ref()?.hop_figures,
                    histogram: view.histogram.as_ref(),
                })
            })
            .collect();
        per_hop::write(out, &paths);
    }
}

/// A target family being written as text: its series lines, the header
/// added when it has any.
struct TextFamily {
    def: &'static FamilyDef,
    series: String,
}

impl TextFamily {
    fn new(def: &'static FamilyDef) -> Self {
        Self {
            def,
            series: String::new(),
        }
    }

    /// Adds one series; `values` pair with the family's label names.
    fn push(&mut self, values: &[&str], value: f64) {
        let out = &mut self.series;
        out.push_str(self.def.name);
        for (i, (name, v)) in self.def.labels.iter().zip(values).enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            out.push_str(name);
            out.push_str("=\"");
            per_hop::label_value(out, v);
            out.push('"');
        }
        if !self.def.labels.is_empty() {
            out.push('}');
        }
        out.push(' ');
        per_hop::number(out, value);
    }

    /// Appends the family to `out`; nothing when it has no series (as the
    /// registry leaves such a family out).
    fn write(self, out: &mut String) {
        if self.series.is_empty() {
            return;
        }
        let kind = if self.def.counter { "counter" } else { "gauge" };
        per_hop::header(out, (self.def.name, self.def.help), kind);
        out.push_str(&self.series);
    }
}

/// A family being assembled as a `prometheus` message, for a registered
/// collector (the dependency families).
struct FamilyOut {
    def: &'static FamilyDef,
    metrics: Vec<proto::Metric>,
}

impl FamilyOut {
    fn new(def: &'static FamilyDef) -> Self {
        Self {
            def,
            metrics: Vec::new(),
        }
    }

    /// Adds one series; `values` pair with the family's label names.
    fn push(&mut self, values: &[&str], value: f64) {
        let labels = self
            .def
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_string());
                pair.set_value((*value).to_string());
                pair
            })
            .collect();
        let mut metric = proto::Metric::from_label(labels);
        if self.def.counter {
            let mut c = proto::Counter::default();
            c.set_value(value);
            metric.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            metric.set_gauge(g);
        }
        self.metrics.push(metric);
    }

    fn finish(self) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.def.name.to_string());
        family.set_help(self.def.help.to_string());
        family.set_field_type(if self.def.counter {
            MetricType::COUNTER
        } else {
            MetricType::GAUGE
        });
        family.set_metric(self.metrics);
        family
    }
}

// ---------------------------------------------------------------- Metrics

/// The daemon's metrics: an owned Prometheus registry and the per-target
/// views it publishes. `Send + Sync`; share it in an `Arc`.
pub struct Metrics {
    /// An error only when a family definition is defective (see
    /// [`Metrics::try_new`]); every update is then a no-op and
    /// [`render`](Self::render) reports the defect.
    inner: Result<Inner, MetricsError>,
}

struct Inner {
    registry: Registry,
    targets: Arc<TargetTable>,
    dependencies: Arc<dependency::DependencyTable>,
    trace_duration: Histogram,
    config_reload_success: IntGauge,
    config_reload_timestamp: Gauge,
    target_count: IntGauge,
    report_info: IntGaugeVec,
    alerts: AlertMetrics,
    store: StoreMetrics,
    saves: SaveMetrics,
    rdns: RdnsMetrics,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("usable", &self.inner.is_ok())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every family registered and
    /// `transitwatch_build_info{version}` set to 1.
    ///
    /// Family definitions are constants, so setting them up cannot fail in a
    /// correct build; should it fail anyway, the error is logged, updates are
    /// ignored and [`render`](Self::render) returns it (the endpoint answers
    /// 500) rather than the process stopping.
    #[must_use]
    pub fn new(version: &str) -> Self {
        let inner = Inner::new(version);
        if let Err(error) = &inner {
            tracing::error!(%error, "metrics are unavailable");
        }
        Self { inner }
    }

    /// Like [`new`](Self::new), but a defective family definition is an
    /// error.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Setup`] naming the first family that could not be
    /// created or registered.
    pub fn try_new(version: &str) -> Result<Self, MetricsError> {
        Ok(Self {
            inner: Ok(Inner::new(version)?),
        })
    }

    /// A completed trace of `target`: its verdict, path, outcome and
    /// duration. `target` is the `target` label value: the configured name,
    /// or `name/<suffix>` (e.g. `gov/ipv6`) for one path of a target traced
    /// in several address families. `changed` says the path
    /// differs from the target's previous one; `at_unix` is when the trace
    /// finished, in Unix seconds. The target's previous path is replaced as
    /// a whole.
    pub fn observe(
        &self,
        target: &str,
        record: &TraceRecord,
        changed: bool,
        duration: Duration,
        at_unix: f64,
    ) {
        let Ok(inner) = &self.inner else { return };
        inner.trace_duration.observe(duration.as_secs_f64());
        let path = Arc::new(PathView::new(record, at_unix));
        let outcome = if record.trace.reached {
            REACHED_RUN
        } else {
            UNREACHED_RUN
        };
        let mut state = inner.targets.lock();
        let selected = state.per_hop.covers(target);
        let old = state.targets.get(target);
        let mut runs = old.map_or([0; 3], |v| v.runs);
        runs[outcome] += 1;
        let histogram = selected.then(|| {
            let seen = old.and_then(|v| v.histogram.clone()).unwrap_or_default();
            match path.destination_rtt {
                Some(rtt) => seen.with(rtt),
                None => seen,
            }
        });
        let view = TargetView {
            changes: old.map_or(0, |v| v.changes) + u64::from(changed),
            runs,
            last_error: old.and_then(|v| v.last_error),
            path: Some(path),
            multipath: old.and_then(|v| v.multipath.clone()),
            histogram,
        };
        state.targets.insert(Arc::from(target), Arc::new(view));
    }

    /// Publish a path saved before a restart, with the route changes
    /// counted so far, without counting a run: a restart neither resets
    /// nor raises `transitwatch_path_changes_total`.
    pub fn restore(&self, target: &str, record: &TraceRecord, changes: u64, at_unix: f64) {
        let Ok(inner) = &self.inner else { return };
        let path = Arc::new(PathView::new(record, at_unix));
        let mut state = inner.targets.lock();
        let old = state.targets.get(target);
        let view = TargetView {
            changes: old.map_or(0, |v| v.changes).max(changes),
            runs: old.map_or([0; 3], |v| v.runs),
            last_error: old.and_then(|v| v.last_error),
            path: Some(path),
            multipath: old.and_then(|v| v.multipath.clone()),
            histogram: old.and_then(|v| v.histogram.clone()),
        };
        state.targets.insert(Arc::from(target), Arc::new(view));
    }

    /// The last multipath enumeration of `target` (the `target` label, as
    /// for [`observe`](Self::observe)), replacing the previous one's series.
    pub fn set_multipath(&self, target: &str, multipath: &Multipath) {
        let Ok(inner) = &self.inner else { return };
        let view = Arc::new(MultipathView::new(multipath));
        let mut state = inner.targets.lock();
        let old = state.targets.get(target);
        let next = TargetView {
            changes: old.map_or(0, |v| v.changes),
            runs: old.map_or([0; 3], |v| v.runs),
            last_error: old.and_then(|v| v.last_error),
            path: old.and_then(|v| v.path.clone()),
            multipath: Some(view),
            histogram: old.and_then(|v| v.histogram.clone()),
        };
        state.targets.insert(Arc::from(target), Arc::new(next));
    }

    /// A trace of `target` that could not run (resolution failure, probe
    /// error). The target's last path stays published.
    pub fn observe_error(&self, target: &str, duration: Duration, at_unix: f64) {
        let Ok(inner) = &self.inner else { return };
        inner.trace_duration.observe(duration.as_secs_f64());
        let mut state = inner.targets.lock();
        let old = state.targets.get(target);
        let mut runs = old.map_or([0; 3], |v| v.runs);
        runs[ERROR] += 1;
        let view = TargetView {
            changes: old.map_or(0, |v| v.changes),
            runs,
            last_error: Some(at_unix),
            path: old.and_then(|v| v.path.clone()),
            multipath: old.and_then(|v| v.multipath.clone()),
            histogram: old.and_then(|v| v.histogram.clone()),
        };
        state.targets.insert(Arc::from(target), Arc::new(view));
    }

    /// Selects the paths that export the per-hop families (from the
    /// configuration in force), replacing the previous selection. A path no
    /// longer selected loses them at once, its histogram included; a newly
    /// selected one has them from its next trace (its histogram starts
    /// empty).
    pub fn set_per_hop(&self, selection: PerHop) {
        let Ok(inner) = &self.inner else { return };
        let mut state = inner.targets.lock();
        for (target, view) in &mut state.targets {
            if view.histogram.is_some() && !selection.covers(target) {
                *view = Arc::new(TargetView {
                    changes: view.changes,
                    runs: view.runs,
                    last_error: view.last_error,
                    path: view.path.clone(),
                    multipath: view.multipath.clone(),
                    histogram: None,
                });
            }
        }
        state.per_hop = Arc::new(selection);
    }

    /// Publishes the opened GeoIP databases, replacing the previous set.
    pub fn set_geoip_databases(&self, dbs: &[DatabaseInfo]) {
        let Ok(inner) = &self.inner else { return };
        let databases: BTreeSet<DatabaseLabels> = dbs
            .iter()
            .map(|db| {
                [
                    db.schema.as_str().to_string(),
                    db.database_type.clone(),
                    db.build_epoch.to_string(),
                ]
            })
            .collect();
        inner.targets.lock().databases = databases.into_iter().collect();
    }

    /// Publishes the live report's address (`{external_url}/report`), or
    /// none, replacing the previous one.
    pub fn set_report_url(&self, external_url: Option<&str>) {
        let Ok(inner) = &self.inner else { return };
        inner.report_info.reset();
        if let Some(url) = external_url {
            inner
                .report_info
                .with_label_values(&[&format!("{}/report", url.trim_end_matches('/'))])
                .set(1);
        }
    }

    /// Records the outcome of a configuration reload attempt at `at_unix`
    /// (Unix seconds).
    pub fn set_config_reload(&self, ok: bool, at_unix: f64) {
        let Ok(inner) = &self.inner else { return };
        inner.config_reload_success.set(i64::from(ok));
        inner.config_reload_timestamp.set(at_unix);
    }

    /// Drops every series of targets not in `keep`, the configured names
    /// (after a reload removed them; the dependency ratios no longer count
    /// them), and sets `transitwatch_targets` to the number of distinct names
    /// in `keep`. A `name/<suffix>` label value belongs to target `name`.
    pub fn retain_targets(&self, keep: &[String]) {
        let Ok(inner) = &self.inner else { return };
        let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
        inner.targets.lock().targets.retain(|key, _| {
            let name = configured_name(key);
            // Name servers' paths belong to no configured target; they
            // go when the daemon forgets them.
            keep.contains(name) || crate::model::is_dependency_target(name)
        });
        inner
            .target_count
            .set(i64::try_from(keep.len()).unwrap_or(i64::MAX));
    }

    /// Forget the name servers' paths whose server `keep` does not accept
    /// (by its dependency target name, `dns:NAME`).
    pub fn retain_dependency_paths(&self, keep: impl Fn(&str) -> bool) {
        let Ok(inner) = &self.inner else { return };
        inner.targets.lock().targets.retain(|key, _| {
            let name = configured_name(key);
            !crate::model::is_dependency_target(name) || keep(name)
        });
    }

    /// Publish the dependency findings (replacing the previous ones whole).
    pub fn set_dependencies(&self, view: DependencyView) {
        if let Ok(inner) = &self.inner {
            inner.dependencies.set(view);
        }
    }

    /// The alert notifier's families, as a handle its tasks keep.
    #[must_use]
    pub fn alerts(&self) -> AlertMetrics {
        self.inner
            .as_ref()
            .map_or_else(|_| AlertMetrics::default(), |inner| inner.alerts.clone())
    }

    /// The state files' save counter, as a handle the state directory keeps.
    #[must_use]
    pub fn state_saves(&self) -> SaveMetrics {
        self.inner
            .as_ref()
            .map_or_else(|_| SaveMetrics::default(), |inner| inner.saves.clone())
    }

    /// The trace store's families, as a handle its writer keeps.
    #[must_use]
    pub fn store(&self) -> StoreMetrics {
        self.inner
            .as_ref()
            .map_or_else(|_| StoreMetrics::default(), |inner| inner.store.clone())
    }

    /// The reverse DNS resolver's families, as a handle the resolver keeps.
    #[must_use]
    pub(crate) fn rdns(&self) -> RdnsMetrics {
        self.inner
            .as_ref()
            .map_or_else(|_| RdnsMetrics::default(), |inner| inner.rdns.clone())
    }

    /// One record handed to the trace store, by `result`: `ok` (stored),
    /// `error` (the store failed), `dropped` (its queue was full).
    pub fn store_write(&self, result: &str) {
        let Ok(inner) = &self.inner else { return };
        inner.store.count(result);
    }

    /// Every series in the Prometheus text exposition format 0.0.4 (see
    /// [`CONTENT_TYPE`]).
    ///
    /// # Errors
    ///
    /// [`MetricsError::Setup`] when the families could not be set up;
    /// [`MetricsError::Encode`] when the encoder rejects the content.
    pub fn render(&self) -> Result<String, MetricsError> {
        let inner = self.inner.as_ref().map_err(Clone::clone)?;
        let snapshot = inner.targets.snapshot();
        let families = inner.registry.gather();
        let mut out = String::with_capacity(256 * 1024);
        prometheus::TextEncoder::new()
            .encode_utf8(&families, &mut out)
            .map_err(|e| MetricsError::Encode(e.to_string()))?;
        // The registry's families (sorted by name), then the target
        // families, then the per-hop ones: each family whole, as the text
        // format requires; it asks no order between them.
        snapshot.write_families(&mut out);
        snapshot.write_per_hop(&mut out);
        Ok(out)
    }
}

impl Inner {
    fn new(version: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        // The target families are encoded beside the registry's (see
        // `Snapshot::families`); their definitions are checked here all
        // the same, and the registry is told their names, so that no other
        // family can take one.
        let mut descs = descs(&TARGET_FAMILIES)?;
        for (name, help, labels) in per_hop::FAMILIES {
            descs.push(
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    labels.iter().map(|l| (*l).to_string()).collect(),
                    HashMap::new(),
                )
                .map_err(|e| setup_error(name, &e))?,
            );
        }
        registry
            .register(Box::new(Reserved(descs)))
            .map_err(|e| setup_error("target families", &e))?;
        let targets = Arc::new(TargetTable {
            state: Mutex::new(State::default()),
        });
        let dependencies = Arc::new(dependency::DependencyTable::new()?);
        registry
            .register(Box::new(dependency::DependencyCollector(Arc::clone(
                &dependencies,
            ))))
            .map_err(|e| setup_error("dependency families", &e))?;

        let trace_duration = register(
            &registry,
            "transitwatch_trace_duration_seconds",
            Histogram::with_opts(
                HistogramOpts::new(
                    "transitwatch_trace_duration_seconds",
                    "Wall-clock time of each trace, failed ones included, from start to verdict.",
                )
                .buckets(TRACE_DURATION_BUCKETS.to_vec()),
            ),
        )?;
        let config_reload_success = register(
            &registry,
            "transitwatch_config_reload_success",
            IntGauge::new(
                "transitwatch_config_reload_success",
                "1 when the last configuration reload succeeded, 0 when it failed \
                 (the previous configuration stays in force).",
            ),
        )?;
        let config_reload_timestamp = register(
            &registry,
            "transitwatch_config_reload_timestamp_seconds",
            Gauge::new(
                "transitwatch_config_reload_timestamp_seconds",
                "Unix time of the last configuration reload attempt.",
            ),
        )?;
        let target_count = register(
            &registry,
            "transitwatch_targets",
            IntGauge::new(
                "transitwatch_targets",
                "Number of targets in the configuration in force.",
            ),
        )?;
        let build_info = register(
            &registry,
            "transitwatch_build_info",
            IntGaugeVec::new(
                Opts::new(
                    "transitwatch_build_info",
                    "Always 1; the version label names the running transitwatch build.",
                ),
                &["version"],
            ),
        )?;
        build_info.with_label_values(&[version]).set(1);
        let report_info = register(
            &registry,
            "transitwatch_report_info",
            IntGaugeVec::new(
                Opts::new(
                    "transitwatch_report_info",
                    "1 with the url of the daemon's live report (`[alert] external_url`), \
                     for links in alert texts; absent when none is configured.",
                ),
                &["url"],
            ),
        )?;
        let alerts =
            AlertMetrics::register(&registry).map_err(|e| setup_error("alert families", &e))?;
        let store =
            StoreMetrics::register(&registry).map_err(|e| setup_error("store families", &e))?;
        let saves =
            SaveMetrics::register(&registry).map_err(|e| setup_error("state save family", &e))?;
        let rdns =
            RdnsMetrics::register(&registry).map_err(|e| setup_error("rdns families", &e))?;

        Ok(Self {
            registry,
            targets,
            dependencies,
            trace_duration,
            config_reload_success,
            config_reload_timestamp,
            target_count,
            report_info,
            alerts,
            store,
            saves,
            rdns,
        })
    }
}

/// Names registered without series: the registry rejects another family
/// of the same name, while the series come from elsewhere.
struct Reserved(Vec<Desc>);

impl Collector for Reserved {
    fn desc(&self) -> Vec<&Desc> {
        self.0.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

/// Registers a freshly made metric.
fn register<C>(
    registry: &Registry,
    name: &'static str,
    made: prometheus::Result<C>,
) -> Result<C, MetricsError>
where
    C: Collector + Clone + 'static,
{
    let metric = made.map_err(|e| setup_error(name, &e))?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|e| setup_error(name, &e))?;
    Ok(metric)
}

/// The descriptions a collector of `defs` registers.
fn descs(defs: &[FamilyDef]) -> Result<Vec<Desc>, MetricsError> {
    defs.iter()
        .map(|def| {
            Desc::new(
                def.name.to_string(),
                def.help.to_string(),
                def.labels.iter().map(|l| (*l).to_string()).collect(),
                HashMap::new(),
            )
            .map_err(|e| setup_error(def.name, &e))
        })
        .collect()
}

fn setup_error(name: &'static str, error: &dyn fmt::Display) -> MetricsError {
    MetricsError::Setup {
        name,
        reason: error.to_string(),
    }
}

/// The configured target name of a `target` label value: the part before
/// the first `/` (names themselves never contain one).
fn configured_name(key: &str) -> &str {
    key.split_once('/').map_or(key, |(name, _)| name)
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

/// A count as a sample value (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn count<N: TryInto<u64>>(n: N) -> f64 {
    n.try_into().unwrap_or(u64::MAX) as f64
}

// ------------------------------------------------------------ path labels

/// Whether a hop counts as located evidence: it answered, has a country,
/// its round-trip time does not rule that country out, and it is not behind
/// a suspected claim.
fn is_evidence(hop: &Hop, claims: &[CountryClaim]) -> bool {
    hop.addr.is_some()
        && hop.geo.country.is_some()
        && hop.geo.plausible != Some(false)
        && !claims
            .iter()
            .any(|c| c.suspected && Some(c.country) == hop.geo.country && c.ttls.contains(&hop.ttl))
}

/// Evidence hops per country.
fn evidence_counts(hops: &[Hop], claims: &[CountryClaim]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for hop in hops.iter().filter(|h| is_evidence(h, claims)) {
        if let Some(country) = hop.geo.country {
            *counts.entry(country.as_str().to_string()).or_default() += 1;
        }
    }
    counts
}

fn country_label(hop: &Hop) -> String {
    hop.geo
        .country
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

fn hop_info_labels(hops: &[Hop]) -> Vec<HopInfoLabels> {
    hops.iter()
        .filter_map(|hop| {
            let addr = hop.addr?;
            Some([
                hop.ttl.to_string(),
                addr.to_string(),
                country_label(hop),
                hop.geo.asn.map(|a| a.to_string()).unwrap_or_default(),
            ])
        })
        .collect()
}

fn hop_location_labels(hops: &[Hop]) -> Vec<HopLocationLabels> {
    hops.iter()
        .filter_map(|hop| {
            let (lat, lon) = (hop.geo.lat?, hop.geo.lon?);
            if hop.addr.is_none() || !lat.is_finite() || !lon.is_finite() {
                return None;
            }
            Some([
                hop.ttl.to_string(),
                lat.to_string(),
                lon.to_string(),
                country_label(hop),
            ])
        })
        .collect()
}

/// The best round-trip time, in ms, of the hop that answered from the
/// target's address, or else of the last hop that answered at all.
fn destination_rtt_ms(record: &TraceRecord) -> Option<f64> {
    let trace = &record.trace;
    trace
        .destination_hop()
        .filter(|h| h.rtt_ms.is_some())
        .or_else(|| trace.hops.iter().rev().find(|h| h.rtt_ms.is_some()))
        .and_then(|h| h.rtt_ms)
        .map(|r| r.best)
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Metrics>();
    }

    #[test]
    fn every_family_sets_up_and_build_info_renders() {
        let metrics = Metrics::try_new("1.2.3").unwrap();
        let text = metrics.render().unwrap();
        assert!(text.contains("transitwatch_build_info{version=\"1.2.3\"} 1\n"));
    }

    #[test]
    fn classes_are_listed_in_label_order() {
        let names: Vec<&str> = CLASSES.iter().map(|c| c.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), VerdictClass::ALL.len());
        let mut outcomes = OUTCOMES;
        outcomes.sort_unstable();
        assert_eq!(outcomes, OUTCOMES);
    }

    #[test]
    fn a_multipath_enumeration_replaces_the_last_ones_series() {
        use crate::analysis::multipath::{multipath, Enumeration};
        use crate::model::multipath::MultipathStop;
        let metrics = Metrics::try_new("t").unwrap();
        let home = crate::alert::rules::tests::record(VerdictClass::Domestic, false, &["LS"], "t1");
        let via_za = crate::alert::rules::tests::record(
            VerdictClass::ForeignTransit,
            true,
            &["LS", "ZA", "LS"],
            "t1",
        );
        let run = Enumeration {
            started_at: home.trace.started_at,
            port: 33434,
            flows: 11,
            silent_flows: 0,
            stop: MultipathStop::Confident,
        };
        let two = multipath(run, &[(vec![40_000], home.clone()), (vec![40_001], via_za)]);
        metrics.observe("gov", &home, false, Duration::from_millis(5), 1.0);
        metrics.set_multipath("gov", &two);
        let text = metrics.render().unwrap();
        for line in [
            "transitwatch_multipath_paths{target=\"gov\"} 2",
            "transitwatch_multipath_flows{target=\"gov\"} 11",
            "transitwatch_multipath_foreign_paths{target=\"gov\",country=\"ZA\",name=\"South Africa\"} 1",
            "transitwatch_multipath_violating_paths{target=\"gov\",country=\"ZA\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Another trace keeps the enumeration; the next one replaces it.
        metrics.observe("gov", &home, false, Duration::from_millis(5), 2.0);
        assert!(metrics
            .render()
            .unwrap()
            .contains("transitwatch_multipath_paths{target=\"gov\"} 2"));
        metrics.set_multipath("gov", &multipath(run, &[(vec![40_000], home)]));
        let text = metrics.render().unwrap();
        assert!(text.contains("transitwatch_multipath_paths{target=\"gov\"} 1"));
        assert!(
            !text.contains("transitwatch_multipath_foreign_paths{"),
            "{text}"
        );
    }

    #[test]
    fn family_indices_match_names() {
        let at = |i: usize| TARGET_FAMILIES[i].name;
        assert_eq!(at(VERDICT), "transitwatch_path_verdict");
        assert_eq!(at(TRANSIT), "transitwatch_path_transit_country");
        assert_eq!(at(CHANGES), "transitwatch_path_changes_total");
        assert_eq!(at(RATIO), "transitwatch_country_dependency_ratio");
        assert_eq!(at(HOP_INFO), "transitwatch_hop_info");
        assert_eq!(at(HOP_LOCATION), "transitwatch_hop_location");
        assert_eq!(at(RUNS), "transitwatch_trace_runs_total");
        assert_eq!(at(RTT), "transitwatch_path_rtt_seconds");
        assert_eq!(at(HOPS), "transitwatch_path_hops");
        assert_eq!(at(VIOLATION), "transitwatch_path_violation");
        assert_eq!(at(REACHED), "transitwatch_path_reached");
        assert_eq!(at(LAST_TRACE), "transitwatch_last_trace_timestamp_seconds");
        assert_eq!(
            at(LAST_ERROR),
            "transitwatch_last_trace_error_timestamp_seconds"
        );
        assert_eq!(at(DATABASES), "transitwatch_geoip_database_info");
        assert_eq!(at(CONFIDENCE), "transitwatch_path_confidence");
        assert_eq!(at(SUSPECTED), "transitwatch_path_suspected_countries");
        assert_eq!(at(MULTIPATH_PATHS), "transitwatch_multipath_paths");
        assert_eq!(at(MULTIPATH_FLOWS), "transitwatch_multipath_flows");
        assert_eq!(
            at(MULTIPATH_FOREIGN),
            "transitwatch_multipath_foreign_paths"
        );
        assert_eq!(
            at(MULTIPATH_VIOLATING),
            "transitwatch_multipath_violating_paths"
        );
        assert_eq!(OUTCOMES[ERROR], "error");
        assert_eq!(OUTCOMES[REACHED_RUN], "reached");
        assert_eq!(OUTCOMES[UNREACHED_RUN], "unreached");
    }

    #[test]
    fn geoip_databases_are_replaced_as_a_whole() {
        let metrics = Metrics::try_new("t").unwrap();
        let db = |t: &str, epoch| DatabaseInfo {
            path: "/x.mmdb".into(),
            database_type: t.to_string(),
            schema: crate::geo::Schema::MaxMindCity,
            build_epoch: epoch,
            ip_version: 6,
            node_count: 1,
            vendor: "MaxMind",
            sha256: "00".repeat(32),
        };
        metrics.set_geoip_databases(&[db("GeoLite2-City", 1), db("GeoLite2-City", 1)]);
        let text = metrics.render().unwrap();
        assert_eq!(text.matches("transitwatch_geoip_database_info{").count(), 1);
        metrics.set_geoip_databases(&[db("DBIP-City-Lite", 2)]);
        let text = metrics.render().unwrap();
        assert!(!text.contains("GeoLite2-City"));
        assert!(text.contains(
            "transitwatch_geoip_database_info{kind=\"city\",type=\"DBIP-City-Lite\",build_epoch=\"2\"} 1"
        ));
    }
}
