//! From evidence to a located hop: which item decides, how sure that is, and
//! what became of every other item.
//!
//! [`decide`] is pure: the same items and context always give the same
//! [`HopGeo`]. The rule (the README's "How sure a location is" says it in
//! plain words):
//!
//! 1. **Round-trip bound.** With the vantage point's coordinates and the
//!    hop's best round-trip time, an item whose coordinates are farther away
//!    than light in fibre covers in half that time (plus the item's own
//!    accuracy radius) is `rejected`. Items with a country only cannot be
//!    checked. An item that names no country is `rejected` too.
//! 2. **Choice.** The strongest item left decides, in the order override >
//!    geofeed > exchange LAN (ixp) > host name > database > registration;
//!    among items of one kind, the first given.
//! 3. **Round-trip confirmation.** When the bound is tight (the hop is at
//!    most [`CONFIRM_RADIUS_KM`] away) and an item agreeing with the choice
//!    lies inside it, the round-trip time counts as one more kind of
//!    evidence agreeing.
//! 4. **Confidence.** Count the kinds agreeing on the chosen country
//!    (distinct [`EvidenceKind`]s, plus the round-trip confirmation):
//!    - an override: `high` (the operator's own statement);
//!    - two or more kinds, at least one of them strong (geofeed, ixp, host
//!      name): `high`;
//!    - one strong kind alone, or a database confirmed by a weak kind
//!      (registration, round-trip time): `medium`;
//!    - a database or a registration country alone: `low`.
//!
//!    An unrejected item that names another country and is of a kind at
//!    least as strong as the chosen one lowers the confidence one level
//!    (not below `low`; never for an override).
//! 5. **Nothing left.** When every item that names a country is rejected,
//!    the strongest of them still gives the location fields, with
//!    `plausible: false` and no confidence: the hop is no evidence, and the
//!    analysis lists its country as suspect, as for any implausible hop.
//!
//! Every item gets a status (`chosen`, `agrees`, `disagrees`, `rejected`)
//! and a plain reason.
//!
//! [`hostname_evidence`] turns a location hint read in a host name into an
//! item of kind [`EvidenceKind::Hostname`].

use super::plausibility::{check_hop, great_circle_km, min_rtt_ms, valid_coordinates};
use super::plausibility::{plausibility, FIBER_KM_PER_MS};
use crate::model::{
    Confidence, Coordinates, CountryCode, Evidence, EvidenceKind, EvidenceStatus, GeoSource, HopGeo,
};

/// The round-trip bound confirms a location when it puts the hop within
/// this many km of the vantage point (a 5 ms round trip in fibre).
pub const CONFIRM_RADIUS_KM: f64 = 500.0;

/// What [`decide`] knows about the hop besides the evidence: where the
/// measurement starts and how fast the hop answered.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HopContext {
    /// The vantage point's coordinates, when configured.
    pub vantage: Option<Coordinates>,
    /// The hop's best round-trip time, in ms.
    pub best_rtt_ms: Option<f64>,
    /// The best round-trip time of the nearest earlier hop that answered,
    /// in ms (for the reason of the chosen item: a jump is a long link).
    pub previous_best_rtt_ms: Option<f64>,
}

impl HopContext {
    /// The vantage point and round-trip time, when both are usable.
    fn bound(&self) -> Option<(Coordinates, f64)> {
        let vantage = self.vantage.filter(|v| valid_coordinates(*v))?;
        let rtt = self.best_rtt_ms.filter(|r| r.is_finite() && *r >= 0.0)?;
        Some((vantage, rtt))
    }
}

/// The [`GeoSource`] of a hop decided by an item of `kind`.
#[must_use]
pub const fn source_of(kind: EvidenceKind) -> GeoSource {
    match kind {
        EvidenceKind::Override => GeoSource::Override,
        EvidenceKind::Geofeed => GeoSource::Geofeed,
        EvidenceKind::Ixp => GeoSource::Ixp,
        EvidenceKind::Hostname => GeoSource::Hostname,
        EvidenceKind::Database => GeoSource::Mmdb,
        EvidenceKind::Registration => GeoSource::Registration,
    }
}

/// Whether one item of `kind` alone is strong evidence.
const fn is_strong(kind: EvidenceKind) -> bool {
    matches!(
        kind,
        EvidenceKind::Override | EvidenceKind::Geofeed | EvidenceKind::Ixp | EvidenceKind::Hostname
    )
}

/// How an item is named in reasons.
fn kind_phrase(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::Override => "the operator's override",
        EvidenceKind::Geofeed => "the geofeed",
        EvidenceKind::Ixp => "the exchange LAN",
        EvidenceKind::Hostname => "the host name",
        EvidenceKind::Database => "the database",
        EvidenceKind::Registration => "the registration country",
    }
}

fn country_name(c: CountryCode) -> &'static str {
    c.name().unwrap_or("an unknown country")
}

/// The item's place for a sentence: its city, else its country's name.
fn place(item: &Evidence) -> String {
    match (&item.city, item.country) {
        (Some(city), _) => city.clone(),
        (None, Some(c)) => country_name(c).to_string(),
        (None, None) => "its place".to_string(),
    }
}

/// `9752` → "9,752".
fn thousands(km: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // rounded, >= 0
    let n = km.max(0.0).round() as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn coordinates(item: &Evidence) -> Option<Coordinates> {
    let c = Coordinates {
        lat: item.lat?,
        lon: item.lon?,
    };
    valid_coordinates(c).then_some(c)
}

/// Why the round-trip time rules `item` out, or `None` when it does not
/// (or cannot be checked).
fn rtt_rejection(item: &Evidence, ctx: &HopContext) -> Option<String> {
    let (vantage, rtt) = ctx.bound()?;
    let at = coordinates(item)?;
    let radius = item.accuracy_km.map_or(0.0, f64::from);
    if plausibility(vantage, at, radius, rtt) {
        return None;
    }
    let distance = (great_circle_km(vantage, at) - radius).max(0.0);
    let within = if radius > 0.0 {
        " (less its accuracy radius)"
    } else {
        ""
    };
    Some(format!(
        "answers in {rtt:.1} ms: {} is {} km away{within}, at least {:.1} ms",
        place(item),
        thousands(distance),
        min_rtt_ms(distance)
    ))
}

/// Whether the round-trip bound is tight and `item` lies inside it.
fn rtt_confirms(item: &Evidence, ctx: &HopContext) -> bool {
    rtt_confirms_at(coordinates(item), item.accuracy_km, ctx)
}

/// Whether the round-trip bound is tight and a place at `at` (within
/// `accuracy_km`) lies inside it.
fn rtt_confirms_at(at: Option<Coordinates>, accuracy_km: Option<u32>, ctx: &HopContext) -> bool {
    let (Some((vantage, rtt)), Some(at)) = (ctx.bound(), at) else {
        return false;
    };
    let radius = rtt / 2.0 * FIBER_KM_PER_MS;
    radius <= CONFIRM_RADIUS_KM
        && plausibility(vantage, at, accuracy_km.map_or(0.0, f64::from), rtt)
}

/// The kind of evidence behind a hop decided by `source`.
#[must_use]
pub const fn kind_of(source: GeoSource) -> Option<EvidenceKind> {
    match source {
        GeoSource::Override => Some(EvidenceKind::Override),
        GeoSource::Geofeed => Some(EvidenceKind::Geofeed),
        GeoSource::Ixp => Some(EvidenceKind::Ixp),
        GeoSource::Hostname => Some(EvidenceKind::Hostname),
        GeoSource::Mmdb => Some(EvidenceKind::Database),
        GeoSource::Registration => Some(EvidenceKind::Registration),
        GeoSource::None => None,
    }
}

/// The kind of evidence behind a located hop: as [`kind_of`] its source,
/// except that a database built from the operator's overrides
/// ([`super::BUILD_DATABASE_TYPE`]) is the operator's statement.
#[must_use]
pub fn kind_of_geo(geo: &HopGeo) -> Option<EvidenceKind> {
    if geo.source == GeoSource::Mmdb && geo.database.as_deref() == Some(super::BUILD_DATABASE_TYPE)
    {
        return Some(EvidenceKind::Override);
    }
    kind_of(geo.source)
}

/// The one evidence item a location from a single source stands for;
/// `None` when it names no country.
#[must_use]
pub fn single_item(geo: &HopGeo) -> Option<Evidence> {
    geo.country?;
    Some(Evidence {
        kind: kind_of_geo(geo)?,
        source: geo.database.clone().unwrap_or_default(),
        country: geo.country,
        city: geo.city.clone(),
        lat: geo.lat,
        lon: geo.lon,
        accuracy_km: geo.accuracy_km,
        detail: None,
        status: EvidenceStatus::Agrees,
        reason: None,
    })
}

/// [`decide`] for a hop that only one source locates, without building its
/// evidence list: `geo` is that source's location; its `plausible` and
/// `confidence` are set exactly as [`decide`] sets them, and `evidence`
/// stays empty (`source` and `database` already say everything). This is
/// the common case, and it allocates nothing.
pub fn decide_single(geo: &mut HopGeo, ctx: &HopContext) {
    geo.plausible = check_hop(ctx.vantage, geo, ctx.best_rtt_ms);
    geo.confidence = match (geo.country, kind_of_geo(geo)) {
        (Some(_), Some(kind)) if geo.plausible != Some(false) => {
            let confirmed = rtt_confirms_at(coordinates_of(geo), geo.accuracy_km, ctx);
            Some(confidence(kind, &[kind], confirmed, false))
        }
        _ => None,
    };
}

/// The confidence of a location whose deciding item is of kind `chosen`,
/// given the distinct kinds agreeing with it (the chosen one included),
/// whether the round-trip time confirms it, and whether an item at least as
/// strong as the chosen one names another country.
#[must_use]
pub fn confidence(
    chosen: EvidenceKind,
    agreeing: &[EvidenceKind],
    rtt_confirmed: bool,
    strong_conflict: bool,
) -> Confidence {
    if chosen == EvidenceKind::Override {
        return Confidence::High;
    }
    let mut kinds = agreeing.len() + usize::from(rtt_confirmed);
    if !agreeing.contains(&chosen) {
        kinds += 1;
    }
    let strong = is_strong(chosen) || agreeing.iter().any(|k| is_strong(*k));
    let level = match (kinds, strong) {
        (2.., true) => Confidence::High,
        (_, true) | (2.., false) => Confidence::Medium,
        _ => Confidence::Low,
    };
    if strong_conflict {
        match level {
            Confidence::High => Confidence::Medium,
            Confidence::Medium | Confidence::Low => Confidence::Low,
        }
    } else {
        level
    }
}

/// The location of one hop from every item of evidence about its address.
/// See the module documentation for the rule.
#[must_use]
pub fn decide(mut items: Vec<Evidence>, ctx: &HopContext) -> HopGeo {
    // 1. Ruled out: no country, or beyond the round-trip bound.
    let mut ruled_out = vec![false; items.len()];
    for (item, out) in items.iter_mut().zip(ruled_out.iter_mut()) {
        let why = if item.country.is_none() {
            Some("names no country".to_string())
        } else {
            rtt_rejection(item, ctx)
        };
        if let Some(why) = why {
            item.status = EvidenceStatus::Rejected;
            item.reason = Some(why);
            *out = true;
        }
    }
    // 2. The strongest item left; among equals, the first.
    let strongest = |allowed: &dyn Fn(usize) -> bool| {
        (0..items.len())
            .filter(|&i| allowed(i) && items[i].country.is_some())
            .min_by_key(|&i| (items[i].kind, i))
    };
    let Some(chosen) = strongest(&|i| !ruled_out[i]) else {
        // 5. Every located item is rejected: keep the strongest one's place,
        // marked implausible, so the hop is listed as suspect.
        let mut geo = strongest(&|_| true).map_or_else(HopGeo::default, |i| location(&items[i]));
        if geo.country.is_some() && ctx.bound().is_some() && coordinates_of(&geo).is_some() {
            geo.plausible = Some(false);
        }
        geo.evidence = items;
        return geo;
    };
    let country = items[chosen].country;
    let chosen_kind = items[chosen].kind;
    // 3. and 4.
    let mut agreeing: Vec<EvidenceKind> = Vec::with_capacity(items.len());
    let mut rtt_confirmed = false;
    let mut strong_conflict = false;
    for (i, item) in items.iter().enumerate() {
        if ruled_out[i] {
            continue;
        }
        if item.country == country {
            if !agreeing.contains(&item.kind) {
                agreeing.push(item.kind);
            }
            rtt_confirmed |= rtt_confirms(item, ctx);
        } else if item.kind <= chosen_kind {
            strong_conflict = true;
        }
    }
    let level = confidence(chosen_kind, &agreeing, rtt_confirmed, strong_conflict);
    let chosen_phrase = kind_phrase(chosen_kind);
    let chosen_source = items[chosen].source.clone();
    for (i, item) in items.iter_mut().enumerate() {
        if ruled_out[i] {
            continue;
        }
        let (status, reason) = if i == chosen {
            (
                EvidenceStatus::Chosen,
                chosen_reason(item, ctx, rtt_confirmed),
            )
        } else if item.country == country {
            (
                EvidenceStatus::Agrees,
                format!(
                    "also says {}",
                    country.map_or("the same country", country_name)
                ),
            )
        } else {
            let what = item.country.map_or("another country", country_name);
            let why = if item.kind == chosen_kind {
                format!("says {what}, against {chosen_source} of the same kind, which comes first")
            } else {
                format!("says {what}, but {chosen_phrase} ({chosen_source}) is stronger evidence")
            };
            (EvidenceStatus::Disagrees, why)
        };
        item.status = status;
        item.reason = Some(reason);
    }
    let mut geo = location(&items[chosen]);
    geo.plausible = check_hop(ctx.vantage, &geo, ctx.best_rtt_ms);
    geo.confidence = Some(level);
    geo.evidence = items;
    geo
}

fn coordinates_of(geo: &HopGeo) -> Option<Coordinates> {
    let c = Coordinates {
        lat: geo.lat?,
        lon: geo.lon?,
    };
    valid_coordinates(c).then_some(c)
}

/// Why the chosen item decides.
fn chosen_reason(item: &Evidence, ctx: &HopContext, rtt_confirmed: bool) -> String {
    let mut s = format!(
        "{} is the strongest evidence not ruled out",
        kind_phrase(item.kind)
    );
    if rtt_confirmed {
        if let Some(rtt) = ctx.best_rtt_ms {
            s.push_str(&format!(
                "; answering in {rtt:.1} ms, the hop is within {} km, as {} is",
                thousands(rtt / 2.0 * FIBER_KM_PER_MS),
                place(item)
            ));
        }
    }
    if let (Some(rtt), Some(before)) = (ctx.best_rtt_ms, ctx.previous_best_rtt_ms) {
        let jump = rtt - before;
        if jump >= 1.0 {
            s.push_str(&format!(
                "; it answers {jump:.0} ms later than the hop before (a long link)"
            ));
        }
    }
    s
}

/// The location fields of a hop decided by `item`.
fn location(item: &Evidence) -> HopGeo {
    HopGeo {
        country: item.country,
        city: item.city.clone(),
        lat: item.lat,
        lon: item.lon,
        accuracy_km: item.accuracy_km,
        source: source_of(item.kind),
        database: Some(item.source.clone()),
        ..HopGeo::default()
    }
}

/// How far from the named city's (or airport's) coordinates a router with
/// that code in its name may be, in km: a metropolitan area and its
/// airport (Narita is 60 km from Tokyo).
pub const HOSTNAME_ACCURACY_KM: u32 = 75;

/// A location hint read in a host name: the fields of the hint table's
/// `Hint`, which replaces this type once both are in one tree.
#[derive(Debug, Clone, PartialEq)]
pub struct HostnameHint {
    /// The country the hint places the name in.
    pub country: CountryCode,
    /// The city, when the hint names one.
    pub city: Option<String>,
    /// The city's coordinates, when known.
    pub coords: Option<Coordinates>,
    /// The code as written in the name (`jnb`, `zajnb`, `maseru`).
    pub code: String,
    /// What the code is, in words: "IATA code", "UN/LOCODE", "CLLI code",
    /// "city name", "country label", "operator rule".
    pub kind_name: &'static str,
    /// The operator rule's domain suffix, when one matched.
    pub rule: Option<String>,
}

/// One hint of `name` as an evidence item (kind `hostname`, source `ptr`
/// or the operator rule's suffix, detail "NAME: `code` is the IATA code of
/// CITY").
#[must_use]
pub fn hostname_evidence(name: &str, hint: &HostnameHint) -> Evidence {
    let place = hint
        .city
        .clone()
        .unwrap_or_else(|| country_name(hint.country).to_string());
    Evidence {
        kind: EvidenceKind::Hostname,
        source: hint.rule.clone().unwrap_or_else(|| "ptr".to_string()),
        country: Some(hint.country),
        city: hint.city.clone(),
        lat: hint.coords.map(|c| c.lat),
        lon: hint.coords.map(|c| c.lon),
        // A code names a city or its airport, not the building: the router
        // may be anywhere in the metropolitan area.
        accuracy_km: hint.coords.map(|_| HOSTNAME_ACCURACY_KM),
        detail: Some(format!(
            "{name}: `{}` is the {} of {place}",
            hint.code, hint.kind_name
        )),
        status: EvidenceStatus::Agrees,
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASERU: Coordinates = Coordinates {
        lat: -29.31,
        lon: 27.48,
    };
    const DUBLIN: (f64, f64) = (53.35, -6.26);
    const JOHANNESBURG: (f64, f64) = (-26.2041, 28.0473);
    const MASERU_AT: (f64, f64) = (-29.31, 27.48);

    /// One item of a table row: kind, country, coordinates.
    type Item = (EvidenceKind, Option<&'static str>, Option<(f64, f64)>);

    /// One row: what the sources say, the round-trip time, and what must
    /// come out.
    struct Case {
        name: &'static str,
        items: &'static [Item],
        rtt: Option<f64>,
        country: Option<&'static str>,
        source: GeoSource,
        confidence: Option<Confidence>,
        plausible: Option<bool>,
        statuses: &'static [EvidenceStatus],
    }

    use Confidence::{High, Low, Medium};
    use EvidenceKind::{Database, Geofeed, Hostname, Ixp, Override, Registration};
    use EvidenceStatus::{Agrees, Chosen, Disagrees, Rejected};

    const CASES: &[Case] = &[
        Case {
            name: "missing: no source says anything",
            items: &[],
            rtt: Some(0.4),
            country: None,
            source: GeoSource::None,
            confidence: None,
            plausible: None,
            statuses: &[],
        },
        Case {
            name: "missing: a source that names no country",
            items: &[(Database, None, None)],
            rtt: Some(0.4),
            country: None,
            source: GeoSource::None,
            confidence: None,
            plausible: None,
            statuses: &[Rejected],
        },
        Case {
            name: "a database alone is low",
            items: &[(Database, Some("ZA"), None)],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Mmdb,
            confidence: Some(Low),
            plausible: None,
            statuses: &[Chosen],
        },
        Case {
            name: "a registration country alone is low",
            items: &[(Registration, Some("ZA"), None)],
            rtt: Some(20.0),
            country: Some("ZA"),
            source: GeoSource::Registration,
            confidence: Some(Low),
            plausible: None,
            statuses: &[Chosen],
        },
        Case {
            name: "an override alone is high",
            items: &[(Override, Some("LS"), None)],
            rtt: None,
            country: Some("LS"),
            source: GeoSource::Override,
            confidence: Some(High),
            plausible: None,
            statuses: &[Chosen],
        },
        Case {
            name: "a host name alone is medium",
            items: &[(Hostname, Some("ZA"), Some(JOHANNESBURG))],
            rtt: Some(30.0),
            country: Some("ZA"),
            source: GeoSource::Hostname,
            confidence: Some(Medium),
            plausible: Some(true),
            statuses: &[Chosen],
        },
        Case {
            name: "a geofeed alone is medium; so is an exchange LAN",
            items: &[(Geofeed, Some("ZA"), None)],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Geofeed,
            confidence: Some(Medium),
            plausible: None,
            statuses: &[Chosen],
        },
        Case {
            name: "an exchange LAN alone is medium",
            items: &[(Ixp, Some("LS"), Some(MASERU_AT))],
            rtt: Some(50.0),
            country: Some("LS"),
            source: GeoSource::Ixp,
            confidence: Some(Medium),
            plausible: Some(true),
            statuses: &[Chosen],
        },
        Case {
            name: "agreeing: host name and database",
            items: &[
                (Database, Some("ZA"), Some(JOHANNESBURG)),
                (Hostname, Some("ZA"), Some(JOHANNESBURG)),
            ],
            rtt: Some(30.0),
            country: Some("ZA"),
            source: GeoSource::Hostname,
            confidence: Some(High),
            plausible: Some(true),
            statuses: &[Agrees, Chosen],
        },
        Case {
            name: "agreeing: database and registration are medium",
            items: &[
                (Database, Some("ZA"), None),
                (Registration, Some("ZA"), None),
            ],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Mmdb,
            confidence: Some(Medium),
            plausible: None,
            statuses: &[Chosen, Agrees],
        },
        Case {
            name: "agreeing: two databases are still one kind",
            items: &[(Database, Some("ZA"), None), (Database, Some("ZA"), None)],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Mmdb,
            confidence: Some(Low),
            plausible: None,
            statuses: &[Chosen, Agrees],
        },
        Case {
            name: "RTT confirms a database: medium",
            items: &[(Database, Some("LS"), Some(MASERU_AT))],
            rtt: Some(0.4),
            country: Some("LS"),
            source: GeoSource::Mmdb,
            confidence: Some(Medium),
            plausible: Some(true),
            statuses: &[Chosen],
        },
        Case {
            name: "RTT confirms a host name: high",
            items: &[(Hostname, Some("LS"), Some(MASERU_AT))],
            rtt: Some(0.4),
            country: Some("LS"),
            source: GeoSource::Hostname,
            confidence: Some(High),
            plausible: Some(true),
            statuses: &[Chosen],
        },
        Case {
            name: "a loose RTT bound confirms nothing",
            items: &[(Database, Some("ZA"), Some(JOHANNESBURG))],
            rtt: Some(6.0),
            country: Some("ZA"),
            source: GeoSource::Mmdb,
            confidence: Some(Low),
            plausible: Some(true),
            statuses: &[Chosen],
        },
        Case {
            name: "conflicting: the name says Johannesburg, the database Lesotho",
            items: &[
                (Database, Some("LS"), None),
                (Hostname, Some("ZA"), Some(JOHANNESBURG)),
            ],
            rtt: Some(6.0),
            country: Some("ZA"),
            source: GeoSource::Hostname,
            confidence: Some(Medium),
            plausible: Some(true),
            statuses: &[Disagrees, Chosen],
        },
        Case {
            name: "conflicting: two databases disagree, the first decides, still low",
            items: &[(Database, Some("ZA"), None), (Database, Some("MZ"), None)],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Mmdb,
            confidence: Some(Low),
            plausible: None,
            statuses: &[Chosen, Disagrees],
        },
        Case {
            name: "conflicting: two names disagree, medium drops to low",
            items: &[(Hostname, Some("ZA"), None), (Hostname, Some("MZ"), None)],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Hostname,
            confidence: Some(Low),
            plausible: None,
            statuses: &[Chosen, Disagrees],
        },
        Case {
            name: "conflicting: a geofeed and a database agree against a second geofeed",
            items: &[
                (Geofeed, Some("ZA"), None),
                (Geofeed, Some("NA"), None),
                (Database, Some("ZA"), None),
            ],
            rtt: None,
            country: Some("ZA"),
            source: GeoSource::Geofeed,
            confidence: Some(Medium),
            plausible: None,
            statuses: &[Chosen, Disagrees, Agrees],
        },
        Case {
            name: "conflicting: an override outweighs anything and stays high",
            items: &[
                (Hostname, Some("ZA"), None),
                (Override, Some("LS"), None),
                (Override, Some("ZA"), None),
            ],
            rtt: None,
            country: Some("LS"),
            source: GeoSource::Override,
            confidence: Some(High),
            plausible: None,
            statuses: &[Disagrees, Chosen, Disagrees],
        },
        Case {
            name: "RTT-rejected: database in Dublin at 0.4 ms, nothing else: suspect",
            items: &[(Database, Some("IE"), Some(DUBLIN))],
            rtt: Some(0.4),
            country: Some("IE"),
            source: GeoSource::Mmdb,
            confidence: None,
            plausible: Some(false),
            statuses: &[Rejected],
        },
        Case {
            name: "RTT-rejected database, the name and RTT say Maseru: high",
            items: &[
                (Database, Some("IE"), Some(DUBLIN)),
                (Hostname, Some("LS"), Some(MASERU_AT)),
            ],
            rtt: Some(0.4),
            country: Some("LS"),
            source: GeoSource::Hostname,
            confidence: Some(High),
            plausible: Some(true),
            statuses: &[Rejected, Chosen],
        },
        Case {
            name: "RTT-rejected database, a country-only registration is left: low",
            items: &[
                (Database, Some("IE"), Some(DUBLIN)),
                (Registration, Some("LS"), None),
            ],
            rtt: Some(0.4),
            country: Some("LS"),
            source: GeoSource::Registration,
            confidence: Some(Low),
            plausible: None,
            statuses: &[Rejected, Chosen],
        },
        Case {
            name: "RTT-rejected name does not lower the database it contradicts",
            items: &[
                (Database, Some("LS"), Some(MASERU_AT)),
                (Hostname, Some("IE"), Some(DUBLIN)),
            ],
            rtt: Some(0.4),
            country: Some("LS"),
            source: GeoSource::Mmdb,
            confidence: Some(Medium),
            plausible: Some(true),
            statuses: &[Chosen, Rejected],
        },
        Case {
            name: "RTT-rejected: every item, the strongest keeps the place",
            items: &[
                (Database, Some("IE"), Some(DUBLIN)),
                (Hostname, Some("ZA"), Some(JOHANNESBURG)),
            ],
            rtt: Some(0.4),
            country: Some("ZA"),
            source: GeoSource::Hostname,
            confidence: None,
            plausible: Some(false),
            statuses: &[Rejected, Rejected],
        },
        Case {
            name: "without an RTT nothing is rejected or confirmed",
            items: &[
                (Database, Some("IE"), Some(DUBLIN)),
                (Hostname, Some("LS"), Some(MASERU_AT)),
            ],
            rtt: None,
            country: Some("LS"),
            source: GeoSource::Hostname,
            confidence: Some(Medium),
            plausible: None,
            statuses: &[Disagrees, Chosen],
        },
    ];

    fn item(&(kind, country, at): &Item) -> Evidence {
        Evidence {
            kind,
            source: kind.as_str().to_string(),
            country: country.map(|c| c.parse().unwrap()),
            city: None,
            lat: at.map(|a| a.0),
            lon: at.map(|a| a.1),
            accuracy_km: None,
            detail: None,
            status: EvidenceStatus::Agrees,
            reason: None,
        }
    }

    #[test]
    fn the_rule_table() {
        for case in CASES {
            let ctx = HopContext {
                vantage: Some(MASERU),
                best_rtt_ms: case.rtt,
                previous_best_rtt_ms: None,
            };
            let geo = decide(case.items.iter().map(item).collect(), &ctx);
            let name = case.name;
            assert_eq!(
                geo.country.map(|c| c.to_string()).as_deref(),
                case.country,
                "{name}"
            );
            assert_eq!(geo.source, case.source, "{name}");
            assert_eq!(geo.confidence, case.confidence, "{name}");
            assert_eq!(geo.plausible, case.plausible, "{name}");
            let statuses: Vec<EvidenceStatus> = geo.evidence.iter().map(|e| e.status).collect();
            assert_eq!(statuses, case.statuses, "{name}");
            for e in &geo.evidence {
                assert!(e.reason.as_deref().is_some_and(|r| !r.is_empty()), "{name}");
            }
            if case.country.is_some() {
                let chosen = geo
                    .evidence
                    .iter()
                    .filter(|e| e.status != Rejected)
                    .min_by_key(|e| e.kind);
                if let Some(chosen) = chosen {
                    assert_eq!(geo.database.as_deref(), Some(chosen.source.as_str()));
                }
            }
        }
    }

    #[test]
    fn every_combination_of_kind_and_outcome_is_in_the_table() {
        let has = |f: &dyn Fn(&Case) -> bool| CASES.iter().any(f);
        assert!(has(&|c| c.items.is_empty()), "missing");
        assert!(has(&|c| c.statuses.contains(&Agrees)), "agreeing");
        assert!(has(&|c| c.statuses.contains(&Disagrees)), "conflicting");
        assert!(has(&|c| c.statuses.contains(&Rejected)), "rejected");
        assert!(has(
            &|c| c.statuses.len() > 1 && c.statuses.iter().all(|s| *s == Rejected)
        ));
        for kind in EvidenceKind::ALL {
            assert!(
                has(&|c| c.items.len() == 1 && c.items[0].0 == kind),
                "{kind} alone"
            );
        }
        for level in [Low, Medium, High] {
            assert!(has(&|c| c.confidence == Some(level)), "{level}");
        }
    }

    #[test]
    fn a_single_source_needs_no_evidence_list_and_gets_the_same_answer() {
        for case in CASES
            .iter()
            .filter(|c| c.items.len() == 1 && c.items[0].1.is_some())
        {
            for rtt in [case.rtt, None, Some(0.4), Some(3.0), Some(200.0)] {
                let ctx = HopContext {
                    vantage: Some(MASERU),
                    best_rtt_ms: rtt,
                    previous_best_rtt_ms: Some(0.1),
                };
                let full = decide(case.items.iter().map(item).collect(), &ctx);
                let mut fast = location(&item(&case.items[0]));
                decide_single(&mut fast, &ctx);
                assert_eq!(
                    fast,
                    HopGeo {
                        evidence: Vec::new(),
                        ..full
                    },
                    "{} at {rtt:?}",
                    case.name
                );
                assert_eq!(single_item(&fast).map(|e| e.kind), Some(case.items[0].0));
            }
        }
    }

    #[test]
    fn a_rejection_says_how_far_and_how_fast() {
        let ctx = HopContext {
            vantage: Some(MASERU),
            best_rtt_ms: Some(0.4),
            previous_best_rtt_ms: None,
        };
        let mut dublin = item(&(Database, Some("IE"), Some(DUBLIN)));
        dublin.city = Some("Dublin".into());
        let geo = decide(vec![dublin], &ctx);
        assert_eq!(
            geo.evidence[0].reason.as_deref(),
            Some("answers in 0.4 ms: Dublin is 9,752 km away, at least 97.6 ms")
        );
    }

    #[test]
    fn reasons_name_the_stronger_source_and_the_long_link() {
        let ctx = HopContext {
            vantage: Some(MASERU),
            best_rtt_ms: Some(6.0),
            previous_best_rtt_ms: Some(2.0),
        };
        let mut name = item(&(Hostname, Some("ZA"), Some(JOHANNESBURG)));
        name.source = "ptr".into();
        let geo = decide(vec![item(&(Database, Some("LS"), None)), name], &ctx);
        assert_eq!(
            geo.evidence[0].reason.as_deref(),
            Some("says Lesotho, but the host name (ptr) is stronger evidence")
        );
        let chosen = geo.evidence[1].reason.as_deref().unwrap();
        assert!(
            chosen.contains("4 ms later than the hop before"),
            "{chosen}"
        );
        assert_eq!(geo.database.as_deref(), Some("ptr"));
    }

    #[test]
    fn a_hint_becomes_hostname_evidence() {
        let hint = HostnameHint {
            country: "ZA".parse().unwrap(),
            city: Some("Johannesburg".into()),
            coords: Some(Coordinates {
                lat: JOHANNESBURG.0,
                lon: JOHANNESBURG.1,
            }),
            code: "jnb".into(),
            kind_name: "IATA code",
            rule: None,
        };
        let e = hostname_evidence("ae-1.jnb1.example.net", &hint);
        assert_eq!(e.kind, Hostname);
        assert_eq!(e.source, "ptr");
        assert_eq!(e.lat, Some(JOHANNESBURG.0));
        assert_eq!(
            e.detail.as_deref(),
            Some("ae-1.jnb1.example.net: `jnb` is the IATA code of Johannesburg")
        );
        let ruled = HostnameHint {
            rule: Some("example.net".into()),
            city: None,
            ..hint
        };
        let e = hostname_evidence("x.example.net", &ruled);
        assert_eq!(e.source, "example.net");
        assert!(e.detail.unwrap().ends_with("of South Africa"));
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(9752.1), "9,752");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-3.0), "0");
    }
}
