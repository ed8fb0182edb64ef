//! The configuration kept in the history: traces stored through the
//! daemon's writer with the configuration they were judged by; the
//! configuration got back by its SHA-256 (or a prefix) byte for byte and
//! listed with its traces; the traces exported as RIPE Atlas results and
//! analyzed with the restored configuration give every stored verdict
//! again (class, countries, violation, path id), which the rules of the
//! configuration decide; a history from before configurations were kept
//! (schema 1) is read as it is, says its configurations are not stored,
//! and is upgraded in place when opened for writing.

use crate::support;

use serde_json::Value;
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;
use support::records::{hop, new_trace, trace};
use support::{bin, root, text};
use transitwatch::analysis::Policy;
use transitwatch::config::Config;
use transitwatch::model::{Trace, TraceRecord};
use transitwatch::pipeline::Pipeline;
use transitwatch::store::writer::{HistoryWriter, Written};
use transitwatch::store::{
    ConfigLookupError, ConfigText, NewTrace, Provenance, Retention, Store, StoreMetrics,
};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

/// The configuration the traces are made with: the lab's overrides, and
/// `bank` allowed to pass through South Africa (so its path via ZA is no
/// violation, which the home country alone would make one).
fn config_text() -> String {
    format!(
        "# The lab's services, judged from Maseru.\n\
         [vantage]\nname = \"maseru-lab\"\ncountry = \"LS\"\n\n\
         [policy]\nhome = \"LS\"\n\n\
         [geoip]\noverrides = \"{}\"\n\n\
         [store]\npath = \"history/transitwatch.db\"\n\n\
         [[target]]\nname = \"gov\"\nhost = \"gov.ls.test\"\n\n\
         [[target]]\nname = \"bank\"\nhost = \"bank.ls.test\"\nallowed_countries = [\"LS\", \"ZA\"]\n\n\
         [[target]]\nname = \"shop\"\nhost = \"shop.ls.test\"\n",
        root().join("tests/lab/lab-geo.csv").display()
    )
}

/// The lab's three routes: domestic, through ZA (with a silent hop and an
/// ECMP sibling), to a service hosted in IE.
fn traces() -> Vec<(&'static str, Trace)> {
    vec![
        (
            "gov",
            trace(
                "gov",
                "198.51.100.10",
                T0,
                vec![
                    hop(1, &["198.18.1.2"], 3, 3, 0.05),
                    hop(2, &["198.18.2.2"], 3, 3, 0.07),
                    hop(3, &["198.18.3.2"], 3, 2, 0.09),
                    hop(4, &["198.51.100.10"], 3, 3, 0.11),
                ],
            ),
        ),
        (
            "bank",
            trace(
                "bank",
                "198.51.100.20",
                T0 + 10,
                vec![
                    hop(1, &["198.18.1.2"], 3, 3, 0.05),
                    hop(2, &["198.18.4.2", "198.18.4.3"], 3, 3, 0.06),
                    hop(3, &[], 3, 0, 0.0),
                    hop(4, &["198.18.6.2"], 4, 3, 0.1),
                    hop(5, &["198.51.100.20"], 3, 3, 0.12),
                ],
            ),
        ),
        (
            "shop",
            trace(
                "shop",
                "203.0.113.10",
                T0 + 20,
                vec![
                    hop(1, &["198.18.1.2"], 3, 3, 0.05),
                    hop(2, &["198.18.8.2"], 3, 3, 0.3),
                    hop(3, &["203.0.113.10"], 3, 1, 0.4),
                ],
            ),
        ),
    ]
}

/// `trace` judged as the daemon judges a configured target's trace.
fn judge(config: &Config, pipeline: &Pipeline, trace: Trace) -> TraceRecord {
    let target = config
        .targets
        .iter()
        .find(|t| t.name == trace.target.name)
        .expect("a configured target");
    let policy = Policy {
        home: Some(config.policy.home),
        also_home: Vec::new(),
        allowed: target.allowed_countries.clone(),
        min_confidence: config.policy.min_confidence,
        counts_only: false,
    };
    pipeline.judge(trace, &policy)
}

/// A history made by the daemon's writer with the configuration at
/// `dir/transitwatch.toml`.
struct Fixture {
    dir: tempfile::TempDir,
    config: Config,
    db: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("transitwatch.toml");
    std::fs::write(&file, config_text()).unwrap();
    let config = Config::load(&file).unwrap();
    let db = config.store.path.clone();
    let pipeline = Pipeline::open(Some(&config), &[], None).unwrap();
    let provenance = Arc::new(Provenance {
        config_sha256: Some(config.sha256.clone()),
        ..(*support::records::provenance()).clone()
    });
    let (writer, finished) = HistoryWriter::start(
        db.clone(),
        Retention::default(),
        StoreMetrics::default(),
        Arc::new(|w: &Written| assert!(matches!(w, Written::Stored(_)), "{w:?}")),
    )
    .unwrap();
    writer.keep_config(ConfigText::of(&config));
    for (key, trace) in traces() {
        writer.submit(NewTrace {
            provenance: Arc::clone(&provenance),
            ..new_trace(key, judge(&config, &pipeline, trace))
        });
    }
    drop(writer);
    assert!(finished.wait(Duration::from_secs(30)));
    Fixture { dir, config, db }
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(out.stderr.is_empty(), "{}", text(out));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Exit `code` with one stderr line containing every needle, nothing on stdout.
fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert_eq!(stderr.lines().count(), 1, "{}", text(out));
    assert!(stderr.starts_with("transitwatch: error: "), "{}", text(out));
    for n in needles {
        assert!(stderr.contains(n), "`{n}` missing: {}", text(out));
    }
    assert!(out.stdout.is_empty(), "{}", text(out));
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_stored_verdict_is_made_again_from_the_restored_configuration() {
    let f = fixture();
    let db = path(&f.db);
    let sha = f.config.sha256.clone();

    // The configuration back by its SHA-256: the very bytes, private.
    let restored = f.dir.path().join("restored").join("transitwatch.toml");
    std::fs::create_dir(restored.parent().unwrap()).unwrap();
    let out = run(&[
        "history",
        "config",
        &sha,
        "--store",
        db,
        "--output",
        path(&restored),
    ]);
    assert!(ok(&out).is_empty());
    let bytes = std::fs::read(&restored).unwrap();
    assert_eq!(bytes, config_text().as_bytes());
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&restored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // On standard output, by a prefix, any case, the store named by a
    // configuration file: the same bytes.
    let original = f.dir.path().join("transitwatch.toml");
    let out = run(&[
        "history",
        "config",
        &sha[..8].to_uppercase(),
        "--config",
        path(&original),
    ]);
    assert_eq!(ok(&out).as_bytes(), &bytes[..]);

    // Listed with its traces.
    let out = run(&["history", "config", "--list", "--json", "--store", db]);
    let list = json_lines(&ok(&out));
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["sha256"], sha);
    assert_eq!(list[0]["stored"], true);
    assert_eq!(list[0]["bytes"], bytes.len());
    assert_eq!(list[0]["traces"], 3);
    assert_eq!(list[0]["first"], "2023-11-14T22:13:20Z");
    assert_eq!(list[0]["last"], "2023-11-14T22:13:40Z");
    let table = ok(&run(&["history", "config", "--list", "--store", db]));
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.lines().next().unwrap().starts_with("SHA256 "),
        "{table}"
    );
    assert!(
        table.contains(&sha) && table.contains("2023-11-14T22:13:40Z"),
        "{table}"
    );

    // The traces as RIPE Atlas results, analyzed with the restored file.
    let atlas = f.dir.path().join("atlas.jsonl");
    assert!(ok(&run(&[
        "export",
        "--store",
        db,
        "--format",
        "atlas",
        "--output",
        path(&atlas)
    ]))
    .is_empty());
    let stored = json_lines(&ok(&run(&["export", "--store", db, "--format", "jsonl"])));
    assert_eq!(stored.len(), 3);
    assert!(stored
        .iter()
        .all(|s| s["stored"]["config_sha256"] == sha.as_str()));
    let analyze = |config: Option<&Path>| {
        let mut cmd = Command::new(bin());
        cmd.args(["analyze", "--input-format", "atlas", "--json", "--input"])
            .arg(&atlas);
        match config {
            Some(c) => cmd.arg("--config").arg(c),
            None => cmd
                .args(["--home", "LS", "--overrides"])
                .arg(root().join("tests/lab/lab-geo.csv")),
        };
        json_lines(&ok(&cmd.output().unwrap()))
    };
    let analyzed = analyze(Some(&restored));
    support::records::assert_same_hops_and_verdicts(&stored, &analyzed);
    // The whole verdict, suspects, anomalies and confidence included; the
    // explanation names the target by its host, the only name an Atlas
    // result gives `analyze`.
    for (s, a) in stored.iter().zip(&analyzed) {
        let mut verdict = s["verdict"].clone();
        let said = verdict["explanation"].as_str().unwrap().replacen(
            s["target"]["name"].as_str().unwrap(),
            s["target"]["host"].as_str().unwrap(),
            1,
        );
        verdict["explanation"] = said.into();
        assert_eq!(a["verdict"], verdict, "{}", s["target"]["name"]);
    }
    let verdicts: Vec<(&str, bool)> = analyzed
        .iter()
        .map(|r| {
            let v = &r["verdict"];
            (
                v["class"].as_str().unwrap(),
                v["violation"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("domestic", false),
            ("foreign_transit", false),
            ("foreign_destination", true)
        ]
    );
    // The configuration decides: without it the path via ZA breaks the
    // home-only policy.
    let home_only = analyze(None);
    assert_eq!(home_only[1]["verdict"]["class"], "foreign_transit");
    assert_eq!(home_only[1]["verdict"]["violation"], true);
}

#[test]
fn lookups_that_find_nothing_say_why_with_exit_2() {
    let f = fixture();
    let db = path(&f.db);
    let sha = &f.config.sha256;
    let other = if sha.starts_with('0') { "1" } else { "0" }.repeat(64);
    assert_fails(
        &run(&["history", "config", &other, "--store", db]),
        2,
        &[db, "no configuration", &other, "--list"],
    );
    assert_fails(
        &run(&["history", "config", &sha[..7], "--store", db]),
        2,
        &["not a configuration SHA-256", "8 to 64 hex digits"],
    );
    assert_fails(
        &run(&["history", "config", "not-a-sha-at-all", "--store", db]),
        2,
        &["not-a-sha-at-all", "hex digits"],
    );
    assert_fails(
        &run(&["history", "config", sha, "--store", "/nonexistent/tw.db"]),
        2,
        &["/nonexistent/tw.db", "no trace store"],
    );
    let out = run(&["history", "config", "--store", db]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_prefix_shared_by_two_configurations_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tw.db");
    let mut store = Store::open(&db).unwrap();
    // SHA-256s sharing 8 hex digits: named by traces (their text is not
    // stored), since contents with such SHA-256s take 2^32 tries to find.
    let shas = [
        "abcdef01".to_string() + &"0".repeat(56),
        "abcdef01".to_string() + &"1".repeat(56),
    ];
    for (n, sha) in shas.iter().enumerate() {
        let mut t = new_trace("gov", support::records::domestic("gov", T0 + n as i64));
        t.provenance = Arc::new(Provenance {
            config_sha256: Some(sha.clone()),
            ..(*t.provenance).clone()
        });
        store.insert(&t).unwrap();
    }
    match store.config("ABCDEF01") {
        Err(ConfigLookupError::Ambiguous { candidates, .. }) => assert_eq!(candidates, shas),
        other => panic!("{other:?}"),
    }
    let out = run(&["history", "config", "abcdef01", "--store", path(&db)]);
    assert_fails(
        &out,
        2,
        &[
            "abcdef01",
            "2 configurations",
            &shas[0],
            &shas[1],
            "more digits",
        ],
    );
    // One more digit tells them apart: named by a trace, not stored.
    let out = run(&["history", "config", "abcdef011", "--store", path(&db)]);
    assert_fails(
        &out,
        2,
        &[&shas[1], "named by 1 stored traces", "not stored"],
    );
}

#[test]
fn configurations_are_checked_on_write_and_go_with_their_last_trace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tw.db");
    let mut store = Store::open(&db).unwrap();
    let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let (a, b, c) = (&b"# a\n"[..], &b"# b\n"[..], &b"# c\n"[..]);
    // Bytes that do not hash to their key, or too many: refused, named.
    let e = store.put_config(&sha(b), a, T0).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "configuration {} not stored: its bytes hash to {}",
            sha(b),
            sha(a)
        )),
        "{e}"
    );
    let big = vec![b'#'; transitwatch::store::MAX_CONFIG_BYTES + 1];
    let e = store.put_config(&sha(&big), &big, T0).unwrap_err();
    assert!(
        e.to_string()
            .contains("1048577 bytes is over the 1048576-byte maximum"),
        "{e}"
    );
    assert!(e.to_string().contains(path(&db)), "{e}");
    assert!(store.configs().unwrap().is_empty());

    for (content, n) in [(a, 0), (b, 1), (c, 2)] {
        assert!(store.put_config(&sha(content), content, T0).unwrap());
        // Content already stored is not stored again.
        assert!(!store.put_config(&sha(content), content, T0 + 1).unwrap());
        if n < 2 {
            let mut t = new_trace("gov", support::records::domestic("gov", T0 + 100 * n));
            t.provenance = Arc::new(Provenance {
                config_sha256: Some(sha(content)),
                ..(*t.provenance).clone()
            });
            store.insert(&t).unwrap();
        }
    }
    let listed: Vec<(String, u64, Option<i64>)> = store
        .configs()
        .unwrap()
        .into_iter()
        .map(|c| (c.sha256, c.traces, c.first))
        .collect();
    assert_eq!(
        listed,
        [
            (sha(a), 1, Some(T0)),
            (sha(b), 1, Some(T0 + 100)),
            (sha(c), 0, None)
        ]
    );
    // Retention takes a's trace: a goes, b stays (named), c stays (in force).
    let pruned = store
        .prune(
            &Retention {
                max_age: Some(Duration::from_secs(50)),
                max_size: None,
            },
            T0 + 120,
        )
        .unwrap();
    assert_eq!(pruned.by_age, 1);
    assert_eq!(store.prune_configs(Some(&sha(c))).unwrap(), 1);
    assert!(matches!(
        store.config(&sha(a)),
        Err(ConfigLookupError::Unknown { .. })
    ));
    assert_eq!(store.config(&sha(b)).unwrap().content, b);
    assert_eq!(store.config(&sha(c)).unwrap().content, c);
    // Without one in force, an unnamed configuration goes too.
    assert_eq!(store.prune_configs(None).unwrap(), 1);
    assert_eq!(store.configs().unwrap().len(), 1);
}

/// `db` as a schema 1 history: the table and index of stored
/// configurations removed, the version set back.
fn downgrade_to_schema_1(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("DROP INDEX traces_config; DROP TABLE configs; PRAGMA user_version = 1;")
        .unwrap();
}

fn schema_version(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

#[test]
fn a_history_from_before_configurations_were_kept_says_so_and_upgrades_in_place() {
    let f = fixture();
    let db = path(&f.db);
    let sha = &f.config.sha256;
    let before = ok(&run(&["export", "--store", db, "--format", "jsonl"]));
    downgrade_to_schema_1(&f.db);

    // Read-only, as it is: export works, the configuration is named but
    // not stored, and the file stays at schema 1.
    assert_eq!(
        ok(&run(&["export", "--store", db, "--format", "jsonl"])),
        before
    );
    assert_fails(
        &run(&["history", "config", sha, "--store", db]),
        2,
        &[
            db,
            sha,
            "named by 3 stored traces",
            "its text is not stored",
            "before transitwatch kept configurations",
        ],
    );
    let list = json_lines(&ok(&run(&[
        "history", "config", "--list", "--json", "--store", db,
    ])));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["stored"], false);
    assert!(list[0]["bytes"].is_null());
    assert_eq!(list[0]["traces"], 3);
    let table = ok(&run(&["history", "config", "--list", "--store", db]));
    assert!(table.contains("not stored"), "{table}");
    assert_eq!(schema_version(&f.db), 1);

    // Opened for writing: upgraded in place, every trace kept; the old
    // traces' configuration is still not stored until the daemon runs
    // with it again.
    let mut store = Store::open(&f.db).unwrap();
    assert_eq!(schema_version(&f.db), transitwatch::store::SCHEMA_VERSION);
    assert!(matches!(
        store.config(sha),
        Err(ConfigLookupError::NotStored { traces: 3, .. })
    ));
    assert!(store.put_config(sha, config_text().as_bytes(), T0).unwrap());
    drop(store);
    assert_eq!(
        ok(&run(&["export", "--store", db, "--format", "jsonl"])),
        before
    );
    let out = run(&["history", "config", sha, "--store", db]);
    assert_eq!(ok(&out), config_text());
}
