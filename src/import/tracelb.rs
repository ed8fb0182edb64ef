//! scamper `tracelb` (MDA) records → one [`Trace`] per path.
//!
//! A `tracelb` record is the graph of load-balanced paths that scamper's
//! multipath detection algorithm found, as `scamper -O json` and
//! `sc_warts2json` write it: `src`, `dst`, `method`, `start`, `firsthop`,
//! and `nodes`, each with its `addr`, `linkc` and `links`. scamper leaves a
//! node without links (the destination, a dead end) out of `nodes`, so such
//! a node exists only as the end of a link. The shape of `links` follows
//! scamper's writer:
//!
//! - `linkc` > 1: `links` holds one list of `linkc` link objects, each
//!   `{"addr": next node, "probes": [...]}`: the node fans out.
//! - `linkc` = 1: `links` holds one list per TTL of the link. All but the
//!   last are the hops in between (a gap: routers the algorithm did not
//!   resolve into nodes), each listing every address that answered there
//!   and `{"addr":"*"}` when some probes got no answer. The last one is
//!   the next node, `[{"addr": next node, "probes": [...]}]`, or, when the
//!   link ran into silence, `[{"addr":"*"}]` (older scamper writes the last
//!   hop of the gap instead; either way the link has no next node).
//!
//! A probe carries its `ttl` and its `replies`, each with an `rtt` in ms.
//! An `addr` of `*` or the empty string is no responder (M-Lab writes those
//! for anonymised hops).
//!
//! Paths. The walk starts at the first node (scamper writes the first hop's
//! node first) and follows every link, in the record's order, until a link
//! has no next node, a next node has no links, or a next node is already on
//! the path (a cycle: the repeated node ends the path). Each walk is one
//! path, one [`Trace`]: the first node at TTL `firsthop` (default 1), then
//! per link its gap hops and its next node. A hop's TTL is its probes' `ttl`
//! when that lies beyond the hop before it, else one more than that hop's,
//! and TTLs skipped between are silent hops, so the hops run one per TTL as
//! in any trace. A gap hop keeps every address that answered there (most
//! replies first), as a TTL of an ordinary trace does; it never branches the
//! path, since the record does not say which flow met which address.
//! A record gives at most [`MAX_PATHS`] paths; one with more says so
//! ([`TracelbPath::capped`]). A record without nodes gives none.
//!
//! Counts. `sent` is the number of probes the record keeps for the hop,
//! `received` the number of its replies, and `rtt_ms` their round-trip
//! times. scamper does not write the probes that found the first node: it
//! counts as one probe sent and answered, without round-trip time. A hop
//! with no responder counts `attempts` probes sent (1 when unknown), as a
//! silent TTL of a `trace` does.
//!
//! Each path is judged as a trace of its own; [`TracelbPath`] names the
//! record (its count among the input's `tracelb` records, and its line), the
//! path, how many paths the record gave, and how the path ends
//! ([`PathEnd`]). `reached` is true when a hop answered from `dst`.
//!
//! Errors. A field of the wrong type, a missing required field, an address
//! that is not one, a node claiming `linkc` links it does not carry, a
//! probe TTL beyond 255: the record is an error naming the node, the link
//! and the field.

use super::scamper::{parse_addr, protocol};
use super::{rank_addrs, rtt_stats, timestamp, Converted};
use crate::model::{Hop, HopGeo, PathEnd, Protocol, TargetRef, Trace, TracelbPath, VantageRef};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;

/// The most paths one `tracelb` record gives.
pub const MAX_PATHS: usize = 64;

/// What a stream's `tracelb` records came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TracelbCounts {
    /// `tracelb` records read (errors not counted).
    pub records: usize,
    /// Paths they gave.
    pub paths: usize,
    /// Records with more paths than [`MAX_PATHS`].
    pub capped: usize,
    /// Records without nodes: nothing answered, no path.
    pub without_paths: usize,
}

/// The paths of one `tracelb` record: the `record`-th of its stream,
/// starting on `line`.
///
/// # Errors
/// What is wrong with the record, naming the node, link and field.
pub(super) fn convert(
    value: &Value,
    record: u64,
    line: usize,
    max_paths: usize,
) -> Result<Vec<Converted>, String> {
    let Value::Object(object) = value else {
        return Err("a record must be a JSON object".to_string());
    };
    let at = "tracelb";
    let method = string(object, "method", at)?;
    let protocol = protocol(method)?;
    let dst_text = string(object, "dst", at)?;
    let dst = parse_addr(dst_text).map_err(|e| format!("field `dst`: {e}"))?;
    let src = string(object, "src", at)?;
    parse_addr(src).map_err(|e| format!("field `src`: {e}"))?;
    let start = match object.get("start") {
        Some(Value::Object(start)) => start,
        Some(other) => return Err(format!("field `start` must be an object, not {other}")),
        None => return Err("tracelb: missing field `start`".to_string()),
    };
    let sec = start
        .get("sec")
        .and_then(Value::as_i64)
        .ok_or_else(|| "field `start.sec` must be an integer".to_string())?;
    let started_at = timestamp(sec).map_err(|e| format!("field `start.sec`: {e}"))?;
    let firsthop = opt_u32(object, "firsthop", at)?.unwrap_or(1).max(1);
    let firsthop = u8::try_from(firsthop)
        .map_err(|_| format!("field `firsthop`: {firsthop} is beyond TTL 255"))?;
    let attempts = opt_u32(object, "attempts", at)?.unwrap_or(1).max(1);
    let port = match protocol {
        Protocol::Icmp => None,
        Protocol::Udp | Protocol::Tcp => opt_u32(object, "dport", at)?
            .map(|p| u16::try_from(p).map_err(|_| format!("field `dport`: {p} is not a port")))
            .transpose()?,
    };
    let nodes = array(object, "nodes", at)?;
    let graph = Graph::read(nodes, attempts)?;
    let walk = graph.walk(firsthop, dst, max_paths)?;
    let paths = u32::try_from(walk.paths.len()).unwrap_or(u32::MAX);
    let template = Trace {
        target: TargetRef {
            name: dst_text.to_string(),
            host: dst_text.to_string(),
            addr: Some(dst),
        },
        vantage: VantageRef {
            name: src.to_string(),
            country: None,
        },
        protocol,
        port,
        started_at,
        reached: false,
        hops: Vec::new(),
    };
    Ok(walk
        .paths
        .into_iter()
        .zip(1u32..)
        .map(|((hops, end), path)| Converted {
            trace: Trace {
                reached: hops.iter().any(|h| h.addrs.contains(&dst)),
                hops,
                ..template.clone()
            },
            prb_id: None,
            msm_id: None,
            late_replies: 0,
            tracelb: Some(TracelbPath {
                record,
                line: u64::try_from(line).unwrap_or(u64::MAX),
                path,
                paths,
                capped: walk.capped,
                end,
            }),
        })
        .collect())
}

/// What answered at one TTL of a link, as the record keeps it.
#[derive(Debug, Clone)]
struct Seen {
    /// Every responding address, once per reply (once when the record keeps
    /// no probe for it).
    replies: Vec<IpAddr>,
    /// Round-trip times of the replies.
    rtts: Vec<f64>,
    /// Probes the record keeps.
    probes: u32,
    /// The probes' TTL, when they carry one.
    ttl: Option<u32>,
}

impl Seen {
    /// Nothing seen yet.
    const fn new() -> Self {
        Self {
            replies: Vec::new(),
            rtts: Vec::new(),
            probes: 0,
            ttl: None,
        }
    }

    /// The list of link objects at one TTL of a link, at `at`.
    fn read(entries: &[Value], at: &str) -> Result<Self, String> {
        if entries.is_empty() {
            return Err(format!("{at} is empty"));
        }
        let mut seen = Self::new();
        for (k, entry) in entries.iter().enumerate() {
            seen.add(entry, &format!("{at}[{k}]"))?;
        }
        Ok(seen)
    }

    /// Add one link object, at `at`.
    fn add(&mut self, entry: &Value, at: &str) -> Result<(), String> {
        let Value::Object(entry) = entry else {
            return Err(format!("{at} must be an object, not {entry}"));
        };
        let addr =
            address(string(entry, "addr", at)?).map_err(|e| format!("{at}: field `addr`: {e}"))?;
        let mut replies = 0usize;
        for (p, probe) in array(entry, "probes", at)?.iter().enumerate() {
            let at = format!("{at}.probes[{p}]");
            let Value::Object(probe) = probe else {
                return Err(format!("{at} must be an object, not {probe}"));
            };
            let ttl =
                opt_u32(probe, "ttl", &at)?.ok_or_else(|| format!("{at}: missing field `ttl`"))?;
            if ttl == 0 || ttl > 255 {
                return Err(format!("{at}: field `ttl`: {ttl} is outside 1-255"));
            }
            self.ttl = Some(self.ttl.map_or(ttl, |t| t.max(ttl)));
            self.probes += 1;
            for (r, reply) in array(probe, "replies", &at)?.iter().enumerate() {
                match reply.get("rtt") {
                    None | Some(Value::Null) => {}
                    Some(rtt) => {
                        let ms = rtt
                            .as_f64()
                            .filter(|v| v.is_finite() && *v >= 0.0)
                            .ok_or_else(|| {
                                format!(
                                    "{at}.replies[{r}]: field `rtt` must be a number of ms, not {rtt}"
                                )
                            })?;
                        // A reply without its address is no responder's.
                        if addr.is_some() {
                            self.rtts.push(ms);
                        }
                    }
                }
                replies += 1;
            }
        }
        if let Some(addr) = addr {
            // An address the record names answered at least once.
            for _ in 0..replies.max(1) {
                self.replies.push(addr);
            }
        }
        Ok(())
    }

    /// This TTL as a hop at `ttl`.
    fn hop(&self, ttl: u8, attempts: u32) -> Hop {
        let addrs = rank_addrs(&self.replies);
        let (sent, received) = if addrs.is_empty() {
            (self.probes.max(attempts), 0)
        } else {
            let received = u32::try_from(self.replies.len()).unwrap_or(u32::MAX);
            (self.probes.max(received), received)
        };
        Hop {
            ttl,
            addr: addrs.first().copied(),
            addrs,
            sent,
            received,
            rtt_ms: rtt_stats(&self.rtts),
            geo: HopGeo::default(),
            hostname: None,
            mpls: Vec::new(),
        }
    }
}

/// One link of a node: the hops in between, and the next node's TTL.
#[derive(Debug)]
struct Link {
    /// Hops between the node and the next one (gap hops).
    gaps: Vec<Seen>,
    /// The next node: its address and what the probes saw of it; `None`
    /// when the link has none (it ran into silence).
    to: Option<(IpAddr, Seen)>,
}

/// One node of the graph.
#[derive(Debug)]
struct Node {
    /// `None` for a node written as `*` (no address).
    addr: Option<IpAddr>,
    links: Vec<Link>,
}

/// The graph of a `tracelb` record.
#[derive(Debug)]
struct Graph {
    nodes: Vec<Node>,
    /// Address → the first node with it.
    index: HashMap<IpAddr, usize>,
    attempts: u32,
}

/// The paths of a graph, each with how it ends, and whether there were
/// more than the cap.
#[derive(Debug)]
struct Walk {
    paths: Vec<(Vec<Hop>, PathEnd)>,
    capped: bool,
}

/// A node on the walk's current path.
struct Frame {
    node: usize,
    /// The next of its links to follow.
    next: usize,
    /// The path's length before the hops that led to this node.
    mark: usize,
}

impl Graph {
    fn read(nodes: &[Value], attempts: u32) -> Result<Self, String> {
        let mut graph = Self {
            nodes: Vec::with_capacity(nodes.len()),
            index: HashMap::new(),
            attempts,
        };
        for (n, node) in nodes.iter().enumerate() {
            let Value::Object(node) = node else {
                return Err(format!("tracelb node {} must be an object", n + 1));
            };
            let name = format!("tracelb node {}", n + 1);
            let text = string(node, "addr", &name)?;
            let at = format!("{name} ({text})");
            let addr = address(text).map_err(|e| format!("{at}: field `addr`: {e}"))?;
            let linkc = opt_u32(node, "linkc", &at)?.unwrap_or(0);
            let links = array(node, "links", &at)?;
            let mut lists = Vec::with_capacity(links.len());
            for (l, list) in links.iter().enumerate() {
                match list {
                    Value::Array(list) => {
                        lists.push((format!("{at}: links[{l}]"), list.as_slice()))
                    }
                    other => return Err(format!("{at}: links[{l}] must be an array, not {other}")),
                }
            }
            let links = match (linkc, lists.as_slice()) {
                (0, []) => Vec::new(),
                (0, _) => return Err(format!("{at} carries links but has `linkc` 0")),
                (_, []) => return Err(format!("{at} has linkc {linkc} but carries no links")),
                (1, [.., (last_at, last)]) => {
                    let mut gaps = Vec::with_capacity(lists.len());
                    for (gap_at, gap) in &lists[..lists.len() - 1] {
                        gaps.push(Seen::read(gap, gap_at)?);
                    }
                    let end = Seen::read(last, last_at)?;
                    let to = match end.replies.first() {
                        Some(&next) if last.len() == 1 => Some((next, end)),
                        _ => {
                            gaps.push(end);
                            None
                        }
                    };
                    vec![Link { gaps, to }]
                }
                (_, [(list_at, list)]) if list.len() == linkc as usize => {
                    let mut fan = Vec::with_capacity(list.len());
                    for (k, entry) in list.iter().enumerate() {
                        let mut seen = Seen::new();
                        seen.add(entry, &format!("{list_at}[{k}]"))?;
                        fan.push(match seen.replies.first() {
                            Some(&next) => Link {
                                gaps: Vec::new(),
                                to: Some((next, seen)),
                            },
                            None => Link {
                                gaps: vec![seen],
                                to: None,
                            },
                        });
                    }
                    fan
                }
                _ => {
                    let carried = lists.first().map_or(0, |(_, list)| list.len());
                    return Err(format!(
                        "{at} has linkc {linkc} but carries {} (scamper writes a node's {linkc} links as one list of {linkc} link objects)",
                        if lists.len() == 1 {
                            format!("{carried} link object(s)")
                        } else {
                            format!("{} lists of link objects", lists.len())
                        }
                    ));
                }
            };
            if let Some(addr) = addr {
                graph.index.entry(addr).or_insert(n);
            }
            graph.nodes.push(Node { addr, links });
        }
        Ok(graph)
    }

    /// Every path from the first node, depth first, at most `max_paths`.
    fn walk(&self, firsthop: u8, dst: IpAddr, max_paths: usize) -> Result<Walk, String> {
        let mut walk = Walk {
            paths: Vec::new(),
            capped: false,
        };
        let Some(first) = self.nodes.first() else {
            return Ok(walk);
        };
        let mut hops = vec![Hop {
            ttl: firsthop,
            addr: first.addr,
            addrs: first.addr.into_iter().collect(),
            sent: if first.addr.is_some() {
                1
            } else {
                self.attempts
            },
            received: u32::from(first.addr.is_some()),
            rtt_ms: None,
            geo: HopGeo::default(),
            hostname: None,
            mpls: Vec::new(),
        }];
        // Which nodes are on the current path: a link back to one of them
        // is a cycle.
        let mut on_path = vec![false; self.nodes.len()];
        on_path[0] = true;
        let mut stack = vec![Frame {
            node: 0,
            next: 0,
            mark: 0,
        }];
        // Ends the current path; false once a path beyond the cap is found.
        let emit = |hops: &[Hop], end: Option<PathEnd>, walk: &mut Walk| -> bool {
            if walk.paths.len() == max_paths {
                walk.capped = true;
                return false;
            }
            let end = end.unwrap_or_else(|| match hops.last() {
                Some(hop) if hop.addrs.contains(&dst) => PathEnd::Destination,
                Some(hop) if hop.addr.is_some() => PathEnd::DeadEnd,
                _ => PathEnd::Silent,
            });
            walk.paths.push((hops.to_vec(), end));
            true
        };
        while let Some(frame) = stack.last_mut() {
            let node = &self.nodes[frame.node];
            if node.links.is_empty() {
                // A node written without links: the path ends there.
                let go_on = emit(&hops, None, &mut walk);
                if let Some(frame) = stack.pop() {
                    on_path[frame.node] = false;
                    hops.truncate(frame.mark);
                }
                if !go_on {
                    break;
                }
                continue;
            }
            let Some(link) = node.links.get(frame.next) else {
                if let Some(frame) = stack.pop() {
                    on_path[frame.node] = false;
                    hops.truncate(frame.mark);
                }
                continue;
            };
            frame.next += 1;
            let base = hops.len();
            for gap in &link.gaps {
                self.push(&mut hops, gap)?;
            }
            let Some((next, seen)) = &link.to else {
                let go_on = emit(&hops, None, &mut walk);
                hops.truncate(base);
                if !go_on {
                    break;
                }
                continue;
            };
            self.push(&mut hops, seen)?;
            match self.index.get(next) {
                Some(&n) if on_path[n] => {
                    let go_on = emit(&hops, Some(PathEnd::Loop), &mut walk);
                    hops.truncate(base);
                    if !go_on {
                        break;
                    }
                }
                Some(&n) => {
                    on_path[n] = true;
                    stack.push(Frame {
                        node: n,
                        next: 0,
                        mark: base,
                    });
                }
                // Not among the nodes: scamper leaves out nodes without
                // links, the destination among them.
                None => {
                    let go_on = emit(&hops, None, &mut walk);
                    hops.truncate(base);
                    if !go_on {
                        break;
                    }
                }
            }
        }
        Ok(walk)
    }

    /// Append what answered at one TTL of a link, with silent hops for the
    /// TTLs between.
    fn push(&self, hops: &mut Vec<Hop>, seen: &Seen) -> Result<(), String> {
        let previous = hops.last().map_or(0, |h| u32::from(h.ttl));
        let ttl = seen.ttl.filter(|&t| t > previous).unwrap_or(previous + 1);
        let ttl = u8::try_from(ttl).map_err(|_| {
            format!("a path through the graph runs beyond TTL 255 (after TTL {previous})")
        })?;
        for silent in (previous + 1)..u32::from(ttl) {
            // Within 1..255: below `ttl`.
            let silent = u8::try_from(silent).unwrap_or(u8::MAX);
            hops.push(Hop {
                ttl: silent,
                addr: None,
                addrs: Vec::new(),
                sent: self.attempts,
                received: 0,
                rtt_ms: None,
                geo: HopGeo::default(),
                hostname: None,
                mpls: Vec::new(),
            });
        }
        hops.push(seen.hop(ttl, self.attempts));
        Ok(())
    }
}

/// An address as scamper writes it; `None` for no responder (`*`, or the
/// empty string M-Lab writes for anonymised hops).
fn address(text: &str) -> Result<Option<IpAddr>, String> {
    if text.is_empty() || text == "*" {
        Ok(None)
    } else {
        parse_addr(text).map(Some)
    }
}

/// The string field `key` of the object at `at`.
fn string<'a>(object: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, String> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!("{at}: field `{key}` must be a string, not {other}")),
        None => Err(format!("{at}: missing field `{key}`")),
    }
}

/// The array field `key` of the object at `at`; absent is empty.
fn array<'a>(object: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a [Value], String> {
    match object.get(key) {
        None => Ok(&[]),
        Some(Value::Array(list)) => Ok(list),
        Some(other) => Err(format!("{at}: field `{key}` must be an array, not {other}")),
    }
}

/// The optional unsigned field `key` of the object at `at`.
fn opt_u32(object: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u32>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| format!("{at}: field `{key}` must be a whole number, not {value}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{read, ImportError, Imported, InputFormat};
    use crate::model::PathEnd;
    use std::io::Cursor;

    /// A `tracelb` record from 192.0.2.1 to 203.0.113.9 with `nodes`.
    fn record(nodes: &[String]) -> String {
        format!(
            r#"{{"type":"tracelb","version":"0.1","userid":0,"method":"icmp-echo","src":"192.0.2.1","dst":"203.0.113.9","start":{{"sec":1700000000,"usec":1,"ftime":"2023-11-14 22:13:20"}},"firsthop":1,"attempts":2,"nodec":{},"nodes":[{}]}}"#,
            nodes.len(),
            nodes.join(",")
        )
    }

    /// A link object to `addr`, probed at `ttl`, answered in `rtt` ms.
    fn to(addr: &str, ttl: u32, rtt: f64) -> String {
        format!(
            r#"{{"addr":"{addr}", "probes":[{{"tx":{{"sec":1, "usec":2}}, "replyc":1, "ttl":{ttl}, "attempt":0, "flowid":1, "replies":[{{"rx":{{"sec":1, "usec":9}}, "ttl":60, "rtt":{rtt:.3}, "icmp_type":11, "icmp_code":0, "icmp_q_tos":0, "icmp_q_ttl":1}}]}}]}}"#
        )
    }

    /// A node that fans out over `next` (scamper's form for `linkc` > 1).
    fn fan(addr: &str, next: &[String]) -> String {
        format!(
            r#"{{"addr":"{addr}", "q_ttl":1, "linkc":{}, "links":[[{}]]}}"#,
            next.len(),
            next.join(",")
        )
    }

    /// A node with one link: one list of link objects per TTL.
    fn chain(addr: &str, hops: &[&[String]]) -> String {
        let lists: Vec<String> = hops.iter().map(|h| format!("[{}]", h.join(","))).collect();
        format!(
            r#"{{"addr":"{addr}", "q_ttl":1, "linkc":1, "links":[{}]}}"#,
            lists.join(",")
        )
    }

    fn all(input: &str) -> Vec<Result<Imported, ImportError>> {
        read(Cursor::new(input.as_bytes().to_vec()), InputFormat::Scamper).collect()
    }

    fn paths(input: &str) -> Vec<Imported> {
        all(input)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    /// Each path's responders, `*` for a silent hop.
    fn hops(path: &Imported) -> Vec<String> {
        path.trace
            .hops
            .iter()
            .map(|h| h.addr.map_or_else(|| "*".to_string(), |a| a.to_string()))
            .collect()
    }

    const STAR: &str = r#"{"addr":"*"}"#;

    /// 198.51.100.1 → {.2, .3} → .4 → 203.0.113.9: two paths.
    fn diamond() -> String {
        record(&[
            fan(
                "198.51.100.1",
                &[to("198.51.100.2", 2, 2.0), to("198.51.100.3", 2, 4.0)],
            ),
            chain("198.51.100.2", &[&[to("198.51.100.4", 3, 5.0)]]),
            chain("198.51.100.3", &[&[to("198.51.100.4", 3, 7.0)]]),
            chain("198.51.100.4", &[&[to("203.0.113.9", 4, 9.0)]]),
        ])
    }

    #[test]
    fn a_diamond_gives_both_paths_each_reaching_the_destination() {
        let out = paths(&diamond());
        assert_eq!(out.len(), 2);
        assert_eq!(
            hops(&out[0]),
            [
                "198.51.100.1",
                "198.51.100.2",
                "198.51.100.4",
                "203.0.113.9"
            ]
        );
        assert_eq!(
            hops(&out[1]),
            [
                "198.51.100.1",
                "198.51.100.3",
                "198.51.100.4",
                "203.0.113.9"
            ]
        );
        for (i, p) in out.iter().enumerate() {
            let t = p.tracelb.unwrap();
            assert_eq!((t.record, t.line, t.path, t.paths), (1, 1, i as u32 + 1, 2));
            assert!(!t.capped);
            assert_eq!(t.end, PathEnd::Destination);
            assert!(p.trace.reached);
            assert_eq!(p.line, 1);
            let ttls: Vec<u8> = p.trace.hops.iter().map(|h| h.ttl).collect();
            assert_eq!(ttls, [1, 2, 3, 4]);
            assert_eq!(p.trace.vantage.name, "192.0.2.1");
            assert_eq!(p.trace.target.addr, Some("203.0.113.9".parse().unwrap()));
            assert_eq!(p.trace.protocol, crate::model::Protocol::Icmp);
        }
        // The first node's probes are not in the record; the others' are.
        let first = &out[0].trace.hops[0];
        assert_eq!((first.sent, first.received, first.rtt_ms), (1, 1, None));
        let second = &out[1].trace.hops[1];
        assert_eq!((second.sent, second.received), (1, 1));
        assert_eq!(second.rtt_ms.unwrap().avg, 4.0);
    }

    #[test]
    fn a_cycle_ends_the_path_at_the_repeated_node() {
        let input = record(&[
            chain("198.51.100.1", &[&[to("198.51.100.2", 2, 1.0)]]),
            chain("198.51.100.2", &[&[to("198.51.100.3", 3, 1.0)]]),
            fan(
                "198.51.100.3",
                &[to("198.51.100.2", 4, 1.0), to("203.0.113.9", 4, 1.0)],
            ),
        ]);
        let out = paths(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(
            hops(&out[0]),
            [
                "198.51.100.1",
                "198.51.100.2",
                "198.51.100.3",
                "198.51.100.2"
            ]
        );
        assert_eq!(out[0].tracelb.unwrap().end, PathEnd::Loop);
        assert_eq!(out[1].tracelb.unwrap().end, PathEnd::Destination);
        // A node linking to itself, and a graph that is one cycle.
        let input = record(&[
            chain("198.51.100.1", &[&[to("198.51.100.2", 2, 1.0)]]),
            chain("198.51.100.2", &[&[to("198.51.100.1", 3, 1.0)]]),
        ]);
        let out = paths(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(
            hops(&out[0]),
            ["198.51.100.1", "198.51.100.2", "198.51.100.1"]
        );
        assert_eq!(out[0].tracelb.unwrap().end, PathEnd::Loop);
        assert!(!out[0].trace.reached);
    }

    /// `n` diamonds in a row: 2^n paths.
    fn diamonds(n: u32) -> String {
        let mut nodes = Vec::new();
        for i in 0..n {
            let (a, b, c) = (3 * i + 1, 3 * i + 2, 3 * i + 3);
            let next = format!("198.51.100.{}", 3 * i + 4);
            nodes.push(fan(
                &format!("198.51.100.{a}"),
                &[
                    to(&format!("198.51.100.{b}"), 2 * i + 2, 1.0),
                    to(&format!("198.51.100.{c}"), 2 * i + 2, 1.0),
                ],
            ));
            nodes.push(chain(
                &format!("198.51.100.{b}"),
                &[&[to(&next, 2 * i + 3, 1.0)]],
            ));
            nodes.push(chain(
                &format!("198.51.100.{c}"),
                &[&[to(&next, 2 * i + 3, 1.0)]],
            ));
        }
        nodes.push(chain(
            &format!("198.51.100.{}", 3 * n + 1),
            &[&[to("203.0.113.9", 2 * n + 2, 1.0)]],
        ));
        record(&nodes)
    }

    #[test]
    fn paths_beyond_the_cap_are_cut_and_said() {
        let value: serde_json::Value = serde_json::from_str(&diamonds(2)).unwrap();
        let walk = |cap| super::convert(&value, 1, 1, cap).unwrap();
        let four = walk(4);
        assert_eq!(four.len(), 4);
        assert!(four.iter().all(|c| !c.tracelb.unwrap().capped));
        let three = walk(3);
        assert_eq!(three.len(), 3);
        assert!(three.iter().all(|c| c.tracelb.unwrap().capped));
        assert!(three.iter().all(|c| c.tracelb.unwrap().paths == 3));
        // 2^6 paths fit the cap exactly; 2^7 do not.
        let out = paths(&diamonds(6));
        assert_eq!(out.len(), super::MAX_PATHS);
        assert!(!out[0].tracelb.unwrap().capped);
        let out = paths(&diamonds(7));
        assert_eq!(out.len(), super::MAX_PATHS);
        assert!(out.iter().all(|p| p.tracelb.unwrap().capped));
        assert!(out.iter().all(|p| p.trace.reached));
        // Every path is distinct.
        let distinct: std::collections::BTreeSet<Vec<String>> = out.iter().map(hops).collect();
        assert_eq!(distinct.len(), super::MAX_PATHS);
    }

    #[test]
    fn unreached_destinations_end_silent_or_dead() {
        let input = record(&[
            fan(
                "198.51.100.1",
                &[to("198.51.100.2", 2, 1.0), to("198.51.100.3", 2, 1.0)],
            ),
            // Silence after .2 (newer scamper ends such a link with `*`).
            chain("198.51.100.2", &[&[STAR.to_string()], &[STAR.to_string()]]),
            // .3 links to .5, which has no node: a dead end, not the destination.
            chain("198.51.100.3", &[&[to("198.51.100.5", 3, 1.0)]]),
        ]);
        let out = paths(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(hops(&out[0]), ["198.51.100.1", "198.51.100.2", "*", "*"]);
        assert_eq!(out[0].tracelb.unwrap().end, PathEnd::Silent);
        let silent = &out[0].trace.hops[3];
        assert_eq!((silent.ttl, silent.sent, silent.received), (4, 2, 0));
        assert_eq!(
            hops(&out[1]),
            ["198.51.100.1", "198.51.100.3", "198.51.100.5"]
        );
        assert_eq!(out[1].tracelb.unwrap().end, PathEnd::DeadEnd);
        assert!(out.iter().all(|p| !p.trace.reached));
        // A record without nodes gives no path; one node alone, one path.
        assert!(paths(&record(&[])).is_empty());
        let alone = paths(&record(&[
            r#"{"addr":"198.51.100.1","linkc":0}"#.to_string()
        ]));
        assert_eq!(hops(&alone[0]), ["198.51.100.1"]);
        assert_eq!(alone[0].tracelb.unwrap().end, PathEnd::DeadEnd);
    }

    #[test]
    fn gap_hops_keep_every_address_and_ttls_run_one_per_hop() {
        // A gap at TTL 2 where .7 answered and some probes did not, then .3
        // at TTL 3; the link from .3 is probed at TTL 5: TTL 4 is silent.
        let input = record(&[
            chain(
                "198.51.100.1",
                &[
                    &[to("198.51.100.7", 2, 1.0), STAR.to_string()],
                    &[to("198.51.100.3", 3, 2.0)],
                ],
            ),
            chain("198.51.100.3", &[&[to("203.0.113.9", 5, 3.0)]]),
        ]);
        let out = paths(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(
            hops(&out[0]),
            [
                "198.51.100.1",
                "198.51.100.7",
                "198.51.100.3",
                "*",
                "203.0.113.9"
            ]
        );
        let ttls: Vec<u8> = out[0].trace.hops.iter().map(|h| h.ttl).collect();
        assert_eq!(ttls, [1, 2, 3, 4, 5]);
        // Two addresses at one gap TTL stay one hop.
        let input = record(&[chain(
            "198.51.100.1",
            &[
                &[to("198.51.100.7", 2, 1.0), to("198.51.100.8", 2, 1.0)],
                &[to("203.0.113.9", 3, 2.0)],
            ],
        )]);
        let out = paths(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].trace.hops[1].addrs.len(), 2);
        // Anonymised addresses (M-Lab's `*` nodes and `""` links) are no
        // responders: the walk cannot follow them.
        let input = record(&[
            chain("*", &[&[to("", 2, 1.0)]]),
            chain("*", &[&[to("", 3, 1.0)]]),
        ]);
        let out = paths(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(hops(&out[0]), ["*", "*"]);
        assert_eq!(out[0].tracelb.unwrap().end, PathEnd::Silent);
        let anonymised = &out[0].trace.hops[1];
        assert_eq!((anonymised.received, anonymised.rtt_ms), (0, None));
    }

    #[test]
    fn records_are_numbered_and_keep_their_lines() {
        let input = format!(
            "{}\n{}\n{}\n",
            r#"{"type":"cycle-start","list_name":"l","id":1}"#,
            diamond(),
            record(&[chain("198.51.100.1", &[&[to("203.0.113.9", 2, 1.0)]])])
        );
        let out = paths(&input);
        let places: Vec<(u64, u64, u32, u32)> = out
            .iter()
            .map(|p| {
                let t = p.tracelb.unwrap();
                (t.record, t.line, t.path, t.paths)
            })
            .collect();
        assert_eq!(places, [(1, 2, 1, 2), (1, 2, 2, 2), (2, 3, 1, 1)]);
        assert_eq!(out.iter().map(|p| p.line).collect::<Vec<_>>(), [2, 2, 3]);
        let mut reader = read(Cursor::new(input), InputFormat::Scamper);
        assert_eq!(reader.by_ref().count(), 3);
        let counts = reader.tracelb();
        assert_eq!((counts.records, counts.paths, counts.capped), (2, 3, 0));
        assert!(reader.skipped().is_empty(), "tracelb is not skipped");
    }

    #[test]
    fn malformed_records_are_errors_naming_line_and_field() {
        let good = diamond();
        let cases: Vec<(String, &str)> = vec![
            (
                good.replacen(r#""ttl":3,"#, r#""ttl":"3","#, 1),
                "tracelb node 2 (198.51.100.2): links[0][0].probes[0]: field `ttl` must be a whole number, not \"3\"",
            ),
            (
                good.replacen(r#""ttl":3,"#, r#""ttl":300,"#, 1),
                "links[0][0].probes[0]: field `ttl`: 300 is outside 1-255",
            ),
            (
                good.replace(r#""rtt":7.000"#, r#""rtt":"slow""#),
                "tracelb node 3 (198.51.100.3): links[0][0].probes[0].replies[0]: field `rtt` must be a number of ms",
            ),
            (
                good.replacen(r#""addr":"198.51.100.4""#, r#""addr":"router""#, 1),
                "tracelb node 2 (198.51.100.2): links[0][0]: field `addr`: `router` is not an IP address",
            ),
            (
                good.replacen(r#""linkc":2"#, r#""linkc":3"#, 1),
                "tracelb node 1 (198.51.100.1) has linkc 3 but carries 2 link object(s)",
            ),
            (
                good.replacen(
                    r#""linkc":1, "links":[[{"addr":"198.51.100.4""#,
                    r#""linkc":1, "xlinks":[[{"addr":"198.51.100.4""#,
                    1,
                ),
                "tracelb node 2 (198.51.100.2) has linkc 1 but carries no links",
            ),
            (
                good.replacen(r#""links":[["#, r#""links":[7,["#, 1),
                "tracelb node 1 (198.51.100.1): links[0] must be an array, not 7",
            ),
            (
                good.replacen(r#""probes":["#, r#""probes":{},"x":["#, 1),
                "links[0][0]: field `probes` must be an array, not {}",
            ),
            (
                good.replace(r#""nodes":["#, r#""nodes":7,"x":["#),
                "field `nodes` must be an array",
            ),
            (good.replace(r#""src":"192.0.2.1","#, ""), "tracelb: missing field `src`"),
            (
                good.replace(r#""method":"icmp-echo""#, r#""method":"sctp""#),
                "unknown trace method `sctp`",
            ),
            (
                good.replace(r#""dst":"203.0.113.9""#, r#""dst":5"#),
                "tracelb: field `dst` must be a string, not 5",
            ),
            (
                good.replacen(r#"{"addr":"198.51.100.1""#, r#"{"adr":"198.51.100.1""#, 1),
                "tracelb node 1: missing field `addr`",
            ),
        ];
        for (bad, says) in cases {
            // The bad record on line 2, between good ones that still read.
            let out = all(&format!("{good}\n{bad}\n{good}\n"));
            let errors: Vec<&ImportError> = out.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(errors.len(), 1, "{says}: {out:?}");
            assert_eq!(errors[0].line, 2, "{says}");
            assert!(errors[0].message.contains(says), "{says}\n{}", errors[0]);
            assert!(!errors[0].message.contains('\n'), "{}", errors[0]);
            assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 4, "{says}");
        }
    }
}
