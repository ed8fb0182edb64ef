//! RIPE Atlas traceroute results → [`Trace`].
//!
//! One result object (one probe, one run of a measurement) gives one trace:
//!
//! - target: `dst_addr`; when it is missing (firmware that failed to resolve
//!   `dst_name`), `dst_name` if it is an address literal, else the `edst`
//!   (the destination quoted back by a router) of the first reply carrying
//!   one. Failing all three the address is unknown (`None`, `null` in the
//!   record): the probe never learnt it, typically because name resolution
//!   failed (the result then has a single hop with only an `error`). Such a
//!   result is still a trace, not reached, judged from whatever hops it has.
//!   A `dst_addr` that is present but not an address is an error. The
//!   target name is `dst_name`, or `atlas-msm-{msm_id}` without one.
//! - vantage: `atlas-prb-{prb_id}`, country left to the caller.
//! - protocol from `proto`, start from `timestamp` (Unix seconds).
//!
//! Hops. Each entry of `result` is one TTL: its number is `hop`, or its
//! 1-based position in `result` when firmware left `hop` out. Entries with
//! the same number are merged; hops are ordered by number. Within a hop:
//!
//! - **Responder rule** (shared with `tests/tools/extract_atlas_hops.py`):
//!   a reply counts as a responder when it has `from`, has no `x` and no
//!   `late`. `addrs` are the distinct responders, most frequent first, and
//!   `addr` is the first of them.
//! - `x: "*"` is a probe that timed out: sent, not received.
//! - `late` replies answer an earlier probe after its timeout. They are not
//!   probes of this hop: not sent, not received, no address, no round-trip
//!   time; they are counted in [`Imported::late_replies`](super::Imported).
//! - `dup` replies are a second answer to the same probe: not sent again,
//!   not received again, no round-trip time, but their address is kept.
//! - `err`, `edst`, `ittl` and `ttl`/`size` are tolerated and not
//!   interpreted: an `err` reply still answered.
//! - `icmpext` (RFC 4884 extensions): the MPLS label stack of the first
//!   object with `mpls` entries (`label`, `exp`, `s`, `ttl`) becomes the
//!   hop's `mpls`, taken from the first reply of the hop's main responder
//!   that carries one. An `icmpext` of another shape is ignored, as before.
//! - `sent` is the number of entries that are neither late nor duplicates;
//!   `received` those with an `rtt`; `rtt_ms` best/mean/worst over those.
//! - An entry with only an `error` (e.g. "bind failed") is kept as a silent
//!   hop with nothing sent.
//!
//! **Hop 255.** After a run of silent hops, Atlas firmware sends a last probe
//! with the maximum TTL to see whether the destination answers at all, and
//! reports it as hop 255. It is kept as TTL 255: it is what was sent, it
//! carries the destination's reply when there is one (so `reached` reflects
//! it), and the gap before it is evident from the TTLs. Consumers that list
//! hops by TTL must not assume TTLs are contiguous for Atlas traces.
//!
//! `reached` is true when any hop has the target address among its
//! responders (never when the address is unknown).

use super::{json_error, rank_addrs_with, rtt_stats, timestamp, Converted};
use crate::model::{Hop, HopGeo, MplsLabel, Protocol, TargetRef, Trace, VantageRef};
use crate::units::Timestamp;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use std::net::IpAddr;

// The record types borrow their strings from the input line (`Cow`: owned
// only when a string holds escapes) and skip what they do not read, so a
// result is read without allocating a string per reply.

/// The fields of an Atlas traceroute result this importer reads.
#[derive(Debug, Deserialize)]
pub(super) struct AtlasResult<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) prb_id: u64,
    pub(super) msm_id: Option<u64>,
    pub(super) timestamp: i64,
    #[serde(borrow)]
    pub(super) proto: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) dst_addr: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) dst_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) result: Vec<AtlasHop<'a>>,
}

/// One entry of a result's `result` array.
#[derive(Debug, Deserialize)]
pub(super) struct AtlasHop<'a> {
    pub(super) hop: Option<u32>,
    #[serde(default, borrow)]
    pub(super) result: Vec<AtlasReply<'a>>,
}

/// One probe outcome within a hop; for `x`, `late` and `dup` only their
/// presence matters.
#[derive(Debug, Deserialize)]
pub(super) struct AtlasReply<'a> {
    pub(super) x: Option<IgnoredAny>,
    #[serde(borrow)]
    pub(super) from: Option<Cow<'a, str>>,
    pub(super) rtt: Option<f64>,
    pub(super) late: Option<IgnoredAny>,
    pub(super) dup: Option<IgnoredAny>,
    #[serde(borrow)]
    pub(super) edst: Option<Cow<'a, str>>,
    /// Read only for a responder that has no stack yet (see [`mpls`]).
    #[serde(borrow)]
    pub(super) icmpext: Option<&'a serde_json::value::RawValue>,
}

/// The fields of a result besides its hops.
pub(super) struct Header<'a> {
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) prb_id: u64,
    pub(super) msm_id: Option<u64>,
    pub(super) timestamp: i64,
    pub(super) proto: Cow<'a, str>,
    pub(super) dst_addr: Option<Cow<'a, str>>,
    pub(super) dst_name: Option<Cow<'a, str>>,
}

/// What the hop assembly reads of one reply.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReplyFields<'a> {
    pub(super) x: bool,
    pub(super) from: Option<&'a str>,
    pub(super) rtt: Option<f64>,
    pub(super) late: bool,
    pub(super) dup: bool,
    pub(super) edst: Option<&'a str>,
    /// The `icmpext` value as written (JSON text), when present.
    pub(super) icmpext: Option<&'a str>,
}

/// An `icmpext` object, as far as [`mpls`] reads it.
#[derive(Deserialize)]
struct IcmpExt {
    #[serde(default)]
    obj: Vec<IcmpExtObject>,
}

#[derive(Deserialize)]
struct IcmpExtObject {
    class: Option<u8>,
    #[serde(default)]
    mpls: Vec<AtlasMpls>,
}

#[derive(Deserialize)]
struct AtlasMpls {
    #[serde(default)]
    label: u32,
    #[serde(default)]
    exp: u8,
    #[serde(default)]
    s: u8,
    #[serde(default)]
    ttl: u8,
}

/// The MPLS label stack in an `icmpext` value (JSON text): that of its
/// first MPLS object (class 1, or no class given) with entries; empty when
/// there is none or the value has another shape.
pub(crate) fn mpls(icmpext: &str) -> Vec<MplsLabel> {
    let Ok(ext) = serde_json::from_str::<IcmpExt>(icmpext) else {
        return Vec::new();
    };
    ext.obj
        .into_iter()
        .find(|o| o.class.unwrap_or(1) == 1 && !o.mpls.is_empty())
        .map(|o| {
            o.mpls
                .iter()
                .map(|m| MplsLabel::new(m.label, m.exp, m.s != 0, m.ttl))
                .collect()
        })
        .unwrap_or_default()
}

/// A hop being assembled from one or more entries with the same number.
#[derive(Debug, Default)]
struct HopAcc {
    seen: Vec<IpAddr>,
    rtts: Vec<f64>,
    sent: u32,
    /// The first label stack of each responder that quoted one.
    mpls: Vec<(IpAddr, Vec<MplsLabel>)>,
}

/// The hops of the result being converted, fed entry by entry and reply by
/// reply (by the scanner or from serde_json's reading). Kept from result to
/// result so that its buffers are allocated once, not per hop.
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    /// Hops by TTL in order of first appearance; only `used` are current.
    hops: Vec<(u8, HopAcc)>,
    used: usize,
    late_replies: u32,
    /// The first reply's `edst` that is an address.
    first_edst: Option<IpAddr>,
    /// Responder counts of one hop, for ranking.
    counts: Vec<(IpAddr, usize)>,
}

impl Assembly {
    fn clear(&mut self) {
        self.used = 0;
        self.late_replies = 0;
        self.first_edst = None;
    }

    /// The slot of the hop numbered `number` (an entry's `hop`, or its
    /// 1-based position).
    pub(super) fn entry(&mut self, number: u32) -> Result<usize, String> {
        let ttl = u8::try_from(number).map_err(|_| format!("hop {number} is beyond TTL 255"))?;
        if let Some(i) = self.hops[..self.used].iter().position(|(t, _)| *t == ttl) {
            return Ok(i);
        }
        if self.used == self.hops.len() {
            self.hops.push((ttl, HopAcc::default()));
        } else {
            let (t, acc) = &mut self.hops[self.used];
            *t = ttl;
            acc.seen.clear();
            acc.rtts.clear();
            acc.sent = 0;
            acc.mpls.clear();
        }
        self.used += 1;
        Ok(self.used - 1)
    }

    /// One reply of an entry of hop `number`, in `slot`.
    pub(super) fn reply(
        &mut self,
        slot: usize,
        number: u32,
        reply: &ReplyFields<'_>,
    ) -> Result<(), String> {
        if self.first_edst.is_none() {
            self.first_edst = reply.edst.and_then(|e| e.parse().ok());
        }
        if reply.late {
            self.late_replies += 1;
            return Ok(());
        }
        let acc = &mut self.hops[slot].1;
        if !reply.dup {
            acc.sent += 1;
        }
        if reply.x {
            return Ok(());
        }
        if let Some(from) = reply.from {
            let addr = crate::ip_text::parse(from)
                .ok_or_else(|| format!("hop {number}: `from` `{from}` is not an IP address"))?;
            acc.seen.push(addr);
            if let Some(ext) = reply.icmpext {
                if !acc.mpls.iter().any(|(a, _)| *a == addr) {
                    let stack = mpls(ext);
                    if !stack.is_empty() {
                        acc.mpls.push((addr, stack));
                    }
                }
            }
        }
        if let (Some(rtt), false) = (reply.rtt, reply.dup) {
            acc.rtts.push(rtt);
        }
        Ok(())
    }
}

impl Header<'_> {
    /// The checks of a result's own fields: kind, protocol, start.
    fn check(&self) -> Result<(Protocol, Timestamp), String> {
        if let Some(kind) = self.kind.as_deref() {
            if kind != "traceroute" {
                return Err(format!("a `{kind}` result, not a traceroute"));
            }
        }
        let protocol: Protocol = self
            .proto
            .parse()
            .map_err(|e| format!("field `proto`: {e}"))?;
        let started_at =
            timestamp(self.timestamp).map_err(|e| format!("field `timestamp`: {e}"))?;
        Ok((protocol, started_at))
    }
}

/// Convert one raw result; `assembly` is working space.
pub(super) fn convert(bytes: &[u8], assembly: &mut Assembly) -> Result<Converted, String> {
    // The scanner reads plain lines; serde_json everything else, and gives
    // the error message naming the field when a line is wrong.
    convert_scanned(bytes, assembly).unwrap_or_else(|| convert_parsed(bytes, assembly))
}

/// [`convert`] through the scanner; `None` when it gives up on the line.
pub(super) fn convert_scanned(
    bytes: &[u8],
    assembly: &mut Assembly,
) -> Option<Result<Converted, String>> {
    assembly.clear();
    let header = super::atlas_scan::scan(bytes, assembly)?;
    Some(
        header
            .check()
            .and_then(|(protocol, started_at)| finish(&header, protocol, started_at, assembly)),
    )
}

/// [`convert`] through serde_json.
pub(super) fn convert_parsed(bytes: &[u8], assembly: &mut Assembly) -> Result<Converted, String> {
    assembly.clear();
    let result: AtlasResult = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    let header = Header {
        kind: result.kind,
        prb_id: result.prb_id,
        msm_id: result.msm_id,
        timestamp: result.timestamp,
        proto: result.proto,
        dst_addr: result.dst_addr,
        dst_name: result.dst_name,
    };
    let (protocol, started_at) = header.check()?;
    for (index, entry) in result.result.iter().enumerate() {
        let number = match entry.hop {
            Some(n) => n,
            None => u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        let slot = assembly.entry(number)?;
        for reply in &entry.result {
            let fields = ReplyFields {
                x: reply.x.is_some(),
                from: reply.from.as_deref(),
                rtt: reply.rtt,
                late: reply.late.is_some(),
                dup: reply.dup.is_some(),
                edst: reply.edst.as_deref(),
                icmpext: reply.icmpext.map(serde_json::value::RawValue::get),
            };
            assembly.reply(slot, number, &fields)?;
        }
    }
    finish(&header, protocol, started_at, assembly)
}

/// The trace of a result whose hops are assembled.
fn finish(
    header: &Header<'_>,
    protocol: Protocol,
    started_at: Timestamp,
    assembly: &mut Assembly,
) -> Result<Converted, String> {
    let Assembly {
        hops, used, counts, ..
    } = assembly;
    let hops = &mut hops[..*used];
    hops.sort_by_key(|(ttl, _)| *ttl);

    let target_addr = target_addr(header, assembly.first_edst)?;
    let hops: Vec<Hop> = hops
        .iter()
        .map(|(ttl, acc)| {
            let addrs = rank_addrs_with(&acc.seen, counts);
            let mpls = acc
                .mpls
                .iter()
                .find(|(a, _)| addrs.first() == Some(a))
                .map(|(_, stack)| stack.clone())
                .unwrap_or_default();
            Hop {
                ttl: *ttl,
                addr: addrs.first().copied(),
                addrs,
                sent: acc.sent,
                received: u32::try_from(acc.rtts.len()).unwrap_or(u32::MAX),
                rtt_ms: rtt_stats(&acc.rtts),
                geo: HopGeo::default(),
                hostname: None,
                mpls,
            }
        })
        .collect();
    let reached = target_addr.is_some_and(|dst| hops.iter().any(|h| h.addrs.contains(&dst)));

    let addr_text = || target_addr.map(|a| a.to_string()).unwrap_or_default();
    let name = match (&header.dst_name, header.msm_id) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(msm)) => format!("atlas-msm-{msm}"),
        _ => addr_text(),
    };
    let host = header
        .dst_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map_or_else(addr_text, ToString::to_string);
    Ok(Converted {
        trace: Trace {
            target: TargetRef {
                name,
                host,
                addr: target_addr,
            },
            vantage: VantageRef {
                name: format!("atlas-prb-{}", header.prb_id),
                country: None,
            },
            protocol,
            port: None,
            started_at,
            reached,
            hops,
        },
        prb_id: Some(header.prb_id),
        msm_id: header.msm_id,
        late_replies: assembly.late_replies,
        tracelb: None,
    })
}

/// The destination address of a result (see the module docs for the
/// order); `None` when the result never learnt it.
fn target_addr(header: &Header<'_>, first_edst: Option<IpAddr>) -> Result<Option<IpAddr>, String> {
    if let Some(addr) = header.dst_addr.as_deref() {
        return addr
            .parse()
            .map(Some)
            .map_err(|_| format!("field `dst_addr`: `{addr}` is not an IP address"));
    }
    if let Some(addr) = header.dst_name.as_deref().and_then(|n| n.parse().ok()) {
        return Ok(Some(addr));
    }
    Ok(first_edst)
}

#[cfg(test)]
mod tests {
    use super::super::{read, InputFormat};
    use crate::model::MplsLabel;
    use std::io::Cursor;

    fn one(json: &str) -> super::super::Imported {
        let mut out: Vec<_> = read(
            Cursor::new(json.replace('\n', "").into_bytes()),
            InputFormat::Atlas,
        )
        .collect();
        assert_eq!(out.len(), 1);
        out.remove(0).unwrap()
    }

    #[test]
    fn timeouts_count_as_sent_but_not_received() {
        let got = one(
            r#"{"prb_id":7,"msm_id":9,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"x":"*"},{"from":"10.0.0.1","rtt":2.0},{"x":"*"}]},{"hop":2,"result":[{"x":"*"},{"x":"*"},{"x":"*"}]}]}"#,
        );
        let t = &got.trace;
        assert_eq!(t.target.name, "atlas-msm-9");
        assert_eq!(t.vantage.name, "atlas-prb-7");
        assert_eq!(t.started_at.to_string(), "2020-09-13T12:26:40Z");
        assert_eq!((t.hops[0].sent, t.hops[0].received), (3, 1));
        assert_eq!(t.hops[0].addr, Some("10.0.0.1".parse().unwrap()));
        assert!(t.hops[1].is_silent());
        assert_eq!((t.hops[1].sent, t.hops[1].received), (3, 0));
        assert!(t.hops[1].rtt_ms.is_none());
        assert!(!t.reached);
    }

    #[test]
    fn hops_without_a_hop_key_take_their_position() {
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"UDP","dst_addr":"192.0.2.9","result":[{"result":[{"from":"10.0.0.1","rtt":1.0}]},{"result":[{"from":"192.0.2.9","rtt":2.0}]}]}"#,
        );
        let ttls: Vec<u8> = got.trace.hops.iter().map(|h| h.ttl).collect();
        assert_eq!(ttls, vec![1, 2]);
        assert!(got.trace.reached);
        assert_eq!(got.trace.protocol, crate::model::Protocol::Udp);
    }

    #[test]
    fn late_replies_are_noted_but_not_counted_and_dups_not_double_counted() {
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[
              {"hop":1,"result":[{"from":"10.0.0.1","rtt":1.0},{"from":"10.0.0.1","rtt":3.0},{"from":"10.0.0.1","rtt":2.0,"dup":true},{"x":"*"}]},
              {"hop":2,"result":[{"from":"10.9.9.9","late":1,"rtt":7000.0},{"from":"10.0.0.2","rtt":4.0,"err":"H"},{"from":"10.0.0.8","late":2},{"x":"*"},{"x":"*"}]}]}"#,
        );
        assert_eq!(got.late_replies, 2);
        let h1 = &got.trace.hops[0];
        assert_eq!((h1.sent, h1.received), (3, 2));
        let rtt = h1.rtt_ms.unwrap();
        assert_eq!((rtt.best, rtt.avg, rtt.worst), (1.0, 2.0, 3.0));
        let h2 = &got.trace.hops[1];
        assert_eq!((h2.sent, h2.received), (3, 1));
        assert_eq!(
            h2.addrs,
            vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(h2.rtt_ms.unwrap().worst, 4.0);
    }

    #[test]
    fn mpls_stacks_come_from_the_main_responder_s_icmpext() {
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[
              {"hop":1,"result":[{"from":"10.0.0.7","rtt":1.0,"icmpext":{"version":2,"rfc4884":0,"obj":[{"class":1,"type":1,"mpls":[{"exp":0,"label":9,"s":1,"ttl":1}]}]}},
                {"from":"10.0.0.1","rtt":1.0},
                {"from":"10.0.0.1","rtt":1.0,"icmpext":{"version":2,"rfc4884":1,"obj":[{"class":1,"type":1,"mpls":[{"exp":0,"label":24005,"s":0,"ttl":1},{"exp":5,"label":16,"s":1,"ttl":255}]}]}},
                {"from":"10.0.0.1","rtt":1.0,"icmpext":{"version":2,"rfc4884":1,"obj":[{"class":1,"type":1,"mpls":[{"exp":0,"label":1,"s":1,"ttl":1}]}]}}]},
              {"hop":2,"result":[{"from":"192.0.2.9","rtt":2.0,"icmpext":{"obj":"odd"}}]}]}"#,
        );
        let h1 = &got.trace.hops[0];
        assert_eq!(h1.addr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            h1.mpls,
            vec![
                MplsLabel::new(24005, 0, false, 1),
                MplsLabel::new(16, 5, true, 255)
            ]
        );
        assert!(got.trace.hops[1].mpls.is_empty());
        let record = serde_json::to_value(&got.trace).unwrap();
        assert_eq!(
            record["hops"][0]["mpls"][1],
            serde_json::json!({"label": 16, "tc": 5, "s": true, "ttl": 255})
        );
        assert!(record["hops"][1].get("mpls").is_none());
    }

    #[test]
    fn hop_255_is_kept_and_can_reach_the_destination() {
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"x":"*"}]},{"hop":255,"result":[{"from":"192.0.2.9","rtt":9.0}]}]}"#,
        );
        let ttls: Vec<u8> = got.trace.hops.iter().map(|h| h.ttl).collect();
        assert_eq!(ttls, vec![1, 255]);
        assert!(got.trace.reached);
    }

    #[test]
    fn most_frequent_responder_comes_first() {
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"from":"10.0.0.1","rtt":1.0},{"from":"10.0.0.2","rtt":1.0},{"from":"10.0.0.2","rtt":1.0}]}]}"#,
        );
        let h = &got.trace.hops[0];
        assert_eq!(h.addr, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(h.addrs.len(), 2);
    }

    #[test]
    fn missing_destination_falls_back_or_stays_unknown() {
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_name":"2001:db8::1","result":[]}"#,
        );
        assert_eq!(got.trace.target.addr, Some("2001:db8::1".parse().unwrap()));
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_name":"x.example","result":[{"hop":1,"result":[{"from":"10.0.0.1","late":3,"edst":"192.0.2.7"}]}]}"#,
        );
        assert_eq!(got.trace.target.addr, Some("192.0.2.7".parse().unwrap()));
        // The probe never resolved the name: a trace without an address,
        // not reached, whose one hop sent nothing.
        let got = one(
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_name":"x.example","result":[{"error":"name resolution failed"}]}"#,
        );
        let t = &got.trace;
        assert_eq!(t.target.addr, None);
        assert_eq!(
            (t.target.name.as_str(), t.target.host.as_str()),
            ("x.example", "x.example")
        );
        assert!(!t.reached);
        assert_eq!(t.hops.len(), 1);
        assert!(t.hops[0].is_silent());
        assert_eq!(t.hops[0].sent, 0);
        assert!(t.destination_hop().is_none());
        // It reaches the record as `"addr": null`, the field kept.
        let record = serde_json::to_value(&got.trace).unwrap();
        assert!(record["target"]["addr"].is_null());
        assert!(record["target"].as_object().unwrap().contains_key("addr"));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_errors() {
        for bad in [
            r#"{"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[]}"#,
            r#"{"prb_id":"1","timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[]}"#,
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"SCTP","dst_addr":"192.0.2.9","result":[]}"#,
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[{"hop":256,"result":[]}]}"#,
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"from":"nope","rtt":1}]}]}"#,
            r#"{"prb_id":1,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","type":"ping","result":[]}"#,
            r#"[1,2]"#,
        ] {
            let out: Vec<_> = read(
                Cursor::new(format!("{bad}\n").into_bytes()),
                InputFormat::Atlas,
            )
            .collect();
            assert!(out.iter().all(Result::is_err), "{bad}: {out:?}");
        }
    }
}
