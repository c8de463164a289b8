#!/usr/bin/env bash
# The seed's LVS walkthroughs.
#   ./scripts/demo.sh                 LVS-NAT with real packets in network namespaces (root)
#   ./scripts/demo.sh --mode dr|tun   LVS-DR / LVS-TUN the same way
#   ./scripts/demo.sh --engine        LVS-NAT through the engine alone (no root needed)
# The namespace walkthroughs build what they need, print every command and
# its output, and remove every namespace and process at the end or on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
for a in "$@"; do
  if [[ $a == --engine ]]; then
    exec cargo run --quiet --locked -p rvs-demo -- --engine
  fi
done
if [[ $(id -u) != 0 ]]; then
  echo "demo: the network-namespace walkthrough needs root; ./scripts/demo.sh --engine runs without it" >&2
  exit 1
fi
bash scripts/deps.sh
cargo build --quiet --locked -p rvsd -p rvsadm -p rvs-realserver -p rvs-demo
exec "${CARGO_TARGET_DIR:-target}/debug/rvs-demo" "$@"
