//! The `transitwatch.trace/1` record as one line of JSON, written directly.
//!
//! `analyze --json` writes a record for every trace of files with millions
//! of them; through serde_json's generic serializer every key goes through
//! string escaping and every address through `fmt`. This writer knows the
//! record's shape: keys are written pre-quoted, integers with `itoa`, floats
//! with `zmij` (the formatter serde_json itself uses), addresses by
//! hand ([`crate::ip_text`]), and strings are escaped only when they hold a character that needs
//! it. Its output is byte for byte serde_json's (`serde_json::to_writer` of
//! the [`TraceRecord`]), which the tests check; everything else (daemon,
//! store, export, API) keeps the serde derive.

use crate::model::{Anomaly, CountryCode, Hop, HopGeo, TraceRecord};
use std::net::IpAddr;

/// Append `record` as JSON (without a line break) to `out` with a fresh
/// writer (the tests' reference use; `analyze` keeps one per thread).
#[cfg(test)]
pub fn write(out: &mut Vec<u8>, record: &TraceRecord) {
    RecordWriter::new().write(out, record);
}

/// How many coordinates [`RecordWriter`] remembers (a power of two).
const COORDINATE_SLOTS: usize = 1024;

/// A record writer for a stream of records: remembers the text of recent
/// coordinates, which repeat from hop to hop (every router of a city has
/// the city's latitude and longitude), so that each is formatted once.
#[derive(Debug, Clone)]
pub struct RecordWriter {
    /// Direct-mapped by a hash of the value's bits: (bits, length, text);
    /// `u64::MAX` (a NaN, never stored) marks an empty slot.
    coordinates: Box<[(u64, u8, [u8; 31])]>,
}

impl Default for RecordWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordWriter {
    /// A writer that remembers nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            coordinates: vec![(u64::MAX, 0, [0; 31]); COORDINATE_SLOTS].into_boxed_slice(),
        }
    }

    /// Append `record` as JSON (without a line break) to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, record: &TraceRecord) {
        write_record(self, out, record);
    }

    /// A latitude or longitude, as [`float`] writes it.
    fn coordinate(&mut self, out: &mut Vec<u8>, f: Option<f64>) {
        let Some(f) = f.filter(|f| f.is_finite()) else {
            return opt_float(out, f);
        };
        let bits = f.to_bits();
        let slot = (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % COORDINATE_SLOTS;
        let (key, len, text) = &mut self.coordinates[slot];
        if *key != bits {
            let mut buffer = zmij::Buffer::new();
            let formatted = buffer.format_finite(f).as_bytes();
            let Ok(n) = u8::try_from(formatted.len()) else {
                return out.extend_from_slice(formatted);
            };
            if formatted.len() > text.len() {
                return out.extend_from_slice(formatted);
            }
            text[..formatted.len()].copy_from_slice(formatted);
            (*key, *len) = (bits, n);
        }
        // A fixed-size copy cut to length: no call for a few bytes.
        let start = out.len();
        out.extend_from_slice(text);
        out.truncate(start + usize::from(*len));
    }
}

fn write_record(w: &mut RecordWriter, out: &mut Vec<u8>, record: &TraceRecord) {
    let t = &record.trace;
    out.extend_from_slice(b"{\"schema\":");
    string(out, &record.schema);
    out.extend_from_slice(b",\"target\":{\"name\":");
    string(out, &t.target.name);
    out.extend_from_slice(b",\"host\":");
    string(out, &t.target.host);
    out.extend_from_slice(b",\"addr\":");
    opt_addr(out, t.target.addr);
    out.extend_from_slice(b"},\"vantage\":{\"name\":");
    string(out, &t.vantage.name);
    out.extend_from_slice(b",\"country\":");
    opt_country(out, t.vantage.country);
    out.extend_from_slice(b"},\"protocol\":\"");
    out.extend_from_slice(t.protocol.as_str().as_bytes());
    out.push(b'"');
    if let Some(port) = t.port {
        out.extend_from_slice(b",\"port\":");
        int(out, port);
    }
    out.extend_from_slice(b",\"started_at\":\"");
    t.started_at.write_rfc3339(out);
    out.push(b'"');
    out.extend_from_slice(b",\"reached\":");
    boolean(out, t.reached);
    out.extend_from_slice(b",\"hops\":");
    list(out, &t.hops, |out, hop| write_hop(w, out, hop));
    let v = &record.verdict;
    out.extend_from_slice(b",\"verdict\":{\"class\":\"");
    out.extend_from_slice(v.class.as_str().as_bytes());
    out.extend_from_slice(b"\",\"countries\":");
    countries(out, &v.countries);
    out.extend_from_slice(b",\"foreign_countries\":");
    countries(out, &v.foreign_countries);
    out.extend_from_slice(b",\"foreign_asns\":");
    ints(out, &v.foreign_asns);
    out.extend_from_slice(b",\"violation\":");
    boolean(out, v.violation);
    out.extend_from_slice(b",\"path_id\":");
    string(out, &v.path_id);
    out.extend_from_slice(b",\"explanation\":");
    string(out, &v.explanation);
    out.extend_from_slice(b",\"suspect_countries\":");
    list(out, &v.suspect_countries, |out, s| {
        out.extend_from_slice(b"{\"country\":");
        country(out, s.country);
        out.extend_from_slice(b",\"ttls\":");
        ints(out, &s.ttls);
        out.extend_from_slice(b",\"reason\":");
        string(out, &s.reason);
        out.push(b'}');
    });
    out.extend_from_slice(b",\"anomalies\":");
    list(out, &v.anomalies, |out, a| {
        match a {
            Anomaly::ForwardingLoop { addr: a, ttls } => {
                out.extend_from_slice(b"{\"kind\":\"forwarding_loop\",\"addr\":");
                addr(out, *a);
                out.extend_from_slice(b",\"ttls\":");
                ints(out, ttls);
            }
            Anomaly::DestinationNotReached {
                last_responding_ttl,
            } => {
                out.extend_from_slice(
                    b"{\"kind\":\"destination_not_reached\",\"last_responding_ttl\":",
                );
                opt_int(out, *last_responding_ttl);
            }
        }
        out.push(b'}');
    });
    if let Some(c) = v.confidence {
        out.extend_from_slice(b",\"confidence\":\"");
        out.extend_from_slice(c.as_str().as_bytes());
        out.push(b'"');
    }
    if !v.claims.is_empty() {
        // Written here like the hops: most foreign paths have claims.
        out.extend_from_slice(b",\"claims\":");
        list(out, &v.claims, |out, c| {
            out.extend_from_slice(b"{\"country\":");
            country(out, c.country);
            out.extend_from_slice(b",\"confidence\":\"");
            out.extend_from_slice(c.confidence.as_str().as_bytes());
            out.extend_from_slice(b"\",\"ttls\":");
            ints(out, &c.ttls);
            out.extend_from_slice(b",\"suspected\":");
            boolean(out, c.suspected);
            out.extend_from_slice(b",\"reason\":");
            string(out, &c.reason);
            out.push(b'}');
        });
    }
    if !v.exchanges.is_empty() {
        out.extend_from_slice(b",\"exchanges\":");
        nested(out, &v.exchanges);
    }
    out.push(b'}');
    if let Some(dns) = &record.dns {
        // Only the daemon's records carry it: the generic path is enough.
        out.extend_from_slice(b",\"dns\":");
        nested(out, dns);
    }
    if let Some(ids) = &record.atlas {
        out.extend_from_slice(b",\"atlas\":{\"msm_id\":");
        opt_int(out, ids.msm_id);
        out.extend_from_slice(b",\"prb_id\":");
        int(out, ids.prb_id);
        out.push(b'}');
    }
    if let Some(path) = &record.tracelb {
        // Only paths of `tracelb` records carry it: the generic path is
        // enough.
        out.extend_from_slice(b",\"tracelb\":");
        nested(out, path);
    }
    if let Some(multipath) = &record.multipath {
        // Only the daemon's records of an enumerating attempt carry it:
        // the generic path is enough.
        out.extend_from_slice(b",\"multipath\":");
        nested(out, multipath);
    }
    out.push(b'}');
}

fn write_hop(w: &mut RecordWriter, out: &mut Vec<u8>, hop: &Hop) {
    out.extend_from_slice(b"{\"ttl\":");
    int(out, hop.ttl);
    out.extend_from_slice(b",\"addr\":");
    opt_addr(out, hop.addr);
    out.extend_from_slice(b",\"addrs\":");
    list(out, &hop.addrs, |out, a| addr(out, *a));
    out.extend_from_slice(b",\"sent\":");
    int(out, hop.sent);
    out.extend_from_slice(b",\"received\":");
    int(out, hop.received);
    out.extend_from_slice(b",\"rtt_ms\":");
    match hop.rtt_ms {
        Some(r) => {
            out.extend_from_slice(b"{\"best\":");
            float(out, r.best);
            out.extend_from_slice(b",\"avg\":");
            float(out, r.avg);
            out.extend_from_slice(b",\"worst\":");
            float(out, r.worst);
            out.push(b'}');
        }
        None => null(out),
    }
    out.extend_from_slice(b",\"geo\":");
    write_geo(w, out, &hop.geo);
    if let Some(name) = &hop.hostname {
        out.extend_from_slice(b",\"hostname\":");
        string(out, name);
    }
    if !hop.mpls.is_empty() {
        out.extend_from_slice(b",\"mpls\":");
        list(out, &hop.mpls, |out, l| {
            out.extend_from_slice(b"{\"label\":");
            int(out, l.label);
            out.extend_from_slice(b",\"tc\":");
            int(out, l.tc);
            out.extend_from_slice(b",\"s\":");
            boolean(out, l.s);
            out.extend_from_slice(b",\"ttl\":");
            int(out, l.ttl);
            out.push(b'}');
        });
    }
    out.push(b'}');
}

fn write_geo(w: &mut RecordWriter, out: &mut Vec<u8>, g: &HopGeo) {
    out.extend_from_slice(b"{\"country\":");
    opt_country(out, g.country);
    out.extend_from_slice(b",\"city\":");
    opt_string(out, g.city.as_deref());
    out.extend_from_slice(b",\"lat\":");
    w.coordinate(out, g.lat);
    out.extend_from_slice(b",\"lon\":");
    w.coordinate(out, g.lon);
    out.extend_from_slice(b",\"asn\":");
    opt_int(out, g.asn);
    out.extend_from_slice(b",\"as_org\":");
    opt_string(out, g.as_org.as_deref());
    out.extend_from_slice(b",\"source\":\"");
    out.extend_from_slice(g.source.as_str().as_bytes());
    out.extend_from_slice(b"\",\"plausible\":");
    match g.plausible {
        Some(p) => boolean(out, p),
        None => null(out),
    }
    out.extend_from_slice(b",\"database\":");
    opt_string(out, g.database.as_deref());
    out.extend_from_slice(b",\"accuracy_km\":");
    opt_int(out, g.accuracy_km);
    if let Some(c) = g.confidence {
        out.extend_from_slice(b",\"confidence\":\"");
        out.extend_from_slice(c.as_str().as_bytes());
        out.push(b'"');
    }
    if let Some(ixp) = &g.ixp {
        out.extend_from_slice(b",\"ixp\":");
        nested(out, ixp);
    }
    if !g.evidence.is_empty() {
        out.extend_from_slice(b",\"evidence\":");
        nested(out, &g.evidence);
    }
    out.push(b'}');
}

/// The rarer, nested parts of a record (evidence lists, exchanges, claims)
/// are written by serde itself: they are small next to the hops, and one
/// writer for them cannot drift from the derived form.
fn nested<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing plain data into a Vec cannot fail: no I/O, no maps with
    // non-string keys.
    if serde_json::to_writer(&mut *out, value).is_err() {
        null(out);
    }
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true".as_slice() } else { b"false" });
}

fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_int(out: &mut Vec<u8>, n: Option<impl itoa::Integer>) {
    match n {
        Some(n) => int(out, n),
        None => null(out),
    }
}

/// `[a,b,...]`, each item written by `item`.
fn list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

fn ints<T: itoa::Integer + Copy>(out: &mut Vec<u8>, ns: &[T]) {
    list(out, ns, |out, n| int(out, *n));
}

/// As serde_json: the shortest round-trip form, `null` when not finite.
fn float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes());
    } else {
        null(out);
    }
}

fn opt_float(out: &mut Vec<u8>, f: Option<f64>) {
    match f {
        Some(f) => float(out, f),
        None => null(out),
    }
}

fn country(out: &mut Vec<u8>, c: CountryCode) {
    out.push(b'"');
    out.extend_from_slice(c.as_str().as_bytes());
    out.push(b'"');
}

fn opt_country(out: &mut Vec<u8>, c: Option<CountryCode>) {
    match c {
        Some(c) => country(out, c),
        None => null(out),
    }
}

fn countries(out: &mut Vec<u8>, cs: &[CountryCode]) {
    list(out, cs, |out, c| country(out, *c));
}

/// An address as its `Display` form in quotes (what serde writes).
fn addr(out: &mut Vec<u8>, a: IpAddr) {
    out.push(b'"');
    crate::ip_text::write(out, a);
    out.push(b'"');
}

fn opt_addr(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        Some(a) => addr(out, a),
        None => null(out),
    }
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => null(out),
    }
}

/// What a byte becomes in a JSON string, as serde_json escapes it:
/// 0 for itself, else the letter after the backslash (`u` for `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// A JSON string; copied in one piece when nothing in it needs escaping.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(escape);
        if escape == b'u' {
            out.extend_from_slice(b"00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::write;
    use crate::model::{
        Anomaly, GeoSource, Hop, HopGeo, MplsLabel, PathVerdict, Protocol, RttMs, SuspectCountry,
        TargetRef, Trace, TraceRecord, VantageRef, VerdictClass,
    };
    use crate::test_rng::Rng;

    fn same_as_serde(record: &TraceRecord) {
        let theirs = String::from_utf8(serde_json::to_vec(record).unwrap()).unwrap();
        let mut mine = Vec::new();
        write(&mut mine, record);
        assert_eq!(String::from_utf8(mine).unwrap(), theirs);
        // Again through one writer: coordinates now come from its memory.
        let mut writer = super::RecordWriter::new();
        for _ in 0..2 {
            let mut mine = Vec::new();
            writer.write(&mut mine, record);
            assert_eq!(String::from_utf8(mine).unwrap(), theirs);
        }
    }

    fn hop(ttl: u8, addrs: &[&str], rtt: Option<(f64, f64, f64)>, geo: HopGeo) -> Hop {
        let addrs: Vec<std::net::IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        Hop {
            ttl,
            addr: addrs.first().copied(),
            addrs,
            sent: 3,
            received: u32::from(rtt.is_some()) * 3,
            rtt_ms: rtt.map(|(best, avg, worst)| RttMs { best, avg, worst }),
            geo,
            hostname: None,
            mpls: Vec::new(),
        }
    }

    #[test]
    fn records_are_written_byte_for_byte_as_serde_json_writes_them() {
        let strange = "q\"uo\\te/ünïcödé 東京 \u{1F600}\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}end";
        let located = HopGeo {
            country: Some("DE".parse().unwrap()),
            city: Some(strange.to_string()),
            lat: Some(0.1),
            lon: Some(-1e-7),
            asn: Some(4_294_967_295),
            as_org: Some("Org \"Q\"".into()),
            source: GeoSource::Mmdb,
            plausible: Some(false),
            database: Some("city ipv4".into()),
            accuracy_km: Some(0),
            confidence: None,
            evidence: Vec::new(),
            ixp: None,
        };
        let overridden = HopGeo {
            country: Some("LS".parse().unwrap()),
            lat: Some(1.0),
            lon: Some(52.543_098_449_707_03),
            source: GeoSource::Override,
            plausible: Some(true),
            ..HopGeo::default()
        };
        let hops = vec![
            hop(1, &[], None, HopGeo::default()),
            hop(
                2,
                &["192.0.2.1", "10.255.0.0"],
                Some((0.1, 3.005_333_333_333_333, 1e21)),
                located,
            ),
            hop(
                255,
                &["2001:db8::1", "::ffff:192.0.2.1", "::"],
                Some((1.0, 1e-7, 123_456_789.0)),
                overridden,
            ),
            hop(
                4,
                &["0.0.0.0"],
                Some((f64::NAN, 0.0, 5e-324)),
                HopGeo::default(),
            ),
        ];
        let verdict = PathVerdict {
            class: VerdictClass::ForeignTransit,
            countries: vec!["DE".parse().unwrap(), "LS".parse().unwrap()],
            foreign_countries: vec!["LS".parse().unwrap()],
            foreign_asns: vec![64_500, 1],
            violation: true,
            path_id: "0123456789abcdef".into(),
            explanation: strange.into(),
            suspect_countries: vec![SuspectCountry {
                country: "US".parse().unwrap(),
                ttls: vec![3, 4],
                reason: "too fast: \"1 ms\"".into(),
            }],
            anomalies: vec![
                Anomaly::ForwardingLoop {
                    addr: "2001:db8::7".parse().unwrap(),
                    ttls: vec![2, 5],
                },
                Anomaly::DestinationNotReached {
                    last_responding_ttl: Some(9),
                },
                Anomaly::DestinationNotReached {
                    last_responding_ttl: None,
                },
            ],
            claims: Vec::new(),
            confidence: None,
            exchanges: Vec::new(),
        };
        let trace = Trace {
            target: TargetRef {
                name: strange.into(),
                host: "h".into(),
                addr: Some("2001:db8::9".parse().unwrap()),
            },
            vantage: VantageRef {
                name: "atlas-prb-1".into(),
                country: Some("DE".parse().unwrap()),
            },
            protocol: Protocol::Tcp,
            port: Some(443),
            started_at: "2020-09-13T12:26:40Z".parse().unwrap(),
            reached: true,
            hops,
        };
        let record = TraceRecord::new(trace.clone(), verdict);
        same_as_serde(&record);

        // Unknown target address and country, no port, nothing found.
        let mut empty = TraceRecord::new(
            Trace {
                target: TargetRef {
                    name: String::new(),
                    host: String::new(),
                    addr: None,
                },
                vantage: VantageRef {
                    name: "v".into(),
                    country: None,
                },
                protocol: Protocol::Udp,
                port: None,
                reached: false,
                hops: Vec::new(),
                ..trace
            },
            PathVerdict {
                class: VerdictClass::Indeterminate,
                countries: Vec::new(),
                foreign_countries: Vec::new(),
                foreign_asns: Vec::new(),
                violation: false,
                path_id: String::new(),
                explanation: String::new(),
                suspect_countries: Vec::new(),
                anomalies: Vec::new(),
                claims: Vec::new(),
                confidence: None,
                exchanges: Vec::new(),
            },
        );
        same_as_serde(&empty);
        empty.trace.protocol = Protocol::Icmp;
        empty.verdict.class = VerdictClass::Domestic;
        same_as_serde(&empty);
        empty.verdict.class = VerdictClass::ForeignDestination;
        same_as_serde(&empty);
    }

    impl Rng {
        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "a",
                "Z",
                " ",
                "/",
                "\"",
                "\\",
                "\\u0000",
                "'",
                "<",
                "\u{7f}",
                "\u{80}",
                "\u{a0}",
                "é",
                "ü",
                "東京",
                "\u{1F600}",
                "\u{2028}",
                "\u{2029}",
                "\u{feff}",
                "\u{fffd}",
                "\u{ffff}",
                "\u{10ffff}",
                "AS64500 Org",
                "9",
                ".",
            ];
            let mut out = String::new();
            for _ in 0..self.below(12) {
                if self.chance(25) {
                    // Any control character, and DEL.
                    let c = u8::try_from(self.below(0x21)).unwrap_or(0);
                    out.push(char::from(if c == 0x20 { 0x7f } else { c }));
                } else {
                    out.push_str(PIECES[self.below(PIECES.len())]);
                }
            }
            out
        }

        fn addr(&mut self) -> std::net::IpAddr {
            use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
            let v4 = || -> [u32; 6] {
                [
                    0,
                    0xffff_ffff,
                    0x7f00_0001,
                    0x0a00_0001,
                    0xc000_0209,
                    0x0100_0000,
                ]
            };
            match self.below(8) {
                0 => IpAddr::V4(Ipv4Addr::from(v4()[self.below(6)])),
                1 | 2 => IpAddr::V4(Ipv4Addr::from((self.next() >> 32) as u32)),
                3 => IpAddr::V6(Ipv4Addr::from((self.next() >> 32) as u32).to_ipv6_mapped()),
                4 => IpAddr::V6(Ipv4Addr::from((self.next() >> 32) as u32).to_ipv6_compatible()),
                5 => IpAddr::V6(
                    [
                        Ipv6Addr::UNSPECIFIED,
                        Ipv6Addr::LOCALHOST,
                        "1::".parse().unwrap(),
                        "::ffff:0:0".parse().unwrap(),
                        "ffff::ffff:0.0.0.0".parse().unwrap(),
                    ][self.below(5)],
                ),
                _ => {
                    let mut seg = [0u16; 8];
                    for s in &mut seg {
                        *s = match self.below(4) {
                            0 | 1 => 0,
                            2 => (self.next() & 0xf) as u16,
                            _ => self.next() as u16,
                        };
                    }
                    IpAddr::V6(Ipv6Addr::from(seg))
                }
            }
        }

        /// Round-trip times and coordinates, ordinary and not.
        fn float(&mut self) -> f64 {
            const SPECIAL: &[f64] = &[
                0.0,
                -0.0,
                1.0,
                -1.0,
                0.1,
                1e-7,
                1e-5,
                1e15,
                1e16,
                1e17,
                1e21,
                1e22,
                1e300,
                -1e-300,
                5e-324,
                2.225_073_858_507_201e-308,
                2.225_073_858_507_201_4e-308,
                f64::MIN_POSITIVE,
                f64::MAX,
                f64::MIN,
                f64::EPSILON,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                123_456_789.0,
                0.3,
                52.543_098_449_707_03,
                -33.924_868_9,
                9_007_199_254_740_993.0,
            ];
            match self.below(6) {
                0 => SPECIAL[self.below(SPECIAL.len())],
                1 => f64::from_bits(self.next()),
                #[allow(clippy::cast_precision_loss)]
                2 => (self.next() >> 40) as f64 / 1000.0,
                #[allow(clippy::cast_precision_loss)]
                3 => -((self.next() >> 44) as f64) / 1e4,
                #[allow(clippy::cast_possible_wrap)]
                4 => f64::from_bits(self.next() & 0x000f_ffff_ffff_ffff), // subnormal
                _ => 1.0 / f64::from(u32::try_from(self.below(1000) + 1).unwrap_or(1)),
            }
        }

        /// A coordinate: often one seen before (as cities repeat), so that
        /// the writer's memory is hit, missed and overwritten.
        fn coordinate(&mut self, seen: &mut Vec<f64>) -> f64 {
            if !seen.is_empty() && self.chance(50) {
                return seen[self.below(seen.len())];
            }
            let f = self.float();
            seen.push(f);
            f
        }

        fn country(&mut self) -> crate::model::CountryCode {
            let letters = [b'A' + (self.below(26) as u8), b'A' + (self.below(26) as u8)];
            std::str::from_utf8(&letters).unwrap().parse().unwrap()
        }

        fn ttls(&mut self) -> Vec<u8> {
            (0..self.below(4)).map(|_| self.next() as u8).collect()
        }

        fn record(&mut self, seen: &mut Vec<f64>) -> TraceRecord {
            let hops = (0..self.below(6))
                .map(|_| {
                    let addrs: Vec<_> = (0..self.below(4)).map(|_| self.addr()).collect();
                    let geo = HopGeo {
                        country: self.opt(Self::country),
                        city: self.opt(Self::string),
                        lat: self.opt(|r| r.coordinate(seen)),
                        lon: self.opt(|r| r.coordinate(seen)),
                        asn: self.opt(|r| (r.next() >> 32) as u32),
                        as_org: self.opt(Self::string),
                        source: [GeoSource::Override, GeoSource::Mmdb, GeoSource::None]
                            [self.below(3)],
                        plausible: self.opt(|r| r.chance(50)),
                        database: self.opt(Self::string),
                        accuracy_km: self.opt(|r| (r.next() >> 32) as u32),
                        confidence: None,
                        evidence: Vec::new(),
                        ixp: None,
                    };
                    Hop {
                        ttl: self.next() as u8,
                        addr: if self.chance(10) {
                            Some(self.addr())
                        } else {
                            addrs.first().copied()
                        },
                        addrs,
                        sent: (self.next() >> 32) as u32,
                        received: self.below(4) as u32,
                        rtt_ms: self.opt(|r| RttMs {
                            best: r.float(),
                            avg: r.float(),
                            worst: r.float(),
                        }),
                        geo,
                        hostname: self.opt(Self::string),
                        mpls: (0..self.below(3))
                            .map(|_| {
                                MplsLabel::new(
                                    (self.next() >> 40) as u32,
                                    self.next() as u8,
                                    self.chance(50),
                                    self.next() as u8,
                                )
                            })
                            .collect(),
                    }
                })
                .collect();
            let trace = Trace {
                target: TargetRef {
                    name: self.string(),
                    host: self.string(),
                    addr: self.opt(Self::addr),
                },
                vantage: VantageRef {
                    name: self.string(),
                    country: self.opt(Self::country),
                },
                protocol: [Protocol::Icmp, Protocol::Udp, Protocol::Tcp][self.below(3)],
                port: self.opt(|r| r.next() as u16),
                // Any time RFC 3339 can write: years 0 to 9999.
                started_at: crate::units::Timestamp::from_unix(
                    (self.next() % 315_569_520_000) as i64 - 62_167_219_200,
                )
                .unwrap(),
                reached: self.chance(50),
                hops,
            };
            let verdict = PathVerdict {
                class: VerdictClass::ALL[self.below(4)],
                countries: (0..self.below(4)).map(|_| self.country()).collect(),
                foreign_countries: (0..self.below(3)).map(|_| self.country()).collect(),
                foreign_asns: (0..self.below(3))
                    .map(|_| (self.next() >> 32) as u32)
                    .collect(),
                violation: self.chance(50),
                path_id: self.string(),
                explanation: self.string(),
                suspect_countries: (0..self.below(3))
                    .map(|_| SuspectCountry {
                        country: self.country(),
                        ttls: self.ttls(),
                        reason: self.string(),
                    })
                    .collect(),
                anomalies: (0..self.below(3))
                    .map(|_| {
                        if self.chance(50) {
                            Anomaly::ForwardingLoop {
                                addr: self.addr(),
                                ttls: self.ttls(),
                            }
                        } else {
                            Anomaly::DestinationNotReached {
                                last_responding_ttl: self.opt(|r| r.next() as u8),
                            }
                        }
                    })
                    .collect(),
                claims: (0..self.below(3))
                    .map(|_| crate::model::CountryClaim {
                        country: self.country(),
                        confidence: crate::model::Confidence::ALL[self.below(3)],
                        ttls: self.ttls(),
                        suspected: self.chance(50),
                        reason: self.string(),
                    })
                    .collect(),
                confidence: self.opt(|r| crate::model::Confidence::ALL[r.below(3)]),
                exchanges: Vec::new(),
            };
            let mut record = TraceRecord::new(trace, verdict);
            if self.chance(10) {
                record.schema = self.string();
            }
            if self.chance(30) {
                record.atlas = Some(crate::model::AtlasIds {
                    msm_id: self.chance(50).then(|| self.next() >> 20),
                    prb_id: self.next() >> 40,
                });
            }
            if self.chance(20) {
                let paths = 1 + self.below(64) as u32;
                record.tracelb = Some(crate::model::TracelbPath {
                    record: self.next() >> 30,
                    line: self.next() >> 40,
                    path: 1 + self.below(paths as usize) as u32,
                    paths,
                    capped: self.chance(50),
                    end: [
                        crate::model::PathEnd::Destination,
                        crate::model::PathEnd::DeadEnd,
                        crate::model::PathEnd::Silent,
                        crate::model::PathEnd::Loop,
                    ][self.below(4)],
                });
            }
            if self.chance(10) {
                use crate::model::multipath::{
                    Multipath, MultipathHop, MultipathPath, MultipathStop, PathsCrossing,
                };
                let paths = (0..1 + self.below(3))
                    .map(|_| MultipathPath {
                        source_ports: vec![40_000 + self.below(64) as u16],
                        reached: self.chance(50),
                        hops: (1..=self.below(4) as u8)
                            .map(|ttl| MultipathHop {
                                ttl,
                                addr: self.chance(80).then(|| "198.18.1.2".parse().unwrap()),
                                country: self.chance(50).then(|| self.country()),
                            })
                            .collect(),
                        class: crate::model::VerdictClass::ALL[self.below(4)],
                        foreign_countries: vec![self.country()],
                        violation: self.chance(50),
                        path_id: self.string(),
                    })
                    .collect();
                record.multipath = Some(Box::new(Multipath {
                    started_at: crate::units::Timestamp::from_unix(1_700_000_000).unwrap(),
                    port: 33434,
                    flows: 11,
                    silent_flows: self.below(3) as u32,
                    stop: MultipathStop::ALL[self.below(3)],
                    set_id: self.string(),
                    paths,
                    crossing: vec![PathsCrossing {
                        country: self.country(),
                        paths: 1,
                        violating: 1,
                    }],
                    summary: self.string(),
                }));
            }
            record
        }
    }

    /// Thousands of random records: byte for byte serde_json's output, from
    /// a fresh writer and from one writer kept across all of them (its
    /// remembered coordinates hit, missed and overwritten), appended after
    /// earlier output.
    #[test]
    fn random_records_are_written_as_serde_json_writes_them() {
        let mut rng = Rng(0x5eed_0000_4ec0_4d01);
        let mut seen = Vec::new();
        let mut kept = super::RecordWriter::new();
        let mut stream = Vec::new();
        for n in 0..4_000 {
            if seen.len() > 3_000 {
                seen.clear();
            }
            let record = rng.record(&mut seen);
            let theirs = serde_json::to_vec(&record).unwrap();
            let mut mine = Vec::new();
            write(&mut mine, &record);
            assert_eq!(
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&theirs),
                "record {n}: {record:?}"
            );
            let start = stream.len();
            kept.write(&mut stream, &record);
            assert_eq!(
                String::from_utf8_lossy(&stream[start..]),
                String::from_utf8_lossy(&theirs),
                "record {n} through a kept writer: {record:?}"
            );
            if stream.len() > 1 << 20 {
                stream.clear();
            }
            stream.push(b'\n');
        }
    }
}
