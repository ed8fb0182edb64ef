//! The daemon's live report in a real browser at the lab's vantage: the
//! daemon traces a dual-stack portal, a bank reached through the "South
//! African" routers and a shop hosted in Ireland, the portal's IPv4 route
//! then moves onto the ZA routers; headless Chromium, started with `ip
//! netns exec` inside the vantage's namespace (whose links lead only to
//! other lab namespaces; `support::browser`), opens `/report` for a fixed
//! period and `/`. Each page requests nothing but itself and logs no error;
//! the report's DOM holds the services, their time shares and the foreign
//! countries of `/report?format=json` for the same period, fetched before
//! and after the page (and the same both times). A full-page screenshot
//! and an A4 PDF print are kept as `target/report-browser/report-live.png`
//! and `.pdf`.

use crate::support;

use std::time::Duration;
use support::browser::{self, Browser};
use support::daemon::{store_section, write_config, LabDaemon, LISTEN};
use support::{report_page, Lab};
use transitwatch::units::Timestamp;

const TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
family = "both"
category = "government"

[[target]]
name = "bank"
host = "bank.ls.test"
category = "finance"

[[target]]
name = "shop"
host = "shop.ie.test"
category = "commerce"
"#;

/// The JSON report without the moment it was made.
fn figures(body: &str) -> serde_json::Value {
    let mut report: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    report
        .as_object_mut()
        .expect("a JSON object")
        .remove("generated_at");
    report
}

#[test]
fn the_live_report_in_a_real_browser_at_the_vantage() {
    let test = "the_live_report_in_a_real_browser_at_the_vantage";
    if !browser::available(test) {
        return;
    }
    let Some(lab) = Lab::up(test) else { return };
    if !support::have_all(test, &["curl"]) {
        return;
    }
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&store_section(dir.path()), TARGETS]);
    // The period starts a moment before the daemon, so that the shares are
    // of measured time rather than all "not measured".
    let started = Timestamp::now().unix() - 1;
    let daemon = LabDaemon::start(&lab, &config, &dir.path().join("state"));
    daemon.wait_ready();
    let verdict = |m: &support::daemon::Metrics, target, class| {
        m.get(
            "transitwatch_path_verdict",
            &[("target", target), ("class", class)],
        ) == Some(1.0)
    };
    daemon.wait_metrics("a verdict for every target", |m| {
        verdict(m, "gov-portal/ipv4", "domestic")
            && verdict(m, "gov-portal/ipv6", "domestic")
            && verdict(m, "bank", "foreign_transit")
            && verdict(m, "shop", "foreign_destination")
    });
    // The portal's IPv4 path moves onto the ZA route; its IPv6 path stays.
    lab.route_prefixes("za", &["198.51.100.10/32"]);
    let m = daemon.wait_metrics("the portal's IPv4 path to flip", |m| {
        verdict(m, "gov-portal/ipv4", "foreign_transit")
    });
    let seen = m.runs("gov-portal/ipv4", "reached");
    daemon.wait_metrics("more portal traces on the new route", |m| {
        m.runs("gov-portal/ipv4", "reached") >= seen + 2.0
    });

    // A fixed period, from the daemon's start to now, so that the page and
    // the JSON report say the same however long the browser takes; traces
    // started before its end (1 s deadline) are stored after a moment.
    let (since, until) = (Timestamp::from_unix(started).unwrap(), Timestamp::now());
    std::thread::sleep(Duration::from_secs(3));
    let path = format!("/report?since={since}&until={until}");
    let json = |when: &str| {
        let (code, body) = daemon.get(&format!("{path}&format=json"));
        assert_eq!(code, 200, "{when}: {body}\n{}", daemon.log_tail());
        figures(&body)
    };
    let report = json("before the browser");
    let names: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bank", "gov-portal", "shop"], "{report}");
    let countries: Vec<&str> = report["summary"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(countries, ["South Africa", "Ireland"], "{report}");

    let mut chromium = Browser::launch(lab.command("v", "sh"), dir.path());
    let url = format!("http://{LISTEN}{path}");
    let mut page = chromium.open(&url);
    let measured = report_page::check(&mut page, &report, "report-live");
    assert_eq!(
        measured.requests,
        [url.as_str()],
        "the page, once, and nothing else"
    );
    drop(page);
    assert_eq!(
        json("after the browser"),
        report,
        "the report of a past period changed while the browser read it"
    );

    // The daemon's front page: the same report over the whole history.
    let front = format!("http://{LISTEN}/");
    let mut page = chromium.open(&front);
    let requests = report_page::assert_alone(&page);
    assert_eq!(
        requests,
        [front.as_str()],
        "the page, once, and nothing else"
    );
    let text = page.text();
    for name in names.iter().chain(&countries) {
        assert!(text.contains(name), "{front}: {name} in:\n{text}");
    }
    eprintln!("{front}: requests {requests:?}");
    drop(page);
    drop(chromium);
    daemon.assert_running();
}
