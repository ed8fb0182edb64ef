//! The report as one standalone HTML page: no scripts, no fetches, inline
//! styles, printable (each service starts its own block that page breaks
//! avoid splitting), readable without colour (every class is also written
//! as text and drawn with its own pattern; every chart has a text
//! alternative). The same figures as the JSON and Markdown forms.

use super::{
    class_rows, class_text, class_words, count_of, country_name, percent, Report, ServiceReport,
    Shares,
};
use crate::model::VerdictClass;
use std::fmt::Write as _;

/// Text made safe for HTML content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#111;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0;break-inside:avoid;page-break-inside:avoid}td,th{border:1px solid #888;padding:.2rem .5rem;text-align:left;vertical-align:top}
caption{text-align:left;font-weight:600;padding:.2rem 0}th{background:#eee}.num{text-align:right}
section.service{border-top:2px solid #444;margin-top:1.5rem}
h2,h3{break-after:avoid;page-break-after:avoid}p.current{break-after:avoid;page-break-after:avoid}
figure{margin:.5rem 0;break-inside:avoid;page-break-inside:avoid}figure svg{max-width:100%;height:auto}ul.summary li{margin:.3rem 0;font-size:1.1em}
@media print{body{max-width:none;font-size:10pt}a{color:inherit;text-decoration:none}h2#services{break-before:page;page-break-before:always}}
";

/// The fill of a class: colour and a pattern, so print in grey still tells them apart.
const fn fill(class: VerdictClass) -> &'static str {
    match class {
        VerdictClass::Domestic => "url(#p-domestic)",
        VerdictClass::ForeignTransit => "url(#p-foreign_transit)",
        VerdictClass::ForeignDestination => "url(#p-foreign_destination)",
        VerdictClass::Indeterminate => "url(#p-indeterminate)",
    }
}

const PATTERNS: &str = r##"<defs>
<pattern id="p-domestic" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#6a9"/></pattern>
<pattern id="p-foreign_transit" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#e94"/><path d="M0,6 L6,0" stroke="#000" stroke-width="1"/></pattern>
<pattern id="p-foreign_destination" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#c33"/><path d="M0,0 L6,6 M0,6 L6,0" stroke="#000" stroke-width="1"/></pattern>
<pattern id="p-indeterminate" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#bbb"/><circle cx="3" cy="3" r="1" fill="#000"/></pattern>
</defs>"##;

/// Write `report` as a standalone HTML page.
#[must_use]
#[allow(clippy::too_many_lines)] // one section after the other
pub fn render(report: &Report) -> String {
    let mut o = String::new();
    let p = &report.period;
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <link rel=\"icon\" href=\"data:,\"><title>transitwatch report {} to {}</title><style>{STYLE}</style></head><body>\n",
        p.start, p.end
    );
    let _ = writeln!(
        o,
        "<h1>Where national services depend on other countries</h1>"
    );
    let _ = writeln!(
        o,
        "<p>Period: <time>{}</time> to <time>{}</time>. Generated <time>{}</time>.</p>",
        p.start, p.end, report.generated_at
    );
    let _ = writeln!(o, "<h2 id=\"summary\">Summary</h2><ul class=\"summary\">");
    for s in &report.summary.sentences {
        let _ = writeln!(o, "<li>{}</li>", esc(s));
    }
    let _ = writeln!(o, "</ul>");
    if !report.summary.countries.is_empty() {
        let _ = writeln!(o, "<h2 id=\"countries\">Countries depended on</h2><table><thead><tr><th>country</th><th>services (any time)</th><th>services (all the time)</th><th>share of services</th><th>share of service-time</th><th>services</th></tr></thead><tbody>");
        for c in &report.summary.countries {
            let _ = writeln!(
                o,
                "<tr data-country=\"{}\"><td>{} ({})</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&c.country), esc(&c.name), esc(&c.country), c.services_any, c.services_all,
                percent(c.share_of_services), percent(c.time_share), esc(&c.service_names.join(", "))
            );
        }
        let _ = writeln!(o, "</tbody></table>");
    }
    let _ = writeln!(o, "<h2 id=\"categories\">By category</h2><table><thead><tr><th>category</th><th>services</th><th>foreign countries (services)</th></tr></thead><tbody>");
    for c in &report.summary.categories {
        let countries: Vec<String> = c
            .countries
            .iter()
            .map(|(k, n)| format!("{} {n}", country_name(k)))
            .collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&c.category),
            c.services,
            esc(&if countries.is_empty() {
                "none".to_string()
            } else {
                countries.join(", ")
            })
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    if !report.summary.networks.is_empty() {
        let _ = writeln!(o, "<h2 id=\"networks\">Foreign networks on the paths</h2><table><thead><tr><th>AS</th><th>name</th><th>countries</th><th>services</th></tr></thead><tbody>");
        for n in &report.summary.networks {
            let _ = writeln!(
                o,
                "<tr><td>AS{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                n.asn,
                esc(n.name.as_deref().unwrap_or("(unknown)")),
                esc(&n.countries.join(", ")),
                esc(&n.service_names.join(", "))
            );
        }
        let _ = writeln!(o, "</tbody></table>");
    }
    dependencies(&mut o, report);
    super::map::write(&mut o, report);
    timeline(&mut o, report);
    let _ = writeln!(o, "<h2 id=\"services\">Services</h2>");
    for s in &report.services {
        service(&mut o, s);
    }
    let m = &report.method;
    let _ = writeln!(o, "<h2 id=\"method\">Method and provenance</h2><ul>");
    let _ = writeln!(
        o,
        "<li>Vantage points: {}</li>",
        esc(&m.vantages.join(", "))
    );
    let _ = writeln!(
        o,
        "<li>Traces: {}</li><li>Time: {}</li>",
        m.traces,
        esc(&m.hold_rule)
    );
    let _ = writeln!(
        o,
        "<li>Gaps in measurement: {} ({} s unmeasured)<ul>",
        m.gaps.len(),
        m.unmeasured_seconds
    );
    for g in &m.gaps {
        let _ = writeln!(
            o,
            "<li class=\"gap\">{} to {} ({} s)</li>",
            g.start, g.end, g.seconds
        );
    }
    let _ = writeln!(o, "</ul></li>");
    if let Some(home) = &m.home {
        let _ = writeln!(o, "<li>Home country: {}</li>", esc(home));
    }
    if let Some(c) = &m.min_confidence {
        let _ = writeln!(o, "<li>Minimum confidence for a violation: {}</li>", esc(c));
    }
    let t = &m.operator_table;
    let _ = writeln!(
        o,
        "<li>Operator table: built in (sha256 <code>{}</code>){}, {} ASes</li>",
        esc(&t.shipped_sha256),
        t.file.as_ref().map_or_else(String::new, |f| format!(
            " with <code>{}</code> over it (sha256 <code>{}</code>)",
            esc(f),
            esc(t.file_sha256.as_deref().unwrap_or(""))
        )),
        t.asns
    );
    // The AS registry's names are DB-IP's (CC BY 4.0): a page showing
    // them links back, as its licence asks.
    let _ = writeln!(
        o,
        "<li>AS names and registration countries where the operator table has none: the AS registry (AS names by RouteViews, DB-IP and the NRO via ip-location-db, CC BY 4.0, <a href='https://db-ip.com'>IP Geolocation by DB-IP</a>; AS countries by IPtoASN, PDDL 1.0)</li>"
    );
    if let Some(sha) = &m.config_sha256 {
        let _ = writeln!(
            o,
            "<li>Configuration given to the report: sha256 <code>{}</code></li>",
            esc(sha)
        );
    }
    for p in &m.provenance {
        let dbs = esc(&p.databases_text());
        // "databases: none" only when no location file was in force either.
        let sources = if p.location_files.is_empty() {
            format!("databases: {dbs}")
        } else {
            let files: Vec<String> = p
                .location_files
                .iter()
                .map(|f| {
                    format!(
                        "{} <code>{}</code> (sha256 <code>{}</code>)",
                        esc(&f.kind),
                        esc(&f.path),
                        esc(&f.sha256)
                    )
                })
                .collect();
            format!(
                "MMDB databases: {dbs}; location files: {}",
                files.join("; ")
            )
        };
        let _ = writeln!(
            o,
            "<li>{} traces {} to {}: configuration sha256 <code>{}</code>, transitwatch {}, {sources}</li>",
            p.traces, p.first, p.last, esc(p.config_sha256.as_deref().unwrap_or("none")), esc(&p.version)
        );
    }
    for (name, rule) in &m.rules {
        let _ = writeln!(
            o,
            "<li>Rule for {}: category {}, allowed countries {}</li>",
            esc(name),
            esc(&rule.category),
            esc(&rule.allowed_countries.join(", "))
        );
    }
    let _ = writeln!(o, "</ul><h3>What the classes mean</h3><dl>");
    for (class, meaning) in &m.classes {
        let _ = writeln!(
            o,
            "<dt>{} (<code>{}</code>)</dt><dd>{}</dd>",
            esc(class_text(class)),
            esc(class),
            esc(meaning)
        );
    }
    let _ = writeln!(o, "</dl></body></html>");
    o
}

/// One service's section.
fn service(o: &mut String, s: &ServiceReport) {
    let _ = writeln!(o, "<section class=\"service\" id=\"service-{}\" data-service=\"{}\"><h3>{} <small>({})</small></h3>", esc(&s.name), esc(&s.name), esc(&s.name), esc(&s.category));
    match &s.current {
        Some(c) => {
            let via = if c.foreign_countries.is_empty() {
                String::new()
            } else {
                format!(
                    " through {}",
                    c.foreign_countries
                        .iter()
                        .map(|k| country_name(k))
                        .collect::<Vec<_>>()
                        .join(" → ")
                )
            };
            let _ = writeln!(o, "<p class=\"current\">Now: <strong>{}</strong>{}, since <time>{}</time> (last trace <time>{}</time>).</p>", class_words(c.class), esc(&via), c.since, c.last_trace);
        }
        None => {
            let _ = writeln!(
                o,
                "<p class=\"current\">Now: not measured in the period.</p>"
            );
        }
    }
    let _ = writeln!(
        o,
        "<p>{}, {}.</p>",
        count_of(s.traces, "trace"),
        count_of(s.change_count, "route change")
    );
    if let Some(h) = &s.hosting {
        let _ = writeln!(o, "<p class=\"hosting\">Hosting: {}</p>", esc(&h.sentence));
    }
    if let Some(d) = &s.dns {
        let _ = writeln!(o, "<p class=\"dns\">DNS: {}</p>", esc(&d.sentence));
    }
    shares_table(o, "the service", &s.time_share, &s.trace_share);
    for p in &s.paths {
        shares_table(
            o,
            &format!(
                "path {} from {} ({})",
                p.path_key,
                p.vantage,
                count_of(p.traces, "trace")
            ),
            &p.time_share,
            &p.trace_share,
        );
    }
    if !s.changes.is_empty() {
        let _ = writeln!(o, "<details open><summary>Route changes</summary><ol>");
        for c in &s.changes {
            let _ = writeln!(
                o,
                "<li><time>{}</time> {}: {} → {} {}</li>",
                c.at,
                esc(&c.path_key),
                class_words(c.from_class),
                class_words(c.class),
                esc(&c.foreign_countries.join(" → "))
            );
        }
        let _ = writeln!(o, "</ol></details>");
    }
    for e in &s.evidence {
        let _ = writeln!(
            o,
            "<p>Evidence, {} (trace {}, <time>{}</time>): {}</p>",
            esc(&e.path_key),
            e.trace_id,
            e.started_at,
            esc(&e.explanation)
        );
        let _ = writeln!(o, "<table><thead><tr><th>ttl</th><th>address</th><th>name</th><th>country</th><th>city</th><th>AS</th><th>confidence</th></tr></thead><tbody>");
        for h in &e.hops {
            let _ = writeln!(
                o,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h.ttl,
                esc(h.addr.as_deref().unwrap_or("*")),
                esc(h.hostname.as_deref().unwrap_or("")),
                esc(h.country.as_deref().unwrap_or("")),
                esc(h.city.as_deref().unwrap_or("")),
                esc(&h.asn.map(|a| format!("AS{a} {}", h.as_org.as_deref().unwrap_or(""))).unwrap_or_default()),
                h.confidence.map(|c| c.as_str()).unwrap_or_default()
            );
        }
        let _ = writeln!(o, "</tbody></table>");
    }
    let _ = writeln!(o, "</section>");
}

/// What fails if each country or operator seen does: a table with a row
/// per failure that takes something down, the rest named after it.
fn dependencies(o: &mut String, report: &Report) {
    let d = &report.summary.dependencies;
    let rows: Vec<&super::AtRisk> = d.losses().collect();
    if rows.is_empty() && d.dns.services == 0 {
        return;
    }
    let _ = writeln!(o, "<h2 id=\"dependencies\">What fails if</h2>");
    for sentence in &d.dns.sentences {
        let _ = writeln!(o, "<p>{}</p>", esc(sentence));
    }
    if rows.is_empty() {
        let _ = writeln!(o, "<p>No country or operator seen on the latest paths takes a service's route, hosting or DNS with it.</p>");
        return;
    }
    let _ = writeln!(o, "<table><thead><tr><th>if this becomes unavailable</th><th>services losing their hosting</th><th>their route</th><th>their DNS</th></tr></thead><tbody>");
    for r in rows {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.failure.description),
            esc(&r.loses_hosting.join(", ")),
            esc(&r.loses_route.join(", ")),
            esc(&r.loses_dns.join(", "))
        );
    }
    let _ = writeln!(o, "</tbody></table>");
}

fn shares_table(o: &mut String, what: &str, time: &Shares, traces: &Shares) {
    let _ = writeln!(o, "<table class=\"shares\"><caption>Shares for {}</caption><thead><tr><th>share</th><th>of the period</th><th>of traces</th></tr></thead><tbody>", esc(what));
    for (class, t, by) in class_rows(time, traces) {
        let _ = writeln!(
            o,
            "<tr><td>{class}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            percent(t),
            percent(by)
        );
    }
    for (country, t) in &time.countries {
        let by = traces.countries.get(country).copied().unwrap_or(0.0);
        let _ = writeln!(o, "<tr data-country=\"{}\"><td>through {} ({})</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>", esc(country), esc(&country_name(country)), esc(country), percent(*t), percent(by));
    }
    if let Some(u) = time.unmeasured {
        let _ = writeln!(
            o,
            "<tr><td>not measured</td><td class=\"num\">{}</td><td></td></tr>",
            percent(u)
        );
    }
    let _ = writeln!(o, "</tbody></table>");
}

/// A timeline chart (SVG): one row per service, the period left to right,
/// each measured span drawn in its class's pattern over a grey "not
/// measured" background; the text alternative says the same.
fn timeline(o: &mut String, report: &Report) {
    const W: f64 = 800.0;
    const LABEL: f64 = 150.0;
    const ROW: f64 = 22.0;
    let start = report.period.start.unix();
    let whole = report.period.seconds.max(1);
    #[allow(clippy::cast_precision_loss)]
    let x = |t: i64| LABEL + (t - start).clamp(0, whole) as f64 / whole as f64 * (W - LABEL);
    #[allow(clippy::cast_precision_loss)]
    let height = ROW * (report.services.len() as f64 + 1.0) + 10.0;
    let _ = writeln!(o, "<h2 id=\"timeline\">Timeline</h2><figure><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"tl-title tl-desc\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\"><title id=\"tl-title\">Route class of each service over the period</title><desc id=\"tl-desc\">For each service, the share of the period in each class and not measured is listed in the table after this chart.</desc>{PATTERNS}");
    let mut truncated = Vec::new();
    for (i, s) in report.services.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = ROW * i as f64 + 4.0;
        let _ = writeln!(
            o,
            "<text x=\"0\" y=\"{}\" font-size=\"14\">{}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#f2f2f2\" stroke=\"#999\" stroke-width=\"0.3\"><title>{}: not measured</title></rect>",
            y + 14.0,
            esc(&s.name),
            W - LABEL,
            ROW - 5.0,
            esc(&s.name)
        );
        if s.span_count > s.timeline.len() as u64 {
            truncated.push(s.name.as_str());
        }
        for span in &s.timeline {
            let (a, b) = (x(span.start.unix()), x(span.end.unix()));
            let via = if span.foreign_countries.is_empty() {
                String::new()
            } else {
                format!(" through {}", span.foreign_countries.join(", "))
            };
            let _ = writeln!(o, "<rect x=\"{a:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\" stroke=\"#000\" stroke-width=\"0.3\"><title>{}: {}{} from {} to {}</title></rect>", (b - a).max(0.5), ROW - 5.0, fill(span.class), esc(&s.name), class_words(span.class), esc(&via), span.start, span.end);
        }
    }
    let _ = writeln!(o, "</svg><figcaption>Patterns: plain green domestic; single hatch foreign transit; cross hatch foreign destination; dotted indeterminate; plain light grey not measured.{}</figcaption></figure>",
        if truncated.is_empty() {
            String::new()
        } else {
            format!(" Only the newest spans are drawn for {} (their shares below count the whole period).", esc(&truncated.join(", ")))
        });
    let _ = writeln!(o, "<table id=\"timeline-table\"><caption>The timeline as text: shares of the period</caption><thead><tr><th>service</th><th>domestic</th><th>foreign transit</th><th>foreign destination</th><th>indeterminate</th><th>not measured</th></tr></thead><tbody>");
    for s in &report.services {
        let g = |k: &str| percent(s.time_share.classes.get(k).copied().unwrap_or(0.0));
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&s.name), g("domestic"), g("foreign_transit"), g("foreign_destination"), g("indeterminate"),
            percent(s.time_share.unmeasured.unwrap_or(0.0))
        );
    }
    let _ = writeln!(o, "</tbody></table>");
}
