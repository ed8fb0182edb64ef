//! Who hosts each service, end to end: a store whose destination hop is in
//! AS16509 and located at home, read by `transitwatch report` — the JSON
//! says hosted at home by a foreign-based operator (Amazon, based in the
//! US), accepted when the configuration given to the report lists it in
//! the target's `accepted_operators`; a deployment's operator table
//! overrides the shipped one; and `check-config` names the file, line and
//! field of a bad operator table (exit 2).

use crate::support;

use std::path::Path;
use std::process::Command;
use support::records::{domestic, new_trace};
use transitwatch::model::TraceRecord;
use transitwatch::store::Store;

/// 2026-11-26T12:00:00Z.
const T0: i64 = 1_795_694_400;

/// The portal's domestic route, its destination (198.51.100.10, located in
/// Maseru by the lab's overrides) answering from AS16509.
fn on_amazon(unix: i64) -> TraceRecord {
    let mut record = domestic("gov", unix);
    let dest = record.trace.target.addr;
    let hop = record
        .trace
        .hops
        .iter_mut()
        .find(|h| h.addr == dest)
        .expect("the destination hop");
    hop.geo.asn = Some(16509);
    hop.geo.as_org = Some("AMAZON-02".to_string());
    assert_eq!(record.verdict.class.as_str(), "domestic");
    record
}

fn history(db: &Path) {
    let mut store = Store::open(db).unwrap();
    for k in 0..3 {
        let at = T0 + k * 600;
        store.insert(&new_trace("gov", on_amazon(at))).unwrap();
        store
            .insert(&new_trace("tax", domestic("tax", at)))
            .unwrap();
    }
}

fn config(dir: &Path, db: &Path, extra: &str, accepted: &str) -> std::path::PathBuf {
    let path = dir.join("transitwatch.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\n[vantage]\nname = \"maseru-lab\"\ncountry = \"LS\"\n\n[store]\npath = \"{}\"\n\n\
             [[target]]\nname = \"gov\"\nhost = \"198.51.100.10\"\n{accepted}\n\n\
             [[target]]\nname = \"tax\"\nhost = \"198.51.100.11\"\n",
            db.display()
        ),
    )
    .unwrap();
    path
}

fn report(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = Command::new(support::bin())
        .arg("report")
        .args(args)
        .args(["--format", "json", "--until", "2026-11-26T13:00:00Z"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn service<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn the_report_says_who_hosts_each_service_and_whether_it_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    history(&db);

    // The store alone: the shipped table, home from the vantage.
    let plain = report(&["--store".as_ref(), db.as_os_str()]);
    crate::support::schema::assert_valid("report.schema.json", &plain);
    let gov = &service(&plain, "gov")["hosting"];
    assert_eq!(gov["place"], "home", "{gov}");
    assert_eq!(gov["home"], "LS");
    assert_eq!(gov["countries"], serde_json::json!(["LS"]));
    assert_eq!(gov["operated_by"], "foreign_based");
    assert_eq!(
        gov["operators"],
        serde_json::json!([{"name": "Amazon", "country": "US", "kind": "cloud"}])
    );
    assert_eq!(gov["accepted"], false);
    let path = &gov["paths"][0];
    assert_eq!(path["path_key"], "gov");
    assert_eq!(path["addr"], "198.51.100.10");
    assert_eq!(path["asn"], 16509);
    assert_eq!(path["as_org"], "AMAZON-02");
    assert_eq!(
        gov["sentence"],
        "gov is hosted at home (LS) by Amazon (based in US) — a foreign-based operator."
    );
    // The lab's AS64500 is in no table: unknown, not guessed.
    let tax = &service(&plain, "tax")["hosting"];
    assert_eq!(tax["place"], "home");
    assert_eq!(tax["operated_by"], "unknown");
    assert_eq!(tax["operators"], serde_json::json!([]));
    let summary = &plain["summary"];
    assert_eq!(
        summary["hosting"]["foreign_based"],
        serde_json::json!(["gov"])
    );
    assert_eq!(summary["hosting"]["unknown"], serde_json::json!(["tax"]));
    let national = "1 of 2 national services is hosted by foreign-based operators: gov.";
    assert!(
        summary["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().starts_with(national)),
        "{}",
        summary["sentences"]
    );

    // With the configuration: Amazon accepted for gov (any case).
    let cfg = config(dir.path(), &db, "", "accepted_operators = [\"amazon\"]");
    let accepted = report(&["--config".as_ref(), cfg.as_os_str()]);
    crate::support::schema::assert_valid("report.schema.json", &accepted);
    let gov = &service(&accepted, "gov")["hosting"];
    assert_eq!(gov["operated_by"], "foreign_based");
    assert_eq!(gov["accepted"], true);
    assert_eq!(gov["paths"][0]["accepted"], true);
    assert!(gov["sentence"]
        .as_str()
        .unwrap()
        .ends_with("a foreign-based operator, accepted for this service."));
    assert_eq!(
        accepted["method"]["rules"]["gov"]["accepted_operators"],
        serde_json::json!(["amazon"])
    );
    assert_eq!(
        accepted["summary"]["hosting"]["accepted"],
        serde_json::json!(["gov"])
    );
    // The Markdown and HTML forms carry the line.
    for format in ["md", "html"] {
        let out = Command::new(support::bin())
            .args(["report", "--config"])
            .arg(&cfg)
            .args(["--format", format, "--until", "2026-11-26T13:00:00Z"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("gov is hosted at home (LS) by Amazon (based in US)"),
            "{format}"
        );
        assert!(text.contains(national), "{format}");
    }

    // A deployment's table overrides the shipped one by AS number.
    std::fs::write(
        dir.path().join("operators.toml"),
        "[[operator]]\nname = \"Lesotho Cloud\"\ncountry = \"LS\"\nkind = \"hosting\"\nasns = [16509]\n",
    )
    .unwrap();
    let cfg = config(
        dir.path(),
        &db,
        "[dependency]\noperators = \"operators.toml\"\n",
        "",
    );
    let own = report(&["--config".as_ref(), cfg.as_os_str()]);
    let gov = &service(&own, "gov")["hosting"];
    assert_eq!(gov["operated_by"], "domestic");
    assert_eq!(gov["operators"][0]["name"], "Lesotho Cloud");
}

#[test]
fn check_config_names_the_file_line_and_field_of_a_bad_operator_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let ops = dir.path().join("operators.toml");
    let cfg = config(
        dir.path(),
        &db,
        "[dependency]\noperators = \"operators.toml\"\n",
        "accepted_operators = [\"Amazon\"]",
    );
    let check = || {
        Command::new(support::bin())
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let good = "[[operator]]\nname = \"Lesotho Cloud\"\ncountry = \"LS\"\nkind = \"hosting\"\nasns = [64501]\n";
    std::fs::write(&ops, good).unwrap();
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("operator table {}", ops.display())),
        "{stdout}"
    );

    for (text, line, field, words) in [
        (
            format!("{good}\n[[operator]]\nname = \"X\"\ncountry = \"UK\"\nkind = \"cdn\"\nasns = [64502]\n"),
            9,
            "operator[1].country",
            "`UK` is not an assigned ISO 3166-1 alpha-2 country code",
        ),
        (
            format!("{good}\n[[operator]]\nname = \"X\"\ncountry = \"ZA\"\nkind = \"cdn\"\nasns = [64502, 64501]\n"),
            11,
            "operator[1].asns[1]",
            "AS64501 is already listed for `Lesotho Cloud`",
        ),
        (
            format!("{good}website = \"https://cloud.ls\"\n"),
            6,
            "operator[0].website",
            "unknown field `website`",
        ),
    ] {
        std::fs::write(&ops, &text).unwrap();
        let out = check();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{}:{line}:", ops.display())),
            "{field}: {stderr}"
        );
        assert!(stderr.contains(&format!("field `{field}`")), "{stderr}");
        assert!(stderr.contains(words), "{stderr}");
    }

    // An accepted operator the table does not know names the target's field.
    std::fs::write(&ops, good).unwrap();
    let cfg2 = config(dir.path(), &db, "", "accepted_operators = [\"Amazn\"]");
    let out = Command::new(support::bin())
        .args(["check-config", "--config"])
        .arg(&cfg2)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("field `target[0].accepted_operators[0]`"),
        "{stderr}"
    );
    assert!(stderr.contains("`Amazn` names no operator"), "{stderr}");
}
