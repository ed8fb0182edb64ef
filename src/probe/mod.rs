//! The probe engine: turns a [`TraceRequest`] into a measured [`Trace`].
//!
//! [`Prober`] is the seam between whoever wants a path measured (the `trace`
//! command, later the scheduler) and how it is measured. [`TrippyProber`]
//! implements it with trippy-core raw-socket tracers; no trippy type leaves
//! this module.
//!
//! Timing model: a trace is one trippy-core tracer on one blocking thread
//! (after a one-probe tracer that measures the destination's round-trip
//! time when no hint from an earlier trace is at hand); the `probes_per_hop`
//! probes of a TTL are its consecutive rounds over one flow, so a reachable
//! destination costs about `probes_per_hop` round trips plus a short wait
//! for late replies in each round, and one set of sockets at a time.
//! Routers answer from their slow path, so the last router's time-exceeded
//! reply often arrives after the destination's own reply: each round keeps
//! listening until [`late_reply_window`] has passed since it started (twice
//! the destination's round-trip time, within a floor and the configured
//! `grace` ceiling) and nothing has arrived for a quarter of that window. A
//! destination that never answers costs at most the configured deadline,
//! shared equally between the rounds.
//!
//! Every raw receive socket gets a copy of every ICMP packet the host
//! receives, whichever tracer it answers: the process's cost per reply grows
//! with the number of live tracers, which [`MAX_SLOTS`] bounds.
//!
//! [`multipath`] enumerates a target's load-balanced paths: one UDP Paris
//! flow per source port ([`Prober::trace_flow`]), until the MDA-style
//! stopping rule is satisfied.

mod fd_budget;
pub mod multipath;
mod slots;
mod trippy;

pub use fd_budget::{FdBudget, DEFAULT_RESERVE};
pub use slots::{Slot, SlotPool, MAX_SLOTS};
pub use trippy::TrippyProber;

use crate::model::{Protocol, TargetRef, Trace, VantageRef};
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// The most tracer threads one process runs at once: a trace holds one
/// blocking thread, and one of the [`MAX_SLOTS`] slots while it does.
pub const TRACER_THREADS: usize = MAX_SLOTS as usize;
/// The shortest late-reply window: covers scheduling noise on a busy host.
pub const WINDOW_FLOOR: Duration = Duration::from_micros(500);
/// The late-reply window lasts this many destination round-trip times.
pub const WINDOW_RTT_FACTOR: u32 = 2;
/// Destination port of UDP probes when none is configured (traceroute's).
pub const DEFAULT_UDP_PORT: u16 = 33434;
/// Destination port of TCP probes when none is configured.
pub const DEFAULT_TCP_PORT: u16 = 443;

/// How one trace is probed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSettings {
    /// Probe protocol.
    pub protocol: Protocol,
    /// Destination port for UDP/TCP; `None` takes the protocol's default.
    pub port: Option<u16>,
    /// Probes sent per TTL.
    pub probes_per_hop: u8,
    /// First TTL probed.
    pub first_ttl: u8,
    /// Last TTL probed.
    pub max_ttl: u8,
    /// IP packet size of each probe, in bytes.
    pub packet_size: u16,
    /// Ceiling of the late-reply window (see [`late_reply_window`]).
    pub grace: Duration,
    /// Longest a trace may take when the destination never answers.
    pub deadline: Duration,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            protocol: Protocol::Icmp,
            port: None,
            probes_per_hop: 3,
            first_ttl: 1,
            max_ttl: 30,
            packet_size: 64,
            grace: Duration::from_millis(100),
            deadline: Duration::from_secs(3),
        }
    }
}

impl ProbeSettings {
    /// The destination port probes use, `None` for ICMP.
    #[must_use]
    pub fn effective_port(&self) -> Option<u16> {
        match self.protocol {
            Protocol::Icmp => None,
            Protocol::Udp => Some(self.port.unwrap_or(DEFAULT_UDP_PORT)),
            Protocol::Tcp => Some(self.port.unwrap_or(DEFAULT_TCP_PORT)),
        }
    }
}

/// What a probe is sent to: unlike a [`TargetRef`], whose address may be
/// unknown (an imported measurement), a probe always has a concrete address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Unique target name.
    pub name: String,
    /// The host name or address literal as configured or given.
    pub host: String,
    /// The address probed.
    pub addr: IpAddr,
}

impl From<ProbeTarget> for TargetRef {
    fn from(t: ProbeTarget) -> Self {
        Self {
            name: t.name,
            host: t.host,
            addr: Some(t.addr),
        }
    }
}

/// One trace to run.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRequest {
    /// What to trace; `target.addr` is probed.
    pub target: ProbeTarget,
    /// Who traces.
    pub vantage: VantageRef,
    /// How.
    pub settings: ProbeSettings,
    /// What the path's last trace said of it. Without it the prober
    /// measures the destination's round-trip time with one probe before
    /// tracing, to size the late-reply window.
    pub hint: Option<PathHint>,
}

/// What a path's last trace says of it, so the next trace needs no extra
/// probe: the late-reply window follows `rtt`, and the first round sends
/// probes up to `ttl` and [`HINT_TTL_MARGIN`] beyond before any reply, not
/// [`MAX_INFLIGHT`] (a longer path is still followed as its hops answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathHint {
    /// The destination's round-trip time (the best of its probes).
    pub rtt: Duration,
    /// The destination's TTL.
    pub ttl: u8,
}

/// TTLs beyond the last destination's sent before any reply: a path up to
/// this many hops longer than last time is traced as fast.
pub const HINT_TTL_MARGIN: u8 = 2;
/// TTLs sent before any reply without a hint (half trippy-core's default
/// of 24): the first round of a path up to 12 hops long takes one round
/// trip, and a longer one no more where its near hops answer first (each
/// answer lets one more TTL go). Every TTL past the destination's is a
/// probe the destination answers for nothing: a first trace 160 ms away
/// sent 33 probes at 24, 21 at 12; later traces have a hint.
pub const MAX_INFLIGHT: u8 = 12;

impl PathHint {
    /// The hint a trace gives: `None` when its destination did not answer.
    #[must_use]
    pub fn of(trace: &Trace) -> Option<Self> {
        let hop = trace.destination_hop()?;
        let ms = hop.rtt_ms?.best;
        (ms.is_finite() && ms >= 0.0).then(|| Self {
            rtt: Duration::from_secs_f64(ms / 1000.0),
            ttl: hop.ttl,
        })
    }
}

/// Why a trace could not be measured at all. A destination that does not
/// answer is not an error: it is a [`Trace`] with `reached: false`.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Raw sockets need CAP_NET_RAW.
    #[error("cannot open a raw socket: {0} (transitwatch needs CAP_NET_RAW; run as root or grant the capability)")]
    Privilege(String),
    /// The kernel has no route to the target.
    #[error("no route to {addr}: {reason}")]
    Unroutable {
        /// The target address.
        addr: IpAddr,
        /// What the kernel said.
        reason: String,
    },
    /// The settings cannot be traced (e.g. a packet size too small for IPv6).
    #[error("invalid probe settings: {0}")]
    Settings(String),
    /// The raw-socket engine failed.
    #[error("trace engine failed: {0}")]
    Engine(String),
    /// The raw-socket engine panicked; the trace is lost, the process lives.
    #[error("trace engine panicked: {0}")]
    Panicked(String),
    /// The prober is shutting down.
    #[error("prober closed")]
    Closed,
}

/// Measures paths. Implementations must be cheap to share between tasks.
pub trait Prober: Send + Sync {
    /// Trace one target. Errors concern this trace only.
    fn trace(
        &self,
        request: TraceRequest,
    ) -> impl Future<Output = Result<Trace, ProbeError>> + Send;

    /// Trace one flow: a single UDP Paris tracer (one probe per TTL) from
    /// UDP source port `source_port` to the settings' port, so that every
    /// probe takes the one path a per-flow load balancer chose for it
    /// (see [`multipath`]). The settings' protocol must be UDP.
    fn trace_flow(
        &self,
        request: TraceRequest,
        source_port: u16,
    ) -> impl Future<Output = Result<Trace, ProbeError>> + Send;
}

/// How long a tracer listens for late replies, measured from its start, for
/// a destination with round-trip time `rtt`: [`WINDOW_RTT_FACTOR`] round
/// trips, at least [`WINDOW_FLOOR`], at most `ceiling`. Without a measured
/// RTT the ceiling applies.
#[must_use]
pub fn late_reply_window(rtt: Option<Duration>, ceiling: Duration) -> Duration {
    match rtt {
        Some(rtt) => (rtt * WINDOW_RTT_FACTOR).clamp(WINDOW_FLOOR.min(ceiling), ceiling),
        None => ceiling,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_rtt_within_floor_and_ceiling() {
        let ceiling = Duration::from_millis(100);
        assert_eq!(late_reply_window(None, ceiling), ceiling);
        assert_eq!(
            late_reply_window(Some(Duration::from_micros(50)), ceiling),
            WINDOW_FLOOR
        );
        assert_eq!(
            late_reply_window(Some(Duration::from_millis(10)), ceiling),
            Duration::from_millis(20)
        );
        assert_eq!(
            late_reply_window(Some(Duration::from_millis(300)), ceiling),
            ceiling
        );
        // A ceiling below the floor wins.
        let tiny = Duration::from_micros(100);
        assert_eq!(
            late_reply_window(Some(Duration::from_micros(1)), tiny),
            tiny
        );
    }

    #[test]
    fn ports_default_per_protocol() {
        let mut s = ProbeSettings::default();
        assert_eq!(s.effective_port(), None);
        s.protocol = Protocol::Udp;
        assert_eq!(s.effective_port(), Some(DEFAULT_UDP_PORT));
        s.protocol = Protocol::Tcp;
        s.port = Some(8443);
        assert_eq!(s.effective_port(), Some(8443));
    }
}
