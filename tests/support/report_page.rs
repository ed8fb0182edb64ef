//! What a real browser must find in the regulator's report page (the file
//! of `transitwatch report --format html` and the daemon's `/report`),
//! compared with the JSON report of the same store and period.
//!
//! [`check`] asserts that the page stands alone (its only requests are its
//! own URL and `data:` URLs; no console error or warning, exception, log
//! error or failed load), that its DOM holds every service, each service's
//! time shares as percentages, every foreign country by its English name
//! and the summary's sentences, all as the JSON says; then it keeps a
//! full-page screenshot and an A4 PDF print in `target/report-browser/`
//! and counts the PDF's pages.

use super::browser::{self, Page};
use serde_json::Value;
use std::path::PathBuf;

/// Most pages the PDF of a test report may have: more means the print
/// layout broke (a table split into a page per row, say).
const MAX_PAGES: usize = 60;

/// What a check measured.
#[derive(Debug)]
pub struct Measured {
    /// Every URL the page requested.
    pub requests: Vec<String>,
    /// The screenshot's width and height in pixels.
    pub screenshot_size: (u32, u32),
    /// Where the screenshot and the PDF are.
    pub png: PathBuf,
    pub pdf: PathBuf,
    /// The PDF's pages.
    pub pages: usize,
}

/// A share as the report's pages write it, reimplemented here from what
/// they promise: a whole percentage, except that a share that rounding
/// would show as 0% or 100% while it is neither is `<1%` or `>99%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p > 0.0 && p < 0.5 {
        "<1%".to_string()
    } else if p > 99.5 && p < 100.0 {
        ">99%".to_string()
    } else {
        format!("{p:.0}%")
    }
}

/// Assert that the page made no request but for itself and `data:` URLs
/// and reported no problem; return its requests.
pub fn assert_alone(page: &Page) -> Vec<String> {
    let requests = page.requests();
    assert!(
        requests.iter().any(|r| r == page.url()),
        "{}: the page itself was not among its requests: {requests:?}",
        page.url()
    );
    for request in &requests {
        assert!(
            request == page.url() || request.starts_with("data:"),
            "{}: the page requested {request} (all requests: {requests:?})",
            page.url()
        );
    }
    let problems = page.problems();
    assert!(
        problems.is_empty(),
        "{}: console errors or failed loads:\n{}",
        page.url(),
        problems.join("\n")
    );
    requests
}

/// One table row of `innerText`: its cells.
fn cells(line: &str) -> Vec<&str> {
    line.split('\t').map(str::trim).collect()
}

/// The column of a table whose header cell contains `header`, found in
/// `text` (the header row is a line like any other in `innerText`).
fn column(text: &str, header: &str) -> Option<usize> {
    text.lines()
        .find_map(|l| cells(l).iter().position(|c| c.contains(header)))
}

/// Whether `cell` names `label` (`foreign_transit` may be written with a
/// space).
fn names(cell: &str, label: &str) -> bool {
    let cell = cell.to_lowercase();
    cell.contains(label) || cell.contains(&label.replace('_', " "))
}

/// The country's English name, from the summary (its code when the
/// summary does not list it).
fn country_name(report: &Value, code: &str) -> String {
    report["summary"]["countries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["country"] == code)
        .and_then(|c| c["name"].as_str())
        .unwrap_or(code)
        .to_string()
}

/// Assert that in `section` (a service's text) a row labelled as `label`
/// says `share` of the period.
fn assert_share(
    section: &str,
    service: &str,
    label: &dyn Fn(&str) -> bool,
    what: &str,
    share: f64,
) {
    let shown = percent(share);
    let period = column(section, "of the period");
    let found = section.lines().map(cells).any(|row| {
        row.first().is_some_and(|c| label(c))
            && match period {
                Some(i) => row.get(i) == Some(&shown.as_str()),
                None => row[1..].contains(&shown.as_str()),
            }
    });
    assert!(
        found,
        "service {service}: no row for {what} saying {shown} of the period in:\n{section}"
    );
}

/// Assert that the page's DOM holds the JSON report's services, their time
/// shares, the foreign countries and the summary.
pub fn assert_figures(page: &mut Page, report: &Value) {
    let text = page.text();
    let services = report["services"].as_array().expect("services");
    assert!(!services.is_empty(), "a report without services");
    for sentence in report["summary"]["sentences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let sentence = sentence.as_str().expect("a sentence");
        assert!(
            text.contains(sentence),
            "the summary sentence {sentence:?} in:\n{text}"
        );
    }
    for country in report["summary"]["countries"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (code, name) = (
            country["country"].as_str().expect("a country code"),
            country["name"].as_str().expect("a country name"),
        );
        assert!(text.contains(name), "{name} ({code}) in:\n{text}");
        let shares = [
            percent(
                country["share_of_services"]
                    .as_f64()
                    .expect("share_of_services"),
            ),
            percent(country["time_share"].as_f64().expect("time_share")),
        ];
        let row = text
            .lines()
            .map(cells)
            .find(|row| {
                // A table row (a sentence naming the country is one cell).
                row.len() > 1
                    && row
                        .first()
                        .is_some_and(|c| c.contains(name) && c.contains(&format!("({code})")))
            })
            .unwrap_or_else(|| panic!("no row of the countries table for {name} in:\n{text}"));
        for share in &shares {
            assert!(row.contains(&share.as_str()), "{name}: {share} in {row:?}");
        }
    }
    for service in services {
        let name = service["name"].as_str().expect("a service name");
        assert!(text.contains(name), "service {name} in:\n{text}");
        let id = serde_json::to_string(&format!("service-{name}")).expect("a JSON string");
        let section = page.eval(&format!(
            "(() => {{ const e = document.getElementById({id}); return e ? e.innerText : null; }})()"
        ));
        let section = section
            .as_str()
            .unwrap_or_else(|| panic!("no element #service-{name} in the page"));
        assert!(section.contains(name), "{name} in its section:\n{section}");
        let time = &service["time_share"];
        for (class, share) in time["classes"].as_object().into_iter().flatten() {
            let share = share.as_f64().expect("a class share");
            assert_share(section, name, &|c| names(c, class), class, share);
        }
        for (code, share) in time["countries"].as_object().into_iter().flatten() {
            let share = share.as_f64().expect("a country share");
            let country = country_name(report, code);
            assert!(
                section.contains(&country),
                "{name}: {country} in:\n{section}"
            );
            let label = |c: &str| c.contains(&country) && c.contains(&format!("({code})"));
            assert_share(section, name, &label, &country, share);
        }
        if let Some(unmeasured) = time["unmeasured"].as_f64() {
            let label = |c: &str| names(c, "not measured") || names(c, "unmeasured");
            assert_share(section, name, &label, "not measured", unmeasured);
        }
    }
}

/// Keep a full-page screenshot and an A4 PDF print of the page as
/// `target/report-browser/NAME.png` and `NAME.pdf`; count the PDF's pages.
pub fn keep(page: &mut Page, name: &str) -> (PathBuf, (u32, u32), PathBuf, usize) {
    let dir = browser::artifacts_dir();
    let png = page.screenshot();
    let size = browser::png_size(&png);
    assert!(
        size.0 >= 400 && size.1 >= 400,
        "{name}: a {size:?} screenshot"
    );
    let png_path = dir.join(format!("{name}.png"));
    std::fs::write(&png_path, &png).unwrap_or_else(|e| panic!("{}: {e}", png_path.display()));
    let pdf = page.pdf();
    let pdf_path = dir.join(format!("{name}.pdf"));
    std::fs::write(&pdf_path, &pdf).unwrap_or_else(|e| panic!("{}: {e}", pdf_path.display()));
    let pages = browser::pdf_pages(&pdf, &pdf_path);
    assert!(
        (1..=MAX_PAGES).contains(&pages),
        "{}: {pages} pages",
        pdf_path.display()
    );
    (png_path, size, pdf_path, pages)
}

/// Everything above for one report page, kept under `NAME`; prints what
/// it measured.
pub fn check(page: &mut Page, report: &Value, name: &str) -> Measured {
    let requests = assert_alone(page);
    assert_figures(page, report);
    let (png, screenshot_size, pdf, pages) = keep(page, name);
    let measured = Measured {
        requests,
        screenshot_size,
        png,
        pdf,
        pages,
    };
    eprintln!(
        "{name}: requests {:?}; screenshot {}x{} px at {}; PDF of {} A4 pages at {}",
        measured.requests,
        measured.screenshot_size.0,
        measured.screenshot_size.1,
        measured.png.display(),
        measured.pages,
        measured.pdf.display()
    );
    measured
}
