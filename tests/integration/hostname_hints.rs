//! Location hints of router host names, measured: precision and recall of
//! the extracted country and city over `tests/resources/hostnames/`:
//! `corpus.csv` (the development set), `corpus-heldout.csv` (written after
//! the extractor; its first run led to the guards for service names and
//! interface labels that look like addresses) and `corpus-heldout2.csv`
//! (written once the extractor was frozen, never tuned against). Plus the
//! `geo hint` command's output and errors.
//!
//! A name's hint is its best (first) hint. Country: correct when it is the
//! expected country. City: correct when the centre of the city the hint
//! names (or its own point) is within 50 km of the expected city's
//! (GeoNames, through `HintTable::city`): an airport code counts for the
//! city it serves, a suburb for its city. Precision is over the
//! names that carry a hint and got one; recall over the names that carry
//! one. Names that carry none must get no hint at all.

use crate::support;
use std::process::Command;
use transitwatch::geo::{great_circle_km, HintTable};
use transitwatch::model::CountryCode;

/// The farthest a hint's point may be from the expected city and still
/// name it (Dulles airport is 40 km from central Washington).
const CITY_KM: f64 = 50.0;

struct Row {
    name: String,
    country: Option<CountryCode>,
    city: Option<String>,
}

fn load(file: &str) -> Vec<Row> {
    let path = support::root().join("tests/resources/hostnames").join(file);
    let mut reader = csv::Reader::from_path(&path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let field = |i: usize| {
                Some(r.get(i).unwrap_or_default().trim().to_string()).filter(|s| !s.is_empty())
            };
            Row {
                name: r[0].to_string(),
                country: field(1).map(|c| c.parse().unwrap()),
                city: field(2),
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Figures {
    names: usize,
    with_hint: usize,
    without_hint: usize,
    country_predicted: usize,
    country_correct: usize,
    with_city: usize,
    city_predicted: usize,
    city_correct: usize,
    false_hints: Vec<String>,
    wrong: Vec<String>,
}

impl Figures {
    fn country_precision(&self) -> f64 {
        ratio(self.country_correct, self.country_predicted)
    }
    fn country_recall(&self) -> f64 {
        ratio(self.country_correct, self.with_hint)
    }
    fn city_precision(&self) -> f64 {
        ratio(self.city_correct, self.city_predicted)
    }
    fn city_recall(&self) -> f64 {
        ratio(self.city_correct, self.with_city)
    }
    fn report(&self, file: &str) -> String {
        format!(
            "{file}: {} names ({} with a hint, {} without): country precision {:.1}% ({}/{}), \
             recall {:.1}% ({}/{}); city precision {:.1}% ({}/{}), recall {:.1}% ({}/{}); \
             hints from names without one: {}",
            self.names,
            self.with_hint,
            self.without_hint,
            100.0 * self.country_precision(),
            self.country_correct,
            self.country_predicted,
            100.0 * self.country_recall(),
            self.country_correct,
            self.with_hint,
            100.0 * self.city_precision(),
            self.city_correct,
            self.city_predicted,
            100.0 * self.city_recall(),
            self.city_correct,
            self.with_city,
            self.false_hints.len(),
        )
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn measure(file: &str) -> Figures {
    let table = HintTable::builtin();
    let mut f = Figures::default();
    for row in load(file) {
        f.names += 1;
        let best = table.hints(&row.name).into_iter().next();
        let Some(expected) = row.country else {
            f.without_hint += 1;
            if let Some(h) = best {
                f.false_hints
                    .push(format!("{} -> {} ({})", row.name, h.country, h.code));
            }
            continue;
        };
        f.with_hint += 1;
        let Some(h) = best else {
            f.wrong
                .push(format!("{}: no hint (expected {expected})", row.name));
            continue;
        };
        f.country_predicted += 1;
        if h.country == expected {
            f.country_correct += 1;
        } else {
            f.wrong.push(format!(
                "{}: {} `{}` (expected {expected})",
                row.name, h.country, h.code
            ));
        }
        let Some(city) = &row.city else { continue };
        f.with_city += 1;
        let at = table
            .city(expected, city)
            .unwrap_or_else(|| panic!("{file}: {}: no city {city} in {expected}", row.name));
        // The named city's centre (an airport code names the city it
        // serves: Narita is 60 km from Tokyo), else the hint's own point.
        let named = h
            .city
            .as_deref()
            .and_then(|c| table.city(h.country, c))
            .or(h.coords);
        if let (Some(_), Some(coords)) = (&h.city, named) {
            f.city_predicted += 1;
            if h.country == expected && great_circle_km(coords, at) <= CITY_KM {
                f.city_correct += 1;
            } else {
                f.wrong.push(format!(
                    "{}: city {} `{}` (expected {city})",
                    row.name,
                    h.city.as_deref().unwrap_or_default(),
                    h.code
                ));
            }
        }
    }
    f
}

fn check(file: &str) {
    let f = measure(file);
    println!("{}", f.report(file));
    for w in &f.wrong {
        println!("  miss: {w}");
    }
    assert!(
        f.with_hint >= 50 && f.without_hint >= 20,
        "{}",
        f.report(file)
    );
    assert!(f.country_precision() >= 0.95, "{}", f.report(file));
    assert!(f.city_precision() >= 0.95, "{}", f.report(file));
    assert!(f.country_recall() >= 0.80, "{}", f.report(file));
    assert!(f.city_recall() >= 0.80, "{}", f.report(file));
    assert!(
        f.false_hints.is_empty(),
        "{}: {:?}",
        f.report(file),
        f.false_hints
    );
}

#[test]
fn corpus_precision_and_recall() {
    check("corpus.csv");
}

#[test]
fn heldout_precision_and_recall() {
    check("corpus-heldout.csv");
}

#[test]
fn second_heldout_precision_and_recall() {
    check("corpus-heldout2.csv");
}

#[test]
fn geo_hint_json_one_object_per_name() {
    let out = Command::new(support::bin())
        .args([
            "geo",
            "hint",
            "--json",
            "ae-0.r20.frnkge13.de.bb.gin.ntt.net",
            "dsl-192-0-2-1.pool.example.net",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["name"], "ae-0.r20.frnkge13.de.bb.gin.ntt.net");
    assert_eq!(lines[0]["country"], "DE");
    assert_eq!(lines[0]["city"], "Frankfurt am Main");
    assert_eq!(lines[0]["kind"], "clli");
    assert!(lines[0]["lat"].as_f64().unwrap() > 49.0);
    assert_eq!(lines[1]["name"], "dsl-192-0-2-1.pool.example.net");
    assert!(lines[1]["country"].is_null() && lines[1]["city"].is_null());
    assert_eq!(lines[1]["hints"].as_array().unwrap().len(), 0);

    let out = Command::new(support::bin())
        .args([
            "geo",
            "hint",
            "100ge14-1.core1.jnb1.he.net",
            "mail.example.com",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NAME "), "{text}");
    assert!(text.contains("ZA       Johannesburg"), "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("mail.example.com") && l.contains(" - ")));
}

#[test]
fn geo_hint_rules_file_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("hostname-rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nsuffix = \"lab.example\"\nregex = '^mru-'\ncountry = \"LS\"\ncity = \"Maseru\"\n",
    )
    .unwrap();
    let out = Command::new(support::bin())
        .args(["geo", "hint", "--json", "--rules"])
        .arg(&rules)
        .arg("mru-core1.lab.example")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["country"].as_str(), v["city"].as_str()),
        (Some("LS"), Some("Maseru"))
    );
    assert_eq!(v["kind"], "rule");

    std::fs::write(
        &rules,
        "# rules\n[[rule]]\nsuffix = \"lab.example\"\nregex = '(?P<site>x)'\n",
    )
    .unwrap();
    let out = Command::new(support::bin())
        .args(["geo", "hint", "--rules"])
        .arg(&rules)
        .arg("mru-core1.lab.example")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("{}:2: ", rules.display())), "{err}");
    assert!(err.contains("`site`"), "{err}");
}

#[test]
fn check_config_names_a_bad_rules_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("hostname-rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nsuffix = \"a.example\"\n\n[[rule]]\nsuffix = \"b.example\"\ncountry = \"XX\"\n",
    )
    .unwrap();
    let config = dir.path().join("transitwatch.toml");
    std::fs::write(
        &config,
        "[vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\n\n[geoip]\nhostname_rules = \"hostname-rules.toml\"\n\n[[target]]\nname = \"t\"\nhost = \"127.0.0.1\"\n",
    )
    .unwrap();
    let out = Command::new(support::bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("geoip.hostname_rules"), "{err}");
    assert!(err.contains(&format!("{}:4: ", rules.display())), "{err}");
}
