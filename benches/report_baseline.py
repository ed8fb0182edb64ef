#!/usr/bin/env python3
"""The report benchmark's peer: the figures of `transitwatch report` computed
from the same store with SQL in Python's sqlite3 (standard library only).

    python3 benches/report_baseline.py DB CONFIG SINCE UNTIL [--check REPORT.json]

SINCE and UNTIL are Unix seconds. Prints the figures as one JSON object;
with --check, compares them with `transitwatch report --format json` of the
same store, period and configuration and exits 1 at the first difference
(fractions to 1e-9, everything else exactly).

What SQL does (window functions, json_extract, json_each): reads each
trace's vantage and foreign countries out of its stored record; per path
the spacing of its traces, the median spacing and the hold of three times
it (the median of the paths' medians where a path has none); each trace's
segment of time (until the path's next trace, at most the hold, inside the
period); per path the time and traces in each class and through each
foreign country; per service the traces in each class and country; route
changes; the gaps no path covers (a running maximum); the provenance; the
first trace of each foreign route and its foreign hops' networks; the last
trace of each path. What Python does: the service's timeline across its
paths (the most severe class of the paths measured at each moment, the
union of their foreign countries), its current state, and the national and
per-category counts.

The rules are the report's (see src/report/mod.rs and README's "Time" and
"Services, not paths"): a verdict holds until the path's next trace for at
most three times the median spacing of that path's traces; shares are of the
whole period; a service depends on a country at a moment when any of its
paths then crosses it; services_any counts services with at least one trace
through the country, services_all those that crossed it all their measured
time.
"""

import json
import sqlite3
import sys
import time
import tomllib

SEVERITY = {"domestic": 0, "indeterminate": 1, "foreign_transit": 2, "foreign_destination": 3}
CLASSES = sorted(SEVERITY)
CHANGES_LISTED = 500
ROUTES_READ = 32


def ts(unix):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def frac(part, whole):
    return part / whole if whole > 0 else 0.0


def shares(classes, countries, measured, whole, with_unmeasured):
    out = {
        "classes": {c: frac(classes.get(c, 0), whole) for c in CLASSES},
        "countries": {c: frac(n, whole) for c, n in sorted(countries.items())},
    }
    if with_unmeasured:
        out["unmeasured"] = frac(whole - measured, whole)
    return out


def figures(db, config, since, until):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute("PRAGMA temp_store = MEMORY")
    since, until = int(since), int(until)
    whole = until - since
    rules = {}
    with open(config, "rb") as f:
        for t in tomllib.load(f).get("target", []):
            rules[t["name"]] = t.get("category") or "uncategorised"

    # Each trace as a point on its path's timeline: the record's vantage
    # and foreign countries read by SQLite's JSON functions.
    conn.execute(f"""
        CREATE TEMP TABLE point AS
        SELECT id, started_at AS at, target, path_key,
               coalesce(json_extract(record, '$.vantage.name'), '') AS vantage,
               class, path_id,
               coalesce(json_extract(record, '$.verdict.foreign_countries'), '[]') AS abroad
        FROM traces WHERE started_at >= {since} AND started_at < {until}""")
    # Per path: its neighbours in time, the median spacing, the hold, and
    # each trace's segment [a, b).
    conn.execute(f"""
        CREATE TEMP TABLE seg AS
        WITH ordered AS (
            SELECT *, LAG(at) OVER w AS prev_at, LEAD(at) OVER w AS next_at,
                   LAG(path_id) OVER w AS prev_path_id, LAG(class) OVER w AS prev_class
            FROM point WINDOW w AS (PARTITION BY path_key, vantage ORDER BY at, id)),
        spacing AS (
            SELECT path_key, vantage, at - prev_at AS d,
                   ROW_NUMBER() OVER (PARTITION BY path_key, vantage ORDER BY at - prev_at) - 1 AS r,
                   COUNT(*) OVER (PARTITION BY path_key, vantage) AS m
            FROM ordered WHERE at - prev_at > 0),
        median AS (SELECT path_key, vantage, d FROM spacing WHERE r = m / 2),
        fallback AS (
            SELECT 3 * d AS hold FROM (
                SELECT d, ROW_NUMBER() OVER (ORDER BY d) - 1 AS r, COUNT(*) OVER () AS m FROM median)
            WHERE r = m / 2),
        hold AS (
            SELECT p.path_key, p.vantage,
                   coalesce(3 * median.d, (SELECT hold FROM fallback), 0) AS hold
            FROM (SELECT DISTINCT path_key, vantage FROM point) p
            LEFT JOIN median USING (path_key, vantage))
        SELECT o.*, max(o.at, {since}) AS a,
               min(coalesce(o.next_at, {until}), o.at + hold.hold, {until}) AS b
        FROM ordered o JOIN hold USING (path_key, vantage)""")
    conn.execute("CREATE INDEX temp.seg_path ON seg (target, path_key, vantage, at, id)")

    # Per path: traces, time and traces per class and per foreign country.
    paths = {}  # (path_key, vantage) -> figures

    def path(key, vantage):
        return paths.setdefault((key, vantage), {
            "traces": 0, "time_classes": {}, "time_countries": {}, "measured": 0,
            "trace_classes": {}, "trace_countries": {}})

    for key, vantage, cls, n, t in conn.execute("""
            SELECT path_key, vantage, class, count(*), sum(CASE WHEN b > a THEN b - a ELSE 0 END)
            FROM seg GROUP BY 1, 2, 3"""):
        p = path(key, vantage)
        p["traces"] += n
        p["trace_classes"][cls] = n
        p["time_classes"][cls] = t
        p["measured"] += t
    for key, vantage, country, n, held, t in conn.execute("""
            SELECT path_key, vantage, country, count(*), sum(b > a),
                   sum(CASE WHEN b > a THEN b - a ELSE 0 END)
            FROM (SELECT DISTINCT seg.id, path_key, vantage, j.value AS country, a, b
                  FROM seg, json_each(seg.abroad) j)
            GROUP BY 1, 2, 3"""):
        p = path(key, vantage)
        p["trace_countries"][country] = n
        if held:
            p["time_countries"][country] = t

    # Per service: traces per class and per foreign country.
    by_traces = {}
    for target, cls, n in conn.execute("SELECT target, class, count(*) FROM point GROUP BY 1, 2"):
        s = by_traces.setdefault(target, {"classes": {}, "countries": {}, "n": 0})
        s["classes"][cls] = n
        s["n"] += n
    for target, country, n in conn.execute("""
            SELECT target, country, count(*) FROM (
                SELECT DISTINCT point.id, target, j.value AS country FROM point, json_each(point.abroad) j)
            GROUP BY 1, 2"""):
        by_traces[target]["countries"][country] = n

    # Route changes: the path identity or the class differs from the
    # path's previous trace.
    changes = {}
    for target, key, at, prev_class, cls, foreign, path_id in conn.execute("""
            SELECT target, path_key, at, prev_class, class, abroad, path_id FROM seg
            WHERE prev_path_id IS NOT NULL AND (prev_path_id != path_id OR prev_class != class)
            ORDER BY target, path_key, vantage, at, id"""):
        changes.setdefault(target, []).append({
            "at": at, "path_key": key, "from_class": prev_class, "class": cls,
            "foreign_countries": json.loads(foreign), "path_id": path_id})

    # Gaps: where no segment of any path reaches (a running maximum of
    # the segments' ends).
    gaps = []
    reach = since
    for a, b, before in conn.execute(f"""
            SELECT a, b, max(coalesce(max(b) OVER (ORDER BY a, b ROWS BETWEEN UNBOUNDED PRECEDING
                                                   AND 1 PRECEDING), {since}), {since})
            FROM seg WHERE b > a ORDER BY a, b"""):
        if a > before:
            gaps.append((before, a))
        reach = max(reach, b)
    if until > reach:
        gaps.append((reach, until))

    # Provenance, as stored.
    provenance = [
        {"config_sha256": c, "geoip": json.loads(g), "version": v, "traces": n,
         "first": ts(first), "last": ts(last)}
        for c, g, v, n, first, last in conn.execute(f"""
            SELECT config_sha256, geoip, version, count(*), min(started_at), max(started_at)
            FROM traces WHERE started_at >= {since} AND started_at < {until}
            GROUP BY 1, 2, 3 ORDER BY 5""")]

    # Foreign networks: per path the first trace of each of its first
    # ROUTES_READ foreign routes; the hops located in one of the route's
    # foreign countries.
    networks = {}
    for target, asn, org, country in conn.execute(f"""
            WITH first AS (
                SELECT id, target, path_key, vantage, abroad, at,
                       ROW_NUMBER() OVER (PARTITION BY path_key, vantage, class, path_id, abroad
                                          ORDER BY at, id) AS k
                FROM point WHERE abroad != '[]'),
            route AS (
                SELECT id, target, path_key, vantage, abroad,
                       ROW_NUMBER() OVER (PARTITION BY path_key, vantage ORDER BY at, id) AS r
                FROM first WHERE k = 1)
            SELECT route.target, json_extract(h.value, '$.geo.asn'),
                   json_extract(h.value, '$.geo.as_org'), json_extract(h.value, '$.geo.country')
            FROM route JOIN traces USING (id), json_each(traces.record, '$.hops') h
            WHERE route.r <= {ROUTES_READ}
              AND json_extract(h.value, '$.geo.asn') IS NOT NULL
              AND json_extract(h.value, '$.geo.country') IN (SELECT value FROM json_each(route.abroad))
            ORDER BY route.target, route.path_key, route.vantage, route.r, h.key"""):
        n = networks.setdefault(asn, [None, set(), set()])
        if n[0] is None:
            n[0] = org
        n[1].add(country)
        n[2].add(target)

    # Evidence: the last trace of each path, read whole.
    evidence = {}
    for key, vantage, tid, record in conn.execute("""
            SELECT s.path_key, s.vantage, s.id, traces.record
            FROM (SELECT path_key, vantage, id, ROW_NUMBER() OVER (
                      PARTITION BY path_key, vantage ORDER BY at DESC, id DESC) AS k FROM point) s
            JOIN traces USING (id) WHERE s.k = 1"""):
        evidence[(key, vantage)] = (tid, len(json.loads(record)["hops"]))

    vantages = sorted(v for (v,) in conn.execute("SELECT DISTINCT vantage FROM point"))
    total = conn.execute("SELECT count(*) FROM point").fetchone()[0]

    # Services: each one's timeline across its paths, in Python.
    foreign_of = {}
    services = []
    rows = conn.execute("""
        SELECT target, path_key, vantage, at, a, b, class, path_id, abroad FROM seg
        ORDER BY target, path_key, vantage, at, id""")
    current_target, segs = None, {}

    def finish(target, segs):
        # Per path: its segments, consecutive ones of one state merged.
        per_path = []
        last_trace = max(s[-1][0] for s in segs.values())
        for k in sorted(segs):
            merged = []
            for at, a, b, state in segs[k]:
                if b <= a:
                    continue
                if merged and merged[-1][2] == state and merged[-1][1] == a:
                    merged[-1][1] = b
                else:
                    merged.append([a, b, state])
            per_path.append(merged)
        bounds = sorted({since, until, *(x for m in per_path for s in m for x in s[:2])})
        cursors = [0] * len(per_path)
        tclasses, tcountries, measured = {}, {}, 0
        spans = []
        for a, b in zip(bounds, bounds[1:]):
            cls, foreign = None, []
            for i, m in enumerate(per_path):
                while cursors[i] < len(m) and m[cursors[i]][1] <= a:
                    cursors[i] += 1
                if cursors[i] < len(m) and m[cursors[i]][0] <= a:
                    st_cls, _, st_foreign = m[cursors[i]][2]
                    if cls is None or SEVERITY[st_cls] > SEVERITY[cls]:
                        cls = st_cls
                    for c in st_foreign:
                        if c not in foreign:
                            foreign.append(c)
            if cls is None:
                continue
            tclasses[cls] = tclasses.get(cls, 0) + b - a
            for c in set(foreign):
                tcountries[c] = tcountries.get(c, 0) + b - a
            measured += b - a
            if spans and spans[-1][1] == a and spans[-1][2] == cls and spans[-1][3] == foreign:
                spans[-1][1] = b
            else:
                spans.append([a, b, cls, foreign])
        current = None
        if spans:
            last = spans[-1]
            since_ = last[0]
            for span in reversed(spans[:-1]):
                if span[2] == last[2] and span[3] == last[3]:
                    since_ = span[0]
                else:
                    break
            current = {"class": last[2], "foreign_countries": last[3], "since": ts(since_),
                       "last_trace": ts(last_trace)}
        bt = by_traces[target]
        listed = sorted(changes.get(target, []), key=lambda c: c["at"])
        services.append({
            "name": target,
            "category": rules.get(target, "uncategorised"),
            "traces": bt["n"],
            "current": current,
            "time_share": shares(tclasses, tcountries, measured, whole, True),
            "trace_share": shares(bt["classes"], bt["countries"], bt["n"], bt["n"], False),
            "paths": [{
                "path_key": k[0], "vantage": k[1], "traces": paths[k]["traces"],
                "time_share": shares(paths[k]["time_classes"], paths[k]["time_countries"],
                                     paths[k]["measured"], whole, True),
                "trace_share": shares(paths[k]["trace_classes"], paths[k]["trace_countries"],
                                      paths[k]["traces"], paths[k]["traces"], False),
            } for k in sorted(segs)],
            "change_count": len(listed),
            "changes": [dict(c, at=ts(c["at"])) for c in listed[-CHANGES_LISTED:]],
            "evidence": [{"path_key": k[0], "trace_id": evidence[k][0], "hops": evidence[k][1]}
                         for k in sorted(segs) if k in evidence],
            "_time": (tcountries, measured),
        })

    for target, key, vantage, at, a, b, cls, path_id, foreign in rows:
        if target != current_target:
            if current_target is not None:
                finish(current_target, segs)
            current_target, segs = target, {}
        f = foreign_of.get(foreign)
        if f is None:
            f = foreign_of[foreign] = json.loads(foreign)
        segs.setdefault((key, vantage), []).append((at, a, b, (cls, path_id, f)))
    if current_target is not None:
        finish(current_target, segs)

    # National figures: services, not paths.
    n = len(services)
    countries, categories, services_foreign = {}, {}, 0
    for s in services:
        tcountries, measured = s.pop("_time")
        cat = categories.setdefault(s["category"], [0, {}])
        cat[0] += 1
        traced = by_traces[s["name"]]["countries"]
        if traced:
            services_foreign += 1
        for country in sorted(traced):
            t = tcountries.get(country, 0)
            e = countries.setdefault(country, [0, 0, 0, []])
            e[0] += 1
            if measured > 0 and t == measured:
                e[1] += 1
            e[2] += t
            e[3].append(s["name"])
            cat[1][country] = cat[1].get(country, 0) + 1
    country_figures = sorted((
        {"country": c, "services_any": any_, "services_all": all_,
         "share_of_services": frac(any_, n), "time_share": frac(t, whole * n), "service_names": names}
        for c, (any_, all_, t, names) in countries.items()),
        key=lambda c: (-c["services_any"], -c["time_share"], c["country"]))
    return {
        "period": {"start": ts(since), "end": ts(until), "seconds": whole},
        "summary": {
            "services": n,
            "services_foreign": services_foreign,
            "countries": country_figures,
            "categories": [{"category": c, "services": k, "countries": dict(sorted(cs.items()))}
                           for c, (k, cs) in sorted(categories.items())],
            "networks": [{"asn": asn, "name": org, "countries": sorted(cs), "service_names": sorted(ss)}
                         for asn, (org, cs, ss) in sorted(networks.items())],
        },
        "services": services,
        "method": {
            "vantages": vantages,
            "traces": total,
            "gaps": [{"start": ts(a), "end": ts(b), "seconds": b - a} for a, b in gaps],
            "unmeasured_seconds": sum(b - a for a, b in gaps),
            "provenance": provenance,
        },
    }


def compare(mine, report):
    """Every figure of `mine` against the same place in `report`."""
    problems = []

    def same(a, b, where):
        if len(problems) > 20:
            return
        if isinstance(a, dict):
            if not isinstance(b, dict):
                problems.append(f"{where}: {b!r} is not an object")
                return
            for k in a:
                if k not in b:
                    problems.append(f"{where}.{k}: missing from the report")
                else:
                    same(a[k], b[k], f"{where}.{k}")
            if where.endswith(("classes", "countries")) and set(a) != set(b):
                problems.append(f"{where}: keys {sorted(a)} vs the report's {sorted(b)}")
        elif isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                problems.append(f"{where}: {len(a)} items vs the report's "
                                f"{len(b) if isinstance(b, list) else b!r}")
                return
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}[{i}]")
        elif isinstance(a, float):
            if not isinstance(b, (int, float)) or abs(a - b) > 1e-9:
                problems.append(f"{where}: {a!r} vs the report's {b!r}")
        elif a != b:
            problems.append(f"{where}: {a!r} vs the report's {b!r}")

    # Evidence: the same traces with as many hops.
    for s, r in zip(mine["services"], report.get("services", [])):
        for e, re_ in zip(s["evidence"], r.get("evidence", [])):
            re_["hops"] = len(re_.get("hops", []))
    # Provenance: the stored list holds the databases, then the location
    # files (the entries with a sha256).
    for p in mine["method"]["provenance"]:
        stored = p.pop("geoip")
        p["geoip"] = [{"kind": d["kind"], "type": d["type"], "built": ts(d["build_epoch"])}
                      for d in stored if "sha256" not in d]
        p["location_files"] = [d for d in stored if "sha256" in d]
    same(mine, report, "report")
    return problems


def main():
    args = sys.argv[1:]
    check = None
    if "--check" in args:
        i = args.index("--check")
        check = args[i + 1]
        del args[i:i + 2]
    if len(args) != 4:
        sys.exit(__doc__)
    db, config, since, until = args
    mine = figures(db, config, since, until)
    if check:
        with open(check) as f:
            report = json.load(f)
        problems = compare(mine, report)
        if problems:
            print("the baseline and transitwatch report disagree:", file=sys.stderr)
            for p in problems[:20]:
                print("  " + p, file=sys.stderr)
            sys.exit(1)
        n_services = len(mine["services"])
        n_paths = sum(len(s["paths"]) for s in mine["services"])
        print(f"same figures: {n_services} services, {n_paths} paths, "
              f"{len(mine['summary']['countries'])} countries, {len(mine['summary']['networks'])} networks, "
              f"{len(mine['method']['gaps'])} gaps, {mine['method']['traces']} traces "
              f"(fractions within 1e-9, the rest exact)")
        return
    json.dump(mine, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
