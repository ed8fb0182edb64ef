#!/usr/bin/env bash
# Installs what building, testing and the lab need on a fresh Debian/Ubuntu
# machine. Idempotent; needs root when something is missing (apt-get): run it
# as root, or as a user with sudo and it asks for it then.
set -euo pipefail
# chromium (headless) and poppler-utils (pdfinfo): the report's browser tests
# (tests/support/browser.rs), which run the browser in a network namespace.
# bzip2 and lbzip2: the compressed-input tests compare with bzip2(1), and
# benches/compressed_input.sh times both.
# zsh, fish, man-db and groff-base: the generated shell completions are
# checked by the shells themselves and the man pages rendered by man
# (tests/integration/cli_habits.rs).
packages=(bzip2 lbzip2 time scamper mtr-tiny traceroute nftables iproute2 procps util-linux python3 mmdb-bin prometheus prometheus-alertmanager systemd strace curl unbound nsd bind9-dnsutils chromium poppler-utils zsh fish man-db groff-base)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  source "$(dirname "$0")/as_root.sh"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The lab starts its own unbound (tests/lab/lab.sh) on lab addresses; the
  # system resolver service the package brings is not wanted.
  if [[ " ${missing[*]} " == *" unbound "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now unbound >/dev/null 2>&1 || true
  fi
  # Likewise nsd: the lab runs one per zone on lab addresses; the system's
  # authoritative server would only hold port 53.
  if [[ " ${missing[*]} " == *" nsd "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now nsd >/dev/null 2>&1 || true
  fi
fi
# The geo conformance test reads MMDBs with Python's maxminddb as its
# independent reader (mmdblookup from mmdb-bin is the fallback).
python3 -c 'import maxminddb' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check maxminddb >/dev/null 2>&1 ||
  echo "setup: pip install maxminddb failed; geo conformance falls back to mmdblookup" >&2
# RIPE Atlas's own result parser reads the Atlas export in tests/integration/export_cli.rs.
python3 -c 'import ripe.atlas.sagan' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check ripe.atlas.sagan >/dev/null 2>&1 ||
  echo "setup: pip install ripe.atlas.sagan failed; the Atlas export is checked by analyze only" >&2
# DuckDB, pyarrow and pandas read the Parquet datasets in
# tests/integration/datasets.rs and tests/lab/store.rs.
python3 -c 'import duckdb, pyarrow, pandas' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check duckdb pyarrow pandas >/dev/null 2>&1 ||
  echo "setup: pip install duckdb pyarrow pandas failed; the datasets are checked by the Rust reader only" >&2
# The report test validates the JSON report against schemas/report.schema.json.
python3 -c 'import jsonschema' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check jsonschema >/dev/null 2>&1 ||
  echo "setup: pip install jsonschema failed; the report's schema check is skipped" >&2
command -v cargo >/dev/null || { echo "setup: cargo (Rust >= 1.89) is required" >&2; exit 1; }
