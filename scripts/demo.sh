#!/usr/bin/env bash
# The main job, end to end, on the built-in lab network: build, bring up the
# lab, trace its services, silence a router, switch a route, trace again.
# Needs root (network namespaces and raw sockets). Tears the lab down on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/transitwatch
lab=tests/lab/lab.sh
prefix=twdemo
trap 'bash $lab down $prefix' EXIT
bash $lab up $prefix
eval "$(bash $lab addrs)"
at_vantage() { ip netns exec "$prefix-v" "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "The sample configuration"
$bin check-config --config config/transitwatch.toml

say "Domestic service $DOMESTIC_HOST over ICMP, IPv4 and IPv6"
at_vantage "$bin" trace "$DOMESTIC_HOST" --family both --home LS
say "The same service over TCP port 443 and over UDP"
at_vantage "$bin" trace "$DOMESTIC_HOST" -4 --protocol tcp --port 443 --home LS
at_vantage "$bin" trace "$DOMESTIC_HOST" -4 --protocol udp --home LS
say "Foreign service $FOREIGN_HOST"
at_vantage "$bin" trace "$FOREIGN_HOST" -4 --home LS

say "Router ls2 stops answering (nftables drops its time-exceeded replies)"
bash $lab silence $prefix on
at_vantage "$bin" trace "$DOMESTIC_V4" --home LS
bash $lab silence $prefix off

say "The domestic route is switched through South Africa"
bash $lab route $prefix za
at_vantage "$bin" trace "$DOMESTIC_V4" --home LS --json | python3 -m json.tool

say "A destination that never answers (exit code 1 is expected)"
at_vantage "$bin" trace "$UNANSWERED_V4" --deadline 1s --home LS || echo "(exit code $?)"
