//! Operator rules: regular expressions per domain suffix, for naming
//! conventions the built-in extraction does not know (as Hoiho learns
//! them per suffix).
//!
//! ```toml
//! # Codes after the role label: ae1.cr2.jnb1.carrier.example
//! [[rule]]
//! suffix = "carrier.example"
//! regex = '^[a-z]+\d*\.[a-z]+\d*\.(?P<iata>[a-z]{3})\d*\.'
//!
//! # A site code of the operator's own: mru-core1.lab.example is in Maseru
//! [[rule]]
//! suffix = "lab.example"
//! regex = '^mru-'
//! country = "LS"
//! city = "Maseru"
//!
//! # Names that match carry no location at all
//! [[rule]]
//! suffix = "pool.carrier.example"
//! regex = '^dsl-'
//! ```
//!
//! - `suffix` (required): the rule applies to that domain and names under it.
//! - `regex` (optional, default: every name): matched against the whole
//!   name, lower case, without the trailing dot. Named groups say what the
//!   captured text is: `iata`, `locode`, `clli`, `city` (a city name) or
//!   `country` (ISO 3166-1 alpha-2, `uk` for GB); no other group names.
//! - `country`, `city` (optional): a fixed location for matching names;
//!   `city` needs `country`. They win over what the groups say.
//!
//! The rules of a name's longest matching suffix are tried in file order;
//! the first whose regex matches decides, even when that is "no hint" (no
//! group and no fixed location, or a code the tables do not know). When
//! none matches, or no suffix matches, the built-in extraction applies.
//! Errors name the file and the line of the rule (or of the TOML error).

use super::data::Tables;
use super::{extract, Hint, HintKind};
use crate::geo::GeoError;
use crate::model::{Coordinates, CountryCode};
use serde::Deserialize;
use std::path::Path;

const GROUPS: [&str; 5] = ["iata", "locode", "clli", "city", "country"];

/// One rule, checked.
#[derive(Debug)]
struct Rule {
    suffix: String,
    regex: Option<regex::Regex>,
    country: Option<CountryCode>,
    city: Option<String>,
}

/// The rules of one file, in file order.
#[derive(Debug, Default)]
pub(super) struct RuleSet {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    suffix: String,
    regex: Option<String>,
    country: Option<String>,
    city: Option<String>,
}

impl RuleSet {
    /// Parses the text of a rules file; `path` is only used in errors.
    pub(super) fn parse(path: &Path, text: &str) -> Result<Self, GeoError> {
        let err = |line: usize, message: String| GeoError::HintRules {
            path: path.to_path_buf(),
            line,
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            err(line, e.message().trim().replace('\n', " "))
        })?;
        let mut rules = Vec::with_capacity(raw.rule.len());
        for spanned in raw.rule {
            let line = line_of(text, spanned.span().start);
            let r = spanned.into_inner();
            let suffix = r.suffix.trim().trim_matches('.').to_ascii_lowercase();
            if suffix.is_empty()
                || !suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(err(
                    line,
                    format!(
                        "rule suffix `{}` is not a domain name (e.g. carrier.example)",
                        r.suffix
                    ),
                ));
            }
            let regex = match &r.regex {
                None => None,
                Some(src) => {
                    let re = regex::Regex::new(src).map_err(|e| {
                        let first = e.to_string();
                        let detail = first.lines().last().unwrap_or_default().trim().to_string();
                        err(line, format!("rule regex `{src}` is invalid: {detail}"))
                    })?;
                    if let Some(bad) = re.capture_names().flatten().find(|n| !GROUPS.contains(n)) {
                        return Err(err(
                            line,
                            format!(
                                "rule regex group `{bad}` is unknown; use iata, locode, clli, city or country"
                            ),
                        ));
                    }
                    Some(re)
                }
            };
            let country = match &r.country {
                None => None,
                Some(c) => Some(parse_country(c).ok_or_else(|| {
                    err(
                        line,
                        format!("rule country `{c}` is not an ISO 3166-1 alpha-2 code (e.g. LS)"),
                    )
                })?),
            };
            if r.city.is_some() && country.is_none() {
                return Err(err(line, "rule city needs a country".to_string()));
            }
            rules.push(Rule {
                suffix,
                regex,
                country,
                city: r.city.filter(|c| !c.trim().is_empty()),
            });
        }
        Ok(Self { rules })
    }

    /// The decision of the rules for `name` (lower case, no trailing dot):
    /// `None` when no rule applies.
    pub(super) fn apply(&self, name: &str, t: &Tables) -> Option<Vec<Hint>> {
        let longest = self
            .rules
            .iter()
            .filter(|r| suffix_matches(name, &r.suffix))
            .map(|r| r.suffix.len())
            .max()?;
        self.rules
            .iter()
            .filter(|r| r.suffix.len() == longest && suffix_matches(name, &r.suffix))
            .find_map(|r| match &r.regex {
                None => Some(r.decide(None, t)),
                Some(re) => re.captures(name).map(|caps| r.decide(Some(&caps), t)),
            })
    }
}

impl Rule {
    fn decide(&self, caps: Option<&regex::Captures<'_>>, t: &Tables) -> Vec<Hint> {
        let group = |n: &str| caps.and_then(|c| c.name(n)).map(|m| m.as_str());
        // What the codes say, strongest first.
        let mut code: Option<String> = None;
        let mut found: Option<Hint> = None;
        for (n, f) in [
            ("iata", extract::iata as fn(&str, &Tables) -> Option<Hint>),
            ("locode", extract::locode),
            ("clli", extract::clli),
        ] {
            if let Some(text) = group(n) {
                code = Some(text.to_string());
                found = f(text, t);
                if found.is_some() {
                    break;
                }
            }
        }
        let mut country = self
            .country
            .or_else(|| group("country").and_then(parse_country))
            .or(found.as_ref().map(|h| h.country));
        let mut city = self.city.clone();
        let mut coords: Option<Coordinates> = None;
        if city.is_none() {
            if let Some(text) = group("city") {
                code = code.or_else(|| Some(text.to_string()));
                let k = super::data::key(text);
                let hit = t.city_keys.get(k.as_str()).and_then(|list| {
                    list.iter()
                        .map(|&i| &t.cities[i as usize])
                        .find(|c| country.is_none_or(|cc| cc == c.cc))
                });
                if let Some(c) = hit {
                    city = Some(c.name.to_string());
                    coords = Some(c.coords);
                    country = country.or(Some(c.cc));
                }
            } else if let Some(h) = &found {
                if country == Some(h.country) {
                    city.clone_from(&h.city);
                    coords = h.coords;
                }
            }
        }
        if coords.is_none() {
            if let (Some(cc), Some(name)) = (country, &city) {
                let k = super::data::key(name);
                coords = t.city_keys.get(k.as_str()).and_then(|list| {
                    list.iter()
                        .map(|&i| &t.cities[i as usize])
                        .find(|c| c.cc == cc)
                        .map(|c| c.coords)
                });
            }
        }
        let Some(country) = country else {
            return Vec::new();
        };
        let code = code
            .or_else(|| group("country").map(str::to_string))
            .unwrap_or_else(|| self.suffix.clone());
        vec![Hint {
            country,
            city,
            coords,
            code,
            kind: HintKind::Rule,
            rule: Some(self.suffix.clone()),
        }]
    }
}

fn suffix_matches(name: &str, suffix: &str) -> bool {
    name == suffix
        || (name.len() > suffix.len()
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

fn parse_country(text: &str) -> Option<CountryCode> {
    let t = text.trim();
    let t = if t.eq_ignore_ascii_case("uk") {
        "GB"
    } else {
        t
    };
    let cc: CountryCode = t.parse().ok()?;
    rust_iso3166::from_alpha2(cc.as_str()).map(|_| cc)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
