# Sourced by the benches: one timed run of a command, by GNU time.
#
#   timed RESULTS LABEL CMD...
#
# runs CMD once, its output to /dev/null, and appends "LABEL wall cpu rss_kb"
# to RESULTS: wall seconds, CPU seconds (user + system) and peak RSS of the
# largest process. A failing command stops the bench with its stderr.
# Scratch files go beside RESULTS.
timed() {
  local results=$1 label=$2
  shift 2
  local scratch=${results%.*}
  /usr/bin/time -f '%e %U %S %M' -o "$scratch.time" "$@" >/dev/null 2>"$scratch.stderr" || {
    cat "$scratch.stderr" >&2
    exit 1
  }
  # GNU time puts a failed command's exit status line first; the figures
  # are the last line.
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$scratch.time")
  echo "$label $wall $(python3 -c "print($user + $sys)") $rss" >>"$results"
}
