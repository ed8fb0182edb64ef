//! The trace store: records and their provenance in and out, filters and
//! order, retention by age and size, the writer thread (a locked database,
//! a full queue, an unusable path), refusal of foreign and newer databases,
//! `/api/v1/traces` streaming from a real store, `kill -9` of a process
//! writing in a tight loop: the reopened store passes `PRAGMA
//! integrity_check` and holds every record reported as committed, complete;
//! and a page in the middle of the database overwritten with garbage (a
//! leaf of the table, an interior page above hundreds of rows, a page of an
//! index): the integrity check at open, the daemon's log and `/metrics`,
//! and `export` all report exactly the rows that were destroyed.

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::records::{domestic, in_ie, new_trace, provenance, via_za};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transitwatch::http::{StateView, TraceLines, ViewError};
use transitwatch::model::TraceRecord;
use transitwatch::store::writer::{HistoryWriter, Written};
use transitwatch::store::{Integrity, Query, Retention, Store, StoreError, StoreMetrics};

/// 2026-11-26T12:00:00Z.
const T0: i64 = 1_795_694_400;

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history").join("transitwatch.db");
    (dir, path)
}

fn ids(store: Store, query: Query) -> Vec<i64> {
    store.scan(query).map(|t| t.unwrap().id).collect()
}

#[test]
fn records_and_provenance_come_back_in_time_order_and_filter() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    // Inserted out of time order: reads come back by start time.
    let gov_v4 = store
        .insert(&new_trace("gov/ipv4", domestic("gov", T0 + 20)))
        .unwrap();
    let bank = store
        .insert(&new_trace("bank", via_za("bank", T0)))
        .unwrap();
    let gov_v6 = store
        .insert(&new_trace("gov/ipv6", domestic("gov", T0 + 20)))
        .unwrap();
    let shop = store
        .insert(&new_trace("shop", in_ie("shop", T0 + 40)))
        .unwrap();
    assert!(bank > gov_v4 && gov_v6 > bank && shop > gov_v6);

    let all: Vec<_> = Store::open_read_only(&path)
        .unwrap()
        .scan(Query::default())
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        all.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![bank, gov_v4, gov_v6, shop]
    );
    let first = &all[0];
    assert_eq!(first.record, via_za("bank", T0));
    assert_eq!(first.path_key, "bank");
    assert_eq!(first.provenance, *provenance());
    assert_eq!(first.duration_ms, Some(1500));
    assert_eq!(first.packet_size, Some(64));
    assert_eq!(
        first.record.verdict.class.as_str(),
        "foreign_transit",
        "{:?}",
        first.record.verdict
    );
    assert_eq!(store.get(shop).unwrap().unwrap(), all[3]);
    assert_eq!(store.get(shop + 100).unwrap(), None);

    let read = || Store::open_read_only(&path).unwrap();
    let q = |since, until, target: Option<&str>, limit| Query {
        since,
        until,
        target: target.map(str::to_string),
        limit,
    };
    // A name selects every path of it; a path key only that path.
    assert_eq!(
        ids(read(), q(None, None, Some("gov"), None)),
        vec![gov_v4, gov_v6]
    );
    assert_eq!(
        ids(read(), q(None, None, Some("gov/ipv6"), None)),
        vec![gov_v6]
    );
    assert!(ids(read(), q(None, None, Some("go"), None)).is_empty());
    // since inclusive, until exclusive.
    assert_eq!(
        ids(read(), q(Some(T0 + 20), Some(T0 + 40), None, None)),
        vec![gov_v4, gov_v6]
    );
    assert_eq!(
        ids(read(), q(Some(T0), None, None, Some(2))),
        vec![bank, gov_v4]
    );
    assert_eq!(read().count(&q(Some(T0 + 1), None, None, None)).unwrap(), 3);
    assert_eq!(read().count(&q(None, None, None, Some(1))).unwrap(), 1);
}

#[test]
fn location_files_are_stored_with_the_hash_of_what_was_loaded_and_old_rows_still_read() {
    use sha2::Digest;
    use transitwatch::geo::GeoDb;
    use transitwatch::store::{LocationFile, NewTrace, Provenance};
    let (dir, path) = temp_db();
    let overrides = dir.path().join("overrides.csv");
    std::fs::write(&overrides, "198.18.8.0/24,ZA,Johannesburg\n").unwrap();
    let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&overrides).unwrap()));
    let geo = GeoDb::open(&[], Some(&overrides)).unwrap();
    // Changed after it was loaded: the record names the bytes loaded.
    std::fs::write(&overrides, "198.18.8.0/24,IE\n").unwrap();
    let with_files = Arc::new(Provenance {
        location_files: LocationFile::of(geo.location_files()),
        ..(*provenance()).clone()
    });
    let file = LocationFile {
        kind: "overrides".to_string(),
        path: overrides.to_str().unwrap().to_string(),
        sha256,
    };
    assert_eq!(with_files.location_files, std::slice::from_ref(&file));

    let mut store = Store::open(&path).unwrap();
    let old = store
        .insert(&new_trace("bank", via_za("bank", T0)))
        .unwrap();
    let none = store
        .insert(&new_trace("shop", in_ie("shop", T0 + 10)))
        .unwrap();
    let new = store
        .insert(&NewTrace {
            provenance: Arc::clone(&with_files),
            ..new_trace("gov", domestic("gov", T0 + 20))
        })
        .unwrap();
    drop(store);
    // Rows as a transitwatch before location files wrote them: a list of
    // databases only, and an empty list (no database at all).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let set = |id: i64, geoip: &str| {
        conn.execute(
            "UPDATE traces SET geoip = ?1 WHERE id = ?2",
            rusqlite::params![geoip, id],
        )
        .unwrap();
    };
    set(
        old,
        r#"[{"kind":"city","type":"GeoLite2-City","build_epoch":1700000000}]"#,
    );
    set(none, "[]");
    // The new row: the databases, then the file, in the same column.
    let stored: String = conn
        .query_row("SELECT geoip FROM traces WHERE id = ?1", [new], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap(),
        serde_json::json!([
            {"kind": "city", "type": "GeoLite2-City", "build_epoch": 1_700_000_000},
            {"kind": "overrides", "path": file.path, "sha256": file.sha256}
        ])
    );
    drop(conn);

    let store = Store::open_read_only(&path).unwrap();
    let read = |id| store.get(id).unwrap().unwrap().provenance;
    assert_eq!(read(old), *provenance());
    assert!(read(none).geoip.is_empty() && read(none).location_files.is_empty());
    assert_eq!(read(new), *with_files);
    // Three generations in reports: the new one carries the file.
    let counts = store.provenance_counts(&Query::default()).unwrap();
    let files: Vec<&[LocationFile]> = counts.iter().map(|c| &c.location_files[..]).collect();
    assert_eq!(files, [&[][..], &[], &[file]]);
    assert_eq!(counts[0].geoip, provenance().geoip);
    assert!(counts[1].geoip.is_empty());
    // A scan (exports) reads every row too.
    assert_eq!(
        store.scan(Query::default()).filter(Result::is_ok).count(),
        3
    );
}

#[test]
fn scans_page_through_more_rows_than_a_page() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    let n = transitwatch::store::PAGE * 2 + 17;
    for i in 0..n {
        // Every fifth trace shares a start time with the one before.
        let at = T0 + i64::try_from(i - i % 5 / 4).unwrap();
        store
            .insert(&new_trace("gov", domestic("gov", at)))
            .unwrap();
    }
    let got = ids(Store::open_read_only(&path).unwrap(), Query::default());
    let expected: Vec<i64> = (1..=i64::try_from(n).unwrap()).collect();
    assert_eq!(got, expected);
    let limited = Query {
        limit: Some(u64::try_from(transitwatch::store::PAGE + 3).unwrap()),
        ..Query::default()
    };
    assert_eq!(
        ids(Store::open_read_only(&path).unwrap(), limited).len(),
        transitwatch::store::PAGE + 3
    );
}

#[test]
fn retention_by_age_deletes_old_traces_and_ids_are_never_reused() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    let day = 86_400;
    let old = store
        .insert(&new_trace("gov", domestic("gov", T0 - 100 * day)))
        .unwrap();
    let recent = store
        .insert(&new_trace("gov", domestic("gov", T0 - 10 * day)))
        .unwrap();
    let newest = store
        .insert(&new_trace("gov", domestic("gov", T0)))
        .unwrap();
    let retention = Retention {
        max_age: Some(Duration::from_secs(90 * 86_400)),
        max_size: None,
    };
    let pruned = store.prune(&retention, T0).unwrap();
    assert_eq!((pruned.by_age, pruned.by_size), (1, 0));
    assert_eq!(store.get(old).unwrap(), None);
    assert!(store.get(recent).unwrap().is_some());
    // Deleting the newest row does not free its id either.
    let gone = store.prune(&retention, T0 + 100 * day).unwrap();
    assert_eq!(gone.by_age, 2);
    let next = store
        .insert(&new_trace("gov", domestic("gov", T0)))
        .unwrap();
    assert_eq!(next, newest + 1);
    drop(store);
    // Ids survive a reopen too.
    let mut store = Store::open(&path).unwrap();
    let after = store
        .insert(&new_trace("gov", domestic("gov", T0)))
        .unwrap();
    assert_eq!(after, next + 1);
}

#[test]
fn retention_by_size_keeps_the_newest_traces_within_the_limit() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    let n = 4000;
    for i in 0..n {
        store
            .insert(&new_trace("bank", via_za("bank", T0 + i)))
            .unwrap();
    }
    let before = store.bytes_in_use().unwrap();
    let per_trace = before / u64::try_from(n).unwrap();
    eprintln!("{n} traces use {before} bytes: {per_trace} bytes per trace");
    let max = 2 << 20;
    assert!(before > 2 * max, "{before}");
    let pruned = store
        .prune(
            &Retention {
                max_age: None,
                max_size: Some(max),
            },
            T0 + n,
        )
        .unwrap();
    assert!(pruned.bytes_in_use <= max, "{pruned:?}");
    assert!(pruned.by_size > 0 && pruned.by_size < u64::try_from(n).unwrap());
    let left = ids(Store::open_read_only(&path).unwrap(), Query::default());
    assert_eq!(
        left.len() as u64,
        u64::try_from(n).unwrap() - pruned.by_size
    );
    // The newest were kept, in one run up to the last.
    assert_eq!(*left.last().unwrap(), n);
    assert_eq!(left.first().copied(), Some(n - left.len() as i64 + 1));
    // The freed pages went back to the file system.
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file <= max + (64 << 10), "database file {file} bytes");
    // Not too much was deleted: most of the allowance is still used.
    assert!(pruned.bytes_in_use > max / 2, "{pruned:?}");
}

#[test]
fn foreign_newer_missing_and_non_database_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let err = Store::open_read_only(&missing).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }));
    assert!(err.to_string().contains("none.db"), "{err}");

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT);")
        .unwrap();
    for err in [
        Store::open(&other).unwrap_err(),
        Store::open_read_only(&other).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
        assert!(err.to_string().contains("other.db"), "{err}");
    }

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let err = Store::open(&newer).unwrap_err();
    assert!(
        err.to_string().contains("schema version 7 is newer"),
        "{err}"
    );
    assert!(Store::open_read_only(&newer).is_err());

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a database, not even close; ".repeat(50)).unwrap();
    let err = Store::open(&text).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", text.display())),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn the_database_is_in_wal_mode_with_the_schema_version_set() {
    let (_dir, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, transitwatch::store::SCHEMA_VERSION);
    let vacuum: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(vacuum, 2, "incremental");
}

/// Collects what a writer reports.
fn collector() -> (
    Arc<Mutex<Vec<Written>>>,
    transitwatch::store::writer::Report,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (
        seen,
        Arc::new(move |w: &Written| sink.lock().unwrap().push(w.clone())),
    )
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_writer_counts_a_locked_database_and_a_full_queue_and_carries_on() {
    let (_dir, path) = temp_db();
    let (seen, report) = collector();
    let (writer, finished) = HistoryWriter::start(
        path.clone(),
        Retention::default(),
        StoreMetrics::default(),
        report,
    )
    .unwrap();
    writer.submit(new_trace("gov", domestic("gov", T0)));
    wait_for("the first record", || seen.lock().unwrap().len() == 1);
    assert!(matches!(seen.lock().unwrap()[0], Written::Stored(1)));

    // Another connection holds the write lock for longer than the busy
    // timeout: the records being written (one transaction) fail, the rest
    // wait in the queue, and what does not fit in the queue is dropped.
    let mut blocker = rusqlite::Connection::open(&path).unwrap();
    let lock = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let extra = 10;
    // The batch the writer holds, the queue, and `extra` more.
    let total = transitwatch::store::writer::BATCH + transitwatch::store::writer::QUEUE + extra;
    let record = via_za("bank", T0 + 1);
    for _ in 0..total {
        writer.submit(new_trace("bank", record.clone()));
    }
    wait_for("the locked write to fail", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|w| matches!(w, Written::Failed(_)))
    });
    lock.rollback().unwrap();
    drop(writer);
    assert!(
        finished.wait(Duration::from_secs(60)),
        "the writer did not finish"
    );

    let seen = seen.lock().unwrap();
    let count = |label: &str| seen.iter().filter(|w| w.label() == label).count();
    assert_eq!(seen.len(), total + 1);
    let failed = count("error");
    assert!(
        (1..=transitwatch::store::writer::BATCH).contains(&failed),
        "{failed} failed: only the batch being written when the lock was taken"
    );
    for w in seen.iter().filter(|w| w.label() == "error") {
        let Written::Failed(why) = w else {
            unreachable!()
        };
        assert!(
            why.contains("locked") && why.contains("transitwatch.db"),
            "{why}"
        );
    }
    assert!(count("dropped") >= extra, "{}", count("dropped"));
    let stored = count("ok");
    assert_eq!(stored + count("dropped") + failed, total + 1);
    // Everything reported as stored is there.
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.count(&Query::default()).unwrap(), stored as u64);
}

#[test]
fn a_batch_keeps_its_good_records_and_loses_all_only_when_rolled_back() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    // Triggers in the test's own database: one record of a batch refused
    // alone (its statement aborted), another that rolls back the whole
    // transaction, as a full disk or an I/O error does.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON traces WHEN NEW.target = 'refused'
               BEGIN SELECT RAISE(ABORT, 'refused alone'); END;
             CREATE TRIGGER roll BEFORE INSERT ON traces WHEN NEW.target = 'rollback'
               BEGIN SELECT RAISE(ROLLBACK, 'the batch rolled back'); END;",
        )
        .unwrap();
    let batch = |names: &[&str]| -> Vec<_> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| new_trace(n, domestic(n, T0 + i as i64)))
            .collect()
    };
    let outcome = |results: &[Result<i64, StoreError>]| -> Vec<bool> {
        results.iter().map(Result::is_ok).collect()
    };

    let results = store.insert_batch(&batch(&["gov", "refused", "bank"]));
    assert_eq!(outcome(&results), [true, false, true], "{results:?}");
    let why = results[1].as_ref().unwrap_err().to_string();
    assert!(
        why.contains("refused alone") && why.contains("transitwatch.db"),
        "{why}"
    );
    assert!(results[0].as_ref().unwrap() < results[2].as_ref().unwrap());

    // Rolled back at the third record: the two before it are reported
    // failed (they are gone), the one after it is stored on its own.
    let results = store.insert_batch(&batch(&["a", "b", "rollback", "c"]));
    assert_eq!(
        outcome(&results),
        [false, false, false, true],
        "{results:?}"
    );
    for r in &results[..2] {
        let why = r.as_ref().unwrap_err().to_string();
        assert!(
            why.contains("rolled back with the records written with it"),
            "{why}"
        );
        assert!(why.contains("the batch rolled back"), "{why}");
    }

    // Locked beyond the busy timeout: the whole batch fails, nothing is half
    // written, and the next batch goes in.
    let mut blocker = rusqlite::Connection::open(&path).unwrap();
    let lock = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let results = store.insert_batch(&batch(&["x", "y"]));
    assert_eq!(outcome(&results), [false, false], "{results:?}");
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("locked"));
    lock.rollback().unwrap();
    let results = store.insert_batch(&batch(&["p", "q"]));
    assert_eq!(outcome(&results), [true, true], "{results:?}");

    // Everything reported stored, and nothing else, is there.
    let mut targets: Vec<String> = Store::open_read_only(&path)
        .unwrap()
        .scan(Query::default())
        .map(|t| t.unwrap().record.trace.target.name)
        .collect();
    targets.sort();
    assert_eq!(targets, ["bank", "c", "gov", "p", "q"]);
}

#[test]
fn a_writer_whose_store_cannot_open_counts_errors_and_never_stops() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let (seen, report) = collector();
    let (writer, finished) = HistoryWriter::start(
        blocker.join("transitwatch.db"),
        Retention::default(),
        StoreMetrics::default(),
        report,
    )
    .unwrap();
    for i in 0..3 {
        writer.submit(new_trace("gov", domestic("gov", T0 + i)));
    }
    drop(writer);
    assert!(finished.wait(Duration::from_secs(30)));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for w in seen.iter() {
        let Written::Failed(why) = w else {
            panic!("{w:?}")
        };
        assert!(why.contains("a-file/transitwatch.db"), "{why}");
    }
}

// ------------------------------------------------------------- kill -9

const CHILD_ENV: &str = "TRANSITWATCH_STORE_KILL_CHILD";

/// The two records the child's records are made from (judged once).
fn stress_templates() -> [TraceRecord; 2] {
    [domestic("stress", T0), via_za("stress", T0)]
}

/// The record the child writes as number `seq` of round `round`.
fn stress_record(templates: &[TraceRecord; 2], round: u32, seq: u64) -> TraceRecord {
    let mut record = templates[usize::try_from(seq % 2).unwrap()].clone();
    record.trace.target.name = format!("stress-{round}-{seq}");
    record.trace.started_at =
        transitwatch::units::Timestamp::from_unix(T0 + i64::try_from(seq).unwrap()).unwrap();
    record
}

/// Not a test of its own: the child role of
/// `kill_9_loses_nothing_committed_and_leaves_no_partial_record`. With
/// the environment variable set it writes records in a tight loop and
/// prints `committed ID ROUND SEQ` after each commit, until it is killed.
#[test]
fn kill_child_role() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (round, path) = spec.split_once(':').unwrap();
    let round: u32 = round.parse().unwrap();
    let mut store = Store::open(Path::new(path)).unwrap();
    let templates = stress_templates();
    let mut out = std::io::stdout().lock();
    for seq in 0u64.. {
        let record = stress_record(&templates, round, seq);
        let id = store.insert(&new_trace("stress", record)).unwrap();
        use std::io::Write as _;
        writeln!(out, "committed {id} {round} {seq}").unwrap();
        out.flush().unwrap();
    }
}

/// A small deterministic generator for the kill moments (seeded from the
/// clock; the seed is printed so a failure can be replayed).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn kill_9_loses_nothing_committed_and_leaves_no_partial_record() {
    let (_dir, path) = temp_db();
    let seed = std::env::var("TRANSITWATCH_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill moments seeded with TRANSITWATCH_KILL_SEED={seed}");
    let mut rng = XorShift(seed);
    let templates = stress_templates();
    let mut committed: HashMap<i64, (u32, u64)> = HashMap::new();
    for round in 0..8u32 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::kill_child_role",
                "--nocapture",
                "--quiet",
            ])
            .env(CHILD_ENV, format!("{round}:{}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut first = Some(first_tx);
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            // Only whole lines: a line cut by the kill is not a report.
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                // The test harness may print on the same line first.
                if let Some(at) = line.find("committed ") {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                    lines.push(line[at..].trim_end().to_string());
                }
                line.clear();
            }
            lines
        });
        first_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child committed nothing");
        // Kill at a random moment, a few to a few hundred commits in.
        std::thread::sleep(Duration::from_micros(rng.next(300_000)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "{status:?}");
        let lines = reader.join().unwrap();
        assert!(!lines.is_empty());
        for line in &lines {
            let f: Vec<&str> = line.split(' ').collect();
            committed.insert(
                f[1].parse().unwrap(),
                (f[2].parse().unwrap(), f[3].parse().unwrap()),
            );
        }

        // Reopened as the daemon would after a crash.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        for (&id, &(r, seq)) in &committed {
            let got = store
                .get(id)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: committed trace {id} is missing"));
            let expected = stress_record(&templates, r, seq);
            assert_eq!(got.record, expected, "round {round}: trace {id}");
        }
        // Every row, reported or not (killed between commit and print),
        // is a complete record.
        let rows: Vec<_> = Store::open_read_only(&path)
            .unwrap()
            .scan(Query::default())
            .collect();
        assert!(
            rows.iter().all(Result::is_ok),
            "round {round}: a partial record"
        );
        let unreported: Vec<i64> = rows
            .iter()
            .map(|r| r.as_ref().unwrap().id)
            .filter(|id| !committed.contains_key(id))
            .collect();
        // At most one per kill: committed, killed before it was printed.
        assert!(
            unreported.len() <= usize::try_from(round).unwrap() + 1,
            "{unreported:?}"
        );
        eprintln!(
            "round {round}: killed after {} reported commits; {} reported in all, {} rows, unreported {unreported:?}",
            lines.len(),
            committed.len(),
            rows.len(),
        );
    }
}

// ------------------------------------------------------ /api/v1/traces

/// A view serving only the history, like the daemon's.
struct History {
    file: PathBuf,
}

impl StateView for History {
    fn metrics(&self) -> Result<String, ViewError> {
        Ok(String::new())
    }

    fn ready(&self) -> bool {
        true
    }

    fn targets(&self) -> serde_json::Value {
        serde_json::json!([])
    }

    fn latest(&self, _: &str) -> Option<serde_json::Value> {
        None
    }

    fn traces(&self, query: &Query) -> Result<TraceLines, ViewError> {
        let store = Store::open_read_only(&self.file)?;
        Ok(Box::new(transitwatch::export::jsonl_lines(
            store.scan(query.clone()),
        )))
    }
}

/// Status, headers, the de-chunked body, and whether the body ended with
/// the final chunk.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
    complete: bool,
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("a response in time")
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers.get("transfer-encoding").map(String::as_str) != Some("chunked") {
        return Answer {
            status,
            headers,
            body: String::from_utf8(rest.to_vec()).unwrap(),
            complete: true,
        };
    }
    let mut body = Vec::new();
    let mut complete = false;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            complete = true;
            break;
        }
        let start = eol + 2;
        if rest.len() < start + size + 2 {
            body.extend_from_slice(&rest[start.min(rest.len())..]);
            break;
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
        complete,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_streams_stored_traces_as_json_lines() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    // Well over one 64 KiB chunk.
    for i in 0..600 {
        let record = if i % 3 == 0 {
            via_za("bank", T0 + i)
        } else {
            domestic("gov", T0 + i)
        };
        let key = if i % 3 == 0 { "bank" } else { "gov" };
        store.insert(&new_trace(key, record)).unwrap();
    }
    let expected: Vec<String> = Store::open_read_only(&path)
        .unwrap()
        .scan(Query::default())
        .map(|t| String::from_utf8(transitwatch::export::jsonl_line(&t.unwrap()).unwrap()).unwrap())
        .collect();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let snapshot = Arc::new(History { file: path.clone() });
    let server = tokio::spawn(transitwatch::http::serve(listener, snapshot, async move {
        let _ = stopped.await;
    }));

    let all = get(addr, "/api/v1/traces").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.headers["content-type"], "application/x-ndjson");
    assert!(all.complete);
    assert!(all.body.len() > 64 * 1024);
    assert_eq!(all.body, expected.concat());
    let first: serde_json::Value = serde_json::from_str(all.body.lines().next().unwrap()).unwrap();
    assert_eq!(first["schema"], "transitwatch.trace/1");
    assert_eq!(first["stored"]["id"], 1);
    assert_eq!(first["stored"]["config_sha256"], "ab".repeat(32));
    assert_eq!(first["stored"]["geoip"][0]["type"], "GeoLite2-City");

    // since (percent-encoded RFC 3339 with an offset), target, limit.
    let some = get(
        addr,
        "/api/v1/traces?since=2026-11-26T14%3A00%3A03%2B02%3A00&target=bank&limit=2",
    )
    .await;
    assert_eq!(some.status, 200);
    let got: Vec<serde_json::Value> = some
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["stored"]["id"], 4);
    assert_eq!(got[1]["stored"]["id"], 7);
    assert!(got.iter().all(|r| r["target"]["name"] == "bank"));
    assert_eq!(get(addr, "/api/v1/traces?until=2026-11-26").await.body, "");

    for (query, why) in [
        ("since=yesterday", "parameter `since`"),
        ("limit=ten", "parameter `limit`"),
        ("colour=blue", "unknown parameter `colour`"),
    ] {
        let bad = get(addr, &format!("/api/v1/traces?{query}")).await;
        assert_eq!(bad.status, 400, "{query}");
        let error: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(why),
            "{}",
            bad.body
        );
    }

    // A record that cannot be read cuts the stream off: the client sees a
    // truncated transfer, not a complete answer.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE traces SET record = '{\"broken' WHERE id = 500", [])
        .unwrap();
    let broken = get(addr, "/api/v1/traces").await;
    assert_eq!(broken.status, 200);
    assert!(!broken.complete);
    assert!(broken.body.starts_with(&expected[..400].concat()));

    // No history at all: 503.
    std::fs::remove_file(&path).unwrap();
    let none = get(addr, "/api/v1/traces").await;
    assert_eq!(none.status, 503);
    assert!(none.body.contains("no trace store here"), "{}", none.body);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

// --------------------------------------------------------- damaged pages

/// Records of real shape (three kinds, judged by the real analysis), one
/// a second from `T0`, written as the daemon writes them; the store is
/// closed afterwards, so every page is in the database file.
fn history(path: &Path, n: i64) {
    let mut store = Store::open(path).unwrap();
    for i in 0..n {
        let (key, record) = match i % 3 {
            0 => ("bank", via_za("bank", T0 + i)),
            1 => ("gov/ipv4", domestic("gov", T0 + i)),
            _ => ("shop", in_ie("shop", T0 + i)),
        };
        store.insert(&new_trace(key, record)).unwrap();
    }
}

/// A page of the `traces` table or of an index (from `dbstat`) and how
/// many rows of the table it and the pages under it hold: the traces it
/// takes with it when destroyed (none for an index page).
struct Victim {
    page: i64,
    rows: u64,
}

/// The page of `kind` (`leaf` or `internal`, never the root) of b-tree
/// `tree` (the table or an index) in the middle of its pages, by number.
fn victim(path: &Path, tree: &str, kind: &str) -> Victim {
    let conn = rusqlite::Connection::open(path).unwrap();
    let pages: Vec<(i64, String)> = conn
        .prepare(
            "SELECT pageno, path FROM dbstat WHERE name = ?1 AND pagetype = ?2 \
             AND path != '/' ORDER BY pageno",
        )
        .unwrap()
        .query_map([tree, kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!pages.is_empty(), "no {kind} page in {tree}");
    let (page, at) = pages[pages.len() / 2].clone();
    // The leaves at or under that position in the tree.
    let rows: i64 = conn
        .query_row(
            "SELECT coalesce(sum(ncell), 0) FROM dbstat WHERE name = 'traces' AND ?1 = 'traces' \
             AND pagetype = 'leaf' AND substr(path, 1, length(?2)) = ?2",
            [tree, &at],
            |r| r.get(0),
        )
        .unwrap();
    Victim {
        page,
        rows: u64::try_from(rows).unwrap(),
    }
}

fn page_size(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap()
}

/// Overwrite page `page` of the database with bytes of a fixed seed.
fn overwrite_page(path: &Path, page: i64) {
    use std::io::{Seek, SeekFrom, Write};
    let size = page_size(path);
    let mut rng = XorShift(0x5eed_0bad_9a9e);
    let garbage: Vec<u8> = (0..size).map(|_| rng.next(256) as u8).collect();
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(u64::try_from((page - 1) * size).unwrap()))
        .unwrap();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
}

/// A daemon with no targets on 127.0.0.1 whose history is `db`; killed on
/// drop.
struct Daemon {
    child: std::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, db: &Path) -> Daemon {
        // A free port: bound, read, released for the daemon.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = dir.join("transitwatch.toml");
        std::fs::write(
            &config,
            format!(
                "[vantage]\nname = \"test\"\ncountry = \"LS\"\n\n[policy]\nhome = \"LS\"\n\n\
                 [metrics]\nlisten = \"{addr}\"\n\n[store]\npath = {:?}\n",
                db.to_str().unwrap()
            ),
        )
        .unwrap();
        let log = dir.join("transitwatch.log");
        let child = Command::new(support::bin())
            .args(["run", "--log-format", "json", "--config"])
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Poll `/metrics` until `ok` holds of its text (hang guard: 60 s).
    fn wait_metrics(&mut self, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut last = String::new();
        loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the daemon exited:\n{}",
                self.log()
            );
            let answer = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), async {
                    let mut stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
                    stream
                        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .await
                        .ok()?;
                    let mut raw = Vec::new();
                    stream.read_to_end(&mut raw).await.ok()?;
                    Some(String::from_utf8_lossy(&raw).to_string())
                })
                .await
                .ok()
                .flatten()
            });
            if let Some(text) = answer {
                if ok(&text) {
                    return text;
                }
                last = text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; last metrics:\n{last}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the unlabelled series `name` in a metrics text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_damaged_page_is_detected_at_open_and_its_lost_rows_counted_everywhere() {
    let n: i64 = 1500;
    for (tree, kind) in [
        ("traces", "leaf"),
        ("traces", "internal"),
        ("traces_started_at", "leaf"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitwatch.db");
        history(&path, n);
        assert_eq!(
            Store::open(&path).unwrap().check().unwrap(),
            Integrity::Intact,
            "{kind}: before the damage"
        );
        let victim = victim(&path, tree, kind);
        let kind = format!("{tree} {kind}");
        eprintln!(
            "{kind}: overwriting page {}, {} rows of the table on or under it",
            victim.page, victim.rows
        );
        if tree == "traces" {
            assert!(victim.rows > 0 && victim.rows < 1000, "{}", victim.rows);
        }
        overwrite_page(&path, victim.page);

        // The check at open (the daemon's writer opens the store this way,
        // and so does export).
        let started = Instant::now();
        let Integrity::Damaged(damage) = Store::open(&path).unwrap().check().unwrap() else {
            panic!("{kind}: the damage went unnoticed");
        };
        eprintln!("{kind}: {damage} (checked in {:?})", started.elapsed());
        assert_eq!(damage.traces, 1500, "{kind}: {damage}");
        assert_eq!(damage.unreadable, victim.rows, "{kind}: {damage}");
        assert!(damage.complete);
        let line = damage.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(&format!(
                "{}: the database is damaged: {} of 1500 stored traces cannot be read (quick_check: ",
                path.display(),
                victim.rows
            )),
            "{line}"
        );
        // What can be read is exactly the rest: a scan reads around the
        // damaged page and reports each row on it.
        let rows: Vec<_> = Store::open_read_only(&path)
            .unwrap()
            .scan(Query::default())
            .collect();
        let bad = rows.iter().filter(|r| r.is_err()).count() as u64;
        assert_eq!(rows.len(), 1500, "{kind}");
        assert_eq!(bad, victim.rows, "{kind}");

        // export: the damage up front, what can be read, exit 1.
        let out = Command::new(support::bin())
            .args(["export", "--store"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{kind}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{kind}: {stderr}");
        assert!(
            lines[0].starts_with(&format!(
                "transitwatch: warning: {}: the database is damaged: {} of 1500 stored traces cannot be read",
                path.display(),
                victim.rows
            )),
            "{kind}: {stderr}"
        );
        let readable = 1500 - victim.rows;
        let summary = if victim.rows == 0 {
            "the database is damaged: the 1500 selected traces it still lists were exported"
                .to_string()
        } else {
            format!(
                "the database is damaged: {} of 1500 stored traces could not be read, the other {readable} were exported",
                victim.rows
            )
        };
        assert!(lines[1].contains(&summary), "{kind}: {stderr}");
        let exported: Vec<i64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["stored"]["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(exported.len() as u64, readable, "{kind}");
        // Still in time order (here: id order), each trace once.
        assert!(exported.windows(2).all(|w| w[0] < w[1]), "{kind}");

        // The daemon: it runs on, says so in one log line and on /metrics,
        // and writes nothing more to the file (opening it for writing may
        // touch the header's change counter, on page 1).
        let page_size = usize::try_from(page_size(&path)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut daemon = Daemon::start(dir.path(), &path);
        let damaged_lines = |log: &str| {
            log.lines()
                .filter(|l| l.contains("the database is damaged"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        wait_for("the daemon to report the damage", || {
            !damaged_lines(&daemon.log()).is_empty()
        });
        let metrics = daemon.wait_metrics(|m| m.contains("transitwatch_store_healthy"));
        assert_eq!(
            gauge(&metrics, "transitwatch_store_unreadable_traces"),
            Some(victim.rows as f64),
            "{kind}: {metrics}"
        );
        assert_eq!(
            gauge(&metrics, "transitwatch_store_healthy"),
            Some(0.0),
            "{kind}"
        );
        let log = daemon.log();
        let damaged = damaged_lines(&log);
        assert_eq!(damaged.len(), 1, "{kind}: {log}");
        let entry: serde_json::Value = serde_json::from_str(&damaged[0]).unwrap();
        assert_eq!(entry["level"], "ERROR", "{kind}: {entry}");
        let message = entry["fields"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "{} of 1500 stored traces cannot be read",
                victim.rows
            )) && message.contains("transitwatch.db")
                && message.contains("history is no longer written"),
            "{kind}: {message}"
        );
        drop(daemon);
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after.len(), before.len(), "{kind}");
        assert!(
            after[page_size..] == before[page_size..],
            "{kind}: the damaged file was written to"
        );
    }
}

#[test]
fn an_intact_store_is_healthy_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transitwatch.db");
    history(&path, 10);
    let mut daemon = Daemon::start(dir.path(), &path);
    let metrics = daemon.wait_metrics(|m| gauge(m, "transitwatch_store_healthy") == Some(1.0));
    assert_eq!(
        gauge(&metrics, "transitwatch_store_unreadable_traces"),
        Some(0.0)
    );
}
