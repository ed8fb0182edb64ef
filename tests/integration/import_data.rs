//! The importers against real published measurements in `../shared/data`
//! (see its README). Every test prints `SKIPPED ...` and passes when that
//! folder is absent, as it is in a user's checkout.
//!
//! Atlas: every result imports without error, including the ten whose probe
//! failed to resolve the destination name (no `dst_addr`, a host name in
//! `dst_name`, no reply quoting an address): those become traces whose
//! target address is unknown. Hop numbers and responders are checked against
//! an independent reader, `tests/tools/extract_atlas_hops.py`, which applies
//! the same responder rule (a reply with `from`, without `x` and without
//! `late`), and so are the MPLS label stacks of the hops (each hop's is its
//! main responder's first, from `icmpext`).
//!
//! scamper: every file under `invalid/` (M-Lab's deliberately malformed
//! parser fixtures) gives errors on the lines that are malformed, and
//! reading goes on after each. Beside broken JSON and unknown record types,
//! their defects are structural, and the reader checks them as scamper
//! writes them (`src/import/scamper.rs`): an M-Lab metadata line with an
//! empty `UUID`; an empty line (scamper writes one record per line; M-Lab
//! calls the file with a trailing empty line `invalid-num-lines`); a
//! `tracelb` node claiming a link it does not carry (`invalid-tracelb-links`);
//! a `cycle-stop` without its `cycle-start`. The `trace` record that
//! M-Lab's scamper2 fixtures share (`invalid-trace-links` among them) holds
//! a reply at `probe_ttl` 14 while its `hop_count` is 2: scamper keeps
//! replies in one slot per TTL up to `hop_count`, so that record cannot come
//! from scamper and is an error in every file that holds it. M-Lab's own
//! parser accepts `invalid-tracelb-links` and `invalid-trace-links` (it
//! checks the line layout only); this reader rejects both for the reasons
//! above. Of the valid files, the `scamper2` ones hold `trace` objects; the
//! `scamper1` ones and `mlab_triggertrace_valid.jsonl` hold `tracelb` (MDA)
//! records, which import with no errors as one trace per path of their
//! graphs (`src/import/tracelb.rs`): one path each (these graphs do not
//! branch), from the first hop at TTL 1 with one hop per TTL, except
//! `valid-simple`, whose record has no nodes and so no path.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use transitwatch::import::{read, ImportError, Imported, InputFormat};
use transitwatch::model::CountryCode;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// The data folder, or `None` (after saying so) when it is absent.
fn data_dir(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(DATA);
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("SKIPPED {test}: {DATA} is absent");
        None
    }
}

fn import(path: &Path, format: InputFormat) -> Vec<Result<Imported, ImportError>> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read(BufReader::new(file), format).collect()
}

#[test]
fn atlas_results_match_an_independent_reader() {
    let Some(dir) = data_dir("atlas_results_match_an_independent_reader") else {
        return;
    };
    let results = dir.join("atlas/traceroutes.jsonl");
    let imported = import(&results, InputFormat::Atlas);

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tools/extract_atlas_hops.py"
    );
    let output = match Command::new("python3").arg(script).arg(&results).output() {
        Ok(output) => output,
        Err(e) => {
            println!("SKIPPED atlas_results_match_an_independent_reader: python3: {e}");
            return;
        }
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 190, "the data set has 190 results");
    assert_eq!(imported.len(), expected.len(), "one outcome per result");

    let mut unknown_destination = 0;
    let mut labelled_hops = 0;
    for (got, want) in imported.iter().zip(&expected) {
        let line = usize::try_from(want["line"].as_u64().unwrap()).unwrap();
        let imported = got
            .as_ref()
            .unwrap_or_else(|err| panic!("line {line} failed: {err}"));
        assert_eq!(imported.line, line);
        assert!(imported.prb_id.is_some());
        let trace = &imported.trace;
        match want["dst_addr"].as_str() {
            Some(dst) => assert_eq!(
                trace.target.addr,
                Some(dst.parse::<IpAddr>().unwrap()),
                "line {line}"
            ),
            None => {
                // No result of the set quotes its destination elsewhere.
                assert_eq!(trace.target.addr, None, "line {line}");
                assert!(!trace.reached, "line {line}");
                unknown_destination += 1;
            }
        }
        let want_hops = want["hops"].as_array().unwrap();
        let want_ttls: Vec<u64> = want_hops.iter().map(|h| h[0].as_u64().unwrap()).collect();
        let got_ttls: Vec<u64> = trace.hops.iter().map(|h| u64::from(h.ttl)).collect();
        assert_eq!(got_ttls, want_ttls, "hop numbers, line {line}");
        for (hop, want_hop) in trace.hops.iter().zip(want_hops) {
            let want_addrs: BTreeSet<IpAddr> = want_hop[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().parse().unwrap())
                .collect();
            let got_addrs: BTreeSet<IpAddr> = hop.addrs.iter().copied().collect();
            assert_eq!(
                got_addrs, want_addrs,
                "responders, line {line} hop {}",
                hop.ttl
            );
            assert_eq!(hop.addr, hop.addrs.first().copied());
            // The reader's responders as written; compared as addresses.
            let want_mpls: Vec<(u64, u64, bool, u64)> = want_hop[2]
                .as_object()
                .unwrap()
                .iter()
                .find(|(a, _)| hop.addr == a.parse().ok())
                .and_then(|(_, stack)| stack.as_array())
                .into_iter()
                .flatten()
                .map(|e| {
                    let n = |i: usize| e[i].as_u64().unwrap();
                    (n(0), n(1), n(2) != 0, n(3))
                })
                .collect();
            let got_mpls: Vec<(u64, u64, bool, u64)> = hop
                .mpls
                .iter()
                .map(|l| (u64::from(l.label), u64::from(l.tc), l.s, u64::from(l.ttl)))
                .collect();
            assert_eq!(got_mpls, want_mpls, "MPLS, line {line} hop {}", hop.ttl);
            labelled_hops += usize::from(!hop.mpls.is_empty());
            assert!(hop.received <= hop.sent, "line {line} hop {}", hop.ttl);
            assert_eq!(hop.rtt_ms.is_some(), hop.received > 0);
        }
        assert_eq!(
            trace.reached,
            trace
                .target
                .addr
                .is_some_and(|dst| trace.hops.iter().any(|h| h.addrs.contains(&dst)))
        );
        assert!(trace.started_at.to_string().ends_with('Z'));
    }
    // The 10 results whose probe failed to resolve the destination name.
    assert_eq!(
        unknown_destination, 10,
        "results without any destination address"
    );
    // The set has label-switched hops: the comparison above bites.
    assert!(labelled_hops > 0, "no hop with an MPLS label stack");
    let late: u32 = imported
        .iter()
        .map(|r| r.as_ref().unwrap().late_replies)
        .sum();
    assert_eq!(late, 128, "every `late` reply is noted");
}

#[test]
fn atlas_vantage_countries_can_be_filled_from_probe_metadata() {
    let Some(dir) = data_dir("atlas_vantage_countries_can_be_filled_from_probe_metadata") else {
        return;
    };
    let meta_file = File::open(dir.join("atlas/probes_meta.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_reader(BufReader::new(meta_file)).unwrap();
    // The metadata covers most, not all, of the probes (95 of 119).
    let mut filled = 0;
    let mut results = 0;
    for mut imported in import(&dir.join("atlas/traceroutes.jsonl"), InputFormat::Atlas)
        .into_iter()
        .flatten()
    {
        results += 1;
        let id = imported.prb_id.unwrap();
        assert_eq!(imported.trace.vantage.name, format!("atlas-prb-{id}"));
        assert_eq!(imported.trace.vantage.country, None, "callers fill it");
        if let Some(code) = meta[id.to_string()]["country_code"].as_str() {
            imported.trace.vantage.country = Some(code.parse::<CountryCode>().unwrap());
            filled += 1;
        }
    }
    assert_eq!(results, 190, "every result imports");
    assert_eq!(filled, 95, "results whose probe has a country");
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("mlab_"))
        })
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_scamper_files_import_without_errors() {
    let Some(dir) = data_dir("valid_scamper_files_import_without_errors") else {
        return;
    };
    let files = files_in(&dir.join("scamper"));
    assert_eq!(files.len(), 12);
    for path in files {
        let file = name(&path);
        let out = import(&path, InputFormat::Scamper);
        let errors: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
        let traces: Vec<_> = out.into_iter().flatten().collect();
        if file.starts_with("mlab_scamper2_") {
            assert_eq!(traces.len(), 1, "{file}");
            let trace = &traces[0].trace;
            assert!(!trace.hops.is_empty(), "{file}");
            assert!(
                trace.hops.windows(2).all(|w| w[1].ttl == w[0].ttl + 1),
                "{file}"
            );
            if file.contains("dst-in-hops") {
                assert!(trace.reached, "{file}");
                let dst = trace.target.addr.expect("scamper traces carry `dst`");
                assert!(
                    trace.hops.iter().any(|h| h.addrs.contains(&dst)),
                    "{file}: the destination is among the hops"
                );
            }
            if file.ends_with("valid-star") {
                assert!(trace.hops.iter().any(|h| h.is_silent()), "{file}");
            }
        } else {
            // scamper1 and triggertrace files hold tracelb records: one
            // path each, none for the record without nodes.
            let want = usize::from(file != "mlab_scamper1_valid-simple");
            assert_eq!(traces.len(), want, "{file}");
            for t in &traces {
                let path = t.tracelb.expect("a tracelb path says so");
                assert_eq!((path.record, path.path, path.paths), (1, 1, 1), "{file}");
                assert_eq!(path.line, 3, "{file}");
                assert_eq!(t.trace.hops[0].ttl, 1, "{file}");
                assert!(
                    t.trace.hops.windows(2).all(|w| w[1].ttl == w[0].ttl + 1),
                    "{file}"
                );
            }
        }
    }
}

#[test]
fn invalid_scamper_files_give_per_line_errors_and_reading_goes_on() {
    let Some(dir) = data_dir("invalid_scamper_files_give_per_line_errors_and_reading_goes_on")
    else {
        return;
    };
    // The trace record of M-Lab's scamper2 fixtures: a reply beyond hop_count.
    const TTL_14: &str = "probe_ttl 14 beyond the trace's hop_count 2";
    const NO_START: &str = "without a cycle-start";
    // file → (line, what its error says), in line order.
    let expected: &[(&str, &[(usize, &str)])] = &[
        (
            "mlab_scamper1_invalid-cycle-start",
            &[(2, "invalid record"), (4, NO_START)],
        ),
        (
            "mlab_scamper1_invalid-cycle-start-type",
            &[
                (2, "unknown scamper record type `cycle-start-invalid`"),
                (3, "tracelb: missing field `method`"),
                (4, NO_START),
            ],
        ),
        ("mlab_scamper1_invalid-cycle-stop", &[(4, "invalid record")]),
        (
            "mlab_scamper1_invalid-cycle-stop-type",
            &[
                (3, "tracelb: missing field `method`"),
                (4, "unknown scamper record type `cycle-stop-invalid`"),
            ],
        ),
        (
            "mlab_scamper1_invalid-last-line",
            &[(5, "unknown scamper record type `cycle-extra`")],
        ),
        ("mlab_scamper1_invalid-metadata", &[(1, "invalid record")]),
        (
            "mlab_scamper1_invalid-metadata-uuid",
            &[(1, "empty `UUID`")],
        ),
        ("mlab_scamper1_invalid-num-lines", &[(5, "empty line")]),
        ("mlab_scamper1_invalid-tracelb", &[(3, "invalid record")]),
        (
            "mlab_scamper1_invalid-tracelb-links",
            &[(
                3,
                "tracelb node 6 (2001:4888:3f:6092:3a2:26:0:1) has linkc 1 but carries no links",
            )],
        ),
        (
            "mlab_scamper1_invalid-tracelb-type",
            &[(3, "unknown scamper record type `tracelb-invalid`")],
        ),
        (
            "mlab_scamper2_invalid-cycle-start",
            &[(2, "invalid record"), (3, TTL_14), (4, NO_START)],
        ),
        (
            "mlab_scamper2_invalid-cycle-start-type",
            &[
                (2, "unknown scamper record type `cycle-start-invalid`"),
                (3, "invalid trace: missing field `method`"),
                (4, NO_START),
            ],
        ),
        (
            "mlab_scamper2_invalid-cycle-stop",
            &[(3, TTL_14), (4, "invalid record")],
        ),
        (
            "mlab_scamper2_invalid-cycle-stop-type",
            &[
                (3, "invalid trace: missing field `method`"),
                (4, "unknown scamper record type `cycle-stop-invalid`"),
            ],
        ),
        (
            "mlab_scamper2_invalid-last-line",
            &[
                (3, TTL_14),
                (5, "unknown scamper record type `cycle-extra`"),
            ],
        ),
        (
            "mlab_scamper2_invalid-metadata",
            &[(1, "invalid record"), (3, TTL_14)],
        ),
        (
            "mlab_scamper2_invalid-metadata-uuid",
            &[(1, "empty `UUID`"), (3, TTL_14)],
        ),
        (
            "mlab_scamper2_invalid-num-lines",
            &[(3, TTL_14), (5, "empty line")],
        ),
        ("mlab_scamper2_invalid-trace", &[(3, "invalid record")]),
        ("mlab_scamper2_invalid-trace-links", &[(3, TTL_14)]),
        (
            "mlab_scamper2_invalid-trace-type",
            &[(3, "unknown scamper record type `trace-invalid`")],
        ),
    ];
    let files = files_in(&dir.join("scamper/invalid"));
    assert_eq!(files.len(), 22);
    let names: Vec<String> = files.iter().map(|p| name(p)).collect();
    let listed: Vec<String> = expected.iter().map(|(f, _)| (*f).to_string()).collect();
    assert_eq!(names, listed, "every file is pinned");

    // A well-formed trace (from a valid file) appended after each invalid
    // file must still be read: an error never stops the reading.
    let valid = std::fs::read_to_string(dir.join("scamper/mlab_scamper2_valid-complex")).unwrap();
    let good_trace = valid.lines().nth(2).unwrap();
    assert!(good_trace.contains(r#""type":"trace""#));

    for (path, (file, want)) in files.iter().zip(expected) {
        let mut text = std::fs::read_to_string(path).unwrap();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let appended_at = text.lines().count() + 1;
        text.push_str(good_trace);
        text.push('\n');
        let out: Vec<_> = read(
            std::io::Cursor::new(text.into_bytes()),
            InputFormat::Scamper,
        )
        .collect();

        let errors: Vec<&ImportError> = out.iter().filter_map(|r| r.as_ref().err()).collect();
        let got: Vec<usize> = errors.iter().map(|e| e.line).collect();
        let want_lines: Vec<usize> = want.iter().map(|(l, _)| *l).collect();
        assert_eq!(got, want_lines, "{file}: {errors:?}");
        for (e, (_, says)) in errors.iter().zip(want.iter()) {
            assert!(e.message.contains(says), "{file}: {e} should say {says:?}");
            assert!(e.to_string().starts_with(&format!("line {}: ", e.line)));
        }
        let lines: Vec<usize> = out
            .iter()
            .map(|r| match r {
                Ok(i) => i.line,
                Err(e) => e.line,
            })
            .collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "{file}: {lines:?}");
        let last = out
            .last()
            .unwrap()
            .as_ref()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(last.line, appended_at, "{file}");
        assert_eq!(last.trace.hops.len(), 14, "{file}");
        // Nothing else in these files is a well-formed trace.
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 1, "{file}");
    }
}
