#!/usr/bin/env bash
# One cycle of the daemon over N targets (addresses on the lab's domestic
# service host, 4 hops away), against scamper tracing the same targets in
# the same run, at its default probe rate and at transitwatch's measured
# rate; then the time to serve /metrics for those targets.
#
#   benches/daemon_scale.sh [N]        (as root, or it asks for sudo; default
#                                       1000; about 11 minutes, 10 of them
#                                       scamper at 20 pps)
#   PERF=FILE benches/daemon_scale.sh [N]   also records a CPU profile of
#                                       the host during the daemon's cycle
#                                       into FILE (perf record -a; the
#                                       daemon's pid is printed)
#   CONCURRENCY=C benches/daemon_scale.sh [N]   `[probe] concurrency = C`
#                                       instead of the default
#   NO_DEFAULT_RATE=1 benches/daemon_scale.sh [N]   the same without the
#                                       scamper run at its default rate
#                                       (about a minute)
#   FAR=1 benches/daemon_scale.sh [N]   the targets 160 ms away, behind the
#                                       lab's delay line to Dublin, 3 hops
#                                       (what a cycle takes at a real
#                                       round-trip time, per CONCURRENCY)
#
# transitwatch: `run` with interval 20s and jitter 1ms (so the first cycle
# starts at once), default concurrency, 3 probes per hop, ICMP; the cycle
# ends when /readyz turns 200 (every target traced once). Then the second
# cycle, the steady state (each target's RTT known from the first, so no RTT
# probe): its CPU seconds from just before it starts until the store holds
# 2N traces (read from outside the daemon). Wall time, CPU
# seconds (utime+stime from /proc), peak RSS (VmHWM) and the peak thread
# count of the process (its /proc status polled every 5 ms from start to
# ready by a Python loop). The binary is taken from $CARGO_TARGET_DIR when
# that is set, or is $TW_BIN when that is set (a before/after comparison).
# scamper: `trace -P icmp-paris -q 3 -Q` over the same list, timed by
# /usr/bin/time; the CPU ratio is transitwatch's CPU seconds over scamper's
# at the matched rate (the first cycle's), for both cycles. Echo requests
# sent and ICMP messages received are counted at the vantage
# (/proc/net/snmp) around each tool.
#
# PERF_FREQ=HZ and PERF_CALLGRAPH=fp|dwarf|lbr tune PERF's sampling (999 Hz,
# frame pointers: build with RUSTFLAGS="-C force-frame-pointers=yes" into
# another CARGO_TARGET_DIR for whole stacks).
#
# RDNS=1 benches/daemon_scale.sh [N]: the same cycle with reverse DNS on,
# the resolver asking an unbound started at the vantage (127.0.0.1:5353)
# that serves a PTR name for every hop address (the three routers and the
# N targets in 198.19.0.0/16); the cycle then includes every trace's names.
# Without it `[rdns] enabled = false`, as before reverse DNS existed.
#
# DEPS=1 benches/daemon_scale.sh [N]: DNS dependencies. The N targets get
# names, svcI.zK.ls.test (K = I mod 50: 50 zones), each at the address the
# address mode uses (198.19.0.1 + I), written into the vantage's hosts file
# so the tracer itself asks no DNS. An unbound at the vantage
# (127.0.0.1:5353) serves the zones from local data: per zone SOA, NS
# ns1/ns2.zK.ls.test at 198.19.200.K+1 and 198.19.201.K+1 (on the domestic
# host, so 2 x 50 = 100 name server addresses, 100 dependency paths), and
# every service's A. Two daemon cycles in the same run, lab and unbound:
# `[dependency] dns = false`, then `dns = true` asking that unbound
# (dns_timeout 1s, dns_deadline 5s); `[rdns] enabled = false` in both.
# Name servers are traced after their target, so a cycle ends when /readyz
# is 200 and every dependency path has a verdict (/metrics polled every
# 0.2 s). Each cycle: wall time to ready, and to all paths (the later of
# ready and the last dependency path's
# `transitwatch_last_trace_timestamp_seconds`), CPU and peak RSS (read
# before the scrape that saw the last path), traces (the sum of
# `transitwatch_trace_runs_total`), then from the store: rows, and each
# service's DNS record (zones found, problems); unbound's query count
# (logged when it stops) and the vantage's UDP receive-buffer drops. About
# a minute, plus the build. scamper is not run in this mode: it resolves no
# DNS dependencies, so it is no peer for what is measured here.
#
# PERHOP=1 benches/daemon_scale.sh [N]: /metrics with per-hop metrics off and
# on, in the same run and lab: the address-mode cycle as above (per_hop
# off), then a second daemon on the same targets with `[metrics] per_hop =
# true` (every hop's RTT, probes and loss, and the destination RTT
# histogram), each scraped 20 times after its cycle: median time, series
# and bytes. scamper is not run in this mode (it has no /metrics), so it
# takes about a minute.
set -euo pipefail
source "$(dirname "$0")/../scripts/as_root.sh"
cd "$(dirname "$0")/.."
n=${1:-1000}
prefix=twscale$$
lab=tests/lab/lab.sh
rdns=${RDNS:-0}
deps=${DEPS:-0}
perhop=${PERHOP:-0}
if [ "$perhop" = 1 ]; then
  tools="curl python3"
  [ "$rdns" = 1 ] && tools="$tools unbound"
elif [ "$deps" = 1 ]; then
  [ "$rdns" = 1 ] && { echo "RDNS=1 and DEPS=1 do not combine" >&2; exit 2; }
  tools="curl python3 unbound"
else
  tools="scamper curl python3"
  [ "$rdns" = 1 ] && tools="$tools unbound"
fi
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool" >&2; exit 2; }
done
if [ -n "${TW_BIN:-}" ]; then
  bin=$TW_BIN   # another build, for a before/after comparison
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/transitwatch
fi
work=$(mktemp -d)
cleanup() {
  local p
  for p in $(jobs -p) ${pid:-}; do kill "$p" 2>/dev/null || true; done
  bash $lab down $prefix
  rm -rf "$work"
}
trap cleanup EXIT
bash $lab up "$prefix" >/dev/null
# FAR=1: the targets are in Dublin, behind the lab's 80 ms delay line each
# way (r1-ie1): 198.19.128.0/17, local on ie, 3 hops away (r1, ie1, ie) at
# a 160 ms round trip, as a small country's traffic to a European cloud.
far=${FAR:-0}
hops=4
if [ "$far" = 1 ]; then
  [ "$perhop" = 1 ] || [ "$deps" = 1 ] || [ "$rdns" = 1 ] &&
    { echo "FAR=1 runs the address mode only" >&2; exit 2; }
  hops=3
  ip netns exec "$prefix-ie" ip route add local 198.19.128.0/17 dev lo
  ip netns exec "$prefix-r1" ip route add 198.19.128.0/17 via 198.18.8.2
  ip netns exec "$prefix-ie1" ip route add 198.19.128.0/17 via 198.18.9.2
fi
in_lab() { ip netns exec "$prefix-v" "$@"; }

# The address mode runs a second cycle, SECOND_S seconds after the first
# started; the other modes one cycle
# (SECOND_S, default 20, or 60 with FAR=1: longer than the first cycle).
if [ "${FAR:-0}" = 1 ]; then second_s=${SECOND_S:-60}; else second_s=${SECOND_S:-20}; fi
if [ "$perhop" = 1 ] || [ "$deps" = 1 ]; then interval=1h; else interval=${second_s}s; fi
python3 - "$n" "$work" "$rdns" "$deps" "${CONCURRENCY:-}" "$interval" "$far" <<'PY'
import sys, ipaddress
n, work, rdns, deps = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
concurrency = f"concurrency = {sys.argv[5]}\n" if sys.argv[5] else ""
interval = sys.argv[6]
far = sys.argv[7] == "1"
base = int(ipaddress.ip_address("198.19.128.1" if far else "198.19.0.1"))
addrs = [str(ipaddress.ip_address(base + i)) for i in range(n)]
open(f"{work}/targets.txt", "w").write("\n".join(addrs) + "\n")
def daemon_config(f, state):
    f.write(f'''[vantage]
name = "bench"
country = "LS"
[probe]
interval = "{interval}"
jitter = "1ms"
{concurrency}[metrics]
listen = "127.0.0.1:19968"
[store]
path = "{work}/{state}/transitwatch.db"
''')
unbound_head = f'''server:
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
'''
if deps:
    # svcI.zK.ls.test at the address mode's address; 50 zones, two name
    # servers each on the domestic host (198.19.0.0/16 is AnyIP there).
    zones = min(n, 50)
    names = [f"svc{i}.z{i % 50}.ls.test" for i in range(n)]
    with open(f"{work}/hosts", "w") as f:
        for a, name in zip(addrs, names):
            f.write(f"{a} {name}\n")
    for mode in ("off", "on"):
        with open(f"{work}/transitwatch-{mode}.toml", "w") as f:
            daemon_config(f, f"state-{mode}")
            f.write('[rdns]\nenabled = false\n[dependency]\n')
            if mode == "on":
                f.write('dns = true\ndns_servers = ["127.0.0.1:5353"]\n'
                        'dns_timeout = "1s"\ndns_deadline = "5s"\n')
            else:
                f.write('dns = false\n')
            for i, name in enumerate(names):
                f.write(f'[[target]]\nname = "t{i}"\nhost = "{name}"\n')
    # Static zones: local data answers, a name without the type asked gets
    # NOERROR with the zone's SOA (a proper negative answer; without the
    # SOA record unbound sends none), nothing is ever recursed.
    with open(f"{work}/unbound.conf", "w") as f:
        f.write(unbound_head)
        for k in range(zones):
            z = f"z{k}.ls.test"
            f.write(f'''    local-zone: "{z}." static
    local-data: "{z}. 3600 IN SOA ns1.{z}. hostmaster.{z}. 1 3600 600 86400 300"
    local-data: "{z}. 3600 IN NS ns1.{z}."
    local-data: "{z}. 3600 IN NS ns2.{z}."
    local-data: "ns1.{z}. 3600 IN A 198.19.200.{k + 1}"
    local-data: "ns2.{z}. 3600 IN A 198.19.201.{k + 1}"
''')
        for a, name in zip(addrs, names):
            f.write(f'    local-data: "{name}. 3600 IN A {a}"\n')
        f.write("remote-control:\n    control-enable: no\n")
    sys.exit(0)
for config, state, per_hop in (("transitwatch", "state", "false"), ("transitwatch-perhop", "state-perhop", "true")):
    with open(f"{work}/{config}.toml", "w") as f:
        daemon_config(f, state)
        if rdns:
            f.write('[rdns]\nservers = ["127.0.0.1:5353"]\n')
        else:
            f.write('[rdns]\nenabled = false\n')
        for i, a in enumerate(addrs):
            f.write(f'[[target]]\nname = "t{i}"\nhost = "{a}"\nper_hop = {per_hop}\n')
# unbound's zone: every hop of the cycle has a name; nothing is asked further.
routers = {"198.18.1.2": "ae1-0.cr1.msu", "198.18.2.2": "xe-0-0-0.cr2.msu", "198.18.3.2": "gw1.msu"}
with open(f"{work}/unbound.conf", "w") as f:
    f.write(unbound_head)
    for a, name in routers.items():
        f.write(f'    local-data-ptr: "{a} {name}.lab.example.net"\n')
    for i, a in enumerate(addrs):
        f.write(f'    local-data-ptr: "{a} host-{i}.scale.lab.example.net"\n')
    f.write("remote-control:\n    control-enable: no\n")
PY
if [ "$rdns" = 1 ] || [ "$deps" = 1 ]; then
  ip netns exec "$prefix-v" unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
  unbound_pid=$!
  until grep -q "start of service" "$work/unbound.log"; do
    kill -0 $! 2>/dev/null || { echo "unbound did not start: $(cat "$work/unbound.log")" >&2; exit 1; }
    sleep 0.05
  done
fi

if [ "$deps" = 1 ]; then
  # The tracer resolves the names from the vantage's hosts file (lab.sh up
  # wrote it; `ip netns exec` bind-mounts it), never from DNS.
  cat "$work/hosts" >>"/etc/netns/$prefix-v/hosts"
  zones=$(( n < 50 ? n : 50 ))
  # deps_cycle off|on PATHS: one cycle, ended when /readyz is 200 and PATHS
  # dependency paths have a trace; appends its figures to $work/results.
  deps_cycle() {
    local mode=$1 want=$2 t0 t1 ut st cpu rss guard seen m=$work/metrics-$1.txt
    t0=$(date +%s%N)
    # exec'ed by `ip netns exec`, so $! is the daemon itself
    ip netns exec "$prefix-v" "$bin" run --config "$work/transitwatch-$mode.toml" \
      --state-dir "$work/state-$mode" 2>"$work/tw-$mode.log" &
    pid=$!
    guard=$(( $(date +%s) + 600 ))
    until in_lab curl -sf -o /dev/null http://127.0.0.1:19968/readyz; do
      kill -0 "$pid" 2>/dev/null || { echo "transitwatch ($mode) exited: $(tail -n 5 "$work/tw-$mode.log")" >&2; exit 1; }
      [ "$(date +%s)" -lt "$guard" ] || { echo "transitwatch ($mode): not ready after 600 s" >&2; exit 1; }
      sleep 0.05
    done
    t1=$(date +%s%N)
    # Name servers are traced after their target: wait until every
    # dependency path has a verdict (hang guard 300 s). CPU and RSS are read
    # before each scrape, so the scrape that sees the last path is not counted.
    guard=$(( $(date +%s) + 300 ))
    while :; do
      read -r ut st < <(awk '{print $14, $15}' "/proc/$pid/stat")
      rss=$(awk '/VmHWM/ {print $2/1024}' "/proc/$pid/status")
      in_lab curl -sf -o "$m" http://127.0.0.1:19968/metrics
      seen=$(python3 -c "
import re,sys
print(len(set(re.findall(r'^transitwatch_path_verdict\{target=\"(dns:[^\"]*)\"', open(sys.argv[1]).read(), re.M))))" "$m")
      [ "$seen" -ge "$want" ] && break
      [ "$(date +%s)" -lt "$guard" ] || { echo "transitwatch ($mode): $seen of $want dependency paths traced after 300 s" >&2; exit 1; }
      sleep 0.2
    done
    cpu=$(python3 -c "import os; print(($ut+$st)/os.sysconf('SC_CLK_TCK'))")
    kill -TERM "$pid"; wait "$pid" || true; pid=
    # traces that could not run say why in the daemon's log
    grep "trace failed" "$work/tw-$mode.log" | head -n 3 | sed "s/^/transitwatch ($mode): /" >&2 || true
    python3 - "$mode" "$t0" "$t1" "$cpu" "$rss" "$m" "$work/state-$mode/transitwatch.db" >>"$work/results" <<'PY'
import collections, json, re, sqlite3, sys
mode, t0, t1, cpu, rss, metrics, db = sys.argv[1:]
t0, t1 = int(t0), int(t1)
text = open(metrics).read()
def samples(family):
    for m in re.finditer(r'^' + family + r'\{([^}]*)\} (\S+)$', text, re.M):
        yield dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))), float(m.group(2))
runs = list(samples("transitwatch_trace_runs_total"))
last = [v for l, v in samples("transitwatch_last_trace_timestamp_seconds") if l["target"].startswith("dns:")]
ready = (t1 - t0) / 1e9
# every path traced: ready, and the last dependency path's trace finished
all_paths = max([ready] + [v - t0 / 1e9 for v in last])
con = sqlite3.connect(db)
rows = con.execute("SELECT count(*) FROM traces").fetchone()[0]
dep_rows = con.execute("SELECT count(*) FROM traces WHERE path_key LIKE 'dns:%'").fetchone()[0]
records = [json.loads(r) for (r,) in con.execute("SELECT record FROM traces WHERE path_key NOT LIKE 'dns:%'")]
dns = [r["dns"] for r in records if r.get("dns")]
problems = collections.Counter(f'{p["kind"]} {p["query"]}' for d in dns for p in d.get("problems", []))
print(json.dumps({
    "mode": mode, "ready": ready, "all": all_paths, "cpu": float(cpu), "rss": float(rss),
    "traces": int(sum(v for _, v in runs)),
    "outcomes": {o: int(sum(v for l, v in runs if l["outcome"] == o)) for o in ("reached", "unreached", "error")},
    "dep_paths": len({l["target"] for l, _ in runs if l["target"].startswith("dns:")}),
    "dep_reached": int(sum(v for l, v in runs if l["target"].startswith("dns:") and l["outcome"] == "reached")),
    "rows": rows, "dep_rows": dep_rows, "dns_records": len(dns),
    "zones": sum(1 for d in dns if d.get("zone")),
    "problems": dict(problems),
}))
PY
  }
  # UDP datagrams the vantage's sockets dropped for a full receive buffer
  udp_drops() { in_lab awk '/^Udp:/ { if (h) print $6; h = 1 }' /proc/net/snmp; }
  : >"$work/results"
  deps_cycle off 0
  drops=$(udp_drops)
  deps_cycle on $(( zones * 2 ))
  drops=$(( $(udp_drops) - drops ))
  # unbound logs its query count when it stops (the first cycle asks it nothing)
  kill -TERM "$unbound_pid"; wait "$unbound_pid" || true
  queries=$(sed -n 's/.*server stats for thread 0: \([0-9]*\) queries.*/\1/p' "$work/unbound.log" | head -n 1)
  python3 - "$work/results" "$n" "$zones" "${queries:-?}" "$drops" <<'PY'
import json, sys
results, n, zones, queries, drops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
cycles = {c["mode"]: c for c in map(json.loads, open(results))}
off, on = cycles["off"], cycles["on"]
print(f"{n} named targets in {zones} zones, 2 name servers each ({2 * zones} name server addresses); "
      "unbound at the vantage; one cycle each, concurrency 64, 3 probes per hop")
print(f"{'mode':<40} {'wall s (ready)':>14} {'wall s (all paths)':>18} {'cpu s':>7} {'peak RSS MB':>12} {'traces':>7} {'x off':>6}")
for name, c in (("[dependency] dns = false", off), ("[dependency] dns = true", on)):
    print(f"{name:<40} {c['ready']:>14.2f} {c['all']:>18.2f} {c['cpu']:>7.2f} {c['rss']:>12.1f} {c['traces']:>7} {c['all'] / off['all']:>6.2f}")
print(f"dns = true: {on['dep_paths']} dependency paths ({on['dep_reached']} reached); "
      f"{on['dns_records']} service records with DNS dependencies, {on['zones']} with their zone; "
      f"problems: {on['problems'] or 'none'}; unbound answered {queries} queries; "
      f"UDP datagrams dropped at the vantage (receive buffer full): {drops}")
print(f"trace outcomes: off {off['outcomes']}, on {on['outcomes']}; stored rows: off {off['rows']} "
      f"({off['dep_rows']} dependency paths), on {on['rows']} ({on['dep_rows']} dependency paths)")
PY
  exit 0
fi

# Echo requests the vantage sent (Icmp OutEchos) and ICMP messages it received
# (Icmp InMsgs), from its namespace's /proc/net/snmp: what each tool cost
# on the wire, read before and after each one.
wire() {
  in_lab awk '/^Icmp:/ { if (ic) { o = $25; i = $2 }; ic = 1 } END { print o, i }' /proc/net/snmp
}
# transitwatch: one cycle
read -r w_out w_in < <(wire)
t0=$(date +%s%N)
# exec'ed by `ip netns exec`, so $! is the daemon itself
ip netns exec "$prefix-v" "$bin" run --config "$work/transitwatch.toml" --state-dir "$work/state" 2>"$work/tw.log" &
pid=$!
# Peak thread count: poll the daemon's status every 5 ms until told to stop
# (or it ends); the peak is written when the loop ends.
python3 - "$pid" "$work/threads" <<'PY' &
import os, sys, time
pid, out = sys.argv[1], sys.argv[2]
peak = 0
while not os.path.exists(out + ".stop"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    peak = max(peak, int(line.split()[1]))
                    break
    except OSError:
        break
    time.sleep(0.005)
open(out, "w").write(f"{peak}\n")
PY
poller=$!
# PERF=FILE: a CPU profile of the daemon's cycle (perf record, call graphs)
if [ -n "${PERF:-}" ]; then
  perf record -q -F ${PERF_FREQ:-999} --call-graph ${PERF_CALLGRAPH:-fp} -a -o "$PERF" 2>/dev/null &
  perf_pid=$!
  echo "daemon pid $pid"
fi
until in_lab curl -sf -o /dev/null http://127.0.0.1:19968/readyz; do sleep 0.05; done
[ -n "${perf_pid:-}" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
t1=$(date +%s%N)
tw_wall=$(python3 -c "print(($t1-$t0)/1e9)")
read -r ut st < <(awk '{print $14, $15}' /proc/$pid/stat)
tw_cpu=$(python3 -c "import os; print(($ut+$st)/os.sysconf('SC_CLK_TCK'))")
tw_rss=$(awk '/VmHWM/ {print $2/1024}' /proc/$pid/status)
touch "$work/threads.stop"; wait "$poller"
tw_threads=$(cat "$work/threads")
read -r o i < <(wire)
tw_out=$(( o - w_out )) tw_in=$(( i - w_in ))
probes=$(in_lab curl -s http://127.0.0.1:19968/api/v1/targets | python3 -c "
import json,sys
print(sum(1 for t in json.load(sys.stdin) for p in t['paths']))")
# /metrics for N targets, 20 scrapes
render=$(for _ in $(seq 20); do in_lab curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:19968/metrics; done | sort -n | sed -n 10p)
series=$(in_lab curl -s http://127.0.0.1:19968/metrics | grep -vc '^#')
# reverse DNS queries by result, and cache hits (all 0 without RDNS=1)
rdns_results=$(in_lab curl -s http://127.0.0.1:19968/metrics |
  awk '/^transitwatch_rdns_(lookups|cache_hits)_total/ {printf "%s %s; ", $1, $2}')
# The steady state: the second cycle, which has every target's RTT from
# the first (no RTT probe). CPU read just before it starts and once the
# store holds 2N traces (read from outside the daemon, which costs it
# nothing); its wall time is counted from its scheduled start.
cycle2_cpu=0 cycle2_wall=0 cycle2_out=0 cycle2_in=0
if [ "$interval" != 1h ]; then
  cpu_now() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  python3 -c "import time; time.sleep(max(0, $t0 / 1e9 + $second_s - 0.5 - time.time()))"
  c_a=$(cpu_now)
  read -r w2_out w2_in < <(wire)
  python3 - "$work/state/transitwatch.db" "$((2 * n))" "$t0" "$second_s" <<'PY' >"$work/cycle2"
import sqlite3, sys, time
db, want, t0, second = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1e9, float(sys.argv[4])
guard = time.time() + 600
while True:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT count(*) FROM traces").fetchone()[0]
    con.close()
    if rows >= want:
        break
    if time.time() > guard:
        sys.exit(f"second cycle: {rows} of {want} traces stored after 600 s")
    time.sleep(0.02)
print(time.time() - t0 - second)
PY
  c_b=$(cpu_now)
  read -r o i < <(wire)
  cycle2_out=$(( o - w2_out )) cycle2_in=$(( i - w2_in ))
  cycle2_wall=$(cat "$work/cycle2")
  cycle2_cpu=$(python3 -c "import os; print(($c_b - $c_a) / os.sysconf('SC_CLK_TCK'))")
fi
kill -TERM $pid; wait $pid || true

if [ "$perhop" = 1 ]; then
  # scrape CONFIG STATE: median of 20 /metrics times (s), series, bytes
  scrape() {
    ip netns exec "$prefix-v" "$bin" run --config "$work/$1.toml" --state-dir "$work/$2" >/dev/null 2>"$work/$1.log" &
    pid=$!
    until in_lab curl -sf -o /dev/null http://127.0.0.1:19968/readyz; do sleep 0.05; done
    in_lab curl -s -o "$work/$1.metrics" http://127.0.0.1:19968/metrics
    echo "$(for _ in $(seq 20); do in_lab curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:19968/metrics; done | sort -n | sed -n 10p)" \
      "$(grep -vc '^#' "$work/$1.metrics")" "$(wc -c <"$work/$1.metrics")"
    kill -TERM $pid; wait $pid || true; pid=
  }
  # in this shell, not a subshell: each daemon is stopped before the next
  scrape transitwatch state-scrape >"$work/scrape-off"
  scrape transitwatch-perhop state-perhop >"$work/scrape-on"
  read -r off_ms off_series off_bytes <"$work/scrape-off"
  read -r on_ms on_series on_bytes <"$work/scrape-on"
  python3 - <<PY
print(f"/metrics for $n targets (4 hops each), median of 20 scrapes, per_hop off then on, same run:")
for mode, t, series, size in (("off", $off_ms, $off_series, $off_bytes), ("on", $on_ms, $on_series, $on_bytes)):
    print(f"  per_hop {mode:<3} {t * 1000:6.1f} ms {series:>8} series {size / 1048576:6.2f} MiB")
PY
  exit 0
fi

# probes transitwatch sent: 3 per hop to the destination per target
sent=$(( n * hops * 3 ))
# scamper accepts at most 10000 probes per second
rate=$(python3 -c "print(min(10000, max(1, round($sent / $tw_wall))))")

run_scamper() { # pps
  local out=$work/scamper-$1.time
  /usr/bin/time -f "%e %U %S %M" -o "$out" ip netns exec "$prefix-v" \
    scamper -p "$1" -c "trace -P icmp-paris -q 3 -Q" -O warts -o "$work/scamper-$1.warts" -f "$work/targets.txt" 2>"$work/scamper-$1.err" ||
    { echo "scamper -p $1 failed: $(cat "$work/scamper-$1.err")" >&2; exit 1; }
  tail -n 1 "$out"
}
read -r w_out w_in < <(wire)
read -r sc_wall sc_u sc_s sc_rss < <(run_scamper "$rate")
read -r o i < <(wire)
sc_out=$(( o - w_out )) sc_in=$(( i - w_in ))
if [ "${NO_DEFAULT_RATE:-0}" = 1 ]; then
  sd_wall=0 sd_u=0 sd_s=0 sd_rss=0
else
  read -r sd_wall sd_u sd_s sd_rss < <(run_scamper 20)
fi

python3 - <<PY
tw_wall, tw_cpu, tw_rss = $tw_wall, $tw_cpu, $tw_rss
sc_cpu = $sc_u + $sc_s
rows = [
  ("transitwatch run (one cycle)", tw_wall, tw_cpu, tw_rss),
  ("scamper -p $rate (matched rate)", $sc_wall, sc_cpu, $sc_rss / 1024),
]
if "${NO_DEFAULT_RATE:-0}" != "1":
    rows.append(("scamper -p 20 (default rate)", $sd_wall, $sd_u + $sd_s, $sd_rss / 1024))
print(f"$n targets, $hops hops each" + (" (160 ms away)" if "$far" == "1" else "") + f", 3 probes per hop ({$sent} probes; transitwatch rate {$rate}/s); paths traced: $probes")
print(f"{'tool':<46} {'wall s':>8} {'cpu s':>7} {'peak RSS MB':>12} {'wall x transitwatch':>20}")
for name, wall, cpu, rss in rows:
    print(f"{name:<46} {wall:>8.2f} {cpu:>7.2f} {rss:>12.1f} {wall / tw_wall:>20.2f}")
print(f"transitwatch: peak threads $tw_threads; CPU x scamper at the matched rate: "
      f"{tw_cpu / max(sc_cpu, 0.01):.2f} ({tw_cpu:.2f} s against {sc_cpu:.2f} s)")
if $cycle2_cpu:
    print(f"second cycle (RTTs known, no RTT probe): wall {$cycle2_wall:.2f} s, CPU {$cycle2_cpu:.2f} s; "
          f"CPU x scamper at the matched rate: {$cycle2_cpu / max(sc_cpu, 0.01):.2f}; "
          f"echo requests sent / ICMP received: $cycle2_out / $cycle2_in")
print(f"echo requests sent / ICMP received at the vantage: transitwatch $tw_out / $tw_in, "
      f"scamper (matched rate) $sc_out / $sc_in")
print(f"/metrics for $n targets: median of 20 scrapes {float('$render') * 1000:.1f} ms ({$series} series)")
print("reverse DNS: " + ("on, unbound at the vantage" if "$rdns" == "1" else "off") + ": " + r'''$rdns_results''')
PY
