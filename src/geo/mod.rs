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
//! [`enrich`] fills every hop of a [`Trace`]: every source's item of
//! evidence about the hop's address, and the location hints of its host
//! name when there is one, go through [`decide()`] (the speed-of-light
//! bound, the choice, the confidence). [`build`] writes an overrides CSV as
//! an MMDB.
//! Types of the `maxminddb` and `mmdb-writer` crates never leave this module.
//!
//! A [`GeoDb`] is immutable after [`GeoDb::open`]: lookups take `&self`, do
//! no I/O and need no lock, so one instance is shared by every task.
//! Each overrides, geofeed, PeeringDB and host-name rules file is hashed
//! (SHA-256) from the bytes parsed as it is loaded: [`GeoDb::location_files`]
//! is what the trace store records as provenance beside [`GeoDb::databases`].
//!
//! [`overrides`]: load_overrides
//! [`geofeed`]: load_geofeed
//! [`peeringdb`]: Exchange

mod build;
mod csv_fields;
pub mod decide;
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
pub use decide::{decide, hostname_evidence, HopContext, HostnameHint};
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

    /// [`locate`](Self::locate)'s answer and every source's item of
    /// evidence about `addr`; the list may be empty when that answer is the
    /// only thing any source says (the default).
    fn locate_with_evidence(&self, addr: IpAddr) -> (HopGeo, Vec<Evidence>) {
        (self.locate(addr), Vec::new())
    }
}

/// Where location hints of host names come from (the hint table).
pub trait HintSource: Send + Sync {
    /// The hints `name` carries, best first; empty when none.
    fn hints(&self, name: &str) -> Vec<HostnameHint>;
}

impl HintSource for HintTable {
    fn hints(&self, name: &str) -> Vec<HostnameHint> {
        HintTable::hints(self, name)
            .into_iter()
            .map(|h| HostnameHint {
                country: h.country,
                city: h.city,
                coords: h.coords,
                code: h.code,
                kind_name: match h.kind {
                    HintKind::Iata => "IATA code",
                    HintKind::Locode => "UN/LOCODE",
                    HintKind::Clli => "CLLI code",
                    HintKind::City => "city name",
                    HintKind::Country => "country label",
                    HintKind::Rule => "operator rule's code",
                },
                rule: h.rule,
            })
            .collect()
    }
}

/// The database's hint table, parsed only when a name is first read: a pass
/// over traces without names (`analyze`) never loads the tables.
impl HintSource for GeoDb {
    fn hints(&self, name: &str) -> Vec<HostnameHint> {
        HintSource::hints(self.hints(), name)
    }
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
    /// Operator rules for location hints in host names, used with the
    /// shipped tables.
    pub hostname_rules: Option<PathBuf>,
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
            && self.hostname_rules.is_none()
    }
}

/// What a location file other than an MMDB is for, as provenance names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocationFileKind {
    /// The operator's overrides CSV (`[geoip] overrides`).
    Overrides,
    /// An RFC 8805 geofeed (`[geoip] geofeeds`).
    Geofeed,
    /// A PeeringDB dump (`[geoip] peeringdb`).
    PeeringDb,
    /// Operator rules for host-name hints (`[geoip] hostname_rules`).
    HostnameRules,
}

crate::text_enum::text_enum! {
    /// The name stored with each trace and shown in reports.
    LocationFileKind {
        Overrides => "overrides",
        Geofeed => "geofeed",
        PeeringDb => "peeringdb",
        HostnameRules => "hostname_rules",
    }
}

/// A location file other than an MMDB as it was loaded: what it is for,
/// its path, and the SHA-256 of the bytes that were parsed. The hash is
/// taken when the file is read, from the bytes in memory, so it names what
/// the lookups answer from even when the file changes afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// What the file is for.
    pub kind: LocationFileKind,
    /// The path it was read from.
    pub path: PathBuf,
    /// SHA-256 (lower-case hex) of the bytes read.
    pub sha256: String,
}

impl LoadedFile {
    /// The fingerprint of `bytes`, read from `path`.
    #[must_use]
    pub fn of(kind: LocationFileKind, path: &Path, bytes: &[u8]) -> Self {
        Self {
            kind,
            path: path.to_path_buf(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
        }
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
    /// The hint table with the operator's rules; `None` for the shipped
    /// tables alone.
    hints: Option<HintTable>,
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
        let hints = sources
            .hostname_rules
            .as_deref()
            .map(HintTable::with_rules)
            .transpose()?;
        Ok(Self {
            hints,
            overrides,
            geofeeds,
            peeringdb,
            sources: mmdbs,
            registration,
            infos,
            registration_infos,
        })
    }

    /// The location hints of host names: the shipped tables, with the
    /// operator's rules when configured.
    #[must_use]
    pub fn hints(&self) -> &HintTable {
        self.hints.as_ref().unwrap_or_else(|| HintTable::builtin())
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

    /// The location files other than MMDBs that were loaded, with the
    /// SHA-256 of the bytes parsed: the overrides, the geofeeds in order,
    /// the PeeringDB dump, the host-name rules (what a trace's provenance
    /// records besides [`GeoDb::databases`]).
    #[must_use]
    pub fn location_files(&self) -> Vec<&LoadedFile> {
        self.overrides
            .iter()
            .map(OverrideTable::file)
            .chain(self.geofeeds.iter().map(Geofeed::file))
            .chain(self.peeringdb.iter().map(PeeringDb::file))
            .chain(self.hints.as_ref().and_then(HintTable::rules_file))
            .collect()
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
                    override_line(table, row),
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
                Some(row) => (Some(row.to_geo()), override_line(table, row)),
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

/// What an override row says, where it is: `ov.csv:3: 192.0.2.0/24 (core)`.
fn override_line(table: &OverrideTable, row: &OverrideRow) -> String {
    let note = row
        .note
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "{}:{}: {}{note}",
        table.path().display(),
        row.line,
        row.prefix
    )
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

impl GeoDb {
    /// How many sources could say something about `addr`: the overrides,
    /// each geofeed, the exchange LANs, and every MMDB that has location
    /// records for its address family.
    fn location_sources(&self, addr: IpAddr) -> usize {
        usize::from(self.overrides.is_some())
            + self.geofeeds.len()
            + usize::from(self.peeringdb.is_some())
            + self
                .sources
                .iter()
                .chain(&self.registration)
                .filter(|s| s.provides_location() && !s.cannot_hold(addr))
                .count()
    }

    /// [`locate`](Self::locate)'s answer and every source's item of
    /// evidence; with at most one source that could answer, the answer is
    /// the only item and the list is left empty (the common case, which
    /// then costs one lookup as before).
    fn locate_with_items(&self, addr: IpAddr) -> (HopGeo, Vec<Evidence>) {
        let located = self.locate(addr);
        if self.location_sources(addr) <= 1 {
            return (located, Vec::new());
        }
        (located, self.evidence(addr))
    }
}

impl GeoLookup for GeoDb {
    fn locate(&self, addr: IpAddr) -> HopGeo {
        GeoDb::locate(self, addr)
    }

    fn locate_with_evidence(&self, addr: IpAddr) -> (HopGeo, Vec<Evidence>) {
        self.locate_with_items(addr)
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

/// Locates every hop of `trace` with `db` (see [`enrich_with`]). Silent
/// hops get `HopGeo::default()`.
pub fn enrich(trace: &mut Trace, db: &GeoDb, vantage: Option<Coordinates>) {
    enrich_with(trace, db, vantage, Some(db));
}

/// A bounded memo of what the sources say about addresses ([`GeoDb::locate`]
/// and the evidence items), for one pass over many traces that meet the
/// same routers again and again (`analyze` over a large file). What it
/// keeps does not depend on round-trip times; [`decide()`] runs per hop.
/// Owned by that pass (`&mut`), so it needs no lock. When it holds
/// `capacity` addresses it starts over empty: memory stays bounded
/// whatever the input, and a working set smaller than the bound stays in it.
#[derive(Debug)]
pub struct LocateCache {
    answers: std::collections::HashMap<AddrKey, Located, AddrHash>,
    capacity: usize,
}

/// What the sources say about one address.
#[derive(Debug, Clone, PartialEq)]
struct Located {
    /// [`GeoDb::locate`]'s answer: the location of the strongest source and
    /// the origin AS.
    base: HopGeo,
    /// Every source's item, when more than one says something; empty when
    /// `base` is the only one (the common case, decided without a list).
    evidence: Vec<Evidence>,
}

impl Located {
    fn of<L: GeoLookup + ?Sized>(lookup: &L, addr: IpAddr) -> Self {
        let (base, mut evidence) = lookup.locate_with_evidence(addr);
        if evidence.len() <= 1 {
            evidence = Vec::new();
        }
        Self { base, evidence }
    }

    /// The hop's location from these answers, the host name's hints and
    /// the round-trip context.
    fn decide(&self, hinted: Vec<Evidence>, ctx: &HopContext) -> HopGeo {
        if self.evidence.is_empty() && hinted.is_empty() {
            let mut geo = self.base.clone();
            decide::decide_single(&mut geo, ctx);
            return geo;
        }
        let mut items = if self.evidence.is_empty() {
            decide::single_item(&self.base).into_iter().collect()
        } else {
            self.evidence.clone()
        };
        items.extend(hinted);
        let mut geo = decide(items, ctx);
        // The exchange LAN is a fact about the address, whichever source
        // decided where it is.
        geo.ixp.clone_from(&self.base.ixp);
        geo.asn = self.base.asn;
        geo.as_org.clone_from(&self.base.as_org);
        if geo.country.is_none() {
            geo.database.clone_from(&self.base.database);
        }
        geo
    }
}

/// The evidence items of the hints `hostname` carries.
fn hinted(hostname: Option<&str>, hints: Option<&dyn HintSource>) -> Vec<Evidence> {
    match (hostname, hints) {
        (Some(name), Some(source)) => source
            .hints(name)
            .iter()
            .map(|h| hostname_evidence(name, h))
            .collect(),
        _ => Vec::new(),
    }
}

/// Locates every hop of `trace`, asking `answers` for what the sources say
/// about an address.
fn enrich_hops(
    trace: &mut Trace,
    vantage: Option<Coordinates>,
    hints: Option<&dyn HintSource>,
    mut answers: impl FnMut(IpAddr, &mut dyn FnMut(&Located)),
) {
    let mut previous: Option<f64> = None;
    for hop in &mut trace.hops {
        let best = hop.rtt_ms.map(|r| r.best);
        hop.geo = match hop.addr {
            None => HopGeo::default(),
            Some(addr) => {
                let ctx = HopContext {
                    vantage,
                    best_rtt_ms: best,
                    previous_best_rtt_ms: previous,
                };
                let mut hinted = Some(hinted(hop.hostname.as_deref(), hints));
                let mut geo = HopGeo::default();
                answers(addr, &mut |located| {
                    geo = located.decide(hinted.take().unwrap_or_default(), &ctx);
                });
                geo
            }
        };
        if hop.addr.is_some() && best.is_some() {
            previous = best;
        }
    }
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

    /// What the sources say about `addr`, from the memo when it was asked
    /// before.
    fn located(&mut self, db: &GeoDb, addr: IpAddr) -> &Located {
        let key = AddrKey::from(addr);
        // One hash lookup per hop while the memo has room (the usual case).
        if self.answers.len() >= self.capacity && !self.answers.contains_key(&key) {
            self.answers.clear();
        }
        self.answers
            .entry(key)
            .or_insert_with(|| Located::of(db, addr))
    }

    /// [`GeoDb::locate`], answered from the memo when `addr` was asked before.
    pub fn locate(&mut self, db: &GeoDb, addr: IpAddr) -> HopGeo {
        self.located(db, addr).base.clone()
    }
}

/// [`enrich`] through a [`LocateCache`]: the same locations, each address
/// looked up once while it stays in the memo. `hints` reads the location
/// hints of hops' host names.
pub fn enrich_cached(
    trace: &mut Trace,
    db: &GeoDb,
    vantage: Option<Coordinates>,
    cache: &mut LocateCache,
    hints: Option<&dyn HintSource>,
) {
    enrich_hops(trace, vantage, hints, |addr, then| {
        then(cache.located(db, addr))
    });
}

/// [`enrich`] with any [`GeoLookup`]: for each answering hop, every
/// source's evidence and the hints of its host name (when `hints` is given)
/// go through [`decide()`] with the hop's round-trip context.
pub fn enrich_with<L: GeoLookup + ?Sized>(
    trace: &mut Trace,
    lookup: &L,
    vantage: Option<Coordinates>,
    hints: Option<&dyn HintSource>,
) {
    enrich_hops(trace, vantage, hints, |addr, then| {
        then(&Located::of(lookup, addr));
    });
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

    /// A database that places every address in Dublin, and says so twice
    /// (two files), with an origin AS.
    struct Dublin;

    impl GeoLookup for Dublin {
        fn locate(&self, _: IpAddr) -> HopGeo {
            HopGeo {
                country: Some("IE".parse().unwrap()),
                lat: Some(53.35),
                lon: Some(-6.26),
                asn: Some(64520),
                source: GeoSource::Mmdb,
                database: Some("GeoLite2-City".into()),
                ..HopGeo::default()
            }
        }

        fn locate_with_evidence(&self, addr: IpAddr) -> (HopGeo, Vec<Evidence>) {
            let located = self.locate(addr);
            let one = decide::single_item(&located).unwrap();
            let other = Evidence {
                source: "DBIP-City-Lite".into(),
                ..one.clone()
            };
            (located, vec![one, other])
        }
    }

    /// Names under `.mru.` are in Maseru.
    struct MaseruNames;

    impl HintSource for MaseruNames {
        fn hints(&self, name: &str) -> Vec<HostnameHint> {
            if !name.contains(".mru.") {
                return Vec::new();
            }
            vec![HostnameHint {
                country: "LS".parse().unwrap(),
                city: Some("Maseru".into()),
                coords: Some(MASERU),
                code: "mru".into(),
                kind_name: "IATA code",
                rule: None,
            }]
        }
    }

    const MASERU: Coordinates = Coordinates {
        lat: -29.31,
        lon: 27.48,
    };

    fn two_hop_trace() -> Trace {
        let hop = |ttl: u8, rtt: f64, hostname: Option<&str>| crate::model::Hop {
            ttl,
            addr: Some(format!("192.0.2.{ttl}").parse().unwrap()),
            addrs: vec![],
            sent: 3,
            received: 3,
            rtt_ms: Some(crate::model::RttMs {
                best: rtt,
                avg: rtt,
                worst: rtt,
            }),
            geo: HopGeo::default(),
            hostname: hostname.map(str::to_string),
            mpls: Vec::new(),
        };
        Trace {
            target: crate::model::TargetRef {
                name: "t".into(),
                host: "t".into(),
                addr: None,
            },
            vantage: crate::model::VantageRef {
                name: "v".into(),
                country: None,
            },
            protocol: crate::model::Protocol::Icmp,
            port: None,
            started_at: crate::units::Timestamp::from_unix(0).unwrap(),
            reached: false,
            hops: vec![hop(1, 0.4, None), hop(2, 0.5, Some("ae-1.mru.example.net"))],
        }
    }

    #[test]
    fn enrich_decides_from_every_source_and_the_host_name() {
        let mut trace = two_hop_trace();
        enrich_with(&mut trace, &Dublin, Some(MASERU), Some(&MaseruNames));
        // Hop 1: both databases say Dublin, 0.4 ms rules it out: suspect.
        let g = &trace.hops[0].geo;
        assert_eq!(g.country.map(|c| c.to_string()).as_deref(), Some("IE"));
        assert_eq!(g.plausible, Some(false));
        assert_eq!(g.confidence, None);
        assert_eq!(g.evidence.len(), 2);
        // Hop 2: its name and its round trip say Maseru: high, origin kept.
        let g = &trace.hops[1].geo;
        assert_eq!(g.country.map(|c| c.to_string()).as_deref(), Some("LS"));
        assert_eq!(g.source, GeoSource::Hostname);
        assert_eq!(g.database.as_deref(), Some("ptr"));
        assert_eq!(g.confidence, Some(crate::model::Confidence::High));
        assert_eq!(g.asn, Some(64520));
        let statuses: Vec<EvidenceStatus> = g.evidence.iter().map(|e| e.status).collect();
        assert_eq!(
            statuses,
            [
                EvidenceStatus::Rejected,
                EvidenceStatus::Rejected,
                EvidenceStatus::Chosen
            ]
        );
        // Without a hint source the name is not read.
        let mut trace = two_hop_trace();
        enrich_with(&mut trace, &Dublin, Some(MASERU), None);
        assert_eq!(trace.hops[1].geo.plausible, Some(false));
    }

    #[test]
    fn the_cache_gives_what_enrich_gives() {
        let csv = "192.0.2.0/24,LS,Maseru,-29.31,27.48,64500\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.csv");
        std::fs::write(&path, csv).unwrap();
        let db = GeoDb::open(&[], Some(&path)).unwrap();
        let mut cache = LocateCache::new(8);
        for hints in [None, Some(&MaseruNames as &dyn HintSource)] {
            let (mut a, mut b) = (two_hop_trace(), two_hop_trace());
            enrich_with(&mut a, &db, Some(MASERU), hints);
            enrich_cached(&mut b, &db, Some(MASERU), &mut cache, hints);
            assert_eq!(a, b);
            assert_eq!(
                a.hops[0].geo.confidence,
                Some(crate::model::Confidence::High)
            );
            // A single source keeps no evidence list; with a name there are two items.
            assert!(a.hops[0].geo.evidence.is_empty());
            assert_eq!(
                a.hops[1].geo.evidence.len(),
                if hints.is_some() { 2 } else { 0 }
            );
        }
    }

    #[test]
    fn one_pass_over_many_sources_locates_as_locate_does() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let a = write(
            "a.csv",
            "192.0.2.0/24,ZA,Johannesburg,-26.2,28.04,64510\n10.0.0.0/8,LS\n",
        );
        let b = write(
            "b.csv",
            "192.0.2.0/25,NA\n198.51.100.0/24,IE,Dublin,53.35,-6.26\n",
        );
        let (am, bm) = (dir.path().join("a.mmdb"), dir.path().join("b.mmdb"));
        build(&a, &am).unwrap();
        build(&b, &bm).unwrap();
        let overrides = write("o.csv", "198.51.100.0/25,LS,Maseru\n");
        let db = GeoDb::open(&[am, bm], Some(&overrides)).unwrap();
        for addr in [
            "192.0.2.1",
            "192.0.2.200",
            "198.51.100.1",
            "198.51.100.200",
            "10.1.2.3",
            "203.0.113.9",
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            let (located, items) = db.locate_with_items(addr);
            assert_eq!(located, db.locate(addr), "{addr}");
            let sources: Vec<&str> = items.iter().map(|e| e.source.as_str()).collect();
            match addr.to_string().as_str() {
                "192.0.2.1" => assert_eq!(sources.len(), 2, "{addr}: {items:?}"),
                "198.51.100.1" => assert_eq!(sources[0], OVERRIDE_DATABASE, "{addr}"),
                "203.0.113.9" => assert!(items.is_empty()),
                _ => {}
            }
        }
    }

    #[test]
    fn location_files_are_fingerprinted_as_loaded_and_anew_on_reopening() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let sha = |text: &str| hex::encode(sha2::Sha256::digest(text.as_bytes()));
        let texts = [
            "192.0.2.0/24,LS\n",
            "198.51.100.0/24,ZA\n",
            "203.0.113.0/24,IE\n",
            r#"{"ix": {"data": []}, "ixlan": {"data": []}, "ixpfx": {"data": []}}"#,
            "[[rule]]\nsuffix = \"lab.example\"\ncountry = \"LS\"\n",
        ];
        let sources = GeoSources {
            overrides: Some(write("o.csv", texts[0])),
            geofeeds: vec![write("a.csv", texts[1]), write("b.csv", texts[2])],
            peeringdb: Some(write("pdb.json", texts[3])),
            hostname_rules: Some(write("rules.toml", texts[4])),
            ..GeoSources::default()
        };
        let db = GeoDb::open_with(&sources).unwrap();
        let listed: Vec<(&str, &Path, String)> = db
            .location_files()
            .into_iter()
            .map(|f| (f.kind.as_str(), f.path.as_path(), f.sha256.clone()))
            .collect();
        let expected: Vec<(&str, &Path, String)> = [
            ("overrides", sources.overrides.as_deref().unwrap()),
            ("geofeed", sources.geofeeds[0].as_path()),
            ("geofeed", sources.geofeeds[1].as_path()),
            ("peeringdb", sources.peeringdb.as_deref().unwrap()),
            ("hostname_rules", sources.hostname_rules.as_deref().unwrap()),
        ]
        .into_iter()
        .zip(texts)
        .map(|((kind, path), text)| (kind, path, sha(text)))
        .collect();
        assert_eq!(listed, expected);
        // Changed afterwards: the loaded database keeps the hash of what it
        // parsed; opening again (a reload) hashes the new bytes.
        let changed = "192.0.2.0/24,ZA\n";
        write("o.csv", changed);
        assert_eq!(db.location_files()[0].sha256, sha(texts[0]));
        let again = GeoDb::open_with(&sources).unwrap();
        assert_eq!(again.location_files()[0].sha256, sha(changed));
        assert!(GeoDb::empty().location_files().is_empty());
        assert!(GeoDb::open(&[], None).unwrap().location_files().is_empty());
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
