//! Hop geolocation: which country, city and origin AS an address belongs
//! to, and whether a hop's round-trip time allows it to be there.
//!
//! [`GeoDb`] answers from, in order of authority:
//!
//! 1. operator overrides (a CSV file, longest prefix match), always first;
//! 2. reserved ranges (private, shared, loopback, link-local, multicast,
//!    documentation, benchmarking): not located, unless an override said
//!    otherwise in step 1 or an overlay MMDB built by [`build`] (database
//!    type [`BUILD_DATABASE_TYPE`], an operator statement like the CSV)
//!    covers them;
//! 3. MMDB files in the order given. Location (country, city, coordinates,
//!    accuracy) and origin (ASN, organisation) are two field groups; for
//!    each, the first file that knows the address decides. A City file and
//!    an ASN file thus combine into one answer.
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

mod build;
pub mod decide;
mod error;
mod lpm;
mod mmdb;
mod overrides;
pub mod plausibility;
mod prefix;
mod reserved;
mod schema;

pub use build::{build, BuildReport, BUILD_DATABASE_TYPE};
pub use decide::{decide, hostname_evidence, HopContext, HostnameHint};
pub use error::{GeoError, NotMmdbReason};
pub use mmdb::DatabaseInfo;
pub use overrides::{load_overrides, parse_overrides, OverrideRow, OVERRIDE_DATABASE};
pub use plausibility::{check_hop, great_circle_km, min_rtt_ms, plausibility};
pub use prefix::{InvalidPrefix, IpPrefix};
pub use reserved::{reserved_range, ReservedRange};
pub use schema::Schema;

use crate::model::{Coordinates, Evidence, EvidenceKind, EvidenceStatus, GeoSource, HopGeo, Trace};
use mmdb::{Answer, Location, MmdbSource, Origin};
use overrides::OverrideTable;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

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

/// What one source says about an address (for `geo lookup`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceAnswer {
    /// The MMDB file's path, `override` for the overrides file, or
    /// `reserved` for the reserved-range rule.
    pub source: String,
    /// The MMDB `database_type`, `override`, or `reserved-ranges`.
    pub database: String,
    /// The location this source gives, `None` when it knows nothing.
    pub geo: Option<HopGeo>,
    /// Why, where it needs saying: the matching override line, the reserved
    /// range, a damaged region of a file.
    pub note: Option<String>,
}

/// Overrides plus MMDB files, ready for lookups. `Send + Sync`; lookups do
/// no I/O.
#[derive(Debug, Default)]
pub struct GeoDb {
    overrides: Option<OverrideTable>,
    sources: Vec<MmdbSource>,
    infos: Vec<DatabaseInfo>,
}

impl GeoDb {
    /// Opens MMDB `files` (in order of precedence) and an optional overrides
    /// CSV.
    ///
    /// # Errors
    ///
    /// The first file that cannot be read, is not an MMDB, has a schema this
    /// module cannot read, or (for the overrides) has a bad line.
    pub fn open(files: &[PathBuf], overrides: Option<&Path>) -> Result<Self, GeoError> {
        let overrides = overrides.map(OverrideTable::open).transpose()?;
        let sources = files
            .iter()
            .map(|f| MmdbSource::open(f))
            .collect::<Result<Vec<_>, _>>()?;
        let infos = sources.iter().map(|s| s.info().clone()).collect();
        Ok(Self {
            overrides,
            sources,
            infos,
        })
    }

    /// A database that locates nothing.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// The MMDB files, in order of precedence.
    #[must_use]
    pub fn databases(&self) -> &[DatabaseInfo] {
        &self.infos
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

    /// The location of `addr`. `plausible` is always `None` here (see
    /// [`enrich`]). An override's row decides the location; when it names no
    /// ASN, the MMDBs still give the origin AS of a public address.
    #[must_use]
    pub fn locate(&self, addr: IpAddr) -> HopGeo {
        let addr = addr.to_canonical();
        let reserved = reserved_range(addr).is_some();
        if let Some(row) = self.overrides.as_ref().and_then(|t| t.lookup(addr)) {
            let mut geo = row.to_geo();
            if geo.asn.is_none() && !reserved {
                if let Some((origin, _)) = self.ask_mmdbs(addr, false, false).1 {
                    geo.asn = Some(origin.asn);
                    geo.as_org = origin.org;
                }
            }
            return geo;
        }
        // Public databases know nothing true about reserved ranges; an
        // operator's own overlay does.
        let (location, origin) = self.ask_mmdbs(addr, true, reserved);
        compose(location, origin)
    }

    /// The location and origin the MMDBs give for `addr`: for each group
    /// the first file that knows it, with that file's `database_type`.
    /// With `overlays_only`, only databases built by [`build`] are asked.
    fn ask_mmdbs(
        &self,
        addr: IpAddr,
        want_location: bool,
        overlays_only: bool,
    ) -> (Decided<'_, Location>, Decided<'_, Origin>) {
        let mut location = None;
        let mut origin = None;
        for source in &self.sources {
            if overlays_only && !is_overlay(source) {
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

    /// What every source says about `addr`, for diagnosis: the reserved-range
    /// rule (when it applies), the overrides (when loaded), then each MMDB
    /// file — asked even for reserved addresses, with a note that
    /// [`locate`](Self::locate) ignores its answer.
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
                    "{addr} is in {} ({}): not located unless an override covers it",
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
        for source in &self.sources {
            let info = source.info();
            let (geo, note) = if source.cannot_hold(addr) {
                (None, Some("IPv4-only database".to_string()))
            } else {
                match source.lookup(addr) {
                    Ok(answer) => (
                        answer_geo(answer, &info.database_type),
                        reserved
                            .filter(|_| !is_overlay(source))
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

impl GeoDb {
    /// How many sources can locate an address: the overrides and every
    /// MMDB with location records.
    fn location_sources(&self) -> usize {
        usize::from(self.overrides.is_some())
            + self
                .sources
                .iter()
                .filter(|s| s.provides_location())
                .count()
    }

    /// [`locate`](Self::locate)'s answer and every source's location item
    /// for `addr`, in one pass over the files. With one source that can
    /// locate, its answer is the only item and the list is left empty.
    /// Otherwise the items are the
    /// override row that covers the address and each MMDB's location,
    /// without those `locate` ignores (public databases on reserved
    /// ranges); an MMDB built by [`build`] is an override.
    fn locate_with_items(&self, addr: IpAddr) -> (HopGeo, Vec<Evidence>) {
        if self.location_sources() <= 1 {
            return (self.locate(addr), Vec::new());
        }
        let addr = addr.to_canonical();
        let reserved = reserved_range(addr).is_some();
        let row = self.overrides.as_ref().and_then(|t| t.lookup(addr));
        let mut items = Vec::with_capacity(self.sources.len() + 1);
        if let (Some(table), Some(row)) = (&self.overrides, row) {
            let geo = Location {
                country: Some(row.country),
                city: row.city.clone(),
                coordinates: row.coordinates,
                accuracy_km: None,
            };
            let line = format!("{}:{}: {}", table.path().display(), row.line, row.prefix);
            items.push(evidence_item(
                EvidenceKind::Override,
                OVERRIDE_DATABASE,
                &geo,
                Some(line),
            ));
        }
        // As `locate`: an override row takes the origin from the databases
        // only when it names none and the address is public; otherwise a
        // reserved address is known to overlays only.
        let origin_wanted = row.is_none_or(|r| r.asn.is_none() && !reserved);
        let mut location: Decided<'_, Location> = None;
        let mut origin: Decided<'_, Origin> = None;
        for source in &self.sources {
            let overlay = is_overlay(source);
            let allowed = !reserved || overlay;
            let ask_location = allowed && source.provides_location();
            let ask_origin = origin.is_none()
                && source.provides_asn()
                && origin_wanted
                && (allowed || row.is_some());
            if !(ask_location || ask_origin) || source.cannot_hold(addr) {
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
            if ask_origin {
                origin = answer.origin.map(|o| (o, database));
            }
            if let Some(l) = answer.location.filter(|_| ask_location) {
                if l.country.is_some() {
                    let kind = if overlay {
                        EvidenceKind::Override
                    } else {
                        EvidenceKind::Database
                    };
                    items.push(evidence_item(kind, database, &l, None));
                }
                if location.is_none() {
                    location = Some((l, database));
                }
            }
        }
        let located = match row {
            Some(row) => {
                let mut geo = row.to_geo();
                if let Some((o, _)) = origin {
                    geo.asn = Some(o.asn);
                    geo.as_org = o.org;
                }
                geo
            }
            None => compose(location, origin),
        };
        (located, items)
    }
}

/// One source's location as an evidence item.
fn evidence_item(
    kind: EvidenceKind,
    source: &str,
    geo: &Location,
    detail: Option<String>,
) -> Evidence {
    Evidence {
        kind,
        source: source.to_string(),
        country: geo.country,
        city: geo.city.clone(),
        lat: geo.coordinates.map(|c| c.lat),
        lon: geo.coordinates.map(|c| c.lon),
        accuracy_km: geo.accuracy_km,
        detail,
        status: EvidenceStatus::Agrees,
        reason: None,
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

/// Whether a database is an operator overlay written by [`build`].
fn is_overlay(source: &MmdbSource) -> bool {
    source.info().database_type == BUILD_DATABASE_TYPE
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
    enrich_with(trace, db, vantage, None);
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
