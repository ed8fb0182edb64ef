//! Differential fuzzing of the Atlas reader: the scanner's fast path
//! ([`atlas::convert`]) against serde_json alone ([`atlas::convert_parsed`])
//! on real results, the unit tests' lines, generated results of every
//! firmware shape, and tens of thousands of mutations of them; then the
//! streaming readers over a file of the mutated lines.
//!
//! Deterministic: a fixed-seed xorshift drives every choice, so a failure
//! names an input that fails again on the next run.
//! `TRANSITWATCH_FUZZ_SEED=N` mixes another seed in, to explore by hand.

use super::atlas::{self, Assembly};
use super::atlas_scan::tests::{PLAIN, UNUSUAL};
use super::{atlas_records, read, AtlasConverter, Converted, ImportError, Imported, InputFormat};
use crate::test_rng::Rng;
use std::io::{BufReader, Cursor};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Published results, one per line, when the shared data is there.
const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/atlas/traceroutes.jsonl"
);

/// The seed of a test: `default`, or `TRANSITWATCH_FUZZ_SEED` (to explore
/// further by hand; CI leaves it unset).
fn seed(default: u64) -> u64 {
    std::env::var("TRANSITWATCH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(default, |s| s ^ default)
}

/// A conversion as compared: the trace's `Debug` text (so that `-0.0` and
/// `0.0` differ), probe id and late replies, or the error message.
type Outcome = Result<String, String>;

fn outcome(c: Result<Converted, String>) -> Outcome {
    c.map(|c| format!("{:?} {:?} {}", c.trace, c.prb_id, c.late_replies))
}

/// Convert `line` through the fast path (with `fast`, a working space kept
/// from line to line as the reader keeps it) and through serde_json only;
/// panics naming the line when either panics or they differ. Whether the
/// scanner read the line itself, and the outcome.
fn differential(line: &[u8], fast: &mut Assembly) -> (bool, Outcome) {
    let shown = || String::from_utf8_lossy(line).into_owned();
    let run = catch_unwind(AssertUnwindSafe(|| {
        let scanned = atlas::convert_scanned(line, fast).is_some();
        let got = outcome(atlas::convert(line, fast));
        let want = outcome(atlas::convert_parsed(line, &mut Assembly::default()));
        (scanned, got, want)
    }));
    let Ok((scanned, got, want)) = run else {
        panic!("converting panicked on {:?}", shown());
    };
    assert_eq!(
        got,
        want,
        "fast path differs from serde_json on {:?}",
        shown()
    );
    (scanned, want)
}

const ADDRS: &[&str] = &[
    "192.0.2.9",
    "10.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "2001:db8::9",
    "::",
    "::1",
    "::ffff:192.0.2.1",
    "fe80::1%eth0",
    "2001:DB8:0:0:0:0:0:1",
    "1:2:3:4:5:6:7::",
    "010.0.0.1",
    "256.0.0.1",
    "bad",
    "",
];

/// Addresses as firmware writes them.
const GOOD_ADDRS: &[&str] = &[
    "192.0.2.9",
    "10.0.0.1",
    "203.0.113.254",
    "2001:db8::1",
    "2001:db8::9",
    "::ffff:192.0.2.1",
    "x.example",
];

/// Round-trip times as firmware writes them.
const PLAIN_FLOATS: &[&str] = &["0.1", "1.0", "2.5", "12.345", "0.001", "3", "7000.0", "0.0"];

/// Numbers as firmware writes them, and some it never does.
const FLOATS: &[&str] = &[
    "0",
    "0.0",
    "1",
    "1.0",
    "0.1",
    "2.5",
    "1e-7",
    "0.0000001",
    "12.345678901234",
    "123456789012345",
    "1234567890123456",
    "0.00000000000001",
    "7000.0",
    "1.5e3",
    "1E2",
    "-1.5",
    "-0",
    "-0.0",
    "1.12345678901234567",
    "1e400",
    "4.9e-324",
    "18446744073709551616",
    "99999999999999999999999999999",
    "0.000000000000000000000000000000000000001",
];

const INTS: &[&str] = &[
    "0",
    "1",
    "7",
    "255",
    "256",
    "65535",
    "4294967295",
    "4294967296",
    "1600000000",
    "123456789012345678",
    "1234567890123456789",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "-1",
    "-0",
    "-5",
    "-9223372036854775808",
    "-9223372036854775809",
    "1.0",
    "1e3",
    "01",
    "null",
    "\"1\"",
];

const STRINGS: &[&str] = &[
    "\"\"",
    "\"x.example\"",
    "\"z\u{fc}rich\"",
    "\"\\u00e9t\\u00E9\"",
    "\"a\\\"b\"",
    "\"back\\\\slash\"",
    "\"tab\\tnew\\nline\"",
    "\"\\ud83d\\ude00\"",
    "\"\u{1F600}\"",
    "\"\u{6771}\u{4eac}\"",
    "\"\\/\"",
    "null",
];

/// A value to put where the reader does not look: anything JSON allows.
fn junk(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 3 { 4 } else { 7 }) {
        0 => rng.pick(FLOATS).to_string(),
        1 => rng.pick(STRINGS).to_string(),
        2 => rng.pick(&["true", "false", "null"]).to_string(),
        3 => rng.pick(INTS).to_string(),
        4 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| junk(rng, depth + 1)).collect();
            format!("[{}]", items.join(","))
        }
        5 => {
            let members: Vec<String> = (0..rng.below(4))
                .map(|i| format!("\"k{i}\":{}", junk(rng, depth + 1)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        _ => {
            // Nesting near and beyond the readers' limits.
            let depths = [20, 99, 100, 101, 120, 126, 127, 128, 129, 200];
            let n = depths[rng.below(depths.len())];
            if rng.chance(50) {
                format!("{}{}", "[".repeat(n), "]".repeat(n))
            } else {
                format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
            }
        }
    }
}

fn json_str(s: &str) -> String {
    format!("\"{s}\"")
}

/// One reply of a hop, in any of the shapes firmware writes.
fn reply(rng: &mut Rng, odd: bool) -> String {
    let mut members: Vec<String> = Vec::new();
    match rng.below(10) {
        0..=2 => members.push(format!("\"x\":{}", rng.pick(&["\"*\"", "null", "1", "{}"]))),
        _ => {
            if rng.chance(95) {
                let list = if odd && rng.chance(20) {
                    ADDRS
                } else {
                    GOOD_ADDRS
                };
                members.push(format!("\"from\":{}", json_str(rng.pick(list))));
            }
            if rng.chance(85) {
                let list = if odd && rng.chance(20) {
                    FLOATS
                } else {
                    PLAIN_FLOATS
                };
                members.push(format!("\"rtt\":{}", rng.pick(list)));
            }
            members.push(format!("\"size\":{}", rng.pick(&["28", "68", "140"])));
            members.push(format!("\"ttl\":{}", rng.pick(&["254", "63", "1", "255"])));
        }
    }
    for (percent, member) in [
        (10, "\"late\":1"),
        (5, "\"late\":null"),
        (10, "\"dup\":true"),
        (3, "\"dup\":false"),
        (10, "\"err\":\"H\""),
        (5, "\"err\":\"N\""),
        (10, "\"ittl\":2"),
        (5, "\"flags\":\"SA\""),
        (5, "\"hdropts\":[{\"mss\":1400}]"),
        (
            10,
            "\"icmpext\":{\"version\":2,\"rfc4884\":1,\"obj\":[{\"class\":1,\"type\":1,\"mpls\":[{\"exp\":0,\"label\":24005,\"s\":1,\"ttl\":1}]}]}",
        ),
    ] {
        if rng.chance(percent) {
            members.push(member.to_string());
        }
    }
    if rng.chance(10) {
        members.push(format!("\"edst\":{}", json_str(rng.pick(ADDRS))));
    }
    if odd && rng.chance(10) {
        members.push(format!("\"extra\":{}", junk(rng, 0)));
    }
    if odd && rng.chance(5) && !members.is_empty() {
        // A duplicate key.
        let again = members[rng.below(members.len())].clone();
        members.push(again);
    }
    shuffle(rng, &mut members);
    format!("{{{}}}", members.join(","))
}

/// One entry of `result`: a hop number (or none), replies or an error.
fn entry(rng: &mut Rng, position: usize, odd: bool) -> String {
    let mut members: Vec<String> = Vec::new();
    match rng.below(10) {
        0 => {}
        1 => members.push("\"hop\":null".to_string()),
        2 => members.push("\"hop\":255".to_string()),
        3 if odd => members.push(format!("\"hop\":{}", rng.pick(INTS))),
        _ => members.push(format!("\"hop\":{position}")),
    }
    match rng.below(20) {
        0 => members.push("\"error\":\"bind failed\"".to_string()),
        1 => members.push("\"result\":[{\"error\":\"connect failed\"}]".to_string()),
        2 if odd => members.push("\"result\":null".to_string()),
        _ => {
            let replies: Vec<String> = (0..rng.below(5)).map(|_| reply(rng, odd)).collect();
            members.push(format!("\"result\":[{}]", replies.join(",")));
        }
    }
    if odd && rng.chance(10) {
        members.push(format!("\"note\":{}", junk(rng, 0)));
    }
    shuffle(rng, &mut members);
    format!("{{{}}}", members.join(","))
}

/// A whole result line, fields in any order, each sometimes odd or absent.
fn result_line(rng: &mut Rng) -> String {
    let mut members: Vec<String> = Vec::new();
    let mut field = |rng: &mut Rng, percent: usize, key: &str, value: String| {
        if rng.chance(percent) {
            members.push(format!("\"{key}\":{value}"));
        }
    };
    let odd = rng.chance(30);
    let int = |rng: &mut Rng, plain: &str| {
        if odd && rng.chance(30) {
            rng.pick(INTS).to_string()
        } else {
            plain.to_string()
        }
    };
    let v = int(rng, "4790");
    field(rng, 70, "fw", v);
    let v = rng
        .pick(&["\"traceroute\"", "\"traceroute\"", "\"ping\"", "null"])
        .to_string();
    field(rng, 50, "type", v);
    let v = int(rng, "6001");
    field(rng, if odd { 95 } else { 100 }, "prb_id", v);
    let v = int(rng, "5001");
    field(rng, 80, "msm_id", v);
    let v = int(rng, "1600000000");
    field(rng, if odd { 95 } else { 100 }, "timestamp", v);
    let v = int(rng, "1600000003");
    field(rng, 50, "endtime", v);
    let v = rng
        .pick(&[
            "\"ICMP\"",
            "\"ICMP\"",
            "\"UDP\"",
            "\"TCP\"",
            "\"icmp\"",
            "\"SCTP\"",
            "\"IC\\u004dP\"",
            "null",
        ])
        .to_string();
    field(rng, if odd { 95 } else { 100 }, "proto", v);
    let v = json_str(rng.pick(ADDRS));
    field(rng, 85, "dst_addr", v);
    let v = rng.pick(STRINGS).to_string();
    let v = match rng.below(4) {
        0 if odd => v,
        1 => json_str(rng.pick(ADDRS)),
        _ => json_str(rng.pick(GOOD_ADDRS)),
    };
    field(rng, 60, "dst_name", v);
    let v = json_str(rng.pick(ADDRS));
    field(rng, 50, "src_addr", v);
    let v = json_str(rng.pick(ADDRS));
    field(rng, 50, "from", v);
    let v = rng.pick(&["4", "6"]).to_string();
    field(rng, 40, "af", v);
    field(rng, 30, "paris_id", "9".to_string());
    field(rng, 30, "lts", "-1".to_string());
    let v = junk(rng, 0);
    field(rng, if odd { 30 } else { 0 }, "group_id", v);
    let n = if rng.chance(5) { 40 } else { rng.below(8) };
    let entries: Vec<String> = (0..n).map(|i| entry(rng, i + 1, odd)).collect();
    field(
        rng,
        if odd { 95 } else { 100 },
        "result",
        format!("[{}]", entries.join(",")),
    );
    if odd && rng.chance(10) && !members.is_empty() {
        let again = members[rng.below(members.len())].clone();
        members.push(again);
    }
    shuffle(rng, &mut members);
    let sep = if rng.chance(10) { " , " } else { "," };
    let line = format!("{{{}}}", members.join(sep));
    if rng.chance(5) {
        format!(" \t{line}\r ")
    } else {
        line
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// Bytes that make or break JSON structure.
const SPECIAL: &[u8] = b"\"\\{}[],:-+.0159eEntfu \t\r\x00\x1f\x7f\x80\xc3\xa9\xff";

/// Numbers at and beyond the edges of what the fields hold.
const EXTREMES: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678",
    "1234567890123456789",
    "99999999999999999999999999999999999999",
    "0.99999999999999999999999999999999999",
    "1.00000000000000000000000000000000001",
    "-0",
    "-0.0",
    "- 1",
    "--1",
    "1e308",
    "1e309",
    "-1e309",
    "4.9e-324",
    "2.2250738585072014e-308",
    "1e-400",
    "00",
    "0x10",
    "1.",
    ".1",
    "1e",
    "1e+",
    "NaN",
    "Infinity",
    "255",
    "256",
    "4294967296",
];

/// One random change of `line`, which may be broken afterwards in any way.
fn mutate(rng: &mut Rng, line: &mut Vec<u8>, other: &[u8]) {
    let at = |rng: &mut Rng, len: usize| rng.below(len + 1);
    match rng.below(17) {
        0 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] ^= 1 << rng.below(8);
        }
        1 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] = SPECIAL[rng.below(SPECIAL.len())];
        }
        2 => {
            let i = at(rng, line.len());
            line.insert(i, SPECIAL[rng.below(SPECIAL.len())]);
        }
        3 if !line.is_empty() => {
            let i = rng.below(line.len());
            let n = (1 + rng.below(8)).min(line.len() - i);
            line.drain(i..i + n);
        }
        4 => {
            let n = at(rng, line.len());
            line.truncate(n);
        }
        5 => {
            // Splice: a head of this line, a tail of another.
            let head = at(rng, line.len());
            let tail = at(rng, other.len());
            line.truncate(head);
            line.extend_from_slice(&other[tail..]);
        }
        6 => swap_tokens(rng, line, false),
        7 | 11 | 12 => extreme_number(rng, line),
        13 => swap_tokens(rng, line, true),
        14 | 15 => other_string(rng, line),
        16 => {
            // Whitespace where JSON allows it: after a delimiter.
            let places: Vec<usize> = (0..line.len())
                .filter(|&i| b",:[{".contains(&line[i]))
                .collect();
            if !places.is_empty() {
                let i = places[rng.below(places.len())] + 1;
                let ws: &[u8] = rng.pick(&[&b" "[..], b"\t", b"\r\n ", b"  "]);
                line.splice(i..i, ws.iter().copied());
            }
        }
        8 => {
            let i = at(rng, line.len());
            let ws: &[u8] = rng.pick(&[&b" "[..], b"\t", b"\r", b"\n", b"  \t ", b"\x0c"]);
            line.splice(i..i, ws.iter().copied());
        }
        9 => {
            let i = at(rng, line.len());
            let text: &str = rng.pick(&["\u{e9}", "\u{1F600}", "\\u00e9", "\\\"", "\\", "\""]);
            line.splice(i..i, text.bytes());
        }
        _ => {
            // A member repeated: `"key":` again right after a comma.
            let commas = find_all(line, b",\"");
            if !commas.is_empty() {
                let i = commas[rng.below(commas.len())];
                let end = line[i + 2..]
                    .iter()
                    .position(|&c| c == b',' || c == b'}')
                    .map_or(line.len(), |n| i + 2 + n);
                let member = line[i..end].to_vec();
                line.splice(end..end, member);
            }
        }
    }
}

/// Replace a string (a key or a value) with another key or value.
fn other_string(rng: &mut Rng, line: &mut Vec<u8>) {
    const KEYS: &[&str] = &[
        "\"hop\"",
        "\"result\"",
        "\"x\"",
        "\"from\"",
        "\"rtt\"",
        "\"late\"",
        "\"dup\"",
        "\"edst\"",
        "\"err\"",
        "\"prb_id\"",
        "\"msm_id\"",
        "\"timestamp\"",
        "\"proto\"",
        "\"dst_addr\"",
        "\"dst_name\"",
        "\"type\"",
        "\"error\"",
        "\"h\\u006fp\"",
    ];
    let strings: Vec<(usize, usize)> = tokens(line)
        .into_iter()
        .filter(|&(s, _)| line[s] == b'"')
        .collect();
    if strings.is_empty() {
        return;
    }
    let (s, e) = strings[rng.below(strings.len())];
    let text = match rng.below(3) {
        0 => rng.pick(KEYS).to_string(),
        1 => rng.pick(STRINGS).to_string(),
        _ => json_str(rng.pick(ADDRS)),
    };
    line.splice(s..e, text.bytes());
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// The spans of tokens: strings, numbers and words between delimiters.
fn tokens(line: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c == b'"' {
            let start = i;
            i += 1;
            while i < line.len() && line[i] != b'"' {
                i += if line[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(line.len());
            out.push((start, i));
        } else if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
            let start = i;
            while i < line.len() && (line[i].is_ascii_alphanumeric() || b"-+.".contains(&line[i])) {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Swap two tokens; with `same_kind`, two strings or two non-strings (the
/// line then often stays valid JSON, with values or keys moved about).
fn swap_tokens(rng: &mut Rng, line: &mut Vec<u8>, same_kind: bool) {
    let spans = tokens(line);
    if spans.len() < 2 {
        return;
    }
    let (mut a, mut b) = (spans[rng.below(spans.len())], spans[rng.below(spans.len())]);
    if same_kind && (line[a.0] == b'"') != (line[b.0] == b'"') {
        return;
    }
    if a.0 > b.0 {
        std::mem::swap(&mut a, &mut b);
    }
    if a == b || a.1 > b.0 {
        return;
    }
    let mut out = line[..a.0].to_vec();
    out.extend_from_slice(&line[b.0..b.1]);
    out.extend_from_slice(&line[a.1..b.0]);
    out.extend_from_slice(&line[a.0..a.1]);
    out.extend_from_slice(&line[b.1..]);
    *line = out;
}

fn extreme_number(rng: &mut Rng, line: &mut Vec<u8>) {
    let numbers: Vec<(usize, usize)> = tokens(line)
        .into_iter()
        .filter(|&(s, _)| line[s].is_ascii_digit() || line[s] == b'-')
        .collect();
    if numbers.is_empty() {
        return;
    }
    let (s, e) = numbers[rng.below(numbers.len())];
    let list = rng.pick(&[EXTREMES, INTS, FLOATS, PLAIN_FLOATS]);
    let text: &str = rng.pick(list);
    line.splice(s..e, text.bytes());
}

/// The lines every check starts from.
fn corpus(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    match std::fs::read_to_string(REAL) {
        Ok(text) => lines.extend(text.lines().map(|l| l.as_bytes().to_vec())),
        Err(e) => eprintln!("{REAL}: {e}; fuzzing without the published results"),
    }
    lines.extend(PLAIN.iter().chain(UNUSUAL).map(|l| l.as_bytes().to_vec()));
    for _ in 0..600 {
        lines.push(result_line(rng).into_bytes());
    }
    lines
}

/// The mutated lines of the corpus (newline-free, for a file of them).
fn mutations(rng: &mut Rng, corpus: &[Vec<u8>], count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let mut line = corpus[rng.below(corpus.len())].clone();
            let other = &corpus[rng.below(corpus.len())];
            for _ in 0..[1, 1, 1, 2, 3][rng.below(5)] {
                mutate(rng, &mut line, other);
            }
            line
        })
        .collect()
}

#[test]
fn the_fast_path_reads_every_line_as_serde_json_does() {
    let mut rng = Rng(seed(0x5eed_a71a_5000_0001));
    let corpus = corpus(&mut rng);
    // The corpus opens with the published results, when they are there.
    let published = std::fs::read_to_string(REAL).map_or(0, |text| text.lines().count());
    let mut fast = Assembly::default();
    // Scanned and imported, of the published lines and of the others.
    let (mut scanned, mut ok) = ([0, 0], [0, 0]);
    for (i, line) in corpus.iter().enumerate() {
        let (s, o) = differential(line, &mut fast);
        let part = usize::from(i >= published);
        scanned[part] += usize::from(s);
        ok[part] += usize::from(o.is_ok());
    }
    // The scanner must read many lines itself, or this compares serde_json
    // with itself: half the published results at least (when they are
    // there; all of them import), and over a quarter of the others (over a
    // sixth of which import).
    let own = corpus.len() - published;
    assert!(
        scanned[0] * 2 >= published,
        "{} of {published} published",
        scanned[0]
    );
    assert!(ok[0] * 2 >= published, "{} of {published} published", ok[0]);
    assert!(scanned[1] * 4 > own, "{} of {own} generated", scanned[1]);
    assert!(ok[1] * 6 > own, "{} of {own} generated", ok[1]);

    let mutated = mutations(&mut rng, &corpus, 30_000);
    let (mut scanned, mut ok) = (0, 0);
    for line in &mutated {
        let (s, o) = differential(line, &mut fast);
        scanned += usize::from(s);
        ok += usize::from(o.is_ok());
    }
    eprintln!(
        "{} lines, {} mutations: scanner read {scanned}, {ok} imported",
        corpus.len(),
        mutated.len()
    );
    assert!(
        scanned > 1000 && ok > 1000,
        "{scanned} scanned, {ok} imported"
    );
}

/// What a reader gave, comparable with what each line alone converts to.
fn reading(item: Result<Imported, ImportError>) -> (usize, Outcome) {
    match item {
        Ok(i) => (
            i.line,
            Ok(format!("{:?} {:?} {}", i.trace, i.prb_id, i.late_replies)),
        ),
        Err(e) => (e.line, Err(e.message)),
    }
}

#[test]
fn the_streaming_readers_report_each_mutated_line_and_carry_on() {
    let mut rng = Rng(seed(0x5eed_a71a_5000_0002));
    let corpus = corpus(&mut rng);
    let mut mutated = mutations(&mut rng, &corpus, 3_000);
    // One record per line: line breaks inside a mutation become spaces, a
    // few lines are left blank, and the first byte of the file is not `[`.
    let mut file = PLAIN[0].as_bytes().to_vec();
    file.push(b'\n');
    for (i, line) in mutated.iter_mut().enumerate() {
        for b in line.iter_mut().filter(|b| **b == b'\n') {
            *b = b' ';
        }
        if i % 97 == 0 {
            line.clear();
        }
        file.extend_from_slice(line);
        file.extend_from_slice(if i % 13 == 0 { b"\r\n" } else { b"\n" });
    }
    let mut expected = Vec::new();
    for (i, line) in file.split_inclusive(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let want = outcome(atlas::convert_parsed(line, &mut Assembly::default()));
        expected.push((i + 1, want));
    }
    assert!(expected.len() > 2_900);
    assert!(expected.iter().any(|(_, o)| o.is_err()));
    assert!(expected.iter().any(|(_, o)| o.is_ok()));

    // Whole lines in the reader's buffer, and lines across a small one.
    for capacity in [1 << 16, 61] {
        let input = BufReader::with_capacity(capacity, Cursor::new(file.clone()));
        let got: Vec<_> = read(input, InputFormat::Atlas).map(reading).collect();
        assert_eq!(got.len(), expected.len(), "buffer {capacity}");
        for (g, w) in got.iter().zip(&expected) {
            assert_eq!(g, w, "buffer {capacity}");
        }

        let input = BufReader::with_capacity(capacity, Cursor::new(file.clone()));
        let mut records = atlas_records(input);
        let mut converter = AtlasConverter::default();
        let mut bytes = Vec::new();
        let mut n = 0;
        while let Some((line, raw)) = records.next_into(&mut bytes) {
            let item = raw.and_then(|()| converter.convert(line, &bytes));
            bytes.clear();
            assert_eq!(
                reading(item),
                expected[n],
                "split records, buffer {capacity}"
            );
            n += 1;
        }
        assert_eq!(n, expected.len());
    }
}

/// Numbers where the scanner does its own arithmetic: decimals of every
/// length and fraction (its division against serde_json's), and integers
/// up to and beyond 18 digits in every integer field.
#[test]
fn numbers_read_as_serde_json_reads_them() {
    let mut rng = Rng(seed(0x5eed_a71a_5000_0003));
    let mut fast = Assembly::default();
    let mut scanned = 0;
    let total = 20_000;
    for _ in 0..total {
        let digits = 1 + rng.below(19);
        let mut number: String = (0..digits)
            .map(|_| char::from(b'0' + u8::try_from(rng.below(10)).unwrap_or(0)))
            .collect();
        if rng.chance(30) {
            // A leading zero only where JSON allows one.
            number = number.trim_start_matches('0').to_string();
            if number.is_empty() {
                number.push('0');
            }
        }
        let dot = rng.below(digits + 1);
        let decimal = if dot > 0 && dot < number.len() && rng.chance(80) {
            let (int, frac) = number.split_at(dot);
            let int = if int.len() > 1 {
                int.trim_start_matches('0')
            } else {
                int
            };
            let int = if int.is_empty() { "0" } else { int };
            format!("{int}.{frac}")
        } else {
            number.clone()
        };
        let line = match rng.below(5) {
            0 => format!(r#"{{"prb_id":{number},"timestamp":0,"proto":"ICMP","result":[]}}"#),
            1 => format!(
                r#"{{"prb_id":1,"msm_id":{number},"timestamp":-{number},"proto":"ICMP","result":[]}}"#
            ),
            2 => format!(
                r#"{{"prb_id":1,"timestamp":{number},"proto":"ICMP","result":[{{"hop":{number},"result":[]}}]}}"#
            ),
            _ => format!(
                r#"{{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{{"result":[{{"from":"10.0.0.1","rtt":{decimal}}},{{"from":"10.0.0.1","rtt":{decimal}}}]}}]}}"#
            ),
        };
        scanned += usize::from(differential(line.as_bytes(), &mut fast).0);
    }
    assert!(scanned > total / 3, "{scanned} of {total}");
    // Numbers only skipped: JSON, however large or small.
    for number in [
        "1e400",
        "-1e400",
        "1e-400",
        "1e99999999999999999999",
        "123456789012345678901234567890",
    ] {
        let line = format!(
            r#"{{"prb_id":1,"timestamp":0,"proto":"ICMP","z":{number},"result":[{{"result":[{{"late":{number},"w":[{number}]}}]}}]}}"#
        );
        assert!(differential(line.as_bytes(), &mut fast).0, "{line}");
    }
}

/// Inputs the fuzzing found where the scanner and serde_json disagreed.
#[test]
fn regressions_found_by_fuzzing() {
    let mut fast = Assembly::default();
    for line in REGRESSIONS {
        let _ = differential(line.as_bytes(), &mut fast);
    }
}

const REGRESSIONS: &[&str] = &[
    // Twenty digits and more overflowed the scanner's integer and float
    // (a panic in debug builds).
    r#"{"prb_id":123456789012345678901,"timestamp":0,"proto":"ICMP","result":[]}"#,
    r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":[{"rtt":18446744073709551616}]}]}"#,
    r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":[{"rtt":0.000000000000000000000000000000000000001}]}]}"#,
    // `-0` is the float -0.0 to serde_json: not an i64.
    r#"{"prb_id":1,"timestamp":-0,"proto":"ICMP","result":[]}"#,
    // No space is allowed between a sign and its digits.
    r#"{"prb_id":1,"timestamp":- 5,"proto":"ICMP","result":[]}"#,
];
