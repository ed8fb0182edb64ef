//! `analyze` reads compressed dumps directly: a generated RIPE Atlas dump
//! compressed with gzip, bzip2 (one stream, and several concatenated as
//! parallel compressors write them), zstd and xz gives byte for byte the
//! output of the plain file, from a file or from standard input; a cut
//! bzip2 file keeps the results before the cut and says where it broke. A
//! bzip2 dump large enough to be decoded block-parallel gives the same
//! output on one, two and three threads, and a damaged block in it is an
//! error naming the input and the block.

use crate::support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::{bin, root, text};

/// `n` Atlas traceroute results over the lab's addresses (located by
/// `tests/lab/lab-geo.csv`): domestic paths, paths through ZA, results
/// ending in Ireland, silent hops, several probes and measurements.
pub(crate) fn dump(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let (dst, hops): (&str, Vec<&str>) = match i % 4 {
            0 => (
                "198.51.100.10",
                vec!["198.18.1.2", "198.18.2.2", "198.18.3.2", "198.51.100.10"],
            ),
            1 => (
                "198.51.100.20",
                vec![
                    "198.18.1.2",
                    "198.18.4.2",
                    "*",
                    "198.18.6.2",
                    "198.51.100.20",
                ],
            ),
            2 => (
                "203.0.113.10",
                vec!["198.18.1.2", "198.18.8.2", "203.0.113.10"],
            ),
            _ => ("198.51.100.30", vec!["198.18.1.2", "*", "*"]),
        };
        let result: Vec<String> = hops
            .iter()
            .enumerate()
            .map(|(h, from)| {
                let replies = if *from == "*" {
                    r#"{"x":"*"},{"x":"*"},{"x":"*"}"#.to_string()
                } else {
                    let rtt = 0.5 + (h as f64) * 2.25 + (i % 7) as f64 * 0.125;
                    format!(
                        r#"{{"from":"{from}","rtt":{rtt},"size":68,"ttl":{}}},{{"from":"{from}","rtt":{},"size":68,"ttl":{}}},{{"from":"{from}","rtt":{},"size":68,"ttl":{}}}"#,
                        64 - h,
                        rtt + 0.25,
                        64 - h,
                        rtt + 0.5,
                        64 - h
                    )
                };
                format!(r#"{{"hop":{},"result":[{replies}]}}"#, h + 1)
            })
            .collect();
        writeln!(
            out,
            r#"{{"fw":5080,"msm_id":{},"prb_id":{},"timestamp":{},"af":4,"proto":"ICMP","src_addr":"198.18.1.1","from":"198.18.1.1","dst_addr":"{dst}","result":[{}]}}"#,
            1000 + i % 3,
            10 + i % 5,
            1_700_000_000 + i,
            result.join(",")
        )
        .unwrap();
    }
    out
}

fn analyze(input: &Path, json: bool, stdin: Option<&[u8]>) -> Output {
    let overrides = root().join("tests/lab/lab-geo.csv");
    let mut cmd = Command::new(bin());
    cmd.args([
        "analyze",
        "--input-format",
        "atlas",
        "--home",
        "LS",
        "--input",
    ])
    .arg(input)
    .arg("--overrides")
    .arg(&overrides);
    if json {
        cmd.arg("--json");
    }
    match stdin {
        None => cmd.output().unwrap(),
        Some(bytes) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut pipe = child.stdin.take().unwrap();
            let bytes = bytes.to_vec();
            // Written from a thread: the child writes while it reads.
            let writer = std::thread::spawn(move || pipe.write_all(&bytes));
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap().unwrap();
            out
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_dumps_give_the_plain_files_output_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dump(2000);
    let path = dir.path().join("traceroute.jsonl");
    std::fs::write(&path, &plain).unwrap();
    let want = analyze(&path, true, None);
    assert!(want.status.success(), "{}", text(&want));
    assert_eq!(want.stdout.iter().filter(|b| **b == b'\n').count(), 2000);
    let want_summary = analyze(&path, false, None);
    assert!(want_summary.status.success(), "{}", text(&want_summary));

    // Several bzip2 streams one after the other, as pbzip2 and lbzip2 write.
    let half = plain.len() / 2;
    let cut = half + plain[half..].iter().position(|b| *b == b'\n').unwrap() + 1;
    let parallel = [bzip2(&plain[..cut]), bzip2(&plain[cut..])].concat();
    let files = [
        ("traceroute.jsonl.gz", gzip(&plain)),
        ("traceroute.jsonl.bz2", bzip2(&plain)),
        ("parallel.jsonl.bz2", parallel),
        (
            "traceroute.jsonl.zst",
            zstd::encode_all(&plain[..], 3).unwrap(),
        ),
        ("traceroute.jsonl.xz", xz(&plain)),
        // The name says nothing: the content does.
        ("misnamed.json", gzip(&plain)),
    ];
    for (name, bytes) in &files {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let got = analyze(&file, true, None);
        assert!(got.status.success(), "{name}: {}", text(&got));
        assert!(got.stdout == want.stdout, "{name}: the records differ");
        let summary = analyze(&file, false, None);
        assert!(summary.status.success(), "{name}: {}", text(&summary));
        // The summary names its input; the figures are the same.
        let figures = |out: &Output, input: &Path| {
            String::from_utf8_lossy(&out.stdout).replace(&input.display().to_string(), "INPUT")
        };
        assert_eq!(
            figures(&summary, &file),
            figures(&want_summary, &path),
            "{name}"
        );
    }
    // Standard input, compressed.
    let got = analyze(Path::new("-"), true, Some(&files[1].1));
    assert!(got.status.success(), "stdin: {}", text(&got));
    assert!(got.stdout == want.stdout, "stdin: the records differ");
    // Made by the system's own tool, when there is one.
    if support::have("bzip2") {
        let own = dir.path().join("system.jsonl");
        std::fs::write(&own, &plain).unwrap();
        let out = Command::new("bzip2").arg(&own).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let got = analyze(&dir.path().join("system.jsonl.bz2"), true, None);
        assert!(got.stdout == want.stdout, "bzip2(1): the records differ");
    }
}

/// `transitwatch analyze` with `--threads N`, on a file.
fn analyze_threads(input: &Path, json: bool, threads: &str) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["analyze", "--home", "LS", "--threads", threads, "--input"])
        .arg(input)
        .arg("--overrides")
        .arg(root().join("tests/lab/lab-geo.csv"));
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

#[test]
fn a_large_bzip2_dump_decoded_block_parallel_gives_the_plain_files_output() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dump(26_000);
    let path = dir.path().join("plain.jsonl");
    std::fs::write(&path, &plain).unwrap();
    // Level 1: blocks of 100 kB, so the file has dozens, and it is over
    // the size from which bzip2 input is decoded block-parallel.
    let bytes = bzip2(&plain);
    assert!(
        bytes.len() >= transitwatch::compressed::PARALLEL_BZIP2_FROM,
        "{} bytes: too small to be decoded in parallel",
        bytes.len()
    );
    // Several streams, as pbzip2 writes them, and one stream.
    let third = plain.len() / 3;
    let cut = third + plain[third..].iter().position(|b| *b == b'\n').unwrap() + 1;
    let streams = [bzip2(&plain[..cut]), bzip2(&plain[cut..])].concat();
    let figures = |out: &Output, input: &Path| {
        String::from_utf8_lossy(&out.stdout).replace(&input.display().to_string(), "INPUT")
    };
    for json in [true, false] {
        let want = analyze_threads(&path, json, "2");
        assert!(want.status.success(), "{}", text(&want));
        // Two threads decode block-parallel, one serially; the streams of
        // a parallel compressor, block-parallel.
        for (name, bytes, threads) in [
            ("one.jsonl.bz2", &bytes, "2"),
            ("one.jsonl.bz2", &bytes, "1"),
            ("streams.jsonl.bz2", &streams, "2"),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).unwrap();
            let got = analyze_threads(&file, json, threads);
            assert!(got.status.success(), "{name}: {}", text(&got));
            assert!(
                figures(&got, &file) == figures(&want, &path),
                "{name}, {threads} threads, json {json}: the output differs"
            );
        }
    }
    // A damaged block: the records before it, and an error naming the
    // input and the block. (Some bits change nothing, such as those of a
    // Huffman table no group uses: the damage is one the serial decoder
    // sees.)
    let damaged = (0..)
        .map(|i| {
            let mut damaged = bytes.clone();
            damaged[bytes.len() / 2 + i * 997] ^= 0x21;
            damaged
        })
        .find(|damaged| {
            let mut sink = Vec::new();
            bzip2::read::MultiBzDecoder::new(&damaged[..])
                .read_to_end(&mut sink)
                .is_err()
        })
        .unwrap();
    let file = dir.path().join("damaged.jsonl.bz2");
    std::fs::write(&file, &damaged).unwrap();
    let out = analyze_threads(&file, true, "2");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:", file.display()))
            && stderr.contains("the bzip2 data is damaged after ")
            && stderr.contains("the block of bzip2 stream 1 at compressed byte "),
        "{stderr}"
    );
    let whole = analyze_threads(&path, true, "2");
    assert!(whole.stdout.starts_with(&out.stdout));
    assert!(out.stdout.len() < whole.stdout.len());
}

#[test]
fn a_cut_bzip2_dump_keeps_the_results_before_the_cut_and_says_where_it_broke() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dump(10_000);
    let mut bytes = bzip2(&plain);
    bytes.truncate(bytes.len() * 2 / 3);
    let file = dir.path().join("cut.jsonl.bz2");
    std::fs::write(&file, &bytes).unwrap();
    let out = analyze(&file, true, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:", file.display()))
            && stderr.contains("the bzip2 data is damaged after "),
        "{stderr}"
    );
    let kept = out.stdout.iter().filter(|b| **b == b'\n').count();
    assert!(kept > 0 && kept < 10_000, "{kept} records kept");
    // The records kept are the first ones of the plain file's output.
    let plain_path = dir.path().join("plain.jsonl");
    std::fs::write(&plain_path, &plain).unwrap();
    let whole = analyze(&plain_path, true, None);
    assert!(whole.stdout.starts_with(&out.stdout));
}

#[test]
fn the_provenance_names_the_input_its_compression_and_every_location_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dump(400);
    let bytes = bzip2(&plain);
    let file = dir.path().join("dump.jsonl.bz2");
    std::fs::write(&file, &bytes).unwrap();
    let provenance = dir.path().join("provenance.json");
    let overrides = root().join("tests/lab/lab-geo.csv");
    let out = Command::new(bin())
        .args(["analyze", "--json", "--home", "LS", "--input"])
        .arg(&file)
        .arg("--overrides")
        .arg(&overrides)
        .arg("--provenance")
        .arg(&provenance)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let sha = |b: &[u8]| {
        use sha2::{Digest, Sha256};
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&provenance).unwrap()).unwrap();
    assert_eq!(p["schema"], "transitwatch.provenance/1");
    assert_eq!(p["input"]["compression"], "bzip2");
    assert_eq!(p["input"]["format"], "atlas");
    assert_eq!(p["input"]["bytes"], bytes.len());
    assert_eq!(p["input"]["sha256"], sha(&bytes).as_str());
    assert_eq!(p["home"], "LS");
    assert_eq!(p["traces"], 400);
    assert_eq!(p["failed"], 0);
    let classes: u64 = p["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(classes, 400, "{p}");
    let files = p["location_files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{p}");
    assert_eq!(files[0]["kind"], "overrides");
    assert_eq!(
        files[0]["sha256"],
        sha(&std::fs::read(&overrides).unwrap()).as_str()
    );
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
}
