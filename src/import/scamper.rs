//! scamper `trace` objects → [`Trace`].
//!
//! Reads the JSON that `scamper -O json` and `sc_warts2json` write, one
//! object per line, including M-Lab's traceroute-caller files:
//!
//! - `{"type":"trace", ...}` gives one trace;
//! - other scamper record types (`cycle-start`, `cycle-stop`, `cycle-def`,
//!   `list`, `tracelb`, `ping`, `dealias`, `neighbourdisc`, `tbit`, `sting`,
//!   `sniff`, `host`, `http`, `udpprobe`) are skipped: `tracelb` (MDA) gives
//!   a graph of load-balanced paths, not one path per TTL;
//! - an object without `type` is M-Lab's metadata line (with `UUID`), skipped,
//!   or M-Lab's single-object form `{"Metadata":…,"CycleStart":…,"Trace":…,
//!   "CycleStop":…}`, whose `Trace` is imported;
//! - any other `type`, or an object without `type` that is neither of those,
//!   is an error: scamper's set of record types is closed.
//!
//! Mapping: target `dst` (named after it), vantage `src`, protocol from
//! `method` (`icmp-echo*` → ICMP, `udp*` → UDP, `tcp*` → TCP), destination
//! port from `dport` for UDP/TCP, start from `start.sec`.
//!
//! Hops. scamper lists replies only, each with its `probe_ttl`; replies are
//! grouped by `probe_ttl`. An `addr` of `*` or the empty string is no
//! responder (M-Lab writes those for anonymised hops). The hop list runs from
//! `firsthop` (default 1) to the larger of `hop_count` and the highest
//! `probe_ttl`, silent TTLs filled in (M-Lab's test files hold replies beyond
//! `hop_count`, so it is not taken as a bound). `sent` is the highest
//! `probe_id` at the TTL (scamper numbers the attempts of a TTL from 1 and
//! moves on after an answer), at least the number of replies; a silent TTL
//! sent `attempts` probes (1 when unknown). `received` counts replies with an `rtt`.
//!
//! `reached` is true when `stop_reason` is `COMPLETED` or a hop answered
//! from `dst`.

use super::{json_error, rank_addrs, rfc3339, rtt_stats, Converted};
use crate::model::{Hop, HopGeo, Protocol, TargetRef, Trace, VantageRef};
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// scamper record types that are not single traces.
const SKIPPED_TYPES: &[&str] = &[
    "cycle-start",
    "cycle-stop",
    "cycle-def",
    "list",
    "tracelb",
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
}

/// Convert one raw record; `Ok(None)` for records that are not traces.
pub(crate) fn convert(bytes: &[u8]) -> Result<Option<Converted>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    let Value::Object(object) = &value else {
        return Err("a record must be a JSON object".to_string());
    };
    match object.get("type") {
        Some(Value::String(kind)) if kind == "trace" => convert_trace(value).map(Some),
        Some(Value::String(kind)) if SKIPPED_TYPES.contains(&kind.as_str()) => Ok(None),
        Some(Value::String(kind)) => Err(format!("unknown scamper record type `{kind}`")),
        Some(other) => Err(format!("field `type` must be a string, not {other}")),
        None => match object.get("Trace") {
            Some(trace) => {
                convert(trace.to_string().as_bytes()).map_err(|e| format!("field `Trace`: {e}"))
            }
            None if object.contains_key("UUID") => Ok(None),
            None => Err("record has no `type`".to_string()),
        },
    }
}

/// Convert a record known to be a `trace`.
fn convert_trace(value: Value) -> Result<Converted, String> {
    let trace: ScamperTrace =
        serde_json::from_value(value).map_err(|e| format!("invalid trace: {e}"))?;
    let method = trace.method.to_ascii_lowercase();
    let protocol = if method.starts_with("icmp") {
        Protocol::Icmp
    } else if method.starts_with("udp") {
        Protocol::Udp
    } else if method.starts_with("tcp") {
        Protocol::Tcp
    } else {
        return Err(format!(
            "field `method`: unknown trace method `{}`",
            trace.method
        ));
    };
    let dst: IpAddr = parse_addr(&trace.dst).map_err(|e| format!("field `dst`: {e}"))?;
    // `src` only names the vantage; it is checked like `dst` all the same.
    parse_addr(&trace.src).map_err(|e| format!("field `src`: {e}"))?;
    let started_at = rfc3339(trace.start.sec).map_err(|e| format!("field `start.sec`: {e}"))?;

    let first = trace.firsthop.unwrap_or(1).max(1);
    let mut last = trace.hop_count.unwrap_or(0);
    for reply in &trace.hops {
        if reply.probe_ttl == 0 || reply.probe_ttl > 255 {
            return Err(format!(
                "hop with probe_ttl {} outside 1-255",
                reply.probe_ttl
            ));
        }
        last = last.max(reply.probe_ttl);
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
        }
        let sent = if replies == 0 {
            attempts
        } else {
            highest_probe.max(replies)
        };
        let addrs = rank_addrs(&seen);
        hops.push(Hop {
            ttl,
            addr: addrs.first().copied(),
            addrs,
            sent,
            received: u32::try_from(rtts.len()).unwrap_or(u32::MAX),
            rtt_ms: rtt_stats(&rtts),
            geo: HopGeo::default(),
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
        late_replies: 0,
    })
}

/// An address as scamper writes it, IPv4-mapped IPv6 unmapped to IPv4.
fn parse_addr(text: &str) -> Result<IpAddr, String> {
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
        assert_eq!(t.started_at, "2021-12-08T21:46:03Z");
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
    fn other_record_types_are_skipped_and_unknown_ones_are_errors() {
        let input = format!(
            "{{\"UUID\":\"x\"}}\n{{\"type\":\"cycle-start\"}}\n{{\"type\":\"tracelb\"}}\n{TRACE}\n{{\"type\":\"cycle-extra\"}}\n{{\"type\":\"trace\"}}\n{{\"a\":1}}\n"
        );
        let out = all(&input);
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[0].as_ref().unwrap().line, 4);
        let lines: Vec<usize> = out[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().line)
            .collect();
        assert_eq!(lines, vec![5, 6, 7]);
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
