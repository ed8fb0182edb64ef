//! JSON documents checked against the schemas the repository publishes
//! (`schemas/*.schema.json`) by an independent validator: Python's
//! `jsonschema` (Draft 2020-12), installed by `scripts/setup.sh`; without
//! it the check prints a skip line.

use std::io::Write;
use std::process::{Command, Stdio};

/// Assert that `value` is valid under `schemas/{schema}` (and that the
/// schema itself is a valid Draft 2020-12 schema).
pub fn assert_valid(schema: &str, value: &serde_json::Value) {
    let check = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))\n";
    if Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("SKIPPED {schema} check: python3 jsonschema missing (pip install jsonschema)");
        return;
    }
    let mut child = Command::new("python3")
        .args(["-c", check])
        .arg(super::root().join("schemas").join(schema))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child
        .stdin
        .take()
        .expect("its stdin")
        .write_all(value.to_string().as_bytes())
        .expect("the document written");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "the document breaks {schema}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
