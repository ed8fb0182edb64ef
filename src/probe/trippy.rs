//! The trippy-core adapter: raw-socket tracers behind [`Prober`].
//!
//! A trace is one task on tokio's blocking pool holding one [`Slot`]
//! (identifier and ports) and its worst-case descriptors from the
//! [`FdBudget`]. Without an RTT hint it first measures the destination's
//! round-trip time with one probe at the last TTL (a tracer of its own);
//! then one tracer sends the `probes_per_hop` probes of each TTL as that
//! many consecutive rounds over the same flow. trippy-core applies the
//! late-reply window to every round (`min_round_duration`, and
//! `grace_duration` for the quiet time), and each round gets an equal share
//! of what is left of the deadline (`max_round_duration`), so a blocking
//! thread is never held much longer than the deadline.
//!
//! TCP keeps a socket per probe until its connect timeout, and trippy-core
//! holds at most 256 per tracer: a TCP trace whose rounds would exceed that
//! (or its slot's source ports) runs them in consecutive tracers, each with
//! a share of the rounds and ports of its own.
//!
//! A flow of a multipath enumeration ([`Prober::trace_flow`]) is a trace of
//! one round from a given UDP source port, without an RTT probe.
//!
//! ICMP extensions (RFC 4884) are parsed: the MPLS label stack (RFC 4950) a
//! router quotes in its reply is kept per responder and becomes the hop's
//! `mpls`, that of its main responder.

use super::slots::TCP_SEQ_BLOCK;
use super::{
    late_reply_window, FdBudget, PathHint, ProbeError, ProbeSettings, Prober, Slot, SlotPool,
    TraceRequest, HINT_TTL_MARGIN, MAX_INFLIGHT,
};
use crate::model::{Hop, HopGeo, MplsLabel, Protocol, RttMs, Trace};
use crate::units::Timestamp;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant, SystemTime};
use trippy_core::{
    Builder, CompletionReason, Extension, Extensions, IcmpExtensionParseMode, MultipathStrategy,
    PortDirection, PrivilegeMode, ProbeStatus, Protocol as TrippyProtocol, Round,
};

/// Longest one `select()` waits; also paces probe sending.
const MAX_READ_TIMEOUT: Duration = Duration::from_millis(10);
/// Shortest one `select()` waits. Every wait that ends without a reply is
/// a wake-up of the tracer's thread and a `select()` over its descriptor
/// set: at 100 µs the waits for the end of the late-reply window were most
/// of the daemon's CPU time; at 1 ms a round ends at most that much after
/// its window.
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);
/// First sequence of a trace's rounds (ICMP, UDP): traceroute's port,
/// trippy-core's default.
const ROUNDS_SEQUENCE: u16 = 33_434;
/// Sequence of the RTT probe (ICMP, UDP). trippy-core takes a reply for
/// its current round when its sequence lies within 512 above the round's
/// first: below the rounds' first by more than that, a late reply to the
/// RTT probe is never taken for a round's, nor the other way round.
const RTT_SEQUENCE: u16 = ROUNDS_SEQUENCE - 1024;
/// TCP sequences the RTT probe may take from its slot's block (its probe
/// and re-issues after `EADDRINUSE`); the rounds start after them.
const TCP_RTT_SEQUENCES: u16 = 16;
/// TCP sequences a round may take beyond one per TTL (re-issues).
const TCP_REISSUES_PER_ROUND: u16 = 8;
/// TCP sockets one tracer may hold: trippy-core's fixed capacity (256),
/// less a margin.
const TCP_SOCKETS_PER_TRACER: usize = 240;

/// A [`Prober`] over trippy-core. Clones share slots and the fd budget.
#[derive(Clone, Default)]
pub struct TrippyProber {
    slots: SlotPool,
    fds: FdBudget,
}

impl TrippyProber {
    /// A prober with its own slot pool and fd budget.
    #[must_use]
    pub fn new(slots: SlotPool, fds: FdBudget) -> Self {
        Self { slots, fds }
    }

    /// Trace `request`; with `flow_port`, from that UDP source port (one
    /// flow of a multipath enumeration) instead of the slot's.
    async fn run(
        &self,
        request: TraceRequest,
        flow_port: Option<u16>,
    ) -> Result<Trace, ProbeError> {
        let settings = &request.settings;
        validate(settings, request.target.addr)?;
        let started = SystemTime::now();
        let plan = TracePlan {
            target: request.target.addr,
            source: source_addr(request.target.addr, settings.effective_port())?,
            settings: settings.clone(),
            hint: request.hint,
            flow_port,
        };
        let cost = plan.fd_cost();
        let fds = self.fds.acquire(cost).await.ok_or_else(|| {
            ProbeError::Settings(format!(
                "a tracer of {cost} sockets exceeds the descriptor budget of {}",
                self.fds.total()
            ))
        })?;
        let lease = self.slots.lease(1).await.ok_or(ProbeError::Closed)?;
        let slot = lease.slots()[0];
        let joined = tokio::task::spawn_blocking(move || {
            let rounds = plan.run(slot);
            // Given back once the tracers' sockets are closed, even when
            // whoever awaited the trace has gone (a stop after the drain).
            drop(lease);
            drop(fds);
            rounds
        })
        .await;
        let rounds = match joined {
            Ok(result) => result?,
            Err(join) => {
                return Err(ProbeError::Panicked(if join.is_panic() {
                    panic_message(join.into_panic())
                } else {
                    "cancelled".to_string()
                }))
            }
        };
        Ok(merge(request, started, &rounds))
    }
}

impl Prober for TrippyProber {
    async fn trace(&self, request: TraceRequest) -> Result<Trace, ProbeError> {
        self.run(request, None).await
    }

    async fn trace_flow(
        &self,
        mut request: TraceRequest,
        source_port: u16,
    ) -> Result<Trace, ProbeError> {
        if request.settings.protocol != Protocol::Udp || source_port == 0 {
            return Err(ProbeError::Settings(format!(
                "a flow is a UDP trace from a non-zero source port, not {} from port {source_port}",
                request.settings.protocol
            )));
        }
        // One probe per TTL: every probe of the flow takes the one path a
        // per-flow load balancer chose for it.
        request.settings.probes_per_hop = 1;
        self.run(request, Some(source_port)).await
    }
}

/// One trace, from its blocking thread's point of view.
struct TracePlan {
    target: IpAddr,
    source: IpAddr,
    settings: ProbeSettings,
    hint: Option<PathHint>,
    /// The UDP source port of a multipath enumeration's flow.
    flow_port: Option<u16>,
}

impl TracePlan {
    fn rounds(&self) -> u8 {
        self.settings.probes_per_hop.max(1)
    }

    /// TTLs the first round sends before any reply: up to the hinted
    /// destination and [`HINT_TTL_MARGIN`] beyond, else [`MAX_INFLIGHT`].
    /// Later rounds send up to the TTL the previous one found the
    /// destination at (trippy-core's rule).
    fn ahead(&self) -> u8 {
        match self.hint {
            Some(hint) if hint.ttl >= self.settings.first_ttl => (hint.ttl
                - self.settings.first_ttl)
                .saturating_add(1 + HINT_TTL_MARGIN)
                .min(MAX_INFLIGHT),
            _ => MAX_INFLIGHT,
        }
    }

    /// TTLs one round may probe.
    fn span(&self) -> u8 {
        self.settings.max_ttl - self.settings.first_ttl + 1
    }

    /// Rounds one tracer runs: all of them, except where TCP's sockets or
    /// source ports would not hold them.
    fn rounds_per_tracer(&self) -> u8 {
        let rounds = self.rounds();
        if self.settings.protocol != Protocol::Tcp {
            return rounds;
        }
        let span = usize::from(self.span());
        let by_sockets = TCP_SOCKETS_PER_TRACER / span;
        let by_ports = usize::from(TCP_SEQ_BLOCK - TCP_RTT_SEQUENCES) / self.tcp_round_sequences();
        let fit = by_sockets.min(by_ports).clamp(1, usize::from(rounds));
        u8::try_from(fit).unwrap_or(rounds)
    }

    /// TCP sequences one round may take.
    fn tcp_round_sequences(&self) -> usize {
        usize::from(self.span()) + usize::from(TCP_REISSUES_PER_ROUND)
    }

    /// Worst-case descriptors of the trace's largest tracer: a receive
    /// socket, a send socket (ICMP/UDP) or one socket per probe in flight
    /// (TCP), plus one for the source address check.
    fn fd_cost(&self) -> usize {
        match self.settings.protocol {
            Protocol::Icmp | Protocol::Udp => 3,
            Protocol::Tcp => 2 + usize::from(self.rounds_per_tracer()) * usize::from(self.span()),
        }
    }

    /// Measure the RTT if no hint was given, then run the rounds. Runs on a
    /// blocking thread.
    fn run(&self, slot: Slot) -> Result<Vec<RoundResult>, ProbeError> {
        let clock = Instant::now();
        let rtt = match (self.hint, self.flow_port) {
            (Some(hint), _) => Some(hint.rtt),
            // A flow of an enumeration: the paths differ in length and
            // delay, so no one RTT sizes the window; it is the ceiling.
            (None, Some(_)) => None,
            (None, None) => self.measure_rtt(slot)?,
        };
        let window = late_reply_window(rtt, self.settings.grace);
        // The deadline bounds the whole trace, RTT probe included; each
        // round gets an equal share, never less than the window.
        let rounds = self.rounds();
        let left = self
            .settings
            .deadline
            .saturating_sub(clock.elapsed())
            .max(window);
        let round_cap = (left / u32::from(rounds)).max(window);
        tracing::debug!(?rtt, ?window, ?round_cap, elapsed = ?clock.elapsed(), "destination RTT measured");

        let per_tracer = self.rounds_per_tracer();
        let mut results = Vec::with_capacity(usize::from(rounds));
        let mut done = 0;
        let mut tracer_index = 0;
        while done < rounds {
            let count = per_tracer.min(rounds - done);
            let tracer = TracerPlan {
                target: self.target,
                source: self.source,
                settings: &self.settings,
                first_ttl: self.settings.first_ttl,
                ahead: self.ahead(),
                rounds: count,
                window,
                round_cap,
                sequence: self.rounds_sequence(slot, tracer_index, count),
                flow_port: self.flow_port,
            };
            match tracer.run(slot) {
                Ok(r) => results.extend(r),
                Err(err) if results.is_empty() => return Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, "some rounds of a trace failed; keeping the others");
                    break;
                }
            }
            done += count;
            tracer_index += 1;
        }
        tracing::debug!(elapsed = ?clock.elapsed(), rounds = results.len(), "trace complete");
        Ok(results)
    }

    /// One probe at the last TTL: the destination's round-trip time, or
    /// `None` if it did not answer within the window ceiling (`grace`).
    fn measure_rtt(&self, slot: Slot) -> Result<Option<Duration>, ProbeError> {
        let tracer = TracerPlan {
            target: self.target,
            source: self.source,
            settings: &self.settings,
            first_ttl: self.settings.max_ttl,
            ahead: 1,
            rounds: 1,
            window: Duration::ZERO,
            round_cap: self.settings.grace,
            sequence: match self.settings.protocol {
                Protocol::Tcp => slot.tcp_initial_sequence(),
                Protocol::Icmp | Protocol::Udp => RTT_SEQUENCE,
            },
            flow_port: None,
        };
        let results = tracer.run(slot)?;
        Ok(results.first().and_then(RoundResult::target_rtt))
    }

    /// The first sequence of the `index`th tracer of rounds, which runs
    /// `count` rounds. TCP tracers take consecutive parts of the slot's
    /// block, after the RTT probe's; should a trace need more than the
    /// block holds (many rounds of many TTLs), the parts wrap round within
    /// it, the latest tracers reusing the ports of the earliest.
    fn rounds_sequence(&self, slot: Slot, index: usize, count: u8) -> u16 {
        match self.settings.protocol {
            Protocol::Icmp | Protocol::Udp => ROUNDS_SEQUENCE,
            Protocol::Tcp => {
                let part = self.tcp_round_sequences() * usize::from(count);
                let room = usize::from(TCP_SEQ_BLOCK - TCP_RTT_SEQUENCES);
                let starts = (room - part.min(room)).max(1);
                let offset = (index * part) % starts;
                let first = usize::from(slot.tcp_initial_sequence())
                    + usize::from(TCP_RTT_SEQUENCES)
                    + offset;
                u16::try_from(first).unwrap_or(u16::MAX)
            }
        }
    }
}

fn validate(settings: &ProbeSettings, target: IpAddr) -> Result<(), ProbeError> {
    if settings.first_ttl == 0 || settings.first_ttl > settings.max_ttl {
        return Err(ProbeError::Settings(format!(
            "first TTL {} must be between 1 and the max TTL {}",
            settings.first_ttl, settings.max_ttl
        )));
    }
    if settings.effective_port() == Some(0) {
        return Err(ProbeError::Settings("port 0 cannot be probed".into()));
    }
    let min_size = min_packet_size(settings.protocol, target);
    if !(min_size..=1024).contains(&settings.packet_size) {
        return Err(ProbeError::Settings(format!(
            "packet size {} is outside {min_size}..=1024 for {} over {}",
            settings.packet_size,
            settings.protocol,
            if target.is_ipv4() { "IPv4" } else { "IPv6" }
        )));
    }
    Ok(())
}

/// Smallest probe trippy-core accepts: IP header + transport header + the
/// two payload bytes that carry the Paris checksum fix-up.
fn min_packet_size(protocol: Protocol, target: IpAddr) -> u16 {
    let ip = if target.is_ipv4() { 20 } else { 40 };
    let transport = match protocol {
        Protocol::Icmp | Protocol::Udp => 8,
        Protocol::Tcp => 0,
    };
    ip + transport + 2
}

/// The local address the kernel would use towards `target`; fails when
/// there is no route at all.
fn source_addr(target: IpAddr, port: Option<u16>) -> Result<IpAddr, ProbeError> {
    let unspecified: IpAddr = match target {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let unroutable = |err: std::io::Error| ProbeError::Unroutable {
        addr: target,
        reason: err.to_string(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(unspecified, 0)).map_err(unroutable)?;
    socket
        .connect(SocketAddr::new(target, port.unwrap_or(33434).max(1)))
        .map_err(unroutable)?;
    Ok(socket.local_addr().map_err(unroutable)?.ip())
}

/// One trippy-core tracer: `rounds` rounds from `first_ttl`.
struct TracerPlan<'a> {
    target: IpAddr,
    source: IpAddr,
    settings: &'a ProbeSettings,
    first_ttl: u8,
    /// TTLs sent before any reply.
    ahead: u8,
    rounds: u8,
    /// Late-reply window; zero ends a round at the destination's reply.
    window: Duration,
    /// Longest one round may take.
    round_cap: Duration,
    /// The first probe's sequence.
    sequence: u16,
    /// A UDP source port instead of the slot's (a multipath flow).
    flow_port: Option<u16>,
}

impl TracerPlan<'_> {
    /// trippy-core sends TTL `t` only while `t - highest TTL answered <
    /// max_inflight`, counting from TTL 0: offset by the first TTL so that
    /// `ahead` TTLs go before any reply, however high the first.
    fn inflight(&self) -> u8 {
        let span = (self.settings.max_ttl - self.first_ttl + 1).min(self.ahead.max(1));
        self.first_ttl.saturating_add(span)
    }

    /// Quiet time that ends a round once the window has passed.
    fn grace(&self) -> Duration {
        self.window / 4
    }

    /// One `select()` wait: fine enough to notice the end of the window
    /// within a quarter of it (or [`MIN_READ_TIMEOUT`]).
    fn read_timeout(&self) -> Duration {
        (self.window / 4).clamp(MIN_READ_TIMEOUT, MAX_READ_TIMEOUT)
    }

    /// Build and run the tracer on the current (blocking) thread: what each
    /// round saw.
    fn run(&self, slot: Slot) -> Result<Vec<RoundResult>, ProbeError> {
        let s = self.settings;
        let (protocol, strategy, ports) = match (s.protocol, s.effective_port()) {
            (Protocol::Udp, Some(port)) => (
                TrippyProtocol::Udp,
                MultipathStrategy::Paris,
                PortDirection::new_fixed_both(self.flow_port.unwrap_or(slot.udp_src_port()), port),
            ),
            (Protocol::Tcp, Some(port)) => (
                TrippyProtocol::Tcp,
                MultipathStrategy::Classic,
                PortDirection::new_fixed_dest(port),
            ),
            _ => (
                TrippyProtocol::Icmp,
                MultipathStrategy::Classic,
                PortDirection::None,
            ),
        };
        let rounds = NonZeroUsize::new(usize::from(self.rounds)).unwrap_or(NonZeroUsize::MIN);
        let tracer = Builder::new(self.target)
            .source_addr(Some(self.source))
            .privilege_mode(PrivilegeMode::Privileged)
            .protocol(protocol)
            .multipath_strategy(strategy)
            .port_direction(ports)
            .trace_identifier(slot.trace_id())
            .initial_sequence(self.sequence)
            .packet_size(s.packet_size)
            .first_ttl(self.first_ttl)
            .max_ttl(s.max_ttl)
            .max_inflight(self.inflight())
            .max_rounds(Some(rounds.get()))
            .grace_duration(self.grace())
            .min_round_duration(self.window)
            .max_round_duration(self.round_cap)
            .read_timeout(self.read_timeout())
            // A TCP probe no reply came for within its round is of no
            // further use: dropping it frees its socket for later rounds.
            .tcp_connect_timeout(self.round_cap)
            .max_flows(1)
            .icmp_extension_parse_mode(IcmpExtensionParseMode::Enabled)
            .build()
            .map_err(|e| ProbeError::Settings(e.to_string()))?;
        let results = RefCell::new(Vec::with_capacity(rounds.get()));
        tracer
            .run_with(|round| results.borrow_mut().push(RoundResult::of(round)))
            .map_err(|e| engine_error(&e, self.target))?;
        Ok(results.into_inner())
    }
}

/// What one round saw, per TTL.
#[derive(Debug, Default)]
struct RoundResult {
    hops: BTreeMap<u8, TtlTally>,
    /// The highest TTL that belongs to the path (the destination's, if found).
    last_ttl: u8,
    reached: bool,
}

impl RoundResult {
    fn target_rtt(&self) -> Option<Duration> {
        if !self.reached {
            return None;
        }
        let tally = self.hops.get(&self.last_ttl)?;
        tally.rtts.iter().copied().reduce(Duration::min)
    }

    fn of(round: &Round<'_>) -> Self {
        let last = round.largest_ttl.0;
        let mut result = Self {
            reached: matches!(round.reason, CompletionReason::TargetFound),
            last_ttl: last,
            hops: BTreeMap::new(),
        };
        for probe in round.probes {
            match probe {
                ProbeStatus::Complete(done) if done.ttl.0 <= last => {
                    let tally = result.hops.entry(done.ttl.0).or_default();
                    tally.sent += 1;
                    tally.add_reply(
                        done.host,
                        done.received.duration_since(done.sent).unwrap_or_default(),
                    );
                    tally.add_mpls(done.host, done.extensions.as_ref());
                }
                ProbeStatus::Awaited(p) if p.ttl.0 <= last => {
                    result.hops.entry(p.ttl.0).or_default().sent += 1;
                }
                ProbeStatus::Failed(p) if p.ttl.0 <= last => {
                    result.hops.entry(p.ttl.0).or_default().sent += 1;
                }
                _ => {}
            }
        }
        result
    }
}

/// Replies at one TTL.
#[derive(Debug, Default, Clone)]
struct TtlTally {
    sent: u32,
    /// Responders with reply counts, in order of first reply.
    addrs: Vec<(IpAddr, u32)>,
    rtts: Vec<Duration>,
    /// The first MPLS label stack each responder quoted, in order of first
    /// reply with one.
    mpls: Vec<(IpAddr, Vec<MplsLabel>)>,
}

impl TtlTally {
    fn add_reply(&mut self, addr: IpAddr, rtt: Duration) {
        match self.addrs.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, n)) => *n += 1,
            None => self.addrs.push((addr, 1)),
        }
        self.rtts.push(rtt);
    }

    /// Keep `addr`'s label stack from a reply's extensions, unless it
    /// already has one.
    fn add_mpls(&mut self, addr: IpAddr, extensions: Option<&Extensions>) {
        if self.mpls.iter().any(|(a, _)| *a == addr) {
            return;
        }
        let stack = extensions
            .into_iter()
            .flat_map(|e| &e.extensions)
            .find_map(|e| match e {
                Extension::Mpls(stack) if !stack.members.is_empty() => Some(stack),
                _ => None,
            });
        if let Some(stack) = stack {
            let labels = stack
                .members
                .iter()
                .map(|m| MplsLabel::new(m.label, m.exp, m.bos != 0, m.ttl))
                .collect();
            self.mpls.push((addr, labels));
        }
    }

    fn merge(&mut self, other: &Self) {
        self.sent += other.sent;
        for &(addr, n) in &other.addrs {
            match self.addrs.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, m)) => *m += n,
                None => self.addrs.push((addr, n)),
            }
        }
        self.rtts.extend_from_slice(&other.rtts);
        for (addr, stack) in &other.mpls {
            if !self.mpls.iter().any(|(a, _)| a == addr) {
                self.mpls.push((*addr, stack.clone()));
            }
        }
    }

    fn into_hop(mut self, ttl: u8) -> Hop {
        // Stable sort: ties keep the order of first reply.
        self.addrs.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let received = u32::try_from(self.rtts.len()).unwrap_or(u32::MAX);
        let rtt_ms = summarize(&self.rtts);
        let addr = self.addrs.first().map(|(a, _)| *a);
        let mpls = self
            .mpls
            .into_iter()
            .find(|(a, _)| Some(*a) == addr)
            .map(|(_, stack)| stack)
            .unwrap_or_default();
        Hop {
            ttl,
            addr,
            addrs: self.addrs.into_iter().map(|(a, _)| a).collect(),
            sent: self.sent.max(received),
            received,
            rtt_ms,
            geo: HopGeo::default(),
            hostname: None,
            mpls,
        }
    }
}

fn summarize(rtts: &[Duration]) -> Option<RttMs> {
    let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let best = ms.iter().copied().reduce(f64::min)?;
    let worst = ms.iter().copied().reduce(f64::max)?;
    #[allow(clippy::cast_precision_loss)]
    let avg = ms.iter().sum::<f64>() / ms.len() as f64;
    Some(RttMs {
        best: round3(best),
        avg: round3(avg),
        worst: round3(worst),
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn merge(request: TraceRequest, started: SystemTime, rounds: &[RoundResult]) -> Trace {
    let reached = rounds.iter().any(|r| r.reached);
    let last_ttl = rounds.iter().map(|r| r.last_ttl).max().unwrap_or(0);
    let first_ttl = request.settings.first_ttl;
    let mut tallies: BTreeMap<u8, TtlTally> = BTreeMap::new();
    for round in rounds {
        for (&ttl, tally) in &round.hops {
            tallies.entry(ttl).or_default().merge(tally);
        }
    }
    let hops = (first_ttl..=last_ttl)
        .map(|ttl| tallies.remove(&ttl).unwrap_or_default().into_hop(ttl))
        .collect();
    let port = request.settings.effective_port();
    Trace {
        target: request.target.into(),
        vantage: request.vantage,
        protocol: request.settings.protocol,
        port,
        started_at: Timestamp::from_system_time(started),
        reached,
        hops,
    }
}

fn engine_error(err: &trippy_core::Error, target: IpAddr) -> ProbeError {
    let text = err.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("operation not permitted") || lower.contains("permission denied") {
        ProbeError::Privilege(text)
    } else if lower.contains("unreachable") {
        ProbeError::Unroutable {
            addr: target,
            reason: text,
        }
    } else {
        match err {
            trippy_core::Error::InvalidPacketSize(_) | trippy_core::Error::BadConfig(_) => {
                ProbeError::Settings(text)
            }
            _ => ProbeError::Engine(text),
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VantageRef;
    use crate::probe::ProbeTarget;

    /// A request to trace 198.51.100.10 with the default settings but `protocol`.
    fn request(protocol: Protocol) -> TraceRequest {
        TraceRequest {
            target: ProbeTarget {
                name: "t".into(),
                host: "198.51.100.10".into(),
                addr: "198.51.100.10".parse().unwrap(),
            },
            vantage: VantageRef {
                name: "v".into(),
                country: None,
            },
            settings: ProbeSettings {
                protocol,
                ..ProbeSettings::default()
            },
            hint: None,
        }
    }

    fn tally(addrs: &[(&str, u32)], sent: u32) -> TtlTally {
        let mut t = TtlTally {
            sent,
            ..TtlTally::default()
        };
        for &(a, n) in addrs {
            for _ in 0..n {
                t.add_reply(a.parse().unwrap(), Duration::from_micros(500));
            }
        }
        t
    }

    #[test]
    fn a_hint_sends_the_first_round_up_to_its_destination_and_two_beyond() {
        let plan = |first_ttl, hint: Option<u8>| TracePlan {
            target: "198.51.100.10".parse().unwrap(),
            source: "198.18.1.1".parse().unwrap(),
            settings: ProbeSettings {
                first_ttl,
                ..ProbeSettings::default()
            },
            hint: hint.map(|ttl| PathHint {
                rtt: Duration::from_millis(160),
                ttl,
            }),
            flow_port: None,
        };
        assert_eq!(plan(1, None).ahead(), MAX_INFLIGHT);
        assert_eq!(plan(1, Some(3)).ahead(), 3 + HINT_TTL_MARGIN);
        assert_eq!(plan(4, Some(6)).ahead(), 3 + HINT_TTL_MARGIN);
        assert_eq!(
            plan(1, Some(30)).ahead(),
            MAX_INFLIGHT,
            "never more than without"
        );
        assert_eq!(
            plan(5, Some(3)).ahead(),
            MAX_INFLIGHT,
            "a hint below the first TTL says nothing"
        );
    }

    #[test]
    fn a_trace_hints_at_its_destination_only_when_it_answered() {
        let hop = |ttl, addr: &str, best| Hop {
            ttl,
            addr: Some(addr.parse().unwrap()),
            addrs: Vec::new(),
            sent: 3,
            received: 3,
            rtt_ms: Some(RttMs {
                best,
                avg: best,
                worst: best,
            }),
            geo: HopGeo::default(),
            hostname: None,
            mpls: Vec::new(),
        };
        let mut trace = Trace {
            target: request(Protocol::Icmp).target.into(),
            vantage: request(Protocol::Icmp).vantage,
            protocol: Protocol::Icmp,
            port: None,
            started_at: Timestamp::from_unix(1_795_694_400).unwrap(),
            reached: true,
            hops: vec![hop(1, "198.18.1.2", 0.1), hop(2, "198.51.100.10", 160.5)],
        };
        assert_eq!(
            PathHint::of(&trace),
            Some(PathHint {
                rtt: Duration::from_micros(160_500),
                ttl: 2
            })
        );
        trace.reached = false;
        assert_eq!(PathHint::of(&trace), None);
    }

    #[test]
    fn hop_address_is_the_most_frequent_responder() {
        let hop = tally(&[("198.18.1.2", 1), ("198.18.9.9", 2)], 3).into_hop(1);
        assert_eq!(hop.addr, Some("198.18.9.9".parse().unwrap()));
        assert_eq!(hop.addrs.len(), 2);
        assert_eq!((hop.sent, hop.received), (3, 3));
        let silent = tally(&[], 3).into_hop(2);
        assert!(silent.is_silent());
        assert_eq!(silent.rtt_ms, None);
    }

    #[test]
    fn rounds_merge_per_ttl_and_fill_gaps_with_silent_hops() {
        let round = |reached| {
            let mut f = RoundResult {
                last_ttl: 3,
                reached,
                ..RoundResult::default()
            };
            f.hops.insert(1, tally(&[("198.18.1.2", 1)], 1));
            f.hops.insert(3, tally(&[("198.51.100.10", 1)], 1));
            f
        };
        let trace = merge(
            request(Protocol::Icmp),
            SystemTime::now(),
            &[round(true), round(false)],
        );
        assert!(trace.reached);
        assert_eq!(trace.hops.len(), 3);
        assert_eq!(trace.hops[0].received, 2);
        assert!(trace.hops[1].is_silent());
        assert_eq!(trace.hops[2].addr, trace.target.addr);
    }

    #[tokio::test]
    async fn a_flow_is_udp_from_a_given_port_or_refused() {
        let prober = TrippyProber::default();
        for (protocol, port) in [
            (Protocol::Icmp, 40_000),
            (Protocol::Tcp, 40_000),
            (Protocol::Udp, 0),
        ] {
            let refused = prober.trace_flow(request(protocol), port).await;
            assert!(
                matches!(refused, Err(ProbeError::Settings(_))),
                "{protocol} {port}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_hop_keeps_its_main_responder_s_first_label_stack() {
        use trippy_core::{MplsLabelStack, MplsLabelStackMember};
        let ext = |labels: &[u32]| Extensions {
            extensions: vec![
                Extension::default(),
                Extension::Mpls(MplsLabelStack {
                    members: labels
                        .iter()
                        .enumerate()
                        .map(|(i, &label)| MplsLabelStackMember {
                            label,
                            exp: 1,
                            bos: u8::from(i + 1 == labels.len()),
                            ttl: 1,
                        })
                        .collect(),
                }),
            ],
        };
        let (main, other): (IpAddr, IpAddr) =
            ("198.18.1.2".parse().unwrap(), "198.18.9.9".parse().unwrap());
        let mut one = tally(&[("198.18.1.2", 1), ("198.18.9.9", 1)], 2);
        one.add_mpls(other, Some(&ext(&[7])));
        one.add_mpls(main, None);
        let mut two = tally(&[("198.18.1.2", 2)], 2);
        two.add_mpls(main, Some(&ext(&[24001, 16])));
        two.add_mpls(main, Some(&ext(&[99])));
        one.merge(&two);
        let hop = one.into_hop(1);
        assert_eq!(hop.addr, Some(main));
        assert_eq!(
            hop.mpls,
            vec![
                MplsLabel::new(24001, 1, false, 1),
                MplsLabel::new(16, 1, true, 1)
            ]
        );
        assert!(tally(&[("198.18.1.2", 1)], 1).into_hop(1).mpls.is_empty());
    }

    #[test]
    fn settings_are_checked_before_any_socket_opens() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mut s = ProbeSettings {
            packet_size: 40,
            ..ProbeSettings::default()
        };
        assert!(matches!(validate(&s, v6), Err(ProbeError::Settings(_))));
        s.packet_size = 64;
        assert!(validate(&s, v6).is_ok());
        s.first_ttl = 40;
        assert!(validate(&s, v6).is_err());
    }

    fn plan(protocol: Protocol, probes_per_hop: u8, max_ttl: u8) -> TracePlan {
        TracePlan {
            target: "198.51.100.10".parse().unwrap(),
            source: "198.18.0.1".parse().unwrap(),
            settings: ProbeSettings {
                protocol,
                probes_per_hop,
                max_ttl,
                ..ProbeSettings::default()
            },
            hint: None,
            flow_port: None,
        }
    }

    #[test]
    fn one_tracer_runs_every_round_unless_tcp_cannot_hold_them() {
        for protocol in [Protocol::Icmp, Protocol::Udp] {
            let p = plan(protocol, 16, 64);
            assert_eq!(p.rounds_per_tracer(), 16);
            assert_eq!(p.fd_cost(), 3);
        }
        // TCP with the defaults: one tracer, the sockets of three rounds.
        let p = plan(Protocol::Tcp, 3, 30);
        assert_eq!(p.rounds_per_tracer(), 3);
        assert_eq!(p.fd_cost(), 2 + 3 * 30);
        // Many rounds of many TTLs: consecutive tracers, each within
        // trippy-core's socket capacity and the descriptor budget.
        let p = plan(Protocol::Tcp, 16, 64);
        assert!(p.rounds_per_tracer() < 16);
        assert!(usize::from(p.rounds_per_tracer()) * 64 <= TCP_SOCKETS_PER_TRACER);
        assert!(p.fd_cost() < FdBudget::new(crate::probe::DEFAULT_RESERVE).total());
    }

    #[tokio::test]
    async fn tcp_tracers_take_their_ports_from_the_slot_block() {
        let pool = SlotPool::new(2);
        let lease = pool.lease(1).await.unwrap();
        let slot = lease.slots()[0];
        let block = usize::from(slot.tcp_initial_sequence())
            ..usize::from(slot.tcp_initial_sequence()) + usize::from(TCP_SEQ_BLOCK);
        for (probes, max_ttl) in [(3, 30), (16, 64), (16, 30), (1, 64)] {
            let p = plan(Protocol::Tcp, probes, max_ttl);
            let per = p.rounds_per_tracer();
            let tracers = usize::from(probes.div_ceil(per));
            let mut firsts = Vec::new();
            for index in 0..tracers {
                let first = usize::from(p.rounds_sequence(slot, index, per));
                let last = first + p.tcp_round_sequences() * usize::from(per) - 1;
                assert!(
                    block.contains(&first) && block.contains(&last),
                    "{probes}x{max_ttl}: {first}..={last} outside {block:?}"
                );
                // After the RTT probe's sequences.
                assert!(first >= block.start + usize::from(TCP_RTT_SEQUENCES));
                firsts.push(first);
            }
            if tracers * p.tcp_round_sequences() * usize::from(per)
                <= block.len() - usize::from(TCP_RTT_SEQUENCES)
            {
                // Room for all: every tracer has ports of its own.
                firsts.dedup();
                assert_eq!(firsts.len(), tracers, "{probes}x{max_ttl}");
            }
        }
    }

    #[test]
    fn the_rtt_probe_and_the_rounds_never_take_each_others_replies() {
        // trippy-core matches a reply to the current round when its
        // sequence is within 512 above the round's first.
        let rounds = ROUNDS_SEQUENCE..ROUNDS_SEQUENCE + 512;
        let rtt = RTT_SEQUENCE..RTT_SEQUENCE + 512;
        assert!(!rounds.contains(&RTT_SEQUENCE));
        assert!(!rtt.contains(&ROUNDS_SEQUENCE));
        assert!(rtt.end <= rounds.start);
    }
}
