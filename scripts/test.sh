#!/usr/bin/env bash
# The test command: set-up, formatting, lints, then every test. Runs as root
# (as a user with sudo it asks for it) so that the lab tests (network
# namespaces, raw sockets) run; as root a lab test that cannot run fails
# instead of skipping. `cargo test` as a user runs the rest and skips them.
set -euo pipefail
source "$(dirname "$0")/as_root.sh"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" = 0 ]; then
  export TRANSITWATCH_REQUIRE_LAB=1
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
