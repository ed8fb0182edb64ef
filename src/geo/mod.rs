//! Hop geolocation: which country, city and origin AS an address belongs
//! to, what every source says about it, and whether a hop's round-trip
//! time allows it to be there.
//!
//! [`GeoDb`] holds every source, each kept as its own evidence
//! ([`GeoDb::evidence`]), strongest first:
//!
//! 1. operator overrides (a CSV file, longest prefix match, [`overrides`]),
//!    and MMDBs built from them by [`build`] (database type
//!    [`BUILD_DATABASE_TYPE`]): evidence of kind `override`;
//! 2. RFC 8805 geofeeds ([`geofeed`]), in the order configured: `geofeed`;
//! 3. internet exchange LANs from a PeeringDB dump ([`peeringdb`]): `ixp`,
//!    and the exchange itself ([`GeoDb::ixp`]);
//! 4. MMDB files in the order given: `database` (or `override` for a
//!    built one). Location (country, city, coordinates, accuracy) and
//!    origin (ASN, organisation) are two field groups; for each, the first
//!    file that knows the address decides. A City file and an ASN file thus
//!    combine into one answer;
//! 5. registration-country MMDBs (whois / RIR derived): `registration`,
//!    weak evidence that never decides [`GeoDb::locate`]'s answer.
//!
//! Reserved ranges (private, shared, loopback, link-local, multicast,
//! documentation, benchmarking) are not located by known public vendors'
//! databases (GeoIP2/GeoLite2, DB-IP, IPinfo, IP2Location, ip-location-db,
//! ...), whose data there is noise; every other source — overrides,
//! geofeeds, exchange LANs, an operator's or a lab's own MMDB of any other
//! `database_type` — locates them like any address.
//!
//! [`GeoDb::locate`] answers from the first of overrides, geofeeds,
//! exchange LANs and MMDBs that locates the address (the decision with
//! confidence over all the evidence is made elsewhere).
//!
//! Each MMDB file's record layout ([`Schema`]) is detected from its metadata
//! `database_type` and the shape of its records, never configured: GeoIP2 /
//! GeoLite2 City, Country and ASN, DB-IP lite, IPinfo lite, and flat
//! `country_code` files such as ip-location-db's.
//!
//! [`enrich`] fills every hop of a [`Trace`] and runs the speed-of-light
//! [`plausibility()`] check. [`build`] writes an overrides CSV as an MMDB.
//! Types of the `maxminddb` and `mmdb-writer` crates never leave this module.
//!
//! A [`GeoDb`] is immutable after [`GeoDb::open`]: lookups take `&self`, do
//! no I/O and need no lock, so one instance is shared by every task.
//!
//! [`overrides`]: load_overrides
//! [`geofeed`]: load_geofeed
//! [`peeringdb`]: Exchange

mod build;
mod error;
mod geofeed;
pub mod hint;
mod lpm;
mod mmdb;
mod overrides;
mod peeringdb;
pub mod plausibility;
mod prefix;
mod reserved;
mod schema;

pub use build::{build, build_with_type, BuildReport, BUILD_DATABASE_TYPE};
pub use error::{GeoError, NotMmdbReason};
pub use geofeed::{load_geofeed, parse_geofeed, GeofeedEntry};
pub use hint::{Hint, HintKind, HintTable};
pub use mmdb::DatabaseInfo;
pub use overrides::{load_overrides, parse_overrides, OverrideRow, OVERRIDE_DATABASE};
pub use peeringdb::{Exchange, LanPrefix};
pub use plausibility::{check_hop, great_circle_km, min_rtt_ms, plausibility};
pub use prefix::{InvalidPrefix, IpPrefix};
pub use reserved::{reserved_range, ReservedRange};
pub use schema::Schema;

use crate::model::{
    Coordinates, CountryCode, Evidence, EvidenceKind, EvidenceStatus, GeoSource, HopGeo, IxpRef,
    Trace,
};
use geofeed::Geofeed;
use mmdb::{Answer, Location, MmdbSource, Origin};
use overrides::OverrideTable;
use peeringdb::PeeringDb;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The `database` name of answers that come from a PeeringDB dump.
pub const PEERINGDB_DATABASE: &str = "peeringdb";

/// A field group's answer and the `database_type` of the file that gave it.
type Decided<'a, T> = Option<(T, &'a str)>;

/// Anything that can locate an address; the seam between enrichment and
/// where locations come from (tests substitute fixed answers).
pub trait GeoLookup: Send + Sync {
    /// The location of `addr`; `plausible` is left `None`.
    fn locate(&self, addr: IpAddr) -> HopGeo;
}

/// What one source says about an address (for `geo lookup`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceAnswer {
    /// The file's path (an MMDB, a geofeed, a PeeringDB dump), `override`
    /// for the overrides file, or `reserved` for the reserved-range rule.
    pub source: String,
    /// The MMDB `database_type`, `override`, `geofeed`, `peeringdb` or
    /// `reserved-ranges`.
    pub database: String,
    /// The location this source gives, `None` when it knows nothing.
    pub geo: Option<HopGeo>,
    /// Why, where it needs saying: the matching override or geofeed line,
    /// the exchange, the reserved range, a damaged region of a file.
    pub note: Option<String>,
}

/// The files a [`GeoDb`] is opened from (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoSources {
    /// MMDB files (country or city, and ASN), in order of precedence.
    pub files: Vec<PathBuf>,
    /// An overrides CSV.
    pub overrides: Option<PathBuf>,
    /// RFC 8805 geofeeds, in order of precedence.
    pub geofeeds: Vec<PathBuf>,
    /// A PeeringDB dump (objects `ix`, `ixlan`, `ixpfx`).
    pub peeringdb: Option<PathBuf>,
    /// Registration-country MMDBs (weak evidence, never deciding).
    pub registration: Vec<PathBuf>,
}

impl GeoSources {
    /// Whether no file is named at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.overrides.is_none()
            && self.geofeeds.is_empty()
            && self.peeringdb.is_none()
            && self.registration.is_empty()
    }
}

/// Every location source, ready for lookups. `Send + Sync`; lookups do no
/// I/O.
#[derive(Debug, Default)]
pub struct GeoDb {
    overrides: Option<OverrideTable>,
    geofeeds: Vec<Geofeed>,
    peeringdb: Option<PeeringDb>,
    sources: Vec<MmdbSource>,
    registration: Vec<MmdbSource>,
    infos: Vec<DatabaseInfo>,
    registration_infos: Vec<DatabaseInfo>,
}

impl GeoDb {
    /// Opens MMDB `files` (in order of precedence) and an optional overrides
    /// CSV; [`GeoDb::open_with`] opens every kind of source.
    ///
    /// # Errors
    ///
    /// The first file that cannot be read, is not an MMDB, has a schema this
    /// module cannot read, or (for the overrides) has a bad line.
    pub fn open(files: &[PathBuf], overrides: Option<&Path>) -> Result<Self, GeoError> {
        Self::open_with(&GeoSources {
            files: files.to_vec(),
            overrides: overrides.map(Path::to_path_buf),
            ..GeoSources::default()
        })
    }

    /// Opens every source named in `sources`: overrides, geofeeds, the
    /// PeeringDB dump, MMDB files, registration MMDBs, in that order.
    ///
    /// # Errors
    ///
    /// The first file that cannot be used: unreadable, over its size
    /// limit, a bad override or geofeed line (file, line and field), a bad
    /// PeeringDB dump (file and line and column, or object and field), not
    /// an MMDB or one of an unknown schema.
    pub fn open_with(sources: &GeoSources) -> Result<Self, GeoError> {
        let overrides = sources
            .overrides
            .as_deref()
            .map(OverrideTable::open)
            .transpose()?;
        let geofeeds = sources
            .geofeeds
            .iter()
            .map(|f| Geofeed::open(f))
            .collect::<Result<Vec<_>, _>>()?;
        let peeringdb = sources
            .peeringdb
            .as_deref()
            .map(PeeringDb::open)
            .transpose()?;
        let open_all = |files: &[PathBuf]| {
            files
                .iter()
                .map(|f| MmdbSource::open(f))
                .collect::<Result<Vec<_>, _>>()
        };
        let mmdbs = open_all(&sources.files)?;
        let registration = open_all(&sources.registration)?;
        let infos = mmdbs.iter().map(|s| s.info().clone()).collect();
        let registration_infos = registration.iter().map(|s| s.info().clone()).collect();
        Ok(Self {
            overrides,
            geofeeds,
            peeringdb,
            sources: mmdbs,
            registration,
            infos,
            registration_infos,
        })
    }

    /// A database that locates nothing.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// The same sources, with coordinates for the cities of geofeed
    /// entries and exchanges that `city` knows (a table of city locations,
    /// asked once per entry here, never during lookups).
    #[must_use]
    pub fn with_city_coordinates(
        mut self,
        city: impl Fn(CountryCode, &str) -> Option<Coordinates>,
    ) -> Self {
        for feed in &mut self.geofeeds {
            feed.locate_cities(&city);
        }
        if let Some(pdb) = &mut self.peeringdb {
            pdb.locate_cities(&city);
        }
        self
    }

    /// The MMDB files, in order of precedence.
    #[must_use]
    pub fn databases(&self) -> &[DatabaseInfo] {
        &self.infos
    }

    /// The registration-country MMDB files.
    #[must_use]
    pub fn registration_databases(&self) -> &[DatabaseInfo] {
        &self.registration_infos
    }

    /// The overrides file, when one is loaded.
    #[must_use]
    pub fn overrides_path(&self) -> Option<&Path> {
        self.overrides.as_ref().map(OverrideTable::path)
    }

    /// How many override prefixes are loaded.
    #[must_use]
    pub fn override_count(&self) -> usize {
        self.overrides.as_ref().map_or(0, OverrideTable::len)
    }

    /// The geofeeds loaded, in order, with their entry counts.
    #[must_use]
    pub fn geofeeds(&self) -> Vec<(&Path, usize)> {
        self.geofeeds.iter().map(|f| (f.path(), f.len())).collect()
    }

    /// The PeeringDB dump, when one is loaded, with how many exchanges and
    /// LAN prefixes it gave.
    #[must_use]
    pub fn peeringdb(&self) -> Option<(&Path, usize, usize)> {
        self.peeringdb.as_ref().map(|p| {
            let (exchanges, prefixes) = p.counts();
            (p.path(), exchanges, prefixes)
        })
    }

    /// The internet exchange whose peering LAN `addr` is on, if any.
    #[must_use]
    pub fn ixp(&self, addr: IpAddr) -> Option<IxpRef> {
        self.exchange(addr.to_canonical()).map(|(x, _)| x.to_ref())
    }

    fn exchange(&self, addr: IpAddr) -> Option<(&Exchange, &LanPrefix)> {
        self.peeringdb.as_ref()?.lookup(addr)
    }

    /// The first geofeed entry (feeds in order) that gives `addr` a country.
    fn geofeed_entry(&self, addr: IpAddr) -> Option<(&Geofeed, &GeofeedEntry)> {
        self.geofeeds.iter().find_map(|feed| {
            feed.lookup(addr)
                .filter(|e| e.country.is_some())
                .map(|e| (feed, e))
        })
    }

    /// The location of `addr`: from the first of overrides, geofeeds,
    /// exchange LANs and MMDB files that locates it (registration databases
    /// never decide). `plausible` is always `None` here (see [`enrich`]);
    /// `ixp` names the exchange whose LAN the address is on, whichever
    /// source located it. When the deciding source names no ASN, the MMDBs
    /// still give the origin AS.
    #[must_use]
    pub fn locate(&self, addr: IpAddr) -> HopGeo {
        let addr = addr.to_canonical();
        // Public databases know nothing true about reserved ranges; every
        // other source does.
        let reserved = reserved_range(addr).is_some();
        let exchange = self.exchange(addr);
        let mut geo = if let Some(row) = self.overrides.as_ref().and_then(|t| t.lookup(addr)) {
            row.to_geo()
        } else if let Some((feed, entry)) = self.geofeed_entry(addr) {
            geofeed_geo(feed, entry)
        } else if let Some((x, _)) = exchange {
            exchange_geo(x)
        } else {
            // Not on an exchange LAN (that branch is above).
            let (location, origin) = self.ask_mmdbs(addr, true, reserved);
            return compose(location, origin);
        };
        if geo.asn.is_none() {
            if let Some((origin, _)) = self.ask_mmdbs(addr, false, reserved).1 {
                geo.asn = Some(origin.asn);
                geo.as_org = origin.org;
            }
        }
        geo.ixp = exchange.map(|(x, _)| x.to_ref());
        geo
    }

    /// The location and origin the MMDBs give for `addr`: for each group
    /// the first file that knows it, with that file's `database_type`.
    /// With `reserved`, public vendors' databases are not asked.
    fn ask_mmdbs(
        &self,
        addr: IpAddr,
        want_location: bool,
        reserved: bool,
    ) -> (Decided<'_, Location>, Decided<'_, Origin>) {
        let mut location = None;
        let mut origin = None;
        for source in &self.sources {
            if reserved && !source.knows_reserved() {
                continue;
            }
            let need_location = want_location && location.is_none() && source.provides_location();
            let need_origin = origin.is_none() && source.provides_asn();
            if !need_location && !need_origin {
                continue;
            }
            let answer = match source.lookup(addr) {
                Ok(answer) => answer,
                Err(error) => {
                    warn_damaged(source, addr, &error);
                    continue;
                }
            };
            let database = source.info().database_type.as_str();
            if need_location {
                location = answer.location.map(|l| (l, database));
            }
            if need_origin {
                origin = answer.origin.map(|o| (o, database));
            }
            if (location.is_some() || !want_location) && origin.is_some() {
                break;
            }
        }
        (location, origin)
    }

    /// What every source says about where `addr` is: one item per source
    /// that says something, strongest kind first (overrides, geofeeds, the
    /// exchange LAN, databases in the order configured, registration).
    /// Each item's `status` is `agrees` and its `reason` empty until a
    /// decision sets them; `detail` says what the source said in its own
    /// terms. Public vendors' databases say nothing about reserved ranges;
    /// a geofeed entry without a country is an item without a country.
    #[must_use]
    pub fn evidence(&self, addr: IpAddr) -> Vec<Evidence> {
        let addr = addr.to_canonical();
        let reserved = reserved_range(addr).is_some();
        let mut items = Vec::new();
        if let Some(table) = &self.overrides {
            if let Some(row) = table.lookup(addr) {
                items.push(item(
                    EvidenceKind::Override,
                    OVERRIDE_DATABASE,
                    Some(row.country),
                    row.city.clone(),
                    row.coordinates,
                    None,
                    format!(
                        "{}:{}: {}{}",
                        table.path().display(),
                        row.line,
                        row.prefix,
                        row.note
                            .as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        for feed in &self.geofeeds {
            if let Some(entry) = feed.lookup(addr) {
                let unlocated = if entry.country.is_none() {
                    " (no location: the holder asks that it not be located)"
                } else {
                    ""
                };
                items.push(item(
                    EvidenceKind::Geofeed,
                    feed.name(),
                    entry.country,
                    entry.city.clone(),
                    entry.coordinates,
                    None,
                    format!(
                        "{}:{}: {}{unlocated}",
                        feed.path().display(),
                        entry.line,
                        entry.as_written()
                    ),
                ));
            }
        }
        if let Some((x, lan)) = self.exchange(addr) {
            items.push(item(
                EvidenceKind::Ixp,
                &x.name,
                Some(x.country),
                x.city.clone(),
                x.coordinates,
                None,
                exchange_detail(x, lan),
            ));
        }
        let databases = self
            .sources
            .iter()
            .map(|s| (s, false))
            .chain(self.registration.iter().map(|s| (s, true)));
        for (source, registration) in databases {
            if (reserved && !source.knows_reserved()) || !source.provides_location() {
                continue;
            }
            let location = match source.lookup(addr) {
                Ok(answer) => answer.location,
                Err(error) => {
                    warn_damaged(source, addr, &error);
                    None
                }
            };
            let Some(l) = location else {
                continue;
            };
            let info = source.info();
            let kind = if registration {
                EvidenceKind::Registration
            } else if info.database_type == BUILD_DATABASE_TYPE {
                EvidenceKind::Override
            } else {
                EvidenceKind::Database
            };
            items.push(item(
                kind,
                &info.database_type,
                l.country,
                l.city,
                l.coordinates,
                l.accuracy_km,
                info.path.display().to_string(),
            ));
        }
        // Stable: within a kind, the order above (files as configured).
        items.sort_by_key(|e| e.kind);
        items
    }

    /// What every source says about `addr`, for diagnosis: the reserved-range
    /// rule (when it applies), the overrides (when loaded), each geofeed,
    /// the PeeringDB dump, then each MMDB file and registration MMDB —
    /// public vendors' files asked even for reserved addresses, with a note
    /// that [`locate`](Self::locate) ignores their answer.
    #[must_use]
    pub fn lookup_all(&self, addr: IpAddr) -> Vec<SourceAnswer> {
        let addr = addr.to_canonical();
        let reserved = reserved_range(addr);
        let mut answers = Vec::with_capacity(self.sources.len() + 2);
        if let Some(r) = reserved {
            answers.push(SourceAnswer {
                source: "reserved".to_string(),
                database: "reserved-ranges".to_string(),
                geo: None,
                note: Some(format!(
                    "{addr} is in {} ({}): not located by public databases; overrides, \
                     geofeeds, exchange LANs and databases of other types still locate it",
                    r.prefix, r.purpose
                )),
            });
        }
        if let Some(table) = &self.overrides {
            let (geo, note) = match table.lookup(addr) {
                Some(row) => (
                    Some(row.to_geo()),
                    format!(
                        "{}:{}: {}{}",
                        table.path().display(),
                        row.line,
                        row.prefix,
                        row.note
                            .as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    ),
                ),
                None => (
                    None,
                    format!("no prefix in {} covers it", table.path().display()),
                ),
            };
            answers.push(SourceAnswer {
                source: OVERRIDE_DATABASE.to_string(),
                database: OVERRIDE_DATABASE.to_string(),
                geo,
                note: Some(note),
            });
        }
        for feed in &self.geofeeds {
            let (geo, note) = match feed.lookup(addr) {
                Some(entry) => (
                    entry.country.map(|_| geofeed_geo(feed, entry)),
                    format!(
                        "line {}: {}{}",
                        entry.line,
                        entry.as_written(),
                        if entry.country.is_none() {
                            " (the holder asks that it not be located)"
                        } else {
                            ""
                        }
                    ),
                ),
                None => (None, "no prefix in it covers it".to_string()),
            };
            answers.push(SourceAnswer {
                source: feed.path().display().to_string(),
                database: "geofeed".to_string(),
                geo,
                note: Some(note),
            });
        }
        if let Some(pdb) = &self.peeringdb {
            let (geo, note) = match pdb.lookup(addr) {
                Some((x, lan)) => (Some(exchange_geo(x)), exchange_detail(x, lan)),
                None => (None, "not on an exchange LAN it lists".to_string()),
            };
            answers.push(SourceAnswer {
                source: pdb.path().display().to_string(),
                database: PEERINGDB_DATABASE.to_string(),
                geo,
                note: Some(note),
            });
        }
        let databases = self
            .sources
            .iter()
            .map(|s| (s, false))
            .chain(self.registration.iter().map(|s| (s, true)));
        for (source, registration) in databases {
            let info = source.info();
            let (geo, mut note) = if source.cannot_hold(addr) {
                (None, Some("IPv4-only database".to_string()))
            } else {
                match source.lookup(addr) {
                    Ok(answer) => (
                        answer_geo(answer, &info.database_type),
                        reserved
                            .filter(|_| !source.knows_reserved())
                            .map(|_| "ignored: reserved range".to_string()),
                    ),
                    Err(error) => {
                        warn_damaged(source, addr, &error);
                        (
                            None,
                            Some(format!(
                                "lookup failed in a damaged region of the file: {error}"
                            )),
                        )
                    }
                }
            };
            if registration {
                let weak = "registration country: weak evidence, never decides";
                note = Some(note.map_or_else(|| weak.to_string(), |n| format!("{weak}; {n}")));
            }
            answers.push(SourceAnswer {
                source: info.path.display().to_string(),
                database: info.database_type.clone(),
                geo,
                note,
            });
        }
        answers
    }
}

/// An evidence item with the placeholders a decision replaces.
fn item(
    kind: EvidenceKind,
    source: &str,
    country: Option<CountryCode>,
    city: Option<String>,
    coordinates: Option<Coordinates>,
    accuracy_km: Option<u32>,
    detail: String,
) -> Evidence {
    Evidence {
        kind,
        source: source.to_string(),
        country,
        city,
        lat: coordinates.map(|c| c.lat),
        lon: coordinates.map(|c| c.lon),
        accuracy_km: coordinates.and(accuracy_km),
        detail: Some(detail),
        status: EvidenceStatus::Agrees,
        reason: None,
    }
}

/// A geofeed entry's location, as a geofeed answer.
fn geofeed_geo(feed: &Geofeed, entry: &GeofeedEntry) -> HopGeo {
    HopGeo {
        country: entry.country,
        city: entry.city.clone(),
        lat: entry.coordinates.map(|c| c.lat),
        lon: entry.coordinates.map(|c| c.lon),
        source: GeoSource::Geofeed,
        database: Some(feed.name().to_string()),
        ..HopGeo::default()
    }
}

/// An exchange's location, as an exchange-LAN answer.
fn exchange_geo(x: &Exchange) -> HopGeo {
    HopGeo {
        country: Some(x.country),
        city: x.city.clone(),
        lat: x.coordinates.map(|c| c.lat),
        lon: x.coordinates.map(|c| c.lon),
        source: GeoSource::Ixp,
        database: Some(PEERINGDB_DATABASE.to_string()),
        ixp: Some(x.to_ref()),
        ..HopGeo::default()
    }
}

/// What PeeringDB says: `LIXP (Lesotho Internet Exchange Point), Maseru,
/// LS: peering LAN 192.0.2.0/24 (ix 1, ixlan 10, ixpfx 100)`.
fn exchange_detail(x: &Exchange, lan: &LanPrefix) -> String {
    let long = x
        .name_long
        .as_deref()
        .filter(|l| *l != x.name)
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    let city = x
        .city
        .as_deref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default();
    format!(
        "{}{long}{city}, {}: peering LAN {} (PeeringDB ix {}, ixlan {}, ixpfx {})",
        x.name, x.country, lan.prefix, x.id, lan.ixlan_id, lan.id
    )
}

impl GeoLookup for GeoDb {
    fn locate(&self, addr: IpAddr) -> HopGeo {
        GeoDb::locate(self, addr)
    }
}

fn warn_damaged(source: &MmdbSource, addr: IpAddr, error: &dyn std::fmt::Display) {
    tracing::warn!(
        file = %source.info().path.display(),
        %addr,
        %error,
        "MMDB lookup failed in a damaged region of the file; address treated as not located"
    );
}

/// One database's whole answer as a location.
fn answer_geo(answer: Answer, database: &str) -> Option<HopGeo> {
    let Answer { location, origin } = answer;
    if location.is_none() && origin.is_none() {
        return None;
    }
    Some(compose(
        location.map(|l| (l, database)),
        origin.map(|o| (o, database)),
    ))
}

/// A location from the deciding sources of each field group.
fn compose(location: Decided<'_, Location>, origin: Decided<'_, Origin>) -> HopGeo {
    let database = location
        .as_ref()
        .map(|(_, db)| *db)
        .or(origin.as_ref().map(|(_, db)| *db));
    let Some(database) = database else {
        return HopGeo::default();
    };
    let (l, o) = (location.map(|(l, _)| l), origin.map(|(o, _)| o));
    let coordinates = l.as_ref().and_then(|l| l.coordinates);
    HopGeo {
        country: l.as_ref().and_then(|l| l.country),
        lat: coordinates.map(|c| c.lat),
        lon: coordinates.map(|c| c.lon),
        accuracy_km: l.as_ref().and_then(|l| l.accuracy_km),
        city: l.and_then(|l| l.city),
        asn: o.as_ref().map(|o| o.asn),
        as_org: o.and_then(|o| o.org),
        source: GeoSource::Mmdb,
        plausible: None,
        database: Some(database.to_string()),
        ..HopGeo::default()
    }
}

/// Locates every hop of `trace` with `db` and checks each located hop's
/// best round-trip time against the distance from `vantage`. Silent hops
/// get `HopGeo::default()`.
pub fn enrich(trace: &mut Trace, db: &GeoDb, vantage: Option<Coordinates>) {
    enrich_with(trace, db, vantage);
}

/// A bounded memo of [`GeoDb::locate`] answers, for one pass over many
/// traces that meet the same routers again and again (`analyze` over a
/// large file). Owned by that pass (`&mut`), so it needs no lock. When it
/// holds `capacity` addresses it starts over empty: memory stays bounded
/// whatever the input, and a working set smaller than the bound stays in it.
#[derive(Debug)]
pub struct LocateCache {
    answers: std::collections::HashMap<AddrKey, HopGeo, AddrHash>,
    capacity: usize,
}

/// An address as the memo's key: its 128 bits and family, hashed as one
/// word (the derived `Hash` of `IpAddr` feeds the hasher three times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AddrKey(u128, bool);

impl From<IpAddr> for AddrKey {
    fn from(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => Self(u128::from(v4.to_bits()), true),
            IpAddr::V6(v6) => Self(v6.to_bits(), false),
        }
    }
}

impl std::hash::Hash for AddrKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        #[allow(clippy::cast_possible_truncation)] // the halves, on purpose
        let (low, high) = (self.0 as u64, (self.0 >> 64) as u64);
        state.write_u64(low ^ high.rotate_left(23) ^ u64::from(self.1));
    }
}

/// A fast hash for addresses (multiply and rotate, as rustc's FxHash): the
/// memo's keys come from measurement files, not from an adversary that
/// could aim at collisions, and SipHash would cost more than the lookup.
#[derive(Debug, Default, Clone, Copy)]
struct AddrHash;

impl std::hash::BuildHasher for AddrHash {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

/// The state of [`AddrHash`].
#[derive(Debug)]
struct AddrHasher(u64);

impl AddrHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl LocateCache {
    /// A memo of at most `capacity` addresses.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            answers: std::collections::HashMap::with_hasher(AddrHash),
            capacity: capacity.max(1),
        }
    }

    /// [`GeoDb::locate`], answered from the memo when `addr` was asked before.
    pub fn locate(&mut self, db: &GeoDb, addr: IpAddr) -> HopGeo {
        let key = AddrKey::from(addr);
        if let Some(geo) = self.answers.get(&key) {
            return geo.clone();
        }
        let geo = db.locate(addr);
        if self.answers.len() >= self.capacity {
            self.answers.clear();
        }
        self.answers.entry(key).or_insert(geo).clone()
    }
}

/// [`enrich`] through a [`LocateCache`]: the same locations, each address
/// looked up once while it stays in the memo.
pub fn enrich_cached(
    trace: &mut Trace,
    db: &GeoDb,
    vantage: Option<Coordinates>,
    cache: &mut LocateCache,
) {
    for hop in &mut trace.hops {
        hop.geo = match hop.addr {
            None => HopGeo::default(),
            Some(addr) => {
                let mut geo = cache.locate(db, addr);
                geo.plausible = check_hop(vantage, &geo, hop.rtt_ms.map(|r| r.best));
                geo
            }
        };
    }
}

/// [`enrich`] with any [`GeoLookup`].
pub fn enrich_with<L: GeoLookup + ?Sized>(
    trace: &mut Trace,
    lookup: &L,
    vantage: Option<Coordinates>,
) {
    for hop in &mut trace.hops {
        hop.geo = match hop.addr {
            None => HopGeo::default(),
            Some(addr) => {
                let mut geo = lookup.locate(addr);
                geo.plausible = check_hop(vantage, &geo, hop.rtt_ms.map(|r| r.best));
                geo
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodb_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }

    #[test]
    fn the_cache_answers_like_the_database_and_stays_bounded() {
        let csv = "192.0.2.0/24,LS,Maseru,-29.31,27.48,64500\n198.51.100.0/24,ZA\n";
        let dir = std::env::temp_dir().join(format!("tw-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.csv");
        std::fs::write(&path, csv).unwrap();
        let db = GeoDb::open(&[], Some(&path)).unwrap();
        let mut cache = LocateCache::new(2);
        let addrs: Vec<IpAddr> = ["192.0.2.1", "198.51.100.7", "203.0.113.5", "192.0.2.1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        for _ in 0..3 {
            for &a in &addrs {
                assert_eq!(cache.locate(&db, a), db.locate(a), "{a}");
                assert!(cache.answers.len() <= 2);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_locates_nothing() {
        let db = GeoDb::empty();
        assert_eq!(db.locate("8.8.8.8".parse().unwrap()), HopGeo::default());
        assert!(db.databases().is_empty());
        assert!(db.lookup_all("8.8.8.8".parse().unwrap()).is_empty());
        let reserved = db.lookup_all("10.0.0.1".parse().unwrap());
        assert_eq!(reserved.len(), 1);
        assert!(reserved[0].note.as_deref().unwrap().contains("10.0.0.0/8"));
    }
}
