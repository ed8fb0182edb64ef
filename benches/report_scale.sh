#!/usr/bin/env bash
# Time and peak memory of `transitwatch report` over a generated history of
# national services, against the same figures computed with SQL in Python's
# sqlite3 (benches/report_baseline.py) in the same run.
#
#   bash benches/report_scale.sh [SERVICES] [DAYS] [INTERVAL]
#                       (default 1000 services, 90 days, one trace of each
#                        path every 8h; RUNS=5 runs of each program)
#
# The history (benches/report_store.rs, fixed seed) is written once under
# target/bench/ with the project's own store code (records judged by the
# real pipeline, `Store::insert`) and reused while its parameters and the
# generator are unchanged: services in nine categories, 30% of them traced
# in both families, routes that change between domestic, through South
# Africa and answered from Ireland or the United States, unanswered traces,
# three stops of the daemon, new configurations and GeoIP builds.
# The interval is chosen for the store's size (about 4 KiB a trace:
# 1000 services every 8h for 90 days is 1.4 GB; every 5 minutes it would
# be 130 GB): the report's time grows with the number of traces, so the
# figures are also given per trace.
#
# Before timing, the baseline's figures are compared with those of
# `transitwatch report --format json` on the same store, period and
# configuration (fractions to 1e-9, the rest exactly); the bench stops if
# one differs. Then, alternating, RUNS times each:
#   transitwatch report --config CFG --store DB --since S --until U --format json
#   transitwatch report ... --format html
#   python3 benches/report_baseline.py DB CFG S U         (prints its figures)
# all to /dev/null. Wall time, CPU time (user + system) and peak RSS come
# from GNU time; medians of the runs are shown, and the largest peak RSS.
# The store is in the page cache (it was just written or read); no program
# is pinned to a core (each runs on one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-1000}
days=${2:-90}
interval=${3:-8h}
runs=${RUNS:-5}
case $interval in
  *h) interval_s=$((${interval%h} * 3600)) ;;
  *m) interval_s=$((${interval%m} * 60)) ;;
  *s) interval_s=${interval%s} ;;
  *) interval_s=$interval ;;
esac
for tool in python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (Debian: apt-get install python3 time)" >&2; exit 2; }
done
python3 -c 'import tomllib' 2>/dev/null || { echo "bench needs Python 3.11 or newer (tomllib)" >&2; exit 2; }
cargo build --release --quiet
bin=$PWD/target/release/transitwatch
work=$PWD/target/bench
mkdir -p "$work"

# The history, generated once per parameters (again when the generator changes).
store=$work/report-${services}services-${days}d-${interval_s}s
if [[ ! -f $store/params.txt || benches/report_store.rs -nt $store/params.txt ]]; then
  rm -rf "$store"
  echo "writing the history into $store (a few minutes)" >&2
  cargo bench --quiet --bench report_store -- "$store" "$services" "$days" "$interval_s" 1 >/dev/null
fi
param() { awk -v k="$1" '$1 == k { print $2 }' "$store/params.txt"; }
db=$store/transitwatch.db
config=$store/transitwatch.toml
since=$(param since)
until=$(param until)
since_s=$(date -u -d "$since" +%s)
until_s=$(date -u -d "$until" +%s)
traces=$(param traces)
report=("$bin" report --config "$config" --store "$db" --since "$since" --until "$until")

# Same work: every figure of the baseline against the report's.
"${report[@]}" --format json >"$work/report-check.json"
python3 benches/report_baseline.py "$db" "$config" "$since_s" "$until_s" --check "$work/report-check.json" ||
  { echo "transitwatch and the baseline disagree; the comparison would be unfair" >&2; exit 1; }

# One timed run: appends "label wall cpu rss_kb" to $results.
results=$work/report-results.tsv
: >"$results"
source benches/timed.sh
measure() { timed "$results" "$@"; }
for ((i = 0; i < runs; i++)); do
  measure transitwatch-json "${report[@]}" --format json
  measure transitwatch-html "${report[@]}" --format html
  measure python-baseline python3 benches/report_baseline.py "$db" "$config" "$since_s" "$until_s"
done

echo "store: $db"
echo "  $(( $(stat -c %s "$db") / 1000000 )) MB, $traces traces, $(param services) services ($(param dual_stack) in both families: $(param paths) paths), $(param days) days ($since to $until), one trace per path every $(param interval_s) s"
echo "  classes of the traces: $(param classes)"
echo "$runs runs each, alternating; medians, the largest peak RSS"
python3 - "$results" "$traces" <<'PY'
import statistics, sys
results, traces = sys.argv[1], int(sys.argv[2])
runs = {}
for line in open(results):
    label, wall, cpu, rss = line.split()
    runs.setdefault(label, []).append((float(wall), float(cpu), int(rss)))
def fig(label):
    r = runs[label]
    return (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r),
            max(x[2] for x in r) / 1024, min(x[0] for x in r), max(x[0] for x in r))
labels = ["transitwatch-json", "transitwatch-html", "python-baseline"]
print(f"{'program':<18} {'wall s':>7} {'(range)':>13} {'CPU s':>7} {'traces/s':>9} {'peak RSS MB':>11}")
for label in labels:
    wall, cpu, rss, lo, hi = fig(label)
    print(f"{label:<18} {wall:>7.2f} {f'({lo:.2f}-{hi:.2f})':>13} {cpu:>7.2f} {traces / wall:>9.0f} {rss:>11.1f}")
base = fig("python-baseline")
for label in labels[:2]:
    mine = fig(label)
    print(f"python-baseline / {label}: {base[0] / mine[0]:.1f}x wall time, {base[1] / mine[1]:.1f}x CPU time, "
          f"{base[2] / mine[2]:.1f}x peak RSS")
PY
