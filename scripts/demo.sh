#!/usr/bin/env bash
# The seed's LVS-NAT walkthrough. Until the packet datapath lands this runs
# the walkthrough through the engine itself: real frames in, rewritten
# frames out, and which real server each client connection reached.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo run --quiet --locked -p rvs-demo -- "$@"
