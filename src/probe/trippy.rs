//! The trippy-core adapter: raw-socket tracers behind [`Prober`].
//!
//! A trace runs `probes_per_hop` single-round tracers side by side on tokio's
//! blocking pool, each with its own [`Slot`] (identifier and ports), and
//! merges what they saw into one [`Trace`]. Every tracer is bounded by the
//! deadline (`max_round_duration`) and by `max_rounds = 1`, so a blocking
//! thread is never held longer than that.
//!
//! ICMP extensions (RFC 4884) are parsed: the MPLS label stack (RFC 4950) a
//! router quotes in its reply is kept per responder and becomes the hop's
//! `mpls`, that of its main responder.

use super::{
    late_reply_window, FdBudget, ProbeError, ProbeSettings, Prober, Slot, SlotPool, TraceRequest,
};
use crate::model::{Hop, HopGeo, MplsLabel, Protocol, RttMs, Trace};
use crate::units::Timestamp;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};
use trippy_core::{
    Builder, CompletionReason, Extension, Extensions, IcmpExtensionParseMode, MultipathStrategy,
    PortDirection, PrivilegeMode, ProbeStatus, Protocol as TrippyProtocol, Round,
};

/// Probes sent before any reply is needed (trippy-core's default).
const MAX_INFLIGHT: u8 = 24;
/// Longest one `select()` waits; also paces probe sending.
const MAX_READ_TIMEOUT: Duration = Duration::from_millis(10);
/// Shortest one `select()` waits.
const MIN_READ_TIMEOUT: Duration = Duration::from_micros(100);

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

    async fn run(&self, request: TraceRequest) -> Result<Trace, ProbeError> {
        let settings = &request.settings;
        validate(settings, request.target.addr)?;
        let started = SystemTime::now();
        let target = request.target.addr;
        let source = source_addr(target, settings.effective_port())?;

        let clock = Instant::now();
        let rtt = match request.rtt_hint {
            Some(rtt) => Some(rtt),
            None => self.measure_rtt(settings, target, source).await?,
        };
        let window = late_reply_window(rtt, settings.grace);
        tracing::debug!(?rtt, ?window, elapsed = ?clock.elapsed(), "destination RTT measured");

        // The deadline bounds the whole trace, RTT probe included.
        let mut flow_settings = settings.clone();
        flow_settings.deadline = settings
            .deadline
            .saturating_sub(clock.elapsed())
            .max(window);
        let flows = settings.probes_per_hop.max(1);
        let plan = FlowPlan {
            target,
            source,
            settings: flow_settings,
            window,
            first_ttl: settings.first_ttl,
            udp_src_port: None,
        };
        let results = self.run_flows(&plan, flows).await?;
        tracing::debug!(elapsed = ?clock.elapsed(), flows, "trace complete");
        Ok(merge(request, started, &results))
    }

    /// One UDP Paris tracer from `source_port`, without an RTT probe (the
    /// late-reply window follows the request's hint, else its ceiling).
    async fn run_one_flow(
        &self,
        request: TraceRequest,
        source_port: u16,
    ) -> Result<Trace, ProbeError> {
        let settings = &request.settings;
        if settings.protocol != Protocol::Udp || source_port == 0 {
            return Err(ProbeError::Settings(format!(
                "a flow is a UDP trace from a non-zero source port, not {} from port {source_port}",
                settings.protocol
            )));
        }
        validate(settings, request.target.addr)?;
        let started = SystemTime::now();
        let target = request.target.addr;
        let source = source_addr(target, settings.effective_port())?;
        let plan = FlowPlan {
            target,
            source,
            settings: settings.clone(),
            window: late_reply_window(request.rtt_hint, settings.grace),
            first_ttl: settings.first_ttl,
            udp_src_port: Some(source_port),
        };
        let results = self.run_flows(&plan, 1).await?;
        Ok(merge(request, started, &results))
    }

    /// One probe at the last TTL: the destination's round-trip time, or
    /// `None` if it did not answer within the window ceiling (`grace`).
    async fn measure_rtt(
        &self,
        settings: &ProbeSettings,
        target: IpAddr,
        source: IpAddr,
    ) -> Result<Option<Duration>, ProbeError> {
        let mut quick = settings.clone();
        quick.deadline = settings.grace;
        let plan = FlowPlan {
            target,
            source,
            settings: quick,
            window: Duration::ZERO,
            first_ttl: settings.max_ttl,
            udp_src_port: None,
        };
        let results = self.run_flows(&plan, 1).await?;
        Ok(results.first().and_then(FlowResult::target_rtt))
    }

    /// Run `count` flows of `plan` concurrently, each on a blocking thread.
    async fn run_flows(&self, plan: &FlowPlan, count: u8) -> Result<Vec<FlowResult>, ProbeError> {
        let fds = self
            .fds
            .acquire(plan.fd_cost() * usize::from(count))
            .await
            .ok_or_else(|| {
                ProbeError::Settings(format!(
                    "{count} tracers of {} sockets each exceed the descriptor budget of {}",
                    plan.fd_cost(),
                    self.fds.total()
                ))
            })?;
        let lease = self
            .slots
            .lease(u16::from(count))
            .await
            .ok_or(ProbeError::Closed)?;
        let handles: Vec<_> = lease
            .slots()
            .iter()
            .map(|&slot| {
                let plan = plan.clone();
                tokio::task::spawn_blocking(move || run_flow(&plan, slot))
            })
            .collect();
        let mut results = Vec::with_capacity(handles.len());
        let mut first_error = None;
        for handle in handles {
            match handle.await {
                Ok(Ok(result)) => results.push(result),
                Ok(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                Err(join) => {
                    let what = if join.is_panic() {
                        panic_message(join.into_panic())
                    } else {
                        "cancelled".to_string()
                    };
                    first_error.get_or_insert(ProbeError::Panicked(what));
                }
            }
        }
        // Sockets are closed once every tracer has returned.
        drop(lease);
        drop(fds);
        match first_error {
            Some(err) if results.is_empty() => Err(err),
            Some(err) => {
                tracing::warn!(error = %err, "some flows of a trace failed; keeping the others");
                Ok(results)
            }
            None => Ok(results),
        }
    }
}

impl Prober for TrippyProber {
    async fn trace(&self, request: TraceRequest) -> Result<Trace, ProbeError> {
        self.run(request).await
    }

    async fn trace_flow(
        &self,
        request: TraceRequest,
        source_port: u16,
    ) -> Result<Trace, ProbeError> {
        self.run_one_flow(request, source_port).await
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

/// Everything one flow needs; cheap to clone onto a blocking thread.
#[derive(Clone)]
struct FlowPlan {
    target: IpAddr,
    source: IpAddr,
    settings: ProbeSettings,
    /// Late-reply window; zero ends the round at the destination's reply.
    window: Duration,
    first_ttl: u8,
    /// A UDP source port for every tracer instead of its slot's: one
    /// chosen flow of a multipath enumeration.
    udp_src_port: Option<u16>,
}

impl FlowPlan {
    /// trippy-core sends TTL `t` before any reply only while
    /// `t < max_inflight`, counting from TTL 0: offset by the first TTL so
    /// that a flow starting high (the RTT probe) sends at all.
    fn inflight(&self) -> u8 {
        let span = (self.settings.max_ttl - self.first_ttl + 1).min(MAX_INFLIGHT);
        self.first_ttl.saturating_add(span)
    }

    /// Worst-case descriptors of one tracer: a receive socket, a send socket
    /// (ICMP/UDP) or one socket per TTL in flight (TCP), plus slack.
    fn fd_cost(&self) -> usize {
        match self.settings.protocol {
            Protocol::Icmp | Protocol::Udp => 3,
            Protocol::Tcp => 2 + usize::from(self.settings.max_ttl - self.first_ttl + 1),
        }
    }

    /// Quiet time that ends a round once the window has passed.
    fn grace(&self) -> Duration {
        self.window / 4
    }

    /// One `select()` wait: fine enough to notice the end of the window.
    fn read_timeout(&self) -> Duration {
        (self.window / 8).clamp(MIN_READ_TIMEOUT, MAX_READ_TIMEOUT)
    }
}

/// What one flow saw, per TTL.
#[derive(Debug, Default)]
struct FlowResult {
    hops: BTreeMap<u8, TtlTally>,
    /// The highest TTL that belongs to the path (the destination's, if found).
    last_ttl: u8,
    reached: bool,
}

impl FlowResult {
    fn target_rtt(&self) -> Option<Duration> {
        if !self.reached {
            return None;
        }
        let tally = self.hops.get(&self.last_ttl)?;
        tally.rtts.iter().copied().reduce(Duration::min)
    }

    fn absorb(&mut self, round: &Round<'_>) {
        let last = round.largest_ttl.0;
        self.reached = matches!(round.reason, CompletionReason::TargetFound);
        self.last_ttl = last;
        for probe in round.probes {
            match probe {
                ProbeStatus::Complete(done) if done.ttl.0 <= last => {
                    let tally = self.hops.entry(done.ttl.0).or_default();
                    tally.sent += 1;
                    tally.add_reply(
                        done.host,
                        done.received.duration_since(done.sent).unwrap_or_default(),
                    );
                    tally.add_mpls(done.host, done.extensions.as_ref());
                }
                ProbeStatus::Awaited(p) if p.ttl.0 <= last => {
                    self.hops.entry(p.ttl.0).or_default().sent += 1;
                }
                ProbeStatus::Failed(p) if p.ttl.0 <= last => {
                    self.hops.entry(p.ttl.0).or_default().sent += 1;
                }
                _ => {}
            }
        }
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

fn merge(request: TraceRequest, started: SystemTime, flows: &[FlowResult]) -> Trace {
    let reached = flows.iter().any(|f| f.reached);
    let last_ttl = flows.iter().map(|f| f.last_ttl).max().unwrap_or(0);
    let first_ttl = request.settings.first_ttl;
    let mut tallies: BTreeMap<u8, TtlTally> = BTreeMap::new();
    for flow in flows {
        for (&ttl, tally) in &flow.hops {
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

/// Build and run one single-round tracer on the current (blocking) thread.
fn run_flow(plan: &FlowPlan, slot: Slot) -> Result<FlowResult, ProbeError> {
    let s = &plan.settings;
    let (protocol, strategy, ports, sequence) = match (s.protocol, s.effective_port()) {
        (Protocol::Udp, Some(port)) => (
            TrippyProtocol::Udp,
            MultipathStrategy::Paris,
            PortDirection::new_fixed_both(plan.udp_src_port.unwrap_or(slot.udp_src_port()), port),
            33434,
        ),
        (Protocol::Tcp, Some(port)) => (
            TrippyProtocol::Tcp,
            MultipathStrategy::Classic,
            PortDirection::new_fixed_dest(port),
            slot.tcp_initial_sequence(),
        ),
        _ => (
            TrippyProtocol::Icmp,
            MultipathStrategy::Classic,
            PortDirection::None,
            33434,
        ),
    };
    let tracer = Builder::new(plan.target)
        .source_addr(Some(plan.source))
        .privilege_mode(PrivilegeMode::Privileged)
        .protocol(protocol)
        .multipath_strategy(strategy)
        .port_direction(ports)
        .trace_identifier(slot.trace_id())
        .initial_sequence(sequence)
        .packet_size(s.packet_size)
        .first_ttl(plan.first_ttl)
        .max_ttl(s.max_ttl)
        .max_inflight(plan.inflight())
        .max_rounds(Some(1))
        .grace_duration(plan.grace())
        .min_round_duration(plan.window)
        .max_round_duration(s.deadline)
        .read_timeout(plan.read_timeout())
        .tcp_connect_timeout(s.deadline)
        .max_flows(1)
        .icmp_extension_parse_mode(IcmpExtensionParseMode::Enabled)
        .build()
        .map_err(|e| ProbeError::Settings(e.to_string()))?;
    let result = RefCell::new(FlowResult::default());
    tracer
        .run_with(|round| result.borrow_mut().absorb(round))
        .map_err(|e| engine_error(&e, plan.target))?;
    Ok(result.into_inner())
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
    fn flows_merge_per_ttl_and_fill_gaps_with_silent_hops() {
        let flow = |reached| {
            let mut f = FlowResult {
                last_ttl: 3,
                reached,
                ..FlowResult::default()
            };
            f.hops.insert(1, tally(&[("198.18.1.2", 1)], 1));
            f.hops.insert(3, tally(&[("198.51.100.10", 1)], 1));
            f
        };
        let request = TraceRequest {
            target: ProbeTarget {
                name: "t".into(),
                host: "198.51.100.10".into(),
                addr: "198.51.100.10".parse().unwrap(),
            },
            vantage: VantageRef {
                name: "v".into(),
                country: None,
            },
            settings: ProbeSettings::default(),
            rtt_hint: None,
        };
        let trace = merge(request, SystemTime::now(), &[flow(true), flow(false)]);
        assert!(trace.reached);
        assert_eq!(trace.hops.len(), 3);
        assert_eq!(trace.hops[0].received, 2);
        assert!(trace.hops[1].is_silent());
        assert_eq!(trace.hops[2].addr, trace.target.addr);
    }

    #[tokio::test]
    async fn a_flow_is_udp_from_a_given_port_or_refused() {
        let request = |protocol| TraceRequest {
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
            rtt_hint: None,
        };
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
}
