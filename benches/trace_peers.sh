#!/usr/bin/env bash
# Complete-trace time of transitwatch against its peers, on the same lab path,
# in one run: scamper, mtr and traceroute, each with 3 probes per hop over
# ICMP. Prints each tool's median wall time and its ratio over transitwatch's.
#
#   benches/trace_peers.sh [RUNS]      (as root, or it asks for sudo; default
#                                       20 runs per tool)
#
# Two lab paths: vantage -> r1 -> ls2 -> gw -> domestic service (4 hops), and
# a destination behind the same routers that never answers. Each tool runs
# with its own defaults otherwise (transitwatch: 3 s deadline; traceroute:
# -w 5,3,10; scamper: wait 5 s, gap limit 5). Times include process start
# (`ip netns exec` + `sh -c`), shown by the first row.
set -euo pipefail
source "$(dirname "$0")/../scripts/as_root.sh"
cd "$(dirname "$0")/.."
runs=${1:-20}
prefix=twbench$$
lab=tests/lab/lab.sh

for tool in scamper mtr traceroute python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install scamper mtr-tiny traceroute)" >&2; exit 2; }
done
cargo build --release --quiet
bin=$PWD/target/release/transitwatch

trap 'bash $lab down $prefix' EXIT
bash $lab up "$prefix" >/dev/null
eval "$(bash $lab addrs)"
in_lab() { ip netns exec "$prefix-v" "$@"; }

# scenario RUNS TARGET: time every peer's complete trace of TARGET RUNS times
# (3 probes per hop, ICMP, numeric output) and print the table.
scenario() {
  local runs=$1 target=$2 out entry name cmd n
  local peers=(
    "transitwatch --version (process start only)|$bin --version"
    "transitwatch|$bin trace $target -n --probes 3 --json"
    "scamper (default 20 pps)|scamper -O json -c 'trace -P icmp-paris -q 3 -Q' -i $target"
    "scamper -p 10000|scamper -p 10000 -O json -c 'trace -P icmp-paris -q 3 -Q' -i $target"
    "mtr -r -c 3|mtr -n -r -c 3 $target"
    "mtr -r -c 3 -i 0.1|mtr -n -r -c 3 -i 0.1 $target"
    "traceroute -I -q 3|traceroute -n -I -q 3 $target"
  )
  out=$(mktemp)
  for entry in "${peers[@]}"; do
    name=${entry%%|*}
    cmd=${entry#*|}
    # mtr's 1 s interval makes it slow: at most 3 runs
    n=$runs
    case "$name" in "mtr -r -c 3") n=$(( runs < 3 ? runs : 3 )) ;; esac
    [ "$runs" -gt 1 ] && { in_lab sh -c "$cmd" >/dev/null 2>&1 || true; } # warm-up
    for _ in $(seq "$n"); do
      t0=$(date +%s%N)
      in_lab sh -c "$cmd" >/dev/null 2>&1 || true # an unreached target exits 1
      t1=$(date +%s%N)
      echo "$name|$(( (t1 - t0) / 1000 ))" >>"$out"
    done
  done
  python3 - "$out" <<'PY'
import statistics, sys
times, order = {}, []
for line in open(sys.argv[1]):
    name, us = line.rstrip("\n").rsplit("|", 1)
    if name not in times:
        order.append(name)
    times.setdefault(name, []).append(int(us) / 1000.0)
base = statistics.median(times["transitwatch"])
print(f"{'tool':<44} {'runs':>4} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'x transitwatch':>15}")
for name in order:
    t = times[name]
    med = statistics.median(t)
    print(f"{name:<44} {len(t):>4} {med:>10.1f} {min(t):>9.1f} {max(t):>9.1f} {med / base:>15.2f}")
PY
  rm -f "$out"
}

echo "== reachable destination $DOMESTIC_V4 (4 hops), $runs runs"
scenario "$runs" "$DOMESTIC_V4"
echo
echo "== destination that never answers $UNANSWERED_V4 (3 routers, then silence), 1 run"
scenario 1 "$UNANSWERED_V4"
