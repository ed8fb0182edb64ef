//! DNS servers for the reverse DNS tests, on 127.0.0.1 at a free port of
//! this host or of the lab's vantage (`*_in(lab)`), each stopped on drop
//! (also when the test panics):
//!
//! - [`Unbound`]: the real server (Debian's `unbound`), from a temporary
//!   configuration serving PTR records (`local-data-ptr`) in static zones
//!   for 198.18.0.0/15, 2001:db8::/32 and 127.0.0.0/8; an address without
//!   a record has no name (NXDOMAIN: the root is a static zone too, so
//!   nothing is ever asked further). [`Unbound::with_zones`] serves
//!   arbitrary `local-zone`/`local-data` lines besides (zones with NS,
//!   SOA, A, AAAA and CNAME records, for the DNS dependency tests;
//!   unbound answers NS and CNAME queries of `static` local zones from
//!   their local data as given, and follows no CNAME itself when asked
//!   for type CNAME).
//! - [`Hostile::silent`]: a UDP socket and a TCP listener that take every
//!   query and never answer.
//! - [`Hostile::garbage`]: answers every query badly, in turn (the n-th
//!   UDP query, n modulo 5): 0 random
//!   bytes; 1 a good answer under the wrong id; 2 a name longer than DNS
//!   allows (five 63-byte labels); 3 a name of spaces, NUL and `;`; 4 a
//!   truncated reply, whose TCP retry gets a length prefix of 65535 and a
//!   few random bytes before the connection closes.
//!
//! - [`Hostile::answering`]: every query answered with one response code
//!   (SERVFAIL, REFUSED) and no records; [`Hostile::failing_ns`]: NS
//!   queries SERVFAIL, A queries one address, anything else no data.
//!
//! At the vantage the hostile server is this test binary again, started
//! inside the namespace to run [`serve_from_env`] (the ignored test
//! `reverse_dns::hostile_dns_server`): a thread of this process cannot
//! listen there.
//!
//! [`ptr`] asks a server for one address's name, to check the servers
//! themselves.

use super::loopback::free_port;
use super::services::{poll, Service};
use super::Lab;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Hang guard of a server's start.
const START: Duration = Duration::from_secs(20);

/// `unbound` on 127.0.0.1 serving `records`; killed on drop.
pub struct Unbound {
    service: Option<Service>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Unbound {
    /// Start it on this host serving `records` (address, name); `None`
    /// (after a skip line, a failure under `TRANSITWATCH_REQUIRE_LAB=1`)
    /// when `unbound` is not installed.
    pub fn start(test: &str, records: &[(&str, &str)]) -> Option<Unbound> {
        Unbound::start_at(None, test, records)
    }

    /// [`Unbound::start`] at the lab's vantage.
    pub fn start_in(lab: &Lab, test: &str, records: &[(&str, &str)]) -> Option<Unbound> {
        Unbound::start_at(Some(lab), test, records)
    }

    /// [`Unbound::start`] serving `lines` too: whole `local-zone: ...` and
    /// `local-data: ...` lines of unbound's `server:` clause (e.g.
    /// `local-zone: "gov.ls.test." static`, `local-data: "gov.ls.test. NS
    /// ns1.gov.ls.test."`). unbound's own default zone `test.` (NS
    /// localhost) is replaced by an empty static zone, so that a name
    /// under `test.` has only the records given here.
    pub fn with_zones(test: &str, lines: &[&str]) -> Option<Unbound> {
        Unbound::start_full(None, test, &[], lines)
    }

    fn start_at(lab: Option<&Lab>, test: &str, records: &[(&str, &str)]) -> Option<Unbound> {
        Unbound::start_full(lab, test, records, &[])
    }

    fn start_full(
        lab: Option<&Lab>,
        test: &str,
        records: &[(&str, &str)],
        lines: &[&str],
    ) -> Option<Unbound> {
        if !super::have_all(test, &["unbound"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let conf = dir.path().join("unbound.conf");
        std::fs::write(&conf, config(dir.path(), port, records, lines))
            .expect("write unbound.conf");
        let mut command = match lab {
            Some(lab) => lab.command("v", "unbound"),
            None => Command::new("unbound"),
        };
        command.arg("-d").arg("-c").arg(&conf);
        let service = Service::spawn("unbound", command, dir.path());
        let server = Unbound {
            service: Some(service),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        server.wait_up();
        Some(server)
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ADDR:PORT` as text, for `--dns-server` and `[rdns] servers`.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// Stop it now.
    pub fn kill(&mut self) {
        self.service.take();
    }

    /// Wait for unbound's "start of service" line.
    fn wait_up(&self) {
        let service = self.service.as_ref().expect("running");
        poll(
            "unbound to start",
            START,
            Duration::from_millis(50),
            || {
                service.assert_running();
                service.log().contains("start of service").then_some(())
            },
            || format!("{}\n{}", service.log_tail(), self.dir.path().display()),
        );
    }
}

/// unbound's configuration: no recursion anywhere, only the local zones.
fn config(dir: &Path, port: u16, records: &[(&str, &str)], lines: &[&str]) -> String {
    let mut text = format!(
        r#"server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: ""
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    local-zone: "." static
    local-zone: "18.198.in-addr.arpa." static
    local-zone: "19.198.in-addr.arpa." static
    local-zone: "127.in-addr.arpa." static
    local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." static
"#,
        dir = dir.display()
    );
    for (addr, name) in records {
        text.push_str(&format!("    local-data-ptr: \"{addr} {name}\"\n"));
    }
    if !lines.is_empty() {
        text.push_str("    local-zone: \"test.\" static\n");
    }
    for line in lines {
        text.push_str(&format!("    {}\n", line.trim()));
    }
    text.push_str("remote-control:\n    control-enable: no\n");
    text
}

/// How a [`Hostile`] server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manner {
    Silent,
    Garbage,
    /// Every query answered with this response code and no records.
    Rcode(u8),
    /// NS queries answered SERVFAIL, A queries with one address
    /// (198.51.100.10), any other query with no data.
    FailingNs,
}

/// A server that never answers well; stopped on drop.
pub struct Hostile {
    addr: SocketAddr,
    run: Run,
}

enum Run {
    /// Threads of this process (on this host).
    Threads {
        stop: Arc<AtomicBool>,
        queries: Arc<AtomicUsize>,
        threads: Vec<JoinHandle<()>>,
    },
    /// This test binary again, at a lab node: one `query` line per query.
    Process(Service),
}

/// The environment variables of a hostile server process.
const MANNER_ENV: &str = "TRANSITWATCH_HOSTILE_DNS";
const PORT_ENV: &str = "TRANSITWATCH_HOSTILE_DNS_PORT";

impl Hostile {
    /// Takes every query (UDP and TCP) and never answers.
    pub fn silent() -> Hostile {
        Hostile::start(Manner::Silent)
    }

    /// Answers every query with garbage (see the module's text).
    pub fn garbage() -> Hostile {
        Hostile::start(Manner::Garbage)
    }

    /// Answers every query with `rcode` (2 SERVFAIL, 5 REFUSED) and no
    /// records, over UDP.
    pub fn answering(rcode: u8) -> Hostile {
        Hostile::start(Manner::Rcode(rcode))
    }

    /// Answers NS queries SERVFAIL and A queries with 198.51.100.10 (any
    /// other query: no data), over UDP: a zone whose nameservers cannot be
    /// learnt while its names still resolve.
    pub fn failing_ns() -> Hostile {
        Hostile::start(Manner::FailingNs)
    }

    /// [`Hostile::silent`] at the lab's vantage; its log in `dir`.
    pub fn silent_in(lab: &Lab, dir: &Path) -> Hostile {
        Hostile::spawn_in(lab, Manner::Silent, dir)
    }

    /// [`Hostile::garbage`] at the lab's vantage; its log in `dir`.
    pub fn garbage_in(lab: &Lab, dir: &Path) -> Hostile {
        Hostile::spawn_in(lab, Manner::Garbage, dir)
    }

    /// Where it listens.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// Queries it got over UDP so far.
    pub fn queries(&self) -> usize {
        match &self.run {
            Run::Threads { queries, .. } => queries.load(Ordering::SeqCst),
            Run::Process(service) => service.log().lines().filter(|l| *l == "query").count(),
        }
    }

    fn spawn_in(lab: &Lab, manner: Manner, dir: &Path) -> Hostile {
        let port = free_port();
        let exe = std::env::current_exe().expect("the test binary");
        let mut command = lab.command("v", exe);
        command
            .args([
                "--exact",
                "reverse_dns::hostile_dns_server",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(MANNER_ENV, format!("{manner:?}"))
            .env(PORT_ENV, port.to_string());
        let service = Service::spawn(&format!("hostile-dns-{port}"), command, dir);
        poll(
            "the hostile DNS server to listen",
            START,
            Duration::from_millis(50),
            || {
                service.assert_running();
                service.log().contains("listening").then_some(())
            },
            || service.log_tail(),
        );
        Hostile {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            run: Run::Process(service),
        }
    }

    fn start(manner: Manner) -> Hostile {
        let (udp, tcp) = bind_pair(0);
        let addr = udp.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let threads = serve(udp, tcp, manner, &stop, &queries, false);
        Hostile {
            addr,
            run: Run::Threads {
                stop,
                queries,
                threads,
            },
        }
    }
}

/// The hostile server of a process started by `Hostile::*_in`: serves
/// until killed. Does nothing without its environment (a plain test run).
pub fn serve_from_env() {
    let Ok(manner) = std::env::var(MANNER_ENV) else {
        return;
    };
    let manner = if manner == "Silent" {
        Manner::Silent
    } else {
        Manner::Garbage
    };
    let port: u16 = std::env::var(PORT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let (udp, tcp) = bind_pair(port);
    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let threads = serve(udp, tcp, manner, &stop, &queries, true);
    println!("listening");
    for t in threads {
        let _ = t.join();
    }
}

/// A UDP socket and a TCP listener on the same port of 127.0.0.1 (`port`,
/// or a free one for 0).
fn bind_pair(port: u16) -> (UdpSocket, TcpListener) {
    loop {
        let udp = UdpSocket::bind(("127.0.0.1", port)).expect("bind UDP");
        let bound = udp.local_addr().expect("local address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", bound)) {
            return (udp, tcp);
        }
        assert_eq!(port, 0, "TCP port {port} is taken");
    }
}

fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    manner: Manner,
    stop: &Arc<AtomicBool>,
    queries: &Arc<AtomicUsize>,
    print: bool,
) -> Vec<JoinHandle<()>> {
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    tcp.set_nonblocking(true).expect("non-blocking listener");
    let udp_thread = {
        let (stop, queries) = (Arc::clone(stop), Arc::clone(queries));
        std::thread::spawn(move || serve_udp(&udp, manner, &stop, &queries, print))
    };
    let tcp_thread = {
        let stop = Arc::clone(stop);
        std::thread::spawn(move || serve_tcp(&tcp, manner, &stop))
    };
    vec![udp_thread, tcp_thread]
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Run::Threads { stop, threads, .. } = &mut self.run {
            stop.store(true, Ordering::SeqCst);
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

fn serve_udp(
    socket: &UdpSocket,
    manner: Manner,
    stop: &AtomicBool,
    queries: &AtomicUsize,
    print: bool,
) {
    let mut buf = [0u8; 1500];
    let mut seed = 0x5EED_u64;
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        if print {
            println!("query");
        }
        if manner == Manner::Silent {
            continue;
        }
        let query = &buf[..n];
        let Some(question_end) = question_end(query) else {
            continue;
        };
        let qtype = u16::from_be_bytes([query[question_end - 4], query[question_end - 3]]);
        let n = queries.load(Ordering::SeqCst) - 1;
        let reply = match manner {
            Manner::Rcode(rcode) => answer(query, question_end, rcode, None),
            Manner::FailingNs => match qtype {
                2 => answer(query, question_end, 2, None),
                1 => answer(query, question_end, 0, Some((1, &[198, 51, 100, 10]))),
                _ => answer(query, question_end, 0, None),
            },
            Manner::Silent | Manner::Garbage => garbage(query, question_end, n, &mut seed),
        };
        let _ = socket.send_to(&reply, from);
    }
}

/// The n-th garbage answer to `query` (see the module's text).
fn garbage(query: &[u8], question_end: usize, n: usize, seed: &mut u64) -> Vec<u8> {
    match n % 5 {
        0 => random_bytes(seed, 64),
        1 => {
            let mut r = reply(
                query,
                question_end,
                0,
                Some(&[b"core1", b"example", b"net"]),
            );
            r[0] ^= 0x5a;
            r
        }
        2 => {
            let long = [[b'x'; 63]; 5];
            let labels: Vec<&[u8]> = long.iter().map(|l| &l[..]).collect();
            reply(query, question_end, 0, Some(&labels))
        }
        3 => reply(
            query,
            question_end,
            0,
            Some(&[b"bad name", b"nul\0", b"semi;colon"]),
        ),
        _ => {
            let mut r = reply(query, question_end, 0, None);
            r[2] |= 0x02; // TC: try TCP
            r
        }
    }
}

fn serve_tcp(listener: &TcpListener, manner: Manner, stop: &AtomicBool) {
    let mut held = Vec::new();
    let mut seed = 0x7C9_u64;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if manner == Manner::Garbage {
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                    let mut buf = [0u8; 512];
                    let _ = stream.read(&mut buf);
                    let mut junk = vec![0xff, 0xff];
                    junk.extend(random_bytes(&mut seed, 10));
                    let _ = stream.write_all(&junk);
                } else {
                    // Held open and never answered, until the server stops.
                    held.push(stream);
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The offset just past the question of a DNS message, if it has one.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            break;
        }
        at += 1 + len;
    }
    let end = at + 5;
    (end <= msg.len()).then_some(end)
}

/// A reply to `query`: its id and question, `rcode`, and one PTR record
/// of `labels` when given (the labels as they are, however bad).
fn reply(query: &[u8], question_end: usize, rcode: u8, labels: Option<&[&[u8]]>) -> Vec<u8> {
    let rdata = labels.map(wire_name);
    answer(
        query,
        question_end,
        rcode,
        rdata.as_deref().map(|r| (12, r)),
    )
}

/// A reply to `query`: its id and question, `rcode`, and one record of
/// the asked name when given (its type and data, as they are).
fn answer(query: &[u8], question_end: usize, rcode: u8, record: Option<(u16, &[u8])>) -> Vec<u8> {
    let mut out = query[..2].to_vec();
    out.extend_from_slice(&[
        0x85,
        0x80 | rcode,
        0,
        1,
        0,
        u8::from(record.is_some()),
        0,
        0,
        0,
        0,
    ]);
    out.extend_from_slice(&query[12..question_end]);
    if let Some((rtype, rdata)) = record {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        out.extend_from_slice(&u16::try_from(rdata.len()).expect("short").to_be_bytes());
        out.extend_from_slice(rdata);
    }
    out
}

fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for label in labels {
        out.push(u8::try_from(label.len()).expect("a label under 256 bytes"));
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// splitmix64 bytes: deterministic garbage.
fn random_bytes(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z >> 56) as u8
        })
        .collect()
}

/// The reverse name of `addr` (`1.0.18.198.in-addr.arpa`, nibbles for IPv6).
fn arpa(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = v6
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 0xf])
                .map(|n| format!("{n:x}"))
                .collect();
            labels.reverse();
            format!("{}.ip6.arpa", labels.join("."))
        }
    }
}

/// Ask `server` (UDP) for the PTR name of `addr`; `None` without an answer
/// within `wait` or without a name in it.
pub fn ptr(server: SocketAddr, addr: IpAddr, wait: Duration) -> Option<String> {
    let msg = ask(server, addr, wait)?;
    if msg.get(7)? == &0 {
        return None;
    }
    // The answer's owner is a pointer to the question (unbound compresses).
    let at = question_end(&msg)? + 2 + 2 + 2 + 4 + 2;
    read_name(&msg, at)
}

/// Ask `server` (UDP) for the PTR record of `addr`: the reply, if one
/// with the query's id comes within `wait`.
fn ask(server: SocketAddr, addr: IpAddr, wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(wait)).ok()?;
    let mut query = vec![0x4a, 0x17, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let name = arpa(addr);
    let labels: Vec<&[u8]> = name.split('.').map(str::as_bytes).collect();
    query.extend(wire_name(&labels));
    query.extend_from_slice(&[0, 12, 0, 1]);
    socket.send_to(&query, server).ok()?;
    let mut buf = [0u8; 1500];
    let n = socket.recv(&mut buf).ok()?;
    (buf.get(..2)? == [0x4a, 0x17]).then(|| buf[..n].to_vec())
}

/// The name at `at` in `msg`, following compression pointers.
fn read_name(msg: &[u8], mut at: usize) -> Option<String> {
    let mut labels = Vec::new();
    for _ in 0..128 {
        let len = *msg.get(at)?;
        if len == 0 {
            return Some(labels.join("."));
        }
        if len & 0xc0 == 0xc0 {
            at = (usize::from(len & 0x3f) << 8) | usize::from(*msg.get(at + 1)?);
            continue;
        }
        let label = msg.get(at + 1..at + 1 + usize::from(len))?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + usize::from(len);
    }
    None
}
