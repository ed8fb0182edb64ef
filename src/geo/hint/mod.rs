//! Location hints in router host names, read from the name alone (no DNS
//! lookup), in the manner of CAIDA's Hoiho.
//!
//! A PTR name such as `ae1.jnb.za.carrier.net` or
//! `ae-0.r20.frnkge13.de.bb.gin.ntt.net` often says where the router is: an
//! airport (IATA) code, a UN/LOCODE, a CLLI-style city+state/country code,
//! a city name, a country label. [`HintTable::hints`] extracts them:
//!
//! 1. An operator rule (see [`rules`]) for the name's longest matching
//!    domain suffix decides when one of that suffix's rules matches.
//! 2. Otherwise the registered domain's own labels are dropped (they name
//!    the operator, not the router's place), each remaining label is split
//!    into tokens at dashes and letter/digit boundaries, and tokens are
//!    matched against the shipped tables (see [`extract`]), with guards
//!    against interface names, router models, jargon, address-encoded
//!    labels and codes inside longer words.
//! 3. Candidates are scored; a country label agreeing with a city code
//!    raises it, a conflicting one lowers it. Best first.
//!
//! The tables are built from airportsdata, GeoNames and UN/LOCODE by
//! `data/hints/build.py` and embedded at compile time.

mod data;
mod extract;
pub mod rules;

use super::{GeoError, LoadedFile, LocationFileKind};
use crate::model::{Coordinates, CountryCode};
use data::Tables;
use rules::RuleSet;
use std::path::Path;
use std::sync::OnceLock;

/// What kind of code a hint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HintKind {
    /// An IATA airport or metropolitan-area code (`jnb`, `nyc`).
    Iata,
    /// A UN/LOCODE (`zajnb`).
    Locode,
    /// A CLLI-style city + state/country code (`frnkge`, `dllstx`).
    Clli,
    /// A city name (`london`, `newyork`, `johannesburg`).
    City,
    /// A country label (`za` in `ae1.jnb.za.carrier.net`).
    Country,
    /// An operator rule matched.
    Rule,
}

crate::text_enum::text_enum! {
    /// The lower-case name used in records and the CLI's output.
    HintKind {
        Iata => "iata",
        Locode => "locode",
        Clli => "clli",
        City => "city",
        Country => "country",
        Rule => "rule",
    }
}

/// One location hint a host name carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    /// The country the hint points to.
    pub country: CountryCode,
    /// The city, when the hint names one (a country label does not).
    pub city: Option<String>,
    /// The city's (or airport's) coordinates, when known.
    pub coords: Option<Coordinates>,
    /// The part of the name that gave the hint (`jnb`, `frnkge`, `za`, ...).
    pub code: String,
    /// What kind of code it is.
    pub kind: HintKind,
    /// The operator rule's domain suffix, when a rule gave the hint.
    pub rule: Option<String>,
}

/// The shipped location tables plus, optionally, operator rules. `Send +
/// Sync` and immutable once built: one instance serves every task.
#[derive(Debug)]
pub struct HintTable {
    tables: &'static Tables,
    rules: RuleSet,
    /// The rules file, with the SHA-256 of the bytes parsed.
    rules_file: Option<LoadedFile>,
}

fn tables() -> &'static Tables {
    // Parsed once per process on first use (about 50,000 lines): every
    // table, built-in or with rules, shares the one read-only copy.
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::parse)
}

impl HintTable {
    /// The shipped tables without operator rules, parsed on first use.
    #[must_use]
    pub fn builtin() -> &'static HintTable {
        // One immutable instance for every caller (enrichment of each hop
        // needs no allocation of its own).
        static BUILTIN: OnceLock<HintTable> = OnceLock::new();
        BUILTIN.get_or_init(|| HintTable {
            tables: tables(),
            rules: RuleSet::default(),
            rules_file: None,
        })
    }

    /// The shipped tables plus the operator rules of a TOML file.
    ///
    /// # Errors
    /// The file cannot be read or a rule is wrong (the message names the
    /// file and line).
    pub fn with_rules(path: &Path) -> Result<HintTable, GeoError> {
        let text =
            crate::input_file::read_to_string(path, crate::input_file::FileKind::HostnameRules)
                .map_err(|source| GeoError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
        Ok(HintTable {
            tables: tables(),
            rules: RuleSet::parse(path, &text)?,
            rules_file: Some(LoadedFile::of(
                LocationFileKind::HostnameRules,
                path,
                text.as_bytes(),
            )),
        })
    }

    /// The operator's rules file, with the SHA-256 of the bytes parsed;
    /// `None` for the shipped tables alone.
    #[must_use]
    pub fn rules_file(&self) -> Option<&LoadedFile> {
        self.rules_file.as_ref()
    }

    /// The location hints `name` carries, best first; empty if none.
    #[must_use]
    pub fn hints(&self, name: &str) -> Vec<Hint> {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || !name.is_ascii() {
            return Vec::new();
        }
        if let Some(hints) = self.rules.apply(&name, self.tables) {
            return hints;
        }
        extract::extract(&name, self.tables)
    }

    /// The most populous city of `country` called `name` (its name or an
    /// alternate name, accents and case ignored), with its coordinates.
    #[must_use]
    pub fn city(&self, country: CountryCode, name: &str) -> Option<Coordinates> {
        let k = data::key(name);
        self.tables
            .city_keys
            .get(k.as_str())?
            .iter()
            .map(|&i| &self.tables.cities[i as usize])
            .find(|c| c.cc == country)
            .map(|c| c.coords)
    }
}

#[cfg(test)]
mod tests;
