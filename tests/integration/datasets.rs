//! Tabular datasets: `analyze` and `export` write Parquet datasets and CSV
//! whose columns are exactly the published spec (`schemas/columns.json`,
//! `transitwatch::dataset`); DuckDB (and pyarrow) read a Hive-partitioned
//! directory of them and find the same traces, verdicts, hops and
//! evidence as the JSON records of the same run; the dataset carries the
//! run's provenance; mistakes are refused in one line.

use crate::support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::datasets::{python_has, python_json as python};
use support::records::{domestic, in_ie, new_trace, via_za};
use support::{bin, root, text};
use transitwatch::dataset::{self, Partition, HOPS, TRACES};

/// An Atlas dump over the lab's addresses: 7,000 results over two UTC
/// days, probes 10-14 of which the metadata places 10-12 in LS, 13 in ZA
/// and does not know 14 (no vantage country); located by the lab's
/// overrides and its third-party-style database (which disagrees about two
/// routers), so hops carry evidence lists.
struct Input {
    dir: tempfile::TempDir,
    dump: PathBuf,
    probes: PathBuf,
    database: PathBuf,
}

fn input() -> Input {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    std::fs::write(&dump, crate::compressed_input::dump(7000)).unwrap();
    let probes = dir.path().join("probes.json");
    std::fs::write(
        &probes,
        r#"{"10":{"country_code":"LS"},"11":{"country_code":"LS"},"12":{"country_code":"LS"},"13":{"country_code":"ZA"}}"#,
    )
    .unwrap();
    let database = dir.path().join("lab-geo-db.mmdb");
    let built = Command::new(bin())
        .args(["geo", "build", "--database-type", "LabGeo-City", "--csv"])
        .arg(root().join("tests/lab/lab-geo-db.csv"))
        .arg("--output")
        .arg(&database)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));
    Input {
        dir,
        dump,
        probes,
        database,
    }
}

fn analyze(input: &Input, args: &[&str]) -> Output {
    Command::new(bin())
        .args(["analyze", "--input-format", "atlas", "--input"])
        .arg(&input.dump)
        .arg("--probes")
        .arg(&input.probes)
        .arg("--overrides")
        .arg(root().join("tests/lab/lab-geo.csv"))
        .arg("--geoip")
        .arg(&input.database)
        .args(args)
        .output()
        .unwrap()
}

fn json_records(input: &Input) -> Vec<Value> {
    let out = analyze(input, &["--output-format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every Parquet file below `dir` (sorted).
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A file's Arrow schema, row groups' row counts and `transitwatch.schema`.
fn read_parquet(path: &Path) -> (arrow_schema::SchemaRef, Vec<i64>, Option<String>) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = builder.metadata().clone();
    let groups = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    let schema_name = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "transitwatch.schema"))
        .and_then(|k| k.value.clone());
    (builder.schema().clone(), groups, schema_name)
}

#[test]
fn analyze_writes_a_partitioned_dataset_duckdb_reads_as_the_records_say() {
    let input = input();
    let records = json_records(&input);
    assert_eq!(records.len(), 7000);
    let out_dir = input.dir.path().join("dataset");
    let out = analyze(
        &input,
        &[
            "--output-format",
            "parquet",
            "--output",
            out_dir.to_str().unwrap(),
            "--partition-by",
            "date,vantage",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // With the records in files, the summary goes to standard output.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.starts_with("7000 traces from "), "{summary}");

    // Hive-style directories: two days, three vantages (one unknown).
    let partitions = [Partition::Date, Partition::Vantage];
    let files = parquet_files(&out_dir);
    let mut dirs: Vec<String> = files
        .iter()
        .filter(|f| f.starts_with(out_dir.join("traces")))
        .map(|f| {
            f.parent()
                .unwrap()
                .strip_prefix(out_dir.join("traces"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "date=2023-11-14/vantage=LS",
            "date=2023-11-14/vantage=ZA",
            "date=2023-11-14/vantage=unknown",
            "date=2023-11-15/vantage=LS",
            "date=2023-11-15/vantage=ZA",
            "date=2023-11-15/vantage=unknown",
        ]
    );
    // Every file: the spec's columns without the partition ones, its
    // table's versioned name, row groups no larger than the bound.
    for f in &files {
        let (schema, groups, name) = read_parquet(f);
        let table = if f.starts_with(out_dir.join("traces")) {
            &TRACES
        } else {
            &HOPS
        };
        assert_eq!(
            schema.fields(),
            dataset::table::schema(table, &partitions).fields(),
            "{}",
            f.display()
        );
        assert_eq!(name.as_deref(), Some(table.schema), "{}", f.display());
        assert!(!groups.is_empty(), "{}", f.display());
        assert!(groups
            .iter()
            .all(|n| *n > 0 && *n as usize <= dataset::parquet::ROW_GROUP_ROWS));
    }

    // The provenance document is the one `--provenance` writes, with the
    // input's SHA-256.
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("provenance.json")).unwrap()).unwrap();
    assert_eq!(provenance["schema"], "transitwatch.provenance/1");
    assert_eq!(provenance["traces"], 7000);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&input.dump).unwrap()))
    };
    assert_eq!(provenance["input"]["sha256"], sha.as_str());
    assert_eq!(
        provenance["location_files"][0]["kind"], "overrides",
        "{provenance}"
    );

    // What the records say, to hold DuckDB's answers against.
    let mut expected_classes: std::collections::BTreeMap<(String, String, String), u64> =
        Default::default();
    let (mut hops, mut evidence, mut located) = (0u64, 0u64, 0u64);
    let mut statuses = std::collections::BTreeSet::new();
    for r in &records {
        let date = r["started_at"].as_str().unwrap()[..10].to_string();
        let vantage = r["vantage"]["country"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        let class = r["verdict"]["class"].as_str().unwrap().to_string();
        *expected_classes.entry((date, vantage, class)).or_default() += 1;
        for h in r["hops"].as_array().unwrap() {
            hops += 1;
            located += u64::from(h["geo"]["country"].is_string());
            for e in h["geo"]["evidence"].as_array().into_iter().flatten() {
                evidence += 1;
                statuses.insert(e["status"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(evidence > 0, "the overrides and the database give evidence");

    if !python_has("duckdb") {
        eprintln!(
            "SKIPPED the DuckDB half of analyze_writes_a_partitioned_dataset_duckdb_reads_as_the_records_say: python3 cannot import duckdb (pip install duckdb)"
        );
        return;
    }
    let answer = python(
        r#"
import duckdb, json, sys
d = sys.argv[1]
con = duckdb.connect()
t = f"read_parquet('{d}/traces/**/*.parquet', hive_partitioning=true)"
h = f"read_parquet('{d}/hops/**/*.parquet', hive_partitioning=true)"
classes = con.execute(f"select date, coalesce(vantage, 'unknown'), class, count(*) from {t} group by all order by all").fetchall()
hops = con.execute(f"select count(*), count(country) from {h}").fetchone()
joined = con.execute(f"select count(*) from {t} as t join {h} as h on t.trace_id = h.trace_id and t.date = h.date and t.vantage = h.vantage").fetchone()[0]
evidence = con.execute(f"select count(*) from (select unnest(evidence) as e from {h})").fetchone()[0]
statuses = con.execute(f"select distinct e.status from (select unnest(evidence) as e from {h}) order by 1").fetchall()
ids = con.execute(f"select min(trace_id), max(trace_id), count(distinct trace_id) from {t}").fetchone()
za = con.execute(f"select count(*) from {t} where list_contains(foreign_countries, 'ZA')").fetchone()[0]
atlas = con.execute(f"select count(*) from {t} where prb_id between 10 and 14 and msm_id between 1000 and 1002").fetchone()[0]
types = con.execute(f"select column_name, column_type from (describe select * from {t})").fetchall()
print(json.dumps({"classes": classes, "hops": hops, "joined": joined, "evidence": evidence,
  "statuses": [s[0] for s in statuses], "ids": ids, "za": za, "atlas": atlas,
  "types": dict(types)}, default=str))
"#,
        &out_dir,
    );
    let classes: Vec<((String, String, String), u64)> = answer["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let s = |i: usize| row[i].as_str().unwrap().to_string();
            ((s(0), s(1), s(2)), row[3].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        classes,
        expected_classes.into_iter().collect::<Vec<_>>(),
        "traces per date, vantage (a missing one is `unknown`) and class"
    );
    assert_eq!(answer["hops"][0], hops);
    assert_eq!(answer["hops"][1], located);
    assert_eq!(answer["joined"], hops, "every hop joins its trace");
    assert_eq!(answer["evidence"], evidence);
    assert!(
        statuses.contains("disagrees"),
        "the database's Dublin for a Maseru router"
    );
    assert_eq!(answer["statuses"], serde_json::json!(statuses));
    assert_eq!(answer["ids"], serde_json::json!([1, 7000, 7000]));
    let via_za = records
        .iter()
        .filter(|r| {
            r["verdict"]["foreign_countries"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "ZA"))
        })
        .count();
    assert!(via_za > 0);
    assert_eq!(answer["za"], via_za);
    assert_eq!(answer["atlas"], 7000, "Atlas ids kept");
    assert_eq!(answer["types"]["started_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(answer["types"]["foreign_countries"], "VARCHAR[]");

    // Traces per class, per foreign country and per vantage, and the hops,
    // as DuckDB, pyarrow and pandas read the directory: the records'.
    if !python_has("pyarrow, pandas") {
        eprintln!("SKIPPED the pyarrow and pandas figures: python3 cannot import them");
        return;
    }
    let figures = support::datasets::of_parquet(&out_dir);
    let expected = support::datasets::of_records(&records);
    for reader in ["duckdb", "pyarrow", "pandas"] {
        assert_eq!(figures[reader], expected, "{reader}");
    }
}

#[test]
fn analyze_csv_has_the_spec_header_and_a_row_per_hop() {
    let input = input();
    let records = json_records(&input);
    let out = analyze(&input, &["--output-format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let spec: Vec<&str> = dataset::CSV.columns.iter().map(|c| c.name).collect();
    assert_eq!(header, spec);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let hops: usize = records
        .iter()
        .map(|r| r["hops"].as_array().unwrap().len())
        .sum();
    assert_eq!(rows.len(), hops);
    // Row by row: the hop's trace, in input order from 1.
    let col = |name: &str| spec.iter().position(|c| *c == name).unwrap();
    let mut i = 0;
    for (n, r) in records.iter().enumerate() {
        for h in r["hops"].as_array().unwrap() {
            let row = &rows[i];
            i += 1;
            assert_eq!(row[col("trace_id")], (n + 1).to_string());
            assert_eq!(row[col("ttl")], h["ttl"].to_string());
            assert_eq!(&row[col("class")], r["verdict"]["class"].as_str().unwrap());
            assert_eq!(row[col("prb_id")], r["atlas"]["prb_id"].to_string());
            assert_eq!(
                &row[col("vantage")],
                r["vantage"]["country"].as_str().unwrap_or("")
            );
        }
    }
    // To a file: the same bytes, the summary on standard output.
    let file = input.dir.path().join("hops.csv");
    let to_file = analyze(
        &input,
        &["--output-format", "csv", "--output", file.to_str().unwrap()],
    );
    assert_eq!(to_file.status.code(), Some(0), "{}", text(&to_file));
    assert_eq!(std::fs::read(&file).unwrap(), out.stdout);
    assert!(String::from_utf8_lossy(&to_file.stdout).starts_with("7000 traces from "));
}

#[test]
fn export_writes_the_history_as_a_dataset_pyarrow_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    let t0 = 1_700_000_000;
    let mut store = transitwatch::store::Store::open(&db).unwrap();
    let traces = [
        ("gov/ipv4", domestic("gov", t0)),
        ("bank", via_za("bank", t0 + 10)),
        ("shop", in_ie("shop", t0 + 86_400)),
    ];
    for (key, r) in &traces {
        store.insert(&new_trace(key, r.clone())).unwrap();
    }
    drop(store);
    let out_dir = dir.path().join("export");
    let out = Command::new(bin())
        .args(["export", "--format", "parquet", "--store"])
        .arg(&db)
        .arg("--output")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = parquet_files(&out_dir);
    assert_eq!(
        files,
        [
            out_dir.join("hops/part-00000.parquet"),
            out_dir.join("traces/part-00000.parquet")
        ]
    );
    for (f, table) in files.iter().zip([&HOPS, &TRACES]) {
        let (schema, _, name) = read_parquet(f);
        assert_eq!(schema.fields(), dataset::table::schema(table, &[]).fields());
        assert_eq!(name.as_deref(), Some(table.schema));
    }
    // A researcher's round trip: export -> pandas -> verdict counts, the
    // counts of the JSON Lines export of the same store.
    let jsonl = Command::new(bin())
        .args(["export", "--format", "jsonl", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    let records: Vec<Value> = String::from_utf8_lossy(&jsonl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), traces.len());
    if python_has("duckdb, pyarrow, pandas") {
        let figures = support::datasets::of_parquet(&out_dir);
        let expected = support::datasets::of_records(&records);
        for reader in ["duckdb", "pyarrow", "pandas"] {
            assert_eq!(figures[reader], expected, "{reader}");
        }
    }
    if !python_has("pyarrow.parquet") {
        eprintln!(
            "SKIPPED the pyarrow half of export_writes_the_history_as_a_dataset_pyarrow_reads: python3 cannot import pyarrow (pip install pyarrow)"
        );
        return;
    }
    let answer = python(
        r#"
import json, sys, pyarrow.parquet as pq
d = sys.argv[1]
t = pq.read_table(f"{d}/traces").to_pylist()
h = pq.read_table(f"{d}/hops")
print(json.dumps({"traces": [[r["trace_id"], r["path_key"], r["target"], r["date"], r["class"], r["foreign_countries"], r["transitwatch_version"]] for r in t],
  "hops": h.num_rows, "ttl_type": str(h.schema.field("ttl").type)}))
"#,
        &out_dir,
    );
    let expected: Vec<Value> = traces
        .iter()
        .enumerate()
        .map(|(i, (key, r))| {
            serde_json::json!([
                i + 1,
                key,
                r.trace.target.name,
                transitwatch::dataset::date(r.trace.started_at),
                r.verdict.class.as_str(),
                r.verdict
                    .foreign_countries
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                support::records::provenance().version,
            ])
        })
        .collect();
    assert_eq!(answer["traces"], Value::Array(expected));
    let hops: usize = traces.iter().map(|(_, r)| r.trace.hops.len()).sum();
    assert_eq!(answer["hops"], hops);
    assert_eq!(answer["ttl_type"], "uint8");
}

#[test]
fn dataset_mistakes_are_refused_in_one_line() {
    let input = input();
    let taken = input.dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("keep.txt"), "mine").unwrap();
    for (args, says) in [
        (
            vec!["--output-format", "parquet"],
            "parquet is written to a directory: give --output DIR",
        ),
        (
            vec![
                "--output-format",
                "parquet",
                "--output",
                taken.to_str().unwrap(),
            ],
            "already exists and is not empty",
        ),
        (
            vec![
                "--output-format",
                "parquet",
                "--partition-by",
                "date,country",
            ],
            "`country` is not a partition column",
        ),
        (
            vec!["--output-format", "csv", "--partition-by", "date"],
            "--partition-by is for --output-format parquet",
        ),
        (
            vec!["--output-format", "table"],
            "`table` is not an output format",
        ),
        (vec!["--output", "x.csv"], "--output is for records"),
    ] {
        let out = analyze(&input, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // What was there is untouched, and no staging directory is left.
    assert_eq!(
        std::fs::read_to_string(taken.join("keep.txt")).unwrap(),
        "mine"
    );
    let leftovers: Vec<_> = std::fs::read_dir(input.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn provenance_documents_fit_their_schema_and_it_bites() {
    let input = input();
    let mut docs = Vec::new();
    // An Atlas run with probe metadata, overrides and a database, to a
    // dataset (its provenance.json) and with --provenance.
    let dataset = input.dir.path().join("dataset");
    let provenance = input.dir.path().join("provenance.json");
    let out = analyze(
        &input,
        &[
            "--output-format",
            "parquet",
            "--output",
            dataset.to_str().unwrap(),
            "--provenance",
            provenance.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let inside = read(&dataset.join("provenance.json"));
    assert_eq!(inside, read(&provenance), "the same document both ways");
    assert_eq!(inside["probes"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(inside["geoip"][0]["type"], "LabGeo-City");
    docs.push(inside);
    // A scamper run of a tracelb record and a ping, with a home country
    // and no input hash (summary only, no dataset).
    let scamper = input.dir.path().join("mda.jsonl");
    std::fs::write(
        &scamper,
        concat!(
            r#"{"type":"tracelb", "method":"icmp-echo", "src":"198.18.1.1", "dst":"198.51.100.10", "start":{"sec":1700000100, "usec":0}, "firsthop":1, "nodes":[{"addr":"198.18.1.2", "q_ttl":1, "linkc":1, "links":[[{"addr":"198.51.100.10", "probes":[{"ttl":2, "replies":[{"rtt":1.0}]}]}]]}]}"#,
            "\n{\"type\":\"ping\"}\n"
        ),
    )
    .unwrap();
    let scamper_provenance = input.dir.path().join("scamper-provenance.json");
    let out = Command::new(bin())
        .args([
            "analyze",
            "--input-format",
            "scamper",
            "--home",
            "LS",
            "--input",
        ])
        .arg(&scamper)
        .arg("--overrides")
        .arg(root().join("tests/lab/lab-geo.csv"))
        .arg("--provenance")
        .arg(&scamper_provenance)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = read(&scamper_provenance);
    assert_eq!(
        (
            doc["tracelb"]["records"].as_u64(),
            doc["skipped"]["ping"].as_u64()
        ),
        (Some(1), Some(1)),
        "{doc}"
    );
    docs.push(doc);

    // The schema bites: each change below breaks it at the place named.
    let mut broken = Vec::new();
    let mut bad = |pointer: &str, value: Value, says: &str| {
        let mut doc = docs[0].clone();
        *doc.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value;
        broken.push((doc, says.to_string()));
    };
    bad("/schema", json!("transitwatch.provenance/2"), "$.schema");
    bad("/input/sha256", json!("ABC"), "$.input.sha256");
    bad("/input/compression", json!("rar"), "$.input.compression");
    bad("/classes", json!({"maybe": 3}), "$.classes");
    bad("/home", json!("LSO"), "$.home");
    bad("/geoip/0/build_epoch", json!(-1), "$.geoip[0].build_epoch");
    let mut all = docs.clone();
    all.extend(broken.iter().map(|(d, _)| d.clone()));
    let Some(found) = support::schema::errors("provenance.schema.json", &all) else {
        eprintln!("SKIPPED provenance schema check: python3 jsonschema missing");
        return;
    };
    for (doc, error) in docs.iter().zip(&found) {
        assert_eq!(error, &None, "{doc}");
    }
    for ((_, says), error) in broken.iter().zip(&found[docs.len()..]) {
        let error = error.as_deref().unwrap_or("valid");
        assert!(error.starts_with(says.as_str()), "{says}: {error}");
    }
}
