//! A researcher's figures of a dataset, three ways: from the JSON records,
//! and from a Parquet dataset directory as DuckDB, pyarrow and pandas read
//! it (traces per class, per foreign country crossed, per vantage, and the
//! hop count), so a test can hold them equal.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Whether python3 imports every one of `modules`.
#[must_use]
pub fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The figures of trace records (as `analyze --json` or `export --format
/// jsonl` write them): `{"classes": {..}, "countries": {..}, "vantages":
/// {..}, "hops": n}`, a missing vantage counted as `"NULL"` (a null in an
/// unpartitioned dataset, `vantage=unknown` in a partitioned one).
#[must_use]
pub fn of_records(records: &[Value]) -> Value {
    let mut classes = BTreeMap::<String, u64>::new();
    let mut countries = BTreeMap::<String, u64>::new();
    let mut vantages = BTreeMap::<String, u64>::new();
    let mut hops = 0;
    for r in records {
        *classes
            .entry(r["verdict"]["class"].as_str().unwrap().to_string())
            .or_default() += 1;
        for c in r["verdict"]["foreign_countries"]
            .as_array()
            .into_iter()
            .flatten()
        {
            *countries
                .entry(c.as_str().unwrap().to_string())
                .or_default() += 1;
        }
        *vantages
            .entry(
                r["vantage"]["country"]
                    .as_str()
                    .unwrap_or("NULL")
                    .to_string(),
            )
            .or_default() += 1;
        hops += r["hops"].as_array().map_or(0, Vec::len);
    }
    json!({"classes": classes, "countries": countries, "vantages": vantages, "hops": hops})
}

/// The same figures of a Parquet dataset directory, as each reader finds
/// them: `{"duckdb": {..}, "pyarrow": {..}, "pandas": {..}}`.
///
/// # Panics
/// When python3 or one of the readers fails.
#[must_use]
pub fn of_parquet(dir: &Path) -> Value {
    let script = r#"
import json, sys
import duckdb, pyarrow.dataset as ds, pandas as pd
d = sys.argv[1]
out = {}
con = duckdb.connect()
t = f"read_parquet('{d}/traces/**/*.parquet', hive_partitioning=true)"
h = f"read_parquet('{d}/hops/**/*.parquet', hive_partitioning=true)"
q = lambda sql: {str(k): v for k, v in con.execute(sql).fetchall()}
out["duckdb"] = {
  "classes": q(f"select class, count(*) from {t} group by 1"),
  "countries": q(f"select c, count(*) from (select unnest(foreign_countries) as c from {t}) group by 1"),
  "vantages": q(f"select coalesce(nullif(vantage, 'unknown'), 'NULL'), count(*) from {t} group by 1"),
  "hops": con.execute(f"select count(*) from {h}").fetchone()[0],
}
def arrow_table(name):
    return ds.dataset(f"{d}/{name}", format="parquet", partitioning="hive").to_table()
traces = arrow_table("traces").to_pylist()
def count(values):
    n = {}
    for v in values:
        n[v] = n.get(v, 0) + 1
    return n
vantage = lambda r: r.get("vantage") if r.get("vantage") not in (None, "unknown") else "NULL"
out["pyarrow"] = {
  "classes": count(r["class"] for r in traces),
  "countries": count(c for r in traces for c in r["foreign_countries"]),
  "vantages": count(vantage(r) for r in traces),
  "hops": arrow_table("hops").num_rows,
}
frame = pd.read_parquet(f"{d}/traces")
hops = pd.read_parquet(f"{d}/hops")
vantages = frame["vantage"].astype("object").where(frame["vantage"].notna(), "NULL").astype(str)
vantages = vantages.replace("unknown", "NULL")
out["pandas"] = {
  "classes": {str(k): int(v) for k, v in frame["class"].value_counts().items()},
  "countries": {str(k): int(v) for k, v in frame["foreign_countries"].explode().dropna().value_counts().items()},
  "vantages": {str(k): int(v) for k, v in vantages.value_counts().items()},
  "hops": int(len(hops)),
}
print(json.dumps(out))
"#;
    python_json(script, dir)
}

/// Runs a Python script with `dir` as its argument; its standard output
/// read as JSON. Fails the test, with the script's error, when it fails.
#[must_use]
pub fn python_json(script: &str, dir: &Path) -> Value {
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
