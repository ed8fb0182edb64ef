//! The core step: trace → enrich → analyze, and the databases it needs.
//!
//! This is the middle layer. The daemon and the one-shot commands sit
//! above it and call it; below it are the pieces it joins: `probe`
//! measures a [`Trace`], `reverse_dns` names its hops, [`crate::geo`] locates them, [`crate::analysis`]
//! judges the path, and [`crate::model`] carries the result as a
//! [`TraceRecord`]. Nothing here knows about command lines, exit codes,
//! signals or schedules, and nothing below imports this module.
//!
//! A [`Pipeline`] holds what every judgement of a run shares: the opened
//! geolocation sources (databases and overrides) and the vantage point's
//! coordinates for the plausibility check. The [`Policy`] (home and allowed
//! countries) is given per trace, as it differs per target or per vantage
//! point. The free functions ([`judge`], [`judge_cached`], [`open_geo`],
//! [`probe_settings`]) are the same steps for callers that keep the
//! databases themselves, as the daemon does across reloads.

use crate::analysis::{self, Policy};
use crate::config::{Config, ProbeConfig};
use crate::geo::{self, GeoDb, GeoError, GeoSources, LocateCache};
use crate::model::{Coordinates, Protocol, Trace, TraceRecord};
use crate::probe::{ProbeError, ProbeSettings, Prober, TraceRequest};
use crate::reverse_dns::ReverseDns;
use std::path::{Path, PathBuf};

/// Why the pipeline could not open its sources or measure a trace.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A geolocation database or overrides file cannot be used.
    #[error(transparent)]
    Geo(#[from] GeoError),
    /// The trace could not be measured at all.
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// Trace → enrich → analyze with one set of opened geolocation sources.
#[derive(Debug)]
pub struct Pipeline {
    geo: GeoDb,
    vantage_at: Option<Coordinates>,
    names: Option<ReverseDns>,
}

impl Pipeline {
    /// A pipeline over already opened sources; `vantage_at` enables the
    /// speed-of-light plausibility check of every located hop.
    #[must_use]
    pub const fn new(geo: GeoDb, vantage_at: Option<Coordinates>) -> Self {
        Self {
            geo,
            vantage_at,
            names: None,
        }
    }

    /// Opens the geolocation sources as [`open_geo`] does, without vantage
    /// coordinates (see [`Pipeline::with_vantage_at`]).
    ///
    /// # Errors
    /// A database or overrides file that cannot be used.
    pub fn open(
        config: Option<&Config>,
        files: &[PathBuf],
        overrides: Option<&Path>,
    ) -> Result<Self, PipelineError> {
        Ok(Self::new(open_geo(config, files, overrides)?, None))
    }

    /// The same sources, judged from `vantage_at`.
    #[must_use]
    pub const fn with_vantage_at(mut self, vantage_at: Option<Coordinates>) -> Self {
        self.vantage_at = vantage_at;
        self
    }

    /// Hops of measured traces get their reverse DNS names from `names`
    /// (none: no names are looked up).
    #[must_use]
    pub(crate) fn with_reverse_dns(mut self, names: Option<ReverseDns>) -> Self {
        self.names = names;
        self
    }

    /// The opened geolocation sources.
    #[must_use]
    pub const fn geo(&self) -> &GeoDb {
        &self.geo
    }

    /// Where the vantage point is, when known.
    #[must_use]
    pub const fn vantage_at(&self) -> Option<Coordinates> {
        self.vantage_at
    }

    /// Locate every hop of `trace`, then classify the path under `policy`.
    #[must_use]
    pub fn judge(&self, trace: Trace, policy: &Policy) -> TraceRecord {
        judge(trace, &self.geo, self.vantage_at, policy)
    }

    /// [`Pipeline::judge`] for a pass over many traces: locations come
    /// through `cache`.
    #[must_use]
    pub fn judge_cached(
        &self,
        trace: Trace,
        cache: &mut LocateCache,
        policy: &Policy,
    ) -> TraceRecord {
        judge_cached(trace, &self.geo, cache, self.vantage_at, policy)
    }

    /// The whole step: measure `request` with `prober`, name its hops (when
    /// a resolver is set, waiting at most its `max_wait`), then judge it.
    /// A destination that does not answer still gives a record (with
    /// `reached: false`).
    ///
    /// # Errors
    /// The trace could not be measured at all.
    pub async fn trace(
        &self,
        prober: &impl Prober,
        request: TraceRequest,
        policy: &Policy,
    ) -> Result<TraceRecord, PipelineError> {
        let mut trace = prober.trace(request).await?;
        if let Some(names) = &self.names {
            names.name_hops(&mut trace).await;
        }
        Ok(self.judge(trace, policy))
    }
}

/// The one path from a measured trace to a record, shared by every command
/// that produces records and by the daemon: locate every hop, then classify
/// the path.
#[must_use]
pub fn judge(
    mut trace: Trace,
    geo: &GeoDb,
    vantage_at: Option<Coordinates>,
    policy: &Policy,
) -> TraceRecord {
    geo::enrich(&mut trace, geo, vantage_at);
    let verdict = analysis::analyze(&trace, policy);
    TraceRecord::new(trace, verdict)
}

/// The record's multipath part: every load-balanced path an enumeration
/// found, located and judged as a trace of its own under `policy`, and the
/// share of them crossing each foreign country.
#[must_use]
pub fn judge_multipath(
    found: &crate::probe::multipath::Enumerated,
    geo: &GeoDb,
    vantage_at: Option<Coordinates>,
    policy: &Policy,
) -> crate::model::multipath::Multipath {
    let paths: Vec<(Vec<u16>, TraceRecord)> = found
        .paths
        .iter()
        .map(|p| {
            (
                p.ports.clone(),
                judge(p.trace.clone(), geo, vantage_at, policy),
            )
        })
        .collect();
    let run = analysis::multipath::Enumeration {
        started_at: found.started_at,
        port: found.port,
        flows: found.flows,
        silent_flows: found.silent_flows,
        stop: found.stop,
    };
    analysis::multipath::multipath(run, &paths)
}

/// [`judge`] for a pass over many traces: locations come through `cache`.
#[must_use]
pub fn judge_cached(
    mut trace: Trace,
    geo: &GeoDb,
    cache: &mut LocateCache,
    vantage_at: Option<Coordinates>,
    policy: &Policy,
) -> TraceRecord {
    geo::enrich_cached(&mut trace, geo, vantage_at, cache, Some(geo));
    let verdict = analysis::analyze(&trace, policy);
    TraceRecord::new(trace, verdict)
}

/// How a target is probed: the `[probe]` defaults with the target's own
/// protocol and port.
#[must_use]
pub fn probe_settings(p: &ProbeConfig, protocol: Protocol, port: Option<u16>) -> ProbeSettings {
    ProbeSettings {
        protocol,
        port,
        ..p.settings.clone()
    }
}

/// The geolocation sources: MMDB files and an overrides file given on the
/// command line replace the config's; geofeeds, the PeeringDB dump and
/// registration databases come from the config. With none, nothing is
/// located.
///
/// # Errors
/// A database, overrides, geofeed or PeeringDB file that cannot be used.
pub fn open_geo(
    config: Option<&Config>,
    files: &[PathBuf],
    overrides: Option<&Path>,
) -> Result<GeoDb, GeoError> {
    let mut sources = config.map_or_else(GeoSources::default, |c| GeoSources {
        files: c.geoip.files.clone(),
        overrides: c.geoip.overrides.clone(),
        geofeeds: c.geoip.geofeeds.clone(),
        peeringdb: c.geoip.peeringdb.clone(),
        registration: c.geoip.registration.clone(),
        hostname_rules: c.geoip.hostname_rules.clone(),
    });
    if !files.is_empty() {
        sources.files = files.to_vec();
    }
    if let Some(overrides) = overrides {
        sources.overrides = Some(overrides.to_path_buf());
    }
    if sources.is_empty() {
        return Ok(GeoDb::empty());
    }
    // Geofeeds and exchanges name a city; the shipped city table gives it
    // coordinates, so the speed-of-light bound can check them too.
    Ok(GeoDb::open_with(&sources)?
        .with_city_coordinates(|country, city| geo::HintTable::builtin().city(country, city)))
}

#[cfg(test)]
mod tests {
    use super::{Pipeline, PipelineError};
    use crate::analysis::Policy;
    use crate::model::{Trace, VantageRef};
    use crate::probe::{ProbeError, ProbeSettings, ProbeTarget, Prober, TraceRequest};
    use std::path::{Path, PathBuf};

    /// A prober that cannot trace at all.
    struct Refusing;

    impl Prober for Refusing {
        async fn trace(&self, _request: TraceRequest) -> Result<Trace, ProbeError> {
            Err(ProbeError::Settings("refused".into()))
        }

        async fn trace_flow(
            &self,
            _request: TraceRequest,
            _port: u16,
        ) -> Result<Trace, ProbeError> {
            Err(ProbeError::Settings("refused".into()))
        }
    }

    #[test]
    fn no_sources_locate_nothing_and_an_unusable_one_is_a_geo_error() {
        let pipeline = Pipeline::open(None, &[], None).unwrap();
        assert!(pipeline.geo().databases().is_empty());
        assert_eq!(pipeline.vantage_at(), None);
        let missing = Path::new("/nonexistent/overrides.csv");
        let result = Pipeline::open(None, &[PathBuf::from("/nonexistent/a.mmdb")], Some(missing));
        assert!(matches!(result, Err(PipelineError::Geo(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_trace_that_cannot_be_measured_is_a_probe_error() {
        let pipeline = Pipeline::open(None, &[], None).unwrap();
        let request = TraceRequest {
            target: ProbeTarget {
                name: "t".into(),
                host: "192.0.2.1".into(),
                addr: "192.0.2.1".parse().unwrap(),
            },
            vantage: VantageRef {
                name: "local".into(),
                country: None,
            },
            settings: ProbeSettings::default(),
            hint: None,
        };
        let result = pipeline.trace(&Refusing, request, &Policy::default()).await;
        let Err(e @ PipelineError::Probe(_)) = result else {
            panic!("{result:?}");
        };
        assert_eq!(e.to_string(), "invalid probe settings: refused");
    }
}
