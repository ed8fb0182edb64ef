//! Built-in extraction: labels, tokens, table matches, guards and scores.
//!
//! Registered domain: the last two labels (`ntt.net`), or the last three
//! when the top-level domain is a two-letter country code and the second
//! level is one of the generic second levels such registries use
//! (`telkom.co.za`, `example.net.au`, `isp.ne.jp`). A simple rule rather
//! than the full public suffix list: router names live under operators'
//! own domains, and the rule's only job is to keep the operator's name and
//! country-code top-level domain (where the company is, not the router)
//! out of the hints.
//!
//! Tokens: each remaining label is split at `-`/`_` into parts and each
//! part into runs of letters and of digits; letter runs of three or more
//! are tokens. Codes inside longer words never match (`ashburn` holds no
//! `ash`): only whole tokens are looked up.
//!
//! | token                         | looked up as                                           |
//! |-------------------------------|--------------------------------------------------------|
//! | a whole two-letter label      | a country label (`uk` is GB)                           |
//! | 4+ letters, or joined parts   | a city name (5 letters or fewer: 100,000+ people)      |
//! | 3 letters                     | an IATA airport or metropolitan code                    |
//! | 5 letters                     | a UN/LOCODE (country + 3)                               |
//! | 6 letters, then digits or end | CLLI-style: 4-letter city abbreviation + state/country |
//!
//! Guards: the stop list (`data/hints/stopwords.txt`: interface names,
//! router roles and models, access-network words, common words that are
//! also codes); address-encoded labels (`192-0-2-1`, `c-73-14-22-11`,
//! IPv6 groups) give no tokens, and a name holding one gives no lone
//! country label (its two-letter labels are usually states or pool names);
//! nor does the leftmost label (`my.example.net`: the host is named, not
//! placed).
//!
//! A two-letter label that is the US state or Canadian province of a city
//! found in the name (`ashburn.va`) supports that city instead of naming a
//! country.
//!
//! Scores: city name 4, IATA, LOCODE and CLLI 3, country label 2. A country label agreeing with a code's country adds
//! 2 to the code; a conflicting one takes 3 away. Codes of other tokens
//! agreeing on the country add 1. Hints scoring 2 or more are returned,
//! best first; among equals a city-level hint before a country label, and
//! the token nearer the domain first (names run interface, router, site).

use super::data::Tables;
use super::{Hint, HintKind};
use crate::model::CountryCode;

/// Second-level labels under which country-code registries register names.
const SECOND_LEVELS: &[&str] = &[
    "ac", "ad", "biz", "co", "com", "ed", "edu", "gen", "go", "gob", "gov", "in", "ind", "info",
    "int", "ltd", "mil", "ne", "net", "nic", "nom", "or", "org", "plc", "sch", "web",
];

/// Whole two-letter labels that are network jargon, not country labels
/// (`bb` backbone, `gw` gateway, `cr` core router, ...).
const NOT_COUNTRY_LABELS: &[&str] = &[
    "ae", "ag", "ar", "as", "bb", "bd", "br", "ce", "cr", "cs", "dc", "ds", "er", "fw", "gr", "gw",
    "ip", "ir", "ix", "lb", "mx", "pe", "po", "pr", "rr", "rs", "rt", "sr", "sw", "tr", "vl", "ve",
];

const MIN_SCORE: i32 = 2;

struct Candidate {
    hint: Hint,
    score: i32,
    /// Which token gave it (candidates of one token never support each other).
    token: usize,
}

/// The labels of `name` that can carry a hint: all but the registered domain's.
pub(super) fn host_labels(name: &str) -> Vec<&str> {
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    if n < 2 {
        return labels;
    }
    let registered = if n >= 3 && labels[n - 1].len() == 2 && SECOND_LEVELS.contains(&labels[n - 2])
    {
        3
    } else {
        2
    };
    labels[..n.saturating_sub(registered)].to_vec()
}

/// Whether a label encodes an address: four or more digit runs of at most
/// 255, the first of two digits or more or one of three (IPv4, as in
/// `192-0-2-1` or `c-73-14-22-11`; interface names such as `ce-2-0-1-1`
/// count slots from 0), or four or more dash-separated groups of
/// hexadecimal digits, the first of three or four with a digit (IPv6,
/// `2001-db8-0-1`; not `ce-2-0-1-1`).
pub(super) fn is_address_like(label: &str) -> bool {
    let runs: Vec<u32> = label
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
        .map(|r| r.parse().unwrap_or(u32::MAX))
        .collect();
    if runs.len() >= 4
        && runs.iter().all(|&n| n <= 255)
        && (runs[0] >= 10 || runs.iter().any(|&n| n >= 100))
    {
        return true;
    }
    let groups: Vec<&str> = label.split(['-', '_']).collect();
    groups.len() >= 4
        && groups
            .iter()
            .all(|g| g.len() <= 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
        && groups[0].len() >= 3
        && groups[0].chars().any(|c| c.is_ascii_digit())
}

/// A letter run of a label.
#[derive(Debug, PartialEq)]
pub(super) struct Token<'a> {
    pub text: &'a str,
    /// Index of the `-`/`_`-separated part it is in.
    pub part: usize,
    /// Digits follow it directly (`jfk02`, `frnkge13`).
    pub digits_after: bool,
    /// It is the whole label.
    pub whole: bool,
    /// It starts its part (`york1` yes, `r2york` no).
    pub first_in_part: bool,
    /// It is its whole part (no digits around it).
    pub whole_part: bool,
}

/// The letter runs of a label, with where they are.
pub(super) fn tokens(label: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    for (part, text) in label.split(['-', '_']).enumerate() {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_alphabetic() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push(Token {
                    text: &text[start..i],
                    part,
                    digits_after: i < bytes.len() && bytes[i].is_ascii_digit(),
                    whole: start == 0 && i == label.len(),
                    first_in_part: start == 0,
                    whole_part: start == 0 && i == bytes.len(),
                });
            } else {
                i += 1;
            }
        }
    }
    out
}

/// The hints of `name` (lower case, no trailing dot) from the tables.
pub(super) fn extract(name: &str, t: &Tables) -> Vec<Hint> {
    let labels = host_labels(name);
    let numeric_labels = labels
        .iter()
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .count();
    let address_like = numeric_labels >= 3 || labels.iter().any(|l| is_address_like(l));

    let mut cands: Vec<Candidate> = Vec::new();
    let mut token_id = 0;
    for (at, label) in labels.iter().enumerate() {
        if is_address_like(label) {
            continue;
        }
        if label.len() == 2 && label.bytes().all(|b| b.is_ascii_alphabetic()) {
            token_id += 1;
            if let Some(cc) = country_label(label, t) {
                // The leftmost label is the host itself (`my.example.net`,
                // `hr.example.net`): a country label follows a router's.
                if !address_like && at > 0 {
                    cands.push(Candidate {
                        hint: hint(cc, None, None, label, HintKind::Country),
                        score: 2,
                        token: token_id,
                    });
                }
            }
            continue;
        }
        let toks = tokens(label);
        let mut joined_parts: Vec<usize> = Vec::new();
        // Parts joined into one city name (`new-york`, `los-angeles`): their
        // own tokens are not looked up again.
        for len in [3, 2] {
            for w in toks.windows(len) {
                let consecutive = w.windows(2).all(|p| p[1].part == p[0].part + 1)
                    && w[..len - 1].iter().all(|x| x.whole_part)
                    && w.iter().all(|x| x.first_in_part);
                if !consecutive || w.iter().any(|x| joined_parts.contains(&x.part)) {
                    continue;
                }
                let joined: String = w.iter().map(|x| x.text).collect();
                if let Some(c) = city_name(&joined, t) {
                    token_id += 1;
                    cands.push(Candidate {
                        hint: c,
                        score: 4,
                        token: token_id,
                    });
                    joined_parts.extend(w.iter().map(|x| x.part));
                }
            }
        }
        for tok in &toks {
            if joined_parts.contains(&tok.part) || t.stop.contains(tok.text) || tok.text.len() < 3 {
                continue;
            }
            token_id += 1;
            if let Some(found) = match_token(tok, t) {
                cands.push(Candidate {
                    hint: found.0,
                    score: found.1,
                    token: token_id,
                });
            }
        }
    }
    score(states_as_support(cands, t))
}

/// A two-letter label that is the US state or Canadian province of a city
/// found in the same name (`ashburn.va`, `losangeles.ca`) is that state,
/// not a country (Vatican, Canada): it supports the city instead.
fn states_as_support(mut cands: Vec<Candidate>, t: &Tables) -> Vec<Candidate> {
    let states: Vec<(usize, String)> = cands
        .iter()
        .filter(|c| c.hint.kind != HintKind::Country)
        .filter(|c| matches!(c.hint.country.as_str(), "US" | "CA"))
        .filter_map(|c| {
            let city = c.hint.city.as_deref()?;
            let list = t.city_keys.get(super::data::key(city).as_str())?;
            let &i = list
                .iter()
                .find(|&&i| t.cities[i as usize].cc == c.hint.country)?;
            Some((c.token, t.cities[i as usize].admin1.to_ascii_lowercase()))
        })
        .collect();
    let mut supported = Vec::new();
    cands.retain(|c| {
        if c.hint.kind != HintKind::Country {
            return true;
        }
        let hits: Vec<usize> = states
            .iter()
            .filter(|(_, s)| *s == c.hint.code)
            .map(|(tok, _)| *tok)
            .collect();
        supported.extend(hits.iter().copied());
        hits.is_empty()
    });
    for c in &mut cands {
        if supported.contains(&c.token) {
            c.score += 2;
        }
    }
    cands
}

fn country_label(label: &str, t: &Tables) -> Option<CountryCode> {
    if NOT_COUNTRY_LABELS.contains(&label) || t.stop.contains(label) {
        return None;
    }
    let code = if label == "uk" { "gb" } else { label };
    let cc: CountryCode = code.parse().ok()?;
    rust_iso3166::from_alpha2(cc.as_str()).map(|_| cc)
}

fn hint(
    cc: CountryCode,
    city: Option<&str>,
    coords: Option<crate::model::Coordinates>,
    code: &str,
    kind: HintKind,
) -> Hint {
    Hint {
        country: cc,
        city: city.map(str::to_string),
        coords,
        code: code.to_string(),
        kind,
        rule: None,
    }
}

/// A token looked up in the tables, with its base score.
fn match_token(tok: &Token<'_>, t: &Tables) -> Option<(Hint, i32)> {
    let text = tok.text;
    if text.len() >= 4 {
        if let Some(h) = city_name(text, t) {
            return Some((h, 4));
        }
    }
    match text.len() {
        3 => iata(text, t).map(|h| (h, 3)),
        5 => locode(text, t).map(|h| (h, 3)),
        6 if tok.digits_after || tok.whole => clli(text, t).map(|h| (h, 3)),
        _ => None,
    }
}

/// A city called `text` (most populous first); names of five letters or
/// fewer only for cities of 100,000 people or more.
pub(super) fn city_name(text: &str, t: &Tables) -> Option<Hint> {
    if text.len() < 4 || t.stop.contains(text) {
        return None;
    }
    let &i = t.city_keys.get(text)?.first()?;
    let c = &t.cities[i as usize];
    if text.len() <= 5 && c.population < 100_000 {
        return None;
    }
    Some(hint(
        c.cc,
        Some(c.name),
        Some(c.coords),
        text,
        HintKind::City,
    ))
}

pub(super) fn iata(text: &str, t: &Tables) -> Option<Hint> {
    let p = t.airports.get(text.to_ascii_uppercase().as_str())?;
    Some(hint(
        p.cc,
        Some(p.city),
        Some(p.coords),
        text,
        HintKind::Iata,
    ))
}

pub(super) fn locode(text: &str, t: &Tables) -> Option<Hint> {
    let p = t.locodes.get(text.to_ascii_uppercase().as_str())?;
    Some(hint(
        p.cc,
        Some(p.city),
        Some(p.coords),
        text,
        HintKind::Locode,
    ))
}

/// A CLLI-style code: a four-letter abbreviation of a city (same first
/// letter, its letters in order in the city's name) and a region: a US
/// state, a Canadian province, a CLLI country code (`ge` Germany, `en`
/// England, `sp` Spain, ...) or an ISO country code. The most populous
/// city that fits wins.
pub(super) fn clli(text: &str, t: &Tables) -> Option<Hint> {
    if text.len() != 6 || !text.is_ascii() {
        return None;
    }
    let (abbr, reg) = text.split_at(4);
    let reg_upper = reg.to_ascii_uppercase();
    let mut interpretations: Vec<(CountryCode, &str)> = Vec::new();
    if let Some(r) = t.regions.get(reg_upper.as_str()) {
        interpretations.push((r.cc, r.admin1));
    }
    if reg != "us" && rust_iso3166::from_alpha2(&reg_upper).is_some() {
        if let Ok(cc) = reg_upper.parse() {
            interpretations.push((cc, ""));
        }
    }
    let first = abbr.as_bytes()[0];
    let mut best: Option<u32> = None;
    for (cc, admin1) in interpretations {
        let Some(list) = t.by_country.get(&cc) else {
            continue;
        };
        let found = list.iter().copied().find(|&i| {
            let c = &t.cities[i as usize];
            (admin1.is_empty() || c.admin1 == admin1)
                && Some(t.first_key[i as usize])
                    .filter(|k| !k.is_empty())
                    .is_some_and(|k| {
                        k.as_bytes().first() == Some(&first) && is_subsequence(abbr, k)
                    })
        });
        if let Some(i) = found {
            if best
                .is_none_or(|b| t.cities[b as usize].population < t.cities[i as usize].population)
            {
                best = Some(i);
            }
        }
    }
    let c = &t.cities[best? as usize];
    Some(hint(
        c.cc,
        Some(c.name),
        Some(c.coords),
        text,
        HintKind::Clli,
    ))
}

fn is_subsequence(needle: &str, hay: &str) -> bool {
    let mut it = hay.bytes();
    needle.bytes().all(|n| it.any(|h| h == n))
}

/// Consistency scoring, deduplication and ordering.
fn score(mut cands: Vec<Candidate>) -> Vec<Hint> {
    let labels: Vec<CountryCode> = cands
        .iter()
        .filter(|c| c.hint.kind == HintKind::Country)
        .map(|c| c.hint.country)
        .collect();
    let places: Vec<(usize, CountryCode)> = cands
        .iter()
        .filter(|c| c.hint.kind != HintKind::Country)
        .map(|c| (c.token, c.hint.country))
        .collect();
    for c in &mut cands {
        if c.hint.kind == HintKind::Country {
            if places.iter().any(|&(_, cc)| cc == c.hint.country) {
                c.score += 1;
            }
            continue;
        }
        if !labels.is_empty() {
            if labels.contains(&c.hint.country) {
                c.score += 2;
            } else {
                c.score -= 3;
            }
        }
        if places
            .iter()
            .any(|&(tok, cc)| tok != c.token && cc == c.hint.country)
        {
            c.score += 1;
        }
    }
    cands.retain(|c| c.score >= MIN_SCORE);
    // Best first; among equals, a city-level hint before a country label,
    // then the token nearer the domain (names run interface, router, site,
    // domain: a site code follows the router's role, `rcr21.jfk08`).
    cands.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.score),
            c.hint.kind == HintKind::Country,
            std::cmp::Reverse(c.token),
        )
    });
    let mut out: Vec<Hint> = Vec::new();
    for c in cands {
        let dup = out
            .iter()
            .any(|h| h.country == c.hint.country && h.city == c.hint.city);
        if !dup {
            out.push(c.hint);
        }
    }
    out
}
