//! The report file in a real browser: headless Chromium, in a network
//! namespace of its own with nothing but `lo` (`support::browser`), opens
//! the HTML of `transitwatch report` over the known history of `report`
//! and is compared with the JSON report of the same store and period: the
//! page requests nothing but itself, logs no error, and its DOM holds the
//! services, their time shares and the foreign countries. A full-page
//! screenshot and an A4 PDF print are kept as
//! `target/report-browser/report-file.png` and `.pdf` for a person to look
//! at.
//!
//! Needs root (the namespace) and Chromium (`scripts/setup.sh`); without
//! them it prints `SKIPPED ...` and passes, unless
//! `TRANSITWATCH_REQUIRE_LAB=1`.

use crate::report::{history, SINCE, UNTIL};
use crate::support::browser::{self, Browser, IsolatedNetns};
use crate::support::{self, report_page, text};
use std::path::Path;
use std::process::Command;

/// `transitwatch report` of `db` over the history's period as `format`,
/// written to `output`.
fn report_file(db: &Path, format: &str, output: &Path) {
    let out = Command::new(support::bin())
        .args(["report", "--store"])
        .arg(db)
        .args(["--since", SINCE, "--until", UNTIL, "--format", format])
        .arg("--output")
        .arg(output)
        .output()
        .expect("run transitwatch report");
    assert!(
        out.status.success(),
        "report --format {format}: {}",
        text(&out)
    );
}

#[test]
fn the_report_file_in_a_real_browser_matches_the_json_report() {
    let test = "the_report_file_in_a_real_browser_matches_the_json_report";
    if !browser::available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    history(&db);
    let html = dir.path().join("report.html");
    let json = dir.path().join("report.json");
    report_file(&db, "html", &html);
    report_file(&db, "json", &json);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The history's services and countries, so that the page is compared
    // with a report that holds them (`report` checks every figure).
    assert_eq!(report["services"].as_array().map(Vec::len), Some(4));
    assert_eq!(report["summary"]["countries"][0]["name"], "South Africa");
    assert_eq!(report["summary"]["countries"][1]["name"], "Ireland");

    let netns = IsolatedNetns::new();
    let mut chromium = Browser::launch(netns.command("sh"), dir.path());
    let url = format!("file://{}", html.display());
    let mut page = chromium.open(&url);
    let measured = report_page::check(&mut page, &report, "report-file");
    assert_eq!(measured.requests, [url], "the file, once, and nothing else");
}
