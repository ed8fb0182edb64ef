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
//! `late`).
//!
//! scamper: the files under `invalid/` come from M-Lab's parser tests, and
//! not all of them are malformed records: some are only invalid under
//! M-Lab's file-structure rules, which an importer of records does not
//! enforce (an empty `UUID` in the metadata line, a trailing blank line, a
//! `tracelb` without `links` — `tracelb` records are skipped —, cycle lines
//! that disagree with each other around a well-formed trace). The test pins
//! exactly which files give errors, and that every trace line in them still
//! imports. Of the valid files, only the `scamper2` ones hold `trace`
//! objects; the `scamper1` ones and `mlab_triggertrace_valid.jsonl` hold
//! `tracelb` (MDA) records only, so they import with no errors and no traces.

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
        assert!(trace.started_at.ends_with('Z'));
    }
    // The 10 results whose probe failed to resolve the destination name.
    assert_eq!(
        unknown_destination, 10,
        "results without any destination address"
    );
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
            // scamper1 and triggertrace files hold only tracelb records.
            assert!(traces.is_empty(), "{file}");
        }
    }
}

#[test]
fn invalid_scamper_files_give_per_line_errors_and_reading_goes_on() {
    let Some(dir) = data_dir("invalid_scamper_files_give_per_line_errors_and_reading_goes_on")
    else {
        return;
    };
    // Invalid only under M-Lab's file rules, not as records (module docs).
    let structural_only = [
        "mlab_scamper1_invalid-metadata-uuid",
        "mlab_scamper1_invalid-num-lines",
        "mlab_scamper1_invalid-tracelb-links",
        "mlab_scamper2_invalid-metadata-uuid",
        "mlab_scamper2_invalid-num-lines",
        // Its records equal those of the other files; the fault is across lines.
        "mlab_scamper2_invalid-trace-links",
    ];
    let files = files_in(&dir.join("scamper/invalid"));
    assert_eq!(files.len(), 22);
    let mut with_errors = 0;
    for path in files {
        let file = name(&path);
        let out = import(&path, InputFormat::Scamper);
        let errors: Vec<&ImportError> = out.iter().filter_map(|r| r.as_ref().err()).collect();
        let lines: Vec<usize> = out
            .iter()
            .map(|r| match r {
                Ok(i) => i.line,
                Err(e) => e.line,
            })
            .collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "{file}: {lines:?}");
        if structural_only.contains(&file.as_str()) {
            assert!(errors.is_empty(), "{file}: {errors:?}");
        } else {
            with_errors += 1;
            assert!(!errors.is_empty(), "{file}: no error");
            for e in &errors {
                assert!(e.to_string().starts_with(&format!("line {}: ", e.line)));
            }
        }
        // Every well-formed `trace` line of the file still imports.
        let text = std::fs::read_to_string(&path).unwrap();
        for (index, raw) in text.lines().enumerate() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(raw) else {
                continue;
            };
            if value["type"] == "trace" && value.get("hops").is_some() {
                assert!(
                    out.iter()
                        .any(|r| matches!(r, Ok(i) if i.line == index + 1)),
                    "{file}: trace on line {} not imported",
                    index + 1
                );
            }
        }
    }
    assert_eq!(with_errors, 16);
}
