//! The dependency families: what fails if a country or an operator does,
//! and per service where its name servers are, the flags of its DNS and
//! the foreign-based operators it depends on. One [`DependencyView`] of
//! ready label rows, built from a [`crate::dependency::overview::Overview`]
//! and swapped in whole: a scrape sees one overview, never a mix.
//!
//! Cardinality is bounded by the configuration, not by traffic:
//! `transitwatch_services_at_risk` has three series per country located
//! on some path and per operator of the operator table seen on some path;
//! the per-service families a few series per zone and name server (at
//! most 16 servers a zone, two zones a service).

use super::{gauge, FamilyDef, FamilyOut, MetricsError};
use crate::dependency::hosting::OperatorBase;
use crate::dependency::overview::Overview;
use crate::dependency::FailureKind;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

const AT_RISK: usize = 0;
const NAMESERVERS: usize = 1;
const FOREIGN_COUNTRY: usize = 2;
const FOREIGN_OPERATOR: usize = 3;
const PROBLEMS: usize = 4;
const FLAGGED: usize = 5;
const OPERATOR: usize = 6;

/// The families, in index order.
const FAMILIES: [FamilyDef; 7] = [
    gauge(
        "transitwatch_services_at_risk",
        &["failure_kind", "failure", "loses"],
        "Services that lose their hosting, their route or their DNS (`loses`) if a country \
         (`failure_kind=\"country\"`, `failure` its code) or an operator of the operator table \
         (`failure_kind=\"org\"`, `failure` its name) becomes unavailable, from the latest \
         paths (the figures of `transitwatch whatif`). Every country located on some path and \
         every operator seen on one has its three series.",
    ),
    gauge(
        "transitwatch_service_dns_nameservers",
        &["target", "zone", "role", "country"],
        "Name servers of a zone the service's name needs (`role` own or alias_target), by the \
         country their dependency paths locate them in (`unknown`: not traced or not located).",
    ),
    gauge(
        "transitwatch_service_dns_foreign_country",
        &["target", "zone", "country", "accepted"],
        "1 when every name server of the zone is located in this one foreign country; \
         `accepted` says whether the service names it in `accepted_countries`.",
    ),
    gauge(
        "transitwatch_service_dns_foreign_operator",
        &["target", "zone", "operator", "accepted"],
        "1 when every name server of the zone is run by this one foreign-based operator; \
         `accepted` says whether the service names it in `accepted_operators`.",
    ),
    gauge(
        "transitwatch_service_dns_problems",
        &["target"],
        "What the service's last DNS resolution could not establish (timeouts, SERVFAIL, \
         NXDOMAIN, zones without name servers, CNAME loops or over-long chains), counted.",
    ),
    gauge(
        "transitwatch_service_dns_flagged",
        &["target"],
        "1 when some zone the service's name needs has all its name servers in one foreign \
         country or run by one foreign-based operator, and that is not an accepted dependency.",
    ),
    gauge(
        "transitwatch_service_foreign_operator",
        &["target", "role", "operator", "country", "accepted"],
        "1 per foreign-based operator the service depends on: for its hosting (its \
         destination's network) or its DNS (a name server's network); `country` is where the \
         operator's parent company is based.",
    ),
];

/// Ready label rows of every dependency family.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DependencyView {
    rows: [Vec<(Vec<String>, f64)>; 7],
}

fn yes(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

impl DependencyView {
    /// The rows of `overview`, each family sorted by label values.
    #[must_use]
    pub fn of(overview: &Overview) -> Self {
        let mut v = Self::default();
        for risk in &overview.at_risk {
            let (kind, failure) = match risk.failure.kind {
                FailureKind::Country => (
                    "country",
                    risk.failure
                        .country
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                ),
                FailureKind::Org => ("org", risk.failure.org.clone().unwrap_or_default()),
                FailureKind::Asn => (
                    "asn",
                    risk.failure.asn.map(|n| n.to_string()).unwrap_or_default(),
                ),
            };
            for (loses, list) in [
                ("dns", &risk.loses_dns),
                ("hosting", &risk.loses_hosting),
                ("route", &risk.loses_route),
            ] {
                #[allow(clippy::cast_precision_loss)] // counts of services
                v.rows[AT_RISK].push((
                    vec![kind.into(), failure.clone(), loses.into()],
                    list.len() as f64,
                ));
            }
        }
        for s in &overview.services {
            let t = &s.name;
            for p in &s.hosting.paths {
                if let (Some(name), OperatorBase::ForeignBased) = (p.organisation(), p.operated_by)
                {
                    let row = vec![
                        t.clone(),
                        "hosting".into(),
                        name.to_string(),
                        p.organisation_country()
                            .map(|c| c.to_string())
                            .unwrap_or_default(),
                        yes(p.accepted),
                    ];
                    if !v.rows[OPERATOR].iter().any(|(r, _)| *r == row) {
                        v.rows[OPERATOR].push((row, 1.0));
                    }
                }
            }
            let Some(dns) = &s.dns else { continue };
            #[allow(clippy::cast_precision_loss)] // a handful of problems
            v.rows[PROBLEMS].push((vec![t.clone()], dns.problems.len() as f64));
            v.rows[FLAGGED].push((vec![t.clone()], if dns.flagged { 1.0 } else { 0.0 }));
            for zone in &dns.zones {
                let role = match zone.role {
                    crate::dependency::nameservers::ZoneRole::Own => "own",
                    crate::dependency::nameservers::ZoneRole::AliasTarget => "alias_target",
                };
                let mut by_country: HashMap<String, f64> = HashMap::new();
                for ns in &zone.nameservers {
                    let c = ns
                        .country
                        .map_or_else(|| "unknown".into(), |c| c.to_string());
                    *by_country.entry(c).or_default() += 1.0;
                    if let (Some(op), OperatorBase::ForeignBased) = (&ns.operator, ns.operated_by) {
                        let row = vec![
                            t.clone(),
                            "dns".into(),
                            op.clone(),
                            ns.operator_country
                                .map(|c| c.to_string())
                                .unwrap_or_default(),
                            yes(ns.accepted),
                        ];
                        if !v.rows[OPERATOR].iter().any(|(r, _)| *r == row) {
                            v.rows[OPERATOR].push((row, 1.0));
                        }
                    }
                }
                for (country, n) in by_country {
                    v.rows[NAMESERVERS]
                        .push((vec![t.clone(), zone.zone.clone(), role.into(), country], n));
                }
                if let Some(c) = zone.single_foreign_country {
                    v.rows[FOREIGN_COUNTRY].push((
                        vec![
                            t.clone(),
                            zone.zone.clone(),
                            c.to_string(),
                            yes(zone.accepted),
                        ],
                        1.0,
                    ));
                }
                if let Some(op) = &zone.single_foreign_operator {
                    v.rows[FOREIGN_OPERATOR].push((
                        vec![t.clone(), zone.zone.clone(), op.clone(), yes(zone.accepted)],
                        1.0,
                    ));
                }
            }
        }
        for rows in &mut v.rows {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
        }
        v
    }
}

/// The shared part of the dependency collector.
pub(super) struct DependencyTable {
    // std Mutex: held only to swap or clone the `Arc` (never across an
    // await); the daemon replaces the view whole, a scrape reads one.
    view: Mutex<Arc<DependencyView>>,
    descs: Vec<Desc>,
}

impl DependencyTable {
    pub(super) fn new() -> Result<Self, MetricsError> {
        Ok(Self {
            descs: super::descs(&FAMILIES)?,
            view: Mutex::new(Arc::default()),
        })
    }

    pub(super) fn set(&self, view: DependencyView) {
        *self.view.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(view);
    }
}

/// The [`Collector`] of the dependency families.
#[derive(Clone)]
pub(super) struct DependencyCollector(pub(super) Arc<DependencyTable>);

impl Collector for DependencyCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let view = Arc::clone(&self.0.view.lock().unwrap_or_else(PoisonError::into_inner));
        FAMILIES
            .iter()
            .zip(&view.rows)
            .map(|(def, rows)| {
                let mut out = FamilyOut::new(def);
                for (labels, value) in rows {
                    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                    out.push(&labels, *value);
                }
                out.finish()
            })
            .collect()
    }
}
