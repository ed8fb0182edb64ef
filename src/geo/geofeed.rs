//! RFC 8805 geofeeds: the CSV files in which address holders publish where
//! their prefixes are used (RFC 9632 says how a feed is found from the
//! `geofeed:` attribute of an `inetnum` whois object).
//!
//! One entry per line, five fields, every one but the first optional:
//!
//! ```text
//! # ip_prefix,alpha2code,region,city,postal_code
//! 192.0.2.0/24,LS,LS-A,Maseru,
//! 2001:db8:100::/48,ZA,ZA-GP,Johannesburg
//! 198.51.100.0/24,,,,
//! ```
//!
//! - `ip_prefix`: a CIDR prefix (or a bare address, a host prefix);
//! - `alpha2code`: an ISO 3166-1 alpha-2 country; empty means the holder
//!   asks that the prefix not be located (the entry still hides wider
//!   entries of the same feed);
//! - `region`: an ISO 3166-2 subdivision of that country (`LS-A`);
//! - `city`: a free-text city name;
//! - `postal_code`: deprecated by RFC 8805, read and ignored.
//!
//! Lines starting with `#`, blank lines and lines of commas only are
//! ignored, fields may be double-quoted (RFC 4180), a header line
//! (`ip_prefix,...`) is tolerated.
//! Lookups are by longest prefix match within one file; several files are
//! asked in the order configured. Every error names the file, the line and
//! the field.

use super::csv_fields::split_fields;
use super::error::GeoError;
use super::lpm::PrefixIndex;
use super::prefix::IpPrefix;
use super::{LoadedFile, LocationFileKind};
use crate::model::{Coordinates, CountryCode};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// The field names of RFC 8805, in order.
const FIELDS: [&str; 5] = ["ip_prefix", "alpha2code", "region", "city", "postal_code"];

/// One entry of a geofeed.
#[derive(Debug, Clone, PartialEq)]
pub struct GeofeedEntry {
    /// The prefix it covers.
    pub prefix: IpPrefix,
    /// Its country; `None` when the holder asks that it not be located.
    pub country: Option<CountryCode>,
    /// Its ISO 3166-2 region (`LS-A`), when given.
    pub region: Option<String>,
    /// Its city, when given.
    pub city: Option<String>,
    /// The city's coordinates, when a city table knows them (see
    /// [`GeoDb::with_city_coordinates`](super::GeoDb::with_city_coordinates)).
    pub coordinates: Option<Coordinates>,
    /// 1-based line number in its file.
    pub line: usize,
}

impl GeofeedEntry {
    /// The entry as the feed wrote it: `prefix,CC,region,city`.
    #[must_use]
    pub fn as_written(&self) -> String {
        format!(
            "{},{},{},{}",
            self.prefix,
            self.country.map(|c| c.to_string()).unwrap_or_default(),
            self.region.as_deref().unwrap_or_default(),
            self.city.as_deref().unwrap_or_default()
        )
    }
}

/// Reads and checks a geofeed file.
///
/// # Errors
///
/// [`GeoError::Read`] when the file cannot be read (also when it is not a
/// regular file or is over the 64 MiB maximum), [`GeoError::Geofeed`]
/// naming the line and field of the first bad line.
pub fn load_geofeed(path: &Path) -> Result<Vec<GeofeedEntry>, GeoError> {
    parse_geofeed(path, &read_text(path)?)
}

/// The text of a geofeed file, read bounded.
fn read_text(path: &Path) -> Result<String, GeoError> {
    crate::input_file::read_to_string(path, crate::input_file::FileKind::Geofeed).map_err(
        |source| GeoError::Read {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// Parses the text of a geofeed; `path` is only used in errors.
///
/// # Errors
///
/// [`GeoError::Geofeed`] naming the line and field of the first bad line.
pub fn parse_geofeed(path: &Path, text: &str) -> Result<Vec<GeofeedEntry>, GeoError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut seen: HashMap<IpPrefix, usize> = HashMap::new();
    let mut first = true;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let error = |field: &'static str, message: String| GeoError::Geofeed {
            path: path.to_path_buf(),
            line,
            field,
            message,
        };
        let fields = split_fields(content, None).map_err(|(column, message)| {
            error(FIELDS.get(column).copied().unwrap_or("line"), message)
        })?;
        // A line of commas only (some feeds pad their comments so).
        if fields.iter().all(String::is_empty) {
            continue;
        }
        let get = |i: usize| fields.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let is_header = first
            && get(0).is_some_and(|f| {
                f.eq_ignore_ascii_case("ip_prefix") || f.eq_ignore_ascii_case("prefix")
            });
        first = false;
        if is_header {
            continue;
        }
        if fields.len() < 2 || fields.len() > FIELDS.len() {
            return Err(error(
                "line",
                format!(
                    "{} field{}; a geofeed line has 2 to 5: {}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" },
                    FIELDS.join(",")
                ),
            ));
        }
        let entry = parse_entry(get(0), get(1), get(2), get(3), line)
            .map_err(|(field, message)| error(field, message))?;
        if let Some(previous) = seen.insert(entry.prefix, line) {
            return Err(error(
                "ip_prefix",
                format!("`{}` is already given on line {previous}", entry.prefix),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Checks one entry's fields. An error names the field.
fn parse_entry(
    prefix: Option<&str>,
    country: Option<&str>,
    region: Option<&str>,
    city: Option<&str>,
    line: usize,
) -> Result<GeofeedEntry, (&'static str, String)> {
    let prefix: IpPrefix = prefix
        .ok_or(("ip_prefix", "missing; expected a CIDR prefix".to_string()))?
        .parse()
        .map_err(|e: super::prefix::InvalidPrefix| ("ip_prefix", e.to_string()))?;
    let country = country.map(parse_country).transpose()?;
    let region = match (region, country) {
        (None, _) => None,
        (Some(r), None) => return Err(("region", format!("`{r}` is given without an alpha2code"))),
        (Some(r), Some(c)) => Some(parse_region(r, c)?),
    };
    Ok(GeofeedEntry {
        prefix,
        country,
        region,
        city: city.map(str::to_string),
        coordinates: None,
        line,
    })
}

fn parse_country(text: &str) -> Result<CountryCode, (&'static str, String)> {
    let code: CountryCode = text
        .parse()
        .map_err(|e: crate::model::InvalidCountryCode| ("alpha2code", e.to_string()))?;
    // XK (Kosovo) is user-assigned but used by every registry and feed.
    if code.as_str() != "XK" && rust_iso3166::from_alpha2(code.as_str()).is_none() {
        return Err((
            "alpha2code",
            format!("`{text}` is not an assigned ISO 3166-1 alpha-2 country code"),
        ));
    }
    Ok(code)
}

/// An ISO 3166-2 code of `country`: `CC-` and 1 to 3 letters or digits.
fn parse_region(text: &str, country: CountryCode) -> Result<String, (&'static str, String)> {
    let upper = text.to_ascii_uppercase();
    let valid = upper.split_once('-').is_some_and(|(cc, sub)| {
        cc == country.as_str()
            && (1..=3).contains(&sub.len())
            && sub.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if valid {
        Ok(upper)
    } else {
        Err((
            "region",
            format!(
                "`{text}` is not an ISO 3166-2 code of {country} ({country}- and 1 to 3 letters or digits)"
            ),
        ))
    }
}

/// A geofeed loaded for lookups.
#[derive(Debug, Clone)]
pub(crate) struct Geofeed {
    file: LoadedFile,
    name: String,
    entries: Vec<GeofeedEntry>,
    index: PrefixIndex,
}

impl Geofeed {
    /// Loads and indexes a geofeed file, fingerprinting the bytes parsed.
    pub(crate) fn open(path: &Path) -> Result<Self, GeoError> {
        let text = read_text(path)?;
        let entries = parse_geofeed(path, &text)?;
        let file = LoadedFile::of(LocationFileKind::Geofeed, path, text.as_bytes());
        Ok(Self::from_entries(file, entries))
    }

    /// Indexes entries; `file` names their file in answers and provenance.
    pub(crate) fn from_entries(file: LoadedFile, entries: Vec<GeofeedEntry>) -> Self {
        let index = PrefixIndex::build(entries.iter().map(|e| e.prefix));
        let name = file.path.file_name().map_or_else(
            || file.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Self {
            file,
            name,
            entries,
            index,
        }
    }

    /// The entry of the longest prefix covering `addr`.
    pub(crate) fn lookup(&self, addr: IpAddr) -> Option<&GeofeedEntry> {
        self.entries.get(self.index.get(addr)?)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.file.path
    }

    /// The file, with the SHA-256 of its bytes.
    pub(crate) fn file(&self) -> &LoadedFile {
        &self.file
    }

    /// The file's name without its folder (how evidence names the feed).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How many entries are loaded.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Gives every entry with a country and a city the coordinates `city`
    /// knows for it.
    pub(crate) fn locate_cities(
        &mut self,
        city: &dyn Fn(CountryCode, &str) -> Option<Coordinates>,
    ) {
        for entry in &mut self.entries {
            if let (Some(country), Some(name)) = (entry.country, entry.city.as_deref()) {
                entry.coordinates = city(country, name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<GeofeedEntry>, GeoError> {
        parse_geofeed(Path::new("feed.csv"), text)
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_published_shapes() {
        let entries = parse(
            "\u{feff}# Self-published geofeed as defined in RFC 8805,,,,\n\
             # ip_prefix,alpha2code,region,city,postal_code\n\
             \n\
             192.0.2.0/24,LS,LS-A,Maseru,\n\
             2001:db8:100::/48,za,za-gp,Johannesburg\r\n\
             198.51.100.0/24,,,,\n\
             203.0.113.7,ZA,,\"Cape Town, Bellville\",7530\n\
             \x20 # an indented comment\n\
             203.0.113.0/24,XK\n",
        )
        .unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].line, 4);
        assert_eq!(entries[0].country.unwrap().as_str(), "LS");
        assert_eq!(entries[0].region.as_deref(), Some("LS-A"));
        assert_eq!(entries[0].city.as_deref(), Some("Maseru"));
        assert_eq!(entries[1].region.as_deref(), Some("ZA-GP"));
        assert_eq!(entries[1].line, 5);
        assert_eq!(entries[2].country, None);
        assert_eq!(entries[2].city, None);
        assert_eq!(entries[3].prefix.to_string(), "203.0.113.7/32");
        assert_eq!(entries[3].city.as_deref(), Some("Cape Town, Bellville"));
        assert_eq!(entries[4].line, 9);
        assert_eq!(
            entries[0].as_written(),
            "192.0.2.0/24,LS,LS-A,Maseru".to_string()
        );
        // A header line instead of a comment.
        let entries = parse("ip_prefix,alpha2code,region,city,postal_code\n10.0.0.0/8,LS\n");
        assert_eq!(entries.unwrap().len(), 1);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        for (text, start) in [
            (
                "10.0.0.0/8,LS\n\n10.0.0.0/33,LS\n",
                "feed.csv:3: field `ip_prefix`:",
            ),
            ("10.0.0.1/8,LS\n", "feed.csv:1: field `ip_prefix`:"),
            ("nonsense,LS\n", "feed.csv:1: field `ip_prefix`:"),
            (",LS,,,\n", "feed.csv:1: field `ip_prefix`: missing"),
            ("10.0.0.0/8,LSO\n", "feed.csv:1: field `alpha2code`:"),
            (
                "10.0.0.0/8,QQ\n",
                "feed.csv:1: field `alpha2code`: `QQ` is not an assigned",
            ),
            (
                "# c\n10.0.0.0/8,LS,ZA-GP,Maseru\n",
                "feed.csv:2: field `region`:",
            ),
            ("10.0.0.0/8,LS,LS-ABCD\n", "feed.csv:1: field `region`:"),
            ("10.0.0.0/8,,LS-A\n", "feed.csv:1: field `region`:"),
            (
                "10.0.0.0/8,LS,LS-A,Maseru,,extra\n",
                "feed.csv:1: field `line`: 6 fields",
            ),
            ("10.0.0.0/8\n", "feed.csv:1: field `line`: 1 field;"),
            (
                "10.0.0.0/8,LS\n10.0.0.0/8,ZA\n",
                "feed.csv:2: field `ip_prefix`: `10.0.0.0/8` is already given on line 1",
            ),
            (
                "10.0.0.0/8,LS,\"Mas\n",
                "feed.csv:1: field `region`: a quoted field is not closed",
            ),
        ] {
            let e = error_of(text);
            assert!(e.starts_with(start), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn lookups_take_the_longest_prefix_and_empty_entries_hide_wider_ones() {
        let entries = parse(
            "10.0.0.0/8,ZA\n10.1.0.0/16,LS,,Maseru\n10.1.2.0/24,,,,\n2001:db8::/32,ZA\n2001:db8:1::/48,LS\n",
        )
        .unwrap();
        let file = LoadedFile::of(
            LocationFileKind::Geofeed,
            Path::new("/etc/feeds/feed.csv"),
            b"",
        );
        let feed = Geofeed::from_entries(file, entries);
        let at = |a: &str| feed.lookup(a.parse().unwrap()).map(|e| e.line);
        assert_eq!(at("10.200.0.1"), Some(1));
        assert_eq!(at("10.1.9.9"), Some(2));
        assert_eq!(at("::ffff:10.1.9.9"), Some(2));
        assert_eq!(at("10.1.2.3"), Some(3));
        assert_eq!(at("11.0.0.1"), None);
        assert_eq!(at("2001:db8:1::1"), Some(5));
        assert_eq!(at("2001:db8:2::1"), Some(4));
        assert_eq!(feed.name(), "feed.csv");
        assert_eq!(feed.len(), 5);
    }
}
