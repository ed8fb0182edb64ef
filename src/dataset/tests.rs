use super::*;
use sha2::{Digest, Sha256};

/// Every version ever published, with the SHA-256 of its columns (name,
/// type, nullability, in order). A change to a table's columns fails here
/// until it gets a new version, added below: old versions stay listed.
const PUBLISHED: [(&str, &str); 5] = [
    (
        "transitwatch.traces/1",
        "7518008795a106f1ee67981fed3518f3922ca3d23a1f9872d3415e9377f50e93",
    ),
    (
        "transitwatch.hops/1",
        "3dcbc259423130ef569d317c59bf3d09c936c9032675b5f4b79664fdfaa03339",
    ),
    // Version 1 was its first ten columns, before the spec was published.
    (
        "transitwatch.csv/2",
        "18ffb5637b96d1d70d1c3d506d11b9a1e38f776849b4ffaf4ceff42d54789a6e",
    ),
    // hops/1 and csv/2 with the MPLS label stack (`mpls`) at the end.
    (
        "transitwatch.hops/2",
        "8a7ff8877371d505b28cf6404ece24b7360c11a0f00d3515a0a0c0d20efe0430",
    ),
    (
        "transitwatch.csv/3",
        "788f27b090905b92bff1964d1d931a816ce2cd64e6a4266f69e5642bb45fc457",
    ),
];

fn fingerprint(table: &Table) -> String {
    let mut hash = Sha256::new();
    for c in table.columns {
        hash.update(format!("{}:{}:{}\n", c.name, c.kind.as_str(), c.nullable));
    }
    if table.columns.iter().any(|c| c.kind == Kind::EvidenceList) {
        for c in &EVIDENCE_FIELDS {
            hash.update(format!(
                "evidence.{}:{}:{}\n",
                c.name,
                c.kind.as_str(),
                c.nullable
            ));
        }
    }
    hex::encode(hash.finalize())
}

#[test]
fn a_change_to_the_columns_changes_the_version() {
    let wrong: Vec<String> = TABLES
        .iter()
        .filter_map(|table| {
            let found = fingerprint(table);
            let published = PUBLISHED.iter().find(|(name, _)| *name == table.schema);
            (published.map(|p| p.1) != Some(found.as_str())).then(|| {
                format!(
                    "{}: its columns ({found}) are not those published under this version; \
                     a changed table needs a new version (add it to PUBLISHED)",
                    table.schema
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_published_spec_is_the_code_s() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/columns.json");
    let mut expected = serde_json::to_string_pretty(&spec_json()).unwrap();
    expected.push('\n');
    if std::env::var_os("TRANSITWATCH_BLESS").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        found == expected,
        "schemas/columns.json is not the spec of the code: run \
         `TRANSITWATCH_BLESS=1 cargo test --lib dataset` and commit it"
    );
}

#[test]
fn names_are_unique_and_partition_columns_are_in_both_tables() {
    for table in TABLES {
        let mut names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "{}", table.schema);
    }
    for p in [Partition::Date, Partition::Vantage] {
        for table in [&TRACES, &HOPS] {
            assert!(table.columns.iter().any(|c| c.name == p.as_str()));
            assert_eq!(
                table.file_columns(&[p]).count() + 1,
                table.columns.len(),
                "{} without {}",
                table.schema,
                p.as_str()
            );
        }
    }
}

#[test]
fn partitions_parse_or_say_why_not() {
    assert_eq!(
        parse_partitions("date,vantage"),
        Ok(vec![Partition::Date, Partition::Vantage])
    );
    assert_eq!(parse_partitions("vantage"), Ok(vec![Partition::Vantage]));
    assert_eq!(parse_partitions(""), Ok(vec![]));
    let e = parse_partitions("date,country").unwrap_err().to_string();
    assert!(e.contains("`country` is not a partition column"), "{e}");
    let e = parse_partitions("date,date").unwrap_err().to_string();
    assert!(e.contains("given twice"), "{e}");
}

#[test]
fn dates_are_utc_days() {
    let at = crate::units::Timestamp::from_unix(1_765_065_599).unwrap();
    assert_eq!(date(at), "2025-12-06");
    let at = crate::units::Timestamp::from_unix(1_765_065_600).unwrap();
    assert_eq!(date(at), "2025-12-07");
}
