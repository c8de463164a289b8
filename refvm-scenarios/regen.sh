#!/bin/bash
# regen.sh - re-run reference-VM scenarios and refresh the committed fixtures.
#   usage: refvm-scenarios/regen.sh [errors] [listings] [sched]   (default: all)
# Needs /work/shared/refvm (run.sh, lib.sh, cap2jsonl.py) and its build.sh done.
# Runs one VM at a time (TCG emulation is CPU-heavy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REFVM=${REFVM:-/work/shared/refvm}
declare -A dest=(
  [errors]=crates/rvsadm/tests/fixtures/refvm/errors
  [listings]=crates/rvsadm/tests/fixtures/refvm/listings
  [sched]=crates/rvs-core/tests/fixtures/refvm/sched
)
[[ $# -gt 0 ]] || set -- errors listings sched
for sc in "$@"; do
  d=$root/${dest[$sc]:?unknown scenario $sc}
  tmp=$(mktemp -d)
  "$REFVM/run.sh" -q -t 900 -i "$REFVM/scenarios/lib.sh" -o "$tmp/out" "$here/$sc.sh"
  mkdir -p "$d"
  cp "$tmp/out/transcript.txt" "$d/transcript.log"
  python3 "$REFVM/cap2jsonl.py" "$tmp/out/cap" "$d/cases.jsonl"
  # scheduler oracles: the scenario writes *.txt result files into $REFVM_OUT/sched/
  if [[ -d $tmp/out/sched ]]; then cp "$tmp/out/sched/"*.txt "$d/"; fi
  rm -rf "$tmp"
  echo "refreshed $d"
done
