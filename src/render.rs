//! The human-readable report: one table per trace, like `mtr --report`,
//! followed by the verdict in one sentence. Its `Name` column is the hop's
//! reverse DNS name, or its address when it has none (as mtr shows it);
//! `Host` is always the address. A hop whose reply quoted an MPLS label
//! stack (RFC 4950) is followed by one line per label, top first, as
//! `mtr -e` shows them: `[MPLS: Lbl 24001 TC 0 S 0 TTL 1]`.

use crate::model::{Hop, TraceRecord};
use std::fmt::Write as _;

/// Render a record as an `mtr --report`-style table.
#[must_use]
pub fn table(record: &TraceRecord) -> String {
    let t = &record.trace;
    let mut out = String::new();
    let port = t.port.map(|p| format!(":{p}")).unwrap_or_default();
    let addr = t
        .target
        .addr
        .map_or_else(|| "address unknown".to_string(), |a| a.to_string());
    let _ = writeln!(
        out,
        "HOST: {} -> {} ({addr}{port}) {} {}",
        t.vantage.name, t.target.host, t.protocol, t.started_at
    );
    let width = t
        .hops
        .iter()
        .map(|h| name(h).chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        out,
        "{:>4}  {:<width$}  {:<40} {:>6} {:>4} {:>4} {:>8} {:>8} {:>8}  {:<7} ASN",
        "TTL", "Name", "Host", "Loss%", "Snt", "Rcv", "Best", "Avg", "Wrst", "Country"
    );
    for hop in &t.hops {
        out.push_str(&hop_line(hop, width));
        for l in &hop.mpls {
            let _ = writeln!(
                out,
                "      [MPLS: Lbl {} TC {} S {} TTL {}]",
                l.label,
                l.tc,
                u8::from(l.s),
                l.ttl
            );
        }
    }
    let reached = if t.reached {
        "destination reached"
    } else {
        "destination NOT reached"
    };
    let _ = writeln!(
        out,
        "{reached}; verdict: {} (path {})",
        record.verdict.class.as_str(),
        record.verdict.path_id
    );
    let _ = writeln!(out, "{}", record.verdict.explanation);
    out
}

/// What the `Name` column shows: the name, else the address, else `???`.
fn name(hop: &Hop) -> String {
    match (&hop.hostname, hop.addr) {
        (Some(name), _) => name.clone(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "???".to_string(),
    }
}

fn hop_line(hop: &Hop, width: usize) -> String {
    let host = match hop.addr {
        Some(addr) if hop.addrs.len() > 1 => format!("{addr} (+{})", hop.addrs.len() - 1),
        Some(addr) => addr.to_string(),
        None => "???".to_string(),
    };
    let loss = if hop.sent == 0 {
        0.0
    } else {
        100.0 * f64::from(hop.sent - hop.received.min(hop.sent)) / f64::from(hop.sent)
    };
    let (best, avg, worst) = hop.rtt_ms.map_or_else(
        || ("-".to_string(), "-".to_string(), "-".to_string()),
        |r| {
            (
                format!("{:.3}", r.best),
                format!("{:.3}", r.avg),
                format!("{:.3}", r.worst),
            )
        },
    );
    let country = hop
        .geo
        .country
        .map_or_else(|| "-".to_string(), |c| c.to_string());
    let asn = hop
        .geo
        .asn
        .map_or_else(|| "-".to_string(), |a| format!("AS{a}"));
    format!(
        "{:>3}.  {:<width$}  {:<40} {:>5.1}% {:>4} {:>4} {:>8} {:>8} {:>8}  {:<7} {}\n",
        hop.ttl,
        name(hop),
        host,
        loss,
        hop.sent,
        hop.received,
        best,
        avg,
        worst,
        country,
        asn
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        HopGeo, MplsLabel, PathVerdict, Protocol, RttMs, TargetRef, Trace, VantageRef, VerdictClass,
    };

    #[test]
    fn silent_hops_show_as_question_marks_with_full_loss() {
        let hop = |ttl, addr: Option<&str>| Hop {
            ttl,
            addr: addr.map(|a| a.parse().unwrap()),
            addrs: addr.into_iter().map(|a| a.parse().unwrap()).collect(),
            sent: 3,
            received: if addr.is_some() { 3 } else { 0 },
            rtt_ms: addr.map(|_| RttMs {
                best: 0.05,
                avg: 0.06,
                worst: 0.08,
            }),
            geo: HopGeo::default(),
            hostname: None,
            mpls: Vec::new(),
        };
        let record = TraceRecord::new(
            Trace {
                target: TargetRef {
                    name: "gov".into(),
                    host: "portal.gov.ls.test".into(),
                    addr: Some("198.51.100.10".parse().unwrap()),
                },
                vantage: VantageRef {
                    name: "maseru-1".into(),
                    country: None,
                },
                protocol: Protocol::Icmp,
                port: None,
                started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
                reached: true,
                hops: vec![
                    hop(1, Some("198.18.1.2")),
                    hop(2, None),
                    Hop {
                        hostname: Some("core1.jnb.example.net".into()),
                        mpls: vec![
                            MplsLabel::new(24001, 0, false, 1),
                            MplsLabel::new(16, 5, true, 254),
                        ],
                        ..hop(3, Some("198.18.1.3"))
                    },
                    hop(4, Some("198.51.100.10")),
                ],
            },
            PathVerdict {
                class: VerdictClass::Indeterminate,
                countries: vec![],
                foreign_countries: vec![],
                foreign_asns: vec![],
                violation: false,
                path_id: "0".into(),
                explanation: "x".into(),
                suspect_countries: vec![],
                anomalies: vec![],
                claims: Vec::new(),
                confidence: None,
                exchanges: Vec::new(),
            },
        );
        let text = table(&record);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with(" TTL  Name                   Host "),
            "{text}"
        );
        assert!(
            lines[2].starts_with("  1.  198.18.1.2             198.18.1.2 "),
            "{text}"
        );
        assert!(
            lines[3].starts_with("  2.  ???                    ??? "),
            "{text}"
        );
        assert!(
            lines[4].starts_with("  3.  core1.jnb.example.net  198.18.1.3 "),
            "{text}"
        );
        assert_eq!(lines[5], "      [MPLS: Lbl 24001 TC 0 S 0 TTL 1]", "{text}");
        assert_eq!(lines[6], "      [MPLS: Lbl 16 TC 5 S 1 TTL 254]", "{text}");
        assert!(lines[7].starts_with("  4.  198.51.100.10 "), "{text}");
        assert!(text.contains("100.0%"), "{text}");
        assert!(text.contains("verdict: indeterminate"));
    }
}
