//! Reverse DNS: the PTR names of hop addresses, looked up after a trace is
//! measured and before it is judged, never holding a record back longer
//! than a bounded wait.
//!
//! [`ReverseDns::names`] answers from a bounded cache first; an address not
//! in it gets one PTR query (asked once however many traces want it at the
//! same time), run as its own task under a bound on the queries in flight.
//! Whatever has not answered by the caller's deadline is `None` for that
//! trace; the query goes on in the background and its answer fills the
//! cache for the next trace. Private and reserved addresses are asked too:
//! whether they have names is the configured server's business.
//!
//! The cache keeps answers, names and their absence alike, for their
//! record's TTL, at most [`MAX_POSITIVE_TTL`] for a name and
//! [`MAX_NEGATIVE_TTL`] for no name; a failed query (timeout, server error,
//! garbage) is remembered for [`FAILURE_TTL`] so a dead server costs one
//! query per address and minute, not one per trace. Answers are validated
//! (`name`): a name that is no host name is dropped and counted, never
//! kept.
//!
//! hickory-resolver asks the servers (its own cache is off: this one counts
//! its hits and bounds negative and failed answers separately).

mod metrics;
pub(crate) mod name;

pub use metrics::RdnsMetrics;

use crate::config::RdnsConfig;
use crate::model::Trace;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use moka::sync::Cache;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// The longest a name is kept, whatever its record's TTL.
pub const MAX_POSITIVE_TTL: Duration = Duration::from_secs(3600);
/// The longest the absence of a name is kept (also when the server gives
/// no negative TTL).
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(300);
/// How long a failed query (timeout, error, garbage) is remembered.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);
/// PTR queries in flight at most: hickory multiplexes up to 32 requests on
/// one connection and answers "busy" beyond that.
const MAX_QUERIES: usize = 32;
/// Addresses waiting for (or in) a query at most; beyond that a new
/// address gets no name for this trace and is asked again next time.
const MAX_PENDING: usize = 8192;

/// Why a resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ReverseDnsError {
    /// No servers are configured and the system's cannot be read.
    #[error("/etc/resolv.conf: cannot read the system's DNS servers for reverse DNS: {0}")]
    SystemConfig(String),
}

/// What one PTR query came to (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A valid host name.
    Name,
    /// The server says the address has no name.
    NoName,
    /// No answer within the query timeout.
    Timeout,
    /// The server failed or refused, or could not be reached.
    Error,
    /// An answer that is no host name, or no DNS message.
    Garbage,
}

impl Outcome {
    /// Every outcome, in label order.
    pub(crate) const ALL: [Self; 5] = [
        Self::Name,
        Self::NoName,
        Self::Timeout,
        Self::Error,
        Self::Garbage,
    ];

    /// The `result` label value.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::NoName => "no_name",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Garbage => "garbage",
        }
    }
}

/// A cached answer: the name (or none) and how long it is kept.
#[derive(Debug, Clone)]
struct Answer {
    name: Option<Arc<str>>,
    ttl: Duration,
}

/// Each entry expires after its own TTL.
struct ByTtl;

impl moka::Expiry<IpAddr, Answer> for ByTtl {
    fn expire_after_create(
        &self,
        _key: &IpAddr,
        value: &Answer,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The state of one address's query: `None` while it runs, then its name
/// (or none).
type Pending = watch::Receiver<Option<Option<Arc<str>>>>;

/// The reverse DNS resolver of a run. Cheap to clone (clones share the
/// cache and the queries in flight).
#[derive(Clone)]
pub struct ReverseDns {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: TokioResolver,
    cache: Cache<IpAddr, Answer>,
    // std Mutex: held for a map lookup, insert or removal only, never
    // across an await; it makes "is a query for this address running?"
    // and "start one" a single step, so an address is asked once.
    pending: Mutex<HashMap<IpAddr, Pending>>,
    // Bounds the PTR queries in flight: a cycle of a thousand traces must
    // not fire tens of thousands of queries at one server at once, and
    // hickory refuses ("busy") more than 32 per connection.
    queries: Semaphore,
    timeout: Duration,
    max_wait: Duration,
    metrics: RdnsMetrics,
}

impl std::fmt::Debug for ReverseDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseDns")
            .field("timeout", &self.inner.timeout)
            .field("max_wait", &self.inner.max_wait)
            .finish_non_exhaustive()
    }
}

impl ReverseDns {
    /// A resolver asking `config.servers` (the system's when empty). Must
    /// be called within a tokio runtime. `config.enabled` is the caller's
    /// business.
    ///
    /// # Errors
    /// No servers are configured and `/etc/resolv.conf` cannot be read.
    pub fn new(config: &RdnsConfig, metrics: RdnsMetrics) -> Result<Self, ReverseDnsError> {
        let resolver = resolver(&config.servers, config.timeout)?;
        let cache = Cache::builder()
            .max_capacity(config.cache_size as u64)
            .expire_after(ByTtl)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                resolver,
                cache,
                pending: Mutex::new(HashMap::new()),
                queries: Semaphore::new(MAX_QUERIES),
                timeout: config.timeout,
                max_wait: config.max_wait,
                metrics,
            }),
        })
    }

    /// The name of each of `addrs` (same order), `None` where there is
    /// none or it has not come by `deadline`. Never waits past `deadline`.
    pub async fn names(&self, addrs: &[IpAddr], deadline: Instant) -> Vec<Option<String>> {
        let mut known: HashMap<IpAddr, Option<Arc<str>>> = HashMap::new();
        let mut waiting: Vec<(IpAddr, Pending)> = Vec::new();
        for &addr in addrs {
            if known.contains_key(&addr) || waiting.iter().any(|(a, _)| *a == addr) {
                continue;
            }
            if let Some(answer) = self.inner.cache.get(&addr) {
                self.inner.metrics.cache_hit();
                known.insert(addr, answer.name);
                continue;
            }
            match self.query(addr) {
                Some(rx) => waiting.push((addr, rx)),
                None => {
                    known.insert(addr, None);
                }
            }
        }
        for (addr, mut rx) in waiting {
            let name = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|answered| answered.ok().and_then(|v| v.clone().flatten()));
            known.insert(addr, name);
        }
        addrs
            .iter()
            .map(|a| known.get(a).cloned().flatten().map(|n| n.to_string()))
            .collect()
    }

    /// Fill `hostname` of every answering hop of `trace`, waiting at most
    /// [`ReverseDns::max_wait`].
    pub async fn name_hops(&self, trace: &mut Trace) {
        let addrs: Vec<IpAddr> = trace.hops.iter().filter_map(|h| h.addr).collect();
        if addrs.is_empty() {
            return;
        }
        let names = self
            .names(&addrs, Instant::now() + self.inner.max_wait)
            .await;
        let mut names = names.into_iter();
        for hop in trace.hops.iter_mut().filter(|h| h.addr.is_some()) {
            hop.hostname = names.next().flatten();
        }
    }

    /// The running query of `addr`, started now if there is none; `None`
    /// when too many are waiting already.
    fn query(&self, addr: IpAddr) -> Option<Pending> {
        let mut pending = self.inner.pending.lock().ok()?;
        if let Some(rx) = pending.get(&addr) {
            return Some(rx.clone());
        }
        if pending.len() >= MAX_PENDING {
            tracing::debug!(%addr, "too many reverse DNS queries waiting; no name this time");
            return None;
        }
        let (tx, rx) = watch::channel(None);
        pending.insert(addr, rx.clone());
        drop(pending);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let (outcome, answer) = inner.ask(addr).await;
            inner.metrics.lookup(outcome);
            if !answer.ttl.is_zero() {
                inner.cache.insert(addr, answer.clone());
            }
            if let Ok(mut pending) = inner.pending.lock() {
                pending.remove(&addr);
            }
            tx.send_replace(Some(answer.name));
        });
        Some(rx)
    }
}

impl Inner {
    /// One PTR query of `addr`, under the bound on queries in flight and
    /// the query timeout.
    async fn ask(&self, addr: IpAddr) -> (Outcome, Answer) {
        let Ok(_permit) = self.queries.acquire().await else {
            return failed(Outcome::Error);
        };
        let query = self.resolver.reverse_lookup(Name::from(addr));
        match tokio::time::timeout(self.timeout, query).await {
            Err(_) => failed(Outcome::Timeout),
            Ok(Ok(lookup)) => {
                let mut ptrs = 0;
                for record in lookup.answers() {
                    if let RData::PTR(ptr) = &record.data {
                        ptrs += 1;
                        if let Some(name) = name::host_name(ptr.0.iter()) {
                            let ttl = Duration::from_secs(record.ttl.into()).min(MAX_POSITIVE_TTL);
                            return (
                                Outcome::Name,
                                Answer {
                                    name: Some(name.into()),
                                    ttl,
                                },
                            );
                        }
                    }
                }
                if ptrs == 0 {
                    no_name(None)
                } else {
                    tracing::debug!(%addr, "reverse DNS answer is no host name; dropped");
                    failed(Outcome::Garbage)
                }
            }
            Ok(Err(e)) => classify(&e),
        }
    }
}

/// A hickory resolver asking `servers` (the system's, from
/// `/etc/resolv.conf`, when empty) over UDP and TCP, recursion desired,
/// each query given one try of at most `timeout`, without a cache and
/// without the hosts file. Must be called within a tokio runtime.
///
/// # Errors
/// No servers are given and `/etc/resolv.conf` cannot be read.
pub(crate) fn resolver(
    servers: &[std::net::SocketAddr],
    timeout: Duration,
) -> Result<TokioResolver, ReverseDnsError> {
    let servers: Vec<std::net::SocketAddr> = if servers.is_empty() {
        let (system, _) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| ReverseDnsError::SystemConfig(e.to_string()))?;
        system
            .name_servers
            .into_iter()
            .map(|s| {
                let port = s.connections.first().map_or(53, |c| c.port);
                std::net::SocketAddr::new(s.ip, port)
            })
            .collect()
    } else {
        servers.to_vec()
    };
    let name_servers = servers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    // One try: the callers' waits are short, and bounded by their own
    // deadlines.
    opts.attempts = 0;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(name_servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(opts)
    .build()
    .map_err(|e| ReverseDnsError::SystemConfig(e.to_string()))
}

/// The outcome of a failed lookup.
fn classify(e: &NetError) -> (Outcome, Answer) {
    match e {
        NetError::Dns(hickory_resolver::net::DnsError::NoRecordsFound(none)) => {
            no_name(none.negative_ttl)
        }
        NetError::Timeout => failed(Outcome::Timeout),
        NetError::Proto(_) => failed(Outcome::Garbage),
        _ => failed(Outcome::Error),
    }
}

fn no_name(negative_ttl: Option<u32>) -> (Outcome, Answer) {
    let ttl = negative_ttl.map_or(MAX_NEGATIVE_TTL, |s| {
        Duration::from_secs(s.into()).min(MAX_NEGATIVE_TTL)
    });
    (Outcome::NoName, Answer { name: None, ttl })
}

const fn failed(outcome: Outcome) -> (Outcome, Answer) {
    (
        outcome,
        Answer {
            name: None,
            ttl: FAILURE_TTL,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::UdpSocket;

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Mode {
        /// Every PTR query gets this name (wire labels), TTL 300.
        Name(&'static [&'static [u8]]),
        /// NXDOMAIN.
        NoName,
        /// Nothing, ever.
        Silent,
        /// The name, after this delay.
        Late(Duration, &'static [&'static [u8]]),
    }

    /// A DNS server on 127.0.0.1 counting the queries it gets.
    async fn server(mode: Mode) -> (SocketAddr, Arc<AtomicUsize>) {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let query = buf[..n].to_vec();
                let socket = Arc::clone(&socket);
                tokio::spawn(async move {
                    let reply = match mode {
                        Mode::Silent => return,
                        Mode::NoName => answer(&query, 3, None),
                        Mode::Name(labels) => answer(&query, 0, Some(labels)),
                        Mode::Late(after, labels) => {
                            tokio::time::sleep(after).await;
                            answer(&query, 0, Some(labels))
                        }
                    };
                    let _ = socket.send_to(&reply, from).await;
                });
            }
        });
        (addr, count)
    }

    /// The reply to `query`: its id and question, `rcode`, and one PTR
    /// record of `labels` when given.
    fn answer(query: &[u8], rcode: u8, labels: Option<&[&[u8]]>) -> Vec<u8> {
        let mut end = 12;
        while query[end] != 0 {
            end += 1 + usize::from(query[end]);
        }
        end += 5;
        let mut out = query[..2].to_vec();
        out.extend_from_slice(&[
            0x81,
            0x80 | rcode,
            0,
            1,
            0,
            u8::from(labels.is_some()),
            0,
            0,
            0,
            0,
        ]);
        out.extend_from_slice(&query[12..end]);
        if let Some(labels) = labels {
            let mut rdata = Vec::new();
            for label in labels {
                rdata.push(u8::try_from(label.len()).unwrap());
                rdata.extend_from_slice(label);
            }
            rdata.push(0);
            out.extend_from_slice(&[0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 1, 0x2c]);
            out.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }

    fn resolver(server: SocketAddr, timeout: Duration) -> (ReverseDns, prometheus::Registry) {
        let registry = prometheus::Registry::new();
        let metrics = RdnsMetrics::register(&registry).unwrap();
        let config = RdnsConfig {
            enabled: true,
            servers: vec![server],
            timeout,
            max_wait: Duration::from_secs(2),
            cache_size: 16,
        };
        (ReverseDns::new(&config, metrics).unwrap(), registry)
    }

    fn counter(registry: &prometheus::Registry, name: &str, result: Option<&str>) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .filter(|m| result.is_none_or(|r| m.get_label().iter().any(|l| l.value() == r)))
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    const HOP: &str = "198.18.0.1";
    const JNB: &[&[u8]] = &[b"Core1", b"JNB", b"example", b"net"];

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_name_comes_back_validated_and_the_second_time_from_the_cache() {
        let (addr, queries) = server(Mode::Name(JNB)).await;
        let (rdns, registry) = resolver(addr, Duration::from_secs(5));
        let hop: IpAddr = HOP.parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let names = rdns.names(&[hop, v6, hop], soon()).await;
        let want = Some("core1.jnb.example.net".to_string());
        assert_eq!(names, vec![want.clone(), want.clone(), want.clone()]);
        assert_eq!(queries.load(Ordering::SeqCst), 2, "one query per address");
        assert_eq!(rdns.names(&[hop], soon()).await, vec![want]);
        assert_eq!(queries.load(Ordering::SeqCst), 2, "answered from the cache");
        assert_eq!(
            counter(&registry, "transitwatch_rdns_cache_hits_total", None),
            1
        );
        assert_eq!(
            counter(&registry, "transitwatch_rdns_lookups_total", Some("name")),
            2
        );
    }

    #[tokio::test]
    async fn no_name_is_cached_too() {
        let (addr, queries) = server(Mode::NoName).await;
        let (rdns, registry) = resolver(addr, Duration::from_secs(5));
        let hop: IpAddr = HOP.parse().unwrap();
        assert_eq!(rdns.names(&[hop], soon()).await, vec![None]);
        assert_eq!(rdns.names(&[hop], soon()).await, vec![None]);
        assert_eq!(queries.load(Ordering::SeqCst), 1);
        assert_eq!(
            counter(
                &registry,
                "transitwatch_rdns_lookups_total",
                Some("no_name")
            ),
            1
        );
    }

    #[tokio::test]
    async fn garbage_is_dropped_and_counted() {
        let (addr, _) = server(Mode::Name(&[b"bad name", b"example"])).await;
        let (rdns, registry) = resolver(addr, Duration::from_secs(5));
        let hop: IpAddr = HOP.parse().unwrap();
        assert_eq!(rdns.names(&[hop], soon()).await, vec![None]);
        assert_eq!(
            counter(
                &registry,
                "transitwatch_rdns_lookups_total",
                Some("garbage")
            ),
            1
        );
    }

    #[tokio::test]
    async fn a_silent_server_costs_the_deadline_not_the_query_timeout() {
        let (addr, _) = server(Mode::Silent).await;
        let (rdns, _) = resolver(addr, Duration::from_secs(30));
        let hop: IpAddr = HOP.parse().unwrap();
        let started = Instant::now();
        let names = rdns
            .names(&[hop], started + Duration::from_millis(100))
            .await;
        assert_eq!(names, vec![None]);
        // A hang guard, far below the 30 s query timeout.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_late_answer_fills_the_cache_for_the_next_trace() {
        let (addr, queries) = server(Mode::Late(Duration::from_millis(300), JNB)).await;
        let (rdns, registry) = resolver(addr, Duration::from_secs(5));
        let hop: IpAddr = HOP.parse().unwrap();
        let names = rdns
            .names(&[hop], Instant::now() + Duration::from_millis(10))
            .await;
        assert_eq!(names, vec![None]);
        // The query goes on in the background: the next trace waiting for
        // the same address shares it rather than asking again.
        let names = rdns.names(&[hop], soon()).await;
        assert_eq!(names, vec![Some("core1.jnb.example.net".to_string())]);
        assert_eq!(rdns.names(&[hop], soon()).await, names);
        assert_eq!(queries.load(Ordering::SeqCst), 1);
        assert_eq!(
            counter(&registry, "transitwatch_rdns_cache_hits_total", None),
            1
        );
    }

    #[tokio::test]
    async fn hops_get_names_and_silent_hops_none() {
        let (addr, _) = server(Mode::Name(JNB)).await;
        let (rdns, _) = resolver(addr, Duration::from_secs(5));
        let hop = |ttl, addr: Option<&str>| crate::model::Hop {
            ttl,
            addr: addr.map(|a| a.parse().unwrap()),
            addrs: Vec::new(),
            sent: 1,
            received: u8::from(addr.is_some()).into(),
            rtt_ms: None,
            geo: crate::model::HopGeo::default(),
            hostname: None,
            mpls: Vec::new(),
        };
        let mut trace = crate::model::Trace {
            target: crate::model::TargetRef {
                name: "t".into(),
                host: "t".into(),
                addr: None,
            },
            vantage: crate::model::VantageRef {
                name: "v".into(),
                country: None,
            },
            protocol: crate::model::Protocol::Icmp,
            port: None,
            started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            reached: false,
            hops: vec![hop(1, Some(HOP)), hop(2, None), hop(3, Some("198.18.0.2"))],
        };
        rdns.name_hops(&mut trace).await;
        let names: Vec<Option<&str>> = trace.hops.iter().map(|h| h.hostname.as_deref()).collect();
        assert_eq!(
            names,
            vec![
                Some("core1.jnb.example.net"),
                None,
                Some("core1.jnb.example.net")
            ]
        );
    }
}
