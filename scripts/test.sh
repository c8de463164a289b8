#!/usr/bin/env bash
# The whole test suite, exactly what CI runs: formatting, lints, every test.
# Each phase prints how long it took, and the total at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
phase_start=$SECONDS
phase() { # phase NAME: report the previous phase's time, announce NAME
  if [[ -n ${current:-} ]]; then
    echo "== $current: $((SECONDS - phase_start))s"
  fi
  current=$1
  phase_start=$SECONDS
  [[ -n $current ]] && echo "== $current"
  return 0
}
trap 'rc=$?; phase ""; echo "== total: $((SECONDS - start))s (exit $rc)"' EXIT
phase "deps"
bash scripts/deps.sh
phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
phase "cargo test"
cargo test --locked --workspace
