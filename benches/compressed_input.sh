#!/usr/bin/env bash
# Reading a bzip2-compressed RIPE Atlas dump: `transitwatch analyze` on the
# .bz2 itself (its block-parallel bzip2 decoder) against its peers, in the
# same run, pair by pair.
#
#   bash benches/compressed_input.sh [SIZE_MB] [HOME]   (default 200 MB, DE;
#                                                        RUNS=5 pairs each;
#                                                        BENCH_MMDB=generated
#                                                        skips GeoLite2)
#
# Input: the Atlas file of benches/analyze_throughput.sh (benches/atlas_input.sh:
# SIZE_MB of synthetic results, and the MMDB), compressed once with
# `bzip2 -9` under target/bench/ (never committed).
# Pairs, A against B, each run alternating A B A B ... so that a drift of the
# machine's speed hits both; the ratio A/B is taken pair by pair and its
# median shown:
#   (a) transitwatch analyze --input X.bz2            vs  bzip2 -dc X.bz2 | transitwatch analyze --input -
#   (b) transitwatch analyze --input X.bz2            vs  lbzip2 -dc X.bz2 | transitwatch analyze --input -
#   (c) transitwatch analyze --input X.bz2            vs  python3 benches/analyze_baseline.py X.bz2 (Python's bz2)
#   (d) the block-parallel decoder alone vs the serial one (examples/bzip2_decode.rs,
#       --threads N against --threads 1, output to /dev/null)
# transitwatch prints its summary (no --json) and runs unpinned, one thread
# per core for both decoding and classifying; the peers' pipes run their two
# processes at once, as a shell user would. Wall and CPU times (user +
# system, of the whole pipeline) and peak RSS (the largest process) come
# from GNU time.
# Before timing: the decoder's output is compared with `bzip2 -dc`'s, and
# analyze's summary of the .bz2 with its summary of the plain file.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
home=${2:-DE}
runs=${RUNS:-5}
for tool in python3 bzip2 lbzip2 cmp /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (scripts/setup.sh installs it)" >&2; exit 2; }
done
python3 -c 'import maxminddb' 2>/dev/null ||
  { echo "bench needs Python's maxminddb package (scripts/setup.sh installs it)" >&2; exit 2; }
cargo build --release --quiet
cargo build --release --quiet --example bzip2_decode
target=${CARGO_TARGET_DIR:-$PWD/target}
work=target/bench
mkdir -p "$work"
# Copies: a build of another work tree sharing CARGO_TARGET_DIR must not
# swap the binaries mid-run.
cp "$target/release/transitwatch" "$work/transitwatch"
cp "$target/release/examples/bzip2_decode" "$work/bzip2_decode"
bin=$PWD/$work/transitwatch
decode=$PWD/$work/bzip2_decode
source benches/atlas_input.sh

compressed=$data.bz2
if [[ ! -f $compressed || $data -nt $compressed ]]; then
  bzip2 -9 -c "$data" >"$compressed.partial"
  mv "$compressed.partial" "$compressed"
fi
cores=$(nproc)

# The same bytes, the same figures.
"$decode" "$compressed" | cmp - <(bzip2 -dc "$compressed") ||
  { echo "the block-parallel decoder's output is not bzip2 -dc's" >&2; exit 1; }
"$bin" analyze --input "$data" --home "$home" "${geoip[@]}" | sed "s|$data|INPUT|" >"$work/plain.summary"
"$bin" analyze --input "$compressed" --home "$home" "${geoip[@]}" | sed "s|$compressed|INPUT|" >"$work/bz2.summary"
cmp "$work/plain.summary" "$work/bz2.summary" ||
  { echo "analyze's summary of the .bz2 is not that of the plain file" >&2; exit 1; }

# One run: appends "label wall cpu rss_kb" to $results.
results=$work/compressed-results.tsv
: >"$results"
source benches/timed.sh
one() { timed "$results" "$@"; }
analyze=("$bin" analyze --input "$compressed" --home "$home" "${geoip[@]}")
piped="$bin analyze --input - --home $home ${geoip[*]}"
pair() {
  local a=$1 b=$2 i
  shift 2
  local -a cmd_a cmd_b
  cmd_a=("${@:2:$1}")
  shift $(($1 + 1))
  cmd_b=("$@")
  for ((i = 0; i < runs; i++)); do
    one "$a" "${cmd_a[@]}"
    one "$b" "${cmd_b[@]}"
  done
}
pair transitwatch-a bzip2-pipe "${#analyze[@]}" "${analyze[@]}" \
  sh -c "bzip2 -dc '$compressed' | $piped"
pair transitwatch-b lbzip2-pipe "${#analyze[@]}" "${analyze[@]}" \
  sh -c "lbzip2 -dc '$compressed' | $piped"
pair transitwatch-c python-baseline "${#analyze[@]}" "${analyze[@]}" \
  python3 benches/analyze_baseline.py "$compressed" "$home" "${mmdbs[@]}"
pair decoder-parallel decoder-serial 4 "$decode" --threads "$cores" "$compressed" \
  "$decode" --threads 1 "$compressed"

echo "MMDB: $database"
echo "input: $compressed ($(( $(stat -c %s "$data") / 1000000 )) MB of Atlas results, $(( $(stat -c %s "$compressed") / 1000000 )) MB as bzip2 -9); home $home; $cores cores; $runs pairs each"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    label, wall, cpu, rss = line.split()
    if label not in rows:
        order.append(label)
    rows.setdefault(label, []).append((float(wall), float(cpu), int(rss)))
print(f"{'command':<18} {'wall s (min-max)':>20} {'cpu s':>7} {'peak RSS MB':>11}")
for label in order:
    r = rows[label]
    walls = [x[0] for x in r]
    print(f"{label:<18} {statistics.median(walls):>7.2f} ({min(walls):.2f}-{max(walls):.2f}) "
          f"{statistics.median(x[1] for x in r):>7.2f} {max(x[2] for x in r) / 1024:>11.1f}")
for a, b in (("transitwatch-a", "bzip2-pipe"), ("transitwatch-b", "lbzip2-pipe"),
             ("transitwatch-c", "python-baseline"), ("decoder-parallel", "decoder-serial")):
    ratios = [x[0] / y[0] for x, y in zip(rows[a], rows[b])]
    print(f"{a} / {b}: wall {statistics.median(ratios):.2f} (pairs {min(ratios):.2f}-{max(ratios):.2f})")
PY
