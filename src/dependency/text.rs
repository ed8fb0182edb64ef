//! The text form of a [`WhatIf`]: its sentences, then a table with one row
//! per matching hop of each path (at least one row per path). It only
//! formats what [`super::Assessment`] computed.

use super::{FailureKind, HopRole, MatchedHop, WhatIf};

/// The answer as plain sentences and a table.
#[must_use]
pub fn render(answer: &WhatIf) -> String {
    let mut out = String::new();
    for sentence in &answer.sentences {
        out.push_str(sentence);
        out.push('\n');
    }
    if answer.services.is_empty() {
        return out;
    }
    let mut rows: Vec<[String; 6]> = vec![[
        "service".into(),
        "effect".into(),
        "path".into(),
        "class".into(),
        "depends".into(),
        "matching hops".into(),
    ]];
    for service in &answer.services {
        let mut first_of_service = true;
        for path in &service.paths {
            let hops: Vec<String> = if path.hops.is_empty() {
                vec![String::new()]
            } else {
                path.hops.iter().map(hop_cell).collect()
            };
            for (i, hop) in hops.into_iter().enumerate() {
                let (name, effect) = if first_of_service {
                    (service.name.clone(), service.effect.words().to_string())
                } else {
                    (String::new(), String::new())
                };
                first_of_service = false;
                let (key, class, depends) = if i == 0 {
                    (
                        path.path_key.clone(),
                        path.class.as_str().to_string(),
                        path.depends.words().to_string(),
                    )
                } else {
                    (String::new(), String::new(), String::new())
                };
                rows.push([name, effect, key, class, depends, hop]);
            }
        }
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let matching = match answer.failure.kind {
        FailureKind::Org => format!(
            "of the networks whose organisation, or operator in the operator table, matches `{}`",
            answer.failure.org.as_deref().unwrap_or_default()
        ),
        FailureKind::Country | FailureKind::Asn => format!("in {}", answer.failure.description),
    };
    out.push_str(&format!(
        "\nThe latest trace of each path at or before {}: {} of {}. Matching hops are those {matching}.\n",
        answer.at,
        count(answer.counts.paths, "path"),
        count(answer.counts.services, "service"),
    ));
    out
}

/// `2 198.18.4.2 (ZA, AS64510 Cloudy Transit, high)`; the destination
/// marked as such.
fn hop_cell(hop: &MatchedHop) -> String {
    let mut parts: Vec<String> = Vec::new();
    if hop.role == HopRole::Destination {
        parts.push("destination".into());
    }
    parts.push(hop.country.map_or_else(
        || "no accepted location".to_string(),
        |c| match &hop.city {
            Some(city) => format!("{c} {city}"),
            None => c.to_string(),
        },
    ));
    if let Some(asn) = hop.asn {
        parts.push(match &hop.as_org {
            Some(org) => format!("AS{asn} {org}"),
            None => format!("AS{asn}"),
        });
    }
    if let Some(c) = hop.confidence {
        parts.push(format!("{c} confidence"));
    }
    format!("{} {} ({})", hop.ttl, hop.addr, parts.join(", "))
}

fn count(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
