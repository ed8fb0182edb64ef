#!/usr/bin/env python3
"""The Python baseline of benches/analyze_throughput.sh: the work of
`transitwatch analyze --input-format atlas --json --home HOME`, written the
way a researcher would with the standard json module and PyPI's maxminddb.

Usage: analyze_baseline.py RESULTS.jsonl HOME MMDB... > records.jsonl
(RESULTS may be bzip2-compressed: told by its first bytes, read through
Python's bz2 module.)

Per line: parse the result; the target address (`dst_addr`, else
`dst_name` when it is an address literal, else the first `edst`); merge the
entries into hops by number (`hop`, else the position); per hop the
responders (a reply with `from`, without `x` and `late`), ranked by
frequency (ties: first seen), sent (replies that are neither late nor
duplicates), received and best/average/worst RTT; the location of each
hop's main responder (country, city, coordinates) from the first database
that knows it; the verdict with transitwatch's rules (src/analysis/mod.rs:
evidence = located hops; the destination's country; domestic,
foreign_transit, foreign_destination or indeterminate); the ordered
country list, the foreign countries, a path id (SHA-256 of the responding
hops); one JSON line out. A line that fails is counted and skipped.

Prints "traces hops failed" and the count per class on stderr.
"""

import bz2
import hashlib
import ipaddress
import json
import sys
from datetime import datetime, timezone

import maxminddb


def target_of(rec):
    dst = rec.get("dst_addr")
    if dst:
        return dst
    name = rec.get("dst_name") or ""
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    for entry in rec.get("result", []):
        for reply in entry.get("result", []):
            if "edst" in reply:
                return reply["edst"]
    return None


def hops_of(rec):
    merged = {}
    for position, entry in enumerate(rec["result"], start=1):
        number = entry.get("hop", position)
        hop = merged.get(number)
        if hop is None:
            hop = merged[number] = {"seen": [], "rtts": [], "sent": 0}
        for reply in entry.get("result", []):
            if "late" in reply:
                continue
            dup = "dup" in reply
            if not dup:
                hop["sent"] += 1
            if "x" in reply:
                continue
            addr = reply.get("from")
            if addr is not None:
                hop["seen"].append(addr)
            if "rtt" in reply and not dup:
                hop["rtts"].append(reply["rtt"])
    out = []
    for number in sorted(merged):
        hop = merged[number]
        counts = {}
        for addr in hop["seen"]:
            counts[addr] = counts.get(addr, 0) + 1
        addrs = sorted(counts, key=lambda a: -counts[a])  # stable: first seen wins ties
        rtts = hop["rtts"]
        out.append({
            "ttl": number,
            "addr": addrs[0] if addrs else None,
            "addrs": addrs,
            "sent": hop["sent"],
            "received": len(rtts),
            "rtt_ms": {"best": min(rtts), "avg": sum(rtts) / len(rtts), "worst": max(rtts)} if rtts else None,
        })
    return out


def locate(readers, addr):
    for reader in readers:
        try:
            record = reader.get(addr)
        except ValueError:  # an IPv6 address in an IPv4-only file
            continue
        if record:
            if "country_code" in record:  # flat layout (ip-location-db)
                return {
                    "country": record.get("country_code") or None,
                    "city": record.get("city") or None,
                    "lat": record.get("latitude"),
                    "lon": record.get("longitude"),
                    "source": "mmdb",
                }
            location = record.get("location") or {}  # nested (MaxMind, `geo build`)
            return {
                "country": (record.get("country") or {}).get("iso_code"),
                "city": ((record.get("city") or {}).get("names") or {}).get("en"),
                "lat": location.get("latitude"),
                "lon": location.get("longitude"),
                "source": "mmdb",
            }
    return {"country": None, "city": None, "lat": None, "lon": None, "source": "none"}


def verdict(hops, target, reached, home):
    located = [(h, h["geo"]["country"]) for h in hops if h["geo"]["country"]]
    countries = []
    for _, c in located:
        if not countries or countries[-1] != c:
            countries.append(c)
    foreign = []
    for _, c in located:
        if c != home and c not in foreign:
            foreign.append(c)
    destination = None
    if reached and target is not None:
        dest_hop = next((h for h in hops if h["addr"] == target), None) or next(
            (h for h in hops if target in h["addrs"]), None)
        if dest_hop is not None:
            destination = dest_hop["geo"]["country"]
    if not located:
        cls = "indeterminate"
    elif destination is not None and destination != home:
        cls = "foreign_destination"
    elif destination is not None:
        cls = "foreign_transit" if foreign else "domestic"
    else:
        last_foreign = max((i for i, (_, c) in enumerate(located) if c != home), default=None)
        # domestic needs the destination located at home
        if last_foreign is not None and last_foreign + 1 < len(located):
            cls = "foreign_transit"
        else:
            cls = "indeterminate"
    h = hashlib.sha256()
    for hop in hops:
        if hop["addrs"]:
            h.update(bytes([hop["ttl"] & 0xFF]))
            h.update(",".join(sorted(hop["addrs"])).encode())
            h.update(b"\n")
    return {
        "class": cls,
        "countries": countries,
        "foreign_countries": foreign,
        "violation": bool(foreign),
        "path_id": h.hexdigest()[:16],
    }


def open_results(path):
    """The results file as text: bzip2 (told by its first bytes, as
    transitwatch tells it) through Python's bz2 module, else as it is."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) == 4 and head[:3] == b"BZh" and head[3:4] in b"123456789":
        return bz2.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def main():
    path, home, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    readers = [maxminddb.open_database(f) for f in files]
    out = sys.stdout
    traces = hops_total = failed = 0
    classes = {}
    with open_results(path) as results:
        for line in results:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                target = target_of(rec)
                hops = hops_of(rec)
                for hop in hops:
                    hop["geo"] = locate(readers, hop["addr"]) if hop["addr"] else {
                        "country": None, "city": None, "lat": None, "lon": None, "source": "none"}
                reached = target is not None and any(target in hop["addrs"] for hop in hops)
                started = datetime.fromtimestamp(rec["timestamp"], timezone.utc)
                v = verdict(hops, target, reached, home)
            except (ValueError, KeyError, TypeError):
                failed += 1
                continue
            record = {
                "schema": "transitwatch.trace/1",
                "target": {"name": rec.get("dst_name"), "host": rec.get("dst_name"), "addr": target},
                "vantage": {"name": f"atlas-prb-{rec['prb_id']}", "country": home},
                "protocol": rec["proto"].lower(),
                "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "reached": reached,
                "hops": hops,
                "verdict": v,
            }
            out.write(json.dumps(record))
            out.write("\n")
            traces += 1
            hops_total += len(hops)
            classes[v["class"]] = classes.get(v["class"], 0) + 1
    print(traces, hops_total, failed, file=sys.stderr)
    for cls in sorted(classes):
        print(cls, classes[cls], file=sys.stderr)


if __name__ == "__main__":
    main()
