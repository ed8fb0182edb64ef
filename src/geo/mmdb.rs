//! One MMDB file opened for lookups: its metadata, detected schema, and a
//! reader that turns an address into a location and an origin AS.
//!
//! The whole file is read into memory rather than memory-mapped. Mapping
//! needs `unsafe` (forbidden here), and a mapped database that a downloader
//! truncates or rewrites in place while the daemon runs is undefined
//! behaviour; a private copy costs the file's size in RAM (tens of MB for a
//! City database) and makes every lookup immune to what happens on disk.
//! Reading new data takes a new [`GeoDb`](super::GeoDb).

use super::error::{GeoError, NotMmdbReason};
use super::plausibility::valid_coordinates;
use super::schema::{detect, is_public_vendor, RecordShape, Schema, Shape};
use crate::model::{Coordinates, CountryCode};
use maxminddb::Reader;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The bytes that open an MMDB metadata section.
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
/// Distinct records sampled to detect the schema.
const SAMPLE_RECORDS: usize = 64;
/// Search-tree nodes visited at most while sampling, so that a damaged tree
/// (cycles, a huge empty region) cannot stall opening.
const SAMPLE_NODE_BUDGET: usize = 200_000;

/// What is known about one opened database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The file.
    pub path: PathBuf,
    /// Metadata `database_type`, e.g. `GeoLite2-City`.
    pub database_type: String,
    /// The detected record layout.
    pub schema: Schema,
    /// Metadata `build_epoch`: when the database was built, Unix seconds.
    pub build_epoch: u64,
    /// Metadata `ip_version`: 4 (IPv4 only) or 6.
    pub ip_version: u16,
    /// Metadata `node_count`: the size of the search tree.
    pub node_count: u32,
    /// Who made it, as its `database_type` tells (`MaxMind`, `DB-IP`, ...).
    pub vendor: &'static str,
    /// SHA-256 (lower-case hex) of the file's bytes as read.
    pub sha256: String,
}

/// A location as one database tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Location {
    pub country: Option<CountryCode>,
    pub city: Option<String>,
    pub coordinates: Option<Coordinates>,
    pub accuracy_km: Option<u32>,
}

/// An origin AS as one database tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub asn: u32,
    pub org: Option<String>,
}

/// What one database says about one address.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Answer {
    pub location: Option<Location>,
    pub origin: Option<Origin>,
}

/// An opened MMDB file.
#[derive(Debug)]
pub(crate) struct MmdbSource {
    info: DatabaseInfo,
    provides_location: bool,
    provides_asn: bool,
    knows_reserved: bool,
    /// Whether an IPv4 address can be in it: an IPv4 file, or an IPv6 file
    /// with an IPv4 subtree that holds data.
    holds_v4: bool,
    reader: Reader<Vec<u8>>,
}

impl MmdbSource {
    /// Reads, checks and classifies a database file.
    pub(crate) fn open(path: &Path) -> Result<Self, GeoError> {
        // Checked before reading: a regular file of at most 1 GiB.
        let bytes = crate::input_file::read(path, crate::input_file::FileKind::GeoIpDatabase)
            .map_err(|source| GeoError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        // The fingerprint of exactly the bytes that answer lookups.
        let sha256 = {
            use sha2::{Digest, Sha256};
            Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let not_mmdb = |reason| GeoError::NotMmdb {
            path: path.to_path_buf(),
            reason,
        };
        // Sample through a borrowing reader first, then keep an owning one.
        let (shape, sample_error) = {
            let reader = Reader::from_source(bytes.as_slice())
                .map_err(|e| not_mmdb(classify_unreadable(&bytes, &e.to_string())))?;
            sample_shape(&reader, &bytes)
        };
        let reader = Reader::from_source(bytes)
            .map_err(|e| not_mmdb(NotMmdbReason::Corrupt(e.to_string())))?;
        let meta = reader.metadata();
        let Some(schema) = detect(&meta.database_type, &shape) else {
            if let (true, Some(error)) = (shape.is_empty(), sample_error) {
                return Err(not_mmdb(NotMmdbReason::Corrupt(format!(
                    "its records cannot be decoded: {error}"
                ))));
            }
            return Err(GeoError::UnknownSchema {
                path: path.to_path_buf(),
                database_type: meta.database_type.clone(),
                fields: shape.describe(),
            });
        };
        let enterprise = meta
            .database_type
            .to_ascii_lowercase()
            .contains("enterprise");
        let knows_reserved = !is_public_vendor(&meta.database_type);
        // Many IPv6 files (ip-location-db's split ones) hold no IPv4 data
        // at all: knowing it at open spares every IPv4 lookup a walk down
        // their tree, and lets a hop that only the IPv4 file knows skip the
        // evidence list.
        let holds_v4 = meta.ip_version == 4
            || "0.0.0.0/0"
                .parse::<ipnetwork::IpNetwork>()
                .ok()
                .and_then(|all| reader.within(all, maxminddb::WithinOptions::default()).ok())
                .is_none_or(|mut networks| networks.next().is_some());
        let info = DatabaseInfo {
            path: path.to_path_buf(),
            vendor: super::schema::vendor(&meta.database_type),
            database_type: meta.database_type.clone(),
            schema,
            build_epoch: meta.build_epoch,
            ip_version: meta.ip_version,
            node_count: meta.node_count,
            sha256,
        };
        Ok(Self {
            info,
            provides_location: schema.provides_location(),
            provides_asn: schema.provides_asn() || enterprise,
            knows_reserved,
            holds_v4,
            reader,
        })
    }

    /// What the file is.
    pub(crate) fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    /// Whether records may carry a location.
    pub(crate) fn provides_location(&self) -> bool {
        self.provides_location
    }

    /// Whether records may carry an origin AS.
    pub(crate) fn provides_asn(&self) -> bool {
        self.provides_asn
    }

    /// Whether its records for reserved ranges are to be believed: true for
    /// every database but a known public vendor's (an operator's own, a
    /// lab's, one built by `geo build`).
    pub(crate) fn knows_reserved(&self) -> bool {
        self.knows_reserved
    }

    /// Whether the file cannot hold `addr` at all (IPv6 in an IPv4 file,
    /// IPv4 in an IPv6 file without IPv4 data).
    pub(crate) fn cannot_hold(&self, addr: IpAddr) -> bool {
        if addr.is_ipv6() {
            self.info.ip_version == 4
        } else {
            !self.holds_v4
        }
    }

    /// What the database says about `addr` (canonical form). An error means
    /// the region of the file the lookup reached is damaged.
    pub(crate) fn lookup(&self, addr: IpAddr) -> Result<Answer, DamagedRegion> {
        if self.cannot_hold(addr) {
            return Ok(Answer::default());
        }
        let result = self.reader.lookup(addr).map_err(DamagedRegion)?;
        if self.info.schema.is_nested() {
            let record: Option<NestedRecord<'_>> = result.decode().map_err(DamagedRegion)?;
            Ok(record.map(NestedRecord::into_answer).unwrap_or_default())
        } else {
            let record: Option<FlatRecord<'_>> = result.decode().map_err(DamagedRegion)?;
            Ok(record.map(FlatRecord::into_answer).unwrap_or_default())
        }
    }
}

/// A lookup reached a damaged region of the file (the reader's own words).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct DamagedRegion(maxminddb::MaxMindDbError);

/// Why a file the MMDB reader refused is not an MMDB, in the user's terms.
fn classify_unreadable(bytes: &[u8], detail: &str) -> NotMmdbReason {
    if bytes.is_empty() {
        NotMmdbReason::Empty
    } else if !bytes
        .windows(METADATA_MARKER.len())
        .any(|w| w == METADATA_MARKER)
    {
        if looks_like_text(bytes) {
            NotMmdbReason::Text
        } else {
            NotMmdbReason::NoMetadataMarker
        }
    } else {
        NotMmdbReason::Corrupt(detail.to_string())
    }
}

/// Whether the start of a file reads as text: UTF-8 without control
/// characters other than tab, CR and LF.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A multi-byte character cut by the 4096-byte window is fine.
        Err(e) if e.error_len().is_none() => match head.get(..e.valid_up_to()) {
            Some(valid) => std::str::from_utf8(valid).unwrap_or_default(),
            None => return false,
        },
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n'))
}

/// Collects the shape of up to [`SAMPLE_RECORDS`] distinct records, walking
/// the search tree in address order within [`SAMPLE_NODE_BUDGET`] nodes.
/// Returns the first decoding error too, if any.
fn sample_shape(reader: &Reader<&[u8]>, bytes: &[u8]) -> (Shape, Option<String>) {
    let meta = reader.metadata();
    let node_count = meta.node_count as usize;
    let (record_bits, width) = (
        meta.record_size,
        if meta.ip_version == 4 { 32 } else { 128 },
    );
    let mut shape = Shape::default();
    let mut first_error = None;
    let mut seen = HashSet::new();
    // (node, address bits so far, depth)
    let mut stack: Vec<(usize, u128, u32)> = vec![(0, 0, 0)];
    let mut visited = 0;
    while let Some((node, bits, depth)) = stack.pop() {
        if seen.len() >= SAMPLE_RECORDS || visited >= SAMPLE_NODE_BUDGET {
            break;
        }
        visited += 1;
        if node > node_count {
            if !seen.insert(node) {
                continue;
            }
            let addr = if width == 32 {
                // The tree is 32 bits deep; `bits` fits.
                IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap_or_default()))
            } else {
                IpAddr::V6(Ipv6Addr::from(bits))
            };
            let decoded = reader.lookup(addr).and_then(|r| r.decode::<RecordShape>());
            match decoded {
                Ok(Some(record)) => shape.add(record),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
            continue;
        }
        if node == node_count || depth >= width {
            continue;
        }
        let Some((left, right)) = read_node(bytes, node, record_bits) else {
            continue;
        };
        // Right pushed first so that the left (lower) half is walked first.
        stack.push((right, bits | (1u128 << (width - 1 - depth)), depth + 1));
        stack.push((left, bits, depth + 1));
    }
    (shape, first_error)
}

/// The two records of search-tree node `node`, per the MMDB format's 24-,
/// 28- and 32-bit layouts; `None` past the end of the file.
fn read_node(bytes: &[u8], node: usize, record_bits: u16) -> Option<(usize, usize)> {
    let size = usize::from(record_bits) / 4;
    let b = bytes.get(node.checked_mul(size)?..node.checked_mul(size)?.checked_add(size)?)?;
    let be = |s: &[u8]| s.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
    match record_bits {
        24 => Some((be(&b[0..3]), be(&b[3..6]))),
        28 => Some((
            (usize::from(b[3] >> 4) << 24) | be(&b[0..3]),
            (usize::from(b[3] & 0x0F) << 24) | be(&b[4..7]),
        )),
        32 => Some((be(&b[0..4]), be(&b[4..8]))),
        _ => None,
    }
}

/// A string that tolerates other value types (read as absent).
#[derive(Debug, Clone, Copy, Default)]
struct Text<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TolerantVisitor::<Text<'a>>::new())
    }
}

impl<'a> Text<'a> {
    /// `self` when present and not blank, else `other`.
    fn or(self, other: Self) -> Self {
        if self.0.is_some_and(|s| !s.trim().is_empty()) {
            self
        } else {
            other
        }
    }
}

/// A number that may also be written as a string (`"37.75"`, `"AS15169"`);
/// other value types read as absent.
#[derive(Debug, Clone, Copy, Default)]
struct Number(Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TolerantVisitor::<Number>::new())
    }
}

impl Number {
    /// `self` when present, else `other`.
    fn or(self, other: Self) -> Self {
        if self.0.is_some() {
            self
        } else {
            other
        }
    }

    /// As a positive integer within `u32`, e.g. an AS number.
    fn as_u32(self) -> Option<u32> {
        let v = self.0?;
        (v.fract() == 0.0 && v >= 1.0 && v <= f64::from(u32::MAX)).then(|| {
            // In range and integral, checked above.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = v as u32;
            n
        })
    }
}

/// What a tolerant visitor produces from each value type.
trait Tolerant<'de>: Sized + Default {
    fn from_str(s: &'de str) -> Self;
    fn from_number(_: f64) -> Self {
        Self::default()
    }
}

impl<'de: 'a, 'a> Tolerant<'de> for Text<'a> {
    fn from_str(s: &'de str) -> Self {
        Self(Some(s))
    }
}

impl<'de> Tolerant<'de> for Number {
    fn from_str(s: &'de str) -> Self {
        let s = s.trim();
        let digits = s
            .strip_prefix("AS")
            .or_else(|| s.strip_prefix("as"))
            .unwrap_or(s);
        Self(digits.parse::<f64>().ok().filter(|v| v.is_finite()))
    }
    fn from_number(v: f64) -> Self {
        Self(Some(v))
    }
}

struct TolerantVisitor<T>(std::marker::PhantomData<T>);

impl<T> TolerantVisitor<T> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<'de, T: Tolerant<'de>> Visitor<'de> for TolerantVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<T, E> {
        Ok(T::from_str(v))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
        // Only reachable with a deserializer that cannot lend its strings;
        // the MMDB reader always lends.
        Ok(T::default())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        // Precision loss past 2^53 is irrelevant for ASNs and radii.
        #[allow(clippy::cast_precision_loss)]
        Ok(T::from_number(v as f64))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        #[allow(clippy::cast_precision_loss)]
        Ok(T::from_number(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        #[allow(clippy::cast_precision_loss)]
        Ok(T::from_number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Ok(T::from_number(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }
}

/// The GeoIP2 layout (City, Country, ASN, DB-IP, built overrides): only the
/// fields used here are decoded, the rest is skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NestedRecord<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    city: Option<Named<'a>>,
    location: Option<NestedLocation>,
    autonomous_system_number: Number,
    #[serde(borrow)]
    autonomous_system_organization: Text<'a>,
    #[serde(borrow)]
    traits: Option<Traits<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IsoCode<'a> {
    #[serde(borrow)]
    iso_code: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named<'a> {
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Names<'a> {
    #[serde(borrow)]
    en: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NestedLocation {
    latitude: Number,
    longitude: Number,
    accuracy_radius: Number,
}

/// GeoIP2 Enterprise keeps the origin AS under `traits`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Traits<'a> {
    autonomous_system_number: Number,
    #[serde(borrow)]
    autonomous_system_organization: Text<'a>,
}

impl NestedRecord<'_> {
    fn into_answer(self) -> Answer {
        // `country` is where the address is used; `registered_country` where
        // its block is registered. The latter stands in only when a record has
        // no `country` (some anycast and satellite blocks).
        let country = self
            .country
            .and_then(|c| country_code(c.iso_code))
            .or_else(|| {
                self.registered_country
                    .and_then(|c| country_code(c.iso_code))
            });
        let city = self
            .city
            .and_then(|c| c.names)
            .and_then(|n| non_empty(n.en));
        let location_record = self.location.unwrap_or_default();
        let coordinates = coordinates(location_record.latitude, location_record.longitude);
        // A radius of 0 km would claim a precision no database has; it reads
        // as absent, like a missing one.
        let accuracy_km = location_record.accuracy_radius.as_u32();
        let traits = self.traits.unwrap_or_default();
        let (asn, org) = match self.autonomous_system_number.as_u32() {
            Some(asn) => (Some(asn), self.autonomous_system_organization),
            None => (
                traits.autonomous_system_number.as_u32(),
                traits.autonomous_system_organization,
            ),
        };
        Answer {
            location: location(country, city, coordinates, accuracy_km),
            origin: asn.map(|asn| Origin {
                asn,
                org: non_empty(org),
            }),
        }
    }
}

/// Flat layouts: ip-location-db (`country_code`, `city`, `latitude`,
/// `longitude`), IPinfo (`country_code` or a code in `country`, `asn` as
/// `"AS123"`, `as_name`, `lat`/`lng`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FlatRecord<'a> {
    #[serde(borrow)]
    country_code: Text<'a>,
    #[serde(borrow)]
    country: Text<'a>,
    #[serde(borrow)]
    city: Text<'a>,
    latitude: Number,
    longitude: Number,
    lat: Number,
    lng: Number,
    lon: Number,
    asn: Number,
    autonomous_system_number: Number,
    #[serde(borrow)]
    as_name: Text<'a>,
    #[serde(borrow)]
    as_org: Text<'a>,
    #[serde(borrow)]
    autonomous_system_organization: Text<'a>,
}

impl FlatRecord<'_> {
    fn into_answer(self) -> Answer {
        // IPinfo lite has the code in `country_code` and the name in
        // `country`; IPinfo's country files have the code in `country`.
        let country = country_code(self.country_code).or_else(|| country_code(self.country));
        let city = non_empty(self.city);
        let coordinates = coordinates(
            self.latitude.or(self.lat),
            self.longitude.or(self.lng).or(self.lon),
        );
        let origin = self
            .asn
            .or(self.autonomous_system_number)
            .as_u32()
            .map(|asn| Origin {
                asn,
                org: non_empty(
                    self.as_name
                        .or(self.as_org)
                        .or(self.autonomous_system_organization),
                ),
            });
        Answer {
            location: location(country, city, coordinates, None),
            origin,
        }
    }
}

fn non_empty(text: Text<'_>) -> Option<String> {
    text.0
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn country_code(text: Text<'_>) -> Option<CountryCode> {
    text.0?.trim().parse().ok()
}

fn coordinates(lat: Number, lon: Number) -> Option<Coordinates> {
    let c = Coordinates {
        lat: lat.0?,
        lon: lon.0?,
    };
    valid_coordinates(c).then_some(c)
}

fn location(
    country: Option<CountryCode>,
    city: Option<String>,
    coordinates: Option<Coordinates>,
    accuracy_km: Option<u32>,
) -> Option<Location> {
    (country.is_some() || city.is_some() || coordinates.is_some()).then(|| Location {
        country,
        city,
        coordinates,
        accuracy_km: coordinates.and(accuracy_km),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_detection() {
        assert!(looks_like_text(b"prefix,country\n10.0.0.0/8,LS\n"));
        assert!(!looks_like_text(&[0, 1, 2, 200, 17]));
        assert!(!looks_like_text(b""));
        assert!(looks_like_text("Maseru – Lesotho".as_bytes()));
    }

    #[test]
    fn unreadable_files_are_classified() {
        assert_eq!(classify_unreadable(b"", "x"), NotMmdbReason::Empty);
        assert_eq!(classify_unreadable(b"hello\n", "x"), NotMmdbReason::Text);
        assert_eq!(
            classify_unreadable(&[0xde, 0xad, 0xbe, 0xef, 0], "x"),
            NotMmdbReason::NoMetadataMarker
        );
        let mut with_marker = vec![0u8; 10];
        with_marker.extend_from_slice(METADATA_MARKER);
        assert_eq!(
            classify_unreadable(&with_marker, "bad metadata"),
            NotMmdbReason::Corrupt("bad metadata".into())
        );
    }

    #[test]
    fn tree_nodes_decode_in_all_record_sizes() {
        assert_eq!(read_node(&[0, 0, 1, 0, 0, 2], 0, 24), Some((1, 2)));
        assert_eq!(
            read_node(&[0x23, 0x45, 0x67, 0x18, 0x9A, 0xBC, 0xDE], 0, 28),
            Some((0x0123_4567, 0x089A_BCDE))
        );
        assert_eq!(read_node(&[0, 0, 0, 3, 0, 0, 0, 4], 0, 32), Some((3, 4)));
        assert_eq!(read_node(&[0, 0, 1], 0, 24), None);
        assert_eq!(read_node(&[0; 6], 0, 20), None);
    }

    #[test]
    fn asn_numbers_accept_strings_and_reject_nonsense() {
        assert_eq!(Number::from_str("AS15169").as_u32(), Some(15169));
        assert_eq!(Number::from_str("64500").as_u32(), Some(64500));
        assert_eq!(Number::from_str("ASX").as_u32(), None);
        assert_eq!(Number(Some(0.0)).as_u32(), None);
        assert_eq!(Number(Some(1.5)).as_u32(), None);
        assert_eq!(Number(Some(5e10)).as_u32(), None);
    }
}
