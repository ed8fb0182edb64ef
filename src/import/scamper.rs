//! scamper `trace` objects → [`Trace`]; `tracelb` records handed to
//! [`tracelb`](super::tracelb).
//!
//! Reads the JSON that `scamper -O json` and `sc_warts2json` write, one
//! object per line, including M-Lab's traceroute-caller files:
//!
//! - `{"type":"trace", ...}` gives one trace;
//! - `{"type":"tracelb", ...}` (MDA) gives one trace per path through its
//!   graph of load-balanced paths (see [`tracelb`](super::tracelb));
//! - other scamper record types (`cycle-start`, `cycle-stop`, `cycle-def`,
//!   `list`, `ping`, `dealias`, `neighbourdisc`, `tbit`, `sting`, `sniff`,
//!   `host`, `http`, `udpprobe`) give no trace; the measurements among them
//!   are counted by type ([`Stream::skipped`]);
//! - an object without `type` is M-Lab's metadata line (with `UUID`), or
//!   M-Lab's single-object form `{"Metadata":…,"CycleStart":…,"Trace":…,
//!   "CycleStop":…}`, whose `Trace` is imported;
//! - any other `type`, or an object without `type` that is neither of those,
//!   is an error: scamper's set of record types is closed.
//!
//! Structure. Records that give no trace are still checked for what scamper
//! (and M-Lab's traceroute-caller, for its metadata) always writes, and a
//! record that breaks it is an error of its line:
//!
//! - cycles: a `cycle-stop` closes a `cycle-start` seen before it with the
//!   same `list_name` and `id`; a cycle is not started twice while open.
//!   (A cycle left open at the end is not reported: a run cut short leaves
//!   one, and its records are whole.)
//! - M-Lab metadata: `UUID` is a non-empty string (it names the measurement).
//! - JSON Lines: scamper writes one record on every line, so an empty line
//!   is an error (in a JSON array, whitespace is just whitespace).
//!
//! Mapping: target `dst` (named after it), vantage `src`, protocol from
//! `method` (`icmp-echo*` → ICMP, `udp*` → UDP, `tcp*` → TCP), destination
//! port from `dport` for UDP/TCP, start from `start.sec`.
//!
//! Hops. scamper lists replies only, each with its `probe_ttl`; replies are
//! grouped by `probe_ttl`. An `addr` of `*` or the empty string is no
//! responder (M-Lab writes those for anonymised hops). scamper keeps the
//! replies of TTL `t` in slot `t` of a table of `hop_count` slots and writes
//! the slots from `firsthop` (default 1) on, so a reply whose `probe_ttl` lies
//! outside `firsthop..=hop_count` cannot come from scamper: the record is an
//! error. The hop list runs from `firsthop` to `hop_count` (or the highest
//! `probe_ttl` when `hop_count` is absent), silent TTLs filled in. `sent` is
//! the highest `probe_id` at the TTL (scamper numbers the attempts of a TTL
//! from 1 and moves on after an answer), at least the number of replies; a
//! silent TTL sent `attempts` probes (1 when unknown). `received` counts
//! replies with an `rtt`.
//!
//! A reply's `icmpext` (RFC 4884 extensions as scamper writes them:
//! objects `ie_cn`, `ie_ct`, `mpls_labels` of `mpls_label`, `mpls_exp`,
//! `mpls_s`, `mpls_ttl`) gives the hop its MPLS label stack: that of the
//! first reply of the hop's main responder with an MPLS object (class 1).
//! An `icmpext` of another shape is ignored.
//!
//! `reached` is true when `stop_reason` is `COMPLETED` or a hop answered
//! from `dst`.

use super::tracelb::{self, TracelbCounts};
use super::{json_error, rank_addrs, rtt_stats, timestamp, Converted};
use crate::model::{Hop, HopGeo, MplsLabel, Protocol, TargetRef, Trace, VantageRef};
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// scamper record types that give no trace (`trace` and `tracelb` do).
const SKIPPED_TYPES: &[&str] = &[
    "cycle-start",
    "cycle-stop",
    "cycle-def",
    "list",
    "ping",
    "dealias",
    "neighbourdisc",
    "tbit",
    "sting",
    "sniff",
    "host",
    "http",
    "udpprobe",
];

/// The fields of a scamper `trace` object this importer reads.
#[derive(Debug, Deserialize)]
struct ScamperTrace {
    method: String,
    src: String,
    dst: String,
    start: Start,
    stop_reason: Option<String>,
    hop_count: Option<u32>,
    attempts: Option<u32>,
    firsthop: Option<u32>,
    dport: Option<u16>,
    #[serde(default)]
    hops: Vec<ScamperHop>,
}

/// `start` of a trace.
#[derive(Debug, Deserialize)]
struct Start {
    sec: i64,
}

/// One reply of a trace.
#[derive(Debug, Deserialize)]
struct ScamperHop {
    addr: String,
    probe_ttl: u32,
    probe_id: Option<u32>,
    rtt: Option<f64>,
    /// Read leniently by [`mpls`]: an odd one is ignored, not an error.
    icmpext: Option<Value>,
}

/// The MPLS label stack of a reply's `icmpext`: the first object of class
/// 1 with labels; empty when there is none.
fn mpls(icmpext: Option<&Value>) -> Vec<MplsLabel> {
    let field = |v: &Value, name: &str| v.get(name).and_then(Value::as_u64).unwrap_or(0);
    let narrow = |n: u64| u8::try_from(n).unwrap_or(u8::MAX);
    icmpext
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| field(o, "ie_cn") == 1)
        .filter_map(|o| o.get("mpls_labels").and_then(Value::as_array))
        .find(|labels| !labels.is_empty())
        .map(|labels| {
            labels
                .iter()
                .map(|l| {
                    MplsLabel::new(
                        u32::try_from(field(l, "mpls_label")).unwrap_or(MplsLabel::MAX_LABEL),
                        narrow(field(l, "mpls_exp")),
                        field(l, "mpls_s") != 0,
                        narrow(field(l, "mpls_ttl")),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The fields of a `cycle-start` or `cycle-stop` that name the cycle.
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct Cycle {
    list_name: Option<String>,
    id: Option<u64>,
}

impl Cycle {
    fn describe(&self) -> String {
        let id = self
            .id
            .map_or_else(|| "without id".to_string(), |i| i.to_string());
        match &self.list_name {
            Some(list) => format!("{id} of list `{list}`"),
            None => id,
        }
    }
}

/// What the reader remembers between the records of one scamper stream.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// Cycles started and not yet stopped.
    open_cycles: Vec<Cycle>,
    /// Measurements read and not analysed, by record type (`tracelb`,
    /// `ping`, ...; the cycle and list records that frame them are not
    /// counted: they are no measurements).
    skipped: std::collections::BTreeMap<&'static str, usize>,
    /// What the `tracelb` records came to.
    tracelb: TracelbCounts,
}

impl Stream {
    /// Count a measurement record that is not analysed.
    fn skip(&mut self, kind: &'static str) {
        *self.skipped.entry(kind).or_default() += 1;
    }

    /// The measurements read and not analysed so far, by record type.
    pub(crate) fn skipped(&self) -> &std::collections::BTreeMap<&'static str, usize> {
        &self.skipped
    }

    /// What the `tracelb` records read so far came to.
    pub(crate) const fn tracelb(&self) -> TracelbCounts {
        self.tracelb
    }

    /// Convert one raw record, starting on `line`: a `trace` gives one
    /// trace, a `tracelb` one per path, other records none.
    pub(super) fn convert(&mut self, line: usize, bytes: &[u8]) -> Result<Vec<Converted>, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
        let Value::Object(object) = &value else {
            return Err("a record must be a JSON object".to_string());
        };
        match object.get("type") {
            Some(Value::String(kind)) => match kind.as_str() {
                "trace" => convert_trace(value).map(|c| vec![c]),
                "cycle-start" => self.start_cycle(value).map(|()| Vec::new()),
                "cycle-stop" => self.stop_cycle(value).map(|()| Vec::new()),
                "tracelb" => {
                    let record = u64::try_from(self.tracelb.records + 1).unwrap_or(u64::MAX);
                    let paths = tracelb::convert(&value, record, line, tracelb::MAX_PATHS)?;
                    self.tracelb.records += 1;
                    self.tracelb.paths += paths.len();
                    let capped = paths.iter().any(|p| p.tracelb.is_some_and(|t| t.capped));
                    self.tracelb.capped += usize::from(capped);
                    self.tracelb.without_paths += usize::from(paths.is_empty());
                    Ok(paths)
                }
                // The records that frame measurements are no measurements.
                "cycle-def" | "list" => Ok(Vec::new()),
                kind => match SKIPPED_TYPES.iter().copied().find(|t| *t == kind) {
                    Some(measurement) => {
                        self.skip(measurement);
                        Ok(Vec::new())
                    }
                    None => Err(format!("unknown scamper record type `{kind}`")),
                },
            },
            Some(other) => Err(format!("field `type` must be a string, not {other}")),
            None => convert_mlab(value).map(|c| c.into_iter().collect()),
        }
    }

    fn start_cycle(&mut self, value: Value) -> Result<(), String> {
        let cycle: Cycle =
            serde_json::from_value(value).map_err(|e| format!("invalid cycle-start: {e}"))?;
        if self.open_cycles.contains(&cycle) {
            return Err(format!(
                "cycle-start of cycle {} while that cycle is already open",
                cycle.describe()
            ));
        }
        self.open_cycles.push(cycle);
        Ok(())
    }

    fn stop_cycle(&mut self, value: Value) -> Result<(), String> {
        let cycle: Cycle =
            serde_json::from_value(value).map_err(|e| format!("invalid cycle-stop: {e}"))?;
        match self.open_cycles.iter().position(|c| *c == cycle) {
            Some(i) => {
                self.open_cycles.remove(i);
                Ok(())
            }
            None if self.open_cycles.is_empty() => Err(format!(
                "cycle-stop of cycle {} without a cycle-start before it",
                cycle.describe()
            )),
            None => Err(format!(
                "cycle-stop of cycle {} does not match the open cycle {}",
                cycle.describe(),
                self.open_cycles
                    .iter()
                    .map(Cycle::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// An object without `type`: M-Lab's metadata line or single-object form.
fn convert_mlab(value: Value) -> Result<Option<Converted>, String> {
    let Value::Object(mut object) = value else {
        return Err("a record must be a JSON object".to_string());
    };
    if let Some(trace) = object.remove("Trace") {
        if let Some(metadata) = object.get("Metadata") {
            check_uuid(metadata).map_err(|e| format!("field `Metadata`: {e}"))?;
        }
        match trace.get("type") {
            Some(Value::String(kind)) if kind == "trace" => {}
            other => {
                return Err(format!(
                    "field `Trace`: `type` must be \"trace\", not {}",
                    other.map_or_else(|| "missing".to_string(), ToString::to_string)
                ))
            }
        }
        return convert_trace(trace)
            .map(Some)
            .map_err(|e| format!("field `Trace`: {e}"));
    }
    if object.contains_key("UUID") {
        return check_uuid(&Value::Object(object)).map(|()| None);
    }
    Err("record has no `type`".to_string())
}

/// An M-Lab metadata object names its measurement by a non-empty `UUID`.
fn check_uuid(metadata: &Value) -> Result<(), String> {
    match metadata.get("UUID") {
        Some(Value::String(uuid)) if !uuid.trim().is_empty() => Ok(()),
        Some(Value::String(_)) => Err("M-Lab metadata with an empty `UUID`".to_string()),
        Some(other) => Err(format!("field `UUID` must be a string, not {other}")),
        None => Err("M-Lab metadata without `UUID`".to_string()),
    }
}

/// Convert a record known to be a `trace`.
fn convert_trace(value: Value) -> Result<Converted, String> {
    let trace: ScamperTrace =
        serde_json::from_value(value).map_err(|e| format!("invalid trace: {e}"))?;
    let protocol = protocol(&trace.method)?;
    let dst: IpAddr = parse_addr(&trace.dst).map_err(|e| format!("field `dst`: {e}"))?;
    // `src` only names the vantage; it is checked like `dst` all the same.
    parse_addr(&trace.src).map_err(|e| format!("field `src`: {e}"))?;
    let started_at = timestamp(trace.start.sec).map_err(|e| format!("field `start.sec`: {e}"))?;

    let first = trace.firsthop.unwrap_or(1).max(1);
    let mut last = trace.hop_count.unwrap_or(0);
    for reply in &trace.hops {
        let ttl = reply.probe_ttl;
        if ttl == 0 || ttl > 255 {
            return Err(format!("hop with probe_ttl {ttl} outside 1-255"));
        }
        if ttl < first {
            return Err(format!(
                "hop with probe_ttl {ttl} before the trace's firsthop {first}"
            ));
        }
        if let Some(count) = trace.hop_count.filter(|&count| ttl > count) {
            return Err(format!(
                "hop with probe_ttl {ttl} beyond the trace's hop_count {count} (scamper keeps one slot per TTL up to hop_count)"
            ));
        }
        last = last.max(ttl);
    }
    let first =
        u8::try_from(first).map_err(|_| format!("field `firsthop`: {first} is beyond TTL 255"))?;
    let last = u8::try_from(last.min(255)).unwrap_or(u8::MAX);
    let attempts = trace.attempts.unwrap_or(1).max(1);

    let mut hops = Vec::new();
    for ttl in first..=last {
        let mut seen = Vec::new();
        let mut rtts = Vec::new();
        let mut replies = 0u32;
        let mut highest_probe = 0u32;
        let mut stacks: Vec<(IpAddr, Vec<MplsLabel>)> = Vec::new();
        for reply in trace.hops.iter().filter(|r| r.probe_ttl == u32::from(ttl)) {
            replies += 1;
            highest_probe = highest_probe.max(reply.probe_id.unwrap_or(0));
            if reply.addr.is_empty() || reply.addr == "*" {
                continue;
            }
            let addr = parse_addr(&reply.addr).map_err(|e| format!("hop at TTL {ttl}: {e}"))?;
            seen.push(addr);
            if let Some(rtt) = reply.rtt {
                rtts.push(rtt);
            }
            if !stacks.iter().any(|(a, _)| *a == addr) {
                let stack = mpls(reply.icmpext.as_ref());
                if !stack.is_empty() {
                    stacks.push((addr, stack));
                }
            }
        }
        let sent = if replies == 0 {
            attempts
        } else {
            highest_probe.max(replies)
        };
        let addrs = rank_addrs(&seen);
        let mpls = stacks
            .into_iter()
            .find(|(a, _)| addrs.first() == Some(a))
            .map(|(_, stack)| stack)
            .unwrap_or_default();
        hops.push(Hop {
            ttl,
            addr: addrs.first().copied(),
            addrs,
            sent,
            received: u32::try_from(rtts.len()).unwrap_or(u32::MAX),
            rtt_ms: rtt_stats(&rtts),
            geo: HopGeo::default(),
            hostname: None,
            mpls,
        });
    }
    let reached = trace.stop_reason.as_deref() == Some("COMPLETED")
        || hops.iter().any(|h| h.addrs.contains(&dst));
    let port = match protocol {
        Protocol::Icmp => None,
        Protocol::Udp | Protocol::Tcp => trace.dport,
    };
    Ok(Converted {
        trace: Trace {
            target: TargetRef {
                name: trace.dst.clone(),
                host: trace.dst.clone(),
                addr: Some(dst),
            },
            vantage: VantageRef {
                name: trace.src,
                country: None,
            },
            protocol,
            port,
            started_at,
            reached,
            hops,
        },
        prb_id: None,
        msm_id: None,
        late_replies: 0,
        tracelb: None,
    })
}

/// The probe protocol of a scamper `method` (`icmp-echo*` → ICMP, `udp*` →
/// UDP, `tcp*` → TCP).
pub(super) fn protocol(method: &str) -> Result<Protocol, String> {
    let lower = method.to_ascii_lowercase();
    if lower.starts_with("icmp") {
        Ok(Protocol::Icmp)
    } else if lower.starts_with("udp") {
        Ok(Protocol::Udp)
    } else if lower.starts_with("tcp") {
        Ok(Protocol::Tcp)
    } else {
        Err(format!("field `method`: unknown trace method `{method}`"))
    }
}

/// An address as scamper writes it, IPv4-mapped IPv6 unmapped to IPv4.
pub(super) fn parse_addr(text: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address"))?;
    Ok(match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{read, ImportError, Imported, InputFormat};
    use crate::model::MplsLabel;
    use std::io::Cursor;

    const TRACE: &str = r#"{"type":"trace","method":"udp-paris","src":"10.0.0.100","dst":"192.0.2.9","dport":33435,"stop_reason":"GAPLIMIT","start":{"sec":1638999963,"usec":5},"hop_count":4,"attempts":3,"firsthop":1,"hops":[{"addr":"10.0.0.1","probe_ttl":1,"probe_id":1,"rtt":0.5},{"addr":"10.0.0.3","probe_ttl":3,"probe_id":2,"rtt":4.0},{"addr":"*","probe_ttl":4,"probe_id":1,"rtt":1.0}]}"#;

    fn all(input: &str) -> Vec<Result<Imported, ImportError>> {
        read(Cursor::new(input.as_bytes().to_vec()), InputFormat::Scamper).collect()
    }

    #[test]
    fn trace_hops_are_filled_in_per_ttl() {
        let out = all(TRACE);
        let t = &out[0].as_ref().unwrap().trace;
        assert_eq!(t.protocol, crate::model::Protocol::Udp);
        assert_eq!(t.port, Some(33435));
        assert_eq!(t.vantage.name, "10.0.0.100");
        assert_eq!(t.started_at.to_string(), "2021-12-08T21:46:03Z");
        let ttls: Vec<u8> = t.hops.iter().map(|h| h.ttl).collect();
        assert_eq!(ttls, vec![1, 2, 3, 4]);
        assert_eq!((t.hops[0].sent, t.hops[0].received), (1, 1));
        assert!(t.hops[1].is_silent());
        assert_eq!(t.hops[1].sent, 3);
        assert_eq!(t.hops[2].sent, 2);
        assert!(t.hops[3].is_silent(), "`*` is no responder");
        assert!(!t.reached);
    }

    #[test]
    fn mpls_label_stacks_come_from_icmpext() {
        let line = r#"{"type":"trace","method":"icmp-echo-paris","src":"192.0.2.1","dst":"192.0.2.9","start":{"sec":1600000000},"hop_count":2,"hops":[{"addr":"198.18.0.1","probe_ttl":1,"probe_id":1,"rtt":1.0,"icmpext":[{"ie_cn":2,"ie_ct":1,"ie_dl":4},{"ie_cn":1,"ie_ct":1,"ie_dl":8,"mpls_labels":[{"mpls_ttl":1,"mpls_s":0,"mpls_exp":0,"mpls_label":102480},{"mpls_ttl":1,"mpls_s":1,"mpls_exp":3,"mpls_label":16743}]}]},{"addr":"192.0.2.9","probe_ttl":2,"probe_id":1,"rtt":2.0,"icmpext":"odd"}]}"#;
        let out = all(line);
        let t = &out[0].as_ref().unwrap().trace;
        assert_eq!(
            t.hops[0].mpls,
            vec![
                MplsLabel::new(102_480, 0, false, 1),
                MplsLabel::new(16743, 3, true, 1)
            ]
        );
        assert!(t.hops[1].mpls.is_empty());
    }

    /// The 1-based lines of the errors in `out`.
    fn error_lines(out: &[Result<Imported, ImportError>]) -> Vec<usize> {
        out.iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.line))
            .collect()
    }

    #[test]
    fn other_record_types_are_skipped_and_unknown_ones_are_errors() {
        let input = format!(
            "{{\"UUID\":\"x\"}}\n{{\"type\":\"cycle-start\"}}\n{{\"type\":\"ping\"}}\n{TRACE}\n{{\"type\":\"cycle-extra\"}}\n{{\"type\":\"trace\"}}\n{{\"a\":1}}\n{{\"type\":\"cycle-stop\"}}\n"
        );
        let out = all(&input);
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[0].as_ref().unwrap().line, 4);
        assert_eq!(error_lines(&out), vec![5, 6, 7]);
    }

    #[test]
    fn cycles_pair_up() {
        let start = |list: &str, id: u32| {
            format!(r#"{{"type":"cycle-start","list_name":"{list}","id":{id},"start_time":1}}"#)
        };
        let stop = |list: &str, id: u32| {
            format!(r#"{{"type":"cycle-stop","list_name":"{list}","id":{id},"stop_time":2}}"#)
        };
        let input = [
            start("a", 1),     // 1
            TRACE.to_string(), // 2
            stop("a", 1),      // 3
            stop("a", 1),      // 4: never (again) started
            start("b", 2),     // 5
            start("b", 2),     // 6: started twice
            stop("b", 3),      // 7: not the open cycle
            stop("b", 2),      // 8
            start("c", 4),     // 9: left open at the end, not reported
            TRACE.to_string(), // 10
        ]
        .join("\n");
        let out = all(&input);
        assert_eq!(error_lines(&out), vec![4, 6, 7], "{out:?}");
        let e = |line| {
            out.iter()
                .find_map(|r| r.as_ref().err().filter(|e| e.line == line))
                .unwrap()
        };
        assert!(e(4).message.contains("without a cycle-start"), "{}", e(4));
        assert!(e(6).message.contains("already open"), "{}", e(6));
        assert!(
            e(7).message
                .contains("does not match the open cycle 2 of list `b`"),
            "{}",
            e(7)
        );
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 2);
    }

    #[test]
    fn mlab_metadata_needs_a_uuid() {
        for bad in [r#"{"UUID":""}"#, r#"{"UUID":"  "}"#, r#"{"UUID":7}"#] {
            assert_eq!(error_lines(&all(bad)), vec![1], "{bad}");
        }
        let single = format!(r#"{{"Metadata":{{"UUID":""}},"Trace":{TRACE}}}"#);
        assert!(all(&single)[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("empty `UUID`"));
    }

    #[test]
    fn replies_outside_the_hop_table_are_errors() {
        for bad in [
            TRACE.replace(r#""probe_ttl":4"#, r#""probe_ttl":5"#),
            TRACE.replace(r#""firsthop":1"#, r#""firsthop":2"#),
        ] {
            let out = all(&bad);
            assert_eq!(error_lines(&out), vec![1], "{bad}");
        }
        // Without hop_count the replies decide how far the trace went.
        let out = all(&TRACE.replace(r#""hop_count":4,"#, ""));
        assert_eq!(out[0].as_ref().unwrap().trace.hops.len(), 4);
    }

    #[test]
    fn blank_lines_are_errors_in_json_lines_only() {
        let input = format!("\n{TRACE}\n\n  \n{TRACE}\n\n");
        let out = all(&input);
        assert_eq!(error_lines(&out), vec![1, 3, 4, 6], "{out:?}");
        assert!(out[0].as_ref().unwrap_err().message.contains("empty line"));
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 2);
        // Trailing spaces without a line break are no line.
        assert!(all(&format!("{TRACE}\n  ")).iter().all(Result::is_ok));
        // In a JSON array, line breaks are whitespace.
        let out = all(&format!("\n\n[\n\n{TRACE},\n\n{TRACE}\n\n]\n\n"));
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(Result::is_ok), "{out:?}");
    }

    #[test]
    fn mlab_single_object_form_and_mapped_addresses() {
        let inner = TRACE
            .replace("\"dst\":\"192.0.2.9\"", "\"dst\":\"::ffff:192.0.2.9\"")
            .replace("\"10.0.0.3\"", "\"::ffff:192.0.2.9\"");
        let input = format!("{{\"Metadata\":{{\"UUID\":\"u\"}},\"Trace\":{inner}}}");
        let out = all(&input);
        let t = &out[0].as_ref().unwrap().trace;
        assert_eq!(t.target.addr, Some("192.0.2.9".parse().unwrap()));
        assert!(t.reached, "the destination answered at TTL 3");
    }

    #[test]
    fn bad_methods_and_addresses_are_errors() {
        for bad in [
            TRACE.replace("udp-paris", "sctp"),
            TRACE.replace("\"192.0.2.9\"", "\"host.example\""),
            TRACE.replace("\"hop_count\":4", "\"hop_count\":\"4\""),
            TRACE.replace("\"probe_ttl\":4", "\"probe_ttl\":0"),
        ] {
            assert!(all(&bad)[0].is_err(), "{bad}");
        }
    }
}
