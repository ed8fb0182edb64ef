#!/usr/bin/env bash
# The main job, end to end, on the built-in lab network: build, bring up the
# lab, trace its services with the lab's geolocation overrides, silence a
# router, switch the domestic route through "South Africa", trace again.
# Needs root (network namespaces and raw sockets): run it as root, or as a
# user with sudo and it asks for it. Tears the lab down on exit.
set -euo pipefail
source "$(dirname "$0")/as_root.sh"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/transitwatch
lab=tests/lab/lab.sh
prefix=twdemo
trap 'bash $lab down $prefix' EXIT
bash $lab up $prefix
eval "$(bash $lab addrs)"
geo=(--home LS --overrides "$PWD/tests/lab/lab-geo.csv")
# Hop names come from the lab's DNS server (unbound at the vantage).
names=(--dns-server "$DNS_V4:53")
at_vantage() { ip netns exec "$prefix-v" "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "The sample configuration, with the lab's overrides as an MMDB standing in for its GeoLite2 files"
# This machine need not have the GeoLite2 files the sample names (the README
# says where to get them): a copy points [geoip] files at an overlay built
# from the lab's overrides, and the history into the same temporary folder.
sample=$(mktemp -d)
$bin geo build --csv tests/lab/lab-geo.csv --output "$sample/lab-overlay.mmdb" >/dev/null
sed -e '/^files = \[/,/^\]/c files = ["lab-overlay.mmdb"]' \
  -e "s|^path = \"/var/lib/transitwatch/|path = \"$sample/|" \
  config/transitwatch.toml >"$sample/transitwatch.toml"
$bin check-config --config "$sample/transitwatch.toml"
rm -rf "$sample"

say "Domestic service $DOMESTIC_HOST over ICMP, IPv4 and IPv6"
at_vantage "$bin" trace "$DOMESTIC_HOST" --family both "${geo[@]}" "${names[@]}"
say "The same service over TCP port 443 and over UDP"
at_vantage "$bin" trace "$DOMESTIC_HOST" -4 --protocol tcp --port 443 "${geo[@]}" "${names[@]}"
at_vantage "$bin" trace "$DOMESTIC_HOST" -4 --protocol udp "${geo[@]}" "${names[@]}"
say "Foreign service $FOREIGN_HOST"
at_vantage "$bin" trace "$FOREIGN_HOST" -4 "${geo[@]}" "${names[@]}"

say "Router ls2 stops answering (nftables drops its time-exceeded replies)"
bash $lab silence $prefix on
at_vantage "$bin" trace "$DOMESTIC_V4" "${geo[@]}" "${names[@]}"
bash $lab silence $prefix off

say "The domestic route is switched through South Africa"
bash $lab route $prefix za
at_vantage "$bin" trace "$DOMESTIC_HOST" -4 "${geo[@]}" "${names[@]}"
at_vantage "$bin" trace "$DOMESTIC_V6" "${geo[@]}" "${names[@]}" --json | python3 -m json.tool

say "What every source says about the first South African router"
$bin geo lookup "$ZA1_V4" 192.0.2.1 --overrides tests/lab/lab-geo.csv

say "The lab's overrides as an overlay MMDB other sites can load with --geoip"
overlay=$(mktemp -d)/lab-overlay.mmdb
$bin geo build --csv tests/lab/lab-geo.csv --output "$overlay"
command -v mmdblookup >/dev/null && mmdblookup --file "$overlay" --ip "$ZA1_V4" country iso_code

say "A destination that never answers (exit code 1 is expected)"
at_vantage "$bin" trace "$UNANSWERED_V4" --deadline 1s "${geo[@]}" "${names[@]}" || echo "(exit code $?)"

say "What a national name depends on in DNS: id.gov.ls.test is an alias into a cloud zone in Ireland"
at_vantage "$bin" dns "$CLOUD_HOST" "$BANK_HOST" --dns-server "$DNS_V4:53"

say "The daemon on the lab: six targets traced every 2 seconds, their DNS resolved and their name servers traced"
bash $lab route $prefix ls
bash $lab route $prefix za 198.51.100.20/32
work=$(mktemp -d)
# The lab's networks as operators: who runs them, based where.
cat >"$work/operators.toml" <<'TOML'
[[operator]]
name = "Lab Telecom Lesotho"
country = "LS"
kind = "transit"
asns = [64500, 64501]
[[operator]]
name = "Lab Transit South Africa"
country = "ZA"
kind = "transit"
asns = [64510]
[[operator]]
name = "Emerald Cloud"
country = "US"
kind = "hosting"
asns = [64520]
TOML
cat >"$work/transitwatch.toml" <<TOML
[vantage]
name = "maseru-lab"
country = "LS"
[geoip]
overrides = "$PWD/tests/lab/lab-geo.csv"
[rdns]
servers = ["$DNS_V4:53"]
[probe]
family = "ipv4"
interval = "2s"
jitter = "500ms"
deadline = "1s"
[metrics]
listen = "127.0.0.1:19968"
[store]
path = "$work/transitwatch.db"
[dependency]
dns = true
operators = "$work/operators.toml"
[alert]
retry_initial = "500ms"
[[alert.webhook]]
url = "http://127.0.0.1:9000/transitwatch"
format = "alertmanager"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"
[[target]]
name = "bank"
host = "bank.ls.test"
category = "finance"
[[target]]
name = "shop"
host = "shop.ie.test"
[[target]]
name = "id"
host = "$CLOUD_HOST"
category = "government"
[[target]]
name = "silent"
host = "silent.ls.test"
[[target]]
name = "ghost"
host = "nosuch.ls.test"
TOML
# A webhook receiver at the vantage stands in for a regulator's endpoint.
ip netns exec "$prefix-v" python3 tests/tools/webhook_receiver.py \
  --listen 127.0.0.1:9000 --out "$work/hooks.jsonl" &
receiver=$!
# `ip netns exec` execs the daemon, so $! is the daemon itself.
ip netns exec "$prefix-v" "$bin" run --config "$work/transitwatch.toml" --state-dir "$work/state" 2>"$work/daemon.log" &
daemon=$!
trap 'kill $daemon $receiver 2>/dev/null || true; bash $lab down $prefix' EXIT
scrape() { ip netns exec "$prefix-v" curl -s "http://127.0.0.1:19968$1"; }
until [ "$(ip netns exec "$prefix-v" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19968/readyz)" = 200 ]; do sleep 0.2; done
sleep 3
scrape /api/v1/targets | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    paths = t["paths"] or [{"class": "-", "explanation": "no path: the name does not resolve"}]
    for p in paths:
        print("%-11s %-20s %s" % (t["name"], p["class"], p["explanation"]))'
scrape /metrics | grep -E '^transitwatch_(path_verdict\{.*\} 1|country_dependency_ratio|path_changes_total)'

say "The portal moves onto the ZA route"
bash $lab route $prefix za 198.51.100.10/32
sleep 6
scrape /metrics | grep -E '^transitwatch_(path_verdict\{target="gov-portal".*\} 1|country_dependency_ratio|path_changes_total\{target="gov-portal")'
say "What the webhook received (Alertmanager's format; one post per transition)"
python3 - "$work/hooks.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    body = json.loads(line)["body"]
    for a in body["alerts"]:
        print("%s %s %s" % (a["status"], a["labels"]["alertname"], a["labels"]["target"]))
        print("  " + a["annotations"]["description"])
PY

say "Beyond the route: who answers for each service's name, and what fails if South Africa does"
scrape /api/v1/dependencies | python3 -c '
import json, sys
o = json.load(sys.stdin)
for s in o["dns"]["sentences"]:
    print("  " + s)
for s in o["services"]:
    if s["dns"]:
        print("  %-11s %s" % (s["name"], s["dns"]["sentence"]))
for r in o["at_risk"]:
    print("  " + r["sentence"])'
scrape /metrics | grep -E '^transitwatch_(services_at_risk\{failure_kind="country"|service_dns_flagged|path_verdict\{target="dns:.*\} 1)'

say "SIGTERM: the daemon drains and stops"
kill -TERM $daemon
wait $daemon && echo "daemon exited cleanly"

say "The history: the portal's last trace, hop by hop, as CSV"
csv=$($bin export --store "$work/transitwatch.db" --format csv --target gov-portal)
last=$(tail -1 <<<"$csv" | cut -d, -f1)
awk -F, -v id="$last" 'NR == 1 || $1 == id' <<<"$csv"
say "Every stored trace as RIPE Atlas results, classified again by analyze"
$bin export --store "$work/transitwatch.db" --format atlas --output "$work/atlas.jsonl"
$bin analyze --input "$work/atlas.jsonl" --input-format atlas "${geo[@]}"

say "The regulator's report of this run: which services depended on which countries, and for how long"
report_dir=$PWD/target/demo
mkdir -p "$report_dir"
for format in html md json; do
  $bin report --config "$work/transitwatch.toml" --format $format --output "$report_dir/report.$format"
done
python3 - "$report_dir/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for sentence in report["summary"]["sentences"]:
    print("  " + sentence)
for s in report["services"]:
    shares = ", ".join("%s %.0f%%" % (c, 100 * f) for c, f in s["time_share"]["countries"].items())
    print("  %-11s now %-20s %s" % (s["name"], s["current"]["class"] if s["current"] else "-", shares or "home only"))
PY
echo "The report is in $report_dir/report.html (standalone HTML), report.md and report.json"

say "What fails if South Africa becomes unavailable, from the stored history (route, hosting and DNS)"
$bin whatif --config "$work/transitwatch.toml" --country ZA

