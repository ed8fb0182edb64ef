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

/// For each document, `None` when it is valid under `schemas/{schema}`, else the
/// most relevant error as `JSON-PATH: message` (`jsonschema`'s
/// `best_match`); all in one Python process. `None` without `jsonschema`.
pub fn errors(schema: &str, docs: &[serde_json::Value]) -> Option<Vec<Option<String>>> {
    let check = "import json, sys, jsonschema\n\
        from jsonschema.exceptions import best_match\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        v = jsonschema.Draft202012Validator(schema)\n\
        for line in sys.stdin:\n\
        \x20   e = best_match(v.iter_errors(json.loads(line)))\n\
        \x20   at = ''.join('[%d]' % p if isinstance(p, int) else '.' + p for p in e.absolute_path) if e else ''\n\
        \x20   print('ok' if e is None else ('$' + at + ': ' + e.message).replace('\\n', ' '))\n";
    if Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("SKIPPED {schema} checks: python3 jsonschema missing (pip install jsonschema)");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", check])
        .arg(super::root().join("schemas").join(schema))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut input = Vec::new();
    for d in docs {
        serde_json::to_writer(&mut input, d).unwrap();
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().expect("its stdin");
    // Written from a thread: the child answers while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("python3 ends");
    writer.join().unwrap().expect("the documents written");
    assert!(out.status.success(), "{}", super::text(&out));
    let answers: Vec<Option<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| (l != "ok").then(|| l.to_string()))
        .collect();
    assert_eq!(answers.len(), docs.len(), "{}", super::text(&out));
    Some(answers)
}
