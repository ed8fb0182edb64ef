#!/usr/bin/env bash
# Installs what building, testing and the lab need on a fresh Debian/Ubuntu
# machine. Idempotent; needs root for apt-get.
set -euo pipefail
packages=(scamper mtr-tiny traceroute nftables iproute2 procps util-linux python3)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust >= 1.85) is required" >&2; exit 1; }
