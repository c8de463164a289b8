#!/usr/bin/env bash
# Runs rvs-core's benchmarks (BENCHMARKS.md) and prints the machine they ran on.
#   bench/core-benches.sh          short run: 1 s warm-up, 2 s measurement each (a few minutes)
#   bench/core-benches.sh --full   criterion's defaults (3 s warm-up, 5 s measurement)
# Output: stdout; criterion also keeps its data under target/criterion/.
set -euo pipefail
cd "$(dirname "$0")/.."

args=(--warm-up-time 1 --measurement-time 2 --noplot)
if [[ "${1:-}" == "--full" ]]; then
  args=(--noplot)
fi

echo "== machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|L2|L3|Hypervisor)' || true
echo "nproc: $(nproc)"
echo "kernel: $(uname -r)"
rustc --version
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

cargo bench --locked -p rvs-core --no-run
for b in packet_path schedulers conn_table; do
  echo "== $b (load $(cut -d' ' -f1-3 /proc/loadavg))"
  cargo bench --locked -p rvs-core --bench "$b" -- "${args[@]}"
done
echo "== conn_memory (load $(cut -d' ' -f1-3 /proc/loadavg))"
cargo bench --locked -p rvs-core --bench conn_memory
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
