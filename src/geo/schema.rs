//! Which record layout an MMDB file uses, told from its metadata
//! `database_type` and from the shape of a sample of its records — never
//! from configuration.
//!
//! The shape decides how records are read (nested GeoIP2-style maps or flat
//! `country_code` records, and whether they carry an ASN); the
//! `database_type` names the vendor and settles what the sample cannot (a
//! City database whose sampled records happen to lack a city, a database with
//! no records at all).

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// The record layout of an MMDB file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Schema {
    /// GeoIP2/GeoLite2 City (and Enterprise): `country.iso_code`,
    /// `registered_country`, `city.names.en`, `location.*`.
    MaxMindCity,
    /// GeoIP2/GeoLite2 Country: `country.iso_code`, `registered_country`.
    MaxMindCountry,
    /// GeoLite2-ASN (and GeoIP2 ISP): `autonomous_system_number`,
    /// `autonomous_system_organization`.
    MaxMindAsn,
    /// DB-IP city lite: the GeoIP2 City layout without accuracy radius.
    DbIpCity,
    /// DB-IP country lite: the GeoIP2 Country layout.
    DbIpCountry,
    /// DB-IP ASN lite: the GeoLite2-ASN keys.
    DbIpAsn,
    /// IPinfo lite and other flat country-plus-ASN records: `country_code`,
    /// `asn` (`"AS15169"`), `as_name`.
    IpInfoLite,
    /// Flat `{country_code: "ZA"}` records (ip-location-db country files).
    FlatCountry,
    /// Flat `country_code`, `city`, `latitude`, `longitude` records
    /// (ip-location-db city files).
    FlatCity,
    /// Flat `asn`/`as_name` records without a location.
    FlatAsn,
    /// The GeoIP2 City layout with the GeoLite2-ASN keys in the same record,
    /// as `transitwatch geo build` writes it.
    CityAsn,
}

impl Schema {
    /// The kind of data, for metrics labels: `city`, `country`, `asn`,
    /// `country+asn` or `city+asn`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaxMindCity | Self::DbIpCity | Self::FlatCity => "city",
            Self::MaxMindCountry | Self::DbIpCountry | Self::FlatCountry => "country",
            Self::MaxMindAsn | Self::DbIpAsn | Self::FlatAsn => "asn",
            Self::IpInfoLite => "country+asn",
            Self::CityAsn => "city+asn",
        }
    }

    /// A unique name of the layout, e.g. `maxmind-city`, `flat-country`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::MaxMindCity => "maxmind-city",
            Self::MaxMindCountry => "maxmind-country",
            Self::MaxMindAsn => "maxmind-asn",
            Self::DbIpCity => "dbip-city",
            Self::DbIpCountry => "dbip-country",
            Self::DbIpAsn => "dbip-asn",
            Self::IpInfoLite => "ipinfo-lite",
            Self::FlatCountry => "flat-country",
            Self::FlatCity => "flat-city",
            Self::FlatAsn => "flat-asn",
            Self::CityAsn => "city-asn",
        }
    }

    /// Whether records carry a location (at least a country).
    #[must_use]
    pub const fn provides_location(self) -> bool {
        !matches!(self, Self::MaxMindAsn | Self::DbIpAsn | Self::FlatAsn)
    }

    /// Whether records carry an origin AS.
    #[must_use]
    pub const fn provides_asn(self) -> bool {
        matches!(
            self,
            Self::MaxMindAsn | Self::DbIpAsn | Self::FlatAsn | Self::IpInfoLite | Self::CityAsn
        )
    }

    /// Whether records are nested GeoIP2-style maps (else flat).
    pub(crate) const fn is_nested(self) -> bool {
        matches!(
            self,
            Self::MaxMindCity
                | Self::MaxMindCountry
                | Self::MaxMindAsn
                | Self::DbIpCity
                | Self::DbIpCountry
                | Self::DbIpAsn
                | Self::CityAsn
        )
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a value in a record is, as far as detection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Map,
    Array,
    Text,
    Number,
    Bool,
    Bytes,
}

impl Kind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Array => "array",
            Self::Text => "string",
            Self::Number => "number",
            Self::Bool => "boolean",
            Self::Bytes => "bytes",
        }
    }
}

/// The union of the top-level keys of sampled records and their kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    keys: BTreeMap<String, Kind>,
    /// Set when some record is not a map at all.
    non_map: Option<Kind>,
}

impl Shape {
    /// Adds one record's shape (the first kind seen for a key stays).
    pub(crate) fn add(&mut self, record: RecordShape) {
        match record {
            RecordShape::Map(keys) => {
                for (k, kind) in keys {
                    self.keys.entry(k).or_insert(kind);
                }
            }
            RecordShape::Other(kind) => self.non_map = self.non_map.or(Some(kind)),
        }
    }

    /// Whether nothing was sampled.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.non_map.is_none()
    }

    fn is(&self, key: &str, kind: Kind) -> bool {
        self.keys.get(key) == Some(&kind)
    }

    fn is_scalar(&self, key: &str) -> bool {
        matches!(self.keys.get(key), Some(Kind::Text | Kind::Number))
    }

    /// The keys seen, as `name (kind)`, for error messages.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .keys
            .iter()
            .map(|(k, kind)| format!("{k} ({})", kind.as_str()))
            .collect();
        if let Some(kind) = self.non_map {
            out.push(format!("(records that are a {}, not a map)", kind.as_str()));
        }
        out
    }
}

/// The shape of one record: its top-level keys, or the kind of a record
/// that is not a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordShape {
    Map(Vec<(String, Kind)>),
    Other(Kind),
}

impl<'de> Deserialize<'de> for RecordShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordShapeVisitor)
    }
}

struct RecordShapeVisitor;

impl<'de> Visitor<'de> for RecordShapeVisitor {
    type Value = RecordShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an MMDB record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let KindOf(kind) = map.next_value()?;
            keys.push((key, kind));
        }
        Ok(RecordShape::Map(keys))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(RecordShape::Other(Kind::Array))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Text))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Bytes))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Bool))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Number))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Number))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Number))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RecordShape::Other(Kind::Number))
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The kind of any value, consuming it.
struct KindOf(Kind);

impl<'de> Deserialize<'de> for KindOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = KindOf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MMDB value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KindOf(Kind::Map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(KindOf(Kind::Array))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Text))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Bytes))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Bool))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Number))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Number))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Number))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(KindOf(Kind::Number))
    }
}

/// Who made a database, as its `database_type` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    MaxMind,
    DbIp,
    IpInfo,
    Transitwatch,
    Other,
}

/// What a `database_type` says the database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    City,
    Country,
    Asn,
    Unknown,
}

/// Who made a database, by its `database_type`: `MaxMind`, `DB-IP`,
/// `IPinfo`, `transitwatch` (built by `geo build`) or `other`.
#[must_use]
pub fn vendor(database_type: &str) -> &'static str {
    match classify(database_type).0 {
        Vendor::MaxMind => "MaxMind",
        Vendor::DbIp => "DB-IP",
        Vendor::IpInfo => "IPinfo",
        Vendor::Transitwatch => "transitwatch",
        Vendor::Other => "other",
    }
}

fn classify(database_type: &str) -> (Vendor, Claim) {
    let t = database_type.to_ascii_lowercase();
    // DB-IP's ASN file calls itself "DBIP-ASN-Lite (compat=GeoLite2-ASN)":
    // the vendor is the prefix, not any name further in.
    let vendor = if t.starts_with("dbip") || t.starts_with("db-ip") {
        Vendor::DbIp
    } else if t.starts_with("ipinfo") {
        Vendor::IpInfo
    } else if t.starts_with("transitwatch") {
        Vendor::Transitwatch
    } else if t.starts_with("geoip") || t.starts_with("geolite") || t.contains("maxmind") {
        Vendor::MaxMind
    } else {
        Vendor::Other
    };
    let claim = if t.contains("city") || t.contains("enterprise") {
        Claim::City
    } else if t.contains("asn") || t.contains("isp") {
        Claim::Asn
    } else if t.contains("country") {
        Claim::Country
    } else {
        Claim::Unknown
    };
    (vendor, claim)
}

/// `database_type` prefixes (lower case) of public vendors' databases:
/// MaxMind GeoIP2 / GeoLite2, DB-IP, IPinfo, IP2Location, IPLocate.
const PUBLIC_PREFIXES: &[&str] = &[
    "geoip",
    "geolite",
    "dbip",
    "db-ip",
    "ipinfo",
    "ip2location",
    "iplocate",
];

/// `database_type`s (lower case, without a trailing ` ipv4` / ` ipv6`) of
/// ip-location-db's files, whose writer names them by their kind only.
const PUBLIC_NAMES: &[&str] = &[
    "country",
    "city",
    "asn",
    "asn-country",
    "geo-asn-country",
    "geo-whois-asn-country",
    "iptoasn-country",
    "ip-location-db",
];

/// Whether a `database_type` is a known public vendor's. Their data for
/// reserved ranges (private, documentation, benchmarking, ...) is noise;
/// every other database — an operator's or a lab's own — locates those
/// ranges like any other.
pub(crate) fn is_public_vendor(database_type: &str) -> bool {
    let t = database_type.trim().to_ascii_lowercase();
    let bare = t
        .strip_suffix(" ipv4")
        .or_else(|| t.strip_suffix(" ipv6"))
        .unwrap_or(&t);
    PUBLIC_PREFIXES.iter().any(|p| t.starts_with(p))
        || t.contains("maxmind")
        || t.contains("ip-location-db")
        || PUBLIC_NAMES.contains(&bare)
}

/// The schema of a database from its `database_type` and sampled record
/// shape; `None` when neither says anything this module can read.
pub(crate) fn detect(database_type: &str, shape: &Shape) -> Option<Schema> {
    let (vendor, claim) = classify(database_type);
    if shape.is_empty() {
        return from_metadata(vendor, claim);
    }
    let nested_location = [
        "country",
        "registered_country",
        "represented_country",
        "city",
        "location",
    ]
    .iter()
    .any(|k| shape.is(k, Kind::Map));
    let nested_city = shape.is("city", Kind::Map) || shape.is("location", Kind::Map);
    let nested_asn = shape.is("autonomous_system_number", Kind::Number);
    let flat_country = shape.is("country_code", Kind::Text) || shape.is("country", Kind::Text);
    let flat_city =
        shape.is("city", Kind::Text) || shape.is_scalar("latitude") || shape.is_scalar("lat");
    let flat_asn = shape.is_scalar("asn");

    if nested_location {
        let city = nested_city || claim == Claim::City;
        return Some(match vendor {
            Vendor::DbIp if city => Schema::DbIpCity,
            Vendor::DbIp => Schema::DbIpCountry,
            Vendor::Transitwatch => Schema::CityAsn,
            _ if nested_asn => Schema::CityAsn,
            _ if city => Schema::MaxMindCity,
            _ => Schema::MaxMindCountry,
        });
    }
    if flat_country {
        return Some(if flat_asn || nested_asn {
            Schema::IpInfoLite
        } else if flat_city {
            Schema::FlatCity
        } else {
            Schema::FlatCountry
        });
    }
    if nested_asn {
        return Some(if vendor == Vendor::DbIp {
            Schema::DbIpAsn
        } else {
            Schema::MaxMindAsn
        });
    }
    flat_asn.then_some(Schema::FlatAsn)
}

/// The schema a known `database_type` implies, for databases without records.
fn from_metadata(vendor: Vendor, claim: Claim) -> Option<Schema> {
    Some(match (vendor, claim) {
        (Vendor::Transitwatch, _) => Schema::CityAsn,
        (Vendor::IpInfo, _) => Schema::IpInfoLite,
        (Vendor::MaxMind, Claim::City) => Schema::MaxMindCity,
        (Vendor::MaxMind, Claim::Country) => Schema::MaxMindCountry,
        (Vendor::MaxMind, Claim::Asn) => Schema::MaxMindAsn,
        (Vendor::DbIp, Claim::City) => Schema::DbIpCity,
        (Vendor::DbIp, Claim::Country) => Schema::DbIpCountry,
        (Vendor::DbIp, Claim::Asn) => Schema::DbIpAsn,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(keys: &[(&str, Kind)]) -> Shape {
        let mut s = Shape::default();
        s.add(RecordShape::Map(
            keys.iter()
                .map(|(k, kind)| ((*k).to_string(), *kind))
                .collect(),
        ));
        s
    }

    #[test]
    fn public_vendors_are_told_from_custom_types() {
        for (database_type, public) in [
            ("GeoLite2-City", true),
            ("GeoIP2-Country", true),
            ("GeoIP2-Enterprise", true),
            ("GeoLite2-ASN", true),
            ("DBIP-City-Lite", true),
            ("DBIP-ASN-Lite (compat=GeoLite2-ASN)", true),
            ("db-ip country lite", true),
            ("ipinfo lite", true),
            ("IP2LOCATION-LITE-DB11", true),
            ("country", true),
            ("country ipv4", true),
            ("city ipv6", true),
            ("asn ipv4", true),
            ("geo-whois-asn-country", true),
            ("MaxMind custom", true),
            ("transitwatch-overrides", false),
            ("acme-lab", false),
            ("Lesotho-Telecom-Routers", false),
            ("countryside-isp", false),
            ("city-links", false),
            ("", false),
        ] {
            assert_eq!(is_public_vendor(database_type), public, "{database_type:?}");
        }
    }

    #[test]
    fn nested_layouts_by_vendor_and_shape() {
        let city = shape(&[
            ("country", Kind::Map),
            ("city", Kind::Map),
            ("location", Kind::Map),
        ]);
        let country = shape(&[("country", Kind::Map), ("registered_country", Kind::Map)]);
        let asn = shape(&[
            ("autonomous_system_number", Kind::Number),
            ("autonomous_system_organization", Kind::Text),
        ]);
        assert_eq!(detect("GeoLite2-City", &city), Some(Schema::MaxMindCity));
        assert_eq!(detect("GeoIP2-City", &country), Some(Schema::MaxMindCity));
        assert_eq!(
            detect("GeoLite2-Country", &country),
            Some(Schema::MaxMindCountry)
        );
        assert_eq!(detect("GeoLite2-ASN", &asn), Some(Schema::MaxMindAsn));
        assert_eq!(detect("DBIP-City-Lite", &city), Some(Schema::DbIpCity));
        assert_eq!(
            detect("DBIP-Country-Lite", &country),
            Some(Schema::DbIpCountry)
        );
        assert_eq!(
            detect("DBIP-ASN-Lite (compat=GeoLite2-ASN)", &asn),
            Some(Schema::DbIpAsn)
        );
        assert_eq!(
            detect("transitwatch-overrides", &country),
            Some(Schema::CityAsn)
        );
        let mut both = city.clone();
        both.add(RecordShape::Map(vec![(
            "autonomous_system_number".into(),
            Kind::Number,
        )]));
        assert_eq!(detect("Custom", &both), Some(Schema::CityAsn));
    }

    #[test]
    fn flat_layouts_by_shape() {
        let ipinfo = shape(&[
            ("country_code", Kind::Text),
            ("country", Kind::Text),
            ("asn", Kind::Text),
            ("as_name", Kind::Text),
            ("continent_code", Kind::Text),
        ]);
        assert_eq!(detect("ipinfo lite", &ipinfo), Some(Schema::IpInfoLite));
        assert_eq!(
            detect("country", &shape(&[("country_code", Kind::Text)])),
            Some(Schema::FlatCountry)
        );
        let flat_city = shape(&[
            ("country_code", Kind::Text),
            ("city", Kind::Text),
            ("latitude", Kind::Number),
            ("longitude", Kind::Number),
        ]);
        assert_eq!(detect("city", &flat_city), Some(Schema::FlatCity));
        assert_eq!(
            detect(
                "x",
                &shape(&[("asn", Kind::Number), ("as_name", Kind::Text)])
            ),
            Some(Schema::FlatAsn)
        );
    }

    #[test]
    fn unknown_shapes_and_empty_databases() {
        assert_eq!(detect("Acme-Thing", &shape(&[("foo", Kind::Number)])), None);
        let mut strings = Shape::default();
        strings.add(RecordShape::Other(Kind::Text));
        assert_eq!(detect("Acme-Thing", &strings), None);
        assert_eq!(
            strings.describe(),
            vec!["(records that are a string, not a map)"]
        );
        let empty = Shape::default();
        assert_eq!(detect("GeoLite2-ASN", &empty), Some(Schema::MaxMindAsn));
        assert_eq!(detect("GeoLite2-Anonymous-IP", &empty), None);
        assert_eq!(detect("Acme-Thing", &empty), None);
        // The shape wins over a misleading name.
        let asn = shape(&[("autonomous_system_number", Kind::Number)]);
        assert_eq!(detect("GeoLite2-City", &asn), Some(Schema::MaxMindAsn));
    }

    #[test]
    fn kinds_are_labelled_for_metrics() {
        assert_eq!(Schema::MaxMindCity.as_str(), "city");
        assert_eq!(Schema::FlatCountry.as_str(), "country");
        assert_eq!(Schema::DbIpAsn.as_str(), "asn");
        assert_eq!(Schema::CityAsn.as_str(), "city+asn");
        assert!(Schema::CityAsn.provides_asn() && Schema::CityAsn.provides_location());
        assert!(!Schema::MaxMindAsn.provides_location());
    }
}
