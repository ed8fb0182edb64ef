//! Stored traces as RIPE Atlas traceroute results, so Atlas tooling (and
//! `transitwatch analyze --input-format atlas`) reads our traces.
//!
//! One result object per trace, one per line (the Atlas API also serves
//! results as one JSON array; JSON Lines is what its streaming and
//! `analyze` read, and either splits record by record). Fields:
//!
//! | field | value |
//! |---|---|
//! | `type` | `"traceroute"` |
//! | `fw` | `5080`: the result layout of current probe firmware (4460 and later), which parsers key their reading on |
//! | `af` | 4 or 6, from the destination address |
//! | `dst_addr`, `dst_name` | the traced address (left out when a trace has none); the target's host as configured |
//! | `proto` | `ICMP`, `UDP` or `TCP` |
//! | `timestamp`, `endtime` | the trace's start; start plus its duration, rounded up to a second (the start when the duration is unknown) |
//! | `msm_id` | a stable id of the target path and protocol: the first 31 bits of SHA-256 of `PATH_KEY/PROTOCOL`, so all results of one path share it |
//! | `prb_id` | a stable id of the vantage point, likewise from its name |
//! | `paris_id` | `0`: each probe of a TTL travels its own flow (fixed across TTLs), not one Paris flow for all |
//! | `size` | the probe packet size, when stored |
//! | `result` | one entry `{hop, result}` per TTL (see below) |
//! | `transitwatch` | not Atlas: `{id, target, path_key, vantage}` to join the result back to the JSONL and CSV exports; Atlas tooling ignores it |
//!
//! `from` and `src_addr` (the vantage's public and source address) are left
//! out: a trace record does not carry them.
//!
//! **Replies.** A record keeps per hop the probes sent and received, the
//! responders (most frequent first) and best/average/worst RTT, not each
//! reply, so the replies are synthesized to give back exactly those:
//!
//! - `received` replies `{from, rtt}`: the main responder answers all but one
//!   reply per other responder, each other responder one, in the record's
//!   order (so "most frequent first" ranks them the same); more responders
//!   than replies (only possible in imported traces) add `dup` replies that
//!   carry an address and nothing else;
//! - their RTTs are, in order, the best, `received - 2` copies of the value
//!   that restores the average (rounded to the microsecond, like Atlas), and
//!   the worst; one reply has the best, two the best and the worst. RTTs are
//!   not tied to responders: a record does not say which answered when;
//! - then `sent - received` timeouts `{"x": "*"}`;
//! - a hop's MPLS label stack goes in the main responder's first reply, as
//!   Atlas writes it: `icmpext` `{version: 2, rfc4884: 1, obj: [{class: 1,
//!   type: 1, mpls: [{exp, label, s, ttl}]}]}`.
//!
//! Reading the result back therefore gives the same TTLs, responders,
//! probes sent and received, best and worst RTT, and the average to within
//! a microsecond, hence the same verdict and path id.

use crate::model::{Hop, MplsLabel, Protocol, Trace};
use crate::store::StoredTrace;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The firmware version written in `fw`.
pub const FIRMWARE: u32 = 5080;

/// The RIPE Atlas result of one stored trace.
#[must_use]
pub fn result(stored: &StoredTrace) -> Value {
    let record = &stored.record;
    let trace = &record.trace;
    let start = trace.started_at.unix();
    let end = start.saturating_add(
        stored
            .duration_ms
            .map_or(0, |ms| i64::try_from(ms.div_ceil(1000)).unwrap_or(0)),
    );
    let mut out = Map::new();
    out.insert("type".into(), json!("traceroute"));
    out.insert("fw".into(), json!(FIRMWARE));
    out.insert("af".into(), json!(family(trace)));
    if let Some(addr) = destination(trace) {
        out.insert("dst_addr".into(), json!(addr.to_string()));
    }
    out.insert("dst_name".into(), json!(trace.target.host));
    out.insert("proto".into(), json!(proto(trace.protocol)));
    out.insert("timestamp".into(), json!(start));
    out.insert("endtime".into(), json!(end));
    out.insert(
        "msm_id".into(),
        json!(stable_id(&format!(
            "{}/{}",
            stored.path_key,
            trace.protocol.as_str()
        ))),
    );
    out.insert("prb_id".into(), json!(stable_id(&trace.vantage.name)));
    out.insert("paris_id".into(), json!(0));
    if let Some(size) = stored.packet_size {
        out.insert("size".into(), json!(size));
    }
    let hops: Vec<Value> = trace
        .hops
        .iter()
        .map(|hop| json!({ "hop": hop.ttl, "result": replies(hop) }))
        .collect();
    out.insert("result".into(), Value::Array(hops));
    out.insert(
        "transitwatch".into(),
        json!({
            "id": stored.id,
            "target": trace.target.name,
            "path_key": stored.path_key,
            "vantage": trace.vantage.name,
        }),
    );
    Value::Object(out)
}

/// The destination address, when the trace knows it (`dst_addr` is left
/// out otherwise, as Atlas does for a name that never resolved). Every use
/// of the address goes through here.
fn destination(trace: &Trace) -> Option<IpAddr> {
    trace.target.addr
}

/// 4 or 6: the destination's family, else that of the first responder.
fn family(trace: &Trace) -> u8 {
    let addr = destination(trace).or_else(|| trace.hops.iter().find_map(|h| h.addr));
    if addr.is_some_and(|a| a.is_ipv6()) {
        6
    } else {
        4
    }
}

const fn proto(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Icmp => "ICMP",
        Protocol::Udp => "UDP",
        Protocol::Tcp => "TCP",
    }
}

/// A positive 31-bit id derived from `name`.
fn stable_id(name: &str) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff
}

/// The synthesized replies of one hop (see the module docs).
fn replies(hop: &Hop) -> Vec<Value> {
    let received = usize::try_from(hop.received).unwrap_or(0);
    let rtts = rtts(hop, received);
    let mut out = Vec::new();
    // Responders of the received replies, main responder first.
    let others = hop.addrs.len().saturating_sub(1);
    let main_count = received.saturating_sub(others);
    let mut from: Vec<Option<IpAddr>> = Vec::with_capacity(received);
    if let Some(main) = hop.addrs.first() {
        from.extend(std::iter::repeat_n(Some(*main), main_count.max(1)));
        from.extend(hop.addrs.iter().skip(1).map(|a| Some(*a)));
    }
    let dups = from.split_off(from.len().min(received));
    from.resize(received, None);
    for (i, (addr, rtt)) in from.into_iter().zip(rtts).enumerate() {
        let mut reply = Map::new();
        if let Some(addr) = addr {
            reply.insert("from".into(), json!(addr.to_string()));
        }
        reply.insert("rtt".into(), json!(rtt));
        if i == 0 && addr.is_some() && addr == hop.addr && !hop.mpls.is_empty() {
            reply.insert("icmpext".into(), icmpext(&hop.mpls));
        }
        out.push(Value::Object(reply));
    }
    for addr in dups.into_iter().flatten() {
        out.push(json!({ "from": addr.to_string(), "dup": true }));
    }
    let lost = hop.sent.saturating_sub(hop.received);
    out.extend((0..lost).map(|_| json!({ "x": "*" })));
    out
}

/// A label stack as Atlas's `icmpext`.
fn icmpext(stack: &[MplsLabel]) -> Value {
    let entries: Vec<Value> = stack
        .iter()
        .map(|l| json!({"exp": l.tc, "label": l.label, "s": u8::from(l.s), "ttl": l.ttl}))
        .collect();
    json!({"version": 2, "rfc4884": 1, "obj": [{"class": 1, "type": 1, "mpls": entries}]})
}

/// `received` RTTs with the hop's best, worst and (nearly) its average.
fn rtts(hop: &Hop, received: usize) -> Vec<f64> {
    let Some(rtt) = hop.rtt_ms else {
        return Vec::new();
    };
    match received {
        0 => Vec::new(),
        1 => vec![rtt.best],
        2 => vec![rtt.best, rtt.worst],
        n => {
            #[allow(clippy::cast_precision_loss)] // reply counts are tiny
            let (all, middle) = (n as f64, (n - 2) as f64);
            let mid = ((all * rtt.avg - rtt.best - rtt.worst) / middle).clamp(rtt.best, rtt.worst);
            let mid = (mid * 1000.0).round() / 1000.0;
            let mut v = vec![rtt.best];
            v.extend(std::iter::repeat_n(mid, n - 2));
            v.push(rtt.worst);
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HopGeo, RttMs};

    fn hop(addrs: &[&str], sent: u32, received: u32, rtt: Option<(f64, f64, f64)>) -> Hop {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        Hop {
            ttl: 3,
            addr: addrs.first().copied(),
            addrs,
            sent,
            received,
            rtt_ms: rtt.map(|(best, avg, worst)| RttMs { best, avg, worst }),
            geo: HopGeo::default(),
            hostname: None,
            mpls: Vec::new(),
        }
    }

    #[test]
    fn replies_restore_counts_responders_and_rtts() {
        let h = hop(&["10.0.0.2", "10.0.0.1"], 4, 3, Some((1.0, 2.0, 4.0)));
        let r = replies(&h);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], json!({"from": "10.0.0.2", "rtt": 1.0}));
        assert_eq!(r[1], json!({"from": "10.0.0.2", "rtt": 1.0}));
        assert_eq!(r[2], json!({"from": "10.0.0.1", "rtt": 4.0}));
        assert_eq!(r[3], json!({"x": "*"}));
    }

    #[test]
    fn silent_hops_are_all_timeouts_and_extra_responders_dups() {
        let r = replies(&hop(&[], 3, 0, None));
        assert_eq!(r, vec![json!({"x": "*"}); 3]);
        let r = replies(&hop(&["10.0.0.1", "10.0.0.2"], 1, 1, Some((5.0, 5.0, 5.0))));
        assert_eq!(
            r,
            vec![
                json!({"from": "10.0.0.1", "rtt": 5.0}),
                json!({"from": "10.0.0.2", "dup": true}),
            ]
        );
    }

    #[test]
    fn the_label_stack_goes_in_the_main_responder_s_first_reply_and_back() {
        let stack = vec![
            MplsLabel::new(24001, 0, false, 1),
            MplsLabel::new(16, 5, true, 1),
        ];
        let h = Hop {
            mpls: stack.clone(),
            ..hop(&["10.0.0.2", "10.0.0.1"], 3, 3, Some((1.0, 2.0, 4.0)))
        };
        let r = replies(&h);
        assert_eq!(
            r[0]["icmpext"]["obj"][0]["mpls"][1],
            json!({"exp": 5, "label": 16, "s": 1, "ttl": 1})
        );
        assert!(r[1..].iter().all(|reply| reply.get("icmpext").is_none()));
        let ext = serde_json::to_string(&r[0]["icmpext"]).unwrap();
        assert_eq!(crate::import::atlas::mpls(&ext), stack);
    }

    #[test]
    fn stable_ids_are_positive_and_differ() {
        assert!(stable_id("a") <= 0x7fff_ffff);
        assert_ne!(stable_id("gov/icmp"), stable_id("gov/udp"));
        assert_eq!(stable_id("x"), stable_id("x"));
    }
}
