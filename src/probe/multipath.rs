//! Multipath enumeration: every load-balanced path to a target, found by
//! varying the Paris flow identifier, with a stopping rule in the spirit of
//! scamper's MDA (`tracelb`).
//!
//! Routers that balance load per flow (ECMP; Linux with
//! `fib_multipath_hash_policy=1`) hash the addresses, protocol and ports of
//! a packet: every probe of one flow takes one path, and another flow may
//! take another. A flow here is one UDP Paris trace (a fixed UDP source
//! and destination port, the probe's identity carried in the checksum) with
//! its own source port, taken from [`FLOW_PORT_SPAN`] ports above
//! [`FLOW_PORT_BASE`], outside the ports of ordinary tracers
//! ([`super::Slot`]). An enumeration's flows take consecutive ports from
//! its first flow on (wrapping within the span); the caller starts each
//! enumeration where the last one ended, so that successive enumerations
//! try other flows rather than the same ones again. Flows are UDP
//! whatever the target's own protocol: routers do not hash ICMP echo
//! identifiers, so ICMP probes cannot steer onto another path, and TCP
//! probes open connections. The destination port is the target's when it
//! is traced over UDP, else [`super::DEFAULT_UDP_PORT`].
//!
//! Each flow's trace becomes one path unless it agrees with a path already
//! found: at every TTL where both answered the same router answered, and,
//! when both reached the destination, at the same TTL (silence is no
//! disagreement; a path's silent hops are filled from the flows that agree
//! with it). A flow of which nothing answered is a silent flow, no path.
//!
//! The stopping rule. With `k` distinct paths found, suppose there were
//! `k + 1`, equally likely (as ECMP hashing makes them): `n` flows miss at
//! least one of them with probability
//! `sum_{j=1}^{k+1} (-1)^(j+1) C(k+1, j) ((k+1-j)/(k+1))^n`
//! (inclusion-exclusion). The enumeration sends flows until the total
//! reaches the smallest `n` that brings this to 5% or below
//! ([`mda_bound`]: 6 flows for one path, 11 for two, 16, 21, 27, ...: the
//! MDA's 95% table), counting again with each new path. It also
//! stops at [`StoppingRule::max_flows`] flows (the set may be incomplete:
//! [`MultipathStop::FlowCap`]) or [`StoppingRule::max_paths`] paths
//! ([`MultipathStop::PathCap`]). Unlike the MDA, which bounds each hop's
//! next hops, this bounds whole paths: a path here is the sequence of
//! routers one flow met, which is what a verdict judges. Flows are sent a
//! few at a time ([`StoppingRule::parallel`]) and counted in flow order, so
//! the same replies always give the same paths.

use super::{ProbeError, Prober, TraceRequest, DEFAULT_UDP_PORT};
use crate::model::multipath::MultipathStop;
use crate::model::{Protocol, Trace};
use crate::units::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;
use tokio::task::JoinSet;

/// Source port of flow 0; flow `i` uses this plus `i`. Above the ports of
/// ordinary tracers (UDP 20000..40000, TCP 20000..39200).
pub const FLOW_PORT_BASE: u16 = 40_000;
/// The most flows one enumeration may send (the cap on `max_flows`).
pub const FLOW_PORT_SPAN: u16 = 256;
/// The most paths one enumeration may find (the cap on `max_paths`).
pub const MAX_PATHS: usize = 16;
/// Probability of missing one more path that the stopping rule accepts.
pub const MISS_PROBABILITY: f64 = 0.05;

/// When an enumeration stops (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoppingRule {
    /// Flows sent at most (at most [`FLOW_PORT_SPAN`]).
    pub max_flows: u16,
    /// Distinct paths found at most (at most [`MAX_PATHS`]).
    pub max_paths: usize,
    /// Flows in flight at once.
    pub parallel: u16,
}

impl Default for StoppingRule {
    fn default() -> Self {
        Self {
            max_flows: 64,
            max_paths: 16,
            parallel: 4,
        }
    }
}

/// The flows that make 95% sure no path beyond `k` found ones was missed:
/// the smallest `n` whose [`miss_probability`] is at most
/// [`MISS_PROBABILITY`] (`k` of 0 counts as 1, `k` above [`MAX_PATHS`] as
/// that).
#[must_use]
pub fn mda_bound(k: usize) -> u32 {
    let k = k.clamp(1, MAX_PATHS);
    let mut n = 1;
    while miss_probability(k, n) > MISS_PROBABILITY {
        n += 1;
    }
    n
}

/// The probability that `n` flows spread evenly over `k + 1` paths miss at
/// least one of them (inclusion-exclusion; exact enough for `k` up to
/// [`MAX_PATHS`]).
#[must_use]
pub fn miss_probability(k: usize, n: u32) -> f64 {
    let paths = k + 1;
    let mut p = 0.0;
    let mut choose = 1.0;
    #[allow(clippy::cast_precision_loss)] // path counts are small
    for j in 1..=paths {
        choose = choose * (paths - j + 1) as f64 / j as f64;
        let term =
            choose * ((paths - j) as f64 / paths as f64).powi(i32::try_from(n).unwrap_or(i32::MAX));
        if j % 2 == 1 {
            p += term;
        } else {
            p -= term;
        }
    }
    p
}

/// One distinct path and the flows that took it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPath {
    /// Source ports of the flows that took it, in flow order.
    pub ports: Vec<u16>,
    /// The path: the first flow's trace, its silent hops filled from the
    /// others'.
    pub trace: Trace,
}

/// What an enumeration found.
#[derive(Debug, Clone, PartialEq)]
pub struct Enumerated {
    /// The first flow of the next enumeration: this one's first plus the
    /// flows it sent, within the span.
    pub next_flow: u16,
    /// When it started.
    pub started_at: Timestamp,
    /// The flows' UDP destination port.
    pub port: u16,
    /// Flows sent (failed ones included).
    pub flows: u32,
    /// Flows of which nothing answered, or that could not run.
    pub silent_flows: u32,
    /// Why it stopped.
    pub stop: MultipathStop,
    /// The distinct paths, in the order found.
    pub paths: Vec<FoundPath>,
}

/// The enumeration's state: which flows to send next, and the paths so
/// far. No I/O: [`enumerate`] feeds it the flows' traces.
#[derive(Debug)]
struct Enumeration {
    rule: StoppingRule,
    /// Flow 0's place in the span of ports.
    first: u16,
    sent: u16,
    silent: u32,
    paths: Vec<FoundPath>,
}

impl Enumeration {
    fn new(rule: StoppingRule, first: u16) -> Self {
        Self {
            first: first % FLOW_PORT_SPAN,
            rule: StoppingRule {
                max_flows: rule.max_flows.clamp(1, FLOW_PORT_SPAN),
                max_paths: rule.max_paths.clamp(1, MAX_PATHS),
                parallel: rule.parallel.max(1),
            },
            sent: 0,
            silent: 0,
            paths: Vec::new(),
        }
    }

    /// The UDP source port of flow `flow`.
    fn port(&self, flow: u16) -> u16 {
        FLOW_PORT_BASE + (self.first + flow) % FLOW_PORT_SPAN
    }

    /// Flows the stopping rule asks for with the paths found so far.
    fn wanted(&self) -> u32 {
        mda_bound(self.paths.len())
    }

    /// The next flows to send, `None` when the enumeration is done.
    fn next_batch(&self) -> Option<std::ops::Range<u16>> {
        if self.paths.len() >= self.rule.max_paths {
            return None;
        }
        let until = u16::try_from(self.wanted())
            .unwrap_or(u16::MAX)
            .min(self.rule.max_flows);
        (self.sent < until).then(|| self.sent..until.min(self.sent + self.rule.parallel))
    }

    /// Why it stopped (once [`Self::next_batch`] is `None`).
    fn stop(&self) -> MultipathStop {
        if self.paths.len() >= self.rule.max_paths {
            MultipathStop::PathCap
        } else if u32::from(self.sent) < self.wanted() {
            MultipathStop::FlowCap
        } else {
            MultipathStop::Confident
        }
    }

    /// The outcome of flow `flow` (`None`: it could not run).
    fn add(&mut self, flow: u16, trace: Option<Trace>) {
        self.sent = self.sent.max(flow + 1);
        let Some(trace) = trace.filter(|t| t.hops.iter().any(|h| h.addr.is_some())) else {
            self.silent += 1;
            return;
        };
        let port = self.port(flow);
        let room = self.paths.len() < self.rule.max_paths;
        match self.paths.iter_mut().find(|p| agree(&p.trace, &trace)) {
            Some(path) => {
                path.ports.push(port);
                fill(&mut path.trace, &trace);
            }
            None if room => self.paths.push(FoundPath {
                ports: vec![port],
                trace,
            }),
            None => {}
        }
    }
}

/// Each responding TTL's responder.
fn responders(trace: &Trace) -> BTreeMap<u8, IpAddr> {
    trace
        .hops
        .iter()
        .filter_map(|h| h.addr.map(|a| (h.ttl, a)))
        .collect()
}

/// Whether two flows took the same path (module docs).
fn agree(a: &Trace, b: &Trace) -> bool {
    if a.reached && b.reached && a.hops.last().map(|h| h.ttl) != b.hops.last().map(|h| h.ttl) {
        return false;
    }
    let theirs = responders(b);
    responders(a)
        .iter()
        .all(|(ttl, addr)| theirs.get(ttl).is_none_or(|other| other == addr))
}

/// Fill `path`'s silent hops (and the TTLs beyond its end) from `flow`.
fn fill(path: &mut Trace, flow: &Trace) {
    for hop in &flow.hops {
        match path.hops.iter_mut().find(|h| h.ttl == hop.ttl) {
            Some(mine) if mine.addr.is_none() && hop.addr.is_some() => *mine = hop.clone(),
            Some(_) => {}
            None if !path.reached => path.hops.push(hop.clone()),
            None => {}
        }
    }
    path.hops.sort_by_key(|h| h.ttl);
    path.reached |= flow.reached;
}

/// Enumerate the load-balanced paths to `request`'s target (module docs),
/// from flow `first` of the span on. Its settings' TTLs, packet size and
/// waits apply; protocol and ports are the flows'.
///
/// # Errors
/// No flow could run at all: the first flow's error.
pub async fn enumerate<P: Prober + Clone + 'static>(
    prober: &P,
    mut request: TraceRequest,
    rule: StoppingRule,
    first: u16,
) -> Result<Enumerated, ProbeError> {
    let started_at = Timestamp::now();
    let port = match request.settings.protocol {
        Protocol::Udp => request
            .settings
            .effective_port()
            .unwrap_or(DEFAULT_UDP_PORT),
        Protocol::Icmp | Protocol::Tcp => DEFAULT_UDP_PORT,
    };
    request.settings.protocol = Protocol::Udp;
    request.settings.port = Some(port);
    request.settings.probes_per_hop = 1;
    let mut state = Enumeration::new(rule, first);
    let mut first_error = None;
    let mut ran = 0u32;
    while let Some(batch) = state.next_batch() {
        let mut flows = JoinSet::new();
        for flow in batch.clone() {
            let prober = prober.clone();
            let request = request.clone();
            let port = state.port(flow);
            flows.spawn(async move { (flow, prober.trace_flow(request, port).await) });
        }
        let mut results: Vec<(u16, Result<Trace, ProbeError>)> = Vec::with_capacity(batch.len());
        while let Some(joined) = flows.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(join) => {
                    first_error.get_or_insert(ProbeError::Panicked(join.to_string()));
                }
            }
        }
        // Counted in flow order: the same replies give the same paths.
        results.sort_by_key(|(flow, _)| *flow);
        let mut done = std::collections::BTreeSet::new();
        for (flow, result) in results {
            done.insert(flow);
            match result {
                Ok(trace) => {
                    ran += 1;
                    state.add(flow, Some(trace));
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                    state.add(flow, None);
                }
            }
        }
        // A flow whose task died counts as one that could not run.
        for flow in batch.filter(|f| !done.contains(f)) {
            state.add(flow, None);
        }
    }
    if ran == 0 {
        if let Some(err) = first_error {
            return Err(err);
        }
    }
    Ok(Enumerated {
        next_flow: (state.first + state.sent) % FLOW_PORT_SPAN,
        started_at,
        port,
        flows: u32::from(state.sent),
        silent_flows: state.silent,
        stop: state.stop(),
        paths: state.paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Hop, TargetRef, VantageRef};

    #[test]
    fn the_bound_is_the_published_mda_table() {
        let table: Vec<u32> = (1..=MAX_PATHS).map(mda_bound).collect();
        assert_eq!(
            table,
            [6, 11, 16, 21, 27, 33, 38, 44, 51, 57, 63, 70, 76, 83, 90, 96]
        );
        assert_eq!(mda_bound(0), mda_bound(1));
        // Two paths, 11 flows: a third would be missed 3.5% of the time;
        // 10 flows would not do.
        let p = miss_probability(2, 11);
        assert!((0.034..0.035).contains(&p), "{p}");
        assert!(miss_probability(2, 10) > MISS_PROBABILITY);
    }

    /// A trace whose TTL `i + 1` answered from `hops[i]` (`None`: silent).
    fn trace(hops: &[Option<&str>], reached: bool) -> Trace {
        Trace {
            target: TargetRef {
                name: "t".into(),
                host: "198.51.100.10".into(),
                addr: Some("198.51.100.10".parse().unwrap()),
            },
            vantage: VantageRef {
                name: "v".into(),
                country: None,
            },
            protocol: Protocol::Udp,
            port: Some(DEFAULT_UDP_PORT),
            started_at: Timestamp::from_unix(0).unwrap(),
            reached,
            hops: hops
                .iter()
                .zip(1u8..)
                .map(|(a, ttl)| {
                    let addr = a.map(|a| a.parse().unwrap());
                    Hop {
                        ttl,
                        addr,
                        addrs: addr.into_iter().collect(),
                        sent: 1,
                        received: u32::from(addr.is_some()),
                        rtt_ms: None,
                        geo: crate::model::HopGeo::default(),
                        hostname: None,
                        mpls: Vec::new(),
                    }
                })
                .collect(),
        }
    }

    const LS: [Option<&str>; 4] = [
        Some("198.18.1.2"),
        Some("198.18.2.2"),
        Some("198.18.3.2"),
        Some("198.51.100.10"),
    ];
    const ZA: [Option<&str>; 5] = [
        Some("198.18.1.2"),
        Some("198.18.4.2"),
        Some("198.18.5.2"),
        Some("198.18.6.1"),
        Some("198.51.100.10"),
    ];

    /// Drive an enumeration against a balancer that sends flow `i` to
    /// `paths[route(i)]`; the flows each batch asked for, in order.
    fn run(
        rule: StoppingRule,
        paths: &[Trace],
        route: impl Fn(u16) -> usize,
    ) -> (Enumeration, Vec<u16>) {
        let mut e = Enumeration::new(rule, 0);
        let mut asked = Vec::new();
        while let Some(batch) = e.next_batch() {
            for flow in batch {
                asked.push(flow);
                e.add(flow, Some(paths[route(flow)].clone()));
            }
        }
        (e, asked)
    }

    #[test]
    fn one_path_stops_after_six_flows_two_after_eleven() {
        let ls = trace(&LS, true);
        let za = trace(&ZA, true);
        let (e, asked) = run(StoppingRule::default(), std::slice::from_ref(&ls), |_| 0);
        assert_eq!(asked, (0..6).collect::<Vec<_>>());
        assert_eq!((e.paths.len(), e.stop()), (1, MultipathStop::Confident));
        // The second path shows up on flow 3: the bound becomes 11.
        let (e, asked) = run(StoppingRule::default(), &[ls, za], |f| usize::from(f == 3));
        assert_eq!(asked.len(), 11);
        assert_eq!(e.paths.len(), 2);
        assert_eq!(e.paths[0].ports.len(), 10);
        assert_eq!(e.paths[1].ports, [FLOW_PORT_BASE + 3]);
        assert_eq!(e.stop(), MultipathStop::Confident);
        // Ports follow on from where the span starts, wrapping.
        let late = Enumeration::new(StoppingRule::default(), FLOW_PORT_SPAN - 1);
        assert_eq!(late.port(0), FLOW_PORT_BASE + FLOW_PORT_SPAN - 1);
        assert_eq!(late.port(1), FLOW_PORT_BASE);
    }

    #[test]
    fn caps_stop_the_enumeration_and_say_so() {
        let ls = trace(&LS, true);
        let za = trace(&ZA, true);
        let few = StoppingRule {
            max_flows: 8,
            ..StoppingRule::default()
        };
        let (e, asked) = run(few, &[ls.clone(), za.clone()], |f| usize::from(f % 2 == 1));
        assert_eq!(asked.len(), 8);
        assert_eq!(e.stop(), MultipathStop::FlowCap);
        let one = StoppingRule {
            max_paths: 1,
            ..StoppingRule::default()
        };
        // The first batch is in flight when the cap is reached.
        let (e, asked) = run(one, &[ls, za], |_| 0);
        assert_eq!(asked, [0, 1, 2, 3]);
        assert_eq!(e.stop(), MultipathStop::PathCap);
    }

    #[test]
    fn silence_is_no_disagreement_and_is_filled() {
        let mut e = Enumeration::new(StoppingRule::default(), 0);
        let mut gap = LS;
        gap[1] = None;
        e.add(0, Some(trace(&gap, true)));
        e.add(1, Some(trace(&LS, true)));
        // Nothing answered: a silent flow; a flow that could not run too.
        e.add(2, Some(trace(&[None, None], false)));
        e.add(3, None);
        assert_eq!(e.paths.len(), 1);
        assert_eq!(e.silent, 2);
        assert_eq!(
            e.paths[0].trace.hops[1].addr,
            Some("198.18.2.2".parse().unwrap())
        );
        // Another router at TTL 2 is another path; the same routers with
        // the destination at another TTL too.
        e.add(4, Some(trace(&ZA, true)));
        let mut longer: Vec<Option<&str>> = LS[..3].to_vec();
        longer.push(Some("198.18.7.1"));
        longer.push(Some("198.51.100.10"));
        e.add(5, Some(trace(&longer, true)));
        assert_eq!(e.paths.len(), 3);
        assert_eq!(e.sent, 6);
    }
}
