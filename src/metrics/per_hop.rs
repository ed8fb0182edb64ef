//! Per-hop latency and loss, and the destination's round-trip-time
//! histogram: the opt-in families that turn each path into an mtr-style
//! table in Prometheus.
//!
//! Which paths export them is the [`PerHop`] selection (`[metrics] per_hop`
//! and each target's `per_hop`). A selected path exports, for every hop
//! (TTL) of its last trace:
//!
//! - `transitwatch_hop_rtt_seconds{target,ttl,stat}`: the hop's best, mean
//!   and worst round-trip time (`stat` = `best`, `avg`, `worst`), only for
//!   hops that answered;
//! - `transitwatch_hop_probes_sent{target,ttl}`,
//!   `transitwatch_hop_probes_received{target,ttl}` and
//!   `transitwatch_hop_loss_ratio{target,ttl}` (0..1), silent hops included;
//!
//! exactly the trace record's figures (`hops[].rtt_ms` in seconds, `sent`,
//! `received`). The hop is labelled by its TTL, never by its address, so a
//! route change does not make new series: the address is in
//! `transitwatch_hop_info{target,ttl,addr,country,asn}`, joined on
//! `target` and `ttl`. A path thus has at most 6 series per probed TTL
//! (`[probe] max_ttl`), and they are the hops of its last trace only: a
//! shorter path drops its extra TTLs' series in the same step, a removed
//! target all of them.
//!
//! Each selected path also has `transitwatch_destination_rtt_seconds`, a
//! histogram of the destination's best round-trip time with one
//! observation per trace that reached it (the figure
//! `transitwatch_path_rtt_seconds` shows for the last trace), in
//! exponential classic buckets ([`DESTINATION_RTT_BUCKETS`], 0.25 ms to
//! 1.024 s, each twice the one before). Native (sparse) histograms need the
//! protobuf exposition, which neither the `prometheus` crate (0.14) nor this
//! endpoint (text format 0.0.4) speaks.
//!
//! These families are written straight to text from the same snapshot of
//! the per-target views as the other target families, not built as
//! `prometheus` protobuf messages: at 1000 targets they are tens of
//! thousands of series, and building a message (and its label strings) per
//! series would cost more than the whole rest of a scrape.

use crate::model::{Hop, TraceRecord};
use std::collections::HashSet;
use std::fmt::Write as _;

/// Upper bounds (seconds) of the `transitwatch_destination_rtt_seconds`
/// buckets: exponential, from 0.25 ms (a service in the same city) to
/// 1.024 s (beyond any terrestrial path), each twice the one before, so that
/// a quantile read from them is within a factor of √2 of the truth.
pub const DESTINATION_RTT_BUCKETS: [f64; 13] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

/// The `le` label values of those buckets, written once.
const BUCKET_LABELS: [&str; 13] = [
    "0.00025", "0.0005", "0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128",
    "0.256", "0.512", "1.024",
];

/// Family names and help texts, in the order a scrape lists them.
const RTT: (&str, &str) = (
    "transitwatch_hop_rtt_seconds",
    "Round-trip time of each hop (TTL) of the path's last trace: best, avg (mean) and worst \
     of its replies (stat); only hops that answered. The hop's address is in transitwatch_hop_info.",
);
const SENT: (&str, &str) = (
    "transitwatch_hop_probes_sent",
    "Probes sent with each TTL in the path's last trace.",
);
const RECEIVED: (&str, &str) = (
    "transitwatch_hop_probes_received",
    "Replies received for each TTL in the path's last trace.",
);
const LOSS: (&str, &str) = (
    "transitwatch_hop_loss_ratio",
    "Share (0..1) of each TTL's probes unanswered in the path's last trace. Loss at an \
     intermediate hop that does not carry on to later hops is most often the router \
     rate-limiting its ICMP replies, not loss on the path.",
);
const HISTOGRAM: (&str, &str) = (
    "transitwatch_destination_rtt_seconds",
    "Best round-trip time of the destination, one observation per trace of the path that \
     reached it.",
);

/// Each family's name, help and labels, for the registry's record of
/// names taken.
pub(super) const FAMILIES: [(&str, &str, &[&str]); 5] = [
    (RTT.0, RTT.1, &["target", "ttl", "stat"]),
    (SENT.0, SENT.1, &["target", "ttl"]),
    (RECEIVED.0, RECEIVED.1, &["target", "ttl"]),
    (LOSS.0, LOSS.1, &["target", "ttl"]),
    (HISTOGRAM.0, HISTOGRAM.1, &["target"]),
];

/// Which paths export the per-hop families.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PerHop {
    /// Configured target names that export them (each of their paths).
    pub targets: HashSet<String>,
    /// Whether the name servers' dependency paths (`dns:NAME/...`) do.
    pub dependency_paths: bool,
}

impl PerHop {
    /// Whether the path labelled `target` (`name`, `name/ipv4`,
    /// `dns:NAME/ipv4`) exports the per-hop families.
    #[must_use]
    pub fn covers(&self, target: &str) -> bool {
        let name = super::configured_name(target);
        if crate::model::is_dependency_target(name) {
            self.dependency_paths
        } else {
            self.targets.contains(name)
        }
    }
}

/// One hop's figures, as its record gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HopFigures {
    ttl: u8,
    sent: u32,
    received: u32,
    /// Best, mean and worst round-trip time in seconds; `None` for a silent
    /// hop.
    rtt: Option<[f64; 3]>,
}

/// The figures of every hop of a record, in TTL order.
pub(super) fn hop_figures(hops: &[Hop]) -> Box<[HopFigures]> {
    hops.iter()
        .map(|hop| HopFigures {
            ttl: hop.ttl,
            sent: hop.sent,
            received: hop.received,
            rtt: hop
                .rtt_ms
                .map(|r| [r.best / 1000.0, r.avg / 1000.0, r.worst / 1000.0]),
        })
        .collect()
}

/// The destination's best round-trip time in seconds, when it answered.
pub(super) fn destination_rtt(record: &TraceRecord) -> Option<f64> {
    record
        .trace
        .destination_hop()
        .and_then(|hop| hop.rtt_ms)
        .map(|r| r.best / 1000.0)
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// A classic histogram's state. Replaced, never mutated, like the views
/// that hold it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct RttHistogram {
    /// Observations at or below each bound of [`DESTINATION_RTT_BUCKETS`]
    /// (not cumulative; summed when written).
    buckets: [u64; DESTINATION_RTT_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl RttHistogram {
    /// This histogram with one more observation.
    pub(super) fn with(&self, seconds: f64) -> Self {
        let mut next = self.clone();
        if let Some(i) = DESTINATION_RTT_BUCKETS.iter().position(|b| seconds <= *b) {
            next.buckets[i] += 1;
        }
        next.count += 1;
        next.sum += seconds;
        next
    }
}

/// What one selected path contributes to a scrape.
pub(super) struct PathHops<'a> {
    pub(super) target: &'a str,
    pub(super) hops: &'a [HopFigures],
    pub(super) histogram: Option<&'a RttHistogram>,
}

/// Appends the per-hop families of `paths` (in scrape order) to `out`, in
/// the text exposition format 0.0.4. Families without series are left out.
pub(super) fn write(out: &mut String, paths: &[PathHops<'_>]) {
    let has_rtt = paths.iter().any(|p| p.hops.iter().any(|h| h.rtt.is_some()));
    if has_rtt {
        header(out, RTT, "gauge");
        for path in paths {
            for hop in path.hops {
                let Some(rtt) = hop.rtt else { continue };
                for (stat, value) in ["best", "avg", "worst"].into_iter().zip(rtt) {
                    series(out, RTT.0, path.target, hop.ttl);
                    out.push_str(",stat=\"");
                    out.push_str(stat);
                    out.push_str("\"} ");
                    number(out, value);
                }
            }
        }
    }
    if paths.iter().any(|p| !p.hops.is_empty()) {
        header(out, SENT, "gauge");
        for path in paths {
            for hop in path.hops {
                series(out, SENT.0, path.target, hop.ttl);
                out.push_str("} ");
                integer(out, hop.sent);
            }
        }
        header(out, RECEIVED, "gauge");
        for path in paths {
            for hop in path.hops {
                series(out, RECEIVED.0, path.target, hop.ttl);
                out.push_str("} ");
                integer(out, hop.received);
            }
        }
    }
    if paths.iter().any(|p| p.hops.iter().any(|h| h.sent > 0)) {
        header(out, LOSS, "gauge");
        for path in paths {
            for hop in path.hops.iter().filter(|h| h.sent > 0) {
                series(out, LOSS.0, path.target, hop.ttl);
                out.push_str("} ");
                let lost = hop.sent.saturating_sub(hop.received);
                number(out, f64::from(lost) / f64::from(hop.sent));
            }
        }
    }
    if paths.iter().any(|p| p.histogram.is_some()) {
        header(out, HISTOGRAM, "histogram");
        for path in paths {
            let Some(h) = path.histogram else { continue };
            let mut cumulative = 0;
            for (le, n) in BUCKET_LABELS.iter().zip(h.buckets) {
                cumulative += n;
                bucket(out, path.target, le, cumulative);
            }
            bucket(out, path.target, "+Inf", h.count);
            let _ = write!(out, "{}_sum{{target=\"", HISTOGRAM.0);
            label_value(out, path.target);
            out.push_str("\"} ");
            number(out, h.sum);
            let _ = write!(out, "{}_count{{target=\"", HISTOGRAM.0);
            label_value(out, path.target);
            out.push_str("\"} ");
            integer(out, h.count);
        }
    }
}

/// A family's `# HELP` (backslashes and line feeds escaped, as the text
/// format requires) and `# TYPE` lines.
pub(super) fn header(out: &mut String, (name, help): (&str, &str), kind: &str) {
    let _ = write!(out, "# HELP {name} ");
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    let _ = writeln!(out, "\n# TYPE {name} {kind}");
}

/// `name{target="...",ttl="N"` (the caller closes the brace).
fn series(out: &mut String, name: &str, target: &str, ttl: u8) {
    out.push_str(name);
    out.push_str("{target=\"");
    label_value(out, target);
    out.push_str("\",ttl=\"");
    out.push_str(itoa::Buffer::new().format(ttl));
    out.push('"');
}

fn bucket(out: &mut String, target: &str, le: &str, cumulative: u64) {
    out.push_str(HISTOGRAM.0);
    out.push_str("_bucket{target=\"");
    label_value(out, target);
    out.push_str("\",le=\"");
    out.push_str(le);
    out.push_str("\"} ");
    integer(out, cumulative);
}

/// A label value, escaped as the text format requires.
pub(super) fn label_value(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn integer<N: itoa::Integer>(out: &mut String, n: N) {
    out.push_str(itoa::Buffer::new().format(n));
    out.push('\n');
}

/// A sample value: the shortest text that reads back as the same `f64`.
pub(super) fn number(out: &mut String, value: f64) {
    let _ = writeln!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(ttl: u8, sent: u32, received: u32, rtt: Option<[f64; 3]>) -> HopFigures {
        HopFigures {
            ttl,
            sent,
            received,
            rtt,
        }
    }

    #[test]
    fn buckets_double_and_are_written_as_their_decimal_text() {
        for pair in DESTINATION_RTT_BUCKETS.windows(2) {
            assert_eq!(pair[1], pair[0] * 2.0);
        }
        for (bound, label) in DESTINATION_RTT_BUCKETS.iter().zip(BUCKET_LABELS) {
            assert_eq!(bound.to_string(), label);
        }
    }

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket_and_inf() {
        let h = RttHistogram::default()
            .with(0.000_1)
            .with(0.003)
            .with(0.004)
            .with(5.0);
        assert_eq!(h.count, 4);
        assert_eq!(h.buckets[0], 1); // 0.1 ms ≤ 0.25 ms
        assert_eq!(h.buckets[4], 2); // 3 ms and 4 ms ≤ 4 ms
        assert_eq!(h.buckets.iter().sum::<u64>(), 3); // 5 s only in +Inf
        let mut out = String::new();
        write(
            &mut out,
            &[PathHops {
                target: "a",
                hops: &[],
                histogram: Some(&h),
            }],
        );
        assert!(out.contains(
            "transitwatch_destination_rtt_seconds_bucket{target=\"a\",le=\"0.004\"} 3\n"
        ));
        assert!(out
            .contains("transitwatch_destination_rtt_seconds_bucket{target=\"a\",le=\"+Inf\"} 4\n"));
        assert!(out.contains("transitwatch_destination_rtt_seconds_count{target=\"a\"} 4\n"));
        assert!(!out.contains("transitwatch_hop_probes_sent"));
    }

    #[test]
    fn hops_are_written_with_loss_and_silent_hops_have_no_rtt() {
        let hops = [
            figures(1, 3, 3, Some([0.001, 0.002, 0.003])),
            figures(2, 3, 0, None),
            figures(3, 4, 3, Some([0.01, 0.011, 0.012])),
        ];
        let mut out = String::new();
        write(
            &mut out,
            &[PathHops {
                target: "x\"y",
                hops: &hops,
                histogram: None,
            }],
        );
        let expect = [
            "transitwatch_hop_rtt_seconds{target=\"x\\\"y\",ttl=\"1\",stat=\"best\"} 0.001\n",
            "transitwatch_hop_rtt_seconds{target=\"x\\\"y\",ttl=\"3\",stat=\"worst\"} 0.012\n",
            "transitwatch_hop_probes_sent{target=\"x\\\"y\",ttl=\"2\"} 3\n",
            "transitwatch_hop_probes_received{target=\"x\\\"y\",ttl=\"2\"} 0\n",
            "transitwatch_hop_loss_ratio{target=\"x\\\"y\",ttl=\"2\"} 1\n",
            "transitwatch_hop_loss_ratio{target=\"x\\\"y\",ttl=\"3\"} 0.25\n",
            "transitwatch_hop_loss_ratio{target=\"x\\\"y\",ttl=\"1\"} 0\n",
        ];
        for line in expect {
            assert!(out.contains(line), "{line} not in\n{out}");
        }
        assert!(!out.contains("ttl=\"2\",stat"));
        assert_eq!(out.matches("# TYPE").count(), 4);
        assert!(!out.contains("destination_rtt"));
    }

    #[test]
    fn the_selection_covers_every_path_of_a_target_and_dependency_paths_by_flag() {
        let per_hop = PerHop {
            targets: ["gov".to_string()].into_iter().collect(),
            dependency_paths: false,
        };
        assert!(per_hop.covers("gov"));
        assert!(per_hop.covers("gov/ipv6"));
        assert!(!per_hop.covers("bank"));
        assert!(!per_hop.covers("dns:ns1.gov.ls/ipv4"));
        let all = PerHop {
            dependency_paths: true,
            ..per_hop
        };
        assert!(all.covers("dns:ns1.gov.ls/ipv4"));
    }
}
