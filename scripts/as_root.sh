# Sourced (not run) first thing by every script that needs root: network
# namespaces, raw sockets, apt-get. As root it does nothing, with or without
# sudo installed (a fresh Debian machine where you are root has none).
# Otherwise, where sudo exists, it runs the calling script again under sudo
# with the same arguments, keeping the caller's PATH and Rust toolchain
# (sudo would otherwise reset them and not find cargo); without sudo it
# stops with one line saying that root is needed.
#
#   source "$(dirname "$0")/as_root.sh"            (from scripts/)
#   source "$(dirname "$0")/../scripts/as_root.sh" (from benches/)
if [ "$(id -u)" != 0 ]; then
  as_root_self=$(readlink -f "$0")
  as_root_name=$(basename "$0")
  if [ -n "${TRANSITWATCH_AS_ROOT:-}" ]; then
    echo "$as_root_name: needs root, and sudo did not make this process root" >&2
    exit 1
  fi
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$as_root_name: needs root (network namespaces, raw sockets, apt-get); run it as root (sudo is not installed)" >&2
    exit 1
  fi
  as_root_env=(TRANSITWATCH_AS_ROOT=1 "PATH=$PATH")
  as_root_cargo=${CARGO_HOME:-${HOME:-/nonexistent}/.cargo}
  as_root_rustup=${RUSTUP_HOME:-${HOME:-/nonexistent}/.rustup}
  [ -d "$as_root_cargo" ] && as_root_env+=("CARGO_HOME=$as_root_cargo")
  [ -d "$as_root_rustup" ] && as_root_env+=("RUSTUP_HOME=$as_root_rustup")
  [ -n "${CARGO_TARGET_DIR:-}" ] && as_root_env+=("CARGO_TARGET_DIR=$CARGO_TARGET_DIR")
  echo "$as_root_name: needs root; running it again with sudo" >&2
  exec sudo env "${as_root_env[@]}" bash "$as_root_self" "$@"
fi
