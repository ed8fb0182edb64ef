//! When each target is traced: per-target intervals with jitter, a global
//! concurrency limit, and names resolved again every cycle.
//!
//! Every target runs its own loop: wait (a random share of the jitter
//! before the first trace, so a fleet of targets does not start in one
//! burst; then the interval, give or take the jitter), resolve the host,
//! trace each address under a permit of the global semaphore, name its
//! hops (reverse DNS, a bounded wait outside the permit), send each
//! [`TraceOutcome`] down the channel. A failure concerns one trace of one target
//! and is reported as an outcome; the loop goes on. The loops stop when the
//! `stop` signal turns true; a trace already running finishes and is still
//! reported, so a stop drains rather than drops.
//!
//! A [`Measurer`] (the prober, the permits, the last RTTs, the hop namer)
//! is what every loop measures with; [`Measurer::trace_once`] traces a
//! target outside its loop (on demand), under the same permits.
//!
//! With [`Dependencies`], a named target's DNS dependencies are resolved in
//! the same attempt, while its addresses are traced (the traces do not
//! wait for them; at most a bounded number of resolutions run at once, none
//! holding a probe permit), and travel with each of its outcomes into the
//! record.
//! Each name server address found is then traced as a dependency path
//! ([`PathKey::nameserver`]) under the same permits, at most once per
//! interval however many targets share it: the first loop to claim an
//! address in an interval traces it.
//!
//! A job with a multipath cadence (`multipath_interval`) also enumerates
//! the load-balanced paths of each address it traced
//! ([`crate::probe::multipath`]) in the first attempt and then in the first
//! attempt once that cadence has passed since the last enumeration; the
//! paths travel with that address's outcome. An enumeration holds one
//! probe permit for all its flows, runs alone, and starts its flows where
//! the last one's ended (see [`run`]).

use crate::analysis::Policy;
use crate::dependency::dns::{self as dependency_dns, DnsResolver};
use crate::model::dns::DnsDependencies;
use crate::model::{Family, PathFamily, PathKey, Trace, VantageRef};
use crate::probe::multipath::{self, Enumerated, StoppingRule};
use crate::probe::{PathHint, ProbeError, ProbeSettings, ProbeTarget, Prober, TraceRequest};
use crate::resolve::{self, ResolveError};
use crate::reverse_dns::ReverseDns;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// One configured target, ready to trace.
#[derive(Debug, Clone)]
pub struct Job {
    /// Target name (the `target` label).
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// Free-form group.
    pub category: String,
    /// Address families traced.
    pub family: Family,
    /// How to probe.
    pub settings: ProbeSettings,
    /// What counts as home for this target.
    pub policy: Policy,
    /// How often its load-balanced paths are enumerated (`None`: never).
    pub multipath: Option<Duration>,
}

impl Job {
    /// The key of the path traced to `addr`: the target name, suffixed with
    /// the family when both families are traced as separate paths.
    #[must_use]
    pub fn key(&self, addr: IpAddr) -> PathKey {
        match self.family {
            Family::Both => PathKey::of_family(self.name.clone(), PathFamily::of(&addr)),
            _ => PathKey::whole(self.name.clone()),
        }
    }
}

/// Why an attempt produced no trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The host did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The probe failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// What one attempt produced.
#[derive(Debug)]
pub struct TraceOutcome {
    /// The job's target name.
    pub name: String,
    /// The path key (see [`Job::key`]); the whole target's when resolution
    /// failed.
    pub key: PathKey,
    /// The measured trace, or why there is none.
    pub result: Result<Trace, TraceError>,
    /// Wall time of the attempt.
    pub duration: Duration,
    /// The target's DNS dependencies resolved in this attempt (named
    /// targets, with [`Dependencies`]); `None` for dependency paths.
    pub dns: Option<Arc<DnsDependencies>>,
    /// The load-balanced paths to the traced address, when this attempt
    /// enumerated them.
    pub multipath: Option<Arc<Enumerated>>,
}

/// How targets' DNS dependencies are resolved and their name servers
/// traced.
#[derive(Debug, Clone)]
pub struct Dependencies {
    /// Asks the recursive servers.
    pub resolver: DnsResolver,
    /// The longest one target's resolution may take.
    pub deadline: Duration,
    /// Whether name server addresses are traced as dependency paths.
    pub trace_nameservers: bool,
    /// How name servers are probed.
    pub settings: ProbeSettings,
    /// Which of a name server's addresses are traced (`[probe] family`:
    /// `auto` traces its first address only).
    pub family: Family,
    /// Resolutions in flight at most, over all targets.
    // Each holds a few UDP sockets (one per query in flight); the tracers'
    // select() needs every descriptor below 1024, and the probe fd budget
    // leaves only a small reserve for everything else.
    pub resolutions: Arc<tokio::sync::Semaphore>,
    /// When each name server path was last claimed for a trace.
    // std Mutex: a lookup and an insert, never held across an await; it
    // is what keeps two loops from tracing one shared server twice.
    pub claimed: Arc<Mutex<HashMap<PathKey, tokio::time::Instant>>>,
}

/// Timing of the loops.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// Time between two traces of one target.
    pub interval: Duration,
    /// Random spread added around each wait.
    pub jitter: Duration,
}

/// What the last trace of each path said of it (destination RTT and TTL),
/// so the next trace needs no RTT probe and sends no more probes ahead of
/// the replies than the path is long.
pub type PathHints = Arc<Mutex<HashMap<PathKey, PathHint>>>;

/// What measures a path: the prober under the global permits, with the
/// paths' hints (last destination RTT and TTL) and the hop namer. One per
/// scheduler generation, shared by its loops and by traces on demand.
#[derive(Clone)]
pub struct Measurer<P> {
    /// Recorded in every trace.
    pub vantage: VantageRef,
    /// Who measures.
    pub prober: P,
    /// Traces in flight at most, over all targets and traces on demand.
    // Why a semaphore: each trace holds sockets and a blocking thread, and
    // routers rate-limit bursts of ICMP.
    pub permits: Arc<Semaphore>,
    /// Last destination RTTs, shared with the consumer.
    pub hints: PathHints,
    /// Names the hops of every measured trace (none: no names).
    pub names: Option<ReverseDns>,
    /// Where the next multipath enumeration's flows start.
    // One enumeration at a time: every enumeration draws its flows' source
    // ports from one span (`probe::multipath`), so two at once towards one
    // address would take each other's replies; they run hourly or so, and
    // one after the other costs nothing that matters. A tokio Mutex: held
    // across the enumeration's awaits.
    pub enumerations: Arc<tokio::sync::Mutex<u16>>,
}

impl<P: Prober + Clone + 'static> Measurer<P> {
    /// Resolve `job`'s host and trace each of its addresses once, now
    /// (under the permits, like a scheduled attempt, without its DNS
    /// dependencies); `None` when the permits are closed.
    pub async fn trace_once(&self, job: &Job) -> Option<Vec<TraceOutcome>> {
        trace_addresses(self, job, false).await
    }
}

/// Everything one scheduler generation runs.
pub struct Schedule<P> {
    /// The targets.
    pub jobs: Vec<Job>,
    /// Interval and jitter.
    pub cadence: Cadence,
    /// How each path is measured.
    pub measurer: Measurer<P>,
    /// Resolves named targets' DNS dependencies (none: not resolved).
    pub dependencies: Option<Dependencies>,
}

/// Run every job's loop until `stop` turns true; returns when every loop and
/// every trace it started has ended.
pub async fn run<P: Prober + Clone + 'static>(
    schedule: Schedule<P>,
    outcomes: mpsc::Sender<TraceOutcome>,
    stop: watch::Receiver<bool>,
) {
    let Schedule {
        jobs,
        cadence,
        measurer,
        dependencies,
    } = schedule;
    let mut loops = JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let ctx = LoopCtx {
            job,
            cadence,
            measurer: measurer.clone(),
            dependencies: dependencies.clone(),
            outcomes: outcomes.clone(),
            seed: 0x9E37_79B9_7F4A_7C15 ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        };
        loops.spawn(target_loop(ctx, stop.clone()));
    }
    while loops.join_next().await.is_some() {}
}

struct LoopCtx<P> {
    job: Job,
    cadence: Cadence,
    measurer: Measurer<P>,
    dependencies: Option<Dependencies>,
    outcomes: mpsc::Sender<TraceOutcome>,
    seed: u64,
}

async fn target_loop<P: Prober + Clone + 'static>(
    mut ctx: LoopCtx<P>,
    mut stop: watch::Receiver<bool>,
) {
    let first = spread(&mut ctx.seed, ctx.cadence.jitter);
    if sleep_or_stop(first, &mut stop).await {
        return;
    }
    // When the next enumeration of load-balanced paths is due: at once.
    let mut multipath_due = ctx.job.multipath.map(|_| tokio::time::Instant::now());
    loop {
        let enumerate = multipath_due.is_some_and(|due| tokio::time::Instant::now() >= due);
        if enumerate {
            multipath_due = ctx
                .job
                .multipath
                .map(|every| tokio::time::Instant::now() + every);
        }
        attempt(&ctx, enumerate).await;
        let wait = around(&mut ctx.seed, ctx.cadence);
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}

/// Sleep, or return `true` as soon as a stop is requested.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Resolve the job's host and trace every address while its DNS
/// dependencies are resolved beside (the traces do not wait for them;
/// their outcomes carry them), then trace the name servers no other loop
/// has claimed lately. With `enumerate`, each traced address's
/// load-balanced paths are enumerated too.
async fn attempt<P: Prober + Clone + 'static>(ctx: &LoopCtx<P>, enumerate: bool) {
    let job = &ctx.job;
    let named = job.host.parse::<IpAddr>().is_err();
    let dependencies = async {
        match &ctx.dependencies {
            Some(d) if named => {
                // Each resolution holds a few UDP sockets: bounded, so the
                // descriptors stay within the budget the tracers' select()
                // needs (below 1024).
                let _permit = d.resolutions.acquire().await.ok()?;
                let deadline = tokio::time::Instant::now() + d.deadline;
                Some(Arc::new(
                    dependency_dns::resolve(&job.host, &d.resolver, deadline).await,
                ))
            }
            _ => None,
        }
    };
    let traces = trace_addresses(&ctx.measurer, job, enumerate);
    let (dns, measured) = tokio::join!(dependencies, traces);
    // `None`: the schedule is closing.
    let Some(measured) = measured else { return };
    for mut outcome in measured {
        outcome.dns.clone_from(&dns);
        if ctx.outcomes.send(outcome).await.is_err() {
            return;
        }
    }
    if let (Some(d), Some(dns)) = (&ctx.dependencies, &dns) {
        if d.trace_nameservers {
            trace_nameservers(ctx, d, dns).await;
        }
    }
}

/// Resolve `job`'s host and trace each address (with `enumerate`, also
/// enumerate its load-balanced paths); `None` when the permits are closed
/// (the schedule is closing).
async fn trace_addresses<P: Prober + Clone + 'static>(
    measurer: &Measurer<P>,
    job: &Job,
    enumerate: bool,
) -> Option<Vec<TraceOutcome>> {
    let started = tokio::time::Instant::now();
    let addrs = match resolve::resolve(&job.host, job.family).await {
        Ok(addrs) => addrs,
        Err(e) => {
            return Some(vec![TraceOutcome {
                name: job.name.clone(),
                key: PathKey::whole(job.name.clone()),
                result: Err(e.into()),
                duration: started.elapsed(),
                dns: None,
                multipath: None,
            }])
        }
    };
    let mut measured = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let request = TraceRequest {
            target: ProbeTarget {
                name: job.name.clone(),
                host: job.host.clone(),
                addr,
            },
            vantage: measurer.vantage.clone(),
            settings: job.settings.clone(),
            hint: None,
        };
        let mut outcome = measure(measurer, &job.name, job.key(addr), request.clone()).await?;
        if enumerate && outcome.result.is_ok() {
            outcome.multipath = enumerate_paths(measurer, &outcome.key, request).await?;
        }
        measured.push(outcome);
    }
    Some(measured)
}

/// Trace each name server address of `dns`'s zones that no loop claimed in
/// the last interval (less the jitter): one address per family and server,
/// of the families the probe family admits.
async fn trace_nameservers<P: Prober>(ctx: &LoopCtx<P>, d: &Dependencies, dns: &DnsDependencies) {
    let fresh = ctx.cadence.interval.saturating_sub(ctx.cadence.jitter);
    let servers = dns
        .zone
        .iter()
        .chain(dns.target_zone.iter())
        .flat_map(|zone| zone.nameservers.iter());
    for server in servers {
        let mut families: Vec<PathFamily> = Vec::new();
        let admitted = server.addresses.iter().filter(|a| d.family.admits(a));
        let take = if d.family == Family::Auto { 1 } else { 2 };
        for addr in admitted {
            let family = PathFamily::of(addr);
            if families.len() == take || families.contains(&family) {
                continue;
            }
            families.push(family);
            let key = PathKey::nameserver(&server.name, family);
            let now = tokio::time::Instant::now();
            let claimed = d
                .claimed
                .lock()
                .is_ok_and(|mut claimed| match claimed.get(&key) {
                    Some(at) if now.duration_since(*at) < fresh => false,
                    _ => {
                        claimed.insert(key.clone(), now);
                        true
                    }
                });
            if !claimed {
                continue;
            }
            let name = key.target().to_string();
            let request = TraceRequest {
                target: ProbeTarget {
                    name: name.clone(),
                    host: server.name.clone(),
                    addr: *addr,
                },
                vantage: ctx.measurer.vantage.clone(),
                settings: d.settings.clone(),
                hint: None,
            };
            let Some(outcome) = measure(&ctx.measurer, &name, key, request).await else {
                return;
            };
            if ctx.outcomes.send(outcome).await.is_err() {
                return;
            }
        }
    }
}

/// Trace one path under a permit and name its hops; `None` when the
/// schedule is closing (no permit).
async fn measure<P: Prober>(
    m: &Measurer<P>,
    name: &str,
    key: PathKey,
    mut request: TraceRequest,
) -> Option<TraceOutcome> {
    let permit = m.permits.acquire().await.ok()?;
    request.hint = m.hints.lock().ok().and_then(|h| h.get(&key).copied());
    let began = tokio::time::Instant::now();
    let mut result = m.prober.trace(request).await.map_err(TraceError::from);
    // Waiting for names holds no socket: the next trace may start.
    drop(permit);
    if let (Ok(trace), Some(names)) = (&mut result, &m.names) {
        names.name_hops(trace).await;
    }
    Some(TraceOutcome {
        name: name.to_string(),
        key,
        result,
        duration: began.elapsed(),
        dns: None,
        multipath: None,
    })
}

/// Enumerate the load-balanced paths of one traced address, alone and
/// under a probe permit, and name their hops; `None` inside when it could
/// not run (logged), `None` outside when the schedule is closing.
async fn enumerate_paths<P: Prober + Clone + 'static>(
    ctx: &Measurer<P>,
    key: &PathKey,
    mut request: TraceRequest,
) -> Option<Option<Arc<Enumerated>>> {
    let mut next_flow = ctx.enumerations.lock().await;
    let permit = ctx.permits.acquire().await.ok()?;
    // The paths differ in length and delay: the last trace's destination
    // RTT sizes no flow's late-reply window; each listens for the whole
    // `grace`.
    request.hint = None;
    let result =
        multipath::enumerate(&ctx.prober, request, StoppingRule::default(), *next_flow).await;
    drop(permit);
    if let Ok(found) = &result {
        *next_flow = found.next_flow;
    }
    drop(next_flow);
    match result {
        Ok(mut found) => {
            if let Some(names) = &ctx.names {
                for path in &mut found.paths {
                    names.name_hops(&mut path.trace).await;
                }
            }
            tracing::debug!(target = %key, flows = found.flows, paths = found.paths.len(), "load-balanced paths enumerated");
            Some(Some(Arc::new(found)))
        }
        Err(e) => {
            tracing::warn!(target = %key, error = %e, "load-balanced paths could not be enumerated");
            Some(None)
        }
    }
}

/// splitmix64: cheap, seedable, good enough to spread start times.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform share of `d`.
fn spread(seed: &mut u64, d: Duration) -> Duration {
    #[allow(clippy::cast_precision_loss)]
    let f = (next(seed) >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(f)
}

/// The interval, plus or minus up to the jitter.
fn around(seed: &mut u64, c: Cadence) -> Duration {
    let j = spread(seed, c.jitter * 2);
    (c.interval + j).saturating_sub(c.jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_within_interval_plus_minus_jitter_and_spread_out() {
        let c = Cadence {
            interval: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
        };
        let mut seed = 7;
        let waits: Vec<Duration> = (0..1000).map(|_| around(&mut seed, c)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(270) && *w <= Duration::from_secs(330)));
        let below = waits.iter().filter(|w| **w < c.interval).count();
        assert!(
            (300..700).contains(&below),
            "{below} of 1000 below the interval"
        );
        let firsts: Vec<Duration> = (0..1000).map(|_| spread(&mut seed, c.jitter)).collect();
        assert!(firsts.iter().all(|f| *f <= c.jitter));
    }

    #[test]
    fn both_families_are_separate_paths() {
        let job = Job {
            name: "gov".into(),
            host: "gov.ls".into(),
            category: "government".into(),
            family: Family::Both,
            settings: ProbeSettings::default(),
            policy: Policy::default(),
            multipath: None,
        };
        assert_eq!(
            job.key("198.51.100.1".parse().unwrap()).to_string(),
            "gov/ipv4"
        );
        assert_eq!(
            job.key("2001:db8::1".parse().unwrap()).to_string(),
            "gov/ipv6"
        );
        let single = Job {
            family: Family::Auto,
            ..job
        };
        assert_eq!(
            single.key("2001:db8::1".parse().unwrap()).to_string(),
            "gov"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_interrupts_a_wait() {
        let (tx, mut rx) = watch::channel(false);
        let waiter =
            tokio::spawn(async move { sleep_or_stop(Duration::from_secs(3600), &mut rx).await });
        tokio::task::yield_now().await;
        tx.send(true).unwrap();
        assert!(waiter.await.unwrap());
    }
}
