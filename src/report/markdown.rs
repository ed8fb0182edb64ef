//! The report as Markdown: the same figures as the JSON and HTML forms,
//! formatted by [`super::percent`].

use super::{class_rows, class_text, class_words, count_of, country_name, percent, Report, Shares};
use std::fmt::Write as _;

/// Write `report` as a Markdown document.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.period;
    let _ = writeln!(out, "# Where national services depend on other countries\n");
    let _ = writeln!(
        out,
        "Period: {} to {} · generated {}\n",
        p.start, p.end, report.generated_at
    );
    let _ = writeln!(out, "## Summary\n");
    for s in &report.summary.sentences {
        let _ = writeln!(out, "- {s}");
    }
    if !report.summary.countries.is_empty() {
        let _ = writeln!(out, "\n## Countries depended on\n");
        let _ = writeln!(out, "| country | services (any time) | services (all the time) | share of services | share of service-time | services |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for c in &report.summary.countries {
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {} | {} |",
                c.name,
                c.country,
                c.services_any,
                c.services_all,
                percent(c.share_of_services),
                percent(c.time_share),
                c.service_names.join(", ")
            );
        }
    }
    let _ = writeln!(out, "\n## By category\n");
    let _ = writeln!(
        out,
        "| category | services | foreign countries (services) |\n|---|---|---|"
    );
    for c in &report.summary.categories {
        let countries: Vec<String> = c
            .countries
            .iter()
            .map(|(k, n)| format!("{} {n}", country_name(k)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            c.category,
            c.services,
            if countries.is_empty() {
                "none".to_string()
            } else {
                countries.join(", ")
            }
        );
    }
    if !report.summary.networks.is_empty() {
        let _ = writeln!(out, "\n## Foreign networks on the paths\n");
        let _ = writeln!(
            out,
            "| AS | name | countries | services |\n|---|---|---|---|"
        );
        for n in &report.summary.networks {
            let _ = writeln!(
                out,
                "| AS{} | {} | {} | {} |",
                n.asn,
                n.name.as_deref().unwrap_or("(unknown)"),
                n.countries.join(", "),
                n.service_names.join(", ")
            );
        }
    }
    if !report.summary.routes.is_empty() {
        let _ = writeln!(out, "\n## Routes the services' paths took last\n");
        let _ = writeln!(
            out,
            "| countries, in path order | class | services |\n|---|---|---|"
        );
        for r in &report.summary.routes {
            let names: Vec<String> = r.countries.iter().map(|c| country_name(c)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                names.join(" → "),
                class_words(r.class),
                r.service_names.join(", ")
            );
        }
    }
    dependencies(&mut out, report);
    let _ = writeln!(out, "\n## Services\n");
    for s in &report.services {
        let _ = writeln!(out, "### {} ({})\n", s.name, s.category);
        match &s.current {
            Some(c) => {
                let via = if c.foreign_countries.is_empty() {
                    String::new()
                } else {
                    let names: Vec<String> = c
                        .foreign_countries
                        .iter()
                        .map(|k| country_name(k))
                        .collect();
                    format!(" through {}", names.join(" → "))
                };
                let _ = writeln!(
                    out,
                    "Now: **{}**{via}, since {} (last trace {}).\n",
                    class_words(c.class),
                    c.since,
                    c.last_trace
                );
            }
            None => {
                let _ = writeln!(out, "Now: not measured in the period.\n");
            }
        }
        let _ = writeln!(
            out,
            "{}, {}.\n",
            count_of(s.traces, "trace"),
            count_of(s.change_count, "route change")
        );
        if let Some(h) = &s.hosting {
            let _ = writeln!(out, "Hosting: {}\n", h.sentence);
        }
        if let Some(d) = &s.dns {
            let _ = writeln!(out, "DNS: {}\n", d.sentence);
        }
        let _ = writeln!(out, "| share | of the period | of traces |\n|---|---|---|");
        shares_rows(&mut out, &s.time_share, &s.trace_share);
        for path in &s.paths {
            let _ = writeln!(
                out,
                "\nPath {} from {} ({}):\n",
                path.path_key,
                path.vantage,
                count_of(path.traces, "trace")
            );
            let _ = writeln!(out, "| share | of the period | of traces |\n|---|---|---|");
            shares_rows(&mut out, &path.time_share, &path.trace_share);
        }
        if !s.changes.is_empty() {
            let _ = writeln!(out, "\nRoute changes:\n");
            for c in &s.changes {
                let _ = writeln!(
                    out,
                    "- {} {}: {} → {} {}",
                    c.at,
                    c.path_key,
                    class_words(c.from_class),
                    class_words(c.class),
                    c.foreign_countries.join(" → ")
                );
            }
        }
        for e in &s.evidence {
            let _ = writeln!(
                out,
                "\nEvidence, {} (trace {}, {}): {}\n",
                e.path_key, e.trace_id, e.started_at, e.explanation
            );
            let _ = writeln!(out, "| ttl | address | name | country | city | AS | confidence |\n|---|---|---|---|---|---|---|");
            for h in &e.hops {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    h.ttl,
                    h.addr.as_deref().unwrap_or("*"),
                    h.hostname.as_deref().unwrap_or(""),
                    h.country.as_deref().unwrap_or(""),
                    h.city.as_deref().unwrap_or(""),
                    h.asn
                        .map(|a| format!("AS{a} {}", h.as_org.as_deref().unwrap_or("")))
                        .unwrap_or_default(),
                    h.confidence
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(out);
    }
    let m = &report.method;
    let _ = writeln!(out, "## Method and provenance\n");
    let _ = writeln!(out, "- Vantage points: {}", m.vantages.join(", "));
    let _ = writeln!(out, "- Traces: {}", m.traces);
    let _ = writeln!(out, "- Time: {}", m.hold_rule);
    let _ = writeln!(
        out,
        "- Gaps in measurement: {} ({} s unmeasured)",
        m.gaps.len(),
        m.unmeasured_seconds
    );
    for g in &m.gaps {
        let _ = writeln!(out, "  - {} to {} ({} s)", g.start, g.end, g.seconds);
    }
    if let Some(home) = &m.home {
        let _ = writeln!(out, "- Home country: {home}");
    }
    if let Some(c) = &m.min_confidence {
        let _ = writeln!(out, "- Minimum confidence for a violation: {c}");
    }
    let t = &m.operator_table;
    let _ = writeln!(
        out,
        "- Operator table: built in (sha256 {}){}, {} ASes",
        t.shipped_sha256,
        t.file.as_ref().map_or_else(String::new, |f| format!(
            " with {f} over it (sha256 {})",
            t.file_sha256.as_deref().unwrap_or("")
        )),
        t.asns
    );
    if let Some(sha) = &m.config_sha256 {
        let _ = writeln!(out, "- Configuration given to the report: sha256 {sha}");
    }
    for p in &m.provenance {
        let dbs = p.databases_text();
        // "databases: none" only when no location file was in force either;
        // paths are code spans (an `_` in one is not emphasis).
        let sources = if p.location_files.is_empty() {
            format!("databases: {dbs}")
        } else {
            let files: Vec<String> = p
                .location_files
                .iter()
                .map(|f| format!("{} `{}` (sha256 {})", f.kind, f.path, f.sha256))
                .collect();
            format!(
                "MMDB databases: {dbs}; location files: {}",
                files.join("; ")
            )
        };
        let _ = writeln!(
            out,
            "- {} traces {} to {}: configuration sha256 {}, transitwatch {}, {sources}",
            p.traces,
            p.first,
            p.last,
            p.config_sha256.as_deref().unwrap_or("none"),
            p.version,
        );
    }
    for (name, rule) in &m.rules {
        let _ = writeln!(
            out,
            "- Rule for {name}: category {}, allowed countries {}",
            rule.category,
            rule.allowed_countries.join(", ")
        );
    }
    let _ = writeln!(out, "\nWhat the classes mean:\n");
    for (class, meaning) in &m.classes {
        let _ = writeln!(out, "- {} (`{class}`): {meaning}", class_text(class));
    }
    out
}

/// What fails if each country or operator seen does (as the HTML's
/// table).
fn dependencies(out: &mut String, report: &Report) {
    let d = &report.summary.dependencies;
    let rows: Vec<&super::AtRisk> = d.losses().collect();
    if rows.is_empty() && d.dns.services == 0 {
        return;
    }
    let _ = writeln!(out, "\n## What fails if\n");
    for sentence in &d.dns.sentences {
        let _ = writeln!(out, "{sentence}\n");
    }
    if rows.is_empty() {
        let _ = writeln!(out, "No country or operator seen on the latest paths takes a service's route, hosting or DNS with it.");
        return;
    }
    let _ = writeln!(
        out,
        "| if this becomes unavailable | services losing their hosting | their route | their DNS |\n|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.failure.description,
            r.loses_hosting.join(", "),
            r.loses_route.join(", "),
            r.loses_dns.join(", ")
        );
    }
}

fn shares_rows(out: &mut String, time: &Shares, traces: &Shares) {
    for (class, t, by) in class_rows(time, traces) {
        let _ = writeln!(out, "| {class} | {} | {} |", percent(t), percent(by));
    }
    for (country, t) in &time.countries {
        let by = traces.countries.get(country).copied().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| through {} ({country}) | {} | {} |",
            country_name(country),
            percent(*t),
            percent(by)
        );
    }
    if let Some(u) = time.unmeasured {
        let _ = writeln!(out, "| not measured | {} | |", percent(u));
    }
}
