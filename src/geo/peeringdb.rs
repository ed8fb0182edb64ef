//! Internet exchange LANs from a PeeringDB dump: a hop whose address is on
//! an exchange's peering LAN is at that exchange, and the path crosses it.
//!
//! The dump is the JSON the PeeringDB API returns, one object per table as
//! `{"data": [...]}` under the table's name — what `peeringdb` (the
//! `peeringdb-py` client) and the public dump archives write. Three tables
//! are read, every other one (`net`, `fac`, `netixlan`, ...) and every
//! field not listed below are skipped:
//!
//! ```text
//! {"ix":    {"data": [{"id": 1, "name": "LIXP", "name_long": "...", "city": "Maseru", "country": "LS", ...}]},
//!  "ixlan": {"data": [{"id": 1, "ix_id": 1, ...}]},
//!  "ixpfx": {"data": [{"id": 1, "ixlan_id": 1, "protocol": "IPv4", "prefix": "192.0.2.0/24", ...}]}}
//! ```
//!
//! `ix`: `id`, `name` and `country` are required, `name_long` and `city`
//! optional. `ixlan`: `id` and `ix_id`. `ixpfx`: `id`, `ixlan_id` and
//! `prefix`; `protocol` (`IPv4`/`IPv6`), when present, must match the
//! prefix. Objects whose `status` is `deleted` are skipped with whatever
//! hangs off them. JSON errors name the file, line and column; a missing
//! or wrong field names the table, the object's id and the field; a
//! reference to an object that is not in the dump is an error too.
//! The file is read bounded (512 MiB, [`FileKind::PeeringDb`]).
//!
//! [`FileKind::PeeringDb`]: crate::input_file::FileKind::PeeringDb

use super::error::GeoError;
use super::lpm::PrefixIndex;
use super::prefix::IpPrefix;
use super::{LoadedFile, LocationFileKind};
use crate::model::{Coordinates, CountryCode, IxpRef};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// An internet exchange, as the dump describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// PeeringDB's `ix` id.
    pub id: u32,
    /// Its short name (`LIXP`).
    pub name: String,
    /// Its full name, when given.
    pub name_long: Option<String>,
    /// Its country.
    pub country: CountryCode,
    /// Its city, when given.
    pub city: Option<String>,
    /// The city's coordinates, when a city table knows them (see
    /// [`GeoDb::with_city_coordinates`](super::GeoDb::with_city_coordinates)).
    pub coordinates: Option<Coordinates>,
}

impl Exchange {
    /// The exchange as a record names it.
    #[must_use]
    pub fn to_ref(&self) -> IxpRef {
        IxpRef {
            id: self.id,
            name: self.name.clone(),
            country: self.country,
            city: self.city.clone(),
        }
    }
}

/// One peering LAN prefix of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanPrefix {
    /// The prefix.
    pub prefix: IpPrefix,
    /// PeeringDB's `ixpfx` id.
    pub id: u32,
    /// PeeringDB's `ixlan` id it belongs to.
    pub ixlan_id: u32,
    /// Position of its exchange in the loaded list.
    exchange: usize,
}

/// The exchanges and LAN prefixes of a dump, indexed for lookups.
#[derive(Debug, Clone)]
pub(crate) struct PeeringDb {
    file: LoadedFile,
    exchanges: Vec<Exchange>,
    prefixes: Vec<LanPrefix>,
    index: PrefixIndex,
}

impl PeeringDb {
    /// Reads, checks and indexes a dump.
    pub(crate) fn open(path: &Path) -> Result<Self, GeoError> {
        let bytes = crate::input_file::read(path, crate::input_file::FileKind::PeeringDb).map_err(
            |source| GeoError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Self::parse(path, &bytes)
    }

    /// Checks and indexes the bytes of a dump; `path` names it in errors
    /// and, with the SHA-256 of `bytes`, in provenance.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self, GeoError> {
        let fail = |message: String| GeoError::PeeringDb {
            path: path.to_path_buf(),
            at: None,
            message,
        };
        if let Some(start) = bytes.iter().position(|b| !b.is_ascii_whitespace()) {
            if bytes[start] != b'{' {
                let before = &bytes[..start];
                let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                let column = start
                    - before
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |p| p + 1)
                    + 1;
                return Err(GeoError::PeeringDb {
                    path: path.to_path_buf(),
                    at: Some((line, column)),
                    message: "not a PeeringDB dump: the top level is not a JSON object".to_string(),
                });
            }
        }
        let dump: Dump = serde_json::from_slice(bytes).map_err(|e| GeoError::PeeringDb {
            path: path.to_path_buf(),
            at: (e.line() > 0).then(|| (e.line(), e.column())),
            message: format!("not a PeeringDB dump: {}", json_reason(&e)),
        })?;
        let missing_table = |table: &str| {
            fail(format!(
                "no `{table}` object: a PeeringDB dump has the objects ix, ixlan and ixpfx, each {{\"data\": [...]}}"
            ))
        };
        let ix = dump.ix.ok_or_else(|| missing_table("ix"))?.data;
        let ixlan = dump.ixlan.ok_or_else(|| missing_table("ixlan"))?.data;
        let ixpfx = dump.ixpfx.ok_or_else(|| missing_table("ixpfx"))?.data;

        let mut exchanges = Vec::new();
        // ix id -> position in `exchanges`; `None` for a deleted exchange.
        let mut by_id: HashMap<u32, Option<usize>> = HashMap::new();
        for (i, raw) in ix.into_iter().enumerate() {
            let id = required(raw.id, "ix", i, None, "id").map_err(&fail)?;
            let object = Some(id);
            if is_deleted(raw.status.as_deref()) {
                by_id.insert(id, None);
                continue;
            }
            let name = required(non_empty(raw.name), "ix", i, object, "name").map_err(&fail)?;
            let country_text =
                required(non_empty(raw.country), "ix", i, object, "country").map_err(&fail)?;
            let country = parse_country(&country_text)
                .map_err(|m| fail(format!("ix {id}: field `country`: {m}")))?;
            if by_id.insert(id, Some(exchanges.len())).is_some() {
                return Err(fail(format!("ix {id}: the id is given twice")));
            }
            exchanges.push(Exchange {
                id,
                name,
                name_long: non_empty(raw.name_long),
                country,
                city: non_empty(raw.city),
                coordinates: None,
            });
        }

        // ixlan id -> position of its exchange; `None` when it or its
        // exchange is deleted.
        let mut lans: HashMap<u32, Option<usize>> = HashMap::new();
        for (i, raw) in ixlan.into_iter().enumerate() {
            let id = required(raw.id, "ixlan", i, None, "id").map_err(&fail)?;
            let ix_id = required(raw.ix_id, "ixlan", i, Some(id), "ix_id").map_err(&fail)?;
            let exchange = if is_deleted(raw.status.as_deref()) {
                None
            } else {
                *by_id.get(&ix_id).ok_or_else(|| {
                    fail(format!(
                        "ixlan {id}: field `ix_id`: there is no ix {ix_id} in the dump"
                    ))
                })?
            };
            if lans.insert(id, exchange).is_some() {
                return Err(fail(format!("ixlan {id}: the id is given twice")));
            }
        }

        let mut prefixes = Vec::new();
        for (i, raw) in ixpfx.into_iter().enumerate() {
            let id = required(raw.id, "ixpfx", i, None, "id").map_err(&fail)?;
            let object = Some(id);
            let ixlan_id = required(raw.ixlan_id, "ixpfx", i, object, "ixlan_id").map_err(&fail)?;
            if is_deleted(raw.status.as_deref()) {
                continue;
            }
            let text =
                required(non_empty(raw.prefix), "ixpfx", i, object, "prefix").map_err(&fail)?;
            let prefix: IpPrefix = text
                .parse()
                .map_err(|e| fail(format!("ixpfx {id}: field `prefix`: {e}")))?;
            if let Some(protocol) = non_empty(raw.protocol) {
                let expected = if prefix.addr().is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                };
                if !protocol.eq_ignore_ascii_case(expected) {
                    return Err(fail(format!(
                        "ixpfx {id}: field `protocol`: `{protocol}` does not match the prefix {prefix}"
                    )));
                }
            }
            let exchange = *lans.get(&ixlan_id).ok_or_else(|| {
                fail(format!(
                    "ixpfx {id}: field `ixlan_id`: there is no ixlan {ixlan_id} in the dump"
                ))
            })?;
            let Some(exchange) = exchange else {
                continue;
            };
            prefixes.push(LanPrefix {
                prefix,
                id,
                ixlan_id,
                exchange,
            });
        }
        let index = PrefixIndex::build(prefixes.iter().map(|p| p.prefix));
        Ok(Self {
            file: LoadedFile::of(LocationFileKind::PeeringDb, path, bytes),
            exchanges,
            prefixes,
            index,
        })
    }

    /// The exchange whose LAN prefix (the longest) covers `addr`.
    pub(crate) fn lookup(&self, addr: IpAddr) -> Option<(&Exchange, &LanPrefix)> {
        let prefix = self.prefixes.get(self.index.get(addr)?)?;
        Some((self.exchanges.get(prefix.exchange)?, prefix))
    }

    /// The dump.
    pub(crate) fn path(&self) -> &Path {
        &self.file.path
    }

    /// The dump, with the SHA-256 of its bytes.
    pub(crate) fn file(&self) -> &LoadedFile {
        &self.file
    }

    /// How many exchanges and LAN prefixes are loaded.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.exchanges.len(), self.prefixes.len())
    }

    /// Gives every exchange with a city the coordinates `city` knows for it.
    pub(crate) fn locate_cities(
        &mut self,
        city: &dyn Fn(CountryCode, &str) -> Option<Coordinates>,
    ) {
        for exchange in &mut self.exchanges {
            if let Some(name) = exchange.city.as_deref() {
                exchange.coordinates = city(exchange.country, name);
            }
        }
    }
}

/// The three tables read; any other top-level key is skipped.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object with the objects ix, ixlan and ixpfx")]
struct Dump {
    #[serde(default)]
    ix: Option<Table<RawIx>>,
    #[serde(default)]
    ixlan: Option<Table<RawIxLan>>,
    #[serde(default)]
    ixpfx: Option<Table<RawIxPfx>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object {\"data\": [...]}")]
struct Table<T> {
    data: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a PeeringDB object")]
struct RawIx {
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_long: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a PeeringDB object")]
struct RawIxLan {
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    ix_id: Option<u32>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a PeeringDB object")]
struct RawIxPfx {
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    ixlan_id: Option<u32>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// A required field's value, or a message naming the table, the object
/// (by id, or by position when the id itself is missing) and the field.
fn required<T>(
    value: Option<T>,
    table: &str,
    position: usize,
    id: Option<u32>,
    field: &str,
) -> Result<T, String> {
    value.ok_or_else(|| match id {
        Some(id) => format!("{table} {id}: field `{field}` is missing"),
        None => format!(
            "{table}: object {} of `{table}.data`: field `{field}` is missing",
            position + 1
        ),
    })
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn is_deleted(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.eq_ignore_ascii_case("deleted"))
}

fn parse_country(text: &str) -> Result<CountryCode, String> {
    let code: CountryCode = text.parse().map_err(|e| format!("{e}"))?;
    if code.as_str() != "XK" && rust_iso3166::from_alpha2(code.as_str()).is_none() {
        return Err(format!(
            "`{text}` is not an assigned ISO 3166-1 alpha-2 country code"
        ));
    }
    Ok(code)
}

/// serde_json's message without its own ` at line L column C` (the error
/// names the position itself).
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) if e.line() > 0 => text[..cut].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = r#"{
      "net": {"data": [{"id": 9, "asn": 64500}]},
      "ix": {"data": [
        {"id": 1, "org_id": 7, "name": "LIXP", "name_long": "Lesotho Internet Exchange Point",
         "city": "Maseru", "country": "LS", "region_continent": "Africa", "status": "ok"},
        {"id": 2, "name": "NAPAfrica JB", "city": "Johannesburg", "country": "ZA"},
        {"id": 3, "name": "Gone-IX", "city": "", "country": "ZA", "status": "deleted"}
      ], "meta": {}},
      "ixlan": {"data": [
        {"id": 10, "ix_id": 1, "mtu": 1500},
        {"id": 20, "ix_id": 2},
        {"id": 30, "ix_id": 3}
      ]},
      "ixpfx": {"data": [
        {"id": 100, "ixlan_id": 10, "protocol": "IPv4", "prefix": "192.0.2.0/26", "in_dfz": true},
        {"id": 101, "ixlan_id": 10, "protocol": "IPv6", "prefix": "2001:db8:a::/64"},
        {"id": 200, "ixlan_id": 20, "protocol": "IPv4", "prefix": "198.51.100.0/24"},
        {"id": 300, "ixlan_id": 30, "protocol": "IPv4", "prefix": "203.0.113.0/24"},
        {"id": 201, "ixlan_id": 20, "prefix": "198.51.101.0/24", "status": "deleted"}
      ]}
    }"#;

    fn parse(text: &str) -> Result<PeeringDb, GeoError> {
        PeeringDb::parse(Path::new("pdb.json"), text.as_bytes())
    }

    #[test]
    fn reads_exchanges_and_their_lans() {
        let db = parse(DUMP).unwrap();
        assert_eq!(db.counts(), (2, 3));
        let (ix, pfx) = db.lookup("192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(ix.name, "LIXP");
        assert_eq!(ix.country.as_str(), "LS");
        assert_eq!(ix.city.as_deref(), Some("Maseru"));
        assert_eq!(
            ix.name_long.as_deref(),
            Some("Lesotho Internet Exchange Point")
        );
        assert_eq!((pfx.id, pfx.ixlan_id), (100, 10));
        assert_eq!(pfx.prefix.to_string(), "192.0.2.0/26");
        let (ix, _) = db.lookup("2001:db8:a::5".parse().unwrap()).unwrap();
        assert_eq!(ix.id, 1);
        assert_eq!(db.lookup("192.0.2.64".parse().unwrap()), None);
        let (ix, _) = db.lookup("198.51.100.1".parse().unwrap()).unwrap();
        assert_eq!(ix.to_ref().name, "NAPAfrica JB");
        // Deleted exchanges and prefixes are not loaded.
        assert_eq!(db.lookup("203.0.113.1".parse().unwrap()), None);
        assert_eq!(db.lookup("198.51.101.1".parse().unwrap()), None);
    }

    #[test]
    fn errors_name_the_file_and_the_line_or_the_object() {
        let cases: &[(&str, &str)] = &[
            (
                "{\"ix\": {\"data\": [\n{\"id\": 1,}\n]}}",
                "pdb.json:2:10: not a PeeringDB dump:",
            ),
            ("", "pdb.json:1:0: not a PeeringDB dump: EOF"),
            ("{\"ix\": {\"data\": [{\"id\": \"one\"}]}}", "pdb.json:1:"),
            ("\n  [1, 2]", "pdb.json:2:3: not a PeeringDB dump: the top level is not a JSON object"),
            ("{\"ix\": \"x\"}", "pdb.json:1:10: not a PeeringDB dump: invalid type: string \"x\", expected an object {\"data\": [...]}"),
            (
                "{\"ix\": {\"data\": []}, \"ixlan\": {\"data\": []}}",
                "pdb.json: no `ixpfx` object",
            ),
            (
                r#"{"ix": {"data": [{"id": 4, "name": "X", "city": "Maseru"}]}, "ixlan": {"data": []}, "ixpfx": {"data": []}}"#,
                "pdb.json: ix 4: field `country` is missing",
            ),
            (
                r#"{"ix": {"data": [{"name": "X", "country": "LS"}]}, "ixlan": {"data": []}, "ixpfx": {"data": []}}"#,
                "pdb.json: ix: object 1 of `ix.data`: field `id` is missing",
            ),
            (
                r#"{"ix": {"data": [{"id": 4, "name": "X", "country": "Lesotho"}]}, "ixlan": {"data": []}, "ixpfx": {"data": []}}"#,
                "pdb.json: ix 4: field `country`:",
            ),
            (
                r#"{"ix": {"data": []}, "ixlan": {"data": [{"id": 5, "ix_id": 4}]}, "ixpfx": {"data": []}}"#,
                "pdb.json: ixlan 5: field `ix_id`: there is no ix 4",
            ),
            (
                r#"{"ix": {"data": [{"id": 4, "name": "X", "country": "LS"}]}, "ixlan": {"data": [{"id": 5, "ix_id": 4}]}, "ixpfx": {"data": [{"id": 6, "ixlan_id": 5, "prefix": "192.0.2.0/33"}]}}"#,
                "pdb.json: ixpfx 6: field `prefix`:",
            ),
            (
                r#"{"ix": {"data": [{"id": 4, "name": "X", "country": "LS"}]}, "ixlan": {"data": [{"id": 5, "ix_id": 4}]}, "ixpfx": {"data": [{"id": 6, "ixlan_id": 5, "protocol": "IPv6", "prefix": "192.0.2.0/24"}]}}"#,
                "pdb.json: ixpfx 6: field `protocol`:",
            ),
            (
                r#"{"ix": {"data": []}, "ixlan": {"data": []}, "ixpfx": {"data": [{"id": 6, "ixlan_id": 5, "prefix": "192.0.2.0/24"}]}}"#,
                "pdb.json: ixpfx 6: field `ixlan_id`: there is no ixlan 5",
            ),
            (
                r#"{"ix": {"data": []}, "ixlan": {"data": []}, "ixpfx": {"data": [{"id": 6, "prefix": "192.0.2.0/24"}]}}"#,
                "pdb.json: ixpfx 6: field `ixlan_id` is missing",
            ),
        ];
        for (text, start) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(start), "{text}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }
}
