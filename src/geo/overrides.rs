//! Operator overrides: a CSV file of prefixes whose location the operator
//! knows better than any database, looked up by longest prefix match.
//!
//! Format, one prefix per line:
//!
//! ```text
//! # prefix,country[,city,lat,lon,asn,note]
//! prefix,country,city,lat,lon,asn,note
//! 198.51.100.0/24,LS,Maseru,-29.31,27.48,AS64500,lab core
//! 2001:db8:100::/48,LS
//! 192.0.2.7,ZA,,,,64510,
//! ```
//!
//! The header line is optional; blank lines and lines starting with `#` are
//! ignored; a prefix is a CIDR block or a bare address (a host prefix);
//! optional fields may be empty or left out; `lat` and `lon` come together;
//! the ASN may carry an `AS` prefix. Fields may be double-quoted (`""` is a
//! quote inside one), and the note takes the rest of the line, commas and
//! all. Every error names the file, the line and the field.

use super::csv_fields::split_fields;
use super::error::GeoError;
use super::lpm::PrefixIndex;
use super::prefix::IpPrefix;
use super::{LoadedFile, LocationFileKind};
use crate::model::{Coordinates, CountryCode, GeoSource, HopGeo};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// The `database` name of answers that come from overrides.
pub const OVERRIDE_DATABASE: &str = "override";

/// The column names, in order.
const FIELDS: [&str; 7] = ["prefix", "country", "city", "lat", "lon", "asn", "note"];

/// One line of an overrides file.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideRow {
    /// The prefix it covers.
    pub prefix: IpPrefix,
    /// Where the prefix is.
    pub country: CountryCode,
    /// City, when given.
    pub city: Option<String>,
    /// Coordinates, when given.
    pub coordinates: Option<Coordinates>,
    /// Origin AS, when given.
    pub asn: Option<u32>,
    /// The operator's note, when given.
    pub note: Option<String>,
    /// 1-based line number in its file.
    pub line: usize,
}

impl OverrideRow {
    /// The location this row gives, as an override answer.
    #[must_use]
    pub fn to_geo(&self) -> HopGeo {
        HopGeo {
            country: Some(self.country),
            city: self.city.clone(),
            lat: self.coordinates.map(|c| c.lat),
            lon: self.coordinates.map(|c| c.lon),
            asn: self.asn,
            as_org: None,
            source: GeoSource::Override,
            plausible: None,
            database: Some(OVERRIDE_DATABASE.to_string()),
            accuracy_km: None,
            ..HopGeo::default()
        }
    }
}

/// Reads and checks an overrides file.
///
/// # Errors
///
/// [`GeoError::Read`] when the file cannot be read (also when it is not a
/// regular file or is over the 64 MiB maximum), [`GeoError::Overrides`]
/// naming the line and field of the first bad line.
pub fn load_overrides(path: &Path) -> Result<Vec<OverrideRow>, GeoError> {
    parse_overrides(path, &read_text(path)?)
}

/// The text of an overrides file, read bounded.
fn read_text(path: &Path) -> Result<String, GeoError> {
    crate::input_file::read_to_string(path, crate::input_file::FileKind::Overrides).map_err(
        |source| GeoError::Read {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// Parses the text of an overrides file; `path` is only used in errors.
///
/// # Errors
///
/// [`GeoError::Overrides`] naming the line and field of the first bad line.
pub fn parse_overrides(path: &Path, text: &str) -> Result<Vec<OverrideRow>, GeoError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut seen: HashMap<IpPrefix, usize> = HashMap::new();
    let mut first_data_line = true;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let error = |field: &'static str, message: String| GeoError::Overrides {
            path: path.to_path_buf(),
            line,
            field,
            message,
        };
        let fields =
            split_fields(content, Some(FIELDS.len() - 1)).map_err(|(column, message)| {
                error(FIELDS.get(column).copied().unwrap_or("note"), message)
            })?;
        let is_header = first_data_line
            && fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case(FIELDS[0]));
        first_data_line = false;
        if is_header {
            continue;
        }
        let row = parse_row(&fields, line).map_err(|(field, message)| error(field, message))?;
        if let Some(previous) = seen.insert(row.prefix, line) {
            return Err(error(
                "prefix",
                format!("`{}` is already given on line {previous}", row.prefix),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Checks one data line's fields. An error names the field.
fn parse_row(fields: &[String], line: usize) -> Result<OverrideRow, (&'static str, String)> {
    let get = |i: usize| fields.get(i).map(String::as_str).filter(|s| !s.is_empty());
    let prefix: IpPrefix = get(0)
        .ok_or((
            "prefix",
            "missing; expected a CIDR prefix or an address".to_string(),
        ))?
        .parse()
        .map_err(|e: super::prefix::InvalidPrefix| ("prefix", e.to_string()))?;
    let country: CountryCode = get(1)
        .ok_or((
            "country",
            "missing; expected an ISO 3166-1 alpha-2 code such as LS".to_string(),
        ))?
        .parse()
        .map_err(|e: crate::model::InvalidCountryCode| ("country", e.to_string()))?;
    let city = get(2).map(str::to_string);
    let lat = get(3).map(|s| parse_degrees(s, "lat", 90.0)).transpose()?;
    let lon = get(4).map(|s| parse_degrees(s, "lon", 180.0)).transpose()?;
    let coordinates = match (lat, lon) {
        (Some(lat), Some(lon)) => Some(Coordinates { lat, lon }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(("lon", "missing; a latitude needs a longitude".to_string()))
        }
        (None, Some(_)) => {
            return Err(("lat", "missing; a longitude needs a latitude".to_string()))
        }
    };
    let asn = get(5).map(parse_asn).transpose()?;
    let note = get(6).map(str::to_string);
    Ok(OverrideRow {
        prefix,
        country,
        city,
        coordinates,
        asn,
        note,
        line,
    })
}

fn parse_degrees(
    text: &str,
    field: &'static str,
    limit: f64,
) -> Result<f64, (&'static str, String)> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= limit => Ok(v),
        _ => Err((
            field,
            format!(
                "`{text}` is not a {} in degrees (-{limit} to {limit})",
                if field == "lat" {
                    "latitude"
                } else {
                    "longitude"
                }
            ),
        )),
    }
}

fn parse_asn(text: &str) -> Result<u32, (&'static str, String)> {
    let digits = text
        .strip_prefix("AS")
        .or_else(|| text.strip_prefix("as"))
        .or_else(|| text.strip_prefix("As"))
        .unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err((
            "asn",
            format!("`{text}` is not an AS number (1 to 4294967295, optionally as AS64500)"),
        )),
    }
}

/// Overrides loaded for lookups: the rows and a longest-prefix-match index
/// per address family.
#[derive(Debug, Clone)]
pub(crate) struct OverrideTable {
    file: LoadedFile,
    rows: Vec<OverrideRow>,
    index: PrefixIndex,
}

impl OverrideTable {
    /// Loads and indexes an overrides file, fingerprinting the bytes parsed.
    pub(crate) fn open(path: &Path) -> Result<Self, GeoError> {
        let text = read_text(path)?;
        let rows = parse_overrides(path, &text)?;
        let file = LoadedFile::of(LocationFileKind::Overrides, path, text.as_bytes());
        Ok(Self::from_rows(file, rows))
    }

    /// Indexes rows; `file` names their file in answers and provenance.
    pub(crate) fn from_rows(file: LoadedFile, rows: Vec<OverrideRow>) -> Self {
        Self {
            file,
            index: PrefixIndex::build(rows.iter().map(|row| row.prefix)),
            rows,
        }
    }

    /// The row of the longest prefix covering `addr` (canonical form).
    pub(crate) fn lookup(&self, addr: IpAddr) -> Option<&OverrideRow> {
        self.rows.get(self.index.get(addr)?)
    }

    /// The file the rows came from.
    pub(crate) fn path(&self) -> &Path {
        &self.file.path
    }

    /// The file the rows came from, with the SHA-256 of its bytes.
    pub(crate) fn file(&self) -> &LoadedFile {
        &self.file
    }

    /// How many prefixes are loaded.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<OverrideRow>, GeoError> {
        parse_overrides(Path::new("ov.csv"), text)
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_full_and_minimal_rows_headers_comments_and_quotes() {
        let rows = parse(
            "\u{feff}prefix,country,city,lat,lon,asn,note\n\
             # a comment\n\
             \n\
             198.51.100.0/24,ls,Maseru,-29.31,27.48,AS64500,lab core\n\
             2001:db8:100::/48,ZA\r\n\
             192.0.2.7 , ZA ,,,,64510,\n\
             203.0.113.0/24,LS,\"Maseru, West\",,,,lab core, rack \"3\"\n\
             203.0.114.0/24,LS,,,,,\"said \"\"hi\"\"\"\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[0].country.as_str(), "LS");
        assert_eq!(rows[0].city.as_deref(), Some("Maseru"));
        assert_eq!(
            rows[0].coordinates,
            Some(Coordinates {
                lat: -29.31,
                lon: 27.48
            })
        );
        assert_eq!(rows[0].asn, Some(64500));
        assert_eq!(rows[0].note.as_deref(), Some("lab core"));
        assert_eq!(rows[1].prefix.to_string(), "2001:db8:100::/48");
        assert_eq!(rows[1].city, None);
        assert_eq!(rows[2].prefix.to_string(), "192.0.2.7/32");
        assert_eq!(rows[2].asn, Some(64510));
        assert_eq!(rows[2].note, None);
        assert_eq!(rows[3].city.as_deref(), Some("Maseru, West"));
        assert_eq!(rows[3].note.as_deref(), Some("lab core, rack \"3\""));
        assert_eq!(rows[4].note.as_deref(), Some("said \"hi\""));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = error_of("10.0.0.0/8,LS\n\n10.0.0.0/33,LS\n");
        assert!(e.starts_with("ov.csv:3: field `prefix`:"), "{e}");
        let e = error_of("10.0.0.0/8,LSO\n");
        assert!(e.starts_with("ov.csv:1: field `country`:"), "{e}");
        let e = error_of("10.0.0.0/8\n");
        assert!(e.starts_with("ov.csv:1: field `country`: missing"), "{e}");
        let e = error_of("10.0.0.0/8,LS,,91,0\n");
        assert!(e.starts_with("ov.csv:1: field `lat`:"), "{e}");
        let e = error_of("10.0.0.0/8,LS,,abc,0\n");
        assert!(e.contains("field `lat`: `abc` is not a latitude"), "{e}");
        let e = error_of("10.0.0.0/8,LS,,10,\n");
        assert!(e.starts_with("ov.csv:1: field `lon`:"), "{e}");
        let e = error_of("10.0.0.0/8,LS,,10,181\n");
        assert!(e.contains("field `lon`: `181` is not a longitude"), "{e}");
        let e = error_of("10.0.0.0/8,LS,,,,ASX\n");
        assert!(e.starts_with("ov.csv:1: field `asn`:"), "{e}");
        let e = error_of("10.0.0.0/8,LS,\"Mas\n");
        assert!(
            e.starts_with("ov.csv:1: field `city`: a quoted field"),
            "{e}"
        );
        let e = error_of("10.0.0.0/8,LS\n10.0.0.0/8,ZA\n");
        assert!(e.contains("ov.csv:2: field `prefix`: `10.0.0.0/8` is already given on line 1"));
        // The header is only recognised as the first data line.
        let e = error_of("10.0.0.0/8,LS\nprefix,country\n");
        assert!(e.starts_with("ov.csv:2: field `prefix`:"), "{e}");
    }

    #[test]
    fn table_answers_the_longest_prefix() {
        let rows = parse(
            "10.0.0.0/8,ZA\n10.1.0.0/16,LS\n10.1.2.3,BW\n2001:db8::/32,ZA\n2001:db8:1::/48,LS\n",
        )
        .unwrap();
        let file = LoadedFile::of(LocationFileKind::Overrides, Path::new("ov.csv"), b"");
        let table = OverrideTable::from_rows(file, rows);
        let country = |a: &str| {
            table
                .lookup(a.parse().unwrap())
                .map(|r| r.country.to_string())
        };
        assert_eq!(country("10.200.0.1").as_deref(), Some("ZA"));
        assert_eq!(country("10.1.9.9").as_deref(), Some("LS"));
        assert_eq!(country("10.1.2.3").as_deref(), Some("BW"));
        assert_eq!(country("::ffff:10.1.2.3").as_deref(), Some("BW"));
        assert_eq!(country("11.0.0.0"), None);
        assert_eq!(country("2001:db8:2::1").as_deref(), Some("ZA"));
        assert_eq!(country("2001:db8:1::1").as_deref(), Some("LS"));
        assert_eq!(country("2001:db9::1"), None);
        assert_eq!(table.len(), 5);
    }
}
