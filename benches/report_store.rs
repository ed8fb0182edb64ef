//! A generated trace history for `benches/report_scale.sh`: national
//! services traced from one vantage point over a period, written with
//! [`Store::insert`] from records judged by the real pipeline (operator
//! overrides as the geolocation source, the target's policy), so the rows
//! are the daemon's rows.
//!
//! ```sh
//! cargo bench --bench report_store -- DIR [SERVICES] [DAYS] [INTERVAL_S] [SEED]
//! ```
//!
//! (defaults 1000 services, 90 days, 28,800 s, seed 1). Writes into DIR:
//! `transitwatch.toml` (the services: names, categories, families, allowed
//! countries; the overrides below), `geo.csv` (where the routers and hosts
//! "are"), `transitwatch.db` (the history) and `params.txt` (what was made).
//!
//! The history, fixed by the seed:
//! - services in nine categories; 30% traced in both families (two paths,
//!   `NAME/ipv4` and `NAME/ipv6`); TCP 443, ICMP or UDP 53;
//! - routes per path as episodes of exponentially distributed length:
//!   domestic over one of two cores (a route change without a change of
//!   class), through South Africa (Johannesburg or Cape Town, foreign
//!   transit), answered from Ireland (via GB or NL) or the United States
//!   (foreign destination), from a domestic CDN cache; some services
//!   always abroad, some flapping, some moving abroad (or home) once; an
//!   IPv6 path through South Africa where the IPv4 one stays home;
//! - unanswered traces now and then (indeterminate), many for firewalled
//!   hosts; a few traces lost; some services added or removed during the
//!   period;
//! - the daemon stopped three times (2.6 days, 1.2 days, 9 hours: the last
//!   shorter than the hold of three trace intervals at the default
//!   interval, so bridged);
//! - a new configuration twice and GeoIP updates weekly (provenance).
//!
//! Traces are written in time order, all paths interleaved, as the daemon
//! writes them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use transitwatch::analysis::Policy;
use transitwatch::config::Config;
use transitwatch::model::{Coordinates, Family, Hop, HopGeo, RttMs, TargetRef, Trace, VantageRef};
use transitwatch::pipeline::Pipeline;
use transitwatch::store::{GeoIpDatabase, LocationFile, NewTrace, Provenance, Store};
use transitwatch::units::Timestamp;

type BoxError = Box<dyn std::error::Error>;

/// 2026-09-01T00:00:00Z: the start of the history.
const START: i64 = 1_788_220_800;
const DAY: i64 = 86_400;

/// A fixed-seed generator (splitmix64): the same history every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    #[allow(clippy::cast_precision_loss)]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An exponentially distributed length of mean `mean` seconds, at least
    /// an hour.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    fn length(&mut self, mean: i64) -> i64 {
        ((-(1.0 - self.unit()).ln() * mean as f64) as i64).max(3600)
    }
}

/// Where routers and hosts are: one override line per IPv4 and IPv6 prefix.
#[derive(Clone, Copy)]
struct Site {
    v4: &'static str,
    v6: &'static str,
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    asn: u32,
    /// Round trip from the vantage point, ms.
    rtt: f64,
    note: &'static str,
}

const BORDER: usize = 0;
const CORE_A: usize = 1;
const CORE_B: usize = 2;
const GW: usize = 3;
const JNB: usize = 4;
const CPT: usize = 5;
const LON: usize = 6;
const AMS: usize = 7;
const DUB: usize = 8;
const IAD: usize = 9;
const HOSTS: usize = 10;
const CACHE: usize = 11;
const HOSTS_IE: usize = 12;
const HOSTS_US: usize = 13;

#[rustfmt::skip]
const SITES: [Site; 14] = [
    Site { v4: "198.18.1.0/24", v6: "2001:db8:1::/48", country: "LS", city: "Maseru", lat: -29.31, lon: 27.48, asn: 64500, rtt: 0.6, note: "border" },
    Site { v4: "198.18.2.0/24", v6: "2001:db8:2::/48", country: "LS", city: "Maseru", lat: -29.31, lon: 27.48, asn: 64500, rtt: 1.0, note: "domestic core A" },
    Site { v4: "198.18.3.0/24", v6: "2001:db8:3::/48", country: "LS", city: "Maseru", lat: -29.31, lon: 27.48, asn: 64502, rtt: 1.4, note: "domestic core B (second operator)" },
    Site { v4: "198.18.6.0/24", v6: "2001:db8:6::/48", country: "LS", city: "Maseru", lat: -29.31, lon: 27.48, asn: 64501, rtt: 1.8, note: "hosting gateway" },
    Site { v4: "198.18.16.0/24", v6: "2001:db8:16::/48", country: "ZA", city: "Johannesburg", lat: -26.2, lon: 28.04, asn: 64510, rtt: 9.0, note: "transit in Johannesburg" },
    Site { v4: "198.18.17.0/24", v6: "2001:db8:17::/48", country: "ZA", city: "Cape Town", lat: -33.92, lon: 18.42, asn: 64511, rtt: 24.0, note: "transit in Cape Town" },
    Site { v4: "198.18.24.0/24", v6: "2001:db8:24::/48", country: "GB", city: "London", lat: 51.51, lon: -0.13, asn: 64520, rtt: 165.0, note: "transit in London" },
    Site { v4: "198.18.25.0/24", v6: "2001:db8:25::/48", country: "NL", city: "Amsterdam", lat: 52.37, lon: 4.9, asn: 64530, rtt: 172.0, note: "transit in Amsterdam" },
    Site { v4: "198.18.32.0/24", v6: "2001:db8:32::/48", country: "IE", city: "Dublin", lat: 53.35, lon: -6.26, asn: 64540, rtt: 176.0, note: "cloud region in Dublin" },
    Site { v4: "198.18.40.0/24", v6: "2001:db8:40::/48", country: "US", city: "Ashburn", lat: 39.04, lon: -77.49, asn: 64550, rtt: 228.0, note: "cloud region in Ashburn" },
    Site { v4: "198.19.0.0/16", v6: "2001:db8:100::/48", country: "LS", city: "Maseru", lat: -29.31, lon: 27.48, asn: 64501, rtt: 2.1, note: "domestic service hosts" },
    Site { v4: "198.18.50.0/24", v6: "2001:db8:50::/48", country: "LS", city: "Maseru", lat: -29.31, lon: 27.48, asn: 64560, rtt: 1.3, note: "a CDN's cache in Maseru" },
    Site { v4: "203.0.113.0/24", v6: "2001:db8:113::/48", country: "IE", city: "Dublin", lat: 53.35, lon: -6.26, asn: 64540, rtt: 177.0, note: "service hosts in Dublin" },
    Site { v4: "192.0.2.0/24", v6: "2001:db8:192::/48", country: "US", city: "Ashburn", lat: 39.04, lon: -77.49, asn: 64550, rtt: 229.0, note: "service hosts in Ashburn" },
];

/// Address `n` (from 1) in a site, in the family of the path.
fn addr(site: usize, n: u32, v6: bool) -> IpAddr {
    let s = &SITES[site];
    if v6 {
        let base = s.v6.split("::").next().unwrap_or(s.v6);
        format!("{base}::{n:x}").parse().expect("an IPv6 address")
    } else {
        let net: std::net::Ipv4Addr =
            s.v4.split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("an IPv4 prefix");
        let len: u32 =
            s.v4.split('/')
                .nth(1)
                .and_then(|l| l.parse().ok())
                .unwrap_or(24);
        let n = if len == 16 {
            // Skip .0 and .255 in each /24 of the /16.
            (n / 250) << 8 | (n % 250 + 1)
        } else {
            n % 254 + 1
        };
        IpAddr::V4(std::net::Ipv4Addr::from(u32::from(net) + n))
    }
}

/// A route's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Domestic over core A.
    DomesticA,
    /// Domestic over core B: another path, the same class.
    DomesticB,
    /// Out to Johannesburg and back: foreign transit.
    Johannesburg,
    /// Out to Cape Town and back.
    CapeTown,
    /// Answered from Dublin, via London.
    Dublin,
    /// Answered from Dublin, via Amsterdam.
    DublinNl,
    /// Answered from Ashburn.
    Ashburn,
    /// Answered from the CDN's cache in Maseru.
    Cache,
}

/// One hop of a route: a router (site, address number) or silence.
enum Step {
    At(usize, u32),
    Silent,
}

/// The hops of `route` for service `s` (without the destination) and the
/// destination's site and address number.
fn route(route: Route, s: u32) -> (Vec<Step>, usize, u32) {
    use Step::{At, Silent};
    let home = (HOSTS, s + 1);
    match route {
        Route::DomesticA => (
            vec![At(BORDER, 1), At(CORE_A, 1 + s % 4), At(GW, 1 + s % 2)],
            home.0,
            home.1,
        ),
        Route::DomesticB => (
            vec![
                At(BORDER, 1),
                At(CORE_B, 1 + s % 3),
                At(CORE_B, 10 + s % 3),
                At(GW, 1 + s % 2),
            ],
            home.0,
            home.1,
        ),
        Route::Johannesburg => (
            vec![
                At(BORDER, 1),
                At(JNB, 1 + s % 4),
                At(JNB, 20 + s % 2),
                Silent,
                At(GW, 1),
            ],
            home.0,
            home.1,
        ),
        Route::CapeTown => (
            vec![
                At(BORDER, 1),
                At(JNB, 1),
                At(CPT, 1 + s % 3),
                At(CPT, 30),
                At(GW, 2),
            ],
            home.0,
            home.1,
        ),
        Route::Dublin => (
            vec![
                At(BORDER, 1),
                At(JNB, 1 + s % 4),
                At(JNB, 20),
                At(LON, 1 + s % 2),
                At(LON, 9),
                Silent,
                At(DUB, 1 + s % 3),
            ],
            HOSTS_IE,
            s + 1,
        ),
        Route::DublinNl => (
            vec![
                At(BORDER, 1),
                At(JNB, 2),
                At(AMS, 1 + s % 2),
                At(AMS, 7),
                At(DUB, 4),
            ],
            HOSTS_IE,
            s + 1,
        ),
        Route::Ashburn => (
            vec![
                At(BORDER, 1),
                At(JNB, 1 + s % 4),
                At(JNB, 21),
                Silent,
                At(IAD, 1 + s % 3),
                At(IAD, 11),
                At(IAD, 12 + s % 2),
            ],
            HOSTS_US,
            s + 1,
        ),
        Route::Cache => (vec![At(BORDER, 1), At(CORE_A, 1 + s % 4)], CACHE, 1 + s % 8),
    }
}

/// A path's routes over the period: (from, route), in time order.
type Episodes = Vec<(i64, Route)>;

/// Alternating routes `a` and `b` of mean lengths `mean_a`, `mean_b` from
/// `start` to `end`, starting in either as often as each holds.
fn alternate(rng: &mut Rng, start: i64, end: i64, a: (Route, i64), b: (Route, i64)) -> Episodes {
    #[allow(clippy::cast_precision_loss)]
    let mut in_a = rng.chance(a.1 as f64 / (a.1 + b.1) as f64);
    let mut t = start;
    let mut out = Vec::new();
    while t < end {
        let (r, mean) = if in_a { a } else { b };
        out.push((t, r));
        t += rng.length(mean);
        in_a = !in_a;
    }
    out
}

/// `base` with `route` from `from` to `to` laid over it.
fn overlay(base: &Episodes, from: i64, to: i64, route: Route) -> Episodes {
    let at = |t: i64| {
        base.iter()
            .take_while(|(s, _)| *s <= t)
            .last()
            .map_or(base[0].1, |e| e.1)
    };
    let resume = at(to);
    let mut out: Episodes = base.iter().copied().filter(|(s, _)| *s < from).collect();
    out.push((from, route));
    out.push((to, resume));
    out.extend(base.iter().copied().filter(|(s, _)| *s > to));
    out
}

/// How a service behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// At home, over one core or the other; now and then out through ZA.
    Domestic,
    /// Home and through ZA by turns.
    Flapping,
    /// Always through ZA.
    Transit,
    /// Hosted in Dublin.
    Ireland,
    /// Hosted in Ashburn.
    States,
    /// A CDN: the Maseru cache or the origin abroad, by turns.
    Cdn,
    /// Moved abroad (or home) once.
    Moved,
    /// At home behind a firewall that drops many probes.
    Firewalled,
}

struct Service {
    name: String,
    category: &'static str,
    protocol: &'static str,
    dual: bool,
    allowed_za: bool,
    profile: Profile,
    /// When it was traced: added and removed during the period for a few.
    life: (i64, i64),
}

const CATEGORIES: [(&str, &str, u64); 9] = [
    ("government", "gov", 20),
    ("finance", "fin", 12),
    ("health", "health", 10),
    ("education", "edu", 15),
    ("telecom", "tel", 8),
    ("media", "media", 10),
    ("commerce", "shop", 15),
    ("utilities", "util", 5),
    ("dns", "dns", 5),
];

fn services(rng: &mut Rng, n: u32, start: i64, end: i64) -> Vec<Service> {
    let days = (end - start) / DAY;
    (0..n)
        .map(|i| {
            let mut pick = rng.below(100);
            let (category, prefix, _) = CATEGORIES
                .iter()
                .copied()
                .find(|c| {
                    if pick < c.2 {
                        true
                    } else {
                        pick -= c.2;
                        false
                    }
                })
                .unwrap_or(CATEGORIES[0]);
            let p = rng.below(100);
            let profile = match p {
                0..=44 => Profile::Domestic,
                45..=62 => Profile::Flapping,
                63..=74 => Profile::Transit,
                75..=79 => Profile::Ireland,
                80..=82 => Profile::States,
                83..=89 => Profile::Cdn,
                90..=94 => Profile::Moved,
                _ => Profile::Firewalled,
            };
            let life_start = if rng.chance(0.02) {
                start + (5 + rng.below(u64::try_from(days / 2).unwrap_or(1)) as i64) * DAY
            } else {
                start
            };
            let life_end = if rng.chance(0.01) {
                end - (5 + rng.below(u64::try_from(days / 3).unwrap_or(1)) as i64) * DAY
            } else {
                end
            };
            Service {
                name: format!("{prefix}-{i:04}"),
                category,
                protocol: if category == "dns" {
                    "udp"
                } else if rng.chance(0.65) {
                    "tcp"
                } else {
                    "icmp"
                },
                dual: rng.chance(0.3),
                allowed_za: category == "finance" && rng.chance(0.3),
                profile,
                life: (life_start, life_end.max(life_start + DAY)),
            }
        })
        .collect()
}

/// The routes of one path of `svc` over the period.
fn episodes(rng: &mut Rng, svc: &Service, v6: bool, start: i64, end: i64) -> Episodes {
    use Route::{Ashburn, Cache, CapeTown, DomesticA, DomesticB, Dublin, DublinNl, Johannesburg};
    // Many IPv6 paths leave the country where the IPv4 one stays home
    // (no domestic IPv6 peering).
    let home_v6_out = v6 && rng.chance(0.4);
    match svc.profile {
        Profile::Domestic | Profile::Firewalled if home_v6_out => alternate(
            rng,
            start,
            end,
            (Johannesburg, 20 * DAY),
            (CapeTown, 4 * DAY),
        ),
        Profile::Domestic | Profile::Firewalled => {
            let mut e = alternate(rng, start, end, (DomesticA, 12 * DAY), (DomesticB, 2 * DAY));
            // Incidents: out through South Africa for hours to days.
            if rng.chance(0.3) {
                for _ in 0..=rng.below(2) {
                    let from = start
                        + i64::try_from(rng.below(u64::try_from(end - start).unwrap_or(1)))
                            .unwrap_or(0);
                    let to = (from + rng.length(DAY / 2)).min(end);
                    e = overlay(&e, from, to, Johannesburg);
                }
            }
            e
        }
        Profile::Flapping => alternate(
            rng,
            start,
            end,
            (DomesticA, 4 * DAY),
            (Johannesburg, 3 * DAY / 2),
        ),
        Profile::Transit => alternate(
            rng,
            start,
            end,
            (Johannesburg, 10 * DAY),
            (CapeTown, 3 * DAY),
        ),
        Profile::Ireland => alternate(rng, start, end, (Dublin, 20 * DAY), (DublinNl, 5 * DAY)),
        Profile::States => vec![(start, Ashburn)],
        Profile::Cdn => {
            let origin = if rng.chance(0.5) { Dublin } else { Ashburn };
            alternate(rng, start, end, (Cache, 2 * DAY), (origin, DAY))
        }
        Profile::Moved => {
            let abroad = if rng.chance(0.5) { Dublin } else { Ashburn };
            let at = start + (10 + i64::try_from(rng.below(70)).unwrap_or(0)) * DAY;
            if rng.chance(0.7) {
                vec![(start, DomesticA), (at, abroad)]
            } else {
                vec![(start, abroad), (at, DomesticA)]
            }
        }
    }
}

/// One path: its key, service and routes.
struct PathPlan {
    key: String,
    service: usize,
    v6: bool,
    episodes: Episodes,
    cursor: usize,
}

/// A hop as the prober reports it: `sent` probes, `received` replies.
#[allow(clippy::cast_possible_truncation)]
fn hop(ttl: u8, addrs: Vec<IpAddr>, received: u32, best: f64) -> Hop {
    let rtt_ms = (received > 0).then(|| {
        let best = (best * 1000.0).round() / 1000.0;
        RttMs {
            best,
            avg: ((best + 0.4) * 1000.0).round() / 1000.0,
            worst: ((best + 0.9) * 1000.0).round() / 1000.0,
        }
    });
    Hop {
        ttl,
        addr: addrs.first().copied(),
        addrs,
        sent: 3,
        received,
        rtt_ms,
        geo: HopGeo::default(),
        hostname: None,
        mpls: Vec::new(),
    }
}

/// The trace of `svc` along `r` at `at` (unanswered: the gateway and the
/// first two routers, then silence).
fn trace(
    rng: &mut Rng,
    svc: &Service,
    index: u32,
    v6: bool,
    r: Route,
    at: i64,
    unanswered: bool,
) -> Trace {
    let (steps, dest_site, dest_n) = route(r, index);
    let dest = addr(dest_site, dest_n, v6);
    let mut hops = Vec::new();
    let mut ttl = 0u8;
    let push = |ttl: u8, step: &Step, rng: &mut Rng| match *step {
        Step::Silent => hop(ttl, Vec::new(), 0, 0.0),
        Step::At(site, n) => {
            let received = if rng.chance(0.03) { 2 } else { 3 };
            let mut addrs = vec![addr(site, n, v6)];
            // An ECMP sibling answering some probes in Johannesburg.
            if site == JNB && n >= 20 && rng.chance(0.5) {
                addrs.push(addr(site, n + 2, v6));
            }
            hop(
                ttl,
                addrs,
                received,
                SITES[site].rtt + f64::from(ttl) * 0.05 + rng.unit() * 0.8,
            )
        }
    };
    // The vantage point's own gateway (a private address: located nowhere).
    ttl += 1;
    let lan: IpAddr = if v6 { "fd00:10::1" } else { "10.10.0.1" }
        .parse()
        .expect("an address");
    hops.push(hop(ttl, vec![lan], 3, 0.2 + rng.unit() * 0.2));
    for step in &steps {
        if unanswered && ttl >= 3 {
            break;
        }
        ttl += 1;
        hops.push(push(ttl, step, rng));
    }
    if unanswered {
        for _ in 0..8 {
            ttl += 1;
            hops.push(hop(ttl, Vec::new(), 0, 0.0));
        }
    } else {
        ttl += 1;
        let received = if rng.chance(0.05) { 1 } else { 3 };
        hops.push(hop(
            ttl,
            vec![dest],
            received,
            SITES[dest_site].rtt + f64::from(ttl) * 0.05 + rng.unit() * 0.8,
        ));
    }
    let (protocol, port) = match svc.protocol {
        "tcp" => (transitwatch::model::Protocol::Tcp, Some(443)),
        "udp" => (transitwatch::model::Protocol::Udp, Some(53)),
        _ => (transitwatch::model::Protocol::Icmp, None),
    };
    Trace {
        target: TargetRef {
            name: svc.name.clone(),
            host: format!("{}.example.ls", svc.name),
            addr: Some(dest),
        },
        vantage: VantageRef {
            name: "maseru-1".to_string(),
            country: Some("LS".parse().expect("a country")),
        },
        protocol,
        port,
        started_at: Timestamp::from_unix(at).expect("a time"),
        reached: !unanswered,
        hops,
    }
}

fn write_config(dir: &Path, services: &[Service], interval: i64) -> Result<PathBuf, BoxError> {
    let mut csv = String::from(
        "# Where the report benchmark's routers and hosts are (prefix,country,city,lat,lon,asn,note).\n\
         prefix,country,city,lat,lon,asn,note\n",
    );
    for s in &SITES {
        for net in [s.v4, s.v6] {
            writeln!(
                csv,
                "{net},{},{},{},{},{},{}",
                s.country, s.city, s.lat, s.lon, s.asn, s.note
            )?;
        }
    }
    std::fs::write(dir.join("geo.csv"), csv)?;
    let mut toml = format!(
        "# The services of the report benchmark (benches/report_store.rs).\n\
         [vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\nlatitude = -29.31\nlongitude = 27.48\n\n\
         [policy]\nhome = \"LS\"\n\n[geoip]\noverrides = \"geo.csv\"\n\n\
         [probe]\ninterval = \"{interval}s\"\njitter = \"30s\"\n\n\
         [store]\npath = \"transitwatch.db\"\nmax_age = \"none\"\nmax_size = \"none\"\n"
    );
    for s in services {
        write!(
            toml,
            "\n[[target]]\nname = \"{}\"\nhost = \"{}.example.ls\"\ncategory = \"{}\"\nprotocol = \"{}\"\n",
            s.name, s.name, s.category, s.protocol
        )?;
        match s.protocol {
            "tcp" => toml.push_str("port = 443\n"),
            "udp" => toml.push_str("port = 53\n"),
            _ => {}
        }
        if s.dual {
            toml.push_str("family = \"both\"\n");
        }
        if s.allowed_za {
            toml.push_str("allowed_countries = [\"LS\", \"ZA\"]\n");
        }
    }
    let path = dir.join("transitwatch.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

#[allow(clippy::too_many_lines)]
fn main() -> Result<(), BoxError> {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        return Err("usage: report_store DIR [SERVICES] [DAYS] [INTERVAL_S] [SEED]".into());
    };
    let num = |i: usize, default: i64| -> Result<i64, BoxError> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let n_services = u32::try_from(num(1, 1000)?)?;
    let days = num(2, 90)?;
    let interval = num(3, 28_800)?;
    let seed = u64::try_from(num(4, 1)?)?;
    let (start, end) = (START, START + days * DAY);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("transitwatch.db");
    for f in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{f}", db.display()));
    }
    let clock = Instant::now();
    let mut rng = Rng(seed);
    let services = services(&mut rng, n_services, start, end);
    let config = Config::load(&write_config(&dir, &services, interval)?)?;
    let pipeline = Pipeline::open(Some(&config), &[], None)?.with_vantage_at(
        config
            .vantage
            .latitude
            .zip(config.vantage.longitude)
            .map(|(lat, lon)| Coordinates { lat, lon }),
    );
    let policies: HashMap<&str, Policy> = config
        .targets
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                Policy {
                    home: Some(config.policy.home),
                    also_home: Vec::new(),
                    allowed: t.allowed_countries.clone(),
                    min_confidence: config.policy.min_confidence,
                    counts_only: false,
                },
            )
        })
        .collect();
    let mut paths = Vec::new();
    for (i, svc) in services.iter().enumerate() {
        let family = config
            .targets
            .iter()
            .find(|t| t.name == svc.name)
            .map_or(Family::Auto, |t| t.family);
        let keys: Vec<(String, bool)> = if family == Family::Both {
            vec![
                (format!("{}/ipv4", svc.name), false),
                (format!("{}/ipv6", svc.name), true),
            ]
        } else {
            vec![(svc.name.clone(), false)]
        };
        for (key, v6) in keys {
            let episodes = episodes(&mut rng, svc, v6, start, end);
            paths.push(PathPlan {
                key,
                service: i,
                v6,
                episodes,
                cursor: 0,
            });
        }
    }
    // The daemon's stops: (from, length) in seconds after the start.
    let stops = [
        (days * DAY * 26 / 100, DAY * 26 / 10),
        (days * DAY * 69 / 100, DAY * 12 / 10),
        (days * DAY * 89 / 100, 9 * 3600),
    ];
    let stopped = |t: i64| {
        stops
            .iter()
            .any(|&(a, l)| t >= start + a && t < start + a + l)
    };
    // Every trace: (time, path), in time order.
    let mut events: Vec<(i64, u32)> = Vec::new();
    for (p, path) in paths.iter().enumerate() {
        let life = services[path.service].life;
        let phase = i64::try_from(rng.below(u64::try_from(interval)?))?;
        let mut t = start + phase;
        while t < end {
            let at = t + i64::try_from(rng.below(61))? - 30;
            if at >= life.0
                && at < life.1
                && at >= start
                && at < end
                && !stopped(at)
                && !rng.chance(0.002)
            {
                events.push((at, u32::try_from(p)?));
            }
            t += interval;
        }
    }
    events.sort_unstable();
    // Provenance: configuration generations (the last one is this
    // configuration) and weekly GeoIP builds.
    let generations = [
        (start, "1".repeat(64), "0.1.0"),
        (
            start + stops[0].0,
            "2".repeat(64),
            env!("CARGO_PKG_VERSION"),
        ),
        (
            start + stops[1].0,
            config.sha256.clone(),
            env!("CARGO_PKG_VERSION"),
        ),
    ];
    // The overrides file, as the daemon records it.
    let location_files = LocationFile::of(pipeline.geo().location_files());
    let mut provenances: HashMap<(usize, i64), Arc<Provenance>> = HashMap::new();
    let mut store = Store::open(&db)?;
    let mut classes: HashMap<&'static str, u64> = HashMap::new();
    for (n, &(at, p)) in events.iter().enumerate() {
        let path = &mut paths[p as usize];
        while path.cursor + 1 < path.episodes.len() && path.episodes[path.cursor + 1].0 <= at {
            path.cursor += 1;
        }
        let r = path.episodes[path.cursor].1;
        let svc = &services[path.service];
        let unanswered = rng.chance(if svc.profile == Profile::Firewalled {
            0.25
        } else {
            0.004
        });
        let index = u32::try_from(path.service)?;
        let t = trace(&mut rng, svc, index, path.v6, r, at, unanswered);
        let record = pipeline.judge(t, &policies[svc.name.as_str()]);
        *classes.entry(record.verdict.class.as_str()).or_default() += 1;
        let generation = generations.iter().rposition(|g| g.0 <= at).unwrap_or(0);
        // GeoLite2 builds: Tuesdays and Fridays.
        let week = (at - start + 4 * DAY) / (7 * DAY);
        let provenance = provenances
            .entry((generation, week))
            .or_insert_with(|| {
                let build = u64::try_from(start - 4 * DAY + week * 7 * DAY).unwrap_or(0);
                Arc::new(Provenance {
                    config_sha256: Some(generations[generation].1.clone()),
                    geoip: vec![
                        GeoIpDatabase {
                            kind: "city".to_string(),
                            database_type: "GeoLite2-City".to_string(),
                            build_epoch: build,
                            vendor: None,
                            sha256: None,
                        },
                        GeoIpDatabase {
                            kind: "asn".to_string(),
                            database_type: "GeoLite2-ASN".to_string(),
                            build_epoch: build,
                            vendor: None,
                            sha256: None,
                        },
                    ],
                    location_files: location_files.clone(),
                    version: generations[generation].2.to_string(),
                })
            })
            .clone();
        let duration = match r {
            Route::Dublin | Route::DublinNl | Route::Ashburn => 900 + rng.below(600),
            _ => 120 + rng.below(300),
        } + if unanswered { 3000 } else { 0 };
        store.insert(&NewTrace {
            path_key: path.key.parse()?,
            record,
            duration: Some(Duration::from_millis(duration)),
            packet_size: Some(64),
            provenance,
        })?;
        if n % 50_000 == 0 && n > 0 {
            eprintln!(
                "{n} of {} traces written, {:.0} s",
                events.len(),
                clock.elapsed().as_secs_f64()
            );
        }
    }
    let in_use = store.bytes_in_use()?;
    drop(store);
    let bytes = std::fs::metadata(&db)?.len();
    let mut classes: Vec<_> = classes.into_iter().collect();
    classes.sort_unstable();
    let params = format!(
        "services {n_services}\npaths {}\ndual_stack {}\ndays {days}\ninterval_s {interval}\nseed {seed}\n\
         since {}\nuntil {}\ntraces {}\nbytes {bytes}\nbytes_in_use {in_use}\nclasses {}\ngenerated_s {:.1}\n",
        paths.len(),
        services.iter().filter(|s| s.dual).count(),
        Timestamp::from_unix(start)?,
        Timestamp::from_unix(end)?,
        events.len(),
        classes.iter().map(|(c, n)| format!("{c}={n}")).collect::<Vec<_>>().join(","),
        clock.elapsed().as_secs_f64(),
    );
    std::fs::write(dir.join("params.txt"), &params)?;
    print!("{params}");
    Ok(())
}
