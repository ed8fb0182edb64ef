//! Unit tests: extraction, guards against false hints, operator rules.

use super::extract::{host_labels, is_address_like, tokens};
use super::rules::RuleSet;
use super::*;
use std::path::Path;

fn first(name: &str) -> Option<(String, Option<String>, HintKind)> {
    HintTable::builtin()
        .hints(name)
        .into_iter()
        .next()
        .map(|h| (h.country.to_string(), h.city, h.kind))
}

fn country(name: &str) -> Option<String> {
    first(name).map(|f| f.0)
}

#[test]
fn airport_code_with_site_number() {
    let (cc, city, kind) = first("be2433.ccr41.jfk02.atlas.cogentco.com").unwrap();
    assert_eq!((cc.as_str(), kind), ("US", HintKind::Iata));
    assert_eq!(city.as_deref(), Some("New York City"));
    assert_eq!(
        country("100ge14-1.core1.jnb1.he.net").as_deref(),
        Some("ZA")
    );
}

#[test]
fn country_label_agreeing_with_a_code_comes_with_it() {
    let hints = HintTable::builtin().hints("ae1.jnb.za.carrier.net");
    assert_eq!(hints[0].kind, HintKind::Iata);
    assert_eq!(hints[0].country.as_str(), "ZA");
    assert!(hints
        .iter()
        .any(|h| h.kind == HintKind::Country && h.country.as_str() == "ZA"));
}

#[test]
fn conflicting_country_label_beats_the_code() {
    // `jnb` is Johannesburg, but the operator's label says Lesotho.
    let hints = HintTable::builtin().hints("ae1.jnb.ls.carrier.net");
    assert_eq!(hints[0].country.as_str(), "LS");
    assert_eq!(hints[0].kind, HintKind::Country);
    assert!(hints.iter().all(|h| h.country.as_str() != "ZA"));
}

#[test]
fn clli_codes_with_country_and_state_regions() {
    let (cc, city, kind) = first("ae-0.r20.frnkge13.de.bb.gin.ntt.net").unwrap();
    assert_eq!((cc.as_str(), kind), ("DE", HintKind::Clli));
    assert_eq!(city.as_deref(), Some("Frankfurt am Main"));
    let (cc, city, _) = first("ae-5.r21.dllstx09.us.bb.gin.ntt.net").unwrap();
    assert_eq!((cc.as_str(), city.as_deref()), ("US", Some("Dallas")));
}

#[test]
fn city_names_whole_glued_and_split_by_dashes() {
    assert_eq!(
        first("ae-1-3502.edge1.London1.Level3.net").map(|f| (f.0, f.1)),
        Some(("GB".into(), Some("London".into())))
    );
    assert_eq!(
        country("ae-2.ear3.NewYork1.Level3.net").as_deref(),
        Some("US")
    );
    assert_eq!(
        country("core.johannesburg.example.net").as_deref(),
        Some("ZA")
    );
    let (cc, city, _) = first("xe-1.los-angeles.example.net").unwrap();
    assert_eq!((cc.as_str(), city.as_deref()), ("US", Some("Los Angeles")));
}

#[test]
fn interface_names_and_router_roles_give_nothing() {
    for name in [
        "ae-1-3502.edge1.example.net",
        "xe-0-0-0.cr1.example.net",
        "et-0-0-49.bdr02.example.net",
        "hu0-0-0-1.ccr21.example.net",
        "be2433.ccr41.example.net",
        "po-101.agg1.example.net",
        "gi0-1.pe1.example.net",
        "lo0.core.example.net",
        "bundle-ether12.bar1.example.net",
        "ear1.car2.example.net",
    ] {
        assert!(HintTable::builtin().hints(name).is_empty(), "{name}");
    }
}

#[test]
fn router_models_give_nothing() {
    for name in [
        "mx480-1.example.net",
        "asr9k-2.example.net",
        "ncs5500.example.net",
        "crs-3.example.net",
        "ptx10k.example.net",
    ] {
        assert!(HintTable::builtin().hints(name).is_empty(), "{name}");
    }
}

#[test]
fn words_that_contain_a_code_give_nothing() {
    // `gateway` holds `gat`, `customer` holds `cus`/`tom`, `dynamic` holds
    // `dyn`, `ashburner` holds `ash`: only whole tokens are looked up.
    for name in [
        "gateway.example.net",
        "customerjfk.example.net",
        "dynamicpool.example.net",
        "firewall.example.net",
        "static.cust.dsl.example.net",
        "the.and.gw.bdr.example.net",
        "dhcp.net.example.org",
        "my.example.net",
        "sip.example.net",
        "nas-1.example.net",
    ] {
        assert!(
            HintTable::builtin().hints(name).is_empty(),
            "{name}: {:?}",
            HintTable::builtin().hints(name)
        );
    }
}

#[test]
fn address_like_labels_give_nothing() {
    for label in [
        "192-0-2-1",
        "c-73-14-22-11",
        "dsl-197-234-12-8",
        "a23-45-67-89",
        "2001-db8-0-1",
    ] {
        assert!(is_address_like(label), "{label}");
    }
    assert!(!is_address_like("ae-1-3502"));
    assert!(!is_address_like("ce-2-0-1-1"));
    assert!(!is_address_like("hundredgige0-0-0-1"));
    assert!(!is_address_like("100ge14-1"));
    for name in [
        "192-0-2-1.example.net",
        "c-73-14-22-11.hsd1.co.comcast.net",
        "host-41-190-0-1.static.isp.co.ls",
        "8.2.0.192.in.example.net",
        "2001-db8-abc-1.ip6.example.net",
    ] {
        assert!(
            HintTable::builtin().hints(name).is_empty(),
            "{name}: {:?}",
            HintTable::builtin().hints(name)
        );
    }
}

#[test]
fn registered_domain_and_country_tld_are_not_hints() {
    assert_eq!(host_labels("core1.seacom.co.za"), vec!["core1"]);
    assert_eq!(host_labels("ae1.jnb.carrier.net"), vec!["ae1", "jnb"]);
    assert!(HintTable::builtin().hints("www.telkom.co.za").is_empty());
    assert!(HintTable::builtin().hints("fra.example.net").len() == 1);
    assert!(HintTable::builtin()
        .hints("router.frankfurt.net")
        .is_empty());
}

#[test]
fn tokens_split_at_dashes_and_digits() {
    let t: Vec<&str> = tokens("if-ae-2.2").iter().map(|t| t.text).collect();
    assert_eq!(t, vec!["if", "ae"]);
    let t = tokens("frnkge13");
    assert_eq!(t[0].text, "frnkge");
    assert!(t[0].digits_after);
}

#[test]
fn city_lookup_ignores_accents_and_case() {
    let table = HintTable::builtin();
    let sp = table.city("BR".parse().unwrap(), "São Paulo").unwrap();
    assert!((sp.lat + 23.5).abs() < 1.0);
    assert!(table.city("LS".parse().unwrap(), "maseru").is_some());
    assert!(table.city("LS".parse().unwrap(), "Nowhere Town").is_none());
}

fn rules(text: &str) -> Result<RuleSet, GeoError> {
    RuleSet::parse(Path::new("rules.toml"), text)
}

#[test]
fn rule_file_errors_name_file_and_line() {
    let cases = [
        ("[[rule]]\nsuffix = \"a.example\"\nregex = \"(\"\n", 1, "regex"),
        (
            "# c\n\n[[rule]]\nsuffix = \"a.example\"\n\n[[rule]]\nsuffix = \"b.example\"\nregex = '(?P<town>x)'\n",
            6,
            "group `town`",
        ),
        ("[[rule]]\nsuffix = \"a.example\"\ncountry = \"XX\"\n", 1, "country `XX`"),
        ("[[rule]]\nsuffix = \"a.example\"\ncity = \"Maseru\"\n", 1, "needs a country"),
        ("[[rule]]\nsuffix = \"a example\"\n", 1, "not a domain name"),
        ("\n\n[[rule]]\nsufix = \"a.example\"\n", 4, "sufix"),
        ("[[rule]]\nsuffix = \"a.example\"\nregex = \"unterminated\n", 3, ""),
    ];
    for (text, line, words) in cases {
        let e = rules(text).unwrap_err().to_string();
        assert!(e.starts_with(&format!("rules.toml:{line}: ")), "{e}");
        assert!(e.contains(words), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn rules_of_the_longest_suffix_win_over_extraction() {
    let set = rules(
        r#"
[[rule]]
suffix = "carrier.example"
regex = '^[a-z]+\d*\.(?P<iata>[a-z]{3})\d*\.'

[[rule]]
suffix = "lab.carrier.example"
regex = '^mru-'
country = "LS"
city = "Maseru"

[[rule]]
suffix = "lab.carrier.example"
regex = '^dsl-'
"#,
    )
    .unwrap();
    let table = HintTable {
        tables: tables(),
        rules: set,
        rules_file: None,
    };
    let h = table.hints("ae1.cpt2.carrier.example.");
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].country.as_str(), h[0].kind, h[0].code.as_str()),
        ("ZA", HintKind::Rule, "cpt")
    );
    assert_eq!(h[0].rule.as_deref(), Some("carrier.example"));
    let h = table.hints("mru-core1.lab.carrier.example");
    assert_eq!(h[0].country.as_str(), "LS");
    assert_eq!(h[0].city.as_deref(), Some("Maseru"));
    assert!(h[0].coords.is_some());
    // A matching rule with nothing to say: no hint, not the built-in `jnb`.
    assert!(table.hints("dsl-jnb.lab.carrier.example").is_empty());
    // No rule of the longest suffix matches: built-in extraction.
    assert_eq!(
        table.hints("core.jnb1.lab.carrier.example")[0]
            .country
            .as_str(),
        "ZA"
    );
}

#[test]
fn state_labels_support_their_city() {
    let (cc, city, _) = first("be-33652-cr02.ashburn.va.ibone.comcast.net").unwrap();
    assert_eq!((cc.as_str(), city.as_deref()), ("US", Some("Ashburn")));
    let (cc, city, _) = first("be-2411-pe11.losangeles.ca.ibone.comcast.net").unwrap();
    assert_eq!((cc.as_str(), city.as_deref()), ("US", Some("Los Angeles")));
}
