#!/usr/bin/env bash
# One cycle of the daemon over N targets (addresses on the lab's domestic
# service host, 4 hops away), against scamper tracing the same targets in
# the same run, at its default probe rate and at transitwatch's measured
# rate; then the time to serve /metrics for those targets.
#
#   benches/daemon_scale.sh [N]        (as root, or it asks for sudo; default
#                                       1000; about 11 minutes, 10 of them
#                                       scamper at 20 pps)
#
# transitwatch: `run` with interval 1h and jitter 1ms (so the first cycle
# starts at once), default concurrency 64, 3 probes per hop, ICMP; the cycle
# ends when /readyz turns 200 (every target traced once). Wall time, CPU
# seconds (utime+stime from /proc) and peak RSS (VmHWM) of the process.
# scamper: `trace -P icmp-paris -q 3 -Q` over the same list, timed by /usr/bin/time.
#
# RDNS=1 benches/daemon_scale.sh [N]: the same cycle with reverse DNS on,
# the resolver asking an unbound started at the vantage (127.0.0.1:5353)
# that serves a PTR name for every hop address (the three routers and the
# N targets in 198.19.0.0/16); the cycle then includes every trace's names.
# Without it `[rdns] enabled = false`, as before reverse DNS existed.
set -euo pipefail
source "$(dirname "$0")/../scripts/as_root.sh"
cd "$(dirname "$0")/.."
n=${1:-1000}
prefix=twscale$$
lab=tests/lab/lab.sh
rdns=${RDNS:-0}
tools="scamper curl python3"
[ "$rdns" = 1 ] && tools="$tools unbound"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool" >&2; exit 2; }
done
cargo build --release --quiet
bin=$PWD/target/release/transitwatch
work=$(mktemp -d)
cleanup() {
  local p
  for p in $(jobs -p) ${pid:-}; do kill "$p" 2>/dev/null || true; done
  bash $lab down $prefix
  rm -rf "$work"
}
trap cleanup EXIT
bash $lab up "$prefix" >/dev/null
in_lab() { ip netns exec "$prefix-v" "$@"; }

python3 - "$n" "$work" "$rdns" <<'PY'
import sys, ipaddress
n, work, rdns = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
base = int(ipaddress.ip_address("198.19.0.1"))
addrs = [str(ipaddress.ip_address(base + i)) for i in range(n)]
open(f"{work}/targets.txt", "w").write("\n".join(addrs) + "\n")
with open(f"{work}/transitwatch.toml", "w") as f:
    f.write(f'''[vantage]
name = "bench"
country = "LS"
[probe]
interval = "1h"
jitter = "1ms"
[metrics]
listen = "127.0.0.1:19968"
[store]
path = "{work}/state/transitwatch.db"
''')
    if rdns:
        f.write('[rdns]\nservers = ["127.0.0.1:5353"]\n')
    else:
        f.write('[rdns]\nenabled = false\n')
    for i, a in enumerate(addrs):
        f.write(f'[[target]]\nname = "t{i}"\nhost = "{a}"\n')
# unbound's zone: every hop of the cycle has a name; nothing is asked further.
routers = {"198.18.1.2": "ae1-0.cr1.msu", "198.18.2.2": "xe-0-0-0.cr2.msu", "198.18.3.2": "gw1.msu"}
with open(f"{work}/unbound.conf", "w") as f:
    f.write(f'''server:
    interface: 127.0.0.1
    port: 5353
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    username: ""
    chroot: ""
    directory: "{work}"
    pidfile: ""
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    local-zone: "." static
''')
    for a, name in routers.items():
        f.write(f'    local-data-ptr: "{a} {name}.lab.example.net"\n')
    for i, a in enumerate(addrs):
        f.write(f'    local-data-ptr: "{a} host-{i}.scale.lab.example.net"\n')
    f.write("remote-control:\n    control-enable: no\n")
PY
if [ "$rdns" = 1 ]; then
  ip netns exec "$prefix-v" unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
  until grep -q "start of service" "$work/unbound.log"; do
    kill -0 $! 2>/dev/null || { echo "unbound did not start: $(cat "$work/unbound.log")" >&2; exit 1; }
    sleep 0.05
  done
fi

# transitwatch: one cycle
t0=$(date +%s%N)
# exec'ed by `ip netns exec`, so $! is the daemon itself
ip netns exec "$prefix-v" "$bin" run --config "$work/transitwatch.toml" --state-dir "$work/state" 2>"$work/tw.log" &
pid=$!
until in_lab curl -sf -o /dev/null http://127.0.0.1:19968/readyz; do sleep 0.05; done
t1=$(date +%s%N)
tw_wall=$(python3 -c "print(($t1-$t0)/1e9)")
read -r ut st < <(awk '{print $14, $15}' /proc/$pid/stat)
tw_cpu=$(python3 -c "import os; print(($ut+$st)/os.sysconf('SC_CLK_TCK'))")
tw_rss=$(awk '/VmHWM/ {print $2/1024}' /proc/$pid/status)
probes=$(in_lab curl -s http://127.0.0.1:19968/api/v1/targets | python3 -c "
import json,sys
print(sum(1 for t in json.load(sys.stdin) for p in t['paths']))")
# /metrics for N targets, 20 scrapes
render=$(for _ in $(seq 20); do in_lab curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:19968/metrics; done | sort -n | sed -n 10p)
series=$(in_lab curl -s http://127.0.0.1:19968/metrics | grep -vc '^#')
# reverse DNS queries by result, and cache hits (all 0 without RDNS=1)
rdns_results=$(in_lab curl -s http://127.0.0.1:19968/metrics |
  awk '/^transitwatch_rdns_(lookups|cache_hits)_total/ {printf "%s %s; ", $1, $2}')
kill -TERM $pid; wait $pid || true

# probes transitwatch sent: 3 per hop to the destination (4 hops) per target
sent=$(( n * 4 * 3 ))
# scamper accepts at most 10000 probes per second
rate=$(python3 -c "print(min(10000, max(1, round($sent / $tw_wall))))")

run_scamper() { # pps
  local out=$work/scamper-$1.time
  /usr/bin/time -f "%e %U %S %M" -o "$out" ip netns exec "$prefix-v" \
    scamper -p "$1" -c "trace -P icmp-paris -q 3 -Q" -O warts -o "$work/scamper-$1.warts" -f "$work/targets.txt" 2>"$work/scamper-$1.err" ||
    { echo "scamper -p $1 failed: $(cat "$work/scamper-$1.err")" >&2; exit 1; }
  tail -n 1 "$out"
}
read -r sc_wall sc_u sc_s sc_rss < <(run_scamper "$rate")
read -r sd_wall sd_u sd_s sd_rss < <(run_scamper 20)

python3 - <<PY
tw_wall, tw_cpu, tw_rss = $tw_wall, $tw_cpu, $tw_rss
rows = [
  ("transitwatch run (one cycle, concurrency 64)", tw_wall, tw_cpu, tw_rss),
  ("scamper -p $rate (matched rate)", $sc_wall, $sc_u + $sc_s, $sc_rss / 1024),
  ("scamper -p 20 (default rate)", $sd_wall, $sd_u + $sd_s, $sd_rss / 1024),
]
print(f"$n targets, 4 hops each, 3 probes per hop ({$sent} probes; transitwatch rate {$rate}/s); paths traced: $probes")
print(f"{'tool':<46} {'wall s':>8} {'cpu s':>7} {'peak RSS MB':>12} {'wall x transitwatch':>20}")
for name, wall, cpu, rss in rows:
    print(f"{name:<46} {wall:>8.2f} {cpu:>7.2f} {rss:>12.1f} {wall / tw_wall:>20.2f}")
print(f"/metrics for $n targets: median of 20 scrapes {float('$render') * 1000:.1f} ms ({$series} series)")
print("reverse DNS: " + ("on, unbound at the vantage" if "$rdns" == "1" else "off") + ": " + r'''$rdns_results''')
PY
