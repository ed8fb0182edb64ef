//! `geo build`: turns an overrides CSV into an MMDB file, so the same data
//! can be shipped as a database and read by any MaxMind DB reader
//! (`mmdblookup` included).
//!
//! Records use the GeoIP2 City layout plus the GeoLite2-ASN keys:
//! `country.iso_code`, `city.names.en`, `location.latitude/longitude`,
//! `autonomous_system_number`, and the row's note as `transitwatch_note`.
//! The `database_type` is [`BUILD_DATABASE_TYPE`], which [`GeoDb`] detects
//! as a city-plus-ASN database and takes as the operator's own statement
//! (evidence of kind `override`). [`build_with_type`] writes another type
//! of the operator's choosing — a lab's or a network's own database, taken
//! as evidence of kind `database`; a public vendor's type is refused, as
//! such files are not believed for reserved ranges. Both locate reserved
//! ranges (private, documentation, benchmarking).
//!
//! [`GeoDb`]: super::GeoDb

use super::error::GeoError;
use super::overrides::{load_overrides, OverrideRow};
use super::prefix::IpPrefix;
use maxminddb::Reader;
use mmdb_writer::ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mmdb_writer::{IpVersion, Value, Writer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The metadata `database_type` of built databases.
pub const BUILD_DATABASE_TYPE: &str = "transitwatch-overrides";

/// What [`build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The database written.
    pub output: PathBuf,
    /// Prefixes written (IPv4 plus IPv6).
    pub prefixes: usize,
    /// Of which IPv4.
    pub ipv4_prefixes: usize,
    /// Of which IPv6.
    pub ipv6_prefixes: usize,
    /// Size of the file, in bytes.
    pub bytes: u64,
}

/// Writes the overrides in `csv` as an MMDB at `output`. The file is written
/// beside `output` under a temporary name, read back and checked, then
/// renamed into place, so `output` is never left half-written.
///
/// # Errors
///
/// [`GeoError::Read`] or [`GeoError::Overrides`] for the CSV,
/// [`GeoError::Build`] naming `output` when writing fails.
pub fn build(csv: &Path, output: &Path) -> Result<BuildReport, GeoError> {
    build_with_type(csv, output, BUILD_DATABASE_TYPE)
}

/// [`build`] with the metadata `database_type` set to `database_type`.
///
/// # Errors
///
/// As [`build`]; also [`GeoError::Build`] when `database_type` is empty,
/// longer than 100 bytes, has control characters, or is a known public
/// vendor's (GeoLite2-City, DBIP-..., `country`, ...).
pub fn build_with_type(
    csv: &Path,
    output: &Path,
    database_type: &str,
) -> Result<BuildReport, GeoError> {
    let fail = |message: String| GeoError::Build {
        output: output.to_path_buf(),
        message,
    };
    let database_type = database_type.trim();
    if database_type.is_empty()
        || database_type.len() > 100
        || database_type.chars().any(char::is_control)
    {
        return Err(fail(format!(
            "database type `{}` must be 1 to 100 printable characters",
            database_type.escape_debug()
        )));
    }
    if super::schema::is_public_vendor(database_type) {
        return Err(fail(format!(
            "database type `{database_type}` is a public vendor's; name the database after its \
             maker (e.g. `acme-routers`), or leave the default `{BUILD_DATABASE_TYPE}`"
        )));
    }
    let rows = load_overrides(csv)?;
    let description = format!(
        "transitwatch operator overrides from {}",
        csv.file_name().map_or_else(
            || csv.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    let mut writer = Writer::builder(database_type)
        .ip_version(IpVersion::V6)
        .description(&[("en", description.as_str())])
        .build();
    // Wider prefixes first: a later insert wins over the addresses it covers,
    // so the narrower, more specific rows must come after.
    let mut ordered: Vec<&OverrideRow> = rows.iter().collect();
    ordered.sort_by_key(|r| r.prefix.prefix_len());
    for row in &ordered {
        to_ipnet(row.prefix)
            .and_then(|net| {
                writer
                    .insert_value(net, record(row))
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| {
                fail(format!(
                    "{}:{}: prefix `{}`: {e}",
                    csv.display(),
                    row.line,
                    row.prefix
                ))
            })?;
    }
    let bytes = writer
        .to_bytes()
        .map_err(|e| fail(format!("encoding failed: {e}")))?;
    // Check what was encoded with the reader before anything touches disk.
    Reader::from_source(bytes.as_slice())
        .and_then(|r| r.verify())
        .map_err(|e| fail(format!("the encoded database does not verify: {e}")))?;
    // The error names `output` already; the message adds the step and why.
    crate::atomic_file::write(output, &bytes)
        .map_err(|e| fail(format!("{} ({}): {}", e.step, e.temp.display(), e.source)))?;
    let ipv4_prefixes = rows.iter().filter(|r| r.prefix.addr().is_ipv4()).count();
    Ok(BuildReport {
        output: output.to_path_buf(),
        prefixes: rows.len(),
        ipv4_prefixes,
        ipv6_prefixes: rows.len() - ipv4_prefixes,
        bytes: bytes.len() as u64,
    })
}

/// The MMDB record of one row.
fn record(row: &OverrideRow) -> Value {
    let mut fields = vec![(
        "country",
        Value::map([("iso_code", Value::from(row.country.as_str()))]),
    )];
    if let Some(city) = &row.city {
        fields.push((
            "city",
            Value::map([("names", Value::map([("en", Value::from(city.as_str()))]))]),
        ));
    }
    if let Some(c) = row.coordinates {
        fields.push((
            "location",
            Value::map([
                ("latitude", Value::from(c.lat)),
                ("longitude", Value::from(c.lon)),
            ]),
        ));
    }
    if let Some(asn) = row.asn {
        fields.push(("autonomous_system_number", Value::from(asn)));
    }
    if let Some(note) = &row.note {
        fields.push(("transitwatch_note", Value::from(note.as_str())));
    }
    Value::map(fields)
}

fn to_ipnet(prefix: IpPrefix) -> Result<IpNet, String> {
    let net = match prefix.addr() {
        IpAddr::V4(a) => Ipv4Net::new(a, prefix.prefix_len()).map(IpNet::V4),
        IpAddr::V6(a) => Ipv6Net::new(a, prefix.prefix_len()).map(IpNet::V6),
    };
    net.map_err(|e| e.to_string())
}
