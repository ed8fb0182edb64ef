#!/usr/bin/env python3
"""Independent reader of RIPE Atlas traceroute results (JSON Lines).

Usage: extract_atlas_hops.py RESULTS.jsonl

Prints one JSON object per non-blank input line:
  {"line": N, "dst_addr": "..." or null,
   "hops": [[HOP, [ADDR, ...], {ADDR: [[LABEL, EXP, S, TTL], ...], ...}], ...]}

- HOP is the entry's "hop" value, or its 1-based position in "result" when
  the entry has no "hop" key. Entries with the same number are merged, and
  hops are listed in ascending number.
- Responder rule (the same as src/import/atlas.rs): a reply counts when it
  has "from", has no "x" and has no "late". ADDRs are the distinct
  responders of the hop, sorted as strings.
- MPLS: for each responder, the label stack of the first of its replies
  whose "icmpext" has an object of class 1 (or without "class") with
  "mpls" entries: that object's entries, in order.

Only the standard library's json module is used, so that this reader shares
no code with the importer it checks.
"""

import json
import sys


def stack_of(reply):
    ext = reply.get("icmpext")
    if not isinstance(ext, dict):
        return None
    for obj in ext.get("obj") or []:
        if obj.get("class", 1) == 1 and obj.get("mpls"):
            return [[m.get("label", 0), m.get("exp", 0), m.get("s", 0), m.get("ttl", 0)] for m in obj["mpls"]]
    return None


def hops_of(record):
    merged = {}
    stacks = {}
    for position, entry in enumerate(record.get("result", []), start=1):
        number = entry.get("hop", position)
        addrs = merged.setdefault(number, set())
        hop_stacks = stacks.setdefault(number, {})
        for reply in entry.get("result", []):
            if "x" in reply or "late" in reply or "from" not in reply:
                continue
            addrs.add(reply["from"])
            stack = stack_of(reply)
            if stack and reply["from"] not in hop_stacks:
                hop_stacks[reply["from"]] = stack
    return [[number, sorted(merged[number]), stacks[number]] for number in sorted(merged)]


def main():
    with open(sys.argv[1], encoding="utf-8") as results:
        for line_no, line in enumerate(results, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            out = {"line": line_no, "dst_addr": record.get("dst_addr"), "hops": hops_of(record)}
            print(json.dumps(out))


if __name__ == "__main__":
    main()
